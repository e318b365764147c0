//! The keyspace: shards of databases of entries.
//!
//! Keys are spread over `2^n` shards by hash, each behind its own mutex, so commands on
//! different keys run in parallel on different cores and nothing global is locked on the
//! GET/SET path. A shard holds its slice of every logical database (`SELECT 0..15`).
//!
//! Inside a database slice, entries live in a slab (`slots`) and a hash table maps keys to
//! slot numbers; a freed slot is reused by a new key. A key keeps its slot while it lives,
//! until the slab, once more than half holes, is packed (`slab.rs`): the top keys move down
//! into the lowest holes and the slab shrinks to what it holds (its index too, once mostly
//! empty), so memory follows the keys down after a peak, as Redis's dicts shrink. Packing
//! runs only between commands (from the active expiry cycle), since a command may hold a slot
//! number while it runs. SCAN walks each slice's slots downward, so the plain integer cursor
//! keeps Redis's guarantee: every key present for the whole iteration is returned.
//! The expiry deadline sits in the entry itself, so a TTL costs no second map entry.
//!
//! A deleted key's slot is not given back to the allocator (its memory goes only when the
//! slab is packed), but the next new key takes it without allocating: the keyspace counts
//! its free slots ([`FreeSlots`]) so that `maxmemory` counts them as free, as Redis frees a
//! deleted key's dict entry at once. Otherwise evicting a key whose name and value fit in its
//! slot would free nothing the limit sees, and eviction would go on until the slab packed.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard};

use crate::host::Host;
use crate::small_bytes::KeyBytes;
use crate::value::Value;

/// No deadline.
pub const NO_EXPIRY: u64 = 0;

/// One key and its value.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: KeyBytes,
    pub value: Value,
    /// Absolute deadline in Unix milliseconds, or [`NO_EXPIRY`].
    pub expire_at: u64,
    /// Last access, Unix seconds (wraps in 2106), for OBJECT IDLETIME and LRU eviction.
    pub accessed: u32,
    /// How the value was built, for OBJECT ENCODING.
    pub encoding: crate::value::Encoding,
}

impl Entry {
    pub fn new(key: &[u8], value: Value) -> Entry {
        Entry {
            key: KeyBytes::from_slice(key),
            value,
            expire_at: NO_EXPIRY,
            accessed: 0,
            encoding: crate::value::Encoding::Auto,
        }
    }

    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at != NO_EXPIRY && self.expire_at <= now
    }

    pub fn ttl(&self) -> Option<u64> {
        (self.expire_at != NO_EXPIRY).then_some(self.expire_at)
    }
}

/// The free slots of every slice of a keyspace, counted together.
#[derive(Debug, Clone, Default)]
pub struct FreeSlots(Arc<AtomicUsize>);

impl FreeSlots {
    fn add(&self, slots: usize) {
        self.0.fetch_add(slots, Ordering::Relaxed);
    }

    fn remove(&self, slots: usize) {
        self.0.fetch_sub(slots, Ordering::Relaxed);
    }

    /// The bytes those slots take.
    pub fn bytes(&self) -> usize {
        self.0.load(Ordering::Relaxed) * std::mem::size_of::<Option<Entry>>()
    }
}

/// One shard's slice of one logical database.
#[derive(Debug, Default)]
pub struct Db {
    index: HashTable<u32>,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    volatile: usize,
    /// Where `free`'s length is counted.
    free_slots: FreeSlots,
}

impl Drop for Db {
    fn drop(&mut self) {
        self.free_slots.remove(self.free.len());
    }
}

impl Db {
    fn counted_in(free_slots: &FreeSlots) -> Db {
        Db { index: HashTable::new(), slots: Vec::new(), free: Vec::new(), volatile: 0, free_slots: free_slots.clone() }
    }

