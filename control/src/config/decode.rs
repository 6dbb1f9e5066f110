//! Walk yaml_serde's value tree into typed sections, reporting every bad key or value (not just the first).
//!
//! Long (about 1100 lines besides tests): one decoder per config section over one shared walker
//! (the context, `keyword`, `or_default`), read top to bottom like the YAML; split by section it
//! would export the walker's internals to every part.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use yaml_serde::{Mapping, Value};

use super::duration::{format_duration, parse_duration, EXPECTED as DURATION};
use super::error::{ConfigError, Location, Problem, Severity};
use super::location::LocationIndex;
use super::nat;
use super::schema::*;

/// The largest table the Maglev builder accepts (the largest prime below it is 16,777,213).
pub const MAX_TABLE_SIZE: u32 = maglev::MAX_SIZE;
pub const MAX_WEIGHT: u32 = 1_000_000;
pub const MAX_QUEUES: u16 = 1024;
pub const MTU_RANGE: (u16, u16) = (68, 9702);
pub const MAX_FLOW_CAPACITY: u32 = 1 << 27;
pub const MAX_MBUFS: u32 = (1 << 28) - 1;

const TOP_KEYS: &[&str] = &[
    "dpdk",
    "interfaces",
    "flows",
    "services",
    "metrics",
    "announce",
];
const ANNOUNCE_KEYS: &[&str] = &["table"];
const DPDK_KEYS: &[&str] = &["args", "mbufs"];
const INTERFACE_KEYS: &[&str] = &[
    "name",
    "device",
    "queues",
    "mtu",
    "address",
    "address6",
    "gateway",
    "gateway_mac",
    "gateway6",
    "gateway6_mac",
    "kernel",
];
const KERNEL_KEYS: &[&str] = &["name", "rate"];
const FLOWS_KEYS: &[&str] = &[
    "capacity",
    "tcp_established_timeout",
    "tcp_closing_timeout",
    "tcp_syn_timeout",
    "udp_timeout",
    "max_new_flows_per_second",
];
const SERVICE_KEYS: &[&str] = &[
    "name",
    "vip",
    "port",
    "protocol",
    "hash",
    "table_size",
    "forwarding",
    "local_addresses",
    "backends",
    "health_check",
    "when_all_down",
];
const BACKEND_KEYS: &[&str] = &["address", "weight", "port"];
const HEALTH_KEYS: &[&str] = &[
    "kind", "port", "interval", "timeout", "rise", "fall", "path", "host", "query",
];
const METRICS_KEYS: &[&str] = &["listen", "lifecycle"];

/// The smallest MTU of an IPv6 link (RFC 8200 section 5).
const IPV6_MIN_MTU: u16 = 1280;

const NAME: &str = "a name of 1-64 letters, digits, '-', '_' or '.'";

/// Which mark of a node an error points at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum At {
    Key,
    Value,
}

/// Collects diagnostics, locating each by its key path.
pub(crate) struct Ctx<'a> {
    pub file: &'a str,
    pub index: &'a LocationIndex,
    pub diags: Vec<ConfigError>,
}

impl Ctx<'_> {
    pub fn report(&mut self, severity: Severity, path: &str, at: At, problem: Problem) {
        let location = self.index.spot(path).map(|s| match at {
            At::Key => s.key.unwrap_or(s.value),
            At::Value => s.value,
        });
        self.push(severity, path, location, problem);
    }

    pub fn push(
        &mut self,
        severity: Severity,
        path: &str,
        location: Option<Location>,
        problem: Problem,
    ) {
        self.diags.push(ConfigError {
            file: self.file.to_owned(),
            location,
            path: path.to_owned(),
            severity,
            problem,
        });
    }

    pub fn invalid(&mut self, path: &str, expected: impl Into<String>, got: impl Into<String>) {
        let problem = Problem::Invalid {
            expected: expected.into(),
            got: got.into(),
        };
        self.report(Severity::Error, path, At::Value, problem);
    }

    pub fn warn(&mut self, path: &str, expected: impl Into<String>, got: impl Into<String>) {
        let problem = Problem::Invalid {
            expected: expected.into(),
            got: got.into(),
        };
        self.report(Severity::Warning, path, At::Value, problem);
    }

    pub fn errors(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }
}

/// The sections as decoded; an item is `None` when it had an error (already reported).
pub(crate) struct Parts {
    pub dpdk: Option<Dpdk>,
    pub interfaces: Option<Vec<Option<Interface>>>,
    pub flows: Option<FlowConfig>,
    pub services: Option<Vec<Option<Service>>>,
    pub metrics: Option<Metrics>,
    pub announce: Option<Option<Announce>>,
}

impl Parts {
    /// The config, if every part decoded.
    pub fn complete(self) -> Option<Config> {
        Some(Config {
            dpdk: self.dpdk?,
            interfaces: self.interfaces?.into_iter().collect::<Option<_>>()?,
            flows: self.flows?,
            services: self.services?.into_iter().collect::<Option<_>>()?,
            metrics: self.metrics?,
            announce: self.announce?,
        })
    }
}

pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// A short description of a value for "got ..." messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

pub(crate) fn quote(s: &str) -> String {
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{:?}", cut + "...")
    } else {
        format!("{s:?}")
    }
}

/// A mapping whose keys were checked against the allowed set.
struct Fields<'v> {
    path: String,
    map: &'v Mapping,
}

