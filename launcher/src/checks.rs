//! `aplaunch check` and the checks of a launch: one report composed of every crate's
//! checks, in a fixed order (host, mdev, image, QEMU).

use crate::builder::HostFacts;
use crate::probe::{self, ProbeError, Probed};
use crate::qemu_checks::{self, Needs};
use crate::spec::VmSpec;
use host::{Check, CheckId, HostRoot, Report};
use std::path::{Path, PathBuf};

/// What the user plans to run, which decides which checks apply.
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// The crypto mdev's UUID (`--mdev`), as given.
    pub mdev: Option<String>,
    /// The Secure Execution image (`--pv-image`).
    pub pv_image: Option<PathBuf>,
    /// The QEMU binary (`--qemu`); an empty path means "discover it".
    pub qemu: Option<PathBuf>,
    /// Planned vCPUs (`--smp`).
    pub smp: Option<u64>,
    /// Do not read or write the probe cache (`--no-cache`).
    pub no_cache: bool,
}

/// Runs every applicable check against the host under `root`.
pub fn host_report(root: &HostRoot, request: &CheckRequest) -> Report {
    let mut report = Report::new();
    let uv = pv::UvInfo::read(root);
    let pv_options = pv::readiness::Options {
        smp: request.smp,
        crypto: request.mdev.is_some(),
    };
    report.extend(pv::readiness::checks(root, &uv, &pv_options));
    report.push(vfio::checks::module_loaded(root));
    if let Some(uuid) = &request.mdev {
        report.extend(vfio::checks::mdev_checks(root, uuid));
    }
    if let Some(image) = &request.pv_image {
        report.extend(image_checks(&uv, image, request.no_cache));
    }
    if let Some(qemu) = &request.qemu {
        let explicit = (!qemu.as_os_str().is_empty()).then_some(qemu.as_path());
        let outcome = probe_qemu(root, explicit, request.no_cache);
        let needs = Needs {
            pv: true,
            crypto: request.mdev.is_some(),
        };
        report.extend(qemu_checks::checks(&outcome, needs));
        if let Some(smp) = request.smp {
            report.push(qemu_checks::pv_cpus_check(&outcome, smp));
        }
    }
    report
}

/// Discovers and probes QEMU (through the cache unless `no_cache`).
pub fn probe_qemu(
    root: &HostRoot,
    explicit: Option<&Path>,
    no_cache: bool,
) -> Result<Probed, ProbeError> {
    let binary = probe::discover(explicit)?;
    let cache = if no_cache {
        None
    } else {
        host::cache::Cache::open_default()
    };
    probe::probe_cached(&binary, probe::kvm_usable(root), cache.as_ref())
}

/// The checks of a launch: host (PV readiness for secure guests, vfio_ap with an mdev),
/// the mdev, the SE image and QEMU, in that order. `scan` is the AP scan the caller already
/// made for the mdev (it is read here when not given).
pub fn launch_report(
    root: &HostRoot,
    uv: &pv::UvInfo,
    spec: &VmSpec,
    scan: Option<&vfio::scan::ApScan>,
    probe: &Result<Probed, ProbeError>,
    no_cache: bool,
) -> Report {
    let mut report = Report::new();
    if spec.is_pv() {
        let options = pv::readiness::Options {
            smp: Some(u64::from(spec.smp)),
            crypto: spec.mdev.is_some(),
        };
        report.extend(pv::readiness::checks(root, uv, &options));
    }
    if let Some(uuid) = &spec.mdev {
        report.push(vfio::checks::module_loaded(root));
        let uuid = uuid.hyphenated().to_string();
        report.extend(match scan {
            Some(scan) => vfio::checks::mdev_checks_with(root, scan, &uuid),
            None => vfio::checks::mdev_checks(root, &uuid),
        });
    }
    if let Some(image) = spec.pv_image() {
        report.extend(image_checks(uv, image, no_cache));
    } else if let (true, Some(i)) = (spec.is_pv(), spec.boot_disk) {
        let reason = format!(
            "not checked: the guest boots the SE image zipl wrote to disk #{} ({}), which aplaunch cannot read there; \
             name the same image file with --pv-image IMG to verify it (a disk without an SE image boots unprotected)",
            i + 1,
            spec.disks[i].path.display()
        );
        use pv::image::compat::{ID_FORMAT, ID_HOST_KEY, ID_INTEGRITY, ID_PCF, ID_VERSION};
        for id in [ID_FORMAT, ID_VERSION, ID_PCF, ID_HOST_KEY, ID_INTEGRITY] {
            report.push(Check::skip(id, reason.clone()));
        }
    }
    let needs = Needs {
        pv: spec.is_pv(),
        crypto: spec.mdev.is_some(),
    };
    report.extend(qemu_checks::checks_named(probe, needs, &spec.qemu_source));
    if spec.is_pv() {
        report.push(qemu_checks::pv_cpus_check(probe, u64::from(spec.smp)));
    }
    if spec.hugepages {
        report.push(hugepages_check(root, spec));
    }
    report
}

/// Where aplaunch backs guest memory with huge pages (`mem-path=` of the memory backend).
pub const HUGEPAGES_DIR: &str = "/dev/hugepages";

