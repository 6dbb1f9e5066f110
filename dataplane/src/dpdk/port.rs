//! Ethernet ports: a builder that configures and starts one, and its per-worker queues.

use std::cell::Cell;
use std::ffi::CString;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::burst::Burst;
use super::eal::Eal;
use super::error::{check, DpdkError};
use super::mempool::Mempool;

/// Configures a port; [`PortBuilder::start`] applies everything and starts it.
pub struct PortBuilder {
    eal: Eal,
    device: String,
    pool: Mempool,
    rx_queues: u16,
    tx_queues: u16,
    rx_desc: u16,
    tx_desc: u16,
    mtu: Option<u16>,
    promiscuous: bool,
}

/// Which optional features the port ended up with (requested ∩ offered by the device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offloads {
    /// RSS hash functions in use (0 = no RSS).
    pub rss_hf: u64,
    /// RTE_ETH_RX_OFFLOAD_* enabled.
    pub rx: u64,
    /// RTE_ETH_TX_OFFLOAD_* enabled.
    pub tx: u64,
}

impl Offloads {
    /// Whether the NIC computes IPv4 header checksums on transmit.
    pub fn tx_ipv4_checksum(&self) -> bool {
        // SAFETY: the flag is a plain constant defined in shim.c.
        self.tx & unsafe { dpdk_sys::sluice_eth_tx_offload_ipv4_cksum } != 0
    }

    /// Whether the NIC checks IPv4 header checksums on receive (and says so in each mbuf's
    /// flags, which the worker hands the parser: [`crate::frame::Frame::ipv4_checksum_good`]).
    pub fn rx_ipv4_checksum(&self) -> bool {
        // SAFETY: the flag is a plain constant defined in shim.c.
        self.rx & unsafe { dpdk_sys::sluice_eth_rx_offload_ipv4_cksum } != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    /// Mbps (0 when unknown).
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// Device counters (rte_eth_stats_get).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_no_mbuf: u64,
}

/// A started port. Clones share it; the port is stopped and closed when the last handle,
/// including every queue taken from it, is dropped.
#[derive(Clone)]
pub struct Port {
    inner: Arc<PortInner>,
}

struct PortInner {
    id: u16,
    name: String,
    offloads: Offloads,
    rx_taken: Vec<AtomicBool>,
    tx_taken: Vec<AtomicBool>,
    // Kept so the pool outlives the driver's rings, and the EAL outlives both.
    _pool: Mempool,
    _eal: Eal,
}

impl PortBuilder {
    /// Rx and tx queue counts (one worker per rx queue); both at least 1.
    pub fn queues(mut self, rx: u16, tx: u16) -> Self {
        self.rx_queues = rx.max(1);
        self.tx_queues = tx.max(1);
        self
    }

    /// Descriptor ring sizes; the driver may round them to what it supports.
    pub fn descriptors(mut self, rx: u16, tx: u16) -> Self {
        self.rx_desc = rx;
        self.tx_desc = tx;
        self
    }

    pub fn mtu(mut self, mtu: u16) -> Self {
        self.mtu = Some(mtu);
        self
    }

    pub fn promiscuous(mut self, on: bool) -> Self {
        self.promiscuous = on;
        self
    }

    /// Configures queues, RSS and checksum offloads (when offered), MTU, and starts the port.
    pub fn start(self) -> Result<Port, DpdkError> {
        let cname = CString::new(self.device.as_str())
            .map_err(|_| DpdkError::BadArgument(self.device.clone()))?;
        let mut id = 0u16;
        // SAFETY: EAL is initialised, cname is a valid C string and id a valid out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(DpdkError::NoSuchDevice(self.device));
        }

        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: id is a valid port and info a valid out-pointer.
        check("rte_eth_dev_info_get", unsafe {
            dpdk_sys::rte_eth_dev_info_get(id, &mut info)
        })?;
        in_range("rx queues", self.rx_queues, 1, info.max_rx_queues)?;
        in_range("tx queues", self.tx_queues, 1, info.max_tx_queues)?;
        if let Some(mtu) = self.mtu {
            in_range("mtu", mtu, info.min_mtu, info.max_mtu)?;
        }

