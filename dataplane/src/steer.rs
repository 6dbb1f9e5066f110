//! Which worker owns a nat/fullnat connection, computed the same from either direction.
//!
//! Each worker tracks its connections in its own flow table, but the NIC may deliver a reply
//! to another worker's queue. The owner is a function of what both directions carry: the
//! client's (address, port), which nat keeps as the reply's destination, and for fullnat the
//! local port, allocated in the owner's residue class (`port % workers == owner`). Everything
//! else (tunnel and DSR services, the host's traffic) has no owner: any worker takes it.

use crate::parse::{self, Ip, Parsed, L4};
use crate::snapshot::{Class, Snapshot};

/// The owner of a connection whose client is `addr`:`port` (nat: also the reply's destination).
#[inline]
pub(crate) fn client_owner(addr: &[u8; 16], port: u16, workers: u16) -> u16 {
    let a = u128::from_be_bytes(*addr);
    let x = (a as u64) ^ ((a >> 64) as u64) ^ u64::from(port);
    // Multiply-shift mixes every input bit into the high half; scaling it avoids a division.
    let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    ((h * u64::from(workers.max(1))) >> 32) as u16
}

/// The owner of a fullnat connection whose local port is `port`.
#[inline]
pub(crate) fn local_port_owner(port: u16, workers: u16) -> u16 {
    port % workers.max(1)
}

/// The owner of a packet to `dst`:`dport` that may be a nat reply: a local address's by its
/// port, else by the client's (address, port) it is addressed to.
#[inline]
pub(crate) fn reply_owner(snap: &Snapshot, dst: &[u8; 16], dport: u16, workers: u16) -> u16 {
    if snap.is_local(dst) {
        local_port_owner(dport, workers)
    } else {
        client_owner(dst, dport, workers)
    }
}

/// The worker owning a parsed IP packet, or None when any worker may take it.
pub(crate) fn owner_of(ip: &Ip, snap: &Snapshot, workers: u16) -> Option<u16> {
    if !snap.has_nat() {
        return None;
    }
    match ip.l4 {
        L4::Ports { sport, dport, .. } if ip.frag.is_none() => {
            match snap.classify(&ip.dst, dport, ip.proto) {
                Class::Translate(_) => Some(client_owner(&ip.src, sport, workers)),
                Class::Reply => Some(reply_owner(snap, &ip.dst, dport, workers)),
                _ => None,
            }
        }
        // The quote is reversed into the client-to-VIP direction (see `Embedded`).
        L4::IcmpError(e) if snap.is_vip(&ip.dst) => {
            match snap.classify(&e.vip, e.vip_port, e.proto) {
                Class::Translate(_) => Some(client_owner(&e.client, e.client_port, workers)),
                _ => None,
            }
        }
        // About a packet we sent a backend: its source (e.vip) was the client or a local address.
        L4::IcmpError(e) => Some(reply_owner(snap, &e.vip, e.vip_port, workers)),
        _ => None,
    }
}

/// The worker among `workers` owning `frame` (bytes from Ethernet on), or None when any
/// worker may take it (not nat traffic, or not parsable).
pub fn owner(frame: &[u8], snap: &Snapshot, workers: u16) -> Option<u16> {
    owner_trusting(frame, false, snap, workers)
}

/// [`owner`] of a frame parsed as the pipeline parses it when the NIC vouched for its IPv4
/// header checksum (`ipv4_checksum_good`, see [`parse::parse_trusting`]).
pub(crate) fn owner_trusting(
    frame: &[u8],
    ipv4_checksum_good: bool,
    snap: &Snapshot,
    workers: u16,
) -> Option<u16> {
    match parse::parse_trusting(frame, ipv4_checksum_good) {
        Ok(Parsed::Ip(ip)) => owner_of(&ip, snap, workers),
        _ => None,
    }
}
