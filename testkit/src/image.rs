//! A test-only Secure Execution image writer, from the documented format (big-endian
//! throughout), laid out byte for byte where the real tools put things: the pvimg 2.43
//! layout (metadata `SeImgLnx` at 0xC000, stage3a's argument block naming the header and
//! the IPIB, header at 0x14000, components, IPIB at the end with PV version 1 and the
//! header's address) and the C genprotimg 2.35 layout (IPIB at the page after stage3a,
//! padded to a page with list length 4096, PV version 0 and header address 0, header one
//! page later), plus a bare header and every broken variant the verifier must reject
//! ([`Defect`]). `tests/image.rs` compares this structure with the real images in
//! `tests/assets/real-se-images/`.
//!
//! Component bytes are pseudo-random (real ones are AES-XTS encrypted, which looks the
//! same to a verifier), so is the stage3a stand-in; the header's PLD, ALD, TLD and nep
//! are computed by the rules, so a valid image verifies.

use openssl::hash::{Hasher, MessageDigest};
use std::io::{self, Cursor, Seek, SeekFrom, Write};
use std::path::Path;

/// Page size.
pub const PAGE: u64 = 0x1000;
/// The pvimg metadata offset.
pub const METADATA_OFFSET: u64 = 0xC000;
/// Where stage3a starts.
pub const STAGE3A_OFFSET: u64 = 0x10000;
/// Length of genprotimg 2.35's stage3a.bin (its last 24 bytes are the argument block).
pub const GENPROTIMG_STAGE3A_LEN: u64 = 0x26b8;
/// Length of pvimg 2.43's stage3a.bin.
pub const PVIMG_STAGE3A_LEN: u64 = 0x2c38;
/// Lowest header offset pvimg uses.
pub const PVIMG_MIN_HEADER_OFFSET: u64 = 0x14000;
/// pvimg's tweak prefix id of the first component (kernel 40, ramdisk 50, cmdline 60,
/// stage3b 70: `rust/pvimg/src/se_img_comps.rs`); genprotimg numbers them from 0.
pub const PVIMG_FIRST_COMPONENT_ID: u16 = 40;

/// The host key hash of the example host `z16-se` (keys/host_key) and of the s390-tools
/// test host-key document `host.pem.crt`.
pub const EXAMPLE_HOST_KEY: [u8; 32] =
    hex32("415c25a5d19c381e619733e1c1b7fbd88bdd1c31d882d5ade04b97043c5010f0");
/// The example host's backup host key hash (keys/backup_host_key).
pub const EXAMPLE_BACKUP_KEY: [u8; 32] =
    hex32("9bd1d0a5e2e6e0b1c7f4b1f0c3d2a9e8f7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c2");
/// A host key hash no example host has.
pub const OTHER_HOST_KEY: [u8; 32] = [0x11; 32];

/// 64 hex digits as 32 bytes (panics otherwise; for constants).
pub const fn hex32(s: &str) -> [u8; 32] {
    const fn d(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not hex"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = d(b[2 * i]) << 4 | d(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// Which builder's layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// pvimg 2.43: metadata at 0xC000, IPIB after the components.
    Pvimg,
    /// C genprotimg 2.35: IPIB in the page after stage3a, header one page later.
    Genprotimg,
    /// Nothing but the SE header (no loader, no IPIB, no components).
    BareHeader,
}

/// What to write.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The layout.
    pub layout: Layout,
    /// Header version.
    pub version: u32,
    /// Plaintext control flags.
    pub pcf: u64,
    /// One key slot per hash.
    pub key_hashes: Vec<[u8; 32]>,
    /// Size of the encrypted area (128 in v1).
    pub sea: u64,
    /// Component sizes in bytes (each padded to whole pages).
    pub components: Vec<u64>,
    /// Seed of the pseudo-random bytes.
    pub seed: u64,
}

impl Default for ImageSpec {
    /// A small valid pvimg image (kernel, parmline, stage3b: one page each) for the
    /// example host's key, default pcf 0xE0.
    fn default() -> Self {
        ImageSpec {
            layout: Layout::Pvimg,
            version: 0x100,
            pcf: 0xE0,
            key_hashes: vec![EXAMPLE_HOST_KEY],
            sea: 128,
            components: vec![PAGE, PAGE, PAGE],
            seed: 1,
        }
    }
}

