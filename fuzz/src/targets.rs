//! The fuzz targets. Each checks more than "does not panic" where it can: the RESP parser
//! must give the same requests however the bytes are split, glob matching must agree with a
//! line-by-line port of Redis's `stringmatchlen`, and a RESTOREd value must DUMP and RESTORE
//! again to the same bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use staykv_engine::exec::NoJournal;
use staykv_engine::host::NoHost;
use staykv_engine::{Client, Engine, EngineOptions, Reply};
use staykv_rdb::{Layout, RdbItem, RdbValue};
use staykv_resp::{parse, Limits, Partial, Request};
use staykv_storage::{BoxError, FnReplay, Fs, LogOptions, SimFs};

use crate::{signature, Target};

/// Every target, in the order the README lists them.
pub const ALL: &[Target] = &[RESP, GLOB, LOG, RDB, RESTORE];

// ---------------------------------------------------------------------------------------------
// RESP requests

pub const RESP: Target = Target {
    name: "resp",
    run: resp,
    seeds: resp_seeds,
    dictionary: &[
        b"*",
        b"$",
        b"\r\n",
        b"\n",
        b"*1\r\n$4\r\nPING\r\n",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        b"$0\r\n\r\n",
        b"\"",
        b"'",
        b"\\x41",
        b"\\n",
        b"\"\\",
        b"PING\r\n",
    ],
    max_len: 4096,
};

