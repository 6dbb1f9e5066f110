//! `sluice plan -c new.yaml --from old.yaml`: what a config change would move, per service.
//!
//! Each service's Maglev table is built from both files (over backends with weight > 0, as the
//! appliance builds them when every backend is healthy) and compared with `maglev::diff`. A
//! changed VIP, port, protocol or flow hash (`hash:`) counts as every flow moving. A changed
//! mode, fullnat local address or backend port moves no flow (a connection keeps its
//! translation) but is its own status, `translation changed`.
//! Each service also shows its forwarding mode (and a change of it), its fullnat local
//! addresses and the port each backend listens on. Nothing is applied. With `--max-move P` the exit code gates a rollout: 1 when any service
//! would move more than P percent of its flows.
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use control::config::{self, Config, Forwarding, Service};
use control::forwarding::maglev_name;
use maglev::{diff, Backend, Diff, Table};
use serde_json::json;

/// One service's plan.
struct ServicePlan {
    name: String,
    status: &'static str,
    /// Share of flows (0..=1) whose backend changes.
    moved: f64,
    diff: Option<Diff>,
    fingerprints: (Option<String>, Option<String>),
    /// The mode before (None: a new service) and after (for a removed one: its last).
    forwarding: (Option<Forwarding>, Forwarding),
    local_addresses: Vec<IpAddr>,
    /// Each backend's Maglev name and the port it listens on (0: the client's).
    ports: Vec<(String, u16)>,
    /// The same two in the old file (empty for a new service).
    before: (Vec<IpAddr>, Vec<(String, u16)>),
}

/// What a service sends where: its mode, local addresses and backend ports.
fn targets(s: &Service) -> (Vec<IpAddr>, Vec<(String, u16)>) {
    let ports = s
        .backends
        .iter()
        .map(|b| (maglev_name(b.address), s.backend_port(b)))
        .collect();
    (s.local_addresses.clone(), ports)
}

fn table_of(s: &Service) -> Result<Option<Table>, String> {
    let backends: Vec<Backend> = s
        .backends
        .iter()
        .filter(|b| b.weight > 0)
        .map(|b| Backend::new(maglev_name(b.address), b.weight))
        .collect();
    if backends.is_empty() {
        return Ok(None);
    }
    Table::build(s.table_size, &backends)
        .map(Some)
        .map_err(|e| format!("service {}: {e}", s.name))
}

/// A backend at weight 0 (drained) is in no table, so the table diff reads it as removed or
/// added: give it its weight 0 back, as the file says.
fn drained_as_weight_zero(d: &mut maglev::Diff, old: &Service, new: &Service) {
    let zero = |s: &Service, name: &str| {
        s.backends
            .iter()
            .any(|b| b.weight == 0 && maglev_name(b.address) == name)
    };
    for b in &mut d.backends {
        if b.new_weight.is_none() && zero(new, &b.name) {
            b.new_weight = Some(0);
        }
        if b.old_weight.is_none() && zero(old, &b.name) {
            b.old_weight = Some(0);
        }
    }
}

