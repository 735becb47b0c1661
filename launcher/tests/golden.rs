//! Golden argv tests: the exact QEMU command line for a matrix of scenarios (PV with and
//! without an mdev, plain guests, every device kind, group vs iommufd, QEMU 6.0 to 10.x as
//! probe results). One argument per line, shell-quoted, in `tests/golden/NAME.args`.
//! Regenerate after an intended change with `APLAUNCH_BLESS=1 cargo test -p launcher --test golden`.

use launcher::builder::{build, ChosenBackend, FdSource, HostFacts, IOMMUFD_FD, VFIO_CDEV_FD};
use launcher::probe::{QemuCaps, QemuVersion};
use launcher::spec::{self, Origins, SpecInput, VfioBackend, VmSpec};
use std::path::{Path, PathBuf};

const UUID: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

fn spec(input: SpecInput) -> VmSpec {
    let origins = Origins {
        config: None,
        from_config: SpecInput::default(),
        from_flags: input.clone(),
    };
    spec::validate(input, &origins, Path::new("/run/aplaunch")).expect("valid spec")
}

fn pv(mdev: bool) -> SpecInput {
    SpecInput {
        name: Some("secure1".into()),
        memory: Some("4G".into()),
        smp: Some(2),
        pv_image: Some("/var/lib/aplaunch/se,boot.img".into()),
        mdev: mdev.then(|| UUID.to_string()),
        ..SpecInput::default()
    }
}

fn host(cdev: bool, iommu: bool) -> HostFacts {
    HostFacts {
        uv_ap: Some(true),
        uv_ap_intr: Some(true),
        vfio_cdev: cdev.then(|| "vfio0".to_string()),
        iommufd: iommu,
    }
}

fn v(major: u32, minor: u32) -> QemuCaps {
    QemuCaps::assumed(QemuVersion::new(major, minor, 0))
}

