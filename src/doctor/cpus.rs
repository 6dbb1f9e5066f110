//! CPU isolation of the worker lcores: isolcpus, nohz_full and the default IRQ affinity.
//!
//! A worker polls its queue without pause; another task, the timer tick or an interrupt on
//! its CPU shows up as latency and drops. These are warnings: sluice works without them.
use std::collections::BTreeSet;

use control::config::lcores::{eal_cores, EalCores};
use control::config::Config;

use super::host::{cpus_text, parse_cpu_list, parse_cpu_mask, Cmdline, Host};
use super::Finding;

/// What the kernel says about CPUs.
struct Cpus {
    online: Option<BTreeSet<u32>>,
    isolated: BTreeSet<u32>,
    nohz_full: BTreeSet<u32>,
    /// The CPUs new interrupts go to; `None` if unknown.
    irq_default: Option<BTreeSet<u32>>,
}

/// The CPU ids of a command-line list, skipping isolcpus' flags (`domain,managed_irq,2-3`).
pub fn cmdline_cpus(cmdline: &Cmdline, key: &str) -> BTreeSet<u32> {
    cmdline
        .get(key)
        .unwrap_or_default()
        .split(',')
        .filter_map(parse_cpu_list)
        .flatten()
        .collect()
}

impl Cpus {
    fn read(host: &Host) -> Self {
        let cmdline = host.cmdline();
        let list = |path: &str| host.read(path).as_deref().and_then(parse_cpu_list);
        Self {
            online: list("/sys/devices/system/cpu/online"),
            isolated: list("/sys/devices/system/cpu/isolated")
                .unwrap_or_else(|| cmdline_cpus(&cmdline, "isolcpus")),
            nohz_full: list("/sys/devices/system/cpu/nohz_full")
                .unwrap_or_else(|| cmdline_cpus(&cmdline, "nohz_full")),
            irq_default: host
                .read("/proc/irq/default_smp_affinity")
                .as_deref()
                .and_then(parse_cpu_mask)
                .or_else(|| cmdline.get("irqaffinity").and_then(parse_cpu_list)),
        }
    }
}

/// The kernel-parameter fix that isolates `workers` and keeps interrupts on `others`.
fn boot_fix(
    isolated: &BTreeSet<u32>,
    nohz: &BTreeSet<u32>,
    workers: &BTreeSet<u32>,
    others: &BTreeSet<u32>,
) -> String {
    let iso: BTreeSet<u32> = isolated.union(workers).copied().collect();
    let nohz: BTreeSet<u32> = nohz.union(workers).copied().collect();
    format!(
        "add isolcpus={} nohz_full={} irqaffinity={} to the kernel command line, then reboot",
        cpus_text(&iso),
        cpus_text(&nohz),
        cpus_text(others)
    )
}

/// The lcores `dpdk.args` runs, as CPU ids; `Err` with the warning that says why they cannot be
/// told (an lcore mapped to other CPUs with `@`, no core option, a malformed one).
fn lcores(args: &[String]) -> Result<EalCores, Finding> {
    if args
        .iter()
        .any(|a| a.starts_with("--lcores") && a.contains('@'))
        || args
            .windows(2)
            .any(|w| w[0] == "--lcores" && w[1].contains('@'))
    {
        return Err(Finding::warn(
            "lcores",
            "--lcores maps lcores to other CPUs (@): their isolation, NUMA nodes and hyperthread siblings are not checked",
            "check by hand that the CPUs after each @ are in /sys/devices/system/cpu/isolated and nohz_full, on the NIC's node and on cores of their own",
        ));
    }
    match eal_cores(args) {
        Ok(Some(cores)) => Ok(cores),
        Ok(None) => Err(Finding::warn(
            "lcores",
            "dpdk.args names no cores (-l, --lcores or -c): EAL takes every CPU, so none can be isolated for the rest of the system",
            "add -l with the main lcore and one worker per queue to dpdk.args, e.g. \"-l\", \"0-2\"",
        )),
        Err(e) => Err(Finding::warn(
            "lcores",
            format!("dpdk.args[{}]: expected {}, got {}", e.arg, e.expected, e.got),
            "fix the core list in dpdk.args (sluice check -c FILE)",
        )),
    }
}

/// The main lcore and the workers as the appliance starts them: the other lcores in ascending
/// order, one per RX queue, interfaces and their queues in config order (src/appliance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workers {
    pub main: u32,
    /// (CPU, index of the interface whose queue it polls); lcores beyond the queues stay idle.
    pub polling: Vec<(u32, usize)>,
}

