//! Instructions per packet of the pure pipeline for a flow hit and a flow miss, meant to run
//! under `valgrind --tool=callgrind --toggle-collect='*ipp_measured_region*'` (bench/callgrind.sh):
//! everything outside `ipp_measured_region` (snapshot, Maglev tables, packet building, warm-up)
//! is left out of the count.
//!
//! Long (about 600 lines): one measurement binary; its set-up (snapshot, frames, warm-up) and
//! checks stay next to the region it keeps out of the count.
//!
//! usage: ipp --mode ipip|gue|l2-dsr|nat|fullnat --path hit|miss-syn|miss-ack|reply
//!        [--packets N] [--flows F]
//!        [--api burst|one] [--capacity ENTRIES] [--time ROUNDS] [--buffers own|ring]
//!        [--rx-checksum none|good]
//!
//! hit: F flows are opened (SYN, then one ACK) before the region; the region sends N ACKs
//! cycling over them. miss-syn: every packet of the region is a SYN of a new flow (Maglev and
//! insert). miss-ack: every packet is a non-SYN of an unknown flow (lookup fails, then Maglev
//! and insert; what a failover or a lost entry costs). Frames are 60 bytes (a 64-byte frame
//! without its FCS). Exits 1 unless every packet was forwarded and the flow table grew as the
//! path says. `--time R` instead times the three paths natively, alternating them R times in
//! this one process, and prints ns/packet and the per-round miss/hit ratios.
//! `--rx-checksum good` marks every frame as one whose IPv4 header checksum the NIC checked
//! (`Frame::ipv4_checksum_good`, what the worker sets from the mbuf's rx flags), so the parser
//! trusts it instead of summing the header; `none` (the default) is memif's, ring's and pcap's case.
//! `--buffers ring` copies each burst from compact 60-byte templates into the same 32 buffers,
//! as memif's rx copies into recycled mbufs: packets are warm, and with many flows the flow
//! table is the only cold memory (with `own`, the default, every packet has its own buffer).
//!
//! nat and fullnat (VIPs 198.51.100.13 and .14, backends on port 8080, fullnat from the local
//! address 192.0.2.200) keep two flow entries per connection, so the table grows by two per
//! miss. Their hit is the forward direction (client to backend, translated); `--path reply`
//! sends the backends' replies of the F open connections (backend to client or local address,
//! translated back), built from what the warm-up's forward ACKs became.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Instant;

use dataplane::{
    BackendSpec, Egress, FlowConfig, Forwarding, Frame, HashKind, InterfaceSpec, Pipeline,
    PipelineConfig, Proto, ServiceSpec, Snapshot, SnapshotBuilder, Verdict, WhenAllDown,
};
use etherparse::{PacketBuilder, PacketBuilderStep, TcpHeader};

const HEADROOM: usize = 128;
const BUF: usize = 256;
const FRAME_LEN: usize = 60;
const BURST: usize = 32;
const PORT: u16 = 0;
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];
const BACKENDS: u8 = 10;
const TABLE_SIZE: u32 = 65537;
/// A frame over `b`, marked `nic_checked` (`--rx-checksum good`: as the worker marks a frame
/// whose IPv4 header checksum the NIC checked; the store is what the worker's glue pays too).
fn frame_of(
    b: &mut [u8],
    start: usize,
    len: usize,
    nic_checked: bool,
) -> Result<Frame<'_>, dataplane::frame::FrameError> {
    let mut f = Frame::new(b, start, len)?;
    f.ipv4_checksum_good = nic_checked;
    Ok(f)
}

/// One VIP per forwarding mode, port 80, TCP.
const VIP_PORT: u16 = 80;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path {
    Hit,
    MissSyn,
    MissAck,
    /// nat/fullnat: a backend's reply on a live connection.
    Reply,
}

struct Options {
    mode: Forwarding,
    mode_name: String,
    path: Path,
    packets: usize,
    flows: usize,
    burst: bool,
    time: usize,
    capacity: usize,
    ring: bool,
    /// `--rx-checksum good`.
    nic_checked: bool,
}

