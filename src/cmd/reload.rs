//! `sluice reload`: ask a running appliance to reload (`POST /-/reload` on its metrics listener)
//! and report the outcome, so `systemctl reload` fails when the file is refused.
//!
//! Exit 0: reloaded. 1: refused (500, the reason printed) or not allowed (403), or `-c` names a
//! file whose listen address cannot be read. 2: no answer, or no outcome (202: still running).
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use control::config::{self, DEFAULT_METRICS_LISTEN, MAX_CONFIG_BYTES};
use yaml_serde::Value;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// An answer larger than this is not sluice's; the reason of a refusal is a few lines.
const MAX_RESPONSE: usize = 64 << 10;

/// Where to send the request.
pub enum Target<'a> {
    /// The `metrics.listen` of this config file.
    Config(&'a Path),
    /// `http://HOST:PORT` (or `HOST:PORT`).
    Url(&'a str),
}

/// What failed, and how the process exits for it.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

pub fn main(target: Target<'_>, timeout: Duration) -> ExitCode {
    match reload(target, timeout) {
        Ok(body) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("sluice: {}", f.message.trim_end());
            ExitCode::from(f.code)
        }
    }
}

fn reload(target: Target<'_>, timeout: Duration) -> Result<String, Failure> {
    let (authority, addrs, from) = match target {
        Target::Config(path) => {
            let addr = connect_addr(listen_of(path)?);
            let from = format!(" (metrics.listen of {})", path.display());
            (addr.to_string(), vec![addr], from)
        }
        Target::Url(url) => {
            let authority = authority_of(url).map_err(|e| fail(2, format!("--url {url}: {e}")))?;
            let addrs: Vec<SocketAddr> = authority
                .to_socket_addrs()
                .map_err(|e| fail(2, format!("--url {url}: {e}")))?
                .map(connect_addr)
                .collect();
            (authority.to_owned(), addrs, String::new())
        }
    };
    let (status, body) = post(&authority, &addrs, timeout).map_err(|e| {
        fail(
            2,
            format!("no answer from sluice at {authority}{from}: {e}"),
        )
    })?;
    match status {
        200 => Ok(body),
        500 => Err(fail(1, body)),
        403 => Err(fail(
            1,
            format!("POST /-/reload at {authority} not allowed: {body}"),
        )),
        202 => Err(fail(
            2,
            format!("{authority}: {body} (the outcome is in sluice's log and /metrics)"),
        )),
        other => Err(fail(
            2,
            format!(
                "{authority}: unexpected answer {other} to POST /-/reload: {}",
                body.lines().next().unwrap_or_default()
            ),
        )),
    }
}

/// The listen address in a config file. A file that fails validation still names it (the
/// appliance will say why it refuses the file); one that does not parse as YAML does not.
fn listen_of(path: &Path) -> Result<SocketAddr, Failure> {
    let listen = match config::load_file(path) {
        Ok(c) => c.metrics.listen,
        Err(errors) => {
            let text = read_small(path).map_err(|e| fail(1, format!("{}: {e}", path.display())))?;
            // The validator's errors already say what is wrong with the document.
            listen_in(&text).map_err(|_| {
                fail(
                    1,
                    format!(
                        "{}: its metrics.listen cannot be read, so nothing was sent (the running appliance keeps its config):\n{errors}",
                        path.display()
                    ),
                )
            })?
        }
    };
    if listen.port() == 0 {
        return Err(fail(
            2,
            format!(
                "{}: metrics.listen has port 0, so the bound port is only in sluice's log (\"metrics on http://...\"); use --url",
                path.display()
            ),
        ));
    }
    Ok(listen)
}

fn read_small(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    if text.len() > MAX_CONFIG_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than the limit of {MAX_CONFIG_BYTES} bytes"
        )));
    }
    Ok(text)
}

