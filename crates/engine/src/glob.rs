//! Glob matching exactly as Redis's `stringmatchlen` (KEYS, SCAN MATCH, CONFIG GET, PSUBSCRIBE).
//!
//! `*` any run, `?` one byte, `[abc]`, `[^a-z]` classes with ranges (reversed ranges allowed),
//! `\x` escapes. A malformed class (`[abc` unterminated) matches as Redis does. Backtracking is
//! bounded the way Redis 7.0 bounds it: once the rest of the pattern failed to match anywhere
//! after a `*`, longer matches for earlier stars are not tried, and nesting stops at 1000.

/// Whether `string` matches `pattern`.
pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, string, nocase, &mut skip_longer, 0)
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

fn match_impl(mut p: &[u8], mut s: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > 1000 {
        return false;
    }
    while let (Some(&pc), Some(&sc)) = (p.first(), s.first()) {
        match pc {
            b'*' => {
                while p.get(1) == Some(&b'*') {
                    p = p.get(1..).unwrap_or_default();
                }
                if p.len() == 1 {
                    return true;
                }
                let rest = p.get(1..).unwrap_or_default();
                while !s.is_empty() {
                    if match_impl(rest, s, nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = s.get(1..).unwrap_or_default();
                }
                *skip_longer = true;
                return false;
            }
            b'?' => s = s.get(1..).unwrap_or_default(),
            b'[' => {
                let (matched, rest) = match_class(p.get(1..).unwrap_or_default(), sc, nocase);
                if !matched {
                    return false;
                }
                // `rest` starts at the closing bracket (or the last byte if unterminated).
                p = rest;
                s = s.get(1..).unwrap_or_default();
            }
            _ => {
                let literal = if pc == b'\\' && p.len() >= 2 {
                    p = p.get(1..).unwrap_or_default();
                    p.first().copied().unwrap_or(pc)
                } else {
                    pc
                };
                if !eq(literal, sc, nocase) {
                    return false;
                }
                s = s.get(1..).unwrap_or_default();
            }
        }
        p = p.get(1..).unwrap_or_default();
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = p.get(1..).unwrap_or_default();
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

/// Match one byte against a class whose body starts at `p` (after `[`). Returns whether it
/// matched and the pattern positioned on the class's last byte, as Redis leaves it.
fn match_class(mut p: &[u8], c: u8, nocase: bool) -> (bool, &[u8]) {
    let negate = p.first() == Some(&b'^');
    if negate {
        p = p.get(1..).unwrap_or_default();
    }
    let mut matched = false;
    loop {
        match p {
            [b'\\', escaped, ..] => {
                p = p.get(1..).unwrap_or_default();
                // Redis compares an escaped class byte exactly, even when matching nocase.
                if *escaped == c {
                    matched = true;
                }
            }
            [b']', ..] => break,
            [] => {
                // Unterminated: Redis steps back so the outer loop's advance lands at the end.
                return (matched != negate, &[]);
            }
            [start, b'-', end, ..] => {
                // Redis compares C `char`s, which are signed: bytes >= 0x80 sort below 0.
                let (mut lo, mut hi) = (signed(*start), signed(*end));
                if lo > hi {
                    std::mem::swap(&mut lo, &mut hi);
                }
                let mut ch = signed(c);
                if nocase {
                    lo += ascii_lower_delta(lo);
                    hi += ascii_lower_delta(hi);
                    ch += ascii_lower_delta(ch);
                }
                p = p.get(2..).unwrap_or_default();
                if ch >= lo && ch <= hi {
                    matched = true;
                }
            }
            [lit, ..] => {
                if eq(*lit, c, nocase) {
                    matched = true;
                }
            }
        }
        if p.len() <= 1 {
            // Ran off the end inside the class.
            return (matched != negate, &[]);
        }
        p = p.get(1..).unwrap_or_default();
    }
    (matched != negate, p)
}

/// A byte as C's signed `char`.
fn signed(c: u8) -> i32 {
    i32::from(c as i8)
}

/// What C's `tolower` adds to a `char` value: 32 for `A`..=`Z`, else 0.
fn ascii_lower_delta(c: i32) -> i32 {
    if (65..=90).contains(&c) {
        32
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn redis_glob_cases() {
        // Redis's stringmatchlen never matches an empty string with `*` (its loop needs a
        // byte); KEYS and SCAN special-case the lone `*`, so the empty key still shows there.
        assert!(!m("*", ""));
        assert!(!m("**", ""));
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("[\\]]", "]"));
        assert!(m("session:*", "session:abc"));
        assert!(!m("session:*", "sess"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*a", "aaa"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(matches(b"HELLO", b"hello", true));
    }

    /// Found by the glob fuzz target (fuzz/regressions/glob): Redis compares class ranges
    /// as signed chars, and escaped class bytes case-sensitively.
    #[test]
    fn class_ranges_with_high_bytes_and_escapes_match_redis() {
        assert!(!matches(b"[\x91-a]", b"Q", true));
        assert!(!matches(b"[\x91-a]", b"b", false));
        assert!(matches(b"[\x91-a]", b"A", false));
        assert!(matches(b"[\x91-a]", b"\x91", false));
        assert!(matches(b"[\x80-\xff]", b"\x90", false));
        assert!(!matches(b"[\\A]", b"a", true));
        assert!(matches(b"[\\A]", b"A", true));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let pattern = "a*".repeat(30) + "b";
        let subject = "a".repeat(60);
        assert!(!m(&pattern, &subject));
    }
}
