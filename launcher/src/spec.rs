//! The VM spec: what to launch, from flags and a TOML config file (flags override it),
//! validated into one [`VmSpec`] before anything runs.
//!
//! Every error names the flag (`--smp`) or the config key (`smp` in `vm.toml`) it is about.

use serde::Deserialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Largest vCPU count QEMU's s390-ccw-virtio machine accepts.
pub const MAX_SMP: u32 = 248;
/// Default guest memory in MiB.
pub const DEFAULT_MEMORY_MIB: u64 = 2048;

/// A spec that could not be validated: which input, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct SpecError {
    /// The flag (`--smp`) or config key (`smp in vm.toml`) at fault.
    pub source_name: String,
    /// What is wrong, naming the value.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl SpecError {
    fn new(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            source_name: source_name.into(),
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// `--accel`: KVM for real guests, TCG only for testing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum VfioBackend {
    /// iommufd with passed descriptors when QEMU (9.0+) and the host support it, else group.
    Auto,
    /// The legacy VFIO group/container: `sysfsdev=` only.
    Group,
    /// An iommufd object and the mdev's vfio cdev, both opened by aplaunch and passed as fds.
    Iommufd,
}

/// `--console`: where the guest console goes (always QEMU's stdio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleKind {
    /// The SCLP ASCII console (`ttysclp0` in the guest).
    Sclp,
    /// A virtio console (`hvc0`) on a virtio-serial-ccw device.
    Virtio,
    /// No console.
    None,
}

/// How the guest boots.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Boot {
    /// A Secure Execution guest booting the SE image with `-kernel`.
    Pv {
        /// The SE image.
        image: PathBuf,
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
}

/// One virtio-net NIC.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Net {
    /// The backend.
    pub backend: NetBackend,
    /// The MAC address, when given (`52:54:00:12:34:56`).
    pub mac: Option<String>,
}

/// A NIC's host side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
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
    /// The console.
    pub console: ConsoleKind,
    /// A virtio-rng device fed from the host's /dev/urandom.
    pub rng: bool,
    /// Back guest memory with huge pages (refused under PV).
    pub hugepages: bool,
    /// `iommu_platform=on` on every virtio device (always for PV; optional for plain guests).
    pub iommu_platform: bool,
    /// The QMP unix socket QEMU listens on.
    pub qmp: PathBuf,
    /// The QEMU binary, when chosen (else discovered).
    pub qemu: Option<PathBuf>,
    /// Arguments appended verbatim after everything aplaunch emits.
    #[serde(serialize_with = "ser_os_vec")]
    pub extra_args: Vec<OsString>,
}

fn ser_os_vec<S: serde::Serializer>(v: &[OsString], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|a| a.to_string_lossy()))
}

impl VmSpec {
    /// Whether this is a Secure Execution guest.
    pub fn is_pv(&self) -> bool {
        matches!(self.boot, Boot::Pv { .. })
    }

    /// The SE image of a PV guest.
    pub fn pv_image(&self) -> Option<&Path> {
        match &self.boot {
            Boot::Pv { image } => Some(image),
            Boot::Plain { .. } => None,
        }
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
    /// `--console`.
    pub console: Option<ConsoleKind>,
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
    console: Option<ConsoleKind>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigNet {
    #[serde(rename = "type")]
    kind: String,
    ifname: Option<String>,
    mac: Option<String>,
}

/// Reads a TOML VM config. Relative paths in it are taken relative to the file's directory.
pub fn load_config(path: &Path) -> Result<SpecInput, SpecError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new("--config", format!("cannot read {shown}: {e}"))
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
        SpecError::new(key, format!("{msg}{line}"))
            .hint("see the VM config section of the README for the keys and their types")
    })?;
    let key = |k: &str| format!("key `{k}` in {shown}");
    let rel = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    let memory = match file.memory {
        None => None,
        Some(MemoryValue::Mib(n)) => Some(n.to_string()),
        Some(MemoryValue::Text(t)) => Some(t),
    };
    let mut disks = Vec::new();
    for (i, d) in file.disk.into_iter().enumerate() {
        let k = key(&format!("disk[{i}]"));
        let disk = Disk {
            path: rel(d.path),
            format: d.format.unwrap_or_else(|| "raw".into()),
            readonly: d.readonly,
            cache: d.cache,
        };
        check_disk(&disk, &k)?;
        disks.push(disk);
    }
    let mut nets = Vec::new();
    for (i, n) in file.net.into_iter().enumerate() {
        let k = key(&format!("net[{i}]"));
        nets.push(net_from_parts(&n.kind, n.ifname, n.mac, &k)?);
    }
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
        console: file.console,
        rng: file.rng,
        hugepages: file.hugepages,
        iommu_platform: file.iommu_platform,
        qmp: file.qmp.map(rel),
        qemu: file.qemu.map(rel),
        extra_args: file
            .extra_args
            .map(|v| v.into_iter().map(OsString::from).collect()),
    })
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

