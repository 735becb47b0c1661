//! vfio_ap crypto passthrough for aplaunch: AP numbering and masks, one scan of the
//! host's AP bus and vfio_ap matrix device, checks, the mdev lifecycle with mdevctl
//! definitions, and the VFIO file descriptors a launcher hands to QEMU.
//!
//! Everything is read and written through [`host::HostRoot`]; sysfs writes go through the
//! [`write::SysfsWriter`] seam so the lifecycle can be tested against models of the
//! kernel's rules, one per kernel generation. The models live in the test-support crate
//! (`testkit::kernel_model`), never in this library.
#![deny(missing_docs)]

pub mod ap;
pub mod checks;
pub mod device;
pub mod error;
pub mod holders;
pub mod lifecycle;
pub mod lock;
pub mod mask;
pub mod matrix_view;
pub mod mdev;
pub mod mdev_uuid;
pub mod mdevctl;
pub mod number;
pub mod persistent;
pub mod scan;
pub mod write;

pub use ap::{Apid, Apqi, Apqn};
pub use error::{Error, Result};
pub use mask::Mask;
pub use mdev::MdevInfo;
pub use scan::ApScan;
