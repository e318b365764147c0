//! The list value: its elements packed in one buffer while small, a deque of [`KeyBytes`]
//! beyond (Redis 7.0 keeps a quicklist of listpacks).
//!
//! Most lists are short: a user's recent items trimmed to a hundred, a small job queue. In a
//! deque every element takes 24 bytes however short it is (1.5x Redis's memory for lists of
//! 13-byte elements). The packed buffer holds each element as `[length][bytes][length]`; the
//! trailing length lets a walk step backwards (RPOP, LINDEX -1, LRANGE from the tail), as a
//! listpack's back-length does. A push at the head moves the buffer, as a listpack insert
//! does, which [`PACKED_BYTES_MAX`] keeps short; lookups by index walk from the nearer end.
//!
//! A list leaves the packed layout for good when it would pass [`PACKED_BYTES_MAX`] or take
//! an element longer than a length byte says. `OBJECT ENCODING` says `quicklist` either way,
//! as Redis 7.0 does for every list.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::framed;
use crate::small_bytes::KeyBytes;

/// The largest packed buffer: Redis's default `list-max-listpack-size` (-2) makes nodes of up
/// to 8 KB.
pub const PACKED_BYTES_MAX: usize = 8 << 10;

const ENTRY_OVERHEAD: usize = framed::overhead::<0>();

#[derive(Clone, Debug, Default)]
pub struct List {
    repr: Repr,
}

#[derive(Clone, Debug)]
enum Repr {
    Packed(Packed),
    Deque(VecDeque<KeyBytes>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Packed(Packed::default())
    }
}

/// Lists are equal when their elements are, whatever their layouts.
impl PartialEq for List {
    fn eq(&self, other: &List) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// Entries back to back, head first.
#[derive(Clone, Debug, Default)]
struct Packed {
    bytes: Vec<u8>,
    len: usize,
}

/// The element of the entry that starts at `at`, and where the entry ends.
fn entry_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    framed::entry_at::<0>(bytes, at).map(|(element, [], end)| (element, end))
}

/// One entry's bytes; `None` if the element is too long for a length byte.
fn encode(element: &[u8]) -> Option<impl Iterator<Item = u8> + '_> {
    framed::encode(element, [])
}

impl Packed {
    fn iter(&self) -> Iter<'_> {
        Iter(IterRepr::Packed { bytes: &self.bytes, front: 0, back: self.bytes.len(), left: self.len })
    }

    /// Where the entry of `index` lies, found from the nearer end.
    fn entry(&self, index: usize) -> Option<std::ops::Range<usize>> {
        if index >= self.len {
            return None;
        }
        let start = if index <= self.len / 2 {
            let mut at = 0;
            for _ in 0..index {
                at = entry_at(&self.bytes, at)?.1;
            }
            at
        } else {
            let mut at = self.bytes.len();
            for _ in index..self.len {
                at = framed::entry_before::<0>(&self.bytes, at)?;
            }
            at
        };
        Some(start..entry_at(&self.bytes, start)?.1)
    }

    /// Whether `extra` more bytes of elements, in `entries` entries each at most `longest`
    /// long, keep the buffer packed.
    fn fits(&self, extra: usize, entries: usize, longest: usize) -> bool {
        longest <= usize::from(u8::MAX) && self.bytes.len() + extra + entries * ENTRY_OVERHEAD <= PACKED_BYTES_MAX
    }

    fn to_deque(&self) -> VecDeque<KeyBytes> {
        self.iter().map(KeyBytes::from_slice).collect()
    }
}

impl List {
    /// A list of `elements`, head first, packed if they fit.
    pub fn from_elements<E: AsRef<[u8]>>(elements: impl IntoIterator<Item = E>) -> List {
        let mut list = List::default();
        for element in elements {
            list.push(element.as_ref(), false);
        }
        list
    }

