//! Test support shared by aplaunch's crates and end-to-end tests.

pub mod hosttree;
pub mod qemu;
