//! Fixed-seed 64-bit hashing of backend names (permutations) and of whole tables (fingerprints).
//!
//! Every instance must derive the same permutation from the same backend name on any host, build
//! or CPU, so this is our own small function with fixed constants and explicit little-endian
//! reads, never `std`'s `RandomState` or a crate whose output may change between versions.
//!
//! `hash64(seed, bytes)`: `h = seed ^ (len * 0x9E3779B97F4A7C15)`; for each 8-byte little-endian
//! word `w` of the input (the last one zero-padded), `h = mum(h ^ w, 0xBF58476D1CE4E5B9)`, where
//! `mum(a, b)` is the 128-bit product of `a` and `b` with its halves XOR-ed (as in wyhash); then
//! the MurmurHash3 `fmix64` finaliser. The golden vectors below pin it.

/// Seed of the permutation's offset hash: ASCII "maglev01".
pub const SEED_OFFSET: u64 = u64::from_be_bytes(*b"maglev01");
/// Seed of the permutation's skip hash: ASCII "maglev02" (a second, independent hash).
pub const SEED_SKIP: u64 = u64::from_be_bytes(*b"maglev02");
/// Seed of the table fingerprint: ASCII "sluicefp".
pub const SEED_FINGERPRINT: u64 = u64::from_be_bytes(*b"sluicefp");

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const MIX: u64 = 0xBF58_476D_1CE4_E5B9;

#[inline(always)]
pub(crate) fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
#[inline(always)]
pub(crate) fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// The fixed 64-bit hash of `bytes` under `seed` (see the module documentation).
pub fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(GOLDEN_GAMMA);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = mum(h ^ u64::from_le_bytes(b), MIX);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = mum(h ^ u64::from_le_bytes(b), MIX);
    }
    fmix64(h)
}

/// Continues a running hash with one 64-bit word (used to fold a table into its fingerprint).
#[inline(always)]
pub(crate) fn absorb(h: u64, w: u64) -> u64 {
    mum(h ^ w, MIX) ^ w.rotate_left(29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_vectors_never_change() {
        // Changing these values changes every table of every deployed instance.
        assert_eq!(hash64(SEED_OFFSET, b""), GOLDEN[0]);
        assert_eq!(hash64(SEED_OFFSET, b"203.0.113.11"), GOLDEN[1]);
        assert_eq!(hash64(SEED_SKIP, b"203.0.113.11"), GOLDEN[2]);
        assert_eq!(hash64(SEED_OFFSET, b"2001:db8::1"), GOLDEN[3]);
        assert_eq!(hash64(SEED_FINGERPRINT, b"12345678"), GOLDEN[4]);
    }

    const GOLDEN: [u64; 5] = [
        0x2213_1D4E_C7B2_BE1B,
        0x42FE_05B7_62A2_B7A3,
        0x0EA0_675F_0948_F9B7,
        0x37CC_6757_E03C_5B3C,
        0x51D0_A958_58CF_33A6,
    ];

    #[test]
    fn seeds_length_and_every_byte_matter() {
        assert_ne!(hash64(SEED_OFFSET, b"a"), hash64(SEED_SKIP, b"a"));
        assert_ne!(hash64(SEED_OFFSET, b"a"), hash64(SEED_OFFSET, b"a\0"));
        let base = hash64(SEED_OFFSET, b"backend-0123456789");
        let mut bytes = *b"backend-0123456789";
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            assert_ne!(hash64(SEED_OFFSET, &bytes), base, "byte {i}");
            bytes[i] ^= 1;
        }
    }
}
