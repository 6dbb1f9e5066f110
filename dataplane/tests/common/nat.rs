//! nat/fullnat fixtures: a snapshot whose backends sit behind a second port, a packet
//! builder for any tuple, and checksum verification computed independently of the dataplane.

use std::net::IpAddr;

use super::*;
use dataplane::fuzzing::{service_spec, up_backends};
use dataplane::{
    BackendSpec, Egress, FlowConfig, Forwarding, InterfaceSpec, Pipeline, PipelineConfig, Proto,
    ServiceSpec,
};
use etherparse::{icmpv4, icmpv6, Icmpv4Type, Icmpv6Type, PacketBuilder};

/// The backends' side: port 1.
pub const BE_PORT: u16 = 1;
pub const BE_IF_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
/// The backends' next hop (or the backends themselves) behind port 1.
pub const BE_GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb1];
/// The client side's router that delivers client packets on port 0.
pub const ROUTER_MAC: [u8; 6] = CLIENT_MAC;

pub const VIP4_NAT: [u8; 4] = [198, 51, 100, 70];
pub const VIP6_NAT: [u8; 16] = v6(1, 0x70);
pub const VIP4_FULL: [u8; 4] = [198, 51, 100, 71];
pub const VIP6_FULL: [u8; 16] = v6(1, 0x71);
pub const VIP4_DRAIN: [u8; 4] = [198, 51, 100, 72];
pub const LOCAL4: [u8; 4] = [192, 0, 2, 200];
pub const LOCAL6: [u8; 16] = v6(3, 0x200);

pub const NAT_TCP4: u32 = 101;
pub const NAT_UDP4: u32 = 102;
pub const NAT_TCP6: u32 = 103;
pub const NAT_UDP6: u32 = 104;
pub const FULL_TCP4: u32 = 105;
pub const FULL_UDP4: u32 = 106;
pub const FULL_TCP6: u32 = 107;
pub const FULL_UDP6: u32 = 108;
pub const DRAIN: u32 = 109;

pub fn be4(d: u8) -> [u8; 4] {
    [192, 0, 2, d]
}

pub fn be6(d: u16) -> [u8; 16] {
    v6(3, d)
}

/// (id, VIP, VIP port, protocol, mode, backend, backend port)
pub fn nat_services() -> Vec<(u32, IpAddr, u16, Proto, Forwarding, IpAddr, u16)> {
    use Forwarding::{FullNat, Nat};
    use Proto::{Tcp, Udp};
    vec![
        (NAT_TCP4, a4(VIP4_NAT), 80, Tcp, Nat, a4(be4(140)), 8080),
        (NAT_UDP4, a4(VIP4_NAT), 53, Udp, Nat, a4(be4(141)), 0),
        (NAT_TCP6, a6(VIP6_NAT), 80, Tcp, Nat, a6(be6(0x40)), 8080),
        (NAT_UDP6, a6(VIP6_NAT), 53, Udp, Nat, a6(be6(0x41)), 0),
        (FULL_TCP4, a4(VIP4_FULL), 80, Tcp, FullNat, a4(be4(142)), 0),
        (
            FULL_UDP4,
            a4(VIP4_FULL),
            53,
            Udp,
            FullNat,
            a4(be4(143)),
            5353,
        ),
        (FULL_TCP6, a6(VIP6_FULL), 80, Tcp, FullNat, a6(be6(0x42)), 0),
        (
            FULL_UDP6,
            a6(VIP6_FULL),
            53,
            Udp,
            FullNat,
            a6(be6(0x43)),
            5353,
        ),
        (DRAIN, a4(VIP4_DRAIN), 80, Tcp, Nat, a4(be4(150)), 0),
    ]
}

/// What happened to service [`DRAIN`]'s only backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainState {
    Normal,
    /// Weight 0: out of the table, still up.
    Drained,
    Down,
}

pub fn backend_port_interface() -> InterfaceSpec {
    InterfaceSpec {
        port: BE_PORT,
        mac: BE_IF_MAC,
        ipv4: Some((std::net::Ipv4Addr::new(192, 0, 2, 129), 25)),
        ipv6: Some((std::net::Ipv6Addr::from(v6(3, 1)), 64)),
        mtu: MTU,
        ipv4_checksum_offload: false,
        kernel: false,
    }
}

