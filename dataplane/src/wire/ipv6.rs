//! IPv6 fixed header (RFC 8200) and the walk over its extension-header chain.

use super::{arr, be16, be32, need, proto, put16, put32, WireError};

pub const HEADER_LEN: usize = 40;
pub const FRAG_HEADER_LEN: usize = 8;
/// Longest chain we walk; a longer one is treated as malformed (an attack, not traffic).
pub const MAX_EXT_HEADERS: usize = 8;

pub(crate) mod field {
    pub const VER_TC_FL: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// A checked view of an IPv6 header and its payload.
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks version and that the payload length fits in the buffer. A zero payload length
    /// (a jumbogram) is malformed for us: Ethernet cannot carry one.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        need("ipv6", HEADER_LEN, b.len())?;
        if self.version() != 6 {
            return Err(WireError::Malformed {
                layer: "ipv6",
                field: "version",
            });
        }
        let pl = usize::from(self.payload_len());
        if pl == 0 && self.next_header() != proto::NO_NEXT {
            return Err(WireError::Malformed {
                layer: "ipv6",
                field: "payload length",
            });
        }
        need("ipv6", HEADER_LEN + pl, b.len())
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FL] >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        let w = be32(self.buffer.as_ref(), field::VER_TC_FL);
        (w >> 20) as u8
    }

    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src(&self) -> [u8; 16] {
        arr(self.buffer.as_ref(), field::SRC)
    }

    pub fn dst(&self) -> [u8; 16] {
        arr(self.buffer.as_ref(), field::DST)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    pub fn set_src(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(&a);
    }

    pub fn set_dst(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::DST..field::DST + 16].copy_from_slice(&a);
    }

    pub fn set_hop_limit(&mut self, h: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = h;
    }
}

/// ff02::1, every node on the link.
pub const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// The solicited-node multicast group of `a` (RFC 4291 section 2.7.1): ff02::1:ffXX:XXXX.
pub fn solicited_node(a: &[u8; 16]) -> [u8; 16] {
    [
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, a[13], a[14], a[15],
    ]
}

/// The Ethernet address a multicast group maps to (RFC 2464 section 7): 33:33 + its last 32 bits.
pub fn multicast_mac(group: &[u8; 16]) -> [u8; 6] {
    [0x33, 0x33, group[12], group[13], group[14], group[15]]
}

/// Where the extension-header chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol number.
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// Present when a fragment header was found.
    pub fragment: Option<Fragment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Offset in 8-byte units.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

/// Walks hop-by-hop, routing, destination-options and fragment headers over `packet`
/// (the IPv6 header and its payload, padding excluded). Anything after a non-first
/// fragment header is not parsed: it is the middle of the original payload.
pub fn walk_extensions(packet: &[u8]) -> Result<UpperLayer, WireError> {
    let mut next = packet[field::NEXT_HEADER];
    let mut off = HEADER_LEN;
    let mut fragment = None;
    // One step per extension header plus the final step that meets the upper layer.
    for _ in 0..=MAX_EXT_HEADERS {
        match next {
            proto::HOP_BY_HOP | proto::ROUTING | proto::DEST_OPTS => {
                if next == proto::HOP_BY_HOP && off != HEADER_LEN {
                    return Err(WireError::Malformed {
                        layer: "ipv6",
                        field: "hop-by-hop not first",
                    });
                }
                need("ipv6 extension", off + 2, packet.len())?;
                let len = (usize::from(packet[off + 1]) + 1) * 8;
                need("ipv6 extension", off + len, packet.len())?;
                next = packet[off];
                off += len;
            }
            proto::FRAGMENT => {
                if fragment.is_some() {
                    return Err(WireError::Malformed {
                        layer: "ipv6",
                        field: "two fragment headers",
                    });
                }
                need("ipv6 fragment", off + FRAG_HEADER_LEN, packet.len())?;
                let w = be16(packet, off + 2);
                let f = Fragment {
                    offset: w >> 3,
                    more: w & 1 != 0,
                    ident: be32(packet, off + 4),
                };
                fragment = Some(f);
                next = packet[off];
                off += FRAG_HEADER_LEN;
                if f.offset != 0 {
                    return Ok(UpperLayer {
                        protocol: next,
                        offset: off,
                        fragment,
                    });
                }
            }
            proto::NO_NEXT => {
                return Err(WireError::Malformed {
                    layer: "ipv6",
                    field: "no next header",
                })
            }
            _ => {
                return Ok(UpperLayer {
                    protocol: next,
                    offset: off,
                    fragment,
                })
            }
        }
    }
    Err(WireError::Malformed {
        layer: "ipv6",
        field: "extension header chain too long",
    })
}

/// Writes a 40-byte IPv6 header into `b[..40]`.
#[allow(clippy::too_many_arguments)]
pub fn emit_header(
    b: &mut [u8],
    traffic_class: u8,
    flow_label: u32,
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: [u8; 16],
    dst: [u8; 16],
) {
    put32(
        b,
        field::VER_TC_FL,
        (6 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0xf_ffff),
    );
    put16(b, field::PAYLOAD_LEN, payload_len);
    b[field::NEXT_HEADER] = next_header;
    b[field::HOP_LIMIT] = hop_limit;
    b[field::SRC..field::SRC + 16].copy_from_slice(&src);
    b[field::DST..field::DST + 16].copy_from_slice(&dst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv6Header};

    const A: [u8; 16] = [
        0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78,
    ];
    const B: [u8; 16] = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    fn header(src: [u8; 16], dst: [u8; 16], hop_limit: u8) -> Vec<u8> {
        let h = Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: 0,
            next_header: IpNumber::IPV6_NO_NEXT_HEADER,
            hop_limit,
            source: src,
            destination: dst,
        };
        h.to_bytes().to_vec()
    }

    #[test]
    fn setters_match_etherparse() {
        let mut b = header(A, B, 40);
        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        p.set_src(B);
        p.set_dst(A);
        p.set_hop_limit(64);
        assert_eq!(b, header(B, A, 64));
    }

    #[test]
    fn solicited_node_group_and_its_mac() {
        let g = solicited_node(&A);
        let want: std::net::Ipv6Addr = "ff02::1:ff34:5678".parse().unwrap();
        assert_eq!(g, want.octets());
        assert_eq!(multicast_mac(&g), [0x33, 0x33, 0xff, 0x34, 0x56, 0x78]);
        assert_eq!(multicast_mac(&ALL_NODES), [0x33, 0x33, 0, 0, 0, 1]);
    }
}
