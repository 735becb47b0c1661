//! Device numbers of virtio-ccw devices (`devno=fe.S.XXXX`), pinned on every device so that
//! a device keeps its number, and the guest's name for it, when others are added or removed.
//!
//! Linux on Z names devices after their bus id (`0.0.1000`, the NIC `enc1000`), and a
//! Secure Execution image's kernel command line is sealed, so the numbers must not follow
//! the command-line order QEMU uses when none is given. The scheme gives each kind its own
//! range and numbers a device by its index within the kind:
//!
//! | kind | numbers |
//! |---|---|
//! | disks (`virtio-blk-ccw`) | `fe.0.0000` + index |
//! | NICs (`virtio-net-ccw`) | `fe.0.1000` + index |
//! | the virtio console's `virtio-serial-ccw` | `fe.0.2000` |
//! | the rng (`virtio-rng-ccw`) | `fe.0.3000` |
//!
//! Adding a disk never moves a NIC; a device whose number must survive the removal of an
//! earlier device of its kind takes an explicit `devno=`. Any number in the virtual channel
//! subsystem (`fe`, subchannel sets 0 to 3) can be given; two devices with one number are
//! refused before QEMU runs.

use std::fmt;

/// The virtual channel subsystem id QEMU requires for virtio-ccw devices.
pub const VIRTUAL_CSSID: u8 = 0xfe;
/// The highest subchannel set id.
pub const MAX_SSID: u8 = 3;
/// How many devices of one kind the scheme numbers.
pub const KIND_RANGE: u16 = 0x1000;

/// A virtio-ccw device number: `fe.S.XXXX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Devno {
    /// The subchannel set (0 to 3).
    pub ssid: u8,
    /// The device number within the set.
    pub number: u16,
}

impl Devno {
    /// A number in subchannel set 0.
    pub const fn new(number: u16) -> Self {
        Devno { ssid: 0, number }
    }

    /// Parses `fe.S.XXXX` (hex, any case; S from 0 to 3), the form QEMU's `devno=` takes.
    pub fn parse(text: &str) -> Result<Devno, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let hex = |s: &str, max_len: usize| {
            (!s.is_empty() && s.len() <= max_len && s.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(s, 16).ok())
                .flatten()
        };
        let [css, ssid, number] = parts.as_slice() else {
            return Err(format!(
                "{text:?} is not a device number of the form fe.0.XXXX"
            ));
        };
        let (Some(css), Some(ssid), Some(number)) = (hex(css, 2), hex(ssid, 1), hex(number, 4))
        else {
            return Err(format!(
                "{text:?} is not a device number of the form fe.0.XXXX"
            ));
        };
        if css != u32::from(VIRTUAL_CSSID) {
            return Err(format!(
                "{text:?} is outside the virtual channel subsystem: virtio-ccw devices need fe.S.XXXX"
            ));
        }
        if ssid > u32::from(MAX_SSID) {
            return Err(format!(
                "{text:?} names subchannel set {ssid}; the sets are 0 to 3"
            ));
        }
        Ok(Devno {
            ssid: ssid as u8,
            number: number as u16,
        })
    }

    /// The bus id the guest sees (`0.0.1000`): Linux shows the virtual channel subsystem as 0.
    pub fn guest_bus_id(&self) -> String {
        format!("0.{:x}.{:04x}", self.ssid, self.number)
    }
}

impl fmt::Display for Devno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{VIRTUAL_CSSID:x}.{:x}.{:04x}", self.ssid, self.number)
    }
}

impl serde::Serialize for Devno {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The kinds of virtio-ccw device aplaunch emits, each with its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `virtio-blk-ccw`.
    Disk,
    /// `virtio-net-ccw`.
    Net,
    /// `virtio-serial-ccw` of the virtio console.
    Serial,
    /// `virtio-rng-ccw`.
    Rng,
}

impl Kind {
    /// The first number of the kind's range.
    pub const fn base(self) -> u16 {
        match self {
            Kind::Disk => 0x0000,
            Kind::Net => 0x1000,
            Kind::Serial => 0x2000,
            Kind::Rng => 0x3000,
        }
    }

    /// The scheme's number for the device at `index` within its kind; `None` past the range.
    pub fn scheme(self, index: usize) -> Option<Devno> {
        let index = u16::try_from(index).ok().filter(|i| *i < KIND_RANGE)?;
        Some(Devno::new(self.base() + index))
    }
}

/// One device asking for a number: its kind, the number given for it (if any) and how to
/// name it in an error.
#[derive(Debug, Clone)]
pub struct Request {
    /// The kind (decides the range).
    pub kind: Kind,
    /// An explicit `devno=`.
    pub given: Option<Devno>,
    /// How errors name the device (`--disk #2 (/vm/data.img)`).
    pub label: String,
}

/// Two devices with one number, or more devices of a kind than its range holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssignError {
    /// Both devices would get `devno`.
    Collision {
        /// The number.
        devno: Devno,
        /// The device that had it first.
        first: String,
        /// The device that asked for it again.
        second: String,
    },
    /// More devices of one kind than [`KIND_RANGE`].
    RangeFull {
        /// The device that did not fit.
        label: String,
    },
}

impl fmt::Display for AssignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssignError::Collision {
                devno,
                first,
                second,
            } => write!(f, "{second} and {first} would both be device {devno}"),
            AssignError::RangeFull { label } => write!(
                f,
                "{label} is past the {KIND_RANGE} numbers of its kind; give it devno="
            ),
        }
    }
}

