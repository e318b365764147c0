//! Shared harness of the black-box tests.
//!
//! [`Server`] runs a real server process, either the `staykv` binary built by Cargo or
//! Debian's `redis-server` 7.0, on an ephemeral loopback port with its own temporary data
//! directory, waits until it answers `PING`, and kills it when dropped. The same value can
//! be SIGKILLed ([`Server::kill`]) and started again on the same directory
//! ([`Server::restart`]), which is what durability tests need.
//!
//! [`RawConn`] is a plain TCP connection that sends bytes and reads replies as the exact
//! bytes of one RESP2/RESP3 frame, for byte-for-byte comparisons between StayKV and Redis.
//!
//! Use it from a test file with `mod common;`. Tests that need `redis-server` or the
//! `redis-tools` programs call [`have_tool`] (or use [`Server::redis`], which returns `None`)
//! and return early when the program is missing, after printing `SKIPPED: ...`; when the
//! environment variable `STAYKV_REQUIRE_REDIS=1` is set (as `scripts/test` does) a missing
//! program is a test failure instead, so CI can never pass by skipping.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first `PING` (debug builds, long recoveries).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Read/write timeout of the connections this module opens.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a start is retried on a fresh port when the chosen one was taken.
const PORT_ATTEMPTS: usize = 8;

/// Which program a [`Server`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The `staykv` binary of this workspace.
    StayKv,
    /// Debian's `redis-server`, persistence off.
    Redis,
}

