//! Compares Maglev-style builds on the distribution of excess disruption over many random
//! backend sets (not one case), and times the candidate against the paper's loop.
//!
//! Long (about 850 lines): a study run by hand, its variants, statistics and timings side by
//! side so each result can be read against the code that made it; no other code uses it.
//!
//! "Excess" is the share of slots (in percentage points of M) that change backend beyond those
//! that must: the removed backends' old slots, or the newcomer's new slots. Issue 3 allows 1.5.
//!
//! Variants (all give every backend exactly its quota, so equal weights balance to
//! floor/ceil(M/N) and weights are within one slot of M * w / W; the run checks every table):
//! * `maglev`: the crate's `Table::build` (the paper's round robin over affine walks).
//! * `rank`: deferred acceptance where a contested slot keeps the backend for which it ranks
//!   earliest in its own walk. Both sides rank pairs by that position, so the stable matching is
//!   unique and equals a greedy over (position, canonical index): round `j`, every backend still
//!   under its quota takes its `j`-th slot if empty. Quotas by largest remainder, as the crate.
//! * `rank-flex`: as `rank`, but the `M - sum(floor quotas)` extra slots go to the first
//!   backends (in rank time) to reach their floor quota, instead of by largest remainder.
//! * `maglev-mult`, `rank-flex-mult`: the same builds over multiplicative walks
//!   `slot_j = c * g^j + o (mod M)` (`g` a primitive root, slot `o` last), which have no "twins":
//!   with affine walks two backends with the same skip walk the same line, one a few steps
//!   behind the other, and trade most of their slots whenever the set changes.
//!
//! Run: `cargo run --release -p maglev --example disruption_study -- [--sets 200] [--size 65537]
//! [--n 25,100,1000] [--variants maglev,rank,rank-flex,maglev-mult,rank-flex-mult] [--speed]`.
//! `--speed` instead times tuned `rank-flex` and `rank-flex-mult` builds (checked equal to the
//! plain ones) side by side with the paper's loop and `Table::build`; `--floor` prints what
//! evening out randomly handed-out slots costs by itself (see `floor_model`).
use std::hint::black_box;
use std::time::Instant;

use maglev::hash::hash64;
use maglev::{is_prime, permutation, Backend, Table};

#[path = "../benches/common/paper.rs"]
mod paper;

const VARIANTS: [&str; 5] = [
    "maglev",
    "rank",
    "rank-flex",
    "maglev-mult",
    "rank-flex-mult",
];

/// One backend's walk through the slots.
#[derive(Clone, Copy)]
enum Walk {
    /// `offset + j * skip`: the crate's permutation.
    Affine { pos: u32, skip: u32 },
    /// `x_j + o` with `x_j = c * g^j`, then slot `o` at `j = M - 1`.
    Mult { x: u64, g: u64, o: u32, j: u32 },
}

impl Walk {
    fn slot(&self, m: u32) -> u32 {
        match *self {
            Walk::Affine { pos, .. } => pos,
            Walk::Mult { j, o, .. } if j == m - 1 => o,
            Walk::Mult { x, o, .. } => ((x + u64::from(o)) % u64::from(m)) as u32,
        }
    }

    fn advance(&mut self, m: u32) {
        match self {
            Walk::Affine { pos, skip } => {
                *pos = ((u64::from(*pos) + u64::from(*skip)) % u64::from(m)) as u32
            }
            Walk::Mult { x, g, j, .. } => {
                *x = *x * *g % u64::from(m);
                *j += 1;
            }
        }
    }
}

