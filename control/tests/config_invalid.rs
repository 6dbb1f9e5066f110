//! Invalid configs: each fails with the expected message at the expected key path and line:column.
use control::config::{check_str, load_str, ConfigError, Location, Severity};

/// A valid config (also edited by tests/cli_check.rs and controller/reload.rs's tests); the cases
/// below edit it. Lines: 1 interfaces, 2 `- name`, 3 device, 4 address, 5 gateway, 6 services,
/// 7 `- name`, 8 vip, 9 port, 10 protocol, 11 backends, 12 `- address`.
const BASE: &str = include_str!("fixtures/minimal.yaml");

/// BASE with each `(from, to)` replaced exactly once.
fn edit(edits: &[(&str, &str)]) -> String {
    let mut text = BASE.to_owned();
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
        text = text.replacen(from, to, 1);
    }
    text
}

fn append(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// Another service on the same VIP, at lines 13-19.
fn second_service(name: &str, port: u16) -> String {
    append(&format!(
        "  - name: {name}\n    vip: 198.51.100.10\n    port: {port}\n    protocol: tcp\n    backends:\n      - address: 203.0.113.12\n"
    ))
}

/// BASE as a fullnat service with `local_addresses: [locals]` on line 12 (value at column 22),
/// and a flow capacity one local address has ports for.
fn fullnat(locals: &str) -> String {
    edit(&[(
        "    protocol: tcp\n",
        &format!("    protocol: tcp\n    forwarding: fullnat\n    local_addresses: [{locals}]\n"),
    )]) + "flows:\n  capacity: 1000\n"
}

struct Case {
    name: &'static str,
    text: String,
    message: &'static str,
    path: &'static str,
    at: Option<(usize, usize)>,
}

fn case(
    name: &'static str,
    text: String,
    message: &'static str,
    path: &'static str,
    at: (usize, usize),
) -> Case {
    Case {
        name,
        text,
        message,
        path,
        at: Some(at),
    }
}

fn cases() -> Vec<Case> {
    vec![
        case("unknown top-level key", append("colour: blue\n"), "unknown key `colour`, expected one of: dpdk, interfaces", "colour", (13, 1)),
        case(
            "misspelt service key",
            edit(&[("    protocol: tcp\n", "    protocol: tcp\n    protcol: udp\n")]),
            "unknown key `protcol`",
            "services[0].protcol",
            (11, 5),
        ),
        case(
            "table size not prime",
            edit(&[("    port: 443\n", "    port: 443\n    table_size: 65536\n")]),
            "expected a prime number (e.g. 251, 65537, 655373), got 65536",
            "services[0].table_size",
            (10, 17),
        ),
        case(
            "table size above the maximum",
            edit(&[("    port: 443\n", "    port: 443\n    table_size: 16777259\n")]),
            "expected an integer from 2 to 16777216, got 16777259",
            "services[0].table_size",
            (10, 17),
        ),
        case(
            "table smaller than the backends",
            edit(&[
                ("    port: 443\n", "    port: 443\n    table_size: 2\n"),
                ("      - address: 203.0.113.11\n", "      - address: 203.0.113.11\n      - address: 203.0.113.12\n      - address: 203.0.113.13\n"),
            ]),
            "expected a table_size of at least the number of backends (3), got 2",
            "services[0].table_size",
            (10, 17),
        ),
        case("port out of range", edit(&[("port: 443", "port: 70000")]), "expected an integer from 0 to 65535, got 70000", "services[0].port", (9, 11)),
        case("unknown protocol", edit(&[("protocol: tcp", "protocol: sctp")]), "expected one of tcp, udp, got \"sctp\"", "services[0].protocol", (10, 15)),
        case("missing vip", edit(&[("    vip: 198.51.100.10\n", "")]), "missing required key `vip`", "services[0]", (7, 5)),
        case("bad vip", edit(&[("vip: 198.51.100.10", "vip: 198.51.100.300")]), "expected an IPv4 or IPv6 address, got \"198.51.100.300\"", "services[0].vip", (8, 10)),
        case("multicast vip", edit(&[("vip: 198.51.100.10", "vip: 239.1.2.3")]), "expected a unicast address, got 239.1.2.3", "services[0].vip", (8, 10)),
        case(
            "no backends",
            edit(&[("    backends:\n      - address: 203.0.113.11\n", "    backends: []\n")]),
            "expected a non-empty list of backends, got an empty list",
            "services[0].backends",
            (11, 15),
        ),
        case(
            "duplicate backend",
            append("      - address: 203.0.113.11\n"),
            "duplicate backend 203.0.113.11, first defined at services[0].backends[0] (line 12)",
            "services[0].backends[1].address",
            (13, 18),
        ),
        case("weight out of range", append("        weight: 2000000\n"), "expected an integer from 0 to 1000000, got 2000000", "services[0].backends[0].weight", (13, 17)),
        case("negative weight", append("        weight: -1\n"), "expected an integer from 0 to 1000000, got -1", "services[0].backends[0].weight", (13, 17)),
        case(
            "duplicate service",
            second_service("web2", 443),
            "duplicate service 198.51.100.10:443/tcp, first defined at services[0] (line 7)",
            "services[1].port",
            (15, 11),
        ),
        case(
            "port 0 overlaps another service",
            second_service("all", 0),
            "duplicate service 198.51.100.10:0/tcp (overlaps 198.51.100.10:443/tcp: port 0 is every port)",
            "services[1].port",
            (15, 11),
        ),
        case(
            "IPv4-mapped VIP",
            edit(&[("vip: 198.51.100.10", "vip: \"::ffff:198.51.100.10\"")]),
            "expected 198.51.100.10 written as IPv4, not IPv4-mapped IPv6, got ::ffff:198.51.100.10",
            "services[0].vip",
            (8, 10),
        ),
        case("duplicate service name", second_service("web", 80), "duplicate service name \"web\", first defined at services[0]", "services[1].name", (13, 11)),
        case(
            "IPv6 backend behind an IPv4 VIP",
            edit(&[("address: 203.0.113.11", "address: 2001:db8::11")]),
            "expected an IPv4 backend like the VIP (ipip and gue tunnel within one address family), got 2001:db8::11",
            "services[0].backends[0].address",
            (12, 18),
        ),
        case(
            "l2-dsr backend off-link",
            edit(&[("    port: 443\n", "    port: 443\n    forwarding: l2-dsr\n")]),
            "expected an on-link backend for l2-dsr",
            "services[0].backends[0].address",
            (13, 18),
        ),
        case(
            "off-link backend without a gateway",
            edit(&[("    gateway: 192.0.2.1\n", "")]),
            "expected an on-link backend, or an interface with an IPv4 gateway (gateway) to reach it, got 203.0.113.11",
            "services[0].backends[0].address",
            (11, 18),
        ),
        case(
            "off-link IPv6 backend with only an IPv4 gateway",
            edit(&[
                ("    address: 192.0.2.10/24\n", "    address: 192.0.2.10/24\n    address6: 2001:db8::10/64\n"),
                ("vip: 198.51.100.10", "vip: 2001:db8::80"),
                ("address: 203.0.113.11", "address: 2001:db8:1::11"),
            ]),
            "expected an on-link backend, or an interface with an IPv6 gateway (gateway6) to reach it, got 2001:db8:1::11",
            "services[0].backends[0].address",
            (13, 18),
        ),
        case(
            "IPv6 VIP without address6",
            edit(&[("vip: 198.51.100.10", "vip: 2001:db8::80"), ("address: 203.0.113.11", "address: 2001:db8:1::11")]),
            "expected an interface with address6 to serve an IPv6 VIP, got none has one",
            "services[0].vip",
            (8, 10),
        ),
        case("VIP is the interface's own address", edit(&[("vip: 198.51.100.10", "vip: 192.0.2.10")]), "expected a VIP other than interface uplink's own address", "services[0].vip", (8, 10)),
        case(
            "duration without a unit",
            append("flows:\n  udp_timeout: 30\n"),
            "expected a duration: an integer with a unit ms, s, m or h (e.g. 300ms, 2s, 5m), got 30",
            "flows.udp_timeout",
            (14, 16),
        ),
        case("duration with an unknown unit", append("flows:\n  tcp_established_timeout: 2d\n"), "expected a duration", "flows.tcp_established_timeout", (14, 28)),
        case("zero flow capacity", append("flows:\n  capacity: 0\n"), "expected an integer from 1 to 134217728, got 0", "flows.capacity", (14, 13)),
        case(
            "health timeout not below interval",
            append("    health_check:\n      interval: 1s\n      timeout: 1s\n"),
            "expected a timeout shorter than the interval (1s), got timeout 1s",
            "services[0].health_check.timeout",
            (15, 16),
        ),
        case("health rise of 0", append("    health_check:\n      rise: 0\n"), "expected an integer from 1 to 100, got 0", "services[0].health_check.rise", (14, 13)),
        case(
            "http path without a slash",
            append("    health_check:\n      kind: http\n      path: healthz\n"),
            "expected an HTTP path starting with '/'",
            "services[0].health_check.path",
            (15, 13),
        ),
        case(
            "http path with a non-ASCII character",
            append("    health_check:\n      kind: http\n      path: /sant\u{e9}\n"),
            "expected an HTTP path starting with '/', of visible ASCII",
            "services[0].health_check.path",
            (15, 13),
        ),
        case(
            "http Host with a space",
            append("    health_check:\n      kind: http\n      host: a b\n"),
            "expected a Host header value of visible ASCII, got \"a b\"",
            "services[0].health_check.host",
            (15, 13),
        ),
        case(
            "a Host header for a tcp check",
            append("    health_check:\n      kind: tcp\n      host: www.example.org\n"),
            "expected host only with kind http, got kind tcp",
            "services[0].health_check.host",
            (15, 13),
        ),
        case(
            "a DNS query name for an http check",
            append("    health_check:\n      kind: http\n      query: example.org\n"),
            "expected query only with kind udp-dns, got kind http",
            "services[0].health_check.query",
            (15, 14),
        ),
        case(
            "a DNS query name with an empty label",
            append("    health_check:\n      kind: udp-dns\n      query: example..org\n"),
            "expected a DNS name of labels of 1 to 63 bytes, 255 bytes in all, got \"example..org\"",
            "services[0].health_check.query",
            (15, 14),
        ),
        case(
            "both host and query",
            append("    health_check:\n      kind: http\n      host: a\n      query: b\n"),
            "expected host (kind http) or query (kind udp-dns), not both, got both",
            "services[0].health_check.query",
            (16, 14),
        ),
        case(
            "a checked IPv6 link-local backend",
            edit(&[
                ("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    address6: 2001:db8::10/64\n    gateway6: 2001:db8::1\n"),
                ("vip: 198.51.100.10", "vip: 2001:db8:ffff::10"),
                ("203.0.113.11", "fe80::11"),
            ]) + "    health_check:\n      kind: tcp\n",
            "expected a backend address a health probe can reach (not link-local",
            "services[0].backends[0].address",
            (14, 18),
        ),
        case(
            "an IPv6 link below 1280 bytes",
            edit(&[("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    address6: 2001:db8::10/64\n    mtu: 1279\n")]),
            "expected an mtu of at least 1280 on a link with address6, got mtu 1279",
            "interfaces[0].mtu",
            (7, 10),
        ),
        case(
            "health check with no port for a port-0 service",
            edit(&[("port: 443", "port: 0")]) + "    health_check:\n      kind: tcp\n",
            "missing required key `port` (the service port is 0 = every port",
            "services[0].health_check",
            (14, 7),
        ),
        case("unknown health kind", append("    health_check:\n      kind: icmp\n"), "expected one of tcp, http, udp-dns, none, got \"icmp\"", "services[0].health_check.kind", (14, 13)),
        case("mtu out of range", edit(&[("    device: net_memif0\n", "    device: net_memif0\n    mtu: 20000\n")]), "expected an integer from 68 to 9702, got 20000", "interfaces[0].mtu", (4, 10)),
        case("address without a prefix", edit(&[("address: 192.0.2.10/24", "address: 192.0.2.10")]), "expected an IPv4 address with a prefix length 1-32", "interfaces[0].address", (4, 14)),
        case(
            "gateway off the interface's prefix",
            edit(&[("gateway: 192.0.2.1", "gateway: 198.51.100.1")]),
            "expected an on-link next hop other than the interface's own address (192.0.2.10/24), got 198.51.100.1",
            "interfaces[0].gateway",
            (5, 14),
        ),
        case(
            "malformed gateway MAC",
            edit(&[("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    gateway_mac: 02-00-00-00-00-01\n")]),
            "expected a MAC address aa:bb:cc:dd:ee:ff, got \"02-00-00-00-00-01\"",
            "interfaces[0].gateway_mac",
            (6, 18),
        ),
        case(
            "gateway MAC without a gateway",
            edit(&[("    gateway: 192.0.2.1\n", "    gateway_mac: \"02:00:00:00:00:01\"\n"), ("address: 203.0.113.11", "address: 192.0.2.11")]),
            "expected gateway_mac only together with a gateway",
            "interfaces[0].gateway_mac",
            (5, 18),
        ),
        case(
            "gateway6 off the interface's address6 prefix",
            edit(&[("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    address6: 2001:db8::10/64\n    gateway6: 2001:db8:1::1\n")]),
            "expected an on-link next hop other than the interface's own address (2001:db8::10/64), got 2001:db8:1::1",
            "interfaces[0].gateway6",
            (7, 15),
        ),
        case(
            "gateway6 that is the interface's own address6",
            edit(&[("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    address6: 2001:db8::10/64\n    gateway6: 2001:db8::10\n")]),
            "expected an on-link next hop other than the interface's own address (2001:db8::10/64), got 2001:db8::10",
            "interfaces[0].gateway6",
            (7, 15),
        ),
        case(
            "gateway6 without address6",
            edit(&[("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    gateway6: 2001:db8::1\n")]),
            "expected an IPv6 next hop inside the interface's address6, got 2001:db8::1 (the interface has no address6)",
            "interfaces[0].gateway6",
            (6, 15),
        ),
        case(
            "gateway6 that is IPv4",
            edit(&[("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    gateway6: 192.0.2.2\n")]),
            "expected an IPv6 address (an IPv4 next hop goes in gateway), got 192.0.2.2",
            "interfaces[0].gateway6",
            (6, 15),
        ),
        case(
            "gateway6 MAC without a gateway6",
            edit(&[("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    gateway6_mac: \"02:00:00:00:00:01\"\n")]),
            "expected gateway6_mac only together with a gateway6, got no gateway6",
            "interfaces[0].gateway6_mac",
            (6, 19),
        ),
        case(
            "malformed gateway6 MAC",
            edit(&[("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    address6: 2001:db8::10/64\n    gateway6: 2001:db8::1\n    gateway6_mac: 02:00:00:00:00\n")]),
            "expected a MAC address aa:bb:cc:dd:ee:ff, got \"02:00:00:00:00\"",
            "interfaces[0].gateway6_mac",
            (8, 19),
        ),
        case(
            "two IPv6 gateways: an IPv6 gateway and a gateway6",
            edit(&[
                ("    gateway: 192.0.2.1\n", "    address6: 2001:db8::10/64\n    gateway: 2001:db8::1\n    gateway6: 2001:db8::2\n"),
                ("address: 203.0.113.11", "address: 192.0.2.11"),
            ]),
            "duplicate IPv6 gateway 2001:db8::2 (one per address family: IPv4 in gateway, IPv6 in gateway6), first defined at interfaces[0].gateway (line 6)",
            "interfaces[0].gateway6",
            (7, 15),
        ),
        case(
            "off-link IPv6 backend with gateway6 on no interface",
            edit(&[
                ("    address: 192.0.2.10/24\n", "    address: 192.0.2.10/24\n    address6: 2001:db8::10/64\n"),
                ("services:\n", "  - name: downlink\n    device: net_memif1\n    address: 198.51.100.2/24\n    address6: 2001:db8:7::2/64\nservices:\n"),
                ("vip: 198.51.100.10", "vip: 2001:db8::80"),
                ("address: 203.0.113.11", "address: 2001:db8:1::11"),
            ]),
            "expected an on-link backend, or an interface with an IPv6 gateway (gateway6) to reach it, got 2001:db8:1::11",
            "services[0].backends[0].address",
            (17, 18),
        ),
        case(
            "duplicate interface name",
            edit(&[("services:\n", "  - name: uplink\n    device: net_memif1\n    address: 198.51.100.2/24\nservices:\n")]),
            "duplicate interface name \"uplink\", first defined at interfaces[0] (line 2)",
            "interfaces[1].name",
            (6, 11),
        ),
        case(
            "duplicate device",
            edit(&[("services:\n", "  - name: downlink\n    device: net_memif0\n    address: 198.51.100.2/24\nservices:\n")]),
            "duplicate device \"net_memif0\"",
            "interfaces[1].device",
            (7, 13),
        ),
        case(
            "bad interface address",
            edit(&[("address: 192.0.2.10/24", "address: 192.0.2.0/24")]),
            "expected the interface's own unicast host address with its prefix length, got 192.0.2.0/24 (a subnet's network or broadcast address)",
            "interfaces[0].address",
            (4, 14),
        ),
        case(
            "the broadcast address as an interface address",
            edit(&[(
                "    address: 192.0.2.10/24\n    gateway: 192.0.2.1\n",
                "    address: 255.255.255.255/32\n  - name: downlink\n    device: net_memif1\n    address: 192.0.2.10/24\n    gateway: 192.0.2.1\n",
            )]),
            "expected the interface's own unicast host address with its prefix length, got 255.255.255.255/32 (the broadcast address)",
            "interfaces[0].address",
            (4, 14),
        ),
        case(
            "an IPv4-mapped address6",
            edit(&[("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    address6: ::ffff:192.0.2.5/64\n")]),
            "expected the interface's own unicast host address with its prefix length, got ::ffff:192.0.2.5/64 (IPv4-mapped IPv6: 192.0.2.5 belongs in `address`, written as IPv4)",
            "interfaces[0].address6",
            (6, 15),
        ),
        case(
            "one PCI device written two ways",
            edit(&[
                ("device: net_memif0", "device: \"0000:3b:00.0\""),
                ("services:\n", "  - name: downlink\n    device: 3B:00.0\n    address: 198.51.100.2/24\nservices:\n"),
            ]),
            "duplicate device \"3B:00.0\" (PCI address 0000:3b:00.0), first defined at interfaces[0] (line 2)",
            "interfaces[1].device",
            (7, 13),
        ),
        case(
            "more queues than worker lcores",
            format!("dpdk:\n  args: [-l, 0-1]\n{}", edit(&[("    device: net_memif0\n", "    device: net_memif0\n    queues: 2\n")])),
            "expected at least 2 worker lcores, one per queue (uplink 2), got 1 (lcores 0-1 minus main lcore 0)",
            "dpdk.args[1]",
            (2, 14),
        ),
        case("main lcore outside the core list", format!("dpdk:\n  args: [-l, 1-2, --main-lcore, 0]\n{BASE}"), "expected a main lcore from the core list 1-2, got 0", "dpdk.args[3]", (2, 33)),
        case("bad metrics listen address", append("metrics:\n  listen: localhost:9610\n"), "expected an address:port to listen on", "metrics.listen", (14, 11)),
        case("announce without an exception path", append("announce:\n  table: 100\n"), "expected an interface with a `kernel` (exception path)", "announce", (14, 3)),
        case("announce into the main table", append("announce:\n  table: 254\n"), "expected a kernel routing table 1-4294967295 other than 253-255", "announce.table", (14, 10)),
        case("kernel interface name too long", edit(&[("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    kernel:\n      name: a-name-of-16-chr\n")]), "expected a Linux interface name", "interfaces[0].kernel.name", (7, 13)),
        case("service name with a space", edit(&[("name: web", "name: web front")]), "expected a name of 1-64 letters, digits", "services[0].name", (7, 11)),
        case("interfaces is not a list", "interfaces: eth0\nservices: []\n".to_owned(), "expected a non-empty list of interfaces, got \"eth0\"", "interfaces", (1, 13)),
        case("missing interfaces", "services: []\n".to_owned(), "missing required key `interfaces`", "", (1, 1)),
        case("string where a number belongs", edit(&[("port: 443", "port: \"443\"")]), "expected an integer from 0 to 65535, got \"443\"", "services[0].port", (9, 11)),
        case(
            "fullnat without local addresses",
            edit(&[("    protocol: tcp\n", "    protocol: tcp\n    forwarding: fullnat\n")]),
            "expected fullnat together with local_addresses",
            "services[0].forwarding",
            (11, 17),
        ),
        case(
            "local addresses for a DSR service",
            edit(&[("    protocol: tcp\n", "    protocol: tcp\n    local_addresses: [192.0.2.200]\n")]),
            "expected local_addresses only with forwarding: fullnat, got local_addresses with forwarding ipip",
            "services[0].local_addresses",
            (11, 5),
        ),
        case(
            "a local address that is a VIP",
            fullnat("198.51.100.10"),
            "expected a local address that is no VIP (it is service web's, services[0]), got 198.51.100.10",
            "services[0].local_addresses[0]",
            (12, 23),
        ),
        case(
            "a local address that is the interface's own",
            fullnat("192.0.2.10"),
            "expected a local address other than interface uplink's own address",
            "services[0].local_addresses[0]",
            (12, 23),
        ),
        case(
            "a local address that is the interface's gateway",
            fullnat("192.0.2.1"),
            "expected a local address other than interface uplink's gateway (sluice answers ARP and neighbour solicitations for its local addresses), got 192.0.2.1",
            "services[0].local_addresses[0]",
            (12, 23),
        ),
        case(
            "a local address that is a backend",
            fullnat("203.0.113.11"),
            "expected a local address that is no backend's (it is a backend of service web, services[0]; sluice answers ARP and neighbour solicitations for its local addresses), got 203.0.113.11",
            "services[0].local_addresses[0]",
            (12, 23),
        ),
        case(
            "a local address twice in one service",
            fullnat("192.0.2.200, 192.0.2.200"),
            "duplicate local address 192.0.2.200, first defined at services[0].local_addresses[0] (line 12)",
            "services[0].local_addresses[1]",
            (12, 36),
        ),
        case(
            "nat to a backend of the other family",
            edit(&[
                ("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    address6: 2001:db8::10/64\n"),
                ("    protocol: tcp\n", "    protocol: tcp\n    forwarding: nat\n"),
                ("address: 203.0.113.11", "address: 2001:db8::11"),
            ]),
            "expected an IPv4 backend like service web's VIP 198.51.100.10 (nat keeps the client's address as the source, so both ends are of one family), got IPv6 backend 2001:db8::11",
            "services[0].backends[0].address",
            (14, 18),
        ),
        case(
            // The dataplane refuses it (NatFamilyMismatch): there is no family translation.
            "fullnat to a backend of the other family, with a local address of its family",
            edit(&[
                ("    gateway: 192.0.2.1\n", "    gateway: 192.0.2.1\n    address6: 2001:db8::10/64\n"),
                ("    protocol: tcp\n", "    protocol: tcp\n    forwarding: fullnat\n    local_addresses: [192.0.2.200, 2001:db8::200]\n"),
                ("address: 203.0.113.11", "address: 2001:db8::11"),
            ]) + "flows:\n  capacity: 1000\n",
            "expected an IPv4 backend like service web's VIP 198.51.100.10 (fullnat translates within one address family: no NAT46/NAT64), got IPv6 backend 2001:db8::11",
            "services[0].backends[0].address",
            (15, 18),
        ),
        case(
            "fullnat with no local address of the VIP's family",
            fullnat("2001:db8::200"),
            "expected an IPv4 local address, the family of service web's VIP 198.51.100.10 (fullnat sends to its backends, all IPv4 like the VIP, from a local address of their family), got only IPv6: 2001:db8::200",
            "services[0].local_addresses",
            (12, 22),
        ),
        case(
            "too few local addresses for the flow capacity",
            edit(&[("    protocol: tcp\n", "    protocol: tcp\n    forwarding: fullnat\n    local_addresses: [192.0.2.200]\n")]),
            "expected at least 9 IPv4 local addresses for flows.capacity 1048576 (a connection takes two flow entries and one of the 64512 ports 1024-65535 of a local address: 524288 connections need 9), or a smaller flows.capacity, got 1 IPv4 local address",
            "services[0].local_addresses",
            (12, 22),
        ),
        case(
            "too few local addresses for the flow capacity on two workers",
            edit(&[
                ("    device: net_memif0\n", "    device: net_memif0\n    queues: 2\n"),
                ("    protocol: tcp\n", "    protocol: tcp\n    forwarding: fullnat\n    local_addresses: [192.0.2.200]\n"),
            ]) + "flows:\n  capacity: 100000\n",
            "expected at least 2 IPv4 local addresses for flows.capacity 100000 (a connection takes two flow entries and one of the 64512 ports 1024-65535 of a local address (32256 of them on each of 2 workers): 50000 connections need 2), or a smaller flows.capacity, got 1 IPv4 local address",
            "services[0].local_addresses",
            (13, 22),
        ),
        case(
            "a backend port with DSR forwarding",
            append("        port: 8443\n"),
            "expected no backend port with ipip forwarding (the backend answers from the VIP's own port; nat or fullnat can change it), got 8443",
            "services[0].backends[0].port",
            (13, 15),
        ),
        case(
            "a backend port on a service of every port",
            edit(&[("port: 443", "port: 0"), ("    protocol: tcp\n", "    protocol: tcp\n    forwarding: nat\n")]) + "        port: 8443\n",
            "expected no backend port: the service's port 0 balances every port, each kept as the client sent it, got 8443",
            "services[0].backends[0].port",
            (14, 15),
        ),
        case(
            "a backend port of 0",
            edit(&[("    protocol: tcp\n", "    protocol: tcp\n    forwarding: nat\n")]) + "        port: 0\n",
            "expected an integer from 1 to 65535, got 0",
            "services[0].backends[0].port",
            (14, 15),
        ),
        case("YAML syntax error", edit(&[("    port: 443\n", "    port: [443\n")]), "invalid YAML: did not find expected ',' or ']'", "", (10, 13)),
        case("tab indentation", "interfaces:\n\t- name: uplink\n".to_owned(), "invalid YAML: found character that cannot start any token, while scanning", "", (2, 1)),
        case("non-string key", append("7: 2\n"), "expected string keys, got the key 7", "", (13, 1)),
        case("merge of a scalar", edit(&[("    port: 443\n", "    port: 443\n    <<: 7\n")]), "invalid YAML: expected a mapping", "", (10, 5)),
        case("duplicate key", edit(&[("    port: 443\n", "    port: 443\n    port: 80\n")]), "invalid YAML: services[0]: duplicate entry with key \"port\"", "", (7, 5)),
    ]
}

fn describe(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("  {e}\n")).collect()
}

