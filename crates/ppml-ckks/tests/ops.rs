//! Each operation's decrypted result against the plain computation, within bounds derived
//! from the parameters (`common::noise`).
#![allow(clippy::unwrap_used, reason = "test helpers fail the test on error")]

mod common;

use common::noise;
use common::{keys, max_err, values};
use ppml_ckks::{CkksError, Complex, Encoder, Evaluator, Preset};

#[test]
fn encode_decode_roundtrip_real_and_complex() {
    for preset in [Preset::N4096Depth1, Preset::N8192Depth6] {
        let k = keys(preset);
        let enc = Encoder::new(&k.params);
        let tol = noise::encoding(&k.params, k.params.scale()).bound(&k.params);
        let n = k.params.slots();
        let v = values(n, 1);
        let pt = enc
            .encode(&v, k.params.max_level(), k.params.scale())
            .unwrap();
        let e = max_err(&v, &enc.decode(&pt).unwrap());
        assert!(e < tol, "{preset:?}: {e}");
        let w = values(n, 2);
        let c: Vec<Complex> = v
            .iter()
            .zip(&w)
            .map(|(&a, &b)| Complex::new(a, b))
            .collect();
        let d = enc
            .decode_complex(&enc.encode_complex(&c, 0, k.params.scale()).unwrap())
            .unwrap();
        for (x, y) in c.iter().zip(&d) {
            assert!((x.re - y.re).abs() < tol && (x.im - y.im).abs() < tol);
        }
        // Fewer values than slots: the rest decode to zero.
        let pt = enc.encode(&v[..10], 0, k.params.scale()).unwrap();
        let d = enc.decode(&pt).unwrap();
        assert!(max_err(&v[..10], &d[..10]) < tol && d[10..].iter().all(|x| x.abs() < tol));
    }
}

#[test]
fn encoding_rejects_bad_inputs() {
    let k = keys(Preset::N4096Depth1);
    let enc = Encoder::new(&k.params);
    let too_many = vec![0.0; k.params.slots() + 1];
    assert!(matches!(
        enc.encode(&too_many, 0, 1e6),
        Err(CkksError::TooManyValues { .. })
    ));
    assert!(matches!(
        enc.encode(&[f64::NAN], 0, 1e6),
        Err(CkksError::EncodingOverflow { .. })
    ));
    assert!(matches!(
        enc.encode(&[1e30], 0, 2f64.powi(100)),
        Err(CkksError::EncodingOverflow { .. })
    ));
    assert!(matches!(
        enc.encode(&[1.0], 5, 1e6),
        Err(CkksError::InvalidLevel { .. })
    ));
}

#[test]
fn linear_ops_match_plain() {
    let mut rng = common::rng("linear_ops_match_plain");
    let k = keys(Preset::N8192Depth6);
    let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
    let n = k.params.slots();
    let (a, b) = (values(n, 3), values(n, 4));
    let (l, s) = (k.params.max_level(), k.params.scale());
    let ca =
        k.pk.encrypt_with_rng(&enc.encode(&a, l, s).unwrap(), &mut rng)
            .unwrap();
    let cb =
        k.sk.encrypt_with_rng(&enc.encode(&b, l, s).unwrap(), &mut rng)
            .unwrap();
    let pb = enc.encode(&b, l, s).unwrap();
    let dec = |c: &ppml_ckks::Ciphertext| enc.decode(&k.sk.decrypt(c).unwrap()).unwrap();
    let zip = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
        a.iter().zip(&b).map(|(&x, &y)| f(x, y)).collect()
    };
    // Each ciphertext carries its fresh error; sums add errors, plaintexts add their encoding's,
    // and a multiple scales its error.
    let bound = |e: noise::Error| e.bound(&k.params);
    let (fa, fb) = (
        noise::fresh_public(&k.params, s),
        noise::fresh_secret(&k.params, s),
    );
    let one = bound(fa);
    let two = bound(fa.plus(fb));
    let with_plain = bound(fa.plus(noise::encoding(&k.params, s)));

    assert!(max_err(&dec(&ca), &a) < one);
    assert!(max_err(&dec(&cb), &b) < bound(fb));
    assert!(max_err(&dec(&ev.add(&ca, &cb).unwrap()), &zip(&|x, y| x + y)) < two);
    assert!(max_err(&dec(&ev.sub(&ca, &cb).unwrap()), &zip(&|x, y| x - y)) < two);
    assert!(max_err(&dec(&ev.negate(&ca).unwrap()), &zip(&|x, _| -x)) < one);
    assert!(max_err(&dec(&ev.add_plain(&ca, &pb).unwrap()), &zip(&|x, y| x + y)) < with_plain);
    assert!(max_err(&dec(&ev.sub_plain(&ca, &pb).unwrap()), &zip(&|x, y| x - y)) < with_plain);
    assert!(
        max_err(
            &dec(&ev.add_scalar(&ca, 0.25).unwrap()),
            &zip(&|x, _| x + 0.25)
        ) < with_plain
    );
    assert!(
        max_err(
            &dec(&ev.mul_integer(&ca, -3).unwrap()),
            &zip(&|x, _| -3.0 * x)
        ) < 3.0 * one
    );
    let sum = ev.add_many(&[ca.clone(), cb.clone(), ca.clone()]).unwrap();
    // 2 e_a + e_b.
    let sum_bound = bound(fa.times(2.0).plus(fb));
    assert!(max_err(&dec(&sum), &zip(&|x, y| 2.0 * x + y)) < sum_bound);
}

