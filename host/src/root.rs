//! [`HostRoot`]: one directory under which every host path is resolved.

use crate::error::{Error, Result};
use crate::resolve::{self, Resolution};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Environment variable that sets the host root when `--host-root` is not given.
pub const HOST_ROOT_ENV: &str = "APLAUNCH_HOST_ROOT";

/// How a recorded host path was used, which decides how a snapshot copies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Its contents were read.
    File,
    /// It was listed.
    Directory,
    /// It was opened as a device node or only tested for existence.
    Node,
}

/// Collects the host paths (relative to the root) that were accessed.
#[derive(Debug, Default)]
pub struct Recorder {
    paths: Mutex<BTreeMap<PathBuf, Access>>,
}

impl Recorder {
    /// Every recorded path with the strongest access seen for it.
    pub fn paths(&self) -> BTreeMap<PathBuf, Access> {
        self.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn record(&self, rel: &Path, access: Access) {
        if let Ok(mut paths) = self.paths.lock() {
            let entry = paths.entry(rel.to_path_buf()).or_insert(access);
            // A file read beats a mere existence test; a listing beats both.
            if access < *entry {
                *entry = access;
            }
        }
    }
}

/// Longest sysfs attribute aplaunch reads: one page, all a `show` routine can fill
/// (`sysfs_emit` is bounded by `PAGE_SIZE`, 4 KiB on s390x).
pub const ATTRIBUTE_MAX: usize = 4096;

/// Longest other host file aplaunch reads (`/proc/cpuinfo` of a big machine, `/proc/locks`,
/// mdevctl definitions): 1 MiB.
pub const FILE_MAX: usize = 1 << 20;

/// Most entries aplaunch lists in one host directory (the AP bus has at most
/// 256 cards and 65536 queues).
pub const DIR_ENTRIES_MAX: usize = 100_000;

/// The directory that stands for `/` of the host being looked at.
///
/// Paths given to its methods are host paths (`sys/bus/ap/apmask` or
/// `/sys/bus/ap/apmask`); they are always resolved under the root, never outside it:
/// symbolic links in a host tree are followed only inside the tree (see [`crate::resolve`]),
/// reads are bounded ([`ATTRIBUTE_MAX`], [`FILE_MAX`]) and refuse anything but regular files,
/// and writes go only to existing sysfs attributes or to files aplaunch creates itself.
#[derive(Debug, Clone)]
pub struct HostRoot {
    root: PathBuf,
    /// The root directory, open; `None` for the real host, whose paths are opened as they are.
    fd: Option<Arc<OwnedFd>>,
    resolution: Resolution,
    recorder: Option<Arc<Recorder>>,
}

/// The kind of a file, for messages.
fn kind_name(mode: u32) -> &'static str {
    match SFlag::from_bits_truncate(mode) & SFlag::S_IFMT {
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFLNK => "a symbolic link",
        _ => "a regular file",
    }
}

fn refused(reason: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, reason)
}

