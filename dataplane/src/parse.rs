//! From frame bytes to what the pipeline decides on: addresses, ports, flags and offsets.
//! Every failure is a [`DropReason`]; nothing here panics or allocates.

use maglev::flow::{is_v4_mapped, v4_mapped};

use crate::checksum;
use crate::stats::DropReason;
use crate::wire::arp::ArpPacket;
use crate::wire::ethernet::{self, parse_l2};
use crate::wire::icmp::{self, IcmpPacket};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::tcp::{self, TcpPacket};
use crate::wire::udp::{self, UdpPacket};
use crate::wire::{be16, proto, WireError};

/// An ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub l2_len: usize,
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: [u8; 4],
    pub target_ip: [u8; 4],
}

/// Where a fragment sits in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frag {
    First,
    /// Middle or last: no transport header.
    Later,
}

/// The flow a packet embedded in an ICMP error belongs to, already reversed into the
/// client-to-VIP direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    pub client: [u8; 16],
    pub vip: [u8; 16],
    pub client_port: u16,
    pub vip_port: u16,
    pub proto: u8,
    /// Length of the quoted IP header: where the quoted ports start.
    pub hl: u8,
}

/// What the transport part of an IP packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP or UDP with its ports (not fragmented, or a first fragment).
    Ports {
        sport: u16,
        dport: u16,
        flags: u8,
    },
    /// A non-first fragment, or any fragment of another protocol.
    NoPorts,
    EchoRequest,
    /// An ICMP error (destination unreachable, time exceeded, packet too big).
    IcmpError(Embedded),
    NeighborSolicit {
        target: [u8; 16],
        source_mac: Option<[u8; 6]>,
    },
    NeighborAdvert,
    /// Other ICMP types, or ICMP we only answer without extension headers.
    IcmpOther,
    /// Any other protocol.
    Other,
}

/// An IPv4 or IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip {
    pub v6: bool,
    pub l2_len: usize,
    /// The datagram's length (header included), Ethernet padding excluded.
    pub ip_len: usize,
    /// Offset of the transport header from the start of the IP header.
    pub l4_off: usize,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// The upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// IPv4 TOS / IPv6 traffic class (DSCP and ECN).
    pub tos: u8,
    pub ttl: u8,
    /// IPv4 DF (always true for IPv6: routers never fragment it).
    pub df: bool,
    pub frag: Option<Frag>,
    pub l4: L4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Arp(Arp),
    Ip(Ip),
}

/// Parses one frame: the common case (untagged Ethernet, IPv4 without options, unfragmented
/// TCP or UDP) on a fast path, anything else by [`parse_general`], which gives the same answer.
#[inline(always)]
pub fn parse(frame: &[u8]) -> Result<Parsed, DropReason> {
    parse_trusting(frame, false)
}

/// [`parse`], trusting the NIC's word that the IPv4 header checksum is good
/// (`ipv4_checksum_good`, from the rx offload flags) on the fast path instead of summing the
/// header again. Any other frame is checked in software as by [`parse`].
#[inline(always)]
pub fn parse_trusting(frame: &[u8], ipv4_checksum_good: bool) -> Result<Parsed, DropReason> {
    match fast_shape(frame, ipv4_checksum_good) {
        // Checked first, built second: the result is written once, where the caller wants it.
        Some((h, flags)) => Ok(Parsed::Ip(fast_ip(h, flags))),
        None => parse_general(frame),
    }
}

/// [`parse_trusting`] written straight into `out` (a burst's slot), with no copy in between.
#[inline(always)]
pub fn parse_into(frame: &[u8], ipv4_checksum_good: bool, out: &mut Result<Parsed, DropReason>) {
    match fast_shape(frame, ipv4_checksum_good) {
        Some((h, flags)) => *out = Ok(Parsed::Ip(fast_ip(h, flags))),
        None => *out = parse_general(frame),
    }
}

const L3: usize = ethernet::HEADER_LEN;
const L4_AT: usize = L3 + ipv4::MIN_HEADER_LEN;
/// Bytes the fast path reads before it knows the transport protocol.
const FAST_MIN: usize = L4_AT + udp::HEADER_LEN;
const FAST_TCP: usize = L4_AT + tcp::MIN_HEADER_LEN;
// The fast path reads TCP and UDP ports at the same offsets.
const _: () = assert!(
    tcp::field::SRC_PORT == udp::field::SRC_PORT && tcp::field::DST_PORT == udp::field::DST_PORT
);

