//! Excess disruption (slots that move beyond those that must) over a grid of table sizes
//! relative to the number of backends, `M = the smallest prime >= ratio x N`, for several
//! backend sets per point: the evidence behind the `M >= 100 N` advice and `sluice check`'s
//! warning. Prints the worst excess, in points of the table, per change.
//! Run: `cargo run --release -p maglev --example disruption_grid [-- SETS]`.
use maglev::{diff, is_prime, Backend, Table};

fn names(n: usize, salt: usize) -> Vec<Backend> {
    (0..n)
        .map(|i| Backend::new(format!("198.51.{}.{}:{salt}", i / 250, i % 250), 1))
        .collect()
}

fn prime_at_least(mut m: u32) -> u32 {
    while !is_prime(m) {
        m += 1;
    }
    m
}

/// Excess of going from `all` to `kept`: moved share minus the removed backends' share.
fn excess_removed(size: u32, all: &[Backend], kept: &[Backend]) -> f64 {
    let d = diff(
        &Table::build(size, all).expect("valid"),
        &Table::build(size, kept).expect("valid"),
    );
    f64::from(d.moved_slots.unwrap_or(0) - d.removed_entries()) / f64::from(size)
}

fn main() {
    let sets: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(8);
    println!("| M/N | N | M | remove 1 | remove 1% | remove 10% | add 1 |");
    println!("|---|---|---|---|---|---|---|");
    for ratio in [50u32, 100, 200, 400, 655] {
        for n in [10usize, 30, 100, 300, 1000] {
            let size = prime_at_least(ratio * n as u32);
            if size > 700_000 {
                continue;
            }
            let mut worst = [0f64; 4];
            for salt in 0..sets {
                let all = names(n, salt);
                for (col, k) in [1, (n / 100).max(1), (n / 10).max(1)]
                    .into_iter()
                    .enumerate()
                {
                    let step = n / k;
                    let kept: Vec<Backend> = all
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| (i + salt) % step != 0 || (i + salt) / step > k)
                        .map(|(_, b)| b.clone())
                        .collect();
                    if kept.len() + k != n {
                        continue;
                    }
                    worst[col] = worst[col].max(excess_removed(size, &all, &kept));
                }
                let mut more = all.clone();
                more.push(Backend::new("203.0.113.99", 1));
                // Adding is removing, backwards: the newcomer's share must move.
                worst[3] = worst[3].max(excess_removed(size, &more, &all));
            }
            println!(
                "| {ratio} | {n} | {size} | {:.2} | {:.2} | {:.2} | {:.2} |",
                100.0 * worst[0],
                100.0 * worst[1],
                100.0 * worst[2],
                100.0 * worst[3]
            );
        }
    }
}
