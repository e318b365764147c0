//! Encodings Redis 7.0 no longer writes (zipmap, ziplist, quicklist v1, intset, plain
//! lists/sets/hashes, text-score zsets, second-precision expiry) plus module data,
//! the 7.0-rc function format and older stream layouts. The bytes are built here by
//! hand from the format description; the loadable file is also fed to redis-server
//! 7.0 to check that the hand-built bytes mean what the test expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use staykv_rdb::{crc64, RdbError, RdbItem, RdbReader, RdbValue};

// ------------------------------------------------------------ tiny hand encoders

fn len(n: u64) -> Vec<u8> {
    if n < 64 {
        vec![n as u8]
    } else if n < 16384 {
        vec![0x40 | (n >> 8) as u8, n as u8]
    } else if n <= u64::from(u32::MAX) {
        let mut v = vec![0x80];
        v.extend_from_slice(&(n as u32).to_be_bytes());
        v
    } else {
        let mut v = vec![0x81];
        v.extend_from_slice(&n.to_be_bytes());
        v
    }
}

fn rstr(s: &[u8]) -> Vec<u8> {
    let mut v = len(s.len() as u64);
    v.extend_from_slice(s);
    v
}

enum Z<'a> {
    S(&'a [u8]),
    I(i64),
}

fn zl_entry(prev: usize, e: &Z<'_>) -> Vec<u8> {
    let mut v = if prev < 254 {
        vec![prev as u8]
    } else {
        let mut p = vec![0xFE];
        p.extend_from_slice(&(prev as u32).to_le_bytes());
        p
    };
    match e {
        Z::S(s) => {
            let n = s.len();
            if n < 64 {
                v.push(n as u8);
            } else if n < 16384 {
                v.push(0x40 | (n >> 8) as u8);
                v.push(n as u8);
            } else {
                v.push(0x80);
                v.extend_from_slice(&(n as u32).to_be_bytes());
            }
            v.extend_from_slice(s);
        }
        Z::I(i) => {
            let i = *i;
            if (0..=12).contains(&i) {
                v.push(0xF1 + i as u8);
            } else if let Ok(x) = i8::try_from(i) {
                v.push(0xFE);
                v.push(x as u8);
            } else if let Ok(x) = i16::try_from(i) {
                v.push(0xC0);
                v.extend_from_slice(&x.to_le_bytes());
            } else if (-(1 << 23)..(1 << 23)).contains(&i) {
                v.push(0xF0);
                v.extend_from_slice(&(i as i32).to_le_bytes()[..3]);
            } else if let Ok(x) = i32::try_from(i) {
                v.push(0xD0);
                v.extend_from_slice(&x.to_le_bytes());
            } else {
                v.push(0xE0);
                v.extend_from_slice(&i.to_le_bytes());
            }
        }
    }
    v
}

fn ziplist(items: &[Z<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0;
    let mut tail = 10;
    for it in items {
        let e = zl_entry(prev, it);
        tail = 10 + body.len();
        prev = e.len();
        body.extend_from_slice(&e);
    }
    let total = 10 + body.len() + 1;
    let mut v = Vec::new();
    v.extend_from_slice(&(total as u32).to_le_bytes());
    v.extend_from_slice(&(tail as u32).to_le_bytes());
    v.extend_from_slice(&(items.len() as u16).to_le_bytes());
    v.extend_from_slice(&body);
    v.push(0xFF);
    v
}

fn zipmap(pairs: &[(&[u8], &[u8], u8)]) -> Vec<u8> {
    fn zlen(v: &mut Vec<u8>, n: usize) {
        if n < 254 {
            v.push(n as u8);
        } else {
            v.push(254);
            v.extend_from_slice(&(n as u32).to_le_bytes());
        }
    }
    let mut v = vec![pairs.len() as u8];
    for (k, val, free) in pairs {
        zlen(&mut v, k.len());
        v.extend_from_slice(k);
        zlen(&mut v, val.len());
        v.push(*free);
        v.extend_from_slice(val);
        v.extend(std::iter::repeat_n(0u8, usize::from(*free)));
    }
    v.push(0xFF);
    v
}

fn intset(width: u32, vals: &[i64]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&width.to_le_bytes());
    v.extend_from_slice(&(vals.len() as u32).to_le_bytes());
    for &x in vals {
        match width {
            2 => v.extend_from_slice(&(x as i16).to_le_bytes()),
            4 => v.extend_from_slice(&(x as i32).to_le_bytes()),
            _ => v.extend_from_slice(&x.to_le_bytes()),
        }
    }
    v
}