/// Untagged Ethernet + IPv4 (IHL 5, valid checksum, not a fragment) + TCP or UDP, every check
/// of the general parser done at fixed offsets after one length check (the header checksum
/// not summed when the NIC said it is good). Returns the first bytes and the TCP flags; `None`
/// means "not this shape, or not valid": the general parser then decides (and names the drop
/// reason).
#[inline(always)]
fn fast_shape(f: &[u8], ipv4_checksum_good: bool) -> Option<(&[u8; FAST_MIN], u8)> {
    let h: &[u8; FAST_MIN] = f.get(..FAST_MIN)?.try_into().ok()?;
    if be16(h, ethernet::field::ETHERTYPE) != ethernet::ETHERTYPE_IPV4
        || h[L3 + ipv4::field::VER_IHL] != ipv4::VER_IHL_NO_OPTIONS
    {
        return None;
    }
    let total = usize::from(be16(h, L3 + ipv4::field::TOTAL_LEN));
    let frag = be16(h, L3 + ipv4::field::FLAGS_FRAG);
    if total > f.len() - L3 || frag & (ipv4::FLAG_MF | ipv4::OFFSET_MASK) != 0 {
        return None;
    }
    let ih: &[u8; ipv4::MIN_HEADER_LEN] = h[L3..L4_AT].try_into().ok()?;
    if !ipv4_checksum_good && !checksum::ipv4_header20_ok(ih) {
        return None;
    }
    let l4_len = total.checked_sub(ipv4::MIN_HEADER_LEN)?;
    let flags = match ih[ipv4::field::PROTOCOL] {
        proto::TCP => {
            let t: &[u8; FAST_TCP] = f.get(..FAST_TCP)?.try_into().ok()?;
            let hl = usize::from(t[L4_AT + tcp::field::DATA_OFF] >> 4) * 4;
            if l4_len < tcp::MIN_HEADER_LEN || hl < tcp::MIN_HEADER_LEN || hl > l4_len {
                return None;
            }
            t[L4_AT + tcp::field::FLAGS]
        }
        proto::UDP => {
            let len = usize::from(be16(h, L4_AT + udp::field::LENGTH));
            if l4_len < udp::HEADER_LEN || len < udp::HEADER_LEN || len > l4_len {
                return None;
            }
            0
        }
        _ => return None,
    };
    Some((h, flags))
}

/// The [`Ip`] of a frame [`fast_shape`] accepted.
#[inline(always)]
fn fast_ip(h: &[u8; FAST_MIN], flags: u8) -> Ip {
    let ip = |i: usize| h[L3 + i];
    let addr = |at: usize| [ip(at), ip(at + 1), ip(at + 2), ip(at + 3)];
    let frag = be16(h, L3 + ipv4::field::FLAGS_FRAG);
    Ip {
        v6: false,
        l2_len: L3,
        ip_len: usize::from(be16(h, L3 + ipv4::field::TOTAL_LEN)),
        l4_off: ipv4::MIN_HEADER_LEN,
        src: v4_mapped(addr(ipv4::field::SRC)),
        dst: v4_mapped(addr(ipv4::field::DST)),
        proto: ip(ipv4::field::PROTOCOL),
        tos: ip(ipv4::field::TOS),
        ttl: ip(ipv4::field::TTL),
        df: frag & ipv4::FLAG_DF != 0,
        frag: None,
        l4: L4::Ports {
            sport: be16(h, L4_AT + tcp::field::SRC_PORT),
            dport: be16(h, L4_AT + tcp::field::DST_PORT),
            flags,
        },
    }
}

/// Parses one frame, any shape: Ethernet with up to two VLAN tags, ARP, IPv4 with options
/// and fragments, IPv6 with extension headers, every transport we look at.
#[inline(never)]
pub fn parse_general(frame: &[u8]) -> Result<Parsed, DropReason> {
    let l2 = parse_l2(frame)?;
    let rest = &frame[l2.len..];
    match l2.ethertype {
        ethernet::ETHERTYPE_ARP => {
            let a = ArpPacket::new_checked(rest)?;
            Ok(Parsed::Arp(Arp {
                l2_len: l2.len,
                op: a.operation(),
                sender_mac: a.sender_mac(),
                sender_ip: a.sender_ip(),
                target_ip: a.target_ip(),
            }))
        }
        ethernet::ETHERTYPE_IPV4 => parse_v4(rest, l2.len).map(Parsed::Ip),
        ethernet::ETHERTYPE_IPV6 => parse_v6(rest, l2.len).map(Parsed::Ip),
        _ => Err(DropReason::UnsupportedEthertype),
    }
}

