//! The config loader's fuzz body, shared by the cargo-fuzz target and the seed-corpus replay test.
use super::{check_str, locate, summary};

/// Load arbitrary bytes as a config: must never panic, and must explain every rejection. The
/// place of each interface's `mtu` (what a start error the device refuses it with names, set or
/// not) must be found in a file that loads, within its text.
pub fn fuzz_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let checked = check_str(text, "fuzz.yaml");
    match &checked.result {
        Ok(config) => {
            let _ = summary(config, None);
            let lines = text.lines().count().max(1);
            for i in 0..config.interfaces.len() {
                let path = format!("interfaces[{i}].mtu");
                let Some((at, _)) = locate(text, &path) else {
                    panic!("{path} not located in a config that loads");
                };
                assert!(
                    at.line >= 1 && at.line <= lines + 1 && at.column >= 1,
                    "{path}: {at:?}"
                );
            }
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
