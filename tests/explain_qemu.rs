//! `aplaunch explain` on what the real QEMU prints (the binary in `APLAUNCH_TEST_QEMU`,
//! Debian's 7.2 by default, 10.0 in CI's second run), not on remembered texts: a CPU model
//! asking for the AP features the TCG configuration lacks (QEMU before 9.0 words it "in the
//! configuration", 9.0+ "in the current configuration"), and a vfio-ap device on a machine
//! without an AP bus. Fails when QEMU is missing and CI=true; skips locally.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use testkit::cli::aplaunch;

/// What QEMU prints on stderr when it refuses to start with `args` (TCG, nothing else).
fn refusal(qemu: &Path, args: &[&str]) -> String {
    let out = Command::new(qemu)
        .args([
            "-machine",
            "s390-ccw-virtio,accel=tcg",
            "-nodefaults",
            "-display",
            "none",
            "-S",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{} {args:?} started", qemu.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn explain(text: &str) -> Vec<Value> {
    let out = aplaunch()
        .args(["explain", "--json"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["explanations"].as_array().unwrap().clone()
}

#[test]
fn explain_knows_what_this_qemu_prints() {
    let Some(qemu) = testkit::qemu::real_qemu("explain_knows_what_this_qemu_prints") else {
        return;
    };
    let (major, _, _) = testkit::qemu::version_of(&qemu);
    // z13 under TCG: the AP features (and others) are not in TCG's configuration
    let text = refusal(&qemu, &["-cpu", "z13,ap=on,apqci=on,apft=on,apqi=on"]);
    let wording = if major >= 9 {
        "not available in the current configuration"
    } else {
        "not available in the configuration"
    };
    assert!(text.contains(wording), "QEMU {major}: {text}");
    let e = explain(&text);
    assert_eq!(e[0]["id"], "qemu-cpu-features", "{e:?}");
    let meaning = e[0]["meaning"].as_str().unwrap();
    for f in ["ap", "apqci", "apft", "apqi"] {
        assert!(
            meaning.contains(&format!("{f}: KVM on this host offers no AP")),
            "{f}: {meaning}"
        );
    }
    // vfio-ap without the AP feature: no ap-bus
    let text = refusal(
        &qemu,
        &["-device", "vfio-ap,sysfsdev=/sys/bus/mdev/devices/none"],
    );
    let e = explain(&text);
    assert_eq!(e[0]["id"], "qemu-no-ap-bus", "{text}: {e:?}");
}
