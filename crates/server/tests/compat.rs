//! Compatibility with redis-server 7.0 at the binary level, for every type and every
//! encoding Redis 7.0 gives it:
//!
//! - DUMP payloads made by redis-server RESTORE into StayKV with the same content, and
//!   payloads made by StayKV RESTORE into redis-server (three redis-server configurations:
//!   default, `rdbcompression no`, `list-compress-depth 1`, which change the payload bytes);
//! - a subscriber that stops reading is disconnected at its pub/sub output-buffer limit while
//!   a reading subscriber gets every message and another client's PING stays fast;
//! - every type survives SIGKILL and restart (log only, and snapshot + log), script and
//!   transaction effects included;
//! - `staykv export` of every encoding loads in redis-server, and `staykv import` of a
//!   redis-server `SAVE` of every encoding (three configurations) has the same content.
//!
//! The dataset ([`every_encoding`]) is checked against redis-server itself: each key must get
//! the OBJECT ENCODING it was built for, so the coverage cannot silently shrink. It extends
//! `persist_common::populate` (used by snapshot.rs and import_export.rs) with the edges:
//! every listpack integer width, int16/int32/int64 intsets, int-encoded strings at the i64
//! bounds, 44/45-byte embstr/raw, long LZF-compressible and incompressible strings,
//! HyperLogLog (sparse and dense) and bitmaps, special scores (±inf, -0, 1e-300, 1.8e308),
//! members and values over the listpack value limits, binary keys, TTLs on every type.
//! (Redis 7.0 has no listpack sets or listpack lists: a small set of strings is a hashtable,
//! a small list a quicklist of one listpack node; those listpack encodings came in 7.2.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod persist_common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{have_tool, wait_until, RawConn, Server};
use persist_common::{
    assert_same, call, call_str, dump_all, info_field, now_ms, pipeline, staykv, staykv_ok, KeyDump, Val,
};

/// Databases compared by the whole-dataset dumps.
const DBS: usize = 4;

/// redis-server configurations whose DUMP payloads and RDB files differ in form.
const REDIS_VARIANTS: [&[&str]; 3] = [&[], &["--rdbcompression", "no"], &["--list-compress-depth", "1"]];

// ---- the dataset --------------------------------------------------------------------------

/// One key: the commands that build it and the encoding redis-server 7.0 gives it.
struct Entry {
    key: Vec<u8>,
    encoding: &'static str,
    cmds: Vec<Vec<Vec<u8>>>,
}

