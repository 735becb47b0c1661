//! NIC MAC addresses: checked when given, derived from the guest's identity when not.
//!
//! Without `mac=` every QEMU process gives its first NIC 52:54:00:12:34:56, so two guests
//! on one bridge clash. aplaunch derives a MAC from the guest name and the NIC's device
//! number instead: stable across restarts and across adding other devices (the devno is),
//! different between guests, locally administered (bit 1 of the first octet set) and
//! unicast (bit 0 clear), as IEEE 802 reserves for addresses not assigned by a vendor.

use crate::devno::Devno;
use std::fmt;

/// A unicast MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

/// Bit 0 of the first octet: a group (multicast or broadcast) address.
const GROUP_BIT: u8 = 0x01;
/// Bit 1 of the first octet: a locally administered address.
const LOCAL_BIT: u8 = 0x02;

impl Mac {
    /// Parses `52:54:00:12:34:56` (or with `-`), refusing group (multicast) addresses and
    /// the all-zero address, which no NIC can use.
    pub fn parse(text: &str) -> Result<Mac, String> {
        let parts: Vec<&str> = text.split([':', '-']).collect();
        let mut bytes = [0u8; 6];
        let well_formed = parts.len() == 6
            && parts.iter().zip(bytes.iter_mut()).all(|(p, b)| {
                p.len() == 2
                    && p.chars().all(|c| c.is_ascii_hexdigit())
                    && u8::from_str_radix(p, 16).map(|v| *b = v).is_ok()
            });
        if !well_formed {
            return Err(format!("{text:?} is not a MAC address"));
        }
        if bytes[0] & GROUP_BIT != 0 {
            return Err(format!(
                "{text:?} is a multicast address (bit 0 of the first octet is set): a NIC needs a unicast one"
            ));
        }
        if bytes == [0; 6] {
            return Err(format!("{text:?} is the all-zero address"));
        }
        Ok(Mac(bytes))
    }

    /// The MAC of the NIC with device number `devno` in the guest `name`: the first six
    /// bytes of SHA-256 over a fixed label, the name and the devno, made locally
    /// administered and unicast.
    pub fn derived(name: &str, devno: Devno) -> Mac {
        let devno = devno.to_string();
        let digest =
            pv::digest::sha256(&[b"aplaunch-mac\0", name.as_bytes(), b"\0", devno.as_bytes()])
                .expect("libcrypto computes SHA-256");
        let mut bytes = [0u8; 6];
        bytes.copy_from_slice(&digest[..6]);
        bytes[0] = (bytes[0] & !GROUP_BIT) | LOCAL_BIT;
        Mac(bytes)
    }

    /// Whether the address is locally administered.
    pub fn is_local(&self) -> bool {
        self.0[0] & LOCAL_BIT != 0
    }

    /// Whether the address is unicast.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & GROUP_BIT == 0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_refuses_multicast_and_garbage() {
        assert_eq!(
            Mac::parse("52:54:00:12:34:56").unwrap().to_string(),
            "52:54:00:12:34:56"
        );
        assert_eq!(
            Mac::parse("52-54-00-AB-34-56").unwrap().to_string(),
            "52:54:00:ab:34:56"
        );
        for multicast in [
            "01:00:5e:00:00:01",
            "33:33:00:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "53:54:00:12:34:56",
        ] {
            assert!(
                Mac::parse(multicast).unwrap_err().contains("multicast"),
                "{multicast}"
            );
        }
        for bad in [
            "zz",
            "52:54:00:12:34",
            "52:54:00:12:34:5",
            "52:54:00:12:34:567",
            "00:00:00:00:00:00",
            "+5:54:00:12:34:56",
        ] {
            assert!(Mac::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_macs_are_stable_local_unicast_and_distinct() {
        let a = Mac::derived("secure1", Devno::new(0x1000));
        assert_eq!(a, Mac::derived("secure1", Devno::new(0x1000)));
        assert!(a.is_local() && a.is_unicast(), "{a}");
        assert_ne!(a, Mac::derived("secure2", Devno::new(0x1000)));
        assert_ne!(a, Mac::derived("secure1", Devno::new(0x1001)));
        assert_ne!(a.to_string(), "52:54:00:12:34:56");
        // Known answer, computed independently with coreutils:
        // printf 'aplaunch-mac\0secure1\0fe.0.1001' | sha256sum  ->  8aef71e9b44e...
        assert_eq!(
            Mac::derived("secure1", Devno::new(0x1001)).to_string(),
            "8a:ef:71:e9:b4:4e"
        );
        // Round trip through the parser: a derived MAC is one the user could write.
        assert_eq!(Mac::parse(&a.to_string()).unwrap(), a);
        // Every derived MAC is local and unicast, whatever the hash gives.
        for i in 0..512u16 {
            let m = Mac::derived(&format!("g{i}"), Devno::new(0x1000 + (i % 7)));
            assert!(m.is_local() && m.is_unicast(), "{m}");
        }
    }
}
