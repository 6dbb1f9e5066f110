//! IPv4 header (RFC 791). Options are skipped via IHL and kept untouched in the packet.

use super::{arr, be16, need, put16, WireError};
use crate::checksum;

pub const MIN_HEADER_LEN: usize = 20;
pub const FLAG_DF: u16 = 0x4000;
pub const FLAG_MF: u16 = 0x2000;
pub const OFFSET_MASK: u16 = 0x1fff;

pub(crate) mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// A checked view of an IPv4 header and its payload.
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Checks length, version, IHL and total length against the buffer; trailing bytes
    /// beyond the total length (Ethernet padding) are allowed.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        need("ipv4", MIN_HEADER_LEN, b.len())?;
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::Malformed {
                layer: "ipv4",
                field: "version",
            });
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(WireError::Malformed {
                layer: "ipv4",
                field: "ihl",
            });
        }
        need("ipv4", hl, b.len())?;
        let total = usize::from(self.total_len());
        if total < hl {
            return Err(WireError::Malformed {
                layer: "ipv4",
                field: "total length",
            });
        }
        need("ipv4", total, b.len())
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG) & OFFSET_MASK
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn src(&self) -> [u8; 4] {
        arr(self.buffer.as_ref(), field::SRC)
    }

    pub fn dst(&self) -> [u8; 4] {
        arr(self.buffer.as_ref(), field::DST)
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::of(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// The payload up to the total length (padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

/// Writes a 20-byte IPv4 header (no options, DF set, identification 0 as RFC 6864 allows
/// for atomic datagrams) into `b[..20]`; the checksum is computed unless `offload`.
#[allow(clippy::too_many_arguments)]
pub fn emit_header(
    b: &mut [u8],
    tos: u8,
    total_len: u16,
    ttl: u8,
    protocol: u8,
    src: [u8; 4],
    dst: [u8; 4],
    offload: bool,
) {
    b[field::VER_IHL] = 0x45;
    b[field::TOS] = tos;
    put16(b, field::TOTAL_LEN, total_len);
    put16(b, field::IDENT, 0);
    put16(b, field::FLAGS_FRAG, FLAG_DF);
    b[field::TTL] = ttl;
    b[field::PROTOCOL] = protocol;
    put16(b, field::CHECKSUM, 0);
    b[field::SRC..field::SRC + 4].copy_from_slice(&src);
    b[field::DST..field::DST + 4].copy_from_slice(&dst);
    if !offload {
        let c = checksum::of(&b[..MIN_HEADER_LEN]);
        put16(b, field::CHECKSUM, c);
    }
}
