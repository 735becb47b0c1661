//! Host readiness checks for Secure Execution (`aplaunch check`).

use crate::cmdline::{self, ProtVirtParam};
use crate::cpuinfo::{Facilities, FACILITY_UV_CALL};
use crate::kvm::{self, Capability};
use crate::uv::{Field, UvInfo, FEATURE_AP, FEATURE_AP_INTR};
use host::{Check, CheckId, HostRoot};

/// Hint for a host file that is not in the kernel's format.
pub const MALFORMED_HINT: &str =
    "the file is not in the format the kernel writes; if this is a captured host tree, capture it again with `aplaunch host snapshot`";

/// What the caller plans, which decides some verdicts.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Planned vCPUs (`--smp`), compared with the ultravisor's max_cpus.
    pub smp: Option<u64>,
    /// Whether a crypto mdev will be passed to the secure guest (adds `uv-ap`).
    pub crypto: bool,
}

/// Runs the PV host checks in their fixed order:
/// facility-158, uv-sysfs, prot-virt, kvm, uv-limits, uv-se-hdr, uv-host-keys, [uv-ap].
pub fn checks(root: &HostRoot, uv: &UvInfo, options: &Options) -> Vec<Check> {
    let mut out = vec![
        facility_158(root),
        uv_sysfs(uv, root),
        prot_virt(root, uv),
        kvm(root),
    ];
    out.push(uv_limits(uv, options.smp));
    out.push(uv_se_hdr(uv));
    out.push(uv_host_keys(uv));
    if options.crypto {
        out.push(uv_ap(uv));
    }
    out
}

fn facility_158(root: &HostRoot) -> Check {
    const ID: CheckId = CheckId::Facility158;
    let text = match root.read_string("proc/cpuinfo") {
        Ok(t) => t,
        Err(e) => return Check::skip(ID, format!("{e}")),
    };
    let facilities = Facilities::parse(&text);
    match facilities {
        Facilities::Listed(_) if facilities.has(FACILITY_UV_CALL) => {
            Check::pass(ID, "/proc/cpuinfo lists facility 158 (ultravisor call)")
        }
        Facilities::Listed(_) => Check::fail(
            ID,
            "/proc/cpuinfo: facility 158 (ultravisor call) is not in the facilities line",
            "Secure Execution needs IBM z15 / LinuxONE III or newer with the feature enabled for this LPAR; \
             a KVM guest cannot host secure guests (no nesting)",
        ),
        Facilities::NoLine => Check::fail(
            ID,
            "/proc/cpuinfo has no 'facilities' line: this is not an s390x host",
            "run aplaunch on an IBM Z / LinuxONE KVM host, or pass --host-root with a host tree captured there",
        ),
        Facilities::Malformed(token) => Check::fail(
            ID,
            format!("/proc/cpuinfo: the facilities line holds {token:?}, not a facility number"),
            MALFORMED_HINT,
        ),
    }
}

fn uv_sysfs(uv: &UvInfo, root: &HostRoot) -> Check {
    const ID: CheckId = CheckId::UvSysfs;
    if uv.present {
        return Check::pass(ID, "/sys/firmware/uv exists");
    }
    let what = if root.exists(crate::uv::UV_DIR) {
        "is not a directory"
    } else {
        "does not exist"
    };
    Check::fail(
        ID,
        format!("/sys/firmware/uv {what}"),
        "the kernel shows the ultravisor only on machines with facility 158, from kernel 5.7 on when built with KVM; \
         check facility-158 first, then use a distribution kernel for IBM Z",
    )
}

