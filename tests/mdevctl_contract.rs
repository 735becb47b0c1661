//! Contract tests against the real peers: Debian's mdevctl 1.2.0 (`apt-get install
//! mdevctl`) with s390-tools' ap-check (built from the 2.43.0 tarball by
//! scripts/build-s390-tools.sh) installed as its callout. mdevctl has no root override, so
//! it runs in a private mount namespace with a host tree's `sys/`, `etc/mdevctl.d`,
//! `etc/udev/rules.d` and `run/lock` bind-mounted over the machine's (testkit::namespace);
//! aplaunch works on the same tree through `--host-root`.
//!
//! Each test skips with a printed reason where no mount namespace can be made or a peer is
//! missing, and fails instead with CI=true.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use testkit::hosttree::HostTree;

/// The active, autostart mdev of the example host (adapter 5, domains 4 and 0xab).
const U: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";
const V: &str = "11111111-2222-4333-8444-555555555555";
const W: &str = "22222222-3333-4444-8555-666666666666";

/// The peers, or `None` (skipped, or a panic with CI=true).
struct Peers {
    mdevctl: PathBuf,
    ap_check: PathBuf,
}

fn peers(test: &str) -> Option<Peers> {
    let ap_check = testkit::s390_tools::tool(test, "ap-check")?;
    let mdevctl = ["/usr/sbin/mdevctl", "/usr/bin/mdevctl"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    let Some(mdevctl) = mdevctl else {
        let why = "mdevctl is not installed (scripts/ci-setup.sh installs Debian's mdevctl)";
        if testkit::ci() {
            panic!("{test}: {why}, and CI=true forbids skipping");
        }
        eprintln!("{test}: SKIPPED: {why}");
        return None;
    };
    if !testkit::namespace::available(test) {
        return None;
    }
    Some(Peers { mdevctl, ap_check })
}

/// A copy of the example host prepared for mdevctl: its script directories (mdevctl 1.2.0
/// refuses to run without them) with ap-check as the one callout, where mdevctl 1.2.0 looks
/// for callouts (`/etc/mdevctl.d/scripts.d/callouts`, src/environment.rs).
fn tree(peers: &Peers) -> HostTree {
    let tree = HostTree::from_example("z16-se");
    tree.mkdir("etc/mdevctl.d/scripts.d/notifiers");
    tree.mkdir("etc/mdevctl.d/scripts.d/callouts");
    tree.mkdir("etc/udev/rules.d");
    std::fs::copy(
        &peers.ap_check,
        tree.at("etc/mdevctl.d/scripts.d/callouts/ap-check"),
    )
    .unwrap();
    tree
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `mdevctl ARGS` in the namespace on `tree`.
fn mdevctl(peers: &Peers, tree: &HostTree, args: &[&str]) -> Output {
    testkit::namespace::run(tree.path(), &peers.mdevctl, args, b"")
}

/// `mdevctl define` of `json` for `uuid` (parent `matrix`), through ap-check.
fn mdevctl_define(peers: &Peers, tree: &HostTree, uuid: &str, json: &str) -> Output {
    let file = tree.at("input.json");
    std::fs::write(&file, json).unwrap();
    mdevctl(
        peers,
        tree,
        &[
            "define",
            "-u",
            uuid,
            "-p",
            "matrix",
            "--jsonfile",
            file.to_str().unwrap(),
        ],
    )
}

/// `aplaunch --host-root TREE --json ARGS`: exit code and document.
fn aplaunch(tree: &HostTree, args: &[&str]) -> (i32, Value) {
    let cache = tree.at("cache");
    let out = testkit::cli::command_with_cache(&cache)
        .arg("--host-root")
        .arg(tree.path())
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", text(&out)));
    (out.status.code().unwrap(), doc)
}

/// What `mdevctl list --defined --dumpjson` shows for parent `matrix`: UUID -> definition.
fn mdevctl_defined(peers: &Peers, tree: &HostTree) -> Vec<(String, Value)> {
    let out = mdevctl(peers, tree, &["list", "--defined", "--dumpjson"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut defs = Vec::new();
    for parent in doc.as_array().unwrap() {
        for child in parent["matrix"].as_array().into_iter().flatten() {
            let (uuid, def) = child.as_object().unwrap().iter().next().unwrap();
            defs.push((uuid.clone(), def.clone()));
        }
    }
    defs.sort_by(|a, b| a.0.cmp(&b.0));
    defs
}

/// What aplaunch reads: UUID -> (mdev_type, start, attrs as mdevctl shows them).
fn aplaunch_defined(tree: &HostTree) -> Vec<(String, Value)> {
    let (code, doc) = aplaunch(tree, &["ap", "list"]);
    assert_eq!(code, 0, "{doc}");
    let mut defs: Vec<(String, Value)> = doc["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let attrs: Vec<Value> = d["attrs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| serde_json::json!({ kv[0].as_str().unwrap(): kv[1] }))
                .collect();
            (
                d["uuid"].as_str().unwrap().to_string(),
                serde_json::json!({"mdev_type": d["mdev_type"], "start": d["start"], "attrs": attrs}),
            )
        })
        .collect();
    defs.sort_by(|a, b| a.0.cmp(&b.0));
    defs
}

/// The attribute files the kernel gives a new mdev, so that `aplaunch ap mdev create`
/// can run on a tree (no kernel makes them there).
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

fn definition(tree: &HostTree, uuid: &str) -> String {
    tree.read(&format!("etc/mdevctl.d/matrix/{uuid}"))
}

#[test]
fn definitions_aplaunch_writes_are_the_bytes_mdevctl_writes() {
    let test = "definitions_aplaunch_writes_are_the_bytes_mdevctl_writes";
    let Some(peers) = peers(test) else { return };
    let tree = tree(&peers);
    kernel_made_mdev(&tree, V);
    // aplaunch defines V (03.00ab is free for vfio_ap now and at boot)
    let (code, doc) = aplaunch(
        &tree,
        &[
            "ap", "mdev", "create", "--uuid", V, "-a", "3", "-d", "0xab", "-c", "0xab", "--define",
            "--auto",
        ],
    );
    assert_eq!(code, 0, "{doc}");
    let ours = definition(&tree, V);
    // mdevctl lists exactly what aplaunch reads
    assert_eq!(mdevctl_defined(&peers, &tree), aplaunch_defined(&tree));
    // mdevctl's own writer (modify with no change, through ap-check) rewrites the same bytes
    let out = mdevctl(&peers, &tree, &["modify", "-u", V]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(definition(&tree, V), ours);
    // and the other way: what mdevctl define writes, aplaunch reads and would write alike
    let hand = r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[{"assign_adapter":"0x03"},{"assign_domain":"4"}]}"#;
    let out = mdevctl_define(&peers, &tree, W, hand);
    assert!(out.status.success(), "{}", text(&out));
    let theirs = definition(&tree, W);
    assert_eq!(mdevctl_defined(&peers, &tree), aplaunch_defined(&tree));
    let parsed = vfio::mdevctl::Definition::parse(W, &theirs).unwrap();
    assert_eq!(parsed.to_json(), theirs);
    assert_eq!(parsed.adapters, vec![vfio::Apid(3)]);
}

#[test]
fn define_edits_are_the_edits_mdevctl_modify_makes() {
    let test = "define_edits_are_the_edits_mdevctl_modify_makes";
    let Some(peers) = peers(test) else { return };
    // one definition, hand-written with hex spellings and a domain only it has, in two
    // copies: mdevctl edits one, aplaunch the other, and the files must be the same bytes
    let hand = r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[{"assign_adapter":"0x03"},{"assign_domain":"0x04"},{"assign_domain":"0x20"},{"assign_control_domain":"0x04"}]}"#;
    let theirs = tree(&peers);
    let ours = tree(&peers);
    for t in [&theirs, &ours] {
        let out = mdevctl_define(&peers, t, V, hand);
        assert!(out.status.success(), "{}", text(&out));
    }
    // assign: mdevctl modify --addattr appends
    let out = mdevctl(
        &peers,
        &theirs,
        &[
            "modify",
            "-u",
            V,
            "--addattr",
            "assign_domain",
            "--value",
            "171",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let (code, doc) = aplaunch(
        &ours,
        &["ap", "mdev", "assign", V, "-d", "0xab", "--define"],
    );
    assert_eq!(code, 0, "{doc}");
    assert_eq!(definition(&ours, V), definition(&theirs, V));
    // unassign: mdevctl modify --delattr --index deletes the entry that assigns it
    let out = mdevctl(
        &peers,
        &theirs,
        &["modify", "-u", V, "--delattr", "--index", "1"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let (code, doc) = aplaunch(&ours, &["ap", "mdev", "unassign", V, "-d", "4", "--define"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(definition(&ours, V), definition(&theirs, V));
    assert!(definition(&ours, V).contains("\"0x20\""));
}

#[test]
fn every_definition_file_mdevctl_reads_aplaunch_reads_alike() {
    let test = "every_definition_file_mdevctl_reads_aplaunch_reads_alike";
    let Some(peers) = peers(test) else { return };
    let tree = tree(&peers);
    let body = |start: &str| {
        format!(
            r#"{{"mdev_type":"vfio_ap-passthrough","start":{start},"attrs":[{{"assign_adapter":"3"}}]}}"#
        )
    };
    for (name, text) in [
        ("AAAAAAAA-0000-4000-8000-000000000001", body("\"auto\"")),
        ("aaaaaaaa000040008000000000000002", body("\"manual\"")),
        ("{aaaaaaaa-0000-4000-8000-000000000003}", body("\"manual\"")),
        (
            "urn:uuid:aaaaaaaa-0000-4000-8000-000000000004",
            body("\"manual\""),
        ),
        ("{aaaaaaaa000040008000000000000005}", body("\"auto\"")),
        (
            "URN:UUID:aaaaaaaa-0000-4000-8000-000000000006",
            body("\"auto\""),
        ),
        ("aaaaaaaa-0000-4000-8000-00000000007", body("\"auto\"")),
        ("notes.txt", body("\"auto\"")),
        ("aaaaaaaa-0000-4000-8000-000000000008", body("\"AUTO\"")),
        (
            "aaaaaaaa-0000-4000-8000-000000000009",
            r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":null}"#.into(),
        ),
        (
            "aaaaaaaa-0000-4000-8000-00000000000a",
            r#"{"mdev_type":"vfio_ap-passthrough","start":true}"#.into(),
        ),
        (
            "aaaaaaaa-0000-4000-8000-00000000000b",
            r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","atrs":[],"comment":"x"}"#.into(),
        ),
    ] {
        tree.write(&format!("etc/mdevctl.d/matrix/{name}"), text);
    }
    let theirs = mdevctl_defined(&peers, &tree);
    assert_eq!(theirs, aplaunch_defined(&tree));
    // the example's own definition and 1-4, 8-b; not 5-7 nor notes.txt
    let uuids: Vec<&str> = theirs.iter().map(|(u, _)| &u[34..]).collect();
    assert_eq!(
        uuids,
        ["04", "01", "02", "03", "04", "08", "09", "0a", "0b"],
        "{theirs:?}"
    );
}

#[test]
fn a_new_definition_gets_the_mode_mdevctl_gives_it() {
    let test = "a_new_definition_gets_the_mode_mdevctl_gives_it";
    let Some(peers) = peers(test) else { return };
    for umask in ["077", "022"] {
        let tree = tree(&peers);
        let json = r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[]}"#;
        std::fs::write(tree.at("input.json"), json).unwrap();
        let input = tree.at("input.json");
        let script = format!(
            "umask {umask}; exec \"$0\" define -u {W} -p matrix --jsonfile {}",
            input.display()
        );
        let out = testkit::namespace::run(
            tree.path(),
            Path::new("sh"),
            &["-c", &script, peers.mdevctl.to_str().unwrap()],
            b"",
        );
        assert!(out.status.success(), "{}", text(&out));
        kernel_made_mdev(&tree, V);
        let mut cmd = testkit::cli::command_with_cache(&tree.at("cache"));
        cmd.arg("--host-root").arg(tree.path()).args([
            "ap", "mdev", "create", "--uuid", V, "-a", "3", "-d", "171", "--define",
        ]);
        let mask: libc::mode_t = u32::from_str_radix(umask, 8).unwrap() as libc::mode_t;
        unsafe {
            use std::os::unix::process::CommandExt;
            // only umask(2), which is async-signal-safe, between fork and exec
            cmd.pre_exec(move || {
                libc::umask(mask);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let mode = |u: &str| {
            std::fs::metadata(tree.at(&format!("etc/mdevctl.d/matrix/{u}")))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(V), mode(W), "umask {umask}");
        assert_eq!(mode(V), 0o666 & !u32::from_str_radix(umask, 8).unwrap());
    }
}

#[test]
fn ap_check_and_aplaunch_refuse_the_same_autostart_definitions() {
    let test = "ap_check_and_aplaunch_refuse_the_same_autostart_definitions";
    let Some(peers) = peers(test) else { return };
    // (what, definition, refused at all, what ap-check says)
    let auto = |attrs: &str| {
        format!(r#"{{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{attrs}]}}"#)
    };
    let cases = [
        // 05.0004 is in U's autostart definition
        (
            "an APQN of another autostart definition",
            auto(r#"{"assign_adapter":"5"},{"assign_domain":"4"}"#),
            true,
            "is defined for autostart by",
        ),
        // 03.0004: apmask and aqmask keep it for the host, and no udev rule changes that
        (
            "an APQN the masks at boot keep for the host",
            auto(r#"{"assign_adapter":"3"},{"assign_domain":"4"}"#),
            true,
            "persistent ap bus mask",
        ),
        (
            "free APQNs",
            auto(r#"{"assign_adapter":"3"},{"assign_domain":"171"}"#),
            false,
            "",
        ),
        (
            "an overlap, but manual",
            r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[{"assign_adapter":"5"},{"assign_domain":"4"}]}"#.to_string(),
            false,
            "",
        ),
    ];
    for (what, json, refused, says) in &cases {
        let tree = tree(&peers);
        let out = mdevctl_define(&peers, &tree, V, json);
        assert_eq!(
            !out.status.success(),
            *refused,
            "ap-check, {what}: {}",
            text(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "ap-check, {what}: {}",
            text(&out)
        );
        // aplaunch on an identical tree: the same definition through `ap mdev assign
        // --define` of an mdev that is only defined (manual, empty), then made autostart
        let tree = self::tree(&peers);
        let def: Value = serde_json::from_str(json).unwrap();
        let mut args = vec!["ap", "mdev", "assign", V, "--define"];
        let mut ids = Vec::new();
        for a in def["attrs"].as_array().unwrap() {
            let (k, v) = a.as_object().unwrap().iter().next().unwrap();
            let flag = if k == "assign_adapter" { "-a" } else { "-d" };
            ids.push((flag, v.as_str().unwrap().to_string()));
        }
        for (flag, v) in &ids {
            args.push(flag);
            args.push(v);
        }
        tree.write(
            &format!("etc/mdevctl.d/matrix/{V}"),
            format!(
                r#"{{"mdev_type":"vfio_ap-passthrough","start":"{}","attrs":[]}}"#,
                def["start"].as_str().unwrap()
            ),
        );
        let (code, doc) = aplaunch(&tree, &args);
        if *refused {
            assert_eq!(code, 1, "aplaunch, {what}: {doc}");
            assert!(
                ["conflict", "persistent-masks"].contains(&doc["error"]["kind"].as_str().unwrap()),
                "aplaunch, {what}: {doc}"
            );
        } else {
            assert_eq!(code, 0, "aplaunch, {what}: {doc}");
        }
    }
}

#[test]
fn ap_config_in_a_definition_counts_for_ap_check_and_for_aplaunch() {
    let test = "ap_config_in_a_definition_counts_for_ap_check_and_for_aplaunch";
    let Some(peers) = peers(test) else { return };
    let hex = |bits: &[u8]| vfio::Mask::from_bits(bits.iter().copied()).to_kernel_hex();
    // W holds 03.00ab through ap_config alone, to start at boot
    let w = format!(
        r#"{{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{{"ap_config":"{},{},{}"}}]}}"#,
        hex(&[3]),
        hex(&[171]),
        hex(&[])
    );
    let tree = tree(&peers);
    let out = mdevctl_define(&peers, &tree, W, &w);
    assert!(out.status.success(), "{}", text(&out));
    // ap-check refuses a second autostart definition of 03.00ab
    let v = r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"3"},{"assign_domain":"171"}]}"#;
    let out = mdevctl_define(&peers, &tree, V, v);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("3.171 is defined for autostart by {W}")),
        "{}",
        text(&out)
    );
    // and so does aplaunch
    let (code, doc) = aplaunch(
        &tree,
        &[
            "ap", "mdev", "create", "--uuid", V, "-a", "3", "-d", "171", "--define", "--auto",
        ],
    );
    assert_eq!(code, 1, "{doc}");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains(W),
        "{doc}"
    );
}

#[test]
fn persistent_masks_aplaunch_writes_are_the_ones_ap_check_enforces() {
    let test = "persistent_masks_aplaunch_writes_are_the_ones_ap_check_enforces";
    let Some(peers) = peers(test) else { return };
    let tree = tree(&peers);
    // aplaunch reserves domain 0xab for the host at boot (chzdev's rule)
    let (code, doc) = aplaunch(&tree, &["ap", "masks", "--persistent", "--aqmask=+171"]);
    assert_eq!(code, 0, "{doc}");
    let v = r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"3"},{"assign_domain":"171"}]}"#;
    let out = mdevctl_define(&peers, &tree, V, v);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("3.171 is not defined for vfio_ap-passthrough use by the persistent"),
        "{}",
        text(&out)
    );
    let (code, doc) = aplaunch(
        &tree,
        &[
            "ap", "mdev", "create", "--uuid", V, "-a", "3", "-d", "171", "--define", "--auto",
        ],
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["kind"], "persistent-masks", "{doc}");
}

#[test]
fn mdevctl_waits_while_aplaunch_holds_the_lock_and_never_stalls_after_it() {
    let test = "mdevctl_waits_while_aplaunch_holds_the_lock_and_never_stalls_after_it";
    let Some(peers) = peers(test) else { return };
    let tree = tree(&peers);
    // an aplaunch change ran: nothing of its lock is left for ap-check to wait on
    let (code, doc) = aplaunch(&tree, &["ap", "mdev", "unassign", U, "-c", "171"]);
    assert_eq!(code, 0, "{doc}");
    assert!(!tree.at("run/lock/s390apconfig.lock").exists());
    let json = r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[]}"#;
    let out = mdevctl_define(&peers, &tree, V, json);
    assert!(out.status.success(), "{}", text(&out));
    // aplaunch holds the lock (as `ap mdev ...` does while it changes things): mdevctl
    // define, through ap-check, waits and writes nothing until it is released
    let root = host::HostRoot::open(tree.path()).unwrap();
    let held = vfio::lock::ApLock::acquire(&root, std::time::Duration::ZERO).unwrap();
    std::fs::write(tree.at("input.json"), json).unwrap();
    let input = tree.at("input.json");
    let mut define = testkit::namespace::command(
        tree.path(),
        &peers.mdevctl,
        &[
            "define",
            "-u",
            W,
            "-p",
            "matrix",
            "--jsonfile",
            input.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        define.try_wait().unwrap().is_none(),
        "mdevctl define did not wait for the lock aplaunch holds"
    );
    assert!(!tree.at(&format!("etc/mdevctl.d/matrix/{W}")).exists());
    drop(held);
    let out = define.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(tree.at(&format!("etc/mdevctl.d/matrix/{W}")).exists());
    assert!(!tree.at("run/lock/s390apconfig.lock").exists());
}

#[test]
fn an_id_a_later_unassign_takes_away_still_counts_for_both() {
    let test = "an_id_a_later_unassign_takes_away_still_counts_for_both";
    let Some(peers) = peers(test) else { return };
    // V (autostart) assigns 05.0004, U's, and takes domain 4 away again: the kernel would
    // build 05.0020 only, but ap-check skips unassign_* and counts 05.0004
    let v = r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"5"},{"assign_domain":"4"},{"unassign_domain":"4"}]}"#;
    let theirs = tree(&peers);
    let ours = tree(&peers);
    for t in [&theirs, &ours] {
        t.write(&format!("etc/mdevctl.d/matrix/{V}"), v);
    }
    // the same edit, adding domain 0x20: ap-check (through mdevctl modify) refuses it
    let out = mdevctl(
        &peers,
        &theirs,
        &[
            "modify",
            "-u",
            V,
            "--addattr",
            "assign_domain",
            "--value",
            "32",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("5.4 is defined for autostart by {U}")),
        "{}",
        text(&out)
    );
    assert_eq!(definition(&theirs, V), v);
    // and so does aplaunch, naming U, and the file stays as it was
    let (code, doc) = aplaunch(&ours, &["ap", "mdev", "assign", V, "-d", "32", "--define"]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["kind"], "conflict", "{doc}");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains(U),
        "{doc}"
    );
    assert_eq!(definition(&ours, V), v);
    // a new autostart definition of a free APQN, 03.00ab, beside one that assigns it and
    // takes the domain away again: ap-check refuses it, and so does aplaunch
    const X: &str = "33333333-4444-4555-8666-777777777777";
    let x = r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"3"},{"assign_domain":"171"},{"unassign_domain":"171"}]}"#;
    for t in [&theirs, &ours] {
        t.write(&format!("etc/mdevctl.d/matrix/{X}"), x);
    }
    let w = r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"3"},{"assign_domain":"171"}]}"#;
    let out = mdevctl_define(&peers, &theirs, W, w);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("3.171 is defined for autostart by {X}")),
        "{}",
        text(&out)
    );
    kernel_made_mdev(&ours, W);
    let (code, doc) = aplaunch(
        &ours,
        &[
            "ap", "mdev", "create", "--uuid", W, "-a", "3", "-d", "171", "--define", "--auto",
        ],
    );
    assert_eq!(code, 1, "{doc}");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains(X),
        "{doc}"
    );
}

