//! What every attach on a host reuses instead of opening per attach: the
//! host namespace's descriptor (the attach thread returns to it), its
//! `net.ipv4.ip_forward` file (checked with one `pread`), and idle
//! host-side netlink sockets (a pool; in the agent, attaches are serialized
//! by its IPAM lock, so it holds one).
//!
//! Per attach this saves, on the host side, the socket's open (`socket`,
//! two `setsockopt`, `bind`, `getsockname`, `SO_RCVBUFFORCE`) and close,
//! `/proc/sys/net/ipv4/ip_forward`'s open, `statx`, two reads and close,
//! and `/proc/thread-self/ns/net`'s open and close: a kept socket joins
//! `RTNLGRP_LINK` for the attach and leaves it afterwards (two
//! `setsockopt`), the sysctl is one `pread` (lab/bench/README.md,
//! session 14, cni14 lane). The container side still opens its socket
//! inside the container's namespace, per attach: a socket belongs to the
//! namespace it was made in.
//!
//! Everything here belongs to the network namespace of the thread that
//! made the [`Attacher`]; its attaches put their host ends there. Data flow:
//! [`Attacher::socket`] hands a ready socket to `setup`, which gives it
//! back ([`Attacher::keep`]) after an attach that succeeded; a socket of a
//! failed attach is closed (an unanswered request's answer could still
//! arrive on it).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use crate::error::RoutesError;
use crate::nl::rtnl::{RTNLGRP_LINK, Rtnl};
use crate::sysctl;

/// Idle sockets kept at most (concurrent attaches beyond it open their own).
const MAX_IDLE: usize = 4;

/// Reusable host-side resources for attaches in the namespace of the
/// thread that made it (see the module docs). Cheap to clone (shared).
#[derive(Clone)]
pub struct Attacher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Attacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.inner.idle.lock().map(|i| i.len()).unwrap_or_default();
        f.debug_struct("Attacher")
            .field("home", &self.inner.home)
            .field("idle_sockets", &idle)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// The namespace attaches act in and their threads return to.
    home: File,
    /// `/proc/sys/net/ipv4/ip_forward` of `home`, read-write when allowed.
    ip_forward: File,
    /// Whether `ip_forward` was opened for writing.
    writable: bool,
    /// Idle host-side sockets: in `home`, in no multicast group, nothing
    /// outstanding.
    idle: Mutex<Vec<Rtnl>>,
}

