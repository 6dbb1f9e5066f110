//! How a table's slots are filled: each backend's walk through its permutation (`Cursor`), the
//! slots taken so far (`Filler`: a bitset probes read, the endgame's list of empty slots, the
//! ranked lists for few backends), and the two orders of turns, round robin for equal weights
//! and the weighted one (a bucket sort of the turns' virtual times). `table` validates, sets
//! the quotas and calls one of the two.
use crate::backend::Backend;
use crate::table::permutation;

/// A backend's walk through its permutation: the next candidate slot, the step, and the step's
/// inverse modulo M (0 until the endgame needs it).
#[derive(Clone, Copy)]
struct Cursor {
    pos: u32,
    skip: u32,
    inverse: u32,
}

impl Cursor {
    fn new(name: &str, size: u32) -> Cursor {
        let (pos, skip) = permutation(name, size);
        Cursor {
            pos,
            skip,
            inverse: 0,
        }
    }
}

/// `x` with `x * a = 1 (mod m)`, for a prime `m` and `0 < a < m` (extended Euclid).
fn inverse_mod(a: u32, m: u32) -> u32 {
    let (mut r0, mut r1) = (i64::from(m), i64::from(a));
    let (mut t0, mut t1) = (0i64, 1i64);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(i64::from(m)) as u32
}

/// Endgame switch: once at most `ENDGAME_FACTOR * sqrt(M)` slots are empty, a claim scans the
/// list of empty slots (cost: the number of empty slots) instead of walking the permutation
/// (expected cost: M / empty slots), which is where most of a plain build's time goes.
const ENDGAME_FACTOR: u32 = 1;

/// The table being filled: entries, plus a bitset of taken slots that probing reads (M/8 bytes,
/// small enough to stay in cache where the entries would not).
struct Filler {
    size: u32,
    entries: Vec<u32>,
    taken: Vec<u64>,
    /// Empty slots left.
    empty: u32,
    /// At or below this many empty slots, claims scan `empty_list`.
    endgame: u32,
    /// The empty slots, in no order (filled when the endgame starts).
    empty_list: Vec<u32>,
    /// `floor((2^64 - 1) / M)`, for Barrett reduction modulo M.
    barrett: u64,
}

impl Filler {
    fn new(size: u32) -> Filler {
        let endgame = (f64::from(size).sqrt() as u32)
            .saturating_mul(ENDGAME_FACTOR)
            .min(size - 1);
        Filler {
            size,
            entries: vec![0; size as usize],
            taken: vec![0; (size as usize).div_ceil(64)],
            empty: size,
            endgame,
            empty_list: Vec::new(),
            barrett: u64::MAX / u64::from(size),
        }
    }

    /// Gives `backend` the first empty slot of its permutation from `cursor` on (one must exist).
    #[inline(always)]
    fn claim(&mut self, cursor: &mut Cursor, backend: u32) {
        let c = if self.empty > self.endgame {
            self.walk(cursor)
        } else {
            self.scan(cursor)
        };
        self.take(c, cursor, backend);
    }

    /// Whether slot `c` is taken.
    #[inline(always)]
    fn is_taken(&self, c: u32) -> bool {
        self.word(c) & (1u64 << (c & 63)) != 0
    }

    /// The bitset word holding slot `c < M`, read without a bounds check (the probe loops run it
    /// hundreds of thousands of times per build; the check and its branch were a sixth of them).
    #[inline(always)]
    fn word(&self, c: u32) -> u64 {
        let w = (c >> 6) as usize;
        debug_assert!(c < self.size && w < self.taken.len());
        // SAFETY: every slot passed here is below M: permutation offsets are `% M`, `step`
        // keeps results below M for inputs below M, and the empty list holds slots below M;
        // `taken` has `ceil(M / 64)` words, so `c / 64` indexes one of them.
        unsafe { *self.taken.get_unchecked(w) }
    }

    /// The first empty slot from `cursor` on, by probing the bitset slot after slot.
    #[inline(always)]
    fn walk(&self, cursor: &Cursor) -> u32 {
        let mut c = cursor.pos;
        while self.is_taken(c) {
            c = self.step(c, cursor.skip);
        }
        c
    }