fn finish(mut body: Vec<u8>) -> Vec<u8> {
    body.push(0xFF);
    let crc = crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

fn key(t: u8, k: &str) -> Vec<u8> {
    let mut v = vec![t];
    v.extend(rstr(k.as_bytes()));
    v
}

// ------------------------------------------------------------ the loadable file

fn big(c: u8, n: usize) -> Vec<u8> {
    vec![c; n]
}

/// A version-7 file with every pre-7.0 encoding; returns the bytes and the expected
/// (key, value, expire) triples.
type Expected = Vec<(&'static str, RdbValue, Option<u64>)>;

fn old_file() -> (Vec<u8>, Expected) {
    let mut f = b"REDIS0007".to_vec();
    f.push(250);
    f.extend(rstr(b"redis-ver"));
    f.extend(rstr(b"3.2.0"));
    f.push(254);
    f.extend(len(0));
    let mut exp = Vec::new();

    // type 9: zipmap hash, with free space and a long (254+) value
    let long300 = big(b'z', 300);
    f.extend(key(9, "zipmap"));
    f.extend(rstr(&zipmap(&[(b"f1", b"v1", 0), (b"f2", b"value2", 3), (b"f3", &long300, 0)])));
    exp.push((
        "zipmap",
        RdbValue::Hash(vec![(b("f1"), b("v1")), (b("f2"), b("value2")), (b("f3"), long300.clone())]),
        None,
    ));

    // type 10: ziplist list with every integer encoding and string length form
    let s300 = big(b's', 300);
    let s20k = big(b'k', 20_000);
    let zl_items = [
        Z::S(b"hello"),
        Z::I(0),
        Z::I(12),
        Z::I(13),
        Z::I(-100),
        Z::I(-30000),
        Z::I(8_000_000),
        Z::I(-2_000_000_000),
        Z::I(1 << 40),
        Z::S(&s300),
        Z::S(&s20k),
        Z::S(b"after-big"),
    ];
    f.extend(key(10, "ziplist-list"));
    f.extend(rstr(&ziplist(&zl_items)));
    exp.push((
        "ziplist-list",
        RdbValue::List(vec![
            b("hello"),
            b("0"),
            b("12"),
            b("13"),
            b("-100"),
            b("-30000"),
            b("8000000"),
            b("-2000000000"),
            b(&(1i64 << 40).to_string()),
            s300.clone(),
            s20k.clone(),
            b("after-big"),
        ]),
        None,
    ));

    // type 11: intsets of the three widths
    f.extend(key(11, "intset16"));
    f.extend(rstr(&intset(2, &[-3, 1, 2, 300])));
    exp.push(("intset16", set(&["-3", "1", "2", "300"]), None));
    f.extend(key(11, "intset32"));
    f.extend(rstr(&intset(4, &[-70000, 5, 70000])));
    exp.push(("intset32", set(&["-70000", "5", "70000"]), None));
    f.extend(key(11, "intset64"));
    f.extend(rstr(&intset(8, &[i64::MIN, 0, i64::MAX])));
    exp.push(("intset64", RdbValue::Set(vec![b(&i64::MIN.to_string()), b("0"), b(&i64::MAX.to_string())]), None));

    // type 12: ziplist zset (sorted by score), scores as strings and integers
    f.extend(key(12, "ziplist-zset"));
    f.extend(rstr(&ziplist(&[Z::S(b"low"), Z::S(b"-1.5"), Z::S(b"mid"), Z::I(3), Z::S(b"high"), Z::S(b"1e10")])));
    exp.push(("ziplist-zset", zset(&[("low", -1.5), ("mid", 3.0), ("high", 1e10)]), None));

    // type 13: ziplist hash
    f.extend(key(13, "ziplist-hash"));
    f.extend(rstr(&ziplist(&[Z::S(b"a"), Z::I(1), Z::S(b"b"), Z::S(b"two")])));
    exp.push(("ziplist-hash", hash(&[("a", "1"), ("b", "two")]), None));

    // type 14: quicklist v1 (ziplist nodes), second-precision expiry
    f.push(253);
    f.extend_from_slice(&2_000_000_000i32.to_le_bytes());
    f.extend(key(14, "quicklist1"));
    f.extend(len(2));
    f.extend(rstr(&ziplist(&[Z::S(b"n1a"), Z::I(7)])));
    f.extend(rstr(&ziplist(&[Z::S(b"n2a"), Z::S(b"n2b")])));
    exp.push(("quicklist1", list(&["n1a", "7", "n2a", "n2b"]), Some(2_000_000_000_000)));

    // types 1, 2, 4: plain list, set, hash; millisecond expiry
    f.push(252);
    f.extend_from_slice(&4_102_444_800_555u64.to_le_bytes());
    f.extend(key(1, "plain-list"));
    f.extend(len(3));
    f.extend(rstr(b"x"));
    f.extend([0xC0, 0xF6]); // int8 -10
    f.extend(rstr(b"z"));
    exp.push(("plain-list", list(&["x", "-10", "z"]), Some(4_102_444_800_555)));
    f.extend(key(2, "plain-set"));
    f.extend(len(2));
    f.extend(rstr(b"m1"));
    f.extend([0xC1, 0x39, 0x30]); // int16 12345
    exp.push(("plain-set", set(&["m1", "12345"]), None));
    f.extend(key(4, "plain-hash"));
    f.extend(len(1));
    f.extend(rstr(b"field"));
    f.extend([0xC2, 0x00, 0x94, 0x35, 0x77]); // int32 2000000000
    exp.push(("plain-hash", hash(&[("field", "2000000000")]), None));

    // type 3: zset with text scores (254 = +inf, 255 = -inf)
    f.extend(key(3, "zset-text"));
    f.extend(len(3));
    f.extend(rstr(b"a"));
    f.extend(rstr(b"1.25"));
    f.extend(rstr(b"b"));
    f.push(254);
    f.extend(rstr(b"c"));
    f.push(255);
    exp.push(("zset-text", zset(&[("a", 1.25), ("b", f64::INFINITY), ("c", f64::NEG_INFINITY)]), None));

    // type 5: zset with binary scores
    f.extend(key(5, "zset-bin"));
    f.extend(len(1));
    f.extend(rstr(b"pi"));
    f.extend_from_slice(&std::f64::consts::PI.to_le_bytes());
    exp.push(("zset-bin", zset(&[("pi", std::f64::consts::PI)]), None));

    // An empty list is skipped by the reader (Redis does the same).
    f.extend(key(1, "empty-list"));
    f.extend(len(0));

    (finish(f), exp)
}

#[test]
fn old_encodings_decode() {
    let (file, exp) = old_file();
    let items = read_all(&file).unwrap();
    let es = entries(&items);
    assert_eq!(es.len(), exp.len());
    for ((k, v, t), e) in exp.iter().zip(&es) {
        assert_eq!(e.key, b(k));
        assert_eq!(&e.value, v, "{k}");
        assert_eq!(e.expire_at_ms, *t, "{k}");
        assert_eq!(e.db, 0);
    }
    assert!(matches!(&items[0], RdbItem::Aux { key, .. } if key == b"redis-ver"));
}

#[test]
fn old_encodings_are_stepped_over_when_left_out() {
    let (file, _) = old_file();
    assert!(assert_filtered_read_agrees(&file, odd_keys) > 0);
    assert!(assert_filtered_read_agrees(&file, |_, _| false) > 0);
}

#[test]
fn old_encodings_load_into_redis_the_same() {
    if !have_redis() {
        return;
    }
    let (file, exp) = old_file();
    let dir = TempDir::new("old");
    std::fs::write(dir.path().join("dump.rdb"), &file).unwrap();
    let mut r = Redis::start_in(dir.path(), "dump.rdb", &[]);
    assert_eq!(r.ok(&["DBSIZE"]).int(), exp.len() as i64);
    for (k, v, t) in &exp {
        let got = r.fetch(k.as_bytes()).unwrap_or_else(|| panic!("redis lacks {k}"));
        assert_eq!(norm(&got), norm(v), "{k}");
        assert_eq!(r.pexpiretime(k.as_bytes()), *t, "{k}");
    }
}

#[test]
fn old_versions_without_checksum() {
    // Version 4 has no CRC trailer: the file ends at the EOF opcode.
    let mut f = b"REDIS0004".to_vec();
    f.push(254);
    f.extend(len(2));
    f.extend(key(0, "k"));
    f.extend(rstr(b"v"));
    f.push(255);
    let items = read_all(&f).unwrap();
    let es = entries(&items);
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].db, 2);
    assert_eq!(es[0].value, s("v"));
}