fn c(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// `head` followed by `rest` (a command with many arguments).
fn c_many(head: &[&[u8]], rest: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
    let mut cmd = c(head);
    cmd.extend(rest);
    cmd
}

/// Deterministic bytes that LZF cannot compress (xorshift64).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// Integers at the edges of every listpack / intset integer encoding.
fn edge_ints() -> Vec<String> {
    let mut v: Vec<i64> = vec![
        0,
        1,
        127,
        128,
        -1,
        -64,
        -4096,
        4095,
        4096,
        -4097,
        32767,
        -32768,
        32768,
        -32769,
        8_388_607,
        -8_388_608,
        8_388_608,
        2_147_483_647,
        -2_147_483_648,
        2_147_483_648,
        1 << 40,
        i64::MAX,
        i64::MIN,
    ];
    v.dedup();
    v.iter().map(i64::to_string).collect()
}

fn entry(key: &str, encoding: &'static str, cmds: Vec<Vec<Vec<u8>>>) -> Entry {
    Entry { key: key.as_bytes().to_vec(), encoding, cmds }
}

/// Every type in every encoding of redis-server 7.0, with edge values.
fn every_encoding() -> Vec<Entry> {
    let mut out = Vec::new();
    let set = |k: &str, v: &[u8]| vec![c(&[b"SET", k.as_bytes(), v])];
    // Strings.
    for (k, v, enc) in [
        ("str:int:0", "0", "int"),
        ("str:int:-1", "-1", "int"),
        ("str:int:shared", "9999", "int"),
        ("str:int:big", "123456789012", "int"),
        ("str:int:max", "9223372036854775807", "int"),
        ("str:int:min", "-9223372036854775808", "int"),
        ("str:notint:overflow", "9223372036854775808", "embstr"),
        ("str:notint:leading-zero", "007", "embstr"),
        ("str:notint:plus", "+5", "embstr"),
        ("str:notint:float", "3.14", "embstr"),
        ("str:empty", "", "embstr"),
        ("str:unicode", "héllo wörld ✓ 😀 中文", "embstr"),
        ("str:lzf:short", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "embstr"),
    ] {
        out.push(entry(k, enc, set(k, v.as_bytes())));
    }
    out.push(entry("str:embstr44", "embstr", set("str:embstr44", &[b'e'; 44])));
    out.push(entry("str:raw45", "raw", set("str:raw45", &[b'r'; 45])));
    out.push(entry("str:lzf:long", "raw", set("str:lzf:long", "compress me, please! ".repeat(5000).as_bytes())));
    out.push(entry("str:incompressible", "raw", set("str:incompressible", &noise(200_000, 7))));
    let binary: Vec<u8> = (0..4).flat_map(|_| 0u8..=255).collect();
    out.push(entry("str:binary", "raw", set("str:binary", &binary)));
    out.push(Entry {
        key: b"bin:\x00\xff\r\n key".to_vec(),
        encoding: "embstr",
        cmds: vec![c(&[b"SET", b"bin:\x00\xff\r\n key", b"\x00\x01\x02"])],
    });
    out.push(entry("str:incr", "int", vec![c(&[b"SET", b"str:incr", b"10"]), c(&[b"INCRBY", b"str:incr", b"32"])]));
    out.push(entry(
        "str:incrbyfloat",
        "embstr",
        vec![c(&[b"SET", b"str:incrbyfloat", b"10.5"]), c(&[b"INCRBYFLOAT", b"str:incrbyfloat", b"0.25"])],
    ));
    out.push(entry(
        "str:append",
        "raw",
        vec![c(&[b"SET", b"str:append", b"a"]), c(&[b"APPEND", b"str:append", b"bc"])],
    ));
    out.push(entry("str:ttl", "embstr", vec![c(&[b"SET", b"str:ttl", b"expires later", b"PX", b"3600000"])]));
    out.push(entry(
        "str:hll:sparse",
        "raw",
        vec![c_many(&[b"PFADD", b"str:hll:sparse"], (0..100).map(|i| format!("visitor-{i}").into_bytes()))],
    ));
    out.push(entry(
        "str:hll:dense",
        "raw",
        vec![c_many(&[b"PFADD", b"str:hll:dense"], (0..5000).map(|i| format!("visitor-{i}").into_bytes()))],
    ));
    out.push(entry(
        "str:bitmap",
        "raw",
        vec![c(&[b"SETBIT", b"str:bitmap", b"100000", b"1"]), c(&[b"SETBIT", b"str:bitmap", b"7", b"1"])],
    ));
    // Lists.
    // Redis 7.0 lists are always quicklists (of listpack nodes): small is one node, large many.
    let mut small: Vec<Vec<u8>> = edge_ints().into_iter().map(String::into_bytes).collect();
    small.extend([b"".to_vec(), b"007".to_vec(), b"x".to_vec(), "ünï".as_bytes().to_vec(), vec![b'm'; 63]]);
    out.push(entry("list:small", "quicklist", vec![c_many(&[b"RPUSH", b"list:small"], small)]));
    out.push(entry(
        "list:quicklist",
        "quicklist",
        vec![c_many(
            &[b"RPUSH", b"list:quicklist"],
            (0..1000).map(|i| format!("element-{i}-{}", "y".repeat(i % 90)).into_bytes()),
        )],
    ));
    out.push(entry(
        "list:quicklist:ints",
        "quicklist",
        vec![c_many(
            &[b"RPUSH", b"list:quicklist:ints"],
            (0..3000i64).map(|i| (i * 1_000_003 - 7).to_string().into_bytes()),
        )],
    ));
    out.push(entry(
        "list:big-element",
        "quicklist",
        vec![c(&[b"RPUSH", b"list:big-element", b"head", &[b'L'; 100_000], &noise(20_000, 3), b"tail"])],
    ));
    out.push(entry(
        "list:edited",
        "quicklist",
        vec![
            c(&[b"LPUSH", b"list:edited", b"c", b"b", b"a"]),
            c(&[b"LINSERT", b"list:edited", b"BEFORE", b"b", b"a2"]),
            c(&[b"LSET", b"list:edited", b"-1", b"last"]),
            c(&[b"RPUSH", b"list:edited", b"42"]),
            c(&[b"PEXPIRE", b"list:edited", b"4000000"]),
        ],
    ));
    // Hashes.
    let mut pairs: Vec<Vec<u8>> = Vec::new();
    for (i, n) in edge_ints().into_iter().enumerate() {
        pairs.push(format!("f{i}").into_bytes());
        pairs.push(n.into_bytes());
    }
    pairs.extend([b"empty".to_vec(), b"".to_vec(), b"".to_vec(), b"empty field".to_vec()]);
    pairs.extend([b"12".to_vec(), b"int field".to_vec()]);
    out.push(entry("hash:listpack", "listpack", vec![c_many(&[b"HSET", b"hash:listpack"], pairs)]));
    out.push(entry(
        "hash:hashtable",
        "hashtable",
        vec![c_many(
            &[b"HSET", b"hash:hashtable"],
            (0..300).flat_map(|i| {
                [format!("field-{i}").into_bytes(), format!("value-{i}-{}", "z".repeat(i % 60)).into_bytes()]
            }),
        )],
    ));
    out.push(entry(
        "hash:long-value",
        "hashtable",
        vec![c(&[b"HSET", b"hash:long-value", b"f", &[b'v'; 65], b"g", b"short"])],
    ));
    out.push(entry(
        "hash:outgrown",
        "hashtable",
        vec![c(&[b"HSET", b"hash:outgrown", b"f", &[b'v'; 65], b"g", b"short"]), c(&[b"HDEL", b"hash:outgrown", b"f"])],
    ));
    out.push(entry(
        "hash:counters",
        "listpack",
        vec![
            c(&[b"HINCRBY", b"hash:counters", b"hits", b"41"]),
            c(&[b"HINCRBY", b"hash:counters", b"hits", b"1"]),
            c(&[b"HINCRBYFLOAT", b"hash:counters", b"ratio", b"0.1"]),
            c(&[b"HINCRBYFLOAT", b"hash:counters", b"ratio", b"0.2"]),
            c(&[b"EXPIRE", b"hash:counters", b"5000"]),
        ],
    ));
    // Sets.
    out.push(entry(
        "set:intset16",
        "intset",
        vec![c(&[b"SADD", b"set:intset16", b"1", b"2", b"3", b"-100", b"32767"])],
    ));
    out.push(entry(
        "set:intset32",
        "intset",
        vec![c(&[b"SADD", b"set:intset32", b"70000", b"-70000", b"2147483647", b"-2147483648", b"5"])],
    ));
    out.push(entry(
        "set:intset64",
        "intset",
        vec![c(&[b"SADD", b"set:intset64", b"9223372036854775807", b"-9223372036854775808", b"1", b"4294967296"])],
    ));
    out.push(entry("set:small-strings", "hashtable", vec![c(&[b"SADD", b"set:small-strings", b"a", b"b", b"c", b""])]));
    out.push(entry("set:mixed", "hashtable", vec![c(&[b"SADD", b"set:mixed", b"1", b"2", b"x", b"007"])]));
    out.push(entry(
        "set:hashtable",
        "hashtable",
        vec![c_many(&[b"SADD", b"set:hashtable"], (0..600).map(|i| format!("member-{i}").into_bytes()))],
    ));
    out.push(entry(
        "set:many-ints",
        "hashtable",
        vec![c_many(&[b"SADD", b"set:many-ints"], (0..700).map(|i| (i * 7).to_string().into_bytes()))],
    ));
    out.push(entry(
        "set:outgrown",
        "hashtable",
        vec![c(&[b"SADD", b"set:outgrown", b"1", b"2", b"x"]), c(&[b"SREM", b"set:outgrown", b"x"])],
    ));
    out.push(entry(
        "set:ttl",
        "intset",
        vec![c(&[b"SADD", b"set:ttl", b"1", b"2"]), c(&[b"PEXPIRE", b"set:ttl", b"6000000"])],
    ));
    // Sorted sets.
    out.push(entry(
        "zset:listpack",
        "listpack",
        vec![c(&[
            b"ZADD",
            b"zset:listpack",
            b"1",
            b"one",
            b"-3",
            b"minus three",
            b"2.5",
            b"two and a half",
            b"0.1",
            b"a tenth",
            b"1e-300",
            b"tiny",
            b"1.7976931348623157e308",
            b"huge",
            b"inf",
            b"plus infinity",
            b"-inf",
            b"minus infinity",
            b"0",
            b"zero",
            b"-0",
            b"minus zero",
            b"100000000000000000",
            b"1e17",
            b"123456789.125",
            b"fraction",
            b"7",
            b"",
            b"8",
            b"12345",
        ])],
    ));
    out.push(entry(
        "zset:skiplist",
        "skiplist",
        vec![c_many(
            &[b"ZADD", b"zset:skiplist"],
            (0..300).flat_map(|i| [format!("{}", f64::from(i) / 3.0).into_bytes(), format!("m{i}").into_bytes()]),
        )],
    ));
    out.push(entry(
        "zset:long-member",
        "skiplist",
        vec![c(&[b"ZADD", b"zset:long-member", b"1", &[b'M'; 65], b"2", b"short"])],
    ));
    // (Not with -0: Redis 7.0 turns a skip list's -0 into 0 when it loads the set small.)
    out.push(entry(
        "zset:outgrown",
        "skiplist",
        vec![
            c(&[b"ZADD", b"zset:outgrown", b"1", &[b'M'; 65], b"2", b"short", b"-1.5", b"negative"]),
            c(&[b"ZREM", b"zset:outgrown", &[b'M'; 65]]),
        ],
    ));
    out.push(entry(
        "zset:edited",
        "listpack",
        vec![
            c(&[b"ZADD", b"zset:edited", b"1", b"a", b"2", b"b", b"3", b"c"]),
            c(&[b"ZINCRBY", b"zset:edited", b"10", b"a"]),
            c(&[b"ZREM", b"zset:edited", b"b"]),
            c(&[b"ZADD", b"zset:edited", b"GT", b"CH", b"0", b"c", b"5", b"c"]),
            c(&[b"EXPIRE", b"zset:edited", b"7000"]),
        ],
    ));
    // Streams: one node; three nodes with differing fields, a deletion and a moved last ID;
    // one emptied by XDEL (Redis keeps it); one with a TTL.
    out.push(entry(
        "stream:small",
        "stream",
        vec![
            c(&[b"XADD", b"stream:small", b"1-1", b"f", b"v"]),
            c(&[b"XADD", b"stream:small", b"1-2", b"f", b"w", b"g", b"x"]),
        ],
    ));
    let mut big: Vec<Vec<Vec<u8>>> = (1..=300)
        .map(|i: u32| {
            let field: &[u8] = if i.is_multiple_of(11) { b"other" } else { b"n" };
            c(&[b"XADD", b"stream:big", format!("{i}-0").as_bytes(), field, i.to_string().as_bytes()])
        })
        .collect();
    big.push(c(&[b"XDEL", b"stream:big", b"5-0"]));
    big.push(c(&[b"XSETID", b"stream:big", b"999-0", b"ENTRIESADDED", b"400", b"MAXDELETEDID", b"5-0"]));
    out.push(entry("stream:big", "stream", big));
    out.push(entry(
        "stream:emptied",
        "stream",
        vec![c(&[b"XADD", b"stream:emptied", b"7-7", b"f", b"v"]), c(&[b"XDEL", b"stream:emptied", b"7-7"])],
    ));
    out.push(entry(
        "stream:ttl",
        "stream",
        vec![c(&[b"XADD", b"stream:ttl", b"1-1", b"f", b"v"]), c(&[b"EXPIRE", b"stream:ttl", b"7000"])],
    ));
    out
}

/// Writes `entries` into database `db` (pipelined; every reply checked).
fn load(conn: &mut RawConn, entries: &[Entry], db: usize) {
    assert_eq!(call_str(conn, &["SELECT", &db.to_string()]), Val::Simple("OK".into()));
    let cmds: Vec<Vec<Vec<u8>>> = entries.iter().flat_map(|e| e.cmds.iter().cloned()).collect();
    for (cmd, reply) in cmds.iter().zip(pipeline(conn, &cmds)) {
        assert!(!matches!(reply, Val::Error(_)), "{:?}: {reply:?}", String::from_utf8_lossy(&cmd.join(&b' ')));
    }
    assert_eq!(call_str(conn, &["SELECT", "0"]), Val::Simple("OK".into()));
}

/// Asserts redis-server gave each key the encoding the dataset built it for.
fn assert_redis_encodings(redis: &mut RawConn, entries: &[Entry]) {
    let wrong: Vec<String> = entries
        .iter()
        .filter_map(|e| {
            let got = call(redis, &[b"OBJECT", b"ENCODING", &e.key]).text();
            (got != e.encoding).then(|| format!("{}: {got}, built for {}", String::from_utf8_lossy(&e.key), e.encoding))
        })
        .collect();
    assert!(wrong.is_empty(), "redis-server chose other encodings than the dataset expects: {wrong:#?}");
}

/// The whole dataset in `db`, for use when keys do not need their database.
fn dump_db(conn: &mut RawConn, db: usize) -> BTreeMap<(usize, Vec<u8>), KeyDump> {
    dump_all(conn, db + 1).into_iter().filter(|((d, _), _)| *d == db).collect()
}

/// DUMP every key of db 0 of `from` and RESTORE it into db 0 of `to` (relative TTL, or the
/// absolute deadline with ABSTTL); returns the keys whose RESTORE failed, with the reply.
fn dump_and_restore(from: &mut RawConn, to: &mut RawConn, entries: &[Entry], abs_ttl: bool) -> Vec<String> {
    let mut failures = Vec::new();
    for e in entries {
        let payload = match call(from, &[b"DUMP", &e.key]) {
            Val::Bulk(Some(p)) => p,
            other => panic!("DUMP {:?}: {other:?}", String::from_utf8_lossy(&e.key)),
        };
        let pttl = call(from, &[b"PTTL", &e.key]).int();
        let reply = if abs_ttl {
            let at = if pttl > 0 { (now_ms() + pttl as u64).to_string() } else { "0".to_string() };
            call(to, &[b"RESTORE", &e.key, at.as_bytes(), &payload, b"ABSTTL", b"REPLACE"])
        } else {
            let ttl = pttl.max(0).to_string();
            call(to, &[b"RESTORE", &e.key, ttl.as_bytes(), &payload])
        };
        if reply != Val::Simple("OK".into()) {
            failures.push(format!(
                "{} ({}, payload {} bytes{}): {reply:?}",
                String::from_utf8_lossy(&e.key),
                e.encoding,
                payload.len(),
                if payload.len() <= 96 { format!(" {payload:02x?}") } else { String::new() },
            ));
        }
    }
    failures
}

/// OBJECT ENCODING of each key on both servers, printed (not asserted: the content is what
/// must match, StayKV may pick another representation).
fn print_encodings(a_name: &str, a: &mut RawConn, b_name: &str, b: &mut RawConn, entries: &[Entry]) {
    for e in entries {
        let ea = call(a, &[b"OBJECT", b"ENCODING", &e.key]).text();
        let eb = call(b, &[b"OBJECT", b"ENCODING", &e.key]).text();
        if ea != eb {
            println!("  encoding of {}: {a_name} {ea}, {b_name} {eb}", String::from_utf8_lossy(&e.key));
        }
    }
}

// ---- MIGRATE -------------------------------------------------------------------------------

/// MIGRATE from `source` to a fresh redis-server: the replies (moves, NOKEY, the target's
/// errors, a closed port, bad arguments), COMMAND GETKEYS of it, and where the keys are after.
fn migrate_scenario(source: &Server) -> Vec<String> {
    let Some(target) = Server::redis() else { return Vec::new() };
    let (mut from, mut to) = (source.connect(), target.connect());
    let port = target.port().to_string();
    let closed = common::free_port().to_string();
    for args in [&["SET", "k1", "v1"][..], &["RPUSH", "l", "a", "b", "c"], &["HSET", "h", "f", "v"]] {
        from.cmd(args);
    }
    from.cmd(&["SET", "t", "x", "PX", "100000"]);
    from.cmd(&["SET", "busy", "new"]);
    to.cmd(&["SET", "busy", "old"]);
    let h = "127.0.0.1";
    let steps: &[&[&str]] = &[
        &["MIGRATE", h, &port, "k1", "0", "5000"],
        &["MIGRATE", h, &port, "", "3", "5000", "KEYS", "l", "h", "nosuch"],
        &["MIGRATE", h, &port, "nosuch", "0", "5000"],
        &["MIGRATE", h, &port, "busy", "0", "5000"],
        &["MIGRATE", h, &port, "busy", "0", "5000", "COPY", "REPLACE"],
        &["MIGRATE", h, &port, "t", "0", "5000", "AUTH", "secret"],
        &["MIGRATE", h, &closed, "busy", "0", "200"],
        &["MIGRATE", h, &port, "", "0", "5000", "KEYS"],
        &["MIGRATE", h, &port, "busy", "0", "5000", "KEYS", "a"],
        &["MIGRATE", h, &port, "busy", "0", "5000", "BOGUS"],
        &["MIGRATE", h, &port, "busy", "x", "5000"],
        &["MIGRATE", h, &port, "busy", "0", "5000", "AUTH2", "u"],
        &["COMMAND", "GETKEYS", "MIGRATE", h, &port, "", "0", "5000", "AUTH", "keys", "KEYS", "a", "b"],
        &["COMMAND", "GETKEYS", "MIGRATE", h, &port, "k", "0", "5000", "COPY"],
    ];
    let mut seen: Vec<String> = steps.iter().map(|args| format!("{args:?} -> {}", from.cmd_text(args))).collect();
    seen.iter_mut().for_each(|line| *line = line.replace(&port, "PORT").replace(&closed, "CLOSED"));
    let sorted = |conn: &mut RawConn| {
        let Val::Array(Some(keys)) = call_str(conn, &["KEYS", "*"]) else { panic!("KEYS is no array") };
        let mut keys: Vec<String> = keys.iter().map(|key| String::from_utf8_lossy(&key.bytes()).into_owned()).collect();
        keys.sort();
        keys.join(" ")
    };
    seen.push(format!("source keys: {}", sorted(&mut from)));
    seen.push(format!("target db 0: {}", sorted(&mut to)));
    seen.push(format!(
        "target busy: {}, t has a TTL: {}",
        to.cmd_text(&["GET", "busy"]),
        to.cmd_text(&["PTTL", "t"]) != "-1"
    ));
    to.cmd(&["SELECT", "3"]);
    seen.push(format!("target db 3: {}, l: {}", sorted(&mut to), to.cmd_text(&["LRANGE", "l", "0", "-1"])));
    seen
}

#[test]
fn migrate_sends_keys_to_redis_as_redis_does() {
    common::same_as_redis(migrate_scenario, &["NOKEY", "BUSYKEY", "IOERR", "target db 3: h l"]);
}

// ---- DUMP / RESTORE -------------------------------------------------------------------------

#[test]
fn dump_payloads_of_redis_restore_into_staykv_with_the_same_content() {
    let entries = every_encoding();
    let mut server = Server::staykv();
    for variant in REDIS_VARIANTS {
        let Some(redis) = Server::redis_with(variant) else { return };
        let mut rc = redis.connect();
        load(&mut rc, &entries, 0);
        assert_redis_encodings(&mut rc, &entries);
        let mut sc = server.connect();
        assert_eq!(call_str(&mut sc, &["FLUSHALL"]), Val::Simple("OK".into()));
        let failures = dump_and_restore(&mut rc, &mut sc, &entries, false);
        assert!(
            failures.is_empty(),
            "redis-server {variant:?} DUMP payloads StayKV refused to RESTORE:\n{}",
            failures.join("\n")
        );
        let expected = dump_db(&mut rc, 0);
        let got = dump_db(&mut sc, 0);
        assert_eq!(expected.len(), entries.len());
        assert_same(&format!("redis-server {variant:?}"), &expected, "staykv after RESTORE", &got, 1000);
        print_encodings("redis", &mut rc, "staykv", &mut sc, &entries);
        // What RESTORE wrote is durable like any write.
        drop(sc);
        server.kill();
        server.restart();
        let after = dump_db(&mut server.connect(), 0);
        assert_same("staykv after RESTORE", &got, "staykv after kill -9 and restart", &after, 200);
        println!("redis-server {variant:?}: {} keys restored into StayKV, same content", got.len());
    }
}

/// Each key's DUMP is in the encoding redis-server's is (its type byte), small collections
/// that outgrew their compact encoding included: Redis writes the encoding it holds.
#[test]
fn dump_payloads_are_in_the_encoding_redis_gives_them() {
    let entries = every_encoding();
    let Some(redis) = Server::redis() else { return };
    let server = Server::staykv();
    let (mut rc, mut sc) = (redis.connect(), server.connect());
    load(&mut rc, &entries, 0);
    load(&mut sc, &entries, 0);
    let type_byte = |conn: &mut RawConn, key: &[u8]| match call(conn, &[b"DUMP", key]) {
        Val::Bulk(Some(payload)) => payload[0],
        other => panic!("DUMP {:?}: {other:?}", String::from_utf8_lossy(key)),
    };
    let differ: Vec<String> = entries
        .iter()
        .filter_map(|e| {
            let (r, s) = (type_byte(&mut rc, &e.key), type_byte(&mut sc, &e.key));
            (r != s)
                .then(|| format!("{} ({}): redis type {r}, staykv {s}", String::from_utf8_lossy(&e.key), e.encoding))
        })
        .collect();
    assert!(differ.is_empty(), "DUMP payloads in other encodings than redis-server's: {differ:#?}");
}

#[test]
fn dump_payloads_of_staykv_restore_into_redis_with_the_same_content() {
    let entries = every_encoding();
    let server = Server::staykv();
    let mut sc = server.connect();
    load(&mut sc, &entries, 0);
    let expected = dump_db(&mut sc, 0);
    assert_eq!(expected.len(), entries.len());
    for variant in REDIS_VARIANTS {
        for abs_ttl in [false, true] {
            let Some(redis) = Server::redis_with(variant) else { return };
            let mut rc = redis.connect();
            let failures = dump_and_restore(&mut sc, &mut rc, &entries, abs_ttl);
            assert!(
                failures.is_empty(),
                "StayKV DUMP payloads redis-server {variant:?} refused to RESTORE{}:\n{}",
                if abs_ttl { " ABSTTL REPLACE" } else { "" },
                failures.join("\n")
            );
            let got = dump_db(&mut rc, 0);
            assert_same("staykv", &expected, &format!("redis-server {variant:?} after RESTORE"), &got, 1000);
            if !abs_ttl {
                print_encodings("staykv", &mut sc, "redis", &mut rc, &entries);
            }
        }
    }
    // And back: a payload that went StayKV → Redis → StayKV is unchanged.
    let Some(redis) = Server::redis() else { return };
    let mut rc = redis.connect();
    assert!(dump_and_restore(&mut sc, &mut rc, &entries, false).is_empty());
    assert_eq!(call_str(&mut sc, &["FLUSHALL"]), Val::Simple("OK".into()));
    let failures = dump_and_restore(&mut rc, &mut sc, &entries, true);
    assert!(failures.is_empty(), "round trip: {}", failures.join("\n"));
    assert_same("staykv before", &expected, "staykv after the round trip", &dump_db(&mut sc, 0), 1000);
}

// ---- pub/sub output-buffer limit ------------------------------------------------------------

/// Publishes `count` messages of `size` bytes on `channel` (pipelined in batches); returns the
/// receiver counts PUBLISH answered.
fn publish_all(conn: &mut RawConn, channel: &str, count: usize, size: usize) -> Vec<i64> {
    let payload = vec![b'p'; size];
    let mut counts = Vec::with_capacity(count);
    let batch = 8;
    let mut sent = 0;
    while sent < count {
        let n = batch.min(count - sent);
        let cmds: Vec<Vec<Vec<u8>>> = (0..n).map(|_| c(&[b"PUBLISH", channel.as_bytes(), &payload])).collect();
        counts.extend(pipeline(conn, &cmds).into_iter().map(|r| r.int()));
        sent += n;
    }
    counts
}

/// Reads pushed messages (`message` frames of `size`-byte payloads on `channel`) from a
/// subscriber until `expected` arrived; returns (messages, whether it closed or went quiet first).
fn read_messages(mut stream: std::net::TcpStream, channel: &str, size: usize, expected: usize) -> (usize, bool) {
    let per = format!("*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${size}\r\n", channel.len()).len() + size + 2;
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    while total < expected * per {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return (total / per, true),
            Ok(n) => total += n,
        }
    }
    (total / per, false)
}

