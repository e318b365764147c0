//! Helpers of the durability, snapshot and import/export tests: RESP values, dumping a whole
//! dataset key by key (type, value, TTL) from a live server, comparing two dumps, running the
//! `staykv` subcommands, and writing a dataset that uses every encoding.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{encode, RawConn};

/// A parsed RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Val>>),
}

impl Val {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Val::Bulk(Some(b)) => b.clone(),
            Val::Simple(s) => s.as_bytes().to_vec(),
            Val::Int(n) => n.to_string().into_bytes(),
            other => panic!("not a string reply: {other:?}"),
        }
    }
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(n) => *n,
            other => panic!("not an integer reply: {other:?}"),
        }
    }
    pub fn items(&self) -> Vec<Val> {
        match self {
            Val::Array(Some(v)) => v.clone(),
            other => panic!("not an array reply: {other:?}"),
        }
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

/// Parse one complete RESP2 frame.
pub fn parse(frame: &[u8]) -> Val {
    let (v, used) = parse_at(frame, 0);
    assert_eq!(used, frame.len(), "trailing bytes in {:?}", String::from_utf8_lossy(frame));
    v
}

fn parse_at(buf: &[u8], pos: usize) -> (Val, usize) {
    let end = pos + buf[pos..].windows(2).position(|w| w == b"\r\n").expect("CRLF");
    let line = std::str::from_utf8(&buf[pos + 1..end]).expect("utf8 line").to_string();
    let next = end + 2;
    match buf[pos] {
        b'+' => (Val::Simple(line), next),
        b'-' => (Val::Error(line), next),
        b':' => (Val::Int(line.parse().unwrap()), next),
        b'$' => {
            let n: i64 = line.parse().unwrap();
            if n < 0 {
                (Val::Bulk(None), next)
            } else {
                let n = n as usize;
                (Val::Bulk(Some(buf[next..next + n].to_vec())), next + n + 2)
            }
        }
        b'*' => {
            let n: i64 = line.parse().unwrap();
            if n < 0 {
                return (Val::Array(None), next);
            }
            let mut items = Vec::new();
            let mut p = next;
            for _ in 0..n {
                let (v, q) = parse_at(buf, p);
                items.push(v);
                p = q;
            }
            (Val::Array(Some(items)), p)
        }
        other => panic!("unexpected frame type {:?}", other as char),
    }
}

/// Send one command and parse its reply.
pub fn call(conn: &mut RawConn, args: &[&[u8]]) -> Val {
    parse(&conn.cmd_bytes(args))
}

/// [`call`] with text arguments.
pub fn call_str(conn: &mut RawConn, args: &[&str]) -> Val {
    parse(&conn.cmd(args))
}

/// Send many commands in one write (pipelining) and parse every reply.
pub fn pipeline(conn: &mut RawConn, commands: &[Vec<Vec<u8>>]) -> Vec<Val> {
    let mut out = Vec::new();
    for c in commands {
        let args: Vec<&[u8]> = c.iter().map(|a| a.as_slice()).collect();
        out.extend_from_slice(&encode(&args));
    }
    conn.send(&out);
    commands.iter().map(|_| parse(&conn.read_frame().expect("reply"))).collect()
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// One key as a client sees it: type, value in a canonical form, absolute deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyDump {
    pub kind: String,
    /// Strings: `[value]`; lists: elements in order; sets: sorted members; hashes: sorted
    /// `field, value` pairs flattened; sorted sets: `member, score` in order; streams: each
    /// entry's ID and fields, then `name=value` lines of XINFO STREAM's bookkeeping.
    pub value: Vec<Vec<u8>>,
    /// Absolute deadline in Unix ms (computed from PTTL), if any.
    pub deadline: Option<u64>,
}

/// Every key of databases `0..dbs`, read with SCAN, TYPE, the type's read command and PTTL.
pub fn dump_all(conn: &mut RawConn, dbs: usize) -> BTreeMap<(usize, Vec<u8>), KeyDump> {
    let mut out = BTreeMap::new();
    for db in 0..dbs {
        assert_eq!(call_str(conn, &["SELECT", &db.to_string()]), Val::Simple("OK".into()));
        let mut keys = Vec::new();
        let mut cursor = b"0".to_vec();
        loop {
            let reply = call(conn, &[b"SCAN", &cursor, b"COUNT", b"1000"]).items();
            cursor = reply[0].bytes();
            keys.extend(reply[1].items().iter().map(Val::bytes));
            if cursor == b"0" {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        for key in keys {
            if let Some(dump) = dump_key(conn, &key) {
                out.insert((db, key), dump);
            }
        }
    }
    assert_eq!(call_str(conn, &["SELECT", "0"]), Val::Simple("OK".into()));
    out
}

/// One key's dump, or None if it does not exist.
pub fn dump_key(conn: &mut RawConn, key: &[u8]) -> Option<KeyDump> {
    let kind = call(conn, &[b"TYPE", key]).text();
    let value = match kind.as_str() {
        "none" => return None,
        "string" => vec![call(conn, &[b"GET", key]).bytes()],
        "list" => call(conn, &[b"LRANGE", key, b"0", b"-1"]).items().iter().map(Val::bytes).collect(),
        "set" => {
            let mut m: Vec<Vec<u8>> = call(conn, &[b"SMEMBERS", key]).items().iter().map(Val::bytes).collect();
            m.sort();
            m
        }
        "hash" => {
            let flat: Vec<Vec<u8>> = call(conn, &[b"HGETALL", key]).items().iter().map(Val::bytes).collect();
            let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = flat.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
            pairs.sort();
            pairs.into_iter().flat_map(|(f, v)| [f, v]).collect()
        }
        "zset" => call(conn, &[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]).items().iter().map(Val::bytes).collect(),
        "stream" => {
            // Entries (ID then fields), then the bookkeeping XINFO shows.
            let mut out = Vec::new();
            for entry in call(conn, &[b"XRANGE", key, b"-", b"+"]).items() {
                let parts = entry.items();
                out.push(parts[0].bytes());
                out.extend(parts[1].items().iter().map(Val::bytes));
            }
            let info = call(conn, &[b"XINFO", b"STREAM", key]).items();
            for pair in info.chunks(2) {
                let name = pair[0].text();
                if ["last-generated-id", "max-deleted-entry-id", "entries-added", "groups"].contains(&name.as_str()) {
                    out.push(format!("{name}={}", pair[1].text()).into_bytes());
                }
            }
            out
        }
        other => vec![format!("<{other}>").into_bytes()],
    };
    let before = now_ms();
    let pttl = call(conn, &[b"PTTL", key]).int();
    let deadline = (pttl >= 0).then(|| before + pttl as u64);
    Some(KeyDump { kind, value, deadline })
}

/// Asserts two dumps hold the same keys, types and values, and deadlines within `slack_ms`.
pub fn assert_same(
    left_name: &str,
    left: &BTreeMap<(usize, Vec<u8>), KeyDump>,
    right_name: &str,
    right: &BTreeMap<(usize, Vec<u8>), KeyDump>,
    slack_ms: u64,
) {
    let show = |k: &(usize, Vec<u8>)| format!("db{} {:?}", k.0, String::from_utf8_lossy(&k.1));
    let only_left: Vec<String> = left.keys().filter(|k| !right.contains_key(*k)).map(show).take(10).collect();
    let only_right: Vec<String> = right.keys().filter(|k| !left.contains_key(*k)).map(show).take(10).collect();
    assert!(only_left.is_empty(), "keys only in {left_name}: {only_left:?}");
    assert!(only_right.is_empty(), "keys only in {right_name}: {only_right:?}");
    for (k, l) in left {
        let r = &right[k];
        assert_eq!(l.kind, r.kind, "type of {}", show(k));
        assert!(
            l.value == r.value,
            "value of {} differs: {left_name} {:?} vs {right_name} {:?}",
            show(k),
            l.value.len(),
            r.value.len()
        );
        match (l.deadline, r.deadline) {
            (None, None) => {}
            (Some(a), Some(b)) => assert!(a.abs_diff(b) <= slack_ms, "TTL of {}: {a} vs {b}", show(k)),
            (a, b) => panic!("TTL of {}: {left_name} {a:?} vs {right_name} {b:?}", show(k)),
        }
    }
}

/// Run `staykv <args>` (a subcommand) and return its output.
pub fn staykv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_staykv")).args(args).env("NO_COLOR", "1").output().expect("run staykv")
}

/// [`staykv`] that must succeed; returns stdout + stderr as text.
pub fn staykv_ok(args: &[&str]) -> String {
    let out = staykv(args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "staykv {args:?} failed ({}):\n{text}", out.status);
    text
}

/// `INFO persistence` field.
pub fn info_field(conn: &mut RawConn, name: &str) -> String {
    let text = call_str(conn, &["INFO", "persistence"]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO persistence:\n{text}"))
        .trim()
        .to_string()
}

/// Copy every regular file of `from` into `to` (created).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Writes a dataset that makes Redis use every encoding of every type StayKV and Redis
/// share: int/embstr/raw/compressible strings; small (listpack) and large (quicklist) lists;
/// intset, small and large sets; small (listpack) and large (hashtable) hashes; small and
/// large sorted sets when `zsets`; keys with TTLs; keys in databases 0, 1 and 5.
pub fn populate(conn: &mut RawConn, zsets: bool) {
    let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
    let c = |parts: &[&[u8]]| parts.iter().map(|p| p.to_vec()).collect::<Vec<Vec<u8>>>();
    cmds.push(c(&[b"SET", b"s:int", b"12345"]));
    cmds.push(c(&[b"SET", b"s:neg", b"-70000"]));
    cmds.push(c(&[b"SET", b"s:big-int", b"123456789012345"]));
    cmds.push(c(&[b"SET", b"s:short", b"hello"]));
    cmds.push(c(&[b"SET", b"s:raw", &vec![b'x'; 300]]));
    cmds.push(c(&[b"SET", b"s:binary", &(0u8..=255).collect::<Vec<u8>>()]));
    cmds.push(c(&[b"SET", b"s:empty", b""]));
    cmds.push(c(&[b"SET", b"s:ttl", b"expires later", b"EX", b"3600"]));
    cmds.push(c(&[b"SET", b"session:abc", &vec![b'j'; 1024], b"PX", b"7200000"]));
    cmds.push(c(&[b"RPUSH", b"l:small", b"a", b"b", b"1", b"-2"]));
    let big_list: Vec<Vec<u8>> = (0..700).map(|i| format!("element-{i}-{}", "y".repeat(i % 90)).into_bytes()).collect();
    let mut cmd = c(&[b"RPUSH", b"l:big"]);
    cmd.extend(big_list);
    cmds.push(cmd);
    cmds.push(c(&[b"SADD", b"set:ints", b"1", b"2", b"3", b"-100", b"70000"]));
    cmds.push(c(&[b"SADD", b"set:small", b"a", b"b", b"c"]));
    let mut cmd = c(&[b"SADD", b"set:big"]);
    cmd.extend((0..600).map(|i| format!("member-{i}").into_bytes()));
    cmds.push(cmd);
    let mut cmd = c(&[b"SADD", b"set:bigints"]);
    cmd.extend((0..700).map(|i| (i * 7).to_string().into_bytes()));
    cmds.push(cmd);
    cmds.push(c(&[b"HSET", b"h:small", b"f1", b"v1", b"f2", b"2"]));
    let mut cmd = c(&[b"HSET", b"h:big"]);
    for i in 0..300 {
        cmd.push(format!("field-{i}").into_bytes());
        cmd.push(format!("value-{i}-{}", "z".repeat(i % 100)).into_bytes());
    }
    cmds.push(cmd);
    cmds.push(c(&[b"HSET", b"h:longvalue", b"f", &[b'v'; 100]]));
    cmds.push(c(&[b"EXPIRE", b"h:small", b"5000"]));
    if zsets {
        cmds.push(c(&[b"ZADD", b"z:small", b"1", b"a", b"2.5", b"b", b"-3", b"c"]));
        let mut cmd = c(&[b"ZADD", b"z:big"]);
        for i in 0..300 {
            cmd.push(format!("{}", i as f64 / 3.0).into_bytes());
            cmd.push(format!("m{i}").into_bytes());
        }
        cmds.push(cmd);
    }
    cmds.push(c(&[b"SELECT", b"1"]));
    cmds.push(c(&[b"SET", b"db1:key", b"in db 1"]));
    cmds.push(c(&[b"RPUSH", b"db1:list", b"x"]));
    cmds.push(c(&[b"SELECT", b"5"]));
    cmds.push(c(&[b"HSET", b"db5:hash", b"a", b"b"]));
    cmds.push(c(&[b"SET", b"db5:ttl", b"v", b"PX", b"9000000"]));
    cmds.push(c(&[b"SELECT", b"0"]));
    for (i, r) in pipeline(conn, &cmds).into_iter().enumerate() {
        assert!(!matches!(r, Val::Error(_)), "populate command {i} failed: {r:?}");
    }
}

/// Loads function library `name`, whose one function `<name>_who` returns `name`.
pub fn load_library(conn: &mut RawConn, name: &str) {
    let code = format!("#!lua name={name}\nredis.register_function('{name}_who', function() return '{name}' end)");
    assert_eq!(call_str(conn, &["FUNCTION", "LOAD", &code]), Val::Bulk(Some(name.as_bytes().to_vec())));
}

/// Asserts that the server holds exactly the libraries `names` (loaded by [`load_library`])
/// and that each one's function runs.
pub fn assert_libraries(conn: &mut RawConn, names: &[&str], what: &str) {
    let mut held: Vec<String> = call_str(conn, &["FUNCTION", "LIST"])
        .items()
        .iter()
        .map(|library| {
            let fields = library.items();
            let at = fields.iter().position(|f| f.text() == "library_name").expect("library_name");
            fields[at + 1].text()
        })
        .collect();
    held.sort();
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(held, want, "function libraries of {what}");
    for name in names {
        let reply = call_str(conn, &["FCALL", &format!("{name}_who"), "0"]);
        assert_eq!(reply, Val::Bulk(Some(name.as_bytes().to_vec())), "FCALL {name}_who on {what}");
    }
}
