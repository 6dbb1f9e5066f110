//! Fuzz the controller with arbitrary event sequences: reloads, health, frames, ticks, drains.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    control::controller::fuzzing::fuzz_controller_events(data);
});
