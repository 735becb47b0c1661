//! Changing the AP configuration: mdev create / assign / unassign / remove, mdevctl
//! definitions and the bus masks.
//!
//! Every change is validated against one scan BEFORE anything is written (ids within the
//! host's limits, no APQN of another mdev, none reserved for the host drivers), must be
//! made under the [`ApLock`], and is rolled back when a write fails midway: a failed create
//! writes `1` to `remove`, a failed assign/unassign undoes the writes already made. Every
//! errno the kernel answers becomes a message naming the APQN, id, mdev or mask.

use crate::ap::{Apid, Apqi, Apqn};
use crate::error::{Error, KernelError, Result};
use crate::holders::Holder;
use crate::lock::ApLock;
use crate::mask::{Mask, MaskSpec};
use crate::mdev::{ApConfig, MdevInfo, MATRIX_DIR, MDEV_TYPE, TYPE_DIR};
use crate::mdev_uuid;
use crate::mdevctl::{self, Definition, IdKind, Start};
use crate::scan::{clashes, ApScan, Clash};
use crate::write::{errno_name, SysfsWriter};
use host::{ErrorKind, HostRoot};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// The UUID; a random v4 UUID when `None`.
    pub uuid: Option<String>,
    /// Adapters to assign, in order.
    pub adapters: Vec<Apid>,
    /// Usage domains to assign, in order.
    pub domains: Vec<Apqi>,
    /// Control domains to assign, in order.
    pub control_domains: Vec<Apqi>,
    /// Also write an mdevctl definition, started at boot (`Auto`) or not (`Manual`).
    pub define: Option<Start>,
    /// Replace an existing definition.
    pub force: bool,
}

/// What a successful change did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// The mdev.
    pub uuid: String,
    /// The writes made, in order, as `path=value`.
    pub writes: Vec<String>,
    /// The definition written or removed, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// The guest's matrix before the change (for a running guest on a newer kernel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_matrix_before: Option<Vec<Apqn>>,
    /// The guest's matrix after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_matrix_after: Option<Vec<Apqn>>,
    /// Whether the change went to a running guest.
    pub live: bool,
    /// Things worth knowing that did not stop the change.
    pub warnings: Vec<String>,
}

fn matrix_attr(uuid: &str, attr: &str) -> String {
    format!("{MATRIX_DIR}/{uuid}/{attr}")
}

fn cartesian(adapters: &[Apid], domains: &[Apqi]) -> Vec<Apqn> {
    let mut v = Vec::new();
    for a in adapters {
        for d in domains {
            v.push(Apqn::new(a.0, d.0));
        }
    }
    v
}

/// The `aplaunch ap masks` command that gives this APQN to vfio_ap.
pub fn free_command(apqn: Apqn) -> String {
    format!(
        "aplaunch ap masks --apmask=-{} (frees adapter {} for vfio_ap), or aplaunch ap masks --aqmask=-{} (frees domain {})",
        apqn.apid.0, apqn.apid.0, apqn.apqi.0, apqn.apqi.0
    )
}

/// The `aplaunch ap mdev unassign` commands that take this APQN away from mdev `uuid`.
pub fn unassign_command(uuid: &str, apqn: Apqn) -> String {
    format!(
        "aplaunch ap mdev unassign {uuid} --domain {} (or --adapter {})",
        apqn.apqi.0, apqn.apid.0
    )
}

fn reserved_message(apqn: Apqn) -> String {
    format!(
        "APQN {} is reserved for the host's crypto drivers by the AP bus masks (apmask bit {} and aqmask bit {} are both set)",
        apqn.describe(),
        apqn.apid.0,
        apqn.apqi.0
    )
}

fn check_limits(scan: &ApScan, adapters: &[Apid], domains: &[Apqi]) -> Result<()> {
    let bus = scan.bus.as_ref();
    if let Some(max) = bus.and_then(|b| b.max_adapter_id) {
        if let Some(a) = adapters.iter().find(|a| a.0 > max) {
            return Err(Error::AdapterOutOfRange { id: *a, max });
        }
    }
    if let Some(max) = bus.and_then(|b| b.max_domain_id) {
        if let Some(d) = domains.iter().find(|d| d.0 > max) {
            return Err(Error::DomainOutOfRange { id: *d, max });
        }
    }
    Ok(())
}

/// Refuses APQNs that belong to another mdev (active, or an autostart definition when
/// `autostart`) or are reserved for the host drivers. Returns warnings for APQNs in other
/// inactive definitions.
fn check_apqns(scan: &ApScan, uuid: &str, apqns: &[Apqn], autostart: bool) -> Result<Vec<String>> {
    let owners = scan.owners();
    let mut conflicts = Vec::new();
    let mut first: Option<(Apqn, String)> = None;
    let mut warnings = Vec::new();
    for (q, o, clash) in clashes(&owners, apqns, uuid, autostart) {
        let held = match clash {
            Clash::Active => "already in use by mdev",
            Clash::Autostart => "is in the autostart definition of mdev",
            Clash::Inactive => {
                warnings.push(format!(
                    "APQN {} is also in the {} definition of mdev {} (not active)",
                    q.describe(),
                    if o.autostart { "autostart" } else { "manual" },
                    o.uuid
                ));
                continue;
            }
        };
        first.get_or_insert_with(|| (q, o.uuid.clone()));
        conflicts.push(format!("APQN {} {held} {}", q.describe(), o.uuid));
    }
    if let Some((q, other)) = first {
        return Err(Error::Refused {
            kind: ErrorKind::Conflict,
            message: conflicts.join("; "),
            hint: format!(
                "an APQN may belong to one mdev only: take APQN {} away from mdev {other} first ({}) or choose other adapters/domains; `aplaunch ap matrix` shows who holds what",
                q.describe(),
                unassign_command(&other, q)
            ),
        });
    }
    let reserved: Vec<Apqn> = apqns
        .iter()
        .filter(|q| scan.host_reserved(**q) == Some(true))
        .copied()
        .collect();
    if let Some(first) = reserved.first() {
        let list: Vec<String> = reserved.iter().map(|q| q.describe()).collect();
        return Err(Error::Refused {
            kind: ErrorKind::Masks,
            message: format!(
                "APQN {} not allowed for vfio_ap: {}",
                list.join(", "),
                reserved_message(*first)
            ),
            hint: free_command(*first),
        });
    }
    Ok(warnings)
}

/// The attribute a write went to and what it was about, for errno messages.
#[derive(Debug, Clone, Copy)]
enum Target {
    Create,
    Remove,
    Adapter(Apid, bool),
    Domain(Apqi, bool),
    Control(Apqi, bool),
    ApConfig,
}

