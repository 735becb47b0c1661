//! Errors of the host seam.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong when touching host files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host root given by the user does not exist.
    #[error("host root {path} does not exist")]
    RootMissing {
        /// The root as given.
        path: PathBuf,
    },
    /// The host root given by the user is not a directory.
    #[error("host root {path} is not a directory")]
    RootNotDirectory {
        /// The root as given.
        path: PathBuf,
    },
    /// Reading a host file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// Full path that was read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Writing a host file failed (for sysfs: the kernel refused the value).
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        /// Full path that was written.
        path: PathBuf,
        /// The bytes written, as text.
        value: String,
        /// The underlying I/O error; its raw OS error is the kernel's errno.
        source: std::io::Error,
    },
    /// Creating a file or directory aplaunch owns (definition, lock) failed or was refused.
    #[error("cannot create {path}: {source}")]
    Create {
        /// Full path that was to be created.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Removing a file aplaunch owns failed.
    #[error("cannot remove {path}: {source}")]
    Remove {
        /// Full path that was to be removed.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A host file held something that is not in the documented format.
    #[error("{path}: expected {expected}, found {found:?}")]
    Format {
        /// Full path of the file.
        path: PathBuf,
        /// What the format should have been.
        expected: &'static str,
        /// What was there (shortened).
        found: String,
    },
}

impl Error {
    /// The errno behind a read or write failure, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Read { source, .. }
            | Error::Write { source, .. }
            | Error::Create { source, .. }
            | Error::Remove { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True when the failure means "the file is not there".
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}
