//! A model of the kernel's vfio_ap and AP bus write rules, as a [`SysfsWriter`].
//!
//! It answers writes with the errnos the kernel gives (see the module docs of
//! [`crate::lifecycle`] for the rules): exclusivity between mdevs (EADDRINUSE), mask
//! reservation (EADDRNOTAVAIL), ids above the limits (ENODEV), idempotent re-assign, create
//! errors (EINVAL, EEXIST, EUSERS), mask writes that would take assigned queues back
//! (EBUSY), old-kernel EBUSY on a running guest, and failure injection for rollback tests.

use crate::ap::{kstrtoul, Apid, Apqi, Apqn};
use crate::mask::Mask;
use crate::mdev::{format_matrix, ApConfig, MdevInfo, MATRIX_DIR, MDEV_TYPE, TYPE_DIR};
use crate::scan::{ApScan, BusInfo, MatrixDevice, Queue, QueueStatus};
use crate::write::SysfsWriter;
use host::HostRoot;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;

/// One mdev of the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelMdev {
    /// Adapters.
    pub apm: Mask,
    /// Usage domains.
    pub aqm: Mask,
    /// Control domains.
    pub adm: Mask,
    /// A guest runs with it.
    pub in_use: bool,
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
    /// A newer kernel (`guest_matrix hotplug ap_config`); an old one refuses changes to a
    /// running guest with EBUSY.
    pub hotplug: bool,
}

/// The kernel model; see the module docs.
#[derive(Debug)]
pub struct KernelModel {
    state: RefCell<ModelState>,
    faults: RefCell<Vec<(String, i32)>>,
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
                },
            );
        }
        let hotplug = scan.matrix_device.as_ref().is_some_and(|d| d.hotplug());
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
            hotplug,
        })
    }

    /// The model of the example host `z16-se` as scanned from a tree.
    pub fn from_root(root: &HostRoot) -> Self {
        Self::from_scan(&ApScan::read(root))
    }

    /// Makes the next write to a path ending in `suffix` fail with `errno` (once).
    pub fn fail_on(&self, suffix: &str, errno: i32) {
        self.faults.borrow_mut().push((suffix.to_string(), errno));
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
                    status: if reserved {
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
                let matrix = crate::mdev::parse_matrix(&format_matrix(&adapters, &domains))
                    .unwrap_or_default()
                    .apqns;
                MdevInfo {
                    uuid: uuid.clone(),
                    mdev_type: Some(MDEV_TYPE.into()),
                    driver: Some("vfio_ap_mdev".into()),
                    guest_matrix: Some(guest_matrix(&st, m)),
                    adapters,
                    domains,
                    matrix,
                    control_domains: m.adm.iter().map(Apqi).collect(),
                    ap_config: if st.hotplug {
                        Some(ApConfig {
                            apm: m.apm,
                            aqm: m.aqm,
                            adm: m.adm,
                        })
                    } else {
                        None
                    },
                    iommu_group: None,
                    vfio_cdev: None,
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
                features: if st.hotplug {
                    vec!["guest_matrix".into(), "hotplug".into(), "ap_config".into()]
                } else {
                    Vec::new()
                },
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
                // queues newly reserved for the host may not be assigned to any mdev
                for m in st.mdevs.values() {
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
                let uuid = crate::error::normalize_uuid(uuid)
                    .ok()
                    .filter(|_| uuid.len() == 36)
                    .ok_or_else(|| err(libc::EINVAL))?;
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
                let running_old = m.in_use && !st.hotplug;
                let mut new = m.clone();
                match attr {
                    "remove" => {
                        let v = kstrtoul(text).ok_or_else(|| err(libc::EINVAL))?;
                        if v != 0 {
                            if m.in_use {
                                return Err(err(libc::EBUSY));
                            }
                            st.mdevs.remove(&uuid);
                            st.available_instances += 1;
                        }
                        return Ok(());
                    }
                    "ap_config" => {
                        if !st.hotplug {
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
                        let n = kstrtoul(text).ok_or_else(|| err(libc::EINVAL))?;
                        let (max, slot) = match what {
                            "adapter" => (st.max_adapter_id, &mut new.apm),
                            "domain" => (st.max_domain_id, &mut new.aqm),
                            "control_domain" => (st.max_domain_id, &mut new.adm),
                            _ => return Err(err(libc::ENOENT)),
                        };
                        if n > max as u64 {
                            return Err(err(libc::ENODEV));
                        }
                        if running_old {
                            return Err(err(libc::EBUSY));
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
                    }
                }
                if running_old {
                    return Err(err(libc::EBUSY));
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
        let tree = testkit::hosttree::HostTree::from_example("z16-se");
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
            s.hotplug = false;
            s.mdevs.get_mut(U).unwrap().in_use = true;
            s.available_instances = 0;
        });
        let attr = format!("{MATRIX_DIR}/{U}/unassign_domain");
        assert_eq!(errno(k.write(&attr, b"4")), libc::EBUSY);
        assert_eq!(
            errno(k.write(&format!("{TYPE_DIR}/create"), V.as_bytes())),
            libc::EUSERS
        );
        assert_eq!(
            errno(k.write(&format!("{MATRIX_DIR}/{U}/remove"), b"1")),
            libc::EBUSY
        );
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
