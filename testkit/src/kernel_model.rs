//! Models of the kernel's vfio_ap and AP bus write rules, one per kernel generation, each
//! a [`SysfsWriter`] the vfio crate's lifecycle can run against.
//!
//! Only a model is possible here (a real vfio_ap needs an IBM Z LPAR with crypto cards), so
//! every rule names the kernel source it follows; docs/kernel-generations.md has the table
//! and the commits. Sources read: drivers/s390/crypto/vfio_ap_ops.c, vfio_ap_drv.c and
//! drivers/vfio/vfio_main.c of Debian's linux-source 6.1.192 and 6.12.118, and the
//! upstream commits named in [`Rules`]. It answers writes with the errnos the kernel gives:
//! exclusivity between mdevs (EADDRINUSE), mask reservation (EADDRNOTAVAIL), ids above the
//! limits (ENODEV), idempotent re-assign, create errors (EINVAL, EEXIST, EUSERS), mask
//! writes that would take assigned queues back (EBUSY), EBUSY on a running guest before
//! 6.0, a `remove` that answers EBUSY (before 5.15) or BLOCKS (5.15 on) while a guest holds
//! the mdev, and failure injection for rollback tests.
//!
//! Kept in the test-support crate so that no production build carries it.

use host::HostRoot;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::time::Duration;
use vfio::ap::{Apid, Apqi, Apqn};
use vfio::mask::Mask;
use vfio::mdev::{
    format_matrix, parse_matrix, ApConfig, MdevInfo, MATRIX_DIR, MDEV_TYPE, TYPE_DIR,
};
use vfio::scan::{ApScan, BusInfo, MatrixDevice, Queue, QueueStatus};
use vfio::write::SysfsWriter;

/// How a generation answers an assign/unassign while a guest runs with the mdev.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunningGuestChange {
    /// EBUSY: the mdev is attached to a KVM (`matrix_mdev->kvm`) and the driver refuses.
    Ebusy,
    /// The write succeeds and the guest's APCB follows (filtered into `guest_matrix`).
    UpdatesGuest,
}

/// How a generation answers `remove` while a guest (QEMU) holds the mdev.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveInUse {
    /// `vfio_ap_mdev_remove` returns -EBUSY (`if (matrix_mdev->kvm) return -EBUSY;`), and
    /// the mdev core hands it to the writer.
    Ebusy,
    /// The remove callback cannot fail: it calls `vfio_unregister_group_dev`, which waits
    /// (10 s rounds, uninterruptible after the first signal) until QEMU closes the device.
    Blocks,
}

/// The rules of one kernel generation, each with the source it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The release modelled, e.g. `6.1`.
    pub kernel: &'static str,
    /// A running guest and assign/unassign. EBUSY before the dynamic-configuration rework
    /// (merged with tag s390-5.20-1, merge commit 24cb958695724ffb4488ef4f65892c0767bcd2f2,
    /// Linux 6.0); the guest follows from 6.0 on (6.1.192 `vfio_ap_mdev_update_guest_apcb`).
    pub running_guest_change: RunningGuestChange,
    /// Before 6.0 every APQN a new assignment adds must be a queue bound to vfio_ap
    /// (`vfio_ap_mdev_verify_queues_reserved_for_apid/apqi`, else EADDRNOTAVAIL); 6.0's
    /// "s390/vfio-ap: allow assignment of unavailable AP queues to mdev device" drops that.
    pub assign_needs_bound_queues: bool,
    /// The mdev attribute `guest_matrix` (from 6.0 with the shadow APCB; 6.1.192 line 1504).
    pub guest_matrix: bool,
    /// Queue `status` (`in use` / `assigned` / `unassigned`): commit f139862b92cf
    /// "s390/vfio-ap: add status attribute to AP queue device's sysfs dir", tag s390-5.17-1.
    pub queue_status: bool,
    /// The mdev attribute `ap_config`: commits e12aa0b5b2fb (read) and 8fb456bc9f9b
    /// (write), the mdevctl-automation series, tag s390-6.10-1 (Linux 6.10).
    pub ap_config: bool,
    /// The matrix device's `features`: commit 2d8721364ce8 "s390/vfio-ap: Driver feature
    /// advertisement", tag s390-6.12-2 (Linux 6.12); prints `guest_matrix hotplug ap_config`.
    pub features: Option<&'static str>,
    /// `remove` while a guest holds the mdev: EBUSY up to 5.14; blocking from 5.15 on
    /// ("vfio/ap_ops: Convert to use vfio_register_group_dev()", which made the remove
    /// callback void and call `vfio_unregister_group_dev`).
    pub remove_in_use: RemoveInUse,
    /// Whether an apmask/aqmask write that would hand queues assigned to an mdev back to
    /// the host drivers is refused with EBUSY: the AP bus asks the drivers' `in_use`
    /// callback, which vfio_ap got in 6.0 (commit 3f85d1df26a9 "s390/vfio-ap: implement
    /// in-use callback for vfio_ap driver", part of the dynamic-configuration series).
    /// Before it the write succeeds and the queues leave vfio_ap.
    pub mask_write_checks_in_use: bool,
    /// Whether a blocked `remove` asks QEMU to let go (`vfio_ap_mdev_request`, the request
    /// IRQ, VFIO_AP_REQ_IRQ_INDEX): in 6.12.118 (added before 6.8), absent from 6.1.192,
    /// where the writer simply waits.
    pub request_irq: bool,
}

