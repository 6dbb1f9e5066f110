//! CPU pinning: keeps control-side threads (metrics, health checks, neighbours) on the control
//! core, off the worker cores.

use crate::dpdk::Eal;

/// The CPU of the EAL main lcore, where control work runs (None if it is not one CPU).
pub fn control_cpu(eal: &Eal) -> Option<usize> {
    eal.lcore_cpu(eal.main_lcore())
}

/// Pins the calling thread to `cpu`; returns false if the OS refused.
pub fn pin_current_thread(cpu: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

/// Spawns a named control-side thread pinned to the control core, off the worker cores.
pub fn spawn_control_thread<F, T>(
    eal: &Eal,
    name: &str,
    f: F,
) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let cpu = control_cpu(eal);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Some(cpu) = cpu {
                pin_current_thread(cpu);
            }
            f()
        })
}

/// The CPUs the calling thread may run on (from sched_getaffinity).
pub fn current_affinity() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid cpu_set_t of the size we pass; 0 = the calling thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET reads a bit of the valid set, i < CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}
