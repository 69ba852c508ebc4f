//! Netlink connections inside another network namespace.
//!
//! A socket belongs to the namespace of the thread that created it. We never
//! `setns` a runtime worker: a dedicated `std::thread` enters the target
//! namespace, creates the rtnetlink connection while holding the runtime's
//! context (so the socket registers with the runtime's reactor), hands the
//! connection back and exits. The connection future then runs on the runtime
//! like any other; it ends when the last `Handle` is dropped.

use std::fs::File;
use std::path::Path;

use nix::sched::{CloneFlags, setns};
use tokio::sync::oneshot;

use crate::error::RoutesError;

/// An rtnetlink handle plus the task driving its connection (aborted on drop).
pub(crate) struct NsConnection {
    pub handle: rtnetlink::Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for NsConnection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connection in the calling thread's namespace.
pub(crate) fn here(context: &str) -> Result<NsConnection, RoutesError> {
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|e| RoutesError::io(format!("{context}: opening netlink socket"), e))?;
    Ok(NsConnection {
        handle,
        task: tokio::spawn(conn),
    })
}

/// Open the namespace file (`/run/netns/X`, `/proc/PID/ns/net`).
pub(crate) fn open_netns(path: &Path, context: &str) -> Result<File, RoutesError> {
    File::open(path).map_err(|e| {
        RoutesError::io(
            format!("{context}: opening network namespace {}", path.display()),
            e,
        )
    })
}

/// Connection whose socket lives in the namespace `ns`.
pub(crate) async fn inside(ns: &File, context: &str) -> Result<NsConnection, RoutesError> {
    let ns = ns
        .try_clone()
        .map_err(|e| RoutesError::io(format!("{context}: duplicating netns fd"), e))?;
    let rt = tokio::runtime::Handle::current();
    let (tx, rx) = oneshot::channel();
    let ctx = context.to_string();
    let spawned = std::thread::Builder::new()
        .name("tortie-netns".into())
        .spawn(move || {
            let result = (|| {
                setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| RoutesError::Netlink {
                    context: format!("{ctx}: entering network namespace"),
                    errno: e as i32,
                })?;
                let _guard = rt.enter();
                rtnetlink::new_connection().map_err(|e| {
                    RoutesError::io(format!("{ctx}: opening netlink socket in namespace"), e)
                })
            })();
            let _ = tx.send(result);
        });
    spawned.map_err(|e| RoutesError::io(format!("{context}: spawning netns thread"), e))?;
    let (conn, handle, _) = rx
        .await
        .map_err(|_| RoutesError::unexpected(context, "netns thread died"))??;
    Ok(NsConnection {
        handle,
        task: tokio::spawn(conn),
    })
}