/// Linux 5.10 (Debian 11; every vfio_ap before 5.15): the 5.15 rules, but `remove` of an
/// mdev a guest holds answers EBUSY (vfio_ap_ops.c before the vfio_register_group_dev
/// conversion).
pub const LINUX_5_10: Rules = Rules {
    kernel: "5.10",
    running_guest_change: RunningGuestChange::Ebusy,
    assign_needs_bound_queues: true,
    guest_matrix: false,
    queue_status: false,
    ap_config: false,
    features: None,
    remove_in_use: RemoveInUse::Ebusy,
    mask_write_checks_in_use: false,
    request_irq: false,
};

/// Linux 5.15 (Ubuntu 22.04): no dynamic configuration, no queue status
/// (5.17), `remove` blocks.
pub const LINUX_5_15: Rules = Rules {
    kernel: "5.15",
    remove_in_use: RemoveInUse::Blocks,
    ..LINUX_5_10
};

/// Linux 6.1 (Debian 12; 6.0 to 6.9): dynamic configuration with `guest_matrix`, queue
/// `status`; no `ap_config`, no `features`, no request IRQ (read from linux-source 6.1.192).
pub const LINUX_6_1: Rules = Rules {
    kernel: "6.1",
    running_guest_change: RunningGuestChange::UpdatesGuest,
    assign_needs_bound_queues: false,
    guest_matrix: true,
    queue_status: true,
    ap_config: false,
    features: None,
    remove_in_use: RemoveInUse::Blocks,
    mask_write_checks_in_use: true,
    request_irq: false,
};

/// Linux 6.13 (6.12 on): as 6.1, plus `ap_config`, `features` and the request IRQ (read
/// from linux-source 6.12.118; 6.13 changed none of them).
pub const LINUX_6_13: Rules = Rules {
    kernel: "6.13",
    ap_config: true,
    features: Some("guest_matrix hotplug ap_config"),
    request_irq: true,
    ..LINUX_6_1
};

/// The kernel generations users run, each with the vfio_ap behaviour of its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Generation {
    /// [`LINUX_5_10`].
    V5_10,
    /// [`LINUX_5_15`].
    V5_15,
    /// [`LINUX_6_1`].
    V6_1,
    /// [`LINUX_6_13`].
    V6_13,
}

impl Generation {
    /// Every generation, oldest first.
    pub const ALL: [Generation; 4] = [
        Generation::V5_10,
        Generation::V5_15,
        Generation::V6_1,
        Generation::V6_13,
    ];

