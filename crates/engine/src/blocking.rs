//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN...), woken in arrival order.
//!
//! A blocking command that finds nothing registers its client on its keys *while it still
//! holds their shard locks*, so no push can slip in between "empty" and "waiting". When a
//! committed batch changes a key, the longest-waiting client on it (other than the writer)
//! is woken; it re-runs its command, and either takes the data — its own pop then wakes the
//! next waiter — or goes back to waiting at the same place in the queue. Readers (XREAD)
//! take nothing, so a change wakes every reader on the key as well. Consumers of a stream's
//! group (XREADGROUP) take only from their group: a change wakes the longest-waiting consumer
//! of each group, as Redis serves them. The engine knows nothing about how a client sleeps: a
//! [`Waker`] is whatever the front end gives it.
//!
//! Redis serves a blocked client inside the command that fed its key, before anything else
//! runs. Here the woken client re-runs on its own connection, a moment later; meanwhile it has
//! first claim on the key that woke it: another client's command on that key waits until the
//! woken one has looked again ([`CLAIM_MS`] at most), so that nobody takes what it was woken
//! for or changes what it was woken to read, and a read after the write that woke it finds it
//! served, as in Redis.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use smallvec::SmallVec;
use staykv_resp::Reply;

use crate::client::Client;
use crate::command::{flags, CommandSpec};
use crate::value::HashMap;
use crate::Engine;

/// How long, in ms, a woken client's claim on a key holds back other clients' commands on it:
/// far longer than a woken client takes to run, short enough that one that never does (its
/// connection stuck writing to a client that does not read) holds nobody up for long.
pub const CLAIM_MS: u64 = 50;

/// Wakes one blocked client.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A client's waker, as stored in [`crate::Client`].
#[derive(Clone)]
pub struct ClientWaker(pub Waker);

impl std::fmt::Debug for ClientWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientWaker")
    }
}

#[derive(Default)]
struct Inner {
    /// Per (db, key): client ids in arrival order.
    queues: HashMap<(usize, Bytes), VecDeque<u64>>,
    wakers: HashMap<u64, Waker>,
    /// What each client takes (those not listed: [`Waiting::Taker`]).
    kinds: HashMap<u64, Waiting>,
    /// Clients CLIENT UNBLOCK woke, and how they must answer.
    unblocked: HashMap<u64, Unblock>,
    /// Takers and consumers woken to take: the keys (db, key) each was woken for, in the
    /// order the changes came, less those it has written since. A woken command looks at
    /// these first, in that order, as Redis serves a blocked client from the first of its
    /// keys that became ready. One that leaves (served from another key, or without taking:
    /// its command answered an error, it timed out or went away) wakes the next in line on
    /// each key left, or the data there would wait for the next change.
    woken: HashMap<u64, Vec<(usize, Bytes)>>,
    /// Per (db, key): the woken clients with first claim on it, each with the time (Unix ms)
    /// its claim began. A claim ends when its client looks again (it is served, or waits
    /// again), leaves, or [`CLAIM_MS`] have passed.
    claims: HashMap<(usize, Bytes), Vec<(u64, u64)>>,
}

impl Inner {
    /// Wake, among those queued on `key`, the longest-waiting taker other than `writer`, the
    /// longest-waiting consumer of each group other than `writer`, and every reader. Each
    /// woken client has first claim on `key` from `now`.
    fn wake_next(&mut self, db: usize, key: &[u8], writer: u64, now: u64) {
        let slot = (db, Bytes::copy_from_slice(key));
        let Some(queue) = self.queues.get(&slot) else { return };
        let mut taker_woken = false;
        let mut groups_woken: Vec<&Bytes> = Vec::new();
        let mut claimants = Vec::new();
        for id in queue {
            let wake = match self.kinds.get(id) {
                Some(Waiting::Reader) => true,
                _ if *id == writer => false,
                Some(Waiting::Group(group)) if !groups_woken.contains(&group) => {
                    groups_woken.push(group);
                    true
                }
                Some(Waiting::Group(_)) => false,
                Some(Waiting::Taker | Waiting::Mover(_)) | None => !std::mem::replace(&mut taker_woken, true),
            };
            if let Some(waker) = self.wakers.get(id).filter(|_| wake) {
                waker();
                claimants.push(*id);
            }
        }
        for id in claimants {
            self.claim(id, slot.clone(), now);
        }
    }

