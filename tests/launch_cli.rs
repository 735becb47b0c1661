//! The launch command's contract: dry runs, config files, and refusals of bad input, each
//! naming the flag or key, with the exit codes of the contract.

#[path = "support/launch.rs"]
mod support;

use serde_json::Value;
use std::path::Path;
use support::*;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, tree: &Path, args: &[&std::ffi::OsStr]) -> Run {
    let out = aplaunch(&dir.join("cache"))
        .arg("--host-root")
        .arg(tree)
        .args(args)
        .env("FAKE_QEMU_VERSION", "9.1.0")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new(&$a)),*] };
}

fn fake() -> String {
    testkit::qemu::fake_qemu().display().to_string()
}

#[test]
fn dry_run_prints_checks_and_the_command_without_the_launch_word() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let img = se_image(dir.path()).display().to_string();
    let r = run(
        dir.path(),
        tree.path(),
        args![
            "--mdev",
            UUID,
            "--pv-image",
            img,
            "--qemu",
            fake(),
            "--dry-run"
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("pass  qemu-pv"), "{}", r.stdout);
    assert!(r.stdout.contains("pass  uv-limits"), "{}", r.stdout);
    let last = r.stdout.lines().last().unwrap();
    assert!(last.starts_with(&fake()), "{last}");
    assert!(last.contains(&format!(
        "-device vfio-ap,id=hostdev0,sysfsdev=/sys/bus/mdev/devices/{UUID}"
    )));
    assert!(last.contains("-object s390-pv-guest,id=pv0"));
    // A bare --console is the SCLP console; --console none drops it.
    let r = run(
        dir.path(),
        tree.path(),
        args![
            "--pv-image",
            img,
            "--qemu",
            fake(),
            "--console",
            "--dry-run",
            "--json"
        ],
    );
    let argv: Vec<String> = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        argv.contains(&"sclpconsole,chardev=console0,id=console".to_string()),
        "{argv:?}"
    );
    let r = run(
        dir.path(),
        tree.path(),
        args![
            "--pv-image",
            img,
            "--qemu",
            fake(),
            "--console",
            "none",
            "--dry-run",
            "--json"
        ],
    );
    let argv: Vec<String> = serde_json::from_str(&r.stdout).unwrap();
    assert!(!argv.iter().any(|a| a.contains("console")), "{argv:?}");
}

#[test]
fn dry_run_json_is_one_array_and_values_are_escaped_not_shell_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let odd = dir.path().join("dir with space");
    std::fs::create_dir(&odd).unwrap();
    let img = odd.join("se,1.img");
    std::fs::copy(se_image(dir.path()), &img).unwrap();
    let disk = format!("{}/d,,isk 1.img,format=qcow2", odd.display());
    let r = run(
        dir.path(),
        tree.path(),
        args![
            "--json",
            "--pv-image",
            img.as_os_str(),
            "--qemu",
            fake(),
            "--disk",
            disk,
            "--qmp",
            odd.join("q,s.sock").as_os_str(),
            "--dry-run",
            "--",
            "-msg",
            "timestamp=on"
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let argv: Vec<String> = serde_json::from_str(&r.stdout).expect("exactly one JSON array");
    let after = |flag: &str| argv[argv.iter().position(|a| a == flag).unwrap() + 1].clone();
    assert_eq!(
        after("-kernel"),
        img.display().to_string(),
        "-kernel takes the path as is"
    );
    assert_eq!(
        argv[argv.iter().position(|a| a == "-drive").unwrap() + 1],
        format!(
            "file={}/d,,isk 1.img,if=none,id=drive0,format=qcow2",
            odd.display()
        )
    );
    assert!(argv.contains(&format!(
        "socket,id=qmp0,path={}/q,,s.sock,server=on,wait=off",
        odd.display()
    )));
    assert_eq!(argv[argv.len() - 2..], ["-msg", "timestamp=on"]);
}

#[test]
fn an_unknown_mdev_fails_its_check_and_stops_the_launch() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let img = se_image(dir.path()).display().to_string();
    let other = "11111111-2222-4333-8444-555555555555";
    let r = run(
        dir.path(),
        tree.path(),
        args!["--mdev", other, "--pv-image", img, "--qemu", fake()],
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains(other), "{}", r.stdout);
    assert!(r.stderr.contains("not launching"), "{}", r.stderr);
    // JSON: one document with the checks.
    let r = run(
        dir.path(),
        tree.path(),
        args![
            "--json",
            "--mdev",
            other,
            "--pv-image",
            img,
            "--qemu",
            fake()
        ],
    );
    assert_eq!(r.code, 1);
    let doc: Value = serde_json::from_str(&r.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["kind"], "checks-failed");
    assert!(doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["status"] == "fail" && c["message"].as_str().unwrap().contains(other)));
}

