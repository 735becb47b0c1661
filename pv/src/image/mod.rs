//! Secure Execution boot images (genprotimg / pvimg output): locate and parse the header
//! and IPIB, check their consistency, recompute the integrity digests, and decide whether
//! the image fits this host.
//!
//! Entry points: [`SeImage::open`] (parse, no hashing), [`SeImage::verify_integrity`]
//! (one streaming pass), and [`checks`], the five `image-*` checks `aplaunch check
//! --pv-image` and every launch run.

mod be;
pub mod compat;
pub mod finding;
pub mod header;
pub mod hostkeys;
pub mod integrity;
pub mod ipib;
pub mod loader;
pub mod locate;

pub use finding::{Finding, Severity};
pub use header::{KeySlot, Pcf, PcfFlag, SeHeader};
pub use integrity::{Digests, NoProgress, Progress, StderrProgress};
pub use ipib::{Component, Ipib, IpibStyle};
pub use loader::LoaderArgs;
pub use locate::Layout;

use crate::error::{Error, Result};
use crate::hex;
use crate::uv::UvInfo;
use host::{Check, CheckId};
use locate::{FileSource, LocateProblem, OpenProblem, Source};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Cache namespace of successful full verifications.
pub const CACHE_NAMESPACE: &str = "image";

/// What [`checks`] verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Recompute PLD/ALD/TLD/nep (`--no-integrity` turns it off).
    pub integrity: bool,
    /// Use (and fill) the verification cache (`--no-cache` turns it off).
    pub use_cache: bool,
    /// Match the key slots against this file instead of the host's `keys/`.
    pub host_keys: Option<PathBuf>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            integrity: true,
            use_cache: true,
            host_keys: None,
        }
    }
}

/// A parsed Secure Execution image.
#[derive(Debug, Serialize)]
pub struct SeImage {
    /// The path as given.
    pub path: PathBuf,
    /// File size in bytes.
    pub size: u64,
    /// Which builder's layout.
    pub layout: Layout,
    /// File offset of the SE header.
    pub header_offset: u64,
    /// The parsed header.
    pub header: SeHeader,
    /// stage3a's argument block naming this header (`None` when there is none).
    pub loader_args: Option<LoaderArgs>,
    /// The IPIB, when the image has one that could be read.
    pub ipib: Option<Ipib>,
    /// Why there is no IPIB (when `ipib` is `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipib_problem: Option<String>,
    /// Structural findings (empty for a well-formed image).
    pub findings: Vec<Finding>,
    #[serde(skip)]
    file: Option<FileSource>,
}

/// The outcome of an integrity verification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Integrity {
    /// All digests and nep match; `cached` when a previous full verification vouched.
    Verified {
        /// Pages verified.
        nep: u64,
        /// Whether the result came from the cache.
        cached: bool,
    },
    /// Something differs.
    Mismatch {
        /// Which of `pld`, `ald`, `tld`, `nep` differ.
        differs: Vec<&'static str>,
        /// What the file gives.
        computed: Digests,
    },
    /// The image has no usable IPIB or unusable components: the reason.
    NotPossible(String),
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct CacheRecord {
    pld: String,
    ald: String,
    tld: String,
    nep: u64,
}

