//! The aplaunch binary in end-to-end tests, started the same way everywhere: through the
//! target's runner when the suite runs emulated (s390x under qemu-user), with no host root
//! inherited from the environment, no colour, and a private cache, so a test run as root
//! never writes the real `/var/cache/aplaunch`.

use std::path::{Path, PathBuf};

/// The runner cargo starts this suite's binaries with when it runs emulated (the s390x
/// suite under qemu-user), as program and arguments; `None` when binaries run natively.
pub fn target_runner() -> Option<Vec<String>> {
    if !cfg!(target_arch = "s390x") {
        return None;
    }
    let runner = std::env::var("CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_RUNNER").ok()?;
    let words: Vec<String> = runner.split_whitespace().map(str::to_string).collect();
    (!words.is_empty()).then_some(words)
}

/// A command that starts `binary` of this suite, through the runner when emulated.
pub fn command_for(binary: &Path) -> std::process::Command {
    match target_runner() {
        Some(runner) => {
            let mut cmd = std::process::Command::new(&runner[0]);
            cmd.args(&runner[1..]).arg(binary);
            cmd
        }
        None => std::process::Command::new(binary),
    }
}

/// A path that other programs (aplaunch itself, shell scripts) can exec to run `binary`:
/// the binary itself, or when emulated a shell script at `script` that starts it through
/// the runner (binfmt_misc may not be registered). The script is written beside and renamed,
/// so tests running in parallel never see a half-written one.
pub fn runnable_path(binary: &Path, script: &Path) -> PathBuf {
    let Some(runner) = target_runner() else {
        return binary.to_path_buf();
    };
    let text = format!(
        "#!/bin/sh\nexec {} '{}' \"$@\"\n",
        runner.join(" "),
        binary.display()
    );
    if std::fs::read_to_string(script).ok().as_deref() != Some(text.as_str()) {
        use std::os::unix::fs::PermissionsExt;
        let mut tmp = script.as_os_str().to_owned();
        tmp.push(format!(".{}", std::process::id()));
        std::fs::write(&tmp, &text).expect("write the runner script");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .expect("make it executable");
        std::fs::rename(&tmp, script).expect("put the runner script in place");
    }
    script.to_path_buf()
}

/// The cache tests use unless they name their own: `aplaunch-test-cache` in the build
/// directory (`target/<profile>/`), beside the test executables.
pub fn test_cache_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test> -> target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable inside target/")
        .join("aplaunch-test-cache")
}

/// `aplaunch` as a `std::process::Command` with its cache in `cache`.
pub fn command_with_cache(cache: &Path) -> std::process::Command {
    use assert_cmd::cargo::CommandCargoExt;
    let mut cmd =
        std::process::Command::cargo_bin("aplaunch").expect("the aplaunch binary is built");
    cmd.env("APLAUNCH_CACHE_DIR", cache)
        .env_remove("APLAUNCH_HOST_ROOT")
        .env("NO_COLOR", "1");
    cmd
}

/// `aplaunch` as an `assert_cmd::Command` (stdin, timeouts) with the shared test cache.
pub fn aplaunch() -> assert_cmd::Command {
    assert_cmd::Command::from_std(command_with_cache(&test_cache_dir()))
}
