//! The command line's readers of what the appliance answers (an HTTP response, `/metrics` text,
//! `/state` JSON): a library, so the binary and their fuzz target (`fuzz/`, `cli_responses`,
//! with the `fuzzing` feature) share one copy.

pub mod http_client;
pub mod openmetrics;
pub mod state;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;
