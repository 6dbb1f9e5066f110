//! TSC ticks to nanoseconds without a division on the packet path.

/// TSC ticks to nanoseconds as one multiply and a shift: a u128 division per burst costs
/// ~50-100 cycles (`__udivti3`), this one `mul`. The rate error (< 1e-9) is a clock running
/// that much fast or slow, which flow timeouts do not notice.
#[derive(Clone, Copy, Debug)]
pub struct TscToNs {
    /// Nanoseconds per tick, fixed point with 32 fractional bits (< 2^64 for any rate >= 1 Hz).
    ns_per_tick_q32: u64,
}

impl TscToNs {
    pub fn new(tsc_hz: u64) -> Self {
        Self {
            ns_per_tick_q32: (1_000_000_000u64 << 32) / tsc_hz.max(1),
        }
    }

    #[inline]
    pub fn ns(self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.ns_per_tick_q32)) >> 32) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_exact_division_within_a_nanosecond_per_second() {
        for hz in [
            1u64,
            1_000_000,
            1_999_999_999,
            2_200_000_000,
            3_000_000_000,
            5_000_000_001,
        ] {
            let c = TscToNs::new(hz);
            for ticks in [0u64, 1, 999, hz, hz * 3 + 7, hz * 86_400 * 365] {
                let exact = (u128::from(ticks) * 1_000_000_000 / u128::from(hz)) as u64;
                let got = c.ns(ticks);
                // Truncated fixed point: never ahead, behind by < 1 ns per second of ticks + 1.
                assert!(got <= exact, "hz {hz} ticks {ticks}: {got} > {exact}");
                assert!(
                    exact - got <= exact / 1_000_000_000 + 1,
                    "hz {hz} ticks {ticks}: {got} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn is_monotonic() {
        let c = TscToNs::new(2_345_678_901);
        let mut last = 0;
        for ticks in (0..1_000_000u64).step_by(7) {
            let ns = c.ns(ticks);
            assert!(ns >= last);
            last = ns;
        }
    }
}