#[test]
fn a_missing_image_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let img = dir.path().join("nope.img").display().to_string();
    let r = run(
        dir.path(),
        tree.path(),
        args!["--mdev", UUID, "--pv-image", img, "--qemu", fake()],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&img), "{}", r.stdout);
}

#[test]
fn smp_above_the_ultravisor_limit_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    tree.write("sys/firmware/uv/query/max_cpus", "4\n");
    let img = se_image(dir.path()).display().to_string();
    let r = run(
        dir.path(),
        tree.path(),
        args![
            "--pv-image",
            img,
            "--smp",
            "8",
            "--qemu",
            fake(),
            "--dry-run"
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("fail  uv-limits"), "{}", r.stdout);
    assert!(r.stdout.contains("--smp 8 exceeds"), "{}", r.stdout);
    let r = run(
        dir.path(),
        tree.path(),
        args![
            "--pv-image",
            img,
            "--smp",
            "8",
            "--qemu",
            fake(),
            "--dry-run",
            "--force"
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("warn  uv-limits"), "{}", r.stdout);
    assert!(r.stdout.contains("(ignored: --force)"));
    assert!(r.stdout.lines().last().unwrap().contains(" -smp 8 "));
}

#[test]
fn bad_input_is_a_usage_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let img = se_image(dir.path()).display().to_string();
    let newline = format!("{}\nx", img);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--mdev".into(),
                "not-a-uuid".into(),
                "--pv-image".into(),
                img.clone(),
            ],
            "--mdev",
        ),
        (
            vec![
                "--pv-image".into(),
                img.clone(),
                "--initrd".into(),
                "/boot/initrd".into(),
            ],
            "--initrd",
        ),
        (
            vec![
                "--pv-image".into(),
                img.clone(),
                "--append".into(),
                "quiet".into(),
            ],
            "--append",
        ),
        (
            vec!["--pv-image".into(), img.clone(), "--no-pv".into()],
            "--pv-image",
        ),
        (
            vec![
                "--pv-image".into(),
                img.clone(),
                "--accel".into(),
                "tcg".into(),
            ],
            "--accel",
        ),
        (vec!["--pv-image".into(), newline], "--pv-image"),
        (
            vec!["--pv-image".into(), img.clone(), "--smp".into(), "0".into()],
            "--smp",
        ),
        (
            vec![
                "--pv-image".into(),
                img.clone(),
                "--disk".into(),
                "/a,size=3".into(),
            ],
            "--disk",
        ),
        (
            vec![
                "--pv-image".into(),
                img.clone(),
                "--net".into(),
                "tap".into(),
            ],
            "--net",
        ),
        (
            vec!["--pv-image".into(), img.clone(), "--hugepages".into()],
            "--hugepages",
        ),
        (
            vec![
                "--pv-image".into(),
                img.clone(),
                "--".into(),
                "-device".into(),
                "virtio-balloon-ccw".into(),
            ],
            "balloon",
        ),
        (vec!["--mdev".into(), UUID.into()], "--pv-image"),
    ];
    for (a, needle) in cases {
        let mut full: Vec<std::ffi::OsString> = a.iter().map(Into::into).collect();
        full.push("--dry-run".into());
        let refs: Vec<&std::ffi::OsStr> = full.iter().map(|s| s.as_os_str()).collect();
        let r = run(dir.path(), tree.path(), &refs);
        assert_eq!(r.code, 2, "{a:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(needle), "{a:?}: {}", r.stderr);
        assert!(r.stderr.contains("hint:"), "{a:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "nothing ran: {}", r.stdout);
    }
    // --json: the usage error is the one JSON document.
    let r = run(
        dir.path(),
        tree.path(),
        args!["--json", "--mdev", "zz", "--pv-image", img, "--dry-run"],
    );
    assert_eq!(r.code, 2);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "invalid-spec");
    assert!(doc["error"]["message"].as_str().unwrap().contains("--mdev"));
}

