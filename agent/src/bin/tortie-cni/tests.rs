//! The forwarder's own unit tests (std build): its copies of the agent's
//! constants equal the library's, and the errors it writes are the JSON the
//! library's `CniError::to_json` writes. The forwarding itself is tested
//! end to end against an agent (agent/tests/agent_cni.rs, both builds).

use serde_json::Value;
use tortie_agent::{api, cni};

use super::*;

#[test]
fn constants_equal_the_agents() {
    assert_eq!(
        VERSION_RESULT,
        format!("{}\n", cni::version_result()).as_bytes()
    );
    assert_eq!(DEFAULT_SOCKET, api::DEFAULT_SOCKET.as_bytes());
    assert_eq!(LATEST, cni::LATEST.as_bytes());
    assert_eq!(
        SUPPORTED_VERSIONS,
        cni::SUPPORTED_VERSIONS.map(str::as_bytes)
    );
    assert_eq!(
        [
            code::IO_FAILURE,
            code::DECODE_FAILURE,
            code::INVALID_NETWORK_CONFIG,
            code::TRY_AGAIN_LATER,
            code::PLUGIN_NOT_AVAILABLE,
            code::AGENT_ERROR,
        ],
        [
            cni::code::IO_FAILURE,
            cni::code::DECODE_FAILURE,
            cni::code::INVALID_NETWORK_CONFIG,
            cni::code::TRY_AGAIN_LATER,
            cni::code::PLUGIN_NOT_AVAILABLE,
            cni::code::AGENT_ERROR,
        ]
    );
}

fn json_of(err: &CniError, version: &[u8]) -> Value {
    let mut out = Out::new();
    let text = err.to_json(version, &mut out);
    assert!(text.ends_with(b"}\n"), "{text:?}");
    serde_json::from_slice(text).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

#[test]
fn error_json_is_the_librarys_and_escapes() {
    let err = CniError::new(code::TRY_AGAIN_LATER, b"the \"agent\"\\ is down")
        .details([
            b"connecting to ",
            b"/tmp/a\nb\x01\t\r\xffc\xc3\xa9",
            b"",
            b"",
        ])
        .errno(Errno(111));
    let want = cni::CniError::new(11, "the \"agent\"\\ is down").with_details(
        "connecting to /tmp/a\nb\u{1}\t\r\u{fffd}c\u{e9}: ECONNREFUSED (nobody listens), errno 111",
    );
    let want: Value = serde_json::from_str(&want.to_json("0.4.0")).unwrap();
    assert_eq!(json_of(&err, b"0.4.0"), want);
    // Without details there is no "details" key.
    let v = json_of(&CniError::new(code::IO_FAILURE, b"x"), LATEST);
    let want: Value = serde_json::from_str(&cni::CniError::new(5, "x").to_json("1.1.0")).unwrap();
    assert_eq!(v, want);
    // An unknown errno still names its number.
    let v = json_of(&CniError::new(5, b"m").errno(Errno(9999)), LATEST);
    assert_eq!(v["details"], ": errno, errno 9999");
}

#[test]
fn overlong_error_text_is_cut_and_stays_json() {
    let long = "\"é\u{1}".repeat(1000);
    let err = CniError::new(code::AGENT_ERROR, long.as_bytes()).details([long.as_bytes(); 4]);
    let v = json_of(&err, LATEST);
    assert_eq!(v["code"], 103);
    let msg = v["msg"].as_str().unwrap_or_default();
    assert!(msg.len() > 150 && long.starts_with(msg), "{msg}");
    let details = v["details"].as_str().unwrap_or_default();
    assert!(
        details.len() > 400 && long.starts_with(details),
        "{details}"
    );
}
