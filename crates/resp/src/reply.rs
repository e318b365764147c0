//! Reply values and their RESP2/RESP3 encoding.
//!
//! Commands build a [`Reply`] once; the connection encodes it for the protocol the client
//! negotiated with `HELLO`. RESP3-only shapes degrade the way Redis degrades them for RESP2
//! clients: maps become flat arrays, sets arrays, doubles bulk strings, booleans integers.

use bytes::Bytes;

use crate::output::ReplySink;

/// The protocol version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// A reply to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A simple string such as `PONG` or `QUEUED`.
    Status(&'static str),
    /// A simple string built at run time (`TYPE`, `INFO`-like short answers).
    StatusOwned(String),
    /// An error, with its code first: `ERR syntax error`, `WRONGTYPE ...`.
    Error(String),
    /// An error that quotes client bytes which are not UTF-8 (Redis echoes them raw).
    ErrorBytes(Bytes),
    Int(i64),
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    NilArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    /// A double as Redis sends coordinates (`addReplyHumanLongDouble`: GEOPOS, WITHCOORD):
    /// [`format_human_double`]'s text, a bulk string in RESP2 and a double in RESP3.
    HumanDouble(f64),
    Bool(bool),
    /// Verbatim text with its three-letter format (`txt` for `INFO`, `CLIENT INFO`...; a
    /// script may name another); a bulk string in RESP2.
    Verbatim([u8; 3], Bytes),
    /// A number of any size, as text (a script's `{big_number=...}`); a bulk string in RESP2.
    BigNumber(Bytes),
    /// Out-of-band data (pub/sub messages) in RESP3; an array in RESP2.
    Push(Vec<Reply>),
    /// Several replies to one command, sent back to back (SUBSCRIBE confirms each channel).
    Many(Vec<Reply>),
}

