//! The demo's live report: a line a second while traffic runs and the summary with its verdict,
//! from the appliance's counters and what the generator (`traffic`) counted.
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dataplane::stats::{Latency, LATENCY_BUCKETS_NS};

use super::traffic::{DemoService, GeneratorStats};
use crate::appliance::Appliance;

/// One reading of every counter the report shows.
pub struct Sample {
    at: Instant,
    rx: u64,
    tx: u64,
    flows: u64,
    sent: u64,
    per_backend: Vec<u64>,
    drops: Vec<(String, u64)>,
    flows_created: u64,
    latency: Latency,
    arp: u64,
    misrouted: u64,
    split: u64,
}

impl Sample {
    pub fn take(app: &Appliance, g: &GeneratorStats) -> Self {
        let m = app.shared().metrics_input();
        Sample {
            at: Instant::now(),
            rx: m.total.rx,
            tx: m.total.tx,
            flows: m.total.flows,
            sent: g.sent.load(Ordering::Relaxed),
            per_backend: g
                .per_backend
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            drops: m
                .total
                .drops()
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| (r.as_str().to_owned(), n))
                .collect(),
            flows_created: m.total.flows_created,
            latency: m.total.latency,
            arp: g.arp_answered.load(Ordering::Relaxed),
            misrouted: g.misrouted.load(Ordering::Relaxed),
            split: g.split_flows.load(Ordering::Relaxed),
        }
    }
}

fn shares(services: &[DemoService], counts: &[u64]) -> String {
    let mut out = String::new();
    let mut g = 0;
    for s in services {
        let n = s.backends.len();
        let slice = &counts[g..g + n];
        let total: u64 = slice.iter().sum();
        out.push_str(&format!(" | {}", s.name));
        for c in slice {
            let pct = if total == 0 {
                0.0
            } else {
                *c as f64 * 100.0 / total as f64
            };
            out.push_str(&format!(" {pct:4.1}"));
        }
        g += n;
    }
    out
}

pub fn print_header(services: &[DemoService]) {
    let mut h = String::from("  time    in pps   out pps    flows  drops");
    for s in services {
        h.push_str(&format!(
            " | {} share % ({} backends, {})",
            s.name,
            s.backends.len(),
            s.forwarding
        ));
    }
    println!("{h}");
}

pub fn print_line(t: Duration, a: &Sample, b: &Sample, services: &[DemoService]) {
    let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let pps_in = (b.rx - a.rx) as f64 / secs;
    let pps_out = (b.tx - a.tx) as f64 / secs;
    let delta: Vec<u64> = b
        .per_backend
        .iter()
        .zip(&a.per_backend)
        .map(|(x, y)| x - y)
        .collect();
    let drops: u64 =
        b.drops.iter().map(|(_, n)| n).sum::<u64>() - a.drops.iter().map(|(_, n)| n).sum::<u64>();
    println!(
        "{:>5.0}s {:>9.0} {:>9.0} {:>8} {:>6}{}{}",
        t.as_secs_f64(),
        pps_in,
        pps_out,
        b.flows,
        drops,
        shares(services, &delta),
        drop_reasons(&a.drops, &b.drops)
    );
}

/// The drops between two readings by reason, e.g. `  [no_service 12, not_vip 3]`; empty
/// without drops.
fn drop_reasons(before: &[(String, u64)], after: &[(String, u64)]) -> String {
    let was = |reason: &str| {
        before
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |&(_, n)| n)
    };
    let now: Vec<String> = after
        .iter()
        .map(|(r, n)| (r, n - was(r)))
        .filter(|&(_, n)| n > 0)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    if now.is_empty() {
        String::new()
    } else {
        format!("  [{}]", now.join(", "))
    }
}

/// The closing summary; true when the run shows a working balancer.
pub fn print_summary(
    elapsed: Duration,
    s: &Sample,
    app: &Appliance,
    services: &[DemoService],
) -> bool {
    let _ = app;
    println!();
    println!("summary after {:.1} s", elapsed.as_secs_f64());
    println!("  generator sent      {:>12}", s.sent);
    println!("  appliance received  {:>12}", s.rx);
    println!(
        "  appliance sent      {:>12}  (forwarded + ARP requests)",
        s.tx
    );
    println!(
        "  reached a backend   {:>12}",
        s.per_backend.iter().sum::<u64>()
    );
    println!("  flows created       {:>12}", s.flows_created);
    println!("  ARP answered        {:>12}", s.arp);
    println!("  misrouted           {:>12}", s.misrouted);
    println!("  packets off their flow's backend {:>5}", s.split);
    if s.drops.is_empty() {
        println!("  drops               {:>12}", 0);
    } else {
        for (reason, n) in &s.drops {
            println!("  dropped: {reason:<18} {n:>8}");
        }
    }
    let mut g = 0;
    for svc in services {
        let total: u64 = s.per_backend[g..g + svc.backends.len()].iter().sum();
        let wsum: u64 = svc.backends.iter().map(|(_, w)| u64::from(*w)).sum();
        println!(
            "  {} ({}:{} {}, {}):",
            svc.name,
            svc.vip,
            svc.port,
            if svc.tcp { "tcp" } else { "udp" },
            svc.forwarding
        );
        for (k, (addr, w)) in svc.backends.iter().enumerate() {
            let c = s.per_backend[g + k];
            let got = if total == 0 {
                0.0
            } else {
                c as f64 * 100.0 / total as f64
            };
            let want = u64::from(*w) as f64 * 100.0 / wsum.max(1) as f64;
            println!("    {addr:<15} weight {w:>4}  {c:>10} packets  {got:5.1}% (weight share {want:4.1}%)");
        }
        g += svc.backends.len();
    }
    let q = |p: f64| -> String {
        let total = s.latency.count;
        if total == 0 {
            return "-".into();
        }
        let want = (total as f64 * p).ceil() as u64;
        let mut acc = 0;
        for (i, c) in s.latency.buckets.iter().enumerate() {
            acc += c;
            if acc >= want {
                return match LATENCY_BUCKETS_NS.get(i) {
                    Some(b) => format!("<= {b} ns"),
                    None => "> 1 ms".into(),
                };
            }
        }
        "-".into()
    };
    println!(
        "  rx-to-tx latency    p50 {}   p99 {}   p99.9 {}",
        q(0.5),
        q(0.99),
        q(0.999)
    );
    let reached: u64 = s.per_backend.iter().sum();
    let every_backend = s.per_backend.iter().all(|&c| c > 0);
    let ok = reached > 0 && every_backend && s.misrouted == 0 && s.split == 0;
    println!(
        "  result: {}",
        if ok {
            "OK: every backend served traffic, every flow stayed on one backend, nothing misrouted"
        } else {
            "FAILED: see above"
        }
    );
    ok
}

#[cfg(test)]
mod tests {
    use super::drop_reasons;

    #[test]
    fn a_seconds_line_names_the_reasons_that_moved() {
        let r = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|&(s, n)| (s.to_owned(), n)).collect()
        };
        let before = r(&[("not_vip", 5), ("no_service", 2)]);
        let after = r(&[("not_vip", 5), ("no_service", 14), ("ttl_exceeded", 1)]);
        assert_eq!(
            drop_reasons(&before, &after),
            "  [no_service 12, ttl_exceeded 1]"
        );
        assert_eq!(drop_reasons(&after, &after), "");
    }
}
