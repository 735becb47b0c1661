//! The QEMU checks of `aplaunch check --qemu` and of every launch: `qemu-binary`, `qemu-pv`,
//! `qemu-vfio-ap`, `cpu-unpack`, `cpu-ap`, `cpu-appv`.

use crate::probe::{ProbeError, Probed};
use host::{Check, CheckId};

/// What the guest will need from QEMU, which decides which checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// A Secure Execution guest (qemu-pv, cpu-unpack).
    pub pv: bool,
    /// A vfio-ap crypto device (qemu-vfio-ap, cpu-ap; with `pv` also cpu-appv).
    pub crypto: bool,
}

const UPGRADE_HINT: &str =
    "install a newer QEMU built for s390x with KVM (qemu-system-s390x, or qemu-kvm on RHEL), or name one with --qemu";

/// The QEMU checks in their fixed order, for a binary named with `--qemu` (or discovered).
pub fn checks(outcome: &Result<Probed, ProbeError>, needs: Needs) -> Vec<Check> {
    checks_named(outcome, needs, "--qemu")
}

/// [`checks`] for a binary named by `source` (`--qemu`, or `` key `qemu` in FILE ``), which
/// the hints name.
pub fn checks_named(
    outcome: &Result<Probed, ProbeError>,
    needs: Needs,
    source: &str,
) -> Vec<Check> {
    let probed = match outcome {
        Ok(p) => p,
        Err(e) => {
            let hint = match e {
                ProbeError::NotFound => format!("install qemu-system-s390x (Debian/Ubuntu: qemu-system-s390x or qemu-system-misc; RHEL: qemu-kvm), or name it with {source}"),
                ProbeError::NotExecutable { .. } => format!("name an executable QEMU binary with {source}: a path, or a bare name looked up on PATH"),
                _ => "run the binary by hand with -machine none -nodefaults -display none -qmp stdio to see why it does not start".into(),
            };
            let mut out = vec![Check::fail(CheckId::QemuBinary, e.to_string(), hint)];
            let why = "not probed: the QEMU binary is not usable";
            if needs.pv {
                out.push(Check::skip(CheckId::QemuPv, why));
            }
            if needs.crypto {
                out.push(Check::skip(CheckId::QemuVfioAp, why));
            }
            if needs.pv {
                out.push(Check::skip(CheckId::CpuUnpack, why));
            }
            if needs.crypto {
                out.push(Check::skip(CheckId::CpuAp, why));
            }
            if needs.pv && needs.crypto {
                out.push(Check::skip(CheckId::CpuAppv, why));
            }
            return out;
        }
    };
    let caps = &probed.caps;
    let mut out = Vec::new();
    let package = if caps.package.is_empty() {
        String::new()
    } else {
        format!(" ({})", caps.package)
    };
    out.push(Check::pass(
        CheckId::QemuBinary,
        format!(
            "{}: QEMU {}{package}, probed under {}{}",
            caps.binary.display(),
            caps.version,
            caps.accel,
            if probed.cached { " (cached)" } else { "" }
        ),
    ));
    let v = caps.version;
    if needs.pv {
        out.push(if !v.at_least(6, 0) {
            Check::fail(
                CheckId::QemuPv,
                format!("QEMU {v} is older than 6.0 and has no s390-pv-guest object for Secure Execution"),
                UPGRADE_HINT,
            )
        } else if !caps.has_type("s390-pv-guest") {
            Check::fail(
                CheckId::QemuPv,
                format!("{} (QEMU {v}) has no s390-pv-guest object: it was not built with KVM for s390x", caps.binary.display()),
                UPGRADE_HINT,
            )
        } else {
            Check::pass(CheckId::QemuPv, format!("QEMU {v} has the s390-pv-guest object"))
        });
    }
    if needs.crypto {
        out.push(if !caps.has_property("vfio-ap", "sysfsdev") {
            Check::fail(
                CheckId::QemuVfioAp,
                format!("{} (QEMU {v}) has no vfio-ap device", caps.binary.display()),
                "install a QEMU built with VFIO for s390x (CONFIG_VFIO_AP)",
            )
        } else if caps.vfio_ap_iommufd() {
            Check::pass(
                CheckId::QemuVfioAp,
                format!("QEMU {v} has vfio-ap with the group and iommufd backends (fd passing)"),
            )
        } else {
            Check::pass(
                CheckId::QemuVfioAp,
                format!("QEMU {v} has vfio-ap (VFIO group backend; iommufd needs QEMU 9.0+)"),
            )
        });
    }
    let unknown = || {
        caps.cpu_unknown
            .clone()
            .unwrap_or_else(|| "KVM is not available to ask for the host CPU model".into())
    };
    if needs.pv {
        out.push(match caps.cpu_feature("unpack") {
            None => Check::skip(CheckId::CpuUnpack, unknown()),
            Some(true) => Check::pass(CheckId::CpuUnpack, "the host CPU model has unpack (protected virtualization)"),
            Some(false) => Check::fail(
                CheckId::CpuUnpack,
                "the host CPU model lacks unpack: KVM offers no protected virtualization here",
                "boot the host with prot_virt=1 on a machine with Secure Execution (z15 or newer) and a kernel with KVM PV support",
            ),
        });
    }
    if needs.crypto {
        let features = ["ap", "apqci", "apft", "apqi"];
        out.push(match caps.cpu.as_ref() {
            None => Check::skip(CheckId::CpuAp, unknown()),
            Some(_) => {
                let missing: Vec<&str> = features
                    .iter()
                    .copied()
                    .filter(|f| caps.cpu_feature(f) != Some(true))
                    .collect();
                if missing.is_empty() {
                    Check::pass(CheckId::CpuAp, "the host CPU model has ap, apqci, apft and apqi")
                } else {
                    Check::fail(
                        CheckId::CpuAp,
                        format!("the host CPU model lacks {}: a vfio-ap device needs the AP instructions", missing.join(", ")),
                        "load vfio_ap and use a kernel whose KVM offers AP to guests (CONFIG_VFIO_AP)",
                    )
                }
            }
        });
    }
    if needs.pv && needs.crypto {
        out.push(if !v.at_least(8, 2) {
            Check::fail(
                CheckId::CpuAppv,
                format!("QEMU {v} has no appv CPU feature (QEMU 8.2+): a secure guest cannot use the crypto device"),
                UPGRADE_HINT,
            )
        } else {
            match caps.cpu_feature("appv") {
                None => Check::skip(CheckId::CpuAppv, unknown()),
                Some(true) => Check::pass(
                    CheckId::CpuAppv,
                    if caps.cpu_feature("appvi") == Some(true) {
                        "the host CPU model has appv and appvi (AP for secure guests, with interrupts)"
                    } else {
                        "the host CPU model has appv (AP for secure guests; no appvi: polling only)"
                    },
                ),
                Some(false) => Check::fail(
                    CheckId::CpuAppv,
                    "the host CPU model lacks appv: the ultravisor or kernel offers no AP to secure guests",
                    "update the machine's firmware (z16 or newer with the AP-for-secure-guests feature) and use a kernel 6.6+ host",
                ),
            }
        });
    }
    out
}

