//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443, RFC 4861 neighbour discovery) headers.

use super::ethernet::{self, EthernetFrame};
use super::{arr, be16, be32, ipv4, ipv6, need, proto, put16, put32, WireError};
use crate::checksum;

pub const HEADER_LEN: usize = 8;

pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACH: u8 = 3;
    pub const FRAG_NEEDED: u8 = 4;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
}

pub mod v6 {
    pub const DEST_UNREACH: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Neighbour solicitation/advertisement: 4 bytes header + 4 reserved/flags + target.
    pub const ND_LEN: usize = 24;
    pub const OPT_SOURCE_LL: u8 = 1;
    pub const OPT_TARGET_LL: u8 = 2;
    /// A link-layer address option for Ethernet: type, length in 8-byte units, MAC.
    pub const OPT_LL_LEN: usize = 8;
    pub const ND_FLAG_ROUTER: u32 = 0x8000_0000;
    pub const ND_FLAG_SOLICITED: u32 = 0x4000_0000;
    pub const ND_FLAG_OVERRIDE: u32 = 0x2000_0000;
    /// RFC 4861 section 7.1.1: anything else came from off the link.
    pub const ND_HOP_LIMIT: u8 = 255;
}

pub(crate) mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
    pub const ND_TARGET: usize = 8;
    pub const ND_OPTIONS: usize = 24;
}

/// A checked view of an ICMP or ICMPv6 message (the 8-byte header and its body).
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        need("icmp", HEADER_LEN, self.buffer.as_ref().len())
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The 32-bit word after the checksum (MTU of a PTB, id/sequence of an echo, ND flags).
    pub fn rest(&self) -> u32 {
        be32(self.buffer.as_ref(), field::REST)
    }

    /// The embedded packet of an error message.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The target of a neighbour solicitation/advertisement.
    pub fn nd_target(&self) -> Result<[u8; 16], WireError> {
        need("icmpv6 nd", v6::ND_LEN, self.buffer.as_ref().len())?;
        Ok(arr(self.buffer.as_ref(), field::ND_TARGET))
    }

    /// The link-layer address option of type `kind` in an ND message, if any; a
    /// zero-length option is malformed (RFC 4861 section 4.6).
    pub fn nd_link_layer_option(&self, kind: u8) -> Result<Option<[u8; 6]>, WireError> {
        let b = self.buffer.as_ref();
        let mut off = field::ND_OPTIONS;
        while off + 2 <= b.len() {
            let len = usize::from(b[off + 1]) * 8;
            if len == 0 {
                return Err(WireError::Malformed {
                    layer: "icmpv6 nd",
                    field: "option length",
                });
            }
            need("icmpv6 nd option", off + len, b.len())?;
            if b[off] == kind && len >= 8 {
                return Ok(Some(arr(b, off + 2)));
            }
            off += len;
        }
        Ok(None)
    }

    pub fn checksum_field(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[field::TYPE] = t;
    }

    pub fn set_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }

    pub fn set_rest(&mut self, w: u32) {
        put32(self.buffer.as_mut(), field::REST, w);
    }

    /// The header but its checksum (filled last, over the whole message).
    pub fn set_header(&mut self, msg_type: u8, code: u8, rest: u32) {
        self.set_msg_type(msg_type);
        self.set_code(code);
        self.set_rest(rest);
    }

    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// The ICMPv4 checksum: over the whole message, no pseudo-header.
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let c = checksum::of(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// The ICMPv6 checksum: over the whole message and the IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let sum = checksum::pseudo_v6(src, dst, proto::ICMPV6, b.len() as u32);
        let c = checksum::finish(checksum::add(sum, b));
        self.set_checksum(c);
    }

    /// Writes the target of a neighbour solicitation/advertisement (the buffer must hold
    /// [`v6::ND_LEN`] bytes).
    pub fn set_nd_target(&mut self, target: [u8; 16]) {
        self.buffer.as_mut()[field::ND_TARGET..field::ND_TARGET + 16].copy_from_slice(&target);
    }
}

