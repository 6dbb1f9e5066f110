//! `sluice plan` as a rollout gate runs it: per-service moves, `--json`, and `--max-move`'s exit code.
mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn config(name: &str, backends: &[&str]) -> TempFile {
    let mut text = String::from(
        "interfaces:\n  - name: uplink\n    device: net_null0\n    address: 192.0.2.10/24\n    gateway: 192.0.2.1\nservices:\n  - name: web\n    vip: 198.51.100.10\n    port: 443\n    protocol: tcp\n    backends:\n",
    );
    for b in backends {
        text.push_str(&format!("      - address: {b}\n"));
    }
    write(name, &text)
}

/// `text` in a temporary file of this process named after `name`, removed when the test ends
/// (a failed assertion included).
fn write(name: &str, text: &str) -> TempFile {
    TempFile(common::temp_config("cli-plan", name, text))
}

struct TempFile(PathBuf);

impl std::ops::Deref for TempFile {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempFile {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn plan(new: &PathBuf, old: &PathBuf, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["plan", "-c"])
        .arg(new)
        .arg("--from")
        .arg(old)
        .args(extra)
        .output()
        .unwrap()
}

/// `plan --json` that must succeed: its first service.
fn planned_service(new: &PathBuf, old: &PathBuf) -> serde_json::Value {
    let out = plan(new, old, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["services"][0].clone()
}

/// The entry of `service`'s backend `addr`.
fn backend<'a>(service: &'a serde_json::Value, addr: &str) -> Option<&'a serde_json::Value> {
    service["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == addr)
}

#[test]
fn removing_one_of_four_reports_a_quarter_and_gates_on_max_move() {
    let old = config(
        "old",
        &[
            "203.0.113.11",
            "203.0.113.12",
            "203.0.113.13",
            "203.0.113.14",
        ],
    );
    let new = config("new", &["203.0.113.11", "203.0.113.12", "203.0.113.13"]);

    let web = &planned_service(&new, &old);
    assert_eq!(web["name"], "web");
    let moved = web["moved_percent"].as_f64().unwrap();
    assert!((24.0..27.0).contains(&moved), "moved {moved}%");
    let gone = backend(web, "203.0.113.14").unwrap();
    assert!(gone["new_weight"].is_null());
    assert!((gone["lost_percent"].as_f64().unwrap() - 25.0).abs() < 1.0);

    let gated = plan(&new, &old, &["--max-move", "10"]);
    assert_eq!(gated.status.code(), Some(1), "25% moves, the gate is 10%");
    assert!(String::from_utf8_lossy(&gated.stderr).contains("more than --max-move 10%"));
    assert_eq!(
        plan(&new, &old, &["--max-move", "30"]).status.code(),
        Some(0)
    );
    assert_eq!(
        plan(&old, &old, &["--max-move", "0"]).status.code(),
        Some(0),
        "no change moves nothing"
    );
}

#[test]
fn an_invalid_file_is_reported_and_exits_1() {
    let old = config("ok", &["203.0.113.11"]);
    let bad = write("bad", "services: [\n");
    let out = plan(&bad, &old, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml"));
}

#[test]
fn the_plan_shows_the_forwarding_mode_local_addresses_and_backend_ports() {
    let nat = "interfaces:\n  - name: uplink\n    device: net_null0\n    address: 192.0.2.10/24\nflows:\n  capacity: 100000\nservices:\n  - name: db\n    vip: 198.51.100.10\n    port: 5432\n    protocol: tcp\n    forwarding: nat\n    backends:\n      - address: 192.0.2.21\n        port: 6432\n      - address: 192.0.2.22\n";
    let fullnat = nat.replace(
        "    forwarding: nat\n",
        "    forwarding: fullnat\n    local_addresses: [192.0.2.200]\n",
    );
    let (old, new) = (write("nat", nat), write("fullnat", &fullnat));

    let db = &planned_service(&new, &old);
    assert_eq!(db["forwarding"], "fullnat");
    assert_eq!(db["forwarding_before"], "nat");
    assert_eq!(db["local_addresses"], serde_json::json!(["192.0.2.200"]));
    let port = |addr: &str| backend(db, addr).map(|b| b["port"].clone());
    assert_eq!(port("192.0.2.21"), Some(serde_json::json!(6432)));
    assert_eq!(
        port("192.0.2.22"),
        Some(serde_json::json!(5432)),
        "the service's port"
    );

    let text = String::from_utf8_lossy(&plan(&new, &old, &[]).stdout).into_owned();
    for needle in [
        "forwarding nat -> fullnat",
        "local addresses 192.0.2.200",
        "port 6432",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
}

/// `sluice plan ... | head`: a reader that went away ends the report quietly (SIGPIPE, as Unix
/// tools do), not with a panic and an abort. The shell closes our end of the pipe before the
/// report is written: plan starts only after the sleep.
#[test]
fn a_closed_stdout_ends_the_report_with_sigpipe_not_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let old = config("pipe-old", &["203.0.113.11", "203.0.113.12"]);
    let new = config(
        "pipe-new",
        &["203.0.113.11", "203.0.113.12", "203.0.113.13"],
    );
    let mut child = Command::new("sh")
        .args([
            "-c",
            "sleep 0.3; exec \"$0\" plan -c \"$1\" --from \"$2\" --json",
        ])
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .arg(&new)
        .arg(&old)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
