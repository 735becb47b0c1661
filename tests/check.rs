//! `aplaunch check` against host trees in every state that matters.

use serde_json::Value;
use testkit::cli::aplaunch;
use testkit::hosttree::{example_host, HostTree};

/// Runs `check --json` on a tree; returns the exit code and the document.
fn check_json(root: &std::path::Path, extra: &[&str]) -> (i32, Value) {
    let out = aplaunch()
        .arg("--host-root")
        .arg(root)
        .args(["check", "--json"])
        .args(extra)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap(), doc)
}

fn status<'a>(doc: &'a Value, id: &str) -> &'a str {
    find(doc, id)["status"].as_str().unwrap()
}

fn find<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {doc}"))
}

/// Asserts a check's status, that its message contains `needle`, and that warn/fail carry a hint.
fn expect(doc: &Value, id: &str, want: &str, needle: &str) {
    let c = find(doc, id);
    assert_eq!(c["status"], want, "{id}: {c}");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.contains(needle),
        "{id}: message {message:?} lacks {needle:?}"
    );
    if want == "warn" || want == "fail" {
        assert!(
            c["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{id} has no hint: {c}"
        );
    }
}

const PV_IDS: [&str; 8] = [
    "facility-158",
    "uv-sysfs",
    "prot-virt",
    "kvm",
    "uv-limits",
    "uv-se-hdr",
    "uv-host-keys",
    "vfio-ap-module",
];

#[test]
fn the_example_host_passes_everything() {
    let (code, doc) = check_json(&example_host("z16-se"), &[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["ok"], true);
    let ids: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, PV_IDS);
    for id in PV_IDS {
        assert_eq!(status(&doc, id), "pass", "{id}: {doc}");
    }
    expect(
        &doc,
        "uv-host-keys",
        "pass",
        "415c25a5d19c381e619733e1c1b7fbd88bdd1c31d882d5ade04b97043c5010f0",
    );
    expect(&doc, "uv-limits", "pass", "max_cpus 257");
    expect(
        &doc,
        "prot-virt",
        "pass",
        "/sys/firmware/uv/prot_virt_host is 1",
    );
    expect(&doc, "kvm", "pass", "KVM_CAP_S390_PROTECTED (180) = 1");
    expect(&doc, "uv-se-hdr", "pass", "0x100");
}

#[test]
fn human_output_is_an_aligned_table_without_colour_when_not_a_terminal() {
    let out = aplaunch()
        .env_remove("NO_COLOR")
        .arg("--host-root")
        .arg(example_host("z16-se"))
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "colour on a pipe: {text:?}");
    assert!(
        text.starts_with("pass  facility-158    /proc/cpuinfo lists facility 158"),
        "{text}"
    );
    assert!(
        text.contains("\npass  vfio-ap-module  /sys/devices/vfio_ap/matrix exists"),
        "{text}"
    );
}

