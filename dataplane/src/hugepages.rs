//! Big tables (the flow table) in transparent huge pages, so a random probe costs a cache miss
//! and not also a 4-level page walk: 2 MiB pages cover a 1 GiB table with 512 TLB entries.
//! In a VM only if the host backs guest memory with huge pages too (`bench/floor.sh` measures it).

use std::ptr::NonNull;

/// The x86-64 (and aarch64 with 4 KiB base pages) transparent huge page size.
const HUGE: usize = 2 << 20;

/// `n` copies of `value` in memory the kernel is asked to back with huge pages before first
/// touch. Where transparent huge pages are off (or the kernel refuses), this is a plain slice.
pub fn filled<T: Clone>(n: usize, value: T) -> Box<[T]> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if let Some(start) = NonNull::new(v.as_mut_ptr().cast::<u8>()) {
        advise_huge(start, bytes);
    }
    v.resize(n, value);
    v.into_boxed_slice()
}

/// Marks the whole 2 MiB pages inside `[start, start + bytes)` MADV_HUGEPAGE (a hint: errors,
/// e.g. EINVAL on kernels without THP, leave ordinary pages, which work the same).
fn advise_huge(start: NonNull<u8>, bytes: usize) {
    let addr = start.as_ptr() as usize;
    let first = addr.next_multiple_of(HUGE);
    let end = addr.saturating_add(bytes) / HUGE * HUGE;
    if end <= first {
        return;
    }
    // SAFETY: [first, end) lies inside the caller's live allocation of `bytes` bytes from
    // `start` (rounded inwards to whole huge pages); MADV_HUGEPAGE changes neither contents
    // nor the validity of the mapping, only how the kernel backs it.
    let rc = unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
    let _ = rc; // a refused hint is not an error: the memory is usable either way
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_holds_n_copies() {
        let s = filled(3 * HUGE / 8 + 5, 0xA5A5_A5A5_A5A5_A5A5u64);
        assert_eq!(s.len(), 3 * HUGE / 8 + 5);
        assert!(s.iter().all(|&x| x == 0xA5A5_A5A5_A5A5_A5A5));
        assert!(filled(0, 1u8).is_empty());
        assert_eq!(&*filled(3, 7u16), &[7, 7, 7]);
    }

    /// Where THP is on for madvised memory, a table of several huge pages gets some.
    #[test]
    fn big_tables_get_huge_pages_where_the_kernel_offers_them() {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !(mode.contains("[always]") || mode.contains("[madvise]")) {
            eprintln!(
                "transparent huge pages are off here ({}): nothing to check",
                mode.trim()
            );
            return;
        }
        let table = filled(8 * HUGE, 1u8);
        // madvise splits the mapping: the advised whole pages are a mapping of their own.
        let middle = table.as_ptr() as usize + 4 * HUGE;
        let huge_kb = anon_huge_kb_of(middle).expect("the table's mapping is in /proc/self/smaps");
        assert!(
            huge_kb >= 2048,
            "AnonHugePages of the table's mapping: {huge_kb} kB"
        );
    }

    /// AnonHugePages (kB) of the mapping that contains `addr`, from /proc/self/smaps.
    fn anon_huge_kb_of(addr: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((lo, hi)) = range.split_once('-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    inside = lo <= addr && addr < hi;
                    continue;
                }
            }
            if inside {
                if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                    return kb.trim().trim_end_matches("kB").trim().parse().ok();
                }
            }
        }
        None
    }
}
