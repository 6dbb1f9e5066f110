//! The forwarding state a worker reads: interfaces, services, backends and the lookup
//! structures built from them once, immutable afterwards (published to workers by RCU).
//!
//! Long (about 750 lines besides tests): the builder is the only place the snapshot's
//! invariants are established, so it stays next to the immutable types it builds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::{HashMap, HashSet};
use maglev::flow::v4_mapped;

use crate::wire::{ipv4, ipv6, proto, udp};

/// A transport protocol a service balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => proto::TCP,
            Proto::Udp => proto::UDP,
        }
    }
}

/// What a service hashes to pick a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashKind {
    FiveTuple,
    /// Client affinity: every flow of one client address goes to one backend.
    SourceIp,
}

/// How packets reach a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forwarding {
    /// IP-in-IP: outer IPv4 (protocol 4 or 41) or IPv6 (next header 4 or 41).
    Ipip,
    /// IP-in-UDP to port 6080 (GUE variant 1, direct IP encapsulation).
    Gue,
    /// Only the destination MAC changes; the backend holds the VIP on its loopback.
    L2Dsr,
    /// Destination address (and port) rewritten to the backend's; the backend routes its
    /// replies through the appliance, which reverses the translation.
    Nat,
    /// Source rewritten too, to one of the service's `local_addresses`: the backend needs
    /// no route to the client.
    FullNat,
}

impl Forwarding {
    /// Whether replies come back through the appliance to be translated (connection tracking).
    pub const fn translates(self) -> bool {
        matches!(self, Forwarding::Nat | Forwarding::FullNat)
    }

    /// Bytes this mode adds in front of the inner IP packet (Ethernet excluded), with an
    /// IPv4 outer header when `outer_v4`. Here, not in the rewrite, so the snapshot can size
    /// each backend's largest inner packet without depending on the rewrite.
    #[inline]
    pub(crate) const fn overhead(self, outer_v4: bool) -> usize {
        let ip = if outer_v4 {
            ipv4::MIN_HEADER_LEN
        } else {
            ipv6::HEADER_LEN
        };
        match self {
            Forwarding::Ipip => ip,
            Forwarding::Gue => ip + udp::HEADER_LEN,
            Forwarding::L2Dsr | Forwarding::Nat | Forwarding::FullNat => 0,
        }
    }
}

/// What a service does when no backend is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WhenAllDown {
    Drop,
    /// Use the table over every weighted backend, healthy or not.
    ForwardAnyway,
}

/// How to reach a backend: out of which port, to which next-hop MAC (None = unresolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    pub port: u16,
    pub next_hop_mac: Option<[u8; 6]>,
}

/// One of the appliance's interfaces (a DPDK port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    pub port: u16,
    pub mac: [u8; 6],
    pub ipv4: Option<(Ipv4Addr, u8)>,
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// IP MTU of the link (the largest IP packet it carries).
    pub mtu: u16,
    /// The port computes outer IPv4 header checksums (DPDK `RTE_ETH_TX_OFFLOAD_IPV4_CKSUM`).
    pub ipv4_checksum_offload: bool,
    /// The interface has an exception path: frames for the host go to its kernel interface.
    pub kernel: bool,
}

/// One backend of one service, with the stable id control assigns (survives reloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub id: u32,
    pub address: IpAddr,
    /// nat/fullnat: the port the backend listens on (0 = the client's destination port).
    pub port: u16,
    /// 0 = draining: no new flows (it should not be in `table`), existing flows kept.
    pub weight: u32,
    pub up: bool,
    pub egress: Egress,
}

/// One service: what it matches, how it picks and reaches a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub id: u32,
    pub name: String,
    pub vip: IpAddr,
    /// 0 = every port.
    pub port: u16,
    pub proto: Proto,
    pub hash: HashKind,
    pub forwarding: Forwarding,
    pub when_all_down: WhenAllDown,
    /// fullnat: the appliance's own source addresses towards backends (empty otherwise).
    pub local_addresses: Vec<IpAddr>,
    pub backends: Vec<BackendSpec>,
    /// The Maglev table over the usable backends (up, weight > 0): indices into `backends`.
    /// Empty when none is usable.
    pub table: Vec<u32>,
    /// The Maglev table over every weighted backend regardless of health, used only with
    /// `WhenAllDown::ForwardAnyway` when `table` is empty.
    pub fallback_table: Vec<u32>,
}

