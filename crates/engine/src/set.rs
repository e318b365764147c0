//! The set value (Redis's `t_set.c` keeps the same two layouts).
//!
//! While every member is a canonical integer and there are at most 512 of them, a
//! set is a sorted array of the integers at the narrowest width that holds them all (2, 4
//! or 8 bytes a member, as Redis's intset): a set of user ids then costs a few bytes a member
//! where a table slot costs 28 and more. A member that is not an integer, or one member too
//! many, moves the set into a hash table of byte strings for good, as in Redis; a set built
//! whole ([`Set::compact`]: STORE results, a SPOP that rebuilds) starts from its content again.
//!
//! What `OBJECT ENCODING` reports is decided in `value.rs`, from the content and from how
//! the key was built; this layout only has to agree with it where it can be asked.

use std::ops::Deref;

use bytes::Bytes;

use crate::byte_table::ByteTable;
use crate::num::parse_i64;
use crate::small_bytes::KeyBytes;

/// Most members the integer array holds (Redis's `set-max-intset-entries`). An insertion
/// copies the array, so it stays short.
pub(crate) const INTS_MAX: usize = 512;

/// A set of byte strings.
#[derive(Debug, Clone)]
pub struct Set {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    Ints(Ints),
    Table(ByteTable<KeyBytes>),
}

impl Default for Set {
    fn default() -> Set {
        Set { repr: Repr::Ints(Ints::I16(Box::default())) }
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Set) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(&m))
    }
}

impl Set {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(ints) => ints.len(),
            Repr::Table(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the content could be an integer array (the layout may be a table that has
    /// been one since a member that is gone now).
    pub fn content_fits_ints(&self) -> bool {
        match &self.repr {
            Repr::Ints(_) => true,
            Repr::Table(table) => table.len() <= INTS_MAX && table.iter().all(|m| parse_i64(m).is_some()),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(ints) => parse_i64(member).is_some_and(|n| ints.contains(n)),
            Repr::Table(table) => table.contains(member),
        }
    }

    /// Adds `member`; false if it was there already.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        if let Repr::Ints(ints) = &mut self.repr {
            match parse_i64(member) {
                Some(n) if ints.contains(n) => return false,
                Some(n) if ints.len() < INTS_MAX => return ints.insert(n),
                _ => self.make_table(),
            }
        }
        // A table by now: it was one, or was just made one.
        let Repr::Table(table) = &mut self.repr else { return false };
        table.insert(KeyBytes::from_slice(member))
    }

    /// Adds members already owned (loading from an RDB value): a table takes each without a
    /// copy.
    pub fn extend_owned(&mut self, members: impl IntoIterator<Item = Vec<u8>>) {
        for member in members {
            match &mut self.repr {
                Repr::Table(table) => {
                    table.insert(KeyBytes::from_vec(member));
                }
                Repr::Ints(_) => {
                    self.insert(&member);
                }
            }
        }
    }

    /// Adds every member of `other` (SUNION): a table's members move over uncopied, and the
    /// union is then a table too (a STORE result is laid out afresh by [`Set::compact`]).
    pub fn absorb(&mut self, other: Set) {
        match other.repr {
            Repr::Table(members) => {
                self.make_table();
                if let Repr::Table(table) = &mut self.repr {
                    table.extend(members);
                }
            }
            Repr::Ints(_) => other.iter().for_each(|m| {
                self.insert(&m);
            }),
        }
    }

