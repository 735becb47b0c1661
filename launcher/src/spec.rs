//! The VM spec: what to launch, from flags and a TOML config file (flags override it),
//! validated into one [`VmSpec`] before anything runs.
//!
//! Every error names the input it is about where it came from: the flag (`--smp`), the config
//! key (`` key `smp` in vm.toml ``) or, for a [`crate::Launch`] built in code, the setter
//! (`Launch::smp`); [`SpecError::kind`] is the rule it broke, for matching.

use crate::devno::{self, Devno};
use crate::mac::Mac;
use serde::Deserialize;
use std::borrow::Borrow;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Largest vCPU count QEMU's s390-ccw-virtio machine accepts.
pub const MAX_SMP: u32 = 248;
/// Default guest memory in MiB.
pub const DEFAULT_MEMORY_MIB: u64 = 2048;
/// Smallest guest memory in MiB.
pub const MIN_MEMORY_MIB: u64 = 16;
/// Largest guest memory in MiB (16 TiB).
pub const MAX_MEMORY_MIB: u64 = 16 * 1024 * 1024;

/// A spec that could not be validated: which input, which rule it broke, and what is wrong
/// with it.
///
/// Match on [`SpecError::kind`] to react to a rule; the text fields are for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
#[non_exhaustive]
pub struct SpecError {
    /// The rule the input broke.
    pub kind: SpecErrorKind,
    /// Where the input at fault came from.
    pub origin: InputOrigin,
    /// The input at fault, named for its origin: the flag (`--smp`), the config key
    /// (`` key `smp` in vm.toml ``) or the [`crate::Launch`] setter (`Launch::smp`).
    pub source_name: String,
    /// What is wrong, naming the value.
    pub message: String,
    /// How to fix it, phrased for the origin (flags for the command line, setters for
    /// code).
    pub hint: Option<String>,
    /// Who reads the error, for phrasing the hint.
    speaker: Speaker,
}

/// Where an input at fault came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InputOrigin {
    /// A command-line flag (`--smp`), or a value handed over as the command line gives it
    /// ([`crate::Launch::from_input`]).
    Flag,
    /// A key of the TOML config file.
    ConfigKey,
    /// A [`crate::Launch`] setter or constructor, or a [`Disk`] or [`Net`] built in code.
    Setter,
}

/// The rule a spec broke, one per check of [`validate`] and of the flag and config parsers.
/// New rules may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpecErrorKind {
    /// The config file cannot be read.
    ConfigUnreadable,
    /// The config file is not valid TOML, has an unknown key or a value of the wrong type.
    ConfigInvalid,
    /// The text of a `--disk` or `--net` flag cannot be read (an unknown option, an
    /// on/off option with another value).
    Syntax,
    /// A path is empty.
    EmptyPath,
    /// A path contains a control character (QEMU options cannot carry it).
    ControlCharInPath,
    /// A device number is not `fe.0.XXXX` (see [`crate::devno`]).
    BadDevno,
    /// The console text names no console, two consoles, or a backend for no console.
    BadConsole,
    /// A tap NIC's interface name is not a Linux interface name.
    BadIfname,
    /// A tap NIC without an interface name.
    TapWithoutIfname,
    /// A user-mode NIC with an interface name.
    UserWithIfname,
    /// A network type other than `user` and `tap`.
    UnknownNetType,
    /// A MAC address that is not a unicast MAC.
    BadMac,
    /// A disk format that is not one of QEMU's ([`DISK_FORMATS_RW`], [`DISK_FORMATS_RO`]).
    UnknownDiskFormat,
    /// A writable disk in a format QEMU builds with a format whitelist open read-only
    /// ([`DISK_FORMATS_RO`]).
    ReadOnlyFormat,
    /// A disk cache mode QEMU does not know.
    UnknownCacheMode,
    /// The mdev is not a UUID.
    BadMdevUuid,
    /// An SE image for a guest without Secure Execution.
    ImageWithoutPv,
    /// The kernel command line contains a newline or NUL.
    NewlineInAppend,
    /// A kernel command line for a guest that boots no kernel.
    AppendWithoutKernel,
    /// An initrd for a guest that boots no kernel.
    InitrdWithoutKernel,
    /// A kernel, initrd or command line for a secure guest (they are sealed in its image).
    SealedInImage,
    /// A secure guest with neither an SE image nor a disk to boot the SE image from.
    MissingImage,
    /// A secure guest under TCG.
    PvNeedsKvm,
    /// The guest name is not 1 to 64 characters of A-Z, a-z, 0-9, `-`, `_`, `.`.
    BadName,
    /// The memory size cannot be read or is outside `min_mib..=max_mib` MiB.
    MemoryOutOfRange {
        /// The smallest size, in MiB.
        min_mib: u64,
        /// The largest size, in MiB.
        max_mib: u64,
    },
    /// The vCPU count is outside `1..=max`.
    SmpOutOfRange {
        /// The largest count ([`MAX_SMP`]).
        max: u32,
    },
    /// A VFIO backend other than auto without an mdev.
    VfioBackendWithoutMdev,
    /// An mdev under TCG (no AP passthrough).
    MdevNeedsKvm,
    /// Huge-page backing for a secure guest.
    PvHugepages,
    /// `iommu_platform` turned off for a secure guest.
    PvWithoutIommuPlatform,
    /// The console's socket is also the QMP socket.
    ConsoleIsQmpSocket,
    /// Two virtio-ccw devices have the same device number.
    DevnoCollision,
    /// No device number is left in a device kind's range.
    DevnoRangeFull,
    /// A device number in the extra QEMU arguments is also one of aplaunch's devices'.
    DevnoInExtraArgs,
    /// A memory balloon in a secure guest's extra QEMU arguments.
    BalloonInExtraArgs,
    /// Huge-page backing in a secure guest's extra QEMU arguments.
    HugepagesInExtraArgs,
    /// Two disks are marked as the boot disk.
    TwoBootDisks,
    /// A disk is marked as the boot disk of a guest that boots a kernel.
    BootDiskWithKernel,
    /// The user QEMU runs as is not a portable user name.
    BadUser,
}

impl SpecErrorKind {
    /// The hint for an input set in code, where it differs from the command line's: it
    /// names the [`crate::Launch`] setter or the [`Disk`] / [`Net`] method instead of a flag.
    fn code_hint(self) -> Option<String> {
        use SpecErrorKind::*;
        let hint = match self {
            ConfigUnreadable => "give Launch::config_file a readable TOML file".into(),
            BadConsole => "use Launch::console; ConsoleKind::None takes only ConsoleBackend::Stdio".into(),
            UnknownDiskFormat => "use Disk::format(\"raw\") or Disk::format(\"qcow2\") (`qemu-img info FILE` shows an image's format)".into(),
            ReadOnlyFormat => "convert it with `qemu-img convert -O qcow2 IMAGE NEW.qcow2`, or attach it with Disk::readonly".into(),
            UnknownCacheMode => "use Disk::cache with none, writeback, writethrough, directsync or unsafe".into(),
            ImageWithoutPv => "use Launch::secure to boot the SE image, or Launch::plain for a plain guest".into(),
            AppendWithoutKernel => "boot a kernel with Launch::plain(KERNEL), or drop Launch::append (a disk boots with its own command line)".into(),
            InitrdWithoutKernel => "boot a kernel with Launch::plain(KERNEL), or drop Launch::initrd".into(),
            SealedInImage => "rebuild the SE image with pvimg/genprotimg to change them, or use Launch::plain for a plain guest".into(),
            MissingImage => "use Launch::secure(IMAGE); or Launch::secure_from_disk with a Launch::disk to boot the SE image zipl wrote to that disk; or Launch::plain / Launch::plain_from_disk for a plain guest".into(),
            PvNeedsKvm => "use Launch::accel(Accel::Kvm), or Launch::plain to test a plain guest under TCG".into(),
            MemoryOutOfRange { min_mib, max_mib } => format!("give Launch::memory a size like \"4G\" or \"4096M\", or Launch::memory_mib a number of MiB between {min_mib} and {max_mib}"),
            SmpOutOfRange { max } => format!("give Launch::smp between 1 and {max}"),
            VfioBackendWithoutMdev => "add Launch::mdev with the UUID of the crypto mdev (`aplaunch ap list` shows them), or drop Launch::vfio_backend".into(),
            MdevNeedsKvm => "use Launch::accel(Accel::Kvm), or drop Launch::mdev to test under TCG".into(),
            PvHugepages => "drop Launch::hugepages for a secure guest".into(),
            PvWithoutIommuPlatform => "drop Launch::iommu_platform(false) for a secure guest".into(),
            DevnoCollision | DevnoRangeFull => "give one of them another Disk::devno or Net::devno (disks are numbered from fe.0.0000, NICs from fe.0.1000, the virtio console fe.0.2000, the rng fe.0.3000)".into(),
            DevnoInExtraArgs => "give the extra device another devno, or that device Disk::devno or Net::devno".into(),
            TwoBootDisks => "call Disk::boot on one disk".into(),
            BootDiskWithKernel => "drop Disk::boot, or use Launch::plain_from_disk to boot from the disk".into(),
            BadUser => "give Launch::user the name of an existing unprivileged user, e.g. \"qemu\"".into(),
            BadMac => "give Net::mac a unicast MAC, or leave it out to get one derived from the guest name".into(),
            _ => return None,
        };
        Some(hint)
    }
}

/// Who the errors speak to: the command line names flags and its hints speak of flags; a
/// [`crate::Launch`] built in code names its setters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Speaker {
    /// Flags (`--smp`) and config keys, as `aplaunch launch` prints them.
    #[default]
    Cli,
    /// Setters (`Launch::smp`) and config keys; `memory` is the setter that set the
    /// memory (`Launch::memory` or `Launch::memory_mib`).
    Code {
        /// The memory setter's name.
        memory: &'static str,
    },
}

impl Speaker {
    fn is_code(self) -> bool {
        matches!(self, Speaker::Code { .. })
    }

    /// The command line's text or the code's.
    fn say<'a>(self, cli: &'a str, code: &'a str) -> &'a str {
        if self.is_code() {
            code
        } else {
            cli
        }
    }
}

/// The input an error is about: its name, where it came from and who reads the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    name: String,
    origin: InputOrigin,
    speaker: Speaker,
}

impl Source {
    /// A command-line flag.
    pub(crate) fn flag(name: impl Into<String>) -> Source {
        Source {
            name: name.into(),
            origin: InputOrigin::Flag,
            speaker: Speaker::Cli,
        }
    }