#[test]
fn aplaunch_waits_while_ap_check_holds_the_lock_for_mdevctl() {
    let test = "aplaunch_waits_while_ap_check_holds_the_lock_for_mdevctl";
    let Some(peers) = peers(test) else { return };
    let tree = tree(&peers);
    std::fs::write(
        tree.at("input.json"),
        r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[]}"#,
    )
    .unwrap();
    // mdevctl define between its callouts: ap-check's pre call has taken the lock for its
    // parent (this shell, standing in for mdevctl), the post call releases it
    let script = format!(
        "ap=/etc/mdevctl.d/scripts.d/callouts/ap-check; \
         \"$ap\" -t vfio_ap-passthrough -e pre -a define -s none -u {V} -p matrix < {input} || exit 1; \
         echo held; read _; \
         \"$ap\" -t vfio_ap-passthrough -e post -a define -s success -u {V} -p matrix < {input}",
        input = tree.at("input.json").display()
    );
    let mut mdevctl = testkit::namespace::command(tree.path(), Path::new("sh"), &["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(mdevctl.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "held\n");
    // aplaunch waits its bound and fails naming the holder: the shell ap-check locked for
    let (code, doc) = aplaunch(
        &tree,
        &[
            "ap",
            "mdev",
            "unassign",
            U,
            "-c",
            "171",
            "--lock-timeout",
            "1",
        ],
    );
    assert_eq!(code, 3, "{doc}");
    assert_eq!(doc["error"]["kind"], "lock", "{doc}");
    // unshare execs the shell, which execs the script's shell: one PID throughout
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&mdevctl.id().to_string()), "{msg}");
    let before = tree.read(&format!("sys/devices/vfio_ap/matrix/{U}/ap_config"));
    // released by ap-check's post call: aplaunch goes ahead
    std::io::Write::write_all(mdevctl.stdin.as_mut().unwrap(), b"\n").unwrap();
    let out = mdevctl.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!tree.at("run/lock/s390apconfig.lock").exists());
    let (code, doc) = aplaunch(&tree, &["ap", "mdev", "unassign", U, "-c", "171"]);
    assert_eq!(code, 0, "{doc}");
    assert_ne!(
        tree.read(&format!("sys/devices/vfio_ap/matrix/{U}/ap_config")),
        before
    );
}
