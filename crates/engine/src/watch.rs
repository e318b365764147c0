//! WATCH: which clients watch which keys, and marking them dirty when those keys change.
//!
//! Every change reaches the log as effects that name their key, so the engine signals
//! watched keys as each effect is recorded (and from the flush/swap commands, which touch
//! whole databases) — no command has to remember to do it. With no key watched anywhere the
//! cost on the write path is one atomic load.
//!
//! Expired keys follow Redis 7.0's `multi.c`: WATCH notes whether the key was already
//! logically expired (`wk->expired`). Deleting such a key later (lazy or active expiry, a
//! flush) changes nothing a client could observe, so it does not fail the transaction; it
//! only clears the note, so that writing the key afterwards does. A key that expires after
//! WATCH fails EXEC even if nothing deleted it yet (`isWatchedKeyExpired`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::client::Client;
use crate::value::HashMap;

/// A key a client watches.
#[derive(Debug, Clone)]
pub struct WatchedKey {
    pub db: usize,
    pub key: Bytes,
}

/// One client watching one key.
#[derive(Debug)]
struct Watcher {
    client: u64,
    dirty: Arc<AtomicBool>,
    /// The key was logically expired when watched, and has not been deleted since.
    expired: bool,
}

impl Watcher {
    /// Redis drops every watch of a client it marks dirty (`unwatchAllKeys`); a dirty
    /// client's remaining entries here are skipped to the same effect.
    fn gone(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

/// A registry slot `(db, key)` borrowed, to look one up without copying the key: it hashes
/// as the owned `(usize, Bytes)` does (`Bytes` hashes as its byte slice).
#[derive(Hash)]
struct SlotRef<'a>(usize, &'a [u8]);

impl hashbrown::Equivalent<(usize, Bytes)> for SlotRef<'_> {
    fn equivalent(&self, slot: &(usize, Bytes)) -> bool {
        self.0 == slot.0 && self.1 == &slot.1[..]
    }
}

/// What a SWAPDB puts in place of a watched key, for [`WatchRegistry::touch_emptied`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// FLUSHDB/FLUSHALL: nothing replaces the database.
    None,
    /// The other database has no such key.
    Absent,
    Live,
    /// The other database holds the key, logically expired.
    Expired,
}

/// All watched keys of all clients, each key's watchers in the order they watched it (the
/// order matters for Redis's early exit in `touchWatchedKey`).
#[derive(Debug, Default)]
pub struct WatchRegistry {
    count: AtomicUsize,
    keys: Mutex<HashMap<(usize, Bytes), Vec<Watcher>>>,
}

impl WatchRegistry {
    /// Watch `key` in `db`; `expired` says whether it is logically expired right now.
    pub fn watch(&self, client: &mut Client, db: usize, key: &[u8], expired: bool) {
        let key = Bytes::copy_from_slice(key);
        let mut keys = self.keys.lock();
        // Looked up by key, not in the client's list: WATCH with 50,000 keys made 50,000
        // scans of that list.
        let watchers = keys.entry((db, key.clone())).or_default();
        if watchers.iter().any(|w| w.client == client.id) {
            return;
        }
        watchers.push(Watcher { client: client.id, dirty: client.watch_dirty.clone(), expired });
        self.count.store(keys.len(), Ordering::Release);
        client.watching.push(WatchedKey { db, key });
    }

    /// Forget every key the client watches and clear its dirty flag.
    pub fn unwatch_all(&self, client: &mut Client) {
        if !client.watching.is_empty() {
            let mut keys = self.keys.lock();
            for watched in client.watching.drain(..) {
                let slot = (watched.db, watched.key);
                if let Some(list) = keys.get_mut(&slot) {
                    list.retain(|w| w.client != client.id);
                    if list.is_empty() {
                        keys.remove(&slot);
                    }
                }
            }
            self.count.store(keys.len(), Ordering::Release);
        }
        client.watch_dirty.store(false, Ordering::Release);
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    /// A key changed (`touchWatchedKey`); `present` says whether it exists now, asked only
    /// if a watcher saw the key expired. Those watchers are not failed by its deletion, only
    /// relieved of the note. Redis 7.0 stops at the first such watcher when the key still
    /// exists (its loop `break`s), leaving the watchers after it untouched; reproduced as is.
    pub fn touch(&self, db: usize, key: &[u8], present: impl FnOnce() -> bool) {
        if self.is_empty() {
            return;
        }
        let mut keys = self.keys.lock();
        let Some(list) = keys.get_mut(&SlotRef(db, key)) else { return };
        let mut present = Some(present);
        let mut exists = false;
        for watcher in list.iter_mut().filter(|w| !w.gone()) {
            if watcher.expired {
                if let Some(ask) = present.take() {
                    exists = ask();
                }
                if exists {
                    break;
                }
                watcher.expired = false;
                continue;
            }
            watcher.mark_dirty();
        }
    }

    /// A database is emptied (FLUSHDB, FLUSHALL) or swapped with another (SWAPDB), as
    /// Redis's `touchAllWatchedKeysInDb`: `in_emptied` says whether `key` physically exists
    /// in the database going away, `replacement` what takes its place.
    pub fn touch_emptied(&self, db: usize, key: &[u8], in_emptied: bool, replacement: Replacement) {
        let replaced = matches!(replacement, Replacement::Live | Replacement::Expired);
        if self.is_empty() || !(in_emptied || replaced) {
            return;
        }
        let mut keys = self.keys.lock();
        let Some(list) = keys.get_mut(&SlotRef(db, key)) else { return };
        for watcher in list.iter_mut().filter(|w| !w.gone()) {
            if watcher.expired {
                if !replaced {
                    // The expired key is deleted: no logical change.
                    watcher.expired = false;
                    continue;
                }
                if replacement == Replacement::Expired {
                    // Expired before, expired after.
                    continue;
                }
            } else if !in_emptied && replacement == Replacement::Expired {
                // A missing key replaced by an expired one: still logically missing.
                watcher.expired = true;
                continue;
            }
            watcher.mark_dirty();
        }
    }

    /// Whether the client's watch of `key` began with the key already expired (and the key
    /// has not been deleted since): EXEC then does not count its expiry as a change.
    pub fn expired_at_watch(&self, client: u64, db: usize, key: &[u8]) -> bool {
        let keys = self.keys.lock();
        keys.get(&SlotRef(db, key)).and_then(|list| list.iter().find(|w| w.client == client)).is_some_and(|w| w.expired)
    }

    /// Every watched key of `db`.
    pub fn watched_in(&self, db: usize) -> Vec<Bytes> {
        if self.is_empty() {
            return Vec::new();
        }
        self.keys.lock().keys().filter(|(d, _)| *d == db).map(|(_, k)| k.clone()).collect()
    }
}