/// Turns a refused write into a message naming what was at fault.
fn explain(
    root: &HostRoot,
    writer: &dyn SysfsWriter,
    uuid: &str,
    target: Target,
    path: &str,
    value: &[u8],
    source: &std::io::Error,
) -> Error {
    let errno = source.raw_os_error();
    let e = errno.unwrap_or(0);
    let shown = String::from_utf8_lossy(value).trim_end().to_string();
    let name = errno.map(errno_name).unwrap_or_else(|| "error".into());
    let what = match target {
        Target::Create => format!("creating mdev {uuid}"),
        Target::Remove => format!("removing mdev {uuid}"),
        Target::Adapter(a, true) => format!("assigning {} to mdev {uuid}", a.describe()),
        Target::Adapter(a, false) => format!("unassigning {} from mdev {uuid}", a.describe()),
        Target::Domain(d, true) => format!("assigning {} to mdev {uuid}", d.describe()),
        Target::Domain(d, false) => format!("unassigning {} from mdev {uuid}", d.describe()),
        Target::Control(d, true) => format!("assigning control {} to mdev {uuid}", d.describe()),
        Target::Control(d, false) => {
            format!("unassigning control {} from mdev {uuid}", d.describe())
        }
        Target::ApConfig => format!("writing ap_config of mdev {uuid}"),
    };
    let scan = writer.scan(root);
    let mdev = scan.mdev(uuid);
    // the matrix the write tried to reach
    let (mut adapters, mut domains): (Vec<Apid>, Vec<Apqi>) = mdev
        .map(|m| (m.adapters.clone(), m.domains.clone()))
        .unwrap_or_default();
    match target {
        Target::Adapter(a, true) if !adapters.contains(&a) => adapters.push(a),
        Target::Domain(d, true) if !domains.contains(&d) => domains.push(d),
        _ => {}
    }
    let tried = cartesian(&adapters, &domains);
    let (message, hint) = match (e, target) {
        (libc::EADDRINUSE, _) => {
            let owners = scan.owners();
            let held: Vec<String> = tried
                .iter()
                .filter_map(|q| {
                    owners
                        .get(q)
                        .and_then(|o| o.iter().find(|o| o.active && o.uuid != uuid))
                        .map(|o| format!("APQN {} already belongs to mdev {}", q.describe(), o.uuid))
                })
                .collect();
            let detail = if held.is_empty() {
                "an APQN of the new matrix already belongs to another mdev (the kernel log names it)".to_string()
            } else {
                held.join("; ")
            };
            (
                format!("{what} failed: {detail} ({name})"),
                "unassign it from the other mdev first, or choose other adapters/domains; `aplaunch ap matrix` shows who holds what".to_string(),
            )
        }
        (libc::EADDRNOTAVAIL, _) => {
            let reserved: Vec<Apqn> = tried
                .iter()
                .filter(|q| scan.host_reserved(**q) == Some(true))
                .copied()
                .collect();
            match reserved.first() {
                Some(first) => (
                    format!(
                        "{what} failed: {} ({name})",
                        reserved
                            .iter()
                            .map(|q| reserved_message(*q))
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    free_command(*first),
                ),
                None => (
                    format!("{what} failed: the kernel says the APQNs are not available to vfio_ap ({name}); older kernels answer this when no queue of that adapter or domain is bound to vfio_ap"),
                    "check with `aplaunch ap list` that the queues exist and are bound to vfio_ap (apmask/aqmask must leave them to vfio_ap)".to_string(),
                ),
            }
        }
        (libc::ENODEV, Target::Create) => (
            format!("{what} failed: the vfio_ap-passthrough type is gone ({name})"),
            "check that the vfio_ap module is loaded: `modprobe vfio_ap`".to_string(),
        ),
        (libc::ENODEV, _) => {
            let bus = scan.bus.as_ref();
            let limits = format!(
                "ap_max_adapter_id {}, ap_max_domain_id {}",
                bus.and_then(|b| b.max_adapter_id).map(|v| v.to_string()).unwrap_or("?".into()),
                bus.and_then(|b| b.max_domain_id).map(|v| v.to_string()).unwrap_or("?".into())
            );
            (
                format!("{what} failed: the id is above this system's AP limits ({limits}) ({name})"),
                "use ids within the limits shown by `aplaunch ap masks`".to_string(),
            )
        }
        (libc::EBUSY, _) => (
            format!("{what} failed: a guest is running with mdev {uuid} and this kernel cannot change a running guest's matrix ({name}: vfio_ap before Linux 6.0 refuses while the mdev is attached to a KVM)"),
            format!("stop the guest, change mdev {uuid}, start the guest again; kernels from 6.0 on update a running guest"),
        ),
        (libc::EEXIST, Target::Create) => (
            format!("{what} failed: an mdev with UUID {uuid} already exists ({name})"),
            "choose another UUID, or leave out --uuid for a random one".to_string(),
        ),
        (libc::EUSERS, Target::Create) => (
            format!("{what} failed: vfio_ap has no mdev instances left (available_instances is 0) ({name})"),
            no_instances_hint(&scan),
        ),
        (libc::EINVAL, Target::Create) => (
            format!("{what} failed: the kernel refused {shown:?} as a UUID ({name})"),
            "give the UUID as 8-4-4-4-12 hex digits".to_string(),
        ),
        (libc::EINVAL, _) | (libc::ERANGE, _) => (
            format!("{what} failed: the kernel refused the value {shown:?} written to {path} ({name})"),
            "ids are numbers 0..255; aplaunch writes them in decimal".to_string(),
        ),
        (libc::ENOENT, _) => (
            format!("{what} failed: {path} does not exist ({name}); the mdev went away or this kernel lacks the attribute"),
            format!("check the mdev with `aplaunch ap mdev show {uuid}`"),
        ),
        (libc::EACCES, _) | (libc::EPERM, _) => (
            format!("{what} failed: permission denied writing {path} ({name})"),
            "run as root".to_string(),
        ),
        _ => (
            format!("{what} failed: writing {shown:?} to {path}: {source}"),
            "see the kernel log (dmesg) for the reason".to_string(),
        ),
    };
    Error::Kernel(Box::new(KernelError {
        attribute: path.to_string(),
        value: shown,
        errno,
        message,
        hint,
        rollback: None,
    }))
}

fn with_rollback(mut e: Error, note: String) -> Error {
    if let Error::Kernel(k) = &mut e {
        k.message.push_str(&format!("; {note}"));
        k.rollback = Some(note);
    }
    e
}

struct Writes<'a> {
    root: &'a HostRoot,
    writer: &'a dyn SysfsWriter,
    uuid: String,
    done: Vec<String>,
}

impl Writes<'_> {
    fn write(&mut self, target: Target, path: String, value: String) -> Result<()> {
        match self.writer.write(&path, value.as_bytes()) {
            Ok(()) => {
                self.done.push(format!("{path}={value}"));
                Ok(())
            }
            Err(source) => Err(explain(
                self.root,
                self.writer,
                &self.uuid,
                target,
                &path,
                value.as_bytes(),
                &source,
            )),
        }
    }
}

