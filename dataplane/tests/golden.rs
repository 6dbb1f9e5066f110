//! Golden packet tests, Katran-fixture style: each case is a description, an input frame
//! built with etherparse, the expected verdict, the expected output bytes (built
//! independently with etherparse), then the counters the packet must move. Cases run in
//! order through one pipeline, so a "hit" case follows the "miss" that created its flow.

mod common;

use common::*;
use dataplane::{DropReason, Pipeline, PipelineConfig, Verdict};
use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{
    EtherType, IcmpEchoHeader, Icmpv4Type, Icmpv6Type, IpFragOffset, IpNumber, Ipv4Header,
    Ipv6FragmentHeader, Ipv6Header, PacketBuilder,
};

struct Case {
    desc: &'static str,
    input: Vec<u8>,
    verdict: Verdict,
    /// None: the output is not checked (drops).
    output: Option<Vec<u8>>,
    counters: Vec<(&'static str, u64)>,
}

fn run(cases: Vec<Case>) {
    run_on(&snapshot(), &PipelineConfig::default(), cases);
}

fn run_on(snap: &dataplane::Snapshot, cfg: &PipelineConfig, cases: Vec<Case>) {
    run_with(snap, cfg, cases, false);
}

/// `run_on`, every frame marked as the glue marks one whose IPv4 header checksum the NIC
/// checked and found good (`nic_good`).
fn run_with(snap: &dataplane::Snapshot, cfg: &PipelineConfig, cases: Vec<Case>, nic_good: bool) {
    let snap = snap.clone();
    let mut p = Pipeline::new(cfg);
    for (i, case) in cases.into_iter().enumerate() {
        let before = p.counters().clone();
        let mut buf = buffer(&case.input);
        let mut f = frame(&mut buf, case.input.len());
        f.ipv4_checksum_good = nic_good;
        let v = p.process(&mut f, PORT, &snap, (i as u64 + 1) * 1_000_000);
        assert_eq!(v, case.verdict, "case {:?}: verdict", case.desc);
        if let Some(out) = &case.output {
            assert_eq!(f.data(), &out[..], "case {:?}: output bytes", case.desc);
        }
        let after = p.counters();
        assert_eq!(
            after.processed - before.processed,
            1,
            "case {:?}: rx",
            case.desc
        );
        let drops = after.dropped_total() - before.dropped_total();
        let expected_drops = match v {
            Verdict::Drop(r) => {
                assert_eq!(
                    after.dropped(r) - before.dropped(r),
                    1,
                    "case {:?}: drop counter {}",
                    case.desc,
                    r.as_str()
                );
                1
            }
            _ => case
                .counters
                .iter()
                .filter(|(n, _)| n.starts_with("drop:"))
                .map(|(_, d)| *d)
                .sum(),
        };
        assert_eq!(drops, expected_drops, "case {:?}: total drops", case.desc);
        assert_deltas(&before, after, &case.counters, case.desc);
    }
}

fn fwd() -> Verdict {
    Verdict::Forward { port: PORT }
}

fn reply() -> Verdict {
    Verdict::Reply { port: PORT }
}

fn drop(r: DropReason) -> Verdict {
    Verdict::Drop(r)
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ROUTER4: [u8; 4] = [203, 0, 113, 1];
const ROUTER6: [u8; 16] = v6(9, 1);
const LINK_CLIENT4: [u8; 4] = [192, 0, 2, 100];

fn arp(
    op: u16,
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
    dst: [u8; 6],
    src: [u8; 6],
) -> Vec<u8> {
    let mut v = eth(dst, src, EtherType::ARP);
    v.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&sha);
    v.extend_from_slice(&spa);
    v.extend_from_slice(&tha);
    v.extend_from_slice(&tpa);
    v
}

fn advert(target: [u8; 16]) -> Vec<u8> {
    neighbour_advert((OUR_MAC, CLIENT_MAC), target, LINK_CLIENT6, 0)
}

fn echo4_reply(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(OUR_MAC, CLIENT_MAC)
        .ipv4(src, dst, 64)
        .icmpv4(Icmpv4Type::EchoReply(IcmpEchoHeader { id: 7, seq: 1 }))
        .write(&mut v, b"ping")
        .unwrap();
    v
}

fn echo6_reply(src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(OUR_MAC, CLIENT_MAC)
        .ipv6(src, dst, 64)
        .icmpv6(Icmpv6Type::EchoReply(IcmpEchoHeader { id: 7, seq: 1 }))
        .write(&mut v, b"ping")
        .unwrap();
    v
}

/// An IPv4 fragment: `offset` in 8-byte units.
fn frag4(dst: [u8; 4], id: u16, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = Ipv4Header::new(payload.len() as u16, 64, IpNumber::UDP, CLIENT4, dst).unwrap();
    h.dont_fragment = false;
    h.more_fragments = more;
    h.fragment_offset = IpFragOffset::try_new(offset).unwrap();
    h.identification = id;
    h.header_checksum = h.calc_header_checksum();
    let mut v = eth(OUR_MAC, CLIENT_MAC, EtherType::IPV4);
    v.extend(h.to_bytes());
    v.extend_from_slice(payload);
    v
}

fn frag6(dst: [u8; 16], id: u32, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = eth(OUR_MAC, CLIENT_MAC, EtherType::IPV6);
    Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: (8 + payload.len()) as u16,
        next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
        hop_limit: 64,
        source: CLIENT6,
        destination: dst,
    }
    .write(&mut v)
    .unwrap();
    Ipv6FragmentHeader::new(
        IpNumber::UDP,
        IpFragOffset::try_new(offset).unwrap(),
        more,
        id,
    )
    .write(&mut v)
    .unwrap();
    v.extend_from_slice(payload);
    v
}

/// First 24 bytes of a fragmented UDP datagram of 48 bytes: header + 16 data bytes.
fn udp_head(sport: u16, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&48u16.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&[0xab; 16]);
    v
}

