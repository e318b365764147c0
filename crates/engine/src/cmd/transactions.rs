//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis's `multi.c`).
//!
//! Queued commands run inside EXEC with every shard locked, so no other client observes a
//! half-applied transaction, and all their effects form one log batch: after a crash a
//! transaction is either entirely there or not at all.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use staykv_resp::Reply;

use crate::client::queued_command_bytes;
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::err;
use crate::exec::Ctx;
use crate::key_spec::{key::*, KeySpec};

pub static COMMANDS: &[CommandSpec] = &[
    // MULTI and WATCH are not `no_multi` in Redis 7.0: inside a transaction they run, answer
    // an error, and leave the transaction intact.
    CommandSpec::new(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | TRANSACTION_CONTROL | ALLOW_BUSY,
        "transaction",
        multi,
    ),
    CommandSpec::new(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | ALL_SHARDS | TRANSACTION_CONTROL | SKIP_SLOWLOG,
        "transaction",
        exec,
    ),
    CommandSpec::new(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | TRANSACTION_CONTROL | ALLOW_BUSY,
        "transaction",
        discard,
    ),
    CommandSpec::new(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | TRANSACTION_CONTROL | ALLOW_BUSY,
        "transaction",
        watch,
    )
    .key_specs(&[KeySpec::index(1, RO).range(-1, 1, 0)]),
    CommandSpec::new("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, "transaction", unwatch),
];

fn multi(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(err("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_failed = false;
    Ok(Reply::Ok)
}

fn exec(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let Some(queue) = ctx.client.multi.take() else { return Err(err("ERR EXEC without MULTI")) };
    let failed = std::mem::take(&mut ctx.client.multi_failed);
    let dirty = ctx.client.watch_dirty.load(Ordering::Acquire) || watched_key_expired(ctx);
    let engine = ctx.engine;
    engine.watches.unwatch_all(ctx.client);
    if failed {
        return Err(err("EXECABORT Transaction discarded because of previous errors."));
    }
    if dirty {
        return Ok(Reply::NilArray);
    }
    let bytes = queue.iter().map(|command| queued_command_bytes(command)).sum();
    ctx.client.running_transaction = Some((queue.len(), bytes));
    let replies = queue.iter().map(|args| ctx.call(args)).collect();
    ctx.client.running_transaction = None;
    Ok(Reply::Array(replies))
}

/// Redis also fails EXEC when a watched key has expired since WATCH, even if nobody
/// deleted it yet (`isWatchedKeyExpired`); a key that was already expired at WATCH does not
/// count.
fn watched_key_expired(ctx: &mut Ctx) -> bool {
    let (now, engine, id) = (ctx.now, ctx.engine, ctx.client.id);
    let watching = ctx.client.watching.clone();
    watching.iter().any(|w| {
        ctx.peek_raw(w.db, &w.key).is_some_and(|e| e.is_expired(now))
            && !engine.watches.expired_at_watch(id, w.db, &w.key)
    })
}

fn discard(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(err("ERR DISCARD without MULTI"));
    }
    ctx.client.multi_failed = false;
    let engine = ctx.engine;
    engine.watches.unwatch_all(ctx.client);
    Ok(Reply::Ok)
}

fn watch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(err("ERR WATCH inside MULTI is not allowed"));
    }
    let (db, now) = (ctx.client.db, ctx.now);
    for key in args.iter().skip(1) {
        // Answered during a busy script, as in Redis, WATCH cannot read the key the script
        // holds: it is watched as unexpired, so any later change, or the expiry of a key that
        // had already expired, fails the transaction (safe: a retry, never a lost conflict).
        let expired = ctx.holds_shard_of(key) && ctx.peek_raw(db, key).is_some_and(|e| e.is_expired(now));
        let engine = ctx.engine;
        engine.watches.watch(ctx.client, db, key, expired);
    }
    Ok(Reply::Ok)
}

