//! Fuzz bodies, callable from cargo-fuzz targets and from plain tests replaying the corpus.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::Duration;

use crate::flow::FlowConfig;
use crate::frame::Frame;
use crate::pipeline::{Pipeline, PipelineConfig, Verdict, MAX_GROWTH};
use crate::snapshot::{
    BackendSpec, Egress, Forwarding, HashKind, InterfaceSpec, Proto, ServiceSpec, Snapshot,
    SnapshotBuilder, WhenAllDown,
};

/// Headroom the fuzz frames get, as an mbuf's `RTE_PKTMBUF_HEADROOM`.
pub const HEADROOM: usize = 128;
/// Tailroom, enough for a neighbour advertisement grown from a short solicitation.
pub const TAILROOM: usize = 64;
pub const PORT: u16 = 0;
pub const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
pub const NEXT_HOP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// Deterministic round-robin table (test scaffolding; control fills real Maglev tables).
fn round_robin(n: usize, size: usize) -> Vec<u32> {
    (0..size).map(|i| (i % n.max(1)) as u32).collect()
}

/// Up, weight-100 backends numbered `id * 100 + i`, keeping the client's port, each leaving
/// by `egress(address)`; shared with the tests that build snapshots by hand.
pub fn up_backends(
    id: u32,
    addresses: &[IpAddr],
    egress: impl Fn(IpAddr) -> Egress,
) -> Vec<BackendSpec> {
    addresses
        .iter()
        .enumerate()
        .map(|(i, &address)| BackendSpec {
            id: id * 100 + i as u32,
            address,
            port: 0,
            weight: 100,
            up: true,
            egress: egress(address),
        })
        .collect()
}

/// Service `id` (`svc{id}`): five-tuple hash, drops when all down, no local addresses and
/// empty tables, for callers to fill in with struct update syntax.
pub fn service_spec(
    id: u32,
    vip: IpAddr,
    port: u16,
    proto: Proto,
    forwarding: Forwarding,
    backends: Vec<BackendSpec>,
) -> ServiceSpec {
    ServiceSpec {
        id,
        name: format!("svc{id}"),
        vip,
        port,
        proto,
        hash: HashKind::FiveTuple,
        forwarding,
        local_addresses: Vec::new(),
        when_all_down: WhenAllDown::Drop,
        table: Vec::new(),
        fallback_table: Vec::new(),
        backends,
    }
}

fn service(
    id: u32,
    vip: IpAddr,
    port: u16,
    proto: Proto,
    forwarding: Forwarding,
    backends: &[IpAddr],
) -> ServiceSpec {
    let backends = up_backends(id, backends, |_| Egress {
        port: PORT,
        next_hop_mac: Some(NEXT_HOP_MAC),
    });
    let table = round_robin(backends.len(), 13);
    ServiceSpec {
        fallback_table: table.clone(),
        table,
        ..service_spec(id, vip, port, proto, forwarding, backends)
    }
}

/// The configuration the fuzz body runs against: one interface, a few services of every
/// forwarding mode and family (VIPs and backends from the documentation ranges).
pub fn fuzz_snapshot() -> Option<Snapshot> {
    let v4 = |d: u8| IpAddr::V4(Ipv4Addr::new(203, 0, 113, d));
    let v6 = |d: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, d));
    SnapshotBuilder::new()
        .interface(InterfaceSpec {
            port: PORT,
            mac: MAC,
            ipv4: Some((Ipv4Addr::new(192, 0, 2, 10), 24)),
            ipv6: Some((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10), 64)),
            mtu: 1500,
            ipv4_checksum_offload: false,
            kernel: true,
        })
        .service(service(
            1,
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)),
            80,
            Proto::Tcp,
            Forwarding::Ipip,
            &[v4(11), v4(12)],
        ))
        .service(service(
            2,
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)),
            53,
            Proto::Udp,
            Forwarding::Gue,
            &[v4(11), v6(12)],
        ))
        .service(service(
            3,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 10)),
            0,
            Proto::Tcp,
            Forwarding::Gue,
            &[v6(11), v6(12)],
        ))
        .service(service(
            4,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 10)),
            53,
            Proto::Udp,
            Forwarding::L2Dsr,
            &[v6(11)],
        ))
        .service(service(
            5,
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 11)),
            0,
            Proto::Udp,
            Forwarding::Ipip,
            &[v6(13)],
        ))
        // nat and fullnat, with the addresses of tests/nat.rs so its inputs are seeds here.
        .service(service(
            6,
            IpAddr::V4(NAT_VIP4),
            53,
            Proto::Udp,
            Forwarding::Nat,
            &[IpAddr::V4(NAT_BACKEND4)],
        ))
        .service(with_backend_port(
            service(
                7,
                IpAddr::V4(NAT_VIP4),
                80,
                Proto::Tcp,
                Forwarding::Nat,
                &[IpAddr::V4(Ipv4Addr::new(192, 0, 2, 140))],
            ),
            8080,
        ))
        .service(with_locals(with_backend_port(
            service(
                8,
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, 71)),
                53,
                Proto::Udp,
                Forwarding::FullNat,
                &[IpAddr::V4(Ipv4Addr::new(192, 0, 2, 143))],
            ),
            5353,
        )))
        .service(with_locals(service(
            9,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x71)),
            80,
            Proto::Tcp,
            Forwarding::FullNat,
            &[IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 3, 0, 0, 0, 0, 0x42,
            ))],
        )))
        .service(service(
            10,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x70)),
            53,
            Proto::Udp,
            Forwarding::Nat,
            &[IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 3, 0, 0, 0, 0, 0x41,
            ))],
        ))
        .build()
        .ok()
}

