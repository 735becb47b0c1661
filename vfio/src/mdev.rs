//! One vfio_ap mediated device as sysfs shows it.

use crate::ap::{Apid, Apqi, Apqn};
use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::mdev_uuid;
use host::HostRoot;
use serde::Serialize;
use std::collections::BTreeSet;

/// The vfio_ap matrix device directory (host path).
pub const MATRIX_DIR: &str = "sys/devices/vfio_ap/matrix";
/// The vfio_ap mdev type directory (host path).
pub const TYPE_DIR: &str = "sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough";
/// The only mdev type vfio_ap offers.
pub const MDEV_TYPE: &str = "vfio_ap-passthrough";

/// The host path of an mdev's device directory.
pub fn mdev_dir(uuid: &str) -> String {
    format!("{MATRIX_DIR}/{uuid}")
}

/// `ap_config`: the three masks of an mdev, as one atomic attribute (newer kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApConfig {
    /// Adapters.
    pub apm: Mask,
    /// Usage domains.
    pub aqm: Mask,
    /// Control domains.
    pub adm: Mask,
}

impl ApConfig {
    /// Parses `0x<64 hex>,0x<64 hex>,0x<64 hex>\n`.
    pub fn parse(text: &str) -> Option<ApConfig> {
        let v = text.strip_suffix('\n').unwrap_or(text);
        let mut parts = v.split(',');
        let apm = Mask::parse_sysfs(parts.next()?).ok()?;
        let aqm = Mask::parse_sysfs(parts.next()?).ok()?;
        let adm = Mask::parse_sysfs(parts.next()?).ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(ApConfig { apm, aqm, adm })
    }

    /// The attribute's format, with the newline.
    pub fn to_sysfs(&self) -> String {
        format!(
            "{},{},{}\n",
            self.apm.to_kernel_hex(),
            self.aqm.to_kernel_hex(),
            self.adm.to_kernel_hex()
        )
    }
}

/// An active vfio_ap mdev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MdevInfo {
    /// Its UUID, lower case.
    pub uuid: String,
    /// Name of the `mdev_type` link's target (`vfio_ap-passthrough`).
    pub mdev_type: Option<String>,
    /// Name of the `driver` link's target (`vfio_ap_mdev`).
    pub driver: Option<String>,
    /// Assigned adapters (from `matrix`).
    pub adapters: Vec<Apid>,
    /// Assigned usage domains (from `matrix`).
    pub domains: Vec<Apqi>,
    /// Assigned APQNs: adapters x domains.
    pub matrix: Vec<Apqn>,
    /// What the guest actually gets (`guest_matrix`, newer kernels).
    pub guest_matrix: Option<Vec<Apqn>>,
    /// Assigned control domains.
    pub control_domains: Vec<Apqi>,
    /// `ap_config` where the kernel has it.
    pub ap_config: Option<ApConfig>,
    /// The IOMMU group number (basename of the `iommu_group` link).
    pub iommu_group: Option<u32>,
    /// The iommufd cdev name under `vfio-dev/` (`vfio0`).
    pub vfio_cdev: Option<String>,
}

/// A parsed `matrix` / `guest_matrix` attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatrixText {
    /// Adapters named.
    pub adapters: Vec<Apid>,
    /// Domains named.
    pub domains: Vec<Apqi>,
    /// The APQNs (adapters x domains).
    pub apqns: Vec<Apqn>,
}

/// Parses the kernel's matrix format: `%02lx.%04lx\n` per APQN, `05.\n` when there are only
/// adapters, `.0004\n` when only domains, empty when nothing is assigned.
pub fn parse_matrix(text: &str) -> std::result::Result<MatrixText, String> {
    let mut adapters = BTreeSet::new();
    let mut domains = BTreeSet::new();
    let mut apqns = BTreeSet::new();
    for line in text.lines() {
        let (a, d) = line
            .split_once('.')
            .ok_or_else(|| format!("line {line:?} is not AA.DDDD, AA. or .DDDD"))?;
        let hex = |s: &str, n: usize| -> std::result::Result<Option<u8>, String> {
            if s.is_empty() {
                return Ok(None);
            }
            let v = crate::number::hex_id(s, n..=n)
                .ok_or_else(|| format!("line {line:?} is not AA.DDDD, AA. or .DDDD"))?;
            u8::try_from(v)
                .map(Some)
                .map_err(|_| format!("line {line:?} names an id above 255"))
        };
        match (hex(a, 2)?, hex(d, 4)?) {
            (Some(a), Some(d)) => {
                adapters.insert(Apid(a));
                domains.insert(Apqi(d));
                apqns.insert(Apqn::new(a, d));
            }
            (Some(a), None) => {
                adapters.insert(Apid(a));
            }
            (None, Some(d)) => {
                domains.insert(Apqi(d));
            }
            (None, None) => return Err(format!("line {line:?} names nothing")),
        }
    }
    Ok(MatrixText {
        adapters: adapters.into_iter().collect(),
        domains: domains.into_iter().collect(),
        apqns: apqns.into_iter().collect(),
    })
}