    /// Leaves this slice empty and returns what it held (FLUSHDB, FLUSHALL).
    pub fn take(&mut self) -> Db {
        std::mem::replace(self, Db::counted_in(&self.free_slots))
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Keys that carry a deadline.
    pub fn volatile_len(&self) -> usize {
        self.volatile
    }

    /// Bytes of this table's own structures (index, entry slots, free list), keys and values
    /// aside; an entry's fixed part (deadline, access stamp, inline value header) lives in its
    /// slot, so it is counted here. By capacities: hashbrown keeps up to an eighth of its
    /// buckets spare beyond that, so this is slightly low.
    pub fn table_bytes(&self) -> usize {
        let index = self.index.capacity() * (std::mem::size_of::<u32>() + 1);
        let slots = self.slots.capacity() * std::mem::size_of::<Option<Entry>>();
        index + slots + self.free.capacity() * std::mem::size_of::<u32>()
    }

    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    pub fn slot(&self, pos: usize) -> Option<&Entry> {
        self.slots.get(pos).and_then(Option::as_ref)
    }

    pub fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(hash, |&i| slot_key(slots, i) == Some(key)).copied()
    }

    pub fn get(&self, pos: u32) -> Option<&Entry> {
        self.slot(pos as usize)
    }

    pub fn get_mut(&mut self, pos: u32) -> Option<&mut Entry> {
        self.slots.get_mut(pos as usize).and_then(Option::as_mut)
    }

    /// Change a deadline, keeping the volatile count right.
    pub fn set_expiry(&mut self, pos: u32, expire_at: u64) {
        let Some(entry) = self.get_mut(pos) else {
            return;
        };
        let before = entry.expire_at != NO_EXPIRY;
        entry.expire_at = expire_at;
        let after = expire_at != NO_EXPIRY;
        match (before, after) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
    }

    /// Add an entry whose key is not present.
    pub fn insert_new(&mut self, hash: u64, entry: Entry, hasher: &impl BuildHasher) -> u32 {
        if entry.expire_at != NO_EXPIRY {
            self.volatile += 1;
        }
        let pos = match self.free.pop() {
            Some(pos) => {
                self.free_slots.remove(1);
                if let Some(slot) = self.slots.get_mut(pos as usize) {
                    *slot = Some(entry);
                }
                pos
            }
            None => {
                self.slots.push(Some(entry));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(hash, pos, |&i| slot_key(slots, i).map_or(0, |k| hasher.hash_one(k)));
        pos
    }

    pub fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        let slots = &self.slots;
        let found = self.index.find_entry(hash, |&i| slot_key(slots, i) == Some(key));
        let (pos, _) = found.ok()?.remove();
        self.take_slot(pos)
    }

    /// Packs the slab once it is more than half holes (see the module's comment). Only
    /// between commands: the keys' slot numbers change.
    pub fn pack_if_sparse(&mut self, hasher: &impl BuildHasher) {
        if !crate::slab::is_sparse(self.len(), self.slots.len()) {
            return;
        }
        let Db { index, slots, free, .. } = self;
        crate::slab::pack(slots, |entry, from, to| {
            if let Some(at) = index.find_mut(hasher.hash_one(&entry.key[..]), |&pos| pos == from) {
                *at = to;
            }
        });
        slots.truncate(index.len());
        slots.shrink_to_fit();
        self.free_slots.remove(free.len());
        *free = Vec::new();
        crate::slab::shrink_index(index, |pos| slot_key(slots, pos).map_or(0, |k| hasher.hash_one(k)));
    }

    fn take_slot(&mut self, pos: u32) -> Option<Entry> {
        let entry = self.slots.get_mut(pos as usize)?.take()?;
        if entry.expire_at != NO_EXPIRY {
            self.volatile -= 1;
        }
        self.free.push(pos);
        self.free_slots.add(1);
        if self.index.is_empty() {
            // Nothing left to keep stable for SCAN: give the memory back.
            *self = Db::counted_in(&self.free_slots);
        }
        Some(entry)
    }
}

fn slot_key(slots: &[Option<Entry>], pos: u32) -> Option<&[u8]> {
    slots.get(pos as usize).and_then(Option::as_ref).map(|e| &e.key[..])
}

/// A shard: its slice of every database, and the log positions of its latest writes.
#[derive(Debug)]
pub struct Shard {
    pub dbs: Box<[Db]>,
    /// Sequence number of the last logged batch that wrote here. A reply that read the
    /// whole shard (DBSIZE, SCAN, a script) must not leave before that batch is durable.
    last_write_seq: u64,
    /// The log positions a reply that read given keys waits for: see [`Shard::key_wait`].
    writes: KeyWrites,
    /// The active expiry cycle's place and findings, per database.
    pub expiry: Box<[ExpiryCycle]>,
}

impl Shard {
    fn new(databases: usize, free_slots: &FreeSlots) -> Shard {
        Shard {
            dbs: (0..databases).map(|_| Db::counted_in(free_slots)).collect(),
            last_write_seq: 0,
            writes: KeyWrites::default(),
            expiry: vec![ExpiryCycle::default(); databases].into_boxed_slice(),
        }
    }

