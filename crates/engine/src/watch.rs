//! WATCH: which clients watch which keys, and marking them dirty when those keys change.
//!
//! Every change reaches the log as effects that name their key, so the engine signals
//! watched keys from the effects of each committed batch (and from the flush/swap commands,
//! which touch whole databases) — no command has to remember to do it. With no key watched
//! anywhere the cost on the write path is one atomic load.

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
    /// The key was already logically expired when watched (it then cannot "expire" later).
    pub expired_at_watch: bool,
}

type Watchers = Vec<(u64, Arc<AtomicBool>)>;

/// All watched keys of all clients.
#[derive(Debug, Default)]
pub struct WatchRegistry {
    count: AtomicUsize,
    keys: Mutex<HashMap<(usize, Bytes), Watchers>>,
}

impl WatchRegistry {
    pub fn watch(&self, client: &mut Client, key: WatchedKey) {
        if client.watching.iter().any(|w| w.db == key.db && w.key == key.key) {
            return;
        }
        let mut keys = self.keys.lock();
        keys.entry((key.db, key.key.clone())).or_default().push((client.id, client.watch_dirty.clone()));
        self.count.store(keys.len(), Ordering::Release);
        client.watching.push(key);
    }

    /// Forget every key the client watches and clear its dirty flag.
    pub fn unwatch_all(&self, client: &mut Client) {
        if !client.watching.is_empty() {
            let mut keys = self.keys.lock();
            for watched in client.watching.drain(..) {
                let slot = (watched.db, watched.key);
                if let Some(list) = keys.get_mut(&slot) {
                    list.retain(|(id, _)| *id != client.id);
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

    /// A key changed: its watchers' transactions must fail.
    pub fn touch(&self, db: usize, key: &[u8]) {
        if self.is_empty() {
            return;
        }
        let keys = self.keys.lock();
        if let Some(list) = keys.get(&(db, Bytes::copy_from_slice(key))) {
            for (_, dirty) in list {
                dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Watched keys of `db` for which `changed` says yes are touched (FLUSHDB, SWAPDB).
    pub fn touch_db_where(&self, db: usize, mut changed: impl FnMut(&[u8]) -> bool) {
        if self.is_empty() {
            return;
        }
        let keys = self.keys.lock();
        for ((key_db, key), list) in keys.iter() {
            if *key_db == db && changed(key) {
                for (_, dirty) in list {
                    dirty.store(true, Ordering::Release);
                }
            }
        }
    }

    /// Every watched key of `db`.
    pub fn watched_in(&self, db: usize) -> Vec<Bytes> {
        if self.is_empty() {
            return Vec::new();
        }
        self.keys.lock().keys().filter(|(d, _)| *d == db).map(|(_, k)| k.clone()).collect()
    }
}
