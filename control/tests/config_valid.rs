//! Valid configs load into the typed values and documented defaults.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use control::config::*;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn the_design_example_loads_with_its_values() {
    let checked = check_file(&fixture("design-example.yaml"));
    assert_eq!(checked.warnings, vec![], "the example has no warnings");
    let c = checked.result.unwrap();
    assert_eq!(
        c.dpdk.args,
        ["-l", "0-2", "--main-lcore", "0", "-a", "0000:3b:00.0"]
    );
    assert_eq!(c.dpdk.mbufs, 16383);

    let i = &c.interfaces[..];
    assert_eq!(i.len(), 1);
    assert_eq!(
        (i[0].name.as_str(), i[0].device.as_str()),
        ("uplink", "0000:3b:00.0")
    );
    assert_eq!((i[0].queues, i[0].mtu), (2, 1500));
    assert_eq!(
        i[0].address,
        Prefix {
            addr: Ipv4Addr::new(192, 0, 2, 10),
            len: 24
        }
    );
    assert_eq!(
        i[0].address6,
        Some(Prefix {
            addr: "2001:db8::10".parse::<Ipv6Addr>().unwrap(),
            len: 64
        })
    );
    assert_eq!(
        i[0].gateway4,
        Some(Gateway {
            addr: Ipv4Addr::new(192, 0, 2, 1),
            mac: Some([2, 0, 0, 0, 0, 1])
        })
    );
    assert_eq!(
        i[0].gateway6,
        Some(Gateway {
            addr: "2001:db8::1".parse().unwrap(),
            mac: Some([2, 0, 0, 0, 0, 1])
        })
    );

    assert_eq!(c.flows.capacity, 1_048_576);
    assert_eq!(c.flows.tcp_established_timeout, Duration::from_secs(300));
    assert_eq!(c.flows.tcp_closing_timeout, Duration::from_secs(10));
    assert_eq!(c.flows.tcp_syn_timeout, Duration::from_secs(5));
    assert_eq!(c.flows.udp_timeout, Duration::from_secs(30));
    assert_eq!(c.flows.max_new_flows_per_second, 125_000);

    let s = &c.services[0];
    assert_eq!(c.services.len(), 1);
    assert_eq!(
        (s.name.as_str(), s.vip, s.port, s.protocol),
        ("web", ip("198.51.100.10"), 443, Proto::Tcp)
    );
    assert_eq!(
        (s.hash, s.table_size, s.forwarding),
        (HashKind::FiveTuple, 65537, Forwarding::Ipip)
    );
    assert_eq!(
        s.backends,
        [
            Backend {
                address: ip("203.0.113.11"),
                weight: 100,
                port: None,
            },
            Backend {
                address: ip("203.0.113.12"),
                weight: 100,
                port: None,
            },
        ]
    );
    let h = s.health_check.as_ref().unwrap();
    assert_eq!(
        (
            h.settings.kind,
            h.port,
            h.settings.rise,
            h.settings.fall,
            h.settings.path.as_str()
        ),
        (CheckKind::Tcp, Some(443), 2, 3, "/healthz")
    );
    assert_eq!(
        (h.settings.interval, h.settings.timeout),
        (Duration::from_secs(2), Duration::from_secs(1))
    );
    assert_eq!(s.when_all_down, WhenAllDown::Drop);
    assert_eq!(
        c.metrics.listen,
        "127.0.0.1:9610".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn the_repository_example_is_the_design_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sluice.example.yaml");
    let ours = load_file(&root).unwrap();
    assert_eq!(ours, load_file(&fixture("design-example.yaml")).unwrap());
}