fn resp_seeds() -> Vec<Vec<u8>> {
    [
        &b"\x00*1\r\n$4\r\nPING\r\n"[..],
        b"\x00*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
        b"\x04SET k \"a b\\x41\" 'c d'\r\nGET k\n",
        b"\x02*1000000\r\n$1\r\na\r\n",
        b"\x01*2\r\n$3\r\nGET\r\n$100\r\nxx\r\n",
        b"\x08\r\n\r\n*0\r\n*-1\r\n",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect()
}

/// The requests (as argument lists) parsed from `data` fed in pieces of the given sizes,
/// and the error that stopped parsing, if any.
type Parsed = (Vec<Vec<Vec<u8>>>, Option<String>);

fn parse_stream(data: &[u8], pieces: &[usize], limits: &Limits) -> Parsed {
    let mut buf: Vec<u8> = Vec::new();
    let mut partial = Partial::default();
    let mut out = Vec::new();
    let mut fed = 0;
    for &size in pieces {
        let end = (fed + size).min(data.len());
        buf.extend_from_slice(&data[fed..end]);
        fed = end;
        loop {
            match parse(&buf, &mut partial, limits) {
                Ok(Some(request)) => {
                    let consumed = request.consumed();
                    assert!(consumed > 0 && consumed <= buf.len(), "consumed {consumed} of {}", buf.len());
                    let args = match request {
                        Request::Multibulk { args, .. } => args
                            .iter()
                            .map(|range| {
                                assert!(range.end <= consumed, "argument range {range:?} past the request");
                                buf[range.clone()].to_vec()
                            })
                            .collect(),
                        Request::Inline { args, .. } => args,
                    };
                    out.push(args);
                    buf.drain(..consumed);
                }
                Ok(None) => break,
                Err(error) => return (out, Some(error.to_string())),
            }
        }
    }
    (out, None)
}

fn resp(data: &[u8]) -> u64 {
    let (mode, data) = data.split_first().map_or((0, &[][..]), |(m, d)| (*m, d));
    let limits =
        Limits { max_bulk_len: if mode & 1 == 1 { 64 } else { 512 * 1024 * 1024 }, unauthenticated: mode & 2 == 2 };
    let whole = parse_stream(data, &[data.len()], &limits);
    let step = 1 + usize::from(mode >> 2) % 13;
    let pieces: Vec<usize> = (0..data.len().div_ceil(step).max(1)).map(|i| 1 + (i * 7 + step) % (2 * step)).collect();
    let mut total: usize = pieces.iter().sum();
    let mut pieces = pieces;
    while total < data.len() {
        pieces.push(step);
        total += step;
    }
    let split = parse_stream(data, &pieces, &limits);
    assert_eq!(whole, split, "parsing depends on how the bytes arrive");
    let error = whole.1.as_deref().map_or(0, |e| crate::hash_str(e.get(..30).unwrap_or(e)));
    let shape: Vec<u64> = whole.0.iter().take(4).map(|args| args.len().min(8) as u64).collect();
    signature(&[error, whole.0.len().min(16) as u64, crate::hash_u64s(&shape), u64::from(mode & 3)])
}

// ---------------------------------------------------------------------------------------------
// Glob matching

pub const GLOB: Target = Target {
    name: "glob",
    run: glob,
    seeds: glob_seeds,
    dictionary: &[b"*", b"?", b"[", b"]", b"[^", b"\\", b"-", b"[a-z]", b"\\*", b"\xff", b"\x80", b"A", b"a"],
    max_len: 256,
};

fn glob_seeds() -> Vec<Vec<u8>> {
    let pair = |nocase: bool, pattern: &[u8], string: &[u8]| {
        let flags = u8::from(nocase) | ((pattern.len() as u8) << 1);
        let mut v = vec![flags];
        v.extend_from_slice(pattern);
        v.extend_from_slice(string);
        v
    };
    vec![
        pair(false, b"h?llo*", b"hello world"),
        pair(true, b"H[a-e]LLO", b"hello"),
        pair(false, b"[^abc]x\\*", b"dx*"),
        pair(false, b"*a*b*c*", b"aXbYcZ"),
        pair(false, b"[a-", b"a"),
        pair(true, b"[z-a]", b"Q"),
        pair(false, b"session:*", b"session:1234"),
    ]
}

fn glob(data: &[u8]) -> u64 {
    let (flags, rest) = data.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
    let nocase = flags & 1 == 1;
    let plen = usize::from(flags >> 1).min(rest.len());
    let (pattern, string) = rest.split_at(plen);
    let got = staykv_engine::glob::matches(pattern, string, nocase);
    let want = reference::matches(pattern, string, nocase);
    assert_eq!(got, want, "glob::matches({pattern:?}, {string:?}, nocase={nocase}) = {got}, Redis says {want}");
    let shape: Vec<u64> = pattern
        .iter()
        .take(6)
        .map(|c| match c {
            b'*' => 1,
            b'?' => 2,
            b'[' => 3,
            b']' => 4,
            b'\\' => 5,
            b'^' => 6,
            b'-' => 7,
            0x80.. => 8,
            _ => 0,
        })
        .collect();
    signature(&[u64::from(got), u64::from(nocase), crate::hash_u64s(&shape)])
}

/// Redis 7.0's `stringmatchlen` (util.c), ported statement by statement, including `char`
/// being signed (ranges compare bytes >= 0x80 as negative numbers) and reads of the NUL
/// terminator past the end, without the `skipLongerMatches` shortcut (memoized instead).
pub mod reference {
    use super::HashMap;

    fn at(p: &[u8], i: usize) -> u8 {
        p.get(i).copied().unwrap_or(0)
    }

    fn tolower(c: i32) -> i32 {
        if (65..=90).contains(&c) {
            c + 32
        } else {
            c
        }
    }

    fn signed(c: u8) -> i32 {
        i32::from(c as i8)
    }

    pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
        let mut memo = HashMap::new();
        run(pattern, 0, string, 0, nocase, &mut memo)
    }

    fn run(
        p: &[u8],
        mut pi: usize,
        s: &[u8],
        mut si: usize,
        nocase: bool,
        memo: &mut HashMap<(usize, usize), bool>,
    ) -> bool {
        while pi < p.len() && si < s.len() {
            match p[pi] {
                b'*' => {
                    while pi < p.len() && at(p, pi + 1) == b'*' {
                        pi += 1;
                    }
                    if p.len() - pi == 1 {
                        return true;
                    }
                    while si < s.len() {
                        let key = (pi + 1, si);
                        let result = match memo.get(&key) {
                            Some(&r) => r,
                            None => {
                                let r = run(p, pi + 1, s, si, nocase, memo);
                                memo.insert(key, r);
                                r
                            }
                        };
                        if result {
                            return true;
                        }
                        si += 1;
                    }
                    return false;
                }
                b'?' => si += 1,
                b'[' => {
                    pi += 1;
                    let not = at(p, pi) == b'^';
                    if not {
                        pi += 1;
                    }
                    let mut matched = false;
                    loop {
                        let plen = p.len() as isize - pi as isize;
                        if at(p, pi) == b'\\' && plen >= 2 {
                            pi += 1;
                            if at(p, pi) == s[si] {
                                matched = true;
                            }
                        } else if at(p, pi) == b']' {
                            break;
                        } else if plen == 0 {
                            pi -= 1;
                            break;
                        } else if plen >= 3 && at(p, pi + 1) == b'-' {
                            let mut start = signed(at(p, pi));
                            let mut end = signed(at(p, pi + 2));
                            let mut c = signed(s[si]);
                            if start > end {
                                std::mem::swap(&mut start, &mut end);
                            }
                            if nocase {
                                start = tolower(start);
                                end = tolower(end);
                                c = tolower(c);
                            }
                            pi += 2;
                            if c >= start && c <= end {
                                matched = true;
                            }
                        } else if !nocase {
                            if at(p, pi) == s[si] {
                                matched = true;
                            }
                        } else if tolower(signed(at(p, pi))) == tolower(signed(s[si])) {
                            matched = true;
                        }
                        pi += 1;
                    }
                    if not {
                        matched = !matched;
                    }
                    if !matched {
                        return false;
                    }
                    si += 1;
                }
                _ => {
                    if p[pi] == b'\\' && p.len() - pi >= 2 {
                        pi += 1;
                    }
                    let equal = if nocase { tolower(signed(p[pi])) == tolower(signed(s[si])) } else { p[pi] == s[si] };
                    if !equal {
                        return false;
                    }
                    si += 1;
                }
            }
            pi += 1;
            if si == s.len() {
                while at(p, pi) == b'*' && pi < p.len() {
                    pi += 1;
                }
                break;
            }
        }
        pi == p.len() && si == s.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Log segments: recovery over a simulated filesystem

pub const LOG: Target = Target {
    name: "log",
    run: log,
    seeds: log_seeds,
    dictionary: &[b"STAYKVLOG\0", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x01\x00\x00\x00"],
    max_len: 16 * 1024,
};

/// A data directory written by the real log: its manifest and one segment.
struct LogImage {
    manifest: Vec<u8>,
    segment_name: String,
    segment: Vec<u8>,
}

fn dir() -> PathBuf {
    PathBuf::from("/data")
}

fn log_image() -> &'static LogImage {
    static IMAGE: std::sync::OnceLock<LogImage> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        let fs = SimFs::new();
        let _ = fs.create_dir_all(Path::new("/"));
        let _ = fs.create_dir_all(&dir());
        let arc: Arc<dyn Fs> = Arc::new(fs.clone());
        let mut none = staykv_storage::NoReplay;
        let (log, _) = staykv_storage::Log::open(dir(), arc, LogOptions::default(), &mut none).expect("open a log");
        for (i, argv) in
            [&["SET", "k", "v"][..], &["DEL", "k"], &["RPUSH", "l", "a", "b"], &["SET", "n", "1", "PXAT", "9"]]
                .iter()
                .enumerate()
        {
            let effect =
                staykv_engine::Effect::new(0, argv.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect());
            let mut batch = Vec::new();
            staykv_engine::encode_batch(1_700_000_000_000 + i as u64, &[effect], &mut batch);
            let seq = log.append(&batch).expect("append");
            log.wait_durable(seq, Some(std::time::Duration::from_secs(10)));
        }
        let _ = log.flush_and_sync();
        let _ = log.close();
        let manifest = fs.read_file(&dir().join(staykv_storage::MANIFEST_FILE)).expect("manifest");
        let segment_name = staykv_storage::read_manifest(&fs, &dir())
            .ok()
            .flatten()
            .and_then(|m| m.segments.first().cloned())
            .expect("a segment");
        let segment = fs.read_file(&dir().join(&segment_name)).expect("segment");
        LogImage { manifest, segment_name, segment }
    })
}