/// Offset of the checksum inside an ICMP header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// Writes an ICMPv4 error in front of the quoted packet already at `p[28..]`: a 20-byte
/// IPv4 header (DF, checksummed) and the ICMP header, whose checksum covers the quote.
pub fn emit_error_v4(
    p: &mut [u8],
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    msg_type: u8,
    code: u8,
    rest: u32,
) -> Result<(), WireError> {
    need("icmp error", ipv4::MIN_HEADER_LEN + HEADER_LEN, p.len())?;
    let total = u16::try_from(p.len()).map_err(|_| WireError::Malformed {
        layer: "icmp error",
        field: "total length",
    })?;
    let (ip, msg) = p.split_at_mut(ipv4::MIN_HEADER_LEN);
    ipv4::emit_header(ip, 0, total, ttl, proto::ICMP, src, dst, false);
    let mut m = IcmpPacket::new_unchecked(msg);
    m.set_header(msg_type, code, rest);
    m.fill_checksum_v4();
    Ok(())
}

/// Writes an ICMPv6 error in front of the quoted packet already at `p[48..]`: the IPv6
/// header and the ICMPv6 header, whose checksum covers the quote.
pub fn emit_error_v6(
    p: &mut [u8],
    src: [u8; 16],
    dst: [u8; 16],
    hop_limit: u8,
    msg_type: u8,
    code: u8,
    rest: u32,
) -> Result<(), WireError> {
    need("icmpv6 error", ipv6::HEADER_LEN + HEADER_LEN, p.len())?;
    let payload_len =
        u16::try_from(p.len() - ipv6::HEADER_LEN).map_err(|_| WireError::Malformed {
            layer: "icmpv6 error",
            field: "payload length",
        })?;
    let (ip, msg) = p.split_at_mut(ipv6::HEADER_LEN);
    ipv6::emit_header(ip, 0, 0, payload_len, proto::ICMPV6, hop_limit, src, dst);
    let mut m = IcmpPacket::new_unchecked(msg);
    m.set_header(msg_type, code, rest);
    m.fill_checksum_v6(&src, &dst);
    Ok(())
}

/// The ICMPv6 part of a neighbour solicitation or advertisement with one link-layer
/// address option.
pub const ND_MESSAGE_LEN: usize = v6::ND_LEN + v6::OPT_LL_LEN;
/// The IPv6 header and the message: what [`NdRepr::emit`] writes.
pub const ND_PACKET_LEN: usize = ipv6::HEADER_LEN + ND_MESSAGE_LEN;
/// An untagged Ethernet header and the packet: what [`NdRepr::emit_frame`] writes.
pub const ND_FRAME_LEN: usize = ethernet::HEADER_LEN + ND_PACKET_LEN;

/// A neighbour solicitation or advertisement as sluice sends them (RFC 4861): hop limit
/// 255, and our MAC in a source (solicitation) or target (advertisement) link-layer option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdRepr {
    /// [`v6::NEIGHBOR_SOLICIT`] or [`v6::NEIGHBOR_ADVERT`].
    pub msg_type: u8,
    /// The advertisement's R/S/O flags (zero in a solicitation).
    pub flags: u32,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub target: [u8; 16],
    pub mac: [u8; 6],
}

impl NdRepr {
    /// Who has `target`? Asked of its solicited-node group, from `src` at `mac`.
    pub fn solicit(mac: [u8; 6], src: [u8; 16], target: [u8; 16]) -> Self {
        Self {
            msg_type: v6::NEIGHBOR_SOLICIT,
            flags: 0,
            src,
            dst: ipv6::solicited_node(&target),
            target,
            mac,
        }
    }

    /// `target` is at `mac`, told from `target` itself to `dst`.
    pub fn advert(mac: [u8; 6], target: [u8; 16], dst: [u8; 16], flags: u32) -> Self {
        Self {
            msg_type: v6::NEIGHBOR_ADVERT,
            flags,
            src: target,
            dst,
            target,
            mac,
        }
    }

    /// Writes the IPv6 header and the message, checksummed, into `p[..ND_PACKET_LEN]`.
    pub fn emit(&self, p: &mut [u8]) -> Result<(), WireError> {
        need("icmpv6 nd", ND_PACKET_LEN, p.len())?;
        self.write(&mut p[..ND_PACKET_LEN]);
        Ok(())
    }

