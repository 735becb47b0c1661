//! Launching a guest as a library: check everything, build the command line, exec QEMU.
//!
//! [`plan`] runs every check (host, mdev, image, QEMU) and builds the command line;
//! [`exec`] opens the passed descriptors, prepares the QMP socket's directory and replaces
//! the process with QEMU. Orchestrators that run QEMU themselves use [`plan`] and the argv.

use crate::builder::{self, FdSource, LaunchPlan};
use crate::checks::{host_facts, launch_report, probe_qemu};
use crate::probe::{self, ProbeError, Probed};
use crate::spec::{ConsoleBackend, VfioBackend, VmSpec};
use host::{Check, CheckId, HostRoot, Report};
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// How to plan a launch.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct LaunchOptions {
    /// Go ahead despite failed checks (they become warnings).
    pub force: bool,
    /// Probe QEMU again instead of using the cache.
    pub no_cache: bool,
    /// Exec even though the host root is a tree, not `/`: the checks ran against the tree
    /// and QEMU runs on this host. Set only on the user's explicit request.
    pub exec_on_tree: bool,
}

/// A planned launch: the checks and the command line.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Planned {
    /// The spec.
    pub spec: VmSpec,
    /// The checks (failures demoted to warnings under `force`).
    pub report: Report,
    /// The command line, built even when the checks failed.
    pub plan: LaunchPlan,
    /// True when a check failed and `force` was not given: do not run it.
    pub refused: bool,
    /// The mdev as read from sysfs (when it exists), for opening its vfio cdev.
    pub mdev: Option<vfio::mdev::MdevInfo>,
    /// [`LaunchOptions::exec_on_tree`].
    pub exec_on_tree: bool,
}

/// Why a launch did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// Another QEMU listens on the QMP socket.
    #[error("{path} is the QMP socket of a running QEMU")]
    QmpInUse {
        /// The socket.
        path: PathBuf,
    },
    /// Another process listens on the console socket.
    #[error("{path} is a console socket another process listens on")]
    ConsoleInUse {
        /// The socket.
        path: PathBuf,
    },
    /// The QMP socket's directory could not be created.
    #[error("cannot create {path}: {source}")]
    QmpDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The host root is a tree and exec on it was not asked for.
    #[error("the host root {root} is not /: the checks describe that tree, not this host, so QEMU is not started")]
    TreeRoot {
        /// The root.
        root: PathBuf,
    },
    /// The QMP socket's default directory is not private to this user.
    #[error("{path} {reason}: another user could take over the guest's QMP socket")]
    QmpDirNotPrivate {
        /// The directory.
        path: PathBuf,
        /// What is wrong (owner, mode, a link).
        reason: String,
    },
    /// QEMU cannot be started as the `--user`.
    #[error("cannot start QEMU as user {user}: {reason}")]
    User {
        /// The user.
        user: String,
        /// Why.
        reason: String,
    },
    /// A descriptor to pass could not be opened.
    #[error("cannot open {path} for QEMU: {reason}")]
    Open {
        /// The host path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A file the guest needs cannot be opened by the user QEMU runs as.
    #[error("as user {user}: {source}")]
    GuestFile {
        /// The `--user`.
        user: String,
        /// Which file and why.
        source: GuestFileError,
    },
    /// exec failed.
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
}

/// A file the guest needs that QEMU could not open.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {what} {path} for {access}: {reason}")]
#[non_exhaustive]
pub struct GuestFileError {
    /// Which file it is (`the kernel`, `disk #2`).
    pub what: String,
    /// The path as given.
    pub path: PathBuf,
    /// `reading` or `reading and writing`.
    pub access: &'static str,
    /// Why.
    pub reason: String,
}