#[test]
fn multiplicative_ops_match_plain() {
    let mut rng = common::rng("multiplicative_ops_match_plain");
    let k = keys(Preset::N8192Depth6);
    let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
    let n = k.params.slots();
    let (a, b) = (values(n, 5), values(n, 6));
    let (l, s) = (k.params.max_level(), k.params.scale());
    let ca =
        k.pk.encrypt_with_rng(&enc.encode(&a, l, s).unwrap(), &mut rng)
            .unwrap();
    let cb =
        k.pk.encrypt_with_rng(&enc.encode(&b, l, s).unwrap(), &mut rng)
            .unwrap();
    let dec = |c: &ppml_ckks::Ciphertext| enc.decode(&k.sk.decrypt(c).unwrap()).unwrap();
    let prod: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
    // |a|, |b| <= 1: a product's error is at most each factor's error, plus the key switch and
    // the rescale.
    let bound = |e: noise::Error| e.bound(&k.params);
    let fresh = noise::fresh_public(&k.params, s);
    let product = noise::product(&k.params, l, s, fresh.plus(fresh));
    let after_rescale = noise::rescale(&k.params, s * s / k.params.chain()[l] as f64);

    let c = ev.mul_relin_rescale(&ca, &cb, &k.rlk).unwrap();
    assert_eq!(c.level(), l - 1);
    assert!(max_err(&dec(&c), &prod) < bound(product));
    // Without relinearisation, decryption handles the 3-polynomial ciphertext.
    let c3 = ev.mul_no_relin(&ca, &cb).unwrap();
    assert_eq!(c3.size(), 3);
    let e = max_err(&dec(&c3), &prod);
    assert!(e < bound(fresh.plus(fresh)), "{e}");
    let e = max_err(
        &dec(&ev.rescale(&ev.relinearize(&c3, &k.rlk).unwrap()).unwrap()),
        &prod,
    );
    assert!(e < bound(product), "{e}");
    // Plaintext and scalar products: one ciphertext's error, and the rescale.
    let plain_product = bound(fresh.plus(after_rescale));
    let pb = enc.encode(&b, l, s).unwrap();
    let c = ev.rescale(&ev.mul_plain(&ca, &pb).unwrap()).unwrap();
    assert!(max_err(&dec(&c), &prod) < plain_product);
    let c = ev.rescale(&ev.mul_scalar(&ca, -0.75, s).unwrap()).unwrap();
    let want: Vec<f64> = a.iter().map(|x| -0.75 * x).collect();
    assert!(max_err(&dec(&c), &want) < plain_product);
    // Level management: a level-(L-1) product times a fresh level-L ciphertext, whose errors
    // add with another key switch and rescale at the product's scale.
    let c = ev.mul_relin_rescale(&ca, &cb, &k.rlk).unwrap();
    let cc = ev.mul_relin_rescale(&c, &ca, &k.rlk).unwrap();
    assert_eq!(cc.level(), l - 2);
    let want: Vec<f64> = prod.iter().zip(&a).map(|(p, x)| p * x).collect();
    let (sc, lc) = (c.scale() * s, l - 1);
    let second = noise::sum(&[
        product,
        fresh,
        noise::key_switch(&k.params, lc, sc),
        noise::rescale(&k.params, sc / k.params.chain()[lc] as f64),
    ]);
    assert!(max_err(&dec(&cc), &want) < bound(second));
    // Scales must match for additions.
    let e = ev.add(&c, &ca).unwrap_err();
    assert!(matches!(e, CkksError::ScaleMismatch { .. }), "{e}");
    assert!(matches!(
        ev.rescale(&ev.drop_to_level(&ca, 0).unwrap()),
        Err(CkksError::RescaleAtLevelZero)
    ));
}

