//! Scenario tests of the flow table through the whole pipeline: SYN flood cap, reloads,
//! stale entries, eviction, expiry, rate-limited PTB, and burst/one-by-one equivalence.

mod common;

use std::time::Duration;

use common::*;
use dataplane::{
    DropReason, FlowConfig, Forwarding, HashKind, Pipeline, PipelineConfig, Proto, ServiceSpec,
    Snapshot, SnapshotBuilder, Verdict, WhenAllDown,
};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

fn multi(table: Vec<u32>, up: [bool; 3]) -> Snapshot {
    multi_proto(table, up, Proto::Tcp)
}

fn multi_proto(table: Vec<u32>, up: [bool; 3], proto: Proto) -> Snapshot {
    let mut s = spec(Svc {
        id: 14,
        vip: a4(VIP4_MULTI),
        port: 0,
        proto,
        forwarding: Forwarding::Ipip,
        backends: (0..3)
            .map(|i| (a4(b4(31 + i as u8)), Some(GW_MAC), up[i]))
            .collect(),
        hash: HashKind::FiveTuple,
        when_all_down: WhenAllDown::Drop,
    });
    s.table = table;
    build(s)
}

fn build(s: ServiceSpec) -> Snapshot {
    try_build(s).unwrap()
}

fn try_build(s: ServiceSpec) -> Result<Snapshot, dataplane::SnapshotError> {
    SnapshotBuilder::new()
        .interface(interface())
        .service(s)
        .build()
}

/// Sends one packet; returns the verdict and, when forwarded, the outer destination.
fn send(p: &mut Pipeline, snap: &Snapshot, pkt: &[u8], now: u64) -> (Verdict, Option<[u8; 4]>) {
    let mut buf = buffer(pkt);
    let mut f = frame(&mut buf, pkt.len());
    let v = p.process(&mut f, PORT, snap, now);
    let dst = match v {
        Verdict::Forward { .. } if f.data()[12..14] == [8, 0] => {
            Some(f.data()[30..34].try_into().unwrap())
        }
        _ => None,
    };
    (v, dst)
}

fn pipeline(capacity: usize, cap: u32) -> Pipeline {
    Pipeline::new(&PipelineConfig {
        flows: FlowConfig {
            capacity,
            max_new_flows_per_second: cap,
            ..FlowConfig::default()
        },
        ptb_per_second: 1000,
        nat: false,
        exception_per_second: 10_000,
        ..PipelineConfig::default()
    })
}

#[test]
fn syn_flood_above_cap_is_stateless_and_spares_established_flows() {
    let snap = multi(round_robin(3), [true; 3]);
    // 100 new flows/s, burst 10; a table of one bucket's worth (8 ways x 1 bucket rounded).
    let mut p = pipeline(64, 100);
    let est = tcp4(CLIENT4, VIP4_MULTI, 1111, 80, Tcp::Syn, b"");
    let (_, b0) = send(&mut p, &snap, &est, 0);
    let ack = tcp4(CLIENT4, VIP4_MULTI, 1111, 80, Tcp::Ack, b"");
    send(&mut p, &snap, &ack, MS);
    assert_eq!(p.counters().flows_created, 1);
    for i in 0..10_000u32 {
        let src = [203, 0, 113, (i % 200) as u8];
        let syn = tcp4(src, VIP4_MULTI, 2000 + (i / 200) as u16, 80, Tcp::Syn, b"");
        let (v, _) = send(&mut p, &snap, &syn, 2 * MS);
        assert_eq!(v, Verdict::Forward { port: PORT });
    }
    let c = p.counters();
    // Burst of 10 (a tenth of a second of 100/s), minus the one the first flow used.
    assert_eq!(c.flows_created, 10);
    assert_eq!(c.flows_stateless, 10_000 - 9);
    assert_eq!(c.flows_evicted_capacity, 0);
    // The established flow is still there and still on its backend.
    let (_, b1) = send(&mut p, &snap, &ack, 3 * MS);
    assert_eq!(b0, b1);
    assert_eq!(p.counters().flows_created, 10);
    // Tokens refill with time: after a second, new flows get entries again.
    let syn = tcp4(CLIENT4, VIP4_MULTI, 9999, 80, Tcp::Syn, b"");
    send(&mut p, &snap, &syn, 2 * SEC);
    assert_eq!(p.counters().flows_created, 11);
}

