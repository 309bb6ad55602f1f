//! Property tests: decryption is a homomorphism for the slot-wise operations.

mod common;

use common::{keys, noise};
use ppml_ckks::{Encoder, Evaluator, Preset};
use proptest::prelude::*;

fn close(a: &[f64], b: &[f64], bound: f64) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < bound)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn add_and_mul_are_homomorphic(
        a in prop::collection::vec(-4.0f64..4.0, 1..64),
        b in prop::collection::vec(-4.0f64..4.0, 1..64),
        c in -2.0f64..2.0,
    ) {
        let mut rng = common::rng("add_and_mul_are_homomorphic");
        let k = keys(Preset::N4096Depth1);
        let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let s = k.params.scale();
        let ca = k.pk.encrypt_with_rng(&enc.encode(a, 1, s).unwrap(), &mut rng).unwrap();
        let cb = k.sk.encrypt_with_rng(&enc.encode(b, 1, s).unwrap(), &mut rng).unwrap();
        let dec = |x: &ppml_ckks::Ciphertext| enc.decode(&k.sk.decrypt(x).unwrap()).unwrap();

        // Bounds from the noise estimate: the fresh errors, each scaled by what multiplies it
        // (|a|, |b| < 4, |c| < 2), plus the key switch, rescale and encoding each step adds.
        let bound = |e: noise::Error| e.bound(&k.params);
        let (fa, fb) = (noise::fresh_public(&k.params, s), noise::fresh_secret(&k.params, s));
        let sum: Vec<f64> = a.iter().zip(b).map(|(x, y)| x + y).collect();
        prop_assert!(close(&dec(&ev.add(&ca, &cb).unwrap()), &sum, bound(fa.plus(fb))));
        let prod: Vec<f64> = a.iter().zip(b).map(|(x, y)| x * y).collect();
        let product = noise::product(&k.params, 1, s, fa.times(4.0).plus(fb.times(4.0)));
        prop_assert!(close(&dec(&ev.mul_relin_rescale(&ca, &cb, &k.rlk).unwrap()), &prod, bound(product)));
        let scaled: Vec<f64> = a.iter().map(|x| x * c + 1.5).collect();
        let t = ev.rescale(&ev.mul_scalar(&ca, c, k.params.chain()[1] as f64).unwrap()).unwrap();
        let affine = noise::sum(&[fa.times(2.0), noise::rescale(&k.params, s), noise::encoding(&k.params, s)]);
        prop_assert!(close(&dec(&ev.add_scalar(&t, 1.5).unwrap()), &scaled, bound(affine)));
    }

    #[test]
    fn rotation_is_a_slot_permutation(
        a in prop::collection::vec(-1.0f64..1.0, 1..2048),
        step_idx in 0usize..6,
    ) {
        let mut rng = common::rng("rotation_is_a_slot_permutation");
        let k = keys(Preset::N4096Depth1);
        let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
        let n = k.params.slots();
        let steps = common::steps(n);
        let step = steps[step_idx % steps.len()];
        let ca = k.sk.encrypt_with_rng(&enc.encode(&a, 1, k.params.scale()).unwrap(), &mut rng).unwrap();
        let got = enc.decode(&k.sk.decrypt(&ev.rotate(&ca, step, &k.gk).unwrap()).unwrap()).unwrap();
        let full: Vec<f64> = (0..n).map(|i| a.get(i).copied().unwrap_or(0.0)).collect();
        let want: Vec<f64> = (0..n).map(|i| full[(i as i64 + step).rem_euclid(n as i64) as usize]).collect();
        let rotated = noise::fresh_secret(&k.params, k.params.scale())
            .plus(noise::key_switch(&k.params, 1, k.params.scale()));
        prop_assert!(close(&got, &want, rotated.bound(&k.params)));
    }
}