#[test]
fn no_facility_158() {
    let tree = HostTree::from_example("z16-se");
    tree.facilities(&[0, 1, 2, 12, 15, 65, 161]);
    tree.remove("sys/firmware/uv");
    let (code, doc) = check_json(tree.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(doc["ok"], false);
    expect(&doc, "facility-158", "fail", "facility 158");
    expect(&doc, "uv-sysfs", "fail", "/sys/firmware/uv does not exist");
    for id in ["uv-limits", "uv-se-hdr", "uv-host-keys"] {
        assert_eq!(status(&doc, id), "skip", "{id}");
    }
}

#[test]
fn not_an_s390x_host() {
    let tree = HostTree::from_example("z16-se");
    tree.write(
        "proc/cpuinfo",
        "processor\t: 0\nflags\t\t: fpu vme de pse\n",
    );
    let (_, doc) = check_json(tree.path(), &[]);
    expect(&doc, "facility-158", "fail", "no 'facilities' line");
}

#[test]
fn uv_tree_missing_with_facility_present() {
    let tree = HostTree::from_example("z16-se");
    tree.remove("sys/firmware/uv");
    let (code, doc) = check_json(tree.path(), &[]);
    assert_eq!(code, 1);
    expect(&doc, "facility-158", "pass", "158");
    expect(&doc, "uv-sysfs", "fail", "does not exist");
    expect(&doc, "prot-virt", "fail", "no /sys/firmware/uv");
}

#[test]
fn prot_virt_off_and_not_requested() {
    let tree = HostTree::from_example("z16-se");
    tree.write("sys/firmware/uv/prot_virt_host", "0\n");
    tree.write(
        "proc/cmdline",
        "root=/dev/dasda1 prot_virt crashkernel=196M\n",
    );
    let (code, doc) = check_json(tree.path(), &[]);
    assert_eq!(code, 1);
    expect(
        &doc,
        "prot-virt",
        "fail",
        "prot_virt_host is 0; /proc/cmdline has no prot_virt= parameter",
    );
    assert!(find(&doc, "prot-virt")["hint"]
        .as_str()
        .unwrap()
        .contains("add prot_virt=1"));
}

#[test]
fn prot_virt_off_although_requested() {
    let tree = HostTree::from_example("z16-se");
    tree.write("sys/firmware/uv/prot_virt_host", "0\n");
    let (_, doc) = check_json(tree.path(), &[]);
    expect(
        &doc,
        "prot-virt",
        "fail",
        "although /proc/cmdline sets prot_virt=1: the kernel turned PV host support off",
    );
    let hint = find(&doc, "prot-virt")["hint"].as_str().unwrap();
    assert!(
        hint.contains("guest") && hint.contains("kdump") && hint.contains("donate"),
        "{hint}"
    );
}

#[test]
fn a_later_prot_virt_0_does_not_clear_an_earlier_1() {
    // arch/s390/boot/ipl_parm.c only sets prot_virt_host: "last one wins" would blame the 0
    let tree = HostTree::from_example("z16-se");
    tree.write("sys/firmware/uv/prot_virt_host", "0\n");
    tree.write("proc/cmdline", "root=/dev/dasda1 prot_virt=1 prot_virt=0\n");
    let (_, doc) = check_json(tree.path(), &[]);
    expect(
        &doc,
        "prot-virt",
        "fail",
        "although /proc/cmdline sets prot_virt=1 (the later prot_virt=0 does not clear it: the boot parser only sets the flag): the kernel turned PV host support off",
    );
}

#[test]
fn prot_virt_disabled_or_invalid_on_the_command_line() {
    let tree = HostTree::from_example("z16-se");
    tree.remove("sys/firmware/uv/prot_virt_host");
    tree.write("proc/cmdline", "prot_virt=off\n");
    let (_, doc) = check_json(tree.path(), &[]);
    expect(
        &doc,
        "prot-virt",
        "fail",
        "prot_virt_host does not exist; /proc/cmdline sets prot_virt=off and no true value, so it stays off (the boot parser only ever sets the flag)",
    );
    tree.write("proc/cmdline", "prot_virt=maybe\n");
    let (_, doc) = check_json(tree.path(), &[]);
    expect(
        &doc,
        "prot-virt",
        "fail",
        "prot_virt=maybe, a value the kernel ignores",
    );
}

#[test]
fn old_kernel_without_keys() {
    let tree = HostTree::from_example("z16-se");
    tree.remove("sys/firmware/uv/keys");
    let (code, doc) = check_json(tree.path(), &[]);
    assert_eq!(code, 0, "a warning does not fail: {doc}");
    expect(&doc, "uv-host-keys", "warn", "keys does not exist");
    assert!(find(&doc, "uv-host-keys")["hint"]
        .as_str()
        .unwrap()
        .contains("6.13"));
}

#[test]
fn no_ap_feature_for_secure_guests() {
    let tree = HostTree::from_example("z16-se");
    tree.write(
        "sys/firmware/uv/query/feature_indications",
        "c000000000000000\n",
    );
    let (code, doc) = check_json(
        tree.path(),
        &["--mdev", "62177883-f1bb-47f0-914d-32a22e3a8804"],
    );
    assert_eq!(code, 1);
    expect(
        &doc,
        "uv-ap",
        "fail",
        "bit 4 (AP for secure guests) is not set",
    );
    let hint = find(&doc, "uv-ap")["hint"].as_str().unwrap();
    assert!(
        hint.contains("needs z16 or newer firmware and kernel 6.6+"),
        "{hint}"
    );
}

#[test]
fn ap_without_interrupts_is_a_warning() {
    let tree = HostTree::from_example("z16-se");
    tree.write(
        "sys/firmware/uv/query/feature_indications",
        "f800000000000000\n",
    );
    let (_, doc) = check_json(
        tree.path(),
        &["--mdev", "62177883-f1bb-47f0-914d-32a22e3a8804"],
    );
    expect(&doc, "uv-ap", "warn", "no AP interrupts (bit 5)");
}

#[test]
fn uv_ap_only_with_an_mdev() {
    let (_, doc) = check_json(&example_host("z16-se"), &[]);
    assert!(doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != "uv-ap"));
    let (_, doc) = check_json(
        &example_host("z16-se"),
        &["--mdev", "62177883-f1bb-47f0-914d-32a22e3a8804"],
    );
    expect(&doc, "uv-ap", "pass", "fc00000000000000");
}

#[test]
fn vfio_ap_not_loaded() {
    let tree = HostTree::from_example("z16-se");
    tree.remove("sys/devices/vfio_ap");
    let (code, doc) = check_json(tree.path(), &[]);
    assert_eq!(code, 1);
    expect(&doc, "vfio-ap-module", "fail", "not loaded");
    assert!(find(&doc, "vfio-ap-module")["hint"]
        .as_str()
        .unwrap()
        .contains("modprobe vfio_ap"));
}

