//! `sluice run` (placeholder: its issue has not landed yet).
use std::process::ExitCode;

pub fn main(_config: &std::path::Path) -> ExitCode {
    eprintln!("sluice run: not available in this build yet");
    ExitCode::from(2)
}
