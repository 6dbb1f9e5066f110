//! The health checker's schedule under an injected clock: detection bounds, cadence and reloads.
//!
//! A simulated server dies and comes back; probes take a pseudo-random time below the
//! timeout. Nothing sleeps, so the bounds are checked exactly, not as timings.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use control::health::{Change, CheckKind, CheckSettings, Engine, HealthCheckSpec, Target};
use proptest::prelude::*;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn at(ms: u64) -> Instant {
    epoch() + Duration::from_millis(ms)
}

fn backend(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, n))
}

fn target(n: u8, interval_ms: u64, timeout_ms: u64, rise: u32, fall: u32) -> Target {
    Target {
        service: "web".to_string(),
        backend: backend(n),
        spec: HealthCheckSpec {
            settings: CheckSettings {
                kind: CheckKind::Tcp,
                interval: Duration::from_millis(interval_ms),
                timeout: Duration::from_millis(timeout_ms),
                rise,
                fall,
                path: String::new(),
            },
            port: 443,
            host: None,
        },
    }
}

struct Run {
    /// (time in ms, backend number, up) of every change.
    changes: Vec<(u64, u8, bool)>,
    /// Probes started per backend.
    probes: BTreeMap<u8, u64>,
}

/// Runs `engine` from `from_ms` to `until_ms` in 1 ms steps; backend 1 answers only while
/// `alive(t)`, the others always; a probe started at t completes at t + latency(t).
fn simulate(
    engine: &mut Engine,
    from_ms: u64,
    until_ms: u64,
    alive: impl Fn(u64) -> bool,
    latency: impl Fn(u64) -> u64,
) -> Run {
    let mut pending: Vec<(u64, u64, Target, bool)> = Vec::new();
    let mut run = Run {
        changes: Vec::new(),
        probes: BTreeMap::new(),
    };
    let record = |t: u64, c: Option<Change>, run: &mut Run| {
        if let Some(c) = c {
            assert_eq!(c.at, at(t));
            let n = match c.target.backend {
                IpAddr::V4(a) => a.octets()[3],
                IpAddr::V6(_) => unreachable!(),
            };
            run.changes.push((t, n, c.up));
        }
    };
    for t in from_ms..=until_ms {
        let (done, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|p| p.0 <= t);
        pending = rest;
        for (_, id, target, ok) in done {
            let result = if ok {
                Ok(())
            } else {
                Err("refused".to_string())
            };
            let change = engine.complete(id, &target, result, at(t));
            record(t, change, &mut run);
        }
        for job in engine.due(at(t)) {
            let n = match job.target.backend {
                IpAddr::V4(a) => a.octets()[3],
                IpAddr::V6(_) => unreachable!(),
            };
            *run.probes.entry(n).or_default() += 1;
            let ok = n != 1 || alive(t);
            pending.push((t + latency(t), job.id, job.target, ok));
        }
        if let Some(next) = engine.next_wakeup() {
            assert!(next > at(t), "a due probe was left undispatched");
        }
    }
    run
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Down within fall × interval + one interval of the server stopping, up within
    /// rise × interval + one interval of it starting, never earlier than the streak allows;
    /// the other backends never move and every backend is probed once per interval.
    #[test]
    fn detection_is_bounded(
        interval in 20u64..300,
        timeout_pct in 1u64..100,
        rise in 1u32..5,
        fall in 1u32..5,
        others in 0u8..4,
        start in 0u64..1000,
        die_after in 0u64..2000,
        seed in any::<u64>(),
    ) {
        let timeout = (interval * timeout_pct / 100).max(1);
        let die = start + die_after;
        let revive = die + (u64::from(fall) + 2) * interval + seed % interval;
        let end = revive + (u64::from(rise) + 2) * interval;
        let latency = |t: u64| (t.wrapping_mul(0x9e37_79b9).wrapping_add(seed) >> 7) % timeout;

        let mut engine = Engine::new();
        let targets = (1..=others + 1).map(|n| target(n, interval, timeout, rise, fall)).collect();
        prop_assert!(engine.set_targets(targets, at(start)).is_empty());
        let run = simulate(&mut engine, start, end, |t| t < die || t >= revive, latency);

        let fall_ms = u64::from(fall) * interval;
        let rise_ms = u64::from(rise) * interval;
        let [(down_at, 1, false), (up_at, 1, true)] = run.changes[..] else {
            return Err(TestCaseError::fail(format!("changes {:?}", run.changes)));
        };
        prop_assert!(down_at >= die + fall_ms - interval, "down at {down_at}, died at {die}");
        prop_assert!(down_at <= die + fall_ms + interval, "down at {down_at}, died at {die}");
        prop_assert!(up_at >= revive + rise_ms - interval, "up at {up_at}, revived at {revive}");
        prop_assert!(up_at <= revive + rise_ms + interval, "up at {up_at}, revived at {revive}");
        prop_assert!(!engine.statuses().iter().any(|s| !s.up));
        let expected = (end - start) / interval;
        for (n, probes) in &run.probes {
            prop_assert!(probes.abs_diff(expected) <= 1, "backend {n}: {probes} probes, expected {expected}");
        }
    }
}

