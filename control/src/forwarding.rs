//! From a validated config plus health and neighbour state to the data plane's `Snapshot`.
//!
//! Everything expensive (every Maglev table) is built here, on the control thread, before the
//! swap. Services and backends get stable ids that survive reloads ([`Ids`]): a flow entry
//! names its backend by id, so it keeps its backend across a reload whenever that backend is
//! still present and up.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dataplane::snapshot::{
    BackendSpec, Egress, InterfaceSpec, ServiceSpec, Snapshot, SnapshotBuilder, SnapshotError,
};
use maglev::{Backend as MaglevBackend, Fingerprint, MaglevError, Table};

use crate::config::{Config, Service};
use crate::health::{HealthCheckSpec, Target};

/// What a DPDK port contributes to the snapshot: its id and MAC, and what it offloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortInfo {
    pub port: u16,
    pub mac: [u8; 6],
    pub ipv4_checksum_offload: bool,
}

/// Why forwarding state could not be built from a config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("interface {name}: no DPDK port was given for it (have {ports} ports)")]
    MissingPort { name: String, ports: usize },
    #[error("service {service}: Maglev table: {source}")]
    Maglev {
        service: String,
        #[source]
        source: MaglevError,
    },
    #[error("service {service}: backend {backend} is on no interface's link and no interface has a gateway of its address family")]
    NoRoute { service: String, backend: IpAddr },
    #[error("snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
}

/// Stable ids for services (by name) and backends (by service name and address). An id outlives
/// its service or backend in the running config by [`id_retention`], so one removed and added
/// back within it gets its old id (flows and counters carry on); after that it is forgotten, so
/// the map follows the config instead of every address the process ever saw. Ids are never
/// reused: one added back later gets a new id.
#[derive(Debug, Default, Clone)]
pub struct Ids {
    services: HashMap<String, Assigned>,
    backends: HashMap<(String, IpAddr), Assigned>,
    next_service: u32,
    next_backend: u32,
}

/// An id, and since when the running config has been without its service or backend.
#[derive(Debug, Clone, Copy)]
struct Assigned {
    id: u32,
    absent_since: Option<Instant>,
}

/// An id outlives its service or backend by at least an hour, and by twice the longest flow
/// timeout: by then no flow entry can still name it (a flow of a removed backend is re-hashed
/// on its next packet; an idle one expires).
pub fn id_retention(cfg: &Config) -> Duration {
    let f = &cfg.flows;
    let longest = f
        .tcp_established_timeout
        .max(f.tcp_closing_timeout)
        .max(f.tcp_syn_timeout)
        .max(f.udp_timeout);
    MIN_ID_RETENTION.max(longest.saturating_mul(2))
}

const MIN_ID_RETENTION: Duration = Duration::from_secs(3600);

impl Ids {
    pub fn service(&mut self, name: &str) -> u32 {
        if let Some(a) = self.services.get(name) {
            return a.id;
        }
        let id = self.next_service;
        self.next_service += 1;
        self.services.insert(name.to_owned(), Assigned::new(id));
        id
    }

    pub fn backend(&mut self, service: &str, address: IpAddr) -> u32 {
        let key = (service.to_owned(), address);
        if let Some(a) = self.backends.get(&key) {
            return a.id;
        }
        let id = self.next_backend;
        self.next_backend += 1;
        self.backends.insert(key, Assigned::new(id));
        id
    }

    /// The id of a service, if one is assigned.
    pub fn service_id(&self, name: &str) -> Option<u32> {
        self.services.get(name).map(|a| a.id)
    }

    /// The id of a backend of a service, if one is assigned.
    pub fn backend_id(&self, service: &str, address: IpAddr) -> Option<u32> {
        self.backends
            .get(&(service.to_owned(), address))
            .map(|a| a.id)
    }

    /// The backend with this id, if it is assigned.
    pub fn backend_by_id(&self, id: u32) -> Option<(&str, IpAddr)> {
        self.backends
            .iter()
            .find(|(_, a)| a.id == id)
            .map(|((s, addr), _)| (s.as_str(), *addr))
    }

