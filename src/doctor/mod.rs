//! `sluice doctor`: is this host ready to run DPDK (and this config)? One line per check, each
//! ok, warn or fail, and for warn/fail the command or config change that fixes it.
//!
//! Every file is read through [`Host`], which prefixes a root directory (`--root`), so the
//! checks run against a fake /proc, /sys and /dev tree in tests.
//!
//! - [`host`]: the root-prefixed reads and the parsers of what the kernel writes there.
//! - [`memory`]: hugepages (free vs the estimate), hugetlbfs, ordinary memory, memlock.
//! - [`devices`]: IOMMU, the vfio modules, and each configured PCI device's driver.
//! - [`cpus`]: the worker lcores against isolcpus, nohz_full and the IRQ affinity.
//! - [`placement`]: the NUMA nodes of the workers and the main lcore against each interface's
//!   device (a vdev has none, unless on a PCI NIC's kernel interface) and each other; workers
//!   or the main lcore on hyperthreads of one core.
//! - [`links`]: the MTU of each kernel interface the config sends through (an af_packet,
//!   af_xdp or pcap device's, its veth peer, the exception path's tap) against `mtu`.
//! - [`eal`]: what `dpdk.args` says about memory, devices and the vdevs' kernel interfaces.
pub mod cpus;
pub mod devices;
pub mod eal;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fake;
pub mod host;
pub mod links;
pub mod memory;
pub mod placement;

use std::fmt;

use control::config::Config;
use serde::Serialize;

pub use host::Host;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's outcome: what was found and, unless ok, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub status: Status,
    pub topic: String,
    pub found: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(topic: impl Into<String>, found: impl Into<String>) -> Self {
        Self {
            status: Status::Ok,
            topic: topic.into(),
            found: found.into(),
            fix: None,
        }
    }

    pub fn warn(
        topic: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::bad(Status::Warn, topic, found, fix)
    }

    pub fn fail(
        topic: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::bad(Status::Fail, topic, found, fix)
    }

    /// A warn or fail (by `status`) with its fix.
    pub fn bad(
        status: Status,
        topic: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            status,
            topic: topic.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Finding {
    /// `ok    topic: found`, and for warn/fail an indented `fix: ...` line under it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<4}  {}: {}",
            self.status.as_str(),
            self.topic,
            self.found
        )?;
        if let Some(fix) = &self.fix {
            writeln!(f, "      fix: {fix}")?;
        }
        Ok(())
    }
}

/// Every finding, in the order checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }

    /// No check failed (warnings allowed).
    pub fn passed(&self) -> bool {
        self.count(Status::Fail) == 0
    }

    /// The findings and a last line of totals.
    pub fn render(&self) -> String {
        let mut out: String = self.findings.iter().map(|f| f.to_string()).collect();
        out.push_str(&format!(
            "doctor: {} ok, {} warn, {} fail\n",
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail)
        ));
        out
    }
}

/// Runs every check: the host-wide ones always, the per-device and per-lcore ones when a
/// config is given.
pub fn run(host: &Host, config: Option<&Config>) -> Report {
    let mut report = Report::default();
    let needs = memory::Needs::of(config);
    let pci = config.map(devices::pci_devices).unwrap_or_default();
    let vdev_only = config.is_some() && pci.is_empty();
    for f in memory::hugepages(host, config, &needs) {
        report.push(f);
    }
    if let Some(f) = memory::hugetlbfs(host, config) {
        report.push(f);
    }
    if let Some(c) = config {
        report.push(memory::ordinary_memory(host, c, &needs));
        report.push(memory::transparent_huge_pages(host));
    }
    report.push(memory::memlock(host, config, &needs, vdev_only));
    report.push(devices::iommu(host, config.is_some(), &pci));
    report.push(devices::modules(host, config.is_some(), &pci));
    for addr in &pci {
        report.push(devices::device(host, addr));
    }
    for f in cpus::isolation(host, config) {
        report.push(f);
    }
    if let Some(c) = config {
        // Without lcores that are CPUs, the isolation checks above already said why.
        if let Some(w) = cpus::Workers::of(c) {
            report.push(placement::numa(host, c, &w));
            report.push(placement::smt(host, &w));
        }
        for f in links::mtu(host, c) {
            report.push(f);
        }
    }
    report
}
