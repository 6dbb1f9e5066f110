//! `sluice check` (placeholder: its issue has not landed yet).
use std::process::ExitCode;

pub fn main(_config: &std::path::Path) -> ExitCode {
    eprintln!("sluice check: not available in this build yet");
    ExitCode::from(2)
}
