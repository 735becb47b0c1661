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

use clap::{Args, FromArgMatches, Parser, Subcommand};
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

// The whole command line (its description is `about::APLAUNCH`: a doc comment here would
// become clap's long description).
#[derive(Debug, Parser)]
#[command(name = "aplaunch", version, propagate_version = true, about = about::APLAUNCH)]
#[allow(missing_docs)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Each command's one-line description, shared by the full definition (help, man pages,
/// completions) and the parser's lazily built one ([`parser_command`]).
mod about {
    pub const APLAUNCH: &str = "Start Secure Execution guests with vfio_ap crypto passthrough on IBM Z / LinuxONE KVM hosts";
    pub const LAUNCH: &str = "Check, build the QEMU command line and exec it (the default command: `aplaunch --mdev UUID --pv-image IMG` means `aplaunch launch --mdev UUID --pv-image IMG`)";
    pub const CHECK: &str =
        "Check this host's readiness for Secure Execution guests with crypto passthrough";
    pub const IMAGE: &str =
        "Secure Execution boot images: inspect, verify offline against this host";
    pub const AP: &str = "AP crypto: cards, queues, masks, the vfio_ap matrix and its mdevs";
    pub const QMP: &str =
        "Hot plug, unplug and list the crypto device of a running guest through QMP";
    pub const HOST: &str = "Host-level tools (snapshot)";
    pub const EXPLAIN: &str =
        "Explain an error line from QEMU, the kernel log or the ultravisor, and how to fix it";
    pub const MAN: &str = "Print the man page (or write all pages with --output DIR)";
    pub const COMPLETIONS: &str = "Print a shell completion script";
}

// The commands (each one's description is in `about`: doc comments on the variants would
// become clap's long descriptions).
#[derive(Debug, Subcommand)]
#[allow(missing_docs)]
pub enum Command {
    #[command(about = about::LAUNCH)]
    Launch(Box<launch::LaunchArgs>),
    #[command(about = about::CHECK)]
    Check(check::CheckArgs),
    #[command(subcommand, about = about::IMAGE)]
    Image(image::ImageCommand),
    #[command(subcommand, about = about::AP)]
    Ap(ap::ApCommand),
    #[command(subcommand, about = about::QMP)]
    Qmp(qmp::QmpCommand),
    #[command(subcommand, about = about::HOST)]
    Host(host_cmd::HostCommand),
    #[command(about = about::EXPLAIN)]
    Explain(explain::ExplainArgs),
    #[command(about = about::MAN)]
    Man(docs::ManArgs),
    #[command(about = about::COMPLETIONS)]
    Completions(docs::CompletionsArgs),
}

/// The definition the parser uses: the same as [`Cli::command`] once built, but each
/// command's own arguments are defined only when that command is parsed (clap's `defer`).
/// Building every command's flags before parsing cost about a third of a `check`'s
/// instructions (BENCHMARKS.md, start-up).
fn parser_command() -> clap::Command {
    fn group(c: clap::Command) -> clap::Command {
        c.subcommand_required(true).arg_required_else_help(true)
    }
    // An `Args` struct's augment sets its own doc comment as the description, as the derive
    // does; the command's description is set after it, as the derive does too.
    macro_rules! lazily {
        ($name:literal, $about:expr, $define:expr) => {
            clap::Command::new($name)
                .about($about)
                .defer(|c| $define(c).about($about))
        };
    }
    let top = clap::Command::new("aplaunch")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true);
    group(GlobalArgs::augment_args(top))
        .about(about::APLAUNCH)
        .subcommands([
            lazily!("launch", about::LAUNCH, launch::LaunchArgs::augment_args),
            lazily!("check", about::CHECK, check::CheckArgs::augment_args),
            lazily!("image", about::IMAGE, |c| group(
                image::ImageCommand::augment_subcommands(c)
            )),
            lazily!("ap", about::AP, |c| group(
                ap::ApCommand::augment_subcommands(c)
            )),
            lazily!("qmp", about::QMP, |c| group(
                qmp::QmpCommand::augment_subcommands(c)
            )),
            lazily!("host", about::HOST, |c| group(
                host_cmd::HostCommand::augment_subcommands(c)
            )),
            lazily!(
                "explain",
                about::EXPLAIN,
                explain::ExplainArgs::augment_args
            ),
            lazily!("man", about::MAN, docs::ManArgs::augment_args),
            lazily!(
                "completions",
                about::COMPLETIONS,
                docs::CompletionsArgs::augment_args
            ),
        ])
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
    let mut command = parser_command();
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
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
        parser_command().debug_assert();
    }

    /// Everything a user sees of one command and its settings, and of each subcommand.
    fn describe(cmd: &mut clap::Command, path: &str, out: &mut Vec<String>) {
        cmd.build();
        out.push(format!(
            "{path}: about={:?} long_about={:?} required={} else_help={} args={:?}\n{}",
            cmd.get_about().map(|a| a.to_string()),
            cmd.get_long_about().map(|a| a.to_string()),
            cmd.is_subcommand_required_set(),
            cmd.is_arg_required_else_help_set(),
            // globals are propagated into a deferred command before its own arguments are
            // defined, so only the order differs; the help text below shows the real order
            {
                let mut args: Vec<String> = cmd
                    .get_arguments()
                    .map(|a| format!("{}:{:?}:{:?}", a.get_id(), a.get_long(), a.get_short()))
                    .collect();
                args.sort();
                args
            },
            cmd.render_long_help()
        ));
        // clap's own `help` command is made from the others when the tree is built; it is
        // compared by what it does (below), not by its definition
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        for name in names {
            let sub = cmd.find_subcommand_mut(&name).unwrap();
            describe(sub, &format!("{path} {name}"), out);
        }
    }

    #[test]
    fn the_lazily_built_parser_is_the_full_definition() {
        let (mut full, mut lazy) = (Cli::command(), parser_command());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        describe(&mut full, "aplaunch", &mut a);
        describe(&mut lazy, "aplaunch", &mut b);
        assert!(a.len() > 20, "{}", a.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y);
        }
        assert_eq!(a.len(), b.len());
        // help through the help command and through --help prints the same in both
        for line in &a {
            let path: Vec<&str> = line.split(':').next().unwrap().split(' ').skip(1).collect();
            for form in [
                [&["aplaunch", "help"][..], &path].concat(),
                [&["aplaunch"][..], &path, &["--help"]].concat(),
            ] {
                let text = |c: clap::Command| match c.try_get_matches_from(&form) {
                    Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => e.to_string(),
                    other => panic!("{form:?}: {other:?}"),
                };
                assert_eq!(text(parser_command()), text(Cli::command()), "{form:?}");
            }
        }
    }
}
