//! Rules across sections: unique names and services, reachability of backends, cores for the queues.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use yaml_serde::Value;

use super::decode::{location_name, At, Ctx, Parts};
use super::eal_args::{option_values, pci_address};
use super::error::{Problem, Severity};
use super::lcores::{eal_cores, format_cores};
use super::nat;
use super::schema::{Forwarding, Interface, Prefix, Proto, Service};
use crate::health::runner::{probes_in_flight, MAX_PROBERS};
use crate::health::CheckKind;

pub(crate) fn cross_checks(ctx: &mut Ctx<'_>, root: &Value, parts: &Parts) {
    let interfaces: Vec<(usize, &Interface)> = indexed(parts.interfaces.as_deref());
    // Reachability rules need every interface; with one undecodable they would guess.
    let all_interfaces = parts
        .interfaces
        .as_ref()
        .is_some_and(|v| v.iter().all(Option::is_some));
    let services: Vec<(usize, &Service)> = indexed(parts.services.as_deref());

    // Uniqueness is read leniently from the raw items, so an item with an unrelated error
    // still takes part (its own error is reported by the decoder).
    let raw_interfaces = raw_items(root, "interfaces");
    let raw_services = raw_items(root, "services");
    unique(
        ctx,
        raw_interfaces,
        "interfaces",
        "name",
        "interface name",
        |v| raw_str(v, "name").map(as_written),
    );
    // A PCI address has several spellings (`3B:00.0`, `0000:3b:00.0`): compared normalised.
    unique(ctx, raw_interfaces, "interfaces", "device", "device", |v| {
        raw_str(v, "device").map(|d| match pci_address(d) {
            Some(pci) if pci != d => (pci.clone(), format!("{d:?} (PCI address {pci})")),
            _ => as_written(d),
        })
    });
    unique(
        ctx,
        raw_interfaces,
        "interfaces",
        "kernel.name",
        "kernel interface name",
        |v| {
            v.get("kernel")
                .and_then(|k| raw_str(k, "name"))
                .map(as_written)
        },
    );
    unique(ctx, raw_services, "services", "name", "service name", |v| {
        raw_str(v, "name").map(as_written)
    });
    overlapping_services(ctx, raw_services);
    health_checks(ctx, &services);
    nat::cross_checks(ctx, &services, &interfaces, parts.flows.as_ref());
    overlapping_prefixes(ctx, &interfaces);
    if all_interfaces {
        for &(i, s) in &services {
            reachability(ctx, i, s, &interfaces);
        }
        if let Some(dpdk) = &parts.dpdk {
            cores_for_queues(ctx, &dpdk.args, &interfaces);
            devices_in_eal_args(ctx, &dpdk.args, &interfaces);
        }
        let announcing = matches!(parts.announce, Some(Some(_)));
        if announcing && !interfaces.iter().any(|(_, i)| i.kernel.is_some()) {
            ctx.invalid(
                "announce",
                "an interface with a `kernel` (exception path): the VIP routes point at its kernel interface",
                "no interface has one",
            );
        }
    }
}

fn indexed<T>(items: Option<&[Option<T>]>) -> Vec<(usize, &T)> {
    items
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.as_ref().map(|t| (i, t)))
        .collect()
}

fn raw_items<'v>(root: &'v Value, list: &str) -> &'v [Value] {
    match root.get(list) {
        Some(Value::Sequence(items)) => items,
        _ => &[],
    }
}

pub(crate) fn raw_str<'v>(item: &'v Value, key: &str) -> Option<&'v str> {
    item.get(key).and_then(Value::as_str)
}

/// The (vip, port, protocol) of a raw service item, when all three are valid.
fn raw_endpoint(item: &Value) -> Option<(IpAddr, u16, Proto)> {
    let vip = raw_str(item, "vip")?.parse().ok()?;
    let port = u16::try_from(item.get("port")?.as_u64()?).ok()?;
    let protocol = raw_str(item, "protocol")?;
    let protocol = Proto::ALL.iter().find(|(_, text)| *text == protocol)?.0;
    Some((vip, port, protocol))
}

/// A raw value compared as written, and shown quoted.
fn as_written(s: &str) -> (String, String) {
    (s.to_owned(), format!("{s:?}"))
}

/// `key` must differ among `items`: `value` gives an item's value to compare and how to show it.
fn unique(
    ctx: &mut Ctx<'_>,
    items: &[Value],
    list: &str,
    key: &str,
    what: &str,
    value: impl Fn(&Value) -> Option<(String, String)>,
) {
    let values: Vec<Option<(String, String)>> = items.iter().map(value).collect();
    for (i, v) in values.iter().enumerate() {
        let Some((v, shown)) = v else { continue };
        if let Some(j) = values[..i]
            .iter()
            .position(|o| o.as_ref().is_some_and(|(o, _)| o == v))
        {
            let problem = Problem::Duplicate {
                what: format!("{what} {shown}"),
                first: location_name(ctx, &format!("{list}[{j}]")),
            };
            ctx.report(
                Severity::Error,
                &format!("{list}[{i}].{key}"),
                At::Value,
                problem,
            );
        }
    }
}

