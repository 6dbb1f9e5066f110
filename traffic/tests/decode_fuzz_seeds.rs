//! Replays the decode fuzz target's seed corpus through the fuzz body on stable (`cargo test`).
use std::cell::RefCell;

use traffic::fuzzing::fuzz_decode;
use traffic::Received;

#[test]
fn the_seed_corpus_replays_and_every_seed_decodes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    // Seeds per outcome: ours, ARP request, other ARP, other.
    let counts = RefCell::new([0usize; 4]);
    let seeds = maglev::fuzzing::replay_seeds(&dir, |data| {
        let i = match fuzz_decode(data) {
            Received::Ours(_) => 0,
            Received::ArpRequest { .. } => 1,
            Received::Arp => 2,
            Received::Other => 3,
        };
        counts.borrow_mut()[i] += 1;
    });
    // One forwarded frame per mode and family, an ARP request and a reply: a start past every check.
    assert!(seeds >= 11, "seed corpus missing from {}", dir.display());
    assert_eq!(counts.into_inner(), [seeds - 2, 1, 1, 0]);
}

#[test]
fn hostile_frames_are_other() {
    let mut ipv4_lying_length = vec![0u8; 14 + 20];
    ipv4_lying_length[12..14].copy_from_slice(&[0x08, 0x00]);
    ipv4_lying_length[14] = 0x45;
    ipv4_lying_length[16..18].copy_from_slice(&[0xff, 0xff]);
    for frame in [&b""[..], &[0u8; 13], &[0xff; 64], &ipv4_lying_length] {
        assert_eq!(fuzz_decode(frame), Received::Other, "{frame:02x?}");
    }
}
