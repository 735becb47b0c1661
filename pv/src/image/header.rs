//! The Secure Execution header (version 1, `IBMSecEx`), parsed from its big-endian bytes.
//!
//! Parsing never trusts a size or count from the file: every offset is computed with
//! checked arithmetic and bounded by the bytes actually present.

use super::be::{u32_at, u64_at};
use super::finding::Finding;
use crate::hex;
use crate::hostkey::HostKeyHash;
use serde::Serialize;

/// The header's magic, `IBMSecEx`.
pub const MAGIC: &[u8; 8] = b"IBMSecEx";
/// Header version 1 (the only version defined).
pub const VERSION_1: u32 = 0x100;
/// Size of the fixed part before the key slots.
pub const FIXED_SIZE: usize = 0x1A0;
/// Size of one key slot: phkh (32), wrapped key (32), tag (16).
pub const KEY_SLOT_SIZE: usize = 80;
/// Size of the GCM tag at the end of the header.
pub const TAG_SIZE: usize = 16;
/// The encrypted part's size in a version 1 header.
pub const SEA_V1: u64 = 128;
/// Largest header current KVM accepts (larger ones need a newer kernel).
pub const KVM_HEADER_LIMIT: u32 = 8192;
/// Largest header aplaunch reads at all (1 MiB, the newest kernels' limit).
pub const MAX_HEADER_SIZE: u32 = 1 << 20;
/// Size of one P-521 coordinate as stored (66 bytes left-padded to 80).
pub const COORD_SIZE: usize = 80;
/// Leading zero bytes of a padded P-521 coordinate.
pub const COORD_PAD: usize = 14;

/// One plaintext control flag with its MSB-0 bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcfFlag {
    /// MSB-0 bit number (bit n = `1 << (63 - n)`).
    pub bit: u32,
    /// Short stable name (`dump`, `pckmo-aes`, ...).
    pub name: &'static str,
    /// What the flag allows.
    pub meaning: &'static str,
}

/// Every plaintext control flag that has a meaning.
pub const PCF_FLAGS: &[PcfFlag] = &[
    PcfFlag {
        bit: 34,
        name: "dump",
        meaning: "dumping allowed",
    },
    PcfFlag {
        bit: 35,
        name: "no-component-encryption",
        meaning: "components are not encrypted",
    },
    PcfFlag {
        bit: 56,
        name: "pckmo-dea-tdea",
        meaning: "PCKMO DEA/TDEA allowed",
    },
    PcfFlag {
        bit: 57,
        name: "pckmo-aes",
        meaning: "PCKMO AES allowed",
    },
    PcfFlag {
        bit: 58,
        name: "pckmo-ecc",
        meaning: "PCKMO ECC allowed",
    },
    PcfFlag {
        bit: 59,
        name: "pckmo-hmac",
        meaning: "PCKMO HMAC allowed",
    },
    PcfFlag {
        bit: 62,
        name: "backup-host-keys",
        meaning: "backup host key use allowed",
    },
];

/// MSB-0 bit of the pcf that allows the backup host key.
pub const PCF_BACKUP_KEYS_BIT: u32 = 62;

/// Plaintext control flags (`pcf`), MSB-0 numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pcf(pub u64);

impl Pcf {
    /// Whether MSB-0 bit `bit` is set.
    pub fn has(self, bit: u32) -> bool {
        bit < 64 && self.0 & (1u64 << (63 - bit)) != 0
    }

    /// The MSB-0 numbers of all set bits, ascending.
    pub fn bits(self) -> Vec<u32> {
        (0..64).filter(|&b| self.has(b)).collect()
    }

    /// The named flags that are set.
    pub fn flags(self) -> Vec<PcfFlag> {
        PCF_FLAGS
            .iter()
            .copied()
            .filter(|f| self.has(f.bit))
            .collect()
    }

