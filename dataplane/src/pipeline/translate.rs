//! The nat/fullnat packet path: two flow entries per connection (forward and reverse),
//! fullnat port allocation, replies back to the client, and ICMP errors both ways.

use super::{key_of, quoted_key, Pipeline, Pre, Verdict};
use crate::flow::{
    FlowKey, FlowTable, Nat, NatKind, Probe, Slot, NO_BACKEND, NO_LOCAL, PEER_PENDING,
};
use crate::frame::Frame;
use crate::nat::{self, Tuple};
use crate::parse::{Embedded, Ip};
use crate::rewrite;
use crate::snapshot::{Forwarding, Snapshot};
use crate::stats::DropReason;
use crate::steer;
use crate::wire::ethernet::{self, EthernetFrame};
use crate::wire::{proto, tcp};

/// The lowest port fullnat allocates (below are the well-known ports).
pub const NAT_PORT_FIRST: u16 = 1024;
pub const NAT_PORT_LAST: u16 = 65535;
/// Ports a new fullnat connection tries (from one its flow hash picks) before it is refused.
pub const NAT_PORT_CANDIDATES: u32 = 32;

/// A new connection's reverse entry, to be inserted at the end of its burst: each is a
/// DRAM miss or three (buckets, entry, side record), which a burst of new connections then
/// waits out together rather than one after another.
pub(super) struct Reverse {
    key: FlowKey,
    probe: Probe,
    rec: Nat,
    flags: u8,
    /// The forward entry, which gets the reverse entry's index as its peer.
    forward: Slot,
    forward_key: FlowKey,
}

/// Where a translated packet leaves: port, its MAC, its MTU, and the next hop's MAC.
struct Out {
    port: u16,
    mac: [u8; 6],
    mtu: u16,
    next_hop: [u8; 6],
}

