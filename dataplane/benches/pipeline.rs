//! Per-packet cost of the pipeline, measured side by side: flow hit vs miss (insert), one by
//! one vs burst (hash, prefetch, probe), and our set-associative flow table against
//! hashbrown's `HashTable` with precomputed hashes for the same lookups.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dataplane::flow::{FlowKey, FlowTable};
use dataplane::{DropReason, FlowConfig, Pipeline, PipelineConfig, Verdict};

const FLOWS: usize = 100_000;
const BURST: usize = 32;

fn client(i: usize) -> [u8; 4] {
    [203, 0, 113, (i % 251) as u8]
}

fn packet(i: usize) -> Vec<u8> {
    udp4(
        client(i),
        VIP4_MULTI,
        1024 + (i / 251) as u16,
        53,
        &[0u8; 64],
    )
}

fn pipeline() -> Pipeline {
    Pipeline::new(&PipelineConfig {
        flows: FlowConfig {
            capacity: 1 << 20,
            max_new_flows_per_second: 0,
            ..FlowConfig::default()
        },
        ptb_per_second: 1000,
        nat: false,
        exception_per_second: 10_000,
        ..PipelineConfig::default()
    })
}

fn bench_pipeline(c: &mut Criterion) {
    let snap = snapshot();
    let pkts: Vec<Vec<u8>> = (0..FLOWS).map(packet).collect();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BURST as u64));

    let mut bufs: Vec<Vec<u8>> = (0..BURST).map(|_| vec![0u8; HEADROOM + 256]).collect();
    // Hit: every flow is already in the table; 1k flows stay in cache, 100k do not.
    for flows in [1024, FLOWS] {
        let mut p = pipeline();
        for pkt in &pkts[..flows] {
            let mut b = buffer(pkt);
            p.process(&mut frame(&mut b, pkt.len()), PORT, &snap, 0);
        }
        let mut next = 0usize;
        g.bench_function(format!("hit-{flows}/one-by-one"), |bch| {
            bch.iter(|| {
                for b in bufs.iter_mut() {
                    let pkt = &pkts[next % flows];
                    next = next.wrapping_add(7919);
                    b[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
                    let v = p.process(&mut frame(b, pkt.len()), PORT, &snap, 1);
                    black_box(v);
                }
            })
        });
        let mut verdicts = [Verdict::Drop(DropReason::Truncated); BURST];
        g.bench_function(format!("hit-{flows}/burst"), |bch| {
            bch.iter(|| {
                let mut lens = [0usize; BURST];
                for (i, b) in bufs.iter_mut().enumerate() {
                    let pkt = &pkts[next % flows];
                    next = next.wrapping_add(7919);
                    b[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
                    lens[i] = pkt.len();
                }
                let mut frames: Vec<_> = bufs
                    .iter_mut()
                    .zip(lens)
                    .map(|(b, l)| frame(b, l))
                    .collect();
                p.process_burst(&mut frames, PORT, &snap, 1, &mut verdicts);
                black_box(&verdicts);
            })
        });
    }

    // Miss: a tuple never seen before each time (Maglev + insert; evicts once full).
    let mut p = pipeline();
    let mut sport = 0u32;
    let base = packet(0);
    g.bench_function("miss/one-by-one", |bch| {
        bch.iter(|| {
            for b in bufs.iter_mut() {
                sport = sport.wrapping_add(1);
                b[HEADROOM..HEADROOM + base.len()].copy_from_slice(&base);
                // Source and destination ports make a fresh 5-tuple (port-0 service; the
                // UDP checksum is not verified, the IPv4 one is untouched).
                b[HEADROOM + 34..HEADROOM + 36].copy_from_slice(&(sport as u16).to_be_bytes());
                b[HEADROOM + 36..HEADROOM + 38]
                    .copy_from_slice(&((sport >> 16) as u16).to_be_bytes());
                let v = p.process(&mut frame(b, base.len()), PORT, &snap, 1);
                black_box(v);
            }
        })
    });
    g.finish();
}

fn keys(n: usize) -> Vec<(FlowKey, u32)> {
    (0..n)
        .map(|i| {
            let mut k = FlowKey {
                sport: i as u16,
                dport: 443,
                proto: 6,
                ..FlowKey::default()
            };
            k.src[12..].copy_from_slice(&(i as u32 >> 16).to_be_bytes());
            k.dst[15] = 10;
            (k, k.hash())
        })
        .collect()
}

fn bench_tables(c: &mut Criterion) {
    let ks = keys(FLOWS);
    let mut g = c.benchmark_group("flow-table-lookup");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut ours = FlowTable::new(&FlowConfig {
        capacity: 1 << 20,
        ..FlowConfig::default()
    });
    for (i, (k, h)) in ks.iter().enumerate() {
        ours.insert(k, *h, i as u32, 0x10, 0);
    }
    let mut hb: hashbrown::HashTable<(FlowKey, u32)> = hashbrown::HashTable::with_capacity(1 << 20);
    // hashbrown takes its 7-bit tags from the top of a 64-bit hash: spread ours to 64 bits.
    let wide = |h: u32| u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for (i, (k, h)) in ks.iter().enumerate() {
        hb.insert_unique(wide(*h), (*k, i as u32), |(k, _)| wide(k.hash()));
    }
    let mut next = 0usize;
    g.bench_function("set-associative", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for _ in 0..BURST {
                let (k, h) = &ks[next % FLOWS];
                next = next.wrapping_add(7919);
                if let Some(s) = ours.find(k, *h, 1) {
                    sum = sum.wrapping_add(ours.backend(s));
                }
            }
            black_box(sum)
        })
    });
    g.bench_function("hashbrown", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for _ in 0..BURST {
                let (k, h) = &ks[next % FLOWS];
                next = next.wrapping_add(7919);
                if let Some((_, v)) = hb.find(wide(*h), |(x, _)| x == k) {
                    sum = sum.wrapping_add(*v);
                }
            }
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_pipeline, bench_tables);
criterion_main!(benches);