    /// `(c + skip) % M` for `c, skip < M <= 2^24`: never overflows, and one subtraction replaces `%`.
    #[inline(always)]
    fn step(&self, c: u32, skip: u32) -> u32 {
        let n = c + skip;
        // Below M, `n - M` wraps above `n`; from M on it is the smaller: a min (cmp and cmov,
        // four instructions with the two subtractions) instead of a compare, select and subtract.
        n.min(n.wrapping_sub(self.size))
    }

    /// Claims for the `LANES` backends of `group`, in order, exactly as `claim` one after the
    /// other would. First each walk takes `probes` steps, all lanes together and without a
    /// branch: a lane stays on the first slot it finds empty (slots only fill up, so that is its
    /// answer unless an earlier lane of the group takes it). Then, lane by lane, a short checked
    /// walk from there finishes the rare walk that needs more steps or lost its slot. This trades
    /// a few wasted probes for the mispredicted branch that ends every variable-length walk.
    #[inline(always)]
    fn claim_lanes<const L: usize>(&mut self, group: &mut [(Cursor, u32); L], probes: u32) {
        let mut pos: [u32; L] = std::array::from_fn(|g| group[g].0.pos);
        let skip: [u32; L] = std::array::from_fn(|g| group[g].0.skip);
        for _ in 0..probes {
            for g in 0..L {
                let word = self.word(pos[g]);
                let busy = word & (1u64 << (pos[g] & 63)) != 0;
                let next = self.step(pos[g], skip[g]);
                // A select (cmov), not a branch: `next` if the slot is taken, else stay.
                pos[g] = if busy { next } else { pos[g] };
            }
        }
        for (g, (cursor, backend)) in group.iter_mut().enumerate() {
            let mut c = pos[g];
            while self.is_taken(c) {
                c = self.step(c, skip[g]);
            }
            self.take(c, cursor, *backend);
        }
    }

    /// Takes slot `c` for `backend`, whose cursor moves past it.
    #[inline(always)]
    fn take(&mut self, c: u32, cursor: &mut Cursor, backend: u32) {
        self.taken[(c >> 6) as usize] |= 1u64 << (c & 63);
        self.entries[c as usize] = backend;
        cursor.pos = self.step(c, cursor.skip);
        self.empty -= 1;
        if self.empty == self.endgame {
            self.start_endgame();
        }
    }

    /// The first empty slot from `cursor` on, as the empty slot fewest steps away: slot `s` is
    /// `(s - pos) * skip^-1 mod M` steps from `pos`. Removes it from the list.
    #[cold]
    fn scan(&mut self, cursor: &mut Cursor) -> u32 {
        let pos = cursor.pos;
        if cursor.inverse == 0 {
            cursor.inverse = inverse_mod(cursor.skip, self.size);
        }
        let inv = u64::from(cursor.inverse);
        let (mut best, mut at) = (u64::MAX, 0);
        for (k, &s) in self.empty_list.iter().enumerate() {
            let steps = self.steps(s, pos, inv);
            if steps < best {
                (best, at) = (steps, k);
            }
        }
        self.empty_list.swap_remove(at)
    }

    /// How many steps of `skip` (whose inverse modulo M is `inv`) lead from slot `pos` to slot
    /// `s`: `(s - pos) * inv mod M`, by Barrett reduction, without a branch.
    #[inline(always)]
    fn steps(&self, s: u32, pos: u32, inv: u64) -> u64 {
        let m = self.size;
        // `s - pos` modulo M: below M when `s >= pos`, else wrapped above `2^32 - M`, where
        // adding M brings it back below M (the same min trick as `step`).
        let d = s.wrapping_sub(pos);
        let d = d.min(d.wrapping_add(m));
        let (x, m64) = (u64::from(d) * inv, u64::from(m));
        let q = ((u128::from(x) * u128::from(self.barrett)) >> 64) as u64;
        // x < 2^48, so the Barrett quotient is at most one short: one correction suffices.
        let steps = x - q * m64;
        steps.min(steps.wrapping_sub(m64))
    }

    #[cold]
    fn start_endgame(&mut self) {
        self.empty_list = self.empty_slots();
    }
}

