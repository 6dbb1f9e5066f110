//! SIGINT/SIGTERM turn into a stop request, SIGHUP into a reload request; the control loop
//! polls both. A storm of SIGHUPs coalesces into one pending reload.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);
static RELOAD_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    if sig == libc::SIGHUP {
        RELOAD_REQUESTED.store(true, Ordering::SeqCst);
    } else {
        STOP_REQUESTED.store(true, Ordering::SeqCst);
    }
}

/// Installs the SIGINT, SIGTERM and SIGHUP handlers (idempotent).
pub fn install() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: sigaction is plain-old-data; zeroed is a valid empty value we then fill.
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        act.sa_flags = libc::SA_RESTART;
        // SAFETY: act.sa_mask is a valid sigset_t to empty; the handler is async-signal-safe.
        let rc = unsafe {
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True once SIGINT or SIGTERM arrived (or [`request_stop`] was called).
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}

/// Asks for the same orderly stop a signal would.
pub fn request_stop() {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Asks for a reload, as SIGHUP does (e.g. from `POST /-/reload`).
pub fn request_reload() {
    RELOAD_REQUESTED.store(true, Ordering::SeqCst);
}

/// True once per pending reload request (SIGHUP or [`request_reload`]); clears it.
pub fn take_reload_request() -> bool {
    RELOAD_REQUESTED.swap(false, Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_sets_the_stop_flag() {
        install().unwrap();
        // SAFETY: raising a signal we handle; the handler only stores an atomic.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        assert!(stop_requested());
    }

    #[test]
    fn sighups_coalesce_into_one_reload_request() {
        install().unwrap();
        for _ in 0..5 {
            // SAFETY: raising a signal we handle; the handler only stores an atomic.
            assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        }
        assert!(take_reload_request());
        assert!(!take_reload_request(), "five signals, one reload");
    }
}
