//! MTUs of the kernel interfaces a config sends packets through: the one an af_packet, af_xdp
//! or pcap device attaches to (`iface=` in its `--vdev`), that one's veth peer, and the
//! exception path's tap (`interfaces[].kernel`).
//!
//! `interfaces[].mtu` bounds every packet sluice sends there, tunnel headers included: a client
//! packet too large once encapsulated gets ICMP too-big instead (docs/design.md, "MTU and
//! PTB"). So each link needs that MTU, no more; the tunnel overhead only decides which client
//! packets pass, shown with the figures. A link below it drops every larger frame unseen.
use control::config::{Config, Forwarding, Interface};

use super::eal;
use super::host::Host;
use super::{Finding, Status};

/// The vdev drivers that attach to an existing kernel interface, by what they do to its MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// Sets the interface's MTU at start, but only up to 1500 (it reports a 1518-byte frame).
    AfPacket,
    /// Sets the interface's MTU at start.
    AfXdp,
    /// Leaves it as it is (no MTU setting).
    Pcap,
}

impl Driver {
    fn of(device: &str) -> Option<Self> {
        [
            ("net_af_packet", Driver::AfPacket),
            ("net_af_xdp", Driver::AfXdp),
            ("net_pcap", Driver::Pcap),
        ]
        .into_iter()
        .find_map(|(prefix, d)| device.starts_with(prefix).then_some(d))
    }

    /// The largest MTU the driver sets on its kernel interface itself.
    fn sets_up_to(self) -> u32 {
        match self {
            Driver::AfPacket => 1500,
            Driver::AfXdp => u32::MAX,
            Driver::Pcap => 0,
        }
    }
}

/// What is at the other end of a kernel interface.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Peer {
    /// A veth peer in this network namespace: its name and MTU.
    Here(String, Option<u32>),
    /// Its `iflink` names an ifindex this namespace does not have.
    Elsewhere(u32),
}

/// The veth peer of `iface`: the interface whose ifindex is its iflink and whose iflink is its
/// ifindex. A one-way link is a lower device (VLAN, macvlan) whose MTU the kernel already keeps
/// at least this one's: `None`, as for a device with no other end.
fn peer(host: &Host, iface: &str) -> Option<Peer> {
    let num =
        |name: &str, file: &str| host.read_num::<u32>(&format!("/sys/class/net/{name}/{file}"));
    let index = num(iface, "ifindex")?;
    let link = num(iface, "iflink")?;
    if link == index || link == 0 {
        return None;
    }
    for name in host.list("/sys/class/net") {
        if num(&name, "ifindex") == Some(link) {
            return (num(&name, "iflink") == Some(index))
                .then(|| Peer::Here(name.clone(), num(&name, "mtu")));
        }
    }
    Some(Peer::Elsewhere(link))
}

/// The largest tunnel header the services add and what adds it (`gue over IPv6`, 48).
fn largest_tunnel(c: &Config) -> Option<(u32, String)> {
    c.services
        .iter()
        .filter_map(|s| {
            // ipip/gue backends are of the VIP's family, so the outer header is too.
            let (ip, family) = if s.vip.is_ipv4() {
                (20, "IPv4")
            } else {
                (40, "IPv6")
            };
            match s.forwarding {
                Forwarding::Ipip => Some((ip, format!("ipip over {family}"))),
                Forwarding::Gue => Some((ip + 8, format!("gue over {family}"))),
                _ => None,
            }
        })
        .max_by_key(|(n, _)| *n)
}

/// Collects one interface's parts: the worst status, what was found and the fixes.
struct Parts {
    status: Status,
    found: Vec<String>,
    fixes: Vec<String>,
}

impl Parts {
    fn bad(&mut self, status: Status, found: String, fix: String) {
        self.status = self.status.max(status);
        self.found.push(found);
        self.fixes.push(fix);
    }
}

/// One finding per interface with a kernel interface doctor can see (`mtu NAME`).
pub fn mtu(host: &Host, c: &Config) -> Vec<Finding> {
    let tunnel = largest_tunnel(c);
    c.interfaces
        .iter()
        .enumerate()
        .filter_map(|(i, ic)| interface(host, c, i, ic, tunnel.as_ref()))
        .collect()
}

