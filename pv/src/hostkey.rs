//! Host key hashes: SHA-256 of a host key's P-521 coordinates, as the ultravisor shows them.

use crate::error::{Error, Result};
use std::fmt;

/// A host key hash (`phkh`), 32 bytes; shown as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostKeyHash(pub [u8; 32]);

impl HostKeyHash {
    /// Parses 64 hex digits (one trailing newline allowed, either case).
    pub fn parse(text: &str) -> Result<Self> {
        let v = host::sysfs::value(text);
        let bad = || Error::HostKeyHash {
            found: host::sysfs::excerpt(text),
        };
        if v.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(v.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(HostKeyHash(out))
    }

    /// True for the all-zero hash the kernel prints for unused `keys/all` lines.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }
}

impl fmt::Display for HostKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for HostKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKeyHash({self})")
    }
}

impl serde::Serialize for HostKeyHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let text = "415c25a5f5f4b2b9ae3ab4a6b2d91bc2b3d4c5e6f708192a3b4c5d6e7f8010f0\n";
        let h = HostKeyHash::parse(text).unwrap();
        assert_eq!(format!("{h}\n"), text);
        assert!(HostKeyHash::parse("00").is_err());
        assert!(HostKeyHash::parse(&"g".repeat(64)).is_err());
        assert!(HostKeyHash::parse(&"0".repeat(64)).unwrap().is_zero());
        assert!(HostKeyHash::parse(&"é".repeat(32)).is_err());
    }
}
