//! Readiness checks of the vfio_ap side.

use crate::ap::{Apid, Apqn};
use crate::device::{group_status, GroupStatus};
use crate::lifecycle::free_command;
use crate::mdev::MDEV_TYPE;
use crate::mdev_uuid;
use crate::mdevctl::Start;
use crate::scan::{clashes, ApScan, Clash, Owner};
use host::{Check, CheckId, HostRoot};
use std::collections::{BTreeMap, BTreeSet};

/// The vfio_ap matrix device; it exists exactly when the vfio_ap module is loaded.
pub const MATRIX_DEVICE: &str = "sys/devices/vfio_ap/matrix";

/// The ids of [`mdev_checks`], in order.
pub const MDEV_CHECK_IDS: [CheckId; 8] = [
    CheckId::MdevExists,
    CheckId::MdevType,
    CheckId::MdevMatrix,
    CheckId::MdevQueues,
    CheckId::MdevConflicts,
    CheckId::MdevMasks,
    CheckId::MdevFree,
    CheckId::MdevPersistent,
];

/// `vfio-ap-module`: the vfio_ap module is loaded (its matrix device exists).
pub fn module_loaded(root: &HostRoot) -> Check {
    const ID: CheckId = CheckId::VfioApModule;
    if root.is_dir(MATRIX_DEVICE) {
        Check::pass(ID, "/sys/devices/vfio_ap/matrix exists: vfio_ap is loaded")
    } else {
        Check::fail(
            ID,
            "/sys/devices/vfio_ap/matrix does not exist: the vfio_ap module is not loaded",
            "run `modprobe vfio_ap` (and add vfio_ap to /etc/modules-load.d/ to load it at boot)",
        )
    }
}

/// The checks of one mdev: mdev-exists, mdev-type, mdev-matrix, mdev-queues,
/// mdev-conflicts, mdev-masks, mdev-free, mdev-persistent, in that order.
pub fn mdev_checks(root: &HostRoot, uuid: &str) -> Vec<Check> {
    let scan = ApScan::read_for_checks(root);
    mdev_checks_with(root, &scan, uuid)
}

fn list(apqns: &[Apqn]) -> String {
    apqns
        .iter()
        .map(|q| q.describe())
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`mdev_checks`] on a scan already made (for checking many mdevs); a full
/// [`ApScan::read`] or an [`ApScan::read_for_checks`].
pub fn mdev_checks_with(root: &HostRoot, scan: &ApScan, uuid: &str) -> Vec<Check> {
    checks_inner(root, scan, &scan.owners(), uuid)
}

/// The checks of every active or defined mdev (active ones first), sharing one owner map.
pub fn all_mdev_checks(root: &HostRoot, scan: &ApScan) -> Vec<(String, Vec<Check>)> {
    let owners = scan.owners();
    let mut uuids: Vec<&str> = scan.mdevs.iter().map(|m| m.uuid.as_str()).collect();
    let active: BTreeSet<&str> = uuids.iter().copied().collect();
    uuids.extend(
        scan.definitions
            .iter()
            .map(|d| d.uuid.as_str())
            .filter(|u| !active.contains(u)),
    );
    uuids
        .into_iter()
        .map(|u| (u.to_string(), checks_inner(root, scan, &owners, u)))
        .collect()
}

fn checks_inner(
    root: &HostRoot,
    scan: &ApScan,
    owners: &BTreeMap<Apqn, Vec<Owner>>,
    uuid: &str,
) -> Vec<Check> {
    let mut out = active_checks(root, scan, owners, uuid);
    out.push(match mdev_uuid::normalize(uuid) {
        Ok(u) => persistent_check(root, scan, &u),
        Err(_) => Check::skip(CheckId::MdevPersistent, "no valid mdev UUID"),
    });
    out
}