impl Pipeline {
    /// A client packet to a nat/fullnat service: follow its connection or make a new one.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(super) fn nat_forward(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        (sport, dport, flags): (u16, u16, u8),
        pre: &Pre,
        in_port: u16,
        snap: &Snapshot,
        s: u32,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        if let Some(v) = self.steer(|n| steer::client_owner(&ip.src, sport, n)) {
            return Ok(v);
        }
        if !self.flows.tracks_nat() {
            return Err(DropReason::NatUntracked);
        }
        if ip.ttl <= 1 {
            return Err(DropReason::TtlExceeded);
        }
        let syn = ip.proto == proto::TCP && flags & tcp::SYN != 0 && flags & tcp::ACK == 0;
        let key = key_of(ip, sport, dport);
        let client = Tuple {
            src: ip.src,
            dst: ip.dst,
            sport,
            dport,
        };
        let found = match self.flows.find_probed(&key, &pre.probe, now) {
            Some(f) if !self.reverse.is_empty() && self.opened_in_this_burst(f) => {
                self.reopen(&key, &pre.probe, now)
            }
            found => found,
        };
        if let Some(slot) = found {
            let n = self.flows.nat(slot).copied();
            let b = self.usable(snap, s, self.flows.backend(slot));
            match (n, b) {
                // A SYN starts a new connection: never follow a stale entry of an old one.
                (Some(n), Some(b)) if n.kind == NatKind::Forward && !syn => {
                    self.flows.touch_nat(slot, now, flags);
                    let to = Tuple {
                        src: n.src,
                        dst: n.dst,
                        sport: n.sport,
                        dport: n.dport,
                    };
                    return self.nat_to_backend(frame, ip, &client, &to, snap, s, b, in_port, now);
                }
                (Some(n), None) if n.kind == NatKind::Forward => self.counters.flows_rehashed += 1,
                _ => {}
            }
            // The old mapping's reverse entry goes with it (a fullnat port is freed).
            self.flows.remove_peer(slot, now);
        }
        let b = self.maglev(snap, s, ip, pre.hash)?;
        let be = &snap.backends[b as usize];
        let svc = &snap.services[s as usize];
        let bport = if be.port != 0 { be.port } else { dport };
        let baddr = be.addr;
        let (src, lport, local) = if svc.forwarding == Forwarding::FullNat {
            let locals = if ip.v6 { &svc.local6 } else { &svc.local4 };
            let pick = locals
                .get(pre.hash as usize % locals.len().max(1))
                .copied()
                .ok_or(DropReason::NoSourceAddress)?;
            let laddr = *snap
                .locals
                .get(usize::from(pick))
                .ok_or(DropReason::NoSourceAddress)?;
            let gauge = self
                .local_slot
                .get(usize::from(pick))
                .copied()
                .unwrap_or(NO_LOCAL);
            let Some(port) = self.free_port(&baddr, &laddr, bport, ip.proto, pre.hash, now) else {
                self.counters.nat_ports_exhausted += 1;
                return Err(DropReason::NatPortsExhausted);
            };
            (laddr, port, gauge)
        } else {
            (ip.src, sport, NO_LOCAL)
        };
        let to = Tuple {
            src,
            dst: baddr,
            sport: lport,
            dport: bport,
        };
        let rkey = FlowKey {
            src: baddr,
            dst: src,
            sport: bport,
            dport: lport,
            proto: ip.proto,
        };
        let mac = EthernetFrame::new_checked(frame.data())?.src();
        let h = self.handle(b);
        let f = self.flows.insert_probed(&key, &pre.probe, h, flags, now);
        self.flows.set_nat(
            f,
            Nat {
                kind: NatKind::Forward,
                src: to.src,
                dst: to.dst,
                sport: to.sport,
                dport: to.dport,
                peer: PEER_PENDING,
                ..Nat::NONE
            },
        );
        if self.reverse.len() == self.reverse.capacity() {
            // Only a caller that never ends its bursts gets here; the list stays allocation-free.
            self.insert_reverse(now);
        }
        let probe = self.flows.probe(rkey.hash());
        self.reverse.push(Reverse {
            key: rkey,
            probe,
            rec: Nat {
                kind: NatKind::Reverse,
                src: ip.dst,
                dst: ip.src,
                sport: dport,
                dport: sport,
                peer: FlowTable::index(f),
                port: in_port,
                mac,
                local,
            },
            flags,
            forward: f,
            forward_key: key,
        });
        self.nat_to_backend(frame, ip, &client, &to, snap, s, b, in_port, now)
    }

    /// Whether forward entry `f`'s reverse entry is still waiting (see [`Reverse`]).
    fn opened_in_this_burst(&self, f: Slot) -> bool {
        self.flows.nat(f).is_some_and(|n| n.peer == PEER_PENDING)
    }

    /// A packet of a connection opened earlier in this burst: its reverse entry goes in
    /// first, so the packet sees (touches, or replaces) the connection as it would a burst
    /// later; then the forward entry is looked up again (those inserts may have evicted it).
    #[cold]
    #[inline(never)]
    fn reopen(&mut self, key: &FlowKey, probe: &Probe, now: u64) -> Option<Slot> {
        self.insert_reverse(now);
        self.flows.find_probed(key, probe, now)
    }

    /// Inserts the reverse entries of the connections opened since the last call and points
    /// their forward entries at them. Runs at the end of every burst (and of every
    /// [`Pipeline::process`]), and before a packet of a connection still waiting is handled.
    #[inline]
    pub(super) fn insert_reverse(&mut self, now: u64) {
        if !self.reverse.is_empty() {
            self.insert_pending(now);
        }
    }

    #[inline(never)]
    fn insert_pending(&mut self, now: u64) {
        let mut pending = std::mem::take(&mut self.reverse);
        // The buckets were prefetched when each was queued; now the entries and side records.
        for r in pending.iter_mut() {
            self.flows.prefetch_entry(&mut r.probe, now);
        }
        for r in pending.drain(..) {
            let slot = self
                .flows
                .insert_probed(&r.key, &r.probe, NO_BACKEND, r.flags, now);
            self.flows.set_nat(slot, r.rec);
            // Unless an insert since (this one included) took the forward entry's way.
            if self.flows.holds_key(r.forward, &r.forward_key, now) {
                if let Some(n) = self.flows.nat(r.forward).copied() {
                    if n.peer == PEER_PENDING {
                        self.flows.set_nat(
                            r.forward,
                            Nat {
                                peer: FlowTable::index(slot),
                                ..n
                            },
                        );
                    }
                }
            }
        }
        self.reverse = pending;
    }

    /// Another worker's connection: its packet goes there untouched, before any flow lookup.
    #[inline(always)]
    fn steer(&self, owner: impl FnOnce(u16) -> u16) -> Option<Verdict> {
        if self.workers <= 1 {
            return None;
        }
        let worker = owner(self.workers);
        (worker != self.worker).then_some(Verdict::Redirect { worker })
    }

    /// A free fullnat port towards `backend`:`bport` from `local`: one whose reverse key no
    /// live entry holds (so a port is shared by different backends, as Linux does), and in
    /// this worker's residue class, so the reply is steered back here.
    fn free_port(
        &mut self,
        backend: &[u8; 16],
        local: &[u8; 16],
        bport: u16,
        protocol: u8,
        hash: u32,
        now: u64,
    ) -> Option<u16> {
        let (first, last) = self.nat_ports;
        let n = u32::from(self.workers);
        let (first, last) = (u32::from(first), u32::from(last));
        // The class's lowest port in the range, and how many the range holds.
        let base = first + (u32::from(self.worker) + n - first % n) % n;
        let span = if base > last {
            0
        } else {
            (last - base) / n + 1
        };
        // The bucket uses the hash's high bits; the port its low ones mixed in.
        let start = (hash ^ hash.rotate_left(16)) % span.max(1);
        (0..NAT_PORT_CANDIDATES.min(span))
            .map(|i| (base + ((start + i) % span) * n) as u16)
            .find(|&port| {
                let k = FlowKey {
                    src: *backend,
                    dst: *local,
                    sport: bport,
                    dport: port,
                    proto: protocol,
                };
                // Nor a connection opened earlier in this burst, whose entry is not in yet.
                self.flows.find(&k, k.hash(), now).is_none()
                    && !self.reverse.iter().any(|r| r.key == k)
            })
    }

    /// Translates a client packet to `to` and sends it to backend `b`.
    #[allow(clippy::too_many_arguments)]
    fn nat_to_backend(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        from: &Tuple,
        to: &Tuple,
        snap: &Snapshot,
        s: u32,
        b: u32,
        in_port: u16,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        let be = &snap.backends[b as usize];
        let iface = &snap.interfaces[be.iface as usize];
        let next_hop = be.next_hop_mac.ok_or(DropReason::UnresolvedNextHop)?;
        let out = Out {
            port: iface.port,
            mac: iface.mac,
            mtu: iface.mtu,
            next_hop,
        };
        if ip.ip_len > usize::from(out.mtu) {
            return self.too_big(frame, ip, &ip.dst, out.mtu, in_port, snap, now);
        }
        emit(frame, ip, &out, |p| nat::translate(p, ip, from, to))?;
        let ss = self.service_slot[s as usize];
        self.counters.service[ss].packets += 1;
        self.counters.service[ss].bytes += ip.ip_len as u64;
        let bs = self.backend_slot[b as usize];
        self.counters.backend[bs] += 1;
        Ok(Verdict::Forward { port: out.port })
    }

    /// A packet that may be a reply of a nat connection (backend to client or local
    /// address): translated back and sent the way the client's packets came; else not ours.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(super) fn nat_reply(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        (sport, dport, flags): (u16, u16, u8),
        pre: &Pre,
        in_port: u16,
        snap: &Snapshot,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        if let Some(v) = self.steer(|n| steer::reply_owner(snap, &ip.dst, dport, n)) {
            return Ok(v);
        }
        let key = key_of(ip, sport, dport);
        let Some((slot, n)) = self.reverse(&key, Some(pre), now) else {
            return Err(DropReason::NotVip);
        };
        if ip.ttl <= 1 {
            return Err(DropReason::TtlExceeded);
        }
        let out = client_side(snap, &n)?;
        if ip.ip_len > usize::from(out.mtu) {
            // From the VIP: nat's reply is addressed to the client (fullnat's to our own).
            let src = if snap.is_local(&ip.dst) {
                ip.dst
            } else {
                n.src
            };
            return self.too_big(frame, ip, &src, out.mtu, in_port, snap, now);
        }
        self.flows.touch_nat(slot, now, flags);
        let from = Tuple {
            src: ip.src,
            dst: ip.dst,
            sport,
            dport,
        };
        let to = Tuple {
            src: n.src,
            dst: n.dst,
            sport: n.sport,
            dport: n.dport,
        };
        emit(frame, ip, &out, |p| nat::translate(p, ip, &from, &to))?;
        self.counters.nat_replies += 1;
        Ok(Verdict::Forward { port: out.port })
    }

    /// The live reverse entry for `key`.
    fn reverse(&mut self, key: &FlowKey, pre: Option<&Pre>, now: u64) -> Option<(Slot, Nat)> {
        let slot = match pre {
            Some(pre) => self.flows.find_probed(key, &pre.probe, now),
            None => self.flows.find(key, key.hash(), now),
        }?;
        let n = self.flows.nat(slot).copied()?;
        (n.kind == NatKind::Reverse).then_some((slot, n))
    }

    /// An ICMP error to a VIP of a nat service about a reply (quoting VIP -> client): to the
    /// backend, quoting what the backend sent (from the backend to the client or local address).
    #[inline(never)]
    pub(super) fn nat_icmp_to_backend(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        e: &Embedded,
        snap: &Snapshot,
        s: u32,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        if let Some(v) = self.steer(|n| steer::client_owner(&e.client, e.client_port, n)) {
            return Ok(v);
        }
        let key = quoted_key(e);
        let slot = self
            .flows
            .find(&key, key.hash(), now)
            .ok_or(DropReason::IcmpUnsupported)?;
        let n = self
            .flows
            .nat(slot)
            .copied()
            .filter(|n| n.kind == NatKind::Forward)
            .ok_or(DropReason::IcmpUnsupported)?;
        let b = self
            .usable(snap, s, self.flows.backend(slot))
            .ok_or(DropReason::NoBackend)?;
        if ip.ttl <= 1 {
            return Err(DropReason::TtlExceeded);
        }
        let be = &snap.backends[b as usize];
        let iface = &snap.interfaces[be.iface as usize];
        let out = Out {
            port: iface.port,
            mac: iface.mac,
            mtu: iface.mtu,
            next_hop: be.next_hop_mac.ok_or(DropReason::UnresolvedNextHop)?,
        };
        // Never answer an ICMP error with one (RFC 1122 3.2.2).
        if ip.ip_len > usize::from(out.mtu) {
            return Err(DropReason::MtuExceeded);
        }
        let fullnat = snap.services[s as usize].forwarding == Forwarding::FullNat;
        let src = if fullnat { n.src } else { ip.src };
        let quoted = Tuple {
            src: n.dst,
            dst: n.src,
            sport: n.dport,
            dport: n.sport,
        };
        emit(frame, ip, &out, |p| {
            nat::translate_icmp_error(p, ip, e, &src, &n.dst, &quoted)
        })?;
        Ok(Verdict::Forward { port: out.port })
    }

    /// An ICMP error from the backend side about a packet we translated (quoting client or
    /// local address -> backend): to the client, quoting client -> VIP. A router's error
    /// keeps its source; the backend's own gets the VIP's.
    #[inline(never)]
    pub(super) fn nat_icmp_to_client(
        &mut self,
        frame: &mut Frame<'_>,
        ip: &Ip,
        e: &Embedded,
        snap: &Snapshot,
        now: u64,
    ) -> Result<Verdict, DropReason> {
        // To the host, not about a connection through a local address: the in-port's worker
        // hands it to that interface's kernel (a worker it was steered to has another's).
        if snap.is_host(&ip.dst) && !snap.is_local(&ip.dst) {
            return Err(DropReason::NotVip);
        }
        if let Some(v) = self.steer(|n| steer::reply_owner(snap, &e.vip, e.vip_port, n)) {
            return Ok(v);
        }
        // The quote went from e.vip (client or local address) to e.client (the backend).
        let key = quoted_key(e);
        let (_, n) = self.reverse(&key, None, now).ok_or(DropReason::NotVip)?;
        if ip.ttl <= 1 {
            return Err(DropReason::TtlExceeded);
        }
        let out = client_side(snap, &n)?;
        if ip.ip_len > usize::from(out.mtu) {
            return Err(DropReason::MtuExceeded);
        }
        let src = if ip.src == e.client { n.src } else { ip.src };
        let quoted = Tuple {
            src: n.dst,
            dst: n.src,
            sport: n.dport,
            dport: n.sport,
        };
        emit(frame, ip, &out, |p| {
            nat::translate_icmp_error(p, ip, e, &src, &n.dst, &quoted)
        })?;
        self.counters.nat_replies += 1;
        Ok(Verdict::Forward { port: out.port })
    }
}