fn log_seeds() -> Vec<Vec<u8>> {
    let image = log_image();
    let mut with_manifest = vec![1u8];
    with_manifest.extend_from_slice(&image.manifest);
    let mut segment = vec![0u8];
    segment.extend_from_slice(&image.segment);
    vec![segment, with_manifest]
}

fn log(data: &[u8]) -> u64 {
    let image = log_image();
    let (mode, rest) = data.split_first().map_or((0, &[][..]), |(m, r)| (*m, r));
    // Mode bit 0: the input is the manifest (and the segment is intact); else the segment.
    let (manifest, segment) = if mode & 1 == 1 { (rest, &image.segment[..]) } else { (&image.manifest[..], rest) };
    let fs = SimFs::new();
    let _ = fs.create_dir_all(Path::new("/"));
    let _ = fs.create_dir_all(&dir());
    let _ = fs.write_file_durable(&dir().join(staykv_storage::MANIFEST_FILE), manifest);
    let _ = fs.write_file_durable(&dir().join(&image.segment_name), segment);
    let mut frames = 0u64;
    let mut effects = 0u64;
    let mut replay = FnReplay(|_seq: u64, payload: &[u8]| -> Result<(), BoxError> {
        frames += 1;
        if let Ok((_, batch)) = staykv_engine::decode_batch(payload) {
            effects += batch.len() as u64;
        }
        Ok(())
    });
    let scanned = staykv_storage::scan(&dir(), &fs, &mut replay).map_or_else(|e| text_shape(&e.to_string()), |_| 0);
    let checked = match staykv_storage::check(&dir(), &fs) {
        Ok(report) => report.damage.map_or(1, |d| {
            crate::hash_u64s(&[
                text_shape(&d.reason),
                d.kind as u64,
                u64::from(d.drops_whole_segment),
                bucket(d.offset),
            ])
        }),
        Err(e) => text_shape(&e.to_string()),
    };
    // Opening repairs a torn tail (writes); it must never panic either.
    let opened = if mode & 2 == 2 {
        let arc: Arc<dyn Fs> = Arc::new(fs.clone());
        let mut none = staykv_storage::NoReplay;
        match staykv_storage::Log::open(dir(), arc, LogOptions::default(), &mut none) {
            Ok((log, _)) => u64::from(log.close().is_ok()),
            Err(e) => text_shape(&e.to_string()),
        }
    } else {
        2
    };
    signature(&[scanned, bucket(frames), bucket(effects), checked, opened, u64::from(mode & 1)])
}