    /// The service ids and the backend ids assigned now.
    pub fn assigned(&self) -> (HashSet<u32>, HashSet<u32>) {
        (
            self.services.values().map(|a| a.id).collect(),
            self.backends.values().map(|a| a.id).collect(),
        )
    }

    /// `running` was just published at `now`: what it names is present; what it does not is
    /// absent from now on (if not already), and forgotten once absent for [`id_retention`].
    /// Ids handed out for a reload still pending are kept the same way, from when it started.
    pub fn published(&mut self, running: &Config, now: Instant) {
        let retention = id_retention(running);
        let services: HashSet<&str> = running.services.iter().map(|s| s.name.as_str()).collect();
        let backends: HashSet<(&str, IpAddr)> = running
            .services
            .iter()
            .flat_map(|s| s.backends.iter().map(|b| (s.name.as_str(), b.address)))
            .collect();
        self.services
            .retain(|name, a| a.keep(services.contains(name.as_str()), now, retention));
        self.backends.retain(|(service, address), a| {
            a.keep(
                backends.contains(&(service.as_str(), *address)),
                now,
                retention,
            )
        });
    }
}

impl Assigned {
    fn new(id: u32) -> Assigned {
        Assigned {
            id,
            absent_since: None,
        }
    }

    /// Updates absence; false once absent for `retention`.
    fn keep(&mut self, present: bool, now: Instant, retention: Duration) -> bool {
        if present {
            self.absent_since = None;
            return true;
        }
        let since = *self.absent_since.get_or_insert(now);
        now.saturating_duration_since(since) < retention
    }
}

/// The Maglev tables of the last build by their input (size, backend names and weights): a
/// rebuild after a health change or a reload builds only the tables whose input changed (1.6 ms
/// each at M=65537, N=1000; every service has two, the usable and the fallback table).
#[derive(Debug, Default, Clone)]
pub struct TableCache {
    current: HashMap<TableInput, Table>,
    previous: HashMap<TableInput, Table>,
    built: u64,
}

/// A table's input in canonical order (the table does not depend on the order it was given).
type TableInput = (u32, Vec<(String, u32)>);

