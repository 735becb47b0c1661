//! `aplaunch launch` (also `aplaunch --mdev UUID --pv-image IMG ...`): check everything,
//! build the QEMU command line and exec it.

use super::output::{AppError, Exit, Output};
use super::GlobalArgs;
use clap::Args;
use host::{ErrorKind, HostRoot, Report};
use launcher::builder::{self, FdSource};
use launcher::launch::{self, LaunchError, Planned};
use launcher::spec::{self, Accel, SpecError, SpecInput, VfioBackend, VmSpec};
use launcher::{Launch, PlanError};

use std::ffi::OsString;
use std::path::PathBuf;

/// Arguments of `aplaunch launch`.
#[derive(Debug, Clone, Default, Args)]
pub struct LaunchArgs {
    /// The crypto mdev to pass through (UUID)
    #[arg(long, value_name = "UUID")]
    pub mdev: Option<String>,
    /// The Secure Execution image to boot
    #[arg(long, value_name = "IMG")]
    pub pv_image: Option<PathBuf>,
    /// Read the VM spec from a TOML file (flags override its keys)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The QEMU binary (default: qemu-system-s390x on PATH, else /usr/libexec/qemu-kvm)
    #[arg(long, value_name = "PATH")]
    pub qemu: Option<PathBuf>,
    /// Guest name (default: aplaunch-<first 8 hex digits of the mdev>)
    #[arg(long)]
    pub name: Option<String>,
    /// Guest memory: 4G, 4096M or a number of MiB (default 2G)
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// vCPUs (default 1; at most the ultravisor's max_cpus for a secure guest)
    #[arg(long, value_name = "N")]
    pub smp: Option<u64>,
    /// A virtio-blk disk: PATH[,format=raw|qcow2][,readonly=on][,cache=MODE][,devno=fe.0.XXXX][,boot=on] (,, for a comma in PATH; repeatable)
    #[arg(long, value_name = "PATH[,OPTS]")]
    pub disk: Vec<String>,
    /// A virtio-net NIC: user[,mac=M][,devno=fe.0.XXXX] or tap,ifname=IF[,mac=M][,devno=...] (repeatable; default MAC derived from the guest name)
    #[arg(long, value_name = "SPEC")]
    pub net: Vec<String>,
    /// The guest console: sclp (default), virtio or none, on QEMU's stdio (Ctrl-C goes to the guest), or on pty or socket:PATH (e.g. `pty`, `virtio,socket:/run/vm1.console`)
    #[arg(long, value_name = "KIND[,pty|socket:PATH]", num_args = 0..=1, default_missing_value = "sclp")]
    pub console: Option<String>,
    /// Add a virtio-rng device fed from the host's /dev/urandom
    #[arg(long)]
    pub rng: bool,
    /// The QMP socket QEMU listens on (default: /run/aplaunch/NAME.qmp for root, else the user's runtime dir)
    #[arg(long, value_name = "PATH")]
    pub qmp: Option<PathBuf>,
    /// A plain guest without Secure Execution (boot --kernel or the first --disk)
    #[arg(long, conflicts_with = "pv")]
    pub no_pv: bool,
    /// A Secure Execution guest (the default); without --pv-image it boots the SE image zipl wrote to its boot disk
    #[arg(long)]
    pub pv: bool,
    /// Kernel of a plain guest (--no-pv)
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Initrd of a plain guest (--no-pv)
    #[arg(long, value_name = "PATH")]
    pub initrd: Option<PathBuf>,
    /// Kernel command line of a plain guest (--no-pv)
    #[arg(long, value_name = "CMDLINE")]
    pub append: Option<String>,
    /// Accelerator (tcg only for testing plain guests)
    #[arg(long, value_enum)]
    pub accel: Option<AccelArg>,
    /// How QEMU reaches the mdev (auto: iommufd with QEMU 9.0+ and a vfio cdev, else group)
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub vfio_backend: Option<VfioBackendArg>,
    /// Back a plain guest's memory with huge pages (/dev/hugepages; refused for secure guests)
    #[arg(long)]
    pub hugepages: bool,
    /// Set iommu_platform=on on the virtio devices of a plain guest (always on for secure guests)
    #[arg(long)]
    pub iommu_platform: bool,
    /// Wait up to SECS for the mdev as a boot creates it (mdevctl's udev rule starts the
    /// autostart definition when vfio_ap registers the matrix device): until it exists and
    /// the AP configuration lock is free (mdevctl's callout ap-check holds it while the
    /// mdev is created and its attributes written); exit 3 when it does not come
    #[arg(long, value_name = "SECS", value_parser = super::qmp::parse_secs)]
    pub wait_mdev: Option<std::time::Duration>,
    /// Print the QEMU command line (a JSON array with --json) and run nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Go ahead despite failed checks (they are reported as warnings)
    #[arg(long)]
    pub force: bool,
    /// Probe QEMU again instead of using the cached result
    #[arg(long)]
    pub no_cache: bool,
    /// Make QEMU drop its privileges to USER once it has set up (needs root)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Do not run QEMU under its seccomp sandbox (on whenever the probed QEMU has it)
    #[arg(long)]
    pub no_sandbox: bool,
    /// Start QEMU on this host although --host-root names a tree (the checks ran against
    /// the tree); needs --host-root on the command line, APLAUNCH_HOST_ROOT is not enough
    #[arg(long)]
    pub exec_on_host_root: bool,
    /// Extra QEMU arguments, appended verbatim
    #[arg(last = true, value_name = "QEMU ARGS")]
    pub extra: Vec<OsString>,
}