impl<'v> Fields<'v> {
    fn child(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value of `key`; an explicit null counts as absent.
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }
}

fn fields<'v>(
    ctx: &mut Ctx<'_>,
    v: &'v Value,
    path: &str,
    what: &str,
    allowed: &'static [&'static str],
) -> Option<Fields<'v>> {
    let Value::Mapping(map) = v else {
        ctx.invalid(path, format!("a mapping ({what})"), describe(v));
        return None;
    };
    for key in map.keys() {
        match key {
            Value::String(k) if allowed.contains(&k.as_str()) => {}
            Value::String(k) => {
                let problem = Problem::UnknownKey {
                    key: k.clone(),
                    allowed,
                };
                ctx.report(Severity::Error, &join(path, k), At::Key, problem);
            }
            other => {
                // At the key itself (indexed by its text), not at the start of its mapping.
                let key = match other {
                    Value::Number(_) | Value::Bool(_) => {
                        ctx.index.exact(&join(path, &describe(other)))
                    }
                    _ => None,
                };
                let location = match key {
                    Some(s) => Some(s.key.unwrap_or(s.value)),
                    None => ctx.index.spot(path).map(|s| s.value),
                };
                let problem = Problem::Invalid {
                    expected: "string keys".to_owned(),
                    got: format!("the key {}", describe(other)),
                };
                ctx.push(Severity::Error, path, location, problem);
            }
        }
    }
    Some(Fields {
        path: path.to_owned(),
        map,
    })
}

fn required<'v>(
    ctx: &mut Ctx<'_>,
    f: &Fields<'v>,
    key: &'static str,
    expected: &'static str,
) -> Option<&'v Value> {
    match f.map.get(key) {
        None => {
            let problem = Problem::MissingKey { key, expected };
            ctx.report(Severity::Error, &f.path, At::Value, problem);
            None
        }
        Some(Value::Null) => {
            ctx.invalid(&f.child(key), expected, "nothing");
            None
        }
        Some(v) => Some(v),
    }
}

/// `parse` the value of an optional key, or take `default` when it is absent.
fn or_default<'v, T>(
    v: Option<&'v Value>,
    default: T,
    parse: impl FnOnce(&'v Value) -> Option<T>,
) -> Option<T> {
    match v {
        None => Some(default),
        Some(v) => parse(v),
    }
}

fn int(ctx: &mut Ctx<'_>, v: &Value, path: &str, lo: u64, hi: u64) -> Option<u64> {
    match v.as_u64() {
        Some(n) if (lo..=hi).contains(&n) => Some(n),
        _ => {
            ctx.invalid(path, format!("an integer from {lo} to {hi}"), describe(v));
            None
        }
    }
}

fn string<'v>(ctx: &mut Ctx<'_>, v: &'v Value, path: &str, expected: &str) -> Option<&'v str> {
    match v {
        Value::String(s) => Some(s),
        _ => {
            ctx.invalid(path, expected, describe(v));
            None
        }
    }
}

/// A string, parsed by `parse`, which says what it expected on failure.
fn parsed<T>(
    ctx: &mut Ctx<'_>,
    v: &Value,
    path: &str,
    expected: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Option<T> {
    let s = string(ctx, v, path, expected)?;
    let parsed = parse(s);
    if parsed.is_none() {
        ctx.invalid(path, expected, quote(s));
    }
    parsed
}

fn keyword<T: Copy>(ctx: &mut Ctx<'_>, v: &Value, path: &str, all: &[(T, &str)]) -> Option<T> {
    let found = v
        .as_str()
        .and_then(|s| all.iter().find(|(_, text)| *text == s));
    if found.is_none() {
        let names: Vec<&str> = all.iter().map(|(_, text)| *text).collect();
        ctx.invalid(path, format!("one of {}", names.join(", ")), describe(v));
    }
    found.map(|(t, _)| *t)
}

fn duration(
    ctx: &mut Ctx<'_>,
    v: &Value,
    path: &str,
    lo: Duration,
    hi: Duration,
) -> Option<Duration> {
    let d = parsed(ctx, v, path, DURATION, parse_duration)?;
    if d < lo || d > hi {
        let expected = format!(
            "a duration from {} to {}",
            format_duration(lo),
            format_duration(hi)
        );
        ctx.invalid(path, expected, format_duration(d));
        return None;
    }
    Some(d)
}

fn name(ctx: &mut Ctx<'_>, v: &Value, path: &str) -> Option<String> {
    let ok = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    parsed(ctx, v, path, NAME, |s| ok(s).then(|| s.to_owned()))
}

/// A unicast address (not unspecified, multicast or broadcast).
pub(crate) fn unicast(ctx: &mut Ctx<'_>, v: &Value, path: &str) -> Option<IpAddr> {
    let ip: IpAddr = parsed(ctx, v, path, "an IPv4 or IPv6 address", |s| s.parse().ok())?;
    let bad = ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST);
    if bad {
        ctx.invalid(path, "a unicast address", ip.to_string());
        return None;
    }
    // The dataplane keys IPv4 by its mapped form: one address, two spellings, is ambiguous.
    if let IpAddr::V6(v6) = ip {
        if let Some(v4) = v6.to_ipv4_mapped() {
            ctx.invalid(
                path,
                format!("{v4} written as IPv4, not IPv4-mapped IPv6"),
                ip.to_string(),
            );
            return None;
        }
    }
    Some(ip)
}

