//! Number parsing and printing with Redis's exact rules.

pub use staykv_resp::{is_c_space, parse_i64};

use crate::long_double::LongDouble;

/// Redis's `strtold`-based float parsing (blocking timeouts, SORT weights), as an f64: no
/// spaces, no empty string, `inf`/`-inf` accepted (callers reject them where Redis does), NaN
/// and overflow or underflow to zero refused. Values `long double` holds beyond f64's range
/// become infinities or zeros.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    Some(match LongDouble::parse(s)? {
        Ok(value) => value.to_f64(),
        Err(_) if s.starts_with(b"-") => f64::NEG_INFINITY,
        Err(_) => f64::INFINITY,
    })
}

/// Integer-valued text for replies.
pub fn i64_bytes(n: i64) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes())
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
