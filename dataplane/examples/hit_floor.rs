//! The least work an IPv4 IPIP flow hit can be, timed the way `ipp --time R --buffers ring`
//! times sluice's pipeline: a floor for issue 19 item 1, not a forwarder.
//!
//! Per packet: the frame copied into one of 32 recycled buffers (memif's rx copy); Ethernet,
//! IPv4 (IHL 5, length, not a fragment, header checksum) and TCP checked at fixed offsets; the
//! VIP found in a direct-indexed table; the 5-tuple hashed as sluice hashes it; a flow table of
//! 32-byte entries with the whole key, two to a cache line, one line per hit, prefetched in a
//! first pass over the burst and read in a second (as sluice does); the expiry refreshed; a
//! precomputed Ethernet and outer IPv4 header written in front, the inner TOS copied into it
//! and the outer checksum finished from a precomputed partial sum; the inner packet untouched
//! (sluice tunnels it as it came); per-backend packet and byte counters. No SYN handling, no
//! misses, no IPv6, no snapshot, no verdicts: everything sluice does beyond this is what the
//! floor leaves out.
//!
//! usage: hit_floor [--flows F] [--capacity ENTRIES] [--packets N] [--time ROUNDS]
//! Prints the median, min and max ns per packet over ROUNDS rounds of N packets cycling over F
//! flows (table: the next power of two >= max(2F, ENTRIES) entries, in transparent huge pages
//! when the kernel gives them; `ipp`'s capacity spreads the flows as widely as sluice's), and
//! the median of the same rounds copying the frames alone (`copy_ns`, memif's share, which
//! testpmd `io` pays too). Exits 1 unless every packet was a hit.

use std::time::Instant;

use dataplane::checksum::{self, ipv4_header20_ok};
use dataplane::hugepages;
use maglev::flow::five_tuple_v4;

const HEADROOM: usize = 128;
const BUF: usize = 256;
const FRAME_LEN: usize = 60;
const BURST: usize = 32;
const BACKENDS: usize = 100;
const VIP: [u8; 4] = [198, 51, 100, 10];
const VIP_PORT: u16 = 80;
const OUTER_SRC: [u8; 4] = [192, 0, 2, 10];
const TIMEOUT: u32 = 300;

/// One flow: the key as two words, the backend and the expiry (seconds): 32 bytes, two a line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Entry {
    addrs: u64,
    ports_proto: u64,
    backend: u32,
    expires: u32,
}

#[repr(C, align(64))]
#[derive(Clone, Copy, Default)]
struct Line([Entry; 2]);

/// What a backend's packets get in front: Ethernet and outer IPv4 with all but the length.
struct Backend {
    eth: [u8; 14],
    outer: [u8; 20],
    /// One's-complement sum of `outer` without its length and checksum fields.
    partial: u32,
    packets: u64,
    bytes: u64,
}

/// A burst slot between the two phases.
#[derive(Clone, Copy, Default)]
struct Pending {
    ok: bool,
    line: usize,
    addrs: u64,
    ports_proto: u64,
}

struct Floor {
    lines: Box<[Line]>,
    mask: usize,
    /// VIP table: (dst, port, proto) by a byte of their mix; 0 = none, else service + 1.
    vips: [(u64, u8); 256],
    backends: Vec<Backend>,
    hits: u64,
    misses: u64,
    drops: u64,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn vip_key(dst: [u8; 4], port: u16, proto: u8) -> u64 {
    (u64::from(u32::from_be_bytes(dst)) << 24) | (u64::from(port) << 8) | u64::from(proto)
}

fn vip_index(key: u64) -> usize {
    ((key ^ (key >> 13) ^ (key >> 29)) & 255) as usize
}

impl Floor {
    fn new(flows: usize, capacity: usize) -> Floor {
        let entries = (2 * flows).max(capacity).next_power_of_two().max(64);
        let n = entries / 2;
        // In transparent huge pages, as sluice's flow table is.
        let lines = hugepages::filled(n, Line::default());
        let mut vips = [(0u64, 0u8); 256];
        let key = vip_key(VIP, VIP_PORT, 6);
        vips[vip_index(key)] = (key, 1);
        let backends = (0..BACKENDS)
            .map(|i| {
                let mut eth = [0u8; 14];
                eth[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
                eth[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x10]);
                eth[12..].copy_from_slice(&[0x08, 0x00]);
                let mut outer = [0u8; 20];
                outer[0] = 0x45;
                outer[6] = 0x40; // DF
                outer[8] = 64;
                outer[9] = 4; // IPIP
                outer[12..16].copy_from_slice(&OUTER_SRC);
                outer[16..20].copy_from_slice(&[203, 0, 113, (i + 1) as u8]);
                let partial = checksum::add(0, &outer);
                Backend {
                    eth,
                    outer,
                    partial,
                    packets: 0,
                    bytes: 0,
                }
            })
            .collect();
        Floor {
            lines,
            mask: n - 1,
            vips,
            backends,
            hits: 0,
            misses: 0,
            drops: 0,
        }
    }

