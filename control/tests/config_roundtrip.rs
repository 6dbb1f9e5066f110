//! Property: any valid config, written out as YAML, loads back to the same typed value.
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use control::config::duration::format_duration;
use control::config::*;
use proptest::prelude::*;

fn keyword<T: Copy + std::fmt::Debug + 'static>(
    all: &'static [(T, &'static str)],
) -> impl Strategy<Value = T> {
    proptest::sample::select(all).prop_map(|(t, _)| t)
}

fn millis(lo: u64, hi: u64) -> impl Strategy<Value = Duration> {
    (lo..=hi).prop_map(Duration::from_millis)
}

fn interface(i: u8) -> impl Strategy<Value = Interface> {
    // Unicast, non-zero MACs only.
    let mac = || {
        proptest::option::of(
            any::<[u8; 6]>().prop_map(|m| [m[0] & 0xfe | 0x02, m[1], m[2], m[3], m[4], m[5]]),
        )
    };
    (
        1u16..=4,
        68u16..=9702,
        any::<bool>(),
        (any::<bool>(), mac()),
        (any::<bool>(), mac()),
        proptest::option::of(1u32..=10_000_000),
    )
        .prop_map(
            move |(queues, mtu, has_v6, (gw4, mac4), (gw6, mac6), kernel_rate)| {
                // Interface 0 always has IPv6 and both gateways, so IPv6 VIPs and off-link
                // backends of either family are allowed.
                let address6 = (i == 0 || has_v6).then(|| Prefix {
                    addr: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i) + 1),
                    len: 64,
                });
                Interface {
                    name: format!("if{i}"),
                    device: format!("net_memif{i}"),
                    queues,
                    // An IPv6 link carries 1280 bytes at least.
                    mtu: if address6.is_some() {
                        mtu.max(1280)
                    } else {
                        mtu
                    },
                    address: Prefix {
                        addr: Ipv4Addr::new(192, 0, 2, i + 1),
                        len: 24,
                    },
                    address6,
                    gateway4: (i == 0 || gw4).then_some(Gateway {
                        addr: Ipv4Addr::new(192, 0, 2, 254),
                        mac: mac4,
                    }),
                    gateway6: (address6.is_some() && (i == 0 || gw6)).then_some(Gateway {
                        addr: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfffe),
                        mac: mac6,
                    }),
                    kernel: kernel_rate.map(|rate| Kernel {
                        name: format!("sl-k{i}"),
                        rate,
                    }),
                }
            },
        )
}

fn health() -> impl Strategy<Value = HealthCheck> {
    (
        keyword(CheckKind::ALL),
        proptest::option::of(1u16..=65535),
        20u64..=3_600_000,
        1u32..=100,
        1u32..=100,
        "/[a-z0-9/]{0,12}",
        proptest::option::of("[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}"),
    )
        .prop_flat_map(|(kind, port, interval, rise, fall, path, name)| {
            // host with http, query with udp-dns, neither with the others.
            let host = name.filter(|_| matches!(kind, CheckKind::Http | CheckKind::UdpDns));
            (10..interval).prop_map(move |timeout| HealthCheck {
                settings: CheckSettings {
                    kind,
                    interval: Duration::from_millis(interval),
                    timeout: Duration::from_millis(timeout),
                    rise,
                    fall,
                    path: path.clone(),
                },
                port,
                host: host.clone(),
            })
        })
}

