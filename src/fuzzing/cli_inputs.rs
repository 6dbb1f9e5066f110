//! The fuzz body of the command line's readers of what the operator types and the host holds,
//! shared by the cargo-fuzz target `cli_inputs` (`fuzz/`) and the seed replay test
//! (`tests/cli_inputs_fuzz_seeds.rs`): the /proc and /sys texts `sluice doctor` reads, the
//! memory options of `dpdk.args` (`sluice check`, `doctor`, `run`), `sluice maglev --backend`,
//! `sluice top --interval`, `--url`, the `metrics.listen` of a config the validator refuses,
//! and the routes `ip route show` lists.
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use control::config::lcores::format_cores;
use control::config::{self, Config};
use maglev::{Backend, MaglevError, Table};

use crate::args::{self, MAX_INTERVAL, MIN_INTERVAL};
use crate::doctor::cpus::cmdline_cpus;
use crate::doctor::host::{self, Cmdline, Host, Limit, MAX_CPU};
use crate::doctor::{self, eal, memory};
use crate::iproute;
use crate::sizing::{self, EalMemory};

/// What the first input byte (modulo their number) selects; the rest is the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// /proc/cmdline.
    Cmdline,
    /// /proc/meminfo (doctor's hugepages and memory; `sluice run`'s check of MemAvailable).
    Meminfo,
    /// A CPU list: /sys/devices/system/cpu/{online,isolated,nohz_full}, a node's cpulist, a
    /// core's thread_siblings_list.
    CpuList,
    /// /proc/irq/default_smp_affinity.
    CpuMask,
    /// /proc/self/limits.
    Limits,
    /// /proc/self/status.
    Status,
    /// /sys/kernel/mm/transparent_hugepage/enabled.
    Thp,
    /// /proc/mounts.
    Mounts,
    /// A directory name under /sys/kernel/mm/hugepages.
    HugepageDir,
    /// /proc/modules.
    Modules,
    /// `dpdk.args`, one argument a line.
    EalArgs,
    /// `sluice maglev --backend NAME[=WEIGHT]`, one a line.
    Backends,
    /// `sluice top --interval`.
    Interval,
    /// `--url` of reload, drain and top.
    Url,
    /// The config file of reload, drain and top, read for metrics.listen alone when refused.
    Listen,
    /// A config file through `sluice check`'s memory block and doctor's needs.
    Config,
    /// The whole of `sluice doctor` on a tree of files written from NUL-separated parts.
    Doctor,
    /// `ip route show table N`: the routes the exception path's announce keeps.
    Routes,
}

impl Input {
    pub const ALL: [Input; 18] = [
        Input::Cmdline,
        Input::Meminfo,
        Input::CpuList,
        Input::CpuMask,
        Input::Limits,
        Input::Status,
        Input::Thp,
        Input::Mounts,
        Input::HugepageDir,
        Input::Modules,
        Input::EalArgs,
        Input::Backends,
        Input::Interval,
        Input::Url,
        Input::Listen,
        Input::Config,
        Input::Doctor,
        Input::Routes,
    ];

    /// The input a first byte selects.
    pub fn of(byte: u8) -> Input {
        Input::ALL[usize::from(byte) % Input::ALL.len()]
    }

    /// The first byte that selects this input.
    pub fn byte(self) -> u8 {
        Input::ALL.iter().position(|&i| i == self).unwrap_or(0) as u8
    }
}