impl Workers {
    /// `None` when the lcores cannot be told (the `lcores` finding says why).
    pub fn of(c: &Config) -> Option<Self> {
        let cores = lcores(&c.dpdk.args).ok()?;
        let queues = c
            .interfaces
            .iter()
            .enumerate()
            .flat_map(|(i, ic)| std::iter::repeat_n(i, usize::from(ic.queues)));
        let polling = cores
            .lcores
            .iter()
            .copied()
            .filter(|&l| l != cores.main)
            .zip(queues)
            .collect();
        Some(Self {
            main: cores.main,
            polling,
        })
    }

    /// Every worker's CPU.
    pub fn cpus(&self) -> BTreeSet<u32> {
        self.polling.iter().map(|&(cpu, _)| cpu).collect()
    }

    /// The CPUs of the workers polling interface `i`.
    pub fn of_interface(&self, i: usize) -> BTreeSet<u32> {
        self.polling
            .iter()
            .filter(|&&(_, at)| at == i)
            .map(|&(cpu, _)| cpu)
            .collect()
    }
}

pub fn isolation(host: &Host, config: Option<&Config>) -> Vec<Finding> {
    let cpus = Cpus::read(host);
    let Some(c) = config else {
        return vec![Finding::ok(
            "cpus",
            format!(
                "online {}, isolated {}, nohz_full {} (give -c FILE to check the worker lcores)",
                cpus.online.as_ref().map_or("unknown".to_owned(), cpus_text),
                cpus_text(&cpus.isolated),
                cpus_text(&cpus.nohz_full)
            ),
        )];
    };
    let cores = match lcores(&c.dpdk.args) {
        Ok(cores) => cores,
        Err(f) => return vec![f],
    };
    let workers: BTreeSet<u32> = cores
        .lcores
        .iter()
        .copied()
        .filter(|&l| l != cores.main)
        .collect();
    let others: BTreeSet<u32> = match &cpus.online {
        Some(online) if online.iter().any(|c| !workers.contains(c)) => {
            online.difference(&workers).copied().collect()
        }
        _ => BTreeSet::from([cores.main]),
    };
    let mut out = Vec::new();
    let found = format!("main {}, workers {}", cores.main, cpus_text(&workers));
    out.push(match &cpus.online {
        Some(online) if !cores.lcores.is_subset(online) => {
            let off: BTreeSet<u32> = cores.lcores.difference(online).copied().collect();
            Finding::fail(
                "lcores",
                format!(
                    "{found}: {} not online (online {})",
                    cpus_text(&off),
                    cpus_text(online)
                ),
                format!(
                    "take the lcores in dpdk.args -l from the online CPUs {}",
                    cpus_text(online)
                ),
            )
        }
        Some(online) => Finding::ok("lcores", format!("{found} (online {})", cpus_text(online))),
        None => Finding::ok("lcores", format!("{found} (online CPUs unknown)")),
    });

    let fix = boot_fix(&cpus.isolated, &cpus.nohz_full, &workers, &others);
    for (topic, have, what) in [
        (
            "isolcpus",
            &cpus.isolated,
            "the scheduler may run other tasks on",
        ),
        (
            "nohz_full",
            &cpus.nohz_full,
            "the timer tick still interrupts",
        ),
    ] {
        let missing: BTreeSet<u32> = workers.difference(have).copied().collect();
        out.push(if missing.is_empty() {
            Finding::ok(
                topic,
                format!(
                    "worker lcores {} covered ({topic}: {})",
                    cpus_text(&workers),
                    cpus_text(have)
                ),
            )
        } else {
            Finding::warn(
                topic,
                format!(
                    "worker lcores {} not covered ({topic}: {}): {what} them",
                    cpus_text(&missing),
                    cpus_text(have)
                ),
                fix.clone(),
            )
        });
    }
    out.push(match &cpus.irq_default {
        None => Finding::warn(
            "irqaffinity",
            "cannot read /proc/irq/default_smp_affinity",
            format!("add irqaffinity={} to the kernel command line", cpus_text(&others)),
        ),
        Some(irq) => {
            let on_workers: BTreeSet<u32> = irq.intersection(&workers).copied().collect();
            if on_workers.is_empty() {
                Finding::ok(
                    "irqaffinity",
                    format!("new interrupts go to {}, no worker lcore", cpus_text(irq)),
                )
            } else {
                Finding::warn(
                    "irqaffinity",
                    format!(
                        "new interrupts may go to worker lcores {} (default affinity {})",
                        cpus_text(&on_workers),
                        cpus_text(irq)
                    ),
                    format!(
                        "add irqaffinity={} to the kernel command line (and keep irqbalance off the workers: IRQBALANCE_BANNED_CPULIST={})",
                        cpus_text(&others),
                        cpus_text(&workers)
                    ),
                )
            }
        }
    });
    out
}
