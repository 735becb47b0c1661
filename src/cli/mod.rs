//! The `aplaunch` command line: argument definitions, dispatch, output and exit codes.

mod ap;
mod check;
mod docs;
mod explain;
mod host_cmd;
pub mod image;
// The flags' doc comments are their --help text: option syntax like `PATH[,OPTS]` there
// is not an intra-doc link.
#[allow(rustdoc::broken_intra_doc_links)]
pub mod launch;
pub mod output;
mod qmp;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use output::{AppError, Exit, Output};
use std::ffi::OsString;
use std::path::PathBuf;

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Resolve every host path (sys, proc, dev, etc, run) under DIR instead of /
    #[arg(long, global = true, value_name = "DIR", env = "APLAUNCH_HOST_ROOT")]
    pub host_root: Option<PathBuf>,
    /// The host root came from APLAUNCH_HOST_ROOT, not the command line (set after parsing).
    #[arg(skip)]
    pub host_root_from_env: bool,
    /// Print exactly one JSON document on stdout, also on failure
    #[arg(long, global = true)]
    pub json: bool,
    /// Show what is read and written (repeat for more detail); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only errors (and the JSON document with --json)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// Start Secure Execution guests with vfio_ap crypto passthrough on IBM Z / LinuxONE KVM hosts
#[derive(Debug, Parser)]
#[command(name = "aplaunch", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check, build the QEMU command line and exec it (the default command:
    /// `aplaunch --mdev UUID --pv-image IMG` means `aplaunch launch --mdev UUID --pv-image IMG`)
    Launch(Box<launch::LaunchArgs>),
    /// Check this host's readiness for Secure Execution guests with crypto passthrough
    Check(check::CheckArgs),
    /// Secure Execution boot images: inspect, verify offline against this host
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// AP crypto: cards, queues, masks, the vfio_ap matrix and its mdevs
    #[command(subcommand)]
    Ap(ap::ApCommand),
    /// Hot plug, unplug and list the crypto device of a running guest through QMP
    #[command(subcommand)]
    Qmp(qmp::QmpCommand),
    /// Host-level tools (snapshot)
    #[command(subcommand)]
    Host(host_cmd::HostCommand),
    /// Explain an error line from QEMU, the kernel log or the ultravisor, and how to fix it
    Explain(explain::ExplainArgs),
    /// Print the man page (or write all pages with --output DIR)
    Man(docs::ManArgs),
    /// Print a shell completion script
    Completions(docs::CompletionsArgs),
}

/// Runs the CLI with the process's arguments and returns its exit code.
pub fn main() -> std::process::ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let json = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    let exit = match parse(args) {
        Ok(cli) => {
            let out = Output::new(&cli.global);
            output::init_tracing(cli.global.verbose, cli.global.quiet);
            match run(cli, &out) {
                Ok(exit) => exit,
                Err(err) => out.error(&err),
            }
        }
        Err(err) => match err.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                let _ = err.print();
                Exit::Ok
            }
            _ if json => Output::json_only().error(&AppError::usage(err.to_string())),
            _ => {
                let _ = err.print();
                Exit::Usage
            }
        },
    };
    exit.into()
}

/// Parses arguments; `aplaunch --mdev U --pv-image I` means `aplaunch launch --mdev U ...`.
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let mut command = Cli::command();
    let args = default_to_launch(&command, args);
    let matches = command.try_get_matches_from_mut(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    // A global option may be matched at any level; the deepest one that has it tells.
    let mut level = Some(&matches);
    while let Some(m) = level {
        if let Some(source) = m.value_source("host_root") {
            cli.global.host_root_from_env = source == clap::parser::ValueSource::EnvVariable;
        }
        level = m.subcommand().map(|(_, sub)| sub);
    }
    Ok(cli)
}

/// Inserts `launch` before the first argument that is neither a global option nor a
/// subcommand name, when the CLI has a `launch` subcommand.
fn default_to_launch(command: &clap::Command, mut args: Vec<OsString>) -> Vec<OsString> {
    if command.find_subcommand("launch").is_none() {
        return args;
    }
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        match arg.as_ref() {
            "--json" | "-q" | "--quiet" | "--verbose" => i += 1,
            "--host-root" => i += 2,
            a if a.starts_with("--host-root=")
                || (a.starts_with("-v") && a[1..].chars().all(|c| c == 'v')) =>
            {
                i += 1
            }
            "-h" | "--help" | "-V" | "--version" => return args,
            a if command.find_subcommand(a).is_some() || a == "help" => return args,
            _ => {
                args.insert(i, "launch".into());
                return args;
            }
        }
    }
    args
}

/// Opens the host root the user chose.
pub fn host_root(global: &GlobalArgs) -> Result<host::HostRoot, AppError> {
    match &global.host_root {
        None => Ok(host::HostRoot::system()),
        Some(dir) => host::HostRoot::open(dir).map_err(|e| {
            AppError::usage(e.to_string()).with_hint("--host-root (or APLAUNCH_HOST_ROOT) must name a directory that stands for / of the host")
        }),
    }
}

fn run(cli: Cli, out: &Output) -> Result<Exit, AppError> {
    match cli.command {
        Command::Launch(args) => launch::run(&cli.global, *args, out),
        Command::Check(args) => check::run(&cli.global, args, out),
        Command::Image(cmd) => image::run(&cli.global, cmd, out),
        Command::Ap(cmd) => ap::run(&cli.global, cmd, out),
        Command::Qmp(cmd) => qmp::run(&cli.global, cmd, out),
        Command::Host(cmd) => host_cmd::run(&cli.global, cmd, out),
        Command::Explain(args) => explain::run(args, out),
        Command::Man(args) => docs::man(args, out),
        Command::Completions(args) => docs::completions(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
