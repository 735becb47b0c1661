//! `aplaunch qmp powerdown`: a clean guest shutdown for service managers.

use launcher::qmp::Qmp;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use testkit::cli::aplaunch;
use testkit::qmp::{RealQemu, Script, ScriptedPeer};

fn powerdown(sock: &Path, timeout: &str) -> (i32, Value) {
    let out = aplaunch()
        .args(["--json", "qmp", "powerdown", "--timeout", timeout, "--qmp"])
        .arg(sock)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).expect("one JSON document");
    (out.status.code().expect("exited"), doc)
}

#[test]
fn the_guest_shuts_down_and_qemu_exits() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .expect("system_powerdown")
            .reply(json!({}))
            .event("POWERDOWN", json!({}))
            .delay(Duration::from_millis(50))
            .event(
                "SHUTDOWN",
                json!({"guest": true, "reason": "guest-shutdown"}),
            )
            .disconnect(),
    );
    let (code, doc) = powerdown(peer.socket(), "10");
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        doc,
        json!({"ok": true, "shutdown": true, "reason": "guest-shutdown", "qemu_exited": true})
    );
    peer.assert_followed();
}

#[test]
fn qemu_that_stays_up_after_the_shutdown_is_still_a_success() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .expect("system_powerdown")
            .reply(json!({}))
            .event(
                "SHUTDOWN",
                json!({"guest": true, "reason": "guest-shutdown"}),
            )
            .delay(Duration::from_secs(30)),
    );
    let (code, doc) = powerdown(peer.socket(), "1");
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["qemu_exited"], false);
    assert_eq!(doc["reason"], "guest-shutdown");
}

#[test]
fn a_guest_that_ignores_the_request_times_out_with_exit_3() {
    let peer = ScriptedPeer::start(
        Script::qemu()
            .expect("system_powerdown")
            .reply(json!({}))
            .event("POWERDOWN", json!({}))
            .delay(Duration::from_secs(30)),
    );
    let (code, doc) = powerdown(peer.socket(), "0.5");
    assert_eq!(code, 3, "{doc}");
    assert_eq!(doc["error"]["kind"], "powerdown-timeout");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("did not shut down within 0.5 s"));
    assert!(doc["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("raise --timeout"));
}

#[test]
fn an_unreachable_socket_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let (code, doc) = powerdown(&dir.path().join("none.sock"), "1");
    assert_eq!(code, 3);
    assert_eq!(doc["error"]["kind"], "qmp-unreachable");
}

#[test]
fn real_qemu_without_a_guest_keeps_running_and_the_request_times_out() {
    let Some(qemu) = RealQemu::start(&[]) else {
        return;
    };
    let (code, doc) = powerdown(qemu.socket(), "1");
    assert_eq!(code, 3, "{doc}");
    assert_eq!(doc["error"]["kind"], "powerdown-timeout");
    // QEMU took the request and is still there.
    let mut qmp = Qmp::connect(qemu.socket(), Duration::from_secs(10)).unwrap();
    let status = qmp.execute("query-status", Value::Null).unwrap();
    assert!(status["status"].is_string(), "{status}");
}
