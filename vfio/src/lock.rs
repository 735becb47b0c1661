//! The AP configuration lock shared with s390-tools (chzdev, lszcrypt, mdevctl's ap-check
//! callout): the file `/run/lock/s390apconfig.lock`, held while it exists.
//!
//! The protocol is libutil's `util_lockfile` (s390-tools 2.43.0, `libutil/util_lockfile.c`),
//! which does not use `flock` at all:
//! - take: write `"<pid>\n"` into a private temporary file next to the lock
//!   (`<lock><pid %05d><time & 255 %02x>`), then `link()` it to the lock path; the link
//!   succeeding is the lock; the temporary name is unlinked again either way;
//! - held by someone else: read the lock file; the number at its start (C `atoi`) is the
//!   holder. If `kill(pid, 0)` says no such process, the lock is stale: unlink it and try again
//!   at once. A lock without a PID (empty, `0`, or not a number) is only stale once its mtime is
//!   more than 120 s old (its owner may not have written the PID yet); else wait and retry;
//! - release: unlink the lock file, only if it holds our PID.
//!
//! ap-check takes the lock for its parent's PID (mdevctl) in its `pre` callout and releases it
//! in `post`; libap retries every 30-33 ms, 3000 times. aplaunch retries at the same pace
//! within `--lock-timeout`, looks the holder's PID and command up in the real `/proc` (the
//! PID in the file is one of this machine's processes even when the lock lives under a host
//! tree), and removes the lock on every way out: drop, unwinding, and SIGINT, SIGTERM, SIGHUP
//! and SIGQUIT (a handler that unlinks it and then lets the signal's previous disposition act).

use crate::error::{Error, Result};
use crate::number::atoi;
use host::HostRoot;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The lock file (host path).
pub const LOCK_FILE: &str = "run/lock/s390apconfig.lock";

/// Default time to wait for the lock.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Age after which a lock file without a PID is stale (libutil's `WAITPID`).
pub const NO_PID_STALE_AFTER: Duration = Duration::from_secs(120);

/// Pause between attempts (libap's `AP_LOCK_DELAY_US`; plus up to 3 ms of jitter, as libap).
const RETRY_DELAY: Duration = Duration::from_millis(30);

/// libutil reads at most this many bytes of the lock file (`BUFSIZE`).
const READ_LIMIT: usize = 40;

/// The signals on which a held lock is removed before the process ends.
const RELEASE_SIGNALS: [libc::c_int; 4] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The held lock; released when dropped.
#[derive(Debug)]
pub struct ApLock {
    path: PathBuf,
    pid: i32,
    guard: Option<SignalGuard>,
}

/// Who holds the lock, as far as the lock file and `/proc` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A live process: its PID and, when readable, its command (`/proc/PID/comm`).
    Process {
        /// The PID written in the lock file.
        pid: i32,
        /// Its command name.
        command: Option<String>,
    },
    /// The file names no PID (empty, `0` or not a number): stale once it is 120 s old.
    NoPid {
        /// The start of the file's content (for the message).
        content: String,
        /// How old the file is.
        age: Duration,
    },
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Process { pid, command } => match command {
                Some(c) => write!(f, "by PID {pid} ({c})"),
                None => write!(f, "by PID {pid}"),
            },
            Holder::NoPid { content, age } => write!(
                f,
                "but names no PID (it contains {content:?}, last changed {} s ago; s390-tools and aplaunch treat such a lock as stale {} s after its last change)",
                age.as_secs(),
                NO_PID_STALE_AFTER.as_secs()
            ),
        }
    }
}

/// What one look at an existing lock file found.
enum Existing {
    /// Gone, or stale and removed: try again at once.
    Retry,
    /// Held: wait.
    Held(Holder),
}

