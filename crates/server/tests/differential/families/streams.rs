//! Streams: XADD (`ms-seq`, `ms` and `ms-*` IDs, NOMKSTREAM, MAXLEN/MINID with `=`/`~` and
//! LIMIT) XLEN XRANGE XREVRANGE XDEL XTRIM XSETID (ENTRIESADDED MAXDELETEDID) XREAD; consumer
//! groups: XGROUP CREATE SETID DESTROY CREATECONSUMER DELCONSUMER HELP, XREADGROUP (NOACK)
//! XACK XPENDING (summary and extended) XCLAIM XAUTOCLAIM; XINFO STREAM (FULL) GROUPS
//! CONSUMERS HELP; CONFIG SET of the node limits (`stream-node-max-entries`, `-bytes`);
//! stream commands on strings and lists. Where StayKV is known to differ from
//! Redis 7.0, the inputs are left out, each with the divergence in a comment.
//!
//! Nothing reads the clock: no ID is `*` (milliseconds come from 0..=50 and sequences from
//! 0..=5, so IDs collide, go backwards and hit 0-0; `ms-*` follows the stream's last ID, and
//! `50-*` always succeeds, so streams keep growing until a DEL starts them over), XREAD and
//! XREADGROUP never BLOCK, and idle thresholds (min-idle-time, XPENDING's IDLE) are 0 or an
//! hour, far from every idle time the run makes: under its duration, or a day and more
//! (XCLAIM IDLE and TIME). Replies that show times (XPENDING's extended form, XINFO
//! CONSUMERS, XINFO STREAM FULL) are compared with the times erased (`xinfo_norm`); so is
//! every stream in the dataset comparison (`XINFO STREAM key FULL COUNT 0`).

use super::{c, one, CmdGen, Family};
use crate::differential::gen::{Check, Gen, Op, KEYS};
use crate::differential::resp::Value;

pub const FAMILY: Family =
    Family { name: "streams", required: &["XADD", "XRANGE"], gens: GENS, wraps: false, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("XADD", 20, xadd),
    c("XADD", 4, xadd_run),
    c("XLEN", 2, xlen),
    c("XRANGE", 8, xrange),
    c("XREVRANGE", 4, xrevrange),
    c("XDEL", 3, xdel),
    c("XTRIM", 6, xtrim),
    c("XSETID", 2, xsetid),
    c("XREAD", 4, xread),
    c("XGROUP", 8, xgroup_create),
    c("XGROUP", 2, xgroup_setid),
    c("XGROUP", 1, xgroup_destroy),
    c("XGROUP", 2, xgroup_createconsumer),
    c("XGROUP", 1, xgroup_delconsumer),
    c("XGROUP", 1, xgroup_bad),
    c("XREADGROUP", 14, xreadgroup),
    c("XACK", 9, xack),
    c("XPENDING", 3, xpending),
    c("XPENDING", 4, xpending_range),
    c("XCLAIM", 4, xclaim),
    c("XAUTOCLAIM", 3, xautoclaim),
    c("XAUTOCLAIM", 1, xautoclaim_bad),
    c("XINFO", 2, xinfo_stream),
    c("XINFO", 2, xinfo_groups),
    c("XINFO", 2, xinfo_consumers),
    c("XINFO", 1, xinfo_bad),
    c("CONFIG", 1, node_limits),
    c("DEL", 1, start_over),
    c("SET", 1, wrong_type),
];

/// The largest millisecond part of generated IDs.
const TOP_MS: i64 = 50;

/// Mostly k8–k10, so streams grow and their groups see traffic: the commands drawn from other
/// families seldom overwrite them (`Gen::key` favours k0–k7). Sometimes any key of the shared
/// space (other types: WRONGTYPE).
fn skey(g: &mut Gen) -> Vec<u8> {
    if g.chance(0.9) {
        return KEYS[8 + g.below(3)].to_vec();
    }
    g.key()
}

fn group(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0..=13 => b"g1".to_vec(),
        14..=18 => b"g2".to_vec(),
        _ => g.pick_str(&["g3", "", "G1", "g 4", "\u{3ba}"]),
    }
}

fn consumer(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0..=9 => b"c1".to_vec(),
        10..=15 => b"c2".to_vec(),
        16..=18 => b"c3".to_vec(),
        _ => g.pick_str(&["", "C1", "c 4"]),
    }
}

