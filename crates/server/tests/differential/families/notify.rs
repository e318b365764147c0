//! Keyspace notifications: `CONFIG SET notify-keyspace-events` to random class combinations
//! (K E g $ l s h z x e t m d n A, invalid letters: the error), a subscriber on each server
//! PSUBSCRIBEd to `__key*__:*`, and writes from every plain family (`Gen::inner_ops`) plus
//! the commands whose events are easy to get wrong: key misses (`m`), new keys (`n`), RENAME
//! COPY MOVE, EXPIRE family with past deadlines (deleted at once), GETDEL GETEX, INCRBYFLOAT,
//! SETRANGE APPEND, LMOVE SPOP SMOVE, streams. After every batch the events each subscriber
//! received are compared in order (`Harness::drain_subscribers`); keys that really expire
//! are read back in an episode compared as a multiset (`Harness::notify_expiry_episode`).

use super::{c, CmdGen, Family};
use crate::differential::gen::{unordered, Check, Gen, Op};

pub const FAMILY: Family = Family {
    name: "notify",
    required: &["CONFIG", "PSUBSCRIBE", "SET"],
    gens: GENS,
    // Its commands are the plain families' (and CONFIG SET is no command to wrap).
    wraps: true,
    subscribers: 1,
    sub_setup: &[&["PSUBSCRIBE", "__key*__:*"]],
    setup: &[&["CONFIG", "SET", "notify-keyspace-events", "KEA"]],
};

const GENS: &[CmdGen] = &[
    c("CONFIG", 3, config),
    c("SET", 50, inner),
    c("GET", 4, miss),
    c("SET", 6, set),
    c("EXPIRE", 5, expire),
    c("RENAME", 3, rename),
    c("COPY", 2, copy),
    c("MOVE", 2, move_),
    c("GETDEL", 2, getdel),
    c("GETEX", 3, getex),
    c("INCRBYFLOAT", 2, incrbyfloat),
    c("SETRANGE", 2, setrange),
    c("APPEND", 2, append),
    c("LMOVE", 2, lmove),
    c("SPOP", 2, spop),
    c("SMOVE", 2, smove),
    c("HINCRBYFLOAT", 2, hincrbyfloat),
    c("XADD", 3, xadd),
    c("DEL", 3, del),
    c("SORT", 2, sort_store),
];

/// A random class string: mostly valid letters, sometimes an invalid one (CONFIG SET fails
/// and the classes stay as they were).
fn config(g: &mut Gen) -> Vec<Op> {
    if g.chance(0.15) {
        return vec![Op::new(args![g.name("CONFIG"), "GET", "notify-keyspace-events"])];
    }
    const LETTERS: &[u8] = b"KEg$lshzxetmdnA";
    let mut flags = Vec::new();
    // Keyspace and/or keyevent most of the time, or nothing is published at all.
    match g.below(6) {
        0 => flags.push(b'K'),
        1 => flags.push(b'E'),
        2 => {}
        _ => flags.extend_from_slice(b"KE"),
    }
    for _ in 0..g.range(1, 5) {
        flags.push(g.pick(LETTERS));
    }
    if g.chance(0.05) {
        flags.push(g.pick(b"QqX1 ".as_slice()));
    }
    g.rng_shuffle(&mut flags);
    vec![Op::new(args![g.name("CONFIG"), "SET", "notify-keyspace-events", flags])]
}

/// A command of a plain family. Not SORT: Redis looks its BY and GET keys up in the order
/// it loads the elements, for a set or sorted set its hash order, so their `keymiss` events
/// come in an unspecified order (`sort_store` covers SORT on lists).
fn inner(g: &mut Gen) -> Vec<Op> {
    loop {
        let ops = g.inner_ops();
        let sort = ops.iter().any(|op| {
            op.args.first().is_some_and(|n| n.eq_ignore_ascii_case(b"SORT") || n.eq_ignore_ascii_case(b"SORT_RO"))
        });
        if !sort {
            return ops;
        }
    }
}