/// Numbers every request: its explicit number, else the scheme's. Explicit numbers are
/// placed first so that an error names the device that took a number by default.
pub fn assign(requests: &[Request]) -> Result<Vec<Devno>, AssignError> {
    let mut index_in_kind = std::collections::HashMap::new();
    let mut numbers = Vec::with_capacity(requests.len());
    for r in requests {
        let index = index_in_kind.entry(r.kind as u8).or_insert(0usize);
        let number = match r.given {
            Some(d) => d,
            None => r
                .kind
                .scheme(*index)
                .ok_or_else(|| AssignError::RangeFull {
                    label: r.label.clone(),
                })?,
        };
        *index += 1;
        numbers.push(number);
    }
    let mut owner: std::collections::HashMap<Devno, usize> = std::collections::HashMap::new();
    // Explicit numbers first: a default number that lands on one is the one to report.
    let order = (0..requests.len())
        .filter(|&i| requests[i].given.is_some())
        .chain((0..requests.len()).filter(|&i| requests[i].given.is_none()));
    for i in order {
        if let Some(&first) = owner.get(&numbers[i]) {
            return Err(AssignError::Collision {
                devno: numbers[i],
                first: requests[first].label.clone(),
                second: requests[i].label.clone(),
            });
        }
        owner.insert(numbers[i], i);
    }
    Ok(numbers)
}

/// The `devno=` values in extra QEMU arguments (`-device virtio-...-ccw,devno=fe.0.0009`),
/// so that they can be checked against aplaunch's own numbers.
pub fn in_extra_args(args: &[std::ffi::OsString]) -> Vec<Devno> {
    args.iter()
        .flat_map(|a| {
            let text = a.to_string_lossy().into_owned();
            crate::spec::split_qemu_opts(&text)
                .into_iter()
                .filter_map(|opt| {
                    opt.strip_prefix("devno=")
                        .and_then(|v| Devno::parse(v).ok())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: Kind, given: Option<&str>, label: &str) -> Request {
        Request {
            kind,
            given: given.map(|g| Devno::parse(g).unwrap()),
            label: label.into(),
        }
    }

    #[test]
    fn parse_and_print() {
        assert_eq!(Devno::parse("fe.0.1000").unwrap(), Devno::new(0x1000));
        assert_eq!(Devno::parse("FE.3.00aB").unwrap().to_string(), "fe.3.00ab");
        assert_eq!(Devno::parse("fe.0.1").unwrap().to_string(), "fe.0.0001");
        assert_eq!(Devno::new(0x1000).guest_bus_id(), "0.0.1000");
        for bad in [
            "0.0.1000",
            "fe.4.0000",
            "fe.0.10000",
            "fe.0",
            "fe.0.zz",
            "",
            "fe..1",
            "fe.0.1.2",
        ] {
            assert!(Devno::parse(bad).is_err(), "{bad}");
        }
        assert!(Devno::parse("0.0.1000")
            .unwrap_err()
            .contains("virtual channel subsystem"));
    }

    #[test]
    fn each_kind_numbers_by_its_own_index() {
        let base = [
            req(Kind::Disk, None, "disk 0"),
            req(Kind::Net, None, "nic 0"),
            req(Kind::Rng, None, "rng"),
        ];
        let before = assign(&base).unwrap();
        // A user adds a disk (before the NIC on the command line): the NIC keeps 1000.
        let added = [
            req(Kind::Disk, None, "disk 0"),
            req(Kind::Disk, None, "disk 1"),
            req(Kind::Net, None, "nic 0"),
            req(Kind::Rng, None, "rng"),
        ];
        let after = assign(&added).unwrap();
        assert_eq!(before[1], Devno::new(0x1000));
        assert_eq!(after[2], before[1]);
        assert_eq!(after[3], before[2]);
        assert_eq!(after[1], Devno::new(0x0001));
    }

    #[test]
    fn explicit_numbers_and_collisions() {
        let ok = assign(&[
            req(Kind::Disk, Some("fe.0.0100"), "disk 0"),
            req(Kind::Disk, None, "disk 1"),
        ])
        .unwrap();
        // An explicit number does not shift the scheme of the others.
        assert_eq!(ok, [Devno::new(0x100), Devno::new(0x0001)]);
        let e = assign(&[
            req(Kind::Disk, None, "--disk #1"),
            req(Kind::Disk, Some("fe.0.0000"), "--disk #2"),
        ])
        .unwrap_err();
        assert_eq!(
            e,
            AssignError::Collision {
                devno: Devno::new(0),
                first: "--disk #2".into(),
                second: "--disk #1".into(),
            }
        );
        assert!(e.to_string().contains("--disk #1") && e.to_string().contains("--disk #2"));
        let e = assign(&[
            req(Kind::Net, Some("fe.0.3000"), "--net #1"),
            req(Kind::Rng, None, "--rng"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("fe.0.3000"), "{e}");
        // Same number in different subchannel sets is fine.
        assert!(assign(&[
            req(Kind::Disk, Some("fe.1.0000"), "a"),
            req(Kind::Disk, None, "b"),
        ])
        .is_ok());
    }

    #[test]
    fn extra_args_devnos() {
        let args: Vec<std::ffi::OsString> = vec![
            "-device".into(),
            "virtio-balloon-ccw,id=b,devno=fe.0.0002".into(),
            "-d".into(),
            "devno=zz".into(),
        ];
        assert_eq!(in_extra_args(&args), [Devno::new(2)]);
    }
}
