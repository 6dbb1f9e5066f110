//! The /metrics exposition parsed by the reference parser (Python `prometheus_client`'s OpenMetrics parser).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use control::metrics::{
    render, BackendMetrics, ExceptionMetrics, MetricsInput, PortRxDrops, ServiceMetrics,
    WorkerMetrics, CONTENT_TYPE,
};
use dataplane::stats::{Latency, LATENCY_BUCKETS_NS};
use dataplane::{Counters, DropReason};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde::Deserialize;

/// Debian's interpreter: the `python3` on PATH may be a pyenv shim without the package.
const PYTHON: &str = "/usr/bin/python3";

/// Parses a JSON list of exposition texts; prints, per text, its families or the parser's error.
/// Values travel as strings: serde_json's default float parsing is not always correctly rounded.
const PARSER: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for text in json.load(sys.stdin):
    try:
        out.append({"families": [
            {"name": f.name, "type": f.type, "unit": f.unit, "help": f.documentation,
             "samples": [{"name": s.name, "labels": s.labels, "value": str(s.value)}
                         for s in f.samples]}
            for f in text_string_to_metric_families(text)]})
    except Exception as e:
        out.append({"error": repr(e)})
json.dump(out, sys.stdout)
"#;

#[derive(Debug, Deserialize)]
struct Parsed {
    families: Option<Vec<Family>>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Family {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    unit: String,
    help: String,
    samples: Vec<Sample>,
}

#[derive(Debug, Deserialize)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: String,
}

/// Runs the reference parser over every text; fails loudly if it is not installed.
fn parse_all(texts: &[String]) -> Vec<Result<Vec<Family>, String>> {
    let mut child = Command::new(PYTHON)
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} ({e}); install python3"));
    let input = serde_json::to_vec(texts).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the reference parser is missing: apt-get install python3-prometheus-client\n{stderr}"
    );
    assert!(output.status.success(), "parser script failed: {stderr}");
    let parsed: Vec<Parsed> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(parsed.len(), texts.len());
    parsed
        .into_iter()
        .map(|p| match (p.families, p.error) {
            (Some(families), None) => Ok(families),
            (_, error) => Err(error.unwrap_or_default()),
        })
        .collect()
}

fn parse(text: &str) -> Vec<Family> {
    match parse_all(&[text.to_string()]).remove(0) {
        Ok(families) => families,
        Err(error) => panic!("reference parser rejected the exposition: {error}\n{text}"),
    }
}

fn family<'a>(families: &'a [Family], name: &str, kind: &str) -> &'a Family {
    let found = families
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("family {name} missing"));
    assert_eq!(found.kind, kind, "type of {name}");
    assert!(!found.help.is_empty(), "HELP of {name}");
    found
}

/// The value of the one sample with exactly these name and labels.
fn value(family: &Family, sample: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let matching: Vec<&Sample> = family
        .samples
        .iter()
        .filter(|s| s.name == sample && s.labels == labels)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{sample}{labels:?} in {:#?}",
        family.samples
    );
    let text = &matching[0].value;
    text.parse()
        .unwrap_or_else(|e| panic!("value {text:?} of {sample}: {e}"))
}

fn backend(address: &str, packets: u64, up: bool, flows: u64, weight: u32) -> BackendMetrics {
    BackendMetrics {
        address: address.to_string(),
        packets,
        up,
        flows,
        weight,
    }
}

/// A worker on `port` queue `queue`, lcore `core`, with its rx, tx, flows, busy ns and bursts.
fn worker(port: &str, queue: u16, core: u32, n: [u64; 5]) -> WorkerMetrics {
    let mut counters = Counters::default();
    [
        counters.rx,
        counters.tx,
        counters.flows,
        counters.busy_ns,
        counters.bursts,
    ] = n;
    WorkerMetrics {
        port: port.to_string(),
        queue,
        core,
        counters,
    }
}