#[test]
fn the_base_config_is_valid() {
    let checked = check_str(BASE, "base.yaml");
    assert!(checked.result.is_ok(), "{:?}", checked.result);
}

#[test]
fn each_invalid_config_fails_with_its_message_path_and_location() {
    let cases = cases();
    assert!(cases.len() >= 20);
    let mut failures = String::new();
    for c in &cases {
        let errors = match load_str(&c.text, "bad.yaml") {
            Ok(_) => {
                failures += &format!("{}: loaded, expected an error\n", c.name);
                continue;
            }
            Err(e) => e.0,
        };
        let matching = errors.iter().find(|e| e.to_string().contains(c.message));
        let Some(e) = matching else {
            failures += &format!(
                "{}: no error contains {:?}; got:\n{}",
                c.name,
                c.message,
                describe(&errors)
            );
            continue;
        };
        let at = e.location.map(|l| (l.line, l.column));
        if e.path != c.path || at != c.at || e.severity != Severity::Error {
            failures += &format!(
                "{}: expected {} at {:?}, got {} at {:?}\n",
                c.name, c.path, c.at, e.path, at
            );
        }
        if errors.len() != 1 {
            failures += &format!(
                "{}: expected exactly one error, got:\n{}",
                c.name,
                describe(&errors)
            );
        }
    }
    assert!(failures.is_empty(), "\n{failures}");
}

