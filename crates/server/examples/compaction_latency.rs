//! Benchmarks of the persistence layer (not tests: run by `bench/compaction-latency`).
//!
//! `compaction`: a StayKV preloaded with session-like keys takes a steady write load; a GET
//! loop measures latency for a while before compaction, then during a BGREWRITEAOF; prints
//! p50/p99/max of both windows and the ratio.
//!
//! `restart`: writes N session-like keys (45-byte key, 1 KiB value, TTL) into StayKV and into
//! redis-server 7.0, then measures how long each takes from process start to answering
//! commands — StayKV from its log, StayKV from a snapshot (after SAVE), Redis from dump.rdb.
//!
//! ```text
//! cargo run --release -p staykv --example compaction_latency -- compaction [keys]
//! cargo run --release -p staykv --example compaction_latency -- restart [keys]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{binary, free_port, percentile, proc_kib};

struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    fn connect(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        Conn { r: BufReader::new(s) }
    }

    fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.r.get_mut().write_all(&out).unwrap();
    }

    /// Reads one reply; returns its first line (bulk payloads are skipped).
    fn read(&mut self) -> String {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if let Some(n) = text.strip_prefix('$').and_then(|n| n.parse::<i64>().ok()) {
            if n >= 0 {
                let mut rest = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut rest).unwrap();
                return String::from_utf8_lossy(&rest[..n as usize]).to_string();
            }
        }
        if let Some(n) = text.strip_prefix('*').and_then(|n| n.parse::<i64>().ok()) {
            for _ in 0..n.max(0) {
                self.read();
            }
        }
        text
    }

    fn call(&mut self, args: &[&str]) -> String {
        self.send(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
        self.read()
    }
}

fn spawn(program: &Path, args: &[String]) -> Child {
    Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

/// Waits until the server answers PING with PONG (not -LOADING); returns the time waited.
fn wait_ready(port: u16, started: Instant) -> Duration {
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            let mut c = Conn { r: BufReader::new(s) };
            if c.call(&["PING"]) == "+PONG" {
                return started.elapsed();
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn staykv(dir: &Path, port: u16, fsync: &str) -> (Child, Duration) {
    let started = Instant::now();
    let args: Vec<String> = ["--port", &port.to_string(), "--http-port", "0", "--fsync", fsync, "--dir"]
        .iter()
        .map(|s| s.to_string())
        .chain([dir.to_string_lossy().to_string(), "--loglevel".into(), "warn".into()])
        .collect();
    let child = spawn(&binary(), &args);
    let waited = wait_ready(port, started);
    (child, waited)
}

fn redis(dir: &Path, port: u16) -> (Child, Duration) {
    let started = Instant::now();
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.to_string_lossy(),
        "--dbfilename",
        "dump.rdb",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = spawn(Path::new("redis-server"), &args);
    let waited = wait_ready(port, started);
    (child, waited)
}

fn stop(mut child: Child, port: u16) {
    let mut c = Conn::connect(port);
    c.send(&[b"SHUTDOWN", b"NOSAVE"]);
    let _ = child.wait();
}

/// Writes `n` session-like keys: 45-byte key, 1 KiB value, 1 day TTL (pipelined).
fn load_sessions(port: u16, n: usize) -> Duration {
    let started = Instant::now();
    let mut c = Conn::connect(port);
    let value = vec![b's'; 1024];
    let batch = 500;
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        for k in i..end {
            let key = format!("session:{k:037}");
            debug_assert_eq!(key.len(), 45);
            c.send(&[b"SET", key.as_bytes(), &value, b"EX", b"86400"]);
        }
        for _ in i..end {
            assert_eq!(c.read(), "+OK");
        }
        i = end;
    }
    started.elapsed()
}

fn info(c: &mut Conn, field: &str) -> String {
    c.send(&[b"INFO", b"persistence"]);
    let text = c.read();
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or("").trim().to_string()
}

fn compaction(keys: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let (child, _) = staykv(&tmp.path().join("data"), port, "always");
    let load = load_sessions(port, keys);
    println!("preloaded {keys} session keys (45 B key, 1 KiB value) in {:.1} s", load.as_secs_f64());
    // A steady write load (~2000 SET/s) for the whole run.
    let stop_flag = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop_flag, writes) = (Arc::clone(&stop_flag), Arc::clone(&writes));
        std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let value = vec![b'w'; 1024];
            let mut i = 0u64;
            while !stop_flag.load(Ordering::Relaxed) {
                let t = Instant::now();
                let key = format!("session:{:037}", i % keys as u64);
                c.send(&[b"SET", key.as_bytes(), &value, b"EX", b"86400"]);
                c.read();
                writes.fetch_add(1, Ordering::Relaxed);
                i += 1;
                if let Some(rest) = Duration::from_micros(500).checked_sub(t.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        })
    };
    let mut c = Conn::connect(port);
    let mut ctl = Conn::connect(port);
    let measure = |c: &mut Conn, until: &mut dyn FnMut() -> bool| -> Vec<u64> {
        let mut lat = Vec::new();
        let mut i = 0u64;
        while !until() {
            let key = format!("session:{:037}", (i * 7919) % keys as u64);
            let t = Instant::now();
            c.send(&[b"GET", key.as_bytes()]);
            c.read();
            lat.push(t.elapsed().as_micros() as u64);
            i += 1;
        }
        lat.sort_unstable();
        lat
    };
    let t0 = Instant::now();
    let before = measure(&mut c, &mut || t0.elapsed() >= Duration::from_secs(5));
    assert!(ctl.call(&["BGREWRITEAOF"]).starts_with("+Background"));
    let t1 = Instant::now();
    let mut polls = 0u64;
    let during = measure(&mut c, &mut || {
        polls += 1;
        polls.is_multiple_of(200) && info(&mut ctl, "aof_rewrite_in_progress") == "0"
    });
    let compaction_secs = t1.elapsed().as_secs_f64();
    stop_flag.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let status = info(&mut ctl, "aof_last_bgrewrite_status");
    let report = |name: &str, l: &[u64]| {
        println!(
            "GET latency {name}: {} samples, p50 {} us, p99 {} us, p99.9 {} us, max {} us",
            l.len(),
            percentile(l, 0.5),
            percentile(l, 0.99),
            percentile(l, 0.999),
            l.last().copied().unwrap_or(0)
        );
    };
    report("before compaction", &before);
    report("during compaction", &during);
    println!(
        "compaction of {keys} keys took {compaction_secs:.2} s (status {status}); {} writes during the run; p99 during/before = {:.2}",
        writes.load(Ordering::Relaxed),
        percentile(&during, 0.99) as f64 / percentile(&before, 0.99).max(1) as f64
    );
    stop(child, port);
}