/// Formats APQNs the way the kernel's `matrix` attribute does (for tests and models).
pub fn format_matrix(adapters: &[Apid], domains: &[Apqi]) -> String {
    let mut s = String::new();
    if domains.is_empty() {
        for a in adapters {
            s.push_str(&format!("{a}.\n"));
        }
    } else if adapters.is_empty() {
        for d in domains {
            s.push_str(&format!(".{d}\n"));
        }
    } else {
        for a in adapters {
            for d in domains {
                s.push_str(&format!("{a}.{d}\n"));
            }
        }
    }
    s
}

impl MdevInfo {
    /// Reads the mdev `uuid` from `sys/devices/vfio_ap/matrix/<uuid>`.
    pub fn read(root: &HostRoot, uuid: &str) -> Result<MdevInfo> {
        let uuid = mdev_uuid::normalize(uuid)?;
        let dir = mdev_dir(&uuid);
        if !root.is_dir(&dir) {
            if !root.is_dir(MATRIX_DIR) {
                return Err(Error::ModuleNotLoaded);
            }
            return Err(Error::MdevNotFound { uuid });
        }
        let format_err = |file: &str, reason: String| Error::Format {
            path: root.path(format!("{dir}/{file}")),
            reason,
        };
        let mdev_type = root.link_name(format!("{dir}/mdev_type"))?;
        let driver = root.link_name(format!("{dir}/driver"))?;
        let matrix_text = root.read_string(format!("{dir}/matrix"))?;
        let matrix = parse_matrix(&matrix_text).map_err(|r| format_err("matrix", r))?;
        let guest_matrix = match root.read_attribute(format!("{dir}/guest_matrix"))? {
            Some(t) => Some(
                parse_matrix(&t)
                    .map_err(|r| format_err("guest_matrix", r))?
                    .apqns,
            ),
            None => None,
        };
        let control_domains = match root.read_attribute(format!("{dir}/control_domains"))? {
            Some(t) => parse_control_domains(&t).map_err(|r| format_err("control_domains", r))?,
            None => Vec::new(),
        };
        let ap_config = match root.read_attribute(format!("{dir}/ap_config"))? {
            Some(t) => Some(ApConfig::parse(&t).ok_or_else(|| {
                format_err(
                    "ap_config",
                    format!(
                        "expected three 0x+64-hex masks separated by commas, found {:?}",
                        host::sysfs::excerpt(&t)
                    ),
                )
            })?),
            None => None,
        };
        let iommu_group = root
            .link_name(format!("{dir}/iommu_group"))?
            .and_then(|n| n.parse().ok());
        let vfio_cdev = if root.is_dir(format!("{dir}/vfio-dev")) {
            root.read_dir(format!("{dir}/vfio-dev"))?
                .into_iter()
                .find(|n| {
                    n.starts_with("vfio")
                        && n[4..].bytes().all(|b| b.is_ascii_digit())
                        && n.len() > 4
                })
        } else {
            None
        };
        Ok(MdevInfo {
            uuid,
            mdev_type,
            driver,
            adapters: matrix.adapters,
            domains: matrix.domains,
            matrix: matrix.apqns,
            guest_matrix,
            control_domains,
            ap_config,
            iommu_group,
            vfio_cdev,
        })
    }

    /// The sysfs path QEMU is given: `/sys/bus/mdev/devices/<uuid>`.
    pub fn sysfs_path(&self) -> String {
        mdev_uuid::sysfsdev(&self.uuid)
    }

    /// APQNs assigned but not given to the guest (`matrix` minus `guest_matrix`).
    pub fn filtered_out(&self) -> Vec<Apqn> {
        match &self.guest_matrix {
            Some(g) => self
                .matrix
                .iter()
                .filter(|q| !g.contains(q))
                .copied()
                .collect(),
            None => Vec::new(),
        }
    }
}

