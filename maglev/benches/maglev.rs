//! Table build time (ours against a plain implementation of the paper's loop, side by side) and lookup.
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Bencher, BenchmarkId, Criterion, Throughput};
use maglev::{flow, Backend, Table};

#[path = "common/paper.rs"]
mod paper;
use paper::{backends, paper_build};

/// Times `timed`, running `other` (untimed) before each run: the two benchmarks of a pair then
/// share the same load over time, which on a busy 2-core machine matters more than anything.
fn interleaved(b: &mut Bencher, timed: impl Fn(), other: impl Fn()) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            other();
            let start = Instant::now();
            timed();
            total += start.elapsed();
        }
        total
    })
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    for size in [65537u32, 655_373] {
        for n in [10usize, 100, 1000] {
            // The baseline gets the canonical (sorted) order, so the two tables must be equal.
            let ours = Table::build(size, &backends(n)).expect("valid input");
            let input = ours.backends().to_vec();
            let theirs = paper_build(size, &input);
            assert!(
                ours.entries()
                    .iter()
                    .zip(&theirs)
                    .all(|(&a, &b)| a as i32 == b),
                "same table"
            );
            let id = format!("M={size}/N={n}");
            let paper = || drop(black_box(paper_build(black_box(size), black_box(&input))));
            let ours = || drop(black_box(Table::build(black_box(size), black_box(&input))));
            group.bench_function(BenchmarkId::new("paper_loop", &id), |b| {
                interleaved(b, paper, ours)
            });
            group.bench_function(BenchmarkId::new("sluice", &id), |b| {
                interleaved(b, ours, paper)
            });
        }
    }
    // Weighted: weights 1..=10 cycling, the heap-ordered path.
    let weighted: Vec<Backend> = backends(1000)
        .into_iter()
        .enumerate()
        .map(|(i, b)| Backend::new(b.name, 1 + i as u32 % 10))
        .collect();
    group.bench_function("sluice_weighted/M=65537/N=1000", |b| {
        b.iter(|| Table::build(black_box(65537), black_box(&weighted)))
    });
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let table = Table::build(65537, &backends(100)).expect("valid input");
    let dst = flow::v4_mapped([198, 51, 100, 10]);
    let flows: Vec<([u8; 16], u16)> = (0..1024u32)
        .map(|i| {
            (
                flow::v4_mapped([192, 0, 2, i as u8]),
                1024u16.wrapping_add((i * 7919) as u16),
            )
        })
        .collect();
    let hashes: Vec<u32> = flows
        .iter()
        .map(|(s, p)| flow::five_tuple(s, &dst, *p, 443, 6))
        .collect();
    let mut group = c.benchmark_group("lookup");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1024));
    group.bench_function("table_lookup_x1024", |b| {
        b.iter(|| {
            black_box(&hashes)
                .iter()
                .fold(0u32, |acc, &h| acc ^ table.lookup(h))
        })
    });
    group.bench_function("five_tuple_hash_and_lookup_x1024", |b| {
        b.iter(|| {
            black_box(&flows).iter().fold(0u32, |acc, (s, p)| {
                acc ^ table.lookup(flow::five_tuple(s, &dst, *p, 443, 6))
            })
        })
    });
    group.bench_function("source_ip_hash_and_lookup_x1024", |b| {
        b.iter(|| {
            black_box(&flows)
                .iter()
                .fold(0u32, |acc, (s, _)| acc ^ table.lookup(flow::source_ip(s)))
        })
    });
    group.finish();
}

criterion_group!(benches, build, lookup);
criterion_main!(benches);
