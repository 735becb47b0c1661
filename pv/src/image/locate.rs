//! Opening an image file safely and finding its SE header and IPIB.
//!
//! The header is found the way the s390-tools builders lay it out: the pvimg metadata
//! (`SeImgLnx` at 0xC000) names it, else the page-aligned offsets 0..=0x14000 are scanned
//! for `IBMSecEx`. The IPIB comes from the metadata (pvimg), or for C genprotimg images
//! from stage3a's argument block ([`super::loader`]), which is also where the loader finds
//! it at boot.

use super::be::{u32_at, u64_at};
use super::header::{self, HeaderError};
use super::ipib::{self, Ipib, IpibStyle};
use super::loader;
use serde::Serialize;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Offset of the pvimg metadata.
pub const METADATA_OFFSET: u64 = 0xC000;
/// Magic of the pvimg metadata.
pub const METADATA_MAGIC: &[u8; 8] = b"SeImgLnx";
/// Size of the pvimg metadata.
pub const METADATA_SIZE: usize = 28;
/// Last page offset scanned for the header.
pub const SCAN_END: u64 = 0x14000;
/// Offset of the stage3a loader.
pub const STAGE3A: u64 = 0x10000;
/// Largest IPIB aplaunch reads (real ones are a few hundred bytes).
pub const MAX_IPIB_SIZE: u64 = 64 * 1024;

/// Where the builder put things.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Layout {
    /// pvimg (s390-tools 2.36+): metadata at 0xC000 names the header and the IPIB.
    Pvimg {
        /// Metadata version (1).
        metadata_version: u32,
        /// Header offset from the metadata.
        hdr_off: u64,
        /// IPIB offset from the metadata.
        ipib_off: u64,
    },
    /// C genprotimg (s390-tools up to 2.35): no metadata; the header was found by
    /// scanning, the IPIB through stage3a's argument block.
    Genprotimg,
    /// A bare SE header (the file starts with `IBMSecEx`): no loader, no IPIB, no
    /// components. Not bootable; only its header can be checked.
    #[serde(rename = "bare-header")]
    BareHeader,
}

impl Layout {
    /// `pvimg`, `genprotimg` or `bare-header`.
    pub fn name(&self) -> &'static str {
        match self {
            Layout::Pvimg { .. } => "pvimg",
            Layout::Genprotimg => "genprotimg",
            Layout::BareHeader => "bare-header",
        }
    }

    /// The IPIB conventions of this layout's builder.
    pub fn ipib_style(&self) -> IpibStyle {
        match self {
            Layout::Pvimg { .. } => IpibStyle::Pvimg,
            Layout::Genprotimg | Layout::BareHeader => IpibStyle::Genprotimg,
        }
    }
}

/// Random-access bytes: a file or a slice (tests, fuzzing).
pub trait Source {
    /// Total size.
    fn size(&self) -> u64;
    /// Reads up to `len` bytes at `off`; fewer only at the end of the data.
    fn read_at_most(&self, off: u64, len: usize) -> io::Result<Vec<u8>>;
}

impl Source for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at_most(&self, off: u64, len: usize) -> io::Result<Vec<u8>> {
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(self.len());
        let end = start.saturating_add(len).min(self.len());
        Ok(self[start..end].to_vec())
    }
}

/// An opened regular file with its size.
#[derive(Debug)]
pub struct FileSource {
    /// The file.
    pub file: File,
    /// Its metadata at open time.
    pub meta: std::fs::Metadata,
}

impl Source for FileSource {
    fn size(&self) -> u64 {
        self.meta.len()
    }
    fn read_at_most(&self, off: u64, len: usize) -> io::Result<Vec<u8>> {
        let avail = self.size().saturating_sub(off);
        let len = len.min(usize::try_from(avail).unwrap_or(usize::MAX));
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            match self.file.read_at(&mut buf[done..], off + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }
}

/// Why a path cannot be opened as an image.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenProblem {
    /// Not a regular file (or missing): the description.
    Path(String),
    /// An I/O error (permission denied, ...).
    Io(io::Error),
}

fn kind_of(ft: std::fs::FileType) -> Option<&'static str> {
    if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some("is a directory, not an image file")
    } else if ft.is_fifo() {
        Some("is a FIFO (named pipe), not an image file; aplaunch does not read from pipes")
    } else if ft.is_char_device() {
        Some("is a character device node, not an image file")
    } else if ft.is_block_device() {
        Some("is a block device node, not an image file; copy the image into a regular file")
    } else if ft.is_socket() {
        Some("is a socket, not an image file")
    } else {
        Some("is not a regular file")
    }
}

