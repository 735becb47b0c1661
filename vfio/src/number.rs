//! Numbers as the programs aplaunch stands in for read them. One scanner serves every
//! syntax; the readers differ only in what they allow around the digits and what they do
//! on overflow, as their C originals do:
//!
//! | reader | original | around the digits | overflow |
//! |---|---|---|---|
//! | [`kstrtoul`] | the kernel's `kstrtoul(buf, 0, ..)` (lib/kstrtox.c) | one `+`, one trailing `\n` | refused |
//! | [`simple_strtoul`] | the kernel's `simple_strtoul(s, &end, 0)` (lib/vsprintf.c) | nothing; stops at the first other byte | wraps |
//! | [`strtoul_whole`] | C `strtoul(s, &end, 0)`, all of `s` consumed (chzdev, libap) | white space and a sign before | saturates |
//! | [`strtol_u8_prefix`] | C `strtol(s, NULL, 0)` on one list item (libap) | white space and a sign before; stops at the first other byte | refused |
//! | [`atoi`] | glibc `atoi` (`(int) strtol(s, NULL, 10)`) | white space and a sign before; stops at the first other byte | saturates |
//!
//! Ids in sysfs are plain hex as the kernel prints them (`%02x`, `%04x`): [`hex_id`].
//!
//! Base 0 means what the kernel's `_parse_integer_fixup_radix` and C's `strtoul` both
//! decide: `0x`/`0X` followed by a hex digit is hex, another leading `0` octal, else
//! decimal.

/// The digits read from the start of a text in one base.
#[derive(Debug, Clone, Copy)]
struct Digits {
    /// The value, wrapped modulo 2^64 when it overflowed.
    wrapped: u64,
    /// Whether the value did not fit in 64 bits.
    overflow: bool,
    /// How many bytes were digits.
    used: usize,
}

/// Reads digits of `base` from the start of `s`, up to the first byte that is not one.
fn digits_of(s: &[u8], base: u32) -> Digits {
    let mut wrapped: u64 = 0;
    let mut overflow = false;
    let mut used = 0;
    for &c in s {
        let Some(d) = (c as char).to_digit(base) else {
            break;
        };
        let (times, o1) = wrapped.overflowing_mul(u64::from(base));
        let (plus, o2) = times.overflowing_add(u64::from(d));
        wrapped = plus;
        overflow |= o1 || o2;
        used += 1;
    }
    Digits {
        wrapped,
        overflow,
        used,
    }
}

