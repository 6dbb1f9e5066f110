//! `sluice plan` (placeholder: its issue has not landed yet).
use std::process::ExitCode;

pub fn main(
    _config: &std::path::Path,
    _from: &std::path::Path,
    _json: bool,
    _max_move: Option<f64>,
) -> ExitCode {
    eprintln!("sluice plan: not available in this build yet");
    ExitCode::from(2)
}
