//! The per-packet function: parse -> classify -> flow table -> backend -> rewrite, or an
//! answer (ARP/ND/echo/PTB) written in place, or a counted drop. Pure: bytes, state and an
//! injected clock in, a verdict out.
//!
//! Long (about 850 lines besides tests): the per-packet paths share `Pipeline`'s private state
//! and inline into one function on the hot path; nat/fullnat translation is in `translate`.

mod translate;

use std::net::{IpAddr, Ipv6Addr};

use maglev::flow::{five_tuple, five_tuple_v4, slot, source_ip, v4_mapped, v4_unmapped};

use crate::flow::{FlowConfig, FlowKey, FlowTable, Probe};
use crate::frame::Frame;
use crate::parse::{self, Arp, Embedded, Frag, Ip, Parsed, L4};
use crate::ratelimit::TokenBucket;
use crate::reply;
use crate::rewrite;
use crate::snapshot::{Class, HashKind, Interface, Snapshot, WhenAllDown};
use crate::stats::{Counters, DropReason};
use crate::wire::{arp, proto, tcp};

/// `Pipeline::backend_index` of a backend the current snapshot does not hold.
const NOT_HERE: u32 = u32::MAX;

/// Packets a burst is processed in (DPDK's usual `rx_burst` size).
pub const BURST: usize = 32;
/// Sweeps per idle call (about a millisecond apart): with 4 buckets each, a million-entry
/// table is swept in about 2 s while idle.
const IDLE_SWEEPS: usize = 16;
/// The most a forwarded packet grows: a new Ethernet header plus outer IPv6 and UDP.
pub const MAX_GROWTH: usize = 14 + 40 + 8;

/// What to do with a frame after [`Pipeline::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The frame was rewritten for a backend: transmit it on `port`.
    Forward {
        port: u16,
    },
    /// The frame was turned into our answer (ARP, ND, echo, PTB): transmit it on `port`,
    /// the port it came in on.
    Reply {
        port: u16,
    },
    /// An ARP reply or neighbour advertisement: hand the bytes to control's resolver.
    ToControl,
    /// The same, and the frame itself to the host's kernel (its exception path is on).
    ToControlAndKernel,
    /// A frame for the host (TCP/UDP or other IP to the interface's own address, IPv6
    /// link-local and multicast): send it to the in-port's kernel interface.
    ToKernel,
    /// A nat/fullnat packet of a connection another worker owns (see [`crate::steer`]): hand
    /// it, untouched, to worker `worker`'s pipeline.
    Redirect {
        worker: u16,
    },
    Drop(DropReason),
}

/// Settings of one worker's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    pub flows: FlowConfig,
    /// ICMP fragmentation-needed / packet-too-big messages per second per core.
    pub ptb_per_second: u32,
    /// Frames per second per core the exception path hands to the kernel (0: no limit).
    pub exception_per_second: u32,
    /// Allocate connection tracking for nat/fullnat services (some service uses them).
    pub nat: bool,
    /// This worker's index among `workers`: the nat connections it owns (see [`crate::steer`]).
    pub worker: u16,
    /// Workers in all; with more than one, nat packets another worker owns are redirected.
    pub workers: u16,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            flows: FlowConfig::default(),
            ptb_per_second: 1000,
            exception_per_second: 10_000,
            nat: false,
            worker: 0,
            workers: 1,
        }
    }
}

/// One worker core's packet state: flow table, rate limiters and counters.
pub struct Pipeline {
    flows: FlowTable,
    counters: Counters,
    new_flows: TokenBucket,
    ptb: TokenBucket,
    exception: TokenBucket,
    generation: u64,
    service_slot: Vec<usize>,
    /// Snapshot backend index -> counter slot, which is also the backend's flow-table handle.
    backend_slot: Vec<usize>,
    /// Flow-table handle -> index of that backend in the current snapshot (`NOT_HERE` if it
    /// is not in it): a hit finds its backend with one load instead of a lookup by id.
    backend_index: Vec<u32>,
    /// Per-burst parse results (BURST of them), kept here so a burst does not allocate.
    scratch: Vec<Parsing>,
    /// New nat connections' reverse entries, inserted at the end of the burst (see
    /// [`Pipeline::insert_reverse`]); room for a burst, so it never allocates.
    reverse: Vec<translate::Reverse>,
    /// Snapshot local address index -> its gauge index in the flow table.
    local_slot: Vec<u16>,
    /// Counter slots of pruned ids (see [`Pipeline::prune`]), reused before new ones.
    free_service_slots: Vec<usize>,
    free_backend_slots: Vec<usize>,
    /// The fullnat port range (inclusive).
    nat_ports: (u16, u16),
    worker: u16,
    workers: u16,
}