impl LaunchArgs {
    /// The VM inputs the flags set.
    pub fn spec_input(&self) -> Result<SpecInput, SpecError> {
        let disks = self
            .disk
            .iter()
            .map(|d| spec::parse_disk_flag(d))
            .collect::<Result<Vec<_>, _>>()?;
        let nets = self
            .net
            .iter()
            .map(|n| spec::parse_net_flag(n))
            .collect::<Result<Vec<_>, _>>()?;
        let console = self
            .console
            .as_deref()
            .map(|c| spec::parse_console(c, "--console", std::path::Path::new("")))
            .transpose()?;
        Ok(SpecInput {
            name: self.name.clone(),
            memory: self.memory.clone(),
            smp: self.smp,
            accel: self.accel.map(Accel::from),
            pv_image: self.pv_image.clone(),
            no_pv: match (self.pv, self.no_pv) {
                (true, _) => Some(false),
                (false, true) => Some(true),
                (false, false) => None,
            },
            kernel: self.kernel.clone(),
            initrd: self.initrd.clone(),
            append: self.append.clone(),
            mdev: self.mdev.clone(),
            vfio_backend: self.vfio_backend.map(VfioBackend::from),
            disks: (!disks.is_empty()).then_some(disks),
            nets: (!nets.is_empty()).then_some(nets),
            console,
            rng: self.rng.then_some(true),
            hugepages: self.hugepages.then_some(true),
            iommu_platform: self.iommu_platform.then_some(true),
            qmp: self.qmp.clone(),
            qemu: self.qemu.clone(),
            extra_args: (!self.extra.is_empty()).then(|| self.extra.clone()),
            user: self.user.clone(),
            sandbox: self.no_sandbox.then_some(false),
        })
    }

    /// The guest and the plan's options as the flags (and `--config`) give them: the one
    /// path to a plan the library offers embedders too.
    pub fn launch(&self) -> Result<Launch, SpecError> {
        let mut launch = Launch::from_input(self.spec_input()?)
            .force(self.force)
            .no_cache(self.no_cache)
            .exec_on_host_root(self.exec_on_host_root);
        if let Some(path) = &self.config {
            launch = launch.config_file(path);
        }
        Ok(launch)
    }

    /// Merges the config file (if any) and the flags and validates the result.
    pub fn spec(&self) -> Result<VmSpec, AppError> {
        self.launch()
            .map_err(spec_error)?
            .spec()
            .map_err(plan_error)
    }
}

fn spec_error(e: SpecError) -> AppError {
    let mut err = AppError::usage(e.to_string());
    err.kind = ErrorKind::InvalidSpec;
    match e.hint {
        Some(h) => err.with_hint(h),
        None => err,
    }
}

/// An error of [`Launch::plan`]: the spec's input, message and hint, as usage.
fn plan_error(e: PlanError) -> AppError {
    match e {
        PlanError::Config(e) | PlanError::Spec(e) => spec_error(e),
        other => AppError::usage(other.to_string()),
    }
}

/// Validates the flags (and config) into a spec and plans the launch.
fn prepare(root: &HostRoot, args: &LaunchArgs) -> Result<Planned, AppError> {
    args.launch()
        .map_err(spec_error)?
        .plan(root)
        .map_err(plan_error)
}

