//! `aplaunch host snapshot`: copy every host file aplaunch reads into a new host tree.
//!
//! The reads are done once through a recording [`HostRoot`]; then each recorded path is
//! copied with the directory and symlink structure it was reached through, so checks run
//! on the snapshot (`--host-root DIR`) see what they saw on the host. Device nodes cannot
//! be copied: KVM's answer is stored in place of `/dev/kvm`, other nodes become notes.

use crate::checks::{host_report, CheckRequest};
use host::{Access, HostRoot};
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// What a snapshot contains.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// The directory written.
    pub output: PathBuf,
    /// Regular files copied.
    pub files: usize,
    /// Symbolic links recreated.
    pub links: usize,
    /// Directories created.
    pub directories: usize,
    /// Device nodes replaced by a recorded answer or a note.
    pub nodes: usize,
    /// Host paths that could not be read (permission, I/O error), with the reason.
    pub unreadable: Vec<String>,
}

/// Why a snapshot was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The output exists and is not an empty directory.
    #[error("{path} already exists and is not an empty directory")]
    OutputExists {
        /// The output as given.
        path: PathBuf,
    },
    /// Writing the snapshot failed; nothing was left behind.
    #[error("cannot write the snapshot at {path}: {source}")]
    Write {
        /// The path being written.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// Performs every read aplaunch's commands do on a host.
fn read_everything(root: &HostRoot) {
    let request = CheckRequest::default();
    let _ = host_report(root, &request);
    // Every mdev, as `check --mdev` and a launch read it.
    if let Ok(uuids) = root.read_dir("sys/bus/mdev/devices") {
        for uuid in uuids {
            let request = CheckRequest {
                mdev: Some(uuid),
                ..CheckRequest::default()
            };
            let _ = host_report(root, &request);
        }
    }
    // Files that only explain a verdict in some states, and the whole ultravisor tree,
    // which bug reports want complete.
    let _ = root.read("proc/cmdline");
    // The AP picture: the scan reads the bus, every card and queue, every mdev and every
    // mdevctl definition; the VFIO nodes of each mdev are recorded as nodes.
    let scan = vfio::ApScan::read(root);
    let _ = vfio::checks::all_mdev_checks(root, &scan);
    for m in &scan.mdevs {
        if let Some(node) = vfio::device::cdev_node(m) {
            root.record(node, Access::Node);
        }
    }
    for file in ["name", "device_api"] {
        let _ = root.read_optional(format!("{}/{file}", vfio::mdev::TYPE_DIR));
    }
    read_tree(root, Path::new(pv::uv::UV_DIR), 4);
}

fn read_tree(root: &HostRoot, dir: &Path, depth: usize) {
    let Ok(names) = root.read_dir(dir) else {
        return;
    };
    for name in names {
        let path = dir.join(name);
        if root.path(&path).is_dir() {
            if depth > 0 {
                read_tree(root, &path, depth - 1);
            }
        } else {
            let _ = root.read(&path);
        }
    }
}

/// Takes a snapshot of `source` into `output`, which must not exist or be an empty directory.
pub fn capture(source: &HostRoot, output: &Path) -> Result<Summary, Error> {
    let usable = match fs::read_dir(output) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    };
    if !usable {
        return Err(Error::OutputExists {
            path: output.to_path_buf(),
        });
    }
    let (recording, recorder) = source.clone().with_recorder();
    read_everything(&recording);

    // Build next to the output and rename at the end: a failure leaves nothing behind.
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".aplaunch-snapshot-")
        .tempdir_in(parent)
        .map_err(|source| Error::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    let mut summary = Summary {
        output: output.to_path_buf(),
        ..Summary::default()
    };
    for (rel, access) in recorder.paths() {
        copy_path(source, staging.path(), &rel, access, &mut summary).map_err(|source| {
            Error::Write {
                path: staging.path().join(&rel),
                source,
            }
        })?;
    }
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755)).map_err(|source| {
        Error::Write {
            path: staging.path().to_path_buf(),
            source,
        }
    })?;
    let staged = staging.keep();
    fs::rename(&staged, output).map_err(|source| {
        let _ = fs::remove_dir_all(&staged);
        Error::Write {
            path: output.to_path_buf(),
            source,
        }
    })?;
    Ok(summary)
}

