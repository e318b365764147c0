//! Soak (not a test: run by `bench/soak`): mixed load over RESP and HTTP for a long time,
//! random client kills, one SIGKILL and restart in the middle, every acknowledged write
//! checked against a client-side model, and the server's memory sampled every 10 s.
//!
//! - A release `staykv` (`--fsync always`, temporary `--dir`, ephemeral ports, an HTTP
//!   token).
//! - Writers, each owning its keys (a fixed key space, so it saturates): 4 over RESP and
//!   2 over HTTP (`POST /` and `POST /pipeline`), random `SET .. EX` / `SET`, `INCR`,
//!   `HSET`, `SADD`, `DEL`. Every reply is checked against the model (INCR's new value,
//!   HSET/SADD's "new or not", DEL's count) and every acknowledged write goes into the
//!   model: per key the last acknowledged value and its TTL deadline (a window: from when
//!   the command was sent to when its reply came).
//! - Readers: 2 over RESP, 1 over HTTP (GET, HGETALL, SMEMBERS, MGET, EXISTS, PTTL).
//! - Kills: a control connection kills a random load client (`CLIENT KILL ID`) every 1-4 s;
//!   writers drop their own connection abruptly right after sending a write (about 1 in
//!   2,000 writes). A write in flight at a kill may or may not apply: the key is then
//!   checked against both states (after the killed connection is gone from `CLIENT LIST`)
//!   and the server's state is adopted.
//! - Restart: once, at half time, SIGKILL under load, then a restart on the same `--dir`;
//!   the load waits while every key is verified, then goes on.
//! - At the end: every key verified (present with its value and TTL, or absent after DEL
//!   or expiry), and a SCAN finds no key nobody wrote.
//!
//! ```text
//! cargo run --release -p staykv --example soak -- [SECONDS]    (default 1200)
//! ```
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use common::{bad_data, binary, free_port, proc_kib, read_reply, staykv_command, Reply};

const TOKEN: &str = "soak-token";
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Tolerance on TTL deadlines, in ms (client and server read the same clock).
const SLACK: u64 = 50;
const STRINGS: usize = 1500;
const COUNTERS: usize = 100;
const HASHES: usize = 150;
const SETS: usize = 150;
const RESP_WRITERS: usize = 4;
const HTTP_WRITERS: usize = 2;
const RESP_READERS: usize = 2;
const HTTP_READERS: usize = 1;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// RESP

fn encode(args: &[String]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

struct Conn {
    r: BufReader<TcpStream>,
    /// Server epoch (restart count) and client id, to wait for a killed connection to go.
    epoch: u64,
    id: i64,
}

impl Conn {
    /// Connects, names the connection (kill targets are the `soak-w*`/`soak-r*` ones) and
    /// learns its id; fails while the server is down or loading.
    fn open(port: u16, name: &str, epoch: u64) -> std::io::Result<Conn> {
        let s = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), IO_TIMEOUT)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut c = Conn { r: BufReader::new(s), epoch, id: 0 };
        match c.call(&strings(&["CLIENT", "SETNAME", name]))? {
            Reply::Simple(ok) if ok == "OK" => {}
            other => return Err(bad_data(format!("CLIENT SETNAME: {}", other.text()))),
        }
        c.id = match c.call(&strings(&["CLIENT", "ID"]))? {
            Reply::Int(id) => id,
            other => return Err(bad_data(format!("CLIENT ID: {}", other.text()))),
        };
        Ok(c)
    }

    fn send(&mut self, args: &[String]) -> std::io::Result<()> {
        self.r.get_mut().write_all(&encode(args))
    }

    fn call(&mut self, args: &[String]) -> std::io::Result<Reply> {
        self.send(args)?;
        read_reply(&mut self.r)
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP: a minimal blocking HTTP/1.1 keep-alive client

struct Http {
    r: BufReader<TcpStream>,
}

impl Http {
    fn open(port: u16) -> std::io::Result<Http> {
        let s = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), IO_TIMEOUT)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Http { r: BufReader::new(s) })
    }

    fn send(&mut self, path: &str, body: &[u8]) -> std::io::Result<()> {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.r.get_mut().write_all(&req)
    }

    /// POSTs a JSON body; returns the status and the parsed JSON answer.
    fn post(&mut self, path: &str, body: &serde_json::Value) -> std::io::Result<(u16, serde_json::Value)> {
        self.send(path, body.to_string().as_bytes())?;
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "HTTP connection closed"));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad_data(format!("bad HTTP status line {line:?}")))?;
        let (mut length, mut chunked) = (None, false);
        loop {
            let mut h = String::new();
            if self.r.read_line(&mut h)? == 0 {
                return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "HTTP connection closed in the head"));
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                self.r.read_line(&mut size)?;
                let n =
                    usize::from_str_radix(size.trim(), 16).map_err(|_| bad_data(format!("bad chunk size {size:?}")))?;
                let mut chunk = vec![0u8; n + 2];
                self.r.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            let n = length.ok_or_else(|| bad_data("HTTP answer without a length".into()))?;
            body.resize(n, 0);
            self.r.read_exact(&mut body)?;
        }
        let json = serde_json::from_slice(&body).map_err(|e| {
            bad_data(format!("HTTP {status} answer is not JSON ({e}): {}", String::from_utf8_lossy(&body)))
        })?;
        Ok((status, json))
    }
}

// ---------------------------------------------------------------------------------------------
// The model

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Absent,
    /// A string; with a TTL, the deadline is somewhere in `[lo, hi]` (ms since the epoch).
    Str {
        value: String,
        ttl: Option<(u64, u64)>,
    },
    Int(i64),
    Hash(BTreeMap<String, String>),
    Set(BTreeSet<String>),
}

impl Val {
    fn int(&self) -> i64 {
        match self {
            Val::Int(n) => *n,
            _ => 0,
        }
    }

    fn short(&self) -> String {
        match self {
            Val::Str { value, ttl } => {
                let v: String = value.chars().take(24).collect();
                format!("Str({v}.. len {}, ttl {ttl:?})", value.len())
            }
            other => {
                let text = format!("{other:?}");
                text.chars().take(200).collect()
            }
        }
    }
}

