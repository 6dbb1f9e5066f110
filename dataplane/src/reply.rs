//! Packets the appliance answers itself, written in place and sent back out of the port
//! they came in on: ARP replies, neighbour advertisements, echo replies and ICMP
//! fragmentation-needed / packet-too-big.

use maglev::flow::v4_unmapped;

use crate::checksum;
use crate::frame::Frame;
use crate::parse::{Arp, Ip};
use crate::stats::DropReason;
use crate::wire::arp::{self, ArpPacket};
use crate::wire::ethernet::EthernetFrame;
use crate::wire::icmp::{self, IcmpPacket, NdRepr};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};

/// TTL / hop limit of the echo replies and ICMP errors we originate.
pub const REPLY_TTL: u8 = 64;
/// RFC 1812: an ICMPv4 error carries as much of the original as fits in 576 bytes.
pub const ICMP4_ERROR_MAX: usize = 576;
/// RFC 4443: an ICMPv6 error carries as much as fits in the minimum MTU.
pub const ICMP6_ERROR_MAX: usize = 1280;

/// The reply goes back to the sender's MAC, from ours; VLAN tags stay as they came.
fn swap_l2(d: &mut [u8], our_mac: [u8; 6]) {
    let mut eth = EthernetFrame::new_unchecked(d);
    let peer = eth.src();
    eth.set_dst(peer);
    eth.set_src(our_mac);
}

pub(crate) fn arp_reply(
    frame: &mut Frame<'_>,
    a: &Arp,
    our_mac: [u8; 6],
) -> Result<(), DropReason> {
    frame
        .set_len(a.l2_len + arp::PACKET_LEN)
        .map_err(|_| DropReason::NoRoom)?;
    let d = frame.data_mut();
    swap_l2(d, our_mac);
    ArpPacket::new_unchecked(&mut d[a.l2_len..]).make_reply(our_mac);
    Ok(())
}

pub(crate) fn echo_reply(
    frame: &mut Frame<'_>,
    ip: &Ip,
    our_mac: [u8; 6],
) -> Result<(), DropReason> {
    frame
        .set_len(ip.l2_len + ip.ip_len)
        .map_err(|_| DropReason::NoRoom)?;
    let d = frame.data_mut();
    swap_l2(d, our_mac);
    let p = &mut d[ip.l2_len..];
    if ip.v6 {
        let mut h = Ipv6Packet::new_unchecked(&mut p[..]);
        h.set_src(ip.dst);
        h.set_dst(ip.src);
        h.set_hop_limit(REPLY_TTL);
        // Only the type changes (the pseudo-header's addresses swap, its sum does not):
        // updated, not summed again, so a corrupted request's error stays (RFC 1624).
        let mut m = IcmpPacket::new_unchecked(&mut p[ip.l4_off..]);
        to_echo_reply(&mut m, icmp::v6::ECHO_REPLY);
    } else {
        let mut h = Ipv4Packet::new_unchecked(&mut p[..]);
        h.set_src(v4_unmapped(&ip.dst));
        h.set_dst(v4_unmapped(&ip.src));
        h.set_ttl(REPLY_TTL);
        h.fill_checksum();
        let mut m = IcmpPacket::new_unchecked(&mut p[ip.l4_off..]);
        to_echo_reply(&mut m, icmp::v4::ECHO_REPLY);
    }
    Ok(())
}

/// Sets the message's type to `reply`, its checksum updated incrementally (RFC 1624).
fn to_echo_reply(m: &mut IcmpPacket<&mut [u8]>, reply: u8) {
    let (t, code) = (m.msg_type(), m.code());
    let c = checksum::adjust(m.checksum_field(), &[t, code], &[reply, code]);
    m.set_msg_type(reply);
    m.set_checksum(c);
}

/// Answers a neighbour solicitation for `target` with a solicited advertisement carrying
/// our MAC (RFC 4861 section 7.2.4); an unspecified source (DAD) gets it on all-nodes.
pub(crate) fn neighbor_advert(
    frame: &mut Frame<'_>,
    ip: &Ip,
    target: [u8; 16],
    source_mac: Option<[u8; 6]>,
    our_mac: [u8; 6],
) -> Result<(), DropReason> {
    frame
        .set_len(ip.l2_len + icmp::ND_PACKET_LEN)
        .map_err(|_| DropReason::NoRoom)?;
    let d = frame.data_mut();
    let dad = ip.src == [0; 16];
    let (dst, dst_mac, flags) = if dad {
        let all = ipv6::ALL_NODES;
        (all, ipv6::multicast_mac(&all), icmp::v6::ND_FLAG_OVERRIDE)
    } else {
        let mac = source_mac.unwrap_or_else(|| EthernetFrame::new_unchecked(&d[..]).src());
        let flags = icmp::v6::ND_FLAG_SOLICITED | icmp::v6::ND_FLAG_OVERRIDE;
        (ip.src, mac, flags)
    };
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(dst_mac);
    eth.set_src(our_mac);
    NdRepr::advert(our_mac, target, dst, flags).emit(&mut d[ip.l2_len..])?;
    Ok(())
}

/// Turns the packet into an ICMPv4 fragmentation-needed or ICMPv6 packet-too-big to its
/// source announcing `mtu`, quoting the start of the original packet. `from` is one of the
/// appliance's addresses: the VIP, or for a nat reply (addressed to the client, whose
/// address the message must not carry: RFC 1812 4.3.2.4, RFC 4443 2.2) the VIP or local
/// address the connection uses.
pub(crate) fn too_big(
    frame: &mut Frame<'_>,
    ip: &Ip,
    from: &[u8; 16],
    mtu: u16,
    our_mac: [u8; 6],
) -> Result<(), DropReason> {
    let (hdr, max) = if ip.v6 {
        (ipv6::HEADER_LEN, ICMP6_ERROR_MAX)
    } else {
        (ipv4::MIN_HEADER_LEN, ICMP4_ERROR_MAX)
    };
    let add = hdr + icmp::HEADER_LEN;
    let quoted = ip.ip_len.min(max - add);
    frame.prepend(add).map_err(|_| DropReason::NoRoom)?;
    let d = frame.data_mut();
    d.copy_within(add..add + ip.l2_len, 0);
    swap_l2(d, our_mac);
    let total = add + quoted;
    let p = &mut d[ip.l2_len..ip.l2_len + total];
    if ip.v6 {
        icmp::emit_error_v6(
            p,
            *from,
            ip.src,
            REPLY_TTL,
            icmp::v6::PACKET_TOO_BIG,
            0,
            u32::from(mtu),
        )?;
    } else {
        icmp::emit_error_v4(
            p,
            v4_unmapped(from),
            v4_unmapped(&ip.src),
            REPLY_TTL,
            icmp::v4::DEST_UNREACH,
            icmp::v4::FRAG_NEEDED,
            u32::from(mtu),
        )?;
    }
    frame
        .set_len(ip.l2_len + total)
        .map_err(|_| DropReason::NoRoom)?;
    Ok(())
}

/// Whether `a` names one host: not unspecified, loopback, multicast or (IPv4) broadcast or
/// class E.
pub(crate) fn one_host(a: &[u8; 16], v6: bool) -> bool {
    if v6 {
        let mut lo = [0u8; 16];
        lo[15] = 1;
        *a != [0; 16] && *a != lo && a[0] != 0xff
    } else {
        let first = a[12];
        first != 0 && first != 127 && first < 224
    }
}
