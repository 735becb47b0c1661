//! The library's launch API and the CLI plan the same launch: for the same inputs,
//! `Launch::…plan()` gives the checks, argv and passed descriptors that `aplaunch launch
//! --dry-run` prints (as JSON and as text), on the example host.

#[path = "support/launch.rs"]
mod support;

use launcher::devno::Devno;
use launcher::launch::{fd_host_path, Planned};
use launcher::mac::Mac;
use launcher::spec::{
    self, Accel, ConsoleBackend, ConsoleKind, Disk, InputOrigin, Net, SpecError, SpecErrorKind,
    SpecInput, VfioBackend, MAX_SMP,
};
use launcher::{builder, Launch, PlanError};
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use support::*;

/// What `aplaunch launch --dry-run` printed.
struct DryRun {
    code: i32,
    stdout: String,
}

fn dry_run(tree: &Path, cache: &Path, args: &[OsString], json: bool) -> DryRun {
    let mut cmd = aplaunch(cache);
    cmd.arg("--host-root").arg(tree);
    if json {
        cmd.arg("--json");
    }
    cmd.arg("launch")
        .arg("--dry-run")
        .arg("--no-cache")
        .args(args);
    let out = cmd.output().unwrap();
    DryRun {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
    }
}

/// Plans `launch` through the library and runs the CLI with `args` on the same host, and
/// asserts that both planned the same thing.
fn assert_same_plan(case: &str, tree: &Path, launch: Launch, args: &[OsString]) -> Planned {
    let cache = tempfile::tempdir().unwrap();
    let root = host::HostRoot::open(tree).unwrap();
    let planned = launch
        .no_cache(true)
        .plan(&root)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let argv: Vec<String> = planned
        .plan
        .argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let expected_code = if planned.refused { 1 } else { 0 };

    // --json: the argv, or with failed checks the checks and the argv.
    let json = dry_run(tree, cache.path(), args, true);
    assert_eq!(json.code, expected_code, "{case}: {}", json.stdout);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    if planned.refused {
        assert_eq!(doc["argv"], serde_json::json!(argv), "{case}");
        assert_eq!(
            doc["checks"],
            serde_json::to_value(&planned.report.checks).unwrap(),
            "{case}"
        );
    } else {
        assert_eq!(doc, serde_json::json!(argv), "{case}");
    }

    // Text: the report, the descriptors passed, and the shell line.
    let text = dry_run(tree, cache.path(), args, false);
    assert_eq!(text.code, expected_code, "{case}: {}", text.stdout);
    let mut expected = format!("{}\n", planned.report.render(false));
    if !planned.plan.fds.is_empty() {
        let fds: Vec<String> = planned
            .plan
            .fds
            .iter()
            .map(|f| format!("{} = /{}", f.target, fd_host_path(&f.source)))
            .collect();
        expected.push_str(&format!("# descriptors passed: {}\n", fds.join(", ")));
    }
    if planned.refused {
        expected.push_str("# not run: the checks above failed\n");
    }
    expected.push_str(&builder::shell_line(&planned.plan.argv));
    expected.push('\n');
    assert_eq!(text.stdout, expected, "{case}");
    planned
}

fn os(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    args.iter().map(|a| a.as_ref().to_os_string()).collect()
}

fn uuid() -> uuid::Uuid {
    uuid::Uuid::parse_str(UUID).unwrap()
}