fn refusal(planned: &Planned) -> Option<AppError> {
    if !planned.refused {
        return None;
    }
    let failed: Vec<&str> = planned.report.failures().map(|c| c.id.as_str()).collect();
    Some(
        AppError::refused(
            ErrorKind::ChecksFailed,
            format!(
                "not launching: {} check(s) failed: {}",
                failed.len(),
                failed.join(", ")
            ),
        )
        .with_hint("fix what the failed checks say, or add --force to launch anyway"),
    )
}

/// `--wait-mdev`: waits, bounded, for the mdev a boot creates. mdevctl 1.2.0 has no
/// service of its own (upstream ships only 60-mdevctl.rules, which runs `mdevctl
/// start-parent-mdevs matrix` when the matrix device appears), so a unit cannot order
/// itself after it; this waits for its effect instead. mdevctl creates the mdev, then
/// writes the definition's attributes; ap-check, its s390-tools callout, holds the AP
/// configuration lock from the pre-start call to the post call (ap_tools/ap-check.c
/// `ap_check_handle_start`, `ap_check_handle_post`), so the mdev is complete when it
/// exists and the lock can be taken. The lock is released at once.
fn wait_for_mdev(
    root: &HostRoot,
    args: &LaunchArgs,
    timeout: std::time::Duration,
    out: &Output,
) -> Result<(), AppError> {
    let spec = args.spec()?;
    let Some(uuid) = spec.mdev.map(|u| u.hyphenated().to_string()) else {
        return Err(
            AppError::usage("--wait-mdev needs a mdev (--mdev or mdev = in --config)")
                .with_hint("name the crypto mdev, or drop --wait-mdev"),
        );
    };
    let start = std::time::Instant::now();
    let dir = vfio::mdev::mdev_dir(&uuid);
    let mut told = false;
    while !root.is_dir(&dir) {
        if start.elapsed() >= timeout {
            let define_hint = format!(
                "define it to start at boot: aplaunch ap mdev create --uuid {uuid} ... --define --auto (or mdevctl modify -u {uuid} --auto)"
            );
            let (why, hint) = match vfio::mdevctl::read_definition(root, &uuid) {
                Ok(Some(d)) if d.start == vfio::mdevctl::Start::Auto => (
                    format!(
                        "its autostart definition {} exists: mdevctl's udev rule (60-mdevctl.rules) starts it when vfio_ap registers {}",
                        root.path(d.path()).display(),
                        root.path(vfio::mdev::MATRIX_DIR).display()
                    ),
                    format!(
                        "see why mdevctl did not start it: `aplaunch ap check {uuid}` (mdev-persistent), the journal of systemd-udevd and `journalctl -t mdevctl`"
                    ),
                ),
                Ok(Some(d)) => (
                    format!(
                        "its definition {} is manual, so nothing starts it at boot",
                        root.path(d.path()).display()
                    ),
                    define_hint,
                ),
                Ok(None) => (
                    "it has no mdevctl definition, so nothing creates it at boot".into(),
                    define_hint,
                ),
                Err(e) => (
                    format!("its definition cannot be read: {e}"),
                    format!("fix or replace the definition (aplaunch ap mdev show {uuid})"),
                ),
            };
            let (why, hint) = match autostart_rule_problem(root) {
                Some(problem) => (
                    format!("{why}; {problem}"),
                    "make mdevctl's udev rule run the installed mdevctl, then start the mdev once by hand: mdevctl start-parent-mdevs matrix".to_string(),
                ),
                None => (why, hint),
            };
            return Err(AppError::failed(
                ErrorKind::MdevTimeout,
                format!(
                    "mdev {uuid} did not appear within {} s ({} does not exist): {why}",
                    timeout.as_secs_f64(),
                    root.path(&dir).display()
                ),
            )
            .with_hint(hint));
        }
        if !told {
            out.note(&format!(
                "waiting up to {} s for mdev {uuid} ({})",
                timeout.as_secs_f64(),
                root.path(&dir).display()
            ));
            told = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let left = timeout.saturating_sub(start.elapsed());
    match vfio::lock::ApLock::acquire(root, left) {
        Ok(lock) => {
            drop(lock);
            Ok(())
        }
        Err(e) => Err(super::ap::app_error(e).with_hint(format!(
            "mdev {uuid} exists but the AP configuration is still being changed (mdevctl and ap-check hold the lock while they set it up); wait longer with --wait-mdev"
        ))),
    }
}

/// What keeps mdevctl's udev rule from starting the autostart mdevs at boot, if anything
/// can be seen: no rule at all, or a rule that runs an mdevctl that is not there. (Debian
/// 12's mdevctl 1.2.0-3 installs `/usr/bin/mdevctl`, while its `60-mdevctl.rules` runs
/// `/usr/sbin/mdevctl`.) The rule is looked up in udev's order: /etc, /run, /usr/lib, /lib.
fn autostart_rule_problem(root: &HostRoot) -> Option<String> {
    const RULE: &str = "60-mdevctl.rules";
    let dirs = [
        "etc/udev/rules.d",
        "run/udev/rules.d",
        "usr/lib/udev/rules.d",
        "lib/udev/rules.d",
    ];
    let Some((path, text)) = dirs.iter().find_map(|d| {
        let path = format!("{d}/{RULE}");
        root.read_optional(&path).ok().flatten().map(|t| (path, t))
    }) else {
        return Some(format!(
            "there is no {RULE} in /etc, /run, /usr/lib or /lib/udev/rules.d, so nothing starts autostart mdevs at boot (is mdevctl installed?)"
        ));
    };
    let programs: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains("start-parent-mdevs"))
        .flat_map(|l| l.split(|c: char| c.is_whitespace() || "'\"{};".contains(c)))
        .filter(|w| w.starts_with('/') && w.ends_with("/mdevctl"))
        .collect();
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| !root.exists(p.trim_start_matches('/')))
        .collect();
    let first = missing.first()?;
    Some(format!(
        "mdevctl's udev rule /{path} runs {first}, which does not exist on this host, so it starts no mdev at boot (point it at the installed mdevctl: a fixed copy in /etc/udev/rules.d/{RULE}, or a link {first})"
    ))
}

