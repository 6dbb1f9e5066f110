//! Prints the share of a table that moves when backends are removed or added (the paper's
//! Figure 12 setting: M = 65537, N = 100 and 1000).
//! Run: `cargo run --release -p maglev --example disruption [-- M N...]`.
use maglev::{diff, Backend, Table};

fn backends(n: usize) -> Vec<Backend> {
    (0..n)
        .map(|i| Backend::new(format!("2001:db8::{:x}:{:x}", i / 65536, i % 65536), 1))
        .collect()
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let size = args.first().copied().unwrap_or(65537);
    let sizes: Vec<usize> = if args.len() > 1 {
        args[1..].iter().map(|&n| n as usize).collect()
    } else {
        vec![100, 1000]
    };
    println!("| M | N | change | moved | must move | excess |");
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        let all = backends(n);
        let old = Table::build(size, &all).expect("valid input");
        let mut removals = vec![1, n / 100, n / 10];
        removals.retain(|&k| k > 0 && k < n);
        removals.dedup();
        for k in removals {
            // Remove every (n/k)-th backend, spread over the name space.
            let kept: Vec<Backend> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| i % (n / k) != 0 || i / (n / k) >= k)
                .map(|(_, b)| b.clone())
                .collect();
            assert_eq!(kept.len(), n - k);
            let new = Table::build(size, &kept).expect("valid input");
            let d = diff(&old, &new);
            let moved = f64::from(d.moved_slots.unwrap_or(0)) / f64::from(size);
            // Slots of removed backends have to move; anything beyond is disruption.
            let forced = f64::from(d.removed_entries()) / f64::from(size);
            println!(
                "| {size} | {n} | remove {k} ({:.1}%) | {:.3}% | {:.3}% | {:.3} pp |",
                100.0 * k as f64 / n as f64,
                100.0 * moved,
                100.0 * forced,
                100.0 * (moved - forced)
            );
        }
        let mut more = all.clone();
        more.push(Backend::new("192.0.2.200", 1));
        let new = Table::build(size, &more).expect("valid input");
        let d = diff(&old, &new);
        let moved = f64::from(d.moved_slots.unwrap_or(0)) / f64::from(size);
        let to_newcomer = d
            .backends
            .iter()
            .find(|b| b.old_weight.is_none())
            .map_or(0, |b| b.new_entries);
        let forced = f64::from(to_newcomer) / f64::from(size);
        println!(
            "| {size} | {n} | add 1 | {:.3}% | {:.3}% | {:.3} pp |",
            100.0 * moved,
            100.0 * forced,
            100.0 * (moved - forced)
        );
    }
}
