//! The address-translating modes (nat, fullnat): their keys and what `sluice check` refuses for them.
//!
//! Rules within a service run while it is decoded; rules across the config (VIPs, interface
//! addresses, queues, ports for `flows.capacity`) run with the other cross-section rules.
use std::net::IpAddr;

use yaml_serde::Value;

use super::decode::{join, list, location_name, unicast, At, Ctx};
use super::error::{Problem, Severity};
use super::schema::{Backend, FlowConfig, Forwarding, Interface, Service};

/// The source ports fullnat allocates per local address: 1024..=65535.
pub const PORTS_PER_LOCAL_ADDRESS: u64 = 64_512;

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// `service web`, or `the service` when its name did not decode.
fn service_name(name: Option<&str>) -> String {
    name.map_or_else(|| "the service".to_owned(), |n| format!("service {n}"))
}

/// A service's `local_addresses` (`value`), checked against its mode and its VIP's family;
/// empty when absent and not needed. None when something was reported about a local address.
pub(crate) fn local_addresses(
    ctx: &mut Ctx<'_>,
    service: &str,
    name: Option<&str>,
    value: Option<&Value>,
    forwarding: Option<Forwarding>,
    vip: Option<IpAddr>,
) -> Option<Vec<IpAddr>> {
    let path = join(service, "local_addresses");
    let Some(v) = value else {
        if forwarding == Some(Forwarding::FullNat) {
            ctx.invalid(
                &join(service, "forwarding"),
                "fullnat together with local_addresses (the appliance's own source addresses towards the backends)",
                "fullnat without local_addresses",
            );
            return None;
        }
        return Some(Vec::new());
    };
    match forwarding {
        Some(Forwarding::FullNat) => {}
        Some(other) => {
            let problem = Problem::Invalid {
                expected: "local_addresses only with forwarding: fullnat".to_owned(),
                got: format!("local_addresses with forwarding {other}"),
            };
            ctx.report(Severity::Error, &path, At::Key, problem);
            return None;
        }
        // The mode's own error says what is wrong.
        None => return None,
    }
    let items = list(
        ctx,
        v,
        &path,
        "a non-empty list of the appliance's own addresses",
        false,
    )?;
    let addresses: Vec<Option<IpAddr>> = items
        .iter()
        .enumerate()
        .map(|(k, item)| unicast(ctx, item, &format!("{path}[{k}]")))
        .collect();
    for (k, a) in addresses.iter().enumerate() {
        let Some(a) = a else { continue };
        if let Some(j) = addresses[..k].iter().position(|o| o.as_ref() == Some(a)) {
            let problem = Problem::Duplicate {
                what: format!("local address {a}"),
                first: location_name(ctx, &format!("{path}[{j}]")),
            };
            ctx.report(Severity::Error, &format!("{path}[{k}]"), At::Value, problem);
        }
    }
    let addresses: Vec<IpAddr> = addresses.into_iter().collect::<Option<_>>()?;
    // Backends are of the VIP's family (no family translation), so one local address must be.
    if let Some(vip) = vip {
        if !addresses.iter().any(|a| a.is_ipv4() == vip.is_ipv4()) {
            let expected = format!(
                "an {fam} local address, the family of {}'s VIP {vip} (fullnat sends to its backends, all {fam} like the VIP, from a local address of their family)",
                service_name(name),
                fam = family(vip),
            );
            let listed: Vec<String> = addresses.iter().map(ToString::to_string).collect();
            let got = format!("only {}: {}", family(addresses[0]), listed.join(", "));
            ctx.invalid(&path, expected, got);
        } else {
            // Allowed (a config shared with an IPv6 twin, say), but never a source here.
            for (k, a) in addresses.iter().enumerate() {
                if a.is_ipv4() != vip.is_ipv4() {
                    ctx.warn(
                        &format!("{path}[{k}]"),
                        format!("local addresses of the VIP's family ({})", family(vip)),
                        format!(
                            "{} {a}, which {} never sends from (its VIP and backends are {}); the appliance still answers ARP/ND for it",
                            family(*a),
                            service_name(name),
                            family(vip)
                        ),
                    );
                }
            }
        }
    }
    Some(addresses)
}