/// The bound: after one multiply-rescale at scale 2^40, error < 2^-20 relative to the
/// inputs' magnitude.
#[test]
fn precision_at_scale_2_40() {
    let mut rng = common::rng("precision_at_scale_2_40");
    let params = Preset::N8192Depth2.build().unwrap();
    let sk = ppml_ckks::SecretKey::generate_with_rng(&params, &mut rng);
    let pk = sk.public_key_with_rng(&mut rng);
    let rlk = sk.relinearization_key_with_rng(&mut rng);
    let (enc, ev) = (Encoder::new(&params), Evaluator::new(&params));
    let n = params.slots();
    let magnitude = 8.0;
    let a: Vec<f64> = values(n, 7).iter().map(|x| x * magnitude).collect();
    let b: Vec<f64> = values(n, 8).iter().map(|x| x * magnitude).collect();
    let (l, s) = (params.max_level(), params.scale());
    let ca = pk
        .encrypt_with_rng(&enc.encode(&a, l, s).unwrap(), &mut rng)
        .unwrap();
    let cb = pk
        .encrypt_with_rng(&enc.encode(&b, l, s).unwrap(), &mut rng)
        .unwrap();
    let c = ev.mul_relin_rescale(&ca, &cb, &rlk).unwrap();
    let d = enc.decode(&sk.decrypt(&c).unwrap()).unwrap();
    let prod: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
    let rel = max_err(&d, &prod) / (magnitude * magnitude);
    assert!(rel < 2f64.powi(-20), "relative error {rel:e}");
}

#[test]
fn rotations_by_powers_of_two_and_random_steps() {
    let mut rng = common::rng("rotations_by_powers_of_two_and_random_steps");
    let k = keys(Preset::N8192Depth6);
    let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
    let n = k.params.slots();
    let a = values(n, 9);
    let ca =
        k.sk.encrypt_with_rng(
            &enc.encode(&a, k.params.max_level(), k.params.scale())
                .unwrap(),
            &mut rng,
        )
        .unwrap();
    let dec = |c: &ppml_ckks::Ciphertext| enc.decode(&k.sk.decrypt(c).unwrap()).unwrap();
    // A rotation moves the fresh error and adds a key switch's.
    let (l, scale) = (k.params.max_level(), k.params.scale());
    let bound = |e: noise::Error| e.bound(&k.params);
    let fresh = noise::fresh_secret(&k.params, scale);
    let one = bound(fresh.plus(noise::key_switch(&k.params, l, scale)));
    let rotated = |s: i64| -> Vec<f64> {
        (0..n)
            .map(|i| a[(i as i64 + s).rem_euclid(n as i64) as usize])
            .collect()
    };
    for step in common::steps(n) {
        let r = ev.rotate(&ca, step, &k.gk).unwrap();
        let e = max_err(&dec(&r), &rotated(step));
        assert!(e < one, "step {step}: {e}");
    }
    assert!(max_err(&dec(&ev.rotate(&ca, 0, &k.gk).unwrap()), &a) < one);
    // Hoisted rotations agree with the plain rotations.
    let steps = [1i64, 2, 77, -1, 0];
    let hs = ev.rotate_hoisted(&ca, &steps, &k.gk).unwrap();
    for (s, c) in steps.iter().zip(&hs) {
        assert!(max_err(&dec(c), &rotated(*s)) < one, "hoisted {s}");
    }
    // Missing keys are reported.
    assert!(matches!(
        ev.rotate(&ca, 11, &k.gk),
        Err(CkksError::MissingGaloisKey { .. })
    ));
    // Rotation after a multiplication (lower level).
    let c = ev.mul_relin_rescale(&ca, &ca, &k.rlk).unwrap();
    let sq: Vec<f64> = rotated(5).iter().map(|x| x * x).collect();
    let squared = noise::product(&k.params, l, scale, fresh.times(2.0));
    let after = squared.plus(noise::key_switch(&k.params, l - 1, c.scale()));
    assert!(max_err(&dec(&ev.rotate(&c, 5, &k.gk).unwrap()), &sq) < bound(after));
}

#[test]
fn conjugation() {
    let mut rng = common::rng("conjugation");
    let k = keys(Preset::N8192Depth6);
    let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
    let n = k.params.slots();
    let (re, im) = (values(n, 10), values(n, 11));
    let z: Vec<Complex> = re
        .iter()
        .zip(&im)
        .map(|(&a, &b)| Complex::new(a, b))
        .collect();
    let ct =
        k.pk.encrypt_with_rng(
            &enc.encode_complex(&z, k.params.max_level(), k.params.scale())
                .unwrap(),
            &mut rng,
        )
        .unwrap();
    let d = enc
        .decode_complex(&k.sk.decrypt(&ev.conjugate(&ct, &k.gk).unwrap()).unwrap())
        .unwrap();
    let (l, s) = (k.params.max_level(), k.params.scale());
    let tol = noise::fresh_public(&k.params, s)
        .plus(noise::key_switch(&k.params, l, s))
        .bound(&k.params);
    for (x, y) in z.iter().zip(&d) {
        assert!((x.re - y.re).abs() < tol && (x.im + y.im).abs() < tol);
    }
}

