//! The sd_notify protocol: tells systemd (a `Type=notify` unit) when sluice is ready, reloading
//! and stopping, with a one-line status for `systemctl status`.
//!
//! Each message is one datagram of `KEY=VALUE` lines sent to the unix socket `$NOTIFY_SOCKET`
//! names (a path, or an abstract name written with a leading '@'). Without the variable every
//! call does nothing. A send that fails is logged once and never stops the appliance: systemd
//! then times the start out or leaves the unit as it was, which says enough.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::reload_wait::Outcome;

/// A client of one notify socket.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// Set after the first failed send: a dead socket is reported once, not on every reload.
    warned: AtomicBool,
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Notifier {
            target: None,
            warned: AtomicBool::new(false),
        }
    }

    /// A notifier for `$NOTIFY_SOCKET`; disabled when it is unset or empty.
    pub fn from_env() -> Self {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(name) if !name.is_empty() => match name.to_str() {
                Some(name) => Self::for_socket(name).unwrap_or_else(|e| {
                    eprintln!("sluice: NOTIFY_SOCKET={name}: {e}; not notifying systemd");
                    Self::disabled()
                }),
                None => {
                    eprintln!(
                        "sluice: NOTIFY_SOCKET is not UTF-8 ({}); not notifying systemd",
                        name.to_string_lossy()
                    );
                    Self::disabled()
                }
            },
            _ => Self::disabled(),
        }
    }

    /// A notifier for the socket `name`: a filesystem path, or '@' and an abstract name.
    pub fn for_socket(name: &str) -> io::Result<Self> {
        let addr = match name.strip_prefix('@') {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes())?,
            None if name.starts_with('/') => SocketAddr::from_pathname(name)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not an absolute path or an @abstract name",
                ))
            }
        };
        Ok(Notifier {
            target: Some((UnixDatagram::unbound()?, addr)),
            warned: AtomicBool::new(false),
        })
    }

    /// The appliance is up: ports started, first snapshot published, HTTP listening.
    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nSTATUS={}\nMAINPID={}\n",
            one_line(status),
            std::process::id()
        ));
    }

    /// A reload begins; systemd (>= 253, `Type=notify-reload`) pairs it with the clock reading.
    pub fn reloading(&self) {
        let mut msg = "RELOADING=1\nSTATUS=reloading\n".to_owned();
        if let Some(us) = monotonic_usec() {
            msg.push_str(&format!("MONOTONIC_USEC={us}\n"));
        }
        self.send(&msg);
    }

    /// A reload ended; the unit is ready again either way (a refused file changes nothing).
    pub fn reloaded(&self, outcome: &Outcome) {
        let status = match outcome {
            Ok(epoch) => format!("reloaded (epoch {epoch})"),
            Err(msg) => format!("reload refused: {}", one_line(msg)),
        };
        self.send(&format!("READY=1\nSTATUS={status}\n"));
    }

    /// Shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping\n");
    }

    fn send(&self, msg: &str) {
        let Some((sock, addr)) = &self.target else {
            return;
        };
        let result = sock.send_to_addr(msg.as_bytes(), addr).and_then(|n| {
            if n == msg.len() {
                Ok(())
            } else {
                Err(io::Error::other(format!("sent {n} of {} bytes", msg.len())))
            }
        });
        if let Err(e) = result {
            if !self.warned.swap(true, Ordering::Relaxed) {
                let first = msg.lines().next().unwrap_or_default();
                eprintln!(
                    "sluice: cannot notify systemd ({first}) at {}: {e}; further failures not logged",
                    describe(addr)
                );
            }
        }
    }
}

/// The process's notifier, from `$NOTIFY_SOCKET` as it was at the first call.
pub fn get() -> &'static Notifier {
    static NOTIFIER: OnceLock<Notifier> = OnceLock::new();
    NOTIFIER.get_or_init(Notifier::from_env)
}

/// The first line of `s`, so a multi-line reason cannot add KEY=VALUE lines of its own.
fn one_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default().trim_end()
}

fn describe(addr: &SocketAddr) -> String {
    if let Some(p) = addr.as_pathname() {
        return p.display().to_string();
    }
    match addr.as_abstract_name() {
        Some(n) => format!("@{}", String::from_utf8_lossy(n)),
        None => "an unnamed socket".to_owned(),
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC against.
fn monotonic_usec() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    secs.checked_mul(1_000_000)?.checked_add(nanos / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn listener(addr: &SocketAddr) -> UnixDatagram {
        let sock = UnixDatagram::bind_addr(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn lines(msg: &str) -> Vec<&str> {
        msg.lines().collect()
    }

    /// Every message the appliance sends, in order, as systemd's socket receives them.
    fn exchange(n: &Notifier, sock: &UnixDatagram) {
        n.ready("running (epoch 1)");
        let pid = format!("MAINPID={}", std::process::id());
        assert_eq!(
            lines(&recv(sock)),
            ["READY=1", "STATUS=running (epoch 1)", pid.as_str()]
        );

        n.reloading();
        let msg = recv(sock);
        let l = lines(&msg);
        assert_eq!(l[..2], ["RELOADING=1", "STATUS=reloading"]);
        let us: u64 = l[2]
            .strip_prefix("MONOTONIC_USEC=")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {msg:?}"));
        let now = monotonic_usec().unwrap();
        assert!(us <= now && now - us < 5_000_000, "{us} vs now {now}");

        n.reloaded(&Ok(7));
        assert_eq!(lines(&recv(sock)), ["READY=1", "STATUS=reloaded (epoch 7)"]);
        n.reloaded(&Err(
            "a.yaml:3:5: weight must be >= 0\nSTOPPING=1 is not a key here".into(),
        ));
        assert_eq!(
            lines(&recv(sock)),
            [
                "READY=1",
                "STATUS=reload refused: a.yaml:3:5: weight must be >= 0"
            ]
        );
        n.stopping();
        assert_eq!(lines(&recv(sock)), ["STOPPING=1", "STATUS=stopping"]);
    }

    #[test]
    fn messages_reach_a_socket_path() {
        let dir = std::env::temp_dir().join(format!("sluice-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let sock = listener(&SocketAddr::from_pathname(&path).unwrap());
        let n = Notifier::for_socket(path.to_str().unwrap()).unwrap();
        assert!(n.target.is_some());
        exchange(&n, &sock);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        let name = format!("sluice-notify-test-{}", std::process::id());
        let sock = listener(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap());
        let n = Notifier::for_socket(&format!("@{name}")).unwrap();
        exchange(&n, &sock);
    }

    #[test]
    fn no_socket_is_a_no_op() {
        let n = Notifier::disabled();
        assert!(n.target.is_none());
        n.ready("running");
        n.reloading();
        n.stopping();
    }

    #[test]
    fn a_relative_name_is_refused() {
        let e = Notifier::for_socket("notify.sock").err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    /// A socket nobody listens on: the sends fail, are reported once, and nothing panics.
    #[test]
    fn a_dead_socket_is_not_fatal() {
        let n = Notifier::for_socket("/nonexistent/sluice/notify.sock").unwrap();
        n.ready("running");
        assert!(n.warned.load(Ordering::Relaxed));
        n.stopping();
    }
}