/// Checks that every file QEMU opens for the guest (kernel, initrd and disks; the SE
/// image has its own checks) can be opened here as QEMU will open it: read-only, and disks without `readonly=on`
/// read-write. Nothing is read or changed. Run before exec, because QEMU reports a
/// missing file only after starting, with its exit status 1, which is indistinguishable
/// from a failed check.
pub fn check_guest_files(spec: &VmSpec) -> Result<(), GuestFileError> {
    use crate::spec::Boot;
    let mut files: Vec<(String, &Path, bool)> = Vec::new();
    match &spec.boot {
        Boot::Plain { kernel, initrd, .. } => {
            if let Some(k) = kernel {
                files.push(("the kernel".into(), k, false));
            }
            if let Some(i) = initrd {
                files.push(("the initrd".into(), i, false));
            }
        }
        // the SE image is read by the image checks, which name it in the report
        Boot::Pv { .. } => {}
    }
    for (i, disk) in spec.disks.iter().enumerate() {
        files.push((format!("disk #{}", i + 1), &disk.path, !disk.readonly));
    }
    for (what, path, write) in files {
        let access = if write {
            "reading and writing"
        } else {
            "reading"
        };
        let fail = |reason: String| GuestFileError {
            what: what.clone(),
            path: path.to_path_buf(),
            access,
            reason,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(|e| fail(e.to_string()))?;
        let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
        if meta.is_dir() {
            return Err(fail("it is a directory".into()));
        }
    }
    Ok(())
}

/// Where QMP sockets go by default: `/run/aplaunch` for root, else
/// `$XDG_RUNTIME_DIR/aplaunch`, else `/tmp/aplaunch-UID`.
pub fn default_qmp_dir() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/aplaunch");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("aplaunch"),
        None => PathBuf::from(format!("/tmp/aplaunch-{uid}")),
    }
}

/// Runs every check for `spec` on the host under `root` (probing QEMU through the cache)
/// and builds the command line.
pub fn plan(root: &HostRoot, spec: VmSpec, options: &LaunchOptions) -> Planned {
    let uv = pv::UvInfo::read(root);
    let probed: Result<Probed, ProbeError> =
        probe_qemu(root, spec.qemu.as_deref(), options.no_cache);
    // One AP scan serves the mdev checks and the builder (the mdev's vfio cdev).
    let scan = spec.mdev.map(|_| vfio::scan::ApScan::read_for_checks(root));
    let mut report = launch_report(root, &uv, &spec, scan.as_ref(), &probed, options.no_cache);
    let caps = probed.as_ref().ok().map(|p| &p.caps);
    let mdev = spec
        .mdev
        .zip(scan.as_ref())
        .and_then(|(u, scan)| scan.mdev(&u.hyphenated().to_string()).cloned());
    let facts = host_facts(root, &uv, &spec, mdev.as_ref());
    let binary = match &probed {
        Ok(p) => p.caps.binary.clone(),
        Err(_) => spec
            .qemu
            .clone()
            .unwrap_or_else(|| PathBuf::from(probe::QEMU_NAME)),
    };
    let plan = builder::build(&spec, &binary, caps, &facts);
    if spec.mdev.is_some() && spec.vfio_backend == VfioBackend::Iommufd {
        report.push(iommufd_check(caps, &facts));
    }
    let mut refused = false;
    if !report.ok {
        if options.force {
            report = report.forced();
        } else {
            refused = true;
        }
    }
    Planned {
        spec,
        report,
        plan,
        refused,
        mdev,
        exec_on_tree: options.exec_on_tree,
    }
}

/// `vfio-iommufd`: an explicit `--vfio-backend iommufd` needs QEMU, kernel and mdev support.
fn iommufd_check(caps: Option<&probe::QemuCaps>, facts: &builder::HostFacts) -> Check {
    const ID: CheckId = CheckId::VfioIommufd;
    let mut missing = Vec::new();
    if !caps.is_some_and(|c| c.version.at_least(9, 0) && c.vfio_ap_iommufd()) {
        missing.push("QEMU 9.0+ with vfio-ap fd passing");
    }
    if !facts.iommufd {
        missing.push("/dev/iommu");
    }
    if facts.vfio_cdev.is_none() {
        missing.push("a vfio cdev for the mdev (/sys/bus/mdev/devices/UUID/vfio-dev)");
    }
    if missing.is_empty() {
        Check::pass(ID, "iommufd backend: QEMU takes the iommufd and the mdev's vfio cdev as passed descriptors")
    } else {
        Check::fail(
            ID,
            format!("--vfio-backend iommufd needs {}", missing.join(", ")),
            "use --vfio-backend group (or auto), or a kernel with CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV and QEMU 9.0+",
        )
    }
}

