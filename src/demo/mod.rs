//! `sluice demo`: the real appliance on a virtual wire, fed by a built-in traffic generator.
//!
//! Two ring-backed ethdevs make the wire: the appliance's port `demo0` receives what the
//! generator's port `gen0` sends and vice versa. The generator sends many TCP and UDP flows to
//! two VIPs, answers the appliance's ARP requests for the backends (so next-hop resolution runs
//! for real), and reads what the appliance forwards to count each backend's share. Everything
//! between the two ports is the production path: workers, pipeline, RCU, control loop.

mod report;
mod traffic;

use std::ffi::CString;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::dpdk::{DpdkError, Eal};
use dataplane::runtime::signals;

use crate::appliance::{Appliance, StartError};
use traffic::{Generator, GeneratorStats};

/// The demo's config: two services (TCP over IPIP, UDP over GUE), several backends each.
const CONFIG: &str = include_str!("demo.yaml");

/// Frames each direction of the virtual wire can hold.
const RING_SIZE: u32 = 4096;

/// Runs the demo for `seconds`, its metrics listener bound to `listen` (the built-in config's
/// `127.0.0.1:0` is what `--listen` defaults to).
pub fn main(seconds: u64, listen: SocketAddr) -> ExitCode {
    let prefix = format!("sluice-demo-{}", std::process::id());
    let text = CONFIG.replace("@PREFIX@", &prefix);
    let mut cfg = match control::config::load_str(&text, "demo.yaml") {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice demo: built-in config is invalid:\n{e}");
            return ExitCode::from(1);
        }
    };
    cfg.metrics.listen = listen;
    if let Err(e) = signals::install() {
        eprintln!("sluice demo: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
    let code = run(cfg, seconds);
    // DPDK 22.11 leaves its runtime directory behind; the demo's prefix is its own.
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    code
}

fn run(cfg: control::config::Config, seconds: u64) -> ExitCode {
    let services = traffic::services_of(&cfg);
    let mut hook = |_: &Eal| make_wire().map_err(StartError::from);
    let mut app = match Appliance::start(cfg, None, Some(&mut hook)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sluice demo: {e}");
            return ExitCode::from(1);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let gen_stats = Arc::new(GeneratorStats::new(&services));
    let generator = match Generator::start(
        &app,
        services.clone(),
        Arc::clone(&gen_stats),
        Arc::clone(&stop),
    ) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("sluice demo: traffic generator: {e}");
            app.shutdown();
            return ExitCode::from(1);
        }
    };
    println!(
        "sluice demo: {} s on a virtual wire; metrics at {} (Ctrl-C stops early)",
        seconds,
        app.metrics_addr()
            .map(|a| format!("http://{a}/metrics"))
            .unwrap_or_default()
    );
    report::print_header(&services);
    let started = Instant::now();
    let mut next_report = started + Duration::from_secs(1);
    let mut last = report::Sample::take(&app, &gen_stats);
    app.run(|app| {
        let now = Instant::now();
        if now >= next_report {
            let s = report::Sample::take(app, &gen_stats);
            report::print_line(now.duration_since(started), &last, &s, &services);
            last = s;
            next_report += Duration::from_secs(1);
        }
        now.duration_since(started) < Duration::from_secs(seconds)
    });
    stop.store(true, Ordering::Relaxed);
    generator.join();
    // Let the last frames in flight drain through the appliance before the summary.
    std::thread::sleep(Duration::from_millis(50));
    let summary = report::Sample::take(&app, &gen_stats);
    let ok = report::print_summary(started.elapsed(), &summary, &app, &services);
    let failed = app.shutdown();
    if ok && failed == 0 && !signals::stop_requested() {
        ExitCode::SUCCESS
    } else if signals::stop_requested() && failed == 0 {
        println!("sluice demo: stopped early");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Creates the two ring-backed ethdevs `net_ring_demo0` (appliance) and `net_ring_gen0`
/// (generator), crossed; DPDK prefixes the names given to rte_eth_from_rings with `net_ring_`.
fn make_wire() -> Result<(), DpdkError> {
    // The appliance has one rx queue (one worker) and two tx queues (the worker's, control's).
    let inbound = ring("demo_in")?;
    let out_worker = ring("demo_out0")?;
    let out_control = ring("demo_out1")?;
    ethdev_from_rings("demo0", &mut [inbound], &mut [out_worker, out_control])?;
    ethdev_from_rings("gen0", &mut [out_worker, out_control], &mut [inbound])?;
    Ok(())
}

fn ring(name: &str) -> Result<*mut dpdk_sys::rte_ring, DpdkError> {
    let cname = CString::new(name).map_err(|_| DpdkError::BadArgument(name.to_owned()))?;
    // SAFETY: EAL is initialised (the hook runs after init); cname is a valid C string. The
    // ring lives until the process exits: the ethdevs built on it never give it back.
    let r = unsafe {
        dpdk_sys::rte_ring_create(
            cname.as_ptr(),
            RING_SIZE,
            0,
            dpdk_sys::RING_F_SP_ENQ | dpdk_sys::RING_F_SC_DEQ,
        )
    };
    if r.is_null() {
        return Err(DpdkError::from_errno("rte_ring_create"));
    }
    Ok(r)
}

fn ethdev_from_rings(
    name: &str,
    rx: &mut [*mut dpdk_sys::rte_ring],
    tx: &mut [*mut dpdk_sys::rte_ring],
) -> Result<(), DpdkError> {
    let cname = CString::new(name).map_err(|_| DpdkError::BadArgument(name.to_owned()))?;
    // SAFETY: every ring is valid and outlives the ethdev; each pointer/length pair describes
    // one of our slices; socket id 0 exists on every machine.
    let rc = unsafe {
        dpdk_sys::rte_eth_from_rings(
            cname.as_ptr(),
            rx.as_mut_ptr(),
            rx.len() as u32,
            tx.as_mut_ptr(),
            tx.len() as u32,
            0,
        )
    };
    if rc < 0 {
        return Err(DpdkError::from_rc("rte_eth_from_rings", rc));
    }
    Ok(())
}
