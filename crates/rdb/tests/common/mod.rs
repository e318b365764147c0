//! Shared helpers of the integration tests: fixtures, value normalization, and a
//! minimal redis-server harness speaking RESP over a unix socket.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use staykv_rdb::{RdbEntry, RdbItem, RdbReader, RdbValue};

pub const REDIS_SERVER: &str = "/usr/bin/redis-server";
pub const REDIS_CHECK_RDB: &str = "/usr/bin/redis-check-rdb";

pub fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Reads every item of an RDB held in memory.
pub fn read_all(bytes: &[u8]) -> Result<Vec<RdbItem>, staykv_rdb::RdbError> {
    let mut r = RdbReader::new(bytes)?;
    let mut out = Vec::new();
    while let Some(item) = r.next_item()? {
        out.push(item);
    }
    assert_eq!(r.bytes_read(), bytes.len() as u64, "reader must consume the whole file");
    Ok(out)
}

pub fn entries(items: &[RdbItem]) -> Vec<RdbEntry> {
    items
        .iter()
        .filter_map(|i| match i {
            RdbItem::Entry(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Order-insensitive form of a value for comparisons: sets, hashes and sorted sets are
/// sorted (sorted sets by member).
pub fn norm(v: &RdbValue) -> RdbValue {
    match v {
        RdbValue::String(s) => RdbValue::String(s.clone()),
        RdbValue::List(l) => RdbValue::List(l.clone()),
        RdbValue::Set(s) => {
            let mut s = s.clone();
            s.sort();
            s.dedup();
            RdbValue::Set(s)
        }
        RdbValue::Hash(h) => {
            let mut h = h.clone();
            h.sort();
            RdbValue::Hash(h)
        }
        RdbValue::SortedSet(z) => {
            let mut z = z.clone();
            z.sort_by(|a, b| a.0.cmp(&b.0));
            RdbValue::SortedSet(z)
        }
        // Where the nodes end is layout, and each server's own.
        RdbValue::Stream(st) => {
            RdbValue::Stream(Box::new(staykv_rdb::RdbStream { nodes: Vec::new(), ..(**st).clone() }))
        }
    }
}

pub fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub fn s(v: &str) -> RdbValue {
    RdbValue::String(b(v))
}

pub fn list(items: &[&str]) -> RdbValue {
    RdbValue::List(items.iter().map(|x| b(x)).collect())
}

pub fn set(items: &[&str]) -> RdbValue {
    RdbValue::Set(items.iter().map(|x| b(x)).collect())
}

pub fn hash(pairs: &[(&str, &str)]) -> RdbValue {
    RdbValue::Hash(pairs.iter().map(|(f, v)| (b(f), b(v))).collect())
}

pub fn zset(pairs: &[(&str, f64)]) -> RdbValue {
    RdbValue::SortedSet(pairs.iter().map(|(m, s)| (b(m), *s)).collect())
}

/// A unique temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "staykv-rdb-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn have_redis() -> bool {
    if Path::new(REDIS_SERVER).exists() {
        true
    } else {
        eprintln!("SKIPPED: {REDIS_SERVER} is missing (apt-get install redis-server redis-tools)");
        false
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn bulk(&self) -> Vec<u8> {
        match self {
            Reply::Bulk(Some(b)) => b.clone(),
            other => panic!("expected bulk, got {other:?}"),
        }
    }
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected integer, got {other:?}"),
        }
    }
    pub fn array(&self) -> Vec<Reply> {
        match self {
            Reply::Array(Some(a)) => a.clone(),
            other => panic!("expected array, got {other:?}"),
        }
    }
    pub fn text(&self) -> String {
        match self {
            Reply::Simple(s) | Reply::Error(s) => s.clone(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        }
    }
}

/// A redis-server child process on a unix socket in its own temporary directory.
pub struct Redis {
    child: Child,
    conn: BufReader<UnixStream>,
    pub dir: PathBuf,
    _tmp: Option<TempDir>,
}

impl Redis {
    /// Starts redis-server with `dir` as its data directory (loading `dbfilename` if
    /// present there).
    pub fn start_in(dir: &Path, dbfilename: &str, extra: &[&str]) -> Redis {
        let sock = dir.join("redis.sock");
        let mut cmd = Command::new(REDIS_SERVER);
        cmd.args(["--port", "0", "--unixsocket"])
            .arg(&sock)
            .arg("--dir")
            .arg(dir)
            .args(["--dbfilename", dbfilename, "--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes", "--logfile"])
            .arg(dir.join("redis.log"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn redis-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            if let Ok(s) = UnixStream::connect(&sock) {
                break s;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
                panic!("redis-server exited with {status}:\n{log}");
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut r = Redis { child, conn: BufReader::new(stream), dir: dir.to_path_buf(), _tmp: None };
        // Wait until the dataset is loaded.
        loop {
            match r.cmd(&["PING"]) {
                Reply::Simple(s) if s == "PONG" => break,
                Reply::Error(e) if e.starts_with("LOADING") => {
                    assert!(Instant::now() < deadline, "redis-server stuck loading");
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => panic!("PING: {other:?}"),
            }
        }
        r
    }

    pub fn start(extra: &[&str]) -> Redis {
        let tmp = TempDir::new("redis");
        let mut r = Redis::start_in(tmp.path(), "dump.rdb", extra);
        r._tmp = Some(tmp);
        r
    }

    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.conn.get_mut().write_all(&out).unwrap();
        read_reply(&mut self.conn)
    }

    /// Runs a command and asserts it did not fail.
    pub fn ok<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        let r = self.cmd(args);
        if let Reply::Error(e) = &r {
            panic!(
                "{:?} failed: {e}",
                args.iter().map(|a| String::from_utf8_lossy(a.as_ref()).into_owned()).collect::<Vec<_>>()
            );
        }
        r
    }

    /// Reads a key's value through ordinary commands.
    pub fn fetch(&mut self, key: &[u8]) -> Option<RdbValue> {
        let t = self.ok(&[&b"TYPE"[..], key]).text();
        let strings = |r: Reply| -> Vec<Vec<u8>> { r.array().iter().map(Reply::bulk).collect() };
        Some(match t.as_str() {
            "none" => return None,
            "string" => RdbValue::String(self.ok(&[&b"GET"[..], key]).bulk()),
            "list" => RdbValue::List(strings(self.ok(&[&b"LRANGE"[..], key, b"0", b"-1"]))),
            "set" => RdbValue::Set(strings(self.ok(&[&b"SMEMBERS"[..], key]))),
            "hash" => {
                let flat = strings(self.ok(&[&b"HGETALL"[..], key]));
                RdbValue::Hash(flat.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect())
            }
            "zset" => {
                let flat = strings(self.ok(&[&b"ZRANGE"[..], key, b"0", b"-1", b"WITHSCORES"]));
                RdbValue::SortedSet(
                    flat.chunks(2)
                        .map(|c| {
                            let sc = String::from_utf8_lossy(&c[1]).to_string();
                            let f = match sc.as_str() {
                                "inf" => f64::INFINITY,
                                "-inf" => f64::NEG_INFINITY,
                                x => x.parse().unwrap(),
                            };
                            (c[0].clone(), f)
                        })
                        .collect(),
                )
            }
            // Read back through DUMP: a stream's bookkeeping has no other complete view.
            "stream" => staykv_rdb::decode_dump_payload(&self.ok(&[&b"DUMP"[..], key]).bulk()).unwrap(),
            other => panic!("unexpected type {other}"),
        })
    }

    /// The absolute expiry of a key in ms (None when it has none).
    pub fn pexpiretime(&mut self, key: &[u8]) -> Option<u64> {
        let t = self.ok(&[&b"PEXPIRETIME"[..], key]).int();
        u64::try_from(t).ok()
    }

    pub fn rdb_path(&mut self) -> PathBuf {
        let dir = self.ok(&["CONFIG", "GET", "dir"]).array()[1].text();
        let name = self.ok(&["CONFIG", "GET", "dbfilename"]).array()[1].text();
        Path::new(&dir).join(name)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_line(r: &mut BufReader<UnixStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.ends_with("\r\n"), "bad RESP line {line:?}");
    line.truncate(line.len() - 2);
    line
}

fn read_reply(r: &mut BufReader<UnixStream>) -> Reply {
    let line = read_line(r);
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" => Reply::Simple(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(rest.parse().unwrap()),
        "$" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                return Reply::Bulk(None);
            }
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf).unwrap();
            buf.truncate(n as usize);
            Reply::Bulk(Some(buf))
        }
        "*" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                return Reply::Array(None);
            }
            Reply::Array(Some((0..n).map(|_| read_reply(r)).collect()))
        }
        other => panic!("unexpected RESP type {other}"),
    }
}