/// What an error or a damage report says, as a signature part: its text up to the first
/// quote, without digits. Distinct reasons are distinct outcomes; the numbers in them
/// (offsets, seqs) and any quoted input are not, or every fuzzed manifest line would count
/// as new. (The other targets hash a prefix, but a storage error's starts with its path.)
fn text_shape(text: &str) -> u64 {
    let shape: String = text.split('"').next().unwrap_or_default().chars().filter(|c| !c.is_ascii_digit()).collect();
    crate::hash_str(&shape)
}

/// Zero, then one bucket per power of two: counts and offsets as signature parts.
fn bucket(n: u64) -> u64 {
    u64::from(u64::BITS - n.leading_zeros())
}

// ---------------------------------------------------------------------------------------------
// RDB files

pub const RDB: Target = Target {
    name: "rdb",
    run: rdb,
    seeds: rdb_seeds,
    dictionary: &[
        b"REDIS0011",
        b"REDIS0009",
        b"\xfa",
        b"\xfe\x00",
        b"\xfb",
        b"\xfc",
        b"\xfd",
        b"\xff",
        b"\xc0",
        b"\xc1",
        b"\xc2",
        b"\xc3",
        b"\x40\x00",
        b"\x80",
    ],
    max_len: 64 * 1024,
};

fn rdb_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let values = [
        RdbValue::String(b"hello".to_vec()),
        RdbValue::String(b"12345".to_vec()),
        RdbValue::String(vec![b'a'; 300]),
        RdbValue::List(vec![b"a".to_vec(), b"1".to_vec()]),
        RdbValue::Set(vec![b"1".to_vec(), b"2".to_vec()]),
        RdbValue::Set(vec![b"x".to_vec(), b"y".to_vec()]),
        RdbValue::Hash(vec![(b"f".to_vec(), b"v".to_vec())]),
        RdbValue::SortedSet(vec![(b"m".to_vec(), 1.5), (b"n".to_vec(), -2.0)]),
    ];
    if let Ok(mut writer) = staykv_rdb::RdbWriter::new(Vec::new()) {
        let _ = writer.select_db(0, values.len() as u64, 1);
        for (i, value) in values.iter().enumerate() {
            let expire = (i == 0).then_some(1_900_000_000_000);
            let _ = writer.write_entry(format!("k{i}").as_bytes(), value, expire);
        }
        if let Ok(bytes) = writer.finish() {
            out.push(bytes);
        }
    }
    out
}