#[test]
fn reload_keeps_flows_whose_backend_stays_and_rehashes_the_rest() {
    let pkt = |sport| tcp4(CLIENT4, VIP4_MULTI, sport, 80, Tcp::Ack, b"");
    let snap1 = multi(round_robin(3), [true; 3]);
    let mut p = pipeline(1024, 0);
    let mut on = Vec::new();
    for sport in 3000..3060 {
        on.push(send(&mut p, &snap1, &pkt(sport), 0).1.unwrap());
    }
    // New table sends every new flow to backend 2; everything is still up.
    let snap2 = multi(vec![2; TABLE_SIZE], [true; 3]);
    for (i, sport) in (3000..3060).enumerate() {
        assert_eq!(send(&mut p, &snap2, &pkt(sport), MS).1.unwrap(), on[i]);
    }
    assert_eq!(p.counters().flows_rehashed, 0);
    // Backend 0 goes down: its flows move (to backend 2), the others stay.
    let snap3 = multi(vec![2; TABLE_SIZE], [false, true, true]);
    let mut moved = 0;
    for (i, sport) in (3000..3060).enumerate() {
        let now = send(&mut p, &snap3, &pkt(sport), 2 * MS).1.unwrap();
        if on[i] == b4(31) {
            assert_eq!(now, b4(33));
            moved += 1;
        } else {
            assert_eq!(now, on[i]);
        }
    }
    assert!(moved > 0);
    assert_eq!(p.counters().flows_rehashed, moved);
    // Moved flows stay on their new backend when backend 0 returns.
    for (i, sport) in (3000..3060).enumerate() {
        let now = send(&mut p, &snap1, &pkt(sport), 3 * MS).1.unwrap();
        if on[i] == b4(31) {
            assert_eq!(now, b4(33));
        }
    }
}

#[test]
fn a_syn_never_follows_a_stale_entry() {
    let snap1 = multi(vec![0; TABLE_SIZE], [true; 3]);
    let snap2 = multi(vec![1; TABLE_SIZE], [true; 3]);
    let mut p = pipeline(1024, 0);
    let syn = tcp4(CLIENT4, VIP4_MULTI, 4000, 80, Tcp::Syn, b"");
    let ack = tcp4(CLIENT4, VIP4_MULTI, 4000, 80, Tcp::Ack, b"");
    assert_eq!(send(&mut p, &snap1, &syn, 0).1, Some(b4(31)));
    assert_eq!(send(&mut p, &snap2, &ack, MS).1, Some(b4(31)));
    // A new SYN on the same tuple is a new connection: Maglev decides, the entry follows.
    assert_eq!(send(&mut p, &snap2, &syn, 2 * MS).1, Some(b4(32)));
    assert_eq!(send(&mut p, &snap1, &ack, 3 * MS).1, Some(b4(32)));
}

/// The same when the new-flow cap refuses the new SYN an entry: the old entry must go.
#[test]
fn a_refused_syn_leaves_no_stale_entry() {
    let snap1 = multi(vec![0; TABLE_SIZE], [true; 3]);
    let snap2 = multi(vec![1; TABLE_SIZE], [true; 3]);
    // One new flow per second, burst 1: the first SYN takes the only token.
    let mut p = pipeline(1024, 1);
    let syn = tcp4(CLIENT4, VIP4_MULTI, 4000, 80, Tcp::Syn, b"");
    let ack = tcp4(CLIENT4, VIP4_MULTI, 4000, 80, Tcp::Ack, b"");
    assert_eq!(send(&mut p, &snap1, &syn, 0).1, Some(b4(31)));
    assert_eq!(send(&mut p, &snap2, &ack, MS).1, Some(b4(31)));
    assert_eq!(p.flow_count(), 1);
    // A new connection on the tuple, refused an entry: Maglev sends it to 32, and so its ACK.
    assert_eq!(send(&mut p, &snap2, &syn, 2 * MS).1, Some(b4(32)));
    assert_eq!(p.counters().flows_stateless, 1);
    assert_eq!(p.flow_count(), 0);
    assert_eq!(send(&mut p, &snap2, &ack, 3 * MS).1, Some(b4(32)));
}

