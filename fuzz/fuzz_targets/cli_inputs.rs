//! Fuzz the command line's readers of what the operator types and the host holds: /proc and /sys texts (and `sluice doctor` on a tree of them), dpdk.args' memory options, --backend, --interval, --url, a refused config's metrics.listen.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sluice::fuzzing::cli_inputs::fuzz_cli_inputs(data);
});