/// Deterministic pseudo-random numbers (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, max_len: u64) -> Vec<u8> {
        let len = self.below(max_len + 1);
        match self.below(4) {
            0 => (self.next() as i64 >> self.below(64)).to_string().into_bytes(),
            1 => (0..len).map(|_| b'a' + self.below(3) as u8).collect(),
            _ => (0..len).map(|_| self.next() as u8).collect(),
        }
    }
}

/// Values covering every encoding decision of the writer and of Redis 7.0.
pub fn sample_values() -> Vec<(String, RdbValue)> {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut v: Vec<(String, RdbValue)> = Vec::new();
    let mut add = |name: &str, value: RdbValue| v.push((name.to_string(), value));
    // strings
    for (i, x) in [
        "",
        "a",
        "0",
        "-1",
        "127",
        "-128",
        "128",
        "32767",
        "-32768",
        "32768",
        "2147483647",
        "-2147483648",
        "2147483648",
        "9223372036854775807",
        "-9223372036854775808",
        "-0",
        "007",
        "+5",
        " 5",
        "1.5",
        "12345678901",
    ]
    .iter()
    .enumerate()
    {
        add(&format!("str:{i}"), s(x));
    }
    add("str:binary", RdbValue::String(b"\x00\x01\xff\r\n\x00".to_vec()));
    add("str:compressible", RdbValue::String(b"abcabcabcabc".repeat(1000)));
    add("str:21", RdbValue::String(b"aaaaaaaaaaaaaaaaaaaaa".to_vec()));
    add("str:random", RdbValue::String((0..5000).map(|_| rng.next() as u8).collect()));
    // lists
    add("list:small", list(&["a", "b", "1", "-1", "100000", "x y"]));
    add("list:one", list(&["only"]));
    add("list:many", RdbValue::List((0..3000).map(|i| format!("element-{i}").into_bytes()).collect()));
    add("list:ints", RdbValue::List((-500..500).map(|i| (i * 7919i64).to_string().into_bytes()).collect()));
    add(
        "list:huge-elems",
        RdbValue::List(vec![b("s"), vec![b'h'; 20_000], b("t"), (0..9000).map(|_| rng.next() as u8).collect(), b("u")]),
    );
    add("list:dups", list(&["d", "d", "d", "e", "d"]));
    add("list:random", RdbValue::List((0..400).map(|_| rng.bytes(200)).collect()));
    // sets
    add("set:ints", set(&["3", "1", "2", "-7", "32768"]));
    add("set:ints64", set(&["1", "9223372036854775807", "-9223372036854775808"]));
    add("set:many-ints", RdbValue::Set((0..600).map(|i| (i * 3).to_string().into_bytes()).collect()));
    add("set:strings", set(&["alpha", "beta", "gamma"]));
    add("set:mixed", set(&["1", "two", "3", "007"]));
    add("set:big", RdbValue::Set((0..1000).map(|i| format!("member:{i}").into_bytes()).collect()));
    // hashes
    add("hash:small", hash(&[("f1", "v1"), ("n", "42"), ("neg", "-42"), ("e", "")]));
    add("hash:longval", RdbValue::Hash(vec![(b("f"), vec![b'v'; 65]), (b("g"), b("short"))]));
    add("hash:longfield", RdbValue::Hash(vec![(vec![b'f'; 65], b("v"))]));
    add(
        "hash:big",
        RdbValue::Hash((0..1000).map(|i| (format!("field:{i}").into_bytes(), i.to_string().into_bytes())).collect()),
    );
    add(
        "hash:128",
        RdbValue::Hash((0..128).map(|i| (format!("f{i}").into_bytes(), format!("v{i}").into_bytes())).collect()),
    );
    // sorted sets
    add(
        "zset:small",
        zset(&[
            ("one", 1.0),
            ("half", 0.5),
            ("tenth", 0.1),
            ("neginf", f64::NEG_INFINITY),
            ("posinf", f64::INFINITY),
            ("negzero", -0.0),
            ("huge", 1e300),
            ("tiny", -2.5e-300),
            ("bigint", 9_007_199_254_740_993.0),
            ("i", -17.0),
        ]),
    );
    add(
        "zset:ties",
        RdbValue::SortedSet((0..50).map(|i| (format!("m{}", 49 - i).into_bytes(), f64::from(i % 3))).collect()),
    );
    add(
        "zset:big",
        RdbValue::SortedSet((0..300).map(|i| (format!("member-{i}").into_bytes(), f64::from(i) / 7.0)).collect()),
    );
    add("zset:longmember", RdbValue::SortedSet(vec![(vec![b'm'; 100], 2.0), (b("x"), 1.0)]));
    add("stream", sample_stream());
    v
}