type Parsing = (Result<Parsed, DropReason>, Pre);

const EMPTY_PARSING: Parsing = (
    Err(DropReason::Truncated),
    Pre {
        hash: 0,
        probe: Probe::NONE,
    },
);

/// A packet's flow hash and its place in the flow table, worked out before the burst is
/// probed so the table can be prefetched (hash 0 for packets without a flow).
#[derive(Debug, Clone, Copy, Default)]
struct Pre {
    hash: u32,
    probe: Probe,
}

/// The flow key of a client packet with these ports.
#[inline(always)]
fn key_of(ip: &Ip, sport: u16, dport: u16) -> FlowKey {
    FlowKey {
        src: ip.src,
        dst: ip.dst,
        sport,
        dport,
        proto: ip.proto,
    }
}

/// The flow key of the packet an ICMP error quotes, as its sender's flow entry holds it.
fn quoted_key(e: &Embedded) -> FlowKey {
    FlowKey {
        src: e.client,
        dst: e.vip,
        sport: e.client_port,
        dport: e.vip_port,
        proto: e.proto,
    }
}

#[inline(always)]
fn pre_of(p: &Parsed) -> Pre {
    match p {
        Parsed::Ip(ip) => match ip.l4 {
            L4::Ports { sport, dport, .. } if ip.frag.is_none() => Pre {
                // IPv4 from its four bytes, read as they were stored: the parser has just
                // written the mapped addresses byte by byte, and the 8-byte loads of the
                // mapped form's hash would wait for those stores (no store-to-load
                // forwarding across several stores): 12-19% of a hit in `ipp --time`.
                hash: if ip.v6 {
                    five_tuple(&ip.src, &ip.dst, sport, dport, ip.proto)
                } else {
                    let (src, dst) = (v4_unmapped(&ip.src), v4_unmapped(&ip.dst));
                    five_tuple_v4(src, dst, sport, dport, ip.proto)
                },
                probe: Probe::NONE,
            },
            _ => Pre::default(),
        },
        Parsed::Arp(_) => Pre::default(),
    }
}

impl Pipeline {
    /// Allocates the flow table (the only large allocation; do it before traffic).
    pub fn new(cfg: &PipelineConfig) -> Self {
        Self {
            flows: FlowTable::with_nat(&cfg.flows, cfg.nat),
            counters: Counters::default(),
            new_flows: TokenBucket::per_second(cfg.flows.max_new_flows_per_second),
            ptb: TokenBucket::per_second(cfg.ptb_per_second),
            exception: TokenBucket::per_second(cfg.exception_per_second),
            generation: 0,
            service_slot: Vec::new(),
            backend_slot: Vec::new(),
            backend_index: Vec::new(),
            scratch: vec![EMPTY_PARSING; BURST],
            reverse: Vec::with_capacity(BURST),
            local_slot: Vec::new(),
            free_service_slots: Vec::new(),
            free_backend_slots: Vec::new(),
            nat_ports: (translate::NAT_PORT_FIRST, translate::NAT_PORT_LAST),
            workers: cfg.workers.max(1),
            worker: cfg.worker.min(cfg.workers.max(1) - 1),
        }
    }

    /// Narrows the fullnat port range to `first..=last` (within 1024..=65535): tests reach
    /// exhaustion with a few ports; the appliance keeps the whole range.
    pub fn set_nat_port_range(&mut self, first: u16, last: u16) {
        let first = first.max(translate::NAT_PORT_FIRST);
        self.nat_ports = (first, last.max(first));
    }