    /// `client`, just woken, claims `slot` (db, key) from `now`; a taker is marked woken.
    fn claim(&mut self, client: u64, slot: (usize, Bytes), now: u64) {
        let kind = self.kinds.get(&client);
        if kind != Some(&Waiting::Reader) {
            let woken_for = self.woken.entry(client).or_default();
            if !woken_for.contains(&slot) {
                woken_for.push(slot.clone());
            }
        }
        // A mover's destination is claimed too: a read of it after the write finds what the
        // mover moved, as in Redis.
        let destination = match kind {
            Some(Waiting::Mover(destination)) => Some((slot.0, destination.clone())),
            _ => None,
        };
        for slot in std::iter::once(slot).chain(destination) {
            let claims = self.claims.entry(slot).or_default();
            claims.retain(|(claimant, _)| *claimant != client);
            claims.push((client, now));
        }
    }

    /// `client` has looked again or left: its claims end.
    fn drop_claims(&mut self, client: u64) {
        if self.claims.is_empty() {
            return;
        }
        self.claims.retain(|_, claims| {
            claims.retain(|(claimant, _)| *claimant != client);
            !claims.is_empty()
        });
    }

    /// Whether a client other than `client` has a claim on one of `keys` (db, key) at `now`,
    /// or with `keys` empty, on any key; claims past [`CLAIM_MS`] are dropped on the way. A
    /// blocked client's own command (a woken one's re-run) is never held: it is what the
    /// others wait for.
    fn claimed(&mut self, client: u64, keys: &[(usize, &[u8])], now: u64) -> bool {
        if self.wakers.contains_key(&client) {
            return false;
        }
        let others = |claims: &mut Vec<(u64, u64)>| {
            claims.retain(|(_, since)| now < since.saturating_add(CLAIM_MS));
            claims.iter().any(|(claimant, _)| *claimant != client)
        };
        let mut claimed = false;
        if keys.is_empty() {
            self.claims.values_mut().for_each(|claims| claimed |= others(claims));
        }
        for (db, key) in keys {
            let slot = (*db, Bytes::copy_from_slice(key));
            let Some(claims) = self.claims.get_mut(&slot) else { continue };
            claimed |= others(claims);
        }
        self.claims.retain(|_, claims| !claims.is_empty());
        claimed
    }
}

/// What a blocked client takes from the keys it waits on, which decides who a change wakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// Takes what it finds (BLPOP, BZPOPMIN...): a change wakes the longest-waiting one.
    Taker,
    /// A taker that moves what it takes to this destination key (BLMOVE, BRPOPLPUSH).
    Mover(Bytes),
    /// Takes nothing (XREAD): every change wakes it.
    Reader,
    /// Takes a group's new entries (XREADGROUP): a change wakes the longest-waiting consumer
    /// of each group.
    Group(Bytes),
}

/// How CLIENT UNBLOCK ends a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblock {
    /// As if the timeout had passed.
    Timeout,
    /// With `UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    Error,
}

/// A blocked client's wait with a timeout, counted until dropped.
#[derive(Debug)]
pub struct TimedWait<'a>(&'a AtomicUsize);

impl Drop for TimedWait<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// All blocked clients.
#[derive(Default)]
pub struct BlockRegistry {
    blocked: AtomicUsize,
    /// Blocked clients with a timeout (INFO clients: clients_in_timeout_table).
    timed: AtomicUsize,
    /// The [`claim_bit`]s of the claimed keys: a command on keys whose bits are all clear
    /// takes no lock, however many claims other keys have (readers of a busy stream); while
    /// none is set, no key has a claim.
    claimed_bits: AtomicU64,
    inner: Mutex<Inner>,
}