#[test]
fn errors_render_as_file_line_column_path_message() {
    let errors = load_str(&edit(&[("port: 443", "port: 70000")]), "sluice.yaml").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "sluice.yaml:9:11: services[0].port: expected an integer from 0 to 65535, got 70000"
    );
}

#[test]
fn every_error_in_one_file_is_reported_in_text_order() {
    // Duplicates are found even when the items involved have other errors (lines 19-22).
    let text = "\
dpdk:
  mbufs: 0
interfaces:
  - name: uplink
    device: net_memif0
    address: 192.0.2.10/24
    gateway: 192.0.2.1
    speed: 100G
flows:
  udp_timeout: 30
services:
  - name: web
    vip: 198.51.100.10
    port: 443
    protocol: tcp
    table_size: 1000
    backends:
      - address: 203.0.113.11
        weight: -1
      - address: 203.0.113.11
  - name: web
    vip: 198.51.100.300
    port: 53
    protocol: udp
    backends:
      - address: 203.0.113.20
        weight: lots
metrics:
  listen: nowhere
";
    let errors = load_str(text, "many.yaml").unwrap_err();
    let got: Vec<(String, Option<Location>)> = errors
        .iter()
        .map(|e| (e.path.clone(), e.location))
        .collect();
    let expected = [
        ("dpdk.mbufs", 2, 10),
        ("interfaces[0].speed", 8, 5),
        ("flows.udp_timeout", 10, 16),
        ("services[0].table_size", 16, 17),
        ("services[0].backends[0].weight", 19, 17),
        ("services[0].backends[1].address", 20, 18),
        ("services[1].name", 21, 11),
        ("services[1].vip", 22, 10),
        ("services[1].backends[0].weight", 27, 17),
        ("metrics.listen", 29, 11),
    ];
    let expected: Vec<(String, Option<Location>)> = expected
        .iter()
        .map(|&(p, line, column)| (p.to_owned(), Some(Location { line, column })))
        .collect();
    assert_eq!(got, expected, "\n{errors}");
}