#[test]
fn galois_keys_restricted_to_a_level_rotate_below_it_and_are_smaller() {
    let mut rng = common::rng("galois_keys_restricted_to_a_level_rotate_below_it_and_are_smaller");
    let k = keys(Preset::N8192Depth6);
    let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
    let n = k.params.slots();
    let a = values(n, 31);
    // Step 3 for ciphertexts up to level 2, step 5 at every level (twice: the higher wins).
    let gk =
        k.sk.galois_keys_at_levels_with_rng(&[(3, 2), (5, 1), (5, 6)], false, &mut rng);
    assert!(gk.supports_rotation_at(3, 2) && !gk.supports_rotation_at(3, 3));
    assert!(gk.supports_rotation_at(5, 6));
    let mut at = |level: usize| {
        k.sk.encrypt_with_rng(&enc.encode(&a, level, k.params.scale()).unwrap(), &mut rng)
            .unwrap()
    };
    let want: Vec<f64> = (0..n).map(|i| a[(i + 3) % n]).collect();
    for level in [0, 2] {
        let s = k.params.scale();
        let tol = noise::fresh_secret(&k.params, s)
            .plus(noise::key_switch(&k.params, level, s))
            .bound(&k.params);
        let got = enc
            .decode(
                &k.sk
                    .decrypt(&ev.rotate(&at(level), 3, &gk).unwrap())
                    .unwrap(),
            )
            .unwrap();
        assert!(max_err(&got, &want) < tol, "level {level}");
        let hoisted = ev.rotate_hoisted(&at(level), &[3, 5], &gk).unwrap();
        let got = enc.decode(&k.sk.decrypt(&hoisted[0]).unwrap()).unwrap();
        assert!(max_err(&got, &want) < tol, "hoisted, level {level}");
    }
    for result in [
        ev.rotate(&at(3), 3, &gk),
        ev.rotate_hoisted(&at(6), &[3], &gk)
            .map(|mut v| v.remove(0)),
    ] {
        assert!(matches!(
            result,
            Err(CkksError::KeyLevelTooLow { key_level: 2, .. })
        ));
    }
    // The restricted key round-trips and takes about (2 + 1 + 1) / (6 + 1 + 1) of the limbs
    // and 3 of 7 digits of a full one.
    let bytes = gk.to_bytes();
    let back = ppml_ckks::GaloisKeys::from_bytes(&k.params, &bytes).unwrap();
    assert!(back == gk);
    let full =
        k.sk.galois_keys_with_rng(&[3, 5], false, &mut rng)
            .to_bytes();
    assert!(
        bytes.len() * 10 < full.len() * 7,
        "{} vs {}",
        bytes.len(),
        full.len()
    );
}

/// The error bound of a sum of `terms` diagonals (values within 1) times rotations of fresh
/// secret-key encryptions at level 1 (values within 1), rescaled: each term carries the input's
/// error, its rotation's key switch and its diagonal's encoding rounding, independent across
/// terms (each reads other slots); a giant step's key switch acts at scale `s^2` and is
/// negligible.
fn transform_bound(params: &ppml_ckks::CkksParameters, terms: usize) -> f64 {
    let s = params.scale();
    let term = noise::fresh_secret(params, s)
        .plus(noise::key_switch(params, 1, s))
        .plus(noise::encoding(params, s));
    term.times((terms as f64).sqrt())
        .plus(noise::rescale(params, s * s / params.chain()[1] as f64))
        .bound(params)
}