/// Opens `path` read-only without ever blocking: the type is checked before the open,
/// the open uses O_NONBLOCK (a FIFO swapped in meanwhile cannot hang it), and the
/// opened descriptor is checked again.
pub fn open_file(path: &Path) -> Result<FileSource, OpenProblem> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dangling =
                std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(OpenProblem::Path(if dangling {
                "is a dangling symbolic link (its target does not exist)".to_string()
            } else {
                "does not exist".to_string()
            }));
        }
        Err(e) => return Err(OpenProblem::Io(e)),
    };
    if let Some(what) = kind_of(meta.file_type()) {
        return Err(OpenProblem::Path(what.to_string()));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(OpenProblem::Io)?;
    let meta = file.metadata().map_err(OpenProblem::Io)?;
    if let Some(what) = kind_of(meta.file_type()) {
        return Err(OpenProblem::Path(what.to_string()));
    }
    Ok(FileSource { file, meta })
}

/// Why no header could be located or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum LocateProblem {
    /// Not an SE image at all.
    NotSe(String),
    /// An SE image that cannot be parsed.
    Invalid(String),
    /// Reading failed.
    Io(io::Error),
}

impl From<io::Error> for LocateProblem {
    fn from(e: io::Error) -> Self {
        LocateProblem::Io(e)
    }
}

/// The located header (its full bytes) and the layout.
pub struct Located {
    /// The layout.
    pub layout: Layout,
    /// Header offset.
    pub hdr_off: u64,
    /// The header's `sehs` bytes.
    pub header: Vec<u8>,
    /// Metadata problems (unknown metadata version).
    pub metadata_version_ok: bool,
}

/// Finds and reads the SE header.
pub fn locate<S: Source + ?Sized>(src: &S) -> Result<Located, LocateProblem> {
    let size = src.size();
    if size == 0 {
        return Err(LocateProblem::NotSe("the file is empty".to_string()));
    }
    let prefix = src.read_at_most(0, (SCAN_END + 8) as usize)?;
    let meta_at = METADATA_OFFSET as usize;
    let (layout, hdr_off, version_ok) = if prefix.len() >= meta_at + METADATA_SIZE
        && &prefix[meta_at..meta_at + 8] == METADATA_MAGIC
    {
        let m = &prefix[meta_at..meta_at + METADATA_SIZE];
        let hdr_off = u64_at(m, 8);
        let version = u32_at(m, 16);
        let ipib_off = u64_at(m, 20);
        let magic = src.read_at_most(hdr_off, 8)?;
        if magic.as_slice() != header::MAGIC {
            return Err(LocateProblem::Invalid(format!(
                "the pvimg metadata at 0xc000 names the SE header at {hdr_off:#x}, but there is no IBMSecEx magic there{}",
                if hdr_off >= size { format!(" (the file has only {size} bytes)") } else { String::new() }
            )));
        }
        (
            Layout::Pvimg {
                metadata_version: version,
                hdr_off,
                ipib_off,
            },
            hdr_off,
            version == 1,
        )
    } else {
        let found = (0..=SCAN_END).step_by(0x1000).find(|&off| {
            prefix.get(off as usize..off as usize + 8) == Some(header::MAGIC.as_slice())
        });
        match found {
            Some(0) => (Layout::BareHeader, 0, true),
            Some(off) => (Layout::Genprotimg, off, true),
            None => {
                if let Some(reason) = truncated_before_header(src)? {
                    return Err(LocateProblem::Invalid(reason));
                }
                let what = if prefix.starts_with(b"\x7fELF") {
                    " (it is an ELF file: a plain kernel?)"
                } else if size < 0x1000 {
                    " (the file is far too small)"
                } else {
                    ""
                };
                return Err(LocateProblem::NotSe(format!(
                    "no IBMSecEx header (no SeImgLnx metadata at 0xc000, no IBMSecEx at any page offset 0x0..=0x14000){what}; build one with genprotimg/pvimg"
                )));
            }
        }
    };
    let fixed = src.read_at_most(hdr_off, header::FIXED_SIZE)?;
    if fixed.len() < header::FIXED_SIZE {
        return Err(LocateProblem::Invalid(format!(
            "truncated in the SE header: the header at {hdr_off:#x} needs at least {} bytes, the file ends after {}; the ultravisor would refuse the incomplete header as corrupt (RC 0x10a)",
            header::FIXED_SIZE,
            fixed.len()
        )));
    }
    let sehs = match header::declared_size(&fixed) {
        Ok(s) => s,
        Err(e) => {
            return Err(LocateProblem::Invalid(format!(
                "SE header at {hdr_off:#x}: {e}"
            )))
        }
    };
    let bytes = src.read_at_most(hdr_off, sehs as usize)?;
    if bytes.len() < sehs as usize {
        return Err(LocateProblem::Invalid(format!(
            "SE header at {hdr_off:#x}: {}",
            HeaderError::Truncated {
                needed: u64::from(sehs),
                present: bytes.len() as u64
            }
        )));
    }
    Ok(Located {
        layout,
        hdr_off,
        header: bytes,
        metadata_version_ok: version_ok,
    })
}