#[test]
fn timeouts_follow_tcp_state_and_udp_config() {
    let snap1 = multi(vec![0; TABLE_SIZE], [true; 3]);
    let snap2 = multi(vec![1; TABLE_SIZE], [true; 3]);
    let mut p = Pipeline::new(&PipelineConfig {
        flows: FlowConfig {
            capacity: 1024,
            tcp_syn_timeout: Duration::from_secs(5),
            tcp_established_timeout: Duration::from_secs(300),
            tcp_closing_timeout: Duration::from_secs(10),
            udp_timeout: Duration::from_secs(30),
            max_new_flows_per_second: 0,
        },
        ptb_per_second: 1,
        nat: false,
        exception_per_second: 10_000,
        ..PipelineConfig::default()
    });
    let ack = |sport| tcp4(CLIENT4, VIP4_MULTI, sport, 80, Tcp::Ack, b"");
    // Established: alive after 200 s idle, gone after 301 s.
    send(&mut p, &snap1, &ack(5000), 0);
    assert_eq!(send(&mut p, &snap2, &ack(5000), 200 * SEC).1, Some(b4(31)));
    assert_eq!(send(&mut p, &snap2, &ack(5000), 501 * SEC).1, Some(b4(32)));
    // SYN only: 5 s.
    let syn = tcp4(CLIENT4, VIP4_MULTI, 5001, 80, Tcp::Syn, b"");
    send(&mut p, &snap1, &syn, 1000 * SEC);
    assert_eq!(send(&mut p, &snap2, &ack(5001), 1004 * SEC).1, Some(b4(31)));
    // That ACK made it established: 300 s from now.
    assert_eq!(send(&mut p, &snap2, &ack(5001), 1100 * SEC).1, Some(b4(31)));
    // FIN: closing, 10 s.
    let fin = tcp4(CLIENT4, VIP4_MULTI, 5001, 80, Tcp::Fin, b"");
    send(&mut p, &snap2, &fin, 1101 * SEC);
    assert_eq!(send(&mut p, &snap2, &ack(5001), 1112 * SEC).1, Some(b4(32)));
    assert!(p.counters().flows_evicted_timeout >= 2);
    // UDP: udp_timeout (30 s) from the last packet.
    let (u1, u2) = (
        multi_proto(vec![0; TABLE_SIZE], [true; 3], Proto::Udp),
        multi_proto(vec![1; TABLE_SIZE], [true; 3], Proto::Udp),
    );
    let udp = udp4(CLIENT4, VIP4_MULTI, 5002, 53, b"q");
    assert_eq!(send(&mut p, &u1, &udp, 2000 * SEC).1, Some(b4(31)));
    assert_eq!(send(&mut p, &u2, &udp, 2029 * SEC).1, Some(b4(31)));
    assert_eq!(send(&mut p, &u2, &udp, 2058 * SEC).1, Some(b4(31)));
    assert_eq!(send(&mut p, &u2, &udp, 2089 * SEC).1, Some(b4(32)));
}

#[test]
fn a_full_bucket_evicts_one_flow_per_new_flow() {
    let snap = multi(round_robin(3), [true; 3]);
    // 8 entries: one bucket of 8 ways.
    let mut p = pipeline(8, 0);
    for i in 0..20u16 {
        let pkt = tcp4(CLIENT4, VIP4_MULTI, 6000 + i, 80, Tcp::Syn, b"");
        send(&mut p, &snap, &pkt, u64::from(i) * MS);
    }
    let c = p.counters();
    assert_eq!(c.flows_created, 20);
    assert_eq!(c.flows_evicted_capacity, 12);
    assert_eq!(p.flow_count(), 8);
}

#[test]
fn ptb_messages_are_rate_limited() {
    let snap = snapshot();
    let mut p = Pipeline::new(&PipelineConfig {
        flows: FlowConfig::default(),
        ptb_per_second: 1,
        nat: false,
        exception_per_second: 10_000,
        ..PipelineConfig::default()
    });
    let big = tcp4(CLIENT4, VIP4, 1, 80, Tcp::Ack, &[0; 1460]);
    assert_eq!(
        send(&mut p, &snap, &big, 0).0,
        Verdict::Reply { port: PORT }
    );
    assert_eq!(
        send(&mut p, &snap, &big, MS).0,
        Verdict::Drop(DropReason::MtuExceeded)
    );
    assert_eq!(
        send(&mut p, &snap, &big, 2 * SEC).0,
        Verdict::Reply { port: PORT }
    );
    let c = p.counters();
    assert_eq!((c.ptb_sent, c.ptb_suppressed), (2, 1));
    assert_eq!(c.dropped(DropReason::MtuExceeded), 3);
}