fn prefix<A: std::str::FromStr>(s: &str, max_len: u8) -> Option<Prefix<A>> {
    let (addr, len) = s.split_once('/')?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    if !(1..=max_len).contains(&len) {
        return None;
    }
    Some(Prefix {
        addr: addr.parse().ok()?,
        len,
    })
}

fn mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut out {
        let p = parts.next()?;
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Decode the whole document.
pub(crate) fn document(ctx: &mut Ctx<'_>, root: &Value) -> Parts {
    let empty = Parts {
        dpdk: None,
        interfaces: None,
        flows: None,
        services: None,
        metrics: None,
        announce: None,
    };
    let Some(f) = fields(
        ctx,
        root,
        "",
        "the config: interfaces, services, ...",
        TOP_KEYS,
    ) else {
        return empty;
    };
    let dpdk = match f.get("dpdk") {
        None => Some(Dpdk {
            args: Vec::new(),
            mbufs: DEFAULT_MBUFS,
        }),
        Some(v) => dpdk(ctx, v, "dpdk"),
    };
    let interfaces = required(ctx, &f, "interfaces", "a list of interfaces")
        .and_then(|v| {
            list(
                ctx,
                v,
                "interfaces",
                "a non-empty list of interfaces",
                false,
            )
        })
        .map(|items| {
            items
                .iter()
                .enumerate()
                .map(|(i, v)| interface(ctx, v, &format!("interfaces[{i}]")))
                .collect()
        });
    let flows = match f.get("flows") {
        None => Some(FlowConfig::default()),
        Some(v) => flows(ctx, v, "flows"),
    };
    let services = match f.get("services") {
        None => {
            ctx.warn(
                "services",
                "at least one service",
                "none: every packet will be dropped",
            );
            Some(Vec::new())
        }
        Some(v) => list(ctx, v, "services", "a list of services", true).map(|items| {
            items
                .iter()
                .enumerate()
                .map(|(i, v)| service(ctx, v, &format!("services[{i}]")))
                .collect()
        }),
    };
    let metrics = match f.get("metrics") {
        None => Some(Metrics {
            listen: DEFAULT_METRICS_LISTEN,
            lifecycle: Lifecycle::Local,
        }),
        Some(v) => metrics(ctx, v, "metrics"),
    };
    let announce = or_default(f.get("announce"), None, |v| {
        announce(ctx, v, "announce").map(Some)
    });
    Parts {
        dpdk,
        interfaces,
        flows,
        services,
        metrics,
        announce,
    }
}

fn announce(ctx: &mut Ctx<'_>, v: &Value, path: &str) -> Option<Announce> {
    let f = fields(ctx, v, path, "route announcement: table", ANNOUNCE_KEYS)?;
    let expected = "a kernel routing table 1-4294967295 other than 253-255 (default, main, local)";
    let table = required(ctx, &f, "table", expected).and_then(|v| {
        let path = f.child("table");
        let n = int(ctx, v, &path, 1, u64::from(u32::MAX))? as u32;
        if (253..=255).contains(&n) {
            ctx.invalid(&path, expected, n.to_string());
            return None;
        }
        Some(n)
    })?;
    Some(Announce { table })
}

pub(crate) fn list<'v>(
    ctx: &mut Ctx<'_>,
    v: &'v Value,
    path: &str,
    expected: &str,
    may_be_empty: bool,
) -> Option<&'v [Value]> {
    match v {
        Value::Sequence(items) if may_be_empty || !items.is_empty() => Some(items),
        Value::Sequence(_) => {
            ctx.invalid(path, expected, "an empty list");
            None
        }
        _ => {
            ctx.invalid(path, expected, describe(v));
            None
        }
    }
}

fn dpdk(ctx: &mut Ctx<'_>, v: &Value, path: &str) -> Option<Dpdk> {
    let f = fields(ctx, v, path, "args, mbufs", DPDK_KEYS)?;
    let args = or_default(f.get("args"), Vec::new(), |v| {
        let items = list(ctx, v, &f.child("args"), "a list of EAL arguments", true)?;
        let args: Vec<Option<String>> = items
            .iter()
            .enumerate()
            .map(|(i, a)| match a {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                other => {
                    ctx.invalid(&format!("{path}.args[{i}]"), "a string", describe(other));
                    None
                }
            })
            .collect();
        args.into_iter().collect()
    });
    let mbufs = or_default(f.get("mbufs"), DEFAULT_MBUFS, |v| {
        int(ctx, v, &f.child("mbufs"), 1, u64::from(MAX_MBUFS)).map(|n| n as u32)
    });
    Some(Dpdk {
        args: args?,
        mbufs: mbufs?,
    })
}

