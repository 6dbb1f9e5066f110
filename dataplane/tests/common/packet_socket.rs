//! A raw AF_PACKET socket bound to one interface (the kernel side of a tap), closed on drop
//! (pass or fail).
use std::ffi::CString;

pub struct PacketSocket(i32);

impl PacketSocket {
    /// Sends only: protocol 0, so it never queues what the tap sends.
    pub fn sender(ifname: &str) -> Self {
        Self::bind(ifname, 0)
    }

    /// Receives every frame the tap sends, each `recv` waiting at most 200 ms.
    pub fn receiver(ifname: &str) -> Self {
        let sock = Self::bind(ifname, (libc::ETH_P_ALL as u16).to_be());
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: `timeout` is a live timeval and the length is its size.
        let rc = unsafe {
            libc::setsockopt(
                sock.0,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        assert_eq!(rc, 0, "SO_RCVTIMEO: {}", std::io::Error::last_os_error());
        sock
    }

    /// Bound to `ifname` for `protocol` (network order).
    fn bind(ifname: &str, protocol: u16) -> Self {
        let name = CString::new(ifname).unwrap();
        let all = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) with constant arguments.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(all)) };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let sock = Self(fd);
        // SAFETY: `name` is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(index > 0, "no interface {ifname}");
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol;
        addr.sll_ifindex = index as i32;
        // SAFETY: `addr` is a live sockaddr_ll and the length is its size.
        let rc = unsafe {
            libc::bind(
                sock.0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        sock
    }

    pub fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is readable for its whole length.
        let n = unsafe { libc::send(self.0, frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// One frame, or None after the receive timeout.
    pub fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        // SAFETY: `buf` is writable for its whole length.
        let n = unsafe { libc::recv(self.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        let n = usize::try_from(n).ok()?;
        buf.truncate(n);
        Some(buf)
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}
