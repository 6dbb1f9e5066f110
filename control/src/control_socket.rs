//! The control socket: the lifecycle routes (reload, drain) for this host's root and the
//! appliance's own user, over a Unix socket, whatever `metrics.lifecycle` says of HTTP.
//!
//! `metrics.lifecycle` decides who may reload or drain over the TCP listener, which is often
//! bound where the scraping network reaches it. The operator on the host needs a way in that
//! policy cannot close: `sluice reload` (systemd's `ExecReload`) and `sluice drain` try this
//! socket first. It is an abstract socket (Linux: no file to create, clean up or leave behind,
//! scoped to the network namespace like the listener) named after the configured
//! `metrics.listen`, so the CLI finds it from the same config file and two appliances that can
//! both bind their listeners in one namespace have different sockets. Who connects is checked
//! with SO_PEERCRED, before a byte is read: uid 0 or the appliance's effective uid, the same
//! people who could signal it. The protocol is the listener's: one HTTP/1.1 request per
//! connection, served one at a time (the handlers are the slow part, and they serialise anyway).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{self, UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use maglev::hash::hash64;

use crate::http::{self, RequestError, Response, Router};

/// How long a client may take to send its request.
const READ_DEADLINE: Duration = Duration::from_secs(2);
/// A request head over this is refused (the CLI's are under 200 bytes).
const MAX_HEAD: usize = 8 << 10;
/// The most one read of a request takes.
pub(crate) const READ_CHUNK: usize = 1024;
/// How often the accept loop looks at the stop flag.
const POLL_MS: libc::c_int = 100;

/// Seed of a port-0 socket name's file fingerprint (maglev's fixed hash: the same in every build,
/// so a CLI finds an appliance of another version): ASCII "sluicesk".
const SOCKET_SEED: u64 = u64::from_be_bytes(*b"sluicesk");

/// The abstract socket name for an appliance whose `metrics.listen` is `listen`, as configured,
/// started from the file `config` (port 0 included: the CLI cannot know the port the kernel
/// picked, but it knows this). A listen address with a port is one appliance's in a namespace;
/// port 0 is not (any number bind it), so its name also carries a fingerprint of the file's
/// canonical path (64-bit, hex): `sluice reload -c B` must not reach appliance A because both say port 0.
pub fn name(listen: SocketAddr, config: Option<&Path>) -> String {
    let file = config
        .filter(|_| listen.port() == 0)
        .and_then(|p| std::fs::canonicalize(p).ok());
    match file {
        Some(f) => format!(
            "sluice/{listen}/{:016x}",
            hash64(SOCKET_SEED, f.as_os_str().as_bytes())
        ),
        None => format!("sluice/{listen}"),
    }
}

/// The socket address for [`name`].
pub fn address(listen: SocketAddr, config: Option<&Path>) -> io::Result<net::SocketAddr> {
    net::SocketAddr::from_abstract_name(name(listen, config).as_bytes())
}

/// Whether a process of user `uid` at the other end is trusted by one running as `own`: root or
/// the same user. Both ends ask it: the appliance of its client, and the CLI of the socket's
/// holder (an abstract name is first come, first served, so another user could take it).
pub fn trusted(uid: u32, own: u32) -> bool {
    uid == 0 || uid == own
}

/// Why a peer with user id `uid` may not use the socket of an appliance running as `own`.
pub fn refusal(uid: u32, own: u32) -> Option<String> {
    (!trusted(uid, own)).then(|| {
        format!(
            "the control socket answers root and the appliance's own user (uid {own}) only, not uid {uid}"
        )
    })
}

/// This process's effective user id.
pub fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The serving thread; stopped and joined on drop.
pub struct ControlSocket {
    name: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlSocket {
    /// Binds the socket for `listen` and serves `router` on it from a thread of its own, pinned
    /// to `core` (control's CPU, as the HTTP threads are) when given.
    pub fn bind(
        listen: SocketAddr,
        config: Option<&Path>,
        router: Router,
        core: Option<usize>,
    ) -> io::Result<ControlSocket> {
        let listener = UnixListener::bind_addr(&address(listen, config)?)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let own = own_uid();
        let thread = thread::Builder::new()
            .name("sluice-ctl-sock".into())
            .spawn(move || {
                http::pin(core);
                serve(&listener, &router, own, &flag)
            })?;
        Ok(ControlSocket {
            name: name(listen, config),
            stop,
            thread: Some(thread),
        })
    }

    /// The abstract name, for the log (`@` marks an abstract socket, as `ss -x` shows it).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &UnixListener, router: &Router, own: u32, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        if !readable(listener.as_raw_fd(), POLL_MS) {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                // One client's failure (it hung up, it was slow) is its own; the loop goes on.
                let _ = answer(stream, router, own);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("sluice: control socket: accept failed: {e}");
                thread::sleep(Duration::from_millis(u64::from(POLL_MS.unsigned_abs())));
            }
        }
    }
}

/// Whether `fd` has something to accept within `ms` milliseconds.
fn readable(fd: RawFd, ms: libc::c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the duration of the call, and 1 says so.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n > 0 && p.revents & libc::POLLIN != 0
}

/// The user id of the process at the other end of `stream`.
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given, and SO_PEERCRED on a
    // connected Unix stream socket fills in exactly a `ucred`.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Serves the one request of `stream`, if its peer may ask.
fn answer(mut stream: UnixStream, router: &Router, own: u32) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(READ_DEADLINE))?;
    let response = match peer_uid(&stream).map(|uid| refusal(uid, own)) {
        Ok(Some(why)) => Response::text(403, format!("{why}\n")),
        Err(e) => Response::text(403, format!("cannot tell who is asking: {e}\n")),
        Ok(None) => match read_request(&mut stream) {
            Ok(request) => router.handle(&request),
            Err(RequestError::Reply(status, why)) => Response::text(status, format!("{why}\n")),
        },
    };
    stream.write_all(&http::encode(&response, false))
}