/// The pub/sub output-buffer test against `server` (StayKV, or redis-server as a reference
/// for the harness itself).
fn slow_subscriber_is_disconnected(server: &Server) {
    const SIZE: usize = 64 * 1024;
    const COUNT: usize = 800; // 50 MiB
    let started = Instant::now();
    let channel: &'static str = "firehose";
    // The subscriber that never reads after its SUBSCRIBE confirmation.
    let mut slow = server.connect();
    let confirm = slow.cmd(&["SUBSCRIBE", channel]);
    assert!(String::from_utf8_lossy(&confirm).contains("subscribe"), "{confirm:?}");
    // A subscriber that keeps reading must get everything.
    let mut fast = server.connect();
    fast.cmd(&["SUBSCRIBE", channel]);
    let fast_stream = fast.stream().try_clone().unwrap();
    let reader = std::thread::spawn(move || read_messages(fast_stream, channel, SIZE, COUNT));
    // A third client measures PING round trips all along, counting those sent while the
    // publisher runs.
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = Arc::new(AtomicBool::new(true));
    let pinger = {
        let (stop, publishing) = (Arc::clone(&stop), Arc::clone(&publishing));
        let mut conn = server.connect();
        std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let (mut pings, mut during) = (0u32, 0u32);
            while !stop.load(Ordering::Relaxed) {
                let busy = publishing.load(Ordering::Relaxed);
                let t = Instant::now();
                assert_eq!(conn.cmd(&["PING"]), b"+PONG\r\n");
                worst = worst.max(t.elapsed());
                pings += 1;
                during += u32::from(busy);
                std::thread::sleep(Duration::from_millis(2));
            }
            (worst, pings, during)
        })
    };
    let mut publisher = server.connect();
    let counts = publish_all(&mut publisher, channel, COUNT, SIZE);
    publishing.store(false, Ordering::Relaxed);
    let published_in = started.elapsed();
    // The slow subscriber was dropped while the publisher still ran: the last PUBLISHes
    // reached only the reading subscriber.
    assert_eq!(counts[0], 2, "first PUBLISH reached {} subscribers", counts[0]);
    assert_eq!(*counts.last().unwrap(), 1, "the subscriber that stopped reading is still subscribed after 50 MiB");
    let dropped_after = counts.iter().position(|&n| n == 1).unwrap();
    println!("{:?}: slow subscriber dropped after {} MiB published", server.kind(), (dropped_after * SIZE) >> 20);
    assert!(dropped_after * SIZE <= 48 << 20, "dropped only after {} MiB", (dropped_after * SIZE) >> 20);
    // The slow subscriber's socket holds what was in flight, then reads EOF or a reset.
    let drained = slow.drain(0, Duration::from_secs(20));
    assert!(drained.closed, "the server did not close the slow subscriber ({} bytes read)", drained.bytes.len());
    assert!(drained.bytes.len() < COUNT * SIZE, "the slow subscriber got everything: {} bytes", drained.bytes.len());
    // The reading subscriber got every message.
    let (received, closed) = reader.join().unwrap();
    assert!(
        !closed && received >= COUNT,
        "the reading subscriber got {received} of {COUNT} messages (closed: {closed})"
    );
    stop.store(true, Ordering::Relaxed);
    let (worst, pings, during) = pinger.join().unwrap();
    println!(
        "{:?}: published {} MiB in {published_in:?}; {pings} PINGs ({during} while publishing), slowest {worst:?}",
        server.kind(),
        (COUNT * SIZE) >> 20
    );
    assert!(during >= 1 && pings >= 5, "only {pings} PINGs answered ({during} while publishing)");
    assert!(worst < Duration::from_secs(1), "a PING took {worst:?} while the subscriber was being dropped");
    // The server is up and has forgotten the slow subscriber.
    let mut conn = server.connect();
    assert_eq!(conn.cmd(&["PING"]), b"+PONG\r\n");
    let numsub = call_str(&mut conn, &["PUBSUB", "NUMSUB", channel]).items();
    assert_eq!(numsub[1], Val::Int(1), "PUBSUB NUMSUB after the drop: {numsub:?}");
    assert!(started.elapsed() < Duration::from_secs(120), "took {:?}", started.elapsed());
}

