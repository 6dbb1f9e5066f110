//! sluice fast path: pure packet logic (no DPDK) plus the thin DPDK I/O glue.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "dpdk")]
pub mod dpdk;