fn interface(ctx: &mut Ctx<'_>, v: &Value, path: &str) -> Option<Interface> {
    let f = fields(ctx, v, path, "an interface", INTERFACE_KEYS)?;
    let name = required(ctx, &f, "name", NAME).and_then(|v| name(ctx, v, &f.child("name")));
    let device = required(ctx, &f, "device", "a PCI address or vdev name").and_then(|v| {
        parsed(
            ctx,
            v,
            &f.child("device"),
            "a PCI address or vdev name",
            |s| (!s.is_empty() && !s.contains(char::is_whitespace)).then(|| s.to_owned()),
        )
    });
    let queues = or_default(f.get("queues"), DEFAULT_QUEUES, |v| {
        int(ctx, v, &f.child("queues"), 1, u64::from(MAX_QUEUES)).map(|n| n as u16)
    });
    let mtu = or_default(f.get("mtu"), DEFAULT_MTU, |v| {
        int(
            ctx,
            v,
            &f.child("mtu"),
            u64::from(MTU_RANGE.0),
            u64::from(MTU_RANGE.1),
        )
        .map(|n| n as u16)
    });
    let expect4 = "an IPv4 address with a prefix length 1-32, e.g. 192.0.2.10/24";
    let address =
        required(ctx, &f, "address", "the interface's IPv4 address/prefix").and_then(|v| {
            let path = f.child("address");
            let p = parsed(ctx, v, &path, expect4, |s| prefix::<Ipv4Addr>(s, 32))?;
            let not_unicast = if p.addr.is_multicast() {
                Some("not unicast".to_owned())
            } else if p.addr.is_broadcast() {
                Some("the broadcast address".to_owned())
            } else {
                None
            };
            host_address(ctx, &path, p, u32::from(p.addr).into(), 32, not_unicast)
        });
    let expect6 = "an IPv6 address with a prefix length 1-128, e.g. 2001:db8::10/64";
    let address6 = or_default(f.get("address6"), None, |v| {
        let path = f.child("address6");
        let p = parsed(ctx, v, &path, expect6, |s| prefix::<Ipv6Addr>(s, 128))?;
        // The dataplane keys IPv4 by its mapped form: it would be taken for an IPv4 address.
        let mapped = |v4| format!("IPv4-mapped IPv6: {v4} belongs in `address`, written as IPv4");
        let not_unicast = if p.addr.is_multicast() {
            Some("not unicast".to_owned())
        } else {
            p.addr.to_ipv4_mapped().map(mapped)
        };
        host_address(ctx, &path, p, p.addr.into(), 128, not_unicast).map(Some)
    });
    // RFC 8200 section 5: every IPv6 link carries 1280-byte packets.
    if let (Some(m), Some(Some(_))) = (mtu, address6) {
        if m < IPV6_MIN_MTU {
            let at = if f.get("mtu").is_some() {
                f.child("mtu")
            } else {
                f.child("address6")
            };
            let expected = format!("an mtu of at least {IPV6_MIN_MTU} on a link with address6");
            ctx.invalid(&at, expected, format!("mtu {m}"));
        }
    }
    let gateway_path = f.child("gateway");
    let gateway = or_default(f.get("gateway"), None, |v| {
        unicast(ctx, v, &gateway_path).map(Some)
    });
    let gateway6_path = f.child("gateway6");
    let gateway6 = or_default(f.get("gateway6"), None, |v| {
        match unicast(ctx, v, &gateway6_path)? {
            IpAddr::V6(g) => Some(Some(g)),
            IpAddr::V4(g) => {
                let expected = "an IPv6 address (an IPv4 next hop goes in gateway)";
                ctx.invalid(&gateway6_path, expected, g.to_string());
                None
            }
        }
    });
    if let (Some(a4), Some(a6)) = (address, address6) {
        if let Some(Some(gw)) = gateway {
            on_link_gateway(ctx, &gateway_path, gw, a4, a6);
        }
        if let Some(Some(gw)) = gateway6 {
            on_link_gateway(ctx, &gateway6_path, IpAddr::V6(gw), a4, a6);
        }
    }
    // An IPv6 `gateway` (the spelling before gateway6) still works, so a second is ambiguous.
    if let (Some(Some(IpAddr::V6(_))), Some(Some(gw6))) = (gateway, gateway6) {
        let problem = Problem::Duplicate {
            what: format!(
                "IPv6 gateway {gw6} (one per address family: IPv4 in gateway, IPv6 in gateway6)"
            ),
            first: location_name(ctx, &gateway_path),
        };
        ctx.report(Severity::Error, &gateway6_path, At::Value, problem);
    }
    let gateway_mac = static_gateway_mac(
        ctx,
        &f,
        "gateway_mac",
        "gateway",
        gateway.map(|g| g.is_some()),
    );
    let gateway6_mac = static_gateway_mac(
        ctx,
        &f,
        "gateway6_mac",
        "gateway6",
        gateway6.map(|g| g.is_some()),
    );
    let kernel = or_default(f.get("kernel"), None, |v| {
        kernel(ctx, v, &f.child("kernel")).map(Some)
    });
    let (gateway, gateway_mac, gateway6, gateway6_mac) =
        (gateway?, gateway_mac?, gateway6?, gateway6_mac?);
    Some(Interface {
        name: name?,
        device: device?,
        queues: queues?,
        mtu: mtu?,
        address: address?,
        address6: address6?,
        gateway4: match gateway {
            Some(IpAddr::V4(addr)) => Some(Gateway {
                addr,
                mac: gateway_mac,
            }),
            _ => None,
        },
        gateway6: match (gateway, gateway6) {
            (_, Some(addr)) => Some(Gateway {
                addr,
                mac: gateway6_mac,
            }),
            (Some(IpAddr::V6(addr)), None) => Some(Gateway {
                addr,
                mac: gateway_mac,
            }),
            _ => None,
        },
        kernel: kernel?,
    })
}

