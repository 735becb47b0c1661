//! `aplaunch ap ...` end to end, on the example host and on changed copies of it.

use serde_json::Value;
use std::path::Path;
use testkit::cli::aplaunch;
use testkit::hosttree::{example_host, workspace_root, HostTree};

const U: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";
const V: &str = "11111111-2222-4333-8444-555555555555";

/// Runs a command on a host root; returns exit code, stdout, stderr.
fn run(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = aplaunch()
        .arg("--host-root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(root: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(root, &all);
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout} / {stderr}"));
    (code, doc)
}

#[test]
fn matrix_on_the_example_host_matches_the_golden_picture() {
    let (code, stdout, _) = run(&example_host("z16-se"), &["ap", "matrix"]);
    assert_eq!(code, 0);
    let golden =
        std::fs::read_to_string(workspace_root().join("tests/golden/ap_matrix_z16-se.txt"))
            .unwrap();
    assert_eq!(stdout, golden);
}

#[test]
fn matrix_json_gives_the_same_data() {
    let (code, doc) = json(&example_host("z16-se"), &["ap", "matrix"]);
    assert_eq!(code, 0);
    let m = &doc["matrix"];
    assert_eq!(m["adapters"], serde_json::json!([3, 5]));
    assert_eq!(m["domains"], serde_json::json!([4, 171]));
    let cells = m["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    assert_eq!(cells[0]["apqn"], "03.0004");
    assert_eq!(cells[0]["state"], "host");
    assert_eq!(cells[1]["state"], "free");
    assert_eq!(cells[2]["state"], "assigned");
    assert_eq!(cells[2]["owners"][0], U);
    assert_eq!(m["legend"][0]["letter"], "A");
    assert_eq!(m["legend"][0]["autostart"], true);
}

#[test]
fn list_shows_cards_queues_and_mdevs() {
    let root = example_host("z16-se");
    let (code, stdout, _) = run(&root, &["ap", "list"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("03       CEX8C   14      yes     cex4card")
            || stdout.contains("03    CEX8C"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("05.00ab  vfio_ap    assigned    {U}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("03.0004  cex4queue  online      -"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{U}  active   auto")), "{stdout}");
    let (code, doc) = json(&root, &["ap", "list"]);
    assert_eq!(code, 0);
    assert_eq!(doc["queues"].as_array().unwrap().len(), 4);
    assert_eq!(doc["queues"][2]["apqn"], "05.0004");
    assert_eq!(doc["queues"][2]["status"], "assigned");
    assert_eq!(doc["queues"][2]["mdevs"][0], U);
    assert_eq!(doc["queues"][0]["host_reserved"], true);
    assert_eq!(
        doc["mdevs"][0]["matrix"],
        serde_json::json!(["05.0004", "05.00ab"])
    );
    assert_eq!(doc["mdevs"][0]["vfio_cdev"], "vfio0");
    assert_eq!(
        doc["mdevs"][0]["sysfs_path"],
        format!("/sys/bus/mdev/devices/{U}")
    );
    assert_eq!(doc["bus"]["apmask"], format!("0xfb{}", "f".repeat(62)));
    assert_eq!(doc["definitions"][0]["start"], "auto");
}

#[test]
fn list_shows_defined_but_inactive_mdevs() {
    let tree = HostTree::from_example("z16-se");
    tree.write(
        &format!("etc/mdevctl.d/matrix/{V}"),
        r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[{"assign_adapter":"3"},{"assign_domain":"171"}]}"#,
    );
    let (_, stdout, _) = run(tree.path(), &["ap", "list"]);
    assert!(
        stdout.contains(&format!("{V}  defined  manual 1")),
        "{stdout}"
    );
}

#[test]
fn check_passes_on_the_example_and_fails_on_a_conflict() {
    let tree = HostTree::from_example("z16-se");
    let (code, doc) = json(tree.path(), &["ap", "check", U]);
    assert_eq!(code, 0, "{doc}");
    let ids: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "vfio-ap-module",
            "mdev-exists",
            "mdev-type",
            "mdev-matrix",
            "mdev-queues",
            "mdev-conflicts",
            "mdev-masks",
            "mdev-free",
            "mdev-persistent"
        ]
    );
    tree.write(
        &format!("etc/mdevctl.d/matrix/{V}"),
        r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"5"},{"assign_domain":"4"}]}"#,
    );
    let (code, stdout, _) = run(tree.path(), &["ap", "check"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "APQN 05.0004 (5.4) is also in the autostart definition of mdev {V}"
        )),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("mdev {V}\n")), "{stdout}");
    assert!(stdout.contains("check(s) failed"), "{stdout}");
    let (code, doc) = json(tree.path(), &["ap", "check"]);
    assert_eq!(code, 1);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["mdevs"].as_array().unwrap().len(), 2);
    // check --mdev has the same checks after vfio-ap-module
    let (code, doc) = json(tree.path(), &["check", "--mdev", U]);
    assert_eq!(code, 1);
    let checks = doc["checks"].as_array().unwrap();
    let at = checks
        .iter()
        .position(|c| c["id"] == "vfio-ap-module")
        .unwrap();
    assert_eq!(checks[at + 1]["id"], "mdev-exists");
    assert_eq!(checks[at + 5]["id"], "mdev-conflicts");
    assert_eq!(checks[at + 5]["status"], "fail");
}