impl SeImage {
    /// Opens and parses an image file (header, key slots, IPIB, structural findings);
    /// never blocks on FIFOs and never allocates more than the header and IPIB need.
    pub fn open(path: impl AsRef<Path>) -> Result<SeImage> {
        let path = path.as_ref();
        let src = locate::open_file(path).map_err(|e| match e {
            OpenProblem::Path(problem) => Error::ImagePath {
                path: path.to_path_buf(),
                problem,
            },
            OpenProblem::Io(source) => Error::ImageRead {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let mut image = Self::parse(&src, path)?;
        image.file = Some(src);
        Ok(image)
    }

    /// Parses an image held in memory (tests, fuzzing); `path` is only used in messages.
    pub fn parse_bytes(bytes: &[u8], path: impl AsRef<Path>) -> Result<SeImage> {
        Self::parse(bytes, path.as_ref())
    }

    fn parse<S: Source + ?Sized>(src: &S, path: &Path) -> Result<SeImage> {
        let located = locate::locate(src).map_err(|e| match e {
            LocateProblem::NotSe(reason) => Error::NotSeImage {
                path: path.to_path_buf(),
                reason,
            },
            LocateProblem::Invalid(reason) => Error::InvalidImage {
                path: path.to_path_buf(),
                reason,
            },
            LocateProblem::Io(source) => Error::ImageRead {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let (header, mut findings) =
            header::parse(&located.header).map_err(|e| Error::InvalidImage {
                path: path.to_path_buf(),
                reason: format!("SE header at {:#x}: {e}", located.hdr_off),
            })?;
        if !located.metadata_version_ok {
            findings.push(Finding::warn(
                "metadata-version",
                "the pvimg metadata at 0xc000 has a version other than 1",
                "a newer pvimg made this image; update aplaunch",
            ));
        }
        let size = src.size();
        let hdr_off = located.hdr_off;
        let read_err = |source| Error::ImageRead {
            path: path.to_path_buf(),
            source,
        };
        let loader_args = match located.layout {
            Layout::BareHeader => None,
            _ => loader::find(src, hdr_off, |a| {
                a.hdr_addr == hdr_off && a.hdr_size == u64::from(header.sehs)
            })
            .map_err(read_err)?,
        };
        let no_loader = format!(
            "no stage3a argument block names the SE header at {hdr_off:#x} ({} bytes): the last 24 bytes of the loader after 0x10000 are damaged or missing, so at boot stage3a could not hand the ultravisor this header and a component list",
            header.sehs
        );
        let fixable = "the image is corrupt or was changed after it was built; copy it again or rebuild it with genprotimg/pvimg";
        let style = located.layout.ipib_style();
        let ipib_at = match (&located.layout, loader_args) {
            (Layout::Pvimg { ipib_off, .. }, args) => {
                match args {
                    None => findings.push(Finding::fail("loader-args", no_loader.clone(), fixable)),
                    Some(a) if a.ipib_addr != *ipib_off => findings.push(Finding::fail(
                        "loader-args",
                        format!(
                            "stage3a's argument block at {:#x} names the IPIB at {:#x}, the pvimg metadata at {ipib_off:#x}: at boot stage3a would hand the ultravisor the one at {:#x}",
                            a.offset, a.ipib_addr, a.ipib_addr
                        ),
                        fixable,
                    )),
                    Some(_) => {}
                }
                Ok(*ipib_off)
            }
            (Layout::Genprotimg, Some(a)) => Ok(a.ipib_addr),
            (Layout::Genprotimg, None) => {
                findings.push(Finding::fail("loader-args", no_loader.clone(), fixable));
                Err(format!("no IPIB: {no_loader}"))
            }
            (Layout::BareHeader, _) => Err(
                "a bare SE header (the file starts with IBMSecEx): it carries no loader, no IPIB and no component list, so there is nothing to recompute; verify the boot image it belongs to".to_string(),
            ),
        };
        let (ipib, ipib_problem) = match ipib_at {
            Ok(off) => match locate::read_ipib(src, off, style) {
                Ok(i) => (Some(i), None),
                Err(problem) => {
                    findings.push(Finding::fail(
                        "ipib",
                        problem.clone(),
                        "the image is truncated or corrupt; copy it again or rebuild it",
                    ));
                    (None, Some(problem))
                }
            },
            Err(problem) => (None, Some(problem)),
        };
        if let Some(i) = &ipib {
            findings.extend(i.findings(located.hdr_off, header.sehs, header.nep, size));
        }
        Ok(SeImage {
            path: path.to_path_buf(),
            size,
            layout: located.layout,
            header_offset: located.hdr_off,
            header,
            loader_args,
            ipib,
            ipib_problem,
            findings,
            file: None,
        })
    }

    /// Whether a structural finding fails the image.
    pub fn has_failures(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Fail)
    }

    /// The components integrity verification walks, or why it cannot.
    fn verifiable_components(&self) -> std::result::Result<&[Component], String> {
        let Some(ipib) = &self.ipib else {
            return Err(self
                .ipib_problem
                .clone()
                .unwrap_or_else(|| "no IPIB".to_string()));
        };
        let blocking = self
            .findings
            .iter()
            .find(|f| matches!(f.code, "component-alignment" | "component-truncated"));
        if let Some(f) = blocking {
            return Err(f.message.clone());
        }
        Ok(&ipib.components)
    }

    fn compare(&self, d: Digests) -> Integrity {
        let h = &self.header;
        let mut differs = Vec::new();
        if d.pld != h.pld {
            differs.push("pld");
        }
        if d.ald != h.ald {
            differs.push("ald");
        }
        if d.tld != h.tld {
            differs.push("tld");
        }
        if d.nep != h.nep {
            differs.push("nep");
        }
        if differs.is_empty() {
            Integrity::Verified {
                nep: d.nep,
                cached: false,
            }
        } else {
            Integrity::Mismatch {
                differs,
                computed: d,
            }
        }
    }

    fn record(&self) -> CacheRecord {
        CacheRecord {
            pld: hex::encode(&self.header.pld),
            ald: hex::encode(&self.header.ald),
            tld: hex::encode(&self.header.tld),
            nep: self.header.nep,
        }
    }

    /// The cache key of this opened file (device, inode, size, mtime, ctime).
    pub fn cache_key(&self) -> Option<String> {
        self.file.as_ref().map(|f| locate::identity(&f.meta))
    }

    /// Recomputes PLD, ALD, TLD and nep in one streaming pass and compares them with the
    /// header. With `cache`, a previous successful verification of the same file (same
    /// device, inode, size, mtime and ctime, same header digests) answers without hashing,
    /// and a new success is stored.
    pub fn verify_integrity(
        &self,
        cache: Option<&host::cache::Cache>,
        progress: &mut dyn Progress,
    ) -> Result<Integrity> {
        let components = match self.verifiable_components() {
            Ok(c) => c,
            Err(reason) => return Ok(Integrity::NotPossible(reason)),
        };
        let Some(src) = &self.file else {
            return Ok(Integrity::NotPossible(
                "the image was parsed from memory".to_string(),
            ));
        };
        let key = locate::identity(&src.meta);
        if let Some(cache) = cache {
            if cache.get::<CacheRecord>(CACHE_NAMESPACE, &key).as_ref() == Some(&self.record()) {
                return Ok(Integrity::Verified {
                    nep: self.header.nep,
                    cached: true,
                });
            }
        }
        let read_err = |source| Error::ImageRead {
            path: self.path.clone(),
            source,
        };
        let digests = integrity::compute(&src.file, components, progress).map_err(|e| {
            // A libcrypto failure travels through the I/O error; report it as itself.
            if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
                *e.into_inner()
                    .and_then(|inner| inner.downcast::<Error>().ok())
                    .expect("checked above")
            } else {
                read_err(e)
            }
        })?;
        let outcome = self.compare(digests);
        if let (Some(cache), Integrity::Verified { .. }) = (cache, &outcome) {
            // Only vouch for the file if it did not change while it was read.
            let now = src.file.metadata().map_err(read_err)?;
            if locate::identity(&now) == key {
                cache.put(CACHE_NAMESPACE, &key, &self.record());
            }
        }
        Ok(outcome)
    }
}

/// Opens the image and runs the five image checks, in this order: `image-format`,
/// `image-version`, `image-pcf`, `image-host-key`, `image-integrity`.
///
/// `uv` is the ultravisor information the caller already read. With
/// `options.use_cache`, a cached successful verification of the unchanged file makes
/// this fast enough to run before every launch.
pub fn checks(uv: &UvInfo, image: &Path, options: &VerifyOptions) -> Vec<Check> {
    match SeImage::open(image) {
        Ok(img) => checks_for(uv, &img, options),
        Err(e) => {
            let skip = |id: CheckId| {
                Check::skip(
                    id,
                    format!("{}: the image could not be parsed", image.display()),
                )
            };
            vec![
                Check::fail(
                    compat::ID_FORMAT,
                    e.to_string(),
                    e.hint().unwrap_or("check the path"),
                ),
                skip(compat::ID_VERSION),
                skip(compat::ID_PCF),
                skip(compat::ID_HOST_KEY),
                skip(compat::ID_INTEGRITY),
            ]
        }
    }
}

/// The five image checks for an image already opened (reads `options.host_keys`).
pub fn checks_for(uv: &UvInfo, image: &SeImage, options: &VerifyOptions) -> Vec<Check> {
    let keys = options.host_keys.as_deref().map(|p| (p, read_host_keys(p)));
    checks_with_keys(
        uv,
        image,
        options,
        keys.as_ref().map(|(p, r)| (*p, r.as_ref())),
    )
}

/// The five image checks with the `--host-keys` file already read (`(path, its hashes or
/// the error reading them)`), so a caller that validated the file does not read it twice.
pub fn checks_with_keys(
    uv: &UvInfo,
    image: &SeImage,
    options: &VerifyOptions,
    host_keys: Option<(
        &Path,
        std::result::Result<&Vec<hostkeys::LabeledHash>, &Error>,
    )>,
) -> Vec<Check> {
    vec![
        compat::format(image),
        compat::version(uv, image),
        compat::pcf(uv, image),
        compat::host_key_from(uv, image, host_keys),
        compat::integrity(image, options),
    ]
}

/// Reads a `--host-keys` file (hash lines or PEM host-key documents).
pub fn read_host_keys(path: &Path) -> Result<Vec<hostkeys::LabeledHash>> {
    let bytes = match locate::open_file(path) {
        Ok(src) => {
            use std::io::Read;
            let mut buf = Vec::new();
            (&src.file)
                .take(16 << 20)
                .read_to_end(&mut buf)
                .map_err(|source| Error::HostKeysRead {
                    path: path.to_path_buf(),
                    source,
                })?;
            buf
        }
        Err(OpenProblem::Path(problem)) => {
            return Err(Error::HostKeysFormat {
                path: path.to_path_buf(),
                reason: problem,
            })
        }
        Err(OpenProblem::Io(source)) => {
            return Err(Error::HostKeysRead {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    hostkeys::parse(&bytes).map_err(|reason| Error::HostKeysFormat {
        path: path.to_path_buf(),
        reason,
    })
}
