//! `aplaunch image inspect|verify`: Secure Execution boot images, offline.
//!
//! Exit codes: 0 the image is fine (verify: no check failed); 1 the verdict is negative
//! (not an SE image, invalid, built for other keys, unsupported, corrupted); 2 the path is
//! not an image file (missing, dangling symbolic link, directory, FIFO, device node) or
//! `--host-keys` is malformed; 3 the file exists but cannot be read (permissions, I/O).

use super::output::{AppError, Exit, Output};
use super::GlobalArgs;
use clap::{Args, Subcommand};
use host::ErrorKind;
use pv::hex;
use pv::image::{self, SeImage, VerifyOptions};
use std::fmt::Write as _;
use std::path::PathBuf;

/// `aplaunch image ...`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Show everything parsed from a Secure Execution image: header, key slots, flags, IPIB, findings
    Inspect(InspectArgs),
    /// Verify an image offline: structure, header version and flags on this host, host key, integrity
    Verify(VerifyArgs),
}

/// Arguments of `aplaunch image inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The Secure Execution image (genprotimg/pvimg output)
    #[arg(value_name = "IMG")]
    pub image: PathBuf,
}

/// Arguments of `aplaunch image verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The Secure Execution image (genprotimg/pvimg output)
    #[arg(value_name = "IMG")]
    pub image: PathBuf,
    /// Match the key slots against this file instead of the host's keys: lines of 64 hex
    /// digits (the /sys/firmware/uv/keys/all format) or host-key documents (X.509 PEM, P-521)
    #[arg(long, value_name = "FILE")]
    pub host_keys: Option<PathBuf>,
    /// Do not recompute the integrity digests (PLD, ALD, TLD, nep)
    #[arg(long)]
    pub no_integrity: bool,
    /// Neither use nor store the cached result of an earlier full verification
    #[arg(long)]
    pub no_cache: bool,
}

/// Maps a `pv` error to what the user sees, with the exit codes documented above.
pub fn image_error(e: pv::Error) -> AppError {
    let hint = e.hint();
    let err = match &e {
        pv::Error::ImagePath { .. } => AppError::usage(e.to_string()),
        pv::Error::HostKeysFormat { .. } => {
            AppError::new(ErrorKind::HostKeys, Exit::Usage, e.to_string())
        }
        pv::Error::NotSeImage { .. } => AppError::refused(ErrorKind::NotSeImage, e.to_string()),
        pv::Error::InvalidImage { .. } => AppError::refused(ErrorKind::InvalidImage, e.to_string()),
        _ => AppError::failed(ErrorKind::Io, e.to_string()),
    };
    match hint {
        Some(h) => err.with_hint(h),
        None => err,
    }
}

/// Runs an image command.
pub fn run(global: &GlobalArgs, cmd: ImageCommand, out: &Output) -> Result<Exit, AppError> {
    match cmd {
        ImageCommand::Inspect(args) => inspect(args, out),
        ImageCommand::Verify(args) => verify(global, args, out),
    }
}

fn inspect(args: InspectArgs, out: &Output) -> Result<Exit, AppError> {
    let img = SeImage::open(&args.image).map_err(image_error)?;
    let ok = !img.has_failures();
    if out.json {
        out.json_document(&serde_json::json!({ "ok": ok, "image": img }));
    } else {
        out.human(&render(&img));
    }
    Ok(if ok { Exit::Ok } else { Exit::Negative })
}

fn verify(global: &GlobalArgs, args: VerifyArgs, out: &Output) -> Result<Exit, AppError> {
    let root = super::host_root(global)?;
    let keys = match &args.host_keys {
        Some(p) => Some(image::read_host_keys(p).map_err(image_error)?),
        None => None,
    };
    let img = SeImage::open(&args.image).map_err(image_error)?;
    let uv = pv::UvInfo::read(&root);
    let options = VerifyOptions {
        integrity: !args.no_integrity,
        use_cache: !args.no_cache,
        host_keys: args.host_keys.clone(),
    };
    let key_arg = match (&args.host_keys, &keys) {
        (Some(p), Some(k)) => Some((p.as_path(), Ok(k))),
        _ => None,
    };
    let mut report = host::Report::new();
    report.extend(image::checks_with_keys(&uv, &img, &options, key_arg));
    if out.json {
        out.json_document(&serde_json::json!({
            "ok": report.ok,
            "image": img.path,
            "checks": report.checks,
        }));
    } else {
        out.human(&report.render(out.colour));
        let failed = report.failures().count();
        if failed > 0 {
            out.human(&format!(
                "\n{}: {failed} check(s) failed\n",
                img.path.display()
            ));
        }
    }
    Ok(if report.ok { Exit::Ok } else { Exit::Negative })
}

