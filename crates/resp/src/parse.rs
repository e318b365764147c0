//! Request parsing: RESP multibulk arrays and inline commands, resumable.
//!
//! Re-scanning a half-received request on every read would be quadratic for a large `MSET`,
//! so [`parse`] takes a small [`Partial`] state that remembers how far a multibulk request
//! got; the caller keeps it beside the read buffer.

use std::ops::Range;

/// Longest inline request, or `*`/`$` header line, before Redis gives up (PROTO_INLINE_MAX_SIZE).
const INLINE_MAX: usize = 64 * 1024;
/// Array slots reserved up front whatever the declared length, so a hostile `*1000000000`
/// costs nothing until the elements actually arrive.
const PREALLOC_ARGS: usize = 1024;
/// Redis limits clients that still have to authenticate far more tightly.
const UNAUTH_MAX_ARGS: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16 * 1024;

/// Parser limits, with Redis's defaults.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`: largest bulk string accepted.
    pub max_bulk_len: i64,
    /// The client still has to authenticate: Redis then allows 10 arguments of 16 KiB.
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024, unauthenticated: false }
    }
}

/// A protocol violation. `Display` is the exact text Redis replies before closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    TooBigInline,
    UnbalancedQuotes,
    TooBigMultibulkCount,
    InvalidMultibulkLength,
    UnauthenticatedMultibulkLength,
    TooBigBulkCount,
    ExpectedDollar(u8),
    InvalidBulkLength,
    UnauthenticatedBulkLength,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ERR Protocol error: ")?;
        match self {
            ParseError::TooBigInline => f.write_str("too big inline request"),
            ParseError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            ParseError::TooBigMultibulkCount => f.write_str("too big mbulk count string"),
            ParseError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ParseError::UnauthenticatedMultibulkLength => f.write_str("unauthenticated multibulk length"),
            ParseError::TooBigBulkCount => f.write_str("too big bulk count string"),
            // Redis turns \r and \n of an error line into spaces. A non-ASCII byte is sent
            // raw, which a `String` cannot hold: see `ParseError::reply_bytes`.
            ParseError::ExpectedDollar(b'\r' | b'\n') => f.write_str("expected '$', got ' '"),
            ParseError::ExpectedDollar(c) => write!(f, "expected '$', got '{}'", *c as char),
            ParseError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ParseError::UnauthenticatedBulkLength => f.write_str("unauthenticated bulk length"),
        }
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// The exact line Redis sends before closing, `-ERR Protocol error: ...\r\n`. Unlike
    /// `Display`, it carries the offending byte of `expected '$', got 'X'` raw, as Redis does.
    pub fn reply_bytes(&self) -> Vec<u8> {
        let mut out = b"-".to_vec();
        match self {
            ParseError::ExpectedDollar(c) if !c.is_ascii() => {
                out.extend_from_slice(b"ERR Protocol error: expected '$', got '");
                out.push(*c);
                out.push(b'\'');
            }
            other => out.extend_from_slice(other.to_string().as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// One complete request found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// A multibulk request: every argument is a range of the buffer (zero-copy). The ranges
    /// are the [`Partial`]'s, which keeps their room for the next request: parsing one of a
    /// connection's requests allocates nothing once it has parsed one as long.
    Multibulk { consumed: usize, args: &'a [Range<usize>] },
    /// An inline request: arguments were unquoted, so they are owned.
    Inline { consumed: usize, args: Vec<Vec<u8>> },
}

impl Request<'_> {
    /// Bytes of the buffer this request used; the caller drops them before parsing again.
    pub fn consumed(&self) -> usize {
        match self {
            Request::Multibulk { consumed, .. } | Request::Inline { consumed, .. } => *consumed,
        }
    }

    /// Number of arguments (zero for an empty line or `*0`, which Redis silently skips).
    pub fn len(&self) -> usize {
        match self {
            Request::Multibulk { args, .. } => args.len(),
            Request::Inline { args, .. } => args.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Progress through a multibulk request that has not fully arrived yet.
#[derive(Debug, Default)]
pub struct Partial {
    /// Declared element count, once the `*` line has been read.
    expected: Option<usize>,
    /// Where parsing resumes.
    pos: usize,
    /// The ranges of the request being parsed, or of the one just returned.
    args: Vec<Range<usize>>,
    /// Total bytes needed before the pending bulk can complete; skip work until then.
    need: usize,
}

/// Parse the next request from `buf`.
///
/// `Ok(None)` means more bytes are needed: call again with the same `partial` once the
/// buffer has grown (its first bytes unchanged). After `Ok(Some(req))` the caller removes
/// `req.consumed()` bytes from the front of the buffer; `partial` is already reset.
pub fn parse<'p>(buf: &[u8], partial: &'p mut Partial, limits: &Limits) -> Result<Option<Request<'p>>, ParseError> {
    if buf.len() < partial.need {
        return Ok(None);
    }
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, partial, limits),
        Some(_) => parse_inline(buf),
    }
}

fn parse_multibulk<'p>(
    buf: &[u8],
    partial: &'p mut Partial,
    limits: &Limits,
) -> Result<Option<Request<'p>>, ParseError> {
    let expected = match partial.expected {
        Some(n) => n,
        None => {
            let (line, next) = match read_line(buf, 0) {
                Line::Complete(line, next) => (line, next),
                Line::NoTerminator => return incomplete_line(buf, ParseError::TooBigMultibulkCount),
                Line::Partial => return Ok(None),
            };
            let count = parse_i64(line).ok_or(ParseError::InvalidMultibulkLength)?;
            if count > i64::from(i32::MAX) {
                return Err(ParseError::InvalidMultibulkLength);
            }
            if count <= 0 {
                partial.args.clear();
                return Ok(Some(Request::Multibulk { consumed: next, args: &[] }));
            }
            if limits.unauthenticated && count > UNAUTH_MAX_ARGS {
                return Err(ParseError::UnauthenticatedMultibulkLength);
            }
            let count = usize::try_from(count).map_err(|_| ParseError::InvalidMultibulkLength)?;
            partial.expected = Some(count);
            partial.pos = next;
            partial.args.clear();
            // What a long request grew the ranges to is not kept for the connection's life.
            partial.args.shrink_to(PREALLOC_ARGS);
            partial.args.reserve(count.min(PREALLOC_ARGS));
            count
        }
    };
    while partial.args.len() < expected {
        let pos = partial.pos;
        let Some(&first) = buf.get(pos) else {
            return Ok(None);
        };
        // Like Redis, the first byte is checked only once the whole header line is there.
        let (line, data_start) = match read_line(buf, pos) {
            Line::Complete(line, next) => (line, next),
            Line::NoTerminator if buf.len() - pos > INLINE_MAX => return Err(ParseError::TooBigBulkCount),
            Line::NoTerminator | Line::Partial => return Ok(None),
        };
        if first != b'$' {
            return Err(ParseError::ExpectedDollar(first));
        }
        let len = parse_i64(line).ok_or(ParseError::InvalidBulkLength)?;
        if len < 0 || len > limits.max_bulk_len {
            return Err(ParseError::InvalidBulkLength);
        }
        if limits.unauthenticated && len > UNAUTH_MAX_BULK {
            return Err(ParseError::UnauthenticatedBulkLength);
        }
        let len = usize::try_from(len).map_err(|_| ParseError::InvalidBulkLength)?;
        // Like Redis, the two bytes after the payload are skipped, not checked.
        let end = data_start + len;
        if buf.len() < end + 2 {
            partial.need = end + 2;
            return Ok(None);
        }
        partial.args.push(data_start..end);
        partial.pos = end + 2;
    }
    let consumed = partial.pos;
    partial.expected = None;
    partial.pos = 0;
    partial.need = 0;
    Ok(Some(Request::Multibulk { consumed, args: &partial.args }))
}

