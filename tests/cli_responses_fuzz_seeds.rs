//! Replays the cli_responses fuzz target's seed corpus and hostile answers through the fuzz body on stable.
use sluice::fuzzing::{fuzz_cli_responses, CONTROL};

#[test]
fn the_seed_corpus_replays_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/cli_responses");
    let seeds = maglev::fuzzing::replay_seeds(&dir, fuzz_cli_responses);
    // Real answers and texts of `sluice demo`, the top tests' shapes, each limit and cut.
    assert!(seeds >= 15, "only {seeds} seeds in {}", dir.display());
}

#[test]
fn hostile_answers_are_refused_not_crashed_on() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let labels = format!("m{{{}}} 1\n", "a=\"\",".repeat(10_000));
    let long_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(100_000));
    for answer in [
        &b""[..],
        b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\nbody",
        b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\ncontent-length: 1\r\n\r\nabc",
        b"HTTP/1.1 99999 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nx{a=\"\\\xff\"} NaN\n\xff 1\n",
        deep.as_bytes(),
        labels.as_bytes(),
        long_head.as_bytes(),
    ] {
        // Top's limit in whole reads, then a small one in reads of a byte.
        let control: [[u8; CONTROL]; 2] = [[0; CONTROL], [64, 1, 1, 1, 1]];
        for control in control {
            fuzz_cli_responses(&[&control[..], answer].concat());
        }
    }
}
