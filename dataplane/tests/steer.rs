//! Steering nat/fullnat packets between workers: both directions of a connection (and ICMP
//! errors about either) have one owner; the owner translates them, any other worker hands
//! them over untouched; fullnat ports land in the owner's residue class; DSR has no owner.

mod common;

use std::net::IpAddr;

use common::nat::*;
use common::*;
use dataplane::steer::owner;
use dataplane::{Pipeline, Snapshot, Verdict};
use proptest::prelude::*;

fn mapped(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => m4(a.octets()),
        IpAddr::V6(a) => a.octets(),
    }
}

/// Runs `pkt` (arriving on `port`) through `p`: the verdict and the frame after it.
fn run(p: &mut Pipeline, snap: &Snapshot, port: u16, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    let mut buf = buffer(pkt);
    let mut f = frame(&mut buf, pkt.len());
    let v = p.process(&mut f, port, snap, 1_000);
    (v, f.data().to_vec())
}

/// One connection's four packets as they arrive: the client's, the backend's reply, an ICMP
/// error from the backend about the translated packet, and one from the client about the
/// reply. The backend-side ones need the translated packet (`at_backend`).
struct Packets {
    forward: Vec<u8>,
    reply: Vec<u8>,
    icmp_from_backend: Vec<u8>,
    icmp_from_client: Vec<u8>,
}

/// The client's packet as it arrives.
fn client_packet(client: [u8; 16], cport: u16, vip: [u8; 16], vport: u16, l4: L4) -> Vec<u8> {
    let h = Hdr {
        smac: ROUTER_MAC,
        dmac: OUR_MAC,
        src: client,
        dst: vip,
        ttl: 64,
        sport: cport,
        dport: vport,
        l4,
    };
    build(&h, b"hello")
}

