//! The readiness report: checks with stable ids that every crate contributes to.

use crate::names::string_enum;
use serde::Serialize;
use std::fmt::Write as _;

string_enum! {
    /// The stable id of a check, as scripts match it in JSON (`"id": "kvm"`) and the
    /// README's check tables list it. New checks add variants, hence non-exhaustive.
    pub enum CheckId;
    /// A text that is no check's id.
    pub struct UnknownCheckId("is not " "a check id");
    /// Facility 158 (the ultravisor call) in `/proc/cpuinfo`.
    Facility158 = "facility-158",
    /// `/sys/firmware/uv` exists.
    UvSysfs = "uv-sysfs",
    /// `prot_virt_host` is 1.
    ProtVirt = "prot-virt",
    /// KVM can run protected guests.
    Kvm = "kvm",
    /// The ultravisor's vCPU and guest limits.
    UvLimits = "uv-limits",
    /// The ultravisor supports the SE header version.
    UvSeHdr = "uv-se-hdr",
    /// The host-key hashes the ultravisor publishes.
    UvHostKeys = "uv-host-keys",
    /// AP passthrough for secure guests.
    UvAp = "uv-ap",
    /// The vfio_ap module and its matrix device.
    VfioApModule = "vfio-ap-module",
    /// The mdev exists.
    MdevExists = "mdev-exists",
    /// The mdev is a `vfio_ap-passthrough` one.
    MdevType = "mdev-type",
    /// The mdev has adapters and usage domains.
    MdevMatrix = "mdev-matrix",
    /// The mdev's APQNs exist and are bound to vfio_ap.
    MdevQueues = "mdev-queues",
    /// No other mdev or autostart definition has the same APQNs.
    MdevConflicts = "mdev-conflicts",
    /// apmask/aqmask leave the APQNs to vfio_ap.
    MdevMasks = "mdev-masks",
    /// No other guest holds the mdev.
    MdevFree = "mdev-free",
    /// The mdev's autostart definition survives a reboot.
    MdevPersistent = "mdev-persistent",
    /// The SE image's structure.
    ImageFormat = "image-format",
    /// The SE header version against the ultravisor.
    ImageVersion = "image-version",
    /// The plaintext control flags against the ultravisor.
    ImagePcf = "image-pcf",
    /// A key slot for this host's key.
    ImageHostKey = "image-host-key",
    /// The image's digests recomputed.
    ImageIntegrity = "image-integrity",
    /// A QEMU binary that answers the probe.
    QemuBinary = "qemu-binary",
    /// QEMU can start secure guests.
    QemuPv = "qemu-pv",
    /// QEMU has the vfio-ap device.
    QemuVfioAp = "qemu-vfio-ap",
    /// The host CPU model has `unpack`.
    CpuUnpack = "cpu-unpack",
    /// The host CPU model has the AP features.
    CpuAp = "cpu-ap",
    /// The host CPU model has AP for secure guests.
    CpuAppv = "cpu-appv",
    /// The iommufd backend can be used.
    VfioIommufd = "vfio-iommufd",
    /// QEMU starts a secure guest with that many vCPUs.
    QemuPvCpus = "qemu-pv-cpus",
    /// Huge-page backing for the guest's memory.
    Hugepages = "hugepages",
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The host has what is needed.
    Pass,
    /// It works, but something is missing or risky.
    Warn,
    /// It will not work until fixed.
    Fail,
    /// Could not be decided here; the message says why.
    Skip,
}

impl Status {
    /// The lower-case word used in output (`pass`, `warn`, `fail`, `skip`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Status::Pass => "\x1b[32m",
            Status::Warn => "\x1b[33m",
            Status::Fail => "\x1b[1;31m",
            Status::Skip => "\x1b[2m",
        }
    }
}

