//! Exhaustion and leaks through the real worker (`LbWorker::run` on an EAL lcore):
//!
//! - an empty mbuf pool: the tap PMD cannot refill its receive buffer, counts `rx_nombuf` and
//!   loses the frame; once the mbufs come back, forwarding resumes by itself;
//! - a full TX ring (a net_ring nobody drains): the worker counts every packet it could not
//!   send as `tx_dropped` (`tx_queue_full` in the metrics), frees it, keeps running, and
//!   forwards again once the ring is drained.
//!
//! - control frames: a neighbour advertisement with options, longer than 128 bytes, reaches
//!   control whole; one longer than a control frame holds is counted, not cut;
//! - frames control hands the worker to send (a port with no tx queue for control) meet a full
//!   TX ring: each refusal is counted where its origin counts it, never as a dropped packet.
//!
//! After each, the pool is back to its starting count (every mbuf not in a driver's hands is
//! free), and full once the ports are closed. One EAL per process: both scenarios share it.
#![cfg(feature = "dpdk")]

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::packet_socket::PacketSocket;
use common::*;
use crossbeam_queue::ArrayQueue;
use dataplane::control_frame::CONTROL_FRAME_MAX;
use dataplane::dpdk::{Burst, Eal, Mbuf, Mempool, Port, RxQueue, TxQueue};
use dataplane::parse::{self, Parsed, L4};
use dataplane::rcu::{self, Publisher};
use dataplane::runtime::{self, Workers};
use dataplane::worker::{
    ControlFrame, FromControl, FromKernelStats, LbWorker, Origin, TxPath, WorkerStats,
};
use dataplane::{
    Counters, DropReason, FlowConfig, Forwarding, HashKind, Pipeline, PipelineConfig, Proto,
    Snapshot, SnapshotBuilder, WhenAllDown,
};

/// One IPIP service (VIP4:80 -> 203.0.113.11) on interface `port`, with an exception path
/// when `kernel`.
fn snapshot_on(port: u16, kernel: bool) -> Snapshot {
    let mut s = spec(Svc {
        id: 1,
        vip: a4(VIP4),
        port: 80,
        proto: Proto::Tcp,
        forwarding: Forwarding::Ipip,
        backends: vec![(a4(b4(11)), Some(GW_MAC), true)],
        hash: HashKind::FiveTuple,
        when_all_down: WhenAllDown::Drop,
    });
    for b in &mut s.backends {
        b.egress.port = port;
    }
    let mut iface = interface();
    iface.port = port;
    iface.kernel = kernel;
    SnapshotBuilder::new()
        .interface(iface)
        .service(s)
        .build()
        .unwrap()
}

fn frame_for(i: u32) -> Vec<u8> {
    tcp4(
        [198, 18, (i >> 8) as u8, i as u8],
        VIP4,
        40_000 + (i % 1000) as u16,
        80,
        Tcp::Ack,
        b"exhaust",
    )
}

/// One LbWorker on the first worker lcore: receives on `rx`, sends what it forwards on `tx`
/// (another port: the worker's tx path for its own interface is pointed at it, so the test
/// can read, or refuse to read, what it sends).
struct Lb {
    workers: Workers,
    stats: Arc<WorkerStats>,
    to_control: Arc<ArrayQueue<ControlFrame>>,
    _publisher: Publisher<Snapshot>,
}

impl Lb {
    fn launch(eal: &Eal, rx: RxQueue, tx: TxQueue) -> Self {
        Self::launch_with(eal, rx, tx, None, None)
    }

