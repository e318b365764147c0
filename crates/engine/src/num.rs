//! Number parsing and printing with Redis's exact rules.

pub use staykv_resp::parse_i64;

/// Redis's `strtold`-based float parsing for INCRBYFLOAT and scores: no spaces, no empty
/// string, `inf`/`-inf` accepted (callers reject them where Redis does), NaN refused.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty() || text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace) {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let value = match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        "nan" => return None,
        rest if rest.starts_with("0x") => {
            let magnitude = parse_hex_float(rest.get(2..)?)?;
            if lower.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
        // A finite literal too large for the type overflows: strtold reports ERANGE and Redis
        // refuses it.
        _ => {
            let value = text.parse::<f64>().ok().filter(|v| v.is_finite())?;
            if value == 0.0 && underflows_long_double(&lower) {
                return None; // ERANGE: underflow to zero
            }
            value
        }
    };
    (!value.is_nan()).then_some(value)
}

/// Decimal exponent of the smallest subnormal C `long double` (x87 80-bit) holds, ~3.6e-4951.
const LONG_DOUBLE_MIN_EXP10: i64 = -4951;

/// Whether a decimal literal f64 rounds to zero is zero for `strtold` too (an ERANGE underflow
/// Redis refuses). Smaller values `long double` still holds are accepted, as zero.
fn underflows_long_double(literal: &str) -> bool {
    let body = literal.trim_start_matches(['+', '-']);
    let (mantissa, exponent) = match body.split_once('e') {
        Some((m, e)) => {
            let saturated = if e.starts_with('-') { i64::MIN / 2 } else { i64::MAX / 2 };
            (m, e.parse::<i64>().unwrap_or(saturated))
        }
        None => (body, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let Some(first_significant) = whole.bytes().chain(fraction.bytes()).position(|b| b != b'0') else {
        return false; // a true zero
    };
    let magnitude = exponent.saturating_add(whole.len() as i64 - first_significant as i64 - 1);
    magnitude < LONG_DOUBLE_MIN_EXP10
}

/// The hexadecimal floats `strtold` accepts after `0x`: digits, an optional fraction and an
/// optional binary exponent (`10`, `1.8`, `1p-2`).
fn parse_hex_float(text: &str) -> Option<f64> {
    let (mantissa, exponent) = match text.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in whole.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in fraction.chars() {
        value += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(value * 2f64.powi(exponent))
}

/// Integer-valued text for replies.
pub fn i64_bytes(n: i64) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes())
}

/// A float as INCRBYFLOAT stores it: fixed notation with 17 decimals, trailing zeros and a
/// trailing dot removed (Redis's `ld2string` in human-friendly mode).
pub fn format_long_double_human(value: f64) -> String {
    let text = format!("{value:.17}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_parse_like_strtold() {
        assert_eq!(parse_f64(b"+5"), Some(5.0));
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        for refused in [&b""[..], b" 5", b"5 ", b"nan", b"1e5000", b"abc"] {
            assert_eq!(parse_f64(refused), None, "{:?}", String::from_utf8_lossy(refused));
        }
    }

    #[test]
    fn underflow_to_zero_is_refused_only_past_long_double_range() {
        assert_eq!(parse_f64(b"3.0e-922337203685477580854775807"), None);
        assert_eq!(parse_f64(b"1e-5000"), None);
        assert_eq!(parse_f64(b"0.0001e-4950"), None);
        // Zero in f64 but not in long double: accepted (as zero).
        assert_eq!(parse_f64(b"1e-400"), Some(0.0));
        assert_eq!(parse_f64(b"0e-99999"), Some(0.0));
        assert_eq!(parse_f64(b"-0.000"), Some(-0.0));
    }
}
