//! `sluice doctor`: check the host (and, with a config, its devices and lcores) for what DPDK
//! needs; one ok/warn/fail line per check with the fix, exit 1 if any check fails.
use std::path::Path;
use std::process::ExitCode;

use control::config::load_file;

use crate::doctor::{self, Finding, Host};

pub fn main(config: Option<&Path>, root: &Path, json: bool) -> ExitCode {
    let host = Host::new(root);
    let mut config_failed = None;
    let loaded = match config.map(|p| (p, load_file(p))) {
        None => None,
        Some((_, Ok(c))) => Some(c),
        Some((path, Err(errors))) => {
            for e in errors.iter() {
                eprintln!("{e}");
            }
            let s = if errors.len() == 1 { "" } else { "s" };
            config_failed = Some(Finding::fail(
                "config",
                format!(
                    "{}: {} error{s}; only the host-wide checks ran",
                    path.display(),
                    errors.len()
                ),
                format!("sluice check -c {}", path.display()),
            ));
            None
        }
    };
    let mut report = doctor::run(&host, loaded.as_ref());
    if let Some(f) = config_failed {
        report.findings.insert(0, f);
    }
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("sluice: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.render());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
