//! 256-bit AP masks in MSB-0 bit order, and the three syntaxes people write them in.
//!
//! Bit 0 is the most significant bit of the first hex digit: `0x8000...` is adapter (or
//! domain) 0 only. The syntaxes:
//! - the kernel's absolute form: optional `0x`, at most 64 hex digits, LEFT-aligned
//!   (missing low bits are 0), one trailing `\n`; empty clears the mask;
//! - the kernel's relative form: `+N`, `-N`, `+N-M`, `-N-M` terms applied left to right to
//!   the current mask, numbers read like `simple_strtoul(.., 0)` (`0x` hex, a leading `0`
//!   means OCTAL, else decimal), separated by `,` or `\n`;
//! - chzdev's decimal lists: absolute `0-1,3-255` (starts from an empty mask) or relative
//!   `+2,-4-8`; mixing absolute and relative terms is an error.

use crate::number::{simple_strtoul, strtoul_whole};
use serde::{Serialize, Serializer};
use std::fmt;

/// Number of bits of an AP mask.
pub const BITS: usize = 256;

/// A 256-bit mask, MSB-0: bit `n` is bit `63 - n % 64` of word `n / 64`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mask {
    words: [u64; 4],
}

/// Why a mask string was refused (the kernel's EINVAL, or a chzdev syntax error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mask {input:?}: {reason}")]
pub struct MaskError {
    /// The string given (shortened).
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

fn mask_err(input: &[u8], reason: impl Into<String>) -> MaskError {
    let text = String::from_utf8_lossy(input);
    MaskError {
        input: host::sysfs::excerpt(&text),
        reason: reason.into(),
    }
}

impl Mask {
    /// The empty mask.
    pub const EMPTY: Mask = Mask { words: [0; 4] };

    /// Every bit set.
    pub fn full() -> Self {
        Mask {
            words: [u64::MAX; 4],
        }
    }

    /// A mask from its four 64-bit words, most significant (bits 0..63) first.
    pub fn from_words(words: [u64; 4]) -> Self {
        Mask { words }
    }

    /// The four 64-bit words, bits 0..63 first.
    pub fn words(&self) -> [u64; 4] {
        self.words
    }

    /// A mask with exactly these bits set.
    pub fn from_bits(bits: impl IntoIterator<Item = u8>) -> Self {
        let mut m = Mask::EMPTY;
        for b in bits {
            m.set(b);
        }
        m
    }

    /// Sets bit `n`.
    pub fn set(&mut self, n: u8) {
        let n = n as usize;
        self.words[n / 64] |= 1u64 << (63 - n % 64);
    }

    /// Clears bit `n`.
    pub fn clear(&mut self, n: u8) {
        let n = n as usize;
        self.words[n / 64] &= !(1u64 << (63 - n % 64));
    }

    /// Whether bit `n` is set.
    pub fn test(&self, n: u8) -> bool {
        let n = n as usize;
        self.words[n / 64] & (1u64 << (63 - n % 64)) != 0
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.words == [0; 4]
    }

    /// Number of set bits.
    pub fn count(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }

    /// The set bits in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8).filter(move |&n| self.test(n))
    }

    /// Bits set here and not in `other`.
    pub fn minus(&self, other: &Mask) -> Mask {
        let mut words = self.words;
        for (w, o) in words.iter_mut().zip(other.words) {
            *w &= !o;
        }
        Mask { words }
    }

    /// Bits set in both.
    pub fn and(&self, other: &Mask) -> Mask {
        let mut words = self.words;
        for (w, o) in words.iter_mut().zip(other.words) {
            *w &= o;
        }
        Mask { words }
    }

    /// The kernel's read format without the newline: `0x` + 64 lower-case hex digits.
    pub fn to_kernel_hex(&self) -> String {
        let mut s = String::with_capacity(66);
        s.push_str("0x");
        for w in self.words {
            s.push_str(&format!("{w:016x}"));
        }
        s
    }

    /// chzdev's decimal ranges: `0-1,3-255`; empty string for an empty mask.
    pub fn to_ranges(&self) -> String {
        let mut parts = Vec::new();
        for (a, b) in self.runs() {
            if a == b {
                parts.push(a.to_string());
            } else {
                parts.push(format!("{a}-{b}"));
            }
        }
        parts.join(",")
    }

