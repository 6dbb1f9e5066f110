//! Memory: the estimate of what a config needs, and the hugepage, hugetlbfs, ordinary-memory
//! and memlock checks against it. The estimate itself is in [`crate::sizing`] (shared with
//! `sluice check` and the start errors).
//!
//! Where sluice's memory lives (src/appliance/mod.rs, dataplane/src/flow.rs):
//! - **hugepages (DPDK)**: one mbuf pool per interface (`Mempool::with_default_buffers`, with
//!   `dpdk.mbufs` mbufs), the NIC descriptor rings, and EAL's own memzones.
//! - **ordinary memory**: each worker's flow table (`FlowTable::new`, Rust heap, advised to
//!   transparent huge pages but not from DPDK's hugepages) and the Maglev tables of the
//!   snapshots. These need RAM, not hugepages, so they are checked against MemAvailable.
use control::config::{Config, DEFAULT_MBUFS};

pub use crate::sizing::{estimate, estimate_config, Estimate, EAL_OVERHEAD_BYTES, MIB};
use crate::sizing::{mib_bytes, total_mb};

use super::eal;
use super::host::{
    bytes_text, has_cap_ipc_lock, hugepage_size, hugetlbfs_mounts, parse_meminfo, parse_memlock,
    thp_mode, Host, Limit,
};
use super::{Finding, Status};

/// The hugepage memory to look for, and what it is based on.
#[derive(Debug, Clone)]
pub struct Needs {
    pub estimate: Estimate,
    pub hugepages: u64,
    pub basis: String,
}

impl Needs {
    pub fn of(config: Option<&Config>) -> Self {
        let Some(c) = config else {
            let e = estimate(1, u64::from(DEFAULT_MBUFS), false, 0, 0, false, &[]);
            return Self {
                estimate: e,
                hugepages: e.hugepages(),
                basis: format!(
                    "no config: one port of {DEFAULT_MBUFS} mbufs + {} for EAL",
                    bytes_text(EAL_OVERHEAD_BYTES)
                ),
            };
        };
        let e = estimate_config(c);
        let s = if e.ports == 1 { "" } else { "s" };
        let mut basis = format!(
            "{} port{s} x {} mbufs x {} B + {} for EAL",
            e.ports,
            e.mbufs_per_port,
            e.mbuf_bytes,
            bytes_text(e.eal_overhead)
        );
        let mut hugepages = e.hugepages();
        let args = &c.dpdk.args;
        let asked = mib_bytes(
            eal::memory_mb(args)
                .unwrap_or(0)
                .max(total_mb(eal::socket_mem_mb(args))),
        );
        if asked > hugepages {
            hugepages = asked;
            basis = format!(
                "-m/--socket-mem in dpdk.args; the config alone needs about {}",
                bytes_text(e.hugepages())
            );
        }
        Self {
            estimate: e,
            hugepages,
            basis,
        }
    }
}

/// One hugepage size's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pages {
    size: u64,
    total: u64,
    free: u64,
}

