//! What the HTTP threads read: the workers' published counters, summed at scrape time, and
//! control's view.
//!
//! Each worker publishes its own [`Counters`] about once a millisecond; control refreshes the
//! slow-moving parts (health, mempools, the service list) a few times a second. A scrape locks
//! nothing a worker waits on: the worker side of each copy is a `try_lock`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use control::config::{self, Config};
use control::forwarding::{Ids, ServiceTable};
use control::health::TargetStatus;
use control::metrics::{
    BackendMetrics, ExceptionMetrics, MetricsInput, Monotonic, PerId, PortRxDrops, ServiceMetrics,
    WorkerMetrics,
};
use dataplane::worker::WorkerStats;
use dataplane::{Counters, DropReason};

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

#[derive(Default)]
struct Slow {
    services: Vec<ServiceInfo>,
    fingerprints: Vec<(String, String)>,
    mempool_free: Vec<(String, u64)>,
    port_rx_dropped: Vec<PortRxDrops>,
    health: Vec<TargetStatus>,
    down: HashSet<(String, IpAddr)>,
    neighbours: Vec<(IpAddr, Option<[u8; 6]>)>,
    /// Per-id counters as last exported, so a core's freed slot never takes them back.
    monotonic: Monotonic,
}

/// State shared between control, the workers' published stats and the HTTP threads.
pub struct Shared {
    pub workers: Vec<Arc<WorkerStats>>,
    /// (interface name, queue, lcore) of each worker.
    queues: Vec<(String, u16, u32)>,
    pub epoch: AtomicU64,
    pub reloads_success: AtomicU64,
    pub reloads_failure: AtomicU64,
    /// Reloads started and finished, for `POST /-/reload` to wait on.
    pub reloads: super::reload_wait::ReloadWaiter,
    /// Per interface (config order): its name, whether it has an exception path, and what
    /// control counted of the frames its kernel sent.
    pub from_kernel: Vec<Arc<super::kernel::FromKernelStats>>,
    kernel_ports: Vec<(String, bool)>,
    /// A drain asked for over HTTP: 1 drain, 2 end it (control takes it).
    pub drain_request: std::sync::atomic::AtomicU8,
    /// Whether control is draining (for the HTTP answer).
    pub draining: std::sync::atomic::AtomicBool,
    /// The VIPs announced now, for /state and /metrics.
    announced: Mutex<Vec<IpAddr>>,
    /// When this appliance started, in Unix seconds (`sluice_start_time_seconds`).
    started: u64,
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
            epoch: AtomicU64::new(0),
            reloads_success: AtomicU64::new(0),
            reloads_failure: AtomicU64::new(0),
            reloads: Default::default(),
            from_kernel: cfg.interfaces.iter().map(|_| Default::default()).collect(),
            drain_request: Default::default(),
            draining: Default::default(),
            announced: Default::default(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
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

    pub fn set_config(&self, cfg: &Config, ids: &Ids) {
        self.slow().services = services_of(cfg, ids);
    }

    /// Forgets the per-id counter marks of ids control no longer assigns.
    pub fn retain_ids(&self, ids: &Ids) {
        let (services, backends) = ids.assigned();
        self.slow().monotonic.retain(&services, &backends);
    }

    pub fn set_tables(&self, tables: &[ServiceTable]) {
        self.slow().fingerprints = tables
            .iter()
            .filter_map(|t| t.fingerprint.map(|f| (t.service.clone(), f.to_string())))
            .collect();
    }

    pub fn set_status(
        &self,
        (mempool_free, port_rx_dropped): (Vec<(String, u64)>, Vec<PortRxDrops>),
        health: Vec<TargetStatus>,
        down: &HashSet<(String, IpAddr)>,
        neighbours: Vec<(IpAddr, Option<[u8; 6]>)>,
    ) {
        let mut s = self.slow();
        s.mempool_free = mempool_free;
        s.port_rx_dropped = port_rx_dropped;
        s.health = health;
        s.down = down.clone();
        s.neighbours = neighbours;
    }

    /// The NICs' rx drops as the last status refresh read them.
    pub fn port_rx_dropped(&self) -> Vec<PortRxDrops> {
        self.slow().port_rx_dropped.clone()
    }

    /// Whether the last status refresh (every 200 ms) listed next hops and every one has a
    /// MAC: the snapshot that carries them was published before that refresh.
    pub fn next_hops_resolved(&self) -> bool {
        let s = self.slow();
        !s.neighbours.is_empty() && s.neighbours.iter().all(|(_, mac)| mac.is_some())
    }

    /// Everything a scrape reports, gathered now.
    pub fn metrics_input(&self) -> MetricsInput {
        let workers: Vec<WorkerMetrics> = self
            .queues
            .iter()
            .zip(&self.workers)
            .map(|((port, queue, core), w)| WorkerMetrics {
                port: port.clone(),
                queue: *queue,
                core: *core,
                counters: w.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            })
            .collect();
        let mut total = Counters::sum(workers.iter().map(|w| &w.counters));
        let mut slow = self.slow();
        // Every configured fullnat local address has a series, 0 until a worker uses it: an
        // idle address is not a missing one to the nearly-full alert and the dashboard.
        for s in &slow.services {
            for a in &s.local_addresses {
                total.nat_ports_in_use.entry(*a).or_insert(0);
            }
        }
        let Slow {
            services,
            fingerprints,
            down,
            monotonic,
            ..
        } = &mut *slow;
        let services = services
            .iter()
            .map(|s| {
                let sc = total.service(s.id).unwrap_or_default();
                ServiceMetrics {
                    name: s.name.clone(),
                    packets: monotonic.read(PerId::ServicePackets, s.id, sc.packets),
                    bytes: monotonic.read(PerId::ServiceBytes, s.id, sc.bytes),
                    fingerprint: fingerprints
                        .iter()
                        .find(|(n, _)| n == &s.name)
                        .map(|(_, f)| f.clone()),
                    backends: s
                        .backends
                        .iter()
                        .map(|&(addr, weight, id, _)| BackendMetrics {
                            address: addr.to_string(),
                            packets: monotonic.read(
                                PerId::BackendPackets,
                                id,
                                total.backend_packets(id).unwrap_or(0),
                            ),
                            up: !down.contains(&(s.name.clone(), addr)),
                            flows: total.backend_flows.get(&id).copied().unwrap_or(0),
                            weight,
                        })
                        .collect(),
                }
            })
            .collect();
        let exception = self
            .kernel_ports
            .iter()
            .zip(&self.from_kernel)
            .filter(|((_, on), _)| *on)
            .map(|((port, _), k)| {
                let of_port = || workers.iter().filter(|w| &w.port == port);
                ExceptionMetrics {
                    port: port.clone(),
                    to_kernel: of_port().map(|w| w.counters.to_kernel).sum(),
                    from_kernel: k.packets.load(Ordering::Relaxed),
                    to_kernel_rate_limited: of_port()
                        .map(|w| {
                            w.counters.dropped(DropReason::ExceptionRateLimited)
                                + w.counters.kernel_copies_limited
                        })
                        .sum(),
                    from_kernel_rate_limited: k.rate_limited.load(Ordering::Relaxed),
                    from_kernel_tx_full: k.tx_full.load(Ordering::Relaxed),
                    to_kernel_tx_full: of_port().map(|w| w.counters.kernel_tx_full).sum(),
                }
            })
            .collect();
        let announced = self
            .announced
            .lock()
            .map(|a| a.iter().map(IpAddr::to_string).collect())
            .unwrap_or_default();
        MetricsInput {
            start_time_seconds: self.started,
            draining: self.draining.load(Ordering::Relaxed),
            announced,
            exception,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            dpdk: env!("SLUICE_DPDK_VERSION").to_owned(),
            workers,
            total,
            mempool_free: slow.mempool_free.clone(),
            port_rx_dropped: slow.port_rx_dropped.clone(),
            services,
            reloads_success: self.reloads_success.load(Ordering::Relaxed),
            reloads_failure: self.reloads_failure.load(Ordering::Relaxed),
            config_epoch: self.epoch.load(Ordering::Relaxed),
        }
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
                                "kind": h.target.spec.settings.kind.as_str(),
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
            "flows": m.workers.iter().map(|w| serde_json::json!({"core": w.core, "flows": w.counters.flows})).collect::<Vec<_>>(),
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
        forwarding::build(
            &cfg,
            &ports,
            &mut ids,
            &mut Default::default(),
            &|_, _| true,
            &|_| None,
        )
        .unwrap();
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
        // No worker has used the local address yet: its gauge is there, at 0.
        let metrics = shared.render_metrics();
        assert!(
            metrics.contains("sluice_nat_ports_in_use{local_address=\"192.0.2.200\"} 0\n"),
            "{metrics}"
        );
    }
}
