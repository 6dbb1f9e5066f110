//! Fuzz the health probes' answer parsers (DNS answer, HTTP status line) and DNS name encoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| control::health::fuzzing::fuzz_probe_answer(data));
