//! [`HostRoot`]: one directory under which every host path is resolved.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
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

/// The directory that stands for `/` of the host being looked at.
///
/// Paths given to its methods are host paths (`sys/bus/ap/apmask` or
/// `/sys/bus/ap/apmask`); they are always resolved under the root, never outside it.
#[derive(Debug, Clone)]
pub struct HostRoot {
    root: PathBuf,
    recorder: Option<Arc<Recorder>>,
}

impl HostRoot {
    /// Opens a host root, which must be an existing directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let root = dir.into();
        match fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => Ok(HostRoot {
                root,
                recorder: None,
            }),
            Ok(_) => Err(Error::RootNotDirectory { path: root }),
            Err(_) => Err(Error::RootMissing { path: root }),
        }
    }

    /// The real host: `/`.
    pub fn system() -> Self {
        HostRoot {
            root: PathBuf::from("/"),
            recorder: None,
        }
    }

    /// The root directory itself.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// True when this is the real host (`/`), where device nodes are real.
    pub fn is_system(&self) -> bool {
        self.root == Path::new("/")
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

    /// The full path of a host path under this root.
    pub fn path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        self.root.join(Self::relative(host_path))
    }

    /// Records an access without performing it (device nodes opened by the caller).
    pub fn record(&self, host_path: impl AsRef<Path>, access: Access) {
        if let Some(recorder) = &self.recorder {
            recorder.record(&Self::relative(host_path), access);
        }
    }

    /// Reads a whole file.
    pub fn read(&self, host_path: impl AsRef<Path>) -> Result<Vec<u8>> {
        let path = self.path(&host_path);
        self.record(&host_path, Access::File);
        let mut buf = Vec::new();
        // Sysfs files are small; O_NONBLOCK keeps a FIFO planted in a host tree from hanging us.
        let result = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_o_nonblock())
            .open(&path)
            .and_then(|mut f| read_all(&mut f, &mut buf));
        match result {
            Ok(_) => {
                tracing::debug!(path = %path.display(), bytes = buf.len(), "read");
                Ok(buf)
            }
            Err(source) => {
                tracing::debug!(path = %path.display(), error = %source, "read failed");
                Err(Error::Read { path, source })
            }
        }
    }

    /// Reads a sysfs attribute that may be absent (`Ok(None)`): like [`HostRoot::read_optional`]
    /// but with one `read(2)` of a page instead of reading until EOF. A sysfs attribute's
    /// `show` fills at most one page and a read at offset 0 returns all of it, so a read
    /// shorter than a page is the whole value; a full page falls back to reading on. Only
    /// for sysfs attributes (procfs files return short reads before their end).
    pub fn read_attribute(&self, host_path: impl AsRef<Path>) -> Result<Option<String>> {
        let path = self.path(&host_path);
        self.record(&host_path, Access::File);
        let mut page = [0u8; 4096];
        let result = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_o_nonblock())
            .open(&path)
            .and_then(|mut f| {
                let n = loop {
                    match f.read(&mut page) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                };
                let mut buf = page[..n].to_vec();
                if n == page.len() {
                    read_all(&mut f, &mut buf)?;
                }
                Ok(buf)
            });
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
    /// by whoever parses the value).
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

    /// Lists a directory: the entry names, sorted.
    pub fn read_dir(&self, host_path: impl AsRef<Path>) -> Result<Vec<String>> {
        let path = self.path(&host_path);
        self.record(&host_path, Access::Directory);
        let entries = fs::read_dir(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        tracing::debug!(path = %path.display(), entries = names.len(), "listed");
        Ok(names)
    }

    /// Reads a symbolic link's target as stored.
    pub fn read_link(&self, host_path: impl AsRef<Path>) -> Result<PathBuf> {
        let path = self.path(&host_path);
        self.record(&host_path, Access::Node);
        fs::read_link(&path).map_err(|source| Error::Read { path, source })
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

    /// Whether the host path exists (following links). Recorded as a node access.
    pub fn exists(&self, host_path: impl AsRef<Path>) -> bool {
        self.record(&host_path, Access::Node);
        self.path(host_path).exists()
    }

    /// Whether the host path is a directory (following links).
    pub fn is_dir(&self, host_path: impl AsRef<Path>) -> bool {
        self.record(&host_path, Access::Node);
        self.path(host_path).is_dir()
    }

    /// Writes a value to an existing attribute file the way `echo -n` would: one
    /// `write(2)` of all bytes, no create, no truncate (sysfs semantics).
    pub fn write(&self, host_path: impl AsRef<Path>, value: &[u8]) -> Result<()> {
        let path = self.path(&host_path);
        let shown = String::from_utf8_lossy(value).into_owned();
        let result = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| {
                let written = f.write(value)?;
                if written != value.len() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "short write",
                    ));
                }
                Ok(())
            });
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

    /// Opens an existing attribute file for one write (no create, no truncate), for a
    /// caller that must make the `write(2)` itself, e.g. in a child process because the
    /// kernel may hold that write indefinitely.
    pub fn open_for_write(&self, host_path: impl AsRef<Path>) -> Result<fs::File> {
        let path = self.path(&host_path);
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|source| Error::Write {
                path,
                value: String::new(),
                source,
            })
    }
}

/// Reads to EOF without the size probe (`statx` + `lseek`) `read_to_end` does: sysfs
/// files are small, and with thousands of AP queue attributes the probes are a third of
/// the system calls.
fn read_all(f: &mut fs::File, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => return Ok(buf.len()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn libc_o_nonblock() -> i32 {
    nix::fcntl::OFlag::O_NONBLOCK.bits()
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
    fn attributes_read_whole_also_past_a_page() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::open(dir.path()).unwrap();
        fs::write(dir.path().join("a"), "in use\n").unwrap();
        assert_eq!(
            root.read_attribute("a").unwrap().as_deref(),
            Some("in use\n")
        );
        let big = "x".repeat(10_000);
        fs::write(dir.path().join("b"), &big).unwrap();
        assert_eq!(root.read_attribute("b").unwrap(), Some(big));
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