#[test]
fn a_secure_guest_with_crypto_disks_and_nics_plans_as_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    // /dev/iommu beside the mdev's vfio cdev: QEMU 9.1 gets both as passed descriptors
    tree.write("dev/iommu", "stands for the iommufd node\n");
    let image = se_image(dir.path());
    let fake = testkit::qemu::fake_qemu();
    let root_disk = dir.path().join("root,1.qcow2");
    let data_disk = dir.path().join("data.img");
    let console = dir.path().join("console.sock");
    let qmp = dir.path().join("qmp.sock");
    let launch = Launch::secure(&image)
        .mdev(uuid())
        .qemu(&fake)
        .name("tenant-42")
        .memory_mib(4096)
        .smp(2)
        .disk(Disk::new(&root_disk).format("qcow2").cache("none"))
        .disk(
            Disk::new(&data_disk)
                .readonly()
                .devno(Devno::parse("fe.0.0010").unwrap()),
        )
        .net(Net::tap("tap42"))
        .net(
            Net::user()
                .mac(Mac::parse("52:54:00:12:34:56").unwrap())
                .devno(Devno::parse("fe.0.1010").unwrap()),
        )
        .console(
            ConsoleKind::Virtio,
            ConsoleBackend::Socket {
                path: console.clone(),
            },
        )
        .rng(true)
        .qmp(&qmp)
        .extra_args(["-msg", "timestamp=on"]);
    let root_flag = format!(
        "{},,1.qcow2,format=qcow2,cache=none",
        dir.path().join("root").display()
    );
    let console_flag = format!("virtio,socket:{}", console.display());
    let args = os(&[
        &"--mdev",
        &UUID,
        &"--pv-image",
        &image,
        &"--qemu",
        &fake,
        &"--name",
        &"tenant-42",
        &"--memory",
        &"4G",
        &"--smp",
        &"2",
        &"--disk",
        &root_flag,
        &"--disk",
        &format!("{},readonly=on,devno=fe.0.0010", data_disk.display()),
        &"--net",
        &"tap,ifname=tap42",
        &"--net",
        &"user,mac=52:54:00:12:34:56,devno=fe.0.1010",
        &"--console",
        &console_flag,
        &"--rng",
        &"--qmp",
        &qmp,
        &"--",
        &"-msg",
        &"timestamp=on",
    ]);
    let planned = assert_same_plan("secure", tree.path(), launch, &args);
    // The case is what it claims: a secure guest with the mdev passed as descriptors.
    assert!(planned.spec.is_pv());
    assert_eq!(planned.plan.fds.len(), 2, "{:?}", planned.plan.fds);
    assert_eq!(planned.spec.disks.len(), 2);
    assert_eq!(planned.spec.nets.len(), 2);

    // The same guest reaching the mdev through its VFIO group: no descriptors.
    let group = Launch::secure(&image)
        .mdev(uuid())
        .qemu(&fake)
        .vfio_backend(VfioBackend::Group)
        .qmp(&qmp);
    let args = os(&[
        &"--mdev",
        &UUID,
        &"--pv-image",
        &image,
        &"--qemu",
        &fake,
        &"--vfio-backend",
        &"group",
        &"--qmp",
        &qmp,
    ]);
    let planned = assert_same_plan("secure, group", tree.path(), group, &args);
    assert!(planned.plan.fds.is_empty());
}

#[test]
fn a_plain_tcg_guest_plans_as_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let fake = testkit::qemu::fake_qemu();
    let kernel = dir.path().join("vmlinuz");
    let initrd = dir.path().join("initrd.img");
    let disk = dir.path().join("disk.img");
    let qmp = dir.path().join("qmp.sock");
    let cmdline = "console=ttysclp0 root=/dev/vda";
    let launch = |qemu: &Path| {
        Launch::plain(&kernel)
            .initrd(&initrd)
            .append(cmdline)
            .accel(Accel::Tcg)
            .qemu(qemu)
            .disk(Disk::new(&disk))
            .net(Net::user())
            .iommu_platform(true)
            .sandbox(false)
            .qmp(&qmp)
    };
    let args = |qemu: &Path| {
        os(&[
            &"--no-pv",
            &"--kernel",
            &kernel,
            &"--initrd",
            &initrd,
            &"--append",
            &cmdline,
            &"--accel",
            &"tcg",
            &"--qemu",
            &qemu,
            &"--disk",
            &disk,
            &"--net",
            &"user",
            &"--iommu-platform",
            &"--no-sandbox",
            &"--qmp",
            &qmp,
        ])
    };
    let planned = assert_same_plan("plain, fake QEMU", tree.path(), launch(&fake), &args(&fake));
    assert!(!planned.spec.is_pv());
    assert_eq!(planned.spec.accel, Accel::Tcg);
    // With the real QEMU where it is installed: the same probe answers on both sides.
    if let Some(real) = testkit::qemu::real_qemu("a_plain_tcg_guest_plans_as_on_the_command_line") {
        assert_same_plan("plain, real QEMU", tree.path(), launch(&real), &args(&real));
    }
}

