//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis's `multi.c`).
//!
//! Queued commands run inside EXEC with every shard locked, so no other client observes a
//! half-applied transaction, and all their effects form one log batch: after a crash a
//! transaction is either entirely there or not at all.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use staykv_resp::Reply;

use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::err;
use crate::exec::Ctx;
use crate::watch::WatchedKey;

pub static COMMANDS: &[CommandSpec] = &[
    // MULTI and WATCH are not `no_multi` in Redis 7.0: inside a transaction they run, answer
    // an error, and leave the transaction intact.
    CommandSpec::new("multi", 1, NOSCRIPT | LOADING | STALE | FAST | TRANSACTION_CONTROL, "transaction", multi),
    CommandSpec::new("exec", 1, NOSCRIPT | LOADING | STALE | ALL_SHARDS | TRANSACTION_CONTROL, "transaction", exec),
    CommandSpec::new("discard", 1, NOSCRIPT | LOADING | STALE | FAST | TRANSACTION_CONTROL, "transaction", discard),
    CommandSpec::new("watch", -2, NOSCRIPT | LOADING | STALE | FAST | TRANSACTION_CONTROL, "transaction", watch)
        .keys(1, -1, 1),
    CommandSpec::new("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST, "transaction", unwatch),
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
    Ok(Reply::Array(queue.iter().map(|args| ctx.call(args)).collect()))
}

/// Redis also fails EXEC when a watched key has expired since WATCH, even if nobody
/// deleted it yet.
fn watched_key_expired(ctx: &mut Ctx) -> bool {
    let now = ctx.now;
    let watching = ctx.client.watching.clone();
    watching
        .iter()
        .filter(|w| !w.expired_at_watch)
        .any(|w| ctx.peek_raw(w.db, &w.key).is_some_and(|e| e.is_expired(now)))
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
        let expired_at_watch = ctx.peek_raw(db, key).is_some_and(|e| e.is_expired(now));
        let engine = ctx.engine;
        engine.watches.watch(ctx.client, WatchedKey { db, key: Bytes::copy_from_slice(key), expired_at_watch });
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
}