fn example() -> MetricsInput {
    let workers = vec![
        worker("uplink", 0, 1, [1000, 990, 25, 2_500_000_000, 40]),
        worker("uplink", 1, 2, [2000, 1995, 17, 7, 3]),
    ];
    let mut total = Counters::sum(workers.iter().map(|w| &w.counters));
    total.dropped[DropReason::NoService as usize] = 7;
    total.dropped[DropReason::TxQueueFull as usize] = 8;
    total.flows_created = 99;
    total.flows_evicted_timeout = 50;
    total.flows_evicted_capacity = 3;
    total.flows_evicted_established = 2;
    total.flows_stateless = 4;
    total.replies = 11;
    total.to_control = 4;
    total.ptb_sent = 2;
    total.nat_replies = 17;
    total.nat_ports_exhausted = 2;
    total.nat_redirected = 23;
    total
        .nat_ports_in_use
        .insert("203.0.113.200".parse().unwrap(), 311);
    // 5 at <= 100 ns, 10 at <= 1 us, 20 at <= 10 us, 4 at <= 100 us, 1 at <= 1 ms.
    total.latency = latency(
        &[
            (100, 5),
            (1_000, 10),
            (10_000, 20),
            (100_000, 4),
            (1_000_000, 1),
        ],
        123_456_789,
        40,
    );
    MetricsInput {
        start_time_seconds: 1_796_601_600,
        version: "0.1.0 (6d978b5)".to_string(),
        dpdk: "DPDK 23.11.2".to_string(),
        workers,
        total,
        mempool_free: vec![("uplink".to_string(), 16000)],
        port_rx_dropped: vec![PortRxDrops {
            port: "uplink".to_string(),
            missed: 7,
            no_mbuf: 3,
            errors: 1,
        }],
        services: vec![
            ServiceMetrics {
                name: "web".to_string(),
                packets: 2500,
                bytes: 3_000_000,
                // Leading zeros: the reason the fingerprint is a label, not a float value.
                fingerprint: Some("00c0ffee12345678".to_string()),
                backends: vec![
                    backend("203.0.113.11", 1200, true, 30, 100),
                    backend("203.0.113.12", 1300, false, 0, 0),
                ],
            },
            ServiceMetrics {
                name: "dns".to_string(),
                packets: 485,
                bytes: 40_000,
                fingerprint: None,
                backends: vec![backend("2001:db8::53", 485, true, 12, 1)],
            },
        ],
        reloads_success: 5,
        reloads_failure: 1,
        config_epoch: 6,
        draining: false,
        announced: vec!["198.51.100.10".to_string()],
        exception: vec![ExceptionMetrics {
            port: "uplink".to_string(),
            to_kernel: 31,
            from_kernel: 29,
            to_kernel_rate_limited: 7,
            from_kernel_rate_limited: 2,
            from_kernel_tx_full: 1,
            to_kernel_tx_full: 5,
        }],
    }
}

/// A histogram with `counts` (upper bound in ns, packets) in the workers' buckets.
fn latency(counts: &[(u64, u64)], sum_ns: u64, count: u64) -> Latency {
    let mut l = Latency {
        sum_ns,
        count,
        ..Latency::default()
    };
    for &(bound, n) in counts {
        let i = LATENCY_BUCKETS_NS.iter().position(|&b| b == bound).unwrap();
        l.buckets[i] = n;
    }
    l
}

