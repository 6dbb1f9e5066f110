//! A tiny HTTP/1.1 client over std's `TcpStream` (or `UnixStream`), for the commands that talk to
//! the appliance's metrics listener or control socket (`sluice reload`, `sluice drain`, `sluice
//! top`): one request per connection, as both serve them, so no crate (and no async runtime) is
//! needed for it.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;

use control::control_socket;
use std::time::{Duration, Instant};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The most one read of an answer takes (an answer may end up this much over its limit).
pub(crate) const READ_CHUNK: usize = 16 << 10;

/// One request: what to send and how long and large the answer may be.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// `HOST:PORT`, for the `Host` header.
    pub authority: &'a str,
    pub user_agent: &'a str,
    /// The whole exchange, connection included, must finish within this.
    pub timeout: Duration,
    /// An answer over this many bytes is refused (it is not the appliance's).
    pub max_response: usize,
}

/// Sends `req` (without a body) to the first of `addrs` that accepts; the status and body of
/// the answer, or what went wrong.
pub fn send(req: &Request<'_>, addrs: &[SocketAddr]) -> Result<(u16, String), String> {
    let timeout = req.timeout;
    let deadline = deadline_after(timeout);
    let mut last = "no address".to_owned();
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT.min(timeout)) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) if addrs.len() > 1 => last = format!("{addr}: {e}"),
            Err(e) => last = e.to_string(),
        }
    }
    exchange(stream.ok_or(last)?, req, deadline)
}

/// [`send`] over the appliance's control socket; `Err(None)` when nothing listens at `addr`, so
/// the caller can try the TCP listener instead. The socket's holder must be root or this user
/// (`control_socket::trusted`): nothing is sent to a process that took the name otherwise.
pub fn send_unix(
    req: &Request<'_>,
    addr: &std::os::unix::net::SocketAddr,
) -> Result<(u16, String), Option<String>> {
    let deadline = deadline_after(req.timeout);
    let stream = UnixStream::connect_addr(addr).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => None,
        _ => Some(e.to_string()),
    })?;
    let holder = control_socket::peer_uid(&stream).map_err(|e| Some(e.to_string()))?;
    let own = control_socket::own_uid();
    if !control_socket::trusted(holder, own) {
        return Err(Some(format!(
            "held by uid {holder}, neither root nor this user (uid {own}): not sluice's, nothing sent"
        )));
    }
    exchange(stream, req, deadline).map_err(Some)
}

/// `timeout` from now; a timeout past what the clock can hold (`--timeout 1e19`) is a deadline
/// that never comes rather than a panic.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

/// What the exchange needs of a connected stream besides reading and writing.
pub(crate) trait Timeouts {
    fn read_timeout(&self, t: Option<Duration>) -> std::io::Result<()>;
    fn write_timeout(&self, t: Option<Duration>) -> std::io::Result<()>;
}

impl Timeouts for TcpStream {
    fn read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(t)
    }
    fn write_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_write_timeout(t)
    }
}

impl Timeouts for UnixStream {
    fn read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_read_timeout(t)
    }
    fn write_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.set_write_timeout(t)
    }
}

/// Writes `req` on `stream` and reads the answer, all before `deadline`.
fn exchange<S: Read + Write + Timeouts>(
    mut stream: S,
    req: &Request<'_>,
    deadline: Instant,
) -> Result<(u16, String), String> {
    let timeout = req.timeout;
    let length = if req.method == "POST" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\n{length}Connection: close\r\n\r\n",
        req.method, req.path, req.authority, req.user_agent
    );
    // A server may answer and close before reading (the control socket refusing a user): the
    // write then fails, but its answer is still there to read.
    let sent = stream
        .write_timeout(Some(timeout))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| format!("sending the request: {e}"));
    let answer = read_answer(&mut stream, req, deadline);
    match (sent, answer) {
        (Err(e), Err(_)) => Err(e),
        (_, answer) => answer,
    }
}

/// Reads one answer from `stream` until `deadline`.
pub(crate) fn read_answer<S: Read + Timeouts>(
    stream: &mut S,
    req: &Request<'_>,
    deadline: Instant,
) -> Result<(u16, String), String> {
    let timeout = req.timeout;
    let mut answer = Vec::new();
    let mut buf = [0u8; READ_CHUNK];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no complete answer within {timeout:?}"));
        }
        stream.read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no complete answer within {timeout:?}"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
        if answer.len() > req.max_response {
            return Err(format!("an answer over {} bytes", req.max_response));
        }
        if let Some(done) = complete(&answer, false) {
            return done;
        }
    }
    complete(&answer, true)
        .unwrap_or_else(|| Err("the connection closed before a full answer".into()))
}

/// The status and body once `answer` holds a whole response: Content-Length bytes of body, or
/// without that header everything up to `eof`. `None` while more is due.
pub(crate) fn complete(answer: &[u8], eof: bool) -> Option<Result<(u16, String), String>> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let body = &answer[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    };
    let Some(status) = status else {
        return Some(Err(format!("not an HTTP answer: {status_line:?}")));
    };
    let length = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    let n = match length {
        Some(n) if body.len() >= n => n,
        _ if !eof => return None,
        Some(n) => {
            return Some(Err(format!(
                "the connection closed after {} of {n} body bytes",
                body.len()
            )))
        }
        None => body.len(),
    };
    Some(Ok((
        status,
        String::from_utf8_lossy(&body[..n]).into_owned(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        assert_eq!(complete(a, false), Some(Ok((200, "hello".into()))));
        assert_eq!(complete(&a[..a.len() - 1], false), None);
        assert!(matches!(complete(&a[..a.len() - 1], true), Some(Err(_))));
        assert_eq!(complete(b"HTTP/1.1 500 Internal", true), None);
        let no_length = b"HTTP/1.0 403 Forbidden\r\n\r\nnot you\n";
        assert_eq!(complete(no_length, false), None);
        assert_eq!(
            complete(no_length, true),
            Some(Ok((403, "not you\n".into())))
        );
        assert!(matches!(complete(b"SSH-2.0\r\n\r\n", false), Some(Err(_))));
    }
}
