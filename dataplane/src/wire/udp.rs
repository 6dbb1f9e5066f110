//! UDP header (RFC 768).

use super::{be16, need, put16, WireError};

pub const HEADER_LEN: usize = 8;
/// The GUE port Katran uses; `ip fou add port 6080 gue` decapsulates it on Linux.
pub const GUE_PORT: u16 = 6080;

pub(crate) mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// A checked view of a UDP header.
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Only the header is required: a first fragment carries a length covering the
    /// whole datagram, which is longer than the fragment.
    pub fn check_len(&self) -> Result<(), WireError> {
        need("udp", HEADER_LEN, self.buffer.as_ref().len())?;
        if usize::from(self.length()) < HEADER_LEN {
            return Err(WireError::Malformed {
                layer: "udp",
                field: "length",
            });
        }
        Ok(())
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    pub fn length(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Ports only: the first four bytes, which TCP and UDP (and a quoted header) share.
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, p);
    }

    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, p);
    }

    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, c);
    }
}

/// Writes an 8-byte UDP header with the given checksum into `b[..8]`.
pub fn emit_header(b: &mut [u8], src_port: u16, dst_port: u16, length: u16, checksum: u16) {
    put16(b, field::SRC_PORT, src_port);
    put16(b, field::DST_PORT, dst_port);
    put16(b, field::LENGTH, length);
    put16(b, field::CHECKSUM, checksum);
}

/// Offset of the checksum field inside the UDP header.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;
