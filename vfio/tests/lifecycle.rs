//! Lifecycle tests against the kernel model and through real files in host trees.

use host::{ErrorKind, HostRoot};
use std::time::Duration;
use testkit::hosttree::HostTree;
use testkit::kernel_model::{Generation, KernelModel};
use vfio::ap::{Apid, Apqi, Apqn};
use vfio::error::{Error, KernelError, Result};
use vfio::lifecycle::*;
use vfio::lock::ApLock;
use vfio::mask::{Mask, MaskSpec};
use vfio::mdev::ApConfig;
use vfio::mdev::{MATRIX_DIR, TYPE_DIR};
use vfio::mdevctl::Start;
use vfio::write::{HostWriter, Recording, SysfsWriter};

const U: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";
const V: &str = "11111111-2222-4333-8444-555555555555";
const W: &str = "33333333-4444-4555-8666-777777777777";

struct Env {
    tree: HostTree,
    root: HostRoot,
    model: KernelModel,
    lock: ApLock,
}

fn env() -> Env {
    let tree = HostTree::from_example("z16-se");
    let root = HostRoot::open(tree.path()).unwrap();
    let model = KernelModel::from_root(&root);
    let lock = ApLock::acquire(&root, Duration::ZERO).unwrap();
    Env {
        tree,
        root,
        model,
        lock,
    }
}

fn req(adapters: &[u8], domains: &[u8], controls: &[u8]) -> CreateRequest {
    CreateRequest {
        uuid: Some(V.into()),
        adapters: adapters.iter().map(|a| Apid(*a)).collect(),
        domains: domains.iter().map(|d| Apqi(*d)).collect(),
        control_domains: controls.iter().map(|d| Apqi(*d)).collect(),
        define: None,
        force: false,
    }
}

fn a(uuid: &str, attr: &str) -> String {
    format!("{MATRIX_DIR}/{uuid}/{attr}")
}

fn rm(uuid: &str, force: bool, undefine: bool) -> RemoveRequest {
    RemoveRequest {
        uuid: uuid.into(),
        force,
        undefine,
        timeout: Duration::from_secs(2),
    }
}

fn writes(model: &KernelModel) -> Vec<String> {
    model
        .writes()
        .into_iter()
        .map(|(p, v)| format!("{p}={}", String::from_utf8_lossy(&v)))
        .collect()
}

