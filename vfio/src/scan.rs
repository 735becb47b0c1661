//! One scan of the host's AP configuration: bus masks, cards, queues, the vfio_ap matrix
//! device, every active mdev and every mdevctl definition. Each file is read once.

use crate::ap::{Apid, Apqi, Apqn};
use crate::mask::Mask;
use crate::mdev::{MdevInfo, MATRIX_DIR, TYPE_DIR};
use crate::mdevctl::{Definition, Start, DEFINITIONS_DIR};
use host::{HostDir, HostRoot};
use serde::Serialize;
use std::collections::BTreeMap;

/// The AP bus directory (host path).
pub const AP_BUS: &str = "sys/bus/ap";
/// Where the bus lists its cards and queues (host path).
pub const AP_DEVICES: &str = "sys/bus/ap/devices";

/// The AP bus attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BusInfo {
    /// `apmask`: adapters whose queues the host drivers may take (with aqmask).
    pub apmask: Option<Mask>,
    /// `aqmask`: domains whose queues the host drivers may take (with apmask).
    pub aqmask: Option<Mask>,
    /// `ap_max_adapter_id`.
    pub max_adapter_id: Option<u8>,
    /// `ap_max_domain_id`.
    pub max_domain_id: Option<u8>,
    /// `ap_adapter_mask` (the adapters configured to this system), if supported.
    pub adapter_mask: Option<Mask>,
    /// `ap_usage_domain_mask`, if supported.
    pub usage_domain_mask: Option<Mask>,
    /// `ap_control_domain_mask`, if supported.
    pub control_domain_mask: Option<Mask>,
    /// `bindings` (`4/4 (complete)`).
    pub bindings: Option<String>,
    /// `features` of the AP bus.
    pub features: Vec<String>,
}

/// One crypto card (adapter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Card {
    /// The adapter.
    pub apid: Apid,
    /// `type` (`CEX8C`), present with the zcrypt card driver bound.
    #[serde(rename = "type")]
    pub card_type: Option<String>,
    /// `hwtype` (14 = CEX8).
    pub hwtype: Option<u64>,
    /// `online`, present with the zcrypt card driver bound.
    pub online: Option<bool>,
    /// `config` (configured to this LPAR).
    pub config: Option<bool>,
    /// The bound driver (`cex4card`).
    pub driver: Option<String>,
}

/// What a queue's vfio_ap `status` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueStatus {
    /// A guest runs with it.
    #[serde(rename = "in use")]
    InUse,
    /// In some mdev's matrix.
    Assigned,
    /// In no mdev.
    Unassigned,
    /// Something else (shown as read).
    Other(String),
}

/// One AP queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queue {
    /// The queue.
    pub apqn: Apqn,
    /// The bound driver (`cex4queue`, `vfio_ap`), none when unbound.
    pub driver: Option<String>,
    /// vfio_ap's `status`, for queues bound to vfio_ap.
    pub status: Option<QueueStatus>,
    /// `online`, for queues bound to a zcrypt driver.
    pub online: Option<bool>,
}

/// The vfio_ap matrix device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixDevice {
    /// `features` (`guest_matrix hotplug ap_config`, Linux 6.12 on); empty on older kernels.
    /// Words it does not know (`migratable` has been proposed) are kept and relied on by
    /// nothing.
    pub features: Vec<String>,
    /// `available_instances` of the vfio_ap-passthrough type.
    pub available_instances: Option<u64>,
}

impl MatrixDevice {
    /// Whether `features` ADVERTISES `hotplug`. The file came late (commit 2d8721364ce8,
    /// Linux 6.12); kernels since 6.0 update running guests without it, so never decide on
    /// this alone: see
    /// [`ApScan::updates_running_guests`].
    pub fn hotplug(&self) -> bool {
        self.features.iter().any(|f| f == "hotplug")
    }
    /// Whether `features` advertises `ap_config` (the mdev's own attribute is the proof).
    pub fn ap_config(&self) -> bool {
        self.features.iter().any(|f| f == "ap_config")
    }
}

/// Who holds an APQN besides the host drivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The mdev's UUID.
    pub uuid: String,
    /// True for an active mdev, false for a definition that is not active.
    pub active: bool,
    /// For definitions: started at boot.
    pub autostart: bool,
}

