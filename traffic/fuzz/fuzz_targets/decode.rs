//! Arbitrary frames into the traffic decoder (see `traffic::fuzzing::fuzz_decode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    traffic::fuzzing::fuzz_decode(data);
});
