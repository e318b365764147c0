//! Reads the fixtures produced by redis-server 7.0 (tests/fixtures/make-fixtures.sh)
//! and compares them with the content the script put in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;

use common::*;
use staykv_rdb::{RdbEntry, RdbItem, RdbReader, RdbValue};

fn by_key(items: &[RdbItem]) -> BTreeMap<(u32, Vec<u8>), RdbEntry> {
    let mut m = BTreeMap::new();
    for e in entries(items) {
        assert!(m.insert((e.db, e.key.clone()), e).is_none(), "duplicate key");
    }
    m
}

fn rep(s: &str, n: usize) -> String {
    s.repeat(n)
}

/// The content of main.rdb, as written by make-fixtures.sh.
fn expected_main() -> Vec<(u32, &'static str, RdbValue, Option<u64>)> {
    let mut v = vec![
        (0, "str:short", s("hello"), None),
        (0, "str:empty", s(""), None),
        (0, "str:long", RdbValue::String(b(&rep("compressible-", 20))), None),
        (0, "str:int8", s("100"), None),
        (0, "str:int16", s("-30000"), None),
        (0, "str:int32", s("2000000000"), None),
        (0, "str:int64", s("9000000000000"), None),
        (0, "str:leadingzero", s("007"), None),
        (0, "str:binary", RdbValue::String(b"a\x00\xff\r\nb".to_vec()), None),
        (0, "list:small", list(&["a", "b", "c", "1", "2", "-3"]), None),
        (0, "list:big", RdbValue::List((0..2000).map(|i| b(&format!("item-{i}"))).collect()), None),
        (0, "list:bigvals", RdbValue::List((0..10).map(|i| b(&rep(&format!("v{i}"), 40))).collect()), None),
        (0, "list:plain", RdbValue::List(vec![b("s1"), b(&rep("p", 150)), b("s2"), b("s3"), b(&rep("q", 200))]), None),
        (0, "hash:small", hash(&[("f1", "v1"), ("f2", "2"), ("f3", "-3")]), None),
        (
            0,
            "hash:big",
            RdbValue::Hash((0..600).map(|i| (b(&format!("field-{i}")), b(&format!("value-{i}")))).collect()),
            None,
        ),
        (0, "hash:bigval", RdbValue::Hash(vec![(b("f"), b(&rep("x", 100)))]), None),
        (0, "set:ints", set(&["1", "2", "3", "-5", "1000000"]), None),
        (0, "set:ints64", set(&["5000000000", "-5000000000", "7"]), None),
        (0, "set:small", set(&["a", "b", "c"]), None),
        (0, "set:bigints", RdbValue::Set((0..600).map(|i| b(&i.to_string())).collect()), None),
        (0, "set:big", RdbValue::Set((0..200).map(|i| b(&format!("member-{i}"))).collect()), None),
        (
            0,
            "zset:small",
            zset(&[("a", 1.0), ("b", 2.5), ("c", f64::NEG_INFINITY), ("d", f64::INFINITY), ("e", 0.1)]),
            None,
        ),
        (
            0,
            "zset:big",
            RdbValue::SortedSet((0..200).map(|i| (b(&format!("m-{i}")), f64::from(i) + 0.5)).collect()),
            None,
        ),
        (0, "zset:bigmember", RdbValue::SortedSet(vec![(b(&rep("y", 100)), 1.0)]), None),
        (0, "ttl:str", s("expiring"), Some(4_102_444_800_123)),
        (0, "ttl:hash", hash(&[("a", "1")]), Some(4_102_444_801_000)),
        (3, "db3:str", s("three"), None),
        (3, "db3:list", list(&["x", "y", "z"]), None),
        (15, "db15:str", s("fifteen"), None),
    ];
    v.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    v
}

