//! `aplaunch explain`: what an error line from QEMU, the kernel log or the ultravisor means
//! and what to do about it.

use serde::Serialize;

/// One explanation of something found in the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Stable id of the entry (`uv-rc`, `qemu-no-ap-bus`, ...).
    pub id: &'static str,
    /// What was recognised, with the values found in the text.
    pub title: String,
    /// What it means.
    pub meaning: String,
    /// What to do.
    pub fix: String,
}

fn entry(
    id: &'static str,
    title: impl Into<String>,
    meaning: impl Into<String>,
    fix: impl Into<String>,
) -> Explanation {
    Explanation {
        id,
        title: title.into(),
        meaning: meaning.into(),
        fix: fix.into(),
    }
}

/// Explains everything recognised in `text` (several lines may be pasted at once), in the
/// order of the rules; empty when nothing is known.
pub fn explain(text: &str) -> Vec<Explanation> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    out.extend(ultravisor_codes(&lower));
    for rule in RULES {
        if let Some(e) = rule(text, &lower) {
            out.push(e);
        }
    }
    if out.is_empty() {
        out.extend(errnos(&lower));
    }
    out
}

type Rule = fn(&str, &str) -> Option<Explanation>;

const RULES: &[Rule] = &[
    kvm_pv_command_without_rc,
    protected_boot_failed,
    protected_boot_setup_failed,
    unpack_facility_missing,
    no_ap_bus,
    ap_bus_full,
    pv_requires_kvm,
    cpu_model_no_pv,
    pv_max_cpus,
    pv_huge_pages,
    cpu_features_missing,
    vfio_ap_no_iommu_group,
    vfio_no_such_host_device,
    fd_passing_needs_iommufd,
    kernel_queue_already_assigned,
    kernel_queue_in_use_by_mdev,
    libvirt_one_vfio_ap,
    libvirt_no_pv,
];

/// Splits into tokens on white space and punctuation that separates values, keeping `0x` prefixes.
fn tokens(lower: &str) -> Vec<&str> {
    lower
        .split(|c: char| c.is_whitespace() || matches!(c, '=' | ':' | ',' | '(' | ')' | ';'))
        .filter(|t| !t.is_empty())
        .collect()
}