fn pow_mod(mut b: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1;
    b %= m;
    while e > 0 {
        if e & 1 == 1 {
            r = r * b % m;
        }
        b = b * b % m;
        e >>= 1;
    }
    r
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The smallest primitive root of the prime `m`.
fn primitive_root(m: u64) -> u64 {
    let (mut factors, mut x, mut d) = (Vec::new(), m - 1, 2);
    while d * d <= x {
        if x % d == 0 {
            factors.push(d);
            while x % d == 0 {
                x /= d;
            }
        }
        d += 1;
    }
    if x > 1 {
        factors.push(x);
    }
    (2..m)
        .find(|&g| factors.iter().all(|&p| pow_mod(g, (m - 1) / p, m) != 1))
        .expect("a prime has a primitive root")
}

/// A multiplicative walk's exponents: `x_0 = root^u`, `g = root^e` (`e` coprime to `M - 1`, so
/// `g` is again a primitive root), and the offset `o`.
fn mult_params(name: &str, m: u32) -> (u64, u64, u32) {
    let m64 = u64::from(m);
    let u = hash64(0x6d75_6c74_0002, name.as_bytes()) % (m64 - 1);
    let mut e = 1 + hash64(0x6d75_6c74_0001, name.as_bytes()) % (m64 - 2);
    while gcd(e, m64 - 1) != 1 {
        e = e % (m64 - 2) + 1;
    }
    (u, e, permutation(name, m).0)
}

fn walks(m: u32, names: &[String], mult: bool) -> Vec<Walk> {
    let m64 = u64::from(m);
    let root = if mult { primitive_root(m64) } else { 0 };
    names
        .iter()
        .map(|name| {
            if !mult {
                let (pos, skip) = permutation(name, m);
                return Walk::Affine { pos, skip };
            }
            let (u, e, o) = mult_params(name, m);
            Walk::Mult {
                x: pow_mod(root, u, m64),
                g: pow_mod(root, e, m64),
                o,
                j: 0,
            }
        })
        .collect()
}

/// The paper's round robin (equal weights).
fn round_robin(m: u32, mut walks: Vec<Walk>) -> Vec<u32> {
    let mut entries = vec![u32::MAX; m as usize];
    let mut filled = 0;
    loop {
        for (i, w) in walks.iter_mut().enumerate() {
            while entries[w.slot(m) as usize] != u32::MAX {
                w.advance(m);
            }
            entries[w.slot(m) as usize] = i as u32;
            w.advance(m);
            filled += 1;
            if filled == m {
                return entries;
            }
        }
    }
}

/// Floor quotas `floor(M w / W)`, whether each may take one extra slot (its exact share is not
/// an integer), and the number of extra slots.
fn floor_quotas(m: u32, weights: &[u32]) -> (Vec<u32>, Vec<bool>, u32) {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let exact: Vec<u64> = weights
        .iter()
        .map(|&w| u64::from(m) * u64::from(w))
        .collect();
    let base: Vec<u32> = exact.iter().map(|&x| (x / total) as u32).collect();
    let flexible = exact.iter().map(|&x| x % total != 0).collect();
    let extras = m - base.iter().sum::<u32>();
    (base, flexible, extras)
}

/// Largest-remainder quotas (ties to the lower index), as `Table::build`.
fn largest_remainder(m: u32, weights: &[u32]) -> Vec<u32> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let (mut quota, _, extras) = floor_quotas(m, weights);
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
    order.sort_by_key(|&i| {
        (
            std::cmp::Reverse(u64::from(m) * u64::from(weights[i]) % total),
            i,
        )
    });
    for &i in order.iter().take(extras as usize) {
        quota[i] += 1;
    }
    quota
}

/// Rank-order deferred acceptance: round `j`, every backend under its quota (in canonical
/// order) takes its `j`-th slot if empty. `flex`: quotas are the floors, and the extra slots go
/// to the first backends to reach their floor (if flexible); otherwise largest remainder.
fn rank_order(m: u32, mut walks: Vec<Walk>, weights: &[u32], flex: bool) -> Vec<u32> {
    let (mut quota, mut flexible, mut extras) = if flex {
        floor_quotas(m, weights)
    } else {
        (largest_remainder(m, weights), vec![false; weights.len()], 0)
    };
    let mut count = vec![0u32; walks.len()];
    let mut entries = vec![u32::MAX; m as usize];
    let mut filled = 0;
    let mut grant = |i: usize, quota: &mut Vec<u32>| {
        if flexible[i] && extras > 0 {
            extras -= 1;
            quota[i] += 1;
        }
        flexible[i] = false;
    };
    for i in 0..walks.len() {
        if quota[i] == 0 {
            grant(i, &mut quota);
        }
    }
    let mut active: Vec<usize> = (0..walks.len()).filter(|&i| quota[i] > 0).collect();
    while filled < m {
        active.retain(|&i| {
            let c = walks[i].slot(m) as usize;
            if entries[c] == u32::MAX {
                entries[c] = i as u32;
                count[i] += 1;
                filled += 1;
                if count[i] == quota[i] {
                    grant(i, &mut quota);
                }
            }
            walks[i].advance(m);
            count[i] < quota[i]
        });
    }
    entries
}

