//! Sorted sets: ZADD (NX XX GT LT CH INCR) ZREM ZSCORE ZMSCORE ZINCRBY ZCARD ZCOUNT ZLEXCOUNT
//! ZRANGE (BYSCORE BYLEX REV LIMIT WITHSCORES) ZRANGESTORE ZRANGEBYSCORE ZREVRANGEBYSCORE
//! ZRANGEBYLEX ZREVRANGEBYLEX ZREVRANGE ZRANK ZREVRANK ZREMRANGEBYSCORE/RANK/LEX ZPOPMIN ZPOPMAX
//! ZMPOP ZUNION ZINTER ZDIFF (+STORE, WEIGHTS, AGGREGATE) ZINTERCARD ZRANDMEMBER ZSCAN.

use super::{c, cn, one, CmdGen, Family};
use crate::differential::gen::{Check, Gen, Op, RandKind, RandomCheck};

pub const FAMILY: Family =
    Family { name: "zsets", required: &["ZADD", "ZRANGE"], gens: GENS, wraps: false, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("ZADD", 16, zadd),
    c("ZREM", 5, zrem),
    c("ZSCORE", 5, zscore),
    c("ZMSCORE", 3, zmscore),
    c("ZINCRBY", 4, zincrby),
    c("ZCARD", 3, zcard),
    c("ZCOUNT", 3, zcount),
    c("ZLEXCOUNT", 3, zlexcount),
    c("ZRANGE", 10, zrange),
    c("ZRANGESTORE", 3, zrangestore),
    c("ZRANGEBYSCORE", 3, zrangebyscore),
    c("ZREVRANGEBYSCORE", 3, zrevrangebyscore),
    c("ZRANGEBYLEX", 3, zrangebylex),
    c("ZREVRANGEBYLEX", 3, zrevrangebylex),
    c("ZREVRANGE", 3, zrevrange),
    c("ZRANK", 3, zrank),
    c("ZREVRANK", 3, zrevrank),
    c("ZREMRANGEBYSCORE", 2, zremrangebyscore),
    c("ZREMRANGEBYRANK", 2, zremrangebyrank),
    c("ZREMRANGEBYLEX", 2, zremrangebylex),
    c("ZPOPMIN", 3, zpopmin),
    c("ZPOPMAX", 3, zpopmax),
    c("ZMPOP", 3, zmpop),
    c("ZUNION", 3, zunion),
    c("ZINTER", 3, zinter),
    c("ZDIFF", 3, zdiff),
    c("ZUNIONSTORE", 3, zunionstore),
    c("ZINTERSTORE", 3, zinterstore),
    c("ZDIFFSTORE", 2, zdiffstore),
    c("ZINTERCARD", 2, zintercard),
    c("ZSCAN", 3, zscan),
    cn("ZRANDMEMBER", 3, &["ZSCORE"], zrandmember),
    c("ZADD", 1, zadd_many),
    c("SADD", 1, sadd),
    c("SET", 1, set_string),
];

fn member(g: &mut Gen) -> Vec<u8> {
    match g.below(40) {
        0 => b"".to_vec(),
        1 => b"a-member-longer-than-sixty-four-bytes-which-turns-listpack-into-skiplist".to_vec(),
        2 => b"\x00z".to_vec(),
        3..=6 => g.pick_str(&["1", "10", "-2", "B"]),
        _ => g.pick_str(&["a", "b", "c", "d", "e", "f", "g", "h"]),
    }
}

fn score(g: &mut Gen) -> Vec<u8> {
    match g.below(36) {
        // Equal scores are common, so lex ranges (specified only then) get exercised.
        30..=35 => b"0".to_vec(),
        0..=14 => g.range(-5, 5).to_string().into_bytes(),
        15..=20 => g.pick_str(&["0.5", "-1.5", "2.5", "1.1", "0.1", "3.3333", "1e2", "-0", "+2"]),
        21..=23 => g.pick_str(&["inf", "-inf", "+inf", "1e308", "-1.7976931348623157e308"]),
        _ => g.pick_str(&["nan", "abc", "", "1e400", "1e-400", "0x10", " 1", "1 ", "5e-324"]),
    }
}

