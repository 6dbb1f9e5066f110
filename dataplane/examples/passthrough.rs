//! Pass-through forwarder on the safe wrappers (like DPDK's basicfwd): every packet received
//! on the rx device leaves unchanged on the tx device, one worker per rx queue.
//!
//! usage: passthrough EAL-ARGS... -- --rx DEV [--tx DEV] [--queues Q] [--count N]
//!        [--idle-exit-ms MS] [--mbufs M]
//! Stops on SIGINT/SIGTERM, after N packets were received and handled (--count), or after
//! MS milliseconds without a new packet once traffic started (--idle-exit-ms). Prints
//! `passthrough: rx=.. tx=.. dropped=..` and exits 0 when every mbuf is back in its pool.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use dataplane::dpdk::{Burst, Eal, Mempool, Port};
use dataplane::runtime::{self, pinning, signals, WorkerContext};

struct Options {
    rx: String,
    tx: Option<String>,
    queues: u16,
    count: Option<u64>,
    idle_exit: Option<Duration>,
    mbufs: u32,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        rx: String::new(),
        tx: None,
        queues: 1,
        count: None,
        idle_exit: None,
        mbufs: 8191,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v:?}: {e}"));
        match flag.as_str() {
            "--rx" => o.rx = value()?,
            "--tx" => o.tx = Some(value()?),
            "--queues" => o.queues = num(value()?)?.try_into().map_err(|_| "--queues too big")?,
            "--count" => o.count = Some(num(value()?)?),
            "--idle-exit-ms" => o.idle_exit = Some(Duration::from_millis(num(value()?)?)),
            "--mbufs" => o.mbufs = num(value()?)?.try_into().map_err(|_| "--mbufs too big")?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if o.rx.is_empty() {
        return Err("--rx DEV is required".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let (eal_args, app_args) = (&args[..split], args.get(split + 1..).unwrap_or(&[]));
    match parse(app_args).and_then(|o| run(eal_args, &o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("passthrough: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(eal_args: &[String], o: &Options) -> Result<(), String> {
    signals::install().map_err(|e| format!("signal handlers: {e}"))?;
    let eal = Eal::init(eal_args).map_err(|e| e.to_string())?;
    let pool =
        Mempool::with_default_buffers(&eal, "passthrough", o.mbufs).map_err(|e| e.to_string())?;
    let start = |dev: &str| {
        Port::builder(&eal, dev, &pool)
            .queues(o.queues, o.queues)
            .start()
            .map_err(|e| format!("{dev}: {e}"))
    };
    let rx_port = start(&o.rx)?;
    let tx_port = match &o.tx {
        Some(dev) if dev != &o.rx => start(dev)?,
        _ => rx_port.clone(),
    };
    let mut queues = Vec::new();
    for q in 0..o.queues {
        let rx = rx_port.rx_queue(q).map_err(|e| e.to_string())?;
        let tx = tx_port.tx_queue(q).map_err(|e| e.to_string())?;
        queues.push((rx, tx));
    }
    let workers = runtime::launch(&eal, queues, |mut ctx: WorkerContext| {
        runtime::run_loop::<32>(&mut ctx, |_burst: &mut Burst<32>| {});
    })
    .map_err(|e| e.to_string())?;
    eprintln!(
        "passthrough: {} -> {}, {} worker(s) on lcores {:?}, control on cpu {:?}",
        rx_port.name(),
        tx_port.name(),
        workers.lcores().len(),
        workers.lcores(),
        pinning::control_cpu(&eal)
    );

    let counters = workers.counters().clone();
    let mut last = counters.total();
    let mut last_change = Instant::now();
    while !signals::stop_requested() {
        std::thread::sleep(Duration::from_millis(10));
        let now = counters.total();
        if now != last {
            last = now;
            last_change = Instant::now();
        }
        let handled = now.tx + now.dropped;
        if o.count.is_some_and(|n| now.rx >= n && handled >= now.rx) {
            break;
        }
        if o.idle_exit
            .is_some_and(|d| now.rx > 0 && last_change.elapsed() >= d)
        {
            break;
        }
    }
    let failed = workers.join();
    let total = counters.total();
    let (rx_stats, tx_stats) = (rx_port.stats(), tx_port.stats());
    // Stop and close the ports (flushing e.g. a tx_pcap file) before checking the pool.
    drop((rx_port, tx_port));
    println!(
        "passthrough: rx={} tx={} dropped={}",
        total.rx, total.tx, total.dropped
    );
    eprintln!("passthrough: port stats rx {rx_stats:?} tx {tx_stats:?}");
    if failed != 0 {
        return Err(format!("{failed} worker(s) failed"));
    }
    if pool.in_use() != 0 {
        return Err(format!("{} mbufs not returned to the pool", pool.in_use()));
    }
    Ok(())
}