    /// A relative edit that yields exactly this mask from any mask: `-0-255,+3-5,+9`.
    /// Valid in both the kernel's and chzdev's relative syntax.
    pub fn to_relative(&self) -> String {
        let mut s = String::from("-0-255");
        for (a, b) in self.runs() {
            if a == b {
                s.push_str(&format!(",+{a}"));
            } else {
                s.push_str(&format!(",+{a}-{b}"));
            }
        }
        s
    }

    /// Maximal runs of set bits as inclusive ranges.
    pub fn runs(&self) -> Vec<(u8, u8)> {
        let mut runs = Vec::new();
        let mut start: Option<u8> = None;
        for n in 0..=255u8 {
            match (self.test(n), start) {
                (true, None) => start = Some(n),
                (false, Some(s)) => {
                    runs.push((s, n - 1));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            runs.push((s, 255));
        }
        runs
    }

    /// Parses a mask as sysfs prints it: `0x` + 64 hex digits + `\n` (the `\n` optional).
    /// Stricter than what the kernel accepts on write: this is for reading.
    pub fn parse_sysfs(text: &str) -> Result<Mask, MaskError> {
        let v = text.strip_suffix('\n').unwrap_or(text);
        let hex = v
            .strip_prefix("0x")
            .ok_or_else(|| mask_err(text.as_bytes(), "expected 0x followed by 64 hex digits"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(mask_err(
                text.as_bytes(),
                "expected 0x followed by 64 hex digits",
            ));
        }
        Mask::parse_kernel_absolute(v.as_bytes())
    }

    /// What the kernel does with a write of `input` to apmask/aqmask when the mask is
    /// `self` (`ap_parse_bitmap_str`): relative when it starts with `+`/`-`, else absolute.
    /// The write ends at the first NUL, as the kernel's C string does.
    pub fn kernel_write(&self, input: &[u8]) -> Result<Mask, MaskError> {
        let end = input.iter().position(|&b| b == 0).unwrap_or(input.len());
        let input = &input[..end];
        match input.first() {
            Some(b'+') | Some(b'-') => self.apply_kernel_relative(input),
            _ => Mask::parse_kernel_absolute(input),
        }
    }

    /// The kernel's absolute form (`hex2bitmap`): optional `0x` (or a lone `x`), up to 64
    /// hex digits left-aligned, one optional `\n`, nothing more.
    pub fn parse_kernel_absolute(input: &[u8]) -> Result<Mask, MaskError> {
        let mut i = 0;
        if input.len() >= 2 && input[0] == b'0' && input[1] == b'x' {
            i = 1;
        }
        if input.get(i) == Some(&b'x') {
            i += 1;
        }
        let mut m = Mask::EMPTY;
        let mut bit = 0usize;
        while bit < BITS {
            let Some(&c) = input.get(i) else { break };
            let Some(v) = (c as char).to_digit(16) else {
                break;
            };
            for k in 0..4 {
                if v & (0x8 >> k) != 0 {
                    m.set((bit + k) as u8);
                }
            }
            bit += 4;
            i += 1;
        }
        if input.get(i) == Some(&b'\n') {
            i += 1;
        }
        if i < input.len() {
            let reason = if bit >= BITS && input[i].is_ascii_hexdigit() {
                "more than 64 hex digits".to_string()
            } else {
                format!(
                    "unexpected {:?} at offset {i} (absolute masks are hex digits, optionally after 0x)",
                    input[i] as char
                )
            };
            return Err(mask_err(input, reason));
        }
        Ok(m)
    }

    /// Applies the kernel's relative form (`modify_bitmap`) to this mask.
    pub fn apply_kernel_relative(&self, input: &[u8]) -> Result<Mask, MaskError> {
        let mut m = *self;
        let mut i = 0;
        while i < input.len() {
            let sign = input[i];
            i += 1;
            if sign != b'+' && sign != b'-' {
                return Err(mask_err(
                    input,
                    format!(
                        "term at offset {} starts with {:?}, not + or -",
                        i - 1,
                        sign as char
                    ),
                ));
            }
            let (a, used) = simple_strtoul(&input[i..]);
            if used == 0 {
                return Err(mask_err(
                    input,
                    format!("no number after {:?}", sign as char),
                ));
            }
            if a >= BITS as u64 {
                return Err(mask_err(input, format!("bit {a} is above 255")));
            }
            i += used;
            let mut z = a;
            if input.get(i) == Some(&b'-') {
                i += 1;
                let (b, used) = simple_strtoul(&input[i..]);
                if used == 0 {
                    return Err(mask_err(input, format!("range {a}- has no end")));
                }
                if b >= BITS as u64 {
                    return Err(mask_err(input, format!("bit {b} is above 255")));
                }
                if a > b {
                    return Err(mask_err(input, format!("range {a}-{b} is backwards")));
                }
                i += used;
                z = b;
            }
            for n in a..=z {
                if sign == b'+' {
                    m.set(n as u8);
                } else {
                    m.clear(n as u8);
                }
            }
            while matches!(input.get(i), Some(b',') | Some(b'\n')) {
                i += 1;
            }
        }
        Ok(m)
    }

    /// Parses chzdev's list syntax against the current mask, exactly as `chzdev ap
    /// apmask=...` does (s390-tools zdev/src/ap.c, `ap_validate_mask_input`): an input not
    /// starting with `+`/`-` is an absolute list starting from an empty mask (`0-4,0x7`),
    /// otherwise every entry is a change of the current mask (`+0-4,-0xf0`). Entries are
    /// separated by commas (empty entries are skipped, as `strtok` does); a range splits at
    /// its first `-`; each number is read by [`strtoul_whole`] (C `strtoul` base 0: `0x` hex,
    /// a leading `0` octal, else decimal). chzdev silently ignores a backwards range
    /// (`5-3`: it compares pointers); aplaunch refuses it.
    pub fn parse_chzdev(input: &str, current: &Mask) -> Result<Mask, MaskError> {
        let bytes = input.as_bytes();
        let assign = !matches!(bytes.first(), Some(b'+') | Some(b'-'));
        let mut m = if assign { Mask::EMPTY } else { *current };
        let entries: Vec<&str> = input.split(',').filter(|e| !e.is_empty()).collect();
        if entries.is_empty() {
            return Err(mask_err(
                bytes,
                "no entry (give a list like 0-4,0x7 or a change like +5)",
            ));
        }
        for entry in entries {
            let (set, body) = match entry.as_bytes()[0] {
                b'+' | b'-' if assign => {
                    return Err(mask_err(
                        bytes,
                        format!("entry {entry:?}: a list is either all changes (+N, -N) or none"),
                    ))
                }
                _ if assign => (true, entry),
                sign @ (b'+' | b'-') => (sign == b'+', &entry[1..]),
                _ => {
                    return Err(mask_err(
                        bytes,
                        format!("entry {entry:?}: a list is either all changes (+N, -N) or none"),
                    ))
                }
            };
            if body.is_empty() {
                return Err(mask_err(bytes, format!("entry {entry:?} has no number")));
            }
            let number = |text: &str| {
                strtoul_whole(text).filter(|n| *n <= 255).ok_or_else(|| {
                    mask_err(
                        bytes,
                        format!("{text:?} is not a number 0..255 (decimal, 0x hex, or octal with a leading 0)"),
                    )
                })
            };
            let (a, b) = match body.split_once('-') {
                Some((_, "")) => {
                    return Err(mask_err(bytes, format!("range {body:?} has no end")));
                }
                Some((a, b)) => (number(a)?, number(b)?),
                None => {
                    let a = number(body)?;
                    (a, a)
                }
            };
            if a > b {
                return Err(mask_err(
                    bytes,
                    format!("range {body:?} is backwards ({a} > {b})"),
                ));
            }
            for n in a..=b {
                if set {
                    m.set(n as u8);
                } else {
                    m.clear(n as u8);
                }
            }
        }
        Ok(m)
    }
}

/// A mask change as a user gives it on the command line, in any of the three syntaxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskSpec {
    /// `0x` and 64 hex digits: the kernel's absolute form.
    Absolute(Mask),
    /// chzdev's absolute list (`0-4,0x7`).
    List(Mask),
    /// chzdev's list of changes (`+2,-4-8`, `+0x10`), applied to the current mask.
    Relative(String),
}

impl MaskSpec {
    /// Recognises the syntax: `0x` and 64 hex digits = the kernel's absolute form; leading
    /// `+`/`-` = chzdev's changes; else chzdev's list. A short lone `0x` number (`0x14`) is
    /// refused: the kernel reads it as a left-aligned mask (bits 3 and 5), chzdev as one
    /// number (bit 20).
    pub fn parse(spec: &str) -> Result<MaskSpec, MaskError> {
        let bytes = spec.as_bytes();
        if let Some(hex) = spec.strip_prefix("0x").or_else(|| spec.strip_prefix("0X")) {
            if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                if hex.len() == 64 {
                    return Mask::parse_kernel_absolute(spec.to_ascii_lowercase().as_bytes())
                        .map(MaskSpec::Absolute);
                }
                let kernel = Mask::parse_kernel_absolute(spec.to_ascii_lowercase().as_bytes());
                return Err(mask_err(
                    bytes,
                    match (kernel, strtoul_whole(spec).filter(|n| *n <= 255)) {
                        (Ok(k), Some(n)) => format!(
                            "ambiguous: the kernel reads it as the mask of bits {}, chzdev as bit {n}; write the mask with all 64 hex digits, or the bits as a list ({n} or {})",
                            k.to_ranges(),
                            k.to_ranges()
                        ),
                        _ => "a kernel mask is 0x followed by exactly 64 hex digits".into(),
                    },
                ));
            }
        }
        if matches!(bytes.first(), Some(b'+') | Some(b'-')) {
            Mask::parse_chzdev(spec, &Mask::EMPTY)?;
            return Ok(MaskSpec::Relative(spec.to_string()));
        }
        Mask::parse_chzdev(spec, &Mask::EMPTY)
            .map(MaskSpec::List)
            .map_err(|e| MaskError {
                reason: format!(
                    "{} (give a list like 0-4,0x7, changes like +5 or -4-8, or 0x followed by 64 hex digits)",
                    e.reason
                ),
                ..e
            })
    }

    /// The mask that results from applying this change to `current`.
    pub fn apply(&self, current: &Mask) -> Mask {
        match self {
            MaskSpec::Absolute(m) | MaskSpec::List(m) => *m,
            MaskSpec::Relative(s) => Mask::parse_chzdev(s, current).unwrap_or(*current),
        }
    }
}

impl fmt::Display for Mask {
    /// The kernel's hex form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_kernel_hex())
    }
}

