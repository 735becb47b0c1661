//! Test support shared by aplaunch's crates and end-to-end tests.

pub mod ap;
pub mod cli;
pub mod hosttree;
pub mod image;
pub mod kernel_model;
pub mod kernels;
pub mod namespace;
pub mod qemu;
pub mod qmp;
pub mod s390_tools;

/// Whether this is a CI run (`CI=true`), where a test may not skip for a missing peer.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}
