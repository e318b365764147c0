//! A sorted set while Redis 7.0 would hold it as a listpack (at most 128 members of at most 64
//! bytes): its entries in order, back to back in one buffer, searched the way a listpack is.
//!
//! An entry is `[length][member][score: f64, little endian][length]` ([`crate::framed`]): the
//! length byte at the end lets a walk step backwards (ZREVRANGE), as a listpack's back-length
//! does. A member
//! costs its bytes and 10 more; as a vector of (`Bytes`, score) it cost 40 bytes plus a heap
//! block of its own (a set of 20 short members took 1.49x Redis's memory).
//! Lookups by member and by rank are linear, as in a listpack. Scores are stored as a
//! listpack stores them (`-0` as `0`).

use bytes::Bytes;

use super::{listpack_score, may_hold, Range};
use crate::framed;

/// The score's bytes in an entry.
const SCORE: usize = 8;
const ENTRY_OVERHEAD: usize = framed::overhead::<SCORE>();

#[derive(Debug, Clone, Default)]
pub(super) struct Packed {
    /// The entries, lowest first.
    bytes: Vec<u8>,
    len: usize,
}

/// Whether (score, member) sorts before (other_score, other_member).
fn precedes(score: f64, member: &[u8], other_score: f64, other_member: &[u8]) -> bool {
    score < other_score || (score == other_score && member < other_member)
}

/// The entry that starts at `at`: its member, its score, and where it ends.
fn entry_at(bytes: &[u8], at: usize) -> Option<(&[u8], f64, usize)> {
    let (member, score, end) = framed::entry_at::<SCORE>(bytes, at)?;
    Some((member, f64::from_le_bytes(score), end))
}

/// One entry's bytes, its score as a listpack stores it; `None` if the member is too long.
fn encode(member: &[u8], score: f64) -> Option<impl Iterator<Item = u8> + '_> {
    framed::encode(member, listpack_score(score).to_le_bytes())
}

/// Where an entry lies in [`Packed::bytes`], with what it holds.
#[derive(Clone, Copy)]
struct Slot<'a> {
    rank: usize,
    start: usize,
    end: usize,
    member: &'a [u8],
    score: f64,
}

