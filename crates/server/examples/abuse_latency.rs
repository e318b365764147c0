//! Benchmark (not a test: run by `bench/abuse-latency`): latency of well-behaved clients
//! while one client at a time abuses the server.
//!
//! A release `staykv` (temporary `--dir`, ephemeral ports, `--fsync always`) serves 50
//! well-behaved clients, each on its own connection and thread: `SET fleet:<i> <value>`
//! then `GET fleet:<i>`, every reply checked, ~20 ms between round trips (like the `Fleet`
//! of `tests/security.rs`). Every command's round trip is recorded. Phases of `--secs`
//! seconds each:
//!
//! - `baseline`: no abuse.
//! - `huge-lengths`: a client declares huge lengths (`*2000000000`, `$2000000000`, a
//!   1,048,576-element array header followed by a 2 GB bulk) in a loop, reconnecting when
//!   cut off.
//! - `flood`: two helper processes open 10,000 connections each (20,000) against
//!   `maxclients 10000`.
//! - `slowloris`: 1,000 connections each send one byte per second of a command, with
//!   `CONFIG SET timeout 3`; plus one idle connection as a control.
//! - `no-read-5mb` / `no-read-256kb`: a client pipelines `GET` of a 5 MiB (256 KiB) value
//!   and never reads its replies, under `client-output-buffer-limit normal 8mb 4mb 5`; the
//!   256 KiB replies stay under the soft limit, so that phase also sets `timeout 3` (a
//!   client that takes no reply for `timeout` seconds is idle).
//!
//! For each phase: well-behaved p50/p99/p99.9/max, p99 against the baseline, errors seen
//! by the well-behaved clients, the server's peak RSS, and what happened to the abuser.
//!
//! ```text
//! cargo run --release -p staykv --example abuse_latency -- [--secs 10] [--clients 50]
//! ```
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{binary, free_port, percentile, proc_kib, read_reply, staykv_command, Reply};

/// A bound on any single well-behaved round trip; past it the client counts an error.
const BOUND: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// RESP

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect_timeout(&addr, BOUND)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(BOUND))?;
        s.set_write_timeout(Some(BOUND))?;
        Ok(Conn { r: BufReader::new(s) })
    }

    fn call(&mut self, args: &[&str]) -> std::io::Result<Reply> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call_bytes(&args)
    }

    fn call_bytes(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        self.r.get_mut().write_all(&encode(args))?;
        read_reply(&mut self.r)
    }
}

/// A control connection that reconnects once when the server closed it (e.g. `timeout`).
struct Ctl {
    addr: SocketAddr,
    conn: Option<Conn>,
}

impl Ctl {
    fn call(&mut self, args: &[&str]) -> Reply {
        for attempt in 0..2 {
            if self.conn.is_none() {
                self.conn = Some(Conn::connect(self.addr).expect("control connection to the server"));
            }
            match self.conn.as_mut().map(|c| c.call(args)) {
                Some(Ok(reply)) => return reply,
                Some(Err(e)) if attempt == 0 => {
                    eprintln!("control connection: {e}; reconnecting");
                    self.conn = None;
                }
                Some(Err(e)) => panic!("control command {args:?} failed: {e}"),
                None => unreachable!(),
            }
        }
        unreachable!()
    }

    fn ok(&mut self, args: &[&str]) {
        let reply = self.call(args);
        assert_eq!(reply, Reply::Simple("OK".into()), "{args:?}");
    }

    fn info_field(&mut self, section: &str, field: &str) -> String {
        let text = self.call(&["INFO", section]).text();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("INFO {section} has no {field}: {text}"))
    }
}

// ---------------------------------------------------------------------------------------------
// The server