/// Parses `--disk PATH[,format=F][,readonly=on|off][,cache=C]` (`,,` for a comma in PATH).
pub fn parse_disk_flag(text: &str) -> Result<Disk, SpecError> {
    const FLAG: &str = "--disk";
    let mut parts = split_qemu_opts(text).into_iter();
    let path = parts.next().unwrap_or_default();
    if path.is_empty() {
        return Err(SpecError::new(FLAG, format!("{text:?} has no path"))
            .hint("use --disk PATH[,format=raw|qcow2][,readonly=on][,cache=none]"));
    }
    let mut disk = Disk {
        path: PathBuf::from(path),
        format: "raw".into(),
        readonly: false,
        cache: None,
    };
    for opt in parts {
        let (k, v) = opt.split_once('=').unwrap_or((opt.as_str(), ""));
        match k {
            "format" => disk.format = v.to_string(),
            "readonly" => {
                disk.readonly = parse_on_off(v).ok_or_else(|| {
                    SpecError::new(FLAG, format!("readonly={v:?} in {text:?} is not on or off"))
                        .hint("use readonly=on or readonly=off")
                })?
            }
            "cache" => disk.cache = Some(v.to_string()),
            _ => {
                return Err(
                    SpecError::new(FLAG, format!("unknown option {opt:?} in {text:?}")).hint(
                        "options are format=, readonly=, cache=; write a comma in the path as ,,",
                    ),
                )
            }
        }
    }
    check_disk(&disk, FLAG)?;
    Ok(disk)
}

/// Parses `--net user[,mac=M]` or `--net tap,ifname=IF[,mac=M]`.
pub fn parse_net_flag(text: &str) -> Result<Net, SpecError> {
    const FLAG: &str = "--net";
    let mut parts = split_qemu_opts(text).into_iter();
    let kind = parts.next().unwrap_or_default();
    let (mut ifname, mut mac) = (None, None);
    for opt in parts {
        match opt.split_once('=') {
            Some(("ifname", v)) => ifname = Some(v.to_string()),
            Some(("mac", v)) => mac = Some(v.to_string()),
            _ => {
                return Err(
                    SpecError::new(FLAG, format!("unknown option {opt:?} in {text:?}"))
                        .hint("use --net user[,mac=M] or --net tap,ifname=IF[,mac=M]"),
                )
            }
        }
    }
    net_from_parts(&kind, ifname, mac, FLAG)
}

fn net_from_parts(
    kind: &str,
    ifname: Option<String>,
    mac: Option<String>,
    source: &str,
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
                    source,
                    format!("{ifname:?} is not a network interface name"),
                )
                .hint("an interface name has at most 15 characters of A-Z, a-z, 0-9, -, _ and ."));
            }
            NetBackend::Tap { ifname }
        }
        ("tap", None) => {
            return Err(SpecError::new(source, "a tap NIC needs ifname")
                .hint("use tap,ifname=tap0 (the tap interface must exist)"))
        }
        ("user", Some(_)) => {
            return Err(SpecError::new(source, "a user NIC takes no ifname")
                .hint("drop ifname, or use tap,ifname=IF"))
        }
        (other, _) => {
            return Err(
                SpecError::new(source, format!("unknown network type {other:?}"))
                    .hint("the types are user and tap"),
            )
        }
    };
    if let Some(m) = &mac {
        if !is_mac(m) {
            return Err(
                SpecError::new(source, format!("{m:?} is not a MAC address"))
                    .hint("write it as six hex pairs: 52:54:00:12:34:56"),
            );
        }
    }
    Ok(Net { backend, mac })
}