/// `cur`: the state after the last write; `alt`: the state before it, while it is not
/// known whether that write (in flight at a kill) applied.
#[derive(Debug, Clone)]
struct KeyState {
    cur: Val,
    alt: Option<Val>,
}

type Model = BTreeMap<String, KeyState>;

/// What the server has for a key.
#[derive(Debug, Clone, PartialEq)]
enum Obs {
    Absent,
    Str(String, i64),
    Hash(BTreeMap<String, String>),
    Set(BTreeSet<String>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Counter,
    Hash,
    Set,
}

fn kind_of(key: &str) -> Kind {
    match key.split(':').nth(2) {
        Some("s") => Kind::Str,
        Some("c") => Kind::Counter,
        Some("h") => Kind::Hash,
        Some("z") => Kind::Set,
        _ => panic!("not a soak key: {key}"),
    }
}

/// Whether the server's state `obs` (read between `t0` and `t1`) is `val`; if so, `val`
/// as it should now be kept (an expired string becomes Absent, a TTL window narrows).
fn matches(val: &Val, obs: &Obs, t0: u64, t1: u64) -> Option<Val> {
    match (val, obs) {
        (Val::Absent, Obs::Absent) => Some(Val::Absent),
        (Val::Str { value, ttl: None }, Obs::Str(v, -1)) if v == value => Some(val.clone()),
        (Val::Str { ttl: Some((lo, _)), .. }, Obs::Absent) if t1 + SLACK >= *lo => Some(Val::Absent),
        (Val::Str { value, ttl: Some((lo, hi)) }, Obs::Str(v, p)) if v == value && *p >= 0 => {
            let p = *p as u64;
            // Present: its deadline must not have passed before the read began, and the
            // deadline the server reports must fall in the window.
            (t0 + p <= hi + SLACK && t1 + p + SLACK >= *lo && t0 <= hi + SLACK)
                .then(|| Val::Str { value: value.clone(), ttl: Some((*lo, (*hi).min(t1 + p + SLACK).max(*lo))) })
        }
        (Val::Int(n), Obs::Str(v, -1)) if *v == n.to_string() => Some(val.clone()),
        (Val::Hash(m), Obs::Hash(o)) if m == o => Some(val.clone()),
        (Val::Set(m), Obs::Set(o)) if m == o => Some(val.clone()),
        _ => None,
    }
}

fn fetch(conn: &mut Conn, key: &str) -> std::io::Result<Obs> {
    let k = key.to_string();
    match kind_of(key) {
        Kind::Str | Kind::Counter => {
            let mut out = encode(&strings(&["MULTI"]));
            out.extend(encode(&["GET".into(), k.clone()]));
            out.extend(encode(&["PTTL".into(), k]));
            out.extend(encode(&strings(&["EXEC"])));
            conn.r.get_mut().write_all(&out)?;
            for _ in 0..3 {
                read_reply(&mut conn.r)?; // +OK +QUEUED +QUEUED
            }
            match read_reply(&mut conn.r)? {
                Reply::Array(Some(items)) => match items.as_slice() {
                    [Reply::Bulk(None), _] | [_, Reply::Int(-2)] => Ok(Obs::Absent),
                    [Reply::Bulk(Some(v)), Reply::Int(p)] => Ok(Obs::Str(String::from_utf8_lossy(v).into_owned(), *p)),
                    other => Err(bad_data(format!("GET/PTTL {key}: {other:?}"))),
                },
                other => Err(bad_data(format!("EXEC for {key}: {}", other.text()))),
            }
        }
        Kind::Hash => match conn.call(&["HGETALL".into(), k])? {
            Reply::Array(Some(items)) if items.is_empty() => Ok(Obs::Absent),
            Reply::Array(Some(items)) => {
                let mut m = BTreeMap::new();
                for pair in items.chunks(2) {
                    if let [f, v] = pair {
                        m.insert(f.text(), v.text());
                    }
                }
                Ok(Obs::Hash(m))
            }
            other => Err(bad_data(format!("HGETALL {key}: {}", other.text()))),
        },
        Kind::Set => match conn.call(&["SMEMBERS".into(), k])? {
            Reply::Array(Some(items)) if items.is_empty() => Ok(Obs::Absent),
            Reply::Array(Some(items)) => Ok(Obs::Set(items.iter().map(Reply::text).collect())),
            other => Err(bad_data(format!("SMEMBERS {key}: {}", other.text()))),
        },
    }
}

/// A write to a key the writer owns.
#[derive(Debug, Clone)]
enum Op {
    Set { key: String, value: String, ex: Option<u64> },
    Incr { key: String },
    Hset { key: String, field: String, value: String },
    Sadd { key: String, member: String },
    Del { key: String },
}

impl Op {
    fn key(&self) -> &str {
        match self {
            Op::Set { key, .. } | Op::Incr { key } | Op::Hset { key, .. } | Op::Sadd { key, .. } | Op::Del { key } => {
                key
            }
        }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Op::Set { key, value, ex: Some(ex) } => {
                vec!["SET".into(), key.clone(), value.clone(), "EX".into(), ex.to_string()]
            }
            Op::Set { key, value, ex: None } => vec!["SET".into(), key.clone(), value.clone()],
            Op::Incr { key } => vec!["INCR".into(), key.clone()],
            Op::Hset { key, field, value } => vec!["HSET".into(), key.clone(), field.clone(), value.clone()],
            Op::Sadd { key, member } => vec!["SADD".into(), key.clone(), member.clone()],
            Op::Del { key } => vec!["DEL".into(), key.clone()],
        }
    }