/// An ICMPv4 fragmentation-needed from a router about a packet the VIP sent to the client.
fn frag_needed_to_vip(vip: [u8; 4], vport: u16, cport: u16, proto: u8) -> Vec<u8> {
    let mut emb = Vec::new();
    let b = PacketBuilder::ipv4(vip, CLIENT4, 64);
    if proto == TCP {
        b.tcp(vport, cport, 1, 1).write(&mut emb, &[0; 32]).unwrap();
    } else {
        b.udp(vport, cport).write(&mut emb, &[0; 32]).unwrap();
    }
    let mut v = Vec::new();
    PacketBuilder::ethernet2(GW_MAC, OUR_MAC)
        .ipv4(ROUTER4, vip, 60)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut v, &emb[..28])
        .unwrap();
    v
}

fn ptb_to_vip6(vip: [u8; 16], vport: u16, cport: u16) -> Vec<u8> {
    let mut emb = Vec::new();
    PacketBuilder::ipv6(vip, CLIENT6, 64)
        .udp(vport, cport)
        .write(&mut emb, &[0; 32])
        .unwrap();
    let mut v = Vec::new();
    PacketBuilder::ethernet2(GW_MAC, OUR_MAC)
        .ipv6(ROUTER6, vip, 60)
        .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1400 })
        .write(&mut v, &emb)
        .unwrap();
    v
}

fn frag_needed_reply(input: &[u8], mtu: u16) -> Vec<u8> {
    let inner = &input[14..];
    let mut v = Vec::new();
    PacketBuilder::ethernet2(OUR_MAC, CLIENT_MAC)
        .ipv4(
            inner[16..20].try_into().unwrap(),
            inner[12..16].try_into().unwrap(),
            64,
        )
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu },
        ))
        .write(&mut v, &inner[..inner.len().min(576 - 28)])
        .unwrap();
    v
}

fn too_big_reply(input: &[u8], mtu: u32) -> Vec<u8> {
    let inner = &input[14..];
    let mut v = Vec::new();
    PacketBuilder::ethernet2(OUR_MAC, CLIENT_MAC)
        .ipv6(
            inner[24..40].try_into().unwrap(),
            inner[8..24].try_into().unwrap(),
            64,
        )
        .icmpv6(Icmpv6Type::PacketTooBig { mtu })
        .write(&mut v, &inner[..inner.len().min(1280 - 48)])
        .unwrap();
    v
}

fn with(mut p: Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    f(&mut p);
    p
}

/// Sets the IPv4 TTL of a frame (at offset 14) and fixes the header checksum.
fn set_ttl4(p: &mut [u8], ttl: u8) {
    p[14 + 8] = ttl;
    p[24] = 0;
    p[25] = 0;
    let (h, _) = Ipv4Header::from_slice(&p[14..]).unwrap();
    let c = h.calc_header_checksum();
    p[24..26].copy_from_slice(&c.to_be_bytes());
}

fn forwarding_cases() -> Vec<Case> {
    let t4 = tcp4(CLIENT4, VIP4, 40000, 80, Tcp::Syn, b"");
    let t4_ack = tcp4(CLIENT4, VIP4, 40000, 80, Tcp::Ack, b"hello");
    let u4 = udp4(CLIENT4, VIP4, 40001, 80, b"dns?");
    let t6 = tcp6(CLIENT6, VIP6, 40000, 80, Tcp::Syn, b"");
    let u6 = udp6(CLIENT6, VIP6, 40001, 80, b"dns?");
    let gt4 = tcp4(CLIENT4, VIP4, 40002, 443, Tcp::Syn, b"");
    let gu4 = udp4(CLIENT4, VIP4, 40003, 443, b"quic");
    let gt6 = tcp6(CLIENT6, VIP6, 40002, 443, Tcp::Syn, b"");
    let gu6 = udp6(CLIENT6, VIP6, 40003, 443, b"quic");
    let dt4 = tcp4(CLIENT4, VIP4, 40004, 22, Tcp::Syn, b"");
    let du4 = udp4(CLIENT4, VIP4, 40005, 22, b"x");
    let dt6 = tcp6(CLIENT6, VIP6, 40004, 22, Tcp::Syn, b"");
    let du6 = udp6(CLIENT6, VIP6, 40005, 22, b"x");
    let mixed = tcp4(CLIENT4, VIP4_MIXED, 40006, 80, Tcp::Syn, b"");
    let h = |s: [u8; 4], d: [u8; 4], sp, dp, pr| hash4(s, d, sp, dp, pr);
    let h6 = |sp, dp, pr| hash6(CLIENT6, VIP6, sp, dp, pr);
    vec![
        Case {
            desc: "tcp4 ipip SYN: flow miss, Maglev, entry created",
            output: Some(ipip4(&t4[14..], b4(11))),
            input: t4,
            verdict: fwd(),
            counters: vec![
                ("forwarded", 1),
                ("flows_created", 1),
                ("service:1", 1),
                ("backend:100", 1),
            ],
        },
        Case {
            desc: "tcp4 ipip ACK with data: flow hit",
            output: Some(ipip4(&t4_ack[14..], b4(11))),
            input: t4_ack,
            verdict: fwd(),
            counters: vec![("forwarded", 1), ("flows_created", 0), ("backend:100", 1)],
        },
        Case {
            desc: "udp4 ipip",
            output: Some(ipip4(&u4[14..], b4(12))),
            input: u4,
            verdict: fwd(),
            counters: vec![("flows_created", 1), ("service:2", 1)],
        },
        Case {
            desc: "tcp6 ipip (6in6, flow label = flow hash)",
            output: Some(ipip6(&t6[14..], b6(0x11), h6(40000, 80, TCP))),
            input: t6,
            verdict: fwd(),
            counters: vec![("flows_created", 1), ("service:3", 1)],
        },
        Case {
            desc: "udp6 ipip",
            output: Some(ipip6(&u6[14..], b6(0x12), h6(40001, 80, UDP))),
            input: u6,
            verdict: fwd(),
            counters: vec![("flows_created", 1), ("service:4", 1)],
        },
        Case {
            desc: "tcp4 gue (UDP 6080, source port from flow hash, zero checksum)",
            output: Some(gue4(&gt4[14..], b4(13), h(CLIENT4, VIP4, 40002, 443, TCP))),
            input: gt4,
            verdict: fwd(),
            counters: vec![("service:5", 1)],
        },
        Case {
            desc: "udp4 gue",
            output: Some(gue4(&gu4[14..], b4(14), h(CLIENT4, VIP4, 40003, 443, UDP))),
            input: gu4,
            verdict: fwd(),
            counters: vec![("service:6", 1)],
        },
        Case {
            desc: "tcp6 gue (outer UDP checksum computed)",
            output: Some(gue6(&gt6[14..], b6(0x13), h6(40002, 443, TCP))),
            input: gt6,
            verdict: fwd(),
            counters: vec![("service:7", 1)],
        },
        Case {
            desc: "udp6 gue",
            output: Some(gue6(&gu6[14..], b6(0x14), h6(40003, 443, UDP))),
            input: gu6,
            verdict: fwd(),
            counters: vec![("service:8", 1)],
        },
        Case {
            desc: "tcp4 l2-dsr: only the MACs change",
            output: Some(dsr(&dt4[14..])),
            input: dt4,
            verdict: fwd(),
            counters: vec![("service:9", 1)],
        },
        Case {
            desc: "udp4 l2-dsr",
            output: Some(dsr(&du4[14..])),
            input: du4,
            verdict: fwd(),
            counters: vec![("service:10", 1)],
        },
        Case {
            desc: "tcp6 l2-dsr",
            output: Some(dsr(&dt6[14..])),
            input: dt6,
            verdict: fwd(),
            counters: vec![("service:11", 1)],
        },
        Case {
            desc: "udp6 l2-dsr",
            output: Some(dsr(&du6[14..])),
            input: du6,
            verdict: fwd(),
            counters: vec![("service:12", 1)],
        },
        Case {
            desc: "tcp4 to an IPv6 backend: 4in6",
            output: Some(ipip6(
                &mixed[14..],
                b6(0x15),
                h(CLIENT4, VIP4_MIXED, 40006, 80, TCP),
            )),
            input: mixed,
            verdict: fwd(),
            counters: vec![("service:13", 1)],
        },
    ]
}