/// Where things ended up in a written image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Total size.
    pub size: u64,
    /// SE header offset.
    pub header_offset: u64,
    /// Header size.
    pub sehs: u64,
    /// IPIB offset, if any.
    pub ipib_offset: Option<u64>,
    /// Offset of stage3a's argument block, if any.
    pub loader_args_offset: Option<u64>,
    /// IPIB size, if any.
    pub ipib_size: u64,
    /// (address, length) of each component.
    pub components: Vec<(u64, u64)>,
}

/// An image in memory with its layout.
#[derive(Debug, Clone)]
pub struct Image {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Where things are.
    pub at: Written,
}

impl Image {
    /// Writes a big-endian u64 at `off`.
    pub fn put_u64(&mut self, off: u64, v: u64) -> &mut Self {
        self.bytes[off as usize..off as usize + 8].copy_from_slice(&v.to_be_bytes());
        self
    }
    /// Writes a big-endian u32 at `off`.
    pub fn put_u32(&mut self, off: u64, v: u32) -> &mut Self {
        self.bytes[off as usize..off as usize + 4].copy_from_slice(&v.to_be_bytes());
        self
    }
    /// Writes the image to `path`.
    pub fn write_to(&self, path: &Path) {
        std::fs::write(path, &self.bytes).expect("write image");
    }
}

/// A xorshift64* stream of pseudo-random bytes.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let v = self.next().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&v[..n]);
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

fn page_up(v: u64) -> u64 {
    v.div_ceil(PAGE) * PAGE
}

/// The IPIB bytes for these components as the builder of `layout` writes them: pvimg at
/// its exact length with PV version 1 and the header's address; genprotimg padded to a
/// page (list length 4096), PV version 0 and header address 0.
pub fn ipib_bytes(
    layout: Layout,
    comps: &[([u8; 8], u64, u64)],
    hdr_off: u64,
    sehs: u64,
) -> Vec<u8> {
    let size = 0x88 + 24 * comps.len();
    let genprotimg = layout == Layout::Genprotimg;
    let list_len = if genprotimg {
        size.max(PAGE as usize)
    } else {
        size
    };
    let mut b = vec![0u8; list_len];
    b[0..4].copy_from_slice(&(list_len as u32).to_be_bytes());
    b[7] = 1;
    b[8..12].copy_from_slice(&(size as u32 - 8).to_be_bytes());
    b[0xC] = 5;
    b[0x6F] = if genprotimg { 0 } else { 1 };
    b[0x74..0x78].copy_from_slice(&(comps.len() as u32).to_be_bytes());
    let addr = if genprotimg { 0 } else { hdr_off };
    b[0x78..0x80].copy_from_slice(&addr.to_be_bytes());
    b[0x80..0x88].copy_from_slice(&sehs.to_be_bytes());
    for (i, (tweak, addr, len)) in comps.iter().enumerate() {
        let o = 0x88 + 24 * i;
        b[o..o + 8].copy_from_slice(tweak);
        b[o + 8..o + 16].copy_from_slice(&addr.to_be_bytes());
        b[o + 16..o + 24].copy_from_slice(&len.to_be_bytes());
    }
    b
}