/// `key`'s bit (of 64) in [`BlockRegistry`]'s filter of claimed keys, from its last 8 bytes
/// (keys often share a prefix), its length and its database. Keys may share a bit: the
/// filter only spares the lock for keys nobody claims.
fn claim_bit(db: usize, key: &[u8]) -> u64 {
    let tail = key.get(key.len().saturating_sub(8)..).unwrap_or_default();
    let mut word = [0u8; 8];
    if let Some(start) = word.get_mut(..tail.len()) {
        start.copy_from_slice(tail);
    }
    let mixed = u64::from_le_bytes(word) ^ (key.len() as u64) ^ (db as u64).rotate_left(32);
    1 << (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
}

impl std::fmt::Debug for BlockRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockRegistry({} clients)", self.blocked.load(Ordering::Relaxed))
    }
}

impl BlockRegistry {
    /// Number of blocked clients (INFO clients: blocked_clients).
    pub fn len(&self) -> usize {
        self.blocked.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts a blocked client's wait with a timeout while the guard lives (the front end
    /// keeps the deadlines).
    pub fn timed_wait(&self) -> TimedWait<'_> {
        self.timed.fetch_add(1, Ordering::Relaxed);
        TimedWait(&self.timed)
    }

    /// Blocked clients waiting with a timeout.
    pub fn timed_waits(&self) -> usize {
        self.timed.load(Ordering::Relaxed)
    }

    /// Whether a woken client may have a claim on a key: one atomic load.
    pub fn has_claims(&self) -> bool {
        self.claimed_bits.load(Ordering::Acquire) != 0
    }

    /// Publishes what the lock-free checks read, after `inner` changed.
    fn settle(&self, inner: &Inner) {
        self.blocked.store(inner.wakers.len(), Ordering::Release);
        let bits = inner.claims.keys().fold(0, |bits, (db, key)| bits | claim_bit(*db, key));
        self.claimed_bits.store(bits, Ordering::Release);
    }

    /// Whether a command of `client` on `keys` (db, key) waits at `now`: another client woken
    /// for one of them (with no keys, for any key) has not looked again yet, and `client` is
    /// not blocked itself.
    pub fn claimed(&self, client: u64, keys: &[(usize, &[u8])], now: u64) -> bool {
        let bits = keys.iter().fold(0, |bits, (db, key)| bits | claim_bit(*db, key));
        let wanted = if keys.is_empty() { u64::MAX } else { bits };
        if wanted & self.claimed_bits.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut inner = self.inner.lock();
        let claimed = inner.claimed(client, keys, now);
        self.settle(&inner);
        claimed
    }

    /// Queue `client` on each key it is not already queued on (keeping its place otherwise).
    pub fn register(&self, client: u64, waker: Waker, db: usize, keys: &[Bytes], waiting: Waiting) {
        let mut inner = self.inner.lock();
        // Back to waiting: whatever woke it, it found nothing to take.
        inner.woken.remove(&client);
        inner.drop_claims(client);
        for key in keys {
            let queue = inner.queues.entry((db, key.clone())).or_default();
            if !queue.contains(&client) {
                queue.push_back(client);
            }
        }
        inner.wakers.insert(client, waker);
        if waiting != Waiting::Taker {
            inner.kinds.insert(client, waiting);
        }
        self.settle(&inner);
    }

