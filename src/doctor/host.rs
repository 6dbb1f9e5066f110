//! Reads under a root directory, and parsers for what /proc and /sys hold.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The largest CPU id accepted in lists and masks (Linux's NR_CPUS tops out at 8192).
pub const MAX_CPU: u32 = 8191;

/// The machine being checked: every absolute path is read under `root` (`/` normally).
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `abs` (an absolute path such as /proc/cmdline) under the root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    pub fn read(&self, abs: &str) -> Option<String> {
        std::fs::read_to_string(self.path(abs)).ok()
    }

    /// The file's first line, trimmed.
    pub fn read_line(&self, abs: &str) -> Option<String> {
        self.read(abs)
            .map(|t| t.lines().next().unwrap_or("").trim().to_owned())
    }

    /// The file's first line parsed as a number (sysfs writes one per file).
    pub fn read_num<T: std::str::FromStr>(&self, abs: &str) -> Option<T> {
        self.read_line(abs)?.parse().ok()
    }

    pub fn exists(&self, abs: &str) -> bool {
        self.path(abs).exists() || self.path(abs).is_symlink()
    }

    /// The file name a symlink points to (a sysfs `driver` link names the driver this way).
    pub fn link_name(&self, abs: &str) -> Option<String> {
        let target = std::fs::read_link(self.path(abs)).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    /// The names in a directory, sorted; empty when it is missing.
    pub fn list(&self, abs: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(abs))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub fn cmdline(&self) -> Cmdline {
        Cmdline::parse(&self.read("/proc/cmdline").unwrap_or_default())
    }

    /// Whether kernel module `name` is loaded (or built in with a /sys/module entry).
    pub fn module_loaded(&self, name: &str) -> bool {
        let name = name.replace('-', "_");
        self.path(&format!("/sys/module/{name}")).is_dir()
            || self
                .read("/proc/modules")
                .is_some_and(|m| module_listed(&m, &name))
    }
}

/// Whether /proc/modules (`name size refcount deps state address` a line) lists `name`.
pub fn module_listed(modules: &str, name: &str) -> bool {
    modules
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

/// The kernel command line as `key[=value]` parameters (those after `--` go to init: left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    params: Vec<(String, Option<String>)>,
}

impl Cmdline {
    pub fn parse(text: &str) -> Self {
        let mut params = Vec::new();
        for word in split_words(text) {
            if word == "--" {
                break;
            }
            match word.split_once('=') {
                Some((k, v)) => params.push((k.to_owned(), Some(v.trim_matches('"').to_owned()))),
                None => params.push((word, None)),
            }
        }
        Self { params }
    }

    /// The value of the last `key=value` (the kernel lets the last one win).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Whitespace-separated words; a double-quoted stretch (`a="b c"`) stays in one word.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// /proc/meminfo as name → value; values given in kB are converted to bytes.
pub fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(Ok(n)) = parts.next().map(str::parse::<u64>) else {
            continue;
        };
        let value = match parts.next() {
            Some("kB") => n.saturating_mul(1024),
            _ => n,
        };
        out.insert(name.trim().to_owned(), value);
    }
    out
}

/// A CPU list as the kernel writes it (`1-3,5`; empty for none). `None` if malformed.
pub fn parse_cpu_list(text: &str) -> Option<BTreeSet<u32>> {
    let text = text.trim();
    let mut cpus = BTreeSet::new();
    if text.is_empty() || text == "(null)" {
        return Some(cpus);
    }
    for part in text.split(',') {
        let num = |s: &str| s.trim().parse::<u32>().ok().filter(|&n| n <= MAX_CPU);
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (num(lo)?, num(hi)?),
            None => (num(part)?, num(part)?),
        };
        if lo > hi {
            return None;
        }
        cpus.extend(lo..=hi);
    }
    Some(cpus)
}

/// A CPU mask as in /proc/irq/default_smp_affinity: hex, in comma-separated 32-bit groups,
/// most significant first (`00000000,0000000f`). `None` if malformed.
pub fn parse_cpu_mask(text: &str) -> Option<BTreeSet<u32>> {
    let mut cpus = BTreeSet::new();
    let groups: Vec<&str> = text.trim().split(',').collect();
    for (i, group) in groups.iter().rev().enumerate() {
        if group.is_empty() || group.len() > 8 || (i + 1) * 32 > MAX_CPU as usize + 1 {
            return None;
        }
        let bits = u32::from_str_radix(group, 16).ok()?;
        cpus.extend(
            (0..32)
                .filter(|b| bits >> b & 1 == 1)
                .map(|b| i as u32 * 32 + b),
        );
    }
    Some(cpus)
}

/// The transparent huge page mode in force: the bracketed word of
/// /sys/kernel/mm/transparent_hugepage/enabled (`always [madvise] never`).
pub fn thp_mode(text: &str) -> Option<&str> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
}

/// The mount points of the hugetlbfs mounts in a /proc/mounts text (`device mountpoint type
/// options ...` a line; `?` for a line cut short of its mount point).
pub fn hugetlbfs_mounts(mounts: &str) -> Vec<&str> {
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"hugetlbfs")).then(|| f.get(1).copied().unwrap_or("?"))
        })
        .collect()
}

/// The page size in bytes a hugepages directory is named for (`hugepages-2048kB`); `None` for
/// another name or a size past u64.
pub fn hugepage_size(name: &str) -> Option<u64> {
    name.strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse::<u64>()
        .ok()?
        .checked_mul(1024)
}

/// A resource limit: a byte count or unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Unlimited,
    Bytes(u64),
}

/// The soft "Max locked memory" limit from a /proc/<pid>/limits text.
pub fn parse_memlock(limits: &str) -> Option<Limit> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))?;
    let soft = line["Max locked memory".len()..]
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(Limit::Unlimited),
        n => n.parse().ok().map(Limit::Bytes),
    }
}