/// The millisecond part of an ID: the top value often, so `TOP_MS-*` keeps adding.
fn ms(g: &mut Gen) -> i64 {
    if g.chance(0.25) {
        TOP_MS
    } else {
        g.range(0, TOP_MS)
    }
}

/// `ms-seq`; sequences up to 5, or 15 in the top millisecond, where the runs of `TOP_MS-*`
/// go on counting.
fn full_id(g: &mut Gen) -> Vec<u8> {
    let ms = ms(g);
    let seq = g.range(0, if ms == TOP_MS { 15 } else { 5 });
    format!("{ms}-{seq}").into_bytes()
}

/// An ID argument (XDEL, XACK, XCLAIM, XSETID...): mostly `ms-seq`, sometimes `ms` alone,
/// at the limits, or invalid.
fn id(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0..=14 => full_id(g),
        15 | 16 => ms(g).to_string().into_bytes(),
        17 => g.pick_str(&["0-0", "0", "0-1"]),
        18 => {
            g.pick_str(&["18446744073709551615-18446744073709551615", "18446744073709551615", "5-18446744073709551615"])
        }
        // Blanks before a part are skipped (strtoull), not after it or before a sign.
        _ => g.pick_str(&[
            " 1",
            "\t2-1",
            " -1",
            "1 ",
            "abc",
            "",
            "-1",
            "1-",
            "-",
            "+",
            "1-x",
            "1.5",
            "18446744073709551616",
            "1-18446744073709551616",
            "$",
            ">",
            "1-*",
        ]),
    }
}

/// An ID likely to be pending (XACK, XCLAIM): most deliveries are of the `TOP_MS-*` runs.
fn pending_id(g: &mut Gen) -> Vec<u8> {
    if g.chance(0.6) {
        format!("{TOP_MS}-{}", g.range(0, 15)).into_bytes()
    } else {
        id(g)
    }
}

/// XADD's ID: explicit, `ms` alone, or `ms-*` (the next sequence after the stream's last ID
/// in that millisecond); never `*`, which reads the clock.
fn add_id(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0..=7 => full_id(g),
        // `0` is `0-0`, refused before the key is looked at (no empty stream left behind).
        8 | 9 => ms(g).to_string().into_bytes(),
        10..=17 => format!("{}-*", ms(g)).into_bytes(),
        18 => g.pick_str(&["0-0", "0-*", "0-1"]),
        _ => g.pick_str(&[
            "abc",
            "-1",
            "1-x",
            "*-1",
            "18446744073709551615-18446744073709551615",
            "18446744073709551615-*",
            "18446744073709551616",
            "-",
            "+",
            "$",
            "1-*-1",
        ]),
    }
}

/// A range bound of XRANGE, XPENDING, XAUTOCLAIM: `-`/`+`, complete or incomplete, exclusive.
fn bound(g: &mut Gen, low: bool) -> Vec<u8> {
    match g.below(20) {
        0..=4 => {
            if low {
                b"-".to_vec()
            } else {
                b"+".to_vec()
            }
        }
        5 => g.pick_str(&["-", "+"]),
        6..=11 => full_id(g),
        12..=14 => ms(g).to_string().into_bytes(),
        15..=17 => [b"(".as_slice(), &id(g)].concat(),
        _ => g.pick_str(&[
            "(",
            "(-",
            "(+",
            "abc",
            "",
            "((1-1",
            "(18446744073709551615-18446744073709551615",
            "(0-0",
            "(5",
        ]),
    }
}

fn count(g: &mut Gen) -> Vec<u8> {
    g.pick_str(&["0", "1", "1", "2", "2", "3", "5", "5", "10", "-1", "abc"])
}

fn field(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0 => b"".to_vec(),
        1 => b"\x00f".to_vec(),
        _ => format!("f{}", g.below(3)).into_bytes(),
    }
}

fn pairs(g: &mut Gen, a: &mut Vec<Vec<u8>>) {
    for _ in 0..g.range(1, 3) {
        a.push(field(g));
        a.push(g.value());
    }
    if g.chance(0.03) {
        a.pop();
    }
}