#[test]
fn source_ip_affinity_keeps_a_client_on_one_backend() {
    let snap = snapshot();
    let mut p = pipeline(1024, 0);
    let mut seen = std::collections::HashSet::new();
    for sport in 100..140 {
        let pkt = tcp4(CLIENT4, VIP4_AFFINITY, sport, 80, Tcp::Syn, b"");
        seen.insert(send(&mut p, &snap, &pkt, 0).1.unwrap());
    }
    assert_eq!(seen.len(), 1);
    let expected = b4(61 + rr_pick(maglev::flow::source_ip(&m4(CLIENT4)), 3) as u8);
    assert!(seen.contains(&expected));
}

#[test]
fn a_burst_gives_the_same_results_as_one_by_one() {
    let snap = snapshot();
    let inputs: Vec<Vec<u8>> = (0..70u16)
        .map(|i| match i % 5 {
            0 => tcp4(CLIENT4, VIP4, 7000 + i, 80, Tcp::Syn, b""),
            1 => udp6(CLIENT6, VIP6, 7000 + i, 443, b"x"),
            2 => tcp4(CLIENT4, VIP4_MULTI, 7000 + i, 22, Tcp::Ack, b""),
            3 => tcp4(CLIENT4, [198, 51, 100, 99], 1, 80, Tcp::Syn, b""),
            _ => tcp4(CLIENT4, VIP4, 7000 + i - 4, 80, Tcp::Ack, b"y"),
        })
        .collect();
    let mut one = pipeline(4096, 0);
    let expected = each(&mut one, &snap, &inputs, PORT, 5);
    let mut many = pipeline(4096, 0);
    let got = burst(&mut many, &snap, &inputs, PORT, 5);
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "packet {i}");
    }
    assert_eq!(one.counters().forwarded, many.counters().forwarded);
    assert_eq!(one.counters().flows_created, many.counters().flows_created);
}

#[test]
fn unknown_ingress_port_is_a_counted_drop() {
    let snap = snapshot();
    let mut p = pipeline(64, 0);
    let pkt = tcp4(CLIENT4, VIP4, 1, 80, Tcp::Syn, b"");
    let mut buf = buffer(&pkt);
    let mut f = frame(&mut buf, pkt.len());
    assert_eq!(
        p.process(&mut f, 9, &snap, 0),
        Verdict::Drop(DropReason::UnknownPort)
    );
    assert_eq!(p.counters().dropped(DropReason::UnknownPort), 1);
    // A burst decides the port once for all its frames: each is still a counted drop.
    let mut bufs: Vec<Vec<u8>> = (0..3).map(|_| buffer(&pkt)).collect();
    let mut frames: Vec<_> = bufs.iter_mut().map(|b| frame(b, pkt.len())).collect();
    let mut verdicts = vec![Verdict::Forward { port: 0 }; frames.len()];
    assert_eq!(p.process_burst(&mut frames, 9, &snap, 0, &mut verdicts), 3);
    assert!(verdicts
        .iter()
        .all(|v| *v == Verdict::Drop(DropReason::UnknownPort)));
    assert_eq!(p.counters().dropped(DropReason::UnknownPort), 4);
    assert_eq!(p.counters().forwarded, 0);
}

#[test]
fn checksum_offload_leaves_the_outer_checksum_to_the_nic() {
    let mut iface = interface();
    iface.ipv4_checksum_offload = true;
    let snap = services()
        .into_iter()
        .take(1)
        .fold(SnapshotBuilder::new().interface(iface), |b, s| {
            b.service(spec(s))
        })
        .build()
        .unwrap();
    let mut p = pipeline(64, 0);
    let pkt = tcp4(CLIENT4, VIP4, 1, 80, Tcp::Syn, b"");
    let mut buf = buffer(&pkt);
    let mut f = frame(&mut buf, pkt.len());
    assert_eq!(
        p.process(&mut f, PORT, &snap, 0),
        Verdict::Forward { port: PORT }
    );
    assert_eq!(f.data()[24..26], [0, 0]);
    assert!(f.offload.outer_ipv4_checksum);
    assert_eq!((f.offload.l2_len, f.offload.l3_len), (14, 20));
}

