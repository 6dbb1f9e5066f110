//! ARP for IPv4 over Ethernet (RFC 826); other hardware/protocol types are malformed here.

use super::{arr, be16, need, put16, WireError};

pub const PACKET_LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

/// A checked view of an Ethernet/IPv4 ARP packet.
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        let b = p.buffer.as_ref();
        if be16(b, field::HTYPE) != 1
            || be16(b, field::PTYPE) != 0x0800
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(WireError::Malformed {
                layer: "arp",
                field: "hardware/protocol type",
            });
        }
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        need("arp", PACKET_LEN, self.buffer.as_ref().len())
    }

    pub fn operation(&self) -> u16 {
        be16(self.buffer.as_ref(), field::OPER)
    }

    pub fn sender_mac(&self) -> [u8; 6] {
        arr(self.buffer.as_ref(), field::SHA)
    }

    pub fn sender_ip(&self) -> [u8; 4] {
        arr(self.buffer.as_ref(), field::SPA)
    }

    pub fn target_mac(&self) -> [u8; 6] {
        arr(self.buffer.as_ref(), field::THA)
    }

    pub fn target_ip(&self) -> [u8; 4] {
        arr(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Turns a request into the reply: `mac` owns the requested `target_ip`.
    pub fn make_reply(&mut self, mac: [u8; 6]) {
        let (sha, spa, tpa) = (self.sender_mac(), self.sender_ip(), self.target_ip());
        let b = self.buffer.as_mut();
        put16(b, field::OPER, OP_REPLY);
        b[field::SHA..field::SHA + 6].copy_from_slice(&mac);
        b[field::SPA..field::SPA + 4].copy_from_slice(&tpa);
        b[field::THA..field::THA + 6].copy_from_slice(&sha);
        b[field::TPA..field::TPA + 4].copy_from_slice(&spa);
    }
}