/// Whether CapEff in a /proc/<pid>/status text holds CAP_IPC_LOCK (bit 14), which lifts the
/// memlock limit. `None` without a readable CapEff line.
pub fn has_cap_ipc_lock(status: &str) -> Option<bool> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    let caps = u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()?;
    Some(caps >> 14 & 1 == 1)
}

/// `0-2,4` style; `none` for the empty set.
pub fn cpus_text(cpus: &BTreeSet<u32>) -> String {
    if cpus.is_empty() {
        "none".to_owned()
    } else {
        control::config::lcores::format_cores(cpus)
    }
}

/// `512 B`, `64 KiB`, `101 MiB`, `1.5 GiB`.
pub fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut v = n as f64;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v >= 100.0 || v.fract() == 0.0 {
        format!("{} {}", v.ceil() as u64, UNITS[unit])
    } else {
        format!("{:.1} {}", (v * 10.0).ceil() / 10.0, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(a: &[u32]) -> BTreeSet<u32> {
        a.iter().copied().collect()
    }

    #[test]
    fn cmdline_keeps_kernel_parameters_and_drops_inits() {
        let c = Cmdline::parse(
            "BOOT_IMAGE=/vmlinuz root=UUID=ab-cd ro quiet isolcpus=domain,2-3 \
             dyndbg=\"file x.c +p\" iommu=pt intel_iommu=off intel_iommu=on -- --init-arg iommu=no\n",
        );
        assert_eq!(c.get("root"), Some("UUID=ab-cd"));
        assert_eq!(c.get("isolcpus"), Some("domain,2-3"));
        assert_eq!(c.get("dyndbg"), Some("file x.c +p"));
        assert_eq!(c.get("intel_iommu"), Some("on"), "the last one wins");
        assert_eq!(c.get("iommu"), Some("pt"), "after -- is init's");
        assert!(c.params.contains(&("quiet".to_owned(), None)));
        assert!(!c.params.iter().any(|(k, _)| k == "--init-arg"));
        assert_eq!(Cmdline::parse(""), Cmdline::default());
    }

    #[test]
    fn meminfo_values_in_kb_become_bytes() {
        let m = parse_meminfo(
            "MemTotal:       16384000 kB\nHugePages_Total:    1024\nHugePages_Free:      512\n\
             Hugepagesize:       2048 kB\nbroken line\nAlso: x kB\n",
        );
        assert_eq!(m["MemTotal"], 16384000 * 1024);
        assert_eq!(m["HugePages_Total"], 1024);
        assert_eq!(m["HugePages_Free"], 512);
        assert_eq!(m["Hugepagesize"], 2 << 20);
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn cpu_lists_parse_like_the_kernel_writes_them() {
        assert_eq!(parse_cpu_list("1-3,5\n"), Some(set(&[1, 2, 3, 5])));
        assert_eq!(parse_cpu_list("0"), Some(set(&[0])));
        assert_eq!(parse_cpu_list(""), Some(set(&[])));
        assert_eq!(parse_cpu_list("\n"), Some(set(&[])));
        assert_eq!(parse_cpu_list("(null)\n"), Some(set(&[])));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("1,,2"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(parse_cpu_list("0-99999"), None);
    }

    #[test]
    fn cpu_masks_parse_in_32_bit_groups() {
        assert_eq!(parse_cpu_mask("f\n"), Some(set(&[0, 1, 2, 3])));
        assert_eq!(parse_cpu_mask("1"), Some(set(&[0])));
        assert_eq!(parse_cpu_mask("00000001,00000000"), Some(set(&[32])));
        assert_eq!(parse_cpu_mask("00000000,00000006"), Some(set(&[1, 2])));
        assert_eq!(parse_cpu_mask("0"), Some(set(&[])));
        assert_eq!(parse_cpu_mask("g"), None);
        assert_eq!(parse_cpu_mask("123456789"), None);
        assert_eq!(parse_cpu_mask(""), None);
    }

    #[test]
    fn memlock_and_capabilities() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63338                63338                processes \n\
                      Max locked memory         65536                unlimited            bytes     \n";
        assert_eq!(parse_memlock(limits), Some(Limit::Bytes(65536)));
        assert_eq!(
            parse_memlock(
                "Max locked memory         unlimited            unlimited            bytes\n"
            ),
            Some(Limit::Unlimited)
        );
        assert_eq!(parse_memlock("Max processes 1 1\n"), None);
        assert_eq!(
            has_cap_ipc_lock("Name:\tx\nCapEff:\t000001ffffffffff\n"),
            Some(true)
        );
        assert_eq!(has_cap_ipc_lock("CapEff:\t0000000000000000\n"), Some(false));
        assert_eq!(has_cap_ipc_lock("CapEff:\t0000000000004000\n"), Some(true));
        assert_eq!(has_cap_ipc_lock("Name:\tx\n"), None);
    }

    #[test]
    fn byte_counts_read_easily() {
        assert_eq!(bytes_text(512), "512 B");
        assert_eq!(bytes_text(64 << 10), "64 KiB");
        assert_eq!(bytes_text(101 << 20), "101 MiB");
        assert_eq!(bytes_text(3 << 29), "1.5 GiB");
        assert_eq!(bytes_text((1 << 30) + 1), "1.1 GiB", "rounds up");
    }

    #[test]
    fn paths_are_read_under_the_root() {
        let h = Host::new("/tmp/fake");
        assert_eq!(
            h.path("/proc/cmdline"),
            PathBuf::from("/tmp/fake/proc/cmdline")
        );
        assert_eq!(
            Host::new("/").path("/proc/cmdline"),
            PathBuf::from("/proc/cmdline")
        );
    }
}
