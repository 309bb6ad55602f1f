//! The baby-step giant-step split of a diagonal matrix-vector product.

/// Baby-step count minimising the rotations per image for these diagonal indices (baby steps
/// once per input, giant steps once per output ciphertext) plus the Galois keys the client must
/// add to those of `known` rotations (each key is megabytes of upload).
pub(super) fn choose_n1(
    indices: &[usize],
    span: usize,
    inputs: usize,
    outputs: usize,
    known: &[i64],
) -> usize {
    let mut best = (usize::MAX, 1);
    for n1 in 1..=span.max(1) {
        let mut babies: Vec<usize> = indices.iter().map(|i| i % n1).filter(|&b| b != 0).collect();
        babies.sort_unstable();
        babies.dedup();
        let mut giants: Vec<usize> = indices
            .iter()
            .map(|i| i / n1 * n1)
            .filter(|&g| g != 0)
            .collect();
        giants.sort_unstable();
        giants.dedup();
        let new_keys = babies
            .iter()
            .chain(&giants)
            .filter(|&&r| !known.contains(&(r as i64)))
            .count();
        let cost = babies.len() * inputs + giants.len() * outputs + new_keys;
        if cost < best.0 {
            best = (cost, n1);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n1_for_strided_diagonals() {
        let idx: Vec<usize> = (0..64).map(|i| i * 64).collect();
        let n1 = choose_n1(&idx, 4096, 1, 1, &[]);
        assert_eq!(n1 % 64, 0);
    }
}
