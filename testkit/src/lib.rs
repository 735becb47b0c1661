//! Test support shared by aplaunch's crates and end-to-end tests.

pub mod ap;
pub mod cli;
pub mod hosttree;
pub mod image;
pub mod qemu;
pub mod qmp;
