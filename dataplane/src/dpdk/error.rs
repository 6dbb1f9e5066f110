//! Errors of the DPDK wrappers, each naming the call or the limit that failed.

use std::ffi::CStr;

/// What went wrong in a DPDK call or in a request the wrappers refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DpdkError {
    #[error("the EAL can be initialised only once per process")]
    AlreadyInitialised,
    #[error("EAL argument {0:?} contains a NUL byte")]
    BadArgument(String),
    #[error("{call} failed: {message} (errno {errno})")]
    Call {
        call: &'static str,
        errno: i32,
        message: String,
    },
    #[error("device {0:?} not found (pass it to EAL with --vdev or -a)")]
    NoSuchDevice(String),
    #[error("{what}: asked for {requested}, the device allows {min}..={max}")]
    OutOfRange {
        what: &'static str,
        requested: u32,
        min: u32,
        max: u32,
    },
    #[error("{kind} queue {queue} of port {port} is already taken or does not exist")]
    QueueUnavailable {
        kind: &'static str,
        port: u16,
        queue: u16,
    },
    #[error("data range {offset}+{len} does not fit the {capacity}-byte buffer")]
    OutOfBounds {
        offset: usize,
        len: usize,
        capacity: usize,
    },
    #[error("mbuf chain has {0} segments; only single-segment mbufs can be resized")]
    MultiSegment(u16),
    #[error("mempool {0:?} is exhausted")]
    PoolExhausted(String),
    #[error(
        "{workers} workers need {workers} worker lcores besides the main one, EAL has {available}"
    )]
    NotEnoughLcores { workers: usize, available: usize },
}

impl DpdkError {
    /// An error from a call that reports failure through `rte_errno`.
    pub fn from_errno(call: &'static str) -> Self {
        Self::call(call, dpdk_sys::rte_errno())
    }

    /// An error from a call that returns `-errno` (most of ethdev).
    pub fn from_rc(call: &'static str, rc: i32) -> Self {
        Self::call(call, rc.saturating_abs())
    }

    fn call(call: &'static str, errno: i32) -> Self {
        // SAFETY: rte_strerror returns a pointer to a NUL-terminated string, static or per-lcore.
        let message = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(errno)) }
            .to_string_lossy()
            .into_owned();
        Self::Call {
            call,
            errno,
            message,
        }
    }
}

/// Maps a `-errno`-style return code to a Result.
pub(crate) fn check(call: &'static str, rc: i32) -> Result<i32, DpdkError> {
    if rc < 0 {
        Err(DpdkError::from_rc(call, rc))
    } else {
        Ok(rc)
    }
}