#[test]
fn omitted_keys_take_the_documented_defaults() {
    let text = "\
interfaces:
  - name: uplink
    device: net_memif0
    address: 192.0.2.10/24
services:
  - name: dns
    vip: 192.0.2.53
    port: 53
    protocol: udp
    backends:
      - address: 192.0.2.20
    health_check:
      kind: http
";
    let c = load_str(text, "min.yaml").unwrap();
    assert_eq!(
        c.dpdk,
        Dpdk {
            args: vec![],
            mbufs: 16383
        }
    );
    let i = &c.interfaces[0];
    assert_eq!(
        (i.queues, i.mtu, i.address6, i.gateway4, i.gateway6),
        (1, 1500, None, None, None)
    );
    assert_eq!(
        c.flows,
        FlowConfig {
            capacity: 1_048_576,
            tcp_established_timeout: Duration::from_secs(300),
            tcp_closing_timeout: Duration::from_secs(10),
            tcp_syn_timeout: Duration::from_secs(5),
            udp_timeout: Duration::from_secs(30),
            max_new_flows_per_second: 125_000,
        }
    );
    let s = &c.services[0];
    assert_eq!(
        (s.hash, s.table_size, s.forwarding, s.when_all_down),
        (
            HashKind::FiveTuple,
            65537,
            Forwarding::Ipip,
            WhenAllDown::Drop
        )
    );
    assert_eq!(s.backends[0].weight, 100);
    let h = s.health_check.as_ref().unwrap();
    assert_eq!(
        *h,
        HealthCheck {
            settings: CheckSettings {
                kind: CheckKind::Http,
                interval: Duration::from_secs(2),
                timeout: Duration::from_secs(1),
                rise: 2,
                fall: 3,
                path: "/healthz".into(),
            },
            // Each backend's port: the service's 53 here.
            port: None,
            host: None,
        }
    );
    assert_eq!(c.metrics.listen, DEFAULT_METRICS_LISTEN);
}

#[test]
fn ipv6_l2_dsr_port_zero_aliases_and_merges_are_accepted() {
    let text = "\
dpdk:
  args: [-l, 0-4, --main-lcore, 4]
interfaces:
  - name: a
    device: net_memif0
    queues: 2
    address: 192.0.2.10/24
    address6: 2001:db8::10/64
    gateway: 2001:db8::1
  - name: b
    device: net_memif1
    queues: 2
    address: 198.51.100.2/24
services:
  - name: game
    vip: 2001:db8:ffff::1
    port: 0
    protocol: udp
    hash: source-ip
    table_size: 199
    forwarding: l2-dsr
    backends:
      - address: 2001:db8::20
        weight: 0
      - address: 198.51.100.30
    health_check: &hc
      kind: udp-dns
      port: 53
      interval: 500ms
      timeout: 300ms
    when_all_down: forward-anyway
  - name: game-tcp
    vip: 2001:db8:ffff::1
    port: 0
    protocol: tcp
    table_size: 251
    forwarding: gue
    backends:
      - address: 2001:db8:5::1
    health_check:
      <<: *hc
      kind: tcp
metrics:
  listen: '[::1]:9100'
";
    let checked = check_str(text, "v6.yaml");
    let c = checked.result.unwrap();
    assert_eq!(c.services[0].vip, ip("2001:db8:ffff::1"));
    assert_eq!(c.services[0].forwarding, Forwarding::L2Dsr);
    assert_eq!(c.services[0].backends[0].weight, 0);
    let merged = c.services[1].health_check.as_ref().unwrap();
    assert_eq!(
        (merged.settings.kind, merged.port, merged.settings.timeout),
        (CheckKind::Tcp, Some(53), Duration::from_millis(300))
    );
    assert_eq!(
        c.metrics.listen,
        "[::1]:9100".parse::<SocketAddr>().unwrap()
    );
    // A small table for 2 backends is allowed but warned about.
    assert!(
        checked
            .warnings
            .iter()
            .any(|w| w.path == "services[0].table_size"),
        "{:?}",
        checked.warnings
    );
}