#[test]
fn every_design_metric_parses_with_its_type_labels_and_value() {
    let text = render(&example());
    assert!(CONTENT_TYPE.starts_with("application/openmetrics-text; version=1.0.0"));
    let families = parse(&text);

    let names: BTreeSet<&str> = families.iter().map(|f| f.name.as_str()).collect();
    // Counter and histogram families are named without the sample suffix in OpenMetrics.
    let expected: BTreeSet<&str> = [
        "sluice_rx_packets",
        "sluice_tx_packets",
        "sluice_port_rx_dropped",
        "sluice_dropped_packets",
        "sluice_service_packets",
        "sluice_service_bytes",
        "sluice_backend_packets",
        "sluice_backend_up",
        "sluice_backend_flows",
        "sluice_backend_weight",
        "sluice_flows",
        "sluice_worker_busy_seconds",
        "sluice_worker_bursts",
        "sluice_flows_created",
        "sluice_flows_evicted",
        "sluice_flows_evicted_established",
        "sluice_flows_stateless",
        "sluice_replies",
        "sluice_icmp_too_big_sent",
        "sluice_config_reloads",
        "sluice_config_epoch",
        "sluice_table_info",
        "sluice_packet_latency_seconds",
        "sluice_mempool_free",
        "sluice_build_info",
        "sluice_start_time_seconds",
        "sluice_exception_packets",
        "sluice_exception_dropped",
        "sluice_vip_announced",
        "sluice_draining",
        "sluice_control_frames",
        "sluice_nat_replies",
        "sluice_nat_ports_exhausted",
        "sluice_nat_ports_in_use",
        "sluice_nat_redirected",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, expected);

    let used = family(&families, "sluice_nat_ports_in_use", "gauge");
    assert_eq!(
        value(
            used,
            "sluice_nat_ports_in_use",
            &[("local_address", "203.0.113.200")]
        ),
        311.0
    );
    let exhausted = family(&families, "sluice_nat_ports_exhausted", "counter");
    assert_eq!(
        value(exhausted, "sluice_nat_ports_exhausted_total", &[]),
        2.0
    );
    let redirected = family(&families, "sluice_nat_redirected", "counter");
    assert_eq!(value(redirected, "sluice_nat_redirected_total", &[]), 23.0);

    let rx = family(&families, "sluice_rx_packets", "counter");
    let tx = family(&families, "sluice_tx_packets", "counter");
    for (queue, rx_packets, tx_packets) in [("0", 1000.0, 990.0), ("1", 2000.0, 1995.0)] {
        let labels = [("port", "uplink"), ("queue", queue)];
        assert_eq!(value(rx, "sluice_rx_packets_total", &labels), rx_packets);
        assert_eq!(value(tx, "sluice_tx_packets_total", &labels), tx_packets);
    }
    assert_eq!(rx.samples.len(), 2);

    let dropped = family(&families, "sluice_dropped_packets", "counter");
    let total = "sluice_dropped_packets_total";
    assert_eq!(value(dropped, total, &[("reason", "no_service")]), 7.0);
    assert_eq!(value(dropped, total, &[("reason", "tx_queue_full")]), 8.0);
    // Every reason is always exported, the worker's four included.
    assert_eq!(dropped.samples.len(), DropReason::COUNT);
    for reason in [
        "redirect_queue_full",
        "control_queue_full",
        "control_frame_too_long",
        "nat_untracked",
    ] {
        assert_eq!(value(dropped, total, &[("reason", reason)]), 0.0);
    }

    let packets = family(&families, "sluice_service_packets", "counter");
    let bytes = family(&families, "sluice_service_bytes", "counter");
    assert_eq!(bytes.unit, "bytes");
    for (service, p, b) in [("web", 2500.0, 3e6), ("dns", 485.0, 4e4)] {
        let labels = [("service", service)];
        assert_eq!(value(packets, "sluice_service_packets_total", &labels), p);
        assert_eq!(value(bytes, "sluice_service_bytes_total", &labels), b);
    }

    let backend_packets = family(&families, "sluice_backend_packets", "counter");
    let up = family(&families, "sluice_backend_up", "gauge");
    let flows = family(&families, "sluice_backend_flows", "gauge");
    let weight = family(&families, "sluice_backend_weight", "gauge");
    for (service, address, p, u, f, w) in [
        ("web", "203.0.113.11", 1200.0, 1.0, 30.0, 100.0),
        ("web", "203.0.113.12", 1300.0, 0.0, 0.0, 0.0),
        ("dns", "2001:db8::53", 485.0, 1.0, 12.0, 1.0),
    ] {
        let labels = [("service", service), ("backend", address)];
        let total = "sluice_backend_packets_total";
        assert_eq!(value(backend_packets, total, &labels), p);
        assert_eq!(value(up, "sluice_backend_up", &labels), u);
        assert_eq!(value(flows, "sluice_backend_flows", &labels), f);
        assert_eq!(value(weight, "sluice_backend_weight", &labels), w);
    }
    assert_eq!(up.samples.len(), 3);

    let per_core = family(&families, "sluice_flows", "gauge");
    assert_eq!(value(per_core, "sluice_flows", &[("core", "1")]), 25.0);
    assert_eq!(value(per_core, "sluice_flows", &[("core", "2")]), 17.0);
    let busy = family(&families, "sluice_worker_busy_seconds", "counter");
    assert_eq!(busy.unit, "seconds");
    let total = "sluice_worker_busy_seconds_total";
    assert_eq!(value(busy, total, &[("core", "1")]), 2.5);
    assert_eq!(value(busy, total, &[("core", "2")]), 7e-9);
    let bursts = family(&families, "sluice_worker_bursts", "counter");
    let total = "sluice_worker_bursts_total";
    assert_eq!(value(bursts, total, &[("core", "1")]), 40.0);
    assert_eq!(value(bursts, total, &[("core", "2")]), 3.0);
    let created = family(&families, "sluice_flows_created", "counter");
    assert_eq!(value(created, "sluice_flows_created_total", &[]), 99.0);
    let evicted = family(&families, "sluice_flows_evicted", "counter");
    let total = "sluice_flows_evicted_total";
    assert_eq!(value(evicted, total, &[("reason", "timeout")]), 50.0);
    assert_eq!(value(evicted, total, &[("reason", "capacity")]), 3.0);
    let established = family(&families, "sluice_flows_evicted_established", "counter");
    assert_eq!(
        value(established, "sluice_flows_evicted_established_total", &[]),
        2.0
    );
    let stateless = family(&families, "sluice_flows_stateless", "counter");
    assert_eq!(value(stateless, "sluice_flows_stateless_total", &[]), 4.0);
    let replies = family(&families, "sluice_replies", "counter");
    assert_eq!(value(replies, "sluice_replies_total", &[]), 11.0);
    let ptb = family(&families, "sluice_icmp_too_big_sent", "counter");
    assert_eq!(value(ptb, "sluice_icmp_too_big_sent_total", &[]), 2.0);

    let reloads = family(&families, "sluice_config_reloads", "counter");
    let total = "sluice_config_reloads_total";
    assert_eq!(value(reloads, total, &[("result", "success")]), 5.0);
    assert_eq!(value(reloads, total, &[("result", "failure")]), 1.0);
    let epoch = family(&families, "sluice_config_epoch", "gauge");
    assert_eq!(value(epoch, "sluice_config_epoch", &[]), 6.0);

    // Only services with a table get a fingerprint line; the hex string survives intact.
    let table = family(&families, "sluice_table_info", "gauge");
    assert_eq!(table.samples.len(), 1);
    let labels = [("service", "web"), ("fingerprint", "00c0ffee12345678")];
    assert_eq!(value(table, "sluice_table_info", &labels), 1.0);

    let mempool = family(&families, "sluice_mempool_free", "gauge");
    assert_eq!(
        value(mempool, "sluice_mempool_free", &[("port", "uplink")]),
        16000.0
    );
    let build = family(&families, "sluice_build_info", "gauge");
    let labels = [("version", "0.1.0 (6d978b5)"), ("dpdk", "DPDK 23.11.2")];
    assert_eq!(value(build, "sluice_build_info", &labels), 1.0);
    let nic = family(&families, "sluice_port_rx_dropped", "counter");
    for (reason, n) in [("missed", 7.0), ("no_mbuf", 3.0), ("errors", 1.0)] {
        let labels = [("port", "uplink"), ("reason", reason)];
        assert_eq!(value(nic, "sluice_port_rx_dropped_total", &labels), n);
    }
    let started = family(&families, "sluice_start_time_seconds", "gauge");
    assert_eq!(
        value(started, "sluice_start_time_seconds", &[]),
        1_796_601_600.0
    );

    let exc = family(&families, "sluice_exception_packets", "counter");
    let total = "sluice_exception_packets_total";
    let to = [("port", "uplink"), ("direction", "to_kernel")];
    assert_eq!(value(exc, total, &to), 31.0);
    let from = [("port", "uplink"), ("direction", "from_kernel")];
    assert_eq!(value(exc, total, &from), 29.0);
    let dropped = family(&families, "sluice_exception_dropped", "counter");
    let total = "sluice_exception_dropped_total";
    for (direction, reason, n) in [
        ("to_kernel", "rate_limited", 7.0),
        ("to_kernel", "tx_full", 5.0),
        ("from_kernel", "rate_limited", 2.0),
        ("from_kernel", "tx_full", 1.0),
    ] {
        let labels = [
            ("port", "uplink"),
            ("direction", direction),
            ("reason", reason),
        ];
        assert_eq!(value(dropped, total, &labels), n, "{direction} {reason}");
    }
}