/// Ultravisor codes are printed in hex, with or without `0x`.
fn hex(token: &str) -> Option<u16> {
    let digits = token.strip_prefix("0x").unwrap_or(token);
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

fn ultravisor_codes(lower: &str) -> Vec<Explanation> {
    let toks = tokens(lower);
    let command = toks
        .windows(3)
        .find(|w| w[0] == "pv" && w[1] == "command")
        .and_then(|w| w[2].parse::<u32>().ok())
        .and_then(pv::uvrc::kvm_pv_command);
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < toks.len() {
        if toks[i] != "rc" || (i > 0 && toks[i - 1] == "ioctl") {
            i += 1;
            continue;
        }
        let Some(rc) = hex(toks[i + 1]) else {
            i += 1;
            continue;
        };
        let rrc = (i + 3 < toks.len() && toks[i + 2] == "rrc")
            .then(|| hex(toks[i + 3]))
            .flatten();
        if let Some(code) = pv::uvrc::describe(rc, rrc) {
            let at = command.map(|c| format!(" during {c}")).unwrap_or_default();
            let pair = match rrc {
                Some(r) => format!("ultravisor rc 0x{rc:x} rrc 0x{r:x}{at}"),
                None => format!("ultravisor rc 0x{rc:x}{at}"),
            };
            out.push(entry(
                "uv-rc",
                format!("{pair}: {}", code.title),
                code.meaning,
                code.fix,
            ));
        }
        i += 2;
    }
    out
}

fn kvm_pv_command_without_rc(_: &str, lower: &str) -> Option<Explanation> {
    if !lower.contains("kvm pv command")
        || tokens(lower)
            .windows(2)
            .any(|w| w[0] == "rc" && hex(w[1]).is_some())
    {
        return None;
    }
    let cmd = tokens(lower)
        .windows(3)
        .find(|w| w[0] == "pv" && w[1] == "command")
        .and_then(|w| w[2].parse::<u32>().ok());
    match cmd {
        Some(0) => Some(entry(
            "kvm-pv-enable",
            "KVM could not turn the guest into a protected guest (KVM_PV_ENABLE failed)",
            "the host is not running as a PV host, or the ultravisor has no room for another secure guest",
            "run `aplaunch check`: prot-virt must pass (boot with prot_virt=1) and uv-limits shows max_guests",
        )),
        _ => Some(entry(
            "kvm-pv-command",
            format!("a KVM PV command failed{}", cmd.and_then(pv::uvrc::kvm_pv_command).map(|c| format!(": {c}")).unwrap_or_default()),
            "QEMU asked KVM to drive the ultravisor and it refused; the ultravisor's rc/rrc pair says why",
            "paste the whole line including `header rc ... rrc ...` into `aplaunch explain`",
        )),
    }
}

fn protected_boot_failed(_: &str, lower: &str) -> Option<Explanation> {
    let at = lower.find("protected boot has failed")?;
    let code = lower[at..]
        .split(':')
        .nth(1)
        .map(|c| c.split_whitespace().next().unwrap_or("").to_string())
        .unwrap_or_default();
    Some(entry(
        "protected-boot-failed",
        format!("the secure guest's loader could not unpack the image (diag 308 rc {code})"),
        "the image's first stage asked the ultravisor to unpack and verify the encrypted image and was refused; \
         the guest stops in a disabled wait",
        "the reason is in the line QEMU printed just before: `KVM PV command N (...) failed: header rc X rrc Y`; \
         explain that line with `aplaunch explain`, and run `aplaunch image verify IMG` on this host",
    ))
}

fn protected_boot_setup_failed(_: &str, lower: &str) -> Option<Explanation> {
    lower.contains("protected boot setup has failed").then(|| {
        entry(
            "protected-boot-setup-failed",
            "QEMU could not set the guest up for a protected boot",
            "the guest's loader asked to switch to Secure Execution (diag 308 subcode 8/10) and QEMU refused: \
             usually the guest was started without `-object s390-pv-guest` / confidential-guest-support, \
             or the SE header was rejected",
            "start the guest with aplaunch (it adds the PV object), and explain QEMU's `KVM PV command` line if there is one",
        )
    })
}

fn unpack_facility_missing(_: &str, lower: &str) -> Option<Explanation> {
    lower.contains("secure unpack facility is not available").then(|| {
        entry(
            "no-unpack-facility",
            "the guest CPU has no unpack facility (161)",
            "the CPU model QEMU gave the guest lacks `unpack`, so a Secure Execution image cannot boot",
            "use `-cpu host` on a KVM host whose KVM reports KVM_CAP_S390_PROTECTED (aplaunch does); \
             `aplaunch check --qemu PATH` shows cpu-unpack",
        )
    })
}

fn no_ap_bus(_: &str, lower: &str) -> Option<Explanation> {
    (lower.contains("no 'ap-bus' bus found") || lower.contains("no \"ap-bus\" bus found")).then(|| {
        entry(
            "qemu-no-ap-bus",
            "QEMU has no free AP bus for the vfio-ap device",
            "QEMU 6.0 to 10.1 give this same message for two causes: the guest's CPU model has no `ap` feature (then \
             QEMU creates no AP bus at all; a guest under TCG never has one), or the guest already has a vfio-ap \
             device (the AP bus takes exactly one). From QEMU 10.2 a full bus says `A 'ap-bus' bus was found but is \
             full` instead, so there this message means the missing `ap` feature",
            "list the guest's crypto devices with `aplaunch qmp list --qmp SOCK`: if one exists, unplug it or change \
             that mdev's matrix live (`aplaunch ap mdev assign ...`); if none exists, restart the guest under KVM \
             with the AP CPU features (`aplaunch launch --mdev UUID ...` adds `ap=on,apqci=on,apft=on,apqi=on`)",
        )
    })
}

fn ap_bus_full(_: &str, lower: &str) -> Option<Explanation> {
    lower.contains("'ap-bus' bus was found but is full").then(|| {
        entry(
            "qemu-ap-bus-full",
            "the guest already has a vfio-ap device",
            "QEMU 10.2+ says so when the AP bus, which takes exactly one vfio-ap device, already holds one \
             (system/qdev-monitor.c, qdev_find_default_bus)",
            "list it with `aplaunch qmp list --qmp SOCK`, then unplug it (`aplaunch qmp unplug --id ID --qmp SOCK`) or \
             change that mdev's matrix live (`aplaunch ap mdev assign ...`)",
        )
    })
}

fn pv_requires_kvm(_: &str, lower: &str) -> Option<Explanation> {
    lower.contains("protected virtualization requires kvm").then(|| {
        entry(
            "qemu-pv-needs-kvm",
            "Secure Execution needs KVM",
            "QEMU was started with TCG (or KVM was not usable), and the ultravisor is only reachable through KVM",
            "use --accel kvm on an IBM Z host where `aplaunch check` passes the kvm check",
        )
    })
}

fn cpu_model_no_pv(_: &str, lower: &str) -> Option<Explanation> {
    lower.contains("cpu model does not support protected virtualization").then(|| {
        entry(
            "qemu-cpu-no-unpack",
            "the CPU model lacks the unpack feature",
            "a secure guest needs the `unpack` CPU feature (facility 161), which KVM offers only on a PV host",
            "use `-cpu host` and boot the host with prot_virt=1; `aplaunch check --qemu PATH` shows cpu-unpack",
        )
    })
}

fn pv_max_cpus(_: &str, lower: &str) -> Option<Explanation> {
    let at = lower.find("protected vms support a maximum of")?;
    let n: String = lower[at + "protected vms support a maximum of".len()..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Some(entry(
        "qemu-pv-max-cpus",
        format!("too many vCPUs for a secure guest (QEMU allows {n})"),
        "QEMU 8.0+ limits a secure guest's vCPUs itself: their list must fit in the one 4 KiB page of the SCLP \
         read-info response, which leaves room for 247 with the extended-length SCCB feature every Secure Execution \
         machine has (hw/s390x/pv.c). This is QEMU's limit, not the ultravisor's, which is separate \
         (/sys/firmware/uv/query/max_cpus, the uv-limits check)",
        format!("start the guest with --smp {n} or fewer; aplaunch checks both limits before it starts QEMU (qemu-pv-cpus, uv-limits)"),
    ))
}

fn pv_huge_pages(_: &str, lower: &str) -> Option<Explanation> {
    lower.contains("protected vms can currently not be backed with huge pages").then(|| {
        entry(
            "qemu-pv-huge-pages",
            "a secure guest cannot use huge-page memory",
            "the guest's memory is backed by huge pages, which protected guests do not support; QEMU notices only when \
             the guest switches to secure mode",
            "remove hugetlbfs / -mem-path / memory-backend hugepages options; aplaunch refuses them for PV guests",
        )
    })
}

fn cpu_features_missing(text: &str, lower: &str) -> Option<Explanation> {
    // QEMU before 9.0 says "in the configuration", 9.0+ "in the current configuration"
    // (target/s390x/cpu_models.c, check_compatibility; Debian's 7.2 and 10.0 binaries)
    const NEEDLES: [&str; 2] = [
        "some features requested in the cpu model are not available in the current configuration",
        "some features requested in the cpu model are not available in the configuration",
    ];
    let (at, needle) = NEEDLES
        .iter()
        .find_map(|n| lower.find(n).map(|at| (at, *n)))?;
    let list = text[at + needle.len()..]
        .trim_start_matches([':', ' '])
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let features: Vec<&str> = list.split([' ', ',']).filter(|f| !f.is_empty()).collect();
    let mut why = Vec::new();
    for f in &features {
        let reason = match *f {
            "ap" | "apqci" | "apft" | "apqi" => "KVM on this host offers no AP instructions to guests (no crypto adapters in the LPAR, or an old kernel)",
            "appv" | "appvi" => "AP for secure guests needs z16+ firmware (ultravisor feature bits 4/5), kernel 6.6+ and QEMU 8.2+",
            "unpack" => "KVM is not a PV host: boot it with prot_virt=1",
            _ => "the host CPU or KVM does not offer it",
        };
        why.push(format!("{f}: {reason}"));
    }
    Some(entry(
        "qemu-cpu-features",
        format!("the host cannot offer the CPU features {list}"),
        why.join("; "),
        "run `aplaunch check --mdev UUID --qemu PATH` to see which of cpu-ap, cpu-appv, cpu-unpack fail, and start \
         without the features the host lacks",
    ))
}

/// The first UUID in a message (QEMU names the vfio device by the mdev's UUID), lower case.
fn uuid_in(text: &str) -> Option<String> {
    (0..text.len().saturating_sub(35)).find_map(|start| {
        let window = text.get(start..start + 36)?;
        vfio::mdev_uuid::is_sysfs_name(window).then(|| window.to_ascii_lowercase())
    })
}

fn vfio_ap_no_iommu_group(text: &str, lower: &str) -> Option<Explanation> {
    lower.contains("no iommu_group found").then(|| {
        let check = match uuid_in(text) {
            Some(u) => format!("`aplaunch ap mdev show {u}` shows whether mdev {u} exists"),
            None => "`aplaunch ap list` shows the mdevs that exist".to_string(),
        };
        entry(
            "qemu-vfio-ap-no-group",
            "QEMU found no IOMMU group for the crypto mdev",
            "the sysfsdev path does not name an active vfio_ap mdev (it was never started, was removed, or the UUID is wrong)",
            format!("{check}; start it (or create it) and retry"),
        )
    })
}

fn vfio_no_such_host_device(_: &str, lower: &str) -> Option<Explanation> {
    (lower.contains("no such host device") && lower.contains("vfio")).then(|| {
        entry(
            "qemu-vfio-no-device",
            "QEMU cannot find the host device of the vfio-ap device",
            "the sysfsdev path does not exist on this host",
            "check the UUID with `aplaunch ap list`; the path must be /sys/bus/mdev/devices/<uuid>",
        )
    })
}

fn fd_passing_needs_iommufd(_: &str, lower: &str) -> Option<Explanation> {
    lower.contains("use fd passing only with iommufd backend").then(|| {
        entry(
            "qemu-fd-needs-iommufd",
            "a vfio device fd was passed without an iommufd object",
            "QEMU accepts `fd=` on vfio devices only together with `iommufd=`",
            "use `--vfio-backend iommufd` (aplaunch then passes both), or `--vfio-backend group` for sysfsdev=",
        )
    })
}

/// `05.00ab` -> (5, 171).
fn apqn(token: &str) -> Option<(u8, u16)> {
    let (a, d) = token
        .trim_matches(|c: char| !c.is_ascii_hexdigit() && c != '.')
        .split_once('.')?;
    Some((
        u8::from_str_radix(a, 16).ok()?,
        u16::from_str_radix(d, 16).ok()?,
    ))
}

fn word_after<'a>(text: &'a str, needle: &str) -> Option<&'a str> {
    let at = text.to_ascii_lowercase().find(needle)?;
    text[at + needle.len()..].split_whitespace().next()
}