/// SORT ... STORE over a list (`sortstore`, `new`, or `del` for an empty result), BY and GET
/// keys looked up in the list's order.
fn sort_store(g: &mut Gen) -> Vec<Op> {
    let mut ops = Vec::new();
    if g.chance(0.5) {
        ops.push(Op::new(args!["RPUSH", "nl", g.pick_str(&["3", "1", "a"]), g.pick_str(&["2", "b"])]));
    }
    if g.chance(0.3) {
        ops.push(Op::new(args!["SET", g.pick_str(&["nw_1", "nw_2", "nw_3"]), g.pick_str(&["5", "1"])]));
    }
    let mut a = args![g.name("SORT"), g.pick_str(&["nl", "nl", "missing"])];
    match g.below(4) {
        0 => a.extend(args!["BY", "nw_*"]),
        1 => a.extend(args!["BY", "nosort"]),
        _ => a.push(b"ALPHA".to_vec()),
    }
    if g.chance(0.5) {
        a.extend(args!["GET", g.pick_str(&["#", "nw_*", "nh_*->f"])]);
    }
    a.extend(args!["STORE", g.pick_str(&["nd", "k1", "nl"])]);
    // Redis's SORT reads errno without clearing it (see the dump family): cleared first.
    ops.push(Op::kept(args!["ZUNION", "1", "errno:clear", "WEIGHTS", "1"]));
    ops.push(Op::new(a));
    ops
}

/// Reads of keys that are often missing: `keymiss`.
fn miss(g: &mut Gen) -> Vec<Op> {
    let name = g.pick_str(&["GET", "STRLEN", "HGET", "LRANGE", "SMEMBERS", "ZSCORE", "EXISTS", "TYPE", "TTL"]);
    let mut a = args![name.clone(), g.pick_str(&["missing", "k0", "k1", "k13"])];
    match &name[..] {
        b"HGET" | b"ZSCORE" => a.push(b"f".to_vec()),
        b"LRANGE" => a.extend(args!["0", "-1"]),
        // A set's members come in its hash order.
        b"SMEMBERS" => return vec![Op::with(a, Check::Norm(unordered))],
        // A TTL in seconds rounds, and may round differently a millisecond later.
        b"TTL" => return vec![Op::with(a, Check::Tol(1))],
        _ => {}
    }
    vec![Op::new(a)]
}

fn set(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SET"), g.key(), g.value()];
    match g.below(8) {
        0 => a.extend(args!["EX", g.rel_secs().to_string()]),
        1 => a.extend(args!["PXAT", g.past(true, true).max(1).to_string()]),
        2 => a.push(g.kw("KEEPTTL")),
        3 => a.push(g.kw("GET")),
        4 => a.push(g.kw("NX")),
        5 => a.push(g.kw("XX")),
        _ => {}
    }
    vec![Op::new(a)]
}

fn expire(g: &mut Gen) -> Vec<Op> {
    let (name, time) = match g.below(6) {
        0 => ("EXPIRE", g.rel_arg(false)),
        1 => ("PEXPIRE", g.rel_arg(true)),
        2 => ("EXPIREAT", g.abs_arg(false)),
        3 => ("PEXPIREAT", g.abs_arg(true)),
        4 => ("PERSIST", Vec::new()),
        _ => ("PEXPIREAT", g.past(true, true).to_string().into_bytes()),
    };
    let mut a = args![g.name(name), g.key()];
    if name != "PERSIST" {
        a.push(time);
    }
    vec![Op::new(a)]
}

fn rename(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.pick_str(&["RENAME", "RENAMENX"]), g.key(), g.key()])]
}

fn copy(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("COPY"), g.key(), g.key()];
    if g.chance(0.3) {
        a.extend(args!["DB", g.pick_str(&["0", "1"])]);
    }
    if g.chance(0.5) {
        a.push(g.kw("REPLACE"));
    }
    vec![Op::new(a)]
}

fn move_(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("MOVE"), g.key(), g.pick_str(&["0", "1", "2"])])]
}