/// A gateway must be on the interface's link of its family, and not the interface itself.
fn on_link_gateway(
    ctx: &mut Ctx<'_>,
    path: &str,
    gw: IpAddr,
    a4: Prefix<Ipv4Addr>,
    a6: Option<Prefix<Ipv6Addr>>,
) {
    let own = match (gw, a6) {
        (IpAddr::V4(g), _) if a4.contains(g) && g != a4.addr => return,
        (IpAddr::V4(_), _) => a4.to_string(),
        (IpAddr::V6(g), Some(p)) if p.contains(g) && g != p.addr => return,
        (IpAddr::V6(_), Some(p)) => p.to_string(),
        (IpAddr::V6(_), None) => {
            let expected = "an IPv6 next hop inside the interface's address6";
            ctx.invalid(
                path,
                expected,
                format!("{gw} (the interface has no address6)"),
            );
            return;
        }
    };
    ctx.invalid(
        path,
        format!("an on-link next hop other than the interface's own address ({own})"),
        gw.to_string(),
    );
}

/// The static MAC under `key`, refused without its gateway (`has_gateway`: None if that failed).
fn static_gateway_mac(
    ctx: &mut Ctx<'_>,
    f: &Fields<'_>,
    key: &str,
    gateway_key: &str,
    has_gateway: Option<bool>,
) -> Option<Option<[u8; 6]>> {
    let path = f.child(key);
    let found = or_default(f.get(key), None, |v| {
        let m = parsed(ctx, v, &path, "a MAC address aa:bb:cc:dd:ee:ff", mac)?;
        if m[0] & 1 == 1 || m == [0; 6] {
            ctx.invalid(&path, "a unicast MAC address", format_mac(m));
            return None;
        }
        Some(Some(m))
    });
    if matches!(found, Some(Some(_))) && has_gateway == Some(false) {
        ctx.invalid(
            &path,
            format!("{key} only together with a {gateway_key}"),
            format!("no {gateway_key}"),
        );
    }
    found
}

fn kernel(ctx: &mut Ctx<'_>, v: &Value, path: &str) -> Option<Kernel> {
    let f = fields(ctx, v, path, "an exception path: name, rate", KERNEL_KEYS)?;
    let expected = "a Linux interface name: 1-15 letters, digits, '-', '_' or '.'";
    let name = required(ctx, &f, "name", expected).and_then(|v| {
        parsed(ctx, v, &f.child("name"), expected, |s| {
            let ok = (1..=15).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            ok.then(|| s.to_owned())
        })
    });
    let rate = or_default(f.get("rate"), DEFAULT_KERNEL_RATE, |v| {
        int(ctx, v, &f.child("rate"), 1, 10_000_000).map(|n| n as u32)
    });
    Some(Kernel {
        name: name?,
        rate: rate?,
    })
}

/// The appliance's own address must be a unicast host address (`not_unicast` says why it is
/// not, besides being all zeros), not its subnet's network (or, for IPv4, broadcast) address;
/// /31, /32, /127 and /128 have no such addresses.
fn host_address<A: std::fmt::Display + Copy>(
    ctx: &mut Ctx<'_>,
    path: &str,
    p: Prefix<A>,
    bits: u128,
    width: u8,
    not_unicast: Option<String>,
) -> Option<Prefix<A>> {
    let host_bits = u32::from(width - p.len);
    let mask = if host_bits == 0 {
        0
    } else {
        u128::MAX >> (128 - host_bits)
    };
    let host = bits & mask;
    let special = host_bits >= 2 && (host == 0 || (width == 32 && host == mask));
    let what = match not_unicast {
        _ if special => "a subnet's network or broadcast address".to_owned(),
        Some(why) => why,
        None if bits == 0 => "not unicast".to_owned(),
        None => return Some(p),
    };
    ctx.invalid(
        path,
        "the interface's own unicast host address with its prefix length",
        format!("{p} ({what})"),
    );
    None
}

/// The `flows:` section: every key absent takes `FlowConfig::default()`'s value.
fn flows(ctx: &mut Ctx<'_>, v: &Value, path: &str) -> Option<FlowConfig> {
    let f = fields(ctx, v, path, "flow table settings", FLOWS_KEYS)?;
    let d = FlowConfig::default();
    let capacity = or_default(f.get("capacity"), d.capacity, |v| {
        int(
            ctx,
            v,
            &f.child("capacity"),
            1,
            u64::from(MAX_FLOW_CAPACITY),
        )
        .map(|n| n as usize)
    });
    let (lo, hi) = (Duration::from_millis(1), Duration::from_secs(7 * 24 * 3600));
    let mut timeout = |key: &str, default: Duration| {
        or_default(f.get(key), default, |v| {
            duration(ctx, v, &f.child(key), lo, hi)
        })
    };
    let tcp_established_timeout = timeout("tcp_established_timeout", d.tcp_established_timeout);
    let tcp_closing_timeout = timeout("tcp_closing_timeout", d.tcp_closing_timeout);
    let tcp_syn_timeout = timeout("tcp_syn_timeout", d.tcp_syn_timeout);
    let udp_timeout = timeout("udp_timeout", d.udp_timeout);
    let max_new_flows_per_second = or_default(
        f.get("max_new_flows_per_second"),
        d.max_new_flows_per_second,
        |v| {
            int(
                ctx,
                v,
                &f.child("max_new_flows_per_second"),
                1,
                u64::from(u32::MAX),
            )
            .map(|n| n as u32)
        },
    );
    if let (Some(syn), Some(est)) = (tcp_syn_timeout, tcp_established_timeout) {
        syn_outlives_established(ctx, &f, path, syn, est);
    }
    Some(FlowConfig {
        capacity: capacity?,
        tcp_established_timeout: tcp_established_timeout?,
        tcp_closing_timeout: tcp_closing_timeout?,
        tcp_syn_timeout: tcp_syn_timeout?,
        udp_timeout: udp_timeout?,
        max_new_flows_per_second: max_new_flows_per_second?,
    })
}

