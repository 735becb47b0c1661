//! Readiness checks of the vfio_ap side.

use host::{Check, HostRoot};

/// The vfio_ap matrix device; it exists exactly when the vfio_ap module is loaded.
pub const MATRIX_DEVICE: &str = "sys/devices/vfio_ap/matrix";

/// `vfio-ap-module`: the vfio_ap module is loaded (its matrix device exists).
pub fn module_loaded(root: &HostRoot) -> Check {
    const ID: &str = "vfio-ap-module";
    if root.is_dir(MATRIX_DEVICE) {
        Check::pass(ID, "/sys/devices/vfio_ap/matrix exists: vfio_ap is loaded")
    } else {
        Check::fail(
            ID,
            "/sys/devices/vfio_ap/matrix does not exist: the vfio_ap module is not loaded",
            "run `modprobe vfio_ap` (and add vfio_ap to /etc/modules-load.d/ to load it at boot)",
        )
    }
}
