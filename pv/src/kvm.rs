//! Asking KVM whether it can run protected guests (`KVM_CHECK_EXTENSION`).

use host::HostRoot;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;

/// The KVM device node.
pub const KVM_NODE: &str = "dev/kvm";
/// `KVM_CAP_S390_PROTECTED`: the host can run PV guests.
pub const KVM_CAP_S390_PROTECTED: i32 = 180;
/// What `aplaunch host snapshot` writes in place of the KVM device node, followed by the
/// capability's value: a snapshot keeps KVM's answer because a device node cannot be copied.
pub const SNAPSHOT_RECORD_PREFIX: &str = "aplaunch snapshot of /dev/kvm: KVM_CAP_S390_PROTECTED=";

/// The raw ioctl, kept out of the crate's API: callers get [`check_extension`].
mod ioctl {
    const KVMIO: u8 = 0xAE;
    nix::ioctl_write_int_bad!(kvm_check_extension, nix::request_code_none!(KVMIO, 0x03));
}
use ioctl::kvm_check_extension;

/// KVM's answer, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// The ioctl returned this value (0 = not supported).
    Answer(i32),
    /// A snapshot recorded this value.
    Recorded(i32),
    /// `dev/kvm` does not exist.
    NoNode,
    /// The node exists but is not a KVM device (ENOTTY: a plain file in a host tree).
    NotKvm,
    /// The node could not be opened or the ioctl failed with this errno.
    Failed(Errno),
}

/// Issues `KVM_CHECK_EXTENSION(cap)` on `dev/kvm` under the root.
pub fn check_extension(root: &HostRoot, cap: i32) -> Capability {
    root.record(KVM_NODE, host::Access::Node);
    let Ok(meta) = root.metadata(KVM_NODE) else {
        return if root.entry_exists(KVM_NODE) {
            Capability::NotKvm // a dangling link
        } else {
            Capability::NoNode
        };
    };
    // Only a character device can be KVM; anything else (a plain file in a host tree, a
    // FIFO, a directory) is never sent an ioctl, but may hold a snapshot's record.
    if !meta.file_type().is_char_device() {
        return recorded(root).unwrap_or(Capability::NotKvm);
    }
    let fd: OwnedFd = match root.open_node(KVM_NODE, OFlag::O_RDWR | OFlag::O_NONBLOCK) {
        Ok(fd) => fd,
        Err(e) => return Capability::Failed(Errno::from_raw(e.errno().unwrap_or(libc::EIO))),
    };
    // SAFETY: KVM_CHECK_EXTENSION takes an integer argument and writes no memory.
    match unsafe { kvm_check_extension(fd.as_raw_fd(), cap) } {
        Ok(v) => Capability::Answer(v),
        Err(Errno::ENOTTY) => Capability::NotKvm,
        Err(e) => Capability::Failed(e),
    }
}

fn recorded(root: &HostRoot) -> Option<Capability> {
    // Regular files only (a FIFO or device is refused), and short.
    let text = String::from_utf8(root.read_limited(KVM_NODE, 256).ok()?).ok()?;
    let value = text.strip_prefix(SNAPSHOT_RECORD_PREFIX)?.trim_end();
    value.parse().ok().map(Capability::Recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_files_dirs_and_records() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::open(dir.path()).unwrap();
        assert_eq!(
            check_extension(&root, KVM_CAP_S390_PROTECTED),
            Capability::NoNode
        );
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::fs::write(dir.path().join("dev/kvm"), "").unwrap();
        assert_eq!(
            check_extension(&root, KVM_CAP_S390_PROTECTED),
            Capability::NotKvm
        );
        std::fs::write(
            dir.path().join("dev/kvm"),
            format!("{SNAPSHOT_RECORD_PREFIX}1\n"),
        )
        .unwrap();
        assert_eq!(
            check_extension(&root, KVM_CAP_S390_PROTECTED),
            Capability::Recorded(1)
        );
        std::fs::remove_file(dir.path().join("dev/kvm")).unwrap();
        std::fs::create_dir(dir.path().join("dev/kvm")).unwrap();
        assert_eq!(
            check_extension(&root, KVM_CAP_S390_PROTECTED),
            Capability::NotKvm
        );
    }

    #[test]
    fn dev_null_is_a_char_device_but_not_kvm() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("dev/kvm")).unwrap();
        let root = HostRoot::open(dir.path()).unwrap();
        // The real kernel answers ENOTTY; an emulator that does not know the ioctl, ENOSYS.
        match check_extension(&root, KVM_CAP_S390_PROTECTED) {
            Capability::NotKvm | Capability::Failed(Errno::ENOSYS) => {}
            other => panic!("unexpected {other:?}"),
        }
        std::fs::remove_file(dir.path().join("dev/kvm")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", dir.path().join("dev/kvm")).unwrap();
        assert_eq!(
            check_extension(&root, KVM_CAP_S390_PROTECTED),
            Capability::NotKvm
        );
    }

    #[test]
    fn fifo_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("dev/kvm"),
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
        let root = HostRoot::open(dir.path()).unwrap();
        assert_eq!(
            check_extension(&root, KVM_CAP_S390_PROTECTED),
            Capability::NotKvm
        );
    }
}
