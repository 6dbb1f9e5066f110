//! Arbitrary backend lists and table sizes into the Maglev builder (see `maglev::fuzzing::fuzz_build`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| maglev::fuzzing::fuzz_build(data));
