//! `sluice check` as an operator runs it: summary and exit 0, or every error and exit 1.
mod common;

use std::process::{Command, Output};

fn check(path: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["check", "-c"])
        .arg(path)
        .output()
        .unwrap()
}

/// The minimal valid config of the control crate's config tests (one service, one backend).
const MINIMAL: &str = include_str!("../control/tests/fixtures/minimal.yaml");

/// `sluice check` of `text`, from a temporary file named after `name`, which is its path.
fn check_text(name: &str, text: &str) -> (Output, std::path::PathBuf) {
    let path = common::temp_config("cli-check", name, text);
    let out = check(&path);
    std::fs::remove_file(&path).unwrap();
    (out, path)
}

/// Exit 0 with each of `needles` in the summary.
fn assert_passes(out: &Output, needles: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in needles {
        assert!(stdout.contains(needle), "{needle} not in:\n{stdout}");
    }
}

/// Exit 1 with exactly `expected` on stderr and no summary.
fn assert_refused(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, expected);
    assert!(out.stdout.is_empty());
}

#[test]
fn the_example_config_passes_with_a_summary() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sluice.example.yaml");
    assert_passes(
        &check(&example),
        &[
            "uplink",
            "198.51.100.10:443/tcp",
            "203.0.113.12=100",
            ": OK",
        ],
    );
}

#[test]
fn a_bad_config_prints_every_error_and_exits_1() {
    // Lines 11 and 14: table_size after protocol, the weight under the backend.
    let text = MINIMAL.replace("protocol: tcp\n", "protocol: tcp\n    table_size: 65536\n")
        + "        weight: -5\n";
    let (out, path) = check_text("bad", &text);
    let p = path.display();
    assert_refused(
        &out,
        &format!(
            "{p}:11:17: services[0].table_size: expected a prime number (e.g. 251, 65537, 655373), got 65536\n\
             {p}:14:17: services[0].backends[0].weight: expected an integer from 0 to 1000000, got -5\n\
             2 errors in {p}\n"
        ),
    );
}

#[test]
fn an_unreadable_file_is_a_clear_error() {
    let out = check(std::path::Path::new("/nonexistent/sluice.yaml"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with("/nonexistent/sluice.yaml: cannot read the config: No such file"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("1 error in /nonexistent/sluice.yaml\n"),
        "{stderr}"
    );
}

#[test]
fn the_memory_block_warns_when_the_pools_outgrow_eal() {
    let text = "\
dpdk:
  args: [\"--no-huge\", \"-l\", \"0-1\"]
interfaces:
  - name: uplink
    device: net_memif0
    address: 192.0.2.10/24
services: []
";
    let (out, _) = check_text("memory", text);
    // A warning, not an error: the sizing is an estimate.
    assert_passes(
        &out,
        &[
            "memory (an estimate):",
            "mbuf pool uplink (net_memif0): 16383 x 4096 B",
            "flow tables: 1 worker(s) x 68 MiB",
            "EAL gets 64 MiB (--no-huge without -m)",
            "warning: EAL gets 64 MiB (--no-huge without -m) but the mbuf pools need 66 MiB",
            "add -m 128 to dpdk.args",
            ": OK (1 warning)",
        ],
    );
}

#[test]
fn fullnat_that_cannot_work_is_refused_with_each_place() {
    let text = "\
interfaces:
  - name: uplink
    device: net_memif0
    queues: 2
    address: 192.0.2.10/24
services:
  - name: db
    vip: 198.51.100.10
    port: 5432
    protocol: tcp
    forwarding: fullnat
    local_addresses: [192.0.2.200, 198.51.100.10]
    backends:
      - address: 192.0.2.21
        port: 6432
";
    let (out, path) = check_text("fullnat", text);
    let p = path.display();
    let expected = format!(
        "{p}:12:22: services[0].local_addresses: expected at least 17 IPv4 local addresses for flows.capacity 1048576 (a connection takes two flow entries and one of the 64512 ports 1024-65535 of a local address (32256 of them on each of 2 workers): 524288 connections need 17), or a smaller flows.capacity, got 2 IPv4 local addresses\n\
         {p}:12:36: services[0].local_addresses[1]: expected a local address that is no VIP (it is service db's, services[0]), got 198.51.100.10\n\
         2 errors in {p}\n"
    );
    assert_refused(&out, &expected);
}

#[test]
fn nat_and_fullnat_pass_with_their_ports_in_the_summary() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("control/tests/fixtures/nat-fullnat.yaml");
    assert_passes(
        &check(&fixture),
        &[
            "198.51.100.20:5432/tcp: fullnat",
            "192.0.2.21:6432=100",
            "local addresses: 192.0.2.200, 192.0.2.201",
            ": OK",
        ],
    );
    let stderr = String::from_utf8_lossy(&check(&fixture).stderr).into_owned();
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// A local address of the other family is allowed (sluice owns it) but never a source: said.
#[test]
fn a_fullnat_local_address_of_the_other_family_is_a_warning() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("control/tests/fixtures/nat-fullnat.yaml");
    let text = std::fs::read_to_string(fixture).unwrap().replace(
        "local_addresses: [192.0.2.200, 192.0.2.201]",
        "local_addresses: [192.0.2.200, 192.0.2.201, 2001:db8::200]",
    );
    let (out, _) = check_text("other-family-local", &text);
    assert_passes(&out, &[": OK (1 warning)"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: services[1].local_addresses[2]: expected local addresses of the VIP's family (IPv4), got IPv6 2001:db8::200, which service db never sends from"),
        "{stderr}"
    );
}

#[test]
fn a_table_below_100_slots_per_backend_is_a_warning_with_the_figure() {
    let text = MINIMAL.replace("protocol: tcp\n", "protocol: tcp\n    table_size: 251\n")
        + "      - address: 203.0.113.12\n      - address: 203.0.113.13\n";
    let (out, path) = check_text("small-table", &text);
    // Diagnostics go to stderr, the summary to stdout.
    assert_passes(&out, &[": OK (1 warning)"]);
    let want = format!(
        "{}:11:17: warning: services[0].table_size: expected a table_size of at least 100 x backends: 307, the smallest prime >= 300, got 251 for 3 backends: adding or removing a backend may move up to 4.4 points of the table beyond its own share (4.0 at 307)",
        path.display()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&want), "{want}\nnot in:\n{stderr}");
}

/// The example turns on the exception path and announcements; the summary says so, and names
/// the control socket `sluice reload` will use.
#[test]
fn the_summary_shows_kernel_announce_and_the_control_socket() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sluice.example.yaml");
    assert_passes(
        &check(&example),
        &[
            ", kernel interface sluice0 (10000 frames/s)\n",
            "announce: a route per VIP with a usable backend, in kernel table 100\n",
            "(lifecycle endpoints: local; control socket @sluice/127.0.0.1:9610)\n",
        ],
    );
}
