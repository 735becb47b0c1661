//! The launcher side of aplaunch: composes the `pv` and `vfio` crates into readiness
//! reports, and holds the command-line interface.

pub mod checks;
pub mod cli;
pub mod explain;
pub mod hotplug;
pub mod qmp;
pub mod snapshot;
