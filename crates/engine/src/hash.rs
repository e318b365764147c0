//! The hash value: its pairs packed in one buffer while Redis would keep a listpack, a hash
//! table beyond (as Redis keeps a listpack, then a dict).
//!
//! Most hashes are small (a user's profile, a session's fields, a rate limiter's counters),
//! and for them a table is mostly overhead: hashbrown keeps at least 4 buckets and an eighth
//! free, each a field and a value, plus a control byte each. The packed buffer holds what is
//! stored and a length byte per string. Up to [`INDEXED_FROM`] pairs a lookup steps over the
//! pairs, comparing a string only where the length matches; past it the buffer carries an
//! index, each pair's offset and a byte of its field's hash, so that a lookup compares only
//! the fields whose byte matches (stepping over a hundred pairs cost HGET 11–22% more server
//! CPU than the table). In the table, fields and values are [`KeyBytes`]: up to 22 bytes
//! inside the pair, longer ones in a heap block of their own size.
//!
//! The layout becomes the table, for good, at [`PAIRS_MAX`] pairs, at a string over
//! [`PACKED_STRING_MAX`] bytes, or at a buffer past [`PACKED_BYTES_MAX`]; what
//! `OBJECT ENCODING` reports follows Redis's own thresholds ([`crate::value::Value::encoding`]).

use std::borrow::Borrow;
use std::hash::BuildHasher;

use crate::byte_table::ByteTable;
use crate::small_bytes::KeyBytes;

/// Pairs a hash packs before it becomes a table (Redis 7.0's `hash-max-listpack-entries`).
pub const PAIRS_MAX: usize = 512;

/// Pairs a packed hash holds before it carries an index: up to here stepping over the pairs
/// is quick enough not to pay for one (3 bytes a pair, and a box of two vectors).
pub const INDEXED_FROM: usize = 32;

/// The longest field or value the packed layout holds (its length is one byte).
pub const PACKED_STRING_MAX: usize = u8::MAX as usize;

/// The largest packed buffer: the index keeps offsets in 16 bits.
pub const PACKED_BYTES_MAX: usize = u16::MAX as usize;

/// What a pair costs in the table beside the strings' own heap blocks: its slot and its
/// place in the index.
const TABLE_PAIR_BYTES: usize = 2 * std::mem::size_of::<KeyBytes>() + crate::byte_table::INDEX_BYTES_PER_ENTRY;

#[derive(Clone, Debug, Default)]
pub struct Hash {
    repr: Repr,
    /// The longest field or value ever set in it: what `OBJECT ENCODING` needs to know (a
    /// hash stays a hashtable once a long string has been in it), kept here because finding
    /// it in the pairs at every write cost HSET on a 100-field hash a fifth of its CPU.
    longest_set: usize,
}

#[derive(Clone, Debug)]
enum Repr {
    Packed(Packed),
    Table(ByteTable<(KeyBytes, KeyBytes)>),
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
    /// Past [`INDEXED_FROM`] pairs.
    index: Option<Box<Index>>,
}

/// Where each pair of a packed buffer starts, and a byte of its field's hash, in pair order.
#[derive(Clone, Debug, Default)]
struct Index {
    tags: Vec<u8>,
    starts: Vec<u16>,
}

/// A field's byte for the [`Index`]: a fixed hash, so that clones and rebuilt indexes agree.
fn tag_of(field: &[u8]) -> u8 {
    let hash = foldhash::fast::FixedState::with_seed(0x4a5e_1d3c).hash_one(field);
    (hash >> 56) as u8
}

impl Index {
    fn of(packed: &Packed) -> Index {
        let (tags, starts) = packed.slots().map(|slot| (tag_of(slot.field), start_u16(slot.start))).unzip();
        Index { tags, starts }
    }

    /// The pairs after `pair` moved by `delta` bytes.
    fn shift_after(&mut self, pair: usize, delta: isize) {
        for start in self.starts.iter_mut().skip(pair + 1) {
            *start = start_u16(usize::from(*start).saturating_add_signed(delta));
        }
    }
}

/// A pair's start as the index keeps it ([`Packed`] never grows past [`PACKED_BYTES_MAX`]).
fn start_u16(start: usize) -> u16 {
    u16::try_from(start).unwrap_or(u16::MAX)
}

/// Where a pair lies in [`Packed::bytes`]: from its field's length byte to its value's end.
struct Slot<'a> {
    /// Its number in pair order.
    pair: usize,
    start: usize,
    value_start: usize,
    end: usize,
    field: &'a [u8],
    value: &'a [u8],
}

impl Packed {
    fn fits(&self, field: &[u8], value: &[u8], added_bytes: usize) -> bool {
        field.len() <= PACKED_STRING_MAX
            && value.len() <= PACKED_STRING_MAX
            && self.bytes.len().saturating_add(added_bytes) <= PACKED_BYTES_MAX
    }