fn kernel(e: Error) -> KernelError {
    match e {
        Error::Kernel(k) => *k,
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

#[test]
fn create_writes_create_then_each_assignment_in_order() {
    let e = env();
    let out = create(&e.root, &e.model, &e.lock, &req(&[3], &[171], &[171])).unwrap();
    assert_eq!(out.uuid, V);
    let want = vec![
        format!("{TYPE_DIR}/create={V}"),
        format!("{}=3", a(V, "assign_adapter")),
        format!("{}=171", a(V, "assign_domain")),
        format!("{}=171", a(V, "assign_control_domain")),
    ];
    assert_eq!(writes(&e.model), want);
    assert_eq!(out.writes, want);
    let m = &e.model.state().mdevs[V];
    assert_eq!(m.apm, Mask::from_bits([3]));
    assert_eq!(m.aqm, Mask::from_bits([171]));
    assert_eq!(m.adm, Mask::from_bits([171]));
}

#[test]
fn create_picks_a_random_v4_uuid() {
    let e = env();
    let mut r = req(&[3], &[171], &[]);
    r.uuid = None;
    let out = create(&e.root, &e.model, &e.lock, &r).unwrap();
    let u = uuid::Uuid::parse_str(&out.uuid).unwrap();
    assert_eq!(u.get_version_num(), 4);
    assert!(e.model.state().mdevs.contains_key(&out.uuid));
}

#[test]
fn create_validates_before_touching_sysfs() {
    let e = env();
    let cases: Vec<(CreateRequest, &str, &str)> = vec![
        (
            req(&[5], &[4], &[]),
            "APQN 05.0004 (5.4) already in use by mdev 62177883",
            "unassign",
        ),
        (
            req(&[3], &[4], &[]),
            "APQN 03.0004 (3.4) not allowed for vfio_ap",
            "aplaunch ap masks --apmask=-3",
        ),
        (
            req(&[3], &[], &[171]),
            "at least one adapter and one usage domain",
            "control domains alone",
        ),
        (req(&[], &[171], &[]), "at least one adapter", "--adapter"),
        (
            CreateRequest {
                uuid: Some(U.into()),
                ..req(&[3], &[171], &[])
            },
            "already exists",
            "another UUID",
        ),
    ];
    for (r, msg, hint) in cases {
        let err = create(&e.root, &e.model, &e.lock, &r).unwrap_err();
        assert!(err.is_refusal(), "{err:?}");
        assert!(err.to_string().contains(msg), "{err}");
        assert!(err.hint().unwrap().contains(hint), "{:?}", err.hint());
    }
    e.model.with_state(|s| s.max_adapter_id = 63);
    let err = create(&e.root, &e.model, &e.lock, &req(&[64], &[171], &[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "adapter 0x40 (64) is above ap_max_adapter_id (63)"
    );
    e.model.with_state(|s| s.max_domain_id = 15);
    let err = create(&e.root, &e.model, &e.lock, &req(&[3], &[171], &[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "domain 0x00ab (171) is above ap_max_domain_id (15)"
    );
    e.model.with_state(|s| s.available_instances = 0);
    let err = create(&e.root, &e.model, &e.lock, &req(&[3], &[1], &[])).unwrap_err();
    assert!(err.to_string().contains("no mdev instances left"), "{err}");
    let err = create(
        &e.root,
        &e.model,
        &e.lock,
        &CreateRequest {
            uuid: Some("nope".into()),
            ..req(&[3], &[1], &[])
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadUuid { .. }));
    assert!(e.model.writes().is_empty(), "{:?}", e.model.writes());
}

#[test]
fn create_rolls_back_after_a_failure_at_every_step() {
    let steps = [
        "/create",
        "/assign_adapter",
        "/assign_domain",
        "/assign_control_domain",
    ];
    for (i, step) in steps.iter().enumerate() {
        let e = env();
        e.model.fail_on(step, libc::EIO);
        let err =
            kernel(create(&e.root, &e.model, &e.lock, &req(&[3], &[171], &[171])).unwrap_err());
        assert_eq!(err.errno, Some(libc::EIO));
        assert!(!e.model.state().mdevs.contains_key(V), "step {step}");
        let w = writes(&e.model);
        if i == 0 {
            assert!(w.is_empty(), "{w:?}");
            assert_eq!(err.rollback, None);
        } else {
            assert_eq!(w.len(), i + 1, "{w:?}");
            assert_eq!(w.last().unwrap(), &format!("{}=1", a(V, "remove")));
            assert!(err.message.contains("was removed again"), "{}", err.message);
        }
    }
}

#[test]
fn a_failed_rollback_says_so() {
    let e = env();
    e.model.fail_on("/assign_domain", libc::EIO);
    e.model.fail_on("/remove", libc::EIO);
    let err = kernel(create(&e.root, &e.model, &e.lock, &req(&[3], &[171], &[])).unwrap_err());
    assert!(err.message.contains("ALSO failed"), "{}", err.message);
    assert!(
        err.message
            .contains(&format!("aplaunch ap mdev remove {V}")),
        "{}",
        err.message
    );
}

#[test]
fn a_failed_definition_write_removes_the_mdev() {
    let e = env();
    // a directory where the definition file should go makes the rename fail
    e.tree.mkdir(&format!("etc/mdevctl.d/matrix/{V}/x"));
    let mut r = req(&[3], &[171], &[]);
    r.define = Some(Start::Manual);
    r.force = true;
    let err = kernel(create(&e.root, &e.model, &e.lock, &r).unwrap_err());
    assert!(
        err.message.contains("writing the definition"),
        "{}",
        err.message
    );
    assert!(!e.model.state().mdevs.contains_key(V));
}

#[test]
fn create_with_define_writes_the_mdevctl_file() {
    let e = env();
    let mut r = req(&[3], &[171], &[171]);
    r.define = Some(Start::Auto);
    let out = create(&e.root, &e.model, &e.lock, &r).unwrap();
    assert!(out.definition.unwrap().ends_with(V));
    let text = e.tree.read(&format!("etc/mdevctl.d/matrix/{V}"));
    assert_eq!(
        text,
        "{\n  \"mdev_type\": \"vfio_ap-passthrough\",\n  \"start\": \"auto\",\n  \"attrs\": [\n    {\n      \"assign_adapter\": \"3\"\n    },\n    {\n      \"assign_domain\": \"171\"\n    },\n    {\n      \"assign_control_domain\": \"171\"\n    }\n  ]\n}"
    );
    // an existing definition is refused before any write unless --force
    let e2 = env();
    e2.tree.write(
        &format!("etc/mdevctl.d/matrix/{V}"),
        r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[]}"#,
    );
    let e2model = KernelModel::from_root(&e2.root);
    let err = create(&e2.root, &e2model, &e2.lock, &r).unwrap_err();
    assert!(err.to_string().contains("already exists"));
    assert!(e2model.writes().is_empty());
}

// --- every errno, as the kernel answers it when another process raced us ---

fn raced(setup: impl FnOnce(&mut testkit::kernel_model::ModelState)) -> (Env, KernelError) {
    let e = env();
    e.model.freeze_scan();
    e.model.with_state(setup);
    let err = kernel(create(&e.root, &e.model, &e.lock, &req(&[3], &[171], &[])).unwrap_err());
    assert!(!e.model.state().mdevs.contains_key(V) || err.errno == Some(libc::EEXIST));
    (e, err)
}

#[test]
fn eaddrinuse_names_the_owner() {
    let (_e, err) = raced(|s| {
        s.mdevs.insert(
            W.into(),
            testkit::kernel_model::ModelMdev {
                apm: Mask::from_bits([3]),
                aqm: Mask::from_bits([171]),
                ..Default::default()
            },
        );
    });
    assert_eq!(err.errno, Some(libc::EADDRINUSE));
    assert!(err.message.contains(&format!("assigning domain 0x00ab (171) to mdev {V} failed: APQN 03.00ab (3.171) already belongs to mdev {W} (EADDRINUSE)")), "{}", err.message);
    assert!(err.message.contains("removed again"));
    assert!(err.hint.contains("unassign"));
}

#[test]
fn eaddrnotavail_gives_the_masks_command() {
    let (_e, err) = raced(|s| s.aqmask.set(171));
    assert_eq!(err.errno, Some(libc::EADDRNOTAVAIL));
    assert!(err.message.contains("APQN 03.00ab (3.171) is reserved for the host's crypto drivers by the AP bus masks (apmask bit 3 and aqmask bit 171 are both set)"), "{}", err.message);
    assert!(
        err.hint.contains("aplaunch ap masks --apmask=-3"),
        "{}",
        err.hint
    );
    assert!(err.hint.contains("--aqmask=-171"), "{}", err.hint);
}

#[test]
fn enodev_names_the_limits() {
    let (_e, err) = raced(|s| s.max_domain_id = 84);
    assert_eq!(err.errno, Some(libc::ENODEV));
    assert!(
        err.message
            .contains("ap_max_adapter_id 255, ap_max_domain_id 84"),
        "{}",
        err.message
    );
}

#[test]
fn eexist_and_eusers_on_create() {
    let (_e, err) = raced(|s| {
        s.mdevs.insert(V.into(), Default::default());
    });
    assert_eq!(err.errno, Some(libc::EEXIST));
    assert!(
        err.message
            .contains(&format!("an mdev with UUID {V} already exists (EEXIST)")),
        "{}",
        err.message
    );
    let (_e, err) = raced(|s| s.available_instances = 0);
    assert_eq!(err.errno, Some(libc::EUSERS));
    assert!(
        err.message.contains("no mdev instances left"),
        "{}",
        err.message
    );
    assert!(err.hint.contains("remove"));
}

#[test]
fn injected_errnos_have_messages() {
    let cases = [
        (
            "/create",
            libc::EINVAL,
            "refused \"11111111-2222-4333-8444-555555555555\" as a UUID",
            "8-4-4-4-12",
        ),
        (
            "/create",
            libc::ENODEV,
            "vfio_ap-passthrough type is gone",
            "modprobe vfio_ap",
        ),
        (
            "/assign_adapter",
            libc::EINVAL,
            "refused the value \"3\"",
            "decimal",
        ),
        (
            "/assign_adapter",
            libc::ERANGE,
            "refused the value \"3\"",
            "decimal",
        ),
        (
            "/assign_domain",
            libc::EACCES,
            "permission denied",
            "run as root",
        ),
        (
            "/assign_domain",
            libc::EPERM,
            "permission denied",
            "run as root",
        ),
        (
            "/assign_domain",
            libc::ENOENT,
            "does not exist (ENOENT)",
            "mdev show",
        ),
        ("/assign_domain", libc::EIO, "Input/output error", "dmesg"),
        (
            "/assign_domain",
            libc::EADDRNOTAVAIL,
            "older kernels answer this",
            "bound to vfio_ap",
        ),
        (
            "/assign_domain",
            libc::EADDRINUSE,
            "the kernel log names it",
            "unassign",
        ),
    ];
    for (step, errno, msg, hint) in cases {
        let e = env();
        e.model.fail_on(step, errno);
        let err = kernel(create(&e.root, &e.model, &e.lock, &req(&[3], &[171], &[])).unwrap_err());
        assert_eq!(err.errno, Some(errno));
        assert!(err.message.contains(msg), "{step} {errno}: {}", err.message);
        assert!(err.hint.contains(hint), "{step} {errno}: {}", err.hint);
    }
}

#[test]
fn ebusy_on_an_old_kernel_with_a_running_guest() {
    let e = env();
    e.model.with_state(|s| s.generation = Generation::V5_15);
    // pre-check: 5.15 shows no queue status, but the QEMU holding the group is in /proc
    e.model
        .with_state(|s| s.mdevs.get_mut(U).unwrap().in_use = true);
    e.tree
        .write("proc/31/cmdline", "qemu-system-s390x\0-name\0g31\0")
        .link("proc/31/fd/4", "/dev/vfio/0");
    let delta = MatrixChange {
        domains: vec![Apqi(171)],
        ..Default::default()
    };
    let err = change(&e.root, &e.model, &e.lock, U, &delta, false).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                kind: ErrorKind::InUse,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("in use by a running guest (process 31 (guest g31) holding /dev/vfio/0)"),
        "{err}"
    );
    assert!(e.model.writes().is_empty());
    // the guest started between our scan and the write (and /proc did not show it): the
    // kernel's EBUSY
    e.tree.remove("proc/31");
    e.model
        .with_state(|s| s.mdevs.get_mut(U).unwrap().in_use = false);
    e.model.freeze_scan();
    e.model
        .with_state(|s| s.mdevs.get_mut(U).unwrap().in_use = true);
    let err = kernel(change(&e.root, &e.model, &e.lock, U, &delta, false).unwrap_err());
    assert_eq!(err.errno, Some(libc::EBUSY));
    assert!(
        err.message
            .contains("cannot change a running guest's matrix"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("nothing was changed"),
        "{}",
        err.message
    );
}

// --- assign / unassign ---

#[test]
fn change_on_an_old_kernel_writes_each_id_and_undoes_on_failure() {
    let e = env();
    e.model.with_state(|s| {
        s.generation = Generation::V5_15;
        // 5.x assigns only queues bound to vfio_ap
        s.queues
            .extend([Apqn::new(7, 171), Apqn::new(7, 16), Apqn::new(3, 16)]);
    });
    create(&e.root, &e.model, &e.lock, &req(&[3], &[171], &[])).unwrap();
    let before = e.model.writes().len();
    let delta = MatrixChange {
        adapters: vec![Apid(7)],
        domains: vec![Apqi(16), Apqi(171)],
        control_domains: vec![Apqi(5)],
        ..Default::default()
    };
    e.model.with_state(|s| {
        s.apmask.clear(7);
        s.aqmask.clear(16);
    });
    e.model.fail_on("/assign_control_domain", libc::EIO);
    let err = kernel(change(&e.root, &e.model, &e.lock, V, &delta, true).unwrap_err());
    assert!(
        err.message.contains("the 2 earlier write(s) were undone"),
        "{}",
        err.message
    );
    let w = writes(&e.model)[before..].to_vec();
    assert_eq!(
        w,
        vec![
            format!("{}=7", a(V, "assign_adapter")),
            format!("{}=16", a(V, "assign_domain")),
            format!("{}=16", a(V, "unassign_domain")),
            format!("{}=7", a(V, "unassign_adapter")),
        ]
    );
    assert_eq!(e.model.state().mdevs[V].apm, Mask::from_bits([3]));
    assert_eq!(e.model.state().mdevs[V].aqm, Mask::from_bits([171]));
    // and without the failure
    let out = change(&e.root, &e.model, &e.lock, V, &delta, true).unwrap();
    assert_eq!(out.writes.len(), 3);
    assert_eq!(e.model.state().mdevs[V].adm, Mask::from_bits([5]));
    let out = change(&e.root, &e.model, &e.lock, V, &delta, false).unwrap();
    assert_eq!(out.writes.len(), 4, "{:?}", out.writes);
    assert_eq!(out.writes[0], format!("{}=7", a(V, "unassign_adapter")));
    assert!(e.model.state().mdevs[V].adm.is_empty());
}

#[test]
fn live_change_on_a_newer_kernel_is_one_ap_config_write() {
    let e = env();
    e.model
        .with_state(|s| s.mdevs.get_mut(U).unwrap().in_use = true);
    let delta = MatrixChange {
        domains: vec![Apqi(4)],
        ..Default::default()
    };
    let out = change(&e.root, &e.model, &e.lock, U, &delta, false).unwrap();
    assert!(out.live);
    assert_eq!(
        out.guest_matrix_before,
        Some(vec![Apqn::new(5, 4), Apqn::new(5, 0xab)])
    );
    assert_eq!(out.guest_matrix_after, Some(vec![Apqn::new(5, 0xab)]));
    let cfg = ApConfig {
        apm: Mask::from_bits([5]),
        aqm: Mask::from_bits([171]),
        adm: Mask::from_bits([171]),
    };
    assert_eq!(
        writes(&e.model),
        vec![format!("{}={}", a(U, "ap_config"), cfg.to_sysfs())]
    );
    // U's definition still holds the old matrix
    assert!(
        out.warnings[0].contains("still holds the old matrix"),
        "{:?}",
        out.warnings
    );
}

#[test]
fn change_with_define_rewrites_the_definition_keeping_start() {
    let e = env();
    let delta = MatrixChange {
        domains: vec![Apqi(4)],
        define: true,
        ..Default::default()
    };
    let out = change(&e.root, &e.model, &e.lock, U, &delta, false).unwrap();
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert!(out.definition.unwrap().ends_with(U));
    let def = vfio::mdevctl::read_definition(&e.root, U).unwrap().unwrap();
    assert_eq!(def.start, Start::Auto);
    assert_eq!(def.adapters, vec![Apid(5)]);
    assert_eq!(def.domains, vec![Apqi(171)]);
    assert_eq!(def.control_domains, vec![Apqi(171)]);
}

#[test]
fn assign_refuses_conflicts_and_reserved_queues() {
    let e = env();
    create(&e.root, &e.model, &e.lock, &req(&[3], &[171], &[])).unwrap();
    let n = e.model.writes().len();
    let err = change(
        &e.root,
        &e.model,
        &e.lock,
        V,
        &MatrixChange {
            adapters: vec![Apid(5)],
            ..Default::default()
        },
        true,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("APQN 05.00ab (5.171) already in use by mdev {U}")),
        "{err}"
    );
    let err = change(
        &e.root,
        &e.model,
        &e.lock,
        V,
        &MatrixChange {
            domains: vec![Apqi(4)],
            ..Default::default()
        },
        true,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("APQN 03.0004 (3.4) not allowed"),
        "{err}"
    );
    assert_eq!(e.model.writes().len(), n);
    let err = change(
        &e.root,
        &e.model,
        &e.lock,
        W,
        &MatrixChange {
            adapters: vec![Apid(1)],
            ..Default::default()
        },
        true,
    )
    .unwrap_err();
    assert!(matches!(err, Error::MdevNotFound { .. }));
    let err = change(
        &e.root,
        &e.model,
        &e.lock,
        V,
        &MatrixChange::default(),
        true,
    )
    .unwrap_err();
    assert!(err.to_string().contains("nothing to change"));
}

// --- remove ---

#[test]
fn remove_refuses_an_mdev_in_use_unless_forced() {
    let e = env();
    e.model
        .with_state(|s| s.mdevs.get_mut(U).unwrap().in_use = true);
    let err = remove(&e.root, &e.model, &e.lock, &rm(U, false, false)).unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "mdev {U} is in use: its queues show status `in use`"
        )),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("--force"));
    assert!(err
        .hint()
        .unwrap()
        .contains(&format!("aplaunch ap mdev remove {U} --unplug --qmp")));
    // forced: the kernel does not answer EBUSY but holds the write until QEMU lets go;
    // the bounded write gives up and says so
    let err = kernel(remove(&e.root, &e.model, &e.lock, &rm(U, true, false)).unwrap_err());
    assert_eq!(err.errno, Some(libc::ETIMEDOUT));
    assert!(
        err.message.contains(&format!(
            "removing mdev {U} did not finish within 2 s: the kernel waits until the device is released"
        )),
        "{}",
        err.message
    );
    e.model
        .with_state(|s| s.mdevs.get_mut(U).unwrap().in_use = false);
    let out = remove(&e.root, &e.model, &e.lock, &rm(U, false, true)).unwrap();
    assert_eq!(out.writes, vec![format!("{}=1", a(U, "remove"))]);
    assert!(out.definition.is_some());
    assert!(!e.tree.at(&format!("etc/mdevctl.d/matrix/{U}")).exists());
    let err = remove(&e.root, &e.model, &e.lock, &rm(U, false, false)).unwrap_err();
    assert!(matches!(err, Error::MdevNotFound { .. }));
}

// --- masks ---

#[test]
fn masks_refuse_to_take_assigned_queues_back() {
    let e = env();
    let spec = MaskSpec::parse("+5").unwrap();
    let err = apply_masks(&e.root, &e.model, &e.lock, Some(&spec), None).unwrap_err();
    assert!(matches!(
        err,
        Error::Refused {
            kind: ErrorKind::Conflict,
            ..
        }
    ));
    assert!(
        err.to_string()
            .contains(&format!("APQN 05.0004 (5.4) of mdev {U}")),
        "{err}"
    );
    // the hint gives the command for each APQN, the same in a dry run (the preview's refusal)
    let hint = err.hint().unwrap_or_default().to_string();
    assert!(
        hint.contains(&format!("aplaunch ap mdev unassign {U}")),
        "{hint}"
    );
    let preview =
        vfio::lifecycle::preview_masks(&e.model.scan(&e.root), Some(&spec), None).unwrap();
    assert_eq!(
        preview.refusal().map(|r| r.to_string()),
        Some(err.to_string())
    );
    assert!(e.model.writes().is_empty());
    // the race: an mdev took 03.00ab after our scan
    e.model.freeze_scan();
    e.model.with_state(|s| {
        s.mdevs.insert(
            W.into(),
            testkit::kernel_model::ModelMdev {
                apm: Mask::from_bits([3]),
                aqm: Mask::from_bits([171]),
                ..Default::default()
            },
        );
    });
    let spec = MaskSpec::parse("+171").unwrap();
    let err = kernel(apply_masks(&e.root, &e.model, &e.lock, None, Some(&spec)).unwrap_err());
    assert_eq!(err.errno, Some(libc::EBUSY));
    assert!(
        err.message
            .contains(&format!("APQN 03.00ab (3.171) of mdev {W}")),
        "{}",
        err.message
    );
}

/// Another process assigns 03.00ab to a new mdev after aplaunch's scan; aplaunch then
/// reserves domain 171 for the host.
fn mask_change_racing_an_assignment(generation: Generation) -> Result<MaskPreview> {
    let e = env();
    e.model.with_state(|s| s.generation = generation);
    e.model.freeze_scan();
    e.model.with_state(|s| {
        s.mdevs.insert(
            W.into(),
            testkit::kernel_model::ModelMdev {
                apm: Mask::from_bits([3]),
                aqm: Mask::from_bits([171]),
                ..Default::default()
            },
        );
    });
    let spec = MaskSpec::parse("+171").unwrap();
    apply_masks(&e.root, &e.model, &e.lock, None, Some(&spec))
}

#[test]
fn a_mask_race_is_refused_from_6_0_on_and_reported_before() {
    for g in [Generation::V6_1, Generation::V6_13] {
        let err = kernel(mask_change_racing_an_assignment(g).unwrap_err());
        assert_eq!(err.errno, Some(libc::EBUSY), "{g:?}");
    }
    // 5.x has no in-use callback: the write succeeds, the scan after it says what was lost
    for g in [Generation::V5_10, Generation::V5_15] {
        let out = mask_change_racing_an_assignment(g).unwrap();
        assert!(
            out.warnings.iter().any(|w| w.contains(&format!(
                "APQN 03.00ab (3.171) of mdev {W} (assigned after the check; vfio_ap before Linux 6.0 does not refuse this)"
            ))),
            "{g:?}: {:?}",
            out.warnings
        );
    }
}

#[test]
fn masks_write_absolute_hex_and_roll_back_the_first_on_failure() {
    let e = env();
    let ap = MaskSpec::parse("-3").unwrap();
    let aq = MaskSpec::parse("0-170,172-255").unwrap();
    let preview = preview_masks(&e.model.scan(&e.root), Some(&ap), Some(&aq)).unwrap();
    assert_eq!(preview.to_vfio, vec![Apqn::new(3, 4)]);
    assert!(preview.to_host.is_empty());
    e.model.fail_on("/aqmask", libc::EIO);
    let err = kernel(
        apply_masks(
            &e.root,
            &e.model,
            &e.lock,
            Some(&ap),
            Some(&MaskSpec::parse("-4").unwrap()),
        )
        .unwrap_err(),
    );
    assert!(
        err.message.contains("sys/bus/ap/apmask was set back"),
        "{}",
        err.message
    );
    let old_ap = format!("0x{}", "f".repeat(64)).replacen("0xff", "0xfb", 1);
    let new_ap = format!("0x{}", "f".repeat(64)).replacen("0xff", "0xeb", 1);
    assert_eq!(
        writes(&e.model),
        vec![
            format!("sys/bus/ap/apmask={new_ap}"),
            format!("sys/bus/ap/apmask={old_ap}"),
        ]
    );
}

// --- through real files: the exact bytes, in order ---

fn kernel_made_mdev(tree: &HostTree, uuid: &str) {
    // what the kernel creates after `create`: the attribute files (no mdev_type yet in the tree)
    for f in [
        "assign_adapter",
        "assign_domain",
        "assign_control_domain",
        "unassign_adapter",
        "unassign_domain",
        "unassign_control_domain",
        "remove",
    ] {
        tree.write(&format!("sys/devices/vfio_ap/matrix/{uuid}/{f}"), "");
    }
}

#[test]
fn real_files_get_the_exact_bytes_in_order() {
    let e = env();
    kernel_made_mdev(&e.tree, V);
    // leave domain 16 to vfio_ap too
    let aq = Mask::parse_sysfs(&e.tree.read("sys/bus/ap/aqmask")).unwrap();
    let aq = aq.minus(&Mask::from_bits([16]));
    e.tree.write("sys/bus/ap/aqmask", format!("{aq}\n"));
    let w = Recording::new(HostWriter::new(&e.root));
    create(&e.root, &w, &e.lock, &req(&[3], &[16, 171], &[171])).unwrap();
    assert_eq!(
        w.lines(),
        vec![
            format!("{TYPE_DIR}/create={V}"),
            format!("{}=3", a(V, "assign_adapter")),
            format!("{}=16", a(V, "assign_domain")),
            format!("{}=171", a(V, "assign_domain")),
            format!("{}=171", a(V, "assign_control_domain")),
        ]
    );
    assert_eq!(e.tree.read(&format!("{TYPE_DIR}/create")), V);
    assert_eq!(e.tree.read(&a(V, "assign_adapter")), "3");
    // two writes to one attribute: the second overwrites from offset 0 (no truncate)
    assert_eq!(e.tree.read(&a(V, "assign_domain")), "171");
    assert_eq!(e.tree.read(&a(V, "assign_control_domain")), "171");
    assert_eq!(e.tree.read(&a(V, "remove")), "");
}

#[test]
fn real_files_roll_back_when_an_attribute_is_missing() {
    let e = env();
    kernel_made_mdev(&e.tree, V);
    e.tree.remove(&a(V, "assign_domain"));
    let w = Recording::new(HostWriter::new(&e.root));
    let err = kernel(create(&e.root, &w, &e.lock, &req(&[3], &[171], &[])).unwrap_err());
    assert_eq!(err.errno, Some(libc::ENOENT));
    assert_eq!(
        w.lines(),
        vec![
            format!("{TYPE_DIR}/create={V}"),
            format!("{}=3", a(V, "assign_adapter")),
            format!("{}=171 !{}", a(V, "assign_domain"), libc::ENOENT),
            format!("{}=1", a(V, "remove")),
        ]
    );
    assert_eq!(e.tree.read(&a(V, "remove")), "1");
}

#[test]
fn real_file_masks_and_remove() {
    let e = env();
    let w = Recording::new(HostWriter::new(&e.root));
    let spec = MaskSpec::parse("-3").unwrap();
    let p = apply_masks(&e.root, &w, &e.lock, Some(&spec), None).unwrap();
    let want = format!("0x{}", "f".repeat(64)).replacen("0xff", "0xeb", 1);
    assert_eq!(p.writes, vec![format!("sys/bus/ap/apmask={want}")]);
    assert_eq!(e.tree.read("sys/bus/ap/apmask"), format!("{want}\n"));
    let out = remove(&e.root, &w, &e.lock, &rm(U, false, false)).unwrap();
    assert_eq!(out.writes, vec![format!("{}=1", a(U, "remove"))]);
    assert_eq!(e.tree.read(&a(U, "remove")), "1");
    // the example's definition stays
    assert!(e.tree.at(&format!("etc/mdevctl.d/matrix/{U}")).exists());
}

#[test]
fn show_reads_active_and_defined() {
    let e = env();
    let s = show(&e.root, U).unwrap();
    assert!(s.active.is_some() && s.definition.is_some() && !s.in_use);
    e.tree.write(
        &format!("etc/mdevctl.d/matrix/{V}"),
        r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[]}"#,
    );
    let s = show(&e.root, V).unwrap();
    assert!(s.active.is_none() && s.definition.is_some());
    assert!(matches!(show(&e.root, W), Err(Error::MdevNotFound { .. })));
}

