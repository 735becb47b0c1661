//! Errors of the `pv` crate.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong in the pv crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A host file could not be read or was malformed.
    #[error(transparent)]
    Host(#[from] host::Error),
    /// A host key hash was not 64 hex digits.
    #[error("not a host key hash (64 hex digits): {found:?}")]
    HostKeyHash {
        /// What was found.
        found: String,
    },
    /// The image path is not a readable regular file (missing, dangling symbolic link,
    /// directory, FIFO, device node, socket): a usage problem.
    #[error("{path}: {problem}")]
    ImagePath {
        /// The path as given.
        path: PathBuf,
        /// What it is instead of an image file.
        problem: String,
    },
    /// Opening or reading the image failed (permission denied, I/O error).
    #[error("cannot read {path}: {source}")]
    ImageRead {
        /// The path as given.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a Secure Execution image at all (no `IBMSecEx` header).
    #[error("{path}: not a Secure Execution image: {reason}")]
    NotSeImage {
        /// The path as given.
        path: PathBuf,
        /// Why (empty file, no header found, ...).
        reason: String,
    },
    /// The file has an SE header, but it cannot be parsed (truncated, absurd sizes).
    #[error("{path}: invalid Secure Execution image: {reason}")]
    InvalidImage {
        /// The path as given.
        path: PathBuf,
        /// What is wrong, with offsets and values.
        reason: String,
    },
    /// A `--host-keys` file could not be read.
    #[error("cannot read host keys {path}: {source}")]
    HostKeysRead {
        /// The path as given.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `--host-keys` file is neither hash lines nor a host-key document.
    #[error("{path}: {reason}")]
    HostKeysFormat {
        /// The path as given.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The system's libcrypto could not compute a digest (not installed, out of memory, or a
    /// broken OpenSSL installation).
    #[error("libcrypto cannot compute {algorithm}: {reason}")]
    Digest {
        /// `SHA-512` or `SHA-256`.
        algorithm: &'static str,
        /// What failed: loading libcrypto, or which EVP call.
        reason: String,
    },
}

impl Error {
    /// How to fix it, when there is more to say than the message.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::ImagePath { .. } => Some("give the path of the Secure Execution image file (genprotimg/pvimg output)"),
            Error::ImageRead { .. } => Some("check the file's permissions (run as a user that can read it)"),
            Error::NotSeImage { .. } => Some("build a Secure Execution image with genprotimg or pvimg create, for this host's host-key document"),
            Error::InvalidImage { .. } => Some("the image is damaged or incomplete: copy it again, or rebuild it with genprotimg/pvimg"),
            Error::HostKeysRead { .. } => Some("check the path and permissions of the --host-keys file"),
            Error::HostKeysFormat { .. } => Some("--host-keys takes lines of 64 hex digits (as in /sys/firmware/uv/keys/all) or a host-key document (X.509 PEM, P-521 key)"),
            Error::Digest { .. } => Some("check the system OpenSSL library (Debian package libssl3) and free memory"),
            _ => None,
        }
    }
}
