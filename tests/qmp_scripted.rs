//! `aplaunch qmp ...` against scripted QMP peers: QEMU-like conversations and hostile ones.
//! Every case must end with the right exit code and message; the peers bound every wait.

use assert_cmd::Command;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use testkit::hosttree::HostTree;
use testkit::qmp::{FakeDevice, FakeQemu, Script, ScriptedPeer, Step};

const UUID: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";
const SYSFSDEV: &str = "/sys/bus/mdev/devices/62177883-f1bb-47f0-914d-32a22e3a8804";

/// Runs `aplaunch --json --host-root <copy of z16-se> qmp ARGS --qmp SOCK`; returns
/// (exit code, the one JSON document).
fn run_json(sock: &Path, args: &[&str]) -> (i32, Value) {
    let host = HostTree::from_example("z16-se");
    let out = Command::cargo_bin("aplaunch")
        .unwrap()
        .arg("--json")
        .arg("--host-root")
        .arg(host.path())
        .arg("qmp")
        .args(args)
        .arg("--qmp")
        .arg(sock)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().expect("exited"), doc)
}

fn error_kind(doc: &Value) -> &str {
    doc["error"]["kind"].as_str().unwrap_or_default()
}

fn error_message(doc: &Value) -> &str {
    doc["error"]["message"].as_str().unwrap_or_default()
}

/// The conversation QEMU has with `aplaunch qmp list` on a guest with hostdev0.
fn list_with_hostdev0(script: Script) -> Script {
    script
        .qom_list(
            "/machine/peripheral",
            &[
                ("hostdev0", "child<vfio-ap>"),
                ("net0", "child<virtio-net-ccw>"),
            ],
        )
        .sysfsdev("/machine/peripheral/hostdev0", SYSFSDEV)
        .qom_list("/machine/peripheral-anon", &[])
}

#[test]
fn hotplug_succeeds_like_qemu_and_reports_the_guest_matrix() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .peripherals(&[("net0", "child<virtio-net-ccw>")])
            .qom_list("/machine/peripheral", &[("net0", "child<virtio-net-ccw>")])
            .expect_args(
                "device_add",
                json!({"driver": "vfio-ap", "id": "hostdev0", "sysfsdev": SYSFSDEV}),
            )
            .reply(json!({}))
            .qom_list(
                "/machine/peripheral",
                &[
                    ("net0", "child<virtio-net-ccw>"),
                    ("hostdev0", "child<vfio-ap>"),
                ],
            ),
    );
    let (code, doc) = run_json(
        peer.socket(),
        &[
            "hotplug",
            "--mdev",
            UUID,
            "--id",
            "hostdev0",
            "--timeout",
            "5",
        ],
    );
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["ok"], true);
    assert_eq!(
        doc["device"],
        json!({"id": "hostdev0", "uuid": UUID, "sysfsdev": SYSFSDEV})
    );
    assert_eq!(doc["guest_matrix"], json!(["05.0004", "05.00ab"]));
    assert_eq!(doc["qemu"], "7.2.22");
    peer.assert_followed();
}

#[test]
fn hotplug_human_output_names_the_apqns_and_the_rescan() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .peripherals(&[])
            .qom_list("/machine/peripheral", &[])
            .expect_args(
                "device_add",
                json!({"driver": "vfio-ap", "id": "ap-62177883"}),
            )
            .reply(json!({}))
            .qom_list("/machine/peripheral", &[("ap-62177883", "child<vfio-ap>")]),
    );
    let host = HostTree::from_example("z16-se");
    let out = Command::cargo_bin("aplaunch")
        .unwrap()
        .arg("--host-root")
        .arg(host.path())
        .args(["qmp", "hotplug", "--mdev", UUID, "--qmp"])
        .arg(peer.socket())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("'ap-62177883'"), "{stdout}");
    assert!(stdout.contains("2 APQN(s): 05.0004 05.00ab"), "{stdout}");
    assert!(stdout.contains("next AP bus scan"), "{stdout}");
    peer.assert_followed();
}

