//! tortie-agent: wires config, the BGP speaker and the dataplane into one daemon.
//!
//! Data flow: the [`daemon`] loads the config, starts the route table, IPAM,
//! the local [`api`] server, [`metrics`] and the BGP speaker, then turns
//! best-path changes into kernel routes and API attach/detach calls into IPAM +
//! dataplane + BGP originations. The CLI ([`cli`]) and the CNI plugin ([`cni`])
//! are thin clients of the API.

pub mod api;
pub mod cli;
pub mod cni;
pub mod daemon;
pub mod httpd;
pub mod ipam;
pub mod logging;
pub mod metrics;
pub mod procstat;