#[test]
fn latency_histogram_is_cumulative_in_seconds() {
    let families = parse(&render(&example()));
    let histogram = family(&families, "sluice_packet_latency_seconds", "histogram");
    assert_eq!(histogram.unit, "seconds");
    let name = "sluice_packet_latency_seconds";
    let count = value(histogram, &format!("{name}_count"), &[]);
    assert_eq!(count, 40.0);
    let sum = value(histogram, &format!("{name}_sum"), &[]);
    assert!((sum - 0.123456789).abs() < 1e-12, "sum {sum}");

    let buckets: Vec<(f64, f64)> = histogram
        .samples
        .iter()
        .filter(|s| s.name == format!("{name}_bucket"))
        .map(|s| (s.labels["le"].parse().unwrap(), s.value.parse().unwrap()))
        .collect();
    let expected = [
        (1e-7, 5.0),
        (2e-7, 5.0),
        (5e-7, 5.0),
        (1e-6, 15.0),
        (2e-6, 15.0),
        (5e-6, 15.0),
        (1e-5, 35.0),
        (2e-5, 35.0),
        (5e-5, 35.0),
        (1e-4, 39.0),
        (2e-4, 39.0),
        (5e-4, 39.0),
        (1e-3, 40.0),
        (f64::INFINITY, 40.0),
    ];
    assert_eq!(buckets, expected);
    let inf = value(histogram, &format!("{name}_bucket"), &[("le", "+Inf")]);
    assert_eq!(inf, count);
}