fn rdb_value_kind(value: &RdbValue) -> u64 {
    match value {
        RdbValue::String(_) => 1,
        RdbValue::List(_) => 2,
        RdbValue::Set(_) => 3,
        RdbValue::Hash(_) => 4,
        RdbValue::SortedSet(_) => 5,
        RdbValue::Stream(_) => 6,
    }
}

fn rdb(data: &[u8]) -> u64 {
    let mut reader = match staykv_rdb::RdbReader::new(std::io::Cursor::new(data)) {
        Ok(reader) => reader,
        Err(e) => return signature(&[0, crate::hash_str(&format!("{e}").chars().take(20).collect::<String>())]),
    };
    let mut kinds = Vec::new();
    for _ in 0..100_000 {
        match reader.next_item() {
            Ok(Some(RdbItem::Entry(entry))) => {
                kinds.push(rdb_value_kind(&entry.value));
                let _ = staykv_engine::rdbconv::from_rdb(entry.value);
            }
            Ok(Some(RdbItem::Unsupported { type_id, .. })) => kinds.push(100 + u64::from(type_id)),
            Ok(Some(RdbItem::Aux { .. })) => kinds.push(50),
            Ok(None) => {
                kinds.push(99);
                break;
            }
            Err(e) => {
                kinds.push(1000 + crate::hash_str(&format!("{e}").chars().take(20).collect::<String>()) % 1000);
                break;
            }
        }
    }
    kinds.dedup();
    signature(&[crate::hash_u64s(&kinds)])
}

// ---------------------------------------------------------------------------------------------
// RESTORE payloads

pub const RESTORE: Target = Target {
    name: "restore",
    run: restore,
    seeds: restore_seeds,
    dictionary: &[
        b"\x00",
        b"\x0a\x00",
        b"\x0b\x00",
        b"\x0c\x00",
        b"\x0d\x00",
        b"\x10\x00",
        b"\x11\x00",
        b"\x12\x00",
        b"\x14\x00",
        b"\xc0",
        b"\xc3",
        b"\xff",
        // FUNCTION2 and the 7.0-rc FUNCTION opcode, which FUNCTION RESTORE payloads hold.
        b"\xf5",
        b"\xf6",
    ],
    max_len: 16 * 1024,
};

fn restore_seeds() -> Vec<Vec<u8>> {
    [
        RdbValue::String(b"hello".to_vec()),
        RdbValue::String(b"-42".to_vec()),
        RdbValue::List(vec![b"a".to_vec(), b"bb".to_vec()]),
        RdbValue::Set(vec![b"1".to_vec(), b"2".to_vec(), b"300".to_vec()]),
        RdbValue::Set(vec![b"m".to_vec()]),
        RdbValue::Hash(vec![(b"f".to_vec(), b"1".to_vec())]),
        RdbValue::SortedSet(vec![(b"a".to_vec(), 1.0), (b"b".to_vec(), f64::INFINITY)]),
    ]
    .iter()
    .map(|value| {
        // Mode 0 and the payload without its version and checksum (the target adds them).
        let payload = staykv_rdb::encode_dump_payload(value, Layout::BySize);
        let mut input = vec![0u8];
        input.extend_from_slice(&payload[..payload.len() - 10]);
        input
    })
    .collect()
}