    /// A list that takes over `elements`' heap blocks where it does not pack them.
    pub fn from_vecs(elements: Vec<Vec<u8>>) -> List {
        let total = elements.iter().map(Vec::len).sum();
        let longest = elements.iter().map(Vec::len).max().unwrap_or(0);
        if Packed::default().fits(total, elements.len(), longest) {
            List::from_elements(elements)
        } else {
            List { repr: Repr::Deque(elements.into_iter().map(KeyBytes::from_vec).collect()) }
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(p) => p.len,
            Repr::Deque(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The packed layout, if it can take `extra` more bytes in `entries` entries, each at most
    /// `longest` long; else the list becomes a deque.
    fn packed_with_room(&mut self, extra: usize, entries: usize, longest: usize) -> Option<&mut Packed> {
        if let Repr::Packed(p) = &self.repr {
            if !p.fits(extra, entries, longest) {
                self.repr = Repr::Deque(p.to_deque());
            }
        }
        match &mut self.repr {
            Repr::Packed(p) => Some(p),
            Repr::Deque(_) => None,
        }
    }

    fn deque(&mut self) -> Option<&mut VecDeque<KeyBytes>> {
        match &mut self.repr {
            Repr::Deque(d) => Some(d),
            Repr::Packed(_) => None,
        }
    }

    /// Pushes `elements` one by one at the head (`front`) or the tail. A list made by one push
    /// holds what it was given and no spare room; later pushes grow it by doubling (exact
    /// growth at every push would copy it each time).
    pub fn push_all(&mut self, elements: &[Bytes], front: bool) {
        let total = elements.iter().map(Bytes::len).sum();
        let longest = elements.iter().map(Bytes::len).max().unwrap_or(0);
        let was_empty = self.is_empty();
        if let Some(p) = self.packed_with_room(total, elements.len(), longest) {
            if was_empty {
                p.bytes.reserve_exact(total + elements.len() * ENTRY_OVERHEAD);
            }
        } else if let Some(d) = self.deque().filter(|_| was_empty) {
            d.reserve_exact(elements.len());
        }
        for element in elements {
            self.push(element, front);
        }
    }

    /// Pushes `element` at the head (`front`) or the tail.
    pub fn push(&mut self, element: &[u8], front: bool) {
        let at = if front { 0 } else { self.len() };
        self.insert(at, element);
    }

    /// Removes and returns up to `count` elements from the head (`front`) or the tail, in the
    /// order they leave.
    pub fn pop(&mut self, count: usize, front: bool) -> Vec<Bytes> {
        let n = count.min(self.len());
        match &mut self.repr {
            Repr::Packed(p) => {
                let mut leaving = p.iter();
                let popped: Vec<Bytes> = if front {
                    leaving.by_ref().take(n).map(Bytes::copy_from_slice).collect()
                } else {
                    leaving.by_ref().rev().take(n).map(Bytes::copy_from_slice).collect()
                };
                // Where the walk stopped is what stays.
                if let IterRepr::Packed { front: kept_from, back: kept_to, .. } = leaving.0 {
                    p.bytes.truncate(kept_to);
                    p.bytes.drain(..kept_from);
                }
                p.len -= n;
                popped
            }
            Repr::Deque(d) if front => d.drain(..n).map(KeyBytes::into_bytes).collect(),
            Repr::Deque(d) => d.drain(d.len() - n..).rev().map(KeyBytes::into_bytes).collect(),
        }
    }

    pub fn get(&self, index: usize) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(p) => p.entry(index).and_then(|entry| entry_at(&p.bytes, entry.start)).map(|(e, _)| e),
            Repr::Deque(d) => d.get(index).map(KeyBytes::as_slice),
        }
    }

    /// Replaces the element at `index`; `false` if there is none.
    pub fn set(&mut self, index: usize, element: &[u8]) -> bool {
        if index >= self.len() {
            return false;
        }
        if let Some(p) = self.packed_with_room(element.len(), 0, element.len()) {
            let (Some(old), Some(new)) = (p.entry(index), encode(element)) else { return false };
            p.bytes.splice(old, new);
        } else if let Some(slot) = self.deque().and_then(|d| d.get_mut(index)) {
            *slot = KeyBytes::from_slice(element);
        }
        true
    }

    /// Inserts `element` before the element at `index` (at the tail if `index` is the length).
    pub fn insert(&mut self, index: usize, element: &[u8]) {
        let len = self.len();
        if let Some(p) = self.packed_with_room(element.len(), 1, element.len()) {
            let at = if index >= len { p.bytes.len() } else { p.entry(index).map_or(p.bytes.len(), |e| e.start) };
            if let Some(entry) = encode(element) {
                p.bytes.splice(at..at, entry);
                p.len += 1;
            }
        } else if let Some(d) = self.deque() {
            d.insert(index.min(len), KeyBytes::from_slice(element));
        }
    }

    /// Removes up to `limit` elements equal to `element`, the first ones from the head (or
    /// from the tail with `from_tail`); returns how many.
    pub fn remove_matching(&mut self, element: &[u8], limit: usize, from_tail: bool) -> usize {
        let matches = self.iter().enumerate().filter(|(_, e)| *e == element).map(|(i, _)| i);
        let mut doomed: Vec<usize> =
            if from_tail { matches.rev().take(limit).collect() } else { matches.take(limit).collect() };
        let removed = doomed.len();
        if removed == 0 {
            return 0;
        }
        if from_tail {
            doomed.reverse();
        }
        let mut doomed = doomed.into_iter().peekable();
        let mut index = 0;
        let mut keep = |_: &[u8]| {
            let hit = doomed.next_if_eq(&index).is_some();
            index += 1;
            !hit
        };
        match &mut self.repr {
            Repr::Packed(p) => {
                let kept = p.iter().filter(|e| keep(e)).flat_map(|e| encode(e).into_iter().flatten()).collect();
                p.bytes = kept;
                p.len -= removed;
            }
            Repr::Deque(d) => d.retain(|e| keep(e)),
        }
        removed
    }

    /// Keeps only the elements of indexes `from..=to` (both within the list).
    pub fn trim(&mut self, from: usize, to: usize) {
        match &mut self.repr {
            Repr::Packed(p) => {
                let (Some(first), Some(last)) = (p.entry(from), p.entry(to)) else { return };
                p.bytes.truncate(last.end);
                p.bytes.drain(..first.start);
                p.len = to + 1 - from;
            }
            Repr::Deque(d) => {
                d.truncate(to + 1);
                d.drain(..from);
            }
        }
    }

    pub fn clear(&mut self) {
        *self = List::default();
    }

    /// The elements, head first (`rev()` walks from the tail).
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Packed(p) => p.iter(),
            Repr::Deque(d) => Iter(IterRepr::Deque(d.iter())),
        }
    }

    /// The elements of indexes `from..=to`, head first; none unless both are in the list.
    /// A packed list is entered from whichever end is nearer each of them (LRANGE -10 -1).
    pub fn range(&self, from: usize, to: usize) -> Iter<'_> {
        let within = from <= to && to < self.len();
        match &self.repr {
            Repr::Packed(p) => {
                let ends = p.entry(from).zip(p.entry(to)).filter(|_| within);
                let (front, back) = ends.map_or((0, 0), |(first, last)| (first.start, last.end));
                let left = if within { to + 1 - from } else { 0 };
                Iter(IterRepr::Packed { bytes: &p.bytes, front, back, left })
            }
            Repr::Deque(d) => Iter(IterRepr::Deque(if within { d.range(from..=to) } else { d.range(0..0) })),
        }
    }

    /// The packed buffer's size, if the list is packed (MEMORY USAGE counts it whole, and
    /// samples a deque's elements).
    pub fn packed_bytes(&self) -> Option<usize> {
        match &self.repr {
            Repr::Packed(p) => Some(p.bytes.capacity()),
            Repr::Deque(_) => None,
        }
    }
}

