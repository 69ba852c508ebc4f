//! The one passive listener: accepts TCP connections and hands each to the
//! session task of the peer whose address it comes from. Connections from
//! unconfigured addresses are closed at once and logged. The listener socket
//! carries one TCP MD5 key entry per peer that has a password (RFC 2385), so
//! the kernel drops unsigned or wrongly signed SYNs before we see them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::canonical;
use super::msg::PeerCmd;
use super::socket;
use crate::BgpError;

/// Peer address → its session task.
#[derive(Clone, Default)]
pub(crate) struct Dispatch {
    map: Arc<RwLock<HashMap<IpAddr, mpsc::Sender<PeerCmd>>>>,
}

impl Dispatch {
    pub(crate) fn insert(&self, addr: IpAddr, tx: mpsc::Sender<PeerCmd>) {
        if let Ok(mut m) = self.map.write() {
            m.insert(addr.to_canonical(), tx);
        }
    }
    pub(crate) fn remove(&self, addr: IpAddr) {
        if let Ok(mut m) = self.map.write() {
            m.remove(&addr.to_canonical());
        }
    }
    fn get(&self, addr: IpAddr) -> Option<mpsc::Sender<PeerCmd>> {
        self.map.read().ok()?.get(&addr).cloned()
    }
}

pub(crate) struct Listener {
    local: SocketAddr,
    fd: std::os::fd::RawFd,
    task: JoinHandle<()>,
    /// Keeps the socket open for `set_md5` while the task runs.
    _sock: Arc<TcpListener>,
}

impl Listener {
    pub(crate) fn start(addr: SocketAddr, dispatch: Dispatch) -> Result<Listener, BgpError> {
        let l = Arc::new(socket::bind_listener(addr)?);
        let local = l
            .local_addr()
            .map_err(|e| BgpError::io(format!("BGP listener on {addr}"), e))?;
        let fd = l.as_raw_fd();
        info!(%local, "listening for BGP sessions");
        let task = tokio::spawn(accept_loop(l.clone(), dispatch));
        Ok(Listener {
            local,
            fd,
            task,
            _sock: l,
        })
    }

    /// Installs or removes `peer`'s MD5 key on the listening socket.
    pub(crate) fn set_md5(&self, peer: IpAddr, key: Option<&[u8]>) -> Result<(), BgpError> {
        // On a dual-stack [::] socket, IPv4 peers appear as v4-mapped addresses.
        let addr = match (self.local.is_ipv6(), peer) {
            (true, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            _ => peer,
        };
        if key.is_none() {
            // Removing a key that was never set fails with ENOENT: fine.
            let _ = socket::set_md5(self.fd, addr, None);
            return Ok(());
        }
        socket::set_md5(self.fd, addr, key).map_err(|e| {
            BgpError::io(
                format!("TCP MD5 key for peer {peer} on listener {}", self.local),
                e,
            )
        })
    }

    /// Some peer uses GTSM: answer every connection with TTL 255 (RFC 5082 §3).
    pub(crate) fn enable_gtsm_ttl(&self) -> Result<(), BgpError> {
        socket::set_ttl_255(self.fd, self.local.is_ipv6())
            .map_err(|e| BgpError::io(format!("GTSM TTL 255 on listener {}", self.local), e))
    }

    pub(crate) fn abort(&self) {
        self.task.abort();
    }
}

async fn accept_loop(l: Arc<TcpListener>, dispatch: Dispatch) {
    loop {
        let (stream, from) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                warn!("BGP listener accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = canonical(from);
        match dispatch.get(peer) {
            Some(tx) => {
                debug!(%from, "accepted BGP connection");
                if tx.try_send(PeerCmd::Accepted(stream)).is_err() {
                    warn!(%from, "session task busy or gone: connection closed");
                }
            }
            None => {
                warn!(%from, "refused BGP connection from an unconfigured address");
                drop(stream);
            }
        }
    }
}
