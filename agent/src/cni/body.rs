//! The `POST /v1/cni` request body, as the plugin (a transport) sends it:
//! each of its `CNI_*` environment variables as `NAME=VALUE` and one `\0`,
//! in envp order, then an empty entry (one more `\0`), then the network
//! config exactly as the runtime wrote it on stdin (docs/cni.md).
//!
//! Data flow: [`parse_body`] splits a body into the environment (a map, the
//! first occurrence of a name winning, as `getenv` does) and the config
//! bytes, or says precisely what is wrong with it as a [`CniError`]; it
//! never guesses. The answer's format is [`super::Output::to_body`]. Pure.

use std::collections::BTreeMap;

use super::{CniError, code};

/// The environment of one invocation and its network config.
pub type Parsed<'a> = (BTreeMap<String, String>, &'a [u8]);

/// Splits a `/v1/cni` body. Errors: an entry that is not UTF-8 or has no `=`
/// or an empty name ([`code::INVALID_ENV`]), a body that ends inside the
/// list ([`code::IO_FAILURE`]: the request was cut).
pub fn parse_body(body: &[u8]) -> Result<Parsed<'_>, CniError> {
    let mut env = BTreeMap::new();
    let mut rest = body;
    loop {
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            return Err(CniError::new(
                code::IO_FAILURE,
                "the plugin's request ends inside its environment list (no empty entry)",
            )
            .with_details(format!("{} bytes received", body.len())));
        };
        let (entry, tail) = (&rest[..end], &rest[end + 1..]);
        if entry.is_empty() {
            return Ok((env, tail));
        }
        let text = std::str::from_utf8(entry).map_err(|_| {
            CniError::new(
                code::INVALID_ENV,
                format!(
                    "environment entry {:?} is not UTF-8",
                    String::from_utf8_lossy(entry)
                ),
            )
        })?;
        let (name, value) = text.split_once('=').ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                format!("environment entry {text:?} is not NAME=VALUE"),
            )
        })?;
        if name.is_empty() {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!("environment entry {text:?} has an empty name"),
            ));
        }
        env.entry(name.to_string())
            .or_insert_with(|| value.to_string());
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_environment_and_config() {
        let (env, conf) =
            parse_body(b"CNI_COMMAND=ADD\0CNI_ARGS=IP=10.0.0.9;X=\0\0{\"a\":0}").unwrap();
        assert_eq!(env.get("CNI_COMMAND").map(String::as_str), Some("ADD"));
        // Only the first '=' splits: the value keeps its own.
        assert_eq!(
            env.get("CNI_ARGS").map(String::as_str),
            Some("IP=10.0.0.9;X=")
        );
        assert_eq!(env.len(), 2);
        assert_eq!(conf, b"{\"a\":0}");
        // An empty list and an empty config; NULs inside the config are its own.
        let (env, conf) = parse_body(b"\0").unwrap();
        assert!(env.is_empty() && conf.is_empty());
        let (_, conf) = parse_body(b"A=\0\0x\0\0y").unwrap();
        assert_eq!(conf, b"x\0\0y");
    }

    #[test]
    fn first_occurrence_wins() {
        let (env, _) = parse_body(b"CNI_IFNAME=eth0\0CNI_IFNAME=eth1\0\0").unwrap();
        assert_eq!(env.get("CNI_IFNAME").map(String::as_str), Some("eth0"));
    }

    #[test]
    fn bad_bodies_are_named_errors() {
        for (body, c, says) in [
            (&b""[..], code::IO_FAILURE, "no empty entry"),
            (b"CNI_COMMAND=ADD", code::IO_FAILURE, "no empty entry"),
            (b"CNI_COMMAND=ADD\0", code::IO_FAILURE, "no empty entry"),
            (b"CNI_COMMAND\0\0{}", code::INVALID_ENV, "not NAME=VALUE"),
            (b"=ADD\0\0{}", code::INVALID_ENV, "empty name"),
            (b"CNI_NETNS=\xff\0\0{}", code::INVALID_ENV, "not UTF-8"),
            (b"CNI_\xfe=x\0\0{}", code::INVALID_ENV, "not UTF-8"),
        ] {
            let e = parse_body(body).unwrap_err();
            assert_eq!(e.code, c, "{body:?}: {e}");
            assert!(e.msg.contains(says), "{body:?}: {e}");
        }
    }
}