#[test]
fn bsgs_matrix_vector_product() {
    let mut rng = common::rng("bsgs_matrix_vector_product");
    use std::collections::BTreeMap;
    let params = Preset::N4096Depth1.build().unwrap();
    let n = params.slots();
    // A random banded matrix given by 20 diagonals, some far apart.
    let idx: Vec<usize> = (0..16).chain([100, 101, 517, n - 1]).collect();
    let diagonals: BTreeMap<usize, Vec<f64>> = idx
        .iter()
        .enumerate()
        .map(|(k, &i)| (i, values(n, 100 + k as u64)))
        .collect();
    let lt = ppml_ckks::LinearTransform::new(&params, &diagonals, 1, params.scale(), 0).unwrap();
    let sk = ppml_ckks::SecretKey::generate_with_rng(&params, &mut rng);
    let gk = sk.galois_keys_with_rng(&lt.required_rotations(), false, &mut rng);
    let (enc, ev) = (Encoder::new(&params), Evaluator::new(&params));
    let x = values(n, 12);
    let ct = sk
        .encrypt_with_rng(&enc.encode(&x, 1, params.scale()).unwrap(), &mut rng)
        .unwrap();
    let y = ev
        .rescale(&ev.linear_transform(&ct, &lt, &gk).unwrap())
        .unwrap();
    let got = enc.decode(&sk.decrypt(&y).unwrap()).unwrap();
    let want: Vec<f64> = (0..n)
        .map(|r| diagonals.iter().map(|(&i, d)| d[r] * x[(r + i) % n]).sum())
        .collect();
    let e = max_err(&got, &want);
    let tol = transform_bound(&params, diagonals.len());
    assert!(e < tol, "{e} (bound {tol})");
}

#[test]
fn summed_transforms_over_two_inputs() {
    let mut rng = common::rng("summed_transforms_over_two_inputs");
    use std::collections::BTreeMap;
    let params = Preset::N4096Depth1.build().unwrap();
    let n = params.slots();
    // y = A x0 + B x1 with a shared baby-step count; B has a diagonal A lacks and the inputs
    // share the hoisted baby steps of both transforms.
    let diags = |idx: &[usize], seed: u64| -> BTreeMap<usize, Vec<f64>> {
        idx.iter()
            .enumerate()
            .map(|(k, &i)| (i, values(n, seed + k as u64)))
            .collect()
    };
    let a = diags(&[0, 1, 7, 64, 300], 200);
    let b = diags(&[3, 7, 65, 900, n - 2], 300);
    let n1 = 8;
    let lt_a = ppml_ckks::LinearTransform::new(&params, &a, 1, params.scale(), n1).unwrap();
    let lt_b = ppml_ckks::LinearTransform::new(&params, &b, 1, params.scale(), n1).unwrap();
    let mut rotations = lt_a.required_rotations();
    rotations.extend(lt_b.required_rotations());
    let sk = ppml_ckks::SecretKey::generate_with_rng(&params, &mut rng);
    let gk = sk.galois_keys_with_rng(&rotations, false, &mut rng);
    let (enc, ev) = (Encoder::new(&params), Evaluator::new(&params));
    let (x0, x1) = (values(n, 21), values(n, 22));
    let mut encrypt = |x: &[f64]| {
        sk.encrypt_with_rng(&enc.encode(x, 1, params.scale()).unwrap(), &mut rng)
            .unwrap()
    };
    let (c0, c1) = (encrypt(&x0), encrypt(&x1));
    let mut steps = lt_a.baby_steps();
    steps.extend(lt_b.baby_steps());
    let (h0, h1) = (
        ev.baby_steps(&c0, &steps, &gk).unwrap(),
        ev.baby_steps(&c1, &steps, &gk).unwrap(),
    );
    let y = ev
        .rescale(
            &ev.linear_transform_sum(&[(&h0, &lt_a), (&h1, &lt_b)], &gk)
                .unwrap(),
        )
        .unwrap();
    let got = enc.decode(&sk.decrypt(&y).unwrap()).unwrap();
    let apply = |d: &BTreeMap<usize, Vec<f64>>, x: &[f64], r: usize| -> f64 {
        d.iter().map(|(&i, v)| v[r] * x[(r + i) % n]).sum()
    };
    let want: Vec<f64> = (0..n)
        .map(|r| apply(&a, &x0, r) + apply(&b, &x1, r))
        .collect();
    let e = max_err(&got, &want);
    let tol = transform_bound(&params, a.len() + b.len());
    assert!(e < tol, "{e} (bound {tol})");
    // Transforms with different baby-step counts cannot share giant steps.
    let lt_c = ppml_ckks::LinearTransform::new(&params, &a, 1, params.scale(), 4).unwrap();
    assert!(ev
        .linear_transform_sum(&[(&h0, &lt_a), (&h1, &lt_c)], &gk)
        .is_err());
}