    /// The rules of this generation.
    pub fn rules(self) -> &'static Rules {
        match self {
            Generation::V5_10 => &LINUX_5_10,
            Generation::V5_15 => &LINUX_5_15,
            Generation::V6_1 => &LINUX_6_1,
            Generation::V6_13 => &LINUX_6_13,
        }
    }

    /// Whether mdevs have `guest_matrix` and running guests follow every change.
    pub fn dynamic(self) -> bool {
        self.rules().running_guest_change == RunningGuestChange::UpdatesGuest
    }

    /// Whether mdevs have `ap_config`.
    pub fn ap_config(self) -> bool {
        self.rules().ap_config
    }

    /// Whether queues bound to vfio_ap have `status`.
    pub fn queue_status(self) -> bool {
        self.rules().queue_status
    }

    /// The newest generation whose attributes a scan shows: `ap_config` (6.13),
    /// `guest_matrix` (6.1), neither (5.15; the sysfs of 5.10 looks the same). With no mdev
    /// to look at, `features` decides.
    pub fn of_scan(scan: &ApScan) -> Generation {
        let features = scan
            .matrix_device
            .as_ref()
            .map(|d| d.features.clone())
            .unwrap_or_default();
        if scan.mdevs.iter().any(|m| m.ap_config.is_some())
            || features.iter().any(|f| f == "ap_config")
        {
            Generation::V6_13
        } else if scan.mdevs.iter().any(|m| m.guest_matrix.is_some()) {
            Generation::V6_1
        } else {
            Generation::V5_15
        }
    }
}

/// The kernel's `kstrtoul(buf, 0, &v)` as the vfio_ap attributes call it, written here from
/// lib/kstrtox.c rather than taken from the vfio crate, so that the model does not share
/// the reading it checks: `0x` hex, leading `0` octal, else decimal, one `+`, one
/// trailing newline.
fn kernel_kstrtoul(text: &str) -> Option<u64> {
    let t = text.strip_suffix('\n').unwrap_or(text);
    let t = t.strip_prefix('+').unwrap_or(t);
    let (radix, digits) = match t.as_bytes() {
        [b'0', b'x' | b'X', rest @ ..] => (16, rest),
        [b'0', rest @ ..] if !rest.is_empty() => (8, rest),
        all => (10, all),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(radix)?;
        value = value.checked_mul(radix as u64)?.checked_add(d as u64)?;
    }
    Some(value)
}

/// mdev `create`: the kernel's `uuid_is_valid` on the text (36 characters, dashes at 8,
/// 13, 18 and 23), one trailing newline allowed; the name is lower case.
fn kernel_uuid(text: &str) -> Option<String> {
    let t = text.strip_suffix('\n').unwrap_or(text);
    let ok = t.len() == 36
        && t.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then(|| t.to_ascii_lowercase())
}

/// One mdev of the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelMdev {
    /// Adapters.
    pub apm: Mask,
    /// Usage domains.
    pub aqm: Mask,
    /// Control domains.
    pub adm: Mask,
    /// A guest runs with it (QEMU holds the device, KVM attached).
    pub in_use: bool,
    /// Its IOMMU group number (taken from the host tree the model starts from).
    pub iommu_group: Option<u32>,
    /// Its iommufd cdev name (likewise).
    pub vfio_cdev: Option<String>,
}

/// The modelled kernel state.
#[derive(Debug, Clone)]
pub struct ModelState {
    /// `apmask`.
    pub apmask: Mask,
    /// `aqmask`.
    pub aqmask: Mask,
    /// `ap_max_adapter_id`.
    pub max_adapter_id: u8,
    /// `ap_max_domain_id`.
    pub max_domain_id: u8,
    /// Existing queues (for the scan and guest_matrix filtering).
    pub queues: Vec<Apqn>,
    /// mdevs by UUID.
    pub mdevs: BTreeMap<String, ModelMdev>,
    /// `available_instances`.
    pub available_instances: u64,
    /// Whose rules apply.
    pub generation: Generation,
}

/// The kernel model; see the module docs.
#[derive(Debug)]
pub struct KernelModel {
    state: RefCell<ModelState>,
    faults: RefCell<Vec<(String, i32)>>,
    swallowed: RefCell<Vec<String>>,
    writes: RefCell<Vec<(String, Vec<u8>)>>,
    frozen: RefCell<Option<ApScan>>,
}

