//! The worker runtime: one worker per rx queue, each on its own EAL lcore; the main lcore is
//! left to control. Workers stop on a shared flag, polled once per burst.

pub mod io_counters;
pub mod pinning;
pub mod signals;

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::dpdk::{Burst, DpdkError, Eal, RxQueue, TxQueue};
pub use io_counters::{CoreCounts, CounterWriter, PerCoreCounters};

/// How many times a worker offers the unsent tail of a burst to tx before dropping it.
pub const TX_RETRIES: usize = 3;

/// What one worker owns: its queues, its counter slot and the stop flag.
pub struct WorkerContext {
    /// Worker number (0-based), also the index of its counter slot.
    pub index: usize,
    pub lcore: u32,
    pub rx: RxQueue,
    pub tx: TxQueue,
    pub counters: CounterWriter,
    stop: Arc<AtomicBool>,
}

impl WorkerContext {
    /// True once control asked the workers to stop.
    #[inline]
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The stop flag itself, for a worker loop that polls it after taking the context apart.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }
}

/// Receive, `process`, transmit until stopped. `process` edits the burst in place (dropping
/// what it does not forward, e.g. with [`Burst::retain_mut`]); every mbuf it removes and every
/// one tx refuses after [`TX_RETRIES`] is counted as dropped. All mbufs are freed on return.
pub fn run_loop<const N: usize>(ctx: &mut WorkerContext, mut process: impl FnMut(&mut Burst<N>)) {
    let mut burst = Burst::<N>::new();
    while !ctx.should_stop() {
        let received = ctx.rx.rx_burst(&mut burst);
        if received == 0 {
            continue;
        }
        ctx.counters.add_rx(received as u64);
        process(&mut burst);
        let mut dropped = received.saturating_sub(burst.len());
        let mut sent = 0;
        for _ in 0..TX_RETRIES {
            sent += ctx.tx.tx_burst(&mut burst);
            if burst.is_empty() {
                break;
            }
        }
        dropped += burst.clear();
        ctx.counters.add_tx(sent as u64);
        ctx.counters.add_dropped(dropped as u64);
    }
}

/// The running workers. Dropping this stops them and waits for every lcore.
pub struct Workers {
    lcores: Vec<u32>,
    stop: Arc<AtomicBool>,
    counters: Arc<PerCoreCounters>,
    joined: bool,
    _eal: Eal,
}

struct Job {
    work: Arc<dyn Fn(WorkerContext) + Send + Sync>,
    ctx: WorkerContext,
}

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<Job> leaked by launch for exactly this call.
    let job = unsafe { Box::from_raw(arg.cast::<Job>()) };
    // A panic must not unwind into C; report it as the lcore's return code instead.
    match catch_unwind(AssertUnwindSafe(move || (job.work)(job.ctx))) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

/// Starts one worker per (rx, tx) queue pair, each on its own worker lcore, running `work`.
pub fn launch<F>(eal: &Eal, queues: Vec<(RxQueue, TxQueue)>, work: F) -> Result<Workers, DpdkError>
where
    F: Fn(WorkerContext) + Send + Sync + 'static,
{
    let lcores = eal.worker_lcores();
    if lcores.len() < queues.len() {
        return Err(DpdkError::NotEnoughLcores {
            workers: queues.len(),
            available: lcores.len(),
        });
    }
    let (counters, writers) = PerCoreCounters::new(queues.len());
    let stop = Arc::new(AtomicBool::new(false));
    let work: Arc<dyn Fn(WorkerContext) + Send + Sync> = Arc::new(work);
    let mut workers = Workers {
        lcores: Vec::with_capacity(queues.len()),
        stop: stop.clone(),
        counters,
        joined: false,
        _eal: eal.clone(),
    };
    for (index, (((rx, tx), counters), lcore)) in
        queues.into_iter().zip(writers).zip(lcores).enumerate()
    {
        let job = Box::into_raw(Box::new(Job {
            work: work.clone(),
            ctx: WorkerContext {
                index,
                lcore,
                rx,
                tx,
                counters,
                stop: stop.clone(),
            },
        }));
        // SAFETY: lcore is an idle worker lcore; on success the trampoline takes ownership
        // of job, on failure it was never started and we take it back below.
        let rc = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), job.cast(), lcore) };
        if rc != 0 {
            // SAFETY: the launch failed, so job is still ours and unused.
            drop(unsafe { Box::from_raw(job) });
            return Err(DpdkError::from_rc("rte_eal_remote_launch", rc));
            // `workers` drops here: it stops and waits for the ones already started.
        }
        workers.lcores.push(lcore);
    }
    Ok(workers)
}

impl Workers {
    pub fn counters(&self) -> &Arc<PerCoreCounters> {
        &self.counters
    }

    pub fn lcores(&self) -> &[u32] {
        &self.lcores
    }

    /// Asks every worker to stop after its current burst.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the workers, waits for all of them and returns how many failed (panicked).
    pub fn join(mut self) -> usize {
        self.stop_and_wait()
    }

    fn stop_and_wait(&mut self) -> usize {
        if self.joined {
            return 0;
        }
        self.joined = true;
        self.stop();
        self.lcores
            .iter()
            // SAFETY: each lcore was launched by us; waiting is valid from the main lcore.
            .filter(|&&l| unsafe { dpdk_sys::rte_eal_wait_lcore(l) } != 0)
            .count()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop_and_wait();
    }
}
