//! The IPL parameter block of a Secure Execution image (list-directed IPL, type PV).
//!
//! It lists the encrypted components (tweak prefix, guest address, length) and where the
//! SE header is; integrity verification walks exactly these components.
//!
//! The two s390-tools builders fill it in differently ([`IpibStyle`]): pvimg (2.36+)
//! writes the block at its real length with the header's address and PV version 1; the C
//! genprotimg (up to 2.35, `genprotimg/src/pv/pv_ipib.c`) pads the block to one page and
//! says so in the list header's length, leaves the PV version byte 0, and leaves the
//! header address 0 because its stage3a loader stores the address at boot.

use super::be::{u16_at, u32_at, u64_at};
use super::finding::Finding;
use serde::Serialize;

/// Size of the IPIB up to the first component.
pub const FIXED_SIZE: usize = 0x88;
/// Size of one component entry.
pub const COMPONENT_SIZE: usize = 24;
/// The parameter block type of a PV IPIB.
pub const PBT_PV: u8 = 5;
/// Page size of encrypted components.
pub const PAGE: u64 = 0x1000;

/// Which builder's conventions an IPIB follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum IpibStyle {
    /// pvimg: exact length, PV version 1, `pv_hdr_addr` = the header's offset.
    Pvimg,
    /// C genprotimg: length one page, PV version 0, `pv_hdr_addr` 0 (set by stage3a).
    Genprotimg,
}

impl IpibStyle {
    /// The list header length this builder writes for an IPIB of `size` bytes.
    pub fn list_len(self, size: u64) -> u64 {
        match self {
            IpibStyle::Pvimg => size,
            IpibStyle::Genprotimg => size.max(PAGE),
        }
    }

    /// The PV block version byte this builder writes.
    pub fn pv_version(self) -> u8 {
        match self {
            IpibStyle::Pvimg => 1,
            IpibStyle::Genprotimg => 0,
        }
    }

    /// The `pv_hdr_addr` this builder writes for a header at `hdr_off`.
    pub fn hdr_addr(self, hdr_off: u64) -> u64 {
        match self {
            IpibStyle::Pvimg => hdr_off,
            IpibStyle::Genprotimg => 0,
        }
    }
}

/// One encrypted component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Component {
    /// First 8 bytes of every page's XTS tweak (component id u16 + 6 random bytes).
    #[serde(serialize_with = "crate::hex::serialize")]
    pub tweak_prefix: [u8; 8],
    /// Guest address (= file offset) of the first page.
    pub addr: u64,
    /// Length in bytes (whole pages).
    pub len: u64,
}

impl Component {
    /// The component id (first two bytes of the tweak prefix).
    pub fn id(&self) -> u16 {
        u16_at(&self.tweak_prefix, 0)
    }

    /// End address, or `None` if it overflows.
    pub fn end(&self) -> Option<u64> {
        self.addr.checked_add(self.len)
    }
}

/// A parsed IPIB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipib {
    /// Whose conventions it is checked against.
    pub style: IpibStyle,
    /// File offset of the IPIB.
    pub offset: u64,
    /// IPIB header length field.
    pub len: u32,
    /// IPIB header version (1).
    pub hdr_version: u8,
    /// Whether the reserved bytes (and, for genprotimg, the padding to the page) are 0.
    pub reserved_zero: bool,
    /// PV block length field.
    pub pv_len: u32,
    /// Parameter block type (5 = PV).
    pub pbt: u8,
    /// PV block version (pvimg 1, genprotimg 0).
    pub pv_version: u8,
    /// Number of components.
    pub num_comp: u32,
    /// Address of the SE header.
    pub pv_hdr_addr: u64,
    /// Size of the SE header.
    pub pv_hdr_size: u64,
    /// The components, in IPIB order.
    pub components: Vec<Component>,
}

/// The number of components the fixed part declares and the IPIB's full size for it
/// (`None` when `fixed` is shorter than [`FIXED_SIZE`]).
pub fn declared_size(fixed: &[u8]) -> Option<(u32, u64)> {
    if fixed.len() < FIXED_SIZE {
        return None;
    }
    let n = u32_at(fixed, 0x74);
    Some((n, FIXED_SIZE as u64 + u64::from(n) * COMPONENT_SIZE as u64))
}

