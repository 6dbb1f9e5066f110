//! The decoder's fuzz body: arbitrary frames into [`crate::decode::parse`], which reads whatever
//! the forwarder under test sends back (sluice, testpmd, a broken build), so no frame may panic it.
//! Shared by the cargo-fuzz target `decode` (`traffic/fuzz`) and the seed replay test.
use crate::decode::{parse, Received};
use crate::stamp::{STAMP_FLOWS, TSC_MASK};

/// Bytes a port may add after the IP packet (Ethernet padding to 60 bytes, a trailer).
const PAD: [u8; 61] = [0xa5; 61];

/// Decodes `data`; panics (a fuzz finding) when the answer depends on bytes past the IP packet,
/// or a stamp reads back more bits than it carries.
pub fn fuzz_decode(data: &[u8]) -> Received {
    let got = parse(data);
    if let Received::Ours(r) = got {
        assert!(r.flow < STAMP_FLOWS && r.tsc <= TSC_MASK, "{r:?}");
    }
    // What the IP header's length covers decides; padding after it never changes a decoded frame.
    if got != Received::Other {
        for pad in [&PAD[..1], &PAD[..]] {
            let padded = [data, pad].concat();
            assert_eq!(parse(&padded), got, "{} bytes of padding", pad.len());
        }
    }
    got
}
