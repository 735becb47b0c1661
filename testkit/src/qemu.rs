//! QEMU for tests: the real qemu-system-s390x when installed, and the fake one.

use std::path::{Path, PathBuf};

/// The environment variable that names the real QEMU every real-QEMU test runs against
/// (CI runs those tests once with Debian's 7.2 and once with QEMU 10.0 from
/// scripts/setup-qemu10.sh).
pub const TEST_QEMU_ENV: &str = "APLAUNCH_TEST_QEMU";

/// The real QEMU tests run against, when installed: `APLAUNCH_TEST_QEMU` when set, else
/// `/usr/bin/qemu-system-s390x` or `qemu-system-s390x` on PATH.
///
/// When it is missing: with `CI=true` in the environment this panics (a CI run must not
/// silently skip), otherwise it prints why the test is skipped and returns `None`.
pub fn real_qemu(test: &str) -> Option<PathBuf> {
    if let Some(chosen) = std::env::var_os(TEST_QEMU_ENV).filter(|v| !v.is_empty()) {
        let chosen = PathBuf::from(chosen);
        if chosen.is_file() {
            return Some(chosen);
        }
        let why = format!("{TEST_QEMU_ENV}={} does not exist", chosen.display());
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: {why}, and CI=true forbids skipping");
        }
        eprintln!("{test}: SKIPPED: {why}");
        return None;
    }
    let candidates = std::iter::once(PathBuf::from("/usr/bin/qemu-system-s390x")).chain(
        std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("qemu-system-s390x"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    for c in candidates {
        if c.is_file() {
            return Some(c);
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: qemu-system-s390x is not installed, and CI=true forbids skipping (install qemu-system-misc)");
    }
    eprintln!("{test}: SKIPPED: qemu-system-s390x is not installed (install qemu-system-misc)");
    None
}

/// `(major, minor, micro)` as `qemu -version` prints it (`QEMU emulator version 10.0.13
/// (Debian ...)`): what a test compares QEMU's answers with instead of assuming a version.
pub fn version_of(qemu: &Path) -> (u32, u32, u32) {
    let out = std::process::Command::new(qemu)
        .arg("-version")
        .output()
        .unwrap_or_else(|e| panic!("{} -version: {e}", qemu.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("QEMU emulator version "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{} -version printed {text:?}", qemu.display()));
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// The fake QEMU binary itself (testkit's `fake-qemu`), built next to the running test.
///
/// `cargo test --workspace` builds it (testkit has integration tests); when it is missing
/// (`cargo test -p aplaunch` alone) it is built with `cargo build -p testkit --bin fake-qemu`.
pub fn fake_qemu_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test> -> target/<profile>/fake-qemu
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable inside target/");
    let path = profile_dir.join("fake-qemu");
    if !path.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "testkit", "--bin", "fake-qemu"])
            .current_dir(crate::hosttree::workspace_root())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()) && path.is_file(),
            "fake-qemu is not built at {}: run `cargo build -p testkit --bin fake-qemu`",
            path.display()
        );
    }
    path
}

/// The fake QEMU to run: the binary, or, when the tests run under an emulator (the s390x
/// suite under qemu-user, `CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_RUNNER`), a shell script
/// next to it that execs the binary through that runner, so that programs which exec it
/// (aplaunch) need no binfmt_misc registration. Either way exec keeps the pid.
pub fn fake_qemu() -> PathBuf {
    let binary = fake_qemu_binary();
    crate::cli::runnable_path(&binary, &binary.with_file_name("fake-qemu-via-runner"))
}
