//! Client frames: one template per (VIP, protocol, size) built once through the wire
//! emitters, then copied and patched per packet (client address and port, IPv4 ident, the
//! stamp, checksums): no allocation and no parsing on the send path.

use std::net::IpAddr;

use dataplane::checksum;
use dataplane::wire::ethernet::{self, EthernetFrame};
use dataplane::wire::ipv4::{self, Ipv4Packet};
use dataplane::wire::ipv6::{self, Ipv6Packet};
use dataplane::wire::proto;
use dataplane::wire::tcp::{self, TcpPacket};
use dataplane::wire::udp::{self, UdpPacket};

use crate::flow::{client_of, client_v4, client_v6};
use crate::stamp::{self, STAMP_LEN};

const TTL: u8 = 64;
const TCP_WINDOW: u16 = 65535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP with ACK set (an established flow).
    TcpAck,
    /// TCP SYN (a new connection).
    TcpSyn,
    Udp,
}

impl L4 {
    fn protocol(self) -> u8 {
        if self == L4::Udp {
            proto::UDP
        } else {
            proto::TCP
        }
    }

    fn header_len(self) -> usize {
        if self == L4::Udp {
            udp::HEADER_LEN
        } else {
            tcp::MIN_HEADER_LEN
        }
    }

    fn tcp_flags(self) -> u8 {
        if self == L4::TcpSyn {
            tcp::SYN
        } else {
            tcp::ACK
        }
    }
}

/// Where one client packet goes.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub vip: IpAddr,
    pub port: u16,
}

/// A client address, of the template's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// The fields one packet patches into its template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub client: Client,
    pub sport: u16,
    /// IPv4 identification (unused over IPv6).
    pub ident: u16,
    /// TCP only: the sequence number and flags.
    pub seq: u32,
    pub tcp_flags: u8,
    /// What the stamp carries.
    pub flow: u32,
    pub tsc: u64,
}

/// The frame template of one (VIP, protocol, size): headers with the flow fields to patch.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    v6: bool,
    l4: L4,
    /// Offsets of the L4 header and of the stamp in the frame.
    l4_at: usize,
    stamp_at: usize,
    /// The pseudo-header sum without the source address (the VIP, protocol and length).
    pseudo: u32,
}

fn l3_len(v6: bool) -> usize {
    if v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::MIN_HEADER_LEN
    }
}

impl Template {
    /// Smallest frame that holds the headers and the stamp.
    pub fn min_frame(v6: bool, l4: L4) -> usize {
        ethernet::HEADER_LEN + l3_len(v6) + l4.header_len() + STAMP_LEN
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
        let ip_at = ethernet::HEADER_LEN;
        let l4_at = ip_at + l3_len(v6);
        let stamp_at = l4_at + l4.header_len();
        let ip_len = len - ip_at;
        let l4_total = len - l4_at;
        let mut eth = EthernetFrame::new_unchecked(&mut b[..ip_at]);
        eth.set_dst(dst_mac);
        eth.set_src(src_mac);
        let pseudo = match target.vip {
            IpAddr::V4(vip) => {
                eth.set_ethertype(ethernet::ETHERTYPE_IPV4);
                let (ip, dst) = (&mut b[ip_at..], vip.octets());
                // The checksum is the per-packet write's (the ident changes it).
                ipv4::emit_header(ip, 0, ip_len as u16, TTL, l4.protocol(), [0; 4], dst, true);
                checksum::pseudo_v4(&[0; 4], &dst, l4.protocol(), l4_total as u16)
            }
            IpAddr::V6(vip) => {
                eth.set_ethertype(ethernet::ETHERTYPE_IPV6);
                let (ip, dst) = (&mut b[ip_at..], vip.octets());
                let pl = l4_total as u16;
                ipv6::emit_header(ip, 0, 0, pl, l4.protocol(), TTL, [0; 16], dst);
                checksum::pseudo_v6(&[0; 16], &dst, l4.protocol(), l4_total as u32)
            }
        };
        let seg = &mut b[l4_at..];
        match l4 {
            L4::Udp => udp::emit_header(seg, 0, target.port, l4_total as u16, 0),
            L4::TcpAck | L4::TcpSyn => {
                let mut t = TcpPacket::new_unchecked(seg);
                t.set_dst_port(target.port);
                t.set_header_len(tcp::MIN_HEADER_LEN);
                t.set_flags(l4.tcp_flags());
                t.set_window(TCP_WINDOW);
            }
        }
        stamp::emit(&mut b[stamp_at..], 0, 0);
        Self {
            bytes: b,
            v6,
            l4,
            l4_at,
            stamp_at,
            pseudo,
        }
    }

    /// The frame size in bytes.
    pub fn frame_len(&self) -> usize {
        self.bytes.len()
    }

    /// sluice-gen's packet of flow `flow` at `tsc`: the flow's client and port, the TSC as the
    /// IPv4 ident (varying per packet as a real stack's would) and, for SYNs, a new initial
    /// sequence number per packet, like a fresh connection.
    #[inline]
    pub fn packet(&self, flow: u32, tsc: u64) -> Packet {
        let (c, sport) = client_of(flow);
        Packet {
            client: if self.v6 {
                Client::V6(client_v6(c))
            } else {
                Client::V4(client_v4(c))
            },
            sport,
            ident: tsc as u16,
            seq: if self.l4 == L4::TcpSyn { tsc as u32 } else { 0 },
            tcp_flags: self.l4.tcp_flags(),
            flow,
            tsc,
        }
    }