#[test]
fn config_file_with_flag_overrides_and_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let img = se_image(dir.path());
    let cfg = dir.path().join("vm.toml");
    std::fs::write(
        &cfg,
        format!(
            "name = \"cfgvm\"\nmemory = \"1G\"\nsmp = 2\npv-image = {:?}\nmdev = \"{UUID}\"\nqemu = {:?}\nrng = true\n\n[[disk]]\npath = \"data.img\"\nreadonly = true\n",
            img.display().to_string(),
            fake()
        ),
    )
    .unwrap();
    let r = run(
        dir.path(),
        tree.path(),
        args![
            "--config",
            cfg.as_os_str(),
            "--smp",
            "3",
            "--json",
            "--dry-run",
            "--force"
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let argv: Vec<String> = serde_json::from_str(&r.stdout).unwrap();
    let after = |flag: &str| argv[argv.iter().position(|a| a == flag).unwrap() + 1].clone();
    assert_eq!(after("-smp"), "3", "the flag overrides the config");
    assert_eq!(after("-m"), "1024");
    assert_eq!(after("-name"), "guest=cfgvm");
    assert_eq!(
        after("-drive"),
        format!(
            "file={}/data.img,if=none,id=drive0,format=raw,readonly=on",
            dir.path().display()
        ),
        "relative paths are relative to the config file"
    );
    assert!(argv.iter().any(|a| a.starts_with("virtio-rng-ccw,")));

    std::fs::write(&cfg, "name = \"x\"\nsmpp = 2\n").unwrap();
    let r = run(
        dir.path(),
        tree.path(),
        args!["--config", cfg.as_os_str(), "--dry-run"],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("key `smpp`"), "{}", r.stderr);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
    let r = run(
        dir.path(),
        tree.path(),
        args![
            "--config",
            dir.path().join("none.toml").as_os_str(),
            "--dry-run"
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--config"), "{}", r.stderr);
}

#[test]
fn check_with_qemu_adds_the_qemu_checks() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let r = run(
        dir.path(),
        tree.path(),
        args!["check", "--mdev", UUID, "--qemu", fake(), "--json"],
    );
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let ids: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in [
        "qemu-binary",
        "qemu-pv",
        "qemu-vfio-ap",
        "cpu-unpack",
        "cpu-ap",
        "cpu-appv",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let skip = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "cpu-unpack")
        .unwrap();
    assert_eq!(
        skip["status"], "skip",
        "a host tree cannot give QEMU KVM: {skip}"
    );
    let r = run(
        dir.path(),
        tree.path(),
        args!["check", "--qemu", dir.path().join("no-qemu").as_os_str()],
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("fail  qemu-binary"), "{}", r.stdout);
}

/// The one JSON document of a run.
fn doc(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}{}", r.stdout, r.stderr))
}

fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {doc}"))
}