fn prot_virt(root: &HostRoot, uv: &UvInfo) -> Check {
    const ID: CheckId = CheckId::ProtVirt;
    let found = match &uv.prot_virt_host {
        Ok(Some(1)) => return Check::pass(ID, "/sys/firmware/uv/prot_virt_host is 1"),
        Ok(Some(v)) => format!("/sys/firmware/uv/prot_virt_host is {v}"),
        Ok(None) if uv.present => "/sys/firmware/uv/prot_virt_host does not exist".to_string(),
        Ok(None) => "no /sys/firmware/uv, so the kernel is not a PV host".to_string(),
        Err(e @ host::Error::Format { .. }) => {
            return Check::fail(ID, e.to_string(), MALFORMED_HINT)
        }
        Err(e) => return Check::skip(ID, e.to_string()),
    };
    let (cmdline, ignored) = match root.read_string("proc/cmdline") {
        Ok(text) => (cmdline::prot_virt(&text), cmdline::ignored_disables(&text)),
        Err(e) => return Check::fail(
            ID,
            format!("{found}; {e}"),
            "add prot_virt=1 to the kernel command line (zipl.conf parameters or grub) and reboot",
        ),
    };
    let add = "add prot_virt=1 to the kernel command line (zipl.conf parameters or grub), run zipl, and reboot";
    match cmdline {
        ProtVirtParam::Absent => {
            Check::fail(ID, format!("{found}; /proc/cmdline has no prot_virt= parameter"), add)
        }
        ProtVirtParam::Disabled(v) => {
            Check::fail(ID, format!("{found}; /proc/cmdline sets prot_virt={v} and no true value, so it stays off (the boot parser only ever sets the flag)"), add)
        }
        ProtVirtParam::Invalid(v) => Check::fail(
            ID,
            format!("{found}; /proc/cmdline has prot_virt={v}, a value the kernel ignores"),
            add,
        ),
        ProtVirtParam::Enabled(v) => Check::fail(
            ID,
            format!(
                "{found} although /proc/cmdline sets prot_virt={v}{}: the kernel turned PV host support off",
                if ignored.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (the later prot_virt={} does not clear it: the boot parser only sets the flag)",
                        ignored.join(", prot_virt=")
                    )
                }
            ),
            "the kernel refuses when it runs as a guest itself, is a kdump kernel, lacks facility 158, or could not \
             donate memory to the ultravisor; see `dmesg | grep -i prot_virt` and run on an LPAR with enough memory",
        ),
    }
}

fn kvm(root: &HostRoot) -> Check {
    const ID: CheckId = CheckId::Kvm;
    let cap = kvm::KVM_CAP_S390_PROTECTED;
    let from = |v: i32, how: &str| {
        if v > 0 {
            Check::pass(
                ID,
                format!("/dev/kvm: KVM_CAP_S390_PROTECTED ({cap}) = {v}{how}"),
            )
        } else {
            Check::fail(
                ID,
                format!("/dev/kvm: KVM_CAP_S390_PROTECTED ({cap}) = {v}{how}: KVM cannot run protected guests"),
                "boot the host with prot_virt=1 and make sure the ultravisor is active (see prot-virt); \
                 KVM support for PV needs kernel 5.7+",
            )
        }
    };
    match kvm::check_extension(root, cap) {
        Capability::Answer(v) => from(v, ""),
        Capability::Recorded(v) => from(v, " (recorded by aplaunch host snapshot)"),
        Capability::NoNode => Check::fail(
            ID,
            "/dev/kvm does not exist",
            "load KVM with `modprobe kvm` (and check that the LPAR allows SIE)",
        ),
        Capability::NotKvm => Check::skip(
            ID,
            "/dev/kvm is not a KVM device node (ENOTTY), so KVM cannot be asked here",
        ),
        Capability::Failed(e) => Check::skip(ID, format!("/dev/kvm: cannot ask KVM: {}", e.desc())),
    }
}

/// A field as a verdict-ready value or the check to report instead.
fn field<T: Copy>(id: CheckId, f: &Field<T>, missing: &str) -> Result<T, Check> {
    match f {
        Ok(Some(v)) => Ok(*v),
        Ok(None) => Err(Check::skip(id, missing.to_string())),
        Err(e @ host::Error::Format { .. }) => Err(Check::fail(id, e.to_string(), MALFORMED_HINT)),
        Err(e) => Err(Check::skip(id, e.to_string())),
    }
}

fn no_uv(id: CheckId) -> Check {
    Check::skip(id, "no /sys/firmware/uv to read")
}

