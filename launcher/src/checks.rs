//! `aplaunch check`: one report composed of every crate's checks, in a fixed order.

use host::{HostRoot, Report};
use std::path::PathBuf;

/// What the user plans to run, which decides which checks apply.
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// The crypto mdev's UUID (`--mdev`), as given.
    pub mdev: Option<String>,
    /// The Secure Execution image (`--pv-image`).
    pub pv_image: Option<PathBuf>,
    /// The QEMU binary (`--qemu`).
    pub qemu: Option<PathBuf>,
    /// Planned vCPUs (`--smp`).
    pub smp: Option<u64>,
}

/// Runs every applicable check against the host under `root`.
pub fn host_report(root: &HostRoot, request: &CheckRequest) -> Report {
    let mut report = Report::new();
    let uv = pv::UvInfo::read(root);
    let pv_options = pv::readiness::Options {
        smp: request.smp,
        crypto: request.mdev.is_some(),
    };
    report.extend(pv::readiness::checks(root, &uv, &pv_options));
    report.push(vfio::checks::module_loaded(root));
    if let Some(uuid) = &request.mdev {
        report.extend(vfio::checks::mdev_checks(root, uuid));
    }
    if let Some(image) = &request.pv_image {
        // The same ultravisor reading serves the image checks (uv read once).
        report.extend(pv::image::checks(
            &uv,
            image,
            &pv::image::VerifyOptions::default(),
        ));
    }
    report
}