fn classification_cases() -> Vec<Case> {
    let rst = tcp4(CLIENT4, VIP4, 41000, 80, Tcp::Rst, b"");
    let fin = tcp4(CLIENT4, VIP4, 41001, 80, Tcp::Fin, b"");
    let anyway = tcp4(CLIENT4, VIP4_ANYWAY, 41002, 80, Tcp::Syn, b"");
    let ttl1 = with(tcp4(CLIENT4, VIP4, 41003, 80, Tcp::Ack, b""), |p| {
        set_ttl4(p, 1)
    });
    let vlan = tagged(
        &tcp4(CLIENT4, VIP4, 41004, 80, Tcp::Ack, b""),
        &[(0x8100, 100)],
    );
    let qinq = tagged(
        &tcp4(CLIENT4, VIP4, 41005, 80, Tcp::Ack, b""),
        &[(0x88a8, 10), (0x8100, 100)],
    );
    let tos = with(udp4(CLIENT4, VIP4, 41006, 80, b"ef"), |p| {
        // DSCP EF (46) + ECN ECT(0): copied to the outer header.
        p[15] = (46 << 2) | 2;
        p[24] = 0;
        p[25] = 0;
        let (h, _) = Ipv4Header::from_slice(&p[14..]).unwrap();
        let c = h.calc_header_checksum();
        p[24..26].copy_from_slice(&c.to_be_bytes());
    });
    let padded = with(udp4(CLIENT4, VIP4, 41007, 80, b""), |p| {
        p.extend_from_slice(&[0; 18])
    });
    let padded_inner = udp4(CLIENT4, VIP4, 41007, 80, b"")[14..].to_vec();
    // IPv4 with 4 bytes of options (three NOPs and an end-of-options), IHL 6.
    let opts = with(tcp4(CLIENT4, VIP4, 41008, 80, Tcp::Ack, b"o"), |p| {
        p.splice(34..34, [1, 1, 1, 0]);
        p[14] = 0x46;
        let total = u16::from_be_bytes([p[16], p[17]]) + 4;
        p[16..18].copy_from_slice(&total.to_be_bytes());
        p[24] = 0;
        p[25] = 0;
        let (h, _) = Ipv4Header::from_slice(&p[14..]).unwrap();
        assert_eq!(h.options.as_slice(), &[1, 1, 1, 0]);
        let c = h.calc_header_checksum();
        p[24..26].copy_from_slice(&c.to_be_bytes());
    });
    // IPv6 with hop-by-hop and destination-options headers (PadN) before TCP.
    let ext6 = with(tcp6(CLIENT6, VIP6, 41009, 80, Tcp::Ack, b"e"), |p| {
        p.splice(54..54, [60, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0]);
        p[14 + 6] = 0;
        let len = u16::from_be_bytes([p[18], p[19]]) + 16;
        p[18..20].copy_from_slice(&len.to_be_bytes());
    });
    let ext6_hash = hash6(CLIENT6, VIP6, 41009, 80, TCP);
    vec![
        Case {
            desc: "IPv4 options: parsed past, tunnelled untouched",
            output: Some(ipip4(&opts[14..], b4(11))),
            input: opts,
            verdict: fwd(),
            counters: vec![("flows_created", 1)],
        },
        Case {
            desc: "IPv6 hop-by-hop + destination options: ports found, tunnelled untouched",
            output: Some(ipip6(&ext6[14..], b6(0x11), ext6_hash)),
            input: ext6,
            verdict: fwd(),
            counters: vec![("flows_created", 1)],
        },
        Case {
            desc: "not a VIP",
            input: tcp4(CLIENT4, [198, 51, 100, 99], 1, 80, Tcp::Syn, b""),
            verdict: drop(DropReason::NotVip),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "VIP but wrong port",
            input: tcp4(CLIENT4, VIP4, 1, 8080, Tcp::Syn, b""),
            verdict: drop(DropReason::NoService),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "GRE to a VIP: protocol not balanced",
            input: with(udp4(CLIENT4, VIP4, 1, 80, b""), |p| {
                p[14 + 9] = 47;
                p[24] = 0;
                p[25] = 0;
                let (h, _) = Ipv4Header::from_slice(&p[14..]).unwrap();
                let c = h.calc_header_checksum();
                p[24..26].copy_from_slice(&c.to_be_bytes());
            }),
            verdict: drop(DropReason::UnsupportedProtocol),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "RST of an unknown flow: forwarded, no entry",
            output: Some(ipip4(&rst[14..], b4(11))),
            input: rst,
            verdict: fwd(),
            counters: vec![("flows_created", 0)],
        },
        Case {
            desc: "FIN of an unknown flow: forwarded, entry in closing state",
            output: Some(ipip4(&fin[14..], b4(11))),
            input: fin,
            verdict: fwd(),
            counters: vec![("flows_created", 1)],
        },
        Case {
            desc: "all backends down, when_all_down: drop",
            input: tcp4(CLIENT4, VIP4_DOWN, 1, 80, Tcp::Syn, b""),
            verdict: drop(DropReason::NoBackend),
            output: None,
            counters: vec![("flows_created", 0)],
        },
        Case {
            desc: "all backends down, when_all_down: forward-anyway",
            output: Some(ipip4(&anyway[14..], b4(41))),
            input: anyway,
            verdict: fwd(),
            counters: vec![("backend:1700", 1)],
        },
        Case {
            desc: "next hop not resolved yet",
            input: tcp4(CLIENT4, VIP4_UNRESOLVED, 1, 80, Tcp::Syn, b""),
            verdict: drop(DropReason::UnresolvedNextHop),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "TTL 0 on arrival",
            input: with(tcp4(CLIENT4, VIP4, 1, 80, Tcp::Syn, b""), |p| {
                set_ttl4(p, 0)
            }),
            verdict: drop(DropReason::TtlExceeded),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "TTL 1: tunnelled untouched (we are not a routing hop)",
            output: Some(ipip4(&ttl1[14..], b4(11))),
            input: ttl1,
            verdict: fwd(),
            counters: vec![],
        },
        Case {
            desc: "hop limit 0 on arrival",
            input: with(tcp6(CLIENT6, VIP6, 1, 80, Tcp::Syn, b""), |p| p[14 + 7] = 0),
            verdict: drop(DropReason::TtlExceeded),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "802.1Q tagged: tag stripped on egress",
            output: Some(ipip4(&vlan[18..], b4(11))),
            input: vlan,
            verdict: fwd(),
            counters: vec![],
        },
        Case {
            desc: "QinQ tagged",
            output: Some(ipip4(&qinq[22..], b4(11))),
            input: qinq,
            verdict: fwd(),
            counters: vec![],
        },
        Case {
            desc: "three VLAN tags",
            input: tagged(
                &tcp4(CLIENT4, VIP4, 1, 80, Tcp::Ack, b""),
                &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)],
            ),
            verdict: drop(DropReason::Malformed),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "DSCP/ECN copied to the outer header",
            output: Some(ipip4(&tos[14..], b4(12))),
            input: tos,
            verdict: fwd(),
            counters: vec![],
        },
        Case {
            desc: "Ethernet padding is not forwarded",
            output: Some(ipip4(&padded_inner, b4(12))),
            input: padded,
            verdict: fwd(),
            counters: vec![],
        },
    ]
}

