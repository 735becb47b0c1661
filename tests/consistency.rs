//! Every command speaks the same contract: one JSON document with `--json` (also on
//! failure, with the same error shape), the documented exit codes, `-v` tracing of what is
//! read, `--quiet`, and colour only on a terminal without NO_COLOR.

use serde_json::Value;
use testkit::cli::aplaunch;
use testkit::hosttree::{example_host, HostTree};

const MDEV: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

/// Runs a command with `--json` and returns (exit code, the one document on stdout).
fn json(root: &std::path::Path, args: &[&str]) -> (i32, Value) {
    let out = aplaunch()
        .arg("--host-root")
        .arg(root)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("{args:?}: stdout is not exactly one JSON document ({e}):\n{stdout}")
    });
    (out.status.code().unwrap(), doc)
}

fn assert_error_shape(args: &[&str], doc: &Value) {
    assert_eq!(doc["ok"], false, "{args:?}: {doc}");
    let err = &doc["error"];
    for key in ["kind", "message"] {
        assert!(
            err[key].as_str().is_some_and(|s| !s.is_empty()),
            "{args:?}: no error.{key}: {doc}"
        );
    }
}

#[test]
fn failures_of_every_command_are_one_json_document_with_the_error_shape() {
    let host = HostTree::from_example("z16-se");
    let missing = host.path().join("missing.img");
    let missing = missing.to_str().unwrap();
    let sock = host.path().join("no.sock");
    let sock = sock.to_str().unwrap();
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["check", "--smp", "x"], 2),
        // a malformed UUID is malformed input everywhere
        (vec!["check", "--mdev", "not-a-uuid"], 2),
        (vec!["ap", "check", "not-a-uuid"], 2),
        (vec!["ap", "mdev", "remove", "not-a-uuid"], 2),
        (
            vec!["ap", "mdev", "assign", "not-a-uuid", "--domain", "1"],
            2,
        ),
        (
            vec!["ap", "mdev", "unassign", "not-a-uuid", "--domain", "1"],
            2,
        ),
        (vec!["ap", "mdev", "show", "not-a-uuid"], 2),
        (vec!["ap", "mdev", "remove", "not-a-uuid", "--unplug"], 2),
        (vec!["ap", "mdev", "remove", "not-a-uuid", "--undefine"], 2),
        (
            vec![
                "ap",
                "mdev",
                "create",
                "--uuid",
                "not-a-uuid",
                "--adapter",
                "3",
                "--domain",
                "171",
            ],
            2,
        ),
        (
            vec!["qmp", "hotplug", "--qmp", sock, "--mdev", "not-a-uuid"],
            2,
        ),
        (
            vec!["qmp", "unplug", "--qmp", sock, "--mdev", "not-a-uuid"],
            2,
        ),
        (
            vec![
                "launch",
                "--mdev",
                "not-a-uuid",
                "--pv-image",
                missing,
                "--dry-run",
            ],
            2,
        ),
        (
            vec![
                "--mdev",
                MDEV,
                "--pv-image",
                missing,
                "--no-pv",
                "--dry-run",
            ],
            2,
        ),
        (vec!["image", "inspect", missing], 2),
        (vec!["image", "verify", missing], 2),
        (
            vec!["ap", "mdev", "show", "00000000-0000-4000-8000-000000000000"],
            1,
        ),
        (vec!["ap", "masks", "--apmask", "0xzz"], 2),
        (
            vec!["ap", "mdev", "create", "--adapter", "300", "--domain", "1"],
            2,
        ),
        (vec!["qmp", "list", "--qmp", sock], 3),
        (vec!["qmp", "unplug", "--qmp", sock, "--id", "x"], 3),
        (vec!["qmp", "hotplug", "--qmp", sock, "--mdev", "bogus"], 2),
        (
            vec![
                "host",
                "snapshot",
                "--output",
                host.path().to_str().unwrap(),
            ],
            1,
        ),
        (vec!["explain", "nothing known"], 1),
        (vec!["completions", "nosuchshell"], 2),
        (vec!["no-such-command"], 2),
    ];
    for (args, code) in cases {
        let (got, doc) = json(host.path(), &args);
        assert_error_shape(&args, &doc);
        assert_eq!(got, code, "{args:?}: {doc}");
    }
}

