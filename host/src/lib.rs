//! The host seam shared by every aplaunch crate.
//!
//! Every file aplaunch reads or writes on a host is resolved under one [`HostRoot`]
//! (`/` on a real host, a directory tree in tests, examples and offline analysis).
//! The root can record what was read, which is how `aplaunch host snapshot` copies
//! exactly the files the tool relies on. The [`check`] module holds the report type
//! that every crate contributes its readiness checks to.
#![deny(missing_docs)]

pub mod cache;
pub mod check;
pub mod dir;
pub mod error;
pub mod error_kind;
mod names;
pub mod resolve;
pub mod root;
pub mod sysfs;

pub use check::{Check, CheckId, Report, Status};
pub use dir::HostDir;
pub use error::{Error, Result};
pub use error_kind::ErrorKind;
pub use resolve::Resolution;
pub use root::{Access, HostRoot, Recorder, ATTRIBUTE_MAX, DIR_ENTRIES_MAX, FILE_MAX};
