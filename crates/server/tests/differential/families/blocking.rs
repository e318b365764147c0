//! Blocking pops: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP, served at
//! once (a push to one of the keys just before, or data already there) or, rarely, timing
//! out after 10 ms on empty keys (nil). Timeouts: valid fractions, negative, not a float.
//! No timeout is ever 0 or below 1 ms (those block forever).

use super::lists::side;
use super::zsets::numkeys;
use super::{c, CmdGen, Family};
use crate::differential::gen::{Gen, Op};

pub const FAMILY: Family =
    Family { name: "blocking", required: &["RPUSH", "ZADD", "BLPOP"], gens: GENS, wraps: false, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("RPUSH", 10, rpush),
    c("LPUSH", 4, lpush),
    c("ZADD", 10, zadd),
    c("BLPOP", 8, blpop),
    c("BRPOP", 8, brpop),
    c("BLMOVE", 6, blmove),
    c("BRPOPLPUSH", 4, brpoplpush),
    c("BLMPOP", 6, blmpop),
    c("BZPOPMIN", 8, bzpopmin),
    c("BZPOPMAX", 8, bzpopmax),
    c("BZMPOP", 6, bzmpop),
    c("SET", 1, set_string),
    c("DEL", 2, del),
];

fn elem(g: &mut Gen) -> Vec<u8> {
    g.pick_str(&["a", "b", "c", "1", "2", "", "x y"])
}

fn score(g: &mut Gen) -> Vec<u8> {
    g.pick_str(&["0", "1", "2", "-1", "1.5", "inf", "-inf", "3"])
}

/// A timeout: mostly 10–20 ms (served at once when there is data, nil after it otherwise),
/// sometimes invalid. Never 0 or < 1 ms: those block forever.
fn timeout(g: &mut Gen) -> Vec<u8> {
    match g.below(40) {
        0 => g.pick_str(&["-1", "-0.5", "abc", "", "1e400", "nan", "0x10", "9223372036854775807"]),
        _ => g.pick_str(&["0.01", "0.01", "0.01", "0.015"]),
    }
}

/// Before a blocking command: usually a push to one of its keys, so that it is served at
/// once; the few commands that find every key empty wait for their timeout.
fn feed(g: &mut Gen, keys: &[Vec<u8>], zset: bool, ops: &mut Vec<Op>) {
    // Each wait costs 10–20 ms (twice: both servers): a few hundred per run.
    if g.chance(0.97) {
        let k = keys[g.below(keys.len())].clone();
        ops.push(Op::new(if zset {
            args!["ZADD", k, score(g), elem(g), score(g), elem(g)]
        } else {
            args!["RPUSH", k, elem(g), elem(g)]
        }));
    }
}

fn rpush(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("RPUSH"), g.key(), elem(g), elem(g)])]
}

fn lpush(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("LPUSH"), g.key(), elem(g)])]
}

fn zadd(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("ZADD"), g.key(), score(g), elem(g), score(g), elem(g)])]
}

fn set_string(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("SET"), g.key(), g.value()])]
}

fn del(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("DEL"), g.key(), g.key()])]
}

fn pop_any(g: &mut Gen, name: &str, zset: bool) -> Vec<Op> {
    let keys = g.keys(1, 3);
    let mut ops = Vec::new();
    feed(g, &keys, zset, &mut ops);
    let mut a = args![g.name(name)];
    a.extend(keys);
    a.push(timeout(g));
    ops.push(Op::new(a));
    ops
}

fn blpop(g: &mut Gen) -> Vec<Op> {
    pop_any(g, "BLPOP", false)
}

fn brpop(g: &mut Gen) -> Vec<Op> {
    pop_any(g, "BRPOP", false)
}

fn bzpopmin(g: &mut Gen) -> Vec<Op> {
    pop_any(g, "BZPOPMIN", true)
}

fn bzpopmax(g: &mut Gen) -> Vec<Op> {
    pop_any(g, "BZPOPMAX", true)
}

fn blmove(g: &mut Gen) -> Vec<Op> {
    let (src, dst) = (g.key(), g.key());
    let mut ops = Vec::new();
    feed(g, std::slice::from_ref(&src), false, &mut ops);
    ops.push(Op::new(args![g.name("BLMOVE"), src, dst, side(g), side(g), timeout(g)]));
    ops
}

fn brpoplpush(g: &mut Gen) -> Vec<Op> {
    let (src, dst) = (g.key(), g.key());
    let mut ops = Vec::new();
    feed(g, std::slice::from_ref(&src), false, &mut ops);
    ops.push(Op::new(args![g.name("BRPOPLPUSH"), src, dst, timeout(g)]));
    ops
}

fn mpop(g: &mut Gen, name: &str, zset: bool) -> Vec<Op> {
    let keys = g.keys(1, 3);
    let mut ops = Vec::new();
    feed(g, &keys, zset, &mut ops);
    let numkeys = numkeys(g, &keys);
    let mut a = args![g.name(name), timeout(g), numkeys];
    a.extend(keys);
    a.push(if zset {
        match g.below(20) {
            0..=9 => g.kw("MIN"),
            10..=18 => g.kw("MAX"),
            _ => g.pick_str(&["LEFT", ""]),
        }
    } else {
        side(g)
    });
    if g.chance(0.5) {
        a.push(g.kw("COUNT"));
        a.push(g.small_int(-1, 4));
    }
    ops.push(Op::new(a));
    ops
}

fn blmpop(g: &mut Gen) -> Vec<Op> {
    mpop(g, "BLMPOP", false)
}

fn bzmpop(g: &mut Gen) -> Vec<Op> {
    mpop(g, "BZMPOP", true)
}