    /// A batch logged as `seq` wrote the key hashed `hash` (in any database).
    pub fn note_key_write(&mut self, hash: u64, seq: u64) {
        self.last_write_seq = self.last_write_seq.max(seq);
        match self.writes.by_key.get_mut(KeyWrites::bucket(hash)) {
            Some(bucket) => *bucket = (*bucket).max(seq),
            None => self.writes.unnamed = self.writes.unnamed.max(seq),
        }
    }

    /// A batch logged as `seq` wrote keys here it does not name one by one (a transaction, a
    /// script, FLUSHALL): every reply that reads here waits for it.
    pub fn note_shard_write(&mut self, seq: u64) {
        self.last_write_seq = self.last_write_seq.max(seq);
        self.writes.unnamed = self.writes.unnamed.max(seq);
    }

    /// The batch a reply that read the whole shard waits for.
    pub fn shard_wait(&self) -> u64 {
        self.last_write_seq
    }

    /// The batch a reply that read the key hashed `hash` waits for: the last write to it,
    /// to a key sharing its bucket, or to keys not named. Not every write to the shard: a
    /// read need not wait for the fsync of another key's write (and, while the disk refuses
    /// writes, need not hang behind one that cannot be made durable).
    pub fn key_wait(&self, hash: u64) -> u64 {
        let by_key = self.writes.by_key.get(KeyWrites::bucket(hash)).copied();
        self.writes.unnamed.max(by_key.unwrap_or(self.last_write_seq))
    }
}

/// A shard's latest writes by key, as far as the replies that read keys need them: the last
/// sequence number per bucket of key hashes, and the last one of writes that named no keys.
#[derive(Debug)]
pub(crate) struct KeyWrites {
    by_key: Box<[u64; KEY_WRITE_BUCKETS]>,
    unnamed: u64,
}

/// Buckets per shard (64 shards: 16,384 in all). A bucket shared by two keys makes a read of
/// one wait for a write of the other, which costs time, never correctness: 1,600 writes in
/// flight (50 clients, pipelines of 32) leave nine reads in ten free.
const KEY_WRITE_BUCKETS: usize = 256;

impl Default for KeyWrites {
    fn default() -> Self {
        KeyWrites { by_key: Box::new([0; KEY_WRITE_BUCKETS]), unnamed: 0 }
    }
}

impl KeyWrites {
    /// Bits 40..48 of the hash: the shard takes bits 32.. and the table the lowest and top
    /// ones, so keys of one shard spread over its buckets.
    pub(crate) fn bucket(hash: u64) -> usize {
        ((hash >> 40) as usize) % KEY_WRITE_BUCKETS
    }
}

/// What the active expiry cycle keeps of one database of a shard between its runs.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExpiryCycle {
    /// The slot it resumes at.
    pub cursor: usize,
    /// Estimated mean time to live of the keys with a deadline, in milliseconds: INFO's
    /// `avg_ttl`, a moving average over what each run saw, as Redis estimates it.
    pub avg_ttl_ms: u64,
}

impl ExpiryCycle {
    /// Folds in one run's mean, with Redis's weight (a fiftieth for each run), so that
    /// the figure follows the keyspace without swinging with one run's sample.
    pub fn observe_ttl(&mut self, mean_ms: u64) {
        if self.avg_ttl_ms == 0 {
            self.avg_ttl_ms = mean_ms;
        }
        self.avg_ttl_ms = (self.avg_ttl_ms / 50) * 49 + mean_ms / 50;
    }
}