    /// [`Lb::launch`], with `kernel` as the worker's queue to its interface's kernel side (the
    /// exception path on, without its rate limit) and `from_control` as the queue of frames
    /// control hands it to send.
    fn launch_with(
        eal: &Eal,
        rx: RxQueue,
        tx: TxQueue,
        kernel: Option<TxQueue>,
        from_control: Option<Arc<ArrayQueue<FromControl>>>,
    ) -> Self {
        let port = rx.port();
        let exception = kernel.is_some();
        let kernel = Mutex::new(kernel);
        let (publisher, mut readers) = rcu::new(snapshot_on(port, exception), 1);
        let stats = Arc::new(WorkerStats::default());
        let to_control = Arc::new(ArrayQueue::new(64));
        let parts = Arc::new(Mutex::new(Some((
            readers.remove(0),
            stats.clone(),
            to_control.clone(),
        ))));
        let workers = runtime::launch(eal, vec![(rx, tx)], move |ctx| {
            let stop = ctx.stop_flag();
            let runtime::WorkerContext { rx, tx, .. } = ctx;
            let Some((snapshot, stats, to_control)) = parts.lock().unwrap().take() else {
                return;
            };
            let mut path = TxPath::new(tx);
            path.port = port;
            let mut worker = LbWorker {
                rx,
                tx: vec![path],
                kernel: kernel.lock().unwrap().take().map(TxPath::new),
                pipeline: Pipeline::new(&PipelineConfig {
                    flows: FlowConfig {
                        capacity: 4096,
                        ..FlowConfig::default()
                    },
                    exception_per_second: 0,
                    ..PipelineConfig::default()
                }),
                snapshot,
                to_control,
                from_control: from_control.clone(),
                stats,
                tsc_hz: dataplane::worker::tsc_hz(),
                redirect: None,
            };
            worker.run(move || stop.load(Ordering::Relaxed));
        })
        .expect("launch");
        Self {
            workers,
            stats,
            to_control,
            _publisher: publisher,
        }
    }

    /// The worker's counters as last published (about once a millisecond).
    fn counts(&self) -> Counters {
        self.stats.lock().unwrap().clone()
    }

    fn tx_dropped(&self) -> u64 {
        self.counts().dropped(DropReason::TxQueueFull)
    }
}

/// Sends `n` frames (`frame(i)` for i = 0..n) from `pool` on `tx`, offering again what a full
/// ring (the worker behind) did not take; within 20 s.
fn inject_frames(pool: &Mempool, tx: &mut TxQueue, n: u64, frame: impl Fn(u32) -> Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent = 0u64;
    while sent < n && Instant::now() < deadline {
        let mut b = Burst::<32>::new();
        while sent + (b.len() as u64) < n && !b.is_full() {
            let mut m = pool.alloc().expect("alloc");
            m.copy_from_slice(&frame((sent as usize + b.len()) as u32))
                .expect("fill");
            b.push(m).expect("room");
        }
        sent += tx.tx_burst(&mut b) as u64;
    }
    assert_eq!(sent, n, "injected");
}

/// Reads what arrives on `rx` until `want` frames came or `limit` passed; returns the
/// count, freeing them (each checked to be an IPIP packet to the backend).
fn collect(rx: &mut RxQueue, want: u64, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    let mut got = 0;
    while got < want && Instant::now() < deadline {
        let mut b = Burst::<32>::new();
        if rx.rx_burst(&mut b) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        for m in b.drain() {
            let d = m.data();
            assert_eq!(&d[30..34], &b4(11), "outer destination: the backend");
            got += 1;
        }
    }
    got
}

/// Polls `f` until it returns true or `limit` passes; returns its last answer.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn exhausted_pools_and_full_tx_rings_are_counted_and_leak_nothing() {
    let pid = std::process::id();
    let ifname = format!("slnomb{}", pid % 1_000_000);
    let tap = format!("net_tap0,iface={ifname}");
    let eal = common::eal::init(
        "exhaust",
        "0@0,1@1",
        &["--log-level", "pmd.net.tap:error"],
        &[
            &tap,
            "net_ring0",
            "net_ring1",
            "net_ring2",
            "net_ring3",
            "net_ring4",
            "net_ring5",
            "net_ring6",
            "net_ring7",
            "net_ring8",
            "net_ring9",
        ],
    );

    empty_pool(&eal, &ifname);
    full_tx_ring(&eal);
    full_kernel_ring(&eal);
    long_control_frames(&eal);
    refused_control_frames(&eal);
}