/// The most vCPUs QEMU starts a secure guest with. From 8.0 on, QEMU refuses more vCPUs
/// than fit in one page of the SCLP read-info response: (4096 bytes - the offset of the CPU
/// entries) / 16 bytes per entry, 248 with the classic 128-byte header and 247 when the
/// guest has the extended-length SCCB feature (`els`), whose header is longer
/// (hw/s390x/pv.c `s390_pv_get_max_cpus`, "Protected VMs support a maximum of %d CPUs").
/// Every machine with Secure Execution (z15 and newer) has `els`, so 247 is assumed when
/// the host CPU model is unknown. Before 8.0 only the machine's 248 applied.
pub fn pv_max_cpus(version: crate::probe::QemuVersion, els: Option<bool>) -> u32 {
    if !version.at_least(8, 0) || els == Some(false) {
        crate::spec::MAX_SMP
    } else {
        crate::spec::MAX_SMP - 1
    }
}

/// `qemu-pv-cpus`: a secure guest's vCPUs against QEMU's own limit for that version (the
/// ultravisor's limit is `uv-limits`).
pub fn pv_cpus_check(outcome: &Result<Probed, ProbeError>, smp: u64) -> Check {
    const ID: CheckId = CheckId::QemuPvCpus;
    let Ok(probed) = outcome else {
        return Check::skip(ID, "not probed: the QEMU binary is not usable");
    };
    let caps = &probed.caps;
    // only a CPU model that reports els off lifts the limit to 248 (an assumed or partial
    // model that does not list it is taken as a Secure Execution machine's, with els)
    let els = caps.cpu.as_ref().and_then(|c| c.get("els").copied());
    let max = pv_max_cpus(caps.version, els);
    if smp <= u64::from(max) {
        Check::pass(
            ID,
            format!(
                "{smp} vCPUs: QEMU {} starts a secure guest with up to {max}",
                caps.version
            ),
        )
    } else {
        Check::fail(
            ID,
            format!(
                "{smp} vCPUs: QEMU {} starts a secure guest with at most {max} (the CPU list of the SCLP read-info page must fit in 4 KiB)",
                caps.version
            ),
            format!("use --smp {max} or fewer"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{QemuCaps, QemuVersion};
    use host::Status;

    fn statuses(checks: &[Check]) -> Vec<(&str, Status)> {
        checks.iter().map(|c| (c.id.as_str(), c.status)).collect()
    }

    fn probed(caps: QemuCaps) -> Result<Probed, ProbeError> {
        Ok(Probed {
            caps,
            cached: false,
        })
    }

    const ALL: Needs = Needs {
        pv: true,
        crypto: true,
    };

    #[test]
    fn a_modern_kvm_qemu_passes_everything() {
        let c = checks(&probed(QemuCaps::assumed(QemuVersion::new(9, 1, 0))), ALL);
        assert!(c.iter().all(|c| c.status == Status::Pass), "{c:?}");
        assert_eq!(
            c.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            [
                "qemu-binary",
                "qemu-pv",
                "qemu-vfio-ap",
                "cpu-unpack",
                "cpu-ap",
                "cpu-appv"
            ]
        );
    }

    #[test]
    fn old_versions_fail_pv_and_appv() {
        let c = checks(&probed(QemuCaps::assumed(QemuVersion::new(5, 2, 0))), ALL);
        assert_eq!(c[1].status, Status::Fail);
        assert_eq!(c[5].status, Status::Fail);
        let c = checks(&probed(QemuCaps::assumed(QemuVersion::new(8, 1, 0))), ALL);
        assert_eq!(c[1].status, Status::Pass);
        assert_eq!(c[5].status, Status::Fail);
        assert!(c[5].message.contains("8.2"));
    }

    #[test]
    fn tcg_probes_skip_cpu_checks_with_the_reason() {
        let mut caps = QemuCaps::assumed(QemuVersion::new(9, 1, 0));
        caps.cpu = None;
        caps.cpu_unknown = Some("KVM is not available (tcg)".into());
        let c = checks(&probed(caps), ALL);
        assert_eq!(
            statuses(&c)[3..],
            [
                ("cpu-unpack", Status::Skip),
                ("cpu-ap", Status::Skip),
                ("cpu-appv", Status::Skip)
            ]
        );
        assert!(c[3].message.contains("tcg"));
    }

    #[test]
    fn missing_features_fail_naming_them() {
        let mut caps = QemuCaps::assumed(QemuVersion::new(9, 1, 0));
        let cpu = caps.cpu.as_mut().unwrap();
        cpu.insert("apft".into(), false);
        cpu.insert("unpack".into(), false);
        cpu.insert("appv".into(), false);
        caps.types.remove("s390-pv-guest");
        let c = checks(&probed(caps), ALL);
        for id in ["qemu-pv", "cpu-unpack", "cpu-ap", "cpu-appv"] {
            let check = c.iter().find(|c| c.id.as_str() == id).unwrap();
            assert_eq!(check.status, Status::Fail, "{id}");
            assert!(check.hint.is_some());
        }
        assert!(c[4].message.contains("apft"));
    }

    #[test]
    fn secure_guests_have_qemus_own_vcpu_limit_from_8_0() {
        let v = QemuVersion::new;
        assert_eq!(pv_max_cpus(v(7, 2, 0), Some(true)), 248);
        assert_eq!(pv_max_cpus(v(8, 0, 0), Some(true)), 247);
        assert_eq!(pv_max_cpus(v(10, 0, 0), None), 247);
        assert_eq!(pv_max_cpus(v(10, 0, 0), Some(false)), 248);
        let caps = QemuCaps::assumed(v(10, 0, 0));
        let c = pv_cpus_check(&probed(caps.clone()), 248);
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.message.contains("at most 247"), "{c:?}");
        assert_eq!(c.hint.as_deref(), Some("use --smp 247 or fewer"));
        assert_eq!(pv_cpus_check(&probed(caps), 247).status, Status::Pass);
        let old = QemuCaps::assumed(v(7, 2, 0));
        assert_eq!(pv_cpus_check(&probed(old), 248).status, Status::Pass);
        assert_eq!(
            pv_cpus_check(&Err(ProbeError::NotFound), 248).status,
            Status::Skip
        );
    }

    #[test]
    fn hints_name_where_the_binary_was_named() {
        let c = checks_named(
            &Err(ProbeError::NotExecutable {
                path: "qemu-kvm".into(),
            }),
            ALL,
            "key `qemu` in vm.toml",
        );
        assert!(
            c[0].hint
                .as_deref()
                .unwrap()
                .contains("key `qemu` in vm.toml"),
            "{c:?}"
        );
    }

    #[test]
    fn a_missing_binary_fails_and_skips_the_rest() {
        let c = checks(
            &Err(ProbeError::NotFound),
            Needs {
                pv: false,
                crypto: true,
            },
        );
        assert_eq!(
            statuses(&c),
            [
                ("qemu-binary", Status::Fail),
                ("qemu-vfio-ap", Status::Skip),
                ("cpu-ap", Status::Skip)
            ]
        );
    }
}