/// How long the `remove` that undoes a failed `create` may take: nobody should hold an mdev
/// that was created a moment ago under the AP lock, so a longer wait means something is
/// wrong and the error says so rather than hang.
const ROLLBACK_REMOVE_BOUND: Duration = Duration::from_secs(10);

/// How to free an mdev instance: remove one of the mdevs that exist (named), or, when the
/// scan saw none, the ones `aplaunch ap list` shows.
fn no_instances_hint(scan: &ApScan) -> String {
    let mdevs: Vec<&str> = scan.mdevs.iter().map(|m| m.uuid.as_str()).collect();
    format!(
        "remove mdevs that are no longer needed (`aplaunch ap mdev remove` with one of {})",
        if mdevs.is_empty() {
            "the mdevs `aplaunch ap list` shows".to_string()
        } else {
            mdevs.join(", ")
        }
    )
}

/// Creates an mdev: validates everything against one scan, then writes the UUID to
/// `create` and each assignment in order (adapters, domains, control domains, decimal);
/// on any failure writes `1` to `remove`. With `define`, writes the mdevctl definition
/// afterwards (a failure there also removes the mdev).
pub fn create(
    root: &HostRoot,
    writer: &dyn SysfsWriter,
    _lock: &ApLock,
    req: &CreateRequest,
) -> Result<Outcome> {
    let uuid = match &req.uuid {
        Some(u) => mdev_uuid::normalize(u)?,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let scan = writer.scan(root);
    let Some(dev) = &scan.matrix_device else {
        return Err(Error::ModuleNotLoaded);
    };
    if scan.mdev(&uuid).is_some() {
        return Err(Error::Refused {
            kind: ErrorKind::Exists,
            message: format!("mdev {uuid} already exists"),
            hint: "choose another UUID, or leave out --uuid for a random one".into(),
        });
    }
    if dev.available_instances == Some(0) {
        return Err(Error::Refused {
            kind: ErrorKind::Instances,
            message: "vfio_ap has no mdev instances left (available_instances is 0)".into(),
            hint: no_instances_hint(&scan),
        });
    }
    if req.adapters.is_empty() || req.domains.is_empty() {
        return Err(Error::Refused {
            kind: ErrorKind::Matrix,
            message: "an mdev for a guest needs at least one adapter and one usage domain".into(),
            hint: "give --adapter A and --domain D (control domains alone are not usable)".into(),
        });
    }
    let mut all_domains = req.domains.clone();
    all_domains.extend(req.control_domains.iter().copied());
    check_limits(&scan, &req.adapters, &all_domains)?;
    let apqns = cartesian(&req.adapters, &req.domains);
    let warnings = check_apqns(&scan, &uuid, &apqns, req.define == Some(Start::Auto))?;
    if req.define == Some(Start::Auto) {
        crate::persistent::refuse_reserved_at_boot(root, &scan, &apqns)?;
        // as ap-check compares it with the other autostart definitions (what they assign
        // counts, also ids a later unassign_* takes away)
        let def = Definition::new(
            &uuid,
            Start::Auto,
            &req.adapters,
            &req.domains,
            &req.control_domains,
        );
        check_definition_at_boot(root, &scan, &uuid, &def, true)?;
    }
    if req.define.is_some() && !req.force {
        // every file mdevctl reads as its definition, also one that cannot be parsed
        let files = mdevctl::definition_files(root, &uuid)?;
        if let Some(file) = files.first() {
            return Err(Error::Refused {
                kind: ErrorKind::Exists,
                message: format!(
                    "a definition of mdev {uuid} already exists: {}",
                    root.path(mdevctl::definition_path(file)).display()
                ),
                hint: "pass --force to replace it".into(),
            });
        }
    }
    let mut w = Writes {
        root,
        writer,
        uuid: uuid.clone(),
        done: Vec::new(),
    };
    w.write(Target::Create, format!("{TYPE_DIR}/create"), uuid.clone())?;
    let mut steps: Vec<(Target, &str, u8)> = Vec::new();
    steps.extend(
        req.adapters
            .iter()
            .map(|a| (Target::Adapter(*a, true), "assign_adapter", a.0)),
    );
    steps.extend(
        req.domains
            .iter()
            .map(|d| (Target::Domain(*d, true), "assign_domain", d.0)),
    );
    steps.extend(
        req.control_domains
            .iter()
            .map(|d| (Target::Control(*d, true), "assign_control_domain", d.0)),
    );
    let remove = |w: &mut Writes, e: Error| -> Error {
        // bounded like every `remove` (5.15 on, it waits for whoever opened the new mdev)
        let note = match w.writer.write_bounded(
            &matrix_attr(&uuid, "remove"),
            b"1",
            ROLLBACK_REMOVE_BOUND,
        ) {
            Ok(()) => {
                w.done.push(format!("{}=1", matrix_attr(&uuid, "remove")));
                format!("mdev {uuid} was removed again, nothing was left behind")
            }
            Err(re) => format!(
                "removing mdev {uuid} again ALSO failed ({re}): remove it by hand with `aplaunch ap mdev remove {uuid}`"
            ),
        };
        with_rollback(e, note)
    };
    for (target, attr, id) in steps {
        if let Err(e) = w.write(target, matrix_attr(&uuid, attr), id.to_string()) {
            return Err(remove(&mut w, e));
        }
    }
    let mut outcome = Outcome {
        uuid: uuid.clone(),
        warnings,
        ..Outcome::default()
    };
    if let Some(start) = req.define {
        let def = Definition::new(
            &uuid,
            start,
            &req.adapters,
            &req.domains,
            &req.control_domains,
        );
        match mdevctl::write_definition(root, &def, req.force) {
            Ok(p) => outcome.definition = Some(p.display().to_string()),
            Err(e) => {
                let msg = e.to_string();
                let ke = Error::Kernel(Box::new(KernelError {
                    attribute: mdevctl::definition_path(&uuid),
                    value: String::new(),
                    errno: None,
                    message: format!("writing the definition of mdev {uuid} failed: {msg}"),
                    hint: e
                        .hint()
                        .unwrap_or_else(|| "check that /etc/mdevctl.d is writable".into()),
                    rollback: None,
                }));
                return Err(remove(&mut w, ke));
            }
        }
    }
    outcome.writes = w.done;
    Ok(outcome)
}

/// Which ids to assign or unassign.
#[derive(Debug, Clone, Default)]
pub struct MatrixChange {
    /// Adapters.
    pub adapters: Vec<Apid>,
    /// Usage domains.
    pub domains: Vec<Apqi>,
    /// Control domains.
    pub control_domains: Vec<Apqi>,
    /// After the change, (re)write the mdevctl definition with the new matrix (keeping its
    /// `start`, `manual` for a new one).
    pub define: bool,
    /// On a kernel without `guest_matrix` (before 6.0), write even though the mdev looks
    /// held, and let the kernel answer: there a process in /proc with the VFIO group open
    /// is only a sign, and vfio_ap refuses (EBUSY) exactly while a KVM is attached.
    pub force: bool,
}

impl MatrixChange {
    fn is_empty(&self) -> bool {
        self.adapters.is_empty() && self.domains.is_empty() && self.control_domains.is_empty()
    }
}

/// Assigns (`assign = true`) or unassigns ids of an existing mdev. On a newer kernel with
/// `ap_config` the change is one atomic write; otherwise one write per id, undone in reverse
/// order when one fails. A running guest needs `hotplug` in the matrix device's features.
pub fn change(
    root: &HostRoot,
    writer: &dyn SysfsWriter,
    _lock: &ApLock,
    uuid: &str,
    delta: &MatrixChange,
    assign: bool,
) -> Result<Outcome> {
    let uuid = mdev_uuid::normalize(uuid)?;
    if delta.is_empty() {
        return Err(Error::Refused {
            kind: ErrorKind::Usage,
            message: "nothing to change".into(),
            hint: "give --adapter, --domain or --control-domain".into(),
        });
    }
    let scan = writer.scan(root);
    let Some(mdev) = scan.mdev(&uuid).cloned() else {
        // an mdev that is only defined: with --define its definition is edited alone
        if delta.define {
            if let Some(edit) = plan_definition_edit(root, &uuid, None, delta, assign)? {
                return write_definition_edit(root, &scan, &uuid, edit, assign, Vec::new());
            }
        }
        return Err(if scan.matrix_device.is_none() {
            Error::ModuleNotLoaded
        } else {
            Error::MdevNotFound { uuid: uuid.clone() }
        });
    };
    let dynamic = scan.updates_running_guests(&mdev);
    // the /proc look is only needed where a running guest changes the answer
    let hold = (!dynamic || !scan.in_use(&mdev)).then(|| GuestHold::of(root, &scan, &mdev));
    let live = hold.as_ref().is_none_or(GuestHold::any);
    if live && !dynamic && !delta.force {
        return Err(Error::Refused {
            kind: ErrorKind::InUse,
            message: format!(
                "mdev {uuid} is in use by a running guest ({}) and this kernel cannot change a running guest's matrix ({} has no guest_matrix: vfio_ap before Linux 6.0 answers EBUSY while a guest runs)",
                hold.as_ref().map(|h| h.describe(&mdev)).unwrap_or_default(),
                mdev.sysfs_path()
            ),
            hint: format!(
                "stop the guest, change mdev {uuid}, start the guest again (kernels from 6.0 on update a running guest); --force writes anyway and lets the kernel answer"
            ),
        });
    }
    let mut all_domains = delta.domains.clone();
    all_domains.extend(delta.control_domains.iter().copied());
    check_limits(&scan, &delta.adapters, &all_domains)?;
    let mut adapters: BTreeSet<Apid> = mdev.adapters.iter().copied().collect();
    let mut domains: BTreeSet<Apqi> = mdev.domains.iter().copied().collect();
    let mut controls: BTreeSet<Apqi> = mdev.control_domains.iter().copied().collect();
    for a in &delta.adapters {
        if assign {
            adapters.insert(*a)
        } else {
            adapters.remove(a)
        };
    }
    for d in &delta.domains {
        if assign {
            domains.insert(*d)
        } else {
            domains.remove(d)
        };
    }
    for d in &delta.control_domains {
        if assign {
            controls.insert(*d)
        } else {
            controls.remove(d)
        };
    }
    let mut warnings = Vec::new();
    if assign {
        let new_adapters: Vec<Apid> = adapters.iter().copied().collect();
        let new_domains: Vec<Apqi> = domains.iter().copied().collect();
        let autostart = scan
            .definition(&uuid)
            .is_some_and(|d| d.start == Start::Auto);
        warnings = check_apqns(
            &scan,
            &uuid,
            &cartesian(&new_adapters, &new_domains),
            autostart,
        )?;
    }
    // the definition edit is prepared, and refused, before anything is written
    let edit = if delta.define {
        let after = (
            adapters.iter().copied().collect::<Vec<_>>(),
            domains.iter().copied().collect::<Vec<_>>(),
            controls.iter().copied().collect::<Vec<_>>(),
        );
        let edit = plan_definition_edit(root, &uuid, Some(&after), delta, assign)?;
        if let Some(e) = &edit {
            check_definition_at_boot(root, &scan, &uuid, &e.def, assign)?;
        }
        edit
    } else {
        None
    };
    if scan.definition(&uuid).is_some() && !delta.define {
        warnings.push(format!(
            "mdev {uuid} has an mdevctl definition that still holds the old matrix; it will come back at the next start unless you update it (pass --define)"
        ));
    }
    let mut w = Writes {
        root,
        writer,
        uuid: uuid.clone(),
        done: Vec::new(),
    };
    // ap_config came readable (e12aa0b5b2fb, whose store did nothing) and writable
    // (8fb456bc9f9b) in one series, pulled together for 6.10: where it exists it can be
    // written; the scan after the write checks that the kernel took it
    let mut written_config = None;
    if mdev.ap_config.is_some() {
        let cfg = ApConfig {
            apm: Mask::from_bits(adapters.iter().map(|a| a.0)),
            aqm: Mask::from_bits(domains.iter().map(|d| d.0)),
            adm: Mask::from_bits(controls.iter().map(|d| d.0)),
        };
        w.write(
            Target::ApConfig,
            matrix_attr(&uuid, "ap_config"),
            cfg.to_sysfs(),
        )?;
        written_config = Some(cfg);
    } else {
        let prefix = if assign { "assign_" } else { "unassign_" };
        let undo_prefix = if assign { "unassign_" } else { "assign_" };
        let mut steps: Vec<(Target, String, u8)> = Vec::new();
        // only ids whose state changes, so an undo never removes what was there before
        for a in &delta.adapters {
            if mdev.adapters.contains(a) != assign {
                steps.push((Target::Adapter(*a, assign), "adapter".into(), a.0));
            }
        }
        for d in &delta.domains {
            if mdev.domains.contains(d) != assign {
                steps.push((Target::Domain(*d, assign), "domain".into(), d.0));
            }
        }
        for d in &delta.control_domains {
            if mdev.control_domains.contains(d) != assign {
                steps.push((Target::Control(*d, assign), "control_domain".into(), d.0));
            }
        }
        let mut made: Vec<(String, u8)> = Vec::new();
        for (target, what, id) in steps {
            let path = matrix_attr(&uuid, &format!("{prefix}{what}"));
            if let Err(e) = w.write(target, path, id.to_string()) {
                let mut failed_undo = Vec::new();
                for (what, id) in made.iter().rev() {
                    let p = matrix_attr(&uuid, &format!("{undo_prefix}{what}"));
                    match writer.write(&p, id.to_string().as_bytes()) {
                        Ok(()) => w.done.push(format!("{p}={id}")),
                        Err(ue) => failed_undo.push(format!("{p}={id} ({ue})")),
                    }
                }
                let note = if made.is_empty() {
                    "nothing was changed".to_string()
                } else if failed_undo.is_empty() {
                    format!("the {} earlier write(s) were undone", made.len())
                } else {
                    format!(
                        "undoing the earlier writes ALSO failed for {}: check the mdev with `aplaunch ap mdev show {uuid}`",
                        failed_undo.join(", ")
                    )
                };
                return Err(with_rollback(e, note));
            }
            made.push((what, id));
        }
    }
    let mut definition = None;
    if let Some(edit) = edit {
        if edit.changed {
            let path =
                mdevctl::write_definition(root, &edit.def, true).map_err(|e| Error::Refused {
                    kind: ErrorKind::Define,
                    message: format!(
                        "the mdev was changed, but writing its definition failed: {e}"
                    ),
                    hint: "fix the cause and run the same command again (the change itself is idempotent)"
                        .into(),
                })?;
            definition = Some(path.display().to_string());
        } else {
            warnings.push(format!(
                "the definition of mdev {uuid} already has this matrix; it was left as it is"
            ));
        }
    }
    let after = writer.scan(root);
    if let Some(cfg) = written_config {
        let shown = after.mdev(&uuid).and_then(|m| m.ap_config);
        if shown != Some(cfg) {
            warnings.push(format!(
                "the kernel accepted the ap_config write, but mdev {uuid} shows {} afterwards; check it with `aplaunch ap mdev show {uuid}`",
                shown.map_or_else(|| "no ap_config".to_string(), |c| c.to_sysfs().trim_end().to_string())
            ));
        }
    }
    Ok(Outcome {
        uuid: uuid.clone(),
        writes: w.done,
        definition,
        guest_matrix_before: mdev.guest_matrix.clone(),
        guest_matrix_after: after.mdev(&uuid).and_then(|m| m.guest_matrix.clone()),
        live,
        warnings,
    })
}

/// A definition as `--define` will write it.
struct DefinitionEdit {
    def: Definition,
    /// Whether it differs from the file (a new definition always does).
    changed: bool,
}

/// Reads the definition `--define` edits and applies the change to it the way `mdevctl
/// modify --addattr/--delattr` would, keeping every other entry and spelling. Without a
/// definition, a new manual one holds `after` (the active matrix after the change); with
/// neither, `None`. A definition aplaunch cannot edit faithfully (unreadable, keys mdevctl
/// ignores and would drop, another mdev type, several files) is refused.
fn plan_definition_edit(
    root: &HostRoot,
    uuid: &str,
    after: Option<&(Vec<Apid>, Vec<Apqi>, Vec<Apqi>)>,
    delta: &MatrixChange,
    assign: bool,
) -> Result<Option<DefinitionEdit>> {
    let malformed = |reason: String| {
        Error::Refused {
        kind: ErrorKind::Malformed,
        message: reason,
        hint: format!(
            "fix the file (mdevctl reads only mdev_type, start and attrs) or remove it with `aplaunch ap mdev remove {uuid} --undefine`; nothing was changed"
        ),
    }
    };
    let existing = match mdevctl::read_definition(root, uuid) {
        Ok(d) => d,
        Err(Error::Format { path, reason }) => {
            return Err(malformed(format!(
                "the definition {} cannot be read: {reason}",
                path.display()
            )))
        }
        Err(Error::Refused { message, .. }) => return Err(malformed(message)),
        Err(e) => return Err(e),
    };
    let Some(mut def) = existing else {
        return Ok(after.map(|(a, d, c)| DefinitionEdit {
            def: Definition::new(uuid, Start::Manual, a, d, c),
            changed: true,
        }));
    };
    let path = root.path(def.path());
    if !def.unknown_keys.is_empty() {
        return Err(malformed(format!(
            "the definition {} has keys mdevctl ignores ({}); rewriting it would drop them",
            path.display(),
            def.unknown_keys.join(", ")
        )));
    }
    if def.mdev_type != MDEV_TYPE {
        return Err(malformed(format!(
            "the definition {} is of mdev type {:?}, not {MDEV_TYPE}",
            path.display(),
            def.mdev_type
        )));
    }
    let mut changed = def.file_name != uuid;
    for a in &delta.adapters {
        changed |= def.edit(IdKind::Adapter, a.0, assign);
    }
    for d in &delta.domains {
        changed |= def.edit(IdKind::Domain, d.0, assign);
    }
    for c in &delta.control_domains {
        changed |= def.edit(IdKind::Control, c.0, assign);
    }
    Ok(Some(DefinitionEdit { def, changed }))
}

/// For an autostart definition that gains ids: refuses APQNs in another autostart
/// definition and APQNs the masks at boot reserve for the host, as ap-check does when
/// mdevctl defines, modifies or starts it.
fn check_definition_at_boot(
    root: &HostRoot,
    scan: &ApScan,
    uuid: &str,
    def: &Definition,
    assign: bool,
) -> Result<()> {
    if def.start != Start::Auto || !assign {
        return Ok(());
    }
    // what the kernel builds and what ap-check counts (it skips unassign_*)
    let apqns = def.ap_check_apqns();
    let mut conflicts = Vec::new();
    for other in scan
        .definitions
        .iter()
        .filter(|d| d.uuid != uuid && d.start == Start::Auto && d.mdev_type == MDEV_TYPE)
    {
        let theirs = other.ap_check_apqns();
        for q in apqns.iter().filter(|q| theirs.contains(q)) {
            conflicts.push((*q, other.uuid.clone()));
        }
    }
    if let Some((q, other)) = conflicts.first() {
        let list: Vec<String> = conflicts
            .iter()
            .map(|(q, o)| {
                format!(
                    "APQN {} is in the autostart definition of mdev {o}",
                    q.describe()
                )
            })
            .collect();
        return Err(Error::Refused {
            kind: ErrorKind::Conflict,
            message: list.join("; "),
            hint: format!(
                "an APQN may belong to one autostart definition only: take APQN {} out of the definition of mdev {other} first, or make one of them manual",
                q.describe()
            ),
        });
    }
    crate::persistent::refuse_reserved_at_boot(root, scan, &apqns)
}

/// Writes the edited definition of an mdev that is not active.
fn write_definition_edit(
    root: &HostRoot,
    scan: &ApScan,
    uuid: &str,
    edit: DefinitionEdit,
    assign: bool,
    mut warnings: Vec<String>,
) -> Result<Outcome> {
    check_definition_at_boot(root, scan, uuid, &edit.def, assign)?;
    let mut definition = None;
    if edit.changed {
        definition = Some(
            mdevctl::write_definition(root, &edit.def, true)?
                .display()
                .to_string(),
        );
    } else {
        warnings.push(format!(
            "the definition of mdev {uuid} already has this matrix; it was left as it is"
        ));
    }
    warnings.push(format!(
        "mdev {uuid} is not active: only its definition changed (it applies at the next `mdevctl start`)"
    ));
    Ok(Outcome {
        uuid: uuid.to_string(),
        definition,
        warnings,
        ..Outcome::default()
    })
}

/// What to remove, and how long the kernel may take.
#[derive(Debug, Clone)]
pub struct RemoveRequest {
    /// The mdev.
    pub uuid: String,
    /// Remove it even while a guest holds it (the write waits at most `timeout`).
    pub force: bool,
    /// Also delete its mdevctl definition.
    pub undefine: bool,
    /// The bound on the write to `remove`.
    pub timeout: Duration,
}

/// How a guest shows that it holds an mdev.
struct GuestHold {
    holders: Vec<Holder>,
    group_busy: bool,
    status_in_use: bool,
}

impl GuestHold {
    /// Queue `status` (5.17+), the VFIO group's EBUSY, and the processes in /proc with the
    /// group or cdev open: kernels without queue status show a guest only the latter ways.
    fn of(root: &HostRoot, scan: &ApScan, mdev: &MdevInfo) -> Self {
        GuestHold {
            holders: crate::holders::find(root, mdev),
            group_busy: matches!(
                crate::device::group_status(root, mdev),
                crate::device::GroupStatus::Busy
            ),
            status_in_use: scan.in_use(mdev),
        }
    }

    fn any(&self) -> bool {
        self.status_in_use || self.group_busy || !self.holders.is_empty()
    }

    /// In words, naming the processes and their QMP sockets where known.
    fn describe(&self, mdev: &MdevInfo) -> String {
        if !self.holders.is_empty() {
            return self
                .holders
                .iter()
                .map(Holder::describe)
                .collect::<Vec<_>>()
                .join("; ");
        }
        let node = crate::device::group_node(mdev)
            .map(|n| format!("/{}", n.display()))
            .unwrap_or_else(|| "its VFIO group".into());
        if self.group_busy {
            format!("another process has {node} open (no process in /proc shows it)")
        } else if self.status_in_use {
            "its queues show status `in use` (no process in /proc shows which guest)".into()
        } else {
            "the process holding it".into()
        }
    }
}

fn unplug_hint(uuid: &str, holders: &[Holder]) -> String {
    match holders.iter().find_map(|h| h.qmp.as_deref()) {
        Some(sock) => format!(
            "unplug it from the guest first: aplaunch ap mdev remove {uuid} --unplug (QMP socket {sock}), or aplaunch qmp unplug --qmp {sock} --mdev {uuid}; or stop the guest"
        ),
        None => {
            let seen = if holders.is_empty() {
                "no process in /proc shows one".to_string()
            } else {
                let pids: Vec<String> = holders.iter().map(|h| h.pid.to_string()).collect();
                format!("the command line of process {} names none", pids.join(", "))
            };
            format!(
                "unplug it from the guest first: `aplaunch ap mdev remove {uuid} --unplug --qmp` followed by the path of the guest's QMP socket ({seen}); or stop the guest"
            )
        }
    }
}

/// Removes an mdev, and with `undefine` its mdevctl definition; an mdev that is only
/// defined is just undefined.
///
/// While a guest holds the mdev (queue status `in use`, its VFIO group busy, or a process
/// in /proc with its group or cdev open) the removal is refused unless `force`, naming the
/// holders and their QMP sockets. vfio_ap before 5.15 answers EBUSY then (reported with
/// the holders); since 5.15 the write to `remove` blocks until QEMU releases the device
/// (drivers/vfio/vfio_main.c `vfio_unregister_group_dev`), so it is made with a bound
/// ([`SysfsWriter::write_bounded`]); when the bound runs out the error says so and who holds
/// the device, and the caller's lock is released as usual.
pub fn remove(
    root: &HostRoot,
    writer: &dyn SysfsWriter,
    _lock: &ApLock,
    req: &RemoveRequest,
) -> Result<Outcome> {
    let uuid = mdev_uuid::normalize(&req.uuid)?;
    let scan = writer.scan(root);
    let mut outcome = Outcome {
        uuid: uuid.clone(),
        ..Outcome::default()
    };
    match scan.mdev(&uuid) {
        Some(m) => {
            let hold = GuestHold::of(root, &scan, m);
            let busy = hold.any();
            if busy && !req.force {
                return Err(Error::Refused {
                    kind: ErrorKind::InUse,
                    message: format!(
                        "mdev {uuid} is in use: {}; removing it now would wait until the guest lets go of it",
                        hold.describe(m)
                    ),
                    hint: format!(
                        "{}; --force removes it anyway, waiting at most --timeout seconds for QEMU to release it",
                        unplug_hint(&uuid, &hold.holders)
                    ),
                });
            }
            outcome.live = busy;
            let path = matrix_attr(&uuid, "remove");
            match writer.write_bounded(&path, b"1", req.timeout) {
                Ok(()) => outcome.writes.push(format!("{path}=1")),
                Err(e) if e.raw_os_error() == Some(libc::ETIMEDOUT) => {
                    // who holds it now (the guest may have started after the scan)
                    let hold = GuestHold::of(root, &scan, m);
                    return Err(Error::Kernel(Box::new(KernelError {
                        attribute: path,
                        value: "1".into(),
                        errno: Some(libc::ETIMEDOUT),
                        message: format!(
                            "removing mdev {uuid} did not finish within {} s: the kernel waits until the device is released by {}; the removal stays pending and completes as soon as QEMU lets go",
                            req.timeout.as_secs(),
                            hold.describe(m)
                        ),
                        hint: format!(
                            "{}; `aplaunch ap mdev show {uuid}` shows whether it is gone",
                            unplug_hint(&uuid, &hold.holders)
                        ),
                        rollback: None,
                    })));
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // vfio_ap before 5.15 refuses (`if (matrix_mdev->kvm) return -EBUSY;`)
                    let hold = GuestHold::of(root, &scan, m);
                    return Err(Error::Kernel(Box::new(KernelError {
                        attribute: path,
                        value: "1".into(),
                        errno: Some(libc::EBUSY),
                        message: format!(
                            "removing mdev {uuid} failed: the kernel refused (EBUSY) because a guest holds it ({}); vfio_ap before Linux 5.15 refuses instead of waiting; nothing was changed",
                            hold.describe(m)
                        ),
                        hint: unplug_hint(&uuid, &hold.holders),
                        rollback: None,
                    })));
                }
                Err(source) => {
                    return Err(explain(
                        root,
                        writer,
                        &uuid,
                        Target::Remove,
                        &path,
                        b"1",
                        &source,
                    ))
                }
            }
        }
        // any file mdevctl reads as its definition, also one that cannot be parsed
        None if req.undefine && !mdevctl::definition_files(root, &uuid)?.is_empty() => {}
        None => return Err(Error::MdevNotFound { uuid }),
    }
    if req.undefine {
        let removed = mdevctl::remove_definition(root, &uuid)?;
        if !removed.is_empty() {
            let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
            outcome.definition = Some(names.join(", "));
        } else {
            outcome
                .warnings
                .push(format!("mdev {uuid} had no mdevctl definition"));
        }
    }
    Ok(outcome)
}

/// A preview of a mask change.
#[derive(Debug, Clone, Serialize)]
pub struct MaskPreview {
    /// `apmask` now.
    pub apmask: Mask,
    /// `aqmask` now.
    pub aqmask: Mask,
    /// `apmask` after the change.
    pub new_apmask: Mask,
    /// `aqmask` after the change.
    pub new_aqmask: Mask,
    /// Existing queues that move from vfio_ap to the host drivers.
    pub to_host: Vec<Apqn>,
    /// Existing queues that move from the host drivers to vfio_ap.
    pub to_vfio: Vec<Apqn>,
    /// Queues that move to the host although an mdev has them: (APQN, mdev).
    pub taken_from_mdevs: Vec<(Apqn, String)>,
    /// The writes made (empty for a preview).
    pub writes: Vec<String>,
    /// What the scan after the writes found wrong: APQNs of active mdevs that the new masks
    /// hand to the host drivers (assigned by another process meanwhile; kernels before 6.0
    /// do not refuse that, their vfio_ap has no in-use callback).
    pub warnings: Vec<String>,
}

impl MaskPreview {
    /// Why the change must not be made, when it would hand queues assigned to mdevs back to
    /// the host drivers: names each APQN with its mdev, and the unassign command for each.
    pub fn refusal(&self) -> Option<Error> {
        if self.taken_from_mdevs.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .taken_from_mdevs
            .iter()
            .map(|(q, u)| format!("APQN {} of mdev {u}", q.describe()))
            .collect();
        let commands: Vec<String> = self
            .taken_from_mdevs
            .iter()
            .map(|(q, u)| unassign_command(u, *q))
            .collect();
        Some(Error::Refused {
            kind: ErrorKind::Conflict,
            message: format!(
                "the new masks would hand queues assigned to mdevs back to the host drivers: {}",
                list.join(", ")
            ),
            hint: format!(
                "unassign them from their mdevs first ({}), or leave those bits clear",
                commands.join("; ")
            ),
        })
    }
}

/// Computes what a mask change would do.
pub fn preview_masks(
    scan: &ApScan,
    apmask: Option<&MaskSpec>,
    aqmask: Option<&MaskSpec>,
) -> Result<MaskPreview> {
    let bus = scan.bus.as_ref().ok_or_else(|| Error::Refused {
        kind: ErrorKind::NoApBus,
        message: "this host has no AP bus (/sys/bus/ap is missing)".into(),
        hint: "load the ap module (modprobe ap) on an IBM Z host".into(),
    })?;
    let cur_ap = bus.apmask.ok_or_else(|| Error::Refused {
        kind: ErrorKind::Masks,
        message: "/sys/bus/ap/apmask could not be read".into(),
        hint: "check the file; run as root".into(),
    })?;
    let cur_aq = bus.aqmask.ok_or_else(|| Error::Refused {
        kind: ErrorKind::Masks,
        message: "/sys/bus/ap/aqmask could not be read".into(),
        hint: "check the file; run as root".into(),
    })?;
    let new_ap = apmask.map(|s| s.apply(&cur_ap)).unwrap_or(cur_ap);
    let new_aq = aqmask.map(|s| s.apply(&cur_aq)).unwrap_or(cur_aq);
    let mut to_host = Vec::new();
    let mut to_vfio = Vec::new();
    for q in &scan.queues {
        let (a, d) = (q.apqn.apid.0, q.apqn.apqi.0);
        let was = cur_ap.test(a) && cur_aq.test(d);
        let will = new_ap.test(a) && new_aq.test(d);
        if will && !was {
            to_host.push(q.apqn);
        } else if was && !will {
            to_vfio.push(q.apqn);
        }
    }
    let mut taken = Vec::new();
    for (q, owners) in scan.owners() {
        let (a, d) = (q.apid.0, q.apqi.0);
        let was = cur_ap.test(a) && cur_aq.test(d);
        let will = new_ap.test(a) && new_aq.test(d);
        if will && !was {
            for o in owners.iter().filter(|o| o.active) {
                taken.push((q, o.uuid.clone()));
            }
        }
    }
    Ok(MaskPreview {
        apmask: cur_ap,
        aqmask: cur_aq,
        new_apmask: new_ap,
        new_aqmask: new_aq,
        to_host,
        to_vfio,
        taken_from_mdevs: taken,
        writes: Vec::new(),
        warnings: Vec::new(),
    })
}

/// Applies a mask change: refuses (before writing) when it would hand APQNs assigned to an
/// active mdev back to the host; writes each changed mask as `0x` + 64 hex digits.
pub fn apply_masks(
    root: &HostRoot,
    writer: &dyn SysfsWriter,
    _lock: &ApLock,
    apmask: Option<&MaskSpec>,
    aqmask: Option<&MaskSpec>,
) -> Result<MaskPreview> {
    let scan = writer.scan(root);
    let mut preview = preview_masks(&scan, apmask, aqmask)?;
    if let Some(refusal) = preview.refusal() {
        return Err(refusal);
    }
    let mut done = Vec::new();
    let steps = [
        (
            "sys/bus/ap/apmask",
            preview.apmask,
            preview.new_apmask,
            "apmask",
        ),
        (
            "sys/bus/ap/aqmask",
            preview.aqmask,
            preview.new_aqmask,
            "aqmask",
        ),
    ];
    let mut written: Vec<(&str, Mask)> = Vec::new();
    for (path, old, new, name) in steps {
        if old == new {
            continue;
        }
        let value = new.to_kernel_hex();
        if let Err(source) = writer.write(path, value.as_bytes()) {
            let errno = source.raw_os_error();
            let ename = errno.map(errno_name).unwrap_or_else(|| "error".into());
            let (message, hint) = match errno {
                Some(libc::EBUSY) => {
                    let after = writer.scan(root);
                    let held: Vec<(Apqn, String)> = after
                        .owners()
                        .into_iter()
                        .filter(|(q, _)| {
                            let (a, d) = (q.apid.0, q.apqi.0);
                            let (ap, aq) = if name == "apmask" {
                                (
                                    new,
                                    after
                                        .bus
                                        .as_ref()
                                        .and_then(|b| b.aqmask)
                                        .unwrap_or(preview.new_aqmask),
                                )
                            } else {
                                (
                                    after
                                        .bus
                                        .as_ref()
                                        .and_then(|b| b.apmask)
                                        .unwrap_or(preview.new_apmask),
                                    new,
                                )
                            };
                            ap.test(a) && aq.test(d)
                        })
                        .flat_map(|(q, o)| {
                            o.into_iter().filter(|o| o.active).map(move |o| (q, o.uuid))
                        })
                        .collect();
                    let owners: Vec<String> = held
                        .iter()
                        .map(|(q, u)| format!("APQN {} of mdev {u}", q.describe()))
                        .collect();
                    (
                        format!(
                            "writing {name} failed: the kernel refuses to hand queues assigned to mdevs back to the host drivers{} ({ename})",
                            if owners.is_empty() { String::new() } else { format!(": {}", owners.join(", ")) }
                        ),
                        match held.first() {
                            Some((q, u)) => format!("unassign them from the mdev first ({})", unassign_command(u, *q)),
                            None => "unassign them from their mdev first (`aplaunch ap matrix` shows who holds what)".to_string(),
                        },
                    )
                }
                Some(libc::EINVAL) => (
                    format!("writing {name} failed: the kernel refused {value} ({ename})"),
                    "report this: aplaunch writes masks as 0x and 64 hex digits".to_string(),
                ),
                Some(libc::EACCES) | Some(libc::EPERM) => (
                    format!("writing {name} failed: permission denied ({ename})"),
                    "run as root".to_string(),
                ),
                _ => (
                    format!("writing {name} failed: {source}"),
                    "see the kernel log (dmesg)".to_string(),
                ),
            };
            let mut e = Error::Kernel(Box::new(KernelError {
                attribute: path.to_string(),
                value: value.clone(),
                errno,
                message,
                hint,
                rollback: None,
            }));
            if let Some((p, old)) = written.first() {
                let note = match writer.write(p, old.to_kernel_hex().as_bytes()) {
                    Ok(()) => {
                        done.push(format!("{p}={}", old.to_kernel_hex()));
                        format!("{p} was set back to its old value")
                    }
                    Err(re) => format!(
                        "setting {p} back ALSO failed ({re}): it is now {}",
                        preview.new_apmask
                    ),
                };
                e = with_rollback(e, note);
            }
            return Err(e);
        }
        done.push(format!("{path}={value}"));
        written.push((path, old));
    }
    if !done.is_empty() {
        // kernels before 6.0 take the queues without EBUSY: check what happened
        let after = writer.scan(root);
        let taken = taken_by_host(&after, preview.new_apmask, preview.new_aqmask);
        if !taken.is_empty() {
            let list: Vec<String> = taken
                .iter()
                .map(|(q, u)| format!("APQN {} of mdev {u}", q.describe()))
                .collect();
            preview.warnings.push(format!(
                "the new masks hand queues of active mdevs to the host drivers: {} (assigned after the check; vfio_ap before Linux 6.0 does not refuse this): {}",
                list.join(", "),
                unassign_command(&taken[0].1, taken[0].0)
            ));
        }
    }
    preview.writes = done;
    Ok(preview)
}

/// APQNs of active mdevs that these masks reserve for the host drivers.
fn taken_by_host(scan: &ApScan, apmask: Mask, aqmask: Mask) -> Vec<(Apqn, String)> {
    let mut out = Vec::new();
    for m in &scan.mdevs {
        for q in &m.matrix {
            if apmask.test(q.apid.0) && aqmask.test(q.apqi.0) {
                out.push((*q, m.uuid.clone()));
            }
        }
    }
    out
}

/// Whether a guest uses an mdev, for read-only commands.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GuestUse {
    /// A queue of its matrix shows status `in use`, or a process holds it.
    pub in_use: bool,
    /// The processes in /proc with its VFIO group or cdev open (QEMU), with their QMP
    /// sockets where their command lines name one.
    pub holders: Vec<Holder>,
}

