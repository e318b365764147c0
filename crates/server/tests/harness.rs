//! The black-box harness itself (`tests/common`): start, SIGKILL, restart on the same
//! directory, orderly stop; and the smallest durability promise it exists to test: an
//! acknowledged write survives `kill -9`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::Server;

#[test]
fn acknowledged_writes_survive_sigkill_and_restart() {
    let mut server = Server::staykv();
    let dir = server.dir();
    let mut conn = server.connect();
    assert_eq!(conn.cmd(&["SET", "session:1", "alice", "EX", "1000"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["INCRBY", "counter", "41"]), b":41\r\n");
    let pid = server.pid().unwrap();

    server.kill();
    assert!(!server.is_running());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "process {pid} still exists");
    assert!(conn.try_cmd(&["PING"]).is_err(), "the old connection still answers after SIGKILL");

    server.restart();
    assert_eq!(server.dir(), dir, "restart must reuse the data directory");
    assert_ne!(server.pid(), Some(pid));
    let mut conn = server.connect();
    assert_eq!(conn.cmd_text(&["GET", "session:1"]), "alice");
    let ttl: i64 = conn.cmd_text(&["TTL", "session:1"]).parse().unwrap();
    assert!((990..=1000).contains(&ttl), "TTL after restart {ttl}");
    assert_eq!(conn.cmd_text(&["INCR", "counter"]), "42");
}

#[test]
fn orderly_stop_exits_zero_and_restart_keeps_the_data() {
    let mut server = Server::staykv();
    assert_eq!(server.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exit status {status}; log:\n{}", server.log());
    server.restart();
    assert_eq!(server.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    // A running server is stopped with SIGTERM first, then started again.
    server.restart();
    assert_eq!(server.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    assert!(server.log().contains("starting StayKV"), "the log keeps every start");
}

#[test]
fn servers_get_distinct_ports_and_directories() {
    let servers: Vec<Server> = (0..4).map(|_| Server::staykv()).collect();
    for (i, a) in servers.iter().enumerate() {
        for b in &servers[i + 1..] {
            assert_ne!(a.port(), b.port());
            assert_ne!(a.dir(), b.dir());
        }
        // Each answers on its own port with its own data.
        assert_eq!(a.cmd(&["SET", "who", &i.to_string()]), b"+OK\r\n");
    }
    for (i, s) in servers.iter().enumerate() {
        assert_eq!(common::frame_text(&s.cmd(&["GET", "who"])), i.to_string());
    }
    let dirs: Vec<_> = servers.iter().map(Server::dir).collect();
    drop(servers);
    for dir in dirs {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn redis_server_harness() {
    let Some(mut redis) = Server::redis() else { return };
    assert_eq!(redis.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    let info = common::frame_text(&redis.cmd(&["INFO", "server"]));
    assert!(info.contains("redis_version:7."), "{info}");
    // Persistence is off: a restart starts empty.
    redis.kill();
    redis.restart();
    assert_eq!(redis.cmd(&["DBSIZE"]), b":0\r\n");
}