fn interface(
    host: &Host,
    c: &Config,
    i: usize,
    ic: &Interface,
    tunnel: Option<&(u32, String)>,
) -> Option<Finding> {
    let driver = Driver::of(&ic.device);
    let ifaces: Vec<(&str, Driver)> = match driver {
        Some(d) => eal::vdev_ifaces(&c.dpdk.args, &ic.device)
            .into_iter()
            .map(|iface| (iface, d))
            .collect(),
        None => Vec::new(),
    };
    if ifaces.is_empty() && ic.kernel.is_none() {
        return None;
    }
    let need = u32::from(ic.mtu);
    let set_mtu = |name: &str| format!("ip link set dev {name} mtu {need}");
    let mut p = Parts {
        status: Status::Ok,
        found: Vec::new(),
        fixes: Vec::new(),
    };
    for (iface, d) in ifaces {
        let Some(mtu) = host.read_num::<u32>(&format!("/sys/class/net/{iface}/mtu")) else {
            p.bad(
                Status::Fail,
                format!("{iface}: no such interface in this network namespace"),
                format!(
                    "create {iface}, or name an existing one in {}'s iface= in dpdk.args",
                    ic.device
                ),
            );
            continue;
        };
        if mtu >= need {
            p.found.push(format!("{iface} {mtu}"));
        } else if need <= d.sets_up_to() {
            p.found.push(format!(
                "{iface} {mtu}, which {} sets to {need} at start",
                ic.device
            ));
        } else if d == Driver::AfPacket {
            p.bad(
                Status::Fail,
                format!(
                    "{iface} {mtu}: sluice refuses to start, af_packet cannot raise it past 1500"
                ),
                set_mtu(iface),
            );
        } else {
            p.bad(
                Status::Fail,
                format!(
                    "{iface} {mtu}: pcap leaves MTUs as they are, so frames over {mtu} are lost"
                ),
                set_mtu(iface),
            );
        }
        match peer(host, iface) {
            None => {}
            Some(Peer::Here(name, Some(m))) if m >= need => {
                p.found.push(format!("its peer {name} {m}"));
            }
            Some(Peer::Here(name, m)) => {
                let m = m.map_or("unknown".to_owned(), |m| m.to_string());
                p.bad(
                    Status::Fail,
                    format!(
                        "{iface}'s veth peer {name} {m}: frames over it are dropped between them"
                    ),
                    set_mtu(&name),
                );
            }
            Some(Peer::Elsewhere(index)) => p.found.push(format!(
                "its peer (ifindex {index}) in another network namespace, not checked"
            )),
        }
    }
    if let Some(k) = &ic.kernel {
        match host.read_num::<u32>(&format!("/sys/class/net/{}/mtu", k.name)) {
            None => p
                .found
                .push(format!("{} made at start with {need}", k.name)),
            Some(m) if m == need => p.found.push(format!("{} {m}", k.name)),
            // sluice sets the tap's MTU once, when it makes it: a different one was changed
            // since (more: the host's frames over `mtu` are lost), or is another interface's.
            Some(m) => p.bad(
                Status::Warn,
                format!("{} {m}, not the {need} sluice gives it at start", k.name),
                format!("{} (or restart sluice)", set_mtu(&k.name)),
            ),
        }
    }
    let tunnel = tunnel.map_or(String::new(), |(n, what)| {
        format!(
            "; {what} adds {n}: client packets over {} get ICMP too-big",
            need.saturating_sub(*n)
        )
    });
    let found = format!(
        "interfaces[{i}].mtu {need} (tunnel headers included{tunnel}): {}",
        p.found.join(", ")
    );
    let topic = format!("mtu {}", ic.name);
    Some(if p.status == Status::Ok {
        Finding::ok(topic, found)
    } else {
        Finding::bad(p.status, topic, found, p.fixes.join("; "))
    })
}

#[cfg(test)]
mod tests {
    use super::super::fake::{config, Tree};
    use super::*;

    fn iface(device: &str, mtu: u32, extra: &str) -> String {
        format!("  - name: uplink\n    device: {device}\n    mtu: {mtu}\n    address: 192.0.2.10/24\n{extra}")
    }

    fn check(t: &Tree, args: &str, interfaces: &str) -> Vec<Finding> {
        mtu(
            &t.host(),
            &config(&format!("\"-l\", \"0-1\", {args}"), interfaces),
        )
    }

