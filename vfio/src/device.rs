//! The VFIO side of an mdev: its group node `/dev/vfio/N` and iommufd cdev
//! `/dev/vfio/devices/vfioN`, the availability test, and opening the fds a launcher passes
//! to QEMU.
//!
//! A full device open is not possible here: vfio_ap's open_device needs a KVM associated
//! with the device (EINVAL otherwise), which only QEMU has. The availability test opens the
//! group (EBUSY when another process, i.e. another guest, holds it), asks
//! `VFIO_GROUP_GET_STATUS` whether it is viable, and closes it again so QEMU can open it.
//! The ioctl is issued with nix and vfio-bindings' constants (vfio-ioctls cannot open
//! vfio-ap devices and pulls kvm-ioctls, which does not build for s390x).

use crate::error::{Error, Result};
use crate::mdev::MdevInfo;
use host::{Access, ErrorKind, HostRoot};
use nix::fcntl::OFlag;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use vfio_bindings::bindings::vfio::{vfio_group_status, VFIO_GROUP_FLAGS_VIABLE};

/// The iommufd device node (host path).
pub const IOMMUFD_NODE: &str = "dev/iommu";

/// The raw ioctl, kept out of the crate's API.
mod ioctl {
    use vfio_bindings::bindings::vfio::{vfio_group_status, VFIO_BASE, VFIO_TYPE};
    nix::ioctl_readwrite_bad!(
        vfio_group_get_status,
        nix::request_code_none!(VFIO_TYPE, VFIO_BASE + 3),
        vfio_group_status
    );
}
use ioctl::vfio_group_get_status;

/// The group node of an mdev: host path `dev/vfio/N`.
pub fn group_node(mdev: &MdevInfo) -> Option<PathBuf> {
    mdev.iommu_group
        .map(|n| PathBuf::from(format!("dev/vfio/{n}")))
}

/// The iommufd cdev of an mdev: host path `dev/vfio/devices/vfioN`.
pub fn cdev_node(mdev: &MdevInfo) -> Option<PathBuf> {
    mdev.vfio_cdev
        .as_ref()
        .map(|n| PathBuf::from(format!("dev/vfio/devices/{n}")))
}

fn open_node(root: &HostRoot, node: &Path) -> Result<OwnedFd> {
    root.open_node(node, OFlag::O_RDWR).map_err(|e| match e {
        host::Error::Read { path, source } => Error::Io { path, source },
        other => other.into(),
    })
}

/// Opens the mdev's iommufd cdev (O_RDWR | O_CLOEXEC) for handing to QEMU.
pub fn open_cdev(root: &HostRoot, mdev: &MdevInfo) -> Result<OwnedFd> {
    let node = cdev_node(mdev).ok_or_else(|| Error::Refused {
        kind: ErrorKind::NoCdev,
        message: format!(
            "mdev {} has no iommufd cdev ({}/vfio-dev is missing)",
            mdev.uuid,
            crate::mdev::mdev_dir(&mdev.uuid)
        ),
        hint: match group_node(mdev) {
            Some(g) => format!(
                "this kernel lacks VFIO cdev support (CONFIG_VFIO_DEVICE_CDEV, Linux 6.6 on); use the mdev's group /{}",
                g.display()
            ),
            None => "this kernel lacks VFIO cdev support (CONFIG_VFIO_DEVICE_CDEV, Linux 6.6 on), and the mdev has no iommu_group link either: check that vfio_ap is loaded and the mdev exists".into(),
        },
    })?;
    open_node(root, &node)
}

/// Opens `/dev/iommu` (O_RDWR | O_CLOEXEC) for handing to QEMU.
pub fn open_iommufd(root: &HostRoot) -> Result<OwnedFd> {
    open_node(root, Path::new(IOMMUFD_NODE))
}

/// The answer of the availability test.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupStatus {
    /// Opened; `viable` as VFIO_GROUP_GET_STATUS says.
    Free {
        /// All devices of the group are bound to VFIO drivers.
        viable: bool,
    },
    /// EBUSY: another process (another guest) holds the group.
    Busy,
    /// The mdev has no `iommu_group` link.
    NoGroup,
    /// The node does not exist.
    Missing(PathBuf),
    /// The node is not a VFIO group (a plain file in a host tree, ENOTTY): undecidable.
    NotVfio(String),
    /// Opening failed otherwise (permissions...).
    Failed(String),
}