/// A stream of 250 entries over three nodes, with entries whose fields differ from their
/// node's master entry, a deletion recorded and more entries added than kept.
pub fn sample_stream() -> RdbValue {
    use staykv_rdb::{RdbStream, RdbStreamEntry, RdbStreamId};
    let entries: Vec<RdbStreamEntry> = (0..250u64)
        .map(|i| RdbStreamEntry {
            id: RdbStreamId { ms: 1_700_000_000_000 + i / 3, seq: i % 3 },
            fields: if i.is_multiple_of(7) {
                vec![b("other"), i.to_string().into_bytes(), b("big"), vec![b'y'; 300]]
            } else {
                vec![b("event"), b("added"), b("jobId"), i.to_string().into_bytes()]
            },
        })
        .collect();
    RdbValue::Stream(Box::new(RdbStream {
        first_id: entries[0].id,
        last_id: RdbStreamId { ms: 1_800_000_000_000, seq: 7 },
        max_deleted_id: RdbStreamId { ms: 1_700_000_000_000, seq: 0 },
        entries_added: 400,
        entries,
        nodes: Vec::new(),
        groups: Vec::new(),
    }))
}

/// The score text used to send a score to redis-server.
pub fn score_arg(f: f64) -> String {
    if f.is_infinite() {
        if f > 0.0 {
            "+inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{f:e}")
    }
}

