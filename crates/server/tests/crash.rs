//! Crash test: concurrent writers against `--fsync always`, SIGKILL at
//! random moments, restart, and every acknowledged write must be there with its value and
//! TTL; no key may come back after DEL or after its deadline. A background client asks for
//! compactions (BGREWRITEAOF) all along, so kills also land in the middle of snapshots.
//!
//! `STAYKV_CRASH_KILLS` (default 20) sets the number of kills, `STAYKV_CRASH_SEED` the seed.
//! The long run reported in BENCHMARKS.md:
//! `STAYKV_CRASH_KILLS=500 cargo test --release -p staykv --test crash -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod persist_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{RawConn, Server};
use persist_common::{call, call_str, now_ms, parse, Val};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const WRITERS: usize = 4;
const STR_KEYS: usize = 12;

/// What a key holds, as the client model sees it.
#[derive(Debug, Clone, PartialEq)]
enum Data {
    None,
    Str(String),
    Hash(BTreeMap<String, String>),
    List(Vec<String>),
    Set(BTreeSet<String>),
}

/// A key's state: data and the deadline range (the server picks the deadline from its clock
/// somewhere between sending and the reply).
#[derive(Debug, Clone, PartialEq)]
struct State {
    data: Data,
    deadline: Option<(u64, u64)>,
}

impl State {
    const NONE: State = State { data: Data::None, deadline: None };
}

#[derive(Debug, Clone)]
enum Op {
    SetEx { key: String, value: String, ms: u64 },
    Del { key: String },
    Incr { key: String },
    HSet { key: String, field: String, value: String },
    RPush { key: String, value: String },
    SAdd { key: String, member: String },
    SRem { key: String, member: String },
}

impl Op {
    fn key(&self) -> &str {
        match self {
            Op::SetEx { key, .. }
            | Op::Del { key }
            | Op::Incr { key }
            | Op::HSet { key, .. }
            | Op::RPush { key, .. }
            | Op::SAdd { key, .. }
            | Op::SRem { key, .. } => key,
        }
    }

    fn args(&self) -> Vec<String> {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        match self {
            Op::SetEx { key, value, ms } => v(&["SET", key, value, "PX", &ms.to_string()]),
            Op::Del { key } => v(&["DEL", key]),
            Op::Incr { key } => v(&["INCR", key]),
            Op::HSet { key, field, value } => v(&["HSET", key, field, value]),
            Op::RPush { key, value } => v(&["RPUSH", key, value]),
            Op::SAdd { key, member } => v(&["SADD", key, member]),
            Op::SRem { key, member } => v(&["SREM", key, member]),
        }
    }

    /// The state after this op, sent at `sent` and acknowledged by `acked` (ms).
    fn apply(&self, before: &State, sent: u64, acked: u64) -> State {
        let mut s = before.clone();
        match self {
            Op::SetEx { value, ms, .. } => {
                s = State { data: Data::Str(value.clone()), deadline: Some((sent + ms, acked + ms)) };
            }
            Op::Del { .. } => s = State::NONE,
            Op::Incr { .. } => {
                let n = match &s.data {
                    Data::Str(n) => n.parse::<i64>().unwrap(),
                    _ => 0,
                };
                s.data = Data::Str((n + 1).to_string());
            }
            Op::HSet { field, value, .. } => {
                let mut h = match s.data {
                    Data::Hash(h) => h,
                    _ => BTreeMap::new(),
                };
                h.insert(field.clone(), value.clone());
                s.data = Data::Hash(h);
            }
            Op::RPush { value, .. } => {
                let mut l = match s.data {
                    Data::List(l) => l,
                    _ => Vec::new(),
                };
                l.push(value.clone());
                s.data = Data::List(l);
            }
            Op::SAdd { member, .. } => {
                let mut m = match s.data {
                    Data::Set(m) => m,
                    _ => BTreeSet::new(),
                };
                m.insert(member.clone());
                s.data = Data::Set(m);
            }
            Op::SRem { member, .. } => {
                if let Data::Set(mut m) = s.data.clone() {
                    m.remove(member);
                    s.data = if m.is_empty() { Data::None } else { Data::Set(m) };
                    if s.data == Data::None {
                        s.deadline = None;
                    }
                }
            }
        }
        s
    }
}