impl Ipib {
    /// Parses an IPIB found at file offset `offset` written by the builder of `style`;
    /// `bytes` must hold its whole declared size (see [`declared_size`]; for genprotimg
    /// also the padding up to the list length, as far as the file has it); returns `None`
    /// when it does not.
    pub fn parse(bytes: &[u8], offset: u64, style: IpibStyle) -> Option<Ipib> {
        let (n, size) = declared_size(bytes)?;
        if (bytes.len() as u64) < size {
            return None;
        }
        let size = size as usize;
        // Reserved: list header flags and reserved bytes (4..7), the PV block's bytes
        // between pbt and the version (0x0D..0x6F), and after the version (0x70..0x74).
        let reserved_zero = bytes[4..7].iter().all(|&b| b == 0)
            && bytes[0x0D..0x6F].iter().all(|&b| b == 0)
            && bytes[0x70..0x74].iter().all(|&b| b == 0)
            && bytes[size..].iter().all(|&b| b == 0);
        let components = (0..n as usize)
            .map(|i| {
                let o = FIXED_SIZE + i * COMPONENT_SIZE;
                Component {
                    tweak_prefix: bytes[o..o + 8].try_into().expect("8 bytes"),
                    addr: u64_at(bytes, o + 8),
                    len: u64_at(bytes, o + 16),
                }
            })
            .collect();
        Some(Ipib {
            style,
            offset,
            len: u32_at(bytes, 0),
            hdr_version: bytes[7],
            reserved_zero,
            pv_len: u32_at(bytes, 8),
            pbt: bytes[0xC],
            pv_version: bytes[0x6F],
            num_comp: n,
            pv_hdr_addr: u64_at(bytes, 0x78),
            pv_hdr_size: u64_at(bytes, 0x80),
            components,
        })
    }

    /// Total encrypted pages, or `None` on overflow.
    pub fn pages(&self) -> Option<u64> {
        self.components
            .iter()
            .try_fold(0u64, |acc, c| acc.checked_add(c.len / PAGE))
    }

