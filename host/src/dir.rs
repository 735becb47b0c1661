//! [`HostDir`]: an open directory of the host, for reading many attributes below it
//! without walking the whole path again for each (thousands of AP queue attributes).

use crate::error::{Error, Result};
use crate::root::{read_page, Access, HostRoot};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A host directory opened once; names below it are resolved relative to it.
///
/// On the real host the directory stays open and names are opened relative to it; below a
/// host tree each name is resolved from the root like every other path (links inside the
/// tree may lead anywhere in it, never out of it).
#[derive(Debug)]
pub struct HostDir {
    root: HostRoot,
    host_path: PathBuf,
    fd: Option<OwnedFd>,
}

impl HostRoot {
    /// Opens a host directory (O_DIRECTORY | O_CLOEXEC) for [`HostDir`] reads.
    pub fn open_dir(&self, host_path: impl AsRef<Path>) -> Result<HostDir> {
        let rel = HostRoot::relative(&host_path);
        let node = self
            .open_rel(&rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
            .map_err(|source| Error::Read {
                path: self.path(&rel),
                source,
            })?;
        Ok(HostDir {
            root: self.clone(),
            host_path: rel,
            fd: self.is_system().then_some(node),
        })
    }
}

impl HostDir {
    /// The directory's host path.
    pub fn host_path(&self) -> &Path {
        &self.host_path
    }

    fn full(&self, name: &str) -> PathBuf {
        self.root.path(self.host_path.join(name))
    }

    /// Like [`HostRoot::read_attribute`] for `name` below this directory.
    pub fn read_attribute(&self, name: &str) -> Result<Option<String>> {
        let Some(dir) = &self.fd else {
            return self.root.read_attribute(self.host_path.join(name));
        };
        self.root.record(self.host_path.join(name), Access::File);
        let fd = match nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(e) => {
                return Err(Error::Read {
                    path: self.full(name),
                    source: std::io::Error::from_raw_os_error(e as i32),
                })
            }
        };
        match read_page(&mut std::fs::File::from(fd)) {
            Ok(buf) => Ok(Some(String::from_utf8_lossy(&buf).into_owned())),
            Err(source) => Err(Error::Read {
                path: self.full(name),
                source,
            }),
        }
    }

    /// Like [`HostRoot::link_name`] for `name` below this directory.
    pub fn link_name(&self, name: &str) -> Result<Option<String>> {
        let Some(dir) = &self.fd else {
            return self.root.link_name(self.host_path.join(name));
        };
        self.root.record(self.host_path.join(name), Access::Node);
        match nix::fcntl::readlinkat(dir.as_fd(), name) {
            Ok(target) => Ok(Path::new(&target)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(e) => Err(Error::Read {
                path: self.full(name),
                source: std::io::Error::from_raw_os_error(e as i32),
            }),
        }
    }

    /// Whether `name` below this directory exists (without following a final link).
    pub fn exists(&self, name: &str) -> bool {
        let Some(dir) = &self.fd else {
            self.root.record(self.host_path.join(name), Access::Node);
            return self.root.entry_exists(self.host_path.join(name));
        };
        self.root.record(self.host_path.join(name), Access::Node);
        nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_below_an_open_directory_and_records_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys/d/q")).unwrap();
        std::fs::write(dir.path().join("sys/d/q/status"), "assigned\n").unwrap();
        std::os::unix::fs::symlink("../../drivers/vfio_ap", dir.path().join("sys/d/q/driver"))
            .unwrap();
        let (root, rec) = HostRoot::open(dir.path()).unwrap().with_recorder();
        let d = root.open_dir("/sys/d").unwrap();
        assert_eq!(
            d.read_attribute("q/status").unwrap().as_deref(),
            Some("assigned\n")
        );
        assert_eq!(d.read_attribute("q/none").unwrap(), None);
        assert_eq!(d.link_name("q/driver").unwrap().as_deref(), Some("vfio_ap"));
        assert_eq!(d.link_name("q/nolink").unwrap(), None);
        assert!(d.exists("q/driver") && !d.exists("q/x"));
        let paths = rec.paths();
        assert_eq!(paths[Path::new("sys/d/q/status")], Access::File);
        assert_eq!(paths[Path::new("sys/d/q/driver")], Access::Node);
        assert!(root.open_dir("sys/missing").is_err());
    }
}