impl TableCache {
    /// Starts a build: what the last build used stays at hand, the rest is dropped.
    fn begin(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    fn table(&mut self, size: u32, input: &[MaglevBackend]) -> Result<Table, MaglevError> {
        let mut key: Vec<(String, u32)> =
            input.iter().map(|b| (b.name.clone(), b.weight)).collect();
        key.sort_unstable();
        let key = (size, key);
        if let Some(t) = self.current.get(&key) {
            return Ok(t.clone());
        }
        let table = match self.previous.remove(&key) {
            Some(t) => t,
            None => {
                self.built += 1;
                Table::build(size, input)?
            }
        };
        self.current.insert(key, table.clone());
        Ok(table)
    }

    /// Tables built (not reused) since this cache was made.
    pub fn built(&self) -> u64 {
        self.built
    }
}

/// The Maglev table of one service as built, for metrics, `/state` and `sluice plan`.
#[derive(Debug, Clone)]
pub struct ServiceTable {
    pub service: String,
    pub id: u32,
    /// The table over the usable backends (None when no backend is usable).
    pub table: Option<Table>,
    pub fingerprint: Option<Fingerprint>,
}

/// Everything one build produced.
#[derive(Debug)]
pub struct Built {
    pub snapshot: Snapshot,
    pub tables: Vec<ServiceTable>,
}

/// Where a backend leaves: `(port, next-hop address)` by the egress rule (docs/design.md,
/// "Next-hop resolution"): on-link on an interface -> that interface, to the backend itself;
/// otherwise the first interface with a gateway of the backend's address family (`gateway` for
/// IPv4, `gateway6` for IPv6), to that gateway.
pub fn egress_of(cfg: &Config, backend: IpAddr) -> Option<(usize, IpAddr)> {
    if let Some(i) = cfg.interfaces.iter().position(|i| i.on_link(backend)) {
        return Some((i, backend));
    }
    cfg.interfaces
        .iter()
        .enumerate()
        .find_map(|(i, iface)| iface.gateway_for(backend).map(|(g, _)| (i, g)))
}

/// The static MAC configured for a next hop (`gateway_mac`, `gateway6_mac`), if any.
pub fn static_mac(cfg: &Config, iface: usize, next_hop: IpAddr) -> Option<[u8; 6]> {
    let (gateway, mac) = cfg.interfaces.get(iface)?.gateway_for(next_hop)?;
    (gateway == next_hop).then_some(mac).flatten()
}

/// The name a backend has in its service's Maglev table: its address, so every instance agrees.
pub fn maglev_name(address: IpAddr) -> String {
    maglev::address_name(address)
}

/// Builds the snapshot for `cfg`. `up(service, backend)` is the health state; `neighbour(ip)`
/// the resolved MAC of a next hop (None: unresolved, packets to it are dropped and counted).
pub fn build(
    cfg: &Config,
    ports: &[PortInfo],
    ids: &mut Ids,
    cache: &mut TableCache,
    up: &dyn Fn(&str, IpAddr) -> bool,
    neighbour: &dyn Fn(IpAddr) -> Option<[u8; 6]>,
) -> Result<Built, BuildError> {
    let mut builder = SnapshotBuilder::new();
    for (i, iface) in cfg.interfaces.iter().enumerate() {
        let port = ports.get(i).ok_or_else(|| BuildError::MissingPort {
            name: iface.name.clone(),
            ports: ports.len(),
        })?;
        builder = builder.interface(InterfaceSpec {
            port: port.port,
            mac: port.mac,
            ipv4: Some((iface.address.addr, iface.address.len)),
            ipv6: iface.address6.map(|p| (p.addr, p.len)),
            mtu: iface.mtu,
            ipv4_checksum_offload: port.ipv4_checksum_offload,
            kernel: iface.kernel.is_some(),
        });
    }
    let mut tables = Vec::with_capacity(cfg.services.len());
    cache.begin();
    let mut services = Services {
        cfg,
        ports,
        ids,
        cache,
        up,
        neighbour,
    };
    for s in &cfg.services {
        let (spec, table) = services.spec(s)?;
        tables.push(table);
        builder = builder.service(spec);
    }
    Ok(Built {
        snapshot: builder.build()?,
        tables,
    })
}

/// What building each service of one snapshot reads and updates: `build`'s inputs, passed once.
struct Services<'a> {
    cfg: &'a Config,
    ports: &'a [PortInfo],
    ids: &'a mut Ids,
    cache: &'a mut TableCache,
    up: &'a dyn Fn(&str, IpAddr) -> bool,
    neighbour: &'a dyn Fn(IpAddr) -> Option<[u8; 6]>,
}

impl Services<'_> {
    /// One service's data-plane spec (mode, local addresses, each backend's egress and port)
    /// and its Maglev table.
    fn spec(&mut self, s: &Service) -> Result<(ServiceSpec, ServiceTable), BuildError> {
        let service_id = self.ids.service(&s.name);
        let mut backends = Vec::with_capacity(s.backends.len());
        for b in &s.backends {
            let (iface, next_hop) = egress_of(self.cfg, b.address).ok_or(BuildError::NoRoute {
                service: s.name.clone(),
                backend: b.address,
            })?;
            let port = self.ports[iface].port;
            let mac = static_mac(self.cfg, iface, next_hop).or_else(|| (self.neighbour)(next_hop));
            backends.push(BackendSpec {
                id: self.ids.backend(&s.name, b.address),
                address: b.address,
                // DSR keeps the client's port; nat/fullnat send to where the backend listens.
                port: if s.forwarding.translates() {
                    s.backend_port(b)
                } else {
                    0
                },
                weight: b.weight,
                up: (self.up)(&s.name, b.address),
                egress: Egress {
                    port,
                    next_hop_mac: mac,
                },
            });
        }
        let usable = |b: &BackendSpec| b.weight > 0 && b.up;
        let (table, entries) = maglev_table(self.cache, &s.name, s.table_size, &backends, usable)?;
        let (_, fallback) = maglev_table(self.cache, &s.name, s.table_size, &backends, |b| {
            b.weight > 0
        })?;
        let built = ServiceTable {
            service: s.name.clone(),
            id: service_id,
            fingerprint: table.as_ref().map(Table::fingerprint),
            table,
        };
        let spec = ServiceSpec {
            id: service_id,
            name: s.name.clone(),
            vip: s.vip,
            port: s.port,
            proto: s.protocol,
            hash: s.hash,
            forwarding: s.forwarding,
            local_addresses: s.local_addresses.clone(),
            when_all_down: s.when_all_down,
            backends,
            table: entries,
            fallback_table: fallback,
        };
        Ok((spec, built))
    }
}

