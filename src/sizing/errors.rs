//! What `sluice run` says when a start fails for want of DPDK memory or on a refused MTU: what
//! was asked, what EAL or the device has, and what to change in the config.
use std::path::Path;

use control::config::{locate, Config};
use dataplane::dpdk::DpdkError;

use super::{eal_memory, estimate_config, mib, more_memory, suggested_m, EalMemory};

/// Sluice accepts a device without an MTU setting up to this MTU (dataplane/src/dpdk/port.rs).
const FIXED_MTU: u16 = 1500;

/// A start error with the sizing behind it and the config change that fixes it.
#[derive(Debug, thiserror::Error)]
pub enum SizingError {
    #[error("{iface}: its mbuf pool of {mbufs} mbufs (dpdk.mbufs, about {pool_mib} MiB) does not fit in EAL's memory, {}: {source}\n  fix: {fix}", .eal.text())]
    Pool {
        iface: String,
        mbufs: u32,
        /// This pool, whole MiB.
        pool_mib: u64,
        eal: EalMemory,
        fix: String,
        #[source]
        source: DpdkError,
    },
    #[error("{iface}: {device} refused mtu {mtu}: {limit}: {source}\n  {at}: {fix}")]
    Mtu {
        iface: String,
        device: String,
        mtu: u16,
        limit: MtuLimit,
        /// `FILE:LINE:COL: interfaces[N].mtu`, as far as the file says.
        at: String,
        fix: String,
        #[source]
        source: DpdkError,
    },
}

/// What the device said about the MTUs it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MtuLimit {
    #[error("the device allows {min}..={max}")]
    Range { min: u32, max: u32 },
    #[error("the device has no MTU setting (sluice then accepts mtu {FIXED_MTU} or less)")]
    NoSetting,
    #[error("the device refused it without saying its limit")]
    Unknown,
}

/// The pool error for interface `index` when `source` is the pool running out of memory
/// (ENOMEM, ENOBUFS, ENOSPC); `source` back for any other failure.
pub fn pool_error(c: &Config, index: usize, source: DpdkError) -> Result<SizingError, DpdkError> {
    let out_of_memory = matches!(
        &source,
        DpdkError::Call { call: "rte_pktmbuf_pool_create", errno, .. }
            if [libc::ENOMEM, libc::ENOBUFS, libc::ENOSPC].contains(errno)
    );
    let Some(iface) = c.interfaces.get(index).filter(|_| out_of_memory) else {
        return Err(source);
    };
    let e = estimate_config(c);
    let m = eal_memory(&c.dpdk.args);
    let need = e.hugepages();
    let s = if e.ports == 1 { "" } else { "s" };
    let fix = match &m {
        EalMemory::Fixed { bytes: have, from } => {
            // Past the estimate too: the estimate said it fits, yet it did not.
            let m_mb = suggested_m(need).max(suggested_m(have + 1));
            let max = match e.max_mbufs(*have) {
                fits if fits >= e.mbufs_per_port => e.mbufs_per_port * 3 / 4,
                fits => fits,
            };
            let more = more_memory(&c.dpdk.args, from, m_mb);
            format!(
                "{more} ({} pool{s} and EAL need about {} MiB), or lower dpdk.mbufs to {max} or less",
                e.ports,
                mib(need)
            )
        }
        EalMemory::Hugepages { .. } => format!(
            "free or reserve more hugepages: {} pool{s} and EAL need about {} MiB, {} pages of 2 MiB \
             (echo N > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages; `sluice doctor -c FILE` checks), \
             or lower dpdk.mbufs",
            e.ports,
            mib(need),
            need.div_ceil(2 * super::MIB)
        ),
    };
    Ok(SizingError::Pool {
        iface: iface.name.clone(),
        mbufs: c.dpdk.mbufs,
        pool_mib: mib(e.pool()),
        eal: m,
        fix,
        source,
    })
}

/// The MTU error for interface `index` when `source` is its device refusing the MTU (out of
/// the device's range, or set_mtu failing with ENOTSUP or EINVAL); `source` back otherwise.
pub fn mtu_error(
    c: &Config,
    index: usize,
    file: Option<&Path>,
    source: DpdkError,
) -> Result<SizingError, DpdkError> {
    let limit = match &source {
        DpdkError::OutOfRange {
            what: "mtu",
            min,
            max,
            ..
        } => MtuLimit::Range {
            min: *min,
            max: *max,
        },
        DpdkError::Call {
            call: "rte_eth_dev_set_mtu",
            errno,
            ..
        } if *errno == libc::ENOTSUP || *errno == libc::EOPNOTSUPP => MtuLimit::NoSetting,
        DpdkError::Call {
            call: "rte_eth_dev_set_mtu",
            errno,
            ..
        } if *errno == libc::EINVAL => MtuLimit::Unknown,
        _ => return Err(source),
    };
    let Some(iface) = c.interfaces.get(index) else {
        return Err(source);
    };
    let path = format!("interfaces[{index}].mtu");
    let text = file.and_then(|f| std::fs::read_to_string(f).ok());
    let at = place(file, text.as_deref(), &path, iface.mtu);
    let fix = match limit {
        MtuLimit::Range { max, .. } if u32::from(iface.mtu) > max => {
            format!("set it to {max} or less")
        }
        MtuLimit::Range { min, .. } => format!("set it to {min} or more"),
        MtuLimit::NoSetting => {
            format!("set it to {FIXED_MTU} or less (or leave it out), or use a device that sets its MTU")
        }
        MtuLimit::Unknown => "lower it (to what the device or its kernel interface carries)".into(),
    };
    Ok(SizingError::Mtu {
        iface: iface.name.clone(),
        device: iface.device.clone(),
        mtu: iface.mtu,
        limit,
        at,
        fix,
        source,
    })
}

