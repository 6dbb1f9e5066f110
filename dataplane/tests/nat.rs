//! nat/fullnat golden packet tests: each case is a description, an input frame (etherparse),
//! the expected verdict, the expected output bytes (built independently with etherparse,
//! their checksums also verified by summing from scratch), then the counters it moves.
//! Cases run in order through one pipeline: replies follow the packet that made their
//! connection. A fullnat port is learned from the forward output (its choice is the
//! pipeline's), then used by later cases.

mod common;

use std::collections::HashMap;

use common::nat::*;
use common::*;
use dataplane::{DropReason, FlowConfig, Pipeline, PipelineConfig, Verdict};

/// Learned fullnat ports, by service id.
type Ctx = HashMap<u32, u16>;
type Build = Box<dyn Fn(&Ctx) -> Vec<u8>>;

struct Case {
    desc: String,
    snap: DrainState,
    port: u16,
    input: Build,
    verdict: Verdict,
    /// Learn the output's source port as this service's fullnat port, before `output`.
    learn: Option<u32>,
    output: Option<Build>,
    counters: Vec<(&'static str, u64)>,
}

fn config() -> PipelineConfig {
    PipelineConfig {
        flows: FlowConfig {
            capacity: 4096,
            ..FlowConfig::default()
        },
        nat: true,
        ..PipelineConfig::default()
    }
}

/// Runs the cases in order; returns their inputs (fuzz seeds).
fn run(p: &mut Pipeline, cases: Vec<Case>) -> Vec<Vec<u8>> {
    let mut inputs = Vec::new();
    let snaps: Vec<(DrainState, dataplane::Snapshot)> =
        [DrainState::Normal, DrainState::Drained, DrainState::Down]
            .into_iter()
            .map(|d| (d, nat_snapshot(d)))
            .collect();
    let mut ctx = Ctx::new();
    for (i, case) in cases.into_iter().enumerate() {
        let snap = &snaps.iter().find(|(d, _)| *d == case.snap).unwrap().1;
        let before = p.counters().clone();
        let input = (case.input)(&ctx);
        inputs.push(input.clone());
        let mut buf = buffer(&input);
        let mut f = frame(&mut buf, input.len());
        let v = p.process(&mut f, case.port, snap, (i as u64 + 1) * 1_000_000);
        assert_eq!(v, case.verdict, "case {:?}: verdict", case.desc);
        if let Some(id) = case.learn {
            let (lport, _) = ports(f.data());
            assert!(lport >= 1024, "case {:?}: fullnat port {lport}", case.desc);
            ctx.insert(id, lport);
        }
        if let Some(out) = &case.output {
            let want = out(&ctx);
            assert_eq!(f.data(), &want[..], "case {:?}: output bytes", case.desc);
            verify_checksums(f.data())
                .unwrap_or_else(|e| panic!("case {:?}: output {e}", case.desc));
        }
        let after = p.counters();
        let drops = after.dropped_total() - before.dropped_total();
        let expected = match v {
            Verdict::Drop(r) => {
                assert_eq!(after.dropped(r) - before.dropped(r), 1, "{:?}", case.desc);
                1
            }
            _ => 0,
        };
        assert_eq!(drops, expected, "case {:?}: total drops", case.desc);
        assert_deltas(&before, after, &case.counters, &case.desc);
    }
    inputs
}

fn to_backends() -> Verdict {
    Verdict::Forward { port: BE_PORT }
}

fn to_clients() -> Verdict {
    Verdict::Forward { port: PORT }
}

fn drop(r: DropReason) -> Verdict {
    Verdict::Drop(r)
}

const PAYLOAD: &[u8] = b"hello, backend";

/// One connection's addresses: client, VIP, backend and (fullnat) local address.
#[derive(Clone, Copy)]
struct Conn {
    svc: u32,
    client: [u8; 16],
    cport: u16,
    vip: [u8; 16],
    vport: u16,
    backend: [u8; 16],
    bport: u16,
    /// fullnat: the local address (the port is learned).
    local: Option<[u8; 16]>,
    tcp: bool,
}

impl Conn {
    fn l4(&self, f: Tcp) -> L4 {
        if self.tcp {
            L4::Tcp(f)
        } else {
            L4::Udp
        }
    }

