//! What changes between two tables: which flows move, the share that moves and each backend's gain and loss.
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

    /// The old table's slots of the backends the new one no longer has: the least that moves.
    pub fn removed_entries(&self) -> u32 {
        self.backends
            .iter()
            .filter(|b| b.new_weight.is_none())
            .map(|b| b.old_entries)
            .sum()
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

/// One stretch of flow hashes whose backend changes: served by `old_slot` (backend `from`, an
/// index into the old table's backends) before and by `new_slot` (backend `to`, an index into
/// the new table's backends) after. For tables of the same size each moved slot is one `Move`
/// with `old_slot == new_slot`, covering exactly that slot's hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// First flow hash of the stretch.
    pub start: u64,
    /// One past its last flow hash.
    pub end: u64,
    pub old_slot: u32,
    pub new_slot: u32,
    pub from: u32,
    pub to: u32,
}

impl Move {
    /// Flow hashes in the stretch.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Never true: a stretch holds at least one flow hash.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// The backends of two tables merged by name (sorted), with each table's index into the merge.
struct Merged {
    backends: Vec<BackendDiff>,
    old_to: Vec<usize>,
    new_to: Vec<usize>,
}

fn merge(old: &Table, new: &Table) -> Merged {
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
    Merged {
        backends,
        old_to,
        new_to,
    }
}

/// Iterator of [`moves`]: walks the hash space, cut at every slot boundary of either table.
pub struct Moves<'a> {
    old: &'a Table,
    new: &'a Table,
    old_to: Vec<usize>,
    new_to: Vec<usize>,
    s: u32,
    t: u32,
    at: u64,
}

impl<'a> Moves<'a> {
    /// A walk from the first flow hash; `old_to` / `new_to` map each table's backends to one
    /// shared numbering (by name), as [`merge`] makes them.
    fn new(old: &'a Table, new: &'a Table, old_to: Vec<usize>, new_to: Vec<usize>) -> Self {
        Moves {
            old,
            new,
            old_to,
            new_to,
            s: 0,
            t: 0,
            at: 0,
        }
    }
}

impl Iterator for Moves<'_> {
    type Item = Move;

    fn next(&mut self) -> Option<Move> {
        let (om, nm) = (self.old.size(), self.new.size());
        let (oe, ne) = (self.old.entries(), self.new.entries());
        while self.at < HASH_SPACE {
            let (o_end, n_end) = (slot_start(self.s + 1, om), slot_start(self.t + 1, nm));
            let end = o_end.min(n_end);
            let (s, t, start) = (self.s, self.t, self.at);
            let (from, to) = (oe[s as usize], ne[t as usize]);
            self.at = end;
            self.s += u32::from(o_end == end);
            self.t += u32::from(n_end == end);
            if self.old_to[from as usize] != self.new_to[to as usize] {
                return Some(Move {
                    start,
                    end,
                    old_slot: s,
                    new_slot: t,
                    from,
                    to,
                });
            }
        }
        None
    }
}

/// Which flows move from `old` to `new`, in hash order: every stretch of flow hashes whose
/// backend (matched by name) changes.
pub fn moves<'a>(old: &'a Table, new: &'a Table) -> Moves<'a> {
    let Merged { old_to, new_to, .. } = merge(old, new);
    Moves::new(old, new, old_to, new_to)
}

/// Compares `old` with `new`.
pub fn diff(old: &Table, new: &Table) -> Diff {
    let Merged {
        mut backends,
        old_to,
        new_to,
    } = merge(old, new);
    for &e in old.entries() {
        backends[old_to[e as usize]].old_entries += 1;
    }
    for &e in new.entries() {
        backends[new_to[e as usize]].new_entries += 1;
    }
    let (om, nm) = (old.size(), new.size());
    let mut walk = Moves::new(old, new, old_to, new_to);
    let (mut moved, mut moved_slots) = (0u64, 0u32);
    let mut lost = vec![0u64; old.backends().len()];
    let mut gained = vec![0u64; new.backends().len()];
    for m in walk.by_ref() {
        moved += m.len();
        lost[m.from as usize] += m.len();
        gained[m.to as usize] += m.len();
        moved_slots += 1;
    }
    for (i, l) in lost.into_iter().enumerate() {
        backends[walk.old_to[i]].lost += l;
    }
    for (j, g) in gained.into_iter().enumerate() {
        backends[walk.new_to[j]].gained += g;
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

    /// Same size: the moves are exactly the slots whose backend name changes, one each.
    #[test]
    fn moves_list_the_slots_that_change() {
        let old = table(251, &["a", "b", "c", "d"]);
        let new = table(251, &["a", "c", "d", "e"]);
        let listed: Vec<u32> = moves(&old, &new).map(|m| m.old_slot).collect();
        fn name(t: &Table, s: u32) -> &str {
            &t.backends()[t.entries()[s as usize] as usize].name
        }
        let changed: Vec<u32> = (0..251)
            .filter(|&s| name(&old, s) != name(&new, s))
            .collect();
        assert!(!changed.is_empty());
        assert_eq!(listed, changed);
        for m in moves(&old, &new) {
            assert_eq!(m.old_slot, m.new_slot);
            assert_eq!(
                (m.start, m.end),
                (slot_start(m.old_slot, 251), slot_start(m.old_slot + 1, 251))
            );
            assert_eq!(
                old.backends()[m.from as usize].name,
                *name(&old, m.old_slot)
            );
            assert_eq!(new.backends()[m.to as usize].name, name(&new, m.new_slot));
        }
        assert_eq!(diff(&old, &new).moved_slots, Some(changed.len() as u32));
    }

    /// Different sizes: the stretches are ordered, disjoint, cover exactly the hashes whose
    /// backend changes (checked on a sample), and add up to `moved`.
    #[test]
    fn moves_cover_the_moved_hashes_across_sizes() {
        let (o, n) = (table(13, &["a", "b", "c"]), table(17, &["a", "b", "d"]));
        let all: Vec<Move> = moves(&o, &n).collect();
        assert!(all.windows(2).all(|w| w[0].end <= w[1].start));
        assert!(all.iter().all(|m| !m.is_empty()));
        assert_eq!(all.iter().map(Move::len).sum::<u64>(), diff(&o, &n).moved);
        let name = |t: &Table, h: u32| t.backends()[t.lookup(h) as usize].name.clone();
        for h in (0..HASH_SPACE).step_by(65_521) {
            let inside = all.iter().any(|m| (m.start..m.end).contains(&h));
            assert_eq!(inside, name(&o, h as u32) != name(&n, h as u32), "hash {h}");
        }
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