#[test]
fn a_secure_guest_booting_from_its_disk_plans_as_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let fake = testkit::qemu::fake_qemu();
    let boot = dir.path().join("se-boot.qcow2");
    let scratch = dir.path().join("scratch.img");
    let launch = Launch::secure_from_disk()
        .mdev(uuid())
        .qemu(&fake)
        .disk(Disk::new(&scratch))
        .disk(Disk::new(&boot).format("qcow2").boot());
    let args = os(&[
        &"--pv",
        &"--mdev",
        &UUID,
        &"--qemu",
        &fake,
        &"--disk",
        &scratch,
        &"--disk",
        &format!("{},format=qcow2,boot=on", boot.display()),
    ]);
    let planned = assert_same_plan("pv from disk", tree.path(), launch, &args);
    assert!(planned.spec.is_pv());
    assert_eq!(planned.spec.boot_disk, Some(1));
    assert_eq!(planned.spec.pv_kernel(), None);
}

#[test]
fn a_config_file_under_builder_settings_plans_as_under_flags() {
    let tree = z16();
    let fake = testkit::qemu::fake_qemu();
    let config: PathBuf = testkit::hosttree::workspace_root().join("examples/vm.toml");
    let launch = Launch::from_input(SpecInput::default())
        .config_file(&config)
        .memory_mib(3072)
        .qemu(&fake);
    let args = os(&[&"--config", &config, &"--memory", &"3G", &"--qemu", &fake]);
    let planned = assert_same_plan("config", tree.path(), launch, &args);
    assert_eq!(planned.spec.name, "secure1");
    assert_eq!(planned.spec.memory_mib, 3072);
}

#[test]
fn a_config_file_that_cannot_be_read_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let e = Launch::from_input(SpecInput::default())
        .config_file(&missing)
        .spec()
        .unwrap_err();
    assert!(matches!(e, launcher::PlanError::Config(_)), "{e:?}");
    assert_eq!(e.spec_error().unwrap().source_name, "--config");
    assert_eq!(e.kind(), Some(SpecErrorKind::ConfigUnreadable));
    assert!(e.to_string().contains("missing.toml"), "{e}");
}

#[test]
fn disks_and_nics_built_in_code_are_checked_like_flags_and_named_by_their_setter() {
    let e = Launch::plain_from_disk()
        .disk(Disk::new("/var/lib/vm/disk.img"))
        .net(Net::tap("tap0;reboot"))
        .spec()
        .unwrap_err();
    let e = e.spec_error().unwrap();
    assert_eq!(e.source_name, "Launch::net #1");
    assert_eq!(e.kind, SpecErrorKind::BadIfname);
    assert!(e.message.contains("tap0;reboot"), "{e}");
    assert!(e.hint.is_some());
    let e = Launch::plain_from_disk()
        .disk(Disk::new("/var/lib/vm/disk.vmdk").format("vmdk"))
        .spec()
        .unwrap_err();
    assert_eq!(e.spec_error().unwrap().source_name, "Launch::disk #1");
    assert_eq!(e.kind(), Some(SpecErrorKind::ReadOnlyFormat));
}

/// The spec error of a `Launch` that must not validate.
fn spec_error(launch: Launch) -> SpecError {
    match launch.spec() {
        Ok(spec) => panic!("validated: {spec:?}"),
        Err(PlanError::Spec(e)) => e,
        Err(other) => panic!("not a spec error: {other:?}"),
    }
}

