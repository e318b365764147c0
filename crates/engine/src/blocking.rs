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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use staykv_resp::Reply;

use crate::value::{HashMap, HashSet};

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
    /// Takers and consumers woken to take from a key that have not taken yet. One that
    /// leaves without taking (its command answered an error, it timed out or went away)
    /// wakes the next in line in its place, or the data would wait for the next change.
    woken: HashSet<u64>,
}

impl Inner {
    /// Wake, among those queued on `key`, the longest-waiting taker other than `writer`, the
    /// longest-waiting consumer of each group other than `writer`, and every reader.
    fn wake_next(&mut self, db: usize, key: &[u8], writer: u64) {
        let Some(queue) = self.queues.get(&(db, Bytes::copy_from_slice(key))) else { return };
        let mut taker_woken = false;
        let mut groups_woken: Vec<&Bytes> = Vec::new();
        for id in queue {
            let wake = match self.kinds.get(id) {
                Some(Waiting::Reader) => true,
                _ if *id == writer => false,
                Some(Waiting::Group(group)) if !groups_woken.contains(&group) => {
                    groups_woken.push(group);
                    self.woken.insert(*id);
                    true
                }
                Some(Waiting::Group(_)) => false,
                Some(Waiting::Taker) | None => {
                    let first = !std::mem::replace(&mut taker_woken, true);
                    if first {
                        self.woken.insert(*id);
                    }
                    first
                }
            };
            if let Some(waker) = self.wakers.get(id).filter(|_| wake) {
                waker();
            }
        }
    }
}

/// What a blocked client takes from the keys it waits on, which decides who a change wakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// Takes what it finds (BLPOP, BZPOPMIN...): a change wakes the longest-waiting one.
    Taker,
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

/// All blocked clients.
#[derive(Default)]
pub struct BlockRegistry {
    blocked: AtomicUsize,
    inner: Mutex<Inner>,
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

    /// Queue `client` on each key it is not already queued on (keeping its place otherwise).
    pub fn register(&self, client: u64, waker: Waker, db: usize, keys: &[Bytes], waiting: Waiting) {
        let mut inner = self.inner.lock();
        // Back to waiting: whatever woke it, it found nothing to take.
        inner.woken.remove(&client);
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
        self.blocked.store(inner.wakers.len(), Ordering::Release);
    }

    /// Remove `client` from every queue (served, timed out or gone). If it was woken to take
    /// and took nothing, the next in line on each of its keys is woken instead.
    pub fn unregister(&self, client: u64) {
        if self.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.wakers.remove(&client).is_none() {
            return;
        }
        inner.kinds.remove(&client);
        inner.unblocked.remove(&client);
        let pass_on = inner.woken.remove(&client);
        let mut left = Vec::new();
        inner.queues.retain(|(db, key), queue| {
            let before = queue.len();
            queue.retain(|id| *id != client);
            if pass_on && queue.len() < before && !queue.is_empty() {
                left.push((*db, key.clone()));
            }
            !queue.is_empty()
        });
        for (db, key) in left {
            inner.wake_next(db, &key, client);
        }
        self.blocked.store(inner.wakers.len(), Ordering::Release);
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

    /// `key` changed: wake the longest-waiting taker other than `writer`, the longest-waiting
    /// consumer of each group other than `writer`, and every reader. A woken `writer` has
    /// taken what it was woken for: its own change is what wakes the next in line.
    pub fn signal(&self, db: usize, key: &[u8], writer: u64) {
        if self.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        inner.woken.remove(&writer);
        inner.wake_next(db, key, writer);
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

    /// Database-wide changes (FLUSHALL, SWAPDB): wake everyone; they re-check.
    pub fn signal_all(&self) {
        if self.is_empty() {
            return;
        }
        for waker in self.inner.lock().wakers.values() {
            waker();
        }
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
        registry.signal(0, b"s", 0);
        assert_eq!(woken(&counts), [1, 1, 1, 0, 1, 0]);
        // The first consumer of g1 took the entry and wrote: the next one of g1 is woken, and
        // the first taker again (it may still be waiting), never the writer.
        registry.signal(0, b"s", 2);
        assert_eq!(woken(&counts), [1, 0, 1, 1, 1, 0]);
        registry.signal(0, b"other", 0);
        assert_eq!(woken(&counts), [0; 6]);
    }

    #[test]
    fn a_woken_taker_that_leaves_without_taking_wakes_the_next_in_its_place() {
        let (registry, counts) = queue(&[Waiting::Taker, Waiting::Taker, Waiting::Reader, Waiting::Taker]);
        registry.signal(0, b"s", 0);
        assert_eq!(woken(&counts), [1, 0, 1, 0]);
        // Client 1's command answered an error (BLMOVE to a key of another type).
        registry.unregister(1);
        assert_eq!(woken(&counts), [0, 1, 1, 0]);
        // Client 2 took: its own change woke the next taker, so its leaving wakes no one.
        registry.signal(0, b"s", 2);
        assert_eq!(woken(&counts), [0, 0, 1, 1]);
        registry.unregister(2);
        assert_eq!(woken(&counts), [0; 4]);
        // Client 4 found nothing and waits again: it holds no wake to pass on.
        let waker: Waker = Arc::new(|| {});
        registry.register(4, waker, 0, &[Bytes::from_static(b"s")], Waiting::Taker);
        registry.unregister(4);
        assert_eq!(woken(&counts), [0; 4]);
    }
}