/// Why a snapshot could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("two interfaces on port {0}")]
    DuplicatePort(u16),
    #[error("service {name}: another service already matches {vip} port {port} {proto:?}")]
    DuplicateService {
        name: String,
        vip: IpAddr,
        port: u16,
        proto: Proto,
    },
    #[error("two services with id {0}")]
    DuplicateServiceId(u32),
    #[error("backend id {0} is used twice")]
    DuplicateBackendId(u32),
    #[error(
        "service {service}: table entry {index} at slot {slot} is not a backend (have {backends})"
    )]
    TableIndex {
        service: String,
        slot: usize,
        index: u32,
        backends: usize,
    },
    #[error("service {service}: backend {backend} leaves by port {port}, which is no interface")]
    UnknownEgressPort {
        service: String,
        backend: u32,
        port: u16,
    },
    #[error("service {service}: backend {backend} needs an {family} address on port {port} for the outer header")]
    NoSourceAddress {
        service: String,
        backend: u32,
        port: u16,
        family: &'static str,
    },
    #[error("too many backends ({0}); at most 2^31")]
    TooManyBackends(usize),
    #[error("service {service}: backend {backend} is {backend_family} but the VIP is {vip_family}; nat and fullnat do not translate between families")]
    NatFamilyMismatch {
        service: String,
        backend: u32,
        backend_family: &'static str,
        vip_family: &'static str,
    },
    #[error("service {service}: fullnat backend {backend} needs an {family} local address")]
    NoLocalAddress {
        service: String,
        backend: u32,
        family: &'static str,
    },
    #[error("service {service}: local address {address} is also a VIP")]
    LocalAddressIsVip { service: String, address: IpAddr },
    #[error("service {service}: {count} local addresses; at most 65535 in all")]
    TooManyLocalAddresses { service: String, count: usize },
}

#[derive(Debug, Clone)]
pub(crate) struct Interface {
    pub port: u16,
    pub mac: [u8; 6],
    pub ipv4: Option<[u8; 4]>,
    pub ipv6: Option<[u8; 16]>,
    pub mtu: u16,
    pub ipv4_checksum_offload: bool,
    pub kernel: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub id: u32,
    pub hash: HashKind,
    pub forwarding: Forwarding,
    pub when_all_down: WhenAllDown,
    /// fullnat: indices into [`Snapshot::locals`] of the service's IPv4 and IPv6 local
    /// addresses (empty otherwise).
    pub local4: Box<[u16]>,
    pub local6: Box<[u16]>,
    /// Global backend indices.
    pub table: Box<[u32]>,
    pub fallback_table: Box<[u32]>,
}

#[derive(Debug, Clone)]
pub(crate) struct Backend {
    pub id: u32,
    pub service: u32,
    pub addr: [u8; 16],
    pub v4: bool,
    /// nat/fullnat: the port to translate the destination port to (0 = keep it).
    pub port: u16,
    pub up: bool,
    pub iface: u32,
    /// The largest client IP packet that still fits the egress interface's MTU once
    /// encapsulated for this backend (the MTU less [`Forwarding::overhead`], which depends
    /// only on the mode and the backend's family: l2-dsr, nat and fullnat add nothing), worked
    /// out with the snapshot so the packet path compares one number.
    pub max_inner: u16,
    pub next_hop_mac: Option<[u8; 6]>,
    /// The Ethernet + outer IPv4 headers of ipip/gue packets to this backend, when it has an
    /// IPv4 address and a resolved next hop.
    pub outer_v4: Option<crate::outer::OuterV4>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ServiceKey {
    vip: [u8; 16],
    port: u16,
    proto: u8,
}

/// A key of a [`Lookup`] table: its bits, mixed by the table.
trait LookupKey: Ord + Copy {
    fn bits(&self) -> u64;
}

impl LookupKey for ServiceKey {
    #[inline(always)]
    fn bits(&self) -> u64 {
        let half = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.vip[o..o + 8]);
            u64::from_le_bytes(b)
        };
        half(0) ^ half(8).rotate_left(23) ^ (u64::from(self.port) << 8 | u64::from(self.proto))
    }
}

/// A read-only map to indices, built once per snapshot: open addressing with linear probing
/// in a table at most half full, so a hit is one multiply and usually one probe (a
/// general-purpose hash map costs several times that, on every packet).
#[derive(Debug, Clone)]
struct Lookup<K> {
    slots: Box<[Option<(K, u32)>]>,
    mask: usize,
}