/// The human view of `inspect`.
pub fn render(img: &SeImage) -> String {
    let h = &img.header;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: Secure Execution image, {} layout, {} bytes",
        img.path.display(),
        img.layout.name(),
        img.size
    );
    let _ = writeln!(
        s,
        "  header          version {:#x} at {:#x}, {} bytes (sehs)",
        h.version, img.header_offset, h.sehs
    );
    let flags = h
        .pcf
        .flags()
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        s,
        "  pcf             {:#x}{}",
        h.pcf.0,
        if flags.is_empty() {
            String::new()
        } else {
            format!(" ({flags})")
        }
    );
    let unknown: Vec<u32> = h
        .pcf
        .bits()
        .into_iter()
        .filter(|b| !image::header::PCF_FLAGS.iter().any(|f| f.bit == *b))
        .collect();
    if !unknown.is_empty() {
        let _ = writeln!(s, "                  unknown bits (MSB-0): {unknown:?}");
    }
    let _ = writeln!(s, "  encrypted pages {} (nep)", h.nep);
    let _ = writeln!(
        s,
        "  encrypted area  {} bytes (sea), {} bytes stored",
        h.sea, h.encrypted_area_size
    );
    let _ = writeln!(s, "  key slots       {} (nks)", h.nks);
    for (i, k) in h.key_slots.iter().enumerate() {
        let _ = writeln!(s, "    {i:<3} {}", k.phkh);
    }
    let _ = writeln!(s, "  iv              {}", hex::encode(&h.iv));
    let _ = writeln!(
        s,
        "  customer key X  {}",
        hex::encode(&h.customer_key_x[image::header::COORD_PAD..])
    );
    let _ = writeln!(
        s,
        "  customer key Y  {}",
        hex::encode(&h.customer_key_y[image::header::COORD_PAD..])
    );
    let _ = writeln!(s, "  PLD             {}", hex::encode(&h.pld));
    let _ = writeln!(s, "  ALD             {}", hex::encode(&h.ald));
    let _ = writeln!(s, "  TLD             {}", hex::encode(&h.tld));
    let _ = writeln!(s, "  GCM tag         {}", hex::encode(&h.tag));
    match &img.loader_args {
        Some(a) => {
            let _ = writeln!(
                s,
                "  stage3a args    at {:#x}: header {:#x}+{:#x}, IPIB {:#x}",
                a.offset, a.hdr_addr, a.hdr_size, a.ipib_addr
            );
        }
        None => {
            let _ = writeln!(s, "  stage3a args    none naming this header");
        }
    }
    match &img.ipib {
        Some(i) => {
            let _ = writeln!(
                s,
                "  IPIB            at {:#x}, {} components, header {:#x}+{:#x}",
                i.offset, i.num_comp, i.pv_hdr_addr, i.pv_hdr_size
            );
            for (n, c) in i.components.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "    {n:<3} id {:<3} {:#010x}+{:#x} ({} pages), tweak prefix {}",
                    c.id(),
                    c.addr,
                    c.len,
                    c.len / image::ipib::PAGE,
                    hex::encode(&c.tweak_prefix)
                );
            }
        }
        None => {
            let _ = writeln!(
                s,
                "  IPIB            none: {}",
                img.ipib_problem.as_deref().unwrap_or("not found")
            );
        }
    }
    if img.findings.is_empty() {
        let _ = writeln!(s, "  findings        none");
    } else {
        let _ = writeln!(s, "  findings");
        for f in &img.findings {
            let sev = match f.severity {
                image::Severity::Warn => "warn",
                image::Severity::Fail => "fail",
            };
            let _ = writeln!(s, "    {sev}  {:<20} {}", f.code, f.message);
        }
    }
    s
}
