//! The hash table behind a large set or hash: entries keyed by a byte string, a random entry
//! in expected constant time (SPOP, SRANDMEMBER, HRANDFIELD), and a cursor that pages through
//! the entries in time proportional to the page (SSCAN, HSCAN).
//!
//! # Structure and why
//!
//! Entries live in a slab, and a `hashbrown::HashTable<u32>` finds an entry's slot by the
//! hash of its key (the sorted set's skip list keeps its nodes the same way, `zset.rs`). What
//! the slot numbers give that hashbrown's own buckets do not:
//!
//! * **A scan cursor that survives changes.** An open-addressing table moves entries when it
//!   grows or clears its tombstones, and an entry need not sit at its hash's home, so Redis's
//!   reverse-binary bucket cursor does not carry over. Here an entry keeps its slot until the
//!   slab is packed, and packing only ever moves entries *down* (the top entries fill the
//!   lowest holes: `slab.rs`). Scans walk the slots downward: a cursor `c` means "slots
//!   below `c` are still to come", so an entry present for the whole scan stays below the
//!   cursor until it is visited, wherever packing moves it, and is returned at least once,
//!   as SCAN promises (one moved from above the cursor to below it comes twice, which SCAN
//!   allows). Before, each HSCAN/SSCAN call hashed every member to find its page: 30 ms of
//!   server time a call at 1,000,000 members, holding the shard.
//! * **Random picks.** A random slot is tried until one holds an entry, as Redis's
//!   `dictGetFairRandomKey` tries buckets; every entry fills exactly one slot, so each is
//!   equally likely.
//!
//! New entries go on top; a removal leaves a hole, and the slab is packed once it is more than
//! half holes (so a random pick takes at most two tries on average, and a packing is paid for
//! by the removals since the last). Slots grow with the index, to as many as it has room for.
//! The cost against entries kept in hashbrown's buckets: one more memory access per lookup
//! (measurable only once the table is far larger than the caches), and about the same memory
//! (a slot is an entry, as a bucket was; the index adds 5 bytes a bucket, where the buckets
//! had a control byte each). The slab is a `ThinVec`, one pointer, so that the table is no
//! larger in a set or hash value than hashbrown's was, and every key is hashed with one
//! process-wide random seed instead of one per table.

use std::hash::BuildHasher;
use std::sync::LazyLock;

use hashbrown::HashTable;
use rand::Rng;
use thin_vec::ThinVec;

use crate::small_bytes::KeyBytes;

/// An entry of a [`ByteTable`]: what it is found by.
pub trait Keyed {
    fn key(&self) -> &[u8];
}

/// A set member.
impl Keyed for KeyBytes {
    fn key(&self) -> &[u8] {
        self
    }
}

/// A hash field and its value.
impl Keyed for (KeyBytes, KeyBytes) {
    fn key(&self) -> &[u8] {
        &self.0
    }
}

/// Bytes an entry costs beside its own slot: its slot number and control byte in the index,
/// which hashbrown keeps at most 7/8 full.
pub const INDEX_BYTES_PER_ENTRY: usize = (4 + 1) * 8 / 7;

/// Random slots tried before a pick walks to a random entry instead.
const RANDOM_TRIES: usize = 64;

/// Empty slots a scan page may pass for each entry it was asked for, as Redis's SCAN passes
/// at most ten empty buckets per COUNT.
const SCAN_EMPTY_PER_COUNT: usize = 10;

/// The keys' hash function, one random seed for the process.
static HASHER: LazyLock<foldhash::fast::FixedState> =
    LazyLock::new(|| foldhash::fast::FixedState::with_seed(rand::random()));

/// A key's hash under the process's seed; sorted sets index their members with it too.
pub(crate) fn hash(key: &[u8]) -> u64 {
    HASHER.hash_one(key)
}

#[derive(Clone, Debug, Default)]
pub struct ByteTable<T> {
    /// The entries by slot; `None` is a hole a removal left.
    slots: ThinVec<Option<T>>,
    /// Slot numbers, by the hash of their entry's key.
    index: HashTable<u32>,
}

