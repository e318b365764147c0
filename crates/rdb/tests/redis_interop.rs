//! Interoperability with a real redis-server 7.0: DUMP payloads both ways, and files
//! written by RdbWriter checked by redis-check-rdb and loaded by redis-server.
//! Each test prints SKIPPED and returns when /usr/bin/redis-server is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;
use staykv_rdb::{decode_dump_payload, encode_dump_payload, Layout, RdbError, RdbItem, RdbReader, RdbValue, RdbWriter};

#[test]
fn redis_dump_payloads_decode() {
    if !have_redis() {
        return;
    }
    let mut r = Redis::start(&[]);
    let values = sample_values();
    for (k, v) in &values {
        r.put(k.as_bytes(), v);
    }
    // A list with PLAIN quicklist nodes.
    r.ok(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100"]);
    let plain = list(&["small", &"P".repeat(150), "s2", &"Q".repeat(3000)]);
    r.put(b"list:plain", &plain);
    r.ok(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1073741824"]);
    for (k, v) in values.iter().map(|(k, v)| (k.as_str(), v)).chain([("list:plain", &plain)]) {
        let payload = r.ok(&["DUMP", k]).bulk();
        let decoded = decode_dump_payload(&payload).unwrap_or_else(|e| panic!("{k}: {e}"));
        assert_eq!(norm(&decoded), norm(v), "{k}");
        // Order-keeping types keep their order.
        if matches!(v, RdbValue::List(_) | RdbValue::String(_)) {
            assert_eq!(&decoded, v, "{k}");
        }
    }
    // A stream payload with a consumer group decodes to what was built.
    r.ok(&["XADD", "s", "1-1", "f", "v"]);
    r.ok(&["XADD", "s", "2-0", "other", "field"]);
    r.ok(&["XGROUP", "CREATE", "s", "g", "0"]);
    r.ok(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">"]);
    let payload = r.ok(&["DUMP", "s"]).bulk();
    let Ok(RdbValue::Stream(stream)) = decode_dump_payload(&payload) else { panic!("stream payload") };
    assert_eq!(stream.entries.len(), 2);
    assert_eq!(stream.entries[1].fields, vec![b("other"), b("field")]);
    assert_eq!(stream.entries_added, 2);
    let group = &stream.groups[0];
    assert_eq!((group.name.as_slice(), group.entries_read), (&b"g"[..], Some(1)));
    assert_eq!(group.consumers[0].pending, vec![stream.entries[0].id]);
    // A flipped byte breaks the checksum.
    let mut bad = r.ok(&["DUMP", "list:small"]).bulk();
    bad[3] ^= 1;
    assert!(matches!(decode_dump_payload(&bad), Err(RdbError::BadDumpPayload)));
}

#[test]
fn encoded_dump_payloads_restore_into_redis() {
    if !have_redis() {
        return;
    }
    // Deep sanitization makes Redis validate every listpack/intset entry on RESTORE.
    let mut r = Redis::start(&["--sanitize-dump-payload", "yes"]);
    for (k, v) in sample_values() {
        // The big layout first, each over the key the other wrote: both must restore.
        for layout in [Layout::Big, Layout::BySize] {
            let payload = encode_dump_payload(&v, layout);
            assert_eq!(decode_dump_payload(&payload).map(|d| norm(&d)).unwrap(), norm(&v), "{k} {layout:?}");
            let restore = [b"RESTORE".to_vec(), k.clone().into_bytes(), b"0".to_vec(), payload, b"REPLACE".to_vec()];
            assert_eq!(r.cmd(&restore), Reply::Simple("OK".into()), "RESTORE {k} {layout:?}");
        }
        let got = r.fetch(k.as_bytes()).unwrap();
        assert_eq!(norm(&got), norm(&v), "{k}");
        if let RdbValue::List(_) = v {
            assert_eq!(got, v, "{k}");
        }
        // Sorted sets come back in Redis's (score, member) order.
        if let RdbValue::SortedSet(z) = &v {
            let mut sorted = z.clone();
            sorted.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
            let RdbValue::SortedSet(g) = got else { panic!() };
            assert_eq!(
                g.iter().map(|x| &x.0).collect::<Vec<_>>(),
                sorted.iter().map(|x| &x.0).collect::<Vec<_>>(),
                "order of {k}"
            );
        }
        // And Redis's own DUMP of it decodes to the same value.
        let again = r.ok(&["DUMP", k.as_str()]).bulk();
        assert_eq!(norm(&decode_dump_payload(&again).unwrap()), norm(&v), "{k}");
    }
    // Redis rejects our payload if we damage it, with the error text we expose.
    let mut bad = encode_dump_payload(&s("x"), Layout::BySize);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    let reply = r.cmd(&[b"RESTORE".to_vec(), b"bad".to_vec(), b"0".to_vec(), bad.clone()]);
    let expected = RdbError::BadDumpPayload.to_string();
    assert!(matches!(&reply, Reply::Error(e) if e.contains(&expected)), "{reply:?}");
    assert!(matches!(decode_dump_payload(&bad), Err(RdbError::BadDumpPayload)));
}

type Dataset = BTreeMap<(u32, Vec<u8>), (RdbValue, Option<u64>)>;

fn dataset() -> Dataset {
    let mut d = Dataset::new();
    let far = 4_102_444_800_000u64; // 2100-01-01
    for (i, (k, v)) in sample_values().into_iter().enumerate() {
        let ttl = (i % 3 == 0).then_some(far + i as u64);
        d.insert((0, k.into_bytes()), (v, ttl));
    }
    d.insert((1, b("db1-key")), (s("in db one"), None));
    d.insert((1, b("db1-list")), (list(&["a", "b"]), Some(far)));
    d.insert((9, b("db9-key")), (set(&["x", "1"]), None));
    d
}

fn write_file(d: &Dataset, path: &std::path::Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = RdbWriter::new(f).unwrap();
    let mut current = None;
    for ((db, key), (value, ttl)) in d {
        if current != Some(*db) {
            let keys = d.keys().filter(|(x, _)| x == db).count() as u64;
            let expires = d.iter().filter(|((x, _), (_, t))| x == db && t.is_some()).count() as u64;
            w.select_db(*db, keys, expires).unwrap();
            current = Some(*db);
        }
        w.write_entry(key, value, *ttl).unwrap();
    }
    let f = w.finish().unwrap();
    f.sync_all().unwrap();
}

#[test]
fn written_file_passes_redis_check_rdb_and_loads_into_redis() {
    if !have_redis() {
        return;
    }
    let d = dataset();
    let dir = TempDir::new("writer");
    let path = dir.path().join("dump.rdb");
    write_file(&d, &path);

    let out = Command::new(REDIS_CHECK_RDB).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "redis-check-rdb failed:\n{text}");
    assert!(text.contains("RDB looks OK"), "{text}");

    let mut r = Redis::start_in(dir.path(), "dump.rdb", &["--sanitize-dump-payload", "yes"]);
    for db in [0u32, 1, 9] {
        r.ok(&["SELECT", &db.to_string()]);
        let n = d.keys().filter(|(x, _)| *x == db).count();
        assert_eq!(r.ok(&["DBSIZE"]).int(), n as i64, "db {db}");
        for ((_, key), (value, ttl)) in d.iter().filter(|((x, _), _)| *x == db) {
            let got = r.fetch(key).unwrap_or_else(|| panic!("missing {:?}", String::from_utf8_lossy(key)));
            assert_eq!(norm(&got), norm(value), "{:?}", String::from_utf8_lossy(key));
            assert_eq!(r.pexpiretime(key), *ttl, "{:?}", String::from_utf8_lossy(key));
        }
    }

    // Redis saves it again; our reader reads Redis's file back to the same data.
    r.ok(&["SAVE"]);
    let saved = std::fs::read(r.rdb_path()).unwrap();
    let mut reader = RdbReader::new(&saved[..]).unwrap();
    let mut seen = Dataset::new();
    while let Some(item) = reader.next_item().unwrap() {
        if let RdbItem::Entry(e) = item {
            seen.insert((e.db, e.key), (norm(&e.value), e.expire_at_ms));
        }
    }
    let want: Dataset = d.iter().map(|(k, (v, t))| (k.clone(), (norm(v), *t))).collect();
    assert_eq!(seen, want);
}

