//! Errors of the vfio crate.

use crate::ap::{Apid, Apqi};
use host::ErrorKind;
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong in the vfio crate. Every variant names the thing at fault; the
/// `hint` method says how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a host file failed or it was malformed.
    #[error(transparent)]
    Host(#[from] host::Error),
    /// The vfio_ap module is not loaded.
    #[error("/sys/devices/vfio_ap/matrix does not exist: the vfio_ap module is not loaded")]
    ModuleNotLoaded,
    /// No mdev with this UUID exists.
    #[error("no vfio_ap mdev {uuid} (/sys/devices/vfio_ap/matrix/{uuid} does not exist)")]
    MdevNotFound {
        /// The UUID as given (lower-cased).
        uuid: String,
    },
    /// A string is not a UUID.
    #[error("{input:?} is not a UUID (expected 8-4-4-4-12 hex digits)")]
    BadUuid {
        /// What was given.
        input: String,
    },
    /// A mask string was refused.
    #[error(transparent)]
    Mask(#[from] crate::mask::MaskError),
    /// A file of the host (sysfs value, mdevctl definition) is not in the expected format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A request was refused before anything was written (conflict, mask, limits...).
    #[error("{message}")]
    Refused {
        /// Stable kind (`conflict`, `masks`, `limits`, `in-use`, `exists`, ...).
        kind: ErrorKind,
        /// What is wrong, naming the APQN, id, UUID or mask.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// The kernel refused a sysfs write; message and hint explain its errno.
    #[error("{}", .0.message)]
    Kernel(Box<KernelError>),
    /// Another process holds the AP configuration lock.
    #[error(
        "the AP configuration lock {path} is held{holder} and was not released within {seconds} s"
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// ` by PID (command)` when known, else empty.
        holder: String,
        /// How long we waited.
        seconds: u64,
    },
    /// Creating, locking or writing a file of ours failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An adapter id is above the host's limit.
    #[error("{} is above ap_max_adapter_id ({max})", .id.describe())]
    AdapterOutOfRange {
        /// The id.
        id: Apid,
        /// The limit.
        max: u8,
    },
    /// A domain id is above the host's limit.
    #[error("{} is above ap_max_domain_id ({max})", .id.describe())]
    DomainOutOfRange {
        /// The id.
        id: Apqi,
        /// The limit.
        max: u8,
    },
}

impl Error {
    /// How to fix it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::ModuleNotLoaded => Some("run `modprobe vfio_ap`".into()),
            Error::MdevNotFound { .. } => Some(
                "list the mdevs with `aplaunch ap list`, or create it with `aplaunch ap mdev create`"
                    .into(),
            ),
            Error::BadUuid { .. } => {
                Some("give the UUID like 62177883-f1bb-47f0-914d-32a22e3a8804".into())
            }
            Error::Mask(_) => Some(
                "give a decimal list (0-1,3-255), a relative change (+5, -4-8) or 0x and up to 64 hex digits"
                    .into(),
            ),
            Error::Refused { hint, .. } => Some(hint.clone()),
            Error::Kernel(k) => Some(k.hint.clone()),
            Error::LockTimeout { .. } => Some(
                "wait for the other AP configuration change (chzdev, mdevctl, ap-check, aplaunch) to finish, or raise --lock-timeout"
                    .into(),
            ),
            Error::AdapterOutOfRange { .. } | Error::DomainOutOfRange { .. } => Some(
                "this system's AP configuration has no such id; see `aplaunch ap masks` for the limits"
                    .into(),
            ),
            Error::Host(e) if e.errno() == Some(libc::EACCES) || e.errno() == Some(libc::EPERM) => {
                Some("run as root".into())
            }
            _ => None,
        }
    }

    /// True for refusals with a stated reason (exit 1), false for failed operations.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::Refused { .. }
                | Error::MdevNotFound { .. }
                | Error::ModuleNotLoaded
                | Error::AdapterOutOfRange { .. }
                | Error::DomainOutOfRange { .. }
        )
    }
}

/// A sysfs write the kernel refused, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// The attribute written (host path).
    pub attribute: String,
    /// The value written.
    pub value: String,
    /// The errno.
    pub errno: Option<i32>,
    /// What it means here, naming the APQN, id or mdev.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// What the rollback did, when one was needed.
    pub rollback: Option<String>,
}
