//! A tiny RESP2/RESP3 client: encodes commands, reads replies keeping the raw bytes of each
//! top-level reply (so replies can be compared byte for byte) plus a parsed tree (so
//! unordered or time-dependent replies can be normalized before comparing).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One reply. Every RESP type keeps its own variant, so two values compare equal only when
/// they are the same type on the wire (a RESP3 set never equals an array, a double never equals
/// a bulk string, `$-1` never equals `*-1`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1`
    NullBulk,
    /// `*-1`
    NullArray,
    /// RESP3 `_`
    Null,
    /// RESP3 `,` with its text as sent
    Double(Vec<u8>),
    Bool(bool),
    BigNum(Vec<u8>),
    Verbatim(Vec<u8>, Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Push(Vec<Value>),
    Attribute(Vec<(Value, Value)>, Box<Value>),
}

impl Value {
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::NullBulk | Value::NullArray | Value::Null)
    }

    /// Elements of an array-like reply (array, set, push).
    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes of a string-like reply.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) | Value::Simple(b) | Value::Double(b) | Value::BigNum(b) => Some(b),
            Value::Verbatim(_, b) => Some(b),
            _ => None,
        }
    }

    /// The same tree with every leaf's content erased: what "the same shape" means.
    pub fn shape(&self) -> Value {
        match self {
            Value::Simple(_) => Value::Simple(Vec::new()),
            Value::Error(e) => Value::Error(e.clone()),
            Value::Int(_) => Value::Int(0),
            Value::Bulk(_) => Value::Bulk(Vec::new()),
            Value::Double(_) => Value::Double(Vec::new()),
            Value::Bool(_) => Value::Bool(false),
            Value::BigNum(_) => Value::BigNum(Vec::new()),
            Value::Verbatim(_, _) => Value::Verbatim(Vec::new(), Vec::new()),
            Value::Array(v) => Value::Array(v.iter().map(Value::shape).collect()),
            Value::Set(v) => Value::Set(v.iter().map(Value::shape).collect()),
            Value::Push(v) => Value::Push(v.iter().map(Value::shape).collect()),
            Value::Map(m) => Value::Map(m.iter().map(|(k, v)| (k.shape(), v.shape())).collect()),
            Value::Attribute(a, v) => {
                Value::Attribute(a.iter().map(|(k, v)| (k.shape(), v.shape())).collect(), Box::new(v.shape()))
            }
            other => other.clone(),
        }
    }
}

/// `s` with non-printable bytes escaped, in double quotes (as redis-cli shows strings).
pub fn quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in s {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// A command for printing: `SET "k" "v"`.
pub fn render_command(args: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let plain = i == 0 && !a.is_empty() && a.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'|');
        if plain {
            out.push_str(&String::from_utf8_lossy(a));
        } else {
            out.push_str(&quote(a));
        }
    }
    out
}

/// A reply for printing, on one line.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    render_into(v, &mut out);
    out
}

fn render_into(v: &Value, out: &mut String) {
    let list = |prefix: &str, items: &[Value], out: &mut String| {
        out.push_str(prefix);
        out.push('[');
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            render_into(x, out);
        }
        out.push(']');
    };
    let pairs = |prefix: &str, items: &[(Value, Value)], out: &mut String| {
        out.push_str(prefix);
        out.push('{');
        for (i, (k, x)) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            render_into(k, out);
            out.push_str(": ");
            render_into(x, out);
        }
        out.push('}');
    };
    match v {
        Value::Simple(s) => {
            out.push('+');
            out.push_str(&String::from_utf8_lossy(s));
        }
        Value::Error(s) => {
            out.push_str("(error) ");
            out.push_str(&String::from_utf8_lossy(s));
        }
        Value::Int(i) => {
            let _ = write!(out, "(integer) {i}");
        }
        Value::Bulk(b) => out.push_str(&quote(b)),
        Value::NullBulk => out.push_str("(nil $-1)"),
        Value::NullArray => out.push_str("(nil *-1)"),
        Value::Null => out.push_str("(null _)"),
        Value::Double(d) => {
            let _ = write!(out, "(double) {}", String::from_utf8_lossy(d));
        }
        Value::Bool(b) => {
            let _ = write!(out, "(bool) {b}");
        }
        Value::BigNum(b) => {
            let _ = write!(out, "(bignum) {}", String::from_utf8_lossy(b));
        }
        Value::Verbatim(f, b) => {
            let _ = write!(out, "(verbatim {}) {}", String::from_utf8_lossy(f), quote(b));
        }
        Value::Array(items) => list("", items, out),
        Value::Set(items) => list("(set) ", items, out),
        Value::Push(items) => list("(push) ", items, out),
        Value::Map(items) => pairs("(map) ", items, out),
        Value::Attribute(a, x) => {
            pairs("(attr) ", a, out);
            out.push(' ');
            render_into(x, out);
        }
    }
}

