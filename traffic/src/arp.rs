//! Answering the load balancer's ARP requests as the backends would, with one MAC scheme
//! ([`mac_for`]) for `sluice demo`, `sluice-gen` and the tests.

use dataplane::wire::arp::{self, ArpPacket};
use dataplane::wire::ethernet::{self, EthernetFrame};

/// The MAC a backend at `ip` answers with: 02:00 (locally administered) then the address, so
/// every IPv4 address has its own.
pub fn mac_for(ip: [u8; 4]) -> [u8; 6] {
    [0x02, 0x00, ip[0], ip[1], ip[2], ip[3]]
}

/// Turns the ARP request in `frame` (in place) into the reply from `mac`, sent back to the
/// asker; false (the frame untouched) when it is no Ethernet/IPv4 ARP request.
pub fn reply_in_place(frame: &mut [u8], mac: [u8; 6]) -> bool {
    let Some((eth, body)) = frame.split_at_mut_checked(ethernet::HEADER_LEN) else {
        return false;
    };
    let Ok(mut a) = ArpPacket::new_checked(body) else {
        return false;
    };
    if a.operation() != arp::OP_REQUEST {
        return false;
    }
    let asker = a.sender_mac();
    a.make_reply(mac);
    let mut e = EthernetFrame::new_unchecked(eth);
    e.set_dst(asker);
    e.set_src(mac);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{parse, Received};
    use dataplane::wire::arp::{ArpRepr, FRAME_LEN};

    const SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    #[test]
    fn arp_requests_get_a_reply_from_the_derived_mac() {
        let mut f = [0u8; FRAME_LEN];
        ArpRepr::request(SRC, [192, 0, 2, 10], [192, 0, 2, 50]).emit_frame(&mut f);
        assert_eq!(
            parse(&f),
            Received::ArpRequest {
                target: [192, 0, 2, 50]
            }
        );
        let mac = mac_for([192, 0, 2, 50]);
        assert_eq!(mac, [2, 0, 192, 0, 2, 50]);
        assert!(reply_in_place(&mut f, mac));
        assert_eq!(&f[0..6], &SRC);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[20..22], &[0, 2]);
        assert_eq!(&f[22..28], &mac);
        assert_eq!(&f[28..32], &[192, 0, 2, 50]);
        assert_eq!(&f[32..38], &SRC);
        assert_eq!(&f[38..42], &[192, 0, 2, 10]);
        // A reply is no request: it is not answered again.
        assert_eq!(parse(&f), Received::Arp);
        assert!(!reply_in_place(&mut f, mac));
        assert!(!reply_in_place(&mut f[..FRAME_LEN - 1], mac));
    }
}