#[test]
fn masks_show_preview_apply_and_refuse() {
    let tree = HostTree::from_example("z16-se");
    let (code, stdout, _) = run(tree.path(), &["ap", "masks"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("clear: 5\n"), "{stdout}");
    assert!(stdout.contains("clear: 171\n"), "{stdout}");
    // handing 05.* back to the host is refused, naming the mdev
    let (code, doc) = json(tree.path(), &["ap", "masks", "--apmask", "+5"]);
    assert_eq!(code, 1);
    assert_eq!(doc["error"]["kind"], "conflict");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("APQN 05.0004 (5.4) of mdev {U}")),
        "{doc}"
    );
    // a dry run writes nothing
    let before = tree.read("sys/bus/ap/apmask");
    let (code, stdout, _) = run(tree.path(), &["ap", "masks", "--apmask=-3", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("to vfio_ap:          03.0004 (3.4)"),
        "{stdout}"
    );
    assert_eq!(tree.read("sys/bus/ap/apmask"), before);
    // applied: the absolute 0x+64 hex form, in one write
    let (code, doc) = json(tree.path(), &["ap", "masks", "--apmask", "-3"]);
    assert_eq!(code, 0, "{doc}");
    let want = format!("0xeb{}", "f".repeat(62));
    assert_eq!(tree.read("sys/bus/ap/apmask"), format!("{want}\n"));
    assert_eq!(
        doc["change"]["writes"][0],
        format!("sys/bus/ap/apmask={want}")
    );
    // chzdev list and the kernel's hex give the same mask
    let (code, _, _) = run(tree.path(), &["ap", "masks", "--aqmask", "0-170,172-255"]);
    assert_eq!(code, 0);
    // malformed specs are usage errors
    for bad in ["+256", "fb", "0x14", "+08", "0x1g", ""] {
        let (code, doc) = json(tree.path(), &["ap", "masks", "--apmask", bad]);
        assert_eq!(code, 2, "{bad}: {doc}");
        assert_eq!(doc["error"]["kind"], "usage");
    }
}

fn kernel_made_mdev(tree: &HostTree, uuid: &str) {
    for f in [
        "assign_adapter",
        "assign_domain",
        "assign_control_domain",
        "remove",
    ] {
        tree.write(&format!("sys/devices/vfio_ap/matrix/{uuid}/{f}"), "");
    }
}

#[test]
fn mdev_create_writes_and_defines() {
    let tree = HostTree::from_example("z16-se");
    kernel_made_mdev(&tree, V);
    let (code, doc) = json(
        tree.path(),
        &[
            "ap",
            "mdev",
            "create",
            "--uuid",
            V,
            "--adapter",
            "3",
            "--domain",
            "0xab",
            "--control-domain",
            "171",
            "--define",
            "--auto",
        ],
    );
    assert_eq!(code, 0, "{doc}");
    let t = "sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create";
    assert_eq!(tree.read(t), V);
    let dir = format!("sys/devices/vfio_ap/matrix/{V}");
    assert_eq!(tree.read(&format!("{dir}/assign_adapter")), "3");
    assert_eq!(tree.read(&format!("{dir}/assign_domain")), "171");
    assert_eq!(tree.read(&format!("{dir}/assign_control_domain")), "171");
    assert_eq!(tree.read(&format!("{dir}/remove")), "");
    let writes: Vec<&str> = doc["result"]["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        writes,
        [
            format!("{t}={V}"),
            format!("{dir}/assign_adapter=3"),
            format!("{dir}/assign_domain=171"),
            format!("{dir}/assign_control_domain=171"),
        ]
    );
    let def = tree.read(&format!("etc/mdevctl.d/matrix/{V}"));
    assert!(
        def.starts_with("{\n  \"mdev_type\": \"vfio_ap-passthrough\",\n  \"start\": \"auto\","),
        "{def}"
    );
    assert!(def.contains("\"assign_domain\": \"171\""));
    // again: the definition exists and --force was not given
    let (code, doc) = json(
        tree.path(),
        &[
            "ap", "mdev", "create", "--uuid", V, "-a", "3", "-d", "171", "--define",
        ],
    );
    assert_eq!(code, 1, "{doc}");
    assert!(doc["error"]["hint"].as_str().unwrap().contains("--force"));
}