    /// The backend side's view of the client: (address, port).
    fn inside(&self, ctx: &Ctx) -> ([u8; 16], u16) {
        match self.local {
            Some(l) => (l, ctx[&self.svc]),
            None => (self.client, self.cport),
        }
    }

    /// The client's packet as it arrives.
    fn client_pkt(&self, ttl: u8, f: Tcp) -> Hdr {
        Hdr {
            smac: ROUTER_MAC,
            dmac: OUR_MAC,
            src: self.client,
            dst: self.vip,
            ttl,
            sport: self.cport,
            dport: self.vport,
            l4: self.l4(f),
        }
    }

    /// The client's packet as the backend gets it.
    fn at_backend(&self, ctx: &Ctx, f: Tcp) -> Hdr {
        let (src, sport) = self.inside(ctx);
        Hdr {
            smac: BE_IF_MAC,
            dmac: BE_GW_MAC,
            src,
            dst: self.backend,
            ttl: 63,
            sport,
            dport: self.bport,
            l4: self.l4(f),
        }
    }

    /// The backend's reply as it arrives.
    fn reply(&self, ctx: &Ctx, ttl: u8) -> Hdr {
        let (dst, dport) = self.inside(ctx);
        Hdr {
            smac: BE_GW_MAC,
            dmac: BE_IF_MAC,
            src: self.backend,
            dst,
            ttl,
            sport: self.bport,
            dport,
            l4: self.l4(Tcp::Ack),
        }
    }

