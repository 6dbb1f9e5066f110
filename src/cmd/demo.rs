//! `sluice demo [--seconds N]`: the appliance on a virtual wire with built-in traffic.
use std::process::ExitCode;

pub fn main(seconds: u64) -> ExitCode {
    crate::demo::main(seconds)
}
