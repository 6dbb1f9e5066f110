//! Golden tables: fixed inputs whose fingerprints are checked in, so any change to the hashes,
//! the weight scheme or the build order fails loudly; and the same tables from a second process.
use std::process::Command;

use maglev::{Backend, Table};

/// The fixed inputs: (description, size, backends).
fn cases() -> Vec<(&'static str, u32, Vec<Backend>)> {
    let numbered = |n: usize| -> Vec<Backend> {
        (0..n)
            .map(|i| Backend::new(format!("2001:db8:2::{i:x}"), 1))
            .collect()
    };
    vec![
        (
            "three backends, M=13",
            13,
            vec![
                Backend::new("203.0.113.11", 1),
                Backend::new("203.0.113.12", 1),
                Backend::new("203.0.113.13", 1),
            ],
        ),
        ("100 backends, M=65537", 65537, numbered(100)),
        ("1000 backends, M=655373", 655_373, numbered(1000)),
        (
            "weighted with a draining backend, M=4099",
            4099,
            vec![
                Backend::new("2001:db8::1", 100),
                Backend::new("2001:db8::2", 50),
                Backend::new("2001:db8::3", 0),
                Backend::new("2001:db8::4", 25),
                Backend::new("web-7", 1),
            ],
        ),
    ]
}

/// Golden fingerprints, one per case, in order.
const GOLDEN: [&str; 4] = [
    "3e657d35cea76e9a",
    "37c1973b959ff78e",
    "13f79f2c6b423950",
    "8265421012592c07",
];

#[test]
fn golden_fingerprints_never_change() {
    for ((what, size, backends), golden) in cases().into_iter().zip(GOLDEN) {
        let fp = Table::build(size, &backends)
            .unwrap()
            .fingerprint()
            .to_string();
        assert_eq!(
            fp, golden,
            "{what}: the table changed; every deployed instance would re-route"
        );
    }
}

#[test]
fn golden_small_table_slot_by_slot() {
    let (_, size, backends) = cases().swap_remove(0);
    let t = Table::build(size, &backends).unwrap();
    assert_eq!(t.entries(), &GOLDEN_SMALL);
    assert_eq!(t.entries_per_backend(), vec![5, 4, 4]);
}

const GOLDEN_SMALL: [u32; 13] = [1, 0, 0, 0, 1, 1, 2, 0, 2, 2, 0, 1, 2];

/// Run by `same_tables_in_a_second_process` in a child process: prints each case's fingerprint,
/// built from the input in reverse order.
#[test]
fn child_prints_fingerprints() {
    if std::env::var_os("MAGLEV_GOLDEN_CHILD").is_none() {
        return;
    }
    for (_, size, mut backends) in cases() {
        backends.reverse();
        println!(
            "fingerprint={}",
            Table::build(size, &backends).unwrap().fingerprint()
        );
    }
}

#[test]
fn same_tables_in_a_second_process() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_prints_fingerprints",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MAGLEV_GOLDEN_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest may print its own progress on the same line; take the 16 hex digits after the marker.
    let theirs: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once("fingerprint="))
        .map(|(_, fp)| &fp[..16])
        .collect();
    let ours: Vec<String> = cases()
        .into_iter()
        .map(|(_, size, b)| Table::build(size, &b).unwrap().fingerprint().to_string())
        .collect();
    assert_eq!(theirs, ours);
}