/// A walk over a list's elements, from either end.
#[derive(Clone, Debug)]
pub struct Iter<'a>(IterRepr<'a>);

#[derive(Clone, Debug)]
enum IterRepr<'a> {
    /// The entries between `front` and `back` (byte offsets), `left` of them.
    Packed {
        bytes: &'a [u8],
        front: usize,
        back: usize,
        left: usize,
    },
    Deque(std::collections::vec_deque::Iter<'a, KeyBytes>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            IterRepr::Packed { bytes, front, left, .. } => {
                let (element, end) = entry_at(bytes, *front).filter(|_| *left > 0)?;
                (*front, *left) = (end, *left - 1);
                Some(element)
            }
            IterRepr::Deque(it) => it.next().map(KeyBytes::as_slice),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = match &self.0 {
            IterRepr::Packed { left, .. } => *left,
            IterRepr::Deque(it) => it.len(),
        };
        (left, Some(left))
    }
}

impl<'a> DoubleEndedIterator for Iter<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            IterRepr::Packed { bytes, back, left, .. } => {
                let start = framed::entry_before::<0>(bytes, *back).filter(|_| *left > 0)?;
                let (element, _) = entry_at(bytes, start)?;
                (*back, *left) = (start, *left - 1);
                Some(element)
            }
            IterRepr::Deque(it) => it.next_back().map(KeyBytes::as_slice),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn contents(list: &List) -> Vec<Vec<u8>> {
        list.iter().map(<[u8]>::to_vec).collect()
    }

    /// Every operation against a `VecDeque` model, on lists that cross the packed limits
    /// both ways (lengths all over the length byte, and past it).
    #[test]
    fn operations_against_a_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for round in 0..40 {
            let mut list = List::default();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let longest = if round % 4 == 0 { 300 } else { 60 };
            for _ in 0..400 {
                let element = vec![b'a' + rng.gen_range(0..3); rng.gen_range(0..longest)];
                let index = rng.gen_range(0..=model.len());
                match rng.gen_range(0..12) {
                    0..=2 => {
                        list.push(&element, true);
                        model.push_front(element);
                    }
                    3..=5 => {
                        list.push(&element, false);
                        model.push_back(element);
                    }
                    6 => {
                        let (n, front) = (rng.gen_range(0..4), rng.gen_bool(0.5));
                        let n = n.min(model.len());
                        let expected: Vec<Vec<u8>> = if front {
                            model.drain(..n).collect()
                        } else {
                            model.drain(model.len() - n..).rev().collect()
                        };
                        let popped: Vec<Vec<u8>> = list.pop(n, front).iter().map(|e| e.to_vec()).collect();
                        assert_eq!(popped, expected);
                    }
                    7 => {
                        assert_eq!(list.set(index, &element), index < model.len());
                        if let Some(slot) = model.get_mut(index) {
                            *slot = element;
                        }
                    }
                    8 => {
                        list.insert(index, &element);
                        model.insert(index, element);
                    }
                    9 => {
                        let (limit, from_tail) = (rng.gen_range(1..3), rng.gen_bool(0.5));
                        let target = model.get(index).cloned().unwrap_or_default();
                        let removed = list.remove_matching(&target, limit, from_tail);
                        let mut hits: Vec<usize> =
                            model.iter().enumerate().filter(|(_, e)| **e == target).map(|(i, _)| i).collect();
                        if from_tail {
                            hits.reverse();
                        }
                        hits.truncate(limit);
                        assert_eq!(removed, hits.len());
                        hits.sort_unstable();
                        for i in hits.into_iter().rev() {
                            model.remove(i);
                        }
                    }
                    10 if !model.is_empty() => {
                        let from = rng.gen_range(0..model.len());
                        let to = rng.gen_range(from..model.len());
                        list.trim(from, to);
                        model.truncate(to + 1);
                        model.drain(..from);
                    }
                    _ => assert_eq!(list.get(index), model.get(index).map(Vec::as_slice)),
                }
                assert_eq!(list.len(), model.len());
                assert_eq!(contents(&list), Vec::from(model.clone()));
                assert!(list.iter().rev().eq(model.iter().rev().map(Vec::as_slice)));
                let (from, to) = (rng.gen_range(0..=model.len()), rng.gen_range(0..=model.len()));
                let within = from <= to && to < model.len();
                let expected: Vec<&[u8]> =
                    if within { model.range(from..=to).map(Vec::as_slice).collect() } else { Vec::new() };
                assert_eq!(list.range(from, to).collect::<Vec<_>>(), expected);
                assert!(list.range(from, to).rev().eq(expected.iter().rev().copied()));
            }
        }
    }

    #[test]
    fn packs_until_the_limits() {
        let mut list = List::from_elements([b"a".as_slice(), b"bc"]);
        assert!(list.packed_bytes().is_some());
        assert!(list.packed_bytes().is_some_and(|b| (7..16).contains(&b)), "the buffer: 3 + 4 bytes of entries");
        list.push(&[b'x'; 255], false);
        assert!(list.packed_bytes().is_some(), "an element of 255 bytes still has a length byte");
        list.push(&[b'y'; 256], false);
        assert!(list.packed_bytes().is_none(), "one of 256 does not");
        assert_eq!(list.len(), 4);
        let mut long = List::default();
        for _ in 0..PACKED_BYTES_MAX / 12 {
            long.push(b"0123456789", true);
        }
        assert!(long.packed_bytes().is_some());
        long.push(b"0123456789", true);
        assert!(long.packed_bytes().is_none(), "past {PACKED_BYTES_MAX} bytes");
        assert!(List::from_vecs(vec![vec![0; 300]]).packed_bytes().is_none());
        assert!(List::from_vecs(vec![vec![0; 30]; 3]).packed_bytes().is_some());
    }
}
