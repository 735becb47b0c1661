//! The seam through which every sysfs write goes.
//!
//! [`HostWriter`] writes through [`host::HostRoot::write`] (one `write(2)`, no create, no
//! truncate). The kernel models of the test-support crate (`testkit::kernel_model`) answer
//! like each kernel generation, and
//! [`Recording`] logs the exact bytes written, in order, while passing them on.

use crate::scan::ApScan;
use host::HostRoot;
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

/// The error of a bounded write that did not return in time: raw OS error ETIMEDOUT.
pub fn timed_out() -> io::Error {
    io::Error::from_raw_os_error(libc::ETIMEDOUT)
}

/// Writes sysfs attributes and reads back the state they change.
pub trait SysfsWriter {
    /// Writes `value` to the attribute at host path `path` in one write. The error's raw OS
    /// error is the kernel's errno.
    fn write(&self, path: &str, value: &[u8]) -> io::Result<()>;

    /// Writes like [`SysfsWriter::write`], but gives up after `timeout` with an error whose
    /// raw OS error is ETIMEDOUT ([`timed_out`]). For writes the kernel may hold
    /// indefinitely: `remove` of an mdev a guest still holds blocks in
    /// vfio_unregister_group_dev until QEMU releases the device.
    fn write_bounded(&self, path: &str, value: &[u8], timeout: Duration) -> io::Result<()> {
        let _ = timeout;
        self.write(path, value)
    }

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

fn io_error(e: host::Error) -> io::Error {
    match e {
        host::Error::Write { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}

impl SysfsWriter for HostWriter {
    fn write(&self, path: &str, value: &[u8]) -> io::Result<()> {
        self.root.write(path, value).map_err(io_error)
    }

    /// Opens the attribute through the host root and makes the write with
    /// [`write_file_bounded`].
    fn write_bounded(&self, path: &str, value: &[u8], timeout: Duration) -> io::Result<()> {
        let file = self.root.open_for_write(path).map_err(io_error)?;
        let r = write_file_bounded(file, value, timeout);
        match &r {
            Ok(()) => {
                tracing::info!(path, value = %String::from_utf8_lossy(value).trim_end(), "wrote")
            }
            Err(e) => tracing::info!(path, error = %e, "write refused or still blocked"),
        }
        r
    }
}

/// Makes one `write(2)` of `value` to `file` in a child process and waits for its answer at
/// most `timeout`; then fails with [`timed_out`].
///
/// Not a thread: a thread blocked in vfio_unregister_group_dev cannot be killed (after a
/// signal the kernel goes on waiting uninterruptibly), and the process could not exit while
/// it waits. A child can be left behind: when the bound runs out it goes on waiting in the
/// kernel, the write completes once QEMU releases the device, and the child then exits
/// (init reaps it once this process is gone).
pub fn write_file_bounded(file: std::fs::File, value: &[u8], timeout: Duration) -> io::Result<()> {
    let (answer_rx, answer_tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the child only makes async-signal-safe calls (write, _exit) on memory
    // prepared before the fork.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            let fd = file.as_raw_fd();
            // SAFETY: plain system calls on open fds and a live buffer.
            unsafe {
                let n = libc::write(fd, value.as_ptr().cast(), value.len());
                let code: i32 = if n < 0 {
                    *libc::__errno_location()
                } else if n as usize != value.len() {
                    libc::EIO
                } else {
                    0
                };
                let bytes = code.to_ne_bytes();
                libc::write(answer_tx.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                libc::_exit(0);
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(answer_tx);
            drop(file);
            let deadline = std::time::Instant::now() + timeout;
            let mut fds = [nix::poll::PollFd::new(
                answer_rx.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                    Ok(0) if left.is_zero() => {
                        tracing::warn!(
                            pid = child.as_raw(),
                            "write still blocked in the kernel; its process waits on"
                        );
                        return Err(timed_out());
                    }
                    Ok(0) => continue,
                    Ok(_) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let mut bytes = [0u8; 4];
            let n = nix::unistd::read(&answer_rx, &mut bytes)?;
            let _ = nix::sys::wait::waitpid(child, None);
            if n != bytes.len() {
                return Err(io::Error::other(
                    "the writing process died without an answer",
                ));
            }
            match i32::from_ne_bytes(bytes) {
                0 => Ok(()),
                errno => Err(io::Error::from_raw_os_error(errno)),
            }
        }
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

impl<W: SysfsWriter> Recording<W> {
    fn logged(&self, path: &str, value: &[u8], r: io::Result<()>) -> io::Result<()> {
        self.log.borrow_mut().push((
            path.to_string(),
            value.to_vec(),
            r.as_ref().err().map(|e| e.raw_os_error().unwrap_or(-1)),
        ));
        r
    }
}

impl<W: SysfsWriter> SysfsWriter for Recording<W> {
    fn write_bounded(&self, path: &str, value: &[u8], timeout: Duration) -> io::Result<()> {
        let r = self.inner.write_bounded(path, value, timeout);
        self.logged(path, value, r)
    }

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