fn unwatch(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let engine = ctx.engine;
    engine.watches.unwatch_all(ctx.client);
    Ok(Reply::Ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::errors;
    use crate::Engine;

    #[test]
    fn what_dooms_a_transaction() {
        let (e, mut c) = (Engine::new(crate::EngineOptions::default()), Client::new(1, true));
        // MULTI and WATCH inside MULTI answer an error and leave the transaction intact.
        e.run_text(&mut c, &["MULTI"]);
        assert_eq!(e.run_text(&mut c, &["MULTI"]), err("ERR MULTI calls can not be nested"));
        assert_eq!(e.run_text(&mut c, &["WATCH", "k"]), err("ERR WATCH inside MULTI is not allowed"));
        assert_eq!(e.run_text(&mut c, &["PING"]), Reply::Status("QUEUED"));
        assert_eq!(e.run_text(&mut c, &["EXEC"]), Reply::Array(vec![Reply::Status("PONG")]));
        // An unknown command, or subcommand, or a subcommand's wrong arity dooms it.
        let execabort = err("EXECABORT Transaction discarded because of previous errors.");
        for refused in [&["NOSUCH"][..], &["OBJECT", "FOO", "k"], &["OBJECT", "ENCODING"]] {
            e.run_text(&mut c, &["MULTI"]);
            assert!(e.run_text(&mut c, refused).is_error());
            assert_eq!(e.run_text(&mut c, &["EXEC"]), execabort);
        }
        assert_eq!(e.run_text(&mut c, &["OBJECT", "ENCODING"]), errors::wrong_arity("object|encoding"));
    }

    /// Redis 7.0's rules for watched keys that expire (checked against redis-server 7.0.15):
    /// `SET k v PX 10` at 1000 makes `k` logically expired from 1010 on.
    mod expiry {
        use super::*;
        use crate::exec::NoJournal;

        struct World {
            e: Engine,
            a: Client,
            b: Client,
        }

        impl World {
            /// `keys` set to expire at 1010; every later step runs at 2000 unless told.
            fn new(keys: &[&str]) -> World {
                let mut w = World {
                    e: Engine::new(crate::EngineOptions::default()),
                    a: Client::new(1, true),
                    b: Client::new(2, true),
                };
                for key in keys {
                    w.e.run_line(&mut w.b, 1000, &NoJournal, &format!("SET {key} v PX 10"));
                }
                w
            }
            fn a(&mut self, line: &str) -> Reply {
                self.e.run_line(&mut self.a, 2000, &NoJournal, line).reply
            }
            fn b(&mut self, line: &str) -> Reply {
                self.e.run_line(&mut self.b, 2000, &NoJournal, line).reply
            }
            /// Whether A's transaction runs (EXEC answers an array, not nil).
            fn a_execs(&mut self, now: u64) -> bool {
                self.e.run_line(&mut self.a, now, &NoJournal, "MULTI");
                self.e.run_line(&mut self.a, now, &NoJournal, "PING");
                let reply = self.e.run_line(&mut self.a, now, &NoJournal, "EXEC").reply;
                assert!(matches!(reply, Reply::Array(_) | Reply::NilArray), "EXEC answered {reply:?}");
                matches!(reply, Reply::Array(_))
            }
        }

        #[test]
        fn deleting_a_key_already_expired_at_watch_is_no_change() {
            // Lazy expiry by another client's read, DEL (which expires it first), EXISTS.
            for deleter in ["GET k", "DEL k", "EXISTS k", "EXPIRE k 100", "TYPE k"] {
                let mut w = World::new(&["k"]);
                w.a("WATCH k");
                w.b(deleter);
                assert!(w.a_execs(2000), "{deleter}");
            }
            // The watcher's own read, and active expiry.
            let mut w = World::new(&["k"]);
            w.a("WATCH k");
            w.a("GET k");
            assert!(w.a_execs(2000));
            let mut w = World::new(&["k"]);
            w.a("WATCH k");
            assert_eq!(w.e.active_expire(2000, 1000, &NoJournal, &crate::host::NoHost), 1);
            assert!(w.a_execs(2000));
        }

        #[test]
        fn writing_a_key_already_expired_at_watch_is_a_change() {
            for writes in [&["SET k x"][..], &["GET k", "SET k x"], &["SET k x", "DEL k"], &["SADD k m"]] {
                let mut w = World::new(&["k"]);
                w.a("WATCH k");
                for line in writes {
                    w.b(line);
                }
                assert!(!w.a_execs(2000), "{writes:?}");
            }
            // After active expiry deleted it, a write still counts.
            let mut w = World::new(&["k"]);
            w.a("WATCH k");
            w.e.active_expire(2000, 1000, &NoJournal, &crate::host::NoHost);
            w.b("SET k x");
            assert!(!w.a_execs(2000));
            // The watcher's own write too.
            let mut w = World::new(&["k"]);
            w.a("WATCH k");
            w.a("SET k 1");
            assert!(!w.a_execs(2000));
        }

        #[test]
        fn a_key_that_expires_after_watch_fails_exec() {
            let mut w = World::new(&[]);
            w.e.run_line(&mut w.b, 1000, &NoJournal, "SET k v PX 60");
            w.e.run_line(&mut w.a, 1000, &NoJournal, "WATCH k");
            assert!(!w.a_execs(1100), "expired, not yet deleted");
            let mut w = World::new(&[]);
            w.e.run_line(&mut w.b, 1000, &NoJournal, "SET k v PX 60");
            w.e.run_line(&mut w.a, 1000, &NoJournal, "WATCH k");
            w.e.run_line(&mut w.b, 1100, &NoJournal, "GET k");
            assert!(!w.a_execs(1100), "expired and deleted");
            // Before the deadline nothing happened.
            let mut w = World::new(&[]);
            w.e.run_line(&mut w.b, 1000, &NoJournal, "SET k v PX 60");
            w.e.run_line(&mut w.a, 1000, &NoJournal, "WATCH k");
            assert!(w.a_execs(1050));
        }

        #[test]
        fn each_watched_key_keeps_its_own_note() {
            // Both expired at WATCH; deleting either is no change.
            for deleted in ["x", "y"] {
                let mut w = World::new(&["x", "y"]);
                w.a("WATCH x y");
                w.b(&format!("GET {deleted}"));
                assert!(w.a_execs(2000), "{deleted}");
            }
            // A live key beside an expired one: deleting the expired one is no change,
            // writing the live one is.
            let mut w = World::new(&["y"]);
            w.b("SET x 1");
            w.a("WATCH x y");
            w.b("GET y");
            assert!(w.a_execs(2000));
            let mut w = World::new(&["y"]);
            w.a("WATCH y x");
            w.b("SET x 1");
            assert!(!w.a_execs(2000));
            // Two clients watching the same expired key: neither fails.
            let mut w = World::new(&["k"]);
            let mut c = Client::new(3, true);
            w.a("WATCH k");
            w.e.run_line(&mut c, 2000, &NoJournal, "WATCH k");
            w.b("GET k");
            assert!(w.a_execs(2000));
            for line in ["MULTI", "PING"] {
                w.e.run_line(&mut c, 2000, &NoJournal, line);
            }
            assert!(matches!(w.e.run_line(&mut c, 2000, &NoJournal, "EXEC").reply, Reply::Array(_)));
        }

        #[test]
        fn flush_and_swapdb_tell_expired_keys_apart() {
            // Flushing an expired key is no change; flushing a live one is.
            let mut w = World::new(&["k"]);
            w.a("WATCH k");
            w.b("FLUSHDB");
            assert!(w.a_execs(2000));
            let mut w = World::new(&["k"]);
            w.b("SET z 1");
            w.a("WATCH k");
            w.b("FLUSHALL");
            assert!(w.a_execs(2000));
            let mut w = World::new(&[]);
            w.b("SET k 1");
            w.a("WATCH k");
            w.b("FLUSHALL");
            assert!(!w.a_execs(2000));
            // SWAPDB: expired against missing is no change; expired against live is one.
            let mut w = World::new(&["k"]);
            w.a("WATCH k");
            w.b("SWAPDB 0 1");
            assert!(w.a_execs(2000));
            let mut w = World::new(&["k"]);
            w.b("SELECT 1");
            w.b("SET k v");
            w.a("WATCH k");
            w.b("SWAPDB 0 1");
            assert!(!w.a_execs(2000));
            // Missing replaced by expired, expired by expired: still logically missing, and
            // deleting the swapped-in expired key afterwards is no change either.
            for also_here in [false, true] {
                let mut w = World::new(if also_here { &["k"][..] } else { &[] });
                w.e.run_line(&mut w.b, 1000, &NoJournal, "SELECT 1");
                w.e.run_line(&mut w.b, 1000, &NoJournal, "SET k v PX 10");
                w.a("WATCH k");
                w.b("SWAPDB 0 1");
                w.b("SELECT 0");
                w.b("GET k");
                assert!(w.a_execs(2000), "{also_here}");
            }
        }
    }
}