/// `MAXLEN|MINID [=|~] threshold [LIMIT n]` (XADD, XTRIM); LIMIT sometimes without `~`,
/// which Redis refuses.
fn trim_args(g: &mut Gen, a: &mut Vec<Vec<u8>>) {
    let maxlen = g.chance(0.6);
    a.push(if maxlen { g.kw("MAXLEN") } else { g.kw("MINID") });
    let how = g.below(3);
    match how {
        1 => a.push(b"=".to_vec()),
        2 => a.push(b"~".to_vec()),
        _ => {}
    }
    a.push(if maxlen { g.small_int(-1, 12) } else { id(g) });
    if g.chance(if how == 2 { 0.4 } else { 0.05 }) {
        a.push(g.kw("LIMIT"));
        a.push(g.pick_str(&["0", "1", "2", "5", "100", "150", "-1", "abc"]));
    }
}

fn xadd(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XADD"), skey(g)];
    let nomk = g.chance(0.1);
    let after = g.chance(0.5);
    if nomk && !after {
        a.push(g.kw("NOMKSTREAM"));
    }
    if g.chance(0.25) {
        trim_args(g, &mut a);
    }
    if nomk && after {
        a.push(g.kw("NOMKSTREAM"));
    }
    a.push(add_id(g));
    pairs(g, &mut a);
    one(a)
}

/// Several `ms-*` additions in one millisecond (mostly the top one, so they succeed).
fn xadd_run(g: &mut Gen) -> Vec<Op> {
    let key = skey(g);
    let ms = if g.chance(0.7) { TOP_MS } else { ms(g) };
    (0..g.range(2, 6)).map(|_| Op::new(args!["XADD", key, format!("{ms}-*"), field(g), g.value()])).collect()
}

/// Where a node of the radix tree is closed (`stream-node-max-entries`, `-bytes`): small
/// limits, so that the short streams of a run span many nodes and `~` trims them. No byte
/// limit under a few entries' size: redis-server 7.0.15 then builds nodes that a later
/// XREAD or XRANGE asserts on (`lpValidateNext` in `lpFirst`, seed 1796639591855446171
/// with limits of 40 and 60 bytes; Valkey's issue 4705 is the same bug).
fn node_limits(g: &mut Gen) -> Vec<Op> {
    let (name, value) = if g.chance(0.5) {
        ("stream-node-max-entries", g.pick_str(&["0", "1", "2", "3", "5", "100"]))
    } else {
        ("stream-node-max-bytes", g.pick_str(&["0", "200", "300", "500", "4096"]))
    };
    one(args![g.name("CONFIG"), "SET", name, value])
}

fn xlen(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("XLEN"), skey(g)])
}

fn range(g: &mut Gen, name: &str, rev: bool) -> Vec<Op> {
    let (lo, hi) = (bound(g, true), bound(g, false));
    let mut a = args![g.name(name), skey(g)];
    if rev {
        a.extend([hi, lo]);
    } else {
        a.extend([lo, hi]);
    }
    if g.chance(0.4) {
        a.push(g.kw("COUNT"));
        a.push(count(g));
    }
    if g.chance(0.02) {
        a.push(g.pick_str(&["FOO", "COUNT"]));
    }
    one(a)
}

fn xrange(g: &mut Gen) -> Vec<Op> {
    range(g, "XRANGE", false)
}

fn xrevrange(g: &mut Gen) -> Vec<Op> {
    range(g, "XREVRANGE", true)
}

fn xdel(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XDEL"), skey(g)];
    for _ in 0..g.range(1, 3) {
        a.push(id(g));
    }
    one(a)
}

fn xtrim(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XTRIM"), skey(g)];
    if g.chance(0.97) {
        trim_args(g, &mut a);
    } else {
        a.push(g.pick_str(&["FOO", "LIMIT", "~"]));
    }
    one(a)
}

fn xsetid(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XSETID"), skey(g), id(g)];
    if g.chance(0.3) {
        a.push(g.kw("ENTRIESADDED"));
        a.push(g.small_int(-1, 40));
    }
    if g.chance(0.3) {
        a.push(g.kw("MAXDELETEDID"));
        a.push(id(g));
    }
    one(a)
}

/// `STREAMS key... id...` with `ids` drawing each ID; sometimes one ID short.
fn streams_tail(g: &mut Gen, a: &mut Vec<Vec<u8>>, ids: fn(&mut Gen) -> Vec<u8>) {
    a.push(g.kw("STREAMS"));
    let n = if g.chance(0.8) { 1 } else { g.range(2, 3) };
    for _ in 0..n {
        a.push(skey(g));
    }
    for _ in 0..n {
        a.push(ids(g));
    }
    if g.chance(0.03) {
        a.pop();
    }
}

