//! The network config's top level, scanned without a heap: the forwarder
//! needs only two strings of it, `"socket"` (where the agent listens) and
//! `"cniVersion"` (the version of the errors it writes itself). Nested
//! values (`args`, `runtimeConfig`, `prevResult`, …) are skipped, so a
//! `"socket"` key inside them is not taken; string escapes (RFC 8259 §7,
//! surrogate pairs included) are decoded into fixed buffers.
//!
//! Data flow: bytes → [`scan`] → [`Config`]. The agent decodes the whole
//! config again with serde and answers its own errors; this scanner checks
//! only what it walks (it is lax inside skipped values, strict at the top).

/// Nesting the skipper follows (serde_json's own limit is 128).
const MAX_DEPTH: usize = 128;

/// A decoded JSON string in a fixed buffer.
#[derive(Clone, Copy)]
pub struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// Bytes did not fit (the text is the first `N`).
    pub overflow: bool,
}

impl<const N: usize> Text<N> {
    pub const fn new() -> Self {
        Text {
            buf: [0; N],
            len: 0,
            overflow: false,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
    fn push(&mut self, b: u8) {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = b;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }
    fn push_char(&mut self, c: char) {
        let mut utf8 = [0u8; 4];
        for &b in c.encode_utf8(&mut utf8).as_bytes() {
            self.push(b);
        }
    }
}

/// One top-level key we look for.
#[derive(Clone, Copy)]
pub enum Field<const N: usize> {
    Absent,
    Str(Text<N>),
    /// Present with a value that is not a string.
    NotString,
}

/// What the forwarder reads of the config. `SOCKET` bytes hold a unix
/// socket path (`sun_path`); a longer one is reported as overflowing.
pub struct Config<const SOCKET: usize> {
    pub socket: Field<SOCKET>,
    pub cni_version: Field<16>,
}

/// Scans the config's top-level object. `Err`: not a JSON object (why).
pub fn scan<const SOCKET: usize>(conf: &[u8]) -> Result<Config<SOCKET>, &'static str> {
    let mut p = Parser { s: conf, i: 0 };
    let mut out = Config {
        socket: Field::Absent,
        cni_version: Field::Absent,
    };
    p.ws();
    p.expect(b'{', "the network config is not a JSON object")?;
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            let mut key = Text::<16>::new();
            p.string(&mut key)?;
            p.ws();
            p.expect(b':', "expected ':' after a key")?;
            p.ws();
            let key = (!key.overflow).then(|| key.as_bytes());
            match key {
                Some(b"socket") if matches!(out.socket, Field::Absent) => {
                    out.socket = p.field()?;
                }
                Some(b"cniVersion") if matches!(out.cni_version, Field::Absent) => {
                    out.cni_version = p.field()?;
                }
                _ => p.skip_value()?,
            }
            p.ws();
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                Some(_) => return Err("expected ',' or '}' in the config object"),
                None => return Err("the network config is truncated"),
            }
        }
    }
    p.ws();
    if p.i != conf.len() {
        return Err("trailing characters after the network config");
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn expect(&mut self, c: u8, why: &'static str) -> Result<(), &'static str> {
        match self.next() {
            Some(b) if b == c => Ok(()),
            Some(_) => Err(why),
            None => Err("the network config is truncated"),
        }
    }

    /// A string value into a field, any other value skipped.
    fn field<const N: usize>(&mut self) -> Result<Field<N>, &'static str> {
        if self.peek() == Some(b'"') {
            let mut t = Text::new();
            self.string(&mut t)?;
            Ok(Field::Str(t))
        } else {
            self.skip_value()?;
            Ok(Field::NotString)
        }
    }

    /// A string at `i` (its opening quote), decoded into `out`.
    fn string<const N: usize>(&mut self, out: &mut Text<N>) -> Result<(), &'static str> {
        self.expect(b'"', "expected a string")?;
        loop {
            match self.next() {
                None => return Err("the network config is truncated"),
                Some(b'"') => return Ok(()),
                Some(b'\\') => {
                    let c = match self.next() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        Some(_) => return Err("invalid escape in a string"),
                        None => return Err("the network config is truncated"),
                    };
                    out.push_char(c);
                }
                Some(b) if b < 0x20 => return Err("control character in a string"),
                Some(b) => out.push(b),
            }
        }
    }

    /// After `\u`: four hex digits, and a second `\uXXXX` for a surrogate
    /// pair (RFC 8259 §7).
    fn unicode_escape(&mut self) -> Result<char, &'static str> {
        let hi = self.hex4()?;
        let code = match hi {
            0xd800..=0xdbff => {
                if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                    return Err("lone surrogate in a string");
                }
                let lo = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&lo) {
                    return Err("lone surrogate in a string");
                }
                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
            }
            0xdc00..=0xdfff => return Err("lone surrogate in a string"),
            c => c,
        };
        char::from_u32(code).ok_or("invalid \\u escape")
    }

    fn hex4(&mut self) -> Result<u32, &'static str> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self
                .next()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or("invalid \\u escape")?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    /// Skips one value (any nesting, iteratively): strings are walked with
    /// their escapes so brackets inside them do not count.
    fn skip_value(&mut self) -> Result<(), &'static str> {
        let mut depth = 0usize;
        loop {
            self.ws();
            match self.peek() {
                None => return Err("the network config is truncated"),
                Some(b'"') => self.string(&mut Text::<0>::new())?,
                Some(b'{' | b'[') => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err("the network config nests too deeply");
                    }
                    self.i += 1;
                    continue;
                }
                Some(b'}' | b']') => {
                    if depth == 0 {
                        return Err("expected a value");
                    }
                    depth -= 1;
                    self.i += 1;
                }
                Some(b',' | b':') if depth > 0 => {
                    self.i += 1;
                    continue;
                }
                Some(_) => {
                    let start = self.i;
                    while matches!(
                        self.peek(),
                        Some(b'a'..=b'z' | b'0'..=b'9' | b'+' | b'-' | b'.' | b'E')
                    ) {
                        self.i += 1;
                    }
                    if self.i == start {
                        return Err("expected a value");
                    }
                }
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(conf: &str) -> Result<Option<String>, &'static str> {
        Ok(match scan::<108>(conf.as_bytes())?.socket {
            Field::Str(t) => Some(String::from_utf8_lossy(t.as_bytes()).into_owned()),
            Field::NotString => Some("<not a string>".into()),
            Field::Absent => None,
        })
    }

    #[test]
    fn top_level_socket_only() {
        let c = r#"{"cniVersion":"1.1.0","args":{"socket":"/a","x":[{"socket":"/b"}]},
            "runtimeConfig":{"socket":"/c"},"prevResult":{"ips":[],"socket":"/d"},
            "name":"n","socket":"/run/x.sock","type":"tortie"}"#;
        assert_eq!(socket(c), Ok(Some("/run/x.sock".into())));
        let v = scan::<108>(c.as_bytes()).unwrap().cni_version;
        assert!(matches!(v, Field::Str(t) if t.as_bytes() == b"1.1.0"));
        assert_eq!(socket(r#"{"args":{"socket":"/a"}}"#), Ok(None));
        assert_eq!(socket(" { } \n"), Ok(None));
        assert_eq!(socket(r#"{"socket":7}"#), Ok(Some("<not a string>".into())));
        // The first occurrence is taken.
        assert_eq!(
            socket(r#"{"socket":"/1","socket":"/2"}"#),
            Ok(Some("/1".into()))
        );
    }

    #[test]
    fn escaped_keys_and_values() {
        // An escaped key is the same key; brackets and quotes inside
        // strings do not confuse the skipper.
        let c = r#"{"a":"}]\"{[","so\u0063ket":"\/tmp\\t\u00e9\ud83d\ude00.sock","b":["\"]"]}"#;
        assert_eq!(socket(c), Ok(Some("/tmp\\t\u{e9}\u{1f600}.sock".into())));
        assert_eq!(
            socket(r#"{"socket":"a\nb\tc\"d"}"#),
            Ok(Some("a\nb\tc\"d".into()))
        );
        let long = format!(r#"{{"socket":"{}"}}"#, "x".repeat(200));
        match scan::<108>(long.as_bytes()).unwrap().socket {
            Field::Str(t) => assert!(t.overflow && t.as_bytes().len() == 108),
            _ => panic!("socket not found"),
        }
        // A key longer than the key buffer is just another key.
        assert_eq!(socket(r#"{"socketsocketsocketsocket":"/x"}"#), Ok(None));
    }

    #[test]
    fn truncated_and_odd_configs_are_errors() {
        for bad in [
            "",
            "   ",
            "[]",
            "null",
            "{",
            r#"{"socket""#,
            r#"{"socket":"/x"#,
            r#"{"socket":"/x","#,
            r#"{"a":{"b":[1,2"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":}"#,
            r#"{"a":1}x"#,
            r#"{"a":"\q"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00x"}"#,
            r#"{"a":"\u12"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{1:2}"#,
        ] {
            assert!(scan::<108>(bad.as_bytes()).is_err(), "{bad:?} accepted");
        }
        let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(scan::<108>(deep.as_bytes()).is_err());
        let ok = format!(r#"{{"a":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(scan::<108>(ok.as_bytes()).is_ok());
        assert!(scan::<108>(br#"{"a":[true,false,null,-1.5e+3,{}],"b":{"c":{}}}"#).is_ok());
    }
}
