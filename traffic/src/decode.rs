//! Reading back what the load balancer forwarded (IPIP, GUE, l2-dsr, nat or fullnat) down to
//! the flow, the backend and the timestamp, and spotting its ARP requests.

use std::net::IpAddr;

use dataplane::wire::arp::{self, ArpPacket};
use dataplane::wire::ethernet::{self, EthernetFrame};
use dataplane::wire::ipv4::Ipv4Packet;
use dataplane::wire::ipv6::{self, Ipv6Packet};
use dataplane::wire::proto;
use dataplane::wire::tcp::TcpPacket;
use dataplane::wire::udp::{self, UdpPacket};

use crate::stamp;

/// GUE variant 0's header (RFC draft-ietf-intarea-gue): 4 bytes plus `hlen` words of options.
const GUE_HEADER_LEN: usize = 4;
const GUE_HLEN_MASK: u8 = 0x1f;

/// Who a forwarded packet went to: the outer destination address, or for l2-dsr the MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKey {
    Ip(IpAddr),
    Mac([u8; 6]),
}

impl std::fmt::Display for BackendKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendKey::Ip(ip) => write!(f, "{ip}"),
            BackendKey::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
        }
    }
}

/// One of our packets as it came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Returned {
    pub backend: BackendKey,
    /// The client packet's destination as it arrived (the VIP, unless nat rewrote it).
    pub inner_dst: IpAddr,
    /// The stamp's flow number and TSC low bits.
    pub flow: u32,
    pub tsc: u64,
}

/// What a received frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Ours(Returned),
    /// An ARP request for `target` (IPv4).
    ArpRequest {
        target: [u8; 4],
    },
    /// Some other ARP packet (a reply, an announcement): nothing to answer, nothing wrong.
    Arp,
    Other,
}

/// Classifies a received frame.
pub fn parse(frame: &[u8]) -> Received {
    parse_inner(frame).unwrap_or(Received::Other)
}

fn parse_inner(f: &[u8]) -> Option<Received> {
    let eth = EthernetFrame::new_checked(f).ok()?;
    let body = f.get(ethernet::HEADER_LEN..)?;
    if eth.ethertype() == ethernet::ETHERTYPE_ARP {
        let a = ArpPacket::new_checked(body).ok()?;
        return Some(if a.operation() == arp::OP_REQUEST {
            Received::ArpRequest {
                target: a.target_ip(),
            }
        } else {
            Received::Arp
        });
    }
    let (outer_dst, protocol, payload) = ip_header(eth.ethertype(), body)?;
    let (backend, inner) = match protocol {
        proto::IPIP | proto::IPV6 => (BackendKey::Ip(outer_dst), payload),
        proto::UDP if UdpPacket::new_checked(payload).ok()?.dst_port() == udp::GUE_PORT => (
            BackendKey::Ip(outer_dst),
            gue_inner(payload.get(udp::HEADER_LEN..)?)?,
        ),
        proto::UDP | proto::TCP => (BackendKey::Mac(eth.dst()), body),
        _ => return None,
    };
    let inner_type = match inner.first()? >> 4 {
        4 => ethernet::ETHERTYPE_IPV4,
        6 => ethernet::ETHERTYPE_IPV6,
        _ => return None,
    };
    let (inner_dst, protocol, l4) = ip_header(inner_type, inner)?;
    let hdr = match protocol {
        proto::TCP => TcpPacket::new_checked(l4).ok()?.header_len(),
        proto::UDP => UdpPacket::new_checked(l4).ok().map(|_| udp::HEADER_LEN)?,
        _ => return None,
    };
    let s = stamp::read(l4.get(hdr..)?)?;
    Some(Received::Ours(Returned {
        backend,
        inner_dst,
        flow: s.flow,
        tsc: s.tsc,
    }))
}

/// The inner IP packet of a GUE payload: variant 1 is the packet itself (its first two bits
/// are the IP version's 01); variant 0 has a header, and options, first.
fn gue_inner(p: &[u8]) -> Option<&[u8]> {
    let first = *p.first()?;
    match first >> 6 {
        0 => p.get(GUE_HEADER_LEN + usize::from(first & GUE_HLEN_MASK) * 4..),
        1 => Some(p),
        _ => None,
    }
}

