//! The /metrics exposition: renders a scrape-time snapshot of sluice's counters as OpenMetrics text.
//!
//! The scrape gathers every worker's published counters and their sum into a [`MetricsInput`]
//! and calls [`render`]; nothing here is on the packet path. Encoding goes through the official
//! `prometheus-client` crate: a throw-away [`Registry`] holds one [`Collector`] that writes
//! every family as const metrics, so names, label escaping, `_total` suffixes, `# UNIT` lines and
//! the cumulative histogram buckets all come from the reference encoder. That encoder only speaks
//! OpenMetrics 1.0 text, so the HTTP layer must answer with [`CONTENT_TYPE`].
//!
//! Long (about 620 lines besides tests): one exposition, family by family in the order a scrape
//! shows them, each a few lines; split, one scrape's order would be spread over files.

use std::collections::HashSet;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use dataplane::stats::{Counters, LATENCY_BUCKETS_NS};

/// The content type of [`render`]'s output (OpenMetrics 1.0 text; Prometheus scrapes it natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything one scrape exposes: each worker's [`Counters`] and their sum, and control's view.
///
/// A new per-worker counter is a field of [`Counters`] (summed by its `merge`) and one family
/// in `encode_all`; nothing here repeats it. Keys within each list (port+queue, core,
/// service, backend) are expected to be unique: duplicates would be exposed as duplicate
/// series, which Prometheus rejects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsInput {
    /// `sluice_start_time_seconds`: when the appliance started, in Unix seconds.
    pub start_time_seconds: u64,
    /// `sluice_build_info{version,dpdk} 1`.
    pub version: String,
    pub dpdk: String,
    /// One per worker: the per-queue and per-core families.
    pub workers: Vec<WorkerMetrics>,
    /// The workers' counters summed ([`Counters::sum`]): every family without a per-worker label.
    pub total: Counters,
    /// `sluice_mempool_free{port}`: (interface name, free mbufs).
    pub mempool_free: Vec<(String, u64)>,
    /// `sluice_port_rx_dropped_total{port,reason}`, per interface.
    pub port_rx_dropped: Vec<PortRxDrops>,
    /// Per-service and per-backend families, and `sluice_table_info`.
    pub services: Vec<ServiceMetrics>,
    /// `sluice_config_reloads_total{result="success"|"failure"}`.
    pub reloads_success: u64,
    pub reloads_failure: u64,
    /// `sluice_config_epoch`: the RCU epoch of the snapshot workers forward with.
    pub config_epoch: u64,
    /// `sluice_exception_packets_total{port,direction}` and
    /// `sluice_exception_dropped_total{port,direction,reason}`: interfaces with a kernel path.
    pub exception: Vec<ExceptionMetrics>,
    /// `sluice_draining`: 1 while a drain withholds every route.
    pub draining: bool,
    /// `sluice_vip_announced{vip} 1` for each VIP announced as a route now.
    pub announced: Vec<String>,
}

/// One worker: where it runs and what it counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerMetrics {
    /// The interface name from the config (`interfaces[].name`): the `port` label.
    pub port: String,
    /// Its RX queue: the `queue` label.
    pub queue: u16,
    /// Its EAL lcore id: the `core` label.
    pub core: u32,
    pub counters: Counters,
}

/// One interface's exception path: frames to and from its kernel interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionMetrics {
    pub port: String,
    pub to_kernel: u64,
    pub from_kernel: u64,
    /// Frames for the kernel over the per-core rate (also in `sluice_dropped_packets_total`).
    pub to_kernel_rate_limited: u64,
    pub from_kernel_rate_limited: u64,
    /// Frames from the kernel the data port's queue did not take.
    pub from_kernel_tx_full: u64,
    /// Frames for the kernel its tap's queue did not take (also `tx_queue_full` drops).
    pub to_kernel_tx_full: u64,
}

/// What one interface's NIC dropped before any worker saw it (`rte_eth_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRxDrops {
    pub port: String,
    /// The RX ring was full: its worker did not keep up (`imissed`).
    pub missed: u64,
    /// No mbuf to receive into: the pool was empty (`rx_nombuf`).
    pub no_mbuf: u64,
    /// Frames the NIC found bad (`ierrors`).
    pub errors: u64,
}