#[test]
fn snapshot_builder_rejects_inconsistent_state() {
    use dataplane::SnapshotError;
    let mut bad_table = spec(services().remove(0));
    bad_table.table = vec![5];
    assert!(matches!(
        try_build(bad_table),
        Err(SnapshotError::TableIndex { .. })
    ));
    let mut bad_port = spec(services().remove(0));
    bad_port.backends[0].egress.port = 7;
    assert!(matches!(
        try_build(bad_port),
        Err(SnapshotError::UnknownEgressPort { .. })
    ));
    let mut no_v6 = interface();
    no_v6.ipv6 = None;
    let r = SnapshotBuilder::new()
        .interface(no_v6)
        .service(spec(services().remove(2)))
        .build();
    assert!(matches!(r, Err(SnapshotError::NoSourceAddress { .. })));
    let dup = SnapshotBuilder::new()
        .interface(interface())
        .service(spec(services().remove(0)))
        .service(spec(services().remove(0)))
        .build();
    assert!(dup.is_err());
}

#[test]
fn weight_zero_drains_existing_flows_stay_new_flows_avoid_and_the_count_falls_to_zero() {
    let pkt = |sport, f| tcp4(CLIENT4, VIP4_MULTI, sport, 80, f, b"");
    let snap1 = multi(round_robin(3), [true; 3]);
    let mut p = pipeline(1024, 0);
    let mut on = Vec::new();
    for sport in 4000..4060 {
        on.push(send(&mut p, &snap1, &pkt(sport, Tcp::Syn), 0).1.unwrap());
    }
    let drained = common::backend_id(14, 0);
    let pinned = on.iter().filter(|&&b| b == b4(31)).count() as u64;
    assert!(pinned > 0);
    assert_eq!(p.flows_per_backend().get(&drained), Some(&pinned));
    // Backend 0 drains (weight 0): up and present, but no longer in the table.
    let mut s = spec(Svc {
        id: 14,
        vip: a4(VIP4_MULTI),
        port: 0,
        proto: Proto::Tcp,
        forwarding: Forwarding::Ipip,
        backends: (0..3)
            .map(|i| (a4(b4(31 + i as u8)), Some(GW_MAC), true))
            .collect(),
        hash: HashKind::FiveTuple,
        when_all_down: WhenAllDown::Drop,
    });
    s.backends[0].weight = 0;
    s.table = round_robin(2).into_iter().map(|i| i + 1).collect();
    let snap2 = build(s);
    for (i, sport) in (4000..4060).enumerate() {
        assert_eq!(
            send(&mut p, &snap2, &pkt(sport, Tcp::Ack), MS).1.unwrap(),
            on[i],
            "existing flows keep their backend"
        );
    }
    for sport in 5000..5100 {
        assert_ne!(
            send(&mut p, &snap2, &pkt(sport, Tcp::Syn), 2 * MS)
                .1
                .unwrap(),
            b4(31),
            "no new flow to a drained backend"
        );
    }
    assert_eq!(p.counters().flows_rehashed, 0);
    assert_eq!(p.flows_per_backend().get(&drained), Some(&pinned));
    // The drained backend's connections close; their entries expire and its count reaches zero.
    for (i, sport) in (4000..4060).enumerate() {
        if on[i] == b4(31) {
            send(&mut p, &snap2, &pkt(sport, Tcp::Fin), 3 * MS);
        }
    }
    let later = 3 * MS + 11 * SEC; // past the 10 s closing timeout
    for round in 0..2048u32 {
        send(
            &mut p,
            &snap2,
            &pkt(6000 + (round % 50) as u16, Tcp::Ack),
            later,
        );
    }
    assert_eq!(p.flows_per_backend().get(&drained), Some(&0));
}

