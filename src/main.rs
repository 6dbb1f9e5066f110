//! sluice: the command line (run, reload, check, plan, maglev, demo, doctor, version).
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod appliance;
mod cmd;
mod demo;
// In the library (with the command line's other readers, for their fuzz target), named here
// so that `crate::doctor` and `crate::sizing` mean what they did.
use sluice::{doctor, sizing};

#[derive(Parser)]
#[command(name = "sluice", about = "Layer-4 load balancer on DPDK", version = env!("SLUICE_VERSION_LONG"))]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance. SIGHUP reloads the config; SIGTERM/SIGINT stop cleanly.
    Run {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Ask the running appliance to reload (POST /-/reload) and report the outcome: exit 0
    /// reloaded, 1 refused (the reason printed) or not allowed, 2 no answer or still running.
    Reload {
        /// The config sluice runs with: its metrics.listen names the control socket (asked
        /// first; it answers root whatever metrics.lifecycle says) and the listener (0.0.0.0 and
        /// :: as loopback). The appliance reloads its own file whatever this names.
        #[arg(short, long, required_unless_present = "url", conflicts_with = "url")]
        config: Option<PathBuf>,
        /// The metrics listener instead, e.g. http://127.0.0.1:9610.
        #[arg(long)]
        url: Option<String>,
        /// Give up after this long (the appliance answers within 10 s, 202 if still running).
        #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
        timeout: f64,
    },
    /// Withdraw every announced VIP of the running appliance (POST /-/drain); existing flows
    /// keep forwarding. --undo ends the drain. Exit 0 done, 1 not allowed, 2 no answer.
    Drain {
        /// The config sluice runs with: its metrics.listen names the control socket (asked
        /// first) and the listener, as for reload.
        #[arg(short, long, required_unless_present = "url", conflicts_with = "url")]
        config: Option<PathBuf>,
        /// The metrics listener instead, e.g. http://127.0.0.1:9610.
        #[arg(long)]
        url: Option<String>,
        /// End the drain: announce the VIPs with a usable backend again.
        #[arg(long)]
        undo: bool,
    },
    /// Validate a config: exit 0 with a summary, or print every error and exit 1.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Show what a new config would move, per service; nothing is applied.
    Plan {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        json: bool,
        /// Exit 1 when any service would move more than this share of its table.
        #[arg(long, value_name = "PERCENT")]
        max_move: Option<f64>,
    },
    /// Build one Maglev table and print its balance.
    Maglev {
        #[arg(long)]
        size: u32,
        /// A backend as NAME or NAME=WEIGHT (WEIGHT 100 if left out, as in the config); repeat for each backend.
        #[arg(long = "backend", value_name = "NAME[=WEIGHT]", required = true)]
        backends: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run the appliance on virtual ports with a built-in traffic generator and live stats.
    Demo {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Where the metrics listener binds, e.g. 0.0.0.0:9610 in a container whose port is
        /// published; the default takes a free port on loopback.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// Check the host for DPDK (hugepages, IOMMU, vfio-pci, device drivers, CPU isolation,
    /// memlock); with a config, its devices and lcores too. Exit 1 if any check fails.
    Doctor {
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Read /proc, /sys and /dev under DIR instead of / (for tests).
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
    },
    /// A live terminal view of a running appliance: rates per service and backend, drops,
    /// flows, worker busy %. `q` quits; `--once` prints one plain frame.
    Top(cmd::top::Args),
    /// Print sluice's version, git revision and DPDK version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A report command piped into `head` ends quietly when the reader goes, as Unix tools do
    // (Rust ignores SIGPIPE, so a closed stdout panicked `println!`). The appliance (`run`,
    // `demo`) keeps ignoring it: a peer closing its socket must not stop the load balancer.
    if matches!(
        cli.command,
        Command::Check { .. }
            | Command::Plan { .. }
            | Command::Maglev { .. }
            | Command::Doctor { .. }
            | Command::Version
    ) {
        // SAFETY: signal(2) with a constant signal and handler, before any other thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match cli.command {
        Command::Run { config } => cmd::run::main(&config),
        Command::Drain { config, url, undo } => {
            let target = match (&url, &config) {
                (Some(url), _) => cmd::drain::Target::Url(url),
                (None, Some(path)) => cmd::drain::Target::Config(path),
                (None, None) => {
                    eprintln!("sluice: drain needs -c FILE or --url URL");
                    return ExitCode::from(2);
                }
            };
            cmd::drain::main(target, undo, Duration::from_secs(10))
        }
        Command::Reload {
            config,
            url,
            timeout,
        } => {
            // Above 0: a zero timeout cannot be set on a socket, and would give up at once.
            let Some(timeout) = Duration::try_from_secs_f64(timeout)
                .ok()
                .filter(|t| !t.is_zero())
            else {
                eprintln!("sluice: --timeout {timeout}: not a positive number of seconds");
                return ExitCode::from(2);
            };
            let target = match (&url, &config) {
                (Some(url), _) => cmd::reload::Target::Url(url),
                (None, Some(path)) => cmd::reload::Target::Config(path),
                (None, None) => {
                    eprintln!("sluice: reload needs -c FILE or --url URL");
                    return ExitCode::from(2);
                }
            };
            cmd::reload::main(target, timeout)
        }
        Command::Check { config } => cmd::check::main(&config),
        Command::Plan {
            config,
            from,
            json,
            max_move,
        } => cmd::plan::main(&config, &from, json, max_move),
        Command::Maglev {
            size,
            backends,
            json,
        } => cmd::maglev::main(size, &backends, json),
        Command::Demo { seconds, listen } => cmd::demo::main(seconds, listen),
        Command::Doctor { config, json, root } => cmd::doctor::main(config.as_deref(), &root, json),
        Command::Top(args) => cmd::top::main(&args),
        Command::Version => cmd::version::main(),
    }
}
