//! `aplaunch man` and `aplaunch completions`, generated from the clap definitions.

use super::output::{AppError, Exit, Output};
use super::Cli;
use clap::{Args, CommandFactory};
use host::ErrorKind;
use std::path::PathBuf;

/// Arguments of `aplaunch man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write aplaunch.1 and one page per subcommand (aplaunch-check.1, ...) into DIR
    /// instead of printing aplaunch.1
    #[arg(long, short, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

/// Arguments of `aplaunch completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints or writes the man pages.
pub fn man(args: ManArgs, out: &Output) -> Result<Exit, AppError> {
    let command = Cli::command();
    match args.output {
        None => {
            let mut stdout = std::io::stdout().lock();
            clap_mangen::Man::new(command)
                .render(&mut stdout)
                .map_err(|e| {
                    AppError::failed(ErrorKind::Io, format!("cannot write the man page: {e}"))
                })?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| {
                AppError::failed(
                    ErrorKind::Io,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
            clap_mangen::generate_to(command, &dir).map_err(|e| {
                AppError::failed(
                    ErrorKind::Io,
                    format!("cannot write man pages into {}: {e}", dir.display()),
                )
            })?;
            if out.json {
                out.json_document(&serde_json::json!({ "ok": true, "output": dir }));
            } else {
                out.human(&format!("wrote man pages into {}\n", dir.display()));
            }
        }
    }
    Ok(Exit::Ok)
}

/// Prints the completion script for a shell.
pub fn completions(args: CompletionsArgs) -> Result<Exit, AppError> {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "aplaunch",
        &mut std::io::stdout().lock(),
    );
    Ok(Exit::Ok)
}
