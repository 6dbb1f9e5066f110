//! Two real workers (`LbWorker::run` on two EAL lcores) sharing nat connections: clients'
//! packets arrive at worker 0's port, backends' replies at worker 1's (a two-armed appliance,
//! one worker per interface). Whichever worker a packet reaches, the connection's owner
//! translates it: the other hands the mbuf over through the owner's inbound queue. Both
//! directions of a connection owned by each worker are checked, then no mbuf is left out, and
//! frames left in a stopping worker's queue are counted as drops, as is one handed to a worker
//! that already stopped (freed once all have).
#![cfg(feature = "dpdk")]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::nat::*;
use common::*;
use crossbeam_queue::ArrayQueue;
use dataplane::dpdk::{Burst, Mempool, Port, RxQueue, TxQueue};
use dataplane::rcu;
use dataplane::runtime;
use dataplane::steer::owner;
use dataplane::worker::{LbWorker, Redirect, TxPath, WorkerStats};
use dataplane::{Counters, DropReason};

const POOL: u32 = 1023;

/// The first frame to arrive on `rx` within `limit`, its bytes.
fn receive(rx: &mut RxQueue, limit: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let mut b = Burst::<4>::new();
        if rx.rx_burst(&mut b) > 0 {
            let first = b.iter().next().map(|m| m.data().to_vec());
            assert_eq!(b.len(), 1, "one frame at a time");
            return first;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    None
}

fn inject(pool: &Mempool, tx: &mut TxQueue, frame: &[u8]) {
    let mut m = pool.alloc().expect("alloc");
    m.copy_from_slice(frame).expect("fill");
    let mut b = Burst::<1>::new();
    b.push(m).expect("room");
    assert_eq!(tx.tx_burst(&mut b), 1, "injected");
}

/// A TCP packet of connection (client port `cport`) to nat service NAT_TCP4, or its reply.
fn client_syn(cport: u16) -> Vec<u8> {
    build(
        &Hdr {
            smac: ROUTER_MAC,
            dmac: OUR_MAC,
            src: m4(CLIENT4),
            dst: m4(VIP4_NAT),
            ttl: 64,
            sport: cport,
            dport: 80,
            l4: L4::Tcp(Tcp::Syn),
        },
        b"",
    )
}

fn backend_reply(cport: u16) -> Vec<u8> {
    build(
        &Hdr {
            smac: BE_GW_MAC,
            dmac: BE_IF_MAC,
            src: m4(be4(140)),
            dst: m4(CLIENT4),
            ttl: 64,
            sport: 8080,
            dport: cport,
            l4: L4::Tcp(Tcp::Ack),
        },
        b"",
    )
}

#[test]
fn two_workers_hand_each_other_their_connections() {
    // Ports in vdev order: 0 = clients' side (PORT), 1 = backends' side (BE_PORT); each loops
    // its tx to its rx, so we inject on their tx. 2 and 3 collect what the workers send to
    // the clients and to the backends (one tx queue per worker, read back on its rx queue).
    let eal = common::eal::init(
        "redirect",
        "0@0,1@1,2@1",
        &[],
        &[
            "net_ring0",
            "net_ring1",
            "net_ring2",
            "net_ring3",
            "net_ring4",
        ],
    );
    let pool = Mempool::new(&eal, "redirect_pool", POOL, 0, 2176, -1).expect("pool");
    let start = |name: &str, rx: u16, tx: u16| {
        Port::builder(&eal, name, &pool)
            .queues(rx, tx)
            .start()
            .expect(name)
    };
    let (clients, backends) = (start("net_ring0", 1, 1), start("net_ring1", 1, 1));
    // Collector 2's tx queues 2 and 3: what the runtime hands each worker, unused here.
    let (to_clients, to_backends) = (start("net_ring2", 2, 4), start("net_ring3", 2, 2));
    assert_eq!((clients.id(), backends.id()), (PORT, BE_PORT));

    let snap = nat_snapshot(DrainState::Normal);
    let (publisher, mut readers) = rcu::new(nat_snapshot(DrainState::Normal), 3);
    // The third reader is for the worker that stops at once, below.
    let late_reader = readers.pop().expect("three readers");
    let queues = Redirect::queues(2, 64);
    let stats: Vec<Arc<WorkerStats>> = (0..2).map(|_| Arc::default()).collect();
    let mut parts = Vec::new();
    for (w, reader) in readers.into_iter().enumerate() {
        let q = w as u16;
        // Each worker's path for port 0 (1) leads to collector 2 (3), on its own queue.
        let mut paths = [
            TxPath::new(to_clients.tx_queue(q).expect("tx")),
            TxPath::new(to_backends.tx_queue(q).expect("tx")),
        ];
        paths[0].port = PORT;
        paths[1].port = BE_PORT;
        parts.push(Mutex::new(Some((reader, paths, stats[w].clone()))));
    }
    let parts = Arc::new(parts);
    let inbound = Arc::clone(&queues);
    // Per worker: asked to stop on its own, and has stopped (its queue emptied, counted).
    let flags: Arc<[(AtomicBool, AtomicBool); 2]> = Arc::default();
    let flags_of_workers = Arc::clone(&flags);
    let pairs = vec![
        (
            clients.rx_queue(0).expect("rx"),
            to_clients.tx_queue(2).expect("tx"),
        ),
        (
            backends.rx_queue(0).expect("rx"),
            to_clients.tx_queue(3).expect("tx"),
        ),
    ];
    let workers = runtime::launch(&eal, pairs, move |ctx| {
        let stop = ctx.stop_flag();
        let runtime::WorkerContext { index, rx, .. } = ctx;
        let Some((snapshot, paths, stats)) = parts[index].lock().unwrap().take() else {
            return;
        };
        let mut worker = LbWorker {
            rx,
            tx: paths.into_iter().collect(),
            kernel: None,
            pipeline: nat_pipeline(index as u16, 2),
            snapshot,
            to_control: Arc::new(ArrayQueue::new(8)),
            from_control: None,
            stats,
            tsc_hz: dataplane::worker::tsc_hz(),
            redirect: Some(Redirect {
                queues: Arc::clone(&inbound),
                index,
            }),
        };
        let own = Arc::clone(&flags_of_workers);
        worker.run(move || stop.load(Ordering::Relaxed) || own[index].0.load(Ordering::Relaxed));
        flags_of_workers[index].1.store(true, Ordering::Release);
    })
    .expect("launch");

    // A client port owned by each worker.
    let cport_of = |w: u16| {
        (40_000u16..)
            .find(|&p| owner(&client_syn(p), &snap, 2) == Some(w))
            .unwrap()
    };
    let mut inject_clients = clients.tx_queue(0).expect("tx");
    let mut inject_backends = backends.tx_queue(0).expect("tx");
    let mut collect = [
        [
            to_clients.rx_queue(0).expect("rx"),
            to_clients.rx_queue(1).expect("rx"),
        ],
        [
            to_backends.rx_queue(0).expect("rx"),
            to_backends.rx_queue(1).expect("rx"),
        ],
    ];
    let limit = Duration::from_secs(5);
    for w in 0..2u16 {
        let cport = cport_of(w);
        assert_eq!(owner(&backend_reply(cport), &snap, 2), Some(w));
        // The client's packet arrives at worker 0; the owner sends it to the backend.
        inject(&pool, &mut inject_clients, &client_syn(cport));
        let out = receive(&mut collect[1][usize::from(w)], limit).expect("to the backend");
        assert_eq!(addrs(&out), (m4(CLIENT4), m4(be4(140))));
        assert_eq!(ports(&out), (cport, 8080));
        // The backend's reply arrives at worker 1; the owner sends it to the client.
        inject(&pool, &mut inject_backends, &backend_reply(cport));
        let out = receive(&mut collect[0][usize::from(w)], limit).expect("to the client");
        assert_eq!(addrs(&out), (m4(VIP4_NAT), m4(CLIENT4)));
        assert_eq!(ports(&out), (80, cport));
    }
    for c in collect.iter_mut().flatten() {
        assert_eq!(
            receive(c, Duration::from_millis(50)),
            None,
            "nothing else sent"
        );
    }

    // Worker 0 stops first; worker 1, still running, then hands it a reply of a connection it
    // owns, which nobody will process.
    flags[0].0.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + limit;
    while !flags[0].1.load(Ordering::Acquire) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(flags[0].1.load(Ordering::Acquire), "worker 0 stopped");
    inject(&pool, &mut inject_backends, &backend_reply(cport_of(0)));
    while queues[0].is_empty() && Instant::now() < deadline + limit {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(workers.join(), 0, "both workers ran to the end");
    assert_eq!(queues[0].len(), 1, "handed to a stopped worker");
    // Each worker handed the other one packet (worker 0 a client's, worker 1 a reply); worker 1
    // then the late one.
    let copies = || -> Vec<Counters> { stats.iter().map(|s| s.lock().unwrap().clone()).collect() };
    let before = copies();
    assert_eq!(before[0].nat_redirected, 1);
    assert_eq!(before[1].nat_redirected, 2);
    // A redirected packet is received once (where it arrived) and decided twice.
    let total = Counters::sum(&before);
    assert_eq!((total.rx, total.tx, total.processed), (5, 4, 7));
    assert_eq!(total.dropped_total(), 0, "the late one has no outcome yet");
    // Once every worker stopped: freed and counted as its owner's drop.
    assert_eq!(Redirect::discard_stopped(&queues, &stats), 1);
    let after = copies();
    assert_eq!(after[0].dropped(DropReason::RedirectQueueFull), 1);
    assert_eq!(after[1].dropped_total(), 0);
    let total = Counters::sum(&after);
    assert_eq!(
        total.rx,
        total.tx + total.dropped_total() + total.to_control,
        "every received packet has an outcome"
    );
    assert!(queues.iter().all(|q| q.is_empty()));
    assert_eq!(pool.in_use(), 0, "no mbuf leaked");

    // Frames still in a worker's inbound queue when it stops are left there, for
    // `discard_stopped` to free and count as drops once every worker has stopped.
    let spare = start("net_ring4", 1, 1);
    let inbound = Redirect::queues(1, 4);
    for _ in 0..2 {
        inbound[0].push(pool.alloc().expect("alloc")).expect("room");
    }
    let late = Arc::new(WorkerStats::default());
    let mut worker = LbWorker {
        rx: spare.rx_queue(0).expect("rx"),
        tx: vec![TxPath::new(spare.tx_queue(0).expect("tx"))],
        kernel: None,
        pipeline: nat_pipeline(0, 1),
        snapshot: late_reader,
        to_control: Arc::new(ArrayQueue::new(8)),
        from_control: None,
        stats: Arc::clone(&late),
        tsc_hz: dataplane::worker::tsc_hz(),
        redirect: Some(Redirect {
            queues: Arc::clone(&inbound),
            index: 0,
        }),
    };
    worker.run(|| true);
    assert_eq!(inbound[0].len(), 2, "left for discard_stopped");
    assert_eq!(late.lock().unwrap().dropped_total(), 0);
    assert_eq!(Redirect::discard_stopped(&inbound, &[Arc::clone(&late)]), 2);
    let c = late.lock().unwrap().clone();
    assert_eq!(c.dropped(DropReason::RedirectQueueFull), 2);
    assert_eq!(c.dropped_total(), 2);
    assert!(inbound[0].is_empty());
    assert_eq!(pool.in_use(), 0, "no mbuf leaked");
    drop(worker);
    drop(publisher);
}