        let offloads = self.offloads(&info);
        let mut conf = dpdk_sys::rte_eth_conf::default();
        if offloads.rss_hf != 0 {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = offloads.rss_hf;
        }
        conf.rxmode.offloads = offloads.rx;
        conf.txmode.offloads = offloads.tx;
        // SAFETY: id is valid, conf is fully initialised.
        check("rte_eth_dev_configure", unsafe {
            dpdk_sys::rte_eth_dev_configure(id, self.rx_queues, self.tx_queues, &conf)
        })?;
        // From here on a failure closes the device (PortInner's Drop), so every request is
        // validated above, before the device is touched.
        let inner = PortInner {
            id,
            name: self.device.clone(),
            offloads,
            rx_taken: (0..self.rx_queues)
                .map(|_| AtomicBool::new(false))
                .collect(),
            tx_taken: (0..self.tx_queues)
                .map(|_| AtomicBool::new(false))
                .collect(),
            _pool: self.pool.clone(),
            _eal: self.eal.clone(),
        };

        if let Some(mtu) = self.mtu {
            // SAFETY: id is a configured port.
            let rc = unsafe { dpdk_sys::rte_eth_dev_set_mtu(id, mtu) };
            // Virtual devices without an MTU setting (net_ring) carry any frame up to their
            // mbuf size: accept that when the MTU asked for is the Ethernet default or less.
            let fixed_but_fine = rc == -libc::ENOTSUP && mtu <= 1500;
            // af_packet reports a fixed 1518-byte max frame, but what it carries is whatever
            // its kernel interface does: accept the MTU when the kernel's is large enough.
            let kernel_carries_it = rc == -libc::EINVAL
                && kernel_mtu(info.if_index).is_some_and(|k| k >= u32::from(mtu));
            if !fixed_but_fine && !kernel_carries_it {
                check("rte_eth_dev_set_mtu", rc)?;
            }
        }

        let (mut rxd, mut txd) = (self.rx_desc, self.tx_desc);
        // SAFETY: id is a configured port; rxd/txd are valid in-out pointers.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rxd, &mut txd)
        })?;
        // SAFETY: id is a valid port.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = u32::try_from(socket).unwrap_or(dpdk_sys::SOCKET_ID_ANY as u32);

        let mut rxconf = info.default_rxconf;
        rxconf.offloads = offloads.rx;
        for q in 0..self.rx_queues {
            // SAFETY: configured port, q < rx_queues, rxconf and the pktmbuf pool are valid
            // (the pool outlives the port: PortInner holds it).
            check("rte_eth_rx_queue_setup", unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(id, q, rxd, socket, &rxconf, self.pool.as_ptr())
            })?;
        }
        let mut txconf = info.default_txconf;
        txconf.offloads = offloads.tx;
        for q in 0..self.tx_queues {
            // SAFETY: configured port, q < tx_queues, txconf valid.
            check("rte_eth_tx_queue_setup", unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(id, q, txd, socket, &txconf)
            })?;
        }
        // SAFETY: all queues are set up.
        check("rte_eth_dev_start", unsafe {
            dpdk_sys::rte_eth_dev_start(id)
        })?;
        if self.promiscuous {
            // Not every device has a promiscuous mode (net_ring, memif); that is not an error.
            // SAFETY: started port.
            let _ = unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
        }
        Ok(Port {
            inner: Arc::new(inner),
        })
    }

    fn offloads(&self, info: &dpdk_sys::rte_eth_dev_info) -> Offloads {
        // SAFETY: the sluice_* flags are plain constants defined in shim.c.
        let (rss, rx, tx) = unsafe {
            (
                dpdk_sys::sluice_eth_rss_ip
                    | dpdk_sys::sluice_eth_rss_tcp
                    | dpdk_sys::sluice_eth_rss_udp,
                dpdk_sys::sluice_eth_rx_offload_ipv4_cksum
                    | dpdk_sys::sluice_eth_rx_offload_tcp_cksum
                    | dpdk_sys::sluice_eth_rx_offload_udp_cksum,
                dpdk_sys::sluice_eth_tx_offload_ipv4_cksum
                    | dpdk_sys::sluice_eth_tx_offload_tcp_cksum
                    | dpdk_sys::sluice_eth_tx_offload_udp_cksum,
            )
        };
        Offloads {
            rss_hf: if self.rx_queues > 1 {
                rss & info.flow_type_rss_offloads
            } else {
                0
            },
            rx: rx & info.rx_offload_capa,
            tx: tx & info.tx_offload_capa,
        }
    }
}

