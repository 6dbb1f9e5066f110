//! IPv4 header (RFC 791). Options are skipped via IHL and kept untouched in the packet.

use super::{arr, be16, need, put16, WireError};
use crate::checksum;

pub const MIN_HEADER_LEN: usize = 20;
/// Version 4, IHL 5: the first byte of a header without options.
pub const VER_IHL_NO_OPTIONS: u8 = 0x45;
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
        if self.version() != 4 {
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

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
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

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::of(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// The payload up to the total length (padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    pub fn set_src(&mut self, a: [u8; 4]) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&a);
    }

    pub fn set_dst(&mut self, a: [u8; 4]) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&a);
    }

    pub fn set_ident(&mut self, id: u16) {
        put16(self.buffer.as_mut(), field::IDENT, id);
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// New addresses and the TTL decremented (a router's forwarding), the header checksum
    /// updated incrementally (RFC 1624) rather than summed again.
    pub fn translate(&mut self, src: [u8; 4], dst: [u8; 4]) {
        let b = self.buffer.as_ref();
        let (ttl, protocol) = (b[field::TTL], b[field::PROTOCOL]);
        let (old_src, old_dst) = (self.src(), self.dst());
        let mut c = checksum::adjust(
            self.checksum(),
            &[ttl, protocol],
            &[ttl.wrapping_sub(1), protocol],
        );
        c = checksum::adjust(c, &old_src, &src);
        c = checksum::adjust(c, &old_dst, &dst);
        self.set_ttl(ttl.wrapping_sub(1));
        self.set_src(src);
        self.set_dst(dst);
        self.set_checksum(c);
    }

    /// Computes the header checksum (options included) and writes it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::of(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(c);
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
    b[field::VER_IHL] = VER_IHL_NO_OPTIONS;
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

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv4Header};

    #[test]
    fn setters_and_fill_checksum_match_etherparse() {
        let mut h =
            Ipv4Header::new(12, 50, IpNumber::ICMP, [203, 0, 113, 7], [198, 51, 100, 10]).unwrap();
        h.identification = 7;
        h.header_checksum = h.calc_header_checksum();
        let mut b = h.to_bytes().to_vec();
        b.extend_from_slice(&[0; 12]);
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_src([198, 51, 100, 10]);
        p.set_dst([203, 0, 113, 7]);
        p.set_ttl(64);
        p.set_ident(50);
        p.fill_checksum();
        assert!(p.verify_checksum());
        let mut want =
            Ipv4Header::new(12, 64, IpNumber::ICMP, [198, 51, 100, 10], [203, 0, 113, 7]).unwrap();
        want.identification = 50;
        want.header_checksum = want.calc_header_checksum();
        assert_eq!(&b[..MIN_HEADER_LEN], &want.to_bytes()[..]);
    }

    #[test]
    fn fill_checksum_covers_the_options() {
        let mut b = [0u8; 24];
        emit_header(&mut b, 0, 24, 64, 17, [192, 0, 2, 1], [192, 0, 2, 2], true);
        b[field::VER_IHL] = 0x46;
        b[20..24].copy_from_slice(&[1, 1, 1, 0]);
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_ne!(
            checksum::of(&b[..MIN_HEADER_LEN]),
            0,
            "the options were summed"
        );
    }
}
