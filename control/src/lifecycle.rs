//! Who may drive the appliance over HTTP: the `metrics.lifecycle` policy and its check.
//!
//! The metrics listener is often bound where Prometheus can scrape it, which is where anyone
//! else on that network can reach it too. Reading is harmless; reloading and draining are not,
//! so those endpoints answer only the clients the policy names (the control socket,
//! `control_socket`, is the host operator's way in whatever the policy says). Prometheus keeps its
//! own lifecycle API off unless asked; sluice's default lets only local clients in, so
//! `curl -X POST http://127.0.0.1:9610/-/reload` on the host keeps working.

use std::net::{IpAddr, SocketAddr};

use crate::config::Lifecycle;
use crate::http::{Request, Response};

/// Why `peer` may not use a lifecycle endpoint under `policy`; None if it may. `local` is the
/// connection's own address: a client whose address is the one it connected to is on this host
/// (TCP cannot be spoofed into that), e.g. `curl` to a routable listen address from the host.
pub fn refusal(
    policy: Lifecycle,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
) -> Option<&'static str> {
    let same_host = |p: SocketAddr| is_loopback(p.ip()) || local.is_some_and(|l| l.ip() == p.ip());
    match policy {
        Lifecycle::Any => None,
        Lifecycle::Off => Some(
            "lifecycle endpoints are off over HTTP (metrics.lifecycle: off); use SIGHUP, or sluice reload/drain as root (they use the control socket)",
        ),
        Lifecycle::Local if peer.is_some_and(same_host) => None,
        Lifecycle::Local => Some(
            "lifecycle endpoints answer local clients only (metrics.lifecycle: local); set metrics.lifecycle: any to allow others",
        ),
    }
}

/// 127.0.0.0/8, ::1, and IPv4 loopback as an IPv4-mapped IPv6 address (a dual-stack listener).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Wraps a lifecycle handler: 403 with the one-line reason for a client the policy refuses.
pub fn gate<F>(policy: Lifecycle, handler: F) -> impl Fn(&Request) -> Response + Send + Sync
where
    F: Fn(&Request) -> Response + Send + Sync,
{
    move |req: &Request| match refusal(policy, req.peer, req.local) {
        Some(why) => Response::text(403, format!("{why}\n")),
        None => handler(req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(s.parse().unwrap(), 40000))
    }

    #[test]
    fn local_admits_this_host_only_any_admits_all_off_admits_none() {
        let listener = peer("192.0.2.10");
        for local in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "::ffff:127.0.0.1",
            "192.0.2.10",
        ] {
            assert_eq!(
                refusal(Lifecycle::Local, peer(local), listener),
                None,
                "{local}"
            );
            assert!(
                refusal(Lifecycle::Off, peer(local), listener).is_some(),
                "{local}"
            );
        }
        for remote in ["192.0.2.7", "2001:db8::7", "::ffff:192.0.2.7"] {
            let why = refusal(Lifecycle::Local, peer(remote), listener).unwrap();
            assert!(why.contains("metrics.lifecycle: any"), "{why}");
            assert_eq!(refusal(Lifecycle::Any, peer(remote), listener), None);
        }
        assert!(
            refusal(Lifecycle::Local, None, listener).is_some(),
            "unknown peer: refused"
        );
    }
}
