//! Backend health checks: what to probe (`Target`), the rise/fall state machine, the probes and their scheduler.
//!
//! Probes run on control-side threads (never the workers) and leave through the host
//! kernel's own stack, i.e. a management interface that can reach the backends; they do
//! not go through the DPDK ports.
//!
//! A backend is UP when it is first seen (as HAProxy does by default): a restart or a
//! reload must not blackhole a healthy fleet while `rise` probes are pending. A dead
//! backend is marked DOWN after `fall` consecutive failed probes.

pub mod engine;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod probe;
pub mod runner;
pub mod state;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use engine::{Change, Engine, Job, TargetStatus};
pub use probe::{probe, ProbeError};
pub use runner::{Scheduler, SchedulerOptions};
pub use state::{Health, Thresholds, Transition};

/// Which probe a check sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// A TCP connection is accepted.
    Tcp,
    /// `GET path` is answered with a 2xx status.
    Http,
    /// A DNS query (SOA of `host`, default the root) is answered with NOERROR or NXDOMAIN.
    UdpDns,
    /// No probe: the backend is always up.
    None,
}

dataplane::spelled!(CheckKind { Tcp = "tcp", Http = "http", UdpDns = "udp-dns", None = "none" });

/// What a check sends and how often: a service's `health_check` and each of its backends' targets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckSettings {
    pub kind: CheckKind,
    /// Time between the starts of two probes.
    pub interval: Duration,
    /// Deadline of one probe, connect to answer; less than `interval`.
    pub timeout: Duration,
    /// Consecutive successes that bring a DOWN backend UP.
    pub rise: u32,
    /// Consecutive failures that take an UP backend DOWN.
    pub fall: u32,
    /// `http`: the request path.
    pub path: String,
}

impl CheckSettings {
    /// Settings that never probe: the backend is always up.
    pub fn none() -> Self {
        CheckSettings {
            kind: CheckKind::None,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 1,
            fall: 1,
            path: String::new(),
        }
    }

    /// The rise/fall thresholds; zero is read as one so a bad value can't disable a check.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds::new(self.rise, self.fall)
    }
}

/// How one backend is checked: the service's settings plus what is resolved per backend.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HealthCheckSpec {
    pub settings: CheckSettings,
    /// The port probed on the backend's address.
    pub port: u16,
    /// `http`: the Host header (default `ip:port`); `udp-dns`: the name queried (default `.`).
    pub host: Option<String>,
}

impl HealthCheckSpec {
    /// A check that never probes: the backend is always up.
    pub fn none() -> Self {
        HealthCheckSpec {
            settings: CheckSettings::none(),
            port: 0,
            host: None,
        }
    }

    /// The rise/fall thresholds of the service's settings.
    pub fn thresholds(&self) -> Thresholds {
        self.settings.thresholds()
    }
}

/// One backend of one service, checked by `spec`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub service: String,
    pub backend: IpAddr,
    pub spec: HealthCheckSpec,
}

impl Target {
    /// The socket address the probe connects to.
    pub fn probe_addr(&self) -> SocketAddr {
        SocketAddr::new(self.backend, self.spec.port)
    }

    /// The identity health state is kept under across reloads.
    pub fn key(&self) -> (String, IpAddr) {
        (self.service.clone(), self.backend)
    }
}
