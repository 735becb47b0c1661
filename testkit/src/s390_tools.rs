//! The real s390-tools programs the cooperation tests run against, built from the release
//! tarball by `scripts/build-s390-tools.sh`: `ap-check` (mdevctl's vfio_ap callout) and
//! `util_lockfile` (libutil's lock example program: `--lock N` / `--release` for its parent's
//! PID, `--lock-and-release N` for its own).

use std::path::PathBuf;

/// Where `scripts/build-s390-tools.sh` installs them (`APLAUNCH_S390_TOOLS`, else
/// `/opt/aplaunch/s390-tools`), `bin/` below it.
pub fn prefix() -> PathBuf {
    std::env::var_os("APLAUNCH_S390_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/aplaunch/s390-tools"))
}

/// The program `name` (`ap-check`, `util_lockfile`), when built. When it is missing: with
/// `CI=true` this panics (CI must not skip), else it prints why `test` is skipped.
pub fn tool(test: &str, name: &str) -> Option<PathBuf> {
    let path = prefix().join("bin").join(name);
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "{} is not built (run scripts/build-s390-tools.sh as root)",
        path.display()
    );
    if crate::ci() {
        panic!("{test}: {why}, and CI=true forbids skipping");
    }
    eprintln!("{test}: SKIPPED: {why}");
    None
}
