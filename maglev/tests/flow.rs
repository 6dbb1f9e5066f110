//! Properties of the flow hash and its reduction to a slot (the golden vectors live in `flow.rs`).
use maglev::flow::{five_tuple, slot, source_ip, v4_mapped};
use proptest::prelude::*;

proptest! {
    #[test]
    fn slot_is_in_range_and_monotone(a: u32, b: u32, size in 1u32..=maglev::MAX_SIZE) {
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(slot(hi, size) < size as usize);
        prop_assert!(slot(lo, size) <= slot(hi, size));
    }

    /// Reversing a flow changes its hash (the hash is not symmetric; see flow.rs).
    #[test]
    fn reversed_flows_hash_differently(a: [u8; 4], b: [u8; 4], sport: u16, dport: u16) {
        prop_assume!(a != b || sport != dport);
        let (a, b) = (v4_mapped(a), v4_mapped(b));
        prop_assert_ne!(five_tuple(&a, &b, sport, dport, 6), five_tuple(&b, &a, dport, sport, 6));
    }
}

/// Consecutive client addresses (the common case: one subnet) spread evenly over a table.
#[test]
fn source_ip_spreads_consecutive_clients() {
    let size = 65537u32;
    let mut buckets = [0u32; 16];
    for i in 0..65536u32 {
        let [_, _, c, d] = i.to_be_bytes();
        let s = slot(source_ip(&v4_mapped([10, 20, c, d])), size);
        buckets[s * 16 / size as usize] += 1;
    }
    for b in buckets {
        assert!((3686..=4506).contains(&b), "bucket {b} of 4096 expected");
    }
}
