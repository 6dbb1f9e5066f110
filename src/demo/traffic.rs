//! The demo's traffic generator and sink, and its live report.
//!
//! Flows are (client address, source port) pairs to a service's VIP; each flow sends a few
//! dozen packets (TCP: a SYN, then ACKs) and is then replaced by a new one, so the flow table
//! sees a steady churn of misses and hits. The sink reads the appliance's output, answers its
//! ARP requests as the backends would, and counts each backend's share from the outer headers.
//! Frames are built, read and answered by the `traffic` library, as sluice-gen's are.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use control::config::{Config, Forwarding, Proto};
use dataplane::dpdk::{Burst, Mempool, Port};
use dataplane::stats::{Latency, LATENCY_BUCKETS_NS};
use dataplane::wire::tcp;
use traffic::stamp::STAMP_FLOWS;
use traffic::{arp, BackendKey, Client, Packet, Received, Returned, Target, Template, L4};

use crate::appliance::Appliance;

/// Packets per second the generator aims for (the wire and two cores set the real ceiling).
const TARGET_PPS: u64 = 300_000;
/// Concurrent flows.
const FLOWS: usize = 20_000;
const GEN_MAC: [u8; 6] = [0x02, 0x5c, 0, 0, 0, 0x99];

/// One service as the generator sees it.
#[derive(Debug, Clone)]
pub struct DemoService {
    pub name: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub tcp: bool,
    pub forwarding: Forwarding,
    /// (address, weight).
    pub backends: Vec<(Ipv4Addr, u32)>,
}

pub fn services_of(cfg: &Config) -> Vec<DemoService> {
    cfg.services
        .iter()
        .filter_map(|s| {
            let IpAddr::V4(vip) = s.vip else { return None };
            Some(DemoService {
                name: s.name.clone(),
                vip,
                port: s.port,
                tcp: s.protocol == Proto::Tcp,
                forwarding: s.forwarding,
                backends: s
                    .backends
                    .iter()
                    .filter_map(|b| match b.address {
                        IpAddr::V4(a) => Some((a, b.weight)),
                        IpAddr::V6(_) => None,
                    })
                    .collect(),
            })
        })
        .collect()
}

/// What the generator counted (written by its thread, read by the report).
pub struct GeneratorStats {
    pub sent: AtomicU64,
    /// Frames the wire refused (counted, not retried).
    pub send_failed: AtomicU64,
    /// Frames forwarded to a backend, per backend (services in order, backends in order).
    pub per_backend: Vec<AtomicU64>,
    pub arp_answered: AtomicU64,
    /// Forwarded frames whose outer destination is no backend, or whose inner packet is wrong.
    pub misrouted: AtomicU64,
    /// Flows whose packets reached more than one backend (must stay 0).
    pub split_flows: AtomicU64,
    pub flows_started: AtomicU64,
}

impl GeneratorStats {
    pub fn new(services: &[DemoService]) -> Self {
        let n = services.iter().map(|s| s.backends.len()).sum();
        GeneratorStats {
            sent: AtomicU64::new(0),
            send_failed: AtomicU64::new(0),
            per_backend: (0..n).map(|_| AtomicU64::new(0)).collect(),
            arp_answered: AtomicU64::new(0),
            misrouted: AtomicU64::new(0),
            split_flows: AtomicU64::new(0),
            flows_started: AtomicU64::new(0),
        }
    }
}

#[derive(Clone, Copy)]
struct Flow {
    service: u8,
    /// The flow's number in its packets' stamp: what the sink tells flows apart by.
    id: u32,
    client: [u8; 4],
    sport: u16,
    sent: u16,
    lifetime: u16,
}

/// A small deterministic PRNG (xorshift64*): the demo's traffic is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

pub struct Generator {
    thread: JoinHandle<()>,
}