/// Whether a guest uses the mdev: queue `status` `in use` (Linux 5.17 on, and only for
/// queues the guest really has), or a process in /proc holding its VFIO group or cdev,
/// which every kernel shows. The group itself is not opened: a read-only command must not
/// take it from a QEMU that is starting.
pub fn guest_use(root: &HostRoot, scan: &ApScan, mdev: &MdevInfo) -> GuestUse {
    GuestUse::of(scan, mdev, crate::holders::find(root, mdev))
}

/// [`guest_use`] for every mdev of the scan, in its order, with one walk of /proc for all.
pub fn guest_uses(root: &HostRoot, scan: &ApScan) -> Vec<GuestUse> {
    crate::holders::find_each(root, &scan.mdevs)
        .into_iter()
        .zip(&scan.mdevs)
        .map(|(holders, mdev)| GuestUse::of(scan, mdev, holders))
        .collect()
}

impl GuestUse {
    fn of(scan: &ApScan, mdev: &MdevInfo, holders: Vec<Holder>) -> GuestUse {
        GuestUse {
            in_use: scan.in_use(mdev) || !holders.is_empty(),
            holders,
        }
    }
}

/// Everything `aplaunch ap mdev show` tells about one mdev (active or only defined).
#[derive(Debug, Clone, Serialize)]
pub struct MdevShow {
    /// The UUID.
    pub uuid: String,
    /// The active mdev, if it exists.
    pub active: Option<MdevInfo>,
    /// Whether a guest uses it (see [`guest_use`]).
    pub in_use: bool,
    /// The processes holding it.
    pub holders: Vec<Holder>,
    /// The definition, if any.
    pub definition: Option<Definition>,
}

