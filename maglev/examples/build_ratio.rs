//! Build time of `Table::build` against the paper's loop (the benchmark's baseline), alternating
//! the two run by run (each going first every other time) so both see the same machine load, and reporting the median of the
//! per-pair ratios (robust when other work comes and goes on the machine).
//! Run: `cargo run --release -p maglev --example build_ratio [-- PAIRS]`.
use std::hint::black_box;
use std::time::Instant;

use maglev::Table;

#[path = "../benches/common/paper.rs"]
mod paper;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let pairs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(31);
    println!("| M | N | paper loop (median) | sluice (median) | median of per-pair ratios |");
    println!("|---|---|---|---|---|");
    for size in [65537u32, 655_373] {
        for n in [10usize, 100, 1000] {
            let table = Table::build(size, &paper::backends(n)).expect("valid input");
            let input = table.backends().to_vec();
            let (mut theirs, mut ours, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            let paper_run = || {
                let start = Instant::now();
                black_box(paper::paper_build(black_box(size), black_box(&input)));
                start.elapsed().as_secs_f64() * 1e3
            };
            let our_run = || {
                let start = Instant::now();
                black_box(Table::build(black_box(size), black_box(&input)).expect("valid input"));
                start.elapsed().as_secs_f64() * 1e3
            };
            for pair in 0..pairs {
                // Alternate which goes first, so neither always runs on the other's cache leftovers.
                let (t, o) = if pair % 2 == 0 {
                    let t = paper_run();
                    (t, our_run())
                } else {
                    let o = our_run();
                    (paper_run(), o)
                };
                theirs.push(t);
                ours.push(o);
                ratios.push(t / o);
            }
            println!(
                "| {size} | {n} | {:.3} ms | {:.3} ms | {:.2}x |",
                median(&mut theirs),
                median(&mut ours),
                median(&mut ratios)
            );
        }
    }
}
