//! The aplaunch binary in end-to-end tests, started the same way everywhere: through the
//! target's runner when the suite runs emulated (s390x under qemu-user), with no host root
//! inherited from the environment, no colour, and a private cache, so a test run as root
//! never writes the real `/var/cache/aplaunch`.

use std::path::{Path, PathBuf};

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