    fn one(t: &Tree, args: &str, interfaces: &str) -> Finding {
        let mut all = check(t, args, interfaces);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn a_veth_and_its_peer_that_carry_the_mtu_are_ok() {
        let t = Tree::new("mtu-ok");
        t.netdev("eth0", 1600, 2, 3).netdev("veth-lb", 1600, 3, 2);
        let f = one(
            &t,
            "\"--vdev=net_af_packet0,iface=eth0\"",
            &iface("net_af_packet0", 1600, ""),
        );
        assert_eq!(f.status, Status::Ok, "{f}");
        assert_eq!(f.topic, "mtu uplink");
        assert_eq!(
            f.found,
            "interfaces[0].mtu 1600 (tunnel headers included; ipip over IPv4 adds 20: client packets over 1580 get ICMP too-big): eth0 1600, its peer veth-lb 1600"
        );
    }

    #[test]
    fn a_peer_below_the_mtu_fails() {
        let t = Tree::new("mtu-peer");
        t.netdev("eth0", 1600, 2, 3).netdev("veth-lb", 1500, 3, 2);
        let f = one(
            &t,
            "\"--vdev=net_af_packet0,iface=eth0\"",
            &iface("net_af_packet0", 1600, ""),
        );
        assert_eq!(f.status, Status::Fail, "{f}");
        assert!(
            f.found.ends_with(
                "eth0 1600, eth0's veth peer veth-lb 1500: frames over it are dropped between them"
            ),
            "{f}"
        );
        assert_eq!(f.fix.as_deref(), Some("ip link set dev veth-lb mtu 1600"));
    }

    #[test]
    fn af_packet_sets_the_mtu_up_to_1500_and_fails_above() {
        let t = Tree::new("mtu-afp");
        t.netdev("eth0", 1400, 2, 2);
        let f = one(
            &t,
            "\"--vdev=net_af_packet0,iface=eth0\"",
            &iface("net_af_packet0", 1500, ""),
        );
        assert_eq!(f.status, Status::Ok, "{f}");
        assert!(
            f.found
                .ends_with("eth0 1400, which net_af_packet0 sets to 1500 at start"),
            "{f}"
        );
        let f = one(
            &t,
            "\"--vdev=net_af_packet0,iface=eth0\"",
            &iface("net_af_packet0", 1600, ""),
        );
        assert_eq!(f.status, Status::Fail, "{f}");
        assert!(
            f.found.contains("eth0 1400: sluice refuses to start"),
            "{f}"
        );
        assert_eq!(f.fix.as_deref(), Some("ip link set dev eth0 mtu 1600"));
        // af_xdp sets any MTU.
        let f = one(
            &t,
            "\"--vdev=net_af_xdp0,iface=eth0\"",
            &iface("net_af_xdp0", 3000, ""),
        );
        assert_eq!(f.status, Status::Ok, "{f}");
    }

    #[test]
    fn pcap_below_the_mtu_fails_and_a_missing_interface_too() {
        let t = Tree::new("mtu-pcap");
        t.netdev("veth1", 1400, 5, 5);
        let pcap = "\"--vdev=net_pcap0,rx_iface_in=veth1,tx_iface=veth1\"";
        let f = one(&t, pcap, &iface("net_pcap0", 1500, ""));
        assert_eq!(f.status, Status::Fail, "{f}");
        assert!(
            f.found
                .contains("veth1 1400: pcap leaves MTUs as they are, so frames over 1400 are lost"),
            "{f}"
        );
        let f = one(
            &t,
            "\"--vdev=net_pcap0,iface=nope\"",
            &iface("net_pcap0", 1500, ""),
        );
        assert_eq!(f.status, Status::Fail, "{f}");
        assert!(f.found.contains("nope: no such interface"), "{f}");
    }

    #[test]
    fn a_peer_in_another_namespace_is_said_not_checked() {
        let t = Tree::new("mtu-netns");
        t.netdev("eth0", 1500, 2, 7).netdev("lo", 65536, 1, 1);
        let f = one(
            &t,
            "\"--vdev=net_af_packet0,iface=eth0\"",
            &iface("net_af_packet0", 1500, ""),
        );
        assert_eq!(f.status, Status::Ok, "{f}");
        assert!(
            f.found
                .ends_with("its peer (ifindex 7) in another network namespace, not checked"),
            "{f}"
        );
        // A one-way link (a VLAN on eth9): no peer to check.
        t.netdev("eth9", 1500, 7, 7);
        let f = one(
            &t,
            "\"--vdev=net_af_packet0,iface=eth0\"",
            &iface("net_af_packet0", 1500, ""),
        );
        assert!(f.found.ends_with(": eth0 1500"), "{f}");
    }

    #[test]
    fn the_exception_tap_is_compared_when_it_exists() {
        let t = Tree::new("mtu-tap");
        let kernel = "    kernel: { name: sluice0 }\n";
        let pci = iface("\"0000:3b:00.0\"", 1500, kernel);
        let f = one(&t, "\"-a\", \"0000:3b:00.0\"", &pci);
        assert_eq!(f.status, Status::Ok, "{f}");
        assert!(
            f.found.ends_with(": sluice0 made at start with 1500"),
            "{f}"
        );
        t.netdev("sluice0", 9000, 4, 4);
        let f = one(&t, "\"-a\", \"0000:3b:00.0\"", &pci);
        assert_eq!(f.status, Status::Warn, "{f}");
        assert!(
            f.found
                .ends_with("sluice0 9000, not the 1500 sluice gives it at start"),
            "{f}"
        );
        // Without a kernel path or a kernel interface, a PCI port has no line.
        assert!(check(
            &t,
            "\"-a\", \"0000:3b:00.0\"",
            &iface("\"0000:3b:00.0\"", 1500, "")
        )
        .is_empty());
    }

    #[test]
    fn the_largest_tunnel_header_sets_the_client_figure() {
        let mut c = config("\"-l\", \"0-1\"", &iface("net_memif0", 1500, ""));
        assert_eq!(largest_tunnel(&c), Some((20, "ipip over IPv4".to_owned())));
        c.services[0].forwarding = Forwarding::Gue;
        c.services[0].vip = "2001:db8::10".parse().expect("an address");
        assert_eq!(largest_tunnel(&c), Some((48, "gue over IPv6".to_owned())));
        c.services[0].forwarding = Forwarding::L2Dsr;
        assert_eq!(largest_tunnel(&c), None);
    }
}
