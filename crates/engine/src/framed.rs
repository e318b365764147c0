//! Entries back to back in one buffer, each `[length][string][N fixed bytes][length]`, as the
//! packed lists (N = 0) and packed sorted sets (N = 8, the score) lay them out.
//!
//! The length byte at the end lets a walk step backwards (RPOP, ZREVRANGE), as a listpack's
//! back-length does. A buffer cut short (which the packed layouts never write) reads as no
//! entry rather than panicking.

/// What an entry with `N` fixed bytes adds to its string: a length byte at each end.
pub(crate) const fn overhead<const N: usize>() -> usize {
    N + 2
}

/// The entry that starts at `at`: its string, its fixed bytes, and where it ends.
pub(crate) fn entry_at<const N: usize>(bytes: &[u8], at: usize) -> Option<(&[u8], [u8; N], usize)> {
    let len = usize::from(*bytes.get(at)?);
    let string = bytes.get(at + 1..at + 1 + len)?;
    let fixed = bytes.get(at + 1 + len..at + 1 + len + N)?.try_into().ok()?;
    Some((string, fixed, at + len + overhead::<N>()))
}

/// Where the entry that ends at `end` starts.
pub(crate) fn entry_before<const N: usize>(bytes: &[u8], end: usize) -> Option<usize> {
    let len = usize::from(*bytes.get(end.checked_sub(1)?)?);
    end.checked_sub(len + overhead::<N>())
}

/// One entry's bytes; `None` if the string is too long for a length byte.
pub(crate) fn encode<const N: usize>(string: &[u8], fixed: [u8; N]) -> Option<impl Iterator<Item = u8> + '_> {
    let len = u8::try_from(string.len()).ok()?;
    Some(std::iter::once(len).chain(string.iter().copied()).chain(fixed).chain(std::iter::once(len)))
}