fn read_id(g: &mut Gen) -> Vec<u8> {
    match g.below(12) {
        0..=5 => id(g),
        6 | 7 => b"0".to_vec(),
        8 => b"$".to_vec(),
        9 => b"0-0".to_vec(),
        10 => [b"(".as_slice(), &full_id(g)].concat(),
        _ => g.pick_str(&[">", "+", "-"]),
    }
}

fn xread(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XREAD")];
    if g.chance(0.5) {
        a.push(g.kw("COUNT"));
        a.push(count(g));
    }
    if g.chance(0.02) {
        a.push(g.pick_str(&["NOACK", "FOO"]));
    }
    streams_tail(g, &mut a, read_id);
    vec![Op::new(a)]
}

/// XREADGROUP's ID: new entries (`>`) mostly, else the consumer's pending history from an ID.
fn group_read_id(g: &mut Gen) -> Vec<u8> {
    match g.below(20) {
        0..=13 => b">".to_vec(),
        14..=16 => b"0".to_vec(),
        17 | 18 => full_id(g),
        _ => g.pick_str(&["$", "+", "-", "abc", "(0"]),
    }
}

fn xreadgroup(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XREADGROUP"), g.kw("GROUP"), group(g), consumer(g)];
    if g.chance(0.5) {
        a.push(g.kw("COUNT"));
        a.push(count(g));
    }
    if g.chance(0.15) {
        a.push(g.kw("NOACK"));
    }
    if g.chance(0.01) {
        // No GROUP.
        a.truncate(1);
    }
    streams_tail(g, &mut a, group_read_id);
    one(a)
}

fn xack(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XACK"), skey(g), group(g)];
    for _ in 0..g.range(1, 4) {
        a.push(pending_id(g));
    }
    one(a)
}

/// Where XGROUP CREATE and SETID put a group.
fn group_id(g: &mut Gen) -> Vec<u8> {
    match g.below(12) {
        0..=2 => b"$".to_vec(),
        3 | 4 => b"0".to_vec(),
        5..=10 => id(g),
        _ => g.pick_str(&[">", "+", "-"]),
    }
}

fn entries_read(g: &mut Gen, a: &mut Vec<Vec<u8>>) {
    if g.chance(0.2) {
        a.push(g.kw("ENTRIESREAD"));
        a.push(g.small_int(-3, 30));
    }
}

fn xgroup_create(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XGROUP"), g.kw("CREATE"), skey(g), group(g), group_id(g)];
    if g.chance(0.3) {
        a.push(g.kw("MKSTREAM"));
    }
    entries_read(g, &mut a);
    one(a)
}

fn xgroup_setid(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XGROUP"), g.kw("SETID"), skey(g), group(g), group_id(g)];
    entries_read(g, &mut a);
    one(a)
}

fn xgroup_destroy(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("XGROUP"), g.kw("DESTROY"), skey(g), group(g)])
}

fn xgroup_createconsumer(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("XGROUP"), g.kw("CREATECONSUMER"), skey(g), group(g), consumer(g)])
}

fn xgroup_delconsumer(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("XGROUP"), g.kw("DELCONSUMER"), skey(g), group(g), consumer(g)])
}

/// Unknown subcommands, missing and extra arguments, HELP.
fn xgroup_bad(g: &mut Gen) -> Vec<Op> {
    one(match g.below(5) {
        0 => args![g.name("XGROUP"), g.pick_str(&["FOO", "CREATEX", ""]), skey(g), group(g)],
        1 => args![g.name("XGROUP")],
        2 => args![g.name("XGROUP"), g.kw("CREATE"), skey(g), group(g)],
        3 => args![g.name("XGROUP"), g.kw("DESTROY"), skey(g), group(g), "extra"],
        _ => args![g.name("XGROUP"), g.kw("HELP")],
    })
}

fn xpending(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("XPENDING"), skey(g), group(g)])
}

/// An idle threshold: none, or an hour (longer than any run, shorter than the idle times
/// XCLAIM's IDLE and TIME set); sometimes invalid.
fn min_idle(g: &mut Gen) -> Vec<u8> {
    g.pick_str(&["0", "0", "0", "3600000", "3600000", "-1", "abc"])
}

/// `XPENDING key group [IDLE n] start end count [consumer]`: idle times erased.
fn xpending_range(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XPENDING"), skey(g), group(g)];
    if g.chance(0.3) {
        a.push(g.kw("IDLE"));
        a.push(min_idle(g));
    }
    a.extend([bound(g, true), bound(g, false), count(g)]);
    if g.chance(0.4) {
        a.push(consumer(g));
    }
    vec![Op::with(a, Check::Norm(pending_norm))]
}

