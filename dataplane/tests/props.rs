//! Property tests: no input panics the pipeline or escapes its bounds, a flow stays on one
//! backend for its lifetime, and the flow table never answers wrongly under any operations.

mod common;

use common::*;
use dataplane::flow::FlowKey;
use dataplane::fuzzing::fuzz_process;
use dataplane::wire::tcp;
use dataplane::{FlowConfig, FlowTable, Pipeline, PipelineConfig, Verdict};
use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/process");
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("seed-"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzz_process(&data);
    }

    #[test]
    fn mutated_golden_packets_never_panic(
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let seeds = seeds();
        prop_assume!(!seeds.is_empty());
        let mut p = seeds[pick.index(seeds.len())].clone();
        for (at, b) in flips {
            let i = at.index(p.len());
            p[i] ^= b;
        }
        if do_cut {
            p.truncate(cut.index(p.len() + 1));
        }
        fuzz_process(&p);
    }

    #[test]
    fn a_flow_stays_on_one_backend(
        packets in proptest::collection::vec((0u8..8, 0u16..4, any::<bool>()), 1..200),
    ) {
        // Reloads that reshuffle the table come and go: only the flow table keeps a flow put.
        let snaps = [snapshot(), snapshot_reshuffled()];
        let mut p = Pipeline::new(&PipelineConfig {
            flows: FlowConfig { capacity: 4096, ..FlowConfig::default() },
            ptb_per_second: 1000,
            exception_per_second: 10_000,
            nat: false,
            ..PipelineConfig::default()
        });
        let mut backend_of = std::collections::HashMap::new();
        for (i, (client, sport, tcp)) in packets.into_iter().enumerate() {
            let snap = &snaps[i % 2];
            let src = [203, 0, 113, 100 + client];
            let pkt = if tcp {
                tcp4(src, VIP4_MULTI, 1000 + sport, 80, Tcp::Ack, b"")
            } else {
                udp4(src, VIP4_MULTI, 1000 + sport, 80, b"")
            };
            let mut buf = buffer(&pkt);
            let mut f = frame(&mut buf, pkt.len());
            let v = p.process(&mut f, PORT, snap, i as u64 * 1000);
            // Only UDP has a port-0 service on this VIP.
            if tcp {
                prop_assert!(matches!(v, Verdict::Drop(_)));
                continue;
            }
            prop_assert_eq!(v, Verdict::Forward { port: PORT });
            let dst: [u8; 4] = f.data()[30..34].try_into().unwrap();
            let prev = *backend_of.entry((client, sport)).or_insert(dst);
            prop_assert_eq!(prev, dst);
        }
    }
}

/// One flow-table operation on one of 48 keys (several share buckets in a 64-slot table):
/// store with TCP flags and a backend handle, look up (and record a packet with these flags),
/// or sweep.
#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u8, u32),
    Lookup(u8, Option<u8>),
    Sweep,
}

fn op() -> impl Strategy<Value = (u64, Op)> {
    // How far time moves first: mostly seconds, now and then up to ~3 h (past the coarse
    // expiry's 73-minute wrap).
    let dt = prop_oneof![8 => 0u64..50_000_000_000, 1 => 0u64..11_000_000_000_000];
    let flags = prop_oneof![
        Just(tcp::SYN),
        Just(tcp::ACK),
        Just(tcp::FIN | tcp::ACK),
        Just(tcp::RST)
    ];
    let op = prop_oneof![
        (0u8..48, flags.clone(), 0u32..6).prop_map(|(k, f, b)| Op::Insert(k, f, b)),
        (0u8..48, proptest::option::of(flags)).prop_map(|(k, f)| Op::Lookup(k, f)),
        Just(Op::Sweep),
    ];
    (dt, op)
}

