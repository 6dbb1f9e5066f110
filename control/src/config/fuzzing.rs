//! The config loader's fuzz body, shared by the cargo-fuzz target and the seed-corpus replay test.
use super::{check_str, summary};

/// Load arbitrary bytes as a config: must never panic, and must explain every rejection.
pub fn fuzz_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let checked = check_str(text, "fuzz.yaml");
    match &checked.result {
        Ok(config) => {
            let _ = summary(config);
        }
        Err(errors) => assert!(!errors.is_empty(), "rejected without an error"),
    }
    let all = checked
        .result
        .as_ref()
        .err()
        .into_iter()
        .flat_map(|e| e.iter());
    for d in all.chain(&checked.warnings) {
        assert!(d.to_string().starts_with("fuzz.yaml"), "{d}");
        if let Some(l) = d.location {
            assert!(l.line >= 1 && l.column >= 1, "{d}");
        }
    }
}