/// Reads and parses one request head within the read deadline.
fn read_request(stream: &mut UnixStream) -> Result<http::Request, RequestError> {
    let deadline = Instant::now() + READ_DEADLINE;
    read_head(stream, MAX_HEAD, |stream| {
        let left = deadline.saturating_duration_since(Instant::now());
        !left.is_zero() && stream.set_read_timeout(Some(left)).is_ok()
    })
}

/// Reads and parses one request head of at most `max_head` bytes from `stream` (a request with
/// a body is refused: 413); `may_read` is asked before each read, and 408 ends it when it says no.
pub(crate) fn read_head<R: Read>(
    stream: &mut R,
    max_head: usize,
    mut may_read: impl FnMut(&mut R) -> bool,
) -> Result<http::Request, RequestError> {
    const SLOW: RequestError = RequestError::Reply(408, "no complete request in time");
    let mut head = Vec::new();
    let mut buf = [0u8; READ_CHUNK];
    loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            // One read can carry a head past the limit and its end both: still too large.
            if end > max_head {
                return Err(RequestError::Reply(431, "request head too large"));
            }
            let request = http::parse_head(&head[..end])?;
            return match http::content_length(&request)? {
                0 => Ok(request),
                _ => Err(RequestError::Reply(
                    413,
                    "the control socket takes no request body",
                )),
            };
        }
        // Not before: a head of up to the limit may still lack part of its blank line.
        if head.len() >= max_head + 4 {
            return Err(RequestError::Reply(431, "request head too large"));
        }
        if !may_read(stream) {
            return Err(SLOW);
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err(RequestError::Reply(400, "bad request")),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(SLOW),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_the_owner_may_ask_nobody_else() {
        assert!(trusted(0, 1000) && trusted(1000, 1000) && !trusted(1001, 1000));
        assert_eq!(refusal(0, 1000), None);
        assert_eq!(refusal(1000, 1000), None);
        assert_eq!(refusal(0, 0), None);
        let why = refusal(1001, 1000).unwrap_or_default();
        assert!(
            why.contains("uid 1000") && why.contains("uid 1001"),
            "{why}"
        );
        assert!(refusal(1000, 0).is_some());
    }

    #[test]
    fn the_peer_of_a_socket_pair_is_this_user() {
        let (a, _b) = UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(peer_uid(&a).unwrap_or_else(|e| panic!("{e}")), own_uid());
    }

    /// The configured listen address; with port 0 also the file's fingerprint, the same for
    /// every spelling of its path and different for another file.
    #[test]
    fn the_name_is_the_configured_listen_address() {
        let a: SocketAddr = "127.0.0.1:9610".parse().unwrap_or_else(|e| panic!("{e}"));
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert_eq!(name(a, None), "sluice/127.0.0.1:9610");
        assert_eq!(name(a, Some(&file)), "sluice/127.0.0.1:9610");
        let b: SocketAddr = "[2001:db8::1]:0".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(name(b, None), "sluice/[2001:db8::1]:0");
        let named = name(b, Some(&file));
        let hex = named
            .strip_prefix("sluice/[2001:db8::1]:0/")
            .unwrap_or_default();
        assert!(
            hex.len() == 16 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
            "{named}"
        );
        let roundabout = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/../Cargo.toml");
        assert_eq!(name(b, Some(&roundabout)), named);
        let other = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
        assert_ne!(name(b, Some(&other)), named);
    }

    /// The head limit holds when one read brings a longer head and its blank line together.
    #[test]
    fn a_head_over_the_limit_is_refused_even_in_one_read() {
        let request = b"GET /-/reload HTTP/1.1\r\nHost: x\r\n\r\n";
        let limit = request.len() - 4;
        assert!(read_head(&mut &request[..], limit, |_| true).is_ok());
        let over = read_head(&mut &request[..], limit - 1, |_| true);
        assert!(matches!(over, Err(RequestError::Reply(431, _))));
    }

    /// A request over the socket reaches the router; a second appliance cannot take the name.
    #[test]
    fn serves_the_router_and_owns_its_name() {
        // A port nothing listens on: only the name matters here.
        let listen: SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}"));
        let listen = SocketAddr::new(listen.ip(), 40000 + (std::process::id() % 20000) as u16);
        let router = Router::new().post("/-/reload", |r: &http::Request| {
            Response::text(200, format!("reloaded {}\n", r.path))
        });
        let sock =
            ControlSocket::bind(listen, None, router, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sock.name(), name(listen, None));
        assert!(ControlSocket::bind(listen, None, Router::new(), None).is_err());
        let ask = |text: &str| {
            let mut s =
                UnixStream::connect_addr(&address(listen, None).unwrap_or_else(|e| panic!("{e}")))
                    .unwrap_or_else(|e| panic!("{e}"));
            s.write_all(text.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap_or_else(|e| panic!("{e}"));
            out
        };
        let ok = ask("POST /-/reload HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert!(
            ok.starts_with("HTTP/1.1 200 ") && ok.ends_with("reloaded /-/reload\n"),
            "{ok}"
        );
        let missing = ask("POST /-/nothing HTTP/1.1\r\n\r\n");
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
        let body = ask("POST /-/reload HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        assert!(body.starts_with("HTTP/1.1 413 "), "{body}");
        let garbage = ask("hello\r\n\r\n");
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
        drop(sock);
        // Gone with the server: the name is free again.
        let again = ControlSocket::bind(listen, None, Router::new(), None);
        assert!(again.is_ok(), "the name was not released");
    }
}
