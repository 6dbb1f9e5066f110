//! sluice-gen: a DPDK traffic generator for sluice's tests and benchmarks. It sends many flows
//! to the VIPs, receives what the load balancer forwards, and prints one JSON result: rates,
//! one-way latency (TSC stamped in each packet), packets per backend and flow affinity.
//!
//! usage: sluice-gen EAL-ARGS... -- --port DEV --vip ADDR [options]   (see --help)

mod stats;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use dataplane::dpdk::{Burst, Eal, Mempool, Port, RxQueue, TxQueue};
use dataplane::runtime::signals;
use serde_json::json;

use stats::{Affinity, Backends, Histogram};
use traffic::flow::{MAX_V4_CLIENTS, PORTS_PER_CLIENT};
use traffic::stamp::{self, STAMP_FLOWS};
use traffic::{arp, BackendKey, Received, Target, Template, L4};

const BURST: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// TCP ACK packets: established flows, each flow sent round-robin.
    Ack,
    /// TCP SYN, every packet a new 5-tuple (all flow-table misses).
    Syn,
    /// UDP datagrams, each flow sent round-robin.
    Udp,
}

#[derive(Debug, Parser)]
#[command(
    name = "sluice-gen",
    about = "DPDK traffic generator for sluice (EAL args before --)"
)]
struct Options {
    /// Device to send on (and receive on unless --rx-port).
    #[arg(long)]
    port: String,
    /// Device to receive on, if not --port.
    #[arg(long)]
    rx_port: Option<String>,
    /// Target VIP; repeat for several (IPv4 and IPv6 may be mixed; flow i goes to VIP i % n).
    #[arg(long = "vip", required = true)]
    vips: Vec<IpAddr>,
    /// Destination port.
    #[arg(long, default_value_t = 80)]
    dport: u16,
    #[arg(long, value_enum, default_value_t = Mode::Ack)]
    mode: Mode,
    /// Distinct flows (ack, udp); syn mode uses a new 5-tuple per packet.
    #[arg(long, default_value_t = 1024)]
    flows: u32,
    /// Frame size in bytes without FCS (raised to what the headers and stamp need).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Packets per second (TSC-paced); 0 = as fast as the port takes them.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Stop sending after this many seconds.
    #[arg(long)]
    seconds: Option<f64>,
    /// Stop sending after this many packets (measured phase).
    #[arg(long)]
    count: Option<u64>,
    /// Before measuring, send every flow once at --prewarm-rate (fills the flow tables).
    #[arg(long)]
    prewarm: bool,
    #[arg(long, default_value_t = 500_000)]
    prewarm_rate: u64,
    /// Before measuring (after the prewarm), print "sluice-gen: ready" and keep receiving until
    /// FILE exists (at most 60 s): run.sh reads the forwarder's counters in between, so that
    /// scrape does not run during the measured phase.
    #[arg(long)]
    wait_for: Option<std::path::PathBuf>,
    /// After sending, keep receiving this long (or until everything came back).
    #[arg(long, default_value_t = 500)]
    drain_ms: u64,
    /// Give up if the link is not up within this many seconds.
    #[arg(long, default_value_t = 30)]
    link_timeout: u64,
    #[arg(long, default_value = "02:00:00:00:00:01", value_parser = parse_mac)]
    src_mac: [u8; 6],
    #[arg(long, default_value = "02:00:00:00:00:02", value_parser = parse_mac)]
    dst_mac: [u8; 6],
    /// A backend (IP, or MAC for l2-dsr) flows may move away from; repeat for several.
    #[arg(long = "allow-moves-from", value_parser = parse_backend)]
    allow_moves_from: Vec<BackendKey>,
    /// Write "flow first last" for every flow seen to FILE.
    #[arg(long)]
    dump_flows: Option<std::path::PathBuf>,
    /// Answer ARP requests for any IPv4 address with 02:00:<address> (l2-dsr backends).
    #[arg(long)]
    arp_reply: bool,
    /// After printing the result, keep the ports open until SIGINT/SIGTERM (so the other end
    /// can be read and stopped first: DPDK 22.11's memif peers may crash on a disconnect).
    #[arg(long)]
    hold: bool,
    /// Receive queues to open and poll. A memif server needs exactly as many as its client has
    /// tx queues (sluice: one per worker plus one for control; testpmd: 1): fewer and the
    /// client is refused, more and DPDK 22.11's server reads unconnected rings (duplicates).
    #[arg(long, default_value_t = 1)]
    rx_queues: u16,
    /// Transmit queues to send on (a memif server: its client's rx queues, one per sluice
    /// worker). Flow f always leaves on queue f % N, so each flow reaches one worker.
    #[arg(long, default_value_t = 1)]
    tx_queues: u16,
    /// Mbufs in the generator's pool.
    #[arg(long, default_value_t = 16383)]
    mbufs: u32,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("{s:?}: want six hex bytes separated by ':'"));
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|e| format!("{s:?}: {e}"))?;
    }
    Ok(mac)
}

