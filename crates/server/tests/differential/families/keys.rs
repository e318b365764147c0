//! Keys: DEL UNLINK EXISTS TYPE EXPIRE PEXPIRE EXPIREAT PEXPIREAT (NX XX GT LT) TTL PTTL
//! EXPIRETIME PEXPIRETIME PERSIST KEYS SCAN RENAME RENAMENX RANDOMKEY TOUCH COPY MOVE
//! OBJECT ENCODING/HELP, SELECT, SWAPDB, DBSIZE, FLUSHDB; plus writers of every known type so
//! the key commands see them all.

use super::{c, cn, one, CmdGen, Family};
use crate::differential::gen::{unordered, Check, Gen, Op, RandKind, RandomCheck};

pub const FAMILY: Family =
    Family { name: "keys", required: &["DEL", "EXISTS", "SET"], gens: GENS, wraps: false, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    // Writers, so there is something to expire, rename, copy, move.
    c("SET", 14, set),
    c("MSET", 3, mset),
    c("LPUSH", 2, lpush),
    c("SADD", 2, sadd),
    c("HSET", 2, hset),
    c("ZADD", 2, zadd),
    c("DEL", 4, del),
    c("UNLINK", 2, unlink),
    c("EXISTS", 4, exists),
    c("TYPE", 4, type_),
    c("EXPIRE", 6, expire),
    c("PEXPIRE", 5, pexpire),
    c("EXPIREAT", 4, expireat),
    c("PEXPIREAT", 4, pexpireat),
    c("TTL", 5, ttl),
    c("PTTL", 4, pttl),
    c("EXPIRETIME", 3, expiretime),
    c("PEXPIRETIME", 3, pexpiretime),
    c("PERSIST", 3, persist),
    c("KEYS", 4, keys),
    c("SCAN", 3, scan),
    c("RENAME", 4, rename),
    c("RENAMENX", 3, renamenx),
    cn("RANDOMKEY", 2, &["EXISTS"], randomkey),
    c("TOUCH", 2, touch),
    c("COPY", 4, copy),
    c("MOVE", 3, move_),
    c("OBJECT", 5, object),
    c("SELECT", 3, select),
    c("SWAPDB", 2, swapdb),
    c("DBSIZE", 3, dbsize),
    c("FLUSHDB", 1, flushdb),
    c("", 1, unknown),
];

fn set(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SET"), g.key(), g.value()];
    match g.below(6) {
        0 => {
            a.push(b"EX".to_vec());
            a.push(g.rel_secs().to_string().into_bytes());
        }
        1 => {
            a.push(b"PXAT".to_vec());
            a.push(g.abs_ms().to_string().into_bytes());
        }
        _ => {}
    }
    one(a)
}

fn mset(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("MSET")];
    for _ in 0..g.range(1, 4) {
        a.push(g.key());
        a.push(g.value());
    }
    one(a)
}

fn lpush(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("LPUSH"), g.key(), g.value(), g.value()])
}

fn sadd(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SADD"), g.key(), g.pick_str(&["a", "b", "1", "2", "100"]), g.pick_str(&["c", "3", "-7"])])
}

fn hset(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("HSET"), g.key(), g.pick_str(&["f1", "f2", "f3"]), g.value()])
}

fn zadd(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("ZADD"), g.key(), g.range(-5, 5).to_string(), g.pick_str(&["a", "b", "c", "d"])])
}

fn multi_key(g: &mut Gen, name: &str) -> Vec<Op> {
    let mut a = args![g.name(name)];
    a.extend(g.keys(1, 4));
    one(a)
}

fn del(g: &mut Gen) -> Vec<Op> {
    multi_key(g, "DEL")
}

fn unlink(g: &mut Gen) -> Vec<Op> {
    multi_key(g, "UNLINK")
}

fn exists(g: &mut Gen) -> Vec<Op> {
    multi_key(g, "EXISTS")
}

fn touch(g: &mut Gen) -> Vec<Op> {
    multi_key(g, "TOUCH")
}

fn type_(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("TYPE"), g.key()])
}

fn expire_options(g: &mut Gen, a: &mut Vec<Vec<u8>>) {
    let n = g.pick(&[0, 0, 1, 1, 1, 2]);
    for _ in 0..n {
        match g.below(9) {
            0 | 1 => a.push(g.kw("NX")),
            2 | 3 => a.push(g.kw("XX")),
            4 | 5 => a.push(g.kw("GT")),
            6 | 7 => a.push(g.kw("LT")),
            _ => a.push(g.pick_str(&["FOO", "", "NXX"])),
        }
    }
}

