//! `sluice demo` (placeholder: its issue has not landed yet).
use std::process::ExitCode;

pub fn main(_seconds: u64) -> ExitCode {
    eprintln!("sluice demo: not available in this build yet");
    ExitCode::from(2)
}