fn flow_key(k: u8) -> FlowKey {
    let mut key = FlowKey {
        sport: 1000 + u16::from(k),
        dport: 80,
        proto: 6,
        ..FlowKey::default()
    };
    key.src[12..].copy_from_slice(&[203, 0, 113, k % 7]);
    key
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Against a model of what was stored: the table only ever returns a flow's latest
    /// backend before its expiry, finds what it just stored, and its counts add up. It may
    /// forget a live flow only by evicting it for room, which it counts: until it has, it
    /// finds every live flow (the sweep never removes one, whatever the idle gaps).
    #[test]
    fn the_flow_table_never_answers_wrongly(ops in proptest::collection::vec(op(), 1..400)) {
        let cfg = FlowConfig { capacity: 64, ..FlowConfig::default() };
        let ns = |d: std::time::Duration| d.as_nanos() as u64;
        // FIN or RST: closing, and closing stays; a bare SYN: half-open; else established.
        let timeout = |flags: u8, closing: bool| match flags {
            _ if closing || flags & (tcp::FIN | tcp::RST) != 0 => ns(cfg.tcp_closing_timeout),
            tcp::SYN => ns(cfg.tcp_syn_timeout),
            _ => ns(cfg.tcp_established_timeout),
        };
        let mut t = FlowTable::new(&cfg);
        // key -> (backend, expires, closing)
        let mut model = std::collections::HashMap::<u8, (u32, u64, bool)>::new();
        let mut now = 0u64;
        let mut inserts = 0u64;
        for (dt, op) in ops {
            now += dt;
            match op {
                Op::Insert(k, flags, b) => {
                    let key = flow_key(k);
                    t.insert(&key, key.hash(), b, flags, now);
                    inserts += 1;
                    let closing = flags & (tcp::FIN | tcp::RST) != 0;
                    model.insert(k, (b, now + timeout(flags, false), closing));
                    let slot = t.find(&key, key.hash(), now);
                    prop_assert!(slot.is_some(), "a flow just stored is not found");
                    prop_assert_eq!(t.backend(slot.unwrap()), b);
                }
                Op::Lookup(k, touch) => {
                    let key = flow_key(k);
                    let found = t.find(&key, key.hash(), now);
                    let Some(&(b, expires, closing)) = model.get(&k) else {
                        prop_assert!(found.is_none(), "a flow never stored");
                        continue;
                    };
                    if t.stats.evicted_capacity == 0 {
                        prop_assert_eq!(found.is_some(), expires > now, "flow {} at {}", k, now);
                    }
                    match (found, touch) {
                        (None, _) => {
                            model.remove(&k);
                        }
                        (Some(slot), flags) => {
                            prop_assert!(expires > now, "an expired flow was returned");
                            prop_assert_eq!(t.backend(slot), b);
                            if let Some(flags) = flags {
                                t.touch(slot, now, flags);
                                let closing = closing || flags & (tcp::FIN | tcp::RST) != 0;
                                model.insert(k, (b, now + timeout(flags, closing), closing));
                            }
                        }
                    }
                }
                Op::Sweep => t.sweep(now),
            }
            let counted: u64 = t.flows_per_backend().iter().sum();
            prop_assert_eq!(counted, t.len() as u64);
            prop_assert!(t.len() <= t.capacity());
            let s = t.stats;
            prop_assert_eq!(s.created, inserts);
            prop_assert!(s.evicted_timeout + s.evicted_capacity + t.len() as u64 <= inserts);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any client tuple through any nat/fullnat service, then the backend's reply to what
    /// it got: the client sees exactly the VIP answering, and every checksum verifies.
    #[test]
    fn nat_forward_then_reply_restores_the_clients_view(
        pick in 0usize..8,
        host in 1u16..0xff00,
        cport in 1u16..,
        syn in any::<bool>(),
        zero_checksum in any::<bool>(),
        ttl in 2u8..,
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        answer in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        use common::nat::*;
        let (_, vip, vport, proto, _, _, _) = nat_services()[pick];
        let snap = nat_snapshot(DrainState::Normal);
        let mut p = Pipeline::new(&PipelineConfig {
            flows: FlowConfig { capacity: 1024, ..FlowConfig::default() },
            nat: true,
            ..PipelineConfig::default()
        });
        let (client, vip) = match vip {
            std::net::IpAddr::V4(v) => (m4([203, 0, 113, host as u8]), m4(v.octets())),
            std::net::IpAddr::V6(v) => (v6(9, host), v.octets()),
        };
        let tcp = proto == dataplane::Proto::Tcp;
        let l4 = |f| if tcp { L4::Tcp(f) } else { L4::Udp };
        // IPv4 UDP may carry no checksum: it must stay none both ways.
        let zero = zero_checksum && !tcp && vip[..12] == m4([0; 4])[..12];
        let mut input = build(&Hdr {
            smac: ROUTER_MAC, dmac: OUR_MAC, src: client, dst: vip, ttl,
            sport: cport, dport: vport, l4: l4(if syn { Tcp::Syn } else { Tcp::Ack }),
        }, &payload);
        if zero {
            zero_udp_checksum(&mut input);
        }
        let mut buf = buffer(&input);
        let mut f = frame(&mut buf, input.len());
        prop_assert_eq!(p.process(&mut f, PORT, &snap, 1_000), Verdict::Forward { port: BE_PORT });
        let out = f.data().to_vec();
        prop_assert_eq!(verify_checksums(&out), Ok(()));
        prop_assert_eq!(out[14 + 8 - if vip[..12] == m4([0; 4])[..12] { 0 } else { 1 }], ttl - 1);
        if zero {
            prop_assert_eq!(&out[14 + 26..14 + 28], &[0u8, 0][..]);
        }
        let (src, dst) = addrs(&out);
        let (sport, dport) = ports(&out);
        let mut reply = build(&Hdr {
            smac: BE_GW_MAC, dmac: BE_IF_MAC, src: dst, dst: src, ttl: 64,
            sport: dport, dport: sport, l4: l4(Tcp::Ack),
        }, &answer);
        let mut want = build(&Hdr {
            smac: OUR_MAC, dmac: ROUTER_MAC, src: vip, dst: client, ttl: 63,
            sport: vport, dport: cport, l4: l4(Tcp::Ack),
        }, &answer);
        if zero {
            zero_udp_checksum(&mut reply);
            zero_udp_checksum(&mut want);
        }
        let mut buf = buffer(&reply);
        let mut f = frame(&mut buf, reply.len());
        prop_assert_eq!(p.process(&mut f, BE_PORT, &snap, 2_000), Verdict::Forward { port: PORT });
        prop_assert_eq!(f.data(), &want[..]);
        prop_assert_eq!(verify_checksums(f.data()), Ok(()));
    }
}

#[test]
fn seed_corpus_replays_cleanly() {
    let seeds = seeds();
    assert!(
        seeds.len() >= 50,
        "seed corpus missing: {} files",
        seeds.len()
    );
    for s in seeds {
        fuzz_process(&s);
    }
}

/// Client packets of nat/fullnat connections: (client, client port, service, TCP flags).
fn nat_packet() -> impl Strategy<Value = (u8, u16, usize, u8)> {
    (0u8..4, 0u16..3, 0usize..4, 0u8..4)
}

/// `pkts` through `p`, cut into bursts of the sizes `cuts` names in turn (1 = one by one).
fn in_bursts(
    p: &mut Pipeline,
    snap: &dataplane::Snapshot,
    pkts: &[Vec<u8>],
    cuts: &[usize],
    port: u16,
    now: u64,
) -> Vec<(Verdict, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = pkts;
    for &n in cuts.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (now_pkts, later) = rest.split_at(n.min(rest.len()));
        out.extend(burst(p, snap, now_pkts, port, now));
        rest = later;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A burst answers as its packets one by one, whatever opens, repeats, follows or
    /// replaces a connection inside it (a burst inserts its new connections' reverse entries
    /// at its end), both ways: verdicts, bytes and counters; then the backends' answers to
    /// all of it, ten seconds on (past a half-open connection's timeout).
    #[test]
    fn nat_bursts_answer_as_one_by_one(
        pkts in proptest::collection::vec(nat_packet(), 1..100),
        cuts in proptest::collection::vec(1usize..=32, 1..8),
    ) {
        use common::nat::*;
        // TCP and UDP, nat and fullnat; fullnat on two ports, so new connections also run out.
        let services = [(VIP4_NAT, 80), (VIP4_NAT, 53), (VIP4_FULL, 80), (VIP4_FULL, 53)];
        let snap = nat_snapshot(DrainState::Normal);
        let pipeline = || {
            let mut p = Pipeline::new(&PipelineConfig {
                flows: FlowConfig { capacity: 4096, ..FlowConfig::default() },
                nat: true,
                ..PipelineConfig::default()
            });
            p.set_nat_port_range(2000, 2001);
            p
        };
        let frames: Vec<Vec<u8>> = pkts
            .iter()
            .map(|&(c, cport, s, f)| {
                let (vip, vport) = services[s];
                let (src, sport) = ([203, 0, 113, 30 + c], 42_000 + cport);
                if vport == 53 {
                    udp4(src, vip, sport, vport, b"q")
                } else {
                    let f = [Tcp::Syn, Tcp::Ack, Tcp::Fin, Tcp::Rst][usize::from(f)];
                    tcp4(src, vip, sport, vport, f, b"q")
                }
            })
            .collect();
        let now = 1_000_000;
        let mut one = pipeline();
        let want = each(&mut one, &snap, &frames, PORT, now);
        let mut many = pipeline();
        prop_assert_eq!(&in_bursts(&mut many, &snap, &frames, &cuts, PORT, now), &want);
        prop_assert_eq!(one.counters(), many.counters());
        let answers = answers(&want);
        let later = now + 10_000_000_000;
        let back = each(&mut one, &snap, &answers, BE_PORT, later);
        prop_assert_eq!(&in_bursts(&mut many, &snap, &answers, &cuts, BE_PORT, later), &back);
        // Except expiries: the sweep runs every 32 packets one by one but once a burst, so
        // it finds a different share of the expired entries before their packets do.
        let settled = |p: &Pipeline| {
            let mut c = p.counters().clone();
            c.flows_evicted_timeout = 0;
            c
        };
        prop_assert_eq!(settled(&one), settled(&many));
    }
}