/// Builds `variant` for `names` (sorted) with `weights`; entries index `names`.
fn build(variant: &str, m: u32, names: &[String], weights: &[u32]) -> Vec<u32> {
    let equal = weights.iter().all(|&w| w == weights[0]);
    match variant {
        "maglev" => {
            let backends: Vec<Backend> = names
                .iter()
                .zip(weights)
                .map(|(n, &w)| Backend::new(n.clone(), w))
                .collect();
            Table::build(m, &backends)
                .expect("valid input")
                .entries()
                .to_vec()
        }
        "rank" => rank_order(m, walks(m, names, false), weights, false),
        "rank-flex" => rank_order(m, walks(m, names, false), weights, true),
        "maglev-mult" if equal => round_robin(m, walks(m, names, true)),
        "rank-flex-mult" => rank_order(m, walks(m, names, true), weights, true),
        _ => panic!("unknown variant {variant} (or weighted maglev-mult); known: {VARIANTS:?}"),
    }
}

/// Panics unless every backend has its share within one slot (floor/ceil for equal weights).
fn check_balance(variant: &str, m: u32, entries: &[u32], weights: &[u32]) {
    let mut counts = vec![0u32; weights.len()];
    for &e in entries {
        counts[e as usize] += 1;
    }
    let total: f64 = weights.iter().map(|&w| f64::from(w)).sum();
    for (&c, &w) in counts.iter().zip(weights) {
        let exact = f64::from(m) * f64::from(w) / total;
        assert!(
            (f64::from(c) - exact).abs() < 1.0,
            "{variant}: {c} slots for a share of {exact}"
        );
    }
}

/// Excess disruption (pp of M) from table `a` of `old` to table `b` of `new` (both sorted).
fn excess(m: u32, old: &[String], a: &[u32], new: &[String], b: &[u32]) -> f64 {
    let (mut moved, mut forced) = (0u32, 0u32);
    for (&x, &y) in a.iter().zip(b) {
        let (was, is) = (&old[x as usize], &new[y as usize]);
        if was != is {
            moved += 1;
            if new.binary_search(was).is_err() || old.binary_search(is).is_err() {
                forced += 1;
            }
        }
    }
    100.0 * f64::from(moved - forced) / f64::from(m)
}

/// A deterministic stream (splitmix64).
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The property test's names (documentation range), sorted.
fn set_names(n: usize, salt: u64) -> Vec<String> {
    let mut v: Vec<String> = (0..n)
        .map(|i| format!("198.51.{}.{}:{salt}", i / 250, i % 250))
        .collect();
    v.sort();
    v
}

fn without(names: &[String], gone: &[usize]) -> Vec<String> {
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| !gone.contains(i))
        .map(|(_, n)| n.clone())
        .collect()
}

/// Median, p90, p99, max, and how many exceed 1.5 pp.
fn summary(mut x: Vec<f64>) -> String {
    x.sort_by(f64::total_cmp);
    let q = |f: f64| x[((x.len() - 1) as f64 * f).round() as usize];
    let over = x.iter().filter(|&&v| v > 1.5).count();
    format!(
        "| {:.2} | {:.2} | {:.2} | {:.2} | {over}/{} |",
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0),
        x.len()
    )
}

/// Builds and checks one table of equal weights.
fn table(variant: &str, m: u32, names: &[String]) -> Vec<u32> {
    let weights = vec![1; names.len()];
    let t = build(variant, m, names, &weights);
    check_balance(variant, m, &t, &weights);
    t
}

