//! tortie-routes: the Linux dataplane. Knows nothing of BGP.
//!
//! Data flow: intents (a container to attach; a desired set of kernel routes)
//! come in; netlink requests go out; a monitor restores what others remove.
