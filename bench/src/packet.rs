//! The generator's frames: building a client packet for flow i, and reading back what the load
//! balancer forwarded (IPIP, GUE, l2-dsr, nat or fullnat) down to the flow, the backend and the
//! timestamp. The flow comes from the payload stamp, not the addresses: fullnat rewrites the
//! client's source address and port.

use std::net::IpAddr;

/// Ethernet header length.
pub const ETH_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_ARP: u16 = 0x0806;
const PROTO_IPIP: u8 = 4;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_IPV6: u8 = 41;
/// GUE variant 1: the inner IP packet right after a UDP header to this port.
pub const GUE_PORT: u16 = 6080;
/// The stamp that follows the L4 header, 10 bytes (so a 64-byte IPv4 TCP frame still holds
/// it): a 2-byte magic, the low 40 bits of the sender's TSC (see [`full_tsc`]) and the flow
/// number's low 24 bits ([`STAMP_FLOWS`]), all big-endian.
pub const STAMP_MAGIC: u16 = 0x5347;
pub const STAMP_LEN: usize = 10;
/// Flow numbers the stamp tells apart: tracked flows (ack and udp modes) must stay below.
pub const STAMP_FLOWS: u32 = 1 << 24;
const TSC_BITS: u32 = 40;
const TSC_MASK: u64 = (1 << TSC_BITS) - 1;
/// Source ports per client address; flow i uses port 1024 + i % PORTS_PER_CLIENT.
pub const PORTS_PER_CLIENT: u32 = 64000;
/// Client addresses: 192.0.2.0/24 then 198.51.100.0/24 (IPv4), 2001:db8:c1::/96 (IPv6).
pub const MAX_V4_CLIENTS: u32 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP with ACK set (an established flow).
    TcpAck,
    /// TCP SYN (a new connection).
    TcpSyn,
    Udp,
}

/// Where one client packet goes.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub vip: IpAddr,
    pub port: u16,
}

/// The frame template of one (VIP, protocol, size): headers with the flow fields to patch.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    v6: bool,
    l4: L4,
    l3_len: usize,
}

impl Template {
    /// Smallest frame that holds the headers and the stamp.
    pub fn min_frame(v6: bool, l4: L4) -> usize {
        ETH_LEN + l3_len(v6) + l4_len(l4) + STAMP_LEN
    }

