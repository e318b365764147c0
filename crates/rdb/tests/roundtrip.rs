//! Writer → reader round trips (no redis-server needed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use staykv_rdb::{
    decode_dump_payload, encode_dump_payload, Layout, Pick, Picked, RdbItem, RdbReader, RdbValue, RdbWriter,
};

fn write(entries: &[(u32, Vec<u8>, RdbValue, Option<u64>)], compress: bool) -> Vec<u8> {
    let mut w = RdbWriter::new(Vec::new()).unwrap();
    w.set_compression(compress);
    let mut db = None;
    for (d, k, v, t) in entries {
        if db != Some(*d) {
            w.select_db(*d, 0, 0).unwrap();
            db = Some(*d);
        }
        w.write_entry(k, v, *t).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn sample_values_round_trip() {
    let values = sample_values();
    let entries: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            ((i % 4) as u32 * 5, k.clone().into_bytes(), v.clone(), (i % 2 == 0).then_some(1_000 + i as u64))
        })
        .collect();
    let mut sorted = entries.clone();
    sorted.sort_by_key(|e| e.0);
    for compress in [true, false] {
        let file = write(&sorted, compress);
        let items = read_all(&file).unwrap();
        let aux: Vec<_> = items
            .iter()
            .filter_map(|i| match i {
                RdbItem::Aux { key, value } => Some((String::from_utf8_lossy(key).into_owned(), value.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(aux[0], ("redis-ver".to_string(), b("7.0.0")));
        assert_eq!(aux[1], ("redis-bits".to_string(), b("64")));
        assert!(aux.iter().any(|(k, _)| k == "ctime"));
        assert!(aux.iter().any(|(k, _)| k == "aof-base"));
        let es = entries_of(&items);
        assert_eq!(es.len(), sorted.len());
        for (e, (db, k, v, t)) in es.iter().zip(&sorted) {
            assert_eq!(e.db, *db);
            assert_eq!(&e.key, k);
            assert_eq!(norm(&e.value), norm(v), "{}", String::from_utf8_lossy(k));
            assert_eq!(e.expire_at_ms, *t);
            if matches!(v, RdbValue::List(_) | RdbValue::String(_) | RdbValue::Hash(_)) {
                // Lists and strings are exact; hashes keep insertion order too.
                assert_eq!(&e.value, v, "{}", String::from_utf8_lossy(k));
            }
            if let (RdbValue::SortedSet(a), RdbValue::SortedSet(b)) = (&e.value, v) {
                let bits = |z: &[(Vec<u8>, f64)]| {
                    let mut x: Vec<_> = z.iter().map(|(m, s)| (m.clone(), s.to_bits())).collect();
                    x.sort();
                    x
                };
                assert_eq!(bits(a), bits(b), "scores are bit-exact");
            }
        }
    }
}

fn entries_of(items: &[RdbItem]) -> Vec<staykv_rdb::RdbEntry> {
    entries(items)
}

#[test]
fn random_values_round_trip_through_file_and_dump() {
    let mut rng = Rng(0xdead_beef_1234);
    let mut all = Vec::new();
    for i in 0..300u32 {
        let v = random_value(&mut rng);
        for layout in [Layout::BySize, Layout::Big] {
            let p = encode_dump_payload(&v, layout);
            let d = decode_dump_payload(&p).unwrap_or_else(|e| panic!("value {i} {layout:?}: {e}"));
            assert_eq!(norm(&d), norm(&v), "dump {i} {layout:?}");
        }
        all.push((i / 100, format!("key:{i}").into_bytes(), v, None));
    }
    let file = write(&all, true);
    let es = entries(&read_all(&file).unwrap());
    assert_eq!(es.len(), all.len());
    for (e, (db, k, v, _)) in es.iter().zip(&all) {
        assert_eq!((e.db, &e.key), (*db, k));
        assert_eq!(norm(&e.value), norm(v));
    }
}

/// A key copied as it lies keeps the encoding the file gave it: a compressible key stays
/// LZF-compressed, a plain one stays plain (and is not offered to the compressor again).
#[test]
fn raw_copies_keep_each_keys_encoding() {
    let compressible = format!("session:{}", "ab".repeat(40)).into_bytes();
    let incompressible = b"sess:Zq3xK9vLm2Pw8RtY4uBn7HcJ5dFg1sAeQoWiEr6TyUp".to_vec();
    let entries: Vec<(u32, Vec<u8>, RdbValue, Option<u64>)> = vec![
        (0, compressible.clone(), RdbValue::String(b"v1".to_vec()), Some(1_000)),
        (0, incompressible, RdbValue::String(b"v2".to_vec()), None),
    ];
    let original = write(&entries, true);
    assert!(
        !original.windows(compressible.len()).any(|w| w == compressible.as_slice()),
        "the long repetitive key must be stored compressed"
    );
    let mut reader = RdbReader::new(&original[..]).unwrap();
    let mut copy = RdbWriter::new(Vec::new()).unwrap();
    copy.select_db(0, 0, 0).unwrap();
    let mut compressed_keys = Vec::new();
    while let Some(item) = reader.next_item_pick(|_, _| Pick::Raw).unwrap() {
        if let Picked::Raw(entry) = item {
            compressed_keys.push(entry.key_compressed);
            copy.write_raw_entry(&entry).unwrap();
        }
    }
    assert_eq!(compressed_keys, [true, false]);
    assert_eq!(copy.finish().unwrap(), original, "a raw copy is the same file, byte for byte");
}

/// A compaction copies unchanged keys as they lie in the old file (`Pick::Raw`) next to
/// keys it decoded and wrote again, some read at once, others later from where a first read
/// located them (`Pick::Locate`): the new file reads back to the same keys, values and
/// deadlines, in every database, whatever the encoding, a stream included (only parsing
/// finds its end, but it is copied all the same).
#[test]
fn raw_copied_keys_read_back_as_they_were_written() {
    let mut rng = Rng(0x5eed_cafe);
    let mut all: Vec<(u32, Vec<u8>, RdbValue, Option<u64>)> = sample_values()
        .into_iter()
        .map(|(k, v)| (0, k.into_bytes(), v, Some(1_000)))
        .chain((0..200u32).map(|i| (1 + i / 80, format!("random:{i}").into_bytes(), random_value(&mut rng), None)))
        .collect();
    all.push((3, b("events"), sample_stream(), Some(7)));
    for compress in [true, false] {
        let original = write(&all, compress);
        let mut reader = RdbReader::new(&original[..]).unwrap();
        let mut copy = RdbWriter::new(Vec::new()).unwrap();
        let (mut raw, mut decoded, mut located, mut streams) = (0, 0, Vec::new(), 0);
        let pick = |key: &[u8]| [Pick::Raw, Pick::Decode, Pick::Locate][key.len() % 3];
        while let Some(item) = reader.next_item_pick(|_, key| pick(key)).unwrap() {
            match item {
                Picked::Raw(e) => {
                    assert!(pick(&e.key) == Pick::Raw, "{:?}", String::from_utf8_lossy(&e.key));
                    copy.write_raw_entry(&e).unwrap();
                    raw += 1;
                    streams += usize::from(e.type_id == staykv_rdb::types::STREAM_LISTPACKS_2);
                }
                Picked::Item(RdbItem::Entry(e)) => {
                    assert!(pick(&e.key) == Pick::Decode, "{:?} not copied", String::from_utf8_lossy(&e.key));
                    copy.select_db(e.db, 0, 0).unwrap();
                    copy.write_entry(&e.key, &e.value, e.expire_at_ms).unwrap();
                    decoded += 1;
                }
                Picked::Located { location, .. } => located.push(location),
                Picked::Item(_) => {}
            }
        }
        assert!(reader.is_finished());
        let raw_streams = all.iter().filter(|(_, k, v, _)| matches!(v, RdbValue::Stream(_)) && pick(k) == Pick::Raw);
        assert!(streams >= 1 && streams == raw_streams.count(), "streams are copied as they lie");
        for at in &located {
            let (item, end) = RdbReader::read_located(&original[at.offset as usize..], *at).unwrap();
            let Some(RdbItem::Entry(e)) = item else { panic!("nothing at {at:?}") };
            assert!(pick(&e.key) == Pick::Locate && end > at.offset && end < original.len() as u64);
            copy.select_db(e.db, 0, 0).unwrap();
            copy.write_entry(&e.key, &e.value, e.expire_at_ms).unwrap();
        }
        assert!(
            raw > 20 && decoded > 20 && located.len() > 20,
            "{raw} raw, {decoded} decoded, {} located",
            located.len()
        );
        let copy = copy.finish().unwrap();
        let keyed = |file: &[u8]| {
            let mut es: Vec<_> = entries(&read_all(file).unwrap())
                .into_iter()
                .map(|e| ((e.db, e.key), (norm(&e.value), e.expire_at_ms)))
                .collect();
            es.sort_by(|a, b| a.0.cmp(&b.0));
            es
        };
        assert_eq!(keyed(&copy), keyed(&original));
        assert_eq!(keyed(&copy).len(), all.len());
    }
}

/// An expiry at or before the epoch (0, or negative) has passed; it must not read as 0,
/// which callers take for "no expiry".
#[test]
fn expiries_at_or_before_the_epoch_read_as_past() {
    const MARKER: u64 = 0x0102_0304_0506_0708;
    let mut file = write(&[(0, b("zero"), s("v"), Some(0)), (0, b("negative"), s("v"), Some(MARKER))], true);
    let at = file.windows(8).position(|w| w == MARKER.to_le_bytes()).unwrap();
    file[at..at + 8].copy_from_slice(&(-5i64).to_le_bytes());
    // A zero checksum trailer is "not computed", as Redis writes with rdbchecksum no.
    let len = file.len();
    file[len - 8..].fill(0);
    for entry in entries(&read_all(&file).unwrap()) {
        assert_eq!(entry.expire_at_ms, Some(1), "{:?}", String::from_utf8_lossy(&entry.key));
    }
}

/// A NaN score is refused, as Redis refuses the file ("Zset with NAN score detected"): a
/// sorted set cannot hold it, and dropping the member would lose it without a word.
#[test]
fn a_nan_zset_score_is_refused() {
    let file = write(&[(0, b("z"), zset(&[("a", f64::NAN), ("b", 1.5)]), None)], true);
    let error = read_all(&file).unwrap_err().to_string();
    assert!(error.contains("zset score is NaN"), "{error}");
}

#[test]
fn empty_collections_are_not_written() {
    let file = write(
        &[
            (0, b("a"), RdbValue::List(vec![]), None),
            (0, b("b"), RdbValue::Hash(vec![]), Some(5)),
            (0, b("c"), RdbValue::String(vec![]), None),
        ],
        true,
    );
    let es = entries(&read_all(&file).unwrap());
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].key, b("c"));
    assert_eq!(es[0].value, s(""));
}

#[test]
fn writer_streams_into_any_write_and_reports_bytes() {
    let file = write(&[(0, b("k"), s("v"), None)], true);
    assert!(file.starts_with(b"REDIS0010"));
    let mut r = RdbReader::new(&file[..]).unwrap();
    while r.next_item().unwrap().is_some() {}
    assert_eq!(r.bytes_read(), file.len() as u64);
    // A file with a large value: the reader consumes it item by item.
    let big = RdbValue::List((0..50_000).map(|i| format!("{i:08}").into_bytes()).collect());
    let file = write(&[(0, b("big"), big.clone(), None), (0, b("after"), s("x"), None)], true);
    let es = entries(&read_all(&file).unwrap());
    assert_eq!(es[0].value, big);
    assert_eq!(es[1].value, s("x"));
}
