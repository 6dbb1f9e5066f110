//! Fake /proc, /sys and /dev trees for the checks' tests (unit, and `tests/cli_doctor.rs` through
//! the `fuzzing` feature): a temporary root that [`Host`] or `sluice doctor --root` reads.
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use control::config::{load_str, Config};

use super::host::Host;

/// A root directory of its own per test (tests run in parallel), removed on drop.
pub struct Tree(PathBuf);

impl Tree {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sluice-doctor-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        Tree(dir)
    }

    pub fn host(&self) -> Host {
        Host::new(&self.0)
    }

    /// The root directory.
    pub fn root(&self) -> &std::path::Path {
        &self.0
    }

    /// `abs` under the root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }

    /// Writes `text` to `abs` under the root, making its directories.
    pub fn write(&self, abs: &str, text: &str) -> &Self {
        let p = self.path(abs);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("directories");
        std::fs::write(p, text).expect("written");
        self
    }

    /// An empty directory `abs` under the root.
    pub fn dir(&self, abs: &str) -> &Self {
        std::fs::create_dir_all(self.path(abs)).expect("directories");
        self
    }

    /// A symlink `abs` under the root pointing at `target` (as written).
    pub fn link(&self, abs: &str, target: &str) -> &Self {
        let p = self.path(abs);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("directories");
        std::os::unix::fs::symlink(target, p).expect("symlink");
        self
    }

    /// Removes the file or directory `abs` under the root.
    pub fn remove(&self, abs: &str) -> &Self {
        let p = self.path(abs);
        if p.is_dir() {
            std::fs::remove_dir_all(p).expect("removed");
        } else {
            std::fs::remove_file(p).expect("removed");
        }
        self
    }

    /// `text` as the root's `sluice.yaml`; its path.
    pub fn config_file(&self, text: &str) -> PathBuf {
        let p = self.0.join("sluice.yaml");
        std::fs::write(&p, text).expect("written");
        p
    }

    /// NUMA node `node` holding `cpus` (a CPU list such as `0-3`).
    pub fn node(&self, node: u32, cpus: &str) -> &Self {
        self.write(
            &format!("/sys/devices/system/node/node{node}/cpulist"),
            &format!("{cpus}\n"),
        )
    }

    /// Physical cores: each group of CPUs (`"0,4"`) is one core's hyperthreads.
    pub fn cores(&self, groups: &[&str]) -> &Self {
        for g in groups {
            for cpu in super::host::parse_cpu_list(g).expect("a CPU list") {
                self.write(
                    &format!("/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"),
                    &format!("{g}\n"),
                );
            }
        }
        self
    }

    /// Kernel interface `name` with its MTU, ifindex and iflink (another's ifindex for a veth).
    pub fn netdev(&self, name: &str, mtu: u32, ifindex: u32, iflink: u32) -> &Self {
        let dir = format!("/sys/class/net/{name}");
        self.write(&format!("{dir}/mtu"), &format!("{mtu}\n"))
            .write(&format!("{dir}/ifindex"), &format!("{ifindex}\n"))
            .write(&format!("{dir}/iflink"), &format!("{iflink}\n"))
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A valid config: `args` inside `dpdk.args: [...]`, `interfaces` the list's items (2-space
/// indent), and one ipip service.
pub fn config(args: &str, interfaces: &str) -> Config {
    let text = format!(
        "dpdk:\n  args: [{args}]\ninterfaces:\n{interfaces}services:\n  - name: web\n    vip: 198.51.100.10\n    port: 443\n    protocol: tcp\n    table_size: 251\n    backends:\n      - address: 192.0.2.21\n"
    );
    load_str(&text, "t.yaml").unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}