/// One service's counters and its backends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceMetrics {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    /// The Maglev table fingerprint as 16 hex digits; `None` while the service has no table.
    pub fingerprint: Option<String>,
    pub backends: Vec<BackendMetrics>,
}

/// One backend of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendMetrics {
    /// The backend address as written in the config.
    pub address: String,
    pub packets: u64,
    pub up: bool,
    /// Live flow-table entries pinned to this backend, over all cores.
    pub flows: u64,
    pub weight: u32,
}

/// What a per-id counter counts, for [`Monotonic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PerId {
    BackendPackets,
    ServicePackets,
    ServiceBytes,
}

/// Per-id counters summed over cores, kept from going back: a core frees a removed id's slot
/// once no flow there names it, which takes that core's share out of the sum while another
/// core still counts on (a backend removed and added back meanwhile). Remembers, per id
/// exported, the highest value given and what the sum has lost since: a few words each, in
/// control, until the id is forgotten ([`Monotonic::retain`]).
#[derive(Debug, Default)]
pub struct Monotonic {
    seen: std::collections::HashMap<(PerId, u32), (u64, u64)>,
}

impl Monotonic {
    /// Forgets the ids no longer assigned (control's `Ids` forgot them: they never come back).
    pub fn retain(&mut self, services: &HashSet<u32>, backends: &HashSet<u32>) {
        self.seen.retain(|&(what, id), _| match what {
            PerId::BackendPackets => backends.contains(&id),
            PerId::ServicePackets | PerId::ServiceBytes => services.contains(&id),
        });
    }

    /// The value to export for `id`'s `what`, whose per-core parts sum to `sum` now.
    pub fn read(&mut self, what: PerId, id: u32, sum: u64) -> u64 {
        let (high, lost) = self.seen.entry((what, id)).or_default();
        let v = sum.saturating_add(*lost);
        if v < *high {
            *lost += *high - v;
        }
        *high = sum.saturating_add(*lost);
        *high
    }
}

/// A latency histogram with its bounds, in nanoseconds, as [`latency_buckets`] reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LatencyInput {
    /// Ascending finite upper bounds; `+Inf` is implicit.
    pub bounds_ns: Vec<u64>,
    /// Non-cumulative counts, `bounds_ns.len() + 1` of them, the last one for `+Inf`.
    pub counts: Vec<u64>,
    pub sum_ns: u64,
    /// Number of observations; authoritative for `_count` and the `+Inf` bucket.
    pub count: u64,
}

/// Renders the whole exposition, ending with `# EOF`; serve it with [`CONTENT_TYPE`].
pub fn render(input: &MetricsInput) -> String {
    let mut registry = Registry::default();
    // A collector must be 'static, so it gets its own copy; a scrape-sized clone is cheap.
    registry.register_collector(Box::new(Exposition(input.clone())));
    let mut out = String::with_capacity(8192);
    match prometheus_client::encoding::text::encode(&mut out, &registry) {
        Ok(()) => out,
        // Unreachable: writing to a String cannot fail and no encoder call used here returns Err;
        // if it ever did, an empty but well-formed exposition beats a truncated one.
        Err(fmt::Error) => String::from("# EOF\n"),
    }
}

/// The scrape's snapshot as a `prometheus-client` collector.
#[derive(Debug)]
struct Exposition(MetricsInput);

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        encode_all(&self.0, &mut encoder)
    }
}

const SECONDS: Unit = Unit::Seconds;
const BYTES: Unit = Unit::Bytes;