fn uv_limits(uv: &UvInfo, smp: Option<u64>) -> Check {
    const ID: CheckId = CheckId::UvLimits;
    if !uv.present {
        return no_uv(ID);
    }
    let max_cpus = match field(
        ID,
        &uv.max_cpus,
        "/sys/firmware/uv/query/max_cpus does not exist",
    ) {
        Ok(v) => v,
        Err(c) => return c,
    };
    let guests = match field(ID, &uv.max_guests, "") {
        Ok(v) => format!(", max_guests {v}"),
        Err(c) if c.status == host::Status::Fail => return c,
        Err(_) => String::new(),
    };
    match smp {
        Some(n) if n > max_cpus => Check::fail(
            ID,
            format!("--smp {n} exceeds the ultravisor's max_cpus {max_cpus} for a secure guest"),
            format!("use --smp {max_cpus} or fewer"),
        ),
        Some(n) => Check::pass(ID, format!("max_cpus {max_cpus}{guests}; --smp {n} fits")),
        None => Check::pass(ID, format!("max_cpus {max_cpus}{guests}")),
    }
}

fn uv_se_hdr(uv: &UvInfo) -> Check {
    const ID: CheckId = CheckId::UvSeHdr;
    if !uv.present {
        return no_uv(ID);
    }
    let mask = match field(
        ID,
        &uv.supp_se_hdr_ver,
        "/sys/firmware/uv/query/supp_se_hdr_ver does not exist",
    ) {
        Ok(v) => v,
        Err(c) => return c,
    };
    if uv.supports_header_version(0x100) == Some(true) {
        Check::pass(
            ID,
            format!("SE header version 0x100 supported (supp_se_hdr_ver {mask:x})"),
        )
    } else {
        Check::fail(
            ID,
            format!("supp_se_hdr_ver {mask:x} does not include SE header version 0x100"),
            "this ultravisor cannot boot images from genprotimg/pvimg; update the machine's firmware",
        )
    }
}

fn uv_host_keys(uv: &UvInfo) -> Check {
    const ID: CheckId = CheckId::UvHostKeys;
    if !uv.present {
        return no_uv(ID);
    }
    match &uv.keys {
        Ok(Some(keys)) => {
            let show = |k: &Option<crate::HostKeyHash>| k.map_or_else(|| "none".to_string(), |h| h.to_string());
            Check::pass(
                ID,
                format!(
                    "host key {}, backup host key {}",
                    show(&keys.host_key),
                    show(&keys.backup_host_key)
                ),
            )
        }
        Ok(None) => Check::warn(
            ID,
            "/sys/firmware/uv/keys does not exist: images cannot be matched to this host's keys here",
            "kernel 6.13+ shows the host key hashes (the ultravisor must offer the query-keys call); until then \
             make sure the image was built with this machine's host-key document",
        ),
        Err(e @ host::Error::Format { .. }) => Check::fail(ID, e.to_string(), MALFORMED_HINT),
        Err(e) => Check::skip(ID, e.to_string()),
    }
}

fn uv_ap(uv: &UvInfo) -> Check {
    const ID: CheckId = CheckId::UvAp;
    if !uv.present {
        return no_uv(ID);
    }
    let word = match field(
        ID,
        &uv.feature_indications,
        "/sys/firmware/uv/query/feature_indications does not exist",
    ) {
        Ok(v) => v,
        Err(c) => return c,
    };
    let ap = host::sysfs::msb0_bit(word, FEATURE_AP);
    let intr = host::sysfs::msb0_bit(word, FEATURE_AP_INTR);
    match (ap, intr) {
        (true, true) => Check::pass(
            ID,
            format!("feature_indications {word:x}: AP for secure guests (bit 4) and AP interrupts (bit 5)"),
        ),
        (true, false) => Check::warn(
            ID,
            format!("feature_indications {word:x}: AP for secure guests (bit 4) but no AP interrupts (bit 5)"),
            "crypto works in the secure guest, but polled: expect higher latency; newer firmware adds AP interrupts",
        ),
        (false, _) => Check::fail(
            ID,
            format!("feature_indications {word:x}: bit 4 (AP for secure guests) is not set"),
            "this host cannot pass crypto adapters to secure guests: needs z16 or newer firmware and kernel 6.6+; \
             run the guest without --mdev, or without Secure Execution",
        ),
    }
}
