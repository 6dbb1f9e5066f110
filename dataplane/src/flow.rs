//! Per-core flow table: set-associative (8-way buckets, two choices), preallocated, never resized.
//!
//! Long (about 900 lines besides tests): lookup, insert, eviction, the sweep and the prefetch
//! all read the private bucket layout below; apart, that layout would have to be public.
//!
//! A flow has two candidate buckets (the second derived from the first and the flow's tag);
//! a bucket is 32 bytes: 8 16-bit tags (low bits of the flow hash, 0 = empty) and each way's
//! coarse expiry, so a burst can prefetch them before probing and eviction never reads the
//! entries it passes over; each entry fills exactly one cache line in a parallel array. A new
//! flow goes to the emptier candidate: with one choice, 8-way buckets overflow (and evict live
//! flows) already at 20% fill; with two they do not until the table is nearly full (the
//! "power of two choices"). When both are full, the one of the 16 closest to expiry (expired
//! first) is evicted (counted). Expiry is checked on access and by a small sweep per burst;
//! nothing ever walks the whole table.

use std::time::Duration;

use crate::hugepages;
use crate::wire::{proto, tcp};

pub const WAYS: usize = 8;
/// Buckets the amortised sweep visits per call.
pub const SWEEP_BUCKETS: usize = 4;
/// The backend handle of an entry that counts for no backend (a nat connection's reverse
/// entry: the connection is counted once, by its forward entry).
pub const NO_BACKEND: u32 = u32::MAX;
/// [`Nat::local`] of an entry that holds no fullnat port.
pub const NO_LOCAL: u16 = u16::MAX;
/// [`Nat::peer`] of a forward entry whose reverse entry is still to be inserted (the pipeline
/// inserts a burst's new reverse entries together, at its end). Never an entry index.
pub const PEER_PENDING: u32 = u32::MAX - 1;
/// A coarse tick is 2^26 ns (about 67 ms); a u16 of them wraps after about 73 minutes.
const TICK_SHIFT: u32 = 26;
/// The furthest ahead a coarse expiry may be set (half the u16 range, about 36 minutes), so
/// wrapping comparisons stay valid; longer timeouts are re-checked against the exact time.
const MAX_AHEAD: u64 = 0x7fff;
/// The sweep trusts coarse expiries only if it visited the bucket less than this long ago
/// (half the u16 range, less rounding): older ones may have wrapped around.
const TRUST_NS: u64 = (0x7fff - 2) << TICK_SHIFT;

/// Flow-table settings, per worker core: the config's `flows:` section as it is decoded, so
/// a setting is declared here once and its default is [`FlowConfig::default`]'s.
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
    expires: 0,
};

/// Which direction of a nat connection an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatKind {
    /// Not a nat entry (a tunnel or DSR flow, or a free slot).
    #[default]
    None,
    /// Client to VIP, translated towards the backend.
    Forward,
    /// Backend to client (nat) or to a local address (fullnat), translated back.
    Reverse,
}

/// What a nat connection's entry does to its packets, in a side array parallel to the
/// entries (allocated only when nat is on, so the tunnel and DSR entries stay one line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nat {
    pub kind: NatKind,
    /// The translated packet's source, destination and ports.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    /// The other direction's entry: a hint, its key checked before use (it may be evicted).
    pub peer: u32,
    /// Reverse entries: the port the client's packets came in on and the L2 neighbour
    /// (router or client) that sent them, the way back without a route table.
    pub port: u16,
    pub mac: [u8; 6],
    /// fullnat reverse entries: the local address's gauge index (see
    /// [`FlowTable::register_local`]); [`NO_LOCAL`] otherwise.
    pub local: u16,
}

impl Nat {
    pub const NONE: Nat = Nat {
        kind: NatKind::None,
        src: [0; 16],
        dst: [0; 16],
        sport: 0,
        dport: 0,
        peer: u32::MAX,
        port: 0,
        mac: [0; 6],
        local: NO_LOCAL,
    };

    /// The key the other direction's packets arrive with: this entry's output, reversed.
    pub fn peer_key(&self, proto: u8) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto,
        }
    }
}

/// One bucket's tags and, per way, the coarse tick at or after which it has surely expired
/// (see [`coarse_expiry`]); two buckets share a cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Bucket {
    tags: [u16; WAYS],
    expiry: [u16; WAYS],
}

const EMPTY_BUCKET: Bucket = Bucket {
    tags: [0; WAYS],
    expiry: [0; WAYS],
};

#[inline(always)]
fn tick(now: u64) -> u16 {
    (now >> TICK_SHIFT) as u16
}

/// The coarse expiry stored for an entry expiring at `expires`: a tick strictly after the one
/// holding `expires` (so reaching it implies `expires < now`), at most [`MAX_AHEAD`] ticks on.
#[inline(always)]
fn coarse_expiry(expires: u64, now: u64) -> u16 {
    ((expires >> TICK_SHIFT) + 1).min((now >> TICK_SHIFT) + MAX_AHEAD) as u16
}

/// The coarse expiry of an entry stored at `now` with a timeout of `ticks` (see
/// [`FlowTable::timeout_ticks`]): one add, for the hit path.
#[inline(always)]
fn coarse_expiry_after(now: u64, ticks: u16) -> u16 {
    tick(now).wrapping_add(ticks)
}

/// Ticks from `now_tick` until the coarse expiry `c`: zero or less once it has passed.
#[inline(always)]
fn ticks_left(c: u16, now_tick: u16) -> i16 {
    c.wrapping_sub(now_tick) as i16
}

/// A flow's tag and candidate buckets, from [`FlowTable::probe`], and the entry
/// [`FlowTable::prefetch_entry`] expects it in: a hint, checked before it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    tag: u16,
    b1: u32,
    b2: u32,
    hint: u32,
}