    /// Removes `member`; false if it was not there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(ints) => parse_i64(member).is_some_and(|n| ints.remove(n)),
            Repr::Table(table) => table.remove(member).is_some(),
        }
    }

    /// Keeps only the members `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        match &mut self.repr {
            Repr::Ints(ints) => {
                let kept: Vec<i64> = ints.iter().filter(|&n| keep(&Member::int(n))).collect();
                *ints = Ints::from_sorted(&kept);
            }
            Repr::Table(table) => table.retain(|m| keep(m)),
        }
    }

    /// The members in no particular order (ascending while they are an integer array).
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Ints(ints) => Iter(Walk::Ints(ints, 0..ints.len())),
            Repr::Table(table) => Iter(Walk::Table(table.iter())),
        }
    }

    /// One page of SSCAN: visits members from `cursor` on (see `ByteTable::scan`) and
    /// returns the next cursor; an integer array is visited whole, with cursor 0 next.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut visit: impl FnMut(Member<'a>)) -> u64 {
        match &self.repr {
            Repr::Ints(_) => {
                self.iter().for_each(visit);
                0
            }
            Repr::Table(table) => table.scan(cursor, count, |m| visit(Member(Spelled::Stored(m)))),
        }
    }

    /// A member chosen uniformly at random, in expected constant time; `None` if empty.
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<Member<'_>> {
        match &self.repr {
            Repr::Ints(ints) => {
                (ints.len() > 0).then(|| rng.gen_range(0..ints.len())).and_then(|i| ints.get(i)).map(Member::int)
            }
            Repr::Table(table) => table.random(rng).map(|m| Member(Spelled::Stored(m))),
        }
    }

    /// Up to `count` distinct members chosen uniformly at random (all of them if fewer).
    pub fn sample(&self, count: usize, rng: &mut impl rand::Rng) -> Vec<Member<'_>> {
        use rand::seq::IteratorRandom;
        match &self.repr {
            // A client's count: `choose_multiple` reserves room for that many first.
            Repr::Ints(_) => self.iter().choose_multiple(rng, count.min(self.len())),
            Repr::Table(table) => table.sample(count, rng).into_iter().map(|m| Member(Spelled::Stored(m))).collect(),
        }
    }

    /// Back to an integer array if the content allows: a set built whole is laid out by what
    /// it holds, as Redis builds such a set afresh.
    pub fn compact(&mut self) {
        if let Repr::Table(table) = &self.repr {
            if self.content_fits_ints() {
                let mut ints: Vec<i64> = table.iter().filter_map(|m| parse_i64(m)).collect();
                ints.sort_unstable();
                self.repr = Repr::Ints(Ints::from_sorted(&ints));
            }
        }
    }

    /// Heap bytes for `MEMORY USAGE`: exact for an integer array, estimated from the first
    /// `samples` members of a table (all with 0), as Redis samples.
    pub fn memory_usage(&self, samples: usize) -> usize {
        /// A table member beside a long one's own heap block: its slot and its place in the
        /// index.
        const TABLE_MEMBER_BYTES: usize = std::mem::size_of::<KeyBytes>() + crate::byte_table::INDEX_BYTES_PER_ENTRY;
        match &self.repr {
            Repr::Ints(ints) => ints.heap_bytes(),
            Repr::Table(table) => {
                crate::value::sampled(table.iter(), samples, |m| TABLE_MEMBER_BYTES + KeyBytes::heap_bytes(m.len()))
            }
        }
    }

    fn make_table(&mut self) {
        if let Repr::Ints(ints) = &self.repr {
            let mut table = ByteTable::with_capacity(ints.len() + 1);
            table.extend(ints.iter().map(|n| KeyBytes::from_slice(&Member::int(n))));
            self.repr = Repr::Table(table);
        }
    }
}

/// A member as a [`Set`] hands it out: a stored string, or an integer of the array spelled
/// out (20 bytes hold `i64::MIN`).
#[derive(Debug, Clone, Copy)]
pub struct Member<'a>(Spelled<'a>);

#[derive(Debug, Clone, Copy)]
enum Spelled<'a> {
    Stored(&'a KeyBytes),
    Int { digits: [u8; 20], len: u8 },
}

impl Member<'_> {
    fn int(n: i64) -> Member<'static> {
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(n).as_bytes();
        let mut digits = [0u8; 20];
        for (slot, byte) in digits.iter_mut().zip(text) {
            *slot = *byte;
        }
        let len = u8::try_from(text.len().min(digits.len())).unwrap_or(0);
        Member(Spelled::Int { digits, len })
    }

    /// An owned copy for a reply or a logged effect (a long stored member is shared, not
    /// copied).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Spelled::Stored(member) => member.to_bytes(),
            Spelled::Int { .. } => Bytes::copy_from_slice(self),
        }
    }
}