#[test]
fn mdev_create_refusals_and_usage_errors() {
    let tree = HostTree::from_example("z16-se");
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "create", "--adapter", "5", "--domain", "4"],
    );
    assert_eq!(code, 1);
    assert_eq!(doc["error"]["kind"], "conflict");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("APQN 05.0004 (5.4) already in use by mdev {U}")));
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "create", "--adapter", "3", "--domain", "4"],
    );
    assert_eq!(code, 1);
    assert_eq!(doc["error"]["kind"], "masks");
    assert!(doc["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("aplaunch ap masks --apmask=-3"));
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "create", "--adapter", "08", "--domain", "4"],
    );
    assert_eq!(code, 2, "{doc}");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("octal"),
        "{doc}"
    );
    let (code, _) = json(
        tree.path(),
        &[
            "ap", "mdev", "create", "--uuid", "nope", "-a", "3", "-d", "171",
        ],
    );
    assert_eq!(code, 2);
    // nothing was written
    assert_eq!(
        tree.read("sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create"),
        ""
    );
}

#[test]
fn a_failed_create_removes_the_mdev_again() {
    let tree = HostTree::from_example("z16-se");
    kernel_made_mdev(&tree, V);
    tree.remove(&format!("sys/devices/vfio_ap/matrix/{V}/assign_domain"));
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "create", "--uuid", V, "-a", "3", "-d", "171"],
    );
    assert_eq!(code, 3, "{doc}");
    assert_eq!(doc["error"]["kind"], "kernel");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(msg.contains("assigning domain 0x00ab (171)"), "{msg}");
    assert!(msg.contains("was removed again"), "{msg}");
    assert_eq!(
        tree.read(&format!("sys/devices/vfio_ap/matrix/{V}/remove")),
        "1"
    );
}

#[test]
fn mdev_show_assign_unassign_remove() {
    let tree = HostTree::from_example("z16-se");
    let (code, stdout, _) = run(tree.path(), &["ap", "mdev", "show", U]);
    assert_eq!(code, 0);
    assert!(stdout.contains("guest matrix  05.0004 05.00ab"), "{stdout}");
    assert!(stdout.contains("vfio group    /dev/vfio/0"), "{stdout}");
    let (code, doc) = json(tree.path(), &["ap", "mdev", "show", U]);
    assert_eq!(code, 0);
    assert_eq!(doc["nodes"]["cdev_node"], "/dev/vfio/devices/vfio0");
    // newer kernel: one ap_config write
    let (code, doc) = json(tree.path(), &["ap", "mdev", "unassign", U, "--domain", "4"]);
    assert_eq!(code, 0, "{doc}");
    let want = format!(
        "0x04{z62},0x00{z42}10{z20},0x00{z42}10{z20}\n",
        z62 = "0".repeat(62),
        z42 = "0".repeat(40),
        z20 = "0".repeat(20)
    );
    assert_eq!(
        tree.read(&format!("sys/devices/vfio_ap/matrix/{U}/ap_config")),
        want
    );
    assert!(doc["result"]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("definition"));
    // an mdev that a guest uses is not removed without --force
    tree.write("sys/devices/ap/card05/05.0004/status", "in use\n");
    let (code, doc) = json(tree.path(), &["ap", "mdev", "remove", U]);
    assert_eq!(code, 1);
    assert_eq!(doc["error"]["kind"], "in-use");
    let (code, _) = json(
        tree.path(),
        &["ap", "mdev", "remove", U, "--force", "--undefine"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        tree.read(&format!("sys/devices/vfio_ap/matrix/{U}/remove")),
        "1"
    );
    assert!(!tree.at(&format!("etc/mdevctl.d/matrix/{U}")).exists());
    let (code, doc) = json(tree.path(), &["ap", "mdev", "show", V]);
    assert_eq!(code, 1);
    assert_eq!(doc["error"]["kind"], "no-mdev");
}

#[test]
fn old_kernel_refuses_live_changes() {
    let tree = HostTree::from_example("z16-se");
    tree.write("sys/devices/vfio_ap/matrix/features", "");
    tree.remove(&format!("sys/devices/vfio_ap/matrix/{U}/guest_matrix"));
    tree.remove(&format!("sys/devices/vfio_ap/matrix/{U}/ap_config"));
    tree.write("sys/devices/ap/card05/05.0004/status", "in use\n");
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "assign", U, "--control-domain", "4"],
    );
    assert_eq!(code, 1);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot change a running guest's matrix"),
        "{doc}"
    );
    // not running: one write per id
    tree.write("sys/devices/ap/card05/05.0004/status", "assigned\n");
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "assign", U, "--control-domain", "4"],
    );
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        tree.read(&format!(
            "sys/devices/vfio_ap/matrix/{U}/assign_control_domain"
        )),
        "4"
    );
}

