//! One owned packet buffer: Drop returns it to its pool; data views are computed in Rust.

use std::ptr::NonNull;

use super::error::DpdkError;

/// An owned `rte_mbuf`. Exactly one `Mbuf` exists per buffer, so dropping it (which calls
/// rte_pktmbuf_free) cannot double free, and no view into it outlives it.
///
/// A frame larger than one buffer may arrive as a chain (net_pcap and memif chain such
/// frames even without the scatter offload). Then [`Mbuf::data`] covers the first segment
/// only and the resizing methods refuse it: code that needs the whole packet checks
/// [`Mbuf::segments`] and drops and counts chains; forwarding one unchanged is fine.
#[repr(transparent)]
pub struct Mbuf(NonNull<dpdk_sys::rte_mbuf>);

// SAFETY: an mbuf may be freed from any thread (mempool put is thread-safe) and we own it
// exclusively, so moving it between threads is sound.
unsafe impl Send for Mbuf {}
// SAFETY: &Mbuf only reads the mbuf's fields and data.
unsafe impl Sync for Mbuf {}

/// The whole buffer of an mbuf with the current data window inside it, for code that builds
/// headers in the headroom.
pub struct BufferMut<'a> {
    /// buf_addr .. buf_addr + buf_len.
    pub buffer: &'a mut [u8],
    /// Where the packet data starts in `buffer`.
    pub data_off: usize,
    /// How many bytes of packet data follow `data_off`.
    pub data_len: usize,
}

impl Mbuf {
    /// Takes ownership of a raw mbuf (None if null).
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nothing else owns or will free.
    pub unsafe fn from_raw(raw: *mut dpdk_sys::rte_mbuf) -> Option<Self> {
        NonNull::new(raw).map(Self)
    }

    /// Gives up ownership; the caller must free or transmit the mbuf.
    pub fn into_raw(self) -> *mut dpdk_sys::rte_mbuf {
        let raw = self.0.as_ptr();
        std::mem::forget(self);
        raw
    }

    fn raw(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for as long as self lives.
        unsafe { self.0.as_ref() }
    }

