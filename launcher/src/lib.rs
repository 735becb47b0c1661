//! The launcher side of aplaunch: composes the `pv` and `vfio` crates into readiness
//! reports, and holds the command-line interface.

pub mod builder;
pub mod checks;
pub mod cli;
pub mod devno;
pub mod exec;
pub mod explain;
pub mod hotplug;
pub mod launch;
pub mod mac;
pub mod power;
pub mod probe;
pub mod qemu_checks;
pub mod qmp;
pub mod snapshot;
pub mod spec;
