//! Runs every `aplaunch` command of README.md's `sh` blocks, in order, and checks its exit
//! code (0, or the `# exit N` the line is marked with).
//!
//! Commands run against a copy of the example host (`--host-root` is added where the README
//! leaves it out, as on a real host). The walkthrough section starts from that host turned
//! back into a fresh one: all queues with the host drivers, no mdev, no definition. This test
//! plays the kernel's part where a real one would act: it rebinds queues after a mask write
//! and creates the mdev directory when the mdev is created. QEMU is testkit's fake on PATH;
//! the QMP socket is served by testkit's model of a running guest.

use assert_cmd::cargo::CommandCargoExt;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::hosttree::{workspace_root, HostTree};
use testkit::qmp::{FakeDevice, FakeQemu};

const UUID: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";
const MATRIX: &str = "sys/devices/vfio_ap/matrix";
const QUEUES: [(u8, u16); 4] = [(3, 4), (3, 0xab), (5, 4), (5, 0xab)];

/// One runnable README line.
#[derive(Debug)]
struct Line {
    section: String,
    text: String,
    args: Vec<String>,
    exit: i32,
}

/// Splits like a POSIX shell for the simple forms the README uses (quotes, no expansion).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// The `# exit N` mark and the command without its comment (a `#` outside quotes).
fn split_comment(line: &str) -> (&str, i32) {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if i == 0 || line[..i].ends_with(' ') => {
                let exit = line[i + 1..]
                    .trim()
                    .strip_prefix("exit ")
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                return (line[..i].trim_end(), exit);
            }
            _ => {}
        }
    }
    (line.trim_end(), 0)
}

fn readme_lines() -> Vec<Line> {
    let text = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let mut lines = Vec::new();
    let mut section = String::new();
    let mut in_sh = false;
    let mut in_block = false;
    let mut pending = String::new();
    for raw in text.lines() {
        if raw.starts_with("```") {
            in_block = !in_block;
            in_sh = in_block && raw == "```sh";
            continue;
        }
        if !in_block && raw.starts_with("## ") {
            section = raw.to_string();
        }
        if !in_sh {
            continue;
        }
        if let Some(cont) = raw.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        let full = std::mem::take(&mut pending) + raw;
        let (command, exit) = split_comment(full.trim());
        let mut words = shell_words(command);
        // `> FILE`: the test reads stdout instead.
        if let Some(at) = words.iter().position(|w| w == ">") {
            words.truncate(at);
        }
        let args: Vec<String> = match words.first().map(String::as_str) {
            Some("aplaunch") | Some("./target/release/aplaunch") => words[1..].to_vec(),
            Some("cargo")
                if words.starts_with(&[
                    "cargo".into(),
                    "run".into(),
                    "--release".into(),
                    "--".into(),
                ]) =>
            {
                words[4..].to_vec()
            }
            _ => continue,
        };
        lines.push(Line {
            section: section.clone(),
            text: full.trim().to_string(),
            args,
            exit,
        });
    }
    lines
}

/// The kernel's side of the walkthrough's host, around the commands that change it.
struct Host {
    tree: HostTree,
    /// The example's mdev directory, kept aside until the mdev is created.
    stash: tempfile::TempDir,
}

impl Host {
    fn example() -> Self {
        Host {
            tree: HostTree::from_example("z16-se"),
            stash: tempfile::tempdir().unwrap(),
        }
    }

    /// The example host as it was before the walkthrough: no mdev, no definition, and the
    /// masks giving every queue to the host drivers.
    fn fresh() -> Self {
        let host = Self::example();
        let t = &host.tree;
        std::fs::rename(
            t.at(&format!("{MATRIX}/{UUID}")),
            host.stash.path().join("mdev"),
        )
        .unwrap();
        t.remove(&format!("sys/bus/mdev/devices/{UUID}"));
        t.remove(&format!(
            "{MATRIX}/mdev_supported_types/vfio_ap-passthrough/devices/{UUID}"
        ));
        t.remove(&format!("sys/kernel/iommu_groups/0/devices/{UUID}"));
        t.remove(&format!("etc/mdevctl.d/matrix/{UUID}"));
        let all = format!("0x{}\n", "f".repeat(64));
        t.write("sys/bus/ap/apmask", &all);
        t.write("sys/bus/ap/aqmask", &all);
        host.rebind();
        host
    }

