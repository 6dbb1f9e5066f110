//! Everything one worker counts, in one struct ([`Counters`]): what its pipeline decided
//! (packets by verdict, drops by reason, per service and backend, flow-table events) and what
//! the worker did around it (rx, tx, queue-full drops, busy time, latency, gauges). Plain
//! integers, single writer; the worker publishes a copy about once a millisecond, and the
//! exporter sums the copies with [`Counters::merge`] and renders `/metrics` and `/state` from
//! the sum.

use std::net::IpAddr;

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
    /// The worker's: TX had not taken the packet after three tries, or its verdict named no
    /// port the worker has.
    TxQueueFull,
    /// The worker's: a nat packet for another worker whose inbound queue was full.
    RedirectQueueFull,
    /// The worker's: an ARP reply or neighbour advertisement control's full queue refused.
    ControlQueueFull,
    /// The worker's: an ARP reply or neighbour advertisement longer than control takes
    /// ([`crate::control_frame::CONTROL_FRAME_MAX`]).
    ControlFrameTooLong,
}

impl DropReason {
    pub const ALL: [DropReason; 26] = [
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
        DropReason::TxQueueFull,
        DropReason::RedirectQueueFull,
        DropReason::ControlQueueFull,
        DropReason::ControlFrameTooLong,
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
            DropReason::TxQueueFull => "tx_queue_full",
            DropReason::RedirectQueueFull => "redirect_queue_full",
            DropReason::ControlQueueFull => "control_queue_full",
            DropReason::ControlFrameTooLong => "control_frame_too_long",
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

/// Upper bounds (ns) of the rx-to-tx latency histogram buckets; the last bucket is +Inf.
pub const LATENCY_BUCKETS_NS: [u64; 13] = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
    1_000_000,
];

/// The rx-to-tx latency histogram: non-cumulative counts, index `LATENCY_BUCKETS_NS.len()`
/// is +Inf.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub buckets: [u64; LATENCY_BUCKETS_NS.len() + 1],
    pub sum_ns: u64,
    pub count: u64,
}

impl Latency {
    /// Records `n` packets that took `ns`.
    #[inline]
    pub fn record(&mut self, ns: u64, n: u64) {
        let i = LATENCY_BUCKETS_NS
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(LATENCY_BUCKETS_NS.len());
        if let Some(b) = self.buckets.get_mut(i) {
            *b += n;
        }
        self.sum_ns += ns * n;
        self.count += n;
    }

    fn merge(&mut self, o: &Latency) {
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a = a.wrapping_add(*b);
        }
        self.sum_ns = self.sum_ns.wrapping_add(o.sum_ns);
        self.count = self.count.wrapping_add(o.count);
    }
}