/// `hugepages`: a hugetlbfs of 1M pages mounted at [`HUGEPAGES_DIR`] with enough free
/// pages, and under KVM the kvm module's 1M-page backing (`hpage=1`). Without the mount
/// QEMU would silently create a RAM-sized regular file there; without hpage KVM refuses
/// huge-page-backed memory (arch/s390/kvm/kvm-s390.c, module parameter `hpage`, which
/// cannot be combined with `nested`).
pub fn hugepages_check(root: &HostRoot, spec: &VmSpec) -> Check {
    const ID: CheckId = CheckId::Hugepages;
    const MOUNT_HINT: &str = "mount hugetlbfs there (`mount -t hugetlbfs -o pagesize=1M hugetlbfs /dev/hugepages`; systemd's dev-hugepages.mount does it at boot) and reserve pages (`sysctl vm.nr_hugepages=N`)";
    let mounts = match root.read_optional("/proc/mounts") {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Check::fail(
                ID,
                "cannot tell whether hugetlbfs is mounted: /proc/mounts is missing",
                MOUNT_HINT,
            )
        }
        Err(e) => return Check::fail(ID, format!("cannot read /proc/mounts: {e}"), MOUNT_HINT),
    };
    let mount = mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[1] == HUGEPAGES_DIR && f[2] == "hugetlbfs").then(|| f[3].to_string())
    });
    let Some(options) = mount else {
        return Check::fail(
            ID,
            format!("no hugetlbfs is mounted at {HUGEPAGES_DIR}: QEMU would back the guest with a regular file there"),
            MOUNT_HINT,
        );
    };
    // KVM backs s390 guests with 1M pages only; TCG takes any hugetlbfs
    let pagesize = options.split(',').find_map(|o| o.strip_prefix("pagesize="));
    if let (Some(size), crate::spec::Accel::Kvm) = (pagesize, spec.accel) {
        if size != "1M" {
            return Check::fail(
                ID,
                format!("the hugetlbfs at {HUGEPAGES_DIR} has {size} pages; KVM backs s390 guests with 1M pages only"),
                "mount a hugetlbfs with pagesize=1M at /dev/hugepages",
            );
        }
    }
    // free pages from /proc/meminfo: prealloc=on fails at start without enough
    if let Ok(Some(meminfo)) = root.read_optional("/proc/meminfo") {
        let field = |name: &str| {
            meminfo.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .trim_start_matches(':')
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
        };
        if let (Some(free), Some(size_kib)) = (field("HugePages_Free"), field("Hugepagesize")) {
            let free_mib = free.saturating_mul(size_kib) / 1024;
            if free_mib < spec.memory_mib {
                return Check::fail(
                    ID,
                    format!(
                        "{free} free huge pages of {size_kib} KiB ({free_mib} MiB) for {} MiB of guest memory",
                        spec.memory_mib
                    ),
                    format!(
                        "reserve more: `sysctl vm.nr_hugepages=N` with N at least {} pages in all",
                        spec.memory_mib.saturating_mul(1024).div_ceil(size_kib.max(1))
                    ),
                );
            }
        }
    }
    if spec.accel == crate::spec::Accel::Tcg {
        return Check::pass(
            ID,
            format!("hugetlbfs is mounted at {HUGEPAGES_DIR} (tcg: KVM's hpage does not apply)"),
        );
    }
    match root.read_attribute("/sys/module/kvm/parameters/hpage") {
        Ok(Some(v)) if v.trim() == "1" => Check::pass(
            ID,
            format!("hugetlbfs is mounted at {HUGEPAGES_DIR} and KVM backs guests with 1M pages (hpage=1)"),
        ),
        Ok(Some(v)) => Check::fail(
            ID,
            format!("KVM does not back guests with huge pages (/sys/module/kvm/parameters/hpage is {})", v.trim()),
            "load kvm with hpage=1 (`modprobe kvm hpage=1`, or kvm.hpage=1 on the kernel command line; not together with nested=1)",
        ),
        Ok(None) => Check::fail(
            ID,
            "this KVM has no 1M-page backing (no /sys/module/kvm/parameters/hpage: not an s390 KVM, or kvm is not loaded)",
            "load kvm with hpage=1 on an IBM Z host, or drop --hugepages",
        ),
        Err(e) => Check::fail(ID, format!("cannot read /sys/module/kvm/parameters/hpage: {e}"), "run aplaunch as a user who can read /sys/module/kvm"),
    }
}

fn image_checks(uv: &pv::UvInfo, image: &Path, no_cache: bool) -> Vec<Check> {
    let options = pv::image::VerifyOptions {
        use_cache: !no_cache,
        ..pv::image::VerifyOptions::default()
    };
    pv::image::checks(uv, image, &options)
}

/// Reads what the builder needs from the host: UV AP features, the mdev's vfio cdev (from
/// `mdev`, read once by the caller) and whether `/dev/iommu` exists.
pub fn host_facts(
    root: &HostRoot,
    uv: &pv::UvInfo,
    spec: &VmSpec,
    mdev: Option<&vfio::mdev::MdevInfo>,
) -> HostFacts {
    HostFacts {
        uv_ap: uv.feature(pv::uv::FEATURE_AP),
        uv_ap_intr: uv.feature(pv::uv::FEATURE_AP_INTR),
        vfio_cdev: mdev.and_then(|m| m.vfio_cdev.clone()),
        iommufd: spec.mdev.is_some() && root.exists(vfio::device::IOMMUFD_NODE),
    }
}