    /// Names of a set of bits: the flag name, or `bit N` for bits without a meaning.
    pub fn describe(bits: &[u32]) -> String {
        bits.iter()
            .map(|&b| match PCF_FLAGS.iter().find(|f| f.bit == b) {
                Some(f) => format!("{} (bit {b}, {})", f.name, f.meaning),
                None => format!("bit {b} (no known meaning)"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Serialize for Pcf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Pcf", 3)?;
        st.serialize_field("value", &format!("{:#x}", self.0))?;
        st.serialize_field(
            "flags",
            &self.flags().iter().map(|f| f.name).collect::<Vec<_>>(),
        )?;
        let unknown: Vec<u32> = self
            .bits()
            .into_iter()
            .filter(|b| !PCF_FLAGS.iter().any(|f| f.bit == *b))
            .collect();
        st.serialize_field("unknown_bits", &unknown)?;
        st.end()
    }
}

/// One key slot: the image can be unpacked by the host whose key hashes to `phkh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySlot {
    /// SHA-256 of the host public key this slot was made for.
    pub phkh: HostKeyHash,
    /// The wrapped image key.
    #[serde(serialize_with = "hex::serialize")]
    pub wrapped_key: [u8; 32],
    /// The slot's GCM tag.
    #[serde(serialize_with = "hex::serialize")]
    pub tag: [u8; 16],
}

/// A parsed SE header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeHeader {
    /// Header version (0x100).
    pub version: u32,
    /// Total header size in bytes.
    pub sehs: u32,
    /// The AES-GCM IV.
    #[serde(serialize_with = "hex::serialize")]
    pub iv: [u8; 12],
    /// The reserved word after the IV (must be 0).
    pub reserved: u32,
    /// Number of key slots.
    pub nks: u64,
    /// Size of the encrypted area.
    pub sea: u64,
    /// Number of encrypted 4 KiB pages.
    pub nep: u64,
    /// Plaintext control flags.
    pub pcf: Pcf,
    /// Customer ECDH public key X coordinate (80 bytes, padded).
    #[serde(serialize_with = "hex::serialize")]
    pub customer_key_x: [u8; COORD_SIZE],
    /// Customer ECDH public key Y coordinate (80 bytes, padded).
    #[serde(serialize_with = "hex::serialize")]
    pub customer_key_y: [u8; COORD_SIZE],
    /// Page list digest (SHA-512).
    #[serde(serialize_with = "hex::serialize")]
    pub pld: [u8; 64],
    /// Address list digest (SHA-512).
    #[serde(serialize_with = "hex::serialize")]
    pub ald: [u8; 64],
    /// Tweak list digest (SHA-512).
    #[serde(serialize_with = "hex::serialize")]
    pub tld: [u8; 64],
    /// The key slots that fit in the header (normally `nks` of them).
    pub key_slots: Vec<KeySlot>,
    /// The encrypted area as stored (after the key slots, before the tag; `sea` bytes in
    /// a consistent header).
    #[serde(serialize_with = "hex::serialize")]
    pub encrypted_area: Vec<u8>,
    /// Size of the encrypted area as stored, in bytes.
    pub encrypted_area_size: u64,
    /// The AES-256-GCM tag over the header (its last 16 bytes).
    #[serde(serialize_with = "hex::serialize")]
    pub tag: [u8; TAG_SIZE],
}

/// Why a header could not be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// Fewer bytes than the fixed part or than `sehs`.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        present: u64,
    },
    /// No `IBMSecEx` magic.
    BadMagic,
    /// `sehs` below the smallest possible header.
    TooSmall(u32),
    /// `sehs` above [`MAX_HEADER_SIZE`].
    TooLarge(u32),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Truncated { needed, present } => write!(
                f,
                "truncated in the SE header: it needs {needed} bytes, only {present} are in the file; the ultravisor would refuse the incomplete header as corrupt (RC 0x10a)"
            ),
            HeaderError::BadMagic => write!(f, "no IBMSecEx magic"),
            HeaderError::TooSmall(s) => write!(
                f,
                "header size sehs {s:#x} is smaller than the smallest possible header ({:#x})",
                FIXED_SIZE + KEY_SLOT_SIZE + TAG_SIZE
            ),
            HeaderError::TooLarge(s) => write!(
                f,
                "header size sehs {s:#x} ({s} bytes) is absurd: more than 1 MiB"
            ),
        }
    }
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    b[off..off + N].try_into().expect("N bytes")
}

