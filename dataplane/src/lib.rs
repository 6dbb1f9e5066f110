//! sluice fast path: pure packet logic (no DPDK) plus the thin DPDK I/O glue.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(feature = "dpdk")]
pub mod runtime;

pub mod rcu;
#[cfg(feature = "dpdk")]
pub mod worker;

pub mod checksum;
pub mod control_frame;
pub mod flow;
pub mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod hugepages;
mod names;
mod nat;
mod outer;
pub mod parse;
pub mod pipeline;
pub mod ratelimit;
pub mod reply;
pub mod rewrite;
pub mod snapshot;
pub mod stats;
pub mod steer;
pub mod tsc;
pub mod wire;

pub use flow::{FlowConfig, FlowTable};
pub use frame::Frame;
pub use pipeline::{Pipeline, PipelineConfig, Verdict};
pub use snapshot::{
    BackendSpec, Egress, Forwarding, HashKind, InterfaceSpec, Proto, ServiceSpec, Snapshot,
    SnapshotBuilder, SnapshotError, WhenAllDown,
};
pub use stats::{Counters, DropReason};
