//! `sluice doctor --root DIR` against fake /proc, /sys and /dev trees: a healthy machine, a
//! badly set up one, a --no-huge config and a vdev-only config.
use std::path::Path;
use std::process::{Command, Output};

use sluice::doctor::fake::Tree;

const DEV: &str = "0000:3b:00.0";

fn limits(memlock: &str) -> String {
    format!(
        "Limit                     Soft Limit           Hard Limit           Units     \n\
         Max open files            1024                 524288               files     \n\
         Max locked memory         {memlock:<20} {memlock:<20} bytes     \n"
    )
}

/// 4 CPUs on one NUMA node with the NIC, a core each, 1024 free 2 MiB hugepages, an IOMMU,
/// vfio-pci loaded with the NIC bound to it, CPUs 1-3 isolated, interrupts on CPU 0, memlock
/// unlimited.
fn healthy(name: &str) -> Tree {
    let t = Tree::new(name);
    t.write(
        "/proc/cmdline",
        "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro intel_iommu=on iommu=pt isolcpus=1-3 nohz_full=1-3 irqaffinity=0\n",
    )
    .write(
        "/proc/meminfo",
        "MemTotal:       32768000 kB\nMemAvailable:   16384000 kB\nHugePages_Total:    1024\n\
         HugePages_Free:     1024\nHugepagesize:       2048 kB\n",
    )
    .write("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "1024\n")
    .write("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "1024\n")
    .write("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0\n")
    .write("/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", "0\n")
    .write(
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "always [madvise] never\n",
    )
    .write(
        "/proc/mounts",
        "sysfs /sys sysfs rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
    )
    .dir("/sys/kernel/iommu_groups/0")
    .dir("/sys/kernel/iommu_groups/12")
    .dir("/sys/class/iommu/dmar0")
    .dir("/sys/module/vfio")
    .dir("/sys/module/vfio_iommu_type1")
    .dir("/sys/module/vfio_pci")
    .write("/proc/modules", "vfio_pci 16384 0 - Live 0x0\nvfio 45056 1 vfio_pci, Live 0x0\n")
    .write("/dev/vfio/vfio", "")
    .link(
        &format!("/sys/bus/pci/devices/{DEV}/driver"),
        "../../../bus/pci/drivers/vfio-pci",
    )
    .link(
        &format!("/sys/bus/pci/devices/{DEV}/iommu_group"),
        "../../../kernel/iommu_groups/12",
    )
    .write(&format!("/sys/bus/pci/devices/{DEV}/numa_node"), "0\n")
    .write("/sys/devices/system/node/node0/cpulist", "0-3\n")
    .write("/sys/devices/system/cpu/online", "0-3\n")
    .write("/sys/devices/system/cpu/isolated", "1-3\n")
    .write("/sys/devices/system/cpu/nohz_full", "1-3\n")
    .write("/proc/irq/default_smp_affinity", "1\n")
    .write("/proc/self/limits", &limits("unlimited"))
    .write("/proc/self/status", "Name:\tsluice\nCapEff:\t0000000000000000\n");
    for cpu in 0..4 {
        t.write(
            &format!("/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"),
            &format!("{cpu}\n"),
        );
    }
    t
}

/// No hugepages or hugetlbfs, no IOMMU, no vfio, the NIC on ixgbe as eth1, no isolation,
/// interrupts on every CPU, memlock 64 KiB without CAP_IPC_LOCK, CPUs 0-1 and 2-3 each two
/// hyperthreads of one core on nodes 0 and 1, the NIC on node 1.
fn bad(name: &str) -> Tree {
    let t = healthy(name);
    t.write(
        "/proc/cmdline",
        "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n",
    )
    .write(
        "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "0\n",
    )
    .write(
        "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
        "0\n",
    )
    .write("/proc/mounts", "sysfs /sys sysfs rw 0 0\n")
    .remove("/sys/kernel/iommu_groups/0")
    .remove("/sys/kernel/iommu_groups/12")
    .remove("/sys/class/iommu/dmar0")
    .remove("/sys/module/vfio")
    .remove("/sys/module/vfio_iommu_type1")
    .remove("/sys/module/vfio_pci")
    .write("/proc/modules", "ixgbe 360448 0 - Live 0x0\n")
    .remove("/dev/vfio/vfio")
    .remove(&format!("/sys/bus/pci/devices/{DEV}/driver"))
    .remove(&format!("/sys/bus/pci/devices/{DEV}/iommu_group"))
    .link(
        &format!("/sys/bus/pci/devices/{DEV}/driver"),
        "../../../bus/pci/drivers/ixgbe",
    )
    .dir(&format!("/sys/bus/pci/devices/{DEV}/net/eth1"))
    .write("/sys/devices/system/cpu/isolated", "\n")
    .write("/sys/devices/system/cpu/nohz_full", "(null)\n")
    .write("/proc/irq/default_smp_affinity", "f\n")
    .write("/proc/self/limits", &limits("65536"))
    .write(
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "always madvise [never]\n",
    )
    .write(&format!("/sys/bus/pci/devices/{DEV}/numa_node"), "1\n")
    .write("/sys/devices/system/node/node0/cpulist", "0-1\n")
    .write("/sys/devices/system/node/node1/cpulist", "2-3\n");
    for (cpu, siblings) in [(0, "0-1"), (1, "0-1"), (2, "2-3"), (3, "2-3")] {
        t.write(
            &format!("/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"),
            &format!("{siblings}\n"),
        );
    }
    t
}

fn config(args: &str, device: &str) -> String {
    format!(
        "\
dpdk:
  args: [{args}]
  mbufs: 16383
interfaces:
  - name: uplink
    device: \"{device}\"
    queues: 2
    address: 192.0.2.10/24
    gateway: 192.0.2.1
flows:
  capacity: 65536
services:
  - name: web
    vip: 198.51.100.10
    port: 443
    protocol: tcp
    table_size: 65537
    backends:
      - address: 203.0.113.11
"
    )
}

const PCI_ARGS: &str = "\"-l\", \"0-2\", \"--main-lcore\", \"0\", \"-a\", \"0000:3b:00.0\"";

fn doctor(root: &Path, config: Option<&Path>, extra: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("doctor").arg("--root").arg(root).args(extra);
    if let Some(c) = config {
        cmd.arg("-c").arg(c);
    }
    let out: Output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code(), format!("{stdout}{stderr}"))
}

/// The line for `topic` (`ok    topic: ...`) and the fix line under it, if any.
fn line<'a>(out: &'a str, topic: &str) -> (&'a str, Option<&'a str>) {
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        if l.get(6..)
            .is_some_and(|rest| rest.starts_with(&format!("{topic}:")))
        {
            let fix = lines.next().and_then(|f| f.strip_prefix("      fix: "));
            return (l, fix);
        }
    }
    panic!("no {topic} line in:\n{out}");
}