    /// fullnat ports in use per local address on this core (`sluice_nat_ports_in_use`), into
    /// `out`, reusing its memory; every local address a snapshot of this pipeline held.
    pub fn nat_ports_in_use_into(&self, out: &mut hashbrown::HashMap<IpAddr, u64>) {
        out.clear();
        out.extend(self.flows.nat_ports_in_use().iter().map(|&(a, n)| {
            let v6 = Ipv6Addr::from(a);
            (v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4), n)
        }));
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// For the worker around the pipeline, which counts its rx, tx and queue-full drops in
    /// the same struct.
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Sets the counters' gauges (flows, flows per backend, fullnat ports in use) to now, for
    /// a publication; reuses their maps' memory.
    pub fn refresh_gauges(&mut self) {
        self.counters.flows = self.flows.len() as u64;
        let mut per_backend = std::mem::take(&mut self.counters.backend_flows);
        self.flows_per_backend_into(&mut per_backend);
        self.counters.backend_flows = per_backend;
        let mut ports = std::mem::take(&mut self.counters.nat_ports_in_use);
        self.nat_ports_in_use_into(&mut ports);
        self.counters.nat_ports_in_use = ports;
    }

    /// Live flow entries on this core (`sluice_flows{core}`).
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Live flow entries per backend id (every id a snapshot of this pipeline held; counts
    /// may be zero).
    pub fn flows_per_backend(&self) -> hashbrown::HashMap<u32, u64> {
        let mut m = hashbrown::HashMap::new();
        self.flows_per_backend_into(&mut m);
        m
    }

    /// [`Pipeline::flows_per_backend`] into `out`, reusing its memory.
    pub fn flows_per_backend_into(&self, out: &mut hashbrown::HashMap<u32, u64>) {
        let counts = self.flows.flows_per_backend();
        out.clear();
        out.extend(
            self.counters
                .backend_slot
                .iter()
                .map(|(&id, &slot)| (id, counts.get(slot).copied().unwrap_or(0))),
        );
    }

    /// Processes one frame that arrived on `in_port` at `now` (nanoseconds, monotonic).
    pub fn process(
        &mut self,
        frame: &mut Frame<'_>,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Verdict {
        self.adopt(snap);
        let parsed = parse::parse_trusting(frame.data(), frame.ipv4_checksum_good);
        let mut pre = parsed.as_ref().map(pre_of).unwrap_or_default();
        pre.probe = self.flows.locate(pre.hash);
        let known = snap.interface(in_port).is_some();
        let v = self.one(frame, &parsed, &pre, in_port, known, snap, now);
        self.insert_reverse(now);
        // BURST is a power of two: sweep once every BURST packets.
        if self.counters.processed & (BURST as u64 - 1) == 0 {
            self.flows.sweep(now);
        }
        self.sync_flow_stats();
        v
    }

    /// Processes a burst: parses and hashes every frame, prefetches their flow buckets, then
    /// probes and rewrites. Writes one verdict per frame; returns how many were processed
    /// (`min(frames.len(), verdicts.len())`).
    pub fn process_burst(
        &mut self,
        frames: &mut [Frame<'_>],
        in_port: u16,
        snap: &Snapshot,
        now: u64,
        verdicts: &mut [Verdict],
    ) -> usize {
        self.adopt(snap);
        let n = frames.len().min(verdicts.len());
        // Taken out of `self` for the burst so packets are read in place, not copied out.
        let mut scratch = std::mem::take(&mut self.scratch);
        // Once per burst, not per packet: every frame of it came in on `in_port`.
        let known = snap.interface(in_port).is_some();
        scratch.resize(BURST, EMPTY_PARSING);
        for (fs, vs) in frames[..n]
            .chunks_mut(BURST)
            .zip(verdicts[..n].chunks_mut(BURST))
        {
            for (f, slot) in fs.iter().zip(scratch.iter_mut()) {
                // Field by field, so each result is written straight into its slot.
                parse::parse_into(f.data(), f.ipv4_checksum_good, &mut slot.0);
                slot.1 = slot.0.as_ref().map(pre_of).unwrap_or_default();
                slot.1.probe = self.flows.probe(slot.1.hash);
            }
            for (_, pre) in scratch.iter_mut().take(fs.len()) {
                self.flows.prefetch_entry(&mut pre.probe, now);
            }
            if self.flows.tracks_nat() {
                for (_, pre) in scratch.iter().take(fs.len()) {
                    self.flows.prefetch_peer(&pre.probe);
                }
            }
            for ((f, v), (parsed, pre)) in fs.iter_mut().zip(vs.iter_mut()).zip(scratch.iter()) {
                *v = self.one(f, parsed, pre, in_port, known, snap, now);
            }
            self.insert_reverse(now);
            self.flows.sweep(now);
        }
        self.scratch = scratch;
        self.sync_flow_stats();
        n
    }

    /// Sweeps [`IDLE_SWEEPS`] times the buckets a burst sweeps, for a worker with nothing to
    /// process: expired flows leave the table (and the per-backend counts) without traffic.
    pub fn sweep_idle(&mut self, now: u64) {
        for _ in 0..IDLE_SWEEPS {
            self.flows.sweep(now);
        }
        self.sync_flow_stats();
    }

    fn sync_flow_stats(&mut self) {
        let s = self.flows.stats;
        self.counters.flows_created = s.created;
        self.counters.flows_evicted_timeout = s.evicted_timeout;
        self.counters.flows_evicted_capacity = s.evicted_capacity;
        self.counters.flows_evicted_established = s.evicted_established;
    }

    /// Maps a new snapshot's services and backends to counter slots. Runs on every snapshot
    /// change (a reload, a health flip, a neighbour learned), inside a burst: the vectors are
    /// refilled in place, so it allocates only when they outgrow every earlier snapshot's.
    fn adopt(&mut self, snap: &Snapshot) {
        if snap.generation() == self.generation {
            return;
        }
        self.generation = snap.generation();
        self.service_slot.clear();
        for id in snap.service_ids() {
            let slot = self
                .counters
                .service_slot_for(id, &mut self.free_service_slots);
            self.service_slot.push(slot);
        }
        self.backend_slot.clear();
        for id in snap.backend_ids() {
            let slot = self
                .counters
                .backend_slot_for(id, &mut self.free_backend_slots);
            self.backend_slot.push(slot);
        }
        let handles = self.counters.backend.len();
        self.backend_index.clear();
        self.backend_index.resize(handles, NOT_HERE);
        for (b, &slot) in self.backend_slot.iter().enumerate() {
            self.backend_index[slot] = b as u32;
        }
        self.prune();
        self.flows.reserve_backends(handles);
        self.local_slot.clear();
        for &a in &snap.locals {
            let g = self.flows.register_local(a);
            self.local_slot.push(g);
        }
    }

    /// Forgets the ids the adopted snapshot no longer holds (a backend's once no flow entry
    /// on this core names it), so their slots serve new ids: where backends churn (pods),
    /// the counters, and the work of publishing them, follow the live set, not the history.
    /// A removed id's counters start again from zero if it comes back after that.
    #[inline(never)]
    fn prune(&mut self) {
        let (live, free) = (&self.service_slot, &mut self.free_service_slots);
        self.counters.service_slot.retain(|_, slot| {
            let keep = live.contains(slot);
            if !keep {
                free.push(*slot);
            }
            keep
        });
        let (index, flows) = (&self.backend_index, self.flows.flows_per_backend());
        let free = &mut self.free_backend_slots;
        self.counters.backend_slot.retain(|_, &mut slot| {
            let here = index.get(slot).is_some_and(|&b| b != NOT_HERE);
            let keep = here || flows.get(slot).is_some_and(|&n| n > 0);
            if !keep {
                free.push(slot);
            }
            keep
        });
    }

    /// `known`: whether `in_port` is one of the snapshot's interfaces.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn one(
        &mut self,
        frame: &mut Frame<'_>,
        parsed: &Result<Parsed, DropReason>,
        pre: &Pre,
        in_port: u16,
        known: bool,
        snap: &Snapshot,
        now: u64,
    ) -> Verdict {
        self.counters.processed += 1;
        let v = match parsed {
            Ok(p) => self.decide(frame, p, pre, in_port, known, snap, now),
            Err(r) => Verdict::Drop(*r),
        };
        match v {
            Verdict::Drop(r) => self.counters.drop(r),
            Verdict::Forward { .. } => self.counters.forwarded += 1,
            other => self.count_rare(other),
        }
        v
    }

    /// The verdicts neither forwarding nor dropping, counted out of line so the hot match
    /// stays as small as before the exception path.
    #[inline(never)]
    fn count_rare(&mut self, v: Verdict) {
        match v {
            Verdict::ToControl => self.counters.to_control += 1,
            Verdict::ToControlAndKernel => {
                self.counters.to_control += 1;
                self.counters.to_kernel += 1;
            }
            Verdict::ToKernel => self.counters.to_kernel += 1,
            Verdict::Redirect { .. } => self.counters.nat_redirected += 1,
            Verdict::Reply { .. } | Verdict::Forward { .. } | Verdict::Drop(_) => {}
        }
    }

    /// A packet the balancer drops for `r`: the host's kernel's instead when it came in on an
    /// interface with an exception path (`iface`), is addressed to the host (such an
    /// interface's address; IPv6 link scope) and `r` says "not for the balancer". Called only
    /// on those drops' branches.
    #[cold]
    #[inline(never)]
    fn not_ours(
        &mut self,
        ip: &Ip,
        iface: &Interface,
        r: DropReason,
        snap: &Snapshot,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        let not_balanced = matches!(
            r,
            DropReason::NotVip
                | DropReason::IcmpUnsupported
                | DropReason::NdNotOurs
                | DropReason::UnsupportedProtocol
        );
        if not_balanced && snap.is_host(&ip.dst) {
            self.kernel_within_rate(iface.kernel, r, now)
        } else {
            Err(r)
        }
    }

    /// To the kernel, within the exception path's per-core rate, when the frame came in on an
    /// interface with an exception path (`kernel`: a worker's tap is its rx port's); else the
    /// drop `r` it would be without one.
    #[cold]
    #[inline(never)]
    fn kernel_within_rate(
        &mut self,
        kernel: bool,
        r: DropReason,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        if !kernel {
            Err(r)
        } else if self.exception.admit(now) {
            Ok(Verdict::ToKernel)
        } else {
            Err(DropReason::ExceptionRateLimited)
        }
    }

    /// An ARP reply or neighbour advertisement: to control, and to the kernel too when the
    /// port has an exception path and its rate allows (the kernel keeps its own neighbours).
    fn neighbour_answer(&mut self, iface: &Interface, now: u64) -> Verdict {
        if !iface.kernel {
            return Verdict::ToControl;
        }
        if self.exception.admit(now) {
            Verdict::ToControlAndKernel
        } else {
            // The packet itself is not dropped (control has it), only the kernel's copy.
            self.counters.kernel_copies_limited += 1;
            Verdict::ToControl
        }
    }

    /// The common case (TCP or UDP, not a fragment, TTL > 0) inline; the rest out of line.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn decide(
        &mut self,
        frame: &mut Frame<'_>,
        p: &Parsed,
        pre: &Pre,
        in_port: u16,
        known: bool,
        snap: &Snapshot,
        now: u64,
    ) -> Verdict {
        if let Parsed::Ip(ip) = p {
            if let (
                L4::Ports {
                    sport,
                    dport,
                    flags,
                },
                None,
                true,
            ) = (ip.l4, ip.frag, ip.ttl != 0 && known)
            {
                return self
                    .transport(frame, ip, sport, dport, flags, pre, in_port, snap, now)
                    .unwrap_or_else(Verdict::Drop);
            }
        }
        self.decide_general(frame, p, pre, in_port, snap, now)
    }