/// No entry expected yet (a lookup then searches both buckets).
const NO_HINT: u32 = u32::MAX;

impl Probe {
    /// A placeholder for packets without a flow (never used for a lookup).
    pub const NONE: Probe = Probe {
        tag: 1,
        b1: 0,
        b2: 0,
        hint: NO_HINT,
    };
}

impl Default for Probe {
    fn default() -> Self {
        Self::NONE
    }
}

/// Where a found entry lives; valid until the table is next modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

/// Evictions and insertions since the table was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub created: u64,
    pub evicted_timeout: u64,
    pub evicted_capacity: u64,
    /// Of `evicted_capacity`, live TCP flows past their handshake: what a SYN flood must not
    /// reach while half-open entries are closer to expiry.
    pub evicted_established: u64,
}

/// A per-core flow table. Not `Sync` by design: one worker owns it.
///
/// An entry stores a backend *handle*, a small dense integer the caller picks (the pipeline
/// uses the backend's counter slot, stable for the life of the process), so the per-backend
/// flow counts are a vector and not a hash map.
pub struct FlowTable {
    buckets: Box<[Bucket]>,
    entries: Box<[Entry]>,
    mask: usize,
    len: usize,
    cursor: usize,
    timeouts: [u64; 4],
    /// Per state, the ticks from `tick(now)` to a coarse expiry at or after `tick(expires) +
    /// 1` (rounding adds up to two), clamped to [`MAX_AHEAD`].
    timeout_ticks: [u16; 4],
    /// The most ticks a live entry's coarse expiry can be ahead of now; beyond it, the coarse
    /// expiry is one that wrapped around (an entry idle for over an hour) and is not trusted.
    max_ahead: i16,
    /// When the sweep's current and previous passes over the table began (none yet: the
    /// sweep reads every entry until a whole pass is recent enough to trust).
    pass_started: Option<u64>,
    previous_pass_started: Option<u64>,
    pub stats: FlowStats,
    /// Live entries per backend handle (`sluice_backend_flows`), indexed by the handle;
    /// updated when an entry is created, re-pointed or removed, never on a plain hit.
    per_backend: Vec<u64>,
    /// nat side records, one per entry; empty when nat is off.
    nat: Box<[Nat]>,
    /// fullnat ports in use per local address: the reverse entries holding one, kept exact
    /// wherever an entry is freed, evicted or overwritten.
    nat_ports: Vec<([u8; 16], u64)>,
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

/// The free (tag 0) ways of two buckets, one bit per way (the first bucket's in bits 0-7, the
/// second's in bits 8-15), and how many each has: on x86_64 a few SSE2 instructions, no
/// popcount (not in the x86_64 baseline; the software one costs ~15 instructions a call).
#[inline(always)]
fn free_ways(a: &[u16; WAYS], b: &[u16; WAYS]) -> (u32, u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            __m128i, _mm_cmpeq_epi16, _mm_cvtsi128_si64, _mm_loadu_si128, _mm_movemask_epi8,
            _mm_packs_epi16, _mm_sad_epu8, _mm_setzero_si128, _mm_unpackhi_epi64,
        };
        // SAFETY: SSE2 is part of every x86_64 target; `a` and `b` are 16 readable bytes
        // each and the loads are unaligned.
        unsafe {
            let zero = _mm_setzero_si128();
            let fa = _mm_cmpeq_epi16(_mm_loadu_si128(a.as_ptr().cast::<__m128i>()), zero);
            let fb = _mm_cmpeq_epi16(_mm_loadu_si128(b.as_ptr().cast::<__m128i>()), zero);
            // One byte per way, 0xff if free; the byte sums of each half are 255 x free ways.
            let free = _mm_packs_epi16(fa, fb);
            let sums = _mm_sad_epu8(free, zero);
            let na = _mm_cvtsi128_si64(sums) as u64;
            let nb = _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums)) as u64;
            (_mm_movemask_epi8(free) as u32, na, nb)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mask = |row: &[u16; WAYS]| {
            row.iter()
                .enumerate()
                .fold(0u32, |m, (w, &t)| m | u32::from(t == 0) << w)
        };
        let (ma, mb) = (mask(a), mask(b));
        (
            ma | mb << WAYS,
            u64::from(ma.count_ones()),
            u64::from(mb.count_ones()),
        )
    }
}

/// The first way set in a [`ways_equal`] mask.
#[inline(always)]
fn way(mask: u32) -> usize {
    (mask.trailing_zeros() / 2) as usize
}

/// A hint to fetch the cache line holding `p` into L1.
#[inline(always)]
fn prefetch_line<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: `_mm_prefetch` is only a hint: it never faults and never reads into the program,
    // whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = p;
}

impl FlowTable {
    /// Allocates every bucket now; the table never grows afterwards.
    pub fn new(cfg: &FlowConfig) -> Self {
        Self::with_nat(cfg, false)
    }

    /// [`FlowTable::new`], with the nat side records when `nat`.
    pub fn with_nat(cfg: &FlowConfig, nat: bool) -> Self {
        let buckets = cfg.capacity.div_ceil(WAYS).max(1).next_power_of_two();
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let timeouts = [
            ns(cfg.tcp_syn_timeout),
            ns(cfg.tcp_established_timeout),
            ns(cfg.tcp_closing_timeout),
            ns(cfg.udp_timeout),
        ];
        let timeout_ticks = timeouts.map(|t| ((t >> TICK_SHIFT) + 2).min(MAX_AHEAD) as u16);
        let max_ahead = timeout_ticks.iter().copied().max().unwrap_or(0) as i16;
        Self {
            buckets: hugepages::filled(buckets, EMPTY_BUCKET),
            entries: hugepages::filled(buckets * WAYS, EMPTY_ENTRY),
            mask: buckets - 1,
            len: 0,
            cursor: 0,
            timeouts,
            timeout_ticks,
            max_ahead,
            pass_started: None,
            previous_pass_started: None,
            stats: FlowStats::default(),
            per_backend: Vec::new(),
            nat: if nat {
                hugepages::filled(buckets * WAYS, Nat::NONE)
            } else {
                Box::new([])
            },
            nat_ports: Vec::new(),
        }
    }