// --- the same scenario against each kernel generation ---

/// Assigns a domain to the mdev of a running guest (queues `in use`).
fn live_assign(generation: Generation) -> Result<Outcome> {
    let e = env();
    e.model.with_state(|s| {
        s.generation = generation;
        s.mdevs.get_mut(U).unwrap().in_use = true;
        s.aqmask.clear(16);
        s.queues.push(Apqn::new(5, 16));
    });
    let delta = MatrixChange {
        domains: vec![Apqi(16)],
        ..Default::default()
    };
    change(&e.root, &e.model, &e.lock, U, &delta, true)
}

#[test]
fn a_live_assign_works_from_6_0_on_without_features() {
    // 6.1 has no `features` file: guest_matrix proves the dynamic update
    let out = live_assign(Generation::V6_1).unwrap();
    assert!(out.live);
    assert_eq!(out.writes.len(), 1, "{:?}", out.writes);
    assert!(out.writes[0].ends_with("/assign_domain=16"));
    assert!(out.guest_matrix_after.unwrap().contains(&Apqn::new(5, 16)));
    // 6.13 writes ap_config atomically
    let out = live_assign(Generation::V6_13).unwrap();
    assert!(out.writes[0].contains("/ap_config="), "{:?}", out.writes);
}

#[test]
fn the_live_assign_that_passes_on_6_1_fails_on_5_15() {
    assert!(live_assign(Generation::V6_1).is_ok());
    // 5.15 shows no queue status, so the guest is not seen before the write: the kernel's
    // EBUSY says it
    let err = kernel(live_assign(Generation::V5_15).unwrap_err());
    assert_eq!(err.errno, Some(libc::EBUSY));
    assert!(
        err.message.contains("vfio_ap before Linux 6.0"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("nothing was changed"),
        "{}",
        err.message
    );
}

#[test]
fn remove_never_waits_unbounded_on_any_generation() {
    for g in Generation::ALL {
        let e = env();
        e.model.with_state(|s| {
            s.generation = g;
            s.mdevs.get_mut(U).unwrap().in_use = true;
        });
        // a QEMU in /proc holds the group (on 5.15 the only sign: no queue status)
        e.tree
            .write("proc/4242/comm", "qemu-system-s39\n")
            .write(
                "proc/4242/cmdline",
                "qemu-system-s390x\0-name\0guest=web1\0-qmp\0unix:/run/web1.qmp,server=on,wait=off\0",
            )
            .link("proc/4242/fd/9", "/dev/vfio/0");
        let err = remove(&e.root, &e.model, &e.lock, &rm(U, false, false)).unwrap_err();
        assert!(
            err.to_string().contains(
                "process 4242 (qemu-system-s39, guest web1) holding /dev/vfio/0, QMP socket /run/web1.qmp"
            ),
            "{g:?}: {err}"
        );
        assert!(
            err.hint().unwrap().contains(&format!(
                "aplaunch ap mdev remove {U} --unplug (QMP socket /run/web1.qmp)"
            )),
            "{g:?}"
        );
        let err = kernel(remove(&e.root, &e.model, &e.lock, &rm(U, true, false)).unwrap_err());
        // 5.10 refuses at once; from 5.15 on the bound runs out
        let expected = if g == Generation::V5_10 {
            libc::EBUSY
        } else {
            libc::ETIMEDOUT
        };
        assert_eq!(err.errno, Some(expected), "{g:?}");
        assert!(err.message.contains("guest web1"), "{}", err.message);
        assert!(
            err.hint.contains("--unplug (QMP socket /run/web1.qmp)"),
            "{g:?}: {}",
            err.hint
        );
        assert!(e.model.state().mdevs.contains_key(U));
    }
}

/// One scenario, asserted the way one kernel answers it: a forced `remove` of an mdev a
/// guest holds runs into the bound (the write blocks in `vfio_unregister_group_dev`).
fn forced_remove_of_a_held_mdev_times_out(generation: Generation) {
    let e = env();
    e.model.with_state(|s| {
        s.generation = generation;
        s.mdevs.get_mut(U).unwrap().in_use = true;
    });
    let err = kernel(remove(&e.root, &e.model, &e.lock, &rm(U, true, false)).unwrap_err());
    assert_eq!(err.errno, Some(libc::ETIMEDOUT), "{generation:?}");
    assert!(
        err.message.contains("did not finish within 2 s"),
        "{}",
        err.message
    );
}

/// One scenario, asserted the way 6.0 and later answer it: an adapter with no queues on
/// the host may be assigned (6.0 "s390/vfio-ap: allow assignment of unavailable AP queues
/// to mdev device"), and `guest_matrix` leaves it out.
fn assigning_an_adapter_without_queues_succeeds(generation: Generation) {
    let e = env();
    e.model.with_state(|s| {
        s.generation = generation;
        // adapter 9 is not reserved for the host, and has no queues
        s.apmask.clear(9);
    });
    let delta = MatrixChange {
        adapters: vec![Apid(9)],
        ..Default::default()
    };
    let out = change(&e.root, &e.model, &e.lock, U, &delta, true)
        .unwrap_or_else(|err| panic!("{generation:?}: {err}"));
    assert!(out
        .writes
        .iter()
        .any(|w| w.contains("=9") || w.contains("/ap_config=")));
}

/// Runs a scenario's assertions and says whether they held (a panic is a failed test).
fn passes(scenario: fn(Generation), generation: Generation) -> bool {
    std::panic::catch_unwind(|| scenario(generation)).is_ok()
}

#[test]
fn the_same_test_passes_on_one_generation_and_fails_on_another() {
    // remove: 5.10 answers EBUSY at once, 5.15 blocks (the vfio_register_group_dev
    // conversion made the remove callback unable to fail)
    assert!(passes(
        forced_remove_of_a_held_mdev_times_out,
        Generation::V5_15
    ));
    assert!(passes(
        forced_remove_of_a_held_mdev_times_out,
        Generation::V6_13
    ));
    assert!(!passes(
        forced_remove_of_a_held_mdev_times_out,
        Generation::V5_10
    ));
    // assignment: 5.15 wants every new APQN bound to vfio_ap (EADDRNOTAVAIL), 6.1 not
    assert!(passes(
        assigning_an_adapter_without_queues_succeeds,
        Generation::V6_1
    ));
    assert!(passes(
        assigning_an_adapter_without_queues_succeeds,
        Generation::V6_13
    ));
    assert!(!passes(
        assigning_an_adapter_without_queues_succeeds,
        Generation::V5_15
    ));
    // a live assign: 6.1 updates the running guest, 5.15 answers EBUSY
    let live_assign_updates_the_guest = |g: Generation| {
        let out = live_assign(g).unwrap_or_else(|err| panic!("{g:?}: {err}"));
        assert!(out.live);
    };
    assert!(std::panic::catch_unwind(|| live_assign_updates_the_guest(Generation::V6_1)).is_ok());
    assert!(std::panic::catch_unwind(|| live_assign_updates_the_guest(Generation::V5_15)).is_err());
}

/// A file whose writes block like the kernel's `remove` while a guest holds the mdev: a
/// FIFO whose buffer is full (the test holds the reading end and reads only when it lets
/// go). Host trees cannot hold one as an attribute (the host root opens regular files
/// only), so the bounded write is tested on the fd itself.
struct BlockingFile {
    reader: std::fs::File,
    writer: Option<std::fs::File>,
    _dir: tempfile::TempDir,
}

impl BlockingFile {
    fn new() -> Self {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("remove");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let mut filler = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let chunk = [b'x'; 4096];
        while filler.write(&chunk).is_ok() {}
        // a blocking writer: its next write waits for room
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        BlockingFile {
            reader,
            writer: Some(writer),
            _dir: dir,
        }
    }

    /// Drains the FIFO until the blocked writer's byte came through.
    fn release(mut self) -> Vec<u8> {
        use std::io::Read;
        let mut all = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if all.last() == Some(&b'1') {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("{e}"),
            }
        }
        all
    }
}