/// How long a command waits for a shard before the wait counts as long: contention between
/// commands lasts microseconds.
const LONG_LOCK_WAIT: Duration = Duration::from_millis(1);
/// How often a long wait for a shard asks whether to give up: a script passing the busy
/// threshold is answered within this.
const GIVE_UP_POLL: Duration = Duration::from_millis(10);

/// All shards.
#[derive(Debug)]
pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    shard_bits: u32,
    databases: usize,
    hasher: foldhash::fast::RandomState,
    free_slots: FreeSlots,
}

impl Keyspace {
    /// `shard_bits` = log2 of the shard count.
    pub fn new(databases: usize, shard_bits: u32) -> Keyspace {
        let count = 1usize << shard_bits;
        let free_slots = FreeSlots::default();
        Keyspace {
            shards: (0..count).map(|_| Mutex::new(Shard::new(databases, &free_slots))).collect(),
            shard_bits,
            databases,
            hasher: foldhash::fast::RandomState::default(),
            free_slots,
        }
    }

    /// Bytes of entry slots that deleted keys left and new keys will take without
    /// allocating: free memory, as far as `maxmemory` is concerned.
    pub fn free_slot_bytes(&self) -> usize {
        self.free_slots.bytes()
    }

    pub fn databases(&self) -> usize {
        self.databases
    }

    /// Why data of database `db` cannot be loaded, if the server has fewer databases: a
    /// start with a smaller `--databases` than the data was written with.
    pub fn missing_database(&self, db: usize) -> Option<String> {
        (db >= self.databases).then(|| {
            format!(
                "data is in database {db} but the server has {} databases (start it with --databases {})",
                self.databases,
                db + 1
            )
        })
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn hasher(&self) -> &foldhash::fast::RandomState {
        &self.hasher
    }

    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard a hash belongs to. Bits 32.. are used because the hash table itself uses the
    /// lowest bits (bucket) and the top seven (control byte).
    pub fn shard_of(&self, hash: u64) -> usize {
        if self.shard_bits == 0 {
            return 0;
        }
        ((hash >> 32) as usize) & ((1usize << self.shard_bits) - 1)
    }

    pub fn lock(&self, shard: usize) -> Option<MutexGuard<'_, Shard>> {
        self.shards.get(shard).map(Mutex::lock)
    }

    /// The shard, unless another thread still holds it at `deadline`.
    pub fn lock_until(&self, shard: usize, deadline: Instant) -> Option<MutexGuard<'_, Shard>> {
        self.shards.get(shard)?.try_lock_until(deadline)
    }

    /// The shard if no one holds it (work that can come back later skips a busy shard).
    pub fn try_lock(&self, shard: usize) -> Option<MutexGuard<'_, Shard>> {
        self.shards.get(shard)?.try_lock()
    }

    /// The shard, unless `give_up` says so while it waits for it (asked every
    /// `GIVE_UP_POLL`): for work that must not wait out a script holding every shard.
    pub fn lock_unless(&self, shard: usize, give_up: &dyn Fn() -> bool) -> Option<MutexGuard<'_, Shard>> {
        let mutex = self.shards.get(shard)?;
        if let Some(guard) = mutex.try_lock() {
            return Some(guard);
        }
        while !give_up() {
            if let Some(guard) = mutex.try_lock_for(GIVE_UP_POLL) {
                return Some(guard);
            }
        }
        None
    }

    /// Locks a shard for a command, or gives up (`None`) once `give_up` says so. A wait past
    /// `LONG_LOCK_WAIT` means another thread holds the shard for long (a script holds every
    /// shard while it runs, for as long as it runs): the rest of the wait goes on inside
    /// [`Host::wait_long`], so that the server can move the waiting thread's other
    /// connections elsewhere meanwhile, asking `give_up` every `GIVE_UP_POLL`.
    pub fn lock_for_command(
        &self,
        shard: usize,
        host: &dyn Host,
        give_up: &dyn Fn() -> bool,
    ) -> Option<MutexGuard<'_, Shard>> {
        // `None` must mean only "gave up": a caller asks again while a script ends and starts.
        let Some(mutex) = self.shards.get(shard) else { unreachable_shard(shard) };
        if let Some(guard) = mutex.try_lock_for(LONG_LOCK_WAIT) {
            return Some(guard);
        }
        let mut waited = None;
        host.wait_long(&mut || waited = self.lock_unless(shard, give_up));
        waited
    }

    /// Every shard for a command, locked in index order (the global lock order, which rules
    /// out deadlock), each as [`Keyspace::lock_for_command`] locks it; `None`, holding none,
    /// if it gave up on one.
    pub fn lock_all_for_command(
        &self,
        host: &dyn Host,
        give_up: &dyn Fn() -> bool,
    ) -> Option<Vec<MutexGuard<'_, Shard>>> {
        (0..self.shards.len()).map(|shard| self.lock_for_command(shard, host, give_up)).collect()
    }
}