fn parse_v4(b: &[u8], l2_len: usize) -> Result<Ip, DropReason> {
    let p = Ipv4Packet::new_checked(b)?;
    if !p.verify_checksum() {
        return Err(DropReason::BadChecksum);
    }
    let frag = if p.frag_offset() != 0 {
        Some(Frag::Later)
    } else if p.more_frags() {
        Some(Frag::First)
    } else {
        None
    };
    let hl = p.header_len();
    let l4 = transport(
        p.protocol(),
        &b[hl..usize::from(p.total_len())],
        frag,
        false,
    )?;
    Ok(Ip {
        v6: false,
        l2_len,
        ip_len: usize::from(p.total_len()),
        l4_off: hl,
        src: v4_mapped(p.src()),
        dst: v4_mapped(p.dst()),
        proto: p.protocol(),
        tos: p.tos(),
        ttl: p.ttl(),
        df: p.dont_frag(),
        frag,
        l4,
    })
}

fn parse_v6(b: &[u8], l2_len: usize) -> Result<Ip, DropReason> {
    let p = Ipv6Packet::new_checked(b)?;
    no_mapped_address("ipv6", &p.src(), &p.dst())?;
    let ip_len = ipv6::HEADER_LEN + usize::from(p.payload_len());
    let packet = &b[..ip_len];
    let up = ipv6::walk_extensions(packet)?;
    let frag = up.fragment.map(|f| {
        if f.offset != 0 {
            Frag::Later
        } else {
            Frag::First
        }
    });
    // A lone fragment header with offset 0 and no M flag is an atomic fragment (RFC 6946):
    // the whole datagram, treat it as unfragmented.
    let frag = match (frag, up.fragment) {
        (Some(Frag::First), Some(f)) if !f.more => None,
        (f, _) => f,
    };
    let mut l4 = transport(up.protocol, &packet[up.offset..], frag, true)?;
    // We answer ICMPv6 only without extension headers (a routing header would need reversing).
    if up.offset != ipv6::HEADER_LEN
        && matches!(
            l4,
            L4::EchoRequest | L4::NeighborSolicit { .. } | L4::NeighborAdvert
        )
    {
        l4 = L4::IcmpOther;
    }
    // RFC 4861 7.1.1 and 7.1.2: a solicitation or advertisement counts only with code 0 and
    // a valid checksum (one answered, the other learned from).
    if let L4::NeighborSolicit { .. } | L4::NeighborAdvert = l4 {
        let m = packet.get(up.offset..).unwrap_or_default();
        if m.get(1) != Some(&0) {
            l4 = L4::IcmpOther;
        } else {
            let sum = checksum::pseudo_v6(&p.src(), &p.dst(), proto::ICMPV6, m.len() as u32);
            if checksum::finish(checksum::add(sum, m)) != 0 {
                return Err(DropReason::BadChecksum);
            }
        }
    }
    Ok(Ip {
        v6: true,
        l2_len,
        ip_len,
        l4_off: up.offset,
        src: p.src(),
        dst: p.dst(),
        proto: up.protocol,
        tos: p.traffic_class(),
        ttl: p.hop_limit(),
        df: true,
        frag,
        l4,
    })
}

fn transport(protocol: u8, b: &[u8], frag: Option<Frag>, v6: bool) -> Result<L4, DropReason> {
    if frag == Some(Frag::Later) {
        return Ok(L4::NoPorts);
    }
    match protocol {
        proto::TCP => {
            let t = TcpPacket::new_checked(b)?;
            Ok(L4::Ports {
                sport: t.src_port(),
                dport: t.dst_port(),
                flags: t.flags(),
            })
        }
        proto::UDP => {
            let u = UdpPacket::new_checked(b)?;
            if frag.is_none() && usize::from(u.length()) > b.len() {
                return Err(DropReason::Truncated);
            }
            Ok(L4::Ports {
                sport: u.src_port(),
                dport: u.dst_port(),
                flags: 0,
            })
        }
        _ if frag.is_some() => Ok(L4::NoPorts),
        proto::ICMP if !v6 => icmp_v4(b),
        proto::ICMPV6 if v6 => icmp_v6(b),
        _ => Ok(L4::Other),
    }
}