    fn slots(&self) -> Slots<'_> {
        Slots { bytes: &self.bytes, at: 0, pair: 0 }
    }

    fn find(&self, field: &[u8]) -> Option<Slot<'_>> {
        let Some(index) = &self.index else {
            return self.slots().find(|slot| slot.field == field);
        };
        memchr::memchr_iter(tag_of(field), &index.tags)
            .filter_map(|pair| Slots { bytes: &self.bytes, at: usize::from(*index.starts.get(pair)?), pair }.next())
            .find(|slot| slot.field == field)
    }

    /// [`Hash::insert`] in place; `None` when the pair does not fit (a string too long, the
    /// buffer too large, or one pair too many).
    fn insert(&mut self, field: &[u8], value: &[u8]) -> Option<bool> {
        let Some((pair, old_value)) = self.find(field).map(|slot| (slot.pair, slot.value_start..slot.end)) else {
            return self.push(field, value).then_some(true);
        };
        let delta = value.len() as isize + 1 - old_value.len() as isize;
        if !self.fits(field, value, delta.max(0).unsigned_abs()) {
            return None;
        }
        match self.bytes.get_mut(old_value.start + 1..old_value.end) {
            // The common rewrite (a counter, a timestamp): same length, nothing moves.
            Some(stored) if delta == 0 => stored.copy_from_slice(value),
            _ => {
                let new_value = std::iter::once(value.len() as u8).chain(value.iter().copied());
                self.bytes.splice(old_value, new_value);
                if let Some(index) = &mut self.index {
                    index.shift_after(pair, delta);
                }
            }
        }
        Some(false)
    }

    /// Appends a new pair; false if it does not fit.
    fn push(&mut self, field: &[u8], value: &[u8]) -> bool {
        let added = 2 + field.len() + value.len();
        if self.pairs >= PAIRS_MAX || !self.fits(field, value, added) {
            return false;
        }
        let start = self.bytes.len();
        // One pair's room at a time: a small hash is built once and read often.
        self.bytes.reserve_exact(added);
        for string in [field, value] {
            self.bytes.push(string.len() as u8);
            self.bytes.extend_from_slice(string);
        }
        self.pairs += 1;
        match &mut self.index {
            Some(index) => {
                index.tags.push(tag_of(field));
                index.starts.push(start_u16(start));
            }
            None if self.pairs > INDEXED_FROM => self.index = Some(Box::new(Index::of(self))),
            None => {}
        }
        true
    }

    /// Removes `field`; true if it was there.
    fn remove(&mut self, field: &[u8]) -> bool {
        let Some((pair, bytes)) = self.find(field).map(|slot| (slot.pair, slot.start..slot.end)) else {
            return false;
        };
        let len = bytes.len();
        self.bytes.drain(bytes);
        self.pairs -= 1;
        if let Some(index) = &mut self.index {
            index.shift_after(pair, -(len as isize));
            if pair < index.tags.len() {
                index.tags.remove(pair);
                index.starts.remove(pair);
            }
        }
        true
    }

    fn to_table(&self) -> ByteTable<(KeyBytes, KeyBytes)> {
        let mut table = ByteTable::with_capacity(self.pairs + 1);
        table.extend(self.slots().map(|slot| (KeyBytes::from_slice(slot.field), KeyBytes::from_slice(slot.value))));
        table
    }
}

/// [`Hash::insert`] into the table layout.
fn table_insert(table: &mut ByteTable<(KeyBytes, KeyBytes)>, field: &[u8], value: &[u8]) -> bool {
    let value = KeyBytes::from_slice(value);
    match table.get_mut(field) {
        Some((_, stored)) => {
            *stored = value;
            false
        }
        None => table.insert((KeyBytes::from_slice(field), value)),
    }
}

/// A table's pair as the byte strings it holds.
fn pair_slices((field, value): &(KeyBytes, KeyBytes)) -> (&[u8], &[u8]) {
    (field.as_slice(), value.as_slice())
}

