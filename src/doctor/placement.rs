//! Where the workers run: their NUMA nodes against each interface's device and each other,
//! and hyperthread siblings among the workers and the main lcore.
//!
//! A worker reads every packet its NIC wrote, into mbufs of pools DPDK allocates on the main
//! lcore's node (sluice asks for any socket, and DPDK then takes the caller's): a worker or a
//! main lcore away from the NIC's node crosses the interconnect for each packet. Two workers,
//! or a worker and control, on hyperthreads of one core share its execution units while the
//! workers poll without pause. These are warnings: sluice works either way, slower.
use std::collections::{BTreeMap, BTreeSet};

use control::config::Config;

use super::cpus::Workers;
use super::eal;
use super::host::{cpus_text, parse_cpu_list, Host};
use super::Finding;

/// CPU -> NUMA node, from /sys/devices/system/node/node*/cpulist; empty without NUMA.
fn cpu_nodes(host: &Host) -> BTreeMap<u32, u32> {
    let mut out = BTreeMap::new();
    for name in host.list("/sys/devices/system/node") {
        let Some(node) = name.strip_prefix("node").and_then(|n| n.parse().ok()) else {
            continue;
        };
        let cpus = host
            .read(&format!("/sys/devices/system/node/{name}/cpulist"))
            .as_deref()
            .and_then(parse_cpu_list)
            .unwrap_or_default();
        out.extend(cpus.into_iter().map(|cpu| (cpu, node)));
    }
    out
}