fn service(i: u8) -> impl Strategy<Value = Service> {
    (
        any::<bool>(),
        0u16..=65535,
        keyword(Proto::ALL),
        keyword(HashKind::ALL),
        proptest::sample::select(vec![251u32, 1021, 65537, 655_373, 16_777_213]),
        keyword(Forwarding::ALL),
        proptest::collection::vec((0u32..=1_000_000, proptest::option::of(1u16..=65535)), 1..6),
        proptest::option::of(health()),
        keyword(WhenAllDown::ALL),
        (1u8..=3, 0u8..=2),
    )
        .prop_map(
            move |(
                v6,
                port,
                protocol,
                hash,
                table_size,
                forwarding,
                backends,
                mut health,
                when_all_down,
                (own_family, other_family),
            )| {
                let on_link = forwarding == Forwarding::L2Dsr;
                let address = |j: usize| -> IpAddr {
                    let j = u8::try_from(j).unwrap() + 1;
                    match (v6, on_link) {
                        (false, false) => Ipv4Addr::new(203, 0, 113, j).into(),
                        // Clear of the fullnat local addresses (192.0.2.100 and up).
                        (false, true) => Ipv4Addr::new(192, 0, 2, 50 + j).into(),
                        // Off-link, through interface 0's gateway6.
                        (true, false) => {
                            Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, j.into()).into()
                        }
                        (true, true) => {
                            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, j.into()).into()
                        }
                    }
                };
                // A port-0 service's check needs its own port.
                if let Some(h) = health.as_mut().filter(|_| port == 0) {
                    h.port.get_or_insert(53);
                }
                // fullnat: local addresses of the backends' family (and maybe the other one),
                // none a VIP, an interface's own address, a gateway or a backend.
                let local_addresses: Vec<IpAddr> = if forwarding == Forwarding::FullNat {
                    let local4 = |k: u8| IpAddr::from(Ipv4Addr::new(192, 0, 2, 100 + 10 * i + k));
                    let local6 = |k: u8| {
                        IpAddr::from(Ipv6Addr::new(
                            0x2001,
                            0xdb8,
                            0,
                            0,
                            0,
                            0,
                            0x200 + u16::from(i),
                            k.into(),
                        ))
                    };
                    let (own, other): (&dyn Fn(u8) -> IpAddr, &dyn Fn(u8) -> IpAddr) = if v6 {
                        (&local6, &local4)
                    } else {
                        (&local4, &local6)
                    };
                    (0..own_family)
                        .map(own)
                        .chain((0..other_family).map(other))
                        .collect()
                } else {
                    Vec::new()
                };
                Service {
                    name: format!("svc-{i}"),
                    // One VIP per service, so ports and protocols never clash.
                    vip: if v6 {
                        Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, u16::from(i) + 1).into()
                    } else {
                        Ipv4Addr::new(198, 51, 100, i + 1).into()
                    },
                    port,
                    protocol,
                    hash,
                    table_size,
                    forwarding,
                    local_addresses,
                    backends: backends
                        .iter()
                        .enumerate()
                        .map(|(j, &(weight, backend_port))| Backend {
                            address: address(j),
                            weight,
                            // Only nat and fullnat change ports, and not on a port-0 service.
                            port: backend_port.filter(|_| forwarding.translates() && port != 0),
                        })
                        .collect(),
                    health_check: health,
                    when_all_down,
                }
            },
        )
}

fn config() -> impl Strategy<Value = Config> {
    let interfaces = (1u8..=3).prop_flat_map(|n| (0..n).map(interface).collect::<Vec<_>>());
    let services = (0u8..=4).prop_flat_map(|n| (0..n).map(service).collect::<Vec<_>>());
    let flows = (
        1usize..=(1 << 27),
        millis(1, 604_800_000),
        millis(1, 604_800_000),
        millis(1, 604_800_000),
        millis(1, 604_800_000),
        1u32..=u32::MAX,
    )
        .prop_map(|(capacity, e, c, s, u, rate)| FlowConfig {
            capacity,
            tcp_established_timeout: e,
            tcp_closing_timeout: c,
            tcp_syn_timeout: s,
            udp_timeout: u,
            max_new_flows_per_second: rate,
        });
    (
        interfaces,
        services,
        flows,
        1u32..=100_000,
        any::<bool>(),
        1u16..=65535,
    )
        .prop_map(
            |(interfaces, services, mut flows, mbufs, core_list, port)| {
                // fullnat needs ports for the flows: one local address per family holds 64,512
                // connections (two entries each), shared among the workers.
                let queues: u32 = interfaces.iter().map(|i| u32::from(i.queues)).sum();
                if services
                    .iter()
                    .any(|s: &Service| s.forwarding == Forwarding::FullNat)
                {
                    let share = 64_512 / queues.max(1);
                    flows.capacity = flows.capacity % (2 * share as usize) + 1;
                }
                let args = if core_list {
                    vec![
                        "-l".to_owned(),
                        format!("0-{queues}"),
                        "-a".to_owned(),
                        "0000:3b:00.0".to_owned(),
                    ]
                } else {
                    vec!["--no-huge".to_owned()]
                };
                let announce = interfaces
                    .iter()
                    .any(|i: &Interface| i.kernel.is_some())
                    .then(|| Announce {
                        table: 100 + u32::from(port) % 100,
                    });
                Config {
                    announce,
                    dpdk: Dpdk { args, mbufs },
                    interfaces,
                    flows,
                    services,
                    metrics: Metrics {
                        listen: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
                        lifecycle: Lifecycle::ALL[usize::from(port) % Lifecycle::ALL.len()].0,
                    },
                }
            },
        )
}

