//! Build metadata for `sluice version` and the sluice_build_info metric.
use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    // A build without .git (the Docker image's) is told the revision by SLUICE_GIT_REVISION.
    let given = std::env::var("SLUICE_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty() && r != "unknown");
    let rev = given.unwrap_or_else(|| {
        let rev =
            output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let dirty = output("git", &["status", "--porcelain", "--untracked-files=no"]).is_some();
        if dirty && rev != "unknown" {
            format!("{rev}-dirty")
        } else {
            rev
        }
    });
    let dpdk =
        output("pkg-config", &["--modversion", "libdpdk"]).unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SLUICE_GIT_REVISION={rev}");
    println!("cargo:rustc-env=SLUICE_DPDK_VERSION={dpdk}");
    println!("cargo:rustc-env=SLUICE_RUSTC_VERSION={rustc}");
    println!(
        "cargo:rustc-env=SLUICE_VERSION_LONG={} (git {rev}, dpdk {dpdk})",
        env!("CARGO_PKG_VERSION")
    );
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=SLUICE_GIT_REVISION");
}