/// Writes every family of docs/design.md's "Metrics" table. Counter names go in without
/// `_total`: the encoder appends it to the sample name, as OpenMetrics requires.
fn encode_all(m: &MetricsInput, enc: &mut DescriptorEncoder) -> fmt::Result {
    counters(
        enc,
        "sluice_rx_packets",
        "Packets received, per interface and RX queue.",
        None,
        m.workers.iter().map(|w| {
            (
                ([("port", w.port.as_str())], [("queue", w.queue)]),
                w.counters.rx,
            )
        }),
    )?;
    counters(
        enc,
        "sluice_tx_packets",
        "Packets the worker of this RX interface and queue sent, on any port.",
        None,
        m.workers.iter().map(|w| {
            (
                ([("port", w.port.as_str())], [("queue", w.queue)]),
                w.counters.tx,
            )
        }),
    )?;
    counters(
        enc,
        "sluice_port_rx_dropped",
        "Frames an interface's NIC dropped before a worker received them: missed (RX ring full), no_mbuf (mbuf pool empty), errors (bad frames).",
        None,
        m.port_rx_dropped.iter().flat_map(|p| {
            [
                ("missed", p.missed),
                ("no_mbuf", p.no_mbuf),
                ("errors", p.errors),
            ]
            .map(|(r, n)| ([("port", p.port.as_str()), ("reason", r)], n))
        }),
    )?;
    counters(
        enc,
        "sluice_dropped_packets",
        "Packets dropped, by reason.",
        None,
        m.total
            .drops()
            .map(|(reason, n)| ([("reason", reason.as_str())], n)),
    )?;
    counters(
        enc,
        "sluice_exception_packets",
        "Frames through the exception path, per interface and direction (to_kernel, from_kernel).",
        None,
        m.exception.iter().flat_map(|e| {
            [("to_kernel", e.to_kernel), ("from_kernel", e.from_kernel)]
                .map(|(d, n)| ([("port", e.port.as_str()), ("direction", d)], n))
        }),
    )?;
    counters(
        enc,
        "sluice_exception_dropped",
        "Frames the exception path dropped, per interface, direction and reason.",
        None,
        m.exception.iter().flat_map(|e| {
            [
                ("to_kernel", "rate_limited", e.to_kernel_rate_limited),
                ("to_kernel", "tx_full", e.to_kernel_tx_full),
                ("from_kernel", "rate_limited", e.from_kernel_rate_limited),
                ("from_kernel", "tx_full", e.from_kernel_tx_full),
            ]
            .map(|(d, r, n)| {
                (
                    [("port", e.port.as_str()), ("direction", d), ("reason", r)],
                    n,
                )
            })
        }),
    )?;
    gauges(
        enc,
        "sluice_vip_announced",
        "1 for each VIP announced as a route now (announce configured, a usable backend, no drain).",
        None,
        m.announced.iter().map(|v| ([("vip", v.as_str())], 1u64)),
    )?;
    gauge(
        enc,
        "sluice_draining",
        "1 while a drain (sluice drain, POST /-/drain, SIGTERM) withholds every route.",
        u64::from(m.draining),
    )?;
    counters(
        enc,
        "sluice_service_packets",
        "Packets forwarded for a service.",
        None,
        m.services
            .iter()
            .map(|s| ([("service", s.name.as_str())], s.packets)),
    )?;
    counters(
        enc,
        "sluice_service",
        "Bytes forwarded for a service.",
        Some(&BYTES),
        m.services
            .iter()
            .map(|s| ([("service", s.name.as_str())], s.bytes)),
    )?;
    counters(
        enc,
        "sluice_backend_packets",
        "Packets forwarded to a backend.",
        None,
        backends(m).map(|(labels, b)| (labels, b.packets)),
    )?;
    gauges(
        enc,
        "sluice_backend_up",
        "1 if the backend passes its health check (or has none), else 0.",
        None,
        backends(m).map(|(labels, b)| (labels, u64::from(b.up))),
    )?;
    gauges(
        enc,
        "sluice_backend_flows",
        "Flow-table entries pinned to a backend, summed over cores.",
        None,
        backends(m).map(|(labels, b)| (labels, b.flows)),
    )?;
    gauges(
        enc,
        "sluice_backend_weight",
        "Configured Maglev weight of a backend (0 = draining).",
        None,
        backends(m).map(|(labels, b)| (labels, u64::from(b.weight))),
    )?;
    gauges(
        enc,
        "sluice_flows",
        "Flow-table entries, per worker core (EAL lcore id).",
        None,
        m.workers
            .iter()
            .map(|w| ([("core", w.core)], w.counters.flows)),
    )?;
    counters(
        enc,
        "sluice_worker_busy",
        "Time a worker core spent on bursts that received packets (rx through tx), per core.",
        Some(&SECONDS),
        m.workers.iter().map(|w| {
            (
                [("core", w.core)],
                w.counters.busy_ns as f64 / NANOS_PER_SECOND,
            )
        }),
    )?;
    counters(
        enc,
        "sluice_worker_bursts",
        "Bursts that received packets, per worker core (packets / bursts = the mean burst).",
        None,
        m.workers
            .iter()
            .map(|w| ([("core", w.core)], w.counters.bursts)),
    )?;
    counter(
        enc,
        "sluice_flows_created",
        "Flow-table entries created.",
        m.total.flows_created,
    )?;
    counters(
        enc,
        "sluice_flows_evicted",
        "Flow-table entries removed, by reason.",
        None,
        [
            ([("reason", "timeout")], m.total.flows_evicted_timeout),
            ([("reason", "capacity")], m.total.flows_evicted_capacity),
        ],
    )?;
    counter(
        enc,
        "sluice_flows_evicted_established",
        "Of the capacity evictions, established TCP flows (a SYN flood should leave this at 0).",
        m.total.flows_evicted_established,
    )?;
    counter(
        enc,
        "sluice_flows_stateless",
        "Packets forwarded by Maglev alone because the new-flow rate limit was exceeded.",
        m.total.flows_stateless,
    )?;
    counter(
        enc,
        "sluice_replies",
        "ARP, ND and ICMP replies sent by the appliance itself.",
        m.total.replies,
    )?;
    counter(
        enc,
        "sluice_control_frames",
        "ARP replies and neighbour advertisements handed to control (neither forwarded nor dropped).",
        m.total.to_control,
    )?;
    counter(
        enc,
        "sluice_nat_replies",
        "Packets translated back towards a client by a nat or fullnat connection.",
        m.total.nat_replies,
    )?;
    counter(
        enc,
        "sluice_nat_ports_exhausted",
        "New fullnat connections dropped because no local port was free.",
        m.total.nat_ports_exhausted,
    )?;
    counter(
        enc,
        "sluice_nat_redirected",
        "nat/fullnat packets a worker handed to the worker owning their connection.",
        m.total.nat_redirected,
    )?;
    gauges(
        enc,
        "sluice_nat_ports_in_use",
        "Fullnat source ports held by live connections, per local address.",
        None,
        nat_ports_in_use(&m.total)
            .into_iter()
            .map(|(a, n)| ([("local_address", a)], n)),
    )?;
    counter(
        enc,
        "sluice_icmp_too_big_sent",
        "ICMP fragmentation-needed and packet-too-big messages sent.",
        m.total.ptb_sent,
    )?;
    counters(
        enc,
        "sluice_config_reloads",
        "Configuration reloads, by result.",
        None,
        [
            ([("result", "success")], m.reloads_success),
            ([("result", "failure")], m.reloads_failure),
        ],
    )?;
    gauge(
        enc,
        "sluice_config_epoch",
        "RCU epoch of the forwarding snapshot in use.",
        m.config_epoch,
    )?;
    gauges(
        enc,
        "sluice_table_info",
        "Fingerprint of a service's Maglev table; equal on every instance with the same config.",
        None,
        m.services.iter().filter_map(|s| {
            let fingerprint = s.fingerprint.as_deref()?;
            Some((
                [("service", s.name.as_str()), ("fingerprint", fingerprint)],
                1,
            ))
        }),
    )?;
    let latency = enc.encode_descriptor(
        "sluice_packet_latency",
        "Time from rx burst to tx burst, per packet.",
        Some(&SECONDS),
        MetricType::Histogram,
    )?;
    encode_latency(&latency_input(&m.total), latency)?;
    gauges(
        enc,
        "sluice_mempool_free",
        "Free mbufs in an interface's mempool.",
        None,
        m.mempool_free
            .iter()
            .map(|(port, n)| ([("port", port.as_str())], *n)),
    )?;
    gauge(
        enc,
        "sluice_start_time_seconds",
        "Unix time the appliance started: time() minus this is its uptime; a change, a restart.",
        m.start_time_seconds,
    )?;
    gauges(
        enc,
        "sluice_build_info",
        "Build metadata; the value is always 1.",
        None,
        [(
            [("version", m.version.as_str()), ("dpdk", m.dpdk.as_str())],
            1,
        )],
    )
}