fn status<'a>(out: &'a str, topic: &str) -> &'a str {
    line(out, topic).0[..4].trim_end()
}

#[test]
fn a_healthy_machine_passes_every_check() {
    let t = healthy("healthy");
    let c = t.config_file(&config(PCI_ARGS, DEV));
    let (code, out) = doctor(t.root(), Some(&c), &[]);
    assert_eq!(code, Some(0), "{out}");
    for topic in [
        "hugepages",
        "hugetlbfs",
        "memory",
        "thp",
        "memlock",
        "iommu",
        "modules",
        &format!("device {DEV}"),
        "lcores",
        "isolcpus",
        "nohz_full",
        "irqaffinity",
        "numa",
        "smt",
    ] {
        assert_eq!(status(&out, topic), "ok", "{topic}:\n{out}");
    }
    assert!(!out.contains("fix:"), "{out}");
    assert!(out.contains("1024 of 1024 x 2 MiB free"), "{out}");
    assert!(out.contains("bound to vfio-pci (IOMMU group 12)"), "{out}");
    assert!(out.contains("2 IOMMU groups (dmar0)"), "{out}");
    assert!(
        out.contains("thp: madvise: the flow tables get 2 MiB pages"),
        "{out}"
    );
    assert!(
        out.contains("numa: one NUMA node with CPUs (node0): nothing to place"),
        "{out}"
    );
    assert!(
        out.contains("smt: main lcore 0, workers 1-2: each on a physical core of its own"),
        "{out}"
    );
    assert!(out.ends_with("doctor: 14 ok, 0 warn, 0 fail\n"), "{out}");
}