/// The MTU of the kernel interface behind a device (af_packet, tap), if it has one.
fn kernel_mtu(if_index: u32) -> Option<u32> {
    if if_index == 0 {
        return None;
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value that we then fill.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    // SAFETY: ifr_name has room for IF_NAMESIZE bytes, which if_indextoname writes at most.
    let named = unsafe { libc::if_indextoname(if_index, ifr.ifr_name.as_mut_ptr()) };
    if named.is_null() {
        return None;
    }
    // SAFETY: a plain datagram socket, only used for the ioctl and closed right after.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is an open socket and ifr a valid ifreq naming the interface.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut ifr) };
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return None;
    }
    // SAFETY: SIOCGIFMTU succeeded, so it filled the ifru_mtu member of the union.
    let mtu = unsafe { ifr.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).ok()
}

fn in_range(what: &'static str, requested: u16, min: u16, max: u16) -> Result<(), DpdkError> {
    if (min..=max).contains(&requested) {
        Ok(())
    } else {
        Err(DpdkError::OutOfRange {
            what,
            requested: requested.into(),
            min: min.into(),
            max: max.into(),
        })
    }
}

impl Port {
    /// Starts configuring the device named `device` (a vdev such as "net_ring0", or a PCI
    /// address), with rx queues filled from `pool`. Defaults: 1 rx + 1 tx queue, 1024
    /// descriptors each, device MTU, promiscuous.
    pub fn builder(eal: &Eal, device: &str, pool: &Mempool) -> PortBuilder {
        PortBuilder {
            eal: eal.clone(),
            device: device.to_owned(),
            pool: pool.clone(),
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mtu: None,
            promiscuous: true,
        }
    }

    pub fn id(&self) -> u16 {
        self.inner.id
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn offloads(&self) -> Offloads {
        self.inner.offloads
    }

    pub fn rx_queue_count(&self) -> u16 {
        u16::try_from(self.inner.rx_taken.len()).unwrap_or(u16::MAX)
    }

    pub fn tx_queue_count(&self) -> u16 {
        u16::try_from(self.inner.tx_taken.len()).unwrap_or(u16::MAX)
    }

    /// Hands out rx queue `queue`; each queue can be taken once.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue, DpdkError> {
        take(&self.inner.rx_taken, queue, "rx", self.inner.id)?;
        Ok(RxQueue {
            port: self.inner.id,
            queue,
            _port: self.inner.clone(),
            _not_sync: PhantomData,
        })
    }

    /// Hands out tx queue `queue`; each queue can be taken once.
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue, DpdkError> {
        take(&self.inner.tx_taken, queue, "tx", self.inner.id)?;
        Ok(TxQueue {
            port: self.inner.id,
            queue,
            _port: self.inner.clone(),
            _not_sync: PhantomData,
        })
    }