fn restart(keys: usize) {
    let tmp = tempfile::tempdir().unwrap();
    // StayKV: from the log, then from a snapshot.
    let dir = tmp.path().join("staykv");
    let port = free_port();
    let (child, _) = staykv(&dir, port, "everysec");
    let load = load_sessions(port, keys);
    println!("staykv: wrote {keys} session keys in {:.1} s", load.as_secs_f64());
    let mut c = Conn::connect(port);
    c.send(&[b"SHUTDOWN"]);
    let _ = { child }.wait();
    let (child, from_log) = staykv(&dir, port, "everysec");
    let mut c = Conn::connect(port);
    assert_eq!(c.call(&["DBSIZE"]), format!(":{keys}"));
    println!("staykv: restart from the log ({keys} keys): ready in {:.2} s", from_log.as_secs_f64());
    let rss_before = proc_kib(child.id(), "VmRSS:");
    let t = Instant::now();
    assert_eq!(c.call(&["SAVE"]), "+OK");
    println!(
        "staykv: SAVE (compaction of the log into a snapshot) took {:.2} s; RSS before {} MiB, peak RSS of the process {} MiB",
        t.elapsed().as_secs_f64(),
        rss_before / 1024,
        proc_kib(child.id(), "VmHWM:") / 1024
    );
    c.send(&[b"SHUTDOWN"]);
    let _ = { child }.wait();
    let (child, from_snapshot) = staykv(&dir, port, "everysec");
    let mut c = Conn::connect(port);
    assert_eq!(c.call(&["DBSIZE"]), format!(":{keys}"));
    println!("staykv: restart from the snapshot ({keys} keys): ready in {:.2} s", from_snapshot.as_secs_f64());
    stop(child, port);

    // redis-server 7.0 from dump.rdb.
    let rdir = tmp.path().join("redis");
    std::fs::create_dir_all(&rdir).unwrap();
    let rport = free_port();
    let (child, _) = redis(&rdir, rport);
    let load = load_sessions(rport, keys);
    println!("redis-server: wrote {keys} session keys in {:.1} s", load.as_secs_f64());
    let mut c = Conn::connect(rport);
    assert_eq!(c.call(&["SAVE"]), "+OK");
    stop(child, rport);
    let (child, from_rdb) = redis(&rdir, rport);
    let mut c = Conn::connect(rport);
    assert_eq!(c.call(&["DBSIZE"]), format!(":{keys}"));
    println!("redis-server: restart from dump.rdb ({keys} keys): ready in {:.2} s", from_rdb.as_secs_f64());
    stop(child, rport);
    println!(
        "restart, {keys} keys: staykv from log {:.2} s, staykv from snapshot {:.2} s, redis-server from RDB {:.2} s",
        from_log.as_secs_f64(),
        from_snapshot.as_secs_f64(),
        from_rdb.as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("compaction");
    let keys = args.get(2).and_then(|n| n.parse().ok());
    match mode {
        "compaction" => compaction(keys.unwrap_or(300_000)),
        "restart" => restart(keys.unwrap_or(1_000_000)),
        other => panic!("unknown mode {other}: use compaction or restart"),
    }
}
