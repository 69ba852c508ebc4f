//! Detach: delete a container's host veth (the kernel removes its peer,
//! addresses and routes with it), on the blocking pool; and whether a link
//! exists.

use super::host_ifname;
use super::setup::{expect_ok, nl_deadline};
use crate::error::RoutesError;
use crate::nl::rtnl::*;

/// Delete a link by name on `h`; "no such device" is success.
pub(super) fn delete_link_blocking(h: &mut Rtnl, name: &str) -> Result<(), RoutesError> {
    let msg = Msg::new(RTM_DELLINK, 0, &ifinfomsg(0, 0, 0)).str(IFLA_IFNAME, name);
    let r = h
        .transact(vec![msg], nl_deadline())
        .map_err(|e| RoutesError::io(format!("deleting {name}"), e))?;
    match r.first() {
        Some(Outcome::Err(libc::ENODEV, _)) => Ok(()),
        o => expect_ok(o, || format!("deleting {name}")).map(|_| ()),
    }
}

/// Detach a container: delete its host veth. The kernel removes the peer in
/// the container, and every route through the veth (the host route of
/// `route_protocol` included) with it. Already gone is success.
pub async fn detach(
    container_id: &str,
    veth_prefix: &str,
    route_protocol: u8,
) -> Result<(), RoutesError> {
    let ctx = format!("detach {container_id}");
    let host = host_ifname(veth_prefix, container_id);
    delete_host_veth(&host, &ctx).await?;
    tracing::debug!(container = container_id, veth = %host, proto = route_protocol, "detached");
    Ok(())
}

/// Deletes the veth named `host` (and with it its peer, addresses and
/// routes); already gone is success. `ctx` prefixes errors.
///
/// Deleting a veth takes the kernel ~20 ms (netdev unregistration waits
/// for RCU grace periods) inside the request: it runs on the blocking
/// pool, not on the caller's runtime thread.
pub async fn delete_host_veth(host: &str, ctx: &str) -> Result<(), RoutesError> {
    let name = host.to_string();
    let c = ctx.to_string();
    tokio::task::spawn_blocking(move || {
        let mut h = Rtnl::open(0)
            .map_err(|e| RoutesError::io(format!("{c}: opening a netlink socket"), e))?;
        delete_link_blocking(&mut h, &name).map_err(|e| e.within(&c))
    })
    .await
    .map_err(|e| RoutesError::unexpected(ctx, format!("the detach task failed: {e}")))?
}

/// Whether a link named `name` exists in the caller's namespace (one
/// `if_nametoindex`, a few µs: cheap enough for every attach).
pub fn link_exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}
