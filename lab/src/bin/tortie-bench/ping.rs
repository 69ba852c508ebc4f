//! An ICMP echo prober for the convergence benchmark: from inside a
//! container namespace, sends an echo request to the target every
//! millisecond until the first reply, so the moment a path starts working
//! is known to about 1 ms (spawning `ping` per try would cost more).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(id: u16, seq: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 8; // echo request (RFC 792)
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"tortieb!");
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// Is `pkt` (an IPv4 datagram from a raw socket) an echo reply from `from`
/// with our `id`?
fn is_reply(pkt: &[u8], from: Ipv4Addr, id: u16) -> bool {
    let Some(&vihl) = pkt.first() else {
        return false;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    if pkt.len() < ihl + 8 || pkt.len() < 20 {
        return false;
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let icmp = &pkt[ihl..];
    src == from && icmp[0] == 0 && u16::from_be_bytes([icmp[4], icmp[5]]) == id
}

/// Probes `dst` from the calling thread's namespace until a reply or
/// `deadline`; returns the moment the first reply arrived.
pub fn first_reply(dst: Ipv4Addr, deadline: Instant) -> Result<Instant> {
    // SAFETY: socket(2) returns a new fd or -1.
    let raw = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error()).context("opening a raw ICMP socket");
    }
    // SAFETY: raw is a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let id = (std::process::id() & 0xffff) as u16 ^ 0x7a7a;
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_addr.s_addr = u32::from(dst).to_be();
    let mut buf = [0u8; 1500];
    let mut seq: u16 = 0;
    loop {
        if Instant::now() > deadline {
            bail!("no echo reply from {dst}");
        }
        seq = seq.wrapping_add(1);
        let req = echo_request(id, seq);
        // SAFETY: req and sa are valid for their sizes. Errors (no route yet,
        // EHOSTUNREACH) just mean "try again".
        unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                libc::MSG_DONTWAIT,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        };
        let until = Instant::now() + Duration::from_millis(1);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = if left.is_zero() { 0 } else { 1 };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc <= 0 {
                break;
            }
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                libc::recv(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 && is_reply(&buf[..n as usize], dst, id) {
                return Ok(Instant::now());
            }
            if left.is_zero() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_request_verifies() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn recognises_reply() {
        let mut pkt = vec![0x45u8; 1];
        pkt.extend_from_slice(&[0; 11]);
        pkt.extend_from_slice(&[10, 0, 0, 9, 10, 0, 0, 1]);
        pkt.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 1]);
        assert!(is_reply(&pkt, Ipv4Addr::new(10, 0, 0, 9), 0x1234));
        assert!(!is_reply(&pkt, Ipv4Addr::new(10, 0, 0, 8), 0x1234));
        assert!(!is_reply(&pkt[..10], Ipv4Addr::new(10, 0, 0, 9), 0x1234));
    }
}