impl<K: LookupKey> Lookup<K> {
    fn new<'a>(entries: impl ExactSizeIterator<Item = (&'a K, &'a u32)>) -> Self
    where
        K: 'a,
    {
        let size = (entries.len() * 2).max(2).next_power_of_two();
        let mut t = Self {
            slots: vec![None; size].into_boxed_slice(),
            mask: size - 1,
        };
        // Filled in key order, not the caller's map order (seeded per process): the same
        // config gives the same layout, so the same probes, in every process.
        let mut sorted: Vec<(K, u32)> = entries.map(|(k, &v)| (*k, v)).collect();
        sorted.sort_unstable();
        for (k, v) in sorted {
            let mut i = t.home(&k);
            while t.slots[i].is_some() {
                i = (i + 1) & t.mask;
            }
            t.slots[i] = Some((k, v));
        }
        t
    }

    #[inline(always)]
    fn home(&self, k: &K) -> usize {
        (k.bits().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    #[inline(always)]
    fn get(&self, k: &K) -> Option<u32> {
        let mut i = self.home(k);
        // At most half full: an empty slot ends every probe.
        for _ in 0..self.slots.len() {
            match self.slots.get(i)? {
                Some((key, v)) if key == k => return Some(*v),
                Some(_) => i = (i + 1) & self.mask,
                None => return None,
            }
        }
        None
    }
}

/// One backend as a snapshot holds it, read back (not used on the packet path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendState {
    pub up: bool,
    /// The DPDK port it leaves by.
    pub port: u16,
    /// None: unresolved, its packets are dropped and counted.
    pub next_hop_mac: Option<[u8; 6]>,
}

/// (VIP, IP protocol).
type VipProto = ([u8; 16], u8);

/// Set in a `classify` value whose service translates (nat/fullnat): one lookup tells both.
const TRANSLATES: u32 = 1 << 31;

/// The class of a `classify` value.
#[inline(always)]
fn class_of(v: u32) -> Class {
    if v & TRANSLATES == 0 {
        Class::Service(v)
    } else {
        Class::Translate(v & !TRANSLATES)
    }
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Immutable forwarding state; build with [`SnapshotBuilder`].
#[derive(Debug, Clone)]
pub struct Snapshot {
    generation: u64,
    pub(crate) interfaces: Vec<Interface>,
    pub(crate) services: Vec<Service>,
    pub(crate) backends: Vec<Backend>,
    /// Every service by (VIP, port, protocol): the hit path's one lookup, whatever the mode.
    /// A nat/fullnat service's index carries [`TRANSLATES`].
    classify: Lookup<ServiceKey>,
    /// (VIP, protocol) -> the one service fragments go to (the port-0 service, or the
    /// only service on that VIP and protocol); None when ambiguous.
    fragments: HashMap<VipProto, Option<u32>>,
    vips: HashSet<[u8; 16]>,
    /// Addresses of the interfaces with an exception path: TCP/UDP to them is the host's.
    host: HashSet<[u8; 16]>,
    /// fullnat local addresses of every service (the appliance owns them, like VIPs).
    pub(crate) locals: Vec<[u8; 16]>,
    local_set: HashSet<[u8; 16]>,
    /// Some service uses nat or fullnat: TCP/UDP to an address that is no VIP may be a reply.
    nat: bool,
}

fn family(v4: bool) -> &'static str {
    if v4 {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Collects plain values and validates them into a [`Snapshot`].
#[derive(Debug, Clone, Default)]
pub struct SnapshotBuilder {
    interfaces: Vec<InterfaceSpec>,
    services: Vec<ServiceSpec>,
}

fn ip16(a: IpAddr) -> ([u8; 16], bool) {
    match a {
        IpAddr::V4(v4) => (v4_mapped(v4.octets()), true),
        IpAddr::V6(v6) => (v6.octets(), false),
    }
}

impl SnapshotBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn interface(mut self, spec: InterfaceSpec) -> Self {
        self.interfaces.push(spec);
        self
    }

    pub fn service(mut self, spec: ServiceSpec) -> Self {
        self.services.push(spec);
        self
    }

    pub fn build(self) -> Result<Snapshot, SnapshotError> {
        let mut interfaces: Vec<Interface> = Vec::with_capacity(self.interfaces.len());
        for i in &self.interfaces {
            if interfaces.iter().any(|x| x.port == i.port) {
                return Err(SnapshotError::DuplicatePort(i.port));
            }
            interfaces.push(Interface {
                port: i.port,
                mac: i.mac,
                ipv4: i.ipv4.map(|(a, _)| a.octets()),
                ipv6: i.ipv6.map(|(a, _)| a.octets()),
                mtu: i.mtu,
                ipv4_checksum_offload: i.ipv4_checksum_offload,
                kernel: i.kernel,
            });
        }
        let mut services = Vec::with_capacity(self.services.len());
        let mut backends: Vec<Backend> = Vec::new();
        let mut classify = HashMap::new();
        let mut by_proto: HashMap<VipProto, Vec<(u16, u32)>> = HashMap::new();
        let mut vips = HashSet::new();
        let mut backend_ids = HashSet::new();
        let mut service_ids = HashSet::new();
        let mut locals: Vec<[u8; 16]> = Vec::new();
        let mut local_owner: Vec<(String, IpAddr)> = Vec::new();
        for s in &self.services {
            let si = services.len() as u32;
            if !service_ids.insert(s.id) {
                return Err(SnapshotError::DuplicateServiceId(s.id));
            }
            let (vip, vip_v4) = ip16(s.vip);
            let nat = matches!(s.forwarding, Forwarding::Nat | Forwarding::FullNat);
            let (mut local4, mut local6) = (Vec::new(), Vec::new());
            if s.forwarding == Forwarding::FullNat {
                for &a in &s.local_addresses {
                    let (addr, v4) = ip16(a);
                    let i = match locals.iter().position(|l| *l == addr) {
                        Some(i) => i,
                        None => {
                            locals.push(addr);
                            local_owner.push((s.name.clone(), a));
                            locals.len() - 1
                        }
                    };
                    let i = u16::try_from(i).map_err(|_| SnapshotError::TooManyLocalAddresses {
                        service: s.name.clone(),
                        count: s.local_addresses.len(),
                    })?;
                    if v4 {
                        local4.push(i);
                    } else {
                        local6.push(i);
                    }
                }
            }
            let key = ServiceKey {
                vip,
                port: s.port,
                proto: s.proto.number(),
            };
            if classify.insert(key, si).is_some() {
                return Err(SnapshotError::DuplicateService {
                    name: s.name.clone(),
                    vip: s.vip,
                    port: s.port,
                    proto: s.proto,
                });
            }
            by_proto
                .entry((vip, s.proto.number()))
                .or_default()
                .push((s.port, si));
            vips.insert(vip);
            let base = backends.len();
            for b in &s.backends {
                let (addr, v4) = ip16(b.address);
                let Some(iface) = interfaces.iter().position(|i| i.port == b.egress.port) else {
                    return Err(SnapshotError::UnknownEgressPort {
                        service: s.name.clone(),
                        backend: b.id,
                        port: b.egress.port,
                    });
                };
                if nat && v4 != vip_v4 {
                    return Err(SnapshotError::NatFamilyMismatch {
                        service: s.name.clone(),
                        backend: b.id,
                        backend_family: family(v4),
                        vip_family: family(vip_v4),
                    });
                }
                let has_local = if v4 { &local4 } else { &local6 };
                if s.forwarding == Forwarding::FullNat && has_local.is_empty() {
                    return Err(SnapshotError::NoLocalAddress {
                        service: s.name.clone(),
                        backend: b.id,
                        family: family(v4),
                    });
                }
                // Only the tunnels write an outer header.
                let needs_source = matches!(s.forwarding, Forwarding::Ipip | Forwarding::Gue);
                let has_source = if v4 {
                    interfaces[iface].ipv4.is_some()
                } else {
                    interfaces[iface].ipv6.is_some()
                };
                if needs_source && !has_source {
                    return Err(SnapshotError::NoSourceAddress {
                        service: s.name.clone(),
                        backend: b.id,
                        port: b.egress.port,
                        family: if v4 { "IPv4" } else { "IPv6" },
                    });
                }
                // Backend indices are u32 on the packet path.
                if u32::try_from(backends.len()).map_or(true, |g| g >= 1 << 31) {
                    return Err(SnapshotError::TooManyBackends(backends.len()));
                }
                if !backend_ids.insert(b.id) {
                    return Err(SnapshotError::DuplicateBackendId(b.id));
                }
                backends.push(Backend {
                    id: b.id,
                    service: si,
                    addr,
                    v4,
                    port: b.port,
                    up: b.up,
                    iface: iface as u32,
                    max_inner: interfaces[iface]
                        .mtu
                        .saturating_sub(s.forwarding.overhead(v4) as u16),
                    next_hop_mac: b.egress.next_hop_mac,
                    outer_v4: match (b.egress.next_hop_mac, interfaces[iface].ipv4) {
                        (Some(mac), Some(src)) if v4 && needs_source => Some(
                            crate::outer::OuterV4::new(mac, interfaces[iface].mac, src, &addr),
                        ),
                        _ => None,
                    },
                });
            }
            let map = |t: &[u32]| -> Result<Box<[u32]>, SnapshotError> {
                t.iter()
                    .enumerate()
                    .map(|(slot, &index)| {
                        if (index as usize) < s.backends.len() {
                            Ok(base as u32 + index)
                        } else {
                            Err(SnapshotError::TableIndex {
                                service: s.name.clone(),
                                slot,
                                index,
                                backends: s.backends.len(),
                            })
                        }
                    })
                    .collect()
            };
            services.push(Service {
                id: s.id,
                hash: s.hash,
                forwarding: s.forwarding,
                when_all_down: s.when_all_down,
                local4: local4.into(),
                local6: local6.into(),
                table: map(&s.table)?,
                fallback_table: map(&s.fallback_table)?,
            });
        }
        if let Some((service, address)) = locals
            .iter()
            .zip(&local_owner)
            .find(|(l, _)| vips.contains(*l))
            .map(|(_, o)| o.clone())
        {
            return Err(SnapshotError::LocalAddressIsVip { service, address });
        }
        let translates = |si: u32| {
            services.get(si as usize).is_some_and(|s: &Service| {
                matches!(s.forwarding, Forwarding::Nat | Forwarding::FullNat)
            })
        };
        let nat = (0..services.len() as u32).any(translates);
        let classify: Vec<(ServiceKey, u32)> = classify
            .iter()
            .map(|(&k, &si)| (k, if translates(si) { si | TRANSLATES } else { si }))
            .collect();
        let fragments = by_proto
            .into_iter()
            .map(|(k, list)| {
                let pick = list
                    .iter()
                    .find(|(port, _)| *port == 0)
                    .map(|&(_, si)| si)
                    .or(if list.len() == 1 {
                        Some(list[0].1)
                    } else {
                        None
                    });
                (k, pick)
            })
            .collect();
        Ok(Snapshot {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            interfaces,
            services,
            backends,
            classify: Lookup::new(classify.iter().map(|(k, v)| (k, v))),
            fragments,
            vips,
            host: self
                .interfaces
                .iter()
                .filter(|i| i.kernel)
                .flat_map(|i| {
                    let v4 = i.ipv4.map(|(a, _)| v4_mapped(a.octets()));
                    v4.into_iter().chain(i.ipv6.map(|(a, _)| a.octets()))
                })
                .collect(),
            local_set: locals.iter().copied().collect(),
            locals,
            nat,
        })
    }
}

/// The result of classifying a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Service(u32),
    /// A nat or fullnat service (told apart by the lookup itself, so the tunnel and DSR
    /// paths pay nothing for nat).
    Translate(u32),
    /// A VIP, but no service on that port and protocol.
    VipOnly,
    /// The host's own: an address of an interface with an exception path, or (on such a
    /// snapshot) an IPv6 link-local or link-scope multicast address.
    Host,
    /// Maybe a reply of a nat/fullnat connection: a local address, or (with nat services) an
    /// address that is neither a VIP nor the host's.
    Reply,
    NotVip,
}

impl Snapshot {
    /// Unique per built snapshot in this process: lets a pipeline notice a new one.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Stable ids of the services, in snapshot order.
    pub fn service_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.services.iter().map(|s| s.id)
    }

