//! Quiescent-state-based RCU (QSBR): one publisher swaps a shared value under many readers.
//!
//! The control thread publishes a new value with one pointer swap and bumps a global epoch.
//! Each worker loads the pointer once per burst ([`Reader::read`]) and, after the burst,
//! reports the epoch it has seen ([`Reader::quiescent`]). A retired value is freed only when
//! every reader that is online has reported an epoch at or after the one its retirement
//! bumped to (as DPDK's `rte_rcu_qsbr` and liburcu-qsbr do). A parked reader is marked offline
//! explicitly and never holds reclamation back.
//!
//! The reader side does plain loads and stores only: no lock, no read-modify-write. The
//! borrow checker enforces the protocol: a [`ReadGuard`] borrows its [`Reader`] mutably, so a
//! reader cannot report a quiescent state (or go offline) while it still holds a reference.

#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
#[cfg(loom)]
use loom::sync::Arc;
#[cfg(not(loom))]
use std::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
#[cfg(not(loom))]
use std::sync::Arc;

use crossbeam_utils::CachePadded;

/// A reader slot holding this value is not reading and does not hold reclamation back.
const OFFLINE: u64 = u64::MAX;

struct Shared<T> {
    current: AtomicPtr<T>,
    /// Starts at 1 so that 0 never appears as a real epoch.
    epoch: AtomicU64,
    /// The last epoch each reader reported, or [`OFFLINE`]; one cache line each, single writer.
    seen: Box<[CachePadded<AtomicU64>]>,
    /// Values still retired when the publisher was dropped, which a reader may still hold:
    /// freed with `Shared`, once the last reader is gone.
    orphans: std::sync::Mutex<Vec<Box<T>>>,
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let p = self.current.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: `current` always holds a pointer from `Box::into_raw` that nobody else
            // frees; `Shared` is dropped when the last `Arc` goes, so no reader or publisher is left.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

// SAFETY: the value is shared by reference across threads (needs `Sync`) and is freed by
// whichever thread drops the last handle (needs `Send`).
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above; all interior mutability is through atomics.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

/// The single writer: publishes new values and frees retired ones when it is safe.
pub struct Publisher<T> {
    shared: Arc<Shared<T>>,
    /// Values swapped out, each with the epoch every online reader must reach before it is freed.
    retired: Vec<(u64, Box<T>)>,
}

/// One reader (a worker core). `Send` so it can move to its worker thread, not `Sync`/`Clone`.
pub struct Reader<T> {
    shared: Arc<Shared<T>>,
    index: usize,
}

/// A reference to the current value, valid until the reader's next quiescent state.
pub struct ReadGuard<'a, T> {
    inner: &'a T,
}

impl<T> std::ops::Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner
    }
}

/// Creates a publisher and `readers` readers, all online at the initial epoch, sharing `initial`.
pub fn new<T: Send + Sync>(initial: T, readers: usize) -> (Publisher<T>, Vec<Reader<T>>) {
    let shared = Arc::new(Shared {
        current: AtomicPtr::new(Box::into_raw(Box::new(initial))),
        epoch: AtomicU64::new(1),
        seen: (0..readers)
            .map(|_| CachePadded::new(AtomicU64::new(1)))
            .collect(),
        orphans: std::sync::Mutex::new(Vec::new()),
    });
    let readers = (0..readers)
        .map(|index| Reader {
            shared: Arc::clone(&shared),
            index,
        })
        .collect();
    (
        Publisher {
            shared,
            retired: Vec::new(),
        },
        readers,
    )
}

impl<T> Publisher<T> {
    /// Makes `value` current (one pointer store), bumps the epoch, and returns the new epoch.
    /// The old value is retired and freed by a later [`Publisher::reclaim`].
    pub fn publish(&mut self, value: T) -> u64 {
        let new = Box::into_raw(Box::new(value));
        let old = self.shared.current.swap(new, Ordering::SeqCst);
        let epoch = self.shared.epoch.load(Ordering::Relaxed) + 1;
        // Single writer: a plain store is enough, and it orders after the swap (SeqCst).
        self.shared.epoch.store(epoch, Ordering::SeqCst);
        // SAFETY: `old` came from `Box::into_raw` and was current until the swap above, so this
        // publisher is the only owner now; readers may still borrow it until they pass `epoch`.
        self.retired.push((epoch, unsafe { Box::from_raw(old) }));
        epoch
    }

