//! Describing a guest and planning its launch: the entry point for programs that embed
//! aplaunch.
//!
//! A [`Launch`] holds what the guest should be (the same inputs as the command line and
//! the TOML config file, with the same defaults) and how to plan it. [`Launch::plan`]
//! validates it into a [`VmSpec`], runs every check against a host and builds the QEMU
//! command line; `aplaunch launch` goes through the same function, so an embedder gets the
//! same checks, argv and passed descriptors as the CLI for the same inputs.
//!
//! A [`PlanError`] names the input at fault by the setter that set it (`Launch::smp`) and
//! gives the rule it broke as a [`SpecErrorKind`] to match on. A failed check is not an
//! error of [`Launch::plan`] (see [`Planned::refused`]); [`Launch::plan_strict`] makes it
//! one.
//!
//! ```no_run
//! use launcher::spec::{Disk, Net};
//! use launcher::Launch;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = host::HostRoot::open("/")?;
//! let mdev = uuid::Uuid::parse_str("62177883-f1bb-47f0-914d-32a22e3a8804")?;
//! let planned = Launch::secure("/var/lib/se/tenant-42.img")
//!     .mdev(mdev)
//!     .memory_mib(4096)
//!     .smp(2)
//!     .disk(Disk::new("/var/lib/tenants/42/root.qcow2").format("qcow2"))
//!     .net(Net::tap("tap42"))
//!     .plan(&root)?;
//! if planned.refused {
//!     eprint!("{}", planned.report.render(false));
//! } else {
//!     // planned.plan.argv, planned.plan.fds; or let aplaunch become QEMU:
//!     let err = launcher::launch::exec(&root, &planned);
//!     eprintln!("{err}");
//! }
//! # Ok(())
//! # }
//! ```

use crate::devno::Devno;
use crate::launch::{self, LaunchOptions, Planned};
use crate::mac::Mac;
use crate::spec::{
    self, Accel, ConsoleBackend, ConsoleKind, Disk, Net, NetBackend, Origins, Source, Speaker,
    SpecError, SpecErrorKind, SpecInput, VfioBackend, VmSpec,
};
use host::Check;
use host::HostRoot;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Why a [`Launch`] could not be planned.
///
/// [`Launch::plan`] returns failed checks not as an error but in [`Planned::report`], and
/// [`Planned::refused`] says whether the launch may go ahead; [`Launch::plan_strict`] (or
/// [`Planned::into_result`]) turns a refused plan into [`PlanError::Refused`].
///
/// A spec error names the input at fault where it came from: the setter for a value set in
/// code (`Launch::smp`; `Launch::disk #2` for the second disk), `` key `smp` in vm.toml ``
/// for a key of the [`Launch::config_file`], and the flag (`--smp`) for inputs given with
/// [`Launch::from_input`], as the command line does. Its hint is phrased the same way.
/// Match on [`PlanError::kind`] ([`SpecErrorKind`]) rather than on the text.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The config file named with [`Launch::config_file`] cannot be read or parsed.
    #[error("{0}")]
    Config(SpecError),
    /// The inputs do not make a valid VM spec (a value out of range, a combination that
    /// cannot run).
    #[error("{0}")]
    Spec(SpecError),
    /// The spec is valid but a check failed (only from [`Launch::plan_strict`] and
    /// [`Planned::into_result`]).
    #[error("{0}")]
    Refused(Refused),
}

impl PlanError {
    /// The spec error (input at fault, rule, message, hint), unless the plan was refused.
    pub fn spec_error(&self) -> Option<&SpecError> {
        match self {
            PlanError::Config(e) | PlanError::Spec(e) => Some(e),
            PlanError::Refused(_) => None,
        }
    }

    /// The rule the spec broke, unless the plan was refused.
    pub fn kind(&self) -> Option<SpecErrorKind> {
        self.spec_error().map(|e| e.kind)
    }
}

