//! The launcher side of aplaunch: composes the `pv` and `vfio` crates into readiness
//! reports, validates a VM spec, probes QEMU, builds and execs its command line, and speaks
//! QMP for hot plug. It has no command-line parsing: the `aplaunch` package holds the CLI,
//! so an embedder does not pay for clap or a tracing subscriber.
//!
//! Start with [`Launch`] (module [`guest`]): describe a guest, [`Launch::plan`] it against
//! a host (every check, the QEMU command line, the descriptors to pass), then run the argv
//! yourself or let [`launch::exec`] become QEMU. `aplaunch launch` takes the same path.

#![deny(missing_docs)]

pub mod builder;
pub mod checks;
pub mod devno;
pub mod exec;
pub mod explain;
pub mod guest;
pub mod hotplug;
pub mod launch;
pub mod mac;
pub mod power;
pub mod probe;
pub mod qemu_checks;
pub mod qmp;
pub mod snapshot;
pub mod spec;

pub use guest::{Launch, PlanError, Refused};

/// The README's Rust blocks, compiled as doc tests so that its library examples keep
/// compiling as the API changes.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