/// Tests whether the mdev's VFIO group can be opened now, and closes it again.
pub fn group_status(root: &HostRoot, mdev: &MdevInfo) -> GroupStatus {
    let Some(node) = group_node(mdev) else {
        return GroupStatus::NoGroup;
    };
    let full = root.path(&node);
    // messages name the host path, the same under any host root
    let shown = format!("/{}", node.display());
    root.record(&node, Access::Node);
    let meta = match root.metadata(&node) {
        Ok(m) => m,
        Err(_) => return GroupStatus::Missing(PathBuf::from(shown)),
    };
    if !meta.file_type().is_char_device() {
        return GroupStatus::NotVfio(format!(
            "{shown} is not a character device (a recorded host tree?)"
        ));
    }
    let fd = match root.open_node(&node, OFlag::O_RDWR) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(libc::EBUSY) => return GroupStatus::Busy,
        Err(e) => {
            let reason = match e {
                host::Error::Read { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            return GroupStatus::Failed(format!("cannot open {}: {reason}", full.display()));
        }
    };
    let mut status = vfio_group_status {
        argsz: std::mem::size_of::<vfio_group_status>() as u32,
        flags: 0,
    };
    // SAFETY: the fd is open and `status` is a properly sized vfio_group_status the
    // kernel fills in.
    let r = unsafe { vfio_group_get_status(fd.as_raw_fd(), &mut status) };
    drop(fd);
    match r {
        Ok(_) => GroupStatus::Free {
            viable: status.flags & VFIO_GROUP_FLAGS_VIABLE != 0,
        },
        Err(e) => GroupStatus::NotVfio(format!(
            "{shown} did not answer VFIO_GROUP_GET_STATUS ({}): not a VFIO group",
            e.desc()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::hosttree::HostTree;

    const U: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

    #[test]
    fn nodes_of_the_example_mdev() {
        let tree = HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let m = MdevInfo::read(&root, U).unwrap();
        assert_eq!(group_node(&m), Some(PathBuf::from("dev/vfio/0")));
        assert_eq!(cdev_node(&m), Some(PathBuf::from("dev/vfio/devices/vfio0")));
        // a plain file in a host tree is never guessed to be a free group
        assert!(matches!(group_status(&root, &m), GroupStatus::NotVfio(_)));
        tree.remove("dev/vfio/0");
        assert!(matches!(group_status(&root, &m), GroupStatus::Missing(_)));
        let mut none = m.clone();
        none.iommu_group = None;
        none.vfio_cdev = None;
        assert_eq!(group_status(&root, &none), GroupStatus::NoGroup);
        assert!(open_cdev(&root, &none).is_err());
    }

    #[test]
    fn a_char_device_that_is_not_vfio_answers_enotty() {
        // /dev/null (1:3) is a character device that does not know VFIO ioctls; made in the
        // tree, because a link to the real /dev/null resolves inside the tree
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root");
            println!("skipped: making a device node needs root");
            return;
        }
        let tree = HostTree::from_example("z16-se");
        tree.remove("dev/vfio/0");
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        mknod(
            &tree.at("dev/vfio/0"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .unwrap();
        // and a link to the real /dev/null is not followed out of the tree
        std::os::unix::fs::symlink("/dev/null", tree.at("dev/vfio/1")).unwrap();
        let root0 = HostRoot::open(tree.path()).unwrap();
        assert!(root0.metadata("dev/vfio/1").is_err());
        let root = HostRoot::open(tree.path()).unwrap();
        let m = MdevInfo::read(&root, U).unwrap();
        match group_status(&root, &m) {
            GroupStatus::NotVfio(why) => assert!(why.contains("VFIO_GROUP_GET_STATUS"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fds_are_cloexec() {
        let tree = HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let m = MdevInfo::read(&root, U).unwrap();
        let fd = open_cdev(&root, &m).unwrap();
        let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert!(flags & libc::FD_CLOEXEC != 0);
        tree.write("dev/iommu", "");
        let fd = open_iommufd(&root).unwrap();
        let fl = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(fl & libc::O_ACCMODE, libc::O_RDWR);
    }
}