#[test]
fn hotplug_refuses_when_the_guest_already_has_one() {
    let peer = ScriptedPeer::start(list_with_hostdev0(Script::qemu()));
    let (code, doc) = run_json(
        peer.socket(),
        &["hotplug", "--mdev", UUID, "--timeout", "5"],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(error_kind(&doc), "already-plugged");
    assert!(error_message(&doc).contains("'hostdev0'"), "{doc}");
    let hint = doc["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("qmp unplug --id hostdev0"), "{hint}");
    assert!(hint.contains("matrix live"), "{hint}");
    let log = peer.assert_followed();
    assert!(log.received.iter().all(|c| c["execute"] != "device_add"));
}

#[test]
fn no_ap_bus_without_a_vfio_ap_is_explained_as_the_missing_cpu_feature() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .peripherals(&[])
            .qom_list("/machine/peripheral", &[])
            .expect("device_add")
            .error("GenericError", "No 'ap-bus' bus found for device 'vfio-ap'")
            .peripherals(&[])
            .expect("query-kvm")
            .reply(json!({"enabled": true, "present": true})),
    );
    let (code, doc) = run_json(
        peer.socket(),
        &["hotplug", "--mdev", UUID, "--timeout", "5"],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(error_kind(&doc), "no-ap-feature");
    assert!(
        error_message(&doc).contains("without the AP CPU feature"),
        "{doc}"
    );
    assert!(
        doc["error"]["hint"].as_str().unwrap().contains("ap=on"),
        "{doc}"
    );
    peer.assert_followed();
}

#[test]
fn no_ap_bus_under_tcg_suggests_kvm_not_a_cpu_option() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .peripherals(&[])
            .qom_list("/machine/peripheral", &[])
            .expect("device_add")
            .error("GenericError", "No 'ap-bus' bus found for device 'vfio-ap'")
            .peripherals(&[])
            .expect("query-kvm")
            .reply(json!({"enabled": false, "present": false})),
    );
    let (code, doc) = run_json(
        peer.socket(),
        &["hotplug", "--mdev", UUID, "--timeout", "5"],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(error_kind(&doc), "no-ap-feature");
    assert!(error_message(&doc).contains("runs under TCG"), "{doc}");
    let hint = doc["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("under KVM") && !hint.contains("-cpu host"),
        "{hint}"
    );
    peer.assert_followed();
}

