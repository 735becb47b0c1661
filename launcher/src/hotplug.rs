//! Crypto hot plug and unplug for running guests, through QMP.
//!
//! QEMU's guest takes at most one `vfio-ap` device (it sits on the single-slot `ap-bus`).
//! QEMU 6.0 to 10.1 answer both "this guest has no AP CPU feature" and "this guest already
//! has a vfio-ap device" with the same `No 'ap-bus' bus found for device 'vfio-ap'`; from
//! 10.2 a full bus is `A 'ap-bus' bus was found but is full` (system/qdev-monitor.c,
//! `qdev_find_default_bus`). These functions look at the guest first so that every refusal
//! names its real cause, whichever QEMU it is.
//!
//! ```no_run
//! use launcher::{hotplug, qmp::Qmp};
//! use std::time::Duration;
//!
//! let root = host::HostRoot::system();
//! let mut qmp = Qmp::connect("/run/guest/qmp.sock", Duration::from_secs(5))?;
//! let req = hotplug::HotplugRequest::new("62177883-f1bb-47f0-914d-32a22e3a8804");
//! let plugged = hotplug::hotplug(&mut qmp, &root, &req)?;
//! println!("the guest sees {:?}", plugged.guest_matrix);
//! let gone = hotplug::unplug(&mut qmp, &hotplug::UnplugTarget::Id(plugged.id), hotplug::DEFAULT_UNPLUG_TIMEOUT)?;
//! # Ok::<(), hotplug::Error>(())
//! ```

use crate::qmp::{self, Event, Qmp, Version};
use host::{Check, HostRoot, Status};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

/// How long `unplug` waits for DEVICE_DELETED by default (the budget Kata settled on).
pub const DEFAULT_UNPLUG_TIMEOUT: Duration = Duration::from_secs(10);

/// The QOM containers holding user-created devices (with and without an id).
pub const PERIPHERAL: &str = "/machine/peripheral";
/// See [`PERIPHERAL`].
pub const PERIPHERAL_ANON: &str = "/machine/peripheral-anon";

/// QEMU's answer when the `ap-bus` is missing (every version), or already holds a device
/// (before 10.2).
pub const NO_AP_BUS: &str = "No 'ap-bus' bus found";

