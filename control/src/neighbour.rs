//! Next-hop resolution (ARP for IPv4, neighbour discovery for IPv6), run by control.
//!
//! Workers never resolve anything: they hand ARP packets and neighbour advertisements to
//! control (`Verdict::ToControl`), and drop-and-count packets whose next hop is unresolved.
//! Control keeps this table, sends requests out of its own TX queue, and publishes a new
//! snapshot when a MAC is learned, changes or expires. Entries are refreshed at half their
//! lifetime, so a live neighbour never expires between two snapshots.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use dataplane::checksum;
use dataplane::parse::{self, Parsed, L4};
use dataplane::wire::arp::{self, ArpRepr};
use dataplane::wire::ethernet::EthernetFrame;
use dataplane::wire::icmp::{self, v6, IcmpPacket, NdRepr};
use dataplane::wire::{ipv6, proto};

/// How long a learned MAC is trusted without a fresh answer.
pub const REACHABLE: Duration = Duration::from_secs(60);
/// How often an unanswered request is repeated.
pub const RETRY: Duration = Duration::from_secs(1);
/// A neighbour's MAC changes at most once in this long (Linux's `locktime`): answers that flip
/// it faster (two hosts claiming one address, or someone on the link flooding) would otherwise
/// rebuild and publish the forwarding state for each one. A real move (VRRP failover) waits
/// at most this long.
pub const LOCKTIME: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    mac: Option<[u8; 6]>,
    learned_at: Option<Instant>,
    /// When `mac` last took a new value (see [`LOCKTIME`]).
    changed_at: Option<Instant>,
    last_request: Option<Instant>,
    /// A next hop the config needs now; the others are kept, unrefreshed, until they expire,
    /// so a backend a reload removes and the next one adds back is reachable at once.
    wanted: bool,
}

/// The next hops control must resolve, what it learned, and when to ask again.
#[derive(Debug, Default)]
pub struct Neighbours {
    entries: HashMap<IpAddr, Entry>,
}

impl Neighbours {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the next hops to resolve and refresh. What is known of the others is kept until it
    /// expires (not refreshed); unresolved ones no longer wanted are forgotten.
    pub fn set_wanted(&mut self, wanted: impl IntoIterator<Item = IpAddr>) {
        for e in self.entries.values_mut() {
            e.wanted = false;
        }
        for ip in wanted {
            self.entries.entry(ip).or_default().wanted = true;
        }
        self.entries.retain(|_, e| e.wanted || e.mac.is_some());
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<[u8; 6]> {
        self.entries.get(&ip).and_then(|e| e.mac)
    }

    /// Wanted next hops with no MAC yet.
    pub fn unresolved(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self
            .entries
            .iter()
            .filter(|(_, e)| e.wanted && e.mac.is_none())
            .map(|(ip, _)| *ip)
            .collect();
        v.sort();
        v
    }

    /// Next hops to send a request for now: unresolved ones every [`RETRY`], resolved ones
    /// once past half of [`REACHABLE`]. Marks them as asked.
    pub fn due_requests(&mut self, now: Instant) -> Vec<IpAddr> {
        let mut due = Vec::new();
        for (ip, e) in self.entries.iter_mut().filter(|(_, e)| e.wanted) {
            let asked_recently = e
                .last_request
                .is_some_and(|t| now.saturating_duration_since(t) < RETRY);
            let stale = match e.learned_at {
                None => true,
                Some(t) => now.saturating_duration_since(t) >= REACHABLE / 2,
            };
            if stale && !asked_recently {
                e.last_request = Some(now);
                due.push(*ip);
            }
        }
        due.sort();
        due
    }

    /// Records an answer; true when the MAC of a wanted next hop is new or changed.
    /// Answers for addresses nobody asked about are ignored (no cache poisoning by chatter);
    /// a kept entry no longer wanted takes the answer but reports no change; a different MAC
    /// within [`LOCKTIME`] of the last change is ignored.
    pub fn learn(&mut self, ip: IpAddr, mac: [u8; 6], now: Instant) -> bool {
        let Some(e) = self.entries.get_mut(&ip) else {
            return false;
        };
        if e.mac != Some(mac) {
            let locked = e
                .changed_at
                .is_some_and(|t| now.saturating_duration_since(t) < LOCKTIME);
            if e.mac.is_some() && locked {
                return false;
            }
            e.changed_at = Some(now);
        }
        let changed = e.wanted && e.mac != Some(mac);
        e.mac = Some(mac);
        e.learned_at = Some(now);
        changed
    }

    /// Forgets MACs not confirmed within [`REACHABLE`]; true when a wanted one was forgotten
    /// (a kept, unwanted one goes silently: no snapshot uses it).
    pub fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for e in self.entries.values_mut() {
            if e.learned_at
                .is_some_and(|t| now.saturating_duration_since(t) >= REACHABLE)
            {
                e.mac = None;
                e.learned_at = None;
                changed |= e.wanted;
            }
        }
        self.entries.retain(|_, e| e.wanted || e.mac.is_some());
        changed
    }

