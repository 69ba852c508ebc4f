//! The forwarder's HTTP/1.1 exchange with the agent (`POST /v1/cni`;
//! docs/cni.md "How an invocation flows", RFC 9112): the request head, and
//! the response: status line, `Content-Length` framing, the body
//! `<exit>\n<stdout>`.
//!
//! Data flow: `main` writes the body into its buffer after [`HEAD_ROOM`]
//! bytes, [`request_head`] fills the room's end so head and body are one
//! contiguous write; the answer is read into the same buffer and
//! [`parse_response`] is asked after every read whether it is complete.

/// Bytes kept in front of the body for the request head.
pub const HEAD_ROOM: usize = 128;

/// Writes the request head for a body of `body_len` bytes into the end of
/// `room`; returns where the head starts.
pub fn request_head(body_len: usize, room: &mut [u8; HEAD_ROOM]) -> usize {
    let mut digits = [0u8; 20];
    let n = decimal(body_len as u64, &mut digits);
    let parts: [&[u8]; 3] = [
        b"POST /v1/cni HTTP/1.1\r\nHost: tortie\r\nContent-Length: ",
        digits.get(..n).unwrap_or_default(),
        b"\r\nConnection: close\r\n\r\n",
    ];
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let start = HEAD_ROOM - len;
    let mut at = start;
    for p in parts {
        if let Some(dst) = room.get_mut(at..at + p.len()) {
            dst.copy_from_slice(p);
        }
        at += p.len();
    }
    start
}

/// `v` in decimal into `out`; returns the length.
pub fn decimal(mut v: u64, out: &mut [u8; 20]) -> usize {
    let mut tmp = [0u8; 20];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for (i, slot) in out.iter_mut().take(n).enumerate() {
        *slot = tmp[n - 1 - i];
    }
    n
}

/// A complete response: its status and body.
#[derive(Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

/// Parses what was read so far. `Ok(None)`: incomplete, read more (`eof`:
/// the agent closed the connection, nothing more will come).
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<Response<'_>>, &'static str> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if eof {
            Err("the answer ended inside its head")
        } else {
            Ok(None)
        };
    };
    let head = buf.get(..end).unwrap_or_default();
    let rest = buf.get(end + 4..).unwrap_or_default();
    let mut lines = head.split(|&b| b == b'\n').map(trim_cr);
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            _,
            b' ',
            a,
            b,
            c,
            ..,
        ] if [a, b, c].iter().all(|d| d.is_ascii_digit())
            && status_line.get(12).is_none_or(|&b| b == b' ') =>
        {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err("the answer is not an HTTP/1.x response"),
    };
    let mut length = None;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err("a header line without ':'");
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            length = Some(parse_usize(value).ok_or("a bad Content-Length")?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err("a Transfer-Encoding answer (the agent sends Content-Length)");
        }
    }
    match length {
        Some(n) if rest.len() >= n => Ok(Some(Response {
            status,
            body: rest.get(..n).unwrap_or_default(),
        })),
        Some(_) if eof => Err("the answer is shorter than its Content-Length"),
        None if eof => Ok(Some(Response { status, body: rest })),
        _ => Ok(None),
    }
}

/// A `/v1/cni` answer body: the plugin's exit code, `\n`, its stdout.
pub fn parse_answer(body: &[u8]) -> Result<(i32, &[u8]), &'static str> {
    let nl = body
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("the answer has no exit code line")?;
    let code = parse_usize(&body[..nl])
        .filter(|&c| c <= 255 && nl <= 3)
        .ok_or("the answer's exit code is not 0-255")?;
    Ok((code as i32, &body[nl + 1..]))
}

fn parse_usize(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    s.iter().try_fold(0usize, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + usize::from(b - b'0'))
    })
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_fills_the_room_end() {
        let mut room = [0u8; HEAD_ROOM];
        let at = request_head(1_048_576, &mut room);
        assert_eq!(
            &room[at..],
            b"POST /v1/cni HTTP/1.1\r\nHost: tortie\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n"
        );
        let at = request_head(0, &mut room);
        assert!(room[at..].ends_with(b"Content-Length: 0\r\nConnection: close\r\n\r\n"));
        let at = request_head(usize::MAX, &mut room);
        assert!(at > 0);
    }

    #[test]
    fn responses_by_content_length_and_short_reads() {
        let full = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: x\r\n\r\n0\n{}\n";
        // Every prefix is incomplete (or, at EOF, an error), the whole is complete.
        for cut in 0..full.len() {
            assert_eq!(parse_response(&full[..cut], false), Ok(None), "cut {cut}");
            assert!(parse_response(&full[..cut], true).is_err(), "cut {cut}");
        }
        let r = parse_response(full, false).unwrap().unwrap();
        assert_eq!((r.status, r.body), (200, &b"0\n{}\n"[..]));
        assert_eq!(parse_answer(r.body), Ok((0, &b"{}\n"[..])));
        // Without Content-Length: the body runs to EOF.
        let r = parse_response(b"HTTP/1.0 404 Not Found\r\n\r\nnope", true)
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.body), (404, &b"nope"[..]));
        assert_eq!(parse_response(b"HTTP/1.1 404 x\r\n\r\nno", false), Ok(None));
        // Bytes after Content-Length are not the body.
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length:  2 \r\n\r\n1\nXX",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.body, b"1\n");
    }

    #[test]
    fn bad_responses() {
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(parse_response(bad, true).is_err(), "{bad:?}");
        }
        let r = parse_response(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert_eq!(r.map(|r| r.map(|r| r.status)), Ok(Some(503)));
        for bad in [
            &b""[..],
            b"0",
            b"x\n",
            b"256\n",
            b"0001\n",
            b"\n{}",
            b"-1\n",
        ] {
            assert!(parse_answer(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_answer(b"1\n"), Ok((1, &b""[..])));
        assert_eq!(parse_answer(b"255\nx"), Ok((255, &b"x"[..])));
    }
}