#[allow(clippy::too_many_arguments)]
fn packets(
    client: [u8; 16],
    cport: u16,
    vip: [u8; 16],
    vport: u16,
    backend: [u8; 16],
    bport: u16,
    l4: L4,
    at_backend: &[u8],
) -> Packets {
    let (inside, _) = addrs(at_backend);
    let (iport, _) = ports(at_backend);
    let reply = Hdr {
        smac: BE_GW_MAC,
        dmac: BE_IF_MAC,
        src: backend,
        dst: inside,
        ttl: 64,
        sport: bport,
        dport: iport,
        l4,
    };
    let at_client = Hdr {
        smac: OUR_MAC,
        dmac: ROUTER_MAC,
        src: vip,
        dst: client,
        ttl: 63,
        sport: vport,
        dport: cport,
        l4,
    };
    Packets {
        forward: client_packet(client, cport, vip, vport, l4),
        reply: build(&reply, b"hello"),
        icmp_from_backend: port_unreachable(
            (BE_GW_MAC, BE_IF_MAC),
            backend,
            inside,
            64,
            &at_backend[14..],
            64,
        ),
        icmp_from_client: port_unreachable(
            (ROUTER_MAC, OUR_MAC),
            client,
            vip,
            64,
            &build(&at_client, b"hello")[14..],
            64,
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any client of any nat/fullnat service, with 1 to 8 workers.
    #[test]
    fn both_ways_of_a_connection_have_one_owner(
        svc in 0usize..8,
        host in any::<u16>(),
        cport in 1u16..,
        workers in 1u16..=8,
        other in any::<u16>(),
    ) {
        let snap = nat_snapshot(DrainState::Normal);
        let (_, vip, vport, proto, fwd, backend, bport) = nat_services()[svc];
        let vip = mapped(vip);
        let backend = mapped(backend);
        let bport = if bport == 0 { vport } else { bport };
        let is_v6 = vip[..12] != m4([0; 4])[..12];
        let client = if is_v6 { v6(9, host) } else { m4([203, 0, 113, host as u8]) };
        let l4 = if proto == dataplane::Proto::Tcp { L4::Tcp(Tcp::Syn) } else { L4::Udp };
        let first = client_packet(client, cport, vip, vport, l4);
        let o = owner(&first, &snap, workers);
        prop_assert!(o.is_some_and(|o| o < workers), "owner {o:?} of {workers}");
        let o = o.unwrap_or(0);
        let mut p = nat_pipeline(o, workers);
        let (v, at_backend) = run(&mut p, &snap, PORT, &first);
        prop_assert_eq!(v, Verdict::Forward { port: BE_PORT });
        let (inside, _) = addrs(&at_backend);
        let (iport, _) = ports(&at_backend);
        if fwd == dataplane::Forwarding::FullNat {
            prop_assert_eq!(iport % workers, o, "fullnat port {} in the owner's class", iport);
        } else {
            prop_assert_eq!((inside, iport), (client, cport));
        }
        let pk = packets(client, cport, vip, vport, backend, bport, l4, &at_backend);
        let all = [
            ("reply", &pk.reply, BE_PORT, PORT),
            ("icmp from backend", &pk.icmp_from_backend, BE_PORT, PORT),
            ("icmp from client", &pk.icmp_from_client, PORT, BE_PORT),
        ];
        // Another worker hands each over untouched, to the owner.
        if workers > 1 {
            let mut q = nat_pipeline((o + 1 + other % (workers - 1)) % workers, workers);
            for (what, pkt, port, _) in all.iter().chain([&("forward", &pk.forward, PORT, BE_PORT)]) {
                prop_assert_eq!(owner(pkt, &snap, workers), Some(o), "{}", what);
                let (v, out) = run(&mut q, &snap, *port, pkt);
                prop_assert_eq!(v, Verdict::Redirect { worker: o }, "{}", what);
                prop_assert_eq!(&out, *pkt, "{} untouched", what);
            }
            prop_assert_eq!(q.counters().nat_redirected, 4);
            prop_assert_eq!(q.flow_count(), 0, "the non-owner tracks nothing");
        }
        // The owner translates each of them.
        for (what, pkt, port, out_port) in all {
            prop_assert_eq!(owner(pkt, &snap, workers), Some(o), "{}", what);
            let (v, _) = run(&mut p, &snap, port, pkt);
            prop_assert_eq!(v, Verdict::Forward { port: out_port }, "{}", what);
        }
        prop_assert_eq!(p.counters().nat_redirected, 0);
    }
}

/// A connection whose packets arrive at the wrong worker: redirected to the owner, which
/// translates them exactly as a single worker would (nat keeps the client's port, so the
/// bytes compare).
#[test]
fn a_reply_on_the_other_worker_is_redirected_then_translated_by_the_owner() {
    let snap = nat_snapshot(DrainState::Normal);
    let (vip, backend) = (m4(VIP4_NAT), m4(be4(140)));
    // A client port each worker owns, so both directions are tried from both workers.
    for cport in [40_000u16, 40_001, 40_002, 40_003] {
        let client = m4(CLIENT4);
        let l4 = L4::Tcp(Tcp::Syn);
        let first = client_packet(client, cport, vip, 80, l4);
        let o = owner(&first, &snap, 2).unwrap();
        let mut w = [nat_pipeline(0, 2), nat_pipeline(1, 2)];
        let mut single = nat_pipeline(0, 1);
        let non = usize::from(1 - o);
        // The client's packet reached the non-owner's queue.
        let (v, handed) = run(&mut w[non], &snap, PORT, &first);
        assert_eq!(v, Verdict::Redirect { worker: o });
        let (v, at_backend) = run(&mut w[usize::from(o)], &snap, PORT, &handed);
        assert_eq!(v, Verdict::Forward { port: BE_PORT });
        assert_eq!(run(&mut single, &snap, PORT, &first).1, at_backend);
        let pk = packets(client, cport, vip, 80, backend, 8080, l4, &at_backend);
        // And so did the backend's reply.
        let (v, handed) = run(&mut w[non], &snap, BE_PORT, &pk.reply);
        assert_eq!(v, Verdict::Redirect { worker: o });
        let (v, to_client) = run(&mut w[usize::from(o)], &snap, BE_PORT, &handed);
        assert_eq!(v, Verdict::Forward { port: PORT });
        assert_eq!(run(&mut single, &snap, BE_PORT, &pk.reply).1, to_client);
        assert_eq!(w[non].counters().nat_redirected, 2);
        assert_eq!(w[non].flow_count(), 0);
        assert_eq!(w[usize::from(o)].counters().nat_replies, 1);
    }
}

/// A fullnat connection opened on worker 1 of 2 takes an odd port; its reply, arriving at
/// worker 0, goes to worker 1.
#[test]
fn fullnat_ports_follow_their_worker() {
    let snap = nat_snapshot(DrainState::Normal);
    let (vip, backend) = (m4(VIP4_FULL), m4(be4(142)));
    let mut seen = [false; 2];
    for cport in 40_000u16..40_064 {
        let l4 = L4::Tcp(Tcp::Syn);
        let first = client_packet(m4(CLIENT4), cport, vip, 80, l4);
        let o = owner(&first, &snap, 2).unwrap();
        seen[usize::from(o)] = true;
        let mut p = nat_pipeline(o, 2);
        let (v, at_backend) = run(&mut p, &snap, PORT, &first);
        assert_eq!(v, Verdict::Forward { port: BE_PORT });
        let (lport, _) = ports(&at_backend);
        assert_eq!(lport % 2, o, "port {lport} of worker {o}");
        let pk = packets(m4(CLIENT4), cport, vip, 80, backend, 80, l4, &at_backend);
        let (v, _) = run(&mut nat_pipeline(1 - o, 2), &snap, BE_PORT, &pk.reply);
        assert_eq!(v, Verdict::Redirect { worker: o });
        assert_eq!(
            run(&mut p, &snap, BE_PORT, &pk.reply).0,
            Verdict::Forward { port: PORT }
        );
    }
    assert_eq!(seen, [true, true], "both workers own some of the clients");
}

/// Tunnel and DSR traffic, and the host's, have no owner: every worker forwards it itself.
#[test]
fn dsr_traffic_is_never_redirected() {
    let snap = snapshot();
    for sport in 1000..1032 {
        let pkt = tcp4(CLIENT4, VIP4, sport, 80, Tcp::Syn, b"");
        assert_eq!(owner(&pkt, &snap, 2), None);
        for w in 0..2 {
            let (v, _) = run(&mut nat_pipeline(w, 2), &snap, PORT, &pkt);
            assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
        }
    }
}
