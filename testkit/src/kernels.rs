//! Host trees of the kernel generations users run: the example host `z16-se` as a 5.15-,
//! a 6.1- and a 6.13-era kernel shows it. Each differs only in the files that kernel has
//! (docs/kernel-generations.md has the history and the commits):
//!
//! | file | 5.15 | 6.1 | 6.13 |
//! |---|---|---|---|
//! | mdev `guest_matrix` (dynamic configuration, 6.0) | - | yes | yes |
//! | mdev `ap_config` (mdevctl-automation series, 6.10) | - | - | yes |
//! | matrix `features` (driver feature advertisement, 6.12) | - | - | yes |
//! | queue `status` (5.17) | - | yes | yes |
//! | mdev `vfio-dev/vfioN` (iommufd cdev, 6.6) | - | - | yes |
//!
//! What the kernels answer to writes (EBUSY, blocking `remove`) is not in a tree's files:
//! `crate::kernel_model` models that per generation.

use crate::hosttree::HostTree;

/// The example's mdev.
pub const EXAMPLE_MDEV: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

/// A kernel generation of the host trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kernel {
    /// Linux 5.15 (Ubuntu 22.04).
    V5_15,
    /// Linux 6.1 (Debian 12).
    V6_1,
    /// Linux 6.13.
    V6_13,
}

impl Kernel {
    /// Every generation, oldest first.
    pub const ALL: [Kernel; 3] = [Kernel::V5_15, Kernel::V6_1, Kernel::V6_13];

    /// `5.15`, `6.1`, `6.13`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::V5_15 => "5.15",
            Kernel::V6_1 => "6.1",
            Kernel::V6_13 => "6.13",
        }
    }

    /// Whether mdevs have `guest_matrix` (and running guests follow every change).
    pub fn guest_matrix(self) -> bool {
        self >= Kernel::V6_1
    }

    /// Whether mdevs have `ap_config` and the matrix device `features`.
    pub fn ap_config(self) -> bool {
        self >= Kernel::V6_13
    }

    /// The example host as this kernel shows it.
    pub fn host_tree(self) -> HostTree {
        let tree = HostTree::from_example("z16-se");
        let mdev = format!("sys/devices/vfio_ap/matrix/{EXAMPLE_MDEV}");
        if !self.ap_config() {
            tree.remove("sys/devices/vfio_ap/matrix/features");
            tree.remove(&format!("{mdev}/ap_config"));
            tree.remove(&format!("{mdev}/vfio-dev"));
        }
        if !self.guest_matrix() {
            tree.remove(&format!("{mdev}/guest_matrix"));
            for q in ["05.0004", "05.00ab", "03.00ab"] {
                tree.remove(&format!("sys/devices/ap/card{}/{q}/status", &q[..2]));
            }
        }
        tree
    }
}
