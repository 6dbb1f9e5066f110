//! A token bucket on the injected clock, in integer nanotokens (no floats, no syscalls).

const NANO: u64 = 1_000_000_000;

/// Admits `rate` events per second with bursts of up to `burst`; rate 0 admits everything.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    cap: u64,
    credit: u64,
    last: u64,
}

impl TokenBucket {
    /// Starts full.
    pub fn new(rate: u32, burst: u32) -> Self {
        let cap = u64::from(burst.max(1)).saturating_mul(NANO);
        Self {
            rate: u64::from(rate),
            cap,
            credit: cap,
            last: 0,
        }
    }

    /// A bucket whose burst is a tenth of a second of `rate` (at least one token).
    pub fn per_second(rate: u32) -> Self {
        Self::new(rate, (rate / 10).max(1))
    }

    /// Takes one token if there is one at time `now` (nanoseconds, monotonic).
    #[inline]
    pub fn admit(&mut self, now: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        self.credit = self.cap.min(
            self.credit
                .saturating_add(elapsed.saturating_mul(self.rate)),
        );
        if self.credit >= NANO {
            self.credit -= NANO;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(10, 3);
        assert!(b.admit(0) && b.admit(0) && b.admit(0));
        assert!(!b.admit(0));
        // 10/s: one token every 100 ms.
        assert!(!b.admit(99_999_999));
        assert!(b.admit(100_000_000));
        assert!(!b.admit(100_000_000));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let mut b = TokenBucket::new(0, 1);
        assert!((0..1000).all(|_| b.admit(0)));
    }
}
