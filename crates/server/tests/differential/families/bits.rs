//! Bitmaps: SETBIT GETBIT BITCOUNT (BYTE BIT) BITPOS BITOP (AND OR XOR NOT) BITFIELD (GET SET
//! INCRBY, u/i types, OVERFLOW WRAP SAT FAIL, `#` offsets) BITFIELD_RO; plus SET APPEND
//! SETRANGE GET so keys hold interesting bytes, and a list writer for wrong types.
//!
//! No write ever gets a large valid offset: Redis would allocate up to 512 MB for it. Large
//! offsets appear in reads (BITFIELD GET) and as out-of-range errors only.

use super::{c, one, CmdGen, Family};
use crate::differential::gen::{Gen, Op};

pub const FAMILY: Family =
    Family { name: "bits", required: &["SETBIT", "GETBIT"], gens: GENS, wraps: false, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("SETBIT", 16, setbit),
    c("GETBIT", 8, getbit),
    c("BITCOUNT", 8, bitcount),
    c("BITPOS", 8, bitpos),
    c("BITOP", 6, bitop),
    c("BITFIELD", 12, bitfield),
    c("BITFIELD_RO", 4, bitfield_ro),
    c("SET", 6, set),
    c("APPEND", 3, append),
    c("SETRANGE", 3, setrange),
    c("GET", 4, get),
    c("RPUSH", 1, rpush),
];

/// One of these keywords, occasionally in lower case.
fn one_of(g: &mut Gen, kws: &[&str]) -> Vec<u8> {
    let kw = g.pick(kws);
    g.kw(kw)
}

/// Strings whose bits are worth looking at, besides the shared value pool.
fn bytes(g: &mut Gen) -> Vec<u8> {
    match g.below(4) {
        0 => g.value(),
        1 => g.pick_bytes(&[b"\xff", b"\x00", b"\xff\xf0\x00", b"\x00\x00\xff", b"\x80", b"\x01", b"\xaa\x55"]),
        _ => (0..g.range(1, 12)).map(|_| g.pick(&[0u8, 0xff, 0x0f, 0xf0, 0x81, 0x7e, 0x01, 0x80])).collect(),
    }
}

/// A bit offset for SETBIT/GETBIT: small, sometimes further out, sometimes invalid.
fn offset(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0..=13 => g.range(0, 100).to_string().into_bytes(),
        14..=16 => g.range(0, 3000).to_string().into_bytes(),
        _ => g.pick_str(&["-1", "4294967296", "9223372036854775807", "9223372036854775808", "abc", "", "1.5", " 1"]),
    }
}

fn setbit(g: &mut Gen) -> Vec<Op> {
    let bit = if g.chance(0.95) { g.pick_str(&["0", "1", "1"]) } else { g.pick_str(&["2", "-1", "", "a", "01"]) };
    // GETBIT may read far out (no allocation); SETBIT stays within a few hundred bytes.
    one(args![g.name("SETBIT"), g.key(), offset(g), bit])
}

fn getbit(g: &mut Gen) -> Vec<Op> {
    let off = if g.chance(0.1) { g.pick_str(&["4294967295", "4294967294", "100000000"]) } else { offset(g) };
    one(args![g.name("GETBIT"), g.key(), off])
}

fn index(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0..=13 => g.range(-20, 20).to_string().into_bytes(),
        14..=16 => g.range(-200, 200).to_string().into_bytes(),
        17 => g.pick_str(&["9223372036854775807", "-9223372036854775808", "2147483648", "-2147483649"]),
        _ => g.pick_str(&["abc", "", "1.5", "9223372036854775808"]),
    }
}

/// `start end [BYTE|BIT]`, all, some or none of it, sometimes with junk.
fn range(g: &mut Gen, a: &mut Vec<Vec<u8>>, max: usize) {
    let n = g.below(max + 1);
    for i in 0..n {
        match i {
            0 | 1 => a.push(index(g)),
            _ if g.chance(0.9) => a.push(one_of(g, &["BYTE", "BIT"])),
            _ => a.push(g.pick_str(&["BITS", "", "FOO"])),
        }
    }
    if g.chance(0.03) {
        a.push(g.pick_str(&["BIT", "junk"]));
    }
}

fn bitcount(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("BITCOUNT"), g.key()];
    range(g, &mut a, 3);
    one(a)
}

fn bitpos(g: &mut Gen) -> Vec<Op> {
    let bit = if g.chance(0.95) { g.pick_str(&["0", "1"]) } else { g.pick_str(&["2", "-1", "", "a"]) };
    let mut a = args![g.name("BITPOS"), g.key(), bit];
    range(g, &mut a, 3);
    one(a)
}

