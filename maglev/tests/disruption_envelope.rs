//! Disruption against table size, exhaustively over a grid: `M = the smallest prime >= r x N`
//! for `r` in {100, 200, 400, 655} and `N` in {10, 30, 100}, three backend sets each; removing
//! one backend, 1% and 10% of them, and adding one. What moves beyond the changed backends' own
//! share stays within `maglev::expected_excess_points` (the figure `sluice check` quotes), so
//! within 4 points of the table from `M >= 100 N` on. Issue 3's 1.5 points hold only from about
//! `M >= 655 N` (`tests/properties.rs`); at `100 N` the worst case is about twice that.
use maglev::{diff, expected_excess_points, is_prime, recommended_size, Backend, Table};

fn names(n: usize, salt: usize) -> Vec<Backend> {
    (0..n)
        .map(|i| Backend::new(format!("198.51.{}.{}:{salt}", i / 250, i % 250), 1))
        .collect()
}

/// Points of the table that move from `old` to `new` beyond the slots of the backends only
/// one of them has.
fn excess_points(size: u32, old: &[Backend], new: &[Backend]) -> f64 {
    let d = diff(
        &Table::build(size, old).unwrap(),
        &Table::build(size, new).unwrap(),
    );
    let forced: u32 = d
        .backends
        .iter()
        .map(|b| match (b.old_weight, b.new_weight) {
            (Some(_), None) => b.old_entries,
            (None, Some(_)) => b.new_entries,
            _ => 0,
        })
        .sum();
    100.0 * f64::from(d.moved_slots.unwrap() - forced) / f64::from(size)
}

#[test]
fn excess_disruption_stays_within_the_envelope_from_100_slots_per_backend() {
    let mut worst_at_100 = 0f64;
    for ratio in [100usize, 200, 400, 655] {
        for n in [10usize, 30, 100] {
            let size = (ratio * n) as u32..;
            let size = size.into_iter().find(|&m| is_prime(m)).unwrap();
            if ratio == 100 {
                assert_eq!(Some(size), recommended_size(n));
            }
            for salt in 0..3 {
                let all = names(n, salt);
                let mut changes: Vec<(String, Vec<Backend>, Vec<Backend>, usize)> = Vec::new();
                for k in [1, (n / 100).max(1), n / 10] {
                    // k backends spread over the canonical order, shifted by the set.
                    let kept: Vec<Backend> = all
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| (i + salt) % (n / k) != 0 || (i + salt) / (n / k) > k)
                        .map(|(_, b)| b.clone())
                        .collect();
                    assert_eq!(kept.len(), n - k);
                    changes.push((format!("remove {k}"), all.clone(), kept, n));
                }
                let mut more = all.clone();
                more.push(Backend::new("203.0.113.99", 1));
                changes.push(("add 1".into(), all.clone(), more, n + 1));
                for (what, old, new, most) in changes {
                    let excess = excess_points(size, &old, &new);
                    let bound = expected_excess_points(size, most);
                    assert!(
                        excess <= bound,
                        "M={size} N={n} set {salt} {what}: {excess:.2} points beyond the share, envelope {bound:.2}"
                    );
                    assert!(excess <= 4.0, "M={size} N={n} {what}: {excess:.2}");
                    if ratio == 100 {
                        worst_at_100 = worst_at_100.max(excess);
                    }
                }
            }
        }
    }
    // The envelope is not loose at the recommended minimum: the worst case comes close to it,
    // and well above issue 3's 1.5 points.
    assert!(worst_at_100 > 2.5, "{worst_at_100}");
}
