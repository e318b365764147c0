//! Transactions: MULTI ... EXEC with random commands of the plain families inside (each
//! element of EXEC's reply compared with the queued command's own check), DISCARD, queued
//! errors (unknown command, wrong arity, MULTI and WATCH inside MULTI: EXECABORT), runtime
//! errors inside EXEC, EXEC/DISCARD without MULTI, WATCH/UNWATCH with writes by the same
//! client and by another client (the harness's second connection) before EXEC, which then
//! answers nil.

use super::{c, CmdGen, Family};
use crate::differential::gen::{Check, Gen, Op, DBS};

pub const FAMILY: Family =
    Family { name: "transactions", required: &["MULTI", "EXEC"], gens: GENS, wraps: true, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("MULTI", 12, multi_exec),
    c("WATCH", 8, watch_exec),
    c("MULTI", 3, queued_error),
    c("DISCARD", 2, multi_discard),
    c("EXEC", 1, stray),
    c("UNWATCH", 1, unwatch),
];

/// MULTI, `n` queued commands from the plain families, and `last` (EXEC or DISCARD): the
/// queued replies compared exactly (`+QUEUED`, or an error), EXEC's elements each by the
/// check of its command.
fn transaction(g: &mut Gen, n: i64, last: &str, ops: &mut Vec<Op>) {
    ops.push(Op::new(args![g.name("MULTI")]));
    let mut checks = Vec::new();
    for _ in 0..n {
        for op in g.inner_ops() {
            checks.push(op.check.clone());
            ops.push(Op::new(op.args));
        }
    }
    let name = g.name(last);
    ops.push(if last == "EXEC" { Op::with(args![name], Check::Each(checks)) } else { Op::new(args![name]) });
}

fn multi_exec(g: &mut Gen) -> Vec<Op> {
    let mut ops = Vec::new();
    let n = g.range(0, 6);
    transaction(g, n, "EXEC", &mut ops);
    ops
}

fn multi_discard(g: &mut Gen) -> Vec<Op> {
    let mut ops = Vec::new();
    let n = g.range(0, 3);
    transaction(g, n, "DISCARD", &mut ops);
    ops
}

/// A command that is refused when queued (EXECABORT), or that answers an error at once and
/// leaves the transaction alone (MULTI and WATCH inside MULTI, in Redis 7.0).
fn refused(g: &mut Gen) -> Vec<Vec<u8>> {
    match g.below(8) {
        0 => args!["NOSUCHCOMMAND", g.key()],
        1 => args![g.name("GET")],
        2 => args![g.name("SET"), g.key()],
        3 => args![g.name("HSET"), g.key(), "f"],
        4 => args![g.name("MULTI")],
        5 => args![g.name("WATCH"), g.key()],
        6 => args![g.name("OBJECT"), g.pick_str(&["ENCODING", "FOO", ""])],
        _ => args![g.name("ZADD"), g.key()],
    }
}

fn queued_error(g: &mut Gen) -> Vec<Op> {
    let mut ops = vec![Op::new(args![g.name("MULTI")])];
    let mut checks = Vec::new();
    let n = g.range(0, 4);
    let bad = g.range(0, n);
    for i in 0..=n {
        if i == bad {
            // Not an element of EXEC's reply: refused, or run at once.
            ops.push(Op::new(refused(g)));
        }
        if i < n {
            for op in g.inner_ops() {
                checks.push(op.check.clone());
                ops.push(Op::new(op.args));
            }
        }
    }
    let last = if g.chance(0.8) { "EXEC" } else { "DISCARD" };
    ops.push(Op::with(args![g.name(last)], Check::Each(checks)));
    ops
}

/// A write (or not) by another client to the watched key, another key, or in another
/// database.
fn side_write(g: &mut Gen, db: &[u8], watched: &[u8]) -> Op {
    let key = if g.chance(0.7) { watched.to_vec() } else { g.key() };
    let db = if g.chance(0.85) { db.to_vec() } else { g.pick_str(DBS) };
    let args = match g.below(9) {
        0..=2 => args!["SET", key, g.value()],
        3 => args!["DEL", key],
        4 => args!["GET", key],
        5 => args!["EXPIRE", key, g.rel_secs().to_string()],
        6 => args!["PERSIST", key],
        7 => args!["LPUSH", key, g.value()],
        _ => args!["INCR", key],
    };
    Op::side(db, args)
}

/// SELECT, WATCH, maybe commands of this client and writes by another, maybe UNWATCH, then
/// a transaction: EXEC answers nil when a watched key was touched.
fn watch_exec(g: &mut Gen) -> Vec<Op> {
    let db = g.pick_str(DBS);
    let n = g.below(3) + 1;
    let watched = g.distinct_keys(n);
    let mut watch = args![g.name("WATCH")];
    watch.extend(watched.iter().cloned());
    let mut ops = vec![Op::new(args![g.name("SELECT"), db.clone()]), Op::new(watch)];
    if g.chance(0.3) {
        ops.extend(own_commands(g, &watched));
    }
    if g.chance(0.6) {
        let k = watched[g.below(watched.len())].clone();
        ops.push(side_write(g, &db, &k));
    }
    if g.chance(0.1) {
        ops.push(Op::new(args![g.name("UNWATCH")]));
    }
    let n = g.range(0, 4);
    let last = if g.chance(0.9) { "EXEC" } else { "DISCARD" };
    transaction(g, n, last, &mut ops);
    ops
}

/// Commands of the watching client itself, between WATCH and MULTI; never PFADD on a watched
/// key (StayKV divergence). Over an HLL whose registers a string command corrupted (the
/// other families' SETRANGE and APPEND reach HLL keys here), Redis 7.0's PFADD changes the
/// registers it reaches before it answers INVALIDOBJ, and counts that as no change: no
/// WATCH fails, no event, nothing propagated. StayKV makes the same change and counts it,
/// as the documentation of WATCH has it: its EXEC then answers nil (seed
/// 1796432937581083732).
fn own_commands(g: &mut Gen, watched: &[Vec<u8>]) -> Vec<Op> {
    loop {
        let ops = g.inner_ops();
        let pfadd_on_watched = ops.iter().any(|op| {
            op.args.first().is_some_and(|name| name.eq_ignore_ascii_case(b"PFADD"))
                && op.args.get(1).is_some_and(|key| watched.contains(key))
        });
        if !pfadd_on_watched {
            return ops;
        }
    }
}

/// EXEC or DISCARD without MULTI.
fn stray(g: &mut Gen) -> Vec<Op> {
    let name = g.pick(&["EXEC", "DISCARD"]);
    vec![Op::new(args![g.name(name)])]
}

fn unwatch(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("UNWATCH")])]
}
