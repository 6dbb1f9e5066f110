//! What changes between two tables: the share of flows that move and each backend's gain and loss.
//!
//! Backends are matched by name. Shares are measured over the 2^32 flow hashes, so tables of
//! different sizes compare correctly: slot `s` of a table of size `M` serves the hashes `h` with
//! `floor(h * M / 2^32) = s` (see [`crate::flow::slot`]). For two tables of the same size that
//! is also a slot-by-slot comparison, whose counts are reported too.
use crate::table::Table;

/// Every flow hash: the unit in which shares are counted.
pub const HASH_SPACE: u64 = 1 << 32;

/// The change from one table to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub old_size: u32,
    pub new_size: u32,
    /// Flow hashes (out of [`HASH_SPACE`]) whose backend changes.
    pub moved: u64,
    /// Slots whose backend changes, when both tables have the same size.
    pub moved_slots: Option<u32>,
    /// Every backend of either table, sorted by name.
    pub backends: Vec<BackendDiff>,
}

/// One backend's side of a [`Diff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendDiff {
    pub name: String,
    /// Weight in the old table; `None` when the backend is new.
    pub old_weight: Option<u32>,
    /// Weight in the new table; `None` when the backend is removed.
    pub new_weight: Option<u32>,
    pub old_entries: u32,
    pub new_entries: u32,
    /// Flow hashes that come to this backend from another one.
    pub gained: u64,
    /// Flow hashes that leave this backend for another one.
    pub lost: u64,
}

impl Diff {
    /// The share (0..=1) of flows whose backend changes.
    pub fn moved_share(&self) -> f64 {
        self.moved as f64 / HASH_SPACE as f64
    }
}

impl BackendDiff {
    /// The share (0..=1) of all flows that come to this backend from another one.
    pub fn gained_share(&self) -> f64 {
        self.gained as f64 / HASH_SPACE as f64
    }

    /// The share (0..=1) of all flows that leave this backend for another one.
    pub fn lost_share(&self) -> f64 {
        self.lost as f64 / HASH_SPACE as f64
    }
}

/// The first flow hash served by slot `s` of a table of `size` slots: `ceil(s * 2^32 / size)`.
fn slot_start(s: u32, size: u32) -> u64 {
    (u64::from(s) * HASH_SPACE).div_ceil(u64::from(size))
}