fn study(m: u32, sets: usize, ns: &[usize], variants: &[String]) {
    println!("| variant | N | change | median | p90 | p99 | max | sets > 1.5 pp |");
    println!("|---|---|---|---|---|---|---|---|");
    // The rare set the property test once found: remove each of its 25 backends in turn.
    let rare = set_names(25, 28_965_919);
    for v in variants {
        let old = table(v, m, &rare);
        let x = (0..rare.len())
            .map(|i| {
                let kept = without(&rare, &[i]);
                excess(m, &rare, &old, &kept, &table(v, m, &kept))
            })
            .collect();
        println!(
            "| {v} | 25 (salt 28965919) | remove each one | {}",
            &summary(x)[2..]
        );
    }
    for &n in ns {
        let mut ks = vec![1, (n / 100).max(1), (n / 10).max(1)];
        ks.dedup();
        for v in variants {
            let mut rows: Vec<Vec<f64>> = vec![Vec::new(); ks.len() + 1];
            for s in 0..sets {
                let mut seed = (n as u64) << 32 | s as u64;
                let salt = next(&mut seed) % 1_000_000_000;
                let all = set_names(n, salt);
                let old = table(v, m, &all);
                for (row, &k) in rows.iter_mut().zip(&ks) {
                    let mut idx: Vec<usize> = (0..n).collect();
                    for i in (1..n).rev() {
                        idx.swap(i, (next(&mut seed) % (i as u64 + 1)) as usize);
                    }
                    let kept = without(&all, &idx[..k]);
                    row.push(excess(m, &all, &old, &kept, &table(v, m, &kept)));
                }
                let mut more = all.clone();
                more.push(format!("203.0.113.{}:{salt}", s % 250));
                more.sort();
                rows[ks.len()].push(excess(m, &all, &old, &more, &table(v, m, &more)));
            }
            for (i, row) in rows.into_iter().enumerate() {
                let change = ks
                    .get(i)
                    .map_or("add 1".to_string(), |k| format!("remove {k}"));
                println!("| {v} | {n} | {change} {}", summary(row));
            }
        }
    }
    // Weights: every variant's weighted table is within one slot of M * w / W.
    for v in variants.iter().filter(|v| v.as_str() != "maglev-mult") {
        for salt in 0..20u64 {
            let names = set_names(40, salt);
            let mut seed = salt;
            let weights: Vec<u32> = (0..40)
                .map(|_| (next(&mut seed) % 1000) as u32 + 1)
                .collect();
            check_balance(v, m, &build(v, m, &names, &weights), &weights);
        }
    }
    println!("\nbalance: every table above had each backend within one slot of its share (floor/ceil for equal weights; 20 weighted sets of 40 too)");
}

/// `x mod d` for `x < 2^64 / 2` by Barrett reduction with `mu = floor((2^64 - 1) / d)`: the
/// estimated quotient is at most one short, so one correction suffices.
#[inline(always)]
fn barrett(x: u64, d: u64, mu: u64) -> u64 {
    let r = x - ((u128::from(x) * u128::from(mu)) >> 64) as u64 * d;
    if r >= d {
        r - d
    } else {
        r
    }
}

/// A walk as the fast build drives it.
trait FastWalk {
    /// The slot probed in round `round`.
    fn slot(&self, round: u32) -> u32;
    fn advance(&mut self);
    /// Rounds from `round` until the walk probes slot `s` (which it has not passed).
    fn rounds_to(&mut self, s: u32, round: u32) -> u64;
}

/// `offset + j * skip`; `rounds_to` is `(s - pos) * skip^-1 mod M`, as the crate's endgame.
struct AffineWalk {
    pos: u32,
    skip: u32,
    m: u32,
    inverse: u64,
    mu: u64,
}

impl FastWalk for AffineWalk {
    #[inline(always)]
    fn slot(&self, _: u32) -> u32 {
        self.pos
    }

    #[inline(always)]
    fn advance(&mut self) {
        let next = self.pos + self.skip;
        self.pos = if next >= self.m { next - self.m } else { next };
    }

    fn rounds_to(&mut self, s: u32, _: u32) -> u64 {
        let m = u64::from(self.m);
        if self.inverse == 0 {
            self.inverse = pow_mod(u64::from(self.skip), m - 2, m);
            self.mu = u64::MAX / m;
        }
        let d = if s >= self.pos {
            s - self.pos
        } else {
            s + self.m - self.pos
        };
        barrett(u64::from(d) * self.inverse, m, self.mu)
    }
}

/// Powers and discrete logarithms of a primitive root of `M`, so a multiplicative walk
/// `root^(u + e j) + o` steps like an affine one in the exponent and inverts by lookup.
struct PowerTables {
    m: u32,
    power: Vec<u32>,
    log: Vec<u32>,
}

