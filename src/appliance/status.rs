//! What the HTTP threads read: per-core counters summed at scrape time, and control's view.
//!
//! Workers write their own counters (single writer); control refreshes the slow-moving parts
//! (health, mempools, the service list) a few times a second. A scrape locks nothing a worker
//! waits on: the per-worker counter copies use `try_lock` on the worker side.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use control::config::{self, Config};
use control::forwarding::{Ids, ServiceTable};
use control::health::TargetStatus;
use control::metrics::{
    BackendMetrics, ExceptionMetrics, LatencyInput, MetricsInput, QueueMetrics, ServiceMetrics,
};
use dataplane::runtime::PerCoreCounters;
use dataplane::worker::{WorkerStats, LATENCY_BUCKETS_NS};
use dataplane::DropReason;

/// One service as configured, for labels.
#[derive(Debug, Clone)]
struct ServiceInfo {
    id: u32,
    name: String,
    vip: IpAddr,
    port: u16,
    protocol: String,
    forwarding: String,
    /// fullnat's own source addresses towards the backends.
    local_addresses: Vec<IpAddr>,
    /// (address, weight, stable id, the port it listens on: 0 = the client's).
    backends: Vec<(IpAddr, u32, u32, u16)>,
}

/// Every worker's pipeline counters added up.
#[derive(Default)]
struct Totals {
    dropped: [u64; DropReason::COUNT],
    /// Service id -> (packets, bytes).
    service: HashMap<u32, (u64, u64)>,
    backend: HashMap<u32, u64>,
    backend_flows: HashMap<u32, u64>,
    flows_created: u64,
    evicted_timeout: u64,
    evicted_capacity: u64,
    stateless: u64,
    replies: u64,
    to_control: u64,
    ptb_sent: u64,
    nat_replies: u64,
    nat_redirected: u64,
    nat_ports_exhausted: u64,
    nat_ports_in_use: HashMap<IpAddr, u64>,
    /// Interface name -> (frames to the kernel, frames over the exception rate).
    to_kernel: HashMap<String, (u64, u64)>,
}

#[derive(Default)]
struct Slow {
    services: Vec<ServiceInfo>,
    fingerprints: Vec<(String, String)>,
    mempool_free: Vec<(String, u64)>,
    health: Vec<TargetStatus>,
    down: HashSet<(String, IpAddr)>,
    neighbours: Vec<(IpAddr, Option<[u8; 6]>)>,
}

/// State shared between control, the workers' published stats and the HTTP threads.
pub struct Shared {
    pub workers: Vec<Arc<WorkerStats>>,
    /// (interface name, queue, lcore) of each worker.
    queues: Vec<(String, u16, u32)>,
    core_counters: OnceLock<Arc<PerCoreCounters>>,
    pub epoch: AtomicU64,
    pub reloads_success: AtomicU64,
    pub reloads_failure: AtomicU64,
    /// Reloads started and finished, for `POST /-/reload` to wait on.
    pub reloads: super::reload_wait::ReloadWaiter,
    /// Per interface (config order): its name, whether it has an exception path, and what
    /// control counted of the frames its kernel sent.
    pub from_kernel: Vec<super::kernel::FromKernelStats>,
    kernel_ports: Vec<(String, bool)>,
    /// A drain asked for over HTTP: 1 drain, 2 end it (control takes it).
    pub drain_request: std::sync::atomic::AtomicU8,
    /// Whether control is draining (for the HTTP answer).
    pub draining: std::sync::atomic::AtomicBool,
    /// The VIPs announced now, for /state and /metrics.
    announced: Mutex<Vec<IpAddr>>,
    slow: Mutex<Slow>,
}

fn services_of(cfg: &Config, ids: &Ids) -> Vec<ServiceInfo> {
    cfg.services
        .iter()
        .map(|s| ServiceInfo {
            id: ids.service_id(&s.name).unwrap_or(u32::MAX),
            name: s.name.clone(),
            vip: s.vip,
            port: s.port,
            protocol: s.protocol.to_string(),
            forwarding: s.forwarding.to_string(),
            local_addresses: s.local_addresses.clone(),
            backends: s
                .backends
                .iter()
                .map(|b| {
                    let id = ids.backend_id(&s.name, b.address).unwrap_or(u32::MAX);
                    (b.address, b.weight, id, s.backend_port(b))
                })
                .collect(),
        })
        .collect()
}