/// The payload a RESTORE input stands for. Mode bit 0 clear: the input is the body and gets
/// a valid version and CRC-64 (else every mutation would only test the checksum); set: the
/// input is the whole payload, as is.
fn payload_of(data: &[u8]) -> Vec<u8> {
    let (mode, body) = data.split_first().map_or((0, &[][..]), |(m, b)| (*m, b));
    if mode & 1 == 1 {
        return body.to_vec();
    }
    let mut payload = body.to_vec();
    let version: u16 = if mode & 2 == 2 { 9 } else { 10 };
    payload.extend_from_slice(&version.to_le_bytes());
    let crc = staykv_rdb::crc64(0, &payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(EngineOptions { databases: 1, shard_bits: 0 }))
}

fn run(client: &mut Client, argv: &[&[u8]]) -> Reply {
    let args: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a)).collect();
    engine().execute(client, &args, 1_700_000_000_000, &NoHost, &NoJournal).reply
}

/// An RDB value with its unordered parts sorted, for comparing content.
fn normalized(value: staykv_rdb::RdbValue) -> staykv_rdb::RdbValue {
    use staykv_rdb::RdbValue;
    match value {
        RdbValue::Set(mut members) => {
            members.sort();
            RdbValue::Set(members)
        }
        RdbValue::Hash(mut pairs) => {
            pairs.sort();
            RdbValue::Hash(pairs)
        }
        RdbValue::SortedSet(mut pairs) => {
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            RdbValue::SortedSet(pairs)
        }
        other => other,
    }
}

fn restore(data: &[u8]) -> u64 {
    let payload = payload_of(data);
    let data = &payload[..];
    let decoded = staykv_rdb::decode_dump_payload(data);
    let decoded_kind = match &decoded {
        Ok(value) => rdb_value_kind(value),
        Err(e) => 10 + crate::hash_str(&format!("{e}").chars().take(20).collect::<String>()) % 100,
    };
    // The engine is shared by every input of this process: one key per thread.
    let mut client = Client::new(1, true);
    let key = format!("fuzz:{:?}", std::thread::current().id());
    let copy = format!("{key}:copy");
    let reply = run(&mut client, &[b"RESTORE", key.as_bytes(), b"0", data, b"REPLACE"]);
    let restored = !reply.is_error();
    if restored {
        let Reply::Bulk(dump) = run(&mut client, &[b"DUMP", key.as_bytes()]) else {
            panic!("RESTORE succeeded but DUMP did not answer a payload");
        };
        let again = run(&mut client, &[b"RESTORE", copy.as_bytes(), b"0", &dump, b"REPLACE"]);
        assert!(!again.is_error(), "a DUMP payload does not RESTORE: {again:?}");
        let Reply::Bulk(dump2) = run(&mut client, &[b"DUMP", copy.as_bytes()]) else {
            panic!("DUMP of the copy failed");
        };
        // Unordered collections may serialize their members in another order after a
        // round trip (hash-table iteration order); the content must not change.
        let content = |payload: &[u8]| staykv_rdb::decode_dump_payload(payload).map(normalized).ok();
        assert_eq!(content(&dump), content(&dump2), "DUMP → RESTORE → DUMP changed the value");
        run(&mut client, &[b"DEL", key.as_bytes(), copy.as_bytes()]);
    }
    let error = match &reply {
        Reply::Error(text) => crate::hash_str(text.get(..24).unwrap_or(text)),
        _ => 0,
    };
    let size = match &decoded {
        Ok(RdbValue::String(s)) => s.len().min(64) as u64,
        Ok(RdbValue::List(v) | RdbValue::Set(v)) => v.len().min(64) as u64,
        Ok(RdbValue::Hash(v)) => v.len().min(64) as u64,
        Ok(RdbValue::SortedSet(v)) => v.len().min(64) as u64,
        Ok(RdbValue::Stream(s)) => s.entries.len().min(64) as u64,
        Err(_) => 0,
    };
    let type_byte = data.first().copied().map_or(999, u64::from);
    // The same bytes as a FUNCTION RESTORE payload: decoded, never a panic.
    let functions = match staykv_rdb::decode_functions_payload(data) {
        Ok(libraries) => libraries.len().min(8) as u64,
        Err(error) => 100 + error as u64,
    };
    signature(&[decoded_kind, u64::from(restored), error, size, type_byte, functions])
}
