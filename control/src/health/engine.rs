//! The pure core of the health checker: which probe is due when, and what its result changes.
//!
//! Deterministic and clock-injected: every call takes `now`, nothing sleeps or probes, so
//! the timing guarantees (down within fall × interval + one interval) are tested exactly.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::state::Health;
use super::{CheckKind, Target};

/// Shortest probe interval honoured; a zero interval would spin.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// A backend's health changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub target: Target,
    pub up: bool,
    pub at: Instant,
    /// Why, for the log: the streak that decided it and the last probe error.
    pub reason: String,
}

/// One probe to run now; its result goes back through `Engine::complete` with the same `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: u64,
    pub target: Target,
}

/// What is known about one target, for /state and the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetStatus {
    pub target: Target,
    pub up: bool,
    pub consecutive_ok: u32,
    pub consecutive_fail: u32,
    /// When the state last changed; `None` if it never did since the target appeared.
    pub last_change: Option<Instant>,
    /// The last probe's error; `None` after a success or before any probe.
    pub last_error: Option<String>,
    pub probes: u64,
    pub failures: u64,
}

impl TargetStatus {
    /// A target that no probe has reached yet, reported `up` or down (for reports built by hand).
    pub fn unprobed(target: Target, up: bool) -> Self {
        TargetStatus {
            target,
            up,
            consecutive_ok: 0,
            consecutive_fail: 0,
            last_change: None,
            last_error: None,
            probes: 0,
            failures: 0,
        }
    }
}

type Key = (String, IpAddr);

#[derive(Debug)]
struct Entry {
    target: Target,
    health: Health,
    next_due: Instant,
    in_flight: Option<u64>,
    last_error: Option<String>,
    probes: u64,
    failures: u64,
}

/// Health of a set of targets and their probe schedule.
#[derive(Debug, Default)]
pub struct Engine {
    entries: BTreeMap<Key, Entry>,
    next_job: u64,
}

impl Engine {
    pub fn new() -> Self {
        Engine::default()
    }

    /// Replaces the target set. A target that stays keeps its health, and its schedule too
    /// if its check is unchanged; new targets start UP, their first probes spread over one
    /// interval. A repeated (service, backend) keeps its first check.
    pub fn set_targets(&mut self, targets: Vec<Target>, now: Instant) -> Vec<Change> {
        let count = u32::try_from(targets.len()).unwrap_or(u32::MAX);
        let mut old = std::mem::take(&mut self.entries);
        let mut changes = Vec::new();
        for (index, target) in targets.into_iter().enumerate() {
            let key = target.key();
            if self.entries.contains_key(&key) {
                continue;
            }
            let first_due = now + stagger(interval(&target), index, count);
            let entry = match old.remove(&key) {
                Some(mut entry) if entry.target.spec == target.spec => {
                    entry.target = target;
                    entry
                }
                Some(mut entry) => {
                    // A result of the old check says nothing about the new one.
                    entry.health.restart_streaks();
                    entry.in_flight = None;
                    entry.last_error = None;
                    entry.next_due = first_due;
                    entry.target = target;
                    entry
                }
                None => Entry {
                    target,
                    health: Health::new(true),
                    next_due: first_due,
                    in_flight: None,
                    last_error: None,
                    probes: 0,
                    failures: 0,
                },
            };
            let mut entry = entry;
            if entry.target.spec.settings.kind == CheckKind::None {
                if let Some(t) = entry.health.force(true, now) {
                    changes.push(Change {
                        target: entry.target.clone(),
                        up: t.up,
                        at: t.at,
                        reason: "health check removed".to_string(),
                    });
                }
            }
            self.entries.insert(key, entry);
        }
        changes
    }

    /// The probes due at `now`; each is marked in flight until completed and rescheduled to
    /// the next slot of its fixed grid, so a slow probe never shifts later ones.
    pub fn due(&mut self, now: Instant) -> Vec<Job> {
        let mut jobs = Vec::new();
        for entry in self.entries.values_mut() {
            if entry.target.spec.settings.kind == CheckKind::None
                || entry.in_flight.is_some()
                || entry.next_due > now
            {
                continue;
            }
            let id = self.next_job;
            self.next_job += 1;
            entry.in_flight = Some(id);
            entry.next_due = next_slot(entry.next_due, interval(&entry.target), now);
            jobs.push(Job {
                id,
                target: entry.target.clone(),
            });
        }
        jobs
    }