    /// Remove `client` from every queue (served, timed out or gone) at `now`. The keys it
    /// was woken for and did not write go to the next in line on each.
    pub fn unregister(&self, client: u64, now: u64) {
        if self.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.wakers.remove(&client).is_none() {
            return;
        }
        inner.kinds.remove(&client);
        inner.unblocked.remove(&client);
        inner.drop_claims(client);
        let pass_on = inner.woken.remove(&client).unwrap_or_default();
        inner.queues.retain(|_, queue| {
            queue.retain(|id| *id != client);
            !queue.is_empty()
        });
        for (db, key) in pass_on {
            inner.wake_next(db, &key, client, now);
        }
        self.settle(&inner);
    }

    /// The order a blocking command of `client` looks at its `keys` (in `db`) in: once woken,
    /// the keys it was woken for first, in the order the changes came, as Redis serves a
    /// blocked client from the first of its keys that became ready; the others after them.
    /// As given otherwise.
    pub fn serve_order<'k>(&self, client: u64, db: usize, keys: &'k [Bytes]) -> SmallVec<[&'k Bytes; 4]> {
        let mut order: SmallVec<[&Bytes; 4]> = keys.iter().collect();
        if self.is_empty() {
            return order;
        }
        let inner = self.inner.lock();
        if let Some(woken_for) = inner.woken.get(&client) {
            let rank = |key: &Bytes| woken_for.iter().position(|(d, k)| *d == db && k == key).unwrap_or(usize::MAX);
            order.sort_by_key(|key| rank(key));
        }
        order
    }

    /// Whether `client` is waiting: a command it runs now is its blocked command, re-run after
    /// a wake-up.
    pub fn is_waiting(&self, client: u64) -> bool {
        !self.is_empty() && self.inner.lock().wakers.contains_key(&client)
    }

    /// `found`, what a blocking command's lookup of a key it waits on gave: as it is, except
    /// that once a change woke the command (`client` is still queued), WRONGTYPE reads as a
    /// missing key. Redis 7.0 serves a blocked client only from keys of the type it waits for,
    /// so a key that now holds another type leaves it waiting; on its first run the error
    /// stands. The queue is looked at only on an error: the usual path does no extra work.
    pub fn wrong_type_as_missing<T>(&self, client: u64, found: Result<Option<T>, Reply>) -> Result<Option<T>, Reply> {
        match found {
            Err(_) if self.is_waiting(client) => Ok(None),
            found => found,
        }
    }

    /// `key` changed at `now`: wake the longest-waiting taker other than `writer`, the
    /// longest-waiting consumer of each group other than `writer`, and every reader. A woken
    /// `writer` that took from `key` has its own change wake the next in line there.
    pub fn signal(&self, db: usize, key: &[u8], writer: u64, now: u64) {
        if self.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some(woken_for) = inner.woken.get_mut(&writer) {
            woken_for.retain(|(d, k)| !(*d == db && k == key));
        }
        inner.wake_next(db, key, writer, now);
        self.settle(&inner);
    }

    /// CLIENT UNBLOCK: wakes `client` if it is blocked, to answer as `how` says (the front
    /// end asks [`BlockRegistry::take_unblock`] when woken). Returns whether it was blocked.
    pub fn unblock(&self, client: u64, how: Unblock) -> bool {
        let mut inner = self.inner.lock();
        let Some(waker) = inner.wakers.get(&client).cloned() else { return false };
        inner.unblocked.insert(client, how);
        waker();
        true
    }

    /// Whether CLIENT UNBLOCK ended `client`'s wait, and how (once).
    pub fn take_unblock(&self, client: u64) -> Option<Unblock> {
        let mut inner = self.inner.lock();
        if inner.unblocked.is_empty() {
            return None;
        }
        inner.unblocked.remove(&client)
    }

    /// Database-wide changes at `now` (FLUSHALL, SWAPDB): wake everyone to look again, each
    /// with a claim on the keys it waits on.
    pub fn signal_all(&self, now: u64) {
        if self.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        let queued: Vec<(u64, (usize, Bytes))> =
            inner.queues.iter().flat_map(|(slot, queue)| queue.iter().map(|id| (*id, slot.clone()))).collect();
        for (id, slot) in queued {
            inner.claim(id, slot, now);
        }
        for waker in inner.wakers.values() {
            waker();
        }
        self.settle(&inner);
    }
}