#[test]
fn smp_above_the_ultravisor_limit() {
    let (code, doc) = check_json(&example_host("z16-se"), &["--smp", "258"]);
    assert_eq!(code, 1);
    expect(
        &doc,
        "uv-limits",
        "fail",
        "--smp 258 exceeds the ultravisor's max_cpus 257",
    );
    let (code, doc) = check_json(&example_host("z16-se"), &["--smp", "257"]);
    assert_eq!(code, 0);
    expect(&doc, "uv-limits", "pass", "--smp 257 fits");
}

#[test]
fn unsupported_header_version() {
    let tree = HostTree::from_example("z16-se");
    tree.write(
        "sys/firmware/uv/query/supp_se_hdr_ver",
        "4000000000000000\n",
    );
    let (_, doc) = check_json(tree.path(), &[]);
    expect(
        &doc,
        "uv-se-hdr",
        "fail",
        "supp_se_hdr_ver 4000000000000000 does not include SE header version 0x100",
    );
}

#[test]
fn kvm_without_pv_capability_and_without_node() {
    let tree = HostTree::from_example("z16-se");
    tree.write(
        "dev/kvm",
        "aplaunch snapshot of /dev/kvm: KVM_CAP_S390_PROTECTED=0\n",
    );
    let (_, doc) = check_json(tree.path(), &[]);
    expect(
        &doc,
        "kvm",
        "fail",
        "= 0 (recorded by aplaunch host snapshot)",
    );
    tree.write("dev/kvm", "");
    let (_, doc) = check_json(tree.path(), &[]);
    expect(&doc, "kvm", "skip", "not a KVM device node");
    tree.remove("dev/kvm");
    let (_, doc) = check_json(tree.path(), &[]);
    expect(&doc, "kvm", "fail", "/dev/kvm does not exist");
}

#[test]
fn garbage_in_sysfs_files_is_named_never_a_panic() {
    let cases: [(&str, &str, &str, &str); 7] = [
        (
            "sys/firmware/uv/prot_virt_host",
            "yes\n",
            "prot-virt",
            "prot_virt_host: expected a decimal number, found \"yes\"",
        ),
        (
            "sys/firmware/uv/query/max_cpus",
            "lots\n",
            "uv-limits",
            "max_cpus: expected a decimal number, found \"lots\"",
        ),
        (
            "sys/firmware/uv/query/supp_se_hdr_ver",
            "0x8000\n",
            "uv-se-hdr",
            "found \"0x8000\"",
        ),
        (
            "sys/firmware/uv/keys/host_key",
            "abc\n",
            "uv-host-keys",
            "host_key: expected 64 hex digits",
        ),
        (
            "sys/firmware/uv/keys/all",
            "zz\n",
            "uv-host-keys",
            "keys/all: expected lines of 64 hex digits",
        ),
        (
            "sys/firmware/uv/query/feature_indications",
            "\u{1}\u{2}binary\n",
            "uv-ap",
            "feature_indications: expected a hexadecimal number",
        ),
        (
            "proc/cpuinfo",
            "facilities      : 1 2 x158\n",
            "facility-158",
            "\"x158\"",
        ),
    ];
    for (file, content, id, needle) in cases {
        let tree = HostTree::from_example("z16-se");
        tree.write(file, content);
        let (code, doc) = check_json(
            tree.path(),
            &["--mdev", "62177883-f1bb-47f0-914d-32a22e3a8804"],
        );
        assert_eq!(code, 1, "{file}: {doc}");
        expect(&doc, id, "fail", needle);
    }
}

#[test]
fn unreadable_files_are_skipped_with_the_reason() {
    // Root reads any file regardless of mode; a directory where a file belongs cannot be read by anyone.
    let tree = HostTree::from_example("z16-se");
    tree.remove("sys/firmware/uv/query/max_cpus");
    tree.mkdir("sys/firmware/uv/query/max_cpus");
    tree.remove("proc/cpuinfo");
    tree.mkdir("proc/cpuinfo");
    let (_, doc) = check_json(tree.path(), &[]);
    expect(&doc, "uv-limits", "skip", "max_cpus");
    expect(&doc, "facility-158", "skip", "proc/cpuinfo");
    assert!(find(&doc, "facility-158")["message"]
        .as_str()
        .unwrap()
        .contains("cannot read"));
}

#[test]
fn host_root_errors_are_usage_errors_naming_the_root() {
    let out = aplaunch()
        .args(["--host-root", "/nonexistent/host", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("host root /nonexistent/host does not exist"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");

    let file = tempfile::NamedTempFile::new().unwrap();
    let out = aplaunch()
        .arg("--host-root")
        .arg(file.path())
        .args(["check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["kind"], "usage");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is not a directory"));
    assert!(doc["error"]["hint"].is_string());

    // The environment variable works the same way.
    let out = aplaunch()
        .env("APLAUNCH_HOST_ROOT", "/nonexistent/env")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = aplaunch()
        .env("APLAUNCH_HOST_ROOT", example_host("z16-se"))
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn usage_errors_with_json_are_one_document() {
    let out = aplaunch()
        .args(["check", "--json", "--smp", "many"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "usage");
    assert!(doc["error"]["message"].as_str().unwrap().contains("many"));
}
