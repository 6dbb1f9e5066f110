//! Shared fixtures of the packet tests: the appliance's snapshot, addresses, and packet
//! builders (etherparse) for inputs and independently built expected outputs.
#![allow(dead_code)]

#[cfg(feature = "dpdk")]
pub mod eal;
pub mod nat;
#[cfg(feature = "dpdk")]
pub mod packet_socket;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::{
    BackendSpec, Egress, Forwarding, Frame, HashKind, InterfaceSpec, Pipeline, Proto, ServiceSpec,
    Snapshot, SnapshotBuilder, Verdict, WhenAllDown,
};
use etherparse::{
    EtherType, Ethernet2Header, Icmpv6Type, IpNumber, Ipv4Dscp, Ipv4Ecn, Ipv4Header, Ipv6FlowLabel,
    Ipv6Header, PacketBuilder, UdpHeader,
};

// The frame geometry, port and MACs of the fuzz bodies, so a golden input is a fuzz seed as is.
pub use dataplane::fuzzing::{HEADROOM, MAC as OUR_MAC, NEXT_HOP_MAC as GW_MAC, PORT, TAILROOM};
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];
pub const DSR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x21];
pub const OUR4: [u8; 4] = [192, 0, 2, 10];
pub const OUR6: [u8; 16] = v6(0, 0x10);
pub const CLIENT4: [u8; 4] = [203, 0, 113, 200];
pub const CLIENT6: [u8; 16] = v6(9, 0x200);
pub const VIP4: [u8; 4] = [198, 51, 100, 10];
pub const VIP6: [u8; 16] = v6(1, 0x10);
/// IPv4 VIP whose backend is IPv6 (4in6).
pub const VIP4_MIXED: [u8; 4] = [198, 51, 100, 20];
/// Port-0 UDP services with three backends each.
pub const VIP4_MULTI: [u8; 4] = [198, 51, 100, 30];
pub const VIP6_MULTI: [u8; 16] = v6(1, 0x30);
pub const VIP4_DOWN: [u8; 4] = [198, 51, 100, 40];
pub const VIP4_ANYWAY: [u8; 4] = [198, 51, 100, 41];
pub const VIP4_UNRESOLVED: [u8; 4] = [198, 51, 100, 50];
pub const VIP4_AFFINITY: [u8; 4] = [198, 51, 100, 60];
pub const MTU: u16 = 1500;
pub const TABLE_SIZE: usize = 13;

pub const fn v6(net: u16, host: u16) -> [u8; 16] {
    let n = net.to_be_bytes();
    let h = host.to_be_bytes();
    [
        0x20, 0x01, 0x0d, 0xb8, n[0], n[1], 0, 0, 0, 0, 0, 0, 0, 0, h[0], h[1],
    ]
}

pub fn a4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