// ------------------------------------------------------------ modules, functions, streams

/// A listpack of small integers (< 128) and short strings (< 64 bytes).
fn tiny_listpack(elems: &[Result<u8, &[u8]>]) -> Vec<u8> {
    let mut body = Vec::new();
    for e in elems {
        match e {
            Ok(n) => body.extend([*n, 1]),
            Err(s) => {
                body.push(0x80 | s.len() as u8);
                body.extend_from_slice(s);
                body.push(1 + s.len() as u8);
            }
        }
    }
    let mut lp = ((body.len() + 7) as u32).to_le_bytes().to_vec();
    lp.extend((elems.len() as u16).to_le_bytes());
    lp.extend(body);
    lp.push(0xff);
    lp
}

/// Three entries 0-0, 0-1, 0-2, each `f v<i>`, in one node whose master entry has field `f`.
fn stream_body(type_id: u8) -> Vec<u8> {
    let mut v = len(1);
    v.extend(rstr(&[0u8; 16])); // node key: the master ID 0-0
    let mut elems: Vec<Result<u8, &[u8]>> = vec![Ok(3), Ok(0), Ok(1), Err(b"f"), Ok(0)];
    for (i, value) in [&b"v0"[..], b"v1", b"v2"].into_iter().enumerate() {
        elems.extend([Ok(2), Ok(0), Ok(i as u8), Err(value), Ok(4)]);
    }
    v.extend(rstr(&tiny_listpack(&elems)));
    v.extend(len(3)); // length
    v.extend(len(1_700_000_000_000)); // last id ms
    v.extend(len(0)); // last id seq
    if type_id >= 19 {
        v.extend(len(1)); // first id
        v.extend(len(0));
        v.extend(len(0)); // max deleted id
        v.extend(len(0));
        v.extend(len(3)); // entries added
    }
    v.extend(len(1)); // groups
    v.extend(rstr(b"group"));
    v.extend(len(1)); // group last id
    v.extend(len(0));
    if type_id >= 19 {
        v.extend(len(2)); // entries read
    }
    v.extend(len(2)); // PEL
    for i in 0..2u8 {
        v.extend_from_slice(&[i; 16]);
        v.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
        v.extend(len(1));
    }
    v.extend(len(1)); // consumers
    v.extend(rstr(b"consumer"));
    v.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
    if type_id >= 21 {
        v.extend_from_slice(&1_700_000_000_001u64.to_le_bytes());
    }
    v.extend(len(2));
    for i in 0..2u8 {
        v.extend_from_slice(&[i; 16]);
    }
    v
}

