//! `aplaunch explain`, `aplaunch man` and `aplaunch completions`.

use serde_json::Value;
use testkit::cli::aplaunch;

#[test]
fn explain_an_ultravisor_line() {
    let out = aplaunch()
        .args(["explain", "qemu-system-s390x: KVM PV command 2 (KVM_PV_SET_SEC_PARMS) failed: header rc 108 rrc 5 IOCTL rc: -22"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("ultravisor rc 0x108 rrc 0x5 during KVM_PV_SET_SEC_PARMS"),
        "{text}"
    );
    assert!(text.contains("\n  fix: rebuild the image"), "{text}");
}

#[test]
fn explain_reads_standard_input_and_answers_json() {
    let log = "LOADPARM=[        ]\nqemu-kvm: KVM PV command 4 (KVM_PV_VERIFY) failed: header rc 102 rrc 1a\nIOCTL rc: -22\nProtected boot has failed: 0xa02\n";
    let out = aplaunch()
        .args(["explain", "--json"])
        .write_stdin(log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    let ids: Vec<&str> = doc["explanations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["uv-rc", "protected-boot-failed"]);
    assert!(doc["explanations"][0]["title"]
        .as_str()
        .unwrap()
        .contains("ALD"));
}

#[test]
fn explain_unknown_text_is_a_negative_verdict() {
    let out = aplaunch()
        .args(["explain", "all", "is", "well"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("no explanation is known"));
    let out = aplaunch()
        .args(["--json", "explain", "nothing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "unknown-text");
    assert!(doc["error"]["hint"].is_string());
}

#[test]
fn explain_vfio_ap_kernel_message() {
    let out = aplaunch()
        .args(["explain", "vfio_ap_mdev: Userspace may not assign queue 05.00ab to mdev: already assigned to 62177883-f1bb-47f0-914d-32a22e3a8804"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(
            "APQN 05.00ab (5.171) already belongs to mdev 62177883-f1bb-47f0-914d-32a22e3a8804"
        ),
        "{text}"
    );
}

#[test]
fn man_pages_generate() {
    let out = aplaunch().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH aplaunch 1"), "{page}");
    assert!(page.contains("\\-\\-host\\-root"));

    let dir = tempfile::tempdir().unwrap();
    let out = aplaunch()
        .args(["man", "--output"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    for page in [
        "aplaunch.1",
        "aplaunch-check.1",
        "aplaunch-explain.1",
        "aplaunch-host-snapshot.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
}

#[test]
fn completions_generate_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef aplaunch"),
        ("fish", "complete -c aplaunch"),
    ] {
        let out = aplaunch().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("snapshot"), "{shell} completes subcommands");
    }
    let out = aplaunch().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