/// `1-2 on node 0, 8 on node 1`; `none` for no CPUs.
fn on_nodes(cpus: &BTreeSet<u32>, nodes: &BTreeMap<u32, u32>) -> String {
    if cpus.is_empty() {
        return "none".to_owned();
    }
    let mut by_node: BTreeMap<Option<u32>, BTreeSet<u32>> = BTreeMap::new();
    for &cpu in cpus {
        by_node
            .entry(nodes.get(&cpu).copied())
            .or_default()
            .insert(cpu);
    }
    by_node
        .iter()
        .map(|(node, cpus)| match node {
            Some(n) => format!("{} on node {n}", cpus_text(cpus)),
            None => format!("{} on no node", cpus_text(cpus)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Interface `i` as shown (`uplink (0000:3b:00.0)`) and its device's NUMA node, or why it has none.
fn device_node(host: &Host, c: &Config, i: usize) -> (String, Result<u32, String>) {
    let ic = &c.interfaces[i];
    let label = format!("{} ({})", ic.name, ic.device);
    let node_in = |file: &str| {
        host.read_num::<i64>(file)
            .map(|n| u32::try_from(n).map_err(|_| n))
    };
    if let Some(addr) = eal::pci_address(&ic.device) {
        let file = format!("/sys/bus/pci/devices/{addr}/numa_node");
        let node = match node_in(&file) {
            Some(Ok(n)) => Ok(n),
            Some(Err(n)) => Err(format!("numa_node {n}: the firmware gives it no node")),
            None => Err(format!("no {file}")),
        };
        return (label, node);
    }
    // A vdev on a kernel interface of a PCI NIC (af_xdp, af_packet) is where that NIC is.
    for iface in eal::vdev_ifaces(&c.dpdk.args, &ic.device) {
        let file = format!("/sys/class/net/{iface}/device/numa_node");
        if let Some(Ok(n)) = node_in(&file) {
            return (format!("{} ({} on {iface})", ic.name, ic.device), Ok(n));
        }
    }
    (label, Err("a virtual device, no NUMA node".to_owned()))
}

/// Each interface's device against the nodes of its workers and of the main lcore (its mbuf
/// pool's node), and the workers against each other.
pub fn numa(host: &Host, c: &Config, w: &Workers) -> Finding {
    let nodes = cpu_nodes(host);
    let mut node_cpus: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for (&cpu, &node) in &nodes {
        node_cpus.entry(node).or_default().insert(cpu);
    }
    if node_cpus.len() < 2 {
        return Finding::ok(
            "numa",
            match node_cpus.keys().next() {
                Some(n) => format!("one NUMA node with CPUs (node{n}): nothing to place"),
                None => "no NUMA nodes in /sys/devices/system/node: nothing to place".to_owned(),
            },
        );
    }
    let cpus_of = |node: u32| cpus_text(&node_cpus.get(&node).cloned().unwrap_or_default());
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut device_nodes = BTreeSet::new();
    // Whether every worker is on its own device's node, which is what makes workers on
    // several nodes right (devices on several nodes).
    let mut all_home = true;
    let mut workers_away = false;
    let mut unplaced = Vec::new();
    for (i, ic) in c.interfaces.iter().enumerate() {
        let (label, node) = device_node(host, c, i);
        let workers = w.of_interface(i);
        match node {
            Ok(n) => {
                device_nodes.insert(n);
                let away: BTreeSet<u32> = workers
                    .iter()
                    .copied()
                    .filter(|cpu| nodes.get(cpu) != Some(&n))
                    .collect();
                if away.is_empty() {
                    found.push(format!(
                        "{label} on node {n} with its workers {}",
                        cpus_text(&workers)
                    ));
                } else {
                    all_home = false;
                    workers_away = true;
                    problems.push(format!(
                        "{label} is on node {n}, its workers {}",
                        on_nodes(&away, &nodes)
                    ));
                    fixes.push(format!(
                        "{}'s workers from node {n}'s CPUs {}",
                        ic.name,
                        cpus_of(n)
                    ));
                }
            }
            Err(why) => {
                all_home = false;
                unplaced.push(format!("{label}: {why}"));
                found.push(format!(
                    "{label}: {why}; its workers {}",
                    on_nodes(&workers, &nodes)
                ));
            }
        }
    }
    let main = BTreeSet::from([w.main]);
    let main_node = nodes.get(&w.main).copied();
    match device_nodes.first() {
        Some(&n) if main_node.is_none_or(|m| !device_nodes.contains(&m)) => {
            problems.push(format!(
                "the main lcore {}, where the mbuf pools are allocated, is not on a device's node ({})",
                on_nodes(&main, &nodes),
                device_nodes
                    .iter()
                    .map(|n| format!("node {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            fixes.push(format!(
                "the main lcore from node {n}'s CPUs {}",
                cpus_of(n)
            ));
        }
        _ => found.push(format!("main lcore {}", on_nodes(&main, &nodes))),
    }
    let workers = w.cpus();
    let worker_nodes: BTreeSet<Option<u32>> =
        workers.iter().map(|cpu| nodes.get(cpu).copied()).collect();
    // Said once: workers away from their device already name the nodes.
    if worker_nodes.len() > 1 && !all_home && !workers_away {
        problems.push(format!(
            "the workers are on more than one node: {}",
            on_nodes(&workers, &nodes)
        ));
        problems.extend(unplaced);
        fixes.push(format!(
            "every worker from one node's CPUs ({})",
            node_cpus
                .keys()
                .map(|&n| format!("node {n}: {}", cpus_of(n)))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if problems.is_empty() {
        Finding::ok("numa", found.join("; "))
    } else {
        Finding::warn(
            "numa",
            problems.join("; "),
            format!("in dpdk.args -l, take {}", fixes.join(", and ")),
        )
    }
}

/// The CPUs sharing `cpu`'s physical core, itself included; `None` if the kernel does not say.
fn siblings(host: &Host, cpu: u32) -> Option<BTreeSet<u32>> {
    let dir = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
    ["thread_siblings_list", "core_cpus_list"]
        .iter()
        .find_map(|f| {
            host.read(&format!("{dir}/{f}"))
                .as_deref()
                .and_then(parse_cpu_list)
        })
        .filter(|s| !s.is_empty())
}

/// No two of the workers and the main lcore on hyperthreads of one physical core.
pub fn smt(host: &Host, w: &Workers) -> Finding {
    let workers = w.cpus();
    let mut used = workers.clone();
    used.insert(w.main);
    let mut pairs: BTreeMap<(u32, u32), BTreeSet<u32>> = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    for &cpu in &workers {
        let Some(sib) = siblings(host, cpu) else {
            unknown.insert(cpu);
            continue;
        };
        for &other in sib.intersection(&used).filter(|&&o| o != cpu) {
            pairs.insert((cpu.min(other), cpu.max(other)), sib.clone());
        }
    }
    let all = format!("main lcore {}, workers {}", w.main, cpus_text(&workers));
    if pairs.is_empty() {
        let found = if !workers.is_empty() && unknown == workers {
            format!(
                "not checked: no /sys/devices/system/cpu/cpuN/topology/thread_siblings_list for workers {}",
                cpus_text(&unknown)
            )
        } else if unknown.is_empty() {
            format!("{all}: each on a physical core of its own")
        } else {
            format!(
                "{all}: each on a physical core of its own (the siblings of {} unknown)",
                cpus_text(&unknown)
            )
        };
        return Finding::ok("smt", found);
    }
    let name = |cpu: u32| {
        if cpu == w.main {
            format!("the main lcore {cpu}")
        } else {
            format!("worker {cpu}")
        }
    };
    let found: Vec<String> = pairs
        .iter()
        .map(|(&(a, b), sib)| {
            format!(
                "{} and {} are hyperthreads of one core (siblings {})",
                name(a),
                name(b),
                cpus_text(sib)
            )
        })
        .collect();
    // Of each pair, the worker to move: the one that is not the main lcore, else the higher.
    let moved: BTreeSet<u32> = pairs
        .keys()
        .map(|&(a, b)| if b == w.main { a } else { b })
        .collect();
    let spare = spare_cores(host, &used);
    let replace = if spare.is_empty() {
        format!(
            "with no core left free, use fewer queues and drop {} from dpdk.args -l",
            cpus_text(&moved)
        )
    } else {
        format!(
            "in dpdk.args -l, replace {} with CPUs of cores sluice leaves free ({})",
            cpus_text(&moved),
            cpus_text(&spare)
        )
    };
    Finding::warn(
        "smt",
        found.join("; "),
        format!(
            "give each worker a physical core of its own: {replace}; or turn SMT off (nosmt on the kernel command line)"
        ),
    )
}

/// One online CPU (the lowest) of each physical core none of `used` is on.
fn spare_cores(host: &Host, used: &BTreeSet<u32>) -> BTreeSet<u32> {
    let Some(online) = host
        .read("/sys/devices/system/cpu/online")
        .as_deref()
        .and_then(parse_cpu_list)
    else {
        return BTreeSet::new();
    };
    let mut out = BTreeSet::new();
    let mut taken: BTreeSet<u32> = BTreeSet::new();
    for cpu in online {
        if used.contains(&cpu) || taken.contains(&cpu) {
            continue;
        }
        let sib = siblings(host, cpu).unwrap_or_else(|| BTreeSet::from([cpu]));
        if sib.is_disjoint(used) {
            out.insert(cpu);
        }
        taken.extend(sib);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fake::{config, Tree};
    use super::super::Status;
    use super::*;

    const UPLINK: &str =
        "  - name: uplink\n    device: \"0000:3b:00.0\"\n    queues: 2\n    address: 192.0.2.10/24\n";

    /// Two nodes of four CPUs each; the NIC 0000:3b:00.0 on `nic_node`.
    fn two_nodes(name: &str, nic_node: &str) -> Tree {
        let t = Tree::new(name);
        t.node(0, "0-3").node(1, "4-7").write(
            "/sys/bus/pci/devices/0000:3b:00.0/numa_node",
            &format!("{nic_node}\n"),
        );
        t
    }

    fn numa_of(t: &Tree, args: &str, interfaces: &str) -> Finding {
        let c = config(args, interfaces);
        numa(&t.host(), &c, &Workers::of(&c).expect("lcores"))
    }

    #[test]
    fn workers_follow_the_queues_in_config_order() {
        let c = config(
            "\"-l\", \"0-5\", \"--main-lcore\", \"2\"",
            &format!(
                "{UPLINK}  - name: down\n    device: net_memif0\n    address: 192.0.3.10/24\n"
            ),
        );
        let w = Workers::of(&c).expect("lcores");
        assert_eq!(w.main, 2);
        assert_eq!(w.polling, [(0, 0), (1, 0), (3, 1)], "4 and 5 idle");
        assert_eq!(w.of_interface(0), BTreeSet::from([0, 1]));
        let mapped = config("\"--lcores\", \"0,1@5,2@6\"", UPLINK);
        assert_eq!(Workers::of(&mapped), None, "lcores are not CPUs");
    }

    #[test]
    fn numa_ok_when_the_nic_workers_and_main_lcore_share_a_node() {
        let t = two_nodes("numa-ok", "1");
        let f = numa_of(&t, "\"-l\", \"4-6\"", UPLINK);
        assert_eq!(f.status, Status::Ok, "{f}");
        assert_eq!(
            f.found,
            "uplink (0000:3b:00.0) on node 1 with its workers 5-6; main lcore 4 on node 1"
        );
    }

    #[test]
    fn numa_warns_of_workers_away_from_their_nic() {
        let t = two_nodes("numa-workers", "1");
        let f = numa_of(&t, "\"-l\", \"3-5\", \"--main-lcore\", \"5\"", UPLINK);
        assert_eq!(f.status, Status::Warn, "{f}");
        assert_eq!(
            f.found,
            "uplink (0000:3b:00.0) is on node 1, its workers 3 on node 0"
        );
        assert_eq!(
            f.fix.as_deref(),
            Some("in dpdk.args -l, take uplink's workers from node 1's CPUs 4-7")
        );
    }

    #[test]
    fn numa_warns_of_a_main_lcore_away_from_the_nic() {
        let t = two_nodes("numa-main", "1");
        let f = numa_of(&t, "\"-l\", \"0,4-5\"", UPLINK);
        assert_eq!(f.status, Status::Warn, "{f}");
        assert_eq!(
            f.found,
            "the main lcore 0 on node 0, where the mbuf pools are allocated, is not on a device's node (node 1)"
        );
        assert_eq!(
            f.fix.as_deref(),
            Some("in dpdk.args -l, take the main lcore from node 1's CPUs 4-7")
        );
    }

    #[test]
    fn numa_says_a_vdev_has_no_node_and_warns_of_workers_on_two() {
        let t = two_nodes("numa-vdev", "0");
        let memif =
            "  - name: wire\n    device: net_memif0\n    queues: 2\n    address: 192.0.2.10/24\n";
        let f = numa_of(&t, "\"-l\", \"0-1,4\", \"--vdev=net_memif0\"", memif);
        assert_eq!(f.status, Status::Warn, "{f}");
        assert_eq!(
            f.found,
            "the workers are on more than one node: 1 on node 0, 4 on node 1; wire (net_memif0): a virtual device, no NUMA node"
        );
        assert_eq!(
            f.fix.as_deref(),
            Some("in dpdk.args -l, take every worker from one node's CPUs (node 0: 0-3; node 1: 4-7)")
        );
        let f = numa_of(&t, "\"-l\", \"0-2\", \"--vdev=net_memif0\"", memif);
        assert_eq!(
            (f.status, f.found.as_str()),
            (
                Status::Ok,
                "wire (net_memif0): a virtual device, no NUMA node; its workers 1-2 on node 0; main lcore 0 on node 0"
            )
        );
    }

    #[test]
    fn numa_of_a_vdev_on_a_pci_nic_is_the_nics() {
        let t = two_nodes("numa-xdp", "0");
        t.write("/sys/class/net/ens1/device/numa_node", "1\n");
        let xdp = "  - name: uplink\n    device: net_af_xdp0\n    address: 192.0.2.10/24\n";
        let f = numa_of(
            &t,
            "\"-l\", \"0-1\", \"--vdev=net_af_xdp0,iface=ens1\"",
            xdp,
        );
        assert_eq!(f.status, Status::Warn, "{f}");
        assert!(
            f.found
                .starts_with("uplink (net_af_xdp0 on ens1) is on node 1, its workers 1 on node 0"),
            "{f}"
        );
    }

    #[test]
    fn numa_of_two_nics_on_two_nodes_with_their_workers_is_ok() {
        let t = two_nodes("numa-two", "0");
        t.write("/sys/bus/pci/devices/0000:af:00.0/numa_node", "1\n");
        let two = format!(
            "{UPLINK}  - name: down\n    device: \"0000:af:00.0\"\n    queues: 2\n    address: 192.0.3.10/24\n"
        );
        let f = numa_of(&t, "\"-l\", \"0-2,4-5\"", &two);
        assert_eq!(f.status, Status::Ok, "{f}");
        // The same workers with the second NIC's numa_node unknown: two nodes, unexplained.
        t.write("/sys/bus/pci/devices/0000:af:00.0/numa_node", "-1\n");
        let f = numa_of(&t, "\"-l\", \"0-2,4-5\"", &two);
        assert_eq!(f.status, Status::Warn, "{f}");
        assert!(
            f.found
                .contains("more than one node: 1-2 on node 0, 4-5 on node 1"),
            "{f}"
        );
    }

    #[test]
    fn numa_on_one_node_has_nothing_to_place() {
        let t = Tree::new("numa-one");
        let c = config("\"-l\", \"0-2\"", UPLINK);
        let w = Workers::of(&c).expect("lcores");
        let f = numa(&t.host(), &c, &w);
        assert_eq!(f.status, Status::Ok);
        assert!(f.found.starts_with("no NUMA nodes"), "{f}");
        t.node(0, "0-7");
        let f = numa(&t.host(), &c, &w);
        assert_eq!(f.found, "one NUMA node with CPUs (node0): nothing to place");
    }

    fn smt_of(t: &Tree, args: &str) -> Finding {
        let c = config(args, UPLINK);
        smt(&t.host(), &Workers::of(&c).expect("lcores"))
    }

    /// Eight CPUs on four cores: 0,4 / 1,5 / 2,6 / 3,7 (how Linux numbers them on Intel).
    fn four_cores(name: &str) -> Tree {
        let t = Tree::new(name);
        t.cores(&["0,4", "1,5", "2,6", "3,7"])
            .write("/sys/devices/system/cpu/online", "0-7\n");
        t
    }

    #[test]
    fn smt_ok_with_a_core_each() {
        let t = four_cores("smt-ok");
        let f = smt_of(&t, "\"-l\", \"0-2\"");
        assert_eq!(
            (f.status, f.found.as_str()),
            (
                Status::Ok,
                "main lcore 0, workers 1-2: each on a physical core of its own"
            )
        );
    }

    #[test]
    fn smt_warns_of_two_workers_on_one_core() {
        let t = four_cores("smt-workers");
        let f = smt_of(&t, "\"-l\", \"0-1,5\"");
        assert_eq!(f.status, Status::Warn, "{f}");
        assert_eq!(
            f.found,
            "worker 1 and worker 5 are hyperthreads of one core (siblings 1,5)"
        );
        assert_eq!(
            f.fix.as_deref(),
            Some("give each worker a physical core of its own: in dpdk.args -l, replace 5 with CPUs of cores sluice leaves free (2-3); or turn SMT off (nosmt on the kernel command line)")
        );
    }

    #[test]
    fn smt_warns_of_a_worker_beside_the_main_lcore() {
        let t = four_cores("smt-main");
        let f = smt_of(&t, "\"-l\", \"1-3,5\", \"--main-lcore\", \"5\"");
        assert_eq!(f.status, Status::Warn, "{f}");
        assert_eq!(
            f.found,
            "worker 1 and the main lcore 5 are hyperthreads of one core (siblings 1,5)"
        );
        assert!(
            f.fix.as_deref().is_some_and(
                |x| x.contains("replace 1 with CPUs of cores sluice leaves free (0,3)")
            ),
            "{f}"
        );
    }

    #[test]
    fn smt_without_topology_is_not_checked() {
        let t = Tree::new("smt-none");
        let f = smt_of(&t, "\"-l\", \"0-2\"");
        assert_eq!(f.status, Status::Ok);
        assert!(f.found.starts_with("not checked"), "{f}");
    }
}
