//! aplaunch's own cache (verified images, QEMU probe results): small JSON records, one
//! file per key, in a directory only its owner can read, written atomically.
//!
//! This is the tool's state, not the host's: it is not resolved under the host root.
//! Location: `APLAUNCH_CACHE_DIR`, else `/var/cache/aplaunch` for root, else
//! `$XDG_CACHE_HOME/aplaunch` or `~/.cache/aplaunch`.

use serde::{de::DeserializeOwned, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Environment variable naming the cache directory.
pub const CACHE_DIR_ENV: &str = "APLAUNCH_CACHE_DIR";

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The default cache location for this process (see the module docs).
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        if nix::unistd::geteuid().is_root() {
            return Some(PathBuf::from("/var/cache/aplaunch"));
        }
        if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(xdg).join("aplaunch"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/aplaunch"))
    }

    /// Opens (creating with mode 0700) the cache at `dir`. Returns `None` when the
    /// directory cannot be made private to this user: a cache others can write to
    /// could vouch for an image that was never verified.
    pub fn open(dir: impl Into<PathBuf>) -> Option<Self> {
        let dir = dir.into();
        if fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .is_err()
        {
            tracing::debug!(dir = %dir.display(), "cache directory cannot be created");
            return None;
        }
        let meta = fs::symlink_metadata(&dir).ok()?;
        let private = meta.is_dir()
            && meta.uid() == nix::unistd::geteuid().as_raw()
            && meta.permissions().mode() & 0o077 == 0;
        if !private {
            tracing::warn!(dir = %dir.display(), "cache directory is not private to this user; not using it");
            return None;
        }
        Some(Cache { dir })
    }

    /// Opens the default cache, if there is one usable.
    pub fn open_default() -> Option<Self> {
        Self::default_dir().and_then(Self::open)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, namespace: &str, key: &str) -> PathBuf {
        // Keys are arbitrary text; a hex encoding of their hash keeps file names safe.
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        self.dir
            .join(format!("{namespace}-{:016x}.json", h.finish()))
    }

    /// Reads the record stored under `key`, if present, well-formed, and stored for exactly this key.
    pub fn get<T: DeserializeOwned>(&self, namespace: &str, key: &str) -> Option<T> {
        let bytes = fs::read(self.file(namespace, key)).ok()?;
        let record: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        if record.get("key")?.as_str()? != key {
            return None;
        }
        serde_json::from_value(record.get("value")?.clone()).ok()
    }

    /// Stores a record atomically (temporary file, fsync, rename). Failures are logged
    /// and otherwise ignored: a cache never makes a command fail.
    pub fn put<T: Serialize>(&self, namespace: &str, key: &str, value: &T) {
        let path = self.file(namespace, key);
        let record = serde_json::json!({ "key": key, "value": value });
        let result = (|| -> std::io::Result<()> {
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            serde_json::to_writer(&mut tmp, &record)?;
            tmp.as_file_mut().flush()?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        if let Err(e) = result {
            tracing::debug!(path = %path.display(), error = %e, "cache write failed");
        }
    }

    /// Removes the record under `key`.
    pub fn remove(&self, namespace: &str, key: &str) {
        let _ = fs::remove_file(self.file(namespace, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_key_check() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("c")).unwrap();
        assert_eq!(cache.get::<u32>("ns", "k"), None);
        cache.put("ns", "k", &7u32);
        assert_eq!(cache.get::<u32>("ns", "k"), Some(7));
        assert_eq!(cache.get::<u32>("other", "k"), None);
        cache.remove("ns", "k");
        assert_eq!(cache.get::<u32>("ns", "k"), None);
        let mode = fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn refuses_a_directory_others_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(Cache::open(&shared).is_none());
    }
}