fn module_value() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(len(1)); // signed int
    v.extend(len(12345));
    v.extend(len(2)); // unsigned int
    v.extend([0x81, 1, 2, 3, 4, 5, 6, 7, 8]);
    v.extend(len(3)); // float
    v.extend_from_slice(&1.5f32.to_le_bytes());
    v.extend(len(4)); // double
    v.extend_from_slice(&2.5f64.to_le_bytes());
    v.extend(len(5)); // string
    v.extend(rstr(b"module string"));
    v.extend(len(0)); // EOF
    v
}

/// The old zset type's NaN score (length byte 253) is read as NaN, and the file refused, as
/// Redis refuses it: a sorted set cannot hold the member.
#[test]
fn a_nan_text_score_refuses_the_file() {
    let mut f = b"REDIS0010".to_vec();
    f.push(254);
    f.extend(len(0));
    f.extend(key(3, "nan-zset"));
    f.extend(len(1));
    f.extend(rstr(b"m"));
    f.push(253);
    let error = read_all(&finish(f)).unwrap_err().to_string();
    assert!(error.contains("zset score is NaN"), "{error}");
}

/// A NaN score in a packed sorted set (ziplist, listpack) refuses the file too.
#[test]
fn a_nan_packed_score_refuses_the_file() {
    for (type_id, blob) in [
        (12, ziplist(&[Z::S(b"a"), Z::S(b"nan"), Z::S(b"b"), Z::I(2)])),
        (17, tiny_listpack(&[Err(b"a"), Err(b"nan"), Err(b"b"), Ok(2)])),
    ] {
        let mut f = b"REDIS0010".to_vec();
        f.extend(key(type_id, "nan-zset"));
        f.extend(rstr(&blob));
        let error = read_all(&finish(f)).unwrap_err().to_string();
        assert!(error.contains("zset score is NaN"), "type {type_id}: {error}");
    }
}

