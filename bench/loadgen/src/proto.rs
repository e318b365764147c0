//! Just enough RESP2 and HTTP/1.1 for a load generator: encode one request, find where one
//! reply ends in a buffer and whether it was an error.

/// What a reply was, as far as the load generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Any non-error reply (including nil).
    Ok,
    /// A nil bulk string or array (a GET miss).
    Nil,
    /// An error reply (`-ERR …`, `-LOADING …`, HTTP `{"error":…}` or a non-2xx status).
    Error,
}

/// Encode a command as a RESP array of bulk strings.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let tail = buf.get(from..)?;
    tail.windows(2).position(|w| w == b"\r\n").map(|p| from + p)
}

fn parse_int(bytes: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("bad RESP length {:?}", String::from_utf8_lossy(bytes)))
}

/// Parse one RESP2 reply starting at `pos`. `Ok(None)`: incomplete, read more.
/// `Ok(Some((end, outcome)))`: the reply ends before `end`.
pub fn parse_reply(buf: &[u8], pos: usize) -> Result<Option<(usize, Outcome)>, String> {
    let Some(&kind) = buf.get(pos) else { return Ok(None) };
    let Some(eol) = find_crlf(buf, pos + 1) else { return Ok(None) };
    let line = buf.get(pos + 1..eol).unwrap_or_default();
    let after = eol + 2;
    match kind {
        b'+' | b':' => Ok(Some((after, Outcome::Ok))),
        b'-' => Ok(Some((after, Outcome::Error))),
        b'$' => {
            let len = parse_int(line)?;
            if len < 0 {
                return Ok(Some((after, Outcome::Nil)));
            }
            let end = after + len as usize + 2;
            Ok(if buf.len() >= end { Some((end, Outcome::Ok)) } else { None })
        }
        b'*' => {
            let len = parse_int(line)?;
            if len < 0 {
                return Ok(Some((after, Outcome::Nil)));
            }
            let mut at = after;
            let mut outcome = Outcome::Ok;
            for _ in 0..len {
                match parse_reply(buf, at)? {
                    None => return Ok(None),
                    Some((end, o)) => {
                        if o == Outcome::Error {
                            outcome = Outcome::Error;
                        }
                        at = end;
                    }
                }
            }
            Ok(Some((at, outcome)))
        }
        other => Err(format!("unexpected RESP type byte {other:#x}")),
    }
}

/// Encode `POST / HTTP/1.1` with the command as a JSON array of strings (Upstash dialect).
/// Arguments must not need JSON escaping (the workload only uses alphanumeric bytes).
pub fn encode_http(out: &mut Vec<u8>, host: &str, token: Option<&str>, args: &[&[u8]]) {
    let mut body = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 3).sum::<usize>());
    body.push(b'[');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.push(b'"');
        body.extend_from_slice(a);
        body.push(b'"');
    }
    body.push(b']');
    out.extend_from_slice(b"POST / HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: application/json\r\n");
    if let Some(t) = token {
        out.extend_from_slice(b"Authorization: Bearer ");
        out.extend_from_slice(t.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
}

/// Parse one HTTP/1.1 response at the start of `buf`. `Ok(None)`: incomplete.
/// Returns the end of the response, the outcome, and whether the server will close.
pub fn parse_http(buf: &[u8]) -> Result<Option<(usize, Outcome, bool)>, String> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).to_ascii_lowercase();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad HTTP status line {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    let mut close = false;
    for l in lines {
        if let Some((name, value)) = l.split_once(':') {
            let value = value.trim();
            match name.trim() {
                "content-length" => content_length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.contains("chunked"),
                "connection" => close = value.contains("close"),
                _ => {}
            }
        }
    }
    let body_start = head_end + 4;
    let (end, body): (usize, Vec<u8>) = if chunked {
        let mut at = body_start;
        let mut body = Vec::new();
        loop {
            let Some(eol) = find_crlf(buf, at) else { return Ok(None) };
            let size_text = String::from_utf8_lossy(buf.get(at..eol).unwrap_or_default()).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
            let data = eol + 2;
            if size == 0 {
                // No trailers are expected: the final CRLF follows.
                if buf.len() < data + 2 {
                    return Ok(None);
                }
                break (data + 2, body);
            }
            if buf.len() < data + size + 2 {
                return Ok(None);
            }
            body.extend_from_slice(buf.get(data..data + size).unwrap_or_default());
            at = data + size + 2;
        }
    } else {
        let len = content_length.unwrap_or(0);
        if buf.len() < body_start + len {
            return Ok(None);
        }
        (body_start + len, buf.get(body_start..body_start + len).unwrap_or_default().to_vec())
    };
    let outcome = if !(200..300).contains(&status) || body.starts_with(b"{\"error\"") {
        Outcome::Error
    } else if body.starts_with(b"{\"result\":null") {
        Outcome::Nil
    } else {
        Outcome::Ok
    };
    Ok(Some((end, outcome, close)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_replies() {
        assert_eq!(parse_reply(b"+OK\r\n", 0), Ok(Some((5, Outcome::Ok))));
        assert_eq!(parse_reply(b"$-1\r\n", 0), Ok(Some((5, Outcome::Nil))));
        assert_eq!(parse_reply(b"$3\r\nab", 0), Ok(None));
        assert_eq!(parse_reply(b"$3\r\nabc\r\n:1\r\n", 0), Ok(Some((9, Outcome::Ok))));
        assert_eq!(parse_reply(b"-LOADING x\r\n", 0), Ok(Some((12, Outcome::Error))));
        assert_eq!(parse_reply(b"*2\r\n:1\r\n-E\r\n", 0), Ok(Some((12, Outcome::Error))));
        let mut v = Vec::new();
        encode_command(&mut v, &[b"GET", b"k"]);
        assert_eq!(v, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }

    #[test]
    fn http_responses() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"result\":\"OK\"}";
        assert_eq!(parse_http(r), Ok(Some((r.len(), Outcome::Ok, false))));
        let r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"res\r\na\r\nult\":null}\r\n0\r\n\r\n";
        assert_eq!(parse_http(r), Ok(Some((r.len(), Outcome::Nil, false))));
        let r = b"HTTP/1.1 400 Bad\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        assert_eq!(parse_http(r), Ok(Some((r.len(), Outcome::Error, true))));
        assert_eq!(parse_http(b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{"), Ok(None));
        let mut v = Vec::new();
        encode_http(&mut v, "h", None, &[b"GET", b"k"]);
        assert!(v.ends_with(b"Content-Length: 11\r\n\r\n[\"GET\",\"k\"]"));
    }
}
