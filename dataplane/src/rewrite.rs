//! Rewrites a client packet for its backend: a new untagged Ethernet header and, for
//! `ipip` and `gue`, an outer IP (and UDP) header in the headroom; the inner packet is
//! never modified.

use crate::checksum;
use crate::frame::{Frame, TxOffload};
pub use crate::outer::OUTER_TTL;
use crate::outer::{OuterV4, ETH_IPV4};
use crate::parse::Ip;
use crate::snapshot::{Backend, Forwarding, Interface};
use crate::stats::DropReason;
use crate::wire::ethernet::{self, EthernetFrame};
use crate::wire::{ipv4, ipv6, proto, udp};

/// The GUE source port: the ephemeral range 49152-65535 chosen by the flow hash, so a
/// backend's RSS spreads flows over its queues and every packet of a flow keeps one port.
#[inline]
pub(crate) fn gue_source_port(flow_hash: u32) -> u16 {
    0xC000 | (flow_hash as u16 & 0x3FFF)
}

/// Reframes `frame` as `[Ethernet][outer headers][inner IP packet]` and writes the
/// headers. The caller has checked the MTU and resolved `next_hop`.
#[inline(always)]
pub(crate) fn encapsulate(
    frame: &mut Frame<'_>,
    ip: &Ip,
    forwarding: Forwarding,
    iface: &Interface,
    backend: &Backend,
    next_hop: [u8; 6],
    flow_hash: u32,
) -> Result<(), DropReason> {
    match (&backend.outer_v4, forwarding) {
        (Some(t), Forwarding::Ipip | Forwarding::Gue) => encapsulate_v4(
            frame,
            ip,
            forwarding == Forwarding::Gue,
            iface,
            t,
            flow_hash,
        ),
        (_, Forwarding::L2Dsr) => {
            // Only the Ethernet header changes.
            let h = reframe(frame, ip, 0)?
                .get_mut(..ethernet::HEADER_LEN)
                .ok_or(DropReason::NoRoom)?;
            let mut eth = EthernetFrame::new_unchecked(h);
            eth.set_dst(next_hop);
            eth.set_src(iface.mac);
            eth.set_ethertype(if ip.v6 {
                ethernet::ETHERTYPE_IPV6
            } else {
                ethernet::ETHERTYPE_IPV4
            });
            Ok(())
        }
        _ => encapsulate_general(frame, ip, forwarding, iface, backend, next_hop, flow_hash),
    }
}

/// Puts `outer` bytes of new headers (plus Ethernet) in front of the inner IP packet and
/// returns the reshaped packet.
#[inline(always)]
pub(crate) fn reframe<'f>(
    frame: &'f mut Frame<'_>,
    ip: &Ip,
    outer: usize,
) -> Result<&'f mut [u8], DropReason> {
    let front = ethernet::HEADER_LEN + outer;
    frame
        .reshape(ip.l2_len, front, front + ip.ip_len)
        .map_err(|_| DropReason::NoRoom)
}

/// ipip or gue over IPv4 from the backend's prebuilt headers: the same bytes as
/// [`encapsulate_general`] writes.
#[inline(always)]
fn encapsulate_v4(
    frame: &mut Frame<'_>,
    ip: &Ip,
    gue: bool,
    iface: &Interface,
    t: &OuterV4,
    flow_hash: u32,
) -> Result<(), DropReason> {
    let outer = Forwarding::overhead(
        if gue {
            Forwarding::Gue
        } else {
            Forwarding::Ipip
        },
        true,
    );
    let d = reframe(frame, ip, outer)?;
    let outer_proto = match (gue, ip.v6) {
        (true, _) => proto::UDP,
        (false, true) => proto::IPV6,
        (false, false) => proto::IPIP,
    };
    let offload = iface.ipv4_checksum_offload;
    t.write(d, ip.tos, (outer + ip.ip_len) as u16, outer_proto, offload)
        .ok_or(DropReason::NoRoom)?;
    if gue {
        let u = d.get_mut(ETH_IPV4..).ok_or(DropReason::NoRoom)?;
        // IPv4 allows a zero UDP checksum.
        udp::emit_header(
            u,
            gue_source_port(flow_hash),
            udp::GUE_PORT,
            (udp::HEADER_LEN + ip.ip_len) as u16,
            0,
        );
    }
    if offload {
        frame.offload = TxOffload {
            outer_ipv4_checksum: true,
            l2_len: ethernet::HEADER_LEN as u8,
            l3_len: ipv4::MIN_HEADER_LEN as u8,
        };
    }
    Ok(())
}