/// Input: `[which, text...]` (see [`Input`]); the text is read as UTF-8, invalid bytes
/// replaced, as the readers get it from `read_to_string` or the shell. None of the readers may
/// panic, and what each accepts must keep the promises its checks spell out. Returns the input
/// it was, for the seed replay to count.
pub fn fuzz_cli_inputs(data: &[u8]) -> Option<Input> {
    let (&which, rest) = data.split_first()?;
    let input = Input::of(which);
    let text = String::from_utf8_lossy(rest);
    let text = text.as_ref();
    match input {
        Input::Cmdline => check_cmdline(text),
        Input::Meminfo => check_meminfo(text),
        Input::CpuList => check_cpu_list(text),
        Input::CpuMask => check_cpu_mask(text),
        Input::Limits => check_limits(text),
        Input::Status => {
            if let Some(cap) = host::has_cap_ipc_lock(text) {
                assert!(text.contains("CapEff:"), "{cap} without a CapEff line");
            }
        }
        Input::Thp => {
            if let Some(mode) = host::thp_mode(text) {
                assert!(text.contains(&format!("[{mode}]")), "{mode:?}");
                assert!(!mode.contains(char::is_whitespace));
            }
        }
        Input::Mounts => {
            let mounts = host::hugetlbfs_mounts(text);
            assert!(mounts.len() <= text.matches("hugetlbfs").count());
            assert!(mounts.iter().all(|m| *m == "?" || text.contains(m)));
        }
        Input::HugepageDir => {
            if let Some(size) = host::hugepage_size(text) {
                assert!(size % 1024 == 0 && text.starts_with("hugepages-") && text.ends_with("kB"));
            }
        }
        Input::Modules => {
            for name in ["vfio_pci", "vfio", "uio_pci_generic", ""] {
                if host::module_listed(text, name) {
                    assert!(!name.is_empty() && text.contains(name), "{name:?}");
                }
            }
        }
        Input::EalArgs => check_eal_args(&text.lines().map(str::to_owned).collect::<Vec<_>>()),
        Input::Backends => check_backends(text),
        Input::Interval => {
            if let Ok(d) = args::parse_interval(text) {
                assert!((MIN_INTERVAL..=MAX_INTERVAL).contains(&d), "{d:?}");
            }
        }
        Input::Url => check_url(text),
        Input::Listen => check_listen(text),
        Input::Config => {
            if let Ok(c) = config::load_str(text, "fuzz.yaml") {
                check_config(&c);
            }
        }
        Input::Doctor => check_doctor(text),
        Input::Routes => check_routes(text),
    }
    Some(input)
}

/// Every destination read is a line's first word, an address with no length or a host length.
fn check_routes(text: &str) {
    for addr in iproute::route_destinations(text) {
        let host_len = if addr.is_ipv4() { "32" } else { "128" };
        let listed = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .any(|first| {
                let (a, len) = first.split_once('/').unwrap_or((first, ""));
                a.parse() == Ok(addr) && (len.is_empty() || len == host_len)
            });
        assert!(listed, "{addr} is no line's host route");
    }
}

/// Kernel parameters the checks look up.
const PARAMS: [&str; 7] = [
    "isolcpus",
    "nohz_full",
    "irqaffinity",
    "iommu",
    "intel_iommu",
    "amd_iommu",
    "hugepages",
];

fn check_cmdline(text: &str) {
    let c = Cmdline::parse(text);
    for key in PARAMS {
        if let Some(value) = c.get(key) {
            assert!(text.contains(key) && text.contains(value.trim_matches('"')));
        }
        let cpus = cmdline_cpus(&c, key);
        assert!(cpus.iter().all(|&cpu| cpu <= MAX_CPU), "{key}: {cpus:?}");
    }
    // What follows `--` is init's: the kernel's parameters are those before it. (An unclosed
    // quote takes the rest of the line into its word, `--` too.)
    if text.matches('"').count().is_multiple_of(2) {
        let with_init = Cmdline::parse(&format!("{text} -- isolcpus=7 iommu"));
        for key in PARAMS {
            assert_eq!(with_init.get(key), c.get(key), "{key} after --");
        }
    }
}

fn check_meminfo(text: &str) {
    let m = host::parse_meminfo(text);
    for name in m.keys() {
        assert!(!name.contains(':') && name.trim() == name, "{name:?}");
    }
    let c = fixture_config();
    let shortfall = sizing::ordinary_shortfall(c, text);
    assert!(shortfall.is_none() || m.contains_key("MemAvailable"));
}