#[test]
fn subscriber_that_stops_reading_is_disconnected_at_its_output_buffer_limit() {
    let server = Server::staykv();
    slow_subscriber_is_disconnected(&server);
    assert!(server.log().contains("output buffer"), "no log line about the dropped subscriber:\n{}", server.log());
}

/// The same scenario against redis-server 7.0 (default `client-output-buffer-limit pubsub
/// 32mb 8mb 60`): checks the test itself.
#[test]
fn subscriber_output_buffer_limit_reference_redis() {
    let Some(redis) = Server::redis() else { return };
    slow_subscriber_is_disconnected(&redis);
}

// ---- kill -9 and restart --------------------------------------------------------------------

/// Entries of the dataset with a prefix on every key (to put a second copy elsewhere).
fn prefixed(entries: &[Entry], prefix: &str) -> Vec<Entry> {
    entries
        .iter()
        .map(|e| {
            let key = [prefix.as_bytes(), &e.key].concat();
            let cmds = e
                .cmds
                .iter()
                .map(|cmd| cmd.iter().enumerate().map(|(i, a)| if i == 1 { key.clone() } else { a.clone() }).collect())
                .collect();
            Entry { key, encoding: e.encoding, cmds }
        })
        .collect()
}

/// Changes after the dataset was written: every type modified in place, renamed, expired,
/// persisted, moved, deleted, in a MULTI/EXEC, in other databases.
fn mutate(conn: &mut RawConn) {
    let cmds: Vec<Vec<Vec<u8>>> = vec![
        c(&[b"APPEND", b"str:raw45", b"-appended"]),
        c(&[b"INCRBY", b"str:int:big", b"-12"]),
        c(&[b"SETRANGE", b"str:lzf:long", b"10", b"PATCHED"]),
        c(&[b"PERSIST", b"str:ttl"]),
        c(&[b"EXPIRE", b"str:unicode", b"9000"]),
        c(&[b"DEL", b"str:empty"]),
        c(&[b"RENAME", b"str:binary", b"str:binary:renamed"]),
        c(&[b"SETBIT", b"str:bitmap", b"3", b"1"]),
        c(&[b"PFADD", b"str:hll:sparse", b"one-more"]),
        c(&[b"LPOP", b"list:quicklist"]),
        c(&[b"RPOPLPUSH", b"list:small", b"list:moved"]),
        c(&[b"LTRIM", b"list:quicklist:ints", b"5", b"-5"]),
        c(&[b"LREM", b"list:edited", b"0", b"a2"]),
        c(&[b"HDEL", b"hash:hashtable", b"field-7", b"field-8"]),
        c(&[b"HSET", b"hash:listpack", b"new", b"field"]),
        c(&[b"SREM", b"set:intset64", b"1"]),
        c(&[b"SMOVE", b"set:hashtable", b"set:small-strings", b"member-1"]),
        c(&[b"SINTERSTORE", b"set:stored", b"set:many-ints", b"set:intset16"]),
        c(&[b"ZREM", b"zset:skiplist", b"m0", b"m1"]),
        c(&[b"ZINCRBY", b"zset:listpack", b"0.5", b"one"]),
        c(&[b"ZUNIONSTORE", b"zset:union", b"2", b"zset:listpack", b"zset:edited", b"WEIGHTS", b"2", b"3"]),
        c(&[b"MULTI"]),
        c(&[b"SET", b"multi:a", b"1"]),
        c(&[b"HSET", b"multi:h", b"f", b"v"]),
        c(&[b"ZADD", b"multi:z", b"1", b"x"]),
        c(&[b"EXEC"]),
        c(&[b"MOVE", b"str:notint:plus", b"2"]),
        c(&[b"COPY", b"zset:edited", b"zset:edited", b"DB", b"3"]),
        c(&[b"SELECT", b"1"]),
        c(&[b"SET", b"db1:short-ttl", b"gone soon", b"PX", b"1"]),
        c(&[b"SELECT", b"0"]),
    ];
    for (cmd, reply) in cmds.iter().zip(pipeline(conn, &cmds)) {
        assert!(!matches!(reply, Val::Error(_)), "{:?}: {reply:?}", String::from_utf8_lossy(&cmd.join(&b' ')));
    }
}