#[test]
fn fused_plaintext_products_equal_the_separate_ones() {
    let mut rng = common::rng("fused_plaintext_products_equal_the_separate_ones");
    // A 40-bit prime (tfhe-ntt's modular multiply-accumulate) and a 28-bit one (lazy 64-bit
    // sums), with more terms than one lazy group holds: the result must be bit-identical to
    // multiplying and adding one term at a time.
    let params = ppml_ckks::CkksParameters::builder()
        .degree(4096)
        .chain_bits(&[40, 28])
        .special_bits(&[40])
        .scale_bits(28)
        .build_arc()
        .unwrap();
    let sk = ppml_ckks::SecretKey::generate_with_rng(&params, &mut rng);
    let (enc, ev) = (Encoder::new(&params), Evaluator::new(&params));
    let n = params.slots();
    let cts: Vec<_> = (0..3)
        .map(|k| {
            sk.encrypt_with_rng(
                &enc.encode(&values(n, 40 + k), 1, params.scale()).unwrap(),
                &mut rng,
            )
            .unwrap()
        })
        .collect();
    let pts: Vec<_> = (0..150)
        .map(|k| enc.encode(&values(n, 60 + k), 1, params.scale()).unwrap())
        .collect();
    let terms: Vec<_> = pts
        .iter()
        .enumerate()
        .map(|(k, pt)| (&cts[k % 3], pt))
        .collect();
    let fused = ev.mul_plain_sum(&terms).unwrap();
    let mut separate = ev.mul_plain(terms[0].0, terms[0].1).unwrap();
    for (c, pt) in &terms[1..] {
        separate = ev.add(&separate, &ev.mul_plain(c, pt).unwrap()).unwrap();
    }
    assert!(fused == separate, "fused and separate products differ");
    // Mismatched levels are refused.
    let low = ev.drop_to_level(&cts[0], 0).unwrap();
    assert!(ev
        .mul_plain_sum(&[(&cts[1], &pts[0]), (&low, &pts[1])])
        .is_err());
    assert!(ev.mul_plain_sum(&[]).is_err());
}

/// A depth-L circuit at every preset: x^(L+1) by L ciphertext-ciphertext multiplications, each
/// with a fresh encryption of x encoded at scale q_level so that the scale stays put (the way to
/// avoid scale drift when primes are not exactly 2^bits), then a sum with a fresh ciphertext.
fn depth_l_circuit(preset: Preset) {
    let mut rng = common::rng("depth_l_circuit");
    let params = preset.build().unwrap();
    let sk = ppml_ckks::SecretKey::generate_with_rng(&params, &mut rng);
    let pk = sk.public_key_with_rng(&mut rng);
    let rlk = sk.relinearization_key_with_rng(&mut rng);
    let (enc, ev) = (Encoder::new(&params), Evaluator::new(&params));
    let n = params.slots();
    let x: Vec<f64> = values(n, 13).iter().map(|v| 0.9 + 0.1 * v.abs()).collect();
    let (l, s) = (params.max_level(), params.scale());
    let mut c = pk
        .encrypt_with_rng(&enc.encode(&x, l, s).unwrap(), &mut rng)
        .unwrap();
    let mut want = x.clone();
    for level in (1..=l).rev() {
        let q = params.chain()[level] as f64;
        let y = pk
            .encrypt_with_rng(&enc.encode(&x, level, q).unwrap(), &mut rng)
            .unwrap();
        c = ev.mul_relin_rescale(&c, &y, &rlk).unwrap();
        want.iter_mut().zip(&x).for_each(|(w, v)| *w *= v);
    }
    assert_eq!(c.level(), 0);
    assert!((c.scale() / s - 1.0).abs() < 1e-9);
    let y = pk
        .encrypt_with_rng(&enc.encode(&x, l, c.scale()).unwrap(), &mut rng)
        .unwrap();
    let c = ev.add(&c, &y).unwrap();
    want.iter_mut().zip(&x).for_each(|(w, v)| *w += v);
    let got = enc.decode(&sk.decrypt(&c).unwrap()).unwrap();
    let e = max_err(&got, &want);
    // About 2^-(log scale - 14) per level for the fresh and key-switching noise; measured
    // errors reach 0.65 of that at N32768Depth19 (0.46 elsewhere), so the bound allows twice
    // the estimate to keep the tail of the noise distribution from failing the test.
    let tol = 2f64.powi(15 - s.log2() as i32) * (l + 2) as f64;
    assert!(e < tol, "{preset:?}: error {e}, bound {tol}");
}

/// `depth_l_circuit_at_every_preset::PRESET`, one test per preset.
mod depth_l_circuit_at_every_preset {
    use ppml_ckks::Preset;

    #[test]
    fn n4096_depth1() {
        super::depth_l_circuit(Preset::N4096Depth1);
    }

    #[test]
    fn n8192_depth2() {
        super::depth_l_circuit(Preset::N8192Depth2);
    }

    #[test]
    fn n8192_depth6() {
        super::depth_l_circuit(Preset::N8192Depth6);
    }

    #[test]
    fn n16384_depth8() {
        super::depth_l_circuit(Preset::N16384Depth8);
    }

    #[test]
    fn n32768_depth19() {
        super::depth_l_circuit(Preset::N32768Depth19);
    }