/// Opens the descriptors the plan passes, prepares the QMP socket and replaces this
/// process with QEMU. Returns only on failure.
pub fn exec(root: &HostRoot, planned: &Planned) -> LaunchError {
    if !root.is_system() && !planned.exec_on_tree {
        return LaunchError::TreeRoot {
            root: root.dir().to_path_buf(),
        };
    }
    if let Err(e) = prepare_socket(&planned.spec.qmp) {
        return e;
    }
    if let ConsoleBackend::Socket { path } = &planned.spec.console_backend {
        if let Err(e) = prepare_socket(path) {
            return match e {
                LaunchError::QmpInUse { path } => LaunchError::ConsoleInUse { path },
                other => other,
            };
        }
    }
    let fds = match open_passed_fds(root, planned) {
        Ok(fds) => fds,
        Err(e) => return e,
    };
    let plan = &planned.plan;
    if let Some(user) = &plan.drop_to_user {
        if let Err(e) = become_user(user, &planned.spec) {
            return e;
        }
        // QEMU opens the kernel and disks as this user: check again with its rights
        if let Err(source) = check_guest_files(&planned.spec) {
            return LaunchError::GuestFile {
                user: user.clone(),
                source,
            };
        }
    }
    tracing::info!(command = %builder::shell_line(&plan.argv), "exec");
    LaunchError::Exec(crate::exec::exec(&plan.binary, &plan.argv, fds))
}