impl PowerTables {
    fn new(m: u32) -> PowerTables {
        let m64 = u64::from(m);
        let (root, mu) = (primitive_root(m64), u64::MAX / m64);
        let mut power = vec![0u32; m as usize - 1];
        let mut log = vec![0u32; m as usize];
        // Four interleaved chains of products, so the multiplications overlap.
        let mut x: [u64; 4] = std::array::from_fn(|i| pow_mod(root, i as u64, m64));
        let step = pow_mod(root, 4, m64);
        for k in (0..power.len()).step_by(4) {
            for (i, xi) in x.iter_mut().enumerate() {
                if let Some(p) = power.get_mut(k + i) {
                    *p = *xi as u32;
                    log[*xi as usize] = (k + i) as u32;
                }
                *xi = barrett(*xi * step, m64, mu);
            }
        }
        PowerTables { m, power, log }
    }
}

/// `root^(u + e j) + o (mod M)`, slot `o` last: the plain `Mult` walk, stepped in the exponent.
struct ExpWalk<'t> {
    k: u32,
    e: u32,
    o: u32,
    inverse: u64,
    mu: u64,
    tables: &'t PowerTables,
}

impl FastWalk for ExpWalk<'_> {
    #[inline(always)]
    fn slot(&self, round: u32) -> u32 {
        let m = self.tables.m;
        if round == m - 1 {
            return self.o;
        }
        let s = self.tables.power[self.k as usize] + self.o;
        if s >= m {
            s - m
        } else {
            s
        }
    }

    #[inline(always)]
    fn advance(&mut self) {
        let next = self.k + self.e;
        let period = self.tables.m - 1;
        self.k = if next >= period { next - period } else { next };
    }

    fn rounds_to(&mut self, s: u32, round: u32) -> u64 {
        let (m, period) = (self.tables.m, u64::from(self.tables.m) - 1);
        if s == self.o {
            return u64::from(m - 1 - round);
        }
        if self.inverse == 0 {
            self.inverse = inverse_mod(u64::from(self.e), period);
            self.mu = u64::MAX / period;
        }
        let t = u64::from(
            self.tables.log[(if s >= self.o {
                s - self.o
            } else {
                s + m - self.o
            }) as usize],
        );
        barrett(
            (t + period - u64::from(self.k)) * self.inverse,
            period,
            self.mu,
        )
    }
}

/// `x` with `a x = 1 (mod d)` for `gcd(a, d) = 1` (extended Euclid).
fn inverse_mod(a: u64, d: u64) -> u64 {
    let (mut r0, mut r1) = (d as i64, a as i64);
    let (mut t0, mut t1) = (0i64, 1i64);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(d as i64) as u64
}

fn affine_walks(m: u32, names: &[String]) -> Vec<AffineWalk> {
    names
        .iter()
        .map(|name| {
            let (pos, skip) = permutation(name, m);
            AffineWalk {
                pos,
                skip,
                m,
                inverse: 0,
                mu: 0,
            }
        })
        .collect()
}

fn exp_walks<'t>(tables: &'t PowerTables, names: &[String]) -> Vec<ExpWalk<'t>> {
    names
        .iter()
        .map(|name| {
            let (u, e, o) = mult_params(name, tables.m);
            ExpWalk {
                k: u as u32,
                e: e as u32,
                o,
                inverse: 0,
                mu: 0,
                tables,
            }
        })
        .collect()
}