impl Shared {
    pub fn new(cfg: &Config, ids: &Ids, lcores: Vec<u32>) -> Self {
        let mut queues = Vec::new();
        for i in &cfg.interfaces {
            for q in 0..i.queues {
                let lcore = lcores.get(queues.len()).copied().unwrap_or(0);
                queues.push((i.name.clone(), q, lcore));
            }
        }
        Shared {
            workers: queues
                .iter()
                .map(|_| Arc::new(WorkerStats::default()))
                .collect(),
            queues,
            core_counters: OnceLock::new(),
            epoch: AtomicU64::new(0),
            reloads_success: AtomicU64::new(0),
            reloads_failure: AtomicU64::new(0),
            reloads: Default::default(),
            from_kernel: cfg.interfaces.iter().map(|_| Default::default()).collect(),
            drain_request: Default::default(),
            draining: Default::default(),
            announced: Default::default(),
            kernel_ports: cfg
                .interfaces
                .iter()
                .map(|i| (i.name.clone(), i.kernel.is_some()))
                .collect(),
            slow: Mutex::new(Slow {
                services: services_of(cfg, ids),
                ..Slow::default()
            }),
        }
    }

    fn slow(&self) -> std::sync::MutexGuard<'_, Slow> {
        self.slow.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_announced(&self, vips: &[IpAddr]) {
        *self.announced.lock().unwrap_or_else(|p| p.into_inner()) = vips.to_vec();
    }

    pub fn set_worker_counters(&self, c: Arc<PerCoreCounters>) {
        let _ = self.core_counters.set(c);
    }

    pub fn set_config(&self, cfg: &Config, ids: &Ids) {
        self.slow().services = services_of(cfg, ids);
    }

    pub fn set_tables(&self, tables: &[ServiceTable]) {
        self.slow().fingerprints = tables
            .iter()
            .filter_map(|t| t.fingerprint.map(|f| (t.service.clone(), f.to_string())))
            .collect();
    }

    pub fn set_status(
        &self,
        mempool_free: Vec<(String, u64)>,
        health: Vec<TargetStatus>,
        down: &HashSet<(String, IpAddr)>,
        neighbours: Vec<(IpAddr, Option<[u8; 6]>)>,
    ) {
        let mut s = self.slow();
        s.mempool_free = mempool_free;
        s.health = health;
        s.down = down.clone();
        s.neighbours = neighbours;
    }

    /// The sum of every worker's published pipeline counters.
    fn pipeline_totals(&self) -> Totals {
        let mut t = Totals::default();
        for (w, (port, _, _)) in self.workers.iter().zip(&self.queues) {
            let c = w.counters.lock().unwrap_or_else(|p| p.into_inner());
            let k = t.to_kernel.entry(port.clone()).or_default();
            k.0 += c.to_kernel;
            k.1 += c.dropped[DropReason::ExceptionRateLimited as usize] + c.kernel_copies_limited;
            for (r, n) in c.drops() {
                t.dropped[r as usize] += n;
            }
            for (id, sc) in c.services() {
                let e = t.service.entry(id).or_default();
                e.0 += sc.packets;
                e.1 += sc.bytes;
            }
            for (id, n) in c.backends() {
                *t.backend.entry(id).or_default() += n;
            }
            t.flows_created += c.flows_created;
            t.evicted_timeout += c.flows_evicted_timeout;
            t.evicted_capacity += c.flows_evicted_capacity;
            t.stateless += c.flows_stateless;
            t.replies += c.replies;
            t.to_control += c.to_control;
            t.ptb_sent += c.ptb_sent;
            t.nat_replies += c.nat_replies;
            t.nat_redirected += c.nat_redirected;
            t.nat_ports_exhausted += c.nat_ports_exhausted;
            drop(c);
            let n = w.nat_ports_in_use.lock().unwrap_or_else(|p| p.into_inner());
            for (&a, &k) in n.iter() {
                *t.nat_ports_in_use.entry(a).or_default() += k;
            }
            drop(n);
            let f = w.backend_flows.lock().unwrap_or_else(|p| p.into_inner());
            for (&id, &n) in f.iter() {
                *t.backend_flows.entry(id).or_default() += n;
            }
        }
        t
    }

