//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN...), woken in arrival order.
//!
//! A blocking command that finds nothing registers its client on its keys *while it still
//! holds their shard locks*, so no push can slip in between "empty" and "waiting". When a
//! committed batch changes a key, the longest-waiting client on it (other than the writer)
//! is woken; it re-runs its command, and either takes the data — its own pop then wakes the
//! next waiter — or goes back to waiting at the same place in the queue. Readers (XREAD)
//! take nothing, so a change wakes every reader on the key as well. The engine knows
//! nothing about how a client sleeps: a [`Waker`] is whatever the front end gives it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::value::HashMap;

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
    /// Clients that only read the keys they wait on (woken on every change).
    readers: crate::value::HashSet<u64>,
    /// Clients CLIENT UNBLOCK woke, and how they must answer.
    unblocked: HashMap<u64, Unblock>,
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

    /// Queue `client` on each key it is not already queued on (keeping its place otherwise);
    /// `reader`: it consumes nothing (see the module docs).
    pub fn register(&self, client: u64, waker: Waker, db: usize, keys: &[Bytes], reader: bool) {
        let mut inner = self.inner.lock();
        for key in keys {
            let queue = inner.queues.entry((db, key.clone())).or_default();
            if !queue.contains(&client) {
                queue.push_back(client);
            }
        }
        inner.wakers.insert(client, waker);
        if reader {
            inner.readers.insert(client);
        }
        self.blocked.store(inner.wakers.len(), Ordering::Release);
    }

    /// Remove `client` from every queue (served, timed out or gone).
    pub fn unregister(&self, client: u64) {
        if self.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.wakers.remove(&client).is_none() {
            return;
        }
        inner.readers.remove(&client);
        inner.unblocked.remove(&client);
        inner.queues.retain(|_, queue| {
            queue.retain(|id| *id != client);
            !queue.is_empty()
        });
        self.blocked.store(inner.wakers.len(), Ordering::Release);
    }

    /// Whether `client` is waiting: a command it runs now is its blocked command, re-run after
    /// a wake-up.
    pub fn is_waiting(&self, client: u64) -> bool {
        !self.is_empty() && self.inner.lock().wakers.contains_key(&client)
    }

    /// `key` changed: wake the longest-waiting client other than `writer`, and every reader.
    pub fn signal(&self, db: usize, key: &[u8], writer: u64) {
        if self.is_empty() {
            return;
        }
        let inner = self.inner.lock();
        let Some(queue) = inner.queues.get(&(db, Bytes::copy_from_slice(key))) else { return };
        let consumer = queue.iter().find(|id| **id != writer && !inner.readers.contains(*id));
        let readers = queue.iter().filter(|id| inner.readers.contains(*id));
        for waker in consumer.into_iter().chain(readers).filter_map(|id| inner.wakers.get(id)) {
            waker();
        }
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