/// True when `program` (such as `redis-server`, `redis-cli`) is on the `PATH`.
///
/// When it is missing this prints `SKIPPED: <why>` and returns false, unless
/// `STAYKV_REQUIRE_REDIS=1` is set, in which case it panics: the test fails instead of
/// silently passing.
pub fn have_tool(program: &str, why: &str) -> bool {
    if find_on_path(program).is_some() {
        return true;
    }
    let message =
        format!("{program} is not installed (apt-get install redis-server redis-tools, or run ./scripts/test)");
    if std::env::var("STAYKV_REQUIRE_REDIS").is_ok_and(|v| v == "1") {
        panic!("{message}; STAYKV_REQUIRE_REDIS=1 forbids skipping {why}");
    }
    eprintln!("SKIPPED: {why}: {message}");
    false
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// A free TCP port on 127.0.0.1: bind port 0, read the port the kernel chose, release it.
///
/// Another process may take it before the server binds it; [`Server`] retries on a new port
/// when that happens.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A server process for one test, killed when dropped.
#[derive(Debug)]
pub struct Server {
    kind: Kind,
    child: Option<Child>,
    port: u16,
    extra_args: Vec<String>,
    /// Holds `data/` (the server's `--dir`) and `server.log` (its stdout and stderr).
    root: tempfile::TempDir,
}

impl Server {
    /// Start `staykv` with default options (`--fsync always`) on a fresh directory.
    pub fn staykv() -> Server {
        Server::staykv_with(&[])
    }

    /// Start `staykv` with extra command-line options (e.g. `["--fsync", "no"]`). The HTTP
    /// API is off (`--http-port 0`) unless they include `--http-port`.
    pub fn staykv_with(args: &[&str]) -> Server {
        Server::start(Kind::StayKv, args)
    }

    /// Start Debian's `redis-server` (no RDB saves, no AOF), or `None` after printing why
    /// when it is not installed (see [`have_tool`]).
    pub fn redis() -> Option<Server> {
        Server::redis_with(&[])
    }

    /// [`Server::redis`] with extra `redis-server` options (e.g. `["--requirepass", "pw"]`).
    pub fn redis_with(args: &[&str]) -> Option<Server> {
        have_tool("redis-server", "comparison with redis-server").then(|| Server::start(Kind::Redis, args))
    }

    fn start(kind: Kind, args: &[&str]) -> Server {
        let root = tempfile::Builder::new().prefix("staykv-test-").tempdir().expect("create temp dir");
        std::fs::create_dir(root.path().join("data")).expect("create data dir");
        let mut server = Server {
            kind,
            child: None,
            port: free_port(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            root,
        };
        server.spawn_until_ready();
        server
    }

    /// Which program this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The RESP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `redis://127.0.0.1:<port>/` (RESP2), for the `redis` crate.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `redis://127.0.0.1:<port>/?protocol=resp3`, for the `redis` crate.
    pub fn url_resp3(&self) -> String {
        format!("redis://127.0.0.1:{}/?protocol=resp3", self.port)
    }

    /// The server's data directory (its `--dir`); it survives [`Server::kill`] and
    /// [`Server::restart`] and is deleted when the `Server` is dropped.
    pub fn dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// A scratch directory beside the data directory, for a test's own files (deleted with
    /// the server).
    pub fn scratch(&self) -> &Path {
        self.root.path()
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    /// Everything the server printed so far, over all its starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// A new connection with read and write timeouts of [`IO_TIMEOUT`].
    pub fn connect(&self) -> RawConn {
        RawConn::connect(self.addr())
    }

    /// Send one command on a new connection and return the reply frame's bytes.
    pub fn cmd(&self, args: &[&str]) -> Vec<u8> {
        self.connect().cmd(args)
    }

    /// `VmRSS` of the process in KiB (from `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// `VmSize` (virtual memory, which counts reserved but untouched allocations) in KiB.
    pub fn vm_size_kib(&self) -> u64 {
        self.proc_status_kib("VmSize:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let pid = self.pid().expect("server is not running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
        let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in status"));
        line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("bad line {line:?}"))
    }

    /// SIGKILL the process (as a power cut would stop it) and reap it. The data directory
    /// stays; [`Server::restart`] starts again on it. Does nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Send SIGTERM and wait (up to 30 s) for an orderly exit; returns the exit status.
    /// Panics if the server is not running or does not exit in time.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is not running");
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait for server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not exit within 30 s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start the server again on the same data directory, and on the same port when it is
    /// still free (a new one otherwise: read [`Server::port`] again). A running server is
    /// first stopped with SIGTERM; after [`Server::kill`] it simply starts.
    pub fn restart(&mut self) {
        if self.is_running() {
            let status = self.terminate();
            assert!(status.success(), "server exited with {status} on SIGTERM; log:\n{}", self.log());
        }
        self.child = None;
        self.spawn_until_ready();
    }

    /// [`Server::restart`] with `args` in place of the arguments it was started with.
    pub fn restart_with(&mut self, args: &[&str]) {
        self.extra_args = args.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    fn command(&self) -> Command {
        let mut cmd = match self.kind {
            Kind::StayKv => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_staykv"));
                cmd.arg("--port").arg(self.port.to_string()).arg("--dir").arg(self.dir());
                // The HTTP API is off unless the test asks for it.
                if !self.extra_args.iter().any(|a| a == "--http-port" || a.starts_with("--http-port=")) {
                    cmd.args(["--http-port", "0"]);
                }
                cmd.env("NO_COLOR", "1");
                for (name, _) in std::env::vars_os() {
                    if name.to_string_lossy().starts_with("STAYKV_") && name != "STAYKV_REQUIRE_REDIS" {
                        cmd.env_remove(name);
                    }
                }
                cmd
            }
            Kind::Redis => {
                let mut cmd = Command::new("redis-server");
                cmd.arg("--port").arg(self.port.to_string()).args([
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                ]);
                cmd.arg(self.dir());
                cmd
            }
        };
        cmd.args(&self.extra_args);
        cmd
    }

    /// Spawn the process and wait until it answers `PING`; on "address in use" try another port.
    fn spawn_until_ready(&mut self) {
        for attempt in 0..PORT_ATTEMPTS {
            if attempt > 0 {
                self.port = free_port();
            }
            let log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open server log");
            let err = log.try_clone().expect("clone log handle");
            let child = self
                .command()
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.kind));
            self.child = Some(child);
            let ready_lines = self.ready_lines();
            match self.wait_ready(ready_lines) {
                Ok(()) => return,
                Err(Exited(status)) => {
                    self.child = None;
                    let log = self.log();
                    let in_use = log.contains("in use") || log.contains("cannot listen");
                    if !in_use || attempt + 1 == PORT_ATTEMPTS {
                        panic!("{:?} exited with {status} before answering PING; log:\n{log}", self.kind);
                    }
                }
            }
        }
    }

    /// How many times the server log says the data directory is loaded.
    fn ready_lines(&self) -> usize {
        self.log().matches("ready: ").count()
    }

    fn wait_ready(&mut self, ready_lines_before: usize) -> Result<(), Exited> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Exited(status));
                }
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("{:?} did not answer PING within {START_TIMEOUT:?}; log:\n{}", self.kind, self.log());
            }
            if let Ok(stream) = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)) {
                let mut conn = RawConn::from_stream(stream);
                // NOAUTH: a password is configured, which the caller knows. Anything else
                // (-LOADING, a reset while starting) means: try again.
                // Behind NOAUTH the server may still be loading (Redis checks AUTH first):
                // wait for the log line that says the data directory is ready.
                let reply = conn.try_cmd(&["PING"]);
                let loaded = || self.kind != Kind::StayKv || self.ready_lines() > ready_lines_before;
                let ready = reply.is_ok_and(|r| r == b"+PONG\r\n" || (r.starts_with(b"-NOAUTH") && loaded()));
                if ready && self.is_ours(&mut conn) {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process answering on the port is our child (another test could have won
    /// the race for the port): compare `process_id` of `INFO server` when INFO is allowed.
    fn is_ours(&mut self, conn: &mut RawConn) -> bool {
        let Ok(reply) = conn.try_cmd(&["INFO", "server"]) else { return false };
        let text = String::from_utf8_lossy(&reply);
        match text.lines().find_map(|l| l.strip_prefix("process_id:")) {
            Some(pid) => pid.trim().parse::<u32>().ok() == self.pid(),
            None => true,
        }
    }
}

/// The child exited before it was ready.
struct Exited(ExitStatus);

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: String =
                log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            eprintln!("--- last lines of the {:?} log ({}) ---\n{tail}", self.kind, self.log_path().display());
        }
    }
}

