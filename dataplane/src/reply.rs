//! Packets the appliance answers itself, written in place and sent back out of the port
//! they came in on: ARP replies, neighbour advertisements, echo replies and ICMP
//! fragmentation-needed / packet-too-big.

use crate::checksum;
use crate::frame::Frame;
use crate::parse::{Arp, Ip};
use crate::pipeline_counters::DropReason;
use crate::wire::arp::{self, ArpPacket};
use crate::wire::ethernet::EthernetFrame;
use crate::wire::icmp::{self, CHECKSUM_OFFSET};
use crate::wire::{ipv4, ipv6, proto, put32};

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

fn set_checksum(b: &mut [u8], at: usize, c: u16) {
    b[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// The ICMPv6 checksum over `msg` (its checksum field zeroed first).
fn icmp6_checksum(src: &[u8; 16], dst: &[u8; 16], msg: &mut [u8]) -> u16 {
    set_checksum(msg, CHECKSUM_OFFSET, 0);
    let sum = checksum::pseudo_v6(src, dst, proto::ICMPV6, msg.len() as u32);
    checksum::finish(checksum::add(sum, msg))
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
        p[8..24].copy_from_slice(&ip.dst);
        p[24..40].copy_from_slice(&ip.src);
        p[7] = REPLY_TTL;
        let m = &mut p[ip.l4_off..];
        m[0] = icmp::v6::ECHO_REPLY;
        let c = icmp6_checksum(&ip.dst, &ip.src, m);
        set_checksum(m, CHECKSUM_OFFSET, c);
    } else {
        let hl = ip.l4_off;
        p[12..16].copy_from_slice(&ip.dst[12..]);
        p[16..20].copy_from_slice(&ip.src[12..]);
        p[8] = REPLY_TTL;
        set_checksum(p, 10, 0);
        let c = checksum::of(&p[..hl]);
        set_checksum(p, 10, c);
        let m = &mut p[hl..];
        m[0] = icmp::v4::ECHO_REPLY;
        set_checksum(m, CHECKSUM_OFFSET, 0);
        let c = checksum::of(m);
        set_checksum(m, CHECKSUM_OFFSET, c);
    }
    Ok(())
}

const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const ND_FLAG_SOLICITED: u32 = 0x4000_0000;
const ND_FLAG_OVERRIDE: u32 = 0x2000_0000;
const NA_LEN: usize = icmp::v6::ND_LEN + 8;

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
        .set_len(ip.l2_len + ipv6::HEADER_LEN + NA_LEN)
        .map_err(|_| DropReason::NoRoom)?;
    let d = frame.data_mut();
    let dad = ip.src == [0; 16];
    let (dst, dst_mac, flags) = if dad {
        (ALL_NODES, [0x33, 0x33, 0, 0, 0, 1], ND_FLAG_OVERRIDE)
    } else {
        let mac = source_mac.unwrap_or_else(|| EthernetFrame::new_unchecked(&d[..]).src());
        (ip.src, mac, ND_FLAG_SOLICITED | ND_FLAG_OVERRIDE)
    };
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(dst_mac);
    eth.set_src(our_mac);
    let p = &mut d[ip.l2_len..];
    ipv6::emit_header(p, 0, 0, NA_LEN as u16, proto::ICMPV6, 255, target, dst);
    let m = &mut p[ipv6::HEADER_LEN..];
    m[0] = icmp::v6::NEIGHBOR_ADVERT;
    m[1] = 0;
    put32(m, 4, flags);
    m[8..24].copy_from_slice(&target);
    m[24] = icmp::v6::OPT_TARGET_LL;
    m[25] = 1;
    m[26..32].copy_from_slice(&our_mac);
    let c = icmp6_checksum(&target, &dst, m);
    set_checksum(m, CHECKSUM_OFFSET, c);
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
        ipv6::emit_header(
            p,
            0,
            0,
            (total - hdr) as u16,
            proto::ICMPV6,
            REPLY_TTL,
            ip.dst,
            ip.src,
        );
        let m = &mut p[hdr..];
        m[0] = icmp::v6::PACKET_TOO_BIG;
        m[1] = 0;
        put32(m, 4, u32::from(mtu));
        let c = icmp6_checksum(&ip.dst, &ip.src, m);
        set_checksum(m, CHECKSUM_OFFSET, c);
    } else {
        let mut src = [0u8; 4];
        let mut dst = [0u8; 4];
        src.copy_from_slice(&ip.dst[12..]);
        dst.copy_from_slice(&ip.src[12..]);
        ipv4::emit_header(p, 0, total as u16, REPLY_TTL, proto::ICMP, src, dst, false);
        let m = &mut p[hdr..];
        m[0] = icmp::v4::DEST_UNREACH;
        m[1] = icmp::v4::FRAG_NEEDED;
        put32(m, 4, u32::from(mtu));
        set_checksum(m, CHECKSUM_OFFSET, 0);
        let c = checksum::of(m);
        set_checksum(m, CHECKSUM_OFFSET, c);
    }
    frame
        .set_len(ip.l2_len + total)
        .map_err(|_| DropReason::NoRoom)?;
    Ok(())
}