#[test]
fn one_interface_has_a_gateway_per_address_family() {
    let text = "\
interfaces:
  - name: uplink
    device: net_memif0
    address: 192.0.2.10/24
    address6: 2001:db8::10/64
    gateway: 192.0.2.1
    gateway_mac: \"02:00:00:00:00:04\"
    gateway6: 2001:db8::1
services:
  - name: web
    vip: 198.51.100.10
    port: 443
    protocol: tcp
    backends:
      - address: 203.0.113.11
  - name: web6
    vip: 2001:db8:ffff::1
    port: 443
    protocol: tcp
    backends:
      - address: 2001:db8:5::11
";
    let checked = check_str(text, "dual.yaml");
    assert_eq!(checked.warnings, vec![]);
    let c = checked.result.unwrap();
    let i = &c.interfaces[0];
    assert_eq!(
        i.gateway4,
        Some(Gateway {
            addr: Ipv4Addr::new(192, 0, 2, 1),
            mac: Some([2, 0, 0, 0, 0, 4])
        })
    );
    assert_eq!(
        i.gateway6,
        Some(Gateway {
            addr: "2001:db8::1".parse().unwrap(),
            mac: None
        }),
        "gateway_mac belongs to gateway, not gateway6"
    );
    let s = summary(&c, None);
    assert!(
        s.contains("gateway 192.0.2.1 at 02:00:00:00:00:04, gateway 2001:db8::1\n"),
        "{s}"
    );
}

#[test]
fn an_ipv6_gateway_written_as_gateway_is_still_the_ipv6_gateway() {
    // The spelling before gateway6: one `gateway`, of either family, and its `gateway_mac`.
    let text = "\
interfaces:
  - name: uplink
    device: net_memif0
    address: 192.0.2.10/24
    address6: 2001:db8::10/64
    gateway: 2001:db8::1
    gateway_mac: \"02:00:00:00:00:06\"
services:
  - name: web6
    vip: 2001:db8:ffff::1
    port: 443
    protocol: tcp
    backends:
      - address: 2001:db8:5::11
";
    let i = &load_str(text, "old.yaml").unwrap().interfaces[0];
    assert_eq!(i.gateway4, None);
    assert_eq!(
        i.gateway6,
        Some(Gateway {
            addr: "2001:db8::1".parse().unwrap(),
            mac: Some([2, 0, 0, 0, 0, 6])
        })
    );
    let spelled_new = text
        .replace("gateway:", "gateway6:")
        .replace("gateway_mac:", "gateway6_mac:");
    assert_eq!(
        load_str(&spelled_new, "new.yaml").unwrap().interfaces[0],
        *i,
        "both spellings load the same"
    );
}

#[test]
fn the_summary_names_every_service_and_backend() {
    let c = load_file(&fixture("design-example.yaml")).unwrap();
    let s = summary(&c, None);
    for needle in [
        "uplink",
        "198.51.100.10:443/tcp",
        "203.0.113.11=100",
        "203.0.113.12=100",
        "table 65537",
        "lcores 0-2",
    ] {
        assert!(s.contains(needle), "{needle} missing from:\n{s}");
    }
    assert!(s.lines().count() <= 24, "one screen:\n{s}");
}

#[test]
fn nat_and_fullnat_services_load_with_their_ports_and_local_addresses() {
    let checked = control::config::check_file(&fixture("nat-fullnat.yaml"));
    assert_eq!(checked.warnings, vec![]);
    let c = checked.result.unwrap();
    assert!(c.uses_nat());
    let (dns, db) = (&c.services[0], &c.services[1]);
    assert_eq!(dns.forwarding, Forwarding::Nat);
    assert!(dns.local_addresses.is_empty());
    assert_eq!(
        dns.backends.iter().map(|b| b.port).collect::<Vec<_>>(),
        [None, Some(5353)]
    );
    assert_eq!(
        dns.backends
            .iter()
            .map(|b| dns.backend_port(b))
            .collect::<Vec<_>>(),
        [53, 5353],
        "the service's port unless the backend has its own"
    );
    assert_eq!(db.forwarding, Forwarding::FullNat);
    assert_eq!(db.local_addresses, [ip("192.0.2.200"), ip("192.0.2.201")]);
    let hc = db.health_check.as_ref().unwrap();
    assert_eq!(hc.port, None);
    assert_eq!(
        db.backends
            .iter()
            .map(|b| db.health_port(hc, b))
            .collect::<Vec<_>>(),
        [6432, 5432, 5432],
        "probes go where each backend listens"
    );
    // Backends of the VIP's family, and a local address of it, over IPv6 too.
    let db6 = &c.services[2];
    assert_eq!(db6.forwarding, Forwarding::FullNat);
    assert_eq!(db6.local_addresses, [ip("2001:db8::201")]);
    assert!(db6.backends.iter().all(|b| b.address.is_ipv6()));
    let s = summary(&c, None);
    for needle in [
        "db 198.51.100.20:5432/tcp: fullnat",
        "192.0.2.21:6432=100",
        "local addresses: 192.0.2.200, 192.0.2.201",
        "health check: tcp each backend's port",
        "dns 198.51.100.10:53/udp: nat",
        "db6 [2001:db8:ffff::20]:5432/tcp: fullnat",
    ] {
        assert!(s.contains(needle), "{needle} missing from:\n{s}");
    }
}

