//! Per-core flow table: set-associative (8-way buckets, two choices), preallocated, never resized.
//!
//! A flow has two candidate buckets (the second derived from the first and the flow's tag);
//! a bucket holds 8 16-bit tags (low bits of the flow hash, 0 = empty) in 16 bytes, so one
//! cache line holds four buckets' tags and a burst can prefetch them before probing; each entry
//! fills exactly one cache line in a parallel array. A new flow goes to the emptier candidate:
//! with one choice, 8-way buckets overflow (and evict live flows) already at 20% fill; with two
//! they do not until the table is nearly full (the "power of two choices"). When both are full,
//! the entry that expired or, failing that, the least recently seen one of the 16 is evicted
//! (counted). Expiry is checked on access and by a small sweep per burst; nothing ever walks
//! the whole table.

use std::time::Duration;

use crate::hugepages;
use crate::wire::{proto, tcp};

pub const WAYS: usize = 8;
/// Buckets the amortised sweep visits per call.
pub const SWEEP_BUCKETS: usize = 4;

/// Flow-table settings (the `flows:` section of the config), per worker core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// Entries to preallocate (rounded up to a power of two times 8).
    pub capacity: usize,
    pub tcp_syn_timeout: Duration,
    pub tcp_established_timeout: Duration,
    pub tcp_closing_timeout: Duration,
    pub udp_timeout: Duration,
    /// New flow entries per second per core; 0 disables the cap.
    pub max_new_flows_per_second: u32,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            capacity: 1 << 20,
            tcp_syn_timeout: Duration::from_secs(5),
            tcp_established_timeout: Duration::from_secs(300),
            tcp_closing_timeout: Duration::from_secs(10),
            udp_timeout: Duration::from_secs(30),
            max_new_flows_per_second: 125_000,
        }
    }
}

/// The full 5-tuple of a client-to-VIP packet; IPv4 addresses are IPv4-mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
}

impl FlowKey {
    /// The hash used by the table and by five-tuple services' Maglev lookups.
    #[inline]
    pub fn hash(&self) -> u32 {
        maglev::flow::five_tuple(&self.src, &self.dst, self.sport, self.dport, self.proto)
    }
}

/// TCP progress as seen from the client side only (replies bypass us).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowState {
    SynSeen,
    Established,
    Closing,
    Udp,
}

impl FlowState {
    /// The state after a packet with `flags` (TCP) in state `self`.
    fn next(self, proto_num: u8, flags: u8) -> FlowState {
        if proto_num != proto::TCP {
            return FlowState::Udp;
        }
        if flags & (tcp::FIN | tcp::RST) != 0 || self == FlowState::Closing {
            FlowState::Closing
        } else if flags & tcp::SYN != 0 && flags & tcp::ACK == 0 {
            FlowState::SynSeen
        } else {
            FlowState::Established
        }
    }
}

#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Entry {
    key: FlowKey,
    backend: u32,
    state: FlowState,
    last_seen: u64,
    expires: u64,
}

const EMPTY_ENTRY: Entry = Entry {
    key: FlowKey {
        src: [0; 16],
        dst: [0; 16],
        sport: 0,
        dport: 0,
        proto: 0,
    },
    backend: 0,
    state: FlowState::Udp,
    last_seen: 0,
    expires: 0,
};

/// Where a found entry lives; valid until the table is next modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

/// Evictions and insertions since the table was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub created: u64,
    pub evicted_timeout: u64,
    pub evicted_capacity: u64,
}

/// A per-core flow table. Not `Sync` by design: one worker owns it.
///
/// An entry stores a backend *handle*, a small dense integer the caller picks (the pipeline
/// uses the backend's counter slot, stable for the life of the process), so the per-backend
/// flow counts are a vector and not a hash map.
pub struct FlowTable {
    tags: Box<[[u16; WAYS]]>,
    entries: Box<[Entry]>,
    mask: usize,
    len: usize,
    cursor: usize,
    timeouts: [u64; 4],
    pub stats: FlowStats,
    /// Live entries per backend handle (`sluice_backend_flows`), indexed by the handle;
    /// updated when an entry is created, re-pointed or removed, never on a plain hit.
    per_backend: Vec<u64>,
}