fn icmp_v4(b: &[u8]) -> Result<L4, DropReason> {
    let m = IcmpPacket::new_checked(b)?;
    match m.msg_type() {
        icmp::v4::ECHO_REQUEST => Ok(L4::EchoRequest),
        icmp::v4::DEST_UNREACH | icmp::v4::TIME_EXCEEDED => {
            embedded_v4(m.body()).map(L4::IcmpError)
        }
        _ => Ok(L4::IcmpOther),
    }
}

fn icmp_v6(b: &[u8]) -> Result<L4, DropReason> {
    let m = IcmpPacket::new_checked(b)?;
    match m.msg_type() {
        icmp::v6::ECHO_REQUEST => Ok(L4::EchoRequest),
        icmp::v6::DEST_UNREACH | icmp::v6::PACKET_TOO_BIG | icmp::v6::TIME_EXCEEDED => {
            embedded_v6(m.body()).map(L4::IcmpError)
        }
        icmp::v6::NEIGHBOR_SOLICIT => {
            let target = m.nd_target()?;
            no_mapped_address("neighbor solicitation", &target, &target)?;
            let source_mac = m.nd_link_layer_option(icmp::v6::OPT_SOURCE_LL)?;
            Ok(L4::NeighborSolicit { target, source_mac })
        }
        icmp::v6::NEIGHBOR_ADVERT => {
            let target = m.nd_target()?;
            no_mapped_address("neighbor advertisement", &target, &target)?;
            Ok(L4::NeighborAdvert)
        }
        _ => Ok(L4::IcmpOther),
    }
}

/// The source and destination ports: what an error's quote must hold past the IP header.
const PORTS_LEN: usize = 4;

/// The embedded IPv4 header plus the first 8 bytes of its payload (RFC 792).
fn embedded_v4(b: &[u8]) -> Result<Embedded, DropReason> {
    let p = Ipv4Packet::new_unchecked(b);
    crate::wire::need("icmp embedded ipv4", ipv4::MIN_HEADER_LEN, b.len())?;
    let hl = p.header_len();
    if p.version() != 4 || hl < ipv4::MIN_HEADER_LEN {
        return Err(WireError::Malformed {
            layer: "icmp embedded ipv4",
            field: "header",
        }
        .into());
    }
    crate::wire::need("icmp embedded ipv4", hl + PORTS_LEN, b.len())?;
    // A later fragment's first bytes are the middle of its payload, not ports.
    if p.frag_offset() != 0 {
        return Err(DropReason::IcmpUnsupported);
    }
    embedded(
        v4_mapped(p.src()),
        v4_mapped(p.dst()),
        p.protocol(),
        &b[hl..],
        hl as u8,
    )
}

fn embedded_v6(b: &[u8]) -> Result<Embedded, DropReason> {
    let p = Ipv6Packet::new_unchecked(b);
    crate::wire::need(
        "icmpv6 embedded ipv6",
        ipv6::HEADER_LEN + PORTS_LEN,
        b.len(),
    )?;
    if p.version() != 6 {
        return Err(WireError::Malformed {
            layer: "icmpv6 embedded ipv6",
            field: "version",
        }
        .into());
    }
    no_mapped_address("icmpv6 embedded ipv6", &p.src(), &p.dst())?;
    embedded(
        p.src(),
        p.dst(),
        p.next_header(),
        &b[ipv6::HEADER_LEN..],
        ipv6::HEADER_LEN as u8,
    )
}

/// IPv4-mapped addresses (`::ffff:0:0/96`) never appear on the wire (RFC 4291 2.5.5.2); in an
/// IPv6 header or a neighbour discovery target they would also pass for the IPv4 addresses
/// sluice keeps in that form (an IPv6 packet to `::ffff:a.b.c.d` matching the IPv4 VIP
/// `a.b.c.d`, a solicitation for it answered).
fn no_mapped_address(
    layer: &'static str,
    src: &[u8; 16],
    dst: &[u8; 16],
) -> Result<(), DropReason> {
    if is_v4_mapped(src) || is_v4_mapped(dst) {
        return Err(WireError::Malformed {
            layer,
            field: "IPv4-mapped address",
        }
        .into());
    }
    Ok(())
}

