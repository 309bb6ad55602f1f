//! Serialisation round trips, and malformed inputs rejected without panicking.

mod common;

use common::{keys, max_err, noise, values};
use ppml_ckks::{
    Ciphertext, CkksError, CkksParameters, Encoder, Evaluator, GaloisKeys, Plaintext, Preset,
    PublicKey, RelinearizationKey,
};

#[test]
fn round_trips() {
    let mut rng = common::rng("round_trips");
    let k = keys(Preset::N4096Depth1);
    let p = &k.params;
    let (enc, ev) = (Encoder::new(p), Evaluator::new(p));
    let x = values(p.slots(), 1);

    let p2 = CkksParameters::from_bytes(&p.to_bytes()).unwrap();
    assert_eq!(**p, *p2);

    let pt = enc.encode(&x, 1, p.scale()).unwrap();
    assert_eq!(Plaintext::from_bytes(p, &pt.to_bytes()).unwrap(), pt);

    // A fresh symmetric ciphertext travels as (c0, seed): about half the size.
    let ct_sym = k.sk.encrypt_with_rng(&pt, &mut rng).unwrap();
    let ct_pk = k.pk.encrypt_with_rng(&pt, &mut rng).unwrap();
    let (b_sym, b_pk) = (ct_sym.to_bytes(), ct_pk.to_bytes());
    assert!(
        b_sym.len() * 10 < b_pk.len() * 6,
        "{} vs {}",
        b_sym.len(),
        b_pk.len()
    );
    assert_eq!(Ciphertext::from_bytes(p, &b_sym).unwrap(), ct_sym);
    assert_eq!(Ciphertext::from_bytes(p, &b_pk).unwrap(), ct_pk);

    let pk = PublicKey::from_bytes(p, &k.pk.to_bytes()).unwrap();
    assert_eq!(pk, k.pk);
    let rlk = RelinearizationKey::from_bytes(p, &k.rlk.to_bytes()).unwrap();
    assert_eq!(rlk, k.rlk);
    let gk = GaloisKeys::from_bytes(p, &k.gk.to_bytes()).unwrap();
    assert_eq!(gk, k.gk);

    // Deserialised keys work.
    let c = ev
        .mul_relin_rescale(&pk.encrypt_with_rng(&pt, &mut rng).unwrap(), &ct_sym, &rlk)
        .unwrap();
    let c = ev.rotate(&c, 1, &gk).unwrap();
    let got = enc
        .decode(
            &k.sk
                .decrypt(&Ciphertext::from_bytes(p, &c.to_bytes()).unwrap())
                .unwrap(),
        )
        .unwrap();
    let want: Vec<f64> = (0..x.len()).map(|i| x[(i + 1) % x.len()].powi(2)).collect();
    // The product of a public-key and a secret-key encryption (|x| <= 1), then a rotation at
    // the product's level and scale.
    let s = p.scale();
    let product = noise::product(
        p,
        1,
        s,
        noise::fresh_public(p, s).plus(noise::fresh_secret(p, s)),
    );
    let rotated = product.plus(noise::key_switch(p, 0, c.scale()));
    let (e, bound) = (max_err(&got, &want), rotated.bound(p));
    assert!(e < bound, "{e} (bound {bound})");
}

#[test]
fn malformed_inputs_are_rejected() {
    let mut rng = common::rng("malformed_inputs_are_rejected");
    let k = keys(Preset::N4096Depth1);
    let p = &k.params;
    let enc = Encoder::new(p);
    let pt = enc.encode(&values(p.slots(), 2), 1, p.scale()).unwrap();
    let ct = k.pk.encrypt_with_rng(&pt, &mut rng).unwrap();
    let bytes = ct.to_bytes();
    let malformed =
        |r: Result<Ciphertext, CkksError>| matches!(r, Err(CkksError::Malformed { .. }));

    // Truncations at many points, and trailing bytes.
    for cut in (0..bytes.len()).step_by(997).chain([bytes.len() - 1]) {
        assert!(
            malformed(Ciphertext::from_bytes(p, &bytes[..cut])),
            "cut {cut}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(malformed(Ciphertext::from_bytes(p, &long)));
    // Header fields: magic, version, kind, fingerprint, level, size, scale, seed flag.
    for (pos, val) in [
        (0usize, b'X'),
        (4, 9),
        (5, 3),
        (6, 0),
        (14, 7),
        (15, 9),
        (15, 1),
        (23, 0xff),
        (24, 5),
    ] {
        let mut b = bytes.clone();
        b[pos] = val;
        assert!(malformed(Ciphertext::from_bytes(p, &b)), "pos {pos}");
    }
    // A residue at or above its modulus: set the first packed value to all ones.
    let mut b = bytes.clone();
    for byte in &mut b[25..31] {
        *byte = 0xff;
    }
    assert!(malformed(Ciphertext::from_bytes(p, &b)));
    // Wrong kinds and other parameters.
    assert!(Plaintext::from_bytes(p, &bytes).is_err());
    assert!(PublicKey::from_bytes(p, &bytes).is_err());
    let other = Preset::N8192Depth2.build().unwrap();
    assert!(malformed(Ciphertext::from_bytes(&other, &bytes)));
    // Parameters: insecure or malformed sets are refused on decoding too.
    let mut pb = p.to_bytes();
    assert!(CkksParameters::from_bytes(&pb[..pb.len() - 1]).is_err());
    pb[7] = 0x40; // degree 4096 -> 16384 | 4096: not a power of two
    assert!(CkksParameters::from_bytes(&pb).is_err());
    // Galois keys: a huge announced count with a tiny body.
    let gb = k.gk.to_bytes();
    let mut g = gb[..18].to_vec();
    g[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(GaloisKeys::from_bytes(p, &g).is_err());
    assert!(GaloisKeys::from_bytes(p, &gb[..gb.len() / 2]).is_err());
    assert!(RelinearizationKey::from_bytes(p, &gb).is_err());
}

#[test]
fn random_corruptions_never_panic() {
    let mut rng = common::rng("random_corruptions_never_panic");
    let k = keys(Preset::N4096Depth1);
    let p = &k.params;
    let enc = Encoder::new(p);
    let pt = enc.encode(&values(p.slots(), 3), 0, p.scale()).unwrap();
    let bytes = k.sk.encrypt_with_rng(&pt, &mut rng).unwrap().to_bytes();
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = (x as usize) % b.len();
            b[pos] ^= (x >> 32) as u8 | 1;
        }
        // Either rejected or a valid ciphertext (a flipped residue may stay below its prime).
        let _ = Ciphertext::from_bytes(p, &b);
        let _ = Plaintext::from_bytes(p, &b);
        let _ = CkksParameters::from_bytes(&b[..b.len().min(64)]);
    }
}