/// The bucket comes from the high bits, the tag from the low 16 (0 is reserved for empty).
#[inline]
fn tag_of(hash: u32) -> u16 {
    let t = hash as u16;
    if t == 0 {
        1
    } else {
        t
    }
}

/// Which ways of a bucket hold `tag`: two bits per way (way `w` is bits `2w` and `2w + 1`),
/// all eight compared at once.
#[inline(always)]
fn ways_equal(row: &[u16; WAYS], tag: u16) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            __m128i, _mm_cmpeq_epi16, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi16,
        };
        // SAFETY: SSE2 is part of every x86_64 target; `row` is 16 readable bytes and the
        // load is unaligned.
        unsafe {
            let v = _mm_loadu_si128(row.as_ptr().cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi16(v, _mm_set1_epi16(tag as i16))) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        row.iter()
            .enumerate()
            .fold(0u32, |m, (w, &t)| m | (u32::from(t == tag) * 3) << (2 * w))
    }
}

impl FlowTable {
    /// Allocates every bucket now; the table never grows afterwards.
    pub fn new(cfg: &FlowConfig) -> Self {
        let buckets = cfg.capacity.div_ceil(WAYS).max(1).next_power_of_two();
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Self {
            tags: hugepages::filled(buckets, [0u16; WAYS]),
            entries: hugepages::filled(buckets * WAYS, EMPTY_ENTRY),
            mask: buckets - 1,
            len: 0,
            cursor: 0,
            timeouts: [
                ns(cfg.tcp_syn_timeout),
                ns(cfg.tcp_established_timeout),
                ns(cfg.tcp_closing_timeout),
                ns(cfg.udp_timeout),
            ],
            stats: FlowStats::default(),
            per_backend: Vec::new(),
        }
    }

    /// Live entries per backend handle: element `h` counts the entries stored with handle `h`.
    pub fn flows_per_backend(&self) -> &[u64] {
        &self.per_backend
    }

    /// Makes room for handles below `n`, so counting them never allocates on the packet path.
    pub fn reserve_backends(&mut self, n: usize) {
        if n > self.per_backend.len() {
            self.per_backend.resize(n, 0);
        }
    }

    #[inline]
    fn gained(&mut self, backend: u32) {
        match self.per_backend.get_mut(backend as usize) {
            Some(c) => *c += 1,
            None => self.gained_new(backend),
        }
    }

    /// A handle beyond [`FlowTable::reserve_backends`] (only when the table is used alone).
    #[cold]
    fn gained_new(&mut self, backend: u32) {
        self.reserve_backends(backend as usize + 1);
        if let Some(c) = self.per_backend.get_mut(backend as usize) {
            *c += 1;
        }
    }