pub fn nat_spec(
    (id, vip, port, proto, fwd, backend, bport): (u32, IpAddr, u16, Proto, Forwarding, IpAddr, u16),
    drain: DrainState,
) -> ServiceSpec {
    let (weight, up) = match (id == DRAIN, drain) {
        (true, DrainState::Drained) => (0, true),
        (true, DrainState::Down) => (100, false),
        _ => (100, true),
    };
    let usable = weight > 0 && up;
    let backends = vec![BackendSpec {
        port: bport,
        weight,
        up,
        ..up_backends(id, &[backend], |_| Egress {
            port: BE_PORT,
            next_hop_mac: Some(BE_GW_MAC),
        })[0]
    }];
    ServiceSpec {
        local_addresses: if fwd == Forwarding::FullNat {
            vec![a4(LOCAL4), a6(LOCAL6)]
        } else {
            Vec::new()
        },
        table: if usable { round_robin(1) } else { Vec::new() },
        fallback_table: round_robin(1),
        ..service_spec(id, vip, port, proto, fwd, backends)
    }
}

pub fn nat_snapshot(drain: DrainState) -> Snapshot {
    let mut b = SnapshotBuilder::new()
        .interface(interface())
        .interface(backend_port_interface());
    for s in nat_services() {
        b = b.service(nat_spec(s, drain));
    }
    b.build().unwrap()
}

/// Transport of a built packet.
#[derive(Debug, Clone, Copy)]
pub enum L4 {
    Tcp(Tcp),
    Udp,
}

/// One packet's headers: Ethernet, IP (v4 when both addresses are IPv4-mapped) and ports.
#[derive(Debug, Clone, Copy)]
pub struct Hdr {
    pub smac: [u8; 6],
    pub dmac: [u8; 6],
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub ttl: u8,
    pub sport: u16,
    pub dport: u16,
    pub l4: L4,
}

fn is4(a: &[u8; 16]) -> bool {
    a[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
}

fn un4(a: &[u8; 16]) -> [u8; 4] {
    [a[12], a[13], a[14], a[15]]
}

fn ip_step(h: &Hdr) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    let b = PacketBuilder::ethernet2(h.smac, h.dmac);
    if is4(&h.src) {
        b.ipv4(un4(&h.src), un4(&h.dst), h.ttl)
    } else {
        b.ipv6(h.src, h.dst, h.ttl)
    }
}

/// The IP packet of `h` (no Ethernet header).
pub fn ip_packet(h: &Hdr, payload: &[u8]) -> Vec<u8> {
    build(h, payload)[14..].to_vec()
}

pub fn build(h: &Hdr, payload: &[u8]) -> Vec<u8> {
    let b = ip_step(h);
    let mut v = Vec::new();
    match h.l4 {
        L4::Udp => b.udp(h.sport, h.dport).write(&mut v, payload).unwrap(),
        L4::Tcp(f) => {
            let t = b.tcp(h.sport, h.dport, 1000, 64240);
            let t = match f {
                Tcp::Syn => t.syn(),
                Tcp::Ack => t.ack(1),
                Tcp::Rst => t.rst(),
                Tcp::Fin => t.fin().ack(1),
            };
            t.write(&mut v, payload).unwrap()
        }
    }
    v
}

