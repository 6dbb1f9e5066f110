//! The stamp that follows the L4 header of every generated packet, 10 bytes (so a 64-byte
//! IPv4 TCP frame still holds it): a 2-byte magic, the low 40 bits of the sender's TSC (see
//! [`full_tsc`]) and the flow number's low 24 bits ([`STAMP_FLOWS`]), all big-endian. The
//! flow comes back from here, not from the addresses: fullnat rewrites the client's.

pub const STAMP_MAGIC: u16 = 0x5347;
pub const STAMP_LEN: usize = 10;
/// Flow numbers the stamp tells apart: tracked flows (ack and udp modes) must stay below.
pub const STAMP_FLOWS: u32 = 1 << 24;
const TSC_BITS: u32 = 40;
/// The TSC bits a stamp carries.
pub const TSC_MASK: u64 = (1 << TSC_BITS) - 1;

mod field {
    pub const MAGIC: usize = 0;
    pub const TSC: usize = 2;
    pub const FLOW: usize = 7;
}

/// What a stamp says: the flow number (mod [`STAMP_FLOWS`]) and the TSC's low 40 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub flow: u32,
    pub tsc: u64,
}

/// Writes the stamp of `flow` sent at `tsc` into `b[..STAMP_LEN]` (the caller sized `b`).
#[inline]
pub fn emit(b: &mut [u8], flow: u32, tsc: u64) {
    b[field::MAGIC..field::TSC].copy_from_slice(&STAMP_MAGIC.to_be_bytes());
    b[field::TSC..field::FLOW].copy_from_slice(&(tsc & TSC_MASK).to_be_bytes()[3..]);
    b[field::FLOW..STAMP_LEN].copy_from_slice(&(flow % STAMP_FLOWS).to_be_bytes()[1..]);
}

/// Reads the stamp at the start of `b`: none if too short or the magic is not ours.
#[inline]
pub fn read(b: &[u8]) -> Option<Stamp> {
    let b = b.get(..STAMP_LEN)?;
    if b[field::MAGIC..field::TSC] != STAMP_MAGIC.to_be_bytes() {
        return None;
    }
    let mut tsc = [0u8; 8];
    tsc[3..].copy_from_slice(&b[field::TSC..field::FLOW]);
    let mut flow = [0u8; 4];
    flow[1..].copy_from_slice(&b[field::FLOW..STAMP_LEN]);
    Some(Stamp {
        flow: u32::from_be_bytes(flow),
        tsc: u64::from_be_bytes(tsc),
    })
}

/// The full TSC of a stamp's low 40 bits `stamp`, received at TSC `now`: the latest time at
/// or before `now` with those low bits (right while packets are younger than 2^40 cycles,
/// minutes at any TSC rate).
pub fn full_tsc(now: u64, stamp: u64) -> u64 {
    now.wrapping_sub(now.wrapping_sub(stamp) & TSC_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_unwrap_to_the_latest_matching_tsc() {
        let sent = 0x1234_5678_9abc_def0u64;
        let stamp = sent & TSC_MASK;
        for age in [0, 1, 3_000_000_000, TSC_MASK] {
            assert_eq!(full_tsc(sent + age, stamp), sent, "age {age}");
        }
        // Past 2^40 cycles it is ambiguous: the latest candidate wins.
        assert_eq!(full_tsc(sent + TSC_MASK + 1, stamp), sent + TSC_MASK + 1);
        // Near zero (a TSC that just started) nothing underflows into garbage.
        assert_eq!(full_tsc(5, 3), 3);
    }

    #[test]
    fn a_stamp_reads_back_its_low_bits_and_refuses_a_wrong_magic() {
        let mut b = [0u8; STAMP_LEN + 2];
        emit(&mut b, STAMP_FLOWS + 77, 0x0102_0304_0506_0708);
        assert_eq!(
            read(&b),
            Some(Stamp {
                flow: 77,
                tsc: 0x04_0506_0708
            })
        );
        assert_eq!(read(&b[..STAMP_LEN - 1]), None);
        b[0] ^= 1;
        assert_eq!(read(&b), None);
    }
}
