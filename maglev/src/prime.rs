//! Primality of a table size (Maglev needs a prime size so that every skip visits every slot).

/// Whether `n` is prime, by trial division (~1,400 divisions at most for sizes up to 2^24,
/// ~22,000 for any `u32`).
pub fn is_prime(n: u32) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    let n = u64::from(n);
    let mut d = 5u64;
    while d * d <= n {
        if n % d == 0 || n % (d + 2) == 0 {
            return false;
        }
        d += 6;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::is_prime;

    #[test]
    fn agrees_with_a_sieve_and_known_sizes() {
        let limit = 20_000usize;
        let mut composite = vec![false; limit];
        for i in 2..limit {
            if !composite[i] {
                for j in (i * i..limit).step_by(i) {
                    composite[j] = true;
                }
            }
            assert_eq!(is_prime(i as u32), !composite[i], "{i}");
        }
        assert!(!is_prime(0) && !is_prime(1));
        for p in [251, 65537, 655_373, 4_294_967_291] {
            assert!(is_prime(p), "{p}");
        }
        for c in [65535, 655_371, 4_294_967_295, 65521 * 65521] {
            assert!(!is_prime(c), "{c}");
        }
    }
}