/// A score-range bound: inclusive, exclusive `(`, infinities, invalid.
fn score_bound(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0..=7 => g.range(-5, 5).to_string().into_bytes(),
        8..=11 => format!("({}", g.range(-5, 5)).into_bytes(),
        12 => g.pick_str(&["-inf", "(-inf", "+inf", "inf", "(+inf"]),
        13 => g.pick_str(&["-inf", "+inf"]),
        14..=16 => g.pick_str(&["1.5", "(1.5", "-0.5", "2.5", "(0.1"]),
        _ => g.pick_str(&["[1", "abc", "", "(", "nan", "((1", "1e400"]),
    }
}

fn lex_bound(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0..=5 => format!("[{}", char::from(b'a' + u8::try_from(g.below(9)).unwrap_or(0))).into_bytes(),
        6..=10 => format!("({}", char::from(b'a' + u8::try_from(g.below(9)).unwrap_or(0))).into_bytes(),
        11..=14 => g.pick_str(&["-", "+"]),
        15 => g.pick_str(&["[", "(", "[\x00"]),
        _ => g.pick_str(&["a", "", "-a", "+b", "[1"]),
    }
}

fn rank(g: &mut Gen) -> Vec<u8> {
    match g.below(12) {
        0..=9 => g.range(-7, 7).to_string().into_bytes(),
        10 => g.pick_str(&["9223372036854775807", "-9223372036854775808", "100"]),
        _ => g.pick_str(&["abc", "", "1.5"]),
    }
}

fn zadd(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZADD"), g.key()];
    let n = g.pick(&[0, 0, 0, 1, 1, 2]);
    for _ in 0..n {
        a.push(match g.below(13) {
            0 | 1 => g.kw("NX"),
            2 | 3 => g.kw("XX"),
            4 | 5 => g.kw("GT"),
            6 | 7 => g.kw("LT"),
            8 | 9 => g.kw("CH"),
            10 | 11 => g.kw("INCR"),
            _ => g.pick_str(&["FOO", "NXX"]),
        });
    }
    let pairs = if g.chance(0.6) { 1 } else { g.range(2, 4) };
    for _ in 0..pairs {
        a.push(score(g));
        a.push(member(g));
    }
    if g.chance(0.03) {
        a.pop();
    }
    one(a)
}

/// Now and then a sorted set past the listpack limit (128 entries).
fn zadd_many(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZADD"), g.key()];
    for i in 0..g.range(120, 140) {
        a.push(((i * 7) % 13).to_string().into_bytes());
        a.push(format!("m{i}").into_bytes());
    }
    one(a)
}

fn sadd(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SADD"), g.key(), member(g), member(g)])
}

fn set_string(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SET"), g.key(), g.value()])
}

fn members(g: &mut Gen, min: i64, max: i64) -> Vec<Vec<u8>> {
    (0..g.range(min, max)).map(|_| member(g)).collect()
}

fn zrem(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZREM"), g.key()];
    a.extend(members(g, 1, 3));
    one(a)
}

fn zscore(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("ZSCORE"), g.key(), member(g)])
}

fn zmscore(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZMSCORE"), g.key()];
    a.extend(members(g, 1, 4));
    one(a)
}

fn zincrby(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("ZINCRBY"), g.key(), score(g), member(g)])
}

fn zcard(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("ZCARD"), g.key()])
}

fn zcount(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("ZCOUNT"), g.key(), score_bound(g), score_bound(g)])
}

fn zlexcount(g: &mut Gen) -> Vec<Op> {
    let key = g.key();
    vec![Op::lex(args![g.name("ZLEXCOUNT"), key, lex_bound(g), lex_bound(g)], key)]
}

fn limit(g: &mut Gen, a: &mut Vec<Vec<u8>>) {
    a.push(g.kw("LIMIT"));
    a.push(g.small_int(-1, 4));
    a.push(g.small_int(-2, 4));
}