    /// A config file's key, `` key `KEY` in FILE ``.
    fn key(name: impl Into<String>) -> Source {
        Source {
            name: name.into(),
            origin: InputOrigin::ConfigKey,
            speaker: Speaker::Cli,
        }
    }

    /// A setter of a [`crate::Launch`] (or a disk or NIC built in code).
    pub(crate) fn setter(name: impl Into<String>) -> Source {
        Source {
            name: name.into(),
            origin: InputOrigin::Setter,
            speaker: Speaker::Code {
                memory: "Launch::memory",
            },
        }
    }

    /// A name given as text to a public parser: a config key when it reads like one,
    /// else a flag.
    fn named(name: &str) -> Source {
        if name.starts_with("key `") {
            Source::key(name)
        } else {
            Source::flag(name)
        }
    }

    fn spoken_to(mut self, speaker: Speaker) -> Source {
        self.speaker = speaker;
        self
    }
}

impl SpecError {
    fn new(kind: SpecErrorKind, source: impl Borrow<Source>, message: impl Into<String>) -> Self {
        let source = source.borrow();
        SpecError {
            kind,
            origin: source.origin,
            source_name: source.name.clone(),
            message: message.into(),
            hint: None,
            speaker: source.speaker,
        }
    }

    /// Sets the command line's hint, or for code the kind's hint when it has its own.
    fn hint(mut self, hint: impl Into<String>) -> Self {
        let code_hint = match self.speaker {
            Speaker::Code { .. } => self.kind.code_hint(),
            Speaker::Cli => None,
        };
        self.hint = Some(code_hint.unwrap_or_else(|| hint.into()));
        self
    }
}

/// `--accel`: KVM for real guests, TCG only for testing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualization (required for Secure Execution).
    Kvm,
    /// QEMU's emulator (testing only: no PV, no vfio-ap).
    Tcg,
}

impl Accel {
    /// The QEMU name.
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// `--vfio-backend`: how QEMU reaches the mdev.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VfioBackend {
    /// iommufd with passed descriptors when QEMU (9.0+) and the host support it, else group.
    Auto,
    /// The legacy VFIO group/container: `sysfsdev=` only.
    Group,
    /// An iommufd object and the mdev's vfio cdev, both opened by aplaunch and passed as fds.
    Iommufd,
}

/// The guest's console device (`--console sclp|virtio|none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ConsoleKind {
    /// The SCLP ASCII console (`ttysclp0` in the guest).
    Sclp,
    /// A virtio console (`hvc0`) on a virtio-serial-ccw device.
    Virtio,
    /// No console.
    None,
}

/// Where the console's host side is (`--console pty`, `--console socket:PATH`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ConsoleBackend {
    /// QEMU's stdin/stdout, with `signal=off`: Ctrl-C reaches the guest, not QEMU.
    Stdio,
    /// A pseudo terminal QEMU allocates (`query-chardev` over QMP names it).
    Pty,
    /// A unix socket QEMU listens on (for services: attach with `socat - UNIX:PATH`).
    Socket {
        /// The socket path.
        path: PathBuf,
    },
}

/// How the guest boots.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Boot {
    /// A Secure Execution guest: the SE image with `-kernel`, or the SE image zipl wrote
    /// to the boot disk ([`VmSpec::boot_disk`]).
    Pv {
        /// The SE image: booted with `-kernel`, or, when the guest boots from its disk,
        /// only verified (it should be the image written to that disk).
        image: Option<PathBuf>,
    },
    /// A plain (unprotected) guest.
    Plain {
        /// `--kernel`.
        kernel: Option<PathBuf>,
        /// `--initrd`.
        initrd: Option<PathBuf>,
        /// `--append`.
        append: Option<String>,
    },
}

/// One virtio-blk disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Disk {
    /// The image file or block device.
    pub path: PathBuf,
    /// The image format (`raw`, `qcow2`).
    pub format: String,
    /// Attach read-only.
    pub readonly: bool,
    /// QEMU's cache mode (`none`, `writeback`, ...), when given.
    pub cache: Option<String>,
    /// The device number, when given (`devno=fe.0.0005`); else the scheme's.
    pub devno: Option<Devno>,
    /// Boot from this disk (`boot=on`).
    pub boot: bool,
}

/// One virtio-net NIC.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Net {
    /// The backend.
    pub backend: NetBackend,
    /// The MAC address (`52:54:00:12:34:56`): as given, or, after validation, derived
    /// from the guest name and the NIC's device number.
    pub mac: Option<String>,
    /// The device number, when given (`devno=fe.0.1005`); else the scheme's.
    pub devno: Option<Devno>,
}

/// A NIC's host side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum NetBackend {
    /// QEMU's user-mode network (testing).
    User,
    /// An existing tap interface.
    Tap {
        /// The interface name.
        ifname: String,
    },
}

/// The validated VM spec: everything the builder needs, nothing left to decide.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VmSpec {
    /// The guest name (`-name`, default QMP socket name).
    pub name: String,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// vCPUs.
    pub smp: u32,
    /// The accelerator.
    pub accel: Accel,
    /// How the guest boots (PV or plain).
    pub boot: Boot,
    /// The crypto mdev.
    pub mdev: Option<Uuid>,
    /// How QEMU reaches the mdev.
    pub vfio_backend: VfioBackend,
    /// Disks, in order.
    pub disks: Vec<Disk>,
    /// NICs, in order.
    pub nets: Vec<Net>,
    /// The console device.
    pub console: ConsoleKind,
    /// The console's host side.
    pub console_backend: ConsoleBackend,
    /// The device number of every virtio-ccw device.
    pub devnos: DeviceNumbers,
    /// The disk the guest boots from (`bootindex=1`), by index in `disks`.
    pub boot_disk: Option<usize>,
    /// A virtio-rng device fed from the host's /dev/urandom.
    pub rng: bool,
    /// Back guest memory with huge pages (refused under PV).
    pub hugepages: bool,
    /// `iommu_platform=on` on every virtio device (always for PV; optional for plain guests).
    pub iommu_platform: bool,
    /// The QMP unix socket QEMU listens on.
    pub qmp: PathBuf,
    /// The QEMU binary, when chosen (else discovered). A bare name (`qemu-system-s390x`)
    /// is looked up on PATH, from the flag and from the config key alike.
    pub qemu: Option<PathBuf>,
    /// Where the QEMU binary was named, for hints: `--qemu`, or `` key `qemu` in FILE ``.
    #[serde(skip)]
    pub qemu_source: String,
    /// Arguments appended verbatim after everything aplaunch emits.
    #[serde(serialize_with = "ser_os_vec")]
    pub extra_args: Vec<OsString>,
    /// The user QEMU drops privileges to (`-run-with user=` or `-runas`); `None`: QEMU
    /// keeps aplaunch's user.
    pub user: Option<String>,
    /// Run QEMU under its seccomp sandbox when the probed QEMU has one (`--no-sandbox`: off).
    pub sandbox: bool,
}

/// The device numbers of a spec's virtio-ccw devices, see [`crate::devno`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceNumbers {
    /// One per disk, in order.
    pub disks: Vec<Devno>,
    /// One per NIC, in order.
    pub nets: Vec<Devno>,
    /// The virtio console's virtio-serial-ccw.
    pub serial: Option<Devno>,
    /// The virtio-rng-ccw.
    pub rng: Option<Devno>,
}

fn ser_os_vec<S: serde::Serializer>(v: &[OsString], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|a| a.to_string_lossy()))
}

impl VmSpec {
    /// Whether this is a Secure Execution guest.
    pub fn is_pv(&self) -> bool {
        matches!(self.boot, Boot::Pv { .. })
    }

    /// The SE image of a PV guest (booted, or only verified when it boots from disk).
    pub fn pv_image(&self) -> Option<&Path> {
        match &self.boot {
            Boot::Pv { image } => image.as_deref(),
            Boot::Plain { .. } => None,
        }
    }

    /// The SE image booted with `-kernel` (none when the guest boots from its disk).
    pub fn pv_kernel(&self) -> Option<&Path> {
        self.pv_image().filter(|_| self.boot_disk.is_none())
    }
}

/// The VM inputs as given on the command line or in a config file: every field optional,
/// so that flags can override the file key by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecInput {
    /// `--name`.
    pub name: Option<String>,
    /// `--memory` (`4G`, `4096M`, `4096` = MiB).
    pub memory: Option<String>,
    /// `--smp`.
    pub smp: Option<u64>,
    /// `--accel`.
    pub accel: Option<Accel>,
    /// `--pv-image`.
    pub pv_image: Option<PathBuf>,
    /// `--no-pv` (`pv = false` in a config).
    pub no_pv: Option<bool>,
    /// `--kernel`.
    pub kernel: Option<PathBuf>,
    /// `--initrd`.
    pub initrd: Option<PathBuf>,
    /// `--append`.
    pub append: Option<String>,
    /// `--mdev`.
    pub mdev: Option<String>,
    /// `--vfio-backend`.
    pub vfio_backend: Option<VfioBackend>,
    /// `--disk`, already parsed.
    pub disks: Option<Vec<Disk>>,
    /// `--net`, already parsed.
    pub nets: Option<Vec<Net>>,
    /// `--console`, already parsed.
    pub console: Option<(ConsoleKind, ConsoleBackend)>,
    /// `--rng`.
    pub rng: Option<bool>,
    /// `--hugepages`.
    pub hugepages: Option<bool>,
    /// `--iommu-platform`.
    pub iommu_platform: Option<bool>,
    /// `--qmp`.
    pub qmp: Option<PathBuf>,
    /// `--qemu`.
    pub qemu: Option<PathBuf>,
    /// Arguments after `--`.
    pub extra_args: Option<Vec<OsString>>,
    /// `--user`: the user QEMU drops privileges to.
    pub user: Option<String>,
    /// `--no-sandbox` (false) / config `sandbox`.
    pub sandbox: Option<bool>,
}

