//! The validated, typed configuration the rest of sluice uses, with the documented defaults.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

// The settings and enums the dataplane and the health checker act on are theirs, used here as
// they are: one type and one set of defaults per setting (`flows:` is `FlowConfig::default()`).
pub use crate::health::{CheckKind, CheckSettings};
pub use dataplane::snapshot::{Forwarding, HashKind, Proto, WhenAllDown};
pub use dataplane::FlowConfig;

pub const DEFAULT_MBUFS: u32 = 16383;
pub const DEFAULT_QUEUES: u16 = 1;
pub const DEFAULT_MTU: u16 = 1500;
pub const DEFAULT_TABLE_SIZE: u32 = 65537;
pub const DEFAULT_WEIGHT: u32 = 100;
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(2);
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
pub const DEFAULT_HEALTH_RISE: u32 = 2;
pub const DEFAULT_HEALTH_FALL: u32 = 3;
pub const DEFAULT_HEALTH_PATH: &str = "/healthz";
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 9610);

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub dpdk: Dpdk,
    pub interfaces: Vec<Interface>,
    pub flows: FlowConfig,
    pub services: Vec<Service>,
    pub metrics: Metrics,
    /// Keep announced VIPs as routes in a kernel table a routing daemon exports; None: off.
    pub announce: Option<Announce>,
}

/// Route announcement: each VIP with a usable backend is a route in `table`, through the
/// first exception-path interface; a routing daemon (BIRD) learns and advertises them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The kernel routing table (1-4294967295, not 253-255: default, main, local).
    pub table: u32,
}

/// EAL arguments and the mbuf pool size. Optional section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dpdk {
    /// Passed to `rte_eal_init` as given (default: none).
    pub args: Vec<String>,
    /// Mbufs per port (default 16383).
    pub mbufs: u32,
}

/// One NIC port (at least one is required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    /// PCI address or vdev name.
    pub device: String,
    /// RX/TX queues, one worker each (default 1).
    pub queues: u16,
    /// Default 1500.
    pub mtu: u16,
    /// The appliance's own IPv4 address and on-link prefix (required).
    pub address: Prefix<Ipv4Addr>,
    pub address6: Option<Prefix<Ipv6Addr>>,
    /// Next hop for off-link IPv4 backends (`gateway`, `gateway_mac`); inside `address`.
    pub gateway4: Option<Gateway<Ipv4Addr>>,
    /// Next hop for off-link IPv6 backends (`gateway6`, `gateway6_mac`, or an IPv6 `gateway`
    /// and its `gateway_mac` as before dual stack); inside `address6`.
    pub gateway6: Option<Gateway<Ipv6Addr>>,
    /// The exception path: a kernel interface for the host's own traffic; None: off.
    pub kernel: Option<Kernel>,
}

/// An interface's next hop for off-link backends of one address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gateway<A> {
    pub addr: A,
    /// Static MAC instead of resolving it by ARP or ND.
    pub mac: Option<[u8; 6]>,
}

/// The kernel side of an interface's exception path (a DPDK `net_tap` device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The kernel interface's name (1-15 characters, as Linux allows).
    pub name: String,
    /// Frames per second to the kernel per worker core, and from it per interface.
    pub rate: u32,
}

/// Frames per second each way on the exception path when `kernel.rate` is not given.
pub const DEFAULT_KERNEL_RATE: u32 = 10_000;

/// One virtual service: (vip, port, protocol) is unique, and port 0 covers every port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub vip: IpAddr,
    /// Required; 0 = every port.
    pub port: u16,
    /// Required.
    pub protocol: Proto,
    pub hash: HashKind,
    /// Prime, at least the number of backends.
    pub table_size: u32,
    pub forwarding: Forwarding,
    /// fullnat only (required there): the appliance's own source addresses towards backends.
    pub local_addresses: Vec<IpAddr>,
    /// At least one; addresses unique.
    pub backends: Vec<Backend>,
    /// `None` when absent: backends are always up.
    pub health_check: Option<HealthCheck>,
    pub when_all_down: WhenAllDown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub address: IpAddr,
    /// 0 = draining (no new flows, existing kept); default 100.
    pub weight: u32,
    /// nat/fullnat only: the port the backend listens on; None = the service's port.
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Kind, interval, timeout (always less than the interval), rise, fall, HTTP path.
    pub settings: CheckSettings,
    /// None: each backend's own port (its `port`, else the service's; required when that is 0).
    pub port: Option<u16>,
    /// http: the Host header (default the backend's address:port); udp-dns: the name queried
    /// (default the root). Config keys `host` and `query`.
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    pub listen: SocketAddr,
    /// Who may drive the lifecycle endpoints (`POST /-/reload`); default `local`.
    pub lifecycle: Lifecycle,
}