/// A table full of established flows, then a flood of new ones. A full table never refuses a
/// flow: each new one is forwarded where Maglev says and takes the entry closest to expiry
/// (counted as a capacity eviction). A SYN-only entry (5 s) expires long before an
/// established one (300 s), so once a bucket holds one, the next new flows there evict it,
/// not an established flow: the flood costs at most one established entry per bucket. Beyond
/// the new-flow cap, new flows are forwarded statelessly and touch no entry at all.
#[test]
fn a_full_table_keeps_forwarding_and_spares_established_flows() {
    // Backend 0 (b4(31)) for every flow before the pool change, backend 1 (b4(32)) after:
    // a flow that still has its entry is still sent to .31; one that lost it goes to .32.
    let before = multi(vec![0; TABLE_SIZE], [true; 3]);
    let after = multi(vec![1; TABLE_SIZE], [true; 3]);
    let est = |sport| tcp4(CLIENT4, VIP4_MULTI, sport, 80, Tcp::Ack, b"");
    // A RST is forwarded by the entry if there is one and never creates one: a probe that
    // cannot disturb the table it looks at.
    let probe = |p: &mut Pipeline, sport, now| {
        let rst = tcp4(CLIENT4, VIP4_MULTI, sport, 80, Tcp::Rst, b"");
        send(p, &after, &rst, now).1
    };
    // 64 entries = 8 buckets of 8 ways. Fills until full; returns the flows that hold an
    // entry (found on a twin pipeline fed the same packets: the probe closes the flows).
    let filled = |cap: u32| {
        let fill = |p: &mut Pipeline| {
            let mut sports = Vec::new();
            for (i, sport) in (10_000u16..).enumerate() {
                if p.flow_count() == 64 {
                    break;
                }
                // Paced at 10 ms so a capped pipeline (100/s) admits every one of them.
                let v = send(p, &before, &est(sport), i as u64 * 10 * MS);
                assert_eq!(v, (Verdict::Forward { port: PORT }, Some(b4(31))));
                sports.push(sport);
            }
            sports
        };
        let mut p = pipeline(64, cap);
        let sports = fill(&mut p);
        let mut twin = pipeline(64, cap);
        assert_eq!(fill(&mut twin), sports);
        let now = sports.len() as u64 * 10 * MS;
        let live: Vec<u16> = sports
            .iter()
            .copied()
            .filter(|&s| probe(&mut twin, s, now) == Some(b4(31)))
            .collect();
        assert_eq!(live.len(), 64, "a full table of established flows");
        (p, live, now)
    };

    // No cap: every new flow gets an entry by evicting one.
    let (mut p, live, t) = filled(0);
    let c0 = p.counters().clone();
    assert_eq!(c0.flows_stateless, 0);
    const NEW: u16 = 1000;
    for i in 0..NEW {
        let syn = tcp4([198, 18, 0, 1], VIP4_MULTI, 20_000 + i, 80, Tcp::Syn, b"");
        let v = send(&mut p, &after, &syn, t + MS + u64::from(i) * 1000);
        assert_eq!(
            v,
            (Verdict::Forward { port: PORT }, Some(b4(32))),
            "new flow {i}"
        );
    }
    let c = p.counters();
    assert_eq!(c.flows_created - c0.flows_created, u64::from(NEW));
    assert_eq!(
        c.flows_evicted_capacity - c0.flows_evicted_capacity,
        u64::from(NEW),
        "every new flow took a live entry"
    );
    assert_eq!(c.flows_stateless, 0, "a full table never refuses a flow");
    assert_eq!(p.flow_count(), 64);
    let t2 = t + 2 * SEC;
    let kept = live
        .iter()
        .filter(|&&s| probe(&mut p, s, t2) == Some(b4(31)))
        .count();
    // At most one established entry per bucket (8) went, whatever the size of the flood.
    assert!(
        (64 - 8..64).contains(&kept),
        "{kept} of 64 established flows kept their backend"
    );
    // The flows that lost theirs are still forwarded: to Maglev's choice.
    assert!(live
        .iter()
        .all(|&s| probe(&mut p, s, t2 + MS).is_some_and(|b| b == b4(31) || b == b4(32))));

    // With the cap (100/s, burst 10): the flood beyond the burst is stateless and leaves
    // the table alone; established flows lose at most what the admitted ten evicted.
    let (mut p, live, t) = filled(100);
    let c0 = p.counters().clone();
    for i in 0..NEW {
        let syn = tcp4([198, 18, 0, 2], VIP4_MULTI, 20_000 + i, 80, Tcp::Syn, b"");
        // The whole flood within 1 ms: a token refills every 10 ms.
        let v = send(&mut p, &after, &syn, t + 200 * MS + u64::from(i));
        assert_eq!(
            v,
            (Verdict::Forward { port: PORT }, Some(b4(32))),
            "new flow {i}"
        );
    }
    let c = p.counters();
    let admitted = c.flows_created - c0.flows_created;
    assert_eq!(admitted, 10, "the burst");
    assert_eq!(c.flows_stateless - c0.flows_stateless, u64::from(NEW) - 10);
    assert_eq!(c.flows_evicted_capacity - c0.flows_evicted_capacity, 10);
    assert_eq!(p.flow_count(), 64);
    let kept = live
        .iter()
        .filter(|&&s| probe(&mut p, s, t + 300 * MS) == Some(b4(31)))
        .count();
    assert!(
        (64 - 8..64).contains(&kept),
        "{kept} of 64 established flows kept their backend"
    );
}