const NAT_VIP4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 70);
const NAT_BACKEND4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 141);
/// The client of the connection every fuzz run starts with (so replies can find one).
const NAT_CLIENT4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 200);
const NAT_CLIENT_PORT: u16 = 40_001;

fn with_backend_port(mut s: ServiceSpec, port: u16) -> ServiceSpec {
    s.backends.iter_mut().for_each(|b| b.port = port);
    s
}

fn with_locals(mut s: ServiceSpec) -> ServiceSpec {
    s.local_addresses = vec![
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 0x200)),
    ];
    s
}

/// A UDP datagram from the nat client to the nat VIP's port 53, delivered by the next hop.
fn nat_opening() -> Vec<u8> {
    use crate::wire::{ethernet, ipv4, proto, udp};
    let len = ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + 4;
    let mut f = vec![0u8; ethernet::HEADER_LEN + len];
    let (eth, ip) = f.split_at_mut(ethernet::HEADER_LEN);
    let mut e = ethernet::EthernetFrame::new_unchecked(eth);
    e.set_dst(MAC);
    e.set_src(NEXT_HOP_MAC);
    e.set_ethertype(ethernet::ETHERTYPE_IPV4);
    ipv4::emit_header(
        ip,
        0,
        len as u16,
        64,
        proto::UDP,
        NAT_CLIENT4.octets(),
        NAT_VIP4.octets(),
        false,
    );
    udp::emit_header(
        &mut ip[ipv4::MIN_HEADER_LEN..],
        NAT_CLIENT_PORT,
        53,
        (udp::HEADER_LEN + 4) as u16,
        0,
    );
    f
}

/// The whole per-packet function over arbitrary bytes: it must not panic, a forwarded frame
/// goes out of a configured port to the configured next hop and grows by at most
/// [`MAX_GROWTH`], and a reply never grows beyond an ICMP error's bound.
pub fn fuzz_process(data: &[u8]) {
    static SNAPSHOT: OnceLock<Option<Snapshot>> = OnceLock::new();
    let Some(snap) = SNAPSHOT.get_or_init(fuzz_snapshot) else {
        return;
    };
    let opening = nat_opening();
    // One of two workers, the opening connection's owner: the other's packets are redirected.
    let worker = crate::steer::owner(&opening, snap, 2).unwrap_or(0);
    let mut p = Pipeline::new(&PipelineConfig {
        flows: FlowConfig {
            capacity: 64,
            max_new_flows_per_second: 2,
            tcp_syn_timeout: Duration::from_millis(5),
            ..FlowConfig::default()
        },
        ptb_per_second: 1,
        nat: true,
        exception_per_second: 2,
        worker,
        workers: 2,
    });
    let mut seed = vec![0u8; HEADROOM + opening.len()];
    seed[HEADROOM..].copy_from_slice(&opening);
    if let Ok(mut f) = Frame::new(&mut seed, HEADROOM, opening.len()) {
        assert_eq!(
            p.process(&mut f, PORT, snap, 0),
            Verdict::Forward { port: PORT },
            "the opening nat connection"
        );
    }
    let mut buf = vec![0u8; HEADROOM + data.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + data.len()].copy_from_slice(data);
    // Run it twice: the second pass goes through the flow table's hit path, as a frame whose
    // IPv4 header checksum the NIC vouched for (trusted, not summed: whatever the bytes say).
    for round in 0..2u64 {
        let mut copy = buf.clone();
        let Ok(mut frame) = Frame::new(&mut copy, HEADROOM, data.len()) else {
            return;
        };
        let trusted = round == 1;
        frame.ipv4_checksum_good = trusted;
        let v = p.process(&mut frame, PORT, snap, round * 1_000_000);
        let out = frame.data();
        match v {
            Verdict::Forward { port } => {
                assert_eq!(port, PORT);
                assert!(out.len() <= data.len() + MAX_GROWTH);
                assert_eq!(out[..6], NEXT_HOP_MAC);
                assert_eq!(out[6..12], MAC);
                assert!(allowed_destination(out), "forwarded to an unknown address");
            }
            Verdict::Reply { port } => {
                assert_eq!(port, PORT);
                assert!(out.len() <= data.len().max(22 + 1280) + TAILROOM);
                assert_eq!(out[6..12], MAC);
                // Back to the sender, except a neighbour advertisement, which may go to the
                // solicitation's link-layer option or to all-nodes.
                assert!(out[..6] == data[6..12] || is_neighbor_advert(out));
            }
            Verdict::Redirect { worker: to } => {
                assert_ne!(to, worker);
                assert_eq!(
                    crate::steer::owner_trusting(data, trusted, snap, 2),
                    Some(to)
                );
                assert_eq!(out, data, "a redirected frame is handed over untouched");
            }
            Verdict::ToControl
            | Verdict::ToControlAndKernel
            | Verdict::ToKernel
            | Verdict::Drop(_) => {}
        }
    }
    let c = p.counters();
    assert_eq!(c.processed, 3);
}