#[test]
fn every_type_survives_kill_9_and_restart() {
    let entries = every_encoding();
    let mut server = Server::staykv();
    let mut conn = server.connect();
    load(&mut conn, &entries, 0);
    load(&mut conn, &prefixed(&entries, "db1:"), 1);
    mutate(&mut conn);
    std::thread::sleep(Duration::from_millis(10)); // db1:short-ttl expires
    let before = dump_all(&mut conn, DBS);
    assert!(before.len() > 2 * entries.len() - 5, "{} keys", before.len());
    assert!(!before.contains_key(&(1, b"db1:short-ttl".to_vec())));
    drop(conn);
    // Log only.
    server.kill();
    server.restart();
    let mut conn = server.connect();
    let after = dump_all(&mut conn, DBS);
    assert_same("before kill -9", &before, "after restart (log)", &after, 200);
    // Snapshot + log: compact, change more, kill again.
    assert_eq!(
        call_str(&mut conn, &["BGREWRITEAOF"]),
        Val::Simple("Background append only file rewriting started".into())
    );
    assert!(wait_until(Duration::from_secs(60), || info_field(&mut conn, "aof_rewrite_in_progress") == "0"));
    load(&mut conn, &prefixed(&entries, "after-snapshot:"), 2);
    call_str(&mut conn, &["DEL", "list:quicklist"]);
    call_str(&mut conn, &["ZADD", "zset:listpack", "42", "after snapshot"]);
    let before = dump_all(&mut conn, DBS);
    drop(conn);
    server.kill();
    server.restart();
    let after = dump_all(&mut server.connect(), DBS);
    assert_same("before kill -9", &before, "after restart (snapshot + log)", &after, 200);
    println!("{} keys in {DBS} databases survived two SIGKILLs", after.len());
}