/// Fullnat ports in use by local address, in text order (a stable exposition).
fn nat_ports_in_use(c: &Counters) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = c
        .nat_ports_in_use
        .iter()
        .map(|(a, n)| (a.to_string(), *n))
        .collect();
    v.sort();
    v
}

/// The workers' histogram with its bounds.
fn latency_input(c: &Counters) -> LatencyInput {
    LatencyInput {
        bounds_ns: LATENCY_BUCKETS_NS.to_vec(),
        counts: c.latency.buckets.to_vec(),
        sum_ns: c.latency.sum_ns,
        count: c.latency.count,
    }
}

/// Every backend with its `{service, backend}` labels.
fn backends(
    m: &MetricsInput,
) -> impl Iterator<Item = ([(&'static str, &str); 2], &BackendMetrics)> {
    m.services.iter().flat_map(|s| {
        s.backends.iter().map(move |b| {
            (
                [
                    ("service", s.name.as_str()),
                    ("backend", b.address.as_str()),
                ],
                b,
            )
        })
    })
}

/// One counter family: a descriptor, then one `_total` sample per label set.
fn counters<L: EncodeLabelSet, V: EncodeCounterValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter without labels.
fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(family)
}

/// A gauge without labels.
fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(family)
}

/// One gauge family: a descriptor, then one sample per label set.
fn gauges<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn encode_latency(l: &LatencyInput, mut family: MetricEncoder) -> fmt::Result {
    let sum_seconds = l.sum_ns as f64 / NANOS_PER_SECOND;
    family.encode_histogram::<NoLabelSet>(sum_seconds, l.count, &latency_buckets(l), None)
}