/// The tap's receive pool runs dry while frames arrive, then refills.
fn empty_pool(eal: &Eal, ifname: &str) {
    const POOL: u32 = 512;
    const RX_DESC: u16 = 64;
    const DRY: u64 = 20;
    const AFTER: u64 = 200;
    // No per-lcore cache: "the pool is empty" then means what it says on every lcore.
    let pool = Mempool::new(eal, "nombuf_pool", POOL, 0, 2176, -1).expect("pool");
    // The kernel's own IPv6 chatter (router solicitations, MLD) would arrive on the tap too.
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
        "1",
    );
    let tap = Port::builder(eal, "net_tap0", &pool)
        .descriptors(RX_DESC, RX_DESC)
        .start()
        .expect("tap port");
    // The egress ring has its own pool for nothing: net_ring never allocates.
    let ring_pool = Mempool::new(eal, "nombuf_ring_pool", 63, 0, 2176, -1).expect("pool");
    let out = Port::builder(eal, "net_ring1", &ring_pool)
        .start()
        .expect("ring1");
    let mut collect_rx = out.rx_queue(0).expect("rx");
    // What the tap holds while idle: its receive buffers, taken from the pool at setup.
    let held_by_driver = pool.in_use();
    assert!(
        held_by_driver > 0 && held_by_driver < POOL,
        "the tap pre-allocates its receive buffers ({held_by_driver})"
    );

    let lb = Lb::launch(
        eal,
        tap.rx_queue(0).expect("tap rx"),
        out.tx_queue(0).expect("ring1 tx"),
    );
    let sock = PacketSocket::sender(ifname);
    let stats0 = tap.stats().expect("stats");

    // Take every free mbuf: the pool is empty.
    let mut hoard: Vec<Mbuf> = Vec::new();
    while let Ok(m) = pool.alloc() {
        hoard.push(m);
    }
    assert_eq!(pool.available(), 0);
    assert_eq!(hoard.len() as u32, POOL - held_by_driver);

    // Frames arrive (spaced, so each raises its own SIGIO, which is what wakes tap's rx).
    for i in 0..DRY as u32 {
        sock.send(&frame_for(i));
        std::thread::sleep(Duration::from_millis(2));
    }
    // tap reads only after a SIGIO, one frame per failed refill, and signals coalesce: some
    // frames may wait in the kernel's queue until the next signal. Wait for the count to
    // settle.
    let mut nombuf = 0;
    let mut settled = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while settled < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        let n = tap.stats().expect("stats").rx_no_mbuf - stats0.rx_no_mbuf;
        settled = if n == nombuf { settled + 1 } else { 0 };
        nombuf = n;
    }
    let dry = tap.stats().expect("stats");
    eprintln!(
        "empty pool ({POOL} mbufs, {held_by_driver} held by the tap): {DRY} frames sent, \
         rx_nombuf {nombuf}, rx_missed {}, worker rx {}",
        dry.rx_missed - stats0.rx_missed,
        lb.counts().rx
    );
    assert!(
        (1..=DRY).contains(&nombuf),
        "rx_nombuf counted {nombuf} of {DRY} frames"
    );
    assert_eq!(lb.counts().rx, 0, "nothing was received");
    assert_eq!(collect(&mut collect_rx, 1, Duration::from_millis(100)), 0);

    // The mbufs come back: forwarding resumes with no one restarting anything.
    drop(hoard);
    for i in 0..AFTER as u32 {
        sock.send(&frame_for(1000 + i));
        if i % 16 == 15 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Every frame is either counted as lost for want of an mbuf or, if it was still queued
    // in the kernel, forwarded now.
    let want = AFTER + DRY - nombuf;
    let forwarded = collect(&mut collect_rx, want, Duration::from_secs(10));
    // The counters are published about once a millisecond: let the last burst's arrive.
    wait_until(Duration::from_secs(1), || lb.counts().tx == forwarded);
    let total = lb.counts();
    eprintln!(
        "pool back: {AFTER} more frames sent, {forwarded} forwarded (of {want}); \
         worker rx {} tx {} dropped {}",
        total.rx,
        total.tx,
        total.dropped_total()
    );
    assert_eq!(forwarded, want, "forwarding resumed");
    assert_eq!(collect(&mut collect_rx, 1, Duration::from_millis(100)), 0);
    assert_eq!(total.rx, want);
    assert_eq!(total.tx, forwarded, "tx counts what was forwarded");
    assert_eq!(lb.tx_dropped(), 0);
    assert_eq!(
        tap.stats().expect("stats").rx_no_mbuf - stats0.rx_no_mbuf,
        nombuf,
        "no more allocation failures"
    );

    assert_eq!(lb.workers.join(), 0, "the worker ran to the end");
    // Back to the starting count: only the tap's receive buffers are out.
    assert_eq!(pool.in_use(), held_by_driver, "no mbuf leaked");
    drop((collect_rx, sock));
    drop((tap, out));
    assert_eq!(
        pool.available(),
        POOL,
        "closing the tap returned its buffers"
    );
    assert_eq!(ring_pool.available(), 63);
}