/// A full table evicts the entry closest to expiry, so a SYN flood's fresh half-open entries
/// (`syn` from now) push out established flows idle for over `est - syn`: warn past `est / 2`.
fn syn_outlives_established(
    ctx: &mut Ctx<'_>,
    f: &Fields<'_>,
    path: &str,
    syn: Duration,
    est: Duration,
) {
    if syn.saturating_mul(2) <= est {
        return;
    }
    let at = match ["tcp_syn_timeout", "tcp_established_timeout"]
        .into_iter()
        .find(|k| f.get(k).is_some())
    {
        Some(key) => f.child(key),
        None => path.to_owned(),
    };
    let victims = match est.checked_sub(syn).filter(|d| !d.is_zero()) {
        Some(left) => format!("established flows idle for over {}", format_duration(left)),
        None => "every established flow".to_owned(),
    };
    ctx.warn(
        &at,
        format!(
            "a tcp_syn_timeout of at most half the tcp_established_timeout ({})",
            format_duration(est)
        ),
        format!(
            "{}: a full table evicts the entry closest to expiry, so a SYN flood's half-open entries push out {victims} first",
            format_duration(syn)
        ),
    );
}

fn metrics(ctx: &mut Ctx<'_>, v: &Value, path: &str) -> Option<Metrics> {
    let f = fields(ctx, v, path, "listen", METRICS_KEYS)?;
    let expected = "an address:port to listen on, e.g. 127.0.0.1:9610 or [::1]:9610";
    // Port 0 picks a free port (the demo and tests use it; the log says which was bound).
    let listen = or_default(f.get("listen"), DEFAULT_METRICS_LISTEN, |v| {
        parsed(ctx, v, &f.child("listen"), expected, |s| {
            s.parse::<SocketAddr>().ok()
        })
    });
    let lifecycle = or_default(f.get("lifecycle"), Lifecycle::Local, |v| {
        keyword(ctx, v, &f.child("lifecycle"), Lifecycle::ALL)
    });
    Some(Metrics {
        listen: listen?,
        lifecycle: lifecycle?,
    })
}

fn service(ctx: &mut Ctx<'_>, v: &Value, path: &str) -> Option<Service> {
    let f = fields(ctx, v, path, "a service", SERVICE_KEYS)?;
    let name = required(ctx, &f, "name", NAME).and_then(|v| name(ctx, v, &f.child("name")));
    let vip = required(ctx, &f, "vip", "an IPv4 or IPv6 address")
        .and_then(|v| unicast(ctx, v, &f.child("vip")));
    let port = required(ctx, &f, "port", "a port 0-65535, 0 = every port")
        .and_then(|v| int(ctx, v, &f.child("port"), 0, 65535))
        .map(|n| n as u16);
    let protocol = required(ctx, &f, "protocol", "tcp or udp")
        .and_then(|v| keyword(ctx, v, &f.child("protocol"), Proto::ALL));
    let hash = or_default(f.get("hash"), HashKind::FiveTuple, |v| {
        keyword(ctx, v, &f.child("hash"), HashKind::ALL)
    });
    let table_path = f.child("table_size");
    let table_size = or_default(f.get("table_size"), DEFAULT_TABLE_SIZE, |v| {
        let n = int(ctx, v, &table_path, 2, u64::from(MAX_TABLE_SIZE))? as u32;
        if !maglev::is_prime(n) {
            ctx.invalid(
                &table_path,
                "a prime number (e.g. 251, 65537, 655373)",
                n.to_string(),
            );
            return None;
        }
        Some(n)
    });
    let forwarding = or_default(f.get("forwarding"), Forwarding::Ipip, |v| {
        keyword(ctx, v, &f.child("forwarding"), Forwarding::ALL)
    });
    let local_addresses = nat::local_addresses(
        ctx,
        path,
        name.as_deref(),
        f.get("local_addresses"),
        forwarding,
        vip,
    );
    let backends_path = f.child("backends");
    let items = required(ctx, &f, "backends", "a non-empty list of backends").and_then(|v| {
        list(
            ctx,
            v,
            &backends_path,
            "a non-empty list of backends",
            false,
        )
    });
    let backends: Option<Vec<Option<Backend>>> = items.map(|items| {
        items
            .iter()
            .enumerate()
            .map(|(i, v)| backend(ctx, v, &format!("{backends_path}[{i}]")))
            .collect()
    });
    if let (Some(items), Some(backends)) = (items, &backends) {
        check_backends(ctx, &backends_path, items, backends, vip, forwarding);
        nat::check_backends(
            ctx,
            &backends_path,
            name.as_deref(),
            backends,
            vip,
            port,
            forwarding,
        );
        if let Some(size) = table_size {
            let count = backends.len() as u64;
            let at = if f.get("table_size").is_some() {
                &table_path
            } else {
                path
            };
            if u64::from(size) < count {
                ctx.invalid(
                    at,
                    format!("a table_size of at least the number of backends ({count})"),
                    size.to_string(),
                );
            } else if u64::from(size) < maglev::SLOTS_PER_BACKEND * count {
                let (want, n) = (maglev::SLOTS_PER_BACKEND * count, count as usize);
                let (expected, at_recommended) = match maglev::recommended_size(n) {
                    Some(m) => (
                        format!("a table_size of at least 100 x backends: {m}, the smallest prime >= {want}"),
                        format!(" ({:.1} at {m})", maglev::expected_excess_points(m, n)),
                    ),
                    None => (
                        format!("a table_size of at least 100 x backends ({want}), above the largest table size"),
                        String::new(),
                    ),
                };
                ctx.warn(
                    at,
                    expected,
                    format!(
                        "{size} for {count} backend{}: adding or removing a backend may move up to {:.1} points of the table beyond its own share{at_recommended}",
                        if count == 1 { "" } else { "s" },
                        maglev::expected_excess_points(size, n)
                    ),
                );
            }
        }
    }
    let health_check = or_default(f.get("health_check"), None, |v| {
        health_check(ctx, v, &f.child("health_check"), port).map(Some)
    });
    let when_all_down = or_default(f.get("when_all_down"), WhenAllDown::Drop, |v| {
        keyword(ctx, v, &f.child("when_all_down"), WhenAllDown::ALL)
    });
    Some(Service {
        name: name?,
        vip: vip?,
        port: port?,
        protocol: protocol?,
        hash: hash?,
        table_size: table_size?,
        forwarding: forwarding?,
        local_addresses: local_addresses?,
        backends: backends?.into_iter().collect::<Option<_>>()?,
        health_check: health_check?,
        when_all_down: when_all_down?,
    })
}