#[test]
fn files_qemu_cannot_open_are_exit_2_naming_the_file_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let tree = testkit::hosttree::HostTree::empty();
    let kernel = dir.path().join("vmlinuz");
    std::fs::write(&kernel, b"kernel").unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, b"disk").unwrap();
    let missing = dir.path().join("gone.img");
    let fake_qemu = fake();
    let sock = dir.path().join("q.sock");
    let plain = |extra: &[&std::ffi::OsStr]| {
        let mut a: Vec<&std::ffi::OsStr> =
            args!["--json", "--no-pv", "--accel", "tcg", "--qemu", fake_qemu, "--qmp", sock]
                .to_vec();
        a.extend_from_slice(extra);
        run(dir.path(), tree.path(), &a)
    };
    // a missing kernel, initrd or disk: exit 2, naming which file and its path
    for (extra, what) in [
        (
            args!["--kernel", missing.as_os_str()].to_vec(),
            "the kernel",
        ),
        (
            args![
                "--kernel",
                kernel.as_os_str(),
                "--initrd",
                missing.as_os_str()
            ]
            .to_vec(),
            "the initrd",
        ),
        (
            args![
                "--kernel",
                kernel.as_os_str(),
                "--disk",
                disk.as_os_str(),
                "--disk",
                missing.as_os_str()
            ]
            .to_vec(),
            "disk #2",
        ),
    ] {
        let r = plain(&extra);
        assert_eq!(r.code, 2, "{what}: {}{}", r.stdout, r.stderr);
        let d = doc(&r);
        assert_eq!(d["error"]["kind"], "guest-file", "{d}");
        let message = d["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(what) && message.contains(&missing.display().to_string()),
            "{message}"
        );
        assert!(!dir.path().join("q.sock").exists(), "QEMU was started");
    }
    // a disk QEMU opens read-write must be writable; with readonly=on reading is enough
    if !nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&disk, std::fs::Permissions::from_mode(0o444)).unwrap();
        let r = plain(args![
            "--kernel",
            kernel.as_os_str(),
            "--disk",
            disk.as_os_str()
        ]);
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        assert!(doc(&r)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("for reading and writing"));
    }
    // the dry run opens nothing: it prints the command line for paths of any host
    let r = plain(args!["--kernel", missing.as_os_str(), "--dry-run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // every file there: the launch goes on to the exec policy of a tree root (exit 2, not
    // about the files)
    let r = plain(args![
        "--kernel",
        kernel.as_os_str(),
        "--disk",
        disk.as_os_str()
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_ne!(doc(&r)["error"]["kind"], "guest-file", "{}", r.stdout);
}

#[test]
fn config_qemu_is_a_command_on_path_like_the_flag_and_hints_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let tree = testkit::hosttree::HostTree::empty();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(fake(), bin.join("qemu-for-test")).unwrap();
    let conf_dir = dir.path().join("conf");
    std::fs::create_dir(&conf_dir).unwrap();
    let config = conf_dir.join("vm.toml");
    std::fs::write(
        &config,
        "pv = false\naccel = \"tcg\"\nqemu = \"qemu-for-test\"\nkernel = \"vmlinuz\"\n",
    )
    .unwrap();
    std::fs::write(conf_dir.join("vmlinuz"), b"kernel").unwrap();
    let with_path = |config: &Path| {
        let out = aplaunch(&dir.path().join("cache"))
            .arg("--host-root")
            .arg(tree.path())
            .args(["--json", "--dry-run", "--config"])
            .arg(config)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    // found on PATH, not beside the config file
    let r = with_path(&config);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let argv: Vec<String> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(argv[0], bin.join("qemu-for-test").display().to_string());
    // a name that is nowhere: the hint names the key, not the flag
    std::fs::write(
        &config,
        "pv = false\naccel = \"tcg\"\nqemu = \"no-such-qemu\"\nkernel = \"vmlinuz\"\n",
    )
    .unwrap();
    let r = with_path(&config);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let d = doc(&r);
    let binary = check(&d, "qemu-binary");
    assert_eq!(binary["status"], "fail", "{d}");
    let hint = binary["hint"].as_str().unwrap();
    assert!(
        hint.contains(&format!("key `qemu` in {}", config.display())) && !hint.contains("--qemu"),
        "{hint}"
    );
    // a path with a directory stays relative to the config file
    std::fs::write(
        &config,
        "pv = false\naccel = \"tcg\"\nqemu = \"./qemu-here\"\nkernel = \"vmlinuz\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(fake(), conf_dir.join("qemu-here")).unwrap();
    let r = with_path(&config);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let argv: Vec<String> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(argv[0], conf_dir.join("./qemu-here").display().to_string());
}

#[test]
fn a_secure_guest_has_qemus_own_vcpu_limit_for_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let img = se_image(dir.path()).display().to_string();
    let launch = |version: &str, smp: &str| {
        let out = aplaunch(&dir.path().join("cache"))
            .arg("--host-root")
            .arg(tree.path())
            .args([
                "--json",
                "--dry-run",
                "--no-cache",
                "--pv-image",
                &img,
                "--qemu",
                &fake(),
            ])
            .args(["--smp", smp])
            .env("FAKE_QEMU_VERSION", version)
            .output()
            .unwrap();
        let run = Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        (
            run.code,
            serde_json::from_str::<Value>(&run.stdout).ok(),
            run,
        )
    };
    // the example host's ultravisor allows 257 vCPUs: 248 passes uv-limits
    let (code, d, r) = launch("10.0.0", "248");
    assert_eq!(code, 1, "{}{}", r.stdout, r.stderr);
    let d = d.unwrap();
    let c = check(&d, "qemu-pv-cpus");
    assert_eq!(c["status"], "fail", "{d}");
    assert!(
        c["message"].as_str().unwrap().contains("at most 247"),
        "{c}"
    );
    assert_eq!(c["hint"], "use --smp 247 or fewer");
    assert_eq!(check(&d, "uv-limits")["status"], "pass", "{d}");
    // 247 passes on 10.0, and QEMU 7.2 had no limit of its own below 248
    let (code, _, r) = launch("10.0.0", "247");
    assert_eq!(code, 0, "{}{}", r.stdout, r.stderr);
    let (code, _, r) = launch("7.2.0", "248");
    assert_eq!(code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn hugepages_need_hugetlbfs_mounted_free_pages_and_kvms_hpage() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = dir.path().join("vmlinuz");
    std::fs::write(&kernel, b"kernel").unwrap();
    let hugepages = |tree: &testkit::hosttree::HostTree, accel: &str| {
        let r = run(
            dir.path(),
            tree.path(),
            args![
                "--json",
                "--dry-run",
                "--no-pv",
                "--accel",
                accel,
                "--memory",
                "1G",
                "--hugepages",
                "--kernel",
                kernel.as_os_str(),
                "--qemu",
                fake()
            ],
        );
        let d: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        let c = if d.is_array() {
            Value::Null
        } else {
            check(&d, "hugepages").clone()
        };
        (r.code, c)
    };
    let tree = testkit::hosttree::HostTree::empty();
    tree.write("proc/mounts", "sysfs /sys sysfs rw 0 0\n");
    let (code, c) = hugepages(&tree, "kvm");
    assert_eq!(code, 1);
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("no hugetlbfs is mounted at /dev/hugepages"),
        "{c}"
    );
    assert!(
        c["hint"].as_str().unwrap().contains("mount -t hugetlbfs"),
        "{c}"
    );
    // mounted with 2G pages: KVM cannot use them
    tree.write(
        "proc/mounts",
        "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2048M 0 0\n",
    );
    tree.write(
        "proc/meminfo",
        "HugePages_Total: 512\nHugePages_Free: 512\nHugepagesize: 2097152 kB\n",
    );
    // TCG takes any hugetlbfs
    assert_eq!(hugepages(&tree, "tcg").0, 0);
    let (code, c) = hugepages(&tree, "kvm");
    assert_eq!(code, 1);
    assert!(
        c["message"].as_str().unwrap().contains("1M pages only"),
        "{c}"
    );
    // 1M pages, but too few free for 1G
    tree.write(
        "proc/mounts",
        "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=1M 0 0\n",
    );
    tree.write(
        "proc/meminfo",
        "MemTotal: 8388608 kB\nHugePages_Total: 512\nHugePages_Free: 512\nHugepagesize: 1024 kB\n",
    );
    let (code, c) = hugepages(&tree, "kvm");
    assert_eq!(code, 1);
    assert!(c["message"].as_str().unwrap().contains("512 MiB"), "{c}");
    assert!(
        c["hint"].as_str().unwrap().contains("at least 1024 pages"),
        "{c}"
    );
    // enough pages; KVM without hpage
    tree.write(
        "proc/meminfo",
        "HugePages_Total: 2048\nHugePages_Free: 2048\nHugepagesize: 1024 kB\n",
    );
    tree.write("sys/module/kvm/parameters/hpage", "0\n");
    let (code, c) = hugepages(&tree, "kvm");
    assert_eq!(code, 1);
    assert!(c["hint"].as_str().unwrap().contains("hpage=1"), "{c}");
    // under TCG KVM's parameter does not matter
    let (code, _) = hugepages(&tree, "tcg");
    assert_eq!(code, 0);
    tree.write("sys/module/kvm/parameters/hpage", "1\n");
    let (code, _) = hugepages(&tree, "kvm");
    assert_eq!(code, 0);
}
