//! Byte strings held inside their own few bytes when short: [`SmallBytes`] for string values,
//! [`KeyBytes`] for keys (and a hash's fields and values, see [`crate::hash`]).
//!
//! Every key costs one [`crate::keyspace::Entry`] in its shard's slab, and the entry holds the
//! key and, for a string, the value. As two `Bytes` (32 bytes each, plus a heap block each) a
//! key of 12 bytes with an 8-byte value cost about 130 bytes, against Redis's ~140 with all
//! its per-key objects. Short keys and values (counters, flags, ids, small tokens) are the
//! common case, so they live in the entry itself and cost nothing more.
//!
//! The two differ in what a long string becomes. A value is replied with on every GET, so a
//! long one keeps a `Bytes` (behind a box, to stay 16 bytes) that a reply to a value of
//! [`SHARE_FROM`] bytes or more references instead of copying ([`read_out`]). A key is
//! compared on every lookup and never handed out shared, so a long one is a plain boxed
//! slice, one pointer away; and a key gets 24 bytes, room for 22 inline, so that typical keys
//! (`user:1234567`, `key:000000012345`) need no pointer at all.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::{Bytes, BytesMut};

/// The longest value stored inline: 16 bytes less the variant tag and the length.
const INLINE_CAPACITY: usize = 14;
/// The longest key stored inline: 24 bytes less the variant tag and the length.
pub(crate) const KEY_INLINE_CAPACITY: usize = 22;

/// A string value: inline up to `INLINE_CAPACITY` (14) bytes, else a shared `Bytes`.
#[derive(Clone)]
pub enum SmallBytes {
    Inline { len: u8, bytes: [u8; INLINE_CAPACITY] },
    Shared(Box<Bytes>),
}

impl SmallBytes {
    pub fn from_slice(data: &[u8]) -> SmallBytes {
        match inline(data) {
            Some((len, bytes)) => SmallBytes::Inline { len, bytes },
            None => SmallBytes::Shared(Box::new(Bytes::copy_from_slice(data))),
        }
    }

    /// Takes `data` without copying it when it is too long to inline. The caller must own
    /// `data` outright: a slice of a larger buffer (a client's input) would keep all of that
    /// buffer alive; such data goes through [`SmallBytes::from_slice`].
    pub fn from_owned(data: Bytes) -> SmallBytes {
        match inline(&data) {
            Some((len, bytes)) => SmallBytes::Inline { len, bytes },
            None => SmallBytes::Shared(Box::new(data)),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, bytes } => prefix(bytes, *len),
            SmallBytes::Shared(data) => data,
        }
    }

    pub fn is_inline(&self) -> bool {
        matches!(self, SmallBytes::Inline { .. })
    }

    /// Takes `data` in place of this string's bytes if its heap buffer is its own (no reply
    /// or computation holds it) and fits `data` with at most a quarter of `data`'s length to
    /// spare (MEMORY USAGE counts the length): an overwritten value then costs no allocation
    /// and no free, of the buffer or of its box. Returns whether it did; the string is
    /// unchanged otherwise.
    pub fn overwrite(&mut self, data: &[u8]) -> bool {
        let SmallBytes::Shared(stored) = self else { return false };
        if data.len() <= INLINE_CAPACITY {
            return false;
        }
        let (reused, bytes) = match std::mem::take(&mut **stored).try_into_mut() {
            Ok(mut buf) if buf.capacity() >= data.len() && buf.capacity() - data.len() <= data.len() / 4 => {
                buf.clear();
                buf.extend_from_slice(data);
                (true, buf.freeze())
            }
            Ok(buf) => (false, buf.freeze()),
            Err(shared) => (false, shared),
        };
        **stored = bytes;
        reused
    }

    /// Changes the string with `edit`, in place where its heap buffer is its own (no reply or
    /// snapshot holds it): APPEND, SETRANGE, SETBIT and BITFIELD then cost what they change,
    /// not the string's length, as in Redis, and a string grown by appends grows its buffer
    /// geometrically. An inline or a shared string is copied into a new buffer first.
    pub fn edit(&mut self, edit: impl FnOnce(&mut BytesMut)) {
        let mut buf = match self {
            SmallBytes::Shared(stored) => {
                std::mem::take(&mut **stored).try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]))
            }
            SmallBytes::Inline { .. } => BytesMut::from(self.as_slice()),
        };
        edit(&mut buf);
        match self {
            // The box is kept: an edit allocates nothing when the buffer has room.
            SmallBytes::Shared(stored) if buf.len() > INLINE_CAPACITY => **stored = buf.freeze(),
            _ => *self = SmallBytes::from_owned(buf.freeze()),
        }
    }

    /// The string as `Bytes`: a copy of an inline one, and of a heap one as [`read_out`] says.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            SmallBytes::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            SmallBytes::Shared(data) => read_out(data),
        }
    }
}