/// ZRANGE's arguments after the key: bounds and options for one of the three modes.
/// Returns whether the range is BYLEX.
fn zrange_tail(g: &mut Gen, a: &mut Vec<Vec<u8>>, allow_withscores: bool) -> bool {
    let mode = g.below(10);
    let rev = g.chance(0.3);
    match mode {
        0..=3 => {
            a.push(rank(g));
            a.push(rank(g));
        }
        4..=6 => {
            a.push(score_bound(g));
            a.push(score_bound(g));
            a.push(g.kw("BYSCORE"));
        }
        _ => {
            a.push(lex_bound(g));
            a.push(lex_bound(g));
            a.push(g.kw("BYLEX"));
        }
    }
    if rev {
        a.push(g.kw("REV"));
    }
    if g.chance(0.35) {
        limit(g, a);
    }
    if allow_withscores && g.chance(0.4) {
        a.push(g.kw("WITHSCORES"));
    }
    if g.chance(0.03) {
        a.push(g.pick_str(&["FOO", "BYSCORE", "LIMIT"]));
    }
    mode >= 7
}

fn zrange(g: &mut Gen) -> Vec<Op> {
    if g.chance(0.25) {
        return one(args![g.name("ZRANGE"), g.key(), "0", "-1", "WITHSCORES"]);
    }
    let key = g.key();
    let mut a = args![g.name("ZRANGE"), key];
    if zrange_tail(g, &mut a, true) {
        return vec![Op::lex(a, key)];
    }
    one(a)
}

fn zrangestore(g: &mut Gen) -> Vec<Op> {
    let src = g.key();
    let mut a = args![g.name("ZRANGESTORE"), g.key(), src];
    let ws = g.chance(0.05);
    if zrange_tail(g, &mut a, ws) {
        return vec![Op::lex(a, src)];
    }
    one(a)
}

fn by_score(g: &mut Gen, name: &str) -> Vec<Op> {
    let mut a = args![g.name(name), g.key(), score_bound(g), score_bound(g)];
    if g.chance(0.4) {
        a.push(g.kw("WITHSCORES"));
    }
    if g.chance(0.3) {
        limit(g, &mut a);
    }
    one(a)
}

fn zrangebyscore(g: &mut Gen) -> Vec<Op> {
    by_score(g, "ZRANGEBYSCORE")
}

fn zrevrangebyscore(g: &mut Gen) -> Vec<Op> {
    by_score(g, "ZREVRANGEBYSCORE")
}

fn by_lex(g: &mut Gen, name: &str) -> Vec<Op> {
    let key = g.key();
    let mut a = args![g.name(name), key, lex_bound(g), lex_bound(g)];
    if g.chance(0.3) {
        limit(g, &mut a);
    }
    vec![Op::lex(a, key)]
}

fn zrangebylex(g: &mut Gen) -> Vec<Op> {
    by_lex(g, "ZRANGEBYLEX")
}

fn zrevrangebylex(g: &mut Gen) -> Vec<Op> {
    by_lex(g, "ZREVRANGEBYLEX")
}

fn zrevrange(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZREVRANGE"), g.key(), rank(g), rank(g)];
    if g.chance(0.4) {
        a.push(g.kw("WITHSCORES"));
    }
    one(a)
}

fn zrank(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("ZRANK"), g.key(), member(g)])
}

fn zrevrank(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("ZREVRANK"), g.key(), member(g)])
}

fn zremrangebyscore(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("ZREMRANGEBYSCORE"), g.key(), score_bound(g), score_bound(g)])
}

fn zremrangebyrank(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("ZREMRANGEBYRANK"), g.key(), rank(g), rank(g)])
}

fn zremrangebylex(g: &mut Gen) -> Vec<Op> {
    let key = g.key();
    vec![Op::lex(args![g.name("ZREMRANGEBYLEX"), key, lex_bound(g), lex_bound(g)], key)]
}

fn popm(g: &mut Gen, name: &str) -> Vec<Op> {
    let mut a = args![g.name(name), g.key()];
    if g.chance(0.5) {
        a.push(g.small_int(-1, 4));
    }
    one(a)
}

fn zpopmin(g: &mut Gen) -> Vec<Op> {
    popm(g, "ZPOPMIN")
}

fn zpopmax(g: &mut Gen) -> Vec<Op> {
    popm(g, "ZPOPMAX")
}