/// A forwarded frame's (outer) destination is a configured backend, for the l2-dsr
/// service (IPv6 VIP, IP header untouched) that VIP, or for a nat reply the opening client.
fn allowed_destination(out: &[u8]) -> bool {
    const V4: [[u8; 4]; 6] = [
        [203, 0, 113, 11],
        [203, 0, 113, 12],
        NAT_BACKEND4.octets(),
        [192, 0, 2, 140],
        [192, 0, 2, 143],
        NAT_CLIENT4.octets(),
    ];
    let v6 = |d: u16| Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, d).octets();
    let v6s = [
        v6(11),
        v6(12),
        v6(13),
        Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 10).octets(),
        Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 0x42).octets(),
        Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 0x41).octets(),
    ];
    match (out.get(12..14), out.len()) {
        (Some([0x08, 0x00]), n) if n >= 34 => V4.iter().any(|a| out[30..34] == a[..]),
        (Some([0x86, 0xdd]), n) if n >= 54 => v6s.iter().any(|a| out[38..54] == a[..]),
        _ => false,
    }
}

fn is_neighbor_advert(out: &[u8]) -> bool {
    crate::wire::ethernet::parse_l2(out).is_ok_and(|l2| {
        l2.ethertype == crate::wire::ethernet::ETHERTYPE_IPV6
            && out.get(l2.len + 6) == Some(&crate::wire::proto::ICMPV6)
            && out.get(l2.len + 40) == Some(&crate::wire::icmp::v6::NEIGHBOR_ADVERT)
    })
}

#[cfg(test)]
mod tests {
    /// Without its snapshot `fuzz_process` returns at once: every fuzz run would test nothing.
    #[test]
    fn the_fuzz_snapshot_builds() {
        assert!(super::fuzz_snapshot().is_some());
    }

    /// The opening connection is there for fuzz inputs to reply to: the backend's reply
    /// reaches the client (checked by `fuzz_process`'s own assertions as well).
    #[test]
    fn a_reply_to_the_opening_connection_is_translated() {
        use super::*;
        let snap = fuzz_snapshot().unwrap();
        let mut p = Pipeline::new(&PipelineConfig {
            nat: true,
            ..PipelineConfig::default()
        });
        let mut open = nat_opening();
        let n = open.len();
        let mut f = Frame::new(&mut open, 0, n).unwrap();
        assert_eq!(
            p.process(&mut f, PORT, &snap, 0),
            Verdict::Forward { port: PORT }
        );
        let mut reply = nat_opening();
        reply[26..30].copy_from_slice(&NAT_BACKEND4.octets());
        reply[30..34].copy_from_slice(&NAT_CLIENT4.octets());
        reply[34..36].copy_from_slice(&53u16.to_be_bytes());
        reply[36..38].copy_from_slice(&NAT_CLIENT_PORT.to_be_bytes());
        reply[24..26].copy_from_slice(&[0, 0]);
        let c = crate::checksum::of(&reply[14..34]);
        reply[24..26].copy_from_slice(&c.to_be_bytes());
        let mut f = Frame::new(&mut reply, 0, n).unwrap();
        assert_eq!(
            p.process(&mut f, PORT, &snap, 1),
            Verdict::Forward { port: PORT }
        );
        assert_eq!(p.counters().nat_replies, 1);
        assert!(allowed_destination(f.data()));
        fuzz_process(&reply);
    }
}
