//! Prebuilt outer headers: the Ethernet + IPv4 bytes of every ipip/gue packet to one IPv4
//! backend. The snapshot builds one per backend; the rewrite copies it into each packet. Both
//! depend on this module, which depends on neither.

use crate::checksum;
use crate::wire::ethernet::{self, EthernetFrame};
use crate::wire::ipv4;

/// TTL / hop limit of the outer header.
pub const OUTER_TTL: u8 = 64;

/// Ethernet + IPv4 header bytes of every ipip/gue packet to one IPv4 backend, built with the
/// snapshot: a packet copies them and patches TOS, total length, protocol and the checksum.
#[derive(Debug, Clone)]
pub(crate) struct OuterV4 {
    /// Ethernet, then IPv4 with TOS, total length, protocol and checksum zero.
    bytes: [u8; ETH_IPV4],
    /// One's-complement sum of the templated IPv4 header.
    sum: u32,
}

/// Bytes of an [`OuterV4`]: Ethernet, then an option-less IPv4 header.
pub(crate) const ETH_IPV4: usize = ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN;

impl OuterV4 {
    pub(crate) fn new(next_hop: [u8; 6], src_mac: [u8; 6], src: [u8; 4], dst: &[u8; 16]) -> Self {
        let mut bytes = [0u8; ETH_IPV4];
        let mut eth = EthernetFrame::new_unchecked(&mut bytes[..ethernet::HEADER_LEN]);
        eth.set_dst(next_hop);
        eth.set_src(src_mac);
        eth.set_ethertype(ethernet::ETHERTYPE_IPV4);
        let mut d = [0u8; 4];
        d.copy_from_slice(&dst[12..]);
        ipv4::emit_header(
            &mut bytes[ethernet::HEADER_LEN..],
            0,
            0,
            OUTER_TTL,
            0,
            src,
            d,
            true,
        );
        let sum = checksum::add(0, &bytes[ethernet::HEADER_LEN..]);
        Self { bytes, sum }
    }

    /// Writes the headers into `d[..34]` (what [`ipv4::emit_header`] would, byte for byte).
    #[inline(always)]
    pub(crate) fn write(
        &self,
        d: &mut [u8],
        tos: u8,
        total_len: u16,
        protocol: u8,
        offload: bool,
    ) -> Option<()> {
        let h: &mut [u8; ETH_IPV4] = d.get_mut(..ETH_IPV4)?.try_into().ok()?;
        *h = self.bytes;
        let ip = ethernet::HEADER_LEN;
        h[ip + ipv4::field::TOS] = tos;
        h[ip + ipv4::field::TOTAL_LEN..ip + ipv4::field::TOTAL_LEN + 2]
            .copy_from_slice(&total_len.to_be_bytes());
        h[ip + ipv4::field::PROTOCOL] = protocol;
        if !offload {
            let sum = self.sum + u32::from(tos) + u32::from(total_len) + u32::from(protocol);
            h[ip + ipv4::field::CHECKSUM..ip + ipv4::field::CHECKSUM + 2]
                .copy_from_slice(&checksum::finish(sum).to_be_bytes());
        }
        Some(())
    }
}