impl Attacher {
    /// Opens the calling thread's namespace and its `ip_forward` file. Make
    /// it on a thread in the namespace where host ends belong (the agent's).
    pub fn new() -> Result<Attacher, RoutesError> {
        let ctx = "preparing attaches";
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| RoutesError::io(format!("{ctx}: opening this thread's namespace"), e))?;
        let path = "/proc/sys/net/ipv4/ip_forward";
        // Read-only /proc/sys (an unprivileged container): checking still
        // works, and a needed write fails as it did with `set_sysctl`.
        let (ip_forward, writable) = match File::options().read(true).write(true).open(path) {
            Ok(f) => (f, true),
            Err(_) => (
                File::open(path)
                    .map_err(|e| RoutesError::io(format!("{ctx}: opening {path}"), e))?,
                false,
            ),
        };
        Ok(Attacher {
            inner: Arc::new(Inner {
                home,
                ip_forward,
                writable,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The namespace attaches act in.
    pub(super) fn home(&self) -> &File {
        &self.inner.home
    }

    /// `net.ipv4.ip_forward = 1` in the home namespace: one `pread`, and a
    /// `pwrite` only when it is not set.
    pub(super) fn ensure_ip_forward(&self) -> Result<(), RoutesError> {
        let mut b = [0u8; 8];
        let read = self.inner.ip_forward.read_at(&mut b, 0);
        if let Ok(n) = read
            && b.get(..n).is_some_and(|v| v.trim_ascii() == b"1")
        {
            return Ok(());
        }
        if !self.inner.writable {
            // The same attempt (and error) as before this file was kept.
            return sysctl::set_sysctl("net/ipv4/ip_forward", "1");
        }
        self.inner
            .ip_forward
            .write_at(b"1", 0)
            .map(drop)
            .map_err(|e| RoutesError::io("setting sysctl /proc/sys/net/ipv4/ip_forward = 1", e))
    }

    /// A host-side socket in the home namespace subscribed to link
    /// notifications (`RTNLGRP_LINK`) with nothing queued: a kept one, or a
    /// new one.
    pub(super) fn socket(&self) -> io::Result<Rtnl> {
        let kept = self.inner.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut s = match kept {
            Some(s) => s,
            None => Rtnl::open_for_groups()?,
        };
        s.membership(RTNLGRP_LINK, true)?;
        // Joined first: what arrives from here on is kept, what came
        // before (the previous attach's tail) is dropped.
        s.clear()?;
        Ok(s)
    }

    /// Gives back a socket whose every request was answered: out of the
    /// group again (nothing more is queued for it), kept for the next
    /// attach. Closed when that fails or enough are kept.
    pub(super) fn keep(&self, s: Rtnl) {
        if s.membership(RTNLGRP_LINK, false).is_err() {
            return;
        }
        if let Ok(mut idle) = self.inner.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::nl::rtnl::{IFF_UP, Msg, RTM_SETLINK, ifinfomsg};

    fn idle(a: &Attacher) -> usize {
        a.inner.idle.lock().map(|i| i.len()).unwrap_or(usize::MAX)
    }

    /// A notification arrives on `s` within a second.
    fn notified(s: &mut Rtnl) -> bool {
        s.recv(Instant::now() + Duration::from_secs(1))
            .expect("recv")
            .is_some()
    }

    /// Root only, in a namespace of its own (this test's thread): a kept
    /// socket is reused, joined to the link group again, and starts empty
    /// (what came while it was out, and what it left unread, is gone);
    /// `ip_forward` is set through the kept file.
    #[test]
    fn a_kept_socket_is_reused_joined_and_empty_and_ip_forward_is_set() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        std::thread::spawn(|| {
            // SAFETY: moves only this thread into a new network namespace.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            let a = Attacher::new().expect("attacher");
            let mut other = Rtnl::open(0).expect("socket");
            // Toggling lo (index 1 in a new namespace) makes a link notification.
            let mut lo = |up: bool| {
                let flags = if up { IFF_UP } else { 0 };
                let m = Msg::new(RTM_SETLINK, 0, &ifinfomsg(1, flags, IFF_UP));
                let r = other
                    .transact(vec![m], Instant::now() + Duration::from_secs(5))
                    .expect("set lo");
                assert!(matches!(r.first(), Some(crate::nl::rtnl::Outcome::Ok(_))));
            };
            let mut s = a.socket().expect("a socket");
            lo(true);
            assert!(notified(&mut s), "joined: lo up is seen");
            lo(false); // left unread
            a.keep(s);
            assert_eq!(idle(&a), 1);
            lo(true); // out of the group: not queued
            let mut s = a.socket().expect("the kept socket");
            assert_eq!(idle(&a), 0, "the kept socket is reused");
            assert!(
                s.recv(Instant::now()).expect("recv").is_none(),
                "nothing left from before"
            );
            lo(false);
            assert!(notified(&mut s), "joined again");

            assert_eq!(
                sysctl::get_sysctl("net/ipv4/ip_forward").expect("read"),
                "0"
            );
            a.ensure_ip_forward().expect("ip_forward");
            assert_eq!(
                sysctl::get_sysctl("net/ipv4/ip_forward").expect("read"),
                "1"
            );
            a.ensure_ip_forward().expect("ip_forward already set");
        })
        .join()
        .expect("the test thread");
    }
}
