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

fn service(
    id: u32,
    vip: IpAddr,
    port: u16,
    proto: Proto,
    forwarding: Forwarding,
    backends: &[IpAddr],
) -> ServiceSpec {
    let backends: Vec<BackendSpec> = backends
        .iter()
        .enumerate()
        .map(|(i, &address)| BackendSpec {
            id: id * 100 + i as u32,
            address,
            port: 0,
            weight: 100,
            up: true,
            egress: Egress {
                port: PORT,
                next_hop_mac: Some(NEXT_HOP_MAC),
            },
        })
        .collect();
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
        table: round_robin(backends.len(), 13),
        fallback_table: round_robin(backends.len(), 13),
        backends,
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
        .build()
        .ok()
}

/// The whole per-packet function over arbitrary bytes: it must not panic, a forwarded frame
/// goes out of a configured port to the configured next hop and grows by at most
/// [`MAX_GROWTH`], and a reply never grows beyond an ICMP error's bound.
pub fn fuzz_process(data: &[u8]) {
    static SNAPSHOT: OnceLock<Option<Snapshot>> = OnceLock::new();
    let Some(snap) = SNAPSHOT.get_or_init(fuzz_snapshot) else {
        return;
    };
    let mut p = Pipeline::new(&PipelineConfig {
        flows: FlowConfig {
            capacity: 64,
            max_new_flows_per_second: 2,
            tcp_syn_timeout: Duration::from_millis(5),
            ..FlowConfig::default()
        },
        ptb_per_second: 1,
        nat: false,
        exception_per_second: 2,
    });
    let mut buf = vec![0u8; HEADROOM + data.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + data.len()].copy_from_slice(data);
    // Run it twice: the second pass goes through the flow table's hit path.
    for round in 0..2u64 {
        let mut copy = buf.clone();
        let Ok(mut frame) = Frame::new(&mut copy, HEADROOM, data.len()) else {
            return;
        };
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
            Verdict::ToControl
            | Verdict::ToControlAndKernel
            | Verdict::ToKernel
            | Verdict::Drop(_) => {}
        }
    }
    let c = p.counters();
    assert_eq!(c.rx_packets, 2);
}

/// A forwarded frame's (outer) destination is a configured backend, or, for the l2-dsr
/// service (IPv6 VIP, IP header untouched), that VIP.
fn allowed_destination(out: &[u8]) -> bool {
    const V4: [[u8; 4]; 2] = [[203, 0, 113, 11], [203, 0, 113, 12]];
    let v6 = |d: u16| Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, d).octets();
    let v6s = [
        v6(11),
        v6(12),
        v6(13),
        Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 10).octets(),
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
}
