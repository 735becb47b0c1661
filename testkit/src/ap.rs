//! Generated AP hosts: a host tree with many adapters, domains and mdevs, in the kernel's
//! exact sysfs formats (cards and queues, bus masks, the vfio_ap matrix device, mdevs with
//! their links, iommu groups and VFIO nodes, mdevctl definitions).
//!
//! Layout: adapters 0 and 1 stay with the host drivers (apmask bits 0-1, aqmask all
//! domains); the others are left to vfio_ap. mdev `i` gets the adapter pair
//! `2 + 2*(i % pairs)`, `3 + 2*(i % pairs)` and domain `i / pairs`, so mdevs never overlap,
//! like a host running one guest per domain with two adapters each for redundancy.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct ApHostSpec {
    /// Number of adapters (ids 0..adapters), at least 4.
    pub adapters: u16,
    /// Number of usage domains (ids 0..domains).
    pub domains: u16,
    /// Number of mdevs (all active, each with an autostart definition).
    pub mdevs: usize,
}

/// The UUID of generated mdev `i`.
pub fn mdev_uuid(i: usize) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        0x5e00_0000u32 + i as u32,
        i
    )
}

fn mask_hex(bits: impl Iterator<Item = u16>) -> String {
    let mut bytes = [0u8; 32];
    for b in bits {
        bytes[(b / 8) as usize] |= 0x80 >> (b % 8);
    }
    let mut s = String::from("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn link(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let _ = fs::remove_file(&p);
    symlink(target, p).unwrap();
}

impl ApHostSpec {
    /// Number of adapter pairs available to mdevs.
    pub fn pairs(&self) -> usize {
        (self.adapters as usize - 2) / 2
    }

    /// The adapters and domain of mdev `i`.
    pub fn mdev_matrix(&self, i: usize) -> ([u16; 2], u16) {
        let p = (i % self.pairs()) as u16;
        ([2 + 2 * p, 3 + 2 * p], (i / self.pairs()) as u16)
    }

    /// Writes the host tree under `root` (which should be empty).
    pub fn generate(&self, root: &Path) {
        assert!(self.adapters >= 4 && self.adapters <= 256 && self.domains <= 256);
        assert!(
            self.mdevs <= self.pairs() * self.domains as usize,
            "too many mdevs"
        );
        let bus = "sys/bus/ap";
        write(
            root,
            &format!("{bus}/apmask"),
            &format!("{}\n", mask_hex(0..2)),
        );
        write(
            root,
            &format!("{bus}/aqmask"),
            &format!("{}\n", mask_hex(0..256)),
        );
        write(root, &format!("{bus}/ap_max_adapter_id"), "255\n");
        write(root, &format!("{bus}/ap_max_domain_id"), "255\n");
        write(
            root,
            &format!("{bus}/ap_adapter_mask"),
            &format!("{}\n", mask_hex(0..self.adapters)),
        );
        write(
            root,
            &format!("{bus}/ap_usage_domain_mask"),
            &format!("{}\n", mask_hex(0..self.domains)),
        );
        write(
            root,
            &format!("{bus}/ap_control_domain_mask"),
            &format!("{}\n", mask_hex(0..self.domains)),
        );
        let total = self.adapters as usize * (self.domains as usize + 1);
        write(
            root,
            &format!("{bus}/bindings"),
            &format!("{total}/{total} (complete)\n"),
        );
        write(
            root,
            &format!("{bus}/features"),
            "APSC APXA QACT RC8A APSB\n",
        );
        write(root, &format!("{bus}/ap_domain"), "0\n");
        write(root, &format!("{bus}/config_time"), "30\n");
        fs::create_dir_all(root.join("sys/bus/ap/drivers/cex4queue")).unwrap();
        fs::create_dir_all(root.join("sys/bus/ap/drivers/cex4card")).unwrap();
        fs::create_dir_all(root.join("sys/bus/ap/drivers/vfio_ap")).unwrap();
        fs::create_dir_all(root.join("sys/bus/mdev/drivers/vfio_ap_mdev")).unwrap();
        fs::create_dir_all(root.join("run/lock")).unwrap();
        // who owns which queue
        let mut owner = vec![None; 256 * 256];
        for i in 0..self.mdevs {
            let (ads, d) = self.mdev_matrix(i);
            for a in ads {
                owner[a as usize * 256 + d as usize] = Some(i);
            }
        }
        for a in 0..self.adapters {
            let card = format!("card{a:02x}");
            let cdir = format!("sys/devices/ap/{card}");
            for (f, v) in [
                ("hwtype", "14"),
                ("raw_hwtype", "14"),
                ("type", "CEX8C"),
                ("online", "1"),
                ("config", "1"),
                ("chkstop", "0"),
                ("depth", "8"),
                ("ap_functions", "0x92000000"),
                ("modalias", "ap:t0E"),
                ("max_msg_size", "12288"),
            ] {
                write(root, &format!("{cdir}/{f}"), &format!("{v}\n"));
            }
            link(
                root,
                &format!("{cdir}/driver"),
                "../../../bus/ap/drivers/cex4card",
            );
            link(
                root,
                &format!("sys/bus/ap/devices/{card}"),
                &format!("../../../devices/ap/{card}"),
            );
            for d in 0..self.domains {
                let q = format!("{a:02x}.{d:04x}");
                let qdir = format!("{cdir}/{q}");
                let host = a < 2;
                for (f, v) in [
                    ("config", "1"),
                    ("chkstop", "0"),
                    ("modalias", "ap:t0E"),
                    ("interrupt", "Interrupts enabled."),
                ] {
                    write(root, &format!("{qdir}/{f}"), &format!("{v}\n"));
                }
                if host {
                    write(root, &format!("{qdir}/online"), "1\n");
                    link(
                        root,
                        &format!("{qdir}/driver"),
                        "../../../../bus/ap/drivers/cex4queue",
                    );
                } else {
                    let status = if owner[a as usize * 256 + d as usize].is_some() {
                        "assigned"
                    } else {
                        "unassigned"
                    };
                    write(root, &format!("{qdir}/status"), &format!("{status}\n"));
                    link(
                        root,
                        &format!("{qdir}/driver"),
                        "../../../../bus/ap/drivers/vfio_ap",
                    );
                }
                link(
                    root,
                    &format!("sys/bus/ap/devices/{q}"),
                    &format!("../../../devices/ap/{card}/{q}"),
                );
            }
        }
        let matrix = "sys/devices/vfio_ap/matrix";
        write(
            root,
            &format!("{matrix}/features"),
            "guest_matrix hotplug ap_config\n",
        );
        let ty = format!("{matrix}/mdev_supported_types/vfio_ap-passthrough");
        write(root, &format!("{ty}/name"), "VFIO AP Passthrough Device\n");
        write(root, &format!("{ty}/device_api"), "vfio-ap\n");
        write(
            root,
            &format!("{ty}/available_instances"),
            &format!("{}\n", 65536 - self.mdevs),
        );
        write(root, &format!("{ty}/create"), "");
        link(
            root,
            "sys/bus/matrix/devices/matrix",
            "../../../devices/vfio_ap/matrix",
        );
        link(
            root,
            "sys/class/mdev_bus/matrix",
            "../../devices/vfio_ap/matrix",
        );
        write(
            root,
            "dev/vfio/vfio",
            "aplaunch snapshot of a device node\n",
        );
        for i in 0..self.mdevs {
            let u = mdev_uuid(i);
            let (ads, d) = self.mdev_matrix(i);
            let dir = format!("{matrix}/{u}");
            let m: String = ads.iter().map(|a| format!("{a:02x}.{d:04x}\n")).collect();
            write(root, &format!("{dir}/matrix"), &m);
            write(root, &format!("{dir}/guest_matrix"), &m);
            write(
                root,
                &format!("{dir}/control_domains"),
                &format!("{d:04x}\n"),
            );
            write(
                root,
                &format!("{dir}/ap_config"),
                &format!(
                    "{},{},{}\n",
                    mask_hex(ads.iter().copied()),
                    mask_hex(std::iter::once(d)),
                    mask_hex(std::iter::once(d))
                ),
            );
            for f in [
                "assign_adapter",
                "unassign_adapter",
                "assign_domain",
                "unassign_domain",
                "assign_control_domain",
                "unassign_control_domain",
                "remove",
            ] {
                write(root, &format!("{dir}/{f}"), "");
            }
            link(
                root,
                &format!("{dir}/mdev_type"),
                "../mdev_supported_types/vfio_ap-passthrough",
            );
            link(
                root,
                &format!("{dir}/driver"),
                "../../../../bus/mdev/drivers/vfio_ap_mdev",
            );
            link(
                root,
                &format!("{dir}/iommu_group"),
                &format!("../../../../kernel/iommu_groups/{i}"),
            );
            write(
                root,
                &format!("{dir}/vfio-dev/vfio{i}/dev"),
                &format!("511:{i}\n"),
            );
            link(
                root,
                &format!("sys/kernel/iommu_groups/{i}/devices/{u}"),
                &format!("../../../../devices/vfio_ap/matrix/{u}"),
            );
            link(
                root,
                &format!("sys/bus/mdev/devices/{u}"),
                &format!("../../../devices/vfio_ap/matrix/{u}"),
            );
            link(root, &format!("{ty}/devices/{u}"), &format!("../../../{u}"));
            write(
                root,
                &format!("dev/vfio/{i}"),
                "aplaunch snapshot of a device node\n",
            );
            write(
                root,
                &format!("dev/vfio/devices/vfio{i}"),
                "aplaunch snapshot of a device node\n",
            );
            let def = format!(
                "{{\n  \"mdev_type\": \"vfio_ap-passthrough\",\n  \"start\": \"auto\",\n  \"attrs\": [\n    {{\n      \"assign_adapter\": \"{}\"\n    }},\n    {{\n      \"assign_adapter\": \"{}\"\n    }},\n    {{\n      \"assign_domain\": \"{d}\"\n    }},\n    {{\n      \"assign_control_domain\": \"{d}\"\n    }}\n  ]\n}}",
                ads[0], ads[1]
            );
            write(root, &format!("etc/mdevctl.d/matrix/{u}"), &def);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_host_layout() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ApHostSpec {
            adapters: 4,
            domains: 3,
            mdevs: 3,
        };
        spec.generate(dir.path());
        let read = |p: &str| fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(
            read("sys/bus/ap/apmask"),
            format!("0xc0{}\n", "0".repeat(62))
        );
        assert_eq!(read("sys/bus/ap/devices/02.0001/status"), "assigned\n");
        assert_eq!(read("sys/bus/ap/devices/00.0001/online"), "1\n");
        let u = mdev_uuid(1);
        assert_eq!(u.len(), 36);
        assert_eq!(
            read(&format!("sys/bus/mdev/devices/{u}/matrix")),
            "02.0001\n03.0001\n"
        );
    }
}