    fn raw_mut(&mut self) -> &mut dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf exclusively for as long as self lives.
        unsafe { self.0.as_mut() }
    }

    /// Length of the data in this (first) segment.
    pub fn len(&self) -> usize {
        usize::from(self.raw().data_len)
    }

    pub fn is_empty(&self) -> bool {
        self.raw().data_len == 0
    }

    /// Length of the whole packet over all segments.
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Number of segments in the chain (1 for a contiguous packet).
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Port the mbuf was received on.
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Records the port the mbuf was received on (not every PMD sets it: net_ring does not).
    pub fn set_port(&mut self, port: u16) {
        self.raw_mut().port = port;
    }

    /// Offload flags (RTE_MBUF_F_*).
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }

    /// Whether the NIC checked this packet's IPv4 header checksum and found it good
    /// (RTE_MBUF_F_RX_IP_CKSUM_GOOD; false for bad, unknown and not checked).
    #[inline]
    pub fn ipv4_checksum_good(&self) -> bool {
        // SAFETY: the flag constants are plain data defined by shim.c.
        let (mask, good) = unsafe {
            (
                dpdk_sys::sluice_mbuf_f_rx_ip_cksum_mask,
                dpdk_sys::sluice_mbuf_f_rx_ip_cksum_good,
            )
        };
        self.raw().ol_flags & mask == good
    }

    /// Asks the NIC to compute the IPv4 header checksum of the packet whose IPv4 header
    /// starts `l2_len` bytes in and is `l3_len` bytes long (the port must have
    /// RTE_ETH_TX_OFFLOAD_IPV4_CKSUM enabled).
    pub fn request_ipv4_checksum(&mut self, l2_len: u8, l3_len: u16) {
        // SAFETY: the flag constants are plain data defined by shim.c.
        let flags =
            unsafe { dpdk_sys::sluice_mbuf_f_tx_ipv4 | dpdk_sys::sluice_mbuf_f_tx_ip_cksum };
        let m = self.raw_mut();
        m.ol_flags |= flags;
        // SAFETY: both views of the tx_offload union are plain integers; the bindgen
        // accessors write only the l2_len and l3_len bit-fields DPDK defines.
        unsafe {
            m.__bindgen_anon_3
                .__bindgen_anon_1
                .set_l2_len(u64::from(l2_len));
            m.__bindgen_anon_3
                .__bindgen_anon_1
                .set_l3_len(u64::from(l3_len));
        }
    }

    /// Size of the data buffer (headroom + data room).
    pub fn buf_len(&self) -> usize {
        usize::from(self.raw().buf_len)
    }

    /// Free bytes before the data.
    pub fn headroom(&self) -> usize {
        usize::from(self.raw().data_off)
    }

    /// Free bytes after the data.
    pub fn tailroom(&self) -> usize {
        self.buf_len()
            .saturating_sub(self.headroom())
            .saturating_sub(self.len())
    }

    /// The packet bytes of the first segment.
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: DPDK keeps data_off + data_len <= buf_len and buf_addr valid for buf_len
        // bytes; the slice borrows self, so the mbuf cannot be freed while it is alive.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The packet bytes of the first segment, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as in data(). &mut self makes the view exclusive among Mbuf handles; that
        // nothing else writes the bytes rests on the buffer being this packet's alone, which
        // holds for what a PMD receives (refcnt 1, no clone sharing it; see buffer_mut).
        unsafe {
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The whole buffer and the data window in it.
    pub fn buffer_mut(&mut self) -> BufferMut<'_> {
        let m = self.raw_mut();
        let (off, len, cap) = (
            usize::from(m.data_off),
            usize::from(m.data_len),
            usize::from(m.buf_len),
        );
        // SAFETY: buf_addr is valid for buf_len bytes. &mut self makes the view exclusive among
        // Mbuf handles; that no one else uses these bytes rests on the buffer, headroom
        // included, being this packet's alone: true of a direct mbuf with refcnt 1, what the
        // PMDs sluice runs on receive into; not of a clone (rte_pktmbuf_clone, never made here)
        // nor of a driver's shared external buffer without per-packet headroom.
        let buffer = unsafe { std::slice::from_raw_parts_mut(m.buf_addr.cast::<u8>(), cap) };
        BufferMut {
            buffer,
            data_off: off,
            data_len: len,
        }
    }

    /// Moves the data window to `offset..offset + len` of the buffer (single segment only).
    pub fn set_data_range(&mut self, offset: usize, len: usize) -> Result<(), DpdkError> {
        let segments = self.segments();
        if segments != 1 {
            return Err(DpdkError::MultiSegment(segments));
        }
        let capacity = self.buf_len();
        let out_of_bounds = DpdkError::OutOfBounds {
            offset,
            len,
            capacity,
        };
        match offset.checked_add(len) {
            Some(end) if end <= capacity => {}
            _ => return Err(out_of_bounds),
        }
        let (Ok(off16), Ok(len16), Ok(len32)) = (
            u16::try_from(offset),
            u16::try_from(len),
            u32::try_from(len),
        ) else {
            return Err(out_of_bounds);
        };
        let m = self.raw_mut();
        m.data_off = off16;
        m.data_len = len16;
        m.pkt_len = len32;
        Ok(())
    }

    /// Grows the data at the front by `n` bytes (into the headroom) and returns the new bytes.
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], DpdkError> {
        let (off, len) = (self.headroom(), self.len());
        let start = off.checked_sub(n).ok_or(DpdkError::OutOfBounds {
            offset: 0,
            len: len + n,
            capacity: self.buf_len(),
        })?;
        self.set_data_range(start, len + n)?;
        Ok(&mut self.data_mut()[..n])
    }

    /// Removes `n` bytes from the front of the data.
    pub fn adj(&mut self, n: usize) -> Result<(), DpdkError> {
        let (off, len) = (self.headroom(), self.len());
        if n > len {
            return Err(DpdkError::OutOfBounds {
                offset: off + n,
                len: 0,
                capacity: off + len,
            });
        }
        self.set_data_range(off + n, len - n)
    }

    /// Grows the data at the end by `n` bytes (into the tailroom) and returns the new bytes.
    pub fn append(&mut self, n: usize) -> Result<&mut [u8], DpdkError> {
        let (off, len) = (self.headroom(), self.len());
        self.set_data_range(off, len + n)?;
        Ok(&mut self.data_mut()[len..])
    }

    /// Removes `n` bytes from the end of the data.
    pub fn trim(&mut self, n: usize) -> Result<(), DpdkError> {
        let (off, len) = (self.headroom(), self.len());
        let new_len = len.checked_sub(n).ok_or(DpdkError::OutOfBounds {
            offset: off,
            len: n,
            capacity: len,
        })?;
        self.set_data_range(off, new_len)
    }

    /// Replaces the data with `bytes` after the default headroom.
    pub fn copy_from_slice(&mut self, bytes: &[u8]) -> Result<(), DpdkError> {
        let off = (dpdk_sys::RTE_PKTMBUF_HEADROOM as usize).min(self.buf_len());
        self.set_data_range(off, bytes.len())?;
        self.data_mut().copy_from_slice(bytes);
        Ok(())
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (and its chain) exclusively; after this nothing refers to it.
        unsafe { dpdk_sys::rte_pktmbuf_free(self.0.as_ptr()) };
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("data_off", &self.headroom())
            .field("data_len", &self.len())
            .field("pkt_len", &self.pkt_len())
            .field("segments", &self.segments())
            .finish()
    }
}
