//! C's `long double` as Redis uses it for INCRBYFLOAT and HINCRBYFLOAT: the x87 80-bit
//! extended format (64-bit significand, exponent range of ±16382), parsed like glibc's
//! `strtold`, added with round-to-nearest-even, and printed like `printf("%.17Lf")`.
//!
//! Redis stores the result as text, so every difference in the last bits shows: computing in
//! f64 turns `10 + 100.01` into `110.01000000000000512` where Redis answers `110.01`, and
//! refuses values such as `1e400` that Redis accepts. Values here are exact binary fractions
//! `significand × 2^exponent`; parsing, adding and printing go through big integers, so each
//! step is exactly rounded as the C library does it. Inputs are at most 5 KiB of text (Redis's
//! `MAX_LONG_DOUBLE_CHARS`), which bounds every intermediate number.

use num_bigint::BigUint;
use num_traits::{One, Zero};

/// Significand bits of the x87 extended format.
const PRECISION: u64 = 64;
/// Exponent of the least significant bit of the smallest subnormal (2^-16445).
const MIN_EXPONENT: i64 = -16445;
/// Largest exponent of a finite value's least significant bit: (2^64 - 1) × 2^16320 is the
/// largest finite value, about 1.19e4932.
const MAX_EXPONENT: i64 = 16320;
/// Redis refuses longer inputs (`MAX_LONG_DOUBLE_CHARS`, buffer included).
const MAX_INPUT: usize = 5 * 1024 - 1;
/// Decimal digits `%.17Lf` prints after the point.
const FRACTION_DIGITS: u32 = 17;

/// A finite value: `(-1)^negative × significand × 2^exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongDouble {
    negative: bool,
    significand: u64,
    exponent: i64,
}

/// Why a sum has no finite result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotFinite;

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble { negative: false, significand: 0, exponent: 0 };

    /// A float argument as Redis's `string2ld` reads it: the whole text is a number for
    /// `strtold`, no leading space, not NaN, and no overflow or underflow to zero.
    /// Infinities parse (as `Err(NotFinite)` inside `Some`): they are valid input that no
    /// sum can take.
    pub fn parse(text: &[u8]) -> Option<Result<LongDouble, NotFinite>> {
        if text.is_empty() || text.len() > MAX_INPUT || text.first().is_some_and(u8::is_ascii_whitespace) {
            return None;
        }
        let (negative, body) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, text),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(Err(NotFinite));
        }
        let exact = match body.get(..2) {
            Some(prefix) if prefix.eq_ignore_ascii_case(b"0x") => parse_hex(body.get(2..)?)?,
            _ => parse_decimal(body)?,
        };
        match exact.round(negative) {
            Rounded::Value(value) => Some(Ok(value)),
            Rounded::Zero => Some(Ok(LongDouble { negative, ..LongDouble::ZERO })),
            // ERANGE with HUGE_VAL or zero: Redis refuses the text.
            Rounded::Overflow | Rounded::Underflow => None,
        }
    }

    /// `self + other`, rounded to the nearest (ties to even); `Err` past the largest value.
    pub fn checked_add(self, other: LongDouble) -> Result<LongDouble, NotFinite> {
        let base = self.exponent.min(other.exponent);
        let scaled = |v: LongDouble| BigUint::from(v.significand) << (v.exponent - base) as usize;
        let (a, b) = (scaled(self), scaled(other));
        let (negative, magnitude) = if self.negative == other.negative {
            (self.negative, a + b)
        } else if a >= b {
            (self.negative, a - b)
        } else {
            (other.negative, b - a)
        };
        if magnitude.is_zero() {
            // x + (-x) is +0 when rounding to nearest; -0 + -0 stays -0.
            return Ok(LongDouble { negative: self.negative && other.negative, ..LongDouble::ZERO });
        }
        match (Exact { magnitude, exponent: base, inexact: false }).round(negative) {
            Rounded::Value(value) => Ok(value),
            Rounded::Zero | Rounded::Underflow => Ok(LongDouble { negative, ..LongDouble::ZERO }),
            Rounded::Overflow => Err(NotFinite),
        }
    }

    /// `(long long)ceill(self * 1000)` as Redis computes a blocking timeout's milliseconds on
    /// x86-64: the product rounded to 64 bits, then up to an integer; a result past the range
    /// of a `long long` (an infinity included) converts to `LLONG_MIN`.
    pub fn ceil_millis(value: Result<LongDouble, NotFinite>) -> i64 {
        let product = value.and_then(|v| {
            let exact =
                Exact { magnitude: BigUint::from(v.significand) * 1000u32, exponent: v.exponent, inexact: false };
            match exact.round(v.negative) {
                Rounded::Value(product) => Ok(product),
                Rounded::Zero | Rounded::Underflow => Ok(LongDouble::ZERO),
                Rounded::Overflow => Err(NotFinite),
            }
        });
        let Ok(LongDouble { negative, significand, exponent }) = product else { return i64::MIN };
        let magnitude: u128 = if exponent >= 0 {
            match u32::try_from(exponent).ok().and_then(|e| u128::from(significand).checked_shl(e)) {
                Some(m) if m >> exponent == u128::from(significand) => m,
                _ => return i64::MIN,
            }
        } else {
            let shift = exponent.unsigned_abs();
            let whole = if shift >= 64 { 0 } else { significand >> shift };
            let fraction = if shift >= 64 { significand != 0 } else { significand & ((1 << shift) - 1) != 0 };
            // Up: a positive fraction adds one, a negative one is dropped.
            u128::from(whole) + u128::from(fraction && !negative)
        };
        match i64::try_from(magnitude) {
            Ok(m) if negative => -m,
            Ok(m) => m,
            Err(_) => i64::MIN,
        }
    }

    /// `printf("%.17Lf")` with trailing zeros and a trailing point removed, and `-0` as `0`
    /// (Redis's `ld2string` in human mode).
    pub fn format_human(self) -> String {
        let magnitude = BigUint::from(self.significand);
        let scale = BigUint::from(10u32).pow(FRACTION_DIGITS);
        // The value × 10^17, rounded to an integer (ties to even, as glibc prints).
        let units = if self.exponent >= 0 {
            (magnitude << self.exponent as usize) * scale
        } else {
            let shift = self.exponent.unsigned_abs() as usize;
            let scaled = magnitude * scale;
            let quotient = &scaled >> shift;
            let remainder = &scaled - (&quotient << shift);
            let half = BigUint::one() << (shift - 1);
            let odd = quotient.bit(0);
            if remainder > half || (remainder == half && odd) {
                quotient + 1u32
            } else {
                quotient
            }
        };
        let digits = format!("{units:0>18}");
        let (whole, fraction) = digits.split_at(digits.len() - FRACTION_DIGITS as usize);
        let fraction = fraction.trim_end_matches('0');
        let sign = if self.negative && (whole != "0" || !fraction.is_empty()) { "-" } else { "" };
        if fraction.is_empty() {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{fraction}")
        }
    }
}

