//! Shared test helpers for the control crate's integration tests.

/// Feeds every `seed-*` file of a fuzz target's corpus to `body`; returns how many there were.
pub fn replay_seeds(target: &str, body: impl Fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            body(&std::fs::read(&path).unwrap());
            seeds += 1;
        }
    }
    assert!(seeds >= 5, "only {seeds} seeds in {}", dir.display());
    seeds
}