fn kernel_queue_already_assigned(text: &str, lower: &str) -> Option<Explanation> {
    let needle = if lower.contains("userspace may not assign queue") {
        "userspace may not assign queue"
    } else if lower.contains("userspace may not re-assign queue") {
        "userspace may not re-assign queue"
    } else {
        return None;
    };
    let queue = word_after(text, needle).and_then(apqn);
    let owner = word_after(text, "already assigned to ")
        .map(|u| u.trim_end_matches(['.', ',']).to_string());
    let (what, fix) = match (queue, &owner) {
        (Some((a, d)), Some(uuid)) => (
            format!("APQN {a:02x}.{d:04x} ({a}.{d}) already belongs to mdev {uuid}"),
            format!(
                "an APQN can belong to one mdev only: take it from {uuid} first (`aplaunch ap mdev unassign {uuid} \
                 --adapter {a}` or `--domain {d}`), or pick another APQN; `aplaunch ap matrix` shows who owns what"
            ),
        ),
        _ => (
            "the APQN already belongs to another mdev".to_string(),
            "`aplaunch ap matrix` shows which mdev owns it; unassign it there first".to_string(),
        ),
    };
    Some(entry(
        "kernel-queue-assigned",
        what,
        "the kernel refused the assignment (EADDRINUSE): an adapter x domain combination of the new matrix is already \
         in another mediated device",
        fix,
    ))
}