impl SpecInput {
    /// Takes every field set in `over` (flags), keeping the others (config).
    pub fn overridden_by(self, over: SpecInput) -> SpecInput {
        SpecInput {
            name: over.name.or(self.name),
            memory: over.memory.or(self.memory),
            smp: over.smp.or(self.smp),
            accel: over.accel.or(self.accel),
            pv_image: over.pv_image.or(self.pv_image),
            no_pv: over.no_pv.or(self.no_pv),
            kernel: over.kernel.or(self.kernel),
            initrd: over.initrd.or(self.initrd),
            append: over.append.or(self.append),
            mdev: over.mdev.or(self.mdev),
            vfio_backend: over.vfio_backend.or(self.vfio_backend),
            disks: over.disks.or(self.disks),
            nets: over.nets.or(self.nets),
            console: over.console.or(self.console),
            rng: over.rng.or(self.rng),
            hugepages: over.hugepages.or(self.hugepages),
            iommu_platform: over.iommu_platform.or(self.iommu_platform),
            qmp: over.qmp.or(self.qmp),
            qemu: over.qemu.or(self.qemu),
            extra_args: over.extra_args.or(self.extra_args),
            user: over.user.or(self.user),
            sandbox: over.sandbox.or(self.sandbox),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The config file.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigFile {
    name: Option<String>,
    memory: Option<MemoryValue>,
    smp: Option<u64>,
    accel: Option<Accel>,
    pv: Option<bool>,
    pv_image: Option<PathBuf>,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    append: Option<String>,
    mdev: Option<String>,
    vfio_backend: Option<VfioBackend>,
    console: Option<String>,
    rng: Option<bool>,
    hugepages: Option<bool>,
    iommu_platform: Option<bool>,
    qmp: Option<PathBuf>,
    qemu: Option<PathBuf>,
    #[serde(default)]
    disk: Vec<ConfigDisk>,
    #[serde(default)]
    net: Vec<ConfigNet>,
    extra_args: Option<Vec<String>>,
    user: Option<String>,
    sandbox: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum MemoryValue {
    Mib(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigDisk {
    path: PathBuf,
    format: Option<String>,
    #[serde(default)]
    readonly: bool,
    cache: Option<String>,
    devno: Option<String>,
    #[serde(default)]
    boot: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigNet {
    #[serde(rename = "type")]
    kind: String,
    ifname: Option<String>,
    mac: Option<String>,
    devno: Option<String>,
}

/// Reads a TOML VM config. Relative paths in it are taken relative to the file's directory.
pub fn load_config(path: &Path) -> Result<SpecInput, SpecError> {
    load_config_named(path, &Source::flag("--config"))
}

/// [`load_config`], naming the file's input `source` when it cannot be read.
pub(crate) fn load_config_named(path: &Path, source: &Source) -> Result<SpecInput, SpecError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(
            SpecErrorKind::ConfigUnreadable,
            source,
            format!("cannot read {shown}: {e}"),
        )
        .hint("name a readable TOML file")
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse_config(&text, &shown, base)
}

/// Parses a TOML VM config; `shown` names it in errors, `base` anchors relative paths.
pub fn parse_config(text: &str, shown: &str, base: &Path) -> Result<SpecInput, SpecError> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| {
        let msg = e.message().to_string();
        let key = msg
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            .map(|k| format!("key `{k}` in {shown}"))
            .unwrap_or_else(|| shown.to_string());
        let line = e
            .span()
            .map(|s| format!(" (line {})", text[..s.start].matches('\n').count() + 1))
            .unwrap_or_default();
        SpecError::new(
            SpecErrorKind::ConfigInvalid,
            Source::key(key),
            format!("{msg}{line}"),
        )
        .hint("see the VM config section of the README for the keys and their types")
    })?;
    let key = |k: &str| Source::key(format!("key `{k}` in {shown}"));
    let rel = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    let memory = match file.memory {
        None => None,
        Some(MemoryValue::Mib(n)) => Some(n.to_string()),
        Some(MemoryValue::Text(t)) => Some(t),
    };
    let mut disks = Vec::new();
    for (i, d) in file.disk.into_iter().enumerate() {
        let k = key(&format!("disk[{i}]"));
        let devno = d.devno.as_deref().map(|t| parse_devno(t, &k)).transpose()?;
        let disk = Disk {
            path: rel(d.path),
            format: d.format.unwrap_or_else(|| "raw".into()),
            readonly: d.readonly,
            cache: d.cache,
            devno,
            boot: d.boot,
        };
        check_disk(&disk, &k)?;
        disks.push(disk);
    }
    let mut nets = Vec::new();
    for (i, n) in file.net.into_iter().enumerate() {
        let k = key(&format!("net[{i}]"));
        let devno = n.devno.as_deref().map(|t| parse_devno(t, &k)).transpose()?;
        nets.push(net_from_parts(&n.kind, n.ifname, n.mac, devno, &k)?);
    }
    let console = file
        .console
        .as_deref()
        .map(|c| parse_console_named(c, &key("console"), base))
        .transpose()?;
    Ok(SpecInput {
        name: file.name,
        memory,
        smp: file.smp,
        accel: file.accel,
        pv_image: file.pv_image.map(rel),
        no_pv: file.pv.map(|pv| !pv),
        kernel: file.kernel.map(rel),
        initrd: file.initrd.map(rel),
        append: file.append,
        mdev: file.mdev,
        vfio_backend: file.vfio_backend,
        disks: (!disks.is_empty()).then_some(disks),
        nets: (!nets.is_empty()).then_some(nets),
        console,
        rng: file.rng,
        hugepages: file.hugepages,
        iommu_platform: file.iommu_platform,
        qmp: file.qmp.map(rel),
        // a bare name is a command looked up on PATH (as with --qemu), not a file beside
        // the config
        qemu: file.qemu.map(|q| if is_bare_name(&q) { q } else { rel(q) }),
        extra_args: file
            .extra_args
            .map(|v| v.into_iter().map(OsString::from).collect()),
        user: file.user,
        sandbox: file.sandbox,
    })
}

/// A program name without a directory (`qemu-system-s390x`), which is looked up on PATH.
pub fn is_bare_name(path: &Path) -> bool {
    !path.as_os_str().is_empty() && path.components().count() == 1 && path.is_relative()
}

// ---------------------------------------------------------------------------------------
// Flag value parsers.

/// Splits a QEMU-style option list: `,` separates, `,,` is a literal comma.
pub fn split_qemu_opts(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                parts.last_mut().expect("non-empty").push(',');
            } else {
                parts.push(String::new());
            }
        } else {
            parts.last_mut().expect("non-empty").push(c);
        }
    }
    parts
}

/// Parses `--disk PATH[,format=F][,readonly=on|off][,cache=C][,devno=fe.0.XXXX][,boot=on]`
/// (`,,` for a comma in PATH).
pub fn parse_disk_flag(text: &str) -> Result<Disk, SpecError> {
    let flag = &Source::flag("--disk");
    const USAGE: &str =
        "use --disk PATH[,format=raw|qcow2][,readonly=on][,cache=none][,devno=fe.0.XXXX][,boot=on]";
    let mut parts = split_qemu_opts(text).into_iter();
    let path = parts.next().unwrap_or_default();
    if path.is_empty() {
        return Err(SpecError::new(
            SpecErrorKind::EmptyPath,
            flag,
            format!("{text:?} has no path"),
        )
        .hint(USAGE));
    }
    let mut disk = Disk {
        path: PathBuf::from(path),
        format: "raw".into(),
        readonly: false,
        cache: None,
        devno: None,
        boot: false,
    };
    for opt in parts {
        let (k, v) = opt.split_once('=').unwrap_or((opt.as_str(), ""));
        let on_off = |key: &str| {
            parse_on_off(v).ok_or_else(|| {
                SpecError::new(
                    SpecErrorKind::Syntax,
                    flag,
                    format!("{key}={v:?} in {text:?} is not on or off"),
                )
                .hint(format!("use {key}=on or {key}=off"))
            })
        };
        match k {
            "format" => disk.format = v.to_string(),
            "readonly" => disk.readonly = on_off("readonly")?,
            "boot" => disk.boot = on_off("boot")?,
            "cache" => disk.cache = Some(v.to_string()),
            "devno" => disk.devno = Some(parse_devno(v, flag)?),
            _ => {
                return Err(
                    SpecError::new(SpecErrorKind::Syntax, flag, format!("unknown option {opt:?} in {text:?}")).hint(
                        "options are format=, readonly=, cache=, devno=, boot=; write a comma in the path as ,,",
                    ),
                )
            }
        }
    }
    check_disk(&disk, flag)?;
    Ok(disk)
}

fn parse_devno(text: &str, source: &Source) -> Result<Devno, SpecError> {
    Devno::parse(text).map_err(|m| {
        SpecError::new(SpecErrorKind::BadDevno, source, m).hint(
            "write devno=fe.0.XXXX (4 hex digits; subchannel sets fe.0 to fe.3); see the device numbers section of the README",
        )
    })
}

/// Parses `--console`: a device (`sclp`, `virtio`, `none`) and/or where its host side is
/// (`stdio`, `pty`, `socket:PATH`), comma-separated: `pty` is the SCLP console on a pty,
/// `virtio,socket:/run/vm.sock` a virtio console on a unix socket. Relative socket paths
/// are taken relative to `base` (the config file's directory, or the working directory).
pub fn parse_console(
    text: &str,
    source: &str,
    base: &Path,
) -> Result<(ConsoleKind, ConsoleBackend), SpecError> {
    parse_console_named(text, &Source::named(source), base)
}

fn parse_console_named(
    text: &str,
    source: &Source,
    base: &Path,
) -> Result<(ConsoleKind, ConsoleBackend), SpecError> {
    const USAGE: &str =
        "use --console sclp|virtio|none, optionally with pty or socket:PATH (e.g. `pty`, `virtio,socket:/run/vm1.console`)";
    let mut kind = None;
    let mut backend = None;
    for part in split_qemu_opts(text) {
        let (is_kind, value) = match part.as_str() {
            "sclp" => (true, Some(ConsoleKind::Sclp)),
            "virtio" => (true, Some(ConsoleKind::Virtio)),
            "none" => (true, Some(ConsoleKind::None)),
            _ => (false, None),
        };
        let backend_value = match part.as_str() {
            "stdio" => Some(ConsoleBackend::Stdio),
            "pty" => Some(ConsoleBackend::Pty),
            p => p
                .strip_prefix("socket:")
                .filter(|path| !path.is_empty())
                .map(|path| ConsoleBackend::Socket {
                    path: if Path::new(path).is_relative() {
                        base.join(path)
                    } else {
                        PathBuf::from(path)
                    },
                }),
        };
        let dup = if is_kind {
            kind.replace(value.expect("a kind")).is_some()
        } else if let Some(b) = backend_value {
            backend.replace(b).is_some()
        } else {
            return Err(SpecError::new(
                SpecErrorKind::BadConsole,
                source,
                format!("{part:?} in {text:?} is not a console"),
            )
            .hint(USAGE));
        };
        if dup {
            return Err(SpecError::new(
                SpecErrorKind::BadConsole,
                source,
                format!("{text:?} names two consoles"),
            )
            .hint(USAGE));
        }
    }
    let backend = backend.unwrap_or(ConsoleBackend::Stdio);
    if let ConsoleBackend::Socket { path } = &backend {
        check_path(path, source)?;
    }
    let kind = kind.unwrap_or(ConsoleKind::Sclp);
    if kind == ConsoleKind::None && backend != ConsoleBackend::Stdio {
        return Err(SpecError::new(
            SpecErrorKind::BadConsole,
            source,
            format!("{text:?} asks for no console and for a console backend"),
        )
        .hint(USAGE));
    }
    Ok((kind, backend))
}

/// Parses `--net user[,mac=M][,devno=D]` or `--net tap,ifname=IF[,mac=M][,devno=D]`.
pub fn parse_net_flag(text: &str) -> Result<Net, SpecError> {
    let flag = &Source::flag("--net");
    let mut parts = split_qemu_opts(text).into_iter();
    let kind = parts.next().unwrap_or_default();
    let (mut ifname, mut mac, mut devno) = (None, None, None);
    for opt in parts {
        match opt.split_once('=') {
            Some(("ifname", v)) => ifname = Some(v.to_string()),
            Some(("mac", v)) => mac = Some(v.to_string()),
            Some(("devno", v)) => devno = Some(parse_devno(v, flag)?),
            _ => {
                return Err(
                    SpecError::new(SpecErrorKind::Syntax, flag, format!("unknown option {opt:?} in {text:?}")).hint(
                        "use --net user[,mac=M][,devno=fe.0.XXXX] or --net tap,ifname=IF[,mac=M][,devno=fe.0.XXXX]",
                    ),
                )
            }
        }
    }
    net_from_parts(&kind, ifname, mac, devno, flag)
}

pub(crate) fn net_from_parts(
    kind: &str,
    ifname: Option<String>,
    mac: Option<String>,
    devno: Option<Devno>,
    source: &Source,
) -> Result<Net, SpecError> {
    let backend = match (kind, ifname) {
        ("user", None) => NetBackend::User,
        ("tap", Some(ifname)) => {
            let ok = !ifname.is_empty()
                && ifname.len() < 16
                && ifname
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(SpecError::new(
                    SpecErrorKind::BadIfname,
                    source,
                    format!("{ifname:?} is not a network interface name"),
                )
                .hint("an interface name has at most 15 characters of A-Z, a-z, 0-9, -, _ and ."));
            }
            NetBackend::Tap { ifname }
        }
        ("tap", None) => {
            return Err(SpecError::new(
                SpecErrorKind::TapWithoutIfname,
                source,
                "a tap NIC needs ifname",
            )
            .hint("use tap,ifname=tap0 (the tap interface must exist)"))
        }
        ("user", Some(_)) => {
            return Err(SpecError::new(
                SpecErrorKind::UserWithIfname,
                source,
                "a user NIC takes no ifname",
            )
            .hint("drop ifname, or use tap,ifname=IF"))
        }
        (other, _) => {
            return Err(SpecError::new(
                SpecErrorKind::UnknownNetType,
                source,
                format!("unknown network type {other:?}"),
            )
            .hint("the types are user and tap"))
        }
    };
    let mac = match mac {
        None => None,
        Some(m) => Some(
            Mac::parse(&m)
                .map_err(|e| {
                    SpecError::new(SpecErrorKind::BadMac, source, e).hint(
                        "write a unicast MAC as six hex pairs (first octet even, e.g. 52:54:00:12:34:56), or leave mac= out to get one derived from the guest name",
                    )
                })?
                .to_string(),
        ),
    };
    Ok(Net {
        backend,
        mac,
        devno,
    })
}