/// A single lost probe among successes never flips a backend when fall > 1.
#[test]
fn one_lost_probe_does_not_flip() {
    let mut engine = Engine::new();
    engine.set_targets(vec![target(1, 100, 50, 2, 2)], at(0));
    // Every fourth probe (t = 300, 700, ...) is lost.
    let run = simulate(&mut engine, 0, 2000, |t| t % 400 != 300, |_| 10);
    assert!(run.changes.is_empty(), "{:?}", run.changes);
    let status = &engine.statuses()[0];
    assert!(status.up);
    assert_eq!(status.failures, 5);
    // Started at 0, 100, ..., 2000; the last one is still in flight.
    assert_eq!(status.probes, 20);
}

/// A reload keeps the health of targets that stay, and their schedule if the check is the same.
#[test]
fn reload_keeps_health_of_persisting_targets() {
    let t1 = target(1, 100, 50, 2, 2);
    let t2 = target(2, 100, 50, 2, 2);
    let mut engine = Engine::new();
    engine.set_targets(vec![t1.clone(), t2.clone()], at(0));
    let run = simulate(&mut engine, 0, 400, |_| false, |_| 10);
    assert_eq!(run.changes, vec![(110, 1, false)]);

    // Same check: still down, nothing reported, the probe grid goes on where it was.
    let before = engine.next_wakeup();
    assert!(engine
        .set_targets(vec![t2.clone(), t1.clone()], at(401))
        .is_empty());
    assert_eq!(engine.is_up("web", backend(1)), Some(false));
    assert_eq!(engine.next_wakeup(), before);

    // A changed check keeps the state but needs a full new streak: 3 successes for rise 3.
    let mut t1b = target(1, 100, 50, 3, 2);
    t1b.spec.port = 8443;
    engine.set_targets(vec![t1b.clone(), t2.clone()], at(450));
    let status = engine.statuses()[0].clone();
    assert_eq!(status.target, t1b);
    assert!(!status.up);
    assert_eq!((status.consecutive_ok, status.consecutive_fail), (0, 0));
    let run = simulate(&mut engine, 450, 800, |_| true, |_| 10);
    assert_eq!(run.changes, vec![(660, 1, true)]);
}

/// A result for a target removed meanwhile is dropped; the target returns fresh and UP.
#[test]
fn results_of_removed_targets_are_ignored() {
    let t1 = target(1, 100, 50, 1, 1);
    let mut engine = Engine::new();
    engine.set_targets(vec![t1.clone()], at(0));
    let job = engine.due(at(0)).pop().expect("first probe due at once");
    engine.set_targets(vec![], at(5));
    assert_eq!(
        engine.complete(job.id, &t1, Err("refused".into()), at(10)),
        None
    );
    engine.set_targets(vec![t1.clone()], at(20));
    assert_eq!(
        engine.complete(job.id, &t1, Err("refused".into()), at(30)),
        None
    );
    assert_eq!(engine.is_up("web", backend(1)), Some(true));
    assert_eq!(engine.statuses()[0].probes, 0);
}

/// `none` is never probed, and switching a DOWN backend to `none` brings it UP at once.
#[test]
fn check_none_is_always_up() {
    let t1 = target(1, 100, 50, 1, 1);
    let mut engine = Engine::new();
    engine.set_targets(vec![t1.clone()], at(0));
    simulate(&mut engine, 0, 50, |_| false, |_| 10);
    assert_eq!(engine.is_up("web", backend(1)), Some(false));

    let mut none = t1.clone();
    none.spec = HealthCheckSpec::none();
    let changes = engine.set_targets(vec![none], at(60));
    assert_eq!(changes.len(), 1);
    assert!(changes[0].up);
    assert_eq!(changes[0].at, at(60));
    assert_eq!(engine.next_wakeup(), None);
    assert!(engine.due(at(10_000)).is_empty());
}

/// A zero interval (a bad config that slipped through) is clamped, not spun on.
#[test]
fn zero_interval_is_clamped() {
    let mut engine = Engine::new();
    engine.set_targets(vec![target(1, 0, 0, 1, 1)], at(0));
    let run = simulate(&mut engine, 0, 100, |_| true, |_| 0);
    assert_eq!(run.probes[&1], 11);
}

/// A repeated (service, backend) is checked once, with its first check.
#[test]
fn duplicate_targets_keep_the_first() {
    let mut engine = Engine::new();
    let first = target(1, 100, 50, 1, 1);
    let second = target(1, 200, 50, 1, 1);
    engine.set_targets(vec![first.clone(), second], at(0));
    let statuses = engine.statuses();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].target, first);
}
