//! A fixed-capacity burst of owned mbufs, the unit of rx_burst and tx_burst.

use std::mem::MaybeUninit;

use super::mbuf::Mbuf;

/// Up to `N` owned mbufs, stored as the array of `rte_mbuf` pointers DPDK's burst calls take
/// (`Mbuf` is `repr(transparent)`). Slots `0..len` are initialised; the rest are not.
pub struct Burst<const N: usize = 32> {
    slots: [MaybeUninit<Mbuf>; N],
    len: usize,
}

impl<const N: usize> Default for Burst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Burst<N> {
    pub const CAPACITY: usize = N;

    pub fn new() -> Self {
        Self {
            slots: [const { MaybeUninit::uninit() }; N],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Adds an mbuf at the end, or gives it back when the burst is full.
    pub fn push(&mut self, mbuf: Mbuf) -> Result<(), Mbuf> {
        if self.len == N {
            return Err(mbuf);
        }
        self.slots[self.len].write(mbuf);
        self.len += 1;
        Ok(())
    }

    /// Takes the last mbuf.
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot len was initialised and is now outside 0..len, so it is read once.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots 0..len are initialised; MaybeUninit<Mbuf> has Mbuf's layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf>(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in as_slice, and &mut self makes the view exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Mbuf> {
        self.as_slice().iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Mbuf> {
        self.as_mut_slice().iter_mut()
    }

    /// Keeps the mbufs for which `keep` returns true, in order; frees the others and returns
    /// how many were freed.
    pub fn retain_mut(&mut self, mut keep: impl FnMut(&mut Mbuf) -> bool) -> usize {
        let len = self.len;
        // Shrink first so a panic in `keep` leaks at worst; it can never double free.
        self.len = 0;
        let mut kept = 0;
        for i in 0..len {
            // SAFETY: slot i (i < old len) is initialised and read exactly once here.
            let mut m = unsafe { self.slots[i].assume_init_read() };
            if keep(&mut m) {
                self.slots[kept].write(m);
                kept += 1;
                self.len = kept;
            }
        }
        len - kept
    }

    /// Frees every mbuf (in one rte_pktmbuf_free_bulk call) and returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        if n == 0 {
            return 0;
        }
        self.len = 0;
        let count = u32::try_from(n).unwrap_or(u32::MAX);
        // SAFETY: slots 0..n held owned mbufs; len is now 0 so nothing else frees them.
        unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr().cast(), count) };
        n
    }

    /// Removes and yields every mbuf, first to last.
    pub fn drain(&mut self) -> Drain<'_, N> {
        let len = self.len;
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end: len,
        }
    }

    /// The free tail as raw pointer slots for rx_burst: (first free slot, how many).
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, usize) {
        // SAFETY: len <= N, so the pointer stays within (or one past) the array.
        let ptr = unsafe { self.slots.as_mut_ptr().add(self.len) };
        (ptr.cast(), N - self.len)
    }

    /// Marks `n` more slots initialised after rx_burst wrote them.
    ///
    /// # Safety
    /// The `n` slots after `len` must hold owned mbufs and `len + n <= N`.
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        self.len += n;
    }

    /// The filled slots as raw pointers for tx_burst: (first slot, how many).
    pub(crate) fn filled_raw(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, usize) {
        (self.slots.as_mut_ptr().cast(), self.len)
    }

    /// Forgets the first `n` mbufs (the driver took them) and moves the unsent tail to the front.
    ///
    /// # Safety
    /// The first `n` mbufs must have been handed over to DPDK, and `n <= len`.
    pub(crate) unsafe fn consume_front(&mut self, n: usize) {
        let rest = self.len - n;
        // SAFETY: slots n..len are initialised; copy handles the (possible) overlap.
        unsafe { std::ptr::copy(self.slots.as_ptr().add(n), self.slots.as_mut_ptr(), rest) };
        self.len = rest;
    }
}

impl<const N: usize> Drop for Burst<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Iterator of [`Burst::drain`]; mbufs it does not yield are freed when it is dropped.
pub struct Drain<'a, const N: usize> {
    burst: &'a mut Burst<N>,
    next: usize,
    end: usize,
}

impl<const N: usize> Iterator for Drain<'_, N> {
    type Item = Mbuf;

    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        // SAFETY: slots next..end are initialised and each is read exactly once.
        let m = unsafe { self.burst.slots[self.next].assume_init_read() };
        self.next += 1;
        Some(m)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl<const N: usize> Drop for Drain<'_, N> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}