#[test]
fn a_pci_device_outside_the_eal_allow_list_is_a_warning() {
    let text = format!(
        "dpdk:\n  args: [-a, '3b:00.0,txq_inline=128', --allow=0000:5e:00.1]\n{}",
        edit(&[("device: net_memif0", "device: 0000:3B:00.1")])
    );
    let checked = check_str(&text, "allow.yaml");
    assert!(checked.result.is_ok(), "{:?}", checked.result);
    let warnings: Vec<String> = checked.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["allow.yaml:5:13: warning: interfaces[0].device: expected a PCI device in the EAL allow list (0000:3b:00.0, 0000:5e:00.1), got 0000:3B:00.1 (DPDK will not probe it)"]
    );
    let listed = text.replace("0000:5e:00.1", "0000:3b:00.1");
    assert_eq!(check_str(&listed, "allow.yaml").warnings, vec![]);
}

#[test]
fn warnings_do_not_fail_the_load() {
    let text =
        edit(&[("    port: 443\n", "    port: 443\n    table_size: 13\n")]) + "        weight: 0\n";
    let checked = check_str(&text, "warn.yaml");
    assert!(checked.result.is_ok(), "{:?}", checked.result);
    let warnings: Vec<String> = checked.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "warn.yaml:10:17: warning: services[0].table_size: expected a table_size of at least 100 x backends: 101, the smallest prime >= 100, got 13 for 1 backend: adding or removing a backend may move up to 11.1 points of the table beyond its own share (4.0 at 101)",
            "warn.yaml:13:7: warning: services[0].backends: expected at least one backend with weight > 0, got every backend draining: no new flows will be accepted",
        ]
    );
}

