//! `aplaunch ap ...`: the AP bus, the vfio_ap matrix and its mdevs.

use super::output::{AppError, Exit, Output};
use super::GlobalArgs;
use clap::{Args, Subcommand};
use host::{ErrorKind, HostRoot, Report};
use launcher::hotplug::{self, UnplugTarget};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use vfio::lifecycle::{self, CreateRequest, MatrixChange, Outcome, RemoveRequest};
use vfio::lock::ApLock;
use vfio::mask::MaskSpec;
use vfio::mdevctl::Start;
use vfio::scan::ApScan;
use vfio::write::HostWriter;
use vfio::{Apid, Apqi};

/// AP commands.
#[derive(Debug, Clone, Subcommand)]
pub enum ApCommand {
    /// List crypto cards and queues (type, driver, status, owning mdev) and every mdev, active or only defined
    List,
    /// Draw the adapters x domains grid: host drivers, free for vfio_ap, or which mdev has each queue
    Matrix,
    /// Show the AP bus masks; with --apmask/--aqmask preview and apply a change
    Masks(MasksArgs),
    /// Check one mdev (or every mdev) for use by a guest
    Check {
        /// The mdev's UUID; all mdevs when left out
        uuid: Option<String>,
    },
    /// Create, show, change and remove vfio_ap mdevs
    #[command(subcommand)]
    Mdev(MdevCommand),
}

/// Arguments of `aplaunch ap masks`.
#[derive(Debug, Clone, Args)]
pub struct MasksArgs {
    /// New apmask: 0x+hex (kernel, left-aligned), a decimal list (0-1,3-255) or a relative change (+5, -4-8)
    #[arg(long, value_name = "SPEC", allow_hyphen_values = true)]
    pub apmask: Option<String>,
    /// New aqmask, in the same syntaxes
    #[arg(long, value_name = "SPEC", allow_hyphen_values = true)]
    pub aqmask: Option<String>,
    /// Only show what would change
    #[arg(long)]
    pub dry_run: bool,
    /// Change the persistent masks (chzdev's udev rule /etc/udev/rules.d/41-ap.rules, applied at boot) instead of the active ones
    #[arg(long)]
    pub persistent: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// The lock option of every changing command.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// Seconds to wait for the AP configuration lock (/run/lock/s390apconfig.lock)
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub lock_timeout: u64,
}

/// The ids of an assign / unassign / create.
#[derive(Debug, Clone, Args)]
pub struct Ids {
    /// Adapter (decimal, or hex with 0x); repeat or separate with commas
    #[arg(long = "adapter", short = 'a', value_name = "A", value_delimiter = ',')]
    pub adapters: Vec<Apid>,
    /// Usage domain (decimal, or hex with 0x); repeat or separate with commas
    #[arg(long = "domain", short = 'd', value_name = "D", value_delimiter = ',')]
    pub domains: Vec<Apqi>,
    /// Control domain (decimal, or hex with 0x); repeat or separate with commas
    #[arg(
        long = "control-domain",
        short = 'c',
        value_name = "C",
        value_delimiter = ','
    )]
    pub control_domains: Vec<Apqi>,
}