fn parse_args() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Options {
        mode: Forwarding::Ipip,
        mode_name: "ipip".into(),
        path: Path::Hit,
        packets: 4096,
        flows: 10_000,
        burst: true,
        time: 0,
        capacity: 1 << 20,
        ring: false,
        nic_checked: false,
    };
    let mut i = 0;
    while i < args.len() {
        let v = args
            .get(i + 1)
            .ok_or(format!("{} needs a value", args[i]))?;
        let num = || v.parse::<usize>().map_err(|e| format!("{}: {e}", args[i]));
        match args[i].as_str() {
            "--mode" => {
                o.mode = match v.as_str() {
                    "ipip" => Forwarding::Ipip,
                    "gue" => Forwarding::Gue,
                    "l2-dsr" => Forwarding::L2Dsr,
                    "nat" => Forwarding::Nat,
                    "fullnat" => Forwarding::FullNat,
                    m => {
                        return Err(format!(
                            "--mode: ipip, gue, l2-dsr, nat or fullnat, not {m}"
                        ))
                    }
                };
                o.mode_name = v.clone();
            }
            "--path" => {
                o.path = match v.as_str() {
                    "hit" => Path::Hit,
                    "miss-syn" => Path::MissSyn,
                    "miss-ack" => Path::MissAck,
                    "reply" => Path::Reply,
                    p => return Err(format!("--path: hit, miss-syn, miss-ack or reply, not {p}")),
                }
            }
            "--packets" => o.packets = num()?,
            "--flows" => o.flows = num()?,
            "--api" => o.burst = v == "burst",
            "--time" => o.time = num()?,
            "--capacity" => o.capacity = num()?,
            "--rx-checksum" => {
                o.nic_checked = match v.as_str() {
                    "none" => false,
                    "good" => true,
                    c => return Err(format!("--rx-checksum: none or good, not {c}")),
                }
            }
            "--buffers" => {
                o.ring = match v.as_str() {
                    "own" => false,
                    "ring" => true,
                    b => return Err(format!("--buffers: own or ring, not {b}")),
                }
            }
            a => return Err(format!("unknown argument {a}")),
        }
        i += 2;
    }
    if o.path == Path::Reply && !translates(o.mode) {
        return Err("--path reply needs --mode nat or fullnat".into());
    }
    if o.ring && !o.burst {
        return Err("--buffers ring needs --api burst".into());
    }
    if o.packets == 0 || !o.packets.is_multiple_of(BURST) {
        return Err(format!("--packets must be a positive multiple of {BURST}"));
    }
    if o.flows == 0 || o.flows > 250 * 60_000 {
        return Err("--flows must be 1..=15000000".into());
    }
    Ok(o)
}

fn vip(mode: Forwarding) -> [u8; 4] {
    match mode {
        Forwarding::Ipip => [198, 51, 100, 10],
        Forwarding::Gue => [198, 51, 100, 11],
        Forwarding::L2Dsr => [198, 51, 100, 12],
        Forwarding::Nat => [198, 51, 100, 13],
        Forwarding::FullNat => [198, 51, 100, 14],
    }
}

/// Whether `mode` translates (nat, fullnat): two flow entries per connection, and replies.
fn translates(mode: Forwarding) -> bool {
    matches!(mode, Forwarding::Nat | Forwarding::FullNat)
}

/// The port nat/fullnat backends listen on.
const NAT_BACKEND_PORT: u16 = 8080;
/// fullnat's source address towards the backends.
const LOCAL_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);