#[test]
fn main_fixture_has_every_key_and_value() {
    let bytes = fixture("main.rdb");
    let items = read_all(&bytes).unwrap();
    let mut got = by_key(&items);
    got.remove(&(0, b("stream"))); // checked by main_fixture_stream_aux_and_function
    let expected = expected_main();
    assert_eq!(got.len(), expected.len(), "keys: {:?}", got.keys().collect::<Vec<_>>());
    for (db, key, value, ttl) in expected {
        let e = got.get(&(db, b(key))).unwrap_or_else(|| panic!("missing db {db} key {key}"));
        assert_eq!(norm(&e.value), norm(&value), "value of {key}");
        assert_eq!(e.expire_at_ms, ttl, "ttl of {key}");
        assert_eq!(e.lru_idle_secs, None);
        assert_eq!(e.lfu_freq, None);
    }
    // Order-preserving encodings keep their order.
    let get = |k: &str| got.get(&(0, b(k))).unwrap().value.clone();
    assert_eq!(get("hash:small"), hash(&[("f1", "v1"), ("f2", "2"), ("f3", "-3")]));
    assert_eq!(get("list:big"), RdbValue::List((0..2000).map(|i| b(&format!("item-{i}"))).collect()));
}

#[test]
fn main_fixture_stream_aux_and_function() {
    let items = read_all(&fixture("main.rdb")).unwrap();
    let unsupported: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            RdbItem::Unsupported { db, key, type_id } => Some((*db, key.clone(), *type_id)),
            _ => None,
        })
        .collect();
    assert_eq!(unsupported, vec![]);
    // XADD 1-1 f1 v1, 2-1 f1 v2 f2 v3, 3-1 f3 v4; group g1 from 0; consumer1 read two.
    let stream = items.iter().find_map(|i| match i {
        RdbItem::Entry(e) if e.key == b"stream" => Some(e.value.clone()),
        _ => None,
    });
    let Some(RdbValue::Stream(stream)) = stream else { panic!("no stream in main.rdb") };
    let ids: Vec<(u64, u64)> = stream.entries.iter().map(|e| (e.id.ms, e.id.seq)).collect();
    assert_eq!(ids, [(1, 1), (2, 1), (3, 1)]);
    assert_eq!(stream.entries[1].fields, [b("f1"), b("v2"), b("f2"), b("v3")]);
    assert_eq!(stream.entries[2].fields, [b("f3"), b("v4")]);
    assert_eq!((stream.last_id.ms, stream.entries_added), (3, 3));
    // One node, keyed by the first entry, with its fields as the master fields: 19 bytes of
    // header, master entry and end marker, then 12, 26 and 18 bytes of entries.
    let [node] = &stream.nodes[..] else { panic!("{:?}", stream.nodes) };
    assert_eq!((node.master_id.ms, node.master_id.seq, node.master_fields.clone()), (1, 1, vec![b("f1")]));
    assert_eq!((node.live, node.deleted, node.last_id.ms, node.bytes), (3, 0, 3, 75));
    let group = &stream.groups[0];
    assert_eq!((group.name.clone(), group.last_id.ms, group.entries_read), (b("g1"), 2, Some(2)));
    assert_eq!(group.pending.len(), 2);
    assert_eq!(group.consumers[0].name, b("consumer1"));
    assert_eq!(group.consumers[0].pending.len(), 2);
    let aux: BTreeMap<Vec<u8>, Vec<u8>> = items
        .iter()
        .filter_map(|i| match i {
            RdbItem::Aux { key, value } => Some((key.clone(), value.clone())),
            _ => None,
        })
        .collect();
    assert!(aux.get(&b("redis-ver")).unwrap().starts_with(b"7.0."));
    assert_eq!(aux.get(&b("redis-bits")).unwrap(), &b("64"));
    assert!(aux.contains_key(&b("ctime")));
    let f = String::from_utf8(aux.get(&b("function")).unwrap().clone()).unwrap();
    assert!(f.starts_with("#!lua name=mylib\n"), "{f}");
    assert!(f.contains("redis.register_function"));
}

