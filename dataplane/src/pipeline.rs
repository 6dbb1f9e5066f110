//! The per-packet function: parse -> classify -> flow table -> backend -> rewrite, or an
//! answer (ARP/ND/echo/PTB) written in place, or a counted drop. Pure: bytes, state and an
//! injected clock in, a verdict out.

use maglev::flow::{five_tuple, slot, source_ip, v4_mapped};

use crate::counters::{Counters, DropReason};
use crate::flow::{FlowConfig, FlowKey, FlowTable};
use crate::frame::Frame;
use crate::parse::{self, Arp, Embedded, Ip, Parsed, L4};
use crate::ratelimit::TokenBucket;
use crate::reply;
use crate::rewrite::{self, overhead};
use crate::snapshot::{Class, Forwarding, HashKind, Interface, Snapshot, WhenAllDown};
use crate::wire::{arp, proto, tcp};

/// Packets a burst is processed in (DPDK's usual `rx_burst` size).
pub const BURST: usize = 32;
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
    Drop(DropReason),
}

/// Settings of one worker's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    pub flows: FlowConfig,
    /// ICMP fragmentation-needed / packet-too-big messages per second per core.
    pub ptb_per_second: u32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            flows: FlowConfig::default(),
            ptb_per_second: 1000,
        }
    }
}

/// One worker core's packet state: flow table, rate limiters and counters.
pub struct Pipeline {
    flows: FlowTable,
    counters: Counters,
    new_flows: TokenBucket,
    ptb: TokenBucket,
    generation: u64,
    service_slot: Vec<usize>,
    backend_slot: Vec<usize>,
    /// Per-burst parse results, kept here so a burst does not initialise them again.
    scratch: Box<[Parsing; BURST]>,
}

type Parsing = (Result<Parsed, DropReason>, Pre);

/// A packet's flow key and hash, computed before probing so a burst can be prefetched.
#[derive(Debug, Clone, Copy, Default)]
struct Pre {
    key: FlowKey,
    hash: u32,
}

fn pre_of(p: &Parsed) -> Pre {
    match p {
        Parsed::Ip(ip) => match ip.l4 {
            L4::Ports { sport, dport, .. } if ip.frag.is_none() => {
                let key = FlowKey {
                    src: ip.src,
                    dst: ip.dst,
                    sport,
                    dport,
                    proto: ip.proto,
                };
                Pre {
                    hash: key.hash(),
                    key,
                }
            }
            _ => Pre::default(),
        },
        Parsed::Arp(_) => Pre::default(),
    }
}