/// Everything one worker counts. Service and backend counters are keyed by the stable ids
/// control assigns, so they survive reloads; slots are added when a snapshot is adopted,
/// never on the packet path.
///
/// Accounting over all workers: every packet taken off the wire is counted once in `rx`
/// and ends in exactly one of `tx`, a drop reason or `to_control` (an ARP reply or NA that
/// also goes to the kernel is in `tx` too). A nat packet redirected to its connection's
/// owner counts in `rx` and `nat_redirected` where it arrived and in `processed` at both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets this worker took off the wire (frames another worker handed over are not).
    pub rx: u64,
    /// Packets this worker sent, on any port or its kernel interface.
    pub tx: u64,
    /// Packets this worker's pipeline decided: its own rx and the frames handed to it.
    pub processed: u64,
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
    /// Frames for the kernel its tap's TX queue did not take: not in `to_kernel` (the worker
    /// takes them back out), and dropped as `tx_queue_full`.
    pub kernel_tx_full: u64,
    pub flows_created: u64,
    pub flows_evicted_timeout: u64,
    pub flows_evicted_capacity: u64,
    /// Of `flows_evicted_capacity`, established TCP flows (see `FlowStats::evicted_established`).
    pub flows_evicted_established: u64,
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
    /// the owner counts what became of them, not their rx).
    pub nat_redirected: u64,
    /// Nanoseconds on bursts that received packets, from before `rx_burst` to after the last
    /// `tx_burst` (what testpmd's `--record-core-cycles` counts): busy time per packet.
    pub busy_ns: u64,
    /// Bursts that received packets: packets over bursts is the mean burst.
    pub bursts: u64,
    pub latency: Latency,
    /// Gauge: live flow entries, as of the last publication.
    pub flows: u64,
    /// Gauge: live flow entries per backend id, as of the last publication.
    pub backend_flows: HashMap<u32, u64>,
    /// Gauge: fullnat ports in use per local address, as of the last publication.
    pub nat_ports_in_use: HashMap<IpAddr, u64>,
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

    /// `n` packets dropped for `reason` (a burst's refused tail): the worker's, so DPDK builds only.
    #[cfg(any(test, feature = "dpdk"))]
    #[inline]
    pub(crate) fn drop_n(&mut self, reason: DropReason, n: u64) {
        self.dropped[reason as usize] += n;
    }

    /// Copies `self` into `dst`, reusing `dst`'s maps and vectors: the worker's publication
    /// allocates only when they must grow (a snapshot with more services or backends).
    pub fn copy_into(&self, dst: &mut Counters) {
        let mut backend_flows = std::mem::take(&mut dst.backend_flows);
        let mut nat_ports_in_use = std::mem::take(&mut dst.nat_ports_in_use);
        let mut service = std::mem::take(&mut dst.service);
        let mut backend = std::mem::take(&mut dst.backend);
        let mut service_slot = std::mem::take(&mut dst.service_slot);
        let mut backend_slot = std::mem::take(&mut dst.backend_slot);
        backend_flows.clone_from(&self.backend_flows);
        nat_ports_in_use.clone_from(&self.nat_ports_in_use);
        service.clone_from(&self.service);
        backend.clone_from(&self.backend);
        service_slot.clone_from(&self.service_slot);
        backend_slot.clone_from(&self.backend_slot);
        // `..*self` copies the rest, so a new heap field fails to compile until it is reused here.
        *dst = Counters {
            backend_flows,
            nat_ports_in_use,
            service,
            backend,
            service_slot,
            backend_slot,
            ..*self
        };
    }

    /// Adds `o` to `self`: counters and gauges summed (wrapping, as a counter does), services
    /// and backends by id. The exhaustive pattern makes a new field a compile error here
    /// until it is merged.
    pub fn merge(&mut self, o: &Counters) {
        let Counters {
            rx,
            tx,
            processed,
            forwarded,
            dropped,
            replies,
            ptb_sent,
            ptb_suppressed,
            to_control,
            to_kernel,
            kernel_copies_limited,
            kernel_tx_full,
            flows_created,
            flows_evicted_timeout,
            flows_evicted_capacity,
            flows_evicted_established,
            flows_rehashed,
            flows_stateless,
            nat_replies,
            nat_ports_exhausted,
            nat_redirected,
            busy_ns,
            bursts,
            latency,
            flows,
            backend_flows,
            nat_ports_in_use,
            service: _,
            backend: _,
            service_slot: _,
            backend_slot: _,
        } = o;
        for (mine, theirs) in [
            (&mut self.rx, rx),
            (&mut self.tx, tx),
            (&mut self.processed, processed),
            (&mut self.forwarded, forwarded),
            (&mut self.replies, replies),
            (&mut self.ptb_sent, ptb_sent),
            (&mut self.ptb_suppressed, ptb_suppressed),
            (&mut self.to_control, to_control),
            (&mut self.to_kernel, to_kernel),
            (&mut self.kernel_copies_limited, kernel_copies_limited),
            (&mut self.kernel_tx_full, kernel_tx_full),
            (&mut self.flows_created, flows_created),
            (&mut self.flows_evicted_timeout, flows_evicted_timeout),
            (&mut self.flows_evicted_capacity, flows_evicted_capacity),
            (
                &mut self.flows_evicted_established,
                flows_evicted_established,
            ),
            (&mut self.flows_rehashed, flows_rehashed),
            (&mut self.flows_stateless, flows_stateless),
            (&mut self.nat_replies, nat_replies),
            (&mut self.nat_ports_exhausted, nat_ports_exhausted),
            (&mut self.nat_redirected, nat_redirected),
            (&mut self.busy_ns, busy_ns),
            (&mut self.bursts, bursts),
            (&mut self.flows, flows),
        ] {
            *mine = mine.wrapping_add(*theirs);
        }
        for (mine, theirs) in self.dropped.iter_mut().zip(dropped) {
            *mine = mine.wrapping_add(*theirs);
        }
        self.latency.merge(latency);
        for (id, sc) in o.services() {
            let slot = self.service_slot_for(id, &mut Vec::new());
            if let Some(s) = self.service.get_mut(slot) {
                s.packets = s.packets.wrapping_add(sc.packets);
                s.bytes = s.bytes.wrapping_add(sc.bytes);
            }
        }
        for (id, n) in o.backends() {
            let slot = self.backend_slot_for(id, &mut Vec::new());
            if let Some(b) = self.backend.get_mut(slot) {
                *b = b.wrapping_add(n);
            }
        }
        for (&id, &n) in backend_flows {
            let f = self.backend_flows.entry(id).or_default();
            *f = f.wrapping_add(n);
        }
        for (&a, &n) in nat_ports_in_use {
            let p = self.nat_ports_in_use.entry(a).or_default();
            *p = p.wrapping_add(n);
        }
    }

    /// The sum of `all`.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Counters>) -> Counters {
        let mut total = Counters::default();
        for c in all {
            total.merge(c);
        }
        total
    }

    /// Slot of a stable id, created if new (called when a snapshot is adopted): one of `free`
    /// (a pruned id's, zeroed) before a new one.
    pub(crate) fn service_slot_for(&mut self, id: u32, free: &mut Vec<usize>) -> usize {
        if let Some(&slot) = self.service_slot.get(&id) {
            return slot;
        }
        let slot = match free.pop() {
            Some(s) if s < self.service.len() => {
                self.service[s] = ServiceCounters::default();
                s
            }
            _ => {
                self.service.push(ServiceCounters::default());
                self.service.len() - 1
            }
        };
        self.service_slot.insert(id, slot);
        slot
    }

    pub(crate) fn backend_slot_for(&mut self, id: u32, free: &mut Vec<usize>) -> usize {
        if let Some(&slot) = self.backend_slot.get(&id) {
            return slot;
        }
        let slot = match free.pop() {
            Some(s) if s < self.backend.len() => {
                self.backend[s] = 0;
                s
            }
            _ => {
                self.backend.push(0);
                self.backend.len() - 1
            }
        };
        self.backend_slot.insert(id, slot);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_into_copies_everything_and_reuses_the_allocations() {
        let mut a = Counters {
            rx: 7,
            tx: 5,
            ..Counters::default()
        };
        a.drop_n(DropReason::NoService, 2);
        a.backend_flows.insert(3, 4);
        a.nat_ports_in_use
            .insert(IpAddr::from([198, 51, 100, 200]), 9);
        a.service.push(ServiceCounters::default());
        a.backend.push(11);
        a.service_slot.insert(1, 0);
        a.backend_slot.insert(3, 0);
        let mut b = Counters::default();
        a.copy_into(&mut b);
        assert_eq!(b, a);
        let (service, backend) = (b.service.as_ptr(), b.backend.as_ptr());
        a.rx += 1;
        a.backend[0] += 1;
        a.copy_into(&mut b);
        assert_eq!(b, a);
        assert_eq!((b.service.as_ptr(), b.backend.as_ptr()), (service, backend));
    }

    #[test]
    fn merge_sums_counters_gauges_services_and_backends() {
        let mut a = Counters {
            rx: 3,
            tx: 2,
            flows: 5,
            ..Counters::default()
        };
        a.drop_n(DropReason::NoService, 1);
        a.latency.record(150, 2);
        let s = a.service_slot_for(7, &mut Vec::new());
        a.service[s].packets = 2;
        let b_slot = a.backend_slot_for(9, &mut Vec::new());
        a.backend[b_slot] = 2;
        a.backend_flows.insert(9, 4);
        let mut b = Counters {
            rx: 4,
            tx: 4,
            flows: 1,
            ..Counters::default()
        };
        b.drop_n(DropReason::TxQueueFull, 2);
        b.latency.record(5_000_000, 1);
        let s = b.service_slot_for(7, &mut Vec::new());
        b.service[s] = ServiceCounters {
            packets: 4,
            bytes: 400,
        };
        b.backend_slot_for(11, &mut Vec::new());
        b.backend_flows.insert(9, 1);
        b.nat_ports_in_use.insert(IpAddr::from([192, 0, 2, 200]), 3);
        let t = Counters::sum([&a, &b]);
        assert_eq!((t.rx, t.tx, t.flows), (7, 6, 6));
        assert_eq!(t.dropped(DropReason::NoService), 1);
        assert_eq!(t.dropped(DropReason::TxQueueFull), 2);
        assert_eq!(t.dropped_total(), 3);
        assert_eq!(t.latency.count, 3);
        assert_eq!(t.latency.buckets[1], 2, "150 ns: the 200 ns bucket");
        assert_eq!(t.latency.buckets[LATENCY_BUCKETS_NS.len()], 1, "+Inf");
        assert_eq!(
            t.service(7),
            Some(ServiceCounters {
                packets: 6,
                bytes: 400
            })
        );
        assert_eq!(t.backend_packets(9), Some(2));
        assert_eq!(t.backend_packets(11), Some(0));
        assert_eq!(t.backend_flows.get(&9), Some(&5));
        assert_eq!(
            t.nat_ports_in_use.get(&IpAddr::from([192, 0, 2, 200])),
            Some(&3)
        );
    }

    #[test]
    fn a_freed_slot_is_reused_zeroed_before_a_new_one() {
        let mut c = Counters::default();
        let mut free = Vec::new();
        let a = c.backend_slot_for(1, &mut free);
        let b = c.backend_slot_for(2, &mut free);
        c.backend[a] = 5;
        assert_eq!(c.backend_slot_for(1, &mut free), a, "known: the same slot");
        c.backend_slot.remove(&1);
        free.push(a);
        assert_eq!(c.backend_slot_for(3, &mut free), a, "the freed one");
        assert_eq!(c.backend_packets(3), Some(0), "zeroed");
        assert_eq!(c.backend_slot_for(4, &mut free), 2, "then a new one");
        assert_eq!((c.backend.len(), b), (3, 1));
        let s = c.service_slot_for(7, &mut free);
        c.service[s].packets = 9;
        c.service_slot.remove(&7);
        let mut freed = vec![s];
        assert_eq!(c.service_slot_for(8, &mut freed), s);
        assert_eq!(c.service(8), Some(ServiceCounters::default()));
    }

    #[test]
    fn drop_labels_are_unique_and_the_workers_come_last() {
        let labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        let mut unique = labels.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), labels.len());
        assert_eq!(
            labels[labels.len() - 4..],
            [
                "tx_queue_full",
                "redirect_queue_full",
                "control_queue_full",
                "control_frame_too_long"
            ]
        );
    }
}
