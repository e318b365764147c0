//! Lists: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP (count) LLEN LRANGE LINDEX LSET LREM LTRIM
//! LINSERT LPOS LMOVE RPOPLPUSH LMPOP.

use super::{c, one, CmdGen, Family};
use crate::differential::gen::{Gen, Op};

pub const FAMILY: Family =
    Family { name: "lists", required: &["RPUSH", "LRANGE"], gens: GENS, wraps: false, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("LPUSH", 8, lpush),
    c("RPUSH", 8, rpush),
    c("LPUSHX", 3, lpushx),
    c("RPUSHX", 3, rpushx),
    c("LPOP", 6, lpop),
    c("RPOP", 6, rpop),
    c("LLEN", 4, llen),
    c("LRANGE", 8, lrange),
    c("LINDEX", 4, lindex),
    c("LSET", 4, lset),
    c("LREM", 4, lrem),
    c("LTRIM", 3, ltrim),
    c("LINSERT", 4, linsert),
    c("LPOS", 5, lpos),
    c("LMOVE", 4, lmove),
    c("RPOPLPUSH", 3, rpoplpush),
    c("LMPOP", 4, lmpop),
    c("SET", 1, set_string),
];

fn elem(g: &mut Gen) -> Vec<u8> {
    match g.below(40) {
        0 => b"".to_vec(),
        1 => b"an-element-longer-than-sixty-four-bytes-so-the-node-is-not-tiny-at-all".to_vec(),
        2 => b"\x00\xff".to_vec(),
        // Longer than a length byte says: the list leaves StayKV's packed layout for its deque.
        3 => [b"long-".as_slice(), &[b'L'; 300]].concat(),
        4..=8 => g.pick_str(&["1", "2", "-3", "100", "9223372036854775807", "1.5"]),
        _ => g.pick_str(&["a", "b", "c", "d", "e"]),
    }
}

fn index(g: &mut Gen) -> Vec<u8> {
    match g.below(12) {
        0..=9 => g.range(-8, 8).to_string().into_bytes(),
        10 => g.pick_str(&["9223372036854775807", "-9223372036854775808", "100", "-100"]),
        _ => g.pick_str(&["abc", "", "1.5", "9223372036854775808"]),
    }
}

fn push(g: &mut Gen, name: &str) -> Vec<Op> {
    let mut a = args![g.name(name), g.key()];
    for _ in 0..g.range(1, 4) {
        a.push(elem(g));
    }
    one(a)
}

fn lpush(g: &mut Gen) -> Vec<Op> {
    push(g, "LPUSH")
}

fn rpush(g: &mut Gen) -> Vec<Op> {
    push(g, "RPUSH")
}

fn lpushx(g: &mut Gen) -> Vec<Op> {
    push(g, "LPUSHX")
}

fn rpushx(g: &mut Gen) -> Vec<Op> {
    push(g, "RPUSHX")
}

fn pop(g: &mut Gen, name: &str) -> Vec<Op> {
    let mut a = args![g.name(name), g.key()];
    if g.chance(0.5) {
        a.push(match g.below(10) {
            0..=7 => g.range(0, 5).to_string().into_bytes(),
            8 => g.pick_str(&["-1", "9223372036854775807"]),
            _ => g.pick_str(&["abc", "", "1.5"]),
        });
    }
    one(a)
}

fn lpop(g: &mut Gen) -> Vec<Op> {
    pop(g, "LPOP")
}

fn rpop(g: &mut Gen) -> Vec<Op> {
    pop(g, "RPOP")
}

fn llen(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("LLEN"), g.key()])
}

fn lrange(g: &mut Gen) -> Vec<Op> {
    if g.chance(0.4) {
        return one(args![g.name("LRANGE"), g.key(), "0", "-1"]);
    }
    one(args![g.name("LRANGE"), g.key(), index(g), index(g)])
}

fn lindex(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("LINDEX"), g.key(), index(g)])
}

fn lset(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("LSET"), g.key(), index(g), elem(g)])
}

fn lrem(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("LREM"), g.key(), index(g), elem(g)])
}

fn ltrim(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("LTRIM"), g.key(), index(g), index(g)])
}

fn linsert(g: &mut Gen) -> Vec<Op> {
    let wh = match g.below(10) {
        0..=4 => g.kw("BEFORE"),
        5..=8 => g.kw("AFTER"),
        _ => g.pick_str(&["MIDDLE", ""]),
    };
    one(args![g.name("LINSERT"), g.key(), wh, elem(g), elem(g)])
}

fn lpos(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("LPOS"), g.key(), elem(g)];
    for _ in 0..g.range(0, 3) {
        match g.below(7) {
            0 | 1 => {
                a.push(g.kw("RANK"));
                a.push(match g.below(8) {
                    // Not i64::MIN: Redis 7.0 negates the rank, undefined behaviour in C.
                    0 => g.pick_str(&["0", "-9223372036854775807", "9223372036854775807", "abc"]),
                    _ => g.range(-3, 3).to_string().into_bytes(),
                });
            }
            2 | 3 => {
                a.push(g.kw("COUNT"));
                a.push(g.small_int(-1, 4));
            }
            4 | 5 => {
                a.push(g.kw("MAXLEN"));
                a.push(g.small_int(-1, 6));
            }
            _ => a.push(g.pick_str(&["FOO", "RANK"])),
        }
    }
    one(a)
}

/// Shared with the blocking family.
pub(super) fn side(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0..=9 => g.kw("LEFT"),
        10..=18 => g.kw("RIGHT"),
        _ => g.pick_str(&["UP", ""]),
    }
}

fn lmove(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("LMOVE"), g.key(), g.key(), side(g), side(g)])
}

fn rpoplpush(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("RPOPLPUSH"), g.key(), g.key()])
}

fn lmpop(g: &mut Gen) -> Vec<Op> {
    let keys = g.keys(1, 3);
    let numkeys = match g.below(20) {
        0 => g.pick_str(&["0", "-1", "abc", "5"]),
        _ => keys.len().to_string().into_bytes(),
    };
    let mut a = args![g.name("LMPOP"), numkeys];
    a.extend(keys);
    a.push(side(g));
    if g.chance(0.5) {
        a.push(g.kw("COUNT"));
        a.push(g.small_int(-1, 4));
    }
    one(a)
}

fn set_string(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SET"), g.key(), g.value()])
}
