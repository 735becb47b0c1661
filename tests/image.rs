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
        self.cmd_on(&example_host("z16-se"))
    }
    fn cmd_on(&self, host_root: &std::path::Path) -> Command {
        let mut c = Command::cargo_bin("aplaunch").unwrap();
        c.env("APLAUNCH_CACHE_DIR", self.dir.path().join("cache"))
            .env("NO_COLOR", "1")
            .env_remove("APLAUNCH_HOST_ROOT")
            .arg("--host-root")
            .arg(host_root)
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

// ---- Real images made by IBM's tools (genprotimg 2.35, pvimg 2.43), with s390-tools' own
// reading of each (`pvimg info`) as the oracle. See pv/tests/assets/real-se-images/README.md.

fn real_dir() -> PathBuf {
    workspace_root().join("pv/tests/assets/real-se-images")
}

/// Every real image, by name.
fn real_images() -> Vec<(String, PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir(real_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "img"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    v.sort();
    assert_eq!(v.len(), 6, "three genprotimg and three pvimg images");
    v
}

fn pvimg_info(name: &str) -> serde_json::Value {
    let text = std::fs::read(real_dir().join(format!("{name}.pvimg-info.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(v["data"]["kind"], "se_hdr");
    assert_eq!(
        v["data"]["verified"], true,
        "pvimg authenticated the header"
    );
    v["data"].clone()
}

fn hex_of(v: &serde_json::Value) -> String {
    v.as_str().unwrap().to_string()
}

/// A host tree like the example host whose keys/host_key is `hash`.
fn host_with_key(hash: &str) -> testkit::hosttree::HostTree {
    let tree = testkit::hosttree::HostTree::from_example("z16-se");
    let zero = "0".repeat(64);
    tree.write("sys/firmware/uv/keys/host_key", format!("{hash}\n"))
        .write("sys/firmware/uv/keys/backup_host_key", format!("{zero}\n"))
        .write(
            "sys/firmware/uv/keys/all",
            format!("{hash}\n{}", format!("{zero}\n").repeat(14)),
        );
    tree
}

/// Standard base64 (pvimg info's `cipher_data_b64`), decoded here so that the test does
/// not lean on aplaunch's own decoder.
fn base64(text: &str) -> Vec<u8> {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let vals: Vec<u32> = text
        .bytes()
        .filter(|&c| c != b'=')
        .map(|c| ABC.iter().position(|&a| a == c).unwrap() as u32)
        .collect();
    let mut out = Vec::new();
    for chunk in vals.chunks(4) {
        let acc = chunk
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, v)| a | v << (18 - 6 * i));
        out.extend_from_slice(&acc.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn inspect_json(env: &Env, path: &std::path::Path) -> serde_json::Value {
    let out = env
        .cmd()
        .args(["--json", "image", "inspect"])
        .arg(path)
        .assert();
    json(&out.get_output().stdout)["image"].clone()
}

#[test]
fn inspect_agrees_with_pvimg_info_on_every_real_image() {
    let env = Env::new();
    for (name, path) in real_images() {
        let out = env
            .cmd()
            .args(["--json", "image", "inspect"])
            .arg(&path)
            .assert()
            .success();
        let v = json(&out.get_output().stdout);
        assert_eq!(v["ok"], true, "{name}: {v:#}");
        let img = &v["image"];
        let h = &img["header"];
        let info = pvimg_info(&name);
        let kind = if name.starts_with("gpi235") {
            "genprotimg"
        } else {
            "pvimg"
        };
        assert_eq!(img["layout"]["kind"], kind, "{name}");
        assert_eq!(img["findings"], serde_json::json!([]), "{name}");
        // Each field pvimg info shows, compared with what inspect shows; a field pvimg
        // info has that is not compared here fails the test.
        let data = info.as_object().unwrap();
        for key in data.keys() {
            let (ours, theirs): (serde_json::Value, serde_json::Value) = match key.as_str() {
                "kind" | "verified" => continue,
                "magic_hex" => (serde_json::json!("49424d5365634578"), data[key].clone()),
                "version" => (
                    h["version"].clone(),
                    serde_json::json!(if data[key] == "V1" { 0x100 } else { -1 }),
                ),
                "sehs" | "nks" | "sea" | "nep" => (h[key].clone(), data[key].clone()),
                "iv_hex" => (h["iv"].clone(), data[key].clone()),
                "pcf_hex" => (
                    serde_json::json!(u64::from_str_radix(
                        h["pcf"]["value"].as_str().unwrap().trim_start_matches("0x"),
                        16
                    )
                    .unwrap()),
                    serde_json::json!(u64::from_str_radix(data[key].as_str().unwrap(), 16).unwrap()),
                ),
                "cust_pub_key" => (
                    serde_json::json!(format!(
                        "{}{}",
                        hex_of(&h["customer_key_x"]),
                        hex_of(&h["customer_key_y"])
                    )),
                    data[key]["coord_hex"].clone(),
                ),
                "pld_hex" => (h["pld"].clone(), data[key].clone()),
                "ald_hex" => (h["ald"].clone(), data[key].clone()),
                "tld_hex" => (h["tld"].clone(), data[key].clone()),
                "tag_hex" => (h["tag"].clone(), data[key].clone()),
                "cipher_data_b64" => {
                    let bytes = base64(data[key].as_str().unwrap());
                    assert_eq!(h["encrypted_area_size"], bytes.len(), "{name}");
                    (
                        h["encrypted_area"].clone(),
                        serde_json::json!(hex_string(&bytes)),
                    )
                }
                "keyslots" => {
                    let slots: Vec<_> = data[key]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| serde_json::json!([s["phkh_hex"], s["wrpk_hex"], s["kst_hex"]]))
                        .collect();
                    let ours: Vec<_> = h["key_slots"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| serde_json::json!([s["phkh"], s["wrapped_key"], s["tag"]]))
                        .collect();
                    (serde_json::json!(ours), serde_json::json!(slots))
                }
                other => panic!(
                    "{name}: pvimg info shows {other:?}, which this test does not compare yet"
                ),
            };
            assert_eq!(ours, theirs, "{name}: {key}");
        }
        // The human view shows the tag and the encrypted area's size too.
        env.cmd()
            .args(["image", "inspect"])
            .arg(&path)
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "GCM tag         {}",
                hex_of(&data["tag_hex"])
            )))
            .stdout(predicate::str::contains(
                "encrypted area  128 bytes (sea), 128 bytes stored",
            ));
    }
}

#[test]
fn every_real_image_verifies_fully() {
    let env = Env::new();
    // host2.pem.crt's key hash as s390-tools computed it (second slot of a 2keys image).
    let host2_hash = hex_of(&pvimg_info("pvimg243-2keys")["keyslots"][1]["phkh_hex"]);
    let host2_tree = host_with_key(&host2_hash);
    let host2 = real_dir().join("host2.pem.crt");
    for (name, path) in real_images() {
        // The example host's key is host.pem.crt's, which every image was built for.
        let out = env
            .cmd()
            .args(["--json", "image", "verify", "--no-cache"])
            .arg(&path)
            .assert()
            .success();
        let v = json(&out.get_output().stdout);
        let statuses: Vec<_> = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["status"].clone())
            .collect();
        assert_eq!(
            statuses,
            vec![serde_json::json!("pass"); 5],
            "{name}: {v:#}"
        );
        let integrity = v["checks"][4]["message"].as_str().unwrap();
        assert!(
            integrity.contains("recomputed from the file match the header"),
            "{name}: {integrity}"
        );
        // A host whose key is host2.pem.crt: only the 2keys images were built for it.
        let out = env
            .cmd_on(host2_tree.path())
            .args(["--json", "image", "verify", "--no-cache"])
            .arg(&path)
            .assert();
        let v = json(&out.get_output().stdout);
        let two_keys = name.ends_with("2keys");
        assert_eq!(v["ok"], two_keys, "{name}: {v:#}");
        assert_eq!(
            v["checks"][3]["status"],
            if two_keys { "pass" } else { "fail" },
            "{name}"
        );
        assert_eq!(v["checks"][4]["status"], "pass", "{name}");
        // The same decision from the host-key document itself.
        let out = env
            .cmd()
            .args([
                "--json",
                "image",
                "verify",
                "--no-cache",
                "--no-integrity",
                "--host-keys",
            ])
            .arg(&host2)
            .arg(&path)
            .assert();
        let v = json(&out.get_output().stdout);
        assert_eq!(
            v["checks"][3]["status"],
            if two_keys { "pass" } else { "fail" },
            "{name}"
        );
    }
}

/// A change to an image's bytes.
type Tamper = Box<dyn FnOnce(&mut Vec<u8>)>;

/// Rewrites bytes of a copy of an image.
fn tampered(
    env: &Env,
    path: &std::path::Path,
    name: &str,
    change: impl FnOnce(&mut Vec<u8>),
) -> PathBuf {
    let mut bytes = std::fs::read(path).unwrap();
    change(&mut bytes);
    env.file(name, &bytes)
}

#[test]
fn no_real_image_can_be_tampered_with_and_still_verify() {
    let env = Env::new();
    for (name, path) in real_images() {
        let se = inspect_json(&env, &path);
        let at = |v: &serde_json::Value| v.as_u64().unwrap() as usize;
        let hdr = at(&se["header_offset"]);
        let sehs = at(&se["header"]["sehs"]);
        let ipib_at = at(&se["ipib"]["offset"]);
        let comps: Vec<(usize, usize)> = se["ipib"]["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (at(&c["addr"]), at(&c["len"])))
            .collect();
        let (last_addr, last_len) = *comps.last().unwrap();
        let args_at = at(&se["loader_args"]["offset"]);
        let flip = |at: usize| move |b: &mut Vec<u8>| b[at] ^= 0x01;
        let cut = |at: usize| move |b: &mut Vec<u8>| b.truncate(at);
        // (what, the change, texts the failure must name)
        let cases: Vec<(&str, Tamper, &[&str])> = vec![
            (
                "component-byte",
                Box::new(flip(comps[1].0 + 0x123)),
                &["PLD (page contents) differs", "RC 0x102 RRC 0x1b"],
            ),
            (
                "header-pld",
                Box::new(flip(hdr + 0xE0 + 17)),
                &["PLD (page contents) differs", "RC 0x102 RRC 0x1b"],
            ),
            (
                "header-ald",
                Box::new(flip(hdr + 0x120)),
                &["ALD (page addresses) differs", "RC 0x102 RRC 0x1a"],
            ),
            (
                "header-tld",
                Box::new(flip(hdr + 0x160 + 63)),
                &["TLD (page tweaks) differs", "RC 0x102 RRC 0x1c"],
            ),
            (
                "header-nep",
                Box::new(flip(hdr + 0x37)),
                &["nep", "RC 0x102 RRC 0x1d"],
            ),
            (
                "ipib-tweak",
                Box::new(flip(ipib_at + 0x88 + 7)),
                &["TLD (page tweaks) differs", "RC 0x102 RRC 0x1c"],
            ),
            (
                "ipib-address",
                Box::new(flip(ipib_at + 0x88 + 24 + 8 + 5)),
                &[
                    "component 1",
                    "ALD (page addresses) differs",
                    "RC 0x102 RRC 0x1a",
                ],
            ),
            (
                "ipib-length",
                Box::new(flip(ipib_at + 0x88 + 16 + 5)),
                &["pages", "RC 0x102 RRC 0x1d"],
            ),
            (
                "ipib-type",
                Box::new(flip(ipib_at + 0xC)),
                &[
                    "parameter block type 4 is not 5",
                    "Protected boot setup has failed",
                ],
            ),
            (
                "ipib-count",
                Box::new(flip(ipib_at + 0x77)),
                &["IPIB", "components"],
            ),
            ("loader-args", Box::new(flip(args_at + 23)), &["stage3a"]),
            (
                "cut-in-component",
                Box::new(cut(last_addr + last_len / 2)),
                &["truncated", "RC 0x102"],
            ),
            (
                "cut-in-ipib",
                Box::new(cut(ipib_at + 0x90)),
                &["truncated", "IPIB", "RC 0x1"],
            ),
            (
                "cut-in-header",
                Box::new(cut(hdr + sehs - 8)),
                &["truncated in the SE header", "RC 0x10a"],
            ),
        ];
        for (what, change, texts) in cases {
            let bad = tampered(&env, &path, &format!("{name}-{what}.img"), change);
            let out = env
                .cmd()
                .args(["image", "verify", "--no-cache"])
                .arg(&bad)
                .assert()
                .code(1);
            let o = out.get_output();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            for t in texts {
                assert!(text.contains(t), "{name} {what}: {t:?} missing in\n{text}");
            }
        }
    }
}

#[test]
fn the_test_writer_lays_out_images_as_the_real_tools_do() {
    let env = Env::new();
    for (name, path) in real_images() {
        let real = inspect_json(&env, &path);
        let h = &real["header"];
        let layout = match real["layout"]["kind"].as_str().unwrap() {
            "genprotimg" => testkit::image::Layout::Genprotimg,
            "pvimg" => testkit::image::Layout::Pvimg,
            other => panic!("{name}: layout {other}"),
        };
        let spec = ImageSpec {
            layout,
            pcf: u64::from_str_radix(
                h["pcf"]["value"].as_str().unwrap().trim_start_matches("0x"),
                16,
            )
            .unwrap(),
            key_hashes: h["key_slots"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| testkit::image::hex32(s["phkh"].as_str().unwrap()))
                .collect(),
            components: real["ipib"]["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["len"].as_u64().unwrap())
                .collect(),
            ..ImageSpec::default()
        };
        let made = build(&spec);
        let made_path = env.file(&format!("{name}-writer.img"), &made.bytes);
        let ours = inspect_json(&env, &made_path);
        // Everything but the random contents: placement, lengths, versions, addresses.
        let structure = |v: &serde_json::Value| {
            let mut ipib = v["ipib"].clone();
            for c in ipib["components"].as_array_mut().unwrap() {
                // The component id, not the random rest of the tweak prefix.
                let id = c["tweak_prefix"].as_str().unwrap()[..4].to_string();
                c["tweak_prefix"] = serde_json::json!(id);
            }
            let h = &v["header"];
            serde_json::json!({
                "layout": v["layout"], "size": v["size"], "header_offset": v["header_offset"],
                "loader_args": v["loader_args"], "ipib": ipib, "findings": v["findings"],
                "header": [h["version"], h["sehs"], h["nks"], h["sea"], h["nep"], h["pcf"],
                           h["encrypted_area_size"]],
            })
        };
        assert_eq!(structure(&ours), structure(&real), "{name}");
        // The bytes before stage3a (PSW, pvimg metadata, zeros) are the same, and so are
        // the zeros after stage3a's argument block and after the header.
        let real_bytes = std::fs::read(&path).unwrap();
        assert_eq!(made.bytes[..0x10000], real_bytes[..0x10000], "{name}");
        let zero_ranges = {
            let args_end = real["loader_args"]["offset"].as_u64().unwrap() as usize + 24;
            let hdr_end =
                (real["header_offset"].as_u64().unwrap() + h["sehs"].as_u64().unwrap()) as usize;
            [
                (args_end, args_end.next_multiple_of(0x1000)),
                (hdr_end, hdr_end.next_multiple_of(0x1000)),
            ]
        };
        for (from, to) in zero_ranges {
            assert!(
                real_bytes[from..to].iter().all(|&b| b == 0),
                "{name}: real {from:#x}..{to:#x}"
            );
            assert!(
                made.bytes[from..to].iter().all(|&b| b == 0),
                "{name}: writer {from:#x}..{to:#x}"
            );
        }
    }
}

/// Images made here by the real genprotimg 2.35 (`scripts/make-real-images.sh` builds it):
/// other sizes and flags than the committed ones, its own digests against aplaunch's
/// recomputation, and the backup host key verdict on images genprotimg sealed.
#[test]
fn images_made_by_genprotimg_here_verify_and_get_the_ultravisors_backup_key_verdict() {
    let Some(genprotimg) = testkit::image::genprotimg("images_made_by_genprotimg_here_verify")
    else {
        return;
    };
    let env = Env::new();
    let assets = workspace_root().join("pv/tests/assets");
    let kernel = env.file("kernel", &vec![0x5a; 3 * 1024 * 1024 + 123]);
    let initrd = env.file("initrd", &vec![0xa5; 300 * 1024]);
    let parm = env.file("parmfile", b"root=/dev/vda\n");
    let make = |name: &str, extra: &[&str]| {
        let out = env.dir.path().join(name);
        let status = std::process::Command::new(&genprotimg)
            .arg("--no-verify")
            .arg("-k")
            .arg(assets.join("host.pem.crt"))
            .arg("-i")
            .arg(&kernel)
            .arg("-o")
            .arg(&out)
            .args(extra)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "genprotimg {name}");
        out
    };
    let (r, p) = (initrd.to_str().unwrap(), parm.to_str().unwrap());
    let plain = make("plain.img", &["-r", r, "-p", p]);
    let backup = make("backup.img", &["-p", p, "--x-pcf", "0xe2"]);
    for img in [&plain, &backup] {
        let out = env
            .cmd()
            .args(["--json", "image", "verify", "--no-cache"])
            .arg(img)
            .assert()
            .success();
        let v = json(&out.get_output().stdout);
        assert!(
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["status"] == "pass"),
            "{v:#}"
        );
        let i = inspect_json(&env, img);
        assert_eq!(i["layout"]["kind"], "genprotimg");
        assert_eq!(i["ipib"]["pv_version"], 0);
        assert_eq!(i["ipib"]["pv_hdr_addr"], 0);
        assert_eq!(i["ipib"]["len"], 4096);
    }
    // A host whose primary key is another one and whose backup key is the image's.
    let zero = "0".repeat(64);
    let tree = testkit::hosttree::HostTree::from_example("z16-se");
    let hash = "415c25a5d19c381e619733e1c1b7fbd88bdd1c31d882d5ade04b97043c5010f0";
    tree.write(
        "sys/firmware/uv/keys/host_key",
        format!("{}\n", "ab".repeat(32)),
    )
    .write("sys/firmware/uv/keys/backup_host_key", format!("{hash}\n"))
    .write(
        "sys/firmware/uv/keys/all",
        format!(
            "{}\n{hash}\n{}",
            "ab".repeat(32),
            format!("{zero}\n").repeat(13)
        ),
    );
    env.cmd_on(tree.path())
        .args(["image", "verify", "--no-cache"])
        .arg(&plain)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("does not allow backup host keys"))
        .stdout(predicate::str::contains("RC 0x108 RRC 0x34"));
    env.cmd_on(tree.path())
        .args(["image", "verify", "--no-cache"])
        .arg(&backup)
        .assert()
        .success()
        .stdout(predicate::str::contains("warn  image-host-key"))
        .stdout(predicate::str::contains("it would accept the image"));
    tree.write("sys/firmware/uv/query/supp_se_hdr_pcf", "300050e1\n");
    env.cmd_on(tree.path())
        .args(["image", "verify", "--no-cache"])
        .arg(&backup)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "it would refuse the image (RC 0x106)",
        ));
}
