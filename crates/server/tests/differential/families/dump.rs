//! DUMP/RESTORE, OBJECT ENCODING/FREQ/IDLETIME, SORT and SORT_RO.
//!
//! DUMP payloads are each server's choice of encoding, so they are not compared: after a DUMP
//! both answered, the harness RESTOREs (REPLACE, ABSTTL, IDLETIME, FREQ, TTLs in the future
//! and the past, BUSYKEY) each server's own payload, the other server's (Redis restores
//! StayKV's and StayKV Redis's: both must accept), or Redis's damaged (RDB version, CRC,
//! truncation), and compares the replies and the restored keys (`Check::Dump`). RESTORE of
//! hand-built payloads (the old plain encodings, duplicate set members, NaN scores, unknown
//! types, empty collections, truncated strings) is compared exactly. Not generated: bytes
//! after a complete object (Redis 7.0 ignores them, StayKV's reader in crates/rdb refuses
//! the payload) and a hash naming a field twice (Redis loads a corrupt listpack).
//!
//! SORT keys by role: `L*` lists, `S*` sets, `Z*` sorted sets, weights in strings `w_<elem>`
//! and hash fields `h_<elem>->f`. Two results Redis leaves unspecified are compared unordered:
//! `BY nosort` over a set without STORE (the set's iteration order), and ALPHA with a BY
//! pattern (elements whose sort keys tie come in qsort's order); neither is generated with
//! LIMIT or STORE then, which would pick by that order.

use super::{c, CmdGen, Family};
use crate::differential::gen::{dump_payload, unordered, Check, Damage, DumpPlan, Gen, Op, Payload, RestorePlan};

pub const FAMILY: Family =
    Family { name: "dump", required: &["DUMP", "RESTORE", "SORT"], gens: GENS, wraps: false, ..Family::PLAIN };

const GENS: &[CmdGen] = &[
    c("DUMP", 14, dump),
    c("RESTORE", 8, restore_crafted),
    c("OBJECT", 5, object),
    c("SORT", 18, sort),
    c("SORT_RO", 6, sort_ro),
    c("RPUSH", 8, rpush),
    c("SADD", 6, sadd),
    c("ZADD", 6, zadd),
    c("HSET", 5, hset),
    c("SET", 6, set),
    c("RPUSH", 1, rpush_big),
    c("SADD", 1, sadd_big),
    c("DEL", 2, del),
];

const ELEMS: &[&str] = &["1", "2", "3", "10", "-1", "1.5", "a", "b", "c", "B", "7", "0"];
const ODD_ELEMS: &[&str] = &["", " 5", "0x10", "inf", "-inf", "nan", "1e400", "5 ", "1e2"];

fn elem(g: &mut Gen) -> Vec<u8> {
    if g.chance(0.05) {
        g.pick_str(ODD_ELEMS)
    } else {
        g.pick_str(ELEMS)
    }
}

fn list_key(g: &mut Gen) -> Vec<u8> {
    g.pick_str(&["L1", "L2", "L3"])
}

fn set_key(g: &mut Gen) -> Vec<u8> {
    g.pick_str(&["S1", "S2", "S3"])
}

fn zset_key(g: &mut Gen) -> Vec<u8> {
    g.pick_str(&["Z1", "Z2"])
}

/// Any key: the SORT roles, the shared pool (values of every type), weight keys.
fn any_key(g: &mut Gen) -> Vec<u8> {
    match g.below(10) {
        0..=1 => list_key(g),
        2..=3 => set_key(g),
        4 => zset_key(g),
        5 => [&b"w_"[..], &elem(g)].concat(),
        6 => [&b"h_"[..], &elem(g)].concat(),
        _ => g.key(),
    }
}

fn rpush(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("RPUSH"), if g.chance(0.8) { list_key(g) } else { g.key() }];
    for _ in 0..g.range(1, 4) {
        a.push(elem(g));
    }
    vec![Op::new(a)]
}

fn sadd(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SADD"), if g.chance(0.8) { set_key(g) } else { g.key() }];
    for _ in 0..g.range(1, 4) {
        a.push(elem(g));
    }
    vec![Op::new(a)]
}

fn zadd(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("ZADD"), if g.chance(0.8) { zset_key(g) } else { g.key() }];
    for _ in 0..g.range(1, 3) {
        a.push(g.pick_str(&["0", "1", "2", "-1", "1.5", "3"]));
        a.push(elem(g));
    }
    vec![Op::new(a)]
}

