//! Every device, object, machine property and CPU feature the builder can emit must exist
//! in the real qemu-system-s390x (Debian's 7.2 here): asked over QMP with
//! device-list-properties, qom-list-properties and query-cpu-model-expansion.
//!
//! Skipped with the reason, and only these: the s390-pv-guest object (the x86-built QEMU has
//! no KVM for s390x, so the PV object is not compiled in), and what a newer QEMU added than
//! the one installed (vfio-ap `iommufd`/`fd` and the `iommufd` object: 9.0; `appv`/`appvi`:
//! 8.2). A missing qemu-system-s390x fails the test when CI=true.

use launcher::builder::{build, HostFacts, LaunchPlan};
use launcher::probe::{ProbeSession, QemuCaps, QemuVersion, QmpExchange};
use launcher::spec::{self, split_qemu_opts, Origins, SpecInput, VfioBackend, VmSpec};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn spec(input: SpecInput) -> VmSpec {
    let origins = Origins {
        config: None,
        from_config: SpecInput::default(),
        from_flags: input.clone(),
    };
    spec::validate(input, &origins, Path::new("/run/aplaunch")).unwrap()
}

/// Plans that together use every option the builder knows.
fn all_plans() -> Vec<LaunchPlan> {
    let facts = HostFacts {
        uv_ap: Some(true),
        uv_ap_intr: Some(true),
        vfio_cdev: Some("vfio0".into()),
        iommufd: true,
    };
    let caps = QemuCaps::assumed(QemuVersion::new(10, 1, 0));
    let devices = |base: SpecInput| SpecInput {
        disks: Some(vec![spec::parse_disk_flag(
            "/a,format=qcow2,readonly=on,cache=none",
        )
        .unwrap()]),
        nets: Some(vec![
            spec::parse_net_flag("user,mac=52:54:00:00:00:01").unwrap(),
            spec::parse_net_flag("tap,ifname=tap0").unwrap(),
        ]),
        rng: Some(true),
        ..base
    };
    let pv = |backend, console| {
        devices(SpecInput {
            pv_image: Some("/se.img".into()),
            mdev: Some("62177883-f1bb-47f0-914d-32a22e3a8804".into()),
            vfio_backend: Some(backend),
            console: Some((console, spec::ConsoleBackend::Stdio)),
            ..SpecInput::default()
        })
    };
    let plain = devices(SpecInput {
        no_pv: Some(true),
        hugepages: Some(true),
        iommu_platform: Some(true),
        kernel: Some("/k".into()),
        ..SpecInput::default()
    });
    [
        pv(VfioBackend::Iommufd, spec::ConsoleKind::Virtio),
        pv(VfioBackend::Group, spec::ConsoleKind::Sclp),
        plain,
    ]
    .into_iter()
    .map(|i| build(&spec(i), Path::new("/q"), Some(&caps), &facts))
    .collect()
}

/// `(option, type, keys)` for every -device, -object, -machine and -cpu in the plans.
fn emitted(plans: &[LaunchPlan]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for plan in plans {
        for pair in plan.argv.windows(2) {
            let opt = pair[0].to_string_lossy().into_owned();
            if !["-device", "-object", "-machine", "-cpu"].contains(&opt.as_str()) {
                continue;
            }
            let parts = split_qemu_opts(&pair[1].to_string_lossy());
            let mut it = parts.into_iter();
            let head = it.next().unwrap();
            let keys = out.entry((opt, head)).or_default();
            for p in it {
                keys.insert(p.split('=').next().unwrap().to_string());
            }
        }
    }
    out
}

fn names(reply: Result<Value, launcher::probe::QmpErrorReply>, what: &str) -> BTreeSet<String> {
    match reply {
        Ok(Value::Array(list)) => list
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect(),
        Ok(other) => panic!("{what}: unexpected reply {other}"),
        Err(e) => panic!("{what}: QEMU does not know it: {}", e.desc),
    }
}

