// Shared by the launch tests (included with `#[path]`, not a test target itself).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use testkit::hosttree::HostTree;

pub const UUID: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

/// The demo SE image when it is in the tree, else a stand-in file in `dir`.
pub fn se_image(dir: &Path) -> PathBuf {
    let demo = testkit::hosttree::workspace_root().join("examples/images/demo-se.img");
    if demo.is_file() {
        return demo;
    }
    let p = dir.join("se.img");
    std::fs::write(&p, b"stand-in SE image").unwrap();
    p
}

/// A private copy of the example host.
pub fn z16() -> HostTree {
    HostTree::from_example("z16-se")
}

/// `aplaunch` (through the target's runner when emulated) with a private cache directory.
pub use testkit::cli::command_with_cache as aplaunch;