    /// Everything a scrape reports, gathered now.
    pub fn metrics_input(&self) -> MetricsInput {
        let totals = self.pipeline_totals();
        let slow = self.slow();
        let cores = self.core_counters.get();
        let queues = self
            .queues
            .iter()
            .enumerate()
            .map(|(w, (port, queue, _))| {
                let c = cores.and_then(|c| c.core(w)).unwrap_or_default();
                QueueMetrics {
                    port: port.clone(),
                    queue: *queue,
                    rx_packets: c.rx,
                    tx_packets: c.tx,
                }
            })
            .collect();
        let mut dropped: Vec<(String, u64)> = DropReason::ALL
            .iter()
            .map(|&r| (r.as_str().to_owned(), totals.dropped[r as usize]))
            .collect();
        let total = |c: fn(&WorkerStats) -> &AtomicU64| -> u64 {
            self.per_core(c).iter().map(|&(_, n)| n).sum()
        };
        dropped.push(("tx_queue_full".to_owned(), total(|w| &w.tx_dropped)));
        // nat packets for another worker whose inbound queue was full.
        dropped.push((
            "redirect_queue_full".to_owned(),
            total(|w| &w.redirect_dropped),
        ));
        // ARP replies and neighbour advertisements lost because control's queue was full.
        dropped.push((
            "control_queue_full".to_owned(),
            total(|w| &w.control_overflow),
        ));
        let services = slow
            .services
            .iter()
            .map(|s| {
                let (packets, bytes) = totals.service.get(&s.id).copied().unwrap_or_default();
                ServiceMetrics {
                    name: s.name.clone(),
                    packets,
                    bytes,
                    fingerprint: slow
                        .fingerprints
                        .iter()
                        .find(|(n, _)| n == &s.name)
                        .map(|(_, f)| f.clone()),
                    backends: s
                        .backends
                        .iter()
                        .map(|&(addr, weight, id, _)| BackendMetrics {
                            address: addr.to_string(),
                            packets: totals.backend.get(&id).copied().unwrap_or(0),
                            up: !slow.down.contains(&(s.name.clone(), addr)),
                            flows: totals.backend_flows.get(&id).copied().unwrap_or(0),
                            weight,
                        })
                        .collect(),
                }
            })
            .collect();
        let mut counts = vec![0u64; LATENCY_BUCKETS_NS.len() + 1];
        let (mut sum_ns, mut count) = (0u64, 0u64);
        for w in &self.workers {
            for (c, b) in counts.iter_mut().zip(&w.latency.buckets) {
                *c += b.load(Ordering::Relaxed);
            }
            sum_ns += w.latency.sum_ns.load(Ordering::Relaxed);
            count += w.latency.count.load(Ordering::Relaxed);
        }
        let exception = self
            .kernel_ports
            .iter()
            .zip(&self.from_kernel)
            .filter(|((_, on), _)| *on)
            .map(|((port, _), k)| {
                let (to, limited) = totals.to_kernel.get(port).copied().unwrap_or_default();
                ExceptionMetrics {
                    port: port.clone(),
                    to_kernel: to,
                    from_kernel: k.packets.load(Ordering::Relaxed),
                    to_kernel_rate_limited: limited,
                    from_kernel_rate_limited: k.rate_limited.load(Ordering::Relaxed),
                    from_kernel_tx_full: k.tx_full.load(Ordering::Relaxed),
                }
            })
            .collect();
        let announced = self
            .announced
            .lock()
            .map(|a| a.iter().map(IpAddr::to_string).collect())
            .unwrap_or_default();
        MetricsInput {
            draining: self.draining.load(Ordering::Relaxed),
            announced,
            exception,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            dpdk: env!("SLUICE_DPDK_VERSION").to_owned(),
            queues,
            mempool_free: slow.mempool_free.clone(),
            dropped,
            services,
            flows_per_core: self.per_core(|w| &w.flows),
            busy_ns_per_core: self.per_core(|w| &w.busy_ns),
            bursts_per_core: self.per_core(|w| &w.bursts),
            flows_created: totals.flows_created,
            flows_evicted: vec![
                ("timeout".to_owned(), totals.evicted_timeout),
                ("capacity".to_owned(), totals.evicted_capacity),
            ],
            flows_stateless: totals.stateless,
            replies: totals.replies,
            to_control: totals.to_control,
            ptb_sent: totals.ptb_sent,
            nat_replies: totals.nat_replies,
            nat_redirected: totals.nat_redirected,
            nat_ports_exhausted: totals.nat_ports_exhausted,
            nat_ports_in_use: {
                let mut v: Vec<(String, u64)> = totals
                    .nat_ports_in_use
                    .iter()
                    .map(|(a, n)| (a.to_string(), *n))
                    .collect();
                v.sort();
                v
            },
            reloads_success: self.reloads_success.load(Ordering::Relaxed),
            reloads_failure: self.reloads_failure.load(Ordering::Relaxed),
            config_epoch: self.epoch.load(Ordering::Relaxed),
            latency: LatencyInput {
                bounds_ns: LATENCY_BUCKETS_NS.to_vec(),
                counts,
                sum_ns,
                count,
            },
        }
    }

