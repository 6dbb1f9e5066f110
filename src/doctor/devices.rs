//! PCI devices: the IOMMU, the vfio modules, and which driver each configured device has.
use control::config::Config;

use super::eal;
use super::host::Host;
use super::{Finding, Status};

/// The modules vfio-pci needs (`modprobe vfio-pci` loads all three).
const VFIO_MODULES: [&str; 3] = ["vfio", "vfio_iommu_type1", "vfio_pci"];
/// The older user-space I/O drivers: they work without an IOMMU, with no DMA isolation.
const UIO_MODULES: [&str; 3] = ["uio", "uio_pci_generic", "igb_uio"];
/// Kernel drivers DPDK uses in place (bifurcated): the device stays bound to them.
const BIFURCATED: [&str; 2] = ["mlx5_core", "mlx4_core"];

/// The PCI devices a config uses: `interfaces[].device` and `-a`/`--allow`, each once.
pub fn pci_devices(c: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let from_args = eal::option_values(&c.dpdk.args, "-a", "--allow")
        .into_iter()
        .map(|v| v.split(',').next().unwrap_or_default());
    let from_interfaces = c.interfaces.iter().map(|i| i.device.as_str());
    for addr in from_interfaces
        .chain(from_args)
        .filter_map(eal::pci_address)
    {
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

/// IOMMU groups exist (the IOMMU is on). Needed by vfio-pci unless its unsafe no-IOMMU mode is on.
pub fn iommu(host: &Host, have_config: bool, pci: &[String]) -> Finding {
    let groups = host.list("/sys/kernel/iommu_groups").len();
    let units = host.list("/sys/class/iommu");
    let cmdline = host.cmdline();
    let asked: Vec<String> = ["intel_iommu", "amd_iommu", "iommu"]
        .iter()
        .filter_map(|k| cmdline.get(k).map(|v| format!("{k}={v}")))
        .collect();
    let asked = if asked.is_empty() {
        "no iommu options on the kernel command line".to_owned()
    } else {
        asked.join(" ")
    };
    if groups > 0 {
        let units = if units.is_empty() {
            String::new()
        } else {
            format!(" ({})", units.join(", "))
        };
        return Finding::ok("iommu", format!("{groups} IOMMU groups{units}; {asked}"));
    }
    let found = format!("no IOMMU groups in /sys/kernel/iommu_groups; {asked}");
    if have_config && pci.is_empty() {
        return Finding::ok(
            "iommu",
            format!("{found}; not needed: the config has no PCI devices"),
        );
    }
    let noiommu = host
        .read_line("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode")
        .is_some_and(|v| v == "Y" || v == "1");
    let fix = if cmdline.get("intel_iommu") == Some("on") || cmdline.get("amd_iommu") == Some("on")
    {
        "enable VT-d / AMD-Vi in the firmware setup (the kernel command line already asks for the IOMMU), then reboot"
    } else {
        "add intel_iommu=on iommu=pt to the kernel command line (AMD: amd_iommu=on iommu=pt) and enable VT-d / AMD-Vi in the firmware, then reboot"
    };
    if noiommu {
        return Finding::warn(
            "iommu",
            format!("{found}; vfio runs in unsafe no-IOMMU mode (no DMA isolation)"),
            fix,
        );
    }
    let status = if pci.is_empty() {
        Status::Warn
    } else {
        Status::Fail
    };
    Finding::bad(
        status,
        "iommu",
        format!("{found}: vfio-pci cannot take devices"),
        fix,
    )
}

/// vfio, vfio_iommu_type1 and vfio_pci loaded, and /dev/vfio/vfio there.
pub fn modules(host: &Host, have_config: bool, pci: &[String]) -> Finding {
    let missing: Vec<&str> = VFIO_MODULES
        .into_iter()
        .filter(|m| !host.module_loaded(m))
        .collect();
    let uio: Vec<&str> = UIO_MODULES
        .into_iter()
        .filter(|m| host.module_loaded(m))
        .collect();
    let uio = if uio.is_empty() {
        String::new()
    } else {
        format!("; also loaded: {}", uio.join(", "))
    };
    let dev = host.exists("/dev/vfio/vfio");
    let vdev_only = have_config && pci.is_empty();
    if missing.is_empty() && dev {
        return Finding::ok(
            "modules",
            format!(
                "{} loaded, /dev/vfio/vfio present{uio}",
                VFIO_MODULES.join(", ")
            ),
        );
    }
    let found = if missing.is_empty() {
        format!(
            "{} loaded but /dev/vfio/vfio is missing{uio}",
            VFIO_MODULES.join(", ")
        )
    } else {
        format!("not loaded: {}{uio}", missing.join(", "))
    };
    if vdev_only {
        return Finding::ok(
            "modules",
            format!("{found}; not needed: the config has no PCI devices"),
        );
    }
    let fix = if missing.is_empty() {
        "modprobe -r vfio-pci && modprobe vfio-pci (udev creates /dev/vfio/vfio)"
    } else {
        "modprobe vfio-pci (at boot: echo vfio-pci > /etc/modules-load.d/vfio-pci.conf)"
    };
    let status = if pci.is_empty() {
        Status::Warn
    } else {
        Status::Fail
    };
    Finding::bad(status, "modules", found, fix)
}

/// One configured PCI device: present, and bound to vfio-pci (or a bifurcated driver).
pub fn device(host: &Host, addr: &str) -> Finding {
    let topic = format!("device {addr}");
    let dir = format!("/sys/bus/pci/devices/{addr}");
    if !host.exists(&dir) {
        return Finding::fail(
            topic,
            "no such PCI device in /sys/bus/pci/devices",
            "check the address with `lspci -D` or `dpdk-devbind.py --status`, and fix interfaces[].device / -a in the config",
        );
    }
    let bind = format!("dpdk-devbind.py --bind=vfio-pci {addr}");
    let group = host.link_name(&format!("{dir}/iommu_group"));
    let Some(driver) = host.link_name(&format!("{dir}/driver")) else {
        return Finding::fail(topic, "bound to no driver", bind);
    };
    match driver.as_str() {
        "vfio-pci" => {
            let group = group.map_or_else(
                || " (no IOMMU group: no-IOMMU mode)".to_owned(),
                |g| format!(" (IOMMU group {g})"),
            );
            Finding::ok(topic, format!("bound to vfio-pci{group}"))
        }
        "uio_pci_generic" | "igb_uio" => Finding::warn(
            topic,
            format!("bound to {driver}: works, but without DMA isolation"),
            bind,
        ),
        d if BIFURCATED.contains(&d) => {
            let missing: Vec<&str> = ["ib_uverbs", "mlx5_ib"]
                .into_iter()
                .filter(|m| d == "mlx5_core" && !host.module_loaded(m))
                .collect();
            let found = format!("bound to {d}, which DPDK's mlx PMD uses in place (bifurcated)");
            if missing.is_empty() {
                Finding::ok(topic, found)
            } else {
                Finding::warn(
                    topic,
                    format!("{found}; not loaded: {}", missing.join(", ")),
                    format!("modprobe {}", missing.join(" ")),
                )
            }
        }
        d => {
            let netdevs = host.list(&format!("{dir}/net"));
            let (found, fix) = match netdevs.as_slice() {
                [] => (format!("bound to the kernel driver {d}"), bind),
                names => (
                    format!(
                        "bound to the kernel driver {d} (interface {})",
                        names.join(", ")
                    ),
                    format!(
                        "{}{bind}",
                        names
                            .iter()
                            .map(|n| format!("ip link set {n} down && "))
                            .collect::<String>()
                    ),
                ),
            };
            Finding::fail(topic, found, fix)
        }
    }
}