    /// Stable ids of the backends, in snapshot order.
    pub fn backend_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.backends.iter().map(|b| b.id)
    }

    /// What this snapshot says of the backend with stable id `id` (control's status, tests).
    pub fn backend_state(&self, id: u32) -> Option<BackendState> {
        let b = self.backends.iter().find(|b| b.id == id)?;
        Some(BackendState {
            up: b.up,
            port: self.interfaces.get(b.iface as usize)?.port,
            next_hop_mac: b.next_hop_mac,
        })
    }

    /// Service for (VIP, port, protocol), falling back to the port-0 service.
    #[inline(always)]
    pub(crate) fn classify(&self, vip: &[u8; 16], port: u16, proto: u8) -> Class {
        let exact = ServiceKey {
            vip: *vip,
            port,
            proto,
        };
        match self.classify.get(&exact) {
            Some(v) => class_of(v),
            None => self.classify_fallback(exact),
        }
    }

    /// No service on exactly this port: the port-0 service, or why there is none.
    #[inline(never)]
    fn classify_fallback(&self, exact: ServiceKey) -> Class {
        if !self.host.is_empty() && (self.host.contains(&exact.vip) || link_scope_v6(&exact.vip)) {
            return Class::Host;
        }
        if self.is_local(&exact.vip) {
            return Class::Reply;
        }
        if self.vips.is_empty() {
            return Class::NotVip;
        }
        let any = ServiceKey { port: 0, ..exact };
        if let Some(v) = self.classify.get(&any) {
            return class_of(v);
        }
        if self.vips.contains(&exact.vip) {
            Class::VipOnly
        } else if self.nat {
            Class::Reply
        } else {
            Class::NotVip
        }
    }

    /// Whether service `s` translates (nat or fullnat) rather than forwards.
    #[inline(always)]
    pub(crate) fn translates(&self, s: u32) -> bool {
        self.nat
            && self
                .services
                .get(s as usize)
                .is_some_and(|x| matches!(x.forwarding, Forwarding::Nat | Forwarding::FullNat))
    }

    /// Some service uses nat or fullnat.
    pub(crate) fn has_nat(&self) -> bool {
        self.nat
    }

    /// One of the fullnat local addresses.
    pub(crate) fn is_local(&self, addr: &[u8; 16]) -> bool {
        !self.local_set.is_empty() && self.local_set.contains(addr)
    }

    /// An address the balancer answers ARP, ND and echo for: a VIP or a local address.
    pub(crate) fn owns(&self, addr: &[u8; 16]) -> bool {
        self.is_vip(addr) || self.is_local(addr)
    }

    /// The service fragments of (VIP, protocol) go to: Ok(None) when ambiguous.
    pub(crate) fn fragment_service(&self, vip: &[u8; 16], proto: u8) -> Option<Option<u32>> {
        self.fragments.get(&(*vip, proto)).copied()
    }

    /// Whether `addr` is the host's (see [`Class::Host`]).
    pub(crate) fn is_host(&self, addr: &[u8; 16]) -> bool {
        !self.host.is_empty() && (self.host.contains(addr) || link_scope_v6(addr))
    }

    pub(crate) fn is_vip(&self, addr: &[u8; 16]) -> bool {
        self.vips.contains(addr)
    }

    #[inline]
    pub(crate) fn interface(&self, port: u16) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.port == port)
    }
}

