//! Path resolution confined to a host root.
//!
//! A host tree is untrusted input: any of its directories or files may be a symbolic link,
//! absolute or full of `..`, planted to make a root tool read or write outside the tree.
//! Every path below a host root is therefore resolved the way the kernel resolves it for a
//! process whose `/` is the root (`openat2(2)` with `RESOLVE_IN_ROOT`, Linux 5.6,
//! commit fddb5d430ad9 "open: introduce openat2(2) syscall"): an absolute link target starts
//! again at the root, `..` stops at the root, and magic links (`/proc/PID/fd/N`,
//! `/proc/self/root`) are refused (`RESOLVE_NO_MAGICLINKS`). A link in a tree made from
//! a real host (`/sys/bus/ap/devices/card05 -> ../../../devices/ap/card05`) thus resolves
//! inside the tree, and a link to `/etc/passwd` reaches `ROOT/etc/passwd`, never the real
//! one.
//!
//! Kernels before 5.6, and user-mode emulators without the system call (qemu-user for the
//! s390x test suite), get the same semantics from a walk over the components: each one is
//! opened with `O_NOFOLLOW` relative to the directory before it, and a link's target is read
//! with `readlinkat` and walked in its place, starting over at the root when it is absolute.

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU8, Ordering};

/// How paths below a root are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// `openat2(2)` with `RESOLVE_IN_ROOT` where the kernel has it, else the component walk.
    Auto,
    /// Always the component walk (kernels before 5.6, emulators; tests of the fallback).
    Walk,
}

/// The most symbolic links one resolution follows (the kernel's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

const OPENAT2_UNKNOWN: u8 = 0;
const OPENAT2_YES: u8 = 1;
const OPENAT2_NO: u8 = 2;
static OPENAT2: AtomicU8 = AtomicU8::new(OPENAT2_UNKNOWN);

/// Whether `openat2` answered this process (after the first resolution through it).
pub fn openat2_available() -> Option<bool> {
    match OPENAT2.load(Ordering::Relaxed) {
        OPENAT2_YES => Some(true),
        OPENAT2_NO => Some(false),
        _ => None,
    }
}

/// Opens `rel` (a host-relative path) below the directory `root`, following links only
/// inside it. `O_CLOEXEC` is always added, and `O_NOCTTY` unless `O_PATH` (openat2 refuses
/// other flags with `O_PATH`).
pub fn open(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlag,
    mode: Mode,
    how: Resolution,
) -> io::Result<OwnedFd> {
    let flags = if flags.contains(OFlag::O_PATH) {
        flags | OFlag::O_CLOEXEC
    } else {
        flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY
    };
    let rel_or_dot = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    if how == Resolution::Auto && OPENAT2.load(Ordering::Relaxed) != OPENAT2_NO {
        let open_how = OpenHow::new()
            .flags(flags)
            .mode(mode)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        // EAGAIN: a rename raced with a `..` step; the kernel asks to try again.
        for _ in 0..8 {
            match nix::fcntl::openat2(root, rel_or_dot, open_how) {
                Ok(fd) => {
                    OPENAT2.store(OPENAT2_YES, Ordering::Relaxed);
                    return Ok(fd);
                }
                Err(Errno::EAGAIN) => continue,
                // No system call (old kernel, emulator) or a filter refusing it.
                Err(Errno::ENOSYS) | Err(Errno::EPERM)
                    if OPENAT2.load(Ordering::Relaxed) != OPENAT2_YES =>
                {
                    OPENAT2.store(OPENAT2_NO, Ordering::Relaxed);
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    walk(root, rel, flags, mode)
}

/// Opens the directory holding `rel`'s last component (resolved like [`open`]) and returns
/// it with that last name, for operations on the entry itself (create, rename, unlink,
/// readlink) that must not follow it.
pub fn open_parent(
    root: BorrowedFd<'_>,
    rel: &Path,
    how: Resolution,
) -> io::Result<(OwnedFd, OsString)> {
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?
        .to_os_string();
    let parent = rel.parent().unwrap_or(Path::new(""));
    let dir = open(
        root,
        parent,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
        how,
    )?;
    Ok((dir, name))
}

enum Step {
    Name(OsString),
    Up,
}

fn push_front_components(pending: &mut VecDeque<Step>, path: &Path) {
    let steps: Vec<Step> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Step::Name(n.to_os_string())),
            Component::ParentDir => Some(Step::Up),
            _ => None,
        })
        .collect();
    for step in steps.into_iter().rev() {
        pending.push_front(step);
    }
}

/// The component walk: `RESOLVE_IN_ROOT` semantics without `openat2`.
fn walk(root: BorrowedFd<'_>, rel: &Path, flags: OFlag, mode: Mode) -> io::Result<OwnedFd> {
    let mut pending = VecDeque::new();
    push_front_components(&mut pending, rel);
    // The directories entered below the root; `..` leaves the last one, never the root.
    let mut dirs: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    loop {
        let here = dirs.last().map(|d| d.as_fd()).unwrap_or(root);
        let name = match pending.pop_front() {
            None => {
                // The path ends at a directory already entered (or is the root itself).
                return Ok(nix::fcntl::openat(here, ".", flags, mode)?);
            }
            Some(Step::Up) => {
                dirs.pop();
                continue;
            }
            Some(Step::Name(name)) => name,
        };
        let last = pending.is_empty();
        let kind = match fstatat(
            here,
            name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => Some(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT),
            Err(Errno::ENOENT) if last => None,
            Err(e) => return Err(e.into()),
        };
        if kind == Some(SFlag::S_IFLNK) {
            links += 1;
            if links > MAX_LINKS {
                return Err(Errno::ELOOP.into());
            }
            let target = nix::fcntl::readlinkat(here, name.as_os_str())?;
            let target = Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()));
            if target.is_absolute() {
                dirs.clear();
            }
            push_front_components(&mut pending, target);
            continue;
        }
        if last {
            // O_NOFOLLOW: a link swapped in since the fstatat fails instead of being followed.
            return Ok(nix::fcntl::openat(
                here,
                name.as_os_str(),
                flags | OFlag::O_NOFOLLOW,
                mode,
            )?);
        }
        let dir = nix::fcntl::openat(
            here,
            name.as_os_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        dirs.push(dir);
    }
}