/// An exact parsed or summed magnitude: `magnitude × 2^exponent`, plus whether nonzero bits
/// were already cut below it (a division's remainder), which breaks rounding ties upward.
struct Exact {
    magnitude: BigUint,
    exponent: i64,
    inexact: bool,
}

enum Rounded {
    Value(LongDouble),
    /// The text was a zero.
    Zero,
    /// Nonzero, but below half the smallest subnormal.
    Underflow,
    Overflow,
}

impl Exact {
    /// Round to 64 significant bits (fewer in the subnormal range), nearest, ties to even.
    fn round(self, negative: bool) -> Rounded {
        let Exact { magnitude, exponent, inexact } = self;
        if magnitude.is_zero() {
            return if inexact { Rounded::Underflow } else { Rounded::Zero };
        }
        let excess = i64::try_from(magnitude.bits()).unwrap_or(i64::MAX) - PRECISION as i64;
        let drop = excess.max(MIN_EXPONENT - exponent).max(0);
        let (mut kept, mut exponent) = (magnitude.clone(), exponent);
        if drop > 0 {
            let shift = drop as usize;
            kept = &magnitude >> shift;
            let remainder = &magnitude - (&kept << shift);
            let half = BigUint::one() << (shift - 1);
            if remainder > half || (remainder == half && (inexact || kept.bit(0))) {
                kept += 1u32;
            }
            exponent += drop;
            if kept.bits() > PRECISION {
                kept >>= 1;
                exponent += 1;
            }
        }
        if exponent > MAX_EXPONENT {
            return Rounded::Overflow;
        }
        match u64::try_from(kept) {
            Ok(0) => Rounded::Underflow,
            Ok(significand) => Rounded::Value(LongDouble { negative, significand, exponent }),
            Err(_) => Rounded::Overflow,
        }
    }

    /// `numerator / denominator × 2^exponent`, with enough quotient bits to round correctly.
    fn ratio(numerator: BigUint, denominator: &BigUint, exponent: i64) -> Exact {
        let wanted = PRECISION + 2 + denominator.bits();
        let shift = wanted.saturating_sub(numerator.bits());
        let scaled = numerator << shift as usize;
        let quotient = &scaled / denominator;
        let inexact = &quotient * denominator != scaled;
        Exact { magnitude: quotient, exponent: exponent - shift as i64, inexact }
    }
}

