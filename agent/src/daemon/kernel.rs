//! What the agent asks of the kernel, as two small traits: [`Routes`] (the
//! route table: the desired kernel routes, the convergence sweep, what is
//! installed) and [`Veths`] (the containers' veths: make, delete, find).
//! The agent ([`super::agent::Agent`]) and the container steps
//! ([`super::containers`]) reach the kernel only through them.
//!
//! Data flow: `tortie run` builds the agent over the real ones —
//! [`tortie_routes::RouteTable`] (its reconciler task writes the kernel) and
//! [`KernelVeths`] (the `tortie_routes` attach functions, over one kept
//! [`tortie_routes::Attacher`]). The orchestration
//! tests (`daemon::replay`) build it over recording doubles instead and
//! replay speaker events and API calls as a normal user, without
//! namespaces (docs/design.md §8, tier 1). The agent is
//! generic over both traits, so the real build calls the real methods
//! directly: nothing on the learned-route path goes through a vtable.
//!
//! Each method is exactly one call the agent makes; their contracts are the
//! real ones' (see the `tortie_routes` docs named on each).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use tortie_routes::{
    AttachRequest, Attacher, Attachment, HostRoutes, KernelRoute, RouteStats, RouteTable,
    RoutesError, SharedRoute,
};

/// The route table: the only writer of our routes (see [`RouteTable`]).
pub trait Routes: Send + Sync + 'static {
    /// A route interned by the table ([`SharedRoute`]): cheap to clone and
    /// to pass, one per distinct route.
    type Shared: Clone + Send + Sync + std::fmt::Debug + 'static;
    /// The table's shared copy of `route` ([`RouteTable::intern`], the one
    /// interner of routes): call it once per distinct route, not per prefix.
    fn intern(&self, route: KernelRoute) -> Self::Shared;
    /// Desires in order, as one burst of the batch `order`: `Some` =
    /// desire, `None` = remove ([`RouteTable::apply_in_order`]; waits while
    /// the table's queue is full).
    fn apply(
        &self,
        order: u64,
        changes: Vec<(IpNetwork, Option<Self::Shared>)>,
    ) -> impl Future<Output = ()> + Send;
    /// Changes of the batch `order` ahead of everything queued, at once
    /// ([`RouteTable::express`]).
    fn express(&self, order: u64, changes: Vec<(IpNetwork, Option<Self::Shared>)>);
    /// Desire `route` for `prefix` ([`RouteTable::set`]).
    fn set(&self, prefix: IpNetwork, route: KernelRoute) -> impl Future<Output = ()> + Send;
    /// The protocol and table an attach writes host routes with
    /// ([`RouteTable::host_routes`]).
    fn host_routes(&self) -> HostRoutes;
    /// Desire `route`, which the caller writes itself next
    /// ([`RouteTable::expect`]; returns once queued).
    fn expect(&self, prefix: IpNetwork, route: KernelRoute) -> impl Future<Output = ()> + Send;
    /// Desire `route` and wait until the kernel holds it ([`RouteTable::install`]).
    fn install(
        &self,
        prefix: IpNetwork,
        route: KernelRoute,
    ) -> impl Future<Output = Result<(), RoutesError>> + Send;
    /// No longer desire a route for `prefix`; returns once the table has
    /// taken that, so the device it named may go next ([`RouteTable::uninstall`]).
    fn remove(&self, prefix: IpNetwork) -> impl Future<Output = ()> + Send;
    /// Sweep adopted routes not desired; returns once written ([`RouteTable::converged`]).
    fn converged(&self) -> impl Future<Output = ()> + Send;
    /// Our routes in the kernel ([`RouteTable::installed`]).
    fn installed(&self) -> impl Future<Output = HashMap<IpNetwork, KernelRoute>> + Send;
    /// Desired routes not in the kernel, with why ([`RouteTable::not_installed`]).
    fn not_installed(&self) -> impl Future<Output = HashMap<IpNetwork, String>> + Send;
    /// The counters ([`RouteTable::stats`]).
    fn stats(&self) -> RouteStats;
}

