//! Parameter validation and the security bound.

use ppml_ckks::{max_total_modulus_bits, CkksError, CkksParameters, Preset};

#[test]
fn presets_are_valid_and_within_the_standard() {
    for preset in Preset::ALL {
        let p = preset.build().unwrap();
        assert!(p.total_modulus_bits() <= f64::from(max_total_modulus_bits(p.degree()).unwrap()));
        for &q in p.chain().iter().chain(p.special()) {
            assert_eq!(q % (2 * p.degree() as u64), 1);
        }
    }
    let p = Preset::N8192Depth6.build().unwrap();
    assert_eq!(
        (p.chain().len(), p.special().len(), p.max_level()),
        (7, 1, 6)
    );
}

#[test]
fn refused_parameters() {
    let over = |degree: usize, chain: &[u32], special: &[u32]| {
        CkksParameters::builder()
            .degree(degree)
            .chain_bits(chain)
            .special_bits(special)
            .scale_bits(20)
            .build()
    };
    // Just over the bound at every degree (110, 220, 440, 900 bits).
    for (degree, chain) in [
        (4096usize, vec![25u32, 25]),
        (8192, vec![60, 40, 40, 20]),
        (16384, vec![60, 60, 60, 60, 60, 60, 20]),
        (32768, vec![60; 14]),
    ] {
        let e = over(degree, &chain, &[60]).unwrap_err();
        assert!(
            matches!(e, CkksError::InsecureParameters { .. }),
            "{degree}: {e}"
        );
        assert!(e.to_string().contains("128-bit"), "{e}");
    }
    assert!(matches!(
        over(1 << 17, &[40], &[40]),
        Err(CkksError::InvalidDegree { .. })
    ));
    assert!(matches!(
        over(3000, &[40], &[40]),
        Err(CkksError::InvalidDegree { .. })
    ));
    assert!(matches!(
        over(4096, &[], &[40]),
        Err(CkksError::InvalidChain { .. })
    ));
    assert!(matches!(
        over(4096, &[19], &[40]),
        Err(CkksError::InvalidPrimeBits { .. })
    ));
    // A key-switching digit larger than the special modulus.
    assert!(matches!(
        over(8192, &[50, 40], &[30]),
        Err(CkksError::InvalidChain { .. })
    ));
    // Scale not below the first prime.
    let e = CkksParameters::builder()
        .degree(4096)
        .chain_bits(&[30])
        .special_bits(&[30])
        .scale_bits(31)
        .build();
    assert!(matches!(e, Err(CkksError::InvalidScale { .. })));
    // Explicit moduli that are not NTT-friendly primes.
    assert!(matches!(
        CkksParameters::new(4096, vec![(1 << 30) + 1], vec![1_073_750_017], 1024.0),
        Err(CkksError::InvalidModulus { .. })
    ));
}
