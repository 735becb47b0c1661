//! The AP configuration lock against s390-tools' own code: libutil's `util_lockfile`
//! program (built from the s390-tools 2.43.0 tarball by scripts/build-s390-tools.sh), which
//! takes and releases the lock exactly as chzdev, lszcrypt and ap-check do. Skips when it is
//! not built, fails instead with CI=true.

use host::HostRoot;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};
use testkit::hosttree::HostTree;
use vfio::lock::{ApLock, LOCK_FILE};

fn util_lockfile(test: &str) -> Option<PathBuf> {
    testkit::s390_tools::tool(test, "util_lockfile")
}

fn run(tool: &Path, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn tree() -> (HostTree, HostRoot, String) {
    let tree = HostTree::from_example("z16-se");
    let root = HostRoot::open(tree.path()).unwrap();
    let path = root.path(LOCK_FILE).to_string_lossy().into_owned();
    (tree, root, path)
}

#[test]
fn the_real_util_lockfile_cannot_take_the_lock_aplaunch_holds() {
    let Some(tool) = util_lockfile("the_real_util_lockfile_cannot_take_the_lock_aplaunch_holds")
    else {
        return;
    };
    let (_tree, root, path) = tree();
    let held = ApLock::acquire(&root, Duration::ZERO).unwrap();
    let out = run(&tool, &["-f", &path, "--lock-and-release", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("already held"), "{}", text(&out));
    drop(held);
    // released: nothing is left that would make the real tool wait
    assert!(!Path::new(&path).exists());
    let out = run(&tool, &["-f", &path, "--lock", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&tool, &["-f", &path, "--release"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!Path::new(&path).exists());
}

#[test]
fn aplaunch_waits_for_the_real_util_lockfile_and_names_the_holder() {
    let Some(tool) =
        util_lockfile("aplaunch_waits_for_the_real_util_lockfile_and_names_the_holder")
    else {
        return;
    };
    let (_tree, root, path) = tree();
    // util_lockfile --lock takes the lock for its parent, as ap-check does for mdevctl:
    // the parent here is a shell that lives until it is killed
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' -f '{path}' --lock 0 >/dev/null && exec sleep 60",
            tool.display()
        ))
        .spawn()
        .unwrap();
    let pid = shell.id() as i32;
    while std::fs::read_to_string(&path).ok() != Some(format!("{pid}\n")) {
        assert!(shell.try_wait().unwrap().is_none(), "util_lockfile failed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let e = ApLock::acquire(&root, Duration::from_millis(200))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("held by PID {pid} (")), "{e}");
    // the holder dies without releasing: the lock is stale for aplaunch as for s390-tools
    shell.kill().unwrap();
    shell.wait().unwrap();
    assert!(Path::new(&path).exists());
    let held = ApLock::acquire(&root, Duration::ZERO).unwrap();
    drop(held);
    assert!(!Path::new(&path).exists());
}

#[test]
fn aplaunch_waits_within_its_bound_until_the_real_holder_releases() {
    let Some(tool) =
        util_lockfile("aplaunch_waits_within_its_bound_until_the_real_holder_releases")
    else {
        return;
    };
    let (_tree, root, path) = tree();
    // --lock-and-release: held for its own PID for a while, then released
    let mut holder = Command::new(&tool)
        .args(["-f", &path, "--lock-and-release", "0"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !Path::new(&path).exists() {
        assert!(holder.try_wait().unwrap().is_none(), "util_lockfile failed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let held = ApLock::acquire(&root, Duration::from_secs(30)).unwrap();
    assert!(
        holder.wait().unwrap().success(),
        "the real tool released its own lock"
    );
    assert_eq!(
        std::fs::read_to_string(held.path()).unwrap(),
        format!("{}\n", std::process::id())
    );
}

#[test]
fn stale_rules_agree_with_the_real_util_lockfile() {
    let Some(tool) = util_lockfile("stale_rules_agree_with_the_real_util_lockfile") else {
        return;
    };
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let age = |path: &str, secs: u64| {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    };
    // (content, seconds since its last change, stale?)
    let cases: [(String, u64, bool); 7] = [
        (format!("{dead}\n"), 0, true),
        ("1\n".into(), 600, false),
        (String::new(), 0, false),
        (String::new(), 121, true),
        ("garbage".into(), 0, false),
        ("garbage".into(), 121, true),
        ("0\n".into(), 121, true),
    ];
    for (content, secs, stale) in cases {
        // the real tool (no retries: it takes the lock only when it is free or stale)
        let (_t1, _r1, path) = tree();
        std::fs::write(&path, &content).unwrap();
        age(&path, secs);
        let out = run(&tool, &["-f", &path, "--lock", "0"]);
        assert_eq!(
            out.status.success(),
            stale,
            "util_lockfile on {content:?}, {secs} s: {}",
            text(&out)
        );
        // aplaunch
        let (_t2, root, path) = tree();
        std::fs::write(&path, &content).unwrap();
        age(&path, secs);
        let got = ApLock::acquire(&root, Duration::ZERO);
        assert_eq!(
            got.is_ok(),
            stale,
            "aplaunch on {content:?}, {secs} s: {got:?}"
        );
        if !stale {
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                content,
                "left alone"
            );
        }
    }
}

/// Run by the signal test in a child process: takes the lock and waits to be signalled.
#[test]
fn child_holding_the_lock() {
    let Some(path) = std::env::var_os("APLAUNCH_LOCK_CHILD") else {
        return;
    };
    let _held = ApLock::acquire_path(PathBuf::from(path), Duration::ZERO).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    panic!("not signalled");
}

#[test]
fn a_signal_releases_the_lock_and_the_real_tool_does_not_stall() {
    let Some(tool) = util_lockfile("a_signal_releases_the_lock_and_the_real_tool_does_not_stall")
    else {
        return;
    };
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let (_tree, _root, path) = tree();
        let exe = std::env::current_exe().unwrap();
        let mut child = testkit::cli::command_for(&exe)
            .args([
                "child_holding_the_lock",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("APLAUNCH_LOCK_CHILD", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        while std::fs::read_to_string(&path).ok() != Some(format!("{pid}\n")) {
            assert!(child.try_wait().unwrap().is_none(), "the child ended early");
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: signalling our own child
        unsafe { libc::kill(pid, signal) };
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(signal), "{status:?}");
        assert!(
            !Path::new(&path).exists(),
            "signal {signal} left the lock behind"
        );
        for action in [&["--lock", "0"][..], &["--release"]] {
            let out = run(&tool, &[&["-f", path.as_str()][..], action].concat());
            assert!(out.status.success(), "{}", text(&out));
        }
    }
}
