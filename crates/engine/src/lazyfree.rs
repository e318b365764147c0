//! Freeing large values off the command path: `UNLINK`, `FLUSHALL ASYNC`, `FLUSHDB ASYNC`,
//! and what the `lazyfree-lazy-*` parameters ([`LazyOption`]) extend that to.
//!
//! A command frees what it removes while it holds the shard locks of its keys (every shard,
//! for a flush), so dropping a collection of millions of elements stalls every client of
//! those shards for as long as the allocator takes. As Redis's `lazyfree.c` does, the
//! commands that promise not to block hand such values to the host ([`Ctx::free_value`],
//! [`Ctx::free_databases`]), which drops them on a thread of its own once the locks are
//! released. The engine keeps the counters INFO reports (`lazyfree_pending_objects`,
//! `lazyfreed_objects`), updated by whichever thread finally drops the value.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::exec::Ctx;
use crate::keyspace::Db;
use crate::value::Value;

/// Redis's `LAZYFREE_THRESHOLD`: a value whose freeing takes more steps than this (about one
/// per element: each is an allocation of its own here) is freed in the background by UNLINK;
/// a smaller one is freed at once, which costs less than the hand-off.
pub const LAZYFREE_THRESHOLD: usize = 64;

/// Elements a released value's size is estimated from, as MEMORY USAGE's default.
const USAGE_SAMPLES: usize = 5;

/// What Redis's `lazyfreeGetFreeEffort` estimates: the number of allocations freeing the
/// value walks. A string is one; a collection about one per element.
pub fn free_effort(value: &Value) -> usize {
    match value {
        Value::Str(_) => 1,
        Value::List(list) => list.len(),
        Value::Hash(hash) => hash.len(),
        Value::Set(set) => set.len(),
        Value::ZSet(zset) => zset.len(),
        Value::Stream(stream) => stream.len(),
    }
}

impl Ctx<'_> {
    /// Frees a value the command removed or replaced: on the host's background thread when
    /// `lazily` and it takes long to free, else here.
    pub fn free_value(&self, value: Value, lazily: bool) {
        self.engine.lazyfree.release(self.host, value, lazily);
    }

    /// Deletes a key whose new deadline has already passed (EXPIRE with a past time), freeing
    /// its value as `lazyfree-lazy-expire` says, as Redis 7.0's `expireGenericCommand` does.
    pub fn delete_expired(&mut self, key: &[u8]) {
        if let Some(entry) = self.remove(key) {
            self.free_value(entry.value, self.engine.lazyfree.is_on(LazyOption::Expire));
        }
    }

    /// Frees what a flush emptied: on the host's background thread when `lazily` (ASYNC),
    /// counted one object per key as Redis counts it, else here (with every shard still
    /// locked, as Redis's single thread is busy for a SYNC flush).
    pub fn free_databases(&self, emptied: Vec<Db>, lazily: bool) {
        if lazily {
            let keys = emptied.iter().map(Db::len).sum::<usize>() as u64;
            // No byte count: while an emptied keyspace is being freed there is nothing to
            // evict that the count would spare.
            self.host.free_in_background(self.engine.lazyfree.garbage(keys, 0, Box::new(emptied)));
        }
    }
}

/// The `lazyfree-lazy-*` parameters StayKV has, `no` by default as in Redis 7.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LazyOption {
    /// `lazyfree-lazy-user-del`: DEL frees as UNLINK does.
    UserDel,
    /// `lazyfree-lazy-user-flush`: FLUSHALL and FLUSHDB without SYNC or ASYNC are ASYNC.
    UserFlush,
    /// `lazyfree-lazy-server-del`: a value a write replaces (SET over a hash, RENAME or a STORE
    /// command onto an existing key) is freed as UNLINK frees.
    ServerDel,
    /// `lazyfree-lazy-expire`: an expired key's value (found on access, by active expiry, or
    /// given a past deadline) is freed as UNLINK frees.
    Expire,
    /// `lazyfree-lazy-eviction`: an evicted key's value is freed as UNLINK frees.
    Eviction,
}

impl LazyOption {
    pub const ALL: [LazyOption; 5] =
        [LazyOption::UserDel, LazyOption::UserFlush, LazyOption::ServerDel, LazyOption::Expire, LazyOption::Eviction];