/// Lexically applies `..` and `.` (the prefix it applies to holds no symlinks).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out
}

fn copy_path(
    source: &HostRoot,
    dst_root: &Path,
    rel: &Path,
    access: Access,
    summary: &mut Summary,
) -> io::Result<()> {
    let src_root = source.dir();
    let mut resolved = PathBuf::new();
    let mut hops = 0;
    for comp in rel.components() {
        let candidate = resolved.join(comp);
        let src = src_root.join(&candidate);
        let Ok(meta) = fs::symlink_metadata(&src) else {
            return Ok(());
        };
        if !meta.file_type().is_symlink() {
            resolved = candidate;
            continue;
        }
        hops += 1;
        if hops > 40 {
            return Ok(());
        }
        let target = fs::read_link(&src)?;
        let parent = candidate.parent().unwrap_or(Path::new("")).to_path_buf();
        let (stored, next) = if target.is_absolute() {
            // Keep the link inside the snapshot: make it relative to the link's directory.
            let inside = HostRoot::relative(&target);
            let ups = parent.components().count();
            let mut rel_target = PathBuf::new();
            for _ in 0..ups {
                rel_target.push("..");
            }
            (rel_target.join(&inside), inside)
        } else {
            (target.clone(), normalize(&parent.join(&target)))
        };
        let dst = dst_root.join(&candidate);
        if fs::symlink_metadata(&dst).is_err() {
            fs::create_dir_all(dst_root.join(&parent))?;
            std::os::unix::fs::symlink(&stored, &dst)?;
            summary.links += 1;
        }
        resolved = next;
    }
    copy_resolved(source, dst_root, &resolved, access, summary)
}

fn copy_resolved(
    source: &HostRoot,
    dst_root: &Path,
    rel: &Path,
    access: Access,
    summary: &mut Summary,
) -> io::Result<()> {
    let src = source.dir().join(rel);
    let dst = dst_root.join(rel);
    let Ok(meta) = fs::metadata(&src) else {
        return Ok(());
    };
    let ft = meta.file_type();
    if ft.is_dir() {
        if fs::symlink_metadata(&dst).is_err() {
            fs::create_dir_all(&dst)?;
            summary.directories += 1;
        }
        if access == Access::Directory {
            // Keep the listing: subdirectories and links; files are copied when they were read.
            for entry in fs::read_dir(&src)?.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let to = dst.join(entry.file_name());
                if fs::symlink_metadata(&to).is_ok() {
                    continue;
                }
                if kind.is_symlink() {
                    std::os::unix::fs::symlink(fs::read_link(entry.path())?, &to)?;
                    summary.links += 1;
                } else if kind.is_dir() {
                    fs::create_dir(&to)?;
                    summary.directories += 1;
                }
            }
        }
        return Ok(());
    }
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent)?;
    }
    if fs::symlink_metadata(&dst).is_ok() {
        return Ok(());
    }
    if ft.is_file() {
        match source.read(rel) {
            Ok(bytes) => {
                fs::write(&dst, bytes)?;
                summary.files += 1;
            }
            Err(e) => summary.unreadable.push(e.to_string()),
        }
    } else if ft.is_char_device() || ft.is_block_device() {
        let note = if rel == Path::new(pv::kvm::KVM_NODE) {
            match pv::kvm::check_extension(source, pv::kvm::KVM_CAP_S390_PROTECTED) {
                pv::kvm::Capability::Answer(v) | pv::kvm::Capability::Recorded(v) => {
                    format!("{}{v}\n", pv::kvm::SNAPSHOT_RECORD_PREFIX)
                }
                other => format!(
                    "aplaunch snapshot of a device node; KVM could not be asked: {other:?}\n"
                ),
            }
        } else {
            "aplaunch snapshot of a device node\n".to_string()
        };
        fs::write(&dst, note)?;
        summary.nodes += 1;
    }
    Ok(())
}
