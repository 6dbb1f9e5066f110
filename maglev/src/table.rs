//! The Maglev lookup table: validation, the weighted build of the paper's section 3.4, lookup,
//! per-backend counts and the fingerprint.
//!
//! Build: backends are sorted by name (the canonical order; table entries are indices into it).
//! Each backend gets the permutation `offset = h1(name) % M`, `skip = h2(name) % (M - 1) + 1`
//! of the prime table size `M`. Each backend's number of entries (its quota) is fixed first by
//! largest-remainder apportionment of `M` in proportion to the weights. Backends then take
//! turns: backend `i`'s `k`-th turn (k = 0, 1, ...) comes at virtual time `k / weight_i`, ties
//! going to the lower index, and in its turn a backend claims the next slot of its permutation
//! that is still empty, until it has its quota. With equal weights this is exactly the paper's
//! round robin (quotas `floor(M/N)` or `ceil(M/N)`, the first `M mod N` backends getting the
//! larger), and the build takes that faster path.
use std::fmt;

use thiserror::Error;

use crate::backend::Backend;
use crate::fill::{fill_round_robin, fill_weighted};
use crate::flow;
use crate::hash::{absorb, fmix64, hash64, SEED_FINGERPRINT, SEED_OFFSET, SEED_SKIP};
use crate::prime::is_prime;

/// The largest accepted table size (2^24; a table of that size takes 64 MiB).
pub const MAX_SIZE: u32 = 1 << 24;

/// Why a table cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MaglevError {
    #[error("table size {size} is not prime (Maglev needs a prime size so that every backend's permutation visits every slot)")]
    NotPrime { size: u32 },
    #[error("table size {size} is too large (at most {max})")]
    TooLarge { size: u32, max: u32 },
    #[error("table size {size} is smaller than the number of backends ({backends})")]
    SmallerThanBackends { size: u32, backends: usize },
    #[error("no backend has a weight above 0 (of {backends} given)")]
    NoActiveBackend { backends: usize },
    #[error("backend {name:?} is listed more than once")]
    DuplicateBackend { name: String },
    #[error("a backend has an empty name")]
    EmptyName,
}

/// A table's fingerprint: a hash of its size and of the backend name in every slot, so it
/// depends on what the table routes where, not on index order, weights or input order. Shown
/// as 16 lowercase hex digits (the `sluice_table_info{fingerprint}` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The permutation `(offset, skip)` of a table of `size` slots for the backend `name`: its
/// `j`-th preferred slot is `(offset + j * skip) % size`. `size` must be at least 2.
pub fn permutation(name: &str, size: u32) -> (u32, u32) {
    let m = u64::from(size);
    let offset = hash64(SEED_OFFSET, name.as_bytes()) % m;
    let skip = hash64(SEED_SKIP, name.as_bytes()) % (m - 1) + 1;
    (offset as u32, skip as u32)
}

/// A built Maglev lookup table (immutable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    size: u32,
    backends: Vec<Backend>,
    entries: Vec<u32>,
    total_weight: u64,
}

/// How evenly a table spreads over its backends with a weight above 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Balance {
    /// Fewest entries of any backend with weight > 0.
    pub min: u32,
    /// Most entries of any backend with weight > 0.
    pub max: u32,
    /// `max / min` (infinite when some backend with weight > 0 got no entry).
    pub max_over_min: f64,
    /// Largest `|entries - expected|` over all backends, in entries (always below 1).
    pub max_error: f64,
}

impl Table {
    /// Builds the table of `size` slots (a prime, at least the number of backends) for
    /// `backends` (any order; unique non-empty names; at least one weight above 0).
    pub fn build(size: u32, backends: &[Backend]) -> Result<Table, MaglevError> {
        let backends = validate(size, backends)?;
        let entries = if equal_weights(&backends) {
            fill_round_robin(size, &backends)
        } else {
            fill_weighted(size, &backends, &quotas(size, &backends))
        };
        let total_weight = backends.iter().map(|b| u64::from(b.weight)).sum();
        Ok(Table {
            size,
            backends,
            entries,
            total_weight,
        })
    }

    /// The number of slots `M`.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The backends in canonical order (sorted by name): the order table entries index.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// The backend index of every slot.
    pub fn entries(&self) -> &[u32] {
        &self.entries
    }

