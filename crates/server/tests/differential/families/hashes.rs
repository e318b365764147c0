//! Hashes: HSET HSETNX HGET HMGET HMSET HGETALL HDEL HEXISTS HLEN HSTRLEN HKEYS HVALS HINCRBY
//! HINCRBYFLOAT HRANDFIELD HSCAN.

use super::{c, cn, one, CmdGen, Family};
use crate::differential::gen::{unordered, unordered_pairs, Check, Gen, Op, RandKind, RandomCheck};

pub const FAMILY: Family =
    Family { name: "hashes", required: &["HSET", "HGETALL"], gens: GENS, wraps: false, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("HSET", 14, hset),
    c("HSET", 1, hset_many),
    c("HSETNX", 4, hsetnx),
    c("HGET", 8, hget),
    c("HMGET", 5, hmget),
    c("HMSET", 3, hmset),
    c("HGETALL", 5, hgetall),
    c("HDEL", 6, hdel),
    c("HEXISTS", 4, hexists),
    c("HLEN", 4, hlen),
    c("HSTRLEN", 3, hstrlen),
    c("HKEYS", 3, hkeys),
    c("HVALS", 3, hvals),
    c("HINCRBY", 5, hincrby),
    cn("HINCRBYFLOAT", 4, &["HSET"], hincrbyfloat),
    cn("HRANDFIELD", 4, &["HEXISTS", "HGET"], hrandfield),
    c("HSCAN", 3, hscan),
    c("SET", 1, set_string),
];

const LONG: &str = "a-value-longer-than-sixty-four-bytes-turns-a-listpack-into-a-hashtable";

fn field(g: &mut Gen) -> Vec<u8> {
    match g.below(30) {
        0 => b"".to_vec(),
        1 => LONG.as_bytes().to_vec(),
        2 => b"\x00f".to_vec(),
        3 => g.pick_str(&["1", "-1", "10"]),
        _ => format!("f{}", g.below(8)).into_bytes(),
    }
}

fn hvalue(g: &mut Gen) -> Vec<u8> {
    if g.chance(0.03) {
        LONG.as_bytes().to_vec()
    } else {
        g.value()
    }
}

fn fields(g: &mut Gen, min: i64, max: i64) -> Vec<Vec<u8>> {
    (0..g.range(min, max)).map(|_| field(g)).collect()
}

fn set_pairs(g: &mut Gen, name: &str) -> Vec<Op> {
    let mut a = args![g.name(name), g.key()];
    for _ in 0..g.range(1, 4) {
        a.push(field(g));
        a.push(hvalue(g));
    }
    if g.chance(0.04) {
        a.pop();
    }
    one(a)
}

fn hset(g: &mut Gen) -> Vec<Op> {
    set_pairs(g, "HSET")
}

/// Hundreds of fields at once, across Redis's `hash-max-listpack-entries` (512).
fn hset_many(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("HSET"), g.key()];
    let first = g.range(0, 400);
    for i in first..first + g.range(100, 600) {
        a.push(format!("bulk{i}").into_bytes());
        a.push(b"v".to_vec());
    }
    one(a)
}

fn hmset(g: &mut Gen) -> Vec<Op> {
    set_pairs(g, "HMSET")
}

fn hsetnx(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("HSETNX"), g.key(), field(g), hvalue(g)])
}

fn hget(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("HGET"), g.key(), field(g)])
}

fn hmget(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("HMGET"), g.key()];
    a.extend(fields(g, 1, 5));
    one(a)
}

fn hgetall(g: &mut Gen) -> Vec<Op> {
    vec![Op::with(args![g.name("HGETALL"), g.key()], Check::Norm(unordered_pairs))]
}

fn hdel(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("HDEL"), g.key()];
    a.extend(fields(g, 1, 4));
    one(a)
}

fn hexists(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("HEXISTS"), g.key(), field(g)])
}

fn hlen(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("HLEN"), g.key()])
}

fn hstrlen(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("HSTRLEN"), g.key(), field(g)])
}

fn hkeys(g: &mut Gen) -> Vec<Op> {
    vec![Op::with(args![g.name("HKEYS"), g.key()], Check::Norm(unordered))]
}

fn hvals(g: &mut Gen) -> Vec<Op> {
    vec![Op::with(args![g.name("HVALS"), g.key()], Check::Norm(unordered))]
}

fn hincrby(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("HINCRBY"), g.key(), field(g), g.int()])
}

fn hincrbyfloat(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("HINCRBYFLOAT"), g.key(), field(g), g.float()])
}

fn hrandfield(g: &mut Gen) -> Vec<Op> {
    let key = g.key();
    let mut a = args![g.name("HRANDFIELD"), key];
    let mut count = None;
    let mut with_values = false;
    if g.chance(0.75) {
        // Past the hash's size up to i64::MAX (once an abort: room reserved for the count),
        // and past i64::MAX / 2, which WITHVALUES refuses.
        let huge = [i64::MIN, 1_000_000, 100_000_000_000_000, i64::MAX / 2 + 1, i64::MAX];
        let n = if g.chance(0.95) { g.range(-6, 12) } else { g.pick(&huge) };
        count = Some(n);
        a.push(n.to_string().into_bytes());
        if g.chance(0.5) {
            a.push(g.kw("WITHVALUES"));
            with_values = true;
        }
    } else if g.chance(0.1) {
        a.push(g.pick_str(&["abc", "1.5"]));
    }
    if count.is_some() && g.chance(0.03) {
        a.push(b"FOO".to_vec());
    }
    let check = Check::Random(RandomCheck { kind: RandKind::HRandField, key, count, with_values });
    vec![Op::with(a, check)]
}

fn set_string(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SET"), g.key(), g.value()])
}

fn hscan(g: &mut Gen) -> Vec<Op> {
    let a = args![g.name("HSCAN"), g.key()];
    vec![g.scan_op(a)]
}