fn is_mac(m: &str) -> bool {
    let parts: Vec<&str> = m.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn parse_on_off(v: &str) -> Option<bool> {
    match v {
        "on" | "true" | "yes" | "" => Some(true),
        "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_disk(disk: &Disk, source: &str) -> Result<(), SpecError> {
    check_path(&disk.path, source)?;
    if !is_word(&disk.format) {
        return Err(SpecError::new(
            source,
            format!("format {:?} is not an image format name", disk.format),
        )
        .hint("use format=raw or format=qcow2"));
    }
    if let Some(cache) = &disk.cache {
        if !["none", "writeback", "writethrough", "directsync", "unsafe"].contains(&cache.as_str())
        {
            return Err(
                SpecError::new(source, format!("cache mode {cache:?} is unknown"))
                    .hint("use cache=none, writeback, writethrough, directsync or unsafe"),
            );
        }
    }
    Ok(())
}

/// Paths go into QEMU options: commas are escaped, but a control character (a newline)
/// has no place in a path QEMU is given.
fn check_path(path: &Path, source: &str) -> Result<(), SpecError> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(SpecError::new(source, "the path is empty").hint("name a file"));
    }
    if bytes.iter().any(|b| b.is_ascii_control()) {
        return Err(SpecError::new(
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

/// Names of the flags (or config keys) for errors: `(flag, key)`.
fn src(flag: &str, from_config: bool, config: &str, key: &str) -> String {
    if from_config {
        format!("key `{key}` in {config}")
    } else {
        flag.to_string()
    }
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

/// Validates the merged input into a [`VmSpec`].
///
/// `default_qmp_dir` is where the QMP socket goes when neither `--qmp` nor `qmp` is given.
pub fn validate(
    input: SpecInput,
    origins: &Origins,
    default_qmp_dir: &Path,
) -> Result<VmSpec, SpecError> {
    let config = origins.config.as_deref().unwrap_or("the config");
    // A field's error names the flag when the flag set it, else the config key.
    macro_rules! name {
        ($field:ident, $flag:expr, $key:expr) => {
            src(
                $flag,
                origins.from_flags.$field.is_none() && origins.from_config.$field.is_some(),
                config,
                $key,
            )
        };
    }

    let mdev = match &input.mdev {
        None => None,
        Some(text) => Some(parse_uuid(text).ok_or_else(|| {
            SpecError::new(
                name!(mdev, "--mdev", "mdev"),
                format!("{text:?} is not a UUID"),
            )
            .hint("give the mdev's UUID as in /sys/bus/mdev/devices (see `aplaunch ap list`)")
        })?),
    };

    let no_pv = input.no_pv.unwrap_or(false);
    let boot = if no_pv {
        if let Some(img) = &input.pv_image {
            return Err(SpecError::new(
                name!(pv_image, "--pv-image", "pv-image"),
                format!(
                    "{} was given for a guest without Secure Execution (--no-pv)",
                    img.display()
                ),
            )
            .hint("drop --no-pv to boot the SE image, or drop --pv-image for a plain guest"));
        }
        for (p, n) in [
            (&input.kernel, name!(kernel, "--kernel", "kernel")),
            (&input.initrd, name!(initrd, "--initrd", "initrd")),
        ] {
            if let Some(p) = p {
                check_path(p, &n)?;
            }
        }
        if let Some(a) = &input.append {
            if a.contains('\n') || a.contains('\0') {
                return Err(SpecError::new(
                    name!(append, "--append", "append"),
                    "the kernel command line contains a newline",
                )
                .hint("write the kernel command line on one line"));
            }
            if input.kernel.is_none() {
                return Err(SpecError::new(
                    name!(append, "--append", "append"),
                    "a kernel command line without --kernel",
                )
                .hint("add --kernel, or drop --append (a disk boots with its own command line)"));
            }
        }
        if input.initrd.is_some() && input.kernel.is_none() {
            return Err(SpecError::new(
                name!(initrd, "--initrd", "initrd"),
                "an initrd without --kernel",
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
            (input.kernel.is_some(), name!(kernel, "--kernel", "kernel")),
            (input.initrd.is_some(), name!(initrd, "--initrd", "initrd")),
            (input.append.is_some(), name!(append, "--append", "append")),
        ] {
            if given {
                return Err(SpecError::new(
                    n,
                    "cannot be used with a Secure Execution image: the kernel, initrd and command line are sealed inside it",
                )
                .hint("rebuild the SE image with pvimg/genprotimg to change them, or add --no-pv for a plain guest"));
            }
        }
        let Some(image) = input.pv_image.clone() else {
            return Err(SpecError::new(
                "--pv-image",
                "a Secure Execution guest needs its SE image",
            )
            .hint("add --pv-image IMG, or --no-pv (with --kernel or --disk) for a plain guest"));
        };
        check_path(&image, &name!(pv_image, "--pv-image", "pv-image"))?;
        Boot::Pv { image }
    };
    let pv = matches!(boot, Boot::Pv { .. });

    let accel = input.accel.unwrap_or(Accel::Kvm);
    if pv && accel == Accel::Tcg {
        return Err(SpecError::new(
            name!(accel, "--accel", "accel"),
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
            name!(name, "--name", "name"),
            format!("{name:?} is not a usable guest name"),
        )
        .hint("use 1 to 64 characters of A-Z, a-z, 0-9, -, _ and . (not starting with .)"));
    }

    let memory_mib = match &input.memory {
        None => DEFAULT_MEMORY_MIB,
        Some(text) => match parse_memory(text) {
            Some(m) if (16..=16 * 1024 * 1024).contains(&m) => m,
            _ => {
                return Err(SpecError::new(
                    name!(memory, "--memory", "memory"),
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
                name!(smp, "--smp", "smp"),
                format!("{n} vCPUs is outside 1..={MAX_SMP}"),
            )
            .hint(format!("use --smp between 1 and {MAX_SMP}")))
        }
    };

    let vfio_backend = input.vfio_backend.unwrap_or(VfioBackend::Auto);
    if mdev.is_none() && input.vfio_backend.is_some_and(|b| b != VfioBackend::Auto) {
        return Err(SpecError::new(
            name!(vfio_backend, "--vfio-backend", "vfio-backend"),
            "a VFIO backend was chosen but no --mdev was given",
        )
        .hint("add --mdev UUID, or drop --vfio-backend"));
    }
    if mdev.is_some() && accel == Accel::Tcg {
        return Err(SpecError::new(
            name!(mdev, "--mdev", "mdev"),
            "a vfio-ap crypto device needs KVM; tcg has no AP passthrough",
        )
        .hint("use --accel kvm, or drop --mdev to test under tcg"));
    }

    let hugepages = input.hugepages.unwrap_or(false);
    if pv && hugepages {
        return Err(SpecError::new(
            name!(hugepages, "--hugepages", "hugepages"),
            "Secure Execution guests cannot be backed with huge pages",
        )
        .hint("drop --hugepages for a secure guest"));
    }

    if pv && input.iommu_platform == Some(false) {
        return Err(SpecError::new(
            name!(iommu_platform, "--iommu-platform", "iommu-platform"),
            "a Secure Execution guest's virtio devices always need iommu_platform=on",
        )
        .hint("drop iommu-platform = false for a secure guest"));
    }

    let qmp = match &input.qmp {
        Some(p) => {
            check_path(p, &name!(qmp, "--qmp", "qmp"))?;
            p.clone()
        }
        None => default_qmp_dir.join(format!("{name}.qmp")),
    };
    if let Some(q) = &input.qemu {
        check_path(q, &name!(qemu, "--qemu", "qemu"))?;
    }

    let extra_args = input.extra_args.clone().unwrap_or_default();
    if pv {
        check_extra_args_for_pv(&extra_args)?;
    }

    Ok(VmSpec {
        name,
        memory_mib,
        smp,
        accel,
        boot,
        mdev,
        vfio_backend,
        disks: input.disks.clone().unwrap_or_default(),
        nets: input.nets.clone().unwrap_or_default(),
        console: input.console.unwrap_or(ConsoleKind::Sclp),
        rng: input.rng.unwrap_or(false),
        hugepages,
        iommu_platform: pv || input.iommu_platform.unwrap_or(false),
        qmp,
        qemu: input.qemu.clone(),
        extra_args,
    })
}

/// A secure guest's extra QEMU arguments must not add a balloon or huge-page backing.
fn check_extra_args_for_pv(args: &[OsString]) -> Result<(), SpecError> {
    for arg in args {
        let a = arg.to_string_lossy();
        if a.contains("virtio-balloon") {
            return Err(SpecError::new(
                "extra QEMU arguments",
                format!("{a:?} adds a memory balloon, which a Secure Execution guest cannot use"),
            )
            .hint("remove the balloon device: the ultravisor fences it for protected guests"));
        }
        if a == "-mem-path" || a == "--mem-path" || a.contains("hugetlb") || a.contains("hugepages")
        {
            return Err(SpecError::new(
                "extra QEMU arguments",
                format!(
                    "{a:?} asks for huge-page backing, which a Secure Execution guest cannot use"
                ),
            )
            .hint("remove the huge-page memory backend for a secure guest"));
        }
    }
    Ok(())
}

/// Parses a UUID in its hyphenated form (the only form sysfs uses), any case.
pub fn parse_uuid(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::parse_str(text).ok()
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

    #[test]
    fn opts_splitting() {
        assert_eq!(split_qemu_opts("a,,b,c"), vec!["a,b", "c"]);
        assert_eq!(split_qemu_opts(""), vec![""]);
        assert_eq!(split_qemu_opts("a,"), vec!["a", ""]);
    }
}