    /// The structural findings against the header and the file.
    pub fn findings(&self, hdr_off: u64, sehs: u32, nep: u64, file_size: u64) -> Vec<Finding> {
        let mut out = Vec::new();
        let fixable = "the image is corrupt or was changed after it was built; rebuild it with genprotimg/pvimg";
        // What stage3a's diag 308 does with an IPIB it cannot use.
        let at_boot = "stage3a's diag 308 would refuse it (\"Protected boot setup has failed\")";
        let style = match self.style {
            IpibStyle::Pvimg => "pvimg",
            IpibStyle::Genprotimg => "genprotimg",
        };
        let size = FIXED_SIZE as u64 + u64::from(self.num_comp) * COMPONENT_SIZE as u64;
        let list_len = self.style.list_len(size);
        if u64::from(self.len) != list_len || u64::from(self.pv_len) + 8 != size || size > list_len
        {
            out.push(Finding::fail(
                "ipib-length",
                format!(
                    "IPIB at {:#x}: lengths {} / {} do not match {} components (a {style} IPIB has {list_len} / {} bytes): {at_boot}",
                    self.offset,
                    self.len,
                    self.pv_len,
                    self.num_comp,
                    size - 8
                ),
                fixable,
            ));
        }
        if !self.reserved_zero {
            out.push(Finding::fail(
                "ipib-reserved",
                format!(
                    "IPIB at {:#x}: reserved bytes{} are not 0, which neither genprotimg nor pvimg writes",
                    self.offset,
                    if self.style == IpibStyle::Genprotimg { " or the padding to the page" } else { "" }
                ),
                fixable,
            ));
        }
        if self.pbt != PBT_PV {
            out.push(Finding::fail(
                "ipib-pbt",
                format!(
                    "IPIB at {:#x}: parameter block type {} is not 5 (PV): {at_boot}",
                    self.offset, self.pbt
                ),
                fixable,
            ));
        }
        if self.hdr_version != 1 || self.pv_version != self.style.pv_version() {
            out.push(Finding::fail(
                "ipib-version",
                format!(
                    "IPIB at {:#x}: versions {} / {} are not 1 / {} as {style} writes them",
                    self.offset,
                    self.hdr_version,
                    self.pv_version,
                    self.style.pv_version()
                ),
                fixable,
            ));
        }
        let want_addr = self.style.hdr_addr(hdr_off);
        if self.pv_hdr_addr != want_addr {
            let why = match self.style {
                IpibStyle::Pvimg => format!("the SE header's offset {hdr_off:#x}"),
                IpibStyle::Genprotimg => {
                    "0 (genprotimg leaves it to stage3a, which stores the header's address at boot)"
                        .to_string()
                }
            };
            out.push(Finding::fail(
                "ipib-hdr-addr",
                format!("IPIB pv_hdr_addr {:#x} is not {why}", self.pv_hdr_addr),
                fixable,
            ));
        }
        if self.pv_hdr_size != u64::from(sehs) {
            out.push(Finding::fail(
                "ipib-hdr-size",
                format!(
                    "IPIB pv_hdr_size {} is not the SE header's size sehs {sehs}",
                    self.pv_hdr_size
                ),
                fixable,
            ));
        }
        if self.components.is_empty() {
            out.push(Finding::fail(
                "ipib-components",
                "the IPIB lists no component: stage3a's diag 308 would refuse it (\"Protected boot setup has failed\")",
                fixable,
            ));
        }
        let hdr_end = hdr_off.saturating_add(u64::from(sehs));
        let ipib_end = self.offset.saturating_add(size);
        for (i, c) in self.components.iter().enumerate() {
            let name = format!("component {i} (id {}, {:#x}+{:#x})", c.id(), c.addr, c.len);
            if c.addr % PAGE != 0 || c.len % PAGE != 0 {
                out.push(Finding::fail(
                    "component-alignment",
                    format!(
                        "{name} is not page aligned (address and length must be multiples of 4096)"
                    ),
                    fixable,
                ));
            }
            match c.end() {
                Some(end) if end <= file_size => {}
                end => out.push(Finding::fail(
                    "component-truncated",
                    format!(
                        "{name} ends at {} beyond the end of the file ({file_size} bytes): the image is truncated in a component; its missing pages would load as zeros and the ultravisor would reject the image (RC 0x102 RRC 0x1b, PLD)",
                        end.map_or_else(|| "more than 2^64".to_string(), |e| format!("{e:#x}"))
                    ),
                    "copy the image again completely (compare its size with the original)",
                )),
            }
            let end = c.end().unwrap_or(u64::MAX);
            if c.len > 0 && c.addr < hdr_end && hdr_off < end {
                out.push(Finding::fail(
                    "component-overlap",
                    format!("{name} overlaps the SE header at {hdr_off:#x}+{sehs:#x}"),
                    fixable,
                ));
            }
            if c.len > 0 && c.addr < ipib_end && self.offset < end {
                out.push(Finding::fail(
                    "component-overlap",
                    format!("{name} overlaps the IPIB at {:#x}", self.offset),
                    fixable,
                ));
            }
            for (j, d) in self.components.iter().enumerate().skip(i + 1) {
                let d_end = d.end().unwrap_or(u64::MAX);
                if c.len > 0 && d.len > 0 && c.addr < d_end && d.addr < end {
                    out.push(Finding::fail(
                        "component-overlap",
                        format!("{name} overlaps component {j} ({:#x}+{:#x})", d.addr, d.len),
                        fixable,
                    ));
                }
            }
        }
        match self.pages() {
            Some(p) if p == nep => {}
            p => out.push(Finding::fail(
                "nep",
                format!(
                    "the IPIB's components hold {} pages, the header's nep says {nep}: the ultravisor would reject the image (RC 0x102 RRC 0x1d)",
                    p.map_or_else(|| "more than 2^64".to_string(), |p| p.to_string())
                ),
                "the image is corrupt; the ultravisor rejects it with RC 0x102 RRC 0x1d; rebuild it",
            )),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipib(comps: &[(u64, u64)], hdr: (u64, u64)) -> Vec<u8> {
        let size = FIXED_SIZE + comps.len() * COMPONENT_SIZE;
        let mut b = vec![0u8; size];
        b[0..4].copy_from_slice(&(size as u32).to_be_bytes());
        b[7] = 1;
        b[8..12].copy_from_slice(&(size as u32 - 8).to_be_bytes());
        b[0xC] = PBT_PV;
        b[0x6F] = 1;
        b[0x74..0x78].copy_from_slice(&(comps.len() as u32).to_be_bytes());
        b[0x78..0x80].copy_from_slice(&hdr.0.to_be_bytes());
        b[0x80..0x88].copy_from_slice(&hdr.1.to_be_bytes());
        for (i, (a, l)) in comps.iter().enumerate() {
            let o = FIXED_SIZE + i * COMPONENT_SIZE;
            b[o..o + 2].copy_from_slice(&(i as u16).to_be_bytes());
            b[o + 8..o + 16].copy_from_slice(&a.to_be_bytes());
            b[o + 16..o + 24].copy_from_slice(&l.to_be_bytes());
        }
        b
    }

    fn codes(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.code).collect()
    }

    #[test]
    fn a_good_ipib_has_no_findings() {
        let b = ipib(&[(0x15000, 0x2000), (0x17000, 0x1000)], (0x14000, 0x280));
        let i = Ipib::parse(&b, 0x18000, IpibStyle::Pvimg).unwrap();
        assert_eq!(i.components[1].id(), 1);
        assert_eq!(i.findings(0x14000, 0x280, 3, 0x19000), vec![]);
    }

    #[test]
    fn genprotimg_conventions_are_its_own() {
        // As genprotimg 2.35 writes it: list length one page, PV version 0, header
        // address 0, zero padding to the page.
        let mut b = ipib(&[(0x15000, 0x2000), (0x17000, 0x1000)], (0, 0x280));
        b[0..4].copy_from_slice(&(PAGE as u32).to_be_bytes());
        b[0x6F] = 0;
        b.resize(PAGE as usize, 0);
        let i = Ipib::parse(&b, 0x13000, IpibStyle::Genprotimg).unwrap();
        assert_eq!(i.findings(0x14000, 0x280, 3, 0x18000), vec![]);
        // The same bytes read as a pvimg IPIB break three of its rules.
        let p = Ipib::parse(&b, 0x13000, IpibStyle::Pvimg).unwrap();
        let f = codes(&p.findings(0x14000, 0x280, 3, 0x18000));
        assert!(
            ["ipib-length", "ipib-version", "ipib-hdr-addr"]
                .iter()
                .all(|c| f.contains(c)),
            "{f:?}"
        );
        let mut padded = b.clone();
        padded[0x800] = 1;
        let i = Ipib::parse(&padded, 0x13000, IpibStyle::Genprotimg).unwrap();
        assert_eq!(
            codes(&i.findings(0x14000, 0x280, 3, 0x18000)),
            ["ipib-reserved"]
        );
    }

    #[test]
    fn each_rule_has_its_finding() {
        let b = ipib(
            &[
                (0x14000, 0x2000),
                (0x15000, 0x1001),
                (u64::MAX - 10, 0x1000),
            ],
            (0x13000, 0x200),
        );
        let i = Ipib::parse(&b, 0x18000, IpibStyle::Pvimg).unwrap();
        let f = codes(&i.findings(0x14000, 0x280, 9, 0x19000));
        for c in [
            "ipib-hdr-addr",
            "ipib-hdr-size",
            "component-alignment",
            "component-truncated",
            "component-overlap",
            "nep",
        ] {
            assert!(f.contains(&c), "{c} missing in {f:?}");
        }
        let mut short = b.clone();
        short.truncate(FIXED_SIZE + 10);
        assert_eq!(Ipib::parse(&short, 0, IpibStyle::Pvimg), None);
        assert_eq!(declared_size(&short), Some((3, FIXED_SIZE as u64 + 72)));
    }
}
