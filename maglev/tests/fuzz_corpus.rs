//! Replays the fuzz seed corpus through the fuzz body on stable (`cargo test`).
#[test]
fn seed_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/table_build");
    let seeds = maglev::fuzzing::replay_seeds(&dir, maglev::fuzzing::fuzz_build);
    assert!(seeds >= 10, "seed corpus missing from {}", dir.display());
}

#[test]
fn fuzz_body_survives_edge_inputs() {
    for data in [
        &b""[..],
        b"\x01",
        b"\x0d\x00",
        b"\x0d\x00\x0f",
        b"\xff\xff\x01a\xff\x01b\xfa",
        b"\x02\x00\x00\x00\x00\x01",
    ] {
        maglev::fuzzing::fuzz_build(data);
    }
}