/// The way back to a reverse entry's client: the port its packets came in on, to the
/// neighbour that delivered them.
fn client_side(snap: &Snapshot, n: &Nat) -> Result<Out, DropReason> {
    let iface = snap.interface(n.port).ok_or(DropReason::UnknownPort)?;
    Ok(Out {
        port: iface.port,
        mac: iface.mac,
        mtu: iface.mtu,
        next_hop: n.mac,
    })
}

/// Reframes the packet behind an untagged Ethernet header to `out` and runs `translate` on
/// the IP packet.
fn emit(
    frame: &mut Frame<'_>,
    ip: &Ip,
    out: &Out,
    translate: impl FnOnce(&mut [u8]) -> Result<(), DropReason>,
) -> Result<(), DropReason> {
    let d = rewrite::reframe(frame, ip, 0)?;
    if d.len() < ethernet::HEADER_LEN {
        return Err(DropReason::NoRoom);
    }
    let (h, p) = d.split_at_mut(ethernet::HEADER_LEN);
    let mut eth = EthernetFrame::new_unchecked(h);
    eth.set_dst(out.next_hop);
    eth.set_src(out.mac);
    eth.set_ethertype(if ip.v6 {
        ethernet::ETHERTYPE_IPV6
    } else {
        ethernet::ETHERTYPE_IPV4
    });
    translate(p)
}
