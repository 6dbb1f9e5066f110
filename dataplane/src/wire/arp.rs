//! ARP for IPv4 over Ethernet (RFC 826); other hardware/protocol types are malformed here.

use super::ethernet::{self, EthernetFrame};
use super::{arr, be16, need, put16, WireError};

pub const PACKET_LEN: usize = 28;
/// An untagged Ethernet header and the ARP packet: what [`ArpRepr::emit_frame`] writes.
pub const FRAME_LEN: usize = ethernet::HEADER_LEN + PACKET_LEN;
pub const BROADCAST: [u8; 6] = [0xff; 6];
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
    /// Writes the Ethernet/IPv4 hardware and protocol types and address lengths.
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        put16(b, field::HTYPE, 1);
        put16(b, field::PTYPE, ethernet::ETHERTYPE_IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }

    pub fn set_operation(&mut self, op: u16) {
        put16(self.buffer.as_mut(), field::OPER, op);
    }

    pub fn set_sender_mac(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SHA..field::SHA + 6].copy_from_slice(&mac);
    }

    pub fn set_sender_ip(&mut self, ip: [u8; 4]) {
        self.buffer.as_mut()[field::SPA..field::SPA + 4].copy_from_slice(&ip);
    }

    pub fn set_target_mac(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::THA..field::THA + 6].copy_from_slice(&mac);
    }

    pub fn set_target_ip(&mut self, ip: [u8; 4]) {
        self.buffer.as_mut()[field::TPA..field::TPA + 4].copy_from_slice(&ip);
    }

    /// Turns a request into the reply: `mac` owns the requested `target_ip`.
    pub fn make_reply(&mut self, mac: [u8; 6]) {
        let (sha, spa, tpa) = (self.sender_mac(), self.sender_ip(), self.target_ip());
        ArpRepr::reply(mac, tpa, sha, spa).emit(self);
    }
}

/// The fields of an Ethernet/IPv4 ARP packet, to write one (smoltcp's `ArpRepr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: [u8; 4],
    pub target_mac: [u8; 6],
    pub target_ip: [u8; 4],
}

impl ArpRepr {
    /// Who has `target_ip`? Tell `sender_ip` at `sender_mac`.
    pub fn request(sender_mac: [u8; 6], sender_ip: [u8; 4], target_ip: [u8; 4]) -> Self {
        Self {
            operation: OP_REQUEST,
            sender_mac,
            sender_ip,
            target_mac: [0; 6],
            target_ip,
        }
    }

    /// `sender_ip` is at `sender_mac`, told to the asker at `target_mac` / `target_ip`.
    pub fn reply(
        sender_mac: [u8; 6],
        sender_ip: [u8; 4],
        target_mac: [u8; 6],
        target_ip: [u8; 4],
    ) -> Self {
        Self {
            operation: OP_REPLY,
            sender_mac,
            sender_ip,
            target_mac,
            target_ip,
        }
    }

    /// Writes every field of the packet; the view's buffer must have passed `check_len`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ArpPacket<T>) {
        p.set_ethernet_ipv4();
        p.set_operation(self.operation);
        p.set_sender_mac(self.sender_mac);
        p.set_sender_ip(self.sender_ip);
        p.set_target_mac(self.target_mac);
        p.set_target_ip(self.target_ip);
    }

    /// Writes the untagged frame from the sender: a request is broadcast, a reply goes to
    /// the target's MAC. Padding to the Ethernet minimum is the caller's (or the NIC's).
    pub fn emit_frame(&self, b: &mut [u8; FRAME_LEN]) {
        let dst = if self.operation == OP_REQUEST {
            BROADCAST
        } else {
            self.target_mac
        };
        let mut eth = EthernetFrame::new_unchecked(&mut b[..ethernet::HEADER_LEN]);
        eth.set_dst(dst);
        eth.set_src(self.sender_mac);
        eth.set_ethertype(ethernet::ETHERTYPE_ARP);
        self.emit(&mut ArpPacket::new_unchecked(
            &mut b[ethernet::HEADER_LEN..],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
    const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
    const IP: [u8; 4] = [192, 0, 2, 10];
    const PEER_IP: [u8; 4] = [192, 0, 2, 11];

    /// The frame laid out field by field as RFC 826 draws it.
    fn rfc826(
        dst: [u8; 6],
        op: u8,
        sha: [u8; 6],
        spa: [u8; 4],
        tha: [u8; 6],
        tpa: [u8; 4],
    ) -> Vec<u8> {
        let mut v = dst.to_vec();
        v.extend_from_slice(&sha);
        v.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, op]);
        v.extend_from_slice(&sha);
        v.extend_from_slice(&spa);
        v.extend_from_slice(&tha);
        v.extend_from_slice(&tpa);
        v
    }

    #[test]
    fn a_request_frame_is_broadcast_and_byte_exact() {
        let mut b = [0xaa; FRAME_LEN];
        ArpRepr::request(MAC, IP, PEER_IP).emit_frame(&mut b);
        assert_eq!(b.to_vec(), rfc826(BROADCAST, 1, MAC, IP, [0; 6], PEER_IP));
        let p = ArpPacket::new_checked(&b[ethernet::HEADER_LEN..]).unwrap();
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!((p.sender_mac(), p.sender_ip()), (MAC, IP));
        assert_eq!(p.target_ip(), PEER_IP);
    }

    #[test]
    fn a_reply_frame_goes_to_the_asker_and_is_byte_exact() {
        let mut b = [0xaa; FRAME_LEN];
        ArpRepr::reply(PEER, PEER_IP, MAC, IP).emit_frame(&mut b);
        assert_eq!(b.to_vec(), rfc826(MAC, 2, PEER, PEER_IP, MAC, IP));
    }

    #[test]
    fn make_reply_answers_the_request_it_is_given() {
        let mut b = [0; FRAME_LEN];
        ArpRepr::request(PEER, PEER_IP, IP).emit_frame(&mut b);
        let mut p = ArpPacket::new_checked(&mut b[ethernet::HEADER_LEN..]).unwrap();
        p.make_reply(MAC);
        let expect = rfc826(BROADCAST, 2, MAC, IP, PEER, PEER_IP);
        assert_eq!(&b[ethernet::HEADER_LEN..], &expect[ethernet::HEADER_LEN..]);
    }
}