impl<T: Keyed> ByteTable<T> {
    pub fn with_capacity(capacity: usize) -> ByteTable<T> {
        ByteTable { slots: ThinVec::with_capacity(capacity), index: HashTable::with_capacity(capacity) }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn get(&self, key: &[u8]) -> Option<&T> {
        self.entry(*self.index.find(hash(key), |&slot| self.key_at(slot) == Some(key))?)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut T> {
        let slot = *self.index.find(hash(key), |&slot| self.key_at(slot) == Some(key))?;
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Adds `entry` unless its key is there already; whether it was added.
    pub fn insert(&mut self, entry: T) -> bool {
        let ByteTable { slots, index } = self;
        let key_at = |slot: &u32| slot_key(slots, *slot);
        let found = index.entry(
            hash(entry.key()),
            |slot| key_at(slot) == Some(entry.key()),
            |slot| hash(key_at(slot).unwrap_or_default()),
        );
        let hashbrown::hash_table::Entry::Vacant(vacant) = found else { return false };
        vacant.insert(u32::try_from(slots.len()).unwrap_or(u32::MAX));
        if slots.len() == slots.capacity() {
            // As many slots as the index has room for: doubling on its own, the slab would be
            // up to half unused beside an index 7/8 full. (Holes can make the slab longer
            // than the index's room: then it doubles.)
            match index.capacity().checked_sub(slots.len()) {
                Some(room) if room > 0 => slots.reserve_exact(room),
                _ => slots.reserve(1),
            }
        }
        slots.push(Some(entry));
        true
    }

    pub fn extend(&mut self, entries: impl IntoIterator<Item = T>) {
        for entry in entries {
            self.insert(entry);
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<T> {
        let ByteTable { slots, index } = self;
        let (slot, _) = index.find_entry(hash(key), |&slot| slot_key(slots, slot) == Some(key)).ok()?.remove();
        let removed = slots.get_mut(slot as usize).and_then(Option::take);
        self.tidy();
        removed
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&mut T) -> bool) {
        let ByteTable { slots, index } = self;
        index.retain(|&mut slot| {
            let Some(place) = slots.get_mut(slot as usize) else { return false };
            let kept = place.as_mut().is_some_and(&mut keep);
            if !kept {
                *place = None;
            }
            kept
        });
        self.tidy();
    }

    /// The entries, in slot order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { slots: self.slots.iter(), left: self.len() }
    }

    /// A uniformly random entry (see the module's comment).
    pub fn random(&self, rng: &mut impl Rng) -> Option<&T> {
        self.random_slot(rng).and_then(|slot| self.entry(slot))
    }

    /// Up to `count` distinct entries, chosen uniformly. Asked for most of the table, it walks
    /// the whole of it once; asked for a few, it picks them at random slots (each slot is
    /// taken once).
    pub fn sample(&self, count: usize, rng: &mut impl Rng) -> Vec<&T> {
        use rand::seq::IteratorRandom;
        // A client's count: both ways below reserve room for that many first.
        let count = count.min(self.len());
        if count.saturating_mul(3) >= self.len() {
            return self.iter().choose_multiple(rng, count);
        }
        let mut taken = crate::value::HashSet::<u32>::default();
        let mut picked = Vec::with_capacity(count);
        while picked.len() < count {
            let Some(slot) = self.random_slot(rng) else { break };
            if taken.insert(slot) {
                picked.extend(self.entry(slot));
            }
        }
        picked
    }

    /// One page of a scan (see the module's comment): visits entries downward from below
    /// `cursor` (0 starts at the top) until `count` were visited or ten times as many empty
    /// slots passed, and returns the cursor to continue from, 0 once the bottom is reached.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut visit: impl FnMut(&'a T)) -> u64 {
        let below = match usize::try_from(cursor) {
            Ok(0) | Err(_) => self.slots.len(),
            Ok(cursor) => cursor.min(self.slots.len()),
        };
        let empty_budget = count.saturating_mul(SCAN_EMPTY_PER_COUNT).max(1);
        let (mut visited, mut passed_empty) = (0usize, 0usize);
        let mut next = below;
        while next > 0 && visited < count.max(1) && passed_empty < empty_budget {
            next -= 1;
            match self.entry(next as u32) {
                Some(entry) => {
                    visit(entry);
                    visited += 1;
                }
                None => passed_empty += 1,
            }
        }
        next as u64
    }

    fn entry(&self, slot: u32) -> Option<&T> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn key_at(&self, slot: u32) -> Option<&[u8]> {
        slot_key(&self.slots, slot)
    }

    /// The slot of a uniformly random entry, `None` if the table is empty.
    fn random_slot(&self, rng: &mut impl Rng) -> Option<u32> {
        if self.len() == 0 {
            return None;
        }
        let slots = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        let tried = (0..RANDOM_TRIES).map(|_| rng.gen_range(0..slots)).find(|&slot| self.entry(slot).is_some());
        tried.or_else(|| {
            // Unlucky (or a short slab of holes): walk to a random entry instead.
            let nth = rng.gen_range(0..self.len());
            self.slots.iter().enumerate().filter(|(_, place)| place.is_some()).nth(nth).map(|(slot, _)| slot as u32)
        })
    }

    /// After removals: drops the holes on top, packs the slab once it is more than half holes
    /// (the top entries move down into the lowest holes, never up: see the module's comment on
    /// scans) and shrinks the index once it is mostly empty (`slab.rs`).
    fn tidy(&mut self) {
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        if crate::slab::is_sparse(self.len(), self.slots.len()) {
            self.pack();
        }
        let ByteTable { slots, index } = self;
        crate::slab::shrink_index(index, |slot| hash(slot_key(slots, slot).unwrap_or_default()));
    }

    fn pack(&mut self) {
        let ByteTable { slots, index } = self;
        crate::slab::pack(slots, |entry, from, to| {
            if let Some(at) = index.find_mut(hash(entry.key()), |&slot| slot == from) {
                *at = to;
            }
        });
        slots.truncate(index.len());
        slots.shrink_to_fit();
    }
}

/// The key of the entry in `slot`, if it holds one.
fn slot_key<T: Keyed>(slots: &[Option<T>], slot: u32) -> Option<&[u8]> {
    slots.get(slot as usize).and_then(Option::as_ref).map(Keyed::key)
}

/// The iterator of [`ByteTable::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    slots: std::slice::Iter<'a, Option<T>>,
    left: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        let entry = self.slots.by_ref().find_map(Option::as_ref)?;
        self.left -= 1;
        Some(entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> IntoIterator for ByteTable<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<thin_vec::IntoIter<Option<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.slots.into_iter().flatten()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn name(i: usize) -> KeyBytes {
        KeyBytes::from_slice(format!("m{i}").as_bytes())
    }

    fn members(n: usize) -> ByteTable<KeyBytes> {
        let mut table = ByteTable::with_capacity(0);
        table.extend((0..n).map(name));
        table
    }

    /// Every entry is found by its key in its own slot, and the slab ends with an entry.
    fn check(table: &ByteTable<KeyBytes>) {
        let mut slots = HashSet::new();
        for entry in table.iter() {
            let slot = *table.index.find(hash(entry), |&s| table.key_at(s) == Some(entry)).unwrap();
            assert!(slots.insert(slot), "slot {slot} twice");
        }
        assert_eq!(slots.len(), table.len());
        assert!(table.slots.last().is_none_or(Option::is_some), "a hole on top");
    }

    /// Every entry comes up about as often as the others, in a full table and in one that
    /// removals left with holes.
    #[test]
    fn random_picks_are_uniform() {
        let mut rng = rand::thread_rng();
        let mut table = members(10_000);
        for (round, keep) in [b"7", b"0"].into_iter().enumerate() {
            let mut seen = std::collections::HashMap::new();
            let picks = table.len() * 200;
            for _ in 0..picks {
                *seen.entry(table.random(&mut rng).unwrap().to_vec()).or_insert(0usize) += 1;
            }
            assert_eq!(seen.len(), table.len(), "round {round}: every entry picked");
            let (low, high) = (seen.values().min().unwrap(), seen.values().max().unwrap());
            // 200 expected each: a spread of 100..300 is over seven standard deviations.
            assert!(*low > 100 && *high < 300, "round {round}: picks per entry {low}..{high}");
            // Then a tenth goes, leaving holes all through the slab for the next round.
            table.retain(|m| !m.ends_with(keep));
            check(&table);
        }
    }

    /// Removals pack the slab, so that a pick never searches mostly empty slots, and every
    /// entry is still found where packing moved it; new entries go on top.
    #[test]
    fn removals_keep_the_slab_at_least_half_full() {
        let mut table = members(100_000);
        for i in (0..99_990).rev().filter(|i| i % 3 != 0).chain((0..99_990).filter(|i| i % 3 == 0)) {
            assert!(table.remove(format!("m{i}").as_bytes()).is_some());
            assert!(!crate::slab::is_sparse(table.len(), table.slots.len()));
        }
        check(&table);
        assert_eq!(table.len(), 10);
        assert!(table.index.capacity() < 64, "the index shrank: room for {}", table.index.capacity());
        assert!((99_990..100_000).all(|i| table.contains(format!("m{i}").as_bytes())) && !table.contains(b"m0"));
        let mut table = members(1_000);
        assert!(table.remove(b"m10").is_some() && table.remove(b"m999").is_some());
        assert_eq!(table.slots.len(), 999, "the hole on top dropped, the one below kept");
        table.extend([name(1_000), name(1_001)]);
        assert_eq!(table.slots.len(), 1_001);
        check(&table);
    }

    /// A sample is distinct entries, as many as asked for or all there are.
    #[test]
    fn samples_are_distinct() {
        let mut rng = rand::thread_rng();
        let table = members(1_000);
        for count in [0, 1, 10, 333, 334, 999, 1_000, 5_000] {
            let sample = table.sample(count, &mut rng);
            let distinct: HashSet<_> = sample.iter().map(|m| m.to_vec()).collect();
            assert_eq!(sample.len(), count.min(1_000), "count {count}");
            assert_eq!(distinct.len(), sample.len(), "count {count}");
        }
    }

    /// A scan returns every entry present for the whole of it, while others come and go
    /// between its pages, and a removal packs the slab when the cursor is low: the packing
    /// moves entries from above the cursor to the holes around and below it.
    #[test]
    fn a_scan_returns_every_entry_that_stays_while_the_table_packs() {
        use rand::seq::SliceRandom;
        let mut rng = rand::thread_rng();
        let (stay, leave, count) = (200, 2_800, 20);
        for round in 0..30 {
            let mut names: Vec<String> = (0..stay).map(|i| format!("m{i}")).collect();
            names.extend((0..leave).map(|i| format!("gone{i}")));
            names.shuffle(&mut rng);
            let mut table = ByteTable::with_capacity(0);
            table.extend(names.iter().map(|n| KeyBytes::from_slice(n.as_bytes())));
            // Removed in an order of their own: in slot order the top would empty first, and
            // packing would have nothing to move.
            let mut leaving: Vec<&String> = names.iter().filter(|n| n.starts_with("gone")).collect();
            leaving.shuffle(&mut rng);
            let (mut cursor, mut seen, mut packed_at) = (0, HashSet::new(), None);
            loop {
                let mut page = 0;
                cursor = table.scan(cursor, count, |m| {
                    seen.insert(m.to_vec());
                    page += 1;
                });
                assert!(page <= count, "a page of {page} entries for COUNT {count}");
                if cursor == 0 {
                    break;
                }
                table.insert(KeyBytes::from_slice(format!("new{}", seen.len()).as_bytes()));
                if packed_at.is_none() && cursor < 300 {
                    // Down to just under half of the slab: the last removal packs it.
                    let slots = table.slots.len();
                    while table.len() * 2 >= slots {
                        table.remove(leaving.pop().unwrap().as_bytes());
                    }
                    assert_eq!(table.slots.len(), table.len(), "round {round}: packed");
                    packed_at = Some((cursor, table.len()));
                }
            }
            check(&table);
            let (cursor, len) = packed_at.unwrap();
            assert!(cursor < len as u64, "round {round}: the cursor ({cursor}) below the packed slab ({len})");
            let missed = (0..stay).filter(|i| !seen.contains(format!("m{i}").as_bytes())).count();
            assert_eq!(missed, 0, "round {round}: entries that stayed were missed");
        }
    }

    /// A cursor from beyond the slab (an older, longer one) continues from its top; an empty
    /// table ends at once.
    #[test]
    fn a_scan_clamps_its_cursor_to_the_slab() {
        let table = members(100);
        let mut seen = 0;
        let mut cursor = table.scan(u64::MAX, 1_000, |_| seen += 1);
        assert_eq!((cursor, seen), (0, 100));
        cursor = table.scan(0, 30, |_| {});
        assert_eq!(cursor, 70);
        assert_eq!(members(0).scan(0, 10, |_| unreachable!()), 0);
    }

    /// The table costs a set or hash value no more room than hashbrown's own table did.
    #[test]
    fn the_table_is_five_words() {
        assert_eq!(std::mem::size_of::<ByteTable<KeyBytes>>(), 40);
        assert_eq!(std::mem::size_of::<Option<(KeyBytes, KeyBytes)>>(), 48);
    }
}