#[test]
fn successes_are_one_json_document_too() {
    let host = example_host("z16-se");
    let img = testkit::hosttree::workspace_root().join("examples/images/demo-se.img");
    let img = img.to_str().unwrap();
    for args in [
        vec!["check"],
        vec!["check", "--mdev", MDEV, "--pv-image", img],
        vec!["image", "inspect", img],
        vec!["image", "verify", img],
        vec!["ap", "list"],
        vec!["ap", "matrix"],
        vec!["ap", "masks"],
        vec!["ap", "check", MDEV],
        vec!["ap", "mdev", "show", MDEV],
        vec!["explain", "header rc 108 rrc 5"],
    ] {
        let (code, doc) = json(&host, &args);
        assert!(doc.is_object(), "{args:?}: {doc}");
        assert_ne!(doc["ok"], Value::Null, "{args:?} has no ok: {doc}");
        assert!(code == 0 || code == 1, "{args:?}: exit {code}");
        assert_eq!(
            doc["ok"] == true,
            code == 0,
            "{args:?}: ok and exit code disagree: {doc}"
        );
    }
}

#[test]
fn verbose_traces_what_is_read_and_quiet_prints_nothing() {
    let out = aplaunch()
        .arg("--host-root")
        .arg(example_host("z16-se"))
        .args(["-vv", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("sys/firmware/uv/prot_virt_host") && err.contains("read"),
        "{err}"
    );
    let out = aplaunch()
        .arg("--host-root")
        .arg(example_host("z16-se"))
        .args(["check"])
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let tree = HostTree::from_example("z16-se");
    tree.write("sys/firmware/uv/prot_virt_host", "0\n");
    let out = aplaunch()
        .arg("--host-root")
        .arg(tree.path())
        .args(["--quiet", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "quiet keeps the exit code");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs `aplaunch ... check` on a pseudo-terminal (util-linux `script`) and returns what it printed.
fn on_a_terminal(no_color: Option<&str>) -> Option<String> {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` is not installed");
        return None;
    }
    let scratch = tempfile::tempdir().unwrap();
    let bin = testkit::cli::runnable_path(
        &assert_cmd::cargo::cargo_bin("aplaunch"),
        &scratch.path().join("aplaunch"),
    );
    let command = format!(
        "{} --host-root {} check",
        bin.display(),
        example_host("z16-se").display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"])
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    Some(String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned())
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let Some(coloured) = on_a_terminal(None) else {
        return;
    };
    assert!(
        coloured.contains("\x1b[32mpass"),
        "no colour on a terminal: {coloured:?}"
    );
    let plain = on_a_terminal(Some("1")).unwrap();
    assert!(
        plain.contains("pass  facility-158") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    // An empty NO_COLOR does not count (no-color.org).
    assert!(on_a_terminal(Some("")).unwrap().contains("\x1b[32m"));
}

/// Start-up: the binary links no OpenSSL. libcrypto is opened on the first hash
/// (`pv::digest`), so commands that hash nothing never load or relocate it. `readelf -d`
/// reads the dynamic section of either target's binary.
#[test]
fn the_binary_does_not_link_libcrypto_and_still_hashes() {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_aplaunch"));
    let out = match std::process::Command::new("readelf")
        .arg("-d")
        .arg(&exe)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            assert!(!testkit::ci(), "readelf (binutils) is needed: {e}");
            eprintln!("SKIPPED: readelf is not installed ({e})");
            return;
        }
    };
    let dynamic = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(!needed.is_empty(), "no NEEDED entries read: {dynamic}");
    assert!(
        needed
            .iter()
            .all(|l| !l.contains("libcrypto") && !l.contains("libssl")),
        "{needed:#?}"
    );
    // and the image checks still hash: the demo image verifies on the example host
    let demo = testkit::hosttree::workspace_root().join("examples/images/demo-se.img");
    aplaunch()
        .arg("--host-root")
        .arg(example_host("z16-se"))
        .args(["image", "verify", "--no-cache"])
        .arg(&demo)
        .assert()
        .success();
}
