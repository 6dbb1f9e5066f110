//! The outer IPv4 checksum offload end to end: on an interface that offers it, the pipeline
//! leaves the outer checksum at zero and says where the header is; the worker's glue
//! (`Mbuf::request_ipv4_checksum`) turns that into mbuf offload fields; DPDK's tap PMD, which
//! implements the offload in software as a NIC would in hardware, fills it in. The frames are
//! read back on the kernel side of the tap with an AF_PACKET socket. The other way, frames the
//! kernel sends into the tap arrive with the PMD's receive checksum verdict, which
//! `Mbuf::ipv4_checksum_good` reads for the parser.
#![cfg(feature = "dpdk")]

mod common;

use std::time::{Duration, Instant};

use common::packet_socket::PacketSocket;
use common::*;
use dataplane::checksum::ipv4_header20_ok;
use dataplane::dpdk::{Burst, Mempool, Port};
use dataplane::frame::TxOffload;
use dataplane::{
    FlowConfig, Forwarding, HashKind, Pipeline, PipelineConfig, Proto, SnapshotBuilder, Verdict,
    WhenAllDown,
};

/// The outer IPv4 header starts after the Ethernet header; its checksum is bytes 10-11.
const OUTER: usize = 14;
const CHECKSUM: usize = OUTER + 10;

/// The same frame but for the outer IPv4 checksum.
fn same_but_checksum(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a[..CHECKSUM] == b[..CHECKSUM] && a[CHECKSUM + 2..] == b[CHECKSUM + 2..]
}

