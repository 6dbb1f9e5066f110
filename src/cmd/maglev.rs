//! `sluice maglev` (placeholder: its issue has not landed yet).
use std::process::ExitCode;

pub fn main(_size: u32, _backends: &[String], _json: bool) -> ExitCode {
    eprintln!("sluice maglev: not available in this build yet");
    ExitCode::from(2)
}