fn kernel_queue_in_use_by_mdev(text: &str, lower: &str) -> Option<Explanation> {
    const NEEDLE: &str = "can not reserve queue";
    if !lower.contains(NEEDLE) {
        return None;
    }
    let queue = word_after(text, NEEDLE).and_then(apqn);
    let what = match queue {
        Some((a, d)) => format!(
            "APQN {a:02x}.{d:04x} ({a}.{d}) cannot go back to the host drivers: an mdev uses it"
        ),
        None => "an APQN cannot go back to the host drivers: an mdev uses it".to_string(),
    };
    Some(entry(
        "kernel-queue-in-use",
        what,
        "a change of /sys/bus/ap/apmask or aqmask would hand a queue that a mediated device holds back to the host \
         crypto drivers; the kernel refused it (EBUSY)",
        "unassign the APQN from its mdev first (`aplaunch ap matrix` shows which), then change the masks; \
         `aplaunch ap masks --apmask ... --aqmask ...` previews the change and names such APQNs",
    ))
}

fn libvirt_one_vfio_ap(_: &str, lower: &str) -> Option<Explanation> {
    lower.contains("only one hostdev of model vfio-ap is supported").then(|| {
        entry(
            "libvirt-one-vfio-ap",
            "a guest can have only one vfio-ap device",
            "the AP bus of a guest takes exactly one vfio-ap device; all crypto queues of a guest go into one mdev",
            "put every adapter and domain the guest needs into one mdev (`aplaunch ap mdev assign UUID ...`)",
        )
    })
}