/// Weights for BY and values for GET: `h_<elem>` hashes, or any hash of the pool.
fn hset(g: &mut Gen) -> Vec<Op> {
    let key = if g.chance(0.8) { [&b"h_"[..], &elem(g)].concat() } else { g.key() };
    let field = g.pick_str(&["f", "f", "g"]);
    vec![Op::new(args![g.name("HSET"), key, field, weight(g)])]
}

fn weight(g: &mut Gen) -> Vec<u8> {
    match g.below(10) {
        0..=6 => g.range(-5, 20).to_string().into_bytes(),
        7 => g.pick_str(&["1.5", "-0.5", "1e3"]),
        _ => g.pick_str(&["abc", "", "zz", "A"]),
    }
}

/// Weights in strings `w_<elem>`, or values anywhere.
fn set(g: &mut Gen) -> Vec<Op> {
    if g.chance(0.8) {
        return vec![Op::new(args![g.name("SET"), [&b"w_"[..], &elem(g)].concat(), weight(g)])];
    }
    vec![Op::new(args![g.name("SET"), g.key(), g.value()])]
}

/// Past the compact encodings' limits (quicklist nodes, hashtable sets).
fn rpush_big(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("RPUSH"), g.key()];
    for i in 0..g.range(130, 200) {
        a.push(if i % 7 == 0 { format!("element-{i}-{}", "x".repeat(70)) } else { i.to_string() }.into_bytes());
    }
    vec![Op::new(a)]
}

fn sadd_big(g: &mut Gen) -> Vec<Op> {
    let mut a = args![g.name("SADD"), g.key()];
    let words = g.chance(0.5);
    for i in 0..g.range(100, 600) {
        a.push(if words { format!("m{i}") } else { i.to_string() }.into_bytes());
    }
    vec![Op::new(a)]
}

fn del(g: &mut Gen) -> Vec<Op> {
    vec![Op::new(args![g.name("DEL"), any_key(g), any_key(g)])]
}

// ---- DUMP / RESTORE ---------------------------------------------------------------------

/// Where RESTORE writes: never a SORT role key (`L*`, `S*`, `Z*`), whose type SORT's checks
/// rely on (a set restored under `L1` would make `BY nosort` unordered there).
fn restore_target(g: &mut Gen) -> Vec<u8> {
    if g.chance(0.4) {
        g.pick_str(&["dump:a", "dump:b"])
    } else {
        g.key()
    }
}

fn restore_plan(g: &mut Gen) -> RestorePlan {
    let target = restore_target(g);
    let payload = match g.below(10) {
        0..=4 => Payload::Own,
        5..=7 => Payload::Other,
        _ => Payload::Damaged(match g.below(5) {
            0 => Damage::Version,
            1 => Damage::Crc,
            2 => Damage::Body,
            3 => Damage::Truncated(g.below(12) + 1),
            _ => Damage::Truncated(100_000),
        }),
    };
    // Option groups (a keyword and its value stay together), in random order.
    let mut groups: Vec<Vec<Vec<u8>>> = Vec::new();
    let ttl = match g.below(12) {
        0..=6 => b"0".to_vec(),
        7 | 8 => g.rel_ms().to_string().into_bytes(),
        9 => {
            groups.push(vec![g.kw("ABSTTL")]);
            g.abs_ms().to_string().into_bytes()
        }
        10 => {
            // Already expired: nothing is created (and REPLACE deletes the old key).
            groups.push(vec![g.kw("ABSTTL")]);
            g.past(true, true).max(1).to_string().into_bytes()
        }
        _ => g.pick_str(&["-1", "abc", "", "1.5", "9223372036854775808"]),
    };
    if g.chance(0.6) {
        groups.push(vec![g.kw("REPLACE")]);
    }
    match g.below(14) {
        0 => groups.push(vec![g.kw("IDLETIME"), g.pick_str(&["0", "100", "1000", "-1", "abc"])]),
        1 => groups.push(vec![g.kw("FREQ"), g.pick_str(&["0", "5", "255", "256", "-1", "abc"])]),
        2 => {
            groups.push(vec![g.kw("IDLETIME"), b"10".to_vec()]);
            groups.push(vec![g.kw("FREQ"), b"10".to_vec()]);
        }
        3 => groups.push(vec![g.pick_str(&["FOO", "IDLETIME", "FREQ", "ABSTTL"])]),
        _ => {}
    }
    g.rng_shuffle(&mut groups);
    let options = groups.concat();
    RestorePlan { target, ttl, options, payload }
}

fn dump(g: &mut Gen) -> Vec<Op> {
    let key = any_key(g);
    let restores = (0..g.range(1, 3)).map(|_| restore_plan(g)).collect();
    vec![Op::with(args![g.name("DUMP"), key], Check::Dump(DumpPlan { restores }))]
}