    /// The backend index for a flow hash (see [`crate::flow`]), via [`flow::slot`].
    #[inline]
    pub fn lookup(&self, hash: u32) -> u32 {
        self.entries[flow::slot(hash, self.size)]
    }

    /// The number of slots of each backend, in canonical order.
    pub fn entries_per_backend(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.backends.len()];
        for &e in &self.entries {
            counts[e as usize] += 1;
        }
        counts
    }

    /// The entries backend `index` should have: `M * weight / total weight`.
    pub fn expected_entries(&self, index: usize) -> f64 {
        f64::from(self.size) * f64::from(self.backends[index].weight) / self.total_weight as f64
    }

    /// Entry counts over the backends with weight > 0, and the largest error against weights.
    pub fn balance(&self) -> Balance {
        let counts = self.entries_per_backend();
        let (mut min, mut max, mut max_error) = (u32::MAX, 0u32, 0f64);
        for (i, (&c, b)) in counts.iter().zip(&self.backends).enumerate() {
            max_error = max_error.max((f64::from(c) - self.expected_entries(i)).abs());
            if b.weight > 0 {
                min = min.min(c);
                max = max.max(c);
            }
        }
        Balance {
            min,
            max,
            max_over_min: f64::from(max) / f64::from(min),
            max_error,
        }
    }

    /// The table's fingerprint (see [`Fingerprint`]); costs one pass over the table.
    pub fn fingerprint(&self) -> Fingerprint {
        let ids: Vec<u64> = self
            .backends
            .iter()
            .map(|b| hash64(SEED_FINGERPRINT, b.name.as_bytes()))
            .collect();
        let mut h = hash64(SEED_FINGERPRINT, &self.size.to_le_bytes());
        for &e in &self.entries {
            h = absorb(h, ids[e as usize]);
        }
        Fingerprint(fmix64(h ^ u64::from(self.size)))
    }
}

/// Checks the inputs and returns the backends in canonical order.
fn validate(size: u32, backends: &[Backend]) -> Result<Vec<Backend>, MaglevError> {
    if size > MAX_SIZE {
        return Err(MaglevError::TooLarge {
            size,
            max: MAX_SIZE,
        });
    }
    if !is_prime(size) {
        return Err(MaglevError::NotPrime { size });
    }
    if (size as usize) < backends.len() {
        return Err(MaglevError::SmallerThanBackends {
            size,
            backends: backends.len(),
        });
    }
    if backends.iter().any(|b| b.name.is_empty()) {
        return Err(MaglevError::EmptyName);
    }
    // Sort references (cheaper than moving strings), and not at all when already in order.
    let mut order: Vec<&Backend> = backends.iter().collect();
    if !order.windows(2).all(|p| p[0].name < p[1].name) {
        order.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    }
    if let Some(pair) = order.windows(2).find(|p| p[0].name == p[1].name) {
        return Err(MaglevError::DuplicateBackend {
            name: pair[0].name.clone(),
        });
    }
    if order.iter().all(|b| b.weight == 0) {
        return Err(MaglevError::NoActiveBackend {
            backends: order.len(),
        });
    }
    Ok(order.into_iter().cloned().collect())
}

/// Whether every backend with weight > 0 has the same weight.
fn equal_weights(backends: &[Backend]) -> bool {
    let mut active = backends.iter().filter(|b| b.weight > 0).map(|b| b.weight);
    let first = active.next();
    active.all(|w| Some(w) == first)
}

