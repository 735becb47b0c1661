//! Device numbers, MACs and console backends, end to end with the real qemu-system-s390x
//! (TCG): aplaunch execs QEMU and QEMU itself is asked (qom-get, query-chardev, the
//! terminal's modes) what it made of the command line. Fails when QEMU is missing and
//! CI=true; skips locally.

#[path = "support/launch.rs"]
mod support;

use launcher::qmp::{Options, Qmp};
use serde_json::{json, Value};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

struct Guest {
    child: Child,
    qmp: Qmp,
}

impl Guest {
    fn get(&mut self, id: &str, property: &str) -> Value {
        self.qmp
            .execute(
                "qom-get",
                json!({"path": format!("/machine/peripheral/{id}"), "property": property}),
            )
            .unwrap_or_else(|e| panic!("qom-get {id} {property}: {e}"))
    }

    fn quit(mut self) {
        let _ = self.qmp.execute("quit", Value::Null);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "QEMU exit: {status:?}");
    }
}

/// `aplaunch --no-pv --accel tcg` with `args`, stopped before the guest runs (`-S`).
fn command(qemu: &Path, dir: &Path, args: &[String]) -> Command {
    // An empty host tree: a plain TCG guest reads nothing from the host.
    let host = dir.join("host");
    std::fs::create_dir_all(&host).unwrap();
    let mut cmd = aplaunch(&dir.join("cache"));
    cmd.arg("--host-root")
        .arg(&host)
        .args([
            "--no-pv", "--accel", "tcg", "--name", "devno1", "--memory", "256M",
        ])
        .arg("--exec-on-host-root")
        .arg("--qemu")
        .arg(qemu)
        .arg("--qmp")
        .arg(dir.join("qmp.sock"))
        .args(args)
        .arg("-q");
    cmd
}