/// Digits, an optional fraction and an optional exponent: `12`, `1.5`, `.5`, `5.`, `1e-3`.
fn parse_decimal(body: &[u8]) -> Option<Exact> {
    let (mantissa, exponent) = split_exponent(body, b'e')?;
    let (digits, fraction_len) = mantissa_digits(mantissa, |b| b.is_ascii_digit())?;
    let Some(first) = digits.iter().position(|&d| d != b'0') else {
        return Some(Exact { magnitude: BigUint::zero(), exponent: 0, inexact: false });
    };
    let significant = digits.get(first..)?;
    let power = exponent.checked_sub(i64::try_from(fraction_len).ok()?)?;
    // Decimal exponent of the leading digit: outside about ±4951 the value is certainly
    // beyond the format's range, and big integers for it would be needlessly huge.
    let leading = power + significant.len() as i64 - 1;
    if leading > 4933 {
        return Some(Exact { magnitude: BigUint::one(), exponent: MAX_EXPONENT + PRECISION as i64, inexact: false });
    }
    if leading < -4952 {
        return Some(Exact { magnitude: BigUint::zero(), exponent: 0, inexact: true });
    }
    let value = BigUint::parse_bytes(significant, 10)?;
    let ten = BigUint::from(10u32);
    Some(if power >= 0 {
        Exact { magnitude: value * ten.pow(power as u32), exponent: 0, inexact: false }
    } else {
        Exact::ratio(value, &ten.pow(power.unsigned_abs() as u32), 0)
    })
}

/// `strtold`'s hexadecimal form after `0x`: hex digits, an optional fraction, an optional
/// binary exponent (`1.8p3`).
fn parse_hex(body: &[u8]) -> Option<Exact> {
    let (mantissa, exponent) = split_exponent(body, b'p')?;
    let (digits, fraction_len) = mantissa_digits(mantissa, |b| b.is_ascii_hexdigit())?;
    let value = BigUint::parse_bytes(&digits, 16)?;
    if value.is_zero() {
        return Some(Exact { magnitude: value, exponent: 0, inexact: false });
    }
    let exponent = exponent.checked_sub(4 * i64::try_from(fraction_len).ok()?)?;
    // Far outside the range: answer without building a huge number.
    let leading = exponent + value.bits() as i64;
    if leading > MAX_EXPONENT + PRECISION as i64 + 1 {
        return Some(Exact { magnitude: BigUint::one(), exponent: MAX_EXPONENT + PRECISION as i64, inexact: false });
    }
    if leading < MIN_EXPONENT - 2 {
        return Some(Exact { magnitude: BigUint::zero(), exponent: 0, inexact: true });
    }
    Some(Exact { magnitude: value, exponent, inexact: false })
}