fn bitop(g: &mut Gen) -> Vec<Op> {
    let op = match g.below(20) {
        0..=17 => one_of(g, &["AND", "OR", "XOR", "NOT"]),
        _ => g.pick_str(&["NAND", "", "ANDOR"]),
    };
    let mut a = args![g.name("BITOP"), op, g.key()];
    let sources = if a[1].eq_ignore_ascii_case(b"NOT") && g.chance(0.9) { 1 } else { g.range(1, 4) };
    for _ in 0..sources {
        a.push(g.key());
    }
    one(a)
}

/// A BITFIELD type: mostly valid, at the edges (u63, i64, u1, i1) often, sometimes invalid.
fn field_type(g: &mut Gen) -> (bool, u32, Vec<u8>) {
    if g.chance(0.05) {
        return (false, 8, g.pick_str(&["u64", "i65", "i0", "u0", "x8", "u", "8", "U8", "I16", "i-1"]));
    }
    let signed = g.chance(0.5);
    let bits = match g.below(6) {
        0 => u32::try_from(g.range(1, if signed { 64 } else { 63 })).unwrap_or(8),
        1 => {
            if signed {
                64
            } else {
                63
            }
        }
        2 => 1,
        _ => g.pick(&[4, 8, 16, 32, 5, 12]),
    };
    let name = format!("{}{bits}", if signed { 'i' } else { 'u' });
    (signed, bits, name.into_bytes())
}

/// A BITFIELD offset; `write` keeps valid ones small.
fn field_offset(g: &mut Gen, write: bool) -> Vec<u8> {
    match g.below(20) {
        0..=11 => g.range(0, 100).to_string().into_bytes(),
        12..=15 => format!("#{}", g.range(0, 12)).into_bytes(),
        16 if !write => g.pick_str(&["4294967295", "4294967232", "#67108863", "#536870911"]),
        17 => g.range(0, 1000).to_string().into_bytes(),
        // Out of range for every width (`#536870912` would be 64 MB of u1 fields, valid).
        _ => g.pick_str(&["-1", "#-1", "abc", "", "#", "4294967296", "#4294967296", "9223372036854775808", "1.5"]),
    }
}

/// A value for SET/INCRBY: around the type's limits, or anything from the integer pool.
fn field_value(g: &mut Gen, signed: bool, bits: u32) -> Vec<u8> {
    let max: i128 = if signed { (1i128 << (bits - 1)) - 1 } else { (1i128 << bits) - 1 };
    let min: i128 = if signed { -max - 1 } else { 0 };
    match g.below(8) {
        0 => max.to_string().into_bytes(),
        1 => min.to_string().into_bytes(),
        2 => (max + 1).min(i128::from(i64::MAX)).to_string().into_bytes(),
        3 => (min - 1).to_string().into_bytes(),
        4 => g.range(-3, 3).to_string().into_bytes(),
        _ => g.int(),
    }
}

fn bitfield_ops(g: &mut Gen, a: &mut Vec<Vec<u8>>, read_only: bool) {
    for _ in 0..g.range(if read_only { 1 } else { 0 }, 4) {
        let sub = if read_only && g.chance(0.9) { 0 } else { g.below(10) };
        match sub {
            0..=2 => {
                let (_, _, t) = field_type(g);
                a.push(g.kw("GET"));
                a.push(t);
                a.push(field_offset(g, false));
            }
            3..=6 => {
                let (signed, bits, t) = field_type(g);
                a.push(g.kw(if sub <= 4 { "SET" } else { "INCRBY" }));
                a.push(t);
                a.push(field_offset(g, true));
                a.push(field_value(g, signed, bits));
            }
            7 | 8 => {
                a.push(g.kw("OVERFLOW"));
                a.push(if g.chance(0.95) { one_of(g, &["WRAP", "SAT", "FAIL"]) } else { g.pick_str(&["FOO", ""]) });
            }
            _ => a.push(g.pick_str(&["GET", "SET", "INCRBY", "OVERFLOW", "FOO"])),
        }
    }
}

fn bitfield(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("BITFIELD"), g.key()];
    bitfield_ops(g, &mut a, false);
    one(a)
}

fn bitfield_ro(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("BITFIELD_RO"), g.key()];
    bitfield_ops(g, &mut a, true);
    one(a)
}

fn set(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SET"), g.key(), bytes(g)])
}

fn append(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("APPEND"), g.key(), bytes(g)])
}

fn setrange(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("SETRANGE"), g.key(), g.range(0, 40).to_string(), bytes(g)])
}

fn get(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("GET"), g.key()])
}

fn rpush(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("RPUSH"), g.key(), g.value()])
}