/// The hugepages under `dir` (a `hugepages` directory of /sys/kernel/mm or of a NUMA node).
fn pages_in(host: &Host, dir: &str) -> Vec<Pages> {
    let mut out = Vec::new();
    for name in host.list(dir) {
        let Some(size) = hugepage_size(&name) else {
            continue;
        };
        let num = |f: &str| {
            host.read_line(&format!("{dir}/{name}/{f}"))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        out.push(Pages {
            size,
            total: num("nr_hugepages"),
            free: num("free_hugepages"),
        });
    }
    out
}

/// Host-wide hugepages, from sysfs or else /proc/meminfo.
fn host_pages(host: &Host) -> Vec<Pages> {
    let pages = pages_in(host, "/sys/kernel/mm/hugepages");
    if !pages.is_empty() {
        return pages;
    }
    let m = parse_meminfo(&host.read("/proc/meminfo").unwrap_or_default());
    match (
        m.get("Hugepagesize"),
        m.get("HugePages_Total"),
        m.get("HugePages_Free"),
    ) {
        (Some(&size), Some(&total), Some(&free)) => vec![Pages { size, total, free }],
        _ => Vec::new(),
    }
}

/// The bytes of the free pages: the counts are the kernel's (or a `--root` tree's) to write,
/// so as much as can be past u64.
fn free_bytes(pages: &[Pages]) -> u64 {
    pages
        .iter()
        .map(|p| p.free.saturating_mul(p.size))
        .fold(0, u64::saturating_add)
}

fn pages_text(pages: &[Pages]) -> String {
    let sizes: Vec<String> = pages
        .iter()
        .filter(|p| p.total > 0)
        .map(|p| format!("{} of {} x {} free", p.free, p.total, bytes_text(p.size)))
        .collect();
    if sizes.is_empty() {
        "none reserved".to_owned()
    } else {
        sizes.join(", ")
    }
}

/// The fix: enough more 2 MiB pages under `sysfs_dir` (a hugepages directory) for `missing` bytes.
fn more_pages_fix(pages: &[Pages], sysfs_dir: &str, missing: u64, cmdline: bool) -> String {
    const TWO_MIB: u64 = 2 * MIB;
    let now = pages
        .iter()
        .find(|p| p.size == TWO_MIB)
        .map_or(0, |p| p.total);
    let n = now.saturating_add(missing.div_ceil(TWO_MIB));
    let file = format!("{sysfs_dir}/hugepages-2048kB/nr_hugepages");
    if cmdline {
        format!("echo {n} > {file} (or hugepages={n} on the kernel command line)")
    } else {
        format!("echo {n} > {file}")
    }
}

/// Free hugepages against the need; per NUMA node too when `--socket-mem` asks for that.
pub fn hugepages(host: &Host, config: Option<&Config>, needs: &Needs) -> Vec<Finding> {
    let args = config.map(|c| c.dpdk.args.as_slice()).unwrap_or_default();
    if eal::has_flag(args, "--no-huge") {
        return vec![Finding::ok(
            "hugepages",
            "skipped: EAL runs with --no-huge: memory comes from the heap, for tests only",
        )];
    }
    let pages = host_pages(host);
    let free = free_bytes(&pages);
    let found = format!(
        "{} ({} free) for an estimated {} ({})",
        pages_text(&pages),
        bytes_text(free),
        bytes_text(needs.hugepages),
        needs.basis
    );
    let mut out = vec![if free >= needs.hugepages {
        Finding::ok("hugepages", found)
    } else {
        let fix = more_pages_fix(
            &pages,
            "/sys/kernel/mm/hugepages",
            needs.hugepages - free,
            true,
        );
        Finding::fail("hugepages", found, fix)
    }];
    for (node, mb) in eal::socket_mem_mb(args).into_iter().enumerate() {
        if mb == 0 {
            continue;
        }
        let dir = format!("/sys/devices/system/node/node{node}/hugepages");
        let pages = pages_in(host, &dir);
        let free = free_bytes(&pages);
        let need = mib_bytes(mb);
        let topic = format!("hugepages node{node}");
        let found = format!(
            "{} ({} free) for --socket-mem's {mb} MiB",
            pages_text(&pages),
            bytes_text(free)
        );
        out.push(if free >= need {
            Finding::ok(topic, found)
        } else {
            let fix = more_pages_fix(&pages, &dir, need - free, false);
            Finding::fail(topic, found, fix)
        });
    }
    out
}

/// A hugetlbfs mount for EAL to map hugepages from (not needed with --no-huge or --in-memory).
pub fn hugetlbfs(host: &Host, config: Option<&Config>) -> Option<Finding> {
    let args = config.map(|c| c.dpdk.args.as_slice()).unwrap_or_default();
    if eal::has_flag(args, "--no-huge") {
        return None;
    }
    if eal::has_flag(args, "--in-memory") {
        return Some(Finding::ok(
            "hugetlbfs",
            "not needed: EAL runs with --in-memory",
        ));
    }
    let Some(mounts) = host.read("/proc/mounts") else {
        return Some(Finding::warn(
            "hugetlbfs",
            "cannot read /proc/mounts",
            "check for a hugetlbfs mount with `mount -t hugetlbfs`",
        ));
    };
    let found = hugetlbfs_mounts(&mounts);
    Some(if found.is_empty() {
        Finding::fail(
            "hugetlbfs",
            "not mounted (EAL maps hugepages through it)",
            "mount -t hugetlbfs nodev /dev/hugepages (at boot: systemctl enable --now dev-hugepages.mount)",
        )
    } else {
        Finding::ok("hugetlbfs", format!("mounted at {}", found.join(", ")))
    })
}

/// The flow and Maglev tables (ordinary memory) against MemAvailable.
pub fn ordinary_memory(host: &Host, c: &Config, needs: &Needs) -> Finding {
    let e = &needs.estimate;
    let what = format!(
        "flow tables {} x {} (flows.capacity {} per worker) + Maglev tables {} = an estimated {} of ordinary memory (not hugepages)",
        e.workers,
        bytes_text(e.flow_tables / e.workers.max(1)),
        c.flows.capacity,
        bytes_text(e.maglev_tables),
        bytes_text(e.ordinary())
    );
    let m = parse_meminfo(&host.read("/proc/meminfo").unwrap_or_default());
    let Some(&available) = m.get("MemAvailable") else {
        return Finding::warn(
            "memory",
            format!("{what}; MemAvailable not in /proc/meminfo"),
            "check free memory with `free -m`",
        );
    };
    let found = format!("{what}; {} available", bytes_text(available));
    if available >= e.ordinary() {
        Finding::ok("memory", found)
    } else {
        Finding::fail("memory", found, crate::sizing::ordinary_fix(c))
    }
}

/// Transparent huge pages, which the flow tables ask for (`MADV_HUGEPAGE`): without them a
/// large table is on 4 KiB pages and a flow lookup also walks the page tables, a cost of its
/// own beside the cache miss (`bench/floor.sh` measures it with `page_walk`).
pub fn transparent_huge_pages(host: &Host) -> Finding {
    const FILE: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
    const FIX: &str = "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled \
                       (at boot: transparent_hugepage=madvise on the kernel command line)";
    let Some(modes) = host.read_line(FILE) else {
        return Finding::warn(
            "thp",
            format!("no {FILE}: a kernel without transparent huge pages keeps the flow tables on 4 KiB pages"),
            "a kernel built with CONFIG_TRANSPARENT_HUGEPAGE",
        );
    };
    // The kernel brackets the mode in force: "always [madvise] never".
    match thp_mode(&modes) {
        Some(m @ ("always" | "madvise")) => Finding::ok(
            "thp",
            format!("{m}: the flow tables get 2 MiB pages where the kernel has them free"),
        ),
        Some("never") => Finding::warn(
            "thp",
            "never: the flow tables stay on 4 KiB pages, so a lookup in a large table also walks \
             the page tables",
            FIX,
        ),
        _ => Finding::warn(
            "thp",
            format!("cannot tell the mode from {modes:?} in {FILE}"),
            FIX,
        ),
    }
}

/// RLIMIT_MEMLOCK: vfio pins (locks) all of DPDK's hugepage memory for DMA.
pub fn memlock(host: &Host, config: Option<&Config>, needs: &Needs, vdev_only: bool) -> Finding {
    const FIX: &str = "ulimit -l unlimited where sluice starts (systemd: LimitMEMLOCK=infinity; \
                       or `<user> - memlock unlimited` in /etc/security/limits.conf)";
    let Some(limit) = host
        .read("/proc/self/limits")
        .as_deref()
        .and_then(parse_memlock)
    else {
        return Finding::warn(
            "memlock",
            "cannot read Max locked memory from /proc/self/limits",
            FIX,
        );
    };
    let limit_text = match limit {
        Limit::Unlimited => "unlimited".to_owned(),
        Limit::Bytes(n) => bytes_text(n),
    };
    if vdev_only {
        return Finding::ok(
            "memlock",
            format!("{limit_text}; not needed: the config has no PCI devices for vfio to pin memory for"),
        );
    }
    let need = needs.hugepages;
    match limit {
        Limit::Unlimited => Finding::ok("memlock", "unlimited"),
        Limit::Bytes(n) if n >= need => Finding::ok(
            "memlock",
            format!(
                "{limit_text}, enough for the estimated {}",
                bytes_text(need)
            ),
        ),
        Limit::Bytes(_) => {
            let found = format!(
                "{limit_text}, less than the estimated {} of hugepage memory vfio pins for DMA",
                bytes_text(need)
            );
            let cap = host
                .read("/proc/self/status")
                .as_deref()
                .and_then(has_cap_ipc_lock);
            if cap == Some(true) {
                Finding::ok(
                    "memlock",
                    format!("{found}, but this process has CAP_IPC_LOCK, which lifts the limit (the user sluice runs as may not)"),
                )
            } else {
                let status = if config.is_some() {
                    Status::Fail
                } else {
                    Status::Warn
                };
                Finding::bad(status, "memlock", found, FIX)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::fake::{config, Tree};

    /// Page counts and sizes whose product, or sum, is past u64 (a --root tree says what it
    /// likes) are as much as can be, not an overflow; a size past u64 names no page size.
    #[test]
    fn hugepage_counts_past_u64_are_as_much_as_can_be() {
        let t = Tree::new("huge-counts");
        let huge = u64::MAX.to_string();
        for size in ["2048kB", "1048576kB"] {
            let dir = format!("/sys/kernel/mm/hugepages/hugepages-{size}");
            t.write(&format!("{dir}/nr_hugepages"), &huge)
                .write(&format!("{dir}/free_hugepages"), &huge);
        }
        let dir = "/sys/kernel/mm/hugepages/hugepages-99999999999999999kB";
        t.write(&format!("{dir}/nr_hugepages"), "1")
            .write(&format!("{dir}/free_hugepages"), "1");
        let node = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB";
        t.write(&format!("{node}/nr_hugepages"), &huge)
            .write(&format!("{node}/free_hugepages"), &huge);
        let c = config(
            "\"--socket-mem\", \"99999999999999999\"",
            "  - name: a\n    device: net_null0\n    address: 192.0.2.10/24\n",
        );
        let host = t.host();
        assert_eq!(host_pages(&host).len(), 2, "the size past u64 is skipped");
        let needs = Needs::of(Some(&c));
        assert_eq!(needs.hugepages, u64::MAX);
        let found = hugepages(&host, Some(&c), &needs);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|f| f.status == Status::Ok), "{found:?}");
        // Few free pages of one size for that much: the fix's page count saturates too.
        let fix = more_pages_fix(&host_pages(&host), "/x", u64::MAX, false);
        assert!(fix.contains(&huge), "{fix}");
    }

    #[test]
    fn thp_mode_is_read_from_the_bracketed_word() {
        let root = std::env::temp_dir().join(format!("sluice-doctor-thp-{}", std::process::id()));
        let file = root.join("sys/kernel/mm/transparent_hugepage/enabled");
        let host = Host::new(&root);
        let check = |text: Option<&str>| {
            let _ = std::fs::remove_dir_all(&root);
            if let Some(t) = text {
                std::fs::create_dir_all(file.parent().expect("has a parent")).expect("made");
                std::fs::write(&file, t).expect("written");
            }
            let f = transparent_huge_pages(&host);
            (f.status, f.found)
        };
        let (st, found) = check(Some("[always] madvise never\n"));
        assert_eq!(
            (st, found.starts_with("always:")),
            (Status::Ok, true),
            "{found}"
        );
        assert_eq!(check(Some("always [madvise] never\n")).0, Status::Ok);
        assert_eq!(check(Some("always madvise [never]\n")).0, Status::Warn);
        let (st, found) = check(Some("always madvise never\n"));
        assert_eq!(
            (st, found.contains("cannot tell")),
            (Status::Warn, true),
            "{found}"
        );
        let (st, found) = check(None);
        assert_eq!(
            (st, found.starts_with("no /sys")),
            (Status::Warn, true),
            "{found}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
