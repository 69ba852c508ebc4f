//! The lab's one error type: every failure carries what was being done.

use std::time::Duration;

/// Errors of the lab harness and runner.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A command ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// A condition polled by [`crate::wait_until`] did not hold in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// Output of a daemon's CLI could not be understood.
    #[error("parsing {what}: {message}")]
    Parse { what: String, message: String },
    /// A topology file is unusable.
    #[error("topology {path}: {message}")]
    Topology { path: String, message: String },
    /// Anything else the caller asked for that cannot be done.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for the lab crate.
pub type Result<T> = std::result::Result<T, LabError>;

impl LabError {
    /// Wraps an IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            context: context.into(),
            source,
        }
    }

    /// A parse error for `what` (e.g. "birdc show protocols").
    pub fn parse(what: impl Into<String>, message: impl Into<String>) -> Self {
        LabError::Parse {
            what: what.into(),
            message: message.into(),
        }
    }
}