fn parse_inline(buf: &[u8]) -> Result<Option<Request<'static>>, ParseError> {
    // Redis finds the end of an inline request with `strchr`, which stops at a NUL byte: a
    // line with a NUL before its `\n` never completes, and fails once it passes 64 KiB.
    let end = buf.iter().position(|&b| b == b'\n' || b == 0);
    let Some(newline) = end.filter(|&at| buf.get(at) == Some(&b'\n')) else {
        return incomplete_line(buf, ParseError::TooBigInline);
    };
    let mut line = buf.get(..newline).unwrap_or_default();
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    let args = split_args(line).ok_or(ParseError::UnbalancedQuotes)?;
    Ok(Some(Request::Inline { consumed: newline + 1, args }))
}

/// A header line without its terminator: more bytes may come, unless the line is already
/// longer than any legitimate one.
fn incomplete_line(buf: &[u8], too_big: ParseError) -> Result<Option<Request<'static>>, ParseError> {
    match buf.len() > INLINE_MAX {
        true => Err(too_big),
        false => Ok(None),
    }
}

/// A `*` or `$` header line, as Redis delimits it.
enum Line<'a> {
    /// The text between the type byte and the terminator, and the offset after the terminator.
    Complete(&'a [u8], usize),
    /// No `\r` yet (or a NUL byte before it, which hides it from `strchr`).
    NoTerminator,
    /// A `\r` is there but not the byte after it.
    Partial,
}

