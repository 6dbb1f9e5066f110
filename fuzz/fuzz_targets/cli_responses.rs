//! Fuzz the command line's readers of the appliance's answers: an HTTP response over arbitrarily cut reads, /metrics text and /state JSON.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::fuzz_cli_responses(data));