/// Encode a command as a RESP multibulk request.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// [`encode`] for text arguments.
pub fn encode_str(args: &[&str]) -> Vec<u8> {
    encode(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>())
}

/// A blocking TCP connection that speaks raw bytes.
#[derive(Debug)]
pub struct RawConn {
    reader: BufReader<TcpStream>,
}

/// What the peer sent until it closed the connection or went quiet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drained {
    /// Every byte received.
    pub bytes: Vec<u8>,
    /// True if the server closed the connection (EOF or reset); false if it was still open
    /// when the wait ran out.
    pub closed: bool,
}

impl RawConn {
    /// Connect with [`IO_TIMEOUT`] read and write timeouts.
    pub fn connect(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        RawConn::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> RawConn {
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("set read timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("set write timeout");
        let _ = stream.set_nodelay(true);
        RawConn { reader: BufReader::new(stream) }
    }

    /// The underlying socket.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Write all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("write to server");
    }

    /// Write as much of `bytes` as the server accepts: a server that closes the connection
    /// on a protocol error may reset it before a long input is written.
    pub fn send_lenient(&mut self, bytes: &[u8]) {
        let _ = self.reader.get_mut().write_all(bytes);
    }

    /// Send a command and return the bytes of its reply frame.
    pub fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        self.try_cmd(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// [`RawConn::cmd`] for binary arguments.
    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&encode(args));
        self.read_frame().unwrap_or_else(|e| panic!("reply: {e}"))
    }

    /// [`RawConn::cmd`] returning I/O errors.
    pub fn try_cmd(&mut self, args: &[&str]) -> std::io::Result<Vec<u8>> {
        self.reader.get_mut().write_all(&encode_str(args))?;
        self.read_frame()
    }

    /// Wait until `n` clients are blocked (INFO clients), or panic after 5 s.
    pub fn wait_blocked(&mut self, n: usize) {
        let ok = wait_until(Duration::from_secs(5), || {
            let info = frame_text(&self.cmd(&["INFO", "clients"]));
            info.contains(&format!("blocked_clients:{n}\r"))
        });
        assert!(ok, "{n} clients never blocked");
    }

    /// Send a command and return its reply as text (for simple, error and bulk replies the
    /// payload alone, e.g. `PONG`, `ERR ...`; integers as digits; other frames raw).
    pub fn cmd_text(&mut self, args: &[&str]) -> String {
        frame_text(&self.cmd(args))
    }

    /// Read the exact bytes of one RESP2/RESP3 frame (nested aggregates included).
    pub fn read_frame(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        read_frame_into(&mut self.reader, &mut out)?;
        Ok(out)
    }

    /// Half-close: tell the server no more bytes will come.
    pub fn shutdown_write(&mut self) {
        let _ = self.reader.get_ref().shutdown(std::net::Shutdown::Write);
    }