fn reply_cases() -> Vec<Case> {
    let bcast = [0xff; 6];
    let our_ns = solicit(OUR6);
    let vip_ns = solicit(VIP6);
    vec![
        Case {
            desc: "ARP request for our address",
            input: arp(1, CLIENT_MAC, LINK_CLIENT4, [0; 6], OUR4, bcast, CLIENT_MAC),
            verdict: reply(),
            output: Some(arp(
                2,
                OUR_MAC,
                OUR4,
                CLIENT_MAC,
                LINK_CLIENT4,
                CLIENT_MAC,
                OUR_MAC,
            )),
            counters: vec![("replies", 1)],
        },
        Case {
            desc: "ARP request for a VIP",
            input: arp(1, CLIENT_MAC, LINK_CLIENT4, [0; 6], VIP4, bcast, CLIENT_MAC),
            verdict: reply(),
            output: Some(arp(
                2,
                OUR_MAC,
                VIP4,
                CLIENT_MAC,
                LINK_CLIENT4,
                CLIENT_MAC,
                OUR_MAC,
            )),
            counters: vec![("replies", 1)],
        },
        Case {
            desc: "ARP request for someone else",
            input: arp(
                1,
                CLIENT_MAC,
                LINK_CLIENT4,
                [0; 6],
                [192, 0, 2, 77],
                bcast,
                CLIENT_MAC,
            ),
            verdict: drop(DropReason::ArpNotOurs),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "ARP reply goes to control's resolver",
            input: arp(2, GW_MAC, [192, 0, 2, 1], OUR_MAC, OUR4, OUR_MAC, GW_MAC),
            verdict: Verdict::ToControl,
            output: None,
            counters: vec![("to_control", 1)],
        },
        Case {
            desc: "neighbour solicitation for our address",
            input: our_ns,
            verdict: reply(),
            output: Some(advert(OUR6)),
            counters: vec![("replies", 1)],
        },
        Case {
            desc: "neighbour solicitation for a VIP",
            input: vip_ns,
            verdict: reply(),
            output: Some(advert(VIP6)),
            counters: vec![("replies", 1)],
        },
        Case {
            desc: "neighbour solicitation for someone else",
            input: solicit(v6(0, 0x77)),
            verdict: drop(DropReason::NdNotOurs),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "neighbour solicitation for the IPv4 VIP's IPv4-mapped address",
            input: solicit(m4(VIP4)),
            verdict: drop(DropReason::Malformed),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "neighbour advertisement for an IPv4-mapped address",
            // From a link-local source: only the target is mapped (L4 checksums are not checked).
            input: with(advert(m4(VIP4)), |p| {
                p[22..38].copy_from_slice(&LINK_CLIENT6)
            }),
            verdict: drop(DropReason::Malformed),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "neighbour advertisement from a neighbour: to control",
            input: advert(v6(0, 0x1)),
            verdict: Verdict::ToControl,
            output: None,
            counters: vec![("to_control", 1)],
        },
        Case {
            desc: "neighbour advertisement with hop limit 64: routed from off the link, dropped",
            input: with(advert(v6(0, 0x1)), |p| p[21] = 64),
            verdict: drop(DropReason::NdNotOurs),
            output: None,
            counters: vec![("to_control", 0)],
        },
        Case {
            desc: "echo request to a VIP",
            input: echo4(CLIENT4, VIP4, 50),
            verdict: reply(),
            output: Some(echo4_reply(VIP4, CLIENT4)),
            counters: vec![("replies", 1)],
        },
        Case {
            desc: "echo request to our address",
            input: echo4(CLIENT4, OUR4, 50),
            verdict: reply(),
            output: Some(echo4_reply(OUR4, CLIENT4)),
            counters: vec![("replies", 1)],
        },
        Case {
            desc: "ICMPv6 echo request to a VIP",
            input: echo6(CLIENT6, VIP6),
            verdict: reply(),
            output: Some(echo6_reply(VIP6, CLIENT6)),
            counters: vec![("replies", 1)],
        },
        Case {
            desc: "echo request to a stranger",
            input: echo4(CLIENT4, [198, 51, 100, 99], 50),
            verdict: drop(DropReason::NotVip),
            output: None,
            counters: vec![],
        },
    ]
}

