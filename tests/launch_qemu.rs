//! End to end with the real qemu-system-s390x (TCG): `aplaunch --no-pv --accel tcg ...`
//! execs QEMU, the QMP socket answers, the virtio devices exist with iommu_platform as
//! requested; then quit. Fails when QEMU is missing and CI=true; skips locally.

#[path = "support/launch.rs"]
mod support;

use launcher::qmp::{Options, Qmp};
use serde_json::{json, Value};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

fn connect(path: &Path, child: &mut std::process::Child) -> UnixStream {
    let start = Instant::now();
    loop {
        if let Ok(s) = UnixStream::connect(path) {
            return s;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("QEMU exited before its QMP socket answered: {status:?}");
        }
        // A generous bound so a broken launch fails instead of hanging the suite.
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no QMP socket at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ok(reply: launcher::qmp::Result<Value>, what: &str) -> Value {
    reply.unwrap_or_else(|e| panic!("{what}: {e}"))
}

#[test]
fn launch_a_plain_guest_under_tcg_and_talk_to_it() {
    let Some(qemu) = testkit::qemu::real_qemu("launch_a_plain_guest_under_tcg_and_talk_to_it")
    else {
        return;
    };
    for iommu in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let tree = testkit::hosttree::HostTree::empty();
        let disk = dir.path().join("disk, 1.img");
        std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
        let sock = dir.path().join("qmp.sock");
        let mut cmd = aplaunch(&dir.path().join("cache"));
        cmd.arg("--host-root")
            .arg(tree.path())
            .args([
                "--no-pv", "--accel", "tcg", "--name", "e2e", "--memory", "256M",
            ])
            .arg("--exec-on-host-root")
            .arg("--qemu")
            .arg(&qemu)
            .arg("--disk")
            .arg(format!(
                "{},format=raw",
                disk.display().to_string().replace(',', ",,")
            ))
            .args(["--net", "user", "--rng", "--console", "virtio"])
            .arg("--qmp")
            .arg(&sock)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        if iommu {
            cmd.arg("--iommu-platform");
        }
        cmd.args(["-q", "--", "-S"]);
        let mut child = cmd.spawn().unwrap();
        let stream = connect(&sock, &mut child);
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // exec replaced aplaunch: the process we started is QEMU now.
        let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
        assert_eq!(
            exe.file_name().unwrap(),
            qemu.canonicalize().unwrap().file_name().unwrap()
        );
        let mut qmp =
            Qmp::from_stream(stream, &Options::with_timeout(Duration::from_secs(30))).unwrap();
        assert!(qmp.version().major >= 6);
        let status = ok(qmp.execute("query-status", Value::Null), "query-status");
        assert_eq!(
            status["status"], "prelaunch",
            "-S from the extra args: {status}"
        );
        let list = ok(
            qmp.execute("qom-list", json!({"path": "/machine/peripheral"})),
            "qom-list",
        );
        let mut ids: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"].as_str().unwrap_or("").starts_with("child<"))
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, ["console", "disk0", "nic0", "virtio-rng0", "vserial0"]);
        for id in ["disk0", "nic0", "virtio-rng0", "vserial0"] {
            let v = ok(
                qmp.execute(
                    "qom-get",
                    json!({"path": format!("/machine/peripheral/{id}"), "property": "iommu_platform"}),
                ),
                id,
            );
            assert_eq!(v, json!(iommu), "{id} iommu_platform");
        }
        // The disk path with a comma and a space reached QEMU intact.
        let block = ok(qmp.execute("query-block", Value::Null), "query-block");
        assert_eq!(
            block[0]["inserted"]["file"],
            disk.display().to_string(),
            "{block}"
        );
        let _ = qmp.execute("quit", Value::Null);
        let status = child.wait().unwrap();
        assert!(status.success(), "QEMU exit: {status:?}");
    }
}