#[test]
fn the_tap_pmd_fills_in_what_the_pipeline_left_and_marks_what_it_checked() {
    let pid = std::process::id();
    let ifname = format!("sltap{}", pid % 1_000_000);
    let vdev = format!("net_tap0,iface={ifname}");
    let eal = common::eal::init("tap", "0", &[], &[&vdev]);
    let pool = Mempool::new(&eal, "tap_pool", 4095, 32, 2176, -1).expect("pool");
    let port = Port::builder(&eal, "net_tap0", &pool)
        .start()
        .expect("tap port");
    assert!(
        port.offloads().tx_ipv4_checksum(),
        "net_tap offers RTE_ETH_TX_OFFLOAD_IPV4_CKSUM and the port enabled it"
    );
    let mut tx = port.tx_queue(0).expect("tx queue");
    let sock = PacketSocket::receiver(&ifname);

    let mut iface = interface();
    iface.ipv4_checksum_offload = true;
    let service = |id, port, forwarding, backend| {
        spec(Svc {
            id,
            vip: a4(VIP4),
            port,
            proto: Proto::Tcp,
            forwarding,
            backends: vec![(a4(b4(backend)), Some(GW_MAC), true)],
            hash: HashKind::FiveTuple,
            when_all_down: WhenAllDown::Drop,
        })
    };
    let snap = SnapshotBuilder::new()
        .interface(iface)
        .service(service(1, 80, Forwarding::Ipip, 11))
        .service(service(5, 443, Forwarding::Gue, 13))
        .build()
        .unwrap();
    let mut pipeline = Pipeline::new(&PipelineConfig {
        flows: FlowConfig {
            capacity: 1024,
            ..FlowConfig::default()
        },
        ..PipelineConfig::default()
    });

    // (what, frame as the pipeline left it, the offload it asked for)
    let mut cases: Vec<(String, Vec<u8>, Option<TxOffload>)> = Vec::new();
    for (what, dport) in [("ipip", 80), ("gue", 443)] {
        for i in 0..4u16 {
            let pkt = tcp4(CLIENT4, VIP4, 40_000 + i, dport, Tcp::Syn, b"offload");
            let mut buf = buffer(&pkt);
            let mut f = frame(&mut buf, pkt.len());
            let v = pipeline.process(&mut f, PORT, &snap, 1);
            assert!(matches!(v, Verdict::Forward { .. }), "{what}: {v:?}");
            let o = f.offload;
            assert!(o.outer_ipv4_checksum, "{what}: offload not asked for");
            assert_eq!((o.l2_len, o.l3_len), (14, 20), "{what}");
            let out = f.data().to_vec();
            assert_eq!(
                out[CHECKSUM..CHECKSUM + 2],
                [0, 0],
                "{what}: checksum left at 0"
            );
            cases.push((format!("{what} {i}"), out, Some(o)));
        }
    }
    // The control: a frame with a zero checksum and no request leaves the tap unchanged.
    let (_, plain, _) = cases[0].clone();
    cases.push(("not requested".into(), plain, None));

    let mut burst = Burst::<32>::new();
    for (what, bytes, request) in &cases {
        let mut m = pool.alloc().expect("mbuf");
        m.copy_from_slice(bytes).expect("fill");
        if let Some(o) = request {
            // What LbWorker::run does with the pipeline's TxOffload.
            m.request_ipv4_checksum(o.l2_len, u16::from(o.l3_len));
        }
        burst
            .push(m)
            .unwrap_or_else(|_| panic!("{what}: burst full"));
    }
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !burst.is_empty() && Instant::now() < deadline {
        sent += tx.tx_burst(&mut burst);
    }
    assert_eq!(sent, cases.len(), "the tap took every frame");

    // Frames may arrive in any order, among the kernel's own (IPv6 router solicitations).
    let mut seen = vec![false; cases.len()];
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.iter().any(|s| !s) && Instant::now() < deadline {
        let Some(got) = sock.recv() else { continue };
        // The request matters, so the unrequested control is matched on its exact bytes.
        let Some(k) = (0..cases.len()).find(|&k| {
            !seen[k]
                && if cases[k].2.is_some() {
                    same_but_checksum(&got, &cases[k].1) && got[CHECKSUM..CHECKSUM + 2] != [0, 0]
                } else {
                    got == cases[k].1
                }
        }) else {
            continue;
        };
        let (what, _, request) = &cases[k];
        if request.is_some() {
            assert!(
                ipv4_header20_ok(got[OUTER..OUTER + 20].try_into().unwrap()),
                "{what}: outer IPv4 checksum {:02x?} is wrong",
                &got[CHECKSUM..CHECKSUM + 2]
            );
        }
        seen[k] = true;
    }
    let missing: Vec<&str> = cases
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(c, _)| c.0.as_str())
        .collect();
    assert!(missing.is_empty(), "not seen on {ifname}: {missing:?}");

    // Receive: the tap PMD checks IPv4 header checksums in software, as a NIC would, and
    // marks each mbuf (one EAL per process, so this shares the port above).
    assert!(
        port.offloads().rx_ipv4_checksum(),
        "net_tap offers RTE_ETH_RX_OFFLOAD_IPV4_CKSUM and the port enabled it"
    );
    let mut rx = port.rx_queue(0).expect("rx queue");
    let into = PacketSocket::sender(&ifname);
    let good = tcp4(CLIENT4, VIP4, 41_000, 80, Tcp::Ack, b"rx checksum good");
    let bad = with_wrong_checksum(tcp4(
        CLIENT4,
        VIP4,
        41_001,
        80,
        Tcp::Ack,
        b"rx checksum bad",
    ));
    let mut marked: [Option<bool>; 2] = [None, None];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rxb = Burst::<32>::new();
    while marked.iter().any(Option::is_none) && Instant::now() < deadline {
        into.send(&good);
        into.send(&bad);
        std::thread::sleep(Duration::from_millis(20));
        rx.rx_burst(&mut rxb);
        for m in rxb.drain() {
            // Among the kernel's own frames: ours by their exact bytes.
            if let Some(k) = [&good, &bad].iter().position(|f| m.data() == &f[..]) {
                marked[k] = Some(m.ipv4_checksum_good());
            }
        }
    }
    assert_eq!(
        marked,
        [Some(true), Some(false)],
        "(good, bad) as marked by the tap PMD on {ifname}"
    );
}

/// `f` with its IPv4 header checksum off by one bit.
fn with_wrong_checksum(mut f: Vec<u8>) -> Vec<u8> {
    f[OUTER + 10] ^= 0x01;
    f
}
