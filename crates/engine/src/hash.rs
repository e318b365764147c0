//! The hash value: its pairs packed in one buffer while small, a hash table beyond (as Redis
//! keeps a listpack, then a dict).
//!
//! Most hashes are small (a user's profile, a session's fields, a rate limiter's counters),
//! and for them a table is mostly overhead: hashbrown keeps at least 4 buckets and an eighth
//! free, each a field and a value, plus a control byte each. The packed buffer holds what is
//! stored and a length byte per string, and a lookup steps over at most [`PAIRS_MAX`] pairs,
//! comparing a string only where the length matches. In the table, fields and values are
//! [`KeyBytes`]: up to 22 bytes inside the pair, longer ones in a heap block of their own size.
//! (The pairs were a vector of `KeyBytes` pairs before: 48 bytes a pair however short the
//! strings, 2.2x Redis's memory for a hash of ten short fields.)
//!
//! Only the layout changes at [`PAIRS_MAX`] or at a string over [`PACKED_STRING_MAX`]; what
//! `OBJECT ENCODING` reports follows Redis's own thresholds ([`crate::value::Value::encoding`]).

use std::borrow::Borrow;

use crate::small_bytes::KeyBytes;
use crate::value::HashMap;

/// Pairs a hash holds before it becomes a table (and stays one). A lookup scans the pairs:
/// with 128 of them HGET and HSET took 20–40% more server CPU than with the table
/// (`redis-benchmark -P 16`, random fields of one hash), and packed still 11–22% more for
/// HGET over 100 fields; 32 keeps the scan short.
pub const PAIRS_MAX: usize = 32;

/// The longest field or value the packed layout holds (its length is one byte).
pub const PACKED_STRING_MAX: usize = u8::MAX as usize;

/// What a pair costs in the table beside the strings' own heap blocks: the pair, its control
/// byte, and the eighth of buckets kept free.
const PAIR_BYTES: usize = 2 * std::mem::size_of::<KeyBytes>();
const TABLE_PAIR_BYTES: usize = PAIR_BYTES + PAIR_BYTES / 8 + 1;

#[derive(Clone, Debug, Default)]
pub struct Hash {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Packed(Packed),
    Table(HashMap<KeyBytes, KeyBytes>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Packed(Packed::default())
    }
}

/// Pairs back to back: a length byte and the field, a length byte and the value.
#[derive(Clone, Debug, Default)]
struct Packed {
    bytes: Vec<u8>,
    pairs: usize,
}

/// Where a pair lies in [`Packed::bytes`]: from its field's length byte to its value's end.
struct Slot<'a> {
    start: usize,
    value_start: usize,
    end: usize,
    field: &'a [u8],
    value: &'a [u8],
}

impl Packed {
    fn fits(field: &[u8], value: &[u8]) -> bool {
        field.len() <= PACKED_STRING_MAX && value.len() <= PACKED_STRING_MAX
    }

    fn slots(&self) -> Slots<'_> {
        Slots { bytes: &self.bytes, at: 0 }
    }

    fn find(&self, field: &[u8]) -> Option<Slot<'_>> {
        self.slots().find(|slot| slot.field == field)
    }

    /// [`Hash::insert`] in place; `None` when the pair does not fit (a string too long, or
    /// one pair too many).
    fn insert(&mut self, field: &[u8], value: &[u8]) -> Option<bool> {
        if !Packed::fits(field, value) {
            return None;
        }
        match self.find(field).map(|slot| slot.value_start..slot.end) {
            Some(old_value) => {
                let new_value = std::iter::once(value.len() as u8).chain(value.iter().copied());
                self.bytes.splice(old_value, new_value);
                Some(false)
            }
            None if self.pairs < PAIRS_MAX => {
                // One pair's room at a time: a small hash is built once and read often.
                self.bytes.reserve_exact(2 + field.len() + value.len());
                for string in [field, value] {
                    self.bytes.push(string.len() as u8);
                    self.bytes.extend_from_slice(string);
                }
                self.pairs += 1;
                Some(true)
            }
            None => None,
        }
    }

    fn to_table(&self) -> HashMap<KeyBytes, KeyBytes> {
        let mut table = HashMap::with_capacity_and_hasher(self.pairs + 1, Default::default());
        table.extend(self.slots().map(|slot| (KeyBytes::from_slice(slot.field), KeyBytes::from_slice(slot.value))));
        table
    }
}

