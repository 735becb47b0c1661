//! The QMP client and `aplaunch qmp ...` against the real qemu-system-s390x (TCG).
//! Without the binary these tests skip locally and fail when CI=true.

use assert_cmd::Command;
use launcher::qmp::{Error, Qmp};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use testkit::hosttree::HostTree;
use testkit::qmp::RealQemu;

const UUID: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

fn aplaunch_json(host: &Path, args: &[&str], sock: &Path) -> (i32, Value) {
    let out = Command::cargo_bin("aplaunch")
        .unwrap()
        .arg("--json")
        .arg("--host-root")
        .arg(host)
        .arg("qmp")
        .args(args)
        .arg("--qmp")
        .arg(sock)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).expect("one JSON document");
    (out.status.code().expect("exited"), doc)
}

#[test]
fn handshake_version_and_qom_list() {
    let Some(qemu) = RealQemu::start(&[]) else {
        return;
    };
    let mut qmp = Qmp::connect(qemu.socket(), Duration::from_secs(10)).unwrap();
    let v = qmp.version();
    let reported = qmp.execute("query-version", Value::Null).unwrap();
    assert_eq!(reported["qemu"]["major"], json!(v.major));
    assert_eq!(reported["qemu"]["minor"], json!(v.minor));
    assert_eq!(reported["qemu"]["micro"], json!(v.micro));
    assert!(qmp.greeting().capabilities.iter().any(|c| c == "oob"));
    let children = qmp
        .execute("qom-list", json!({"path": "/machine/peripheral"}))
        .unwrap();
    assert!(
        children
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "type"),
        "{children}"
    );
    let err = qmp
        .execute("qom-list", json!({"path": "/machine/no-such-thing"}))
        .unwrap_err();
    assert_eq!(err.class(), Some("DeviceNotFound"), "{err}");
    let err = qmp.execute("no-such-command", Value::Null).unwrap_err();
    assert_eq!(err.class(), Some("CommandNotFound"), "{err}");
    // the connection stays usable after QEMU's errors
    assert_eq!(
        qmp.execute("query-status", Value::Null).unwrap()["status"],
        "prelaunch"
    );
}

#[test]
fn device_add_and_del_of_virtio_net_with_the_device_deleted_sequence() {
    let Some(qemu) = RealQemu::start(&["-netdev", "user,id=n0"]) else {
        return;
    };
    let mut qmp = Qmp::connect(qemu.socket(), Duration::from_secs(10)).unwrap();
    qmp.execute(
        "device_add",
        json!({"driver": "virtio-net-ccw", "id": "net1", "netdev": "n0"}),
    )
    .unwrap();
    let children = qmp
        .execute("qom-list", json!({"path": "/machine/peripheral"}))
        .unwrap();
    assert!(
        children
            .as_array()
            .unwrap()
            .contains(&json!({"name": "net1", "type": "child<virtio-net-ccw>"})),
        "{children}"
    );
    qmp.execute("device_del", json!({"id": "net1"})).unwrap();
    let ev = qmp
        .wait_event(Duration::from_secs(10), |e| {
            e.name == "DEVICE_DELETED" && e.data_str("device") == Some("net1")
        })
        .unwrap();
    assert_eq!(ev.data_str("path"), Some("/machine/peripheral/net1"));
    assert!(ev.timestamp.is_some());
    // the virtio backend's path-only event came first and stayed queued
    let backend = qmp.take_events();
    assert!(
        backend.iter().any(|e| e.name == "DEVICE_DELETED"
            && e.data_str("device").is_none()
            && e.data_str("path") == Some("/machine/peripheral/net1/virtio-backend")),
        "{backend:?}"
    );
    let err = qmp
        .execute("device_del", json!({"id": "net1"}))
        .unwrap_err();
    assert_eq!(err.class(), Some("DeviceNotFound"));
    assert!(matches!(err, Error::Command { .. }));
}

#[test]
fn vfio_ap_hotplug_on_a_guest_without_ap_is_explained() {
    let Some(qemu) = RealQemu::start(&[]) else {
        return;
    };
    let host = HostTree::from_example("z16-se");
    let (code, doc) = aplaunch_json(
        host.path(),
        &["hotplug", "--mdev", UUID, "--timeout", "10"],
        qemu.socket(),
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["kind"], "no-ap-feature", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("without the AP CPU feature"), "{message}");
    assert!(message.contains("No 'ap-bus' bus found"), "{message}");
    // this QEMU runs under TCG, where no CPU model has AP: the hint must not suggest
    // `-cpu host,ap=on` (launch refuses an mdev under TCG) but KVM
    assert!(message.contains("runs under TCG"), "{message}");
    let hint = doc["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("under KVM")
            && hint.contains("aplaunch launch --mdev")
            && !hint.contains("-cpu host"),
        "{doc}"
    );
}

#[test]
fn list_and_unplug_on_a_guest_without_vfio_ap() {
    let Some(qemu) = RealQemu::start(&[]) else {
        return;
    };
    let host = HostTree::from_example("z16-se");
    let (code, doc) = aplaunch_json(host.path(), &["list", "--timeout", "10"], qemu.socket());
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["devices"], json!([]));
    // the version the binary under test reports, whichever QEMU that is
    let (major, minor, micro) = testkit::qemu::version_of(&testkit::qmp::qemu_binary());
    assert_eq!(doc["qemu"], format!("{major}.{minor}.{micro}"), "{doc}");
    let (code, doc) = aplaunch_json(
        host.path(),
        &["unplug", "--id", "hostdev0", "--timeout", "10"],
        qemu.socket(),
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["kind"], "not-found", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("present: none"),
        "{doc}"
    );
}

#[test]
fn the_qemu_probe_can_ask_through_this_client() {
    use launcher::probe::{self, QemuVersion};
    let Some(qemu) = RealQemu::start(&[]) else {
        return;
    };
    let mut qmp = Qmp::connect(qemu.socket(), Duration::from_secs(10)).unwrap();
    let v = qmp.version();
    let version = QemuVersion::new(v.major as u32, v.minor as u32, v.micro as u32);
    let package = qmp.greeting().package.clone();
    let caps = probe::ask(
        &mut qmp,
        &testkit::qmp::qemu_binary(),
        version,
        package,
        "tcg",
    )
    .unwrap();
    assert_eq!(caps.version, version);
    assert!(caps.has_type("vfio-ap"), "{:?}", caps.types);
    assert!(
        caps.properties["vfio-ap"].contains("sysfsdev"),
        "{:?}",
        caps.properties
    );
}