impl Redis {
    /// Creates `key` holding `value` with ordinary commands.
    pub fn put(&mut self, key: &[u8], value: &RdbValue) {
        let mut args: Vec<Vec<u8>> = Vec::new();
        match value {
            RdbValue::String(x) => {
                args.push(b("SET"));
                args.push(key.to_vec());
                args.push(x.clone());
            }
            RdbValue::List(items) => {
                args.push(b("RPUSH"));
                args.push(key.to_vec());
                args.extend(items.iter().cloned());
            }
            RdbValue::Set(items) => {
                args.push(b("SADD"));
                args.push(key.to_vec());
                args.extend(items.iter().cloned());
            }
            RdbValue::Hash(pairs) => {
                args.push(b("HSET"));
                args.push(key.to_vec());
                for (f, v) in pairs {
                    args.push(f.clone());
                    args.push(v.clone());
                }
            }
            RdbValue::SortedSet(pairs) => {
                args.push(b("ZADD"));
                args.push(key.to_vec());
                for (m, sc) in pairs {
                    args.push(score_arg(*sc).into_bytes());
                    args.push(m.clone());
                }
            }
            RdbValue::Stream(stream) => {
                assert!(stream.groups.is_empty(), "put() builds streams without groups");
                for entry in &stream.entries {
                    let mut xadd =
                        vec![b("XADD"), key.to_vec(), format!("{}-{}", entry.id.ms, entry.id.seq).into_bytes()];
                    xadd.extend(entry.fields.iter().cloned());
                    self.ok(&xadd);
                }
                let id = |i: staykv_rdb::RdbStreamId| format!("{}-{}", i.ms, i.seq).into_bytes();
                args.extend([b("XSETID"), key.to_vec(), id(stream.last_id), b("ENTRIESADDED")]);
                args.push(stream.entries_added.to_string().into_bytes());
                args.extend([b("MAXDELETEDID"), id(stream.max_deleted_id)]);
            }
        }
        self.ok(&args);
    }
}