    fn mask_bit(&self, file: &str, bit: usize) -> bool {
        let text = self.tree.read(file);
        let hex = text.trim().trim_start_matches("0x");
        let digit = hex
            .as_bytes()
            .get(bit / 4)
            .map_or(0, |d| (*d as char).to_digit(16).unwrap_or(0));
        digit & (8 >> (bit % 4)) != 0
    }

    /// What the AP bus does after a mask write: each queue goes to the host drivers exactly
    /// when its adapter bit in apmask and its domain bit in aqmask are set, else to vfio_ap.
    fn rebind(&self) {
        let t = &self.tree;
        let mdev_has = t.at(&format!("{MATRIX}/{UUID}/matrix")).exists();
        for (a, d) in QUEUES {
            let q = format!("sys/devices/ap/card{a:02x}/{a:02x}.{d:04x}");
            let host = self.mask_bit("sys/bus/ap/apmask", a.into())
                && self.mask_bit("sys/bus/ap/aqmask", d.into());
            if host {
                t.link(
                    &format!("{q}/driver"),
                    "../../../../bus/ap/drivers/cex4queue",
                );
                t.remove(&format!("{q}/status"));
                t.write(&format!("{q}/online"), "1\n");
            } else {
                t.link(&format!("{q}/driver"), "../../../../bus/ap/drivers/vfio_ap");
                t.remove(&format!("{q}/online"));
                let assigned = mdev_has && a == 5;
                t.write(
                    &format!("{q}/status"),
                    if assigned {
                        "assigned\n"
                    } else {
                        "unassigned\n"
                    },
                );
            }
        }
    }

    /// The attribute files the kernel makes when `create` is written (before the command runs).
    fn kernel_prepares_create(&self) {
        for f in [
            "assign_adapter",
            "assign_domain",
            "assign_control_domain",
            "remove",
        ] {
            self.tree.write(&format!("{MATRIX}/{UUID}/{f}"), "");
        }
    }

    /// The rest of the mdev the kernel shows once it exists: its matrices and links.
    fn kernel_finishes_create(&self) {
        let t = &self.tree;
        let stash = self.stash.path().join("mdev");
        for f in ["matrix", "guest_matrix", "control_domains", "ap_config"] {
            t.write(
                &format!("{MATRIX}/{UUID}/{f}"),
                std::fs::read(stash.join(f)).unwrap(),
            );
        }
        for l in ["mdev_type", "driver", "iommu_group"] {
            t.link(
                &format!("{MATRIX}/{UUID}/{l}"),
                std::fs::read_link(stash.join(l)).unwrap().to_str().unwrap(),
            );
        }
        t.mkdir(&format!("{MATRIX}/{UUID}/vfio-dev/vfio0"));
        t.write(&format!("{MATRIX}/{UUID}/vfio-dev/vfio0/dev"), "511:0\n");
        t.link(
            &format!("sys/bus/mdev/devices/{UUID}"),
            &format!("../../../devices/vfio_ap/matrix/{UUID}"),
        );
        t.link(
            &format!("sys/kernel/iommu_groups/0/devices/{UUID}"),
            &format!("../../../../devices/vfio_ap/matrix/{UUID}"),
        );
        t.link(
            &format!("{MATRIX}/mdev_supported_types/vfio_ap-passthrough/devices/{UUID}"),
            &format!("../../../{UUID}"),
        );
        self.rebind();
    }
}

fn fake_qemu_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fake = testkit::qemu::fake_qemu();
    std::os::unix::fs::symlink(&fake, dir.path().join("qemu-system-s390x")).unwrap();
    dir
}

