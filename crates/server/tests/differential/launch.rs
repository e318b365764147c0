//! Starts `staykv` and `redis-server` on ephemeral ports in temporary directories, and stops
//! them (kill, wait, remove the directory) on drop.

use std::ffi::OsString;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::resp::{Conn, Value};

#[derive(Debug)]
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    child: Child,
    dir: PathBuf,
    /// The command line it was started with, for [`Server::kill_and_restart`].
    program: OsString,
    args: Vec<OsString>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("staykv-diff-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// The redis-server binary: `DIFF_REDIS_SERVER`, else `/usr/bin/redis-server`, else `redis-server` on PATH.
pub fn redis_server_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DIFF_REDIS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let debian = PathBuf::from("/usr/bin/redis-server");
    if debian.exists() {
        return Some(debian);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("redis-server")).find(|p| p.exists()))
}

impl Server {
    pub fn redis() -> Server {
        let bin = redis_server_path()
            .expect("redis-server not found: install Debian's redis-server (apt-get install redis-server) or set DIFF_REDIS_SERVER");
        Server::start("redis", |port, dir| {
            let mut c = Command::new(&bin);
            c.arg("--port")
                .arg(port.to_string())
                .arg("--bind")
                .arg("127.0.0.1")
                .arg("--save")
                .arg("")
                .arg("--appendonly")
                .arg("no")
                .arg("--dir")
                .arg(dir)
                // Blocking commands time out when the event loop next wakes: at the default
                // hz of 10 a 10 ms timeout takes up to 100 ms; 100 keeps the blocking family
                // fast.
                .arg("--hz")
                .arg("100");
            c
        })
    }

    pub fn staykv() -> Server {
        let fsync = std::env::var("DIFF_FSYNC").unwrap_or_else(|_| "no".to_string());
        Server::start("staykv", |port, dir| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_staykv"));
            c.arg("--port")
                .arg(port.to_string())
                .arg("--http-port")
                .arg("0")
                .arg("--dir")
                .arg(dir)
                .arg("--fsync")
                .arg(&fsync)
                .arg("--loglevel")
                .arg("warn");
            c
        })
    }

    fn start(name: &'static str, command: impl Fn(u16, &std::path::Path) -> Command) -> Server {
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let dir = temp_dir(name);
            let port = free_port();
            let log = dir.join("server.log");
            let command = command(port, &dir);
            let program = command.get_program().to_owned();
            let args: Vec<OsString> = command.get_args().map(ToOwned::to_owned).collect();
            let child = spawn(name, &program, &args, File::create(&log).expect("create log file"));
            let mut server = Server { name, port, child, dir, program, args };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(e) => {
                    last_error = format!("{e}; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
                    // Dropping kills it and removes its directory; then retry on another port.
                }
            }
        }
        panic!("{name} did not start: {last_error}");
    }

    /// Kills the server with SIGKILL, as a crash would, and starts it again with the same
    /// command line: the same port and data directory. Returns once it answers PING.
    pub fn kill_and_restart(&mut self) -> Result<(), String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("server.log"))
            .map_err(|e| format!("reopening the log: {e}"))?;
        self.child = spawn(self.name, &self.program, &self.args, log);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited with {status}", self.name));
            }
            if let Ok(mut c) = Conn::connect(self.port) {
                if let Ok(Value::Simple(s)) = c.call(&[b"PING"]) {
                    if s == b"PONG" {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("{} not answering PING on port {}", self.name, self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connect(&self) -> Conn {
        Conn::connect(self.port).unwrap_or_else(|e| panic!("connect to {} on {}: {e}", self.name, self.port))
    }

    /// The server's log so far (for failure reports).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines.get(lines.len().saturating_sub(20)..).unwrap_or_default().join("\n")
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Starts `program` with its output (both streams) going to `log`.
fn spawn(name: &str, program: &OsString, args: &[OsString], log: File) -> Child {
    let err = log.try_clone().expect("clone log file");
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