#[test]
fn a_bad_machine_fails_with_a_fix_for_each_problem() {
    let t = bad("bad");
    let c = t.config_file(&config(PCI_ARGS, DEV));
    let (code, out) = doctor(t.root(), Some(&c), &[]);
    assert_eq!(code, Some(1), "{out}");
    let expect = |topic: &str, st: &str, found: &str, fix: &str| {
        let (l, f) = line(&out, topic);
        assert_eq!(status(&out, topic), st, "{topic}:\n{out}");
        assert!(l.contains(found), "{found:?} not in {l:?}");
        let f = f.unwrap_or_else(|| panic!("no fix for {topic}:\n{out}"));
        assert!(f.contains(fix), "{fix:?} not in {f:?}");
    };
    // One port of 16383 mbufs and EAL's allowance: about 103 MiB, 52 pages of 2 MiB.
    expect(
        "hugepages",
        "fail",
        "none reserved (0 B free) for an estimated 103 MiB",
        "echo 52 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages (or hugepages=52 on the kernel command line)",
    );
    expect(
        "hugetlbfs",
        "fail",
        "not mounted",
        "mount -t hugetlbfs nodev /dev/hugepages",
    );
    expect(
        "memlock",
        "fail",
        "64 KiB, less than the estimated 103 MiB",
        "ulimit -l unlimited",
    );
    expect(
        "iommu",
        "fail",
        "no IOMMU groups",
        "intel_iommu=on iommu=pt",
    );
    expect(
        "modules",
        "fail",
        "not loaded: vfio, vfio_iommu_type1, vfio_pci",
        "modprobe vfio-pci",
    );
    expect(
        &format!("device {DEV}"),
        "fail",
        "bound to the kernel driver ixgbe (interface eth1)",
        "ip link set eth1 down && dpdk-devbind.py --bind=vfio-pci 0000:3b:00.0",
    );
    let boot = "add isolcpus=1-2 nohz_full=1-2 irqaffinity=0,3 to the kernel command line";
    expect(
        "isolcpus",
        "warn",
        "worker lcores 1-2 not covered (isolcpus: none)",
        boot,
    );
    expect(
        "nohz_full",
        "warn",
        "worker lcores 1-2 not covered (nohz_full: none)",
        boot,
    );
    expect(
        "irqaffinity",
        "warn",
        "new interrupts may go to worker lcores 1-2 (default affinity 0-3)",
        "irqaffinity=0,3",
    );
    expect(
        "thp",
        "warn",
        "never: the flow tables stay on 4 KiB pages",
        "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled",
    );
    expect(
        "numa",
        "warn",
        "uplink (0000:3b:00.0) is on node 1, its workers 1 on node 0; the main lcore 0 on node 0, where the mbuf pools are allocated, is not on a device's node (node 1)",
        "in dpdk.args -l, take uplink's workers from node 1's CPUs 2-3, and the main lcore from node 1's CPUs 2-3",
    );
    expect(
        "smt",
        "warn",
        "the main lcore 0 and worker 1 are hyperthreads of one core (siblings 0-1)",
        "with no core left free, use fewer queues and drop 1 from dpdk.args -l",
    );
    assert_eq!(status(&out, "lcores"), "ok", "{out}");
    assert!(out.ends_with("doctor: 2 ok, 6 warn, 6 fail\n"), "{out}");
}

#[test]
fn no_huge_skips_the_hugepage_checks() {
    let t = healthy("nohuge");
    t.write(
        "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
        "0\n",
    )
    .write("/proc/mounts", "sysfs /sys sysfs rw 0 0\n");
    let c = t.config_file(&config(&format!("{PCI_ARGS}, \"--no-huge\""), DEV));
    let (code, out) = doctor(t.root(), Some(&c), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        line(&out, "hugepages"),
        (
            "ok    hugepages: skipped: EAL runs with --no-huge: memory comes from the heap, for tests only",
            None
        )
    );
    assert!(!out.contains("hugetlbfs"), "{out}");
}