/// Raise the soft open-files limit to the hard one (inherited by the server); returns it.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = limit.rlim_max;
        let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    limit.rlim_cur
}

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = dir.path().join("staykv.log");
        for _attempt in 0..5 {
            let port = free_port();
            let _ = std::fs::remove_file(&log);
            let data = dir.path().join("data");
            let port_text = port.to_string();
            let base = [
                "--port",
                &port_text,
                "--http-port",
                "0",
                "--loglevel",
                "warn",
                "--dir",
                data.to_str().expect("UTF-8 temporary path"),
            ];
            let mut cmd = staykv_command(&base, &log);
            cmd.args(args);
            let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("staykv exited with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
                    break;
                }
                if let Ok(mut c) = Conn::connect(addr) {
                    if matches!(c.call(&["PING"]), Ok(Reply::Simple(ref s)) if s == "PONG") {
                        return Server { child, addr, _dir: dir, log };
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("staykv did not start; log: {}", std::fs::read_to_string(&log).unwrap_or_default())
    }

    fn rss_kib(&self) -> u64 {
        proc_kib(self.child.id(), "VmRSS:")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Well-behaved clients

/// One client's (phase, latency µs) samples and (phase, error) list.
type ClientLog = (Vec<(u8, u32)>, Vec<(u8, String)>);

/// Phase 0 is "between phases": samples and errors then are not reported.
struct Fleet {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<ClientLog>>,
}

impl Fleet {
    fn start(addr: SocketAddr, clients: usize) -> Fleet {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(0));
        let threads = (0..clients)
            .map(|i| {
                let (stop, phase) = (stop.clone(), phase.clone());
                std::thread::spawn(move || {
                    let mut samples: Vec<(u8, u32)> = Vec::with_capacity(64 * 1024);
                    let mut errors: Vec<(u8, String)> = Vec::new();
                    let key = format!("fleet:{i}");
                    let mut conn: Option<Conn> = None;
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let p = phase.load(Ordering::Relaxed) as u8;
                        if conn.is_none() {
                            match Conn::connect(addr) {
                                Ok(c) => conn = Some(c),
                                Err(e) => {
                                    errors.push((p, format!("client {i}: connect: {e}")));
                                    std::thread::sleep(Duration::from_millis(100));
                                    continue;
                                }
                            }
                        }
                        let c = conn.as_mut().expect("connected above");
                        let value = format!("value-{i}-{n}");
                        let t = Instant::now();
                        let set = c.call(&["SET", &key, &value]);
                        let set_us = t.elapsed().as_micros() as u32;
                        let result = match set {
                            Ok(Reply::Simple(ref s)) if s == "OK" => {
                                let t = Instant::now();
                                match c.call(&["GET", &key]) {
                                    Ok(Reply::Bulk(Some(ref v))) if v == value.as_bytes() => {
                                        Ok((set_us, t.elapsed().as_micros() as u32))
                                    }
                                    Ok(other) => Err(format!("GET {key}: expected {value}, got {}", other.text())),
                                    Err(e) => Err(format!("GET {key}: {e}")),
                                }
                            }
                            Ok(other) => Err(format!("SET {key}: expected OK, got {}", other.text())),
                            Err(e) => Err(format!("SET {key}: {e}")),
                        };
                        match result {
                            Ok((set_us, get_us)) => {
                                if p != 0 {
                                    samples.push((p, set_us));
                                    samples.push((p, get_us));
                                }
                            }
                            Err(e) => {
                                errors.push((p, format!("client {i}: {e}")));
                                conn = None;
                            }
                        }
                        n += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    (samples, errors)
                })
            })
            .collect();
        Fleet { stop, phase, threads }
    }

    fn finish(self) -> ClientLog {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        let mut errors = Vec::new();
        for t in self.threads {
            let (s, e) = t.join().expect("a well-behaved client thread panicked");
            samples.extend(s);
            errors.extend(e);
        }
        (samples, errors)
    }
}

// ---------------------------------------------------------------------------------------------
// Abusers. Each runs until `stop` and returns a one-line description of what happened.

/// Reads until EOF/reset (true) or until `within` passes (false); returns what was read.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (bool, Vec<u8>) {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (true, got),
        }
    }
    (false, got)
}

fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().next().unwrap_or("(nothing)").to_string()
}

