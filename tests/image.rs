//! End-to-end tests of `aplaunch image inspect|verify` and `check --pv-image`.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::PathBuf;
use std::time::Duration;
use testkit::hosttree::{example_host, workspace_root};
use testkit::image::{broken, build, Defect, ImageSpec, OTHER_HOST_KEY};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("aplaunch").unwrap();
        c.env("APLAUNCH_CACHE_DIR", self.dir.path().join("cache"))
            .env("NO_COLOR", "1")
            .env_remove("APLAUNCH_HOST_ROOT")
            .arg("--host-root")
            .arg(example_host("z16-se"))
            .timeout(Duration::from_secs(60));
        c
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

fn demo() -> PathBuf {
    workspace_root().join("examples/images/demo-se.img")
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).expect("exactly one JSON document")
}

#[test]
fn the_demo_image_verifies_on_the_example_host_and_is_then_cached() {
    let env = Env::new();
    env.cmd()
        .args(["image", "verify"])
        .arg(demo())
        .assert()
        .success()
        .stdout(predicate::str::contains("pass  image-host-key"))
        .stdout(predicate::str::contains(
            "recomputed from the file match the header",
        ));
    env.cmd()
        .args(["image", "verify"])
        .arg(demo())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "verified before; the file is unchanged",
        ));
    env.cmd()
        .args(["image", "verify", "--no-cache"])
        .arg(demo())
        .assert()
        .success()
        .stdout(predicate::str::contains("recomputed from the file"));
    env.cmd()
        .args(["image", "verify", "--no-integrity"])
        .arg(demo())
        .assert()
        .success()
        .stdout(predicate::str::contains("skip  image-integrity"));
}

#[test]
fn verify_json_is_one_document_with_the_five_checks() {
    let env = Env::new();
    let out = env
        .cmd()
        .args(["--json", "image", "verify"])
        .arg(demo())
        .assert()
        .success();
    let v = json(&out.get_output().stdout);
    assert_eq!(v["ok"], true);
    let ids: Vec<_> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "image-format",
            "image-version",
            "image-pcf",
            "image-host-key",
            "image-integrity"
        ]
    );
}

#[test]
fn inspect_shows_the_parsed_image() {
    let env = Env::new();
    env.cmd()
        .args(["image", "inspect"])
        .arg(demo())
        .assert()
        .success()
        .stdout(predicate::str::contains("pvimg layout"))
        .stdout(predicate::str::contains(
            "415c25a5d19c381e619733e1c1b7fbd88bdd1c31d882d5ade04b97043c5010f0",
        ))
        .stdout(predicate::str::contains(
            "pcf             0xe0 (pckmo-dea-tdea, pckmo-aes, pckmo-ecc)",
        ))
        .stdout(predicate::str::contains(
            "IPIB            at 0x18000, 3 components",
        ));
    let out = env
        .cmd()
        .args(["--json", "image", "inspect"])
        .arg(demo())
        .assert()
        .success();
    let v = json(&out.get_output().stdout);
    assert_eq!(v["image"]["header"]["nep"], 3);
    assert_eq!(v["image"]["layout"]["kind"], "pvimg");
    assert_eq!(v["image"]["ipib"]["components"][0]["addr"], 0x15000);
    let bad = env.file("bad.img", &broken(Defect::IpibPbt).bytes);
    env.cmd()
        .args(["image", "inspect"])
        .arg(&bad)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("fail  ipib-pbt"));
}

