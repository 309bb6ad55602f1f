//! Property tests: decryption is a homomorphism for the slot-wise operations.

mod common;

use common::keys;
use ppml_ckks::{Encoder, Evaluator, Preset};
use proptest::prelude::*;

const TOL: f64 = 1e-3;

fn close(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < TOL)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn add_and_mul_are_homomorphic(
        a in prop::collection::vec(-4.0f64..4.0, 1..64),
        b in prop::collection::vec(-4.0f64..4.0, 1..64),
        c in -2.0f64..2.0,
    ) {
        let k = keys(Preset::N4096Depth1);
        let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let s = k.params.scale();
        let ca = k.pk.encrypt(&enc.encode(a, 1, s).unwrap()).unwrap();
        let cb = k.sk.encrypt(&enc.encode(b, 1, s).unwrap()).unwrap();
        let dec = |x: &ppml_ckks::Ciphertext| enc.decode(&k.sk.decrypt(x).unwrap()).unwrap();

        let sum: Vec<f64> = a.iter().zip(b).map(|(x, y)| x + y).collect();
        prop_assert!(close(&dec(&ev.add(&ca, &cb).unwrap()), &sum));
        let prod: Vec<f64> = a.iter().zip(b).map(|(x, y)| x * y).collect();
        prop_assert!(close(&dec(&ev.mul_relin_rescale(&ca, &cb, &k.rlk).unwrap()), &prod));
        let scaled: Vec<f64> = a.iter().map(|x| x * c + 1.5).collect();
        let t = ev.rescale(&ev.mul_scalar(&ca, c, k.params.chain()[1] as f64).unwrap()).unwrap();
        prop_assert!(close(&dec(&ev.add_scalar(&t, 1.5).unwrap()), &scaled));
    }

    #[test]
    fn rotation_is_a_slot_permutation(
        a in prop::collection::vec(-1.0f64..1.0, 1..2048),
        step_idx in 0usize..6,
    ) {
        let k = keys(Preset::N4096Depth1);
        let (enc, ev) = (Encoder::new(&k.params), Evaluator::new(&k.params));
        let n = k.params.slots();
        let steps = common::steps(n);
        let step = steps[step_idx % steps.len()];
        let ca = k.sk.encrypt(&enc.encode(&a, 1, k.params.scale()).unwrap()).unwrap();
        let got = enc.decode(&k.sk.decrypt(&ev.rotate(&ca, step, &k.gk).unwrap()).unwrap()).unwrap();
        let full: Vec<f64> = (0..n).map(|i| a.get(i).copied().unwrap_or(0.0)).collect();
        let want: Vec<f64> = (0..n).map(|i| full[(i as i64 + step).rem_euclid(n as i64) as usize]).collect();
        prop_assert!(close(&got, &want));
    }
}