/// Several workers (queues, a second interface) translate too: replies are steered between
/// them; each has its share of every local address's ports.
#[test]
fn nat_and_fullnat_run_on_several_workers() {
    let text = std::fs::read_to_string(fixture("nat-fullnat.yaml")).unwrap();
    let text = text
        .replace(
            "    device: net_memif0\n",
            "    device: net_memif0\n    queues: 2\n",
        )
        .replace(
            "flows:\n",
            "  - name: inside\n    device: net_memif1\n    address: 203.0.113.1/24\n\nflows:\n",
        )
        // Three workers: 21,504 ports of a local address each.
        .replace("capacity: 120000", "capacity: 40000");
    let checked = check_str(&text, "nat-workers.yaml");
    assert_eq!(checked.warnings, vec![]);
    let c = checked.result.unwrap();
    assert_eq!(c.interfaces.iter().map(|i| i.queues).sum::<u16>(), 3);
    assert!(c.uses_nat());
    // 120,000 entries are 60,000 connections per worker: over one local address's share.
    let too_many = text.replace("capacity: 40000", "capacity: 120000");
    assert!(check_str(&too_many, "nat-workers.yaml").result.is_err());
}

/// More health probes in flight at once than the checker has threads (when every probe runs
/// to its timeout) is allowed but warned about; a little fewer is not.
#[test]
fn health_checks_the_checker_cannot_run_at_once_are_warned_about() {
    let config = |backends: usize| {
        let mut text = String::from(
            "interfaces:
  - name: uplink
    device: net_memif0
    address: 192.0.2.10/24
    gateway: 192.0.2.1
services:
  - name: web
    vip: 198.51.100.10
    port: 80
    protocol: tcp
    table_size: 65537
    health_check:
      interval: 2s
      timeout: 1s
    backends:
",
        );
        for i in 0..backends {
            text += &format!("      - address: 10.{}.{}.1\n", i / 256, i % 256);
        }
        check_str(&text, "many.yaml")
    };
    // 1 s of 2 s each: 510 backends need 256 threads, 511 need 257.
    let fits = config(510);
    assert!(
        fits.result.is_ok() && fits.warnings.is_empty(),
        "{:?}",
        fits.warnings
    );
    let over = config(511);
    assert!(over.result.is_ok());
    let w = over.warnings.iter().find(|w| w.path == "services");
    assert!(
        w.is_some_and(|w| w
            .to_string()
            .contains("257 over 511 health-checked backends")),
        "{:?}",
        over.warnings
    );
}

/// `fall: 1` is allowed (a check that must react at once) but warned about: one lost probe
/// takes the backend out.
#[test]
fn a_fall_of_one_is_warned_about() {
    let text = |fall: u32| {
        format!(
            "interfaces:
  - name: uplink
    device: net_memif0
    address: 192.0.2.10/24
    gateway: 192.0.2.1
services:
  - name: dns
    vip: 198.51.100.53
    port: 53
    protocol: udp
    backends:
      - address: 203.0.113.11
    health_check:
      kind: udp-dns
      fall: {fall}
"
        )
    };
    let one = check_str(&text(1), "fall.yaml");
    assert!(one.result.is_ok());
    assert!(
        one.warnings
            .iter()
            .any(|w| w.path == "services[0].health_check.fall"),
        "{:?}",
        one.warnings
    );
    assert!(check_str(&text(2), "fall.yaml").warnings.is_empty());
}
