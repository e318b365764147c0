//! The hash value: a list of pairs while small, a hash table beyond (as Redis keeps a
//! listpack, then a dict).
//!
//! Most hashes are small (a user's profile, a session's fields, a rate limiter's counters),
//! and for them a table is mostly overhead: hashbrown keeps at least 4 buckets and an eighth
//! free, each a field and a value, plus a control byte each. A vector of pairs holds exactly
//! what is stored, and a lookup compares at most [`PAIRS_MAX`] short strings. Fields and
//! values are [`KeyBytes`]: up to 22 bytes inside the pair, longer ones in a heap block of
//! their own size.
//!
//! Only the layout changes at [`PAIRS_MAX`]; what `OBJECT ENCODING` reports follows Redis's
//! own thresholds ([`crate::value::Value::encoding`]).

use std::borrow::Borrow;

use crate::small_bytes::KeyBytes;
use crate::value::HashMap;

/// Pairs a hash holds before it becomes a table (and stays one). A lookup scans the pairs:
/// with 128 of them HGET and HSET took 20–40% more server CPU than with the table
/// (`redis-benchmark -P 16`, random fields of one hash); 32 keeps the scan short.
pub const PAIRS_MAX: usize = 32;

/// What a pair costs beside the strings' own heap blocks, in each layout (hashbrown: the
/// pair, its control byte, and the eighth of buckets kept free).
const PAIR_BYTES: usize = 2 * std::mem::size_of::<KeyBytes>();
const TABLE_PAIR_BYTES: usize = PAIR_BYTES + PAIR_BYTES / 8 + 1;

#[derive(Clone, Debug, Default)]
pub struct Hash {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Pairs(Vec<(KeyBytes, KeyBytes)>),
    Table(HashMap<KeyBytes, KeyBytes>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Pairs(Vec::new())
    }
}

impl Hash {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pairs(pairs) => pairs.len(),
            Repr::Table(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Pairs(pairs) => pairs.iter().find(|(f, _)| f.as_slice() == field).map(|(_, v)| v.as_slice()),
            Repr::Table(table) => table.get(field).map(KeyBytes::as_slice),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value`; true if the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        let value = KeyBytes::from_slice(value);
        match &mut self.repr {
            Repr::Pairs(pairs) => {
                if let Some((_, stored)) = pairs.iter_mut().find(|(f, _)| f.as_slice() == field) {
                    *stored = value;
                    return false;
                }
                if pairs.len() < PAIRS_MAX {
                    // One more slot at a time: a small hash is built once and read often.
                    pairs.reserve_exact(1);
                    pairs.push((KeyBytes::from_slice(field), value));
                    return true;
                }
                let mut table = HashMap::with_capacity_and_hasher(pairs.len() + 1, Default::default());
                table.extend(pairs.drain(..));
                table.insert(KeyBytes::from_slice(field), value);
                self.repr = Repr::Table(table);
                true
            }
            Repr::Table(table) => match table.get_mut(field) {
                Some(stored) => {
                    *stored = value;
                    false
                }
                None => table.insert(KeyBytes::from_slice(field), value).is_none(),
            },
        }
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Pairs(pairs) => match pairs.iter().position(|(f, _)| f.as_slice() == field) {
                Some(at) => {
                    pairs.swap_remove(at);
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
            Repr::Pairs(pairs) => Iter::Pairs(pairs.iter()),
            Repr::Table(table) => Iter::Table(table.iter()),
        }
    }

    /// Heap bytes of one pair, for `MEMORY USAGE`.
    pub fn pair_bytes(&self, field: &[u8], value: &[u8]) -> usize {
        let layout = match self.repr {
            Repr::Pairs(_) => PAIR_BYTES,
            Repr::Table(_) => TABLE_PAIR_BYTES,
        };
        layout + KeyBytes::heap_bytes(field.len()) + KeyBytes::heap_bytes(value.len())
    }
}

impl<F: Borrow<[u8]>, V: Borrow<[u8]>> FromIterator<(F, V)> for Hash {
    fn from_iter<I: IntoIterator<Item = (F, V)>>(pairs: I) -> Self {
        let pairs = pairs.into_iter();
        let mut hash = Hash::default();
        if let Repr::Pairs(list) = &mut hash.repr {
            list.reserve_exact(pairs.size_hint().0.min(PAIRS_MAX));
        }
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
#[derive(Debug)]
pub enum Iter<'a> {
    Pairs(std::slice::Iter<'a, (KeyBytes, KeyBytes)>),
    Table(hashbrown::hash_map::Iter<'a, KeyBytes, KeyBytes>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (field, value) = match self {
            Iter::Pairs(pairs) => pairs.next().map(|(f, v)| (f, v))?,
            Iter::Table(table) => table.next()?,
        };
        Some((field.as_slice(), value.as_slice()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Pairs(pairs) => pairs.size_hint(),
            Iter::Table(table) => table.size_hint(),
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
        assert!(matches!(hash.repr, Repr::Pairs(_)));
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