/// The header line whose type byte is at `start`. Redis ends it at the first `\r` found by
/// `strchr` (so a NUL byte before it hides it) and skips the byte after the `\r` unchecked.
fn read_line(buf: &[u8], start: usize) -> Line<'_> {
    let rest = buf.get(start..).unwrap_or_default();
    let Some(cr) = rest.iter().position(|&b| b == b'\r' || b == 0).filter(|&at| rest.get(at) == Some(&b'\r')) else {
        return Line::NoTerminator;
    };
    if rest.len() < cr + 2 {
        return Line::Partial;
    }
    Line::Complete(rest.get(1..cr).unwrap_or_default(), start + cr + 2)
}

/// Redis's `string2ll`: optional `-`, digits, no leading zeros, no `+`, no spaces.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        value = match negative {
            true => value.checked_mul(10)?.checked_sub(digit)?,
            false => value.checked_mul(10)?.checked_add(digit)?,
        };
    }
    Some(value)
}

/// Redis's `sdssplitargs`: whitespace-separated words, with double quotes (C escapes and
/// `\xHH`) and single quotes (only `\'`). `None` on unbalanced quotes, or a closing quote
/// not followed by a space.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // `sdssplitargs` reads a C string: a NUL byte ends the input.
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(|&c| is_c_space(c)) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        loop {
            let Some(&c) = line.get(i) else {
                if quote.is_some() {
                    return None;
                }
                break;
            };
            match quote {
                Some(q) => {
                    if c == b'\\' && q == b'"' {
                        if let Some((byte, used)) = double_quote_escape(line.get(i + 1..)?) {
                            word.push(byte);
                            i += 1 + used;
                            continue;
                        }
                    } else if c == b'\\' && q == b'\'' && line.get(i + 1) == Some(&b'\'') {
                        word.push(b'\'');
                        i += 2;
                        continue;
                    } else if c == q {
                        if line.get(i + 1).is_some_and(|&n| !is_c_space(n)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    word.push(c);
                }
                None => match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' | b'\'' => quote = Some(c),
                    _ => word.push(c),
                },
            }
            i += 1;
        }
        args.push(word);
    }
}