/// Ten on-link backends behind each VIP, in a real Maglev table (M = 65537): the three DSR
/// modes' services, and with `--mode nat` or `fullnat` that mode's service (only then, so the
/// DSR modes' counts do not move when nat is measured).
fn snapshot(mode: Forwarding) -> Result<Snapshot, String> {
    let mut b = SnapshotBuilder::new().interface(InterfaceSpec {
        port: PORT,
        mac: OUR_MAC,
        ipv4: Some((Ipv4Addr::new(192, 0, 2, 10), 24)),
        ipv6: None,
        mtu: 1500,
        ipv4_checksum_offload: false,
        kernel: false,
    });
    let mut services = vec![
        (1u32, Forwarding::Ipip),
        (2, Forwarding::Gue),
        (3, Forwarding::L2Dsr),
    ];
    match mode {
        Forwarding::Nat => services.push((4, mode)),
        Forwarding::FullNat => services.push((5, mode)),
        _ => {}
    }
    for (id, mode) in services {
        let names: Vec<maglev::Backend> = (0..BACKENDS)
            .map(|i| maglev::Backend::new(format!("192.0.2.{}", 101 + i), 100))
            .collect();
        let table = maglev::Table::build(TABLE_SIZE, &names).map_err(|e| e.to_string())?;
        let backends: Vec<BackendSpec> = table
            .backends()
            .iter()
            .enumerate()
            .map(|(i, be)| {
                let address: Ipv4Addr = be.name.parse().map_err(|e| format!("{e}"))?;
                Ok(BackendSpec {
                    id: id * 100 + i as u32,
                    address: IpAddr::V4(address),
                    port: if translates(mode) {
                        NAT_BACKEND_PORT
                    } else {
                        0
                    },
                    weight: 100,
                    up: true,
                    egress: Egress {
                        port: PORT,
                        next_hop_mac: Some([0x02, 0, 0, 0, 1, address.octets()[3]]),
                    },
                })
            })
            .collect::<Result<_, String>>()?;
        b = b.service(ServiceSpec {
            id,
            name: format!("bench-{id}"),
            vip: IpAddr::V4(Ipv4Addr::from(vip(mode))),
            port: VIP_PORT,
            proto: Proto::Tcp,
            hash: HashKind::FiveTuple,
            forwarding: mode,
            local_addresses: if mode == Forwarding::FullNat {
                vec![IpAddr::V4(LOCAL_ADDRESS)]
            } else {
                Vec::new()
            },
            when_all_down: WhenAllDown::Drop,
            table: table.entries().to_vec(),
            fallback_table: table.entries().to_vec(),
            backends,
        });
    }
    b.build().map_err(|e| e.to_string())
}

/// The i-th client flow: 203.0.113.0/24 (250 hosts) times source ports from 1024.
fn client(i: usize) -> ([u8; 4], u16) {
    ([203, 0, 113, 1 + (i % 250) as u8], 1024 + (i / 250) as u16)
}

/// A 60-byte TCP frame of flow `i` in a buffer with headroom, as an mbuf holds it.
fn frame_buf(mode: Forwarding, i: usize, syn: bool) -> Result<[u8; BUF], String> {
    let (src, sport) = client(i);
    let b = PacketBuilder::ethernet2(CLIENT_MAC, OUR_MAC)
        .ipv4(src, vip(mode), 64)
        .tcp(sport, VIP_PORT, 1000, 64240);
    in_buffer(if syn { b.syn() } else { b.ack(1) })
}

/// The frame `b` writes, padded to the 60-byte Ethernet minimum as it arrives from the wire,
/// after the headroom.
fn in_buffer(b: PacketBuilderStep<TcpHeader>) -> Result<[u8; BUF], String> {
    let mut pkt = Vec::with_capacity(FRAME_LEN);
    b.write(&mut pkt, &[]).map_err(|e| e.to_string())?;
    pkt.resize(FRAME_LEN, 0);
    let mut buf = [0u8; BUF];
    buf[HEADROOM..HEADROOM + FRAME_LEN].copy_from_slice(&pkt);
    Ok(buf)
}

/// A reply's addresses and ports: (source, destination, source port, destination port).
type ReplyTuple = ([u8; 4], [u8; 4], u16, u16);

/// The reply to a translated forward frame: its addresses and ports swapped.
fn reply_tuple(out: &[u8]) -> Result<ReplyTuple, String> {
    let ip = out.get(14..).ok_or("short output frame")?;
    let ihl = usize::from(ip.first().ok_or("short output frame")? & 0x0f) * 4;
    let (src, dst) = (ip.get(12..16), ip.get(16..20));
    let ports = ip.get(ihl..ihl + 4);
    match (src, dst, ports) {
        (Some(s), Some(d), Some(p)) => Ok((
            [d[0], d[1], d[2], d[3]],
            [s[0], s[1], s[2], s[3]],
            u16::from_be_bytes([p[2], p[3]]),
            u16::from_be_bytes([p[0], p[1]]),
        )),
        _ => Err("short output frame".into()),
    }
}