    /// The key's state once this write applied, sent at `t_send`, answered by `t_ack`.
    fn after(&self, before: &Val, t_send: u64, t_ack: u64) -> Val {
        match self {
            Op::Set { value, ex, .. } => {
                Val::Str { value: value.clone(), ttl: ex.map(|ex| (t_send + ex * 1000, t_ack + ex * 1000)) }
            }
            Op::Incr { .. } => Val::Int(before.int() + 1),
            Op::Hset { field, value, .. } => {
                let mut m = match before {
                    Val::Hash(m) => m.clone(),
                    _ => BTreeMap::new(),
                };
                m.insert(field.clone(), value.clone());
                Val::Hash(m)
            }
            Op::Sadd { member, .. } => {
                let mut s = match before {
                    Val::Set(s) => s.clone(),
                    _ => BTreeSet::new(),
                };
                s.insert(member.clone());
                Val::Set(s)
            }
            Op::Del { .. } => Val::Absent,
        }
    }

    /// Checks the reply against the model state before the write.
    fn check(&self, before: &Val, reply: &Res, t_send: u64, t_ack: u64) -> Result<(), String> {
        let ok = match (self, reply) {
            (Op::Set { .. }, Res::Simple(s)) => s == "OK",
            (Op::Incr { .. }, Res::Int(n)) => *n == before.int() + 1,
            (Op::Hset { field, .. }, Res::Int(n)) => {
                let new = !matches!(before, Val::Hash(m) if m.contains_key(field));
                *n == i64::from(new)
            }
            (Op::Sadd { member, .. }, Res::Int(n)) => {
                let new = !matches!(before, Val::Set(s) if s.contains(member));
                *n == i64::from(new)
            }
            (Op::Del { .. }, Res::Int(n)) => match before {
                Val::Absent => *n == 0,
                Val::Str { ttl: Some((lo, hi)), .. } => {
                    if t_send > hi + SLACK {
                        *n == 0
                    } else if t_ack + SLACK < *lo {
                        *n == 1
                    } else {
                        *n == 0 || *n == 1
                    }
                }
                _ => *n == 1,
            },
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{:?} on {}: reply {reply:?}, model before: {}", self.args()[0], self.key(), before.short()))
        }
    }
}

/// A reply from either protocol.
#[derive(Debug, Clone, PartialEq)]
enum Res {
    Simple(String),
    Int(i64),
    Error(String),
    Other(String),
}

impl From<Reply> for Res {
    fn from(r: Reply) -> Res {
        match r {
            Reply::Simple(s) => Res::Simple(s),
            Reply::Int(n) => Res::Int(n),
            Reply::Error(e) => Res::Error(e),
            other => Res::Other(other.text()),
        }
    }
}