#[test]
fn script_effects_survive_kill_9_and_restart() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    let script = "redis.call('SET', KEYS[1], ARGV[1]) \
                  redis.call('HSET', KEYS[2], 'a', ARGV[1], 'b', '2') \
                  redis.call('RPUSH', KEYS[3], 'x', 'y') \
                  redis.call('SADD', KEYS[4], '1', '2', 'three') \
                  redis.call('ZADD', KEYS[5], 1.5, 'm') \
                  redis.call('PEXPIRE', KEYS[2], 5000000) \
                  return redis.call('INCRBY', KEYS[6], 5)";
    let reply = call_str(
        &mut conn,
        &["EVAL", script, "6", "lua:s", "lua:h", "lua:l", "lua:set", "lua:z", "lua:n", "from a script"],
    );
    assert_eq!(reply, Val::Int(5), "EVAL failed (is scripting available?)");
    let reply = call_str(&mut conn, &["EVAL", "return redis.pcall('INCR', KEYS[1])", "1", "lua:s"]);
    assert!(matches!(reply, Val::Error(_)), "{reply:?}");
    let before = dump_all(&mut conn, 1);
    assert_eq!(before.len(), 6);
    drop(conn);
    server.kill();
    server.restart();
    assert_same("before kill -9", &before, "after restart", &dump_all(&mut server.connect(), 1), 200);
}