fn golden(
    name: &str,
    spec: &VmSpec,
    caps: Option<&QemuCaps>,
    facts: &HostFacts,
) -> launcher::builder::LaunchPlan {
    let plan = build(spec, Path::new("/usr/bin/qemu-system-s390x"), caps, facts);
    let text: String = plan
        .argv
        .iter()
        .map(|a| launcher::builder::shell_quote(a) + "\n")
        .collect();
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.args"));
    if std::env::var_os("APLAUNCH_BLESS").is_some() {
        std::fs::write(&file, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with APLAUNCH_BLESS=1)", file.display()));
    assert_eq!(
        text,
        expected,
        "{name}: argv differs from {}",
        file.display()
    );
    plan
}

#[test]
fn pv_with_mdev_across_qemu_versions() {
    // 6.0: PV object, no appv; 8.2: appv/appvi; 9.0 and 10.1: iommufd possible but the host
    // has no /dev/iommu here, so auto stays on the group backend.
    for (name, caps) in [
        ("pv-mdev-qemu-6.0", v(6, 0)),
        ("pv-mdev-qemu-7.2", v(7, 2)),
        ("pv-mdev-qemu-8.2", v(8, 2)),
        ("pv-mdev-qemu-9.0", v(9, 0)),
        ("pv-mdev-qemu-10.1", v(10, 1)),
    ] {
        let plan = golden(name, &spec(pv(true)), Some(&caps), &host(true, false));
        assert_eq!(plan.backend, ChosenBackend::Group, "{name}");
        assert!(plan.fds.is_empty());
    }
}

#[test]
fn pv_without_mdev() {
    golden(
        "pv-no-mdev",
        &spec(pv(false)),
        Some(&v(9, 1)),
        &host(false, false),
    );
}

#[test]
fn iommufd_backend_chosen_by_auto_on_qemu_9_and_passed_fds() {
    let plan = golden(
        "pv-mdev-iommufd-auto-9.0",
        &spec(pv(true)),
        Some(&v(9, 0)),
        &host(true, true),
    );
    assert_eq!(plan.backend, ChosenBackend::Iommufd);
    assert_eq!(plan.fds.len(), 2);
    assert_eq!(
        (plan.fds[0].target, &plan.fds[0].source),
        (IOMMUFD_FD, &FdSource::Iommufd)
    );
    assert_eq!(
        (plan.fds[1].target, &plan.fds[1].source),
        (VFIO_CDEV_FD, &FdSource::VfioCdev("vfio0".into()))
    );
    // QEMU 8.2 has iommufd but not vfio-ap fd passing: auto takes the group backend.
    let plan = build(
        &spec(pv(true)),
        Path::new("/q"),
        Some(&v(8, 2)),
        &host(true, true),
    );
    assert_eq!(plan.backend, ChosenBackend::Group);
    // No cdev: group.
    let plan = build(
        &spec(pv(true)),
        Path::new("/q"),
        Some(&v(10, 1)),
        &host(false, true),
    );
    assert_eq!(plan.backend, ChosenBackend::Group);
}

#[test]
fn explicit_backends_are_honoured_even_when_qemu_lacks_them() {
    let group = SpecInput {
        vfio_backend: Some(VfioBackend::Group),
        ..pv(true)
    };
    let plan = golden(
        "pv-mdev-group-forced-10.1",
        &spec(group),
        Some(&v(10, 1)),
        &host(true, true),
    );
    assert_eq!(plan.backend, ChosenBackend::Group);
    // --force with a QEMU that cannot: the command line the user asked for is still built.
    let iommufd = SpecInput {
        vfio_backend: Some(VfioBackend::Iommufd),
        ..pv(true)
    };
    let plan = golden(
        "pv-mdev-iommufd-forced-8.1",
        &spec(iommufd),
        Some(&v(8, 1)),
        &host(true, true),
    );
    assert_eq!(plan.backend, ChosenBackend::Iommufd);
}

#[test]
fn appv_from_the_ultravisor_when_the_cpu_model_is_unknown() {
    let mut caps = v(9, 1);
    caps.cpu = None;
    let plan = golden(
        "pv-mdev-cpu-unknown-9.1",
        &spec(pv(true)),
        Some(&caps),
        &host(true, false),
    );
    assert!(plan
        .argv
        .iter()
        .any(|a| a.to_string_lossy().contains("appv=on,appvi=on")));
    let no_intr = HostFacts {
        uv_ap_intr: Some(false),
        ..host(true, false)
    };
    let plan = build(&spec(pv(true)), Path::new("/q"), Some(&caps), &no_intr);
    let cpu = plan
        .argv
        .iter()
        .find(|a| a.to_string_lossy().starts_with("host,"))
        .unwrap();
    assert_eq!(
        cpu.to_string_lossy(),
        "host,ap=on,apqci=on,apft=on,apqi=on,appv=on"
    );
    // No probe at all (--force with a broken QEMU): nothing optional is guessed.
    let plan = golden("pv-mdev-no-probe", &spec(pv(true)), None, &host(true, true));
    assert_eq!(plan.backend, ChosenBackend::Group);
}

#[test]
fn every_device_kind_under_pv() {
    let input = SpecInput {
        disks: Some(vec![
            spec::parse_disk_flag("/var/lib/vm/root,,1.qcow2,format=qcow2,cache=none").unwrap(),
            spec::parse_disk_flag("/var/lib/vm/data disk.img,readonly=on").unwrap(),
        ]),
        nets: Some(vec![
            spec::parse_net_flag("tap,ifname=tap0,mac=52:54:00:12:34:56").unwrap(),
            spec::parse_net_flag("user").unwrap(),
        ]),
        rng: Some(true),
        console: Some((spec::ConsoleKind::Virtio, spec::ConsoleBackend::Stdio)),
        qmp: Some("/run/vm,1/qmp.sock".into()),
        extra_args: Some(vec![
            "-d".into(),
            "guest_errors".into(),
            "-msg".into(),
            "timestamp=on".into(),
        ]),
        ..pv(true)
    };
    golden(
        "pv-all-devices-10.1",
        &spec(input),
        Some(&v(10, 1)),
        &host(true, false),
    );
}

#[test]
fn plain_guests() {
    let kernel = SpecInput {
        no_pv: Some(true),
        accel: Some(spec::Accel::Tcg),
        kernel: Some("/boot/vmlinuz".into()),
        initrd: Some("/boot/initrd, new.img".into()),
        append: Some("console=ttysclp0 root=/dev/vda1".into()),
        console: Some((spec::ConsoleKind::None, spec::ConsoleBackend::Stdio)),
        ..SpecInput::default()
    };
    golden(
        "plain-kernel-tcg",
        &spec(kernel),
        Some(&v(7, 2)),
        &HostFacts::default(),
    );
    let disk = SpecInput {
        no_pv: Some(true),
        name: Some("plain1".into()),
        mdev: Some(UUID.into()),
        disks: Some(vec![spec::parse_disk_flag("/vm/boot.img").unwrap()]),
        nets: Some(vec![spec::parse_net_flag("user").unwrap()]),
        rng: Some(true),
        hugepages: Some(true),
        extra_args: Some(vec![
            "-device".into(),
            "virtio-balloon-ccw,id=balloon0".into(),
        ]),
        ..SpecInput::default()
    };
    golden(
        "plain-disk-mdev-hugepages-9.1",
        &spec(disk),
        Some(&v(9, 1)),
        &host(true, false),
    );
    let iommu = SpecInput {
        no_pv: Some(true),
        iommu_platform: Some(true),
        disks: Some(vec![spec::parse_disk_flag("/vm/boot.img").unwrap()]),
        console: Some((spec::ConsoleKind::Virtio, spec::ConsoleBackend::Stdio)),
        ..SpecInput::default()
    };
    golden(
        "plain-iommu-platform-7.2",
        &spec(iommu),
        Some(&v(7, 2)),
        &HostFacts::default(),
    );
}

#[test]
fn secure_guest_booting_from_its_disk() {
    let from_disk = SpecInput {
        no_pv: Some(false),
        pv_image: None,
        disks: Some(vec![
            spec::parse_disk_flag("/var/lib/vm/root.qcow2,format=qcow2").unwrap(),
            spec::parse_disk_flag("/var/lib/vm/data.img,devno=fe.0.0100").unwrap(),
        ]),
        nets: Some(vec![spec::parse_net_flag("tap,ifname=tap0").unwrap()]),
        ..pv(true)
    };
    let plan = golden(
        "pv-boot-disk-10.1",
        &spec(from_disk.clone()),
        Some(&v(10, 1)),
        &host(true, false),
    );
    assert!(!plan.argv.iter().any(|a| a == "-kernel"));
    // --pv-image with a disk marked boot=on: the image is verified, the disk boots.
    let verified = SpecInput {
        pv_image: Some("/var/lib/aplaunch/se.img".into()),
        disks: Some(vec![
            spec::parse_disk_flag("/var/lib/vm/data.img").unwrap(),
            spec::parse_disk_flag("/var/lib/vm/root.qcow2,format=qcow2,boot=on").unwrap(),
        ]),
        ..from_disk
    };
    let plan = golden(
        "pv-boot-disk-verified-10.1",
        &spec(verified),
        Some(&v(10, 1)),
        &host(true, false),
    );
    assert!(!plan.argv.iter().any(|a| a == "-kernel"));
}

#[test]
fn consoles_for_services() {
    for (name, console) in [
        ("plain-console-pty-7.2", "pty"),
        (
            "plain-console-socket-7.2",
            "virtio,socket:/run/aplaunch/plain1,,a.console",
        ),
    ] {
        let input = SpecInput {
            no_pv: Some(true),
            accel: Some(spec::Accel::Tcg),
            name: Some("plain1".into()),
            kernel: Some("/boot/vmlinuz".into()),
            console: Some(spec::parse_console(console, "--console", Path::new("/")).unwrap()),
            ..SpecInput::default()
        };
        golden(name, &spec(input), Some(&v(7, 2)), &HostFacts::default());
    }
}

#[test]
fn unprivileged_sandboxed_secure_guest_with_iommufd() {
    // QEMU 9.1 drops privileges with -run-with user=, 7.2 with -runas; both sandboxed.
    let input = SpecInput {
        user: Some("qemu".into()),
        vfio_backend: Some(VfioBackend::Iommufd),
        ..pv(true)
    };
    let plan = golden(
        "pv-mdev-iommufd-user-9.1",
        &spec(input.clone()),
        Some(&v(9, 1)),
        &host(true, true),
    );
    assert_eq!(plan.backend, ChosenBackend::Iommufd);
    // under the sandbox aplaunch switches to the user itself (QEMU's setuid would be killed)
    assert_eq!(plan.drop_to_user.as_deref(), Some("qemu"));
    // without it QEMU drops privileges: -run-with user= on 9.1, -runas on 7.2
    let unsandboxed = SpecInput {
        vfio_backend: None,
        sandbox: Some(false),
        ..input
    };
    let plan = golden(
        "pv-mdev-user-no-sandbox-9.1",
        &spec(unsandboxed.clone()),
        Some(&v(9, 1)),
        &host(true, false),
    );
    assert_eq!(plan.drop_to_user, None);
    golden(
        "pv-mdev-user-no-sandbox-7.2",
        &spec(unsandboxed),
        Some(&v(7, 2)),
        &host(true, false),
    );
    // --no-sandbox; and a QEMU without seccomp gets no -sandbox either
    let no_sandbox = build(
        &spec(SpecInput {
            sandbox: Some(false),
            ..pv(true)
        }),
        Path::new("/q"),
        Some(&v(9, 1)),
        &host(true, false),
    );
    assert!(!no_sandbox.argv.iter().any(|a| a == "-sandbox"));
    let mut no_seccomp = v(9, 1);
    no_seccomp.command_line_options.remove("sandbox");
    let plan = build(
        &spec(pv(true)),
        Path::new("/q"),
        Some(&no_seccomp),
        &host(true, false),
    );
    assert!(!plan.argv.iter().any(|a| a == "-sandbox"));
}