    /// The gauge index of fullnat local address `addr`, created if new (called when a
    /// snapshot is adopted, so the packet path never allocates).
    pub fn register_local(&mut self, addr: [u8; 16]) -> u16 {
        if let Some(i) = self.nat_ports.iter().position(|(a, _)| *a == addr) {
            return i as u16;
        }
        self.nat_ports.push((addr, 0));
        (self.nat_ports.len() - 1) as u16
    }

    /// Whether the table keeps nat side records (built [`FlowTable::with_nat`]).
    pub fn tracks_nat(&self) -> bool {
        !self.nat.is_empty()
    }

    /// fullnat ports in use per local address (every address ever registered).
    pub fn nat_ports_in_use(&self) -> &[([u8; 16], u64)] {
        &self.nat_ports
    }

    /// The nat side record of a found entry (None when nat is off).
    #[inline]
    pub fn nat(&self, slot: Slot) -> Option<&Nat> {
        self.nat.get(slot.0).filter(|n| n.kind != NatKind::None)
    }

    /// Sets a found entry's nat side record (a fullnat reverse entry now holds its port).
    pub fn set_nat(&mut self, slot: Slot, rec: Nat) {
        if self.nat.is_empty() {
            return;
        }
        self.released(slot.0);
        if rec.kind == NatKind::Reverse {
            if let Some((_, n)) = self.nat_ports.get_mut(usize::from(rec.local)) {
                *n += 1;
            }
        }
        if let Some(n) = self.nat.get_mut(slot.0) {
            *n = rec;
        }
    }

    /// Entry `i` is being freed, evicted or overwritten: it no longer holds a fullnat port.
    #[inline(always)]
    fn released(&mut self, i: usize) {
        if !self.nat.is_empty() {
            self.release_nat(i);
        }
    }

    /// [`FlowTable::released`] out of line, so tables without nat carry only the test.
    #[cold]
    #[inline(never)]
    fn release_nat(&mut self, i: usize) {
        if let Some(n) = self.nat.get_mut(i) {
            if n.kind == NatKind::Reverse {
                if let Some((_, c)) = self.nat_ports.get_mut(usize::from(n.local)) {
                    *c = c.saturating_sub(1);
                }
            }
            *n = Nat::NONE;
        }
    }

    /// The live entry at `slot` if it still holds `key` (a peer hint, checked). Any live tag
    /// will do: keys are unique in the table, so no hash of `key` is needed (a nat hit's cost).
    fn peer_slot(&self, i: u32, key: &FlowKey, now: u64) -> Option<usize> {
        let i = i as usize;
        let live = self
            .buckets
            .get(i / WAYS)
            .is_some_and(|b| b.tags[i % WAYS] != 0);
        let e = self.entries.get(i)?;
        (live && e.key == *key && e.expires > now).then_some(i)
    }

    /// A packet of a nat connection: its entry is touched, and its peer too when the peer
    /// still holds the other direction, so neither expires while the other is in use.
    #[inline]
    pub fn touch_nat(&mut self, slot: Slot, now: u64, tcp_flags: u8) {
        self.touch(slot, now, tcp_flags);
        let Some(n) = self.nat.get(slot.0).copied() else {
            return;
        };
        let key = n.peer_key(self.entries[slot.0].key.proto);
        if let Some(p) = self.peer_slot(n.peer, &key, now) {
            self.touch(Slot(p), now, tcp_flags);
        }
    }

    /// Removes a nat entry's peer, if it still holds the other direction (a remapped
    /// connection's old reverse entry). Not an eviction.
    pub fn remove_peer(&mut self, slot: Slot, now: u64) {
        let Some(n) = self.nat.get(slot.0).copied() else {
            return;
        };
        let key = n.peer_key(self.entries[slot.0].key.proto);
        if let Some(p) = self.peer_slot(n.peer, &key, now) {
            self.free(p);
        }
    }

    /// Whether `slot` still holds the live entry for `key`.
    pub fn holds_key(&self, slot: Slot, key: &FlowKey, now: u64) -> bool {
        self.peer_slot(slot.0 as u32, key, now).is_some()
    }