#[test]
fn errors_of_a_launch_built_in_code_name_the_setter_and_its_hint_speaks_of_setters() {
    let img = "/var/lib/se/guest.img";
    let kernel = "/boot/vmlinuz";
    let x = Devno::parse("fe.0.0042").unwrap();
    let cases: Vec<(&str, Launch, SpecErrorKind, &str)> = vec![
        (
            "smp",
            Launch::secure(img).smp(MAX_SMP + 1),
            SpecErrorKind::SmpOutOfRange { max: MAX_SMP },
            "Launch::smp",
        ),
        (
            "memory text",
            Launch::secure(img).memory("4X"),
            SpecErrorKind::MemoryOutOfRange {
                min_mib: spec::MIN_MEMORY_MIB,
                max_mib: spec::MAX_MEMORY_MIB,
            },
            "Launch::memory",
        ),
        (
            "memory MiB",
            Launch::secure(img).memory_mib(8),
            SpecErrorKind::MemoryOutOfRange {
                min_mib: spec::MIN_MEMORY_MIB,
                max_mib: spec::MAX_MEMORY_MIB,
            },
            "Launch::memory_mib",
        ),
        (
            "tcg secure",
            Launch::secure(img).accel(Accel::Tcg),
            SpecErrorKind::PvNeedsKvm,
            "Launch::accel",
        ),
        (
            "hugepages secure",
            Launch::secure(img).hugepages(true),
            SpecErrorKind::PvHugepages,
            "Launch::hugepages",
        ),
        (
            "iommu off secure",
            Launch::secure(img).iommu_platform(false),
            SpecErrorKind::PvWithoutIommuPlatform,
            "Launch::iommu_platform",
        ),
        (
            "sealed append",
            Launch::secure(img).append("quiet"),
            SpecErrorKind::SealedInImage,
            "Launch::append",
        ),
        (
            "append without kernel",
            Launch::plain_from_disk()
                .disk(Disk::new("/d.img"))
                .append("quiet"),
            SpecErrorKind::AppendWithoutKernel,
            "Launch::append",
        ),
        (
            "initrd without kernel",
            Launch::plain_from_disk()
                .disk(Disk::new("/d.img"))
                .initrd("/i"),
            SpecErrorKind::InitrdWithoutKernel,
            "Launch::initrd",
        ),
        (
            "no image, no disk",
            Launch::secure_from_disk(),
            SpecErrorKind::MissingImage,
            "Launch::secure_from_disk",
        ),
        (
            "empty image path",
            Launch::secure(""),
            SpecErrorKind::EmptyPath,
            "Launch::secure",
        ),
        (
            "newline in initrd path",
            Launch::plain(kernel).initrd("/boot/initrd\nx"),
            SpecErrorKind::ControlCharInPath,
            "Launch::initrd",
        ),
        (
            "backend without mdev",
            Launch::plain(kernel).vfio_backend(VfioBackend::Group),
            SpecErrorKind::VfioBackendWithoutMdev,
            "Launch::vfio_backend",
        ),
        (
            "mdev under tcg",
            Launch::plain(kernel).accel(Accel::Tcg).mdev(uuid()),
            SpecErrorKind::MdevNeedsKvm,
            "Launch::mdev",
        ),
        (
            "name",
            Launch::secure(img).name("tenant 42"),
            SpecErrorKind::BadName,
            "Launch::name",
        ),
        (
            "user",
            Launch::secure(img).user("-qemu"),
            SpecErrorKind::BadUser,
            "Launch::user",
        ),
        (
            "two boot disks",
            Launch::plain_from_disk()
                .disk(Disk::new("/a.img").boot())
                .disk(Disk::new("/b.img").boot()),
            SpecErrorKind::TwoBootDisks,
            "Launch::disk",
        ),
        (
            "boot disk and kernel",
            Launch::plain(kernel).disk(Disk::new("/a.img").boot()),
            SpecErrorKind::BootDiskWithKernel,
            "Launch::disk",
        ),
        (
            "devno twice",
            Launch::plain_from_disk()
                .disk(Disk::new("/a.img").devno(x))
                .disk(Disk::new("/b.img").devno(x)),
            SpecErrorKind::DevnoCollision,
            "Launch::disk",
        ),
        (
            "devno in extra args",
            Launch::plain_from_disk()
                .disk(Disk::new("/a.img").devno(x))
                .extra_args(["-device", "virtio-rng-ccw,devno=fe.0.0042"]),
            SpecErrorKind::DevnoInExtraArgs,
            "Launch::extra_args",
        ),
        (
            "balloon",
            Launch::secure(img).extra_args(["-device", "virtio-balloon-ccw"]),
            SpecErrorKind::BalloonInExtraArgs,
            "Launch::extra_args",
        ),
        (
            "console on the QMP socket",
            Launch::secure(img).qmp("/run/vm.sock").console(
                ConsoleKind::Virtio,
                ConsoleBackend::Socket {
                    path: "/run/vm.sock".into(),
                },
            ),
            SpecErrorKind::ConsoleIsQmpSocket,
            "Launch::console",
        ),
        (
            "disk format",
            Launch::plain_from_disk().disk(Disk::new("/a.img").format("ext4")),
            SpecErrorKind::UnknownDiskFormat,
            "Launch::disk #1",
        ),
        (
            "disk cache",
            Launch::plain_from_disk()
                .disk(Disk::new("/a.img"))
                .disk(Disk::new("/b.img").cache("sometimes")),
            SpecErrorKind::UnknownCacheMode,
            "Launch::disk #2",
        ),
    ];
    for (case, launch, kind, source) in cases {
        let e = spec_error(launch);
        assert_eq!(e.kind, kind, "{case}: {e}");
        assert_eq!(e.origin, InputOrigin::Setter, "{case}: {e}");
        assert_eq!(e.source_name, source, "{case}: {e}");
        let hint = e
            .hint
            .as_deref()
            .unwrap_or_else(|| panic!("{case}: no hint"));
        // No flag and no flag option syntax (the extra arguments' own `devno=` is quoted
        // in a message).
        for flagish in ["--", "boot=on", "format=", "cache="] {
            assert!(!e.message.contains(flagish), "{case}: {}", e.message);
        }
        for flagish in ["--", "boot=on", "format=", "devno=fe", "cache="] {
            assert!(!hint.contains(flagish), "{case}: {hint}");
        }
    }
}