/// How many empty slots are left when [`Filler::finish_ranked`] takes over from the walks and
/// the endgame's scan, or 0 (never). The lists cost about `N x empty` ranks up front, the walks
/// and scans they replace grow with `M`; measured (`build_ratio`, alternated with the walks),
/// they pay from `M / (16 N)` empty slots while that is above the endgame's `sqrt(M)`, so for
/// few backends (N < 16 at M = 65537): at N = 100 the endgame's scan of 256 slots is faster.
fn ranked_from(size: u32, backends: usize, endgame: u32) -> u32 {
    let at = size / RANKED_FACTOR.saturating_mul(backends.max(1) as u32);
    if at > endgame.saturating_add(backends as u32) {
        at
    } else {
        0
    }
}

const RANKED_FACTOR: u32 = 16;

impl Filler {
    /// Fills the rest of the table, the claims in `turns` order (each a cursor's index and its
    /// backend): a backend's first claim here sorts the slots empty now by its steps to them,
    /// and every claim pops its list until a slot not taken since: the same first empty slot a
    /// walk would find (slots only fill, and every slot empty at its first claim is on its
    /// list), without probing the taken slots in between.
    #[cold]
    fn finish_ranked(
        mut self,
        cursors: &[Cursor],
        turns: impl Iterator<Item = (usize, u32)>,
    ) -> Vec<u32> {
        let empties = self.empty_slots();
        // One bit per step count: the ranks of one backend are distinct (its permutation is a
        // bijection), so setting their bits and reading them back in order sorts them. A
        // second level marks the words in use, so reading back skips the empty ones.
        let mut order = vec![0u64; (self.size as usize).div_ceil(64)];
        let mut used = vec![0u64; order.len().div_ceil(64)];
        let mut lists = Vec::new();
        // Each cursor's next entry in `lists`, once its list is there.
        let mut heads: Vec<Option<usize>> = vec![None; cursors.len()];
        for (g, backend) in turns {
            let head = match heads[g] {
                Some(head) => head,
                None => {
                    let start = lists.len();
                    self.rank(&cursors[g], &empties, &mut order, &mut used, &mut lists);
                    start
                }
            };
            let mut at = head;
            while self.is_taken(lists[at]) {
                at += 1;
            }
            let c = lists[at];
            heads[g] = Some(at + 1);
            self.taken[(c >> 6) as usize] |= 1u64 << (c & 63);
            self.entries[c as usize] = backend;
            self.empty -= 1;
            if self.empty == 0 {
                break;
            }
        }
        self.entries
    }

    /// Appends `slots` to `lists` in the order `cursor`'s walk reaches them; `order` and `used`
    /// are all zero before and after.
    fn rank(
        &self,
        cursor: &Cursor,
        slots: &[u32],
        order: &mut [u64],
        used: &mut [u64],
        lists: &mut Vec<u32>,
    ) {
        let inv = u64::from(inverse_mod(cursor.skip, self.size));
        for &s in slots {
            let r = self.steps(s, cursor.pos, inv);
            order[(r >> 6) as usize] |= 1u64 << (r & 63);
            used[(r >> 12) as usize] |= 1u64 << ((r >> 6) & 63);
        }
        let skip = u64::from(cursor.skip);
        let pos = u64::from(cursor.pos);
        lists.reserve(slots.len());
        for (u, words) in used.iter_mut().enumerate() {
            let mut words = std::mem::take(words);
            while words != 0 {
                let w = u * 64 + words.trailing_zeros() as usize;
                let mut left = std::mem::take(&mut order[w]);
                while left != 0 {
                    let r = (w as u64) * 64 + u64::from(left.trailing_zeros());
                    lists.push(self.reduce(pos + r * skip));
                    left &= left - 1;
                }
                words &= words - 1;
            }
        }
    }

    /// The empty slots, in slot order.
    fn empty_slots(&self) -> Vec<u32> {
        let mut slots = Vec::with_capacity(self.empty as usize);
        for (w, &bits) in self.taken.iter().enumerate() {
            let mut free = !bits;
            while free != 0 {
                let s = (w as u32) * 64 + free.trailing_zeros();
                if s < self.size {
                    slots.push(s);
                }
                free &= free - 1;
            }
        }
        slots
    }

    /// `x mod M` for `x < 2^50`, by Barrett reduction (at most one correction).
    #[inline(always)]
    fn reduce(&self, x: u64) -> u32 {
        let m = u64::from(self.size);
        let q = ((u128::from(x) * u128::from(self.barrett)) >> 64) as u64;
        let r = x - q * m;
        r.min(r.wrapping_sub(m)) as u32
    }
}

