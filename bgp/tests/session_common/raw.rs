//! A scripted raw BGP peer for tests: encode an OPEN, read messages until one
//! matches.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tortie_bgp::wire::{self, Capability, CodecContext, Message, Open};

/// An OPEN from AS 65002 with `id`, hold time 90, 4-octet AS capability.
pub fn open(id: Ipv4Addr) -> Vec<u8> {
    let o = Open {
        version: 4,
        my_as: 65002,
        hold_time: 90,
        bgp_identifier: id,
        capabilities: vec![Capability::FourOctetAs(65002)],
    };
    let mut out = Vec::new();
    wire::encode(&Message::Open(o), &CodecContext::default(), &mut out).unwrap();
    out
}

/// Reads messages until one matches `pred` (or the connection ends).
pub async fn read_until(s: &mut TcpStream, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Ok(Some(len)) = wire::frame(&buf, 4096) {
            let m = wire::decode(&buf[..len], &CodecContext::default()).unwrap();
            buf.drain(..len);
            if pred(&m) {
                return m;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("timeout waiting for {what}"))
            .unwrap_or(0);
        assert!(n > 0, "connection closed while waiting for {what}");
        buf.extend_from_slice(&chunk[..n]);
    }
}