fn malformed_cases() -> Vec<Case> {
    let t4 = tcp4(CLIENT4, VIP4, 1, 80, Tcp::Syn, b"");
    let t6 = tcp6(CLIENT6, VIP6, 1, 80, Tcp::Syn, b"");
    let mut broken_chain = eth(OUR_MAC, CLIENT_MAC, EtherType::IPV6);
    Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: 8,
        next_header: IpNumber::IPV6_HEADER_HOP_BY_HOP,
        hop_limit: 64,
        source: CLIENT6,
        destination: VIP6,
    }
    .write(&mut broken_chain)
    .unwrap();
    // Hop-by-hop claiming 48 bytes in an 8-byte payload.
    broken_chain.extend_from_slice(&[6, 5, 0, 0, 0, 0, 0, 0]);
    let mut two_frag = eth(OUR_MAC, CLIENT_MAC, EtherType::IPV6);
    Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: 16,
        next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
        hop_limit: 64,
        source: CLIENT6,
        destination: VIP6,
    }
    .write(&mut two_frag)
    .unwrap();
    two_frag.extend_from_slice(&[44, 0, 0, 1, 0, 0, 0, 1, 17, 0, 0, 1, 0, 0, 0, 1]);
    // A packet-too-big to a VIP quoting a packet from an IPv4-mapped address.
    let mut quoted = Vec::new();
    PacketBuilder::ipv6(m4(VIP4), CLIENT6, 64)
        .udp(53, 6000)
        .write(&mut quoted, &[0; 32])
        .unwrap();
    let mut quotes_mapped = Vec::new();
    PacketBuilder::ethernet2(GW_MAC, OUR_MAC)
        .ipv6(ROUTER6, VIP6, 60)
        .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1400 })
        .write(&mut quotes_mapped, &quoted)
        .unwrap();
    let m = |desc, input, r| Case {
        desc,
        input,
        verdict: drop(r),
        output: None,
        counters: vec![],
    };
    use DropReason::*;
    vec![
        m("frame shorter than Ethernet", t4[..10].to_vec(), Truncated),
        m("IPv4 header cut short", t4[..14 + 12].to_vec(), Truncated),
        m(
            "IHL 4 (less than 20 bytes)",
            with(t4.clone(), |p| p[14] = 0x44),
            Malformed,
        ),
        m(
            "IHL 15 beyond the frame",
            with(t4.clone(), |p| p[14] = 0x4f),
            Truncated,
        ),
        m(
            "total length beyond the frame",
            with(t4.clone(), |p| {
                p[16..18].copy_from_slice(&1000u16.to_be_bytes())
            }),
            Truncated,
        ),
        m(
            "IPv4 header checksum wrong",
            with(t4.clone(), |p| p[24] ^= 0xff),
            BadChecksum,
        ),
        m(
            "IP version 5 in an IPv4 frame",
            with(t4.clone(), |p| p[14] = 0x55),
            Malformed,
        ),
        m(
            "TCP header cut short",
            with(t4.clone(), |p| {
                // Keep the IP total length consistent with the shorter frame.
                p.truncate(14 + 20 + 10);
                p[16..18].copy_from_slice(&30u16.to_be_bytes());
                p[24] = 0;
                p[25] = 0;
                let (h, _) = Ipv4Header::from_slice(&p[14..]).unwrap();
                let c = h.calc_header_checksum();
                p[24..26].copy_from_slice(&c.to_be_bytes());
            }),
            Truncated,
        ),
        m(
            "TCP data offset 2",
            with(t4, |p| p[14 + 20 + 12] = 0x20),
            Malformed,
        ),
        m(
            "IPv6 payload length beyond the frame",
            with(t6.clone(), |p| p[18] = 0x10),
            Truncated,
        ),
        m("IPv6 header cut short", t6[..14 + 30].to_vec(), Truncated),
        m("broken extension-header chain", broken_chain, Truncated),
        m("two fragment headers", two_frag, Malformed),
        // RFC 4291 2.5.5.2: never on the wire; here it would pass for the IPv4 VIP itself.
        m(
            "IPv6 to the IPv4 VIP's IPv4-mapped address",
            tcp6(CLIENT6, m4(VIP4), 1, 80, Tcp::Syn, b""),
            Malformed,
        ),
        m(
            "IPv6 from an IPv4-mapped address",
            tcp6(m4(CLIENT4), VIP6, 1, 80, Tcp::Syn, b""),
            Malformed,
        ),
        m(
            "ICMPv6 error quoting an IPv4-mapped address",
            quotes_mapped,
            Malformed,
        ),
        m(
            "unknown ethertype",
            with(t6, |p| p[12..14].copy_from_slice(&[0x88, 0xcc])),
            UnsupportedEthertype,
        ),
    ]
}

