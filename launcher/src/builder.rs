//! The qemu-system-s390x command line, built from a [`VmSpec`] and the probe.
//!
//! The argv is a vector of `OsString`s handed to `execv`: no shell ever sees it. Every
//! user value that lands inside a QEMU option (`-drive file=...`) is escaped the QEMU way
//! (`,` becomes `,,`). Extra arguments after `--` are appended verbatim.
//!
//! The probe decides only what is optional: the vfio backend under `auto` and the appv /
//! appvi CPU features. Everything the user asked for is emitted even when the probed QEMU
//! lacks it (the checks say so; `--force` goes ahead anyway).

use crate::probe::QemuCaps;
use crate::spec::{Accel, Boot, ConsoleBackend, ConsoleKind, NetBackend, VfioBackend, VmSpec};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The descriptor number the iommufd is passed at.
pub const IOMMUFD_FD: i32 = 3;
/// The descriptor number the mdev's vfio cdev is passed at.
pub const VFIO_CDEV_FD: i32 = 4;
/// The id of the vfio-ap device (as libvirt names its first hostdev).
pub const VFIO_AP_ID: &str = "hostdev0";

/// Facts about the host the builder needs, read by the caller through the host root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The ultravisor offers AP to secure guests (UV feature bit 4); `None` when unknown.
    pub uv_ap: Option<bool>,
    /// The ultravisor offers AP interrupts to secure guests (UV feature bit 5).
    pub uv_ap_intr: Option<bool>,
    /// The mdev's vfio cdev name (`vfio0`), when the kernel made one.
    pub vfio_cdev: Option<String>,
    /// `/dev/iommu` exists.
    pub iommufd: bool,
}

/// A descriptor aplaunch opens and passes to QEMU at a fixed number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PassedFd {
    /// The number QEMU finds it at (named in argv).
    pub target: i32,
    /// What to open.
    pub source: FdSource,
}

/// What a passed descriptor is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FdSource {
    /// `/dev/iommu`.
    Iommufd,
    /// The mdev's vfio cdev, `/dev/vfio/devices/<name>`.
    VfioCdev(String),
}

/// The backend the builder chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChosenBackend {
    /// No mdev.
    None,
    /// VFIO group (QEMU opens it from `sysfsdev=`).
    Group,
    /// iommufd with passed descriptors.
    Iommufd,
}

/// The command line and what must be open when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LaunchPlan {
    /// The QEMU binary (also `argv[0]`).
    pub binary: PathBuf,
    /// The whole argv, `argv[0]` included.
    pub argv: Vec<OsString>,
    /// Descriptors to open and pass.
    pub fds: Vec<PassedFd>,
    /// The vfio backend used.
    pub backend: ChosenBackend,
    /// The user aplaunch itself switches to right before exec (`--user` under the sandbox:
    /// QEMU's own `-runas`/`-run-with user=` calls setuid, which the sandbox's
    /// `elevateprivileges=deny` kills with SIGSYS, in QEMU 7.2 and 10.0 alike).
    pub drop_to_user: Option<String>,
}

