//! The seam through which every sysfs write goes.
//!
//! [`HostWriter`] writes through [`host::HostRoot::write`] (one `write(2)`, no create, no
//! truncate). [`crate::model::KernelModel`] models the kernel's rules for tests, and
//! [`Recording`] logs the exact bytes written, in order, while passing them on.

use crate::scan::ApScan;
use host::HostRoot;
use std::cell::RefCell;
use std::io;

/// Writes sysfs attributes and reads back the state they change.
pub trait SysfsWriter {
    /// Writes `value` to the attribute at host path `path` in one write. The error's raw OS
    /// error is the kernel's errno.
    fn write(&self, path: &str, value: &[u8]) -> io::Result<()>;

    /// The AP picture that this writer's writes act on (the host's, for a real writer).
    fn scan(&self, root: &HostRoot) -> ApScan {
        ApScan::read(root)
    }
}

/// Writes the files under a host root.
#[derive(Debug, Clone)]
pub struct HostWriter {
    root: HostRoot,
}

impl HostWriter {
    /// A writer for the host under `root`.
    pub fn new(root: &HostRoot) -> Self {
        HostWriter { root: root.clone() }
    }
}

impl SysfsWriter for HostWriter {
    fn write(&self, path: &str, value: &[u8]) -> io::Result<()> {
        self.root.write(path, value).map_err(|e| match e {
            host::Error::Write { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })
    }
}

/// One logged write: host path, bytes, errno when it failed.
pub type LoggedWrite = (String, Vec<u8>, Option<i32>);

/// Passes writes on to another writer and logs each (path, bytes), including failed ones
/// (with their errno).
pub struct Recording<W> {
    inner: W,
    log: RefCell<Vec<LoggedWrite>>,
}

impl<W: SysfsWriter> Recording<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Recording {
            inner,
            log: RefCell::new(Vec::new()),
        }
    }

    /// Every write so far: path, bytes, errno when it failed.
    pub fn log(&self) -> Vec<LoggedWrite> {
        self.log.borrow().clone()
    }

    /// Every write so far as `path=value` strings (failed ones end in ` !errno`).
    pub fn lines(&self) -> Vec<String> {
        self.log
            .borrow()
            .iter()
            .map(|(p, v, e)| {
                let mut s = format!("{p}={}", String::from_utf8_lossy(v));
                if let Some(e) = e {
                    s.push_str(&format!(" !{e}"));
                }
                s
            })
            .collect()
    }

    /// The wrapped writer.
    pub fn inner(&self) -> &W {
        &self.inner
    }
}

impl<W: SysfsWriter> SysfsWriter for Recording<W> {
    fn write(&self, path: &str, value: &[u8]) -> io::Result<()> {
        let r = self.inner.write(path, value);
        self.log.borrow_mut().push((
            path.to_string(),
            value.to_vec(),
            r.as_ref().err().map(|e| e.raw_os_error().unwrap_or(-1)),
        ));
        r
    }

    fn scan(&self, root: &HostRoot) -> ApScan {
        self.inner.scan(root)
    }
}

/// The name of an errno (`EADDRINUSE`) for messages.
pub fn errno_name(errno: i32) -> String {
    let name = nix::errno::Errno::from_raw(errno);
    if name == nix::errno::Errno::UnknownErrno {
        format!("errno {errno}")
    } else {
        format!("{name:?}")
    }
}