fn res_from_json(v: &serde_json::Value) -> Res {
    if let Some(e) = v.get("error") {
        return Res::Error(e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string()));
    }
    match v.get("result") {
        Some(serde_json::Value::String(s)) => Res::Simple(s.clone()),
        Some(serde_json::Value::Number(n)) => n.as_i64().map(Res::Int).unwrap_or_else(|| Res::Other(n.to_string())),
        other => Res::Other(format!("{other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    hold: AtomicBool,
    parked: AtomicUsize,
    epoch: AtomicU64,
    resp_port: u16,
    http_port: u16,
    resp_ops: AtomicU64,
    resp_writes: AtomicU64,
    http_ops: AtomicU64,
    http_writes: AtomicU64,
    http_requests: AtomicU64,
    drops: AtomicU64,
    connections_lost: AtomicU64,
    in_flight: AtomicU64,
    in_flight_applied: AtomicU64,
    failures: AtomicU64,
    lost: AtomicU64,
    failure_texts: Mutex<Vec<String>>,
    models: Mutex<Vec<Arc<Mutex<Model>>>>,
}

impl Shared {
    fn fail(&self, text: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut texts = self.failure_texts.lock().expect("failure list lock");
        if texts.len() < 50 {
            eprintln!("FAILURE: {text}");
            texts.push(text);
        }
    }

    /// While the controller restarts the server, wait here.
    fn park_if_held(&self) {
        if self.hold.load(Ordering::SeqCst) {
            self.parked.fetch_add(1, Ordering::SeqCst);
            while self.hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            self.parked.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A connection, once the server is up (parks while the controller holds the load).
    fn connect(&self, name: &str) -> Conn {
        loop {
            self.park_if_held();
            let epoch = self.epoch.load(Ordering::SeqCst);
            match Conn::open(self.resp_port, name, epoch) {
                Ok(c) => return c,
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn http(&self) -> Http {
        loop {
            self.park_if_held();
            match Http::open(self.http_port) {
                Ok(h) => return h,
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Verify one key against its model state and adopt what the server has. Returns
    /// whether the key's last write was uncertain and applied (Some(true/false)).
    fn verify_key(&self, conn: &mut Conn, key: &str, state: &mut KeyState) -> std::io::Result<Option<bool>> {
        let t0 = now_ms();
        let obs = fetch(conn, key)?;
        let t1 = now_ms();
        if let Some(v) = matches(&state.cur, &obs, t0, t1) {
            state.cur = v;
            return Ok(state.alt.take().map(|_| true));
        }
        if let Some(alt) = &state.alt {
            if let Some(v) = matches(alt, &obs, t0, t1) {
                state.cur = v;
                state.alt = None;
                return Ok(Some(false));
            }
        }
        let present_in_model = !matches!(state.cur, Val::Absent)
            && !matches!(state.cur, Val::Str { ttl: Some((_, hi)), .. } if t0 > hi + SLACK);
        let what = if obs == Obs::Absent {
            self.lost.fetch_add(1, Ordering::Relaxed);
            "LOST (acknowledged write missing)"
        } else if !present_in_model {
            "BACK after DEL or expiry"
        } else {
            "WRONG value or TTL"
        };
        let obs_text: String = format!("{obs:?}").chars().take(200).collect();
        self.fail(format!(
            "{what}: {key}: server has {obs_text}, model {} (alt {:?}) at {t0}",
            state.cur.short(),
            state.alt.as_ref().map(Val::short)
        ));
        // Adopt the server's state, so that one failure is reported once.
        state.cur = match obs {
            Obs::Absent => Val::Absent,
            Obs::Str(v, p) => match kind_of(key) {
                Kind::Counter => Val::Int(v.parse().unwrap_or(0)),
                _ => Val::Str { value: v, ttl: (p >= 0).then(|| (t0 + p as u64, t1 + p as u64 + SLACK)) },
            },
            Obs::Hash(m) => Val::Hash(m),
            Obs::Set(s) => Val::Set(s),
        };
        state.alt = None;
        Ok(None)
    }

    fn count_resolution(&self, applied: Option<bool>) {
        if let Some(applied) = applied {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            if applied {
                self.in_flight_applied.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Every key of every model; returns how many were checked.
    fn verify_all(&self, conn: &mut Conn) -> std::io::Result<usize> {
        let models: Vec<Arc<Mutex<Model>>> = self.models.lock().expect("models lock").clone();
        let mut checked = 0;
        for model in models {
            let mut model = model.lock().expect("model lock");
            for (key, state) in model.iter_mut() {
                let applied = self.verify_key(conn, key, state)?;
                self.count_resolution(applied);
                checked += 1;
            }
        }
        Ok(checked)
    }
}

// ---------------------------------------------------------------------------------------------
// Load

fn key_space(owner: &str) -> Vec<String> {
    let mut keys = Vec::new();
    keys.extend((0..STRINGS).map(|i| format!("soak:{owner}:s:{i}")));
    keys.extend((0..COUNTERS).map(|i| format!("soak:{owner}:c:{i}")));
    keys.extend((0..HASHES).map(|i| format!("soak:{owner}:h:{i}")));
    keys.extend((0..SETS).map(|i| format!("soak:{owner}:z:{i}")));
    keys
}

fn random_op(rng: &mut SmallRng, owner: &str, seq: u64) -> Op {
    let roll = rng.gen_range(0..100);
    if roll < 45 {
        let len = rng.gen_range(64..2048);
        let mut value = format!("{owner}.{seq}.");
        let fill = char::from(b'a' + (seq % 26) as u8);
        value.extend(std::iter::repeat_n(fill, len));
        let ex = match rng.gen_range(0..10) {
            0..=2 => None,
            3..=6 => Some(rng.gen_range(2..30)),
            _ => Some(rng.gen_range(60..600)),
        };
        Op::Set { key: format!("soak:{owner}:s:{}", rng.gen_range(0..STRINGS)), value, ex }
    } else if roll < 60 {
        Op::Incr { key: format!("soak:{owner}:c:{}", rng.gen_range(0..COUNTERS)) }
    } else if roll < 75 {
        Op::Hset {
            key: format!("soak:{owner}:h:{}", rng.gen_range(0..HASHES)),
            field: format!("f{}", rng.gen_range(0..20)),
            value: format!("{owner}.{seq}.{}", "h".repeat(rng.gen_range(8..64))),
        }
    } else if roll < 90 {
        Op::Sadd {
            key: format!("soak:{owner}:z:{}", rng.gen_range(0..SETS)),
            member: format!("m{}", rng.gen_range(0..40)),
        }
    } else {
        let key = match rng.gen_range(0..4) {
            0 | 1 => format!("soak:{owner}:s:{}", rng.gen_range(0..STRINGS)),
            2 => format!("soak:{owner}:c:{}", rng.gen_range(0..COUNTERS)),
            _ => {
                if rng.gen_bool(0.5) {
                    format!("soak:{owner}:h:{}", rng.gen_range(0..HASHES))
                } else {
                    format!("soak:{owner}:z:{}", rng.gen_range(0..SETS))
                }
            }
        };
        Op::Del { key }
    }
}

fn new_model(shared: &Shared, owner: &str) -> Arc<Mutex<Model>> {
    let model: Model = key_space(owner).into_iter().map(|k| (k, KeyState { cur: Val::Absent, alt: None })).collect();
    let model = Arc::new(Mutex::new(model));
    shared.models.lock().expect("models lock").push(model.clone());
    model
}

/// Resolve the keys whose last write was in flight when a connection was lost: wait for
/// the old connection to be gone from the server (it may still run what it received),
/// then check each key against both states.
fn resolve(shared: &Shared, name: &str, old: Option<(u64, i64)>, pending: &mut Vec<String>, model: &Mutex<Model>) {
    if pending.is_empty() {
        return;
    }
    'retry: loop {
        let mut conn = shared.connect(name);
        if let Some((epoch, id)) = old {
            if epoch == conn.epoch {
                let started = Instant::now();
                loop {
                    let Ok(list) = conn.call(&["CLIENT".into(), "LIST".into(), "ID".into(), id.to_string()]) else {
                        continue 'retry;
                    };
                    if !list.text().contains(&format!("id={id} ")) {
                        break;
                    }
                    if started.elapsed() > Duration::from_secs(60) {
                        shared.fail(format!("connection id={id} still listed 60 s after it was lost"));
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            } else {
                // The server restarted: nothing of the old connection can still run.
            }
        } else {
            // An HTTP request: no id to wait for; the server runs a request at once.
            std::thread::sleep(Duration::from_millis(500));
        }
        let mut model = model.lock().expect("model lock");
        for key in pending.iter() {
            let state = model.get_mut(key).expect("a pending key is in the model");
            if state.alt.is_none() {
                continue; // resolved by the controller's verification after the restart
            }
            match shared.verify_key(&mut conn, key, state) {
                Ok(applied) => shared.count_resolution(applied),
                Err(_) => continue 'retry,
            }
        }
        pending.clear();
        return;
    }
}

fn resp_writer(shared: Arc<Shared>, w: usize, seed: u64) {
    let owner = format!("w{w}");
    let name = format!("soak-w{w}");
    let model = new_model(&shared, &owner);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut conn: Option<Conn> = None;
    let mut pending: Vec<String> = Vec::new();
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        shared.park_if_held();
        let c = match conn.as_mut() {
            Some(c) => c,
            None => conn.insert(shared.connect(&name)),
        };
        seq += 1;
        let op = random_op(&mut rng, &owner, seq);
        let before = model.lock().expect("model lock")[op.key()].cur.clone();
        let t_send = now_ms();
        let drop_it = rng.gen_range(0..2000) == 0;
        let result = if drop_it {
            let _ = c.send(&op.args());
            shared.drops.fetch_add(1, Ordering::Relaxed);
            Err(std::io::Error::other("dropped by the client"))
        } else {
            c.call(&op.args())
        };
        let t_ack = now_ms();
        match result {
            Ok(reply) => {
                let reply = Res::from(reply);
                shared.resp_ops.fetch_add(1, Ordering::Relaxed);
                shared.resp_writes.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = op.check(&before, &reply, t_send, t_ack) {
                    shared.fail(e);
                }
                let after = match (&op, &reply) {
                    (Op::Incr { .. }, Res::Int(n)) => Val::Int(*n),
                    _ => op.after(&before, t_send, t_ack),
                };
                model.lock().expect("model lock").insert(op.key().to_string(), KeyState { cur: after, alt: None });
            }
            Err(_) => {
                // In flight: it may or may not apply.
                let after = op.after(&before, t_send, t_send + 600_000 + 60_000);
                model
                    .lock()
                    .expect("model lock")
                    .insert(op.key().to_string(), KeyState { cur: after, alt: Some(before) });
                pending.push(op.key().to_string());
                if !drop_it {
                    shared.connections_lost.fetch_add(1, Ordering::Relaxed);
                }
                let old = conn.take().map(|c| (c.epoch, c.id));
                resolve(&shared, &name, old, &mut pending, &model);
            }
        }
    }
}

fn http_writer(shared: Arc<Shared>, w: usize, seed: u64) {
    let owner = format!("h{w}");
    let verify_name = format!("soak-verify-h{w}");
    let model = new_model(&shared, &owner);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut http: Option<Http> = None;
    let mut pending: Vec<String> = Vec::new();
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        shared.park_if_held();
        let h = match http.as_mut() {
            Some(h) => h,
            None => http.insert(shared.http()),
        };
        // One command (POST /) or a pipeline of 2-8 commands on distinct keys.
        let count = if rng.gen_bool(0.5) { 1 } else { rng.gen_range(2..=8) };
        let mut ops: Vec<Op> = Vec::new();
        while ops.len() < count {
            seq += 1;
            let op = random_op(&mut rng, &owner, seq);
            if ops.iter().all(|o| o.key() != op.key()) {
                ops.push(op);
            }
        }
        let befores: Vec<Val> = {
            let m = model.lock().expect("model lock");
            ops.iter().map(|o| m[o.key()].cur.clone()).collect()
        };
        let (path, body) = if count == 1 {
            ("/", serde_json::json!(ops[0].args()))
        } else {
            ("/pipeline", serde_json::Value::Array(ops.iter().map(|o| serde_json::json!(o.args())).collect()))
        };
        let t_send = now_ms();
        let drop_it = rng.gen_range(0..(2000 / count as u32)) == 0;
        let result = if drop_it {
            let _ = h.send(path, body.to_string().as_bytes());
            shared.drops.fetch_add(1, Ordering::Relaxed);
            Err(std::io::Error::other("dropped by the client"))
        } else {
            h.post(path, &body)
        };
        let t_ack = now_ms();
        let answers: Result<Vec<Res>, String> = match &result {
            Ok((200, serde_json::Value::Array(items))) if count > 1 && items.len() == count => {
                Ok(items.iter().map(res_from_json).collect())
            }
            Ok((200, one)) if count == 1 => Ok(vec![res_from_json(one)]),
            Ok((status, other)) => Err(format!("HTTP {status} to {path}: {other}")),
            Err(e) => Err(e.to_string()),
        };
        match answers {
            Ok(replies) => {
                shared.http_requests.fetch_add(1, Ordering::Relaxed);
                shared.http_ops.fetch_add(count as u64, Ordering::Relaxed);
                shared.http_writes.fetch_add(count as u64, Ordering::Relaxed);
                let mut m = model.lock().expect("model lock");
                for ((op, before), reply) in ops.iter().zip(&befores).zip(&replies) {
                    if let Err(e) = op.check(before, reply, t_send, t_ack) {
                        shared.fail(format!("HTTP {path}: {e}"));
                    }
                    let after = match (op, reply) {
                        (Op::Incr { .. }, Res::Int(n)) => Val::Int(*n),
                        _ => op.after(before, t_send, t_ack),
                    };
                    m.insert(op.key().to_string(), KeyState { cur: after, alt: None });
                }
            }
            Err(e) => {
                if result.as_ref().is_ok_and(|(status, _)| *status != 503) {
                    shared.fail(format!("HTTP request failed: {e}"));
                }
                {
                    let mut m = model.lock().expect("model lock");
                    for (op, before) in ops.iter().zip(&befores) {
                        let after = op.after(before, t_send, t_send + 600_000 + 60_000);
                        m.insert(op.key().to_string(), KeyState { cur: after, alt: Some(before.clone()) });
                        pending.push(op.key().to_string());
                    }
                }
                if !drop_it {
                    shared.connections_lost.fetch_add(1, Ordering::Relaxed);
                }
                http = None;
                resolve(&shared, &verify_name, None, &mut pending, &model);
            }
        }
    }
}

fn random_key(rng: &mut SmallRng) -> String {
    let owner = if rng.gen_range(0..RESP_WRITERS + HTTP_WRITERS) < RESP_WRITERS {
        format!("w{}", rng.gen_range(0..RESP_WRITERS))
    } else {
        format!("h{}", rng.gen_range(0..HTTP_WRITERS))
    };
    match rng.gen_range(0..10) {
        0..=5 => format!("soak:{owner}:s:{}", rng.gen_range(0..STRINGS)),
        6 => format!("soak:{owner}:c:{}", rng.gen_range(0..COUNTERS)),
        7 => format!("soak:{owner}:h:{}", rng.gen_range(0..HASHES)),
        _ => format!("soak:{owner}:z:{}", rng.gen_range(0..SETS)),
    }
}

fn read_command(rng: &mut SmallRng) -> Vec<String> {
    let key = random_key(rng);
    match kind_of(&key) {
        Kind::Hash => vec!["HGETALL".into(), key],
        Kind::Set => vec!["SMEMBERS".into(), key],
        _ => match rng.gen_range(0..10) {
            0 => vec!["EXISTS".into(), key],
            1 => vec!["PTTL".into(), key],
            2 => {
                let mut args = vec!["MGET".to_string(), key];
                while args.len() < 6 {
                    let k = random_key(rng);
                    if matches!(kind_of(&k), Kind::Str | Kind::Counter) {
                        args.push(k);
                    }
                }
                args
            }
            _ => vec!["GET".into(), key],
        },
    }
}

fn resp_reader(shared: Arc<Shared>, r: usize, seed: u64) {
    let name = format!("soak-r{r}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut conn: Option<Conn> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        shared.park_if_held();
        let c = match conn.as_mut() {
            Some(c) => c,
            None => conn.insert(shared.connect(&name)),
        };
        let args = read_command(&mut rng);
        match c.call(&args) {
            Ok(Reply::Error(e)) => shared.fail(format!("{args:?}: error {e}")),
            Ok(_) => {
                shared.resp_ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                shared.connections_lost.fetch_add(1, Ordering::Relaxed);
                conn = None;
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn http_reader(shared: Arc<Shared>, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut http: Option<Http> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        shared.park_if_held();
        let h = match http.as_mut() {
            Some(h) => h,
            None => http.insert(shared.http()),
        };
        let count = if rng.gen_bool(0.5) { 1 } else { rng.gen_range(2..=8) };
        let commands: Vec<Vec<String>> = (0..count).map(|_| read_command(&mut rng)).collect();
        let (path, body) =
            if count == 1 { ("/", serde_json::json!(commands[0])) } else { ("/pipeline", serde_json::json!(commands)) };
        match h.post(path, &body) {
            Ok((200, answer)) => {
                let items = if count == 1 { vec![answer] } else { answer.as_array().cloned().unwrap_or_default() };
                if items.len() != count || items.iter().any(|i| i.get("error").is_some()) {
                    shared.fail(format!("HTTP {path} {body}: {items:?}"));
                }
                shared.http_requests.fetch_add(1, Ordering::Relaxed);
                shared.http_ops.fetch_add(count as u64, Ordering::Relaxed);
            }
            Ok((status, answer)) => {
                if status != 503 {
                    shared.fail(format!("HTTP {status} to {path}: {answer}"));
                }
                http = None;
            }
            Err(_) => {
                shared.connections_lost.fetch_add(1, Ordering::Relaxed);
                http = None;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------------------------
// The server

struct Server {
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
    resp_port: u16,
    http_port: u16,
}

impl Server {
    /// Starts staykv on the ports and data directory; returns how long until it answered.
    fn start(&mut self) -> Duration {
        let started = Instant::now();
        for attempt in 0.. {
            let (resp_port, http_port) = (self.resp_port.to_string(), self.http_port.to_string());
            let mut cmd = staykv_command(
                &[
                    "--port",
                    &resp_port,
                    "--http-port",
                    &http_port,
                    "--http-token",
                    TOKEN,
                    "--fsync",
                    "always",
                    "--loglevel",
                    "warn",
                    "--dir",
                ],
                &self.log,
            );
            cmd.arg(&self.dir);
            let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("staykv exited with {status} (attempt {attempt})");
                    break;
                }
                if let Ok(mut c) = Conn::open(self.resp_port, "soak-ctl", 0) {
                    if matches!(c.call(&strings(&["PING"])), Ok(Reply::Simple(ref s)) if s == "PONG") {
                        self.child = Some(child);
                        return started.elapsed();
                    }
                }
                if started.elapsed() > Duration::from_secs(120) {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("staykv did not answer within 120 s; log {}", self.log.display());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if started.elapsed() > Duration::from_secs(120) {
                panic!("staykv did not start; log {}", self.log.display());
            }
            std::thread::sleep(Duration::from_millis(500)); // a port still held: try again
        }
        unreachable!()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait; returns the exit status text.
    fn sigterm(&mut self) -> String {
        let Some(mut child) = self.child.take() else { return "not running".into() };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = child.try_wait() {
                return status.to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        "did not exit within 60 s of SIGTERM; killed".into()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.sigkill();
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A control connection that reconnects when it was lost.
struct Ctl {
    shared: Arc<Shared>,
    conn: Option<Conn>,
}

impl Ctl {
    fn call(&mut self, args: &[&str]) -> Option<Reply> {
        for _ in 0..3 {
            let conn = match self.conn.as_mut() {
                Some(c) => c,
                None => match Conn::open(self.shared.resp_port, "soak-ctl", 0) {
                    Ok(c) => self.conn.insert(c),
                    Err(_) => return None,
                },
            };
            match conn.call(&strings(args)) {
                Ok(r) => return Some(r),
                Err(_) => self.conn = None,
            }
        }
        None
    }

    fn info_u64(&mut self, section: &str, field: &str) -> u64 {
        let text = self.call(&["INFO", section]).map(|r| r.text()).unwrap_or_default();
        text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    t: u64,
    rss_kib: u64,
    used: u64,
    keys: u64,
    dir: u64,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn main() {
    let duration: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap_or_else(|_| panic!("usage: soak [SECONDS], not {s}")))
        .unwrap_or(1200);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let (resp_port, http_port) = (free_port(), free_port());
    let mut server =
        Server { child: None, dir: tmp.path().join("data"), log: tmp.path().join("staykv.log"), resp_port, http_port };
    server.start();
    let shared = Arc::new(Shared { resp_port, http_port, ..Shared::default() });
    println!(
        "soak: {duration} s; staykv {} --fsync always, RESP {resp_port}, HTTP {http_port}; {RESP_WRITERS} RESP writers, {HTTP_WRITERS} HTTP writers, {RESP_READERS} RESP readers, {HTTP_READERS} HTTP reader; {} keys",
        binary().display(),
        (RESP_WRITERS + HTTP_WRITERS) * (STRINGS + COUNTERS + HASHES + SETS)
    );
    let mut seed_rng = SmallRng::seed_from_u64(now_ms());
    let mut threads = Vec::new();
    for w in 0..RESP_WRITERS {
        let (s, seed) = (shared.clone(), seed_rng.gen());
        threads.push(std::thread::spawn(move || resp_writer(s, w, seed)));
    }
    for w in 0..HTTP_WRITERS {
        let (s, seed) = (shared.clone(), seed_rng.gen());
        threads.push(std::thread::spawn(move || http_writer(s, w, seed)));
    }
    for r in 0..RESP_READERS {
        let (s, seed) = (shared.clone(), seed_rng.gen());
        threads.push(std::thread::spawn(move || resp_reader(s, r, seed)));
    }
    for _ in 0..HTTP_READERS {
        let (s, seed) = (shared.clone(), seed_rng.gen());
        threads.push(std::thread::spawn(move || http_reader(s, seed)));
    }
    let workers = threads.len();

    let mut ctl = Ctl { shared: shared.clone(), conn: None };
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut next_kill = Duration::from_secs(2);
    let mut kills = 0u64;
    let restart_at = Duration::from_secs(duration / 2);
    let mut restart_report: Option<String> = None;
    let mut restart_t = 0u64;
    let run = Duration::from_secs(duration);
    while started.elapsed() < run {
        let now = started.elapsed();
        if now >= next_sample {
            next_sample += Duration::from_secs(10);
            let s = Sample {
                t: now.as_secs(),
                rss_kib: proc_kib(server.pid(), "VmRSS:"),
                used: ctl.info_u64("memory", "used_memory"),
                keys: ctl
                    .call(&["DBSIZE"])
                    .and_then(|r| if let Reply::Int(n) = r { Some(n as u64) } else { None })
                    .unwrap_or(0),
                dir: dir_bytes(&server.dir),
            };
            println!(
                "t={:>5} s  rss {:>7} KiB  used_memory {:>10}  keys {:>6}  dir {}  | RESP ops {}  HTTP ops {} ({} requests)  kills {kills}  drops {}  in flight {} ({} applied)  failures {}",
                s.t,
                s.rss_kib,
                s.used,
                s.keys,
                mib(s.dir),
                shared.resp_ops.load(Ordering::Relaxed),
                shared.http_ops.load(Ordering::Relaxed),
                shared.http_requests.load(Ordering::Relaxed),
                shared.drops.load(Ordering::Relaxed),
                shared.in_flight.load(Ordering::Relaxed),
                shared.in_flight_applied.load(Ordering::Relaxed),
                shared.failures.load(Ordering::Relaxed),
            );
            samples.push(s);
        }
        if now >= next_kill {
            next_kill = now + Duration::from_millis(seed_rng.gen_range(1000..4000));
            let list = ctl.call(&["CLIENT", "LIST"]).map(|r| r.text()).unwrap_or_default();
            let victims: Vec<&str> = list
                .lines()
                .filter(|l| l.contains(" name=soak-w") || l.contains(" name=soak-r"))
                .filter_map(|l| l.split_whitespace().find_map(|f| f.strip_prefix("id=")))
                .collect();
            if !victims.is_empty() {
                let id = victims[seed_rng.gen_range(0..victims.len())].to_string();
                if ctl.call(&["CLIENT", "KILL", "ID", &id]) == Some(Reply::Int(1)) {
                    kills += 1;
                }
            }
        }
        if restart_report.is_none() && now >= restart_at {
            restart_t = now.as_secs();
            let before = shared.resp_writes.load(Ordering::Relaxed) + shared.http_writes.load(Ordering::Relaxed);
            println!("t={} s: SIGKILL under load ({before} writes acknowledged so far)", now.as_secs());
            server.sigkill();
            shared.hold.store(true, Ordering::SeqCst);
            let wait = Instant::now();
            while shared.parked.load(Ordering::SeqCst) < workers {
                if wait.elapsed() > Duration::from_secs(120) {
                    panic!("only {} of {workers} load threads parked", shared.parked.load(Ordering::SeqCst));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            shared.epoch.fetch_add(1, Ordering::SeqCst);
            let ready = server.start();
            let mut verifier =
                Conn::open(resp_port, "soak-verify", shared.epoch.load(Ordering::SeqCst)).expect("verifier connection");
            let t = Instant::now();
            let failures_before = shared.failures.load(Ordering::Relaxed);
            let in_flight_before = shared.in_flight.load(Ordering::Relaxed);
            let applied_before = shared.in_flight_applied.load(Ordering::Relaxed);
            let checked = shared.verify_all(&mut verifier).expect("verification after the restart");
            let report = format!(
                "SIGKILL at t={} s, ready again in {:.2} s (pid {}); {checked} keys verified in {:.1} s; writes in flight at the kill: {} ({} applied); failures: {}",
                restart_t,
                ready.as_secs_f64(),
                server.pid(),
                t.elapsed().as_secs_f64(),
                shared.in_flight.load(Ordering::Relaxed) - in_flight_before,
                shared.in_flight_applied.load(Ordering::Relaxed) - applied_before,
                shared.failures.load(Ordering::Relaxed) - failures_before
            );
            println!("{report}");
            restart_report = Some(report);
            ctl.conn = None;
            shared.hold.store(false, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    shared.stop.store(true, Ordering::SeqCst);
    for t in threads {
        if t.join().is_err() {
            shared.fail("a load thread panicked".into());
        }
    }
    let elapsed = started.elapsed();
    let final_sample = Sample {
        t: elapsed.as_secs(),
        rss_kib: proc_kib(server.pid(), "VmRSS:"),
        used: ctl.info_u64("memory", "used_memory"),
        keys: ctl
            .call(&["DBSIZE"])
            .and_then(|r| if let Reply::Int(n) = r { Some(n as u64) } else { None })
            .unwrap_or(0),
        dir: dir_bytes(&server.dir),
    };
    samples.push(final_sample);
    let mut verifier =
        Conn::open(resp_port, "soak-verify", shared.epoch.load(Ordering::SeqCst)).expect("verifier connection");
    let t = Instant::now();
    let checked = shared.verify_all(&mut verifier).expect("final verification");
    let verify_secs = t.elapsed().as_secs_f64();
    // No key nobody wrote.
    let known: BTreeSet<String> = shared
        .models
        .lock()
        .expect("models lock")
        .iter()
        .flat_map(|m| m.lock().expect("model lock").keys().cloned().collect::<Vec<_>>())
        .collect();
    let mut cursor = "0".to_string();
    let (mut scanned, mut unknown) = (0u64, 0u64);
    loop {
        let reply = verifier.call(&strings(&["SCAN", &cursor, "COUNT", "1000"])).expect("SCAN");
        let Reply::Array(Some(parts)) = reply else { panic!("SCAN reply: {}", reply.text()) };
        let [next, Reply::Array(Some(keys))] = parts.as_slice() else { panic!("SCAN reply: {parts:?}") };
        for k in keys {
            scanned += 1;
            if !known.contains(&k.text()) {
                unknown += 1;
                shared.fail(format!("unknown key on the server: {}", k.text()));
            }
        }
        cursor = next.text();
        if cursor == "0" {
            break;
        }
    }
    let present = shared
        .models
        .lock()
        .expect("models lock")
        .iter()
        .map(|m| m.lock().expect("model lock").values().filter(|s| s.cur != Val::Absent).count())
        .sum::<usize>();
    let exit = server.sigterm();
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    let errors_in_log: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    let warnings_in_log = log.lines().filter(|l| l.contains("WARN")).count();

    // Memory: steady state once the key space is saturated, before and after the restart.
    let steady_offset = (duration / 10).max(60).min(duration / 4);
    let first_at = |from: u64, to: u64| samples.iter().find(|s| s.t >= from && s.t < to).copied();
    let steady = first_at(steady_offset, restart_t);
    let before_restart = samples.iter().rfind(|s| s.t < restart_t).copied();
    let after_restart = first_at(restart_t + steady_offset, u64::MAX);
    let end = samples.last().copied().expect("at least one sample");
    let max_rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let max_used = samples.iter().map(|s| s.used).max().unwrap_or(0);
    let max_dir = samples.iter().map(|s| s.dir).max().unwrap_or(0);
    let describe = |s: Option<Sample>| {
        s.map(|s| {
            format!(
                "t={} s: RSS {}, used_memory {}, {} keys, dir {}",
                s.t,
                mib(s.rss_kib * 1024),
                mib(s.used),
                s.keys,
                mib(s.dir)
            )
        })
        .unwrap_or_else(|| "(no sample)".into())
    };
    let change = |from: Option<Sample>, f: fn(&Sample) -> u64| {
        from.map(|s| (f(&end) as f64 / f(&s).max(1) as f64 - 1.0) * 100.0).unwrap_or(f64::NAN)
    };
    let rss_vs_steady = change(steady, |s| s.rss_kib);
    let used_vs_steady = change(steady, |s| s.used);
    let rss_vs_after = change(after_restart, |s| s.rss_kib);
    let used_vs_after = change(after_restart, |s| s.used);
    let flat = |a: f64, b: f64| if a.abs() <= 10.0 && b.abs() <= 10.0 { "flat" } else { "NOT flat" };

    let failures = shared.failures.load(Ordering::Relaxed);
    println!();
    println!("== soak summary ==");
    println!("duration: {:.0} s (asked {duration} s)", elapsed.as_secs_f64());
    println!(
        "RESP: {} commands acknowledged ({} writes, the rest reads)",
        shared.resp_ops.load(Ordering::Relaxed),
        shared.resp_writes.load(Ordering::Relaxed)
    );
    println!(
        "HTTP: {} commands in {} requests (POST / and /pipeline; {} writes)",
        shared.http_ops.load(Ordering::Relaxed),
        shared.http_requests.load(Ordering::Relaxed),
        shared.http_writes.load(Ordering::Relaxed)
    );
    println!(
        "kills: {kills} by CLIENT KILL ID, {} abrupt drops by the clients right after sending a write; {} connections lost in all (kills, the restart)",
        shared.drops.load(Ordering::Relaxed),
        shared.connections_lost.load(Ordering::Relaxed) + shared.drops.load(Ordering::Relaxed)
    );
    println!(
        "writes in flight at a kill: {} ({} applied, {} not)",
        shared.in_flight.load(Ordering::Relaxed),
        shared.in_flight_applied.load(Ordering::Relaxed),
        shared.in_flight.load(Ordering::Relaxed) - shared.in_flight_applied.load(Ordering::Relaxed)
    );
    println!("restart: {}", restart_report.as_deref().unwrap_or("(not reached)"));
    println!(
        "final verification: {checked} keys verified in {verify_secs:.1} s ({present} present, the rest absent after DEL/expiry or never written); SCAN: {scanned} keys on the server, {unknown} unknown"
    );
    println!("lost acknowledged writes: {}", shared.lost.load(Ordering::Relaxed));
    println!("failures (lost, resurrected, wrong replies): {failures}");
    for f in shared.failure_texts.lock().expect("failure list lock").iter().take(20) {
        println!("  {f}");
    }
    println!("memory, steady state (t >= {steady_offset} s): {}", describe(steady));
    println!("memory, last sample before the restart: {}", describe(before_restart));
    println!("memory, steady state after the restart: {}", describe(after_restart));
    println!("memory, end: {}", describe(Some(end)));
    println!("memory, max: RSS {}, used_memory {}; data dir max {}", mib(max_rss * 1024), mib(max_used), mib(max_dir));
    println!(
        "end vs steady state: RSS {rss_vs_steady:+.1}%, used_memory {used_vs_steady:+.1}% -> {}; end vs steady state after the restart: RSS {rss_vs_after:+.1}%, used_memory {used_vs_after:+.1}% -> {}",
        flat(rss_vs_steady, used_vs_steady),
        flat(rss_vs_after, used_vs_after)
    );
    println!("server: SIGTERM at the end -> {exit}; log: {warnings_in_log} warnings, {} errors", errors_in_log.len());
    for l in errors_in_log.iter().take(10) {
        println!("  {l}");
    }
    if failures > 0 {
        std::process::exit(1);
    }
}