/// Writes an image to `out` streaming (constant memory whatever the component sizes).
pub fn write<W: Write + Seek>(spec: &ImageSpec, out: &mut W) -> io::Result<Written> {
    let mut rng = Rng::new(spec.seed);
    let nks = spec.key_hashes.len() as u64;
    let sehs = 0x1A0 + 80 * nks + spec.sea + 16;
    let stage3a_len = match spec.layout {
        Layout::Pvimg => PVIMG_STAGE3A_LEN,
        Layout::Genprotimg => GENPROTIMG_STAGE3A_LEN,
        Layout::BareHeader => 0,
    };
    let loader_end = page_up(STAGE3A_OFFSET + stage3a_len);
    // genprotimg: the IPIB in the page after stage3a, the header one page later.
    let hdr_off = match spec.layout {
        Layout::Pvimg => loader_end.max(PVIMG_MIN_HEADER_OFFSET),
        Layout::Genprotimg => loader_end + PAGE,
        Layout::BareHeader => 0,
    };
    let mut addr = page_up(hdr_off + sehs);
    let mut comps = Vec::new();
    for (i, len) in spec.components.iter().enumerate() {
        let id = match spec.layout {
            Layout::Pvimg => PVIMG_FIRST_COMPONENT_ID + 10 * i as u16,
            _ => i as u16,
        };
        let mut tweak = [0u8; 8];
        tweak[..2].copy_from_slice(&id.to_be_bytes());
        tweak[2..].copy_from_slice(&rng.bytes::<6>());
        let len = page_up(*len);
        comps.push((tweak, addr, len));
        addr += len;
    }
    let end_of_components = addr;
    let ipib = ipib_bytes(spec.layout, &comps, hdr_off, sehs);
    let ipib_off = match spec.layout {
        Layout::Pvimg => Some(end_of_components),
        Layout::Genprotimg => Some(loader_end),
        Layout::BareHeader => None,
    };
    let loader_args_offset = ipib_off.map(|_| STAGE3A_OFFSET + stage3a_len - 24);

    // The loader part: PSW, metadata, stage3a with its argument block, (genprotimg) IPIB.
    let mut prefix = vec![0u8; hdr_off as usize];
    if let (Some(ipib_off), Some(t)) = (ipib_off, loader_args_offset) {
        prefix[..8].copy_from_slice(&0x0008_0001_8001_1000u64.to_be_bytes());
        if spec.layout == Layout::Pvimg {
            let m = METADATA_OFFSET as usize;
            prefix[m..m + 8].copy_from_slice(b"SeImgLnx");
            prefix[m + 8..m + 16].copy_from_slice(&hdr_off.to_be_bytes());
            prefix[m + 16..m + 20].copy_from_slice(&1u32.to_be_bytes());
            prefix[m + 20..m + 28].copy_from_slice(&ipib_off.to_be_bytes());
        }
        let s3 = STAGE3A_OFFSET as usize;
        let tu = t as usize;
        rng.fill(&mut prefix[s3..tu]);
        prefix[tu..tu + 8].copy_from_slice(&(hdr_off - t).to_be_bytes());
        prefix[tu + 8..tu + 16].copy_from_slice(&sehs.to_be_bytes());
        prefix[tu + 16..tu + 24].copy_from_slice(&(ipib_off - t).to_be_bytes());
        if spec.layout == Layout::Genprotimg {
            let o = ipib_off as usize;
            prefix[o..o + ipib.len()].copy_from_slice(&ipib);
        }
    }
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&prefix)?;
    let header_pages = if spec.layout == Layout::BareHeader {
        sehs
    } else {
        page_up(hdr_off + sehs) - hdr_off
    };
    out.write_all(&vec![0u8; header_pages as usize])?;

    // Components, hashed as they are written (a bare header only hashes them).
    // SHA-512 by the system's libcrypto, as the verifier computes it.
    let sha512 = || Hasher::new(MessageDigest::sha512()).map_err(io::Error::other);
    let mut pld = sha512()?;
    let mut ald = sha512()?;
    let mut tld = sha512()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut nep = 0u64;
    for (tweak, addr, len) in &comps {
        let mut pos = 0u64;
        while pos < *len {
            let n = (*len - pos).min(buf.len() as u64) as usize;
            rng.fill(&mut buf[..n]);
            if spec.layout != Layout::BareHeader {
                out.write_all(&buf[..n])?;
            }
            pld.update(&buf[..n]).map_err(io::Error::other)?;
            for p in 0..n as u64 / PAGE {
                ald.update(&(addr + pos + p * PAGE).to_be_bytes())
                    .map_err(io::Error::other)?;
                tld.update(tweak).map_err(io::Error::other)?;
                tld.update(&(pos + p * PAGE).to_be_bytes())
                    .map_err(io::Error::other)?;
            }
            nep += n as u64 / PAGE;
            pos += n as u64;
        }
    }
    if spec.layout == Layout::Pvimg {
        out.write_all(&ipib)?;
    }
    let size = out.stream_position()?;

    // The header, now that the digests are known.
    let mut h = vec![0u8; sehs as usize];
    h[..8].copy_from_slice(b"IBMSecEx");
    h[8..12].copy_from_slice(&spec.version.to_be_bytes());
    h[0xC..0x10].copy_from_slice(&(sehs as u32).to_be_bytes());
    rng.fill(&mut h[0x10..0x1C]);
    h[0x20..0x28].copy_from_slice(&nks.to_be_bytes());
    h[0x28..0x30].copy_from_slice(&spec.sea.to_be_bytes());
    h[0x30..0x38].copy_from_slice(&nep.to_be_bytes());
    h[0x38..0x40].copy_from_slice(&spec.pcf.to_be_bytes());
    rng.fill(&mut h[0x40 + 14..0x40 + 80]);
    rng.fill(&mut h[0x90 + 14..0x90 + 80]);
    h[0xE0..0x120].copy_from_slice(&pld.finish().map_err(io::Error::other)?);
    h[0x120..0x160].copy_from_slice(&ald.finish().map_err(io::Error::other)?);
    h[0x160..0x1A0].copy_from_slice(&tld.finish().map_err(io::Error::other)?);
    for (i, k) in spec.key_hashes.iter().enumerate() {
        let o = 0x1A0 + 80 * i;
        h[o..o + 32].copy_from_slice(k);
        rng.fill(&mut h[o + 32..o + 80]);
    }
    let rest = 0x1A0 + 80 * nks as usize;
    rng.fill(&mut h[rest..]);
    out.seek(SeekFrom::Start(hdr_off))?;
    out.write_all(&h)?;
    out.seek(SeekFrom::Start(size))?;
    Ok(Written {
        size,
        header_offset: hdr_off,
        sehs,
        ipib_offset: ipib_off,
        ipib_size: if ipib_off.is_some() {
            ipib.len() as u64
        } else {
            0
        },
        loader_args_offset,
        components: if spec.layout == Layout::BareHeader {
            Vec::new()
        } else {
            comps.iter().map(|(_, a, l)| (*a, *l)).collect()
        },
    })
}

