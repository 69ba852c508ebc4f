//! The crate's one error type. Every variant carries a context string that
//! names the object (container, interface, prefix) and the step, and kernel
//! errors carry the errno in words ("File exists"), e.g.
//! `attach c1: creating veth tt1a2b… in /run/netns/c1: File exists (EEXIST)`.

use std::fmt;

/// Errors from the Linux dataplane.
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    /// The kernel refused a netlink request.
    #[error("{context}: {}", errno_words(*errno))]
    Netlink {
        /// What we were doing ("attach c1: creating veth ttX in /run/netns/c1").
        context: String,
        /// Positive errno (EEXIST = 17, ...).
        errno: i32,
    },
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The caller's input is invalid (bad name, MTU, ...).
    #[error("{context}: {message}")]
    Invalid {
        /// What we were doing.
        context: String,
        /// What was wrong.
        message: String,
    },
    /// The kernel's state or answer was not what we expected (a device
    /// vanished, an attribute is missing, a helper thread died).
    #[error("{context}: {message}")]
    Unexpected {
        /// What we were doing.
        context: String,
        /// What was wrong.
        message: String,
    },
    /// The route table task is gone (runtime shut down or task panicked).
    #[error("route table task has stopped")]
    TableStopped,
    /// [`crate::RouteTable::install`]: the route could not be installed.
    #[error("route {prefix} not installed: {reason}")]
    NotInstalled {
        /// The route's prefix.
        prefix: ipnetwork::IpNetwork,
        /// Why (the kernel's refusal, a missing device, a conflict, ...).
        reason: String,
    },
    /// `flush` finished a full attempt but some desired routes are not installed.
    #[error("{failed} desired route(s) not installed; first: {first}")]
    Incomplete {
        /// How many desired routes are not in the kernel.
        failed: usize,
        /// Description of one of them, with its error.
        first: String,
    },
}

/// `"File exists (EEXIST)"` for 17.
pub(crate) fn errno_words(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    format!("{} ({:?})", e.desc(), e)
}

impl RoutesError {
    pub(crate) fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        RoutesError::Io {
            context: context.to_string(),
            source,
        }
    }

    pub(crate) fn invalid(context: impl fmt::Display, message: impl fmt::Display) -> Self {
        RoutesError::Invalid {
            context: context.to_string(),
            message: message.to_string(),
        }
    }

    pub(crate) fn unexpected(context: impl fmt::Display, message: impl fmt::Display) -> Self {
        RoutesError::Unexpected {
            context: context.to_string(),
            message: message.to_string(),
        }
    }

    /// Prefix the context with `outer` ("attach c1"), keeping the variant
    /// and errno.
    pub(crate) fn within(self, outer: &str) -> Self {
        let wrap = |c: String| format!("{outer}: {c}");
        match self {
            RoutesError::Netlink { context, errno } => RoutesError::Netlink {
                context: wrap(context),
                errno,
            },
            RoutesError::Io { context, source } => RoutesError::Io {
                context: wrap(context),
                source,
            },
            RoutesError::Invalid { context, message } => RoutesError::Invalid {
                context: wrap(context),
                message,
            },
            RoutesError::Unexpected { context, message } => RoutesError::Unexpected {
                context: wrap(context),
                message,
            },
            other => other,
        }
    }

    /// The positive errno, if this error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            RoutesError::Netlink { errno, .. } => Some(*errno),
            RoutesError::Io { source, .. } => source
                .raw_os_error()
                .or_else(|| crate::nl::dump::Refused::errno_of(source)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_in_words() {
        let e = RoutesError::Netlink {
            context: "attach c1: creating veth tt0 in /run/netns/c1".into(),
            errno: libc::EEXIST,
        };
        assert_eq!(
            e.to_string(),
            "attach c1: creating veth tt0 in /run/netns/c1: File exists (EEXIST)"
        );
        assert_eq!(e.errno(), Some(libc::EEXIST));
    }
}