    /// The epoch of the value currently published.
    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::Acquire)
    }

    /// The smallest epoch reported by an online reader, or `None` when every reader is offline.
    pub fn oldest_reader_epoch(&self) -> Option<u64> {
        self.shared
            .seen
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .filter(|&e| e != OFFLINE)
            .min()
    }

    /// Frees every retired value that no reader can still hold; returns how many are left.
    pub fn reclaim(&mut self) -> usize {
        let safe = self.oldest_reader_epoch().unwrap_or(u64::MAX);
        self.retired.retain(|(epoch, _)| *epoch > safe);
        self.retired.len()
    }

    /// Retired values not yet freed.
    pub fn pending(&self) -> usize {
        self.retired.len()
    }

    /// A reference to the current value, from the publisher's side (the publisher never frees it).
    pub fn current(&self) -> &T {
        // SAFETY: only this publisher replaces `current`, and it needs `&mut self` to do so, so
        // the pointer stays valid for as long as `&self` is borrowed.
        unsafe { &*self.shared.current.load(Ordering::Acquire) }
    }
}

impl<T> Drop for Publisher<T> {
    /// What an online reader may still hold is not freed here (the readers' `read` relies on
    /// the publisher waiting for them): it goes to `Shared`, freed after the last reader.
    fn drop(&mut self) {
        self.reclaim();
        if !self.retired.is_empty() {
            let mut orphans = self
                .shared
                .orphans
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            orphans.extend(self.retired.drain(..).map(|(_, v)| v));
        }
    }
}