fn parse_on_off(v: &str) -> Option<bool> {
    match v {
        "on" | "true" | "yes" | "" => Some(true),
        "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// Image formats every QEMU build opens read-write, including those built with a format
/// whitelist (RHEL's qemu-kvm: `--block-drv-rw-whitelist`).
pub const DISK_FORMATS_RW: &[&str] = &["raw", "qcow2", "luks"];
/// QEMU's other image formats: only for `readonly=on` disks, since whitelisting builds open
/// them read-only or not at all.
pub const DISK_FORMATS_RO: &[&str] = &[
    "vmdk",
    "vhdx",
    "vpc",
    "qcow",
    "qed",
    "vdi",
    "parallels",
    "bochs",
    "cloop",
    "dmg",
];

pub(crate) fn check_disk(disk: &Disk, source: &Source) -> Result<(), SpecError> {
    check_path(&disk.path, source)?;
    let format = disk.format.as_str();
    if !DISK_FORMATS_RW.contains(&format) && !DISK_FORMATS_RO.contains(&format) {
        return Err(SpecError::new(
            SpecErrorKind::UnknownDiskFormat,
            source,
            format!(
                "format {format:?} is not a QEMU image format (read-write: {}; read-only: {})",
                DISK_FORMATS_RW.join(", "),
                DISK_FORMATS_RO.join(", ")
            ),
        )
        .hint("use format=raw or format=qcow2 (`qemu-img info FILE` shows an image's format)"));
    }
    if !disk.readonly && DISK_FORMATS_RO.contains(&format) {
        return Err(SpecError::new(SpecErrorKind::ReadOnlyFormat,
            source,
            format!(
                "format {format:?} is opened read-only by QEMU builds with a format whitelist (read-write: {})",
                DISK_FORMATS_RW.join(", ")
            ),
        )
        .hint(
            "convert it with `qemu-img convert -O qcow2 IMAGE NEW.qcow2`, or attach it with readonly=on",
        ));
    }
    if let Some(cache) = &disk.cache {
        if !["none", "writeback", "writethrough", "directsync", "unsafe"].contains(&cache.as_str())
        {
            return Err(SpecError::new(
                SpecErrorKind::UnknownCacheMode,
                source,
                format!("cache mode {cache:?} is unknown"),
            )
            .hint("use cache=none, writeback, writethrough, directsync or unsafe"));
        }
    }
    Ok(())
}

/// Paths go into QEMU options: commas are escaped, but a control character (a newline)
/// has no place in a path QEMU is given.
fn check_path(path: &Path, source: &Source) -> Result<(), SpecError> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(
            SpecError::new(SpecErrorKind::EmptyPath, source, "the path is empty")
                .hint("name a file"),
        );
    }
    if bytes.iter().any(|b| b.is_ascii_control()) {
        return Err(SpecError::new(
            SpecErrorKind::ControlCharInPath,
            source,
            format!("the path {:?} contains a control character", path),
        )
        .hint("rename the file: QEMU options cannot carry newlines or other control characters"));
    }
    Ok(())
}

/// Parses a memory size: `4G`, `4096M`, `4GiB`, `512MB`, or a plain number of MiB.
pub fn parse_memory(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("iB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(unit);
    let mib = match unit {
        "" | "M" | "m" => n,
        "G" | "g" => n.checked_mul(1024)?,
        "T" | "t" => n.checked_mul(1024 * 1024)?,
        "K" | "k" => {
            if n % 1024 != 0 {
                return None;
            }
            n / 1024
        }
        _ => return None,
    };
    Some(mib)
}

/// Where a field's value came from, for naming it in errors.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// The config file's name, when one was read.
    pub config: Option<String>,
    /// The spec as read from the config (to tell which fields it set).
    pub from_config: SpecInput,
    /// The flags (to tell which fields they set).
    pub from_flags: SpecInput,
}

/// Validates the merged input into a [`VmSpec`]. Errors name the flags and config keys
/// (`--smp`, `` key `smp` in vm.toml ``), as `aplaunch launch` prints them.
///
/// `default_qmp_dir` is where the QMP socket goes when neither `--qmp` nor `qmp` is given.
pub fn validate(
    input: SpecInput,
    origins: &Origins,
    default_qmp_dir: &Path,
) -> Result<VmSpec, SpecError> {
    validate_spoken(input, origins, Speaker::Cli, default_qmp_dir)
}