/// `rank-flex` written for speed (equal weights; equals the plain one): lockstep rounds over a
/// bitset, then an endgame where each active backend's next empty slot is found by scanning the
/// list of empty slots (`rounds_to`), as the crate's endgame.
fn rank_flex_fast<W: FastWalk>(m: u32, walks: Vec<W>) -> Vec<u32> {
    struct Lane<W> {
        walk: W,
        left: u32,
        idx: u32,
        flexible: bool,
    }
    let n = walks.len() as u32;
    let (base, mut extras) = (m / n, m % n);
    let mut lanes: Vec<Lane<W>> = walks
        .into_iter()
        .enumerate()
        .map(|(i, walk)| Lane {
            walk,
            left: base,
            idx: i as u32,
            flexible: true,
        })
        .collect();
    let mut grant = |l: &mut Lane<W>| {
        if l.flexible && extras > 0 {
            extras -= 1;
            l.left += 1;
        }
        l.flexible = false;
    };
    if base == 0 {
        lanes.iter_mut().for_each(&mut grant);
        lanes.retain(|l| l.left > 0);
    }
    let mut taken = vec![0u64; (m as usize).div_ceil(64)];
    let mut entries = vec![0u32; m as usize];
    let (mut empty, mut round) = (m, 0u32);
    let endgame = (f64::from(m).sqrt() * 0.5) as u32;
    // Lanes that reach their quota stay in place (skipped) until an eighth are done, so the
    // rest keep their canonical order without a compaction every round.
    let (mut finished, mut dead) = (Vec::new(), 0);
    while empty > endgame {
        let (taken, entries) = (&mut taken[..], &mut entries[..]);
        // A register count per round: `empty` itself would be a memory chain through every claim.
        let mut claimed = 0;
        for (i, l) in lanes.iter_mut().enumerate() {
            if l.left == 0 {
                continue;
            }
            let c = l.walk.slot(round);
            let (word, bit) = ((c >> 6) as usize, 1u64 << (c & 63));
            // Branch-free claim: whether a probe finds its slot empty is a coin toss mid-build.
            let free = u32::from(taken[word] & bit == 0);
            taken[word] |= bit;
            let e = &mut entries[c as usize];
            *e = if free == 1 { l.idx } else { *e };
            claimed += free;
            l.left -= free;
            if l.left == 0 {
                finished.push(i);
            }
            l.walk.advance();
        }
        empty -= claimed;
        round += 1;
        // In canonical order, as the plain version grants extras within a round.
        for &i in &finished {
            grant(&mut lanes[i]);
            dead += usize::from(lanes[i].left == 0);
        }
        finished.clear();
        if dead * 8 > lanes.len() {
            lanes.retain(|l| l.left > 0);
            dead = 0;
        }
    }
    lanes.retain(|l| l.left > 0);
    let mut free = Vec::with_capacity(empty as usize);
    for (w, &bits) in taken.iter().enumerate() {
        let mut zeros = !bits;
        while zeros != 0 {
            let s = w as u32 * 64 + zeros.trailing_zeros();
            if s < m {
                free.push(s);
            }
            zeros &= zeros - 1;
        }
    }
    // Rounds from the lanes' common round to their nearest empty slot, and that slot.
    let nearest = |l: &mut Lane<W>, free: &[u32]| -> (u64, u32) {
        free.iter()
            .map(|&s| (l.walk.rounds_to(s, round), s))
            .min()
            .expect("an empty slot is left")
    };
    let mut target: Vec<Option<(u64, u32)>> =
        lanes.iter_mut().map(|l| Some(nearest(l, &free))).collect();
    while empty > 0 {
        // The earliest claim; lanes are in canonical order, so ties keep the lower index.
        let (b, (_, slot)) = target
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (i, t)))
            .min_by_key(|&(i, (rounds, _))| (rounds, i))
            .expect("a lane is active while slots are empty");
        entries[slot as usize] = lanes[b].idx;
        empty -= 1;
        free.retain(|&s| s != slot);
        lanes[b].left -= 1;
        if lanes[b].left == 0 {
            grant(&mut lanes[b]);
            if lanes[b].left == 0 {
                target[b] = None;
            }
        }
        for (l, t) in lanes.iter_mut().zip(target.iter_mut()) {
            if empty > 0 && t.is_some_and(|t| t.1 == slot) {
                *t = Some(nearest(l, &free));
            }
        }
    }
    entries
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn speed(pairs: usize) {
    println!("| M | N | paper loop | Table::build | rank-flex | rank-flex-mult | paper / Table::build | paper / rank-flex | paper / rank-flex-mult |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for m in [65537u32, 655_373] {
        for n in [10usize, 100, 1000] {
            let input = Table::build(m, &paper::backends(n))
                .expect("valid input")
                .backends()
                .to_vec();
            let names: Vec<String> = input.iter().map(|b| b.name.clone()).collect();
            assert_eq!(
                rank_flex_fast(m, affine_walks(m, &names)),
                table("rank-flex", m, &names),
                "fast rank-flex differs"
            );
            assert_eq!(
                rank_flex_fast(m, exp_walks(&PowerTables::new(m), &names)),
                table("rank-flex-mult", m, &names),
                "fast rank-flex-mult differs"
            );
            let time = |f: &dyn Fn()| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64() * 1e3
            };
            let mut runs: [Vec<f64>; 4] = Default::default();
            for _ in 0..pairs {
                let (m, input, names) = (black_box(m), black_box(&input), black_box(&names));
                runs[0].push(time(&|| drop(black_box(paper::paper_build(m, input)))));
                runs[1].push(time(&|| drop(black_box(Table::build(m, input)))));
                runs[2].push(time(&|| {
                    drop(black_box(rank_flex_fast(m, affine_walks(m, names))))
                }));
                // The power tables are built in every run, as a build without a cache would.
                runs[3].push(time(&|| {
                    let tables = PowerTables::new(m);
                    drop(black_box(rank_flex_fast(m, exp_walks(&tables, names))));
                }));
            }
            let ratio = |i: usize| {
                let mut r: Vec<f64> = runs[0].iter().zip(&runs[i]).map(|(p, x)| p / x).collect();
                median(&mut r)
            };
            let (r1, r2, r3) = (ratio(1), ratio(2), ratio(3));
            let [p, t, r, x] = runs.each_mut().map(|v| median(v));
            println!("| {m} | {n} | {p:.3} ms | {t:.3} ms | {r:.3} ms | {x:.3} ms | {r1:.2}x | {r2:.2}x | {r3:.2}x |");
        }
    }
}