/// Below 100 slots per backend, the warning gives the figure: the recommended prime and the
/// disruption expected at both sizes; at the service when table_size is the default, and
/// nothing from 100 x backends on.
#[test]
fn small_table_warns_with_the_recommended_prime_and_the_disruption() {
    let backends: String = (12..22)
        .map(|i| format!("      - address: 203.0.113.{i}\n"))
        .collect();
    let text = edit(&[
        ("    port: 443\n", "    port: 443\n    table_size: 251\n"),
        ("      - address: 203.0.113.11\n", &backends),
    ]);
    let checked = check_str(&text, "small.yaml");
    assert!(checked.result.is_ok(), "{:?}", checked.result);
    let warnings: Vec<String> = checked.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["small.yaml:10:17: warning: services[0].table_size: expected a table_size of at least 100 x backends: 1009, the smallest prime >= 1000, got 251 for 10 backends: adding or removing a backend may move up to 8.0 points of the table beyond its own share (4.0 at 1009)"]
    );
    let enough = text.replace("table_size: 251", "table_size: 1009");
    assert_eq!(check_str(&enough, "small.yaml").warnings, vec![]);
    let just_below = text.replace("table_size: 251", "table_size: 997");
    assert_eq!(check_str(&just_below, "small.yaml").warnings.len(), 1);
    // The default size (65537) for 700 backends: the warning points at the service.
    let many: String = (0..700)
        .map(|i| format!("      - address: 2001:db8::{i:x}\n"))
        .collect();
    let text = edit(&[("      - address: 203.0.113.11\n", &many)]);
    let warnings: Vec<String> = check_str(&text, "many.yaml")
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        warnings,
        ["many.yaml:7:5: warning: services[0]: expected a table_size of at least 100 x backends: 70001, the smallest prime >= 70000, got 65537 for 700 backends: adding or removing a backend may move up to 4.1 points of the table beyond its own share (4.0 at 70001)"]
    );
}