/// Walks per lockstep group in [`Filler::claim_lanes`].
const LANES: usize = 4;

/// Equal weights: the paper's loop, every backend with weight > 0 in turn until the table is full.
pub(crate) fn fill_round_robin(size: u32, backends: &[Backend]) -> Vec<u32> {
    let mut turns: Vec<(Cursor, u32)> = backends
        .iter()
        .enumerate()
        .filter(|(_, b)| b.weight > 0)
        .map(|(i, b)| (Cursor::new(&b.name, size), i as u32))
        .collect();
    let mut filler = Filler::new(size);
    // Lockstep groups until the table is 31/32 full; past that, walks are long enough that
    // their ends are rare, and the lockstep's fixed probe count would waste more than it saves.
    let lanes_until = (size / 32).max(filler.endgame + LANES as u32);
    let ranked_at = ranked_from(size, turns.len(), filler.endgame);
    loop {
        if filler.empty <= ranked_at {
            let cursors: Vec<Cursor> = turns.iter().map(|t| t.0).collect();
            let order = turns.iter().enumerate().map(|(g, t)| (g, t.1)).cycle();
            return filler.finish_ranked(&cursors, order);
        }
        let mut groups = turns.chunks_exact_mut(LANES);
        for chunk in &mut groups {
            if filler.empty > lanes_until {
                if let Ok(group) = <&mut [(Cursor, u32); LANES]>::try_from(&mut *chunk) {
                    // The mean walk is M / empty probes; one more lets most walks end in lockstep.
                    filler.claim_lanes(group, size / filler.empty + 1);
                    continue;
                }
            }
            for (cursor, index) in chunk.iter_mut() {
                filler.claim(cursor, *index);
                if filler.empty == 0 {
                    return filler.entries;
                }
            }
        }
        let rest = groups.into_remainder();
        // The last N mod LANES backends walk in a narrower lockstep group of their own.
        let probes = size / filler.empty + 1;
        if filler.empty > lanes_until && claim_rest(&mut filler, rest, probes) {
            continue;
        }
        for (cursor, index) in rest {
            filler.claim(cursor, *index);
            if filler.empty == 0 {
                return filler.entries;
            }
        }
    }
}

const _: () = assert!(LANES == 4, "claim_rest covers the remainders 1 to 3");

/// [`Filler::claim_lanes`] for the 1 to `LANES - 1` backends left after the full groups;
/// false (nothing claimed) for any other count.
fn claim_rest(filler: &mut Filler, rest: &mut [(Cursor, u32)], probes: u32) -> bool {
    if let Ok(group) = <&mut [(Cursor, u32); 1]>::try_from(&mut *rest) {
        filler.claim_lanes(group, probes);
    } else if let Ok(group) = <&mut [(Cursor, u32); 2]>::try_from(&mut *rest) {
        filler.claim_lanes(group, probes);
    } else if let Ok(group) = <&mut [(Cursor, u32); 3]>::try_from(&mut *rest) {
        filler.claim_lanes(group, probes);
    } else {
        return false;
    }
    true
}

/// Any weights: turns in virtual-time order (see [`turn_order`]), each backend stopping at its
/// quota.
pub(crate) fn fill_weighted(size: u32, backends: &[Backend], quotas: &[u32]) -> Vec<u32> {
    let mut cursors: Vec<Cursor> = backends
        .iter()
        .map(|b| Cursor::new(&b.name, size))
        .collect();
    let mut filler = Filler::new(size);
    let active = quotas.iter().filter(|&&q| q > 0).count();
    let ranked_at = ranked_from(size, active, filler.endgame);
    // The quotas sum to M, so the table is full after the last turn.
    let mut turns = turn_order(size, backends, quotas).into_iter();
    while let Some(turn) = turns.next() {
        if filler.empty <= ranked_at {
            let rest = std::iter::once(turn).chain(turns);
            let rest = rest.map(|t| (t.backend as usize, t.backend));
            return filler.finish_ranked(&cursors, rest);
        }
        filler.claim(&mut cursors[turn.backend as usize], turn.backend);
    }
    filler.entries
}