#[test]
fn a_blocking_write_is_bounded_and_completes_later() {
    let mut blocking = BlockingFile::new();
    let file = blocking.writer.take().unwrap();
    let err = vfio::write::write_file_bounded(file, b"1", Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETIMEDOUT));
    // the child still waits in the kernel: once the reader lets go the byte arrives
    assert!(blocking.release().ends_with(b"1"));
}

#[test]
fn a_bounded_write_reports_the_errno_of_a_refused_write() {
    let e = env();
    // a file open for reading only: write(2) answers EBADF, from the child
    let file = std::fs::File::open(e.tree.at(&a(U, "remove"))).unwrap();
    let err = vfio::write::write_file_bounded(file, b"1", Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    // through the host root: the attribute gets the bytes
    let w = HostWriter::new(&e.root);
    w.write_bounded(&a(U, "remove"), b"1", Duration::from_secs(5))
        .unwrap();
    assert_eq!(e.tree.read(&a(U, "remove")), "1");
}

#[test]
fn an_ap_config_write_the_kernel_does_not_apply_is_reported() {
    let e = env();
    e.model.with_state(|s| s.generation = Generation::V6_13);
    e.model.swallow("/ap_config");
    let delta = MatrixChange {
        control_domains: vec![Apqi(4)],
        ..Default::default()
    };
    let out = change(&e.root, &e.model, &e.lock, U, &delta, true).unwrap();
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("accepted the ap_config write, but mdev")),
        "{:?}",
        out.warnings
    );
    // applied: no such warning
    let out = change(&e.root, &e.model, &e.lock, U, &delta, true).unwrap();
    assert!(
        !out.warnings.iter().any(|w| w.contains("ap_config")),
        "{:?}",
        out.warnings
    );
    assert!(e.model.state().mdevs[U].adm.test(4));
}

