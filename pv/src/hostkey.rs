//! Host key hashes: SHA-256 of a host key's P-521 coordinates, as the ultravisor shows them.

use crate::error::{Error, Result};
use std::fmt;

/// A host key hash (`phkh`), 32 bytes; shown as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostKeyHash(pub [u8; 32]);

impl HostKeyHash {
    /// Parses 64 hex digits (one trailing newline allowed, either case).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::HostKeyHash {
            found: host::sysfs::excerpt(text),
        };
        let bytes = crate::hex::decode(host::sysfs::value(text)).ok_or_else(bad)?;
        bytes.try_into().map(HostKeyHash).map_err(|_| bad())
    }

    /// True for the all-zero hash the kernel prints for unused `keys/all` lines.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }
}

impl fmt::Display for HostKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
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
        // from_str_radix would read "+f" as a byte; sysfs never prints a sign
        assert!(HostKeyHash::parse(&format!("+f{}", "0".repeat(62))).is_err());
        assert_eq!(
            HostKeyHash::parse(&"AB".repeat(32)).unwrap().to_string(),
            "ab".repeat(32)
        );
    }
}
