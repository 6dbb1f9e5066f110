//! The exception path's I/O: a DPDK `net_tap` port per interface whose kernel side carries the
//! interface's addresses, so the host can speak BGP, BFD, SSH and ICMP on the data link.
//!
//! To the kernel: workers send what the pipeline marks `ToKernel` (rate-limited there) to their
//! own TX queue of the tap. From the kernel: control drains the tap's RX queues every loop,
//! through a token bucket, and sends the frames out of the data port (its own TX queue, or
//! worker 0's when the port has none to spare).

use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::Ordering;

use control::config::{self, Interface, Kernel};
use dataplane::dpdk::{Burst, Eal, Mbuf, Mempool, Port, RxQueue};
use dataplane::ratelimit::TokenBucket;

use sluice::iproute::route_destinations;

use super::StartError;

/// Frames control takes from a tap queue at a time.
const BURST: usize = 32;
/// Bursts control takes from one tap queue per loop (5 ms) at most: 51,200 frames a second,
/// above any sane `kernel.rate` (one burst a loop capped a queue at 6,400, below the default).
const BURSTS_PER_LOOP: usize = 8;

/// The EAL vdev name of interface `i`'s tap (any name starting `net_tap` selects the driver).
pub fn vdev_name(i: usize) -> String {
    format!("net_tap_k{i}")
}

/// `--vdev` arguments for every interface with an exception path, to append to `dpdk.args`.
pub fn eal_args(interfaces: &[Interface]) -> Vec<String> {
    interfaces
        .iter()
        .enumerate()
        .filter_map(|(i, ic)| {
            let k = ic.kernel.as_ref()?;
            Some(format!("--vdev={},iface={}", vdev_name(i), k.name))
        })
        .collect()
}

/// Counts of one interface's exception path from the kernel (the to-kernel counts are the
/// workers' pipeline counters): control's, and worker 0's for the frames it sends for control.
pub use dataplane::worker::FromKernelStats;

/// What became of a frame [`KernelPort::drain`] handed its sender.
pub enum Handed {
    /// Out of the data port (control's own tx queue): counted in `packets`.
    Sent,
    /// Refused and freed: counted in `tx_full`.
    Refused,
    /// On worker 0's hand-over queue, which counts it once sent or refused
    /// ([`dataplane::worker::Origin::Kernel`]).
    Queued,
}

/// One interface's tap, as control keeps it.
pub struct KernelPort {
    pub port: Port,
    rx: Vec<RxQueue>,
    bucket: TokenBucket,
}

impl KernelPort {
    /// Starts the tap of interface `i` with one queue pair per worker (the tap PMD wants as
    /// many RX as TX queues), then gives its kernel side the data port's MAC, MTU and addresses.
    pub fn open(
        eal: &Eal,
        i: usize,
        ic: &Interface,
        k: &Kernel,
        pool: &Mempool,
        mac: [u8; 6],
        workers: u16,
    ) -> Result<Self, StartError> {
        // No DPDK MTU: the tap PMD caps it at 1500; the kernel side gets the link's below.
        let port = Port::builder(eal, &vdev_name(i), pool)
            .queues(workers, workers)
            .start()?;
        let rx = (0..workers)
            .map(|q| port.rx_queue(q))
            .collect::<Result<Vec<_>, _>>()?;
        configure(ic, k, mac)?;
        Ok(KernelPort {
            port,
            rx,
            bucket: TokenBucket::per_second(k.rate),
        })
    }