fn fragment_and_icmp_cases() -> Vec<Case> {
    // A 48-byte UDP datagram in three fragments, sent out of order: last, first, middle.
    let h3 = maglev::flow::five_tuple(&m4(CLIENT4), &m4(VIP4_MULTI), 0, 0, UDP);
    let be4 = b4(31 + rr_pick(h3, 3) as u8);
    let first = frag4(VIP4_MULTI, 7, 0, true, &udp_head(5000, 53));
    let middle = frag4(VIP4_MULTI, 7, 3, true, &[0xcd; 16]);
    let last = frag4(VIP4_MULTI, 7, 5, false, &[0xef; 8]);
    let h6 = maglev::flow::five_tuple(&CLIENT6, &VIP6_MULTI, 0, 0, UDP);
    let be6 = b6(0x31 + rr_pick(h6, 3) as u16);
    let first6 = frag6(VIP6_MULTI, 9, 0, true, &udp_head(5000, 53));
    let later6 = frag6(VIP6_MULTI, 9, 3, false, &[0xcd; 24]);
    // The UDP flow the ICMP errors refer to.
    let flow4 = udp4(CLIENT4, VIP4_MULTI, 6000, 53, b"q");
    let fh4 = hash4(CLIENT4, VIP4_MULTI, 6000, 53, UDP);
    let fb4 = b4(31 + rr_pick(fh4, 3) as u8);
    let fneed = frag_needed_to_vip(VIP4_MULTI, 53, 6000, UDP);
    let fneed_tcp = frag_needed_to_vip(VIP4, 80, 40000, TCP);
    let ptb6 = ptb_to_vip6(VIP6_MULTI, 53, 6000);
    let ph6 = hash6(CLIENT6, VIP6_MULTI, 6000, 53, UDP);
    let pb6 = b6(0x31 + rr_pick(ph6, 3) as u16);
    let big4 = tcp4(CLIENT4, VIP4, 42000, 80, Tcp::Ack, &[0x55; 1460]);
    let big_first = frag4(
        VIP4_MULTI,
        12,
        0,
        true,
        &[udp_head(5001, 53), vec![0xab; 1472]].concat(),
    );
    let big4_nodf = with(udp4(CLIENT4, VIP4, 42001, 80, &[0x55; 1472]), |p| {
        p[14 + 6] = 0;
        p[24] = 0;
        p[25] = 0;
        let (h, _) = Ipv4Header::from_slice(&p[14..]).unwrap();
        let c = h.calc_header_checksum();
        p[24..26].copy_from_slice(&c.to_be_bytes());
    });
    let big_gue = tcp4(CLIENT4, VIP4, 42002, 443, Tcp::Ack, &[0x55; 1460 - 20]);
    let big6 = tcp6(CLIENT6, VIP6, 42000, 80, Tcp::Ack, &[0x55; 1440]);
    let fits_dsr = tcp4(CLIENT4, VIP4, 42003, 22, Tcp::Ack, &[0x55; 1460]);
    vec![
        Case {
            desc: "last fragment first (out of order): 3-tuple hash",
            output: Some(ipip4(&last[14..], be4)),
            input: last,
            verdict: fwd(),
            counters: vec![("flows_created", 0), ("service:14", 1)],
        },
        Case {
            desc: "first fragment: same backend as the others",
            output: Some(ipip4(&first[14..], be4)),
            input: first,
            verdict: fwd(),
            counters: vec![("flows_created", 0)],
        },
        Case {
            desc: "middle fragment",
            output: Some(ipip4(&middle[14..], be4)),
            input: middle,
            verdict: fwd(),
            counters: vec![],
        },
        Case {
            desc: "IPv6 first fragment",
            output: Some(ipip6(&first6[14..], be6, h6)),
            input: first6,
            verdict: fwd(),
            counters: vec![("service:15", 1)],
        },
        Case {
            desc: "IPv6 last fragment",
            output: Some(ipip6(&later6[14..], be6, h6)),
            input: later6,
            verdict: fwd(),
            counters: vec![],
        },
        Case {
            desc: "fragment to a VIP with several services on its protocol",
            input: frag4(VIP4, 8, 3, false, &[0; 8]),
            verdict: drop(DropReason::FragmentUnclassifiable),
            output: None,
            counters: vec![],
        },
        Case {
            desc: "UDP flow the next ICMP error refers to",
            output: Some(ipip4(&flow4[14..], fb4)),
            input: flow4,
            verdict: fwd(),
            counters: vec![("flows_created", 1)],
        },
        Case {
            desc: "ICMP frag-needed for a VIP flow goes to the flow's backend",
            output: Some(ipip4(&fneed[14..], fb4)),
            input: fneed,
            verdict: fwd(),
            counters: vec![("flows_created", 0), ("service:14", 1)],
        },
        Case {
            desc: "ICMP frag-needed for a TCP VIP flow",
            output: Some(ipip4(&fneed_tcp[14..], b4(11))),
            input: fneed_tcp,
            verdict: fwd(),
            counters: vec![("service:1", 1)],
        },
        Case {
            desc: "ICMPv6 packet-too-big for a VIP flow (no entry: Maglev on the reversed tuple)",
            output: Some(ipip6(&ptb6[14..], pb6, ph6)),
            input: ptb6,
            verdict: fwd(),
            counters: vec![("flows_created", 0)],
        },
        Case {
            desc: "IPv4 1500 bytes + ipip 20 > MTU 1500: frag-needed 1480 to the client",
            output: Some(frag_needed_reply(&big4, 1480)),
            input: big4,
            verdict: reply(),
            counters: vec![("ptb_sent", 1), ("drop:mtu_exceeded", 1), ("forwarded", 0)],
        },
        Case {
            desc: "IPv4 without DF over the MTU: frag-needed too",
            output: Some(frag_needed_reply(&big4_nodf, 1480)),
            input: big4_nodf,
            verdict: reply(),
            counters: vec![("ptb_sent", 1), ("drop:mtu_exceeded", 1)],
        },
        Case {
            desc: "gue overhead 28: frag-needed 1472",
            output: Some(frag_needed_reply(&big_gue, 1472)),
            input: big_gue,
            verdict: reply(),
            counters: vec![("ptb_sent", 1), ("drop:mtu_exceeded", 1)],
        },
        Case {
            desc: "IPv6 1500 bytes + 40: packet-too-big 1460",
            output: Some(too_big_reply(&big6, 1460)),
            input: big6,
            verdict: reply(),
            counters: vec![("ptb_sent", 1), ("drop:mtu_exceeded", 1)],
        },
        Case {
            desc: "IPv4 middle fragment over the MTU: dropped without frag-needed (RFC 1122 3.2.2)",
            input: frag4(VIP4_MULTI, 11, 185, true, &[0xab; 1480]),
            verdict: drop(DropReason::MtuExceeded),
            output: None,
            counters: vec![("ptb_sent", 0), ("drop:mtu_exceeded", 1), ("forwarded", 0)],
        },
        Case {
            desc: "IPv4 first fragment over the MTU: frag-needed",
            output: Some(frag_needed_reply(&big_first, 1480)),
            input: big_first,
            verdict: reply(),
            counters: vec![("ptb_sent", 1), ("drop:mtu_exceeded", 1)],
        },
        Case {
            desc: "l2-dsr adds nothing: 1500 bytes fit",
            output: Some(dsr(&fits_dsr[14..])),
            input: fits_dsr,
            verdict: fwd(),
            counters: vec![],
        },
    ]
}

