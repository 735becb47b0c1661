//! The AP configuration lock shared with s390-tools: an exclusive `flock` on
//! `/run/lock/s390apconfig.lock`, held by chzdev, mdevctl's ap-check callout and aplaunch
//! while they change AP masks or mdevs.

use crate::error::{Error, Result};
use host::HostRoot;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The lock file (host path).
pub const LOCK_FILE: &str = "run/lock/s390apconfig.lock";

/// Default time to wait for the lock.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The held lock; released when dropped.
#[derive(Debug)]
pub struct ApLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl ApLock {
    /// Takes the lock, waiting up to `timeout` while another process holds it.
    pub fn acquire(root: &HostRoot, timeout: Duration) -> Result<ApLock> {
        let path = root.path(LOCK_FILE);
        // Created inside the host root only; a link, FIFO or device there is refused.
        if let Some(dir) = std::path::Path::new(LOCK_FILE).parent() {
            root.create_dir_all(dir, 0o755)?;
        }
        let start = Instant::now();
        loop {
            let file = root.open_lock_file(LOCK_FILE)?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => {
                    tracing::debug!(path = %path.display(), "AP configuration lock taken");
                    return Ok(ApLock { _lock: lock, path });
                }
                Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
                    if start.elapsed() >= timeout {
                        let holder = holder(root, &file)
                            .map(|h| format!(" by {h}"))
                            .unwrap_or_default();
                        return Err(Error::LockTimeout {
                            path,
                            holder,
                            seconds: timeout.as_secs(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, errno)) => {
                    return Err(Error::Io {
                        path,
                        source: std::io::Error::from_raw_os_error(errno as i32),
                    })
                }
            }
        }
    }

    /// The lock file's full path.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }
}

/// `PID 1234 (chzdev)` of the process holding a FLOCK on this file, from `/proc/locks`.
fn holder(root: &HostRoot, file: &File) -> Option<String> {
    let meta = file.metadata().ok()?;
    let locks = root.read_string("proc/locks").ok()?;
    let pid = holder_pid(&locks, meta.dev(), meta.ino())?;
    let comm = root
        .read_string(format!("proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_string());
    Some(match comm {
        Some(c) => format!("PID {pid} ({c})"),
        None => format!("PID {pid}"),
    })
}

/// Finds the PID of a FLOCK on device `dev`, inode `ino` in `/proc/locks` text
/// (`1: FLOCK  ADVISORY  WRITE 1234 00:19:5678 0 EOF`, device as hex major:minor).
pub fn holder_pid(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let major = nix::sys::stat::major(dev);
    let minor = nix::sys::stat::minor(dev);
    for line in locks.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // blocked waiters are listed as "1: -> FLOCK ..."
        if fields.len() < 6 || fields[1] != "FLOCK" {
            continue;
        }
        let mut id = fields[5].split(':');
        let (Some(ma), Some(mi), Some(i)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        let ok = u64::from_str_radix(ma, 16).ok() == Some(major)
            && u64::from_str_radix(mi, 16).ok() == Some(minor)
            && i.parse::<u64>().ok() == Some(ino);
        if ok {
            return fields[4].parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::hosttree::HostTree;

    #[test]
    fn a_held_lock_times_out_naming_the_holder() {
        let tree = HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let held = ApLock::acquire(&root, Duration::ZERO).unwrap();
        let meta = std::fs::metadata(held.path()).unwrap();
        let dev = meta.dev();
        tree.write(
            "proc/locks",
            format!(
                "1: POSIX  ADVISORY  WRITE 99 00:01:1 0 EOF\n2: FLOCK  ADVISORY  WRITE 4242 {:02x}:{:02x}:{} 0 EOF\n",
                nix::sys::stat::major(dev),
                nix::sys::stat::minor(dev),
                meta.ino()
            ),
        );
        tree.write("proc/4242/comm", "chzdev\n");
        let e = ApLock::acquire(&root, Duration::from_millis(120)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("s390apconfig.lock"), "{msg}");
        assert!(msg.contains("by PID 4242 (chzdev)"), "{msg}");
        drop(held);
        ApLock::acquire(&root, Duration::ZERO).unwrap();
    }

    #[test]
    fn unknown_holder_is_not_guessed() {
        let tree = HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let _held = ApLock::acquire(&root, Duration::ZERO).unwrap();
        let e = ApLock::acquire(&root, Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is held and was not released"), "{e}");
    }

    #[test]
    fn proc_locks_parsing() {
        let text = "1: FLOCK  ADVISORY  WRITE 77 fd:01:12 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 78 fd:01:12 0 EOF\n";
        let dev = nix::sys::stat::makedev(0xfd, 1);
        assert_eq!(holder_pid(text, dev, 12), Some(77));
        assert_eq!(holder_pid(text, dev, 13), None);
    }
}