/// The Maglev table over the backends `keep` selects, as indices into `backends`
/// (empty when none is kept).
fn maglev_table(
    cache: &mut TableCache,
    service: &str,
    size: u32,
    backends: &[BackendSpec],
    keep: impl Fn(&BackendSpec) -> bool,
) -> Result<(Option<Table>, Vec<u32>), BuildError> {
    let chosen: Vec<usize> = (0..backends.len())
        .filter(|&i| keep(&backends[i]))
        .collect();
    if chosen.is_empty() {
        return Ok((None, Vec::new()));
    }
    let input: Vec<MaglevBackend> = chosen
        .iter()
        .map(|&i| MaglevBackend::new(maglev_name(backends[i].address), backends[i].weight))
        .collect();
    let table = cache
        .table(size, &input)
        .map_err(|source| BuildError::Maglev {
            service: service.to_owned(),
            source,
        })?;
    // The table indexes its own canonical order; map each to the index in `backends`.
    let by_name: HashMap<String, u32> = chosen
        .iter()
        .map(|&i| (maglev_name(backends[i].address), i as u32))
        .collect();
    let canon: Vec<u32> = table
        .backends()
        .iter()
        .map(|b| by_name.get(&b.name).copied().unwrap_or(u32::MAX))
        .collect();
    let entries = table
        .entries()
        .iter()
        .map(|&e| canon.get(e as usize).copied().unwrap_or(u32::MAX))
        .collect();
    Ok((Some(table), entries))
}