/// Creates a socket's directory (mode 0700) and refuses a socket another process is
/// listening on (QEMU would unlink it and take its place).
fn prepare_socket(path: &Path) -> Result<(), LaunchError> {
    use std::os::unix::fs::DirBuilderExt;
    let parent = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = parent.filter(|d| *d == default_qmp_dir()) {
        ensure_private_dir(dir)?;
    }
    if let Some(dir) = parent {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| LaunchError::QmpDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(LaunchError::QmpInUse {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Switches this process to `user` (its groups, group and user) once everything QEMU
/// needs as root is open (the passed descriptors), after handing it the QMP and console
/// sockets' directories, so QEMU starts unprivileged under its full sandbox.
fn become_user(name: &str, spec: &VmSpec) -> Result<(), LaunchError> {
    use nix::unistd::{chown, initgroups, setgid, setuid, User};
    let failed = |what: String, e: nix::Error| LaunchError::User {
        user: name.to_string(),
        reason: format!("{what}: {}", e.desc()),
    };
    let user = match User::from_name(name) {
        Ok(Some(u)) => u,
        Ok(None) => {
            return Err(LaunchError::User {
                user: name.to_string(),
                reason: "no such user".into(),
            })
        }
        Err(e) => return Err(failed("cannot look it up".into(), e)),
    };
    if !nix::unistd::geteuid().is_root() {
        return Err(LaunchError::User {
            user: name.to_string(),
            reason: "only root can start QEMU as another user".into(),
        });
    }
    let mut dirs = vec![spec.qmp.parent()];
    if let ConsoleBackend::Socket { path } = &spec.console_backend {
        dirs.push(path.parent());
    }
    for dir in dirs
        .into_iter()
        .flatten()
        .filter(|d| !d.as_os_str().is_empty())
    {
        chown(dir, Some(user.uid), Some(user.gid))
            .map_err(|e| failed(format!("cannot hand {} to it", dir.display()), e))?;
    }
    let cname = std::ffi::CString::new(name).map_err(|_| LaunchError::User {
        user: name.to_string(),
        reason: "the name holds a NUL byte".into(),
    })?;
    initgroups(&cname, user.gid).map_err(|e| failed("initgroups".into(), e))?;
    setgid(user.gid).map_err(|e| failed("setgid".into(), e))?;
    setuid(user.uid).map_err(|e| failed("setuid".into(), e))?;
    Ok(())
}

/// Whether `dir` is root's QMP directory handed to `uid` (its group is that user's too).
fn handed_to(dir: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return false;
    };
    std::fs::symlink_metadata(dir).is_ok_and(|m| m.gid() == user.gid.as_raw())
}

/// Makes sure aplaunch's default QMP directory is private: created mode 0700 when missing,
/// and then, every time, a real directory (not a link) owned by this user with no access
/// for others. `/tmp/aplaunch-UID` is a predictable name another user may have made first.
pub fn ensure_private_dir(dir: &Path) -> Result<(), LaunchError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|source| LaunchError::QmpDir {
                    path: parent.to_path_buf(),
                    source,
                })?;
        }
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(LaunchError::QmpDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let not_private = |reason: String| LaunchError::QmpDirNotPrivate {
        path: dir.to_path_buf(),
        reason,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|source| LaunchError::QmpDir {
        path: dir.to_path_buf(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(not_private("is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(not_private("is not a directory".into()));
    }
    let uid = nix::unistd::geteuid().as_raw();
    // root hands the directory to a `--user` QEMU; only root may own it or give it away
    if meta.uid() != uid && !(uid == 0 && meta.uid() != 0 && handed_to(dir, meta.uid())) {
        return Err(not_private(format!(
            "belongs to UID {}, not to this user (UID {uid})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(not_private(format!(
            "has mode {:04o}; it must be 0700",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// The host path a passed descriptor is opened from.
pub fn fd_host_path(source: &FdSource) -> String {
    match source {
        FdSource::Iommufd => "dev/iommu".to_string(),
        FdSource::VfioCdev(name) => format!("dev/vfio/devices/{name}"),
    }
}

/// Opens the descriptors the plan passes (O_CLOEXEC until exec moves them into place)
/// with the vfio crate's openers.
fn open_passed_fds(
    root: &HostRoot,
    planned: &Planned,
) -> Result<Vec<(OwnedFd, RawFd)>, LaunchError> {
    let mut fds = Vec::new();
    for passed in &planned.plan.fds {
        let opened = match (&passed.source, &planned.mdev) {
            (FdSource::Iommufd, _) => vfio::device::open_iommufd(root),
            (FdSource::VfioCdev(_), Some(mdev)) => vfio::device::open_cdev(root, mdev),
            (FdSource::VfioCdev(_), None) => {
                return Err(LaunchError::Open {
                    path: format!("/{}", fd_host_path(&passed.source)),
                    reason: "the mdev could not be read from sysfs".into(),
                })
            }
        };
        let fd = opened.map_err(|e| LaunchError::Open {
            path: format!("/{}", fd_host_path(&passed.source)),
            reason: e.to_string(),
        })?;
        fds.push((fd, passed.target));
    }
    Ok(fds)
}

#[cfg(test)]
mod private_dir_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_qmp_directory_must_be_private_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let qmp = dir.path().join("run/aplaunch-test");
        ensure_private_dir(&qmp).unwrap();
        let mode = std::fs::metadata(&qmp).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // checked again on the next launch: opened up meanwhile
        std::fs::set_permissions(&qmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = ensure_private_dir(&qmp).unwrap_err().to_string();
        assert!(e.contains("has mode 0755"), "{e}");
        // a link another user planted
        let link = dir.path().join("run/aplaunch-link");
        std::os::unix::fs::symlink(&qmp, &link).unwrap();
        let e = ensure_private_dir(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        // another owner (needs root to arrange)
        if nix::unistd::geteuid().is_root() {
            let other = dir.path().join("run/aplaunch-other");
            std::fs::create_dir(&other).unwrap();
            std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o700)).unwrap();
            nix::unistd::chown(&other, Some(nix::unistd::Uid::from_raw(12345)), None).unwrap();
            let e = ensure_private_dir(&other).unwrap_err().to_string();
            assert!(e.contains("belongs to UID 12345"), "{e}");
        }
    }
}