    fn insert(&mut self, f: &[u8], backend: u32, now: u32) {
        let (addrs, ports_proto, hash) = key_of(f);
        let mut line = hash as usize & self.mask;
        loop {
            for e in self.lines[line].0.iter_mut() {
                if e.expires == 0 {
                    *e = Entry {
                        addrs,
                        ports_proto,
                        backend,
                        expires: now + TIMEOUT,
                    };
                    return;
                }
            }
            line = (line + 1) & self.mask;
        }
    }

    /// Phase one: check, classify, hash, prefetch.
    #[inline(always)]
    fn check(&self, f: &[u8]) -> Pending {
        let bad = Pending::default();
        let Some(h) = f.get(..54) else { return bad };
        let ih: &[u8; 20] = match h[14..34].try_into() {
            Ok(ih) => ih,
            Err(_) => return bad,
        };
        let total = usize::from(be16(h, 16));
        if be16(h, 12) != 0x0800
            || h[14] != 0x45
            || total > f.len() - 14
            || total < 40
            || be16(h, 20) & 0x3fff != 0
            || h[23] != 6
            || h[22] == 0
            || !ipv4_header20_ok(ih)
        {
            return bad;
        }
        let hl = usize::from(h[46] >> 4) * 4;
        if hl < 20 || hl > total - 20 {
            return bad;
        }
        let dst = [h[30], h[31], h[32], h[33]];
        let dport = be16(h, 36);
        let vk = vip_key(dst, dport, 6);
        if self.vips[vip_index(vk)] != (vk, 1) {
            return bad;
        }
        let (addrs, ports_proto, hash) = key_of(h);
        let line = hash as usize & self.mask;
        prefetch(&self.lines[line]);
        Pending {
            ok: true,
            line,
            addrs,
            ports_proto,
        }
    }

    /// Phase two: find the flow, rewrite in place; returns the new data start and length.
    #[inline(always)]
    fn forward(&mut self, p: &Pending, buf: &mut [u8; BUF], now: u32) -> (usize, usize) {
        if !p.ok {
            self.drops += 1;
            return (0, 0);
        }
        let mut line = p.line;
        let backend = loop {
            let l = &mut self.lines[line].0;
            if let Some(e) = l
                .iter_mut()
                .find(|e| e.addrs == p.addrs && e.ports_proto == p.ports_proto)
            {
                e.expires = now + TIMEOUT;
                break e.backend as usize;
            }
            if l[1].expires == 0 {
                self.misses += 1;
                return (0, 0);
            }
            line = (line + 1) & self.mask;
        };
        self.hits += 1;
        let Some(be) = self.backends.get_mut(backend) else {
            self.drops += 1;
            return (0, 0);
        };
        let ip = HEADROOM + 14;
        let total = usize::from(be16(buf, ip + 2));
        let tos = buf[ip + 1];
        let outer_len = (total + 20) as u16;
        let start = ip - 20 - 14;
        buf[start..start + 14].copy_from_slice(&be.eth);
        let o = start + 14;
        buf[o..o + 20].copy_from_slice(&be.outer);
        buf[o + 1] = tos;
        buf[o + 2..o + 4].copy_from_slice(&outer_len.to_be_bytes());
        // The TOS is the low byte of the header's first word, whose partial sum had it at 0.
        let sum = checksum::finish(be.partial + u32::from(outer_len) + u32::from(tos));
        buf[o + 10..o + 12].copy_from_slice(&sum.to_be_bytes());
        be.packets += 1;
        be.bytes += u64::from(outer_len);
        (start, 14 + total + 20)
    }
}

fn key_of(h: &[u8]) -> (u64, u64, u32) {
    let src = [h[26], h[27], h[28], h[29]];
    let dst = [h[30], h[31], h[32], h[33]];
    let (sport, dport, proto) = (be16(h, 34), be16(h, 36), h[23]);
    let addrs = (u64::from(u32::from_ne_bytes(src)) << 32) | u64::from(u32::from_ne_bytes(dst));
    let ports_proto = (u64::from(sport) << 24) | (u64::from(dport) << 8) | u64::from(proto);
    (
        addrs,
        ports_proto,
        five_tuple_v4(src, dst, sport, dport, proto),
    )
}

fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into the program.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (p as *const T).cast(),
        );
    }
}

/// A 60-byte TCP ACK from 192.0.2.x / 203.0.113.x clients to the VIP, flow `i`.
fn frame(i: u32) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x10]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0xc1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[1] = 0x28; // DSCP AF11: the outer header must carry it
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    let net = if i & 1 == 0 {
        [192, 0, 2]
    } else {
        [203, 0, 113]
    };
    ip[12..16].copy_from_slice(&[net[0], net[1], net[2], (i >> 1) as u8]);
    ip[16..20].copy_from_slice(&VIP);
    let c = checksum::of(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let sport = 1024 + (i >> 9) as u16;
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&VIP_PORT.to_be_bytes());
    f[46] = 5 << 4;
    f[47] = 0x10; // ACK
    f
}

