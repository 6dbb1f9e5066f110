//! Shared helpers of the CLI tests (tests/cli_*.rs).

use std::path::PathBuf;

/// `text` in `sluice-<test>-<pid>-<name>.yaml` in the temporary directory: a file per test
/// binary, process and case, so test binaries and cases run side by side.
pub fn temp_config(test: &str, name: &str, text: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("sluice-{test}-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}