/// How another holder of an APQN stands against an mdev that wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clash {
    /// An active mdev has it: the kernel refuses a second one.
    Active,
    /// An autostart definition has it, and autostart definitions count (the mdev starts
    /// at boot too, where the first one started wins).
    Autostart,
    /// Only an inactive definition that does not count has it: worth a warning.
    Inactive,
}

/// The holders of `apqns` other than the mdev `uuid`, in APQN order, each with how it
/// clashes; `autostart_counts` says whether autostart definitions are clashes.
pub fn clashes<'a>(
    owners: &'a BTreeMap<Apqn, Vec<Owner>>,
    apqns: &'a [Apqn],
    uuid: &'a str,
    autostart_counts: bool,
) -> impl Iterator<Item = (Apqn, &'a Owner, Clash)> + 'a {
    apqns.iter().flat_map(move |q| {
        owners
            .get(q)
            .into_iter()
            .flatten()
            .filter(move |o| o.uuid != uuid)
            .map(move |o| {
                let clash = if o.active {
                    Clash::Active
                } else if o.autostart && autostart_counts {
                    Clash::Autostart
                } else {
                    Clash::Inactive
                };
                (*q, o, clash)
            })
    })
}

/// The whole AP picture of a host.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApScan {
    /// Bus attributes; `None` when there is no AP bus.
    pub bus: Option<BusInfo>,
    /// Cards, by adapter.
    pub cards: Vec<Card>,
    /// Queues, by APQN.
    pub queues: Vec<Queue>,
    /// The vfio_ap matrix device; `None` when vfio_ap is not loaded.
    pub matrix_device: Option<MatrixDevice>,
    /// Active mdevs, by UUID.
    pub mdevs: Vec<MdevInfo>,
    /// mdevctl definitions of vfio_ap mdevs, by UUID.
    pub definitions: Vec<Definition>,
    /// Files that could not be read or parsed, with the reason (the scan goes on).
    pub problems: Vec<String>,
}

fn parse_card_name(name: &str) -> Option<Apid> {
    let hex = name.strip_prefix("card")?;
    crate::number::hex_id(hex, 2..=2).map(|v| Apid(v as u8))
}

fn parse_queue_name(name: &str) -> Option<Apqn> {
    let (a, d) = name.split_once('.')?;
    if a.len() != 2 || d.len() != 4 {
        return None;
    }
    name.parse().ok()
}

/// Reads one queue: its driver, and `status` (vfio_ap; `unassigned` without a read when no
/// mdev holds it) or `online` (zcrypt).
fn read_queue(dir: &HostDir, apqn: Apqn, name: &str, assigned: bool) -> (Queue, Option<String>) {
    let driver = dir.link_name(&format!("{name}/driver")).ok().flatten();
    let mut problem = None;
    let (status, online) = if driver.as_deref() == Some("vfio_ap") && !assigned {
        (Some(QueueStatus::Unassigned), None)
    } else if driver.as_deref() == Some("vfio_ap") {
        let status = match dir.read_attribute(&format!("{name}/status")) {
            Ok(Some(t)) => Some(match host::sysfs::value(&t) {
                "in use" => QueueStatus::InUse,
                "assigned" => QueueStatus::Assigned,
                "unassigned" => QueueStatus::Unassigned,
                other => QueueStatus::Other(other.to_string()),
            }),
            Ok(None) => None,
            Err(e) => {
                problem = Some(e.to_string());
                None
            }
        };
        (status, None)
    } else if driver.is_some() {
        (
            None,
            flag(dir.read_attribute(&format!("{name}/online")).ok().flatten()),
        )
    } else {
        (None, None)
    };
    (
        Queue {
            apqn,
            driver,
            status,
            online,
        },
        problem,
    )
}

fn flag(text: Option<String>) -> Option<bool> {
    match text.as_deref().map(host::sysfs::value) {
        Some("1") => Some(true),
        Some("0") => Some(false),
        _ => None,
    }
}