impl Engine {
    /// Whether `client`'s command `args` waits at `now` for a woken client's claim on one of
    /// its keys: for EXEC, those of the commands it would run and those it watches, whose
    /// change by the woken client aborts it, as in Redis. A command only queued inside MULTI
    /// never waits, nor do the woken clients' own commands: they are what the others wait for.
    pub fn held_by_claim(&self, client: &Client, args: &[Bytes], now: u64) -> bool {
        if !self.blocked.has_claims() {
            return false;
        }
        let Some((_, spec)) = args.first().and_then(|name| self.table.lookup(name)) else { return false };
        self.held_by_claim_as(client, spec, args, now)
    }

    /// [`Engine::held_by_claim`] for a command already looked up as `spec`.
    pub(crate) fn held_by_claim_as(
        &self,
        client: &Client,
        spec: &'static CommandSpec,
        args: &[Bytes],
        now: u64,
    ) -> bool {
        if !self.blocked.has_claims() || (client.multi.is_some() && !spec.has(flags::TRANSACTION_CONTROL)) {
            return false;
        }
        let commands: SmallVec<[(&CommandSpec, &[Bytes]); 1]> = match spec.name {
            "exec" => self.table.specs_of(client.multi.as_deref().unwrap_or_default()).collect(),
            _ => smallvec::smallvec![(spec, args)],
        };
        let mut keys: SmallVec<[(usize, &[u8]); 4]> = commands
            .iter()
            .flat_map(|(spec, args)| spec.key_positions(args).into_iter().filter_map(|i| args.get(i)))
            .map(|key| (client.db, &key[..]))
            .collect();
        if spec.name == "exec" {
            keys.extend(client.watching.iter().map(|watched| (watched.db, &watched.key[..])));
        }
        // A command on the whole keyspace (FLUSHALL, SWAPDB, DBSIZE, KEYS, SCAN...) waits
        // for every woken client: Redis serves them before the next command runs. So does a
        // script, which may use keys it does not declare, and a transaction that SELECTs
        // another database for the commands after it.
        let anywhere = |(spec, _): &(&CommandSpec, &[Bytes])| spec.has(flags::RUNS_SCRIPT) || spec.name == "select";
        let keyless_on_keyspace =
            |(spec, _): &(&CommandSpec, &[Bytes])| crate::acl::categories(spec).contains(&"keyspace");
        if commands.iter().any(anywhere) || (keys.is_empty() && commands.iter().any(keyless_on_keyspace)) {
            return self.blocked.claimed(client.id, &[], now);
        }
        !keys.is_empty() && self.blocked.claimed(client.id, &keys, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Registers clients 1.. in order on key `s` as `kinds` say, each counting its wake-ups.
    fn queue(kinds: &[Waiting]) -> (BlockRegistry, Vec<Arc<AtomicU64>>) {
        let registry = BlockRegistry::default();
        let mut counts = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let count = Arc::new(AtomicU64::new(0));
            let counted = Arc::clone(&count);
            let waker: Waker = Arc::new(move || {
                counted.fetch_add(1, Ordering::Relaxed);
            });
            registry.register(i as u64 + 1, waker, 0, &[Bytes::from_static(b"s")], kind.clone());
            counts.push(count);
        }
        (registry, counts)
    }

    fn woken(counts: &[Arc<AtomicU64>]) -> Vec<u64> {
        counts.iter().map(|count| count.swap(0, Ordering::Relaxed)).collect()
    }

    #[test]
    fn a_change_wakes_the_first_taker_the_first_consumer_of_each_group_and_every_reader() {
        let group = |name: &'static str| Waiting::Group(Bytes::from_static(name.as_bytes()));
        let kinds = [Waiting::Taker, group("g1"), Waiting::Reader, group("g1"), group("g2"), Waiting::Taker];
        let (registry, counts) = queue(&kinds);
        registry.signal(0, b"s", 0, 0);
        assert_eq!(woken(&counts), [1, 1, 1, 0, 1, 0]);
        // The first consumer of g1 took the entry and wrote: the next one of g1 is woken, and
        // the first taker again (it may still be waiting), never the writer.
        registry.signal(0, b"s", 2, 0);
        assert_eq!(woken(&counts), [1, 0, 1, 1, 1, 0]);
        registry.signal(0, b"other", 0, 0);
        assert_eq!(woken(&counts), [0; 6]);
    }

    #[test]
    fn a_woken_taker_that_leaves_without_taking_wakes_the_next_in_its_place() {
        let (registry, counts) = queue(&[Waiting::Taker, Waiting::Taker, Waiting::Reader, Waiting::Taker]);
        registry.signal(0, b"s", 0, 0);
        assert_eq!(woken(&counts), [1, 0, 1, 0]);
        // Client 1's command answered an error (BLMOVE to a key of another type).
        registry.unregister(1, 0);
        assert_eq!(woken(&counts), [0, 1, 1, 0]);
        // Client 2 took: its own change woke the next taker, so its leaving wakes no one.
        registry.signal(0, b"s", 2, 0);
        assert_eq!(woken(&counts), [0, 0, 1, 1]);
        registry.unregister(2, 0);
        assert_eq!(woken(&counts), [0; 4]);
        // Client 4 found nothing and waits again: it holds no wake to pass on.
        let waker: Waker = Arc::new(|| {});
        registry.register(4, waker, 0, &[Bytes::from_static(b"s")], Waiting::Taker);
        registry.unregister(4, 0);
        assert_eq!(woken(&counts), [0; 4]);
    }

    #[test]
    fn the_clients_a_change_wakes_hold_the_key_until_they_look_again() {
        let (registry, _counts) = queue(&[Waiting::Taker, Waiting::Reader, Waiting::Taker]);
        let claimants = |registry: &BlockRegistry| -> Vec<u64> {
            let inner = registry.inner.lock();
            let claims = inner.claims.get(&(0, Bytes::from_static(b"s")));
            claims.map(|claims| claims.iter().map(|(id, _)| *id).collect()).unwrap_or_default()
        };
        let s: &[(usize, &[u8])] = &[(0, b"s")];
        assert!(!registry.has_claims());
        registry.signal(0, b"s", 9, 1_000);
        // Client 1 (the first taker) and client 2 (a reader) were woken; client 3 waits on.
        assert_eq!(claimants(&registry), [1, 2]);
        assert!(registry.claimed(9, s, 1_000));
        assert!(!registry.claimed(9, &[(0, b"other")], 1_000));
        assert!(!registry.claimed(9, &[(1, b"s")], 1_000));
        // A blocked client's own command is never held: it is the woken one's re-run.
        assert!(!registry.claimed(3, s, 1_000));
        // The reader looked again and waits on: only the taker's claim is left.
        let waker: Waker = Arc::new(|| {});
        registry.register(2, waker, 0, &[Bytes::from_static(b"s")], Waiting::Reader);
        assert_eq!(claimants(&registry), [1]);
        // The taker left without taking: the claim passes to the next taker with the wake
        // (which wakes the reader again too).
        registry.unregister(1, 1_010);
        assert_eq!(claimants(&registry), [2, 3]);
        let waker: Waker = Arc::new(|| {});
        registry.register(2, waker, 0, &[Bytes::from_static(b"s")], Waiting::Reader);
        assert_eq!(claimants(&registry), [3]);
        // It never looks again: after CLAIM_MS nobody waits for it any more.
        assert!(registry.claimed(9, s, 1_010 + CLAIM_MS - 1));
        assert!(!registry.claimed(9, s, 1_010 + CLAIM_MS));
        assert!(!registry.has_claims());
    }
}