#[test]
fn every_readme_command_runs_as_documented() {
    let lines = readme_lines();
    assert!(
        lines.len() >= 30,
        "too few README commands found: {}",
        lines.len()
    );
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    let qemu_dir = fake_qemu_dir();
    let path: OsString =
        std::env::join_paths(std::iter::once(qemu_dir.path().to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
    let image = workspace_root().join("examples/images/demo-se.img");
    let hkd = workspace_root().join("pv/tests/assets/host.pem.crt");
    let running = FakeQemu::start(
        vec![FakeDevice {
            id: Some("hostdev0".into()),
            driver: "vfio-ap".into(),
            sysfsdev: Some(format!("/sys/bus/mdev/devices/{UUID}")),
        }],
        true,
    );
    let example = Host::example();
    let mut walkthrough: Option<Host> = None;

    for line in &lines {
        let in_walkthrough = line.section.starts_with("## Walkthrough");
        if in_walkthrough && walkthrough.is_none() {
            walkthrough = Some(Host::fresh());
        }
        let host = if in_walkthrough {
            walkthrough.as_ref().unwrap()
        } else {
            &example
        };
        let is_qmp = line.args.iter().any(|a| a == "qmp");
        let create = line.args.windows(2).any(|w| w == ["mdev", "create"]);
        let masks_write = line.args.windows(2).any(|w| w == ["ap", "masks"])
            && !line.args.iter().any(|a| a == "--dry-run");
        let sub = |a: &str| -> PathBuf {
            match a {
                "examples/hosts/z16-se" => host.tree.path().to_path_buf(),
                "secure1.img" | "boot.img" | "examples/images/demo-se.img" => image.clone(),
                "HKD.crt" => hkd.clone(),
                "/tmp/myhost" => scratch.path().join("myhost"),
                "/usr/local/share/man/man1" => scratch.path().join("man1"),
                "/run/aplaunch/secure1.qmp" | "/run/guest/qmp.sock" if is_qmp => {
                    running.socket().to_path_buf()
                }
                "/run/aplaunch/secure1.qmp" => scratch.path().join("run/secure1.qmp"),
                other => PathBuf::from(other),
            }
        };
        let mut args: Vec<PathBuf> = line.args.iter().map(|a| sub(a)).collect();
        if !line.args.iter().any(|a| a == "--host-root") {
            args.splice(
                0..0,
                [PathBuf::from("--host-root"), host.tree.path().to_path_buf()],
            );
            // A launch on the README's real host execs; on the tree that needs the opt-in.
            let launches = line.args.iter().any(|a| a == "--pv-image")
                && !line.args.iter().any(|a| a == "--dry-run" || a == "check");
            if launches {
                args.push(PathBuf::from("--exec-on-host-root"));
            }
        }
        if create {
            host.kernel_prepares_create();
        }
        // Through the target's runner when the suite runs emulated (CommandCargoExt does that).
        let out = Command::cargo_bin("aplaunch")
            .unwrap()
            .args(&args)
            .env("PATH", &path)
            .env("APLAUNCH_CACHE_DIR", &cache)
            .env("NO_COLOR", "1")
            .env_remove("APLAUNCH_HOST_ROOT")
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        assert_eq!(
            code,
            line.exit,
            "README line in {}:\n  {}\nexited {code}, expected {}\nstdout:\n{}\nstderr:\n{}",
            line.section,
            line.text,
            line.exit,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if masks_write {
            host.rebind();
        }
        if create {
            host.kernel_finishes_create();
            // The definition aplaunch wrote is the one mdevctl would have written.
            let written = host.tree.read(&format!("etc/mdevctl.d/matrix/{UUID}"));
            let example_def = std::fs::read_to_string(
                testkit::hosttree::example_host("z16-se")
                    .join(format!("etc/mdevctl.d/matrix/{UUID}")),
            )
            .unwrap();
            assert_eq!(written, example_def);
        }
    }
    // The walkthrough ends where the example host is: same masks, same mdev.
    let done = walkthrough.expect("the README has a walkthrough");
    for f in ["sys/bus/ap/apmask", "sys/bus/ap/aqmask"] {
        assert_eq!(done.tree.read(f), example.tree.read(f), "{f}");
    }
    assert!(scratch.path().join("man1/aplaunch.1").is_file());
    assert!(scratch.path().join("myhost/proc/cpuinfo").is_file());
    assert!(
        running.devices().is_empty() || running.devices().iter().all(|d| d.driver == "vfio-ap")
    );
}

#[test]
fn shell_words_and_comments() {
    assert_eq!(shell_words(r#"a "b c" 'd e' f"#), ["a", "b c", "d e", "f"]);
    assert_eq!(split_comment("aplaunch x  # exit 1"), ("aplaunch x", 1));
    assert_eq!(split_comment("aplaunch x \"#1\""), ("aplaunch x \"#1\"", 0));
    assert_eq!(split_comment("aplaunch x # note"), ("aplaunch x", 0));
    let _ = Path::new("");
}