fn huge_lengths(addr: SocketAddr, stop: &AtomicBool) -> String {
    let mut third = b"*1048576\r\n".to_vec();
    for _ in 0..100 {
        third.extend_from_slice(b"$1\r\nx\r\n");
    }
    third.extend_from_slice(b"$2000000000\r\n");
    let variants: [(&str, Vec<u8>); 3] = [
        ("*2000000000 then $2000000000", b"*2000000000\r\n$2000000000\r\n".to_vec()),
        ("GET with $2000000000", b"*2\r\n$3\r\nGET\r\n$2000000000\r\n".to_vec()),
        ("*1048576, 100 elements, then $2000000000", third),
    ];
    let mut counts = [(0u64, 0u64); 3]; // (connections, cut off)
    let mut replies: Vec<String> = Vec::new();
    let mut cut_times: Vec<u64> = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let v = n % variants.len();
        n += 1;
        let Ok(mut s) = TcpStream::connect_timeout(&addr, BOUND) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let t = Instant::now();
        let _ = s.write_all(&variants[v].1);
        counts[v].0 += 1;
        let (closed, got) = read_until_closed(&mut s, Duration::from_secs(5));
        if closed {
            counts[v].1 += 1;
            cut_times.push(t.elapsed().as_micros() as u64);
        }
        let line = first_line(&got);
        if !replies.contains(&line) {
            replies.push(line);
        }
        // ~200 connections per second: fast, without exhausting ephemeral ports.
        std::thread::sleep(Duration::from_millis(5));
    }
    cut_times.sort_unstable();
    let per: Vec<String> =
        variants.iter().zip(counts).map(|((name, _), (c, cut))| format!("{name}: {cut}/{c} cut off")).collect();
    format!(
        "{}; cut off {} µs after sending (median, max {} µs); replies seen: {}",
        per.join("; "),
        percentile(&cut_times, 0.5),
        cut_times.last().copied().unwrap_or(0),
        replies.join(" | ")
    )
}