/// mdev commands.
#[derive(Debug, Clone, Subcommand)]
pub enum MdevCommand {
    /// Create an mdev (validated before anything is written; removed again if a step fails)
    Create {
        /// UUID of the new mdev (a random one when left out)
        #[arg(long)]
        uuid: Option<String>,
        #[command(flatten)]
        ids: Ids,
        /// Also write the mdevctl definition /etc/mdevctl.d/matrix/UUID
        #[arg(long)]
        define: bool,
        /// With --define: start it at boot
        #[arg(long, requires = "define")]
        auto: bool,
        /// With --define: replace an existing definition
        #[arg(long, requires = "define")]
        force: bool,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Show an mdev: matrix, guest matrix, control domains, VFIO nodes, definition
    Show {
        /// The mdev's UUID
        uuid: String,
    },
    /// Assign adapters/domains/control domains (live on a running guest when the kernel can)
    Assign {
        /// The mdev's UUID
        uuid: String,
        #[command(flatten)]
        ids: Ids,
        /// Also edit its mdevctl definition like `mdevctl modify --addattr` (other entries and spellings stay; a new manual one when there is none); an mdev that is only defined gets just its definition edited
        #[arg(long)]
        define: bool,
        /// On a kernel before 6.0 (no guest_matrix), write even though a process holds the mdev and let the kernel answer (EBUSY while a guest runs)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Unassign adapters/domains/control domains (live on a running guest when the kernel can)
    Unassign {
        /// The mdev's UUID
        uuid: String,
        #[command(flatten)]
        ids: Ids,
        /// Also edit its mdevctl definition like `mdevctl modify --delattr` (deletes the entries assigning the ids, clears them in ap_config; other entries stay)
        #[arg(long)]
        define: bool,
        /// On a kernel before 6.0 (no guest_matrix), write even though a process holds the mdev and let the kernel answer (EBUSY while a guest runs)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Remove an mdev (refused while a guest holds it unless --unplug or --force; never waits unbounded)
    Remove {
        /// The mdev's UUID
        uuid: String,
        /// Also delete its mdevctl definition (every file mdevctl reads as one: any case, 32 hex digits, {...}, urn:uuid:...)
        #[arg(long)]
        undefine: bool,
        /// First unplug it from the guest holding it through QMP (device_del)
        #[arg(long)]
        unplug: bool,
        /// The guest's QMP socket for --unplug (default: the one in the holding QEMU's command line)
        #[arg(long, value_name = "SOCK", requires = "unplug")]
        qmp: Option<PathBuf>,
        /// Remove it even while a guest holds it: the kernel waits for QEMU to release it
        #[arg(long)]
        force: bool,
        /// Seconds to wait for the kernel to finish the removal (and for each QMP step)
        #[arg(long, value_name = "SECS", default_value = "30", value_parser = super::qmp::parse_secs)]
        timeout: Duration,
        #[command(flatten)]
        lock: LockArgs,
    },
}

/// Maps a vfio error to what the user sees.
pub fn app_error(e: vfio::Error) -> AppError {
    use vfio::Error as E;
    let hint = e.hint();
    let err = match &e {
        // the mdev was changed but its definition could not be written: a failed operation
        E::Refused {
            kind: ErrorKind::Define,
            ..
        } => AppError::failed(ErrorKind::Define, e.to_string()),
        // a host file aplaunch will not change as it stands (a definition with keys
        // mdevctl ignores, garbage): malformed input, like a malformed udev rule
        E::Refused {
            kind: ErrorKind::Malformed,
            ..
        } => AppError::new(ErrorKind::Malformed, Exit::Usage, e.to_string()),
        E::Refused { kind, .. } => AppError::refused(*kind, e.to_string()),
        E::MdevNotFound { .. } => AppError::refused(ErrorKind::NoMdev, e.to_string()),
        E::ModuleNotLoaded => AppError::refused(ErrorKind::VfioApModule, e.to_string()),
        E::AdapterOutOfRange { .. } | E::DomainOutOfRange { .. } => {
            AppError::refused(ErrorKind::Limits, e.to_string())
        }
        E::BadUuid { .. } | E::Mask(_) => AppError::usage(e.to_string()),
        E::Kernel(_) => AppError::failed(ErrorKind::Kernel, e.to_string()),
        E::LockTimeout { .. } => AppError::failed(ErrorKind::Lock, e.to_string()),
        E::Host(_) | E::Io { .. } | E::Format { .. } => {
            AppError::failed(ErrorKind::Io, e.to_string())
        }
        // an error vfio adds later: a failed operation until it is given its own kind
        _ => AppError::failed(ErrorKind::Io, e.to_string()),
    };
    match hint {
        Some(h) => err.with_hint(h),
        None => err,
    }
}

/// Validates an mdev UUID given on the command line: malformed input is a usage error
/// (exit 2) in every command.
pub fn valid_uuid(given: &str) -> Result<String, AppError> {
    vfio::mdev_uuid::normalize(given).map_err(app_error)
}

fn lock(root: &HostRoot, args: &LockArgs) -> Result<ApLock, AppError> {
    ApLock::acquire(root, Duration::from_secs(args.lock_timeout)).map_err(app_error)
}

fn notes(out: &Output, scan: &ApScan) {
    for p in &scan.problems {
        out.note(&format!("warning: {p}"));
    }
}

/// Runs an AP command.
pub fn run(global: &GlobalArgs, command: ApCommand, out: &Output) -> Result<Exit, AppError> {
    let root = super::host_root(global)?;
    match command {
        ApCommand::List => list(&root, out),
        ApCommand::Matrix => {
            let scan = ApScan::read(&root);
            let view = vfio::matrix_view::MatrixView::build(&scan);
            if out.json {
                out.json_document(
                    &serde_json::json!({"ok": true, "matrix": view, "problems": scan.problems}),
                );
            } else {
                notes(out, &scan);
                out.human(&view.render(out.colour));
            }
            Ok(Exit::Ok)
        }
        ApCommand::Masks(args) => masks(&root, args, out),
        ApCommand::Check { uuid } => check(&root, uuid, out),
        ApCommand::Mdev(cmd) => mdev(&root, cmd, out),
    }
}

#[derive(Serialize)]
struct QueueRow<'a> {
    #[serde(flatten)]
    queue: &'a vfio::scan::Queue,
    host_reserved: Option<bool>,
    mdevs: Vec<&'a str>,
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

fn list(root: &HostRoot, out: &Output) -> Result<Exit, AppError> {
    let scan = ApScan::read(root);
    let owners = scan.owners();
    let rows: Vec<QueueRow> = scan
        .queues
        .iter()
        .map(|q| QueueRow {
            queue: q,
            host_reserved: scan.host_reserved(q.apqn),
            mdevs: owners
                .get(&q.apqn)
                .map(|o| o.iter().map(|o| o.uuid.as_str()).collect())
                .unwrap_or_default(),
        })
        .collect();
    // one walk of /proc for every mdev's holders
    let uses = lifecycle::guest_uses(root, &scan);
    if out.json {
        let mdevs: Vec<serde_json::Value> = scan
            .mdevs
            .iter()
            .zip(&uses)
            .map(|(m, used)| {
                let mut v = serde_json::to_value(m).unwrap_or_default();
                v["in_use"] = serde_json::Value::Bool(used.in_use);
                v["holders"] = serde_json::to_value(&used.holders).unwrap_or_default();
                v["sysfs_path"] = serde_json::Value::String(m.sysfs_path());
                v
            })
            .collect();
        out.json_document(&serde_json::json!({
            "ok": true,
            "bus": scan.bus,
            "matrix_device": scan.matrix_device,
            "cards": scan.cards,
            "queues": rows,
            "mdevs": mdevs,
            "definitions": scan.definitions,
            "problems": scan.problems,
        }));
        return Ok(Exit::Ok);
    }
    notes(out, &scan);
    let mut s = String::new();
    if scan.bus.is_none() {
        s.push_str("no AP bus on this host (/sys/bus/ap is missing)\n");
    }
    if !scan.cards.is_empty() {
        s.push_str("CARD  TYPE    HWTYPE  ONLINE  DRIVER\n");
        for c in &scan.cards {
            let _ = writeln!(
                s,
                "{:<5} {:<7} {:<7} {:<7} {}",
                c.apid.to_string(),
                c.card_type.as_deref().unwrap_or("-"),
                c.hwtype.map(|h| h.to_string()).unwrap_or("-".into()),
                yes_no(c.online),
                c.driver.as_deref().unwrap_or("-")
            );
        }
        s.push('\n');
    }
    if !rows.is_empty() {
        s.push_str("QUEUE    DRIVER     STATUS      MDEV\n");
        for r in &rows {
            let status = match (&r.queue.status, r.queue.online) {
                (Some(st), _) => match st {
                    vfio::scan::QueueStatus::InUse => "in use".to_string(),
                    vfio::scan::QueueStatus::Assigned => "assigned".to_string(),
                    vfio::scan::QueueStatus::Unassigned => "unassigned".to_string(),
                    vfio::scan::QueueStatus::Other(o) => o.clone(),
                },
                (None, Some(true)) => "online".to_string(),
                (None, Some(false)) => "offline".to_string(),
                (None, None) => "-".to_string(),
            };
            let mdevs = if r.mdevs.is_empty() {
                "-".to_string()
            } else {
                r.mdevs.join(" ")
            };
            let _ = writeln!(
                s,
                "{:<8} {:<10} {:<11} {}",
                r.queue.apqn.to_string(),
                r.queue.driver.as_deref().unwrap_or("-"),
                status,
                mdevs
            );
        }
        s.push('\n');
    }
    let mut any = false;
    let header = format!(
        "{:<36}  {:<8} {:<6} {:<6} {}\n",
        "MDEV", "STATE", "START", "APQNS", "CONTROL"
    );
    for (m, used) in scan.mdevs.iter().zip(&uses) {
        if !any {
            s.push_str(&header);
            any = true;
        }
        let start = scan
            .definition(&m.uuid)
            .map(|d| d.start.as_str())
            .unwrap_or("-");
        let state = if used.in_use { "in use" } else { "active" };
        let controls: Vec<String> = m.control_domains.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(
            s,
            "{:<36}  {:<8} {:<6} {:<6} {}",
            m.uuid,
            state,
            start,
            m.matrix.len(),
            if controls.is_empty() {
                "-".into()
            } else {
                controls.join(" ")
            }
        );
    }
    for d in scan
        .definitions
        .iter()
        .filter(|d| scan.mdev(&d.uuid).is_none())
    {
        if !any {
            s.push_str(&header);
            any = true;
        }
        let controls: Vec<String> = d.control_domains.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(
            s,
            "{:<36}  {:<8} {:<6} {:<6} {}",
            d.uuid,
            "defined",
            d.start.as_str(),
            d.apqns().len(),
            if controls.is_empty() {
                "-".into()
            } else {
                controls.join(" ")
            }
        );
    }
    if !any && scan.matrix_device.is_some() {
        s.push_str("no vfio_ap mdevs\n");
    } else if scan.matrix_device.is_none() {
        s.push_str("vfio_ap is not loaded (no /sys/devices/vfio_ap/matrix)\n");
    }
    out.human(&s);
    Ok(Exit::Ok)
}

fn mask_line(name: &str, m: &vfio::Mask) -> String {
    let none = |r: String| if r.is_empty() { "none".to_string() } else { r };
    let clear = vfio::Mask::full().minus(m);
    format!(
        "{name:<7} {}\n        set:   {}\n        clear: {}\n",
        m.to_kernel_hex(),
        none(m.to_ranges()),
        none(clear.to_ranges())
    )
}

/// `ap masks` without a change: the active masks beside the persistent ones.
fn show_masks(root: &HostRoot, out: &Output) -> Result<Exit, AppError> {
    let scan = ApScan::read(root);
    let bus = scan.bus.clone().ok_or_else(|| {
        AppError::refused(
            ErrorKind::NoApBus,
            "this host has no AP bus (/sys/bus/ap is missing)",
        )
        .with_hint("load the ap module on an IBM Z host")
    })?;
    let rule = vfio::persistent::PersistentMasks::read(root).map_err(|e| {
        let path = root.path(vfio::persistent::RULE_FILE);
        AppError::new(ErrorKind::Malformed, Exit::Usage, e.to_string()).with_hint(format!(
            "fix or remove {}; `aplaunch ap masks --persistent --apmask=... --aqmask=...` rewrites it",
            path.display()
        ))
    })?;
    let persistent = rule.as_ref().map(|r| r.masks).unwrap_or_default();
    let at_boot = match (bus.apmask, bus.aqmask) {
        (Some(ap), Some(aq)) => Some(persistent.at_boot(ap, aq)),
        _ => None,
    };
    if out.json {
        out.json_document(&serde_json::json!({
            "ok": true,
            "apmask": bus.apmask, "apmask_ranges": bus.apmask.map(|m| m.to_ranges()),
            "aqmask": bus.aqmask, "aqmask_ranges": bus.aqmask.map(|m| m.to_ranges()),
            "persistent": {
                "rule": rule.as_ref().map(|_| root.path(vfio::persistent::RULE_FILE)),
                "apmask": persistent.apmask, "aqmask": persistent.aqmask,
                "at_boot": at_boot.map(|(ap, aq)| serde_json::json!({"apmask": ap, "aqmask": aq})),
                "skipped_lines": rule.as_ref().map(|r| r.skipped.clone()).unwrap_or_default(),
            },
            "ap_max_adapter_id": bus.max_adapter_id, "ap_max_domain_id": bus.max_domain_id,
            "problems": scan.problems,
        }));
        return Ok(Exit::Ok);
    }
    notes(out, &scan);
    let mut s = String::from("active (sysfs):\n");
    if let Some(m) = &bus.apmask {
        s.push_str(&mask_line("apmask", m));
    }
    if let Some(m) = &bus.aqmask {
        s.push_str(&mask_line("aqmask", m));
    }
    match &rule {
        None => s.push_str("persistent: no /etc/udev/rules.d/41-ap.rules: the active masks stay as they are at boot\n"),
        Some(r) => {
            s.push_str("persistent (/etc/udev/rules.d/41-ap.rules, applied at boot):\n");
            for (name, m) in [("apmask", r.masks.apmask), ("aqmask", r.masks.aqmask)] {
                match m {
                    Some(m) => s.push_str(&mask_line(name, &m)),
                    None => {
                        let _ = writeln!(s, "{name:<7} not set by the rule (stays as active)");
                    }
                }
            }
            for line in &r.skipped {
                let _ = writeln!(s, "warning: the rule has a line udev syntax does not allow (skipped, as ap-check does): {line}");
            }
        }
    }
    if let (Some((ap, aq)), Some(a0), Some(q0)) = (at_boot, bus.apmask, bus.aqmask) {
        if ap != a0 || aq != q0 {
            s.push_str("note: the masks at boot differ from the active ones\n");
        }
    }
    let _ = writeln!(
        s,
        "limits  ap_max_adapter_id {}, ap_max_domain_id {}",
        bus.max_adapter_id
            .map(|v| v.to_string())
            .unwrap_or("?".into()),
        bus.max_domain_id
            .map(|v| v.to_string())
            .unwrap_or("?".into())
    );
    s.push_str("\nA queue a.d is reserved for the host's crypto drivers when apmask bit a and aqmask bit d are\nboth set; every other queue can only be bound to vfio_ap.\n");
    out.human(&s);
    Ok(Exit::Ok)
}

/// `ap masks --persistent`: the rule chzdev -p writes.
fn persistent_masks(
    root: &HostRoot,
    args: &MasksArgs,
    ap: Option<&MaskSpec>,
    aq: Option<&MaskSpec>,
    out: &Output,
) -> Result<Exit, AppError> {
    let guard = lock(root, &args.lock)?;
    let scan = ApScan::read(root);
    let change = vfio::persistent::change(root, &scan, &guard, ap, aq, args.dry_run).map_err(
        |e| match e {
            vfio::Error::Format { .. } => {
                AppError::new(ErrorKind::Malformed, Exit::Usage, e.to_string())
                    .with_hint("fix or remove the rule file, then run this again")
            }
            e => app_error(e),
        },
    )?;
    drop(guard);
    if out.json {
        out.json_document(
            &serde_json::json!({"ok": true, "applied": change.written, "persistent": change}),
        );
        return Ok(Exit::Ok);
    }
    let mut s = String::from("persistent (/etc/udev/rules.d/41-ap.rules, applied at boot):\n");
    for (name, m) in [
        ("apmask", change.after.apmask),
        ("aqmask", change.after.aqmask),
    ] {
        match m {
            Some(m) => s.push_str(&mask_line(name, &m)),
            None => {
                let _ = writeln!(s, "{name:<7} not set by the rule (stays as active)");
            }
        }
    }
    if args.dry_run {
        s.push_str("(dry run: nothing written)\n");
    } else if change.written {
        let _ = writeln!(s, "wrote {}", change.path.display());
    } else {
        s.push_str("nothing to change\n");
    }
    out.human(&s);
    Ok(Exit::Ok)
}

fn masks(root: &HostRoot, args: MasksArgs, out: &Output) -> Result<Exit, AppError> {
    let parse = |s: &Option<String>, which: &str| -> Result<Option<MaskSpec>, AppError> {
        s.as_deref()
            .map(|s| {
                MaskSpec::parse(s).map_err(|e| {
                    AppError::usage(format!("--{which}: {e}")).with_hint(
                        "give a list (0-4,0x7), changes (+5, -4-8) or 0x and 64 hex digits (bit 0 first); numbers read like chzdev: 0x hex, a leading 0 octal",
                    )
                })
            })
            .transpose()
    };
    let ap = parse(&args.apmask, "apmask")?;
    let aq = parse(&args.aqmask, "aqmask")?;
    if ap.is_none() && aq.is_none() {
        if args.persistent {
            return Err(
                AppError::usage("--persistent needs --apmask and/or --aqmask")
                    .with_hint("aplaunch ap masks --persistent --apmask=-5"),
            );
        }
        return show_masks(root, out);
    }
    if args.persistent {
        return persistent_masks(root, &args, ap.as_ref(), aq.as_ref(), out);
    }
    let writer = HostWriter::new(root);
    let result = if args.dry_run {
        let scan = ApScan::read(root);
        let p = lifecycle::preview_masks(&scan, ap.as_ref(), aq.as_ref()).map_err(app_error)?;
        if let Some(refusal) = p.refusal() {
            return Err(app_error(refusal));
        }
        p
    } else {
        let guard = lock(root, &args.lock)?;
        lifecycle::apply_masks(root, &writer, &guard, ap.as_ref(), aq.as_ref())
            .map_err(app_error)?
    };
    if out.json {
        out.json_document(
            &serde_json::json!({"ok": true, "applied": !args.dry_run, "change": result}),
        );
        return Ok(Exit::Ok);
    }
    let mut s = String::new();
    s.push_str(&mask_line("apmask", &result.new_apmask));
    s.push_str(&mask_line("aqmask", &result.new_aqmask));
    let fmt = |v: &[vfio::Apqn]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|q| q.describe())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(s, "to the host drivers: {}", fmt(&result.to_host));
    let _ = writeln!(s, "to vfio_ap:          {}", fmt(&result.to_vfio));
    if args.dry_run {
        s.push_str("(dry run: nothing written)\n");
    } else if result.writes.is_empty() {
        s.push_str("nothing to change\n");
    } else {
        for w in &result.writes {
            let _ = writeln!(s, "wrote {w}");
        }
    }
    for w in &result.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    out.human(&s);
    Ok(Exit::Ok)
}

#[derive(Serialize)]
struct MdevReport {
    uuid: String,
    #[serde(flatten)]
    report: Report,
}

fn check(root: &HostRoot, uuid: Option<String>, out: &Output) -> Result<Exit, AppError> {
    let scan = ApScan::read_for_checks(root);
    let module = vfio::checks::module_loaded(root);
    if let Some(uuid) = uuid {
        let uuid = valid_uuid(&uuid)?;
        let mut report = Report::new();
        report.push(module);
        report.extend(vfio::checks::mdev_checks_with(root, &scan, &uuid));
        if out.json {
            out.json_document(&report);
        } else {
            notes(out, &scan);
            out.human(&report.render(out.colour));
            let failed = report.failures().count();
            if failed > 0 {
                out.human(&format!("\n{failed} check(s) failed\n"));
            }
        }
        return Ok(if report.ok { Exit::Ok } else { Exit::Negative });
    }
    let mut head = Report::new();
    head.push(module);
    let reports: Vec<MdevReport> = vfio::checks::all_mdev_checks(root, &scan)
        .into_iter()
        .map(|(uuid, checks)| {
            let mut report = Report::new();
            report.extend(checks);
            MdevReport { uuid, report }
        })
        .collect();
    let ok = head.ok && reports.iter().all(|r| r.report.ok);
    if out.json {
        out.json_document(&serde_json::json!({"ok": ok, "checks": head.checks, "mdevs": reports}));
    } else {
        notes(out, &scan);
        let mut s = head.render(out.colour);
        if reports.is_empty() {
            s.push_str("\nno vfio_ap mdevs (active or defined) to check\n");
        }
        for r in &reports {
            let _ = write!(s, "\nmdev {}\n{}", r.uuid, r.report.render(out.colour));
        }
        let failed: usize = head.failures().count()
            + reports
                .iter()
                .map(|r| r.report.failures().count())
                .sum::<usize>();
        if failed > 0 {
            let _ = write!(s, "\n{failed} check(s) failed\n");
        }
        out.human(&s);
    }
    Ok(if ok { Exit::Ok } else { Exit::Negative })
}

fn apqns(v: &[vfio::Apqn]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter()
            .map(|q| q.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn print_outcome(out: &Output, what: &str, o: &Outcome) {
    if out.json {
        out.json_document(&serde_json::json!({"ok": true, "action": what, "result": o}));
        return;
    }
    let mut s = format!("{what} mdev {}\n", o.uuid);
    for w in &o.writes {
        let _ = writeln!(s, "  wrote {w}");
    }
    if let Some(d) = &o.definition {
        let _ = writeln!(s, "  definition {d}");
    }
    if o.live {
        let _ = writeln!(s, "  changed live: a guest is running with this mdev");
    }
    if let (Some(b), Some(a)) = (&o.guest_matrix_before, &o.guest_matrix_after) {
        let _ = writeln!(s, "  guest matrix before: {}", apqns(b));
        let _ = writeln!(s, "  guest matrix after:  {}", apqns(a));
    }
    out.human(&s);
    for w in &o.warnings {
        out.note(&format!("warning: {w}"));
    }
}

fn mdev(root: &HostRoot, cmd: MdevCommand, out: &Output) -> Result<Exit, AppError> {
    let writer = HostWriter::new(root);
    match cmd {
        MdevCommand::Create {
            uuid,
            ids,
            define,
            auto,
            force,
            lock: l,
        } => {
            let req = CreateRequest {
                uuid,
                adapters: ids.adapters,
                domains: ids.domains,
                control_domains: ids.control_domains,
                define: define.then_some(if auto { Start::Auto } else { Start::Manual }),
                force,
            };
            let guard = lock(root, &l)?;
            let o = lifecycle::create(root, &writer, &guard, &req).map_err(app_error)?;
            print_outcome(out, "created", &o);
            Ok(Exit::Ok)
        }
        MdevCommand::Assign {
            uuid,
            ids,
            define,
            force,
            lock: l,
        } => change(
            root,
            &writer,
            &uuid,
            delta(ids, define, force),
            &l,
            true,
            out,
        ),
        MdevCommand::Unassign {
            uuid,
            ids,
            define,
            force,
            lock: l,
        } => change(
            root,
            &writer,
            &uuid,
            delta(ids, define, force),
            &l,
            false,
            out,
        ),
        MdevCommand::Remove {
            uuid,
            undefine,
            unplug,
            qmp,
            force,
            timeout,
            lock: l,
        } => {
            let uuid = valid_uuid(&uuid)?;
            let unplugged = if unplug {
                unplug_first(root, &uuid, qmp, timeout, out)?
            } else {
                None
            };
            let req = RemoveRequest {
                uuid,
                force,
                undefine,
                timeout,
            };
            // the lock is held for the removal only, and released on every return
            let guard = lock(root, &l)?;
            let o = lifecycle::remove(root, &writer, &guard, &req).map_err(app_error)?;
            drop(guard);
            if out.json {
                out.json_document(&serde_json::json!({"ok": true, "action": "removed", "result": o, "unplugged": unplugged}));
            } else {
                print_outcome(out, "removed", &o);
            }
            Ok(Exit::Ok)
        }
        MdevCommand::Show { uuid } => {
            let s = lifecycle::show(root, &uuid).map_err(app_error)?;
            if out.json {
                let nodes = s.active.as_ref().map(|m| {
                    serde_json::json!({
                        "sysfs_path": m.sysfs_path(),
                        "group_node": vfio::device::group_node(m).map(|p| format!("/{}", p.display())),
                        "cdev_node": vfio::device::cdev_node(m).map(|p| format!("/{}", p.display())),
                    })
                });
                out.json_document(&serde_json::json!({"ok": true, "mdev": s, "nodes": nodes}));
                return Ok(Exit::Ok);
            }
            let mut t = String::new();
            let state = match (&s.active, s.in_use) {
                (Some(_), true) => "active, in use by a guest",
                (Some(_), false) => "active, not in use",
                (None, _) => "defined, not active",
            };
            let _ = writeln!(t, "mdev {}: {state}", s.uuid);
            for h in &s.holders {
                let _ = writeln!(t, "  held by       {}", h.describe());
            }
            if let Some(m) = &s.active {
                let _ = writeln!(t, "  sysfs         {}", m.sysfs_path());
                let _ = writeln!(
                    t,
                    "  type          {}",
                    m.mdev_type.as_deref().unwrap_or("-")
                );
                let _ = writeln!(t, "  matrix        {}", apqns(&m.matrix));
                if let Some(g) = &m.guest_matrix {
                    let _ = writeln!(t, "  guest matrix  {}", apqns(g));
                }
                let controls: Vec<String> =
                    m.control_domains.iter().map(|d| d.to_string()).collect();
                let _ = writeln!(
                    t,
                    "  control       {}",
                    if controls.is_empty() {
                        "none".into()
                    } else {
                        controls.join(" ")
                    }
                );
                if let Some(g) = vfio::device::group_node(m) {
                    let _ = writeln!(t, "  vfio group    /{}", g.display());
                }
                if let Some(c) = vfio::device::cdev_node(m) {
                    let _ = writeln!(t, "  vfio cdev     /{}", c.display());
                }
            }
            if let Some(d) = &s.definition {
                let ids = |v: &[Apqi]| {
                    v.iter()
                        .map(|d| d.0.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let _ = writeln!(
                    t,
                    "  definition    /etc/mdevctl.d/matrix/{} (start {}): adapters {}, domains {}, control {}",
                    d.file_name,
                    d.start.as_str(),
                    d.adapters.iter().map(|a| a.0.to_string()).collect::<Vec<_>>().join(" "),
                    ids(&d.domains),
                    ids(&d.control_domains)
                );
                if !d.unknown_keys.is_empty() {
                    let _ = writeln!(
                        t,
                        "  warning       keys mdevctl ignores: {}",
                        d.unknown_keys.join(", ")
                    );
                }
                for w in &d.warnings {
                    let _ = writeln!(t, "  warning       {w}");
                }
            }
            out.human(&t);
            Ok(Exit::Ok)
        }
    }
}

/// `remove --unplug`: `device_del` of the mdev's vfio-ap device through the guest's QMP
/// socket (given, or the one in the command line of the QEMU holding the mdev), waiting
/// for DEVICE_DELETED. Returns the device unplugged, none when the guest did not have it.
fn unplug_first(
    root: &HostRoot,
    uuid: &str,
    qmp: Option<PathBuf>,
    timeout: Duration,
    out: &Output,
) -> Result<Option<String>, AppError> {
    let sock = match qmp {
        Some(s) => s,
        None => {
            let holders = vfio::mdev::MdevInfo::read(root, uuid)
                .map(|m| vfio::holders::find(root, &m))
                .map_err(app_error)?;
            let Some(sock) = holders.iter().find_map(|h| h.qmp.clone()) else {
                let who = if holders.is_empty() {
                    "no process in /proc holds it".to_string()
                } else {
                    holders
                        .iter()
                        .map(|h| h.describe())
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                return Err(AppError::usage(format!(
                    "--unplug: no QMP socket found for the guest holding mdev {uuid} ({who})"
                ))
                .with_hint(format!(
                    "give the path of the guest's QMP socket after --qmp: aplaunch ap mdev remove {uuid} --unplug --qmp followed by that path; `aplaunch launch` makes it /run/aplaunch/<name>.qmp for root unless its --qmp chose another path"
                )));
            };
            // a path of the host's: under a recorded host root it lies inside that root
            root.path(sock.trim_start_matches('/'))
        }
    };
    let mut q = super::qmp::connect(&sock, timeout)?;
    match hotplug::unplug(&mut q, &UnplugTarget::Mdev(uuid.to_string()), timeout) {
        Ok(u) => {
            let what = format!(
                "unplugged {} from the guest (QMP socket {})",
                u.device.handle(),
                sock.display()
            );
            out.note(&what);
            Ok(Some(what))
        }
        Err(hotplug::Error::NotFound { .. }) | Err(hotplug::Error::Gone { .. }) => {
            out.note(&format!(
                "the guest behind {} has no vfio-ap device for mdev {uuid}; removing it",
                sock.display()
            ));
            Ok(None)
        }
        Err(e) => Err(super::qmp::hotplug_error(e)),
    }
}

fn delta(ids: Ids, define: bool, force: bool) -> MatrixChange {
    MatrixChange {
        adapters: ids.adapters,
        domains: ids.domains,
        control_domains: ids.control_domains,
        define,
        force,
    }
}

fn change(
    root: &HostRoot,
    writer: &HostWriter,
    uuid: &str,
    delta: MatrixChange,
    l: &LockArgs,
    assign: bool,
    out: &Output,
) -> Result<Exit, AppError> {
    let guard = lock(root, l)?;
    let o = lifecycle::change(root, writer, &guard, uuid, &delta, assign).map_err(app_error)?;
    print_outcome(
        out,
        if assign {
            "assigned to"
        } else {
            "unassigned from"
        },
        &o,
    );
    Ok(Exit::Ok)
}