/// A 60-byte reply frame (an ACK from a backend, through the router), with headroom.
fn reply_buf((src, dst, sport, dport): ReplyTuple) -> Result<[u8; BUF], String> {
    in_buffer(
        PacketBuilder::ethernet2(CLIENT_MAC, OUR_MAC)
            .ipv4(src, dst, 64)
            .tcp(sport, dport, 5000, 64240)
            .ack(1001),
    )
}

/// The counted region: the pipeline over prepared buffers, verdicts stored for checking.
#[inline(never)]
fn ipp_measured_region(
    p: &mut Pipeline,
    snap: &Snapshot,
    bufs: &mut [[u8; BUF]],
    verdicts: &mut [Verdict],
    now: u64,
    burst: bool,
    nic: bool,
) {
    if burst {
        for (chunk, vs) in bufs.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
            let mut it = chunk.iter_mut();
            let mut frames: [Frame<'_>; BURST] = std::array::from_fn(|_| {
                match it.next() {
                    Some(b) => frame_of(b, HEADROOM, FRAME_LEN, nic),
                    None => Frame::new(&mut [], 0, 0),
                }
                .unwrap_or_else(|_| std::process::abort())
            });
            ipp_burst(p, &mut frames, snap, now, vs);
        }
    } else {
        for (b, v) in bufs.iter_mut().zip(verdicts.iter_mut()) {
            match frame_of(b, HEADROOM, FRAME_LEN, nic) {
                Ok(mut f) => *v = p.process(&mut f, PORT, snap, now),
                Err(_) => std::process::abort(),
            }
        }
    }
    std::hint::black_box(&verdicts);
}

/// The one call site of `process_burst` in the regions: with two, the compiler optimises it
/// differently (~55 more instructions per packet) than sluice's worker, which has one.
#[inline(never)]
fn ipp_burst(
    p: &mut Pipeline,
    frames: &mut [Frame<'_>],
    snap: &Snapshot,
    now: u64,
    vs: &mut [Verdict],
) {
    p.process_burst(frames, PORT, snap, now, vs);
}

/// The counted region with `--buffers ring`: each burst is copied from its templates into the
/// same `ring` buffers first (memif's rx copy), then processed.
#[inline(never)]
fn ipp_measured_region_ring(
    p: &mut Pipeline,
    snap: &Snapshot,
    templates: &[[u8; FRAME_LEN]],
    ring: &mut [[u8; BUF]; BURST],
    verdicts: &mut [Verdict],
    now: u64,
    nic: bool,
) {
    for (chunk, vs) in templates.chunks(BURST).zip(verdicts.chunks_mut(BURST)) {
        for (b, t) in ring.iter_mut().zip(chunk) {
            b[HEADROOM..HEADROOM + FRAME_LEN].copy_from_slice(t);
        }
        let mut it = ring.iter_mut().take(chunk.len());
        let mut frames: [Frame<'_>; BURST] = std::array::from_fn(|_| {
            match it.next() {
                Some(b) => frame_of(b, HEADROOM, FRAME_LEN, nic),
                None => Frame::new(&mut [], 0, 0),
            }
            .unwrap_or_else(|_| std::process::abort())
        });
        ipp_burst(p, &mut frames[..chunk.len()], snap, now, vs);
    }
    std::hint::black_box(&verdicts);
}

/// Fresh buffers for the region (the pipeline rewrites frames in place).
fn region_bufs(o: &Options, path: Path, replies: &[ReplyTuple]) -> Result<Vec<[u8; BUF]>, String> {
    (0..o.packets)
        .map(|k| match path {
            // Visit the flows with a stride so consecutive packets are not neighbours.
            Path::Hit => frame_buf(o.mode, (k * 7919) % o.flows, false),
            Path::MissSyn => frame_buf(o.mode, o.flows + k, true),
            Path::MissAck => frame_buf(o.mode, o.flows + k, false),
            Path::Reply => replies
                .get((k * 7919) % o.flows)
                .ok_or_else(|| "no reply tuple".to_string())
                .and_then(|&t| reply_buf(t)),
        })
        .collect()
}