    pub fn new(
        target: Target,
        l4: L4,
        frame_size: usize,
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
    ) -> Self {
        let v6 = target.vip.is_ipv6();
        let len = frame_size.max(Self::min_frame(v6, l4));
        let mut b = vec![0u8; len];
        b[0..6].copy_from_slice(&dst_mac);
        b[6..12].copy_from_slice(&src_mac);
        let ip_len = len - ETH_LEN;
        let l3 = l3_len(v6);
        let l4_total = ip_len - l3;
        let proto = if l4 == L4::Udp { PROTO_UDP } else { PROTO_TCP };
        let ip = ETH_LEN;
        match target.vip {
            IpAddr::V4(vip) => {
                b[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
                b[ip] = 0x45;
                b[ip + 2..ip + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
                b[ip + 6] = 0x40; // DF
                b[ip + 8] = 64;
                b[ip + 9] = proto;
                b[ip + 16..ip + 20].copy_from_slice(&vip.octets());
            }
            IpAddr::V6(vip) => {
                b[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
                b[ip] = 0x60;
                b[ip + 4..ip + 6].copy_from_slice(&(l4_total as u16).to_be_bytes());
                b[ip + 6] = proto;
                b[ip + 7] = 64;
                b[ip + 24..ip + 40].copy_from_slice(&vip.octets());
            }
        }
        let t = ip + l3;
        b[t + 2..t + 4].copy_from_slice(&target.port.to_be_bytes());
        match l4 {
            L4::Udp => b[t + 4..t + 6].copy_from_slice(&(l4_total as u16).to_be_bytes()),
            L4::TcpAck | L4::TcpSyn => {
                b[t + 12] = 5 << 4;
                b[t + 13] = if l4 == L4::TcpSyn { 0x02 } else { 0x10 };
                b[t + 14..t + 16].copy_from_slice(&65535u16.to_be_bytes());
            }
        }
        let s = t + l4_len(l4);
        b[s..s + 2].copy_from_slice(&STAMP_MAGIC.to_be_bytes());
        Self {
            bytes: b,
            v6,
            l4,
            l3_len: l3,
        }
    }

    /// The frame size in bytes.
    pub fn frame_len(&self) -> usize {
        self.bytes.len()
    }

    /// Writes the frame of flow `flow` stamped with `tsc` into `out` (exactly `len()` bytes).
    pub fn write(&self, out: &mut [u8], flow: u32, tsc: u64) {
        out.copy_from_slice(&self.bytes);
        let ip = ETH_LEN;
        let (client, port) = client_of(flow);
        if self.v6 {
            out[ip + 8..ip + 24].copy_from_slice(&client_v6(client));
        } else {
            out[ip + 12..ip + 16].copy_from_slice(&client_v4(client));
            // Identification varies per packet as a real stack's would; then the checksum.
            out[ip + 4..ip + 6].copy_from_slice(&(tsc as u16).to_be_bytes());
            let sum = fold(sum_bytes(&out[ip..ip + 20], 0));
            out[ip + 10..ip + 12].copy_from_slice(&(!sum).to_be_bytes());
        }
        let t = ip + self.l3_len;
        out[t..t + 2].copy_from_slice(&port.to_be_bytes());
        if self.l4 == L4::TcpSyn {
            // A new initial sequence number per packet, like a fresh connection.
            out[t + 4..t + 8].copy_from_slice(&(tsc as u32).to_be_bytes());
        }
        let s = t + l4_len(self.l4);
        out[s + 2..s + 7].copy_from_slice(&(tsc & TSC_MASK).to_be_bytes()[3..]);
        out[s + 7..s + STAMP_LEN].copy_from_slice(&(flow % STAMP_FLOWS).to_be_bytes()[1..]);
        self.l4_checksum(out, t, s + STAMP_LEN);
    }

    /// The TCP/UDP checksum; the zero padding after the stamp adds nothing to the sum.
    fn l4_checksum(&self, out: &mut [u8], t: usize, sum_end: usize) {
        let ip = ETH_LEN;
        let l4_total = out.len() - t;
        let proto = if self.l4 == L4::Udp {
            PROTO_UDP
        } else {
            PROTO_TCP
        };
        let mut acc = if self.v6 {
            sum_bytes(&out[ip + 8..ip + 40], 0)
        } else {
            sum_bytes(&out[ip + 12..ip + 20], 0)
        };
        acc += u64::from(proto) + l4_total as u64;
        let at = if self.l4 == L4::Udp { t + 6 } else { t + 16 };
        out[at..at + 2].copy_from_slice(&[0, 0]);
        let mut sum = !fold(sum_bytes(&out[t..sum_end], acc));
        if sum == 0 && self.l4 == L4::Udp {
            sum = 0xffff;
        }
        out[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }
}

fn l3_len(v6: bool) -> usize {
    if v6 {
        40
    } else {
        20
    }
}

fn l4_len(l4: L4) -> usize {
    if l4 == L4::Udp {
        8
    } else {
        20
    }
}

/// Flow i's client number and source port.
pub fn client_of(flow: u32) -> (u32, u16) {
    (
        flow / PORTS_PER_CLIENT,
        (1024 + flow % PORTS_PER_CLIENT) as u16,
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
    a[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x00, 0xc1]);
    a[12..].copy_from_slice(&c.to_be_bytes());
    a
}

/// The full TSC of a stamp's low 40 bits `stamp`, received at TSC `now`: the latest time at
/// or before `now` with those low bits (right while packets are younger than 2^40 cycles,
/// minutes at any TSC rate).
pub fn full_tsc(now: u64, stamp: u64) -> u64 {
    now.wrapping_sub(now.wrapping_sub(stamp) & TSC_MASK)
}

/// The flow number of a client address and source port, if it is one of ours (tests only:
/// received packets are attributed by their stamp).
#[cfg(test)]
fn flow_of(src: &[u8], port: u16) -> Option<u32> {
    let port = u32::from(port)
        .checked_sub(1024)
        .filter(|p| *p < PORTS_PER_CLIENT)?;
    let client = match src.len() {
        4 => match src[..3] {
            [192, 0, 2] => u32::from(src[3]),
            [198, 51, 100] => 256 + u32::from(src[3]),
            _ => return None,
        },
        16 if src[..12] == client_v6(0)[..12] => {
            u32::from_be_bytes([src[12], src[13], src[14], src[15]])
        }
        _ => return None,
    };
    client.checked_mul(PORTS_PER_CLIENT)?.checked_add(port)
}

/// Who a forwarded packet went to: the outer destination address, or for l2-dsr the MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKey {
    Ip(IpAddr),
    Mac([u8; 6]),
}

impl std::fmt::Display for BackendKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendKey::Ip(ip) => write!(f, "{ip}"),
            BackendKey::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
        }
    }
}

