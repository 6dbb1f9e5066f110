//! nat and fullnat against the RFCs' rules for a NAT (RFC 5508) and a router (RFC 1812,
//! RFC 4443), beyond nat.rs's golden cases.

mod common;

use common::nat::*;
use common::*;
use dataplane::{FlowConfig, Pipeline, PipelineConfig, Snapshot, Verdict};

/// A pipeline with connection tracking and room for 4,096 entries.
fn tracking_pipeline() -> Pipeline {
    Pipeline::new(&PipelineConfig {
        flows: FlowConfig {
            capacity: 4096,
            ..FlowConfig::default()
        },
        nat: true,
        ..PipelineConfig::default()
    })
}

/// Opens a nat UDP connection client:40000 -> VIP:53 -> backend:53 at t = 1 ms; returns
/// (client, VIP, backend).
fn open_udp(p: &mut Pipeline, snap: &Snapshot, v6: bool) -> ([u8; 16], [u8; 16], [u8; 16]) {
    let (client, vip, backend) = if v6 {
        (CLIENT6, VIP6_NAT, be6(0x41))
    } else {
        (m4(CLIENT4), m4(VIP4_NAT), m4(be4(141)))
    };
    let c = build(&udp(ROUTER_MAC, OUR_MAC, client, vip, 40_000, 53), b"q");
    assert_eq!(
        each(p, snap, &[c], PORT, 1_000_000)[0].0,
        Verdict::Forward { port: BE_PORT }
    );
    (client, vip, backend)
}

/// An ICMP error whose checksum does not verify must not leave translated with a checksum
/// that does (RFC 5508 REQ-3 a: the NAT SHOULD silently drop it). Summing the message again
/// after the rewrite would launder a corrupted error into a valid-looking one.
mod icmp_error_checksum {
    use super::{open_udp, tracking_pipeline};
    use crate::common::nat::*;
    use crate::common::*;
    use dataplane::{DropReason, Verdict};

    /// Flips a bit of the ICMP checksum of an untagged frame (IPv4 without options or IPv6).
    fn corrupt_icmp(f: &mut [u8]) {
        let at = if f[14] >> 4 == 4 {
            14 + 20 + 2
        } else {
            14 + 40 + 2
        };
        f[at] ^= 0x10;
    }

    fn check(v6: bool) {
        let snap = nat_snapshot(DrainState::Normal);
        let mut p = tracking_pipeline();
        let (client, vip, backend) = open_udp(&mut p, &snap, v6);
        // From the client side about a reply (VIP -> client), then from the backend side about
        // a translated packet (client -> backend): each forwarded whole, dropped corrupted.
        let client_side = (
            udp(OUR_MAC, ROUTER_MAC, vip, client, 53, 40_000),
            (ROUTER_MAC, OUR_MAC, client, vip),
            (PORT, BE_PORT),
        );
        let backend_side = (
            udp(BE_IF_MAC, BE_GW_MAC, client, backend, 40_000, 53),
            (BE_GW_MAC, BE_IF_MAC, backend, client),
            (BE_PORT, PORT),
        );
        let mut t = 2_000_000;
        for (quoted, (smac, dmac, src, dst), (in_port, out_port)) in [client_side, backend_side] {
            let quote = ip_packet(&quoted, b"r");
            let mut e = port_unreachable((smac, dmac), src, dst, 64, &quote, 200);
            let good = each(&mut p, &snap, std::slice::from_ref(&e), in_port, t);
            assert_eq!(good[0].0, Verdict::Forward { port: out_port });
            corrupt_icmp(&mut e);
            let bad = each(&mut p, &snap, &[e], in_port, t + 1_000_000);
            assert_eq!(
                bad[0].0,
                Verdict::Drop(DropReason::BadChecksum),
                "from port {in_port}: out {:?}",
                verify_checksums(&bad[0].1)
            );
            t += 2_000_000;
        }
    }

    #[test]
    fn a_corrupted_icmp_error_is_not_translated_v4() {
        check(false);
    }

    #[test]
    fn a_corrupted_icmp_error_is_not_translated_v6() {
        check(true);
    }
}

/// A nat reply too big for the client side's MTU gets a fragmentation-needed / packet-too-big
/// back to the backend. Its source must be one of the appliance's addresses (RFC 1812
/// 4.3.2.4, RFC 4443 2.2), never the client's: in nat mode the reply's destination is the
/// client, whose address the appliance would be forging.
mod too_big_source {
    use super::{open_udp, tracking_pipeline};
    use crate::common::nat::*;
    use crate::common::*;
    use dataplane::Verdict;

