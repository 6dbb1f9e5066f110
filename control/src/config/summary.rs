//! A one-screen, human summary of a valid config (what `sluice check` prints).
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use super::duration::format_duration;
use super::lcores::{eal_cores, format_cores};
use super::schema::{format_mac, CheckKind, Config};
use super::validate::endpoint;

/// `file`: where `config` was read from, which names the control socket when the listen port
/// is 0 (see `control_socket::name`).
pub fn summary(config: &Config, file: Option<&Path>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_summary(&mut out, config, file);
    out
}

fn write_summary(out: &mut String, c: &Config, file: Option<&Path>) -> std::fmt::Result {
    let cores = match eal_cores(&c.dpdk.args) {
        Ok(Some(cores)) => format!(
            "lcores {} (main {}, {} workers)",
            format_cores(&cores.lcores),
            cores.main,
            cores.workers()
        ),
        _ => "lcores: EAL default".to_owned(),
    };
    writeln!(out, "dpdk: {cores}, {} mbufs per port", c.dpdk.mbufs)?;
    writeln!(out, "interfaces: {}", c.interfaces.len())?;
    for i in &c.interfaces {
        write!(
            out,
            "  {} ({}): {} queue(s), mtu {}, {}",
            i.name, i.device, i.queues, i.mtu, i.address
        )?;
        if let Some(a6) = i.address6 {
            write!(out, ", {a6}")?;
        }
        let gateways = [
            i.gateway4.map(|g| (IpAddr::from(g.addr), g.mac)),
            i.gateway6.map(|g| (IpAddr::from(g.addr), g.mac)),
        ];
        for (gw, mac) in gateways.into_iter().flatten() {
            write!(out, ", gateway {gw}")?;
            if let Some(mac) = mac {
                write!(out, " at {}", format_mac(mac))?;
            }
        }
        if let Some(k) = &i.kernel {
            write!(out, ", kernel interface {} ({} frames/s)", k.name, k.rate)?;
        }
        writeln!(out)?;
    }
    let f = &c.flows;
    writeln!(
        out,
        "flows: {} per worker, timeouts tcp {}/{}/{} (established/closing/syn), udp {}, stateless above {} new/s",
        f.capacity,
        format_duration(f.tcp_established_timeout),
        format_duration(f.tcp_closing_timeout),
        format_duration(f.tcp_syn_timeout),
        format_duration(f.udp_timeout),
        f.max_new_flows_per_second
    )?;
    writeln!(out, "services: {}", c.services.len())?;
    for s in &c.services {
        writeln!(
            out,
            "  {} {}: {}, hash {}, table {}, when all down {}",
            s.name,
            endpoint(s),
            s.forwarding,
            s.hash,
            s.table_size,
            s.when_all_down
        )?;
        let backends: Vec<String> = s
            .backends
            .iter()
            .map(|b| match b.port {
                Some(port) => format!("{}:{port}={}", b.address, b.weight),
                None => format!("{}={}", b.address, b.weight),
            })
            .collect();
        writeln!(
            out,
            "    backends ({}): {}",
            s.backends.len(),
            backends.join(", ")
        )?;
        if !s.local_addresses.is_empty() {
            let locals: Vec<String> = s.local_addresses.iter().map(IpAddr::to_string).collect();
            writeln!(out, "    local addresses: {}", locals.join(", "))?;
        }
        match &s.health_check {
            None => writeln!(out, "    health check: none (backends always up)")?,
            Some(h) => {
                let port = match h.port {
                    Some(p) => format!("port {p}"),
                    None => "each backend's port".to_owned(),
                };
                write!(
                    out,
                    "    health check: {} {port} every {} (timeout {}, rise {}, fall {})",
                    h.settings.kind,
                    format_duration(h.settings.interval),
                    format_duration(h.settings.timeout),
                    h.settings.rise,
                    h.settings.fall
                )?;
                if h.settings.kind == CheckKind::Http {
                    write!(out, " GET {}", h.settings.path)?;
                }
                if let Some(host) = &h.host {
                    let what = if h.settings.kind == CheckKind::Http {
                        "Host"
                    } else {
                        "query"
                    };
                    write!(out, " {what} {host}")?;
                }
                writeln!(out)?;
            }
        }
    }
    if let Some(a) = &c.announce {
        writeln!(
            out,
            "announce: a route per VIP with a usable backend, in kernel table {}",
            a.table
        )?;
    }
    writeln!(
        out,
        "metrics: http://{}/metrics (lifecycle endpoints: {}; control socket @{})",
        c.metrics.listen,
        c.metrics.lifecycle,
        crate::control_socket::name(c.metrics.listen, file)
    )
}
