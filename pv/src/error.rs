//! Errors of the `pv` crate.

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong in the pv crate.
#[derive(Debug, thiserror::Error)]
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
}