fn backend(ctx: &mut Ctx<'_>, v: &Value, path: &str) -> Option<Backend> {
    let f = fields(
        ctx,
        v,
        path,
        "a backend: address, weight, port",
        BACKEND_KEYS,
    )?;
    let address = required(ctx, &f, "address", "the backend's IP address")
        .and_then(|v| unicast(ctx, v, &f.child("address")));
    let weight = or_default(f.get("weight"), DEFAULT_WEIGHT, |v| {
        int(ctx, v, &f.child("weight"), 0, u64::from(MAX_WEIGHT)).map(|n| n as u32)
    });
    let port = or_default(f.get("port"), None, |v| {
        int(ctx, v, &f.child("port"), 1, 65535).map(|n| Some(n as u16))
    });
    Some(Backend {
        address: address?,
        weight: weight?,
        port: port?,
    })
}

/// Rules among one service's backends: unique addresses, VIP family for tunnels, someone to send to.
/// Addresses are read from the raw `items`, so a backend with a bad weight is still compared.
fn check_backends(
    ctx: &mut Ctx<'_>,
    path: &str,
    items: &[Value],
    backends: &[Option<Backend>],
    vip: Option<IpAddr>,
    forwarding: Option<Forwarding>,
) {
    let addresses: Vec<Option<IpAddr>> = items
        .iter()
        .map(|b| {
            b.get("address")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
        })
        .collect();
    for (i, address) in addresses.iter().enumerate() {
        let Some(address) = *address else { continue };
        let here = format!("{path}[{i}].address");
        if let Some(j) = addresses[..i].iter().position(|o| *o == Some(address)) {
            let problem = Problem::Duplicate {
                what: format!("backend {address}"),
                first: location_name(ctx, &format!("{path}[{j}]")),
            };
            ctx.report(Severity::Error, &here, At::Value, problem);
        }
        let tunnel = matches!(forwarding, Some(Forwarding::Ipip | Forwarding::Gue));
        if let (true, Some(vip)) = (tunnel, vip) {
            if vip.is_ipv4() != address.is_ipv4() {
                let family = if vip.is_ipv4() { "IPv4" } else { "IPv6" };
                let expected = format!("an {family} backend like the VIP (ipip and gue tunnel within one address family)");
                ctx.invalid(&here, expected, address.to_string());
            }
        }
    }
    let parsed: Vec<&Backend> = backends.iter().flatten().collect();
    if parsed.len() == backends.len() && parsed.iter().all(|b| b.weight == 0) {
        ctx.warn(
            path,
            "at least one backend with weight > 0",
            "every backend draining: no new flows will be accepted",
        );
    }
}

/// `services[0] (line 12)`: a path and, when known, where it is.
pub(crate) fn location_name(ctx: &Ctx<'_>, path: &str) -> String {
    match ctx.index.spot(path) {
        Some(s) => format!("{path} (line {})", s.value.line),
        None => path.to_owned(),
    }
}