/// A SYN timeout past half the established one: a flood's half-open entries would outlive (and
/// so push out) idle established flows; the warning says which, at the key that was set.
#[test]
fn syn_timeout_near_the_established_one_warns() {
    let warnings = |extra: &str| -> Vec<String> {
        let checked = check_str(&append(extra), "syn.yaml");
        assert!(checked.result.is_ok(), "{:?}", checked.result);
        checked.warnings.iter().map(ToString::to_string).collect()
    };
    assert_eq!(
        warnings("flows:\n  tcp_syn_timeout: 3m\n"),
        ["syn.yaml:14:20: warning: flows.tcp_syn_timeout: expected a tcp_syn_timeout of at most half the tcp_established_timeout (5m), got 3m: a full table evicts the entry closest to expiry, so a SYN flood's half-open entries push out established flows idle for over 2m first"]
    );
    assert_eq!(
        warnings("flows:\n  tcp_established_timeout: 5s\n"),
        ["syn.yaml:14:28: warning: flows.tcp_established_timeout: expected a tcp_syn_timeout of at most half the tcp_established_timeout (5s), got 5s: a full table evicts the entry closest to expiry, so a SYN flood's half-open entries push out every established flow first"]
    );
    assert!(warnings("flows:\n  tcp_syn_timeout: 150s\n").is_empty());
    assert!(warnings("flows:\n  udp_timeout: 1h\n").is_empty());
}

