//! Replacing aplaunch with QEMU: `execv` with exactly the intended descriptors open.
//!
//! stdin, stdout and stderr stay; each passed descriptor is moved to the number the argv
//! names and loses `FD_CLOEXEC`; every other descriptor gets `FD_CLOEXEC`, so nothing
//! aplaunch opened (cache files, host files, sockets) leaks into QEMU.

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Why exec did not happen (it only ever returns on failure).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// An argument holds a NUL byte, which no argv can carry.
    #[error("argument {index} contains a NUL byte")]
    Nul {
        /// Its position in argv.
        index: usize,
    },
    /// Arranging the descriptors failed.
    #[error("cannot prepare descriptor {fd} for QEMU: {source}")]
    Fd {
        /// The descriptor.
        fd: RawFd,
        /// The error.
        source: nix::Error,
    },
    /// `execv` failed.
    #[error("cannot execute {path}: {source}")]
    Exec {
        /// The binary.
        path: String,
        /// The error.
        source: nix::Error,
    },
}

/// Replaces this process with `binary` and `argv` (`argv[0]` included); `fds` pairs each
/// descriptor to pass with the number it must have. Returns only on failure.
pub fn exec(binary: &Path, argv: &[OsString], fds: Vec<(OwnedFd, RawFd)>) -> ExecError {
    match prepare(binary, argv, fds) {
        Ok((path, args)) => {
            let err = nix::unistd::execv(&path, &args).unwrap_err();
            ExecError::Exec {
                path: binary.display().to_string(),
                source: err,
            }
        }
        Err(e) => e,
    }
}

fn prepare(
    binary: &Path,
    argv: &[OsString],
    fds: Vec<(OwnedFd, RawFd)>,
) -> Result<(CString, Vec<CString>), ExecError> {
    let path =
        CString::new(binary.as_os_str().as_bytes()).map_err(|_| ExecError::Nul { index: 0 })?;
    let args = argv
        .iter()
        .enumerate()
        .map(|(index, a)| CString::new(a.as_bytes()).map_err(|_| ExecError::Nul { index }))
        .collect::<Result<Vec<_>, _>>()?;
    arrange_fds(fds)?;
    // Rust ignores SIGPIPE; QEMU should start with the default disposition.
    // SAFETY: resetting a signal disposition to its default has no memory effects.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    Ok((path, args))
}

/// Moves each descriptor to its target number without CLOEXEC and marks every other
/// descriptor above stderr CLOEXEC.
pub fn arrange_fds(fds: Vec<(OwnedFd, RawFd)>) -> Result<(), ExecError> {
    // First move every source above all targets so no dup2 clobbers a later source.
    let floor = fds.iter().map(|(_, t)| *t).max().unwrap_or(2) + 1;
    let mut staged = Vec::with_capacity(fds.len());
    for (fd, target) in fds {
        let raw = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(floor)).map_err(|source| ExecError::Fd {
            fd: fd.as_raw_fd(),
            source,
        })?;
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
        let high = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        drop(fd);
        staged.push((high, target));
    }
    cloexec_all_from(3)?;
    for (high, target) in &staged {
        // dup2 gives the new descriptor no FD_CLOEXEC: exactly these survive exec.
        // SAFETY: dup2 onto a number we decided to own; whatever was there is replaced,
        // which is intended (only stdio and the passed descriptors reach QEMU).
        let r = unsafe { libc::dup2(high.as_raw_fd(), *target) };
        if r < 0 {
            return Err(ExecError::Fd {
                fd: *target,
                source: nix::Error::last(),
            });
        }
    }
    Ok(())
}

/// Sets FD_CLOEXEC on every descriptor >= `first`.
fn cloexec_all_from(first: RawFd) -> Result<(), ExecError> {
    // close_range(CLOSE_RANGE_CLOEXEC) does it in one call (Linux 5.11+).
    // SAFETY: the syscall only changes descriptor flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if r == 0 {
        return Ok(());
    }
    // Older kernels (and emulators): walk the open descriptors.
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|e| ExecError::Fd {
        fd: first,
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    let fds: Vec<RawFd> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .filter(|fd| *fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: borrowing a descriptor number only to change its flags; a number that
        // was the directory's own (now closed) fails with EBADF, which is ignored.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)) {
            Ok(_) | Err(nix::Error::EBADF) => {}
            Err(source) => return Err(ExecError::Fd { fd, source }),
        }
    }
    Ok(())
}
