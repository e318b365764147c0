//! Server options that shape the process itself: `--threads`, from the command line and
//! from the `--config` file, the refusal of values out of bounds before anything starts, and
//! transparent huge pages turned off as Redis turns them off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod persist_common;

use common::Server;
use persist_common::staykv;

/// The start-up log's count of the runtime's worker threads, as the runtime reports it.
fn command_threads(server: &Server) -> usize {
    let log = server.log();
    let line = log.lines().find(|l| l.contains("command threads: ")).unwrap_or_else(|| panic!("no count in:\n{log}"));
    line.rsplit(": ").next().and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("bad count: {line}"))
}

#[test]
fn threads_sets_how_many_threads_run_commands() {
    let one = Server::staykv_with(&["--threads", "1"]);
    assert_eq!(command_threads(&one), 1);
    assert_eq!(one.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(one.cmd(&["GET", "k"]), b"$1\r\nv\r\n");

    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("staykv.toml");
    std::fs::write(&file, "threads = 3\n").unwrap();
    let from_file = Server::staykv_with(&["--config", &file.to_string_lossy()]);
    assert_eq!(command_threads(&from_file), 3);
    assert_eq!(from_file.cmd(&["PING"]), b"+PONG\r\n");
    // The command line wins over the file, as for every option.
    let overridden = Server::staykv_with(&["--config", &file.to_string_lossy(), "--threads", "2"]);
    assert_eq!(command_threads(&overridden), 2);
}

#[test]
fn threads_out_of_bounds_are_refused_before_anything_starts() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("data");
    for threads in ["0", "1025", "many"] {
        // The flag wins over a `STAYKV_THREADS` the environment may hold.
        let out = staykv(&["--port", "0", "--http-port", "0", "--threads", threads, "--dir", &dir.to_string_lossy()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--threads {threads} accepted");
        assert!(stderr.contains("--threads"), "--threads {threads}: {stderr}");
        assert!(!stderr.contains("panicked"), "--threads {threads}: {stderr}");
    }
    assert!(!dir.exists(), "a refused start created the data directory");
}

/// Transparent huge pages are off for the server process (Redis's `disable-thp yes`): with
/// them on, RSS counts 2 MiB pages in full (BENCHMARKS.md, "Transparent huge pages off").
#[test]
fn transparent_huge_pages_are_off_for_the_server() {
    let server = Server::staykv();
    let pid = server.pid().expect("the server's pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) else {
        eprintln!("skipped: this kernel's /proc/PID/status has no THP_enabled line");
        return;
    };
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
}