#[test]
fn a_held_lock_times_out_with_exit_3() {
    let tree = HostTree::from_example("z16-se");
    let before = tree.read("sys/bus/ap/apmask");
    // s390-tools' lock: the file exists and holds a live PID (PID 1 of this machine)
    tree.write("run/lock/s390apconfig.lock", "1\n");
    let (code, doc) = json(
        tree.path(),
        &["ap", "masks", "--apmask=-3", "--lock-timeout", "0"],
    );
    assert_eq!(code, 3);
    assert_eq!(doc["error"]["kind"], "lock");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("s390apconfig.lock is held by PID 1"),
        "{doc}"
    );
    assert_eq!(tree.read("sys/bus/ap/apmask"), before);
    assert_eq!(tree.read("run/lock/s390apconfig.lock"), "1\n");
}

#[test]
fn a_lock_file_of_garbage_is_explained_and_left_alone() {
    let tree = HostTree::from_example("z16-se");
    let before = tree.read("sys/bus/ap/apmask");
    tree.write("run/lock/s390apconfig.lock", "\u{1}garbage\u{ff}");
    let (code, doc) = json(
        tree.path(),
        &["ap", "masks", "--apmask=-3", "--lock-timeout", "0"],
    );
    assert_eq!(code, 3, "{doc}");
    assert_eq!(doc["error"]["kind"], "lock");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("names no PID"), "{doc}");
    assert!(message.contains("stale 120 s after"), "{doc}");
    assert_eq!(tree.read("sys/bus/ap/apmask"), before);
    assert_eq!(
        tree.read("run/lock/s390apconfig.lock"),
        "\u{1}garbage\u{ff}"
    );
}