#[test]
fn the_setter_is_named_in_the_hint_where_the_rule_has_one() {
    let e = spec_error(Launch::secure("/se.img").smp(0));
    assert_eq!(e.to_string(), "Launch::smp: 0 vCPUs is outside 1..=248");
    assert_eq!(
        e.hint.as_deref(),
        Some("give Launch::smp between 1 and 248")
    );
    let e = spec_error(Launch::secure_from_disk());
    assert!(
        e.hint
            .as_deref()
            .unwrap()
            .contains("Launch::secure_from_disk with a Launch::disk"),
        "{e:?}"
    );
}

#[test]
fn inputs_handed_over_as_the_command_line_gives_them_are_named_as_flags_as_the_cli_prints() {
    let cache = tempfile::tempdir().unwrap();
    let cases: Vec<(SpecInput, Vec<&str>, SpecErrorKind)> = vec![
        (
            SpecInput {
                pv_image: Some("/se.img".into()),
                smp: Some(300),
                ..SpecInput::default()
            },
            vec!["--pv-image", "/se.img", "--smp", "300"],
            SpecErrorKind::SmpOutOfRange { max: MAX_SMP },
        ),
        (
            SpecInput {
                no_pv: Some(true),
                initrd: Some("/i".into()),
                disks: Some(vec![Disk::new("/d.img")]),
                ..SpecInput::default()
            },
            vec!["--no-pv", "--initrd", "/i", "--disk", "/d.img"],
            SpecErrorKind::InitrdWithoutKernel,
        ),
        (SpecInput::default(), vec![], SpecErrorKind::MissingImage),
    ];
    for (input, args, kind) in cases {
        let e = spec_error(Launch::from_input(input));
        assert_eq!(e.kind, kind, "{e}");
        assert_eq!(e.origin, InputOrigin::Flag, "{e}");
        assert!(e.source_name.starts_with("--"), "{e}");
        let out = aplaunch(cache.path())
            .args(["launch", "--dry-run"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(&e.to_string()), "{stderr}\n{e}");
        assert!(
            stderr.contains(e.hint.as_deref().unwrap()),
            "{stderr}\n{e:?}"
        );
    }
}

#[test]
fn a_config_key_is_named_as_the_key_under_a_launch_built_in_code() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vm.toml");
    std::fs::write(&config, "smp = 300\nmemory = \"4G\"\n").unwrap();
    let e = spec_error(Launch::secure("/se.img").config_file(&config));
    assert_eq!(e.kind, SpecErrorKind::SmpOutOfRange { max: MAX_SMP });
    assert_eq!(e.origin, InputOrigin::ConfigKey);
    assert_eq!(e.source_name, format!("key `smp` in {}", config.display()));
    // A setter overrides the key, and then the setter is at fault.
    let e = spec_error(Launch::secure("/se.img").config_file(&config).smp(0));
    assert_eq!(e.source_name, "Launch::smp");
    // The file's memory passes, set in code it is named by its setter.
    let spec = Launch::secure("/se.img")
        .config_file(&config)
        .smp(2)
        .spec()
        .unwrap();
    assert_eq!(spec.memory_mib, 4096);
    let e = Launch::secure("/se.img")
        .config_file(dir.path().join("missing.toml"))
        .spec()
        .unwrap_err();
    assert!(matches!(e, PlanError::Config(_)), "{e:?}");
    let e = e.spec_error().unwrap();
    assert_eq!(e.source_name, "Launch::config_file");
    assert_eq!(e.origin, InputOrigin::Setter);
    assert_eq!(e.kind, SpecErrorKind::ConfigUnreadable);
}