/// Reads one mdev for `show`.
pub fn show(root: &HostRoot, uuid: &str) -> Result<MdevShow> {
    let uuid = mdev_uuid::normalize(uuid)?;
    let scan = ApScan::read(root);
    let active = match MdevInfo::read(root, &uuid) {
        Ok(m) => Some(m),
        Err(Error::MdevNotFound { .. }) | Err(Error::ModuleNotLoaded) => None,
        Err(e) => return Err(e),
    };
    let definition = mdevctl::read_definition(root, &uuid)?;
    if active.is_none() && definition.is_none() {
        if scan.matrix_device.is_none() {
            return Err(Error::ModuleNotLoaded);
        }
        return Err(Error::MdevNotFound { uuid });
    }
    let used = active
        .as_ref()
        .map(|m| guest_use(root, &scan, m))
        .unwrap_or_default();
    Ok(MdevShow {
        uuid,
        active,
        in_use: used.in_use,
        holders: used.holders,
        definition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::hosttree::HostTree;

    const V: &str = "11111111-2222-4333-8444-555555555555";
    const W: &str = "33333333-4444-4555-8666-777777777777";

    #[test]
    fn autostart_definitions_conflict_only_for_autostart() {
        let tree = HostTree::from_example("z16-se");
        tree.write(
            &format!("etc/mdevctl.d/matrix/{W}"),
            r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"3"},{"assign_domain":"171"}]}"#,
        );
        let root = HostRoot::open(tree.path()).unwrap();
        let scan = ApScan::read(&root);
        let apqns = cartesian(&[Apid(3)], &[Apqi(171)]);
        let err = check_apqns(&scan, V, &apqns, true).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "APQN 03.00ab (3.171) is in the autostart definition of mdev {W}"
            )),
            "{err}"
        );
        let warn = check_apqns(&scan, V, &apqns, false).unwrap();
        assert!(warn[0].contains("autostart definition"), "{warn:?}");
    }
}