/// The C genprotimg 2.35 that `scripts/make-real-images.sh` builds (`APLAUNCH_GENPROTIMG`,
/// else `/opt/aplaunch/genprotimg-2.35`, `bin/genprotimg` below it). When it is missing:
/// with `CI=true` this panics (CI must not skip), else it prints why `test` is skipped.
pub fn genprotimg(test: &str) -> Option<std::path::PathBuf> {
    let prefix = std::env::var_os("APLAUNCH_GENPROTIMG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/opt/aplaunch/genprotimg-2.35".into());
    let path = prefix.join("bin/genprotimg");
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "{} is not built (run scripts/make-real-images.sh as root)",
        path.display()
    );
    if crate::ci() {
        panic!("{test}: {why}, and CI=true forbids skipping");
    }
    eprintln!("{test}: SKIPPED: {why}");
    None
}

/// Builds an image in memory.
pub fn build(spec: &ImageSpec) -> Image {
    let mut c = Cursor::new(Vec::new());
    let at = write(spec, &mut c).expect("in-memory write");
    Image {
        bytes: c.into_inner(),
        at,
    }
}

/// Writes an image to a file, streaming.
pub fn write_file(spec: &ImageSpec, path: &Path) -> io::Result<Written> {
    let mut f = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let w = write(spec, &mut f)?;
    f.flush()?;
    Ok(w)
}

/// A small valid image (the default spec).
pub fn valid() -> Image {
    build(&ImageSpec::default())
}

