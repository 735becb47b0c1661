//! examples/orchestrator.rs, run as an orchestrator would: a dry-run plan through the
//! library on the example host, then a hot plug into a running guest (testkit's model of
//! one) through the QMP client.

use serde_json::Value;
use std::path::PathBuf;
use testkit::hosttree::{example_host, workspace_root};
use testkit::qmp::FakeQemu;

/// The example binary cargo built beside this test (`cargo test` builds examples).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|p| p.parent()).unwrap();
    let path = profile.join("examples/orchestrator");
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --examples`",
        path.display()
    );
    path
}

#[test]
fn plans_a_launch_and_hot_plugs_the_crypto_device() {
    let guest = FakeQemu::start(vec![], true);
    let cache = tempfile::tempdir().unwrap();
    let out = testkit::cli::command_for(&example_binary())
        .arg(example_host("z16-se"))
        .arg(workspace_root().join("examples/images/demo-se.img"))
        .arg(guest.socket())
        .env("APLAUNCH_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Two JSON documents: the argv, then what was plugged.
    let mut docs = serde_json::Deserializer::from_str(&stdout).into_iter::<Value>();
    let argv = docs.next().unwrap().unwrap();
    let argv: Vec<&str> = argv
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        argv.iter().any(|a| a.starts_with("vfio-ap,")
            && a.contains("sysfsdev=/sys/bus/mdev/devices/62177883-f1bb-47f0-914d-32a22e3a8804")),
        "{argv:?}"
    );
    assert!(
        argv.windows(2)
            .any(|w| w == ["-object", "s390-pv-guest,id=pv0"]),
        "{argv:?}"
    );
    let plugged = docs.next().unwrap().unwrap();
    assert_eq!(
        plugged["uuid"], "62177883-f1bb-47f0-914d-32a22e3a8804",
        "{plugged}"
    );
    // The guest now has the device.
    let devices = guest.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].driver, "vfio-ap");
    assert_eq!(
        devices[0].sysfsdev.as_deref(),
        Some("/sys/bus/mdev/devices/62177883-f1bb-47f0-914d-32a22e3a8804")
    );
    // the report went to stderr
    assert!(stderr.contains("mdev-exists"), "{stderr}");
}