/// A plan the checks refused: a check failed and [`Launch::force`] was not given. It holds
/// the whole plan, so the report (and the argv that would have run) stay at hand.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the launch was refused: {} failed", failed_ids(.planned))]
#[non_exhaustive]
pub struct Refused {
    /// The refused plan ([`Planned::refused`] is true).
    pub planned: Box<Planned>,
}

impl Refused {
    /// The failed checks, in the report's order.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.planned.report.failures()
    }
}

fn failed_ids(planned: &Planned) -> String {
    let ids: Vec<&str> = planned.report.failures().map(|c| c.id.as_str()).collect();
    if ids.is_empty() {
        "a check".to_string()
    } else {
        ids.join(", ")
    }
}

impl Planned {
    /// The plan when the launch may go ahead; a refused plan (a failed check without
    /// [`Launch::force`]) as an error, for callers that treat a refusal like any other
    /// failure (`launch.plan(&root)?.into_result()?`).
    pub fn into_result(self) -> Result<Planned, PlanError> {
        if self.refused {
            Err(PlanError::Refused(Refused {
                planned: Box::new(self),
            }))
        } else {
            Ok(self)
        }
    }
}

/// A guest to launch, with the options of its plan. Build it with [`Launch::secure`],
/// [`Launch::secure_from_disk`], [`Launch::plain`], [`Launch::plain_from_disk`] or
/// [`Launch::from_input`], refine it with the setters, then [`Launch::plan`] it.
///
/// Unset fields take the CLI's defaults: 2 GiB, one vCPU, KVM, the SCLP console on stdio,
/// the QMP socket `NAME.qmp` in [`launch::default_qmp_dir`], QEMU discovered on PATH,
/// its seccomp sandbox on.
#[derive(Debug, Clone)]
#[must_use = "a Launch does nothing until it is planned"]
pub struct Launch {
    /// The inputs given here (they override the config file's keys).
    input: SpecInput,
    /// A TOML config file read under the inputs.
    config: Option<PathBuf>,
    /// Where the QMP socket goes when none is named; `None`: [`launch::default_qmp_dir`].
    qmp_dir: Option<PathBuf>,
    options: LaunchOptions,
    /// Whether errors name setters (built in code) or flags ([`Launch::from_input`]).
    in_code: bool,
    /// The setter that set the memory, for naming it in errors.
    memory_setter: &'static str,
}

impl Default for Launch {
    /// A secure guest with nothing set (it needs an image or a disk), named in code.
    fn default() -> Launch {
        Launch {
            input: SpecInput::default(),
            config: None,
            qmp_dir: None,
            options: LaunchOptions::default(),
            in_code: true,
            memory_setter: "Launch::memory",
        }
    }
}

impl Launch {
    /// A Secure Execution guest booting `image` (built with pvimg/genprotimg for this
    /// host's keys) with `-kernel`.
    pub fn secure(image: impl Into<PathBuf>) -> Launch {
        Launch::in_code(SpecInput {
            pv_image: Some(image.into()),
            no_pv: Some(false),
            ..SpecInput::default()
        })
    }

    /// A Secure Execution guest booting the SE image zipl wrote to its boot disk: the disk
    /// marked with [`Disk::boot`], else the first [`Launch::disk`] (one is needed).
    pub fn secure_from_disk() -> Launch {
        Launch::in_code(SpecInput {
            no_pv: Some(false),
            ..SpecInput::default()
        })
    }

    /// A plain (unprotected) guest booting `kernel` with `-kernel`; see
    /// [`Launch::initrd`] and [`Launch::append`].
    pub fn plain(kernel: impl Into<PathBuf>) -> Launch {
        Launch::in_code(SpecInput {
            kernel: Some(kernel.into()),
            no_pv: Some(true),
            ..SpecInput::default()
        })
    }

    /// A plain (unprotected) guest booting from its disk: the one marked with
    /// [`Disk::boot`], else the first [`Launch::disk`].
    pub fn plain_from_disk() -> Launch {
        Launch::in_code(SpecInput {
            no_pv: Some(true),
            ..SpecInput::default()
        })
    }