/// A command as RESP: an array of bulk strings.
pub fn encode_command(args: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Why a reply could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    Closed,
    Protocol(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "i/o error: {e}"),
            ReadError::Closed => write!(f, "connection closed by the server"),
            ReadError::Protocol(m) => write!(f, "protocol error in reply: {m}"),
        }
    }
}

/// A connection: write commands, read replies.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

/// Outcome of parsing at the start of a buffer.
enum Parsed {
    Done(Value, usize),
    Incomplete,
}

impl Conn {
    pub fn connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_write_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn { stream, buf: Vec::new(), pos: 0 })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, cmds: &[Vec<Vec<u8>>]) -> std::io::Result<()> {
        let mut out = Vec::new();
        for c in cmds {
            encode_command(c, &mut out);
        }
        self.send_raw(&out)
    }

    /// One reply and its raw bytes.
    pub fn read(&mut self) -> Result<(Value, Vec<u8>), ReadError> {
        loop {
            let avail = self.buf.get(self.pos..).unwrap_or_default();
            if !avail.is_empty() {
                match parse(avail, 0).map_err(ReadError::Protocol)? {
                    Parsed::Done(v, n) => {
                        let raw = avail.get(..n).unwrap_or_default().to_vec();
                        self.pos += n;
                        if self.pos == self.buf.len() {
                            self.buf.clear();
                            self.pos = 0;
                        }
                        return Ok((v, raw));
                    }
                    Parsed::Incomplete => {}
                }
            }
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).map_err(ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Closed);
            }
            self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    /// Send one command and read its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Value, ReadError> {
        let cmd: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        self.send(&[cmd]).map_err(ReadError::Io)?;
        Ok(self.read()?.0)
    }

    /// Pipeline `cmds` and read all their replies.
    pub fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> Result<Vec<Value>, ReadError> {
        self.send(cmds).map_err(ReadError::Io)?;
        (0..cmds.len()).map(|_| self.read().map(|(v, _)| v)).collect()
    }
}