/// Escapes a value for a QEMU option list: `,` becomes `,,`.
pub fn qemu_escape(value: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(value.len());
    for &b in value.as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

/// One QEMU option list being assembled (`driver,key=value,...`).
struct Opts(OsString);

impl Opts {
    fn new(head: &str) -> Self {
        Opts(OsString::from(head))
    }

    fn kv(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.0.push(",");
        self.0.push(key);
        self.0.push("=");
        self.0.push(qemu_escape(OsStr::new(value.as_ref())));
        self
    }

    fn path(mut self, key: &str, value: &Path) -> Self {
        self.0.push(",");
        self.0.push(key);
        self.0.push("=");
        self.0.push(qemu_escape(value.as_os_str()));
        self
    }

    fn flag_if(self, cond: bool, key: &str) -> Self {
        if cond {
            self.kv(key, "on")
        } else {
            self
        }
    }

    fn done(self) -> OsString {
        self.0
    }
}

/// Decides the vfio backend for `spec` with this QEMU and host.
pub fn choose_backend(spec: &VmSpec, caps: Option<&QemuCaps>, host: &HostFacts) -> ChosenBackend {
    if spec.mdev.is_none() {
        return ChosenBackend::None;
    }
    match spec.vfio_backend {
        VfioBackend::Group => ChosenBackend::Group,
        VfioBackend::Iommufd => ChosenBackend::Iommufd,
        VfioBackend::Auto => {
            let qemu_can = caps.is_some_and(|c| c.version.at_least(9, 0) && c.vfio_ap_iommufd());
            if qemu_can && host.iommufd && host.vfio_cdev.is_some() {
                ChosenBackend::Iommufd
            } else {
                ChosenBackend::Group
            }
        }
    }
}

/// Builds the command line. `binary` is the QEMU to run; `caps` is the probe result when
/// there is one.
pub fn build(
    spec: &VmSpec,
    binary: &Path,
    caps: Option<&QemuCaps>,
    host: &HostFacts,
) -> LaunchPlan {
    let pv = spec.is_pv();
    let iommu = pv || spec.iommu_platform;
    let backend = choose_backend(spec, caps, host);
    let mut argv: Vec<OsString> = vec![binary.as_os_str().to_owned()];
    let mut fds = Vec::new();

    argv.push("-name".into());
    argv.push(
        Opts(OsString::new())
            .kv("guest", &spec.name)
            .done()
            .split_off_leading_comma(),
    );
    if let Some(uuid) = guest_uuid(&spec.name) {
        argv.push("-uuid".into());
        argv.push(uuid.to_string().into());
    }

    // Guest memory (a secure guest's too, while it is not yet protected) stays out of
    // QEMU's core dumps.
    let mut machine = Opts::new("s390-ccw-virtio")
        .kv("accel", spec.accel.as_str())
        .kv("dump-guest-core", "off");
    if pv {
        machine = machine.kv("confidential-guest-support", "pv0");
    }
    if spec.hugepages {
        machine = machine.kv("memory-backend", "mem0");
    }
    argv.push("-machine".into());
    argv.push(machine.done());

    let mut cpu = Opts::new(match spec.accel {
        Accel::Kvm => "host",
        Accel::Tcg => "max",
    });
    if spec.mdev.is_some() {
        for f in ["ap", "apqci", "apft", "apqi"] {
            cpu = cpu.kv(f, "on");
        }
        if pv {
            let available =
                |feature: &str, uv: Option<bool>| match caps.and_then(|c| c.cpu_feature(feature)) {
                    Some(v) => v,
                    // The host model could not be asked: QEMU 8.2+ and the ultravisor decide.
                    None => caps.is_some_and(|c| c.version.at_least(8, 2)) && uv == Some(true),
                };
            let appv = available("appv", host.uv_ap);
            if appv {
                cpu = cpu.kv("appv", "on");
                if available("appvi", host.uv_ap_intr) {
                    cpu = cpu.kv("appvi", "on");
                }
            }
        }
    }
    argv.push("-cpu".into());
    argv.push(cpu.done());
    argv.push("-m".into());
    argv.push(spec.memory_mib.to_string().into());
    argv.push("-smp".into());
    argv.push(spec.smp.to_string().into());
    for a in [
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-msg",
        "timestamp=on",
    ] {
        argv.push(a.into());
    }
    // Least privilege: the seccomp sandbox wherever the probed QEMU has it, and the user
    // QEMU drops to once it has opened what it needs (as root).
    let sandbox = spec.sandbox && caps.is_some_and(|c| c.sandbox());
    if sandbox {
        argv.push("-sandbox".into());
        argv.push(crate::probe::SANDBOX.into());
    }
    let drop_to_user = spec.user.clone().filter(|_| sandbox);
    if let Some(user) = spec.user.as_ref().filter(|_| !sandbox) {
        if caps.is_some_and(|c| c.run_with_user()) {
            argv.push("-run-with".into());
            argv.push(
                Opts(OsString::new())
                    .kv("user", user)
                    .done()
                    .split_off_leading_comma(),
            );
        } else {
            argv.push("-runas".into());
            argv.push(user.into());
        }
    }
    if pv {
        argv.push("-object".into());
        argv.push(Opts::new("s390-pv-guest").kv("id", "pv0").done());
    }
    if spec.hugepages {
        argv.push("-object".into());
        argv.push(
            Opts::new("memory-backend-file")
                .kv("id", "mem0")
                .kv("size", format!("{}M", spec.memory_mib))
                .kv("mem-path", "/dev/hugepages")
                .kv("prealloc", "on")
                .done(),
        );
    }
    match &spec.boot {
        Boot::Pv { .. } => {
            if let Some(image) = spec.pv_kernel() {
                argv.push("-kernel".into());
                argv.push(image.as_os_str().to_owned());
            }
        }
        Boot::Plain {
            kernel,
            initrd,
            append,
        } => {
            if let Some(k) = kernel {
                argv.push("-kernel".into());
                argv.push(k.as_os_str().to_owned());
            }
            if let Some(i) = initrd {
                argv.push("-initrd".into());
                argv.push(i.as_os_str().to_owned());
            }
            if let Some(a) = append {
                argv.push("-append".into());
                argv.push(a.into());
            }
        }
    }

    if let Some(uuid) = &spec.mdev {
        let mut dev = Opts::new("vfio-ap")
            .kv("id", VFIO_AP_ID)
            .path("sysfsdev", Path::new(&vfio::mdev_uuid::sysfsdev(uuid)));
        if backend == ChosenBackend::Iommufd {
            argv.push("-object".into());
            argv.push(
                Opts::new("iommufd")
                    .kv("id", "iommufd0")
                    .kv("fd", IOMMUFD_FD.to_string())
                    .done(),
            );
            dev = dev
                .kv("iommufd", "iommufd0")
                .kv("fd", VFIO_CDEV_FD.to_string());
            fds.push(PassedFd {
                target: IOMMUFD_FD,
                source: FdSource::Iommufd,
            });
            fds.push(PassedFd {
                target: VFIO_CDEV_FD,
                source: FdSource::VfioCdev(host.vfio_cdev.clone().unwrap_or_default()),
            });
        }
        argv.push("-device".into());
        argv.push(dev.done());
    }

    for (i, disk) in spec.disks.iter().enumerate() {
        let mut drive = Opts::new("")
            .path("file", &disk.path)
            .kv("if", "none")
            .kv("id", format!("drive{i}"))
            .kv("format", &disk.format);
        if disk.readonly {
            drive = drive.kv("readonly", "on");
        }
        if let Some(c) = &disk.cache {
            drive = drive.kv("cache", c);
        }
        argv.push("-drive".into());
        argv.push(drive.done().split_off_leading_comma());
        let mut dev = Opts::new("virtio-blk-ccw")
            .kv("drive", format!("drive{i}"))
            .kv("id", format!("disk{i}"))
            .kv("devno", spec.devnos.disks[i].to_string())
            .flag_if(iommu, "iommu_platform");
        if spec.boot_disk == Some(i) {
            dev = dev.kv("bootindex", "1");
        }
        argv.push("-device".into());
        argv.push(dev.done());
    }

    for (i, net) in spec.nets.iter().enumerate() {
        let id = format!("net{i}");
        let netdev = match &net.backend {
            NetBackend::User => Opts::new("user").kv("id", &id),
            NetBackend::Tap { ifname } => Opts::new("tap")
                .kv("id", &id)
                .kv("ifname", ifname)
                .kv("script", "no")
                .kv("downscript", "no"),
        };
        argv.push("-netdev".into());
        argv.push(netdev.done());
        let mut dev = Opts::new("virtio-net-ccw")
            .kv("netdev", &id)
            .kv("id", format!("nic{i}"))
            .kv("devno", spec.devnos.nets[i].to_string());
        if let Some(mac) = &net.mac {
            dev = dev.kv("mac", mac);
        }
        argv.push("-device".into());
        argv.push(dev.flag_if(iommu, "iommu_platform").done());
    }

    if spec.rng {
        argv.push("-object".into());
        argv.push(
            Opts::new("rng-random")
                .kv("id", "rng0")
                .kv("filename", "/dev/urandom")
                .done(),
        );
        argv.push("-device".into());
        argv.push(
            Opts::new("virtio-rng-ccw")
                .kv("rng", "rng0")
                .kv("id", "virtio-rng0")
                .kv("devno", devno_of(spec.devnos.rng))
                .flag_if(iommu, "iommu_platform")
                .done(),
        );
    }

    if spec.console != ConsoleKind::None {
        argv.push("-chardev".into());
        argv.push(console_chardev(&spec.console_backend));
    }
    match spec.console {
        ConsoleKind::None => {}
        ConsoleKind::Sclp => {
            argv.push("-device".into());
            argv.push(
                Opts::new("sclpconsole")
                    .kv("chardev", "console0")
                    .kv("id", "console")
                    .done(),
            );
        }
        ConsoleKind::Virtio => {
            argv.push("-device".into());
            argv.push(
                Opts::new("virtio-serial-ccw")
                    .kv("id", "vserial0")
                    .kv("devno", devno_of(spec.devnos.serial))
                    .flag_if(iommu, "iommu_platform")
                    .done(),
            );
            argv.push("-device".into());
            argv.push(
                Opts::new("virtconsole")
                    .kv("chardev", "console0")
                    .kv("id", "console")
                    .kv("bus", "vserial0.0")
                    .done(),
            );
        }
    }

    argv.push("-chardev".into());
    argv.push(
        Opts::new("socket")
            .kv("id", "qmp0")
            .path("path", &spec.qmp)
            .kv("server", "on")
            .kv("wait", "off")
            .done(),
    );
    argv.push("-mon".into());
    argv.push(Opts::new("chardev=qmp0").kv("mode", "control").done());

    argv.extend(spec.extra_args.iter().cloned());
    LaunchPlan {
        binary: binary.to_path_buf(),
        argv,
        fds,
        backend,
        drop_to_user,
    }
}

/// The console's chardev (id `console0`). On stdio, `signal=off`: QEMU's default
/// (`signal=on`) makes Ctrl-C on the console terminate QEMU and the guest with it.
fn console_chardev(backend: &ConsoleBackend) -> OsString {
    match backend {
        ConsoleBackend::Stdio => Opts::new("stdio")
            .kv("id", "console0")
            .kv("signal", "off")
            .done(),
        ConsoleBackend::Pty => Opts::new("pty").kv("id", "console0").done(),
        ConsoleBackend::Socket { path } => Opts::new("socket")
            .kv("id", "console0")
            .path("path", path)
            .kv("server", "on")
            .kv("wait", "off")
            .done(),
    }
}

/// A device number the spec assigned (validation numbers every device it emits).
fn devno_of(devno: Option<crate::devno::Devno>) -> String {
    devno
        .expect("the validated spec numbers every virtio-ccw device")
        .to_string()
}

trait SplitLeadingComma {
    fn split_off_leading_comma(self) -> OsString;
}

impl SplitLeadingComma for OsString {
    /// `Opts::new("")` starts the list with `,key=`; drop that first comma.
    fn split_off_leading_comma(self) -> OsString {
        let bytes = self.into_vec();
        match bytes.split_first() {
            Some((b',', rest)) => OsString::from_vec(rest.to_vec()),
            _ => OsString::from_vec(bytes),
        }
    }
}

/// Quotes one argument for a POSIX shell (only when needed).
pub fn shell_quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if safe {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The argv as one shell-quoted line.
pub fn shell_line(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The guest's `-uuid`: the same for the same guest name on every launch (so the guest
/// sees a stable system UUID), a version 8 UUID (RFC 9562) from SHA-256 of the name.
pub fn guest_uuid(name: &str) -> Option<uuid::Uuid> {
    let digest = pv::digest::sha256(&[b"aplaunch guest ", name.as_bytes()]).ok()?;
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Some(uuid::Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_doubles_commas_only() {
        assert_eq!(
            qemu_escape(OsStr::new("/a,b,,c d")),
            OsString::from("/a,,b,,,,c d")
        );
        let raw = OsStr::from_bytes(b"/x\xff,y");
        assert_eq!(qemu_escape(raw).as_bytes(), b"/x\xff,,y");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote(OsStr::new("-m")), "-m");
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
        assert_eq!(shell_quote(OsStr::new("a\nb")), "'a\nb'");
        assert_eq!(shell_quote(OsStr::new("$HOME")), "'$HOME'");
    }

    #[test]
    fn the_guest_uuid_is_stable_per_name_and_a_version_8_uuid() {
        let a = guest_uuid("secure1").unwrap();
        assert_eq!(a, guest_uuid("secure1").unwrap());
        assert_ne!(a, guest_uuid("secure2").unwrap());
        assert_eq!(a.get_version_num(), 8);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
    }
}
