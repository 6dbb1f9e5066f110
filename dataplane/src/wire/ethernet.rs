//! Ethernet II header and 802.1Q / 802.1ad VLAN tags.

use super::{arr, be16, need, put16, WireError};

pub const HEADER_LEN: usize = 14;
pub const VLAN_TAG_LEN: usize = 4;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;

pub(crate) mod field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const ETHERTYPE: usize = 12;
}

/// A checked view of an Ethernet II header.
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        need("ethernet", HEADER_LEN, self.buffer.as_ref().len())
    }

    pub fn dst(&self) -> [u8; 6] {
        arr(self.buffer.as_ref(), field::DST)
    }

    pub fn src(&self) -> [u8; 6] {
        arr(self.buffer.as_ref(), field::SRC)
    }

    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::DST..field::DST + 6].copy_from_slice(&mac);
    }

    pub fn set_src(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SRC..field::SRC + 6].copy_from_slice(&mac);
    }

    pub fn set_ethertype(&mut self, t: u16) {
        put16(self.buffer.as_mut(), field::ETHERTYPE, t);
    }
}

/// The L2 header of a frame: the Ethernet header plus up to two VLAN tags (QinQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2 {
    /// Bytes from the start of the frame to the network-layer header.
    pub len: usize,
    /// The ethertype after the last VLAN tag.
    pub ethertype: u16,
    pub vlans: u8,
}

/// Reads the Ethernet header and at most two VLAN tags; a third tag is malformed.
pub fn parse_l2(b: &[u8]) -> Result<L2, WireError> {
    let eth = EthernetFrame::new_checked(b)?;
    let mut ethertype = eth.ethertype();
    let mut len = HEADER_LEN;
    let mut vlans = 0u8;
    while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
        if vlans == 2 {
            return Err(WireError::Malformed {
                layer: "vlan",
                field: "more than two tags",
            });
        }
        need("vlan", len + VLAN_TAG_LEN, b.len())?;
        ethertype = be16(b, len + 2);
        len += VLAN_TAG_LEN;
        vlans += 1;
    }
    Ok(L2 {
        len,
        ethertype,
        vlans,
    })
}
