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

/// The `key=value` options of the `--vdev` named `name` (`--vdev net_af_packet0,iface=eth0`).
pub fn vdev_options<'a>(args: &'a [String], name: &str) -> Vec<(&'a str, &'a str)> {
    option_values(args, "--vdev", "--vdev")
        .into_iter()
        .map(|v| v.split(','))
        .find_map(|mut parts| (parts.next() == Some(name)).then_some(parts))
        .map(|parts| parts.filter_map(|p| p.split_once('=')).collect())
        .unwrap_or_default()
}

/// The kernel interfaces the `--vdev` named `name` attaches to (`iface=` of af_packet, af_xdp
/// and pcap; pcap's `rx_iface=`, `rx_iface_in=`, `tx_iface=`), each once.
pub fn vdev_ifaces<'a>(args: &'a [String], name: &str) -> Vec<&'a str> {
    const KEYS: [&str; 4] = ["iface", "rx_iface", "rx_iface_in", "tx_iface"];
    let mut out: Vec<&str> = Vec::new();
    for (k, v) in vdev_options(args, name) {
        if KEYS.contains(&k) && !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
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
    fn vdev_options_are_those_of_the_named_device() {
        let a = args(&[
            "--vdev=net_memif0,role=client",
            "--vdev",
            "net_af_packet0,iface=eth0,qpairs=2",
            "--vdev=net_af_packet1",
        ]);
        assert_eq!(
            vdev_options(&a, "net_af_packet0"),
            [("iface", "eth0"), ("qpairs", "2")]
        );
        assert_eq!(vdev_options(&a, "net_memif0"), [("role", "client")]);
        assert!(vdev_options(&a, "net_af_packet1").is_empty());
        assert!(vdev_options(&a, "net_af_packet").is_empty());
        assert!(vdev_options(&a, "0000:3b:00.0").is_empty());
        assert_eq!(vdev_ifaces(&a, "net_af_packet0"), ["eth0"]);
        let pcap = args(&["--vdev=net_pcap0,rx_iface_in=veth1,tx_iface=veth1,rx_iface=veth2"]);
        assert_eq!(vdev_ifaces(&pcap, "net_pcap0"), ["veth1", "veth2"]);
        assert!(vdev_ifaces(&a, "net_memif0").is_empty());
    }

    #[test]
    fn pci_addresses_get_their_domain() {
        assert_eq!(pci_address("3B:00.0").as_deref(), Some("0000:3b:00.0"));
        assert_eq!(pci_address("0000:3b:00.1").as_deref(), Some("0000:3b:00.1"));
        assert_eq!(pci_address("net_memif0"), None);
        assert_eq!(pci_address("0000:3b:00"), None);
    }
}