#[test]
fn memory_as_text_is_read_by_the_command_lines_size_parser() {
    for text in [
        "4G", "4096M", "4GiB", "512MB", "2048", "1T", "16", "15", "4X", "", "17T", "1048576K",
        "1000K", " 3G ",
    ] {
        let expected = spec::parse_memory(text)
            .filter(|m| (spec::MIN_MEMORY_MIB..=spec::MAX_MEMORY_MIB).contains(m));
        let in_code = Launch::secure("/se.img").memory(text).spec();
        assert_eq!(
            in_code.as_ref().ok().map(|s| s.memory_mib),
            expected,
            "{text:?}"
        );
        let as_input = Launch::from_input(SpecInput {
            pv_image: Some("/se.img".into()),
            memory: Some(text.into()),
            ..SpecInput::default()
        })
        .spec();
        assert_eq!(as_input.ok().map(|s| s.memory_mib), expected, "{text:?}");
        if let Err(e) = in_code {
            assert!(matches!(
                e.kind(),
                Some(SpecErrorKind::MemoryOutOfRange { .. })
            ));
        }
    }
    let spec = Launch::secure("/se.img").memory("4G").spec().unwrap();
    assert_eq!(spec.memory_mib, 4096);
}

#[test]
fn a_refused_plan_is_an_error_only_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let tree = z16();
    let image = se_image(dir.path());
    let fake = testkit::qemu::fake_qemu();
    let absent = uuid::Uuid::parse_str("00000000-0000-4000-8000-000000000042").unwrap();
    let refused = || {
        Launch::secure(&image)
            .mdev(absent)
            .qemu(&fake)
            .no_cache(true)
    };
    let root = host::HostRoot::open(tree.path()).unwrap();
    let planned = refused().plan(&root).unwrap();
    assert!(planned.refused, "{}", planned.report.render(false));

    let e = refused().plan_strict(&root).unwrap_err();
    assert_eq!(e.kind(), None);
    assert!(e.spec_error().is_none());
    let PlanError::Refused(r) = &e else {
        panic!("not a refusal: {e:?}")
    };
    assert!(r.planned.refused);
    let failed: Vec<String> = r.failures().map(|c| c.id.to_string()).collect();
    assert!(!failed.is_empty());
    assert_eq!(
        e.to_string(),
        format!("the launch was refused: {} failed", failed.join(", "))
    );
    assert!(matches!(planned.into_result(), Err(PlanError::Refused(_))));

    // Forced, the same plan may go ahead; an accepted plan passes through into_result.
    let forced = refused().force(true).plan_strict(&root).unwrap();
    assert!(!forced.refused);
    let ok = Launch::secure(&image)
        .mdev(uuid())
        .qemu(&fake)
        .no_cache(true)
        .plan(&root)
        .unwrap();
    assert!(!ok.refused, "{}", ok.report.render(false));
    assert!(ok.into_result().is_ok());
}
