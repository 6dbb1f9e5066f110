//! Fuzz the HTTP request readers (the listener's and the control socket's) over arbitrarily cut streams, and the head parser and router behind them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| control::http::fuzzing::fuzz_http_request(data));