#[test]
fn a_vdev_only_config_has_no_pci_checks() {
    let t = bad("vdev");
    let c = t.config_file(&config(
        "\"-l\", \"0-2\", \"--no-huge\", \"--vdev\", \"net_memif0\"",
        "net_memif0",
    ));
    let (code, out) = doctor(t.root(), Some(&c), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("device "), "{out}");
    assert!(!out.contains("dpdk-devbind"), "{out}");
    for topic in ["iommu", "modules", "memlock"] {
        let (l, fix) = line(&out, topic);
        assert!(l.starts_with("ok") && l.contains("not needed"), "{l}");
        assert_eq!(fix, None);
    }
    assert_eq!(status(&out, "isolcpus"), "warn", "{out}");
}

#[test]
fn an_af_packet_config_checks_its_links_mtu() {
    let t = bad("afpacket");
    t.write("/sys/class/net/eth0/mtu", "1600\n")
        .write("/sys/class/net/eth0/ifindex", "2\n")
        .write("/sys/class/net/eth0/iflink", "3\n")
        .write("/sys/class/net/veth-lb/mtu", "1500\n")
        .write("/sys/class/net/veth-lb/ifindex", "3\n")
        .write("/sys/class/net/veth-lb/iflink", "2\n");
    let c = t.config_file(
        &config(
            "\"-l\", \"0-2\", \"--no-huge\", \"--vdev\", \"net_af_packet0,iface=eth0,qpairs=2\"",
            "net_af_packet0",
        )
        .replace("    queues: 2\n", "    queues: 2\n    mtu: 1600\n"),
    );
    let (code, out) = doctor(t.root(), Some(&c), &[]);
    assert_eq!(code, Some(1), "{out}");
    let (l, fix) = line(&out, "mtu uplink");
    assert!(
        l.starts_with("fail  mtu uplink: interfaces[0].mtu 1600 (tunnel headers included; ipip over IPv4 adds 20: client packets over 1580 get ICMP too-big): eth0 1600, eth0's veth peer veth-lb 1500"),
        "{l}"
    );
    assert_eq!(fix, Some("ip link set dev veth-lb mtu 1600"));
    // A vdev has no NUMA node: said, not failed.
    assert!(
        line(&out, "numa")
            .0
            .contains("uplink (net_af_packet0): a virtual device, no NUMA node"),
        "{out}"
    );
}

#[test]
fn without_a_config_only_host_wide_checks_run() {
    let t = healthy("noconfig");
    let (code, out) = doctor(t.root(), None, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("device "), "{out}");
    assert!(!out.contains("memory:"), "{out}");
    assert_eq!(
        line(&out, "cpus").0,
        "ok    cpus: online 0-3, isolated 1-3, nohz_full 1-3 (give -c FILE to check the worker lcores)"
    );
    assert!(out.ends_with("doctor: 6 ok, 0 warn, 0 fail\n"), "{out}");

    // Host-wide problems are warnings without a config, except what any DPDK start needs.
    let t = bad("noconfig-bad");
    let (code, out) = doctor(t.root(), None, &[]);
    assert_eq!(code, Some(1), "{out}");
    for (topic, st) in [
        ("hugepages", "fail"),
        ("hugetlbfs", "fail"),
        ("memlock", "warn"),
        ("iommu", "warn"),
        ("modules", "warn"),
    ] {
        assert_eq!(status(&out, topic), st, "{topic}:\n{out}");
    }
}

#[test]
fn json_lists_the_findings() {
    let t = bad("json");
    let c = t.config_file(&config(PCI_ARGS, DEV));
    let (code, out) = doctor(t.root(), Some(&c), &["--json"]);
    assert_eq!(code, Some(1), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let device = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["topic"] == format!("device {DEV}"))
        .unwrap();
    assert_eq!(device["status"], "fail");
    assert_eq!(
        device["fix"],
        "ip link set eth1 down && dpdk-devbind.py --bind=vfio-pci 0000:3b:00.0"
    );
}

#[test]
fn a_bad_config_fails_and_the_host_checks_still_run() {
    let t = healthy("badconfig");
    let c = t.config_file("interfaces: 3\n");
    let (code, out) = doctor(t.root(), Some(&c), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(line(&out, "config").0.starts_with("fail  config:"), "{out}");
    assert_eq!(status(&out, "hugepages"), "ok", "{out}");
}