/// The base-0 rule: `(base, prefix length)`; the `0` of an octal number is a digit.
fn base_zero(s: &[u8]) -> (u32, usize) {
    match s {
        [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => (16, 2),
        [b'0', ..] => (8, 0),
        _ => (10, 0),
    }
}

/// C's `isspace` in the C locale, then an optional sign: `(negative, bytes skipped)`.
fn space_and_sign(s: &[u8]) -> (bool, usize) {
    let i = s
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .count();
    match s.get(i) {
        Some(b'-') => (true, i + 1),
        Some(b'+') => (false, i + 1),
        _ => (false, i),
    }
}

/// The kernel's `kstrtoul(buf, 0, ...)` as the vfio_ap attributes use it: one optional
/// leading `+`, base 0, one optional trailing `\n`, nothing else. `None` is the kernel's
/// EINVAL (or ERANGE on overflow).
pub fn kstrtoul(s: &str) -> Option<u64> {
    let s = s.strip_suffix('\n').unwrap_or(s).as_bytes();
    let s = s.strip_prefix(b"+").unwrap_or(s);
    let (base, prefix) = base_zero(s);
    let d = digits_of(&s[prefix..], base);
    (d.used > 0 && prefix + d.used == s.len() && !d.overflow).then_some(d.wrapped)
}

/// The kernel's `simple_strtoul(s, &end, 0)`: the value (wrapping on overflow, as the
/// kernel does) and the number of bytes consumed, 0 when no digit was read.
pub fn simple_strtoul(s: &[u8]) -> (u64, usize) {
    let (base, prefix) = base_zero(s);
    let d = digits_of(&s[prefix..], base);
    if d.used == 0 {
        return (0, 0);
    }
    (d.wrapped, prefix + d.used)
}

/// C `strtoul(text, &end, 0)` where all of `text` must be consumed, as chzdev and libap
/// check it. As in C, an empty text is 0, a negative number wraps and overflow saturates
/// at `u64::MAX`. `None` when anything is left over.
pub fn strtoul_whole(text: &str) -> Option<u64> {
    let s = text.as_bytes();
    let (negative, skipped) = space_and_sign(s);
    let rest = &s[skipped..];
    let (base, prefix) = base_zero(rest);
    let d = digits_of(&rest[prefix..], base);
    if d.used == 0 {
        // no digits: strtoul leaves `end` at the start of the text
        return text.is_empty().then_some(0);
    }
    if prefix + d.used != rest.len() {
        return None;
    }
    Some(if d.overflow {
        u64::MAX
    } else if negative {
        d.wrapped.wrapping_neg()
    } else {
        d.wrapped
    })
}

/// C's `strtol(s, NULL, 0)` as libap uses it on one list item (up to the first other
/// character; no digits is 0), kept when it is an id 0..255.
pub fn strtol_u8_prefix(s: &str) -> Option<u8> {
    let s = s.as_bytes();
    let (negative, skipped) = space_and_sign(s);
    let rest = &s[skipped..];
    let (base, prefix) = base_zero(rest);
    let d = digits_of(&rest[prefix..], base);
    if d.overflow || (negative && d.wrapped != 0) {
        return None;
    }
    u8::try_from(d.wrapped).ok()
}

/// C's `atoi` as glibc does it (`(int) strtol(s, NULL, 10)`): leading white space, a sign,
/// decimal digits up to the first other byte; 0 when there is no number.
pub fn atoi(bytes: &[u8]) -> i32 {
    let (negative, skipped) = space_and_sign(bytes);
    let d = digits_of(&bytes[skipped..], 10);
    let value = if d.overflow {
        i64::MAX
    } else {
        i64::try_from(d.wrapped).unwrap_or(i64::MAX)
    };
    (if negative { -value } else { value }) as i32
}

/// An id in plain hex as the kernel prints AP numbers (`%02x` cards, `%04x` domains): only
/// hex digits, either case, as many as `digits` allows; no `0x`, sign or white space.
pub fn hex_id(s: &str, digits: std::ops::RangeInclusive<usize>) -> Option<u16> {
    if !digits.contains(&s.len()) || s.len() > 4 {
        return None;
    }
    let d = digits_of(s.as_bytes(), 16);
    (d.used == s.len()).then_some(d.wrapped as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kstrtoul_is_strict_base_zero() {
        assert_eq!(kstrtoul("171"), Some(171));
        assert_eq!(kstrtoul("0xab\n"), Some(171));
        assert_eq!(kstrtoul("0XAB"), Some(171));
        assert_eq!(kstrtoul("010"), Some(8));
        assert_eq!(kstrtoul("0"), Some(0));
        assert_eq!(kstrtoul("08"), None);
        assert_eq!(kstrtoul("0x"), None);
        assert_eq!(kstrtoul("1\n\n"), None);
        assert_eq!(kstrtoul(" 1"), None);
        assert_eq!(kstrtoul("+1"), Some(1));
        assert_eq!(kstrtoul("++1"), None);
        assert_eq!(kstrtoul("-1"), None);
        assert_eq!(kstrtoul(""), None);
        assert_eq!(kstrtoul("+"), None);
        assert_eq!(kstrtoul("\n"), None);
        assert_eq!(kstrtoul("99999999999999999999999"), None);
        assert_eq!(kstrtoul("18446744073709551615"), Some(u64::MAX));
    }

    #[test]
    fn simple_strtoul_stops_and_wraps() {
        assert_eq!(simple_strtoul(b"0x1f,"), (31, 4));
        assert_eq!(simple_strtoul(b"010-"), (8, 3));
        assert_eq!(simple_strtoul(b"0x"), (0, 1));
        assert_eq!(simple_strtoul(b"x"), (0, 0));
        assert_eq!(simple_strtoul(b" 1"), (0, 0));
        assert_eq!(simple_strtoul(b"18446744073709551616"), (0, 20));
    }

    #[test]
    fn strtoul_whole_is_strtoul_base_zero_with_nothing_left() {
        for (text, want) in [
            ("7", Some(7)),
            ("0x7", Some(7)),
            ("0XfF", Some(255)),
            ("010", Some(8)),
            ("0", Some(0)),
            ("", Some(0)),
            (" 5", Some(5)),
            ("+5", Some(5)),
            ("-0", Some(0)),
            ("-1", Some(u64::MAX)),
            ("99999999999999999999999", Some(u64::MAX)),
            ("08", None),
            ("0x", None),
            ("5 ", None),
            ("5a", None),
            (" ", None),
            ("+", None),
        ] {
            assert_eq!(strtoul_whole(text), want, "{text:?}");
        }
    }

    #[test]
    fn strtol_u8_prefix_reads_up_to_the_first_other_character() {
        assert_eq!(strtol_u8_prefix(" 010"), Some(8));
        assert_eq!(strtol_u8_prefix("0x1f,"), Some(31));
        assert_eq!(strtol_u8_prefix("7abc"), Some(7));
        assert_eq!(strtol_u8_prefix("abc"), Some(0));
        assert_eq!(strtol_u8_prefix("0x"), Some(0));
        assert_eq!(strtol_u8_prefix("-0"), Some(0));
        assert_eq!(strtol_u8_prefix("-1"), None);
        assert_eq!(strtol_u8_prefix("256"), None);
        assert_eq!(strtol_u8_prefix("99999999999999999999999"), None);
    }

    #[test]
    fn atoi_reads_like_c() {
        assert_eq!(atoi(b"1234\n"), 1234);
        assert_eq!(atoi(b"  42abc"), 42);
        assert_eq!(atoi(b"+7"), 7);
        assert_eq!(atoi(b"-7"), -7);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b""), 0);
        assert_eq!(atoi(b"\n12"), 12);
        assert_eq!(atoi(b"0x10"), 0);
        assert_eq!(atoi(b"010"), 10);
    }

    #[test]
    fn hex_ids_are_plain_hex_of_the_allowed_width() {
        assert_eq!(hex_id("05", 2..=2), Some(5));
        assert_eq!(hex_id("00aB", 4..=4), Some(171));
        assert_eq!(hex_id("ab", 1..=4), Some(171));
        assert_eq!(hex_id("ffff", 1..=4), Some(0xffff));
        for bad in ["", "5", "005", "+5", "0x", " 5", "5g", "12345"] {
            assert_eq!(hex_id(bad, 2..=2), None, "{bad:?}");
        }
        assert_eq!(hex_id("12345", 1..=8), None);
    }
}
