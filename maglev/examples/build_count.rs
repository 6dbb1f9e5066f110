//! One build kind, repeated, for instruction counting under callgrind (repeatable under load,
//! unlike wall-clock time): `build_count paper|sluice|weighted M N [REPS]` (`weighted`: the
//! same backends with weights 1..=10 cycling, as in the criterion benchmark).
//! The input is in canonical order, as in `build_ratio`. Count only the builds with
//! `valgrind --tool=callgrind --toggle-collect='build_count::run_*' \
//!   target/release/examples/build_count sluice 65537 10`.
use std::hint::black_box;

use maglev::Table;

#[path = "../benches/common/paper.rs"]
mod paper;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: build_count paper|sluice|weighted M N [REPS]");
        std::process::exit(2);
    }
    let size: u32 = args[2].parse().expect("M: a number");
    let n: usize = args[3].parse().expect("N: a number");
    let reps: usize = args
        .get(4)
        .map_or(1, |r| r.parse().expect("REPS: a number"));
    let input = Table::build(size, &paper::backends(n))
        .expect("valid input")
        .backends()
        .to_vec();
    let weighted: Vec<maglev::Backend> = input
        .iter()
        .enumerate()
        .map(|(i, b)| maglev::Backend::new(b.name.clone(), 1 + i as u32 % 10))
        .collect();
    for _ in 0..reps {
        match args[1].as_str() {
            "paper" => run_paper(size, &input),
            "sluice" => run_sluice(size, &input),
            "weighted" => run_sluice(size, &weighted),
            other => {
                eprintln!("unknown kind {other:?}: paper, sluice or weighted");
                std::process::exit(2);
            }
        }
    }
}

/// One build of the paper's loop (not inlined, so callgrind can count just this).
#[inline(never)]
fn run_paper(size: u32, input: &[maglev::Backend]) {
    drop(black_box(paper::paper_build(
        black_box(size),
        black_box(input),
    )));
}

/// One `Table::build` (not inlined, so callgrind can count just this).
#[inline(never)]
fn run_sluice(size: u32, input: &[maglev::Backend]) {
    drop(black_box(
        Table::build(black_box(size), black_box(input)).expect("valid input"),
    ));
}