/// `mdev-persistent`: will mdevctl (with ap-check as its callout) start this mdev's autostart
/// definition at the next boot? ap-check refuses a definition with an APQN that the
/// persistent masks (chzdev's udev rule, else the active masks) reserve for the host.
fn persistent_check(root: &HostRoot, scan: &ApScan, uuid: &str) -> Check {
    const ID: CheckId = CheckId::MdevPersistent;
    let Some(def) = scan.definition(uuid) else {
        return Check::skip(ID, format!("mdev {uuid} has no mdevctl definition"));
    };
    if def.start != Start::Auto {
        return Check::pass(
            ID,
            format!("the definition of mdev {uuid} is started by hand (manual), not at boot"),
        );
    }
    let rule = match crate::persistent::PersistentMasks::read(root) {
        Ok(r) => r,
        Err(e) => {
            return Check::fail(
                ID,
                format!("{e}: ap-check cannot read the persistent masks, so mdevctl will refuse the definition at boot"),
                "rewrite the rule: aplaunch ap masks --persistent --apmask=... --aqmask=...",
            )
        }
    };
    let Some(bus) = scan.bus.as_ref() else {
        return Check::skip(ID, "no AP bus: the masks at boot are unknown");
    };
    let (Some(ap), Some(aq)) = (bus.apmask, bus.aqmask) else {
        return Check::skip(ID, "/sys/bus/ap/apmask or aqmask could not be read");
    };
    let masks = rule.as_ref().map(|r| r.masks).unwrap_or_default();
    let (ap, aq) = masks.at_boot(ap, aq);
    let source = if rule.is_some() {
        "the persistent masks (/etc/udev/rules.d/41-ap.rules)"
    } else {
        "the masks at boot (no persistent rule: the active apmask/aqmask)"
    };
    // ap-check reads the definition mdevctl passes it with libap: unassign_* do not count
    let reserved: Vec<Apqn> = def
        .ap_check_apqns()
        .into_iter()
        .filter(|q| ap.test(q.apid.0) && aq.test(q.apqi.0))
        .collect();
    match reserved.first() {
        None => Check::pass(
            ID,
            format!("{source} leave every APQN of the autostart definition of mdev {uuid} to vfio_ap"),
        ),
        Some(first) => Check::fail(
            ID,
            format!(
                "APQN {} of the autostart definition of mdev {uuid} is reserved for the host by {source}: mdevctl and ap-check will refuse to start it at boot",
                list(&reserved)
            ),
            format!(
                "free it persistently: aplaunch ap masks --persistent --apmask=-{} (or --aqmask=-{})",
                first.apid.0, first.apqi.0
            ),
        ),
    }
}