fn err(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

impl KernelModel {
    /// A model of a host in this state.
    pub fn new(state: ModelState) -> Self {
        KernelModel {
            state: RefCell::new(state),
            faults: RefCell::new(Vec::new()),
            swallowed: RefCell::new(Vec::new()),
            writes: RefCell::new(Vec::new()),
            frozen: RefCell::new(None),
        }
    }

    /// A model of the host a scan shows.
    pub fn from_scan(scan: &ApScan) -> Self {
        let bus = scan.bus.clone().unwrap_or_default();
        let mut mdevs = BTreeMap::new();
        for m in &scan.mdevs {
            mdevs.insert(
                m.uuid.clone(),
                ModelMdev {
                    apm: Mask::from_bits(m.adapters.iter().map(|a| a.0)),
                    aqm: Mask::from_bits(m.domains.iter().map(|d| d.0)),
                    adm: Mask::from_bits(m.control_domains.iter().map(|d| d.0)),
                    in_use: scan.in_use(m),
                    iommu_group: m.iommu_group,
                    vfio_cdev: m.vfio_cdev.clone(),
                },
            );
        }
        KernelModel::new(ModelState {
            apmask: bus.apmask.unwrap_or_else(Mask::full),
            aqmask: bus.aqmask.unwrap_or_else(Mask::full),
            max_adapter_id: bus.max_adapter_id.unwrap_or(255),
            max_domain_id: bus.max_domain_id.unwrap_or(255),
            queues: scan.queues.iter().map(|q| q.apqn).collect(),
            mdevs,
            available_instances: scan
                .matrix_device
                .as_ref()
                .and_then(|d| d.available_instances)
                .unwrap_or(65536),
            generation: Generation::of_scan(scan),
        })
    }

    /// The model of the host tree under `root`.
    pub fn from_root(root: &HostRoot) -> Self {
        Self::from_scan(&ApScan::read(root))
    }

    /// The model of the host tree under `root`, with the rules of `generation`.
    pub fn of_generation(root: &HostRoot, generation: Generation) -> Self {
        let model = Self::from_root(root);
        model.with_state(|s| s.generation = generation);
        model
    }

    /// Makes the next write to a path ending in `suffix` fail with `errno` (once).
    pub fn fail_on(&self, suffix: &str, errno: i32) {
        self.faults.borrow_mut().push((suffix.to_string(), errno));
    }

    /// Makes the next write to a path ending in `suffix` succeed without any effect (once),
    /// as `ap_config`'s store did in the first commit of its series (e12aa0b5b2fb).
    pub fn swallow(&self, suffix: &str) {
        self.swallowed.borrow_mut().push(suffix.to_string());
    }

    /// Makes the next [`SysfsWriter::scan`] return the current state even if the state
    /// changes before the writes (a race with another process).
    pub fn freeze_scan(&self) {
        let scan = self.current_scan();
        *self.frozen.borrow_mut() = Some(scan);
    }

    /// Changes the state directly (another process acting).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut ModelState) -> R) -> R {
        f(&mut self.state.borrow_mut())
    }

    /// A copy of the state.
    pub fn state(&self) -> ModelState {
        self.state.borrow().clone()
    }

    /// Every successful write, in order.
    pub fn writes(&self) -> Vec<(String, Vec<u8>)> {
        self.writes.borrow().clone()
    }

    fn current_scan(&self) -> ApScan {
        let st = self.state.borrow();
        let mut queues: Vec<Queue> = st
            .queues
            .iter()
            .map(|q| {
                let reserved = st.apmask.test(q.apid.0) && st.aqmask.test(q.apqi.0);
                let owner = st
                    .mdevs
                    .values()
                    .find(|m| m.apm.test(q.apid.0) && m.aqm.test(q.apqi.0));
                Queue {
                    apqn: *q,
                    driver: Some(if reserved { "cex4queue" } else { "vfio_ap" }.to_string()),
                    status: if reserved || !st.generation.queue_status() {
                        None
                    } else {
                        Some(match owner {
                            Some(m) if m.in_use => QueueStatus::InUse,
                            Some(_) => QueueStatus::Assigned,
                            None => QueueStatus::Unassigned,
                        })
                    },
                    online: if reserved { Some(true) } else { None },
                }
            })
            .collect();
        queues.sort_by_key(|q| q.apqn);
        let mdevs = st
            .mdevs
            .iter()
            .map(|(uuid, m)| {
                let adapters: Vec<Apid> = m.apm.iter().map(Apid).collect();
                let domains: Vec<Apqi> = m.aqm.iter().map(Apqi).collect();
                let matrix = parse_matrix(&format_matrix(&adapters, &domains))
                    .unwrap_or_default()
                    .apqns;
                MdevInfo {
                    uuid: uuid.clone(),
                    mdev_type: Some(MDEV_TYPE.into()),
                    driver: Some("vfio_ap_mdev".into()),
                    guest_matrix: st
                        .generation
                        .rules()
                        .guest_matrix
                        .then(|| guest_matrix(&st, m)),
                    adapters,
                    domains,
                    matrix,
                    control_domains: m.adm.iter().map(Apqi).collect(),
                    ap_config: if st.generation.ap_config() {
                        Some(ApConfig {
                            apm: m.apm,
                            aqm: m.aqm,
                            adm: m.adm,
                        })
                    } else {
                        None
                    },
                    iommu_group: m.iommu_group,
                    vfio_cdev: m.vfio_cdev.clone(),
                }
            })
            .collect();
        ApScan {
            bus: Some(BusInfo {
                apmask: Some(st.apmask),
                aqmask: Some(st.aqmask),
                max_adapter_id: Some(st.max_adapter_id),
                max_domain_id: Some(st.max_domain_id),
                ..BusInfo::default()
            }),
            cards: Vec::new(),
            queues,
            matrix_device: Some(MatrixDevice {
                features: st
                    .generation
                    .rules()
                    .features
                    .map(|f| f.split_whitespace().map(String::from).collect())
                    .unwrap_or_default(),
                available_instances: Some(st.available_instances),
            }),
            mdevs,
            definitions: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn apply(&self, path: &str, value: &[u8]) -> io::Result<()> {
        let text = std::str::from_utf8(value).map_err(|_| err(libc::EINVAL))?;
        let mut st = self.state.borrow_mut();
        match path {
            "sys/bus/ap/apmask" | "sys/bus/ap/aqmask" => {
                let is_ap = path.ends_with("apmask");
                let cur = if is_ap { st.apmask } else { st.aqmask };
                let new = cur.kernel_write(value).map_err(|_| err(libc::EINVAL))?;
                let (apm, aqm) = if is_ap {
                    (new, st.aqmask)
                } else {
                    (st.apmask, new)
                };
                // queues newly reserved for the host may not be assigned to any mdev (from
                // 6.0; before, the queues simply leave vfio_ap)
                let checks_in_use = st.generation.rules().mask_write_checks_in_use;
                for m in st.mdevs.values().filter(|_| checks_in_use) {
                    for a in m.apm.iter() {
                        for d in m.aqm.iter() {
                            let was = st.apmask.test(a) && st.aqmask.test(d);
                            if apm.test(a) && aqm.test(d) && !was {
                                return Err(err(libc::EBUSY));
                            }
                        }
                    }
                }
                if is_ap {
                    st.apmask = new;
                } else {
                    st.aqmask = new;
                }
                Ok(())
            }
            p if p == format!("{TYPE_DIR}/create") => {
                let uuid = text.strip_suffix('\n').unwrap_or(text);
                let uuid = kernel_uuid(uuid).ok_or_else(|| err(libc::EINVAL))?;
                if st.mdevs.contains_key(&uuid) {
                    return Err(err(libc::EEXIST));
                }
                if st.available_instances == 0 {
                    return Err(err(libc::EUSERS));
                }
                st.available_instances -= 1;
                st.mdevs.insert(uuid, ModelMdev::default());
                Ok(())
            }
            p => {
                let rest = p
                    .strip_prefix(MATRIX_DIR)
                    .and_then(|r| r.strip_prefix('/'))
                    .ok_or_else(|| err(libc::ENOENT))?;
                let (uuid, attr) = rest.split_once('/').ok_or_else(|| err(libc::EISDIR))?;
                let uuid = uuid.to_string();
                let Some(m) = st.mdevs.get(&uuid).cloned() else {
                    return Err(err(libc::ENOENT));
                };
                let rules = st.generation.rules();
                // before 6.0: "If the KVM guest is running, disallow assignment" (EBUSY first)
                let running_old =
                    m.in_use && rules.running_guest_change == RunningGuestChange::Ebusy;
                let mut new = m.clone();
                match attr {
                    "remove" => {
                        let v = kernel_kstrtoul(text).ok_or_else(|| err(libc::EINVAL))?;
                        if v != 0 {
                            if m.in_use {
                                return Err(match rules.remove_in_use {
                                    RemoveInUse::Ebusy => err(libc::EBUSY),
                                    // vfio_unregister_group_dev waits until QEMU closes
                                    // the device: the write does not return while the
                                    // guest holds it
                                    RemoveInUse::Blocks => blocks(),
                                });
                            }
                            st.mdevs.remove(&uuid);
                            st.available_instances += 1;
                        }
                        return Ok(());
                    }
                    "ap_config" => {
                        if !rules.ap_config {
                            return Err(err(libc::ENOENT));
                        }
                        let cfg = ApConfig::parse(text).ok_or_else(|| err(libc::EINVAL))?;
                        new.apm = cfg.apm;
                        new.aqm = cfg.aqm;
                        new.adm = cfg.adm;
                        if cfg.apm.iter().any(|a| a > st.max_adapter_id)
                            || cfg.aqm.iter().any(|d| d > st.max_domain_id)
                            || cfg.adm.iter().any(|d| d > st.max_domain_id)
                        {
                            return Err(err(libc::ENODEV));
                        }
                    }
                    _ => {
                        let (assign, what) = if let Some(w) = attr.strip_prefix("assign_") {
                            (true, w)
                        } else if let Some(w) = attr.strip_prefix("unassign_") {
                            (false, w)
                        } else {
                            return Err(err(libc::ENOENT));
                        };
                        if running_old {
                            return Err(err(libc::EBUSY));
                        }
                        let n = kernel_kstrtoul(text).ok_or_else(|| err(libc::EINVAL))?;
                        let (max, slot) = match what {
                            "adapter" => (st.max_adapter_id, &mut new.apm),
                            "domain" => (st.max_domain_id, &mut new.aqm),
                            "control_domain" => (st.max_domain_id, &mut new.adm),
                            _ => return Err(err(libc::ENOENT)),
                        };
                        if n > max as u64 {
                            return Err(err(libc::ENODEV));
                        }
                        if assign {
                            slot.set(n as u8);
                        } else {
                            slot.clear(n as u8);
                        }
                        if !assign || what == "control_domain" {
                            st.mdevs.insert(uuid, new);
                            return Ok(());
                        }
                        if rules.assign_needs_bound_queues
                            && !reserved_for_vfio(&st, &new, what, n as u8)
                        {
                            return Err(err(libc::EADDRNOTAVAIL));
                        }
                    }
                }
                // the new APM x AQM: reserved for the host? owned by another mdev?
                for a in new.apm.iter() {
                    for d in new.aqm.iter() {
                        if st.apmask.test(a) && st.aqmask.test(d) {
                            return Err(err(libc::EADDRNOTAVAIL));
                        }
                    }
                }
                for (other, o) in &st.mdevs {
                    if *other == uuid {
                        continue;
                    }
                    if !new.apm.and(&o.apm).is_empty() && !new.aqm.and(&o.aqm).is_empty() {
                        return Err(err(libc::EADDRINUSE));
                    }
                }
                st.mdevs.insert(uuid, new);
                Ok(())
            }
        }
    }
}

/// The "would block" answer of a write the kernel does not return from while a guest holds
/// the device. A bounded write turns it into a timeout; a plain write must never meet it.
fn blocks() -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        "the kernel blocks this write until QEMU releases the device",
    )
}