impl fmt::Debug for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mask({})", self.to_ranges())
    }
}

impl Serialize for Mask {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn msb0_bit_order() {
        let m = Mask::from_bits([0]);
        assert_eq!(m.to_kernel_hex(), format!("0x8{}", "0".repeat(63)));
        let m = Mask::from_bits([5]);
        assert_eq!(&m.to_kernel_hex()[..4], "0x04");
        let m = Mask::from_bits([255]);
        assert!(m.to_kernel_hex().ends_with('1'));
        assert_eq!(m.words(), [0, 0, 0, 1]);
    }

    #[test]
    fn absolute_is_left_aligned() {
        let m = Mask::parse_kernel_absolute(b"0x14").unwrap();
        assert_eq!(m, Mask::from_bits([3, 5]));
        assert_eq!(Mask::parse_kernel_absolute(b"14\n").unwrap(), m);
        assert_eq!(Mask::parse_kernel_absolute(b"x14").unwrap(), m);
        assert_eq!(Mask::parse_kernel_absolute(b"").unwrap(), Mask::EMPTY);
        assert_eq!(Mask::parse_kernel_absolute(b"0x").unwrap(), Mask::EMPTY);
        assert_eq!(Mask::parse_kernel_absolute(b"\n").unwrap(), Mask::EMPTY);
        assert_eq!(
            Mask::parse_kernel_absolute(b"0xF").unwrap(),
            Mask::from_bits(0..4)
        );
        let full = format!("0x{}", "f".repeat(64));
        assert_eq!(
            Mask::parse_kernel_absolute(full.as_bytes()).unwrap(),
            Mask::full()
        );
        let too_long = format!("0x{}", "f".repeat(65));
        let e = Mask::parse_kernel_absolute(too_long.as_bytes()).unwrap_err();
        assert!(e.reason.contains("more than 64"), "{e}");
        for bad in [
            &b"0x1\n\n"[..],
            b"0x1 ",
            b" 0x1",
            b"0x1g",
            b"0xx1",
            b"0X1",
            b"1,2",
        ] {
            assert!(Mask::parse_kernel_absolute(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_edits_apply_left_to_right() {
        let base = Mask::from_bits([1, 2, 3]);
        assert_eq!(
            base.apply_kernel_relative(b"+5,-2").unwrap(),
            Mask::from_bits([1, 3, 5])
        );
        assert_eq!(
            base.apply_kernel_relative(b"+4-6,-5").unwrap(),
            Mask::from_bits([1, 2, 3, 4, 6])
        );
        assert_eq!(
            base.apply_kernel_relative(b"-0-255,+7").unwrap(),
            Mask::from_bits([7])
        );
        assert_eq!(
            base.apply_kernel_relative(b"-1\n+9\n").unwrap(),
            Mask::from_bits([2, 3, 9])
        );
        // separators are optional between terms and may repeat
        assert_eq!(
            Mask::EMPTY.apply_kernel_relative(b"+1+2,,+3,").unwrap(),
            Mask::from_bits([1, 2, 3])
        );
    }

    #[test]
    fn relative_numbers_follow_simple_strtoul_base_zero() {
        let e = Mask::EMPTY;
        assert_eq!(
            e.apply_kernel_relative(b"+0x10").unwrap(),
            Mask::from_bits([16])
        );
        assert_eq!(
            e.apply_kernel_relative(b"+0X1f").unwrap(),
            Mask::from_bits([31])
        );
        // the octal quirk: a leading 0 means octal
        assert_eq!(
            e.apply_kernel_relative(b"+010").unwrap(),
            Mask::from_bits([8])
        );
        assert_eq!(
            e.apply_kernel_relative(b"+0").unwrap(),
            Mask::from_bits([0])
        );
        // "08": octal 0, then '8' starts a new term without sign
        assert!(e.apply_kernel_relative(b"+08").is_err());
        // "0x" without hex digit: octal 0 then 'x'
        assert!(e.apply_kernel_relative(b"+0x").is_err());
        // the kernel's unsigned long wraps: 2^64 reads as 0
        assert_eq!(
            e.apply_kernel_relative(b"+18446744073709551616").unwrap(),
            Mask::from_bits([0])
        );
    }

    #[test]
    fn relative_einval_cases() {
        for bad in [
            &b"+256"[..],
            b"+5-4",
            b"+1-256",
            b"+",
            b"-",
            b"+a",
            b"+1 ",
            b"+1,2",
            b"+1, +2",
            b"+1-",
            b"+1;+2",
            b"+1\r\n",
        ] {
            assert!(Mask::EMPTY.apply_kernel_relative(bad).is_err(), "{bad:?}");
        }
        assert!(Mask::EMPTY.kernel_write(b"+1,2").is_err());
    }

    #[test]
    fn kernel_write_dispatches_and_stops_at_nul() {
        let cur = Mask::from_bits([9]);
        assert_eq!(cur.kernel_write(b"+1").unwrap(), Mask::from_bits([1, 9]));
        assert_eq!(cur.kernel_write(b"0x40").unwrap(), Mask::from_bits([1]));
        assert_eq!(
            cur.kernel_write(b"0x40\0garbage").unwrap(),
            Mask::from_bits([1])
        );
    }

    #[test]
    fn chzdev_lists() {
        let cur = Mask::from_bits([2, 5]);
        assert_eq!(
            Mask::parse_chzdev("0-1,3-255", &cur).unwrap(),
            Mask::full().minus(&Mask::from_bits([2]))
        );
        assert_eq!(
            Mask::parse_chzdev("+2,-4-8", &Mask::full()).unwrap(),
            Mask::full().minus(&Mask::from_bits(4..=8))
        );
        // numbers as strtoul base 0 reads them: octal with a leading 0, 0x hex
        assert_eq!(
            Mask::parse_chzdev("010", &cur).unwrap(),
            Mask::from_bits([8])
        );
        assert_eq!(
            Mask::parse_chzdev("0-4,0x7", &cur).unwrap(),
            Mask::from_bits([0, 1, 2, 3, 4, 7])
        );
        assert_eq!(
            Mask::parse_chzdev("+0X10-0x11,-02", &cur).unwrap(),
            Mask::from_bits([5, 16, 17])
        );
        // strtok skips empty entries; a range splits at its first '-'
        assert_eq!(
            Mask::parse_chzdev(",1,,2,", &cur).unwrap(),
            Mask::from_bits([1, 2])
        );
        assert_eq!(
            Mask::parse_chzdev("+-3", &cur).unwrap(),
            Mask::from_bits([0, 1, 2, 3, 5])
        );
        for bad in [
            "1,+2", "+1,2", "256", "5-4", "0x", "08", "a", "1-", "-1-2-3", ",", "", "+", "0x1g",
        ] {
            assert!(Mask::parse_chzdev(bad, &cur).is_err(), "{bad}");
        }
    }

    #[test]
    fn sysfs_reads_are_strict() {
        let ok = format!("0x{}\n", "0".repeat(64));
        assert_eq!(Mask::parse_sysfs(&ok).unwrap(), Mask::EMPTY);
        assert!(Mask::parse_sysfs("0x00\n").is_err());
        assert!(Mask::parse_sysfs("not supported\n").is_err());
    }

    #[test]
    fn specs_pick_the_syntax_and_refuse_ambiguity() {
        let cur = Mask::from_bits([3]);
        let full = format!("0x14{}", "0".repeat(62));
        assert_eq!(
            MaskSpec::parse(&full).unwrap().apply(&cur),
            Mask::from_bits([3, 5])
        );
        let e = MaskSpec::parse("0x14").unwrap_err();
        assert!(
            e.reason.contains("bits 3,5") && e.reason.contains("bit 20"),
            "{e}"
        );
        assert_eq!(
            MaskSpec::parse("5,7").unwrap().apply(&cur),
            Mask::from_bits([5, 7])
        );
        assert_eq!(
            MaskSpec::parse("+5").unwrap().apply(&cur),
            Mask::from_bits([3, 5])
        );
        assert_eq!(MaskSpec::parse("-3").unwrap().apply(&cur), Mask::EMPTY);
        assert_eq!(
            MaskSpec::parse("+0x10").unwrap().apply(&cur),
            Mask::from_bits([3, 16])
        );
        assert_eq!(
            MaskSpec::parse("+010").unwrap().apply(&cur),
            Mask::from_bits([3, 8])
        );
        assert!(MaskSpec::parse("fb").is_err());
        assert!(MaskSpec::parse("0X14").is_err());
        assert!(MaskSpec::parse("+1,2").is_err());
    }

    #[test]
    fn formats() {
        let m = Mask::from_bits([0, 1, 3, 4, 5, 255]);
        assert_eq!(m.to_ranges(), "0-1,3-5,255");
        assert_eq!(m.to_relative(), "-0-255,+0-1,+3-5,+255");
        assert_eq!(Mask::EMPTY.to_ranges(), "");
        assert_eq!(Mask::full().to_ranges(), "0-255");
        assert_eq!(format!("{:?}", Mask::from_bits([2])), "Mask(2)");
    }

    fn any_mask() -> impl Strategy<Value = Mask> {
        prop::array::uniform4(any::<u64>()).prop_map(Mask::from_words)
    }

    /// A mask with long runs, like real ones.
    fn runny_mask() -> impl Strategy<Value = Mask> {
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<bool>()), 0..8).prop_map(|ops| {
            let mut m = Mask::EMPTY;
            for (a, b, set) in ops {
                for n in a.min(b)..=a.max(b) {
                    if set {
                        m.set(n)
                    } else {
                        m.clear(n)
                    }
                }
            }
            m
        })
    }

    /// One relative term: sign, start, optional end, and how each number is spelled.
    #[derive(Debug, Clone)]
    struct Term {
        set: bool,
        a: u16,
        b: Option<u16>,
        radix_a: u8,
        radix_b: u8,
        sep: &'static str,
    }

    fn spell(n: u16, radix: u8) -> String {
        match radix {
            0 => n.to_string(),
            1 => format!("0x{n:x}"),
            2 => format!("0X{n:X}"),
            _ => format!("0{n:o}"),
        }
    }

    fn term() -> impl Strategy<Value = Term> {
        (
            any::<bool>(),
            0u16..300,
            prop::option::of(0u16..300),
            0u8..4,
            0u8..4,
            prop::sample::select(vec![",", "\n", "", ",,"]),
        )
            .prop_map(|(set, a, b, radix_a, radix_b, sep)| Term {
                set,
                a,
                b,
                radix_a,
                radix_b,
                sep,
            })
    }

    proptest! {
        #[test]
        fn kernel_hex_round_trips(m in any_mask()) {
            let hex = m.to_kernel_hex();
            prop_assert_eq!(Mask::parse_kernel_absolute(hex.as_bytes()).unwrap(), m);
            prop_assert_eq!(Mask::parse_sysfs(&format!("{hex}\n")).unwrap(), m);
            prop_assert_eq!(MaskSpec::parse(&hex).unwrap().apply(&Mask::EMPTY), m);
        }

        #[test]
        fn ranges_round_trip(m in runny_mask(), base in any_mask()) {
            // chzdev refuses an empty list: an empty mask is written "-0-255"
            prop_assume!(!m.is_empty());
            prop_assert_eq!(Mask::parse_chzdev(&m.to_ranges(), &base).unwrap(), m);
            prop_assert_eq!(MaskSpec::parse(&m.to_ranges()).unwrap().apply(&base), m);
        }

        #[test]
        fn relative_round_trips_in_both_syntaxes(m in any_mask(), base in any_mask()) {
            let rel = m.to_relative();
            prop_assert_eq!(base.apply_kernel_relative(rel.as_bytes()).unwrap(), m);
            prop_assert_eq!(Mask::parse_chzdev(&rel, &base).unwrap(), m);
            prop_assert_eq!(MaskSpec::parse(&rel).unwrap().apply(&base), m);
        }

        #[test]
        fn left_aligned_prefixes(digits in "[0-9a-fA-F]{0,64}", prefix in 0u8..3, nl in any::<bool>()) {
            let mut s = match prefix { 0 => String::new(), 1 => "0x".into(), _ => "x".into() };
            s.push_str(&digits);
            if nl { s.push('\n'); }
            let m = Mask::parse_kernel_absolute(s.as_bytes()).unwrap();
            let mut padded = digits.to_lowercase();
            while padded.len() < 64 { padded.push('0'); }
            prop_assert_eq!(m.to_kernel_hex(), format!("0x{padded}"));
        }

        #[test]
        fn relative_parse_agrees_with_the_kernel_rules(terms in prop::collection::vec(term(), 1..6), base in any_mask()) {
            let mut text = String::new();
            let mut expect = Some(base);
            for (i, t) in terms.iter().enumerate() {
                text.push(if t.set { '+' } else { '-' });
                text.push_str(&spell(t.a, t.radix_a));
                let z = t.b.unwrap_or(t.a);
                if let Some(b) = t.b {
                    text.push('-');
                    text.push_str(&spell(b, t.radix_b));
                }
                let valid = t.a < 256 && z < 256 && t.a <= z;
                if !valid { expect = None; }
                if let Some(m) = expect.as_mut() {
                    for n in t.a..=z {
                        if t.set { m.set(n as u8) } else { m.clear(n as u8) }
                    }
                }
                if let Some(next) = terms.get(i + 1) {
                    // with no separator a following "-N" would extend this term into a range
                    text.push_str(if t.sep.is_empty() && !next.set { "," } else { t.sep });
                }
            }
            let got = base.apply_kernel_relative(text.as_bytes()).ok();
            prop_assert_eq!(got, expect, "{:?}", text);
        }

        #[test]
        fn parsers_never_panic(s in ".{0,80}", base in any_mask()) {
            let _ = base.kernel_write(s.as_bytes());
            let _ = Mask::parse_chzdev(&s, &base);
            let _ = MaskSpec::parse(&s);
            let _ = Mask::parse_sysfs(&s);
        }
    }
}