impl Deref for Member<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Spelled::Stored(member) => member,
            Spelled::Int { digits, len } => digits.get(..usize::from(*len)).unwrap_or_default(),
        }
    }
}

/// The iterator of [`Set::iter`].
#[derive(Debug)]
pub struct Iter<'a>(Walk<'a>);

#[derive(Debug)]
enum Walk<'a> {
    Ints(&'a Ints, std::ops::Range<usize>),
    Table(crate::byte_table::Iter<'a, KeyBytes>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        match &mut self.0 {
            Walk::Ints(ints, at) => at.next().and_then(|i| ints.get(i)).map(Member::int),
            Walk::Table(members) => members.next().map(|m| Member(Spelled::Stored(m))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            Walk::Ints(_, at) => at.size_hint(),
            Walk::Table(members) => members.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Distinct integers in ascending order, each as wide as the widest needs: widening copies
/// the array once, and a removal leaves it as wide as it was (Redis's intset does the same);
/// only an array built afresh ([`Set::retain`], [`Set::compact`]) starts at the narrowest.
#[derive(Debug, Clone)]
enum Ints {
    I16(Box<[i16]>),
    I32(Box<[i32]>),
    I64(Box<[i64]>),
}

impl Ints {
    /// The narrowest array of `sorted` (ascending, distinct).
    fn from_sorted(sorted: &[i64]) -> Ints {
        let (min, max) = (sorted.first().copied().unwrap_or(0), sorted.last().copied().unwrap_or(0));
        if i16::try_from(min).is_ok() && i16::try_from(max).is_ok() {
            Ints::I16(narrowed(sorted))
        } else if i32::try_from(min).is_ok() && i32::try_from(max).is_ok() {
            Ints::I32(narrowed(sorted))
        } else {
            Ints::I64(sorted.into())
        }
    }

    fn len(&self) -> usize {
        match self {
            Ints::I16(items) => items.len(),
            Ints::I32(items) => items.len(),
            Ints::I64(items) => items.len(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Ints::I16(items) => std::mem::size_of_val::<[i16]>(items),
            Ints::I32(items) => std::mem::size_of_val::<[i32]>(items),
            Ints::I64(items) => std::mem::size_of_val::<[i64]>(items),
        }
    }

    fn get(&self, index: usize) -> Option<i64> {
        match self {
            Ints::I16(items) => items.get(index).map(|&n| i64::from(n)),
            Ints::I32(items) => items.get(index).map(|&n| i64::from(n)),
            Ints::I64(items) => items.get(index).copied(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    fn contains(&self, n: i64) -> bool {
        match self {
            Ints::I16(items) => find(items, n).is_some_and(|at| at.is_ok()),
            Ints::I32(items) => find(items, n).is_some_and(|at| at.is_ok()),
            Ints::I64(items) => find(items, n).is_some_and(|at| at.is_ok()),
        }
    }

    /// Adds `n`; false if it was there.
    fn insert(&mut self, n: i64) -> bool {
        let inserted = match self {
            Ints::I16(items) => insert_sorted(items, n),
            Ints::I32(items) => insert_sorted(items, n),
            Ints::I64(items) => insert_sorted(items, n),
        };
        inserted.unwrap_or_else(|| {
            // Too wide for the array: it is widened, and `n` goes at one end.
            let mut all: Vec<i64> = self.iter().collect();
            all.insert(all.partition_point(|&m| m < n), n);
            *self = Ints::from_sorted(&all);
            true
        })
    }

    /// Removes `n`; false if it was not there.
    fn remove(&mut self, n: i64) -> bool {
        match self {
            Ints::I16(items) => remove_sorted(items, n),
            Ints::I32(items) => remove_sorted(items, n),
            Ints::I64(items) => remove_sorted(items, n),
        }
    }
}

/// Where `n` is or would go in `items`; `None` if `n` does not fit their width.
fn find<T: Ord + TryFrom<i64>>(items: &[T], n: i64) -> Option<Result<usize, usize>> {
    T::try_from(n).ok().map(|n| items.binary_search(&n))
}

/// Inserts `n` in order: whether it was new, `None` if it does not fit the width. The array
/// is sized exactly: one allocation and copy per insertion, short at 512 members.
fn insert_sorted<T: Copy + Ord + TryFrom<i64>>(items: &mut Box<[T]>, n: i64) -> Option<bool> {
    let n = T::try_from(n).ok()?;
    let Err(at) = items.binary_search(&n) else { return Some(false) };
    let (before, after) = items.split_at(at);
    let mut grown = Vec::with_capacity(items.len() + 1);
    grown.extend_from_slice(before);
    grown.push(n);
    grown.extend_from_slice(after);
    *items = grown.into_boxed_slice();
    Some(true)
}

fn remove_sorted<T: Copy + Ord + TryFrom<i64>>(items: &mut Box<[T]>, n: i64) -> bool {
    let Some(Ok(at)) = find(items, n) else { return false };
    let mut rest = std::mem::take(items).into_vec();
    rest.remove(at);
    *items = rest.into_boxed_slice();
    true
}

fn narrowed<T: TryFrom<i64>>(sorted: &[i64]) -> Box<[T]> {
    sorted.iter().filter_map(|&n| T::try_from(n).ok()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn is_ints(set: &Set) -> bool {
        matches!(set.repr, Repr::Ints(_))
    }

    fn members(set: &Set) -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = set.iter().map(|m| m.to_vec()).collect();
        all.sort();
        all
    }

    #[test]
    fn integers_stay_an_array_sorted_and_widened_as_needed() {
        let mut set = Set::default();
        for n in ["5", "-3", "70000", "5", "-9223372036854775808", "9223372036854775807", "0"] {
            set.insert(n.as_bytes());
        }
        assert!(is_ints(&set));
        assert_eq!(set.len(), 6);
        let in_order: Vec<String> = set.iter().map(|m| String::from_utf8(m.to_vec()).unwrap()).collect();
        assert_eq!(in_order, ["-9223372036854775808", "-3", "0", "5", "70000", "9223372036854775807"]);
        assert!(set.contains(b"70000") && !set.contains(b"70001") && !set.contains(b"x"));
        assert!(matches!(set.repr, Repr::Ints(Ints::I64(_))));
        assert_eq!(set.memory_usage(0), 6 * 8);
        assert!(set.remove(b"70000") && !set.remove(b"70000") && !set.remove(b"nope"));
        assert_eq!(set.len(), 5);
    }

    #[test]
    fn the_narrowest_width_is_used_until_a_wider_integer_comes() {
        let mut set = Set::default();
        set.insert(b"1");
        set.insert(b"-32768");
        assert!(matches!(set.repr, Repr::Ints(Ints::I16(_))));
        set.insert(b"32768");
        assert!(matches!(set.repr, Repr::Ints(Ints::I32(_))));
        assert_eq!(members(&set), [b"-32768".to_vec(), b"1".to_vec(), b"32768".to_vec()]);
        // Nothing narrows it again.
        set.remove(b"32768");
        assert!(matches!(set.repr, Repr::Ints(Ints::I32(_))));
        // A number too wide for the array is simply not there.
        assert!(!set.contains(b"4294967296"));
    }

    #[test]
    fn a_non_integer_or_one_member_too_many_moves_the_set_into_a_table_for_good() {
        let mut set = Set::default();
        // Not canonical integers: Redis's string2ll refuses them too.
        for text in ["01", "+1", "-0", " 1", "1.0", "99999999999999999999"] {
            let mut one = Set::default();
            one.insert(text.as_bytes());
            assert!(!is_ints(&one), "{text}");
            assert!(one.contains(text.as_bytes()));
        }
        set.insert(b"1");
        set.insert(b"x");
        assert!(!is_ints(&set));
        assert!(set.contains(b"1") && set.contains(b"x"));
        set.remove(b"x");
        assert!(!is_ints(&set) && set.content_fits_ints());
        let mut big = Set::default();
        for n in 0..INTS_MAX {
            big.insert(n.to_string().as_bytes());
        }
        assert!(is_ints(&big));
        big.insert(b"512");
        assert!(!is_ints(&big));
        assert_eq!(big.len(), INTS_MAX + 1);
        assert!(!big.content_fits_ints());
    }

    #[test]
    fn compact_lays_a_table_of_integers_out_as_an_array_again() {
        let mut set = Set::default();
        set.insert(b"x");
        set.insert(b"300");
        set.insert(b"-2");
        set.compact();
        assert!(!is_ints(&set), "x is still there");
        set.remove(b"x");
        let before = set.clone();
        set.compact();
        assert!(is_ints(&set));
        assert_eq!(set, before, "the same members in either layout");
        assert_eq!(members(&set), [b"-2".to_vec(), b"300".to_vec()]);
    }

    #[test]
    fn retain_and_owned_members_work_in_both_layouts() {
        let mut ints = Set::default();
        ints.extend_owned((0..10).map(|n| n.to_string().into_bytes()));
        ints.retain(|m| m.last().is_some_and(|d| d % 2 == 0));
        assert!(is_ints(&ints));
        assert_eq!(members(&ints), ["0", "2", "4", "6", "8"].map(|s| s.as_bytes().to_vec()));
        let mut table = Set::default();
        table.extend_owned([b"a".to_vec(), b"1".to_vec(), b"b".to_vec()]);
        let mut union = ints.clone();
        union.absorb(table.clone());
        assert!(!is_ints(&union));
        assert_eq!(members(&union), ["0", "1", "2", "4", "6", "8", "a", "b"].map(|s| s.as_bytes().to_vec()));
        let mut both_ints = ints.clone();
        both_ints.absorb(Set::default());
        assert!(is_ints(&both_ints) && both_ints == ints);
        assert!(!is_ints(&table));
        table.retain(|m| m != b"a");
        assert_eq!(members(&table), [b"1".to_vec(), b"b".to_vec()]);
        assert_eq!(table.iter().len(), 2);
    }

    /// Random insertions and removals of integers around every width's edges and of a few
    /// strings, against a model: same members, and an integer array only while every member
    /// is an integer and there are at most 512.
    #[test]
    fn randomized_against_a_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let edges = [0i64, 1, 127, 32767, 32768, -32768, -32769, 2_147_483_647, 2_147_483_648, i64::MIN, i64::MAX];
        for round in 0..40 {
            let (mut set, mut model) = (Set::default(), std::collections::HashSet::<Vec<u8>>::new());
            let strings = round % 4 == 0;
            for _ in 0..rng.gen_range(1..1200) {
                let member = if strings && rng.gen_ratio(1, 50) {
                    format!("s{}", rng.gen_range(0..5)).into_bytes()
                } else {
                    let edge = edges[rng.gen_range(0..edges.len())];
                    edge.wrapping_add(rng.gen_range(-300..300)).to_string().into_bytes()
                };
                if rng.gen_ratio(2, 3) {
                    assert_eq!(set.insert(&member), model.insert(member.clone()));
                } else {
                    assert_eq!(set.remove(&member), model.remove(&member));
                }
                assert!(set.contains(&member) == model.contains(&member));
            }
            let all_ints = model.len() <= INTS_MAX && model.iter().all(|m| parse_i64(m).is_some());
            if is_ints(&set) {
                assert!(all_ints);
            }
            assert_eq!(set.content_fits_ints(), all_ints);
            let mut expected: Vec<Vec<u8>> = model.into_iter().collect();
            expected.sort();
            assert_eq!(members(&set), expected);
            set.compact();
            assert_eq!(is_ints(&set), all_ints);
            assert_eq!(members(&set), expected);
        }
    }
}
