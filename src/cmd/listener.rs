//! Where the running appliance's metrics listener is, for the commands that talk to it
//! (`sluice reload`, `sluice drain`, `sluice top`): a config file's `metrics.listen`, or a `--url`;
//! for a config file, reload and drain go through the control socket named after it first.
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;

use control::config::{self, MAX_CONFIG_BYTES};
use control::control_socket;
use sluice::args::{authority_of, listen_in};

/// Where to send the request.
pub enum Target<'a> {
    /// The `metrics.listen` of this config file.
    Config(&'a Path),
    /// `http://HOST:PORT` (or `HOST:PORT`).
    Url(&'a str),
}

/// What failed, and how the process exits for it.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

pub fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// What a POST to the appliance answered: the listener's `HOST:PORT`, the status and the body.
pub struct Answer {
    pub authority: String,
    pub status: u16,
    pub body: String,
}

/// POSTs `path` to the appliance `target` names: for a config file, through its control socket
/// when this user may use it (see `control::control_socket`: it answers whatever
/// `metrics.lifecycle` says), else to the listener. A failure to get any answer exits 2.
pub fn post(
    target: Target<'_>,
    path: &'static str,
    user_agent: &'static str,
    timeout: std::time::Duration,
) -> Result<Answer, Failure> {
    let request = |authority| post_request(path, authority, user_agent, timeout);
    // The control socket's refusal (this user may not use it), kept in case HTTP refuses too.
    let mut refused = None;
    if let Target::Config(file) = target {
        let listen = configured_listen(file)?;
        let name = control_socket::name(listen, Some(file));
        let socket = control_socket::address(listen, Some(file))
            .map_err(|e| fail(2, format!("control socket @{name}: {e}")))?;
        let authority = format!("the control socket @{name}");
        match sluice::http_client::send_unix(&request("localhost"), &socket) {
            // Not this user's to use: the listener's policy may still let it in.
            Ok((403, body)) => refused = Some((authority, body)),
            Err(None) => {}
            Ok((status, body)) => {
                return Ok(Answer {
                    authority,
                    status,
                    body,
                })
            }
            Err(Some(e)) => return Err(fail(2, format!("no answer from sluice at @{name}: {e}"))),
        }
    }
    let over_http = resolve(target, &[path]).and_then(|l| {
        let request = post_request(path, &l.authority, user_agent, timeout);
        sluice::http_client::send(&request, &l.addrs)
            .map(|(status, body)| Answer {
                authority: l.authority.clone(),
                status,
                body,
            })
            .map_err(|e| {
                let (authority, from) = (&l.authority, &l.from);
                fail(
                    2,
                    format!("no answer from sluice at {authority}{from}: {e}"),
                )
            })
    });
    match (over_http, refused) {
        (Ok(a), Some((socket, why))) if a.status == 403 => Ok(Answer {
            body: format!("{}(and {socket}: {why})", a.body),
            ..a
        }),
        (Err(_), Some((authority, body))) => Ok(Answer {
            authority,
            status: 403,
            body,
        }),
        (answer, _) => answer,
    }
}

fn post_request<'a>(
    path: &'a str,
    authority: &'a str,
    user_agent: &'a str,
    timeout: std::time::Duration,
) -> sluice::http_client::Request<'a> {
    sluice::http_client::Request {
        method: "POST",
        path,
        authority,
        user_agent,
        timeout,
        // An answer larger than this is not sluice's; a refusal's reason is a few lines.
        max_response: 64 << 10,
    }
}

/// The exit of a command that prints the appliance's answer, or why it failed.
pub fn exit(result: Result<String, Failure>) -> std::process::ExitCode {
    match result {
        Ok(body) => {
            print!("{body}");
            std::process::ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("sluice: {}", f.message.trim_end());
            std::process::ExitCode::from(f.code)
        }
    }
}

/// A resolved listener.
pub struct Listener {
    /// `HOST:PORT`, for the `Host` header and messages.
    pub authority: String,
    pub addrs: Vec<SocketAddr>,
    /// Where the address came from, for messages: empty for a URL.
    pub from: String,
}

/// The listener `target` names. `paths` are the request paths a URL may end with besides `/`
/// (a user pasting `.../metrics` means the listener). Exit code 1 for a file whose address
/// cannot be read, 2 for an unusable URL or port 0.
pub fn resolve(target: Target<'_>, paths: &[&str]) -> Result<Listener, Failure> {
    match target {
        Target::Config(path) => {
            let addr = connect_addr(listen_of(path)?);
            Ok(Listener {
                authority: addr.to_string(),
                addrs: vec![addr],
                from: format!(" (metrics.listen of {})", path.display()),
            })
        }
        Target::Url(url) => {
            let authority =
                authority_of(url, paths).map_err(|e| fail(2, format!("--url {url}: {e}")))?;
            let addrs: Vec<SocketAddr> = authority
                .to_socket_addrs()
                .map_err(|e| fail(2, format!("--url {url}: {e}")))?
                .map(connect_addr)
                .collect();
            Ok(Listener {
                authority: authority.to_owned(),
                addrs,
                from: String::new(),
            })
        }
    }
}

/// The listen address in a config file, for a connection: one with port 0 exits 2 (the port
/// the kernel picked is only in sluice's log).
fn listen_of(path: &Path) -> Result<SocketAddr, Failure> {
    let listen = configured_listen(path)?;
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

/// The listen address in a config file, as written. A file that fails validation still names
/// it (the appliance will say why it refuses the file); one that does not parse as YAML does not.
fn configured_listen(path: &Path) -> Result<SocketAddr, Failure> {
    let listen = match config::load_file(path) {
        Ok(c) => c.metrics.listen,
        Err(errors) => {
            let text = read_small(path).map_err(|e| fail(1, format!("{}: {e}", path.display())))?;
            // The validator's errors already say what is wrong with the document.
            listen_in(&text).map_err(|_| {
                fail(
                    1,
                    format!(
                        "{}: its metrics.listen cannot be read, so nothing was sent:\n{errors}",
                        path.display()
                    ),
                )
            })?
        }
    };
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

/// The address to connect to for a listen address: loopback for a wildcard one.
fn connect_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_become_loopback() {
        let c = |s: &str| connect_addr(s.parse().unwrap()).to_string();
        assert_eq!(c("0.0.0.0:9610"), "127.0.0.1:9610");
        assert_eq!(c("[::]:9610"), "[::1]:9610");
        assert_eq!(c("192.0.2.1:80"), "192.0.2.1:80");
    }
}
