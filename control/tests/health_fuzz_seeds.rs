//! Replays the probe_answer fuzz target's seed corpus and hostile answers through the fuzz body on stable.
use control::health::fuzzing::fuzz_probe_answer;

#[test]
fn the_seed_corpus_replays_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/probe_answer");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            fuzz_probe_answer(&std::fs::read(&path).unwrap());
            seeds += 1;
        }
    }
    assert!(seeds >= 5, "only {seeds} seeds in {}", dir.display());
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
