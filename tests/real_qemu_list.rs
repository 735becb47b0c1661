//! Every test file that starts the real QEMU is in scripts/test-qemu10.sh's list, so that
//! CI runs it against QEMU 10.0 as well as 7.2; and no test pins a QEMU version it did not
//! ask for (the version comes from `testkit::qemu::version_of` of the binary under test).

use std::path::Path;

fn test_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_real_qemu_test_also_runs_against_qemu_10() {
    let root = testkit::hosttree::workspace_root();
    let script = std::fs::read_to_string(root.join("scripts/test-qemu10.sh")).unwrap();
    let listed: Vec<&str> = script
        .split(|c: char| c.is_whitespace() || c == '"')
        .filter(|w| w.contains(':') && !w.contains('/') && !w.contains('$'))
        .collect();
    let mut found = 0;
    for (package, dir) in [("aplaunch", "tests"), ("launcher", "launcher/tests")] {
        for file in test_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            let real = ["real_qemu(", "RealQemu::start", "qmp::qemu_binary()"]
                .iter()
                .any(|needle| text.contains(needle));
            if !real || file.ends_with("real_qemu_list.rs") {
                continue;
            }
            found += 1;
            let name = format!("{package}:{}", file.file_stem().unwrap().to_string_lossy());
            assert!(
                listed.contains(&name.as_str()),
                "{} starts the real QEMU but {name} is not in scripts/test-qemu10.sh",
                file.display()
            );
            // a version pinned by hand would fail against the other QEMU
            for pinned in ["starts_with(\"7.", "starts_with(\"10.", "\"7.2.", "\"10.0."] {
                assert!(
                    !text.contains(pinned),
                    "{} pins a QEMU version ({pinned}...)",
                    file.display()
                );
            }
        }
    }
    assert!(found >= 9, "only {found} real-QEMU test files found");
}
