//! Finds the installed DPDK, generates bindings with bindgen and compiles the wrappers of
//! DPDK's `static inline` functions (plus shim.c) with DPDK's own cflags.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Oldest DPDK release these bindings are written against (the LTS Debian 12 ships).
const MIN_VERSION: &str = "22.11";
const INSTALL_HINT: &str =
    "install: apt-get install dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config libpcap-dev";

/// Libraries linked whole-archive in `static-dpdk` mode: the DPDK core sluice uses, then the
/// drivers (buses, mempool handler, PMDs). Drivers register themselves from constructors, so
/// they must be whole-archive or the linker drops them as unreferenced.
const STATIC_LIBS: &[&str] = &[
    "rte_net_ring",
    "rte_net_null",
    "rte_net_pcap",
    "rte_net_memif",
    "rte_net_af_packet",
    "rte_net_af_xdp",
    // The exception path's kernel interfaces (interfaces[].kernel).
    "rte_net_tap",
    "rte_net_virtio",
    "rte_net_e1000",
    "rte_net_ixgbe",
    "rte_net_i40e",
    "rte_mempool_ring",
    "rte_bus_vdev",
    "rte_bus_pci",
    "rte_ethdev",
    "rte_gso",
    "rte_meter",
    "rte_net",
    "rte_mbuf",
    "rte_mempool",
    "rte_hash",
    "rte_rcu",
    "rte_ring",
    "rte_security",
    "rte_cryptodev",
    "rte_pci",
    "rte_eal",
    "rte_telemetry",
    "rte_kvargs",
];

/// System libraries the static archives above need, after them on the link line (libxdp and
/// libbpf, for net_af_xdp, before the libelf and zlib they need).
const STATIC_SYSTEM_LIBS: &[&str] = &[
    "pcap", "xdp", "bpf", "elf", "z", "numa", "bsd", "atomic", "m", "dl", "pthread", "rt",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let static_mode = env::var_os("CARGO_FEATURE_STATIC_DPDK").is_some();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR unset")));
    let manifest_dir = PathBuf::from(
        env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| fail("CARGO_MANIFEST_DIR unset")),
    );

    let lib = pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .cargo_metadata(!static_mode)
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            fail(&format!(
                "DPDK >= {MIN_VERSION} not found through pkg-config (libdpdk): {e}"
            ))
        });
    // Dependents (links = "dpdk") read this as DEP_DPDK_VERSION.
    println!("cargo:version={}", lib.version);

    let cflags = pkg_config_output(&["--cflags", "libdpdk"]);
    let cflags: Vec<String> = cflags.split_whitespace().map(str::to_owned).collect();

    if static_mode {
        link_static();
    } else {
        // rte_eth_from_rings (the demo's virtual wire) lives in the ring PMD, which pkg-config
        // does not list; it is the same file EAL loads as a plugin, so nothing registers twice.
        println!("cargo:rustc-link-lib=dylib=rte_net_ring");
    }

    let wrapper = manifest_dir.join("wrapper.h");
    let static_fns = out_dir.join("static_fns");
    generate_bindings(&wrapper, &cflags, &static_fns, &out_dir);

    let mut build = cc::Build::new();
    build
        .file(static_fns.with_extension("c"))
        .file(manifest_dir.join("shim.c"))
        .include(&manifest_dir)
        .warnings(false);
    // DPDK's own flags (include paths, `-include rte_config.h`, its -march baseline), as given.
    for flag in &cflags {
        build.flag(flag);
    }
    build.compile("sluice_dpdk_shim");
}

fn generate_bindings(wrapper: &Path, cflags: &[String], static_fns: &Path, out_dir: &Path) {
    let builder = bindgen::Builder::default()
        .header(wrapper.to_string_lossy())
        .clang_args(cflags)
        .allowlist_function(
            "rte_eal_.*|rte_eth_.*|rte_pktmbuf_.*|rte_mempool_.*|rte_mbuf_.*|rte_lcore_.*\
             |rte_get_next_lcore|rte_get_main_lcore|rte_socket_id|rte_rdtsc.*|rte_get_tsc_hz\
             |rte_strerror|rte_version|rte_vdev_.*|rte_exit|rte_ring_create|rte_ring_free\
             |rte_ring_count|rte_eth_from_rings|sluice_.*",
        )
        .allowlist_type("rte_mbuf|rte_mempool|rte_eth_.*|rte_lcore_state_t|rte_ring")
        .allowlist_var(
            "RTE_MAX_LCORE|RTE_MAX_ETHPORTS|RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_.*\
             |RTE_ETHER_.*|LCORE_ID_ANY|SOCKET_ID_ANY|RTE_ETH_NAME_MAX_LEN|RING_F_.*|sluice_.*",
        )
        // Packed (and packed + aligned) structs bindgen cannot lay out faithfully.
        .opaque_type("rte_ether_addr|rte_ether_hdr|rte_arp_.*|rte_l2tpv2_.*|rte_gtp_.*")
        // Functions with variadic or otherwise unwrappable signatures.
        .blocklist_function("rte_eal_init_alert|rte_mempool_ops_.*|rte_eth_call_.*")
        .wrap_static_fns(true)
        .wrap_static_fns_path(static_fns)
        .derive_default(true)
        .derive_debug(true)
        .impl_debug(false)
        .generate_comments(false)
        .layout_tests(true)
        .default_enum_style(bindgen::EnumVariation::Rust {
            non_exhaustive: true,
        })
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));

    // bindgen panics when libclang cannot be loaded; turn that into an install hint.
    let generated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.generate()));
    let bindings = match generated {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => fail(&format!("bindgen could not parse the DPDK headers: {e}")),
        Err(_) => fail("bindgen could not load libclang"),
    };
    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .unwrap_or_else(|e| fail(&format!("writing bindings.rs: {e}")));
}

/// Links STATIC_LIBS whole-archive from DPDK's libdir, then the system libraries they need.
fn link_static() {
    let libdir = pkg_config_output(&["--variable=libdir", "libdpdk"]);
    let libdir = libdir.trim();
    for name in STATIC_LIBS {
        let archive = Path::new(libdir).join(format!("lib{name}.a"));
        if !archive.exists() {
            fail(&format!(
                "static-dpdk: {} is missing (DPDK's static archives come with libdpdk-dev)",
                archive.display()
            ));
        }
    }
    println!("cargo:rustc-link-search=native={libdir}");
    for name in STATIC_LIBS {
        println!("cargo:rustc-link-lib=static:+whole-archive,-bundle={name}");
    }
    for name in STATIC_SYSTEM_LIBS {
        println!("cargo:rustc-link-lib=dylib={name}");
    }
}

fn pkg_config_output(args: &[&str]) -> String {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let out = Command::new(&pkg_config)
        .args(args)
        .output()
        .unwrap_or_else(|e| fail(&format!("running {pkg_config}: {e}")));
    if !out.status.success() {
        fail(&format!(
            "{pkg_config} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fail(why: &str) -> ! {
    panic!("\n\ndpdk-sys: {why}\n{INSTALL_HINT}\n\n");
}
