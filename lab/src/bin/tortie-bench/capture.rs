//! The moment the first UPDATE leaves a feeder, seen on the wire: a packet
//! socket (`AF_PACKET`) on the feeder's veth, inside its namespace, reports
//! the first outgoing TCP segment (by its kernel timestamp) whose payload holds a BGP UPDATE with
//! content (RFC 4271 §4.3; an empty UPDATE — an End-of-RIB, RFC 4724 §2 —
//! does not count). The same clock start for every feeder, whether it is
//! BIRD or the bench's own pre-built writer, so both DUTs and both feeders
//! are timed the same way.
//!
//! Data flow: [`FirstUpdate::start`] spawns a thread that enters the
//! namespace, opens and binds the socket, says it is ready, then reads until
//! it sees the UPDATE (or is stopped), and closes the socket at once so the
//! rest of the load is not copied to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Watches one interface for the first outgoing UPDATE.
pub struct FirstUpdate {
    rx: mpsc::Receiver<Result<Instant, String>>,
    stop: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl FirstUpdate {
    /// Starts watching `ifname` in namespace `ns`; returns once the socket
    /// is bound (packets sent after that are seen).
    pub fn start(ns: &str, ifname: &str) -> Result<FirstUpdate> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let ns = ns.to_string();
        let ifname = ifname.to_string();
        let join = std::thread::spawn(move || {
            let r = crate::nl::in_netns(&ns, move || watch(&ifname, &ready_tx, &stop2));
            let _ = tx.send(r.map_err(|e| format!("{e:#}")));
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => {}
            Err(_) => {
                let msg = rx
                    .recv_timeout(Duration::from_secs(1))
                    .ok()
                    .and_then(|r| r.err())
                    .unwrap_or_else(|| "no answer".into());
                bail!("packet capture did not start: {msg}");
            }
        }
        Ok(FirstUpdate {
            rx,
            stop,
            join: Some(join),
        })
    }

    /// When the first UPDATE left, waiting up to `timeout`.
    pub fn wait(&self, timeout: Duration) -> Result<Instant> {
        match self.rx.recv_timeout(timeout) {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => bail!("packet capture: {e}"),
            Err(_) => bail!("no UPDATE seen on the feeder's interface within {timeout:?}"),
        }
    }
}

impl Drop for FirstUpdate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// A file descriptor closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn watch(ifname: &str, ready: &mpsc::Sender<()>, stop: &AtomicBool) -> Result<Instant> {
    // Outgoing packets reach only ETH_P_ALL taps (dev_queue_xmit_nit).
    const ETH_P_ALL: u16 = 0x0003;
    // SAFETY: plain syscalls with valid arguments; the buffers outlive them.
    unsafe {
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            libc::c_int::from(ETH_P_ALL.to_be()),
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("AF_PACKET socket");
        }
        let fd = Fd(fd);
        let cname = std::ffi::CString::new(ifname).context("interface name")?;
        let index = libc::if_nametoindex(cname.as_ptr());
        if index == 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("interface {ifname}"));
        }
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = index as i32;
        if libc::bind(
            fd.0,
            (&raw const sll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        ) != 0
        {
            return Err(std::io::Error::last_os_error()).context("binding the packet socket");
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        // Kernel receive timestamps (CLOCK_REALTIME), so a late wake-up of
        // this thread on a busy CPU does not move t0.
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        );
        let _ = ready.send(());
        let mut buf = [0u8; 4096];
        let mut ctrl = [0u64; 32];
        loop {
            if stop.load(Ordering::Relaxed) {
                bail!("stopped before any UPDATE");
            }
            let mut from: libc::sockaddr_ll = std::mem::zeroed();
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = (&raw mut from).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = ctrl.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&ctrl);
            let n = libc::recvmsg(fd.0, &mut msg, 0);
            let now = Instant::now();
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) {
                    continue;
                }
                return Err(e).context("reading the packet socket");
            }
            if from.sll_pkttype != libc::PACKET_OUTGOING {
                continue;
            }
            if carries_update(&buf[..n as usize]) {
                return Ok(now - kernel_delay(&msg).unwrap_or_default());
            }
        }
    }
}

/// How long ago the kernel stamped the packet (SCM_TIMESTAMPNS, real time).
///
/// # Safety
/// `msg` must come from a successful `recvmsg` whose control buffer is live.
unsafe fn kernel_delay(msg: &libc::msghdr) -> Option<Duration> {
    // SAFETY: walking the control messages recvmsg filled in.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                let stamped = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?;
                return Some(now.saturating_sub(stamped).min(Duration::from_secs(1)));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
        None
    }
}

/// Whether an Ethernet frame (what a `SOCK_RAW` packet socket on a veth
/// gives) carries IPv4 TCP with a BGP UPDATE
/// longer than an End-of-RIB at a message boundary of its payload.
fn carries_update(frame: &[u8]) -> bool {
    // Ethernet: EtherType IPv4.
    if frame.get(12..14) != Some(&[0x08, 0x00]) {
        return false;
    }
    let Some(ip) = frame.get(14..) else {
        return false;
    };
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 6 {
        return false;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let Some(tcp) = ip.get(ihl..) else {
        return false;
    };
    if tcp.len() < 20 {
        return false;
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    let Some(mut payload) = tcp.get(doff..) else {
        return false;
    };
    // Walk the BGP messages from the start of the segment.
    while payload.len() >= 19 && payload[..16].iter().all(|&b| b == 0xff) {
        let len = usize::from(u16::from_be_bytes([payload[16], payload[17]]));
        if payload[18] == 2 && len > 23 {
            return true;
        }
        if len < 19 || len > payload.len() {
            return false;
        }
        payload = &payload[len..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[9] = 6;
        let mut tcp = vec![0u8; 20];
        tcp[12] = 5 << 4;
        f.extend(ip);
        f.extend(tcp);
        f.extend_from_slice(payload);
        f
    }

    fn msg(kind: u8, body: usize) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend(((19 + body) as u16).to_be_bytes());
        m.push(kind);
        m.extend(vec![0u8; body]);
        m
    }

    #[test]
    fn finds_updates_but_not_keepalives_or_end_of_rib() {
        assert!(!carries_update(&frame(&msg(4, 0))));
        assert!(!carries_update(&frame(&msg(2, 4))), "End-of-RIB");
        assert!(carries_update(&frame(&msg(2, 30))));
        let mut two = msg(4, 0);
        two.extend(msg(2, 30));
        assert!(carries_update(&frame(&two)), "after a KEEPALIVE");
        assert!(!carries_update(&frame(&[1, 2, 3])));
        assert!(!carries_update(&[0u8; 10]));
    }
}