fn xclaim(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XCLAIM"), skey(g), group(g), consumer(g), min_idle(g)];
    for _ in 0..g.range(1, 4) {
        a.push(pending_id(g));
    }
    if g.chance(0.15) {
        // A day ago, now (0, negative, huge: Redis takes now), or invalid.
        a.push(g.kw("IDLE"));
        a.push(g.pick_str(&["100000000", "0", "-5", "9223372036854775807", "abc"]));
    }
    if g.chance(0.1) {
        // Decades ago, or in the future (Redis takes now).
        a.push(g.kw("TIME"));
        a.push(g.pick_str(&["1", "1000", "-1", "99999999999999", "abc"]));
    }
    if g.chance(0.15) {
        a.push(g.kw("RETRYCOUNT"));
        a.push(g.small_int(-1, 5));
    }
    if g.chance(0.2) {
        a.push(g.kw("FORCE"));
    }
    if g.chance(0.3) {
        a.push(g.kw("JUSTID"));
    }
    if g.chance(0.1) {
        a.push(g.kw("LASTID"));
        a.push(id(g));
    }
    one(a)
}

/// Valid arguments only, never mutated: see `xautoclaim_bad`.
fn xautoclaim(g: &mut Gen) -> Vec<Op> {
    let idle = g.pick_str(&["0", "0", "3600000", "-1"]);
    let start = match g.below(4) {
        0 | 1 => b"-".to_vec(),
        2 => full_id(g),
        _ => [b"(".as_slice(), &full_id(g)].concat(),
    };
    let mut a = args![g.name("XAUTOCLAIM"), skey(g), group(g), consumer(g), idle, start];
    if g.chance(0.4) {
        a.push(g.kw("COUNT"));
        a.push(g.pick_str(&["1", "2", "5", "100"]));
    }
    if g.chance(0.3) {
        a.push(g.kw("JUSTID"));
    }
    one(a)
}

/// An invalid min-idle-time, start or COUNT.
fn xautoclaim_bad(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XAUTOCLAIM"), skey(g), group(g), consumer(g)];
    match g.below(3) {
        0 => a.extend([b"abc".to_vec(), b"-".to_vec()]),
        1 => a.extend([b"0".to_vec(), g.pick_str(&["", "abc", "((1-1", "(18446744073709551615-18446744073709551615"])]),
        _ => {
            let count = g.pick_str(&["0", "-1", "abc", "9223372036854775807"]);
            a.extend([b"0".to_vec(), b"-".to_vec(), g.kw("COUNT"), count]);
        }
    }
    one(a)
}

fn xinfo_stream(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("XINFO"), g.kw("STREAM"), skey(g)];
    if g.chance(0.4) {
        a.push(g.kw("FULL"));
        if g.chance(0.5) {
            a.push(g.kw("COUNT"));
            a.push(count(g));
        }
    }
    vec![Op::with(a, Check::Norm(xinfo_norm))]
}

fn xinfo_groups(g: &mut Gen) -> Vec<Op> {
    one(args![g.name("XINFO"), g.kw("GROUPS"), skey(g)])
}

fn xinfo_consumers(g: &mut Gen) -> Vec<Op> {
    vec![Op::with(args![g.name("XINFO"), g.kw("CONSUMERS"), skey(g), group(g)], Check::Norm(xinfo_norm))]
}

/// Unknown subcommands, missing and extra arguments, HELP.
fn xinfo_bad(g: &mut Gen) -> Vec<Op> {
    one(match g.below(5) {
        0 => args![g.name("XINFO"), g.pick_str(&["FOO", "STREAMS", ""]), skey(g)],
        1 => args![g.name("XINFO")],
        2 => args![g.name("XINFO"), g.kw("CONSUMERS"), skey(g)],
        3 => args![g.name("XINFO"), g.kw("STREAM"), skey(g), g.pick_str(&["FOO", "COUNT"])],
        _ => args![g.name("XINFO"), g.kw("HELP")],
    })
}

/// DEL, the only way back below a stream's last ID; mostly a new stream with a group follows,
/// so that XREADGROUP finds one.
fn start_over(g: &mut Gen) -> Vec<Op> {
    let key = skey(g);
    let mut ops = one(args![g.name("DEL"), key]);
    if g.chance(0.7) {
        ops.push(Op::new(args!["XGROUP", "CREATE", key, group(g), "0", "MKSTREAM"]));
    }
    ops
}