    pub fn link(&self) -> Result<LinkStatus, DpdkError> {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: the port is alive and link a valid out-pointer.
        check("rte_eth_link_get_nowait", unsafe {
            dpdk_sys::rte_eth_link_get_nowait(self.inner.id, &mut link)
        })?;
        Ok(LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() != 0,
        })
    }

    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: the port is alive and s a valid out-pointer.
        check("rte_eth_stats_get", unsafe {
            dpdk_sys::rte_eth_stats_get(self.inner.id, &mut s)
        })?;
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_mbuf: s.rx_nombuf,
        })
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6], DpdkError> {
        let mut mac = [0u8; 6];
        // SAFETY: rte_ether_addr is 6 bytes (opaque here), so the array is a valid out-buffer.
        check("rte_eth_macaddr_get", unsafe {
            dpdk_sys::rte_eth_macaddr_get(self.inner.id, mac.as_mut_ptr().cast())
        })?;
        Ok(mac)
    }
}

fn take(flags: &[AtomicBool], queue: u16, kind: &'static str, port: u16) -> Result<(), DpdkError> {
    let unavailable = DpdkError::QueueUnavailable { kind, port, queue };
    let flag = flags.get(usize::from(queue)).ok_or(unavailable.clone())?;
    if flag.swap(true, Ordering::AcqRel) {
        return Err(unavailable);
    }
    Ok(())
}

impl Drop for PortInner {
    fn drop(&mut self) {
        // SAFETY: the last handle and every queue are gone, so no thread polls the port.
        // Stop fails harmlessly on a port that never started; close frees the rings' mbufs.
        unsafe {
            dpdk_sys::rte_eth_dev_stop(self.id);
            dpdk_sys::rte_eth_dev_close(self.id);
        }
    }
}

/// The receive side of one queue, owned by exactly one worker: `Send`, not `Sync`.
pub struct RxQueue {
    port: u16,
    queue: u16,
    _port: Arc<PortInner>,
    _not_sync: PhantomData<Cell<()>>,
}

/// The transmit side of one queue, owned by exactly one worker: `Send`, not `Sync`.
pub struct TxQueue {
    port: u16,
    queue: u16,
    _port: Arc<PortInner>,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives into the free tail of `burst`; returns how many mbufs arrived.
    pub fn rx_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        let (slots, room) = burst.spare_raw();
        let room = u16::try_from(room).unwrap_or(u16::MAX);
        if room == 0 {
            return 0;
        }
        // SAFETY: this queue is set up and polled only here (&mut self, !Sync); slots has room
        // writable pointer slots.
        let n = unsafe { dpdk_sys::rte_eth_rx_burst(self.port, self.queue, slots, room) };
        let n = usize::from(n.min(room));
        // SAFETY: rx_burst wrote n owned mbufs into the first n free slots.
        unsafe { burst.commit(n) };
        n
    }
}

impl TxQueue {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Transmits from the front of `burst`; the sent mbufs leave it, the unsent tail stays
    /// for the caller to retry or drop (and count). Returns how many were sent.
    pub fn tx_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        let (slots, len) = burst.filled_raw();
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        if len == 0 {
            return 0;
        }
        // SAFETY: this queue is used only here (&mut self, !Sync); slots holds len owned mbufs.
        let sent = unsafe { dpdk_sys::rte_eth_tx_burst(self.port, self.queue, slots, len) };
        let sent = usize::from(sent.min(len));
        // SAFETY: the driver owns the first `sent` mbufs now.
        unsafe { burst.consume_front(sent) };
        sent
    }
}

/// Compile-time checks: queues move to their worker (Send) but are never shared (not Sync).
/// `NotSync<_>` is ambiguous, and fails to compile, exactly when the type is Sync.
mod thread_bounds {
    use super::{RxQueue, TxQueue};

    trait NotSync<Marker> {
        fn check() {}
    }
    impl<T: ?Sized> NotSync<()> for T {}
    impl<T: ?Sized + Sync> NotSync<u8> for T {}

    const fn is_send<T: Send>() {}

    const _: () = {
        is_send::<RxQueue>();
        is_send::<TxQueue>();
    };
    const _: fn() = || {
        <RxQueue as NotSync<_>>::check();
        <TxQueue as NotSync<_>>::check();
    };
}
