//! Active expiry: 10,000 keys with a 1 s TTL, set through one pipeline and never
//! read again, leave the keyspace (DBSIZE and INFO keyspace) within 3 s. The same runs
//! against redis-server when it is installed, which shows the bound is Redis's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::{encode_str, Server};

const EXPIRING: usize = 10_000;
const PERSISTENT: usize = 10;

fn keyspace_line(conn: &mut common::RawConn) -> Option<String> {
    let info = conn.cmd_text(&["INFO", "keyspace"]);
    info.lines().find(|l| l.starts_with("db0:")).map(str::to_string)
}

fn check(server: &Server) {
    let what = format!("{:?}", server.kind());
    let mut conn = server.connect();
    let mut pipeline = Vec::new();
    for i in 0..PERSISTENT {
        pipeline.extend(encode_str(&["SET", &format!("keep:{i}"), "v"]));
    }
    for i in 0..EXPIRING {
        pipeline.extend(encode_str(&["SET", &format!("session:{i}"), "some session data", "EX", "1"]));
    }
    let sent = Instant::now();
    conn.send(&pipeline);
    for i in 0..PERSISTENT + EXPIRING {
        let reply = conn.read_frame().unwrap();
        assert_eq!(reply, b"+OK\r\n", "{what}: reply {i}");
    }
    let acknowledged = Instant::now();
    eprintln!("{what}: {} SETs acknowledged in {:?}", PERSISTENT + EXPIRING, acknowledged - sent);

    // Before the deadline the keys are there (unless the pipeline itself took most of it).
    if acknowledged - sent < Duration::from_millis(800) {
        let dbsize: usize = conn.cmd_text(&["DBSIZE"]).parse().unwrap();
        assert!(dbsize > PERSISTENT, "{what}: keys gone before their TTL: DBSIZE {dbsize}");
    }

    // Poll without touching the keys: DBSIZE counts expired keys until they are reclaimed.
    let deadline = acknowledged + Duration::from_secs(3);
    let want_keyspace = format!("db0:keys={PERSISTENT},expires=0,avg_ttl=0");
    let (mut dbsize, mut keyspace) = (String::new(), None);
    while Instant::now() < deadline {
        dbsize = conn.cmd_text(&["DBSIZE"]);
        keyspace = keyspace_line(&mut conn);
        if dbsize == PERSISTENT.to_string() && keyspace.as_deref() == Some(want_keyspace.as_str()) {
            eprintln!("{what}: all {EXPIRING} keys reclaimed {:?} after the last SET", acknowledged.elapsed());
            let stats = conn.cmd_text(&["INFO", "stats"]);
            let expired = stats.lines().find_map(|l| l.strip_prefix("expired_keys:")).map(|n| n.trim().to_string());
            assert_eq!(expired, Some(EXPIRING.to_string()), "{what}: expired_keys in INFO stats");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what}: 3 s after the last SET, DBSIZE is {dbsize} and INFO keyspace says {keyspace:?} (want {want_keyspace})"
    );
}

#[test]
fn ten_thousand_keys_expire_without_being_read() {
    check(&Server::staykv());
    if let Some(redis) = Server::redis() {
        check(&redis);
    }
}