/// One writer's keys: their acknowledged state, and the op in flight when the server died.
#[derive(Debug, Default)]
struct Model {
    keys: BTreeMap<String, State>,
    in_flight: Option<(String, State)>,
    acked: u64,
}

fn random_op(rng: &mut SmallRng, w: usize, n: u64, model: &Model) -> Op {
    let s = |i: usize| format!("w{w}:str:{i}");
    match rng.gen_range(0..100) {
        0..=29 => Op::SetEx {
            key: s(rng.gen_range(0..STR_KEYS)),
            value: format!("v{n}-{}", "x".repeat(rng.gen_range(0..200))),
            // Mostly long deadlines; some short ones that pass while the test runs.
            ms: if rng.gen_bool(0.25) { rng.gen_range(50..1500) } else { rng.gen_range(600_000..3_600_000) },
        },
        30..=39 => Op::Del { key: s(rng.gen_range(0..STR_KEYS)) },
        40..=54 => Op::Incr { key: format!("w{w}:cnt:{}", rng.gen_range(0..3)) },
        55..=69 => Op::HSet {
            key: format!("w{w}:hash:{}", rng.gen_range(0..2)),
            field: format!("f{}", rng.gen_range(0..30)),
            value: format!("{n}"),
        },
        70..=82 => {
            let key = format!("w{w}:list");
            let long = matches!(model.keys.get(&key), Some(State { data: Data::List(l), .. }) if l.len() > 60);
            if long {
                Op::Del { key }
            } else {
                Op::RPush { key, value: format!("e{n}") }
            }
        }
        83..=94 => Op::SAdd { key: format!("w{w}:set"), member: format!("m{}", rng.gen_range(0..40)) },
        _ => Op::SRem { key: format!("w{w}:set"), member: format!("m{}", rng.gen_range(0..40)) },
    }
}

/// Runs ops until the connection breaks (the server was killed) or `stop` is set.
fn writer(port: u16, w: usize, seed: u64, model: Arc<Mutex<Model>>, stop: Arc<AtomicBool>) {
    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    let mut conn = RawConnExt::new(stream);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let op = {
            let m = model.lock().unwrap();
            random_op(&mut rng, w, n, &m)
        };
        let key = op.key().to_string();
        let sent = now_ms();
        let args = op.args();
        let reply = conn.call(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut m = model.lock().unwrap();
        let before = m.keys.get(&key).cloned().unwrap_or(State::NONE);
        match reply {
            Some(Val::Error(e)) => panic!("writer {w}: {args:?} failed: {e}"),
            Some(_) => {
                let acked = now_ms();
                let after = op.apply(&before, sent, acked);
                m.keys.insert(key, after);
                m.acked += 1;
            }
            None => {
                // Sent (maybe) but not acknowledged: either outcome is allowed.
                let after = op.apply(&before, sent, u64::MAX / 4);
                m.in_flight = Some((key, after));
                return;
            }
        }
    }
}

/// A raw connection that reports a broken connection as `None` instead of panicking.
struct RawConnExt {
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl RawConnExt {
    fn new(stream: std::net::TcpStream) -> Self {
        RawConnExt { reader: std::io::BufReader::new(stream) }
    }

    fn call(&mut self, args: &[&str]) -> Option<Val> {
        use std::io::{BufRead, Read, Write};
        let bytes = common::encode_str(args);
        self.reader.get_mut().write_all(&bytes).ok()?;
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).ok()?;
        if !line.ends_with(b"\r\n") {
            return None;
        }
        if line[0] == b'$' {
            let n: i64 = std::str::from_utf8(&line[1..line.len() - 2]).ok()?.parse().ok()?;
            if n >= 0 {
                let mut rest = vec![0u8; n as usize + 2];
                self.reader.read_exact(&mut rest).ok()?;
                line.extend_from_slice(&rest);
            }
        }
        Some(parse(&line))
    }
}