/// Compares `old` with `new`.
pub fn diff(old: &Table, new: &Table) -> Diff {
    // Both backend lists are sorted by name: merge them into one list and two index maps.
    let (ob, nb) = (old.backends(), new.backends());
    let mut backends = Vec::with_capacity(ob.len().max(nb.len()));
    let mut old_to = vec![0usize; ob.len()];
    let mut new_to = vec![0usize; nb.len()];
    let (mut i, mut j) = (0, 0);
    while i < ob.len() || j < nb.len() {
        let order = match (ob.get(i), nb.get(j)) {
            (Some(o), Some(n)) => o.name.cmp(&n.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let (name, old_weight, new_weight) = match order {
            std::cmp::Ordering::Less => (&ob[i].name, Some(ob[i].weight), None),
            std::cmp::Ordering::Greater => (&nb[j].name, None, Some(nb[j].weight)),
            std::cmp::Ordering::Equal => (&ob[i].name, Some(ob[i].weight), Some(nb[j].weight)),
        };
        if order.is_le() {
            old_to[i] = backends.len();
            i += 1;
        }
        if order.is_ge() {
            new_to[j] = backends.len();
            j += 1;
        }
        backends.push(BackendDiff {
            name: name.clone(),
            old_weight,
            new_weight,
            old_entries: 0,
            new_entries: 0,
            gained: 0,
            lost: 0,
        });
    }
    for &e in old.entries() {
        backends[old_to[e as usize]].old_entries += 1;
    }
    for &e in new.entries() {
        backends[new_to[e as usize]].new_entries += 1;
    }

    // Walk the hash space, cutting it at every slot boundary of either table.
    let (om, nm) = (old.size(), new.size());
    let (oe, ne) = (old.entries(), new.entries());
    let (mut s, mut t, mut at, mut moved, mut moved_slots) = (0u32, 0u32, 0u64, 0u64, 0u32);
    while at < HASH_SPACE {
        let (o_end, n_end) = (slot_start(s + 1, om), slot_start(t + 1, nm));
        let end = o_end.min(n_end);
        let (from, to) = (
            old_to[oe[s as usize] as usize],
            new_to[ne[t as usize] as usize],
        );
        if from != to {
            moved += end - at;
            backends[from].lost += end - at;
            backends[to].gained += end - at;
            if om == nm {
                moved_slots += 1;
            }
        }
        at = end;
        s += u32::from(o_end == end);
        t += u32::from(n_end == end);
    }
    Diff {
        old_size: om,
        new_size: nm,
        moved,
        moved_slots: (om == nm).then_some(moved_slots),
        backends,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;

    fn table(size: u32, names: &[&str]) -> Table {
        let b: Vec<Backend> = names.iter().map(|n| Backend::new(*n, 1)).collect();
        Table::build(size, &b).unwrap()
    }

    #[test]
    fn identical_tables_move_nothing() {
        let a = table(251, &["a", "b", "c"]);
        let d = diff(&a, &a);
        assert_eq!((d.moved, d.moved_slots), (0, Some(0)));
        assert_eq!(d.backends.len(), 3);
        assert!(d
            .backends
            .iter()
            .all(|b| b.gained == 0 && b.lost == 0 && b.old_entries == b.new_entries));
    }

    #[test]
    fn removed_backend_loses_exactly_its_share_and_counts_add_up() {
        let old = table(251, &["a", "b", "c", "d"]);
        let new = table(251, &["a", "c", "d"]);
        let d = diff(&old, &new);
        let b = d.backends.iter().find(|b| b.name == "b").unwrap();
        assert_eq!(
            (b.old_weight, b.new_weight, b.new_entries, b.gained),
            (Some(1), None, 0, 0)
        );
        assert_eq!(b.old_entries, 63);
        let slots = d.moved_slots.unwrap();
        assert!(slots >= b.old_entries);
        assert_eq!(
            slots,
            (0..251)
                .filter(|&s| old.backends()[old.entries()[s] as usize].name
                    != new.backends()[new.entries()[s] as usize].name)
                .count() as u32
        );
        assert_eq!(d.backends.iter().map(|b| b.gained).sum::<u64>(), d.moved);
        assert_eq!(d.backends.iter().map(|b| b.lost).sum::<u64>(), d.moved);
        assert!(b.lost <= d.moved);
    }

    #[test]
    fn different_sizes_compare_over_hash_space() {
        let old = table(13, &["a"]);
        let new = table(17, &["b"]);
        let d = diff(&old, &new);
        assert_eq!((d.moved, d.moved_slots), (HASH_SPACE, None));
        let same = diff(&table(13, &["a"]), &table(17, &["a"]));
        assert_eq!(same.moved, 0);
        // Brute force over a sample of hashes agrees with the interval walk.
        let (o, n) = (table(13, &["a", "b", "c"]), table(17, &["a", "b", "d"]));
        let d = diff(&o, &n);
        let name = |t: &Table, h: u32| t.backends()[t.lookup(h) as usize].name.clone();
        let step = 4099u64;
        let sampled = (0..HASH_SPACE)
            .step_by(step as usize)
            .filter(|&h| name(&o, h as u32) != name(&n, h as u32))
            .count() as f64;
        let estimate = sampled * step as f64 / HASH_SPACE as f64;
        assert!(
            (estimate - d.moved_share()).abs() < 0.001,
            "{estimate} vs {}",
            d.moved_share()
        );
    }
}
