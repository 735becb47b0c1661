//! Secure Execution (protected virtualization, PV) for aplaunch.
//!
//! The host side: facility 158 in `/proc/cpuinfo`, the kernel command line's
//! `prot_virt`, the ultravisor's `/sys/firmware/uv` tree and KVM's PV capability,
//! turned into readiness checks ([`readiness`]). Everything read from the ultravisor is
//! big-endian / MSB-0 and is decoded here so callers never deal with bit numbering.
#![deny(missing_docs)]

pub mod cmdline;
pub mod cpuinfo;
pub mod digest;
pub mod error;
pub mod hex;
pub mod hostkey;
pub mod image;
pub mod kvm;
pub mod readiness;
pub mod uv;
pub mod uvrc;

pub use error::{Error, Result};
pub use hostkey::HostKeyHash;
pub use uv::UvInfo;
