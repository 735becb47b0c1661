//! `aplaunch host ...`.

use super::output::{AppError, Exit, Output};
use super::GlobalArgs;
use clap::Subcommand;
use host::ErrorKind;
use launcher::snapshot;
use std::path::PathBuf;

/// Host-level commands.
#[derive(Debug, Clone, Subcommand)]
pub enum HostCommand {
    /// Copy every host file aplaunch reads into a new host tree (for bug reports and offline checks)
    Snapshot {
        /// Directory to create (must not exist, or be empty)
        #[arg(long, short, value_name = "DIR")]
        output: PathBuf,
    },
}

/// Runs a host command.
pub fn run(global: &GlobalArgs, command: HostCommand, out: &Output) -> Result<Exit, AppError> {
    match command {
        HostCommand::Snapshot { output } => {
            let root = super::host_root(global)?;
            let summary = snapshot::capture(&root, &output).map_err(|e| match e {
                snapshot::Error::OutputExists { .. } => {
                    AppError::refused(ErrorKind::OutputExists, e.to_string()).with_hint(
                        "name a new directory; aplaunch never overwrites an existing snapshot",
                    )
                }
                snapshot::Error::Write { .. } => AppError::failed(ErrorKind::Io, e.to_string())
                    .with_hint(
                        "check that the output's parent directory is writable and has space",
                    ),
                _ => AppError::failed(ErrorKind::Snapshot, e.to_string()),
            })?;
            if out.json {
                out.json_document(&serde_json::json!({ "ok": true, "snapshot": summary }));
            } else {
                out.human(&format!(
                    "wrote {}: {} files, {} links, {} directories, {} device nodes recorded\n",
                    summary.output.display(),
                    summary.files,
                    summary.links,
                    summary.directories,
                    summary.nodes
                ));
                for what in &summary.unreadable {
                    out.note(&format!("skipped: {what}"));
                }
                out.human(&format!(
                    "check it with: aplaunch --host-root {} check\n",
                    summary.output.display()
                ));
            }
            Ok(Exit::Ok)
        }
    }
}