const NOW: u64 = 1_000_000_000;

fn pipeline_config(o: &Options) -> PipelineConfig {
    PipelineConfig {
        flows: FlowConfig {
            capacity: o.capacity,
            // The new-flow cap would make a long miss run stateless; the cost of the
            // stateful miss is what is measured.
            max_new_flows_per_second: 0,
            ..FlowConfig::default()
        },
        ptb_per_second: 1000,
        nat: translates(o.mode),
        exception_per_second: 10_000,
        ..PipelineConfig::default()
    }
}

/// Flow entries per connection: two (forward and reverse) when the mode translates.
fn entries_per_flow(mode: Forwarding) -> usize {
    if translates(mode) {
        2
    } else {
        1
    }
}

/// A pipeline holding the F flows of the hit path (SYN then ACK each), so every path runs
/// against the same F live entries; with nat/fullnat also each flow's reply tuple, from what
/// its ACK became.
fn warmed(o: &Options, snap: &Snapshot) -> Result<(Pipeline, Vec<ReplyTuple>), String> {
    let mut p = Pipeline::new(&pipeline_config(o));
    let mut warm = [Verdict::ToControl; BURST];
    let mut replies = Vec::new();
    for syn in [true, false] {
        for start in (0..o.flows).step_by(BURST) {
            let mut bufs: Vec<[u8; BUF]> = (start..(start + BURST).min(o.flows))
                .map(|i| frame_buf(o.mode, i, syn))
                .collect::<Result<_, _>>()?;
            let n = bufs.len();
            ipp_warm(&mut p, snap, &mut bufs, &mut warm[..n], NOW, o.nic_checked)?;
            if !syn && translates(o.mode) {
                for b in &bufs {
                    replies.push(reply_tuple(&b[HEADROOM..HEADROOM + FRAME_LEN])?);
                }
            }
        }
    }
    if p.flow_count() != o.flows * entries_per_flow(o.mode) {
        return Err(format!(
            "warm-up: {} flow entries, want {}",
            p.flow_count(),
            o.flows * entries_per_flow(o.mode)
        ));
    }
    Ok((p, replies))
}

