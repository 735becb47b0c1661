//! Output, errors and exit codes shared by every command.
//!
//! Exit codes: 0 ok; 1 a verdict is negative; 2 usage error or malformed input;
//! 3 an operation failed. With `--json`, stdout carries exactly one JSON document.

use super::GlobalArgs;
use host::ErrorKind;
use serde::Serialize;
use std::io::{IsTerminal, Write};

/// The process exit codes of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything is fine.
    Ok = 0,
    /// 1: a verdict is negative (check failed, invalid image, conflict, refused with a reason).
    Negative = 1,
    /// 2: usage error or malformed input.
    Usage = 2,
    /// 3: an operation failed (I/O, kernel refused, QMP unreachable or timed out).
    Failed = 3,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// An error as the user sees it: a stable kind, a message naming the input, a hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppError {
    /// Stable machine-readable kind (`usage`, `io`, ...).
    pub kind: ErrorKind,
    /// What went wrong, naming the thing.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The exit code this error ends the process with.
    #[serde(skip)]
    pub exit: Exit,
}

impl AppError {
    /// An error of a kind with an exit code.
    pub fn new(kind: ErrorKind, exit: Exit, message: impl Into<String>) -> Self {
        AppError {
            kind,
            message: message.into(),
            hint: None,
            exit,
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, Exit::Usage, message)
    }

    /// A failed operation (exit 3).
    pub fn failed(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, Exit::Failed, message)
    }

    /// A refusal for a stated reason (exit 1).
    pub fn refused(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, Exit::Negative, message)
    }

    /// Adds the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where and how a command prints.
#[derive(Debug, Clone)]
pub struct Output {
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// Colour on stdout (a terminal and NO_COLOR unset).
    pub colour: bool,
    /// Colour on stderr.
    pub colour_stderr: bool,
}

fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl Output {
    /// Output settings from the global options and the terminal.
    pub fn new(global: &GlobalArgs) -> Self {
        let allowed = colour_allowed();
        Output {
            json: global.json,
            quiet: global.quiet,
            colour: allowed && std::io::stdout().is_terminal(),
            colour_stderr: allowed && std::io::stderr().is_terminal(),
        }
    }

    /// Settings for a failure before the options were understood, with `--json` seen.
    pub fn json_only() -> Self {
        Output {
            json: true,
            quiet: false,
            colour: false,
            colour_stderr: false,
        }
    }

    /// Prints the one JSON document of a command.
    pub fn json_document<T: Serialize>(&self, value: &T) {
        // One write: stdout is line-buffered, and a big document would otherwise cost one
        // write(2) per line.
        let mut buf = serde_json::to_vec_pretty(value).unwrap_or_default();
        buf.push(b'\n');
        let _ = std::io::stdout().lock().write_all(&buf);
    }

    /// Prints human text on stdout unless `--quiet` or `--json`.
    pub fn human(&self, text: &str) {
        if !self.quiet && !self.json {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
        }
    }

    /// Prints a human note on stderr unless `--quiet` or `--json`.
    pub fn note(&self, text: &str) {
        if !self.quiet && !self.json {
            eprintln!("{text}");
        }
    }

    /// Reports an error (JSON on stdout with `--json`, else on stderr) and returns its exit code.
    pub fn error(&self, err: &AppError) -> Exit {
        if self.json {
            self.json_document(&serde_json::json!({ "ok": false, "error": err }));
        } else {
            let (red, reset) = if self.colour_stderr {
                ("\x1b[1;31m", "\x1b[0m")
            } else {
                ("", "")
            };
            eprintln!("{red}error:{reset} {}", err.message);
            if let Some(hint) = &err.hint {
                eprintln!("  hint: {hint}");
            }
        }
        err.exit
    }
}

/// Sets up tracing on stderr: warnings by default, `-v` info, `-vv` debug, `-vvv` trace;
/// RUST_LOG overrides; `--quiet` shows errors only.
pub fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(colour_allowed() && std::io::stderr().is_terminal())
        .try_init();
}
