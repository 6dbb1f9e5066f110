//! EAL smoke test on net_ring: the vdev driver is found (dynamic or static-dpdk), N packets
//! go out and come back byte for byte, and the mempool is full again afterwards.
#![cfg(feature = "dpdk")]

mod common;

use dataplane::dpdk::{Burst, DpdkError, Eal, Mempool, Offloads, Port};

const N: usize = 1000;
const POOL: u32 = 2047;

fn frame(i: usize) -> Vec<u8> {
    // Distinct frames of varying length (60..=187 bytes) carrying their index.
    let len = 60 + i % 128;
    let mut f: Vec<u8> = (0..len).map(|b| (b * 7 + i) as u8).collect();
    f[..8].copy_from_slice(&(i as u64).to_be_bytes());
    f
}

#[test]
fn net_ring_round_trip_returns_every_mbuf() {
    let eal = common::eal::init("ring", "0", &[], &["net_ring0"]);
    assert!(matches!(
        Eal::init(&["--no-huge"]),
        Err(DpdkError::AlreadyInitialised)
    ));
    assert!(
        eal.port_count() >= 1,
        "net_ring driver not found: no ethdev port"
    );
    assert!(dataplane::dpdk::version().starts_with("DPDK "));
    // Where the driver came from: Debian's plugin directory (shared EAL), or linked in.
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let shared_eal = maps.contains("librte_eal.so");
    let ring_plugin = maps.contains("librte_net_ring.so");
    if cfg!(feature = "static-dpdk") {
        assert!(
            !shared_eal && !ring_plugin,
            "static-dpdk must not load DPDK's .so files"
        );
    } else {
        assert!(
            shared_eal && ring_plugin,
            "net_ring should come from the plugin dir"
        );
    }
    // Control-side threads go to the main lcore's CPU.
    let cpu = dataplane::runtime::pinning::control_cpu(&eal).expect("main lcore cpu");
    let affinity = dataplane::runtime::pinning::spawn_control_thread(
        &eal,
        "sluice-ctl-test",
        dataplane::runtime::pinning::current_affinity,
    )
    .expect("spawn")
    .join()
    .expect("join");
    assert_eq!(affinity, vec![cpu]);

    let pool = Mempool::new(&eal, "ring_test_pool", POOL, 32, 2176, -1).expect("pool");
    assert_eq!(pool.capacity(), POOL);
    assert_eq!(
        Port::builder(&eal, "net_nosuch0", &pool).start().err(),
        Some(DpdkError::NoSuchDevice("net_nosuch0".into()))
    );
    // Refused requests leave the device untouched and usable.
    assert!(matches!(
        Port::builder(&eal, "net_ring0", &pool)
            .mtu(10)
            .start()
            .err(),
        Some(DpdkError::OutOfRange { what: "mtu", .. })
    ));
    assert!(matches!(
        Port::builder(&eal, "net_ring0", &pool)
            .queues(64, 1)
            .start()
            .err(),
        Some(DpdkError::OutOfRange {
            what: "rx queues",
            ..
        })
    ));
    let port = Port::builder(&eal, "net_ring0", &pool)
        .descriptors(512, 512)
        .start()
        .expect("port start");
    assert!(port.link().expect("link").up);
    // net_ring offers no RSS and no checksum offloads, so none are enabled.
    assert_eq!(port.offloads(), Offloads::default());
    let mut rx = port.rx_queue(0).expect("rx queue");
    let mut tx = port.tx_queue(0).expect("tx queue");
    assert!(port.rx_queue(0).is_err(), "a queue can be taken only once");
    assert!(port.tx_queue(1).is_err(), "queue 1 does not exist");
    let in_rings = pool.in_use();

    // Send N frames in bursts of 32; net_ring loops tx back to rx.
    let mut received = Vec::new();
    let mut sent = 0;
    while sent < N || received.len() < N {
        let mut out = Burst::<32>::new();
        while sent + out.len() < N && !out.is_full() {
            let mut m = pool.alloc().expect("alloc");
            m.copy_from_slice(&frame(sent + out.len())).expect("fill");
            out.push(m).expect("room");
        }
        let want = out.len();
        let n = tx.tx_burst(&mut out);
        assert_eq!(out.len(), want - n, "unsent tail stays in the burst");
        sent += n;
        drop(out); // frees an unsent tail, if any
        let mut inb = Burst::<32>::new();
        rx.rx_burst(&mut inb);
        received.extend(inb.drain().map(|m| m.data().to_vec()));
    }
    assert_eq!(received.len(), N);
    for (i, got) in received.iter().enumerate() {
        assert_eq!(got, &frame(i), "frame {i}");
    }
    let stats = port.stats().expect("stats");
    assert_eq!((stats.tx_packets, stats.rx_packets), (N as u64, N as u64));

    // Mbuf editing stays inside the buffer.
    let mut m = pool.alloc().expect("alloc");
    m.copy_from_slice(b"payload").expect("fill");
    let head = m.headroom();
    m.prepend(4).expect("prepend").copy_from_slice(b"hdr:");
    assert_eq!(m.data(), b"hdr:payload");
    m.adj(4).expect("adj");
    m.append(1).expect("append")[0] = b'!';
    assert_eq!(m.data(), b"payload!");
    m.trim(1).expect("trim");
    assert_eq!(m.headroom(), head);
    assert!(m.prepend(head + 1).is_err());
    assert!(m.append(m.tailroom() + 1).is_err());
    assert!(m.adj(100).is_err());
    assert!(m.set_data_range(m.buf_len() - 1, 2).is_err());
    assert_eq!(m.data(), b"payload", "a refused edit changes nothing");
    let buf = m.buffer_mut();
    assert_eq!((buf.data_off, buf.data_len), (head, 7));
    drop(m);

    // retain_mut frees what it rejects.
    let mut b = Burst::<8>::new();
    for i in 0..8u8 {
        let mut m = pool.alloc().expect("alloc");
        m.copy_from_slice(&[i]).expect("fill");
        b.push(m).expect("room");
    }
    assert_eq!(b.retain_mut(|m| m.data()[0] % 2 == 0), 4);
    let kept: Vec<u8> = b.iter().map(|m| m.data()[0]).collect();
    assert_eq!(kept, [0, 2, 4, 6]);
    drop(b);

    assert_eq!(pool.in_use(), in_rings, "every mbuf is back in the pool");
    drop((rx, tx, port));
    assert_eq!(
        pool.available(),
        POOL,
        "closing the port returned its ring mbufs"
    );
    // The EAL's drop removes its runtime directory too (common::eal).
    drop((pool, eal));
}
