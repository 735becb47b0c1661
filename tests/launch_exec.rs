//! Exec tests with the fake QEMU: aplaunch replaces itself with QEMU, the passed
//! descriptors arrive at the numbers named in argv, and nothing else leaks.

#[path = "support/launch.rs"]
mod support;

use serde_json::Value;
use std::os::unix::process::CommandExt;
use support::*;

fn record(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the fake QEMU wrote its record")).unwrap()
}

fn fd_numbers(rec: &Value) -> Vec<i64> {
    rec["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_i64().unwrap())
        .collect()
}

/// Runs aplaunch with an extra descriptor (9) open without CLOEXEC, as a careless parent
/// might leave it; it must not reach QEMU.
fn run_with_leak(
    mut cmd: std::process::Command,
    dir: &std::path::Path,
) -> (std::process::ExitStatus, u32) {
    let leak = std::fs::File::create(dir.join("leak")).unwrap();
    let leak_fd = std::os::fd::AsRawFd::as_raw_fd(&leak);
    // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(leak_fd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.stdin(std::process::Stdio::null()).spawn().unwrap();
    let pid = child.id();
    (child.wait().unwrap(), pid)
}

#[test]
fn iommufd_descriptors_arrive_at_the_numbers_in_argv_and_nothing_else_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    tree.write("dev/iommu", "stands for the iommufd node\n");
    let rec = dir.path().join("rec.json");
    let fake = testkit::qemu::fake_qemu();
    let mut cmd = aplaunch(&dir.path().join("cache"));
    cmd.arg("-q")
        .arg("--host-root")
        .arg(tree.path())
        .args(["--mdev", UUID, "--pv-image"])
        .arg(se_image(dir.path()))
        .arg("--qemu")
        .arg(&fake)
        .arg("--exec-on-host-root")
        .arg("--qmp")
        .arg(dir.path().join("q.sock"))
        .env("FAKE_QEMU_VERSION", "9.1.0")
        .env("FAKE_QEMU_RECORD", &rec);
    let (status, pid) = run_with_leak(cmd, dir.path());
    assert!(status.success(), "{status:?}");
    let rec = record(&rec);
    // exec replaced the process: QEMU runs with aplaunch's pid.
    assert_eq!(rec["pid"].as_u64().unwrap(), u64::from(pid));
    let argv: Vec<&str> = rec["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(argv[0].ends_with("fake-qemu"), "{argv:?}");
    assert!(argv.contains(&"-kernel"), "{argv:?}");
    assert!(argv.contains(&"iommufd,id=iommufd0,fd=3"), "{argv:?}");
    let vfio = argv.iter().find(|a| a.starts_with("vfio-ap,")).unwrap();
    assert!(vfio.ends_with(",iommufd=iommufd0,fd=4"), "{vfio}");
    assert_eq!(fd_numbers(&rec), [0, 1, 2, 3, 4], "{rec}");
    let target = |i: usize| rec["fds"][i]["target"].as_str().unwrap().to_string();
    assert_eq!(target(3), tree.at("dev/iommu").display().to_string());
    assert_eq!(
        target(4),
        tree.at("dev/vfio/devices/vfio0").display().to_string()
    );
}

#[test]
fn group_backend_passes_no_descriptors_and_qemu_exit_status_is_the_process_status() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let rec = dir.path().join("rec.json");
    let mut cmd = aplaunch(&dir.path().join("cache"));
    cmd.arg("-q")
        .arg("--host-root")
        .arg(tree.path())
        .args(["launch", "--mdev", UUID, "--pv-image"])
        .arg(se_image(dir.path()))
        .arg("--qemu")
        .arg(testkit::qemu::fake_qemu())
        .arg("--exec-on-host-root")
        .arg("--qmp")
        .arg(dir.path().join("run/q.sock"))
        .args(["--", "-S"])
        .env("FAKE_QEMU_VERSION", "8.2.0")
        .env("FAKE_QEMU_RECORD", &rec)
        .env("FAKE_QEMU_EXIT", "5");
    let (status, _) = run_with_leak(cmd, dir.path());
    assert_eq!(status.code(), Some(5), "QEMU's own exit status");
    let rec = record(&rec);
    assert_eq!(fd_numbers(&rec), [0, 1, 2], "{rec}");
    let argv: Vec<&str> = rec["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        *argv.last().unwrap(),
        "-S",
        "extra args come last, verbatim"
    );
    assert!(argv
        .contains(&format!("vfio-ap,id=hostdev0,sysfsdev=/sys/bus/mdev/devices/{UUID}").as_str()));
    assert!(
        argv.iter().any(|a| a.contains("appv=on,appvi=on")),
        "8.2 host model has appv: {argv:?}"
    );
    // The QMP socket's directory was created, private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("run"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

fn path_with(dir: &std::path::Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).unwrap()
}

#[test]
fn the_probe_is_cached_until_the_binary_changes_or_no_cache() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let log = dir.path().join("probes.log");
    let fake = dir.path().join("bin/qemu-system-s390x");
    std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
    std::fs::copy(testkit::qemu::fake_qemu(), &fake).unwrap();
    let image = se_image(dir.path());
    let run = |extra: &[&str]| {
        let out = aplaunch(&dir.path().join("cache"))
            .arg("--host-root")
            .arg(tree.path())
            .args(["--mdev", UUID, "--pv-image"])
            .arg(&image)
            .arg("--dry-run")
            .args(extra)
            .env("FAKE_QEMU_PROBE_LOG", &log)
            // Discovery on PATH finds the copy first.
            .env("PATH", path_with(fake.parent().unwrap()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let probes = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let first = run(&[]);
    assert_eq!(probes(), 1);
    assert!(!first.contains("(cached)"));
    let second = run(&[]);
    assert_eq!(probes(), 1, "the second launch used the cache");
    assert!(second.contains("(cached)"));
    run(&["--no-cache"]);
    assert_eq!(probes(), 2);
    // A new binary (size and mtime change) is probed again.
    let mut bytes = std::fs::read(&fake).unwrap();
    bytes.extend_from_slice(b"\n# changed\n");
    std::fs::write(&fake, bytes).unwrap();
    run(&[]);
    assert_eq!(probes(), 3);
}
