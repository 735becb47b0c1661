//! AP numbering: adapters (APID), domains (APQI) and queues (APQN).
//!
//! An APQN is written the way the kernel names queue devices, `AA.DDDD` in lower-case
//! hex (`05.00ab`); ap-check and s390-tools messages use decimal (`5.171`). Messages of
//! this crate give both.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An adapter number (APID), 0..=255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Apid(pub u8);

/// A domain number (APQI, queue index), 0..=255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Apqi(pub u8);

/// An AP queue: adapter and domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Apqn {
    /// The adapter.
    pub apid: Apid,
    /// The domain.
    pub apqi: Apqi,
}

/// Why an id or APQN did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not {expected}")]
pub struct ParseIdError {
    /// What was given.
    pub input: String,
    /// What was expected.
    pub expected: &'static str,
}

impl Apid {
    /// Adapter `a`.
    pub fn new(a: u8) -> Self {
        Apid(a)
    }
    /// `0x05 (5)`-style description for messages.
    pub fn describe(self) -> String {
        format!("adapter 0x{:02x} ({})", self.0, self.0)
    }
}

impl Apqi {
    /// Domain `d`.
    pub fn new(d: u8) -> Self {
        Apqi(d)
    }
    /// `domain 0x00ab (171)`-style description for messages.
    pub fn describe(self) -> String {
        format!("domain 0x{:04x} ({})", self.0, self.0)
    }
}

impl Apqn {
    /// The queue of adapter `a`, domain `d`.
    pub fn new(a: u8, d: u8) -> Self {
        Apqn {
            apid: Apid(a),
            apqi: Apqi(d),
        }
    }

    /// The decimal form ap-check uses: `5.171`.
    pub fn decimal(self) -> String {
        format!("{}.{}", self.apid.0, self.apqi.0)
    }

    /// Both forms, for messages: `05.00ab (5.171)`.
    pub fn describe(self) -> String {
        format!("{self} ({})", self.decimal())
    }

    /// The sysfs directory name of the queue device: `05.00ab` (same as Display).
    pub fn dir_name(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Apid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

impl fmt::Display for Apqi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}", self.0)
    }
}

impl fmt::Display for Apqn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}.{:04x}", self.apid.0, self.apqi.0)
    }
}

fn hex_field(s: &str, max_len: usize) -> Option<u8> {
    crate::number::hex_id(s, 1..=max_len).and_then(|v| u8::try_from(v).ok())
}

impl FromStr for Apqn {
    type Err = ParseIdError;

    /// Parses `AA.DDDD` in hex (1-2 and 1-4 digits, any case): `05.00ab`, `5.ab`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseIdError {
            input: s.to_string(),
            expected: "an APQN in hex, adapter.domain like 05.00ab",
        };
        let (a, d) = s.split_once('.').ok_or_else(err)?;
        let a = hex_field(a, 2).ok_or_else(err)?;
        let d = hex_field(d, 4).ok_or_else(err)?;
        Ok(Apqn::new(a, d))
    }
}

impl FromStr for Apid {
    type Err = ParseIdError;
    /// Parses a user-given adapter number, see [`parse_user_id`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_user_id(
            s,
            "an adapter number 0..255 (decimal, hex with 0x, octal with a leading 0)",
        )
        .map(Apid)
    }
}

impl FromStr for Apqi {
    type Err = ParseIdError;
    /// Parses a user-given domain number, see [`parse_user_id`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_user_id(
            s,
            "a domain number 0..255 (decimal, hex with 0x, octal with a leading 0)",
        )
        .map(Apqi)
    }
}

/// Parses an id typed by a user the way chzdev reads numbers
/// ([`crate::number::strtoul_whole`], C `strtoul` base 0): decimal (`171`), hex with `0x`
/// (`0xab`) or octal with a leading `0` (`010` is 8, as the kernel reads it too).
pub fn parse_user_id(s: &str, expected: &'static str) -> Result<u8, ParseIdError> {
    let t = s.trim();
    (!t.is_empty())
        .then(|| crate::number::strtoul_whole(t))
        .flatten()
        .and_then(|v| u8::try_from(v).ok())
        .ok_or_else(|| ParseIdError {
            input: s.to_string(),
            expected,
        })
}

impl Serialize for Apqn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Apid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

impl Serialize for Apqi {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apqn_display_and_parse() {
        let q = Apqn::new(5, 0xab);
        assert_eq!(q.to_string(), "05.00ab");
        assert_eq!(q.decimal(), "5.171");
        assert_eq!(q.describe(), "05.00ab (5.171)");
        assert_eq!("05.00ab".parse::<Apqn>().unwrap(), q);
        assert_eq!("5.AB".parse::<Apqn>().unwrap(), q);
        assert!("05.100".parse::<Apqn>().is_err());
        assert!("100.0001".parse::<Apqn>().is_err());
        assert!("05".parse::<Apqn>().is_err());
        assert!("05.".parse::<Apqn>().is_err());
        assert!("0x5.1".parse::<Apqn>().is_err());
    }

    #[test]
    fn user_ids_read_like_chzdev() {
        assert_eq!("171".parse::<Apqi>().unwrap(), Apqi(171));
        assert_eq!("0xab".parse::<Apqi>().unwrap(), Apqi(171));
        assert_eq!("05".parse::<Apid>().unwrap(), Apid(5));
        assert_eq!("0".parse::<Apid>().unwrap(), Apid(0));
        assert_eq!("010".parse::<Apid>().unwrap(), Apid(8));
        assert!("08".parse::<Apid>().is_err());
        assert!("256".parse::<Apid>().is_err());
        assert!("0x100".parse::<Apid>().is_err());
        assert!("-1".parse::<Apid>().is_err());
        assert!("".parse::<Apid>().is_err());
    }
}
