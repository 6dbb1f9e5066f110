//! Table size advice: the paper's `M >= 100 N`, and how much of a table a change of backends
//! is expected to move beyond the share that must move, as measured over a grid of sizes
//! (`cargo run --release -p maglev --example disruption_grid`; the envelope is checked by
//! `tests/disruption_envelope.rs`).

use crate::prime::is_prime;
use crate::table::MAX_SIZE;

/// The recommended minimum of slots per backend (the paper's advice, section 3.4).
pub const SLOTS_PER_BACKEND: u64 = 100;

/// The smallest prime table size of at least `100 x backends`, or `None` above [`MAX_SIZE`].
pub fn recommended_size(backends: usize) -> Option<u32> {
    let want = (backends as u64).max(1).saturating_mul(SLOTS_PER_BACKEND);
    let mut m = u32::try_from(want).ok()?.max(2);
    while m <= MAX_SIZE {
        if is_prime(m) {
            return Some(m);
        }
        m += 1;
    }
    None
}

/// The most of a table of `size` slots over `backends` equal-weight backends that adding or
/// removing backends (up to a tenth of them) is expected to move beyond the removed or added
/// backends' own share, in points of the table: `40 / sqrt(M / N)`, capped at 100. An envelope
/// of measurements (worst of 8 backend sets per point, `N` from 10 to 1000): 3.3 points at
/// `M = 100 N`, 2.5 at `200 N`, 1.5 at `400 N`, 1.2 at `655 N`; the formula gives 4.0, 2.8,
/// 2.0 and 1.6. Rare backend sets whose skips collide can exceed it (see the README).
pub fn expected_excess_points(size: u32, backends: usize) -> f64 {
    let per_backend = f64::from(size) / backends.max(1) as f64;
    (40.0 / per_backend.sqrt()).min(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recommended_sizes_are_the_next_prime() {
        assert_eq!(recommended_size(0), Some(101));
        assert_eq!(recommended_size(1), Some(101));
        assert_eq!(recommended_size(10), Some(1009));
        assert_eq!(recommended_size(30), Some(3001));
        assert_eq!(recommended_size(100), Some(10007));
        assert_eq!(recommended_size(655), Some(65519));
        assert_eq!(recommended_size(167_772), Some(16_777_213));
        assert_eq!(recommended_size(167_773), None);
        assert_eq!(recommended_size(usize::MAX), None);
    }

    #[test]
    fn expected_excess_follows_the_envelope() {
        assert!((expected_excess_points(1009, 10) - 40.0 / 100.9f64.sqrt()).abs() < 1e-9);
        assert!((expected_excess_points(65537 * 4, 655) - 2.0).abs() < 0.01);
        assert_eq!(expected_excess_points(2, 2), 40.0);
        assert_eq!(expected_excess_points(7, 7000), 100.0);
    }
}