/// [`Hash::insert`] into the table layout.
fn table_insert(table: &mut HashMap<KeyBytes, KeyBytes>, field: &[u8], value: &[u8]) -> bool {
    let value = KeyBytes::from_slice(value);
    match table.get_mut(field) {
        Some(stored) => {
            *stored = value;
            false
        }
        None => table.insert(KeyBytes::from_slice(field), value).is_none(),
    }
}

/// The pairs of a packed buffer, in order. A buffer cut short (which [`Packed`] never
/// writes) ends the iteration rather than panicking.
struct Slots<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Slots<'a> {
    /// The string at `at` and where it ends.
    fn string(&self, at: usize) -> Option<(&'a [u8], usize)> {
        let len = usize::from(*self.bytes.get(at)?);
        let end = at + 1 + len;
        Some((self.bytes.get(at + 1..end)?, end))
    }
}

impl<'a> Iterator for Slots<'a> {
    type Item = Slot<'a>;

    fn next(&mut self) -> Option<Slot<'a>> {
        let start = self.at;
        let (field, value_start) = self.string(start)?;
        let (value, end) = self.string(value_start)?;
        self.at = end;
        Some(Slot { start, value_start, end, field, value })
    }
}

impl Hash {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(packed) => packed.pairs,
            Repr::Table(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(packed) => packed.find(field).map(|slot| slot.value),
            Repr::Table(table) => table.get(field).map(KeyBytes::as_slice),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value`; true if the field is new. A pair the packed layout cannot
    /// take makes the hash a table, for good.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(packed) => match packed.insert(field, value) {
                Some(added) => added,
                None => {
                    let mut table = packed.to_table();
                    let added = table_insert(&mut table, field, value);
                    self.repr = Repr::Table(table);
                    added
                }
            },
            Repr::Table(table) => table_insert(table, field, value),
        }
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(packed) => match packed.find(field).map(|slot| slot.start..slot.end) {
                Some(pair) => {
                    packed.bytes.drain(pair);
                    packed.pairs -= 1;
                    true
                }
                None => false,
            },
            Repr::Table(table) => table.remove(field).is_some(),
        }
    }

    /// Fields and values, in no particular order.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Packed(packed) => Iter(IterRepr::Packed(packed.slots(), packed.pairs)),
            Repr::Table(table) => Iter(IterRepr::Table(table.iter())),
        }
    }

    /// Heap bytes of one pair, for `MEMORY USAGE`.
    pub fn pair_bytes(&self, field: &[u8], value: &[u8]) -> usize {
        match self.repr {
            Repr::Packed(_) => 2 + field.len() + value.len(),
            Repr::Table(_) => TABLE_PAIR_BYTES + KeyBytes::heap_bytes(field.len()) + KeyBytes::heap_bytes(value.len()),
        }
    }
}

impl<F: Borrow<[u8]>, V: Borrow<[u8]>> FromIterator<(F, V)> for Hash {
    fn from_iter<I: IntoIterator<Item = (F, V)>>(pairs: I) -> Self {
        let mut hash = Hash::default();
        for (field, value) in pairs {
            hash.insert(field.borrow(), value.borrow());
        }
        hash
    }
}

/// Equal content, whatever the layout or order.
impl PartialEq for Hash {
    fn eq(&self, other: &Hash) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

/// See [`Hash::iter`].
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    /// The pairs and how many are left.
    Packed(Slots<'a>, usize),
    Table(hashbrown::hash_map::Iter<'a, KeyBytes, KeyBytes>),
}

impl std::fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").field("remaining", &self.size_hint().0).finish()
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Packed(slots, left) => {
                let slot = slots.next()?;
                *left = left.saturating_sub(1);
                Some((slot.field, slot.value))
            }
            IterRepr::Table(table) => table.next().map(|(field, value)| (field.as_slice(), value.as_slice())),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Packed(_, left) => (*left, Some(*left)),
            IterRepr::Table(table) => table.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(i: usize) -> Vec<u8> {
        format!("field:{i}").into_bytes()
    }

    #[test]
    fn becomes_a_table_past_pairs_max_and_keeps_every_field() {
        let mut hash = Hash::default();
        for i in 0..PAIRS_MAX {
            assert!(hash.insert(&field(i), b"v"));
        }
        assert!(matches!(hash.repr, Repr::Packed(_)));
        assert!(hash.insert(&field(PAIRS_MAX), &[b'x'; 100]));
        assert!(matches!(hash.repr, Repr::Table(_)));
        assert_eq!(hash.len(), PAIRS_MAX + 1);
        for i in 0..PAIRS_MAX {
            assert_eq!(hash.get(&field(i)), Some(&b"v"[..]));
        }
        assert_eq!(hash.get(&field(PAIRS_MAX)), Some(&[b'x'; 100][..]));
        assert_eq!(hash.iter().count(), PAIRS_MAX + 1);
    }

    #[test]
    fn insert_overwrites_and_remove_removes_in_both_layouts() {
        for size in [3, PAIRS_MAX + 3] {
            let mut hash: Hash = (0..size).map(|i| (field(i), b"old".to_vec())).collect();
            assert!(!hash.insert(&field(1), b"a value longer than twenty-two bytes"));
            assert_eq!(hash.get(&field(1)), Some(&b"a value longer than twenty-two bytes"[..]));
            assert!(hash.remove(&field(0)));
            assert!(!hash.remove(&field(0)));
            assert!(!hash.contains(&field(0)));
            assert_eq!(hash.len(), size - 1);
            assert_eq!(hash.get(b"missing"), None);
        }
    }

    #[test]
    fn packed_pairs_are_rewritten_in_place_and_keep_their_order() {
        let mut hash = Hash::default();
        for (f, v) in [("a", "1"), ("bb", "22"), ("ccc", "333")] {
            assert!(hash.insert(f.as_bytes(), v.as_bytes()));
        }
        assert!(!hash.insert(b"bb", b"a longer value than before"));
        assert!(!hash.insert(b"a", b""));
        assert!(hash.remove(b"ccc"));
        assert!(hash.insert(b"", b"empty field"));
        let pairs: Vec<(&[u8], &[u8])> = hash.iter().collect();
        let expected: [(&[u8], &[u8]); 3] =
            [(b"a", b""), (b"bb", b"a longer value than before"), (b"", b"empty field")];
        assert_eq!(pairs, expected);
        assert_eq!(hash.iter().size_hint(), (3, Some(3)));
        assert!(matches!(hash.repr, Repr::Packed(_)));
        // A string over a length byte's reach makes it a table, whether field or value.
        let long = [b'x'; PACKED_STRING_MAX + 1];
        let mut by_value = hash.clone();
        assert!(!by_value.insert(b"a", &long));
        assert!(matches!(by_value.repr, Repr::Table(_)));
        assert_eq!(by_value.get(b"a"), Some(&long[..]));
        let mut by_field = hash.clone();
        assert!(by_field.insert(&long, b"v"));
        assert!(matches!(by_field.repr, Repr::Table(_)));
        assert_eq!((by_field.len(), by_field.get(b"bb")), (4, Some(&b"a longer value than before"[..])));
        let mut longest = hash;
        assert!(longest.insert(&long[..PACKED_STRING_MAX], &long[..PACKED_STRING_MAX]));
        assert!(matches!(longest.repr, Repr::Packed(_)));
        assert_eq!(longest.get(&long[..PACKED_STRING_MAX]), Some(&long[..PACKED_STRING_MAX]));
    }

    #[test]
    fn equality_ignores_layout_and_order() {
        let small: Hash = [("a", "1"), ("b", "2")].into_iter().map(|(f, v)| (f.as_bytes(), v.as_bytes())).collect();
        let reversed: Hash = [("b", "2"), ("a", "1")].into_iter().map(|(f, v)| (f.as_bytes(), v.as_bytes())).collect();
        assert_eq!(small, reversed);
        let mut big: Hash = (0..PAIRS_MAX + 1).map(|i| (field(i), b"v".to_vec())).collect();
        for i in 0..PAIRS_MAX + 1 {
            big.remove(&field(i));
        }
        big.insert(b"a", b"1");
        big.insert(b"b", b"2");
        assert_eq!(big, small);
        big.insert(b"b", b"3");
        assert_ne!(big, small);
    }
}