fn start(mut cmd: Command, dir: &Path) -> Guest {
    cmd.args(["--", "-S"]);
    let mut child = cmd.spawn().unwrap();
    let sock = dir.join("qmp.sock");
    let start = Instant::now();
    let stream = loop {
        if let Ok(s) = UnixStream::connect(&sock) {
            break s;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("QEMU exited before its QMP socket answered: {status:?}");
        }
        // A generous bound so that a broken launch fails instead of hanging the suite.
        assert!(start.elapsed() < Duration::from_secs(60), "no QMP socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    let qmp = Qmp::from_stream(stream, &Options::with_timeout(Duration::from_secs(30))).unwrap();
    Guest { child, qmp }
}

fn disk(dir: &Path, name: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
    p.display().to_string().replace(',', ",,")
}

/// The argv of `--dry-run --json` for the same flags.
fn dry_run_argv(qemu: &Path, dir: &Path, args: &[String]) -> Vec<String> {
    let out = command(qemu, dir, args)
        .args(["--dry-run", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `(id, devno, mac)` of every `-device` with a devno in an argv.
fn devices_in(argv: &[String]) -> Vec<(String, String, Option<String>)> {
    argv.windows(2)
        .filter(|w| w[0] == "-device")
        .filter_map(|w| {
            let opts = launcher::spec::split_qemu_opts(&w[1]);
            let get = |k: &str| {
                opts.iter()
                    .find_map(|o| o.strip_prefix(&format!("{k}=")).map(str::to_string))
            };
            Some((get("id")?, get("devno")?, get("mac")))
        })
        .collect()
}

#[test]
fn every_device_has_its_pinned_number_and_a_new_disk_moves_no_nic() {
    let Some(qemu) = testkit::qemu::real_qemu("every_device_has_its_pinned_number") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let common = |disks: Vec<String>| -> Vec<String> {
        let mut a = Vec::new();
        for disk in disks {
            a.push("--disk".into());
            a.push(disk);
        }
        a.extend(
            [
                "--net",
                "user",
                "--net",
                "user",
                "--rng",
                "--console",
                "virtio",
            ]
            .map(String::from),
        );
        a
    };
    let before_args = common(vec![disk(d, "root, 1.img")]);
    let after_args = common(vec![disk(d, "root, 1.img"), disk(d, "added.img")]);
    let mut seen = Vec::new();
    for args in [&before_args, &after_args] {
        let planned = devices_in(&dry_run_argv(&qemu, d, args));
        assert!(!planned.is_empty());
        let mut cmd = command(&qemu, d, args);
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        let mut guest = start(cmd, d);
        let mut actual = Vec::new();
        for (id, devno, mac) in &planned {
            // QEMU holds exactly the number the JSON argv announced.
            assert_eq!(guest.get(id, "devno"), json!(devno), "{id}");
            if let Some(mac) = mac {
                assert_eq!(guest.get(id, "mac"), json!(mac), "{id}");
            }
            actual.push((id.clone(), devno.clone(), mac.clone()));
        }
        guest.quit();
        seen.push(actual);
    }
    let find = |run: &[(String, String, Option<String>)], id: &str| {
        run.iter().find(|(i, _, _)| i == id).cloned().unwrap()
    };
    for id in ["nic0", "nic1", "virtio-rng0", "vserial0", "disk0"] {
        assert_eq!(
            find(&seen[0], id),
            find(&seen[1], id),
            "{id} moved when a disk was added"
        );
    }
    assert_eq!(find(&seen[1], "disk1").1, "fe.0.0001");
    assert_eq!(find(&seen[0], "nic0").1, "fe.0.1000");
    let (mac0, mac1) = (
        find(&seen[0], "nic0").2.unwrap(),
        find(&seen[0], "nic1").2.unwrap(),
    );
    assert_ne!(mac0, mac1);
    assert_ne!(mac0, "52:54:00:12:34:56", "QEMU's default MAC");
}

#[test]
fn console_on_a_pty_a_socket_and_stdio_without_ctrl_c_death() {
    let Some(qemu) = testkit::qemu::real_qemu("console_backends") else {
        return;
    };
    // pty: QEMU allocates it and names it in query-chardev.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(
        &qemu,
        dir.path(),
        &["--console".into(), "virtio,pty".into()],
    );
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut guest = start(cmd, dir.path());
    let chardevs = guest.qmp.execute("query-chardev", Value::Null).unwrap();
    let console = chardevs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == "console0")
        .unwrap_or_else(|| panic!("no console0 in {chardevs}"));
    let pty = console["filename"].as_str().unwrap();
    assert!(pty.starts_with("pty:/dev/pts/"), "{console}");
    assert!(Path::new(&pty["pty:".len()..]).exists());
    guest.quit();

    // socket: QEMU listens there, and a client can attach.
    let dir = tempfile::tempdir().unwrap();
    let sock: PathBuf = dir.path().join("vm, 1.console");
    let spec = format!("socket:{}", sock.display().to_string().replace(',', ",,"));
    let mut cmd = command(&qemu, dir.path(), &["--console".into(), spec]);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let guest = start(cmd, dir.path());
    UnixStream::connect(&sock).expect("the console socket accepts a client");
    guest.quit();

    // stdio on a terminal: QEMU must leave ISIG off, so that Ctrl-C is a character for
    // the guest and not SIGINT for QEMU (signal=on, QEMU's default, keeps ISIG on).
    let dir = tempfile::tempdir().unwrap();
    let pty = nix::pty::openpty(None, None).unwrap();
    let before = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    assert!(before
        .local_flags
        .contains(nix::sys::termios::LocalFlags::ISIG));
    let mut cmd = command(&qemu, dir.path(), &["--console".into(), "sclp".into()]);
    cmd.stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()));
    let guest = start(cmd, dir.path());
    let during = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    assert!(
        !during
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ISIG),
        "QEMU left ISIG on: Ctrl-C would kill the guest"
    );
    guest.quit();
    drop(pty.master);
}