/// Backends that churn (pods, one new address per reload): the core's per-id counters follow
/// the live set; a removed backend's are kept while a flow still names it (and carry on if it
/// comes back meanwhile), and go once that flow has ended.
#[test]
fn churned_backends_do_not_pile_up_in_the_counters() {
    let mut p = pipeline(1024, 0);
    let with_backend = |id: u32| {
        let mut s = spec(Svc {
            id: 1,
            vip: a4(VIP4),
            port: 80,
            proto: Proto::Tcp,
            forwarding: Forwarding::Ipip,
            backends: vec![(a4(b4(11)), Some(GW_MAC), true)],
            hash: HashKind::FiveTuple,
            when_all_down: WhenAllDown::Drop,
        });
        s.backends[0].id = id;
        build(s)
    };
    let syn = tcp4(CLIENT4, VIP4, 40_000, 80, Tcp::Syn, b"");
    let ack = tcp4(CLIENT4, VIP4, 40_000, 80, Tcp::Ack, b"");
    let first = with_backend(1000);
    assert!(matches!(
        send(&mut p, &first, &syn, MS).0,
        Verdict::Forward { .. }
    ));
    // 500 reloads, each replacing the backend; one frame each (a drop) adopts the snapshot.
    for id in 1001..=1500 {
        send(&mut p, &with_backend(id), &[0u8; 10], 2 * MS);
    }
    let ids = |p: &Pipeline| {
        let mut v: Vec<u32> = p.counters().backends().map(|(id, _)| id).collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(&p),
        [1000, 1500],
        "the live one and the one a flow names"
    );
    assert_eq!(p.counters().backend_packets(1000), Some(1));
    // Back while its flow lives: the same counter carries on.
    assert!(matches!(
        send(&mut p, &first, &ack, 3 * MS).0,
        Verdict::Forward { .. }
    ));
    assert_eq!(p.counters().backend_packets(1000), Some(2));
    // The flow ends (past the established timeout); its next packet starts a new one on
    // the backend of the day, and the next snapshot forgets 1000.
    let late = 3 * MS + 301 * SEC;
    let now_live = with_backend(1501);
    send(&mut p, &now_live, &ack, late);
    send(&mut p, &with_backend(1502), &[0u8; 10], late);
    assert_eq!(ids(&p), [1501, 1502], "the old flow's backend is gone");
    assert_eq!(p.counters().backend_packets(1000), None);
    let services: Vec<u32> = p.counters().services().map(|(id, _)| id).collect();
    assert_eq!(services, [1]);
}

/// A worker with no traffic sweeps too: flows past their timeout leave the table and the
/// per-backend counts (what an operator watches fall to zero after a drain) without a packet.
#[test]
fn idle_sweeps_clear_expired_flows_without_traffic() {
    let mut p = pipeline(1024, 0);
    let snap = multi_proto(round_robin(3), [true; 3], Proto::Udp);
    for i in 0..200u16 {
        let pkt = udp4(CLIENT4, VIP4_MULTI, 1000 + i, 53, b"q");
        assert!(matches!(
            send(&mut p, &snap, &pkt, MS).0,
            Verdict::Forward { .. }
        ));
    }
    p.refresh_gauges();
    assert_eq!(p.flow_count(), 200);
    // Past the UDP timeout (30 s), with no packet: each idle call sweeps 64 of the 128 buckets.
    let later = MS + 31 * SEC;
    p.sweep_idle(later);
    p.sweep_idle(later + MS);
    p.refresh_gauges();
    assert_eq!(p.flow_count(), 0);
    assert!(p.flows_per_backend().values().all(|&n| n == 0));
    assert_eq!(p.counters().flows_evicted_timeout, 200);
}