    /// The CONFIG parameter.
    pub fn name(self) -> &'static str {
        match self {
            LazyOption::UserDel => "lazyfree-lazy-user-del",
            LazyOption::UserFlush => "lazyfree-lazy-user-flush",
            LazyOption::ServerDel => "lazyfree-lazy-server-del",
            LazyOption::Expire => "lazyfree-lazy-expire",
            LazyOption::Eviction => "lazyfree-lazy-eviction",
        }
    }

    pub fn named(name: &str) -> Option<LazyOption> {
        LazyOption::ALL.into_iter().find(|option| option.name() == name)
    }
}

/// The background-freeing counters of INFO's memory section, and the [`LazyOption`]s.
#[derive(Debug, Default)]
pub struct LazyFree {
    pending: AtomicU64,
    /// What the pending values hold, as MEMORY USAGE estimates it.
    pending_bytes: AtomicU64,
    freed: AtomicU64,
    options: [AtomicBool; LazyOption::ALL.len()],
}

impl LazyFree {
    pub fn is_on(&self, option: LazyOption) -> bool {
        self.options.get(option as usize).is_some_and(|on| on.load(Ordering::Relaxed))
    }

    pub fn set(&self, option: LazyOption, on: bool) {
        if let Some(flag) = self.options.get(option as usize) {
            flag.store(on, Ordering::Relaxed);
        }
    }

    /// Frees a removed value: handed to `host`'s background thread when `lazily` and it
    /// takes long to free, else here.
    pub fn release(self: &Arc<Self>, host: &dyn crate::host::Host, value: Value, lazily: bool) {
        if lazily && free_effort(&value) > LAZYFREE_THRESHOLD {
            let bytes = value.memory_usage(USAGE_SAMPLES) as u64;
            host.free_in_background(self.garbage(1, bytes, Box::new(value)));
        }
    }

    /// Wraps `contents` (standing for `objects` keys or values, holding about `bytes`) to be
    /// dropped elsewhere.
    pub fn garbage(self: &Arc<Self>, objects: u64, bytes: u64, contents: Box<dyn Send>) -> Garbage {
        self.pending.fetch_add(objects, Ordering::Relaxed);
        self.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
        Garbage { objects, bytes, contents: Some(contents), counters: Arc::clone(self) }
    }

    /// About what the values handed over and not yet freed hold. `maxmemory` leaves it out:
    /// it is on its way out, and counted, it made eviction take more keys while the thread
    /// freeing them lagged (a review's runs kept 6,112 to 10,532 keys where Redis kept 9,768).
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes.load(Ordering::Relaxed)
    }

    /// `lazyfree_pending_objects`: handed over and not yet freed.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// `lazyfreed_objects`: freed in the background since the server started or since
    /// CONFIG RESETSTAT.
    pub fn freed(&self) -> u64 {
        self.freed.load(Ordering::Relaxed)
    }

    /// CONFIG RESETSTAT: `lazyfreed_objects` starts again from 0 (what is pending stays).
    pub fn reset_stats(&self) {
        self.freed.store(0, Ordering::Relaxed);
    }
}

/// Values (or whole databases) removed from the keyspace, freed when this is dropped.
pub struct Garbage {
    objects: u64,
    bytes: u64,
    contents: Option<Box<dyn Send>>,
    counters: Arc<LazyFree>,
}

