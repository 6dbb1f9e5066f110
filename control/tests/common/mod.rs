//! Shared test helpers for the control crate's integration tests.

/// Feeds every `seed-*` file of a fuzz target's corpus to `body`; returns how many there were.
pub fn replay_seeds(target: &str, body: impl Fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let seeds = maglev::fuzzing::replay_seeds(&dir, body);
    assert!(seeds >= 5, "only {seeds} seeds in {}", dir.display());
    seeds
}