#[test]
fn modules_and_functions_are_skipped_and_streams_read() {
    let mut f = b"REDIS0010".to_vec();
    // MODULE_AUX: module id, when-opcode (2), when, value.
    f.push(247);
    f.extend([0x81, 0, 0, 0, 0, 0, 0, 0x10, 0x01]);
    f.extend(len(2));
    f.extend(len(2));
    f.extend(module_value());
    // FUNCTION (7.0-rc format): name, engine, has-description, description, code.
    f.push(246);
    f.extend(rstr(b"oldlib"));
    f.extend(rstr(b"LUA"));
    f.extend(len(1));
    f.extend(rstr(b"a description"));
    f.extend(rstr(b"redis.register_function('g', function() return 2 end)"));
    // FUNCTION2: the library source.
    f.push(245);
    f.extend(rstr(b"#!lua name=newlib\nredis.register_function('h', function() return 3 end)"));
    f.push(254);
    f.extend(len(1));
    // A module type 7 value.
    f.extend(key(7, "modkey"));
    f.extend([0x81, 0, 0, 0, 0, 0, 0, 0x10, 0x01]);
    f.extend(module_value());
    f.extend(key(0, "after-module"));
    f.extend(rstr(b"1"));
    for t in [15u8, 19, 21] {
        f.extend(key(t, &format!("stream{t}")));
        f.extend(stream_body(t));
        f.extend(key(0, &format!("after-stream{t}")));
        f.extend(rstr(b"ok"));
    }
    // LFU / LRU info before keys.
    f.push(249);
    f.push(42);
    f.extend(key(0, "hot"));
    f.extend(rstr(b"x"));
    f.push(248);
    f.extend(len(3600));
    f.extend(key(0, "idle"));
    f.extend(rstr(b"y"));
    let file = finish(f);

    let items = read_all(&file).unwrap();
    let mut it = items.iter();
    assert_eq!(
        it.next(),
        Some(&RdbItem::Aux {
            key: b("function"),
            value: b("#!LUA name=oldlib\nredis.register_function('g', function() return 2 end)")
        })
    );
    assert!(
        matches!(it.next(), Some(RdbItem::Aux { key, value }) if key == b"function" && value.starts_with(b"#!lua name=newlib\n"))
    );
    assert_eq!(it.next(), Some(&RdbItem::Unsupported { db: 1, key: b("modkey"), type_id: 7 }));
    assert!(matches!(it.next(), Some(RdbItem::Entry(e)) if e.key == b"after-module" && e.db == 1));
    for t in [15u8, 19, 21] {
        let Some(RdbItem::Entry(e)) = it.next() else { panic!("stream{t}") };
        let RdbValue::Stream(stream) = &e.value else { panic!("stream{t}: {:?}", e.value) };
        assert_eq!(e.key, b(&format!("stream{t}")));
        let ids: Vec<u64> = stream.entries.iter().map(|e| e.id.seq).collect();
        assert_eq!(ids, [0, 1, 2]);
        assert_eq!(stream.entries[2].fields, [b("f"), b("v2")]);
        assert_eq!(stream.entries_added, 3);
        let group = &stream.groups[0];
        assert_eq!(group.entries_read, if t == 15 { None } else { Some(2) });
        assert_eq!((group.pending.len(), group.consumers[0].pending.len()), (2, 2));
        assert!(
            matches!(it.next(), Some(RdbItem::Entry(e)) if e.key == format!("after-stream{t}").as_bytes() && e.value == s("ok"))
        );
    }
    match it.next() {
        Some(RdbItem::Entry(e)) => {
            assert_eq!(e.key, b("hot"));
            assert_eq!(e.lfu_freq, Some(42));
            assert_eq!(e.lru_idle_secs, None);
        }
        other => panic!("{other:?}"),
    }
    match it.next() {
        Some(RdbItem::Entry(e)) => {
            assert_eq!(e.key, b("idle"));
            assert_eq!(e.lru_idle_secs, Some(3600));
            assert_eq!(e.lfu_freq, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(it.next(), None);
}

#[test]
fn module_type_6_is_an_error() {
    let mut f = b"REDIS0008".to_vec();
    f.extend(key(0, "first"));
    f.extend(rstr(b"1"));
    f.extend(key(6, "oldmodule"));
    f.extend(len(99));
    f.extend(rstr(b"whatever"));
    let file = finish(f);
    let mut r = RdbReader::new(&file[..]).unwrap();
    assert!(matches!(r.next_item(), Ok(Some(RdbItem::Entry(_)))));
    let err = r.next_item().unwrap_err();
    assert!(matches!(err, RdbError::Unsupported { offset: 18, .. }), "{err}");
    assert!(err.to_string().contains("module"), "{err}");
    // The reader refuses to go on after an error.
    assert!(r.next_item().is_err());
}

#[test]
fn damaged_old_encodings_never_panic() {
    let (file, _) = old_file();
    let body = &file[..file.len() - 8];
    // Every truncation fails.
    for cut in (0..file.len()).step_by(7) {
        assert!(read_all_checked(&file[..cut]).is_err(), "cut {cut}");
    }
    // Mutations behind a recomputed checksum reach the blob decoders.
    let mut rng = Rng(3);
    for _ in 0..1000 {
        let mut m = body.to_vec();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(m.len() as u64) as usize;
            m[i] = rng.next() as u8;
        }
        let crc = crc64(0, &m);
        m.extend_from_slice(&crc.to_le_bytes());
        let _ = read_all_checked(&m);
    }
}

fn read_all_checked(bytes: &[u8]) -> Result<usize, RdbError> {
    let mut r = RdbReader::new(bytes)?;
    let mut n = 0;
    while r.next_item()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// A hash or sorted set in an old packed encoding (zipmap, ziplist) that names a field or
/// member twice refuses the file, as Redis refuses it when it converts them at load; the same
/// value with two names loads in both.
#[test]
fn old_packed_encodings_with_duplicates_refuse_the_file() {
    let file = |type_id: u8, blob: Vec<u8>| {
        let mut f = b"REDIS0009".to_vec();
        f.extend(key(type_id, "k"));
        f.extend(rstr(&blob));
        finish(f)
    };
    let hash_zipmap = |second: &'static [u8]| file(9, zipmap(&[(b"f", b"1", 0), (second, b"2", 0)]));
    let hash_ziplist = |second: &'static [u8]| file(13, ziplist(&[Z::S(b"f"), Z::I(1), Z::S(second), Z::I(2)]));
    let zset_ziplist = |second: &'static [u8]| file(12, ziplist(&[Z::S(b"m"), Z::I(1), Z::S(second), Z::I(2)]));
    for (kind, distinct, duplicated) in [
        ("hash zipmap", hash_zipmap(b"g"), hash_zipmap(b"f")),
        ("hash ziplist", hash_ziplist(b"g"), hash_ziplist(b"f")),
        ("zset ziplist", zset_ziplist(b"n"), zset_ziplist(b"m")),
    ] {
        assert_eq!(entries(&read_all(&distinct).unwrap()).len(), 1, "{kind}");
        let error = read_all(&duplicated).unwrap_err().to_string();
        assert!(error.contains(&format!("{kind} with duplicate elements")), "{kind}: {error}");
        if have_redis() {
            let dir = TempDir::new("distinct");
            std::fs::write(dir.path().join("dump.rdb"), &distinct).unwrap();
            assert_eq!(Redis::start_in(dir.path(), "dump.rdb", &[]).ok(&["DBSIZE"]).int(), 1, "{kind}");
            let log = redis_refusal(&duplicated);
            assert!(log.contains("Internal error in RDB reading"), "{kind}: redis-server: {log}");
        }
    }
}

/// What redis-server logs when it refuses to start on `file`. Panics if it is still running
/// after 10 s (it loaded the file).
fn redis_refusal(file: &[u8]) -> String {
    let dir = TempDir::new("refused");
    std::fs::write(dir.path().join("dump.rdb"), file).unwrap();
    let log = dir.path().join("redis.log");
    let mut child = std::process::Command::new(REDIS_SERVER)
        .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
        .arg(dir.path().join("redis.sock"))
        .arg("--dir")
        .arg(dir.path())
        .arg("--logfile")
        .arg(&log)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redis-server loaded the file");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::read_to_string(log).unwrap_or_default()
}