#[test]
fn lru_and_lfu_fixtures() {
    for (name, lru) in [("lru.rdb", true), ("lfu.rdb", false)] {
        let items = read_all(&fixture(name)).unwrap();
        let es = entries(&items);
        assert_eq!(es.len(), 3, "{name}");
        for e in &es {
            if lru {
                assert!(e.lru_idle_secs.is_some(), "{name} {:?}", e.key);
                assert_eq!(e.lfu_freq, None);
            } else {
                assert!(e.lfu_freq.is_some(), "{name} {:?}", e.key);
                assert_eq!(e.lru_idle_secs, None);
            }
        }
        let m = by_key(&items);
        assert_eq!(m[&(0, b("a"))].value, s("1"));
        assert_eq!(m[&(0, b("b"))].value, list(&["x", "y"]));
        assert_eq!(m[&(0, b("c"))].value, set(&["m"]));
        if !lru {
            // "a" was read 20 times: its LFU counter grew past the initial 5.
            assert!(m[&(0, b("a"))].lfu_freq.unwrap() > 5);
        }
    }
}

#[test]
fn nochecksum_fixture_is_accepted() {
    let bytes = fixture("nochecksum.rdb");
    assert_eq!(&bytes[bytes.len() - 8..], &[0u8; 8], "fixture must have a zero checksum");
    let m = by_key(&read_all(&bytes).unwrap());
    assert_eq!(m[&(0, b("long"))].value, RdbValue::String(b(&rep("compressible-", 20))));
    assert_eq!(m[&(0, b("h"))].value, hash(&[("f", "v")]));
    assert_eq!(m[&(0, b("ttl"))].expire_at_ms, Some(4_102_444_800_000));
}

#[test]
fn keys_left_out_are_stepped_over_and_still_checksummed() {
    for name in ["main.rdb", "lru.rdb", "lfu.rdb", "nochecksum.rdb"] {
        let skipped = assert_filtered_read_agrees(&fixture(name), odd_keys);
        assert!(skipped > 0, "{name}: the filter left out no key");
    }
    // A damaged byte in a value no one decodes is still caught by the checksum.
    let mut bytes = fixture("main.rdb");
    let at = bytes.windows(13).position(|w| w == b"compressible-").expect("a long string");
    let even_keys = |db, key: &[u8]| !odd_keys(db, key);
    assert!(!even_keys(0, b"str:long"), "the filter must leave str:long out");
    bytes[at + 5] ^= 0x20;
    let mut r = RdbReader::new(&bytes[..]).unwrap();
    let err = loop {
        match r.next_item_where(even_keys) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("damage inside a skipped value went unnoticed"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, staykv_rdb::RdbError::ChecksumMismatch { .. }), "{err}");
}

#[test]
fn reader_api_details() {
    let bytes = fixture("lfu.rdb");
    let mut r = RdbReader::new(&bytes[..]).unwrap();
    assert_eq!(r.version(), 10);
    assert_eq!(r.bytes_read(), 9);
    let mut n = 0;
    while let Some(_item) = r.next_item().unwrap() {
        n += 1;
        assert!(r.bytes_read() <= bytes.len() as u64);
    }
    assert!(n >= 3);
    assert!(r.is_finished());
    assert_eq!(r.bytes_read(), bytes.len() as u64);
    // After the end, None again.
    assert!(r.next_item().unwrap().is_none());
    // Iterator interface yields the same items.
    let via_iter: Vec<RdbItem> = RdbReader::new(&bytes[..]).unwrap().map(Result::unwrap).collect();
    assert_eq!(via_iter, read_all(&bytes).unwrap());
    // The reader never reads past the trailer: trailing bytes stay in the inner reader.
    let mut with_tail = bytes.clone();
    with_tail.extend_from_slice(b"TAIL");
    let mut r = RdbReader::new(&with_tail[..]).unwrap();
    while r.next_item().unwrap().is_some() {}
    assert_eq!(r.into_inner().unwrap(), b"TAIL");
}