// ---- export to / import from redis-server ------------------------------------------------

fn redis_check_rdb(path: &Path) {
    if !have_tool("redis-check-rdb", "checking the exported RDB with redis-check-rdb") {
        return;
    }
    let out = Command::new("redis-check-rdb").arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("RDB looks OK"), "redis-check-rdb {}:\n{text}", path.display());
}

#[test]
fn export_of_every_encoding_after_kill_9_loads_in_redis() {
    let entries = every_encoding();
    let mut server = Server::staykv();
    let mut conn = server.connect();
    load(&mut conn, &entries, 0);
    // Part in a snapshot, part only in the log.
    assert_eq!(call_str(&mut conn, &["BGSAVE"]), Val::Simple("Background saving started".into()));
    assert!(wait_until(Duration::from_secs(60), || info_field(&mut conn, "rdb_bgsave_in_progress") == "0"));
    load(&mut conn, &prefixed(&entries, "db3:"), 3);
    mutate(&mut conn);
    let ours = dump_all(&mut conn, DBS);
    drop(conn);
    server.kill();
    let rdb = server.scratch().join("export.rdb");
    let text = staykv_ok(&["export", "--rdb", &rdb.to_string_lossy(), "--dir", &server.dir().to_string_lossy()]);
    assert!(text.contains(&format!("exported {} keys", ours.len())), "{text}");
    redis_check_rdb(&rdb);
    // redis-server reads the file where it is: --dir its folder, --dbfilename its name.
    let folder = server.scratch().to_string_lossy().to_string();
    let Some(redis) = Server::redis_with(&["--dir", &folder, "--dbfilename", "export.rdb"]) else { return };
    let theirs = dump_all(&mut redis.connect(), DBS);
    assert_same("staykv", &ours, "redis-server loading the export", &theirs, 1000);
    println!("exported {} keys; redis-server 7.0 loads the same content", theirs.len());
}

#[test]
fn import_of_a_redis_save_with_every_encoding() {
    let entries = every_encoding();
    for variant in REDIS_VARIANTS {
        let Some(redis) = Server::redis_with(variant) else { return };
        let mut rc = redis.connect();
        load(&mut rc, &entries, 0);
        load(&mut rc, &prefixed(&entries, "db2:"), 2);
        assert_redis_encodings(&mut rc, &entries);
        assert_eq!(call_str(&mut rc, &["SAVE"]), Val::Simple("OK".into()));
        let expected = dump_all(&mut rc, DBS);
        let mut server = Server::staykv();
        server.kill();
        std::fs::remove_dir_all(server.dir()).unwrap();
        let rdb = redis.dir().join("dump.rdb");
        let out = staykv(&["import", &rdb.to_string_lossy(), "--dir", &server.dir().to_string_lossy()]);
        let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "staykv import of a redis-server {variant:?} dump.rdb failed:\n{report}");
        server.restart();
        let got = dump_all(&mut server.connect(), DBS);
        assert_same(&format!("redis-server {variant:?}"), &expected, "staykv after import", &got, 1000);
        println!("redis-server {variant:?}: imported {} keys with the same content", got.len());
    }
}