#[test]
fn no_lock_file_is_left_after_a_change() {
    let tree = HostTree::from_example("z16-se");
    let (code, doc) = json(tree.path(), &["ap", "masks", "--apmask=-3"]);
    assert_eq!(code, 0, "{doc}");
    assert!(!tree.at("run/lock/s390apconfig.lock").exists());
    let leftovers: Vec<_> = std::fs::read_dir(tree.at("run/lock"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("s390apconfig"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_host_without_vfio_ap() {
    let tree = HostTree::from_example("z16-se");
    tree.remove("sys/devices/vfio_ap");
    let (code, stdout, _) = run(tree.path(), &["ap", "list"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("vfio_ap is not loaded"), "{stdout}");
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "create", "-a", "3", "-d", "171"],
    );
    assert_eq!(code, 1);
    assert_eq!(doc["error"]["kind"], "vfio-ap-module");
}

#[test]
fn persistent_masks_are_shown_written_and_enforced_for_autostart() {
    let tree = HostTree::from_example("z16-se");
    kernel_made_mdev(&tree, V);
    // no rule: the masks at boot are the active ones
    let (code, doc) = json(tree.path(), &["ap", "masks"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["persistent"]["rule"], Value::Null);
    // reserve domain 0xab for the host at boot, the way chzdev -p does
    let (code, doc) = json(
        tree.path(),
        &["ap", "masks", "--persistent", "--aqmask=+0xab"],
    );
    assert_eq!(code, 0, "{doc}");
    let rule = tree.read("etc/udev/rules.d/41-ap.rules");
    assert!(rule.starts_with("# Generated by chzdev\n"), "{rule}");
    assert!(rule.contains("ATTR{../../bus/ap/aqmask}=\"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"\n"), "{rule}");
    assert!(
        !rule.contains("apmask"),
        "only the mask given is set: {rule}"
    );
    let (code, doc) = json(tree.path(), &["ap", "masks"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["persistent"]["aqmask"], format!("0x{}", "f".repeat(64)));
    assert_eq!(doc["persistent"]["apmask"], Value::Null);
    // the active masks did not change
    assert_eq!(doc["aqmask_ranges"], "0-170,172-255");
    // an autostart definition of 03.00ab would fail at boot: refused, nothing written
    let (code, doc) = json(
        tree.path(),
        &[
            "ap", "mdev", "create", "--uuid", V, "-a", "3", "-d", "0xab", "--define", "--auto",
        ],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["kind"], "persistent-masks");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("03.00ab (3.171)"),
        "{doc}"
    );
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--persistent"),
        "{doc}"
    );
    assert!(!tree.at(&format!("etc/mdevctl.d/matrix/{V}")).exists());
    assert_eq!(
        tree.read("sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create"),
        ""
    );
    // a rule edited by hand to give adapter 5 to the host at boot: the example's autostart
    // mdev now fails mdev-persistent (05.00ab is reserved at boot)
    let full = format!("0x{}", "f".repeat(64));
    tree.write(
        "etc/udev/rules.d/41-ap.rules",
        rule.replace(
            "ATTR{../../bus/ap/aqmask}",
            &format!("ATTR{{../../bus/ap/apmask}}=\"{full}\"\nATTR{{../../bus/ap/aqmask}}"),
        ),
    );
    let (code, doc) = json(tree.path(), &["ap", "check", U]);
    assert_eq!(code, 1, "{doc}");
    let checks = doc["checks"].as_array().unwrap();
    let p = checks
        .iter()
        .find(|c| c["id"] == "mdev-persistent")
        .unwrap();
    assert_eq!(p["status"], "fail", "{p}");
    assert!(
        p["message"].as_str().unwrap().contains("05.00ab (5.171)"),
        "{p}"
    );
}

#[test]
fn persistent_mask_changes_that_hit_autostart_definitions_are_refused() {
    let tree = HostTree::from_example("z16-se");
    // adapter 5 back to the host at boot: 05.0004 and 05.00ab of the autostart mdev
    let (code, doc) = json(tree.path(), &["ap", "masks", "--persistent", "--apmask=+5"]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["kind"], "conflict");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains(U),
        "{doc}"
    );
    assert!(!tree.at("etc/udev/rules.d/41-ap.rules").exists());
}

#[test]
fn a_malformed_udev_rule_is_explained_and_left_alone() {
    let tree = HostTree::from_example("z16-se");
    let bad = "ATTR{../../bus/ap/apmask}=\"0x14\"\n";
    tree.write("etc/udev/rules.d/41-ap.rules", bad);
    for args in [
        &["ap", "masks"][..],
        &["ap", "masks", "--persistent", "--apmask=-1"],
    ] {
        let (code, doc) = json(tree.path(), args);
        assert_eq!(code, 2, "{args:?}: {doc}");
        assert_eq!(doc["error"]["kind"], "malformed");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(message.contains("41-ap.rules: line 1"), "{doc}");
        assert!(message.contains("64 hex digits"), "{doc}");
    }
    assert_eq!(tree.read("etc/udev/rules.d/41-ap.rules"), bad);
}

#[test]
fn define_edits_keep_entries_and_spellings_of_the_definition() {
    let tree = HostTree::from_example("z16-se");
    // a hand-edited definition: hex spellings, and domain 0x20 only for the next start
    let def = format!("etc/mdevctl.d/matrix/{U}");
    tree.write(
        &def,
        r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"0x05"},{"assign_domain":"0x04"},{"assign_domain":"0xab"},{"assign_control_domain":"0xab"},{"assign_domain":"0x20"}]}"#,
    );
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "unassign", U, "--domain", "4", "--define"],
    );
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        tree.read(&def),
        "{\n  \"mdev_type\": \"vfio_ap-passthrough\",\n  \"start\": \"auto\",\n  \"attrs\": [\n    {\n      \"assign_adapter\": \"0x05\"\n    },\n    {\n      \"assign_domain\": \"0xab\"\n    },\n    {\n      \"assign_control_domain\": \"0xab\"\n    },\n    {\n      \"assign_domain\": \"0x20\"\n    }\n  ]\n}"
    );
    // assigning appends one decimal entry (mdevctl modify --addattr), the rest stays
    let before = tree.read(&def);
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "assign", U, "--domain", "4", "--define"],
    );
    assert_eq!(code, 0, "{doc}");
    assert!(tree
        .read(&def)
        .ends_with("{\n      \"assign_domain\": \"4\"\n    }\n  ]\n}"));
    assert!(tree
        .read(&def)
        .starts_with(&before[..before.len() - "\n  ]\n}".len()]));
}

