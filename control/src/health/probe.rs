//! The probes: tcp connect, http GET expecting 2xx, udp-dns query; each bounded by one deadline.
//!
//! They use the host kernel's sockets (std::net, blocking with timeouts) and run on the
//! health checker's own threads.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{CheckKind, Target};

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connect to {addr} failed: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("i/o with {addr} failed: {source}")]
    Io { addr: SocketAddr, source: io::Error },
    #[error("{addr} answered HTTP status {status}, expected 2xx")]
    HttpStatus { addr: SocketAddr, status: u16 },
    #[error("{addr} answered DNS rcode {rcode}, expected 0 (NOERROR) or 3 (NXDOMAIN)")]
    DnsRcode { addr: SocketAddr, rcode: u8 },
    #[error("{addr} sent a malformed answer: {what}")]
    Malformed {
        addr: SocketAddr,
        what: &'static str,
    },
    #[error("cannot build the probe for {addr}: {what}")]
    BadSpec {
        addr: SocketAddr,
        what: &'static str,
    },
}

/// Longest HTTP status line read before giving up on it.
const MAX_STATUS_LINE: usize = 1024;
/// DNS QTYPE SOA: every zone apex has one, so an authoritative server can always answer it.
const QTYPE_SOA: u16 = 6;
const QCLASS_IN: u16 = 1;
const DNS_HEADER_LEN: usize = 12;

/// Runs the probe `target.spec` describes, once; `none` always succeeds.
pub fn probe(target: &Target) -> Result<(), ProbeError> {
    let addr = target.probe_addr();
    let timeout = target.spec.settings.timeout;
    match target.spec.settings.kind {
        CheckKind::Tcp => probe_tcp(addr, timeout),
        CheckKind::Http => {
            let host = target.spec.host.clone().unwrap_or_else(|| addr.to_string());
            probe_http(addr, &host, &target.spec.settings.path, timeout)
        }
        CheckKind::UdpDns => {
            let name = target.spec.host.as_deref().unwrap_or(".");
            probe_udp_dns(addr, name, next_dns_id(), timeout)
        }
        CheckKind::None => Ok(()),
    }
}

/// Succeeds when `addr` accepts a TCP connection within `timeout`.
pub fn probe_tcp(addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    connect(addr, Deadline::new(addr, timeout)).map(drop)
}

/// Succeeds when `GET path` to `addr` is answered with a 2xx status line within `timeout`;
/// interim 1xx answers before it are skipped.
pub fn probe_http(
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let path = if path.is_empty() { "/" } else { path };
    // A space, CR or LF would let the config inject into the request.
    if !is_token_text(path) || !path.starts_with('/') {
        return Err(ProbeError::BadSpec {
            addr,
            what: "the http path must start with '/' and hold only visible ASCII",
        });
    }
    if !is_token_text(host) {
        return Err(ProbeError::BadSpec {
            addr,
            what: "the http host must hold only visible ASCII",
        });
    }
    let deadline = Deadline::new(addr, timeout);
    let mut stream = connect(addr, deadline)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .set_write_timeout(Some(deadline.remaining()?))
        .map_err(|source| ProbeError::Io { addr, source })?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| deadline.io_error(e))?;

    let mut buf = [0u8; MAX_STATUS_LINE];
    let mut len = 0;
    // Inside an interim (1xx) answer, whose header section runs up to an empty line.
    let mut interim = false;
    loop {
        if interim {
            // RFC 9110 15.2: interim answers come before the final one even unasked (103
            // Early Hints); their headers are skipped, as long as they are, within the deadline.
            if let Some(p) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
                buf.copy_within(p + 4..len, 0);
                len -= p + 4;
                interim = false;
                continue;
            }
            if len == buf.len() {
                // Keep what could start the empty line.
                buf.copy_within(len - 3..len, 0);
                len = 3;
            }
        } else if let Some(end) = buf[..len].windows(2).position(|w| w == b"\r\n") {
            let status = parse_status_line(&buf[..end]).ok_or(ProbeError::Malformed {
                addr,
                what: "not an HTTP/1.x status line",
            })?;
            if (100..200).contains(&status) && status != 101 {
                // From the status line's CRLF on, so an answer without headers ends at once.
                buf.copy_within(end..len, 0);
                len -= end;
                interim = true;
                continue;
            }
            return if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(ProbeError::HttpStatus { addr, status })
            };
        } else if len == buf.len() {
            return Err(ProbeError::Malformed {
                addr,
                what: "status line longer than 1024 bytes",
            });
        }
        stream
            .set_read_timeout(Some(deadline.remaining()?))
            .map_err(|source| ProbeError::Io { addr, source })?;
        match stream.read(&mut buf[len..]) {
            Ok(0) => {
                return Err(ProbeError::Malformed {
                    addr,
                    what: "connection closed before a final status line",
                })
            }
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.io_error(e)),
        }
    }
}

