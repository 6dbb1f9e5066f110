//! The baseline shared by the build benchmark and the `build_ratio` example: a plain, direct
//! implementation of the paper's loop, and the benchmark's backend names.
use maglev::{permutation, Backend};

/// `n` backends named like documentation-range IPv6 addresses (`2001:db8::0:0`, `2001:db8::0:1`, ...).
pub fn backends(n: usize) -> Vec<Backend> {
    (0..n)
        .map(|i| Backend::new(format!("2001:db8::{:x}:{:x}", i / 65536, i % 65536), 1))
        .collect()
}

/// The paper's loop (section 3.4, Pseudocode 1) written directly: the permutation computed as
/// `(offset + next * skip) % M`, `entry` initialised to -1 and probed for emptiness.
pub fn paper_build(size: u32, backends: &[Backend]) -> Vec<i32> {
    let m = u64::from(size);
    let perm: Vec<(u64, u64)> = backends
        .iter()
        .map(|b| {
            let (offset, skip) = permutation(&b.name, size);
            (u64::from(offset), u64::from(skip))
        })
        .collect();
    let n = backends.len();
    let mut next = vec![0u64; n];
    let mut entry = vec![-1i32; size as usize];
    let mut filled = 0u64;
    loop {
        for i in 0..n {
            let (offset, skip) = perm[i];
            let mut c = (offset + next[i] * skip) % m;
            while entry[c as usize] >= 0 {
                next[i] += 1;
                c = (offset + next[i] * skip) % m;
            }
            entry[c as usize] = i as i32;
            next[i] += 1;
            filled += 1;
            if filled == m {
                return entry;
            }
        }
    }
}
