//! The library's launch API and the CLI plan the same launch: for the same inputs,
//! `Launch::…plan()` gives the checks, argv and passed descriptors that `aplaunch launch
//! --dry-run` prints (as JSON and as text), on the example host.

#[path = "support/launch.rs"]
mod support;

use launcher::devno::Devno;
use launcher::launch::{fd_host_path, Planned};
use launcher::mac::Mac;
use launcher::spec::{Accel, ConsoleBackend, ConsoleKind, Disk, Net, SpecInput, VfioBackend};
use launcher::{builder, Launch};
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
    assert_eq!(e.spec_error().source_name, "--config");
    assert!(e.to_string().contains("missing.toml"), "{e}");
}

#[test]
fn disks_and_nics_built_in_code_are_checked_like_flags() {
    let e = Launch::plain_from_disk()
        .disk(Disk::new("/var/lib/vm/disk.img"))
        .net(Net::tap("tap0;reboot"))
        .spec()
        .unwrap_err();
    let e = e.spec_error();
    assert_eq!(e.source_name, "net #1");
    assert!(e.message.contains("tap0;reboot"), "{e}");
    assert!(e.hint.is_some());
    let e = Launch::plain_from_disk()
        .disk(Disk::new("/var/lib/vm/disk.vmdk").format("vmdk"))
        .spec()
        .unwrap_err();
    assert_eq!(e.spec_error().source_name, "disk #1");
}