/// A string or a list for a moment (after a DEL: RPUSH would not replace a stream), and
/// stream commands on it (WRONGTYPE); deleted after, so the stream keys stay streams most of
/// the time.
fn wrong_type(g: &mut Gen) -> Vec<Op> {
    let key = skey(g);
    let mut ops = one(args!["DEL", key]);
    ops.push(Op::new(if g.chance(0.5) { args!["SET", key, g.value()] } else { args!["RPUSH", key, g.value()] }));
    for _ in 0..g.range(1, 2) {
        ops.push(Op::new(match g.below(7) {
            0 => args!["XADD", key, full_id(g), field(g), g.value()],
            1 => args!["XLEN", key],
            2 => args!["XRANGE", key, "-", "+"],
            3 => args!["XGROUP", "CREATE", key, group(g), "$", "MKSTREAM"],
            4 => args!["XREADGROUP", "GROUP", group(g), consumer(g), "STREAMS", key, ">"],
            5 => args!["XINFO", "STREAM", key],
            _ => args!["XTRIM", key, "MAXLEN", "1"],
        }));
    }
    ops.push(Op::new(args!["DEL", key]));
    ops
}

// ---- normalizers ----------------------------------------------------------------------------

/// Fields erased from XINFO replies: clock readings (idle times and the times they count
/// from).
const ERASED_FIELDS: &[&[u8]] = &[b"idle", b"inactive", b"seen-time", b"active-time"];

/// An XINFO reply with the `ERASED_FIELDS` erased, and the delivery times of XINFO STREAM
/// FULL's pending lists (`pel`, `pending`). Walks RESP3 maps and RESP2 key/value arrays. Also
/// the dataset comparison's stream reader.
pub fn xinfo_norm(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::Map(m.iter().map(|(k, x)| (k.clone(), field_erased(k, x))).collect()),
        Value::Array(items) if items.len() % 2 == 0 && items.iter().step_by(2).all(|k| matches!(k, Value::Bulk(_))) => {
            Value::Array(items.chunks(2).flat_map(|p| [p[0].clone(), field_erased(&p[0], &p[1])]).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(xinfo_norm).collect()),
        other => other.clone(),
    }
}

/// A stream as the dataset comparison reads it, without its layout (XINFO's radix-tree
/// figures), for the restart check: a log replay lays the entries out under the restarted
/// server's node limits (a CONFIG SET is not logged, as in Redis), and a snapshot keeps no
/// deleted entries, so only the content has to come back as it was.
pub fn layout_erased(v: &Value) -> Value {
    let erase = |key: &Value, x: &Value| match key.bytes() {
        Some(b"radix-tree-keys" | b"radix-tree-nodes") => Value::Int(0),
        _ => x.clone(),
    };
    match v {
        Value::Map(m) => Value::Map(m.iter().map(|(k, x)| (k.clone(), erase(k, x))).collect()),
        Value::Array(items) if items.len() % 2 == 0 => {
            Value::Array(items.chunks(2).flat_map(|p| [p[0].clone(), erase(&p[0], &p[1])]).collect())
        }
        other => other.clone(),
    }
}

fn field_erased(key: &Value, v: &Value) -> Value {
    let name = key.bytes().unwrap_or_default();
    match v {
        Value::Int(_) if ERASED_FIELDS.contains(&name) => Value::Int(0),
        Value::Array(_) if name == b"pel" || name == b"pending" => pending_norm(v),
        _ => xinfo_norm(v),
    }
}

/// A list of pending entries with the times erased: XPENDING's extended form
/// (`[id, consumer, idle, deliveries]`) and XINFO STREAM FULL's (`[id, consumer, delivery
/// time, deliveries]` for a group, `[id, delivery time, deliveries]` for a consumer): the time
/// is the next to last element.
fn pending_norm(v: &Value) -> Value {
    let erase = |e: &Value| match e {
        Value::Array(f) if f.len() >= 3 => {
            let mut f = f.clone();
            let at = f.len() - 2;
            f[at] = Value::Int(0);
            Value::Array(f)
        }
        other => other.clone(),
    };
    match v {
        Value::Array(list) => Value::Array(list.iter().map(erase).collect()),
        other => other.clone(),
    }
}