pub fn a6(a: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

/// Deterministic table for tests (control fills real Maglev tables).
pub fn round_robin(n: usize) -> Vec<u32> {
    (0..TABLE_SIZE).map(|i| (i % n) as u32).collect()
}

pub struct Svc {
    pub id: u32,
    pub vip: IpAddr,
    pub port: u16,
    pub proto: Proto,
    pub forwarding: Forwarding,
    pub backends: Vec<(IpAddr, Option<[u8; 6]>, bool)>,
    pub hash: HashKind,
    pub when_all_down: WhenAllDown,
}

pub fn spec(s: Svc) -> ServiceSpec {
    let backends: Vec<BackendSpec> = s
        .backends
        .iter()
        .enumerate()
        .map(|(i, &(address, mac, up))| BackendSpec {
            id: backend_id(s.id, i),
            address,
            port: 0,
            weight: 100,
            up,
            egress: Egress {
                port: PORT,
                next_hop_mac: mac,
            },
        })
        .collect();
    let up: Vec<u32> = (0..backends.len() as u32)
        .filter(|&i| backends[i as usize].up)
        .collect();
    let table = if up.is_empty() {
        Vec::new()
    } else {
        round_robin(up.len())
            .into_iter()
            .map(|i| up[i as usize])
            .collect()
    };
    ServiceSpec {
        id: s.id,
        name: format!("svc{}", s.id),
        vip: s.vip,
        port: s.port,
        proto: s.proto,
        hash: s.hash,
        forwarding: s.forwarding,
        local_addresses: Vec::new(),
        when_all_down: s.when_all_down,
        fallback_table: round_robin(backends.len()),
        table,
        backends,
    }
}

pub fn backend_id(service: u32, i: usize) -> u32 {
    service * 100 + i as u32
}

fn svc(id: u32, vip: IpAddr, port: u16, proto: Proto, fwd: Forwarding, b: &[IpAddr]) -> Svc {
    Svc {
        id,
        vip,
        port,
        proto,
        forwarding: fwd,
        backends: b.iter().map(|&a| (a, Some(GW_MAC), true)).collect(),
        hash: HashKind::FiveTuple,
        when_all_down: WhenAllDown::Drop,
    }
}

pub fn interface() -> InterfaceSpec {
    InterfaceSpec {
        port: PORT,
        mac: OUR_MAC,
        ipv4: Some((Ipv4Addr::from(OUR4), 24)),
        ipv6: Some((Ipv6Addr::from(OUR6), 64)),
        mtu: MTU,
        ipv4_checksum_offload: false,
        kernel: false,
    }
}

pub fn b4(d: u8) -> [u8; 4] {
    [203, 0, 113, d]
}

pub fn b6(d: u16) -> [u8; 16] {
    v6(2, d)
}

/// Every service the golden cases use.
pub fn services() -> Vec<Svc> {
    use Forwarding::*;
    use Proto::*;
    let mut v = vec![
        svc(1, a4(VIP4), 80, Tcp, Ipip, &[a4(b4(11))]),
        svc(2, a4(VIP4), 80, Udp, Ipip, &[a4(b4(12))]),
        svc(3, a6(VIP6), 80, Tcp, Ipip, &[a6(b6(0x11))]),
        svc(4, a6(VIP6), 80, Udp, Ipip, &[a6(b6(0x12))]),
        svc(5, a4(VIP4), 443, Tcp, Gue, &[a4(b4(13))]),
        svc(6, a4(VIP4), 443, Udp, Gue, &[a4(b4(14))]),
        svc(7, a6(VIP6), 443, Tcp, Gue, &[a6(b6(0x13))]),
        svc(8, a6(VIP6), 443, Udp, Gue, &[a6(b6(0x14))]),
        svc(13, a4(VIP4_MIXED), 80, Tcp, Ipip, &[a6(b6(0x15))]),
        svc(
            14,
            a4(VIP4_MULTI),
            0,
            Udp,
            Ipip,
            &[a4(b4(31)), a4(b4(32)), a4(b4(33))],
        ),
        svc(
            15,
            a6(VIP6_MULTI),
            0,
            Udp,
            Ipip,
            &[a6(b6(0x31)), a6(b6(0x32)), a6(b6(0x33))],
        ),
        svc(
            19,
            a4(VIP4_AFFINITY),
            80,
            Tcp,
            Ipip,
            &[a4(b4(61)), a4(b4(62)), a4(b4(63))],
        ),
    ];
    v[11].hash = HashKind::SourceIp;
    for (id, vip, proto) in [
        (9, a4(VIP4), Tcp),
        (10, a4(VIP4), Udp),
        (11, a6(VIP6), Tcp),
        (12, a6(VIP6), Udp),
    ] {
        let backend = if vip.is_ipv4() {
            a4([192, 0, 2, 21])
        } else {
            a6(v6(0, 0x21))
        };
        let mut s = svc(id, vip, 22, proto, L2Dsr, &[backend]);
        s.backends[0].1 = Some(DSR_MAC);
        v.push(s);
    }
    let mut down = svc(16, a4(VIP4_DOWN), 80, Tcp, Ipip, &[a4(b4(40))]);
    down.backends[0].2 = false;
    let mut anyway = svc(17, a4(VIP4_ANYWAY), 80, Tcp, Ipip, &[a4(b4(41))]);
    anyway.backends[0].2 = false;
    anyway.when_all_down = WhenAllDown::ForwardAnyway;
    let mut unresolved = svc(18, a4(VIP4_UNRESOLVED), 80, Tcp, Ipip, &[a4(b4(50))]);
    unresolved.backends[0].1 = None;
    v.extend([down, anyway, unresolved]);
    v
}

pub fn snapshot() -> Snapshot {
    let mut b = SnapshotBuilder::new().interface(interface());
    for s in services() {
        b = b.service(spec(s));
    }
    b.build().unwrap()
}

/// [`snapshot`] after a reload that reshuffled service 14 (VIP4_MULTI, UDP, port 0): every
/// slot of its table names the next backend, so Maglev alone would move every flow.
pub fn snapshot_reshuffled() -> Snapshot {
    let mut b = SnapshotBuilder::new().interface(interface());
    for s in services() {
        let mut sp = spec(s);
        if sp.id == 14 {
            let n = sp.backends.len() as u32;
            sp.table.iter_mut().for_each(|e| *e = (*e + 1) % n);
        }
        b = b.service(sp);
    }
    b.build().unwrap()
}

/// A buffer with mbuf-like headroom and tailroom around `pkt`.
pub fn buffer(pkt: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADROOM + pkt.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    buf
}

pub fn frame(buf: &mut [u8], len: usize) -> Frame<'_> {
    Frame::new(buf, HEADROOM, len).unwrap()
}

