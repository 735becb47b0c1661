//! The one reading of an mdev UUID, wherever a user, a config file, sysfs or QEMU names
//! one, and the one `sysfsdev` path formed from it.
//!
//! Accepted: 8-4-4-4-12 hex digits in either case, white space around them ignored (a
//! UUID pasted or read from a file with its newline); always handed on in lower case, as
//! the kernel names mdevs. Refused: the 32-digit, braced and `urn:uuid:` forms that the
//! uuid crate also parses. sysfs, `mdevctl list`, QEMU's `sysfsdev=` and libvirt's
//! `<address uuid=...>` all spell the hyphenated form, so accepting others would only let
//! two spellings name one mdev. The names of mdevctl's definition files are a separate
//! reading, mdevctl's own: [`crate::mdevctl::definition_file_uuid`].

use crate::error::{Error, Result};
use std::fmt;
use uuid::Uuid;

/// Where the host lists its mdevs; `sysfsdev=` paths start here.
pub const MDEV_DEVICES: &str = "/sys/bus/mdev/devices";

/// Reads an mdev UUID as described in the module documentation; `None` for any other
/// text.
pub fn parse(input: &str) -> Option<Uuid> {
    let t = input.trim();
    let hyphenated = t.len() == 36
        && t.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if hyphenated {
        Uuid::parse_str(t).ok()
    } else {
        None
    }
}

/// Reads an mdev UUID and gives it back hyphenated in lower case; a malformed one is
/// [`Error::BadUuid`], a usage error.
pub fn normalize(input: &str) -> Result<String> {
    parse(input)
        .map(|u| u.hyphenated().to_string())
        .ok_or_else(|| Error::BadUuid {
            input: input.to_string(),
        })
}

/// Whether a directory entry's name is an mdev's UUID exactly as the kernel writes one
/// (nothing around it).
pub fn is_sysfs_name(name: &str) -> bool {
    name.len() == 36 && parse(name).is_some()
}

/// The `sysfsdev=` path of an mdev as QEMU and libvirt take it: the path as the host's
/// QEMU sees it, never resolved under a host root.
pub fn sysfsdev(uuid: impl fmt::Display) -> String {
    format!("{MDEV_DEVICES}/{uuid}")
}

/// The mdev UUID a `sysfsdev` path ends in (`/sys/bus/mdev/devices/U` or the device's
/// real path `/sys/devices/vfio_ap/matrix/U`, a trailing `/` allowed), lower case.
pub fn of_sysfsdev(path: &str) -> Option<String> {
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    is_sysfs_name(last).then(|| last.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

    #[test]
    fn only_the_hyphenated_form_in_any_case_is_an_mdev_uuid() {
        assert_eq!(normalize(U).unwrap(), U);
        assert_eq!(
            normalize("62177883-F1BB-47f0-914d-32a22e3a8804").unwrap(),
            U
        );
        assert_eq!(normalize(&format!(" {U}\n")).unwrap(), U);
        for bad in [
            "",
            "nope",
            "62177883f1bb47f0914d32a22e3a8804",
            "{62177883-f1bb-47f0-914d-32a22e3a8804}",
            "urn:uuid:62177883-f1bb-47f0-914d-32a22e3a8804",
            "62177883-f1bb-47f0-914d-32a22e3a880",
            "62177883-f1bb-47f0-914d-32a22e3a88045",
            "62177883+f1bb-47f0-914d-32a22e3a8804",
            "6217788g-f1bb-47f0-914d-32a22e3a8804",
        ] {
            assert!(
                matches!(normalize(bad), Err(Error::BadUuid { input }) if input == bad),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sysfs_names_have_nothing_around_them() {
        assert!(is_sysfs_name(U));
        assert!(!is_sysfs_name(&format!("{U}\n")));
        assert!(!is_sysfs_name("devices"));
    }

    #[test]
    fn sysfsdev_paths_both_ways() {
        assert_eq!(sysfsdev(U), format!("/sys/bus/mdev/devices/{U}"));
        assert_eq!(of_sysfsdev(&sysfsdev(U)).as_deref(), Some(U));
        assert_eq!(
            of_sysfsdev("/sys/devices/vfio_ap/matrix/62177883-F1BB-47f0-914d-32a22e3a8804/")
                .as_deref(),
            Some(U)
        );
        assert_eq!(of_sysfsdev("/sys/bus/mdev/devices/x"), None);
        assert_eq!(of_sysfsdev(""), None);
    }
}
