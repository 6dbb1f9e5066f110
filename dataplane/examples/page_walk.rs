//! What a random cache line of a big table costs on this machine, and how much of it is the
//! page walk rather than the cache miss: a measurement behind issue 19 item 1, not a forwarder.
//!
//! Independent 8-byte loads at random places (as a burst's prefetched flow entries are: no
//! load waits for another), in one 256 MiB allocation asked for transparent huge pages as the
//! flow table is (`dataplane::hugepages::filled`), four ways:
//! - `packed_4m`: any line of the first 4 MiB (fits the last-level cache; few pages);
//! - `spread_4m`: one fixed line of any 4 KiB page of the 256 MiB: the same 4 MiB of lines,
//!   but 65,536 pages;
//! - `packed_256m`: any line of the 256 MiB (a 1M-flow table's size class);
//! - `per_huge_page`: one fixed line of any 2 MiB page (128 lines, 128 pages): the floor.
//!
//! If `spread_4m` costs like `packed_256m` and far more than `packed_4m`, the cost of a random
//! line is its page's translation, not its bytes: the TLB reaches 4 KiB pages however the
//! guest maps them (a VM whose host backs guest memory with 4 KiB pages does this).
//!
//! usage: page_walk [--loads N] [--time ROUNDS]
//! Prints one JSON object: ns per load (median of ROUNDS passes) for each pattern, and the
//! process's AnonHugePages (KiB) while the table is mapped.

use std::time::Instant;

use dataplane::hugepages;

const SPAN: usize = 256 << 20;
const LINE: usize = 64;
const PAGE: usize = 4 << 10;
const HUGE_PAGE: usize = 2 << 20;
const WORD: usize = 8;

/// `n` random byte offsets among the first `within` bytes: one fixed line in each block of
/// `stride` bytes, its place in the block scattered so the lines spread over the cache's sets
/// (the first line of every page would crowd a sixty-fourth of them).
fn offsets(n: usize, within: usize, stride: usize, seed: u64) -> Vec<u32> {
    let lines_per_block = stride / LINE;
    let choices = (within / stride) as u64;
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // SPAN < 2^32: every offset fits.
            let block = (x % choices) as usize;
            let line = block.wrapping_mul(0x9E37_79B9) % lines_per_block;
            (block * stride + line * LINE) as u32
        })
        .collect()
}

/// One pass: the sum of the words at `at` (word indices), loads independent of each other.
#[inline(never)]
fn pass(table: &[u64], at: &[u32]) -> u64 {
    let mut s = 0u64;
    for &o in at {
        s = s.wrapping_add(table.get(o as usize / WORD).copied().unwrap_or(0));
    }
    s
}

fn anon_huge_kib() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("AnonHugePages:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().unwrap_or(default))
    };
    let loads = arg("--loads", 1 << 22).max(1024);
    let rounds = arg("--time", 5).max(1);
    // Every word distinct, so a wrong offset changes the sum the check below compares.
    let mut table = hugepages::filled(SPAN / WORD, 0u64);
    for (i, w) in table.iter_mut().enumerate() {
        *w = i as u64;
    }
    let huge_kib = anon_huge_kib();
    let patterns: [(&str, usize, usize); 4] = [
        ("packed_4m", 4 << 20, LINE),
        ("spread_4m", SPAN, PAGE),
        ("packed_256m", SPAN, LINE),
        ("per_huge_page", SPAN, HUGE_PAGE),
    ];
    let mut fields = Vec::new();
    for (k, &(name, within, stride)) in patterns.iter().enumerate() {
        let at = offsets(loads, within, stride, 0x9e37_79b9_7f4a_7c15 ^ k as u64);
        let want = at
            .iter()
            .fold(0u64, |s, &o| s.wrapping_add(o as u64 / WORD as u64));
        let mut ns = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let start = Instant::now();
            let got = std::hint::black_box(pass(&table, &at));
            ns.push(start.elapsed().as_nanos() as f64 / loads as f64);
            if got != want {
                eprintln!("page_walk: {name}: sum {got}, not {want}");
                std::process::exit(1);
            }
        }
        ns.sort_by(f64::total_cmp);
        fields.push(format!("\"{name}\":{:.2}", ns[ns.len() / 2]));
    }
    println!(
        "{{\"loads\":{loads},\"rounds\":{rounds},\"ns_per_load\":{{{}}},\"anon_huge_kib\":{huge_kib}}}",
        fields.join(",")
    );
}
