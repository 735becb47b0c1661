//! `aplaunch explain TEXT`.

use super::output::{AppError, Exit, Output};
use clap::Args;
use host::ErrorKind;
use launcher::explain::explain;
use std::io::Read;

/// Longest text read from standard input.
const MAX_INPUT: u64 = 1 << 20;

/// Arguments of `aplaunch explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The error text (several words are joined); `-` or nothing reads standard input
    #[arg(
        value_name = "TEXT",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    pub text: Vec<String>,
}

/// Explains the text; exit 1 when nothing in it is known.
pub fn run(args: ExplainArgs, out: &Output) -> Result<Exit, AppError> {
    let text = if args.text.is_empty() || args.text == ["-"] {
        let mut buf = String::new();
        std::io::stdin()
            .take(MAX_INPUT)
            .read_to_string(&mut buf)
            .map_err(|e| {
                AppError::usage(format!("cannot read the text from standard input: {e}"))
            })?;
        buf
    } else {
        args.text.join(" ")
    };
    let found = explain(&text);
    if found.is_empty() {
        return Err(AppError::refused(ErrorKind::UnknownText, "no explanation is known for this text").with_hint(
            "aplaunch explain knows ultravisor rc/rrc codes, `Protected boot has failed`, QEMU's PV and vfio-ap \
             errors, the vfio_ap kernel messages and the errnos of AP attributes; paste the whole error line",
        ));
    }
    if out.json {
        out.json_document(&serde_json::json!({ "ok": true, "explanations": found }));
    } else {
        let mut text = String::new();
        for e in &found {
            text.push_str(&format!(
                "{}\n  meaning: {}\n  fix: {}\n",
                e.title, e.meaning, e.fix
            ));
        }
        out.human(&text);
    }
    Ok(Exit::Ok)
}