fn line(buf: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(start..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((rest.get(..end)?, start + end + 2))
}

fn num(s: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(s).ok().and_then(|t| t.parse::<i64>().ok()).ok_or_else(|| format!("bad number {}", quote(s)))
}

fn parse(buf: &[u8], depth: usize) -> Result<Parsed, String> {
    if depth > 64 {
        return Err("nesting too deep".into());
    }
    let Some(&tag) = buf.first() else { return Ok(Parsed::Incomplete) };
    let Some((text, after)) = line(buf, 1) else { return Ok(Parsed::Incomplete) };
    let text_vec = text.to_vec();
    let blob = |len: i64| -> Option<(Vec<u8>, usize)> {
        let len = usize::try_from(len).ok()?;
        let data = buf.get(after..after + len)?;
        if buf.get(after + len..after + len + 2)? != b"\r\n" {
            return None;
        }
        Some((data.to_vec(), after + len + 2))
    };
    let value = match tag {
        b'+' => Value::Simple(text_vec),
        b'-' => Value::Error(text_vec),
        b':' => Value::Int(num(text)?),
        b',' => Value::Double(text_vec),
        b'(' => Value::BigNum(text_vec),
        b'_' => Value::Null,
        b'#' => match text {
            b"t" => Value::Bool(true),
            b"f" => Value::Bool(false),
            _ => return Err(format!("bad boolean {}", quote(text))),
        },
        b'$' | b'!' | b'=' => {
            let len = num(text)?;
            if len < 0 {
                if tag == b'$' && len == -1 {
                    return Ok(Parsed::Done(Value::NullBulk, after));
                }
                return Err(format!("bad length {len}"));
            }
            let Some((data, end)) = blob(len) else { return Ok(Parsed::Incomplete) };
            let v = match tag {
                b'$' => Value::Bulk(data),
                b'!' => Value::Error(data),
                _ => {
                    let (fmt, rest) = data.split_at(data.len().min(4));
                    let fmt = fmt.strip_suffix(b":").unwrap_or(fmt).to_vec();
                    Value::Verbatim(fmt, rest.to_vec())
                }
            };
            return Ok(Parsed::Done(v, end));
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = num(text)?;
            if n < 0 {
                if tag == b'*' && n == -1 {
                    return Ok(Parsed::Done(Value::NullArray, after));
                }
                return Err(format!("bad length {n}"));
            }
            let pairs = matches!(tag, b'%' | b'|');
            let count = usize::try_from(n).map_err(|e| e.to_string())? * if pairs { 2 } else { 1 };
            let mut items = Vec::new();
            let mut at = after;
            for _ in 0..count {
                match parse(buf.get(at..).unwrap_or_default(), depth + 1)? {
                    Parsed::Done(v, n) => {
                        items.push(v);
                        at += n;
                    }
                    Parsed::Incomplete => return Ok(Parsed::Incomplete),
                }
            }
            let v = match tag {
                b'*' => Value::Array(items),
                b'~' => Value::Set(items),
                b'>' => Value::Push(items),
                _ => {
                    let mut kv = Vec::new();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        kv.push((k, v));
                    }
                    if tag == b'%' {
                        Value::Map(kv)
                    } else {
                        // An attribute precedes the reply it annotates.
                        match parse(buf.get(at..).unwrap_or_default(), depth + 1)? {
                            Parsed::Done(v, n) => return Ok(Parsed::Done(Value::Attribute(kv, Box::new(v)), at + n)),
                            Parsed::Incomplete => return Ok(Parsed::Incomplete),
                        }
                    }
                }
            };
            return Ok(Parsed::Done(v, at));
        }
        other => return Err(format!("unknown type byte {}", quote(&[other]))),
    };
    Ok(Parsed::Done(value, after))
}

#[test]
fn resp_reader_parses_every_type_and_waits_for_incomplete_frames() {
    let cases: &[(&[u8], Value)] = &[
        (b"+OK\r\n", Value::Simple(b"OK".to_vec())),
        (b"-ERR x\r\n", Value::Error(b"ERR x".to_vec())),
        (b":-5\r\n", Value::Int(-5)),
        (b"$3\r\na\r\n\r\n", Value::Bulk(b"a\r\n".to_vec())),
        (b"$-1\r\n", Value::NullBulk),
        (b"*-1\r\n", Value::NullArray),
        (b"_\r\n", Value::Null),
        (b",1.5\r\n", Value::Double(b"1.5".to_vec())),
        (b"#t\r\n", Value::Bool(true)),
        (b"(123\r\n", Value::BigNum(b"123".to_vec())),
        (b"=7\r\ntxt:abc\r\n", Value::Verbatim(b"txt".to_vec(), b"abc".to_vec())),
        (b"*2\r\n:1\r\n$1\r\nx\r\n", Value::Array(vec![Value::Int(1), Value::Bulk(b"x".to_vec())])),
        (b"~1\r\n:1\r\n", Value::Set(vec![Value::Int(1)])),
        (b"%1\r\n+a\r\n:1\r\n", Value::Map(vec![(Value::Simple(b"a".to_vec()), Value::Int(1))])),
        (b">1\r\n+m\r\n", Value::Push(vec![Value::Simple(b"m".to_vec())])),
    ];
    for (bytes, want) in cases {
        match parse(bytes, 0) {
            Ok(Parsed::Done(v, n)) => {
                assert_eq!(&v, want, "{}", quote(bytes));
                assert_eq!(n, bytes.len(), "{}", quote(bytes));
            }
            _ => panic!("not parsed: {}", quote(bytes)),
        }
        for cut in 0..bytes.len() {
            assert!(
                matches!(parse(&bytes[..cut], 0), Ok(Parsed::Incomplete)),
                "prefix {} of {} should be incomplete",
                cut,
                quote(bytes)
            );
        }
    }
    assert!(parse(b"?x\r\n", 0).is_err());
}
