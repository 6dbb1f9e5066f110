//! The command line's readers of what the appliance answers (an HTTP response, `/metrics` text,
//! `/state` JSON), of what the operator types (`args`), and of what the host and the config
//! say (`doctor`: /proc and /sys; `sizing`: the memory `dpdk.args` gives EAL; `iproute`: the
//! routes `ip` lists): a library, so
//! the binary and their fuzz targets (`fuzz/`, `cli_responses` and `cli_inputs`, with the
//! `fuzzing` feature) share one copy.

pub mod args;
pub mod doctor;
pub mod http_client;
pub mod iproute;
pub mod openmetrics;
pub mod sizing;
pub mod state;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;