#[test]
fn an_image_for_other_host_keys_fails_and_host_keys_files_decide() {
    let env = Env::new();
    let spec = ImageSpec {
        key_hashes: vec![OTHER_HOST_KEY],
        ..ImageSpec::default()
    };
    let other = env.file("other.img", &build(&spec).bytes);
    env.cmd()
        .args(["image", "verify"])
        .arg(&other)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "this image was built for other host keys; this host's key hash is 415c25a5",
        ));
    let pem = workspace_root().join("pv/tests/assets/host.pem.crt");
    env.cmd()
        .args(["image", "verify", "--host-keys"])
        .arg(&pem)
        .arg(demo())
        .assert()
        .success()
        .stdout(predicate::str::contains("matches host-key document 1"));
    env.cmd()
        .args(["image", "verify", "--host-keys"])
        .arg(&pem)
        .arg(&other)
        .assert()
        .code(1);
    let all = env.file("all", format!("{}\n", "11".repeat(32)).as_bytes());
    env.cmd()
        .args(["image", "verify", "--host-keys"])
        .arg(&all)
        .arg(&other)
        .assert()
        .success();
    let junk = env.file("junk", b"nonsense\n");
    env.cmd()
        .args(["image", "verify", "--host-keys"])
        .arg(&junk)
        .arg(demo())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 1"));
    env.cmd()
        .args(["image", "verify", "--host-keys", "/nonexistent/keys"])
        .arg(demo())
        .assert()
        .code(2);
}

#[test]
fn bad_inputs_get_their_own_message_and_exit_code() {
    let env = Env::new();
    let dir = env.dir.path();
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let link = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("gone"), &link).unwrap();
    let cases: Vec<(PathBuf, i32, &str)> = vec![
        (
            env.file("empty.img", b""),
            1,
            "not a Secure Execution image: the file is empty",
        ),
        (
            env.file("vmlinux", &broken(Defect::PlainKernel).bytes),
            1,
            "no IBMSecEx header",
        ),
        (
            env.file("th.img", &broken(Defect::TruncatedHeaderFixed).bytes),
            1,
            "truncated in the SE header",
        ),
        (
            env.file("huge.img", &broken(Defect::AbsurdSehs).bytes),
            1,
            "more than 1 MiB",
        ),
        (dir.to_path_buf(), 2, "is a directory"),
        (fifo, 2, "is a FIFO"),
        (PathBuf::from("/dev/null"), 2, "character device"),
        (link, 2, "dangling symbolic link"),
        (dir.join("missing.img"), 2, "does not exist"),
        (dir.join("empty.img/below"), 3, "cannot read"),
    ];
    for (path, code, text) in cases {
        for sub in ["verify", "inspect"] {
            env.cmd()
                .args(["image", sub])
                .arg(&path)
                .assert()
                .code(code)
                .stderr(predicate::str::contains(text));
        }
        let out = env
            .cmd()
            .args(["--json", "image", "verify"])
            .arg(&path)
            .assert()
            .code(code);
        let v = json(&out.get_output().stdout);
        assert_eq!(v["ok"], false);
        assert!(v["error"]["message"].as_str().unwrap().contains(text));
    }
}

#[test]
fn corrupted_images_fail_verify_with_the_digest_named() {
    let env = Env::new();
    for (d, text) in [
        (Defect::PldMismatch, "PLD (page contents) differs"),
        (Defect::TldMismatch, "TLD (page tweaks) differs"),
        (Defect::TruncatedIpib, "truncated in the IPIB"),
        (Defect::SehsMismatch, "does not match 0x1a0 + 80*nks"),
    ] {
        let p = env.file(&format!("{d:?}.img"), &broken(d).bytes);
        env.cmd()
            .args(["image", "verify"])
            .arg(&p)
            .assert()
            .code(1)
            .stdout(predicate::str::contains(text))
            .stdout(predicate::str::contains("check(s) failed"));
    }
}

#[test]
fn check_pv_image_adds_the_image_checks() {
    let env = Env::new();
    let out = env
        .cmd()
        .args(["--json", "check", "--pv-image"])
        .arg(demo())
        .assert()
        .success();
    let v = json(&out.get_output().stdout);
    let ids: Vec<_> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    for id in [
        "image-format",
        "image-version",
        "image-pcf",
        "image-host-key",
        "image-integrity",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} missing: {ids:?}");
    }
    let p = env.file("bad.img", &broken(Defect::PldMismatch).bytes);
    env.cmd()
        .args(["check", "--pv-image"])
        .arg(&p)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("fail  image-integrity"));
    env.cmd()
        .args(["check", "--pv-image", "/nonexistent.img"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("/nonexistent.img: does not exist"));
}

#[test]
fn the_demo_image_is_small() {
    let len = std::fs::metadata(demo()).unwrap().len();
    assert!(len < 100 * 1024, "{len}");
}
