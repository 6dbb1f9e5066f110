//! `sluice version`: what was built, from which revision, against which DPDK.
use std::process::ExitCode;

pub fn main() -> ExitCode {
    println!("sluice {}", env!("CARGO_PKG_VERSION"));
    println!("git revision: {}", env!("SLUICE_GIT_REVISION"));
    println!("dpdk: {}", env!("SLUICE_DPDK_VERSION"));
    println!("rustc: {}", env!("SLUICE_RUSTC_VERSION"));
    ExitCode::SUCCESS
}
