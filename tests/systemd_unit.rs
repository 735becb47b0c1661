//! The systemd template unit's commands are valid aplaunch command lines.

use std::path::PathBuf;

fn unit() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/systemd/aplaunch@.service");
    std::fs::read_to_string(path).unwrap()
}

fn command_lines(key: &str) -> Vec<Vec<String>> {
    unit()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|cmd| {
            cmd.replace("%i", "secure1")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn start_and_stop_commands_parse() {
    let starts = command_lines("ExecStart");
    let stops = command_lines("ExecStop");
    assert_eq!((starts.len(), stops.len()), (1, 1));
    for argv in starts.iter().chain(&stops) {
        assert_eq!(argv[0], "/usr/bin/aplaunch");
        let os: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
        aplaunch::cli::parse(os).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    assert!(
        starts[0].contains(&"--config".to_string())
            && starts[0].contains(&"/etc/aplaunch/secure1.toml".to_string())
    );
    // stop talks to the socket start told QEMU to open
    let qmp_of =
        |argv: &Vec<String>| argv[argv.iter().position(|a| a == "--qmp").unwrap() + 1].clone();
    assert_eq!(qmp_of(&starts[0]), qmp_of(&stops[0]));
    assert!(unit().contains("RestartPreventExitStatus=1 2"));
}

#[path = "support/launch.rs"]
mod support;

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

/// The ExecStart command line of the unit, for instance `secure1`.
fn exec_start() -> Vec<String> {
    command_lines("ExecStart").remove(0)
}

#[test]
fn the_unit_waits_for_the_mdev_itself_not_for_a_service_mdevctl_does_not_ship() {
    let unit = unit();
    let after = unit.lines().find_map(|l| l.strip_prefix("After=")).unwrap();
    assert!(!after.contains("mdevctl"), "{after}");
    let argv = exec_start();
    let i = argv.iter().position(|a| a == "--wait-mdev").unwrap();
    let secs: f64 = argv[i + 1].parse().unwrap();
    assert!(secs > 0.0);
    // retried a bounded number of times: the start limit window holds all of them
    let value = |key: &str| -> f64 {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}="))
            .parse()
            .unwrap()
    };
    let (burst, window, pause) = (
        value("StartLimitBurst"),
        value("StartLimitIntervalSec"),
        value("RestartSec"),
    );
    assert!(
        (burst - 1.0) * (secs + pause) < window,
        "restarts would not stop"
    );
    // what the real package ships: a udev rule that starts the autostart mdevs, no unit
    let listed = Command::new("dpkg").args(["-L", "mdevctl"]).output();
    match listed {
        Ok(out) if out.status.success() => {
            let files = String::from_utf8_lossy(&out.stdout);
            assert!(files.contains("60-mdevctl.rules"), "{files}");
            assert!(!files.contains(".service"), "{files}");
        }
        _ if testkit::ci() => panic!("mdevctl is not installed (scripts/ci-setup.sh installs it)"),
        _ => eprintln!("the mdevctl package half: SKIPPED: mdevctl is not installed"),
    }
}

fn launch_waiting(tree: &std::path::Path, dir: &std::path::Path, wait: &str) -> Command {
    let img = support::se_image(dir);
    let mut cmd = support::aplaunch(&dir.join("cache"));
    cmd.arg("--host-root")
        .arg(tree)
        .args(["launch", "--mdev", support::UUID, "--pv-image"])
        .arg(img)
        .arg("--qemu")
        .arg(testkit::qemu::fake_qemu())
        .args(["--dry-run", "--wait-mdev", wait])
        .env("FAKE_QEMU_VERSION", "9.1.0");
    cmd
}

#[test]
fn launch_starts_only_once_mdevctl_and_ap_check_have_set_the_mdev_up() {
    let test = "launch_starts_only_once_mdevctl_and_ap_check_have_set_the_mdev_up";
    let Some(util_lockfile) = testkit::s390_tools::tool(test, "util_lockfile") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tree = support::z16();
    let mdev = tree.at(&format!("sys/devices/vfio_ap/matrix/{}", support::UUID));
    let saved = tree.at("saved-mdev");
    std::fs::rename(&mdev, &saved).unwrap();
    let mut launch = launch_waiting(tree.path(), dir.path(), "120")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(launch.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("waiting up to 120 s for mdev"), "{line}");
    // mdevctl start as a boot runs it: ap-check takes the AP configuration lock for
    // mdevctl (util_lockfile --lock takes it for its parent, here the shell), the mdev
    // appears, its attributes are written, and the post call releases the lock
    let lock = tree.at("run/lock/s390apconfig.lock");
    let ready = tree.at("ready");
    let mut mdevctl = Command::new("sh")
        .arg("-c")
        .arg(
            "\"$1\" -f \"$2\" --lock 0 >/dev/null && mv \"$3\" \"$4\" && touch \"$5\" && read _ && \"$1\" -f \"$2\" --release",
        )
        .arg("sh")
        .args([&util_lockfile, &lock, &saved, &mdev, &ready])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    while !ready.exists() {
        assert!(
            mdevctl.try_wait().unwrap().is_none(),
            "the lock was not taken"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // the mdev exists but the lock is held: launch must still be waiting
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        launch.try_wait().unwrap().is_none(),
        "launch went ahead while ap-check held the lock"
    );
    mdevctl.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(mdevctl.wait().unwrap().success());
    let out = launch.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("sysfsdev=/sys/bus/mdev/devices/{}", support::UUID)),
        "{stdout}"
    );
    assert!(!lock.exists(), "no lock file is left behind");
}

#[test]
fn an_mdev_that_never_comes_fails_the_start_with_exit_3_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let tree = support::z16();
    tree.remove(&format!("sys/devices/vfio_ap/matrix/{}", support::UUID));
    let out = launch_waiting(tree.path(), dir.path(), "0.3")
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "mdev-timeout", "{doc}");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(msg.contains(support::UUID), "{msg}");
    assert!(msg.contains("autostart definition"), "{msg}");
    assert!(msg.contains("60-mdevctl.rules"), "{msg}");
    assert!(msg.contains("there is no 60-mdevctl.rules"), "{msg}");
    // the rule of the real package, in the tree as it is installed: the message says
    // whether the mdevctl it runs exists
    let real = std::path::Path::new("/lib/udev/rules.d/60-mdevctl.rules");
    if real.is_file() {
        let rule = std::fs::read_to_string(real).unwrap();
        tree.write("lib/udev/rules.d/60-mdevctl.rules", &rule);
        let program = rule
            .split(|c: char| c.is_whitespace() || "'\"{};".contains(c))
            .find(|w| w.starts_with('/') && w.ends_with("/mdevctl"))
            .unwrap()
            .to_string();
        let run = || {
            let out = launch_waiting(tree.path(), dir.path(), "0.3")
                .arg("--json")
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(3));
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            doc["error"]["message"].as_str().unwrap().to_string()
        };
        let msg = run();
        assert!(
            msg.contains(&format!("runs {program}, which does not exist")),
            "{msg}"
        );
        tree.write(program.trim_start_matches('/'), "#!/bin/sh\n");
        let msg = run();
        assert!(!msg.contains("does not exist on this host"), "{msg}");
        assert!(!msg.contains("60-mdevctl.rules in"), "{msg}");
    } else if testkit::ci() {
        panic!("mdevctl's udev rule is not installed (scripts/ci-setup.sh installs mdevctl)");
    } else {
        eprintln!("the real udev rule half: SKIPPED: mdevctl is not installed");
    }
    let tree = support::z16();
    tree.remove(&format!("sys/devices/vfio_ap/matrix/{}", support::UUID));
    // a manual definition: nothing starts it at boot, and the message says so
    let def = format!("etc/mdevctl.d/matrix/{}", support::UUID);
    let manual = tree.read(&def).replace("\"auto\"", "\"manual\"");
    tree.write(&def, manual);
    let out = launch_waiting(tree.path(), dir.path(), "0.3")
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is manual"));
}