/// Parses `control_domains`: one `%04lx\n` per domain.
pub fn parse_control_domains(text: &str) -> std::result::Result<Vec<Apqi>, String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let v = crate::number::hex_id(line, 4..=4)
            .ok_or_else(|| format!("line {line:?} is not a 4-digit hex domain"))?;
        let d = u8::try_from(v).map_err(|_| format!("domain {line} is above 255"))?;
        out.insert(Apqi(d));
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_formats() {
        let m = parse_matrix("05.0004\n05.00ab\n").unwrap();
        assert_eq!(m.adapters, vec![Apid(5)]);
        assert_eq!(m.domains, vec![Apqi(4), Apqi(0xab)]);
        assert_eq!(m.apqns, vec![Apqn::new(5, 4), Apqn::new(5, 0xab)]);
        let m = parse_matrix("05.\n06.\n").unwrap();
        assert_eq!(m.adapters.len(), 2);
        assert!(m.apqns.is_empty());
        let m = parse_matrix(".0004\n").unwrap();
        assert_eq!(m.domains, vec![Apqi(4)]);
        assert_eq!(parse_matrix("").unwrap(), MatrixText::default());
        for bad in ["5.4\n", "05-0004\n", ".\n", "05.0100\n", "zz.0001\n"] {
            assert!(parse_matrix(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format_matrix(&[Apid(5)], &[Apqi(4), Apqi(0xab)]),
            "05.0004\n05.00ab\n"
        );
        assert_eq!(format_matrix(&[Apid(5)], &[]), "05.\n");
        assert_eq!(format_matrix(&[], &[Apqi(4)]), ".0004\n");
        assert_eq!(format_matrix(&[], &[]), "");
    }

    #[test]
    fn control_domains_and_ap_config() {
        assert_eq!(
            parse_control_domains("0004\n00ab\n").unwrap(),
            vec![Apqi(4), Apqi(0xab)]
        );
        assert!(parse_control_domains("ab\n").is_err());
        let cfg = ApConfig {
            apm: Mask::from_bits([5]),
            aqm: Mask::from_bits([4, 171]),
            adm: Mask::from_bits([171]),
        };
        assert_eq!(ApConfig::parse(&cfg.to_sysfs()), Some(cfg));
        assert_eq!(ApConfig::parse("0x00,0x00,0x00\n"), None);
    }

    #[test]
    fn reads_the_example_mdev() {
        let tree = testkit::hosttree::HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let m = MdevInfo::read(&root, "62177883-F1BB-47F0-914D-32A22E3A8804").unwrap();
        assert_eq!(m.uuid, "62177883-f1bb-47f0-914d-32a22e3a8804");
        assert_eq!(m.mdev_type.as_deref(), Some(MDEV_TYPE));
        assert_eq!(m.driver.as_deref(), Some("vfio_ap_mdev"));
        assert_eq!(m.matrix, vec![Apqn::new(5, 4), Apqn::new(5, 0xab)]);
        assert_eq!(m.guest_matrix, Some(m.matrix.clone()));
        assert_eq!(m.control_domains, vec![Apqi(0xab)]);
        assert_eq!(m.iommu_group, Some(0));
        assert_eq!(m.vfio_cdev.as_deref(), Some("vfio0"));
        assert_eq!(
            m.sysfs_path(),
            "/sys/bus/mdev/devices/62177883-f1bb-47f0-914d-32a22e3a8804"
        );
        assert_eq!(m.ap_config.unwrap().apm, Mask::from_bits([5]));
        assert!(m.filtered_out().is_empty());
    }

    #[test]
    fn missing_mdev_and_module() {
        let tree = testkit::hosttree::HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let u = "11111111-2222-4333-8444-555555555555";
        assert!(matches!(
            MdevInfo::read(&root, u),
            Err(Error::MdevNotFound { .. })
        ));
        assert!(matches!(
            MdevInfo::read(&root, "nope"),
            Err(Error::BadUuid { .. })
        ));
        tree.remove("sys/devices/vfio_ap");
        assert!(matches!(
            MdevInfo::read(&root, u),
            Err(Error::ModuleNotLoaded)
        ));
    }

    #[test]
    fn malformed_matrix_names_the_file() {
        let tree = testkit::hosttree::HostTree::from_example("z16-se");
        let u = "62177883-f1bb-47f0-914d-32a22e3a8804";
        tree.write(
            &format!("sys/devices/vfio_ap/matrix/{u}/matrix"),
            "garbage\n",
        );
        let root = HostRoot::open(tree.path()).unwrap();
        let e = MdevInfo::read(&root, u).unwrap_err().to_string();
        assert!(e.contains("/matrix") && e.contains("garbage"), "{e}");
    }
}