/// Any mode and family, headers written field by field.
#[inline(never)]
fn encapsulate_general(
    frame: &mut Frame<'_>,
    ip: &Ip,
    forwarding: Forwarding,
    iface: &Interface,
    backend: &Backend,
    next_hop: [u8; 6],
    flow_hash: u32,
) -> Result<(), DropReason> {
    let outer_v4 = if forwarding == Forwarding::L2Dsr {
        !ip.v6
    } else {
        backend.v4
    };
    let outer = forwarding.overhead(outer_v4);
    let new_l2 = ethernet::HEADER_LEN;
    let d = reframe(frame, ip, outer)?;
    let inner_proto = if ip.v6 { proto::IPV6 } else { proto::IPIP };
    let (outer_proto, after_ip) = match forwarding {
        Forwarding::Gue => (proto::UDP, udp::HEADER_LEN),
        _ => (inner_proto, 0),
    };
    let ip_hdr = outer - after_ip;
    let outer_len = outer + ip.ip_len;
    let mut offload = false;
    let mut eth = EthernetFrame::new_unchecked(&mut d[..new_l2]);
    eth.set_dst(next_hop);
    eth.set_src(iface.mac);
    eth.set_ethertype(if outer_v4 {
        ethernet::ETHERTYPE_IPV4
    } else {
        ethernet::ETHERTYPE_IPV6
    });
    if forwarding == Forwarding::L2Dsr {
        return Ok(());
    }
    if outer_v4 {
        let src = iface.ipv4.ok_or(DropReason::NoSourceAddress)?;
        let mut dst = [0u8; 4];
        dst.copy_from_slice(&backend.addr[12..]);
        offload = iface.ipv4_checksum_offload;
        ipv4::emit_header(
            &mut d[new_l2..],
            ip.tos,
            outer_len as u16,
            OUTER_TTL,
            outer_proto,
            src,
            dst,
            offload,
        );
    } else {
        let src = iface.ipv6.ok_or(DropReason::NoSourceAddress)?;
        ipv6::emit_header(
            &mut d[new_l2..],
            ip.tos,
            // The flow label carries the flow hash so routers' ECMP keeps a flow on one path.
            flow_hash & 0xf_ffff,
            (outer_len - ipv6::HEADER_LEN) as u16,
            outer_proto,
            OUTER_TTL,
            src,
            backend.addr,
        );
    }
    if forwarding == Forwarding::Gue {
        let u = new_l2 + ip_hdr;
        let udp_len = (udp::HEADER_LEN + ip.ip_len) as u16;
        udp::emit_header(
            &mut d[u..],
            gue_source_port(flow_hash),
            udp::GUE_PORT,
            udp_len,
            0,
        );
        // IPv4 allows a zero UDP checksum; over IPv6 Linux fou requires a real one.
        if !outer_v4 {
            let src = ipv6::Ipv6Packet::new_unchecked(&d[new_l2..]).src();
            let sum = checksum::pseudo_v6(&src, &backend.addr, proto::UDP, u32::from(udp_len));
            let mut c = checksum::finish(checksum::add(sum, &d[u..]));
            if c == 0 {
                c = 0xffff;
            }
            d[u + udp::CHECKSUM_OFFSET..u + udp::CHECKSUM_OFFSET + 2]
                .copy_from_slice(&c.to_be_bytes());
        }
    }
    if offload {
        frame.offload = TxOffload {
            outer_ipv4_checksum: true,
            l2_len: new_l2 as u8,
            l3_len: ipv4::MIN_HEADER_LEN as u8,
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse, Parsed};

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
    const NEXT_HOP: [u8; 6] = [2, 0, 0, 0, 1, 0x65];

    fn iface(offload: bool) -> Interface {
        Interface {
            port: 0,
            mac: MAC,
            ipv4: Some([192, 0, 2, 10]),
            ipv6: Some([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]),
            mtu: 9000,
            ipv4_checksum_offload: offload,
            kernel: false,
        }
    }

    fn backend(iface: &Interface, template: bool) -> Backend {
        let addr = maglev::flow::v4_mapped([192, 0, 2, 101]);
        Backend {
            id: 1,
            service: 0,
            addr,
            v4: true,
            port: 0,
            up: true,
            iface: 0,
            // Not read by the rewrite (the pipeline checks the MTU).
            max_inner: iface.mtu,
            next_hop_mac: Some(NEXT_HOP),
            outer_v4: template.then(|| OuterV4::new(NEXT_HOP, iface.mac, [192, 0, 2, 10], &addr)),
        }
    }

    /// A client packet (IPv4 or IPv6, with TOS and payload size varied) in a 256-byte buffer.
    fn client(v6: bool, tos: u8, payload: usize) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xc1], MAC);
        let b = if v6 {
            b.ipv6(
                [0x20, 1, 0x0d, 0xb8, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20, 1, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10],
                64,
            )
        } else {
            b.ipv4([203, 0, 113, 7], [198, 51, 100, 10], 64)
        };
        let mut pkt = Vec::new();
        b.udp(5353, 53)
            .write(&mut pkt, &vec![7u8; payload])
            .unwrap();
        if v6 {
            pkt[14] = 0x60 | tos >> 4;
            pkt[15] = tos << 4;
        } else {
            pkt[15] = tos;
            pkt[24] = 0;
            pkt[25] = 0;
            let c = checksum::of(&pkt[14..34]);
            pkt[24..26].copy_from_slice(&c.to_be_bytes());
        }
        pkt
    }

    /// The prebuilt headers write exactly what the field-by-field path writes.
    #[test]
    fn the_template_writes_the_same_bytes_as_the_general_path() {
        let mut cases = 0;
        for forwarding in [Forwarding::Ipip, Forwarding::Gue] {
            for offload in [false, true] {
                for v6 in [false, true] {
                    for (tos, payload) in [(0, 0), (0xb8, 17), (0xff, 200), (3, 1)] {
                        let i = iface(offload);
                        let pkt = client(v6, tos, payload);
                        let Ok(Parsed::Ip(ip)) = parse(&pkt) else {
                            panic!("test packet does not parse")
                        };
                        let mut outs = Vec::new();
                        for template in [true, false] {
                            let mut buf = vec![0xeeu8; 512];
                            buf[128..128 + pkt.len()].copy_from_slice(&pkt);
                            let mut f = Frame::new(&mut buf, 128, pkt.len()).unwrap();
                            let be = backend(&i, template);
                            encapsulate(&mut f, &ip, forwarding, &i, &be, NEXT_HOP, 0xabcd_1234)
                                .unwrap();
                            let (start, len, off) = (f.start(), f.len(), f.offload);
                            outs.push((buf[start..start + len].to_vec(), off));
                        }
                        assert_eq!(outs[0], outs[1], "{forwarding:?} offload {offload} v6 {v6}");
                        if !offload {
                            let o = &outs[0].0;
                            assert_eq!(checksum::of(&o[14..34]), 0, "outer checksum verifies");
                        }
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 32);
    }
}