/// The health-check targets of a config: one per backend of every service with a check.
pub fn health_targets(cfg: &Config) -> Vec<Target> {
    let mut targets = Vec::new();
    for s in &cfg.services {
        let Some(hc) = &s.health_check else { continue };
        for b in &s.backends {
            targets.push(Target {
                service: s.name.clone(),
                backend: b.address,
                spec: HealthCheckSpec {
                    settings: hc.settings.clone(),
                    port: s.health_port(hc, b),
                    host: hc.host.clone(),
                },
            });
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "
interfaces:
  - name: a
    device: net_null0
    address: 192.0.2.10/24
    address6: 2001:db8::10/64
    gateway: 192.0.2.1
  - name: b
    device: net_null1
    address: 198.51.100.2/24
    address6: 2001:db8:1::2/64
    gateway: 2001:db8:1::1
services:
  - name: web
    vip: 203.0.113.10
    port: 80
    protocol: tcp
    backends:
      - address: 192.0.2.11
      - address: 203.0.113.50
";

    #[test]
    fn egress_follows_the_design_rule_and_the_family() {
        let cfg = crate::config::load_str(CFG, "t.yaml").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for (dst, port, hop, why) in [
            ("192.0.2.11", 0, "192.0.2.11", "on-link"),
            ("2001:db8:1::7", 1, "2001:db8:1::7", "on-link v6"),
            ("203.0.113.50", 0, "192.0.2.1", "IPv4 gateway"),
            (
                "2001:db8:9::1",
                1,
                "2001:db8:1::1",
                "IPv6 gateway, not the first",
            ),
        ] {
            assert_eq!(egress_of(&cfg, ip(dst)), Some((port, ip(hop))), "{why}");
        }
    }

    #[test]
    fn one_interface_sends_each_family_to_its_own_gateway() {
        let cfg = crate::config::load_str(
            "
interfaces:
  - name: a
    device: net_null0
    address: 192.0.2.10/24
    address6: 2001:db8::10/64
    gateway: 192.0.2.1
    gateway6: 2001:db8::1
    gateway6_mac: \"02:00:00:00:00:06\"
  - name: b
    device: net_null1
    address: 198.51.100.2/24
    gateway: 198.51.100.1
",
            "t.yaml",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            egress_of(&cfg, ip("203.0.113.50")),
            Some((0, ip("192.0.2.1")))
        );
        assert_eq!(
            egress_of(&cfg, ip("2001:db8:9::1")),
            Some((0, ip("2001:db8::1")))
        );
        // Each gateway has its own family's MAC: the IPv4 one is resolved, the IPv6 one static.
        assert_eq!(static_mac(&cfg, 0, ip("192.0.2.1")), None);
        assert_eq!(
            static_mac(&cfg, 0, ip("2001:db8::1")),
            Some([2, 0, 0, 0, 0, 6])
        );
        assert_eq!(
            static_mac(&cfg, 0, ip("2001:db8::2")),
            None,
            "not a gateway"
        );
    }

    #[test]
    fn stable_ids_survive_a_rebuild_and_tables_name_only_usable_backends() {
        let cfg = crate::config::load_str(CFG, "t.yaml").unwrap();
        let ports = [
            PortInfo {
                port: 0,
                mac: [2, 0, 0, 0, 0, 1],
                ipv4_checksum_offload: false,
            },
            PortInfo {
                port: 1,
                mac: [2, 0, 0, 0, 0, 2],
                ipv4_checksum_offload: false,
            },
        ];
        let (mut ids, mut cache) = (Ids::default(), TableCache::default());
        let all_up = build(&cfg, &ports, &mut ids, &mut cache, &|_, _| true, &|_| {
            Some([2, 0, 0, 0, 0, 9])
        })
        .unwrap();
        let b1 = ids
            .backend_id("web", "192.0.2.11".parse().unwrap())
            .unwrap();
        let one_down = build(
            &cfg,
            &ports,
            &mut ids,
            &mut cache,
            &|_, b| b.to_string() != "192.0.2.11",
            &|_| Some([2, 0, 0, 0, 0, 9]),
        )
        .unwrap();
        assert_eq!(
            ids.backend_id("web", "192.0.2.11".parse().unwrap()),
            Some(b1),
            "ids are stable"
        );
        assert!(all_up.tables[0].table.as_ref().unwrap().backends().len() == 2);
        let t = one_down.tables[0].table.as_ref().unwrap();
        assert_eq!(
            t.backends().len(),
            1,
            "the down backend is not in the table"
        );
        assert_eq!(t.backends()[0].name, "203.0.113.50");
        assert_ne!(all_up.tables[0].fingerprint, one_down.tables[0].fingerprint);
    }

    #[test]
    fn a_rebuild_builds_only_the_tables_whose_backends_changed() {
        let cfg = crate::config::load_str(CFG, "t.yaml").unwrap();
        let ports = [0, 1].map(|port| PortInfo {
            port,
            mac: [2, 0, 0, 0, 0, 1],
            ipv4_checksum_offload: false,
        });
        let mac = |_| Some([2, 0, 0, 0, 0, 9]);
        let (mut ids, mut cache) = (Ids::default(), TableCache::default());
        let down = |b: IpAddr| b.to_string() == "192.0.2.11";
        let first = build(&cfg, &ports, &mut ids, &mut cache, &|_, _| true, &mac).unwrap();
        assert_eq!(
            cache.built(),
            1,
            "all up: the usable and the fallback table are one"
        );
        build(&cfg, &ports, &mut ids, &mut cache, &|_, _| true, &mac).unwrap();
        assert_eq!(cache.built(), 1, "nothing changed, nothing built");
        let flapped = build(&cfg, &ports, &mut ids, &mut cache, &|_, b| !down(b), &mac).unwrap();
        assert_eq!(
            cache.built(),
            2,
            "only the usable table of the flapped service"
        );
        let back = build(&cfg, &ports, &mut ids, &mut cache, &|_, _| true, &mac).unwrap();
        assert_eq!(cache.built(), 2, "the all-up table was still at hand");
        // What the cache hands out is what a build from scratch gives.
        let fresh = |up: &dyn Fn(&str, IpAddr) -> bool| {
            let (mut ids, mut cache) = (Ids::default(), TableCache::default());
            build(&cfg, &ports, &mut ids, &mut cache, up, &mac).unwrap()
        };
        let fp = |b: &Built| b.tables[0].fingerprint;
        assert_eq!(fp(&first), fp(&fresh(&|_, _| true)));
        assert_eq!(fp(&back), fp(&first));
        assert_eq!(fp(&flapped), fp(&fresh(&|_, b| !down(b))));
        assert_eq!(
            flapped.tables[0].table,
            fresh(&|_, b| !down(b)).tables[0].table
        );
    }

    const FULLNAT: &str = "
interfaces:
  - name: a
    device: net_null0
    address: 192.0.2.10/24
    address6: 2001:db8::10/64
flows:
  capacity: 100000
services:
  - name: db
    vip: 198.51.100.10
    port: 5432
    protocol: tcp
    forwarding: fullnat
    local_addresses: [192.0.2.200, 2001:db8::200]
    backends:
      - address: 192.0.2.11
        port: 6432
      - address: 192.0.2.13
    health_check:
      kind: tcp
  - name: dns
    vip: 198.51.100.11
    port: 53
    protocol: udp
    backends:
      - address: 192.0.2.12
    health_check:
      kind: udp-dns
";

    #[test]
    fn translating_services_carry_their_mode_local_addresses_and_backend_ports() {
        let cfg = crate::config::load_str(FULLNAT, "t.yaml").unwrap();
        let ports = [PortInfo {
            port: 0,
            mac: [2, 0, 0, 0, 0, 1],
            ipv4_checksum_offload: false,
        }];
        let (mut ids, mut cache) = (Ids::default(), TableCache::default());
        let mac = |_| Some([2, 0, 0, 0, 0, 9]);
        // Both services through the same ids and table cache, as one reload would.
        let mut services = Services {
            cfg: &cfg,
            ports: &ports,
            ids: &mut ids,
            cache: &mut cache,
            up: &|_, _| true,
            neighbour: &mac,
        };
        let mut spec = |i: usize| services.spec(&cfg.services[i]).unwrap().0;
        let db = spec(0);
        assert_eq!(db.forwarding, dataplane::Forwarding::FullNat);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(db.local_addresses, [ip("192.0.2.200"), ip("2001:db8::200")]);
        let backend_ports: Vec<u16> = db.backends.iter().map(|b| b.port).collect();
        assert_eq!(
            backend_ports,
            [6432, 5432],
            "its own port, else the service's"
        );
        let dns = spec(1);
        assert_eq!(dns.forwarding, dataplane::Forwarding::Ipip);
        assert!(dns.local_addresses.is_empty());
        assert_eq!(dns.backends[0].port, 0, "DSR keeps the client's port");
    }

    #[test]
    fn health_probes_go_to_the_port_each_backend_listens_on() {
        let mut cfg = crate::config::load_str(FULLNAT, "t.yaml").unwrap();
        let ports = |cfg: &Config| -> Vec<(IpAddr, u16)> {
            health_targets(cfg)
                .iter()
                .map(|t| (t.backend, t.spec.port))
                .collect()
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            ports(&cfg),
            [
                (ip("192.0.2.11"), 6432),
                (ip("192.0.2.13"), 5432),
                (ip("192.0.2.12"), 53)
            ]
        );
        // The check's own port wins over the backend's.
        if let Some(hc) = cfg.services[0].health_check.as_mut() {
            hc.port = Some(9000);
        }
        assert_eq!(
            ports(&cfg)[..2],
            [(ip("192.0.2.11"), 9000), (ip("192.0.2.13"), 9000)]
        );
    }
}
