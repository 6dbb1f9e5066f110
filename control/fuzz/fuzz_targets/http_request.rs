//! Fuzz the control HTTP listener's request parser and router.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| control::http::fuzzing::fuzz_http_request(data));
