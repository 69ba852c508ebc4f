//! Netlink connections inside another network namespace.
//!
//! A socket belongs to the namespace of the thread that created it. We never
//! `setns` a runtime worker: attach runs on a thread that is not one for
//! the duration (the caller's, inside `block_in_place`, or one of its own;
//! see `attach::worker`). It opens its host-side socket, enters the
//! container's namespace with [`enter`], opens the container-side socket
//! there, does the work and then returns to its namespace or exits.

use std::fs::File;
use std::path::Path;

use crate::error::RoutesError;
use nix::sched::{CloneFlags, setns};

/// Open the namespace file (`/run/netns/X`, `/proc/PID/ns/net`). Anything
/// that is not a namespace (a regular file, a directory) is
/// [`RoutesError::Invalid`]: the caller's mistake, found before anything is
/// created.
pub(crate) fn open_netns(path: &Path, context: &str) -> Result<File, RoutesError> {
    let what = || format!("{context}: opening network namespace {}", path.display());
    let f = File::open(path).map_err(|e| RoutesError::io(what(), e))?;
    let fs = nix::sys::statfs::fstatfs(&f).map_err(|e| RoutesError::io(what(), e.into()))?;
    if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
        return Err(RoutesError::invalid(
            what(),
            "not a network namespace (expected a file such as /run/netns/NAME or /proc/PID/ns/net)",
        ));
    }
    Ok(f)
}

/// Moves the calling thread into the network namespace `ns`. Only for
/// attach's threads (which go back home or exit afterwards): never a
/// runtime worker, whose later tasks would then run in the container's
/// namespace.
pub(crate) fn enter(ns: &File, context: &str) -> Result<(), RoutesError> {
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| RoutesError::Netlink {
        context: format!("{context}: entering network namespace"),
        errno: e as i32,
    })
}