/// Runs `aplaunch launch`.
pub fn run(global: &GlobalArgs, args: LaunchArgs, out: &Output) -> Result<Exit, AppError> {
    let root = super::host_root(global)?;
    if let Some(timeout) = args.wait_mdev {
        wait_for_mdev(&root, &args, timeout, out)?;
    }
    let planned = prepare(&root, &args)?;
    if !args.dry_run {
        // before the checks' report: a missing file is a usage error (exit 2), and QEMU
        // would find it only after exec (its exit 1 reads as a failed check)
        launch::check_guest_files(&planned.spec).map_err(|e| {
            AppError::new(ErrorKind::GuestFile, super::output::Exit::Usage, e.to_string()).with_hint(
                "check the path (relative paths in a config file are taken from the file's directory) and its permissions; `--dry-run` shows the command line without opening anything",
            )
        })?;
    }
    let refusal = refusal(&planned);
    let Planned {
        ref report,
        ref plan,
        ..
    } = planned;
    if args.dry_run {
        let argv: Vec<String> = plan
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if out.json {
            match &refusal {
                None => out.json_document(&argv),
                Some(err) => out.json_document(&serde_json::json!({
                    "ok": false,
                    "error": err,
                    "checks": report.checks,
                    "argv": argv,
                })),
            }
            return Ok(refusal.map_or(Exit::Ok, |e| e.exit));
        }
        out.human(&report.render(out.colour));
        out.human("\n");
        if !plan.fds.is_empty() {
            let fds: Vec<String> = plan
                .fds
                .iter()
                .map(|f| format!("{} = {}", f.target, describe_fd(&f.source)))
                .collect();
            out.human(&format!("# descriptors passed: {}\n", fds.join(", ")));
        }
        if refusal.is_some() {
            out.human("# not run: the checks above failed\n");
        }
        println!("{}", builder::shell_line(&plan.argv));
        return match refusal {
            Some(err) => Err(err),
            None => Ok(Exit::Ok),
        };
    }
    if let Some(err) = refusal {
        return refuse_with_report(out, report, err);
    }
    if !root.is_system() {
        if let Err(err) = exec_policy(&root, global, &args) {
            return refuse_with_report(out, report, err);
        }
    }
    if !out.json && !out.quiet {
        eprint!("{}", report.render(out.colour_stderr));
    }
    let err = launch::exec(&root, &planned);
    let hint = match &err {
        LaunchError::QmpInUse { .. } => "give this guest another --name or --qmp PATH",
        LaunchError::ConsoleInUse { .. } => "give this guest another --console socket:PATH",
        LaunchError::QmpDir { .. } => "choose a writable place with --qmp PATH",
        LaunchError::QmpDirNotPrivate { .. } => {
            "remove it (it is recreated mode 0700), or choose another place with --qmp PATH"
        }
        LaunchError::TreeRoot { .. } => "drop --host-root to launch on this host",
        LaunchError::User { .. } => "give an existing user with --user, and run aplaunch as root",
        LaunchError::Open { .. } => {
            "run as a user who may open the VFIO devices (root, or the kvm/vfio group)"
        }
        LaunchError::GuestFile { .. } => {
            "give that user read access (and write access to disks without readonly=on), e.g. through its group"
        }
        LaunchError::Exec(_) => "check that the QEMU binary runs (see `aplaunch check --qemu`)",
        // a failure this CLI does not know yet: its message stands alone
        _ => "",
    };
    let app = match &err {
        LaunchError::QmpInUse { .. } => AppError::refused(ErrorKind::QmpInUse, err.to_string()),
        LaunchError::ConsoleInUse { .. } => {
            AppError::refused(ErrorKind::ConsoleInUse, err.to_string())
        }
        LaunchError::TreeRoot { .. } | LaunchError::User { .. } => AppError::usage(err.to_string()),
        LaunchError::QmpDirNotPrivate { .. } => {
            AppError::refused(ErrorKind::QmpDirNotPrivate, err.to_string())
        }
        LaunchError::GuestFile { .. } => AppError::new(
            ErrorKind::GuestFile,
            super::output::Exit::Usage,
            err.to_string(),
        ),
        LaunchError::Exec(_) => AppError::failed(ErrorKind::Exec, err.to_string()),
        _ => AppError::failed(ErrorKind::Io, err.to_string()),
    };
    Err(if hint.is_empty() {
        app
    } else {
        app.with_hint(hint)
    })
}

