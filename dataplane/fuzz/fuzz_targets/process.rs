//! Fuzz the whole per-packet function (parse, classify, flow table, rewrite, replies).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dataplane::fuzzing::fuzz_process(data));