    /// The reply as the client gets it.
    fn at_client(&self) -> Hdr {
        Hdr {
            smac: OUR_MAC,
            dmac: ROUTER_MAC,
            src: self.vip,
            dst: self.client,
            ttl: 63,
            sport: self.vport,
            dport: self.cport,
            l4: self.l4(Tcp::Ack),
        }
    }
}

/// The connections of the nat services: every mode, family and protocol.
fn conns() -> Vec<Conn> {
    let c4 = m4(CLIENT4);
    nat_services()
        .into_iter()
        .filter(|s| s.0 != DRAIN)
        .enumerate()
        .map(|(i, (svc, vip, vport, proto, fwd, backend, bport))| {
            let v6 = vip.is_ipv6();
            let addr = |a: std::net::IpAddr| match a {
                std::net::IpAddr::V4(a) => m4(a.octets()),
                std::net::IpAddr::V6(a) => a.octets(),
            };
            Conn {
                svc,
                client: if v6 { CLIENT6 } else { c4 },
                cport: 40_000 + i as u16,
                vip: addr(vip),
                vport,
                backend: addr(backend),
                bport: if bport == 0 { vport } else { bport },
                local: (fwd == dataplane::Forwarding::FullNat).then(|| {
                    if v6 {
                        LOCAL6
                    } else {
                        m4(LOCAL4)
                    }
                }),
                tcp: proto == dataplane::Proto::Tcp,
            }
        })
        .collect()
}

fn name(c: &Conn) -> String {
    format!(
        "{} {} {}",
        if c.local.is_some() { "fullnat" } else { "nat" },
        if is_v4(&c.vip) { "IPv4" } else { "IPv6" },
        if c.tcp { "TCP" } else { "UDP" }
    )
}

fn is_v4(a: &[u8; 16]) -> bool {
    a[..12] == m4([0, 0, 0, 0])[..12]
}

/// A connection's life: first packet, the reply, a later packet on the same entry.
fn connection_cases(c: Conn) -> Vec<Case> {
    let n = name(&c);
    let svc = c.svc;
    let first = if c.tcp { Tcp::Syn } else { Tcp::Ack };
    vec![
        Case {
            desc: format!("{n}: the first packet makes a connection (two entries)"),
            snap: DrainState::Normal,
            port: PORT,
            input: Box::new(move |_| build(&c.client_pkt(64, first), PAYLOAD)),
            verdict: to_backends(),
            learn: c.local.map(|_| svc),
            output: Some(Box::new(move |ctx| {
                build(&c.at_backend(ctx, first), PAYLOAD)
            })),
            counters: vec![
                ("flows_created", 2),
                ("forwarded", 1),
                ("nat_replies", 0),
                (leak(format!("service:{svc}")), 1),
                (leak(format!("backend:{}", backend_id(svc, 0))), 1),
            ],
        },
        Case {
            desc: format!("{n}: the backend's reply goes back to the client's router"),
            snap: DrainState::Normal,
            port: BE_PORT,
            input: Box::new(move |ctx| build(&c.reply(ctx, 64), PAYLOAD)),
            verdict: to_clients(),
            learn: None,
            output: Some(Box::new(move |_| build(&c.at_client(), PAYLOAD))),
            counters: vec![
                ("flows_created", 0),
                ("forwarded", 1),
                ("nat_replies", 1),
                (leak(format!("service:{svc}")), 0),
            ],
        },
        Case {
            desc: format!("{n}: a later client packet follows the connection"),
            snap: DrainState::Normal,
            port: PORT,
            input: Box::new(move |_| build(&c.client_pkt(64, Tcp::Ack), PAYLOAD)),
            verdict: to_backends(),
            learn: None,
            output: Some(Box::new(move |ctx| {
                build(&c.at_backend(ctx, Tcp::Ack), PAYLOAD)
            })),
            counters: vec![
                ("flows_created", 0),
                ("flows_rehashed", 0),
                (leak(format!("service:{svc}")), 1),
            ],
        },
        Case {
            desc: format!("{n}: a reply arriving with TTL 1 is not forwarded"),
            snap: DrainState::Normal,
            port: BE_PORT,
            input: Box::new(move |ctx| build(&c.reply(ctx, 1), PAYLOAD)),
            verdict: drop(DropReason::TtlExceeded),
            learn: None,
            output: None,
            counters: vec![("nat_replies", 0)],
        },
    ]
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// An ICMP error from the client side about a reply (quoting VIP -> client): to the backend,
/// quoting what the backend sent.
fn icmp_from_client(c: Conn, quote_len: usize) -> Case {
    Case {
        desc: format!("{}: the client's ICMP error about a reply", name(&c)),
        snap: DrainState::Normal,
        port: PORT,
        input: Box::new(move |_| {
            let q = ip_packet(&c.at_client(), PAYLOAD);
            port_unreachable((ROUTER_MAC, OUR_MAC), c.client, c.vip, 64, &q, quote_len)
        }),
        verdict: to_backends(),
        learn: None,
        output: Some(Box::new(move |ctx| {
            let mut sent = c.reply(ctx, 64);
            sent.ttl = 63;
            let q = ip_packet(&sent, PAYLOAD);
            let (src, _) = c.inside(ctx);
            port_unreachable((BE_IF_MAC, BE_GW_MAC), src, c.backend, 63, &q, quote_len)
        })),
        counters: vec![("forwarded", 1), ("nat_replies", 0)],
    }
}

/// An ICMP error from the backend side (the backend itself, or `router`) about a packet we
/// translated: to the client, quoting client -> VIP.
fn icmp_from_backend(c: Conn, router: Option<[u8; 16]>, quote_len: usize) -> Case {
    Case {
        desc: format!(
            "{}: an ICMP error from {} about a translated packet",
            name(&c),
            if router.is_some() {
                "a router"
            } else {
                "the backend"
            }
        ),
        snap: DrainState::Normal,
        port: BE_PORT,
        input: Box::new(move |ctx| {
            let q = ip_packet(&c.at_backend(ctx, Tcp::Ack), PAYLOAD);
            let (dst, _) = c.inside(ctx);
            let src = router.unwrap_or(c.backend);
            port_unreachable((BE_GW_MAC, BE_IF_MAC), src, dst, 64, &q, quote_len)
        }),
        verdict: to_clients(),
        learn: None,
        output: Some(Box::new(move |_| {
            let mut sent = c.client_pkt(63, Tcp::Ack);
            sent.ttl = 63;
            let q = ip_packet(&sent, PAYLOAD);
            let src = router.unwrap_or(c.vip);
            port_unreachable((OUR_MAC, ROUTER_MAC), src, c.client, 63, &q, quote_len)
        })),
        counters: vec![("forwarded", 1), ("nat_replies", 1)],
    }
}

fn find(conns: &[Conn], svc: u32) -> Conn {
    *conns.iter().find(|c| c.svc == svc).unwrap()
}

fn both_ways_cases() -> Vec<Case> {
    let conns = conns();
    let mut cases = Vec::new();
    for &c in &conns {
        cases.extend(connection_cases(c));
    }
    // The quote of an IPv4 error is often the header and 8 bytes (RFC 792): no TCP checksum.
    cases.push(icmp_from_client(find(&conns, NAT_TCP4), 28));
    cases.push(icmp_from_client(find(&conns, FULL_TCP4), 200));
    cases.push(icmp_from_client(find(&conns, NAT_TCP6), 200));
    cases.push(icmp_from_client(find(&conns, FULL_TCP6), 200));
    cases.push(icmp_from_backend(find(&conns, FULL_UDP4), None, 28));
    cases.push(icmp_from_backend(find(&conns, NAT_UDP4), None, 200));
    cases.push(icmp_from_backend(
        find(&conns, NAT_UDP4),
        Some(m4([192, 0, 2, 254])),
        200,
    ));
    cases.push(icmp_from_backend(find(&conns, NAT_UDP6), None, 200));
    cases.push(icmp_from_backend(find(&conns, FULL_UDP6), None, 200));
    let nat4 = find(&conns, NAT_UDP4);
    let full4 = find(&conns, FULL_UDP4);
    cases.extend([
        Case {
            desc: "a client packet arriving with TTL 1".into(),
            snap: DrainState::Normal,
            port: PORT,
            input: Box::new(move |_| build(&nat4.client_pkt(1, Tcp::Ack), PAYLOAD)),
            verdict: drop(DropReason::TtlExceeded),
            learn: None,
            output: None,
            counters: vec![("flows_created", 0)],
        },
        Case {
            desc: "a reply no connection expects (nat: to a client port never used)".into(),
            snap: DrainState::Normal,
            port: BE_PORT,
            input: Box::new(move |ctx| {
                let mut r = nat4.reply(ctx, 64);
                r.dport = 1;
                build(&r, PAYLOAD)
            }),
            verdict: drop(DropReason::NotVip),
            learn: None,
            output: None,
            counters: vec![("nat_replies", 0)],
        },
        Case {
            desc: "a reply no connection expects (fullnat: a local port never used)".into(),
            snap: DrainState::Normal,
            port: BE_PORT,
            input: Box::new(move |ctx| {
                let mut r = full4.reply(ctx, 64);
                r.dport = r.dport.wrapping_add(1).max(1024);
                build(&r, PAYLOAD)
            }),
            verdict: drop(DropReason::NotVip),
            learn: None,
            output: None,
            counters: vec![("nat_replies", 0)],
        },
        Case {
            desc: "a fragment to a nat VIP cannot be translated".into(),
            snap: DrainState::Normal,
            port: PORT,
            input: Box::new(move |_| {
                more_fragments(build(&nat4.client_pkt(64, Tcp::Ack), PAYLOAD))
            }),
            verdict: drop(DropReason::NatFragment),
            learn: None,
            output: None,
            counters: vec![("flows_created", 0)],
        },
        Case {
            desc: "a fragment to a local address cannot be translated".into(),
            snap: DrainState::Normal,
            port: BE_PORT,
            input: Box::new(move |ctx| more_fragments(build(&full4.reply(ctx, 64), PAYLOAD))),
            verdict: drop(DropReason::NatFragment),
            learn: None,
            output: None,
            counters: vec![("nat_replies", 0)],
        },
        Case {
            desc: "ARP for a local address is answered (the appliance owns it)".into(),
            snap: DrainState::Normal,
            port: BE_PORT,
            input: Box::new(|_| arp_request(BE_GW_MAC, be4(140), LOCAL4)),
            verdict: Verdict::Reply { port: BE_PORT },
            learn: None,
            output: None,
            counters: vec![("replies", 1)],
        },
    ]);
    cases
}

#[test]
fn nat_and_fullnat_connections_both_ways() {
    let mut p = Pipeline::new(&config());
    run(&mut p, both_ways_cases());
    let mut gauge = hashbrown::HashMap::new();
    p.nat_ports_in_use_into(&mut gauge);
    // One fullnat connection per service, each family's local address shared by two.
    assert_eq!(gauge.get(&a4(LOCAL4)), Some(&2));
    assert_eq!(gauge.get(&a6(LOCAL6)), Some(&2));
}

/// Sets IPv4 MF on a frame and fixes its header checksum.
fn more_fragments(mut f: Vec<u8>) -> Vec<u8> {
    f[14 + 6] |= 0x20;
    f[14 + 10] = 0;
    f[14 + 11] = 0;
    let mut sum: u32 = f[14..34]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f
}

fn arp_request(sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut v = eth([0xff; 6], sha, etherparse::EtherType::ARP);
    v.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    v.extend_from_slice(&sha);
    v.extend_from_slice(&spa);
    v.extend_from_slice(&[0; 6]);
    v.extend_from_slice(&tpa);
    v
}

/// Service DRAIN's connection: kept while its backend drains, remapped (here: to nothing)
/// once it is down, its reverse entry gone with the old mapping.
#[test]
fn a_drained_backend_keeps_its_connections_a_down_one_loses_them() {
    let c = Conn {
        svc: DRAIN,
        client: m4(CLIENT4),
        cport: 41_000,
        vip: m4(VIP4_DRAIN),
        vport: 80,
        backend: m4(be4(150)),
        bport: 80,
        local: None,
        tcp: true,
    };
    let mut other = c;
    other.cport = 41_001;
    let cases = vec![
        Case {
            desc: "a connection is made".into(),
            snap: DrainState::Normal,
            port: PORT,
            input: Box::new(move |_| build(&c.client_pkt(64, Tcp::Syn), PAYLOAD)),
            verdict: to_backends(),
            learn: None,
            output: Some(Box::new(move |ctx| {
                build(&c.at_backend(ctx, Tcp::Syn), PAYLOAD)
            })),
            counters: vec![("flows_created", 2)],
        },
        Case {
            desc: "drained: the connection goes on".into(),
            snap: DrainState::Drained,
            port: PORT,
            input: Box::new(move |_| build(&c.client_pkt(64, Tcp::Ack), PAYLOAD)),
            verdict: to_backends(),
            learn: None,
            output: Some(Box::new(move |ctx| {
                build(&c.at_backend(ctx, Tcp::Ack), PAYLOAD)
            })),
            counters: vec![("flows_created", 0), ("flows_rehashed", 0)],
        },
        Case {
            desc: "drained: its replies too".into(),
            snap: DrainState::Drained,
            port: BE_PORT,
            input: Box::new(move |ctx| build(&c.reply(ctx, 64), PAYLOAD)),
            verdict: to_clients(),
            learn: None,
            output: Some(Box::new(move |_| build(&c.at_client(), PAYLOAD))),
            counters: vec![("nat_replies", 1)],
        },
        Case {
            desc: "drained: a new connection has no backend".into(),
            snap: DrainState::Drained,
            port: PORT,
            input: Box::new(move |_| build(&other.client_pkt(64, Tcp::Syn), PAYLOAD)),
            verdict: drop(DropReason::NoBackend),
            learn: None,
            output: None,
            counters: vec![("flows_created", 0)],
        },
        Case {
            desc: "down: the connection is remapped, and no backend is left".into(),
            snap: DrainState::Down,
            port: PORT,
            input: Box::new(move |_| build(&c.client_pkt(64, Tcp::Ack), PAYLOAD)),
            verdict: drop(DropReason::NoBackend),
            learn: None,
            output: None,
            counters: vec![("flows_rehashed", 1)],
        },
        Case {
            desc: "down: the old mapping's reverse entry went with it".into(),
            snap: DrainState::Down,
            port: BE_PORT,
            input: Box::new(move |ctx| build(&c.reply(ctx, 64), PAYLOAD)),
            verdict: drop(DropReason::NotVip),
            learn: None,
            output: None,
            counters: vec![("nat_replies", 0)],
        },
    ];
    run(&mut Pipeline::new(&config()), cases);
}

/// With two ports in the range, the third connection to one backend port is refused; a
/// connection to another backend port shares the ports (its reverse keys differ).
#[test]
fn fullnat_ports_run_out_and_are_counted() {
    let base = Conn {
        svc: FULL_UDP4,
        client: m4(CLIENT4),
        cport: 0,
        vip: m4(VIP4_FULL),
        vport: 53,
        backend: m4(be4(143)),
        bport: 5353,
        local: Some(m4(LOCAL4)),
        tcp: false,
    };
    let conn = |cport: u16| Conn { cport, ..base };
    let mut cases: Vec<Case> = (0..2)
        .map(|i| {
            let c = conn(42_000 + i);
            Case {
                desc: format!("connection {i} gets a port"),
                snap: DrainState::Normal,
                port: PORT,
                input: Box::new(move |_| build(&c.client_pkt(64, Tcp::Ack), PAYLOAD)),
                verdict: to_backends(),
                learn: Some(1000 + u32::from(i)),
                output: Some(Box::new(move |ctx| {
                    let mut h = c.at_backend(
                        &HashMap::from([(c.svc, ctx[&(1000 + u32::from(i))])]),
                        Tcp::Ack,
                    );
                    h.sport = ctx[&(1000 + u32::from(i))];
                    build(&h, PAYLOAD)
                })),
                counters: vec![("flows_created", 2), ("nat_ports_exhausted", 0)],
            }
        })
        .collect();
    let third = conn(42_002);
    cases.push(Case {
        desc: "the third connection finds no free port".into(),
        snap: DrainState::Normal,
        port: PORT,
        input: Box::new(move |_| build(&third.client_pkt(64, Tcp::Ack), PAYLOAD)),
        verdict: drop(DropReason::NatPortsExhausted),
        learn: None,
        output: None,
        counters: vec![("flows_created", 0), ("nat_ports_exhausted", 1)],
    });
    let mut p = Pipeline::new(&config());
    p.set_nat_port_range(2000, 2001);
    run(&mut p, cases);
    let mut gauge = hashbrown::HashMap::new();
    p.nat_ports_in_use_into(&mut gauge);
    assert_eq!(gauge.get(&a4(LOCAL4)), Some(&2));
    assert_eq!(gauge.get(&a6(LOCAL6)), Some(&0));
}

/// No family translation; a fullnat backend needs a local address of its family; a local
/// address is the appliance's own, never a VIP.
#[test]
fn the_snapshot_refuses_what_nat_cannot_translate() {
    use dataplane::{SnapshotBuilder, SnapshotError};
    let build = |edit: &dyn Fn(&mut Vec<dataplane::ServiceSpec>)| {
        let mut specs: Vec<_> = nat_services()
            .into_iter()
            .map(|s| nat_spec(s, DrainState::Normal))
            .collect();
        edit(&mut specs);
        let mut b = SnapshotBuilder::new()
            .interface(interface())
            .interface(backend_port_interface());
        for s in specs {
            b = b.service(s);
        }
        b.build()
    };
    assert!(build(&|_| {}).is_ok());
    let mixed = build(&|s| s[0].backends[0].address = a6(be6(0x99)));
    assert!(
        matches!(mixed, Err(SnapshotError::NatFamilyMismatch { backend, .. }) if backend == backend_id(NAT_TCP4, 0)),
        "{mixed:?}"
    );
    let mixed_full = build(&|s| s[4].backends[0].address = a6(be6(0x99)));
    assert!(
        matches!(mixed_full, Err(SnapshotError::NatFamilyMismatch { .. })),
        "{mixed_full:?}"
    );
    let no_local = build(&|s| s[6].local_addresses = vec![a4(LOCAL4)]);
    assert!(
        matches!(
            no_local,
            Err(SnapshotError::NoLocalAddress { family: "IPv6", .. })
        ),
        "{no_local:?}"
    );
    let local_vip = build(&|s| s[5].local_addresses.push(a4(VIP4_NAT)));
    assert!(
        matches!(&local_vip, Err(SnapshotError::LocalAddressIsVip { address, .. }) if *address == a4(VIP4_NAT)),
        "{local_vip:?}"
    );
    // nat (not fullnat) ignores local addresses: they are fullnat's source pool.
    assert!(build(&|s| s[0].local_addresses = vec![a4(VIP4_NAT)]).is_ok());
}

/// Writes the inputs of the connection cases as fuzz seeds (`fuzz/corpus/process/seed-nat-*`;
/// the fuzz snapshot has nat services at these addresses) when SLUICE_WRITE_SEEDS is set;
/// otherwise checks each seed file exists and matches.
#[test]
fn nat_fuzz_seeds_match_golden_inputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/process");
    let inputs = run(&mut Pipeline::new(&config()), both_ways_cases());
    let write = std::env::var_os("SLUICE_WRITE_SEEDS").is_some();
    for (n, input) in inputs.iter().enumerate() {
        let path = dir.join(format!("seed-nat-{n:03}"));
        if write {
            std::fs::write(&path, input).unwrap();
        } else {
            assert_eq!(
                std::fs::read(&path).unwrap_or_default(),
                *input,
                "{} (rerun with SLUICE_WRITE_SEEDS=1)",
                path.display()
            );
        }
        dataplane::fuzzing::fuzz_process(input);
    }
}

/// A burst answers as the same packets one by one, for nat and fullnat connections in both
/// directions (only the burst path prefetches a connection's other direction, from the side
/// record its hint names).
#[test]
fn a_burst_answers_as_one_by_one() {
    let snap = nat_snapshot(DrainState::Normal);
    let now = 1_000_000;
    let forwards: Vec<Vec<u8>> = [VIP4_NAT, VIP4_FULL]
        .iter()
        .flat_map(|&vip| {
            (0..12u16).flat_map(move |i| {
                [Tcp::Syn, Tcp::Ack, Tcp::Ack]
                    .map(|f| tcp4([203, 0, 113, 1 + i as u8], vip, 40_000 + i, 80, f, b"q"))
            })
        })
        .collect();
    let mut one = Pipeline::new(&config());
    let out = each(&mut one, &snap, &forwards, PORT, now);
    assert!(out
        .iter()
        .all(|(v, _)| *v == Verdict::Forward { port: BE_PORT }));
    let replies = answers(&out);
    let back = each(&mut one, &snap, &replies, BE_PORT, now);
    assert!(back
        .iter()
        .all(|(v, _)| *v == Verdict::Forward { port: PORT }));
    let mut many = Pipeline::new(&config());
    assert_eq!(burst(&mut many, &snap, &forwards, PORT, now), out);
    assert_eq!(burst(&mut many, &snap, &replies, BE_PORT, now), back);
    assert_eq!(one.counters(), many.counters());
    assert_eq!(one.counters().nat_replies, replies.len() as u64);
}

#[test]
fn connections_opened_inside_a_burst_are_whole() {
    // A burst opens connections whose reverse entries go in at its end: a SYN sent twice,
    // then an ACK, in the same burst (nat and fullnat); five UDP flows opened together (their
    // reverse entries all waiting) for four fullnat ports, the fifth refused as one by one, and
    // then a second packet of each.
    let snap = nat_snapshot(DrainState::Normal);
    let now = 1_000_000;
    let mut pkts = Vec::new();
    for (i, vip) in [VIP4_NAT, VIP4_FULL].into_iter().enumerate() {
        let c = [203, 0, 113, 10 + i as u8];
        for f in [Tcp::Syn, Tcp::Syn, Tcp::Ack] {
            pkts.push(tcp4(c, vip, 40_000, 80, f, b"q"));
        }
    }
    for i in [0u16, 1, 2, 3, 4, 0, 1, 2, 3, 4] {
        pkts.push(udp4([203, 0, 113, 20], VIP4_FULL, 41_000 + i, 53, b"q"));
    }
    assert!(pkts.len() <= 32, "one burst");
    let pipeline = || {
        let mut p = Pipeline::new(&config());
        p.set_nat_port_range(2000, 2003);
        p
    };
    let mut one = pipeline();
    let out = each(&mut one, &snap, &pkts, PORT, now);
    let exhausted = drop(DropReason::NatPortsExhausted);
    assert_eq!(out.iter().filter(|(v, _)| *v == exhausted).count(), 2);
    let udp_ports: std::collections::HashSet<u16> = out[6..]
        .iter()
        .filter(|(v, _)| *v == to_backends())
        .map(|(_, o)| ports(o).0)
        .collect();
    assert_eq!(udp_ports.len(), 4, "one port per UDP flow");
    let mut many = pipeline();
    assert_eq!(burst(&mut many, &snap, &pkts, PORT, now), out);
    assert_eq!(one.counters(), many.counters());
    // Ten seconds on, past the SYN timeout: each reverse entry was renewed by its
    // connection's ACK, in the burst as one by one, so every answer still finds its client.
    let later = now + 10_000_000_000;
    let replies = answers(&out);
    let back = each(&mut one, &snap, &replies, BE_PORT, later);
    assert!(back.iter().all(|(v, _)| *v == to_clients()), "{back:?}");
    assert_eq!(burst(&mut many, &snap, &replies, BE_PORT, later), back);
    assert_eq!(one.counters(), many.counters());
}

/// An ICMP error to the host (an address of an interface with an exception path) about the
/// host's own packet: its kernel's, on whichever worker it arrives, never steered to a worker
/// whose kernel path is another interface's.
#[test]
fn an_icmp_error_to_the_host_goes_to_its_kernel_from_every_worker() {
    let host = m4([192, 0, 2, 129]);
    let mut b = dataplane::SnapshotBuilder::new()
        .interface(interface())
        .interface(dataplane::InterfaceSpec {
            kernel: true,
            ..backend_port_interface()
        });
    for s in nat_services() {
        b = b.service(nat_spec(s, DrainState::Normal));
    }
    let snap = b.build().unwrap();
    for sport in 5000..5016 {
        let quote = ip_packet(
            &Hdr {
                smac: BE_IF_MAC,
                dmac: BE_GW_MAC,
                src: host,
                dst: m4([203, 0, 113, 99]),
                ttl: 64,
                sport,
                dport: 53,
                l4: L4::Udp,
            },
            PAYLOAD,
        );
        let input = port_unreachable(
            (BE_GW_MAC, BE_IF_MAC),
            m4([203, 0, 113, 99]),
            host,
            64,
            &quote,
            quote.len(),
        );
        for worker in 0..2 {
            let mut p = nat_pipeline(worker, 2);
            let mut buf = buffer(&input);
            let mut f = frame(&mut buf, input.len());
            let v = p.process(&mut f, BE_PORT, &snap, 1_000_000);
            assert_eq!(v, Verdict::ToKernel, "worker {worker}, port {sport}");
        }
    }
}