/// An address with a prefix length, e.g. `192.0.2.10/24` (host bits kept: it is an address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix<A> {
    pub addr: A,
    pub len: u8,
}

impl Prefix<Ipv4Addr> {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
        u32::from(self.addr) & mask == u32::from(ip) & mask
    }
}

impl Prefix<Ipv6Addr> {
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.len))
            .unwrap_or(0);
        u128::from(self.addr) & mask == u128::from(ip) & mask
    }
}

impl<A: fmt::Display> fmt::Display for Prefix<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Config {
    /// Whether any service uses nat or fullnat: the workers must allocate connection tracking.
    pub fn uses_nat(&self) -> bool {
        self.services.iter().any(|s| s.forwarding.translates())
    }
}

impl Service {
    /// The port a backend listens on: its own `port`, else the service's (0: the client's).
    pub fn backend_port(&self, b: &Backend) -> u16 {
        b.port.unwrap_or(self.port)
    }

    /// The health-check port of a backend: the check's own, else the backend's port.
    pub fn health_port(&self, hc: &HealthCheck, b: &Backend) -> u16 {
        hc.port.unwrap_or_else(|| self.backend_port(b))
    }
}

impl Interface {
    /// Whether `ip` is on-link: inside `address` or `address6`.
    pub fn on_link(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.address.contains(v4),
            IpAddr::V6(v6) => self.address6.is_some_and(|p| p.contains(v6)),
        }
    }

    /// The gateway of `ip`'s address family, if any: its address and static MAC.
    pub fn gateway_for(&self, ip: IpAddr) -> Option<(IpAddr, Option<[u8; 6]>)> {
        match ip {
            IpAddr::V4(_) => self.gateway4.map(|g| (IpAddr::V4(g.addr), g.mac)),
            IpAddr::V6(_) => self.gateway6.map(|g| (IpAddr::V6(g.addr), g.mac)),
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Who may use the HTTP lifecycle endpoints: clients on loopback only, any client that
/// reaches the listener, or nobody (SIGHUP and the CLI work whatever this says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    Local,
    Any,
    Off,
}

dataplane::spelled!(Lifecycle { Local = "local", Any = "any", Off = "off" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_contain_their_network_only() {
        let p = Prefix {
            addr: Ipv4Addr::new(192, 0, 2, 10),
            len: 24,
        };
        assert!(p.contains(Ipv4Addr::new(192, 0, 2, 200)));
        assert!(!p.contains(Ipv4Addr::new(192, 0, 3, 1)));
        let all = Prefix {
            addr: Ipv4Addr::new(192, 0, 2, 10),
            len: 0,
        };
        assert!(all.contains(Ipv4Addr::new(203, 0, 113, 1)));
        let host = Prefix {
            addr: Ipv4Addr::new(192, 0, 2, 10),
            len: 32,
        };
        assert!(!host.contains(Ipv4Addr::new(192, 0, 2, 11)));
        let p6 = Prefix {
            addr: "2001:db8::10".parse::<Ipv6Addr>().unwrap(),
            len: 64,
        };
        assert!(p6.contains("2001:db8::ffff".parse().unwrap()));
        assert!(!p6.contains("2001:db8:1::1".parse().unwrap()));
    }

    #[test]
    fn macs_format_as_colon_hex() {
        assert_eq!(format_mac([2, 0, 0, 0, 0, 0xab]), "02:00:00:00:00:ab");
    }
}