/// Splits `1.5e-3` into the mantissa and the exponent (0 when absent). The exponent needs at
/// least one digit; a huge one saturates (the range checks decide what it means).
fn split_exponent(body: &[u8], marker: u8) -> Option<(&[u8], i64)> {
    let Some(at) = body.iter().position(|b| b.eq_ignore_ascii_case(&marker)) else {
        return Some((body, 0));
    };
    let (mantissa, rest) = (body.get(..at)?, body.get(at + 1..)?);
    let (negative, digits) = match rest.split_first() {
        Some((b'-', d)) => (true, d),
        Some((b'+', d)) => (false, d),
        _ => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().try_fold(0i64, |n, d| n.checked_mul(10)?.checked_add(i64::from(d - b'0')));
    let magnitude = magnitude.unwrap_or(i64::MAX / 4).min(i64::MAX / 4);
    Some((mantissa, if negative { -magnitude } else { magnitude }))
}

/// The digits of `12.50` without the point (`1250`) and how many followed it (2). At least
/// one digit is required.
fn mantissa_digits(mantissa: &[u8], is_digit: impl Fn(&u8) -> bool) -> Option<(Vec<u8>, usize)> {
    let (whole, fraction) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (mantissa.get(..at)?, mantissa.get(at + 1..)?),
        None => (mantissa, &b""[..]),
    };
    let valid = |part: &[u8]| part.iter().all(&is_digit);
    if whole.len() + fraction.len() == 0 || !valid(whole) || !valid(fraction) {
        return None;
    }
    Some(([whole, fraction].concat(), fraction.len()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn value(text: &str) -> LongDouble {
        LongDouble::parse(text.as_bytes()).unwrap().unwrap()
    }

    fn sum(a: &str, b: &str) -> String {
        value(a).checked_add(value(b)).unwrap().format_human()
    }

    #[test]
    fn what_strtold_refuses_is_refused() {
        assert_eq!(value("+5"), value("5"));
        assert_eq!(value("0x10"), value("16"));
        assert_eq!(LongDouble::parse(b"-inf"), Some(Err(NotFinite)));
        for refused in [&b""[..], b" 5", b"5 ", b"nan", b"1e5000", b"abc"] {
            assert_eq!(LongDouble::parse(refused), None, "{:?}", String::from_utf8_lossy(refused));
        }
        // Underflow to zero is refused only past long double's range.
        for refused in [&b"3.0e-922337203685477580854775807"[..], b"1e-5000", b"0.0001e-4950"] {
            assert_eq!(LongDouble::parse(refused), None, "{:?}", String::from_utf8_lossy(refused));
        }
        assert_ne!(value("1e-400"), LongDouble::ZERO);
        assert_eq!(value("0e-99999"), LongDouble::ZERO);
    }

    /// Blocking timeouts' milliseconds as redis-server 7.0.15 (x86-64) takes them: `BLPOP k
    /// <seconds>` waits for ever at 0, answers "timeout is negative" below.
    #[test]
    fn timeouts_round_up_in_long_double_precision() {
        let millis = |text: &str| LongDouble::ceil_millis(LongDouble::parse(text.as_bytes()).unwrap());
        for (seconds, expected) in [
            ("0", 0),
            ("1.5", 1500),
            ("0.0001", 1),
            ("1e-400", 1),
            ("-0.001", 0),
            ("-0.0011", -1),
            ("-0.0001", 0),
            ("9223372036854775", 9_223_372_036_854_775_000),
            ("9223372036854775.807", i64::MAX),
            ("9223372036854776", i64::MIN),
            ("1e400", i64::MIN),
            ("inf", i64::MIN),
            ("-inf", i64::MIN),
        ] {
            assert_eq!(millis(seconds), expected, "{seconds}");
        }
    }

    /// Replies of redis-server 7.0.15 (x86-64) to `SET k a` + `INCRBYFLOAT k b`.
    #[test]
    fn sums_print_as_redis_prints_them() {
        for (a, b, redis) in [
            ("10", "100.01", "110.01"),
            ("0.1", "0.2", "0.3"),
            ("10.50", "0.1", "10.6"),
            ("5.0e3", "2.0e2", "5200"),
            ("0", "-0.1", "-0.1"),
            ("42", "1e-3", "42.001"),
            ("-2.25", "2.5e-5", "-2.249975"),
            ("1", "-1", "0"),
            ("0", "1e20", "100000000000000000000"),
            ("9223372036854775807", "-45", "9223372036854775762"),
            ("0", "3.14159", "3.14159"),
            ("0", "1e-18", "0"),
            ("0", "-1e-18", "0"),
            ("0x10", "0x1.8p1", "19"),
        ] {
            assert_eq!(sum(a, b), redis, "{a} + {b}");
        }
    }

    #[test]
    fn parsing_follows_string2ld() {
        for refused in [
            "",
            " 1",
            "1 ",
            "nan",
            "-nan",
            "1e",
            "1e+",
            ".",
            "0x",
            "0x1p",
            "e5",
            "1.2.3",
            "1e5000",
            "-1e5000",
            "1e-5000",
            "3.0e-922337203685477580854775807",
            "0x1p99999",
        ] {
            assert_eq!(LongDouble::parse(refused.as_bytes()), None, "{refused:?}");
        }
        for infinite in ["inf", "-inf", "+Infinity", "INF"] {
            assert_eq!(LongDouble::parse(infinite.as_bytes()), Some(Err(NotFinite)), "{infinite}");
        }
        for (text, printed) in [
            ("1e400", LONG_1E400.to_string()),
            ("+.5", "0.5".into()),
            ("5.", "5".into()),
            ("-0", "0".into()),
            ("1e-400", "0".into()),
            ("007", "7".into()),
        ] {
            assert_eq!(value(text).format_human(), printed, "{text}");
        }
    }

    /// redis-server 7.0.15's `INCRBYFLOAT k 0` on `1e400`: the binary value's exact digits.
    const LONG_1E400: &str = "10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880";

    #[test]
    fn the_largest_value_overflows_when_increased() {
        let largest = value("1.18973149535723176502e4932");
        assert_eq!(largest.checked_add(largest), Err(NotFinite));
        assert!(largest.format_human().starts_with("118973149535723176"));
    }
}