/// 5.x `vfio_ap_mdev_verify_queues_reserved_for_apid` / `_apqi`: every APQN the
/// assignment adds must be a queue bound to vfio_ap; with nothing assigned on the other
/// axis, one bound queue of that adapter (domain) is enough.
fn reserved_for_vfio(st: &ModelState, m: &ModelMdev, what: &str, id: u8) -> bool {
    let bound = |a: u8, d: u8| {
        st.queues.contains(&Apqn::new(a, d)) && !(st.apmask.test(a) && st.aqmask.test(d))
    };
    let adapter = what == "adapter";
    let apqn = |other: u8| if adapter { (id, other) } else { (other, id) };
    let others = if adapter { m.aqm } else { m.apm };
    if others.is_empty() {
        (0..=255u8).any(|o| {
            let (a, d) = apqn(o);
            bound(a, d)
        })
    } else {
        others.iter().all(|o| {
            let (a, d) = apqn(o);
            bound(a, d)
        })
    }
}

/// What the kernel gives the guest: adapters with a missing or host-reserved queue among
/// the assigned domains are dropped whole.
fn guest_matrix(st: &ModelState, m: &ModelMdev) -> Vec<Apqn> {
    let mut out = Vec::new();
    for a in m.apm.iter() {
        let usable = m.aqm.iter().all(|d| {
            st.queues.contains(&Apqn::new(a, d)) && !(st.apmask.test(a) && st.aqmask.test(d))
        });
        if usable {
            out.extend(m.aqm.iter().map(|d| Apqn::new(a, d)));
        }
    }
    out
}

