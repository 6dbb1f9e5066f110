//! Model test of the rise/fall state machine against a reference defined over the result history.
//!
//! The reference never counts: a backend goes DOWN when it is up and its last `fall`
//! results are all failures, UP when it is down and its last `rise` results are all
//! successes. The machine under test counts streaks; the two must agree after every step.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use control::health::{Health, Thresholds, Transition};
use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

/// The injected clock's origin; tests move time by adding to it, never by sleeping.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[derive(Clone, Debug)]
enum Step {
    /// A probe result, observed `after` the previous step.
    Probe { ok: bool, after: Duration },
    /// The check was replaced: streaks restart, state stays.
    RestartStreaks,
    /// The check was removed (`none`) or a state imposed.
    Force(bool),
}

#[derive(Clone, Debug)]
struct Model {
    rise: u32,
    fall: u32,
    up: bool,
    /// Results since the last restart of the streaks, oldest first.
    history: Vec<bool>,
    now: Duration,
    last_change: Option<Duration>,
    /// What the last step should have reported.
    expected: Option<(bool, u32)>,
}

impl Model {
    fn last_all(&self, n: u32, ok: bool) -> bool {
        let n = n as usize;
        self.history.len() >= n
            && self.history[self.history.len() - n..]
                .iter()
                .all(|&r| r == ok)
    }

    fn trailing(&self, ok: bool) -> u32 {
        self.history.iter().rev().take_while(|&&r| r == ok).count() as u32
    }
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        (1u32..6, 1u32..6, any::<bool>())
            .prop_map(|(rise, fall, up)| Model {
                rise,
                fall,
                up,
                history: Vec::new(),
                now: Duration::ZERO,
                last_change: None,
                expected: None,
            })
            .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Step> {
        // Results come in runs in real life; weights keep flips frequent enough to matter.
        prop_oneof![
            20 => (any::<bool>(), 0u64..5_000).prop_map(|(ok, ms)| Step::Probe {
                ok,
                after: Duration::from_millis(ms)
            }),
            1 => Just(Step::RestartStreaks),
            1 => any::<bool>().prop_map(Step::Force),
        ]
        .boxed()
    }

    fn apply(mut m: Model, step: &Step) -> Model {
        m.expected = None;
        match *step {
            Step::Probe { ok, after } => {
                m.now += after;
                m.history.push(ok);
                let flips = if m.up {
                    m.last_all(m.fall, false)
                } else {
                    m.last_all(m.rise, true)
                };
                if flips {
                    m.up = !m.up;
                    m.last_change = Some(m.now);
                    m.expected = Some((m.up, m.trailing(ok)));
                }
            }
            Step::RestartStreaks => m.history.clear(),
            Step::Force(up) => {
                m.history.clear();
                if m.up != up {
                    m.up = up;
                    m.last_change = Some(m.now);
                    m.expected = Some((up, 0));
                }
            }
        }
        m
    }
}

struct Machine {
    health: Health,
    thresholds: Thresholds,
    now: Duration,
    /// The previous probe result, to check that a lone failure never takes a backend down.
    previous_ok: Option<bool>,
}

impl StateMachineTest for Machine {
    type SystemUnderTest = Machine;
    type Reference = Reference;

    fn init_test(m: &Model) -> Machine {
        Machine {
            health: Health::new(m.up),
            thresholds: Thresholds::new(m.rise, m.fall),
            now: Duration::ZERO,
            previous_ok: None,
        }
    }

    fn apply(mut sut: Machine, m: &Model, step: Step) -> Machine {
        let got = match step {
            Step::Probe { ok, after } => {
                sut.now += after;
                let got = sut.health.observe(ok, sut.thresholds, epoch() + sut.now);
                if let Some(Transition { up: false, .. }) = got {
                    assert!(
                        m.fall == 1 || sut.previous_ok == Some(false),
                        "one lost probe took the backend down with fall = {}",
                        m.fall
                    );
                }
                sut.previous_ok = Some(ok);
                got
            }
            Step::RestartStreaks => {
                sut.health.restart_streaks();
                sut.previous_ok = None;
                None
            }
            Step::Force(up) => {
                sut.previous_ok = None;
                sut.health.force(up, epoch() + sut.now)
            }
        };
        let want = m.expected.map(|(up, streak)| Transition {
            up,
            at: epoch() + m.now,
            streak,
        });
        assert_eq!(got, want, "transition after {step:?}");
        sut
    }

    fn check_invariants(sut: &Machine, m: &Model) {
        assert_eq!(sut.health.is_up(), m.up);
        assert_eq!(sut.health.consecutive_ok(), m.trailing(true));
        assert_eq!(sut.health.consecutive_fail(), m.trailing(false));
        assert_eq!(sut.health.last_change(), m.last_change.map(|d| epoch() + d));
        // A streak long enough to flip has flipped.
        if m.up {
            assert!(sut.health.consecutive_fail() < m.fall);
        } else {
            assert!(sut.health.consecutive_ok() < m.rise);
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn health_matches_the_history_model(sequential 1..60 => Machine);
}

/// Enough failures to flip, then not quite enough successes: the state is DOWN throughout.
#[test]
fn rise_needs_consecutive_successes() {
    let th = Thresholds::new(3, 2);
    let mut h = Health::new(true);
    let t = |s| epoch() + Duration::from_secs(s);
    assert_eq!(h.observe(false, th, t(0)), None);
    assert!(h.observe(false, th, t(1)).is_some_and(|t| !t.up));
    for (s, ok) in [(2, true), (3, true), (4, false), (5, true), (6, true)] {
        assert_eq!(h.observe(ok, th, t(s)), None);
    }
    assert!(!h.is_up());
    let up = h.observe(true, th, t(7));
    assert_eq!(
        up,
        Some(Transition {
            up: true,
            at: t(7),
            streak: 3
        })
    );
}