/// Write `c` in the config format, every key explicit. `old_gateway6`: an IPv6 gateway with no
/// IPv4 one beside it is written as `gateway`/`gateway_mac`, the spelling before gateway6.
fn to_yaml(c: &Config, old_gateway6: bool) -> String {
    let mut y = String::new();
    let args: Vec<String> = c.dpdk.args.iter().map(|a| format!("{a:?}")).collect();
    writeln!(
        y,
        "dpdk:\n  args: [{}]\n  mbufs: {}",
        args.join(", "),
        c.dpdk.mbufs
    )
    .unwrap();
    writeln!(y, "interfaces:").unwrap();
    for i in &c.interfaces {
        writeln!(
            y,
            "  - name: {}\n    device: {}\n    queues: {}\n    mtu: {}",
            i.name, i.device, i.queues, i.mtu
        )
        .unwrap();
        writeln!(y, "    address: {}", i.address).unwrap();
        if let Some(a6) = i.address6 {
            writeln!(y, "    address6: {a6}").unwrap();
        }
        if let Some(gw) = i.gateway4 {
            writeln!(y, "    gateway: {}", gw.addr).unwrap();
        }
        let key6 = if old_gateway6 && i.gateway4.is_none() {
            "gateway"
        } else {
            "gateway6"
        };
        if let Some(gw) = i.gateway6 {
            writeln!(y, "    {key6}: {}", gw.addr).unwrap();
        }
        if let Some(k) = &i.kernel {
            writeln!(
                y,
                "    kernel:\n      name: {}\n      rate: {}",
                k.name, k.rate
            )
            .unwrap();
        }
        if let Some(mac) = i.gateway4.and_then(|g| g.mac) {
            writeln!(y, "    gateway_mac: \"{}\"", format_mac(mac)).unwrap();
        }
        if let Some(mac) = i.gateway6.and_then(|g| g.mac) {
            writeln!(y, "    {key6}_mac: \"{}\"", format_mac(mac)).unwrap();
        }
    }
    let f = &c.flows;
    writeln!(y, "flows:\n  capacity: {}", f.capacity).unwrap();
    for (key, d) in [
        ("tcp_established_timeout", f.tcp_established_timeout),
        ("tcp_closing_timeout", f.tcp_closing_timeout),
        ("tcp_syn_timeout", f.tcp_syn_timeout),
        ("udp_timeout", f.udp_timeout),
    ] {
        writeln!(y, "  {key}: {}", format_duration(d)).unwrap();
    }
    writeln!(
        y,
        "  max_new_flows_per_second: {}",
        f.max_new_flows_per_second
    )
    .unwrap();
    writeln!(
        y,
        "services:{}",
        if c.services.is_empty() { " []" } else { "" }
    )
    .unwrap();
    for s in &c.services {
        writeln!(
            y,
            "  - name: {}\n    vip: {}\n    port: {}\n    protocol: {}",
            s.name, s.vip, s.port, s.protocol
        )
        .unwrap();
        writeln!(
            y,
            "    hash: {}\n    table_size: {}\n    forwarding: {}",
            s.hash, s.table_size, s.forwarding
        )
        .unwrap();
        if !s.local_addresses.is_empty() {
            let locals: Vec<String> = s.local_addresses.iter().map(IpAddr::to_string).collect();
            writeln!(y, "    local_addresses: [{}]", locals.join(", ")).unwrap();
        }
        writeln!(y, "    backends:").unwrap();
        for b in &s.backends {
            writeln!(
                y,
                "      - address: {}\n        weight: {}",
                b.address, b.weight
            )
            .unwrap();
            if let Some(port) = b.port {
                writeln!(y, "        port: {port}").unwrap();
            }
        }
        if let Some(h) = &s.health_check {
            writeln!(y, "    health_check:\n      kind: {}", h.settings.kind).unwrap();
            if let Some(port) = h.port {
                writeln!(y, "      port: {port}").unwrap();
            }
            writeln!(
                y,
                "      interval: {}\n      timeout: {}",
                format_duration(h.settings.interval),
                format_duration(h.settings.timeout)
            )
            .unwrap();
            writeln!(
                y,
                "      rise: {}\n      fall: {}\n      path: {}",
                h.settings.rise, h.settings.fall, h.settings.path
            )
            .unwrap();
            if let Some(host) = &h.host {
                let key = match h.settings.kind {
                    CheckKind::UdpDns => "query",
                    _ => "host",
                };
                writeln!(y, "      {key}: \"{host}\"").unwrap();
            }
        }
        writeln!(y, "    when_all_down: {}", s.when_all_down).unwrap();
    }
    writeln!(
        y,
        "metrics:\n  listen: \"{}\"\n  lifecycle: {}",
        c.metrics.listen, c.metrics.lifecycle
    )
    .unwrap();
    if let Some(a) = &c.announce {
        writeln!(y, "announce:\n  table: {}", a.table).unwrap();
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn written_configs_load_back_equal(c in config(), old_gateway6 in any::<bool>()) {
        let text = to_yaml(&c, old_gateway6);
        match load_str(&text, "roundtrip.yaml") {
            Ok(loaded) => prop_assert_eq!(loaded, c, "\n{}", text),
            Err(e) => prop_assert!(false, "{}\n---\n{}", e, text),
        }
    }
}