    /// Writes the untagged frame from `mac` to `dst_mac`.
    pub fn emit_frame(&self, b: &mut [u8; ND_FRAME_LEN], dst_mac: [u8; 6]) {
        let mut eth = EthernetFrame::new_unchecked(&mut b[..ethernet::HEADER_LEN]);
        eth.set_dst(dst_mac);
        eth.set_src(self.mac);
        eth.set_ethertype(ethernet::ETHERTYPE_IPV6);
        self.write(&mut b[ethernet::HEADER_LEN..]);
    }

    /// `p` is exactly [`ND_PACKET_LEN`] bytes.
    fn write(&self, p: &mut [u8]) {
        let (ip, msg) = p.split_at_mut(ipv6::HEADER_LEN);
        ipv6::emit_header(
            ip,
            0,
            0,
            ND_MESSAGE_LEN as u16,
            proto::ICMPV6,
            v6::ND_HOP_LIMIT,
            self.src,
            self.dst,
        );
        let option = if self.msg_type == v6::NEIGHBOR_SOLICIT {
            v6::OPT_SOURCE_LL
        } else {
            v6::OPT_TARGET_LL
        };
        let o = field::ND_OPTIONS;
        msg[o] = option;
        msg[o + 1] = (v6::OPT_LL_LEN / 8) as u8;
        msg[o + 2..o + v6::OPT_LL_LEN].copy_from_slice(&self.mac);
        let mut m = IcmpPacket::new_unchecked(msg);
        m.set_header(self.msg_type, 0, self.flags);
        m.set_nd_target(self.target);
        m.fill_checksum_v6(&self.src, &self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::icmpv4::DestUnreachableHeader;
    use etherparse::{IcmpEchoHeader, Icmpv4Type, Icmpv6Type, PacketBuilder};

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
    const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
    const A: [u8; 16] = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
    const B: [u8; 16] = [
        0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78,
    ];

    /// A neighbour discovery frame built by etherparse, for comparison.
    fn nd(
        dst_mac: [u8; 6],
        src: [u8; 16],
        dst: [u8; 16],
        msg_type: u8,
        flags: u32,
        target: [u8; 16],
        option: u8,
    ) -> Vec<u8> {
        let mut payload = target.to_vec();
        payload.extend_from_slice(&[option, 1]);
        payload.extend_from_slice(&MAC);
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC, dst_mac)
            .ipv6(src, dst, 255)
            .icmpv6(Icmpv6Type::Unknown {
                type_u8: msg_type,
                code_u8: 0,
                bytes5to8: flags.to_be_bytes(),
            })
            .write(&mut v, &payload)
            .unwrap();
        v
    }

    #[test]
    fn a_solicitation_frame_matches_etherparse() {
        let mut b = [0xaa; ND_FRAME_LEN];
        let ns = NdRepr::solicit(MAC, A, B);
        let group = ipv6::solicited_node(&B);
        assert_eq!(ns.dst, group);
        ns.emit_frame(&mut b, ipv6::multicast_mac(&group));
        let want = nd(
            [0x33, 0x33, 0xff, 0x34, 0x56, 0x78],
            A,
            group,
            v6::NEIGHBOR_SOLICIT,
            0,
            B,
            v6::OPT_SOURCE_LL,
        );
        assert_eq!(b.to_vec(), want);
        let m = IcmpPacket::new_checked(&b[ethernet::HEADER_LEN + ipv6::HEADER_LEN..]).unwrap();
        assert_eq!(m.nd_target(), Ok(B));
        assert_eq!(m.nd_link_layer_option(v6::OPT_SOURCE_LL), Ok(Some(MAC)));
    }

    #[test]
    fn an_advertisement_matches_etherparse_framed_or_in_place() {
        let flags = v6::ND_FLAG_SOLICITED | v6::ND_FLAG_OVERRIDE;
        let na = NdRepr::advert(MAC, A, B, flags);
        let want = nd(
            PEER_MAC,
            A,
            B,
            v6::NEIGHBOR_ADVERT,
            flags,
            A,
            v6::OPT_TARGET_LL,
        );
        let mut b = [0xaa; ND_FRAME_LEN];
        na.emit_frame(&mut b, PEER_MAC);
        assert_eq!(b.to_vec(), want);
        let mut p = [0xaa; ND_PACKET_LEN + 3];
        na.emit(&mut p).unwrap();
        assert_eq!(&p[..ND_PACKET_LEN], &want[ethernet::HEADER_LEN..]);
        assert_eq!(
            &p[ND_PACKET_LEN..],
            &[0xaa; 3],
            "nothing written past the packet"
        );
        assert_eq!(
            na.emit(&mut p[..ND_PACKET_LEN - 1]),
            Err(WireError::Truncated {
                layer: "icmpv6 nd",
                need: ND_PACKET_LEN,
                have: ND_PACKET_LEN - 1
            })
        );
    }

    /// An IPv4 packet to quote: 20-byte header + 8 bytes of UDP + data.
    fn quoted4() -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([198, 51, 100, 10], [203, 0, 113, 7], 64)
            .udp(80, 40000)
            .write(&mut v, &[7; 20])
            .unwrap();
        v
    }

