//! Replays the cli_inputs fuzz target's seed corpus and hostile inputs through the fuzz body on stable.
use std::cell::RefCell;
use std::collections::BTreeMap;

use sluice::fuzzing::cli_inputs::{fuzz_cli_inputs, Input, DOCTOR_FILES};

fn input(which: Input, text: &str) -> Vec<u8> {
    [&[which.byte()][..], text.as_bytes()].concat()
}

#[test]
fn the_seed_corpus_replays_and_reaches_every_reader() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/cli_inputs");
    let reached = RefCell::new(BTreeMap::<String, usize>::new());
    let seeds = maglev::fuzzing::replay_seeds(&dir, |data| {
        if let Some(which) = fuzz_cli_inputs(data) {
            *reached
                .borrow_mut()
                .entry(format!("{which:?}"))
                .or_default() += 1;
        }
    });
    // Real texts of /proc and /sys (the doctor tests' trees), the config corpus, documented
    // arguments: a start for each reader.
    assert!(seeds >= 40, "only {seeds} seeds in {}", dir.display());
    let reached = reached.into_inner();
    for which in Input::ALL {
        assert!(
            reached.contains_key(&format!("{which:?}")),
            "no seed for {which:?}: {reached:?}"
        );
    }
}

#[test]
fn hostile_inputs_are_handled() {
    let huge = "9".repeat(30);
    let ranges = vec!["0-8191"; 50].join(",");
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let doctor = vec!["\u{0}"; DOCTOR_FILES.len() + 3].concat();
    for (which, text) in [
        (Input::Cmdline, "\"unclosed isolcpus=1-3 -- iommu=pt"),
        (Input::Cmdline, "isolcpus=domain,managed_irq,0-99999,8191"),
        (
            Input::Meminfo,
            "MemAvailable: 18446744073709551615 kB\n:\n::\n",
        ),
        (Input::CpuList, &ranges),
        (Input::CpuList, "8191-0"),
        (Input::CpuMask, &vec!["ffffffff"; 257].join(",")),
        (Input::CpuMask, ",,"),
        (Input::Limits, "Max locked memory"),
        (Input::Status, "CapEff:\t+ffffffffffffffff"),
        (Input::Thp, "[] [[x]]"),
        (Input::HugepageDir, "hugepages-kB"),
        (Input::EalArgs, "-m"),
        (Input::Backends, "=\n=\n\u{0}=0"),
        (Input::Interval, "1e308"),
        (Input::Interval, "-0ms"),
        (Input::Url, "http:///"),
        (
            Input::Routes,
            "::/128\n/\n0.0.0.0/32/32\n::ffff:198.51.100.1/128 x\n\u{0}",
        ),
        (Input::Url, "https://"),
        (Input::Listen, &nested),
        (Input::Config, &nested),
        (Input::Doctor, &doctor),
        (Input::Doctor, "\u{0}..\n1\n1\u{0}/\n1\n1\u{0}.\n"),
    ] {
        fuzz_cli_inputs(&input(which, text));
        fuzz_cli_inputs(&input(which, &huge));
        fuzz_cli_inputs(&input(which, ""));
    }
    assert_eq!(fuzz_cli_inputs(b""), None);
}