/// One of our packets as it came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Returned {
    pub backend: BackendKey,
    pub flow: u32,
    pub tsc: u64,
}

/// What a received frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Ours(Returned),
    /// An ARP request for `target` (IPv4) from `sender_mac`/`sender_ip`.
    ArpRequest {
        target: [u8; 4],
    },
    Other,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Classifies a received frame.
pub fn parse(frame: &[u8]) -> Received {
    parse_inner(frame).unwrap_or(Received::Other)
}

fn parse_inner(f: &[u8]) -> Option<Received> {
    let ethertype = be16(f, 12)?;
    let dst_mac: [u8; 6] = f.get(0..6)?.try_into().ok()?;
    let ip = f.get(ETH_LEN..)?;
    if ethertype == ETHERTYPE_ARP {
        // Ethernet/IPv4 request (op 1): target IP at offset 24 of the ARP body.
        if ip.len() >= 28 && be16(ip, 6)? == 1 {
            return Some(Received::ArpRequest {
                target: ip[24..28].try_into().ok()?,
            });
        }
        return None;
    }
    let (outer_dst, proto, payload) = ip_header(ethertype, ip)?;
    let (backend, inner) = match proto {
        PROTO_IPIP | PROTO_IPV6 => (BackendKey::Ip(outer_dst), payload),
        PROTO_UDP if be16(payload, 2)? == GUE_PORT => {
            (BackendKey::Ip(outer_dst), payload.get(8..)?)
        }
        PROTO_UDP | PROTO_TCP => (BackendKey::Mac(dst_mac), ip),
        _ => return None,
    };
    let inner_type = match inner.first()? >> 4 {
        4 => ETHERTYPE_IPV4,
        6 => ETHERTYPE_IPV6,
        _ => return None,
    };
    let (_, proto, l4) = ip_header(inner_type, inner)?;
    let hdr = match proto {
        PROTO_TCP => usize::from(l4.get(12)? >> 4) * 4,
        PROTO_UDP => 8,
        _ => return None,
    };
    let stamp = l4.get(hdr..hdr + STAMP_LEN)?;
    if be16(stamp, 0)? != STAMP_MAGIC {
        return None;
    }
    let mut tsc = [0u8; 8];
    tsc[3..].copy_from_slice(stamp.get(2..7)?);
    let mut flow = [0u8; 4];
    flow[1..].copy_from_slice(stamp.get(7..10)?);
    let (tsc, flow) = (u64::from_be_bytes(tsc), u32::from_be_bytes(flow));
    Some(Received::Ours(Returned { backend, flow, tsc }))
}

/// (destination, protocol, payload) of an IPv4 or IPv6 header at the start of `ip`.
fn ip_header(ethertype: u16, ip: &[u8]) -> Option<(IpAddr, u8, &[u8])> {
    match ethertype {
        ETHERTYPE_IPV4 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            Some((IpAddr::from(dst), *ip.get(9)?, ip.get(ihl.max(20)..)?))
        }
        ETHERTYPE_IPV6 => {
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            Some((IpAddr::from(dst), *ip.get(6)?, ip.get(40..)?))
        }
        _ => None,
    }
}

/// Turns an ARP request frame (in place) into the reply from `mac`.
pub fn arp_reply(frame: &mut [u8], mac: [u8; 6]) -> bool {
    if frame.len() < ETH_LEN + 28 {
        return false;
    }
    let sender_mac: [u8; 6] = frame[6..12].try_into().unwrap_or_default();
    frame[0..6].copy_from_slice(&sender_mac);
    frame[6..12].copy_from_slice(&mac);
    let a = ETH_LEN;
    frame[a + 6..a + 8].copy_from_slice(&2u16.to_be_bytes());
    let (sha, spa): ([u8; 6], [u8; 4]) = (
        frame[a + 8..a + 14].try_into().unwrap_or_default(),
        frame[a + 14..a + 18].try_into().unwrap_or_default(),
    );
    let tpa: [u8; 4] = frame[a + 24..a + 28].try_into().unwrap_or_default();
    frame[a + 8..a + 14].copy_from_slice(&mac);
    frame[a + 14..a + 18].copy_from_slice(&tpa);
    frame[a + 18..a + 24].copy_from_slice(&sha);
    frame[a + 24..a + 28].copy_from_slice(&spa);
    true
}

/// The MAC the generator answers ARP with for `ip`: 02:00 followed by the address.
pub fn mac_for(ip: [u8; 4]) -> [u8; 6] {
    [0x02, 0x00, ip[0], ip[1], ip[2], ip[3]]
}

