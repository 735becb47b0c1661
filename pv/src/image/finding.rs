//! Structural findings about an image: each a named problem with a verdict and a fix.

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The image probably works, but something is unusual.
    Warn,
    /// The ultravisor or the loader will reject the image.
    Fail,
}

/// One structural finding (`sehs`, `ipib-pbt`, `component-overlap`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable short code naming the field or rule.
    pub code: &'static str,
    /// Warn or fail.
    pub severity: Severity,
    /// What was found, with the values.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Finding {
    /// A failing finding.
    pub fn fail(code: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Finding {
            code,
            severity: Severity::Fail,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A warning.
    pub fn warn(code: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Finding {
            code,
            severity: Severity::Warn,
            message: message.into(),
            hint: hint.into(),
        }
    }
}