/// [`validate`], with errors spoken to `speaker`: for code, `origins.from_flags` holds what
/// the setters set and errors name the setters.
pub(crate) fn validate_spoken(
    input: SpecInput,
    origins: &Origins,
    speaker: Speaker,
    default_qmp_dir: &Path,
) -> Result<VmSpec, SpecError> {
    let config = origins.config.as_deref().unwrap_or("the config");
    // A field's error names the config key when only the config set it, else the flag
    // (or, for code, the setter).
    macro_rules! name {
        ($field:ident, $flag:expr, $key:expr, $setter:expr) => {{
            let source =
                if origins.from_flags.$field.is_none() && origins.from_config.$field.is_some() {
                    Source::key(format!("key `{}` in {config}", $key))
                } else if speaker.is_code() {
                    Source::setter($setter)
                } else {
                    Source::flag($flag)
                };
            source.spoken_to(speaker)
        }};
    }
    let memory_setter = match speaker {
        Speaker::Code { memory } => memory,
        Speaker::Cli => "Launch::memory",
    };
    let extra_args_source = if speaker.is_code() {
        Source::setter("Launch::extra_args")
    } else {
        Source::flag("extra QEMU arguments")
    };

    let mdev = match &input.mdev {
        None => None,
        Some(text) => Some(vfio::mdev_uuid::parse(text).ok_or_else(|| {
            SpecError::new(
                SpecErrorKind::BadMdevUuid,
                name!(mdev, "--mdev", "mdev", "Launch::mdev"),
                format!("{text:?} is not a UUID"),
            )
            .hint("give the mdev's UUID as in /sys/bus/mdev/devices (see `aplaunch ap list`)")
        })?),
    };

    let no_pv = input.no_pv.unwrap_or(false);
    let boot = if no_pv {
        if let Some(img) = &input.pv_image {
            return Err(SpecError::new(
                SpecErrorKind::ImageWithoutPv,
                name!(pv_image, "--pv-image", "pv-image", "Launch::secure"),
                format!(
                    "{} was given for a guest without Secure Execution {}",
                    img.display(),
                    speaker.say("(--no-pv)", "(a plain guest)")
                ),
            )
            .hint("drop --no-pv to boot the SE image, or drop --pv-image for a plain guest"));
        }
        for (p, n) in [
            (
                &input.kernel,
                name!(kernel, "--kernel", "kernel", "Launch::plain"),
            ),
            (
                &input.initrd,
                name!(initrd, "--initrd", "initrd", "Launch::initrd"),
            ),
        ] {
            if let Some(p) = p {
                check_path(p, &n)?;
            }
        }
        if let Some(a) = &input.append {
            if a.contains('\n') || a.contains('\0') {
                return Err(SpecError::new(
                    SpecErrorKind::NewlineInAppend,
                    name!(append, "--append", "append", "Launch::append"),
                    "the kernel command line contains a newline",
                )
                .hint("write the kernel command line on one line"));
            }
            if input.kernel.is_none() {
                return Err(SpecError::new(
                    SpecErrorKind::AppendWithoutKernel,
                    name!(append, "--append", "append", "Launch::append"),
                    speaker.say(
                        "a kernel command line without --kernel",
                        "a kernel command line for a guest that boots no kernel",
                    ),
                )
                .hint("add --kernel, or drop --append (a disk boots with its own command line)"));
            }
        }
        if input.initrd.is_some() && input.kernel.is_none() {
            return Err(SpecError::new(
                SpecErrorKind::InitrdWithoutKernel,
                name!(initrd, "--initrd", "initrd", "Launch::initrd"),
                speaker.say(
                    "an initrd without --kernel",
                    "an initrd for a guest that boots no kernel",
                ),
            )
            .hint("add --kernel, or drop --initrd"));
        }
        Boot::Plain {
            kernel: input.kernel.clone(),
            initrd: input.initrd.clone(),
            append: input.append.clone(),
        }
    } else {
        for (given, n) in [
            (
                input.kernel.is_some(),
                name!(kernel, "--kernel", "kernel", "Launch::plain"),
            ),
            (
                input.initrd.is_some(),
                name!(initrd, "--initrd", "initrd", "Launch::initrd"),
            ),
            (
                input.append.is_some(),
                name!(append, "--append", "append", "Launch::append"),
            ),
        ] {
            if given {
                return Err(SpecError::new(SpecErrorKind::SealedInImage,
                    n,
                    "cannot be used with a Secure Execution image: the kernel, initrd and command line are sealed inside it",
                )
                .hint("rebuild the SE image with pvimg/genprotimg to change them, or add --no-pv for a plain guest"));
            }
        }
        // Booting the SE image zipl wrote to a disk needs `--pv` (or `pv = true`) said
        // out loud: QEMU boots a disk without an SE image unprotected, without a word.
        let explicit_pv = input.no_pv == Some(false);
        let disk_boot = input.disks.as_ref().is_some_and(|d| !d.is_empty());
        let image = input.pv_image.clone();
        if image.is_none() && !(explicit_pv && disk_boot) {
            let source = if speaker.is_code() {
                Source::setter("Launch::secure_from_disk").spoken_to(speaker)
            } else {
                Source::flag("--pv-image")
            };
            return Err(SpecError::new(SpecErrorKind::MissingImage,
                source,
                "a Secure Execution guest needs its SE image",
            )
            .hint("add --pv-image IMG; or --pv with --disk to boot the SE image zipl wrote to that disk; or --no-pv (with --kernel or --disk) for a plain guest"));
        }
        if let Some(image) = &image {
            check_path(
                image,
                &name!(pv_image, "--pv-image", "pv-image", "Launch::secure"),
            )?;
        }
        Boot::Pv { image }
    };
    let pv = matches!(boot, Boot::Pv { .. });

    let accel = input.accel.unwrap_or(Accel::Kvm);
    if pv && accel == Accel::Tcg {
        return Err(SpecError::new(
            SpecErrorKind::PvNeedsKvm,
            name!(accel, "--accel", "accel", "Launch::accel"),
            "Secure Execution requires KVM; tcg cannot run a protected guest",
        )
        .hint("use --accel kvm, or --no-pv to test a plain guest under tcg"));
    }

    let name = input.name.clone().unwrap_or_else(|| match mdev {
        Some(u) => format!("aplaunch-{}", &u.simple().to_string()[..8]),
        None => "aplaunch".into(),
    });
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if !name_ok {
        return Err(SpecError::new(
            SpecErrorKind::BadName,
            name!(name, "--name", "name", "Launch::name"),
            format!("{name:?} is not a usable guest name"),
        )
        .hint("use 1 to 64 characters of A-Z, a-z, 0-9, -, _ and . (not starting with .)"));
    }

    let memory_mib = match &input.memory {
        None => DEFAULT_MEMORY_MIB,
        Some(text) => match parse_memory(text) {
            Some(m) if (MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&m) => m,
            _ => {
                return Err(SpecError::new(
                    SpecErrorKind::MemoryOutOfRange {
                        min_mib: MIN_MEMORY_MIB,
                        max_mib: MAX_MEMORY_MIB,
                    },
                    name!(memory, "--memory", "memory", memory_setter),
                    format!("{text:?} is not a memory size between 16M and 16T"),
                )
                .hint("write a size like 4G, 4096M or 4096 (MiB)"))
            }
        },
    };

    let smp = match input.smp {
        None => 1,
        Some(n) if (1..=u64::from(MAX_SMP)).contains(&n) => n as u32,
        Some(n) => {
            return Err(SpecError::new(
                SpecErrorKind::SmpOutOfRange { max: MAX_SMP },
                name!(smp, "--smp", "smp", "Launch::smp"),
                format!("{n} vCPUs is outside 1..={MAX_SMP}"),
            )
            .hint(format!("use --smp between 1 and {MAX_SMP}")))
        }
    };

    let vfio_backend = input.vfio_backend.unwrap_or(VfioBackend::Auto);
    if mdev.is_none() && input.vfio_backend.is_some_and(|b| b != VfioBackend::Auto) {
        return Err(SpecError::new(SpecErrorKind::VfioBackendWithoutMdev,
            name!(vfio_backend, "--vfio-backend", "vfio-backend", "Launch::vfio_backend"),
            speaker.say(
                "a VFIO backend was chosen but no --mdev was given",
                "a VFIO backend was chosen but no mdev was given",
            ),
        )
        .hint("add --mdev with the UUID of the crypto mdev (`aplaunch ap list` shows them), or drop --vfio-backend"));
    }
    if mdev.is_some() && accel == Accel::Tcg {
        return Err(SpecError::new(
            SpecErrorKind::MdevNeedsKvm,
            name!(mdev, "--mdev", "mdev", "Launch::mdev"),
            "a vfio-ap crypto device needs KVM; tcg has no AP passthrough",
        )
        .hint("use --accel kvm, or drop --mdev to test under tcg"));
    }

    let hugepages = input.hugepages.unwrap_or(false);
    if pv && hugepages {
        return Err(SpecError::new(
            SpecErrorKind::PvHugepages,
            name!(hugepages, "--hugepages", "hugepages", "Launch::hugepages"),
            "Secure Execution guests cannot be backed with huge pages",
        )
        .hint("drop --hugepages for a secure guest"));
    }

    if pv && input.iommu_platform == Some(false) {
        return Err(SpecError::new(
            SpecErrorKind::PvWithoutIommuPlatform,
            name!(
                iommu_platform,
                "--iommu-platform",
                "iommu-platform",
                "Launch::iommu_platform"
            ),
            "a Secure Execution guest's virtio devices always need iommu_platform=on",
        )
        .hint("drop iommu-platform = false for a secure guest"));
    }

    let qmp = match &input.qmp {
        Some(p) => {
            check_path(p, &name!(qmp, "--qmp", "qmp", "Launch::qmp"))?;
            p.clone()
        }
        None => default_qmp_dir.join(format!("{name}.qmp")),
    };
    if let Some(q) = &input.qemu {
        check_path(q, &name!(qemu, "--qemu", "qemu", "Launch::qemu"))?;
    }

    let extra_args = input.extra_args.clone().unwrap_or_default();
    if pv {
        check_extra_args_for_pv(&extra_args, &extra_args_source)?;
    }

    let disks = input.disks.clone().unwrap_or_default();
    let boot_disk = boot_disk(
        &boot,
        &disks,
        &name!(disks, "--disk", "disk", "Launch::disk"),
        speaker,
    )?;
    let (console, console_backend) = input
        .console
        .clone()
        .unwrap_or((ConsoleKind::Sclp, ConsoleBackend::Stdio));
    if let ConsoleBackend::Socket { path } = &console_backend {
        if *path == qmp {
            return Err(SpecError::new(
                SpecErrorKind::ConsoleIsQmpSocket,
                name!(console, "--console", "console", "Launch::console"),
                format!(
                    "the console socket {} is also the QMP socket",
                    path.display()
                ),
            )
            .hint("give the console its own socket path"));
        }
    }
    let rng = input.rng.unwrap_or(false);
    let mut nets = input.nets.clone().unwrap_or_default();
    let devnos = device_numbers(
        &disks,
        &nets,
        console == ConsoleKind::Virtio,
        rng,
        &extra_args,
        &extra_args_source,
        |field| match field {
            "disk" => name!(disks, "--disk", "disk", "Launch::disk"),
            "net" => name!(nets, "--net", "net", "Launch::net"),
            "console" => name!(console, "--console", "console", "Launch::console"),
            _ => name!(rng, "--rng", "rng", "Launch::rng"),
        },
    )?;
    for (net, devno) in nets.iter_mut().zip(&devnos.nets) {
        if net.mac.is_none() {
            net.mac = Some(Mac::derived(&name, *devno).to_string());
        }
    }

    let user = match &input.user {
        Some(u) if !valid_user_name(u) => {
            return Err(SpecError::new(
                SpecErrorKind::BadUser,
                name!(user, "--user", "user", "Launch::user"),
                format!("{u:?} is not a user name"),
            )
            .hint("give the name of an existing unprivileged user, e.g. --user qemu"))
        }
        other => other.clone(),
    };

    Ok(VmSpec {
        name,
        memory_mib,
        smp,
        accel,
        boot,
        mdev,
        vfio_backend,
        disks,
        nets,
        console,
        console_backend,
        devnos,
        boot_disk,
        rng,
        hugepages,
        iommu_platform: pv || input.iommu_platform.unwrap_or(false),
        qmp,
        qemu: input.qemu.clone(),
        qemu_source: name!(qemu, "--qemu", "qemu", "Launch::qemu").name,
        extra_args,
        user,
        sandbox: input.sandbox.unwrap_or(true),
    })
}

