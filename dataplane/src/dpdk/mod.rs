//! Safe wrappers over dpdk-sys: EAL, mempools, mbufs, bursts and ports with their queues.
//!
//! Ownership is what keeps this sound: an [`Mbuf`] is owned exactly once (Drop returns it to
//! its pool), a queue is handed out once and is `Send` but not `Sync`, and pools, ports and
//! the EAL itself stay alive for as long as anything that points into them.

mod burst;
mod eal;
mod error;
mod mbuf;
mod mempool;
mod port;

pub use burst::Burst;
pub use eal::{lcore_id, Eal};
pub use error::DpdkError;
pub use mbuf::{BufferMut, Mbuf};
pub use mempool::Mempool;
pub use port::{LinkStatus, Offloads, Port, PortBuilder, PortStats, RxQueue, TxQueue};

/// The DPDK release the crate was built against, e.g. "DPDK 22.11.11".
pub fn version() -> String {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string.
    let raw = unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_version()) };
    raw.to_string_lossy().into_owned()
}