/// (destination, protocol, payload) of the IPv4 or IPv6 header at the start of `ip`.
fn ip_header(ethertype: u16, ip: &[u8]) -> Option<(IpAddr, u8, &[u8])> {
    match ethertype {
        ethernet::ETHERTYPE_IPV4 => {
            let h = Ipv4Packet::new_checked(ip).ok()?;
            let payload = ip.get(h.header_len()..usize::from(h.total_len()))?;
            Some((IpAddr::from(h.dst()), h.protocol(), payload))
        }
        ethernet::ETHERTYPE_IPV6 => {
            let h = Ipv6Packet::new_checked(ip).ok()?;
            let end = ipv6::HEADER_LEN + usize::from(h.payload_len());
            Some((
                IpAddr::from(h.dst()),
                h.next_header(),
                ip.get(ipv6::HEADER_LEN..end)?,
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::STAMP_FLOWS;
    use crate::template::{Target, Template, L4};
    use dataplane::wire::ipv4;

    const SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const BACKEND4: [u8; 4] = [203, 0, 113, 5];
    const BACKEND6: &str = "2001:db8:be::5";

    fn target(vip: &str) -> Target {
        Target {
            vip: vip.parse().unwrap(),
            port: 80,
        }
    }

    fn frame(vip: &str, l4: L4, flow: u32, tsc: u64) -> Vec<u8> {
        let t = Template::new(target(vip), l4, 64, SRC, DST);
        let mut f = vec![0u8; t.frame_len()];
        assert!(t.write(&mut f, flow, tsc));
        f
    }

    /// An outer Ethernet + IP (+ UDP to the GUE port) header around `inner`.
    fn encap(outer_v6: bool, protocol: u8, gue: bool, inner: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        if gue {
            body = vec![0u8; udp::HEADER_LEN];
            let len = (udp::HEADER_LEN + inner.len()) as u16;
            udp::emit_header(&mut body, 0xc001, udp::GUE_PORT, len, 0);
        }
        body.extend_from_slice(inner);
        let protocol = if gue { proto::UDP } else { protocol };
        let mut f = vec![0u8; ethernet::HEADER_LEN];
        let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
        let mut h = if outer_v6 {
            eth.set_ethertype(ethernet::ETHERTYPE_IPV6);
            let mut h = vec![0u8; ipv6::HEADER_LEN];
            let dst = BACKEND6.parse::<std::net::Ipv6Addr>().unwrap().octets();
            ipv6::emit_header(&mut h, 0, 0, body.len() as u16, protocol, 64, [0; 16], dst);
            h
        } else {
            eth.set_ethertype(ethernet::ETHERTYPE_IPV4);
            let mut h = vec![0u8; ipv4::MIN_HEADER_LEN];
            let len = (ipv4::MIN_HEADER_LEN + body.len()) as u16;
            ipv4::emit_header(&mut h, 0, len, 64, protocol, [0; 4], BACKEND4, false);
            h
        };
        f.append(&mut h);
        f.extend_from_slice(&body);
        f
    }

    #[test]
    fn encapsulated_packets_name_the_backend_by_outer_destination() {
        let p4 = frame("198.51.100.10", L4::TcpAck, 5, 99);
        let p6 = frame("2001:db8::10", L4::Udp, 6, 100);
        let cases = [
            (false, proto::IPIP, false, &p4[14..], "203.0.113.5", 5, 99),
            (false, proto::IPV6, false, &p6[14..], "203.0.113.5", 6, 100),
            (true, proto::IPIP, false, &p4[14..], BACKEND6, 5, 99),
            (true, proto::IPV6, false, &p6[14..], BACKEND6, 6, 100),
            (false, 0, true, &p4[14..], "203.0.113.5", 5, 99),
            (true, 0, true, &p6[14..], BACKEND6, 6, 100),
        ];
        for (outer_v6, protocol, gue, inner, backend, flow, tsc) in cases {
            let f = encap(outer_v6, protocol, gue, inner);
            let vip = if flow == 5 {
                "198.51.100.10"
            } else {
                "2001:db8::10"
            };
            assert_eq!(
                parse(&f),
                Received::Ours(Returned {
                    backend: BackendKey::Ip(backend.parse().unwrap()),
                    inner_dst: vip.parse().unwrap(),
                    flow,
                    tsc
                }),
                "outer_v6={outer_v6} proto={protocol} gue={gue}"
            );
        }
    }

    #[test]
    fn gue_variant_0_skips_its_header_and_options() {
        let p4 = frame("198.51.100.10", L4::TcpAck, 5, 99);
        // Variant 0, one option word (hlen 1), protocol 4 (IPIP).
        let mut inner = vec![0x01, 4, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd];
        inner.extend_from_slice(&p4[14..]);
        let f = encap(false, 0, true, &inner);
        assert!(
            matches!(parse(&f), Received::Ours(r) if r.flow == 5 && r.tsc == 99),
            "{:?}",
            parse(&f)
        );
    }

    /// What fullnat does to a frame: source address and port rewritten (checksums not
    /// patched: the parser does not check them).
    fn fullnat(frame: &mut [u8], v6: bool, src: &[u8], port: u16) {
        let (at, l4) = if v6 {
            (14 + 8, 14 + 40)
        } else {
            (14 + 12, 14 + 20)
        };
        frame[at..at + src.len()].copy_from_slice(src);
        frame[l4..l4 + 2].copy_from_slice(&port.to_be_bytes());
    }

    #[test]
    fn fullnat_packets_keep_their_flow_from_the_stamp() {
        // The local address 192.0.2.200 is also client 200's address; the stamp decides.
        for (flow, local_port) in [(0, 1024), (63_999, 40_000), (1_234_567, 65_535)] {
            let mut f = frame("198.51.100.10", L4::TcpAck, flow, 0xab_cdef_0123);
            fullnat(&mut f, false, &[192, 0, 2, 200], local_port);
            let expect = |vip: &str| {
                Received::Ours(Returned {
                    backend: BackendKey::Mac(DST),
                    inner_dst: vip.parse().unwrap(),
                    flow,
                    tsc: 0xab_cdef_0123,
                })
            };
            assert_eq!(parse(&f), expect("198.51.100.10"), "v4 flow {flow}");
            let mut f = frame("2001:db8::10", L4::Udp, flow, 0xab_cdef_0123);
            let local: std::net::Ipv6Addr = "2001:db8::200".parse().unwrap();
            fullnat(&mut f, true, &local.octets(), local_port);
            assert_eq!(parse(&f), expect("2001:db8::10"), "v6 flow {flow}");
        }
        // Flow numbers wrap at STAMP_FLOWS (only syn mode, which tracks no flows, goes past).
        let f = frame("198.51.100.10", L4::TcpSyn, STAMP_FLOWS + 5, 1);
        assert!(matches!(parse(&f), Received::Ours(r) if r.flow == 5));
    }

    #[test]
    fn foreign_and_cut_frames_are_other_never_a_panic() {
        let mut p = frame("198.51.100.10", L4::TcpAck, 5, 99);
        for cut in 0..p.len() - 1 {
            assert_eq!(parse(&p[..cut]), Received::Other, "cut at {cut}");
        }
        p[54] ^= 0xff; // the magic
        assert_eq!(parse(&p), Received::Other);
    }
}
