//! The health checker's threads: one scheduler driving the `Engine` and a bounded pool of probers.
//!
//! Every change is logged to stderr and handed to the caller's callback, on the scheduler
//! thread, so the caller can publish a new forwarding snapshot.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::engine::{Change, Engine, Job, TargetStatus};
use super::probe::probe;
use super::{CheckSettings, Target};

/// The most prober threads the pool grows to.
pub const MAX_PROBERS: usize = 256;

/// Prober threads `targets` need so that probes never queue even if every one of them runs
/// to its timeout (a partition: connects that get no answer): the sum of timeout / interval
/// (at most 1 each: a target has one probe in flight at a time), rounded up, plus one; at most
/// [`MAX_PROBERS`].
pub fn probers_needed(targets: &[Target]) -> usize {
    probes_in_flight(targets.iter().map(|t| &t.spec.settings)).min(MAX_PROBERS)
}

/// [`probers_needed`] without the cap, from each target's settings (`sluice check` warns when
/// it exceeds [`MAX_PROBERS`]).
pub fn probes_in_flight<'a>(settings: impl Iterator<Item = &'a CheckSettings>) -> usize {
    let busy: f64 = settings
        .filter(|s| s.kind != super::CheckKind::None && !s.interval.is_zero())
        .map(|s| (s.timeout.as_secs_f64() / s.interval.as_secs_f64()).min(1.0))
        .sum();
    busy.ceil() as usize + 1
}

/// How the health checker runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerOptions {
    /// Prober threads at least: at most this many probes run at once (at least one). The pool
    /// grows to [`probers_needed`] by the targets, at start and on every `set_targets`.
    pub workers: usize,
    /// Pin every health-check thread to this core (the control core), if set.
    pub core: Option<usize>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            workers: 4,
            core: None,
        }
    }
}

enum Msg {
    Done {
        id: u64,
        target: Target,
        result: Result<(), String>,
    },
    /// Changes made by `set_targets`, to log and report; also wakes the scheduler.
    Changes(Vec<Change>),
    Stop,
}

/// A running health checker; dropping it stops and joins its threads.
pub struct Scheduler {
    engine: Arc<Mutex<Engine>>,
    tx: Sender<Msg>,
    scheduler: Option<JoinHandle<()>>,
    pool: Pool,
}

/// The prober threads, grown by the owner (`set_targets`) and by the scheduler thread (when
/// more probes are in flight than threads: the sum of timeout / interval is an average, and
/// staggered grids of different intervals, or targets a reload adds, can bunch up above it).
#[derive(Clone)]
struct Pool {
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    jobs: Arc<Mutex<Receiver<Job>>>,
    tx: Sender<Msg>,
    core: Option<usize>,
}

impl Pool {
    /// Adds prober threads until there are `n` (at least one, at most [`MAX_PROBERS`] unless
    /// `n` asks for more at start); never shrinks.
    fn grow(&self, n: usize) -> std::io::Result<()> {
        let mut threads = lock(&self.threads);
        while threads.len() < n.max(1) {
            let jobs = Arc::clone(&self.jobs);
            let tx = self.tx.clone();
            let core = self.core;
            let handle = thread::Builder::new()
                .name(format!("health-probe-{}", threads.len()))
                .spawn(move || {
                    pin(core);
                    run_prober(&jobs, &tx)
                })?;
            threads.push(handle);
        }
        Ok(())
    }

    fn len(&self) -> usize {
        lock(&self.threads).len()
    }
}

impl Scheduler {
    /// Starts checking `targets`; `on_change` is called on every change of a backend's health.
    pub fn start<F>(
        targets: Vec<Target>,
        options: SchedulerOptions,
        on_change: F,
    ) -> std::io::Result<Scheduler>
    where
        F: FnMut(&Change) + Send + 'static,
    {
        let mut engine = Engine::new();
        let needed = probers_needed(&targets).max(options.workers);
        let initial = engine.set_targets(targets, Instant::now());
        let engine = Arc::new(Mutex::new(engine));
        let (tx, rx) = mpsc::channel::<Msg>();
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut scheduler = Scheduler {
            engine: Arc::clone(&engine),
            tx: tx.clone(),
            scheduler: None,
            pool: Pool {
                threads: Arc::new(Mutex::new(Vec::new())),
                jobs: job_rx,
                tx: tx.clone(),
                core: options.core,
            },
        };
        if let Err(e) = scheduler.pool.grow(needed) {
            // The probers started so far exit once no job can come; then drop joins them.
            drop(job_tx);
            return Err(e);
        }
        let core = options.core;
        let pool = scheduler.pool.clone();
        let handle = thread::Builder::new()
            .name("health-sched".to_string())
            .spawn(move || {
                pin(core);
                run_scheduler(&engine, &rx, job_tx, &pool, on_change)
            })?;
        scheduler.scheduler = Some(handle);
        if !initial.is_empty() {
            let _ = scheduler.tx.send(Msg::Changes(initial));
        }
        Ok(scheduler)
    }

