//! The hash table behind a large set or hash: entries keyed by a byte string, and a random
//! entry in expected constant time (SPOP, SRANDMEMBER, HRANDFIELD).
//!
//! hashbrown's `HashSet` and `HashMap` offer no way to a random entry but walking to it, which
//! made each SPOP of a 100,000-member set cost a walk over half of it (690 SPOPs a second
//! against Redis's 104,000). The raw `HashTable` lets a random bucket be looked at: as Redis's
//! `dictGetFairRandomKey` does, random buckets are tried until one holds an entry, and since
//! every entry fills exactly one bucket, each is equally likely. The table is kept at least an
//! eighth full (it shrinks after removals), so a pick takes at most eight tries on average.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rand::Rng;

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

/// Random buckets tried before a pick walks to a random entry instead: with the table at
/// least an eighth full, 64 misses in a row happen about once in 5,000 picks.
const RANDOM_TRIES: usize = 64;

/// Tables this small are never shrunk: what a shrink saves is not worth its rehash.
const SHRINK_FROM_BUCKETS: usize = 64;

#[derive(Clone, Debug, Default)]
pub struct ByteTable<T> {
    table: HashTable<T>,
    hasher: foldhash::fast::RandomState,
}

impl<T: Keyed> ByteTable<T> {
    pub fn with_capacity(capacity: usize) -> ByteTable<T> {
        ByteTable { table: HashTable::with_capacity(capacity), hasher: Default::default() }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn get(&self, key: &[u8]) -> Option<&T> {
        self.table.find(self.hasher.hash_one(key), |entry| entry.key() == key)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut T> {
        self.table.find_mut(self.hasher.hash_one(key), |entry| entry.key() == key)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Adds `entry` unless its key is there already; whether it was added.
    pub fn insert(&mut self, entry: T) -> bool {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(entry.key());
        match self.table.entry(hash, |e| e.key() == entry.key(), |e| hasher.hash_one(e.key())) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(entry);
                true
            }
        }
    }

    pub fn extend(&mut self, entries: impl IntoIterator<Item = T>) {
        for entry in entries {
            self.insert(entry);
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<T> {
        let found = self.table.find_entry(self.hasher.hash_one(key), |entry| entry.key() == key).ok();
        let removed = found.map(|occupied| occupied.remove().0);
        self.shrink_if_sparse();
        removed
    }

    pub fn retain(&mut self, keep: impl FnMut(&mut T) -> bool) {
        self.table.retain(keep);
        self.shrink_if_sparse();
    }

    pub fn iter(&self) -> hashbrown::hash_table::Iter<'_, T> {
        self.table.iter()
    }

    /// A uniformly random entry (see the module's comment).
    pub fn random(&self, rng: &mut impl Rng) -> Option<&T> {
        self.random_bucket(rng).and_then(|bucket| self.table.get_bucket(bucket))
    }

    /// Up to `count` distinct entries, chosen uniformly. Asked for most of the table, it walks
    /// the whole of it once; asked for a few, it picks them at random buckets (each bucket
    /// is taken once).
    pub fn sample(&self, count: usize, rng: &mut impl Rng) -> Vec<&T> {
        use rand::seq::IteratorRandom;
        if count.saturating_mul(3) >= self.len() {
            return self.iter().choose_multiple(rng, count);
        }
        let mut taken = crate::value::HashSet::<usize>::default();
        let mut picked = Vec::with_capacity(count);
        while picked.len() < count {
            let Some(bucket) = self.random_bucket(rng) else { break };
            if taken.insert(bucket) {
                picked.extend(self.table.get_bucket(bucket));
            }
        }
        picked
    }

    /// The bucket of a uniformly random entry, `None` if the table is empty.
    fn random_bucket(&self, rng: &mut impl Rng) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let buckets = self.table.num_buckets();
        let tried = (0..RANDOM_TRIES).map(|_| rng.gen_range(0..buckets)).find(|&b| self.table.get_bucket(b).is_some());
        tried.or_else(|| {
            // Unlucky: walk to a random entry instead (the table holds at least one).
            let nth = rng.gen_range(0..self.table.len());
            self.table.iter_buckets().nth(nth)
        })
    }

    /// Shrinks the table once under an eighth of its buckets hold entries, to about twice
    /// what it holds: random picks stay cheap, and memory follows the content as Redis's
    /// dicts shrink below a tenth full. (Shrinking again needs the content to fall by a
    /// further factor of about three, so removals pay for the rehashes.)
    fn shrink_if_sparse(&mut self) {
        let buckets = self.table.num_buckets();
        if buckets >= SHRINK_FROM_BUCKETS && self.table.len() * 8 < buckets {
            let hasher = &self.hasher;
            self.table.shrink_to(self.table.len() * 2, |entry| hasher.hash_one(entry.key()));
        }
    }
}

impl<T> IntoIterator for ByteTable<T> {
    type Item = T;
    type IntoIter = hashbrown::hash_table::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.table.into_iter()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn members(n: usize) -> ByteTable<KeyBytes> {
        let mut table = ByteTable::with_capacity(0);
        table.extend((0..n).map(|i| KeyBytes::from_slice(format!("m{i}").as_bytes())));
        table
    }

    /// Every entry comes up about as often as the others, in a full table and in one that
    /// removals left sparse.
    #[test]
    fn random_picks_are_uniform() {
        let mut rng = rand::thread_rng();
        let mut table = members(10_000);
        for round in 0..2 {
            let mut seen = std::collections::HashMap::new();
            let picks = table.len() * 200;
            for _ in 0..picks {
                *seen.entry(table.random(&mut rng).unwrap().to_vec()).or_insert(0usize) += 1;
            }
            assert_eq!(seen.len(), table.len(), "round {round}: every entry picked");
            let (low, high) = (seen.values().min().unwrap(), seen.values().max().unwrap());
            // 200 expected each: a spread of 100..300 is over seven standard deviations.
            assert!(*low > 100 && *high < 300, "round {round}: picks per entry {low}..{high}");
            table.retain(|m| m.ends_with(b"7"));
        }
    }

    /// Removals shrink the table, so that a pick never searches mostly empty buckets.
    #[test]
    fn removals_keep_the_table_an_eighth_full() {
        let mut table = members(100_000);
        for i in 0..99_990 {
            assert!(table.remove(format!("m{i}").as_bytes()).is_some());
            assert!(table.table.num_buckets() < SHRINK_FROM_BUCKETS || table.len() * 8 >= table.table.num_buckets());
        }
        assert_eq!(table.len(), 10);
        assert!(table.contains(b"m99999") && !table.contains(b"m0"));
    }

    /// A sample is distinct entries, as many as asked for or all there are.
    #[test]
    fn samples_are_distinct() {
        let mut rng = rand::thread_rng();
        let table = members(1_000);
        for count in [0, 1, 10, 333, 334, 999, 1_000, 5_000] {
            let sample = table.sample(count, &mut rng);
            let distinct: std::collections::HashSet<_> = sample.iter().map(|m| m.to_vec()).collect();
            assert_eq!(sample.len(), count.min(1_000), "count {count}");
            assert_eq!(distinct.len(), sample.len(), "count {count}");
        }
    }
}
