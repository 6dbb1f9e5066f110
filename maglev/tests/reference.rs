//! The fast builder against a slow, literal one: the paper's loop with `%` for every probe,
//! weighted turns chosen by a linear scan, quotas by exact rational arithmetic.
use maglev::{permutation, Backend, Table};
use proptest::prelude::*;

fn reference_build(size: u32, input: &[Backend]) -> Vec<u32> {
    let mut backends = input.to_vec();
    backends.sort_by(|a, b| a.name.cmp(&b.name));
    let n = backends.len();
    let total: u128 = backends.iter().map(|b| u128::from(b.weight)).sum();
    let m = u128::from(size);
    // Largest remainder: floor shares, then +1 by descending remainder, lower index first.
    let mut quota: Vec<u128> = backends
        .iter()
        .map(|b| m * u128::from(b.weight) / total)
        .collect();
    let mut order: Vec<usize> = (0..n).filter(|&i| backends[i].weight > 0).collect();
    order.sort_by_key(|&i| {
        (
            std::cmp::Reverse(m * u128::from(backends[i].weight) % total),
            i,
        )
    });
    let left = (m - quota.iter().sum::<u128>()) as usize;
    for &i in order.iter().take(left) {
        quota[i] += 1;
    }
    let perm: Vec<(u64, u64)> = backends
        .iter()
        .map(|b| {
            let (o, s) = permutation(&b.name, size);
            (u64::from(o), u64::from(s))
        })
        .collect();
    let mut next = vec![0u64; n];
    let mut turns = vec![0u128; n];
    let mut entry = vec![u32::MAX; size as usize];
    for _ in 0..size {
        // The turn with the earliest virtual time turns[i] / weight[i], ties to the lower index.
        let mut best: Option<usize> = None;
        for i in 0..n {
            if turns[i] == quota[i] {
                continue;
            }
            let earlier = match best {
                None => true,
                Some(j) => {
                    turns[i] * u128::from(backends[j].weight)
                        < turns[j] * u128::from(backends[i].weight)
                }
            };
            if earlier {
                best = Some(i);
            }
        }
        let i = best.expect("quotas sum to M");
        let (offset, skip) = perm[i];
        let mut c = (offset + next[i] * skip) % u64::from(size);
        while entry[c as usize] != u32::MAX {
            next[i] += 1;
            c = (offset + next[i] * skip) % u64::from(size);
        }
        entry[c as usize] = i as u32;
        next[i] += 1;
        turns[i] += 1;
    }
    entry
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fast_build_equals_reference(size in prop::sample::select(vec![2u32, 3, 13, 101, 251, 1009, 4099]), weights in prop::collection::vec(prop_oneof![Just(0u32), 1u32..=4, 1u32..=1000, Just(u32::MAX)], 1..40), equal in any::<bool>(), salt: u16) {
        let weights: Vec<u32> = if equal { vec![7; weights.len()] } else { weights };
        prop_assume!(weights.len() <= size as usize && weights.iter().any(|&w| w > 0));
        let backends: Vec<Backend> = weights.iter().enumerate().map(|(i, &w)| Backend::new(format!("b{salt}-{i}"), w)).collect();
        let table = Table::build(size, &backends).unwrap();
        prop_assert_eq!(table.entries(), &reference_build(size, &backends)[..]);
    }
}

#[test]
fn fast_build_equals_reference_at_full_size() {
    for (size, n) in [
        (65537u32, 10usize),
        (65537, 100),
        (4099, 1000),
        (131_071, 3),
    ] {
        let backends: Vec<Backend> = (0..n)
            .map(|i| Backend::new(format!("2001:db8:1::{i:x}"), 1 + (i % 3) as u32))
            .collect();
        assert_eq!(
            Table::build(size, &backends).unwrap().entries(),
            &reference_build(size, &backends)[..]
        );
        let equal: Vec<Backend> = backends
            .iter()
            .map(|b| Backend::new(b.name.clone(), 1))
            .collect();
        assert_eq!(
            Table::build(size, &equal).unwrap().entries(),
            &reference_build(size, &equal)[..]
        );
    }
}
