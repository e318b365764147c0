//! Replies as JSON, in the Upstash REST dialect.
//!
//! RESP2 shapes: bulk and status strings become JSON strings, integers numbers, nil `null`,
//! arrays nested arrays; RESP3-only shapes are flattened as Redis flattens them for a RESP2
//! client (maps to flat arrays, sets and pushes to arrays, doubles to strings, booleans to
//! 1/0). Errors are `{"error":"..."}` objects.
//!
//! With `Upstash-Encoding: base64` every string is base64 of its bytes, at any depth, except
//! a top-level `OK` status, which `@upstash/redis` expects verbatim; errors are never
//! encoded. Without it, bytes that are not UTF-8 are replaced by U+FFFD, as Upstash does.

use base64::Engine as _;
use staykv_resp::Reply;

/// How strings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 text, invalid sequences replaced.
    Text,
    /// Base64 of the raw bytes.
    Base64,
}

/// `{"result":...}` or `{"error":"..."}` for one reply.
pub fn result_object(reply: &Reply, encoding: Encoding, out: &mut Vec<u8>) {
    match reply {
        Reply::Error(text) => error_object(text, out),
        Reply::ErrorBytes(raw) => error_object(&String::from_utf8_lossy(raw), out),
        _ => {
            out.extend_from_slice(b"{\"result\":");
            value(reply, encoding, true, out);
            out.push(b'}');
        }
    }
}

/// `{"error":"..."}`.
pub fn error_object(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"error\":");
    string(text.as_bytes(), Encoding::Text, out);
    out.push(b'}');
}

/// `{"error":"..."}` as a fresh buffer.
pub fn error_body(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 12);
    error_object(text, &mut out);
    out
}

/// One reply as a JSON value. `top` marks the outermost value of a result, the only place
/// where an `OK` status stays unencoded under base64.
fn value(reply: &Reply, encoding: Encoding, top: bool, out: &mut Vec<u8>) {
    match reply {
        Reply::Ok => status("OK", encoding, top, out),
        Reply::Status(text) => status(text, encoding, top, out),
        Reply::StatusOwned(text) => status(text, encoding, top, out),
        Reply::Error(text) => error_object(text, out),
        Reply::ErrorBytes(raw) => error_object(&String::from_utf8_lossy(raw), out),
        Reply::Int(n) => {
            let _ = std::io::Write::write_fmt(out, format_args!("{n}"));
        }
        Reply::Bulk(bytes) | Reply::Verbatim(_, bytes) | Reply::BigNumber(bytes) => string(bytes, encoding, out),
        Reply::Nil | Reply::NilArray => out.extend_from_slice(b"null"),
        // `Many` (several replies to one command, as SUBSCRIBE sends) becomes one array.
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) | Reply::Many(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(item, encoding, false, out);
            }
            out.push(b']');
        }
        Reply::Map(pairs) => {
            out.push(b'[');
            for (i, (key, val)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(key, encoding, false, out);
                out.push(b',');
                value(val, encoding, false, out);
            }
            out.push(b']');
        }
        Reply::Double(d) => string(double_text(*d).as_bytes(), encoding, out),
        Reply::HumanDouble(d) => string(staykv_resp::format_human_double(*d).as_bytes(), encoding, out),
        Reply::Bool(b) => out.push(if *b { b'1' } else { b'0' }),
    }
}