/// The encoding parameters StayKV keeps at Redis's defaults: CONFIG GET shows Redis's own
/// values, CONFIG SET of those values is accepted, another value is refused with a reason.
#[test]
fn fixed_encoding_parameters_read_as_redis_defaults() {
    const FIXED: [&str; 13] = [
        "hash-max-listpack-entries",
        "hash-max-ziplist-entries",
        "hash-max-listpack-value",
        "hash-max-ziplist-value",
        "set-max-intset-entries",
        "zset-max-listpack-entries",
        "zset-max-ziplist-entries",
        "zset-max-listpack-value",
        "zset-max-ziplist-value",
        "list-max-listpack-size",
        "list-max-ziplist-size",
        "list-compress-depth",
        "hll-sparse-max-bytes",
    ];
    let Some(redis) = Server::redis() else { return };
    let server = Server::staykv();
    let (mut rc, mut sc) = (redis.connect(), server.connect());
    for name in FIXED {
        let theirs = call_str(&mut rc, &["CONFIG", "GET", name]);
        let ours = call_str(&mut sc, &["CONFIG", "GET", name]);
        assert_eq!(ours, theirs, "CONFIG GET {name}");
        let Val::Array(Some(pair)) = &theirs else { panic!("CONFIG GET {name}: {theirs:?}") };
        let value = String::from_utf8(pair[1].bytes()).unwrap();
        for conn in [&mut rc, &mut sc] {
            assert_eq!(call_str(conn, &["CONFIG", "SET", name, &value]), Val::Simple("OK".into()), "{name}");
        }
        let other = (value.parse::<i64>().unwrap() + 1).to_string();
        let Val::Error(refusal) = call_str(&mut sc, &["CONFIG", "SET", name, &other]) else {
            panic!("CONFIG SET {name} {other} was accepted")
        };
        assert!(refusal.contains("fixed at Redis's defaults"), "{refusal}");
    }
    // A pattern lists them as Redis does.
    let ours = call_str(&mut sc, &["CONFIG", "GET", "*-max-*list*-*"]);
    let theirs = call_str(&mut rc, &["CONFIG", "GET", "*-max-*list*-*"]);
    let names = |v: &Val| -> Vec<Vec<u8>> {
        let Val::Array(Some(items)) = v else { panic!("{v:?}") };
        let mut names: Vec<Vec<u8>> = items.iter().step_by(2).map(Val::bytes).collect();
        names.sort();
        names
    };
    assert_eq!(names(&ours), names(&theirs));
}

/// CONFIG SET of several parameters is one change, as in Redis 7.0: a parameter named twice
/// is refused, and when one fails the others named keep (or get back) their values. Same
/// replies and the same CONFIG GET afterwards from both servers.
#[test]
fn a_failed_config_set_leaves_every_parameter_it_named_as_it_was() {
    let Some(redis) = Server::redis() else { return };
    let server = Server::staykv();
    let (mut rc, mut sc) = (redis.connect(), server.connect());
    let steps: [&[&str]; 39] = [
        &["CONFIG", "SET", "timeout", "5", "timeout", "6"],
        &["CONFIG", "SET", "nosuch", "1", "timeout", "5", "timeout", "6"],
        &["CONFIG", "SET", "timeout", "5", "timeout", "6", "nosuch", "1"],
        &["CONFIG", "SET", "databases", "5"],
        &["CONFIG", "GET", "disable-thp"],
        &["CONFIG", "SET", "disable-thp", "no"],
        &["CONFIG", "GET", "timeout"],
        &["CONFIG", "SET", "maxmemory", "100mb", "timeout", "abc"],
        &["CONFIG", "SET", "maxmemory", "100mb", "nosuch", "1"],
        &["CONFIG", "SET", "maxmemory", "100mb", "appendfsync", "bogus"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
        &["CONFIG", "SET", "notify-keyspace-events", "Kn", "timeout", "abc"],
        &["CONFIG", "GET", "notify-keyspace-events"],
        &["CONFIG", "SET", "timeout", "7", "maxmemory-policy", "allkeys-lru"],
        &["CONFIG", "GET", "timeout"],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CONFIG", "SET", "stream-node-max-entries", "10", "stream-node-max-bytes", "1kb"],
        &["CONFIG", "SET", "stream-node-max-entries", "20", "stream-node-max-bytes", "-1"],
        &["CONFIG", "SET", "stream-node-max-entries", "-1", "stream-node-max-bytes", "2kb"],
        &["CONFIG", "SET", "stream-node-max-entries", "x"],
        &["CONFIG", "GET", "stream-node-*"],
        // Memory values as Redis's memtoull reads them: too many digits are the most there
        // is (then out of range where the range is signed), no digits are 0, no sign or
        // blank is taken.
        &["CONFIG", "SET", "maxmemory", "99999999999999999999"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory", " 100"],
        &["CONFIG", "SET", "maxmemory", "+100"],
        &["CONFIG", "SET", "maxmemory", "mb"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "proto-max-bulk-len", "9223372036854775808"],
        &["CONFIG", "SET", "client-query-buffer-limit", "99999999999999999999"],
        &["CONFIG", "SET", "stream-node-max-bytes", "99999999999999999999"],
        // `hz` is kept within 1 to 500.
        &["CONFIG", "SET", "hz", "0"],
        &["CONFIG", "GET", "hz"],
        &["CONFIG", "SET", "hz", "501"],
        &["CONFIG", "GET", "hz"],
        &["CONFIG", "SET", "hz", "-1"],
        &["CONFIG", "SET", "hz", "2147483648"],
        &["CONFIG", "SET", "hz", "x"],
        &["CONFIG", "SET", "hz", "10"],
    ];
    // CONFIG GET lists what a pattern matches in Redis's dict order, which changes from
    // run to run: pairs are compared in name order.
    let pairs_sorted = |v: Val| match v {
        Val::Array(Some(items)) => {
            let mut pairs: Vec<Vec<Val>> = items.chunks(2).map(<[Val]>::to_vec).collect();
            pairs.sort_by_key(|pair| pair[0].bytes());
            Val::Array(Some(pairs.concat()))
        }
        other => other,
    };
    for step in steps {
        let theirs = pairs_sorted(call_str(&mut rc, step));
        let ours = pairs_sorted(call_str(&mut sc, step));
        assert_eq!(ours, theirs, "{}", step.join(" "));
    }
    // INFO reports `hz` as set.
    let hz_lines = |conn: &mut RawConn| -> Vec<String> {
        call_str(conn, &["CONFIG", "SET", "hz", "100"]);
        let info = call_str(conn, &["INFO", "server"]).text();
        let lines = info.lines().filter(|l| l.starts_with("hz:") || l.starts_with("configured_hz:"));
        let lines: Vec<String> = lines.map(str::to_string).collect();
        call_str(conn, &["CONFIG", "SET", "hz", "10"]);
        lines
    };
    assert_eq!(hz_lines(&mut sc), ["hz:100", "configured_hz:100"]);
    assert_eq!(hz_lines(&mut sc), hz_lines(&mut rc));
    for conn in [&mut rc, &mut sc] {
        call_str(
            conn,
            &["CONFIG", "SET", "timeout", "0", "notify-keyspace-events", "", "maxmemory-policy", "noeviction"],
        );
        call_str(conn, &["CONFIG", "SET", "stream-node-max-entries", "100", "stream-node-max-bytes", "4096"]);
    }
}