#[test]
fn qemu_10_2s_full_ap_bus_names_the_device_or_says_what_qemu_said() {
    const FULL: &str = "A 'ap-bus' bus was found but is full";
    // another client plugged one meanwhile: it is named
    let peer = ScriptedPeer::start(list_with_hostdev0(
        Script::qemu()
            .peripherals(&[])
            .qom_list("/machine/peripheral", &[])
            .expect("device_add")
            .error("GenericError", FULL),
    ));
    let (code, doc) = run_json(
        peer.socket(),
        &["hotplug", "--mdev", UUID, "--timeout", "5"],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(error_kind(&doc), "already-plugged");
    assert!(error_message(&doc).contains("'hostdev0'"), "{doc}");
    peer.assert_followed();
    // none to be found: QEMU's word, never "no AP feature"
    let peer = ScriptedPeer::start(
        Script::qemu()
            .peripherals(&[])
            .qom_list("/machine/peripheral", &[])
            .expect("device_add")
            .error("GenericError", FULL)
            .peripherals(&[]),
    );
    let (code, doc) = run_json(
        peer.socket(),
        &["hotplug", "--mdev", UUID, "--timeout", "5"],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(error_kind(&doc), "already-plugged");
    assert!(error_message(&doc).contains(FULL), "{doc}");
    peer.assert_followed();
}

#[test]
fn no_ap_bus_after_another_client_plugged_one_names_that_device() {
    let peer = ScriptedPeer::start(list_with_hostdev0(
        Script::qemu()
            .peripherals(&[])
            .qom_list("/machine/peripheral", &[])
            .expect("device_add")
            .error("GenericError", "No 'ap-bus' bus found for device 'vfio-ap'"),
    ));
    let (code, doc) = run_json(
        peer.socket(),
        &["hotplug", "--mdev", UUID, "--timeout", "5"],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(error_kind(&doc), "already-plugged");
    peer.assert_followed();
}

#[test]
fn hotplug_refuses_with_the_failed_host_checks() {
    let peer = ScriptedPeer::start(Script::qemu());
    let missing = "00000000-1111-2222-3333-444444444444";
    let (code, doc) = run_json(
        peer.socket(),
        &["hotplug", "--mdev", missing, "--timeout", "5"],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(error_kind(&doc), "host-checks");
    let checks = doc["checks"].as_array().expect("the failed checks");
    assert!(!checks.is_empty());
    assert!(checks.iter().all(|c| c["status"] == "fail"));
    assert!(
        checks
            .iter()
            .any(|c| c["message"].as_str().unwrap().contains(missing)),
        "{doc}"
    );
    let log = peer.assert_followed();
    assert!(log
        .received
        .iter()
        .all(|c| c["execute"] == "qmp_capabilities"));
}

#[test]
fn malformed_uuid_and_id_are_usage_errors() {
    let peer = ScriptedPeer::start(Script::new());
    let (code, doc) = run_json(peer.socket(), &["hotplug", "--mdev", "not-a-uuid"]);
    assert_eq!((code, error_kind(&doc)), (2, "usage"), "{doc}");
    let (code, doc) = run_json(
        peer.socket(),
        &["hotplug", "--mdev", UUID, "--id", "0bad id"],
    );
    assert_eq!((code, error_kind(&doc)), (2, "usage"), "{doc}");
    let (code, doc) = run_json(peer.socket(), &["unplug"]);
    assert_eq!((code, error_kind(&doc)), (2, "usage"), "{doc}");
    drop(peer);
}

#[test]
fn unplug_waits_for_the_device_deleted_of_its_id() {
    let peer = ScriptedPeer::start(
        list_with_hostdev0(Script::qemu())
            .expect_args("device_del", json!({"id": "hostdev0"}))
            .reply(json!({}))
            // a sub-object's path-only event and another device's event come first
            .event(
                "DEVICE_DELETED",
                json!({"path": "/machine/peripheral/hostdev0/sub"}),
            )
            .event(
                "DEVICE_DELETED",
                json!({"device": "net9", "path": "/machine/peripheral/net9"}),
            )
            .delay(Duration::from_millis(100))
            .event(
                "DEVICE_DELETED",
                json!({"device": "hostdev0", "path": "/machine/peripheral/hostdev0"}),
            ),
    );
    let (code, doc) = run_json(peer.socket(), &["unplug", "--mdev", UUID, "--timeout", "5"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["unplugged"]["id"], "hostdev0");
    assert_eq!(doc["unplugged"]["uuid"], UUID);
    peer.assert_followed();
}

#[test]
fn unplug_of_an_unknown_id_lists_the_devices_present() {
    let peer = ScriptedPeer::start(list_with_hostdev0(Script::qemu()));
    let (code, doc) = run_json(peer.socket(), &["unplug", "--id", "nope", "--timeout", "5"]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(error_kind(&doc), "not-found");
    assert!(error_message(&doc).contains("'nope'"), "{doc}");
    assert!(
        error_message(&doc).contains("'hostdev0' (mdev 62177883"),
        "{doc}"
    );
    peer.assert_followed();
}

#[test]
fn device_not_found_from_device_del_reports_it_gone() {
    let peer = ScriptedPeer::start(
        list_with_hostdev0(Script::qemu())
            .expect("device_del")
            .error("DeviceNotFound", "Device 'hostdev0' not found"),
    );
    let (code, doc) = run_json(
        peer.socket(),
        &["unplug", "--id", "hostdev0", "--timeout", "5"],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(error_kind(&doc), "not-found");
    assert!(error_message(&doc).contains("is gone"), "{doc}");
    assert!(
        error_message(&doc).contains("Device 'hostdev0' not found"),
        "{doc}"
    );
    peer.assert_followed();
}

#[test]
fn unknown_events_interleaved_with_replies_are_harmless() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .event(
                "SOMETHING_FROM_QEMU_12",
                json!({"nested": {"a": [1, 2, {"b": null}]}}),
            )
            .expect_args("qom-list", json!({"path": "/machine/peripheral"}))
            .event("RTC_CHANGE", json!({"offset": 1}))
            .event("NO_DATA_AT_ALL", Value::Null)
            .reply(json!([{"name": "hostdev0", "type": "child<vfio-ap>"}]))
            .expect("qom-get")
            .event("ANOTHER", json!({}))
            .reply(json!(SYSFSDEV))
            .qom_list("/machine/peripheral-anon", &[]),
    );
    let (code, doc) = run_json(peer.socket(), &["list", "--timeout", "5"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["devices"][0]["id"], "hostdev0");
    assert_eq!(doc["devices"][0]["uuid"], UUID);
    assert_eq!(doc["devices"][0]["matrix"], json!(["05.0004", "05.00ab"]));
    peer.assert_followed();
}

#[test]
fn an_event_flood_does_not_stop_the_unplug() {
    let peer = ScriptedPeer::start(
        list_with_hostdev0(Script::qemu())
            .expect("device_del")
            .step(Step::Flood(5_000, "VSERPORT_CHANGE".into()))
            .reply(json!({}))
            .step(Step::Flood(5_000, "DEVICE_DELETED".into()))
            .event(
                "DEVICE_DELETED",
                json!({"device": "hostdev0", "path": "/machine/peripheral/hostdev0"}),
            ),
    );
    let (code, doc) = run_json(
        peer.socket(),
        &["unplug", "--id", "hostdev0", "--timeout", "10"],
    );
    assert_eq!(code, 0, "{doc}");
    peer.assert_followed();
}

#[test]
fn a_reply_that_never_comes_times_out() {
    let peer = ScriptedPeer::start(Script::qemu().expect("qom-list"));
    let (code, doc) = run_json(peer.socket(), &["list", "--timeout", "1"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(error_kind(&doc), "qmp-timeout");
    assert!(error_message(&doc).contains("reply to qom-list"), "{doc}");
    peer.assert_followed();
}

#[test]
fn a_device_deleted_that_never_comes_times_out() {
    let peer = ScriptedPeer::start(
        list_with_hostdev0(Script::qemu())
            .expect("device_del")
            .reply(json!({}))
            .event(
                "DEVICE_DELETED",
                json!({"path": "/machine/peripheral/hostdev0/sub"}),
            ),
    );
    let (code, doc) = run_json(
        peer.socket(),
        &["unplug", "--id", "hostdev0", "--timeout", "1"],
    );
    assert_eq!(code, 3, "{doc}");
    assert_eq!(error_kind(&doc), "unplug-timeout");
    assert!(error_message(&doc).contains("DEVICE_DELETED"), "{doc}");
    peer.assert_followed();
}

#[test]
fn a_disconnect_mid_reply_is_reported() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .expect("qom-list")
            .raw(&b"{\"return\": [{\"name\": \"hostd"[..])
            .disconnect(),
    );
    let (code, doc) = run_json(peer.socket(), &["list", "--timeout", "5"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(error_kind(&doc), "qmp-disconnected");
    assert!(
        error_message(&doc).contains("in the middle of a message"),
        "{doc}"
    );
    peer.assert_followed();
}

#[test]
fn an_oversize_line_is_refused() {
    let peer = ScriptedPeer::start(Script::qemu().expect("qom-list").raw(vec![b' '; 3 << 20]));
    let (code, doc) = run_json(peer.socket(), &["list", "--timeout", "5"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(error_kind(&doc), "qmp-line-too-long");
    peer.finish();
}

#[test]
fn garbage_is_reported_with_the_line() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .expect("qom-list")
            .send("Hello, I am not QMP"),
    );
    let (code, doc) = run_json(peer.socket(), &["list", "--timeout", "5"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(error_kind(&doc), "qmp-garbage");
    assert!(error_message(&doc).contains("Hello, I am not QMP"), "{doc}");
    peer.assert_followed();
}

#[test]
fn a_reply_with_an_unknown_id_is_reported() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .expect("qom-list")
            .step(Step::ReplyWithId(json!([]), json!("someone-else-7"))),
    );
    let (code, doc) = run_json(peer.socket(), &["list", "--timeout", "5"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(error_kind(&doc), "qmp-unknown-id");
    assert!(error_message(&doc).contains("someone-else-7"), "{doc}");
    peer.assert_followed();
}

#[test]
fn no_greeting_times_out_with_a_hint() {
    let peer = ScriptedPeer::start(Script::new());
    let (code, doc) = run_json(peer.socket(), &["list", "--timeout", "1"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(error_kind(&doc), "qmp-no-greeting");
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("one QMP client"),
        "{doc}"
    );
    peer.assert_followed();
}

#[test]
fn an_unreachable_socket_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let (code, doc) = run_json(&dir.path().join("absent.sock"), &["list", "--timeout", "1"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(error_kind(&doc), "qmp-unreachable");
    assert!(error_message(&doc).contains("absent.sock"), "{doc}");
}

#[test]
fn two_racing_unplugs_one_wins_the_other_reports_it_gone() {
    let fake = FakeQemu::start(
        vec![FakeDevice {
            id: Some("hostdev0".into()),
            driver: "vfio-ap".into(),
            sysfsdev: Some(SYSFSDEV.into()),
        }],
        true,
    );
    let spawn = || {
        // CommandCargoExt honours the target runner (qemu-user for the s390x suite).
        <std::process::Command as assert_cmd::cargo::CommandCargoExt>::cargo_bin("aplaunch")
            .unwrap()
            .args([
                "--json",
                "qmp",
                "unplug",
                "--id",
                "hostdev0",
                "--timeout",
                "5",
                "--qmp",
            ])
            .arg(fake.socket())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let mut results = Vec::new();
    for child in [a, b] {
        // Each client is bounded by --timeout; the peer by its own patience.
        let out = child.wait_with_output().unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        results.push((out.status.code().unwrap(), doc));
    }
    results.sort_by_key(|(code, _)| *code);
    assert_eq!(results[0].0, 0, "{results:?}");
    assert_eq!(results[1].0, 1, "{results:?}");
    assert_eq!(error_kind(&results[1].1), "not-found", "{results:?}");
    assert!(fake.devices().is_empty());
}

#[test]
fn the_library_plugs_lists_and_unplugs_against_the_fake() {
    use launcher::hotplug::{self, HotplugRequest, UnplugTarget};
    use launcher::qmp::Qmp;
    let fake = FakeQemu::start(vec![], true);
    let host = HostTree::from_example("z16-se");
    let root = host::HostRoot::open(host.path()).unwrap();
    let mut qmp = Qmp::connect(fake.socket(), Duration::from_secs(5)).unwrap();
    let plugged = hotplug::hotplug(&mut qmp, &root, &HotplugRequest::new(UUID)).unwrap();
    assert_eq!(plugged.id, "ap-62177883");
    assert_eq!(plugged.guest_matrix, vec!["05.0004", "05.00ab"]);
    let again = hotplug::hotplug(&mut qmp, &root, &HotplugRequest::new(UUID)).unwrap_err();
    assert!(
        matches!(again, hotplug::Error::AlreadyPlugged { .. }),
        "{again}"
    );
    let listed = hotplug::list(&mut qmp, Some(&root)).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].sysfsdev.as_deref(), Some(SYSFSDEV));
    let gone = hotplug::unplug(
        &mut qmp,
        &UnplugTarget::Mdev(UUID.into()),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(gone.event.data_str("device"), Some("ap-62177883"));
    assert!(hotplug::list(&mut qmp, None).unwrap().is_empty());
    let mut no_ap = Qmp::connect(
        FakeQemu::start(vec![], false).socket(),
        Duration::from_secs(5),
    );
    // the fake is dropped at once, so either outcome is an error, never a hang
    let _ = no_ap.as_mut().map(|q| hotplug::list(q, None));
}

#[test]
fn the_hotplug_example_script_runs_with_and_without_jq() {
    let bash = Path::new("/bin/bash");
    if !bash.exists() {
        panic!("/bin/bash is needed to run examples/hotplug.sh");
    }
    let host = HostTree::from_example("z16-se");
    let script = testkit::hosttree::workspace_root().join("examples/hotplug.sh");
    for no_jq in ["", "1"] {
        let fake = FakeQemu::start(vec![], true);
        let out = std::process::Command::new(bash)
            .arg(&script)
            .arg(fake.socket())
            .arg(UUID)
            .env("APLAUNCH", aplaunch_for_scripts(host.path()))
            .env("APLAUNCH_HOST_ROOT", host.path())
            .env("NO_JQ", no_jq)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("the guest will see: 05.0004 05.00ab"),
            "NO_JQ={no_jq}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("hostdev0 -> {SYSFSDEV}")),
            "NO_JQ={no_jq}: {stdout}"
        );
        assert!(
            stdout.contains("unplugged hostdev0"),
            "NO_JQ={no_jq}: {stdout}"
        );
        assert!(fake.devices().is_empty());
    }
}

/// A path scripts can run as `aplaunch` (through the target's runner when emulated).
fn aplaunch_for_scripts(dir: &Path) -> std::path::PathBuf {
    testkit::cli::runnable_path(
        &assert_cmd::cargo::cargo_bin("aplaunch"),
        &dir.join("aplaunch-wrapper"),
    )
}

#[test]
fn list_and_unplug_human_output() {
    let peer = ScriptedPeer::start(
        list_with_hostdev0(Script::qemu())
            .expect("device_del")
            .reply(json!({}))
            .event(
                "DEVICE_DELETED",
                json!({"device": "hostdev0", "path": "/machine/peripheral/hostdev0"}),
            ),
    );
    let host = HostTree::from_example("z16-se");
    let out = Command::cargo_bin("aplaunch")
        .unwrap()
        .arg("--host-root")
        .arg(host.path())
        .args(["qmp", "unplug", "--id", "hostdev0", "--qmp"])
        .arg(peer.socket())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout,
        "unplugged vfio-ap device 'hostdev0' (mdev 62177883-f1bb-47f0-914d-32a22e3a8804) (QEMU sent DEVICE_DELETED)\n"
    );
    peer.assert_followed();

    let peer = ScriptedPeer::start(list_with_hostdev0(Script::qemu()));
    let out = Command::cargo_bin("aplaunch")
        .unwrap()
        .arg("--host-root")
        .arg(host.path())
        .args(["qmp", "list", "--qmp"])
        .arg(peer.socket())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout,
        "ID        SYSFSDEV                                                    MATRIX\n\
         hostdev0  /sys/bus/mdev/devices/62177883-f1bb-47f0-914d-32a22e3a8804  05.0004 05.00ab\n"
    );
    peer.assert_followed();
}
