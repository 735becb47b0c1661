//! Host trees for tests: a private copy of an example host, changed file by file.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// The workspace root (where `examples/` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits in the workspace")
        .to_path_buf()
}

/// The committed example host `examples/hosts/NAME`.
pub fn example_host(name: &str) -> PathBuf {
    workspace_root().join("examples/hosts").join(name)
}

/// A host tree in a temporary directory, removed when dropped.
pub struct HostTree {
    dir: tempfile::TempDir,
}

impl HostTree {
    /// An empty host tree.
    pub fn empty() -> Self {
        HostTree {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A private copy of `examples/hosts/NAME` (symlinks are copied as links).
    pub fn from_example(name: &str) -> Self {
        let tree = Self::empty();
        copy_tree(&example_host(name), tree.path());
        tree
    }

    /// The tree's root directory (pass it as `--host-root`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Full path of a host path inside the tree.
    pub fn at(&self, host_path: &str) -> PathBuf {
        self.path().join(host_path.trim_start_matches('/'))
    }

    /// Writes a file (creating parent directories), replacing what was there.
    pub fn write(&self, host_path: &str, contents: impl AsRef<[u8]>) -> &Self {
        let p = self.at(host_path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&p);
        fs::write(&p, contents).unwrap();
        self
    }

    /// Reads a file of the tree as text.
    pub fn read(&self, host_path: &str) -> String {
        fs::read_to_string(self.at(host_path)).unwrap()
    }

    /// Creates a symbolic link.
    pub fn link(&self, host_path: &str, target: &str) -> &Self {
        let p = self.at(host_path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&p);
        symlink(target, &p).unwrap();
        self
    }

    /// Creates a directory.
    pub fn mkdir(&self, host_path: &str) -> &Self {
        fs::create_dir_all(self.at(host_path)).unwrap();
        self
    }

    /// Removes a file, link or whole directory.
    pub fn remove(&self, host_path: &str) -> &Self {
        let p = self.at(host_path);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&p).unwrap(),
            Ok(_) => fs::remove_file(&p).unwrap(),
            Err(_) => {}
        }
        self
    }

    /// Replaces the facilities line of proc/cpuinfo.
    pub fn facilities(&self, facilities: &[u32]) -> &Self {
        let text = self.read("proc/cpuinfo");
        let line: String = facilities.iter().map(|f| format!(" {f}")).collect();
        let new: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("facilities") {
                    format!("facilities      :{line}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        self.write("proc/cpuinfo", new.join("\n") + "\n")
    }
}

/// Copies a directory tree, keeping symlinks as symlinks.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let dest = to.join(entry.file_name());
        if kind.is_symlink() {
            symlink(fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}