fn plan(old: &Config, new: &Config) -> Result<Vec<ServicePlan>, String> {
    let mut out = Vec::new();
    for s in &new.services {
        let before = old.services.iter().find(|o| o.name == s.name);
        let new_table = table_of(s)?;
        let old_table = before.map(table_of).transpose()?.flatten();
        let fingerprints = (
            old_table.as_ref().map(|t| t.fingerprint().to_string()),
            new_table.as_ref().map(|t| t.fingerprint().to_string()),
        );
        let endpoint_changed =
            before.is_some_and(|o| (o.vip, o.port, o.protocol) != (s.vip, s.port, s.protocol));
        // Same table, other slots: every new flow is hashed afresh (counted as all moving).
        let hash_changed = before.is_some_and(|o| o.hash != s.hash);
        let (local_addresses, ports) = targets(s);
        let old_targets = before.map(targets).unwrap_or_default();
        // Where packets are translated to, for backends in both files: a connection keeps
        // its translation, so nothing moves, but new ones go elsewhere.
        let translation_changed = before.is_some_and(|o| {
            o.forwarding != s.forwarding
                || old_targets.0 != local_addresses
                || ports
                    .iter()
                    .any(|(name, port)| old_targets.1.iter().any(|(n, p)| n == name && p != port))
        });
        let (status, moved, d) = match (before, &old_table, &new_table) {
            (None, _, _) => ("added", 1.0, None),
            (Some(_), _, _) if endpoint_changed => ("endpoint changed", 1.0, None),
            (Some(_), _, _) if hash_changed => ("flow hash changed", 1.0, None),
            (Some(b), Some(o), Some(n)) => {
                let mut d = diff(o, n);
                drained_as_weight_zero(&mut d, b, s);
                let moved = d.moved_share();
                let status = match (moved == 0.0, translation_changed) {
                    (false, _) => "changed",
                    (true, true) => "translation changed",
                    (true, false) => "unchanged",
                };
                (status, moved, Some(d))
            }
            (Some(_), None, None) => ("no usable backend before or after", 0.0, None),
            (Some(_), None, Some(_)) => ("backends return", 1.0, None),
            (Some(_), Some(_), None) => ("every backend drained", 1.0, None),
        };
        out.push(ServicePlan {
            name: s.name.clone(),
            status,
            moved,
            diff: d,
            fingerprints,
            forwarding: (before.map(|o| o.forwarding), s.forwarding),
            local_addresses,
            ports,
            before: old_targets,
        });
    }
    for o in &old.services {
        if !new.services.iter().any(|s| s.name == o.name) {
            let (local_addresses, ports) = targets(o);
            out.push(ServicePlan {
                forwarding: (Some(o.forwarding), o.forwarding),
                before: (local_addresses.clone(), ports.clone()),
                local_addresses,
                ports,
                name: o.name.clone(),
                status: "removed",
                moved: 1.0,
                diff: None,
                fingerprints: (table_of(o)?.map(|t| t.fingerprint().to_string()), None),
            });
        }
    }
    Ok(out)
}