impl Generator {
    pub fn start(
        app: &Appliance,
        services: Vec<DemoService>,
        stats: Arc<GeneratorStats>,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, String> {
        let eal = app.eal().clone();
        let pool = Mempool::with_default_buffers(&eal, "demo_gen_pool", 8191)
            .map_err(|e| e.to_string())?;
        let port = Port::builder(&eal, "net_ring_gen0", &pool)
            .queues(2, 1)
            .start()
            .map_err(|e| e.to_string())?;
        let mut rx = [
            port.rx_queue(0).map_err(|e| e.to_string())?,
            port.rx_queue(1).map_err(|e| e.to_string())?,
        ];
        let mut tx = port.tx_queue(0).map_err(|e| e.to_string())?;
        let dst_mac = *app.port_macs().first().ok_or("the appliance has no port")?;
        let shared = Arc::clone(app.shared());
        let cpu = dataplane::runtime::pinning::control_cpu(&eal);
        let thread = std::thread::Builder::new()
            .name("demo-generator".into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    dataplane::runtime::pinning::pin_current_thread(cpu);
                }
                let _keep = (&port, &pool);
                let mut g = Gen::new(services, stats, dst_mac);
                for i in 0..FLOWS {
                    let f = g.new_flow(i);
                    g.flows.push(f);
                }
                let mut out = Burst::<32>::new();
                let mut inb = Burst::<32>::new();
                let mut replies = Burst::<32>::new();
                // First let the appliance resolve every backend (we answer its ARP requests),
                // so no packet is sent to a next hop it cannot reach yet; at most two seconds.
                let backends = g
                    .services
                    .iter()
                    .map(|s| s.backends.len() as u64)
                    .sum::<u64>();
                let resolve_until = Instant::now() + Duration::from_secs(2);
                while (g.stats.arp_answered.load(Ordering::Relaxed) < backends
                    || !shared.next_hops_resolved())
                    && Instant::now() < resolve_until
                    && !stop.load(Ordering::Relaxed)
                {
                    for q in &mut rx {
                        q.rx_burst(&mut inb);
                        for mut m in inb.drain() {
                            if g.sink(&mut m) {
                                let _ = replies.push(m);
                            }
                        }
                    }
                    tx.tx_burst(&mut replies);
                    replies.clear();
                    std::thread::yield_now();
                }
                // Workers take the published snapshot at their next burst; give them a moment.
                std::thread::sleep(Duration::from_millis(10));
                let start = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let due = (start.elapsed().as_nanos() as u64).saturating_mul(TARGET_PPS)
                        / 1_000_000_000;
                    let sent = g.stats.sent.load(Ordering::Relaxed)
                        + g.stats.send_failed.load(Ordering::Relaxed);
                    if sent < due {
                        let n = (due - sent).min(32) as usize;
                        for _ in 0..n {
                            let Ok(mut m) = pool.alloc() else { break };
                            if g.next_packet(&mut m) {
                                let _ = out.push(m);
                            }
                        }
                        let pushed = out.len() as u64;
                        let ok = tx.tx_burst(&mut out) as u64;
                        let failed = out.clear() as u64;
                        debug_assert_eq!(pushed, ok + failed);
                        g.stats.sent.fetch_add(ok, Ordering::Relaxed);
                        g.stats.send_failed.fetch_add(failed, Ordering::Relaxed);
                    }
                    let mut got = 0;
                    for q in &mut rx {
                        got += q.rx_burst(&mut inb);
                        for mut m in inb.drain() {
                            if g.sink(&mut m) {
                                let _ = replies.push(m);
                            }
                        }
                    }
                    if !replies.is_empty() {
                        tx.tx_burst(&mut replies);
                        replies.clear();
                    }
                    if got == 0 && sent >= due {
                        std::thread::yield_now();
                    }
                }
                // Collect what is still in flight for a moment, so the summary adds up.
                let until = Instant::now() + Duration::from_millis(20);
                while Instant::now() < until {
                    for q in &mut rx {
                        q.rx_burst(&mut inb);
                        for mut m in inb.drain() {
                            g.sink(&mut m);
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Generator { thread })
    }

    pub fn join(self) {
        let _ = self.thread.join();
    }
}

struct Gen {
    services: Vec<DemoService>,
    /// One frame template per service (its VIP, port and protocol).
    templates: Vec<Template>,
    stats: Arc<GeneratorStats>,
    rng: Rng,
    flows: Vec<Flow>,
    next_flow: usize,
    /// The stamp number the next new flow gets.
    next_id: u32,
    /// The backend each live flow reached first, by its stamp number.
    seen: HashMap<u32, usize>,
}

impl Gen {
    fn new(services: Vec<DemoService>, stats: Arc<GeneratorStats>, dst_mac: [u8; 6]) -> Self {
        let templates = services
            .iter()
            .map(|s| {
                let l4 = if s.tcp { L4::TcpAck } else { L4::Udp };
                let target = Target {
                    vip: IpAddr::V4(s.vip),
                    port: s.port,
                };
                // The smallest frame that holds the headers and the stamp.
                Template::new(target, l4, 0, GEN_MAC, dst_mac)
            })
            .collect();
        Gen {
            services,
            templates,
            stats,
            rng: Rng(0x5eed_1234_abcd_0001),
            flows: Vec::with_capacity(FLOWS),
            next_flow: 0,
            next_id: 0,
            seen: HashMap::with_capacity(FLOWS * 2),
        }
    }

    fn new_flow(&mut self, i: usize) -> Flow {
        let r = self.rng.next();
        // Three flows in five are TCP (to the first service), the rest UDP.
        let service = if self.services.len() > 1 && r % 5 >= 3 {
            1
        } else {
            0
        };
        self.stats.flows_started.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id;
        self.next_id = (self.next_id + 1) % STAMP_FLOWS;
        Flow {
            service,
            id,
            client: [203, 0, 113, 1 + ((i as u64 + (r >> 8)) % 250) as u8],
            sport: 1024 + ((r >> 16) % 60000) as u16,
            sent: 0,
            lifetime: 8 + ((r >> 40) % 56) as u16,
        }
    }

    /// Writes the next packet of the next flow into the empty mbuf `m`; false if it did not fit.
    fn next_packet(&mut self, m: &mut dataplane::dpdk::Mbuf) -> bool {
        let i = self.next_flow;
        self.next_flow = (self.next_flow + 1) % self.flows.len();
        if self.flows[i].sent >= self.flows[i].lifetime {
            self.seen.remove(&self.flows[i].id);
            self.flows[i] = self.new_flow(i);
        }
        let f = &mut self.flows[i];
        f.sent += 1;
        let Some(t) = self.templates.get(usize::from(f.service)) else {
            return false;
        };
        // TCP flows open with a SYN and close with a FIN, as a connection would.
        let tcp_flags = if f.sent == 1 {
            tcp::SYN
        } else if f.sent == f.lifetime {
            tcp::FIN | tcp::ACK
        } else {
            tcp::ACK
        };
        let p = Packet {
            client: Client::V4(f.client),
            sport: f.sport,
            ident: 0,
            seq: u32::from(f.sent),
            tcp_flags,
            flow: f.id,
            tsc: 0,
        };
        m.append(t.frame_len())
            .is_ok_and(|out| t.write_packet(out, &p))
    }

    /// Consumes one frame from the appliance; true when it was turned into a reply to send.
    fn sink(&mut self, m: &mut dataplane::dpdk::Mbuf) -> bool {
        match traffic::parse(m.data()) {
            Received::ArpRequest { target } => self.answer_arp(m, target),
            Received::Ours(r) => {
                self.count_forwarded(r);
                false
            }
            Received::Arp => false,
            Received::Other => {
                self.stats.misrouted.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Answers an ARP request for a backend as that backend would.
    fn answer_arp(&mut self, m: &mut dataplane::dpdk::Mbuf, target: [u8; 4]) -> bool {
        let known = self
            .services
            .iter()
            .flat_map(|s| s.backends.iter())
            .any(|(a, _)| a.octets() == target);
        if !known || !arp::reply_in_place(m.data_mut(), arp::mac_for(target)) {
            return false;
        }
        self.stats.arp_answered.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Counts a forwarded packet for the backend its outer header (IPIP or GUE) names, if that
    /// is a backend of the service its inner packet went to.
    fn count_forwarded(&mut self, r: Returned) {
        let (BackendKey::Ip(IpAddr::V4(outer_dst)), IpAddr::V4(vip)) = (r.backend, r.inner_dst)
        else {
            self.stats.misrouted.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut global = 0usize;
        for s in &self.services {
            if s.vip == vip {
                if let Some(b) = s.backends.iter().position(|(a, _)| *a == outer_dst) {
                    self.stats.per_backend[global + b].fetch_add(1, Ordering::Relaxed);
                    let first = *self.seen.entry(r.flow).or_insert(global + b);
                    if first != global + b {
                        self.stats.split_flows.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            }
            global += s.backends.len();
        }
        self.stats.misrouted.fetch_add(1, Ordering::Relaxed);
    }
}

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
