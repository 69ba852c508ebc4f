//! tortie-lab: containerlab topologies, the netns lab runner and the harness the
//! interop, end-to-end and benchmark tests use to script real daemons.
//!
//! Data flow: a test (or the `tortie-lab` runner) creates network namespaces
//! ([`netns`]), joins them with veths, starts daemons inside them ([`process`]):
//! BIRD ([`bird`]), FRR ([`frr`]), GoBGP ([`gobgp`]), ExaBGP ([`exabgp`]) or the
//! tortie agent ([`tortie`]), each configured from a plain struct rendered to the
//! daemon's own file format, then polls their CLIs ([`wait::wait_until`]) for
//! session state and routes. Every guard removes what it made on drop, on panic
//! too. The runner ([`topology`] parses containerlab YAML, [`runner`] plays it)
//! records each creation on disk first so `down` can undo a crashed `up`.
//! [`scale`] generates large topologies for it; [`limits`] raises what
//! hundreds of daemons need; [`parallel`] runs `up`'s independent steps
//! with bounded concurrency.

pub mod bird;
pub mod cut;
pub mod error;
pub mod exabgp;
pub mod frr;
pub mod gobgp;
pub mod inspect;
pub mod limits;
pub mod netns;
pub mod parallel;
pub mod process;
pub mod runner;
pub mod scale;
pub mod topology;
pub mod tortie;
pub mod wait;

pub use error::{LabError, Result};
pub use netns::{Netns, require_root, unique_name};
pub use process::Daemon;
pub use wait::{wait_for, wait_until};