/// Each packet through `p` alone (`process`), arriving on `port` at `now`: verdicts and bytes.
pub fn each(
    p: &mut Pipeline,
    snap: &Snapshot,
    pkts: &[Vec<u8>],
    port: u16,
    now: u64,
) -> Vec<(Verdict, Vec<u8>)> {
    pkts.iter()
        .map(|pkt| {
            let mut buf = buffer(pkt);
            let mut f = frame(&mut buf, pkt.len());
            let v = p.process(&mut f, port, snap, now);
            (v, f.data().to_vec())
        })
        .collect()
}

/// The same packets as one `process_burst` call: verdicts and bytes.
pub fn burst(
    p: &mut Pipeline,
    snap: &Snapshot,
    pkts: &[Vec<u8>],
    port: u16,
    now: u64,
) -> Vec<(Verdict, Vec<u8>)> {
    let mut bufs: Vec<Vec<u8>> = pkts.iter().map(|b| buffer(b)).collect();
    let mut frames: Vec<Frame<'_>> = bufs
        .iter_mut()
        .zip(pkts)
        .map(|(b, pkt)| frame(b, pkt.len()))
        .collect();
    let mut verdicts = vec![Verdict::ToControl; frames.len()];
    assert_eq!(
        p.process_burst(&mut frames, port, snap, now, &mut verdicts),
        pkts.len()
    );
    verdicts
        .into_iter()
        .zip(frames.iter().map(|f| f.data().to_vec()))
        .collect()
}

// ---- inputs ----

#[derive(Clone, Copy, Debug)]
pub enum Tcp {
    Syn,
    Ack,
    Rst,
    Fin,
}

fn tcp_flags(
    b: etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    f: Tcp,
) -> etherparse::PacketBuilderStep<etherparse::TcpHeader> {
    match f {
        Tcp::Syn => b.syn(),
        Tcp::Ack => b.ack(1),
        Tcp::Rst => b.rst(),
        Tcp::Fin => b.fin().ack(1),
    }
}

pub fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, f: Tcp, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, OUR_MAC)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1000, 64240);
    let b = tcp_flags(b, f);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUR_MAC)
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