    /// A guest described by raw inputs, as the command line gives them: every field
    /// optional, text values (`memory`, `mdev`) parsed and checked by [`Launch::plan`].
    /// Errors name the inputs as the command line's flags (`--smp`), and their hints speak
    /// of flags: this is the path `aplaunch launch` takes.
    pub fn from_input(input: SpecInput) -> Launch {
        Launch {
            input,
            in_code: false,
            ..Launch::default()
        }
    }

    /// A guest built in code: errors name the setters.
    fn in_code(input: SpecInput) -> Launch {
        Launch {
            input,
            ..Launch::default()
        }
    }

    /// Reads the guest from a TOML config file (see the README's VM config section);
    /// everything set on this `Launch` overrides the file's keys, as flags do (disks or
    /// NICs added here replace the file's list). Relative paths in the file are taken
    /// from its directory.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Launch {
        self.config = Some(path.into());
        self
    }

    /// The guest name (`-name`, the default QMP socket's name). Default:
    /// `aplaunch-<first 8 hex digits of the mdev>`, or `aplaunch`.
    pub fn name(mut self, name: impl Into<String>) -> Launch {
        self.input.name = Some(name.into());
        self
    }

    /// Guest memory in MiB (16 MiB to 16 TiB; default 2048).
    pub fn memory_mib(mut self, mib: u64) -> Launch {
        self.input.memory = Some(mib.to_string());
        self.memory_setter = "Launch::memory_mib";
        self
    }

    /// Guest memory as text, read as `--memory` and the config's `memory` are
    /// ([`spec::parse_memory`]): `"4G"`, `"4096M"`, `"4GiB"`, `"512MB"`, or a plain number
    /// of MiB; 16 MiB to 16 TiB. [`Launch::plan`] refuses a size it cannot read
    /// ([`SpecErrorKind::MemoryOutOfRange`], naming `Launch::memory`).
    pub fn memory(mut self, size: impl Into<String>) -> Launch {
        self.input.memory = Some(size.into());
        self.memory_setter = "Launch::memory";
        self
    }

    /// vCPUs (1 to [`spec::MAX_SMP`], and at most the ultravisor's `max_cpus` for a secure
    /// guest, which the `uv-limits` check reports; default 1).
    pub fn smp(mut self, vcpus: u32) -> Launch {
        self.input.smp = Some(u64::from(vcpus));
        self
    }

    /// The accelerator (default KVM; TCG only for plain test guests without an mdev).
    pub fn accel(mut self, accel: Accel) -> Launch {
        self.input.accel = Some(accel);
        self
    }

    /// The crypto mdev (vfio_ap) to pass through.
    pub fn mdev(mut self, uuid: uuid::Uuid) -> Launch {
        self.input.mdev = Some(uuid.hyphenated().to_string());
        self
    }

    /// How QEMU reaches the mdev (default [`VfioBackend::Auto`]).
    pub fn vfio_backend(mut self, backend: VfioBackend) -> Launch {
        self.input.vfio_backend = Some(backend);
        self
    }

    /// Adds a virtio-blk disk (in order; the first is the boot disk of a guest booting
    /// from disk unless another is marked).
    pub fn disk(mut self, disk: Disk) -> Launch {
        self.input.disks.get_or_insert_with(Vec::new).push(disk);
        self
    }

    /// Adds a virtio-net NIC (in order). Without a MAC it gets one derived from the guest
    /// name and its device number.
    pub fn net(mut self, net: Net) -> Launch {
        self.input.nets.get_or_insert_with(Vec::new).push(net);
        self
    }

    /// The console device and where its host side is (default: SCLP on stdio).
    pub fn console(mut self, kind: ConsoleKind, backend: ConsoleBackend) -> Launch {
        self.input.console = Some((kind, backend));
        self
    }

    /// Adds (or not) a virtio-rng device fed from the host's /dev/urandom (default off).
    pub fn rng(mut self, on: bool) -> Launch {
        self.input.rng = Some(on);
        self
    }

    /// Backs a plain guest's memory with huge pages (refused for secure guests).
    pub fn hugepages(mut self, on: bool) -> Launch {
        self.input.hugepages = Some(on);
        self
    }

    /// `iommu_platform=on` on a plain guest's virtio devices (always on for secure guests).
    pub fn iommu_platform(mut self, on: bool) -> Launch {
        self.input.iommu_platform = Some(on);
        self
    }

    /// The initrd of a plain guest booting a kernel.
    pub fn initrd(mut self, initrd: impl Into<PathBuf>) -> Launch {
        self.input.initrd = Some(initrd.into());
        self
    }

    /// The kernel command line of a plain guest booting a kernel.
    pub fn append(mut self, cmdline: impl Into<String>) -> Launch {
        self.input.append = Some(cmdline.into());
        self
    }

    /// The QMP unix socket QEMU listens on (default: `NAME.qmp` in the QMP directory).
    pub fn qmp(mut self, socket: impl Into<PathBuf>) -> Launch {
        self.input.qmp = Some(socket.into());
        self
    }

    /// The QEMU binary; a bare name is looked up on PATH (default: `qemu-system-s390x` on
    /// PATH, else `/usr/libexec/qemu-kvm`).
    pub fn qemu(mut self, binary: impl Into<PathBuf>) -> Launch {
        self.input.qemu = Some(binary.into());
        self
    }

    /// Appends arguments verbatim after everything aplaunch emits (a secure guest's are
    /// checked for a balloon or huge-page backing).
    pub fn extra_args<I, A>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.input
            .extra_args
            .get_or_insert_with(Vec::new)
            .extend(args.into_iter().map(Into::into));
        self
    }

    /// The user QEMU runs as once it is set up (needs root).
    pub fn user(mut self, user: impl Into<String>) -> Launch {
        self.input.user = Some(user.into());
        self
    }

    /// Runs QEMU under its seccomp sandbox when the probed QEMU has one (default on).
    pub fn sandbox(mut self, on: bool) -> Launch {
        self.input.sandbox = Some(on);
        self
    }

    /// The directory of the default QMP socket (default [`launch::default_qmp_dir`]).
    pub fn qmp_dir(mut self, dir: impl Into<PathBuf>) -> Launch {
        self.qmp_dir = Some(dir.into());
        self
    }

    /// Plans the launch despite failed checks, which become warnings (default off).
    pub fn force(mut self, on: bool) -> Launch {
        self.options.force = on;
        self
    }

    /// Probes QEMU again instead of using the cached result (default off).
    pub fn no_cache(mut self, on: bool) -> Launch {
        self.options.no_cache = on;
        self
    }

    /// Lets [`launch::exec`] start QEMU on this host although the host root is a tree,
    /// not `/` (the checks ran against the tree). Default off.
    pub fn exec_on_host_root(mut self, on: bool) -> Launch {
        self.options.exec_on_tree = on;
        self
    }

    /// The options [`Launch::plan`] uses.
    pub fn options(&self) -> LaunchOptions {
        self.options
    }

    /// Validates the guest (the config file's keys under this `Launch`'s inputs) into a
    /// [`VmSpec`], without looking at any host.
    pub fn spec(&self) -> Result<VmSpec, PlanError> {
        let named = |setter: String, flag: String| {
            if self.in_code {
                Source::setter(setter)
            } else {
                Source::flag(flag)
            }
        };
        for (i, disk) in self.input.disks.iter().flatten().enumerate() {
            let n = i + 1;
            let source = named(format!("Launch::disk #{n}"), format!("disk #{n}"));
            spec::check_disk(disk, &source).map_err(PlanError::Spec)?;
        }
        for (i, net) in self.input.nets.iter().flatten().enumerate() {
            let n = i + 1;
            let source = named(format!("Launch::net #{n}"), format!("net #{n}"));
            check_net(net, &source).map_err(PlanError::Spec)?;
        }
        let (from_config, config) = match &self.config {
            Some(path) => {
                let source = named("Launch::config_file".into(), "--config".into());
                (
                    spec::load_config_named(path, &source).map_err(PlanError::Config)?,
                    Some(path.display().to_string()),
                )
            }
            None => (SpecInput::default(), None),
        };
        let merged = from_config.clone().overridden_by(self.input.clone());
        let origins = Origins {
            config,
            from_config,
            from_flags: self.input.clone(),
        };
        let qmp_dir = match &self.qmp_dir {
            Some(dir) => dir.clone(),
            None => launch::default_qmp_dir(),
        };
        let speaker = if self.in_code {
            Speaker::Code {
                memory: self.memory_setter,
            }
        } else {
            Speaker::Cli
        };
        spec::validate_spoken(merged, &origins, speaker, &qmp_dir).map_err(PlanError::Spec)
    }

    /// Validates the guest, runs every check on the host under `root` (host readiness,
    /// the mdev, the SE image, QEMU, probed through the cache) and builds the command line.
    /// Nothing is started: see [`launch::exec`].
    pub fn plan(&self, root: &HostRoot) -> Result<Planned, PlanError> {
        let spec = self.spec()?;
        Ok(launch::plan(root, spec, &self.options))
    }

    /// [`Launch::plan`], with a refused plan (a failed check without [`Launch::force`]) as
    /// [`PlanError::Refused`]: `Ok` means the launch may go ahead.
    pub fn plan_strict(&self, root: &HostRoot) -> Result<Planned, PlanError> {
        self.plan(root)?.into_result()
    }
}