/// A POSIX portable user name (letters, digits, `.`, `_`, `-`, not starting with `-`),
/// at most 32 bytes: nothing QEMU's option parser or a shell could read otherwise.
fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The disk that gets `bootindex=1`: the one marked `boot=on`, else the first when no
/// kernel is booted. A secure guest with an SE image boots the image unless a disk is marked.
fn boot_disk(
    boot: &Boot,
    disks: &[Disk],
    source: &Source,
    speaker: Speaker,
) -> Result<Option<usize>, SpecError> {
    let marked: Vec<usize> = (0..disks.len()).filter(|&i| disks[i].boot).collect();
    if marked.len() > 1 {
        return Err(SpecError::new(
            SpecErrorKind::TwoBootDisks,
            source,
            format!(
                "disks #{} and #{} are both marked {}",
                marked[0] + 1,
                marked[1] + 1,
                speaker.say("boot=on", "as the boot disk"),
            ),
        )
        .hint("mark one disk with boot=on"));
    }
    let kernel = match boot {
        Boot::Pv { image } => image.is_some(),
        Boot::Plain { kernel, .. } => kernel.is_some(),
    };
    if let (Some(&i), true) = (marked.first(), kernel) {
        if matches!(boot, Boot::Plain { .. }) {
            return Err(SpecError::new(
                SpecErrorKind::BootDiskWithKernel,
                source,
                format!(
                    "disk #{} is marked {} but {} boots the guest",
                    i + 1,
                    speaker.say("boot=on", "as the boot disk"),
                    speaker.say("--kernel", "a kernel"),
                ),
            )
            .hint("drop boot=on, or drop --kernel to boot from the disk"));
        }
    }
    Ok(match marked.first() {
        Some(&i) => Some(i),
        None if kernel || disks.is_empty() => None,
        None => Some(0),
    })
}

/// Numbers every virtio-ccw device (see [`crate::devno`]); `source` names the flag or key
/// of a field (`disk`, `net`, `console`, `rng`) for errors.
fn device_numbers(
    disks: &[Disk],
    nets: &[Net],
    virtio_console: bool,
    rng: bool,
    extra_args: &[OsString],
    extra_args_source: &Source,
    source: impl Fn(&str) -> Source,
) -> Result<DeviceNumbers, SpecError> {
    use devno::{Kind, Request};
    let mut requests = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        requests.push(Request {
            kind: Kind::Disk,
            given: d.devno,
            label: format!("{} #{} ({})", source("disk").name, i + 1, d.path.display()),
        });
    }
    for (i, n) in nets.iter().enumerate() {
        let what = match &n.backend {
            NetBackend::User => "user".to_string(),
            NetBackend::Tap { ifname } => format!("tap {ifname}"),
        };
        requests.push(Request {
            kind: Kind::Net,
            given: n.devno,
            label: format!("{} #{} ({what})", source("net").name, i + 1),
        });
    }
    if virtio_console {
        requests.push(Request {
            kind: Kind::Serial,
            given: None,
            label: format!("the virtio console ({})", source("console").name),
        });
    }
    if rng {
        requests.push(Request {
            kind: Kind::Rng,
            given: None,
            label: format!("the rng ({})", source("rng").name),
        });
    }
    let mut numbers = devno::assign(&requests)
        .map_err(|e| {
            let at = match &e {
                devno::AssignError::Collision { second, .. } => second,
                devno::AssignError::RangeFull { label } => label,
            };
            let field = requests
                .iter()
                .find(|r| &r.label == at)
                .map(|r| match r.kind {
                    Kind::Disk => "disk",
                    Kind::Net => "net",
                    Kind::Serial => "console",
                    Kind::Rng => "rng",
                })
                .unwrap_or("disk");
            let kind = match &e {
                devno::AssignError::Collision { .. } => SpecErrorKind::DevnoCollision,
                devno::AssignError::RangeFull { .. } => SpecErrorKind::DevnoRangeFull,
            };
            SpecError::new(kind, source(field), e.to_string()).hint(
                "give one of them another devno=fe.0.XXXX (disks are numbered from fe.0.0000, NICs from fe.0.1000, the virtio console fe.0.2000, the rng fe.0.3000)",
            )
        })?
        .into_iter();
    for extra in devno::in_extra_args(extra_args) {
        if let Some(i) = requests
            .iter()
            .zip(numbers.clone())
            .position(|(_, n)| n == extra)
        {
            return Err(SpecError::new(
                SpecErrorKind::DevnoInExtraArgs,
                extra_args_source,
                format!(
                    "devno={extra} in the extra arguments is also {}'s device number",
                    requests[i].label
                ),
            )
            .hint("give the extra device another devno, or that device devno=fe.0.XXXX"));
        }
    }
    let mut take = |n: usize| numbers.by_ref().take(n).collect::<Vec<_>>();
    let disks = take(disks.len());
    let nets = take(nets.len());
    Ok(DeviceNumbers {
        disks,
        nets,
        serial: virtio_console.then(|| take(1)[0]),
        rng: rng.then(|| take(1)[0]),
    })
}

