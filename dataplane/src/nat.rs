//! nat/fullnat packet rewriting in place: addresses, ports and TTL, with incremental
//! checksum updates (RFC 1624); ICMP errors get their quoted header translated too.

use maglev::flow::v4_unmapped;

use crate::checksum;
use crate::parse::{Embedded, Ip};
use crate::stats::DropReason;
use crate::wire::icmp::{self, IcmpPacket};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::proto;
use crate::wire::tcp::{self, TcpPacket};
use crate::wire::udp::{self, UdpPacket};

/// A packet's addresses (IPv4-mapped for IPv4) and ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tuple {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
}

/// The bytes of `a` as its family's header carries them.
fn wire_addr(a: &[u8; 16], is_v6: bool) -> &[u8] {
    if is_v6 {
        &a[..]
    } else {
        &a[12..]
    }
}

/// Rewrites the IP header at the start of `p` to `src` and `dst` and decrements its TTL.
#[inline(always)]
fn translate_ip(p: &mut [u8], is_v6: bool, src: &[u8; 16], dst: &[u8; 16]) {
    if is_v6 {
        let mut h = Ipv6Packet::new_unchecked(p);
        let hop = h.hop_limit().wrapping_sub(1);
        h.set_hop_limit(hop);
        h.set_src(*src);
        h.set_dst(*dst);
    } else {
        Ipv4Packet::new_unchecked(p).translate(v4_unmapped(src), v4_unmapped(dst));
    }
}

/// The transport checksum `c` after the pseudo-header addresses and the ports changed.
fn adjust_l4(c: u16, is_v6: bool, from: &Tuple, to: &Tuple) -> u16 {
    let c = checksum::adjust(c, wire_addr(&from.src, is_v6), wire_addr(&to.src, is_v6));
    let c = checksum::adjust(c, wire_addr(&from.dst, is_v6), wire_addr(&to.dst, is_v6));
    let ports = |t: &Tuple| {
        let (s, d) = (t.sport.to_be_bytes(), t.dport.to_be_bytes());
        [s[0], s[1], d[0], d[1]]
    };
    checksum::adjust(c, &ports(from), &ports(to))
}

/// Rewrites a TCP or UDP packet (`p` from the IP header to the datagram's end) from `from`
/// to `to`, a router's hop included. An IPv4 UDP checksum of 0 (none) stays 0.
pub(crate) fn translate(p: &mut [u8], ip: &Ip, from: &Tuple, to: &Tuple) -> Result<(), DropReason> {
    let l4 = p
        .get_mut(ip.l4_off..ip.ip_len)
        .ok_or(DropReason::Truncated)?;
    match ip.proto {
        proto::TCP => {
            let mut t = TcpPacket::new_checked(l4)?;
            let c = adjust_l4(t.checksum(), ip.v6, from, to);
            t.set_src_port(to.sport);
            t.set_dst_port(to.dport);
            t.set_checksum(c);
        }
        proto::UDP => {
            let mut u = UdpPacket::new_checked(l4)?;
            let old = u.checksum();
            u.set_src_port(to.sport);
            u.set_dst_port(to.dport);
            if old != 0 || ip.v6 {
                let c = adjust_l4(old, ip.v6, from, to);
                // 0 means "no checksum" in UDP: a computed 0 is sent as its other form.
                u.set_checksum(if c == 0 { 0xffff } else { c });
            }
        }
        _ => return Err(DropReason::UnsupportedProtocol),
    }
    translate_ip(p, ip.v6, &to.src, &to.dst);
    Ok(())
}

/// Rewrites an ICMP error (`p` from the outer IP header): the outer header to `src`/`dst`
/// (a router's hop), the quoted packet from `e`'s view to `quoted` (its IP checksum and,
/// when quoted, its transport checksum fixed), then the ICMP checksum summed again.
pub(crate) fn translate_icmp_error(
    p: &mut [u8],
    ip: &Ip,
    e: &Embedded,
    src: &[u8; 16],
    dst: &[u8; 16],
    quoted: &Tuple,
) -> Result<(), DropReason> {
    let msg = p
        .get_mut(ip.l4_off..ip.ip_len)
        .ok_or(DropReason::Truncated)?;
    // The checksum is summed again below: verify it first, or a corrupted error would leave
    // with a valid one (RFC 5508 REQ-3 a: drop it). ICMPv6's covers the pseudo-header.
    let sum = if ip.v6 {
        checksum::pseudo_v6(&ip.src, &ip.dst, proto::ICMPV6, msg.len() as u32)
    } else {
        0
    };
    if checksum::finish(checksum::add(sum, msg)) != 0 {
        return Err(DropReason::BadChecksum);
    }
    let body = msg
        .get_mut(icmp::HEADER_LEN..)
        .ok_or(DropReason::Truncated)?;
    // The quote went from e.vip to e.client (see `Embedded`).
    let from = Tuple {
        src: e.vip,
        dst: e.client,
        sport: e.vip_port,
        dport: e.client_port,
    };
    let hl = usize::from(e.hl);
    if body.len() < hl + 4 {
        return Err(DropReason::Truncated);
    }
    let (inner, l4) = body.split_at_mut(hl);
    if ip.v6 {
        let mut h = Ipv6Packet::new_unchecked(inner);
        h.set_src(quoted.src);
        h.set_dst(quoted.dst);
    } else {
        let mut h = Ipv4Packet::new_unchecked(inner);
        h.set_src(v4_unmapped(&quoted.src));
        h.set_dst(v4_unmapped(&quoted.dst));
        h.fill_checksum();
    }
    // The quote may end anywhere past the ports: its checksum is fixed only if it is there.
    match e.proto {
        proto::TCP if l4.len() >= tcp::CHECKSUM_END => {
            let mut t = TcpPacket::new_unchecked(&mut *l4);
            let c = adjust_l4(t.checksum(), ip.v6, &from, quoted);
            t.set_checksum(c);
        }
        proto::UDP if l4.len() >= udp::HEADER_LEN => {
            let mut u = UdpPacket::new_unchecked(&mut *l4);
            let old = u.checksum();
            if old != 0 || ip.v6 {
                let c = adjust_l4(old, ip.v6, &from, quoted);
                u.set_checksum(if c == 0 { 0xffff } else { c });
            }
        }
        _ => {}
    }
    let mut ports = UdpPacket::new_unchecked(l4);
    ports.set_src_port(quoted.sport);
    ports.set_dst_port(quoted.dport);
    let mut m = IcmpPacket::new_unchecked(msg);
    if ip.v6 {
        m.fill_checksum_v6(src, dst);
    } else {
        m.fill_checksum_v4();
    }
    translate_ip(p, ip.v6, src, dst);
    Ok(())
}