    /// Takes what the kernel sent (up to [`BURSTS_PER_LOOP`] bursts per queue) and hands each
    /// frame the bucket admits to `send`, counting it as `send` says.
    pub fn drain(
        &mut self,
        now_ns: u64,
        stats: &FromKernelStats,
        send: &mut dyn FnMut(Mbuf) -> Handed,
    ) {
        let mut burst = Burst::<BURST>::new();
        for rx in &mut self.rx {
            for _ in 0..BURSTS_PER_LOOP {
                let got = rx.rx_burst(&mut burst);
                for m in burst.drain() {
                    if !self.bucket.admit(now_ns) {
                        stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let outcome = match send(m) {
                        Handed::Sent => &stats.packets,
                        Handed::Refused => &stats.tx_full,
                        // Worker 0 counts it once it has sent or refused it.
                        Handed::Queued => continue,
                    };
                    outcome.fetch_add(1, Ordering::Relaxed);
                }
                // A short burst emptied the queue.
                if got < BURST {
                    break;
                }
            }
        }
    }
}

/// The kernel interface takes the data port's MAC (frames to it are addressed to that MAC),
/// its MTU and addresses, and comes up.
fn configure(ic: &Interface, k: &Kernel, mac: [u8; 6]) -> Result<(), StartError> {
    let dev = k.name.as_str();
    let mtu = ic.mtu.to_string();
    let mac = config::format_mac(mac);
    ip(&["link", "set", "dev", dev, "address", &mac, "mtu", &mtu])?;
    ip(&["addr", "replace", &ic.address.to_string(), "dev", dev])?;
    if let Some(a6) = ic.address6 {
        // A host that disables IPv6 on new interfaces by default would refuse the address.
        let sysctl = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
        std::fs::write(&sysctl, "0").map_err(|source| StartError::Io {
            what: format!("exception path: enabling IPv6 on {dev} ({sysctl})"),
            source,
        })?;
        ip(&[
            "-6",
            "addr",
            "replace",
            &a6.to_string(),
            "dev",
            dev,
            "nodad",
        ])?;
    }
    ip(&["link", "set", "dev", dev, "up"])
}

/// Moves the announced routes in `table` from `old` to `new`: each VIP a host route through the
/// kernel interface `dev`, so the routes vanish with the interface if sluice dies. Returns
/// what failed (logged by the caller; the next change retries from what is installed).
pub fn set_routes(
    table: u32,
    dev: &str,
    old: &[IpAddr],
    new: &[IpAddr],
) -> (Vec<IpAddr>, Vec<String>) {
    let table = table.to_string();
    let (withdraw, add) = route_changes(old, new);
    // What stays is not asked again: one `ip` process per change, not per VIP, so a health
    // flip among hundreds of VIPs does not stall the control loop (`check_routes` repairs a
    // route removed behind sluice's back from what the kernel holds).
    let mut installed: Vec<IpAddr> = new.iter().filter(|v| old.contains(v)).copied().collect();
    let mut errors = Vec::new();
    for vip in withdraw {
        let prefix = host_prefix(vip);
        if let Err(e) = ip(&["route", "del", &prefix, "dev", dev, "table", &table]) {
            errors.push(e.to_string());
            installed.push(vip);
        }
    }
    for vip in add {
        let prefix = host_prefix(vip);
        let args = [
            "route", "replace", &prefix, "dev", dev, "table", &table, "proto", "static",
        ];
        match ip(&args) {
            Ok(()) => installed.push(vip),
            Err(e) => errors.push(e.to_string()),
        }
    }
    installed.sort();
    installed.dedup();
    (installed, errors)
}

/// The host routes through `dev` in `table` now, both families (`ip route show`), for the
/// periodic check that what sluice installed is still there.
pub fn routes_in(table: u32, dev: &str) -> Result<Vec<IpAddr>, StartError> {
    let table = table.to_string();
    let mut routes = Vec::new();
    for family in ["-4", "-6"] {
        let text = match ip_output(&[family, "route", "show", "table", &table, "dev", dev]) {
            Ok(text) => text,
            // A family with no route in the table yet has no table either (Linux says so).
            Err(StartError::Config(e)) if e.contains("table does not exist") => String::new(),
            Err(e) => return Err(e),
        };
        routes.extend(route_destinations(&text));
    }
    routes.sort();
    routes.dedup();
    Ok(routes)
}

/// The routes to withdraw (in `old`, not `new`) and to add (in `new`, not `old`), each once.
fn route_changes(old: &[IpAddr], new: &[IpAddr]) -> (Vec<IpAddr>, Vec<IpAddr>) {
    let only = |a: &[IpAddr], b: &[IpAddr]| {
        let mut v: Vec<IpAddr> = a.iter().filter(|x| !b.contains(x)).copied().collect();
        v.sort();
        v.dedup();
        v
    };
    (only(old, new), only(new, old))
}

fn host_prefix(vip: IpAddr) -> String {
    match vip {
        IpAddr::V4(_) => format!("{vip}/32"),
        IpAddr::V6(_) => format!("{vip}/128"),
    }
}

fn ip(args: &[&str]) -> Result<(), StartError> {
    ip_output(args).map(drop)
}

/// Runs `ip ARGS`; its standard output, or what failed.
fn ip_output(args: &[&str]) -> Result<String, StartError> {
    let what = format!("exception path: ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| StartError::Io {
            what: what.clone(),
            source,
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(StartError::Config(format!(
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only what changed is asked of `ip`: a VIP in both sets is neither withdrawn nor added.
    #[test]
    fn route_changes_are_the_difference() {
        let a = |s: &str| -> IpAddr { s.parse().unwrap() };
        let old = [a("198.51.100.1"), a("198.51.100.2"), a("2001:db8::1")];
        let new = [a("2001:db8::1"), a("198.51.100.3"), a("198.51.100.1")];
        assert_eq!(
            route_changes(&old, &new),
            (vec![a("198.51.100.2")], vec![a("198.51.100.3")])
        );
        assert_eq!(route_changes(&new, &new), (vec![], vec![]));
        assert_eq!(
            route_changes(&[], &old[..1]),
            (vec![], vec![a("198.51.100.1")])
        );
    }

    #[test]
    fn only_interfaces_with_a_kernel_get_a_tap() {
        let cfg = control::config::load_str(
            "
interfaces:
  - name: a
    device: net_null0
    address: 192.0.2.10/24
  - name: b
    device: net_null1
    address: 198.51.100.2/24
    kernel:
      name: sl-b
services: []
",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(eal_args(&cfg.interfaces), ["--vdev=net_tap_k1,iface=sl-b"]);
        assert_eq!(
            cfg.interfaces[1].kernel.as_ref().map(|k| k.rate),
            Some(control::config::DEFAULT_KERNEL_RATE)
        );
    }
}