/// Every broken variant the verifier must reject, each with its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// An empty file.
    Empty,
    /// A plain kernel (ELF), no SE header.
    PlainKernel,
    /// The pvimg metadata points at a header offset without `IBMSecEx`.
    MetadataPointsNowhere,
    /// The file ends inside the header's fixed part.
    TruncatedHeaderFixed,
    /// The file ends inside the key slots / encrypted part (after the fixed part).
    TruncatedHeaderTail,
    /// genprotimg layout, the file ends inside the last component.
    TruncatedComponent,
    /// pvimg layout, the file ends inside the IPIB.
    TruncatedIpib,
    /// Header version 0x200.
    UnknownVersion,
    /// The reserved word after the IV is not 0.
    ReservedNonZero,
    /// sehs does not match nks and sea.
    SehsMismatch,
    /// sea is not 128.
    SeaWrong,
    /// nks = 0.
    NoKeySlots,
    /// nks = u64::MAX.
    AbsurdNks,
    /// sehs = 0x7fffffff.
    AbsurdSehs,
    /// The customer key's padding bytes are not zero.
    KeyPadding,
    /// IPIB parameter block type 4.
    IpibPbt,
    /// IPIB pv_hdr_addr is not the header offset.
    IpibHdrAddr,
    /// IPIB pv_hdr_size is not sehs.
    IpibHdrSize,
    /// IPIB num_comp = u32::MAX.
    AbsurdNumComp,
    /// A component reaches beyond the end of the file (absurd length).
    ComponentOutside,
    /// A component address not page aligned.
    ComponentUnaligned,
    /// Two components overlap.
    ComponentOverlap,
    /// A component overlaps the header.
    ComponentOverlapsHeader,
    /// The header's nep is one too many.
    NepMismatch,
    /// A byte of a component changed (PLD differs).
    PldMismatch,
    /// The header's ALD changed.
    AldMismatch,
    /// A tweak prefix in the IPIB changed (TLD differs).
    TldMismatch,
}

impl Defect {
    /// Every defect.
    pub const ALL: [Defect; 27] = [
        Defect::Empty,
        Defect::PlainKernel,
        Defect::MetadataPointsNowhere,
        Defect::TruncatedHeaderFixed,
        Defect::TruncatedHeaderTail,
        Defect::TruncatedComponent,
        Defect::TruncatedIpib,
        Defect::UnknownVersion,
        Defect::ReservedNonZero,
        Defect::SehsMismatch,
        Defect::SeaWrong,
        Defect::NoKeySlots,
        Defect::AbsurdNks,
        Defect::AbsurdSehs,
        Defect::KeyPadding,
        Defect::IpibPbt,
        Defect::IpibHdrAddr,
        Defect::IpibHdrSize,
        Defect::AbsurdNumComp,
        Defect::ComponentOutside,
        Defect::ComponentUnaligned,
        Defect::ComponentOverlap,
        Defect::ComponentOverlapsHeader,
        Defect::NepMismatch,
        Defect::PldMismatch,
        Defect::AldMismatch,
        Defect::TldMismatch,
    ];
}