/// The worker's TX ring fills up because nobody drains it, then is drained.
fn full_tx_ring(eal: &Eal) {
    const POOL: u32 = 4095;
    const FLOOD: u64 = 3000;
    const AFTER: u64 = 1000;
    let pool = Mempool::new(eal, "txfull_pool", POOL, 32, 2176, -1).expect("pool");
    // net_ring loops a port's tx to its rx: we inject on ring0's tx, the worker receives on
    // ring0's rx and sends on ring2's tx, which lands on ring2's rx, which only we read.
    let ring0 = Port::builder(eal, "net_ring0", &pool)
        .start()
        .expect("ring0");
    let ring2 = Port::builder(eal, "net_ring2", &pool)
        .start()
        .expect("ring2");
    let mut inject = ring0.tx_queue(0).expect("tx");
    let mut drain = ring2.rx_queue(0).expect("rx");
    assert_eq!(pool.in_use(), 0, "net_ring holds no buffers of its own");
    let lb = Lb::launch(
        eal,
        ring0.rx_queue(0).expect("rx"),
        ring2.tx_queue(0).expect("tx"),
    );

    let send = |inject: &mut TxQueue, from: u32, n: u64| {
        inject_frames(&pool, inject, n, |i| frame_for(from + i));
    };

    // Phase 1: nobody reads ring2. The worker forwards until its ring is full, then drops.
    send(&mut inject, 0, FLOOD);
    // Done when every packet received has been sent or dropped (one published copy).
    let done = || {
        let c = lb.counts();
        c.rx == FLOOD && c.tx + c.dropped(DropReason::TxQueueFull) == FLOOD
    };
    assert!(
        wait_until(Duration::from_secs(10), done),
        "the worker handled the flood: {:?}, tx_dropped {}",
        lb.counts(),
        lb.tx_dropped()
    );
    let c = lb.counts();
    let ring = ring2.stats().expect("stats").tx_packets;
    eprintln!(
        "full tx ring: {FLOOD} in, tx {} (ring2 holds {ring}), tx_dropped {}, dropped {}, \
         pool in use {}",
        c.tx,
        lb.tx_dropped(),
        c.dropped_total(),
        pool.in_use()
    );
    assert_eq!(c.tx, ring, "what the worker sent is what ring2 holds");
    assert!(ring > 0 && ring < FLOOD, "ring2 filled up ({ring})");
    assert_eq!(
        lb.tx_dropped(),
        FLOOD - ring,
        "every packet tx refused is counted"
    );
    assert_eq!(c.dropped_total(), FLOOD - ring, "and counted as dropped");
    // The refused mbufs were freed: the only ones out are those sitting in ring2.
    assert_eq!(pool.in_use() as u64, ring, "no refused mbuf leaked");

    // Phase 2: ring2 is drained; forwarding resumes.
    assert_eq!(collect(&mut drain, ring, Duration::from_secs(5)), ring);
    assert_eq!(pool.in_use(), 0);
    let dropped_before = lb.tx_dropped();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut forwarded = 0;
    let mut sent = 0;
    while (sent < AFTER || forwarded < AFTER) && Instant::now() < deadline {
        if sent < AFTER {
            // In steps the drain keeps up with: ring2 must never fill again.
            let n = 64.min(AFTER - sent);
            send(&mut inject, 10_000 + sent as u32, n);
            sent += n;
        }
        forwarded += collect(&mut drain, AFTER - forwarded, Duration::from_millis(50));
    }
    eprintln!(
        "drained: {AFTER} more in, {forwarded} forwarded, tx_dropped {}",
        lb.tx_dropped()
    );
    assert_eq!(forwarded, AFTER, "forwarding resumed");
    assert_eq!(lb.tx_dropped(), dropped_before, "no drop once drained");

    assert_eq!(lb.workers.join(), 0, "the worker ran to the end");
    assert_eq!(pool.in_use(), 0, "no mbuf leaked");
    drop((inject, drain, ring0, ring2));
    assert_eq!(pool.available(), POOL);
}

