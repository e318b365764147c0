//! Strings: GET SET (EX PX EXAT PXAT NX XX KEEPTTL GET) SETEX PSETEX SETNX GETEX GETDEL GETSET
//! MGET MSET MSETNX APPEND STRLEN INCR DECR INCRBY DECRBY INCRBYFLOAT GETRANGE SETRANGE SUBSTR LCS.

use super::{c, cn, one, CmdGen, Family};
use crate::differential::gen::{Gen, Op};

pub const FAMILY: Family =
    Family { name: "strings", required: &["SET", "GET"], gens: GENS, wraps: false, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("GET", 10, get),
    c("SET", 16, set),
    c("SETEX", 3, setex),
    c("PSETEX", 3, psetex),
    c("SETNX", 3, setnx),
    c("GETEX", 5, getex),
    c("GETDEL", 3, getdel),
    c("GETSET", 3, getset),
    c("MGET", 4, mget),
    c("MSET", 4, mset),
    c("MSETNX", 3, msetnx),
    c("APPEND", 5, append),
    c("STRLEN", 3, strlen),
    c("INCR", 4, incr),
    c("DECR", 3, decr),
    c("INCRBY", 4, incrby),
    c("DECRBY", 3, decrby),
    cn("INCRBYFLOAT", 5, &["SET"], incrbyfloat),
    c("GETRANGE", 4, getrange),
    c("SUBSTR", 2, substr),
    c("SETRANGE", 4, setrange),
    c("LCS", 2, lcs),
];

fn get(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("GET"), g.key()])
}

/// SET's options in random order and number, valid or not.
fn set(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SET"), g.key(), g.value()];
    let n = g.pick(&[0, 0, 0, 1, 1, 1, 2, 2, 3]);
    for _ in 0..n {
        let after_bare_expiry = a.last().is_some_and(|last| is_expiry_keyword(last));
        match g.below(19) {
            0 | 1 => a.push(g.kw("NX")),
            2 | 3 => a.push(g.kw("XX")),
            4 | 5 => a.push(g.kw("GET")),
            6 | 7 => a.push(g.kw("KEEPTTL")),
            8 | 9 => {
                a.push(g.kw("EX"));
                a.push(g.rel_arg(false));
            }
            10 | 11 => {
                a.push(g.kw("PX"));
                a.push(g.rel_arg(true));
            }
            12 | 13 => {
                a.push(g.kw("EXAT"));
                a.push(g.abs_arg(false));
            }
            14 | 15 => {
                a.push(g.kw("PXAT"));
                a.push(g.abs_arg(true));
            }
            16 => a.push(g.pick_str(&["EX", "PX", "EXAT", "PXAT"])),
            17 => a.push(g.pick_str(&["FOO", "", "NXX", "EX10"])),
            _ => {
                let value = g.value();
                // A value such as "10" after a bare EX or PX (16) would be a 10 ms expiry,
                // which each server would apply at its own moment.
                a.push(if after_bare_expiry && is_positive_integer(&value) { g.bad_time() } else { value });
            }
        }
    }
    one(a)
}

/// Whether `arg` is an expiry option of SET (the arm that pushes one bare).
fn is_expiry_keyword(arg: &[u8]) -> bool {
    ["EX", "PX", "EXAT", "PXAT"].iter().any(|k| arg.eq_ignore_ascii_case(k.as_bytes()))
}

fn is_positive_integer(value: &[u8]) -> bool {
    std::str::from_utf8(value).ok().and_then(|s| s.parse::<i64>().ok()).is_some_and(|n| n > 0)
}

fn setex(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SETEX"), g.key(), g.rel_arg(false), g.value()])
}

fn psetex(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("PSETEX"), g.key(), g.rel_arg(true), g.value()])
}

fn setnx(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SETNX"), g.key(), g.value()])
}