impl Packed {
    /// A set of the members of `items`, which come in order; `None` if one is too long.
    pub(super) fn from_sorted<'a>(items: impl Iterator<Item = (&'a [u8], f64)>) -> Option<Packed> {
        let mut packed = Packed::default();
        for (member, score) in items {
            packed.bytes.extend(encode(member, score)?);
            packed.len += 1;
        }
        Some(packed)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// A walk from the lowest member.
    fn walk(&self) -> Iter<'_> {
        Iter::new(self, Some(0), false)
    }

    /// A walk back from the highest member.
    fn walk_back(&self) -> Iter<'_> {
        Iter::new(self, self.len.checked_sub(1), true)
    }

    /// The entry of `member`: a walk that compares bytes only where the length byte matches
    /// and reads no score on the way (ZSCORE, ZADD and ZREM all start here).
    fn find(&self, member: &[u8]) -> Option<Slot<'_>> {
        let (mut rank, mut at) = (0, 0);
        while let Some(&len) = self.bytes.get(at) {
            let len = usize::from(len);
            if len == member.len() && self.bytes.get(at + 1..at + 1 + len) == Some(member) {
                return Iter::new_at(self, rank, at).into_slots().next();
            }
            (rank, at) = (rank + 1, at + len + ENTRY_OVERHEAD);
        }
        None
    }

    /// The slot of 0-based `rank` from the lowest.
    fn slot_of_rank(&self, rank: usize) -> Option<Slot<'_>> {
        Iter::new(self, Some(rank), false).into_slots().next()
    }

    pub(super) fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|slot| slot.score)
    }

    /// Adds a member that is not in the set; `false` if it is too long for this layout (never
    /// while the set keeps Redis's limits).
    pub(super) fn insert_new(&mut self, member: &[u8], score: f64) -> bool {
        let Some(entry) = encode(member, score) else { return false };
        let score = listpack_score(score);
        let at = self
            .walk()
            .into_slots()
            .find(|slot| !precedes(slot.score, slot.member, score, member))
            .map_or(self.bytes.len(), |slot| slot.start);
        // One entry's room at a time: a small set is built once and read often.
        self.bytes.reserve_exact(member.len() + ENTRY_OVERHEAD);
        self.bytes.splice(at..at, entry);
        self.len += 1;
        true
    }

    /// Gives a member of the set a new score.
    pub(super) fn set_score(&mut self, member: &[u8], score: f64) {
        if let Some(slot) = self.find(member).map(|slot| slot.start..slot.end) {
            self.bytes.drain(slot);
            self.len -= 1;
            self.insert_new(member, score);
        }
    }

    pub(super) fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (start, end, score) = self.find(member).map(|slot| (slot.start, slot.end, slot.score))?;
        self.bytes.drain(start..end);
        self.len -= 1;
        Some(score)
    }

    pub(super) fn rank(&self, member: &[u8], reverse: bool) -> Option<usize> {
        let at = self.find(member)?.rank;
        Some(if reverse { self.len - 1 - at } else { at })
    }

    pub(super) fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.slot_of_rank(rank).map(|slot| (slot.member, slot.score))
    }

    fn range_maybe_nonempty<R: Range>(&self, range: &R) -> bool {
        let first = self.walk().next();
        let last = self.walk_back().next();
        may_hold(range, first.map(|(m, s)| (s, m)), last.map(|(m, s)| (s, m)))
    }

    /// A walk from the first member in `range` (the last with `reverse`).
    pub(super) fn walk_from<R: Range>(&self, range: &R, reverse: bool) -> Iter<'_> {
        let from = if reverse { self.last_in(range) } else { self.first_in(range) };
        Iter::from_slot(self, from, reverse)
    }

    /// The first member in `range`, searched from the lowest as a listpack is.
    fn first_in<R: Range>(&self, range: &R) -> Option<Slot<'_>> {
        if !self.range_maybe_nonempty(range) {
            return None;
        }
        let first = self.walk().into_slots().find(|slot| range.gte_min(slot.score, slot.member))?;
        range.lte_max(first.score, first.member).then_some(first)
    }

    /// The last member in `range`, searched from the highest.
    fn last_in<R: Range>(&self, range: &R) -> Option<Slot<'_>> {
        if !self.range_maybe_nonempty(range) {
            return None;
        }
        let last = self.walk_back().into_slots().find(|slot| range.lte_max(slot.score, slot.member))?;
        range.gte_min(last.score, last.member).then_some(last)
    }

    /// The bytes and the number of the entries from the first in `range` while they stay in it.
    fn run_in<R: Range>(&self, range: &R) -> Option<(std::ops::Range<usize>, usize)> {
        let first = self.first_in(range)?;
        let run = Iter::from_slot(self, Some(first), false).into_slots();
        let last = run.take_while(|slot| range.lte_max(slot.score, slot.member)).last()?;
        Some((first.start..last.end, last.rank - first.rank + 1))
    }

    pub(super) fn count_in<R: Range>(&self, range: &R) -> usize {
        self.run_in(range).map_or(0, |(_, count)| count)
    }

    pub(super) fn remove_in<R: Range>(&mut self, range: &R) -> usize {
        let Some((bytes, count)) = self.run_in(range) else { return 0 };
        self.bytes.drain(bytes);
        self.len -= count;
        count
    }

    /// Removes the members of ranks `start..=end` (clamped to the set); returns how many.
    pub(super) fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        if start > end || start >= self.len {
            return 0;
        }
        let end = end.min(self.len - 1);
        let (Some(first), Some(last)) = (self.slot_of_rank(start), self.slot_of_rank(end)) else { return 0 };
        self.bytes.drain(first.start..last.end);
        self.len -= end - start + 1;
        end - start + 1
    }

    /// Removes and returns up to `count` members from the lowest (or from the highest).
    pub(super) fn pop(&mut self, count: usize, max: bool) -> Vec<(Bytes, f64)> {
        let n = count.min(self.len);
        let walk = if max { self.walk_back() } else { self.walk() };
        let popped: Vec<Slot<'_>> = walk.into_slots().take(n).collect();
        let bytes = match (popped.first(), popped.last()) {
            (Some(first), Some(last)) if max => last.start..first.end,
            (Some(first), Some(last)) => first.start..last.end,
            _ => return Vec::new(),
        };
        let members = popped.iter().map(|slot| (Bytes::copy_from_slice(slot.member), slot.score)).collect();
        self.bytes.drain(bytes);
        self.len -= n;
        members
    }

    /// Every member in order, lowest first.
    pub(super) fn for_each<'a>(&'a self, mut visit: impl FnMut(&'a [u8], f64)) {
        self.walk().for_each(|(member, score)| visit(member, score));
    }

    pub(super) fn heap_size(&self) -> usize {
        self.bytes.capacity()
    }

    /// Check the order, the count, and that each member is there once (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let slots: Vec<Slot<'_>> = self.walk().into_slots().collect();
        assert_eq!(slots.len(), self.len, "count");
        assert_eq!(slots.last().map_or(0, |slot| slot.end), self.bytes.len(), "trailing bytes");
        for pair in slots.windows(2) {
            if let [a, b] = pair {
                assert!(precedes(a.score, a.member, b.score, b.member), "order");
            }
        }
        let listpack_form = |s: f64| !s.is_nan() && !super::is_negative_zero(s);
        assert!(slots.iter().all(|slot| listpack_form(slot.score)), "a score a listpack cannot hold");
    }
}