/// Frames for the host's kernel meet a full tap queue (here a ring nobody drains): each one
/// the queue refused is dropped (`tx_queue_full`), counted `kernel_tx_full`, and not in
/// `to_kernel`, which counts only what the kernel side took; nothing leaks.
fn full_kernel_ring(eal: &Eal) {
    const POOL: u32 = 4095;
    const FLOOD: u64 = 3000;
    let pool = Mempool::new(eal, "kernfull_pool", POOL, 32, 2176, -1).expect("pool");
    // The worker receives on ring3 (we inject on its tx), forwards on ring5's tx (unused
    // here: every frame is for the host) and hands the kernel's share to ring4's tx.
    let ring3 = Port::builder(eal, "net_ring3", &pool)
        .start()
        .expect("ring3");
    let ring4 = Port::builder(eal, "net_ring4", &pool)
        .start()
        .expect("ring4");
    let ring5 = Port::builder(eal, "net_ring5", &pool)
        .start()
        .expect("ring5");
    let mut inject = ring3.tx_queue(0).expect("tx");
    let mut kernel_side = ring4.rx_queue(0).expect("rx");
    let lb = Lb::launch_with(
        eal,
        ring3.rx_queue(0).expect("rx"),
        ring5.tx_queue(0).expect("tx"),
        Some(ring4.tx_queue(0).expect("kernel tx")),
        None,
    );
    // TCP to the interface's own address: not a VIP, so the host's.
    inject_frames(&pool, &mut inject, FLOOD, |i| {
        tcp4(
            [198, 18, (i >> 8) as u8, i as u8],
            OUR4,
            40_000,
            22,
            Tcp::Ack,
            b"ssh",
        )
    });
    let done = || {
        let c = lb.counts();
        c.rx == FLOOD && c.to_kernel + c.kernel_tx_full == FLOOD
    };
    assert!(
        wait_until(Duration::from_secs(10), done),
        "the worker handled the flood: {:?}",
        lb.counts()
    );
    let c = lb.counts();
    let took = ring4.stats().expect("stats").tx_packets;
    eprintln!(
        "full kernel ring: {FLOOD} in, to_kernel {}, kernel_tx_full {} (ring4 holds {took})",
        c.to_kernel, c.kernel_tx_full
    );
    assert!(took > 0 && took < FLOOD, "ring4 filled up ({took})");
    assert_eq!(
        c.to_kernel, took,
        "to_kernel counts what the kernel side took"
    );
    assert_eq!(
        c.kernel_tx_full,
        FLOOD - took,
        "every refused frame is counted"
    );
    assert_eq!(
        c.dropped(DropReason::TxQueueFull),
        FLOOD - took,
        "and dropped"
    );
    assert_eq!(c.dropped_total(), FLOOD - took, "and nothing else dropped");
    assert_eq!(pool.in_use() as u64, took, "no refused mbuf leaked");

    // ARP replies: control's, each with a copy for the kernel. The copies the full ring
    // refuses are the exception path's loss, not dropped packets; the replies reach control.
    const REPLIES: u64 = 40;
    inject_frames(&pool, &mut inject, REPLIES, |_| arp_reply());
    let handled = || lb.counts().to_control == REPLIES;
    assert!(
        wait_until(Duration::from_secs(10), handled),
        "{:?}",
        lb.counts()
    );
    let d = lb.counts();
    assert_eq!(
        d.kernel_tx_full - c.kernel_tx_full,
        REPLIES,
        "copies refused"
    );
    assert_eq!(d.to_kernel, c.to_kernel, "none reached the kernel");
    assert_eq!(d.dropped_total(), c.dropped_total(), "no packet dropped");
    assert_eq!(d.tx, c.tx, "nothing sent");
    assert_eq!(lb.to_control.len() as u64, REPLIES);

    let mut drained = 0;
    while drained < took {
        let mut b = Burst::<32>::new();
        drained += kernel_side.rx_burst(&mut b) as u64;
    }
    // With room again: the copies reach the kernel, counted there, not in tx (each reply is
    // one received packet, counted once, as a control frame).
    inject_frames(&pool, &mut inject, 10, |_| arp_reply());
    let handled = || lb.counts().to_control == REPLIES + 10;
    assert!(
        wait_until(Duration::from_secs(10), handled),
        "{:?}",
        lb.counts()
    );
    let e = lb.counts();
    assert_eq!(e.to_kernel - d.to_kernel, 10, "copies to the kernel");
    assert_eq!(e.tx, d.tx, "not in tx");
    assert_eq!(
        e.rx,
        e.tx + e.dropped_total() + e.to_control,
        "rx accounted once"
    );
    let mut copies = 0;
    while copies < 10 {
        let mut b = Burst::<32>::new();
        copies += kernel_side.rx_burst(&mut b) as u64;
    }
    assert_eq!(lb.workers.join(), 0, "the worker ran to the end");
    assert_eq!(pool.in_use(), 0, "no mbuf leaked");
    drop((inject, kernel_side, ring3, ring4, ring5));
    assert_eq!(pool.available(), POOL);
}