/// A pipe has no size to check first (`sluice check -c <(envsubst < t.yaml)`): it is read up
/// to the limit and refused there, not read to its end whatever its length.
#[test]
fn a_config_stream_is_read_no_further_than_the_size_limit() {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let dir = std::env::temp_dir().join(format!("sluice-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("endless.yaml");
    let _ = std::fs::remove_file(&fifo);
    let name = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    const OFFERED: usize = 64 << 20;
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let chunk = vec![b'#'; 64 << 10];
        let mut sent = 0;
        while sent < OFFERED {
            match w.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let errors = control::config::load_file(&fifo).unwrap_err();
    let sent = writer.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = errors.to_string();
    assert!(text.contains("larger than the limit"), "{text}");
    assert!(
        sent < 2 * control::config::MAX_CONFIG_BYTES,
        "read {sent} bytes of a stream, limit {}",
        control::config::MAX_CONFIG_BYTES
    );
}

/// Two interfaces on overlapping prefixes: a warning at the later one's address, naming the
/// earlier, either family; none for disjoint prefixes.
#[test]
fn overlapping_interface_prefixes_are_a_warning() {
    let second = |address: &str, address6: &str| {
        edit(&[(
            "    gateway: 192.0.2.1\n",
            &format!(
                "    gateway: 192.0.2.1\n    address6: 2001:db8::10/64\n  - name: second\n    device: net_memif1\n    address: {address}\n    address6: {address6}\n"
            ),
        )])
    };
    let checked = check_str(&second("192.0.2.200/25", "2001:db8:1::10/64"), "two.yaml");
    assert!(checked.result.is_ok(), "{:?}", checked.result);
    let warnings: Vec<String> = checked.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["two.yaml:9:14: warning: interfaces[1].address: expected an on-link prefix no other interface holds, got 192.0.2.200/25, which overlaps interfaces[0] (uplink) 192.0.2.10/24: a next hop in both is resolved and reached through uplink only"]
    );
    let v6 = check_str(&second("198.51.100.20/24", "2001:db8::20/48"), "two.yaml");
    let warnings: Vec<String> = v6.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("interfaces[1].address6"),
        "{warnings:?}"
    );
    assert!(
        warnings[0]
            .contains("2001:db8::20/48, which overlaps interfaces[0] (uplink) 2001:db8::10/64"),
        "{warnings:?}"
    );
    let apart = check_str(&second("198.51.100.20/24", "2001:db8:1::10/64"), "two.yaml");
    assert!(apart.result.is_ok(), "{:?}", apart.result);
    assert_eq!(apart.warnings, vec![]);
}