/// The key's state as the server shows it now: (data, PTTL read window).
fn read_state(conn: &mut RawConn, key: &str) -> (Data, Option<(u64, u64)>) {
    // Nothing writes while keys are checked, but a key can expire between the reads below;
    // then it reads again (and finds it gone).
    for _ in 0..10 {
        if let Some(state) = try_read_state(conn, key) {
            return state;
        }
    }
    panic!("{key} kept changing while it was read");
}

/// [`read_state`], or `None` if the key expired part-way (a string read as nil, a collection
/// as empty, which Redis never keeps, or a PTTL of -2).
fn try_read_state(conn: &mut RawConn, key: &str) -> Option<(Data, Option<(u64, u64)>)> {
    let kind = call_str(conn, &["TYPE", key]).text();
    let items = |conn: &mut RawConn, args: &[&str]| -> Option<Vec<String>> {
        let items: Vec<String> = call_str(conn, args).items().iter().map(Val::text).collect();
        (!items.is_empty()).then_some(items)
    };
    let data = match kind.as_str() {
        "none" => return Some((Data::None, None)),
        "string" => match call_str(conn, &["GET", key]) {
            Val::Bulk(None) => return None,
            value => Data::Str(value.text()),
        },
        "hash" => Data::Hash(items(conn, &["HGETALL", key])?.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect()),
        "list" => Data::List(items(conn, &["LRANGE", key, "0", "-1"])?),
        "set" => Data::Set(items(conn, &["SMEMBERS", key])?.into_iter().collect()),
        other => panic!("unexpected type {other} of {key}"),
    };
    let before = now_ms();
    let pttl = call(conn, &[b"PTTL", key.as_bytes()]).int();
    let after = now_ms();
    if pttl == -2 {
        return None;
    }
    let deadline = (pttl >= 0).then(|| (before + pttl as u64, after + pttl as u64));
    Some((data, deadline))
}

/// Whether what the server shows (read between `t0` and `t1`) is consistent with `expected`.
fn consistent(expected: &State, shown: &(Data, Option<(u64, u64)>), t0: u64, t1: u64) -> bool {
    const SLACK: u64 = 5;
    match expected.deadline {
        Some((_, hi)) if hi + SLACK <= t0 => return shown.0 == Data::None,
        // Could have expired while we read.
        Some((lo, _)) if lo <= t1 + SLACK && shown.0 == Data::None => return true,
        _ => {}
    }
    if shown.0 != expected.data {
        return false;
    }
    match (expected.deadline, shown.1) {
        (None, None) => true,
        // The deadline the server has is in [a, b]; it must be one the model allows.
        (Some((lo, hi)), Some((a, b))) => a <= hi + SLACK && b + SLACK >= lo,
        _ => false,
    }
}