impl HostRoot {
    /// Opens a host root, which must be an existing directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let root = dir.into();
        match fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(Error::RootNotDirectory { path: root }),
            Err(_) => return Err(Error::RootMissing { path: root }),
        }
        if root == Path::new("/") {
            return Ok(Self::system());
        }
        let fd = nix::fcntl::open(
            &root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Read {
            path: root.clone(),
            source: e.into(),
        })?;
        Ok(HostRoot {
            root,
            fd: Some(Arc::new(fd)),
            resolution: Resolution::Auto,
            recorder: None,
        })
    }

    /// The real host: `/`.
    pub fn system() -> Self {
        HostRoot {
            root: PathBuf::from("/"),
            fd: None,
            resolution: Resolution::Auto,
            recorder: None,
        }
    }

    /// Resolves paths of this root with `how` ([`Resolution::Walk`]: the fallback of kernels
    /// without `openat2`, also where the kernel has it). No effect on the real host.
    pub fn with_resolution(mut self, how: Resolution) -> Self {
        self.resolution = how;
        self
    }

    /// The root directory itself.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// True when this is the real host (`/`), where device nodes are real.
    pub fn is_system(&self) -> bool {
        self.fd.is_none()
    }

    /// Starts recording every path accessed through this root (and its clones made later).
    pub fn with_recorder(mut self) -> (Self, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        self.recorder = Some(recorder.clone());
        (self, recorder)
    }

    /// Turns a host path into the host-relative form, dropping any `..` and leading `/`
    /// so a path can never escape the root.
    pub fn relative(host_path: impl AsRef<Path>) -> PathBuf {
        host_path
            .as_ref()
            .components()
            .filter_map(|c| match c {
                Component::Normal(part) => Some(part),
                _ => None,
            })
            .collect()
    }

    /// The full path of a host path under this root, for messages and for handing to
    /// programs (QEMU, mdevctl). aplaunch itself never opens it: a link in a host tree could
    /// lead out of the tree; the methods of this type resolve inside it.
    pub fn path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        self.root.join(Self::relative(host_path))
    }

    /// Records an access without performing it (device nodes opened by the caller).
    pub fn record(&self, host_path: impl AsRef<Path>, access: Access) {
        if let Some(recorder) = &self.recorder {
            recorder.record(&Self::relative(host_path), access);
        }
    }

    /// Opens a host-relative path below the root (links followed only inside it).
    pub(crate) fn open_rel(
        &self,
        rel: &Path,
        flags: OFlag,
        mode: Mode,
    ) -> std::io::Result<OwnedFd> {
        match &self.fd {
            None => Ok(nix::fcntl::open(
                &Path::new("/").join(rel),
                flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
                mode,
            )?),
            Some(root) => resolve::open(root.as_fd(), rel, flags, mode, self.resolution),
        }
    }

    /// The directory holding `rel`'s last component, and that name.
    fn open_parent_rel(&self, rel: &Path) -> std::io::Result<(OwnedFd, OsString)> {
        match &self.fd {
            None => {
                let name = rel
                    .file_name()
                    .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?
                    .to_os_string();
                let parent = Path::new("/").join(rel.parent().unwrap_or(Path::new("")));
                let dir = nix::fcntl::open(
                    &parent,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                Ok((dir, name))
            }
            Some(root) => resolve::open_parent(root.as_fd(), rel, self.resolution),
        }
    }

    /// Opens a regular file for reading or writing (never creating it). In a host tree,
    /// anything else (a FIFO, a device such as `/dev/zero`, a directory, a socket) is
    /// refused before it is opened for I/O: opening a device can have effects of its own.
    /// The real host's files are the kernel's and are opened directly.
    fn open_regular(&self, rel: &Path, flags: OFlag) -> std::io::Result<fs::File> {
        let flags = flags | OFlag::O_NONBLOCK;
        if self.fd.is_none() {
            return Ok(fs::File::from(self.open_rel(rel, flags, Mode::empty())?));
        }
        let probe = self.open_rel(rel, OFlag::O_PATH, Mode::empty())?;
        let before = nix::sys::stat::fstat(&probe)?;
        if SFlag::from_bits_truncate(before.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(refused(format!(
                "{}, not a regular file; refused",
                kind_name(before.st_mode)
            )));
        }
        let fd = self.open_rel(rel, flags, Mode::empty())?;
        let after = nix::sys::stat::fstat(&fd)?;
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) {
            return Err(refused(
                "replaced while it was being opened; refused".to_string(),
            ));
        }
        Ok(fs::File::from(fd))
    }

    /// Reads a whole file of at most `limit` bytes; a longer one is an error naming it.
    pub fn read_limited(&self, host_path: impl AsRef<Path>, limit: usize) -> Result<Vec<u8>> {
        let rel = Self::relative(&host_path);
        let path = self.root.join(&rel);
        self.record(&rel, Access::File);
        let result = self
            .open_regular(&rel, OFlag::O_RDONLY)
            .and_then(|mut f| read_bounded(&mut f, limit));
        match result {
            Ok(buf) => {
                tracing::debug!(path = %path.display(), bytes = buf.len(), "read");
                Ok(buf)
            }
            Err(source) => {
                tracing::debug!(path = %path.display(), error = %source, "read failed");
                Err(Error::Read { path, source })
            }
        }
    }

    /// Reads a whole file: at most [`ATTRIBUTE_MAX`] bytes below `sys/`, [`FILE_MAX`]
    /// elsewhere.
    pub fn read(&self, host_path: impl AsRef<Path>) -> Result<Vec<u8>> {
        let rel = Self::relative(&host_path);
        let limit = if rel.starts_with("sys") {
            ATTRIBUTE_MAX
        } else {
            FILE_MAX
        };
        self.read_limited(rel, limit)
    }

    /// Reads a sysfs attribute that may be absent (`Ok(None)`): like [`HostRoot::read_optional`]
    /// but with one `read(2)` of a page instead of reading until EOF. A sysfs attribute's
    /// `show` fills at most one page and a read at offset 0 returns all of it, so a read
    /// shorter than a page is the whole value; a full page is checked for more, which is
    /// refused ([`ATTRIBUTE_MAX`]). Only for sysfs attributes (procfs files return short
    /// reads before their end).
    pub fn read_attribute(&self, host_path: impl AsRef<Path>) -> Result<Option<String>> {
        let rel = Self::relative(&host_path);
        let path = self.root.join(&rel);
        self.record(&rel, Access::File);
        let result = self
            .open_regular(&rel, OFlag::O_RDONLY)
            .and_then(|mut f| read_page(&mut f));
        match result {
            Ok(buf) => {
                tracing::debug!(path = %path.display(), bytes = buf.len(), "read");
                Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
            }
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => {
                tracing::debug!(path = %path.display(), error = %source, "read failed");
                Err(Error::Read { path, source })
            }
        }
    }

    /// Reads a whole file as UTF-8 text (invalid bytes are replaced, and then reported
    /// by whoever parses the value). Bounded like [`HostRoot::read`].
    pub fn read_string(&self, host_path: impl AsRef<Path>) -> Result<String> {
        self.read(host_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Reads a file that may legitimately be absent: `Ok(None)` when it does not exist.
    pub fn read_optional(&self, host_path: impl AsRef<Path>) -> Result<Option<String>> {
        match self.read_string(host_path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists a directory: the entry names, sorted (at most [`DIR_ENTRIES_MAX`]).
    pub fn read_dir(&self, host_path: impl AsRef<Path>) -> Result<Vec<String>> {
        let rel = Self::relative(&host_path);
        let path = self.root.join(&rel);
        self.record(&rel, Access::Directory);
        let result = self
            .open_rel(&rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
            .and_then(|fd| {
                let mut dir = nix::dir::Dir::from_fd(fd)?;
                let mut names = Vec::new();
                for entry in dir.iter() {
                    let entry = entry?;
                    let name = entry.file_name().to_bytes();
                    if name == b"." || name == b".." {
                        continue;
                    }
                    if names.len() == DIR_ENTRIES_MAX {
                        return Err(refused(format!(
                            "more than {DIR_ENTRIES_MAX} entries; refused"
                        )));
                    }
                    names.push(String::from_utf8_lossy(name).into_owned());
                }
                Ok(names)
            });
        let mut names = result.map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        names.sort();
        tracing::debug!(path = %path.display(), entries = names.len(), "listed");
        Ok(names)
    }

    /// Reads a symbolic link's target as stored (the link itself is never followed; its
    /// directories are resolved inside the root).
    pub fn read_link(&self, host_path: impl AsRef<Path>) -> Result<PathBuf> {
        let rel = Self::relative(&host_path);
        let path = self.root.join(&rel);
        self.record(&rel, Access::Node);
        self.open_parent_rel(&rel)
            .and_then(|(dir, name)| Ok(nix::fcntl::readlinkat(&dir, name.as_os_str())?))
            .map(PathBuf::from)
            .map_err(|source| Error::Read { path, source })
    }

    /// The last component of a symbolic link's target (`driver` -> `vfio_ap`).
    pub fn link_name(&self, host_path: impl AsRef<Path>) -> Result<Option<String>> {
        match self.read_link(host_path) {
            Ok(target) => Ok(target
                .file_name()
                .map(|n: &OsStr| n.to_string_lossy().into_owned())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The metadata of a host path (following links inside the root).
    pub fn metadata(&self, host_path: impl AsRef<Path>) -> Result<fs::Metadata> {
        let rel = Self::relative(&host_path);
        let path = self.root.join(&rel);
        self.open_rel(&rel, OFlag::O_PATH, Mode::empty())
            .and_then(|fd| fs::File::from(fd).metadata())
            .map_err(|source| Error::Read { path, source })
    }

    /// Whether the host path exists (following links inside the root). Recorded as a node
    /// access.
    pub fn exists(&self, host_path: impl AsRef<Path>) -> bool {
        self.record(&host_path, Access::Node);
        self.metadata(host_path).is_ok()
    }

    /// Whether the host path is a directory (following links inside the root).
    pub fn is_dir(&self, host_path: impl AsRef<Path>) -> bool {
        self.record(&host_path, Access::Node);
        self.metadata(host_path).is_ok_and(|m| m.is_dir())
    }

    /// Whether there is an entry at the host path itself (a dangling link counts).
    pub fn entry_exists(&self, host_path: impl AsRef<Path>) -> bool {
        let rel = Self::relative(&host_path);
        self.open_parent_rel(&rel).is_ok_and(|(dir, name)| {
            nix::sys::stat::fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
        })
    }

    /// Opens a device node (or whatever is at the path) with `flags` (`O_CLOEXEC` and
    /// `O_NOCTTY` added), resolved inside the root, for callers that check its type and
    /// talk to it themselves (`/dev/kvm`, `/dev/vfio/N`, `/dev/iommu`).
    pub fn open_node(&self, host_path: impl AsRef<Path>, flags: OFlag) -> Result<OwnedFd> {
        let rel = Self::relative(&host_path);
        let path = self.root.join(&rel);
        self.record(&rel, Access::Node);
        self.open_rel(&rel, flags, Mode::empty())
            .map_err(|source| Error::Read { path, source })
    }

    /// Writes a value to an existing sysfs attribute the way `echo -n` would: one
    /// `write(2)` of all bytes, no create, no truncate (sysfs semantics). Only paths below
    /// `sys/` that are regular files are written: a host tree's link, FIFO or device there
    /// is refused and nothing is written.
    pub fn write(&self, host_path: impl AsRef<Path>, value: &[u8]) -> Result<()> {
        let rel = Self::relative(&host_path);
        let path = self.root.join(&rel);
        let shown = String::from_utf8_lossy(value).into_owned();
        let result = if !rel.starts_with("sys") {
            Err(refused(
                "not a sysfs attribute: aplaunch writes only below /sys; refused".to_string(),
            ))
        } else {
            self.open_regular(&rel, OFlag::O_WRONLY).and_then(|mut f| {
                let written = f.write(value)?;
                if written != value.len() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "short write",
                    ));
                }
                Ok(())
            })
        };
        match result {
            Ok(()) => {
                tracing::info!(path = %path.display(), value = %shown.trim_end(), "wrote");
                Ok(())
            }
            Err(source) => {
                tracing::info!(path = %path.display(), value = %shown.trim_end(), error = %source, "write refused");
                Err(Error::Write {
                    path,
                    value: shown,
                    source,
                })
            }
        }
    }

    /// Opens an existing sysfs attribute for one write (no create, no truncate; the same
    /// checks as [`HostRoot::write`]), for a caller that must make the `write(2)` itself,
    /// e.g. in a child process because the kernel may hold that write indefinitely.
    pub fn open_for_write(&self, host_path: impl AsRef<Path>) -> Result<fs::File> {
        let rel = Self::relative(&host_path);
        let path = self.root.join(&rel);
        let result = if !rel.starts_with("sys") {
            Err(refused(
                "not a sysfs attribute: aplaunch writes only below /sys; refused".to_string(),
            ))
        } else {
            self.open_regular(&rel, OFlag::O_WRONLY)
        };
        result.map_err(|source| Error::Write {
            path,
            value: String::new(),
            source,
        })
    }

    /// Creates a directory and its missing parents (mode `mode`), inside the root.
    pub fn create_dir_all(&self, host_path: impl AsRef<Path>, mode: u32) -> Result<()> {
        let rel = Self::relative(&host_path);
        let mut prefix = PathBuf::new();
        for part in rel.iter() {
            prefix.push(part);
            let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
            if self.open_rel(&prefix, dir_flags, Mode::empty()).is_ok() {
                continue;
            }
            let created = self.open_parent_rel(&prefix).and_then(|(dir, name)| {
                match nix::sys::stat::mkdirat(
                    &dir,
                    name.as_os_str(),
                    Mode::from_bits_truncate(mode as libc::mode_t),
                ) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                self.open_rel(&prefix, dir_flags, Mode::empty()).map(drop)
            });
            created.map_err(|source| Error::Create {
                path: self.root.join(&prefix),
                source,
            })?;
        }
        Ok(())
    }

    /// Writes a file aplaunch owns (an mdevctl definition) atomically: a temporary file in
    /// the same directory, fsync, rename over `host_path` (never over an existing entry
    /// unless `replace`), fsync of the directory. The directory must exist. A link at the
    /// path is replaced, never followed. Returns the full path.
    pub fn write_file_atomic(
        &self,
        host_path: impl AsRef<Path>,
        bytes: &[u8],
        mode: u32,
        replace: bool,
    ) -> Result<PathBuf> {
        let rel = Self::relative(&host_path);
        let path = self.root.join(&rel);
        let result = self.open_parent_rel(&rel).and_then(|(dir, name)| {
            let tmp = temp_name(&name);
            let fd = nix::fcntl::openat(
                &dir,
                tmp.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?;
            let unlink_tmp = |e: std::io::Error| {
                let _ = nix::unistd::unlinkat(
                    &dir,
                    tmp.as_os_str(),
                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                );
                e
            };
            let mut file = fs::File::from(fd);
            file.write_all(bytes)
                .and_then(|()| {
                    Ok(nix::sys::stat::fchmod(
                        &file,
                        Mode::from_bits_truncate(mode as libc::mode_t),
                    )?)
                })
                .and_then(|()| file.sync_all())
                .map_err(unlink_tmp)?;
            let flags = if replace {
                nix::fcntl::RenameFlags::empty()
            } else {
                nix::fcntl::RenameFlags::RENAME_NOREPLACE
            };
            nix::fcntl::renameat2(&dir, tmp.as_os_str(), &dir, name.as_os_str(), flags)
                .map_err(|e| unlink_tmp(e.into()))?;
            let _ = nix::unistd::fsync(&dir);
            Ok(())
        });
        match result {
            Ok(()) => {
                tracing::info!(path = %path.display(), bytes = bytes.len(), "created");
                Ok(path)
            }
            Err(source) => Err(Error::Create { path, source }),
        }
    }

    /// Removes a file aplaunch owns; `Ok(false)` when there was none. A link is removed
    /// itself, never what it points to.
    pub fn remove_file(&self, host_path: impl AsRef<Path>) -> Result<bool> {
        let rel = Self::relative(&host_path);
        let path = self.root.join(&rel);
        let result = self.open_parent_rel(&rel).and_then(|(dir, name)| {
            Ok(nix::unistd::unlinkat(
                &dir,
                name.as_os_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )?)
        });
        match result {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(Error::Remove { path, source }),
        }
    }
}

/// `.NAME.PID.N`: a temporary name next to `name`, unique within this process.
fn temp_name(name: &OsStr) -> OsString {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{}.{n}", std::process::id()));
    tmp
}

/// Reads to EOF, at most `limit` bytes; more is an error. No size probe (`statx` +
/// `lseek`) as `read_to_end` does: with thousands of AP queue attributes the probes would
/// be a third of the system calls.
fn read_bounded(f: &mut fs::File, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                if buf.len() + n > limit {
                    return Err(refused(format!(
                        "larger than {limit} bytes, the most aplaunch reads from this file; refused"
                    )));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One `read(2)` of a page; a full page is checked for more (refused past a page).
pub(crate) fn read_page(f: &mut fs::File) -> std::io::Result<Vec<u8>> {
    let mut page = [0u8; ATTRIBUTE_MAX];
    let n = loop {
        match f.read(&mut page) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let mut buf = page[..n].to_vec();
    if n == page.len() {
        let rest = read_bounded(f, 0).map_err(|_| {
            refused(format!(
                "larger than {ATTRIBUTE_MAX} bytes, more than a sysfs attribute holds; refused"
            ))
        })?;
        buf.extend_from_slice(&rest);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_never_escape_the_root() {
        assert_eq!(
            HostRoot::relative("/sys/../../etc/passwd"),
            PathBuf::from("sys/etc/passwd")
        );
        assert_eq!(
            HostRoot::relative("proc/cpuinfo"),
            PathBuf::from("proc/cpuinfo")
        );
    }

    #[test]
    fn open_rejects_missing_and_non_directory_roots() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        assert!(matches!(
            HostRoot::open(dir.path().join("nope")),
            Err(Error::RootMissing { .. })
        ));
        assert!(matches!(
            HostRoot::open(&file),
            Err(Error::RootNotDirectory { .. })
        ));
    }

    #[test]
    fn attributes_are_read_whole_up_to_a_page() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::open(dir.path()).unwrap();
        fs::write(dir.path().join("a"), "in use\n").unwrap();
        assert_eq!(
            root.read_attribute("a").unwrap().as_deref(),
            Some("in use\n")
        );
        let page = "x".repeat(ATTRIBUTE_MAX);
        fs::write(dir.path().join("p"), &page).unwrap();
        assert_eq!(root.read_attribute("p").unwrap(), Some(page));
        fs::write(dir.path().join("b"), "x".repeat(ATTRIBUTE_MAX + 1)).unwrap();
        let e = root.read_attribute("b").unwrap_err().to_string();
        assert!(e.contains("/b: larger than 4096 bytes"), "{e}");
        assert_eq!(root.read_attribute("missing").unwrap(), None);
    }

    #[test]
    fn recorder_keeps_the_strongest_access() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sys/a")).unwrap();
        fs::write(dir.path().join("sys/a/x"), "1\n").unwrap();
        let (root, rec) = HostRoot::open(dir.path()).unwrap().with_recorder();
        assert!(root.exists("/sys/a/x"));
        assert_eq!(root.read_string("/sys/a/x").unwrap(), "1\n");
        root.read_dir("sys/a").unwrap();
        assert!(root.read_optional("sys/a/missing").unwrap().is_none());
        let paths = rec.paths();
        assert_eq!(paths[Path::new("sys/a/x")], Access::File);
        assert_eq!(paths[Path::new("sys/a")], Access::Directory);
    }
}