/// The `sehs` a header with this fixed part declares, when the magic is right.
pub fn declared_size(fixed: &[u8]) -> Result<u32, HeaderError> {
    if fixed.len() < 16 {
        return Err(HeaderError::Truncated {
            needed: 16,
            present: fixed.len() as u64,
        });
    }
    if &fixed[..8] != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let sehs = u32_at(fixed, 0xC);
    if (sehs as usize) < FIXED_SIZE + KEY_SLOT_SIZE + TAG_SIZE {
        return Err(HeaderError::TooSmall(sehs));
    }
    if sehs > MAX_HEADER_SIZE {
        return Err(HeaderError::TooLarge(sehs));
    }
    Ok(sehs)
}

/// The expected `sehs` for `nks` slots and an encrypted area of `sea` bytes, if it fits in u64.
pub fn expected_size(nks: u64, sea: u64) -> Option<u64> {
    nks.checked_mul(KEY_SLOT_SIZE as u64)?
        .checked_add(FIXED_SIZE as u64 + TAG_SIZE as u64)?
        .checked_add(sea)
}

/// Parses a whole header (`bytes` holds at least `sehs` bytes from the magic on) and
/// returns it with its structural findings.
pub fn parse(bytes: &[u8]) -> Result<(SeHeader, Vec<Finding>), HeaderError> {
    let sehs = declared_size(bytes)?;
    if bytes.len() < sehs as usize {
        return Err(HeaderError::Truncated {
            needed: sehs as u64,
            present: bytes.len() as u64,
        });
    }
    let b = &bytes[..sehs as usize];
    let mut findings = Vec::new();
    let version = u32_at(b, 0x8);
    let reserved = u32_at(b, 0x1C);
    let nks = u64_at(b, 0x20);
    let sea = u64_at(b, 0x28);
    let nep = u64_at(b, 0x30);
    let pcf = Pcf(u64_at(b, 0x38));
    let customer_key_x: [u8; COORD_SIZE] = arr(b, 0x40);
    let customer_key_y: [u8; COORD_SIZE] = arr(b, 0x40 + COORD_SIZE);

    if version != VERSION_1 {
        findings.push(Finding::fail(
            "version",
            format!("header version {version:#x} is not a defined SE header version (only 0x100 is)"),
            "rebuild the image with genprotimg/pvimg; the layout of other versions is unknown to aplaunch",
        ));
    }
    if reserved != 0 {
        findings.push(Finding::fail(
            "reserved",
            format!("reserved word at header offset 0x1c is {reserved:#x}, not 0"),
            "the header is corrupt; rebuild the image",
        ));
    }
    if nks == 0 {
        findings.push(Finding::fail(
            "nks",
            "the header has no key slot (nks 0): no host can unpack it",
            "rebuild the image with at least one host-key document (pvimg create -k HOSTKEY.crt)",
        ));
    }
    if sea != SEA_V1 {
        if sea >= SEA_V1 && sea % 16 == 0 {
            findings.push(Finding::warn(
                "sea",
                format!("encrypted area size sea {sea} is not the 128 bytes of a v1 header (older genprotimg accepted it)"),
                "rebuild the image with a current pvimg",
            ));
        } else {
            findings.push(Finding::fail(
                "sea",
                format!("encrypted area size sea {sea} is invalid (a v1 header has 128)"),
                "the header is corrupt; rebuild the image",
            ));
        }
    }
    match expected_size(nks, sea) {
        Some(e) if e == u64::from(sehs) => {}
        expected => findings.push(Finding::fail(
            "sehs",
            format!(
                "header size sehs {sehs} does not match 0x1a0 + 80*nks ({nks}) + sea ({sea}) + 16 = {}",
                expected.map_or_else(|| "more than 2^64".to_string(), |e| e.to_string())
            ),
            "the header is corrupt or truncated; rebuild the image (the ultravisor rejects it with RC 0x10a)",
        )),
    }
    if sehs > KVM_HEADER_LIMIT {
        findings.push(Finding::warn(
            "header-size",
            format!("header size {sehs} bytes is above the 8 KiB current KVM accepts"),
            "use fewer host-key documents, or a kernel that accepts headers up to 1 MiB",
        ));
    }
    let pad_ok = customer_key_x[..COORD_PAD].iter().all(|&x| x == 0)
        && customer_key_y[..COORD_PAD].iter().all(|&y| y == 0);
    if !pad_ok {
        findings.push(Finding::fail(
            "customer-key",
            "customer P-521 key: the 14 padding bytes before X or Y are not zero",
            "the header is corrupt; rebuild the image",
        ));
    }
    let room = (sehs as usize - FIXED_SIZE - TAG_SIZE) / KEY_SLOT_SIZE;
    let count = usize::try_from(nks).unwrap_or(usize::MAX).min(room);
    let key_slots = (0..count)
        .map(|i| {
            let off = FIXED_SIZE + i * KEY_SLOT_SIZE;
            KeySlot {
                phkh: HostKeyHash(arr(b, off)),
                wrapped_key: arr(b, off + 32),
                tag: arr(b, off + 64),
            }
        })
        .collect();
    let tag_at = sehs as usize - TAG_SIZE;
    let encrypted_area = b[(FIXED_SIZE + count * KEY_SLOT_SIZE).min(tag_at)..tag_at].to_vec();
    Ok((
        SeHeader {
            version,
            sehs,
            iv: arr(b, 0x10),
            reserved,
            nks,
            sea,
            nep,
            pcf,
            customer_key_x,
            customer_key_y,
            pld: arr(b, 0xE0),
            ald: arr(b, 0x120),
            tld: arr(b, 0x160),
            key_slots,
            encrypted_area_size: encrypted_area.len() as u64,
            encrypted_area,
            tag: arr(b, tag_at),
        },
        findings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcf_bits_are_msb0() {
        let p = Pcf(0xE0);
        assert_eq!(p.bits(), vec![56, 57, 58]);
        assert_eq!(
            p.flags().iter().map(|f| f.name).collect::<Vec<_>>(),
            ["pckmo-dea-tdea", "pckmo-aes", "pckmo-ecc"]
        );
        assert!(Pcf(0x2000_0000).has(34));
        assert!(Pcf(0x02).has(PCF_BACKUP_KEYS_BIT));
        assert!(!Pcf(0x02).has(64));
        assert_eq!(Pcf::describe(&[0]), "bit 0 (no known meaning)");
        let v = serde_json::to_value(Pcf(0x8000_0000_0000_0040)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"value":"0x8000000000000040","flags":["pckmo-aes"],"unknown_bits":[0]})
        );
    }

    #[test]
    fn absurd_sizes_are_rejected_before_any_allocation() {
        let mut b = vec![0u8; 0x1A0];
        b[..8].copy_from_slice(MAGIC);
        b[0xC..0x10].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse(&b), Err(HeaderError::TooLarge(u32::MAX)));
        b[0xC..0x10].copy_from_slice(&16u32.to_be_bytes());
        assert_eq!(parse(&b), Err(HeaderError::TooSmall(16)));
        b[0xC..0x10].copy_from_slice(&0x280u32.to_be_bytes());
        assert_eq!(
            parse(&b),
            Err(HeaderError::Truncated {
                needed: 0x280,
                present: 0x1A0
            })
        );
        b[0] = b'X';
        assert_eq!(parse(&b), Err(HeaderError::BadMagic));
    }

    #[test]
    fn huge_nks_is_a_finding_not_an_allocation() {
        let mut b = vec![0u8; 0x280];
        b[..8].copy_from_slice(MAGIC);
        b[0x8..0xC].copy_from_slice(&VERSION_1.to_be_bytes());
        b[0xC..0x10].copy_from_slice(&0x280u32.to_be_bytes());
        b[0x20..0x28].copy_from_slice(&u64::MAX.to_be_bytes());
        b[0x28..0x30].copy_from_slice(&128u64.to_be_bytes());
        let (h, f) = parse(&b).unwrap();
        assert_eq!(h.key_slots.len(), 2, "only the slots that fit in sehs");
        assert!(f
            .iter()
            .any(|f| f.code == "sehs" && f.message.contains("more than 2^64")));
        assert_eq!(expected_size(1, 128), Some(0x280));
    }
}
