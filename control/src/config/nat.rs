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

/// A service's `local_addresses` (`value`), checked against its mode; empty when absent and
/// not needed. None when something was reported.
pub(crate) fn local_addresses(
    ctx: &mut Ctx<'_>,
    service: &str,
    value: Option<&Value>,
    forwarding: Option<Forwarding>,
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
    addresses.into_iter().collect()
}

/// The translating modes' rules on a service's backends: a `port` only where it can be
/// honoured, nat within the VIP's family, fullnat with a local address of each backend's family.
pub(crate) fn check_backends(
    ctx: &mut Ctx<'_>,
    path: &str,
    backends: &[Option<Backend>],
    vip: Option<IpAddr>,
    service_port: Option<u16>,
    forwarding: Option<Forwarding>,
    local_addresses: Option<&[IpAddr]>,
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
        let address = join(&here, "address");
        match (forwarding, vip) {
            (Some(Forwarding::Nat), Some(vip)) if vip.is_ipv4() != b.address.is_ipv4() => {
                let expected = format!(
                    "an {} backend like the VIP (nat keeps the client's address as the source, so both ends are of one family)",
                    family(vip)
                );
                ctx.invalid(&address, expected, b.address.to_string());
            }
            (Some(Forwarding::FullNat), _) => {
                let Some(locals) = local_addresses else {
                    continue;
                };
                if !locals.iter().any(|l| l.is_ipv4() == b.address.is_ipv4()) {
                    let expected = format!(
                        "a backend with an {} local address in local_addresses to send to it from (fullnat)",
                        family(b.address)
                    );
                    ctx.invalid(&address, expected, b.address.to_string());
                }
            }
            _ => {}
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
/// address: a family's local addresses must have ports for `capacity / 2` connections on
/// each worker, which has `1 / workers` of every local address's ports.
fn enough_ports(ctx: &mut Ctx<'_>, i: usize, s: &Service, capacity: usize, workers: u64) {
    let connections = capacity as u64 / 2;
    let ports = PORTS_PER_LOCAL_ADDRESS / workers;
    for v4 in [true, false] {
        let n = s
            .local_addresses
            .iter()
            .filter(|l| l.is_ipv4() == v4)
            .count() as u64;
        let used = s.backends.iter().any(|b| b.address.is_ipv4() == v4);
        if n == 0 || !used || n * ports >= connections {
            continue;
        }
        let need = connections.div_ceil(ports.max(1));
        let fam = if v4 { "IPv4" } else { "IPv6" };
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
}
