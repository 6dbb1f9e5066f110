//! The pipeline's counters (what `Pipeline::process` decided: packets by verdict, drops by
//! reason, per service and backend, flow-table events), one set per core: plain integers,
//! single writer; the worker glue publishes them and the exporter sums them across cores at
//! scrape time. The burst-level rx/tx counts of each worker are `runtime::io_counters`.

use hashbrown::HashMap;

/// Why a packet was dropped: the `reason` label of `sluice_dropped_packets_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// A header is cut short by the end of the frame.
    Truncated,
    /// A header field is impossible (bad version, IHL, length, option, chain).
    Malformed,
    /// The IPv4 header checksum does not verify.
    BadChecksum,
    /// Neither IPv4, IPv6 nor ARP.
    UnsupportedEthertype,
    /// An IP protocol we do not balance (not TCP or UDP) addressed to a VIP.
    UnsupportedProtocol,
    /// The destination is neither a VIP nor (for ARP/ND/echo) one of our addresses.
    NotVip,
    /// The destination is a VIP but no service matches the port and protocol.
    NoService,
    /// The service has no usable backend and its policy is to drop.
    NoBackend,
    /// The next hop's MAC address is not resolved yet (control is resolving it).
    UnresolvedNextHop,
    /// IPv4 TTL or IPv6 hop limit is zero on arrival.
    TtlExceeded,
    /// The packet would exceed the egress MTU after encapsulation.
    MtuExceeded,
    /// A fragment addressed to a VIP with several services on its protocol.
    FragmentUnclassifiable,
    /// An ICMP message we do not answer or forward.
    IcmpUnsupported,
    /// An ARP packet that is not a request for one of our addresses.
    ArpNotOurs,
    /// A neighbour solicitation that is not for one of our addresses, or is invalid.
    NdNotOurs,
    /// The buffer has no room for the headers to add.
    NoRoom,
    /// The packet arrived on a port the snapshot does not know.
    UnknownPort,
    /// The egress interface has no address of the outer header's family.
    NoSourceAddress,
    /// A frame for the host's kernel over the exception path's per-core rate.
    ExceptionRateLimited,
    /// A new fullnat connection found no free local port among its candidates.
    NatPortsExhausted,
    /// A fragment to or from a nat/fullnat service: it cannot be translated without
    /// reassembly (only the first fragment has the ports).
    NatFragment,
    /// A packet for a nat/fullnat service on a pipeline built without connection tracking
    /// (`PipelineConfig::nat` off).
    NatUntracked,
}

impl DropReason {
    pub const ALL: [DropReason; 22] = [
        DropReason::Truncated,
        DropReason::Malformed,
        DropReason::BadChecksum,
        DropReason::UnsupportedEthertype,
        DropReason::UnsupportedProtocol,
        DropReason::NotVip,
        DropReason::NoService,
        DropReason::NoBackend,
        DropReason::UnresolvedNextHop,
        DropReason::TtlExceeded,
        DropReason::MtuExceeded,
        DropReason::FragmentUnclassifiable,
        DropReason::IcmpUnsupported,
        DropReason::ArpNotOurs,
        DropReason::NdNotOurs,
        DropReason::NoRoom,
        DropReason::UnknownPort,
        DropReason::NoSourceAddress,
        DropReason::ExceptionRateLimited,
        DropReason::NatPortsExhausted,
        DropReason::NatFragment,
        DropReason::NatUntracked,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// The stable metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::Malformed => "malformed",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::UnsupportedProtocol => "unsupported_protocol",
            DropReason::NotVip => "not_vip",
            DropReason::NoService => "no_service",
            DropReason::NoBackend => "no_backend",
            DropReason::UnresolvedNextHop => "unresolved_next_hop",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::MtuExceeded => "mtu_exceeded",
            DropReason::FragmentUnclassifiable => "fragment_unclassifiable",
            DropReason::IcmpUnsupported => "icmp_unsupported",
            DropReason::ArpNotOurs => "arp_not_ours",
            DropReason::NdNotOurs => "nd_not_ours",
            DropReason::NoRoom => "no_room",
            DropReason::UnknownPort => "unknown_port",
            DropReason::NoSourceAddress => "no_source_address",
            DropReason::ExceptionRateLimited => "exception_rate_limited",
            DropReason::NatPortsExhausted => "nat_ports_exhausted",
            DropReason::NatFragment => "nat_fragment",
            DropReason::NatUntracked => "nat_untracked",
        }
    }
}