fn print_text(plans: &[ServicePlan]) {
    for p in plans {
        println!(
            "service {}: {} — {:.3}% of flows move",
            p.name,
            p.status,
            p.moved * 100.0
        );
        match p.forwarding {
            (Some(old), new) if old != new => println!("  forwarding {old} -> {new}"),
            (_, mode) => println!("  forwarding {mode}"),
        }
        let text = |a: &[IpAddr]| {
            a.iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (&p.before.0, &p.local_addresses) {
            (old, new) if old != new && !old.is_empty() => {
                println!("  local addresses {} -> {}", text(old), text(new));
            }
            (_, new) if !new.is_empty() => println!("  local addresses {}", text(new)),
            _ => {}
        }
        if let (Some(a), Some(b)) = &p.fingerprints {
            if a != b {
                println!("  table fingerprint {a} -> {b}");
            }
        }
        let Some(d) = &p.diff else { continue };
        for b in &d.backends {
            let weight = match (b.old_weight, b.new_weight) {
                (Some(o), Some(n)) if o == n => format!("weight {n}"),
                (Some(o), Some(n)) => format!("weight {o} -> {n}"),
                (None, Some(n)) => format!("new, weight {n}"),
                (Some(o), None) => format!("removed (was weight {o})"),
                (None, None) => String::new(),
            };
            let port = match (port_in(&p.before.1, &b.name), port_of(p, &b.name)) {
                (Some(o), Some(n)) if o != n => format!("{o} -> {n}"),
                (_, Some(n)) => n.to_string(),
                (_, None) => "-".to_owned(),
            };
            println!(
                "  {:<40} {:<24} port {:<5} entries {:>7} -> {:<7} gains {:>7.3}%  loses {:>7.3}%",
                b.name,
                weight,
                port,
                b.old_entries,
                b.new_entries,
                b.gained_share() * 100.0,
                b.lost_share() * 100.0
            );
        }
    }
}

/// The port a backend of the plan listens on (None: removed by the new file).
fn port_of(p: &ServicePlan, name: &str) -> Option<u16> {
    port_in(&p.ports, name)
}

fn port_in(ports: &[(String, u16)], name: &str) -> Option<u16> {
    ports.iter().find(|(n, _)| n == name).map(|&(_, port)| port)
}

fn to_json(plans: &[ServicePlan]) -> serde_json::Value {
    json!({
        "services": plans.iter().map(|p| json!({
            "name": p.name,
            "status": p.status,
            "moved_percent": p.moved * 100.0,
            "fingerprint_before": p.fingerprints.0,
            "fingerprint_after": p.fingerprints.1,
            "forwarding": p.forwarding.1.as_str(),
            "forwarding_before": p.forwarding.0.map(Forwarding::as_str),
            "local_addresses": p.local_addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>(),
            "local_addresses_before": p.before.0.iter().map(IpAddr::to_string).collect::<Vec<_>>(),
            "backends": p.diff.as_ref().map(|d| d.backends.iter().map(|b| json!({
                "name": b.name,
                "old_weight": b.old_weight,
                "new_weight": b.new_weight,
                "port": port_of(p, &b.name),
                "port_before": port_in(&p.before.1, &b.name),
                "old_entries": b.old_entries,
                "new_entries": b.new_entries,
                "gained_percent": b.gained_share() * 100.0,
                "lost_percent": b.lost_share() * 100.0,
            })).collect::<Vec<_>>()).unwrap_or_default(),
        })).collect::<Vec<_>>(),
    })
}

pub fn main(config: &Path, from: &Path, json: bool, max_move: Option<f64>) -> ExitCode {
    if let Some(m) = max_move {
        if !(0.0..=100.0).contains(&m) {
            eprintln!("sluice plan: --max-move expects a percentage from 0 to 100, got {m}");
            return ExitCode::from(1);
        }
    }
    let (old, new) = match (config::load_file(from), config::load_file(config)) {
        (Ok(o), Ok(n)) => (o, n),
        (o, n) => {
            for e in [o.err(), n.err()].into_iter().flatten() {
                eprintln!("{e}");
            }
            return ExitCode::from(1);
        }
    };
    let plans = match plan(&old, &new) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sluice plan: {e}");
            return ExitCode::from(1);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&plans)).unwrap_or_default()
        );
    } else {
        print_text(&plans);
    }
    if let Some(limit) = max_move {
        let over: Vec<&ServicePlan> = plans.iter().filter(|p| p.moved * 100.0 > limit).collect();
        if !over.is_empty() {
            for p in over {
                eprintln!(
                    "sluice plan: service {} would move {:.3}% of its flows, more than --max-move {limit}%",
                    p.name,
                    p.moved * 100.0
                );
            }
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(backends: &[(&str, u32)]) -> Config {
        let mut y = String::from(
            "interfaces:\n  - name: u\n    device: net_null0\n    address: 192.0.2.10/24\n    gateway: 192.0.2.1\nservices:\n  - name: web\n    vip: 198.51.100.10\n    port: 80\n    protocol: tcp\n    table_size: 65537\n    backends:\n",
        );
        for (a, w) in backends {
            y.push_str(&format!("      - address: {a}\n        weight: {w}\n"));
        }
        config::load_str(&y, "t.yaml").unwrap()
    }

    #[test]
    fn removing_one_of_four_moves_its_quarter_and_little_else() {
        let old = cfg(&[
            ("203.0.113.1", 1),
            ("203.0.113.2", 1),
            ("203.0.113.3", 1),
            ("203.0.113.4", 1),
        ]);
        let new = cfg(&[("203.0.113.1", 1), ("203.0.113.2", 1), ("203.0.113.3", 1)]);
        let p = plan(&old, &new).unwrap();
        assert_eq!(p.len(), 1);
        assert!((0.24..0.27).contains(&p[0].moved), "moved {}", p[0].moved);
        let d = p[0].diff.as_ref().unwrap();
        let gone = d.backends.iter().find(|b| b.name == "203.0.113.4").unwrap();
        assert_eq!(gone.new_weight, None);
        // Every flow of the removed backend moves; Maglev moves few others (the paper's bound).
        assert!(
            (gone.lost_share() - 0.25).abs() < 0.01,
            "lost {}",
            gone.lost_share()
        );
        assert!(
            p[0].moved <= gone.lost_share() + 0.015,
            "moved {}",
            p[0].moved
        );
    }

    /// A drain (weight 0) is not a removal: the backend is still in the file, at weight 0, and
    /// its undrain goes from 0, not from nowhere.
    #[test]
    fn a_drained_backend_reads_weight_zero_not_removed() {
        let old = cfg(&[("203.0.113.1", 1), ("203.0.113.2", 1), ("203.0.113.3", 1)]);
        let new = cfg(&[("203.0.113.1", 1), ("203.0.113.2", 1), ("203.0.113.3", 0)]);
        let weights = |p: &[ServicePlan]| -> Option<(Option<u32>, Option<u32>)> {
            let b = p[0]
                .diff
                .as_ref()?
                .backends
                .iter()
                .find(|b| b.name == "203.0.113.3")?;
            Some((b.old_weight, b.new_weight))
        };
        let drain = plan(&old, &new).unwrap();
        assert_eq!(weights(&drain), Some((Some(1), Some(0))));
        assert_eq!(
            to_json(&drain)["services"][0]["backends"][2]["new_weight"],
            0
        );
        let undrain = plan(&new, &old).unwrap();
        assert_eq!(weights(&undrain), Some((Some(0), Some(1))));
    }

    #[test]
    fn identical_configs_move_nothing_and_a_new_service_moves_all() {
        let a = cfg(&[("203.0.113.1", 1), ("203.0.113.2", 1)]);
        let p = plan(&a, &a).unwrap();
        assert_eq!(p[0].status, "unchanged");
        assert_eq!(p[0].moved, 0.0);
        let mut b = a.clone();
        b.services[0].name = "web2".into();
        let p = plan(&a, &b).unwrap();
        assert_eq!(
            p.iter().map(|p| p.status).collect::<Vec<_>>(),
            vec!["added", "removed"]
        );
    }

    /// A mode, local-address or backend-port change moves no flow (connections keep their
    /// translation) but is not "unchanged" either; the old port is kept to show.
    #[test]
    fn a_translation_change_moves_nothing_and_says_so() {
        let a = cfg(&[("203.0.113.1", 1), ("203.0.113.2", 1)]);
        let mut nat = a.clone();
        nat.services[0].forwarding = Forwarding::Nat;
        let mut ported = nat.clone();
        ported.services[0].backends[1].port = Some(8080);
        for (old, new) in [(&a, &nat), (&nat, &ported)] {
            let p = plan(old, new).unwrap();
            assert_eq!((p[0].status, p[0].moved), ("translation changed", 0.0));
        }
        let p = plan(&nat, &ported).unwrap();
        assert_eq!(port_in(&p[0].before.1, "203.0.113.2"), Some(80));
        assert_eq!(port_of(&p[0], "203.0.113.2"), Some(8080));
        assert_eq!(plan(&nat, &nat).unwrap()[0].status, "unchanged");
    }

    #[test]
    fn a_flow_hash_change_moves_every_flow() {
        let a = cfg(&[("203.0.113.1", 1), ("203.0.113.2", 1)]);
        let mut b = a.clone();
        b.services[0].hash = config::HashKind::SourceIp;
        let p = plan(&a, &b).unwrap();
        assert_eq!((p[0].status, p[0].moved), ("flow hash changed", 1.0));
        // The table itself is the same.
        assert_eq!(p[0].fingerprints.0, p[0].fingerprints.1);
    }
}