    fn check(v6: bool) {
        let snap = nat_snapshot(DrainState::Normal);
        let mut p = tracking_pipeline();
        let (client, vip, backend) = open_udp(&mut p, &snap, v6);
        // The backend's reply, larger than the client side's MTU.
        let big = vec![7u8; usize::from(MTU)];
        let r = build(
            &udp(BE_GW_MAC, BE_IF_MAC, backend, client, 53, 40_000),
            &big,
        );
        let out = each(&mut p, &snap, &[r], BE_PORT, 2_000_000);
        assert_eq!(out[0].0, Verdict::Reply { port: BE_PORT });
        verify_checksums(&out[0].1).unwrap();
        let (src, dst) = addrs(&out[0].1);
        assert_eq!(dst, backend);
        assert_ne!(src, client, "the PTB forges the client's address");
        assert_eq!(src, vip, "the PTB comes from the connection's VIP");
    }

    #[test]
    fn a_nat_replys_ptb_does_not_forge_the_client_v4() {
        check(false);
    }

    #[test]
    fn a_nat_replys_ptb_does_not_forge_the_client_v6() {
        check(true);
    }
}

/// A nat connection is two flow entries; capacity eviction may pick either. Evicting one evicts
/// the other: a client packet that still hits its forward entry then always finds the reverse
/// one too, and the backend's reply comes back (nat and fullnat) instead of being dropped as
/// `not_vip` for as long as the client keeps the forward entry alive.
mod half_evicted {
    use crate::common::nat::*;
    use crate::common::*;
    use dataplane::{DropReason, FlowConfig, Pipeline, PipelineConfig, Verdict};

    fn client(src: [u8; 4], sport: u16, vip: [u8; 4], dport: u16) -> Vec<u8> {
        build(
            &Hdr {
                smac: ROUTER_MAC,
                dmac: OUR_MAC,
                src: m4(src),
                dst: m4(vip),
                ttl: 64,
                sport,
                dport,
                l4: L4::Udp,
            },
            b"q",
        )
    }

    fn run(full: bool) -> (usize, usize) {
        let snap = nat_snapshot(DrainState::Normal);
        let (vip, dport) = if full {
            (VIP4_FULL, 53)
        } else {
            (VIP4_NAT, 53)
        };
        let (mut broken, mut tried) = (0, 0);
        // Vary how many later connections compete for the 16 ways of a 2-bucket table.
        for others in 1..200u16 {
            let mut p = Pipeline::new(&PipelineConfig {
                flows: FlowConfig {
                    capacity: 64,
                    ..FlowConfig::default()
                },
                nat: true,
                ..PipelineConfig::default()
            });
            let mut t = 1_000_000u64;
            let a = client(CLIENT4, 40_000, vip, dport);
            let first = each(&mut p, &snap, std::slice::from_ref(&a), PORT, t);
            assert_eq!(first[0].0, Verdict::Forward { port: BE_PORT });
            let mapping = first[0].1.clone();
            for i in 0..others {
                t += 1_000;
                let o = client(
                    [203, 0, (i >> 8) as u8 + 1, i as u8],
                    50_000 + i,
                    vip,
                    dport,
                );
                each(&mut p, &snap, &[o], PORT, t);
            }
            // The client's next packet: only the case where its forward entry survived (a hit,
            // no entry created) counts.
            t += 1_000;
            let created = p.counters().flows_created;
            let again = each(&mut p, &snap, std::slice::from_ref(&a), PORT, t);
            let hit = p.counters().flows_created == created;

            if !hit || again[0].0 != (Verdict::Forward { port: BE_PORT }) || again[0].1 != mapping {
                continue;
            }
            tried += 1;
            // The backend answers what it got.
            t += 1_000;
            let reply = answers(&again);
            let back = each(&mut p, &snap, &reply, BE_PORT, t);
            if back[0].0 == Verdict::Drop(DropReason::NotVip) {
                broken += 1;
            } else {
                assert_eq!(
                    back[0].0,
                    Verdict::Forward { port: PORT },
                    "others {others}"
                );
            }
        }
        (broken, tried)
    }

    #[test]
    fn a_surviving_forward_entry_keeps_its_reverse_nat() {
        let (broken, tried) = run(false);
        assert!(tried > 0);
        assert_eq!(
            broken, 0,
            "{broken} of {tried} connections lost their replies"
        );
    }

    #[test]
    fn a_surviving_forward_entry_keeps_its_reverse_fullnat() {
        let (broken, tried) = run(true);
        assert!(tried > 0);
        assert_eq!(
            broken, 0,
            "{broken} of {tried} connections lost their replies"
        );
    }
}