/// An ARP reply from the gateway to our address, padded to the Ethernet minimum.
fn arp_reply() -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&OUR_MAC);
    f.extend_from_slice(&GW_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&GW_MAC);
    f.extend_from_slice(&[192, 0, 2, 1]);
    f.extend_from_slice(&OUR_MAC);
    f.extend_from_slice(&OUR4);
    f.resize(60, 0);
    f
}

/// A neighbour advertisement from 203.0.113.11's IPv6 twin for control, `frame_len` bytes long:
/// its target link-layer option, then unknown options (ignored, RFC 4861 4.6) as padding.
fn advert(frame_len: usize) -> Vec<u8> {
    const BASE: usize = 14 + 40 + 8 + 16 + 8;
    assert!(
        frame_len >= BASE && (frame_len - BASE).is_multiple_of(8),
        "{frame_len}"
    );
    let target = b6(11);
    let mut payload = target.to_vec();
    payload.extend_from_slice(&[2, 1]);
    payload.extend_from_slice(&GW_MAC);
    let mut pad = frame_len - BASE;
    while pad > 0 {
        let units = (pad / 8).min(255);
        payload.extend_from_slice(&[250, units as u8]);
        payload.resize(payload.len() + units * 8 - 2, 0);
        pad -= units * 8;
    }
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2(GW_MAC, OUR_MAC)
        .ipv6(target, OUR6, 255)
        .icmpv6(etherparse::Icmpv6Type::Unknown {
            type_u8: 136,
            code_u8: 0,
            bytes5to8: [0x60, 0, 0, 0],
        })
        .write(&mut v, &payload)
        .unwrap();
    assert_eq!(v.len(), frame_len);
    v
}