/// The model behind "removing 10% of N = 1000 cannot stay under 1.5 points": each removed slot
/// goes to a uniformly random survivor, and then only the survivors above their new quota give
/// slots, each straight to one below (no cascade). Prints the median of those extra moves, with
/// the larger quotas fixed by index (as largest remainder) or given to the fullest survivors
/// (as `rank-flex`).
fn floor_model(m: u32, trials: usize) {
    println!("| N | removed | extra moves, fixed larger quotas | extra moves, flexible |");
    println!("|---|---|---|---|");
    for (n, k) in [
        (25usize, 1usize),
        (100, 1),
        (100, 10),
        (1000, 1),
        (1000, 10),
        (1000, 100),
    ] {
        let (mut fixed, mut flexible) = (Vec::new(), Vec::new());
        let mut seed = (n * 1000 + k) as u64;
        for _ in 0..trials {
            let (base, larger) = (m / n as u32, (m % n as u32) as usize);
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, (next(&mut seed) % (i as u64 + 1)) as usize);
            }
            let (survivors, removed) = order.split_at(n - k);
            let mut survivors = survivors.to_vec();
            survivors.sort_unstable();
            let old = |i: usize| base + u32::from(i < larger);
            let freed: u32 = removed.iter().map(|&i| old(i)).sum();
            let mut have: Vec<u32> = survivors.iter().map(|&i| old(i)).collect();
            for _ in 0..freed {
                have[(next(&mut seed) % (n - k) as u64) as usize] += 1;
            }
            let (base2, larger2) = (m / (n - k) as u32, (m % (n - k) as u32) as usize);
            let extra = |have: &[u32]| -> f64 {
                let cap = |i: usize| base2 + u32::from(i < larger2);
                let moves: u32 = have
                    .iter()
                    .enumerate()
                    .map(|(i, &h)| h.saturating_sub(cap(i)))
                    .sum();
                100.0 * f64::from(moves) / f64::from(m)
            };
            fixed.push(extra(&have));
            have.sort_unstable_by(|a, b| b.cmp(a));
            flexible.push(extra(&have));
        }
        println!(
            "| {n} | {k} | {:.2} pp | {:.2} pp |",
            median(&mut fixed),
            median(&mut flexible)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let sets = value("--sets").and_then(|s| s.parse().ok()).unwrap_or(200);
    if args.iter().any(|a| a == "--speed") {
        speed(sets.min(31));
        return;
    }
    let m = value("--size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(65537);
    assert!(m > 2 && is_prime(m), "--size must be a prime above 2");
    if args.iter().any(|a| a == "--floor") {
        floor_model(m, sets);
        return;
    }
    let ns: Vec<usize> = value("--n").map_or(vec![25, 100, 1000], |s| {
        s.split(',').filter_map(|x| x.parse().ok()).collect()
    });
    let variants: Vec<String> = value("--variants")
        .map_or(VARIANTS.map(String::from).to_vec(), |s| {
            s.split(',').map(String::from).collect()
        });
    study(m, sets, &ns, &variants);
}
