//! The ultravisor as the kernel shows it under `/sys/firmware/uv`.

use crate::hostkey::HostKeyHash;
use host::sysfs::{self, msb0_bit};
use host::HostRoot;

/// Directory of the ultravisor information.
pub const UV_DIR: &str = "sys/firmware/uv";
/// MSB-0 bit of `query/feature_indications`: AP passthrough for secure guests.
pub const FEATURE_AP: u32 = 4;
/// MSB-0 bit of `query/feature_indications`: AP interrupts for secure guests.
pub const FEATURE_AP_INTR: u32 = 5;
/// MSB-0 bit of the first `query/facilities` word: the query-keys call (keys/ exists).
pub const FACILITY_QUERY_KEYS: u32 = 34;

/// One file's value: `Ok(None)` when the file is absent, `Err` when unreadable or malformed.
pub type Field<T> = std::result::Result<Option<T>, host::Error>;

/// The host key hashes from `keys/` (kernel 6.13+).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct UvKeys {
    /// `keys/host_key`.
    pub host_key: Option<HostKeyHash>,
    /// `keys/backup_host_key`.
    pub backup_host_key: Option<HostKeyHash>,
    /// The non-zero lines of `keys/all`.
    pub all: Vec<HostKeyHash>,
}

/// Everything aplaunch reads from `/sys/firmware/uv`, each file read once.
#[derive(Debug)]
pub struct UvInfo {
    /// Whether `sys/firmware/uv` is a directory.
    pub present: bool,
    /// `prot_virt_host` (`1` when this kernel runs as a PV host).
    pub prot_virt_host: Field<u64>,
    /// `query/facilities`: the four ultravisor-call bitmap words.
    pub facilities: Field<[u64; 4]>,
    /// `query/feature_indications`.
    pub feature_indications: Field<u64>,
    /// `query/max_cpus`.
    pub max_cpus: Field<u64>,
    /// `query/max_guests`.
    pub max_guests: Field<u64>,
    /// `query/supp_se_hdr_ver`.
    pub supp_se_hdr_ver: Field<u64>,
    /// `query/supp_se_hdr_pcf`.
    pub supp_se_hdr_pcf: Field<u64>,
    /// `keys/`: `Ok(None)` when the directory does not exist (kernel before 6.13).
    pub keys: Field<UvKeys>,
}

impl UvInfo {
    /// Reads the ultravisor tree under `root`; never fails as a whole, each field says.
    pub fn read(root: &HostRoot) -> Self {
        let file = |name: &str| format!("{UV_DIR}/{name}");
        let present = root.is_dir(UV_DIR);
        if !present {
            return UvInfo {
                present,
                prot_virt_host: Ok(None),
                facilities: Ok(None),
                feature_indications: Ok(None),
                max_cpus: Ok(None),
                max_guests: Ok(None),
                supp_se_hdr_ver: Ok(None),
                supp_se_hdr_pcf: Ok(None),
                keys: Ok(None),
            };
        }
        UvInfo {
            present,
            prot_virt_host: sysfs::read_dec_optional(root, file("prot_virt_host")),
            facilities: read_facilities(root, &file("query/facilities")),
            feature_indications: sysfs::read_hex_optional(root, file("query/feature_indications")),
            max_cpus: sysfs::read_dec_optional(root, file("query/max_cpus")),
            max_guests: sysfs::read_dec_optional(root, file("query/max_guests")),
            supp_se_hdr_ver: sysfs::read_hex_optional(root, file("query/supp_se_hdr_ver")),
            supp_se_hdr_pcf: sysfs::read_hex_optional(root, file("query/supp_se_hdr_pcf")),
            keys: read_keys(root),
        }
    }

    /// Whether a header version (0x100, 0x200, ...) is in `supp_se_hdr_ver`; `None` when unknown.
    pub fn supports_header_version(&self, version: u32) -> Option<bool> {
        let mask = *self.supp_se_hdr_ver.as_ref().ok()?.as_ref()?;
        Some(header_version_bit(version).is_some_and(|bit| msb0_bit(mask, bit)))
    }

    /// A feature bit of `feature_indications`; `None` when unknown.
    pub fn feature(&self, bit: u32) -> Option<bool> {
        let word = *self.feature_indications.as_ref().ok()?.as_ref()?;
        Some(msb0_bit(word, bit))
    }
}

/// The MSB-0 bit of `supp_se_hdr_ver` that stands for a header version: bit n = (n+1)*0x100.
pub fn header_version_bit(version: u32) -> Option<u32> {
    if version == 0 || version % 0x100 != 0 {
        return None;
    }
    let bit = version / 0x100 - 1;
    (bit < 64).then_some(bit)
}

fn read_facilities(root: &HostRoot, path: &str) -> Field<[u64; 4]> {
    let Some(text) = root.read_optional(path)? else {
        return Ok(None);
    };
    let words: Vec<Option<u64>> = text.lines().map(sysfs::parse_hex).collect();
    match words.as_slice() {
        [Some(a), Some(b), Some(c), Some(d)] if text.ends_with('\n') => Ok(Some([*a, *b, *c, *d])),
        _ => Err(host::Error::Format {
            path: root.path(path),
            expected: "four lines of %lx",
            found: sysfs::excerpt(&text),
        }),
    }
}

fn read_keys(root: &HostRoot) -> Field<UvKeys> {
    let dir = format!("{UV_DIR}/keys");
    if !root.is_dir(&dir) {
        return Ok(None);
    }
    let hash = |name: &str| -> Field<HostKeyHash> {
        let path = format!("{dir}/{name}");
        let Some(text) = root.read_optional(&path)? else {
            return Ok(None);
        };
        HostKeyHash::parse(&text)
            .map(Some)
            .map_err(|_| host::Error::Format {
                path: root.path(&path),
                expected: "64 hex digits (a SHA-256 host key hash)",
                found: sysfs::excerpt(&text),
            })
    };
    let mut keys = UvKeys {
        host_key: hash("host_key")?,
        backup_host_key: hash("backup_host_key")?,
        all: Vec::new(),
    };
    let all_path = format!("{dir}/all");
    if let Some(text) = root.read_optional(&all_path)? {
        for line in text.lines() {
            let h = HostKeyHash::parse(line).map_err(|_| host::Error::Format {
                path: root.path(&all_path),
                expected: "lines of 64 hex digits",
                found: sysfs::excerpt(line),
            })?;
            if !h.is_zero() {
                keys.all.push(h);
            }
        }
    }
    Ok(Some(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_version_bits() {
        assert_eq!(header_version_bit(0x100), Some(0));
        assert_eq!(header_version_bit(0x200), Some(1));
        assert_eq!(header_version_bit(0x180), None);
        assert_eq!(header_version_bit(0), None);
        assert_eq!(header_version_bit(0x4100), None);
    }
}