/// Reads and parses an IPIB at `off` written by the builder of `style`; `Err` says why
/// there is none there.
pub fn read_ipib<S: Source + ?Sized>(src: &S, off: u64, style: IpibStyle) -> Result<Ipib, String> {
    let size = src.size();
    let fixed = src
        .read_at_most(off, ipib::FIXED_SIZE)
        .map_err(|e| e.to_string())?;
    if fixed.is_empty() {
        return Err(format!(
            "truncated: the file ends at {size:#x}, before the IPIB at {off:#x}, so the component list is missing and the last component is cut short or gone; the ultravisor would reject the image (RC 0x102, nep or PLD)"
        ));
    }
    if fixed.len() < ipib::FIXED_SIZE {
        return Err(format!(
            "truncated in the IPIB: the IPIB at {off:#x} needs {} bytes, the file ({size} bytes) has {}; stage3a would hand the ultravisor a partial component list and it would reject the image (RC 0x102, nep or PLD)",
            ipib::FIXED_SIZE,
            fixed.len()
        ));
    }
    let (n, need) = ipib::declared_size(&fixed).expect("fixed part read");
    if need > MAX_IPIB_SIZE {
        return Err(format!(
            "the IPIB at {off:#x} claims {n} components ({need} bytes), an absurd count"
        ));
    }
    // genprotimg pads the block to a page: read the padding too, as far as it goes.
    let bytes = src
        .read_at_most(off, style.list_len(need) as usize)
        .map_err(|e| e.to_string())?;
    if (bytes.len() as u64) < need {
        return Err(format!(
            "truncated in the IPIB: the IPIB at {off:#x} with {n} components needs {need} bytes, the file has {} from there; stage3a would hand the ultravisor a partial component list and it would reject the image (RC 0x102, nep or PLD)",
            bytes.len()
        ));
    }
    Ok(Ipib::parse(&bytes, off, style).expect("whole IPIB read"))
}

/// For a file without any SE header: if stage3a's argument block names a header (and an
/// IPIB) beyond the end of the file, the image was truncated; says where.
fn truncated_before_header<S: Source + ?Sized>(src: &S) -> io::Result<Option<String>> {
    let size = src.size();
    let plausible = |a: &loader::LoaderArgs| {
        a.hdr_addr % ipib::PAGE == 0
            && a.ipib_addr % ipib::PAGE == 0
            && a.hdr_addr >= size
            && a.hdr_size > header::FIXED_SIZE as u64
            && a.hdr_size <= u64::from(header::MAX_HEADER_SIZE)
    };
    let Some(a) = loader::find(src, size.min(SCAN_END), plausible)? else {
        return Ok(None);
    };
    let area = if a.ipib_addr < a.hdr_addr && size > a.ipib_addr {
        format!("inside the IPIB at {:#x}, before", a.ipib_addr)
    } else {
        "before".to_string()
    };
    Ok(Some(format!(
        "truncated: the file ends at {size:#x}, {area} the SE header at {:#x} ({} bytes) that stage3a's argument block at {:#x} names; without the header the ultravisor would reject the image as corrupt (RC 0x10a)",
        a.hdr_addr, a.hdr_size, a.offset
    )))
}

/// Identity of an opened file for the verification cache.
pub fn identity(meta: &std::fs::Metadata) -> String {
    format!(
        "dev={} ino={} size={} mtime={}.{:09} ctime={}.{:09}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}