    /// Its index, for a peer hint.
    pub fn index(slot: Slot) -> u32 {
        slot.0 as u32
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
        if backend == NO_BACKEND {
            return;
        }
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
    fn candidates(&self, hash: u32) -> [usize; 2] {
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

    /// Where the flow with `hash` lives: its tag and two candidate buckets, worked out once
    /// per packet; the buckets are prefetched (a burst probes all its packets before looking).
    #[inline]
    pub fn probe(&self, hash: u32) -> Probe {
        let p = self.locate(hash);
        prefetch_line(self.buckets.as_ptr().wrapping_add(p.b1 as usize));
        prefetch_line(self.buckets.as_ptr().wrapping_add(p.b2 as usize));
        p
    }

    /// [`FlowTable::probe`] without the prefetch, for a lookup that follows at once.
    #[inline]
    pub fn locate(&self, hash: u32) -> Probe {
        let [b1, b2] = self.candidates(hash);
        // Bucket indices come from 32 hash bits, so they fit in a u32.
        Probe {
            tag: tag_of(hash),
            b1: b1 as u32,
            b2: b2 as u32,
            hint: NO_HINT,
        }
    }

    /// Hints the CPU to fetch the entry a lookup (or, on a miss, the insert) will touch: the
    /// second, dependent miss; called once the buckets of the whole burst are in flight. The
    /// entry is kept in `p` so the lookup tries it first.
    #[inline]
    pub fn prefetch_entry(&self, p: &mut Probe, now: u64) {
        let (b1, b2) = (p.b1 as usize, p.b2 as usize);
        let (Some(k1), Some(k2)) = (self.buckets.get(b1), self.buckets.get(b2)) else {
            return;
        };
        let i = match ways_equal(&k1.tags, p.tag) {
            0 => match ways_equal(&k2.tags, p.tag) {
                0 => self.room(b1, b2, tick(now)).0,
                m => b2 * WAYS + way(m),
            },
            m => b1 * WAYS + way(m),
        };
        // An entry index beyond u32 (a table of over 4G entries) is simply no hint.
        p.hint = u32::try_from(i).unwrap_or(NO_HINT);
        prefetch_line(self.entries.as_ptr().wrapping_add(i));
        if !self.nat.is_empty() {
            self.prefetch_nat(i);
        }
    }

    /// The nat side record of entry `i` (a nat hit reads it next), both lines it may span.
    #[cold]
    #[inline(never)]
    fn prefetch_nat(&self, i: usize) {
        let r = self.nat.as_ptr().wrapping_add(i);
        prefetch_line(r);
        prefetch_line(r.cast::<u8>().wrapping_add(std::mem::size_of::<Nat>() - 1));
    }

    /// For a nat connection's packet, the other direction's entry and bucket, which its hit
    /// touches too: the third dependent miss, prefetched once the burst's side records (from
    /// [`FlowTable::prefetch_entry`]) are on their way. Reads the side record `p`'s hint names.
    #[inline]
    pub fn prefetch_peer(&self, p: &Probe) {
        let Some(n) = self.nat.get(p.hint as usize) else {
            return;
        };
        if n.kind == NatKind::None {
            return;
        }
        let peer = n.peer as usize;
        prefetch_line(self.entries.as_ptr().wrapping_add(peer));
        prefetch_line(self.buckets.as_ptr().wrapping_add(peer / WAYS));
    }

    /// Finds the live entry for `key` (whose hash is `hash`); an expired one is removed
    /// (counted) and not returned.
    #[inline]
    pub fn find(&mut self, key: &FlowKey, hash: u32, now: u64) -> Option<Slot> {
        let p = self.locate(hash);
        self.find_probed(key, &p, now)
    }

    /// [`FlowTable::find`] for a flow already probed: the entry [`FlowTable::prefetch_entry`]
    /// noted is tried first, and only if it is not the flow's are the buckets searched.
    #[inline(always)]
    pub fn find_probed(&mut self, key: &FlowKey, p: &Probe, now: u64) -> Option<Slot> {
        let i = if self.holds(p.hint as usize, p.tag, key) {
            p.hint as usize
        } else {
            self.position_in(p, key)?
        };
        if self.entries[i].expires <= now {
            self.remove_expired(i);
            return None;
        }
        Some(Slot(i))
    }

    /// [`FlowTable::find_probed`] and [`FlowTable::touch`] in one, for a flow packet that
    /// follows its entry. Returns the slot and its backend handle.
    #[inline(always)]
    pub fn hit(
        &mut self,
        key: &FlowKey,
        p: &Probe,
        now: u64,
        tcp_flags: u8,
    ) -> Option<(Slot, u32)> {
        let slot = self.find_probed(key, p, now)?;
        let backend = self.backend(slot);
        self.touch(slot, now, tcp_flags);
        Some((slot, backend))
    }

    /// Whether entry `i` is live with `tag` and holds `key` (keys are unique in the table).
    #[inline(always)]
    fn holds(&self, i: usize, tag: u16, key: &FlowKey) -> bool {
        self.buckets
            .get(i / WAYS)
            .is_some_and(|b| b.tags[i % WAYS] == tag)
            && self.entries.get(i).is_some_and(|e| e.key == *key)
    }

    #[inline]
    fn remove_expired(&mut self, i: usize) {
        self.stats.evicted_timeout += 1;
        self.free(i);
    }

    /// Frees entry `i` (its tag cleared; the entry itself is overwritten when reused).
    #[inline]
    fn free(&mut self, i: usize) {
        self.buckets[i / WAYS].tags[i % WAYS] = 0;
        self.len -= 1;
        self.lost(self.entries[i].backend);
        self.released(i);
    }

    /// The entry index of `key` in either candidate bucket of `p`, if it is there.
    #[inline(always)]
    fn position_in(&self, p: &Probe, key: &FlowKey) -> Option<usize> {
        self.position(p.b1 as usize, p.tag, key)
            .or_else(|| self.position(p.b2 as usize, p.tag, key))
    }

    /// The entry index of `key` in bucket `b`, if it is there.
    #[inline(always)]
    fn position(&self, b: usize, tag: u16, key: &FlowKey) -> Option<usize> {
        let mut m = ways_equal(&self.buckets[b].tags, tag);
        while m != 0 {
            let i = b * WAYS + way(m);
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

    /// Records a packet of the flow: state transition and expiry.
    #[inline]
    pub fn touch(&mut self, slot: Slot, now: u64, tcp_flags: u8) {
        let e = &mut self.entries[slot.0];
        e.state = e.state.next(e.key.proto, tcp_flags);
        e.expires = now.saturating_add(self.timeouts[e.state as usize]);
        let c = coarse_expiry_after(now, self.timeout_ticks[e.state as usize]);
        // The bucket's line is in cache already: the lookup just read its tags.
        if let Some(b) = self.buckets.get_mut(slot.0 / WAYS) {
            b.expiry[slot.0 % WAYS] = c;
        }
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
    /// candidate bucket, else the way closest to expiry of both buckets (counted in `stats`).
    pub fn insert(
        &mut self,
        key: &FlowKey,
        hash: u32,
        backend: u32,
        tcp_flags: u8,
        now: u64,
    ) -> Slot {
        let p = self.locate(hash);
        self.insert_probed(key, &p, backend, tcp_flags, now)
    }

    /// Removes the entry for `key`, if there is one (a new connection on its tuple that gets no
    /// entry of its own must not leave the old one to catch its packets). Not an eviction.
    pub fn remove_probed(&mut self, key: &FlowKey, p: &Probe) {
        if let Some(i) = self.position_in(p, key) {
            self.free(i);
        }
    }

    /// [`FlowTable::insert`] for a flow already probed.
    pub fn insert_probed(
        &mut self,
        key: &FlowKey,
        p: &Probe,
        backend: u32,
        tcp_flags: u8,
        now: u64,
    ) -> Slot {
        let (tag, b1, b2) = (p.tag, p.b1 as usize, p.b2 as usize);
        let i = match self.position_in(p, key) {
            Some(i) => {
                self.lost(self.entries[i].backend);
                self.released(i);
                i
            }
            None => self.make_room(b1, b2, now),
        };
        self.stats.created += 1;
        self.gained(backend);
        // A flow first seen mid-stream (no SYN) is taken as established.
        let state = FlowState::Established.next(key.proto, tcp_flags);
        let expires = now.saturating_add(self.timeout(state));
        let bucket = &mut self.buckets[i / WAYS];
        bucket.tags[i % WAYS] = tag;
        bucket.expiry[i % WAYS] = coarse_expiry_after(now, self.timeout_ticks[state as usize]);
        self.entries[i] = Entry {
            key: *key,
            backend,
            state,
            expires,
        };
        Slot(i)
    }

    /// The entry index a new flow for buckets `b1` and `b2` would take, and whether it is
    /// free: a free way of the emptier bucket, else the way closest to expiry. Reads only the
    /// two buckets, never an entry.
    #[inline]
    fn room(&self, b1: usize, b2: usize, now_tick: u16) -> (usize, bool) {
        let (k1, k2) = (&self.buckets[b1], &self.buckets[b2]);
        let (free, n1, n2) = free_ways(&k1.tags, &k2.tags);
        if n2 > n1 {
            return (b2 * WAYS + (free >> WAYS).trailing_zeros() as usize, true);
        }
        if n1 > 0 {
            return (b1 * WAYS + free.trailing_zeros() as usize, true);
        }
        let mut victim = (i16::MAX, b1 * WAYS);
        for (b, k) in [(b1, k1), (b2, k2)] {
            for (w, &c) in k.expiry.iter().enumerate() {
                let left = self.trusted_ticks_left(c, now_tick);
                if left < victim.0 {
                    victim = (left, b * WAYS + w);
                }
            }
        }
        (victim.1, false)
    }

    /// Ticks until the coarse expiry `c`; one that wrapped around counts as long past.
    #[inline(always)]
    fn trusted_ticks_left(&self, c: u16, now_tick: u16) -> i16 {
        match ticks_left(c, now_tick) {
            left if left > self.max_ahead => i16::MIN,
            left => left,
        }
    }

    /// An entry index for a new flow in bucket `b1` or `b2`, freed (and counted) if need be.
    fn make_room(&mut self, b1: usize, b2: usize, now: u64) -> usize {
        let (i, free) = self.room(b1, b2, tick(now));
        if free {
            self.len += 1;
            return i;
        }
        let e = &self.entries[i];
        if e.expires <= now {
            self.stats.evicted_timeout += 1;
        } else {
            self.stats.evicted_capacity += 1;
            self.stats.evicted_established += u64::from(e.state == FlowState::Established);
            if !self.nat.is_empty() {
                self.evict_peer(i, now);
            }
        }
        self.lost(self.entries[i].backend);
        self.released(i);
        i
    }

    /// A nat connection is two entries, one per direction: evicting one evicts the other, or
    /// the survivor would keep translating for a connection whose other half is gone (a nat
    /// client's packets keep its forward entry alive while every reply is dropped; a fullnat
    /// port whose reverse entry is gone counts as free while its forward entry still uses it).
    #[cold]
    #[inline(never)]
    fn evict_peer(&mut self, i: usize, now: u64) {
        let Some(n) = self.nat.get(i).copied() else {
            return;
        };
        if n.kind == NatKind::None {
            return;
        }
        let key = n.peer_key(self.entries[i].key.proto);
        if let Some(p) = self.peer_slot(n.peer, &key, now) {
            self.stats.evicted_capacity += 1;
            self.stats.evicted_established +=
                u64::from(self.entries[p].state == FlowState::Established);
            self.free(p);
        }
    }

    /// Removes expired entries from the next few buckets: amortised expiry, a bounded
    /// amount of work per call. Normally only entries whose coarse expiry has passed are read
    /// (a live one among them, beyond the coarse range, gets it renewed); after an idle spell
    /// long enough for coarse expiries to wrap, every occupied entry is, for one pass.
    pub fn sweep(&mut self, now: u64) {
        let now_tick = tick(now);
        for _ in 0..SWEEP_BUCKETS {
            let b = self.cursor;
            self.cursor = (self.cursor + 1) & self.mask;
            if b == 0 {
                self.previous_pass_started = self.pass_started.replace(now);
            }
            // This bucket was last visited no earlier than the previous pass began.
            let trusted = self
                .previous_pass_started
                .is_some_and(|t| now.saturating_sub(t) <= TRUST_NS);
            let k = self.buckets[b];
            let mut used = !ways_equal(&k.tags, 0) & 0xffff;
            while used != 0 {
                let w = way(used);
                used &= !(0b11 << (2 * w));
                if trusted && ticks_left(k.expiry[w], now_tick) > 0 {
                    continue;
                }
                let i = b * WAYS + w;
                let expires = self.entries[i].expires;
                if expires <= now {
                    self.remove_expired(i);
                } else {
                    self.buckets[b].expiry[w] = coarse_expiry(expires, now);
                }
            }
        }
        // The next call's buckets, a burst ahead: in a big table each line is a DRAM miss,
        // which the sweep otherwise waits out twice a burst.
        for k in 0..SWEEP_BUCKETS {
            let b = (self.cursor + k) & self.mask;
            prefetch_line(self.buckets.as_ptr().wrapping_add(b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Advances a xorshift64 generator: repeatable pseudo-random steps.
    fn xorshift(rng: &mut u64) {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
    }

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
    fn free_ways_masks_and_counts_both_buckets() {
        let a = [5, 0, 5, 7, 0, 0, 0, 5];
        let b = [0, 1, 1, 1, 1, 1, 1, 1];
        let (m, na, nb) = free_ways(&a, &b);
        assert_eq!(m, 0b0111_0010 | 1 << 8);
        // The counts only need to order correctly (they are 255 x the count on x86_64).
        assert!(na > nb && nb > 0);
        let full = [1; WAYS];
        assert_eq!(free_ways(&full, &full), (0, 0, 0));
        let (m, na, nb) = free_ways(&[0; WAYS], &full);
        assert_eq!((m, nb), (0xff, 0));
        assert!(na > 0);
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

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000 * MS;

    /// Fills both candidate buckets of `h` with flows 0..16, flow `i` stored at `i` x 100 ms
    /// with the flags `flags(i)` and backend handle `i`.
    fn fill_both_buckets(h: u32, flags: impl Fn(u32) -> u8) -> FlowTable {
        let mut t = small();
        for i in 0..2 * WAYS as u32 {
            t.insert(&key(i), h, i, flags(i), u64::from(i) * 100 * MS);
        }
        assert_eq!(
            t.len(),
            2 * WAYS,
            "both buckets fill before anything is evicted"
        );
        assert_eq!(t.stats.evicted_capacity + t.stats.evicted_timeout, 0);
        t
    }

    #[test]
    fn a_probe_hint_is_checked_never_trusted() {
        // 16 flows share one hash, so one tag: the hint names the first way with that tag,
        // which holds only one of them; every other lookup must fall back to the search.
        let h = 777;
        let mut t = fill_both_buckets(h, |_| tcp::ACK);
        let mut p = t.probe(h);
        t.prefetch_entry(&mut p, SEC);
        for i in 0..2 * WAYS as u32 {
            let s = t.find_probed(&key(i), &p, SEC).expect("live");
            assert_eq!(t.backend(s), i, "flow {i} found its own entry");
        }
        assert!(t.find_probed(&key(99), &p, SEC).is_none());
        // The hinted flow expires and is removed: its key stays in the entry, so only the tag
        // check keeps the stale hint from finding (and removing) it again.
        let hinted = (0..2 * WAYS as u32)
            .find(|&i| t.find_probed(&key(i), &p, SEC) == Some(Slot(p.hint as usize)))
            .expect("the hint names one of the flows");
        let late = 3_600 * SEC;
        assert!(t.find_probed(&key(hinted), &p, late).is_none(), "expired");
        assert_eq!(t.len(), 2 * WAYS - 1);
        assert!(t.find_probed(&key(hinted), &p, late).is_none());
        assert_eq!(t.len(), 2 * WAYS - 1, "removed once");
        t.insert_probed(&key(200), &p, 200, tcp::ACK, late);
        let s = t.find_probed(&key(200), &p, late).expect("inserted");
        assert_eq!(t.backend(s), 200);
    }

    #[test]
    fn a_hit_is_a_find_and_a_touch() {
        // Two tables with the same 16 flows, one hint; packets with each kind of flags at
        // times before and after some entries expire; the same answers and the same state.
        let h = 777;
        let (mut a, mut b) = (
            fill_both_buckets(h, |_| tcp::ACK),
            fill_both_buckets(h, |_| tcp::ACK),
        );
        let mut p = a.probe(h);
        a.prefetch_entry(&mut p, SEC);
        let flags = [tcp::ACK, tcp::ACK | tcp::FIN, tcp::RST, tcp::SYN, 0];
        for (n, now) in [SEC, 2 * SEC, 100 * SEC, 3_600 * SEC]
            .into_iter()
            .enumerate()
        {
            for i in 0..2 * WAYS as u32 + 1 {
                let f = flags[(i as usize + n) % flags.len()];
                let found = a.find_probed(&key(i), &p, now);
                if let Some(s) = found {
                    a.touch(s, now, f);
                }
                let want = found.map(|s| (s, a.backend(s)));
                assert_eq!(b.hit(&key(i), &p, now, f), want, "flow {i} at {now}");
                if let Some((s, _)) = want {
                    let (ea, eb) = (&a.entries[s.0], &b.entries[s.0]);
                    assert_eq!((ea.state, ea.expires), (eb.state, eb.expires));
                    assert_eq!(a.buckets[s.0 / WAYS].expiry, b.buckets[s.0 / WAYS].expiry);
                }
            }
            assert_eq!((a.len(), a.stats), (b.len(), b.stats), "at {now}");
        }
        assert_eq!(a.len(), 0, "all expired and removed in the end");
    }

    #[test]
    fn full_buckets_evict_the_flow_closest_to_expiry() {
        // Same hash for all: the same two candidate buckets.
        let h = 12345;
        let mut t = fill_both_buckets(h, |_| tcp::ACK);
        t.insert(&key(100), h, 100, tcp::ACK, 2 * SEC);
        assert_eq!(t.stats.evicted_capacity, 1);
        assert_eq!(
            t.stats.evicted_established, 1,
            "an ACK-only flow is established"
        );
        assert!(
            t.find(&key(0), h, 2 * SEC).is_none(),
            "the least recently seen went"
        );
        assert!(t.find(&key(1), h, 2 * SEC).is_some());
        assert!(t.find(&key(100), h, 2 * SEC).is_some());
        assert_eq!(t.len(), 2 * WAYS);
        assert_eq!(t.flows_per_backend()[0], 0);
    }

    #[test]
    fn full_buckets_evict_an_expired_flow_first_then_a_half_open_one() {
        let h = 999;
        let mut t = fill_both_buckets(h, |i| if i == 7 || i == 9 { tcp::SYN } else { tcp::ACK });
        // Flow 7's SYN expired at 5.7 s; flow 9's (5.9 s) has not yet at 5.8 s.
        t.insert(&key(100), h, 100, tcp::ACK, 5_800 * MS);
        assert_eq!((t.stats.evicted_timeout, t.stats.evicted_capacity), (1, 0));
        assert!(t.find(&key(7), h, 5_800 * MS).is_none());
        // Next, the half-open flow 9 goes before any established one.
        t.insert(&key(101), h, 101, tcp::ACK, 5_800 * MS);
        assert_eq!((t.stats.evicted_timeout, t.stats.evicted_capacity), (1, 1));
        assert_eq!(t.stats.evicted_established, 0, "the victim was half-open");
        assert!(t.find(&key(9), h, 5_800 * MS).is_none());
        assert!(t.find(&key(0), h, 5_800 * MS).is_some());
        assert_eq!(t.len(), 2 * WAYS);
        // No half-open flow left: an established one goes, and is counted as such.
        t.insert(&key(102), h, 102, tcp::ACK, 5_800 * MS);
        assert_eq!(
            (t.stats.evicted_capacity, t.stats.evicted_established),
            (2, 1)
        );
    }

    #[test]
    fn touch_renews_the_coarse_expiry_eviction_goes_by() {
        let h = 4242;
        let mut t = fill_both_buckets(h, |_| tcp::ACK);
        let s = t.find(&key(0), h, 3 * SEC).unwrap();
        t.touch(s, 3 * SEC, tcp::ACK);
        t.insert(&key(100), h, 100, tcp::ACK, 3 * SEC);
        assert!(
            t.find(&key(0), h, 3 * SEC).is_some(),
            "flow 0 was just seen"
        );
        assert!(t.find(&key(1), h, 3 * SEC).is_none());
    }

    fn table_with_timeouts(established: Duration) -> FlowTable {
        FlowTable::new(&FlowConfig {
            capacity: 64,
            tcp_established_timeout: established,
            ..FlowConfig::default()
        })
    }

    fn sweep_all(t: &mut FlowTable, now: u64) {
        for _ in 0..t.capacity() / WAYS / SWEEP_BUCKETS + 1 {
            t.sweep(now);
        }
    }

    #[test]
    fn sweep_keeps_a_flow_whose_timeout_is_beyond_the_coarse_range() {
        // Two hours is beyond the ~36 minutes a coarse expiry can be ahead.
        let mut t = table_with_timeouts(Duration::from_secs(7200));
        let k = key(1);
        t.insert(&k, k.hash(), 1, tcp::ACK, 0);
        for minutes in [30, 60, 90, 119] {
            sweep_all(&mut t, minutes * 60 * SEC);
            assert_eq!(t.len(), 1, "swept at {minutes} min");
        }
        assert!(t.find(&k, k.hash(), 119 * 60 * SEC).is_some());
        sweep_all(&mut t, 7201 * SEC);
        assert_eq!((t.len(), t.stats.evicted_timeout), (0, 1));
    }

    #[test]
    fn sweep_removes_a_flow_whose_coarse_expiry_wrapped_around() {
        // The u16 tick wraps every 2^16 ticks (~73 min): just after the wrap-around, or
        // 10,000 ticks before it, a 5 s SYN expiry stored at 0 reads as still ahead.
        for later in [(1u64 << 16) + 10, (1u64 << 16) - 10_000] {
            let mut t = small();
            let k = key(1);
            t.insert(&k, k.hash(), 1, tcp::SYN, 0);
            // Two passes at 1 s: the sweep now trusts coarse expiries.
            sweep_all(&mut t, SEC);
            sweep_all(&mut t, SEC);
            assert_eq!(t.len(), 1);
            sweep_all(&mut t, later << TICK_SHIFT);
            assert_eq!(
                (t.len(), t.stats.evicted_timeout),
                (0, 1),
                "at tick {later}"
            );
        }
    }

    #[test]
    fn the_table_agrees_with_a_model_over_hours_with_idle_gaps() {
        // Big enough that nothing is evicted for capacity: every answer is exact.
        let mut t = FlowTable::new(&FlowConfig {
            capacity: 1 << 12,
            ..FlowConfig::default()
        });
        let mut model = std::collections::HashMap::new();
        let mut rng = 0x0123_4567_89ab_cdefu64;
        let mut now = 0u64;
        for step in 0..50_000u32 {
            xorshift(&mut rng);
            // Mostly milliseconds apart, now and then an idle gap of up to three hours.
            now += match rng % 1000 {
                0 => rng % (3 * 3600 * SEC),
                _ => rng % (20 * MS),
            };
            let k = key((rng >> 20) as u32 % 500);
            let h = k.hash();
            match (rng >> 8) % 4 {
                0 => {
                    let flags = if rng >> 40 & 1 == 0 {
                        tcp::SYN
                    } else {
                        tcp::ACK
                    };
                    t.insert(&k, h, 0, flags, now);
                    let timeout = if flags == tcp::SYN { 5 } else { 300 };
                    model.insert(k, now + timeout * SEC);
                }
                1 => t.sweep(now),
                _ => {
                    let live = model.get(&k).is_some_and(|&e| e > now);
                    assert_eq!(t.find(&k, h, now).is_some(), live, "step {step}");
                    if !live {
                        model.remove(&k);
                    }
                }
            }
            let live = model.values().filter(|&&e| e > now).count();
            assert!(t.len() >= live, "step {step}: a live flow was dropped");
        }
        assert_eq!(t.stats.evicted_capacity, 0);
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

    /// Entries holding a fullnat port of gauge index `local`, counted from the table itself.
    fn ports_held(t: &FlowTable, local: u16) -> u64 {
        (0..t.entries.len())
            .filter(|&i| t.buckets[i / WAYS].tags[i % WAYS] != 0)
            .filter(|&i| t.nat[i].kind == NatKind::Reverse && t.nat[i].local == local)
            .count() as u64
    }

    #[test]
    fn the_fullnat_port_gauge_stays_exact_through_every_removal() {
        let mut t = FlowTable::with_nat(
            &FlowConfig {
                capacity: 64,
                ..FlowConfig::default()
            },
            true,
        );
        let locals = [t.register_local([7; 16]), t.register_local([8; 16])];
        assert_eq!(t.register_local([7; 16]), locals[0], "registered once");
        let mut rng = 0x5eed_f00d_1234_9876u64;
        let mut now = 0u64;
        for step in 0..30_000u32 {
            xorshift(&mut rng);
            // Up to 20 s apart now and then: SYN entries (5 s) expire, others live on.
            now += if rng.is_multiple_of(50) {
                rng % (20 * SEC)
            } else {
                rng % (10 * MS)
            };
            // 300 keys in 64 slots: full buckets evict.
            let k = key((rng >> 20) as u32 % 300);
            let h = k.hash();
            let flags = if rng >> 40 & 1 == 0 {
                tcp::SYN
            } else {
                tcp::ACK
            };
            match rng % 7 {
                0 | 1 => {
                    let slot = t.insert(&k, h, NO_BACKEND, flags, now);
                    let local = locals[(rng >> 33) as usize % 2];
                    let kind = if rng >> 35 & 1 == 0 {
                        NatKind::Reverse
                    } else {
                        NatKind::Forward
                    };
                    t.set_nat(
                        slot,
                        Nat {
                            kind,
                            local,
                            ..Nat::NONE
                        },
                    );
                }
                2 => {
                    // A plain (tunnel or DSR) entry, possibly overwriting a nat one.
                    t.insert(&k, h, 1, flags, now);
                }
                3 => {
                    t.find(&k, h, now);
                }
                4 => t.sweep(now),
                5 => t.remove_probed(&k, &t.locate(h)),
                _ => {
                    if let Some(slot) = t.find(&k, h, now) {
                        t.touch_nat(slot, now, flags);
                    }
                }
            }
            for (i, &l) in locals.iter().enumerate() {
                assert_eq!(
                    t.nat_ports_in_use()[i].1,
                    ports_held(&t, l),
                    "step {step}, local {i}"
                );
            }
        }
        assert!(t.stats.evicted_capacity > 0 && t.stats.evicted_timeout > 0);
        assert!(t.nat_ports_in_use().iter().any(|&(_, n)| n > 0));
    }

    #[test]
    fn a_peer_is_touched_and_removed_only_while_it_holds_the_other_direction() {
        let mut t = FlowTable::with_nat(&FlowConfig::default(), true);
        let fwd = key(1);
        let mut rev = key(2);
        rev.sport = 8080;
        let out = Nat {
            kind: NatKind::Forward,
            src: fwd.src,
            dst: rev.src,
            sport: fwd.sport,
            dport: rev.sport,
            ..Nat::NONE
        };
        // The forward entry's output, reversed, is the reverse key.
        assert_eq!(
            out.peer_key(proto::TCP),
            FlowKey {
                src: rev.src,
                dst: fwd.src,
                sport: 8080,
                dport: 1000,
                proto: proto::TCP
            }
        );
        let rkey = out.peer_key(proto::TCP);
        let f = t.insert(&fwd, fwd.hash(), 1, tcp::ACK, 0);
        let r = t.insert(&rkey, rkey.hash(), NO_BACKEND, tcp::ACK, 0);
        t.set_nat(
            f,
            Nat {
                peer: FlowTable::index(r),
                ..out
            },
        );
        // Refreshed by the forward direction at 200 s, the reverse entry outlives 300 s.
        t.touch_nat(f, 200 * SEC, tcp::ACK);
        assert!(t.find(&rkey, rkey.hash(), 400 * SEC).is_some());
        // Its slot reused by another flow: the hint no longer holds the peer, left alone.
        t.remove_probed(&rkey, &t.locate(rkey.hash()));
        let other = key(3);
        let o = t.insert(&other, other.hash(), 2, tcp::ACK, 400 * SEC);
        t.set_nat(
            f,
            Nat {
                peer: FlowTable::index(o),
                ..out
            },
        );
        t.remove_peer(f, 400 * SEC);
        assert!(t.find(&other, other.hash(), 400 * SEC).is_some());
        assert_eq!(
            t.flows_per_backend()[1],
            1,
            "the reverse entry never counted"
        );
    }

    #[test]
    fn per_backend_counts_always_add_up_to_the_live_entries() {
        let mut t = small();
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut now = 0u64;
        for step in 0..20_000u32 {
            xorshift(&mut rng);
            now += rng % 50_000_000;
            let k = key((rng >> 20) as u32 % 300);
            let h = k.hash();
            let backend = (rng >> 40) as u32 % 5;
            match rng % 4 {
                0 | 1 => {
                    t.insert(&k, h, backend, tcp::SYN, now);
                }
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
