//! Damaged input: truncation at every offset, flipped bytes, huge declared lengths,
//! bad headers, I/O errors. The reader must return an error — never panic, never
//! allocate what a length field claims, never report a damaged file as complete.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::{self, Read};

use common::*;
use staykv_rdb::{crc64, decode_dump_payload, encode_dump_payload, Layout, RdbError, RdbItem, RdbReader, RdbValue};

/// Reads to the end; Ok(n items) only if the file was complete and valid.
/// Offsets to damage: all of them for small files; for big ones (the unoptimized test
/// build parses ~20 MB/s) the first 1 KiB and then every 47th byte, plus the tail.
fn offsets(len: usize) -> Vec<usize> {
    if len <= 4096 {
        return (0..len).collect();
    }
    (0..1024).chain((1024..len - 64).step_by(47)).chain(len - 64..len).collect()
}

fn read_count(bytes: &[u8]) -> Result<usize, RdbError> {
    let mut r = RdbReader::new(bytes)?;
    let mut n = 0;
    while r.next_item()?.is_some() {
        n += 1;
    }
    Ok(n)
}

fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

#[test]
fn every_truncation_is_an_error() {
    for name in ["main.rdb", "lru.rdb", "lfu.rdb", "nochecksum.rdb"] {
        let f = fixture(name);
        assert!(read_count(&f).is_ok());
        for cut in offsets(f.len()) {
            match read_count(&f[..cut]) {
                Err(e) => {
                    if let Some(off) = e.offset() {
                        assert!(off <= cut as u64, "{name} cut {cut}: offset {off} past the end: {e}");
                    }
                }
                Ok(n) => panic!("{name} truncated at {cut} of {} read as complete ({n} items)", f.len()),
            }
        }
    }
}

#[test]
fn every_flipped_byte_is_an_error() {
    for name in ["main.rdb", "lfu.rdb", "nochecksum.rdb"] {
        let f = fixture(name);
        let zero_crc = f[f.len() - 8..] == [0u8; 8];
        for i in offsets(f.len()) {
            let mut bad = f.clone();
            bad[i] ^= [0xFF, 0x01, 0x80, 0x40][i % 4];
            let r = read_count(&bad);
            // Without a checksum a flip in a value's bytes goes unnoticed; it still
            // must not panic. With one, every flip is detected.
            if !zero_crc {
                assert!(r.is_err(), "{name}: flip at {i} not detected");
            }
        }
    }
}

#[test]
fn mutations_behind_a_valid_checksum_never_panic() {
    // Recompute the CRC after mutating so the damage reaches the object decoders.
    let f = fixture("main.rdb");
    let body = &f[..f.len() - 8];
    let mut rng = Rng(42);
    let mut errors = 0;
    for round in 0..600 {
        let mut m = body.to_vec();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(m.len() as u64) as usize;
            m[i] = match round % 3 {
                0 => rng.next() as u8,
                1 => m[i] ^ 1 << rng.below(8),
                _ => [0x00, 0xFF, 0x80, 0x81, 0xC3, 0x7F, 0x3F][rng.below(7) as usize],
            };
        }
        if read_count(&with_crc(m)).is_err() {
            errors += 1;
        }
    }
    assert!(errors > 0);
}

#[test]
fn huge_declared_lengths_fail_without_allocating() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // string key with a 64-bit length of 2^64-1
        ("64-bit key length", [vec![0u8], vec![0x81], vec![0xFF; 8]].concat()),
        // 32-bit length of 4 GiB - 1
        ("32-bit key length", [vec![0u8], vec![0x80], vec![0xFF; 4]].concat()),
        // list claiming 2^62 elements
        ("list count", [vec![1u8, 1, b'k', 0x81], (1u64 << 62).to_be_bytes().to_vec(), vec![1, b'a']].concat()),
        // LZF string: 3 compressed bytes claiming 2^62 uncompressed
        (
            "lzf length",
            [vec![0u8, 1, b'k', 0xC3, 3, 0x81], (1u64 << 62).to_be_bytes().to_vec(), vec![0, b'a', 0]].concat(),
        ),
        // LZF claiming a huge compressed length
        ("lzf clen", [vec![0u8, 1, b'k', 0xC3, 0x81], vec![0x7F; 8], vec![10]].concat()),
        // quicklist with 2^40 nodes
        ("quicklist nodes", [vec![18u8, 1, b'k', 0x81], (1u64 << 40).to_be_bytes().to_vec()].concat()),
        // listpack blob whose header claims 4 GiB
        ("listpack size", vec![16u8, 1, b'k', 7, 0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0xFF]),
        // intset claiming 2^32-1 entries
        ("intset count", vec![11u8, 1, b'k', 8, 2, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
        // stream with 2^50 consumer groups
        ("stream groups", [vec![15u8, 1, b'k', 0, 0, 0, 0, 0x81], (1u64 << 50).to_be_bytes().to_vec()].concat()),
        // module value with an endless opcode stream cut short
        ("module", vec![7u8, 1, b'k', 5, 5, 0x81]),
        // select db beyond u32
        ("selectdb", [vec![254u8, 0x81], u64::MAX.to_be_bytes().to_vec()].concat()),
    ];
    for (what, body) in cases {
        let file = [b"REDIS0010".to_vec(), body].concat();
        let e = read_count(&file).expect_err(what);
        assert!(e.offset().is_some(), "{what}: {e}");
        let msg = e.to_string();
        assert!(msg.contains("offset"), "{what}: {msg}");
    }
}