/// A random value of random type and size (sets/hashes/zsets without duplicates).
pub fn random_value(rng: &mut Rng) -> RdbValue {
    let n = match rng.below(10) {
        0 => 1,
        1..=6 => 1 + rng.below(20),
        7 | 8 => 100 + rng.below(400),
        _ => 600 + rng.below(1500),
    };
    let max_len = if rng.below(5) == 0 { 300 } else { 40 };
    match rng.below(5) {
        0 => {
            let len = if rng.below(10) == 0 { 20_000 } else { max_len };
            RdbValue::String(rng.bytes(len))
        }
        1 => RdbValue::List((0..n).map(|_| rng.bytes(max_len)).collect()),
        2 => {
            let mut m: Vec<Vec<u8>> = (0..n).map(|_| rng.bytes(max_len)).collect();
            m.sort();
            m.dedup();
            RdbValue::Set(m)
        }
        3 => {
            let mut m: Vec<(Vec<u8>, Vec<u8>)> = (0..n).map(|_| (rng.bytes(max_len), rng.bytes(max_len))).collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            m.dedup_by(|a, b| a.0 == b.0);
            RdbValue::Hash(m)
        }
        _ => {
            let mut m: Vec<(Vec<u8>, f64)> = (0..n)
                .map(|_| {
                    let score = match rng.below(4) {
                        0 => rng.below(1000) as f64,
                        1 => (rng.next() as i64) as f64 / 1e6,
                        2 => f64::from_bits(rng.next() >> 2),
                        _ => -(rng.below(50) as f64) / 3.0,
                    };
                    (rng.bytes(max_len), score)
                })
                .collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            m.dedup_by(|a, b| a.0 == b.0);
            RdbValue::SortedSet(m)
        }
    }
}

/// Every other key, by the parity of its bytes' sum: a filter that keeps some keys of
/// every type in a file with many.
pub fn odd_keys(_db: u32, key: &[u8]) -> bool {
    key.iter().map(|&b| u32::from(b)).sum::<u32>() % 2 == 1
}

/// Reads `bytes` keeping only the keys `keep` accepts, and checks the result against a full
/// read: the same items in the same order, less the keys left out, and the whole file
/// consumed (checksum included). Returns how many keys were left out.
pub fn assert_filtered_read_agrees(bytes: &[u8], keep: fn(u32, &[u8]) -> bool) -> usize {
    let all = read_all(bytes).unwrap();
    let mut r = RdbReader::new(bytes).unwrap();
    let mut filtered = Vec::new();
    while let Some(item) = r.next_item_where(keep).unwrap() {
        filtered.push(item);
    }
    assert!(r.is_finished());
    assert_eq!(r.bytes_read(), bytes.len() as u64);
    let expected: Vec<RdbItem> = all
        .iter()
        .filter(|item| match item {
            RdbItem::Entry(e) => keep(e.db, &e.key),
            RdbItem::Unsupported { db, key, .. } => keep(*db, key),
            RdbItem::Aux { .. } => true,
        })
        .cloned()
        .collect();
    assert_eq!(filtered, expected);
    all.len() - expected.len()
}