/// A key: inline up to `KEY_INLINE_CAPACITY` (22) bytes, else a boxed slice.
#[derive(Clone)]
pub enum KeyBytes {
    Inline { len: u8, bytes: [u8; KEY_INLINE_CAPACITY] },
    Boxed(Box<[u8]>),
}

impl KeyBytes {
    pub fn from_slice(data: &[u8]) -> KeyBytes {
        match inline(data) {
            Some((len, bytes)) => KeyBytes::Inline { len, bytes },
            None => KeyBytes::Boxed(data.into()),
        }
    }

    /// Takes `data` without copying it when it is too long to inline (its spare capacity,
    /// if any, is given back).
    pub fn from_vec(data: Vec<u8>) -> KeyBytes {
        match inline(&data) {
            Some((len, bytes)) => KeyBytes::Inline { len, bytes },
            None => KeyBytes::Boxed(data.into_boxed_slice()),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            KeyBytes::Inline { len, bytes } => prefix(bytes, *len),
            KeyBytes::Boxed(data) => data,
        }
    }

    /// A copy, for replies (SCAN, KEYS, RANDOMKEY) and the log.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_slice())
    }

    /// Handed out for good (a popped list element): a long one's block becomes the `Bytes`.
    pub fn into_bytes(self) -> Bytes {
        match self {
            KeyBytes::Inline { .. } => self.to_bytes(),
            KeyBytes::Boxed(data) => Bytes::from(data),
        }
    }

    /// Bytes a string of `len` bytes holds outside its 24: a long one's boxed slice.
    pub fn heap_bytes(len: usize) -> usize {
        if len > KEY_INLINE_CAPACITY {
            len
        } else {
            0
        }
    }
}

/// Stored bytes handed out (in a reply, or to a computation that outlives the command):
/// copied, unless [`SHARE_FROM`] bytes or longer, which are shared.
///
/// A clone of a stored `Bytes` touches its shared header, a separate allocation that is cold
/// in a large keyspace, and makes it allocate one on the first read that it keeps for good
/// (24 bytes). A reply shorter than the connection's by-reference threshold is copied into
/// the connection's buffer anyway, so below it a reference saves one allocation and one copy
/// of bytes that are hot by then, and costs the header's cache miss and its bytes. Measured
/// with 1 KiB values (100,000 keys, redis-benchmark GET, 50 clients): shared, `used_memory`
/// grew 24 bytes a key once every key had been read; copied, it did not. Server CPU per GET
/// did not change beyond the noise (16 alternations: 13.3 against 12.5 µs at pipeline 1,
/// 2.86 against 2.85 µs at pipeline 16). Encoding the value into the connection's buffer
/// under the shard's lock would save the copy here too; replies leave the engine as values.
pub fn read_out(stored: &Bytes) -> Bytes {
    if stored.len() < SHARE_FROM {
        Bytes::copy_from_slice(stored)
    } else {
        stored.clone()
    }
}

/// See [`read_out`]: the length from which a reply keeps a value by reference
/// ([`staykv_resp::SHARED_VALUE_MIN`], Redis's reply chunk size).
pub const SHARE_FROM: usize = staykv_resp::SHARED_VALUE_MIN;

/// `data` as an inline array of `N`, if it fits.
fn inline<const N: usize>(data: &[u8]) -> Option<(u8, [u8; N])> {
    let len = u8::try_from(data.len()).ok().filter(|&len| usize::from(len) <= N)?;
    let mut bytes = [0; N];
    bytes.get_mut(..data.len())?.copy_from_slice(data);
    Some((len, bytes))
}

fn prefix(bytes: &[u8], len: u8) -> &[u8] {
    bytes.get(..usize::from(len)).unwrap_or_default()
}

/// What both types are as byte strings: a slice, compared and printed by content.
macro_rules! byte_string_traits {
    ($name:ident) => {
        impl Deref for $name {
            type Target = [u8];
            fn deref(&self) -> &[u8] {
                self.as_slice()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &$name) -> bool {
                self.as_slice() == other.as_slice()
            }
        }

        impl Eq for $name {}

        /// Hashed as the slice, so that a table of them is searched with a `&[u8]`.
        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_slice().hash(state);
            }
        }

        impl Borrow<[u8]> for $name {
            fn borrow(&self) -> &[u8] {
                self.as_slice()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_slice()), f)
            }
        }
    };
}

byte_string_traits!(SmallBytes);
byte_string_traits!(KeyBytes);