#[test]
fn header_errors() {
    let e = RdbReader::new(&b"REDIS0011\xff"[..]).unwrap_err();
    assert!(matches!(e, RdbError::UnsupportedVersion { version: 11 }), "{e}");
    assert!(e.to_string().contains("11"));
    assert!(matches!(RdbReader::new(&b"REDIS0000"[..]), Err(RdbError::UnsupportedVersion { version: 0 })));
    assert!(matches!(RdbReader::new(&b"RADIS0010"[..]), Err(RdbError::BadHeader { .. })));
    assert!(matches!(RdbReader::new(&b"REDIS00x1"[..]), Err(RdbError::BadHeader { .. })));
    assert!(matches!(RdbReader::new(&b"REDIS"[..]), Err(RdbError::Truncated { offset: 0, .. })));
    assert!(matches!(RdbReader::new(&b""[..]), Err(RdbError::Truncated { .. })));
    for v in 1..=10 {
        assert!(RdbReader::new(format!("REDIS{v:04}").as_bytes()).is_ok());
    }
}

#[test]
fn unknown_opcode_and_bad_encodings_name_the_offset() {
    for (bad, offset) in [
        (vec![8u8], 9u64),               // type 8 does not exist
        (vec![22u8], 9),                 // beyond the known types
        (vec![200u8], 9),                // not an opcode
        (vec![0u8, 0xC4], 10),           // string encoding 4
        (vec![0u8, 0x82], 10),           // length encoding 0x82
        (vec![18u8, 1, b'k', 1, 3], 13), // quicklist container 3
    ] {
        let file = with_crc([b"REDIS0010".to_vec(), bad.clone(), vec![255]].concat());
        let e = read_count(&file).unwrap_err();
        assert!(matches!(e, RdbError::Corrupt { .. }), "{bad:?}: {e}");
        assert_eq!(e.offset(), Some(offset), "{bad:?}: {e}");
    }
}

#[test]
fn checksum_mismatch_reports_the_trailer_offset() {
    let mut f = fixture("lru.rdb");
    let n = f.len();
    f[n - 1] ^= 1;
    match read_count(&f) {
        Err(RdbError::ChecksumMismatch { offset, stored, computed }) => {
            assert_eq!(offset, n as u64 - 8);
            assert_ne!(stored, computed);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn corrupt_blob_error_names_the_blob() {
    // A hash listpack whose element count is wrong.
    let mut lp = vec![0u8; 0];
    lp.extend_from_slice(&12u32.to_le_bytes());
    lp.extend_from_slice(&3u16.to_le_bytes()); // claims 3, has 2
    lp.extend_from_slice(&[0x81, b'a', 2, 0x05, 1, 0xFF]);
    let mut body = b"REDIS0010".to_vec();
    body.extend_from_slice(&[16, 1, b'h', lp.len() as u8]);
    body.extend_from_slice(&lp);
    body.push(255);
    let e = read_count(&with_crc(body)).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("listpack") && msg.contains("offset 12"), "{msg}");
}

struct FailingReader<'a> {
    data: &'a [u8],
    fail_at: usize,
}

impl Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail_at == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.fail_at).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.fail_at -= n;
        Ok(n)
    }
}

#[test]
fn io_errors_are_reported_with_offset() {
    let f = fixture("main.rdb");
    for fail_at in [20usize, 500, 10_000] {
        let rd = FailingReader { data: &f, fail_at };
        let mut r = RdbReader::new(io::BufReader::with_capacity(64, rd)).unwrap();
        let e = loop {
            match r.next_item() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("completed despite the I/O error"),
                Err(e) => break e,
            }
        };
        match e {
            RdbError::Io { offset, ref source } => {
                assert!(offset <= fail_at as u64);
                assert!(source.to_string().contains("fire"));
            }
            other => panic!("{other}"),
        }
    }
}

#[test]
fn dump_payload_damage() {
    let v = RdbValue::List((0..100).map(|i| format!("e{i}").into_bytes()).collect());
    let p = encode_dump_payload(&v, Layout::BySize);
    assert_eq!(decode_dump_payload(&p).unwrap(), v);
    for cut in 0..p.len() {
        assert!(decode_dump_payload(&p[..cut]).is_err());
    }
    for i in 0..p.len() {
        let mut bad = p.clone();
        bad[i] ^= 0x10;
        assert!(matches!(decode_dump_payload(&bad), Err(RdbError::BadDumpPayload)), "flip {i}");
    }
    // Version 11 is refused even with a good checksum.
    let mut newer = p[..p.len() - 10].to_vec();
    newer.extend_from_slice(&11u16.to_le_bytes());
    let newer = with_crc(newer);
    assert!(matches!(decode_dump_payload(&newer), Err(RdbError::BadDumpPayload)));
    assert_eq!(RdbError::BadDumpPayload.to_string(), "DUMP payload version or checksum are wrong");
    // Garbage after the object, a valid footer: a format error, not a footer error.
    let mut extra = p[..p.len() - 10].to_vec();
    extra.push(0);
    extra.extend_from_slice(&10u16.to_le_bytes());
    assert!(matches!(decode_dump_payload(&with_crc(extra)), Err(RdbError::Corrupt { .. })));
    // Mutated objects behind a valid footer never panic.
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let mut m = p[..p.len() - 10].to_vec();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(m.len() as u64) as usize;
            m[i] = rng.next() as u8;
        }
        m.extend_from_slice(&10u16.to_le_bytes());
        let _ = decode_dump_payload(&with_crc(m));
    }
    // Empty collections are not valid payloads.
    assert!(decode_dump_payload(&encode_dump_payload(&RdbValue::Set(vec![]), Layout::BySize)).is_err());
}

#[test]
fn streams_keep_the_db() {
    let f = fixture("main.rdb");
    let items: Vec<RdbItem> = RdbReader::new(&f[..]).unwrap().collect::<Result<_, _>>().unwrap();
    assert!(items.iter().any(|i| matches!(i, RdbItem::Entry(e) if e.key == b"stream" && e.db == 0)));
}