/// A connection from the loopback address `src` (any of 127.0.0.0/8): one source address
/// has ~28,000 ephemeral ports, and the kernel's search for a free one slows to a crawl
/// once thousands are in use, which would measure the client's kernel, not the server.
fn connect_from(src: std::net::Ipv4Addr, dst: std::net::SocketAddrV4) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip.octets()) },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a new socket owned by the TcpStream at once; bind and connect get valid
    // pointers to sockaddr_in values that live through the calls.
    #[allow(unsafe_code)]
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(src, 0);
        if libc::bind(fd, (&raw const local).cast::<libc::sockaddr>(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = sockaddr(*dst.ip(), dst.port());
        if libc::connect(fd, (&raw const remote).cast::<libc::sockaddr>(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// `abuse_latency flood-helper ADDR COUNT INDEX`: opens COUNT connections on 20 threads (a
/// connect that overflows the server's listen backlog stalls its thread for the 1 s SYN
/// retransmit, not the whole flood), each from its own source address 127.0.INDEX+1.N,
/// prints how many it holds and how many the server refused, and keeps them until its
/// stdin closes.
fn flood_helper(addr: SocketAddr, count: usize, index: u8) {
    const THREADS: usize = 20;
    raise_fd_limit();
    let SocketAddr::V4(dst) = addr else { panic!("flood-helper needs an IPv4 address, not {addr}") };
    let started = Instant::now();
    let threads: Vec<JoinHandle<(Vec<TcpStream>, usize)>> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let src = std::net::Ipv4Addr::new(127, 0, index + 1, 1 + t as u8);
                let mut held = Vec::new();
                let mut failed = 0;
                for _ in 0..count / THREADS {
                    match connect_from(src, dst) {
                        Ok(stream) => held.push(stream),
                        Err(_) => failed += 1,
                    }
                }
                (held, failed)
            })
        })
        .collect();
    let mut held = Vec::with_capacity(count);
    let mut failed = 0;
    for t in threads {
        let (h, f) = t.join().expect("a flood thread panicked");
        held.extend(h);
        failed += f;
    }
    let opened_in = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    // Which connections did the server refuse (an error line, then closed)?
    let (mut refused, mut refused_with_error) = (0, 0);
    for s in &mut held {
        let _ = s.set_nonblocking(true);
        let mut buf = [0u8; 128];
        match s.read(&mut buf) {
            Ok(0) => refused += 1,
            Ok(n) => {
                refused += 1;
                if buf[..n].starts_with(b"-ERR max number of clients reached") {
                    refused_with_error += 1;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => refused += 1,
        }
    }
    println!(
        "FLOOD opened={} failed={failed} refused={refused} refused_with_error={refused_with_error} held={} opened_in_ms={}",
        held.len(),
        held.len() - refused,
        opened_in.as_millis()
    );
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(held);
}

fn flood(addr: SocketAddr, stop: &AtomicBool, ctl_addr: SocketAddr) -> String {
    let exe = std::env::current_exe().expect("path of this program");
    // Connected before the flood, so that the server does not refuse it.
    let mut sampler_conn = Conn::connect(ctl_addr).expect("connect the client-count sampler");
    let started = Instant::now();
    let mut helpers: Vec<Child> = (0..2)
        .map(|i| {
            Command::new(&exe)
                .args(["flood-helper", &addr.to_string(), "10000", &i.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a flood helper")
        })
        .collect();
    // The helpers' reports, as they come.
    let lines = Arc::new(Mutex::new(Vec::<(String, Duration)>::new()));
    let readers: Vec<JoinHandle<()>> = helpers
        .iter_mut()
        .map(|h| {
            let out = h.stdout.take().expect("helper stdout");
            let lines = lines.clone();
            std::thread::spawn(move || {
                if let Some(line) = BufReader::new(out).lines().map_while(Result::ok).find(|l| l.starts_with("FLOOD "))
                {
                    lines.lock().expect("helper lines lock").push((line, started.elapsed()));
                }
            })
        })
        .collect();
    // Client count as the server sees it, while the helpers connect.
    let mut peak = 0usize;
    let mut at_cap: Option<Duration> = None;
    // The phase lasts until both helpers are done (at most 60 s), however long it was asked.
    while !(stop.load(Ordering::Relaxed) && lines.lock().expect("helper lines lock").len() == helpers.len())
        && started.elapsed() < Duration::from_secs(60)
    {
        let Ok(info) = sampler_conn.call(&["INFO", "clients"]) else { break };
        let n: usize = info
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        peak = peak.max(n);
        if n >= 10_000 && at_cap.is_none() {
            at_cap = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let reported = lines.lock().expect("helper lines lock").clone();
    for h in &mut helpers {
        drop(h.stdin.take());
    }
    if reported.len() < helpers.len() {
        // Still connecting at the end of the phase: stop them.
        for h in &mut helpers {
            let _ = h.kill();
        }
    }
    for h in &mut helpers {
        let _ = h.wait();
    }
    for r in readers {
        let _ = r.join();
    }
    let field = |name: &str| -> u64 {
        reported
            .iter()
            .filter_map(|(l, _)| l.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}="))))
            .filter_map(|v| v.parse::<u64>().ok())
            .sum()
    };
    let cap = at_cap
        .map(|d| format!("maxclients (10,000) reached after {:.1} s", d.as_secs_f64()))
        .unwrap_or_else(|| format!("maxclients NOT reached (peak connected_clients {peak})"));
    if reported.len() == helpers.len() {
        format!(
            "{cap}; phase {:.1} s; 20,000 attempted in {:.1} s: {} opened, {} failed to connect, {} refused by the server ({} with \"-ERR max number of clients reached\"), {} held",
            started.elapsed().as_secs_f64(),
            reported.iter().map(|(_, d)| d.as_secs_f64()).fold(0.0, f64::max),
            field("opened"),
            field("failed"),
            field("refused"),
            field("refused_with_error"),
            field("held"),
        )
    } else {
        format!(
            "{cap}; the helpers had not finished their 20,000 connects at the end of the phase ({} of 2 reported)",
            reported.len()
        )
    }
}

fn slowloris(addr: SocketAddr, stop: &AtomicBool, connections: usize) -> String {
    let command = b"*3\r\n$3\r\nSET\r\n$13\r\nslowloris:key\r\n$5\r\nhello\r\n";
    let SocketAddr::V4(dst) = addr else { panic!("slowloris needs an IPv4 address, not {addr}") };
    let started = Instant::now();
    // Opened on another thread (a connect that overflows the listen backlog waits 1 s for
    // the SYN retransmit); each sends its first byte at once, then one byte a second.
    let (tx, rx) = std::sync::mpsc::channel::<TcpStream>();
    let opener = std::thread::spawn(move || {
        for i in 0..connections {
            let src = std::net::Ipv4Addr::new(127, 0, 3, 1 + (i % 10) as u8);
            if let Ok(mut s) = connect_from(src, dst) {
                if s.write_all(&command[..1]).is_ok() && s.set_nonblocking(true).is_ok() && tx.send(s).is_err() {
                    break;
                }
            }
        }
        started.elapsed()
    });
    // (stream, bytes sent, last byte sent at, cut off at)
    let mut conns: Vec<(TcpStream, usize, Instant, Option<Duration>)> = Vec::with_capacity(connections);
    // A control: sends one byte, then nothing.
    let mut idle = TcpStream::connect_timeout(&addr, BOUND).expect("idle control connection");
    idle.write_all(b"*").expect("write to the idle connection");
    let idle_since = Instant::now();
    let mut idle_cut: Option<Duration> = None;
    while !stop.load(Ordering::Relaxed) {
        conns.extend(rx.try_iter().map(|s| (s, 1, Instant::now(), None)));
        for (s, sent, last, cut) in &mut conns {
            if cut.is_some() || *sent >= command.len() || last.elapsed() < Duration::from_secs(1) {
                continue;
            }
            *last = Instant::now();
            match s.write(&command[*sent..*sent + 1]) {
                Ok(1) => *sent += 1,
                _ => *cut = Some(started.elapsed()),
            }
        }
        for (s, _, _, cut) in &mut conns {
            if cut.is_some() {
                continue;
            }
            let mut buf = [0u8; 256];
            match s.read(&mut buf) {
                Ok(_) => *cut = Some(started.elapsed()), // EOF, or an error line before closing
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => *cut = Some(started.elapsed()),
            }
        }
        if idle_cut.is_none() {
            let _ = idle.set_nonblocking(true);
            let mut buf = [0u8; 256];
            match idle.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                _ => idle_cut = Some(idle_since.elapsed()),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(rx);
    let opened_in = opener.join().unwrap_or_default();
    let opened = conns.len();
    let cut: Vec<Duration> = conns.iter().filter_map(|c| c.3).collect();
    let bytes: usize = conns.iter().map(|c| c.1).sum();
    format!(
        "{opened} slow connections opened in {:.1} s, {} bytes sent in all (1 byte/s each, a {}-byte SET), {} cut off{}; the idle connection (sent \"*\" then nothing): {}",
        opened_in.as_secs_f64(),
        bytes,
        command.len(),
        cut.len(),
        cut.iter().min().map(|d| format!(" (first after {:.1} s)", d.as_secs_f64())).unwrap_or_default(),
        idle_cut.map(|d| format!("cut off after {:.1} s", d.as_secs_f64())).unwrap_or_else(|| "NOT cut off".into())
    )
}

fn never_reads(addr: SocketAddr, stop: &AtomicBool) -> String {
    let pipeline: Vec<u8> = (0..4000).flat_map(|_| encode(&[b"GET", b"big"])).collect();
    let pipeline = Arc::new(pipeline);
    let mut ctl = Ctl { addr, conn: None };
    let mut cuts: Vec<Duration> = Vec::new();
    let mut not_cut: Option<Duration> = None;
    let mut sent_total = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut conn = Conn::connect(addr).expect("connect the client that never reads");
        let id = match conn.call(&["CLIENT", "ID"]) {
            Ok(Reply::Int(id)) => id,
            other => panic!("CLIENT ID: {other:?}"),
        };
        let stream = conn.r.get_ref().try_clone().expect("clone the socket");
        let _ = stream.set_write_timeout(None);
        let started = Instant::now();
        let writer = {
            let pipeline = pipeline.clone();
            let mut stream = stream.try_clone().expect("clone the socket");
            std::thread::spawn(move || {
                let mut sent = 0u64;
                while stream.write_all(&pipeline).is_ok() {
                    sent += pipeline.len() as u64;
                }
                sent
            })
        };
        let mut gone = false;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let list = ctl.call(&["CLIENT", "LIST", "ID", &id.to_string()]).text();
            if !list.contains(&format!("id={id} ")) {
                gone = true;
                break;
            }
        }
        if gone {
            cuts.push(started.elapsed());
        } else {
            not_cut = Some(started.elapsed());
        }
        let _ = stream.shutdown(Shutdown::Both);
        drop(conn);
        sent_total += writer.join().unwrap_or(0);
    }
    let mut text = format!(
        "{} connection(s) cut off by the server{}; {:.1} MiB of GETs sent in all",
        cuts.len(),
        if cuts.is_empty() {
            String::new()
        } else {
            format!(
                " after {} s",
                cuts.iter().map(|d| format!("{:.1}", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
            )
        },
        sent_total as f64 / (1024.0 * 1024.0)
    );
    if let Some(d) = not_cut {
        text.push_str(&format!("; the last one was NOT cut off in {:.1} s (closed by us)", d.as_secs_f64()));
    }
    text
}

// ---------------------------------------------------------------------------------------------

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

type Abuser = Box<dyn FnOnce(&AtomicBool) -> String + Send>;

struct PhaseResult {
    name: String,
    abuser: String,
    peak_rss_kib: u64,
    log_warnings: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("flood-helper") {
        let addr: SocketAddr = args.get(2).and_then(|a| a.parse().ok()).expect("flood-helper ADDR COUNT INDEX");
        let count: usize = args.get(3).and_then(|a| a.parse().ok()).expect("flood-helper ADDR COUNT INDEX");
        let index: u8 = args.get(4).and_then(|a| a.parse().ok()).expect("flood-helper ADDR COUNT INDEX");
        flood_helper(addr, count, index);
        return;
    }
    let option = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number, not {v}")))
            .unwrap_or(default)
    };
    let secs = option("--secs", 10);
    let clients = option("--clients", 50) as usize;
    let only: Option<&String> = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1));

    let fd_limit = raise_fd_limit();
    println!("open-files limit {fd_limit} (inherited by the server)");
    let server = Server::start(&[
        "--fsync",
        "always",
        "--maxclients",
        "10000",
        "--client-output-buffer-limit",
        "normal 8mb 4mb 5",
    ]);
    let addr = server.addr;
    println!(
        "staykv {} on {addr}, --fsync always, maxclients 10000, client-output-buffer-limit normal 8mb 4mb 5",
        binary().display()
    );
    let mut ctl = Ctl { addr, conn: None };
    ctl.ok(&["SET", "big5m", &"x".repeat(5 * 1024 * 1024)]);
    ctl.ok(&["SET", "big256k", &"y".repeat(256 * 1024)]);

    let fleet = Fleet::start(addr, clients);
    std::thread::sleep(Duration::from_secs(2)); // warm up: every client connected

    let phases: Vec<(&str, Abuser)> = vec![
        (
            "baseline",
            Box::new(|stop: &AtomicBool| {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                "no abuse".to_string()
            }),
        ),
        ("huge-lengths", Box::new(move |stop: &AtomicBool| huge_lengths(addr, stop))),
        ("flood", Box::new(move |stop: &AtomicBool| flood(addr, stop, addr))),
        ("slowloris", Box::new(move |stop: &AtomicBool| slowloris(addr, stop, 1000))),
        ("no-read-5mb", Box::new(move |stop: &AtomicBool| never_reads(addr, stop))),
        ("no-read-256kb", Box::new(move |stop: &AtomicBool| never_reads(addr, stop))),
    ];
    let mut results: Vec<PhaseResult> = Vec::new();
    for (index, (name, abuser)) in phases.into_iter().enumerate() {
        if let Some(only) = only {
            if name != "baseline" && !only.split(',').any(|o| o == name) {
                results.push(PhaseResult {
                    name: name.into(),
                    abuser: "skipped".into(),
                    peak_rss_kib: 0,
                    log_warnings: 0,
                });
                continue;
            }
        }
        // Settle: back to the fleet's own connections, then set the phase's configuration.
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(60) {
            let n: usize = ctl.info_field("clients", "connected_clients").parse().unwrap_or(usize::MAX);
            if n <= clients + 5 {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(2));
        match name {
            "slowloris" => ctl.ok(&["CONFIG", "SET", "timeout", "3"]),
            "no-read-5mb" => ctl.ok(&["RENAME", "big5m", "big"]),
            // Its replies stay under the soft limit: `timeout` is the limit that applies.
            "no-read-256kb" => {
                ctl.ok(&["RENAME", "big", "big5m"]);
                ctl.ok(&["RENAME", "big256k", "big"]);
                ctl.ok(&["CONFIG", "SET", "timeout", "3"]);
            }
            _ => {}
        }
        let log_before = std::fs::read_to_string(&server.log).unwrap_or_default().lines().count();
        println!("phase {name}: {secs} s");
        let stop = Arc::new(AtomicBool::new(false));
        let peak_rss = Arc::new(Mutex::new(0u64));
        fleet.phase.store(index + 1, Ordering::Relaxed);
        let worker = {
            let stop = stop.clone();
            std::thread::spawn(move || abuser(&stop))
        };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(secs) {
            let rss = server.rss_kib();
            let mut peak = peak_rss.lock().expect("peak RSS lock");
            *peak = (*peak).max(rss);
            drop(peak);
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        let abuser = worker.join().unwrap_or_else(|_| "the abusive client's thread panicked".into());
        fleet.phase.store(0, Ordering::Relaxed);
        if name == "slowloris" || name == "no-read-256kb" {
            ctl.ok(&["CONFIG", "SET", "timeout", "0"]);
        }
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        let log_warnings = log.lines().skip(log_before).filter(|l| l.contains("WARN")).count();
        println!("  abuser: {abuser}");
        let peak_rss_kib = *peak_rss.lock().expect("peak RSS lock");
        results.push(PhaseResult { name: name.into(), abuser, peak_rss_kib, log_warnings });
    }
    let (samples, errors) = fleet.finish();

    println!();
    println!(
        "well-behaved: {clients} clients, SET then GET of their own key, ~20 ms between round trips; latency of each command's round trip (ms)"
    );
    println!("| phase | samples | p50 ms | p99 ms | p99.9 ms | max ms | p99 / baseline | errors | server peak RSS | abusive client |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut baseline_p99 = 0u64;
    for (i, r) in results.iter().enumerate() {
        let p = (i + 1) as u8;
        let mut lat: Vec<u64> = samples.iter().filter(|s| s.0 == p).map(|s| u64::from(s.1)).collect();
        lat.sort_unstable();
        if lat.is_empty() {
            continue;
        }
        let p99 = percentile(&lat, 0.99);
        if i == 0 {
            baseline_p99 = p99;
        }
        let ratio = p99 as f64 / baseline_p99.max(1) as f64;
        let errs = errors.iter().filter(|e| e.0 == p).count();
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2}x{} | {} | {} MiB | {} (server log: {} warnings) |",
            r.name,
            lat.len(),
            ms(percentile(&lat, 0.5)),
            ms(p99),
            ms(percentile(&lat, 0.999)),
            ms(lat.last().copied().unwrap_or(0)),
            ratio,
            if i == 0 {
                ""
            } else if ratio <= 2.0 {
                " met"
            } else {
                " **missed**"
            },
            errs,
            r.peak_rss_kib / 1024,
            r.abuser,
            r.log_warnings
        );
    }
    let between = errors.iter().filter(|e| e.0 == 0).count();
    println!("errors between phases: {between}");
    for (p, e) in errors.iter().take(20) {
        println!("  error in phase {p}: {e}");
    }
    drop(ctl);
    drop(server);
}