/// Two interfaces whose on-link prefixes overlap: a next hop in both is asked for and sent
/// through the first only (the neighbour table is per address), so a warning, not an error
/// (two ports on one segment may be meant).
fn overlapping_prefixes(ctx: &mut Ctx<'_>, interfaces: &[(usize, &Interface)]) {
    fn overlap<A: Copy>(a: Prefix<A>, b: Prefix<A>, contains: fn(&Prefix<A>, A) -> bool) -> bool {
        if a.len <= b.len {
            contains(&a, b.addr)
        } else {
            contains(&b, a.addr)
        }
    }
    for (k, &(i, iface)) in interfaces.iter().enumerate() {
        let earlier = interfaces[..k].iter().find_map(|&(j, o)| {
            if overlap(o.address, iface.address, Prefix::<Ipv4Addr>::contains) {
                return Some((
                    j,
                    o,
                    "address",
                    o.address.to_string(),
                    iface.address.to_string(),
                ));
            }
            match (o.address6, iface.address6) {
                (Some(a), Some(b)) if overlap(a, b, Prefix::<Ipv6Addr>::contains) => {
                    Some((j, o, "address6", a.to_string(), b.to_string()))
                }
                _ => None,
            }
        });
        if let Some((j, o, key, theirs, ours)) = earlier {
            ctx.warn(
                &format!("interfaces[{i}].{key}"),
                "an on-link prefix no other interface holds",
                format!(
                    "{ours}, which overlaps interfaces[{j}] ({}) {theirs}: a next hop in both is resolved and reached through {} only",
                    o.name, o.name
                ),
            );
        }
    }
}

/// Two services on one VIP and protocol must not share a port; port 0 takes every port.
fn overlapping_services(ctx: &mut Ctx<'_>, items: &[Value]) {
    let endpoints: Vec<Option<(IpAddr, u16, Proto)>> = items.iter().map(raw_endpoint).collect();
    for (i, e) in endpoints.iter().enumerate() {
        let Some(s) = *e else { continue };
        let clash = endpoints[..i].iter().enumerate().find_map(|(j, o)| {
            let o = (*o)?;
            (o.0 == s.0 && o.2 == s.2 && (o.1 == s.1 || o.1 == 0 || s.1 == 0)).then_some((j, o))
        });
        if let Some((j, o)) = clash {
            let what = if o.1 == s.1 {
                format!("service {}", format_endpoint(s.0, s.1, s.2))
            } else {
                let (new, old) = (
                    format_endpoint(s.0, s.1, s.2),
                    format_endpoint(o.0, o.1, o.2),
                );
                format!("service {new} (overlaps {old}: port 0 is every port)")
            };
            let problem = Problem::Duplicate {
                what,
                first: location_name(ctx, &format!("services[{j}]")),
            };
            ctx.report(
                Severity::Error,
                &format!("services[{i}].port"),
                At::Value,
                problem,
            );
        }
    }
}

fn format_endpoint(vip: IpAddr, port: u16, protocol: Proto) -> String {
    match vip {
        IpAddr::V4(v4) => format!("{v4}:{port}/{protocol}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}/{protocol}"),
    }
}

/// `198.51.100.10:443/tcp`, `[2001:db8::1]:53/udp`.
pub fn endpoint(s: &Service) -> String {
    format_endpoint(s.vip, s.port, s.protocol)
}

/// The VIP is not an interface's own address, IPv6 has an interface, and every backend has a way out.
fn reachability(ctx: &mut Ctx<'_>, i: usize, s: &Service, interfaces: &[(usize, &Interface)]) {
    let vip_path = format!("services[{i}].vip");
    let own = interfaces.iter().find(|(_, itf)| {
        IpAddr::V4(itf.address.addr) == s.vip
            || itf.address6.is_some_and(|a| IpAddr::V6(a.addr) == s.vip)
    });
    if let Some((_, itf)) = own {
        ctx.invalid(
            &vip_path,
            format!("a VIP other than interface {}'s own address", itf.name),
            s.vip.to_string(),
        );
    }
    if s.vip.is_ipv6() && !interfaces.iter().any(|(_, itf)| itf.address6.is_some()) {
        ctx.invalid(
            &vip_path,
            "an interface with address6 to serve an IPv6 VIP",
            "none has one",
        );
    }
    // The egress rule (forwarding::egress_of) takes a gateway of the backend's own family.
    let has_gateway = |ip: IpAddr| {
        interfaces
            .iter()
            .any(|(_, itf)| itf.gateway_for(ip).is_some())
    };
    for (b, backend) in s.backends.iter().enumerate() {
        let on_link = interfaces
            .iter()
            .any(|(_, itf)| itf.on_link(backend.address));
        let path = format!("services[{i}].backends[{b}].address");
        if s.forwarding == Forwarding::L2Dsr && !on_link {
            let expected =
                "an on-link backend for l2-dsr (inside an interface's address or address6 prefix)";
            ctx.invalid(&path, expected, backend.address.to_string());
        } else if !on_link
            && !has_gateway(backend.address)
            // A family mismatch (no mode translates between families), or an IPv6 backend
            // with no IPv6 on any interface, is reported once, by its own rule.
            && backend.address.is_ipv4() == s.vip.is_ipv4()
            && (backend.address.is_ipv4() || interfaces.iter().any(|(_, itf)| itf.address6.is_some()))
        {
            let expected = if backend.address.is_ipv4() {
                "an on-link backend, or an interface with an IPv4 gateway (gateway) to reach it"
            } else {
                "an on-link backend, or an interface with an IPv6 gateway (gateway6) to reach it"
            };
            ctx.invalid(&path, expected, backend.address.to_string());
        }
    }
}