/// Advertisements for control longer than 128 bytes: the one that fits a control frame
/// arrives whole (control parses it as it came), the longer one is counted, not cut.
fn long_control_frames(eal: &Eal) {
    const POOL: u32 = 511;
    let fits = advert(206);
    let too_long = advert(CONTROL_FRAME_MAX + 46);
    let pool = Mempool::new(eal, "ctlframe_pool", POOL, 32, 2176, -1).expect("pool");
    let ring6 = Port::builder(eal, "net_ring6", &pool)
        .start()
        .expect("ring6");
    let ring7 = Port::builder(eal, "net_ring7", &pool)
        .start()
        .expect("ring7");
    let mut inject = ring6.tx_queue(0).expect("tx");
    let lb = Lb::launch(
        eal,
        ring6.rx_queue(0).expect("rx"),
        ring7.tx_queue(0).expect("tx"),
    );
    inject_frames(&pool, &mut inject, 2, |i| {
        if i == 0 {
            fits.clone()
        } else {
            too_long.clone()
        }
    });
    assert!(
        wait_until(Duration::from_secs(10), || lb.counts().rx == 2),
        "the worker took both: {:?}",
        lb.counts()
    );
    let c = lb.counts();
    assert_eq!(c.to_control, 1, "one handed to control");
    assert_eq!(c.dropped(DropReason::ControlFrameTooLong), 1, "one counted");
    assert_eq!(c.dropped_total(), 1, "and nothing else dropped");
    let got = lb.to_control.pop().expect("a control frame");
    assert!(lb.to_control.pop().is_none(), "only one");
    assert_eq!(got.data(), &fits[..], "whole, as it came");
    assert!(
        matches!(parse::parse(got.data()), Ok(Parsed::Ip(ip)) if ip.l4 == L4::NeighborAdvert),
        "control's parse takes it"
    );
    assert_eq!(lb.workers.join(), 0, "the worker ran to the end");
    assert_eq!(pool.in_use(), 0, "no mbuf leaked");
    drop((inject, ring6, ring7));
    assert_eq!(pool.available(), POOL);
}

