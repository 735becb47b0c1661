//! Errors of the QMP client.

use host::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias of the QMP client.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong talking QMP. No variant is ever produced by a panic:
/// every input from the peer maps to one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket could not be connected (missing, refused, not a socket).
    #[error("cannot connect to the QMP socket {path}: {source}")]
    Connect {
        /// The socket path as given.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The connection was not accepted before the deadline (its backlog stayed full).
    #[error("the QMP socket {path} did not accept a connection within {timeout:?}")]
    ConnectTimeout {
        /// The socket path as given.
        path: PathBuf,
        /// The time allowed.
        timeout: Duration,
    },
    /// Connected, but the peer sent no greeting before the deadline.
    #[error("no QMP greeting within {timeout:?} (another client may hold the monitor, or this is not a QMP socket)")]
    NoGreeting {
        /// The time allowed.
        timeout: Duration,
    },
    /// The first message was not a QMP greeting.
    #[error("the first message is not a QMP greeting: {line}")]
    BadGreeting {
        /// The message (shortened).
        line: String,
    },
    /// A line that is not a JSON object, or an object that is not a QMP message.
    #[error("garbage from the QMP peer ({reason}): {line}")]
    Garbage {
        /// The offending line (shortened).
        line: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Queued events and the message being received exceed the memory bound.
    #[error("the QMP peer sent {events} events that nobody waited for, over the client's memory bound of {limit} bytes (a flooding or broken QEMU)")]
    Flood {
        /// The bound in bytes.
        limit: usize,
        /// Events queued when the bound was passed.
        events: usize,
    },
    /// A message is longer than the line bound.
    #[error("a QMP message exceeds the line-length bound of {limit} bytes")]
    LineTooLong {
        /// The bound in bytes.
        limit: usize,
    },
    /// A reply carrying an id that no pending command has.
    #[error("a QMP reply carries the unknown id {got} (expected {expected})")]
    UnknownReplyId {
        /// The id of the pending command, or `none` when no command was pending.
        expected: String,
        /// The id in the reply, as JSON.
        got: String,
    },
    /// The peer closed the connection.
    #[error("the QMP peer closed the connection {during}{}", if *.partial { " in the middle of a message" } else { "" })]
    Disconnected {
        /// What the client was waiting for (`while waiting for the reply to device_add`).
        during: String,
        /// True when an incomplete message had been received.
        partial: bool,
    },
    /// Nothing arrived in time.
    #[error("timed out after {timeout:?} {waiting_for}")]
    Timeout {
        /// What the client was waiting for.
        waiting_for: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// QEMU answered a command with an error; class and desc are QEMU's own.
    #[error("QEMU refused {command}: {desc} ({class})")]
    Command {
        /// The command that was refused.
        command: String,
        /// QEMU's error class (`GenericError`, `DeviceNotFound`, `CommandNotFound`, ...).
        class: String,
        /// QEMU's human description.
        desc: String,
    },
    /// A socket operation failed.
    #[error("QMP socket I/O failed {during}: {source}")]
    Io {
        /// What the client was doing.
        during: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An earlier error left the connection out of step; reconnect.
    #[error("the QMP connection is unusable after an earlier error: {0}")]
    Broken(String),
}

impl Error {
    /// QEMU's error class when QEMU refused a command.
    pub fn class(&self) -> Option<&str> {
        match self {
            Error::Command { class, .. } => Some(class),
            _ => None,
        }
    }

    /// QEMU's error description when QEMU refused a command.
    pub fn desc(&self) -> Option<&str> {
        match self {
            Error::Command { desc, .. } => Some(desc),
            _ => None,
        }
    }

    /// True for timeouts of every kind (connect, greeting, reply, event).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. } | Error::NoGreeting { .. } | Error::ConnectTimeout { .. }
        )
    }

    /// A stable machine-readable kind for JSON output (`qmp-timeout`, `qmp-garbage`, ...).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Connect { .. } | Error::ConnectTimeout { .. } => ErrorKind::QmpUnreachable,
            Error::NoGreeting { .. } => ErrorKind::QmpNoGreeting,
            Error::BadGreeting { .. } | Error::Garbage { .. } => ErrorKind::QmpGarbage,
            Error::LineTooLong { .. } => ErrorKind::QmpLineTooLong,
            Error::Flood { .. } => ErrorKind::QmpFlood,
            Error::UnknownReplyId { .. } => ErrorKind::QmpUnknownId,
            Error::Disconnected { .. } => ErrorKind::QmpDisconnected,
            Error::Timeout { .. } => ErrorKind::QmpTimeout,
            Error::Command { .. } => ErrorKind::QmpCommand,
            Error::Io { .. } | Error::Broken(_) => ErrorKind::QmpIo,
        }
    }

    /// Whether the connection can still be used after this error.
    pub(crate) fn leaves_connection_usable(&self) -> bool {
        matches!(
            self,
            Error::Command { .. } | Error::Timeout { .. } | Error::UnknownReplyId { .. }
        )
    }
}

/// Shortens a peer's line for an error message (at most 200 characters, lossy UTF-8).
pub(crate) fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&line[..line.len().min(MAX * 4)]);
    let mut out: String = text.chars().take(MAX).collect();
    if out.len() < text.len() || line.len() > MAX * 4 {
        out.push_str("...");
    }
    out
}
