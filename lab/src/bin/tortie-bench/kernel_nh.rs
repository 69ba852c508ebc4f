//! The nexthop-object format for the benchmarks' raw writers: with
//! [`NEXTHOP_OBJECTS`] set, the reference pipelined writer (`crate::nl`,
//! the kernel benchmark's ceiling and the ingest's kernel floor) writes its
//! routes as `RTA_NH_ID` of one object of its protocol, as
//! `tortie_routes::RouteTable` does with `nexthop_objects` (which the same
//! variable turns on for the kernel benchmark's RouteTable and for the
//! ingest's tortie DUT): both sides write the same format, so the rows keep
//! measuring RouteTable's own overhead. Objects are the product's default
//! (`dataplane.nexthop_objects = true`), so they are the benchmarks' too;
//! `TORTIE_BENCH_NEXTHOP_OBJECTS=0`: inline gateways, both sides.
//! BIRD 2 has no nexthop objects: its routes are always inline.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tortie_routes::nl;
use tortie_routes::nl::consts::NLM_F_ACK;
use tortie_routes::nl::nexthop::{self, Answer};

/// Environment variable: `0` writes learned routes with inline gateways on
/// both sides of a row; unset or any other value, through nexthop objects
/// (the product's default).
pub const NEXTHOP_OBJECTS: &str = "TORTIE_BENCH_NEXTHOP_OBJECTS";

/// Whether the rows use nexthop objects: unless [`NEXTHOP_OBJECTS`] is `0`.
pub fn on() -> bool {
    std::env::var_os(NEXTHOP_OBJECTS).is_none_or(|v| v != "0")
}

/// The raw writer's object for protocol `proto` (outside the product's
/// range, 0x7470_0000..).
fn ref_id(proto: u8) -> u32 {
    0x7462_0000 + u32::from(proto)
}

/// Make (or replace) the raw writer's object: `gw` on the device the kernel
/// resolves it to, as the reconciler makes its own (an `RTM_GETROUTE`, then
/// an acked `RTM_NEWNEXTHOP`), in the calling thread's namespace. Its id.
pub fn make_object(gw: IpAddr, proto: u8) -> Result<u32> {
    let sock = nl::Socket::open(0).context("opening a netlink socket")?;
    let mut req = Vec::new();
    nexthop::route_get(&mut req, 1, gw);
    let oif = match ask(&sock, &req, 1)? {
        Answer::Route(Some(oif)) => oif,
        Answer::Route(None) => bail!("no device for {gw}"),
        Answer::Errno(e) => bail!("looking {gw} up: {}", std::io::Error::from_raw_os_error(e)),
    };
    let id = ref_id(proto);
    req.clear();
    nexthop::encode_new(&mut req, 2, NLM_F_ACK, id, proto, gw, oif, false);
    match ask(&sock, &req, 2)? {
        Answer::Errno(0) => Ok(id),
        Answer::Errno(e) => bail!(
            "nexthop object via {gw}: {}",
            std::io::Error::from_raw_os_error(e)
        ),
        Answer::Route(_) => bail!("unexpected answer to RTM_NEWNEXTHOP"),
    }
}

fn ask(sock: &nl::Socket, req: &[u8], seq: u32) -> Result<Answer> {
    let deadline = Instant::now() + Duration::from_secs(5);
    sock.send_blocking(req, deadline)
        .context("sending a netlink request")?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let Some(n) = sock
            .recv_until(&mut buf, deadline)
            .context("reading a netlink answer")?
        else {
            bail!("no netlink answer within 5 s");
        };
        if let Some(answer) = nexthop::answer_to(buf.get(..n).unwrap_or_default(), seq) {
            return Ok(answer);
        }
    }
}