    /// (next hop, MAC or None) for every wanted next hop, sorted by address.
    pub fn entries(&self) -> Vec<(IpAddr, Option<[u8; 6]>)> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| e.wanted)
            .map(|(ip, e)| (*ip, e.mac))
            .collect();
        v.sort();
        v
    }
}

/// What an ARP packet or neighbour advertisement tells about a neighbour: (address, MAC).
/// Only a unicast, non-zero MAC is believed (RFC 1812 3.3.2): traffic sent to a broadcast or
/// multicast MAC would flood the link, to the zero MAC vanish.
pub fn learned_from(frame: &[u8]) -> Option<(IpAddr, [u8; 6])> {
    learned(frame).filter(|(_, mac)| mac[0] & 1 == 0 && *mac != [0; 6])
}

fn learned(frame: &[u8]) -> Option<(IpAddr, [u8; 6])> {
    match parse::parse(frame).ok()? {
        Parsed::Arp(arp) => {
            let ip = Ipv4Addr::from(arp.sender_ip);
            (!ip.is_unspecified()).then_some((IpAddr::V4(ip), arp.sender_mac))
        }
        Parsed::Ip(ip) if ip.v6 && ip.proto == proto::ICMPV6 => {
            // Hop limit 255 (RFC 4861 7.1.2) is the pipeline's to check, which hands control
            // no other; the checksum it does not check (no L4 checksum on the fast path).
            if !matches!(ip.l4, L4::NeighborAdvert) {
                return None;
            }
            let icmp = frame.get(ip.l2_len + ip.l4_off..ip.l2_len + ip.ip_len)?;
            let pseudo = checksum::pseudo_v6(&ip.src, &ip.dst, proto::ICMPV6, icmp.len() as u32);
            if checksum::finish(checksum::add(pseudo, icmp)) != 0 {
                return None;
            }
            let view = IcmpPacket::new_checked(icmp).ok()?;
            let target = view.nd_target().ok()?;
            // Without a target link-layer option the advertisement came from the target itself.
            let mac = match view.nd_link_layer_option(v6::OPT_TARGET_LL).ok()? {
                Some(mac) => mac,
                None => EthernetFrame::new_checked(frame).ok()?.src(),
            };
            Some((IpAddr::V6(Ipv6Addr::from(target)), mac))
        }
        Parsed::Ip(_) => None,
    }
}

/// The shortest Ethernet frame (without FCS); a shorter one is padded with zeros.
const ETHERNET_MIN_FRAME: usize = 60;

/// An ARP request (broadcast) for `target`, padded to the 60-byte Ethernet minimum.
pub fn arp_request(src_mac: [u8; 6], src_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = [0u8; arp::FRAME_LEN];
    ArpRepr::request(src_mac, src_ip.octets(), target.octets()).emit_frame(&mut f);
    let mut v = f.to_vec();
    v.resize(ETHERNET_MIN_FRAME, 0);
    v
}