/// Runs `path`'s region once on a warmed pipeline, checks it, returns ns per packet.
fn measure(o: &Options, snap: &Snapshot, path: Path) -> Result<f64, String> {
    let (mut p, replies) = warmed(o, snap)?;
    let mut bufs = region_bufs(o, path, &replies)?;
    let mut verdicts = vec![Verdict::ToControl; o.packets];
    let (fwd, flows) = (p.counters().forwarded, p.flow_count());
    // With a ring, only the frames' bytes are kept (compact, so they stay cheap to read).
    let templates: Vec<[u8; FRAME_LEN]> = if o.ring {
        std::mem::take(&mut bufs)
            .iter()
            .map(|b| {
                let mut f = [0u8; FRAME_LEN];
                f.copy_from_slice(&b[HEADROOM..HEADROOM + FRAME_LEN]);
                f
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut ring = [[0u8; BUF]; BURST];
    let t = Instant::now();
    if o.ring {
        ipp_measured_region_ring(
            &mut p,
            snap,
            &templates,
            &mut ring,
            &mut verdicts,
            NOW + 1000,
            o.nic_checked,
        );
    } else {
        ipp_measured_region(
            &mut p,
            snap,
            &mut bufs,
            &mut verdicts,
            NOW + 1000,
            o.burst,
            o.nic_checked,
        );
    }
    let ns = t.elapsed().as_nanos() as f64 / o.packets as f64;
    check(o, path, &p, &verdicts, fwd, flows)?;
    Ok(ns)
}

fn path_name(path: Path) -> &'static str {
    match path {
        Path::Hit => "hit",
        Path::MissSyn => "miss-syn",
        Path::MissAck => "miss-ack",
        Path::Reply => "reply",
    }
}

/// min/median/max as JSON with `digits` decimals.
fn stats(v: &mut [f64], digits: usize) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{{\"min\":{:.d$},\"median\":{:.d$},\"max\":{:.d$}}}",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1],
        d = digits
    )
}

fn run(o: &Options) -> Result<(), String> {
    let snap = snapshot(o.mode)?;
    if o.time == 0 {
        // The counted run: one region of the chosen path.
        measure(o, &snap, o.path)?;
        println!(
            "{{\"mode\":\"{}\",\"path\":\"{}\",\"api\":\"{}\",\"packets\":{},\"flows\":{}}}",
            o.mode_name,
            path_name(o.path),
            if o.burst { "burst" } else { "one" },
            o.packets,
            o.flows
        );
        return Ok(());
    }
    // Wall clock, side by side: the three paths alternate R times in this one process, so
    // they share the machine's load; the per-round miss/hit ratios are what mean something.
    let mut paths = vec![Path::Hit, Path::MissSyn, Path::MissAck];
    if translates(o.mode) {
        paths.push(Path::Reply);
    }
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); 2];
    for _ in 0..o.time {
        let round: Vec<f64> = paths
            .iter()
            .map(|&path| measure(o, &snap, path))
            .collect::<Result<_, _>>()?;
        for (i, t) in round.iter().enumerate() {
            ns[i].push(*t);
        }
        ratios[0].push(round[1] / round[0]);
        ratios[1].push(round[2] / round[0]);
    }
    let per_path: Vec<String> = paths
        .iter()
        .zip(ns.iter_mut())
        .map(|(&path, v)| format!("\"{}\":{}", path_name(path), stats(v, 1)))
        .collect();
    println!(
        "{{\"mode\":\"{}\",\"api\":\"{}\",\"packets\":{},\"flows\":{},\"rounds\":{},\"ns_per_packet\":{{{}}},\"miss_syn_over_hit\":{},\"miss_ack_over_hit\":{}}}",
        o.mode_name,
        if o.burst { "burst" } else { "one" },
        o.packets,
        o.flows,
        o.time,
        per_path.join(","),
        stats(&mut ratios[0], 3),
        stats(&mut ratios[1], 3)
    );
    Ok(())
}

/// Warm-up bursts: every packet must be forwarded.
fn ipp_warm(
    p: &mut Pipeline,
    snap: &Snapshot,
    bufs: &mut [[u8; BUF]],
    verdicts: &mut [Verdict],
    now: u64,
    nic: bool,
) -> Result<(), String> {
    let mut frames: Vec<Frame<'_>> = bufs
        .iter_mut()
        .map(|b| frame_of(b, HEADROOM, FRAME_LEN, nic).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    p.process_burst(&mut frames, PORT, snap, now, verdicts);
    match verdicts
        .iter()
        .find(|v| !matches!(v, Verdict::Forward { .. }))
    {
        Some(v) => Err(format!("warm-up packet not forwarded: {v:?}")),
        None => Ok(()),
    }
}

fn check(
    o: &Options,
    path: Path,
    p: &Pipeline,
    verdicts: &[Verdict],
    fwd_before: u64,
    flows_before: usize,
) -> Result<(), String> {
    if let Some(v) = verdicts
        .iter()
        .find(|v| !matches!(v, Verdict::Forward { .. }))
    {
        return Err(format!("a measured packet was not forwarded: {v:?}"));
    }
    let fwd = p.counters().forwarded - fwd_before;
    if fwd != o.packets as u64 {
        return Err(format!("forwarded {fwd}, want {}", o.packets));
    }
    let grew = p.flow_count() - flows_before;
    let want = match path {
        Path::Hit | Path::Reply => 0,
        Path::MissSyn | Path::MissAck => o.packets * entries_per_flow(o.mode),
    };
    let replies = p.counters().nat_replies;
    if path == Path::Reply && replies != o.packets as u64 {
        return Err(format!("{replies} nat replies, want {}", o.packets));
    }
    if grew != want {
        return Err(format!("flow table grew by {grew}, want {want}"));
    }
    Ok(())
}

fn main() -> ExitCode {
    match parse_args().and_then(|o| run(&o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipp: {e}");
            ExitCode::FAILURE
        }
    }
}