/// The pairs of a packed buffer, in order. A buffer cut short (which [`Packed`] never
/// writes) ends the iteration rather than panicking.
struct Slots<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The number of the pair at `at`.
    pair: usize,
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
        self.pair += 1;
        Some(Slot { pair: self.pair - 1, start, value_start, end, field, value })
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
            Repr::Table(table) => table.get(field).map(|(_, value)| value.as_slice()),
        }
    }

    /// The longest field or value set since the hash was built, removed or overwritten
    /// since or not.
    pub fn longest_set(&self) -> usize {
        self.longest_set
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value`; true if the field is new. A pair the packed layout cannot
    /// take makes the hash a table, for good.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.longest_set = self.longest_set.max(field.len()).max(value.len());
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
            Repr::Packed(packed) => packed.remove(field),
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

    /// One page of HSCAN: visits pairs from `cursor` on (see `ByteTable::scan`) and returns
    /// the next cursor; a packed hash is visited whole, with cursor 0 next.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut visit: impl FnMut((&'a [u8], &'a [u8]))) -> u64 {
        match &self.repr {
            Repr::Packed(_) => {
                self.iter().for_each(visit);
                0
            }
            Repr::Table(table) => table.scan(cursor, count, |pair| visit(pair_slices(pair))),
        }
    }

    /// A field and its value chosen uniformly at random (in expected constant time once the
    /// hash is a table); `None` if empty.
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Packed(_) => {
                (!self.is_empty()).then(|| rng.gen_range(0..self.len())).and_then(|i| self.iter().nth(i))
            }
            Repr::Table(table) => table.random(rng).map(pair_slices),
        }
    }

    /// Up to `count` distinct pairs chosen uniformly at random (all of them if fewer).
    pub fn sample(&self, count: usize, rng: &mut impl rand::Rng) -> Vec<(&[u8], &[u8])> {
        use rand::seq::IteratorRandom;
        match &self.repr {
            // A client's count: `choose_multiple` reserves room for that many first.
            Repr::Packed(_) => self.iter().choose_multiple(rng, count.min(self.len())),
            Repr::Table(table) => table.sample(count, rng).into_iter().map(pair_slices).collect(),
        }
    }

    /// Heap bytes of one pair, for `MEMORY USAGE`.
    pub fn pair_bytes(&self, field: &[u8], value: &[u8]) -> usize {
        /// A pair's byte and start in the index.
        const INDEX_PAIR_BYTES: usize = 3;
        match &self.repr {
            Repr::Packed(Packed { index: None, .. }) => 2 + field.len() + value.len(),
            Repr::Packed(Packed { index: Some(_), .. }) => 2 + field.len() + value.len() + INDEX_PAIR_BYTES,
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
    Table(crate::byte_table::Iter<'a, (KeyBytes, KeyBytes)>),
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
            IterRepr::Table(table) => table.next().map(pair_slices),
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
#[allow(clippy::indexing_slicing)]
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

    /// The index agrees with the buffer: each pair's start and its field's byte.
    fn assert_index_matches(hash: &Hash) {
        let Repr::Packed(packed) = &hash.repr else { return };
        match &packed.index {
            Some(index) => {
                let rebuilt = Index::of(packed);
                assert_eq!((&index.tags, &index.starts), (&rebuilt.tags, &rebuilt.starts));
                assert_eq!(index.tags.len(), packed.pairs);
            }
            None => assert!(packed.pairs <= INDEXED_FROM),
        }
    }

    /// Random sets, rewrites (longer, shorter, same length) and removals against a model,
    /// across the indexed size and up to the table: the same pairs, and an index that matches
    /// the buffer after every step.
    #[test]
    fn randomized_against_a_model_across_the_index_and_the_table() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
        for round in 0..30 {
            let (mut hash, mut model) = (Hash::default(), std::collections::HashMap::<Vec<u8>, Vec<u8>>::new());
            let fields = [8, 40, 200, 700][round % 4];
            for _ in 0..rng.gen_range(1..2000) {
                let f = field(rng.gen_range(0..fields));
                if rng.gen_ratio(3, 4) {
                    let v = vec![b'v'; rng.gen_range(0..if round % 5 == 0 { 300 } else { 40 })];
                    assert_eq!(hash.insert(&f, &v), model.insert(f.clone(), v).is_none());
                } else {
                    assert_eq!(hash.remove(&f), model.remove(&f).is_some());
                }
                assert_eq!(hash.get(&f), model.get(&f).map(Vec::as_slice));
                assert_index_matches(&hash);
            }
            assert_eq!(hash.len(), model.len());
            for (f, v) in &model {
                assert_eq!(hash.get(f), Some(&v[..]));
            }
            assert_eq!(hash.iter().count(), model.len());
        }
    }

    #[test]
    fn many_pairs_stay_packed_with_an_index_up_to_pairs_max() {
        let mut hash = Hash::default();
        for i in 0..PAIRS_MAX {
            hash.insert(&field(i), b"value");
            let indexed = matches!(&hash.repr, Repr::Packed(Packed { index: Some(_), .. }));
            assert_eq!(indexed, i >= INDEXED_FROM, "pair {i}");
        }
        assert_index_matches(&hash);
        assert!(hash.get(&field(PAIRS_MAX - 1)).is_some() && hash.get(&field(PAIRS_MAX)).is_none());
        hash.insert(&field(PAIRS_MAX), b"value");
        assert!(matches!(hash.repr, Repr::Table(_)));
        // A buffer past 16-bit offsets is a table too, whatever the count.
        let mut wide = Hash::default();
        let long = [b'x'; PACKED_STRING_MAX];
        let long_field = |i: usize| format!("{i:0>255}").into_bytes();
        let fitting = PACKED_BYTES_MAX / (2 + 2 * PACKED_STRING_MAX);
        for i in 0..fitting {
            wide.insert(&long_field(i), &long);
        }
        assert!(matches!(wide.repr, Repr::Packed(_)));
        wide.insert(&long_field(fitting), &long);
        assert!(matches!(wide.repr, Repr::Table(_)));
        assert_eq!(wide.get(&long_field(3)), Some(&long[..]));
    }
}