    /// One worker counter as (EAL lcore id, value) per worker.
    fn per_core(&self, counter: impl Fn(&WorkerStats) -> &AtomicU64) -> Vec<(u32, u64)> {
        self.queues
            .iter()
            .zip(&self.workers)
            .map(|((_, _, lcore), w)| (*lcore, counter(w).load(Ordering::Relaxed)))
            .collect()
    }

    pub fn render_metrics(&self) -> String {
        control::metrics::render(&self.metrics_input())
    }

    /// `/state`: epoch, services, backends with health, weight and flow count.
    pub fn render_state(&self) -> String {
        let m = self.metrics_input();
        let slow = self.slow();
        // Two reads of the shared state: a reload between them can change the service list, so
        // pair by name (a service only one read saw is left out of this answer).
        let services: Vec<serde_json::Value> = slow
            .services
            .iter()
            .filter_map(|s| Some((s, m.services.iter().find(|sm| sm.name == s.name)?)))
            .map(|(s, sm)| {
                let backends: Vec<serde_json::Value> = sm
                    .backends
                    .iter()
                    .map(|b| {
                        let health = slow.health.iter().find(|h| {
                            h.target.service == s.name && h.target.backend.to_string() == b.address
                        });
                        let port = s
                            .backends
                            .iter()
                            .find(|(a, ..)| a.to_string() == b.address)
                            .map(|&(.., port)| port);
                        serde_json::json!({
                            "address": b.address,
                            "port": port,
                            "weight": b.weight,
                            "up": b.up,
                            "flows": b.flows,
                            "packets": b.packets,
                            "health_check": health.map(|h| serde_json::json!({
                                "kind": h.target.spec.kind.as_str(),
                                "consecutive_ok": h.consecutive_ok,
                                "consecutive_fail": h.consecutive_fail,
                                "last_error": h.last_error,
                                "probes": h.probes,
                                "failures": h.failures,
                            })),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "name": s.name,
                    "vip": s.vip.to_string(),
                    "port": s.port,
                    "protocol": s.protocol,
                    "forwarding": s.forwarding,
                    "local_addresses": s.local_addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>(),
                    "fingerprint": sm.fingerprint,
                    "packets": sm.packets,
                    "bytes": sm.bytes,
                    "backends": backends,
                })
            })
            .collect();
        let neighbours: Vec<serde_json::Value> = slow
            .neighbours
            .iter()
            .map(|(ip, mac)| serde_json::json!({"address": ip.to_string(), "mac": mac.map(config::format_mac)}))
            .collect();
        let state = serde_json::json!({
            "epoch": m.config_epoch,
            "reloads": {"success": m.reloads_success, "failure": m.reloads_failure},
            "flows": m.flows_per_core.iter().map(|(c, f)| serde_json::json!({"core": c, "flows": f})).collect::<Vec<_>>(),
            "services": services,
            "neighbours": neighbours,
            "draining": m.draining,
            "announced": m.announced,
        });
        let mut s = serde_json::to_string_pretty(&state).unwrap_or_else(|_| "{}".to_owned());
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::forwarding::{self, PortInfo};

    #[test]
    fn state_shows_the_forwarding_mode_local_addresses_and_backend_ports() {
        let cfg = config::load_str(
            "
interfaces:
  - name: uplink
    device: net_null0
    address: 192.0.2.10/24
flows:
  capacity: 1000
services:
  - name: db
    vip: 198.51.100.10
    port: 5432
    protocol: tcp
    forwarding: fullnat
    local_addresses: [192.0.2.200]
    backends:
      - address: 192.0.2.21
        port: 6432
      - address: 192.0.2.22
",
            "t.yaml",
        )
        .unwrap();
        let mut ids = Ids::default();
        let ports = [PortInfo {
            port: 0,
            mac: [2, 0, 0, 0, 0, 1],
            ipv4_checksum_offload: false,
        }];
        forwarding::build(&cfg, &ports, &mut ids, &|_, _| true, &|_| None).unwrap();
        let shared = Shared::new(&cfg, &ids, vec![1]);
        let state: serde_json::Value = serde_json::from_str(&shared.render_state()).unwrap();
        let db = &state["services"][0];
        assert_eq!(db["forwarding"], "fullnat");
        assert_eq!(db["local_addresses"], serde_json::json!(["192.0.2.200"]));
        let ports: Vec<(String, u64)> = db["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["address"].as_str().unwrap().to_owned(),
                    b["port"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("192.0.2.21".to_owned(), 6432),
                ("192.0.2.22".to_owned(), 5432)
            ]
        );
    }
}