impl ApScan {
    /// Scans the host under `root`. Never fails: unreadable or malformed files are listed in
    /// `problems` and the rest of the picture is still returned.
    pub fn read(root: &HostRoot) -> ApScan {
        let mut scan = ApScan::default();
        scan.read_bus(root);
        scan.read_matrix(root);
        let assigned = scan.assigned();
        scan.read_devices(root, None, &assigned);
        scan.read_definitions(root);
        scan
    }

    /// The APQNs in some active mdev's matrix.
    fn assigned(&self) -> std::collections::BTreeSet<Apqn> {
        self.mdevs
            .iter()
            .flat_map(|m| m.matrix.iter().copied())
            .collect()
    }

    /// The scan the checks need, cheaper on big hosts: everything but cards, and of the
    /// queues only those in some active mdev's matrix (`queues` holds just those).
    pub fn read_for_checks(root: &HostRoot) -> ApScan {
        let mut scan = ApScan::default();
        scan.read_bus(root);
        scan.read_matrix(root);
        let wanted = scan.assigned();
        scan.read_devices(root, Some(&wanted), &wanted);
        scan.read_definitions(root);
        scan
    }

    fn problem(&mut self, what: impl std::fmt::Display) {
        self.problems.push(what.to_string());
    }

    fn read_mask(&mut self, root: &HostRoot, file: &str, optional_text: bool) -> Option<Mask> {
        let path = format!("{AP_BUS}/{file}");
        match root.read_optional(&path) {
            Ok(None) => None,
            Ok(Some(t)) if optional_text && t.trim_end() == "not supported" => None,
            Ok(Some(t)) => match Mask::parse_sysfs(&t) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.problem(format!("{}: {}", root.path(&path).display(), e));
                    None
                }
            },
            Err(e) => {
                self.problem(e);
                None
            }
        }
    }

    fn read_bus(&mut self, root: &HostRoot) {
        if !root.is_dir(AP_BUS) {
            return;
        }
        let mut bus = BusInfo {
            apmask: self.read_mask(root, "apmask", false),
            aqmask: self.read_mask(root, "aqmask", false),
            adapter_mask: self.read_mask(root, "ap_adapter_mask", true),
            usage_domain_mask: self.read_mask(root, "ap_usage_domain_mask", true),
            control_domain_mask: self.read_mask(root, "ap_control_domain_mask", true),
            ..BusInfo::default()
        };
        for (file, slot) in [
            ("ap_max_adapter_id", &mut bus.max_adapter_id),
            ("ap_max_domain_id", &mut bus.max_domain_id),
        ] {
            let path = format!("{AP_BUS}/{file}");
            match host::sysfs::read_dec_optional(root, &path) {
                Ok(Some(v)) if v <= 255 => *slot = Some(v as u8),
                Ok(Some(v)) => self
                    .problems
                    .push(format!("{}: {v} is above 255", root.path(&path).display())),
                Ok(None) => {}
                Err(e) => self.problems.push(e.to_string()),
            }
        }
        match root.read_optional(format!("{AP_BUS}/bindings")) {
            Ok(t) => bus.bindings = t.map(|t| host::sysfs::value(&t).to_string()),
            Err(e) => self.problem(e),
        }
        match root.read_optional(format!("{AP_BUS}/features")) {
            Ok(Some(t)) => {
                bus.features = t
                    .split_whitespace()
                    .filter(|f| *f != "-")
                    .map(str::to_string)
                    .collect()
            }
            Ok(None) => {}
            Err(e) => self.problem(e),
        }
        self.bus = Some(bus);
    }

    /// Reads cards and queues; with `only`, no cards and only those queues.
    ///
    /// The bus's `devices` directory is listed once; attributes are read in the canonical
    /// device directories `sys/devices/ap/cardXX/XX.YYYY` (the links' targets, which spares
    /// the kernel a symlink walk per file), falling back to the links when a tree lacks them.
    /// Big hosts are read by a few threads.
    ///
    /// `status` is read only for queues in `assigned` (some active mdev's matrix): for every
    /// other queue the kernel's `status_show` answers `unassigned` (it says `assigned` or
    /// `in use` exactly when an mdev's matrix holds the queue), so reading it would only
    /// cost three system calls per queue on a big host.
    fn read_devices(
        &mut self,
        root: &HostRoot,
        only: Option<&std::collections::BTreeSet<Apqn>>,
        assigned: &std::collections::BTreeSet<Apqn>,
    ) {
        let names = match root.read_dir(AP_DEVICES) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return,
            Err(e) => {
                self.problem(e);
                return;
            }
        };
        let mut card_dirs: BTreeMap<Apid, String> = BTreeMap::new();
        let mut queue_names: Vec<(Apqn, String)> = Vec::new();
        for name in &names {
            if let Some(apid) = parse_card_name(name) {
                let canonical = format!("sys/devices/ap/{name}");
                let dir = if root.is_dir(&canonical) {
                    canonical
                } else {
                    format!("{AP_DEVICES}/{name}")
                };
                card_dirs.insert(apid, dir);
            } else if let Some(apqn) = parse_queue_name(name) {
                if only.is_some_and(|set| !set.contains(&apqn)) {
                    continue;
                }
                queue_names.push((apqn, name.clone()));
            }
        }
        if only.is_none() {
            for (apid, dir) in &card_dirs {
                let card = self.read_card(root, *apid, dir);
                self.cards.push(card);
            }
        }
        // one open directory per card (canonical), the bus's devices directory otherwise
        let bus_dir = match root.open_dir(AP_DEVICES) {
            Ok(d) => d,
            Err(e) => {
                self.problem(e);
                return;
            }
        };
        let mut dirs: BTreeMap<Apid, HostDir> = BTreeMap::new();
        for (apid, dir) in &card_dirs {
            if dir.starts_with("sys/devices/") {
                if let Ok(d) = root.open_dir(dir) {
                    dirs.insert(*apid, d);
                }
            }
        }
        let jobs: Vec<(Apqn, &HostDir, &str)> = queue_names
            .iter()
            .map(|(q, n)| (*q, dirs.get(&q.apid).unwrap_or(&bus_dir), n.as_str()))
            .collect();
        let threads = if jobs.len() < 256 {
            1
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4)
        };
        let results: Vec<(Queue, Option<String>)> = if threads <= 1 {
            jobs.iter()
                .map(|(q, d, n)| read_queue(d, *q, n, assigned.contains(q)))
                .collect()
        } else {
            let chunk = jobs.len().div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = jobs
                    .chunks(chunk)
                    .map(|part| {
                        s.spawn(move || {
                            part.iter()
                                .map(|(q, d, n)| read_queue(d, *q, n, assigned.contains(q)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };
        for (queue, problem) in results {
            if let Some(p) = problem {
                self.problems.push(p);
            }
            self.queues.push(queue);
        }
        self.cards.sort_by_key(|c| c.apid);
        self.queues.sort_by_key(|q| q.apqn);
    }

    fn read_card(&mut self, root: &HostRoot, apid: Apid, dir: &str) -> Card {
        Card {
            apid,
            card_type: root
                .read_optional(format!("{dir}/type"))
                .ok()
                .flatten()
                .map(|t| host::sysfs::value(&t).to_string()),
            hwtype: host::sysfs::read_dec_optional(root, format!("{dir}/hwtype")).unwrap_or_else(
                |e| {
                    self.problems.push(e.to_string());
                    None
                },
            ),
            online: flag(root.read_attribute(format!("{dir}/online")).ok().flatten()),
            config: flag(root.read_attribute(format!("{dir}/config")).ok().flatten()),
            driver: root.link_name(format!("{dir}/driver")).ok().flatten(),
        }
    }

    fn read_matrix(&mut self, root: &HostRoot) {
        if !root.is_dir(MATRIX_DIR) {
            return;
        }
        let features = match root.read_optional(format!("{MATRIX_DIR}/features")) {
            Ok(t) => t
                .map(|t| t.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            Err(e) => {
                self.problem(e);
                Vec::new()
            }
        };
        let available_instances =
            host::sysfs::read_dec_optional(root, format!("{TYPE_DIR}/available_instances"))
                .unwrap_or_else(|e| {
                    self.problems.push(e.to_string());
                    None
                });
        self.matrix_device = Some(MatrixDevice {
            features,
            available_instances,
        });
        let names = match root.read_dir(MATRIX_DIR) {
            Ok(n) => n,
            Err(e) => {
                self.problem(e);
                return;
            }
        };
        for name in names.iter().filter(|n| crate::mdev_uuid::is_sysfs_name(n)) {
            match MdevInfo::read(root, name) {
                Ok(m) => self.mdevs.push(m),
                Err(e) => self.problem(e),
            }
        }
    }

    /// Reads the mdevctl definitions into `definitions` (part of [`ApScan::read`]).
    pub fn read_definitions(&mut self, root: &HostRoot) {
        let names = match root.read_dir(DEFINITIONS_DIR) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return,
            Err(e) => {
                self.problem(e);
                return;
            }
        };
        for name in &names {
            let Some(uuid) = crate::mdevctl::definition_file_uuid(name) else {
                continue;
            };
            if root.is_dir(crate::mdevctl::definition_path(name)) {
                continue;
            }
            if self.definitions.iter().any(|d| d.uuid == uuid) {
                self.problems.push(format!(
                    "{}: a second definition file of mdev {uuid}; mdevctl reads both (\"Multiple definitions found\"): keep one",
                    root.path(crate::mdevctl::definition_path(name)).display()
                ));
                continue;
            }
            match crate::mdevctl::read_definition_file(root, name) {
                Ok(Some(d)) => {
                    let path = root.path(d.path());
                    if !d.unknown_keys.is_empty() {
                        self.problems.push(format!(
                            "{}: keys mdevctl ignores: {} (only mdev_type, start and attrs are read)",
                            path.display(),
                            d.unknown_keys.join(", ")
                        ));
                    }
                    for w in &d.warnings {
                        self.problems.push(format!("{}: {w}", path.display()));
                    }
                    self.definitions.push(d)
                }
                Ok(None) => {}
                Err(e) => self.problem(e),
            }
        }
    }

    /// The active mdev with this UUID.
    pub fn mdev(&self, uuid: &str) -> Option<&MdevInfo> {
        self.mdevs.iter().find(|m| m.uuid == uuid)
    }

    /// The definition with this UUID.
    pub fn definition(&self, uuid: &str) -> Option<&Definition> {
        self.definitions.iter().find(|d| d.uuid == uuid)
    }

    /// The queue with this APQN, if the bus shows it.
    pub fn queue(&self, apqn: Apqn) -> Option<&Queue> {
        self.queues
            .binary_search_by_key(&apqn, |q| q.apqn)
            .ok()
            .map(|i| &self.queues[i])
    }

    /// The card of this adapter, if the bus shows it.
    pub fn card(&self, apid: Apid) -> Option<&Card> {
        self.cards.iter().find(|c| c.apid == apid)
    }

    /// Whether apmask and aqmask reserve this APQN for the host's drivers (both bits set).
    /// `None` when the masks could not be read.
    pub fn host_reserved(&self, apqn: Apqn) -> Option<bool> {
        let bus = self.bus.as_ref()?;
        Some(bus.apmask?.test(apqn.apid.0) && bus.aqmask?.test(apqn.apqi.0))
    }

    /// Every APQN held by an active mdev or an inactive definition, with its holders
    /// (active mdevs first, then definitions, each by UUID). A definition of an active mdev
    /// counts once, as the active mdev.
    pub fn owners(&self) -> BTreeMap<Apqn, Vec<Owner>> {
        let mut map: BTreeMap<Apqn, Vec<Owner>> = BTreeMap::new();
        let starts: BTreeMap<&str, Start> = self
            .definitions
            .iter()
            .map(|d| (d.uuid.as_str(), d.start))
            .collect();
        let active: std::collections::BTreeSet<&str> =
            self.mdevs.iter().map(|m| m.uuid.as_str()).collect();
        for m in &self.mdevs {
            let autostart = starts.get(m.uuid.as_str()) == Some(&Start::Auto);
            for q in &m.matrix {
                map.entry(*q).or_default().push(Owner {
                    uuid: m.uuid.clone(),
                    active: true,
                    autostart,
                });
            }
        }
        for d in &self.definitions {
            if active.contains(d.uuid.as_str()) {
                continue;
            }
            for q in d.apqns() {
                map.entry(q).or_default().push(Owner {
                    uuid: d.uuid.clone(),
                    active: false,
                    autostart: d.start == Start::Auto,
                });
            }
        }
        map
    }

    /// Whether the kernel applies assign/unassign to a guest running with this mdev. The
    /// dynamic-configuration rework (Linux 6.0) that updates the guest's APCB on every
    /// change also added the mdev attribute `guest_matrix`, so its presence is the proof;
    /// `features` (later) only advertises it. Without either, vfio_ap answers EBUSY while a
    /// guest runs.
    pub fn updates_running_guests(&self, mdev: &MdevInfo) -> bool {
        mdev.guest_matrix.is_some()
            || self
                .matrix_device
                .as_ref()
                .is_some_and(|d| d.hotplug() || d.features.iter().any(|f| f == "guest_matrix"))
    }

    /// Whether the kernel shows vfio_ap queue `status` for this mdev's queues: `Some(true)`
    /// when one of its queues bound to vfio_ap has the attribute, `Some(false)` when such a
    /// queue lacks it (kernels before 5.17 have no `status`), `None` when no queue of the
    /// matrix is bound to vfio_ap.
    pub fn has_queue_status(&self, mdev: &MdevInfo) -> Option<bool> {
        let bound: Vec<&Queue> = mdev
            .matrix
            .iter()
            .filter_map(|q| self.queue(*q))
            .filter(|q| q.driver.as_deref() == Some("vfio_ap"))
            .collect();
        if bound.is_empty() {
            None
        } else {
            Some(bound.iter().any(|q| q.status.is_some()))
        }
    }

    /// Whether a guest uses the mdev: a queue of its matrix has status `in use`.
    pub fn in_use(&self, mdev: &MdevInfo) -> bool {
        mdev.matrix.iter().any(|q| {
            self.queue(*q)
                .is_some_and(|q| q.status == Some(QueueStatus::InUse))
        })
    }

    /// Every domain that appears anywhere (queues, usage mask, mdevs, definitions).
    pub fn all_domains(&self) -> Vec<Apqi> {
        let mut set = std::collections::BTreeSet::new();
        for q in &self.queues {
            set.insert(q.apqn.apqi);
        }
        if let Some(m) = self.bus.as_ref().and_then(|b| b.usage_domain_mask) {
            set.extend(m.iter().map(Apqi));
        }
        for m in &self.mdevs {
            set.extend(m.domains.iter().copied());
        }
        for d in &self.definitions {
            set.extend(d.domains.iter().copied());
        }
        set.into_iter().collect()
    }

    /// Every adapter that appears anywhere (cards, queues, adapter mask, mdevs, definitions).
    pub fn all_adapters(&self) -> Vec<Apid> {
        let mut set = std::collections::BTreeSet::new();
        for c in &self.cards {
            set.insert(c.apid);
        }
        for q in &self.queues {
            set.insert(q.apqn.apid);
        }
        if let Some(m) = self.bus.as_ref().and_then(|b| b.adapter_mask) {
            set.extend(m.iter().map(Apid));
        }
        for m in &self.mdevs {
            set.extend(m.adapters.iter().copied());
        }
        for d in &self.definitions {
            set.extend(d.adapters.iter().copied());
        }
        set.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::hosttree::HostTree;

    #[test]
    fn scans_the_example_host() {
        let tree = HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let scan = ApScan::read(&root);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        let bus = scan.bus.as_ref().unwrap();
        assert!(!bus.apmask.unwrap().test(5) && bus.apmask.unwrap().test(3));
        assert!(!bus.aqmask.unwrap().test(171) && bus.aqmask.unwrap().test(4));
        assert_eq!(bus.max_adapter_id, Some(255));
        assert_eq!(bus.adapter_mask, Some(Mask::from_bits([3, 5])));
        assert_eq!(bus.bindings.as_deref(), Some("4/4 (complete)"));
        assert_eq!(scan.cards.len(), 2);
        assert_eq!(scan.cards[0].card_type.as_deref(), Some("CEX8C"));
        assert_eq!(scan.cards[0].hwtype, Some(14));
        assert_eq!(scan.queues.len(), 4);
        let q = scan.queue(Apqn::new(3, 4)).unwrap();
        assert_eq!(q.driver.as_deref(), Some("cex4queue"));
        assert_eq!(q.online, Some(true));
        let q = scan.queue(Apqn::new(5, 0xab)).unwrap();
        assert_eq!(q.status, Some(QueueStatus::Assigned));
        assert_eq!(scan.host_reserved(Apqn::new(3, 4)), Some(true));
        assert_eq!(scan.host_reserved(Apqn::new(3, 0xab)), Some(false));
        assert!(scan.matrix_device.as_ref().unwrap().hotplug());
        assert_eq!(scan.mdevs.len(), 1);
        assert_eq!(scan.definitions.len(), 1);
        let owners = scan.owners();
        assert_eq!(owners.len(), 2);
        assert!(owners[&Apqn::new(5, 4)][0].active && owners[&Apqn::new(5, 4)][0].autostart);
        assert!(!scan.in_use(&scan.mdevs[0]));
        assert_eq!(scan.all_domains(), vec![Apqi(4), Apqi(171)]);
    }

    #[test]
    fn the_check_scan_reads_only_mdev_queues() {
        let tree = HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let full = ApScan::read(&root);
        let part = ApScan::read_for_checks(&root);
        assert!(part.cards.is_empty());
        let apqns: Vec<Apqn> = part.queues.iter().map(|q| q.apqn).collect();
        assert_eq!(apqns, vec![Apqn::new(5, 4), Apqn::new(5, 0xab)]);
        assert_eq!(part.queue(Apqn::new(5, 4)), full.queue(Apqn::new(5, 4)));
        assert_eq!(part.mdevs, full.mdevs);
        assert_eq!(part.definitions, full.definitions);
        assert_eq!(part.bus, full.bus);
    }

    #[test]
    fn status_is_read_only_for_queues_an_mdev_holds() {
        let tree = HostTree::from_example("z16-se");
        let (root, rec) = HostRoot::open(tree.path()).unwrap().with_recorder();
        let scan = ApScan::read(&root);
        let paths = rec.paths();
        let read = |p: &str| paths.contains_key(std::path::Path::new(p));
        assert!(read("sys/devices/ap/card05/05.0004/status"));
        assert!(!read("sys/devices/ap/card03/03.00ab/status"));
        assert_eq!(
            scan.queue(Apqn::new(3, 0xab)).unwrap().status,
            Some(QueueStatus::Unassigned)
        );
        // a guest runs: the file says so
        tree.write("sys/devices/ap/card05/05.00ab/status", "in use\n");
        let scan = ApScan::read(&root);
        assert_eq!(
            scan.queue(Apqn::new(5, 0xab)).unwrap().status,
            Some(QueueStatus::InUse)
        );
        assert!(scan.in_use(&scan.mdevs[0]));
    }

    #[test]
    fn a_host_without_ap_scans_empty() {
        let tree = HostTree::empty();
        let root = HostRoot::open(tree.path()).unwrap();
        let scan = ApScan::read(&root);
        assert!(scan.bus.is_none() && scan.cards.is_empty() && scan.mdevs.is_empty());
        assert!(scan.problems.is_empty());
    }

    #[test]
    fn malformed_files_become_problems() {
        let tree = HostTree::from_example("z16-se");
        tree.write("sys/bus/ap/apmask", "0xzz\n");
        tree.write("sys/bus/ap/ap_usage_domain_mask", "not supported\n");
        tree.write(
            "etc/mdevctl.d/matrix/11111111-2222-4333-8444-555555555555",
            "{",
        );
        let root = HostRoot::open(tree.path()).unwrap();
        let scan = ApScan::read(&root);
        let bus = scan.bus.as_ref().unwrap();
        assert!(bus.apmask.is_none() && bus.usage_domain_mask.is_none());
        assert_eq!(scan.problems.len(), 2, "{:?}", scan.problems);
        assert!(scan.problems[0].contains("apmask"));
        assert!(scan.problems[1].contains("11111111"));
        assert_eq!(scan.host_reserved(Apqn::new(3, 4)), None);
    }
}