#[test]
fn label_values_with_quotes_backslashes_and_newlines_round_trip() {
    let awkward = ["we\"b", "back\\slash", "new\nline", "all\\\"\n of them \\n"];
    let mut input = example();
    input.version = awkward[3].to_string();
    input.workers[0].port = awkward[2].to_string();
    input.services[0].name = awkward[0].to_string();
    input.services[1].name = awkward[1].to_string();
    input.services[1].backends[0].address = awkward[3].to_string();

    let text = render(&input);
    assert!(text.contains("{service=\"we\\\"b\"} 2500\n"), "{text}");
    assert!(text.contains("{service=\"back\\\\slash\"} 485\n"), "{text}");
    assert!(
        text.contains("{port=\"new\\nline\",queue=\"0\"} 1000\n"),
        "{text}"
    );

    let families = parse(&text);
    let packets = family(&families, "sluice_service_packets", "counter");
    let total = "sluice_service_packets_total";
    assert_eq!(value(packets, total, &[("service", awkward[0])]), 2500.0);
    assert_eq!(value(packets, total, &[("service", awkward[1])]), 485.0);
    let rx = family(&families, "sluice_rx_packets", "counter");
    let labels = [("port", awkward[2]), ("queue", "0")];
    assert_eq!(value(rx, "sluice_rx_packets_total", &labels), 1000.0);
    let up = family(&families, "sluice_backend_up", "gauge");
    let labels = [("service", awkward[1]), ("backend", awkward[3])];
    assert_eq!(value(up, "sluice_backend_up", &labels), 1.0);
    let build = family(&families, "sluice_build_info", "gauge");
    let labels = [("version", awkward[3]), ("dpdk", "DPDK 23.11.2")];
    assert_eq!(value(build, "sluice_build_info", &labels), 1.0);
}

#[test]
fn inconsistent_latency_snapshot_still_parses() {
    // Buckets ahead of count: a sum of copies published at different moments can be.
    // (Repeated and unsorted bounds are `latency_buckets`' unit tests.)
    let mut input = example();
    input.total.latency = latency(&[(500, 9), (1_000, 9), (2_000, 9)], 5, 20);
    let families = parse(&render(&input));
    let histogram = family(&families, "sluice_packet_latency_seconds", "histogram");
    let name = "sluice_packet_latency_seconds_bucket";
    assert_eq!(value(histogram, name, &[("le", "+Inf")]), 20.0);
    assert_eq!(
        value(histogram, "sluice_packet_latency_seconds_count", &[]),
        20.0
    );
}

fn label() -> impl Strategy<Value = String> {
    // Any characters, newlines, quotes and backslashes included.
    prop_oneof![
        prop::string::string_regex("(?s).{0,10}").unwrap(),
        prop::string::string_regex("[a-z\"\\\\\n]{0,6}").unwrap(),
    ]
}

fn service() -> impl Strategy<Value = ServiceMetrics> {
    let backend = (any::<u64>(), any::<bool>(), any::<u64>(), any::<u32>());
    (
        any::<u64>(),
        any::<u64>(),
        prop::option::of("[0-9a-f]{16}"),
        prop::collection::btree_map(label(), backend, 0..4),
    )
        .prop_map(|(packets, bytes, fingerprint, backends)| ServiceMetrics {
            name: String::new(),
            packets,
            bytes,
            fingerprint,
            backends: backends
                .into_iter()
                .map(|(address, (packets, up, flows, weight))| BackendMetrics {
                    address,
                    packets,
                    up,
                    flows,
                    weight,
                })
                .collect(),
        })
}