/// Checks every key of every writer; resolves the in-flight ops. Returns (keys checked,
/// in-flight ops that turned out applied).
fn verify(port: u16, models: &[Arc<Mutex<Model>>], round: usize) -> (u64, u64) {
    let mut conn = RawConn::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let mut checked = 0;
    let mut applied = 0;
    let mut all_names = BTreeSet::new();
    for (w, model) in models.iter().enumerate() {
        let mut m = model.lock().unwrap();
        let in_flight = m.in_flight.take();
        let names: Vec<String> = m.keys.keys().cloned().chain(in_flight.iter().map(|(k, _)| k.clone())).collect();
        for key in names {
            all_names.insert(key.clone());
            let expected = m.keys.get(&key).cloned().unwrap_or(State::NONE);
            let t0 = now_ms();
            let shown = read_state(&mut conn, &key);
            let t1 = now_ms();
            checked += 1;
            if consistent(&expected, &shown, t0, t1) {
                continue;
            }
            match &in_flight {
                Some((k, after)) if *k == key && consistent(after, &shown, t0, t1) => {
                    // The unacknowledged op was applied: adopt it (with the deadline shown).
                    let mut adopted = after.clone();
                    if let (Some(_), Some(d)) = (adopted.deadline, shown.1) {
                        adopted.deadline = Some(d);
                    }
                    m.keys.insert(key.clone(), adopted);
                    applied += 1;
                }
                _ => panic!(
                    "round {round}, writer {w}, key {key}: acknowledged state lost or a deleted/expired key came back\n  expected {expected:?}\n  in flight {in_flight:?}\n  server shows {shown:?} (read {t0}..{t1})"
                ),
            }
        }
    }
    // No key the writers never wrote (or already deleted and never rewrote) may exist.
    let keys = call_str(&mut conn, &["KEYS", "*"]).items();
    for k in keys {
        let k = k.text();
        assert!(all_names.contains(&k), "round {round}: unknown key {k} exists");
    }
    (checked, applied)
}

#[test]
fn sigkill_under_concurrent_writers_loses_no_acknowledged_write() {
    let kills: usize = std::env::var("STAYKV_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("STAYKV_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed);
    let mut rng = SmallRng::seed_from_u64(seed);
    let started = Instant::now();
    // 1 MiB segments: kills also land in rotations and in zero-filled segments.
    let mut server = Server::staykv_with(&["--fsync", "always", "--log-segment-size", "1mb"]);
    let models: Vec<Arc<Mutex<Model>>> = (0..WRITERS).map(|_| Arc::new(Mutex::new(Model::default()))).collect();
    let compactions = Arc::new(AtomicU64::new(0));
    let (mut checked_total, mut applied_total, mut in_flight_total) = (0u64, 0u64, 0u64);
    for round in 0..kills {
        let port = server.port();
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for (w, model) in models.iter().enumerate() {
            let (model, stop) = (Arc::clone(model), Arc::clone(&stop));
            let s = rng.gen::<u64>();
            handles.push(std::thread::spawn(move || writer(port, w, s, model, stop)));
        }
        // Compactions all along: the kill also lands in the middle of snapshots.
        let (stop2, count) = (Arc::clone(&stop), Arc::clone(&compactions));
        let compactor = std::thread::spawn(move || {
            let mut r = SmallRng::seed_from_u64(port as u64);
            while !stop2.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(r.gen_range(20..150)));
                let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut c = RawConnExt::new(stream);
                match c.call(&["BGREWRITEAOF"]) {
                    Some(Val::Simple(_)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..400)));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        compactor.join().unwrap();
        in_flight_total += models.iter().filter(|m| m.lock().unwrap().in_flight.is_some()).count() as u64;
        // Sometimes wait so that short deadlines pass while the server is down.
        if rng.gen_bool(0.2) {
            std::thread::sleep(Duration::from_millis(rng.gen_range(100..800)));
        }
        server.restart();
        let (checked, applied) = verify(server.port(), &models, round);
        checked_total += checked;
        applied_total += applied;
    }
    // A clean stop and restart at the end.
    server.restart();
    let (checked, _) = verify(server.port(), &models, kills);
    checked_total += checked;
    let acked: u64 = models.iter().map(|m| m.lock().unwrap().acked).sum();
    println!(
        "crash test: {kills} SIGKILLs in {:.1} s; {acked} acknowledged writes by {WRITERS} writers, all found with value and TTL; \
         {checked_total} key checks; {in_flight_total} writes in flight at a kill ({applied_total} of them applied); \
         {} compactions started",
        started.elapsed().as_secs_f64(),
        compactions.load(Ordering::Relaxed)
    );
    assert!(acked > 0);
}
