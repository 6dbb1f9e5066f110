//! Rewrites a client packet for its backend: a new untagged Ethernet header and, for
//! `ipip` and `gue`, an outer IP (and UDP) header in the headroom; the inner packet is
//! never modified.

use crate::checksum;
use crate::counters::DropReason;
use crate::frame::{Frame, TxOffload};
use crate::parse::Ip;
use crate::snapshot::{Backend, Forwarding, Interface};
use crate::wire::ethernet::{self, EthernetFrame};
use crate::wire::{ipv4, ipv6, proto, udp};

/// TTL / hop limit of the outer header.
pub const OUTER_TTL: u8 = 64;

/// Bytes added in front of the inner IP packet (Ethernet excluded).
#[inline]
pub(crate) fn overhead(forwarding: Forwarding, outer_v4: bool) -> usize {
    let ip = if outer_v4 {
        ipv4::MIN_HEADER_LEN
    } else {
        ipv6::HEADER_LEN
    };
    match forwarding {
        Forwarding::Ipip => ip,
        Forwarding::Gue => ip + udp::HEADER_LEN,
        Forwarding::L2Dsr => 0,
    }
}

/// The GUE source port: the ephemeral range 49152-65535 chosen by the flow hash, so a
/// backend's RSS spreads flows over its queues and every packet of a flow keeps one port.
#[inline]
pub(crate) fn gue_source_port(flow_hash: u32) -> u16 {
    0xC000 | (flow_hash as u16 & 0x3FFF)
}

/// Reframes `frame` as `[Ethernet][outer headers][inner IP packet]` and writes the
/// headers. The caller has checked the MTU and resolved `next_hop`.
pub(crate) fn encapsulate(
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
    let outer = overhead(forwarding, outer_v4);
    let new_l2 = ethernet::HEADER_LEN;
    if new_l2 + outer > ip.l2_len {
        frame
            .prepend(new_l2 + outer - ip.l2_len)
            .map_err(|_| DropReason::NoRoom)?;
    } else {
        frame
            .adj(ip.l2_len - new_l2 - outer)
            .map_err(|_| DropReason::NoRoom)?;
    }
    frame
        .set_len(new_l2 + outer + ip.ip_len)
        .map_err(|_| DropReason::NoRoom)?;
    let d = frame.data_mut();
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
    let inner_proto = if ip.v6 { proto::IPV6 } else { proto::IPIP };
    let (outer_proto, after_ip) = match forwarding {
        Forwarding::Gue => (proto::UDP, udp::HEADER_LEN),
        _ => (inner_proto, 0),
    };
    let ip_hdr = outer - after_ip;
    let outer_len = outer + ip.ip_len;
    let mut offload = false;
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
            let mut src = [0u8; 16];
            src.copy_from_slice(&d[new_l2 + 8..new_l2 + 24]);
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
