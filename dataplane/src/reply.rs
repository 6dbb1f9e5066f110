//! Packets the appliance answers itself, written in place and sent back out of the port
//! they came in on: ARP replies, neighbour advertisements, echo replies and ICMP
//! fragmentation-needed / packet-too-big.

use maglev::flow::v4_unmapped;

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
        let mut m = IcmpPacket::new_unchecked(&mut p[ip.l4_off..]);
        m.set_msg_type(icmp::v6::ECHO_REPLY);
        m.fill_checksum_v6(&ip.dst, &ip.src);
    } else {
        let mut h = Ipv4Packet::new_unchecked(&mut p[..]);
        h.set_src(v4_unmapped(&ip.dst));
        h.set_dst(v4_unmapped(&ip.src));
        h.set_ttl(REPLY_TTL);
        h.fill_checksum();
        let mut m = IcmpPacket::new_unchecked(&mut p[ip.l4_off..]);
        m.set_msg_type(icmp::v4::ECHO_REPLY);
        m.fill_checksum_v4();
    }
    Ok(())
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

/// Turns the packet into an ICMPv4 fragmentation-needed or ICMPv6 packet-too-big from the
/// VIP to the client announcing `mtu`, quoting the start of the original packet.
pub(crate) fn too_big(
    frame: &mut Frame<'_>,
    ip: &Ip,
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
            ip.dst,
            ip.src,
            REPLY_TTL,
            icmp::v6::PACKET_TOO_BIG,
            0,
            u32::from(mtu),
        )?;
    } else {
        icmp::emit_error_v4(
            p,
            v4_unmapped(&ip.dst),
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