impl ApLock {
    /// Takes the lock, waiting up to `timeout` while another process holds it.
    pub fn acquire(root: &HostRoot, timeout: Duration) -> Result<ApLock> {
        let path = root.path(LOCK_FILE);
        let dir = Path::new(LOCK_FILE).parent().unwrap_or(Path::new(""));
        // The protocol works on full paths (link(2) of a temporary file): the directory is
        // created inside the host root, and refused when its full path leads elsewhere
        // (a link out of a host tree). link(2) and O_EXCL never follow the final name.
        root.create_dir_all(dir, 0o755)?;
        let inside = root.metadata(dir)?;
        let full = root.path(dir);
        let same = std::fs::metadata(&full)
            .is_ok_and(|m| (m.dev(), m.ino()) == (inside.dev(), inside.ino()));
        if !same {
            return Err(Error::Io {
                path: full,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a symbolic link on the way leads out of the host root; refused",
                ),
            });
        }
        Self::acquire_path(path, timeout)
    }

    /// Takes the lock at a full path (the protocol, without the host root).
    pub fn acquire_path(path: PathBuf, timeout: Duration) -> Result<ApLock> {
        let pid = std::process::id() as i32;
        let temp = write_temp(&path, pid)?;
        // The handlers go in before the first link(2): from the moment the lock file names
        // us, a signal must remove it (the handler unlinks it only when it holds our PID,
        // so a wait that never got the lock leaves another holder's file alone).
        let guard = SignalGuard::install(&path, &temp, pid);
        let result = Self::link_loop(&path, &temp, pid, timeout);
        let _ = std::fs::remove_file(&temp);
        match result {
            Ok(mut lock) => {
                lock.guard = guard;
                tracing::debug!(path = %lock.path.display(), pid, "AP configuration lock taken");
                Ok(lock)
            }
            Err(e) => {
                if let Some(guard) = guard {
                    guard.uninstall();
                }
                Err(e)
            }
        }
    }

    fn link_loop(path: &Path, temp: &Path, pid: i32, timeout: Duration) -> Result<ApLock> {
        let start = Instant::now();
        loop {
            match std::fs::hard_link(temp, path) {
                Ok(()) => {
                    return Ok(ApLock {
                        path: path.to_path_buf(),
                        pid,
                        guard: None,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(Error::Io {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
            let holder = match examine(path) {
                Existing::Retry => continue,
                Existing::Held(h) => h,
            };
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Err(Error::LockTimeout {
                    path: path.to_path_buf(),
                    holder: format!(" {holder}"),
                    seconds: timeout.as_secs(),
                });
            }
            let jitter =
                Duration::from_micros(u64::from(pid as u32 ^ elapsed.subsec_nanos()) % 3000);
            std::thread::sleep((RETRY_DELAY + jitter).min(timeout - elapsed));
        }
    }

    /// The lock file's full path.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// Who holds the lock at `root` now, or `None` when nobody does.
    pub fn holder(root: &HostRoot) -> Option<Holder> {
        read_lock(&root.path(LOCK_FILE)).map(|(content, age)| holder_of(&content, age))
    }
}

impl Drop for ApLock {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            guard.uninstall();
        }
        if !release_if_ours(&self.path, self.pid) {
            tracing::warn!(
                path = %self.path.display(),
                "the AP configuration lock no longer held our PID; left it alone"
            );
        }
    }
}

fn write_temp(path: &Path, pid: i32) -> Result<PathBuf> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut name = path.as_os_str().to_owned();
    name.push(format!("{:05}{:02x}", std::process::id(), now & 255));
    let temp = PathBuf::from(name);
    let io = |source| Error::Io {
        path: temp.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(&temp)
        .map_err(io)?;
    if let Err(e) = file.write_all(format!("{pid}\n").as_bytes()) {
        let _ = std::fs::remove_file(&temp);
        return Err(io(e));
    }
    Ok(temp)
}

/// The first bytes of the lock file and its age; `None` when it does not exist.
fn read_lock(path: &Path) -> Option<(Vec<u8>, Duration)> {
    // Never a FIFO's blocking open or a link's target.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return Some((Vec::new(), Duration::ZERO));
    }
    let age = file
        .metadata()
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    let mut content = Vec::with_capacity(READ_LIMIT);
    file.take(READ_LIMIT as u64)
        .read_to_end(&mut content)
        .ok()?;
    Some((content, age))
}

/// libutil's staleness rules; removes a stale lock.
fn examine(path: &Path) -> Existing {
    let Some((content, age)) = read_lock(path) else {
        return Existing::Retry;
    };
    match holder_of(&content, age) {
        Holder::Process { pid, .. } if !pid_exists(pid) => {
            remove_stale(path, &content);
            Existing::Retry
        }
        Holder::NoPid { age, .. } if age > NO_PID_STALE_AFTER => {
            remove_stale(path, &content);
            Existing::Retry
        }
        h => Existing::Held(h),
    }
}

fn holder_of(content: &[u8], age: Duration) -> Holder {
    let pid = atoi(content);
    if pid > 0 {
        Holder::Process {
            pid,
            command: command_of(pid),
        }
    } else {
        Holder::NoPid {
            content: String::from_utf8_lossy(content).into_owned(),
            age,
        }
    }
}

/// Removes a stale lock, unless it changed since it was read (someone took it meanwhile).
fn remove_stale(path: &Path, seen: &[u8]) {
    if read_lock(path).is_some_and(|(now, _)| now == seen) {
        tracing::info!(path = %path.display(), content = %String::from_utf8_lossy(seen), "removing a stale AP configuration lock");
        let _ = std::fs::remove_file(path);
    }
}

fn release_if_ours(path: &Path, pid: i32) -> bool {
    match read_lock(path) {
        Some((content, _)) if atoi(&content) == pid => std::fs::remove_file(path).is_ok(),
        Some(_) => false,
        None => true,
    }
}

/// libutil's `pid_exists`: `kill(pid, 0)`; EPERM counts as alive (another user's process).
fn pid_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// `comm` of a process of this machine (the real `/proc`, not a host tree).
fn command_of(pid: i32) -> Option<String> {
    let mut comm = String::new();
    std::fs::File::open(format!("/proc/{pid}/comm"))
        .ok()?
        .take(64)
        .read_to_string(&mut comm)
        .ok()?;
    Some(comm.trim_end().to_string()).filter(|c| !c.is_empty())
}

/// What the signal handler needs: the lock path and our `"<pid>\n"`, prepared beforehand
/// (a handler may not allocate).
struct Registration {
    path: CString,
    /// The temporary file that is linked to `path`; removed by a signal during the wait.
    temp: CString,
    pid_line: Vec<u8>,
}

/// The lock a signal handler must remove. Registrations are leaked on purpose: a handler
/// running on another thread may still read one after the lock was dropped.
static REGISTERED: AtomicPtr<Registration> = AtomicPtr::new(std::ptr::null_mut());

/// The previous disposition of each of [`RELEASE_SIGNALS`], restored by a handler before it
/// re-raises the signal.
static mut PREVIOUS: [Option<libc::sigaction>; 4] = [None; 4];

/// Handlers installed while a lock is held.
#[derive(Debug)]
struct SignalGuard {
    previous: [Option<libc::sigaction>; 4],
}

impl SignalGuard {
    fn install(path: &Path, temp: &Path, pid: i32) -> Option<SignalGuard> {
        let reg = Registration {
            path: CString::new(path.as_os_str().as_bytes()).ok()?,
            temp: CString::new(temp.as_os_str().as_bytes()).ok()?,
            pid_line: format!("{pid}\n").into_bytes(),
        };
        let mut previous = [None; 4];
        // SAFETY: sigaction with a zeroed, filled-in struct; the handler only uses
        // async-signal-safe calls. PREVIOUS is written before the handlers are installed
        // and read only by them.
        unsafe {
            for (i, sig) in RELEASE_SIGNALS.iter().enumerate() {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(*sig, std::ptr::null(), &mut old) == 0 {
                    previous[i] = Some(old);
                }
            }
            *std::ptr::addr_of_mut!(PREVIOUS) = previous;
            REGISTERED.store(Box::into_raw(Box::new(reg)), Ordering::SeqCst);
            for (i, sig) in RELEASE_SIGNALS.iter().enumerate() {
                // a signal the process ignores stays ignored
                if previous[i].is_some_and(|o| o.sa_sigaction == libc::SIG_IGN) {
                    continue;
                }
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(*sig, &act, std::ptr::null_mut());
            }
        }
        Some(SignalGuard { previous })
    }

    fn uninstall(self) {
        // SAFETY: restores the dispositions saved in `install`.
        unsafe {
            for (i, sig) in RELEASE_SIGNALS.iter().enumerate() {
                if let Some(old) = &self.previous[i] {
                    libc::sigaction(*sig, old, std::ptr::null_mut());
                }
            }
        }
        REGISTERED.store(std::ptr::null_mut(), Ordering::SeqCst);
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    let reg = REGISTERED.swap(std::ptr::null_mut(), Ordering::SeqCst);
    // SAFETY: only open/read/close/unlink/sigaction/raise, all async-signal-safe; `reg` is
    // a leaked registration, valid forever.
    unsafe {
        if let Some(reg) = reg.as_ref() {
            // ours alone (the name carries our PID); gone already once the lock was taken
            libc::unlink(reg.temp.as_ptr());
            let fd = libc::open(reg.path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                let mut buf = [0u8; READ_LIMIT];
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                libc::close(fd);
                if n > 0 && buf[..n as usize] == reg.pid_line[..] {
                    libc::unlink(reg.path.as_ptr());
                }
            }
        }
        let index = RELEASE_SIGNALS.iter().position(|s| *s == sig);
        let previous = index.and_then(|i| (*std::ptr::addr_of!(PREVIOUS))[i]);
        match previous {
            Some(old) => {
                libc::sigaction(sig, &old, std::ptr::null_mut());
            }
            None => {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        libc::raise(sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::hosttree::HostTree;

    fn tree() -> (HostTree, HostRoot) {
        let tree = HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        (tree, root)
    }

    #[test]
    fn the_lock_is_the_file_with_our_pid_and_goes_away_on_drop() {
        let (_tree, root) = tree();
        let held = ApLock::acquire(&root, Duration::ZERO).unwrap();
        let path = held.path().clone();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        let dir: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("s390apconfig"))
            .collect();
        assert_eq!(dir.len(), 1, "no temporary file left: {dir:?}");
        assert_eq!(
            ApLock::holder(&root),
            Some(Holder::Process {
                pid: std::process::id() as i32,
                command: command_of(std::process::id() as i32)
            })
        );
        drop(held);
        assert!(!path.exists());
        assert_eq!(ApLock::holder(&root), None);
    }

    #[test]
    fn a_live_holder_is_named_and_waited_for_within_the_bound() {
        let (tree, root) = tree();
        // PID 1 of this machine is always alive
        tree.write(LOCK_FILE, "1\n");
        let e = ApLock::acquire(&root, Duration::from_millis(100))
            .unwrap_err()
            .to_string();
        assert!(e.contains("s390apconfig.lock"), "{e}");
        assert!(e.contains("by PID 1"), "{e}");
        assert_eq!(
            tree.read(LOCK_FILE),
            "1\n",
            "someone else's lock is untouched"
        );
    }

    #[test]
    fn a_dead_holder_is_stale() {
        let (tree, root) = tree();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        tree.write(LOCK_FILE, format!("{dead}\n"));
        let held = ApLock::acquire(&root, Duration::ZERO).unwrap();
        assert_eq!(
            std::fs::read_to_string(held.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
    }

    #[test]
    fn a_lock_without_pid_is_stale_only_after_120_s() {
        let (tree, root) = tree();
        for content in ["", "0\n", "garbage"] {
            tree.write(LOCK_FILE, content);
            let e = ApLock::acquire(&root, Duration::ZERO)
                .unwrap_err()
                .to_string();
            assert!(e.contains("names no PID"), "{e}");
            assert_eq!(tree.read(LOCK_FILE), content, "a young lock is left alone");
            let path = root.path(LOCK_FILE);
            let old = SystemTime::now() - Duration::from_secs(121);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(old)
                .unwrap();
            drop(ApLock::acquire(&root, Duration::ZERO).unwrap());
            assert!(!path.exists());
        }
    }

    #[test]
    fn a_lock_replaced_by_someone_else_is_not_removed_on_drop() {
        let (tree, root) = tree();
        let held = ApLock::acquire(&root, Duration::ZERO).unwrap();
        tree.write(LOCK_FILE, "1\n");
        drop(held);
        assert_eq!(tree.read(LOCK_FILE), "1\n");
    }
}