#[test]
fn every_emitted_property_exists_in_the_real_qemu() {
    let Some(qemu) = testkit::qemu::real_qemu("every_emitted_property_exists_in_the_real_qemu")
    else {
        return;
    };
    let mut session = ProbeSession::start(&qemu, "tcg").expect("start QEMU");
    let version = session.version;
    let qmp: &mut dyn QmpExchange = &mut session.qmp;
    let types: BTreeSet<String> = names(
        qmp.execute("qom-list-types", None).unwrap(),
        "qom-list-types",
    );
    let mut checked = 0;
    let mut skipped = Vec::new();
    for ((opt, head), keys) in emitted(&all_plans()) {
        match opt.as_str() {
            "-device" => {
                let known = names(
                    qmp.execute("device-list-properties", Some(json!({"typename": head})))
                        .unwrap(),
                    &head,
                );
                for key in &keys {
                    // id and bus are qdev options of every device, not properties.
                    if key == "id" || key == "bus" {
                        continue;
                    }
                    if head == "vfio-ap"
                        && (key == "iommufd" || key == "fd")
                        && !version.at_least(9, 0)
                    {
                        skipped.push(format!(
                            "vfio-ap {key}: added in QEMU 9.0, this is {version}"
                        ));
                        continue;
                    }
                    assert!(
                        known.contains(key),
                        "-device {head}: QEMU {version} has no property {key:?} (has {known:?})"
                    );
                    checked += 1;
                }
            }
            "-object" => {
                if head == "s390-pv-guest" && !types.contains(&head) {
                    skipped.push("s390-pv-guest: the x86-built QEMU has no KVM for s390x, so the PV object is not compiled in".into());
                    continue;
                }
                if head == "iommufd" && !version.at_least(9, 0) && !types.contains(&head) {
                    skipped.push(format!("iommufd object: not in QEMU {version}"));
                    continue;
                }
                let known = names(
                    qmp.execute("qom-list-properties", Some(json!({"typename": head})))
                        .unwrap(),
                    &head,
                );
                for key in keys.iter().filter(|k| *k != "id") {
                    assert!(
                        known.contains(key),
                        "-object {head}: QEMU {version} has no property {key:?}"
                    );
                    checked += 1;
                }
            }
            "-machine" => {
                assert_eq!(head, "s390-ccw-virtio");
                let machine = format!(
                    "s390-ccw-virtio-{}.{}-machine",
                    version.major, version.minor
                );
                let known = names(
                    qmp.execute("qom-list-properties", Some(json!({"typename": machine})))
                        .unwrap(),
                    &machine,
                );
                for key in &keys {
                    // accel= is the legacy -machine spelling of -accel, handled before any
                    // machine object exists; the end-to-end test boots with it.
                    if key == "accel" {
                        continue;
                    }
                    assert!(
                        known.contains(key),
                        "-machine: QEMU {version} has no property {key:?}"
                    );
                    checked += 1;
                }
            }
            "-cpu" => {
                let model = if head == "host" { "max" } else { head.as_str() };
                let reply = qmp
                    .execute(
                        "query-cpu-model-expansion",
                        Some(json!({"type": "full", "model": {"name": model}})),
                    )
                    .unwrap()
                    .expect("cpu model expansion");
                let known: BTreeSet<String> = reply["model"]["props"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect();
                for key in &keys {
                    if (key == "appv" || key == "appvi") && !version.at_least(8, 2) {
                        skipped.push(format!(
                            "cpu feature {key}: added in QEMU 8.2, this is {version}"
                        ));
                        continue;
                    }
                    assert!(
                        known.contains(key),
                        "-cpu: QEMU {version} has no feature {key:?}"
                    );
                    checked += 1;
                }
            }
            _ => unreachable!(),
        }
    }
    session.quit();
    for s in &skipped {
        eprintln!("skipped: {s}");
    }
    assert!(checked >= 20, "only {checked} properties checked");
}