#[test]
fn a_definition_with_unknown_keys_is_not_edited_and_nothing_changes() {
    let tree = HostTree::from_example("z16-se");
    let def = format!("etc/mdevctl.d/matrix/{U}");
    let cfg = format!("sys/devices/vfio_ap/matrix/{U}/ap_config");
    let text =
        r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","atrs":[{"assign_adapter":"5"}]}"#;
    tree.write(&def, text);
    let before = tree.read(&cfg);
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "unassign", U, "--domain", "4", "--define"],
    );
    assert_eq!(code, 2, "{doc}");
    assert_eq!(doc["error"]["kind"], "malformed");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(msg.contains("atrs") && msg.contains(&def), "{msg}");
    assert_eq!(tree.read(&def), text);
    assert_eq!(tree.read(&cfg), before);
    // garbage likewise
    tree.write(&def, "{ not json");
    let (code, doc) = json(
        tree.path(),
        &["ap", "mdev", "assign", U, "--domain", "6", "--define"],
    );
    assert_eq!(code, 2, "{doc}");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not JSON"));
    assert_eq!(tree.read(&def), "{ not json");
    assert_eq!(tree.read(&cfg), before);
    // reading goes on and says what is wrong
    tree.write(&def, text);
    let (code, _, stderr) = run(tree.path(), &["ap", "list"]);
    assert_eq!(code, 0);
    assert!(stderr.contains("keys mdevctl ignores: atrs"), "{stderr}");
}

#[test]
fn an_upper_case_definition_is_listed_edited_and_undefined() {
    let tree = HostTree::from_example("z16-se");
    std::fs::remove_file(tree.at(&format!("etc/mdevctl.d/matrix/{U}"))).unwrap();
    let upper = format!("etc/mdevctl.d/matrix/{}", U.to_uppercase());
    tree.write(
        &upper,
        r#"{"mdev_type":"vfio_ap-passthrough","start":"AUTO","attrs":null}"#,
    );
    let (code, doc) = json(tree.path(), &["ap", "list"]);
    assert_eq!(code, 0);
    let defs = doc["definitions"].as_array().unwrap();
    assert_eq!(defs.len(), 1, "{doc}");
    assert_eq!(defs[0]["uuid"], U);
    assert_eq!(defs[0]["start"], "manual");
    let (code, doc) = json(tree.path(), &["ap", "mdev", "remove", U, "--undefine"]);
    assert_eq!(code, 0, "{doc}");
    assert!(!tree.at(&upper).exists());
}

#[test]
fn a_garbage_definition_of_an_inactive_mdev_can_be_undefined() {
    let tree = HostTree::from_example("z16-se");
    let def = format!("etc/mdevctl.d/matrix/{}", V.to_uppercase());
    tree.write(&def, "{ not json");
    let (code, _, stderr) = run(tree.path(), &["ap", "list"]);
    assert_eq!(code, 0);
    assert!(stderr.contains("not JSON"), "{stderr}");
    let (code, doc) = json(tree.path(), &["ap", "mdev", "remove", V, "--undefine"]);
    assert_eq!(code, 0, "{doc}");
    assert!(!tree.at(&def).exists());
}

#[test]
fn create_define_refuses_over_any_existing_definition_file_before_writing() {
    let tree = HostTree::from_example("z16-se");
    kernel_made_mdev(&tree, V);
    let def = format!("etc/mdevctl.d/matrix/{}", V.to_uppercase());
    tree.write(&def, "{ not json");
    let (code, doc) = json(
        tree.path(),
        &[
            "ap", "mdev", "create", "--uuid", V, "-a", "3", "-d", "171", "--define",
        ],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["kind"], "exists");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&V.to_uppercase()));
    // nothing was written to the kernel
    assert_eq!(
        tree.read(&format!("sys/devices/vfio_ap/matrix/{V}/assign_adapter")),
        ""
    );
    assert_eq!(tree.read(&def), "{ not json");
}