    #[test]
    fn the_tests_cover_every_preset() {
        assert_eq!(Preset::ALL.len(), 5, "a preset without its test above");
    }
}

#[test]
fn weighted_sums_match_plain_on_narrow_and_wide_primes() {
    let mut rng = common::rng("weighted_sums_match_plain_on_narrow_and_wide_primes");
    // N8192Depth6: 26- and 31-bit primes (lazy 64-bit accumulation); N16384Depth8: 40- and
    // 50-bit primes (reduced products).
    for preset in [Preset::N8192Depth6, Preset::N16384Depth8] {
        let k = keys(preset);
        let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
        let n = k.params.slots();
        let (l, s) = (k.params.max_level(), k.params.scale());
        let xs: Vec<Vec<f64>> = (0..3).map(|j| values(n, 10 + j)).collect();
        let cts: Vec<_> = xs
            .iter()
            .map(|x| {
                k.sk.encrypt_with_rng(&enc.encode(x, l, s).unwrap(), &mut rng)
                    .unwrap()
            })
            .collect();
        // A long row (beyond one lazy-reduction group), a short one, and an empty one.
        let long: Vec<(u32, f64)> = (0..1500u32)
            .map(|t| (t % 3, f64::from(t % 7) / 700.0 - 0.004))
            .collect();
        // Rows sharing their inputs are computed in blocks: five such rows (a block of four and
        // a block of one).
        let mut rows = vec![long, vec![(2, -1.25), (0, 0.5)], vec![]];
        let mut bias = vec![0.125, -0.5, 2.0];
        for r in 0..5 {
            let w = f64::from(r) * 0.25 - 0.5;
            rows.push(vec![(1, w), (0, 1.0 - w), (2, 0.5)]);
            bias.push(w);
        }
        let q = k.params.chain()[l] as f64;
        let out = ev.weighted_sums(&cts, &rows, q, &bias).unwrap();
        for ((row, &b), c) in rows.iter().zip(&bias).zip(&out) {
            assert_eq!(c.level(), l);
            let got = enc
                .decode(&k.sk.decrypt(&ev.rescale(c).unwrap()).unwrap())
                .unwrap();
            let want: Vec<f64> = (0..n)
                .map(|i| b + row.iter().map(|&(j, w)| w * xs[j as usize][i]).sum::<f64>())
                .collect();
            // The inputs' errors weighted by each input's total weight in the row (an input's
            // terms share its error), each weight's rounding to an integer at scale q (at most
            // 1/(2q) per term, as |x| <= 1), and the rescale back to `s`.
            let fresh = noise::fresh_secret(&k.params, s);
            let per_input: Vec<noise::Error> = (0..3u32)
                .map(|j| {
                    let w: f64 = row.iter().filter(|&&(i, _)| i == j).map(|&(_, w)| w).sum();
                    fresh.times(w)
                })
                .chain([noise::rescale(&k.params, s)])
                .collect();
            let tol = noise::sum(&per_input).bound(&k.params) + row.len() as f64 / (2.0 * q);
            let e = max_err(&got, &want);
            assert!(e < tol, "{preset:?}: {e} (bound {tol})");
        }
        // Unrelinearised products sum like any ciphertext and relinearise once.
        let sq: Vec<_> = cts[..2]
            .iter()
            .map(|c| ev.square_no_relin(c).unwrap())
            .collect();
        let diff = ev
            .weighted_sums(&sq, &[vec![(0, 1.0), (1, -1.0)]], 1.0, &[0.0])
            .unwrap();
        let got = enc
            .decode(
                &k.sk
                    .decrypt(&ev.relinearize(&diff[0], &k.rlk).unwrap())
                    .unwrap(),
            )
            .unwrap();
        let want: Vec<f64> = (0..n)
            .map(|i| xs[0][i].powi(2) - xs[1][i].powi(2))
            .collect();
        // 2 x0 e0 - 2 x1 e1 with |x| <= 1, and the relinearisation at scale s^2.
        let fresh = noise::fresh_secret(&k.params, s);
        let tol = noise::sum(&[
            fresh.times(2.0),
            fresh.times(2.0),
            noise::key_switch(&k.params, l, s * s),
        ])
        .bound(&k.params);
        assert!(max_err(&got, &want) < tol, "{preset:?}");
    }
}