impl From<crate::wire::WireError> for DropReason {
    fn from(e: crate::wire::WireError) -> Self {
        match e {
            crate::wire::WireError::Truncated { .. } => DropReason::Truncated,
            crate::wire::WireError::Malformed { .. } => DropReason::Malformed,
            crate::wire::WireError::BadChecksum { .. } => DropReason::BadChecksum,
        }
    }
}

/// Packets and bytes of one service (bytes are IP bytes as received, before encapsulation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceCounters {
    pub packets: u64,
    pub bytes: u64,
}

/// Everything one pipeline counts. Service and backend counters are keyed by the stable ids
/// control assigns, so they survive reloads; slots are added when a snapshot is adopted,
/// never on the packet path.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub rx_packets: u64,
    pub forwarded: u64,
    pub dropped: [u64; DropReason::COUNT],
    /// ARP replies, neighbour advertisements and echo replies sent.
    pub replies: u64,
    /// ICMP fragmentation-needed / packet-too-big messages sent.
    pub ptb_sent: u64,
    /// Oversize packets for which the PTB rate limit suppressed the message.
    pub ptb_suppressed: u64,
    /// ARP replies and neighbour advertisements handed to control.
    pub to_control: u64,
    /// Frames handed to the host's kernel over the exception path.
    pub to_kernel: u64,
    /// ARP replies / NAs whose copy for the kernel the exception rate refused (they still
    /// reached control: not drops).
    pub kernel_copies_limited: u64,
    pub flows_created: u64,
    pub flows_evicted_timeout: u64,
    pub flows_evicted_capacity: u64,
    /// Flow entries whose backend left the snapshot or went down, re-hashed by Maglev.
    pub flows_rehashed: u64,
    /// New flows forwarded by Maglev alone because the per-core new-flow cap was reached.
    pub flows_stateless: u64,
    /// Packets translated back towards a client by a nat/fullnat connection's reverse
    /// entry (replies and ICMP errors from the backend side; also in `forwarded`).
    pub nat_replies: u64,
    /// New fullnat connections refused for want of a free local port (also the
    /// `nat_ports_exhausted` drop reason).
    pub nat_ports_exhausted: u64,
    /// nat/fullnat packets handed to the worker owning their connection (`Verdict::Redirect`;
    /// that worker's pipeline counts them again when it processes them).
    pub nat_redirected: u64,
    pub(crate) service: Vec<ServiceCounters>,
    pub(crate) backend: Vec<u64>,
    pub(crate) service_slot: HashMap<u32, usize>,
    pub(crate) backend_slot: HashMap<u32, usize>,
}

impl Counters {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Drop counters with their labels, in [`DropReason::ALL`] order.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.dropped(r)))
    }

    /// Counters of the service with stable id `id`, if a snapshot ever held it.
    pub fn service(&self, id: u32) -> Option<ServiceCounters> {
        self.service_slot.get(&id).map(|&s| self.service[s])
    }

    /// Packets forwarded to the backend with stable id `id`.
    pub fn backend_packets(&self, id: u32) -> Option<u64> {
        self.backend_slot.get(&id).map(|&s| self.backend[s])
    }

    /// Every (service id, counters) pair.
    pub fn services(&self) -> impl Iterator<Item = (u32, ServiceCounters)> + '_ {
        self.service_slot
            .iter()
            .map(|(&id, &s)| (id, self.service[s]))
    }

    /// Every (backend id, packets) pair.
    pub fn backends(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.backend_slot
            .iter()
            .map(|(&id, &s)| (id, self.backend[s]))
    }

    #[inline]
    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }

    /// Slot of a stable id, created if new (called when a snapshot is adopted).
    pub(crate) fn service_slot_for(&mut self, id: u32) -> usize {
        let next = self.service.len();
        let slot = *self.service_slot.entry(id).or_insert(next);
        if slot == next {
            self.service.push(ServiceCounters::default());
        }
        slot
    }

    pub(crate) fn backend_slot_for(&mut self, id: u32) -> usize {
        let next = self.backend.len();
        let slot = *self.backend_slot.entry(id).or_insert(next);
        if slot == next {
            self.backend.push(0);
        }
        slot
    }
}