#[test]
fn written_function_libraries_load_into_redis_and_read_back() {
    if !have_redis() {
        return;
    }
    let dir = TempDir::new("functions");
    let path = dir.path().join("dump.rdb");
    // Long enough to be LZF-compressed by the writer, as Redis's own rdbSaveRawString does.
    let library = format!(
        "#!lua name=greetings\n-- {}\nredis.register_function('hello', function(keys, args) return 'hi ' .. args[1] end)",
        "padding ".repeat(20)
    );
    let mut w = RdbWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    w.write_function(library.as_bytes()).unwrap();
    w.select_db(0, 1, 0).unwrap();
    w.write_entry(b"k", &s("v"), None).unwrap();
    w.finish().unwrap();

    let mut r = Redis::start_in(dir.path(), "dump.rdb", &[]);
    assert_eq!(r.ok(&["FCALL", "hello", "0", "there"]).bulk(), b("hi there"));
    assert_eq!(r.fetch(b"k"), Some(s("v")));
    let items = read_all(&std::fs::read(&path).unwrap()).unwrap();
    let functions: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            RdbItem::Aux { key, value } if key == b"function" => Some(value.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(functions, vec![library.into_bytes()]);
}

#[test]
fn written_file_without_compression_also_loads() {
    if !have_redis() {
        return;
    }
    let dir = TempDir::new("nocomp");
    let path = dir.path().join("dump.rdb");
    let mut w = RdbWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    w.set_compression(false);
    w.write_aux(b"staykv-note", b"test").unwrap();
    w.select_db(0, 2, 0).unwrap();
    w.write_entry(b"long", &RdbValue::String(b"xyz".repeat(100)), None).unwrap();
    w.write_entry(b"empty-list", &RdbValue::List(vec![]), None).unwrap();
    w.write_entry(b"l", &list(&["1", "2"]), None).unwrap();
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.windows(300).any(|win| win == b"xyz".repeat(100).as_slice()), "stored raw");
    let mut r = Redis::start_in(dir.path(), "dump.rdb", &[]);
    assert_eq!(r.ok(&["DBSIZE"]).int(), 2);
    assert_eq!(r.fetch(b"long"), Some(RdbValue::String(b"xyz".repeat(100))));
    assert_eq!(r.fetch(b"l"), Some(list(&["1", "2"])));
}

#[test]
fn random_values_restore_into_redis_with_deep_sanitization() {
    if !have_redis() {
        return;
    }
    let mut r = Redis::start(&["--sanitize-dump-payload", "yes"]);
    let mut rng = Rng(0x0bad_cafe);
    for i in 0..200 {
        let v = random_value(&mut rng);
        let key = format!("rand:{i}");
        let reply = r.cmd(&[
            b"RESTORE".to_vec(),
            key.clone().into_bytes(),
            b"0".to_vec(),
            encode_dump_payload(&v, Layout::BySize),
        ]);
        assert_eq!(reply, Reply::Simple("OK".into()), "RESTORE {key} of {v:?}");
        let got = r.fetch(key.as_bytes()).unwrap();
        assert_eq!(norm(&got), norm(&v), "{key}");
        let again = decode_dump_payload(&r.ok(&["DUMP", key.as_str()]).bulk()).unwrap();
        assert_eq!(norm(&again), norm(&v), "{key}");
    }
}
