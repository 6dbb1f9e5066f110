//! Packet-buffer pools (rte_pktmbuf_pool_create) shared by handle.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::eal::{Eal, MEMORY_PINNED};
use super::error::DpdkError;
use super::mbuf::Mbuf;

/// A pool of packet buffers. Clones share the pool; ports hold a clone so it outlives them.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    raw: NonNull<dpdk_sys::rte_mempool>,
    name: String,
    _eal: Eal,
}

// SAFETY: rte_mempool is thread-safe for get/put and the counters; the pointer is only freed
// in Drop, when no other handle exists.
unsafe impl Send for PoolInner {}
// SAFETY: as above; every method takes &self and calls thread-safe mempool functions.
unsafe impl Sync for PoolInner {}

impl Mempool {
    /// Creates a pool of `count` mbufs with `data_room` bytes each (headroom included), a
    /// per-lcore cache of `cache` and memory on NUMA `socket` (-1 = any).
    pub fn new(
        eal: &Eal,
        name: &str,
        count: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Self, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::BadArgument(name.to_owned()))?;
        // SAFETY: EAL is initialised (we hold a handle) and cname is a valid C string.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), count, cache, 0, data_room, socket)
        };
        let raw =
            NonNull::new(raw).ok_or_else(|| DpdkError::from_errno("rte_pktmbuf_pool_create"))?;
        Ok(Self {
            inner: Arc::new(PoolInner {
                raw,
                name: name.to_owned(),
                _eal: eal.clone(),
            }),
        })
    }

    /// A pool with DPDK's default buffer size (2048 bytes of data after the headroom).
    pub fn with_default_buffers(eal: &Eal, name: &str, count: u32) -> Result<Self, DpdkError> {
        let room = u16::try_from(dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE).unwrap_or(u16::MAX);
        Self::new(eal, name, count, 256.min(count / 2), room, -1)
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Total number of mbufs in the pool.
    pub fn capacity(&self) -> u32 {
        // SAFETY: the pool is alive while self is; `size` is fixed at creation.
        unsafe { self.inner.raw.as_ref().size }
    }

    /// Mbufs available (in the pool and in the per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive; the count is read without side effects.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.inner.raw.as_ptr()) }
    }

    /// Mbufs currently out of the pool (in flight, in driver rings, or held by code).
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is alive; the count is read without side effects.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.inner.raw.as_ptr()) }
    }

    /// Takes one mbuf, reset, with the default headroom and no data.
    pub fn alloc(&self) -> Result<Mbuf, DpdkError> {
        // SAFETY: the pool is alive and is a pktmbuf pool (created by rte_pktmbuf_pool_create).
        let raw = unsafe { dpdk_sys::rte_pktmbuf_alloc(self.inner.raw.as_ptr()) };
        // SAFETY: a fresh mbuf from alloc is exclusively ours.
        unsafe { Mbuf::from_raw(raw) }
            .ok_or_else(|| DpdkError::PoolExhausted(self.inner.name.clone()))
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.inner.raw.as_ptr()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: the pool is alive until the free below.
        let in_use = unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) };
        if in_use != 0 {
            // Mbufs still out point into this pool: freeing it would let their Drop touch freed
            // memory, so the pool (and the EAL memory under it) is kept for the process.
            MEMORY_PINNED.store(true, Ordering::Release);
            return;
        }
        // SAFETY: this was the last handle and no mbuf of the pool exists.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) };
    }
}