const _: () = assert!(std::mem::size_of::<SmallBytes>() == 16);
const _: () = assert!(std::mem::size_of::<KeyBytes>() == 24);

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| i as u8).collect()
    }

    #[test]
    fn overwrite_reuses_a_buffer_only_it_holds_and_only_of_a_fitting_size() {
        let old = sample(1024);
        let new: Vec<u8> = sample(1024).into_iter().rev().collect();
        let mut value = SmallBytes::from_slice(&old);
        let before = value.as_slice().as_ptr();
        assert!(value.overwrite(&new));
        assert_eq!(value.as_slice(), &new[..]);
        assert_eq!(value.as_slice().as_ptr(), before, "the buffer was not reused");
        // Whatever holds the buffer (a reply to a value of `SHARE_FROM` bytes or more) keeps
        // what it read: the buffer is left alone.
        let held = match &value {
            SmallBytes::Shared(stored) => Some(Bytes::clone(stored)),
            SmallBytes::Inline { .. } => None,
        };
        assert!(!value.overwrite(&old));
        assert_eq!((held.as_deref(), value.as_slice()), (Some(&new[..]), &new[..]));
        drop(held);
        // A quarter of the new length or less to spare: reused. More, or short enough to
        // inline: not.
        assert!(value.overwrite(&sample(900)));
        assert_eq!(value.as_slice(), &sample(900)[..]);
        for too_small in [sample(700), sample(INLINE_CAPACITY)] {
            assert!(!value.overwrite(&too_small));
            assert_eq!(value.as_slice(), &sample(900)[..]);
        }
        // Larger than the buffer: not reused.
        assert!(!value.overwrite(&sample(2048)));
        let mut inline = SmallBytes::from_slice(b"short");
        assert!(!inline.overwrite(&old));
        assert_eq!(inline.as_slice(), b"short");
    }

    #[test]
    fn short_values_are_inline_and_long_ones_shared() {
        for len in [0, 1, INLINE_CAPACITY - 1, INLINE_CAPACITY, INLINE_CAPACITY + 1, 1024] {
            let data = sample(len);
            let small = SmallBytes::from_slice(&data);
            assert_eq!(small.as_slice(), &data[..]);
            assert_eq!(small.to_bytes(), &data[..]);
            assert_eq!(SmallBytes::from_owned(Bytes::from(data.clone())), small);
            assert_eq!(matches!(small, SmallBytes::Inline { .. }), len <= INLINE_CAPACITY, "length {len}");
        }
    }

    #[test]
    fn long_values_are_shared_and_shorter_ones_copied() {
        // A session's 1 KiB value is copied: the reply is copied into the connection's
        // buffer anyway, and a shared one would grow a header for good.
        let cases = [(SHARE_FROM, true), (SHARE_FROM - 1, false), (1024, false), (INLINE_CAPACITY + 1, false)];
        for (len, shared) in cases {
            let data = Bytes::from(vec![7u8; len]);
            let small = SmallBytes::from_owned(data.clone());
            assert_eq!(small.to_bytes(), data);
            assert_eq!(small.to_bytes().as_ptr() == data.as_ptr(), shared, "length {len}");
        }
    }

    #[test]
    fn short_keys_are_inline_and_long_ones_boxed() {
        for len in [0, 1, KEY_INLINE_CAPACITY, KEY_INLINE_CAPACITY + 1, 48, 300] {
            let data = sample(len);
            let key = KeyBytes::from_slice(&data);
            assert_eq!(&key[..], &data[..]);
            assert_eq!(KeyBytes::from_vec(data.clone()), key);
            assert_eq!(key.to_bytes(), &data[..]);
            assert_eq!(matches!(key, KeyBytes::Inline { .. }), len <= KEY_INLINE_CAPACITY, "length {len}");
        }
    }

    /// An edit changes the stored buffer where it is once nothing else holds it, copies it
    /// first while a reply does (the reply keeps what it was given), and appends reallocate
    /// only as the buffer doubles.
    #[test]
    fn edits_are_in_place_unless_shared() {
        let mut value = SmallBytes::from_slice(&[b'a'; SHARE_FROM]);
        let reply = value.to_bytes();
        value.edit(|buf| buf[0] = b'z');
        assert_eq!((reply[0], value.as_slice()[0]), (b'a', b'z'), "a held reply is not changed");
        drop(reply);
        let at = value.as_slice().as_ptr();
        value.edit(|buf| buf[1] = b'y');
        assert_eq!(value.as_slice().as_ptr(), at, "unshared: edited where it is");
        let mut moves = 0;
        for _ in 0..1_000 {
            let at = value.as_slice().as_ptr();
            value.edit(|buf| buf.extend_from_slice(&[b'x'; 1024]));
            moves += usize::from(value.as_slice().as_ptr() != at);
        }
        assert_eq!(value.as_slice().len(), SHARE_FROM + 1_024_000);
        assert!(moves < 16, "{moves} reallocations for 1,000 appends");
        let mut short = SmallBytes::from_slice(b"ab");
        short.edit(|buf| buf.extend_from_slice(&sample(40)));
        assert!(!short.is_inline() && short.as_slice().len() == 42 && short.as_slice().starts_with(b"ab"));
    }
}
