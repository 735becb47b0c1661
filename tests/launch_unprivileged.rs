//! A real TCG launch where QEMU runs sandboxed and as `nobody`: aplaunch opens what QEMU
//! needs as root, hands it the QMP socket's directory and switches to the user before exec;
//! QEMU's seccomp filter is on, its process's UIDs are all nobody's, and Debian's s390x
//! kernel still boots (its banner on the sclp console, `query-status` running).
//! Runs against `APLAUNCH_TEST_QEMU` (default Debian's 7.2; CI runs the real-QEMU tests
//! again with QEMU 10.0 from scripts/setup-qemu10.sh).
//! Fails when a peer is missing and CI=true; skips locally.

#[path = "support/launch.rs"]
mod support;

use launcher::qmp::{Options, Qmp};
use serde_json::Value;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::*;

const GUEST_BOOT: &str = "/opt/aplaunch/guest/boot";

fn required(what: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "{what} is missing, and CI=true forbids skipping (scripts/ci-setup.sh installs it)"
            );
        }
        eprintln!("SKIPPED: {what} is missing (scripts/ci-setup.sh installs it)");
    }
    found
}

fn guest_kernel() -> Option<PathBuf> {
    let found = std::fs::read_dir(GUEST_BOOT).ok().and_then(|d| {
        d.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
    });
    required("Debian's s390x kernel in /opt/aplaunch/guest/boot", found)
}

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn launch_as_nobody(qemu: &Path, kernel: &Path) {
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody");
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    let sock = dir.path().join("run/qmp.sock");
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    // nobody must reach the socket's directory through the temporary directory
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let mut child = aplaunch(&dir.path().join("cache"))
        .arg("--host-root")
        .arg(&host)
        .args([
            "--no-pv", "--accel", "tcg", "--name", "unpriv", "--memory", "256M",
        ])
        .arg("--exec-on-host-root")
        .args(["--user", "nobody", "--console", "sclp"])
        .arg("--kernel")
        .arg(kernel)
        .args(["--append", "console=ttysclp0 panic=0"])
        .arg("--qemu")
        .arg(qemu)
        .arg("--qmp")
        .arg(&sock)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the console, read on a thread; the banner is the proof of a booting kernel
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains("Linux version") {
                let _ = tx.send(String::from_utf8_lossy(&seen).into_owned());
                break;
            }
        }
    });
    let start = Instant::now();
    let stream = loop {
        if let Ok(s) = UnixStream::connect(&sock) {
            break s;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!(
                "{}: QEMU exited ({status:?}) before its QMP socket answered: {err}",
                qemu.display()
            );
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no QMP socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut qmp =
        Qmp::from_stream(stream, &Options::with_timeout(Duration::from_secs(30))).unwrap();
    // aplaunch became QEMU: the child's PID is QEMU's
    let pid = child.id();
    let uid = nobody.uid.as_raw().to_string();
    assert_eq!(
        status_field(pid, "Uid"),
        [uid.as_str(); 4].join(" "),
        "{}: QEMU's real, effective, saved and fs UIDs",
        qemu.display()
    );
    let gid = nobody.gid.as_raw().to_string();
    assert_eq!(status_field(pid, "Gid"), [gid.as_str(); 4].join(" "));
    // 2: SECCOMP_MODE_FILTER, QEMU's -sandbox
    assert_eq!(
        status_field(pid, "Seccomp"),
        "2",
        "{}: not sandboxed",
        qemu.display()
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert!(args.windows(2).any(|w| w[0] == "-sandbox"
        && w[1] == "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
    assert!(args.iter().any(|a| a == "-uuid"));
    let console = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("{}: no kernel banner on the console", qemu.display()));
    assert!(console.contains("Linux version 6."), "{console}");
    let status = qmp.execute("query-status", Value::Null).unwrap();
    assert_eq!(status["status"], "running", "{status}");
    let _ = qmp.execute("quit", Value::Null);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn a_tcg_guest_boots_with_qemu_sandboxed_and_running_as_nobody() {
    if !nix::unistd::geteuid().is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root"
        );
        eprintln!("SKIPPED: starting QEMU as another user needs root");
        return;
    }
    let Some(kernel) = guest_kernel() else {
        return;
    };
    let Some(qemu) =
        testkit::qemu::real_qemu("a_tcg_guest_boots_with_qemu_sandboxed_and_running_as_nobody")
    else {
        return;
    };
    launch_as_nobody(&qemu, &kernel);
}

#[test]
fn a_kernel_the_user_cannot_read_is_exit_2_before_qemu_starts() {
    if !nix::unistd::geteuid().is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root"
        );
        eprintln!("SKIPPED: starting QEMU as another user needs root");
        return;
    }
    let Some(qemu) = testkit::qemu::real_qemu("a_kernel_the_user_cannot_read") else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    // root can read it, nobody cannot
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let kernel = private.join("vmlinuz");
    std::fs::write(&kernel, b"kernel").unwrap();
    let sock = dir.path().join("run/qmp.sock");
    let out = aplaunch(&dir.path().join("cache"))
        .arg("--host-root")
        .arg(&host)
        .args([
            "--json",
            "--no-pv",
            "--accel",
            "tcg",
            "--name",
            "unreadable",
        ])
        .arg("--exec-on-host-root")
        .args(["--user", "nobody", "--console", "none"])
        .arg("--kernel")
        .arg(&kernel)
        .arg("--qemu")
        .arg(&qemu)
        .arg("--qmp")
        .arg(&sock)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(out.status.code(), Some(2), "{doc}");
    assert_eq!(doc["error"]["kind"], "guest-file", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("as user nobody")
            && message.contains(&kernel.display().to_string())
            && message.contains("Permission denied"),
        "{message}"
    );
    assert!(!sock.exists(), "QEMU started");
}