fn expire_generic(g: &mut Gen, name: &str, ms: bool, absolute: bool) -> Vec<Op> {
    let time = if absolute { g.abs_arg(ms) } else { g.rel_arg(ms) };
    let mut a = args![g.name(name), g.key(), time];
    expire_options(g, &mut a);
    one(a)
}

fn expire(g: &mut Gen) -> Vec<Op> {
    expire_generic(g, "EXPIRE", false, false)
}

fn pexpire(g: &mut Gen) -> Vec<Op> {
    expire_generic(g, "PEXPIRE", true, false)
}

fn expireat(g: &mut Gen) -> Vec<Op> {
    expire_generic(g, "EXPIREAT", false, true)
}

fn pexpireat(g: &mut Gen) -> Vec<Op> {
    expire_generic(g, "PEXPIREAT", true, true)
}

fn ttl(g: &mut Gen) -> Vec<Op> {
    vec![Op::with(args![g.name("TTL"), g.key()], Check::Tol(1))]
}

fn pttl(g: &mut Gen) -> Vec<Op> {
    vec![Op::with(args![g.name("PTTL"), g.key()], Check::Tol(1500))]
}

fn expiretime(g: &mut Gen) -> Vec<Op> {
    vec![Op::with(args![g.name("EXPIRETIME"), g.key()], Check::Tol(1))]
}

fn pexpiretime(g: &mut Gen) -> Vec<Op> {
    vec![Op::with(args![g.name("PEXPIRETIME"), g.key()], Check::Tol(1500))]
}

fn persist(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("PERSIST"), g.key()])
}

fn keys(g: &mut Gen) -> Vec<Op> {
    vec![Op::with(args![g.name("KEYS"), g.pattern()], Check::Norm(unordered))]
}

fn scan(g: &mut Gen) -> Vec<Op> {
    let name = g.name("SCAN");
    vec![g.scan_op(vec![name])]
}

fn rename(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("RENAME"), g.key(), g.key()])
}

fn renamenx(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("RENAMENX"), g.key(), g.key()])
}

fn randomkey(g: &mut Gen) -> Vec<Op> {
    let check =
        Check::Random(RandomCheck { kind: RandKind::RandomKey, key: Vec::new(), count: None, with_values: false });
    vec![Op::with(args![g.name("RANDOMKEY")], check)]
}

fn copy(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("COPY"), g.key(), g.key()];
    for _ in 0..g.range(0, 2) {
        match g.below(5) {
            0 | 1 => {
                a.push(g.kw("DB"));
                a.push(g.db());
            }
            2 | 3 => a.push(g.kw("REPLACE")),
            _ => a.push(g.pick_str(&["FOO", "DB"])),
        }
    }
    one(a)
}

fn move_(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("MOVE"), g.key(), g.db()])
}

fn object(g: &mut Gen) -> Vec<Op> {
    if g.below(20) < 16 {
        return one(args![g.name("OBJECT"), g.kw("ENCODING"), g.key()]);
    }
    let a = match g.below(4) {
        0 => args![g.name("OBJECT"), g.kw("HELP")],
        1 => args![g.name("OBJECT"), "ENCODING"],
        2 => args![g.name("OBJECT"), "ENCODING", g.key(), g.key()],
        _ => args![g.name("OBJECT"), g.pick_str(&["FOO", "", "ENCODINGS"]), g.key()],
    };
    one(a)
}

fn select(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SELECT"), g.db()])
}

fn swapdb(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SWAPDB"), g.db(), g.db()])
}

fn dbsize(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("DBSIZE")])
}

fn flushdb(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("FLUSHDB")];
    match g.below(6) {
        0 => a.push(g.kw("ASYNC")),
        1 => a.push(g.kw("SYNC")),
        2 => a.push(g.pick_str(&["FOO", "LAZY"])),
        _ => {}
    }
    one(a)
}

/// A command neither server has: Redis's exact "unknown command" text.
fn unknown(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.pick_str(&["NOSUCHCOMMAND", "getx", "HSETALL", "k0"])];
    for _ in 0..g.range(0, 3) {
        a.push(g.value());
    }
    one(a)
}