fn parse_backend(s: &str) -> Result<BackendKey, String> {
    match s.parse::<IpAddr>() {
        Ok(ip) => Ok(BackendKey::Ip(ip)),
        Err(_) => parse_mac(s).map(BackendKey::Mac),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let eal_args = args.get(1..split).unwrap_or(&[]).to_vec();
    let app = std::iter::once(args[0].clone())
        .chain(args.get(split + 1..).unwrap_or(&[]).iter().cloned());
    let o = Options::parse_from(app);
    match run(&eal_args, &o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-gen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn rdtsc() -> u64 {
    // SAFETY: rte_rdtsc only reads the time-stamp counter.
    unsafe { dpdk_sys::rte_rdtsc() }
}

fn tsc_hz() -> u64 {
    // SAFETY: rte_get_tsc_hz reads a value EAL measured at init.
    unsafe { dpdk_sys::rte_get_tsc_hz() }.max(1)
}

/// Flow numbers syn mode cycles through before a 5-tuple repeats (IPv4 client space).
const SYN_SPACE: u32 = MAX_V4_CLIENTS * PORTS_PER_CLIENT;

/// Everything the receive side keeps.
struct Rx {
    backends: Backends,
    affinity: Affinity,
    latency: Histogram,
    /// Packets of the measured phase back, and of the prewarm.
    received: u64,
    prewarm_received: u64,
    other: u64,
    arp_replies: u64,
    first_rx_tsc: u64,
    last_rx_tsc: u64,
    last_key: Option<(BackendKey, u16)>,
}

/// Flow numbers below `flows` that transmit queue `q` of `n` carries (those with f % n == q).
fn flows_on(q: usize, n: usize, flows: u64) -> u64 {
    (flows + (n - 1 - q) as u64) / n as u64
}

struct Gen<'a> {
    o: &'a Options,
    pool: Mempool,
    tx: Vec<TxQueue>,
    /// Per transmit queue, packets sent on it so far: its position in its share of the flows.
    cursor: Vec<u64>,
    /// The transmit queue the next burst goes to (bursts take the queues in turn).
    turn: usize,
    rx: Vec<RxQueue>,
    /// Packets received per receive queue (prewarm and everything else included).
    rx_per_queue: Vec<u64>,
    templates: Vec<Template>,
    hz: u64,
    /// Packets the port took, and offers it refused (freed and offered again: backpressure).
    sent: u64,
    refused: u64,
    alloc_failed: u64,
    state: Rx,
    /// TSC at which the measured phase began (packets stamped before it are prewarm).
    measure_start: u64,
}

impl Gen<'_> {
    /// Sends up to `n` packets on the next transmit queue in turn, of that queue's flows in
    /// order (with one queue: consecutive flow numbers); counts them in `next`; returns how many
    /// left. `once`: each queue sends each of its flows at most once (the prewarm).
    fn send(&mut self, next: &mut u64, n: usize, flows: u64, once: bool) -> Result<usize, String> {
        let nq = self.tx.len();
        let Some((q, left)) = (0..nq).find_map(|i| {
            let q = (self.turn + i) % nq;
            let per = flows_on(q, nq, flows);
            let left = if once {
                per.saturating_sub(self.cursor[q])
            } else if per > 0 {
                u64::MAX
            } else {
                0
            };
            (left > 0).then_some((q, left))
        }) else {
            return Ok(0);
        };
        self.turn = (q + 1) % nq;
        let per = flows_on(q, nq, flows);
        let mut burst = Burst::<BURST>::new();
        let now = rdtsc();
        for _ in 0..(n.min(BURST) as u64).min(left) {
            let flow = (q as u64 + nq as u64 * (self.cursor[q] % per)) as u32;
            let t = &self.templates[flow as usize % self.templates.len()];
            // An empty pool (mbufs parked in rings) just means a shorter burst this time.
            let Ok(mut m) = self.pool.alloc() else {
                self.alloc_failed += 1;
                break;
            };
            let buf = m.append(t.frame_len()).map_err(|e| e.to_string())?;
            let written = t.write(buf, flow, now);
            debug_assert!(written, "appended exactly frame_len() bytes");
            if burst.push(m).is_err() {
                break;
            }
            self.cursor[q] += 1;
            *next += 1;
        }
        let want = burst.len();
        let sent = self.tx[q].tx_burst(&mut burst);
        // The port is full: free the refused tail and offer those flows again next time.
        let refused = burst.clear();
        self.cursor[q] -= refused as u64;
        *next -= refused as u64;
        self.refused += refused as u64;
        debug_assert_eq!(want, sent + refused);
        self.sent += sent as u64;
        Ok(sent)
    }

    /// Receives one burst from each queue and accounts for it.
    fn receive(&mut self) -> usize {
        let mut n = 0;
        for q in 0..self.rx.len() {
            n += self.receive_queue(q);
        }
        n
    }

    fn receive_queue(&mut self, q: usize) -> usize {
        let mut burst = Burst::<BURST>::new();
        let n = self.rx[q].rx_burst(&mut burst);
        if n == 0 {
            return 0;
        }
        self.rx_per_queue[q] += n as u64;
        let now = rdtsc();
        let mut replies = Burst::<BURST>::new();
        for mut m in burst.drain() {
            match traffic::parse(m.data()) {
                Received::Ours(r) => {
                    let s = &mut self.state;
                    let id = match s.last_key {
                        Some((k, id)) if k == r.backend => id,
                        _ => {
                            let id = s.backends.id(r.backend);
                            s.last_key = Some((r.backend, id));
                            id
                        }
                    };
                    if let Some(c) = s.backends.packets.get_mut(usize::from(id) - 1) {
                        *c += 1;
                    }
                    s.affinity.see(r.flow, id, &s.backends);
                    let sent = stamp::full_tsc(now, r.tsc);
                    if sent >= self.measure_start {
                        s.received += 1;
                        s.latency.record(
                            now.saturating_sub(sent).saturating_mul(1_000_000_000) / self.hz,
                        );
                        if s.first_rx_tsc == 0 {
                            s.first_rx_tsc = now;
                        }
                        s.last_rx_tsc = now;
                    } else {
                        s.prewarm_received += 1;
                    }
                }
                Received::ArpRequest { target } if self.o.arp_reply => {
                    if arp::reply_in_place(m.data_mut(), arp::mac_for(target))
                        && replies.push(m).is_ok()
                    {
                        self.state.arp_replies += 1;
                    }
                }
                _ => self.state.other += 1,
            }
        }
        if !replies.is_empty() {
            self.tx[0].tx_burst(&mut replies);
        }
        n
    }

    /// Sends `flows` flow numbers from `next` at `rate` pps (0 = max) until `until` says stop,
    /// and never more than `most` packets in all (a last burst is cut short, not overshot);
    /// `once` as for [`Gen::send`].
    fn stream(
        &mut self,
        next: &mut u64,
        (flows, once): (u64, bool),
        rate: u64,
        most: u64,
        mut until: impl FnMut(u64, u64) -> bool,
    ) -> Result<(), String> {
        let start = rdtsc();
        let first = *next;
        loop {
            let now = rdtsc();
            let done = *next - first;
            if signals::stop_requested() || done >= most || until(now - start, done) {
                return Ok(());
            }
            let room = if rate == 0 {
                BURST as u64
            } else {
                let due = u128::from(now - start) * u128::from(rate) / u128::from(self.hz);
                (due as u64).saturating_sub(done).min(BURST as u64)
            }
            .min(most - done);
            if room > 0 {
                self.send(next, room as usize, flows, once)?;
            }
            self.receive();
        }
    }

    /// Receives until `expected` measured packets are back or `quiet` passes without any.
    fn drain(&mut self, quiet: Duration, expected: impl Fn(&Rx) -> bool) {
        let mut last = Instant::now();
        while last.elapsed() < quiet && !expected(&self.state) {
            if self.receive() > 0 {
                last = Instant::now();
            }
        }
    }
}

fn run(eal_args: &[String], o: &Options) -> Result<(), String> {
    if o.flows == 0 {
        return Err("--flows must be at least 1".into());
    }
    if o.flows > SYN_SPACE {
        return Err(format!("--flows at most {SYN_SPACE}"));
    }
    // Returned packets are attributed to flows by the stamp's 24-bit flow number.
    if o.mode != Mode::Syn && o.flows > STAMP_FLOWS {
        return Err(format!(
            "--flows at most {} outside syn mode (the stamp's flow number)",
            STAMP_FLOWS
        ));
    }
    if o.tx_queues == 0 || o.rx_queues == 0 {
        return Err("--rx-queues and --tx-queues must be at least 1".into());
    }
    signals::install().map_err(|e| format!("signal handlers: {e}"))?;
    let eal = Eal::init(eal_args).map_err(|e| e.to_string())?;
    let pool =
        Mempool::with_default_buffers(&eal, "sluice_gen", o.mbufs).map_err(|e| e.to_string())?;
    let open = |dev: &str| {
        Port::builder(&eal, dev, &pool)
            .queues(o.rx_queues, o.tx_queues)
            .descriptors(1024, 1024)
            .start()
            .map_err(|e| format!("{dev}: {e}"))
    };
    let tx_port = open(&o.port)?;
    let rx_port = match &o.rx_port {
        Some(dev) if dev != &o.port => open(dev)?,
        _ => tx_port.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(o.link_timeout);
    for p in [&tx_port, &rx_port] {
        while !p.link().map(|l| l.up).unwrap_or(false) {
            if signals::stop_requested() {
                return Err(format!("{}: stopped before the link came up", p.name()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{}: link not up after {} s",
                    p.name(),
                    o.link_timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let l4 = match o.mode {
        Mode::Ack => L4::TcpAck,
        Mode::Syn => L4::TcpSyn,
        Mode::Udp => L4::Udp,
    };
    let templates: Vec<Template> = o
        .vips
        .iter()
        .map(|vip| {
            Template::new(
                Target {
                    vip: *vip,
                    port: o.dport,
                },
                l4,
                o.size,
                o.src_mac,
                o.dst_mac,
            )
        })
        .collect();
    let tracked = if o.mode == Mode::Syn { 0 } else { o.flows };
    let hz = tsc_hz();
    let mut g = Gen {
        o,
        pool: pool.clone(),
        tx: (0..tx_port.tx_queue_count())
            .map(|q| tx_port.tx_queue(q).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
        cursor: vec![0; usize::from(tx_port.tx_queue_count())],
        turn: 0,
        rx: (0..rx_port.rx_queue_count())
            .map(|q| rx_port.rx_queue(q).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
        rx_per_queue: vec![0; usize::from(rx_port.rx_queue_count())],
        templates,
        hz,
        sent: 0,
        refused: 0,
        alloc_failed: 0,
        state: Rx {
            backends: Backends::default(),
            affinity: Affinity::new(
                tracked,
                o.allow_moves_from.iter().copied().collect::<BTreeSet<_>>(),
            ),
            latency: Histogram::default(),
            received: 0,
            prewarm_received: 0,
            other: 0,
            arp_replies: 0,
            first_rx_tsc: 0,
            last_rx_tsc: 0,
            last_key: None,
        },
        // Until the measured phase starts, everything that comes back is prewarm.
        measure_start: u64::MAX,
    };
    eprintln!(
        "sluice-gen: link up on {}, tsc {} Hz, sending",
        tx_port.name(),
        hz
    );

    let mut next = 0u64;
    let mut prewarm_sent = 0;
    if o.prewarm {
        let flows = u64::from(o.flows);
        g.stream(&mut next, (flows, true), o.prewarm_rate, flows, |_, _| {
            false
        })?;
        prewarm_sent = g.sent;
        g.drain(Duration::from_millis(o.drain_ms), |s| {
            s.prewarm_received >= prewarm_sent
        });
    }
    let flows = if o.mode == Mode::Syn {
        u64::from(SYN_SPACE)
    } else {
        u64::from(o.flows)
    };
    if let Some(file) = &o.wait_for {
        eprintln!("sluice-gen: ready");
        let since = Instant::now();
        while !file.exists() {
            if since.elapsed() > Duration::from_secs(60) {
                return Err(format!("{} did not appear within 60 s", file.display()));
            }
            g.drain(Duration::from_millis(20), |_| false);
        }
    }
    // The measured phase: everything stamped from here on counts.
    eprintln!("sluice-gen: measuring");
    g.measure_start = rdtsc();
    let sent_before = g.sent;
    let started = Instant::now();
    let limit_tsc = o.seconds.map(|s| (s * hz as f64) as u64);
    let most = o.count.unwrap_or(u64::MAX);
    g.stream(&mut next, (flows, false), o.rate, most, |elapsed, _| {
        limit_tsc.is_some_and(|l| elapsed >= l)
    })?;
    let duration = started.elapsed().as_secs_f64();
    let sent = g.sent - sent_before;
    g.drain(Duration::from_millis(o.drain_ms), |s| s.received >= sent);

    let s = &g.state;
    let rx_span = s.last_rx_tsc.saturating_sub(s.first_rx_tsc) as f64 / hz as f64;
    let q = |x| s.latency.quantile(x);
    let mut result = json!({
        "mode": format!("{:?}", o.mode).to_lowercase(),
        "frame_size": g.templates.iter().map(Template::frame_len).max(),
        "vips": o.vips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "flows": if o.mode == Mode::Syn { serde_json::Value::Null } else { o.flows.into() },
        "rate_asked_pps": o.rate,
        "sent": sent,
        "received": s.received,
        "lost": sent.saturating_sub(s.received),
        "tx_refused": g.refused,
        "alloc_failed": g.alloc_failed,
        "rx_other": s.other,
        "arp_replies": s.arp_replies,
        "duration_s": duration,
        "tx_pps": sent as f64 / duration.max(1e-9),
        "rx_pps": s.received as f64 / duration.max(1e-9),
        "rx_span_pps": if rx_span > 0.0 { s.received as f64 / rx_span } else { 0.0 },
        "latency_ns": {
            "count": s.latency.count(),
            "p50": q(0.5), "p99": q(0.99), "p99.9": q(0.999),
            "max": if s.latency.count() > 0 { Some(s.latency.max()) } else { None },
        },
        "per_backend": s.backends.per_backend(),
        "tx_queues": g.tx.len(),
        "rx_per_queue": g.rx_per_queue,
        "prewarm": { "sent": prewarm_sent, "received": s.prewarm_received },
    });
    if tracked > 0 {
        result["flows_seen"] = s.affinity.flows_seen.into();
        result["flows_moved"] = s.affinity.flows_moved.into();
        result["moves"] = s.affinity.moves.into();
        result["moves_disallowed"] = s.affinity.moves_disallowed.into();
        result["disallowed_examples"] = s
            .affinity
            .disallowed_examples
            .iter()
            .map(|(f, a, b)| json!([f, a.to_string(), b.to_string()]))
            .collect::<Vec<_>>()
            .into();
    }
    if let Some(path) = &o.dump_flows {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
        );
        for (flow, first, last) in s.affinity.dump(&s.backends) {
            writeln!(out, "{flow} {first} {last}")
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        out.flush()
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!("{result}");
    std::io::stdout()
        .flush()
        .map_err(|e| format!("stdout: {e}"))?;
    while o.hold && !signals::stop_requested() {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(g);
    drop((tx_port, rx_port));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::flows_on;

    /// The queues' shares of the flows partition them, whatever the count.
    #[test]
    fn queues_share_the_flows() {
        for n in 1..5 {
            for flows in 0..20u64 {
                let total: u64 = (0..n).map(|q| flows_on(q, n, flows)).sum();
                assert_eq!(total, flows, "{flows} flows on {n} queues");
                for q in 0..n {
                    let want = (0..flows).filter(|f| *f as usize % n == q).count() as u64;
                    assert_eq!(flows_on(q, n, flows), want);
                }
            }
        }
    }
}
