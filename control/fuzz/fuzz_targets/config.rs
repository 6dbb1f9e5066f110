//! Fuzz the config loader (YAML parse, location index, decode, validation, summary).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| control::config::fuzzing::fuzz_config(data));