/// Succeeds when `addr` answers a DNS query for `name` SOA (id `id`) with NOERROR or NXDOMAIN.
///
/// Both rcodes prove the server looked the name up; SERVFAIL, REFUSED and the rest mean
/// it cannot serve, so an authoritative server is checked with a name of its own zone.
pub fn probe_udp_dns(
    addr: SocketAddr,
    name: &str,
    id: u16,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let query = dns_query(name, id).ok_or(ProbeError::BadSpec {
        addr,
        what: "the DNS name needs labels of 1 to 63 bytes, 255 bytes in all",
    })?;
    let deadline = Deadline::new(addr, timeout);
    let local: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((local, 0)).map_err(|source| ProbeError::Io { addr, source })?;
    // Connected, so the kernel drops datagrams from other sources and reports ICMP unreachable.
    socket
        .connect(addr)
        .map_err(|source| ProbeError::Connect { addr, source })?;
    socket
        .send(&query)
        .map_err(|source| ProbeError::Connect { addr, source })?;
    let question = &query[DNS_HEADER_LEN..];
    let mut buf = [0u8; 4096];
    loop {
        socket
            .set_read_timeout(Some(deadline.remaining()?))
            .map_err(|source| ProbeError::Io { addr, source })?;
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(ProbeError::Connect { addr, source: e })
            }
            Err(e) => return Err(deadline.io_error(e)),
        };
        match check_dns_answer(&buf[..n], id, question) {
            DnsAnswer::NotOurs => continue,
            DnsAnswer::Rcode(0 | 3) => return Ok(()),
            DnsAnswer::Rcode(rcode) => return Err(ProbeError::DnsRcode { addr, rcode }),
            DnsAnswer::Malformed(what) => return Err(ProbeError::Malformed { addr, what }),
        }
    }
}

/// A fresh DNS id per query: a counter spread over 16 bits from a per-process start.
pub fn next_dns_id() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static SEED: OnceLock<u32> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        nanos ^ std::process::id().rotate_left(16)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // An odd multiplier walks all 65536 ids before repeating.
    (seed.wrapping_add(n.wrapping_mul(40503)) & 0xffff) as u16
}

/// A DNS query: header with RD set, one question `name` SOA IN. `None` if `name` is invalid.
pub fn dns_query(name: &str, id: u16) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(DNS_HEADER_LEN + name.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&0x0100u16.to_be_bytes()); // standard query, recursion desired
    q.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    q.extend_from_slice(&[0; 6]); // ANCOUNT, NSCOUNT, ARCOUNT
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
    }
    q.push(0);
    if q.len() - DNS_HEADER_LEN > 255 {
        return None;
    }
    q.extend_from_slice(&QTYPE_SOA.to_be_bytes());
    q.extend_from_slice(&QCLASS_IN.to_be_bytes());
    Some(q)
}

/// What a received datagram says about our query.
#[derive(Debug, PartialEq, Eq)]
pub enum DnsAnswer {
    /// Not an answer to this query (other id, or a query): keep waiting.
    NotOurs,
    /// An answer to this query with this rcode.
    Rcode(u8),
    /// An answer with our id that doesn't hold up.
    Malformed(&'static str),
}

/// Classifies `msg` as the answer to the query with `id` and `question` (name, type, class).
pub fn check_dns_answer(msg: &[u8], id: u16, question: &[u8]) -> DnsAnswer {
    if msg.len() < DNS_HEADER_LEN {
        return DnsAnswer::NotOurs;
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if u16::from_be_bytes([msg[0], msg[1]]) != id || flags & 0x8000 == 0 {
        return DnsAnswer::NotOurs;
    }
    if (flags >> 11) & 0xf != 0 {
        return DnsAnswer::Malformed("answer with an opcode other than QUERY");
    }
    let rcode = (flags & 0xf) as u8;
    if rcode != 0 && rcode != 3 {
        // Servers may drop the question from a failure answer; the rcode is what counts.
        return DnsAnswer::Rcode(rcode);
    }
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    let echoed = msg.get(DNS_HEADER_LEN..DNS_HEADER_LEN + question.len());
    match echoed {
        Some(q) if qdcount == 1 && q.eq_ignore_ascii_case(question) => DnsAnswer::Rcode(rcode),
        _ => DnsAnswer::Malformed("answer does not echo the question"),
    }
}

/// Parses `HTTP/1.x NNN ...` and returns NNN.
pub(crate) fn parse_status_line(line: &[u8]) -> Option<u16> {
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    // RFC 9110 15: a status code is 100 to 599; anything else is not an HTTP answer.
    let status: u16 = std::str::from_utf8(code).ok()?.parse().ok()?;
    (100..=599).contains(&status).then_some(status)
}

fn is_token_text(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

fn connect(addr: SocketAddr, deadline: Deadline) -> Result<TcpStream, ProbeError> {
    TcpStream::connect_timeout(&addr, deadline.remaining()?).map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => deadline.timeout(),
        _ => ProbeError::Connect { addr, source: e },
    })
}

/// The one deadline a probe's connect, write and reads share.
#[derive(Clone, Copy)]
struct Deadline {
    addr: SocketAddr,
    timeout: Duration,
    at: Instant,
}

impl Deadline {
    fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Deadline {
            addr,
            timeout,
            at: Instant::now() + timeout,
        }
    }

