//! Readers for the number formats the kernel prints in sysfs and procfs.
//!
//! Each reader names the file and shows what it found when the value is not in the
//! documented format, so a garbage value becomes a clear finding instead of a panic.

use crate::error::{Error, Result};
use crate::root::HostRoot;
use std::path::Path;

/// Longest excerpt of a malformed value that error messages quote.
const EXCERPT: usize = 64;

/// Shortens a malformed value for an error message.
pub fn excerpt(text: &str) -> String {
    let trimmed = text.trim_end_matches('\n');
    match trimmed.char_indices().nth(EXCERPT) {
        Some((cut, _)) => format!("{}...", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

/// Strips exactly the one trailing newline sysfs puts after a value.
pub fn value(text: &str) -> &str {
    text.strip_suffix('\n').unwrap_or(text)
}

/// Parses `%d` / `%u` / `%lu` output.
pub fn parse_dec(text: &str) -> Option<u64> {
    let v = value(text);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Parses `%lx` output: lower-case hex, no `0x`, not zero padded, at most 16 digits.
pub fn parse_hex(text: &str) -> Option<u64> {
    let v = value(text);
    if v.is_empty() || v.len() > 16 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(v, 16).ok()
}

fn format_error(root: &HostRoot, path: &Path, expected: &'static str, found: &str) -> Error {
    Error::Format {
        path: root.path(path),
        expected,
        found: excerpt(found),
    }
}

/// Reads a number attribute: at most a page, wherever the file is.
fn read_value(root: &HostRoot, path: impl AsRef<Path>) -> Result<String> {
    root.read_limited(path, crate::root::ATTRIBUTE_MAX)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads a decimal attribute.
pub fn read_dec(root: &HostRoot, path: impl AsRef<Path>) -> Result<u64> {
    let text = read_value(root, &path)?;
    parse_dec(&text).ok_or_else(|| format_error(root, path.as_ref(), "a decimal number", &text))
}

/// Reads a `%lx` attribute.
pub fn read_hex(root: &HostRoot, path: impl AsRef<Path>) -> Result<u64> {
    let text = read_value(root, &path)?;
    parse_hex(&text)
        .ok_or_else(|| format_error(root, path.as_ref(), "a hexadecimal number (%lx)", &text))
}

/// Reads a `%lx` attribute that may be absent (older kernels): `Ok(None)` when missing.
pub fn read_hex_optional(root: &HostRoot, path: impl AsRef<Path>) -> Result<Option<u64>> {
    match read_hex(root, &path) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a decimal attribute that may be absent: `Ok(None)` when missing.
pub fn read_dec_optional(root: &HostRoot, path: impl AsRef<Path>) -> Result<Option<u64>> {
    match read_dec(root, &path) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Tests MSB-0 bit `bit` (0 = most significant) of a 64-bit word.
pub fn msb0_bit(word: u64, bit: u32) -> bool {
    bit < 64 && word & (1u64 << (63 - bit)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_kernel_formats() {
        assert_eq!(parse_dec("257\n"), Some(257));
        assert_eq!(parse_dec(" 257\n"), None);
        assert_eq!(parse_dec("\n"), None);
        assert_eq!(parse_hex("300050e3\n"), Some(0x3000_50e3));
        assert_eq!(parse_hex("8000000000000000\n"), Some(1 << 63));
        assert_eq!(parse_hex("0x10\n"), None);
        assert_eq!(parse_hex("10000000000000000\n"), None);
        assert_eq!(parse_hex("zz\n"), None);
    }

    #[test]
    fn msb0_numbering() {
        assert!(msb0_bit(0x0800_0000_0000_0000, 4));
        assert!(msb0_bit(0x0400_0000_0000_0000, 5));
        assert!(!msb0_bit(0x0800_0000_0000_0000, 5));
        assert!(msb0_bit(1, 63));
        assert!(!msb0_bit(u64::MAX, 64));
    }

    #[test]
    fn excerpts_are_bounded() {
        let long = "x".repeat(500);
        assert_eq!(excerpt(&long).len(), EXCERPT + 3);
        assert_eq!(excerpt("ab\n"), "ab");
    }
}
