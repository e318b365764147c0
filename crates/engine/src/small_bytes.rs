//! `SmallBytes`: a byte string held inside its own 16 bytes when it is short, and behind a
//! shared [`Bytes`] otherwise.
//!
//! Every key costs one [`crate::keyspace::Entry`] in its shard's slab, and the entry holds the
//! key and, for a string, the value. As two `Bytes` (32 bytes each, plus a heap block each) a
//! key of 12 bytes with an 8-byte value cost about 130 bytes, against Redis's ~140 with all
//! its per-key objects. Short keys and values (counters, flags, ids, small tokens) are the
//! common case, so up to [`INLINE_CAPACITY`] bytes live in the entry itself and cost nothing
//! more; a longer string keeps its `Bytes` behind a box, so that replying with it stays a
//! reference-count increment instead of a copy.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// The longest string stored inline: 16 bytes less the variant tag and the length.
pub const INLINE_CAPACITY: usize = 14;

#[derive(Clone)]
pub enum SmallBytes {
    Inline { len: u8, bytes: [u8; INLINE_CAPACITY] },
    Shared(Box<Bytes>),
}

impl SmallBytes {
    pub fn from_slice(data: &[u8]) -> SmallBytes {
        match inline(data) {
            Some(small) => small,
            None => SmallBytes::Shared(Box::new(Bytes::copy_from_slice(data))),
        }
    }

    /// Takes `data` without copying it when it is too long to inline. The caller must own
    /// `data` outright: a slice of a larger buffer (a client's input) would keep all of that
    /// buffer alive; such data goes through [`SmallBytes::from_slice`].
    pub fn from_owned(data: Bytes) -> SmallBytes {
        match inline(&data) {
            Some(small) => small,
            None => SmallBytes::Shared(Box::new(data)),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            SmallBytes::Shared(data) => data,
        }
    }

    /// The string as `Bytes`: a reference-count increment for a shared one, a copy of at most
    /// [`INLINE_CAPACITY`] bytes for an inline one.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            SmallBytes::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            SmallBytes::Shared(data) => Bytes::clone(data),
        }
    }

    pub fn into_bytes(self) -> Bytes {
        match self {
            SmallBytes::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            SmallBytes::Shared(data) => *data,
        }
    }
}

fn inline(data: &[u8]) -> Option<SmallBytes> {
    let len = u8::try_from(data.len()).ok().filter(|&len| usize::from(len) <= INLINE_CAPACITY)?;
    let mut bytes = [0; INLINE_CAPACITY];
    bytes.get_mut(..data.len())?.copy_from_slice(data);
    Some(SmallBytes::Inline { len, bytes })
}

impl Deref for SmallBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SmallBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &SmallBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SmallBytes {}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_slice()), f)
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(data: &[u8]) -> SmallBytes {
        SmallBytes::from_slice(data)
    }
}

const _: () = assert!(std::mem::size_of::<SmallBytes>() == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_inline_and_long_ones_shared() {
        for len in [0, 1, INLINE_CAPACITY - 1, INLINE_CAPACITY, INLINE_CAPACITY + 1, 1024] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let small = SmallBytes::from_slice(&data);
            assert_eq!(small.as_slice(), &data[..]);
            assert_eq!(small.to_bytes(), &data[..]);
            assert_eq!(SmallBytes::from_owned(Bytes::from(data.clone())), small);
            assert_eq!(small.clone().into_bytes(), &data[..]);
            assert_eq!(matches!(small, SmallBytes::Inline { .. }), len <= INLINE_CAPACITY, "length {len}");
        }
    }

    #[test]
    fn a_shared_string_is_not_copied() {
        let data = Bytes::from(vec![7u8; 100]);
        let small = SmallBytes::from_owned(data.clone());
        assert_eq!(small.to_bytes().as_ptr(), data.as_ptr());
    }
}