    /// Time left, never zero (a zero socket timeout means "block forever" or is an error).
    fn remaining(&self) -> Result<Duration, ProbeError> {
        match self.at.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(self.timeout()),
        }
    }

    fn timeout(&self) -> ProbeError {
        ProbeError::Timeout {
            addr: self.addr,
            timeout: self.timeout,
        }
    }

    fn io_error(&self, e: io::Error) -> ProbeError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.timeout(),
            _ => ProbeError::Io {
                addr: self.addr,
                source: e,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 20 OK"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 000 OK"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 600 OK"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(parse_status_line(b"HTTP/2 200"), None);
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH"), None);
    }

    #[test]
    fn dns_query_encodes_names() {
        let root = dns_query(".", 0x1234).unwrap();
        assert_eq!(
            root,
            [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1]
        );
        let q = dns_query("example.org.", 1).unwrap();
        assert_eq!(&q[12..], b"\x07example\x03org\x00\x00\x06\x00\x01");
        assert_eq!(dns_query("example.org", 1), Some(q));
        assert_eq!(dns_query("a..b", 1), None);
        assert_eq!(dns_query(&"x".repeat(64), 1), None);
        let long = vec!["x".repeat(63); 5].join(".");
        assert_eq!(dns_query(&long, 1), None);
    }

    #[test]
    fn dns_answers_are_classified() {
        let query = dns_query("example.org", 7).unwrap();
        let question = &query[12..];
        let mut answer = query.clone();
        answer[2] |= 0x80;
        assert_eq!(check_dns_answer(&answer, 7, question), DnsAnswer::Rcode(0));
        assert_eq!(check_dns_answer(&answer, 8, question), DnsAnswer::NotOurs);
        assert_eq!(check_dns_answer(&query, 7, question), DnsAnswer::NotOurs);
        assert_eq!(
            check_dns_answer(&answer[..11], 7, question),
            DnsAnswer::NotOurs
        );
        let mut nx = answer.clone();
        nx[3] |= 3;
        assert_eq!(check_dns_answer(&nx, 7, question), DnsAnswer::Rcode(3));
        let mut refused = answer[..12].to_vec();
        refused[3] |= 5;
        assert_eq!(check_dns_answer(&refused, 7, question), DnsAnswer::Rcode(5));
        let mut other_q = answer.clone();
        other_q[13] = b'E'; // DNS names compare case-insensitively
        assert_eq!(check_dns_answer(&other_q, 7, question), DnsAnswer::Rcode(0));
        other_q[14] = b'z';
        assert!(matches!(
            check_dns_answer(&other_q, 7, question),
            DnsAnswer::Malformed(_)
        ));
    }

    #[test]
    fn dns_ids_do_not_repeat_soon() {
        let ids: std::collections::HashSet<u16> = (0..1000).map(|_| next_dns_id()).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn http_spec_injection_is_refused() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let err = probe_http(addr, "h", "/x HTTP/1.1\r\nX: y", Duration::from_millis(10));
        assert!(matches!(err, Err(ProbeError::BadSpec { .. })));
        let err = probe_http(addr, "h\r\n", "/", Duration::from_millis(10));
        assert!(matches!(err, Err(ProbeError::BadSpec { .. })));
    }
}
