//! vfio_ap crypto passthrough for aplaunch: the AP bus and the vfio_ap matrix device
//! as the kernel shows them in sysfs.

pub mod checks;
