//! What the generator learns from the packets that come back: a latency histogram, counts per
//! backend, and each flow's backend history (flow affinity).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use traffic::BackendKey;

/// Sub-buckets per power of two: values are kept to within 1/64 (about 1.6%).
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;

/// A log-linear histogram of nanoseconds (HDR-style), fixed size, no allocation per sample.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; ((64 - SUB_BITS as usize) + 1) * SUB as usize],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros(); // >= SUB_BITS
        let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
        ((exp - SUB_BITS + 1) as u64 * SUB + sub) as usize
    }

    /// The smallest value that falls in bucket `i`.
    fn lower(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let exp = i / SUB + u64::from(SUB_BITS) - 1;
        (SUB | (i % SUB)) << (exp - u64::from(SUB_BITS))
    }

    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile q (0..=1): the lower bound of its bucket; None when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::lower(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Backend numbering: small dense ids for the per-flow arrays.
#[derive(Default)]
pub struct Backends {
    ids: HashMap<BackendKey, u16>,
    keys: Vec<BackendKey>,
    pub packets: Vec<u64>,
}

impl Backends {
    /// The id of `key` (1-based; 0 means "none"), numbering a new key on first sight.
    pub fn id(&mut self, key: BackendKey) -> u16 {
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        self.keys.push(key);
        self.packets.push(0);
        let id = self.keys.len() as u16;
        self.ids.insert(key, id);
        id
    }

    pub fn key(&self, id: u16) -> Option<BackendKey> {
        self.keys.get(usize::from(id).checked_sub(1)?).copied()
    }

    pub fn per_backend(&self) -> BTreeMap<String, u64> {
        self.keys
            .iter()
            .zip(&self.packets)
            .map(|(k, n)| (k.to_string(), *n))
            .collect()
    }
}

/// Each flow's first and current backend, and the moves between backends.
pub struct Affinity {
    /// [first, last] backend id per flow (0 = not seen yet).
    flows: Vec<[u16; 2]>,
    /// Backends a flow may move away from (e.g. ones removed from the service).
    allowed_from: BTreeSet<BackendKey>,
    pub flows_seen: u64,
    /// Flows that changed backend at least once.
    pub flows_moved: u64,
    /// Changes of backend, and those away from a backend not in `allowed_from`.
    pub moves: u64,
    pub moves_disallowed: u64,
    moved: Vec<bool>,
    pub disallowed_examples: Vec<(u32, BackendKey, BackendKey)>,
}

impl Affinity {
    pub fn new(flows: u32, allowed_from: BTreeSet<BackendKey>) -> Self {
        Self {
            flows: vec![[0, 0]; flows as usize],
            allowed_from,
            flows_seen: 0,
            flows_moved: 0,
            moves: 0,
            moves_disallowed: 0,
            moved: vec![false; flows as usize],
            disallowed_examples: Vec::new(),
        }
    }

    /// Notes that `flow` arrived at backend `id`; flows outside the range are ignored.
    pub fn see(&mut self, flow: u32, id: u16, backends: &Backends) {
        let Some(slot) = self.flows.get_mut(flow as usize) else {
            return;
        };
        let [first, last] = *slot;
        if first == 0 {
            *slot = [id, id];
            self.flows_seen += 1;
            return;
        }
        if last == id {
            return;
        }
        slot[1] = id;
        self.moves += 1;
        if !self.moved[flow as usize] {
            self.moved[flow as usize] = true;
            self.flows_moved += 1;
        }
        let (from, to) = (backends.key(last), backends.key(id));
        if let (Some(from), Some(to)) = (from, to) {
            if !self.allowed_from.contains(&from) {
                self.moves_disallowed += 1;
                if self.disallowed_examples.len() < 10 {
                    self.disallowed_examples.push((flow, from, to));
                }
            }
        }
    }

    /// (flow, first, last) for every flow seen.
    pub fn dump<'a>(
        &'a self,
        backends: &'a Backends,
    ) -> impl Iterator<Item = (u32, BackendKey, BackendKey)> + 'a {
        self.flows
            .iter()
            .enumerate()
            .filter_map(|(flow, [first, last])| {
                Some((flow as u32, backends.key(*first)?, backends.key(*last)?))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_a_bucket() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 10);
        }
        for (q, want) in [(0.5, 500_000.0), (0.99, 990_000.0), (0.999, 999_000.0)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), 1_000_000);
        assert_eq!(h.count(), 100_000);
        assert_eq!(Histogram::default().quantile(0.5), None);
        for v in [0, 1, 63, 64, 65, 1000, u64::MAX / 2] {
            assert!(Histogram::lower(Histogram::index(v)) <= v, "{v}");
        }
    }

    #[test]
    fn affinity_counts_moves_and_only_allows_them_away_from_listed_backends() {
        let mut b = Backends::default();
        let k = |s: &str| BackendKey::Ip(s.parse().unwrap());
        let (one, two, gone) = (
            b.id(k("203.0.113.1")),
            b.id(k("203.0.113.2")),
            b.id(k("203.0.113.9")),
        );
        let mut a = Affinity::new(10, [k("203.0.113.9")].into());
        a.see(0, one, &b);
        a.see(0, one, &b);
        a.see(1, gone, &b);
        a.see(1, two, &b); // away from a removed backend: allowed
        a.see(2, one, &b);
        a.see(2, two, &b); // away from a surviving one: not allowed
        a.see(99, one, &b); // out of range: ignored
        assert_eq!(
            (a.flows_seen, a.flows_moved, a.moves, a.moves_disallowed),
            (3, 2, 2, 1)
        );
        assert_eq!(
            a.disallowed_examples,
            vec![(2, k("203.0.113.1"), k("203.0.113.2"))]
        );
        let dump: Vec<_> = a.dump(&b).collect();
        assert_eq!(dump[1], (1, k("203.0.113.9"), k("203.0.113.2")));
        assert_eq!(dump.len(), 3);
    }
}