/// QEMU 10.2's answer when the `ap-bus` already holds a device.
pub const AP_BUS_FULL: &str = "A 'ap-bus' bus was found but is full";

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a hot plug, unplug or listing did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The mdev UUID is malformed.
    #[error("{given:?} is not a UUID")]
    InvalidUuid {
        /// As given.
        given: String,
    },
    /// The device id is not one QEMU accepts.
    #[error(
        "{given:?} is not a valid QEMU device id (a letter, then letters, digits, '-', '.', '_')"
    )]
    InvalidId {
        /// As given.
        given: String,
    },
    /// A host-side check of the mdev failed.
    #[error("mdev {uuid} is not ready on this host: {}", summary(.failed))]
    HostChecks {
        /// The mdev.
        uuid: String,
        /// The failed checks.
        failed: Vec<Check>,
    },
    /// The guest already has a vfio-ap device, and QEMU allows one.
    #[error("the guest already has a vfio-ap device: {}", existing.describe())]
    AlreadyPlugged {
        /// The device present.
        existing: VfioApDevice,
    },
    /// The id is taken by another device.
    #[error("the guest already has a device with id '{id}' (type {qom_type})")]
    IdInUse {
        /// The id.
        id: String,
        /// Its QOM type (`child<virtio-net-ccw>`).
        qom_type: String,
    },
    /// `No 'ap-bus' bus found` with no vfio-ap in the guest: no AP CPU feature.
    #[error("QEMU has no AP bus for mdev {uuid}: the guest was started without the AP CPU feature{} (QEMU: {desc})", if *.kvm == Some(false) { ", and it runs under TCG, which has no AP passthrough" } else { "" })]
    NoApFeature {
        /// The mdev.
        uuid: String,
        /// QEMU's description.
        desc: String,
        /// Whether the guest runs under KVM (`query-kvm`), when QEMU said.
        kvm: Option<bool>,
    },
    /// QEMU 10.2+ says the AP bus is full, but no vfio-ap device could be found to name.
    #[error("QEMU says the guest's AP bus already holds a device (QEMU: {desc}), but no vfio-ap device was found under {PERIPHERAL}")]
    ApBusFull {
        /// The mdev.
        uuid: String,
        /// QEMU's description.
        desc: String,
    },
    /// QEMU refused device_add for another reason.
    #[error("QEMU refused to add vfio-ap for mdev {uuid}: {desc} ({class})")]
    AddRefused {
        /// The mdev.
        uuid: String,
        /// QEMU's error class.
        class: String,
        /// QEMU's description.
        desc: String,
    },
    /// device_add succeeded but the device is not in the guest afterwards.
    #[error("QEMU accepted device_add but {PERIPHERAL}/{id} is not a vfio-ap device afterwards")]
    NotConfirmed {
        /// The id.
        id: String,
    },
    /// No vfio-ap device matches.
    #[error("no vfio-ap device {target} in the guest (present: {})", describe_all(.present))]
    NotFound {
        /// What was looked for (`with id 'x'`, `for mdev U`).
        target: String,
        /// The vfio-ap devices present.
        present: Vec<VfioApDevice>,
    },
    /// The device disappeared between finding it and deleting it.
    #[error("vfio-ap device '{id}' is gone: QEMU says {desc} (it was removed meanwhile)")]
    Gone {
        /// The id or QOM path.
        id: String,
        /// QEMU's description.
        desc: String,
    },
    /// DEVICE_DELETED did not come in time.
    #[error("QEMU accepted device_del of '{id}' but sent no DEVICE_DELETED within {timeout:?}")]
    DeleteTimeout {
        /// The id or QOM path.
        id: String,
        /// The time waited.
        timeout: Duration,
    },
    /// Talking to QEMU failed.
    #[error(transparent)]
    Qmp(#[from] qmp::Error),
}