impl SysfsWriter for KernelModel {
    /// A write that would block fails at once with the bound's timeout: the model cannot
    /// wait, and a real kernel would not return before QEMU lets go.
    fn write_bounded(&self, path: &str, value: &[u8], _timeout: Duration) -> io::Result<()> {
        match self.write(path, value) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(vfio::write::timed_out()),
            other => other,
        }
    }

    fn write(&self, path: &str, value: &[u8]) -> io::Result<()> {
        let injected = {
            let mut faults = self.faults.borrow_mut();
            faults
                .iter()
                .position(|(s, _)| path.ends_with(s.as_str()))
                .map(|i| faults.remove(i).1)
        };
        if let Some(errno) = injected {
            return Err(err(errno));
        }
        let swallowed = {
            let mut list = self.swallowed.borrow_mut();
            list.iter()
                .position(|s| path.ends_with(s.as_str()))
                .map(|i| list.remove(i))
        };
        if swallowed.is_some() {
            return Ok(());
        }
        self.apply(path, value)?;
        self.writes
            .borrow_mut()
            .push((path.to_string(), value.to_vec()));
        Ok(())
    }

    /// The model's state, with the mdevctl definitions read from the host tree.
    fn scan(&self, root: &HostRoot) -> ApScan {
        let mut scan = match self.frozen.borrow_mut().take() {
            Some(s) => s,
            None => self.current_scan(),
        };
        scan.read_definitions(root);
        scan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";
    const V: &str = "11111111-2222-4333-8444-555555555555";

    fn model() -> KernelModel {
        let tree = crate::hosttree::HostTree::from_example("z16-se");
        KernelModel::from_root(&HostRoot::open(tree.path()).unwrap())
    }

    fn errno(r: io::Result<()>) -> i32 {
        r.unwrap_err().raw_os_error().unwrap()
    }

    #[test]
    fn kernel_rules() {
        let k = model();
        let create = format!("{TYPE_DIR}/create");
        let attr = |u: &str, a: &str| format!("{MATRIX_DIR}/{u}/{a}");
        assert_eq!(errno(k.write(&create, b"not-a-uuid")), libc::EINVAL);
        assert_eq!(errno(k.write(&create, U.as_bytes())), libc::EEXIST);
        k.write(&create, format!("{V}\n").as_bytes()).unwrap();
        // 03.0004 is reserved for the host
        k.write(&attr(V, "assign_domain"), b"4").unwrap();
        assert_eq!(
            errno(k.write(&attr(V, "assign_adapter"), b"3")),
            libc::EADDRNOTAVAIL
        );
        // 05.0004 belongs to U
        assert_eq!(
            errno(k.write(&attr(V, "assign_adapter"), b"5")),
            libc::EADDRINUSE
        );
        assert_eq!(
            errno(k.write(&attr(V, "assign_adapter"), b"256")),
            libc::ENODEV
        );
        assert_eq!(
            errno(k.write(&attr(V, "assign_adapter"), b"x")),
            libc::EINVAL
        );
        assert_eq!(
            errno(k.write(&attr(V, "assign_adapter"), b"08")),
            libc::EINVAL
        );
        // octal: 010 = adapter 8
        k.write(&attr(V, "unassign_domain"), b"4").unwrap();
        k.write(&attr(V, "assign_adapter"), b"010").unwrap();
        assert!(k.state().mdevs[V].apm.test(8));
        // idempotent
        k.write(&attr(V, "assign_adapter"), b"8\n").unwrap();
        k.write(&attr(V, "unassign_adapter"), b"9").unwrap();
        // control domains are only range-checked
        k.write(&attr(V, "assign_control_domain"), b"0xab").unwrap();
        // masks: taking back 05.0004 (assigned to U) is EBUSY
        assert_eq!(errno(k.write("sys/bus/ap/apmask", b"+5")), libc::EBUSY);
        assert_eq!(errno(k.write("sys/bus/ap/apmask", b"+5,x")), libc::EINVAL);
        k.write("sys/bus/ap/apmask", b"-3").unwrap();
        // remove
        k.write(&attr(V, "remove"), b"1").unwrap();
        assert!(!k.state().mdevs.contains_key(V));
        assert_eq!(errno(k.write(&attr(V, "remove"), b"1")), libc::ENOENT);
    }

    #[test]
    fn old_kernel_refuses_changes_to_a_running_guest_and_instances_run_out() {
        let k = model();
        k.with_state(|s| {
            s.generation = Generation::V5_15;
            s.mdevs.get_mut(U).unwrap().in_use = true;
            s.available_instances = 0;
        });
        let attr = format!("{MATRIX_DIR}/{U}/unassign_domain");
        assert_eq!(errno(k.write(&attr, b"4")), libc::EBUSY);
        assert_eq!(
            errno(k.write(&format!("{TYPE_DIR}/create"), V.as_bytes())),
            libc::EUSERS
        );
        // 5.10 answers EBUSY to remove; from 5.15 on the write blocks
        let remove = format!("{MATRIX_DIR}/{U}/remove");
        k.with_state(|s| s.generation = Generation::V5_10);
        assert_eq!(errno(k.write(&remove, b"1")), libc::EBUSY);
        for g in [Generation::V5_15, Generation::V6_1, Generation::V6_13] {
            k.with_state(|s| s.generation = g);
            let e = k.write(&remove, b"1").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{g:?}");
            let e = k
                .write_bounded(&remove, b"1", Duration::from_secs(1))
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT), "{g:?}");
        }
    }

    #[test]
    fn assignment_rules_differ_between_generations() {
        // 5.x needs every new APQN bound to vfio_ap; 6.x accepts APQNs that do not exist
        // (an adapter not configured yet), and guest_matrix filters them out
        for g in Generation::ALL {
            let k = model();
            k.with_state(|s| s.generation = g);
            let create = format!("{TYPE_DIR}/create");
            k.write(&create, V.as_bytes()).unwrap();
            k.write(&format!("{MATRIX_DIR}/{V}/assign_domain"), b"171")
                .unwrap();
            // adapter 9 has no queues on this host
            let r = k.write(&format!("{MATRIX_DIR}/{V}/assign_adapter"), b"9");
            if g <= Generation::V5_15 {
                assert_eq!(errno(r), libc::EADDRNOTAVAIL);
            } else {
                r.unwrap();
                let scan = k.scan(&HostRoot::system());
                assert_eq!(scan.mdev(V).unwrap().guest_matrix, Some(vec![]));
            }
        }
    }

    #[test]
    fn attributes_per_generation() {
        for g in Generation::ALL {
            let k = model();
            k.with_state(|s| s.generation = g);
            let scan = k.scan(&HostRoot::system());
            let m = scan.mdev(U).unwrap();
            assert_eq!(m.guest_matrix.is_some(), g >= Generation::V6_1, "{g:?}");
            assert_eq!(m.ap_config.is_some(), g >= Generation::V6_13, "{g:?}");
            let q = scan.queue(Apqn::new(5, 4)).unwrap();
            assert_eq!(q.status.is_some(), g >= Generation::V6_1, "{g:?}");
            // the sysfs of 5.10 and 5.15 look alike
            assert_eq!(Generation::of_scan(&scan), g.max(Generation::V5_15));
            assert_eq!(scan.updates_running_guests(m), g >= Generation::V6_1);
        }
    }

    #[test]
    fn injected_faults_fire_once() {
        let k = model();
        k.fail_on("/assign_domain", libc::EIO);
        let p = format!("{MATRIX_DIR}/{U}/assign_domain");
        assert_eq!(errno(k.write(&p, b"4")), libc::EIO);
        k.write(&p, b"4").unwrap();
        assert_eq!(k.writes().len(), 1);
    }

    #[test]
    fn scan_of_the_model_shows_guest_matrix_filtering() {
        let k = model();
        k.with_state(|s| s.queues.retain(|q| *q != Apqn::new(5, 4)));
        let scan = k.scan(&HostRoot::system());
        let m = scan.mdev(U).unwrap();
        assert_eq!(m.matrix.len(), 2);
        assert_eq!(m.guest_matrix, Some(vec![]));
    }
}
