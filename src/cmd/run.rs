//! `sluice run -c FILE`: the appliance on the configured ports until SIGINT/SIGTERM.
use std::path::Path;
use std::process::ExitCode;

pub fn main(config: &Path) -> ExitCode {
    crate::appliance::run_file(config)
}
