use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// `(rows, cols, row_stride, col_stride, len)` of a view of the given shape, row- or
/// column-major, with `pad` unused elements after each row (or column).
fn strided(rows: usize, cols: usize, col_major: bool, pad: usize) -> (usize, usize, usize) {
    if col_major {
        let ld = rows + pad;
        (1, ld, ld * cols)
    } else {
        let ld = cols + pad;
        (ld, 1, ld * rows)
    }
}

fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

/// The textbook triple loop, in f64.
fn reference(
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    (m, k, n): (usize, usize, usize),
) -> Vec<f64> {
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| f64::from(a[i * a_rs + p * a_cs]) * f64::from(b[p * b_rs + j * b_cs]))
                .sum();
        }
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn strided_products_match_the_triple_loop(
        m in 0usize..40, k in 0usize..70, n in 0usize..40,
        a_col in any::<bool>(), b_col in any::<bool>(), c_col in any::<bool>(),
        pad in 0usize..3, accumulate in any::<bool>(), pool in any::<bool>(), seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (a_rs, a_cs, a_len) = strided(m, k, a_col, pad);
        let (b_rs, b_cs, b_len) = strided(k, n, b_col, pad);
        let (c_rs, c_cs, c_len) = strided(m, n, c_col, pad);
        let a = random(a_len, &mut rng);
        let b = random(b_len, &mut rng);
        let mut c = random(c_len, &mut rng);
        let before = c.clone();
        matmul(
            MatMut::new(&mut c, m, n, c_rs, c_cs).expect("dst view"),
            accumulate,
            MatRef::new(&a, m, k, a_rs, a_cs).expect("lhs view"),
            MatRef::new(&b, k, n, b_rs, b_cs).expect("rhs view"),
            if pool { Threads::Pool } else { Threads::Current },
        ).expect("product");
        let want = reference(&a, (a_rs, a_cs), &b, (b_rs, b_cs), (m, k, n));
        let mut inside = vec![false; c_len];
        for i in 0..m {
            for j in 0..n {
                let at = i * c_rs + j * c_cs;
                inside[at] = true;
                let start = if accumulate { f64::from(before[at]) } else { 0.0 };
                let tol = 1e-5 * (k as f64 + 1.0);
                prop_assert!((f64::from(c[at]) - (start + want[i * n + j])).abs() <= tol);
            }
        }
        // Padding between rows is never written.
        for (at, &inside) in inside.iter().enumerate() {
            if !inside {
                prop_assert_eq!(c[at].to_bits(), before[at].to_bits());
            }
        }
    }
}

#[test]
fn a_transposed_view_multiplies_without_a_copy() {
    // x [2, 3] times W^T where W is [4, 3] row-major, as a linear layer computes it.
    let x = [1.0, 2.0, 3.0, -1.0, 0.5, 2.0];
    let w: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let mut y = [0.0; 8];
    matmul(
        MatMut::row_major(&mut y, 2, 4).expect("dst"),
        false,
        MatRef::row_major(&x, 2, 3).expect("x"),
        MatRef::row_major(&w, 4, 3).expect("w").transpose(),
        Threads::Current,
    )
    .expect("product");
    assert_eq!(y, [8.0, 26.0, 44.0, 62.0, 4.5, 9.0, 13.5, 18.0]);
}

#[test]
fn views_past_their_slice_are_refused() {
    let data = [0.0f32; 6];
    assert!(MatRef::row_major(&data, 2, 3).is_ok());
    assert!(matches!(
        MatRef::row_major(&data, 3, 3),
        Err(GemmError::OutOfBounds { len: 6, .. })
    ));
    assert!(matches!(
        MatRef::new(&data, 2, 2, usize::MAX, 1),
        Err(GemmError::OutOfBounds { .. })
    ));
    let mut out = [0.0f32; 6];
    assert!(matches!(
        MatMut::new(&mut out, 2, 3, 3, 2),
        Err(GemmError::OutOfBounds { .. })
    ));
    // Empty views address nothing, whatever their strides.
    assert!(MatRef::new(&[], 0, 5, usize::MAX, usize::MAX).is_ok());
}

#[test]
fn destinations_that_write_an_element_twice_are_refused() {
    let mut out = [0.0f32; 16];
    for (rows, cols, rs, cs) in [(2, 2, 0, 1), (2, 2, 1, 1), (3, 2, 1, 2), (2, 3, 2, 1)] {
        assert!(
            matches!(
                MatMut::new(&mut out, rows, cols, rs, cs),
                Err(GemmError::Aliased { .. })
            ),
            "{rows}x{cols} strides ({rs}, {cs})"
        );
    }
    // Column-major with padding, and a single row with any row stride, are fine.
    assert!(MatMut::new(&mut out, 3, 2, 1, 4).is_ok());
    assert!(MatMut::new(&mut out, 1, 4, 0, 1).is_ok());
    // A shared view may repeat elements (a broadcast), since nothing writes through it.
    assert!(MatRef::new(&out, 4, 4, 0, 1).is_ok());
}

#[test]
fn mismatched_shapes_are_refused() {
    let a = [0.0f32; 6];
    let mut c = [0.0f32; 4];
    let err = matmul(
        MatMut::row_major(&mut c, 2, 2).expect("dst"),
        false,
        MatRef::row_major(&a, 2, 3).expect("lhs"),
        MatRef::row_major(&a, 2, 3).expect("rhs"),
        Threads::Current,
    );
    assert_eq!(
        err,
        Err(GemmError::Shape {
            lhs: (2, 3),
            rhs: (2, 3),
            dst: (2, 2)
        })
    );
}

#[test]
fn an_empty_inner_dimension_gives_zero_or_leaves_dst() {
    let mut c = [5.0f32; 4];
    let product = |c: &mut [f32], accumulate| {
        matmul(
            MatMut::row_major(c, 2, 2).expect("dst"),
            accumulate,
            MatRef::row_major(&[], 2, 0).expect("lhs"),
            MatRef::row_major(&[], 0, 2).expect("rhs"),
            Threads::Current,
        )
    };
    product(&mut c, true).expect("product");
    assert_eq!(c, [5.0; 4]);
    product(&mut c, false).expect("product");
    assert_eq!(c, [0.0; 4]);
}
