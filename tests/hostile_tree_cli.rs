//! The attacks of a hostile host tree, through the CLI: a link out of the tree where
//! `ap mdev create` writes, where `ap list` reads a mask, and a huge `/proc/cpuinfo` for
//! `check`. Nothing outside the tree is written or shown; each ends with a clear message.

use std::os::unix::fs::symlink;
use testkit::cli::aplaunch;
use testkit::hosttree::HostTree;

const SECRET: &str = "root:x:0:0:root:/root:/bin/bash\n";
const CREATE: &str = "sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create";

fn outside_secret() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("passwd");
    std::fs::write(&p, SECRET).unwrap();
    (dir, p)
}

#[test]
fn mdev_create_never_writes_through_a_link_out_of_the_tree() {
    let tree = HostTree::from_example("z16-se");
    let (_d, secret) = outside_secret();
    tree.remove(CREATE);
    symlink(&secret, tree.at(CREATE)).unwrap();
    let out = aplaunch()
        .arg("--host-root")
        .arg(tree.path())
        .args(["ap", "mdev", "create", "--adapter", "3", "--domain", "0xab"])
        .output()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), SECRET);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("create"), "{err}");
}

#[test]
fn ap_list_never_shows_a_file_out_of_the_tree() {
    let tree = HostTree::from_example("z16-se");
    let (_d, secret) = outside_secret();
    tree.remove("sys/bus/ap/apmask");
    symlink(&secret, tree.at("sys/bus/ap/apmask")).unwrap();
    let out = aplaunch()
        .arg("--host-root")
        .arg(tree.path())
        .args(["ap", "list"])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("root:x:0:0"), "{all}");
}

#[test]
fn a_huge_cpuinfo_is_refused_by_name_without_allocating_it() {
    let tree = HostTree::from_example("z16-se");
    tree.remove("proc/cpuinfo");
    std::fs::File::create(tree.at("proc/cpuinfo"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let out = aplaunch()
        .arg("--host-root")
        .arg(tree.path())
        .arg("check")
        .output()
        .unwrap();
    // facility-158 reports an unreadable cpuinfo as skipped (its existing verdict); the
    // point here: no abort, a bounded read and the path in the message
    assert!(out.status.code().is_some(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("proc/cpuinfo") && text.contains("larger than 1048576 bytes"),
        "{text}"
    );
}

/// A plain TCG launch on an empty tree passes every check; whether it may exec is the
/// question. Real QEMU answers the probe; no QEMU is started.
fn launch_on_tree(tree: &std::path::Path, from_env: bool, opt_in: bool) -> std::process::Output {
    let qemu = testkit::qemu::real_qemu("launch_policy").expect("qemu-system-s390x");
    let kernel = tree.join("vmlinuz");
    std::fs::write(&kernel, b"kernel").unwrap();
    let mut cmd = aplaunch();
    if from_env {
        cmd.env("APLAUNCH_HOST_ROOT", tree);
    } else {
        cmd.arg("--host-root").arg(tree);
    }
    cmd.args([
        "--no-pv", "--accel", "tcg", "--name", "policy", "--memory", "64M",
    ])
    .arg("--kernel")
    .arg(&kernel)
    .arg("--qemu")
    .arg(&qemu)
    .arg("--qmp")
    .arg(tree.join("q.sock"));
    if opt_in {
        cmd.arg("--exec-on-host-root");
    }
    cmd.output().unwrap()
}

#[test]
fn a_tree_root_from_the_environment_or_without_opt_in_never_execs() {
    if testkit::qemu::real_qemu("a_tree_root_never_execs").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = launch_on_tree(dir.path(), true, true);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("comes from APLAUNCH_HOST_ROOT"), "{err}");
    let out = launch_on_tree(dir.path(), false, false);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not /") && err.contains("--exec-on-host-root"),
        "{err}"
    );
    // neither started QEMU: no socket
    assert!(!dir.path().join("q.sock").exists());
}