impl Reply {
    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }

    /// A count, size or time as an integer reply (saturating at `i64::MAX`).
    pub fn count(n: u64) -> Reply {
        Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    pub fn bulk(data: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(data))
    }

    pub fn bulk_str(text: &str) -> Reply {
        Reply::bulk(text.as_bytes())
    }

    /// Verbatim text of format `txt`.
    pub fn verbatim(text: impl Into<Bytes>) -> Reply {
        Reply::Verbatim(*b"txt", text.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_) | Reply::ErrorBytes(_))
    }

    /// Whether the reply is push messages only (pub/sub confirmations), which Redis writes
    /// even to a client that turned its replies off (`CLIENT_PUSHING`).
    pub fn is_push(&self) -> bool {
        match self {
            Reply::Push(_) => true,
            Reply::Many(replies) => !replies.is_empty() && replies.iter().all(Reply::is_push),
            _ => false,
        }
    }

    /// The text of an error reply (lossily, for one of bytes); `None` for any other reply.
    pub fn error_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Reply::Error(text) => Some(std::borrow::Cow::Borrowed(text)),
            Reply::ErrorBytes(bytes) => Some(String::from_utf8_lossy(bytes)),
            _ => None,
        }
    }

    /// An array of bulk strings.
    pub fn bulks<I: IntoIterator<Item = Bytes>>(items: I) -> Reply {
        Reply::Array(items.into_iter().map(Reply::Bulk).collect())
    }

    /// Append this reply's wire form to `out`.
    pub fn encode<S: ReplySink + ?Sized>(&self, proto: Protocol, out: &mut S) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Reply::Ok => out.put_slice(b"+OK\r\n"),
            Reply::Status(s) => simple(out, b'+', s.as_bytes()),
            Reply::StatusOwned(s) => simple(out, b'+', s.as_bytes()),
            // As Redis's addReplyErrorFormat: line breaks at the ends trimmed, inside spaced.
            Reply::Error(e) => simple(out, b'-', e.trim_matches(['\r', '\n']).as_bytes()),
            Reply::ErrorBytes(e) => simple(out, b'-', e),
            Reply::Int(n) => header(out, b':', *n),
            Reply::Bulk(b) => shared_bulk(out, b),
            Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
            Reply::Nil => out.put_slice(b"$-1\r\n"),
            Reply::NilArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::NilArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => aggregate(out, proto, b'*', items),
            Reply::Set(items) => aggregate(out, proto, if resp3 { b'~' } else { b'*' }, items),
            Reply::Push(items) => aggregate(out, proto, if resp3 { b'>' } else { b'*' }, items),
            Reply::Map(pairs) => {
                match resp3 {
                    true => header(out, b'%', len_i64(pairs.len())),
                    false => header(out, b'*', len_i64(pairs.len() * 2)),
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Double(d) if resp3 => {
                out.put_u8(b',');
                out.put_slice(format_double(*d).as_bytes());
                out.put_slice(b"\r\n");
            }
            Reply::Double(d) => bulk(out, format_double(*d).as_bytes()),
            Reply::HumanDouble(d) if resp3 => {
                out.put_u8(b',');
                out.put_slice(format_human_double(*d).as_bytes());
                out.put_slice(b"\r\n");
            }
            Reply::HumanDouble(d) => bulk(out, format_human_double(*d).as_bytes()),
            Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Reply::Bool(b) => header(out, b':', i64::from(*b)),
            Reply::Verbatim(format, text) if resp3 => {
                header(out, b'=', len_i64(text.len() + 4));
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Reply::Verbatim(_, text) => shared_bulk(out, text),
            Reply::BigNumber(digits) if resp3 => {
                out.put_u8(b'(');
                out.put_slice(digits);
                out.put_slice(b"\r\n");
            }
            Reply::BigNumber(digits) => bulk(out, digits),
            Reply::Many(replies) => {
                for reply in replies {
                    reply.encode(proto, out);
                }
            }
        }
    }
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn header<S: ReplySink + ?Sized>(out: &mut S, kind: u8, n: i64) {
    let mut digits = itoa::Buffer::new();
    out.put_u8(kind);
    out.put_slice(digits.format(n).as_bytes());
    out.put_slice(b"\r\n");
}

fn bulk<S: ReplySink + ?Sized>(out: &mut S, data: &[u8]) {
    out.reserve(data.len() + 16);
    header(out, b'$', len_i64(data.len()));
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// A bulk string whose bytes the sink may keep by reference ([`ReplySink::put_value`]).
fn shared_bulk<S: ReplySink + ?Sized>(out: &mut S, data: &Bytes) {
    header(out, b'$', len_i64(data.len()));
    out.put_value(data);
    out.put_slice(b"\r\n");
}

/// Simple strings and errors cannot hold a line break; Redis replaces them with spaces.
fn simple<S: ReplySink + ?Sized>(out: &mut S, kind: u8, text: &[u8]) {
    out.put_u8(kind);
    for &c in text {
        out.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
    }
    out.put_slice(b"\r\n");
}

fn aggregate<S: ReplySink + ?Sized>(out: &mut S, proto: Protocol, kind: u8, items: &[Reply]) {
    header(out, kind, len_i64(items.len()));
    for item in items {
        item.encode(proto, out);
    }
}

/// A double as Redis 7.0 prints it in replies: C's `%.17g`, with `inf`/`-inf`/`nan`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format_integral(d).unwrap_or_else(|| format_g(d, 17))
}

/// A nonzero whole double of magnitude under 2^52 as the integer it is, which is what `%.17g`
/// prints for it, as Redis's `d2string` does. Sorted-set scores are mostly such (timestamps,
/// counters), and the 17-digit formatting works through a bignum: 1.2 µs a score, most of a
/// 90-member `ZRANGE ... WITHSCORES`.
fn format_integral(d: f64) -> Option<String> {
    const LIMIT: f64 = 4_503_599_627_370_496.0; // 2^52
    let whole = d != 0.0 && d.fract() == 0.0 && d.abs() < LIMIT;
    // Exact: a whole double of magnitude under 2^52 is an i64.
    whole.then(|| (d as i64).to_string())
}

/// A finite double as C's `%.17Lf` prints it, without trailing zeros or a trailing point,
/// and `-0` as `0` (Redis's `ld2string` in human mode, used for coordinates).
pub fn format_human_double(d: f64) -> String {
    let fixed = format!("{d:.17}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// C's `%.{precision}g`: shortest of fixed or exponent notation, trailing zeros removed.
pub fn format_g(d: f64, precision: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let precision = precision.max(1);
    let sci = format!("{:.*e}", precision - 1, d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let p = i32::try_from(precision).unwrap_or(17);
    if exp < -4 || exp >= p {
        let mantissa = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = usize::try_from(p - 1 - exp).unwrap_or(0);
        trim_fraction(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Output, SHARED_VALUE_MIN};
    use bytes::BytesMut;
    use std::io::IoSlice;

    fn wire(r: &Reply, proto: Protocol) -> String {
        let mut out = BytesMut::new();
        r.encode(proto, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    /// Large values go out by reference from an [`Output`]: the bytes sent are the same.
    #[test]
    fn an_output_sends_the_same_bytes_as_a_buffer() {
        let large = Bytes::from(vec![b'v'; SHARED_VALUE_MIN + 1]);
        let reply = Reply::Array(vec![
            Reply::Bulk(large.clone()),
            Reply::Int(7),
            Reply::verbatim(large),
            Reply::bulk_str("small"),
        ]);
        for proto in [Protocol::Resp2, Protocol::Resp3] {
            let mut output = Output::default();
            reply.encode(proto, &mut output);
            let mut slices = [IoSlice::new(&[]); 16];
            let count = output.slices(&mut slices);
            let sent: Vec<u8> = slices.iter().take(count).flat_map(|slice| slice.iter().copied()).collect();
            assert_eq!(sent, wire(&reply, proto).into_bytes(), "{proto:?}");
        }
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let map = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]);
        assert_eq!(wire(&map, Protocol::Resp2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(wire(&map, Protocol::Resp3), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(wire(&Reply::Nil, Protocol::Resp2), "$-1\r\n");
        assert_eq!(wire(&Reply::Nil, Protocol::Resp3), "_\r\n");
        assert_eq!(wire(&Reply::NilArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(wire(&Reply::Double(1.5), Protocol::Resp2), "$3\r\n1.5\r\n");
        assert_eq!(wire(&Reply::Double(1.5), Protocol::Resp3), ",1.5\r\n");
        // Values and texts from Redis 7.0's GEOPOS.
        let palermo = Reply::HumanDouble(13.361389338970184);
        assert_eq!(wire(&palermo, Protocol::Resp2), "$20\r\n13.36138933897018433\r\n");
        assert_eq!(wire(&palermo, Protocol::Resp3), ",13.36138933897018433\r\n");
        assert_eq!(wire(&Reply::HumanDouble(180.0), Protocol::Resp2), "$3\r\n180\r\n");
        assert_eq!(wire(&Reply::HumanDouble(-0.0), Protocol::Resp3), ",0\r\n");
        assert_eq!(wire(&Reply::Bool(true), Protocol::Resp2), ":1\r\n");
        assert_eq!(wire(&Reply::Bool(false), Protocol::Resp3), "#f\r\n");
        assert_eq!(wire(&Reply::verbatim("x"), Protocol::Resp3), "=5\r\ntxt:x\r\n");
        assert_eq!(wire(&Reply::Verbatim(*b"mkd", Bytes::from("x")), Protocol::Resp3), "=5\r\nmkd:x\r\n");
        assert_eq!(wire(&Reply::Verbatim(*b"mkd", Bytes::from("x")), Protocol::Resp2), "$1\r\nx\r\n");
        assert_eq!(wire(&Reply::BigNumber(Bytes::from("123")), Protocol::Resp3), "(123\r\n");
        assert_eq!(wire(&Reply::BigNumber(Bytes::from("123")), Protocol::Resp2), "$3\r\n123\r\n");
        assert_eq!(wire(&Reply::error("ERR a\r\nb"), Protocol::Resp2), "-ERR a  b\r\n");
        // A line break at the end (an argument quoted in the message) is trimmed, as Redis.
        assert_eq!(wire(&Reply::error("ERR given: x\n"), Protocol::Resp2), "-ERR given: x\r\n");
    }

    #[test]
    fn doubles_print_like_printf_17g() {
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(1.0), "1");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(123456789012345680.0), "1.2345678901234568e+17");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_g(3.0, 17), "3");
    }

    /// The integer shortcut prints what `%.17g` prints, up to where it stops applying.
    #[test]
    fn whole_doubles_print_as_the_exact_formatting_does() {
        let limit = 4_503_599_627_370_496.0;
        let mut wholes = vec![1.0, -1.0, 17.0, 1_764_600_000_000.0, limit - 1.0, -(limit - 1.0), 1e15, -123_456.0];
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let magnitude = (x >> 12) as f64 / (1u64 << (x % 52)) as f64;
            wholes.push(if x & 1 == 0 { magnitude.trunc() } else { -magnitude.trunc() });
        }
        for d in wholes.into_iter().filter(|d| *d != 0.0) {
            assert_eq!(format_integral(d).as_deref(), Some(format_g(d, 17).as_str()), "{d}");
        }
        for d in [0.0, -0.0, 0.5, -2.5, limit, -limit, 1e17, f64::INFINITY, f64::NAN] {
            assert_eq!(format_integral(d), None, "{d}");
        }
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(limit), "4503599627370496");
    }
}