fn getdel(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("GETDEL"), g.key()])]
}

fn getex(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("GETEX"), g.key()];
    match g.below(6) {
        0 => a.extend(args!["EX", g.rel_secs().to_string()]),
        1 => a.extend(args!["PXAT", g.abs_ms().to_string()]),
        2 => a.extend(args!["PXAT", g.past(true, true).max(1).to_string()]),
        3 => a.push(g.kw("PERSIST")),
        _ => {}
    }
    vec![Op::new(a)]
}

fn incrbyfloat(g: &mut Gen) -> Vec<Op> {
    let name = g.pick(&["INCRBYFLOAT", "INCRBY", "DECR", "INCR"]);
    let mut a = args![g.name(name), g.key()];
    if name.starts_with("INCRBY") {
        a.push(g.pick_str(&["1", "2.5", "-1"]));
    }
    vec![Op::new(a)]
}

fn setrange(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("SETRANGE"), g.key(), g.pick_str(&["0", "3", "0", "10"]), g.pick_str(&["x", ""])])]
}

fn append(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("APPEND"), g.key(), g.pick_str(&["x", ""])])]
}

fn lmove(g: &mut Gen) -> Vec<Op> {
    let ends = ["LEFT", "RIGHT"];
    let mut ops = Vec::new();
    let (src, dst) = (g.key(), g.key());
    if g.chance(0.5) {
        ops.push(Op::new(args!["RPUSH", src, "a", "b"]));
    }
    ops.push(Op::new(match g.below(3) {
        0 => args![g.name("RPOPLPUSH"), src, dst],
        _ => args![g.name("LMOVE"), src, dst, g.pick_str(&ends), g.pick_str(&ends)],
    }));
    ops
}

fn spop(g: &mut Gen) -> Vec<Op> {
    // A set of one member, so the pick is not random: its own key, which never holds
    // anything else (the DEL and SADD before are kept whole, never mutated).
    let k = b"spop:one".to_vec();
    let mut ops = vec![Op::kept(args!["DEL", k]), Op::kept(args!["SADD", k, "only"])];
    let mut a = args![g.name("SPOP"), k];
    if g.chance(0.5) {
        a.push(g.pick_str(&["1", "5", "0"]));
    }
    ops.push(Op::new(a));
    ops
}

fn smove(g: &mut Gen) -> Vec<Op> {
    let (src, dst) = (g.key(), g.key());
    let mut ops = Vec::new();
    if g.chance(0.5) {
        ops.push(Op::new(args!["SADD", src, "m", "n"]));
    }
    ops.push(Op::new(args![g.name("SMOVE"), src, dst, g.pick_str(&["m", "n", "x"])]));
    ops
}

fn hincrbyfloat(g: &mut Gen) -> Vec<Op> {
    let name = g.pick(&["HINCRBYFLOAT", "HINCRBY", "ZINCRBY"]);
    let a = if name == "ZINCRBY" {
        args![g.name(name), g.key(), "1", "m"]
    } else {
        args![g.name(name), g.key(), "f", if name == "HINCRBY" { "2" } else { "1.5" }]
    };
    vec![Op::new(a)]
}

fn xadd(g: &mut Gen) -> Vec<Op> {
    let k = g.key();
    let id = format!("{}-{}", g.range(1, 50), g.range(0, 3));
    let mut a = args![g.name("XADD"), k];
    if g.chance(0.3) {
        a.extend(args!["MAXLEN", g.pick_str(&["1", "2"])]);
    }
    a.extend(args![id, "f", g.value()]);
    let mut ops = vec![Op::new(a)];
    if g.chance(0.2) {
        ops.push(Op::new(args!["XTRIM", k, "MAXLEN", "0"]));
    }
    if g.chance(0.2) {
        ops.push(Op::new(args!["XDEL", k, format!("{}-0", g.range(1, 50))]));
    }
    ops
}

fn del(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.pick_str(&["DEL", "UNLINK"])];
    a.extend(g.keys(1, 3));
    vec![Op::new(a)]
}