#[test]
fn golden_forwarding() {
    run(forwarding_cases());
}

#[test]
fn golden_classification() {
    run(classification_cases());
}

#[test]
fn golden_replies() {
    run(reply_cases());
}

#[test]
fn golden_malformed() {
    run(malformed_cases());
}

#[test]
fn golden_fragments_and_icmp() {
    run(fragment_and_icmp_cases());
}

/// Frames the NIC checked (rx offload, `Frame::ipv4_checksum_good`): its word replaces the
/// header sum on the fast path, and only there.
fn nic_checked_cases() -> Vec<Case> {
    let syn = tcp4(CLIENT4, VIP4, 40000, 80, Tcp::Syn, b"");
    let ack = tcp4(CLIENT4, VIP4, 40000, 80, Tcp::Ack, b"hello");
    let wrong = with(ack.clone(), |p| p[24] ^= 0xff);
    // IPv4 options (four bytes: NOP NOP NOP EOL) take the general parser, which always sums.
    let options = with(wrong.clone(), |p| {
        p[14] = 0x46;
        p.splice(34..34, [1, 1, 1, 0]);
        let total = u16::from_be_bytes([p[16], p[17]]) + 4;
        p[16..18].copy_from_slice(&total.to_be_bytes());
    });
    vec![
        Case {
            desc: "NIC-checked tcp4 SYN: as without the flag",
            output: Some(ipip4(&syn[14..], b4(11))),
            input: syn,
            verdict: fwd(),
            counters: vec![("forwarded", 1), ("flows_created", 1), ("backend:100", 1)],
        },
        Case {
            desc: "header checksum wrong but NIC-checked: trusted, forwarded as it came",
            output: Some(ipip4(&wrong[14..], b4(11))),
            input: wrong,
            verdict: fwd(),
            counters: vec![("forwarded", 1), ("flows_created", 0), ("backend:100", 1)],
        },
        Case {
            desc: "NIC-checked but with IPv4 options: summed in software, dropped",
            input: options,
            verdict: drop(DropReason::BadChecksum),
            output: None,
            counters: vec![],
        },
    ]
}

#[test]
fn golden_nic_checked_checksum() {
    run_with(
        &snapshot(),
        &PipelineConfig::default(),
        nic_checked_cases(),
        true,
    );
}

/// The burst path reads the flag too: the same frames in one burst give the same answers.
#[test]
fn nic_checked_checksum_in_a_burst() {
    let cases = nic_checked_cases();
    let snap = snapshot();
    let mut p = Pipeline::new(&PipelineConfig::default());
    let mut bufs: Vec<Vec<u8>> = cases.iter().map(|c| buffer(&c.input)).collect();
    let mut frames: Vec<_> = bufs
        .iter_mut()
        .zip(&cases)
        .map(|(b, c)| {
            let mut f = frame(b, c.input.len());
            f.ipv4_checksum_good = true;
            f
        })
        .collect();
    let mut verdicts = vec![Verdict::ToControl; frames.len()];
    p.process_burst(&mut frames, PORT, &snap, 1_000_000, &mut verdicts);
    for ((c, f), v) in cases.iter().zip(&frames).zip(&verdicts) {
        assert_eq!(*v, c.verdict, "{}", c.desc);
        if let Some(out) = &c.output {
            assert_eq!(f.data(), &out[..], "{}", c.desc);
        }
    }
}

/// What the host's kernel is sent when the interface has an exception path; without one the
/// same frames are the drops they always were.
fn exception_cases() -> Vec<Case> {
    let bgp = tcp4(LINK_CLIENT4, OUR4, 40000, 179, Tcp::Syn, &[]);
    let bfd = udp4(LINK_CLIENT4, OUR4, 49152, 3784, &[1, 2, 3, 4]);
    let ssh6 = tcp6(LINK_CLIENT6, OUR6, 40000, 22, Tcp::Syn, &[]);
    let mut timestamp = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUR_MAC)
        .ipv4(LINK_CLIENT4, OUR4, 64)
        .icmpv4(Icmpv4Type::TimestampRequest(
            etherparse::icmpv4::TimestampMessage {
                id: 1,
                seq: 1,
                originate_timestamp: 0,
                receive_timestamp: 0,
                transmit_timestamp: 0,
            },
        ))
        .write(&mut timestamp, &[])
        .unwrap();
    let link_local = {
        let mut t = [0u8; 16];
        t[0] = 0xfe;
        t[1] = 0x80;
        t[15] = 0x10;
        t
    };
    let to_kernel = |desc, input: Vec<u8>| Case {
        desc,
        output: Some(input.clone()),
        input,
        verdict: Verdict::ToKernel,
        counters: vec![("to_kernel", 1), ("forwarded", 0)],
    };
    vec![
        to_kernel("BGP SYN to our IPv4 address: the kernel's, untouched", bgp),
        to_kernel("BFD (UDP 3784) to our IPv4 address", bfd),
        to_kernel("SSH SYN to our IPv6 address", ssh6),
        to_kernel("ICMP timestamp request to our address", timestamp),
        to_kernel(
            "neighbour solicitation for the kernel's link-local address",
            solicit(link_local),
        ),
        Case {
            desc: "echo request to our address: still answered here",
            input: echo4(LINK_CLIENT4, OUR4, 64),
            verdict: reply(),
            output: None,
            counters: vec![("replies", 1), ("to_kernel", 0)],
        },
        Case {
            desc: "ARP reply: to control, and to the kernel for its own neighbour table",
            input: arp(
                2,
                CLIENT_MAC,
                LINK_CLIENT4,
                OUR_MAC,
                OUR4,
                OUR_MAC,
                CLIENT_MAC,
            ),
            verdict: Verdict::ToControlAndKernel,
            output: None,
            counters: vec![("to_control", 1), ("to_kernel", 1)],
        },
        Case {
            desc: "TCP to an address that is neither ours nor a VIP: dropped, not the kernel's",
            input: tcp4(LINK_CLIENT4, [192, 0, 2, 77], 40000, 179, Tcp::Syn, &[]),
            verdict: drop(DropReason::NotVip),
            output: None,
            counters: vec![("to_kernel", 0)],
        },
        Case {
            desc: "a VIP's SYN is forwarded as before",
            input: tcp4(CLIENT4, VIP4, 40001, 80, Tcp::Syn, &[]),
            verdict: fwd(),
            output: None,
            counters: vec![("forwarded", 1), ("to_kernel", 0)],
        },
    ]
}