/// A neighbour solicitation for `target`, to its solicited-node multicast group.
pub fn neighbour_solicit(src_mac: [u8; 6], src_ip: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let ns = NdRepr::solicit(src_mac, src_ip.octets(), target.octets());
    let mut f = [0u8; icmp::ND_FRAME_LEN];
    ns.emit_frame(&mut f, ipv6::multicast_mac(&ns.dst));
    f.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::wire::ethernet;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
    const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];

    /// An advertisement teaches only with a checksum that verifies (its hop limit, RFC 4861
    /// 7.1.2, the pipeline checks: golden case "hop limit 64").
    #[test]
    fn an_advertisement_teaches_only_checksummed() {
        let peer: Ipv6Addr = "2001:db8::11".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let mut na = [0u8; icmp::ND_FRAME_LEN];
        NdRepr::advert(PEER, peer.octets(), dst.octets(), 0x6000_0000).emit_frame(&mut na, MAC);
        assert_eq!(learned_from(&na), Some((IpAddr::V6(peer), PEER)));
        let mut corrupt = na;
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0x01;
        assert_eq!(learned_from(&corrupt), None, "bad checksum");
    }

    #[test]
    fn arp_request_is_well_formed_and_a_reply_teaches_the_mac() {
        let req = arp_request(
            MAC,
            Ipv4Addr::new(192, 0, 2, 10),
            Ipv4Addr::new(192, 0, 2, 11),
        );
        assert_eq!(req.len(), 60);
        match parse::parse(&req) {
            Ok(Parsed::Arp(a)) => {
                assert_eq!(a.op, 1);
                assert_eq!(a.target_ip, [192, 0, 2, 11]);
            }
            other => panic!("not ARP: {other:?}"),
        }
        // The peer's reply.
        let mut reply = [0u8; arp::FRAME_LEN];
        ArpRepr::reply(PEER, [192, 0, 2, 11], MAC, [192, 0, 2, 10]).emit_frame(&mut reply);
        assert_eq!(
            learned_from(&reply),
            Some((IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)), PEER))
        );
    }

    #[test]
    fn solicitation_checksum_verifies() {
        let src: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let target: Ipv6Addr = "2001:db8::11".parse().unwrap();
        let ns = neighbour_solicit(MAC, src, target);
        assert_eq!(ns.len(), icmp::ND_FRAME_LEN);
        let ip = &ns[ethernet::HEADER_LEN..];
        let msg = &ip[ipv6::HEADER_LEN..];
        let dst = ipv6::Ipv6Packet::new_checked(ip).unwrap().dst();
        let sum = checksum::add(
            checksum::pseudo_v6(&src.octets(), &dst, proto::ICMPV6, msg.len() as u32),
            msg,
        );
        assert_eq!(
            checksum::finish(sum),
            0,
            "checksum over the message verifies"
        );
        assert_eq!(
            EthernetFrame::new_checked(&ns[..]).unwrap().dst(),
            [0x33, 0x33, 0xff, 0, 0, 0x11]
        );
        match parse::parse(&ns) {
            Ok(Parsed::Ip(ip)) => assert!(matches!(ip.l4, L4::NeighborSolicit { .. })),
            other => panic!("not an NS: {other:?}"),
        }
    }

    #[test]
    fn requests_retry_refresh_and_expire() {
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.11".parse().unwrap();
        let b: IpAddr = "192.0.2.12".parse().unwrap();
        let mut n = Neighbours::new();
        n.set_wanted([a, b]);
        assert_eq!(n.due_requests(t0), vec![a, b]);
        assert!(n.due_requests(t0 + RETRY / 2).is_empty(), "asked recently");
        assert_eq!(
            n.due_requests(t0 + RETRY),
            vec![a, b],
            "unanswered: retried"
        );
        assert!(n.learn(a, PEER, t0 + RETRY));
        assert!(!n.learn(a, PEER, t0 + RETRY), "same MAC again is no change");
        assert!(
            !n.learn("192.0.2.99".parse().unwrap(), PEER, t0),
            "unwanted: ignored"
        );
        assert_eq!(n.lookup(a), Some(PEER));
        let t1 = t0 + RETRY * 2;
        assert_eq!(n.due_requests(t1), vec![b], "a is fresh");
        let t2 = t0 + RETRY + REACHABLE / 2;
        assert!(n.due_requests(t2).contains(&a), "refreshed at half life");
        assert!(!n.expire(t2));
        assert!(n.expire(t0 + RETRY + REACHABLE), "unconfirmed: forgotten");
        assert_eq!(n.lookup(a), None);
        n.set_wanted([b]);
        assert_eq!(n.entries(), vec![(b, None)]);
    }

    /// Answers flipping a MAC faster than LOCKTIME change it once per LOCKTIME, not per answer.
    #[test]
    fn a_flapping_mac_changes_at_most_once_per_locktime() {
        const OTHER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.11".parse().unwrap();
        let mut n = Neighbours::new();
        n.set_wanted([a]);
        assert!(n.learn(a, PEER, t0), "first answer");
        let mut changes = 0;
        for i in 1..=100u32 {
            let mac = if i % 2 == 0 { PEER } else { OTHER };
            changes += u32::from(n.learn(a, mac, t0 + LOCKTIME * i / 50));
        }
        // 100 answers over 2 s, alternating every 20 ms: one change, at 1.02 s (the first
        // flip past LOCKTIME); the next could come only at 2.02 s.
        assert_eq!(changes, 1, "changes over 2 s of flapping");
        // The same MAC again refreshes it even while locked.
        let now = n.entries.get(&a).and_then(|e| e.learned_at).unwrap();
        let mac = n.lookup(a).unwrap();
        assert!(!n.learn(a, mac, now + LOCKTIME / 10));
        assert_eq!(
            n.entries.get(&a).and_then(|e| e.learned_at),
            Some(now + LOCKTIME / 10)
        );
        // A real move, long after the last change, is taken at once.
        let later = now + LOCKTIME * 5;
        let other = if mac == PEER { OTHER } else { PEER };
        assert!(n.learn(a, other, later));
        assert_eq!(n.lookup(a), Some(other));
    }

    #[test]
    fn a_next_hop_no_longer_wanted_keeps_its_mac_until_it_expires() {
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.11".parse().unwrap();
        let b: IpAddr = "192.0.2.12".parse().unwrap();
        let mut n = Neighbours::new();
        n.set_wanted([a, b]);
        n.learn(a, PEER, t0);
        n.set_wanted([b]);
        assert_eq!(n.lookup(a), Some(PEER), "kept across the reload");
        assert_eq!(n.entries(), vec![(b, None)], "status lists the wanted only");
        assert_eq!(n.due_requests(t0), vec![b], "not refreshed");
        assert_eq!(n.unresolved(), vec![b]);
        n.set_wanted([a, b]);
        assert_eq!(n.lookup(a), Some(PEER), "wanted again: known at once");
        n.set_wanted([b]);
        assert!(
            !n.expire(t0 + REACHABLE),
            "an unwanted expiry changes no snapshot"
        );
        assert_eq!(n.lookup(a), None);
        n.set_wanted([a]);
        assert_eq!(n.unresolved(), vec![a], "forgotten after REACHABLE");
    }
}