pub fn tcp6(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    f: Tcp,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, OUR_MAC)
        .ipv6(src, dst, 64)
        .tcp(sport, dport, 1000, 64240);
    let b = tcp_flags(b, f);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub fn udp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUR_MAC)
        .ipv6(src, dst, 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// Inserts VLAN tags (outermost first, as (TPID, VID)) after the MAC addresses.
pub fn tagged(pkt: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut v = pkt[..12].to_vec();
    for &(tpid, vid) in tags {
        v.extend_from_slice(&tpid.to_be_bytes());
        v.extend_from_slice(&vid.to_be_bytes());
    }
    v.extend_from_slice(&pkt[12..]);
    v
}

// ---- expected outputs, built independently of the code under test ----

pub fn eth(dst: [u8; 6], src: [u8; 6], t: EtherType) -> Vec<u8> {
    Ethernet2Header {
        destination: dst,
        source: src,
        ether_type: t,
    }
    .to_bytes()
    .to_vec()
}

fn inner_tos(inner: &[u8]) -> u8 {
    if inner[0] >> 4 == 4 {
        inner[1]
    } else {
        ((u16::from_be_bytes([inner[0], inner[1]]) >> 4) & 0xff) as u8
    }
}

fn inner_proto(inner: &[u8]) -> IpNumber {
    if inner[0] >> 4 == 4 {
        IpNumber::IPV4
    } else {
        IpNumber::IPV6
    }
}

fn outer4(payload_len: usize, proto: IpNumber, tos: u8, dst: [u8; 4]) -> Vec<u8> {
    let mut h = Ipv4Header::new(payload_len as u16, 64, proto, OUR4, dst).unwrap();
    h.dscp = Ipv4Dscp::try_new(tos >> 2).unwrap();
    h.ecn = Ipv4Ecn::try_new(tos & 3).unwrap();
    h.header_checksum = h.calc_header_checksum();
    h.to_bytes().to_vec()
}

fn outer6_hdr(
    payload_len: usize,
    proto: IpNumber,
    tos: u8,
    dst: [u8; 16],
    label: u32,
) -> Ipv6Header {
    Ipv6Header {
        traffic_class: tos,
        flow_label: Ipv6FlowLabel::try_new(label & 0xf_ffff).unwrap(),
        payload_length: payload_len as u16,
        next_header: proto,
        hop_limit: 64,
        source: OUR6,
        destination: dst,
    }
}

/// IPIP with an IPv4 outer header.
pub fn ipip4(inner: &[u8], backend: [u8; 4]) -> Vec<u8> {
    let mut v = eth(GW_MAC, OUR_MAC, EtherType::IPV4);
    v.extend(outer4(
        inner.len(),
        inner_proto(inner),
        inner_tos(inner),
        backend,
    ));
    v.extend_from_slice(inner);
    v
}

/// IPIP with an IPv6 outer header; `hash` is the flow hash (flow label).
pub fn ipip6(inner: &[u8], backend: [u8; 16], hash: u32) -> Vec<u8> {
    let mut v = eth(GW_MAC, OUR_MAC, EtherType::IPV6);
    let h = outer6_hdr(
        inner.len(),
        inner_proto(inner),
        inner_tos(inner),
        backend,
        hash,
    );
    h.write(&mut v).unwrap();
    v.extend_from_slice(inner);
    v
}

pub fn gue_port(hash: u32) -> u16 {
    0xC000 | (hash as u16 & 0x3FFF)
}

pub fn gue4(inner: &[u8], backend: [u8; 4], hash: u32) -> Vec<u8> {
    let mut v = eth(GW_MAC, OUR_MAC, EtherType::IPV4);
    v.extend(outer4(
        inner.len() + 8,
        IpNumber::UDP,
        inner_tos(inner),
        backend,
    ));
    let u = UdpHeader {
        source_port: gue_port(hash),
        destination_port: 6080,
        length: (inner.len() + 8) as u16,
        checksum: 0,
    };
    v.extend(u.to_bytes());
    v.extend_from_slice(inner);
    v
}

pub fn gue6(inner: &[u8], backend: [u8; 16], hash: u32) -> Vec<u8> {
    let mut v = eth(GW_MAC, OUR_MAC, EtherType::IPV6);
    let h = outer6_hdr(
        inner.len() + 8,
        IpNumber::UDP,
        inner_tos(inner),
        backend,
        hash,
    );
    h.write(&mut v).unwrap();
    let u = UdpHeader::with_ipv6_checksum(gue_port(hash), 6080, &h, inner).unwrap();
    v.extend(u.to_bytes());
    v.extend_from_slice(inner);
    v
}

pub fn dsr(inner: &[u8]) -> Vec<u8> {
    let t = if inner[0] >> 4 == 4 {
        EtherType::IPV4
    } else {
        EtherType::IPV6
    };
    let mut v = eth(DSR_MAC, OUR_MAC, t);
    v.extend_from_slice(inner);
    v
}

pub fn m4(a: [u8; 4]) -> [u8; 16] {
    maglev::flow::v4_mapped(a)
}

/// The flow hash of a client packet (documented contract: maglev::flow::five_tuple).
pub fn hash4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, proto: u8) -> u32 {
    maglev::flow::five_tuple(&m4(src), &m4(dst), sport, dport, proto)
}

pub fn hash6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, proto: u8) -> u32 {
    maglev::flow::five_tuple(&src, &dst, sport, dport, proto)
}

/// Index of the backend a round-robin test table picks for `hash` among `n` backends.
pub fn rr_pick(hash: u32, n: usize) -> usize {
    maglev::flow::slot(hash, TABLE_SIZE as u32) % n
}

