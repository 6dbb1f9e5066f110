//! `sluice demo [--seconds N] [--listen ADDR]`: the appliance on a virtual wire with built-in
//! traffic, its metrics on ADDR (default: a free port on 127.0.0.1).
use std::net::SocketAddr;
use std::process::ExitCode;

pub fn main(seconds: u64, listen: SocketAddr) -> ExitCode {
    crate::demo::main(seconds, listen)
}