#[cold]
pub(crate) fn unreachable_shard(index: usize) -> ! {
    // Shard numbers come from `shard_of`, which masks into range; reaching this is a bug in
    // the engine, not something input can cause.
    #[allow(clippy::panic)]
    {
        panic!("shard {index} out of range")
    }
}

// Every key pays for an `Entry` in the slab: keep large variants of `Value` boxed so that a
// small string key stays small (measured in BENCHMARKS.md, "Memory per small key").
const _: () = assert!(std::mem::size_of::<Entry>() <= 56);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::value::Value;

    /// The free-slot count follows every way a slice's free list changes.
    #[test]
    fn free_slots_are_counted_as_keys_come_and_go() {
        let keyspace = Keyspace::new(2, 0);
        let slot = std::mem::size_of::<Option<Entry>>();
        let key = |i: usize| format!("key:{i}").into_bytes();
        let entry = |i: usize| Entry::new(&key(i), Value::Str(crate::small_bytes::SmallBytes::from_slice(b"v")));
        let mut shard = keyspace.lock(0).unwrap();
        let hasher = *keyspace.hasher();
        let db = &mut shard.dbs[0];
        for i in 0..100 {
            db.insert_new(hasher.hash_one(key(i)), entry(i), &hasher);
        }
        for i in 0..40 {
            db.remove(hasher.hash_one(key(i)), &key(i)).unwrap();
        }
        assert_eq!(keyspace.free_slot_bytes(), 40 * slot, "a deleted key leaves a free slot");
        db.insert_new(hasher.hash_one(key(0)), entry(0), &hasher);
        assert_eq!(keyspace.free_slot_bytes(), 39 * slot, "a new key takes one");
        for i in 40..60 {
            db.remove(hasher.hash_one(key(i)), &key(i)).unwrap();
        }
        db.pack_if_sparse(&hasher);
        assert_eq!(keyspace.free_slot_bytes(), 0, "packing gives them back");
        for i in 60..70 {
            db.remove(hasher.hash_one(key(i)), &key(i)).unwrap();
        }
        let emptied = db.take();
        assert_eq!(keyspace.free_slot_bytes(), 10 * slot, "a flushed slice's holes count until it is freed");
        drop(emptied);
        assert_eq!(keyspace.free_slot_bytes(), 0);
        let db = &mut shard.dbs[1];
        db.insert_new(hasher.hash_one(key(1)), entry(1), &hasher);
        db.remove(hasher.hash_one(key(1)), &key(1)).unwrap();
        assert_eq!(keyspace.free_slot_bytes(), 0, "a slice emptied by its last delete starts afresh");
        db.insert_new(hasher.hash_one(key(2)), entry(2), &hasher);
        db.insert_new(hasher.hash_one(key(3)), entry(3), &hasher);
        db.remove(hasher.hash_one(key(2)), &key(2)).unwrap();
        assert_eq!(keyspace.free_slot_bytes(), slot, "the other slices count in the same total");
    }
}
