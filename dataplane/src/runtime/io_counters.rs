//! Per-core I/O counters of the plain forwarding loop ([`super::run_loop`]): packets each worker
//! took from rx bursts, sent, and dropped; one cache-line-padded slot per worker, single writer
//! each. (The load-balancing worker counts everything in `stats::Counters`.)

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

#[derive(Default)]
struct Slot {
    rx: AtomicU64,
    tx: AtomicU64,
    dropped: AtomicU64,
}

/// A point-in-time copy of one core's counters (or their sum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoreCounts {
    pub rx: u64,
    pub tx: u64,
    pub dropped: u64,
}

impl std::ops::Add for CoreCounts {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            rx: self.rx + o.rx,
            tx: self.tx + o.tx,
            dropped: self.dropped + o.dropped,
        }
    }
}

/// The counters of every worker, readable from control at any time.
pub struct PerCoreCounters {
    slots: Box<[CachePadded<Slot>]>,
}

impl PerCoreCounters {
    /// Counters for `cores` workers and the one writer for each slot.
    pub fn new(cores: usize) -> (Arc<Self>, Vec<CounterWriter>) {
        let me = Arc::new(Self {
            slots: (0..cores)
                .map(|_| CachePadded::new(Slot::default()))
                .collect(),
        });
        let writers = (0..cores)
            .map(|index| CounterWriter {
                counters: me.clone(),
                index,
                _not_sync: PhantomData,
            })
            .collect();
        (me, writers)
    }

    pub fn cores(&self) -> usize {
        self.slots.len()
    }

    /// One core's counters (None past the last core).
    pub fn core(&self, index: usize) -> Option<CoreCounts> {
        self.slots.get(index).map(|s| CoreCounts {
            rx: s.rx.load(Ordering::Relaxed),
            tx: s.tx.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
        })
    }

    /// Sum over all cores.
    pub fn total(&self) -> CoreCounts {
        (0..self.cores())
            .filter_map(|i| self.core(i))
            .fold(CoreCounts::default(), |a, b| a + b)
    }
}

/// The only writer of one core's slot: `Send` (moves to its worker) but neither `Sync` nor
/// `Clone`, so the plain load-then-store updates below never race with another writer.
pub struct CounterWriter {
    counters: Arc<PerCoreCounters>,
    index: usize,
    _not_sync: PhantomData<Cell<()>>,
}

impl CounterWriter {
    pub fn index(&self) -> usize {
        self.index
    }

    fn slot(&self) -> &Slot {
        // index < slots.len() by construction in PerCoreCounters::new.
        &self.counters.slots[self.index]
    }

    #[inline]
    pub fn add_rx(&self, n: u64) {
        bump(&self.slot().rx, n);
    }

    #[inline]
    pub fn add_tx(&self, n: u64) {
        bump(&self.slot().tx, n);
    }

    #[inline]
    pub fn add_dropped(&self, n: u64) {
        bump(&self.slot().dropped, n);
    }
}

/// Single-writer increment: a load and a store, no read-modify-write on the packet path.
#[inline]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_update_their_own_core_and_totals_sum() {
        let (c, w) = PerCoreCounters::new(3);
        w[0].add_rx(5);
        w[0].add_tx(4);
        w[0].add_dropped(1);
        w[2].add_rx(7);
        assert_eq!(
            c.core(0),
            Some(CoreCounts {
                rx: 5,
                tx: 4,
                dropped: 1
            })
        );
        assert_eq!(c.core(1), Some(CoreCounts::default()));
        assert_eq!(c.core(3), None);
        assert_eq!(
            c.total(),
            CoreCounts {
                rx: 12,
                tx: 4,
                dropped: 1
            }
        );
    }

    #[test]
    fn slots_sit_on_separate_cache_lines() {
        let (c, _w) = PerCoreCounters::new(2);
        let a = std::ptr::addr_of!(*c.slots[0]) as usize;
        let b = std::ptr::addr_of!(*c.slots[1]) as usize;
        assert!(b - a >= 64, "slots {a:#x} and {b:#x} share a cache line");
    }

    #[test]
    fn a_writer_on_another_thread_is_seen_by_the_reader() {
        let (c, mut w) = PerCoreCounters::new(1);
        let writer = w.remove(0);
        std::thread::spawn(move || {
            for _ in 0..1000 {
                writer.add_rx(1);
            }
        })
        .join()
        .unwrap();
        assert_eq!(c.total().rx, 1000);
    }
}