fn kernel_snapshot() -> dataplane::Snapshot {
    let mut b = dataplane::SnapshotBuilder::new().interface(dataplane::InterfaceSpec {
        kernel: true,
        ..interface()
    });
    for s in services() {
        b = b.service(spec(s));
    }
    b.build().unwrap()
}

#[test]
fn golden_exception_path() {
    run_on(
        &kernel_snapshot(),
        &PipelineConfig::default(),
        exception_cases(),
    );
}

/// An exception case for the kernel as the drop it is where there is no exception path.
fn dropped_without_kernel(c: Case) -> Case {
    Case {
        verdict: drop(match c.desc {
            "ICMP timestamp request to our address" => DropReason::IcmpUnsupported,
            d if d.starts_with("neighbour solicitation") => DropReason::NdNotOurs,
            _ => DropReason::NotVip,
        }),
        output: None,
        counters: vec![("to_kernel", 0)],
        ..c
    }
}

#[test]
fn without_an_exception_path_the_hosts_frames_are_dropped_as_before() {
    let cases = exception_cases()
        .into_iter()
        .map(|c| match c.verdict {
            Verdict::ToKernel => dropped_without_kernel(c),
            Verdict::ToControlAndKernel => Case {
                verdict: Verdict::ToControl,
                counters: vec![("to_control", 1), ("to_kernel", 0)],
                ..c
            },
            _ => c,
        })
        .collect();
    run(cases);
}

/// The host's frames arriving on an interface without an exception path, while another
/// interface (holding those addresses) has one: dropped as where there is none, never
/// handed to a kernel path the in-port's worker does not have.
#[test]
fn the_hosts_frames_on_an_interface_without_an_exception_path_are_dropped() {
    let mut b = dataplane::SnapshotBuilder::new()
        .interface(dataplane::InterfaceSpec {
            ipv4: Some(([192, 0, 2, 200].into(), 24)),
            ipv6: Some((v6(0, 0x99).into(), 64)),
            ..interface()
        })
        .interface(dataplane::InterfaceSpec {
            port: PORT + 1,
            mac: DSR_MAC,
            kernel: true,
            ..interface()
        });
    for s in services() {
        b = b.service(spec(s));
    }
    let cases = exception_cases()
        .into_iter()
        .filter(|c| c.verdict == Verdict::ToKernel)
        .map(dropped_without_kernel)
        .map(|c| match c.desc {
            // Not this interface's address, so not an ICMP message to us at all.
            "ICMP timestamp request to our address" => Case {
                verdict: drop(DropReason::NotVip),
                ..c
            },
            _ => c,
        })
        .collect();
    run_on(&b.build().unwrap(), &PipelineConfig::default(), cases);
}

#[test]
fn the_kernel_gets_no_more_than_its_rate() {
    let cfg = PipelineConfig {
        exception_per_second: 10,
        ..PipelineConfig::default()
    };
    let mut p = Pipeline::new(&cfg);
    let snap = kernel_snapshot();
    let pkt = udp4(LINK_CLIENT4, OUR4, 49152, 3784, &[1]);
    let mut verdicts = Vec::new();
    // 50 frames within one millisecond: the bucket's burst (a tenth of a second: 1) passes.
    for i in 0..50u64 {
        let mut buf = buffer(&pkt);
        let mut f = frame(&mut buf, pkt.len());
        verdicts.push(p.process(&mut f, PORT, &snap, 1_000_000 + i * 1_000));
    }
    let passed = verdicts.iter().filter(|v| **v == Verdict::ToKernel).count();
    assert_eq!(passed, 1, "{verdicts:?}");
    assert_eq!(p.counters().dropped(DropReason::ExceptionRateLimited), 49);
    // A second later the bucket has refilled (to its burst).
    let mut buf = buffer(&pkt);
    let mut f = frame(&mut buf, pkt.len());
    assert_eq!(
        p.process(&mut f, PORT, &snap, 1_001_000_000),
        Verdict::ToKernel
    );
    assert_eq!(p.counters().to_kernel, 2);
}

/// Writes every golden input as a fuzz seed (`dataplane/fuzz/corpus/process/seed-*`) when
/// SLUICE_WRITE_SEEDS is set; otherwise checks each seed file exists and matches.
#[test]
fn fuzz_seeds_match_golden_inputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/process");
    let all = [
        forwarding_cases(),
        classification_cases(),
        reply_cases(),
        malformed_cases(),
        fragment_and_icmp_cases(),
        exception_cases(),
    ];
    let write = std::env::var_os("SLUICE_WRITE_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (n, case) in all.iter().flatten().enumerate() {
        let path = dir.join(format!("seed-{n:03}"));
        if write {
            std::fs::write(&path, &case.input).unwrap();
        } else {
            assert_eq!(
                std::fs::read(&path).unwrap_or_default(),
                case.input,
                "{} (rerun with SLUICE_WRITE_SEEDS=1)",
                path.display()
            );
        }
        dataplane::fuzzing::fuzz_process(&case.input);
    }
}
