//! Round trips through the dataplane's pure packet path (no DPDK): client frames of flow i
//! built by the library, forwarded by a `Pipeline` in every forwarding mode, then decoded
//! back to flow i, its stamp and one of the service's backends, the same one every time.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::fuzzing::{service_spec, up_backends};
use dataplane::{
    Egress, Forwarding, InterfaceSpec, Pipeline, PipelineConfig, Proto, ServiceSpec, Snapshot,
    SnapshotBuilder, Verdict,
};
use traffic::stamp::TSC_MASK;
use traffic::{arp, BackendKey, Received, Target, Template, L4};

const HEADROOM: usize = 128;
const TAILROOM: usize = 64;
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];
/// The router in front of off-link backends (ipip, gue, nat, fullnat).
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const TABLE_SIZE: usize = 13;
const FLOWS: u32 = 300;

struct Svc {
    vip: IpAddr,
    port: u16,
    l4: L4,
    forwarding: Forwarding,
    backends: Vec<IpAddr>,
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn services() -> Vec<Svc> {
    use Forwarding::*;
    let four = |base: u8| {
        (0..3)
            .map(|i| v4(&format!("198.51.100.{}", base + i)))
            .collect()
    };
    let six = |base: u16| {
        (0..3)
            .map(|i| v6(&format!("2001:db8:be::{:x}", base + i)))
            .collect()
    };
    let svc = |vip: IpAddr, l4, forwarding, backends| Svc {
        vip,
        port: if l4 == L4::Udp { 53 } else { 80 },
        l4,
        forwarding,
        backends,
    };
    vec![
        svc(v4("203.0.113.10"), L4::TcpAck, Ipip, four(11)),
        svc(v4("203.0.113.11"), L4::Udp, Gue, four(21)),
        svc(v4("203.0.113.12"), L4::TcpAck, L2Dsr, four(31)),
        svc(v4("203.0.113.13"), L4::TcpSyn, Nat, four(41)),
        svc(v4("203.0.113.14"), L4::Udp, FullNat, four(51)),
        svc(v6("2001:db8:5::10"), L4::Udp, Ipip, six(0x11)),
        svc(v6("2001:db8:5::11"), L4::TcpAck, Gue, six(0x21)),
        svc(v6("2001:db8:5::12"), L4::TcpAck, L2Dsr, six(0x31)),
        svc(v6("2001:db8:5::14"), L4::TcpAck, FullNat, six(0x51)),
    ]
}

/// l2-dsr backends are on the link, each at the MAC the library answers ARP with; the
/// others sit behind one router.
fn next_hop(s: &Svc, backend: IpAddr) -> [u8; 6] {
    match (s.forwarding, backend) {
        (Forwarding::L2Dsr, IpAddr::V4(a)) => arp::mac_for(a.octets()),
        (Forwarding::L2Dsr, IpAddr::V6(a)) => {
            let o = a.octets();
            [0x02, 0x06, o[12], o[13], o[14], o[15]]
        }
        _ => GW_MAC,
    }
}

fn snapshot(services: &[Svc]) -> Snapshot {
    let mut b = SnapshotBuilder::new().interface(InterfaceSpec {
        port: 0,
        mac: OUR_MAC,
        ipv4: Some((Ipv4Addr::new(198, 51, 100, 1), 24)),
        ipv6: Some(("2001:db8:be::1".parse().unwrap(), 64)),
        mtu: 1500,
        ipv4_checksum_offload: false,
        kernel: false,
    });
    for (id, s) in services.iter().enumerate() {
        let id = id as u32 + 1;
        let n = s.backends.len();
        let backends = up_backends(id, &s.backends, |address| Egress {
            port: 0,
            next_hop_mac: Some(next_hop(s, address)),
        });
        let proto = if s.l4 == L4::Udp {
            Proto::Udp
        } else {
            Proto::Tcp
        };
        let table: Vec<u32> = (0..TABLE_SIZE).map(|i| (i % n) as u32).collect();
        b = b.service(ServiceSpec {
            local_addresses: if s.forwarding == Forwarding::FullNat {
                vec![v4("198.51.100.200"), v6("2001:db8:be::200")]
            } else {
                Vec::new()
            },
            fallback_table: table.clone(),
            table,
            ..service_spec(id, s.vip, s.port, proto, s.forwarding, backends)
        });
    }
    b.build().unwrap()
}

/// The backend a forwarding mode's output names, as [`traffic::decode`] reports it.
fn key_of(s: &Svc, backend: IpAddr) -> BackendKey {
    match s.forwarding {
        Forwarding::Ipip | Forwarding::Gue => BackendKey::Ip(backend),
        // The frame itself goes to the backend (l2-dsr) or its router (nat, fullnat).
        _ => BackendKey::Mac(next_hop(s, backend)),
    }
}

#[test]
fn every_forwarding_mode_decodes_back_to_the_flow_its_stamp_and_one_backend() {
    let services = services();
    let snap = snapshot(&services);
    let mut p = Pipeline::new(&PipelineConfig {
        nat: true,
        ..PipelineConfig::default()
    });
    let mut now = 1_000_000u64;
    for s in &services {
        let t = Template::new(
            Target {
                vip: s.vip,
                port: s.port,
            },
            s.l4,
            0,
            CLIENT_MAC,
            OUR_MAC,
        );
        let mut first: HashMap<u32, IpAddr> = HashMap::new();
        // Each flow twice: the second packet must reach the first one's backend.
        for round in 0..2u64 {
            for flow in 0..FLOWS {
                let tsc = 0x0123_4567_0000 + u64::from(flow) * 7 + round;
                let mut buf = vec![0u8; HEADROOM + t.frame_len() + TAILROOM];
                assert!(t.write(&mut buf[HEADROOM..HEADROOM + t.frame_len()], flow, tsc));
                let mut f = dataplane::Frame::new(&mut buf, HEADROOM, t.frame_len()).unwrap();
                now += 1_000;
                let v = p.process(&mut f, 0, &snap, now);
                let what = format!("{} {:?} flow {flow} round {round}", s.vip, s.forwarding);
                assert_eq!(v, Verdict::Forward { port: 0 }, "{what}");
                let Received::Ours(r) = traffic::parse(f.data()) else {
                    panic!("{what}: {:?}", traffic::parse(f.data()));
                };
                assert_eq!((r.flow, r.tsc), (flow, tsc & TSC_MASK), "{what}: the stamp");
                // nat and fullnat name the backend by the translated destination, the others
                // keep the VIP inside and name it outside (address or MAC).
                let backend = if s.forwarding.translates() {
                    Some(r.inner_dst).filter(|b| s.backends.contains(b))
                } else {
                    assert_eq!(r.inner_dst, s.vip, "{what}: the VIP inside");
                    s.backends
                        .iter()
                        .copied()
                        .find(|&b| key_of(s, b) == r.backend)
                };
                let Some(backend) = backend else {
                    panic!("{what}: {r:?} names no backend");
                };
                assert_eq!(r.backend, key_of(s, backend), "{what}: the outside");
                assert_eq!(
                    *first.entry(flow).or_insert(backend),
                    backend,
                    "{what}: moved"
                );
            }
        }
        let used: HashSet<_> = first.values().collect();
        assert_eq!(
            used.len(),
            s.backends.len(),
            "{} {:?}: backends used",
            s.vip,
            s.forwarding
        );
    }
}