impl Pipeline {
    /// Allocates the flow table (the only large allocation; do it before traffic).
    pub fn new(cfg: &PipelineConfig) -> Self {
        Self {
            flows: FlowTable::new(&cfg.flows),
            counters: Counters::default(),
            new_flows: TokenBucket::per_second(cfg.flows.max_new_flows_per_second),
            ptb: TokenBucket::per_second(cfg.ptb_per_second),
            generation: 0,
            service_slot: Vec::new(),
            backend_slot: Vec::new(),
            scratch: Box::new([(Err(DropReason::Truncated), Pre::default()); BURST]),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Live flow entries on this core (`sluice_flows{core}`).
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Live flow entries per backend id.
    pub fn flows_per_backend(&self) -> &hashbrown::HashMap<u32, u64> {
        self.flows.flows_per_backend()
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
        let parsed = parse::parse(frame.data());
        let pre = parsed.as_ref().map(pre_of).unwrap_or_default();
        let v = self.one(frame, parsed, pre, in_port, snap, now);
        // BURST is a power of two: sweep once every BURST packets.
        if self.counters.rx_packets & (BURST as u64 - 1) == 0 {
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
        for (fs, vs) in frames[..n]
            .chunks_mut(BURST)
            .zip(verdicts[..n].chunks_mut(BURST))
        {
            for (i, f) in fs.iter().enumerate() {
                let parsed = parse::parse(f.data());
                let pre = parsed.as_ref().map(pre_of).unwrap_or_default();
                self.flows.prefetch(pre.hash);
                self.scratch[i] = (parsed, pre);
            }
            for (i, (f, v)) in fs.iter_mut().zip(vs.iter_mut()).enumerate() {
                let (parsed, pre) = self.scratch[i];
                *v = self.one(f, parsed, pre, in_port, snap, now);
            }
            self.flows.sweep(now);
        }
        self.sync_flow_stats();
        n
    }

    fn sync_flow_stats(&mut self) {
        let s = self.flows.stats;
        self.counters.flows_created = s.created;
        self.counters.flows_evicted_timeout = s.evicted_timeout;
        self.counters.flows_evicted_capacity = s.evicted_capacity;
    }

    /// Maps a new snapshot's services and backends to counter slots (allocates only when
    /// the snapshot changes, i.e. on reload).
    fn adopt(&mut self, snap: &Snapshot) {
        if snap.generation() == self.generation {
            return;
        }
        self.generation = snap.generation();
        self.service_slot = snap
            .service_ids()
            .map(|id| self.counters.service_slot_for(id))
            .collect();
        self.backend_slot = snap
            .backend_ids()
            .map(|id| self.counters.backend_slot_for(id))
            .collect();
    }

    fn one(
        &mut self,
        frame: &mut Frame<'_>,
        parsed: Result<Parsed, DropReason>,
        pre: Pre,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Verdict {
        self.counters.rx_packets += 1;
        let v = match parsed {
            Ok(p) => self.decide(frame, p, pre, in_port, snap, now),
            Err(r) => Verdict::Drop(r),
        };
        match v {
            Verdict::Drop(r) => self.counters.drop(r),
            Verdict::Forward { .. } => self.counters.forwarded += 1,
            Verdict::ToControl => self.counters.to_control += 1,
            Verdict::Reply { .. } => {}
        }
        v
    }

    fn decide(
        &mut self,
        frame: &mut Frame<'_>,
        p: Parsed,
        pre: Pre,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Verdict {
        let Some(iface) = snap.interface(in_port) else {
            return Verdict::Drop(DropReason::UnknownPort);
        };
        let ip = match p {
            Parsed::Arp(a) => return self.arp(frame, &a, iface, snap),
            Parsed::Ip(ip) => ip,
        };
        if ip.ttl == 0 {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let r = match ip.l4 {
            L4::Ports { dport, flags, .. } if ip.frag.is_none() => {
                self.transport(frame, &ip, dport, flags, pre, in_port, snap, now)
            }
            L4::Ports { .. } | L4::NoPorts => self.fragment(frame, &ip, in_port, snap, now),
            L4::EchoRequest => {
                if ours(&ip.dst, iface, snap) {
                    reply::echo_reply(frame, &ip, iface.mac).map(|()| {
                        self.counters.replies += 1;
                        Verdict::Reply { port: in_port }
                    })
                } else {
                    Err(DropReason::NotVip)
                }
            }
            L4::IcmpError(e) => self.icmp_error(frame, &ip, &e, in_port, snap, now),
            L4::NeighborSolicit { target, source_mac } => {
                let own = iface.ipv6 == Some(target) || snap.is_vip(&target);
                if own && ip.ttl == 255 {
                    reply::neighbor_advert(frame, &ip, target, source_mac, iface.mac).map(|()| {
                        self.counters.replies += 1;
                        Verdict::Reply { port: in_port }
                    })
                } else {
                    Err(DropReason::NdNotOurs)
                }
            }
            L4::NeighborAdvert => Ok(Verdict::ToControl),
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
        r.unwrap_or_else(Verdict::Drop)
    }

    fn arp(
        &mut self,
        frame: &mut Frame<'_>,
        a: &Arp,
        iface: &Interface,
        snap: &Snapshot,
    ) -> Verdict {
        match a.op {
            arp::OP_REQUEST
                if iface.ipv4 == Some(a.target_ip) || snap.is_vip(&v4_mapped(a.target_ip)) =>
            {
                match reply::arp_reply(frame, a, iface.mac) {
                    Ok(()) => {
                        self.counters.replies += 1;
                        Verdict::Reply { port: iface.port }
                    }
                    Err(r) => Verdict::Drop(r),
                }
            }
            arp::OP_REPLY => Verdict::ToControl,
            _ => Verdict::Drop(DropReason::ArpNotOurs),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn transport(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        dport: u16,
        flags: u8,
        pre: Pre,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        let s = match snap.classify(&ip.dst, dport, ip.proto) {
            Class::Service(s) => s,
            Class::VipOnly => return Err(DropReason::NoService),
            Class::NotVip => return Err(DropReason::NotVip),
        };
        let is_tcp = ip.proto == proto::TCP;
        let syn = is_tcp && flags & tcp::SYN != 0 && flags & tcp::ACK == 0;
        let rst = is_tcp && flags & tcp::RST != 0;
        // A SYN starts a new connection: never follow a stale entry of an old one (Katran).
        if !syn {
            if let Some(slot) = self.flows.find(&pre.key, pre.hash, now) {
                let b = match self.usable(snap, s, self.flows.backend(slot)) {
                    Some(b) => b,
                    None => {
                        let b = self.maglev(snap, s, ip, pre.hash)?;
                        self.flows.set_backend(slot, snap.backends[b as usize].id);
                        self.counters.flows_rehashed += 1;
                        b
                    }
                };
                self.flows.touch(slot, now, flags);
                return self.forward(frame, ip, snap, s, b, pre.hash, in_port, now);
            }
        }
        let b = self.maglev(snap, s, ip, pre.hash)?;
        // A RST ends a flow: remembering it would only waste an entry.
        if !rst {
            if self.new_flows.admit(now) {
                let id = snap.backends[b as usize].id;
                self.flows.insert(&pre.key, pre.hash, id, flags, now);
            } else {
                self.counters.flows_stateless += 1;
            }
        }
        self.forward(frame, ip, snap, s, b, pre.hash, in_port, now)
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
            None if !snap.is_vip(&ip.dst) => return Err(DropReason::NotVip),
            None if ip.proto == proto::TCP || ip.proto == proto::UDP => {
                return Err(DropReason::NoService)
            }
            None => return Err(DropReason::UnsupportedProtocol),
        };
        let hash = five_tuple(&ip.src, &ip.dst, 0, 0, ip.proto);
        let b = self.maglev(snap, s, ip, hash)?;
        self.forward(frame, ip, snap, s, b, hash, in_port, now)
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
            return Err(DropReason::NotVip);
        }
        if e.vip != ip.dst {
            return Err(DropReason::IcmpUnsupported);
        }
        let s = match snap.classify(&e.vip, e.vip_port, e.proto) {
            Class::Service(s) => s,
            _ => return Err(DropReason::NoService),
        };
        let key = FlowKey {
            src: e.client,
            dst: e.vip,
            sport: e.client_port,
            dport: e.vip_port,
            proto: e.proto,
        };
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
        self.forward(frame, ip, snap, s, b, hash, in_port, now)
    }

    /// The backend a flow entry names, if it is still in this snapshot, in this service and up.
    fn usable(&self, snap: &Snapshot, s: u32, id: u32) -> Option<u32> {
        let b = snap.backend_by_id(id)?;
        let be = snap.backends.get(b as usize)?;
        (be.service == s && be.up).then_some(b)
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

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        snap: &Snapshot,
        s: u32,
        b: u32,
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
        let outer_v4 = if svc.forwarding == Forwarding::L2Dsr {
            !ip.v6
        } else {
            be.v4
        };
        let oh = overhead(svc.forwarding, outer_v4);
        if ip.ip_len + oh > usize::from(iface.mtu) {
            return self.too_big(
                frame,
                ip,
                iface.mtu.saturating_sub(oh as u16),
                in_port,
                snap,
                now,
            );
        }
        rewrite::encapsulate(frame, ip, svc.forwarding, iface, be, mac, flow_hash)?;
        let ss = self.service_slot[s as usize];
        self.counters.service[ss].packets += 1;
        self.counters.service[ss].bytes += ip.ip_len as u64;
        let bs = self.backend_slot[b as usize];
        self.counters.backend[bs] += 1;
        Ok(Verdict::Forward { port: iface.port })
    }

    /// The packet is dropped; the client learns the usable MTU (rate-limited). IPv4 without
    /// DF gets the message too: Linux lowers its path MTU and fragments locally.
    fn too_big(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        mtu: u16,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        let Some(iface) = snap.interface(in_port) else {
            return Err(DropReason::UnknownPort);
        };
        // Never answer an ICMP error with an ICMP error (RFC 1122 3.2.2, RFC 4443 2.4).
        if matches!(ip.l4, L4::IcmpError(_)) || !self.ptb.admit(now) {
            self.counters.ptb_suppressed += 1;
            return Err(DropReason::MtuExceeded);
        }
        reply::too_big(frame, ip, mtu, iface.mac)?;
        // The client's packet is dropped even though the verdict is our reply.
        self.counters.drop(DropReason::MtuExceeded);
        self.counters.ptb_sent += 1;
        Ok(Verdict::Reply { port: in_port })
    }
}

/// A VIP or the receiving interface's own address.
fn ours(addr: &[u8; 16], iface: &Interface, snap: &Snapshot) -> bool {
    snap.is_vip(addr)
        || iface.ipv4.map(v4_mapped).as_ref() == Some(addr)
        || iface.ipv6.as_ref() == Some(addr)
}
