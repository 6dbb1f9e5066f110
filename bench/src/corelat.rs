//! sluice-corelat: how long a cache line takes to go from one CPU to another and back, the
//! cost memif pays for every ring update and packet copy between the generator's and the
//! forwarder's cores. On a VM it tells where the hypervisor put the two vCPUs right now: on
//! sibling hyperthreads or one core complex (a round trip of ~100 ns here) or apart (~500 ns),
//! which moves every memif figure by 2x. A diagnostic, run by hand (bench/RESULTS.md, "Where
//! the gaps are"); a probe before and after each bench run did not predict that run.
//!
//! usage: sluice-corelat [--cpus A,B] [--round-trips N] [--samples K]
//! prints {"cpus":[A,B],"round_trips":N,"round_trip_ns":{"min":..,"median":..,"max":..}}

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use clap::Parser;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "sluice-corelat",
    about = "cache-line round trip between two CPUs (ns)"
)]
struct Args {
    /// The two CPUs, as "A,B".
    #[arg(long, default_value = "0,1", value_parser = parse_cpus)]
    cpus: (usize, usize),
    /// Round trips per sample.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    round_trips: u64,
    /// Samples (min, median and max are over these).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    samples: u64,
}

fn parse_cpus(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s.split_once(',').ok_or("expected A,B")?;
    let cpu = |x: &str| x.trim().parse::<usize>().map_err(|e| format!("{x}: {e}"));
    let (a, b) = (cpu(a)?, cpu(b)?);
    if a == b || a >= libc::CPU_SETSIZE as usize || b >= libc::CPU_SETSIZE as usize {
        return Err(format!("two different CPUs below {}", libc::CPU_SETSIZE));
    }
    Ok((a, b))
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data (all-zero is the empty set); CPU_SET is given a CPU below
    // CPU_SETSIZE (checked by parse_cpus), and sched_setaffinity reads the set we own.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(format!(
            "cannot pin to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// One cache line, alone on it, so the two threads share nothing else.
#[repr(align(128))]
struct Line(AtomicU64);

/// `n` round trips of the counter from `first` on, between this thread (which writes odd
/// values) and the echo thread (even); ns per round trip.
fn sample(line: &Line, first: u64, n: u64) -> f64 {
    let start = Instant::now();
    for k in first..first + n {
        line.0.store(2 * k + 1, Ordering::Release);
        while line.0.load(Ordering::Acquire) != 2 * k + 2 {
            std::hint::spin_loop();
        }
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn run(a: &Args) -> Result<serde_json::Value, String> {
    pin(a.cpus.0)?;
    let line = Arc::new(Line(AtomicU64::new(0)));
    // One warm-up sample (both threads running, the line placed) that is not kept.
    let total = a.round_trips * (a.samples + 1);
    let (echo_line, cpu_b) = (Arc::clone(&line), a.cpus.1);
    let (pinned_tx, pinned_rx) = mpsc::channel();
    let echo = std::thread::spawn(move || {
        let pinned = pin(cpu_b);
        let ok = pinned.is_ok();
        let _ = pinned_tx.send(pinned);
        if !ok {
            return;
        }
        for k in 0..total {
            while echo_line.0.load(Ordering::Acquire) != 2 * k + 1 {
                std::hint::spin_loop();
            }
            echo_line.0.store(2 * k + 2, Ordering::Release);
        }
    });
    let pinned = pinned_rx
        .recv()
        .map_err(|_| "echo thread ended early".to_string())
        .and_then(|r| r);
    if let Err(e) = pinned {
        let _ = echo.join();
        return Err(e);
    }
    sample(&line, 0, a.round_trips);
    let mut ns: Vec<f64> = (1..=a.samples)
        .map(|s| sample(&line, s * a.round_trips, a.round_trips))
        .collect();
    echo.join()
        .map_err(|_| "echo thread panicked".to_string())?;
    ns.sort_by(f64::total_cmp);
    let r = |x: f64| (x * 10.0).round() / 10.0;
    Ok(json!({
        "cpus": [a.cpus.0, a.cpus.1],
        "round_trips": a.round_trips,
        "round_trip_ns": {
            "min": r(ns[0]),
            "median": r(ns[ns.len() / 2]),
            "max": r(ns[ns.len() - 1]),
        },
    }))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sluice-corelat: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_must_be_two_different_numbers() {
        assert_eq!(parse_cpus("0,1"), Ok((0, 1)));
        assert_eq!(parse_cpus(" 1 , 0 "), Ok((1, 0)));
        assert!(parse_cpus("1,1").is_err());
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("a,1").is_err());
        assert!(parse_cpus("0,100000").is_err());
    }

    #[test]
    fn measures_a_positive_round_trip_between_two_cpus() {
        let args = Args {
            cpus: (0, 1),
            round_trips: 1000,
            samples: 3,
        };
        let v = run(&args).expect("this machine has CPUs 0 and 1");
        let rt = &v["round_trip_ns"];
        let (min, med, max) = (
            rt["min"].as_f64().unwrap(),
            rt["median"].as_f64().unwrap(),
            rt["max"].as_f64().unwrap(),
        );
        assert!(min > 0.0 && min <= med && med <= max, "{v}");
    }

    #[test]
    fn an_unusable_cpu_is_an_error_not_a_hang() {
        let args = Args {
            cpus: (0, libc::CPU_SETSIZE as usize - 1),
            round_trips: 10,
            samples: 1,
        };
        assert!(run(&args).is_err());
    }
}
