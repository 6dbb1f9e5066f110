//! The pure rise/fall state machine of one backend, fed probe results and an injected clock.

use std::time::Instant;

/// Consecutive results needed to change state; both are at least one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Thresholds {
    rise: u32,
    fall: u32,
}

impl Thresholds {
    /// Zero is read as one: a check that can never flip would silently disable itself.
    pub fn new(rise: u32, fall: u32) -> Self {
        Thresholds {
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    pub fn rise(&self) -> u32 {
        self.rise
    }

    pub fn fall(&self) -> u32 {
        self.fall
    }
}

/// A change of state, reported by the observation that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub up: bool,
    /// When the deciding result was observed.
    pub at: Instant,
    /// How many consecutive equal results decided it.
    pub streak: u32,
}

/// Health of one backend: its state and the current streak of equal probe results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    up: bool,
    consecutive_ok: u32,
    consecutive_fail: u32,
    last_change: Option<Instant>,
}

impl Health {
    /// A backend in state `up` with no probe seen yet.
    pub fn new(up: bool) -> Self {
        Health {
            up,
            consecutive_ok: 0,
            consecutive_fail: 0,
            last_change: None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn consecutive_ok(&self) -> u32 {
        self.consecutive_ok
    }

    pub fn consecutive_fail(&self) -> u32 {
        self.consecutive_fail
    }

    /// When the state last changed; `None` if it never did.
    pub fn last_change(&self) -> Option<Instant> {
        self.last_change
    }

    /// Feeds one probe result observed at `now`; returns the transition it caused, if any.
    pub fn observe(
        &mut self,
        ok: bool,
        thresholds: Thresholds,
        now: Instant,
    ) -> Option<Transition> {
        if ok {
            self.consecutive_ok = self.consecutive_ok.saturating_add(1);
            self.consecutive_fail = 0;
            if !self.up && self.consecutive_ok >= thresholds.rise {
                return Some(self.flip(true, self.consecutive_ok, now));
            }
        } else {
            self.consecutive_fail = self.consecutive_fail.saturating_add(1);
            self.consecutive_ok = 0;
            if self.up && self.consecutive_fail >= thresholds.fall {
                return Some(self.flip(false, self.consecutive_fail, now));
            }
        }
        None
    }

    /// Sets the state without a probe (a check switched to `none`); streaks restart.
    pub fn force(&mut self, up: bool, now: Instant) -> Option<Transition> {
        self.consecutive_ok = 0;
        self.consecutive_fail = 0;
        if self.up == up {
            return None;
        }
        Some(self.flip(up, 0, now))
    }

    /// Forgets the current streaks but keeps the state (the check itself was changed).
    pub fn restart_streaks(&mut self) {
        self.consecutive_ok = 0;
        self.consecutive_fail = 0;
    }

    fn flip(&mut self, up: bool, streak: u32, now: Instant) -> Transition {
        self.up = up;
        self.last_change = Some(now);
        Transition {
            up,
            at: now,
            streak,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_lost_probe_does_not_flip_when_fall_is_above_one() {
        let t0 = Instant::now();
        let th = Thresholds::new(2, 3);
        let mut h = Health::new(true);
        assert_eq!(h.observe(false, th, t0), None);
        assert_eq!(h.observe(true, th, t0 + Duration::from_secs(1)), None);
        assert_eq!(h.observe(false, th, t0 + Duration::from_secs(2)), None);
        assert_eq!(h.observe(false, th, t0 + Duration::from_secs(3)), None);
        assert!(h.is_up());
        let down = h.observe(false, th, t0 + Duration::from_secs(4));
        assert_eq!(
            down,
            Some(Transition {
                up: false,
                at: t0 + Duration::from_secs(4),
                streak: 3
            })
        );
        assert_eq!(h.last_change(), Some(t0 + Duration::from_secs(4)));
    }

    #[test]
    fn zero_thresholds_are_read_as_one() {
        let th = Thresholds::new(0, 0);
        assert_eq!((th.rise(), th.fall()), (1, 1));
        let mut h = Health::new(true);
        let now = Instant::now();
        assert!(h.observe(false, th, now).is_some());
        assert!(h.observe(true, th, now).is_some());
    }

    #[test]
    fn force_reports_only_a_real_change() {
        let now = Instant::now();
        let mut h = Health::new(false);
        assert_eq!(h.force(false, now), None);
        assert_eq!(h.force(true, now).map(|t| t.up), Some(true));
        assert!(h.is_up());
    }
}