/// Each backend's number of slots: `floor(M * w / W)`, plus one for the `M - sum` backends with
/// the largest remainders (ties to the lower index), so every share is within one entry of exact.
pub(crate) fn quotas(size: u32, backends: &[Backend]) -> Vec<u32> {
    let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    let m = u64::from(size);
    let mut quotas = Vec::with_capacity(backends.len());
    let mut remainders = Vec::with_capacity(backends.len());
    for (i, b) in backends.iter().enumerate() {
        // M < 2^25 and w < 2^32, so the product fits in 64 bits.
        let exact = m * u64::from(b.weight);
        quotas.push((exact / total) as u32);
        if b.weight > 0 {
            remainders.push((exact % total, i));
        }
    }
    let assigned: u64 = quotas.iter().map(|&q| u64::from(q)).sum();
    let left = (m - assigned) as usize;
    remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(left) {
        quotas[i] += 1;
    }
    quotas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: usize) -> Vec<Backend> {
        (0..n)
            .map(|i| Backend::new(format!("2001:db8::{i:x}"), 1))
            .collect()
    }

    #[test]
    fn rejects_bad_inputs_with_data() {
        let two = named(2);
        assert_eq!(
            Table::build(65535, &two),
            Err(MaglevError::NotPrime { size: 65535 })
        );
        assert_eq!(
            Table::build(0, &two),
            Err(MaglevError::NotPrime { size: 0 })
        );
        assert_eq!(
            Table::build(1, &two),
            Err(MaglevError::NotPrime { size: 1 })
        );
        assert_eq!(
            Table::build(16_777_259, &two),
            Err(MaglevError::TooLarge {
                size: 16_777_259,
                max: MAX_SIZE
            })
        );
        assert_eq!(
            Table::build(7, &named(8)),
            Err(MaglevError::SmallerThanBackends {
                size: 7,
                backends: 8
            })
        );
        assert_eq!(
            Table::build(7, &[Backend::new("a", 0), Backend::new("b", 0)]),
            Err(MaglevError::NoActiveBackend { backends: 2 })
        );
        assert_eq!(
            Table::build(7, &[]),
            Err(MaglevError::NoActiveBackend { backends: 0 })
        );
        assert_eq!(
            Table::build(
                7,
                &[
                    Backend::new("b", 1),
                    Backend::new("a", 1),
                    Backend::new("b", 2)
                ]
            ),
            Err(MaglevError::DuplicateBackend { name: "b".into() })
        );
        assert_eq!(
            Table::build(7, &[Backend::new("", 1)]),
            Err(MaglevError::EmptyName)
        );
        let msg = Table::build(10, &two).unwrap_err().to_string();
        assert!(msg.contains("10") && msg.contains("not prime"), "{msg}");
    }

    #[test]
    fn quotas_are_largest_remainder() {
        let b = |w: &[u32]| -> Vec<Backend> {
            w.iter()
                .enumerate()
                .map(|(i, &w)| Backend::new(i.to_string(), w))
                .collect()
        };
        assert_eq!(quotas(7, &b(&[1, 1, 1])), vec![3, 2, 2]);
        assert_eq!(quotas(11, &b(&[1, 0, 2])), vec![4, 0, 7]);
        assert_eq!(quotas(13, &b(&[u32::MAX, 1])), vec![13, 0]);
        assert_eq!(quotas(5, &b(&[1, 1, 1, 1, 1])), vec![1; 5]);
    }

    #[test]
    fn weighted_path_equals_round_robin_for_equal_weights() {
        for (size, n) in [(7, 3), (251, 10), (4099, 64), (65537, 100)] {
            let backends = named(n);
            let q = quotas(size, &backends);
            assert_eq!(
                fill_round_robin(size, &backends),
                fill_weighted(size, &backends, &q)
            );
        }
    }

    #[test]
    fn balance_reports_counts_and_error() {
        let b = [
            Backend::new("a", 2),
            Backend::new("b", 1),
            Backend::new("c", 0),
        ];
        let t = Table::build(13, &b).unwrap();
        // Quotas: 26/3 -> 8 (+1, largest remainder), 13/3 -> 4, 0.
        assert_eq!(t.entries_per_backend(), vec![9, 4, 0]);
        let bal = t.balance();
        assert_eq!((bal.min, bal.max), (4, 9));
        assert!((bal.max_over_min - 2.25).abs() < 1e-12);
        assert!((bal.max_error - 1.0 / 3.0).abs() < 1e-12);
        assert!((t.expected_entries(0) - 26.0 / 3.0).abs() < 1e-12);
        assert_eq!(t.expected_entries(2), 0.0);
    }

    #[test]
    fn lookup_uses_flow_slot() {
        let t = Table::build(13, &named(3)).unwrap();
        for h in [0, 1, u32::MAX / 2, u32::MAX] {
            assert_eq!(t.lookup(h), t.entries()[flow::slot(h, 13)]);
        }
        assert_eq!(Fingerprint(0xab).to_string(), "00000000000000ab");
    }
}