fn getex(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("GETEX"), g.key()];
    match g.below(9) {
        0 | 1 => {}
        2 => {
            a.push(g.kw("EX"));
            a.push(g.rel_arg(false));
        }
        3 => {
            a.push(g.kw("PX"));
            a.push(g.rel_arg(true));
        }
        4 => {
            a.push(g.kw("EXAT"));
            a.push(g.abs_arg(false));
        }
        5 => {
            a.push(g.kw("PXAT"));
            a.push(g.abs_arg(true));
        }
        6 => a.push(g.kw("PERSIST")),
        7 => {
            // Two options: always a syntax error.
            a.push(g.kw("PERSIST"));
            a.push(g.kw("EX"));
            a.push(g.rel_arg(false));
        }
        _ => a.push(g.pick_str(&["EX", "FOO", "KEEPTTL", "PERSIST1"])),
    }
    one(a)
}

fn getdel(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("GETDEL"), g.key()])
}

fn getset(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("GETSET"), g.key(), g.value()])
}

fn mget(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("MGET")];
    a.extend(g.keys(1, 5));
    one(a)
}

fn pairs(g: &mut Gen, name: &str) -> Vec<Op> {
    let mut a = args![g.name(name)];
    for _ in 0..g.range(1, 4) {
        a.push(g.key());
        a.push(g.value());
    }
    if g.chance(0.05) {
        a.pop();
    }
    one(a)
}

fn mset(g: &mut Gen) -> Vec<Op> {
    pairs(g, "MSET")
}

fn msetnx(g: &mut Gen) -> Vec<Op> {
    pairs(g, "MSETNX")
}

fn append(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("APPEND"), g.key(), g.value()])
}

fn strlen(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("STRLEN"), g.key()])
}

fn incr(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("INCR"), g.key()])
}

fn decr(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("DECR"), g.key()])
}

fn incrby(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("INCRBY"), g.key(), g.int()])
}

fn decrby(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("DECRBY"), g.key(), g.int()])
}

fn incrbyfloat(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("INCRBYFLOAT"), g.key(), g.float()])
}

fn range_index(g: &mut Gen) -> Vec<u8> {
    match g.below(10) {
        0..=6 => g.range(-12, 12).to_string().into_bytes(),
        7 => g.range(-100, 100).to_string().into_bytes(),
        8 => g.pick_str(&["9223372036854775807", "-9223372036854775808", "2147483648", "-2147483649"]),
        _ => g.pick_str(&["abc", "", "1.5", "9223372036854775808"]),
    }
}

fn getrange(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("GETRANGE"), g.key(), range_index(g), range_index(g)])
}

fn substr(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SUBSTR"), g.key(), range_index(g), range_index(g)])
}

fn setrange(g: &mut Gen) -> Vec<Op> {
    let key = g.key();
    // Never an offset that would make a real server allocate hundreds of megabytes.
    let (offset, value) = match g.below(20) {
        0..=14 => (g.range(0, 50).to_string(), g.value()),
        15 => (g.range(0, 2000).to_string(), g.value()),
        16 => ("-1".to_string(), g.value()),
        17 => (g.pick(&["536870912", "536870911", "1000000000000"]).to_string(), b"".to_vec()),
        18 => (g.pick(&["536870912", "4294967296", "9223372036854775807"]).to_string(), b"x".to_vec()),
        _ => (g.pick(&["abc", "", "1.5", "9223372036854775808"]).to_string(), g.value()),
    };
    one(args![g.name("SETRANGE"), key, offset, value])
}

fn lcs(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("LCS"), g.key(), g.key()];
    for _ in 0..g.range(0, 3) {
        match g.below(9) {
            0 | 1 => a.push(g.kw("LEN")),
            2 | 3 => a.push(g.kw("IDX")),
            4 | 5 => {
                a.push(g.kw("MINMATCHLEN"));
                a.push(g.small_int(-1, 4));
            }
            6 | 7 => a.push(g.kw("WITHMATCHLEN")),
            _ => a.push(g.pick_str(&["FOO", "MINMATCHLEN"])),
        }
    }
    one(a)
}