fn libvirt_no_pv(_: &str, lower: &str) -> Option<Explanation> {
    lower.contains("s390 pv launch security is not supported").then(|| {
        entry(
            "libvirt-no-pv",
            "this host cannot run Secure Execution guests",
            "libvirt found no PV support in the host kernel or firmware",
            "run `aplaunch check`: it names which of facility-158, prot-virt, kvm fails and how to fix it",
        )
    })
}

/// Errnos the vfio_ap and AP bus attributes return, by name or by their C library text.
fn errnos(lower: &str) -> Vec<Explanation> {
    const TABLE: &[(&str, &str, &str, &str)] = &[
        ("eaddrinuse", "address already in use",
         "an APQN of the new matrix already belongs to another mdev",
         "`aplaunch ap matrix` shows the owner; unassign it there, or choose other adapters/domains"),
        ("eaddrnotavail", "cannot assign requested address",
         "the host's AP masks (apmask/aqmask) reserve an APQN of the new matrix for the host crypto drivers \
          (on kernels before 6.0 also: an APQN of the new matrix is not a queue bound to vfio_ap)",
         "`aplaunch ap matrix` marks the reserved queues `h`; free one for vfio_ap with `aplaunch ap masks --apmask=-` \
          and its adapter number (or `--aqmask=-` and its domain; previewed with --dry-run), or choose another APQN"),
        ("ebusy", "device or resource busy",
         "the object is in use: before Linux 6.0 (no `guest_matrix` in the mdev's directory) the mdev's guest is \
          running and vfio_ap refuses assign/unassign; before 5.15 it also refuses `remove` of an mdev a guest holds; \
          or a mask change would take a queue from an mdev, or another process holds the VFIO group",
         "on those kernels stop the guest (or unplug the device through QMP) first; for a mask change, unassign \
          the queue from its mdev; `aplaunch ap check` and `aplaunch ap list` show who holds what"),
        ("enodev", "no such device",
         "an adapter or domain number is above the host's limit (/sys/bus/ap/ap_max_adapter_id / ap_max_domain_id), \
          or the device is gone",
         "use ids within the limits `aplaunch ap masks` shows"),
        ("eexist", "file exists",
         "an mdev with this UUID already exists",
         "choose another UUID; `aplaunch ap list` shows the mdevs that exist"),
        ("eusers", "too many users",
         "vfio_ap has no more mdev instances available",
         "remove unused mdevs (`aplaunch ap list` shows them)"),
        ("einval", "invalid argument",
         "the kernel did not accept the value written (not a number in its syntax, or a malformed UUID/mask)",
         "numbers are decimal, 0x-hex, or octal with a leading 0; `aplaunch ap masks` accepts and shows every syntax"),
    ];
    TABLE
        .iter()
        .filter(|(name, text, _, _)| {
            tokens(lower)
                .iter()
                .any(|t| t.trim_matches(|c: char| !c.is_ascii_alphanumeric()) == *name)
                || lower.contains(text)
        })
        .map(|(name, _, meaning, fix)| {
            entry(
                "errno",
                format!(
                    "{} from a vfio_ap or AP bus attribute",
                    name.to_ascii_uppercase()
                ),
                *meaning,
                *fix,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<&'static str> {
        explain(text).into_iter().map(|e| e.id).collect()
    }

    #[test]
    fn ultravisor_pairs_as_qemu_prints_them() {
        let e = explain("qemu-system-s390x: KVM PV command 2 (KVM_PV_SET_SEC_PARMS) failed: header rc 108 rrc 5 IOCTL rc: -22");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].title
                .starts_with("ultravisor rc 0x108 rrc 0x5 during KVM_PV_SET_SEC_PARMS"),
            "{}",
            e[0].title
        );
        assert!(e[0].title.contains("not built for this machine"));
        let e =
            explain("KVM PV command 4 (KVM_PV_VERIFY) failed: header rc 102 rrc 1a IOCTL rc: -22");
        assert!(e[0].title.contains("ALD"), "{e:?}");
        assert!(explain("RC 0x10A RRC 0x40")[0]
            .title
            .contains("no key slot"));
        assert!(explain("rc=0x106")[0]
            .title
            .contains("plaintext control flags"));
        assert!(explain("rc 0x109 rrc 0x1")[0]
            .title
            .contains("secret control flags"));
        assert!(explain("rc 104")[0].title.contains("header version"));
    }

    #[test]
    fn a_pasted_boot_failure_explains_both_lines() {
        let log = "qemu-kvm: KVM PV command 4 (KVM_PV_VERIFY) failed: header rc 102 rrc 1b \nIOCTL rc: -22\nProtected boot has failed: 0xa02\n";
        assert_eq!(ids(log), ["uv-rc", "protected-boot-failed"]);
        assert!(explain(log)[1].title.contains("0xa02"));
    }

    #[test]
    fn qemu_and_kernel_messages() {
        assert_eq!(ids("qemu-system-s390x: -device vfio-ap,sysfsdev=/sys/bus/mdev/devices/x: No 'ap-bus' bus found for device 'vfio-ap'"), ["qemu-no-ap-bus"]);
        assert_eq!(
            ids("Protected Virtualization requires KVM"),
            ["qemu-pv-needs-kvm"]
        );
        assert_eq!(
            ids("CPU model does not support Protected Virtualization"),
            ["qemu-cpu-no-unpack"]
        );
        let e = explain("Protected VMs support a maximum of 248 CPUs");
        assert!(e[0].fix.contains("--smp 248"));
        assert_eq!(
            ids("Protected VMs can currently not be backed with huge pages"),
            ["qemu-pv-huge-pages"]
        );
        // QEMU 9.0+ words it "in the current configuration"
        let e = explain("qemu-system-s390x: Some features requested in the CPU model are not available in the current configuration: ap apqi apft apqci");
        assert_eq!(ids("Some features requested in the CPU model are not available in the current configuration: ap apqi apft apqci"), ["qemu-cpu-features"]);
        assert!(e[0].title.ends_with("ap apqi apft apqci"), "{}", e[0].title);
        assert!(
            e[0].meaning
                .contains("apqci: KVM on this host offers no AP"),
            "{}",
            e[0].meaning
        );
        // QEMU 10.2 tells a full AP bus from a missing one
        assert_eq!(
            ids("qemu-system-s390x: -device vfio-ap,sysfsdev=/sys/bus/mdev/devices/x: A 'ap-bus' bus was found but is full"),
            ["qemu-ap-bus-full"]
        );
        let e = explain("Protected VMs support a maximum of 247 CPUs");
        assert!(e[0].title.contains("QEMU allows 247"), "{}", e[0].title);
        assert!(
            e[0].meaning.contains("not the ultravisor's"),
            "{}",
            e[0].meaning
        );
        let e = explain("Some features requested in the CPU model are not available in the configuration: ap appv");
        assert!(e[0].title.ends_with("ap appv"), "{}", e[0].title);
        assert!(e[0]
            .meaning
            .contains("appv: AP for secure guests needs z16+"));
        assert_eq!(
            ids("vfio-ap: no iommu_group found for /sys/bus/mdev/devices/x: No such file"),
            ["qemu-vfio-ap-no-group"]
        );
        // the hint names the mdev when the message does
        let e = explain(
            "vfio 62177883-F1BB-47f0-914d-32a22e3a8804: no iommu_group found: Invalid argument",
        );
        assert!(
            e[0].fix
                .contains("aplaunch ap mdev show 62177883-f1bb-47f0-914d-32a22e3a8804"),
            "{}",
            e[0].fix
        );
        let e = explain("vfio-ap: no iommu_group found for /sys/bus/mdev/devices/x");
        assert!(e[0].fix.contains("`aplaunch ap list`"), "{}", e[0].fix);
        assert_eq!(
            ids("Use FD passing only with iommufd backend"),
            ["qemu-fd-needs-iommufd"]
        );
        assert_eq!(
            ids("Secure unpack facility is not available"),
            ["no-unpack-facility"]
        );
        assert_eq!(
            ids("Protected boot setup has failed: 0x2"),
            ["protected-boot-setup-failed"]
        );
        assert_eq!(
            ids("KVM PV command 0 (KVM_PV_ENABLE) failed"),
            ["kvm-pv-enable"]
        );
        assert_eq!(
            ids("Only one hostdev of model vfio-ap is supported"),
            ["libvirt-one-vfio-ap"]
        );
        assert_eq!(
            ids("S390 PV launch security is not supported by this host or kernel"),
            ["libvirt-no-pv"]
        );
    }

    #[test]
    fn kernel_vfio_ap_messages_name_the_apqn_and_owner() {
        let e = explain("vfio_ap_mdev: Userspace may not assign queue 05.00ab to mdev: already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804");
        assert_eq!(
            e[0].title,
            "APQN 05.00ab (5.171) already belongs to mdev 62177883-f1bb-47f0-914d-32a22e3a8804"
        );
        assert!(e[0]
            .fix
            .contains("aplaunch ap mdev unassign 62177883-f1bb-47f0-914d-32a22e3a8804"));
        let old = explain("Userspace may not re-assign queue 03.0004 already assigned to abc");
        assert!(old[0].title.starts_with("APQN 03.0004 (3.4)"));
        let e = explain("Can not reserve queue 05.0004 for host driver: in use by mdev");
        assert!(e[0].title.starts_with("APQN 05.0004 (5.4) cannot go back"));
    }

    #[test]
    fn errnos_by_name_and_text() {
        assert_eq!(
            explain("echo 5 > assign_adapter: write error: Address already in use")[0].title,
            "EADDRINUSE from a vfio_ap or AP bus attribute"
        );
        assert!(explain("EADDRNOTAVAIL")[0]
            .fix
            .contains("aplaunch ap masks"));
        assert_eq!(ids("write error: Too many users"), ["errno"]);
        // ioctl rc -22 beside an ultravisor code does not add EINVAL noise
        assert_eq!(
            ids("header rc 108 rrc 5 IOCTL rc: -22 Invalid argument"),
            ["uv-rc"]
        );
    }

    #[test]
    fn unknown_text_and_hostile_input() {
        assert!(explain("the weather is fine").is_empty());
        assert!(explain("").is_empty());
        assert!(explain("rc").is_empty());
        assert!(explain("rc rrc rc zz rc 0xffffffffff").is_empty());
        let _ = explain(&"Userspace may not assign queue ".repeat(1000));
        let _ = explain("Protected VMs support a maximum of");
        let _ = explain("Can not reserve queue \u{1F600}.xx");
    }
}
