//! Replays the controller_events fuzz target's seed corpus through the fuzz body on stable.
mod common;
use std::cell::RefCell;

use control::controller::fuzzing::{fuzz_controller_events, Reached};

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