/// A secure guest's extra QEMU arguments must not add a balloon or huge-page backing.
fn check_extra_args_for_pv(args: &[OsString], source: &Source) -> Result<(), SpecError> {
    for arg in args {
        let a = arg.to_string_lossy();
        if a.contains("virtio-balloon") {
            return Err(SpecError::new(
                SpecErrorKind::BalloonInExtraArgs,
                source,
                format!("{a:?} adds a memory balloon, which a Secure Execution guest cannot use"),
            )
            .hint("remove the balloon device: the ultravisor fences it for protected guests"));
        }
        if a == "-mem-path" || a == "--mem-path" || a.contains("hugetlb") || a.contains("hugepages")
        {
            return Err(SpecError::new(
                SpecErrorKind::HugepagesInExtraArgs,
                source,
                format!(
                    "{a:?} asks for huge-page backing, which a Secure Execution guest cannot use"
                ),
            )
            .hint("remove the huge-page memory backend for a secure guest"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

    fn pv_input() -> SpecInput {
        SpecInput {
            pv_image: Some("/img/se.img".into()),
            mdev: Some(UUID.into()),
            ..SpecInput::default()
        }
    }

    fn flags_only(input: SpecInput) -> Result<VmSpec, SpecError> {
        let origins = Origins {
            config: None,
            from_config: SpecInput::default(),
            from_flags: input.clone(),
        };
        validate(input, &origins, Path::new("/run/aplaunch"))
    }

    #[test]
    fn defaults_for_a_secure_guest() {
        let spec = flags_only(pv_input()).unwrap();
        assert_eq!(spec.name, "aplaunch-62177883");
        assert_eq!(spec.memory_mib, 2048);
        assert_eq!(spec.smp, 1);
        assert_eq!(
            spec.qmp,
            PathBuf::from("/run/aplaunch/aplaunch-62177883.qmp")
        );
        assert!(spec.is_pv());
        assert_eq!(spec.pv_image(), Some(Path::new("/img/se.img")));
    }

    #[test]
    fn sealed_options_are_refused_with_pv() {
        for (input, flag) in [
            (
                SpecInput {
                    initrd: Some("/i".into()),
                    ..pv_input()
                },
                "--initrd",
            ),
            (
                SpecInput {
                    append: Some("x".into()),
                    ..pv_input()
                },
                "--append",
            ),
            (
                SpecInput {
                    kernel: Some("/k".into()),
                    ..pv_input()
                },
                "--kernel",
            ),
        ] {
            let e = flags_only(input).unwrap_err();
            assert_eq!(e.source_name, flag);
            assert!(e.message.contains("sealed"), "{e}");
        }
    }

    #[test]
    fn conflicting_and_bad_values_name_the_flag() {
        let cases: Vec<(SpecInput, &str)> = vec![
            (
                SpecInput {
                    mdev: Some("nope".into()),
                    ..pv_input()
                },
                "--mdev",
            ),
            (
                SpecInput {
                    mdev: Some(UUID.replace('-', "")),
                    ..pv_input()
                },
                "--mdev",
            ),
            (
                SpecInput {
                    no_pv: Some(true),
                    ..pv_input()
                },
                "--pv-image",
            ),
            (
                SpecInput {
                    accel: Some(Accel::Tcg),
                    ..pv_input()
                },
                "--accel",
            ),
            (
                SpecInput {
                    smp: Some(0),
                    ..pv_input()
                },
                "--smp",
            ),
            (
                SpecInput {
                    smp: Some(249),
                    ..pv_input()
                },
                "--smp",
            ),
            (
                SpecInput {
                    memory: Some("lots".into()),
                    ..pv_input()
                },
                "--memory",
            ),
            (
                SpecInput {
                    name: Some("a b".into()),
                    ..pv_input()
                },
                "--name",
            ),
            (
                SpecInput {
                    hugepages: Some(true),
                    ..pv_input()
                },
                "--hugepages",
            ),
            (
                SpecInput {
                    pv_image: Some("/a\nb".into()),
                    ..pv_input()
                },
                "--pv-image",
            ),
            (
                SpecInput {
                    qmp: Some("/q\n".into()),
                    ..pv_input()
                },
                "--qmp",
            ),
            (
                SpecInput {
                    pv_image: None,
                    ..pv_input()
                },
                "--pv-image",
            ),
            (
                SpecInput {
                    vfio_backend: Some(VfioBackend::Group),
                    mdev: None,
                    ..pv_input()
                },
                "--vfio-backend",
            ),
            (
                SpecInput {
                    extra_args: Some(vec!["-device".into(), "virtio-balloon-ccw".into()]),
                    ..pv_input()
                },
                "extra QEMU arguments",
            ),
            (
                SpecInput {
                    extra_args: Some(vec!["-mem-path".into(), "/dev/hugepages".into()]),
                    ..pv_input()
                },
                "extra QEMU arguments",
            ),
            (
                SpecInput {
                    no_pv: Some(true),
                    pv_image: None,
                    append: Some("x".into()),
                    ..pv_input()
                },
                "--append",
            ),
            (
                SpecInput {
                    no_pv: Some(true),
                    pv_image: None,
                    accel: Some(Accel::Tcg),
                    ..pv_input()
                },
                "--mdev",
            ),
        ];
        for (input, flag) in cases {
            let e = flags_only(input.clone()).unwrap_err();
            assert_eq!(e.source_name, flag, "{input:?}: {e}");
            assert!(e.hint.is_some(), "{e}");
        }
    }

    #[test]
    fn a_plain_guest_takes_kernel_initrd_append_and_balloons() {
        let spec = flags_only(SpecInput {
            no_pv: Some(true),
            kernel: Some("/k".into()),
            initrd: Some("/i".into()),
            append: Some("console=ttysclp0".into()),
            extra_args: Some(vec!["-device".into(), "virtio-balloon-ccw".into()]),
            accel: Some(Accel::Tcg),
            hugepages: Some(true),
            ..SpecInput::default()
        })
        .unwrap();
        assert!(!spec.is_pv());
        assert_eq!(spec.name, "aplaunch");
        assert!(spec.hugepages);
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("4G"), Some(4096));
        assert_eq!(parse_memory("4GiB"), Some(4096));
        assert_eq!(parse_memory("512M"), Some(512));
        assert_eq!(parse_memory("512MB"), Some(512));
        assert_eq!(parse_memory("1024"), Some(1024));
        assert_eq!(parse_memory("1T"), Some(1024 * 1024));
        assert_eq!(parse_memory("2048K"), Some(2));
        assert_eq!(parse_memory("1000K"), None);
        assert_eq!(parse_memory("4X"), None);
        assert_eq!(parse_memory(""), None);
    }

    #[test]
    fn disk_and_net_flags() {
        let d = parse_disk_flag("/v/a,,b c.img,format=qcow2,readonly=on,cache=none").unwrap();
        assert_eq!(d.path, PathBuf::from("/v/a,b c.img"));
        assert_eq!(d.format, "qcow2");
        assert!(d.readonly);
        assert_eq!(d.cache.as_deref(), Some("none"));
        assert_eq!(
            parse_disk_flag("/x,bogus=1").unwrap_err().source_name,
            "--disk"
        );
        assert!(parse_disk_flag(",format=raw").is_err());
        assert!(parse_disk_flag("/x,cache=fast").is_err());
        assert!(parse_disk_flag("/x,format=a;b").is_err());
        let n = parse_net_flag("tap,ifname=tap0,mac=52:54:00:12:34:56").unwrap();
        assert_eq!(
            n.backend,
            NetBackend::Tap {
                ifname: "tap0".into()
            }
        );
        assert_eq!(parse_net_flag("user").unwrap().backend, NetBackend::User);
        for bad in [
            "tap",
            "user,ifname=x",
            "wifi",
            "user,mac=zz",
            "tap,ifname=a,b",
        ] {
            assert_eq!(
                parse_net_flag(bad).unwrap_err().source_name,
                "--net",
                "{bad}"
            );
        }
    }

    #[test]
    fn config_file_and_flag_override() {
        let text = r#"
name = "cfg"
memory = "1G"
smp = 2
pv-image = "se.img"
mdev = "62177883-f1bb-47f0-914d-32a22e3a8804"
vfio-backend = "group"
console = "virtio"
rng = true
qmp = "/run/x.qmp"
extra-args = ["-d", "guest_errors"]

[[disk]]
path = "disk,1.img"
format = "qcow2"
readonly = true

[[net]]
type = "tap"
ifname = "tap0"
"#;
        let cfg = parse_config(text, "vm.toml", Path::new("/etc/vms")).unwrap();
        assert_eq!(cfg.pv_image, Some(PathBuf::from("/etc/vms/se.img")));
        assert_eq!(
            cfg.disks.as_ref().unwrap()[0].path,
            PathBuf::from("/etc/vms/disk,1.img")
        );
        let flags = SpecInput {
            smp: Some(4),
            ..SpecInput::default()
        };
        let merged = cfg.clone().overridden_by(flags.clone());
        let origins = Origins {
            config: Some("vm.toml".into()),
            from_config: cfg,
            from_flags: flags,
        };
        let spec = validate(merged, &origins, Path::new("/run")).unwrap();
        assert_eq!(spec.smp, 4);
        assert_eq!(spec.memory_mib, 1024);
        assert_eq!(spec.name, "cfg");
        assert_eq!(spec.console, ConsoleKind::Virtio);
        assert_eq!(spec.vfio_backend, VfioBackend::Group);
        assert!(spec.rng);
        assert_eq!(
            spec.extra_args,
            vec![OsString::from("-d"), "guest_errors".into()]
        );

        // An error in a value the config set names the config key.
        let cfg = parse_config("smp = 999\npv-image = \"/i\"", "vm.toml", Path::new("/")).unwrap();
        let origins = Origins {
            config: Some("vm.toml".into()),
            from_config: cfg.clone(),
            from_flags: SpecInput::default(),
        };
        let e = validate(cfg, &origins, Path::new("/run")).unwrap_err();
        assert_eq!(e.source_name, "key `smp` in vm.toml");
    }

    #[test]
    fn flags_and_config_keys_give_the_rule_and_the_origin_with_the_command_lines_hints() {
        let e = parse_disk_flag("/a.img,devno=fe.9.zz").unwrap_err();
        assert_eq!(
            (e.kind, e.origin, e.source_name.as_str()),
            (SpecErrorKind::BadDevno, InputOrigin::Flag, "--disk")
        );
        let e = parse_disk_flag("/a.img,bootable").unwrap_err();
        assert_eq!(e.kind, SpecErrorKind::Syntax);
        let e = parse_net_flag("tap").unwrap_err();
        assert_eq!(e.kind, SpecErrorKind::TapWithoutIfname);
        let e = parse_net_flag("user,mac=01:00:00:00:00:01").unwrap_err();
        assert_eq!(e.kind, SpecErrorKind::BadMac);
        let e = parse_console("sclp,virtio", "--console", Path::new("")).unwrap_err();
        assert_eq!(
            (e.kind, e.origin),
            (SpecErrorKind::BadConsole, InputOrigin::Flag)
        );

        let text = "[[disk]]\npath = \"/a.img\"\ndevno = \"x\"\n";
        let e = parse_config(text, "vm.toml", Path::new("/")).unwrap_err();
        assert_eq!(
            (e.kind, e.origin, e.source_name.as_str()),
            (
                SpecErrorKind::BadDevno,
                InputOrigin::ConfigKey,
                "key `disk[0]` in vm.toml"
            )
        );
        let e = parse_config("console = \"sclp,virtio\"", "vm.toml", Path::new("/")).unwrap_err();
        assert_eq!(
            (e.kind, e.origin),
            (SpecErrorKind::BadConsole, InputOrigin::ConfigKey)
        );
        let e = parse_config("vcpus = 2", "vm.toml", Path::new("/")).unwrap_err();
        assert_eq!(
            (e.kind, e.origin, e.source_name.as_str()),
            (
                SpecErrorKind::ConfigInvalid,
                InputOrigin::ConfigKey,
                "key `vcpus` in vm.toml"
            )
        );
        let e = load_config(Path::new("/nonexistent/vm.toml")).unwrap_err();
        assert_eq!(
            (e.kind, e.origin, e.source_name.as_str()),
            (
                SpecErrorKind::ConfigUnreadable,
                InputOrigin::Flag,
                "--config"
            )
        );

        // validate: the kind whichever names the input; the hint is the command line's.
        let cfg = parse_config("smp = 999\npv-image = \"/i\"", "vm.toml", Path::new("/")).unwrap();
        let origins = Origins {
            config: Some("vm.toml".into()),
            from_config: cfg.clone(),
            from_flags: SpecInput::default(),
        };
        let e = validate(cfg, &origins, Path::new("/run")).unwrap_err();
        assert_eq!(e.kind, SpecErrorKind::SmpOutOfRange { max: MAX_SMP });
        assert_eq!(e.origin, InputOrigin::ConfigKey);
        assert_eq!(e.hint.as_deref(), Some("use --smp between 1 and 248"));
        let e = flags_only(SpecInput {
            smp: Some(0),
            ..pv_input()
        })
        .unwrap_err();
        assert_eq!(
            (e.kind, e.origin, e.source_name.as_str()),
            (
                SpecErrorKind::SmpOutOfRange { max: MAX_SMP },
                InputOrigin::Flag,
                "--smp"
            )
        );
        assert_eq!(e.hint.as_deref(), Some("use --smp between 1 and 248"));
        let e = flags_only(SpecInput {
            memory: Some("12".into()),
            ..pv_input()
        })
        .unwrap_err();
        assert_eq!(
            e.kind,
            SpecErrorKind::MemoryOutOfRange {
                min_mib: 16,
                max_mib: 16 * 1024 * 1024
            }
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("write a size like 4G, 4096M or 4096 (MiB)")
        );
    }

    #[test]
    fn config_rejects_unknown_keys_and_bad_types() {
        let e = parse_config("name = \"a\"\nsmpp = 2\n", "vm.toml", Path::new("/")).unwrap_err();
        assert_eq!(e.source_name, "key `smpp` in vm.toml");
        assert!(e.message.contains("line 2"), "{e}");
        let e = parse_config(
            "[[disk]]\npath = \"/a\"\nsize = 3\n",
            "vm.toml",
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(e.source_name, "key `size` in vm.toml");
        let e = parse_config("smp = \"two\"\n", "vm.toml", Path::new("/")).unwrap_err();
        assert_eq!(e.source_name, "vm.toml");
        let e = parse_config("[[net]]\ntype = \"tap\"\n", "vm.toml", Path::new("/")).unwrap_err();
        assert_eq!(e.source_name, "key `net[0]` in vm.toml");
        let e = parse_config("accel = \"hvf\"\n", "vm.toml", Path::new("/")).unwrap_err();
        assert!(e.message.contains("hvf"), "{e}");
    }

    #[test]
    fn the_documented_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vm.toml");
        let cfg = load_config(&path).unwrap();
        let origins = Origins {
            config: Some("vm.toml".into()),
            from_config: cfg.clone(),
            from_flags: SpecInput::default(),
        };
        let spec = validate(cfg, &origins, Path::new("/run")).unwrap();
        assert_eq!(spec.name, "secure1");
        assert!(spec.pv_image().unwrap().ends_with("images/demo-se.img"));
        assert_eq!(spec.disks.len(), 2);
        assert_eq!(spec.nets.len(), 1);
        assert!(spec.rng && spec.iommu_platform);
    }

    fn disks(flags: &[&str]) -> Option<Vec<Disk>> {
        Some(flags.iter().map(|d| parse_disk_flag(d).unwrap()).collect())
    }

    fn nets(flags: &[&str]) -> Option<Vec<Net>> {
        Some(flags.iter().map(|n| parse_net_flag(n).unwrap()).collect())
    }

    #[test]
    fn every_virtio_ccw_device_is_numbered_and_a_new_disk_moves_no_nic() {
        let one = flags_only(SpecInput {
            disks: disks(&["/a.img"]),
            nets: nets(&["user", "tap,ifname=tap0"]),
            rng: Some(true),
            console: Some((ConsoleKind::Virtio, ConsoleBackend::Stdio)),
            ..pv_input()
        })
        .unwrap();
        assert_eq!(one.devnos.disks, [Devno::new(0)]);
        assert_eq!(one.devnos.nets, [Devno::new(0x1000), Devno::new(0x1001)]);
        assert_eq!(one.devnos.serial, Some(Devno::new(0x2000)));
        assert_eq!(one.devnos.rng, Some(Devno::new(0x3000)));
        // The user adds a disk in front of the others: the NICs keep number and MAC.
        let two = flags_only(SpecInput {
            disks: disks(&["/new.img", "/a.img"]),
            nets: nets(&["user", "tap,ifname=tap0"]),
            rng: Some(true),
            console: Some((ConsoleKind::Virtio, ConsoleBackend::Stdio)),
            ..pv_input()
        })
        .unwrap();
        assert_eq!(two.devnos.nets, one.devnos.nets);
        assert_eq!(two.nets, one.nets);
        assert_eq!(two.devnos.rng, one.devnos.rng);
        // ...and the disk that must not move pins its number.
        let pinned = flags_only(SpecInput {
            disks: disks(&["/new.img", "/a.img,devno=fe.0.0000"]),
            ..pv_input()
        });
        let e = pinned.unwrap_err();
        assert_eq!(e.source_name, "--disk");
        assert!(
            e.message.contains("--disk #1 (/new.img)") && e.message.contains("--disk #2 (/a.img)"),
            "{e}"
        );
        assert!(e.message.contains("fe.0.0000"), "{e}");
        let pinned = flags_only(SpecInput {
            disks: disks(&["/new.img,devno=fe.0.0100", "/a.img,devno=fe.0.0000"]),
            ..pv_input()
        })
        .unwrap();
        assert_eq!(pinned.devnos.disks, [Devno::new(0x100), Devno::new(0)]);
        // A NIC pinned onto the rng's number names both.
        let e = flags_only(SpecInput {
            nets: nets(&["user,devno=fe.0.3000"]),
            rng: Some(true),
            ..pv_input()
        })
        .unwrap_err();
        assert!(
            e.message.contains("--net #1") && e.message.contains("the rng"),
            "{e}"
        );
        // A devno in the extra arguments is checked too.
        let e = flags_only(SpecInput {
            nets: nets(&["user"]),
            extra_args: Some(vec![
                "-device".into(),
                "virtio-net-ccw,devno=fe.0.1000".into(),
            ]),
            ..pv_input()
        })
        .unwrap_err();
        assert_eq!(e.source_name, "extra QEMU arguments");
        for bad in ["/a,devno=0.0.0001", "/a,devno=fe.0.12345", "/a,devno="] {
            assert_eq!(
                parse_disk_flag(bad).unwrap_err().source_name,
                "--disk",
                "{bad}"
            );
        }
    }

    #[test]
    fn nics_get_a_mac_from_the_guest_name_and_multicast_is_refused() {
        let spec = flags_only(SpecInput {
            name: Some("secure1".into()),
            nets: nets(&["user", "user,devno=fe.0.1001", "user,mac=52:54:00:aa:bb:cc"]),
            ..pv_input()
        })
        .unwrap();
        let macs: Vec<&str> = spec
            .nets
            .iter()
            .map(|n| n.mac.as_deref().unwrap())
            .collect();
        assert_eq!(
            macs[0],
            Mac::derived("secure1", Devno::new(0x1000)).to_string()
        );
        // The second NIC's devno was given as its scheme number: same MAC either way.
        assert_eq!(
            macs[1],
            Mac::derived("secure1", Devno::new(0x1001)).to_string()
        );
        assert_eq!(macs[2], "52:54:00:aa:bb:cc");
        assert_ne!(macs[0], macs[1]);
        let other = flags_only(SpecInput {
            name: Some("secure2".into()),
            nets: nets(&["user"]),
            ..pv_input()
        })
        .unwrap();
        assert_ne!(other.nets[0].mac.as_deref(), Some(macs[0]));
        let e = parse_net_flag("user,mac=01:00:5e:00:00:01").unwrap_err();
        assert!(e.message.contains("multicast"), "{e}");
        let e = parse_config(
            "[[net]]\ntype = \"user\"\nmac = \"ff:ff:ff:ff:ff:ff\"\n",
            "vm.toml",
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(e.source_name, "key `net[0]` in vm.toml");
    }

    #[test]
    fn console_devices_and_backends() {
        let base = Path::new("/etc/vms");
        let p = |t: &str| parse_console(t, "--console", base);
        assert_eq!(
            p("sclp").unwrap(),
            (ConsoleKind::Sclp, ConsoleBackend::Stdio)
        );
        assert_eq!(p("pty").unwrap(), (ConsoleKind::Sclp, ConsoleBackend::Pty));
        assert_eq!(
            p("virtio,socket:/run/vm,,1.console").unwrap(),
            (
                ConsoleKind::Virtio,
                ConsoleBackend::Socket {
                    path: "/run/vm,1.console".into()
                }
            )
        );
        assert_eq!(
            p("socket:vm1.console").unwrap().1,
            ConsoleBackend::Socket {
                path: "/etc/vms/vm1.console".into()
            }
        );
        for bad in [
            "serial",
            "pty,pty",
            "sclp,virtio",
            "none,pty",
            "socket:",
            "tcp:1",
        ] {
            assert_eq!(p(bad).unwrap_err().source_name, "--console", "{bad}");
        }
        let e = flags_only(SpecInput {
            qmp: Some("/run/x.sock".into()),
            console: Some(p("socket:/run/x.sock").unwrap()),
            ..pv_input()
        })
        .unwrap_err();
        assert_eq!(e.source_name, "--console");
        let cfg = parse_config(
            "console = \"virtio,pty\"\npv-image = \"/i\"\n",
            "vm.toml",
            base,
        )
        .unwrap();
        assert_eq!(
            cfg.console,
            Some((ConsoleKind::Virtio, ConsoleBackend::Pty))
        );
        let e = parse_config("console = \"serial\"\n", "vm.toml", base).unwrap_err();
        assert_eq!(e.source_name, "key `console` in vm.toml");
    }

    #[test]
    fn a_secure_guest_boots_from_its_disk_with_pv_said_out_loud() {
        let from_disk = SpecInput {
            no_pv: Some(false),
            pv_image: None,
            disks: disks(&["/vm/root.qcow2,format=qcow2", "/vm/data.img"]),
            ..pv_input()
        };
        let spec = flags_only(from_disk.clone()).unwrap();
        assert!(spec.is_pv());
        assert_eq!(spec.boot_disk, Some(0));
        assert_eq!(spec.pv_image(), None);
        assert_eq!(spec.pv_kernel(), None);
        // Without --pv a missing SE image stays an error (a disk without one would boot
        // unprotected), and the hint names --pv.
        let e = flags_only(SpecInput {
            no_pv: None,
            ..from_disk.clone()
        })
        .unwrap_err();
        assert_eq!(e.source_name, "--pv-image");
        assert!(e.hint.unwrap().contains("--pv"));
        // boot=on picks the disk; --pv-image then names the image to verify, not to boot.
        let verified = flags_only(SpecInput {
            pv_image: Some("/img/se.img".into()),
            disks: disks(&["/vm/data.img", "/vm/root.qcow2,format=qcow2,boot=on"]),
            ..from_disk.clone()
        })
        .unwrap();
        assert_eq!(verified.boot_disk, Some(1));
        assert_eq!(verified.pv_image(), Some(Path::new("/img/se.img")));
        assert_eq!(verified.pv_kernel(), None);
        // With an SE image and no marked disk the image boots, as before.
        let kernel = flags_only(SpecInput {
            disks: disks(&["/vm/data.img"]),
            ..pv_input()
        })
        .unwrap();
        assert_eq!(kernel.boot_disk, None);
        assert_eq!(kernel.pv_kernel(), Some(Path::new("/img/se.img")));
        let e = flags_only(SpecInput {
            disks: disks(&["/a,boot=on", "/b,boot=on"]),
            ..from_disk.clone()
        })
        .unwrap_err();
        assert_eq!(e.source_name, "--disk");
        // The config equivalent: pv = true and a [[disk]].
        let cfg = parse_config(
            "pv = true\nmdev = \"62177883-f1bb-47f0-914d-32a22e3a8804\"\n[[disk]]\npath = \"root.qcow2\"\nformat = \"qcow2\"\n",
            "vm.toml",
            Path::new("/etc/vms"),
        )
        .unwrap();
        let origins = Origins {
            config: Some("vm.toml".into()),
            from_config: cfg.clone(),
            from_flags: SpecInput::default(),
        };
        let spec = validate(cfg, &origins, Path::new("/run")).unwrap();
        assert_eq!(spec.boot_disk, Some(0));
        assert!(spec.is_pv());
    }

    #[test]
    fn disk_formats_are_qemus() {
        assert!(parse_disk_flag("/a,format=qcow2").is_ok());
        assert!(parse_disk_flag("/a,format=luks").is_ok());
        let e = parse_disk_flag("/a,format=vmdk").unwrap_err();
        assert!(
            e.message.contains("read-only") && e.message.contains("raw, qcow2, luks"),
            "{e}"
        );
        assert!(e.hint.unwrap().contains("qemu-img convert"));
        assert!(parse_disk_flag("/a,format=vmdk,readonly=on").is_ok());
        let e = parse_disk_flag("/a,format=qcow3").unwrap_err();
        assert!(
            e.message.contains("not a QEMU image format") && e.message.contains("vmdk"),
            "{e}"
        );
        let e = parse_config(
            "[[disk]]\npath = \"/a\"\nformat = \"img\"\n",
            "vm.toml",
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(e.source_name, "key `disk[0]` in vm.toml");
    }

    #[test]
    fn opts_splitting() {
        assert_eq!(split_qemu_opts("a,,b,c"), vec!["a,b", "c"]);
        assert_eq!(split_qemu_opts(""), vec![""]);
        assert_eq!(split_qemu_opts("a,"), vec!["a", ""]);
    }
}