    /// Prober threads running.
    pub fn probers(&self) -> usize {
        self.pool.len()
    }

    /// Replaces the target set (a reload): targets that stay keep their health. The prober pool
    /// grows if the new set needs more (a thread that cannot start is logged, not fatal).
    pub fn set_targets(&mut self, targets: Vec<Target>) {
        if let Err(e) = self.pool.grow(probers_needed(&targets)) {
            eprintln!("sluice health: could not add prober threads ({e}); probes may queue");
        }
        let changes = lock(&self.engine).set_targets(targets, Instant::now());
        // Also wakes the scheduler, whose next probe may now be earlier.
        let _ = self.tx.send(Msg::Changes(changes));
    }

    /// Every target's current status, ordered by (service, backend).
    pub fn statuses(&self) -> Vec<TargetStatus> {
        lock(&self.engine).statuses()
    }

    /// Whether `backend` of `service` is up; `None` for a target not being checked.
    pub fn is_up(&self, service: &str, backend: std::net::IpAddr) -> Option<bool> {
        lock(&self.engine).is_up(service, backend)
    }

    /// Stops and joins the threads; a probe in progress finishes first (within its timeout).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        // The scheduler first: once it has returned no thread is added, and the probers exit
        // as the job channel it held closes.
        if let Some(handle) = self.scheduler.take() {
            let _ = handle.join();
        }
        let threads = std::mem::take(&mut *lock(&self.pool.threads));
        for handle in threads {
            let _ = handle.join();
        }
    }
}

fn run_scheduler<F>(
    engine: &Mutex<Engine>,
    rx: &Receiver<Msg>,
    job_tx: Sender<Job>,
    pool: &Pool,
    mut on_change: F,
) where
    F: FnMut(&Change),
{
    // Jobs sent and not yet answered (each job sent gets exactly one `Done`).
    let mut in_flight = 0usize;
    let mut warned = false;
    loop {
        let (jobs, wakeup) = {
            let mut engine = lock(engine);
            let jobs = engine.due(Instant::now());
            (jobs, engine.next_wakeup())
        };
        in_flight += jobs.len();
        if in_flight > pool.len() && pool.len() < MAX_PROBERS {
            // A job must not wait for a thread: it would start late, and fail late.
            if let Err(e) = pool.grow(in_flight.min(MAX_PROBERS)) {
                if !warned {
                    eprintln!(
                        "sluice health: could not add prober threads ({e}); probes may queue"
                    );
                    warned = true;
                }
            }
        }
        for job in jobs {
            if job_tx.send(job).is_err() {
                return;
            }
        }
        // Nothing due: sleep until a message (a result, a reload, stop) arrives.
        let msg = match wakeup {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let changes = match msg {
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Ok(Msg::Changes(changes)) => changes,
            Ok(Msg::Done { id, target, result }) => {
                in_flight = in_flight.saturating_sub(1);
                lock(engine)
                    .complete(id, &target, result, Instant::now())
                    .into_iter()
                    .collect()
            }
        };
        for change in &changes {
            log_change(change);
            on_change(change);
        }
    }
}

fn run_prober(jobs: &Mutex<Receiver<Job>>, tx: &Sender<Msg>) {
    loop {
        // The guard is dropped at the end of this statement, before the probe runs.
        let job = lock(jobs).recv();
        let Ok(job) = job else { return };
        let result = probe(&job.target).map_err(|e| e.to_string());
        let done = Msg::Done {
            id: job.id,
            target: job.target,
            result,
        };
        if tx.send(done).is_err() {
            return;
        }
    }
}

fn log_change(change: &Change) {
    let t = &change.target;
    eprintln!(
        "{} sluice health: service={} backend={} check={} port={} now {}: {}",
        utc_timestamp(SystemTime::now()),
        t.service,
        t.backend,
        t.spec.settings.kind.as_str(),
        t.spec.port,
        if change.up { "UP" } else { "DOWN" },
        change.reason
    );
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("sluice health: could not pin thread to core {id}; running unpinned");
        }
    }
}

/// A poisoned lock only means another health thread panicked; the engine stays consistent
/// because every mutation completes before it returns.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `2026-11-22T00:51:01.123Z`, without pulling in a date crate for one log prefix.
fn utc_timestamp(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_308_661_123);
        assert_eq!(utc_timestamp(t), "2026-11-22T00:51:01.123Z");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&utc_timestamp(leap)[..10], "2000-02-29");
    }
}
