//! Replays the probe_answer fuzz target's seed corpus and hostile answers through the fuzz body on stable.
mod common;
use control::health::fuzzing::fuzz_probe_answer;

#[test]
fn the_seed_corpus_replays_without_panicking() {
    common::replay_seeds("probe_answer", fuzz_probe_answer);
}

#[test]
fn hostile_answers_are_handled() {
    let labels = vec!["a"; 200].join(".");
    for answer in [
        &b""[..],
        &[0x12, 0x34, 0x80],
        &[0x12, 0x34, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0],
        b"HTTP/1.1 ",
        b"HTTP/1.1 999",
        b"..",
        labels.as_bytes(),
    ] {
        fuzz_probe_answer(answer);
    }
}