/// An ICMP port-unreachable from `src` to `dst` (TTL `ttl`) quoting `quote` (an IP packet,
/// cut to `quote_len` bytes).
pub fn port_unreachable(
    (smac, dmac): ([u8; 6], [u8; 6]),
    src: [u8; 16],
    dst: [u8; 16],
    ttl: u8,
    quote: &[u8],
    quote_len: usize,
) -> Vec<u8> {
    let h = Hdr {
        smac,
        dmac,
        src,
        dst,
        ttl,
        sport: 0,
        dport: 0,
        l4: L4::Udp,
    };
    let b = ip_step(&h);
    let q = &quote[..quote_len.min(quote.len())];
    let mut v = Vec::new();
    if is4(&src) {
        b.icmpv4(Icmpv4Type::DestinationUnreachable(
            icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut v, q)
        .unwrap();
    } else {
        b.icmpv6(Icmpv6Type::DestinationUnreachable(
            icmpv6::DestUnreachableCode::Port,
        ))
        .write(&mut v, q)
        .unwrap();
    }
    v
}

/// The one's-complement sum of `data`, folded: 0xffff over data with a valid checksum.
fn ones(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for d in parts {
        for c in d.chunks(2) {
            sum += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn pseudo(src: &[u8], dst: &[u8], proto: u8, len: usize) -> Vec<u8> {
    let mut v = src.to_vec();
    v.extend_from_slice(dst);
    if src.len() == 4 {
        v.extend_from_slice(&[0, proto]);
        v.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        v.extend_from_slice(&(len as u32).to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, proto]);
    }
    v
}

/// Checks every checksum of an untagged Ethernet frame carrying IPv4/IPv6 (no extension
/// headers) with TCP, UDP or ICMP, by summing from scratch; an ICMP error's quoted IPv4
/// header too. A UDP-over-IPv4 checksum of 0 means none.
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let p = &frame[14..];
    let (src, dst, proto, l4) = if p[0] >> 4 == 4 {
        let hl = usize::from(p[0] & 0xf) * 4;
        if ones(&[&p[..hl]]) != 0xffff {
            return Err("IPv4 header checksum".into());
        }
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        (&p[12..16], &p[16..20], p[9], &p[hl..total])
    } else {
        let len = usize::from(u16::from_be_bytes([p[4], p[5]]));
        (&p[8..24], &p[24..40], p[6], &p[40..40 + len])
    };
    let ok = match proto {
        6 | 58 => ones(&[&pseudo(src, dst, proto, l4.len()), l4]) == 0xffff,
        17 if src.len() == 4 && l4[6..8] == [0, 0] => true,
        17 => ones(&[&pseudo(src, dst, proto, l4.len()), l4]) == 0xffff,
        1 => {
            let q = &l4[8..];
            let hl = usize::from(q[0] & 0xf) * 4;
            if ones(&[&q[..hl]]) != 0xffff {
                return Err("quoted IPv4 header checksum".into());
            }
            ones(&[l4]) == 0xffff
        }
        other => return Err(format!("protocol {other}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("protocol {proto} checksum"))
    }
}

/// The (source, destination) ports of an untagged IPv4/IPv6 TCP or UDP frame.
pub fn ports(frame: &[u8]) -> (u16, u16) {
    let p = &frame[14..];
    let at = if p[0] >> 4 == 4 {
        usize::from(p[0] & 0xf) * 4
    } else {
        40
    };
    (
        u16::from_be_bytes([p[at], p[at + 1]]),
        u16::from_be_bytes([p[at + 2], p[at + 3]]),
    )
}

/// The (source, destination) addresses of an untagged IPv4/IPv6 frame, IPv4 ones mapped.
pub fn addrs(frame: &[u8]) -> ([u8; 16], [u8; 16]) {
    let p = &frame[14..];
    if p[0] >> 4 == 4 {
        (
            m4([p[12], p[13], p[14], p[15]]),
            m4([p[16], p[17], p[18], p[19]]),
        )
    } else {
        (p[8..24].try_into().unwrap(), p[24..40].try_into().unwrap())
    }
}

/// What the backends send back for each packet forwarded to them (`Forward` on [`BE_PORT`]):
/// addresses and ports swapped, a TCP ACK or a UDP datagram as the packet was, payload "r".
pub fn answers(out: &[(dataplane::Verdict, Vec<u8>)]) -> Vec<Vec<u8>> {
    out.iter()
        .filter(|(v, _)| *v == dataplane::Verdict::Forward { port: BE_PORT })
        .map(|(_, o)| {
            let ((s, d), (sp, dp)) = (addrs(o), ports(o));
            let p = &o[14..];
            let proto = if p[0] >> 4 == 4 { p[9] } else { p[6] };
            build(
                &Hdr {
                    smac: BE_GW_MAC,
                    dmac: BE_IF_MAC,
                    src: d,
                    dst: s,
                    ttl: 64,
                    sport: dp,
                    dport: sp,
                    l4: if proto == 17 {
                        L4::Udp
                    } else {
                        L4::Tcp(Tcp::Ack)
                    },
                },
                b"r",
            )
        })
        .collect()
}

/// Zeroes the UDP checksum of an untagged IPv4 frame without options (0: none).
pub fn zero_udp_checksum(frame: &mut [u8]) {
    frame[14 + 20 + 6] = 0;
    frame[14 + 20 + 7] = 0;
}

/// A nat pipeline with a small flow table, as worker `worker` of `workers`.
pub fn nat_pipeline(worker: u16, workers: u16) -> Pipeline {
    Pipeline::new(&PipelineConfig {
        flows: FlowConfig {
            capacity: 4096,
            ..FlowConfig::default()
        },
        nat: true,
        worker,
        workers,
        ..PipelineConfig::default()
    })
}

/// A UDP packet's headers, TTL 64.
pub fn udp(
    smac: [u8; 6],
    dmac: [u8; 6],
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
) -> Hdr {
    Hdr {
        smac,
        dmac,
        src,
        dst,
        ttl: 64,
        sport,
        dport,
        l4: L4::Udp,
    }
}