/// The translating modes' rules on a service's backends: a `port` only where it can be
/// honoured, and the VIP's address family (neither mode translates between families).
pub(crate) fn check_backends(
    ctx: &mut Ctx<'_>,
    path: &str,
    name: Option<&str>,
    backends: &[Option<Backend>],
    vip: Option<IpAddr>,
    service_port: Option<u16>,
    forwarding: Option<Forwarding>,
) {
    for (j, b) in backends.iter().enumerate() {
        let Some(b) = b else { continue };
        let here = format!("{path}[{j}]");
        if let (Some(port), Some(mode)) = (b.port, forwarding) {
            if !mode.translates() {
                let expected = format!("no backend port with {mode} forwarding (the backend answers from the VIP's own port; nat or fullnat can change it)");
                ctx.invalid(&join(&here, "port"), expected, port.to_string());
            } else if service_port == Some(0) {
                let expected = "no backend port: the service's port 0 balances every port, each kept as the client sent it";
                ctx.invalid(&join(&here, "port"), expected, port.to_string());
            }
        }
        let (Some(mode), Some(vip)) = (forwarding, vip) else {
            continue;
        };
        if mode.translates() && vip.is_ipv4() != b.address.is_ipv4() {
            let why = if mode == Forwarding::Nat {
                "nat keeps the client's address as the source, so both ends are of one family"
            } else {
                "fullnat translates within one address family: no NAT46/NAT64"
            };
            let expected = format!(
                "an {} backend like {}'s VIP {vip} ({why})",
                family(vip),
                service_name(name),
            );
            let got = format!("{} backend {}", family(b.address), b.address);
            ctx.invalid(&join(&here, "address"), expected, got);
        }
    }
}

/// Rules across sections: local addresses are neither VIPs, interface addresses, gateways nor
/// backends, and enough ports for `flows.capacity` on each worker.
pub(crate) fn cross_checks(
    ctx: &mut Ctx<'_>,
    services: &[(usize, &Service)],
    interfaces: &[(usize, &Interface)],
    flows: Option<&FlowConfig>,
) {
    // One worker per queue of each interface; each allocates only its own residue class of
    // ports (port % workers == worker), so replies are steered back to it.
    let workers: u64 = interfaces
        .iter()
        .map(|(_, itf)| u64::from(itf.queues))
        .sum::<u64>()
        .max(1);
    for &(i, s) in services {
        for (k, &local) in s.local_addresses.iter().enumerate() {
            let here = format!("services[{i}].local_addresses[{k}]");
            if let Some(&(j, vip_of)) = services.iter().find(|(_, o)| o.vip == local) {
                let expected = format!(
                    "a local address that is no VIP (it is service {}'s, services[{j}])",
                    vip_of.name
                );
                ctx.invalid(&here, expected, local.to_string());
            } else if let Some((_, itf)) = interfaces.iter().find(|(_, itf)| {
                IpAddr::V4(itf.address.addr) == local
                    || itf.address6.is_some_and(|a| IpAddr::V6(a.addr) == local)
            }) {
                let expected = format!(
                    "a local address other than interface {}'s own address (fullnat needs addresses of its own to tell replies apart)",
                    itf.name
                );
                ctx.invalid(&here, expected, local.to_string());
            } else if let Some((_, itf)) = interfaces.iter().find(|(_, itf)| {
                itf.gateway4.is_some_and(|g| IpAddr::V4(g.addr) == local)
                    || itf.gateway6.is_some_and(|g| IpAddr::V6(g.addr) == local)
            }) {
                // sluice answers ARP/ND for its local addresses: it would take the router's.
                let expected = format!(
                    "a local address other than interface {}'s gateway (sluice answers ARP and neighbour solicitations for its local addresses)",
                    itf.name
                );
                ctx.invalid(&here, expected, local.to_string());
            } else if let Some((j, other)) = services
                .iter()
                .find(|(_, o)| o.backends.iter().any(|b| b.address == local))
            {
                let expected = format!(
                    "a local address that is no backend's (it is a backend of service {}, services[{j}]; sluice answers ARP and neighbour solicitations for its local addresses)",
                    other.name
                );
                ctx.invalid(&here, expected, local.to_string());
            }
        }
        if let Some(flows) = flows {
            enough_ports(ctx, i, s, flows.capacity, workers);
        }
    }
}

/// Each connection takes two flow entries (one per direction) and one source port of a local
/// address of the VIP's family (the backends'): those must have ports for `capacity / 2`
/// connections on each worker, which has `1 / workers` of every local address's ports.
fn enough_ports(ctx: &mut Ctx<'_>, i: usize, s: &Service, capacity: usize, workers: u64) {
    let connections = capacity as u64 / 2;
    let ports = PORTS_PER_LOCAL_ADDRESS / workers;
    let v4 = s.vip.is_ipv4();
    let n = s
        .local_addresses
        .iter()
        .filter(|l| l.is_ipv4() == v4)
        .count() as u64;
    // None of the family: reported by `local_addresses`.
    if n == 0 || n * ports >= connections {
        return;
    }
    let need = connections.div_ceil(ports.max(1));
    let fam = family(s.vip);
    let share = if workers > 1 {
        format!(" ({ports} of them on each of {workers} workers)")
    } else {
        String::new()
    };
    let expected = format!(
        "at least {need} {fam} local addresses for flows.capacity {capacity} (a connection takes two flow entries and one of the {PORTS_PER_LOCAL_ADDRESS} ports 1024-65535 of a local address{share}: {connections} connections need {need}), or a smaller flows.capacity"
    );
    ctx.invalid(
        &format!("services[{i}].local_addresses"),
        expected,
        format!("{n} {fam} local address{}", if n == 1 { "" } else { "es" }),
    );
}
