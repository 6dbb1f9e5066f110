//! The RFCs' rules for what the appliance answers itself (echo, neighbour discovery, packet
//! too big): a corrupted or unanswerable message gets no valid-looking answer.

mod common;

/// An echo request whose ICMP checksum is bad must not be answered with a good one: the reply
/// is summed again from scratch, which turns a corrupted request into a valid reply (a host
/// discards it, RFC 1122 3.2.2 / Linux `icmp_rcv`). Updated incrementally (RFC 1624), the
/// reply keeps the request's error and the client discards it.
mod echo {
    use crate::common::*;
    use dataplane::{Pipeline, PipelineConfig, Verdict};

    fn icmp_ok(f: &[u8]) -> bool {
        let p = &f[14..];
        let mut words: Vec<u8> = Vec::new();
        let msg = if p[0] >> 4 == 4 {
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            &p[20..total]
        } else {
            let len = usize::from(u16::from_be_bytes([p[4], p[5]]));
            words.extend_from_slice(&p[8..40]);
            words.extend_from_slice(&(len as u32).to_be_bytes());
            words.extend_from_slice(&[0, 0, 0, 58]);
            &p[40..40 + len]
        };
        words.extend_from_slice(msg);
        let mut sum: u64 = 0;
        for c in words.chunks(2) {
            sum += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    #[test]
    fn a_corrupted_echo_request_gets_no_valid_reply() {
        let snap = snapshot();
        let mut p = Pipeline::new(&PipelineConfig::default());
        for (req, icmp_at) in [
            (echo4(CLIENT4, VIP4, 50), 14 + 20),
            (echo6(CLIENT6, VIP6), 14 + 40),
        ] {
            // The good one is answered with a valid reply.
            let out = each(&mut p, &snap, std::slice::from_ref(&req), PORT, 1);
            assert_eq!(out[0].0, Verdict::Reply { port: PORT });
            assert!(icmp_ok(&out[0].1));
            // A bit flipped in the payload.
            let mut bad = req;
            let last = bad.len() - 1;
            bad[last] ^= 0x04;
            let out = each(&mut p, &snap, &[bad], PORT, 2);
            if out[0].0 == (Verdict::Reply { port: PORT }) {
                assert!(
                    !icmp_ok(&out[0].1),
                    "a corrupted request got a valid reply (type {})",
                    out[0].1[icmp_at]
                );
            }
        }
    }
}

/// RFC 4861 7.1.1: a node MUST silently discard a neighbour solicitation whose ICMP checksum
/// is not valid, or whose ICMP code is not 0. Answering one advertises the appliance's MAC
/// for an address on the strength of a corrupted (or crafted) frame.
mod neighbour_discovery {
    use crate::common::*;
    use dataplane::{DropReason, Pipeline, PipelineConfig, Verdict};

    #[test]
    fn a_valid_solicitation_is_answered() {
        let snap = snapshot();
        let mut p = Pipeline::new(&PipelineConfig::default());
        for target in [OUR6, VIP6] {
            let out = each(&mut p, &snap, &[solicit(target)], PORT, 1);
            assert_eq!(out[0].0, Verdict::Reply { port: PORT });
        }
    }

    #[test]
    fn a_solicitation_with_a_bad_checksum_is_not_answered() {
        let snap = snapshot();
        let mut p = Pipeline::new(&PipelineConfig::default());
        for target in [OUR6, VIP6] {
            let mut ns = solicit(target);
            ns[14 + 40 + 2] ^= 0x01;
            let out = each(&mut p, &snap, &[ns], PORT, 1);
            assert_eq!(out[0].0, Verdict::Drop(DropReason::BadChecksum));
        }
    }

    fn advert(code: u8) -> Vec<u8> {
        neighbour_advert((CLIENT_MAC, OUR_MAC), LINK_CLIENT6, OUR6, code)
    }

    /// RFC 4861 7.1.2: control learns a neighbour only from an advertisement with a valid
    /// checksum and code 0.
    #[test]
    fn an_advertisement_with_a_bad_checksum_or_code_is_not_for_control() {
        let snap = snapshot();
        let mut p = Pipeline::new(&PipelineConfig::default());
        let out = each(&mut p, &snap, &[advert(0)], PORT, 1);
        assert_eq!(out[0].0, Verdict::ToControl);
        let mut bad = advert(0);
        bad[14 + 40 + 2] ^= 0x01;
        let out = each(&mut p, &snap, &[bad], PORT, 1);
        assert_eq!(out[0].0, Verdict::Drop(DropReason::BadChecksum));
        let out = each(&mut p, &snap, &[advert(1)], PORT, 1);
        assert_ne!(out[0].0, Verdict::ToControl);
    }

    #[test]
    fn a_solicitation_with_a_nonzero_code_is_not_answered() {
        let snap = snapshot();
        let mut p = Pipeline::new(&PipelineConfig::default());
        for target in [OUR6, VIP6] {
            let out = each(&mut p, &snap, &[solicit_coded(target, 1)], PORT, 1);
            assert!(
                !matches!(out[0].0, Verdict::Reply { .. }),
                "answered: {:?}",
                out[0].0
            );
        }
    }
}

/// No ICMP error about a packet whose source is not one host: unspecified, loopback,
/// multicast, broadcast or class E (RFC 1812 4.3.2.7, RFC 1122 3.2.2; RFC 4443 2.4 e for
/// IPv6). A too-big packet "from" a multicast group would otherwise get a
/// fragmentation-needed / packet-too-big sent to that group (a reflection), or to 0.0.0.0.
mod packet_too_big {
    use crate::common::*;
    use dataplane::{DropReason, Pipeline, PipelineConfig, Verdict};

    #[test]
    fn no_ptb_to_a_source_that_is_not_one_host() {
        let snap = snapshot();
        let mut p = Pipeline::new(&PipelineConfig::default());
        let big = vec![0u8; usize::from(MTU) - 28];
        // A unicast client gets its PTB (the overhead of ipip pushes it over the MTU).
        let ok = udp4(CLIENT4, VIP4, 5353, 80, &big);
        assert_eq!(
            each(&mut p, &snap, &[ok], PORT, 1)[0].0,
            Verdict::Reply { port: PORT }
        );
        let v4: [[u8; 4]; 5] = [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [224, 0, 0, 251],
            [255, 255, 255, 255],
            [240, 0, 0, 1],
        ];
        let big6 = vec![0u8; usize::from(MTU) - 48];
        let mut ff02 = [0u8; 16];
        ff02[0] = 0xff;
        ff02[1] = 0x02;
        ff02[15] = 1;
        let mut lo = [0u8; 16];
        lo[15] = 1;
        let v6 = [[0u8; 16], lo, ff02];
        let packets = v4
            .iter()
            .map(|&src| (format!("{src:?}"), udp4(src, VIP4, 5353, 80, &big)))
            .chain(
                v6.iter()
                    .map(|&src| (format!("{src:?}"), udp6(src, VIP6, 5353, 80, &big6))),
            );
        for (src, pkt) in packets {
            let out = each(&mut p, &snap, &[pkt], PORT, 2);
            assert_eq!(
                out[0].0,
                Verdict::Drop(DropReason::MtuExceeded),
                "PTB sent to {src}"
            );
        }
        // Refused before taking a token of the PTB rate: one sent, the other eight suppressed.
        assert_eq!((p.counters().ptb_sent, p.counters().ptb_suppressed), (1, 8));
    }
}

/// An ICMP error quoting a later IPv4 fragment has no ports in its quote (its first bytes are
/// the middle of the datagram's payload): not read as a flow's (RFC 792 quotes "the first 64
/// bits of the original datagram's data", which only a first fragment's are).
mod quoted_fragment {
    use crate::common::nat::{ip_packet, port_unreachable, Hdr, L4};
    use crate::common::*;
    use dataplane::{DropReason, Pipeline, PipelineConfig, Verdict};

    #[test]
    fn an_error_quoting_a_later_fragment_is_not_forwarded() {
        let snap = snapshot();
        let mut p = Pipeline::new(&PipelineConfig::default());
        let reply = Hdr {
            smac: OUR_MAC,
            dmac: CLIENT_MAC,
            src: m4(VIP4),
            dst: m4(CLIENT4),
            ttl: 64,
            sport: 80,
            dport: 5353,
            l4: L4::Udp,
        };
        let mut quote = ip_packet(&reply, b"answer");
        let router = m4([203, 0, 113, 1]);
        let error = |q: &[u8]| port_unreachable((CLIENT_MAC, OUR_MAC), router, m4(VIP4), 64, q, 28);
        let first = each(&mut p, &snap, &[error(&quote)], PORT, 1);
        assert!(
            matches!(first[0].0, Verdict::Forward { .. }),
            "{:?}",
            first[0].0
        );
        // Offset 185 (1480 bytes in): the same bytes where the ports were.
        quote[6..8].copy_from_slice(&185u16.to_be_bytes());
        let later = each(&mut p, &snap, &[error(&quote)], PORT, 2);
        assert_eq!(later[0].0, Verdict::Drop(DropReason::IcmpUnsupported));
    }
}