fn arbitrary_latency() -> impl Strategy<Value = Latency> {
    (
        any::<[u64; LATENCY_BUCKETS_NS.len() + 1]>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(buckets, sum_ns, count)| Latency {
            buckets,
            sum_ns,
            count,
        })
}

fn metrics_input() -> impl Strategy<Value = MetricsInput> {
    let keyed = || prop::collection::btree_map(label(), any::<u64>(), 0..4);
    (
        (label(), label(), arbitrary_latency(), any::<[u64; 8]>()),
        prop::collection::vec(
            ((label(), any::<u16>()), any::<u32>(), any::<[u64; 5]>()),
            0..4,
        ),
        (
            keyed(),
            any::<[u64; DropReason::COUNT]>(),
            any::<[u64; 2]>(),
        ),
        prop::collection::btree_map(label(), service(), 0..4),
    )
        .prop_map(
            |((version, dpdk, latency, n), workers, (mempool, dropped, evicted), services)| {
                // (port, queue) and core each name one worker.
                let mut seen_queues = BTreeSet::new();
                let mut seen_cores = BTreeSet::new();
                let workers: Vec<WorkerMetrics> = workers
                    .into_iter()
                    .filter(|(q, core, _)| {
                        seen_queues.insert(q.clone()) && seen_cores.insert(*core)
                    })
                    .map(|((port, queue), core, c)| {
                        worker(&port, queue, core, [c[0], c[1], c[2], c[3] / 3, c[4] / 7])
                    })
                    .collect();
                let mut total = Counters::sum(workers.iter().map(|w| &w.counters));
                total.dropped = dropped;
                total.flows_evicted_timeout = evicted[0];
                total.flows_evicted_capacity = evicted[1];
                total.flows_evicted_established = evicted[1] / 2;
                total.flows_created = n[0];
                total.flows_stateless = n[1];
                total.replies = n[2];
                total.to_control = n[3] / 2;
                total.ptb_sent = n[3];
                total.nat_replies = n[1] / 3;
                total.nat_ports_exhausted = n[2] / 5;
                total.nat_redirected = n[3] / 7;
                total.latency = latency;
                MetricsInput {
                    version,
                    dpdk,
                    workers,
                    total,
                    port_rx_dropped: mempool
                        .iter()
                        .map(|(port, n)| PortRxDrops {
                            port: port.clone(),
                            missed: *n,
                            no_mbuf: n / 2,
                            errors: n / 3,
                        })
                        .collect(),
                    mempool_free: mempool.into_iter().collect(),
                    services: services
                        .into_iter()
                        .map(|(name, service)| ServiceMetrics { name, ..service })
                        .collect(),
                    reloads_success: n[4],
                    reloads_failure: n[5],
                    config_epoch: n[6],
                    exception: Vec::new(),
                    draining: n[0] % 2 == 0,
                    announced: Vec::new(),
                    start_time_seconds: n[6],
                }
            },
        )
}

#[test]
fn arbitrary_inputs_render_valid_openmetrics() {
    // Cases are generated up front so one parser process checks them all.
    let mut runner = TestRunner::new(Config::default());
    let inputs: Vec<MetricsInput> = (0..200)
        .map(|_| metrics_input().new_tree(&mut runner).unwrap().current())
        .collect();
    let texts: Vec<String> = inputs.iter().map(render).collect();
    for ((input, text), parsed) in inputs.iter().zip(&texts).zip(parse_all(&texts)) {
        let families = parsed
            .unwrap_or_else(|error| panic!("rejected: {error}\ninput: {input:#?}\ntext:\n{text}"));
        assert_eq!(families.len(), 35);
        let backend_up = family(&families, "sluice_backend_up", "gauge");
        let backends: usize = input.services.iter().map(|s| s.backends.len()).sum();
        assert_eq!(backend_up.samples.len(), backends);
        let histogram = family(&families, "sluice_packet_latency_seconds", "histogram");
        let inf = value(
            histogram,
            "sluice_packet_latency_seconds_bucket",
            &[("le", "+Inf")],
        );
        assert_eq!(inf, input.total.latency.count as f64);
    }
}