impl Drop for Garbage {
    fn drop(&mut self) {
        // The contents first: the counters say "freed" only once they are.
        drop(self.contents.take());
        self.counters.pending.fetch_sub(self.objects, Ordering::Relaxed);
        self.counters.pending_bytes.fetch_sub(self.bytes, Ordering::Relaxed);
        self.counters.freed.fetch_add(self.objects, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Garbage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Garbage").field("objects", &self.objects).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;
    use parking_lot::Mutex;
    use staykv_resp::Reply;

    use super::*;
    use crate::client::Client;
    use crate::exec::{Engine, EngineOptions, NoJournal};

    const NOW: u64 = 1_700_000_000_000;

    /// A host that keeps what it is given to free, so the test decides when it is dropped.
    #[derive(Default)]
    struct KeepingHost(Mutex<Vec<Garbage>>);

    impl crate::host::Host for KeepingHost {
        fn free_in_background(&self, garbage: Garbage) {
            self.0.lock().push(garbage);
        }
    }

    fn run(engine: &Engine, host: &KeepingHost, line: &str) -> Reply {
        run_at(engine, host, NOW, line)
    }

    fn run_at(engine: &Engine, host: &KeepingHost, now: u64, line: &str) -> Reply {
        let args: Vec<Bytes> = line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        engine.execute(&mut Client::new(1, true), &args, now, host, &NoJournal).reply
    }

    /// `HSET key f0 v f1 v ...` with `fields` fields.
    fn hset(engine: &Engine, host: &KeepingHost, key: &str, fields: usize) {
        let pairs: Vec<String> = (0..fields).map(|i| format!("f{i} v")).collect();
        run(engine, host, &format!("HSET {key} {}", pairs.join(" ")));
    }

    fn counters(engine: &Engine) -> (u64, u64) {
        (engine.lazyfree.pending(), engine.lazyfree.freed())
    }

    #[test]
    fn unlink_hands_over_only_values_past_the_threshold() {
        let (engine, host) = (Engine::new(EngineOptions::default()), KeepingHost::default());
        hset(&engine, &host, "big", LAZYFREE_THRESHOLD + 1);
        hset(&engine, &host, "small", LAZYFREE_THRESHOLD);
        run(&engine, &host, "SET s v");
        assert_eq!(run(&engine, &host, "UNLINK big small s nosuch"), Reply::Int(3));
        assert_eq!(host.0.lock().len(), 1, "only the big hash is freed in the background");
        assert_eq!(counters(&engine), (1, 0));
        assert_eq!(run(&engine, &host, "EXISTS big"), Reply::Int(0), "gone before it is freed");
        host.0.lock().clear();
        assert_eq!(counters(&engine), (0, 1));
    }

    #[test]
    fn del_frees_at_once() {
        let (engine, host) = (Engine::new(EngineOptions::default()), KeepingHost::default());
        hset(&engine, &host, "big", 1000);
        assert_eq!(run(&engine, &host, "DEL big"), Reply::Int(1));
        assert!(host.0.lock().is_empty());
        assert_eq!(counters(&engine), (0, 0));
    }

    #[test]
    fn async_flushes_hand_over_their_keys_and_sync_ones_do_not() {
        let (engine, host) = (Engine::new(EngineOptions::default()), KeepingHost::default());
        for i in 0..10 {
            run(&engine, &host, &format!("SET k{i} v"));
        }
        assert_eq!(run(&engine, &host, "FLUSHDB ASYNC"), Reply::Ok);
        assert_eq!(run(&engine, &host, "DBSIZE"), Reply::Int(0));
        assert_eq!(counters(&engine), (10, 0), "one object per key, as Redis counts a flush");
        host.0.lock().clear();
        for i in 0..3 {
            run(&engine, &host, &format!("SET k{i} v"));
        }
        assert_eq!(run(&engine, &host, "FLUSHALL ASYNC"), Reply::Ok);
        assert_eq!(counters(&engine), (3, 10));
        host.0.lock().clear();
        run(&engine, &host, "SET k v");
        assert_eq!(run(&engine, &host, "FLUSHALL"), Reply::Ok);
        assert_eq!(run(&engine, &host, "FLUSHDB SYNC"), Reply::Ok);
        assert!(host.0.lock().is_empty());
        assert_eq!(counters(&engine), (0, 13));
    }

    #[test]
    fn the_user_parameters_make_del_and_plain_flushes_lazy() {
        let (engine, host) = (Engine::new(EngineOptions::default()), KeepingHost::default());
        engine.lazyfree.set(LazyOption::UserDel, true);
        hset(&engine, &host, "big", 1000);
        assert_eq!(run(&engine, &host, "DEL big"), Reply::Int(1));
        assert_eq!(counters(&engine), (1, 0));
        engine.lazyfree.set(LazyOption::UserFlush, true);
        run(&engine, &host, "SET k v");
        assert_eq!(run(&engine, &host, "FLUSHALL"), Reply::Ok);
        assert_eq!(counters(&engine), (2, 0));
        run(&engine, &host, "SET k v");
        assert_eq!(run(&engine, &host, "FLUSHALL SYNC"), Reply::Ok, "SYNC still overrides the parameter");
        assert_eq!(host.0.lock().len(), 2);
    }

    #[test]
    fn overwritten_values_go_to_the_background_under_server_del() {
        let (engine, host) = (Engine::new(EngineOptions::default()), KeepingHost::default());
        hset(&engine, &host, "big", 1000);
        assert_eq!(run(&engine, &host, "SET big v"), Reply::Ok);
        assert!(host.0.lock().is_empty(), "freed at once by default");
        engine.lazyfree.set(LazyOption::ServerDel, true);
        hset(&engine, &host, "big2", 1000);
        assert_eq!(run(&engine, &host, "SET big2 v"), Reply::Ok);
        hset(&engine, &host, "small", 3);
        assert_eq!(run(&engine, &host, "SET small v"), Reply::Ok);
        assert_eq!(counters(&engine), (1, 0), "only the large value is handed over");
        assert_eq!(run(&engine, &host, "GET big2"), Reply::Bulk(Bytes::from_static(b"v")));
    }

    /// Expires `read`, `active`, `past` and `over` (each a 1,000-field hash) as each way of
    /// expiring does: on access, by active expiry, by a deadline already past, under a SET.
    fn expire_each_way(engine: &Engine, host: &KeepingHost, suffix: &str) {
        for key in ["read", "active", "over"] {
            hset(engine, host, &format!("{key}{suffix}"), 1000);
            run(engine, host, &format!("PEXPIRE {key}{suffix} 10"));
        }
        let later = NOW + 20;
        assert_eq!(run_at(engine, host, later, &format!("EXISTS read{suffix}")), Reply::Int(0));
        assert_eq!(run_at(engine, host, later, &format!("SET over{suffix} v")), Reply::Ok);
        assert_eq!(engine.active_expire(later, usize::MAX, &NoJournal, host), 1);
        hset(engine, host, &format!("past{suffix}"), 1000);
        assert_eq!(run(engine, host, &format!("PEXPIREAT past{suffix} 1")), Reply::Int(1));
    }

    #[test]
    fn expired_values_go_to_the_background_under_lazy_expire() {
        let (engine, host) = (Engine::new(EngineOptions::default()), KeepingHost::default());
        expire_each_way(&engine, &host, "1");
        assert!(host.0.lock().is_empty(), "freed at once by default");
        engine.lazyfree.set(LazyOption::Expire, true);
        expire_each_way(&engine, &host, "2");
        assert_eq!(counters(&engine), (4, 0));
        host.0.lock().clear();
        assert_eq!(counters(&engine), (0, 4));
    }

    #[test]
    fn evicted_values_go_to_the_background_under_lazy_eviction() {
        use crate::evict::Evicted;
        let (engine, host) = (Engine::new(EngineOptions::default()), KeepingHost::default());
        engine.eviction.set_policy(crate::evict::Policy::parse("allkeys-random").unwrap());
        let keys = |engine: &Engine| engine.db_sizes().first().map_or(0, |s| s.0);
        for i in 0..4 {
            hset(&engine, &host, &format!("h{i}"), 100);
        }
        assert_eq!(engine.evict(NOW, &NoJournal, &host, &|| keys(&engine) > 3), Evicted::Enough);
        assert!(host.0.lock().is_empty(), "freed at once by default");
        engine.lazyfree.set(LazyOption::Eviction, true);
        assert_eq!(engine.evict(NOW, &NoJournal, &host, &|| keys(&engine) > 1), Evicted::Enough);
        assert_eq!(keys(&engine), 1);
        assert_eq!(counters(&engine), (2, 0));
        // What they hold is known until they are freed (`maxmemory` leaves it out meanwhile).
        let pending = engine.lazyfree.pending_bytes();
        assert!((2 * 100 * 8..2 * 100 * 64).contains(&pending), "{pending} bytes for two hashes of 100 fields");
        host.0.lock().clear();
        assert_eq!(engine.lazyfree.pending_bytes(), 0);
    }

    #[test]
    fn without_a_server_garbage_is_freed_where_it_arises() {
        let engine = Engine::new(EngineOptions::default());
        let mut client = Client::new(1, true);
        let args =
            |line: &str| -> Vec<Bytes> { line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect() };
        let fields: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        engine.execute(
            &mut client,
            &args(&format!("SADD s {}", fields.join(" "))),
            NOW,
            &crate::host::NoHost,
            &NoJournal,
        );
        engine.execute(&mut client, &args("UNLINK s"), NOW, &crate::host::NoHost, &NoJournal);
        assert_eq!(counters(&engine), (0, 1));
    }
}
