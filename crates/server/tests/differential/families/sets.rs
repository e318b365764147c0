//! Sets: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE SINTER SINTERCARD
//! SUNION SDIFF SSCAN and the STORE forms.

use super::{c, cn, one, CmdGen, Family};
use crate::differential::gen::{unordered, Check, Gen, Op, RandKind, RandomCheck};

pub const FAMILY: Family =
    Family { name: "sets", required: &["SADD", "SMEMBERS"], gens: GENS, wraps: false, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("SADD", 14, sadd),
    c("SREM", 6, srem),
    c("SMEMBERS", 6, smembers),
    c("SISMEMBER", 5, sismember),
    c("SMISMEMBER", 4, smismember),
    c("SCARD", 4, scard),
    cn("SPOP", 4, &["SADD", "SREM", "SMEMBERS"], spop),
    cn("SRANDMEMBER", 4, &["SISMEMBER"], srandmember),
    c("SSCAN", 3, sscan),
    c("SMOVE", 4, smove),
    c("SINTER", 4, sinter),
    c("SINTERCARD", 3, sintercard),
    c("SUNION", 4, sunion),
    c("SDIFF", 4, sdiff),
    c("SINTERSTORE", 3, sinterstore),
    c("SUNIONSTORE", 3, sunionstore),
    c("SDIFFSTORE", 3, sdiffstore),
    c("SADD", 1, sadd_many),
    c("SET", 1, set_string),
];

fn member(g: &mut Gen) -> Vec<u8> {
    match g.below(40) {
        0 => b"".to_vec(),
        1 => b"a-member-longer-than-sixty-four-bytes-for-the-listpack-limits-of-later-versions".to_vec(),
        // Integers at the edges of the 16-, 32- and 64-bit widths an intset widens through.
        2..=15 => g.pick_str(&[
            "1",
            "2",
            "3",
            "10",
            "-5",
            "100",
            "32768",
            "-32769",
            "2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "007",
        ]),
        _ => g.pick_str(&["a", "b", "c", "d", "e", "f"]),
    }
}

fn members(g: &mut Gen, min: i64, max: i64) -> Vec<Vec<u8>> {
    (0..g.range(min, max)).map(|_| member(g)).collect()
}

fn sadd(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SADD"), g.key()];
    a.extend(members(g, 1, 4));
    one(a)
}

/// Now and then a set past the intset limit (512), converted to a hashtable.
fn sadd_many(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SADD"), g.key()];
    let n = g.range(500, 530);
    a.extend((0..n).map(|i| i.to_string().into_bytes()));
    one(a)
}

fn srem(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SREM"), g.key()];
    a.extend(members(g, 1, 4));
    one(a)
}

fn smembers(g: &mut Gen) -> Vec<Op> {
    vec![Op::with(args![g.name("SMEMBERS"), g.key()], Check::Norm(unordered))]
}

fn sismember(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SISMEMBER"), g.key(), member(g)])
}

fn smismember(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SMISMEMBER"), g.key()];
    a.extend(members(g, 1, 4));
    one(a)
}

fn scard(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SCARD"), g.key()])
}

fn count_arg(g: &mut Gen, negative_ok: bool) -> (Option<i64>, Vec<u8>) {
    match g.below(20) {
        0 => (None, g.pick_str(&["abc", "1.5", ""])),
        1 => {
            // Past the set's size up to i64::MAX (once an abort: room reserved for the count).
            let n = g.pick(&[i64::MIN, 1_000_000, 100_000_000_000_000, i64::MAX]);
            (Some(n), n.to_string().into_bytes())
        }
        _ => {
            let n = if negative_ok { g.range(-6, 10) } else { g.range(-1, 10) };
            (Some(n), n.to_string().into_bytes())
        }
    }
}

fn spop(g: &mut Gen) -> Vec<Op> {
    let key = g.key();
    let mut a = args![g.name("SPOP"), key];
    let mut count = None;
    if g.chance(0.6) {
        let (n, text) = count_arg(g, false);
        count = n;
        a.push(text);
    }
    let check = Check::Random(RandomCheck { kind: RandKind::SPop, key, count, with_values: false });
    vec![Op::with(a, check)]
}

fn srandmember(g: &mut Gen) -> Vec<Op> {
    let key = g.key();
    let mut a = args![g.name("SRANDMEMBER"), key];
    let mut count = None;
    if g.chance(0.7) {
        let (n, text) = count_arg(g, true);
        count = n;
        a.push(text);
    }
    let check = Check::Random(RandomCheck { kind: RandKind::SRandMember, key, count, with_values: false });
    vec![Op::with(a, check)]
}

fn smove(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SMOVE"), g.key(), g.key(), member(g)])
}

fn multi(g: &mut Gen, name: &str) -> Vec<Op> {
    let mut a = args![g.name(name)];
    a.extend(g.keys(1, 4));
    vec![Op::with(a, Check::Norm(unordered))]
}

fn sinter(g: &mut Gen) -> Vec<Op> {
    multi(g, "SINTER")
}

fn sunion(g: &mut Gen) -> Vec<Op> {
    multi(g, "SUNION")
}

fn sdiff(g: &mut Gen) -> Vec<Op> {
    multi(g, "SDIFF")
}

fn store(g: &mut Gen, name: &str) -> Vec<Op> {
    let mut a = args![g.name(name), g.key()];
    a.extend(g.keys(1, 4));
    one(a)
}

fn sinterstore(g: &mut Gen) -> Vec<Op> {
    store(g, "SINTERSTORE")
}

fn sunionstore(g: &mut Gen) -> Vec<Op> {
    store(g, "SUNIONSTORE")
}

fn sdiffstore(g: &mut Gen) -> Vec<Op> {
    store(g, "SDIFFSTORE")
}

fn sintercard(g: &mut Gen) -> Vec<Op> {
    let keys = g.keys(1, 4);
    let numkeys = match g.below(20) {
        0 => g.pick_str(&["0", "-1", "abc", "9"]),
        _ => keys.len().to_string().into_bytes(),
    };
    let mut a = args![g.name("SINTERCARD"), numkeys];
    a.extend(keys);
    if g.chance(0.4) {
        a.push(g.kw("LIMIT"));
        a.push(g.small_int(-1, 5));
    }
    one(a)
}

fn set_string(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SET"), g.key(), g.value()])
}

fn sscan(g: &mut Gen) -> Vec<Op> {
    let a = args![g.name("SSCAN"), g.key()];
    vec![g.scan_op(a)]
}
