//! Flow hashing: a 5-tuple (or a source address alone) to a 32-bit hash, and a hash to a table slot.
//!
//! Every instance behind ECMP must send a flow to the same backend, so these functions are
//! fixed: fixed keys, no per-process seed, no dependency on endianness of the host (bytes are
//! read little-endian explicitly). Changing them changes every flow's backend: the golden
//! vectors in the tests below fail loudly if anybody does.
//!
//! The construction is three 64x64->128 "multiply and fold" rounds (as in wyhash), one for
//! each address and one for ports+protocol, then a final fold. That is 4 multiplications per
//! packet and no table lookups.
//!
//! The hash is **not symmetric**: `(a, b)` and `(b, a)` hash differently, because the source and
//! destination take different keys. sluice only ever sees the client-to-VIP direction (replies
//! return from backends directly, DSR), so symmetry would buy nothing and would cost the
//! distribution of flows between the same two hosts.
//!
//! IPv4 addresses are hashed in their IPv4-mapped IPv6 form (`::ffff:a.b.c.d`, see
//! [`v4_mapped`]) so one function serves both families.

/// Fixed keys: the first hexadecimal digits of pi (nothing up the sleeve).
const K: [u64; 6] = [
    0x243F_6A88_85A3_08D3,
    0x1319_8A2E_0370_7344,
    0xA409_3822_299F_31D0,
    0x082E_FA98_EC4E_6C89,
    0x4528_21E6_38D0_1377,
    0xBE54_66CF_34E9_0C6C,
];

#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn half(b: &[u8; 16], hi: bool) -> u64 {
    let o = if hi { 8 } else { 0 };
    u64::from_le_bytes([
        b[o],
        b[o + 1],
        b[o + 2],
        b[o + 3],
        b[o + 4],
        b[o + 5],
        b[o + 6],
        b[o + 7],
    ])
}

#[inline(always)]
fn fold(h: u64) -> u32 {
    let x = mum(h ^ K[5], K[0]);
    (x ^ (x >> 32)) as u32
}

/// The IPv4-mapped IPv6 form `::ffff:a.b.c.d` of an IPv4 address.
#[inline]
pub const fn v4_mapped(a: [u8; 4]) -> [u8; 16] {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3],
    ]
}

/// Whether `a` is in the IPv4-mapped form (`::ffff:0:0/96`).
#[inline]
pub fn is_v4_mapped(a: &[u8; 16]) -> bool {
    a[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
}

/// The IPv4 address inside an IPv4-mapped one ([`v4_mapped`]'s inverse), byte by byte.
#[inline]
pub const fn v4_unmapped(a: &[u8; 16]) -> [u8; 4] {
    [a[12], a[13], a[14], a[15]]
}

/// Hash of the full 5-tuple. Ports are in host order; addresses are 16 bytes (see [`v4_mapped`]).
#[inline]
pub fn five_tuple(src: &[u8; 16], dst: &[u8; 16], sport: u16, dport: u16, proto: u8) -> u32 {
    let ports = (u64::from(sport) << 16) | u64::from(dport) | (u64::from(proto) << 32);
    let h = mum(half(src, false) ^ K[0], half(src, true) ^ K[1])
        ^ mum(half(dst, false) ^ K[2], half(dst, true) ^ K[3])
        ^ mum(ports ^ K[4], K[5]);
    fold(h)
}

/// [`five_tuple`] of two IPv4 addresses, the same value without building their mapped forms:
/// a mapped address's first half is zero and its second `[0, 0, ff, ff, a, b, c, d]`.
#[inline(always)]
pub fn five_tuple_v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, proto: u8) -> u32 {
    let high = |a: [u8; 4]| (u64::from(u32::from_le_bytes(a)) << 32) | 0xffff_0000;
    let ports = (u64::from(sport) << 16) | u64::from(dport) | (u64::from(proto) << 32);
    let h = mum(K[0], high(src) ^ K[1]) ^ mum(K[2], high(dst) ^ K[3]) ^ mum(ports ^ K[4], K[5]);
    fold(h)
}

/// Hash of the source address alone (client affinity: every flow of one client, one backend).
#[inline]
pub fn source_ip(src: &[u8; 16]) -> u32 {
    fold(mum(half(src, false) ^ K[0], half(src, true) ^ K[1]))
}

/// A hash to a slot of a table of `size` entries, without a division (Lemire's
/// multiply-shift range reduction: `floor(hash * size / 2^32)`).
#[inline(always)]
pub fn slot(hash: u32, size: u32) -> usize {
    ((u64::from(hash) * u64::from(size)) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 16] = v4_mapped([192, 0, 2, 1]);
    const B: [u8; 16] = v4_mapped([198, 51, 100, 10]);

    #[test]
    fn golden_vectors_never_change() {
        // Changing these values re-routes every flow of every deployed instance.
        assert_eq!(five_tuple(&A, &B, 40000, 443, 6), GOLDEN_V4_TCP);
        let c6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let v6 = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        assert_eq!(five_tuple(&c6, &v6, 5353, 53, 17), GOLDEN_V6_UDP);
        assert_eq!(source_ip(&A), GOLDEN_SRC);
    }

    const GOLDEN_V4_TCP: u32 = 2_821_918_024;
    const GOLDEN_V6_UDP: u32 = 3_817_518_140;
    const GOLDEN_SRC: u32 = 3_038_829_181;

    #[test]
    fn the_ipv4_form_hashes_as_the_mapped_one() {
        assert_eq!(
            five_tuple_v4([192, 0, 2, 1], [198, 51, 100, 10], 40000, 443, 6),
            GOLDEN_V4_TCP
        );
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            let (s, d) = ([b[0], b[1], b[2], b[3]], [b[4], b[5], b[6], b[7]]);
            let (sp, dp, p) = ((x >> 20) as u16, (x >> 40) as u16, (x >> 56) as u8);
            assert_eq!(
                five_tuple_v4(s, d, sp, dp, p),
                five_tuple(&v4_mapped(s), &v4_mapped(d), sp, dp, p),
                "{s:?} {d:?} {sp} {dp} {p}"
            );
            assert_eq!(v4_unmapped(&v4_mapped(s)), s);
        }
    }

    #[test]
    fn not_symmetric_and_sensitive_to_every_field() {
        let base = five_tuple(&A, &B, 1000, 80, 6);
        assert_ne!(base, five_tuple(&B, &A, 80, 1000, 6));
        assert_ne!(base, five_tuple(&A, &B, 1001, 80, 6));
        assert_ne!(base, five_tuple(&A, &B, 1000, 81, 6));
        assert_ne!(base, five_tuple(&A, &B, 1000, 80, 17));
        assert_ne!(
            base,
            five_tuple(&v4_mapped([192, 0, 2, 2]), &B, 1000, 80, 6)
        );
    }

    #[test]
    fn slots_are_in_range_and_spread() {
        let size = 65537u32;
        let mut counts = vec![0u32; 16];
        for port in 0..=u16::MAX {
            let s = slot(five_tuple(&A, &B, port, 443, 6), size);
            assert!(s < size as usize);
            counts[s * 16 / size as usize] += 1;
        }
        // 65536 flows over 16 buckets: 4096 expected each; allow 10%.
        for c in counts {
            assert!((3686..=4506).contains(&c), "bucket count {c}");
        }
        assert_eq!(slot(u32::MAX, size), size as usize - 1);
        assert_eq!(slot(0, size), 0);
    }
}
