//! The readiness report: checks with stable ids that every crate contributes to.

use serde::Serialize;
use std::fmt::Write as _;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The host has what is needed.
    Pass,
    /// It works, but something is missing or risky.
    Warn,
    /// It will not work until fixed.
    Fail,
    /// Could not be decided here; the message says why.
    Skip,
}

impl Status {
    /// The lower-case word used in output (`pass`, `warn`, `fail`, `skip`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Status::Pass => "\x1b[32m",
            Status::Warn => "\x1b[33m",
            Status::Fail => "\x1b[1;31m",
            Status::Skip => "\x1b[2m",
        }
    }
}

/// One check: a stable id, a verdict, what was found, and for warn/fail how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier (`facility-158`, `prot-virt`, ...); scripts match on it.
    pub id: String,
    /// The verdict.
    pub status: Status,
    /// What was read and concluded, naming the file and the value.
    pub message: String,
    /// How to fix it; present for every warn and fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn pass(id: impl Into<String>, message: impl Into<String>) -> Self {
        Check {
            id: id.into(),
            status: Status::Pass,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning, with the hint that says how to fix it.
    pub fn warn(
        id: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Check {
            id: id.into(),
            status: Status::Warn,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A failure, with the hint that says how to fix it.
    pub fn fail(
        id: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Check {
            id: id.into(),
            status: Status::Fail,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A check that could not be decided; the message says why.
    pub fn skip(id: impl Into<String>, message: impl Into<String>) -> Self {
        Check {
            id: id.into(),
            status: Status::Skip,
            message: message.into(),
            hint: None,
        }
    }

    /// The same check with a failure demoted to a warning (`--force`), saying so.
    pub fn forced(mut self) -> Self {
        if self.status == Status::Fail {
            self.status = Status::Warn;
            self.message.push_str(" (ignored: --force)");
        }
        self
    }
}

/// An ordered list of checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// True when no check failed.
    pub ok: bool,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// An empty (passing) report.
    pub fn new() -> Self {
        Report {
            ok: true,
            checks: Vec::new(),
        }
    }

    /// Adds one check.
    pub fn push(&mut self, check: Check) {
        self.ok &= check.status != Status::Fail;
        self.checks.push(check);
    }

    /// Adds several checks.
    pub fn extend(&mut self, checks: impl IntoIterator<Item = Check>) {
        for check in checks {
            self.push(check);
        }
    }

    /// The check with this id, if it ran.
    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    /// Demotes every failure to a warning (`--force`).
    pub fn forced(self) -> Self {
        let mut report = Report::new();
        report.extend(self.checks.into_iter().map(Check::forced));
        report
    }

    /// The aligned human table; `colour` adds ANSI colours to the status column.
    pub fn render(&self, colour: bool) -> String {
        let id_width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        let mut out = String::new();
        for check in &self.checks {
            let status = check.status.as_str();
            if colour {
                let _ = write!(out, "{}{:<4}\x1b[0m", check.status.colour(), status);
            } else {
                let _ = write!(out, "{status:<4}");
            }
            let _ = writeln!(out, "  {:<id_width$}  {}", check.id, check.message);
            if let Some(hint) = &check.hint {
                let indent = 4 + 2 + id_width + 2;
                let _ = writeln!(out, "{:indent$}hint: {hint}", "");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_makes_the_report_not_ok_and_force_demotes_it() {
        let mut r = Report::new();
        r.push(Check::pass("a", "fine"));
        assert!(r.ok);
        r.push(Check::fail("bb", "broken", "fix it"));
        assert!(!r.ok);
        let forced = r.clone().forced();
        assert!(forced.ok);
        assert_eq!(forced.get("bb").unwrap().status, Status::Warn);
        assert!(forced
            .get("bb")
            .unwrap()
            .message
            .ends_with("(ignored: --force)"));
    }

    #[test]
    fn render_aligns_ids_and_indents_hints() {
        let mut r = Report::new();
        r.push(Check::pass("a", "fine"));
        r.push(Check::warn("long-id", "meh", "do x"));
        let text = r.render(false);
        assert_eq!(
            text,
            "pass  a        fine\nwarn  long-id  meh\n               hint: do x\n"
        );
        assert!(r.render(true).contains("\x1b[33mwarn\x1b[0m"));
    }

    #[test]
    fn json_shape_matches_the_contract() {
        let mut r = Report::new();
        r.push(Check::fail("x", "m", "h"));
        r.push(Check::skip("y", "s"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ok":false,"checks":[
                {"id":"x","status":"fail","message":"m","hint":"h"},
                {"id":"y","status":"skip","message":"s"}]})
        );
    }
}