/// IPv6 link-local (fe80::/10) or link-scope multicast (ff02::/16); never an IPv4-mapped address.
fn link_scope_v6(a: &[u8; 16]) -> bool {
    (a[0] == 0xfe && a[1] & 0xc0 == 0x80) || (a[0] == 0xff && a[1] & 0x0f == 0x02)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> ServiceKey {
        let mut vip = v4_mapped([198, 51, 100, (i % 7) as u8]);
        if i.is_multiple_of(3) {
            vip = [
                0x20,
                1,
                0x0d,
                0xb8,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                (i >> 8) as u8,
                i as u8,
            ];
        }
        ServiceKey {
            vip,
            port: (i / 7) as u16,
            proto: if i.is_multiple_of(2) {
                proto::TCP
            } else {
                proto::UDP
            },
        }
    }

    /// Every stored key is found with its value and nothing else is, at every table size
    /// (small tables probe past collisions; the table is at most half full).
    #[test]
    fn lookup_finds_exactly_what_it_holds() {
        for n in [0u32, 1, 2, 3, 5, 64, 1000] {
            let map: HashMap<ServiceKey, u32> = (0..n).map(|i| (key(i), i * 10)).collect();
            assert_eq!(map.len(), n as usize, "test keys are distinct");
            let t = Lookup::new(map.iter());
            assert!(t.slots.len() >= 2 * map.len());
            for i in 0..n {
                assert_eq!(t.get(&key(i)), Some(i * 10), "n {n} key {i}");
            }
            for i in n..n + 500 {
                assert_eq!(t.get(&key(i)), None, "n {n} absent key {i}");
            }
        }
    }

    /// The layout depends on the keys only, not on the order a map hands them over.
    #[test]
    fn lookup_layout_is_the_same_whatever_the_input_order() {
        let entries: Vec<(ServiceKey, u32)> = (0..200).map(|i| (key(i), i)).collect();
        let reversed: Vec<(ServiceKey, u32)> = entries.iter().rev().copied().collect();
        let a = Lookup::new(entries.iter().map(|(k, v)| (k, v)));
        let b = Lookup::new(reversed.iter().map(|(k, v)| (k, v)));
        assert_eq!(a.slots, b.slots);
    }
}
