//! The five image checks: structure, and whether the image fits this host.

use super::header::{Pcf, PCF_BACKUP_KEYS_BIT};
use super::hostkeys::LabeledHash;
use super::integrity::StderrProgress;
use super::{read_host_keys, Integrity, SeImage, Severity, VerifyOptions};
use crate::hex;
use crate::hostkey::HostKeyHash;
use crate::readiness::MALFORMED_HINT;
use crate::uv::UvInfo;
use host::{Check, CheckId};
use std::path::Path;

/// Id of the structural check.
pub const ID_FORMAT: CheckId = CheckId::ImageFormat;
/// Id of the header-version check.
pub const ID_VERSION: CheckId = CheckId::ImageVersion;
/// Id of the plaintext-control-flags check.
pub const ID_PCF: CheckId = CheckId::ImagePcf;
/// Id of the host-key check.
pub const ID_HOST_KEY: CheckId = CheckId::ImageHostKey;
/// Id of the integrity check.
pub const ID_INTEGRITY: CheckId = CheckId::ImageIntegrity;

const REBUILD: &str = "rebuild the image with genprotimg/pvimg, or copy it again if it was damaged";

/// `image-format`: the structural findings.
pub fn format(img: &SeImage) -> Check {
    let p = img.path.display();
    let fails: Vec<_> = img
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .collect();
    let warns: Vec<_> = img
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warn)
        .collect();
    let join = |v: &[&super::Finding]| {
        v.iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if let Some(first) = fails.first() {
        return Check::fail(
            ID_FORMAT,
            format!("{p}: {}", join(&fails)),
            first.hint.clone(),
        );
    }
    let h = &img.header;
    let comps = img.ipib.as_ref().map_or_else(
        || "no IPIB".to_string(),
        |i| format!("{} components", i.components.len()),
    );
    let summary = format!(
        "{p}: {} layout, SE header {:#x} at {:#x} ({} bytes, {} key slot(s)), {} encrypted pages, {comps}",
        img.layout.name(),
        h.version,
        img.header_offset,
        h.sehs,
        h.nks,
        h.nep
    );
    match warns.first() {
        Some(first) => Check::warn(
            ID_FORMAT,
            format!("{summary}; {}", join(&warns)),
            first.hint.clone(),
        ),
        None => Check::pass(ID_FORMAT, summary),
    }
}

/// The value of an ultravisor field, or the check to report instead.
fn uv_field(id: CheckId, uv: &UvInfo, f: &crate::uv::Field<u64>, file: &str) -> Result<u64, Check> {
    if !uv.present {
        return Err(Check::skip(
            id,
            "no /sys/firmware/uv on this host: cannot match the image to an ultravisor",
        ));
    }
    match f {
        Ok(Some(v)) => Ok(*v),
        Ok(None) => Err(Check::skip(
            id,
            format!("/sys/firmware/uv/query/{file} does not exist"),
        )),
        Err(e @ host::Error::Format { .. }) => Err(Check::fail(id, e.to_string(), MALFORMED_HINT)),
        Err(e) => Err(Check::skip(id, e.to_string())),
    }
}

/// `image-version`: the header version is in `supp_se_hdr_ver`.
pub fn version(uv: &UvInfo, img: &SeImage) -> Check {
    let v = img.header.version;
    let mask = match uv_field(ID_VERSION, uv, &uv.supp_se_hdr_ver, "supp_se_hdr_ver") {
        Ok(m) => m,
        Err(c) => return c,
    };
    if uv.supports_header_version(v) == Some(true) {
        Check::pass(
            ID_VERSION,
            format!("header version {v:#x} is supported (supp_se_hdr_ver {mask:x})"),
        )
    } else {
        Check::fail(
            ID_VERSION,
            format!(
                "header version {v:#x} is not in supp_se_hdr_ver {mask:x}: the ultravisor would reject the image (RC 0x104)"
            ),
            "build the image with a header version this machine supports (pvimg/genprotimg for this machine generation), or update the firmware",
        )
    }
}

/// `image-pcf`: every plaintext control flag is supported by `supp_se_hdr_pcf`.
pub fn pcf(uv: &UvInfo, img: &SeImage) -> Check {
    let pcf = img.header.pcf;
    let set = pcf
        .bits()
        .iter()
        .map(|&b| {
            super::header::PCF_FLAGS
                .iter()
                .find(|f| f.bit == b)
                .map_or_else(|| format!("bit {b}"), |f| f.name.to_string())
        })
        .collect::<Vec<_>>()
        .join(", ");
    let set = if set.is_empty() {
        "no flags".to_string()
    } else {
        set
    };
    let supp = match uv_field(ID_PCF, uv, &uv.supp_se_hdr_pcf, "supp_se_hdr_pcf") {
        Ok(m) => m,
        Err(mut c) => {
            c.message = format!("pcf {:#x} ({set}); {}", pcf.0, c.message);
            return c;
        }
    };
    let unsupported = Pcf(pcf.0 & !supp);
    if unsupported.0 == 0 {
        Check::pass(
            ID_PCF,
            format!(
                "pcf {:#x} ({set}) is supported (supp_se_hdr_pcf {supp:x})",
                pcf.0
            ),
        )
    } else {
        Check::fail(
            ID_PCF,
            format!(
                "pcf {:#x}: {} not supported by this ultravisor (supp_se_hdr_pcf {supp:x}); it would reject the image (RC 0x106)",
                pcf.0,
                Pcf::describe(&unsupported.bits())
            ),
            "rebuild the image without the unsupported flags",
        )
    }
}