#[inline(never)]
fn region(
    floor: &mut Floor,
    templates: &[[u8; FRAME_LEN]],
    ring: &mut [[u8; BUF]; BURST],
    now: u32,
) -> usize {
    let mut pending = [Pending::default(); BURST];
    let mut out = 0usize;
    for chunk in templates.chunks(BURST) {
        for ((b, t), p) in ring.iter_mut().zip(chunk).zip(pending.iter_mut()) {
            b[HEADROOM..HEADROOM + FRAME_LEN].copy_from_slice(t);
            *p = floor.check(&b[HEADROOM..HEADROOM + FRAME_LEN]);
        }
        for (b, p) in ring.iter_mut().zip(&pending).take(chunk.len()) {
            let (start, len) = floor.forward(p, b, now);
            out = out.wrapping_add(start ^ len);
        }
    }
    std::hint::black_box(&ring);
    out
}

/// The floor rewrites for real: Ethernet, an outer IPv4 header (IPIP) and the inner packet
/// untouched, both checksums valid.
fn check_output(buf: &[u8; BUF]) -> Result<(), String> {
    let start = HEADROOM - 20;
    let outer: &[u8; 20] = buf[start + 14..start + 34]
        .try_into()
        .map_err(|_| "length")?;
    let inner: &[u8; 20] = buf[HEADROOM + 14..HEADROOM + 34]
        .try_into()
        .map_err(|_| "length")?;
    let want = [
        (be16(buf, start + 12) == 0x0800, "outer ethertype"),
        (
            outer[0] == 0x45 && outer[9] == 4,
            "outer version or protocol",
        ),
        (usize::from(be16(outer, 2)) == 20 + 40, "outer length"),
        (ipv4_header20_ok(outer), "outer checksum"),
        (inner[8] == 64 && inner[1] == outer[1], "inner TTL or TOS"),
        (ipv4_header20_ok(inner), "inner checksum"),
    ];
    match want.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(what.to_string()),
        None => Ok(()),
    }
}

/// The region's copies alone: what the floor's time includes of memif's rx copy.
#[inline(never)]
fn copy_only(templates: &[[u8; FRAME_LEN]], ring: &mut [[u8; BUF]; BURST]) {
    for chunk in templates.chunks(BURST) {
        for (b, t) in ring.iter_mut().zip(chunk) {
            b[HEADROOM..HEADROOM + FRAME_LEN].copy_from_slice(t);
        }
        std::hint::black_box(&ring);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().unwrap_or(default))
    };
    let flows = arg("--flows", 1_000_000).clamp(1, 1 << 24);
    let packets = arg("--packets", 65536).max(BURST);
    let rounds = arg("--time", 9).max(1);
    let capacity = arg("--capacity", 0).min(1 << 26);
    let mut floor = Floor::new(flows, capacity);
    let table = maglev::Table::build(
        65537,
        &(0..BACKENDS)
            .map(|i| maglev::Backend::new(format!("203.0.113.{}", i + 1), 1))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|e| {
        eprintln!("hit_floor: maglev: {e}");
        std::process::exit(2)
    });
    for i in 0..flows as u32 {
        let f = frame(i);
        let (_, _, hash) = key_of(&f);
        floor.insert(&f, table.lookup(hash), 1);
    }
    // The packets cycle over the flows in a fixed shuffled order, as ipp's do.
    let mut order: Vec<u32> = (0..flows as u32).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let templates: Vec<[u8; FRAME_LEN]> = (0..packets)
        .map(|k| frame(order[k % order.len()]))
        .collect();
    let mut ring = [[0u8; BUF]; BURST];
    region(&mut floor, &templates, &mut ring, 2);
    if let Err(e) = check_output(&ring[0]) {
        eprintln!("hit_floor: the rewritten frame is wrong: {e}");
        std::process::exit(1);
    }
    let (mut ns, mut copy) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for r in 0..rounds {
        let start = Instant::now();
        std::hint::black_box(region(&mut floor, &templates, &mut ring, 3 + r as u32));
        ns.push(start.elapsed().as_nanos() as f64 / packets as f64);
        let start = Instant::now();
        copy_only(&templates, &mut ring);
        copy.push(start.elapsed().as_nanos() as f64 / packets as f64);
    }
    let expected = (packets * (rounds + 1)) as u64;
    if floor.hits != expected || floor.misses != 0 || floor.drops != 0 {
        eprintln!(
            "hit_floor: {} hits, {} misses, {} drops of {expected} packets",
            floor.hits, floor.misses, floor.drops
        );
        std::process::exit(1);
    }
    let counted: u64 = floor.backends.iter().map(|b| b.packets).sum();
    if counted != expected {
        eprintln!("hit_floor: backend counters sum to {counted}, not {expected}");
        std::process::exit(1);
    }
    ns.sort_by(f64::total_cmp);
    copy.sort_by(f64::total_cmp);
    println!(
        "{{\"flows\":{flows},\"packets\":{packets},\"rounds\":{rounds},\"ns_per_packet\":{{\"min\":{:.1},\"median\":{:.1},\"max\":{:.1}}},\"copy_ns\":{:.1}}}",
        ns[0],
        ns[ns.len() / 2],
        ns[ns.len() - 1],
        copy[copy.len() / 2]
    );
}
