//! The EAL of a DPDK test binary: no hugepages or PCI, 256 MiB, quiet, a file prefix of its
//! own whose runtime directory is removed when the test ends, pass or fail.
use std::ops::Deref;

use dataplane::dpdk::Eal;

/// The EAL and, dropped after it, its runtime directory (rte_eal_cleanup in 22.11 leaves it).
pub struct TestEal {
    eal: Eal,
    _dir: RuntimeDir,
}

impl Deref for TestEal {
    type Target = Eal;
    fn deref(&self) -> &Eal {
        &self.eal
    }
}

struct RuntimeDir(String);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Initialises the EAL (once per process) with `lcores` as `--lcores` (the main lcore is 0),
/// `extra` arguments, and a `--vdev` for each of `vdevs`. The file prefix names `test` and
/// the process, so test binaries run side by side.
pub fn init(test: &str, lcores: &str, extra: &[&str], vdevs: &[&str]) -> TestEal {
    let prefix = format!("sluice-test-{test}-{}", std::process::id());
    let mut args = vec![
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--lcores",
        lcores,
        "--main-lcore",
        "0",
        "--log-level",
        "lib.eal:error",
        "--file-prefix",
        &prefix,
    ];
    args.extend_from_slice(extra);
    for v in vdevs {
        args.extend(["--vdev", v]);
    }
    let dir = RuntimeDir(format!("/var/run/dpdk/{prefix}"));
    TestEal {
        eal: Eal::init(&args).expect("EAL init"),
        _dir: dir,
    }
}
