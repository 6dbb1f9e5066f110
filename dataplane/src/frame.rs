//! A packet in a buffer with headroom (an mbuf's shape): bytes `start..start+len` of `buf`.

/// Why a frame could not be grown or shrunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame does not fit its buffer: start {start} + len {len} > {cap}")]
    OutOfBounds {
        start: usize,
        len: usize,
        cap: usize,
    },
    #[error("not enough headroom: need {need}, have {have}")]
    NoHeadroom { need: usize, have: usize },
    #[error("not enough tailroom: need {need}, have {have}")]
    NoTailroom { need: usize, have: usize },
}

/// Checksum work left to the NIC; the DPDK glue turns it into mbuf offload flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOffload {
    /// The outer IPv4 header checksum was left at zero for the NIC to fill.
    pub outer_ipv4_checksum: bool,
    pub l2_len: u8,
    pub l3_len: u8,
}

/// A packet inside a larger buffer: `buf` is the whole mbuf data room, the packet is
/// `buf[start..start + len]`, so headers can be prepended into the headroom in place.
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
    /// Set by the pipeline when it asks the NIC to finish a checksum.
    pub offload: TxOffload,
    /// Set by the glue when the NIC verified the packet's IPv4 header checksum (rx offload):
    /// the parser then trusts it instead of summing the header again.
    pub ipv4_checksum_good: bool,
}

impl<'a> Frame<'a> {
    /// A frame over `buf` whose packet is `buf[start..start + len]`.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Result<Self, FrameError> {
        let cap = buf.len();
        match start.checked_add(len) {
            Some(end) if end <= cap => {}
            _ => return Err(FrameError::OutOfBounds { start, len, cap }),
        }
        Ok(Self {
            buf,
            start,
            len,
            offload: TxOffload::default(),
            ipv4_checksum_good: false,
        })
    }

    /// Offset of the packet's first byte in the buffer (DPDK's `data_off`).
    #[inline]
    pub fn start(&self) -> usize {
        self.start
    }

    /// Length of the packet (DPDK's `data_len`).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn headroom(&self) -> usize {
        self.start
    }

    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.start - self.len
    }

    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// Grows the packet by `n` bytes at the front (into the headroom).
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Result<(), FrameError> {
        if n > self.start {
            return Err(FrameError::NoHeadroom {
                need: n,
                have: self.start,
            });
        }
        self.start -= n;
        self.len += n;
        Ok(())
    }

    /// Makes the packet the `len` bytes that start `keep_from` bytes into it less `front` new
    /// bytes (`front` may reach into the headroom, `len` into the tailroom) and returns them,
    /// with one bounds check.
    #[inline]
    pub fn reshape(
        &mut self,
        keep_from: usize,
        front: usize,
        len: usize,
    ) -> Result<&mut [u8], FrameError> {
        let start = (self.start + keep_from)
            .checked_sub(front)
            .ok_or(FrameError::NoHeadroom {
                need: front.saturating_sub(keep_from),
                have: self.start,
            })?;
        let room = self.buf.len().saturating_sub(start);
        let Some(d) = self.buf.get_mut(start..).and_then(|b| b.get_mut(..len)) else {
            return Err(FrameError::NoTailroom {
                need: len,
                have: room,
            });
        };
        self.start = start;
        self.len = len;
        Ok(d)
    }

    /// Sets the packet length, growing into the tailroom or cutting the tail.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> Result<(), FrameError> {
        let room = self.buf.len() - self.start;
        if len > room {
            return Err(FrameError::NoTailroom {
                need: len - self.len,
                have: room - self.len,
            });
        }
        self.len = len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_moves_both_ends_with_one_check() {
        // A 10-byte packet at 8 in a 32-byte buffer: 4 bytes of it kept behind 6 new ones.
        let mut buf: Vec<u8> = (0..32).collect();
        let mut f = Frame::new(&mut buf, 8, 10).expect("fits");
        let d = f.reshape(4, 6, 12).expect("room");
        assert_eq!(d, &[6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
        assert_eq!((f.start(), f.len()), (6, 12));
        // Fewer new bytes than are cut: the front moves in.
        let d = f.reshape(5, 2, 3).expect("room");
        assert_eq!(d, &[9, 10, 11]);
        assert_eq!((f.start(), f.len()), (9, 3));
        // Not enough headroom, then not enough tailroom: errors with data, frame unchanged.
        assert_eq!(
            f.reshape(0, 10, 1),
            Err(FrameError::NoHeadroom { need: 10, have: 9 })
        );
        assert_eq!(
            f.reshape(0, 0, 24),
            Err(FrameError::NoTailroom { need: 24, have: 23 })
        );
        assert_eq!((f.start(), f.len(), f.data()), (9, 3, &[9u8, 10, 11][..]));
        // Exactly to both ends of the buffer.
        assert_eq!(f.reshape(0, 9, 32).map(|d| d.len()), Ok(32));
        assert_eq!((f.start(), f.len()), (0, 32));
    }
}