/// Ends a launch that will not start QEMU: the error with the checks (one JSON document,
/// exit by the error), or the check table and then the error.
fn refuse_with_report(out: &Output, report: &Report, err: AppError) -> Result<Exit, AppError> {
    if out.json {
        out.json_document(&serde_json::json!({
            "ok": false,
            "error": err,
            "checks": report.checks,
        }));
        return Ok(err.exit);
    }
    out.human(&report.render(out.colour));
    out.human("\n");
    Err(err)
}

/// A launch on a host tree execs only when the tree was named on the command line and
/// `--exec-on-host-root` asks for it: the checks describe the tree, QEMU runs here.
fn exec_policy(
    root: &host::HostRoot,
    global: &GlobalArgs,
    args: &LaunchArgs,
) -> Result<(), AppError> {
    let why = if global.host_root_from_env {
        format!(
            "the host root {} comes from APLAUNCH_HOST_ROOT, and a host root from the environment never launches",
            root.dir().display()
        )
    } else if !args.exec_on_host_root {
        format!(
            "the host root {} is not /: the checks ran against that tree, not this host",
            root.dir().display()
        )
    } else {
        return Ok(());
    };
    Err(AppError::usage(format!("not launching: {why}")).with_hint(
        "add --dry-run to see the checks and the command line, or give --host-root DIR --exec-on-host-root to start QEMU on this host anyway",
    ))
}

fn describe_fd(source: &FdSource) -> String {
    format!("/{}", launch::fd_host_path(source))
}

/// `--accel` as the command line spells it (the library's [`Accel`] knows no clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelArg {
    /// Hardware virtualization (required for Secure Execution).
    Kvm,
    /// QEMU's emulator (testing only: no PV, no vfio-ap).
    Tcg,
}

impl From<AccelArg> for Accel {
    fn from(a: AccelArg) -> Accel {
        match a {
            AccelArg::Kvm => Accel::Kvm,
            AccelArg::Tcg => Accel::Tcg,
        }
    }
}

/// `--vfio-backend` as the command line spells it (see [`VfioBackend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VfioBackendArg {
    /// iommufd with passed descriptors when QEMU (9.0+) and the host support it, else group.
    Auto,
    /// The legacy VFIO group/container: `sysfsdev=` only.
    Group,
    /// An iommufd object and the mdev's vfio cdev, both opened by aplaunch and passed as fds.
    Iommufd,
}

impl From<VfioBackendArg> for VfioBackend {
    fn from(b: VfioBackendArg) -> VfioBackend {
        match b {
            VfioBackendArg::Auto => VfioBackend::Auto,
            VfioBackendArg::Group => VfioBackend::Group,
            VfioBackendArg::Iommufd => VfioBackend::Iommufd,
        }
    }
}
