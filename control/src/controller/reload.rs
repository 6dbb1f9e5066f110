//! What a reload may change: services only. Anything that needs a restart refuses the whole file.
//!
//! Refusing the whole file (rather than applying the rest) keeps one rule for operators: after
//! a reload, the running state is exactly one file — the new one, or the old one.

use crate::config::Config;

/// `Err` names every section that changed but only takes effect after a restart. `tracking`:
/// whether the workers started with connection tracking (`PipelineConfig.nat`).
pub fn restart_only_changes(old: &Config, new: &Config, tracking: bool) -> Result<(), String> {
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
    if new.uses_nat() && !tracking {
        problems.push(
            "forwarding nat or fullnat (connection tracking is allocated when sluice starts, and it started without any nat or fullnat service)",
        );
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

    /// The config tests' minimal valid config (one interface with a gateway, one service).
    const BASE: &str = include_str!("../../tests/fixtures/minimal.yaml");

    fn load(text: &str) -> Config {
        crate::config::load_str(text, "test.yaml").unwrap()
    }

    #[test]
    fn service_changes_reload_and_restart_settings_refuse() {
        let old = load(BASE);
        let more = load(&format!("{BASE}      - address: 192.0.2.12\n"));
        assert!(restart_only_changes(&old, &more, false).is_ok());
        let queues = load(&BASE.replace(
            "address: 192.0.2.10/24",
            "address: 192.0.2.10/24\n    queues: 2",
        ));
        let err = restart_only_changes(&old, &queues, false).unwrap_err();
        assert!(err.contains("interfaces"), "{err}");
        let flows = load(&format!("{BASE}flows:\n  capacity: 1024\n"));
        let err = restart_only_changes(&old, &flows, false).unwrap_err();
        assert!(
            err.contains("flows") && !err.contains("interfaces"),
            "{err}"
        );
    }

    #[test]
    fn nat_can_be_kept_or_dropped_by_a_reload_but_not_introduced() {
        let dsr = load(BASE);
        let nat = load(&nat_text());
        let err = restart_only_changes(&dsr, &nat, false).unwrap_err();
        assert!(
            err.contains("nat or fullnat") && err.contains("restart"),
            "{err}"
        );
        let more = load(&format!("{}      - address: 192.0.2.12\n", nat_text()));
        assert!(restart_only_changes(&nat, &more, true).is_ok());
        assert!(
            restart_only_changes(&nat, &dsr, true).is_ok(),
            "unused tracking is harmless"
        );
        assert!(
            restart_only_changes(&dsr, &nat, true).is_ok(),
            "started with nat, dropped it, and back"
        );
    }

    fn nat_text() -> String {
        BASE.replace("protocol: tcp", "protocol: tcp\n    forwarding: nat")
    }
}
