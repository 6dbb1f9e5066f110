//! Replays the controller_events fuzz target's seed corpus through the fuzz body on stable.
mod common;
use std::cell::RefCell;

use std::net::{IpAddr, Ipv6Addr};

use control::controller::fuzzing::{fuzz_controller_events, repair_icmpv6, Reached, REPAIR_ICMPV6};
use control::neighbour::learned_from;
use dataplane::wire::icmp::{v6, NdRepr, ND_FRAME_LEN};

#[test]
fn the_seed_corpus_replays_and_reaches_every_outcome() {
    let total = RefCell::new(Reached::default());
    common::replay_seeds("controller_events", |data| {
        let r = fuzz_controller_events(data);
        let mut t = total.borrow_mut();
        t.events += r.events;
        t.reloads_applied += r.reloads_applied;
        t.reloads_refused += r.reloads_refused;
        t.publishes += r.publishes;
        t.announces += r.announces;
        t.sends += r.sends;
    });
    let t = total.into_inner();
    // The seeds are only a good start for the fuzzer if they get past validation.
    assert!(t.reloads_applied >= 3, "{t:?}");
    assert!(t.reloads_refused >= 5, "{t:?}");
    assert!(t.publishes > t.reloads_applied, "{t:?}");
    assert!(t.announces >= 2 && t.sends >= 1, "{t:?}");
}

#[test]
fn hostile_programs_are_handled() {
    for program in [
        &b""[..],
        &[0xff; 64],
        &[0, 0xff],
        &[1],
        &[4, 1, 0, 4, 0, 0xff],
        &[7, 0xff, 7, 0xff, 5, 0xff],
        &[1, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 2, 0, 2, 1, 3, 0],
    ] {
        fuzz_controller_events(program);
    }
}

/// What control learns from a frame: a neighbour and its MAC.
type Learned = Option<(IpAddr, [u8; 6])>;

/// The MAC of the port the fuzz body's controller runs (its `PORT_MAC`).
const PORT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
/// Where a neighbour advertisement's options start in an untagged frame.
const OPTIONS: usize = 14 + 40 + v6::ND_LEN;

/// An advertisement from `target` (a next hop of the fuzz body's base config) at `mac`, to the
/// appliance, with its target link-layer option; `options` replaces that option (the IPv6
/// payload length follows; the checksum is the fuzz body's to repair).
fn advert(target: &str, mac: u8, options: Option<&[u8]>) -> Vec<u8> {
    let target: Ipv6Addr = target.parse().unwrap();
    let ours = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
    let flags = v6::ND_FLAG_SOLICITED | v6::ND_FLAG_OVERRIDE;
    let mut f = [0u8; ND_FRAME_LEN];
    NdRepr::advert(
        [2, 0, 0, 0, 0x5c, mac],
        target.octets(),
        ours.octets(),
        flags,
    )
    .emit_frame(&mut f, PORT_MAC);
    let mut v = f.to_vec();
    if let Some(options) = options {
        v.truncate(OPTIONS);
        v.extend_from_slice(options);
        let payload = (v.len() - 14 - 40) as u16;
        v[18..20].copy_from_slice(&payload.to_be_bytes());
    }
    v
}

/// The program of one seed: each frame as an arbitrary one whose ICMPv6 checksum the fuzz
/// body repairs (opcode 4, kind REPAIR_ICMPV6), a tick between them.
fn program(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Vec::new();
    for f in frames {
        p.extend_from_slice(&[4, REPAIR_ICMPV6, 0, f.len() as u8]);
        p.extend_from_slice(f);
        p.extend_from_slice(&[5, 1]);
    }
    p
}

/// Writes the seeds of advertisements whose options are past the checksum (where mutated bytes
/// reach only through the fuzz body's repair) when SLUICE_WRITE_SEEDS is set; otherwise checks
/// each seed file matches. Each frame is also read as control reads it.
#[test]
fn advert_seeds_match_and_teach_what_they_say() {
    let peer = |last: u8| [2, 0, 0, 0, 0x5c, last];
    let ip = |s: &str| Some((IpAddr::V6(s.parse().unwrap()), peer(7)));
    let source_then_target = [
        &[v6::OPT_SOURCE_LL, 1][..],
        &peer(9),
        &[v6::OPT_TARGET_LL, 1],
        &peer(7),
    ]
    .concat();
    let cases: [(&str, Vec<u8>, Learned); 4] = [
        (
            "seed-advert-target-option",
            advert("2001:db8::11", 7, None),
            ip("2001:db8::11"),
        ),
        // No option: the advertisement came from the target itself, at the Ethernet source.
        (
            "seed-advert-no-option",
            advert("2001:db8::12", 7, Some(&[])),
            ip("2001:db8::12"),
        ),
        (
            "seed-advert-source-option-first",
            advert("2001:db8::1", 7, Some(&source_then_target)),
            ip("2001:db8::1"),
        ),
        // RFC 4861 4.6: a zero-length option is malformed, the whole message ignored.
        (
            "seed-advert-zero-length-option",
            advert(
                "2001:db8::11",
                7,
                Some(&[v6::OPT_TARGET_LL, 0, 1, 2, 3, 4, 5, 6]),
            ),
            None,
        ),
    ];
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/controller_events");
    let write = std::env::var_os("SLUICE_WRITE_SEEDS").is_some();
    for (name, frame, learned) in &cases {
        let mut repaired = frame.clone();
        repair_icmpv6(&mut repaired);
        assert_eq!(learned_from(&repaired), *learned, "{name}");
        if repaired != *frame {
            assert_eq!(
                learned_from(frame),
                None,
                "{name}: its checksum is checked first"
            );
        }
        let seed = program(std::slice::from_ref(frame));
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &seed).unwrap();
        } else {
            assert_eq!(
                std::fs::read(&path).unwrap_or_default(),
                seed,
                "{} (rerun with SLUICE_WRITE_SEEDS=1)",
                path.display()
            );
        }
        let reached = fuzz_controller_events(&seed);
        // A MAC learned for a next hop of the running config publishes the state it changes.
        assert_eq!(
            reached.publishes > 0,
            learned.is_some(),
            "{name}: {reached:?}"
        );
    }
}
