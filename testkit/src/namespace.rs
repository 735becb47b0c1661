//! Running a real tool that has no root override (mdevctl, ap-check, chzdev) against a host
//! tree: in a private mount namespace (`unshare -m`, mounts made private) the tree's `sys/`,
//! `etc/mdevctl.d`, `etc/udev/rules.d` and `run/lock` are bind-mounted over the machine's,
//! so the tool reads and writes the tree while the machine is untouched. Needs root and
//! `unshare` (util-linux).

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The shell run inside the namespace: mount, then exec the tool.
const SETUP: &str = r#"set -e
tree=$1; shift
mkdir -p "$tree/etc/mdevctl.d" "$tree/etc/udev/rules.d" "$tree/run/lock"
mount --bind "$tree/sys" /sys
mount --bind "$tree/etc/mdevctl.d" /etc/mdevctl.d
mount --bind "$tree/etc/udev/rules.d" /etc/udev/rules.d
mount --bind "$tree/run/lock" /run/lock
exec "$@"
"#;

/// Whether a private mount namespace can be made here. When not: with `CI=true` this
/// panics (CI must not skip), else it prints why `test` is skipped.
pub fn available(test: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Path::new("/etc/mdevctl.d").is_dir()
        && Path::new("/etc/udev/rules.d").is_dir();
    if !ok {
        let why = "no private mount namespace can be made here (needs root, unshare, and /etc/mdevctl.d and /etc/udev/rules.d from the mdevctl and udev packages)";
        if crate::ci() {
            panic!("{test}: {why}, and CI=true forbids skipping");
        }
        eprintln!("{test}: SKIPPED: {why}");
    }
    ok
}

/// A command that runs `program args` with the tree mounted over the machine's paths.
/// (mdevctl 1.2.0 runs the callouts in `/etc/mdevctl.d/scripts.d/callouts`, so a callout
/// placed in the tree's `etc/mdevctl.d/scripts.d/callouts` is the one it runs.)
pub fn command(tree: &Path, program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", SETUP, "sh"])
        .arg(tree)
        .arg(program)
        .args(args);
    cmd
}

/// Runs `program args` in the namespace, with `stdin` as its input.
pub fn run(tree: &Path, program: &Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = command(tree, program, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start unshare");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for the tool")
}