impl Routes for RouteTable {
    type Shared = SharedRoute;
    fn intern(&self, route: KernelRoute) -> SharedRoute {
        RouteTable::intern(self, route)
    }
    fn apply(
        &self,
        order: u64,
        changes: Vec<(IpNetwork, Option<SharedRoute>)>,
    ) -> impl Future<Output = ()> + Send {
        RouteTable::apply_in_order(self, order, changes)
    }
    fn express(&self, order: u64, changes: Vec<(IpNetwork, Option<SharedRoute>)>) {
        RouteTable::express(self, order, changes)
    }
    fn set(&self, prefix: IpNetwork, route: KernelRoute) -> impl Future<Output = ()> + Send {
        RouteTable::set(self, prefix, route)
    }
    fn host_routes(&self) -> HostRoutes {
        RouteTable::host_routes(self)
    }
    fn expect(&self, prefix: IpNetwork, route: KernelRoute) -> impl Future<Output = ()> + Send {
        RouteTable::expect(self, prefix, route)
    }
    fn install(
        &self,
        prefix: IpNetwork,
        route: KernelRoute,
    ) -> impl Future<Output = Result<(), RoutesError>> + Send {
        RouteTable::install(self, prefix, route)
    }
    fn remove(&self, prefix: IpNetwork) -> impl Future<Output = ()> + Send {
        RouteTable::uninstall(self, prefix)
    }
    fn converged(&self) -> impl Future<Output = ()> + Send {
        RouteTable::converged(self)
    }
    fn installed(&self) -> impl Future<Output = HashMap<IpNetwork, KernelRoute>> + Send {
        RouteTable::installed(self)
    }
    fn not_installed(&self) -> impl Future<Output = HashMap<IpNetwork, String>> + Send {
        RouteTable::not_installed(self)
    }
    fn stats(&self) -> RouteStats {
        RouteTable::stats(self)
    }
}

/// The containers' veths (see [`mod@tortie_routes::attach`]).
pub trait Veths: Send + Sync + 'static {
    /// Make the veth pair, address the container and write the host
    /// routes `req` asks for ([`tortie_routes::Attacher::attach`]).
    fn attach(
        &self,
        req: &AttachRequest,
    ) -> impl Future<Output = Result<Attachment, RoutesError>> + Send;
    /// Delete the container's host veth; gone is success ([`tortie_routes::detach`]).
    fn detach(
        &self,
        container_id: &str,
        veth_prefix: &str,
        route_protocol: u8,
    ) -> impl Future<Output = Result<(), RoutesError>> + Send;
    /// Delete the veth named `host`; gone is success ([`tortie_routes::delete_host_veth`]).
    fn delete_host_veth(
        &self,
        host: &str,
        ctx: &str,
    ) -> impl Future<Output = Result<(), RoutesError>> + Send;
    /// Whether a link named `name` exists ([`tortie_routes::link_exists`]).
    fn link_exists(&self, name: &str) -> bool;
    /// Links named `veth_prefix…` ([`tortie_routes::list_host_veths`]).
    fn list_host_veths(
        &self,
        veth_prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, RoutesError>> + Send;
    /// (host veth, address) of each container host route ([`tortie_routes::list_attachments`]).
    fn list_attachments(
        &self,
        veth_prefix: &str,
        route_protocol: u8,
    ) -> impl Future<Output = Result<Vec<(String, IpAddr)>, RoutesError>> + Send;
}

/// The real veths: the `tortie_routes` attach functions, in the process's
/// network namespace; attaches reuse one [`Attacher`] (a kept netlink
/// socket, `ip_forward` file and namespace descriptor).
#[derive(Clone, Debug)]
pub struct KernelVeths {
    attacher: Attacher,
}

impl KernelVeths {
    /// Veths in the calling thread's namespace (the agent's).
    pub fn new() -> Result<KernelVeths, RoutesError> {
        Ok(KernelVeths {
            attacher: Attacher::new()?,
        })
    }
}

impl Veths for KernelVeths {
    fn attach(
        &self,
        req: &AttachRequest,
    ) -> impl Future<Output = Result<Attachment, RoutesError>> + Send {
        self.attacher.attach(req)
    }
    fn detach(
        &self,
        container_id: &str,
        veth_prefix: &str,
        route_protocol: u8,
    ) -> impl Future<Output = Result<(), RoutesError>> + Send {
        tortie_routes::detach(container_id, veth_prefix, route_protocol)
    }
    fn delete_host_veth(
        &self,
        host: &str,
        ctx: &str,
    ) -> impl Future<Output = Result<(), RoutesError>> + Send {
        tortie_routes::delete_host_veth(host, ctx)
    }
    fn link_exists(&self, name: &str) -> bool {
        tortie_routes::link_exists(name)
    }
    fn list_host_veths(
        &self,
        veth_prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, RoutesError>> + Send {
        tortie_routes::list_host_veths(veth_prefix)
    }
    fn list_attachments(
        &self,
        veth_prefix: &str,
        route_protocol: u8,
    ) -> impl Future<Output = Result<Vec<(String, IpAddr)>, RoutesError>> + Send {
        tortie_routes::list_attachments(veth_prefix, route_protocol)
    }
}