/// One check: a stable id, a verdict, what was found, and for warn/fail how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier (`facility-158`, `prot-virt`, ...); scripts match on it.
    pub id: CheckId,
    /// The verdict.
    pub status: Status,
    /// What was read and concluded, naming the file and the value.
    pub message: String,
    /// How to fix it; present for every warn and fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn pass(id: CheckId, message: impl Into<String>) -> Self {
        Check {
            id,
            status: Status::Pass,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning, with the hint that says how to fix it.
    pub fn warn(id: CheckId, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Check {
            id,
            status: Status::Warn,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A failure, with the hint that says how to fix it.
    pub fn fail(id: CheckId, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Check {
            id,
            status: Status::Fail,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A check that could not be decided; the message says why.
    pub fn skip(id: CheckId, message: impl Into<String>) -> Self {
        Check {
            id,
            status: Status::Skip,
            message: message.into(),
            hint: None,
        }
    }

    /// The same check with a failure demoted to a warning (`--force`), saying so.
    pub fn forced(mut self) -> Self {
        if self.status == Status::Fail {
            self.status = Status::Warn;
            self.message.push_str(" (ignored: --force)");
        }
        self
    }
}

/// An ordered list of checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// True when no check failed.
    pub ok: bool,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// An empty (passing) report.
    pub fn new() -> Self {
        Report {
            ok: true,
            checks: Vec::new(),
        }
    }

    /// Adds one check.
    pub fn push(&mut self, check: Check) {
        self.ok &= check.status != Status::Fail;
        self.checks.push(check);
    }

    /// Adds several checks.
    pub fn extend(&mut self, checks: impl IntoIterator<Item = Check>) {
        for check in checks {
            self.push(check);
        }
    }

    /// The check with this id, if it ran.
    pub fn get(&self, id: CheckId) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    /// Demotes every failure to a warning (`--force`).
    pub fn forced(self) -> Self {
        let mut report = Report::new();
        report.extend(self.checks.into_iter().map(Check::forced));
        report
    }

    /// The aligned human table; `colour` adds ANSI colours to the status column.
    pub fn render(&self, colour: bool) -> String {
        let id_width = self
            .checks
            .iter()
            .map(|c| c.id.as_str().len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for check in &self.checks {
            let status = check.status.as_str();
            if colour {
                let _ = write!(out, "{}{:<4}\x1b[0m", check.status.colour(), status);
            } else {
                let _ = write!(out, "{status:<4}");
            }
            let _ = writeln!(out, "  {:<id_width$}  {}", check.id, check.message);
            if let Some(hint) = &check.hint {
                let indent = 4 + 2 + id_width + 2;
                let _ = writeln!(out, "{:indent$}hint: {hint}", "");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_makes_the_report_not_ok_and_force_demotes_it() {
        let mut r = Report::new();
        r.push(Check::pass(CheckId::Kvm, "fine"));
        assert!(r.ok);
        r.push(Check::fail(CheckId::UvAp, "broken", "fix it"));
        assert!(!r.ok);
        let forced = r.clone().forced();
        assert!(forced.ok);
        assert_eq!(forced.get(CheckId::UvAp).unwrap().status, Status::Warn);
        assert!(forced
            .get(CheckId::UvAp)
            .unwrap()
            .message
            .ends_with("(ignored: --force)"));
    }

    #[test]
    fn render_aligns_ids_and_indents_hints() {
        let mut r = Report::new();
        r.push(Check::pass(CheckId::Kvm, "fine"));
        r.push(Check::warn(CheckId::MdevPersistent, "meh", "do x"));
        let text = r.render(false);
        assert_eq!(
            text,
            "pass  kvm              fine\nwarn  mdev-persistent  meh\n                       hint: do x\n"
        );
        assert!(r.render(true).contains("\x1b[33mwarn\x1b[0m"));
    }

    #[test]
    fn json_shape_matches_the_contract() {
        let mut r = Report::new();
        r.push(Check::fail(CheckId::Facility158, "m", "h"));
        r.push(Check::skip(CheckId::QemuPvCpus, "s"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ok":false,"checks":[
                {"id":"facility-158","status":"fail","message":"m","hint":"h"},
                {"id":"qemu-pv-cpus","status":"skip","message":"s"}]})
        );
    }

    #[test]
    fn every_id_reads_back_from_its_string_and_the_strings_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for id in CheckId::ALL {
            assert_eq!(id.as_str().parse::<CheckId>(), Ok(*id));
            assert_eq!(id.to_string(), id.as_str());
            assert_eq!(serde_json::to_value(id).unwrap(), id.as_str());
            assert!(seen.insert(id.as_str()), "{id} twice");
        }
        assert!("mdev-exsts".parse::<CheckId>().is_err());
    }
}
