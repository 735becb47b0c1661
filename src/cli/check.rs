//! `aplaunch check`.

use super::output::{AppError, Exit, Output};
use super::GlobalArgs;
use clap::Args;
use launcher::checks::{host_report, CheckRequest};
use std::path::PathBuf;

/// Arguments of `aplaunch check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Also check this crypto mdev (UUID) and that secure guests may use AP
    #[arg(long, value_name = "UUID")]
    pub mdev: Option<String>,
    /// Also check this Secure Execution image
    #[arg(long, value_name = "IMG")]
    pub pv_image: Option<PathBuf>,
    /// Also probe and check QEMU: this binary, or without PATH qemu-system-s390x on PATH
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "")]
    pub qemu: Option<PathBuf>,
    /// Probe QEMU again instead of using the cached result
    #[arg(long)]
    pub no_cache: bool,
    /// Planned number of vCPUs (checked against the ultravisor's limit)
    #[arg(long, value_name = "N")]
    pub smp: Option<u64>,
}

/// Runs the checks and prints the report; exit 1 when any check fails.
pub fn run(global: &GlobalArgs, args: CheckArgs, out: &Output) -> Result<Exit, AppError> {
    // a malformed UUID is malformed input (exit 2), like `launch` and `ap` treat it
    let mdev = args
        .mdev
        .as_deref()
        .map(super::ap::valid_uuid)
        .transpose()?;
    let root = super::host_root(global)?;
    let request = CheckRequest {
        mdev,
        pv_image: args.pv_image,
        qemu: args.qemu,
        smp: args.smp,
        no_cache: args.no_cache,
    };
    let report = host_report(&root, &request);
    if out.json {
        out.json_document(&report);
    } else {
        out.human(&report.render(out.colour));
        let failed = report.failures().count();
        if failed > 0 {
            out.human(&format!("\n{failed} check(s) failed\n"));
        }
    }
    Ok(if report.ok { Exit::Ok } else { Exit::Negative })
}