fn summary(failed: &[Check]) -> String {
    failed
        .iter()
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_all(devices: &[VfioApDevice]) -> String {
    if devices.is_empty() {
        "none".into()
    } else {
        devices
            .iter()
            .map(VfioApDevice::describe)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A vfio-ap device of the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VfioApDevice {
    /// Its id (`None` for a device added without one).
    pub id: Option<String>,
    /// Its QOM path (`/machine/peripheral/hostdev0`).
    pub qom_path: String,
    /// Its `sysfsdev` property, as QEMU holds it.
    pub sysfsdev: Option<String>,
    /// The mdev UUID (the last component of sysfsdev), lower case.
    pub uuid: Option<String>,
    /// The mdev's matrix on this host (`05.0004`), when readable.
    pub matrix: Option<Vec<String>>,
}

impl VfioApDevice {
    /// What `device_del` takes: the id, or the QOM path of a device without one.
    pub fn handle(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.qom_path)
    }

    /// `'hostdev0' (mdev U)` for messages.
    pub fn describe(&self) -> String {
        let name = match &self.id {
            Some(id) => format!("'{id}'"),
            None => self.qom_path.clone(),
        };
        match (&self.uuid, &self.sysfsdev) {
            (Some(u), _) => format!("{name} (mdev {u})"),
            (None, Some(s)) => format!("{name} (sysfsdev {s})"),
            (None, None) => name,
        }
    }
}

/// What to hot plug.
#[derive(Debug, Clone)]
pub struct HotplugRequest {
    /// The mdev UUID.
    pub uuid: String,
    /// The device id; [`default_id`] when `None`.
    pub id: Option<String>,
    /// Run the host-side mdev checks first (on by default).
    pub host_checks: bool,
}

impl HotplugRequest {
    /// A request for this mdev with the default id and host checks on.
    pub fn new(uuid: impl Into<String>) -> Self {
        HotplugRequest {
            uuid: uuid.into(),
            id: None,
            host_checks: true,
        }
    }
}

/// A successful hot plug.
#[derive(Debug, Clone, Serialize)]
pub struct Plugged {
    /// The device id.
    pub id: String,
    /// The mdev UUID (normalized).
    pub uuid: String,
    /// The sysfsdev given to QEMU.
    pub sysfsdev: String,
    /// The APQNs the guest will see (`05.0004`), from the mdev's guest_matrix (or matrix).
    pub guest_matrix: Vec<String>,
    /// QEMU's version.
    pub qemu: Version,
    /// The host-side checks that ran (all passed or warned).
    pub checks: Vec<Check>,
}

/// What to unplug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnplugTarget {
    /// The device with this id (or QOM path).
    Id(String),
    /// The device whose sysfsdev names this mdev UUID.
    Mdev(String),
}

/// A successful unplug.
#[derive(Debug, Clone, Serialize)]
pub struct Unplugged {
    /// The device as it was.
    pub device: VfioApDevice,
    /// The DEVICE_DELETED event that confirmed it.
    pub event: Event,
}

/// The id used when none is given: `ap-` and the UUID's first 8 digits.
pub fn default_id(uuid: &str) -> String {
    format!("ap-{}", uuid.get(..8).unwrap_or(uuid))
}

/// Normalizes an mdev UUID (lower case, hyphenated; the forms [`vfio::mdev_uuid`]
/// accepts).
pub fn normalize_uuid(given: &str) -> Result<String> {
    vfio::mdev_uuid::normalize(given).map_err(|_| Error::InvalidUuid {
        given: given.to_string(),
    })
}

/// Whether QEMU accepts `id` as a device id (its `id_wellformed` rule).
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// The children of a QOM container as (name, type); an absent container is empty.
fn qom_children(qmp: &mut Qmp, path: &str) -> Result<Vec<(String, String)>> {
    let value = match qmp.execute("qom-list", json!({ "path": path })) {
        Ok(v) => v,
        Err(qmp::Error::Command { class, .. }) if class == "DeviceNotFound" => return Ok(vec![]),
        Err(e) => return Err(e.into()),
    };
    Ok(value
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    Some((
                        e.get("name")?.as_str()?.to_string(),
                        e.get("type")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The guest's vfio-ap devices (with and without ids). With a host root, each carries
/// its mdev's matrix as read on that host.
pub fn list(qmp: &mut Qmp, root: Option<&HostRoot>) -> Result<Vec<VfioApDevice>> {
    let mut devices = Vec::new();
    for container in [PERIPHERAL, PERIPHERAL_ANON] {
        for (name, ty) in qom_children(qmp, container)? {
            if ty != "child<vfio-ap>" {
                continue;
            }
            let qom_path = format!("{container}/{name}");
            let sysfsdev = match qmp.execute(
                "qom-get",
                json!({ "path": qom_path, "property": "sysfsdev" }),
            ) {
                Ok(Value::String(s)) => Some(s),
                Ok(_) | Err(qmp::Error::Command { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let uuid = sysfsdev.as_deref().and_then(vfio::mdev_uuid::of_sysfsdev);
            let matrix = match (root, &uuid) {
                (Some(root), Some(u)) => mdev_host::matrix(root, u),
                _ => None,
            };
            devices.push(VfioApDevice {
                id: (container == PERIPHERAL).then(|| name.clone()),
                qom_path,
                sysfsdev,
                uuid,
                matrix,
            });
        }
    }
    Ok(devices)
}

/// Hot plugs the mdev into the guest: host checks, one-vfio-ap rule, device_add, then
/// confirms the device exists.
pub fn hotplug(qmp: &mut Qmp, root: &HostRoot, request: &HotplugRequest) -> Result<Plugged> {
    let uuid = normalize_uuid(&request.uuid)?;
    let id = request.id.clone().unwrap_or_else(|| default_id(&uuid));
    if !valid_id(&id) {
        return Err(Error::InvalidId { given: id });
    }
    let checks = if request.host_checks {
        mdev_host::checks(root, &uuid)
    } else {
        Vec::new()
    };
    let failed: Vec<Check> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .cloned()
        .collect();
    if !failed.is_empty() {
        return Err(Error::HostChecks { uuid, failed });
    }
    if let Some(existing) = list(qmp, Some(root))?.into_iter().next() {
        return Err(Error::AlreadyPlugged { existing });
    }
    if let Some((_, qom_type)) = qom_children(qmp, PERIPHERAL)?
        .into_iter()
        .find(|(name, _)| *name == id)
    {
        return Err(Error::IdInUse { id, qom_type });
    }
    let sysfsdev = vfio::mdev_uuid::sysfsdev(&uuid);
    let added = qmp.execute(
        "device_add",
        json!({ "driver": "vfio-ap", "id": id, "sysfsdev": sysfsdev }),
    );
    match added {
        Ok(_) => {}
        Err(qmp::Error::Command { class, desc, .. }) => {
            if desc.contains(NO_AP_BUS) || desc.contains(AP_BUS_FULL) {
                // Before 10.2 both causes look the same from QEMU; a vfio-ap that appeared
                // meanwhile (another client) is the only way to tell them apart now.
                if let Some(existing) = list(qmp, Some(root))?.into_iter().next() {
                    return Err(Error::AlreadyPlugged { existing });
                }
                if desc.contains(AP_BUS_FULL) {
                    return Err(Error::ApBusFull { uuid, desc });
                }
                // whether the guest can have AP at all decides what to suggest
                let kvm = qmp
                    .execute("query-kvm", Value::Null)
                    .ok()
                    .and_then(|v| v["enabled"].as_bool());
                return Err(Error::NoApFeature { uuid, desc, kvm });
            }
            return Err(Error::AddRefused { uuid, class, desc });
        }
        Err(e) => return Err(e.into()),
    }
    let confirmed = qom_children(qmp, PERIPHERAL)?
        .iter()
        .any(|(name, ty)| *name == id && ty == "child<vfio-ap>");
    if !confirmed {
        return Err(Error::NotConfirmed { id });
    }
    let guest_matrix = mdev_host::guest_matrix(root, &uuid).unwrap_or_default();
    Ok(Plugged {
        id,
        uuid,
        sysfsdev,
        guest_matrix,
        qemu: qmp.version(),
        checks,
    })
}

/// Finds the device to unplug among the guest's vfio-ap devices.
pub fn find(devices: &[VfioApDevice], target: &UnplugTarget) -> Option<VfioApDevice> {
    match target {
        UnplugTarget::Id(id) => devices
            .iter()
            .find(|d| d.id.as_deref() == Some(id.as_str()) || d.qom_path == *id),
        UnplugTarget::Mdev(uuid) => {
            let want = vfio::mdev_uuid::of_sysfsdev(uuid);
            devices.iter().find(|d| d.uuid.is_some() && d.uuid == want)
        }
    }
    .cloned()
}

/// Unplugs a vfio-ap device: device_del, then waits up to `timeout` for the DEVICE_DELETED
/// whose `data.device` is its id (the path-only events of sub-objects are ignored).
pub fn unplug(qmp: &mut Qmp, target: &UnplugTarget, timeout: Duration) -> Result<Unplugged> {
    if let UnplugTarget::Mdev(u) = target {
        normalize_uuid(u)?;
    }
    let devices = list(qmp, None)?;
    let Some(device) = find(&devices, target) else {
        return Err(Error::NotFound {
            target: match target {
                UnplugTarget::Id(id) => format!("with id '{id}'"),
                UnplugTarget::Mdev(u) => format!("for mdev {u}"),
            },
            present: devices,
        });
    };
    let handle = device.handle().to_string();
    match qmp.execute("device_del", json!({ "id": handle })) {
        Ok(_) => {}
        Err(qmp::Error::Command { class, desc, .. }) if class == "DeviceNotFound" => {
            return Err(Error::Gone { id: handle, desc })
        }
        Err(e) => return Err(e.into()),
    }
    let id = device.id.clone();
    let qom_path = device.qom_path.clone();
    let event = qmp
        .wait_event(timeout, |e| {
            e.name == "DEVICE_DELETED"
                && match (&id, e.data_str("device")) {
                    (Some(id), Some(dev)) => dev == id,
                    (None, None) => e.data_str("path") == Some(&qom_path),
                    _ => false,
                }
        })
        .map_err(|e| match e {
            qmp::Error::Timeout { .. } => Error::DeleteTimeout {
                id: handle.clone(),
                timeout,
            },
            e => e.into(),
        })?;
    Ok(Unplugged { device, event })
}

/// The host side of an mdev (checks and matrices), through the `vfio` crate.
mod mdev_host {
    use host::{Check, HostRoot};
    use vfio::mdev::MdevInfo;

    /// The host-side mdev checks (exists, type, matrix, queues, conflicts, masks, free).
    pub fn checks(root: &HostRoot, uuid: &str) -> Vec<Check> {
        vfio::checks::mdev_checks(root, uuid)
    }

    fn text(apqns: &[vfio::ap::Apqn]) -> Vec<String> {
        apqns.iter().map(ToString::to_string).collect()
    }

    /// The mdev's matrix (`05.0004`), when the mdev is readable on this host.
    pub fn matrix(root: &HostRoot, uuid: &str) -> Option<Vec<String>> {
        MdevInfo::read(root, uuid).ok().map(|m| text(&m.matrix))
    }

    /// The APQNs the guest sees: guest_matrix, or matrix on kernels without it.
    pub fn guest_matrix(root: &HostRoot, uuid: &str) -> Option<Vec<String>> {
        let m = MdevInfo::read(root, uuid).ok()?;
        Some(text(m.guest_matrix.as_deref().unwrap_or(&m.matrix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_uuids_and_sysfsdev() {
        assert!(valid_id("hostdev0"));
        assert!(valid_id("ap-62177883"));
        assert!(!valid_id("0abc"));
        assert!(!valid_id("a b"));
        assert!(!valid_id(""));
        assert_eq!(
            normalize_uuid("62177883-F1BB-47f0-914d-32a22e3a8804").unwrap(),
            "62177883-f1bb-47f0-914d-32a22e3a8804"
        );
        assert!(matches!(
            normalize_uuid("nope"),
            Err(Error::InvalidUuid { .. })
        ));
        assert_eq!(
            vfio::mdev_uuid::of_sysfsdev(
                "/sys/devices/vfio_ap/matrix/62177883-f1bb-47f0-914d-32a22e3a8804/"
            )
            .as_deref(),
            Some("62177883-f1bb-47f0-914d-32a22e3a8804")
        );
        assert_eq!(
            default_id("62177883-f1bb-47f0-914d-32a22e3a8804"),
            "ap-62177883"
        );
    }

    #[test]
    fn find_by_id_path_or_uuid() {
        let d = VfioApDevice {
            id: None,
            qom_path: "/machine/peripheral-anon/device[0]".into(),
            sysfsdev: Some("/sys/bus/mdev/devices/62177883-f1bb-47f0-914d-32a22e3a8804".into()),
            uuid: Some("62177883-f1bb-47f0-914d-32a22e3a8804".into()),
            matrix: None,
        };
        let all = vec![d.clone()];
        assert_eq!(
            find(
                &all,
                &UnplugTarget::Mdev("62177883-F1BB-47f0-914d-32a22e3a8804".into())
            ),
            Some(d.clone())
        );
        assert_eq!(
            find(
                &all,
                &UnplugTarget::Id("/machine/peripheral-anon/device[0]".into())
            ),
            Some(d.clone())
        );
        assert_eq!(find(&all, &UnplugTarget::Id("hostdev0".into())), None);
        assert_eq!(d.handle(), "/machine/peripheral-anon/device[0]");
    }

    #[test]
    fn mdev_view_of_the_example_host() {
        let root = HostRoot::open(testkit::hosttree::example_host("z16-se")).unwrap();
        let u = "62177883-f1bb-47f0-914d-32a22e3a8804";
        assert_eq!(
            mdev_host::guest_matrix(&root, u).unwrap(),
            vec!["05.0004".to_string(), "05.00ab".to_string()]
        );
        assert!(mdev_host::checks(&root, u)
            .iter()
            .all(|c| c.status != Status::Fail));
        let missing = mdev_host::checks(&root, "00000000-0000-0000-0000-000000000000");
        assert_eq!(missing[0].status, Status::Fail);
    }
}