/// A counter by the name the case tables use: a field, `drop:<reason>`, `service:<id>` or
/// `backend:<id>` (packets).
pub fn counter(c: &dataplane::Counters, name: &str) -> u64 {
    match name {
        "forwarded" => c.forwarded,
        "replies" => c.replies,
        "ptb_sent" => c.ptb_sent,
        "to_control" => c.to_control,
        "to_kernel" => c.to_kernel,
        "flows_created" => c.flows_created,
        "flows_stateless" => c.flows_stateless,
        "flows_rehashed" => c.flows_rehashed,
        "nat_replies" => c.nat_replies,
        "nat_ports_exhausted" => c.nat_ports_exhausted,
        _ => {
            if let Some(r) = name.strip_prefix("drop:") {
                let reason = dataplane::DropReason::ALL
                    .iter()
                    .find(|d| d.as_str() == r)
                    .unwrap_or_else(|| panic!("unknown drop reason {r}"));
                c.dropped(*reason)
            } else if let Some(id) = name.strip_prefix("service:") {
                c.service(id.parse().unwrap()).map_or(0, |s| s.packets)
            } else if let Some(id) = name.strip_prefix("backend:") {
                c.backend_packets(id.parse().unwrap()).unwrap_or(0)
            } else {
                panic!("unknown counter {name}")
            }
        }
    }
}

/// Each `(name, delta)` of case `desc` is what the counter `name` gained from `before` to `after`.
pub fn assert_deltas(
    before: &dataplane::Counters,
    after: &dataplane::Counters,
    deltas: &[(&str, u64)],
    desc: &str,
) {
    for (name, delta) in deltas {
        assert_eq!(
            counter(after, name) - counter(before, name),
            *delta,
            "case {desc:?}: counter {name}"
        );
    }
}

/// An echo request from the client (id 7, seq 1, "ping").
pub fn echo4(src: [u8; 4], dst: [u8; 4], ttl: u8) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUR_MAC)
        .ipv4(src, dst, ttl)
        .icmpv4_echo_request(7, 1)
        .write(&mut v, b"ping")
        .unwrap();
    v
}

/// [`echo4`] over IPv6 (hop limit 40).
pub fn echo6(src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUR_MAC)
        .ipv6(src, dst, 40)
        .icmpv6_echo_request(7, 1)
        .write(&mut v, b"ping")
        .unwrap();
    v
}

/// The client's link-local address (neighbour discovery from the link).
pub const LINK_CLIENT6: [u8; 16] = v6(0, 0x100);

/// A neighbour solicitation for `target` from [`LINK_CLIENT6`] to its solicited-node group,
/// with the client's MAC as source link-layer option.
pub fn solicit(target: [u8; 16]) -> Vec<u8> {
    solicit_coded(target, 0)
}

/// [`solicit`] with ICMPv6 code `code` (only 0 is valid, RFC 4861 7.1.1).
pub fn solicit_coded(target: [u8; 16], code: u8) -> Vec<u8> {
    let mut payload = target.to_vec();
    payload.extend_from_slice(&[1, 1]);
    payload.extend_from_slice(&CLIENT_MAC);
    let snm = [
        0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target[13], target[14], target[15],
    ];
    let mut v = Vec::new();
    PacketBuilder::ethernet2(
        CLIENT_MAC,
        [0x33, 0x33, 0xff, target[13], target[14], target[15]],
    )
    .ipv6(LINK_CLIENT6, snm, 255)
    .icmpv6(Icmpv6Type::Unknown {
        type_u8: 135,
        code_u8: code,
        bytes5to8: [0; 4],
    })
    .write(&mut v, &payload)
    .unwrap();
    v
}

/// A neighbour advertisement from `src` (the target, with the source MAC as its target
/// link-layer option; solicited and override) to `dst`, ICMPv6 code `code` (valid: 0).
pub fn neighbour_advert(
    (smac, dmac): ([u8; 6], [u8; 6]),
    src: [u8; 16],
    dst: [u8; 16],
    code: u8,
) -> Vec<u8> {
    let mut payload = src.to_vec();
    payload.extend_from_slice(&[2, 1]);
    payload.extend_from_slice(&smac);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(smac, dmac)
        .ipv6(src, dst, 255)
        .icmpv6(Icmpv6Type::Unknown {
            type_u8: 136,
            code_u8: code,
            bytes5to8: [0x60, 0, 0, 0],
        })
        .write(&mut v, &payload)
        .unwrap();
    v
}
