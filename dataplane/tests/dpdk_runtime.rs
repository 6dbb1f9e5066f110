//! Runtime on net_ring: two workers, each on its own lcore, forward ring0 -> ring1 and
//! ring2 -> ring3 through run_loop; their per-core counters are read from control, join
//! stops them, and every mbuf comes back to the pool.
#![cfg(feature = "dpdk")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::dpdk::{Burst, Mempool, Port, RxQueue, TxQueue};
use dataplane::runtime::{self, pinning, CoreCounts};

const N: u64 = 500;

/// Injects N marked frames on `inject` and collects what arrives on `collect`.
fn pump(
    pool: &Mempool,
    inject: &mut TxQueue,
    collect: &mut RxQueue,
    expected: u64,
) -> Vec<Vec<u8>> {
    let mut sent = 0u64;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (got.len() as u64) < expected && Instant::now() < deadline {
        let mut out = Burst::<32>::new();
        while sent < N && !out.is_full() {
            let mut m = pool.alloc().expect("alloc");
            m.copy_from_slice(&[(sent % 10) as u8, (sent >> 8) as u8, sent as u8, 0xab])
                .expect("fill");
            out.push(m).expect("room");
            sent += 1;
        }
        let want = out.len() as u64;
        sent -= want - inject.tx_burst(&mut out) as u64;
        let mut inb = Burst::<32>::new();
        collect.rx_burst(&mut inb);
        got.extend(inb.drain().map(|m| m.data().to_vec()));
    }
    got
}

#[test]
fn workers_forward_count_and_stop() {
    // Three lcores on the machine's two CPUs: control on CPU 0, two workers sharing CPU 1.
    let eal = common::eal::init(
        "runtime",
        "0@0,1@1,2@1",
        &[],
        &["net_ring0", "net_ring1", "net_ring2", "net_ring3"],
    );
    assert_eq!(eal.worker_lcores(), vec![1, 2]);

    // Control-side threads stay on the main lcore's CPU, off the worker cores.
    let cpu = pinning::control_cpu(&eal).expect("main lcore cpu");
    assert_eq!(cpu, 0);
    let pinned = pinning::spawn_control_thread(&eal, "sluice-ctl-test", pinning::current_affinity)
        .expect("spawn")
        .join()
        .expect("join");
    assert_eq!(pinned, vec![cpu]);

    let pool = Mempool::new(&eal, "runtime_pool", 4095, 32, 2176, -1).expect("pool");
    let ports: Vec<Port> = (0..4)
        .map(|i| {
            Port::builder(&eal, &format!("net_ring{i}"), &pool)
                .start()
                .expect("port")
        })
        .collect();
    // net_ring loops each port's tx back to its rx: we inject on ring0/ring2's tx, worker k
    // moves ring(2k).rx -> ring(2k+1).tx, and we read the result on ring1/ring3's rx.
    let mut injects: Vec<TxQueue> = [0, 2]
        .iter()
        .map(|&i| ports[i].tx_queue(0).expect("tx"))
        .collect();
    let mut collects: Vec<RxQueue> = [1, 3]
        .iter()
        .map(|&i| ports[i].rx_queue(0).expect("rx"))
        .collect();
    let queues = vec![
        (
            ports[0].rx_queue(0).expect("rx"),
            ports[1].tx_queue(0).expect("tx"),
        ),
        (
            ports[2].rx_queue(0).expect("rx"),
            ports[3].tx_queue(0).expect("tx"),
        ),
    ];
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_by_workers = seen.clone();
    let workers = runtime::launch(&eal, queues, move |mut ctx| {
        seen_by_workers.lock().expect("lock").push((
            ctx.index,
            ctx.lcore,
            dataplane::dpdk::lcore_id(),
        ));
        // Worker 0 drops every 10th packet (first byte 9) to exercise the drop count.
        let drop_marked = ctx.index == 0;
        runtime::run_loop::<32>(&mut ctx, |b: &mut Burst<32>| {
            b.retain_mut(|m| !(drop_marked && m.data()[0] == 9));
        });
    })
    .expect("launch");
    assert_eq!(workers.lcores(), &[1, 2]);

    let got0 = pump(&pool, &mut injects[0], &mut collects[0], N - N / 10);
    let got1 = pump(&pool, &mut injects[1], &mut collects[1], N);
    assert_eq!(got0.len() as u64, N - N / 10);
    assert!(got0.iter().all(|f| f[0] != 9 && f[3] == 0xab));
    assert_eq!(got1.len() as u64, N);

    let counters = workers.counters().clone();
    assert_eq!(workers.join(), 0, "no worker failed");
    let mut seen = seen.lock().expect("lock").clone();
    seen.sort();
    assert_eq!(
        seen,
        vec![(0, 1, 1), (1, 2, 2)],
        "(worker, lcore, rte_lcore_id)"
    );
    assert_eq!(
        counters.core(0),
        Some(CoreCounts {
            rx: N,
            tx: N - N / 10,
            dropped: N / 10
        })
    );
    assert_eq!(
        counters.core(1),
        Some(CoreCounts {
            rx: N,
            tx: N,
            dropped: 0
        })
    );
    assert_eq!(counters.total().rx, 2 * N);

    drop((injects, collects, ports));
    assert_eq!(pool.in_use(), 0, "every mbuf is back in the pool");
    drop((pool, eal));
}