/// `metrics.listen` of a YAML document, or the default when the document leaves it out.
fn listen_in(text: &str) -> Result<SocketAddr, String> {
    let doc: Value = yaml_serde::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let metrics = match &doc {
        Value::Mapping(m) => m.get("metrics"),
        Value::Null => None,
        _ => return Err("the document is not a mapping".into()),
    };
    let listen = match metrics {
        None | Some(Value::Null) => None,
        Some(Value::Mapping(m)) => m.get("listen"),
        Some(_) => return Err("metrics is not a mapping".into()),
    };
    match listen {
        None | Some(Value::Null) => Ok(DEFAULT_METRICS_LISTEN),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| format!("metrics.listen {s:?} is not an address:port")),
        Some(_) => Err("metrics.listen is not an address:port".into()),
    }
}

/// The address to connect to for a listen address: loopback for a wildcard one.
fn connect_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `HOST:PORT` out of `http://HOST:PORT[/]` (or `HOST:PORT[/-/reload]`).
fn authority_of(url: &str) -> Result<&str, String> {
    if url.starts_with("https://") {
        return Err("sluice serves plain http".into());
    }
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if !matches!(path, "" | "/" | "/-/reload") {
        return Err(format!(
            "the path {path} is not /-/reload (give the listener's address, e.g. http://127.0.0.1:9610)"
        ));
    }
    if authority.is_empty() {
        return Err("no host:port".into());
    }
    if !authority.contains(':') || authority.ends_with(']') {
        return Err("no port (e.g. http://127.0.0.1:9610)".into());
    }
    Ok(authority)
}

/// `POST /-/reload` to the first of `addrs` that accepts; the status and body of the answer.
fn post(authority: &str, addrs: &[SocketAddr], timeout: Duration) -> Result<(u16, String), String> {
    let deadline = Instant::now() + timeout;
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
    let mut stream = stream.ok_or(last)?;
    let request = format!(
        "POST /-/reload HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: sluice-reload\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no complete answer within {timeout:?}"));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
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
        if answer.len() > MAX_RESPONSE {
            return Err(format!("an answer over {MAX_RESPONSE} bytes"));
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
fn complete(answer: &[u8], eof: bool) -> Option<Result<(u16, String), String>> {
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
    fn listen_in_a_document() {
        assert_eq!(listen_in("services: []\n"), Ok(DEFAULT_METRICS_LISTEN));
        assert_eq!(listen_in(""), Ok(DEFAULT_METRICS_LISTEN));
        assert_eq!(
            listen_in("metrics:\n  lifecycle: any\n"),
            Ok(DEFAULT_METRICS_LISTEN)
        );
        assert_eq!(
            listen_in("metrics:\n  listen: \"[::]:9700\"\nservices: [{weight: -5}]\n"),
            Ok("[::]:9700".parse().unwrap())
        );
        assert!(listen_in("metrics:\n  listen: nowhere\n").is_err());
        assert!(listen_in("metrics: [1]\n").is_err());
        assert!(listen_in("metrics: {listen: [\n").is_err());
        assert!(listen_in("- 1\n").is_err());
    }

    #[test]
    fn wildcards_become_loopback() {
        let c = |s: &str| connect_addr(s.parse().unwrap()).to_string();
        assert_eq!(c("0.0.0.0:9610"), "127.0.0.1:9610");
        assert_eq!(c("[::]:9610"), "[::1]:9610");
        assert_eq!(c("192.0.2.1:80"), "192.0.2.1:80");
    }

    #[test]
    fn urls() {
        assert_eq!(authority_of("http://127.0.0.1:9610"), Ok("127.0.0.1:9610"));
        assert_eq!(authority_of("http://[::1]:9610/"), Ok("[::1]:9610"));
        assert_eq!(
            authority_of("localhost:9610/-/reload"),
            Ok("localhost:9610")
        );
        assert!(authority_of("https://127.0.0.1:9610").is_err());
        assert!(authority_of("http://127.0.0.1").is_err());
        assert!(authority_of("http://[::1]").is_err());
        assert!(authority_of("http://127.0.0.1:9610/metrics").is_err());
        assert!(authority_of("http://").is_err());
    }

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