fn active_checks(
    root: &HostRoot,
    scan: &ApScan,
    owners: &BTreeMap<Apqn, Vec<Owner>>,
    uuid: &str,
) -> Vec<Check> {
    let mut out = Vec::with_capacity(8);
    let skip_rest = |out: &mut Vec<Check>, why: &str| {
        for id in &MDEV_CHECK_IDS[out.len()..7] {
            out.push(Check::skip(*id, why.to_string()));
        }
    };
    let uuid = match mdev_uuid::normalize(uuid) {
        Ok(u) => u,
        Err(e) => {
            out.push(Check::fail(
                CheckId::MdevExists,
                e.to_string(),
                "give the mdev's UUID (see `aplaunch ap list`)",
            ));
            skip_rest(&mut out, "no valid mdev UUID");
            return out;
        }
    };
    let Some(m) = scan.mdev(&uuid) else {
        let (msg, hint) = if scan.matrix_device.is_none() {
            (
                format!("mdev {uuid} cannot exist: the vfio_ap module is not loaded"),
                "run `modprobe vfio_ap`, then create or start the mdev".to_string(),
            )
        } else if let Some(d) = scan.definition(&uuid) {
            (
                format!(
                    "mdev {uuid} is defined ({} start, /etc/mdevctl.d/matrix/{uuid}) but not active",
                    d.start.as_str()
                ),
                format!("start it: mdevctl start -u {uuid}"),
            )
        } else {
            (
                format!("no mdev {uuid}: /sys/devices/vfio_ap/matrix/{uuid} does not exist"),
                format!("create it: aplaunch ap mdev create --uuid {uuid} --adapter A --domain D"),
            )
        };
        out.push(Check::fail(CheckId::MdevExists, msg, hint));
        skip_rest(&mut out, &format!("mdev {uuid} does not exist"));
        return out;
    };
    out.push(Check::pass(
        CheckId::MdevExists,
        format!("mdev {uuid} exists ({})", m.sysfs_path()),
    ));

    // mdev-type
    match m.mdev_type.as_deref() {
        Some(MDEV_TYPE) => out.push(Check::pass(
            CheckId::MdevType,
            format!("mdev {uuid} is of type {MDEV_TYPE}"),
        )),
        other => out.push(Check::fail(
            CheckId::MdevType,
            format!(
                "mdev {uuid} has type {:?}, not {MDEV_TYPE}",
                other.unwrap_or("(no mdev_type link)")
            ),
            "crypto passthrough needs a vfio_ap-passthrough mdev: create one with `aplaunch ap mdev create`",
        )),
    }

    // mdev-matrix
    let controls: Vec<String> = m.control_domains.iter().map(|d| d.to_string()).collect();
    let controls = if controls.is_empty() {
        "none".to_string()
    } else {
        controls.join(" ")
    };
    if m.adapters.is_empty() && m.domains.is_empty() {
        out.push(Check::fail(
            CheckId::MdevMatrix,
            format!("mdev {uuid} has no adapter and no usage domain assigned"),
            format!("aplaunch ap mdev assign {uuid} --adapter A --domain D"),
        ));
    } else if m.domains.is_empty() {
        out.push(Check::fail(
            CheckId::MdevMatrix,
            format!(
                "mdev {uuid} has no usage domain (adapters {}, control domains {controls}): at least one usage domain must be assigned",
                m.adapters.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ")
            ),
            format!("aplaunch ap mdev assign {uuid} --domain D"),
        ));
    } else if m.adapters.is_empty() {
        out.push(Check::fail(
            CheckId::MdevMatrix,
            format!("mdev {uuid} has no adapter assigned"),
            format!("aplaunch ap mdev assign {uuid} --adapter A"),
        ));
    } else {
        out.push(Check::pass(
            CheckId::MdevMatrix,
            format!(
                "mdev {uuid}: {} APQN(s) {}; control domains {controls}",
                m.matrix.len(),
                list(&m.matrix)
            ),
        ));
    }

    // mdev-queues
    let mut bad: Vec<String> = Vec::new();
    let mut lost: BTreeSet<Apid> = BTreeSet::new();
    for q in &m.matrix {
        match scan.queue(*q) {
            None => {
                bad.push(format!("{} does not exist on this host", q.describe()));
                lost.insert(q.apid);
            }
            Some(qu) if qu.driver.as_deref() != Some("vfio_ap") => {
                bad.push(format!(
                    "{} is bound to {} instead of vfio_ap",
                    q.describe(),
                    qu.driver.as_deref().unwrap_or("no driver")
                ));
                lost.insert(q.apid);
            }
            Some(_) => {}
        }
    }
    if m.matrix.is_empty() {
        out.push(Check::skip(
            CheckId::MdevQueues,
            format!("mdev {uuid} has no APQN assigned"),
        ));
    } else if bad.is_empty() {
        out.push(Check::pass(
            CheckId::MdevQueues,
            format!(
                "all {} assigned queue(s) exist and are bound to vfio_ap",
                m.matrix.len()
            ),
        ));
    } else {
        let lost: Vec<String> = lost.iter().map(|a| a.describe()).collect();
        let remaining = m.matrix.len()
            - m.matrix
                .iter()
                .filter(|q| lost.contains(&q.apid.describe()))
                .count();
        let msg = format!(
            "{}: the guest will lose {} entirely (guest_matrix drops a whole adapter when one of its queues is unusable)",
            bad.join("; "),
            lost.join(", ")
        );
        let hint = "check the adapters with `aplaunch ap list`; queues reserved by apmask/aqmask are bound to the host drivers (see mdev-masks); unassign adapters that are not configured";
        if remaining == 0 {
            out.push(Check::fail(
                CheckId::MdevQueues,
                format!("{msg}; no usable queue is left"),
                hint,
            ));
        } else {
            out.push(Check::warn(CheckId::MdevQueues, msg, hint));
        }
    }

    // mdev-conflicts
    let mut conflicts = Vec::new();
    let mut first: Option<(Apqn, String)> = None;
    for (q, o, clash) in clashes(owners, &m.matrix, &uuid, true) {
        let held = match clash {
            Clash::Active => "is also assigned to mdev",
            Clash::Autostart => "is also in the autostart definition of mdev",
            Clash::Inactive => continue,
        };
        first.get_or_insert_with(|| (q, o.uuid.clone()));
        conflicts.push(format!("APQN {} {held} {}", q.describe(), o.uuid));
    }
    // this mdev's own autostart definition against other autostart definitions
    if let Some(d) = scan.definition(&uuid).filter(|d| d.start == Start::Auto) {
        for q in d.apqns() {
            if m.matrix.contains(&q) {
                continue; // reported above
            }
            for o in owners.get(&q).into_iter().flatten() {
                if o.uuid != uuid && !o.active && o.autostart {
                    first.get_or_insert_with(|| (q, o.uuid.clone()));
                    conflicts.push(format!(
                        "APQN {} of the autostart definition is also in the autostart definition of mdev {}",
                        q.describe(),
                        o.uuid
                    ));
                }
            }
        }
    }
    if conflicts.is_empty() {
        out.push(Check::pass(
            CheckId::MdevConflicts,
            format!("no other mdev or autostart definition holds an APQN of mdev {uuid}"),
        ));
    } else {
        let hint = match &first {
            Some((q, other)) => format!(
                "an APQN may belong to one mdev only: take APQN {} away from one of them ({}); `aplaunch ap matrix` shows who holds what",
                q.describe(),
                crate::lifecycle::unassign_command(other, *q)
            ),
            None => "an APQN may belong to one mdev only; `aplaunch ap matrix` shows who holds what".to_string(),
        };
        out.push(Check::fail(
            CheckId::MdevConflicts,
            conflicts.join("; "),
            hint,
        ));
    }

    // mdev-masks
    let reserved: Vec<Apqn> = m
        .matrix
        .iter()
        .filter(|q| scan.host_reserved(**q) == Some(true))
        .copied()
        .collect();
    match (m.matrix.first().and_then(|q| scan.host_reserved(*q)), reserved.first()) {
        (None, _) if !m.matrix.is_empty() => out.push(Check::skip(
            CheckId::MdevMasks,
            "/sys/bus/ap/apmask or aqmask could not be read",
        )),
        (_, Some(first)) => out.push(Check::fail(
            CheckId::MdevMasks,
            format!(
                "APQN {} not allowed for vfio_ap use by the AP bus masks (apmask and aqmask bits both set reserve a queue for the host drivers)",
                list(&reserved)
            ),
            free_command(*first),
        )),
        _ => out.push(Check::pass(
            CheckId::MdevMasks,
            format!("apmask/aqmask leave all APQNs of mdev {uuid} to vfio_ap"),
        )),
    }

    // mdev-free
    let in_use: Vec<Apqn> = m
        .matrix
        .iter()
        .filter(|q| {
            scan.queue(**q)
                .is_some_and(|q| q.status == Some(crate::scan::QueueStatus::InUse))
        })
        .copied()
        .collect();
    let node = crate::device::group_node(m)
        .map(|p| format!("/{}", p.display()))
        .unwrap_or_default();
    match group_status(root, m) {
        GroupStatus::Busy => out.push(Check::fail(
            CheckId::MdevFree,
            format!("{node} is busy (EBUSY): another process, most likely another guest, holds mdev {uuid}"),
            "stop the guest that uses it, or create another mdev for this guest",
        )),
        GroupStatus::Free { viable: true } if in_use.is_empty() => out.push(Check::pass(
            CheckId::MdevFree,
            format!("{node} can be opened and is viable: mdev {uuid} is free"),
        )),
        GroupStatus::Free { viable: false } => out.push(Check::fail(
            CheckId::MdevFree,
            format!("{node} is not viable (VFIO_GROUP_GET_STATUS): a device of the group is not bound to a VFIO driver"),
            "check that the mdev is bound to vfio_ap_mdev",
        )),
        _ if !in_use.is_empty() => out.push(Check::fail(
            CheckId::MdevFree,
            format!(
                "mdev {uuid} is in use by a running guest (queue status `in use`: {})",
                list(&in_use)
            ),
            "stop the guest that uses it, or create another mdev for this guest",
        )),
        GroupStatus::Free { .. } => out.push(Check::pass(
            CheckId::MdevFree,
            format!("{node} can be opened: mdev {uuid} is free"),
        )),
        GroupStatus::NoGroup => out.push(Check::fail(
            CheckId::MdevFree,
            format!("mdev {uuid} has no iommu_group link"),
            "the mdev is not bound to vfio_ap_mdev; reload vfio_ap or recreate the mdev",
        )),
        GroupStatus::Missing(p) => out.push(Check::fail(
            CheckId::MdevFree,
            format!("{} (the VFIO group of mdev {uuid}) does not exist", p.display()),
            "load the vfio module and check udev (the node is created when the group appears)",
        )),
        GroupStatus::NotVfio(why) => out.push(Check::skip(
            CheckId::MdevFree,
            format!("cannot tell whether mdev {uuid} is free: {why}"),
        )),
        GroupStatus::Failed(why) => out.push(Check::skip(
            CheckId::MdevFree,
            format!("cannot tell whether mdev {uuid} is free: {why}"),
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use host::Status;
    use testkit::hosttree::HostTree;

    const U: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";
    const V: &str = "11111111-2222-4333-8444-555555555555";

    fn run(tree: &HostTree, uuid: &str) -> Vec<Check> {
        mdev_checks(&HostRoot::open(tree.path()).unwrap(), uuid)
    }

    fn status(checks: &[Check]) -> Vec<(&str, Status)> {
        checks.iter().map(|c| (c.id.as_str(), c.status)).collect()
    }

    #[test]
    fn the_example_mdev_passes() {
        let tree = HostTree::from_example("z16-se");
        let c = run(&tree, U);
        let ids: Vec<CheckId> = c.iter().map(|c| c.id).collect();
        assert_eq!(ids, MDEV_CHECK_IDS);
        for check in &c[..6] {
            assert_eq!(check.status, Status::Pass, "{check:?}");
        }
        // dev/vfio/0 is a plain file in the tree: skip, never a guess
        assert_eq!(c[6].status, Status::Skip);
        assert!(
            c[2].message.contains("05.0004 (5.4), 05.00ab (5.171)"),
            "{}",
            c[2].message
        );
    }

    #[test]
    fn missing_and_defined_but_inactive() {
        let tree = HostTree::from_example("z16-se");
        let c = run(&tree, V);
        assert_eq!(c[0].status, Status::Fail);
        assert!(c[1..].iter().all(|c| c.status == Status::Skip));
        tree.write(
            &format!("etc/mdevctl.d/matrix/{V}"),
            r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[]}"#,
        );
        let c = run(&tree, V);
        assert!(
            c[0].message.contains("defined (manual start"),
            "{}",
            c[0].message
        );
        assert!(c[0].hint.as_ref().unwrap().contains("mdevctl start -u"));
        let c = run(&tree, "bogus");
        assert_eq!(c[0].status, Status::Fail);
        tree.remove("sys/devices/vfio_ap");
        let c = run(&tree, U);
        assert!(c[0].message.contains("not loaded"));
    }

    #[test]
    fn control_domains_without_usage_domains_are_refused() {
        let tree = HostTree::from_example("z16-se");
        tree.write(&format!("sys/devices/vfio_ap/matrix/{U}/matrix"), "05.\n");
        let c = run(&tree, U);
        assert_eq!(c[2].status, Status::Fail);
        assert!(c[2].message.contains("no usage domain"), "{}", c[2].message);
        assert!(
            c[2].message.contains("control domains 00ab"),
            "{}",
            c[2].message
        );
    }

    #[test]
    fn queues_bound_elsewhere_lose_the_whole_adapter() {
        let tree = HostTree::from_example("z16-se");
        tree.link(
            "sys/devices/ap/card05/05.0004/driver",
            "../../../../bus/ap/drivers/cex4queue",
        );
        let c = run(&tree, U);
        assert_eq!(c[3].status, Status::Fail);
        assert!(
            c[3].message.contains("05.0004 (5.4) is bound to cex4queue"),
            "{}",
            c[3].message
        );
        assert!(
            c[3].message.contains("lose adapter 0x05 (5)"),
            "{}",
            c[3].message
        );
        // with a second, healthy adapter it is only a warning
        tree.write(
            &format!("sys/devices/vfio_ap/matrix/{U}/matrix"),
            "03.00ab\n05.0004\n",
        );
        let c = run(&tree, U);
        assert_eq!(c[3].status, Status::Warn, "{:?}", c[3]);
        tree.remove("sys/bus/ap/devices/03.00ab");
        let c = run(&tree, U);
        assert!(
            c[3].message.contains("03.00ab (3.171) does not exist"),
            "{}",
            c[3].message
        );
    }

    #[test]
    fn conflicts_name_the_other_mdev() {
        let tree = HostTree::from_example("z16-se");
        tree.write(
            &format!("etc/mdevctl.d/matrix/{V}"),
            r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"5"},{"assign_domain":"171"}]}"#,
        );
        let c = run(&tree, U);
        assert_eq!(c[4].status, Status::Fail);
        assert!(
            c[4].message.contains(&format!(
                "05.00ab (5.171) is also in the autostart definition of mdev {V}"
            )),
            "{}",
            c[4].message
        );
        // a manual definition is not a conflict
        tree.write(
            &format!("etc/mdevctl.d/matrix/{V}"),
            r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[{"assign_adapter":"5"},{"assign_domain":"171"}]}"#,
        );
        assert_eq!(run(&tree, U)[4].status, Status::Pass);
        // an active second mdev is
        let dir = format!("sys/devices/vfio_ap/matrix/{V}");
        tree.write(&format!("{dir}/matrix"), "05.00ab\n");
        tree.link(
            &format!("{dir}/mdev_type"),
            "../mdev_supported_types/vfio_ap-passthrough",
        );
        let c = run(&tree, U);
        assert!(
            c[4].message
                .contains(&format!("05.00ab (5.171) is also assigned to mdev {V}")),
            "{}",
            c[4].message
        );
    }

    #[test]
    fn masks_reserving_an_apqn_give_the_command() {
        let tree = HostTree::from_example("z16-se");
        tree.write("sys/bus/ap/apmask", format!("0x{}\n", "f".repeat(64)));
        let c = run(&tree, U);
        assert_eq!(c[5].status, Status::Fail);
        assert!(c[5].message.contains("05.0004 (5.4)"), "{}", c[5].message);
        assert!(c[5]
            .hint
            .as_ref()
            .unwrap()
            .contains("aplaunch ap masks --apmask=-5"));
        tree.write("sys/bus/ap/apmask", "garbage\n");
        assert_eq!(run(&tree, U)[5].status, Status::Skip);
    }

    #[test]
    fn in_use_queues_make_it_not_free() {
        let tree = HostTree::from_example("z16-se");
        tree.write("sys/devices/ap/card05/05.0004/status", "in use\n");
        let c = run(&tree, U);
        assert_eq!(c[6].status, Status::Fail);
        assert!(
            c[6].message.contains("in use by a running guest"),
            "{}",
            c[6].message
        );
        tree.remove(&format!("sys/devices/vfio_ap/matrix/{U}/iommu_group"));
        tree.write("sys/devices/ap/card05/05.0004/status", "assigned\n");
        assert_eq!(run(&tree, U)[6].status, Status::Fail);
        assert_eq!(status(&run(&tree, U))[0], ("mdev-exists", Status::Pass));
    }
}