/// One worker lcore per queue: `dpdk.args` must enable enough lcores besides the main one.
fn cores_for_queues(ctx: &mut Ctx<'_>, args: &[String], interfaces: &[(usize, &Interface)]) {
    let cores = match eal_cores(args) {
        Ok(Some(cores)) => cores,
        Ok(None) => return,
        Err(e) => {
            ctx.invalid(&format!("dpdk.args[{}]", e.arg), e.expected, e.got);
            return;
        }
    };
    let queues: usize = interfaces
        .iter()
        .map(|(_, itf)| usize::from(itf.queues))
        .sum();
    if cores.workers() < queues {
        let per: Vec<String> = interfaces
            .iter()
            .map(|(_, itf)| format!("{} {}", itf.name, itf.queues))
            .collect();
        let expected = format!(
            "at least {queues} worker lcores, one per queue ({})",
            per.join(", ")
        );
        let got = format!(
            "{} (lcores {} minus main lcore {})",
            cores.workers(),
            format_cores(&cores.lcores),
            cores.main
        );
        ctx.invalid(&format!("dpdk.args[{}]", cores.list_arg), expected, got);
    }
}

/// A checked backend the checker cannot reach (IPv6 link-local: a probe needs a scope the
/// config does not give), and more probes in flight at once, when every one runs to its
/// timeout (a partition), than the checker's threads: they then queue, and a failure shows
/// late.
fn health_checks(ctx: &mut Ctx<'_>, services: &[(usize, &Service)]) {
    for &(i, s) in services {
        let Some(hc) = s.health_check.as_ref() else {
            continue;
        };
        if hc.settings.kind == CheckKind::None {
            continue;
        }
        for (j, b) in s.backends.iter().enumerate() {
            if let IpAddr::V6(a) = b.address {
                if a.is_unicast_link_local() {
                    let expected = "a backend address a health probe can reach (not link-local: \
                                    a probe has no interface to scope it to)";
                    let at = format!("services[{i}].backends[{j}].address");
                    ctx.invalid(&at, expected, a.to_string());
                }
            }
        }
    }
    // One target per backend of a checked service, as the checker gets them.
    let targets = || {
        services.iter().flat_map(|(_, s)| {
            let hc = s.health_check.as_ref();
            s.backends
                .iter()
                .filter_map(move |_| hc.map(|h| &h.settings))
        })
    };
    let needed = probes_in_flight(targets());
    if needed > MAX_PROBERS {
        let targets = targets().filter(|s| s.kind != CheckKind::None).count();
        let expected = format!(
            "at most {MAX_PROBERS} probes in flight at once (the checker's threads) when every \
             probe runs to its timeout"
        );
        let got = format!(
            "{needed} over {targets} health-checked backends: probes would queue and a failure \
             show late (lower timeout / interval)"
        );
        ctx.warn("services", expected, got);
    }
}

/// With an allow list (`-a`) DPDK probes only the listed PCI devices: a port missing there
/// would fail at startup. (vdevs are not checked: the runtime may create them itself.)
fn devices_in_eal_args(ctx: &mut Ctx<'_>, args: &[String], interfaces: &[(usize, &Interface)]) {
    let allowed: Vec<String> = option_values(args, "-a", "--allow")
        .into_iter()
        .filter_map(|v| pci_address(v.split(',').next().unwrap_or_default()))
        .collect();
    for &(i, itf) in interfaces {
        match pci_address(&itf.device) {
            Some(pci) if !allowed.is_empty() && !allowed.contains(&pci) => {
                let expected = format!(
                    "a PCI device in the EAL allow list ({})",
                    allowed.join(", ")
                );
                let got = format!("{} (DPDK will not probe it)", itf.device);
                ctx.warn(&format!("interfaces[{i}].device"), expected, got);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_are_normalised() {
        assert_eq!(pci_address("3B:00.1").as_deref(), Some("0000:3b:00.1"));
        assert_eq!(pci_address("0000:3b:00.0").as_deref(), Some("0000:3b:00.0"));
        for not_pci in ["net_memif0", "3b:00", "0000:3b:00.10", "x:3b:00.0", ""] {
            assert_eq!(pci_address(not_pci), None, "{not_pci}");
        }
    }

    #[test]
    fn eal_option_values_in_every_spelling() {
        let args: Vec<String> = [
            "-a",
            "A",
            "-aB",
            "--allow",
            "C",
            "--allow=D",
            "--a",
            "-l",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(option_values(&args, "-a", "--allow"), ["A", "B", "C", "D"]);
    }
}
