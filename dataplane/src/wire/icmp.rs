//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443, RFC 4861 neighbour discovery) headers.

use super::{arr, be16, be32, need, WireError};

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
}

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const REST: usize = 4;
    pub const ND_TARGET: usize = 8;
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
        let mut off = v6::ND_LEN;
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
        be16(self.buffer.as_ref(), 2)
    }
}

/// Offset of the checksum inside an ICMP header.
pub const CHECKSUM_OFFSET: usize = 2;