/// An RDB length (6- or 14-bit forms are enough here).
fn len(n: usize, out: &mut Vec<u8>) {
    if n < 64 {
        out.push(u8::try_from(n).unwrap_or(0));
    } else {
        out.push(0x40 | u8::try_from(n >> 8).unwrap_or(0));
        out.push(u8::try_from(n & 0xff).unwrap_or(0));
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    len(s.len(), out);
    out.extend_from_slice(s);
}

/// Payloads built by hand, in the plain (non-compact) RDB encodings Redis 7.0 still loads,
/// and broken ones.
fn crafted(g: &mut Gen) -> Vec<u8> {
    let mut body = Vec::new();
    match g.below(12) {
        0 => {
            body.push(0);
            string(&g.value(), &mut body);
        }
        1 => {
            // An integer-encoded string: 8-bit 5.
            body.extend_from_slice(&[0, 0xc0, 5]);
        }
        2 | 3 => {
            // Set (type 2): small integers become an intset, words a hashtable; sometimes a
            // duplicate member.
            let n = g.range(1, 5);
            let mut members: Vec<Vec<u8>> = (0..n).map(|i| format!("{}", i * 3).into_bytes()).collect();
            if g.chance(0.5) {
                members.push(b"word".to_vec());
            }
            if g.chance(0.2) {
                members.push(members[0].clone());
            }
            body.push(2);
            len(members.len(), &mut body);
            for m in &members {
                string(m, &mut body);
            }
        }
        4 | 5 => {
            // Hash (type 4). Not with a duplicate field: Redis 7.0 loads that into a corrupt
            // listpack holding both.
            let fields: Vec<(Vec<u8>, Vec<u8>)> =
                (0..g.range(1, 4)).map(|i| (format!("f{i}").into_bytes(), g.value())).collect();
            body.push(4);
            len(fields.len(), &mut body);
            for (f, v) in &fields {
                string(f, &mut body);
                string(v, &mut body);
            }
        }
        6 | 7 => {
            // Sorted set with binary scores (type 5), sometimes a NaN score or a duplicate.
            let mut entries: Vec<(Vec<u8>, f64)> = (0..g.range(1, 4))
                .map(|i| (format!("m{i}").into_bytes(), f64::from(u32::try_from(i).unwrap_or(0)) * 1.5))
                .collect();
            match g.below(6) {
                0 => entries.push((b"nan".to_vec(), f64::NAN)),
                1 => entries.push((entries[0].0.clone(), 9.0)),
                2 => entries.push((b"inf".to_vec(), f64::INFINITY)),
                _ => {}
            }
            body.push(5);
            len(entries.len(), &mut body);
            for (m, s) in &entries {
                string(m, &mut body);
                body.extend_from_slice(&s.to_le_bytes());
            }
        }
        8 => {
            // List (type 1, the pre-quicklist linked list).
            body.push(1);
            let n = g.range(1, 4);
            len(usize::try_from(n).unwrap_or(1), &mut body);
            for i in 0..n {
                string(format!("e{i}").as_bytes(), &mut body);
            }
        }
        9 => {
            // An empty collection: Redis never has one.
            body.push(g.pick(&[1u8, 2, 4]));
            body.push(0);
        }
        10 => {
            // Not an object type.
            body.push(g.pick(&[8u8, 100, 254]));
            string(b"x", &mut body);
        }
        _ => {
            // A string whose length runs past the end of the payload (a shorter overrun
            // reads into the footer in Redis 7.0, which does not bound the object). (Not
            // bytes after a whole object: Redis 7.0 ignores them, StayKV's payload reader
            // refuses them.)
            body.extend_from_slice(&[0, 60, b'a', b'b']);
        }
    }
    dump_payload(&body)
}

fn restore_crafted(g: &mut Gen) -> Vec<Op> {
    let target = restore_target(g);
    let mut a = args![g.name("RESTORE"), target, "0", crafted(g)];
    if g.chance(0.7) {
        a.push(g.kw("REPLACE"));
    }
    vec![Op::new(a)]
}

fn object(g: &mut Gen) -> Vec<Op> {
    match g.below(10) {
        0..=4 => vec![Op::new(args![g.name("OBJECT"), g.kw("ENCODING"), any_key(g)])],
        // No LFU policy: an error for an existing key, nil for a missing one.
        5 | 6 => vec![Op::new(args![g.name("OBJECT"), g.kw("FREQ"), any_key(g)])],
        // Seconds since the last access: the same within the LRU clock's resolution. Only
        // collections: a string holding a small integer shares Redis's integer object, whose
        // access time is that of the last access to any key holding that integer.
        7 | 8 => {
            let key = match g.below(3) {
                0 => list_key(g),
                1 => set_key(g),
                _ => zset_key(g),
            };
            vec![Op::with(args![g.name("OBJECT"), g.kw("IDLETIME"), key], Check::Tol(2))]
        }
        // Never mutated: dropping the extra argument would ask a run time's idle time,
        // compared exactly (seed 51 once saw 0 against 1 across a second's boundary).
        _ => vec![Op::kept(match g.below(3) {
            0 => args![g.name("OBJECT"), "FREQ"],
            1 => args![g.name("OBJECT"), "IDLETIME", any_key(g), "x"],
            _ => args![g.name("OBJECT"), "FREQ", any_key(g), "x"],
        })],
    }
}

// ---- SORT -------------------------------------------------------------------------------

fn sort_generic(g: &mut Gen, name: &str, read_only: bool) -> Vec<Op> {
    #[derive(PartialEq)]
    enum Role {
        List,
        Set,
        Other,
    }
    let (key, role) = match g.below(10) {
        0..=3 => (list_key(g), Role::List),
        4..=6 => (set_key(g), Role::Set),
        7 => (zset_key(g), Role::Other),
        _ => (g.key(), Role::Other),
    };
    let mut a = args![g.name(name), key];
    let by = match g.below(10) {
        0..=3 => None,
        4..=5 => Some(g.pick_str(&["w_*", "h_*->f", "h_*->g", "w_*->", "*", "nokey_*"])),
        _ => Some(g.pick_str(&["nosort", "NOSORT", "#", "w_", "h_->f"])),
    };
    let by_pattern = by.as_ref().is_some_and(|p| p.contains(&b'*'));
    let no_sort = by.is_some() && !by_pattern;
    let alpha = g.chance(0.4);
    // Redis leaves these orders unspecified (see the module doc); the role of a pool key is
    // unknown, so the same holds for it.
    let unordered_reply = (no_sort && role != Role::List) || (alpha && by_pattern);
    let mut opts: Vec<Vec<Vec<u8>>> = Vec::new();
    if let Some(p) = by {
        opts.push(vec![g.kw("BY"), p]);
    }
    if alpha {
        opts.push(vec![g.kw("ALPHA")]);
    }
    match g.below(4) {
        0 => opts.push(vec![g.kw("DESC")]),
        1 => opts.push(vec![g.kw("ASC")]),
        _ => {}
    }
    if !unordered_reply && g.chance(0.3) {
        let off = match g.below(10) {
            0 => g.pick_str(&["-1", "abc", "100"]),
            _ => g.range(0, 4).to_string().into_bytes(),
        };
        let count = match g.below(10) {
            0 => g.pick_str(&["-1", "abc", "0"]),
            _ => g.range(1, 5).to_string().into_bytes(),
        };
        opts.push(vec![g.kw("LIMIT"), off, count]);
    }
    for _ in 0..g.pick(&[0, 0, 1, 1, 2, 3]) {
        let p = g.pick_str(&["#", "w_*", "h_*->f", "h_*->g", "nokey_*", "nostar", "w_*->"]);
        opts.push(vec![g.kw("GET"), p]);
    }
    // With STORE, a set's BY nosort is sorted (ALPHA) by Redis; ALPHA with BY still ties.
    let store = (!read_only || g.chance(0.05)) && g.chance(0.3) && !(alpha && by_pattern);
    if store {
        opts.push(vec![g.kw("STORE"), if g.chance(0.7) { g.pick_str(&["dst", "L3"]) } else { g.key() }]);
    }
    g.rng_shuffle(&mut opts);
    if g.chance(0.03) {
        opts.push(vec![g.pick_str(&["FOO", "LIMIT", "BY", "GET", "STORE"])]);
    }
    for o in opts {
        a.extend(o);
    }
    let check = if unordered_reply && !store { Check::Norm(unordered) } else { Check::Exact };
    // Redis 7.0's SORT tests `errno` after `strtod` without clearing it first, so an ERANGE
    // left by an earlier command of the same pipeline (a float argument out of range) makes
    // it fail with "One or more scores can't be converted". ZUNION's WEIGHTS are read with
    // string2d, which clears errno: run just before, it makes Redis's answer depend on the
    // SORT alone. (No effect: the key never exists.)
    vec![Op::kept(args!["ZUNION", "1", "errno:clear", "WEIGHTS", "1"]), Op::with(a, check)]
}

fn sort(g: &mut Gen) -> Vec<Op> {
    sort_generic(g, "SORT", false)
}

fn sort_ro(g: &mut Gen) -> Vec<Op> {
    sort_generic(g, "SORT_RO", true)
}
