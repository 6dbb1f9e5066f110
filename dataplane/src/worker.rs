//! The load-balancing worker: rx burst -> pipeline -> per-port tx, with RCU and published stats.
//!
//! This is the thin glue between mbufs and the pure [`Pipeline`]: it lends each mbuf's buffer
//! to the pipeline as a [`Frame`], writes the new data window back, and sorts the burst by
//! verdict. Per burst: one snapshot load, one quiescent-state report, no allocation, no lock.
//! The worker counts in its pipeline's [`Counters`], which it copies out for control about
//! once a millisecond (a `try_lock` that never waits: if control is reading, the copy is
//! skipped until the next time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrayvec::ArrayVec;
use crossbeam_queue::ArrayQueue;

use crate::dpdk::{Burst, Mbuf, RxQueue, TxQueue};
use crate::frame::{Frame, TxOffload};
use crate::pipeline::{Pipeline, Verdict, BURST};
use crate::rcu::Reader;
use crate::runtime::TX_RETRIES;
use crate::snapshot::Snapshot;
use crate::stats::{Counters, DropReason};
use crate::tsc::TscToNs;

pub use crate::control_frame::ControlFrame;

/// What control can read of one worker: its [`Counters`] as last published.
pub type WorkerStats = Mutex<Counters>;

/// One transmit path: a port's tx queue owned by this worker, and its pending burst.
pub struct TxPath {
    pub port: u16,
    pub queue: TxQueue,
    burst: Burst<BURST>,
    /// Kernel path only: the kernel's copies of frames handed to control, sent after `burst`
    /// and counted apart (each such frame counts once, as a control frame: not tx, not a drop).
    copies: Burst<BURST>,
}

impl TxPath {
    pub fn new(queue: TxQueue) -> Self {
        Self {
            port: queue.port(),
            queue,
            burst: Burst::new(),
            copies: Burst::new(),
        }
    }
}

/// Everything one load-balancing worker owns.
pub struct LbWorker {
    pub rx: RxQueue,
    /// One per port, so a packet may leave by any interface.
    pub tx: Vec<TxPath>,
    /// This worker's queue on its rx port's kernel interface (the exception path), if any.
    pub kernel: Option<TxPath>,
    pub pipeline: Pipeline,
    pub snapshot: Reader<Snapshot>,
    pub to_control: Arc<ArrayQueue<ControlFrame>>,
    /// Frames control hands over (its own ARP requests and solicitations, what a kernel
    /// interface sent) for a port that has no tx queue to spare for control (af_packet: one
    /// queue pair), sent by this worker.
    pub from_control: Option<Arc<ArrayQueue<FromControl>>>,
    pub stats: Arc<WorkerStats>,
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// The workers' inbound queues, with more than one worker and nat services.
    pub redirect: Option<Redirect>,
}

/// Frames a worker hands the worker owning their nat connection (see [`crate::steer`]):
/// one queue per worker, which only its owner pops; each mbuf's `port` says where it came in.
pub struct Redirect {
    /// Every worker's inbound queue, by worker index.
    pub queues: Arc<[ArrayQueue<Mbuf>]>,
    /// This worker's index.
    pub index: usize,
}

impl Redirect {
    /// `workers` queues of `capacity` frames each.
    pub fn queues(workers: usize, capacity: usize) -> Arc<[ArrayQueue<Mbuf>]> {
        (0..workers)
            .map(|_| ArrayQueue::new(capacity.max(1)))
            .collect()
    }

    fn own(&self) -> Option<&ArrayQueue<Mbuf>> {
        self.queues.get(self.index)
    }

    /// Frees what is left in `queues` once every worker has stopped, each frame counted as a
    /// `redirect_queue_full` drop in its owner's published copy (`stats`, by worker index);
    /// returns how many. The one place leftovers go: a worker leaves its queue when it stops,
    /// since another may still hand it frames. Called while a worker still runs, its next
    /// publication would overwrite the count.
    pub fn discard_stopped(queues: &[ArrayQueue<Mbuf>], stats: &[Arc<WorkerStats>]) -> u64 {
        let mut total = 0;
        for (i, q) in queues.iter().enumerate() {
            let mut n = 0u64;
            while q.pop().is_some() {
                n += 1;
            }
            if let (true, Some(s)) = (n > 0, stats.get(i)) {
                let mut c = s.lock().unwrap_or_else(|p| p.into_inner());
                c.drop_n(DropReason::RedirectQueueFull, n);
            }
            total += n;
        }
        total
    }
}