#[test]
fn weighted_sums_reject_bad_shapes() {
    let mut rng = common::rng("weighted_sums_reject_bad_shapes");
    let k = keys(Preset::N8192Depth6);
    let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
    let (l, s) = (k.params.max_level(), k.params.scale());
    let ct =
        k.sk.encrypt_with_rng(&enc.encode(&[1.0], l, s).unwrap(), &mut rng)
            .unwrap();
    let low = ev.drop_to_level(&ct, l - 1).unwrap();
    let none: [ppml_ckks::Ciphertext; 0] = [];
    assert!(ev.weighted_sums(&none, &[], 1.0, &[]).is_err());
    assert!(ev
        .weighted_sums(&[&ct], &[vec![(1, 1.0)]], 1.0, &[0.0])
        .is_err());
    assert!(ev
        .weighted_sums(&[&ct], &[vec![(0, 1.0)]], 1.0, &[])
        .is_err());
    assert!(matches!(
        ev.weighted_sums(&[&ct, &low], &[vec![(0, 1.0)]], 1.0, &[0.0]),
        Err(CkksError::LevelMismatch { .. })
    ));
    assert!(matches!(
        ev.weighted_sums(&[&ct], &[vec![(0, f64::NAN)]], 1.0, &[0.0]),
        Err(CkksError::EncodingOverflow { .. })
    ));
}

#[test]
fn fused_encode_encrypt_decrypts_and_round_trips() {
    let mut rng = common::rng("fused_encode_encrypt_decrypts_and_round_trips");
    for preset in [Preset::N8192Depth6, Preset::N16384Depth8] {
        let k = keys(preset);
        let enc = Encoder::new(&k.params);
        let n = k.params.slots();
        let v = values(n, 21);
        let (l, s) = (k.params.max_level() - 1, k.params.scale());
        let ct =
            k.sk.encrypt_values_with_rng(&enc, &v, l, s, &mut rng)
                .unwrap();
        assert_eq!(ct.level(), l);
        // Seed-compressed on the wire, expanded identically on decoding.
        let back = ppml_ckks::Ciphertext::from_bytes(&k.params, &ct.to_bytes()).unwrap();
        assert_eq!(back, ct);
        let got = enc.decode(&k.sk.decrypt(&back).unwrap()).unwrap();
        let tol = noise::fresh_secret(&k.params, s).bound(&k.params);
        assert!(max_err(&got, &v) < tol, "{preset:?}");
        assert!(k
            .sk
            .encrypt_values_with_rng(&enc, &v, l + 2, s, &mut rng)
            .is_err());
    }
}

#[test]
fn real_and_imaginary_parts_square_independently() {
    let mut rng = common::rng("real_and_imaginary_parts_square_independently");
    let k = keys(Preset::N8192Depth6);
    let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
    let n = k.params.slots();
    let (x, y) = (values(n, 31), values(n, 32));
    let z: Vec<Complex> = x
        .iter()
        .zip(&y)
        .map(|(&a, &b)| Complex::new(a, b))
        .collect();
    let (l, s) = (k.params.max_level(), k.params.scale());
    let ct =
        k.sk.encrypt_with_rng(&enc.encode_complex(&z, l, s).unwrap(), &mut rng)
            .unwrap();
    let dec = |c: &ppml_ckks::Ciphertext| enc.decode_complex(&k.sk.decrypt(c).unwrap()).unwrap();
    let bound = |e: noise::Error| e.bound(&k.params);
    let fresh = noise::fresh_secret(&k.params, s);
    let one = bound(fresh.plus(noise::encoding(&k.params, s)));
    let close = |got: &[Complex], re: &dyn Fn(usize) -> f64, im: &dyn Fn(usize) -> f64, tol| {
        for (i, g) in got.iter().enumerate() {
            assert!(
                (g.re - re(i)).abs() < tol && (g.im - im(i)).abs() < tol,
                "slot {i}: {g:?}"
            );
        }
    };
    close(&dec(&ev.mul_by_i(&ct).unwrap()), &|i| -y[i], &|i| x[i], one);
    let c = Complex::new(0.75, -1.5);
    close(
        &dec(&ev.add_complex_scalar(&ct, c).unwrap()),
        &|i| x[i] + 0.75,
        &|i| y[i] - 1.5,
        one,
    );
    let sq = ev.square_real_imag(&ct, &k.rlk, &k.gk).unwrap();
    assert_eq!(sq.level(), l - 1);
    // x^2 from x + e_x, where the real part's error e_x has the fresh error and a
    // conjugation's key switch: 2 |x| e_x with |x| <= 1, then the product's key switch and
    // rescale.
    let part = fresh.plus(noise::key_switch(&k.params, l, s));
    let squared = noise::sum(&[
        part.times(2.0),
        noise::key_switch(&k.params, l, s * s),
        noise::rescale(&k.params, s * s / k.params.chain()[l] as f64),
    ]);
    close(
        &dec(&sq),
        &|i| x[i] * x[i],
        &|i| y[i] * y[i],
        bound(squared),
    );
}