fn slots(img: &SeImage) -> String {
    let v: Vec<String> = img
        .header
        .key_slots
        .iter()
        .map(|s| s.phkh.to_string())
        .collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// `image-host-key`: a key slot was made for this host's key (or for the keys in the
/// `host_keys` file, which this reads).
pub fn host_key(uv: &UvInfo, img: &SeImage, host_keys: Option<&Path>) -> Check {
    let keys = host_keys.map(|p| (p, read_host_keys(p)));
    host_key_from(uv, img, keys.as_ref().map(|(p, r)| (*p, r.as_ref())))
}

/// `image-host-key` with a `--host-keys` file already read.
pub fn host_key_from(
    uv: &UvInfo,
    img: &SeImage,
    host_keys: Option<(&Path, Result<&Vec<LabeledHash>, &crate::Error>)>,
) -> Check {
    let in_slots = |h: &HostKeyHash| img.header.key_slots.iter().any(|s| s.phkh == *h);
    if let Some((file, hashes)) = host_keys {
        let hashes = match hashes {
            Ok(h) => h,
            Err(e) => {
                return Check::fail(
                    ID_HOST_KEY,
                    e.to_string(),
                    e.hint().unwrap_or("check --host-keys"),
                )
            }
        };
        return match hashes.iter().find(|h| in_slots(&h.hash)) {
            Some(h) => Check::pass(
                ID_HOST_KEY,
                format!("a key slot matches {} of {} ({})", h.label, file.display(), h.hash),
            ),
            None => Check::fail(
                ID_HOST_KEY,
                format!(
                    "this image was built for other host keys; {} holds {}, the image's slots are {}",
                    file.display(),
                    hashes.iter().map(|h| h.hash.to_string()).collect::<Vec<_>>().join(", "),
                    slots(img)
                ),
                "rebuild the image with this host's host-key document (pvimg create -k HOSTKEY.crt)",
            ),
        };
    }
    if !uv.present {
        return Check::skip(
            ID_HOST_KEY,
            "no /sys/firmware/uv on this host: the host key hash is unknown (use --host-keys FILE)",
        );
    }
    let keys = match &uv.keys {
        Ok(Some(k)) => k,
        Ok(None) => {
            return Check::skip(
                ID_HOST_KEY,
                "/sys/firmware/uv/keys does not exist (kernel before 6.13, or no query-keys call): the match cannot be decided on this host; use --host-keys FILE",
            )
        }
        Err(e @ host::Error::Format { .. }) => return Check::fail(ID_HOST_KEY, e.to_string(), MALFORMED_HINT),
        Err(e) => return Check::skip(ID_HOST_KEY, e.to_string()),
    };
    if let Some(h) = keys.host_key.filter(|h| in_slots(h)) {
        return Check::pass(
            ID_HOST_KEY,
            format!("a key slot matches this host's key (keys/host_key {h})"),
        );
    }
    if let Some(h) = keys.backup_host_key.filter(|h| in_slots(h)) {
        return backup_key_verdict(uv, img, h);
    }
    if let Some(h) = keys.all.iter().find(|h| in_slots(h)) {
        return Check::pass(
            ID_HOST_KEY,
            format!("a key slot matches a host key in keys/all ({h})"),
        );
    }
    let host = keys.host_key.map_or_else(
        || "unknown (no keys/host_key)".to_string(),
        |h| h.to_string(),
    );
    Check::fail(
        ID_HOST_KEY,
        format!(
            "this image was built for other host keys; this host's key hash is {host}, the image's slots are {}",
            slots(img)
        ),
        "rebuild the image with this host's host-key document (pvimg create -k HOSTKEY.crt); otherwise the ultravisor rejects it (RC 0x108 RRC 0x05)",
    )
}

/// The verdict for an image whose only matching key slot is this host's backup host key.
///
/// The ultravisor unpacks such an image only when the image allows backup host keys
/// (pcf bit 62: `pvimg create --enable-backup-keys`, genprotimg `--x-pcf`) and the
/// ultravisor offers that flag (bit 62 of `query/supp_se_hdr_pcf`); otherwise it refuses
/// the image (RC 0x108 RRC 0x34, or RC 0x106 for the unsupported flag). The verdict fails
/// exactly when it would refuse, warns when it would accept (backup host keys are a
/// temporary arrangement), and says so when it cannot be decided.
fn backup_key_verdict(uv: &UvInfo, img: &SeImage, h: HostKeyHash) -> Check {
    let matched =
        format!("only this host's backup host key matches a key slot (keys/backup_host_key {h})");
    let rebuild = "rebuild the image with this host's current host-key document (pvimg create -k HOSTKEY.crt)";
    if !img.header.pcf.has(PCF_BACKUP_KEYS_BIT) {
        return Check::fail(
            ID_HOST_KEY,
            format!(
                "{matched}, but the image does not allow backup host keys (pcf {:#x} lacks bit 62): the ultravisor would refuse it (RC 0x108 RRC 0x34)",
                img.header.pcf.0
            ),
            format!("{rebuild}, or with --enable-backup-keys if the backup key is meant to be used"),
        );
    }
    match &uv.supp_se_hdr_pcf {
        Ok(Some(supp)) if Pcf(*supp).has(PCF_BACKUP_KEYS_BIT) => Check::warn(
            ID_HOST_KEY,
            format!(
                "{matched}; the image allows backup host keys (pcf bit 62) and this ultravisor offers them (supp_se_hdr_pcf {supp:x}), so it would accept the image"
            ),
            format!("backup host keys are meant for a transition: {rebuild} as well"),
        ),
        Ok(Some(supp)) => Check::fail(
            ID_HOST_KEY,
            format!(
                "{matched}; the image allows backup host keys (pcf bit 62), but this ultravisor does not offer them (supp_se_hdr_pcf {supp:x} lacks bit 62): it would refuse the image (RC 0x106)"
            ),
            rebuild.to_string(),
        ),
        Ok(None) | Err(_) => Check::warn(
            ID_HOST_KEY,
            format!(
                "{matched}; the image allows backup host keys (pcf bit 62), but whether this ultravisor offers them is unknown (query/supp_se_hdr_pcf unreadable), so acceptance cannot be decided here"
            ),
            rebuild.to_string(),
        ),
    }
}

/// `image-integrity`: PLD/ALD/TLD/nep recomputed (or a cached verification).
pub fn integrity(img: &SeImage, options: &VerifyOptions) -> Check {
    let p = img.path.display();
    if !options.integrity {
        return Check::skip(ID_INTEGRITY, format!("{p}: not verified (--no-integrity)"));
    }
    let cache = if options.use_cache {
        host::cache::Cache::open_default()
    } else {
        None
    };
    let mut bar = StderrProgress::auto(format!("verifying {p}"), img.size);
    match img.verify_integrity(cache.as_ref(), &mut bar) {
        Ok(Integrity::Verified { nep, cached: false }) => Check::pass(
            ID_INTEGRITY,
            format!("{p}: PLD, ALD, TLD and nep ({nep} pages) recomputed from the file match the header"),
        ),
        Ok(Integrity::Verified { nep, cached: true }) => Check::pass(
            ID_INTEGRITY,
            format!("{p}: PLD, ALD, TLD and nep ({nep} pages) match the header (verified before; the file is unchanged)"),
        ),
        Ok(Integrity::Mismatch { differs, computed }) => {
            let h = &img.header;
            let detail: Vec<String> = differs
                .iter()
                .map(|d| match *d {
                    "pld" => format!("PLD (page contents) differs: header {}..., file {}... (RC 0x102 RRC 0x1b)", short(&h.pld), short(&computed.pld)),
                    "ald" => format!("ALD (page addresses) differs: header {}..., file {}... (RC 0x102 RRC 0x1a)", short(&h.ald), short(&computed.ald)),
                    "tld" => format!("TLD (page tweaks) differs: header {}..., file {}... (RC 0x102 RRC 0x1c)", short(&h.tld), short(&computed.tld)),
                    _ => format!("nep differs: header {}, the components hold {} pages (RC 0x102 RRC 0x1d)", h.nep, computed.nep),
                })
                .collect();
            Check::fail(
                ID_INTEGRITY,
                format!("{p}: {}", detail.join("; ")),
                "the image was changed or damaged after it was built; copy it again or rebuild it with genprotimg/pvimg",
            )
        }
        // Only a file that is nothing but a header has no component list by design; every
        // boot image either builder makes has one, so a missing one is damage.
        Ok(Integrity::NotPossible(reason)) => match img.layout {
            super::Layout::BareHeader => Check::skip(
                ID_INTEGRITY,
                format!("{p}: integrity not checkable: {reason}"),
            ),
            _ => Check::fail(ID_INTEGRITY, format!("{p}: integrity cannot be verified: {reason}"), REBUILD),
        },
        Err(e) => Check::fail(ID_INTEGRITY, e.to_string(), e.hint().unwrap_or(REBUILD)),
    }
}

fn short(d: &[u8; 64]) -> String {
    hex::encode(&d[..8])
}
