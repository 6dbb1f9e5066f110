//! The EAL: initialised once per process, cleaned up when the last handle goes.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use super::error::DpdkError;

const NEVER: u8 = 0;
const CLAIMED: u8 = 1;

/// 0 = never initialised; 1 = claimed (initialised, running or cleaned up). DPDK cannot
/// re-initialise the EAL after rte_eal_cleanup, so the claim is never released.
static STATE: AtomicU8 = AtomicU8::new(NEVER);

/// Set when a mempool had to be leaked because mbufs were still out: the EAL memory must
/// then outlive the process, so cleanup is skipped.
pub(crate) static MEMORY_PINNED: AtomicBool = AtomicBool::new(false);

/// A handle on the initialised EAL. Clones share it; mempools and ports hold one, so the EAL
/// is cleaned up only after all of them are gone.
#[derive(Clone)]
pub struct Eal {
    _inner: Arc<EalInner>,
}

struct EalInner;

impl Eal {
    /// Runs `rte_eal_init` with `args` (without the program name). Fails cleanly on a second
    /// call in the same process.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Self, DpdkError> {
        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("sluice").map_err(|_| DpdkError::BadArgument("sluice".into()))?);
        for a in args {
            let a = a.as_ref();
            owned.push(CString::new(a).map_err(|_| DpdkError::BadArgument(a.to_owned()))?);
        }
        if STATE
            .compare_exchange(NEVER, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(DpdkError::AlreadyInitialised);
        }
        // EAL may keep pointers into argv (it permutes it and stores some strings), so the
        // strings live for the rest of the process; this happens once.
        let argv: &'static mut [*mut c_char] = Vec::leak(
            owned
                .into_iter()
                .map(CString::into_raw)
                .collect::<Vec<*mut c_char>>(),
        );
        let argc = i32::try_from(argv.len()).map_err(|_| DpdkError::BadArgument("argc".into()))?;
        // SAFETY: argv holds argc valid NUL-terminated strings that are never freed, and the
        // STATE claim above guarantees this is the only rte_eal_init call in the process.
        let rc = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eal_init"));
        }
        Ok(Self {
            _inner: Arc::new(EalInner),
        })
    }

    /// The lcore that runs control (rte_eal_init's caller).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised (we hold a handle).
        unsafe { dpdk_sys::rte_get_main_lcore() }
    }

    /// Every enabled lcore except the main one, in EAL order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut prev = u32::MAX;
        loop {
            // SAFETY: EAL is initialised; u32::MAX (-1) asks for the first lcore.
            let next = unsafe { dpdk_sys::rte_get_next_lcore(prev, 1, 0) };
            if next >= dpdk_sys::RTE_MAX_LCORE {
                return out;
            }
            out.push(next);
            prev = next;
        }
    }

    /// The CPU an lcore is pinned to, if it maps to exactly one.
    pub fn lcore_cpu(&self, lcore: u32) -> Option<usize> {
        let lcore = i32::try_from(lcore).ok()?;
        // SAFETY: EAL is initialised; out-of-range ids return -1.
        let cpu = unsafe { dpdk_sys::rte_lcore_to_cpu_id(lcore) };
        usize::try_from(cpu).ok()
    }

    /// How many ethdev ports EAL found (vdevs and probed PCI devices).
    pub fn port_count(&self) -> u16 {
        // SAFETY: EAL is initialised.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }
}

impl Drop for EalInner {
    fn drop(&mut self) {
        if MEMORY_PINNED.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: the last handle is gone, so no mempool or port created through this EAL is
        // alive (each holds a handle), and no mbuf is outstanding (MEMORY_PINNED is unset).
        unsafe { dpdk_sys::rte_eal_cleanup() };
    }
}

/// The EAL lcore id of the calling thread (u32::MAX on a thread EAL does not know).
pub fn lcore_id() -> u32 {
    // SAFETY: reads the calling thread's per-lcore variable; valid on any thread.
    unsafe { dpdk_sys::rte_lcore_id() }
}
