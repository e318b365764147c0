//! A sorted set while Redis 7.0 would hold it as a listpack (at most 128 members of at most 64
//! bytes): a vector of (member, score) in order, searched the way a listpack is.
//!
//! A skip list costs a node slot, a levels block and an index entry per member on top of the
//! member, and a header besides: 989 bytes of RSS for a set of 3 members of 64 bytes. Here a
//! member costs its `Bytes` and its score (40 bytes) beside its own bytes: 660 (Redis: 344).
//! Lookups by member are linear, as in a listpack; by rank and by position they are direct.
//! Scores are stored as a listpack stores them (`-0` as `0`).

use bytes::Bytes;

use super::{listpack_score, may_hold, Range};

#[derive(Debug, Clone, Default)]
pub(super) struct Packed {
    items: Vec<(Bytes, f64)>,
}

/// Whether (score, member) sorts before (other_score, other_member).
fn precedes(score: f64, member: &[u8], other_score: f64, other_member: &[u8]) -> bool {
    score < other_score || (score == other_score && member < other_member)
}

impl Packed {
    pub(super) fn from_sorted(items: impl Iterator<Item = (Bytes, f64)>) -> Packed {
        Packed { items: items.map(|(member, score)| (member, listpack_score(score))).collect() }
    }

    pub(super) fn into_items(self) -> Vec<(Bytes, f64)> {
        self.items
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn items(&self) -> &[(Bytes, f64)] {
        &self.items
    }

    fn position(&self, member: &[u8]) -> Option<usize> {
        self.items.iter().position(|(m, _)| m[..] == *member)
    }

    pub(super) fn score(&self, member: &[u8]) -> Option<f64> {
        self.position(member).and_then(|at| self.items.get(at)).map(|(_, score)| *score)
    }

    /// Adds a member that is not in the set.
    pub(super) fn insert_new(&mut self, member: Bytes, score: f64) {
        let score = listpack_score(score);
        let at = self.items.partition_point(|(m, s)| precedes(*s, m, score, &member));
        self.items.insert(at, (member, score));
    }

    /// Gives a member of the set a new score.
    pub(super) fn set_score(&mut self, member: &[u8], score: f64) {
        if let Some(at) = self.position(member) {
            let (member, _) = self.items.remove(at);
            self.insert_new(member, score);
        }
    }

    pub(super) fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let at = self.position(member)?;
        Some(self.items.remove(at).1)
    }

    pub(super) fn rank(&self, member: &[u8], reverse: bool) -> Option<usize> {
        let at = self.position(member)?;
        Some(if reverse { self.len() - 1 - at } else { at })
    }

    pub(super) fn get(&self, rank: usize) -> Option<(&Bytes, f64)> {
        self.items.get(rank).map(|(m, s)| (m, *s))
    }

    fn range_maybe_nonempty<R: Range>(&self, range: &R) -> bool {
        let (first, last) = (self.items.first(), self.items.last());
        may_hold(range, first.map(|(m, s)| (*s, &m[..])), last.map(|(m, s)| (*s, &m[..])))
    }

    /// The position of the first member in `range`, searched from the lowest as a listpack is.
    pub(super) fn first_in<R: Range>(&self, range: &R) -> Option<usize> {
        if !self.range_maybe_nonempty(range) {
            return None;
        }
        let at = self.items.iter().position(|(m, s)| range.gte_min(*s, m))?;
        self.items.get(at).filter(|(m, s)| range.lte_max(*s, m)).map(|_| at)
    }

    /// The position of the last member in `range`, searched from the highest.
    pub(super) fn last_in<R: Range>(&self, range: &R) -> Option<usize> {
        if !self.range_maybe_nonempty(range) {
            return None;
        }
        let at = self.items.iter().rposition(|(m, s)| range.lte_max(*s, m))?;
        self.items.get(at).filter(|(m, s)| range.gte_min(*s, m)).map(|_| at)
    }

    /// The run of members from the first in `range` while they stay in it.
    fn run_in<R: Range>(&self, range: &R) -> Option<(usize, usize)> {
        let first = self.first_in(range)?;
        let rest = self.items.get(first..).unwrap_or_default();
        Some((first, rest.iter().take_while(|(m, s)| range.lte_max(*s, m)).count()))
    }

    pub(super) fn count_in<R: Range>(&self, range: &R) -> usize {
        self.run_in(range).map_or(0, |(_, count)| count)
    }

    pub(super) fn remove_in<R: Range>(&mut self, range: &R) -> usize {
        let Some((first, count)) = self.run_in(range) else { return 0 };
        self.items.drain(first..first + count);
        count
    }

    /// Removes the members of ranks `start..=end` (clamped to the set); returns how many.
    pub(super) fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        if start > end || start >= self.len() {
            return 0;
        }
        let end = end.min(self.len() - 1);
        self.items.drain(start..=end);
        end - start + 1
    }

    /// Removes and returns up to `count` members from the lowest (or from the highest).
    pub(super) fn pop(&mut self, count: usize, max: bool) -> Vec<(Bytes, f64)> {
        let n = count.min(self.len());
        if max {
            let from = self.len() - n;
            self.items.drain(from..).rev().collect()
        } else {
            self.items.drain(..n).collect()
        }
    }

    pub(super) fn heap_size(&self) -> usize {
        let members: usize = self.items.iter().map(|(m, _)| m.len()).sum();
        self.items.capacity() * std::mem::size_of::<(Bytes, f64)>() + members
    }

    /// Check the order and that each member is there once (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        for pair in self.items.windows(2) {
            if let [(a, sa), (b, sb)] = pair {
                assert!(precedes(*sa, a, *sb, b), "order");
            }
        }
        let listpack_form = |s: f64| !s.is_nan() && s.to_bits() != (-0.0f64).to_bits();
        assert!(self.items.iter().all(|(_, s)| listpack_form(*s)), "a score a listpack cannot hold");
    }
}

/// A walk over a packed set's members from a position, forward or backward.
#[derive(Debug, Clone)]
pub(super) struct Iter<'a> {
    items: &'a [(Bytes, f64)],
    at: Option<usize>,
    reverse: bool,
}

impl<'a> Iter<'a> {
    pub(super) fn new(items: &'a [(Bytes, f64)], at: Option<usize>, reverse: bool) -> Iter<'a> {
        Iter { items, at: at.filter(|&at| at < items.len()), reverse }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Bytes, f64);

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.at?;
        let (member, score) = self.items.get(at)?;
        self.at = if self.reverse { at.checked_sub(1) } else { Some(at + 1).filter(|&n| n < self.items.len()) };
        Some((member, *score))
    }
}