#[test]
fn before_6_0_force_lets_the_kernel_decide_whether_a_guest_holds_the_mdev() {
    let delta = |force| MatrixChange {
        domains: vec![Apqi(16)],
        force,
        ..Default::default()
    };
    for kvm_attached in [false, true] {
        let e = env();
        e.model.with_state(|s| {
            s.generation = Generation::V5_15;
            s.aqmask.clear(16);
            s.queues.push(Apqn::new(5, 16));
            // QEMU has the group open; a KVM is attached only once the device is opened
            s.mdevs.get_mut(U).unwrap().in_use = kvm_attached;
        });
        e.tree
            .write("proc/4242/comm", "qemu-system-s39\n")
            .write(
                "proc/4242/cmdline",
                "qemu-system-s390x\0-name\0guest=web1\0",
            )
            .link("proc/4242/fd/9", "/dev/vfio/0");
        let err = change(&e.root, &e.model, &e.lock, U, &delta(false), true).unwrap_err();
        assert!(err.to_string().contains("guest web1"), "{err}");
        assert!(err.hint().unwrap().contains("--force"), "{err}");
        assert!(e.model.writes().is_empty());
        let forced = change(&e.root, &e.model, &e.lock, U, &delta(true), true);
        if kvm_attached {
            let err = kernel(forced.unwrap_err());
            assert_eq!(err.errno, Some(libc::EBUSY));
            assert!(
                err.message.contains("vfio_ap before Linux 6.0"),
                "{}",
                err.message
            );
            assert!(
                err.message.contains("nothing was changed"),
                "{}",
                err.message
            );
        } else {
            forced.unwrap();
            assert!(e.model.state().mdevs[U].aqm.test(16));
        }
    }
}
