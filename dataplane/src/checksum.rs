//! Internet checksum (RFC 1071): one's-complement sums over bytes and pseudo-headers.

/// Adds `data` (as big-endian 16-bit words, odd tail padded with zero) to a running sum.
#[inline]
pub fn add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        // Fold early so the accumulator never overflows, whatever the length.
        if sum & 0x8000_0000 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// Folds a running sum and complements it: the value to write into a checksum field.
#[inline]
pub fn finish(sum: u32) -> u16 {
    // Two folds suffice for any u32: the first leaves at most 0x1fffe, the second 0xffff.
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Checksum of one contiguous byte range (for example an IPv4 header with its field zeroed).
#[inline]
pub fn of(data: &[u8]) -> u16 {
    finish(add(0, data))
}

/// Whether a 20-byte IPv4 header (no options) carries a valid checksum: the same verdict as
/// `of(h) == 0`. Summed as five native-endian 32-bit words: the one's-complement sum is the
/// same mod 0xffff for any word size and byte order (RFC 1071 section 2), and "all ones" reads
/// the same either way round.
#[inline]
pub fn ipv4_header20_ok(h: &[u8; 20]) -> bool {
    let w = |i: usize| u64::from(u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    let s = w(0) + w(4) + w(8) + w(12) + w(16);
    // Folding s to 16 bits keeps it mod 0xffff and ends at 0xffff for any nonzero multiple:
    // so "folds to all ones" is "a nonzero multiple of 0xffff" (a multiply, no fold loop).
    s != 0 && s % 0xffff == 0
}

/// RFC 1624 equation 3, HC' = ~(~HC + ~m + m'): the checksum `check` of data whose 16-bit
/// words `old` (even length) became `new` (the same length), without summing the rest again.
#[inline]
pub fn adjust(check: u16, old: &[u8], new: &[u8]) -> u16 {
    // A u64 never overflows (at most 0x1fffe a word): one fold at the end, not one a word.
    let mut sum = u64::from(!check);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        let (o, n) = (
            u16::from_be_bytes([o[0], o[1]]),
            u16::from_be_bytes([n[0], n[1]]),
        );
        sum += u64::from(!o) + u64::from(n);
    }
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    finish(((sum & 0xffff_ffff) + (sum >> 32)) as u32)
}

/// The pseudo-header sum for an upper-layer checksum over IPv4.
#[inline]
pub fn pseudo_v4(src: &[u8; 4], dst: &[u8; 4], proto: u8, len: u16) -> u32 {
    let s = add(add(0, src), dst);
    s + u32::from(proto) + u32::from(len)
}

/// The pseudo-header sum for an upper-layer checksum over IPv6 (RFC 8200 section 8.1).
#[inline]
pub fn pseudo_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, len: u32) -> u32 {
    let s = add(add(0, src), dst);
    s + (len >> 16) + (len & 0xffff) + u32::from(next_header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_folds_any_u32_like_the_loop() {
        let by_loop = |mut s: u32| {
            while s >> 16 != 0 {
                s = (s & 0xffff) + (s >> 16);
            }
            !(s as u16)
        };
        let edges = [
            0,
            1,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0x1_ffff,
            0xfffe_ffff,
            u32::MAX,
        ];
        // Plus 100k sums spread over the whole u32 range (an odd multiplier visits it evenly).
        let spread = (0..100_000u32).map(|i| i.wrapping_mul(0x9e37_79b9));
        for s in edges.into_iter().chain(spread) {
            assert_eq!(finish(s), by_loop(s), "{s:#x}");
        }
    }

    #[test]
    fn adjust_agrees_with_summing_again() {
        let mut rng = 0x0bad_cafe_1234_5678u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..20_000 {
            let mut data = [0u8; 40];
            data.iter_mut().for_each(|b| *b = next() as u8);
            let c = of(&data);
            let at = (next() % 18) as usize * 2;
            let len = 2 * (1 + (next() % 2) as usize);
            let old = data[at..at + len].to_vec();
            let new: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            data[at..at + len].copy_from_slice(&new);
            // One's complement has two zeros: compare what a receiver checks (sum to zero).
            let mut with = data.to_vec();
            with.extend_from_slice(&adjust(c, &old, &new).to_be_bytes());
            assert_eq!(of(&with), 0, "{data:?}");
        }
    }

    #[test]
    fn rfc1071_example() {
        // The worked example of RFC 1071 section 3: sum 0xddf2, checksum 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(of(&data), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(of(&[0x12, 0x34, 0x56]), of(&[0x12, 0x34, 0x56, 0x00]));
    }

    #[test]
    fn the_20_byte_check_agrees_with_the_generic_sum() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for i in 0..200_000u32 {
            let mut h = [0u8; 20];
            for b in h.iter_mut() {
                // Mostly 0x00 / 0xff bytes, to reach the folding corner cases.
                let r = next();
                *b = match r % 4 {
                    0 => 0,
                    1 => 0xff,
                    _ => (r >> 8) as u8,
                };
            }
            if i % 2 == 0 {
                // Half of them with a correct checksum.
                h[10] = 0;
                h[11] = 0;
                let c = of(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            assert_eq!(ipv4_header20_ok(&h), of(&h) == 0, "{h:?}");
        }
        assert!(!ipv4_header20_ok(&[0; 20]));
        assert!(ipv4_header20_ok(&[0xff; 20]));
    }

    #[test]
    fn a_buffer_with_its_checksum_sums_to_zero() {
        let mut hdr = [
            0x45, 0, 0, 0x54, 0, 0, 0x40, 0, 0x40, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        let c = of(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(of(&hdr), 0);
    }
}