    /// Read what the server sends: first until at least `min_len` bytes arrived (or it
    /// closed, or [`IO_TIMEOUT`] passed), then on until it closes or sends nothing for
    /// `quiet`. To see whether a server closes after an error reply, pass the reply's length
    /// and a long `quiet`: the call returns as soon as the connection closes.
    pub fn drain(&mut self, min_len: usize, quiet: Duration) -> Drained {
        let mut bytes = self.reader.buffer().to_vec();
        let consumed = bytes.len();
        self.reader.consume(consumed);
        let mut chunk = [0u8; 16 * 1024];
        let closed = loop {
            let timeout = if bytes.len() < min_len { IO_TIMEOUT } else { quiet };
            self.reader.get_ref().set_read_timeout(Some(timeout)).expect("set read timeout");
            match self.reader.get_mut().read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break true, // reset by the server
            }
        };
        self.reader.get_ref().set_read_timeout(Some(IO_TIMEOUT)).expect("set read timeout");
        Drained { bytes, closed }
    }
}

fn read_line(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let start = out.len();
    let n = reader.read_until(b'\n', out)?;
    if n == 0 {
        return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "connection closed"));
    }
    if !out.ends_with(b"\r\n") {
        return Err(std::io::Error::new(ErrorKind::InvalidData, format!("line without CRLF: {:?}", &out[start..])));
    }
    Ok(out[start + 1..out.len() - 2].to_vec())
}

fn parse_len(line: &[u8]) -> std::io::Result<i64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, format!("bad length {line:?}")))
}

fn read_frame_into(reader: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    let type_at = out.len();
    let line = read_line(reader, out)?;
    match out[type_at] {
        b'+' | b'-' | b':' | b',' | b'#' | b'_' | b'(' => Ok(()),
        b'$' | b'!' | b'=' => {
            let len = parse_len(&line)?;
            if len >= 0 {
                let start = out.len();
                out.resize(start + len as usize + 2, 0);
                reader.read_exact(&mut out[start..])?;
            }
            Ok(())
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = parse_len(&line)?.max(0);
            let per = if matches!(out[type_at], b'%' | b'|') { 2 } else { 1 };
            for _ in 0..count * per {
                read_frame_into(reader, out)?;
            }
            if out[type_at] == b'|' {
                read_frame_into(reader, out)?; // an attribute precedes the real reply
            }
            Ok(())
        }
        other => Err(std::io::Error::new(ErrorKind::InvalidData, format!("unknown frame type {:?}", other as char))),
    }
}

/// The payload of a simple frame as text: `+OK\r\n` → `OK`, `-ERR x\r\n` → `ERR x`,
/// `:5\r\n` → `5`, `$3\r\nabc\r\n` → `abc`; anything else is returned lossily as is.
pub fn frame_text(frame: &[u8]) -> String {
    let text = String::from_utf8_lossy(frame);
    match frame.first() {
        Some(b'+' | b'-' | b':' | b',') => text[1..].trim_end_matches("\r\n").to_string(),
        Some(b'$') => match text.split_once("\r\n") {
            Some((_, rest)) => rest.strip_suffix("\r\n").unwrap_or(rest).to_string(),
            None => text.into_owned(),
        },
        _ => text.into_owned(),
    }
}

/// Runs `run` on a fresh connection to each server, keyspace flushed, first in RESP2 and then
/// after `HELLO 3`; returns, per protocol, its name and what `run` gave on Redis and on StayKV.
pub fn on_both_in_resp2_and_resp3<T>(
    redis: &Server,
    staykv: &Server,
    mut run: impl FnMut(&mut RawConn) -> T,
) -> Vec<(&'static str, T, T)> {
    [("RESP2", None), ("RESP3", Some("3"))]
        .into_iter()
        .map(|(protocol, hello)| {
            let mut conns = [redis.connect(), staykv.connect()];
            for conn in &mut conns {
                conn.cmd(&["FLUSHALL"]);
                if let Some(version) = hello {
                    conn.cmd(&["HELLO", version]);
                }
            }
            let [r, s] = &mut conns;
            (protocol, run(r), run(s))
        })
        .collect()
}

/// Runs `scenario` on a fresh redis-server (whose lines must show each of `proofs`, or the
/// scenario tests nothing) and then on a fresh StayKV, which must give the same lines.
/// Without redis-server installed, [`Server::redis`] says so and nothing is checked.
pub fn same_as_redis(scenario: fn(&Server) -> Vec<String>, proofs: &[&str]) {
    let Some(redis) = Server::redis() else { return };
    let expected = scenario(&redis);
    for proof in proofs {
        assert!(expected.iter().any(|line| line.contains(proof)), "{proof}: {expected:#?}");
    }
    assert_eq!(scenario(&Server::staykv()), expected);
}

/// Poll `condition` every 20 ms until it returns true or `timeout` passes; returns whether
/// it became true.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Path of the workspace root (for locating scripts and fixtures).
pub fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}
