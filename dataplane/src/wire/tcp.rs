//! TCP header (RFC 9293): ports, data offset and flags; the payload is never touched.

use super::{be16, be32, need, put16, put32, WireError};

pub const MIN_HEADER_LEN: usize = 20;
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

pub(crate) mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
}

/// Bytes of a TCP header up to and including its checksum (what a quote must hold to fix it).
pub const CHECKSUM_END: usize = field::CHECKSUM + 2;

/// A checked view of a TCP header.
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        need("tcp", MIN_HEADER_LEN, b.len())?;
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(WireError::Malformed {
                layer: "tcp",
                field: "data offset",
            });
        }
        need("tcp", hl, b.len())
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ)
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn window(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW)
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, p);
    }

    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, p);
    }

    pub fn set_seq_number(&mut self, seq: u32) {
        put32(self.buffer.as_mut(), field::SEQ, seq);
    }

    /// The data offset from a header length in bytes (a multiple of 4, 20 to 60).
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    pub fn set_window(&mut self, w: u16) {
        put16(self.buffer.as_mut(), field::WINDOW, w);
    }

    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::TcpHeader;

    #[test]
    fn setters_match_etherparse() {
        let mut want = TcpHeader::new(40_000, 80, 0x0102_0304, 64240);
        want.syn = true;
        want.ack = true;
        want.checksum = 0xbeef;
        let mut b = [0xaau8; MIN_HEADER_LEN];
        b[8..12].fill(0);
        b[18..20].fill(0);
        let mut p = TcpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(40_000);
        p.set_dst_port(80);
        p.set_seq_number(0x0102_0304);
        p.set_header_len(MIN_HEADER_LEN);
        p.set_flags(SYN | ACK);
        p.set_window(64240);
        p.set_checksum(0xbeef);
        assert_eq!(&b[..], &want.to_bytes()[..]);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.seq_number(), p.header_len(), p.flags(), p.window()),
            (0x0102_0304, MIN_HEADER_LEN, SYN | ACK, 64240)
        );
    }
}
