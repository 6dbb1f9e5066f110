//! What the EAL arguments (`dpdk.args`) say about memory and devices.

pub use control::config::eal_args::{option_values, pci_address};

pub fn has_flag(args: &[String], flag: &str) -> bool {
    args.iter().any(|a| a == flag)
}

/// `-m MB`: memory EAL reserves at start (the last one counts).
pub fn memory_mb(args: &[String]) -> Option<u64> {
    option_values(args, "-m", "--memory")
        .last()
        .and_then(|v| v.parse().ok())
}

/// `--socket-mem a,b,...`: MiB per NUMA node, node 0 first.
pub fn socket_mem_mb(args: &[String]) -> Vec<u64> {
    option_values(args, "--socket-mem", "--socket-mem")
        .last()
        .map(|v| {
            v.split(',')
                .map(|n| n.trim().parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn memory_options() {
        let a = args(&[
            "-l",
            "0-2",
            "-m",
            "512",
            "--socket-mem=1024,0,256",
            "--no-huge",
        ]);
        assert_eq!(memory_mb(&a), Some(512));
        assert_eq!(socket_mem_mb(&a), [1024, 0, 256]);
        assert!(has_flag(&a, "--no-huge"));
        assert_eq!(memory_mb(&args(&["-m1024"])), Some(1024));
        assert_eq!(memory_mb(&args(&["--main-lcore", "0"])), None);
        assert!(socket_mem_mb(&args(&[])).is_empty());
    }

    #[test]
    fn pci_addresses_get_their_domain() {
        assert_eq!(pci_address("3B:00.0").as_deref(), Some("0000:3b:00.0"));
        assert_eq!(pci_address("0000:3b:00.1").as_deref(), Some("0000:3b:00.1"));
        assert_eq!(pci_address("net_memif0"), None);
        assert_eq!(pci_address("0000:3b:00"), None);
    }
}