    /// Writes the frame of flow `flow` stamped with `tsc` into `out` (see [`Template::packet`]);
    /// false (nothing written) unless `out` is exactly `frame_len()` bytes.
    #[inline]
    pub fn write(&self, out: &mut [u8], flow: u32, tsc: u64) -> bool {
        self.write_packet(out, &self.packet(flow, tsc))
    }

    /// Writes the template patched with `p` into `out`; false (nothing written) unless `out` is
    /// exactly `frame_len()` bytes and the client is of the VIP's family.
    #[inline]
    pub fn write_packet(&self, out: &mut [u8], p: &Packet) -> bool {
        if out.len() != self.bytes.len() || matches!(p.client, Client::V6(_)) != self.v6 {
            return false;
        }
        out.copy_from_slice(&self.bytes);
        let ip = &mut out[ethernet::HEADER_LEN..];
        let pseudo = match p.client {
            Client::V4(src) => {
                let mut h = Ipv4Packet::new_unchecked(ip);
                h.set_src(src);
                h.set_ident(p.ident);
                h.fill_checksum();
                checksum::add(self.pseudo, &src)
            }
            Client::V6(src) => {
                Ipv6Packet::new_unchecked(ip).set_src(src);
                checksum::add(self.pseudo, &src)
            }
        };
        let (seg, stamp_end) = (self.l4_at, self.stamp_at + STAMP_LEN);
        if self.l4 == L4::Udp {
            UdpPacket::new_unchecked(&mut out[seg..]).set_src_port(p.sport);
        } else {
            let mut t = TcpPacket::new_unchecked(&mut out[seg..]);
            t.set_src_port(p.sport);
            t.set_seq_number(p.seq);
            t.set_flags(p.tcp_flags);
        }
        stamp::emit(&mut out[self.stamp_at..stamp_end], p.flow, p.tsc);
        // The zero padding after the stamp adds nothing to the sum; the field is 0 in the copy.
        let mut sum = checksum::finish(checksum::add(pseudo, &out[seg..stamp_end]));
        if self.l4 == L4::Udp {
            // 0 means "no checksum" in UDP: send its other form.
            if sum == 0 {
                sum = 0xffff;
            }
            UdpPacket::new_unchecked(&mut out[seg..]).set_checksum(sum);
        } else {
            TcpPacket::new_unchecked(&mut out[seg..]).set_checksum(sum);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{parse, BackendKey, Received};

    const SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn target(vip: &str) -> Target {
        Target {
            vip: vip.parse().unwrap(),
            port: 80,
        }
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
            let v6 = vip.contains(':');
            assert_eq!(t.frame_len(), size.max(Template::min_frame(v6, l4)));
            let mut out = vec![0u8; t.frame_len()];
            assert!(t.write(&mut out, 70_123, 0x0102_0304_0506_0708));
            if !v6 {
                assert_eq!(checksum::of(&out[14..34]), 0, "ipv4 header checksum");
            }
            // Verify the L4 checksum over the pseudo-header and the whole segment.
            let l3 = l3_len(v6);
            let seg = &out[14 + l3..];
            let proto = if l4 == L4::Udp { 17 } else { 6 };
            let pseudo = if v6 {
                let (s, d) = (&out[22..38], &out[38..54]);
                checksum::pseudo_v6(
                    s.try_into().unwrap(),
                    d.try_into().unwrap(),
                    proto,
                    seg.len() as u32,
                )
            } else {
                let (s, d) = (&out[26..30], &out[30..34]);
                checksum::pseudo_v4(
                    s.try_into().unwrap(),
                    d.try_into().unwrap(),
                    proto,
                    seg.len() as u16,
                )
            };
            let sum = checksum::finish(checksum::add(pseudo, seg));
            assert_eq!(sum, 0, "{vip} {l4:?} l4 checksum");
            // Sent straight back (as l2-dsr would), it parses to the same flow and stamp.
            match parse(&out) {
                Received::Ours(r) => {
                    assert_eq!(r.flow, 70_123);
                    assert_eq!(r.tsc, 0x04_0506_0708, "the TSC's low 40 bits");
                    assert_eq!(r.backend, BackendKey::Mac(DST));
                    assert_eq!(r.inner_dst, vip.parse::<IpAddr>().unwrap());
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_packet_of_its_own_fields_is_written_as_given() {
        let t = Template::new(target("198.51.100.10"), L4::TcpAck, 0, SRC, DST);
        let p = Packet {
            client: Client::V4([203, 0, 113, 9]),
            sport: 4321,
            ident: 0,
            seq: 7,
            tcp_flags: tcp::FIN | tcp::ACK,
            flow: 99,
            tsc: 5,
        };
        let mut out = vec![0u8; t.frame_len()];
        assert!(t.write_packet(&mut out, &p));
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src(), [203, 0, 113, 9]);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (
                tcp.src_port(),
                tcp.dst_port(),
                tcp.seq_number(),
                tcp.flags()
            ),
            (4321, 80, 7, tcp::FIN | tcp::ACK)
        );
        // A client of the other family, or a buffer of the wrong size, is refused.
        let v6 = Packet {
            client: Client::V6([0; 16]),
            ..p
        };
        assert!(!t.write_packet(&mut out, &v6));
        assert!(!t.write_packet(&mut out[1..], &p));
    }
}