    /// Applies the result of job `id` for `target`, observed at `now`. A result for a target
    /// that was removed or whose check changed meanwhile is ignored.
    pub fn complete(
        &mut self,
        id: u64,
        target: &Target,
        result: Result<(), String>,
        now: Instant,
    ) -> Option<Change> {
        let entry = self.entries.get_mut(&target.key())?;
        if entry.in_flight != Some(id) {
            return None;
        }
        entry.in_flight = None;
        entry.probes += 1;
        let ok = result.is_ok();
        if let Err(e) = result {
            entry.failures += 1;
            entry.last_error = Some(e);
        } else {
            entry.last_error = None;
        }
        let thresholds = entry.target.spec.thresholds();
        let t = entry.health.observe(ok, thresholds, now)?;
        let reason = match &entry.last_error {
            Some(e) if !t.up => format!("{} consecutive failed probes, last: {e}", t.streak),
            _ => format!("{} consecutive successful probes", t.streak),
        };
        Some(Change {
            target: entry.target.clone(),
            up: t.up,
            at: t.at,
            reason,
        })
    }

    /// When the next probe falls due; `None` when nothing is waiting to be probed.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| e.target.spec.settings.kind != CheckKind::None && e.in_flight.is_none())
            .map(|e| e.next_due)
            .min()
    }

    /// Whether `backend` of `service` is up; `None` for an unknown target.
    pub fn is_up(&self, service: &str, backend: IpAddr) -> Option<bool> {
        self.entries
            .get(&(service.to_string(), backend))
            .map(|e| e.health.is_up())
    }

    /// Every target's status, ordered by (service, backend).
    pub fn statuses(&self) -> Vec<TargetStatus> {
        self.entries
            .values()
            .map(|e| TargetStatus {
                target: e.target.clone(),
                up: e.health.is_up(),
                consecutive_ok: e.health.consecutive_ok(),
                consecutive_fail: e.health.consecutive_fail(),
                last_change: e.health.last_change(),
                last_error: e.last_error.clone(),
                probes: e.probes,
                failures: e.failures,
            })
            .collect()
    }
}

fn interval(target: &Target) -> Duration {
    target.spec.settings.interval.max(MIN_INTERVAL)
}

/// The first probe of target `index` of `count`: spread evenly over one interval.
fn stagger(interval: Duration, index: usize, count: u32) -> Duration {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    if count == 0 {
        return Duration::ZERO;
    }
    let nanos = interval.as_nanos() * u128::from(index) / u128::from(count);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The first slot of the grid `due + k × interval` (k ≥ 1) that is after `now`.
fn next_slot(due: Instant, interval: Duration, now: Instant) -> Instant {
    let step = interval.as_nanos().max(1);
    let behind = now.saturating_duration_since(due).as_nanos();
    let slots = behind / step + 1;
    let ahead = u64::try_from(slots * step).unwrap_or(u64::MAX);
    due + Duration::from_nanos(ahead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_slots() {
        let t0 = Instant::now();
        let iv = Duration::from_secs(2);
        assert_eq!(next_slot(t0, iv, t0), t0 + iv);
        assert_eq!(next_slot(t0, iv, t0 + Duration::from_millis(1999)), t0 + iv);
        assert_eq!(next_slot(t0, iv, t0 + iv), t0 + 2 * iv);
        assert_eq!(
            next_slot(t0, iv, t0 + Duration::from_millis(5500)),
            t0 + 3 * iv
        );
    }

    #[test]
    fn stagger_spreads_over_one_interval() {
        let iv = Duration::from_millis(100);
        assert_eq!(stagger(iv, 0, 4), Duration::ZERO);
        assert_eq!(stagger(iv, 1, 4), Duration::from_millis(25));
        assert_eq!(stagger(iv, 3, 4), Duration::from_millis(75));
        assert_eq!(stagger(iv, 0, 0), Duration::ZERO);
    }
}