fn sum_bytes(b: &[u8], mut acc: u64) -> u64 {
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn target(vip: &str) -> Target {
        Target {
            vip: vip.parse().unwrap(),
            port: 80,
        }
    }

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
        assert_eq!(flow_of(&[10, 0, 0, 1], 2000), None);
        assert_eq!(flow_of(&[192, 0, 2, 1], 80), None);
    }

    #[test]
    fn frames_have_the_asked_size_and_valid_checksums() {
        for (vip, l4, size) in [
            ("198.51.100.10", L4::TcpAck, 64),
            ("198.51.100.10", L4::Udp, 60),
            ("198.51.100.10", L4::TcpSyn, 1500),
            ("2001:db8::10", L4::TcpAck, 64),
            ("2001:db8::10", L4::Udp, 128),
        ] {
            let t = Template::new(target(vip), l4, size, SRC, DST);
            assert_eq!(
                t.frame_len(),
                size.max(Template::min_frame(vip.contains(':'), l4))
            );
            let mut out = vec![0u8; t.frame_len()];
            t.write(&mut out, 70_123, 0x0102_0304_0506_0708);
            let v6 = vip.contains(':');
            let l3 = l3_len(v6);
            if !v6 {
                assert_eq!(
                    fold(sum_bytes(&out[14..34], 0)),
                    0xffff,
                    "ipv4 header checksum"
                );
            }
            // Verify the L4 checksum over the pseudo-header and the whole segment.
            let seg = &out[14 + l3..];
            let pseudo = if v6 {
                sum_bytes(&out[22..54], 0)
            } else {
                sum_bytes(&out[26..34], 0)
            };
            let proto = if l4 == L4::Udp { 17 } else { 6 };
            let acc = pseudo + proto + seg.len() as u64;
            assert_eq!(
                fold(sum_bytes(seg, acc)),
                0xffff,
                "{vip} {l4:?} l4 checksum"
            );
            // Sent straight back (as l2-dsr would), it parses to the same flow and stamp.
            match parse(&out) {
                Received::Ours(r) => {
                    assert_eq!(r.flow, 70_123);
                    assert_eq!(r.tsc, 0x04_0506_0708, "the TSC's low 40 bits");
                    assert_eq!(r.backend, BackendKey::Mac(DST));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    fn encap(outer_v6: bool, proto: u8, udp_gue: bool, inner: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        let mut body = Vec::new();
        if udp_gue {
            body.extend_from_slice(&[0xc0, 0x01]);
            body.extend_from_slice(&GUE_PORT.to_be_bytes());
            body.extend_from_slice(&((8 + inner.len()) as u16).to_be_bytes());
            body.extend_from_slice(&[0, 0]);
        }
        body.extend_from_slice(inner);
        if outer_v6 {
            f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let mut h = [0u8; 40];
            h[0] = 0x60;
            h[6] = if udp_gue { 17 } else { proto };
            h[24..40].copy_from_slice(
                &"2001:db8:be::5"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
            );
            f.extend_from_slice(&h);
        } else {
            f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[9] = if udp_gue { 17 } else { proto };
            h[16..20].copy_from_slice(&[203, 0, 113, 5]);
            f.extend_from_slice(&h);
        }
        f.extend_from_slice(&body);
        f
    }

    #[test]
    fn encapsulated_packets_name_the_backend_by_outer_destination() {
        let t4 = Template::new(target("198.51.100.10"), L4::TcpAck, 64, SRC, DST);
        let t6 = Template::new(target("2001:db8::10"), L4::Udp, 64, SRC, DST);
        let mut p4 = vec![0u8; t4.frame_len()];
        t4.write(&mut p4, 5, 99);
        let mut p6 = vec![0u8; t6.frame_len()];
        t6.write(&mut p6, 6, 100);
        let cases = [
            (false, PROTO_IPIP, false, &p4[14..], "203.0.113.5", 5, 99),
            (false, PROTO_IPV6, false, &p6[14..], "203.0.113.5", 6, 100),
            (true, PROTO_IPIP, false, &p4[14..], "2001:db8:be::5", 5, 99),
            (true, PROTO_IPV6, false, &p6[14..], "2001:db8:be::5", 6, 100),
            (false, 0, true, &p4[14..], "203.0.113.5", 5, 99),
            (true, 0, true, &p6[14..], "2001:db8:be::5", 6, 100),
        ];
        for (outer_v6, proto, gue, inner, backend, flow, tsc) in cases {
            let f = encap(outer_v6, proto, gue, inner);
            assert_eq!(
                parse(&f),
                Received::Ours(Returned {
                    backend: BackendKey::Ip(backend.parse().unwrap()),
                    flow,
                    tsc
                }),
                "outer_v6={outer_v6} proto={proto} gue={gue}"
            );
        }
    }

    /// What fullnat does to a frame: source address and port rewritten (checksums not
    /// patched: the parser does not check them).
    fn fullnat(frame: &mut [u8], v6: bool, src: &[u8], port: u16) {
        let (at, l4) = if v6 {
            (14 + 8, 14 + 40)
        } else {
            (14 + 12, 14 + 20)
        };
        frame[at..at + src.len()].copy_from_slice(src);
        frame[l4..l4 + 2].copy_from_slice(&port.to_be_bytes());
    }

    #[test]
    fn fullnat_packets_keep_their_flow_from_the_stamp() {
        // The local address 192.0.2.200 is also client 200's address; the stamp decides.
        for (flow, local_port) in [(0, 1024), (63_999, 40_000), (1_234_567, 65_535)] {
            let t4 = Template::new(target("198.51.100.10"), L4::TcpAck, 64, SRC, DST);
            let mut f = vec![0u8; t4.frame_len()];
            t4.write(&mut f, flow, 0xab_cdef_0123);
            fullnat(&mut f, false, &[192, 0, 2, 200], local_port);
            let expect = Received::Ours(Returned {
                backend: BackendKey::Mac(DST),
                flow,
                tsc: 0xab_cdef_0123,
            });
            assert_eq!(parse(&f), expect, "v4 flow {flow}");
            let t6 = Template::new(target("2001:db8::10"), L4::Udp, 64, SRC, DST);
            let mut f = vec![0u8; t6.frame_len()];
            t6.write(&mut f, flow, 0xab_cdef_0123);
            let local: std::net::Ipv6Addr = "2001:db8::200".parse().unwrap();
            fullnat(&mut f, true, &local.octets(), local_port);
            assert_eq!(parse(&f), expect, "v6 flow {flow}");
        }
        // Flow numbers wrap at STAMP_FLOWS (only syn mode, which tracks no flows, goes past).
        let t = Template::new(target("198.51.100.10"), L4::TcpSyn, 64, SRC, DST);
        let mut f = vec![0u8; t.frame_len()];
        t.write(&mut f, STAMP_FLOWS + 5, 1);
        assert!(matches!(parse(&f), Received::Ours(r) if r.flow == 5));
    }

    #[test]
    fn stamps_unwrap_to_the_latest_matching_tsc() {
        let sent = 0x1234_5678_9abc_def0u64;
        let stamp = sent & TSC_MASK;
        for age in [0, 1, 3_000_000_000, TSC_MASK] {
            assert_eq!(full_tsc(sent + age, stamp), sent, "age {age}");
        }
        // Past 2^40 cycles it is ambiguous: the latest candidate wins.
        assert_eq!(full_tsc(sent + TSC_MASK + 1, stamp), sent + TSC_MASK + 1);
        // Near zero (a TSC that just started) nothing underflows into garbage.
        assert_eq!(full_tsc(5, 3), 3);
    }

    #[test]
    fn foreign_and_cut_frames_are_other_never_a_panic() {
        let t = Template::new(target("198.51.100.10"), L4::TcpAck, 64, SRC, DST);
        let mut p = vec![0u8; t.frame_len()];
        t.write(&mut p, 5, 99);
        for cut in 0..p.len() - 1 {
            assert_eq!(parse(&p[..cut]), Received::Other, "cut at {cut}");
        }
        p[54] ^= 0xff; // the magic
        assert_eq!(parse(&p), Received::Other);
    }

    #[test]
    fn arp_requests_get_a_reply_from_the_derived_mac() {
        let mut f = vec![0u8; 42];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&SRC);
        f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[22..28].copy_from_slice(&SRC);
        f[28..32].copy_from_slice(&[192, 0, 2, 10]);
        f[38..42].copy_from_slice(&[192, 0, 2, 50]);
        assert_eq!(
            parse(&f),
            Received::ArpRequest {
                target: [192, 0, 2, 50]
            }
        );
        let mac = mac_for([192, 0, 2, 50]);
        assert!(arp_reply(&mut f, mac));
        assert_eq!(&f[0..6], &SRC);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[20..22], &[0, 2]);
        assert_eq!(&f[22..28], &mac);
        assert_eq!(&f[28..32], &[192, 0, 2, 50]);
        assert_eq!(&f[32..38], &SRC);
        assert_eq!(&f[38..42], &[192, 0, 2, 10]);
    }
}