/// The embedded packet went from the VIP to the client: reverse it.
fn embedded(
    src: [u8; 16],
    dst: [u8; 16],
    protocol: u8,
    l4: &[u8],
    hl: u8,
) -> Result<Embedded, DropReason> {
    if protocol != proto::TCP && protocol != proto::UDP {
        return Err(DropReason::IcmpUnsupported);
    }
    Ok(Embedded {
        client: dst,
        vip: src,
        client_port: be16(l4, tcp::field::DST_PORT),
        vip_port: be16(l4, tcp::field::SRC_PORT),
        proto: protocol,
        hl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: u16) -> Vec<u8> {
        let mut v = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        v.extend_from_slice(&ethertype.to_be_bytes());
        v
    }

    /// An IPv6 packet whose payload is `chain` (next header = `first`).
    fn v6(first: u8, chain: &[u8]) -> Vec<u8> {
        let mut v = eth(0x86dd);
        v.extend_from_slice(&[0x60, 0, 0, 0]);
        v.extend_from_slice(&(chain.len() as u16).to_be_bytes());
        v.extend_from_slice(&[first, 64]);
        v.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]);
        v.extend_from_slice(chain);
        v
    }

    const UDP: [u8; 8] = [0x13, 0x88, 0, 53, 0, 8, 0, 0];

    /// The fast path must agree with the general parser on every input, accepted or not.
    #[test]
    fn the_fast_path_agrees_with_the_general_parser() {
        let tcp = {
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4([203, 0, 113, 7], [198, 51, 100, 10], 64)
                .tcp(40000, 80, 1, 1000)
                .ack(1);
            let mut v = Vec::new();
            b.write(&mut v, &[1, 2, 3]).unwrap();
            v
        };
        let udp = {
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4([203, 0, 113, 7], [198, 51, 100, 10], 64)
                .udp(5353, 53);
            let mut v = Vec::new();
            b.write(&mut v, &[9; 12]).unwrap();
            v
        };
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut fast, mut total, mut bad_checksum) = (0, 0, 0);
        for base in [&tcp, &udp] {
            assert!(
                fast_shape(base, false).is_some(),
                "the unmodified packet takes the fast path"
            );
            for _ in 0..100_000 {
                let mut p = base.clone();
                // Flip a few bytes of the headers (the first 60), sometimes to 0 or 0xff.
                for _ in 0..1 + next() % 3 {
                    let i = (next() % 60) as usize % p.len();
                    p[i] = match next() % 4 {
                        0 => 0,
                        1 => 0xff,
                        _ => next() as u8,
                    };
                }
                match next() % 4 {
                    0 => p.truncate((next() % (p.len() as u64 + 1)) as usize),
                    1 => p.resize(p.len() + (next() % 8) as usize, 0),
                    _ => {}
                }
                // Mostly with a valid IPv4 checksum, so the later checks are reached.
                if next() % 4 != 0 && p.len() >= 34 && p[14] >> 4 == 4 {
                    let hl = usize::from(p[14] & 0xf) * 4;
                    if hl >= 20 && p.len() >= 14 + hl {
                        p[24] = 0;
                        p[25] = 0;
                        let c = checksum::of(&p[14..14 + hl]);
                        p[24..26].copy_from_slice(&c.to_be_bytes());
                    }
                }
                total += 1;
                fast += usize::from(fast_shape(&p, false).is_some());
                let general = parse_general(&p);
                assert_eq!(parse(&p), general, "{p:02x?}");
                // Trusting the NIC changes nothing unless the header checksum is what is wrong.
                if general != Err(DropReason::BadChecksum) {
                    assert_eq!(parse_trusting(&p, true), general, "trusted: {p:02x?}");
                } else {
                    bad_checksum += 1;
                }
            }
        }
        // Both outcomes were exercised, and the trusted parse was compared on most inputs.
        assert!(
            fast > total / 10 && fast < total,
            "{fast} of {total} on the fast path"
        );
        assert!(
            bad_checksum > 0 && bad_checksum < total / 2,
            "{bad_checksum}"
        );
    }

    /// The NIC's "checksum good" replaces the sum on the fast path only: a header it vouched
    /// for is taken as it is, and anything off the fast path is still summed.
    #[test]
    fn a_checksum_the_nic_vouched_for_is_not_summed_again() {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([203, 0, 113, 7], [198, 51, 100, 10], 64)
            .tcp(40000, 80, 1, 1000)
            .ack(1);
        let mut p = Vec::new();
        b.write(&mut p, &[1, 2, 3]).unwrap();
        let good = parse(&p);
        assert!(matches!(good, Ok(Parsed::Ip(_))));
        assert_eq!(parse_trusting(&p, true), good);
        p[24] ^= 0x40;
        assert_eq!(parse(&p), Err(DropReason::BadChecksum));
        assert_eq!(parse_trusting(&p, true), good, "trusted as the NIC said");
        // With IPv4 options the general parser runs, and it always sums.
        let mut opts = p.clone();
        opts[14] = 0x46;
        opts.splice(34..34, [1, 1, 1, 0]);
        let total = u16::from_be_bytes([opts[16], opts[17]]) + 4;
        opts[16..18].copy_from_slice(&total.to_be_bytes());
        assert_eq!(parse(&opts), Err(DropReason::BadChecksum));
        assert_eq!(parse_trusting(&opts, true), Err(DropReason::BadChecksum));
    }

    #[test]
    fn a_chain_of_eight_extensions_is_walked_and_nine_is_malformed() {
        let mut chain = Vec::new();
        for _ in 0..7 {
            chain.extend_from_slice(&[proto::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        let mut eight = chain.clone();
        eight.extend_from_slice(&[proto::UDP, 0, 1, 4, 0, 0, 0, 0]);
        eight.extend_from_slice(&UDP);
        let Ok(Parsed::Ip(ip)) = parse(&v6(proto::DEST_OPTS, &eight)) else {
            panic!("eight extension headers should parse")
        };
        assert_eq!((ip.proto, ip.l4_off), (proto::UDP, 40 + 64));
        assert_eq!(
            ip.l4,
            L4::Ports {
                sport: 5000,
                dport: 53,
                flags: 0
            }
        );
        let mut nine = chain;
        nine.extend_from_slice(&[proto::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        nine.extend_from_slice(&[proto::UDP, 0, 1, 4, 0, 0, 0, 0]);
        nine.extend_from_slice(&UDP);
        assert_eq!(
            parse(&v6(proto::DEST_OPTS, &nine)),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn hop_by_hop_after_another_header_is_malformed() {
        let mut chain = vec![proto::HOP_BY_HOP, 0, 1, 4, 0, 0, 0, 0];
        chain.extend_from_slice(&[proto::UDP, 0, 1, 4, 0, 0, 0, 0]);
        chain.extend_from_slice(&UDP);
        assert_eq!(
            parse(&v6(proto::DEST_OPTS, &chain)),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn an_atomic_fragment_is_an_ordinary_packet() {
        let mut chain = vec![proto::UDP, 0, 0, 0, 0, 0, 0, 7];
        chain.extend_from_slice(&UDP);
        let Ok(Parsed::Ip(ip)) = parse(&v6(proto::FRAGMENT, &chain)) else {
            panic!("atomic fragment should parse")
        };
        assert_eq!(ip.frag, None);
        assert!(matches!(ip.l4, L4::Ports { dport: 53, .. }));
    }

    #[test]
    fn udp_length_beyond_the_packet_is_truncated() {
        let mut chain = UDP;
        chain[5] = 9;
        assert_eq!(parse(&v6(proto::UDP, &chain)), Err(DropReason::Truncated));
    }

    #[test]
    fn a_jumbogram_is_malformed() {
        let mut p = v6(proto::UDP, &UDP);
        p[18] = 0;
        p[19] = 0;
        assert_eq!(parse(&p), Err(DropReason::Malformed));
    }

    #[test]
    fn arp_with_other_hardware_type_is_malformed() {
        let mut p = eth(0x0806);
        p.extend_from_slice(&[0, 6, 8, 0, 6, 4, 0, 1]);
        p.extend_from_slice(&[0; 20]);
        assert_eq!(parse(&p), Err(DropReason::Malformed));
    }
}
