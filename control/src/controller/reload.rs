//! What a reload may change: services only. Anything that needs a restart refuses the whole file.
//!
//! Refusing the whole file (rather than applying the rest) keeps one rule for operators: after
//! a reload, the running state is exactly one file — the new one, or the old one.

use crate::config::Config;

/// `Err` names every section that changed but only takes effect after a restart.
pub fn restart_only_changes(old: &Config, new: &Config) -> Result<(), String> {
    let mut problems = Vec::new();
    if old.dpdk != new.dpdk {
        problems.push("dpdk (EAL arguments, mbufs)");
    }
    if old.interfaces != new.interfaces {
        problems.push("interfaces (ports, queues, addresses, MTU, gateways)");
    }
    if old.flows != new.flows {
        problems.push("flows (flow-table capacity and timeouts)");
    }
    if old.announce != new.announce {
        problems.push("announce (the routing table)");
    }
    if old.metrics != new.metrics {
        problems.push("metrics (listen, lifecycle)");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "these settings need a restart: {}; the file was not applied (restart sluice, or revert them and reload)",
            problems.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "
interfaces:
  - name: uplink
    device: net_null0
    address: 192.0.2.10/24
services:
  - name: web
    vip: 198.51.100.10
    port: 80
    protocol: tcp
    backends:
      - address: 192.0.2.11
";

    fn load(text: &str) -> Config {
        crate::config::load_str(text, "test.yaml").unwrap()
    }

    #[test]
    fn service_changes_reload_and_restart_settings_refuse() {
        let old = load(BASE);
        let more = load(&format!("{BASE}      - address: 192.0.2.12\n"));
        assert!(restart_only_changes(&old, &more).is_ok());
        let queues = load(&BASE.replace(
            "address: 192.0.2.10/24",
            "address: 192.0.2.10/24\n    queues: 2",
        ));
        let err = restart_only_changes(&old, &queues).unwrap_err();
        assert!(err.contains("interfaces"), "{err}");
        let flows = load(&format!("{BASE}flows:\n  capacity: 1024\n"));
        let err = restart_only_changes(&old, &flows).unwrap_err();
        assert!(
            err.contains("flows") && !err.contains("interfaces"),
            "{err}"
        );
    }
}