/// Checks a NIC built in code as the flag parser checks one given as text.
fn check_net(net: &Net, source: &Source) -> Result<(), SpecError> {
    let (kind, ifname) = match &net.backend {
        NetBackend::User => ("user", None),
        NetBackend::Tap { ifname } => ("tap", Some(ifname.clone())),
    };
    spec::net_from_parts(kind, ifname, net.mac.clone(), net.devno, source).map(|_| ())
}

impl Disk {
    /// A raw, writable disk image or block device at `path`, with the device number the
    /// scheme gives it.
    pub fn new(path: impl Into<PathBuf>) -> Disk {
        Disk {
            path: path.into(),
            format: "raw".into(),
            readonly: false,
            cache: None,
            devno: None,
            boot: false,
        }
    }

    /// The image format ([`spec::DISK_FORMATS_RW`]; the others only read-only).
    pub fn format(mut self, format: impl Into<String>) -> Disk {
        self.format = format.into();
        self
    }

    /// Attaches the disk read-only.
    pub fn readonly(mut self) -> Disk {
        self.readonly = true;
        self
    }

    /// QEMU's cache mode: `none`, `writeback`, `writethrough`, `directsync` or `unsafe`.
    pub fn cache(mut self, mode: impl Into<String>) -> Disk {
        self.cache = Some(mode.into());
        self
    }

    /// The disk's device number instead of the scheme's.
    pub fn devno(mut self, devno: Devno) -> Disk {
        self.devno = Some(devno);
        self
    }

    /// Boots the guest from this disk (`bootindex=1`).
    pub fn boot(mut self) -> Disk {
        self.boot = true;
        self
    }

    /// The disk's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Net {
    /// A NIC on QEMU's user-mode network (for tests).
    pub fn user() -> Net {
        Net {
            backend: NetBackend::User,
            mac: None,
            devno: None,
        }
    }

    /// A NIC on an existing tap interface (`ifname`: at most 15 characters of A-Z, a-z,
    /// 0-9, `-`, `_` and `.`, checked by [`Launch::plan`]).
    pub fn tap(ifname: impl Into<String>) -> Net {
        Net {
            backend: NetBackend::Tap {
                ifname: ifname.into(),
            },
            mac: None,
            devno: None,
        }
    }

    /// The NIC's MAC address instead of one derived from the guest name.
    pub fn mac(mut self, mac: Mac) -> Net {
        self.mac = Some(mac.to_string());
        self
    }

    /// The NIC's device number instead of the scheme's.
    pub fn devno(mut self, devno: Devno) -> Net {
        self.devno = Some(devno);
        self
    }
}