/// Shared with the blocking family.
pub(super) fn numkeys(g: &mut Gen, keys: &[Vec<u8>]) -> Vec<u8> {
    match g.below(25) {
        0 => g.pick_str(&["0", "-1", "abc", "9"]),
        _ => keys.len().to_string().into_bytes(),
    }
}

fn zmpop(g: &mut Gen) -> Vec<Op> {
    let keys = g.keys(1, 3);
    let mut a = args![g.name("ZMPOP"), numkeys(g, &keys)];
    a.extend(keys);
    a.push(match g.below(20) {
        0..=9 => g.kw("MIN"),
        10..=18 => g.kw("MAX"),
        _ => g.pick_str(&["MID", ""]),
    });
    if g.chance(0.5) {
        a.push(g.kw("COUNT"));
        a.push(g.small_int(-1, 4));
    }
    one(a)
}

/// `numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
fn set_op_tail(g: &mut Gen, a: &mut Vec<Vec<u8>>, weights: bool, withscores: bool) {
    let keys = g.keys(1, 3);
    a.push(numkeys(g, &keys));
    let n = keys.len();
    a.extend(keys);
    if weights && g.chance(0.3) {
        a.push(g.kw("WEIGHTS"));
        let m = if g.chance(0.9) { n } else { n + 1 };
        for _ in 0..m {
            a.push(match g.below(10) {
                0..=6 => g.range(-3, 3).to_string().into_bytes(),
                7 => g.pick_str(&["0.5", "1.5", "inf"]),
                _ => g.pick_str(&["abc", "nan"]),
            });
        }
    }
    if weights && g.chance(0.3) {
        a.push(g.kw("AGGREGATE"));
        a.push(match g.below(10) {
            0..=2 => g.kw("SUM"),
            3..=5 => g.kw("MIN"),
            6..=8 => g.kw("MAX"),
            _ => g.pick_str(&["AVG", ""]),
        });
    }
    if withscores && g.chance(0.5) {
        a.push(g.kw("WITHSCORES"));
    }
    if g.chance(0.02) {
        a.push(b"FOO".to_vec());
    }
}

fn zunion(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZUNION")];
    set_op_tail(g, &mut a, true, true);
    one(a)
}

fn zinter(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZINTER")];
    set_op_tail(g, &mut a, true, true);
    one(a)
}

fn zdiff(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZDIFF")];
    set_op_tail(g, &mut a, false, true);
    one(a)
}

fn zunionstore(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZUNIONSTORE"), g.key()];
    let ws = g.chance(0.05);
    set_op_tail(g, &mut a, true, ws);
    one(a)
}

fn zinterstore(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZINTERSTORE"), g.key()];
    let ws = g.chance(0.05);
    set_op_tail(g, &mut a, true, ws);
    one(a)
}

fn zdiffstore(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZDIFFSTORE"), g.key()];
    set_op_tail(g, &mut a, false, false);
    one(a)
}

fn zintercard(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZINTERCARD")];
    let keys = g.keys(1, 3);
    a.push(numkeys(g, &keys));
    a.extend(keys);
    if g.chance(0.4) {
        a.push(g.kw("LIMIT"));
        a.push(g.small_int(-1, 5));
    }
    one(a)
}

fn zrandmember(g: &mut Gen) -> Vec<Op> {
    let key = g.key();
    let mut a = args![g.name("ZRANDMEMBER"), key];
    let mut count = None;
    let mut with_values = false;
    if g.chance(0.75) {
        let n = if g.chance(0.95) { g.range(-6, 12) } else { g.pick(&[i64::MIN, 1_000_000]) };
        count = Some(n);
        a.push(n.to_string().into_bytes());
        if g.chance(0.5) {
            a.push(g.kw("WITHSCORES"));
            with_values = true;
        }
    }
    let check = Check::Random(RandomCheck { kind: RandKind::ZRandMember, key, count, with_values });
    vec![Op::with(a, check)]
}

fn zscan(g: &mut Gen) -> Vec<Op> {
    let a = args![g.name("ZSCAN"), g.key()];
    vec![g.scan_op(a)]
}
