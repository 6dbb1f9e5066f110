//! The demo's traffic generator and sink (the report of what they counted is `report`).
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