/// Frames control hands the worker to send (af_packet: no tx queue for control) meet a full TX
/// ring. The worker received none of them, so none is its dropped packet or its tx (rx = tx +
/// dropped + control frames holds): the kernel's count in their interface's from-kernel
/// counts (`packets` sent, `tx_full` refused), control's own nowhere. Nothing leaks.
fn refused_control_frames(eal: &Eal) {
    const POOL: u32 = 4095;
    // More than ring9 holds (a net_ring is 1024 slots): the rest is refused.
    const KERNEL: u64 = 1200;
    const OWN: u64 = 20;
    let pool = Mempool::new(eal, "handover_pool", POOL, 32, 2176, -1).expect("pool");
    // The worker receives on ring8 (nothing arrives) and sends on ring9's tx, which lands on
    // ring9's rx, which only we read.
    let ring8 = Port::builder(eal, "net_ring8", &pool)
        .start()
        .expect("ring8");
    let ring9 = Port::builder(eal, "net_ring9", &pool)
        .start()
        .expect("ring9");
    let mut sent_out = ring9.rx_queue(0).expect("rx");
    let handover = Arc::new(ArrayQueue::new(2048));
    let lb = Lb::launch_with(
        eal,
        ring8.rx_queue(0).expect("rx"),
        ring9.tx_queue(0).expect("tx"),
        None,
        Some(Arc::clone(&handover)),
    );
    // The worker's tx path is labelled with its rx port (see `Lb`).
    let port = ring8.id();
    let kernel = Arc::new(FromKernelStats::default());
    let hand = |port: u16, origin: Origin| {
        let mut frame = pool.alloc().expect("alloc");
        frame.copy_from_slice(&arp_reply()).expect("fill");
        let item = FromControl {
            port,
            frame,
            origin,
        };
        assert!(handover.push(item).is_ok(), "room");
    };
    let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);

    // The kernel's frames first, then control's own: the ring fills on the kernel's.
    for _ in 0..KERNEL {
        hand(port, Origin::Kernel(Arc::clone(&kernel)));
    }
    for _ in 0..OWN {
        hand(port, Origin::Control);
    }
    let handled = || handover.is_empty() && load(&kernel.packets) + load(&kernel.tx_full) == KERNEL;
    assert!(
        wait_until(Duration::from_secs(10), handled),
        "the worker sent or refused the kernel's frames: packets {}, tx_full {}",
        load(&kernel.packets),
        load(&kernel.tx_full)
    );
    // The worker publishes about once a millisecond: a wrong count would show by now.
    std::thread::sleep(Duration::from_millis(20));
    let held = ring9.stats().expect("stats").tx_packets;
    let c = lb.counts();
    eprintln!(
        "full ring for control's frames: {KERNEL} + {OWN} handed over, ring9 holds {held}, \
         from-kernel packets {} tx_full {}, worker dropped {}",
        load(&kernel.packets),
        load(&kernel.tx_full),
        c.dropped_total()
    );
    assert!(held > 0 && held < KERNEL, "ring9 filled up ({held})");
    assert_eq!(load(&kernel.packets), held, "packets: what the ring took");
    assert_eq!(
        load(&kernel.tx_full),
        KERNEL - held,
        "every refusal counted"
    );
    assert_eq!(c.dropped_total(), 0, "no packet of the worker's dropped");
    assert_eq!((c.rx, c.tx), (0, 0), "none received, none of its own sent");
    assert_eq!(c.rx, c.tx + c.dropped_total() + c.to_control);
    assert_eq!(pool.in_use() as u64, held, "no refused mbuf leaked");

    // Drained, the ring takes them again; a frame for a port the worker has no path to is
    // refused too.
    let mut drained = 0;
    while drained < held {
        let mut b = Burst::<32>::new();
        drained += sent_out.rx_burst(&mut b) as u64;
    }
    hand(port, Origin::Kernel(Arc::clone(&kernel)));
    hand(port, Origin::Control);
    hand(port, Origin::Kernel(Arc::clone(&kernel)));
    hand(u16::MAX, Origin::Kernel(Arc::clone(&kernel)));
    let handled = || {
        handover.is_empty()
            && load(&kernel.packets) == held + 2
            && load(&kernel.tx_full) == KERNEL - held + 1
    };
    assert!(
        wait_until(Duration::from_secs(10), handled),
        "packets {}, tx_full {}",
        load(&kernel.packets),
        load(&kernel.tx_full)
    );
    let mut out = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while out < 3 && Instant::now() < deadline {
        let mut b = Burst::<32>::new();
        out += sent_out.rx_burst(&mut b) as u64;
    }
    assert_eq!(
        out, 3,
        "two of the kernel's frames and control's own went out"
    );
    std::thread::sleep(Duration::from_millis(20));
    let c = lb.counts();
    assert_eq!((c.rx, c.tx, c.dropped_total()), (0, 0, 0), "{c:?}");

    assert_eq!(lb.workers.join(), 0, "the worker ran to the end");
    assert_eq!(pool.in_use(), 0, "no mbuf leaked");
    drop((sent_out, ring8, ring9));
    assert_eq!(pool.available(), POOL);
}