/// `FILE:LINE:COL: interfaces[0].mtu`, or the interface's place when the key is absent (the
/// default applies), or just the path without a readable file.
fn place(file: Option<&Path>, text: Option<&str>, path: &str, mtu: u16) -> String {
    let (Some(file), Some(text)) = (file, text) else {
        return path.to_owned();
    };
    let file = file.display();
    match locate(text, path) {
        Some((at, true)) => format!("{file}:{}:{}: {path}", at.line, at.column),
        Some((at, false)) => format!(
            "{file}:{}:{}: {path} (not set: the default {mtu})",
            at.line, at.column
        ),
        None => format!("{file}: {path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::config::load_str;

    fn config(args: &str, mbufs: u32, mtu: &str) -> (String, Config) {
        let text = format!(
            "dpdk:\n  args: [{args}]\n  mbufs: {mbufs}\ninterfaces:\n  - name: uplink\n    device: net_pcap0\n    address: 192.0.2.10/24\n{mtu}services: []\n"
        );
        let c = load_str(&text, "t.yaml");
        assert!(c.is_ok(), "{c:?}");
        (text, c.unwrap_or_else(|_| unreachable!()))
    }

    fn enomem() -> DpdkError {
        DpdkError::Call {
            call: "rte_pktmbuf_pool_create",
            errno: libc::ENOMEM,
            message: "Cannot allocate memory".into(),
        }
    }

    #[test]
    fn a_pool_that_does_not_fit_says_what_to_change() {
        let (_, c) = config(r#""--no-huge", "-m", "64""#, 262143, "");
        let msg = pool_error(&c, 0, enomem()).map(|e| e.to_string());
        let msg = msg.unwrap_or_default();
        assert!(
            msg.starts_with("uplink: its mbuf pool of 262143 mbufs (dpdk.mbufs, about 1026 MiB) does not fit in EAL's memory, 64 MiB (-m 64 with --no-huge): rte_pktmbuf_pool_create failed"),
            "{msg}"
        );
        assert!(msg.contains("\n  fix: raise -m to 1088 in dpdk.args (1 pool and EAL need about 1030 MiB), or lower dpdk.mbufs to 15101 or less"), "{msg}");

        let (_, c) = config(r#""--no-huge""#, 16383, "");
        let msg = pool_error(&c, 0, enomem())
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("64 MiB (--no-huge without -m)"), "{msg}");
        assert!(msg.contains("fix: add -m 128 to dpdk.args"), "{msg}");

        let (_, c) = config(r#""-l", "0-1""#, 16383, "");
        let msg = pool_error(&c, 0, enomem())
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("hugepages as needed"), "{msg}");
        assert!(msg.contains("fix: free or reserve more hugepages: 1 pool and EAL need about 103 MiB, 52 pages of 2 MiB"), "{msg}");

        // Not a shortage: the DPDK error as it was.
        let other = DpdkError::BadArgument("x".into());
        assert_eq!(pool_error(&c, 0, other.clone()).err(), Some(other));
        assert!(pool_error(&c, 5, enomem()).is_err());
    }

    #[test]
    fn a_refused_mtu_names_the_interface_the_limit_and_the_line() {
        let (text, c) = config(r#""--no-huge""#, 4095, "    mtu: 9000\n");
        let dir = std::env::temp_dir().join(format!("sluice-sizing-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("sluice.yaml");
        assert!(std::fs::write(&file, &text).is_ok());
        let f = file.display();

        let unsupported = DpdkError::Call {
            call: "rte_eth_dev_set_mtu",
            errno: libc::ENOTSUP,
            message: "Operation not supported".into(),
        };
        let msg = mtu_error(&c, 0, Some(&file), unsupported)
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            msg,
            format!("uplink: net_pcap0 refused mtu 9000: the device has no MTU setting (sluice then accepts mtu 1500 or less): rte_eth_dev_set_mtu failed: Operation not supported (errno 95)\n  {f}:8:10: interfaces[0].mtu: set it to 1500 or less (or leave it out), or use a device that sets its MTU")
        );

        let range = DpdkError::OutOfRange {
            what: "mtu",
            requested: 9000,
            min: 68,
            max: 1500,
        };
        let msg = mtu_error(&c, 0, Some(&file), range)
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("refused mtu 9000: the device allows 68..=1500"),
            "{msg}"
        );
        assert!(
            msg.ends_with(&format!(
                "{f}:8:10: interfaces[0].mtu: set it to 1500 or less"
            )),
            "{msg}"
        );

        // An absent key points at the interface; without a file, just the path.
        let (text, c) = config(r#""--no-huge""#, 4095, "");
        assert!(std::fs::write(&file, &text).is_ok());
        let invalid = DpdkError::Call {
            call: "rte_eth_dev_set_mtu",
            errno: libc::EINVAL,
            message: "Invalid argument".into(),
        };
        let msg = mtu_error(&c, 0, Some(&file), invalid.clone())
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains(&format!(
                "{f}:5:5: interfaces[0].mtu (not set: the default 1500): lower it"
            )),
            "{msg}"
        );
        let msg = mtu_error(&c, 0, None, invalid)
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("\n  interfaces[0].mtu: lower it"), "{msg}");
        let _ = std::fs::remove_dir_all(&dir);

        // Other failures stay as they were.
        let queues = DpdkError::OutOfRange {
            what: "tx queues",
            requested: 3,
            min: 1,
            max: 2,
        };
        assert_eq!(mtu_error(&c, 0, None, queues.clone()).err(), Some(queues));
    }
}