impl<T> Reader<T> {
    /// The current value; call once per burst. The guard must be dropped before [`Self::quiescent`].
    #[inline]
    pub fn read(&mut self) -> ReadGuard<'_, T> {
        // Only this reader writes its slot, so a relaxed load sees its own last store.
        if self.shared.seen[self.index].load(Ordering::Relaxed) == OFFLINE {
            self.online();
        }
        let p = self.shared.current.load(Ordering::Acquire);
        // SAFETY: this reader is online (an offline one was just re-announced by `online`, whose
        // fence orders that before this load) and has not reported a quiescent state since this
        // load, so the publisher cannot have freed `p` (it waits for this slot to reach the
        // epoch that retired `p`). The guard borrows `self` mutably, so `quiescent` and
        // `offline` cannot run until it is gone.
        ReadGuard {
            inner: unsafe { &*p },
        }
    }

    /// Reports that this reader holds no reference: every value retired up to now may be freed.
    /// An offline reader stays offline (only `online`, or `read`, announces it with the fence
    /// coming back needs).
    #[inline]
    pub fn quiescent(&mut self) {
        if self.shared.seen[self.index].load(Ordering::Relaxed) == OFFLINE {
            return;
        }
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        self.shared.seen[self.index].store(epoch, Ordering::Release);
    }

    /// The epoch this reader last reported.
    pub fn seen(&self) -> u64 {
        self.shared.seen[self.index].load(Ordering::Relaxed)
    }

    /// Parks this reader (e.g. a stopped worker): it no longer holds reclamation back.
    pub fn offline(&mut self) {
        self.shared.seen[self.index].store(OFFLINE, Ordering::Release);
    }

    /// Un-parks this reader; it may read again.
    pub fn online(&mut self) {
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        self.shared.seen[self.index].store(epoch, Ordering::Release);
        // The announcement must be visible before the next `read` loads the pointer (store-load
        // order), or the publisher could free a value this reader is about to load. Only here:
        // the per-burst path needs no fence.
        fence(Ordering::SeqCst);
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        self.offline();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Counts live values so a test can see each one freed exactly once.
    struct Tracked {
        live: Arc<AtomicU64>,
        value: u64,
    }
    impl Tracked {
        fn new(live: &Arc<AtomicU64>, value: u64) -> Self {
            live.fetch_add(1, Ordering::SeqCst);
            Tracked {
                live: Arc::clone(live),
                value,
            }
        }
    }
    impl Drop for Tracked {
        fn drop(&mut self) {
            // Poison the value so a use after free in the stress test reads garbage it can detect.
            self.value = u64::MAX;
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_retired_value_waits_for_every_online_reader() {
        let live = Arc::new(AtomicU64::new(0));
        let (mut publisher, mut readers) = new(Tracked::new(&live, 1), 2);
        let e = publisher.publish(Tracked::new(&live, 2));
        assert_eq!(e, 2);
        assert_eq!(publisher.reclaim(), 1, "no reader has passed epoch 2");
        readers[0].quiescent();
        assert_eq!(publisher.reclaim(), 1, "reader 1 has not passed epoch 2");
        readers[1].quiescent();
        assert_eq!(publisher.reclaim(), 0);
        assert_eq!(live.load(Ordering::SeqCst), 1);
        assert_eq!(readers[0].read().value, 2);
    }

    /// A parked reader that reads again (a worker's `run` called a second time) is back
    /// online for it: the value it holds is not freed under it.
    #[test]
    fn reading_after_offline_goes_online_first() {
        let live = Arc::new(AtomicU64::new(0));
        let (mut publisher, mut readers) = new(Tracked::new(&live, 1), 1);
        readers[0].offline();
        readers[0].quiescent();
        assert_eq!(readers[0].seen(), OFFLINE, "quiescent does not un-park");
        publisher.publish(Tracked::new(&live, 2));
        let r = &mut readers[0];
        assert_eq!(r.read().value, 2);
        assert_ne!(r.seen(), OFFLINE, "online again");
        publisher.publish(Tracked::new(&live, 3));
        assert_eq!(publisher.reclaim(), 1, "the value it read waits for it");
        assert_eq!(live.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_offline_reader_does_not_block_and_online_resumes() {
        let live = Arc::new(AtomicU64::new(0));
        let (mut publisher, mut readers) = new(Tracked::new(&live, 1), 2);
        readers[1].offline();
        publisher.publish(Tracked::new(&live, 2));
        readers[0].quiescent();
        assert_eq!(publisher.reclaim(), 0);
        readers[1].online();
        assert_eq!(readers[1].read().value, 2);
        publisher.publish(Tracked::new(&live, 3));
        readers[0].quiescent();
        assert_eq!(
            publisher.reclaim(),
            1,
            "reader 1 is online again and holds epoch 3 back"
        );
        drop(readers);
        assert_eq!(publisher.reclaim(), 0, "dropped readers go offline");
        drop(publisher);
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "everything freed exactly once"
        );
    }

    /// Dropping the publisher must not free a value an online reader may still hold (its
    /// guard's reference outlives the publisher); it goes when the readers do.
    #[test]
    fn dropping_the_publisher_keeps_what_readers_may_hold() {
        let live = Arc::new(AtomicU64::new(0));
        let (mut publisher, mut readers) = new(Tracked::new(&live, 1), 1);
        {
            let g = readers[0].read();
            publisher.publish(Tracked::new(&live, 2));
            drop(publisher);
            assert_eq!(
                live.load(Ordering::SeqCst),
                2,
                "the value the reader holds was freed with the publisher"
            );
            assert_eq!(g.value, 1);
        }
        drop(readers);
        assert_eq!(live.load(Ordering::SeqCst), 0, "freed with the last reader");
    }

    #[test]
    fn stress_thousands_of_swaps_under_readers() {
        const SWAPS: u64 = 5000;
        let live = Arc::new(AtomicU64::new(0));
        let (mut publisher, readers) = new(Tracked::new(&live, 0), 2);
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = readers
            .into_iter()
            .map(|mut r| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut last = 0;
                    let mut bursts = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        {
                            let g = r.read();
                            let v = g.value;
                            // Values only grow; a freed (poisoned) value would read as u64::MAX.
                            assert!(v >= last && v <= SWAPS, "read {v} after {last}");
                            last = v;
                            std::hint::black_box(&*g);
                        }
                        r.quiescent();
                        bursts += 1;
                    }
                    bursts
                })
            })
            .collect();
        for i in 1..=SWAPS {
            publisher.publish(Tracked::new(&live, i));
            publisher.reclaim();
            if i % 64 == 0 {
                std::thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            assert!(w.join().is_ok_and(|bursts| bursts > 0));
        }
        assert_eq!(publisher.reclaim(), 0);
        assert_eq!(
            live.load(Ordering::SeqCst),
            1,
            "only the current value is alive"
        );
        drop(publisher);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;

    /// A value whose drop writes to it: loom fails the model if that write is not ordered after
    /// every read, which is exactly a use after free.
    struct Val(UnsafeCell<u64>);
    // SAFETY: test-only; loom checks every access to the cell for races.
    unsafe impl Sync for Val {}
    impl Drop for Val {
        fn drop(&mut self) {
            // SAFETY: loom tracks this access and reports a race with any unordered read.
            self.0.with_mut(|p| unsafe { *p = 0 });
        }
    }

    #[test]
    fn publish_read_reclaim_two_readers() {
        loom::model(|| {
            let (mut publisher, readers) = new(Val(UnsafeCell::new(1)), 2);
            let handles: Vec<_> = readers
                .into_iter()
                .map(|mut r| {
                    loom::thread::spawn(move || {
                        // SAFETY: loom checks this read against the drop's write.
                        let v = r.read().0.with(|p| unsafe { *p });
                        assert!(v == 1 || v == 2, "read {v}: a freed value");
                        r.quiescent();
                    })
                })
                .collect();
            publisher.publish(Val(UnsafeCell::new(2)));
            publisher.reclaim();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(publisher.reclaim(), 0);
        });
    }
}
