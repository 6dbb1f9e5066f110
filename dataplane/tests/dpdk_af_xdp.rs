//! net_af_xdp (DPDK's AF_XDP driver) on a veth pair in a network namespace of the test's own:
//! the driver is there (Debian's plugin, or linked in with static-dpdk), the port starts, and
//! frames go both ways byte for byte. The namespace, and the veth with it, ends with the test.
#![cfg(feature = "dpdk")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::packet_socket::PacketSocket;
use dataplane::dpdk::{Burst, Mempool, Port};

/// An ethertype for local experiments (IEEE 802), so the kernel's own frames are told apart.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const FRAMES: usize = 64;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Frame `i`: broadcast, our ethertype, its index, a length of 60 to 123 bytes.
fn frame(i: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&ETHERTYPE);
    f.extend_from_slice(&(i as u32).to_be_bytes());
    f.resize(60 + i % 64, i as u8);
    f
}

#[test]
fn net_af_xdp_carries_frames_both_ways_on_a_veth() {
    // Only this thread changes namespace; the EAL's threads, started from it, follow it.
    // SAFETY: unshare(2) with a constant flag; it touches no memory of ours.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET) (needs root): {}",
        std::io::Error::last_os_error()
    );
    ip(&[
        "link", "add", "slx0", "type", "veth", "peer", "name", "slx1",
    ]);
    ip(&["link", "set", "slx0", "up"]);
    ip(&["link", "set", "slx1", "up"]);

    let eal = common::eal::init("af_xdp", "0", &[], &["net_af_xdp0,iface=slx0"]);
    assert!(eal.port_count() >= 1, "net_af_xdp driver not found");
    let pool = Mempool::new(&eal, "af_xdp_pool", 4095, 32, 2176, -1).expect("pool");
    let port = Port::builder(&eal, "net_af_xdp0", &pool)
        .start()
        .expect("af_xdp port");
    let mut tx = port.tx_queue(0).expect("tx queue");
    let mut rx = port.rx_queue(0).expect("rx queue");

    // Out of the port: each arrives on the peer as sent.
    let peer = PacketSocket::receiver("slx1");
    for i in 0..FRAMES {
        let mut m = pool.alloc().expect("mbuf");
        m.copy_from_slice(&frame(i)).expect("fits");
        let mut one = Burst::<1>::new();
        assert!(one.push(m).is_ok());
        assert_eq!(tx.tx_burst(&mut one), 1, "frame {i} not taken");
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < FRAMES && Instant::now() < deadline {
        if let Some(f) = peer.recv().filter(|f| f[12..14] == ETHERTYPE) {
            seen.push(f);
        }
    }
    let sent: Vec<Vec<u8>> = (0..FRAMES).map(frame).collect();
    assert_eq!(seen, sent, "what the peer received");

    // Into the port: what the peer sends comes out of rx_burst.
    let sender = PacketSocket::sender("slx1");
    for f in &sent {
        sender.send(f);
    }
    let mut got = Vec::new();
    let mut burst = Burst::<32>::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < FRAMES && Instant::now() < deadline {
        rx.rx_burst(&mut burst);
        for m in burst.drain() {
            if m.data()[12..14] == ETHERTYPE {
                got.push(m.data().to_vec());
            }
        }
    }
    assert_eq!(got, sent, "what the port received");
}