/// `host` (http: the Host header) or `query` (udp-dns: the name asked for), each only for its
/// kind: what a virtual-hosted web server or an authoritative name server answers for.
fn health_host(
    ctx: &mut Ctx<'_>,
    f: &Fields<'_>,
    kind: Option<CheckKind>,
) -> Option<Option<String>> {
    let (key, wanted, expected, v): (_, _, &str, _) = match (f.get("host"), f.get("query")) {
        (Some(v), None) => (
            "host",
            CheckKind::Http,
            "a Host header value of visible ASCII",
            v,
        ),
        (None, Some(v)) => {
            let expected = "a DNS name of labels of 1 to 63 bytes, 255 bytes in all";
            ("query", CheckKind::UdpDns, expected, v)
        }
        (None, None) => return Some(None),
        (Some(_), Some(_)) => {
            let expected = "host (kind http) or query (kind udp-dns), not both";
            ctx.invalid(&f.child("query"), expected, "both");
            return None;
        }
    };
    let at = f.child(key);
    if kind.is_some_and(|k| k != wanted) {
        let expected = format!("{key} only with kind {wanted}");
        ctx.invalid(&at, expected, format!("kind {}", kind?));
        return None;
    }
    let ok = |s: &str| match key {
        "host" => !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()),
        _ => crate::health::probe::dns_query(s, 0).is_some(),
    };
    parsed(ctx, v, &at, expected, |s| ok(s).then(|| s.to_owned())).map(Some)
}

fn health_check(
    ctx: &mut Ctx<'_>,
    v: &Value,
    path: &str,
    service_port: Option<u16>,
) -> Option<HealthCheck> {
    let f = fields(ctx, v, path, "a health check", HEALTH_KEYS)?;
    let kind = or_default(f.get("kind"), CheckKind::Tcp, |v| {
        keyword(ctx, v, &f.child("kind"), CheckKind::ALL)
    });
    let port = match (f.get("port"), service_port) {
        (Some(v), _) => int(ctx, v, &f.child("port"), 1, 65535).map(|n| Some(n as u16)),
        (None, Some(0)) if kind.is_some_and(|k| k != CheckKind::None) => {
            let problem = Problem::MissingKey {
                key: "port",
                expected: "the service port is 0 = every port, so the check needs its own",
            };
            ctx.report(Severity::Error, path, At::Value, problem);
            None
        }
        // Each backend's own port (the service's unless it has one): where it listens.
        (None, _) => Some(None),
    };
    let (lo, hi) = (Duration::from_millis(10), Duration::from_secs(3600));
    let interval = or_default(f.get("interval"), DEFAULT_HEALTH_INTERVAL, |v| {
        duration(ctx, v, &f.child("interval"), lo, hi)
    });
    let timeout = or_default(f.get("timeout"), DEFAULT_HEALTH_TIMEOUT, |v| {
        duration(ctx, v, &f.child("timeout"), lo, hi)
    });
    if let (Some(i), Some(t)) = (interval, timeout) {
        if t >= i {
            let at = if f.get("timeout").is_some() {
                f.child("timeout")
            } else {
                f.child("interval")
            };
            let expected = format!(
                "a timeout shorter than the interval ({})",
                format_duration(i)
            );
            ctx.invalid(&at, expected, format!("timeout {}", format_duration(t)));
        }
    }
    let rise = or_default(f.get("rise"), DEFAULT_HEALTH_RISE, |v| {
        int(ctx, v, &f.child("rise"), 1, 100).map(|n| n as u32)
    });
    let fall = or_default(f.get("fall"), DEFAULT_HEALTH_FALL, |v| {
        int(ctx, v, &f.child("fall"), 1, 100).map(|n| n as u32)
    });
    if fall == Some(1) && kind.is_some_and(|k| k != CheckKind::None) {
        let expected = "fall of 2 or more: with 1, one lost probe (a dropped datagram, a slow \
                        answer) takes the backend out";
        ctx.warn(&f.child("fall"), expected, "fall 1");
    }
    let path_key = f.child("path");
    let http_path = or_default(f.get("path"), DEFAULT_HEALTH_PATH.to_owned(), |v| {
        // What the prober sends as is: visible ASCII only (percent-encode anything else).
        let expected =
            "an HTTP path starting with '/', of visible ASCII (no spaces; percent-encode the rest)";
        parsed(ctx, v, &path_key, expected, |s| {
            (s.starts_with('/') && s.bytes().all(|b| b.is_ascii_graphic())).then(|| s.to_owned())
        })
    });
    let host = health_host(ctx, &f, kind);
    Some(HealthCheck {
        settings: CheckSettings {
            kind: kind?,
            interval: interval?,
            timeout: timeout?,
            rise: rise?,
            fall: fall?,
            path: http_path?,
        },
        port: port?,
        host: host?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_six_hex_pairs() {
        assert_eq!(mac("02:00:00:00:00:0a"), Some([2, 0, 0, 0, 0, 10]));
        for bad in [
            "+2:00:00:00:00:00",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:00:00:00:00:00",
            "zz:00:00:00:00:00",
            "020000000000",
        ] {
            assert_eq!(mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn prefixes_need_a_length_in_range() {
        assert_eq!(
            prefix::<Ipv4Addr>("192.0.2.1/24", 32).map(|p| p.len),
            Some(24)
        );
        for bad in [
            "192.0.2.1",
            "192.0.2.1/33",
            "192.0.2.1/0",
            "192.0.2.1/+4",
            "2001:db8::1/64",
            "x/8",
        ] {
            assert!(prefix::<Ipv4Addr>(bad, 32).is_none(), "{bad}");
        }
    }
}