const NANOS_PER_SECOND: f64 = 1e9;

/// Non-cumulative `(upper bound in seconds, count)` buckets ending with `+Inf`.
///
/// OpenMetrics requires the `+Inf` bucket to equal `_count` and buckets to ascend, but the
/// per-core counters are read while workers update them, so the snapshot can be off by a few:
/// `count` is taken as the truth, finite buckets are clamped so they never exceed it, the
/// `+Inf` bucket gets the rest, and a bound that does not ascend is folded into the next one.
pub(crate) fn latency_buckets(l: &LatencyInput) -> Vec<(f64, u64)> {
    let mut buckets = Vec::with_capacity(l.bounds_ns.len() + 1);
    let mut placed = 0u64;
    let mut carried = 0u64;
    let mut previous = f64::NEG_INFINITY;
    for (i, &bound_ns) in l.bounds_ns.iter().enumerate() {
        let n = l.counts.get(i).copied().unwrap_or(0);
        let n = n.saturating_add(carried);
        // Compared as emitted: huge distinct nanosecond bounds can round to the same f64.
        let bound = bound_ns as f64 / NANOS_PER_SECOND;
        if bound <= previous {
            carried = n;
            continue;
        }
        carried = 0;
        let n = n.min(l.count - placed);
        placed += n;
        buckets.push((bound, n));
        previous = bound;
    }
    buckets.push((f64::INFINITY, l.count - placed));
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_that_loses_a_cores_share_does_not_go_back() {
        let mut m = Monotonic::default();
        assert_eq!(m.read(PerId::BackendPackets, 7, 100), 100);
        // One core's 40 freed with its slot: still 100, then counting on from there.
        assert_eq!(m.read(PerId::BackendPackets, 7, 60), 100);
        assert_eq!(m.read(PerId::BackendPackets, 7, 65), 105);
        // The rest freed too, then counted again from zero.
        assert_eq!(m.read(PerId::BackendPackets, 7, 0), 105);
        assert_eq!(m.read(PerId::BackendPackets, 7, 3), 108);
        // Each id and counter on its own.
        assert_eq!(m.read(PerId::ServiceBytes, 7, 5), 5);
        assert_eq!(m.read(PerId::BackendPackets, 8, 1), 1);
    }

    #[test]
    fn forgotten_ids_are_dropped_by_kind() {
        let mut m = Monotonic::default();
        m.read(PerId::BackendPackets, 7, 100);
        m.read(PerId::BackendPackets, 8, 1);
        m.read(PerId::ServicePackets, 7, 5);
        m.read(PerId::ServiceBytes, 7, 50);
        m.retain(&HashSet::from([7]), &HashSet::from([8]));
        assert_eq!(
            m.read(PerId::BackendPackets, 8, 0),
            1,
            "backend 8 kept its mark"
        );
        assert_eq!(
            m.read(PerId::ServicePackets, 7, 0),
            5,
            "service 7 kept both"
        );
        assert_eq!(m.read(PerId::ServiceBytes, 7, 0), 50);
        assert_eq!(
            m.read(PerId::BackendPackets, 7, 0),
            0,
            "backend 7 starts afresh"
        );
        m.retain(&HashSet::new(), &HashSet::new());
        assert_eq!(m.read(PerId::ServiceBytes, 7, 0), 0, "service 7 gone too");
    }

    fn latency(bounds_ns: &[u64], counts: &[u64], count: u64) -> LatencyInput {
        LatencyInput {
            bounds_ns: bounds_ns.to_vec(),
            counts: counts.to_vec(),
            sum_ns: 0,
            count,
        }
    }

    #[test]
    fn consistent_latency_is_passed_through() {
        let buckets = latency_buckets(&latency(&[100, 1_000, 1_000_000], &[1, 2, 3, 4], 10));
        assert_eq!(
            buckets,
            vec![(1e-7, 1), (1e-6, 2), (1e-3, 3), (f64::INFINITY, 4)]
        );
    }

    #[test]
    fn latency_count_behind_buckets_clamps_them() {
        // A worker bumped its buckets, and the scrape read `count` before its increment.
        let buckets = latency_buckets(&latency(&[100, 1_000], &[3, 4, 0], 5));
        assert_eq!(buckets, vec![(1e-7, 3), (1e-6, 2), (f64::INFINITY, 0)]);
    }

    #[test]
    fn latency_count_ahead_of_buckets_fills_inf() {
        let buckets = latency_buckets(&latency(&[100], &[2, 1], 7));
        assert_eq!(buckets, vec![(1e-7, 2), (f64::INFINITY, 5)]);
    }

    #[test]
    fn latency_with_missing_counts_and_unsorted_bounds_stays_valid() {
        let buckets = latency_buckets(&latency(&[500, 500, 200, 900], &[1, 2, 3], 9));
        assert_eq!(buckets, vec![(5e-7, 1), (9e-7, 5), (f64::INFINITY, 3)]);
    }

    #[test]
    fn latency_without_bounds_is_one_inf_bucket() {
        assert_eq!(
            latency_buckets(&latency(&[], &[], 3)),
            vec![(f64::INFINITY, 3)]
        );
    }

    #[test]
    fn counters_get_total_suffix_and_output_ends_with_eof() {
        let mut input = MetricsInput::default();
        input.total.flows_created = 42;
        let text = render(&input);
        assert!(text.contains("# TYPE sluice_flows_created counter\n"));
        assert!(text.contains("\nsluice_flows_created_total 42\n"));
        assert!(text.ends_with("\n# EOF\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let text = render(&MetricsInput {
            services: vec![ServiceMetrics {
                name: "we\"b\\x\ny".to_string(),
                packets: 7,
                ..ServiceMetrics::default()
            }],
            ..MetricsInput::default()
        });
        assert!(
            text.contains("sluice_service_packets_total{service=\"we\\\"b\\\\x\\ny\"} 7\n"),
            "{text}"
        );
    }
}
