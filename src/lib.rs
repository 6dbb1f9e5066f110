//! The command line's readers of what the appliance answers (an HTTP response, `/metrics` text,
//! `/state` JSON) as a library, for their fuzz target (`fuzz/`, `cli_responses`) and its seed
//! replay test only: empty without the `fuzzing` feature. The binary compiles the same files as
//! its own modules; this adds nothing to it.
//!
//! Not under `cfg(test)` either: the binary's unit tests already run these files' own tests.

#[cfg(all(feature = "fuzzing", not(test)))]
#[path = "cmd/http_client.rs"]
pub mod http_client;

#[cfg(all(feature = "fuzzing", not(test)))]
#[path = "cmd/top/openmetrics.rs"]
pub mod openmetrics;

#[cfg(all(feature = "fuzzing", not(test)))]
#[path = "cmd/top/state.rs"]
pub mod state;

#[cfg(all(feature = "fuzzing", not(test)))]
pub mod fuzzing;
