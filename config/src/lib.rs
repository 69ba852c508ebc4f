//! tortie-config: the TOML schema of `tortie.toml`, its defaults and its validation.
//!
//! Data flow: a file's text goes in, a validated [`Config`] or a list of problems
//! (each with file:line:column and a hint) comes out. No IO beyond reading the
//! file, the `password_file`s it names and the hostname (the default node name).
//!
//! Stages: `raw` (TOML syntax, unknown keys and value types, via serde with
//! `deny_unknown_fields` and spans) → `validate` + `node` + `peers` (meaning, defaults,
//! cross checks) → [`Config`]. Every stage keeps going after a problem, so one run
//! lists everything wrong with a file. The keys are documented in `docs/config.md`.

mod error;
mod model;
mod nat;
mod node;
mod peer_families;
mod peer_transport;
mod peers;
mod policy;
mod raw;
mod validate;
mod values;

use std::path::Path;

pub use error::{ConfigError, Problem};
pub use model::{
    Advertise, Api, Bfd, Bgp, Config, Dataplane, Encapsulation, Metrics, Node, NodeAddresses, Peer,
    State, defaults,
};
pub use policy::{Communities, MAX_PREFIXES_RESTART, Policy};

/// Reads, parses and validates the file at `path`. Messages name the file as given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin),
        Err(e) => Err(ConfigError {
            problems: vec![Problem {
                file: origin,
                line: 0,
                column: 0,
                message: format!("cannot read the configuration: {e}"),
                hint: Some("check the path given to --config and its permissions".into()),
            }],
        }),
    }
}

/// Parses and validates `text`; `origin` (a file name) prefixes every message.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse_with_hostname(text, origin, &hostname)
}

/// [`parse`] with the default node name supplied by `hostname` (for tests and for
/// callers that know the name better than the kernel).
pub fn parse_with_hostname(
    text: &str,
    origin: &str,
    hostname: &dyn Fn() -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut loc = error::Locator::new(origin, text);
    let config =
        raw::read(&mut loc, text).and_then(|raw| validate::resolve(&mut loc, &raw, hostname));
    match config {
        Some(config) if loc.problems.is_empty() => Ok(config),
        _ => {
            if loc.problems.is_empty() {
                // resolve() only returns None after recording a problem; stay
                // truthful should that ever change.
                loc.report(None, "the configuration is invalid", None);
            }
            let mut problems = loc.problems;
            // In file order, as an operator reads the file (stable: ties keep
            // the order they were found in).
            problems.sort_by_key(|p| (p.line, p.column));
            Err(ConfigError { problems })
        }
    }
}

/// The kernel's hostname (`uname -n`), the default `node.name`.
pub fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}
