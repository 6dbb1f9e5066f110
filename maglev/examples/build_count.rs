//! One build kind, repeated, for instruction counting under callgrind (repeatable under load,
//! unlike wall-clock time): `build_count paper|sluice M N [REPS]`.
//! Run: `valgrind --tool=callgrind target/release/examples/build_count sluice 65537 10 5`, or
//! `bench/maglev-callgrind.sh` for all six points and both kinds.
use std::hint::black_box;

use maglev::Table;

#[path = "../benches/common/paper.rs"]
mod paper;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: build_count paper|sluice M N [REPS]");
        std::process::exit(2);
    }
    let size: u32 = args[2].parse().expect("M: a number");
    let n: usize = args[3].parse().expect("N: a number");
    let reps: usize = args
        .get(4)
        .map_or(1, |r| r.parse().expect("REPS: a number"));
    let input = paper::backends(n);
    for _ in 0..reps {
        match args[1].as_str() {
            "paper" => drop(black_box(paper::paper_build(
                black_box(size),
                black_box(&input),
            ))),
            "sluice" => drop(black_box(
                Table::build(black_box(size), black_box(&input)).expect("valid input"),
            )),
            other => {
                eprintln!("unknown kind {other:?}: paper or sluice");
                std::process::exit(2);
            }
        }
    }
}