/// A walk over a packed set's members from a position, forward or backward.
#[derive(Debug, Clone)]
pub(super) struct Iter<'a> {
    packed: &'a Packed,
    /// The next entry's rank and where it starts.
    at: Option<(usize, usize)>,
    reverse: bool,
}

impl<'a> Iter<'a> {
    /// A walk from 0-based `rank` (counted from the lowest), in the order `reverse` says.
    pub(super) fn new(packed: &'a Packed, rank: Option<usize>, reverse: bool) -> Iter<'a> {
        let rank = rank.filter(|&rank| rank < packed.len);
        // From whichever end is nearer.
        let start = rank.and_then(|rank| {
            if rank <= packed.len / 2 {
                Iter::new_at(packed, 0, 0).into_slots().nth(rank).map(|slot| slot.start)
            } else {
                let back = framed::entry_before::<SCORE>(&packed.bytes, packed.bytes.len())?;
                let backward = Iter { packed, at: Some((packed.len - 1, back)), reverse: true };
                backward.into_slots().nth(packed.len - 1 - rank).map(|slot| slot.start)
            }
        });
        Iter { packed, at: rank.zip(start), reverse }
    }

    /// A walk from `slot` (none: an empty walk).
    fn from_slot(packed: &'a Packed, slot: Option<Slot<'a>>, reverse: bool) -> Iter<'a> {
        Iter { packed, at: slot.map(|slot| (slot.rank, slot.start)), reverse }
    }

    /// A forward walk from the entry of `rank` that starts at byte `start`.
    fn new_at(packed: &'a Packed, rank: usize, start: usize) -> Iter<'a> {
        Iter { packed, at: Some((rank, start)), reverse: false }
    }

    /// The walk's entries with where they lie.
    fn into_slots(self) -> impl Iterator<Item = Slot<'a>> {
        let mut walk = self;
        std::iter::from_fn(move || walk.next_slot())
    }

    fn next_slot(&mut self) -> Option<Slot<'a>> {
        let (rank, start) = self.at?;
        let bytes = &self.packed.bytes;
        let Some((member, score, end)) = entry_at(bytes, start) else {
            self.at = None;
            return None;
        };
        self.at = if self.reverse {
            rank.checked_sub(1).zip(framed::entry_before::<SCORE>(bytes, start))
        } else {
            Some((rank + 1, end)).filter(|&(next, _)| next < self.packed.len)
        };
        Some(Slot { rank, start, end, member, score })
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        self.next_slot().map(|slot| (slot.member, slot.score))
    }
}