/// A small image with one defect.
pub fn broken(defect: Defect) -> Image {
    let spec = match defect {
        Defect::TruncatedComponent => ImageSpec {
            layout: Layout::Genprotimg,
            ..ImageSpec::default()
        },
        _ => ImageSpec::default(),
    };
    let mut img = build(&spec);
    let h = img.at.header_offset;
    let ipib = img.at.ipib_offset.unwrap_or(0);
    let comp0 = ipib + 0x88;
    match defect {
        Defect::Empty => img.bytes.clear(),
        Defect::PlainKernel => {
            img.bytes = vec![0u8; 0x20000];
            img.bytes[..4].copy_from_slice(b"\x7fELF");
        }
        Defect::MetadataPointsNowhere => {
            img.put_u64(METADATA_OFFSET + 8, 0x15000);
        }
        Defect::TruncatedHeaderFixed => img.bytes.truncate(h as usize + 0x100),
        Defect::TruncatedHeaderTail => img.bytes.truncate((h + img.at.sehs - 8) as usize),
        Defect::TruncatedComponent => {
            let (a, l) = *img.at.components.last().unwrap();
            img.bytes.truncate((a + l / 2) as usize);
        }
        Defect::TruncatedIpib => img.bytes.truncate((ipib + 0x40) as usize),
        Defect::UnknownVersion => {
            img.put_u32(h + 8, 0x200);
        }
        Defect::ReservedNonZero => {
            img.put_u32(h + 0x1C, 1);
        }
        Defect::SehsMismatch => {
            let s = img.at.sehs as u32 + 16;
            img.put_u32(h + 0xC, s);
        }
        Defect::SeaWrong => {
            img.put_u64(h + 0x28, 100);
        }
        Defect::NoKeySlots => {
            img.put_u64(h + 0x20, 0);
        }
        Defect::AbsurdNks => {
            img.put_u64(h + 0x20, u64::MAX);
        }
        Defect::AbsurdSehs => {
            img.put_u32(h + 0xC, 0x7fff_ffff);
        }
        Defect::KeyPadding => img.bytes[h as usize + 0x40] = 1,
        Defect::IpibPbt => img.bytes[ipib as usize + 0xC] = 4,
        Defect::IpibHdrAddr => {
            img.put_u64(ipib + 0x78, h + PAGE);
        }
        Defect::IpibHdrSize => {
            img.put_u64(ipib + 0x80, 0x1000);
        }
        Defect::AbsurdNumComp => {
            img.put_u32(ipib + 0x74, u32::MAX);
        }
        Defect::ComponentOutside => {
            img.put_u64(comp0 + 16, !(PAGE - 1));
        }
        Defect::ComponentUnaligned => {
            let a = img.at.components[0].0;
            img.put_u64(comp0 + 8, a + 0x10);
        }
        Defect::ComponentOverlap => {
            let a = img.at.components[0].0;
            img.put_u64(comp0 + 24 + 8, a);
        }
        Defect::ComponentOverlapsHeader => {
            img.put_u64(comp0 + 8, h);
        }
        Defect::NepMismatch => {
            let n = u64::from_be_bytes(
                img.bytes[h as usize + 0x30..h as usize + 0x38]
                    .try_into()
                    .unwrap(),
            );
            img.put_u64(h + 0x30, n + 1);
        }
        Defect::PldMismatch => {
            let a = img.at.components[1].0 as usize;
            img.bytes[a + 100] ^= 0xFF;
        }
        Defect::AldMismatch => img.bytes[h as usize + 0x120] ^= 1,
        Defect::TldMismatch => img.bytes[comp0 as usize + 7] ^= 1,
    }
    img.at.size = img.bytes.len() as u64;
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_place_things_where_the_format_says() {
        let p = valid();
        assert_eq!(&p.bytes[0xC000..0xC008], b"SeImgLnx");
        assert_eq!(&p.bytes[0x14000..0x14008], b"IBMSecEx");
        assert_eq!(p.at.sehs, 0x280);
        assert_eq!(
            p.at.components,
            vec![(0x15000, 0x1000), (0x16000, 0x1000), (0x17000, 0x1000)]
        );
        assert_eq!(p.at.ipib_offset, Some(0x18000));
        assert_eq!(p.bytes.len() as u64, 0x18000 + 0x88 + 72);
        assert!(p.bytes.len() < 100 * 1024);
        let g = build(&ImageSpec {
            layout: Layout::Genprotimg,
            ..ImageSpec::default()
        });
        assert_eq!(&g.bytes[0xC000..0xC008], &[0u8; 8]);
        assert_eq!(g.bytes[0x13000 + 0xC], 5);
        assert_eq!(g.at.loader_args_offset, Some(0x126a0));
        assert_eq!(g.bytes.len(), 0x18000);
        let b = build(&ImageSpec {
            layout: Layout::BareHeader,
            ..ImageSpec::default()
        });
        assert_eq!(b.bytes.len(), 0x280);
        assert_eq!(&b.bytes[..8], b"IBMSecEx");
        // The same spec gives the same bytes.
        assert_eq!(valid().bytes, p.bytes);
    }

    #[test]
    fn streaming_and_in_memory_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.img");
        let spec = ImageSpec {
            components: vec![3 << 20, 5000],
            ..ImageSpec::default()
        };
        let w = write_file(&spec, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), build(&spec).bytes);
        assert_eq!(w.components[1].1, 0x2000);
    }

    /// Regenerates the committed demo image: `cargo test -p testkit -- --ignored regenerate_demo_image`.
    #[test]
    #[ignore]
    fn regenerate_demo_image() {
        let path = crate::hosttree::workspace_root().join("examples/images/demo-se.img");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        valid().write_to(&path);
    }

    #[test]
    fn the_committed_demo_image_is_what_the_writer_makes() {
        let path = crate::hosttree::workspace_root().join("examples/images/demo-se.img");
        assert_eq!(
            std::fs::read(path).unwrap(),
            valid().bytes,
            "regenerate it (see regenerate_demo_image)"
        );
    }
}