    #[inline]
    fn lost(&mut self, backend: u32) {
        if let Some(c) = self.per_backend.get_mut(backend as usize) {
            *c = c.saturating_sub(1);
        }
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots allocated (buckets x ways).
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    fn bucket(&self, hash: u32) -> usize {
        // The high bits pick the bucket (beyond 2^16 buckets the low bits join in).
        (hash.rotate_left(16) as usize) & self.mask
    }

    /// The flow's two candidate buckets (equal only in a one-bucket table).
    #[inline]
    fn buckets(&self, hash: u32) -> [usize; 2] {
        let b = self.bucket(hash);
        // The alternative depends on the tag too, so flows sharing a first bucket spread out.
        let alt =
            ((u32::from(tag_of(hash)).wrapping_mul(0x9E37_79B1) >> 7) as usize | 1) & self.mask;
        [b, b ^ alt]
    }

    #[inline]
    fn timeout(&self, state: FlowState) -> u64 {
        self.timeouts[state as usize]
    }

    /// Hints the CPU to fetch the bucket's tags (used between hashing and probing a burst).
    #[inline]
    pub fn prefetch(&self, hash: u32) {
        for b in self.buckets(hash) {
            #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
            // SAFETY: `_mm_prefetch` is a hint that never faults; the pointer is in bounds of
            // `self.tags` because `b <= mask < tags.len()`.
            unsafe {
                use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(self.tags.as_ptr().add(b).cast::<i8>());
            }
            #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
            let _ = b;
        }
    }

    /// Hints the CPU to fetch the entry whose tag matches (the second, dependent miss of a
    /// lookup); called once the tags of the whole burst are in flight.
    #[inline]
    pub fn prefetch_entry(&self, hash: u32) {
        let tag = tag_of(hash);
        let [b1, b2] = self.buckets(hash);
        let (b, m) = match ways_equal(&self.tags[b1], tag) {
            0 => (b2, ways_equal(&self.tags[b2], tag)),
            m => (b1, m),
        };
        if m == 0 {
            return;
        }
        let i = b * WAYS + (m.trailing_zeros() / 2) as usize;
        #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
        if i < self.entries.len() {
            // SAFETY: `_mm_prefetch` is a hint that never faults; `i` was bounds-checked.
            unsafe {
                use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(self.entries.as_ptr().add(i).cast::<i8>());
            }
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
        let _ = i;
    }

    /// Finds the live entry for `key`; an expired one is removed (counted) and not returned.
    #[inline(always)]
    pub fn find(&mut self, key: &FlowKey, hash: u32, now: u64) -> Option<Slot> {
        let tag = tag_of(hash);
        let [b1, b2] = self.buckets(hash);
        let i = self
            .position(b1, tag, key)
            .or_else(|| self.position(b2, tag, key))?;
        if self.entries[i].expires <= now {
            self.tags[i / WAYS][i % WAYS] = 0;
            self.len -= 1;
            self.stats.evicted_timeout += 1;
            self.lost(self.entries[i].backend);
            return None;
        }
        Some(Slot(i))
    }

    /// The entry index of `key` in bucket `b`, if it is there.
    #[inline(always)]
    fn position(&self, b: usize, tag: u16, key: &FlowKey) -> Option<usize> {
        let mut m = ways_equal(&self.tags[b], tag);
        while m != 0 {
            let i = b * WAYS + (m.trailing_zeros() / 2) as usize;
            if self.entries.get(i).is_some_and(|e| e.key == *key) {
                return Some(i);
            }
            // Each way owns two bits of the mask.
            m &= m - 1;
            m &= m - 1;
        }
        None
    }

    /// The stored backend handle of a found entry.
    #[inline]
    pub fn backend(&self, slot: Slot) -> u32 {
        self.entries[slot.0].backend
    }

    pub fn state(&self, slot: Slot) -> FlowState {
        self.entries[slot.0].state
    }

    /// Records a packet of the flow: state transition, last-seen time and expiry.
    #[inline]
    pub fn touch(&mut self, slot: Slot, now: u64, tcp_flags: u8) {
        let e = &mut self.entries[slot.0];
        e.state = e.state.next(e.key.proto, tcp_flags);
        e.last_seen = now;
        e.expires = now.saturating_add(self.timeouts[e.state as usize]);
    }

    pub fn set_backend(&mut self, slot: Slot, backend: u32) {
        let old = self.entries[slot.0].backend;
        if old != backend {
            self.lost(old);
            self.gained(backend);
        }
        self.entries[slot.0].backend = backend;
    }

    /// Inserts or overwrites the entry for `key`. A new entry takes a free way of the emptier
    /// candidate bucket, else an expired entry, else the least recently seen of both buckets
    /// (counted in `stats`).
    pub fn insert(&mut self, key: &FlowKey, hash: u32, backend: u32, tcp_flags: u8, now: u64) {
        let tag = tag_of(hash);
        let [b1, b2] = self.buckets(hash);
        let i = match self
            .position(b1, tag, key)
            .or_else(|| self.position(b2, tag, key))
        {
            Some(i) => {
                self.lost(self.entries[i].backend);
                i
            }
            None => self.make_room(b1, b2, now),
        };
        self.stats.created += 1;
        self.gained(backend);
        // A flow first seen mid-stream (no SYN) is taken as established.
        let state = FlowState::Established.next(key.proto, tcp_flags);
        self.tags[i / WAYS][i % WAYS] = tag;
        self.entries[i] = Entry {
            key: *key,
            backend,
            state,
            last_seen: now,
            expires: now.saturating_add(self.timeout(state)),
        };
    }

    /// An entry index for a new flow in bucket `b1` or `b2`, freed (and counted) if need be.
    fn make_room(&mut self, b1: usize, b2: usize, now: u64) -> usize {
        let (free1, free2) = (ways_equal(&self.tags[b1], 0), ways_equal(&self.tags[b2], 0));
        let (first, second, free) = if free2.count_ones() > free1.count_ones() {
            (b2, b1, [free2, free1])
        } else {
            (b1, b2, [free1, free2])
        };
        for (b, m) in [first, second].into_iter().zip(free) {
            if m != 0 {
                self.len += 1;
                return b * WAYS + (m.trailing_zeros() / 2) as usize;
            }
        }
        let mut victim = first * WAYS;
        let mut victim_seen = u64::MAX;
        for b in [first, second] {
            for w in 0..WAYS {
                let i = b * WAYS + w;
                let e = &self.entries[i];
                if e.expires <= now {
                    self.stats.evicted_timeout += 1;
                    self.lost(e.backend);
                    return i;
                }
                if e.last_seen < victim_seen {
                    victim_seen = e.last_seen;
                    victim = i;
                }
            }
        }
        self.stats.evicted_capacity += 1;
        self.lost(self.entries[victim].backend);
        victim
    }

    /// Removes expired entries from the next few buckets: amortised expiry, a bounded
    /// amount of work per call.
    pub fn sweep(&mut self, now: u64) {
        for _ in 0..SWEEP_BUCKETS {
            let b = self.cursor;
            self.cursor = (self.cursor + 1) & self.mask;
            // Only the occupied ways' entries are read.
            let mut used = !ways_equal(&self.tags[b], 0) & 0xffff;
            while used != 0 {
                let w = (used.trailing_zeros() / 2) as usize;
                used &= !(0b11 << (2 * w));
                let i = b * WAYS + w;
                if self.entries[i].expires <= now {
                    self.tags[b][w] = 0;
                    self.len -= 1;
                    self.stats.evicted_timeout += 1;
                    self.lost(self.entries[i].backend);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> FlowKey {
        let mut k = FlowKey {
            sport: 1000,
            dport: 80,
            proto: proto::TCP,
            ..FlowKey::default()
        };
        k.src[12..].copy_from_slice(&i.to_be_bytes());
        k
    }

    fn small() -> FlowTable {
        FlowTable::new(&FlowConfig {
            capacity: 64,
            ..FlowConfig::default()
        })
    }

    #[test]
    fn insert_then_find_and_expire() {
        let mut t = small();
        let k = key(1);
        t.insert(&k, k.hash(), 7, tcp::SYN, 0);
        let s = t.find(&k, k.hash(), 1).unwrap();
        assert_eq!(t.backend(s), 7);
        assert_eq!(t.state(s), FlowState::SynSeen);
        // SYN timeout is 5 s.
        assert!(t.find(&k, k.hash(), 5_000_000_001).is_none());
        assert_eq!(t.stats.evicted_timeout, 1);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn ways_equal_marks_two_bits_per_matching_way() {
        let row = [5, 0, 5, 7, 0, 0, 0, 5];
        assert_eq!(ways_equal(&row, 5), 0b11 | 0b11 << 4 | 0b11 << 14);
        assert_eq!(ways_equal(&row, 0), 0b11 << 2 | 0b11_1111 << 8);
        assert_eq!(ways_equal(&row, 9), 0);
    }

    #[test]
    fn state_machine() {
        let mut t = small();
        let k = key(2);
        t.insert(&k, k.hash(), 1, tcp::SYN, 0);
        let s = t.find(&k, k.hash(), 1).unwrap();
        t.touch(s, 1, tcp::ACK);
        assert_eq!(t.state(s), FlowState::Established);
        t.touch(s, 2, tcp::ACK | tcp::FIN);
        assert_eq!(t.state(s), FlowState::Closing);
        t.touch(s, 3, tcp::ACK);
        assert_eq!(t.state(s), FlowState::Closing);
    }

    #[test]
    fn full_buckets_evict_least_recently_seen() {
        let mut t = small();
        // Same hash for all: the same two candidate buckets.
        let h = 12345;
        for i in 0..2 * WAYS as u32 {
            t.insert(&key(i), h, i, tcp::ACK, u64::from(i) + 10);
        }
        assert_eq!(
            t.len(),
            2 * WAYS,
            "both candidate buckets fill before anything is evicted"
        );
        assert_eq!(t.stats.evicted_capacity, 0);
        t.insert(&key(100), h, 100, tcp::ACK, 100);
        assert_eq!(t.stats.evicted_capacity, 1);
        assert!(
            t.find(&key(0), h, 101).is_none(),
            "the least recently seen went"
        );
        assert!(t.find(&key(1), h, 101).is_some());
        assert!(t.find(&key(100), h, 101).is_some());
        assert_eq!(t.len(), 2 * WAYS);
    }

    #[test]
    fn half_full_table_evicts_nothing() {
        // With one choice, 8-way buckets start evicting live flows at ~20% fill.
        let mut t = FlowTable::new(&FlowConfig {
            capacity: 1 << 16,
            ..FlowConfig::default()
        });
        let n = t.capacity() as u32 * 6 / 10;
        for i in 0..n {
            let k = key(i);
            t.insert(&k, k.hash(), 1, tcp::SYN, 0);
        }
        assert_eq!(t.stats.evicted_capacity, 0, "evicted at 60% fill");
        assert_eq!(t.len(), n as usize);
        for i in 0..n {
            let k = key(i);
            assert!(t.find(&k, k.hash(), 1).is_some(), "flow {i} lost");
        }
    }

    #[test]
    fn sweep_removes_expired_over_time() {
        let mut t = small();
        for i in 0..40 {
            let k = key(i);
            t.insert(&k, k.hash(), 1, 0, 0);
        }
        let n = t.len();
        assert!(n > 0);
        for _ in 0..t.capacity() / WAYS / SWEEP_BUCKETS + 1 {
            t.sweep(u64::MAX);
        }
        assert_eq!(t.len(), 0);
        assert_eq!(t.stats.evicted_timeout, n as u64);
    }

    #[test]
    fn per_backend_counts_always_add_up_to_the_live_entries() {
        let mut t = small();
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut now = 0u64;
        for step in 0..20_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            now += rng % 50_000_000;
            let k = key((rng >> 20) as u32 % 300);
            let h = k.hash();
            let backend = (rng >> 40) as u32 % 5;
            match rng % 4 {
                0 | 1 => t.insert(&k, h, backend, tcp::SYN, now),
                2 => {
                    if let Some(slot) = t.find(&k, h, now) {
                        t.set_backend(slot, backend);
                    }
                }
                _ => t.sweep(now),
            }
            let sum: u64 = t.flows_per_backend().iter().sum();
            assert_eq!(sum, t.len() as u64, "step {step}");
        }
        assert!(!t.is_empty());
    }
}