/// Backend `backend`'s `k`-th turn, at virtual time `k / weight`.
#[derive(Clone, Copy, Default)]
struct Turn {
    backend: u32,
    k: u32,
}

/// Every turn of every backend (`quotas[i]` of backend `i`), earliest time first, ties to the
/// lower index: a bucket sort on `floor(k x W / w)` (W the total weight; at most M, since a
/// quota is at most `M x w / W + 1`), then each bucket sorted exactly. A bucket is 1/W of
/// virtual time wide and a backend's turns are 1/w apart, so a bucket holds at most one turn per
/// backend; M turns over M + 1 buckets, about one each. Linear, where a heap of turns cost
/// `log N` compares of two products per claim (78% of a weighted build at N=1000). Takes 12
/// bytes a slot while it runs (three times the table: 200 MB at the largest M).
fn turn_order(size: u32, backends: &[Backend], quotas: &[u32]) -> Vec<Turn> {
    let buckets = size as usize + 1;
    // How many turns fall in each bucket, then (prefix sums) where each bucket ends.
    let mut ends = vec![0u32; buckets];
    turns_backwards(backends, quotas, buckets, |_, bucket| ends[bucket] += 1);
    for i in 1..ends.len() {
        ends[i] += ends[i - 1];
    }
    // Stable placement from each bucket's end backwards, the turns in reverse (backend, k)
    // order: each bucket ends up in (backend, k) order, and `ends[b]` becomes its start.
    let mut order = vec![Turn::default(); size as usize];
    turns_backwards(backends, quotas, buckets, |turn, bucket| {
        ends[bucket] -= 1;
        order[ends[bucket] as usize] = turn;
    });
    let weight = |t: &Turn| u64::from(backends[t.backend as usize].weight);
    for (b, &start) in ends.iter().enumerate() {
        let end = ends.get(b + 1).map_or(order.len(), |&e| e as usize);
        let bucket = &mut order[start as usize..end];
        if bucket.len() > 1 {
            // `k / w` against `k' / w'` as `k x w'` against `k' x w` (below 2^56).
            bucket.sort_unstable_by(|x, y| {
                let this = u64::from(x.k) * weight(y);
                let that = u64::from(y.k) * weight(x);
                this.cmp(&that).then(x.backend.cmp(&y.backend))
            });
        }
    }
    order
}

/// Calls `f` with every turn and its bucket `floor(k x W / w)`, in reverse (backend, k) order.
fn turns_backwards(
    backends: &[Backend],
    quotas: &[u32],
    buckets: usize,
    mut f: impl FnMut(Turn, usize),
) {
    let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    for (i, (b, &quota)) in backends.iter().zip(quotas).enumerate().rev() {
        if quota == 0 {
            continue;
        }
        // The last turn's bucket, then step back: W / w and W % w taken away per turn, no
        // division per turn. A quota is at most `M x w / W + 1`, so `(quota - 1) x W <= M x w`,
        // below 2^56.
        let w = u64::from(b.weight);
        let (whole, part) = (total / w, total % w);
        let last = u64::from(quota - 1) * total;
        let (mut q, mut r) = (last / w, last % w);
        for k in (0..quota).rev() {
            let turn = Turn {
                backend: i as u32,
                k,
            };
            f(turn, q.min(buckets as u64 - 1) as usize);
            if k > 0 {
                q -= whole;
                if r < part {
                    r += w;
                    q -= 1;
                }
                r -= part;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranked_lists_only_for_few_backends() {
        // M = 65537: sqrt(M) = 256 empty slots start the endgame.
        assert_eq!(ranked_from(65537, 10, 256), 409);
        assert_eq!(ranked_from(65537, 15, 256), 273);
        assert_eq!(ranked_from(65537, 16, 256), 0);
        assert_eq!(ranked_from(65537, 100, 256), 0);
        assert_eq!(ranked_from(655_373, 10, 809), 4096);
        // The README's bounds: N < 16 at M = 65537, N < 48 at M = 655373 (sqrt(M) + N, not sqrt(M)).
        assert_eq!(ranked_from(655_373, 47, 809), 871);
        assert_eq!(ranked_from(655_373, 48, 809), 0);
        assert_eq!(ranked_from(655_373, 50, 809), 0);
        assert_eq!(ranked_from(2, 1, 1), 0);
    }
}