/// C's `isspace` in the C locale, which `strtod`, `strtoull` and friends skip before a number
/// (Rust's `is_ascii_whitespace` leaves out `\v`).
pub fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The byte a backslash escape inside double quotes stands for, and how many bytes after the
/// backslash it used. `None` for a lone trailing backslash (kept literally by the caller).
fn double_quote_escape(rest: &[u8]) -> Option<(u8, usize)> {
    let (&c, tail) = rest.split_first()?;
    if c == b'x' {
        if let [h, l, ..] = tail {
            if let (Some(h), Some(l)) = (hex_value(*h), hex_value(*l)) {
                return Some((h * 16 + l, 3));
            }
        }
    }
    let byte = match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 0x08,
        b'a' => 0x07,
        other => other,
    };
    Some((byte, 1))
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A request with its arguments copied out of the buffer.
    #[derive(Debug, PartialEq)]
    struct Parsed {
        consumed: usize,
        words: Vec<Vec<u8>>,
    }

    fn owned(buf: &[u8], request: Request) -> Parsed {
        let consumed = request.consumed();
        let words = match request {
            Request::Multibulk { args, .. } => args.iter().map(|r| buf[r.clone()].to_vec()).collect(),
            Request::Inline { args, .. } => args,
        };
        Parsed { consumed, words }
    }

    fn one(buf: &[u8]) -> Result<Option<Parsed>, ParseError> {
        let mut partial = Partial::default();
        Ok(parse(buf, &mut partial, &Limits::default())?.map(|request| owned(buf, request)))
    }

    fn words(buf: &[u8]) -> Vec<Vec<u8>> {
        one(buf).unwrap().unwrap().words
    }

    #[test]
    fn multibulk_request() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nrest";
        let req = one(buf).unwrap().unwrap();
        assert_eq!(req.consumed, buf.len() - 4);
        assert_eq!(words(buf), vec![b"GET".to_vec(), b"k".to_vec()]);
    }

    #[test]
    fn resumes_across_reads_without_rescanning() {
        let full = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut partial = Partial::default();
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut], &mut partial, &Limits::default()), Ok(None));
        }
        let req = parse(full, &mut partial, &Limits::default()).unwrap().unwrap();
        assert_eq!(req.consumed(), full.len());
        assert_eq!(req.len(), 3);
    }

    #[test]
    fn empty_and_negative_multibulk_are_skipped() {
        assert_eq!(one(b"*0\r\n").unwrap().unwrap().words.len(), 0);
        assert_eq!(one(b"*-1\r\n").unwrap().unwrap().consumed, 5);
    }

    #[test]
    fn protocol_errors_match_redis() {
        assert_eq!(one(b"*abc\r\n"), Err(ParseError::InvalidMultibulkLength));
        assert_eq!(one(b"*3000000000\r\n"), Err(ParseError::InvalidMultibulkLength));
        assert_eq!(one(b"*1\r\nx3\r\n"), Err(ParseError::ExpectedDollar(b'x')));
        assert_eq!(one(b"*1\r\n$-1\r\n"), Err(ParseError::InvalidBulkLength));
        assert_eq!(one(b"*1\r\n$2147483648\r\n"), Err(ParseError::InvalidBulkLength));
        assert_eq!(ParseError::ExpectedDollar(b'x').to_string(), "ERR Protocol error: expected '$', got 'x'");
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(one(&long), Err(ParseError::TooBigInline));
        let mut header = b"*".to_vec();
        header.extend(vec![b'1'; INLINE_MAX + 1]);
        assert_eq!(one(&header), Err(ParseError::TooBigMultibulkCount));
    }

    #[test]
    fn huge_declared_lengths_allocate_nothing() {
        let mut partial = Partial::default();
        let buf = b"*1048576\r\n$536870912\r\nab";
        assert_eq!(parse(buf, &mut partial, &Limits::default()), Ok(None));
        assert!(partial.args.capacity() <= PREALLOC_ARGS);
        assert_eq!(partial.need, 10 + 12 + 536870912 + 2);
    }

    #[test]
    fn the_ranges_of_a_long_request_are_not_kept() {
        let mut long = b"*2000\r\n".to_vec();
        for _ in 0..2000 {
            long.extend_from_slice(b"$1\r\nx\r\n");
        }
        let mut partial = Partial::default();
        let request = parse(&long, &mut partial, &Limits::default()).unwrap().unwrap();
        assert_eq!(request.len(), 2000);
        let request = parse(b"*1\r\n$4\r\nPING\r\n", &mut partial, &Limits::default()).unwrap().unwrap();
        assert_eq!(request, Request::Multibulk { consumed: 14, args: std::slice::from_ref(&(8..12)) });
        assert!(partial.args.capacity() <= PREALLOC_ARGS);
    }

    #[test]
    fn unauthenticated_limits() {
        let limits = Limits { unauthenticated: true, ..Limits::default() };
        let r = parse(b"*11\r\n", &mut Partial::default(), &limits).map(|_| ());
        assert_eq!(r, Err(ParseError::UnauthenticatedMultibulkLength));
        let r = parse(b"*1\r\n$16385\r\n", &mut Partial::default(), &limits).map(|_| ());
        assert_eq!(r, Err(ParseError::UnauthenticatedBulkLength));
    }

    #[test]
    fn inline_commands_split_like_sdssplitargs() {
        assert_eq!(words(b"set k v\r\n"), vec![b"set".to_vec(), b"k".to_vec(), b"v".to_vec()]);
        assert_eq!(words(b"  ping  \n"), vec![b"ping".to_vec()]);
        assert_eq!(
            words(b"set \"a b\\x41\\n\" 'it\\'s'\r\n"),
            vec![b"set".to_vec(), b"a bA\n".to_vec(), b"it's".to_vec()]
        );
        assert_eq!(words(b"\r\n"), Vec::<Vec<u8>>::new());
        assert_eq!(one(b"set \"abc\r\n"), Err(ParseError::UnbalancedQuotes));
        assert_eq!(one(b"set \"a\"b\r\n"), Err(ParseError::UnbalancedQuotes));
    }

    #[test]
    fn nul_byte_ends_inline_input_like_a_c_string() {
        // Redis looks for the newline with strchr: a NUL before it leaves the line incomplete.
        assert_eq!(one(b"GET a\x00b\r\nPING\r\n"), Ok(None));
        let mut long = b"GET a\x00b\r\n".to_vec();
        long.resize(INLINE_MAX + 1, b'x');
        assert_eq!(one(&long), Err(ParseError::TooBigInline));
        // A NUL after the newline belongs to the next request.
        assert_eq!(words(b"PING\n\x00"), vec![b"PING".to_vec()]);
        // split_args stops at a NUL (this used to loop forever, pushing empty words).
        assert_eq!(split_args(b"set k\x00 v"), Some(vec![b"set".to_vec(), b"k".to_vec()]));
        assert_eq!(split_args(b"\x00set"), Some(vec![]));
        assert_eq!(split_args(b"set \"k\x00\""), None);
    }

    #[test]
    fn vertical_tab_is_space_between_words_but_not_inside_them() {
        assert_eq!(words(b"\x0bping\x0b\n"), vec![b"ping\x0b".to_vec()]);
        assert_eq!(words(b"echo \"a\"\x0b\n"), vec![b"echo".to_vec(), b"a".to_vec()]);
    }

    #[test]
    fn error_lines_carry_the_unexpected_byte_like_redis() {
        assert_eq!(ParseError::ExpectedDollar(b'\r').reply_bytes(), b"-ERR Protocol error: expected '$', got ' '\r\n");
        assert_eq!(
            ParseError::ExpectedDollar(0xff).reply_bytes(),
            b"-ERR Protocol error: expected '$', got '\xff'\r\n"
        );
        assert_eq!(ParseError::InvalidBulkLength.reply_bytes(), b"-ERR Protocol error: invalid bulk length\r\n");
    }

    #[test]
    fn header_lines_end_at_the_first_cr_like_redis() {
        // The byte after `\r` is skipped unchecked.
        assert_eq!(words(b"*1\rX$4\rXPING\r\n"), vec![b"PING".to_vec()]);
        // A lone `\r` ends the count line: the digits before it are parsed.
        assert_eq!(one(b"*1x\r\n"), Err(ParseError::InvalidMultibulkLength));
        assert_eq!(one(b"*1\r"), Ok(None));
        // `$` is checked only when the header line is complete.
        assert_eq!(one(b"*1\r\nfoo"), Ok(None));
        assert_eq!(one(b"*1\r\nfoo\r\n"), Err(ParseError::ExpectedDollar(b'f')));
        assert_eq!(one(b"*1\r\n\r\n"), Err(ParseError::ExpectedDollar(b'\r')));
        // A NUL before the `\r` hides it, as from strchr.
        assert_eq!(one(b"*1\x00\r\n"), Ok(None));
        let mut long = b"*1\x00\r\n".to_vec();
        long.resize(INLINE_MAX + 1, b'1');
        assert_eq!(one(&long), Err(ParseError::TooBigMultibulkCount));
        assert_eq!(one(b"*1\r\n$3\x00\r\nfoo\r\n"), Ok(None));
    }

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"012"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b""), None);
    }
}
