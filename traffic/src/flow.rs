//! Flow numbering: flow i is one (client address, source port) pair, so a flow number names
//! a 5-tuple without a table.

/// Source ports per client address; flow i uses port 1024 + i % PORTS_PER_CLIENT.
pub const PORTS_PER_CLIENT: u32 = 64000;
/// Client addresses: 192.0.2.0/24 then 198.51.100.0/24 (IPv4), 2001:db8:c1::/96 (IPv6).
pub const MAX_V4_CLIENTS: u32 = 512;
/// The first source port of every client.
const FIRST_PORT: u32 = 1024;
/// The /96 every IPv6 client lives in: 2001:db8:c1::.
const V6_PREFIX: [u8; 6] = [0x20, 0x01, 0x0d, 0xb8, 0x00, 0xc1];

/// Flow i's client number and source port.
pub fn client_of(flow: u32) -> (u32, u16) {
    (
        flow / PORTS_PER_CLIENT,
        (FIRST_PORT + flow % PORTS_PER_CLIENT) as u16,
    )
}

/// Client number c as an IPv4 address (c < MAX_V4_CLIENTS).
pub fn client_v4(c: u32) -> [u8; 4] {
    let last = (c % 256) as u8;
    if c < 256 {
        [192, 0, 2, last]
    } else {
        [198, 51, 100, last]
    }
}

/// Client number c as an IPv6 address: 2001:db8:c1::c.
pub fn client_v6(c: u32) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..6].copy_from_slice(&V6_PREFIX);
    a[12..].copy_from_slice(&c.to_be_bytes());
    a
}

/// The flow number of a client address (4 or 16 bytes) and source port, if it is one of ours.
/// Received packets are attributed by their stamp instead: fullnat rewrites both.
pub fn flow_of(src: &[u8], port: u16) -> Option<u32> {
    let port = u32::from(port)
        .checked_sub(FIRST_PORT)
        .filter(|p| *p < PORTS_PER_CLIENT)?;
    let client = match *src {
        [192, 0, 2, d] => u32::from(d),
        [198, 51, 100, d] => 256 + u32::from(d),
        [a0, a1, a2, a3, a4, a5, 0, 0, 0, 0, 0, 0, c0, c1, c2, c3]
            if [a0, a1, a2, a3, a4, a5] == V6_PREFIX =>
        {
            u32::from_be_bytes([c0, c1, c2, c3])
        }
        _ => return None,
    };
    client.checked_mul(PORTS_PER_CLIENT)?.checked_add(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_numbers_round_trip_through_addresses() {
        for flow in [
            0,
            1,
            63_999,
            64_000,
            256 * 64_000 + 7,
            511 * 64_000 + 63_999,
        ] {
            let (c, p) = client_of(flow);
            assert_eq!(flow_of(&client_v4(c), p), Some(flow));
            assert_eq!(flow_of(&client_v6(c), p), Some(flow));
        }
        assert_eq!(flow_of(&[203, 0, 113, 1], 2000), None);
        assert_eq!(flow_of(&[192, 0, 2, 1], 80), None);
    }
}