/// `set` in the form the kernel writes a CPU mask: 32-bit hex groups, most significant first.
fn mask_text(set: &BTreeSet<u32>) -> String {
    let groups = set.last().map_or(1, |&top| top / 32 + 1);
    (0..groups)
        .rev()
        .map(|g| {
            let bits = set
                .iter()
                .filter(|&&cpu| cpu / 32 == g)
                .fold(0u32, |b, &cpu| b | 1 << (cpu % 32));
            format!("{bits:08x}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn check_cpu_list(text: &str) {
    let Some(cpus) = host::parse_cpu_list(text) else {
        return;
    };
    assert!(cpus.iter().all(|&cpu| cpu <= MAX_CPU), "{cpus:?}");
    // The kernel's own spelling of the set reads back the same, and so does its mask.
    let written = format_cores(&cpus);
    assert_eq!(
        host::parse_cpu_list(&written).as_ref(),
        Some(&cpus),
        "{written}"
    );
    assert_eq!(
        host::parse_cpu_mask(&mask_text(&cpus)).as_ref(),
        Some(&cpus)
    );
    assert_eq!(host::cpus_text(&cpus) == "none", cpus.is_empty());
}

fn check_cpu_mask(text: &str) {
    let Some(cpus) = host::parse_cpu_mask(text) else {
        return;
    };
    assert!(cpus.iter().all(|&cpu| cpu <= MAX_CPU), "{cpus:?}");
    assert_eq!(
        host::parse_cpu_mask(&mask_text(&cpus)).as_ref(),
        Some(&cpus)
    );
    if !cpus.is_empty() {
        assert_eq!(host::parse_cpu_list(&format_cores(&cpus)), Some(cpus));
    }
}

fn check_limits(text: &str) {
    match host::parse_memlock(text) {
        Some(Limit::Unlimited) => assert!(text.contains("unlimited")),
        Some(Limit::Bytes(n)) => {
            assert!(text.contains("Max locked memory"));
            let _ = host::bytes_text(n);
        }
        None => {}
    }
}

/// What `sluice check`, `doctor` and `run` make of `dpdk.args`' memory options: numbers the
/// operator wrote, so anything up to u64::MAX MiB.
fn check_eal_args(args: &[String]) {
    let m = eal::memory_mb(args);
    let per_node = eal::socket_mem_mb(args);
    let _ = eal::vdev_ifaces(args, "net_af_packet0");
    let memory = sizing::eal_memory(args);
    match &memory {
        EalMemory::Fixed { from, .. } => assert!(!from.is_empty()),
        EalMemory::Hugepages { reserved } => {
            let asked = m.is_some_and(|mb| mb > 0) || per_node.iter().any(|&mb| mb > 0);
            assert_eq!(reserved.is_some(), asked, "{memory:?}");
        }
    }
    let estimate = sizing::estimate_config(fixture_config());
    if let Some(why) = sizing::shortfall(&estimate, args) {
        assert!(why.contains("EAL gets"), "{why}");
    }
}

/// `sluice maglev --size 251 --backend ...`: each spec read as the command does; what is read
/// is written back (`NAME=WEIGHT`) to the same backend, and the table built from them.
fn check_backends(text: &str) {
    let mut backends = Vec::new();
    for spec in text.lines().take(64) {
        match spec.parse::<Backend>() {
            Ok(b) => {
                assert!(!b.name.is_empty());
                assert_eq!(
                    b.to_string().parse::<Backend>().as_ref(),
                    Ok(&b),
                    "{spec:?}"
                );
                backends.push(b);
            }
            Err(e) => assert!(e.to_string().contains("NAME=WEIGHT"), "{e}"),
        }
    }
    match Table::build(251, &backends) {
        Ok(table) => assert_eq!(table.backends().len(), backends.len()),
        Err(
            MaglevError::DuplicateBackend { .. }
            | MaglevError::NoActiveBackend { .. }
            | MaglevError::SmallerThanBackends { .. },
        ) => {}
        Err(e) => panic!("{e} for {backends:?}"),
    }
}

fn check_url(text: &str) {
    for paths in [&["/-/reload"][..], &["/-/drain"], &["/metrics", "/state"]] {
        if let Ok(authority) = args::authority_of(text, paths) {
            assert!(text.contains(authority) && authority.contains(':'));
            assert!(!authority.contains('/') && !authority.ends_with(']'));
        }
    }
}

/// The address a refused file names must be the one the loader takes from it when it is not
/// refused after all.
fn check_listen(text: &str) {
    let listen = args::listen_in(text);
    if let Ok(c) = config::load_str(text, "fuzz.yaml") {
        assert_eq!(
            listen,
            Ok(c.metrics.listen),
            "the loader and the CLI disagree"
        );
    }
}

fn check_config(c: &Config) {
    let (block, warnings) = sizing::memory_block(c);
    assert!(!block.is_empty());
    assert!(warnings.iter().all(|w| block.contains(w.as_str())));
    let needs = memory::Needs::of(Some(c));
    assert!(needs.hugepages >= sizing::estimate_config(c).hugepages());
    check_eal_args(&c.dpdk.args);
    let _ = doctor::cpus::Workers::of(c);
}

/// A valid config with a PCI NIC, lcores, `--socket-mem` for two nodes and an af_packet vdev:
/// every check of the doctor has something to look at.
const FIXTURE: &str = "\
dpdk:
  args: [\"-l\", \"0-2\", \"--main-lcore\", \"0\", \"-a\", \"0000:3b:00.0\", \"--socket-mem\", \"512,512\", \"--vdev\", \"net_af_packet0,iface=eth0\"]
  mbufs: 16383
interfaces:
  - name: uplink
    device: \"0000:3b:00.0\"
    queues: 1
    address: 192.0.2.10/24
    gateway: 192.0.2.1
  - name: side
    device: net_af_packet0
    address: 198.51.100.2/24
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
";

fn fixture_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| match config::load_str(FIXTURE, "fixture.yaml") {
        Ok(c) => c,
        Err(e) => panic!("the fixture config does not load: {e}"),
    })
}

/// The files of the doctor's tree, one NUL-separated part of the text each, in this order;
/// a file past the last part is absent. Parts naming a hugepages directory are its name, its
/// nr_hugepages and its free_hugepages, a line each.
pub const DOCTOR_FILES: [&str; 20] = [
    "/proc/meminfo",
    "hugepages /sys/kernel/mm/hugepages",
    "hugepages /sys/kernel/mm/hugepages",
    "hugepages /sys/devices/system/node/node1/hugepages",
    "/proc/mounts",
    "/proc/self/limits",
    "/proc/self/status",
    "/proc/cmdline",
    "/sys/devices/system/cpu/online",
    "/sys/devices/system/cpu/isolated",
    "/sys/devices/system/cpu/nohz_full",
    "/proc/irq/default_smp_affinity",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/proc/modules",
    "/sys/devices/system/node/node0/cpulist",
    "/sys/devices/system/node/node1/cpulist",
    "/sys/bus/pci/devices/0000:3b:00.0/numa_node",
    "/sys/devices/system/cpu/cpu1/topology/thread_siblings_list",
    "/sys/class/net/eth0/mtu",
    "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode",
];

thread_local! {
    /// This thread's tree (the seed replay's tests run in threads of one process).
    static TREE: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

fn tree_root() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    TREE.with(|t| {
        t.borrow_mut()
            .get_or_insert_with(|| {
                let shm = std::path::Path::new("/dev/shm");
                let base = if shm.is_dir() {
                    shm.to_path_buf()
                } else {
                    std::env::temp_dir()
                };
                base.join(format!(
                    "sluice-fuzz-doctor-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ))
            })
            .clone()
    })
}

/// A single path component out of fuzz text (no `/`, NUL, `.` or `..`), or `None`.
fn component(name: &str) -> Option<&str> {
    let ok = !name.is_empty() && name.len() <= 200 && name != "." && name != "..";
    (ok && !name.contains(['/', '\0'])).then_some(name)
}

/// Writes the tree `text` describes under a fresh root and runs every check of `sluice
/// doctor` on it with the fixture config and with none; the report must render.
fn check_doctor(text: &str) {
    let root = tree_root();
    let _ = std::fs::remove_dir_all(&root);
    let write = |abs: &str, content: &str| {
        let path = root.join(abs.trim_start_matches('/'));
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(path, content);
    };
    for (file, part) in DOCTOR_FILES.iter().zip(text.split('\0')) {
        match file.strip_prefix("hugepages ") {
            Some(dir) => {
                let mut lines = part.lines();
                let Some(name) = lines.next().and_then(component) else {
                    continue;
                };
                let dir = format!("{dir}/{name}");
                write(&format!("{dir}/nr_hugepages"), lines.next().unwrap_or(""));
                write(&format!("{dir}/free_hugepages"), lines.next().unwrap_or(""));
            }
            None => write(file, part),
        }
    }
    let host = Host::new(&root);
    for config in [Some(fixture_config()), None] {
        let report = doctor::run(&host, config);
        assert!(!report.render().is_empty());
    }
    let _ = std::fs::remove_dir_all(&root);
}