/// A double in the shortest text that reads back as the same number, spelled as JavaScript
/// spells numbers (`0.1`, `1e+21`, `1e-7`), and `inf`, `-inf`, `nan` as Redis spells them.
/// RESP2 carries Redis 7.0's `%.17g` (`0.10000000000000001`), but the HTTP API's clients are
/// JavaScript SDKs that turn a string into a number only when the number prints back as the
/// same string, so `%.17g` left fractional scores as strings where they declare numbers.
/// Redis 7.2 prints the shortest form too.
fn double_text(d: f64) -> String {
    if !d.is_finite() || d == 0.0 {
        let text = match (d.is_nan(), d.is_infinite(), d.is_sign_negative()) {
            (true, ..) => "nan",
            (_, true, false) => "inf",
            (_, true, true) => "-inf",
            (_, false, false) => "0",
            (_, false, true) => "-0",
        };
        return text.to_string();
    }
    // `{:e}` gives the fewest digits that read back as `d` (`1.5e-7`). Of two such spellings
    // equally near `d`, it may take the odd one where JavaScript takes the even
    // (917707694322589.25: `…589.3` against `…589.2`); `{:.Ne}` rounds `d` itself to that
    // many digits, ties to even, which is JavaScript's pick.
    let shortest = format!("{:e}", d.abs());
    let digit_count = shortest.split('e').next().unwrap_or_default().bytes().filter(u8::is_ascii_digit).count();
    let nearest = format!("{:.*e}", digit_count.saturating_sub(1), d.abs());
    let exp_form = if nearest.parse::<f64>().ok() == Some(d.abs()) { nearest } else { shortest };
    let (mantissa, exponent) = exp_form.split_once('e').unwrap_or((&exp_form, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if d < 0.0 { "-" } else { "" };
    // ECMAScript's Number::toString: `point` digits before the decimal point.
    let (k, point) = (i32::try_from(digits.len()).unwrap_or(i32::MAX), exponent + 1);
    let text = if k <= point && point <= 21 {
        format!("{digits}{}", "0".repeat(usize::try_from(point - k).unwrap_or(0)))
    } else if 0 < point && point <= 21 {
        let (whole, fraction) = digits.split_at(usize::try_from(point).unwrap_or(0));
        format!("{whole}.{fraction}")
    } else if -6 < point && point <= 0 {
        format!("0.{}{digits}", "0".repeat(usize::try_from(-point).unwrap_or(0)))
    } else {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exp_sign = if point > 0 { "+" } else { "-" };
        format!("{first}{fraction}e{exp_sign}{}", (point - 1).abs())
    };
    format!("{sign}{text}")
}

fn status(text: &str, encoding: Encoding, top: bool, out: &mut Vec<u8>) {
    let encoding = if top && text == "OK" { Encoding::Text } else { encoding };
    string(text.as_bytes(), encoding, out);
}

/// A JSON string of `bytes`, base64 or (lossy) UTF-8.
pub fn string(bytes: &[u8], encoding: Encoding, out: &mut Vec<u8>) {
    out.push(b'"');
    match encoding {
        Encoding::Base64 => {
            let start = out.len();
            out.resize(start + base64::encoded_len(bytes.len(), true).unwrap_or(0), 0);
            let written = out
                .get_mut(start..)
                .and_then(|buf| base64::engine::general_purpose::STANDARD.encode_slice(bytes, buf).ok())
                .unwrap_or(0);
            out.truncate(start + written);
        }
        Encoding::Text => {
            // ASCII is valid UTF-8 and ends on a character boundary: the plain prefix (all of a
            // typical token or session value) is copied without a UTF-8 check or an escape scan.
            let (plain, rest) = bytes.split_at(plain_ascii_prefix(bytes));
            out.extend_from_slice(plain);
            match std::str::from_utf8(rest) {
                Ok(text) => escape(text, out),
                Err(_) => escape(&String::from_utf8_lossy(rest), out),
            }
        }
    }
    out.push(b'"');
}

/// The length of `bytes`' longest prefix of whole [`PLAIN_BLOCK`]s of ASCII with nothing to
/// escape.
fn plain_ascii_prefix(bytes: &[u8]) -> usize {
    let plain = |block: &[u8]| none_of(block, |b| needs_escape(b) | !b.is_ascii());
    bytes.chunks_exact(PLAIN_BLOCK).take_while(|block| plain(block)).count() * PLAIN_BLOCK
}

/// Whether no byte of `block` is `hit`: a fold without a short circuit, which is what
/// vectorizes.
fn none_of(block: &[u8], hit: impl Fn(u8) -> bool) -> bool {
    !block.iter().fold(false, |any, &b| any | hit(b))
}

/// Bytes checked at once by [`plain_ascii_prefix`]: in whole blocks the check compiles to a
/// few vector instructions a block. Checking UTF-8 and then scanning for escapes in 16-byte
/// blocks, a 1 KB value cost about 3,300 more instructions a GET (callgrind, HTTP session
/// workload: 36,250 → 33,940 instructions a request).
const PLAIN_BLOCK: usize = 64;

/// Bytes a JSON string escapes: quotes, backslashes and control characters.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Bytes checked at once for anything to escape: the check of a whole block compiles to a few
/// vector instructions, where a byte at a time cost ~10 instructions a byte (a 1 KB session
/// value was a fifth of an HTTP GET's server instructions).
const CLEAN_BLOCK: usize = 16;

/// JSON string escaping: quotes, backslashes and control characters.
fn escape(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.reserve(bytes.len());
    let mut clean_from = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if let Some(block) = bytes.get(i..i + CLEAN_BLOCK) {
            if none_of(block, needs_escape) {
                i += CLEAN_BLOCK;
                continue;
            }
        }
        i += 1;
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(bytes.get(clean_from..i - 1).unwrap_or_default());
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                let lo = HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0');
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
            }
        }
        clean_from = i;
    }
    out.extend_from_slice(bytes.get(clean_from..).unwrap_or_default());
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn render(reply: &Reply, encoding: Encoding) -> String {
        let mut out = Vec::new();
        result_object(reply, encoding, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// JavaScript's `String(n)` for each (node prints the same), and every one reads back.
    #[test]
    fn doubles_in_the_shortest_form_javascript_reads_back_as_a_number() {
        for (d, text) in [
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (3.0, "3"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123_456_789.125, "123456789.125"),
            (0.000_001, "0.000001"),
            (1e-7, "1e-7"),
            (-1.5e-300, "-1.5e-300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (1.0 / 3.0, "0.3333333333333333"),
            (917_707_694_322_589.0 + 0.25, "917707694322589.2"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
        ] {
            assert_eq!(double_text(d), text);
        }
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = f64::from_bits(x);
            if d.is_finite() {
                let text = double_text(d);
                assert_eq!(text.parse::<f64>().unwrap().to_bits(), d.to_bits(), "{text}");
            }
        }
    }

    #[test]
    fn resp2_shapes() {
        assert_eq!(render(&Reply::Ok, Encoding::Text), r#"{"result":"OK"}"#);
        assert_eq!(render(&Reply::Int(-7), Encoding::Text), r#"{"result":-7}"#);
        assert_eq!(render(&Reply::Nil, Encoding::Text), r#"{"result":null}"#);
        assert_eq!(render(&Reply::NilArray, Encoding::Text), r#"{"result":null}"#);
        assert_eq!(render(&Reply::Double(1.5), Encoding::Text), r#"{"result":"1.5"}"#);
        assert_eq!(render(&Reply::Bool(true), Encoding::Text), r#"{"result":1}"#);
        let map = Reply::Map(vec![(Reply::bulk_str("f"), Reply::Int(1)), (Reply::bulk_str("g"), Reply::Nil)]);
        assert_eq!(render(&map, Encoding::Text), r#"{"result":["f",1,"g",null]}"#);
        let nested = Reply::Array(vec![Reply::Array(vec![Reply::bulk_str("a")]), Reply::Set(vec![])]);
        assert_eq!(render(&nested, Encoding::Text), r#"{"result":[["a"],[]]}"#);
        assert_eq!(render(&Reply::error("ERR x \"y\""), Encoding::Text), r#"{"error":"ERR x \"y\""}"#);
        let with_error = Reply::Array(vec![Reply::Ok, Reply::error("WRONGTYPE no")]);
        assert_eq!(render(&with_error, Encoding::Text), r#"{"result":["OK",{"error":"WRONGTYPE no"}]}"#);
    }

    #[test]
    fn escapes_and_lossy_utf8() {
        let reply = Reply::Bulk(Bytes::from_static("q\"\\\n\t\u{1}é€😀".as_bytes()));
        let text = render(&reply, Encoding::Text);
        assert_eq!(text, "{\"result\":\"q\\\"\\\\\\n\\t\\u0001é€😀\"}");
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["result"], "q\"\\\n\t\u{1}é€😀");
        let binary = Reply::Bulk(Bytes::from_static(b"a\xffb"));
        assert_eq!(render(&binary, Encoding::Text), "{\"result\":\"a\u{fffd}b\"}");
        // A stray continuation byte inside a block that is otherwise plain ASCII.
        let long = Reply::Bulk(Bytes::from([vec![b'a'; 70], vec![0x85], vec![b'b'; 70]].concat()));
        let expected = format!("{{\"result\":\"{}\u{fffd}{}\"}}", "a".repeat(70), "b".repeat(70));
        assert_eq!(render(&long, Encoding::Text), expected);
    }

    #[test]
    fn long_strings_round_trip_whatever_their_escapes_and_where_they_fall() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let specials = ['"', '\\', '\n', '\u{1}', '\u{1f}', 'é', '€', ' '];
        for _ in 0..2_000 {
            let len = rng.gen_range(0..300);
            // Specials often, or rarely enough that whole plain blocks come first.
            let one_in = if rng.gen_bool(0.5) { 8 } else { 200 };
            let text: String = (0..len)
                .map(|_| match rng.gen_range(0..one_in) {
                    0 => specials[rng.gen_range(0..specials.len())],
                    _ => char::from(rng.gen_range(b' '..=b'~')),
                })
                .collect();
            let rendered = render(&Reply::Bulk(Bytes::from(text.clone())), Encoding::Text);
            let parsed: serde_json::Value = serde_json::from_str(&rendered).unwrap();
            assert_eq!(parsed["result"], text.as_str(), "{rendered}");
        }
    }

    #[test]
    fn base64_everywhere_but_top_level_ok_and_errors() {
        assert_eq!(render(&Reply::Ok, Encoding::Base64), r#"{"result":"OK"}"#);
        assert_eq!(render(&Reply::Status("PONG"), Encoding::Base64), r#"{"result":"UE9ORw=="}"#);
        assert_eq!(render(&Reply::bulk_str("bar"), Encoding::Base64), r#"{"result":"YmFy"}"#);
        assert_eq!(render(&Reply::bulk_str(""), Encoding::Base64), r#"{"result":""}"#);
        assert_eq!(render(&Reply::Bulk(Bytes::from_static(b"\xff")), Encoding::Base64), r#"{"result":"/w=="}"#);
        let nested = Reply::Array(vec![Reply::Ok, Reply::Array(vec![Reply::bulk_str("a")]), Reply::Int(3)]);
        assert_eq!(render(&nested, Encoding::Base64), r#"{"result":["T0s=",["YQ=="],3]}"#);
        assert_eq!(render(&Reply::error("ERR bad"), Encoding::Base64), r#"{"error":"ERR bad"}"#);
        assert_eq!(render(&Reply::Double(2.0), Encoding::Base64), r#"{"result":"Mg=="}"#);
        assert_eq!(render(&Reply::Double(0.1), Encoding::Text), r#"{"result":"0.1"}"#);
        assert_eq!(render(&Reply::Double(f64::INFINITY), Encoding::Text), r#"{"result":"inf"}"#);
    }
}