    #[test]
    fn a_v4_error_matches_etherparse() {
        let q = quoted4();
        let mut p = vec![0xaa; ipv4::MIN_HEADER_LEN + HEADER_LEN];
        p.extend_from_slice(&q);
        emit_error_v4(
            &mut p,
            [198, 51, 100, 10],
            [203, 0, 113, 7],
            64,
            v4::DEST_UNREACH,
            v4::FRAG_NEEDED,
            1400,
        )
        .unwrap();
        let mut want = Vec::new();
        PacketBuilder::ipv4([198, 51, 100, 10], [203, 0, 113, 7], 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
            ))
            .write(&mut want, &q)
            .unwrap();
        assert_eq!(p, want);
        assert_eq!(
            emit_error_v4(&mut [0; 27], [0; 4], [0; 4], 64, 3, 4, 0),
            Err(WireError::Truncated {
                layer: "icmp error",
                need: 28,
                have: 27
            })
        );
    }

    #[test]
    fn a_v6_error_matches_etherparse() {
        let mut q = Vec::new();
        PacketBuilder::ipv6(A, B, 64)
            .udp(80, 40000)
            .write(&mut q, &[7; 20])
            .unwrap();
        let mut p = vec![0xaa; ipv6::HEADER_LEN + HEADER_LEN];
        p.extend_from_slice(&q);
        emit_error_v6(&mut p, A, B, 64, v6::PACKET_TOO_BIG, 0, 1280).unwrap();
        let mut want = Vec::new();
        PacketBuilder::ipv6(A, B, 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(&mut want, &q)
            .unwrap();
        assert_eq!(p, want);
    }

    #[test]
    fn echo_setters_and_checksums_match_etherparse() {
        let echo = IcmpEchoHeader { id: 7, seq: 1 };
        let mut req = Vec::new();
        PacketBuilder::ipv4([203, 0, 113, 7], [198, 51, 100, 10], 64)
            .icmpv4(Icmpv4Type::EchoRequest(echo))
            .write(&mut req, b"ping")
            .unwrap();
        let mut want = Vec::new();
        PacketBuilder::ipv4([203, 0, 113, 7], [198, 51, 100, 10], 64)
            .icmpv4(Icmpv4Type::EchoReply(echo))
            .write(&mut want, b"ping")
            .unwrap();
        let mut m = IcmpPacket::new_checked(&mut req[ipv4::MIN_HEADER_LEN..]).unwrap();
        m.set_msg_type(v4::ECHO_REPLY);
        m.fill_checksum_v4();
        assert_eq!(req, want);

        let mut req = Vec::new();
        PacketBuilder::ipv6(A, B, 64)
            .icmpv6_echo_request(7, 1)
            .write(&mut req, b"ping")
            .unwrap();
        let mut want = Vec::new();
        PacketBuilder::ipv6(A, B, 64)
            .icmpv6(Icmpv6Type::EchoReply(echo))
            .write(&mut want, b"ping")
            .unwrap();
        let mut m = IcmpPacket::new_checked(&mut req[ipv6::HEADER_LEN..]).unwrap();
        m.set_msg_type(v6::ECHO_REPLY);
        m.fill_checksum_v6(&A, &B);
        assert_eq!(req, want);
    }
}
