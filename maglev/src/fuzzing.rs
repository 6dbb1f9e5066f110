//! Fuzz bodies: arbitrary backend lists and sizes into the builder, checking every invariant.
//! The cargo-fuzz target `table_build` in `maglev/fuzz` calls these (cargo forbids a target named `build`); `cargo test` replays the seed corpus.
use crate::{is_prime, Backend, MaglevError, Table};

/// Feeds every `seed-*` file in `dir` to `body`; returns how many there were (each crate's
/// seed replay tests call this and check the count).
pub fn replay_seeds(dir: &std::path::Path, body: impl Fn(&[u8])) -> usize {
    let mut seeds = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            body(&std::fs::read(&path).unwrap());
            seeds += 1;
        }
    }
    seeds
}

/// Sizes stay below this so one iteration stays fast.
pub const FUZZ_MAX_SIZE: u32 = 20011;
/// Backend lists stay below this so one iteration stays fast.
pub const FUZZ_MAX_BACKENDS: usize = 200;

/// Input: a little-endian u16 size, then records `[name length (low 4 bits), name bytes..., weight byte]`;
/// a weight byte of 250 and up means a large weight (byte << 24).
pub fn fuzz_build(data: &[u8]) {
    let Some((size, backends)) = decode(data) else {
        return;
    };
    match Table::build(size, &backends) {
        Ok(table) => check_table(&table, &backends),
        Err(e) => check_error(&e, size, &backends),
    }
}

fn decode(data: &[u8]) -> Option<(u32, Vec<Backend>)> {
    let (head, mut rest) = (data.get(..2)?, data.get(2..)?);
    let size = u32::from(u16::from_le_bytes([head[0], head[1]])) % (FUZZ_MAX_SIZE + 1);
    let mut backends = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len & 15);
        if tail.len() < len + 1 || backends.len() == FUZZ_MAX_BACKENDS {
            break;
        }
        let name = String::from_utf8_lossy(&tail[..len]).into_owned();
        let w = tail[len];
        let weight = if w >= 250 {
            u32::from(w) << 24
        } else {
            u32::from(w)
        };
        backends.push(Backend::new(name, weight));
        rest = &tail[len + 1..];
    }
    Some((size, backends))
}

/// Panics unless `table` is a correct table for `input`.
pub fn check_table(table: &Table, input: &[Backend]) {
    let size = table.size();
    assert!(is_prime(size) && size as usize >= input.len());
    let mut sorted = input.to_vec();
    sorted.sort();
    let mut canon = table.backends().to_vec();
    canon.sort();
    assert_eq!(canon, sorted, "the table lists exactly the input backends");
    assert!(
        table.backends().windows(2).all(|p| p[0].name < p[1].name),
        "canonical order"
    );
    assert_eq!(table.entries().len(), size as usize);
    let backends = table.backends();
    for &e in table.entries() {
        let b = backends
            .get(e as usize)
            .expect("entry names a listed backend");
        assert!(b.weight > 0, "entry names {} of weight 0", b.name);
    }
    let counts = table.entries_per_backend();
    let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    for (b, &c) in backends.iter().zip(&counts) {
        // Within one entry of M * w / W, in integers: |c * W - M * w| < W.
        let (have, want) = (
            u128::from(c) * u128::from(total),
            u128::from(size) * u128::from(b.weight),
        );
        assert!(
            have.abs_diff(want) < u128::from(total),
            "{} has {c} entries",
            b.name
        );
    }
    let weights: Vec<u32> = backends
        .iter()
        .filter(|b| b.weight > 0)
        .map(|b| b.weight)
        .collect();
    if weights.windows(2).all(|p| p[0] == p[1]) {
        let n = weights.len() as u32;
        for (b, &c) in backends.iter().zip(&counts) {
            if b.weight > 0 {
                assert!(
                    c == size / n || c == size.div_ceil(n),
                    "{} has {c} of {size}/{n}",
                    b.name
                );
            }
        }
    }
    let mut reversed = input.to_vec();
    reversed.reverse();
    let again = Table::build(size, &reversed).expect("a reordered input builds too");
    assert_eq!(&again, table, "input order does not matter");
    assert_eq!(again.fingerprint(), table.fingerprint());
}

fn check_error(e: &MaglevError, size: u32, backends: &[Backend]) {
    let mut names: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
    names.sort_unstable();
    let duplicate = names.windows(2).any(|p| p[0] == p[1]);
    let expected = match e {
        MaglevError::NotPrime { size: s } => *s == size && !is_prime(size),
        MaglevError::TooLarge { .. } => false,
        MaglevError::SmallerThanBackends {
            size: s,
            backends: n,
        } => *s == size && *n == backends.len() && (size as usize) < *n,
        MaglevError::EmptyName => names.first() == Some(&""),
        MaglevError::DuplicateBackend { name } => {
            duplicate && names.windows(2).any(|p| p[0] == p[1] && p[0] == name)
        }
        MaglevError::NoActiveBackend { backends: n } => {
            *n == backends.len() && backends.iter().all(|b| b.weight == 0)
        }
    };
    assert!(
        expected,
        "unexpected error {e} for size {size} and {backends:?}"
    );
}