/// What control counts of the frames one interface's kernel sent out of its data port (the
/// exception path, from the kernel). Shared with worker 0, which sends them on a port with no
/// tx queue for control and counts what became of each there.
#[derive(Debug, Default)]
pub struct FromKernelStats {
    /// Sent out of the data port.
    pub packets: AtomicU64,
    /// Over `kernel.rate`, dropped before any send.
    pub rate_limited: AtomicU64,
    /// Not sent: the data port's tx queue or worker 0's full hand-over queue refused them.
    pub tx_full: AtomicU64,
}

/// A frame control hands worker 0 to send on `port`, a port with no tx queue for control.
pub struct FromControl {
    pub port: u16,
    pub frame: Mbuf,
    pub origin: Origin,
}

/// Whose frame control hands over: its send or refusal is counted where that path counts it
/// on a port with a tx queue for control, never as the worker's packets (it received none).
pub enum Origin {
    /// Control's own ARP request or neighbour solicitation: counted nowhere, as on control's
    /// own tx queue (the next one is due soon anyway).
    Control,
    /// What a kernel interface sent: counted in that interface's from-kernel counts.
    Kernel(Arc<FromKernelStats>),
}

impl Origin {
    /// Counts one frame of this origin sent (`true`) or refused and freed (`false`).
    pub fn count(&self, sent: bool) {
        if let Origin::Kernel(s) = self {
            let n = if sent { &s.packets } else { &s.tx_full };
            n.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends `burst` on `queue` (a few tries while the queue takes some); returns how many left
/// and how many it did not take, freed.
fn send(queue: &mut TxQueue, burst: &mut Burst<BURST>) -> (u64, u64) {
    if burst.is_empty() {
        return (0, 0);
    }
    let mut sent = 0;
    for _ in 0..TX_RETRIES {
        sent += queue.tx_burst(burst) as u64;
        if burst.is_empty() {
            break;
        }
    }
    (sent, burst.clear() as u64)
}

/// TSC ticks per second as EAL measured them (never 0).
pub fn tsc_hz() -> u64 {
    // SAFETY: rte_get_tsc_hz only reads a value EAL measured at init.
    let hz = unsafe { dpdk_sys::rte_get_tsc_hz() };
    hz.max(1)
}

fn rdtsc() -> u64 {
    // SAFETY: rte_rdtsc only reads the time-stamp counter.
    unsafe { dpdk_sys::rte_rdtsc() }
}

impl LbWorker {
    /// Runs bursts until `stop()` returns true; every mbuf is freed or sent on return.
    pub fn run(&mut self, stop: impl Fn() -> bool) {
        let mut burst = Burst::<BURST>::new();
        let mut handed = Burst::<BURST>::new();
        // A redirected frame from another port than the rest of its burst, kept for the next.
        let mut carry: Option<Mbuf> = None;
        let mut verdicts = [Verdict::Drop(DropReason::Truncated); BURST];
        let publish_every = (self.tsc_hz / 1000).max(1);
        let to_ns = TscToNs::new(self.tsc_hz);
        let mut last_publish = 0u64;
        let in_port = self.rx.port();
        // When the coming poll started, for the busy time: the previous poll's last reading
        // (only the control hand-over check lies between), so polling costs no extra rdtsc.
        let mut polled = rdtsc();
        while !stop() {
            self.send_from_control();
            let received = self.rx.rx_burst(&mut burst);
            let handed_port = self.take_redirected(&mut handed, &mut carry);
            let t0 = rdtsc();
            if received == 0 && handed_port.is_none() {
                self.snapshot.quiescent();
                polled = t0;
                if t0.wrapping_sub(last_publish) >= publish_every {
                    // Bursts sweep the flow table as they come; an idle queue sweeps here, so
                    // expired flows (a drained backend's) leave without traffic too.
                    self.pipeline.sweep_idle(to_ns.ns(t0));
                    self.publish();
                    last_publish = t0;
                    polled = rdtsc();
                }
                continue;
            }
            let now_ns = to_ns.ns(t0);
            let mut sent = 0u64;
            if received > 0 {
                self.pipeline.counters_mut().rx += received as u64;
                sent += self.pass(&mut burst, in_port, now_ns, &mut verdicts);
            }
            // Counted as received by the worker that took them off the wire, not again here.
            if let Some(port) = handed_port {
                sent += self.pass(&mut handed, port, now_ns, &mut verdicts);
            }
            let t1 = rdtsc();
            let c = self.pipeline.counters_mut();
            c.latency.record(to_ns.ns(t1.wrapping_sub(t0)), sent);
            c.busy_ns += to_ns.ns(t1.wrapping_sub(polled));
            c.bursts += 1;
            polled = t1;
            if t1.wrapping_sub(last_publish) >= publish_every {
                self.publish();
                last_publish = t1;
                // Publishing is bookkeeping, not packet work: the next busy span starts after it.
                polled = rdtsc();
            }
        }
        // A handed-over frame taken but not processed: a drop, so rx = tx + drops + control
        // frames holds. What is still in the inbound queue (other workers may add to it until
        // they stop too) is `Redirect::discard_stopped`'s, once all have stopped.
        let unprocessed = u64::from(carry.take().is_some());
        self.pipeline
            .counters_mut()
            .drop_n(DropReason::RedirectQueueFull, unprocessed);
        // The last copy waits for the lock: nothing may be lost after the worker stops.
        self.pipeline.refresh_gauges();
        let mut c = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        self.pipeline.counters().copy_into(&mut c);
        drop(c);
        self.snapshot.offline();
    }

    /// Up to a burst of frames other workers handed over, all from one port (returned), or
    /// None when there are none (always, with a single worker: one branch per poll).
    fn take_redirected(
        &mut self,
        burst: &mut Burst<BURST>,
        carry: &mut Option<Mbuf>,
    ) -> Option<u16> {
        let q = self.redirect.as_ref()?.own()?;
        // `pop` on an empty queue fences (SeqCst); `is_empty` only loads: most polls find none.
        let first = carry
            .take()
            .or_else(|| if q.is_empty() { None } else { q.pop() })?;
        let port = first.port();
        let mut next = Some(first);
        while let Some(m) = next.take() {
            if m.port() != port {
                *carry = Some(m);
                break;
            }
            if let Err(m) = burst.push(m) {
                *carry = Some(m);
                break;
            }
            if !burst.is_full() {
                next = q.pop();
            }
        }
        Some(port)
    }

    /// Runs one burst that came in on `in_port` through the pipeline and sends it on its
    /// way; returns how many packets were sent.
    fn pass(
        &mut self,
        burst: &mut Burst<BURST>,
        in_port: u16,
        now_ns: u64,
        verdicts: &mut [Verdict; BURST],
    ) -> u64 {
        {
            let snap = self.snapshot.read();
            let mut windows = [(0usize, 0usize, TxOffload::default()); BURST];
            {
                let mut frames: ArrayVec<Frame<'_>, BURST> = ArrayVec::new();
                for m in burst.iter_mut() {
                    let segments = m.segments();
                    let checked = m.ipv4_checksum_good();
                    let b = m.buffer_mut();
                    // A chained mbuf's first segment is not the whole packet: give the
                    // pipeline an empty frame, which it drops and counts as truncated.
                    let (off, len) = if segments > 1 {
                        (0, 0)
                    } else {
                        (b.data_off, b.data_len)
                    };
                    let fits = off.checked_add(len).is_some_and(|e| e <= b.buffer.len());
                    let f = if fits {
                        Frame::new(b.buffer, off, len)
                    } else {
                        Frame::new(&mut [], 0, 0)
                    };
                    // An empty frame keeps verdicts aligned with the burst; it is dropped.
                    if let Ok(mut f) = f {
                        f.ipv4_checksum_good = checked;
                        frames.push(f);
                    } else if let Ok(f) = Frame::new(&mut [], 0, 0) {
                        frames.push(f);
                    }
                }
                let n = self
                    .pipeline
                    .process_burst(&mut frames, in_port, &snap, now_ns, verdicts);
                for (w, f) in windows.iter_mut().zip(&frames[..n]) {
                    *w = (f.start(), f.len(), f.offload);
                }
            }
            for (m, (off, len, offload)) in burst.iter_mut().zip(windows) {
                if len > 0 && m.set_data_range(off, len).is_err() {
                    // Cannot happen for a window the pipeline kept inside the buffer.
                    continue;
                }
                if offload.outer_ipv4_checksum {
                    m.request_ipv4_checksum(offload.l2_len, u16::from(offload.l3_len));
                }
            }
        }
        self.snapshot.quiescent();
        let mut tx_dropped = 0u64;
        // Of those, frames for the kernel (counted `to_kernel` by the pipeline, taken back).
        let mut kernel_dropped = 0u64;
        let mut redirect_dropped = 0u64;
        // Kernel copies of frames handed to control that the tap refused: not packet drops.
        let mut copies_refused = 0u64;
        for (m, v) in burst.drain().zip(*verdicts) {
            match v {
                Verdict::Forward { port } | Verdict::Reply { port } => {
                    match self.tx.iter_mut().find(|t| t.port == port) {
                        Some(t) => {
                            if let Err(m) = t.burst.push(m) {
                                drop(m);
                                tx_dropped += 1;
                            }
                        }
                        None => tx_dropped += 1,
                    }
                }
                Verdict::Redirect { worker } => {
                    if !self.hand_over(worker, m, in_port) {
                        redirect_dropped += 1;
                    }
                }
                Verdict::ToKernel => {
                    if !self.queue_for_kernel(m) {
                        kernel_dropped += 1;
                    }
                }
                Verdict::ToControl | Verdict::ToControlAndKernel => {
                    match ControlFrame::copy_of(in_port, m.data()) {
                        Some(cf) => {
                            if self.to_control.push(cf).is_err() {
                                // Not handed to control after all: a drop, not a control frame.
                                self.not_to_control(DropReason::ControlQueueFull);
                            }
                        }
                        None => self.not_to_control(DropReason::ControlFrameTooLong),
                    }
                    if v == Verdict::ToControlAndKernel && !self.queue_kernel_copy(m) {
                        copies_refused += 1;
                    }
                }
                // Counted by the pipeline.
                Verdict::Drop(_) => {}
            }
        }
        let mut sent = 0u64;
        for t in self.tx.iter_mut() {
            let (s, refused) = send(&mut t.queue, &mut t.burst);
            sent += s;
            tx_dropped += refused;
        }
        if let Some(k) = self.kernel.as_mut() {
            let (s, refused) = send(&mut k.queue, &mut k.burst);
            sent += s;
            kernel_dropped += refused;
            copies_refused += send(&mut k.queue, &mut k.copies).1;
        }
        let c = self.pipeline.counters_mut();
        c.to_kernel = c.to_kernel.wrapping_sub(kernel_dropped + copies_refused);
        c.kernel_tx_full += kernel_dropped + copies_refused;
        c.drop_n(DropReason::TxQueueFull, tx_dropped + kernel_dropped);
        c.drop_n(DropReason::RedirectQueueFull, redirect_dropped);
        c.tx += sent;
        sent
    }

    /// A frame the pipeline counted as handed to control that was not (`reason`): a drop.
    #[cold]
    fn not_to_control(&mut self, reason: DropReason) {
        let c = self.pipeline.counters_mut();
        c.to_control = c.to_control.saturating_sub(1);
        c.drop(reason);
    }

    /// Hands `m`, stamped with the port it came in on, to `worker`'s inbound queue; false
    /// (the mbuf freed) when that is full or there is no such worker.
    fn hand_over(&self, worker: u16, mut m: Mbuf, in_port: u16) -> bool {
        m.set_port(in_port);
        let q = self
            .redirect
            .as_ref()
            .and_then(|r| r.queues.get(usize::from(worker)));
        match q {
            Some(q) => q.push(m).is_ok(),
            None => false,
        }
    }

    /// Queues `m` for this worker's kernel interface; false (the mbuf freed) when the port has
    /// none or the burst is full.
    fn queue_for_kernel(&mut self, m: Mbuf) -> bool {
        match self.kernel.as_mut() {
            Some(k) => k.burst.push(m).is_ok(),
            None => false,
        }
    }

    /// [`LbWorker::queue_for_kernel`] for the kernel's copy of a frame handed to control,
    /// queued apart so the send neither counts it in tx nor its refusal as a drop.
    fn queue_kernel_copy(&mut self, m: Mbuf) -> bool {
        match self.kernel.as_mut() {
            Some(k) => k.copies.push(m).is_ok(),
            None => false,
        }
    }

    /// Sends what control handed over (rare; an empty queue costs two loads, no fence or write).
    fn send_from_control(&mut self) {
        let Some(q) = &self.from_control else {
            return;
        };
        // `pop` on an empty queue fences; `is_empty` only loads.
        if q.is_empty() {
            return;
        }
        while let Some(FromControl {
            port,
            frame,
            origin,
        }) = q.pop()
        {
            let mut sent = false;
            if let Some(t) = self.tx.iter_mut().find(|t| t.port == port) {
                let mut one = Burst::<1>::new();
                // What tx did not take is freed with `one`.
                sent = one.push(frame).is_ok() && t.queue.tx_burst(&mut one) == 1;
            }
            origin.count(sent);
        }
    }

    /// Copies the counters out for control, unless control is reading them now.
    fn publish(&mut self) {
        self.pipeline.refresh_gauges();
        if let Ok(mut c) = self.stats.try_lock() {
            self.pipeline.counters().copy_into(&mut c);
        }
    }
}