/// The reader takes what fits from its input's buffer and hashes it when the buffer is
/// handed back; whatever the buffer's size, every field that straddles its end, every
/// skipped value and the trailer must read the same as from one slice.
#[test]
fn buffer_sizes_change_nothing() {
    use std::io::{BufReader, Read};
    for name in ["main.rdb", "lru.rdb", "lfu.rdb", "nochecksum.rdb"] {
        let bytes = fixture(name);
        let all = read_all(&bytes).unwrap();
        let mut with_tail = bytes.clone();
        with_tail.extend_from_slice(b"TAIL");
        for capacity in [1, 2, 3, 7, 64, 4096] {
            let mut r = RdbReader::new(BufReader::with_capacity(capacity, &with_tail[..])).unwrap();
            let mut items = Vec::new();
            while let Some(item) = r.next_item().unwrap() {
                items.push(item);
            }
            assert_eq!(items, all, "{name}, {capacity}-byte buffer");
            assert_eq!(r.bytes_read(), bytes.len() as u64, "{name}, {capacity}-byte buffer");
            let mut rest = Vec::new();
            r.into_inner().unwrap().read_to_end(&mut rest).unwrap();
            assert_eq!(rest, b"TAIL", "{name}, {capacity}-byte buffer: the reader must stop at the trailer");

            let mut r = RdbReader::new(BufReader::with_capacity(capacity, &bytes[..])).unwrap();
            let mut kept = 0;
            while r.next_item_where(odd_keys).unwrap().is_some() {
                kept += 1;
            }
            assert!(r.is_finished() && kept < all.len(), "{name}, {capacity}-byte buffer");
        }
    }
    // A flipped byte, in a value read or in one stepped over, fails the checksum whatever
    // the buffer's size.
    let mut bytes = fixture("main.rdb");
    let at = bytes.windows(13).position(|w| w == b"compressible-").expect("a long string");
    bytes[at + 5] ^= 0x20;
    for capacity in [1, 3, 64, 4096] {
        for keep in [odd_keys, |_: u32, _: &[u8]| true] {
            let mut r = RdbReader::new(BufReader::with_capacity(capacity, &bytes[..])).unwrap();
            let err = loop {
                match r.next_item_where(keep) {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("a flipped byte went unnoticed with a {capacity}-byte buffer"),
                    Err(e) => break e,
                }
            };
            assert!(
                matches!(err, staykv_rdb::RdbError::ChecksumMismatch { .. } | staykv_rdb::RdbError::Corrupt { .. }),
                "{err}"
            );
        }
    }
}

/// The object type byte stored in front of `key` (keys here are < 64 bytes, stored raw).
fn type_byte_of(file: &[u8], key: &str) -> u8 {
    let mut needle = vec![key.len() as u8];
    needle.extend_from_slice(key.as_bytes());
    let pos = file
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap_or_else(|| panic!("key {key} not found"));
    file[pos - 1]
}

#[test]
fn main_fixture_covers_the_redis_7_encodings() {
    let f = fixture("main.rdb");
    for (key, t) in [
        ("str:short", 0),
        ("list:small", 18),
        ("list:plain", 18),
        ("hash:small", 16),
        ("hash:big", 4),
        ("hash:bigval", 4),
        ("set:ints", 11),
        ("set:ints64", 11),
        ("set:small", 2),
        ("set:bigints", 2),
        ("zset:small", 17),
        ("zset:big", 5),
        ("zset:bigmember", 5),
        ("stream", 19),
    ] {
        assert_eq!(type_byte_of(&f, key), t, "type of {key}");
    }
    // str:long is LZF-compressed (encoding byte 0xC3 right after the key).
    let key = b"\x08str:long";
    let pos = f.windows(key.len()).position(|w| w == key).unwrap();
    assert_eq!(f[pos + key.len()], 0xC3);
    // str:int8 is integer-encoded.
    let key = b"\x08str:int8";
    let pos = f.windows(key.len()).position(|w| w == key).unwrap();
    assert_eq!(f[pos + key.len()], 0xC0);
}