    #[inline(never)]
    fn decide_general(
        &mut self,
        frame: &mut Frame<'_>,
        p: &Parsed,
        pre: &Pre,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Verdict {
        let Some(iface) = snap.interface(in_port) else {
            return Verdict::Drop(DropReason::UnknownPort);
        };
        let ip = match p {
            Parsed::Arp(a) => return self.arp(frame, a, iface, snap, now),
            Parsed::Ip(ip) => ip,
        };
        if ip.ttl == 0 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let r = match ip.l4 {
            L4::Ports {
                sport,
                dport,
                flags,
            } if ip.frag.is_none() => {
                self.transport(frame, ip, sport, dport, flags, pre, in_port, snap, now)
            }
            L4::Ports { .. } | L4::NoPorts => self.fragment(frame, ip, in_port, snap, now),
            L4::EchoRequest => {
                if ours(&ip.dst, iface, snap) {
                    reply::echo_reply(frame, ip, iface.mac).map(|()| {
                        self.counters.replies += 1;
                        Verdict::Reply { port: in_port }
                    })
                } else {
                    Err(DropReason::NotVip)
                }
            }
            L4::IcmpError(e) => self.icmp_error(frame, ip, &e, in_port, snap, now),
            L4::NeighborSolicit { target, source_mac } => {
                let own = iface.ipv6 == Some(target) || snap.owns(&target);
                if own && ip.ttl == 255 {
                    reply::neighbor_advert(frame, ip, target, source_mac, iface.mac).map(|()| {
                        self.counters.replies += 1;
                        Verdict::Reply { port: in_port }
                    })
                } else {
                    Err(DropReason::NdNotOurs)
                }
            }
            // RFC 4861 7.1.2: hop limit 255, or it was routed here from off the link (spoofed).
            L4::NeighborAdvert if ip.ttl != 255 => Err(DropReason::NdNotOurs),
            L4::NeighborAdvert => Ok(self.neighbour_answer(iface, now)),
            L4::IcmpOther => Err(if ours(&ip.dst, iface, snap) {
                DropReason::IcmpUnsupported
            } else {
                DropReason::NotVip
            }),
            L4::Other => Err(if snap.is_vip(&ip.dst) {
                DropReason::UnsupportedProtocol
            } else {
                DropReason::NotVip
            }),
        };
        // Transport packets went through `transport`, whose classification knows the host.
        let transport = matches!(ip.l4, L4::Ports { .. }) && ip.frag.is_none();
        match r {
            Err(reason) if !transport => self
                .not_ours(ip, iface, reason, snap, now)
                .unwrap_or_else(Verdict::Drop),
            r => r.unwrap_or_else(Verdict::Drop),
        }
    }

    fn arp(
        &mut self,
        frame: &mut Frame<'_>,
        a: &Arp,
        iface: &Interface,
        snap: &Snapshot,
        now: u64,
    ) -> Verdict {
        match a.op {
            arp::OP_REQUEST
                if iface.ipv4 == Some(a.target_ip) || snap.owns(&v4_mapped(a.target_ip)) =>
            {
                match reply::arp_reply(frame, a, iface.mac) {
                    Ok(()) => {
                        self.counters.replies += 1;
                        Verdict::Reply { port: iface.port }
                    }
                    Err(r) => Verdict::Drop(r),
                }
            }
            arp::OP_REPLY => self.neighbour_answer(iface, now),
            _ => Verdict::Drop(DropReason::ArpNotOurs),
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn transport(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        sport: u16,
        dport: u16,
        flags: u8,
        pre: &Pre,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        let s = match snap.classify(&ip.dst, dport, ip.proto) {
            Class::Service(s) => s,
            c => {
                let ports = (sport, dport, flags);
                return self.transport_other(frame, ip, ports, pre, in_port, snap, now, c);
            }
        };
        let is_tcp = ip.proto == proto::TCP;
        let syn = is_tcp && flags & tcp::SYN != 0 && flags & tcp::ACK == 0;
        let rst = is_tcp && flags & tcp::RST != 0;
        let key = key_of(ip, sport, dport);
        // A SYN starts a new connection: never follow a stale entry of an old one (Katran).
        if !syn {
            // Touched before its backend is checked: a rehash keeps the touch.
            if let Some((slot, handle)) = self.flows.hit(&key, &pre.probe, now, flags) {
                let (b, handle) = match self.usable(snap, s, handle) {
                    Some(b) => (b, handle),
                    None => {
                        let b = self.maglev(snap, s, ip, pre.hash)?;
                        let h = self.handle(b);
                        self.flows.set_backend(slot, h);
                        self.counters.flows_rehashed += 1;
                        (b, h)
                    }
                };
                return self.forward(frame, ip, snap, s, (b, handle), pre.hash, in_port, now);
            }
        }
        let b = self.maglev(snap, s, ip, pre.hash)?;
        let h = self.handle(b);
        // A RST ends a flow: remembering it would only waste an entry.
        if !rst {
            if self.new_flows.admit(now) {
                self.flows.insert_probed(&key, &pre.probe, h, flags, now);
            } else {
                // A refused SYN skipped the lookup: drop any entry an older connection on this
                // tuple left, or this connection's next packets would follow it.
                if syn {
                    self.flows.remove_probed(&key, &pre.probe);
                }
                self.counters.flows_stateless += 1;
            }
        }
        self.forward(frame, ip, snap, s, (b, h), pre.hash, in_port, now)
    }

    /// A transport packet for no tunnel or DSR service: nat, or not ours, out of line.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn transport_other(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        ports: (u16, u16, u8),
        pre: &Pre,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
        class: Class,
    ) -> Result<Verdict, DropReason> {
        match class {
            Class::Service(_) | Class::VipOnly => Err(DropReason::NoService),
            Class::Host => {
                let kernel = snap.interface(in_port).is_some_and(|i| i.kernel);
                self.kernel_within_rate(kernel, DropReason::NotVip, now)
            }
            Class::NotVip => Err(DropReason::NotVip),
            Class::Reply => self.nat_reply(frame, ip, ports, pre, in_port, snap, now),
            Class::Translate(s) => self.nat_forward(frame, ip, ports, pre, in_port, snap, s, now),
        }
    }

    /// Every fragment of a datagram hashes on (source, destination, protocol), as Maglev
    /// does, so first and later fragments reach the same backend without state.
    fn fragment(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        let s = match snap.fragment_service(&ip.dst, ip.proto) {
            Some(Some(s)) => s,
            Some(None) => return Err(DropReason::FragmentUnclassifiable),
            // With nat services a fragment to no VIP may be a reply's (see Class::Reply).
            None if snap.is_local(&ip.dst)
                || (snap.has_nat() && !snap.is_vip(&ip.dst) && !snap.is_host(&ip.dst)) =>
            {
                return Err(DropReason::NatFragment)
            }
            None if !snap.is_vip(&ip.dst) => return Err(DropReason::NotVip),
            None if ip.proto == proto::TCP || ip.proto == proto::UDP => {
                return Err(DropReason::NoService)
            }
            None => return Err(DropReason::UnsupportedProtocol),
        };
        if snap.translates(s) {
            return Err(DropReason::NatFragment);
        }
        let hash = five_tuple(&ip.src, &ip.dst, 0, 0, ip.proto);
        let b = self.maglev(snap, s, ip, hash)?;
        self.forward(frame, ip, snap, s, (b, self.handle(b)), hash, in_port, now)
    }

    /// An ICMP error about a packet the VIP sent goes to the backend owning that flow.
    fn icmp_error(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        e: &Embedded,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        if !snap.is_vip(&ip.dst) {
            if snap.has_nat() {
                return self.nat_icmp_to_client(frame, ip, e, snap, now);
            }
            return Err(DropReason::NotVip);
        }
        if e.vip != ip.dst {
            return Err(DropReason::IcmpUnsupported);
        }
        let s = match snap.classify(&e.vip, e.vip_port, e.proto) {
            Class::Service(s) => s,
            Class::Translate(s) => return self.nat_icmp_to_backend(frame, ip, e, snap, s, now),
            _ => return Err(DropReason::NoService),
        };
        let key = quoted_key(e);
        let hash = key.hash();
        let stored = self
            .flows
            .find(&key, hash, now)
            .and_then(|slot| self.usable(snap, s, self.flows.backend(slot)));
        let b = match stored {
            Some(b) => b,
            None => {
                let h = match snap.services[s as usize].hash {
                    HashKind::FiveTuple => hash,
                    HashKind::SourceIp => source_ip(&e.client),
                };
                self.pick(snap, s, h)?
            }
        };
        self.forward(frame, ip, snap, s, (b, self.handle(b)), hash, in_port, now)
    }

    /// The backend a flow entry names, if it is still in this snapshot, in this service and up.
    #[inline(always)]
    fn usable(&self, snap: &Snapshot, s: u32, handle: u32) -> Option<u32> {
        let b = *self.backend_index.get(handle as usize)?;
        let be = snap.backends.get(b as usize)?;
        (be.service == s && be.up).then_some(b)
    }

    /// The flow-table handle of snapshot backend `b` (its counter slot).
    #[inline(always)]
    fn handle(&self, b: u32) -> u32 {
        self.backend_slot[b as usize] as u32
    }

    /// Maglev lookup with the service's hash kind.
    fn maglev(&self, snap: &Snapshot, s: u32, ip: &Ip, flow_hash: u32) -> Result<u32, DropReason> {
        let h = match snap.services[s as usize].hash {
            HashKind::FiveTuple => flow_hash,
            HashKind::SourceIp => source_ip(&ip.src),
        };
        self.pick(snap, s, h)
    }

    /// The table's backend for `h`, applying `when_all_down` when the table is empty.
    fn pick(&self, snap: &Snapshot, s: u32, h: u32) -> Result<u32, DropReason> {
        let svc = &snap.services[s as usize];
        let (table, need_up) = if !svc.table.is_empty() {
            (&svc.table, true)
        } else if svc.when_all_down == WhenAllDown::ForwardAnyway {
            (&svc.fallback_table, false)
        } else {
            return Err(DropReason::NoBackend);
        };
        if table.is_empty() {
            return Err(DropReason::NoBackend);
        }
        let b = *table
            .get(slot(h, table.len() as u32))
            .ok_or(DropReason::NoBackend)?;
        let be = snap.backends.get(b as usize).ok_or(DropReason::NoBackend)?;
        // A table naming a down backend is stale: never send there by accident.
        if need_up && !be.up {
            return Err(DropReason::NoBackend);
        }
        Ok(b)
    }

    /// Sends the packet to snapshot backend `b`, whose flow-table handle (and counter slot)
    /// is `handle`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn forward(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        snap: &Snapshot,
        s: u32,
        (b, handle): (u32, u32),
        flow_hash: u32,
        in_port: u16,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        let be = &snap.backends[b as usize];
        let svc = &snap.services[s as usize];
        let iface = &snap.interfaces[be.iface as usize];
        let Some(mac) = be.next_hop_mac else {
            return Err(DropReason::UnresolvedNextHop);
        };
        if ip.ip_len > usize::from(be.max_inner) {
            return self.too_big(frame, ip, &ip.dst, be.max_inner, in_port, snap, now);
        }
        rewrite::encapsulate(frame, ip, svc.forwarding, iface, be, mac, flow_hash)?;
        let ss = self.service_slot[s as usize];
        self.counters.service[ss].packets += 1;
        self.counters.service[ss].bytes += ip.ip_len as u64;
        // The handle is the backend's counter slot.
        if let Some(c) = self.counters.backend.get_mut(handle as usize) {
            *c += 1;
        }
        Ok(Verdict::Forward { port: iface.port })
    }

    /// The packet is dropped; the client learns the usable MTU (rate-limited). IPv4 without
    /// DF gets the message too: Linux lowers its path MTU and fragments locally.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    #[inline(never)]
    fn too_big(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        from: &[u8; 16],
        mtu: u16,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        let Some(iface) = snap.interface(in_port) else {
            return Err(DropReason::UnknownPort);
        };
        // Never answer an ICMP error with an ICMP error (RFC 1122 3.2.2, RFC 4443 2.4), nor an
        // IPv4 fragment other than the first (RFC 1122 3.2.2), nor a source that is not one
        // host (RFC 1812 4.3.2.7, RFC 4443 2.4 e); checked before taking a token.
        let later_v4 = !ip.v6 && matches!(ip.frag, Some(Frag::Later));
        let error = matches!(ip.l4, L4::IcmpError(_));
        if error || later_v4 || !reply::one_host(&ip.src, ip.v6) || !self.ptb.admit(now) {
            self.counters.ptb_suppressed += 1;
            return Err(DropReason::MtuExceeded);
        }
        reply::too_big(frame, ip, from, mtu, iface.mac)?;
        // The client's packet is dropped even though the verdict is our reply.
        self.counters.drop(DropReason::MtuExceeded);
        self.counters.ptb_sent += 1;
        Ok(Verdict::Reply { port: in_port })
    }
}

/// A VIP or the receiving interface's own address.
fn ours(addr: &[u8; 16], iface: &Interface, snap: &Snapshot) -> bool {
    snap.owns(addr)
        || iface.ipv4.map(v4_mapped).as_ref() == Some(addr)
        || iface.ipv6.as_ref() == Some(addr)
}
