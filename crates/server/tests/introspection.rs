//! SLOWLOG, LATENCY, TIME, ROLE, MEMORY, CLIENT PAUSE, CLIENT UNBLOCK and COMMAND GETKEYS against
//! Debian's redis-server 7.0: the same commands on a fresh server of each kind must leave the same
//! slow-log entries (ids, arguments as Redis cuts and redacts them, client name) and latency
//! events, with only the clock-made fields (timestamps, durations) and the client's port left out
//! of the comparison; the other replies must be byte-identical, except MEMORY USAGE's and MEMORY
//! STATS' byte counts, which describe each server's own memory (MEMORY STATS is compared by its
//! fields, their order and types), and LATENCY DOCTOR's and GRAPH's figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod persist_common;

use std::time::Duration;

use common::{frame_text, same_as_redis, RawConn, Server};
use persist_common::{call_str, Val};

/// Commands sent before reading the slow log, every one of them logged (threshold 0).
const LOGGED: &[&[&str]] = &[
    &["CLIENT", "SETNAME", "tester"],
    &["AUTH", "default", "wrongpass"],
    &["HELLO", "2", "AUTH", "default", "nopass"],
    &["ACL", "SETUSER", "u1", ">secret", "on"],
    &["ACL", "DELUSER", "u1"],
    &["CONFIG", "SET", "requirepass", ""],
    &["SET", "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "v"],
    &[
        "RPUSH", "l", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18",
        "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32", "33", "34", "35",
    ],
    &["ROLE"],
    &["GET", "l"],
    // EXEC is not entered, the commands it runs are; a script's commands are entered as its
    // fake client's ("?:0", no name), before the EVAL itself.
    &["MULTI"],
    &["SET", "a", "1"],
    &["GET", "a"],
    &["EXEC"],
    &["EVAL", "redis.call('set', 'b', '2') return redis.call('get', 'b')", "0"],
];

/// Replies compared byte for byte.
const REPLIES: &[&[&str]] = &[
    &["SLOWLOG", "LEN"],
    &["SLOWLOG", "GET", "0"],
    &["SLOWLOG", "GET", "-2"],
    &["SLOWLOG", "GET", "x"],
    &["SLOWLOG", "LEN", "x"],
    &["SLOWLOG", "FOO"],
    &["SLOWLOG", "HELP"],
    &["SLOWLOG"],
    &["ROLE"],
    &["ROLE", "x"],
    &["CONFIG", "SET", "slowlog-max-len", "-1"],
    &["CONFIG", "SET", "slowlog-log-slower-than", "-2"],
    &["CONFIG", "SET", "slowlog-log-slower-than", "x"],
    // One name each: a glob lists them in hash-table order in Redis.
    &["CONFIG", "GET", "slowlog-max-len"],
    &["CONFIG", "GET", "slowlog-log-slower-than"],
    &["MEMORY", "USAGE", "missing"],
    &["MEMORY", "USAGE", "l", "SAMPLES"],
    &["MEMORY", "USAGE", "l", "SAMPLES", "x"],
    &["MEMORY", "USAGE", "l", "SAMPLES", "-1"],
    &["MEMORY", "USAGE", "l", "FOO", "1"],
    &["MEMORY", "USAGE"],
    &["MEMORY", "FOO"],
    &["MEMORY", "PURGE"],
    &["CLIENT", "PAUSE"],
    &["CLIENT", "PAUSE", "x"],
    &["CLIENT", "PAUSE", "-1"],
    &["CLIENT", "PAUSE", "10", "foo"],
    &["CLIENT", "PAUSE", "10", "WRITE", "extra"],
    &["CLIENT", "UNPAUSE", "x"],
];

/// The slow log with the fields a clock or a port makes blanked: `[id, args, name]` per entry,
/// and the peer's address without its port.
fn entries(conn: &mut RawConn) -> Vec<String> {
    let Val::Array(Some(entries)) = call_str(conn, &["SLOWLOG", "GET", "-1"]) else { panic!("SLOWLOG GET") };
    entries
        .iter()
        .map(|entry| {
            let Val::Array(Some(fields)) = entry else { panic!("entry {entry:?}") };
            let args: Vec<String> = match &fields[3] {
                Val::Array(Some(args)) => {
                    args.iter().map(|a| String::from_utf8_lossy(&a.bytes()).into_owned()).collect()
                }
                other => panic!("args {other:?}"),
            };
            let peer = String::from_utf8_lossy(&fields[4].bytes()).into_owned();
            let host = peer.rsplit_once(':').map_or(peer.as_str(), |(host, _)| host).to_string();
            let name = String::from_utf8_lossy(&fields[5].bytes()).into_owned();
            format!("id={:?} args={args:?} host={host} name={name:?}", fields[0])
        })
        .collect()
}

fn run(server: &Server) -> (Vec<String>, Vec<String>) {
    let mut conn = server.connect();
    conn.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    conn.cmd(&["SLOWLOG", "RESET"]);
    for command in LOGGED {
        conn.cmd(command);
    }
    let logged = entries(&mut conn);
    let replies = REPLIES.iter().map(|command| frame_text(&conn.cmd(command))).collect();
    (logged, replies)
}

#[test]
fn slowlog_and_role_match_redis() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let (expected, got) = (run(&redis), run(&staykv));
    assert!(expected.0.len() > LOGGED.len(), "redis logged {:?}", expected.0);
    assert_eq!(got.0, expected.0, "slow-log entries differ");
    for ((command, r), s) in REPLIES.iter().zip(&expected.1).zip(&got.1) {
        assert_eq!(s, r, "{command:?}");
    }
}

#[test]
fn memory_usage_counts_at_least_the_bytes_stored() {
    let staykv = Server::staykv();
    let mut conn = staykv.connect();
    let long_key = "k".repeat(100);
    conn.cmd(&["SET", &long_key, &"v".repeat(1000)]);
    conn.cmd(&["RPUSH", "l", &"x".repeat(100), &"y".repeat(100)]);
    let usage = |conn: &mut RawConn, args: &[&str]| match call_str(conn, args) {
        Val::Int(n) => n,
        other => panic!("{args:?}: {other:?}"),
    };
    assert!(usage(&mut conn, &["MEMORY", "USAGE", &long_key]) >= 1100);
    assert!(usage(&mut conn, &["MEMORY", "USAGE", "l", "SAMPLES", "0"]) >= 200);
}

#[test]
fn slowlog_keeps_max_len_entries_and_threshold_minus_one_stops_it() {
    let staykv = Server::staykv();
    let mut conn = staykv.connect();
    conn.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    conn.cmd(&["CONFIG", "SET", "slowlog-max-len", "3"]);
    for i in 0..10 {
        conn.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    assert_eq!(call_str(&mut conn, &["SLOWLOG", "LEN"]), Val::Int(3));
    conn.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    conn.cmd(&["SLOWLOG", "RESET"]);
    conn.cmd(&["SET", "k", "v"]);
    assert_eq!(call_str(&mut conn, &["SLOWLOG", "LEN"]), Val::Int(0));
}

/// What `CLIENT PAUSE WRITE` does, step by step, on one server: a write waits (no reply
/// while paused) while reads go on; an expired key reads as missing but is not deleted (DBSIZE
/// still counts it) until the pause ends; UNPAUSE releases the write.
fn pause_scenario(server: &Server) -> Vec<String> {
    let (mut admin, mut writer, mut reader) = (server.connect(), server.connect(), server.connect());
    let mut seen = Vec::new();
    let mut note = |what: &str, reply: Vec<u8>| seen.push(format!("{what}: {}", frame_text(&reply)));
    note("set e", reader.cmd(&["SET", "e", "v", "PX", "100"]));
    note("pause", admin.cmd(&["CLIENT", "PAUSE", "20000", "WRITE"]));
    std::thread::sleep(Duration::from_millis(300));
    writer.send(&common::encode_str(&["SET", "k", "v"]));
    note("get k", reader.cmd(&["GET", "k"]));
    note("get e", reader.cmd(&["GET", "e"]));
    note("dbsize while paused", reader.cmd(&["DBSIZE"]));
    writer.stream().set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let held = writer.read_frame().is_err();
    note("write held", if held { b"+yes\r\n".to_vec() } else { b"+no\r\n".to_vec() });
    writer.stream().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    note("unpause", admin.cmd(&["CLIENT", "UNPAUSE"]));
    note("the write's reply", writer.read_frame().unwrap());
    note("get e after", reader.cmd(&["GET", "e"]));
    note("dbsize after", reader.cmd(&["DBSIZE"]));
    // Nor is anything evicted while paused, even under a limit far below what is used.
    for i in 0..200 {
        reader.cmd(&["SET", &format!("fill:{i}"), &"x".repeat(100)]);
    }
    admin.cmd(&["CLIENT", "PAUSE", "20000", "WRITE"]);
    admin.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    note("a limit set while paused", admin.cmd(&["CONFIG", "SET", "maxmemory", "1"]));
    note("dbsize over the limit while paused", reader.cmd(&["DBSIZE"]));
    admin.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    admin.cmd(&["CLIENT", "UNPAUSE"]);
    seen
}

#[test]
fn client_pause_write_holds_writes_expiry_and_eviction_like_redis() {
    same_as_redis(pause_scenario, &["write held: yes", "dbsize over the limit while paused: 201"]);
}

/// A client killed, or gone, while CLIENT PAUSE holds its write leaves at once and its write
/// never runs, as in Redis, which reads a client it holds. (StayKV kept both listed, and
/// ran their writes when the pause ended.)
fn held_and_gone_scenario(server: &Server) -> Vec<String> {
    let mut admin = server.connect();
    let mut seen = Vec::new();
    for (key, how) in [("killed", "CLIENT KILL"), ("gone", "close")] {
        let mut writer = server.connect();
        let id = writer.cmd_text(&["CLIENT", "ID"]);
        admin.cmd(&["CLIENT", "PAUSE", "20000", "WRITE"]);
        writer.send(&common::encode_str(&["SET", key, "written"]));
        admin.wait_blocked(1);
        if how == "close" {
            drop(writer);
        } else {
            admin.cmd(&["CLIENT", "KILL", "ID", &id]);
        }
        let left =
            common::wait_until(Duration::from_secs(10), || admin.cmd_text(&["CLIENT", "LIST", "ID", &id]).is_empty());
        admin.cmd(&["CLIENT", "UNPAUSE"]);
        let written = admin.cmd(&["GET", key]) != b"$-1\r\n";
        seen.push(format!("{how}: left while paused {left}, written {written}"));
    }
    seen
}

#[test]
fn a_client_killed_or_gone_while_paused_never_writes_as_in_redis() {
    same_as_redis(
        held_and_gone_scenario,
        &["CLIENT KILL: left while paused true, written false", "close: left while paused true, written false"],
    );
}

/// Which commands `CLIENT PAUSE WRITE` holds, each sent on its own connection: writes and
/// `may-replicate` commands (PUBLISH, PFCOUNT, scripts that declared no flags or may write),
/// EXEC by what it queued, not reads, WAIT, read-only scripts, a read-only transaction or a
/// command refused for its arguments.
/// The held clients count in `blocked_clients`, and each gets its reply at UNPAUSE.
fn pause_write_scenario(server: &Server) -> Vec<String> {
    let mut admin = server.connect();
    let library = "#!lua name=lib\nredis.register_function{function_name='ro', callback=function() return 'ro' end, flags={'no-writes'}}\nredis.register_function('rw', function() return 'rw' end)";
    for args in [&["SET", "x", "y"][..], &["PFADD", "h", "a"], &["FUNCTION", "LOAD", library]] {
        admin.cmd(args);
    }
    let sha = frame_text(&admin.cmd(&["SCRIPT", "LOAD", "#!lua flags=no-writes\nreturn 'cached'"]));
    // Transactions are queued before the pause (a write queued during one waits too).
    let transactions: [&[&[&str]]; 2] = [&[&["MULTI"], &["GET", "x"]], &[&["MULTI"], &["SET", "t", "1"]]];
    let mut conns: Vec<(String, RawConn)> = transactions
        .iter()
        .map(|queue| {
            let mut conn = server.connect();
            queue.iter().for_each(|args| drop(conn.cmd(args)));
            (format!("EXEC after {:?}", queue[1]), conn)
        })
        .collect();
    admin.cmd(&["CLIENT", "PAUSE", "20000", "WRITE"]);
    let commands: &[&[&str]] = &[
        &["GET", "x"],
        &["SET", "k", "v"],
        &["SET", "k"],
        &["PUBLISH", "c", "m"],
        &["PFCOUNT", "h"],
        &["WAIT", "0", "0"],
        &["EVAL", "return 1", "0"],
        &["EVAL", "#!lua\nreturn 2", "0"],
        &["EVAL", "#!lua flags=no-writes\nreturn 3", "0"],
        &["EVAL_RO", "return redis.call('get', 'x')", "0"],
        &["EVALSHA", &sha, "0"],
        &["FCALL", "ro", "0"],
        &["FCALL", "rw", "0"],
    ];
    for args in commands {
        conns.push((format!("{args:?}"), server.connect()));
        conns.last_mut().unwrap().1.send(&common::encode_str(args));
    }
    for (_, conn) in conns.iter_mut().take(2) {
        conn.send(&common::encode_str(&["EXEC"]));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut seen = Vec::new();
    let mut held = Vec::new();
    for (what, conn) in &mut conns {
        conn.stream().set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        match conn.read_frame() {
            Ok(reply) => seen.push(format!("{what} ran: {}", frame_text(&reply))),
            Err(_) => held.push(what.clone()),
        }
    }
    let clients = frame_text(&admin.cmd(&["INFO", "clients"]));
    seen.extend(clients.lines().filter(|l| l.starts_with("blocked_clients")).map(String::from));
    admin.cmd(&["CLIENT", "UNPAUSE"]);
    for (what, conn) in &mut conns {
        if held.contains(what) {
            conn.stream().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            seen.push(format!("{what} held, then: {}", frame_text(&conn.read_frame().unwrap())));
        }
    }
    seen
}

#[test]
fn client_pause_write_holds_what_may_replicate_like_redis() {
    same_as_redis(
        pause_write_scenario,
        &["blocked_clients:7", r#"EXEC after ["GET", "x"] ran"#, r#"["FCALL", "ro", "0"] ran"#, "held, then"],
    );
}

/// CLIENT LIST and CLIENT KILL by type (a subscriber is `pubsub`, flag `P`, with its counts
/// of subscriptions; a blocked client has flag `b`), SKIPME yes and no, and their errors.
fn client_types_scenario(server: &Server) -> Vec<String> {
    let (mut admin, mut subscriber, plain) = (server.connect(), server.connect(), server.connect());
    let mut waiter = server.connect();
    waiter.send(&common::encode_str(&["BLPOP", "q", "0"]));
    std::thread::sleep(Duration::from_millis(200));
    subscriber.send(&common::encode_str(&["SUBSCRIBE", "a", "b"]));
    subscriber.send(&common::encode_str(&["PSUBSCRIBE", "p*"]));
    for _ in 0..3 {
        subscriber.read_frame().unwrap();
    }
    let mut seen = Vec::new();
    let fields = ["flags", "sub", "psub", "ssub"];
    for kind in ["pubsub", "normal", "replica", "master"] {
        let list = frame_text(&admin.cmd(&["CLIENT", "LIST", "TYPE", kind]));
        // (Sorted: which order the clients come in is no part of this.)
        let mut described: Vec<String> = list
            .lines()
            .map(|line| {
                let pairs = line.split(' ').filter(|p| fields.iter().any(|f| p.starts_with(&format!("{f}="))));
                pairs.collect::<Vec<_>>().join(" ")
            })
            .collect();
        described.sort();
        seen.push(format!("LIST TYPE {kind}: {described:?}"));
    }
    let steps: &[&[&str]] = &[
        &["CLIENT", "LIST", "TYPE", "wrong_type"],
        &["CLIENT", "KILL", "TYPE", "wrong_type"],
        &["CLIENT", "KILL", "USER", "nosuch"],
        &["CLIENT", "KILL", "SKIPME", "maybe"],
        &["CLIENT", "KILL", "ID", "0"],
        &["CLIENT", "KILL", "TYPE", "master"],
        &["CLIENT", "KILL", "TYPE", "pubsub"],
        &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"],
        &["PING"],
        &["CLIENT", "KILL", "TYPE", "normal", "USER", "default", "SKIPME", "no"],
    ];
    for args in steps {
        seen.push(format!("{args:?} -> {}", frame_text(&admin.cmd(args))));
    }
    seen.push(format!("the caller after: {:?}", admin.try_cmd(&["PING"]).map(|r| frame_text(&r)).ok()));
    drop((plain, waiter));
    seen
}

#[test]
fn client_list_and_kill_by_type_like_redis() {
    same_as_redis(
        client_types_scenario,
        &["P sub=2 psub=1 ssub=0", r#""SKIPME", "no"] -> 1"#, "the caller after: None"],
    );
}

/// CLIENT REPLY OFF, ON and SKIP over a pipeline: which replies come back. A CLIENT REPLY ON
/// sent in place of the skipped command is answered, a RESET not.
fn client_reply_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    let pipeline: &[&[&str]] = &[
        &["CLIENT", "REPLY", "SKIP"],
        &["CLIENT", "REPLY", "ON"],
        &["ECHO", "a"],
        &["CLIENT", "REPLY", "SKIP"],
        &["ECHO", "b"],
        &["ECHO", "c"],
        &["CLIENT", "REPLY", "OFF"],
        &["ECHO", "d"],
        &["CLIENT", "REPLY", "SKIP"],
        &["ECHO", "e"],
        &["CLIENT", "REPLY", "ON"],
        &["ECHO", "f"],
        &["CLIENT", "REPLY", "SKIP"],
        &["RESET"],
        &["ECHO", "g"],
    ];
    for args in pipeline {
        conn.send(&common::encode_str(args));
    }
    vec![String::from_utf8_lossy(&conn.drain(1, Duration::from_millis(300)).bytes).into_owned()]
}

#[test]
fn client_reply_silences_as_in_redis() {
    same_as_redis(client_reply_scenario, &["+OK\r\n$1\r\na\r\n$1\r\nc\r\n+OK\r\n$1\r\nf\r\n$1\r\ng\r\n"]);
}

/// What MONITOR shows, with the time and the client's port taken out: the commands EXEC ran
/// (each in the database it ran in) before EXEC, a script's commands after the script, as
/// the fake client `lua`; a blocking command once, when it blocks; AUTH's password redacted.
/// RESET ends it.
fn monitor_scenario(server: &Server) -> Vec<String> {
    let (mut monitor, mut client, mut waiter) = (server.connect(), server.connect(), server.connect());
    monitor.cmd(&["MONITOR"]);
    waiter.send(&common::encode_str(&["BLPOP", "q", "0"]));
    std::thread::sleep(Duration::from_millis(200));
    let steps: &[&[&str]] = &[
        &["LPUSH", "elsewhere", "x"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["SELECT", "2"],
        &["GET", "a"],
        &["EXEC"],
        &["EVAL", "redis.call('set', KEYS[1], ARGV[1]) return redis.pcall('get', 'x')", "1", "k", "v"],
        &["AUTH", "secret"],
        // Shown or not by the subcommand's own flags: CLIENT LIST is admin, CLIENT ID and the
        // HELPs are not.
        &["CLIENT", "LIST"],
        &["CLIENT", "ID"],
        &["CONFIG", "HELP"],
        &["SELECT", "0"],
        &["RPUSH", "q", "v"],
    ];
    for args in steps {
        client.cmd(args);
    }
    waiter.read_frame().unwrap();
    client.cmd(&["PING"]);
    let mut seen = Vec::new();
    while seen.last().is_none_or(|line: &String| !line.contains("\"PING\"")) {
        let line = frame_text(&monitor.read_frame().unwrap());
        let (_time, rest) = line.split_once(' ').unwrap();
        let port = |s: &str| {
            s.split_once("127.0.0.1:").map_or(s.to_string(), |(a, b)| format!("{a}{}", &b[b.find(']').unwrap()..]))
        };
        seen.push(port(rest));
    }
    // RESET ends MONITOR: its reply is the last thing the connection gets.
    seen.push(format!("RESET -> {}", frame_text(&monitor.cmd(&["RESET"]))));
    client.cmd(&["PING"]);
    let after = monitor.drain(0, Duration::from_millis(200)).bytes;
    seen.push(format!("after RESET: {:?}", String::from_utf8_lossy(&after)));
    seen
}

#[test]
fn monitor_shows_commands_as_redis_does() {
    same_as_redis(
        monitor_scenario,
        &[r#"[2 ] "EXEC""#, r#"[2 lua] "get" "x""#, "(redacted)", r#""CLIENT" "ID""#, r#"after RESET: """#],
    );
}

/// Every parameter `CONFIG GET *` lists can be set back to the value it gave (Redis's own
/// "CONFIG sanity" test does so), but those that are fixed once the server started, which
/// Redis fixes too. StayKV keeps the address and ports it listens on: their own values are
/// taken, others refused.
#[test]
fn config_set_takes_back_what_config_get_gave() {
    const FIXED: [&str; 4] = ["aclfile", "dir", "databases", "disable-thp"];
    let server = Server::staykv();
    let mut conn = server.connect();
    let Val::Array(Some(listed)) = call_str(&mut conn, &["CONFIG", "GET", "*"]) else {
        panic!("CONFIG GET * is no array")
    };
    let mut refused = Vec::new();
    for pair in listed.chunks(2) {
        let [Val::Bulk(Some(name)), Val::Bulk(Some(value))] = pair else { panic!("not a name and a value: {pair:?}") };
        let name = String::from_utf8_lossy(name).into_owned();
        if FIXED.contains(&name.as_str()) {
            continue;
        }
        let reply = conn.cmd_bytes(&[b"CONFIG", b"SET", name.as_bytes(), value]);
        if reply != b"+OK\r\n" {
            refused.push(format!("{name} {:?}: {}", String::from_utf8_lossy(value), frame_text(&reply)));
        }
    }
    assert!(listed.len() > 80 && refused.is_empty(), "refused: {refused:#?}");
    let other_port = (server.port() + 1).to_string();
    assert!(conn.cmd_text(&["CONFIG", "SET", "port", &other_port]).contains("listens where it started"));
    // What StayKV always does is not switched off by saying so: refused, not ignored.
    for (name, value, why) in [
        ("appendonly", "no", "StayKV logs every write"),
        ("save", "3600 1", "StayKV logs every write"),
        ("protected-mode", "no", "beyond loopback while there is no password"),
        ("lfu-log-factor", "20", "keeps Redis's defaults"),
    ] {
        let reply = conn.cmd_text(&["CONFIG", "SET", name, value]);
        assert!(reply.contains(why), "{name} {value}: {reply}");
    }
    assert_eq!(conn.cmd_text(&["CONFIG", "GET", "save"]), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
}

/// CLIENT LIST shows a client inside MULTI as Redis does (flag `x`, `multi=` its queued
/// commands, `multi-mem` their memory), and each connection's own socket (`fd=`).
fn transaction_in_client_list(server: &Server) -> Vec<String> {
    let (mut queuing, mut admin) = (server.connect(), server.connect());
    let mut seen = Vec::new();
    let line_of = |admin: &mut RawConn, id: &str| -> String {
        let list = frame_text(&admin.cmd(&["CLIENT", "LIST", "ID", id]));
        let fields: Vec<&str> = list.split_whitespace().collect();
        let field = |name: &str| fields.iter().find_map(|f| f.strip_prefix(name)).unwrap_or("?").to_string();
        let fd: i64 = field("fd=").parse().unwrap_or(-1);
        let queued_memory: i64 = field("multi-mem=").parse().unwrap_or(-1);
        format!("flags={} multi={} multi-mem>0:{} fd>0:{}", field("flags="), field("multi="), queued_memory > 0, fd > 0)
    };
    let id = queuing.cmd_text(&["CLIENT", "ID"]);
    seen.push(line_of(&mut admin, &id));
    // `d`: a watched key changed (EXEC will fail), until EXEC, DISCARD or UNWATCH.
    queuing.cmd(&["WATCH", "w"]);
    admin.cmd(&["SET", "w", "1"]);
    seen.push(format!("watched key changed: {}", line_of(&mut admin, &id)));
    queuing.cmd(&["UNWATCH"]);
    seen.push(format!("UNWATCH: {}", line_of(&mut admin, &id)));
    for command in [&["MULTI"][..], &["SET", "a", "1"], &["GET", "a"]] {
        queuing.cmd(command);
        seen.push(format!("{command:?}: {}", line_of(&mut admin, &id)));
    }
    queuing.cmd(&["EXEC"]);
    seen.push(format!("EXEC: {}", line_of(&mut admin, &id)));
    // From inside the transaction, CLIENT INFO shows the one it runs in.
    for command in [&["MULTI"][..], &["SET", "a", "1"], &["CLIENT", "INFO"]] {
        queuing.cmd(command);
    }
    let replies = frame_text(&queuing.cmd(&["EXEC"]));
    let fields: Vec<&str> = replies.split_whitespace().collect();
    let field = |name: &str| fields.iter().find_map(|f| f.strip_prefix(name)).unwrap_or("?").to_string();
    let queued_memory: i64 = field("multi-mem=").parse().unwrap_or(-1);
    seen.push(format!(
        "inside EXEC: flags={} multi={} multi-mem>0:{}",
        field("flags="),
        field("multi="),
        queued_memory > 0
    ));
    seen
}

#[test]
fn client_list_shows_transactions_and_sockets_as_redis() {
    same_as_redis(
        transaction_in_client_list,
        &[
            "[\"GET\", \"a\"]: flags=x multi=2 multi-mem>0:true fd>0:true",
            "EXEC: flags=N multi=-1 multi-mem>0:false",
            "inside EXEC: flags=x multi=2 multi-mem>0:true",
            "watched key changed: flags=d multi=-1",
            "UNWATCH: flags=N multi=-1",
        ],
    );
}

/// CLIENT LIST shows what a client's buffers hold, as Redis's does: a subscriber that stopped
/// reading has its unsent messages in `omem` and `oll`, a client halfway through sending a
/// large value those bytes in `qbuf`; both go back to nothing once taken. StayKV showed 0 for
/// all of them, so the one client holding memory could not be told from the others. And the
/// subscriber gets every message once it reads again: those published while the server
/// waited for its socket used to stay queued until the next PUBLISH.
fn buffers_in_client_list(server: &Server) -> Vec<String> {
    const MESSAGES: usize = 40;
    const MESSAGE: usize = 1 << 20;
    const VALUE: usize = 100_000;
    let (mut admin, mut subscriber, mut writer) = (server.connect(), server.connect(), server.connect());
    admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0"]);
    let field = |admin: &mut RawConn, id: &str, name: &str| -> usize {
        let line = frame_text(&admin.cmd(&["CLIENT", "LIST", "ID", id]));
        let value = line.split_whitespace().find_map(|f| f.strip_prefix(name).and_then(|f| f.strip_prefix('=')));
        value.and_then(|v| v.parse().ok()).unwrap_or(usize::MAX)
    };
    let mut seen = Vec::new();
    let id = subscriber.cmd_text(&["CLIENT", "ID"]);
    subscriber.cmd(&["SUBSCRIBE", "ch"]);
    let message = "m".repeat(MESSAGE);
    for _ in 0..MESSAGES {
        admin.cmd(&["PUBLISH", "ch", &message]);
    }
    // The socket buffers take some of the 40 MB; the rest waits in the server.
    let half = MESSAGES * MESSAGE / 2;
    seen.push(format!("unread: omem over 20 MB {}", field(&mut admin, &id, "omem") > half));
    seen.push(format!("oll over 0 {}", field(&mut admin, &id, "oll") > 0));
    for _ in 0..MESSAGES {
        subscriber.read_frame().unwrap();
    }
    let drained = common::wait_until(Duration::from_secs(10), || field(&mut admin, &id, "omem") == 0);
    seen.push(format!("read: omem 0 {drained}"));

    let id = writer.cmd_text(&["CLIENT", "ID"]);
    let request = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${VALUE}\r\n{}\r\n", "v".repeat(VALUE));
    let (first, rest) = request.as_bytes().split_at(request.len() / 2);
    writer.send(first);
    let filling = common::wait_until(Duration::from_secs(10), || {
        let qbuf = field(&mut admin, &id, "qbuf");
        qbuf >= VALUE / 3 && qbuf != usize::MAX
    });
    seen.push(format!("half sent: qbuf over a third of the value {filling}"));
    writer.send(rest);
    seen.push(format!("sent: {}", frame_text(&writer.read_frame().unwrap())));
    seen.push(format!("run: qbuf {}", field(&mut admin, &id, "qbuf")));
    seen
}

#[test]
fn client_list_shows_buffers_as_redis() {
    same_as_redis(buffers_in_client_list, &["omem over 20 MB true", "qbuf over a third of the value true", "qbuf 0"]);
}

/// `maxmemory-clients` closes the client holding the most once all of them hold the limit,
/// as Redis does, then the next, until under it; never one under CLIENT NO-EVICT (flag `e`).
/// INFO counts them. The limit is bytes or a percentage of `maxmemory`, refused past 100%.
fn client_eviction_scenario(server: &Server) -> Vec<String> {
    let mut admin = server.connect();
    let mut seen = Vec::new();
    for value in ["101%", "lots", "10%", "8mb"] {
        seen.push(format!("{value}: {}", frame_text(&admin.cmd(&["CONFIG", "SET", "maxmemory-clients", value]))));
        seen.push(frame_text(&admin.cmd(&["CONFIG", "GET", "maxmemory-clients"])));
    }
    admin.cmd(&["CLIENT", "NO-EVICT", "on"]);
    let listed = |admin: &mut RawConn, id: &str| frame_text(&admin.cmd(&["CLIENT", "LIST", "ID", id]));
    // First a client sending a large value, then one doing the same under NO-EVICT: each
    // holds 10 MB of a 20 MB value, over the 8 MB limit on its own.
    for exempt in [false, true] {
        let (mut large, mut small) = (server.connect(), server.connect());
        if exempt {
            large.cmd(&["CLIENT", "NO-EVICT", "on"]);
        }
        let (large_id, small_id) = (large.cmd_text(&["CLIENT", "ID"]), small.cmd_text(&["CLIENT", "ID"]));
        let head = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", 20 << 20);
        // Leniently: a server may close it before all of it is written.
        large.send_lenient(head.as_bytes());
        large.send_lenient(&vec![b'v'; 10 << 20]);
        let (gone, still) = if exempt { (&small_id, &large_id) } else { (&large_id, &small_id) };
        let closed = common::wait_until(Duration::from_secs(10), || listed(&mut admin, gone).is_empty());
        let kept = listed(&mut admin, still);
        seen.push(format!(
            "exempt {exempt}: closed {closed}, kept {}, flagged e {}",
            !kept.is_empty(),
            kept.contains("flags=e ")
        ));
        let stats = frame_text(&admin.cmd(&["INFO", "stats"]));
        seen.extend(stats.lines().filter(|line| line.starts_with("evicted_clients:")).map(str::to_string));
    }
    admin.cmd(&["CONFIG", "SET", "maxmemory-clients", "0"]);
    seen
}

#[test]
fn maxmemory_clients_closes_the_largest_client_as_in_redis() {
    same_as_redis(
        client_eviction_scenario,
        &[
            "exempt false: closed true, kept true, flagged e false",
            "exempt true: closed true, kept true, flagged e true",
            "evicted_clients:2",
        ],
    );
}

/// Over `maxmemory` because of what connections hold, the clients over `maxmemory-clients`
/// go before any key, as Redis's `processCommand` evicts clients first: 30 connections each
/// send 250 KB of a command they never finish (maxmemory.tcl's "input buffer of a dead
/// client"), then commands poll until something was evicted. StayKV closed clients on its
/// housekeeping tick only, and the first command over the limit evicted 26 of the 50 keys.
fn dead_clients_scenario(server: &Server) -> Vec<String> {
    let mut admin = server.connect();
    for args in [
        &["CONFIG", "SET", "maxmemory", "11mb"][..],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        &["CONFIG", "SET", "maxmemory-clients", "3mb"],
        &["CLIENT", "NO-EVICT", "on"],
    ] {
        admin.cmd(args);
    }
    for j in 0..50 {
        admin.cmd(&["SETRANGE", &j.to_string(), "100000", "x"]);
    }
    let mut unfinished = String::from("*250\r\n");
    for _ in 0..249 {
        unfinished.push_str(&format!("$1000\r\n{}\r\n", "x".repeat(1000)));
    }
    let dead: Vec<RawConn> = (0..30)
        .map(|_| {
            let mut conn = server.connect();
            conn.send_lenient(unfinished.as_bytes());
            conn
        })
        .collect();
    let stat = |admin: &mut RawConn, name: &str| -> u64 {
        let stats = frame_text(&admin.cmd(&["INFO", "stats"]));
        let line = stats.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_owned));
        line.and_then(|v| v.trim().parse().ok()).unwrap_or_default()
    };
    common::wait_until(Duration::from_secs(10), || {
        stat(&mut admin, "evicted_clients") > 0 || stat(&mut admin, "evicted_keys") > 0
    });
    let mut seen = vec![
        format!("evicted keys: {}", stat(&mut admin, "evicted_keys")),
        format!("clients evicted: {}", stat(&mut admin, "evicted_clients") > 0),
        format!("dbsize: {}", frame_text(&admin.cmd(&["DBSIZE"]))),
    ];
    // Once they have left, memory counts in full again: a limit 300 KB under what is in use
    // evicts keys.
    drop(dead);
    let alone = common::wait_until(Duration::from_secs(10), || {
        frame_text(&admin.cmd(&["INFO", "clients"])).contains("connected_clients:1\r")
    });
    let memory = frame_text(&admin.cmd(&["INFO", "memory"]));
    let used: u64 =
        memory.lines().find_map(|l| l.strip_prefix("used_memory:")?.trim().parse().ok()).unwrap_or_default();
    admin.cmd(&["CONFIG", "SET", "maxmemory", &(used - 300_000).to_string()]);
    admin.cmd(&["SET", "after", "v"]);
    seen.push(format!(
        "alone {alone}, then keys evicted under a lower limit: {}",
        stat(&mut admin, "evicted_keys") > 0
    ));
    admin.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    admin.cmd(&["CONFIG", "SET", "maxmemory-clients", "0"]);
    seen
}

#[test]
fn clients_over_maxmemory_clients_go_before_any_key_as_in_redis() {
    same_as_redis(
        dead_clients_scenario,
        &[
            "evicted keys: 0",
            "clients evicted: true",
            "dbsize: 50",
            "alone true, then keys evicted under a lower limit: true",
        ],
    );
}

/// A reply waiting for a client that does not read counts toward `maxmemory-clients`, as in
/// Redis: `LRANGE` of a 100 MB list, never read, gets its client evicted. The room of the
/// buffer replies wait in was counted only once a write finished, never for a stalled one.
fn unread_reply_scenario(server: &Server) -> Vec<String> {
    let mut admin = server.connect();
    let element = "e".repeat(500);
    for _ in 0..200 {
        let mut push = vec!["RPUSH", "biglist"];
        push.extend(std::iter::repeat_n(element.as_str(), 1000));
        admin.cmd(&push);
    }
    admin.cmd(&["CONFIG", "SET", "maxmemory-clients", "20mb"]);
    admin.cmd(&["CLIENT", "NO-EVICT", "on"]);
    let mut reader = server.connect();
    reader.send(&common::encode_str(&["LRANGE", "biglist", "0", "-1"]));
    let evicted = common::wait_until(Duration::from_secs(10), || {
        frame_text(&admin.cmd(&["INFO", "stats"])).contains("evicted_clients:1\r")
    });
    admin.cmd(&["CONFIG", "SET", "maxmemory-clients", "0"]);
    admin.cmd(&["DEL", "biglist"]);
    drop(reader);
    vec![format!("the client of an unread 100 MB reply evicted: {evicted}")]
}

#[test]
fn an_unread_reply_counts_toward_maxmemory_clients_as_in_redis() {
    same_as_redis(unread_reply_scenario, &["evicted: true"]);
}

/// CONFIG SET client-output-buffer-limit takes all three classes and CONFIG GET gives back
/// what was set, as in Redis (the replica class limits nothing on StayKV, which has no
/// replicas, but a tool that sets it reads it back).
fn output_limit_classes(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    let mut seen = Vec::new();
    for limits in ["normal 1mb 2mb 60 replica 3mb 4mb 70 pubsub 5mb 6mb 80", "slave 1 2", "other 1 2 3"] {
        seen.push(frame_text(&conn.cmd(&["CONFIG", "SET", "client-output-buffer-limit", limits])));
        seen.push(frame_text(&conn.cmd(&["CONFIG", "GET", "client-output-buffer-limit"])));
    }
    seen
}

#[test]
fn output_buffer_limit_classes_read_back_as_in_redis() {
    same_as_redis(output_limit_classes, &["slave 3145728 4194304 70"]);
}

/// Connections that each once carried a large reply hold nothing of it once it is written,
/// as in Redis, which frees a reply's blocks as they go out: a pool's connections would else
/// each keep the largest reply they ever carried (ten 10 MB replies held 100 MB of
/// `used_memory`, and of RSS, until the connections closed).
fn large_replies_scenario(server: &Server) -> Vec<String> {
    const CONNECTIONS: usize = 10;
    let mut admin = server.connect();
    let element = "e".repeat(500);
    for _ in 0..20 {
        let mut push = vec!["RPUSH", "list"];
        push.extend(std::iter::repeat_n(element.as_str(), 1000));
        admin.cmd(&push);
    }
    let used_memory = |admin: &mut RawConn| -> i64 {
        let info = frame_text(&admin.cmd(&["INFO", "memory"]));
        info.lines()
            .find_map(|line| line.strip_prefix("used_memory:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(-1)
    };
    let before = used_memory(&mut admin);
    let mut pool: Vec<RawConn> = (0..CONNECTIONS).map(|_| server.connect()).collect();
    for conn in &mut pool {
        assert!(conn.cmd(&["LRANGE", "list", "0", "-1"]).len() > 10_000_000);
    }
    let grown = used_memory(&mut admin) - before;
    vec![format!("{CONNECTIONS} connections after a 10 MB reply each hold under 4 MB: {}", grown < 4 << 20)]
}

#[test]
fn written_replies_leave_no_memory_held_as_in_redis() {
    same_as_redis(large_replies_scenario, &["hold under 4 MB: true"]);
}

/// CLIENT UNBLOCK ends a BLPOP or an XREAD BLOCK as a timeout or with an error; errors and
/// the 0 for a client not blocked, as Redis answers.
fn unblock_scenario(server: &Server) -> Vec<String> {
    let (mut blocked, mut admin) = (server.connect(), server.connect());
    admin.cmd(&["CONFIG", "RESETSTAT"]);
    let id = frame_text(&blocked.cmd(&["CLIENT", "ID"]));
    let mut seen = Vec::new();
    for (wait, how) in [
        (&["BLPOP", "list", "0"][..], None),
        (&["BLPOP", "list", "0"], Some("ERROR")),
        (&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"], Some("TIMEOUT")),
    ] {
        blocked.send(&common::encode_str(wait));
        std::thread::sleep(Duration::from_millis(200));
        let mut unblock = vec!["CLIENT", "UNBLOCK", &id];
        unblock.extend(how);
        seen.push(format!("UNBLOCK {how:?} -> {}", frame_text(&admin.cmd(&unblock))));
        seen.push(format!("{wait:?} answered {}", frame_text(&blocked.read_frame().unwrap())));
    }
    for args in [
        &["CLIENT", "UNBLOCK", &id][..],
        &["CLIENT", "UNBLOCK", "999999"],
        &["CLIENT", "UNBLOCK", "x"],
        &["CLIENT", "UNBLOCK", &id, "FOO"],
        &["CLIENT", "UNBLOCK", &id, "TIMEOUT", "extra"],
    ] {
        seen.push(format!("{:?} -> {}", args.get(3..), frame_text(&admin.cmd(args))));
    }
    // Each wait CLIENT UNBLOCK ended is a call, and a failed one, as Redis 7.0 counts it.
    let stats = frame_text(&admin.cmd(&["INFO", "commandstats"]));
    for name in ["blpop", "xread"] {
        let line = stats.lines().find(|line| line.starts_with(&format!("cmdstat_{name}:"))).unwrap_or_default();
        let counts: Vec<&str> = line.split(',').filter(|field| !field.starts_with("usec")).collect();
        seen.push(counts.join(","));
    }
    seen
}

#[test]
fn client_unblock_ends_waits_like_redis() {
    same_as_redis(unblock_scenario, &["UNBLOCKED", "cmdstat_blpop:calls=2,rejected_calls=0,failed_calls=2"]);
}

/// CLIENT KILL closes a client wherever it waits: for its next request, in BLPOP,
/// subscribed, or with replies it does not read still to be written.
fn kill_scenario(server: &Server) -> Vec<String> {
    const BIG: usize = 8 << 20;
    const GETS: usize = 8;
    let mut admin = server.connect();
    admin.cmd(&["SET", "big", &"x".repeat(BIG)]);
    let get_big = common::encode_str(&["GET", "big"]).repeat(GETS);
    let mut seen = Vec::new();
    for (what, request) in [
        ("idle", Vec::new()),
        ("in BLPOP", common::encode_str(&["BLPOP", "list", "0"])),
        ("subscribed", common::encode_str(&["SUBSCRIBE", "channel"])),
        ("not reading", get_big.clone()),
    ] {
        let mut victim = server.connect();
        let id = victim.cmd_text(&["CLIENT", "ID"]);
        victim.send(&request);
        std::thread::sleep(Duration::from_millis(300));
        seen.push(format!("{what}: KILL -> {}", admin.cmd_text(&["CLIENT", "KILL", "ID", &id])));
        let drained = victim.drain(0, Duration::from_secs(10));
        let cut_short = drained.bytes.len() < BIG * GETS;
        seen.push(format!("{what}: closed: {}, replies cut short: {cut_short}", drained.closed));
    }
    seen
}

#[test]
fn client_kill_closes_a_client_wherever_it_waits_like_redis() {
    same_as_redis(kill_scenario, &["not reading: closed: true"]);
}

/// A client that kills itself with more pipelined behind the kill: its KILL is answered, the
/// rest never runs.
fn self_kill_scenario(server: &Server) -> Vec<String> {
    let mut admin = server.connect();
    let mut victim = server.connect();
    let id = victim.cmd_text(&["CLIENT", "ID"]);
    let mut batch = common::encode_str(&["CLIENT", "KILL", "ID", &id, "SKIPME", "no"]);
    batch.extend(common::encode_str(&["SET", "after", "1"]));
    batch.extend(common::encode_str(&["INCR", "counter"]).repeat(100));
    victim.send(&batch);
    let drained = victim.drain(0, Duration::from_secs(10));
    vec![
        format!("the victim read {:?}, closed: {}", String::from_utf8_lossy(&drained.bytes), drained.closed),
        format!("after: {}", admin.cmd_text(&["EXISTS", "after"])),
        format!("counter: {}", admin.cmd_text(&["EXISTS", "counter"])),
    ]
}

#[test]
fn a_client_that_kills_itself_runs_nothing_after_as_in_redis() {
    same_as_redis(self_kill_scenario, &["the victim read \":1\\r\\n\", closed: true", "counter: 0"]);
}

/// DEBUG and MODULE LOAD are refused as Redis refuses them by default
/// (`enable-debug-command` / `enable-module-command no`); MODULE LIST is empty; COMMAND INFO
/// describes DEBUG with Redis's flags.
fn protected_commands_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    let cases: &[&[&str]] = &[
        &["DEBUG", "SLEEP", "0"],
        &["DEBUG", "OBJECT", "k"],
        &["DEBUG"],
        &["COMMAND", "INFO", "debug"],
        &["MODULE", "LIST"],
        &["MODULE", "LIST", "x"],
        &["MODULE", "LOAD", "/tmp/x.so"],
        &["MODULE", "LOADEX", "/tmp/x.so", "ARGS", "a"],
        &["MODULE", "UNLOAD", "x"],
        &["MODULE", "HELP"],
        &["MODULE", "FOO"],
        &["MODULE"],
    ];
    answers(&mut conn, cases)
}

/// Each command of `cases` and the server's answer, one line each.
fn answers(conn: &mut RawConn, cases: &[&[&str]]) -> Vec<String> {
    cases.iter().map(|args| format!("{args:?} -> {}", frame_text(&conn.cmd(args)))).collect()
}

#[test]
fn debug_and_module_are_refused_like_redis_by_default() {
    same_as_redis(protected_commands_scenario, &["MODULE command not allowed"]);
}

/// A single server's answers to cluster and replication commands, which clients and tools
/// probe to tell a standalone server from a cluster: Redis's refusal text, arity and
/// subcommand errors first, REPLICAOF NO ONE accepted, FAILOVER's argument checks. (REPLICAOF
/// to a real master is left out: Redis would start replicating, StayKV refuses.)
fn standalone_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    let cases: &[&[&str]] = &[
        &["CLUSTER", "INFO"],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "SHARDS"],
        &["CLUSTER", "NODES"],
        &["CLUSTER", "HELP"],
        &["CLUSTER", "KEYSLOT", "k"],
        &["CLUSTER", "KEYSLOT"],
        &["CLUSTER", "SLOTS", "x"],
        &["CLUSTER", "NOSUCH"],
        &["CLUSTER"],
        &["READONLY"],
        &["READWRITE"],
        &["ASKING"],
        &["READONLY", "x"],
        &["REPLICAOF", "NO", "ONE"],
        &["SLAVEOF", "no", "one"],
        &["REPLICAOF", "no"],
        &["REPLICAOF", "host", "99999"],
        &["REPLICAOF", "host", "port"],
        &["REPLICAOF", "no", "two"],
        &["FAILOVER"],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "ABORT", "x"],
        &["FAILOVER", "TO", "h", "1", "TIMEOUT", "10", "FORCE"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["FAILOVER", "TIMEOUT", "x"],
        &["FAILOVER", "TIMEOUT", "5", "TIMEOUT", "6"],
        &["FAILOVER", "TO", "h"],
        &["FAILOVER", "TO", "h", "port"],
        &["FAILOVER", "FORCE", "FORCE"],
        &["FAILOVER", "NOSUCH"],
        &["ROLE"],
        &["COMMAND", "INFO", "readonly", "asking", "failover"],
    ];
    let mut seen = answers(&mut conn, cases);
    // COMMAND LIST names subcommands too, in an order Redis leaves to its hash table.
    for pattern in ["cluster|s*", "*|get"] {
        let listed = frame_text(&conn.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", pattern]));
        let mut names: Vec<&str> = listed.lines().filter(|line| !line.starts_with(['*', '$'])).collect();
        names.sort_unstable();
        seen.push(format!("COMMAND LIST {pattern} -> {names:?}"));
    }
    seen
}

/// COMMAND INFO's aggregate types in RESP3: sets for flags, categories, tips and key specs,
/// an array of a container's subcommand entries (an empty set when there are none). Compared
/// as the sorted aggregate headers, since subcommands come in Redis's hash-table order; and
/// COMMAND LIST's ACL category filter, which ignores case.
fn command_info_resp3_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    conn.cmd(&["HELLO", "3"]);
    let mut seen = Vec::new();
    for name in ["get", "xinfo", "config", "object", "eval"] {
        let text = frame_text(&conn.cmd(&["COMMAND", "INFO", name]));
        let mut headers: Vec<&str> = text.lines().filter(|line| line.starts_with(['*', '~', '%'])).collect();
        headers.sort_unstable();
        seen.push(format!("COMMAND INFO {name}: {headers:?}"));
    }
    for category in ["geo", "Geo"] {
        let listed = frame_text(&conn.cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", category]));
        let mut names: Vec<&str> = listed.lines().filter(|line| !line.starts_with(['*', '$'])).collect();
        names.sort_unstable();
        seen.push(format!("ACLCAT {category}: {names:?}"));
    }
    seen
}

#[test]
fn command_info_has_redis_types_in_resp3() {
    same_as_redis(command_info_resp3_scenario, &["\"*4\"", "\"geoadd\""]);
}

#[test]
fn cluster_and_replication_commands_answer_as_a_standalone_redis() {
    same_as_redis(standalone_scenario, &["cluster support disabled"]);
}

/// A script that runs for ARGV[1] microseconds of the server's clock.
const BUSY_SCRIPT: &str = "local t0 = redis.call('TIME') local start = t0[1] * 1000000 + t0[2] \
    while true do local t = redis.call('TIME') \
    if t[1] * 1000000 + t[2] - start > tonumber(ARGV[1]) then break end end return 1";

/// TIME reads the clock at each call, to the microsecond, inside a script too: a script that
/// waits for 20 ms of TIME ends (where `now` holds still for a command, it never would).
/// Timed with the wall clock, the one TIME reads: a step of it (NTP, the host) moves both.
fn time_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    let started = std::time::SystemTime::now();
    let mut seen = vec![format!("busy script: {}", frame_text(&conn.cmd(&["EVAL", BUSY_SCRIPT, "0", "20000"])))];
    let took = started.elapsed().unwrap_or_default();
    seen.push(format!("took at least 20 ms: {}", took >= Duration::from_millis(20)));
    let micros: Vec<i64> = (0..5)
        .map(|_| match call_str(&mut conn, &["TIME"]) {
            Val::Array(Some(parts)) => String::from_utf8_lossy(&parts[1].bytes()).parse().unwrap(),
            other => panic!("TIME: {other:?}"),
        })
        .collect();
    seen.push(format!("microseconds not all whole milliseconds: {}", micros.iter().any(|m| m % 1000 != 0)));
    seen
}

#[test]
fn time_reads_the_clock_at_each_call_like_redis() {
    same_as_redis(time_scenario, &["whole milliseconds: true"]);
}

/// The latency monitor: off by default (a slow script leaves nothing); with a 150 ms threshold
/// a script of 300 ms is a `command` spike, read back by LATEST and HISTORY, cleared by RESET;
/// errors as Redis answers them. Timestamps and durations are checked, then left out. (With a
/// 5 ms threshold a GET delayed by a loaded machine was a `fast-command` spike on one server.)
fn latency_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    let mut seen = Vec::new();
    let note =
        |seen: &mut Vec<String>, what: &str, reply: Vec<u8>| seen.push(format!("{what}: {}", frame_text(&reply)));
    note(&mut seen, "threshold", conn.cmd(&["CONFIG", "GET", "latency-monitor-threshold"]));
    conn.cmd(&["EVAL", BUSY_SCRIPT, "0", "300000"]);
    note(&mut seen, "latest while off", conn.cmd(&["LATENCY", "LATEST"]));
    note(&mut seen, "set threshold", conn.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "150"]));
    conn.cmd(&["EVAL", BUSY_SCRIPT, "0", "300000"]);
    conn.cmd(&["GET", "k"]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let Val::Array(Some(events)) = call_str(&mut conn, &["LATENCY", "LATEST"]) else { panic!("LATENCY LATEST") };
    for event in &events {
        let Val::Array(Some(fields)) = event else { panic!("{event:?}") };
        let [name, Val::Int(at), Val::Int(latest), Val::Int(max)] = &fields[..] else { panic!("{fields:?}") };
        assert!((now - 5..=now + 1).contains(at), "sampled at {at}, now {now}");
        assert!(*latest >= 300 && max >= latest, "{fields:?}");
        seen.push(format!("event {}", String::from_utf8_lossy(&name.bytes())));
    }
    let Val::Array(Some(history)) = call_str(&mut conn, &["LATENCY", "HISTORY", "command"]) else { panic!() };
    assert!(!history.is_empty());
    for command in [
        &["LATENCY", "HISTORY", "nope"][..],
        &["LATENCY", "RESET", "nope", "command", "command"],
        &["LATENCY", "LATEST"],
        &["LATENCY", "RESET"],
        &["LATENCY", "HISTORY"],
        &["LATENCY", "FOO"],
        &["LATENCY"],
        &["CONFIG", "SET", "latency-monitor-threshold", "-1"],
        &["CONFIG", "GET", "latency-monitor-threshold"],
    ] {
        note(&mut seen, &format!("{command:?}"), conn.cmd(command));
    }
    seen
}

/// Active expiry that frees a big value is entered as an `expire-cycle` latency event, as
/// Redis enters its cycle (freeing 300,000 members of 70 bytes takes well over the 1 ms threshold).
#[test]
fn expiring_a_big_value_is_an_expire_cycle_latency_event() {
    let server = Server::staykv();
    let mut conn = server.connect();
    conn.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "1"]);
    // Members too long to be kept inline: each is an allocation of its own to free.
    let fill =
        "local pad = string.rep('x', 64) for i = 1, tonumber(ARGV[1]) do redis.call('sadd', KEYS[1], pad .. i) end";
    conn.cmd(&["EVAL", fill, "1", "big", "300000"]);
    conn.cmd(&["PEXPIRE", "big", "50"]);
    assert!(common::wait_until(Duration::from_secs(10), || conn.cmd_text(&["DBSIZE"]) == "0"), "not expired");
    // The key leaves the keyspace before its value is freed and the slice timed: the event
    // may come a moment after DBSIZE says 0 (checked at once, this failed once on a loaded
    // machine).
    let mut latest = String::new();
    let recorded = common::wait_until(Duration::from_secs(10), || {
        latest = String::from_utf8_lossy(&conn.cmd(&["LATENCY", "LATEST"])).into_owned();
        latest.contains("expire-cycle")
    });
    assert!(recorded, "{latest}");
    let doctor = String::from_utf8_lossy(&conn.cmd(&["LATENCY", "DOCTOR"])).into_owned();
    assert!(doctor.contains("expire-cycle") && doctor.contains("large objects"), "{doctor}");
}

#[test]
fn latency_monitor_records_spikes_like_redis() {
    same_as_redis(latency_scenario, &["event command"]);
}

/// The lines of `INFO section`.
fn info(conn: &mut RawConn, section: &str) -> Vec<String> {
    match call_str(conn, &["INFO", section]) {
        Val::Bulk(Some(text)) => String::from_utf8_lossy(&text).lines().map(str::to_string).collect(),
        other => panic!("INFO {section}: {other:?}"),
    }
}

/// INFO errorstats and `total_error_replies`: errors of refused commands, of commands run
/// by EXEC and by scripts (counted once, where they arose), of error replies a script makes
/// up, of a protocol error; each command's `failed_calls`; and CONFIG RESETSTAT.
fn errorstats_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    // The start-up check may have met -LOADING, an error too.
    conn.cmd(&["CONFIG", "RESETSTAT"]);
    conn.cmd(&["SET", "s", "x"]);
    for command in [
        &["HGET", "s", "f"][..],
        &["NOSUCH"],
        &["GET"],
        &["MULTI"],
        &["HGET", "s", "f"],
        &["INCR", "s"],
        &["GET", "s"],
        &["EXEC"],
        &["MULTI"],
        &["GET"],
        &["EXEC"],
        &["EVAL", "return redis.call('hget', 's', 'f')", "0"],
        &["EVAL", "return redis.pcall('incr', 's')", "0"],
        &["EVAL", "local e = redis.pcall('incr', 's') return redis.error_reply('MYERR custom')", "0"],
        &["EVAL", "return {err = 'NOSPACEINTHEFIRSTTHIRTYTWOBYTESATALL x'}", "0"],
        // Sent with its line break as a space, and counted so; a trailing one is cut.
        &["EVAL", "return {err = 'BROKEN\\r\\nline'}", "0"],
        &["EVAL", "return {err = 'TRAILING\\r\\n'}", "0"],
        // The space at the 32nd byte of the reply, its `-` included, is past the code's.
        &["EVAL", "return {err = 'THIRTYONEBYTESBEFORETHEBLANKXYZ x'}", "0"],
        &["EVAL", "return redis.call('nosuch')", "0"],
    ] {
        conn.cmd(command);
    }
    // A protocol error's reply counts too; the connection is closed after it.
    let mut broken = server.connect();
    broken.send(b"*1\r\n$x\r\n");
    assert!(broken.read_frame().unwrap().starts_with(b"-ERR Protocol error"));
    let mut seen = info(&mut conn, "errorstats");
    seen.extend(info(&mut conn, "stats").into_iter().filter(|line| line.starts_with("total_error_replies:")));
    // Redis lists commands in its hash table's order.
    let mut commands = Vec::new();
    for line in info(&mut conn, "commandstats") {
        let Some((name, fields)) = line.split_once(':') else { continue };
        if ["cmdstat_hget", "cmdstat_incr", "cmdstat_eval", "cmdstat_exec", "cmdstat_get"].contains(&name) {
            let kept: Vec<&str> = fields.split(',').filter(|f| !f.starts_with("usec")).collect();
            commands.push(format!("{name}:{}", kept.join(",")));
        }
    }
    commands.sort();
    seen.extend(commands);
    conn.cmd(&["CONFIG", "RESETSTAT"]);
    seen.extend(info(&mut conn, "errorstats"));
    seen
}

#[test]
fn errorstats_count_errors_where_they_arise_like_redis() {
    same_as_redis(errorstats_scenario, &["errorstat_MYERR:count=1", "errorstat_BROKEN:count=1"]);
}

/// LATENCY HISTOGRAM and INFO latencystats: the commands they list, the call counts, and the
/// shape of what they say of each — bounds about doubling and counts growing up to the calls,
/// percentiles to three decimals and in order — as Redis 7.0 has them (the figures are run
/// times, so only their shape can match).
fn latency_histogram_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    conn.cmd(&["CONFIG", "RESETSTAT"]);
    conn.cmd(&["SET", "k", "v"]);
    for _ in 0..2 {
        conn.cmd(&["GET", "k"]);
    }
    // Commands EXEC and scripts run are timed too.
    for command in [&["MULTI"][..], &["GET", "k"], &["EXEC"], &["EVAL", "return redis.call('GET', 'k')", "0"]] {
        conn.cmd(command);
    }
    let mut seen = Vec::new();
    let Val::Array(Some(items)) = call_str(&mut conn, &["LATENCY", "HISTOGRAM", "get", "GET", "nosuch", "set"]) else {
        panic!("LATENCY HISTOGRAM is not an array")
    };
    for pair in items.chunks(2) {
        let [name, Val::Array(Some(fields))] = pair else { panic!("{pair:?}") };
        let [calls_key, Val::Int(calls), histogram_key, Val::Array(Some(buckets))] = &fields[..] else {
            panic!("{fields:?}")
        };
        let numbers: Vec<i64> = buckets.iter().map(Val::int).collect();
        let (bounds, counts): (Vec<i64>, Vec<i64>) = numbers.chunks(2).map(|c| (c[0], c[1])).unzip();
        let doubling = bounds.windows(2).all(|w| w[1] >= 2 * w[0] - 1);
        let growing = counts.windows(2).all(|w| w[0] < w[1]);
        seen.push(format!(
            "{} {}={calls} {} doubling={doubling} growing={growing} ends_at_calls={}",
            name.text(),
            calls_key.text(),
            histogram_key.text(),
            counts.last() == Some(calls)
        ));
    }
    seen.extend(latencystats_shape(&mut conn));
    for value in ["50 99.99 100", "0.5 12.3456789", "", "50 101", "x", " 5  6 ", "1e1 20"] {
        let set = conn.cmd_text(&["CONFIG", "SET", "latency-tracking-info-percentiles", value]);
        let get = frame_text(&conn.cmd(&["CONFIG", "GET", "latency-tracking-info-percentiles"]));
        seen.push(format!("CONFIG SET percentiles {value:?}: {set}; now {:?}", get.lines().last()));
        seen.extend(latencystats_shape(&mut conn));
    }
    // Tracking off: new runs are not counted, INFO lists none, the histograms keep theirs.
    seen.push(conn.cmd_text(&["CONFIG", "SET", "latency-tracking", "maybe"]));
    seen.push(conn.cmd_text(&["CONFIG", "SET", "latency-tracking", "no"]));
    conn.cmd(&["GET", "k"]);
    seen.extend(latencystats_shape(&mut conn));
    let calls = match call_str(&mut conn, &["LATENCY", "HISTOGRAM", "get"]) {
        Val::Array(Some(items)) => match items.get(1) {
            Some(Val::Array(Some(fields))) => fields.get(1).map(Val::int),
            _ => None,
        },
        _ => None,
    };
    seen.push(format!("GET calls in the histogram after tracking stopped: {calls:?}"));
    conn.cmd(&["CONFIG", "SET", "latency-tracking", "yes"]);
    for section in ["default", "everything"] {
        let listed = info(&mut conn, section).iter().any(|line| line == "# Latencystats");
        seen.push(format!("INFO {section} has latencystats: {listed}"));
    }
    seen
}

/// INFO latencystats' header and, for GET and SET, the percentile labels, whether the values
/// have three decimals and are in order; sorted.
fn latencystats_shape(conn: &mut RawConn) -> Vec<String> {
    let mut seen = Vec::new();
    for line in info(conn, "latencystats") {
        let Some((name, fields)) = line.split_once(':') else {
            seen.push(line);
            continue;
        };
        if !["latency_percentiles_usec_get", "latency_percentiles_usec_set"].contains(&name) {
            continue;
        }
        let (labels, values): (Vec<&str>, Vec<&str>) = fields.split(',').filter_map(|f| f.split_once('=')).unzip();
        let three_decimals = values.iter().all(|v| v.split_once('.').is_some_and(|(_, d)| d.len() == 3));
        let micros: Vec<f64> = values.iter().map(|v| v.parse().unwrap()).collect();
        let ordered = micros.windows(2).all(|w| w[0] <= w[1]);
        seen.push(format!("{name} {labels:?} three_decimals={three_decimals} ordered={ordered}"));
    }
    // Redis lists commands in its hash table's order.
    seen.sort();
    seen
}

#[test]
fn latency_histogram_and_latencystats_have_redis_shape() {
    same_as_redis(
        latency_histogram_scenario,
        &["get calls=4 histogram_usec doubling=true growing=true ends_at_calls=true"],
    );
}

/// The section headers of `INFO everything`, in Redis's order.
fn info_sections_scenario(server: &Server) -> Vec<String> {
    let text = String::from_utf8_lossy(&server.connect().cmd(&["INFO", "everything"])).into_owned();
    text.lines().filter(|line| line.starts_with("# ")).map(str::to_string).collect()
}

#[test]
fn info_sections_come_in_redis_order() {
    same_as_redis(info_sections_scenario, &["# Latencystats"]);
}

/// INFO commandstats and LATENCY HISTOGRAM count a container's subcommands apart
/// (`config|get`), also when EXEC runs them; a container alone under itself; an unknown
/// subcommand under no command.
fn subcommand_stats_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    conn.cmd(&["CONFIG", "RESETSTAT"]);
    for command in [
        &["CONFIG", "GET", "maxmemory"][..],
        &["CONFIG", "NOSUCH"],
        &["CONFIG", "GET"],
        &["CONFIG"],
        &["CLIENT", "ID"],
        &["OBJECT", "ENCODING", "missing"],
        &["MULTI"],
        &["CONFIG", "GET", "timeout"],
        &["EXEC"],
    ] {
        conn.cmd(command);
    }
    let mut seen: Vec<String> = info(&mut conn, "commandstats")
        .into_iter()
        .map(|line| line.split(',').filter(|f| !f.starts_with("usec")).collect::<Vec<_>>().join(","))
        .collect();
    seen.sort();
    let Val::Array(Some(items)) = call_str(&mut conn, &["LATENCY", "HISTOGRAM", "config", "client|id"]) else {
        panic!("LATENCY HISTOGRAM is not an array")
    };
    let mut names: Vec<String> = items.iter().step_by(2).map(Val::text).collect();
    names.sort();
    seen.push(format!("LATENCY HISTOGRAM config client|id: {names:?}"));
    seen
}

#[test]
fn subcommands_are_counted_apart_like_redis() {
    same_as_redis(subcommand_stats_scenario, &["cmdstat_config|get:calls=2,rejected_calls=1,failed_calls=0"]);
}

/// The INFO fields monitoring tools read are there, named as Redis names them, and move:
/// network bytes count what was sent, the instantaneous rate sees a burst of commands.
#[test]
fn info_has_the_monitoring_fields_redis_has() {
    let fields = [
        "run_id",
        "hz",
        "used_memory_human",
        "used_memory_peak",
        "used_memory_peak_human",
        "maxmemory_human",
        "total_system_memory",
        "mem_fragmentation_ratio",
        "mem_allocator",
        "mem_clients_normal",
        "number_of_cached_scripts",
        "instantaneous_ops_per_sec",
        "total_net_input_bytes",
        "total_net_output_bytes",
        "instantaneous_input_kbps",
        "pubsub_channels",
        "pubsub_patterns",
        "total_error_replies",
    ];
    let fields_of = |server: &Server| -> Vec<(String, String)> {
        let lines = info(&mut server.connect(), "everything");
        lines.iter().filter_map(|line| line.split_once(':')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    if let Some(redis) = Server::redis() {
        let names: Vec<String> = fields_of(&redis).into_iter().map(|(k, _)| k).collect();
        for field in fields {
            assert!(names.iter().any(|n| n == field), "redis-server has no {field}");
        }
    }
    let staykv = Server::staykv();
    let mut conn = staykv.connect();
    let start = std::time::Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_millis(500) {
        conn.cmd(&["PING"]);
        sent += 14;
    }
    let got = fields_of(&staykv);
    let value = |field: &str| {
        got.iter().find(|(k, _)| k == field).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no {field}"))
    };
    for field in fields {
        value(field);
    }
    assert!(value("instantaneous_ops_per_sec").parse::<u64>().unwrap() > 0);
    assert!(value("total_net_input_bytes").parse::<u64>().unwrap() >= sent);
    assert_eq!(value("run_id").len(), 40);
    // What the connections' buffers and state hold (SECURITY.md's `maxmemory-clients`).
    assert!(value("mem_clients_normal").parse::<u64>().unwrap() > 0);
}

/// A reply's text: a verbatim string (RESP3) without its `txt:` format, a bulk as is.
fn report_text(frame: &[u8]) -> String {
    let text = frame_text(frame);
    match frame.first() {
        Some(b'=') => {
            let body = text.split_once("\r\n").map_or("", |(_, rest)| rest);
            body.strip_prefix("txt:").unwrap_or(body).strip_suffix("\r\n").unwrap_or(body).to_string()
        }
        _ => text,
    }
}

/// A reply's shape, token by token: aggregate headers and strings as sent, every number
/// replaced by its type (`<int>`, `<double>`, a float in a bulk `<float>`), so that two
/// servers' MEMORY STATS compare by field names, order, nesting and types.
fn shape(frame: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(frame);
    let mut lines = text.split("\r\n");
    let mut tokens = Vec::new();
    while let Some(line) = lines.next() {
        let token = match line.as_bytes().first() {
            Some(b':') => "<int>".to_string(),
            Some(b',') => "<double>".to_string(),
            Some(b'$') => {
                let content = lines.next().unwrap_or_default();
                if content.parse::<f64>().is_ok() {
                    "<float>".to_string()
                } else {
                    content.to_string()
                }
            }
            Some(_) => line.to_string(),
            None => continue,
        };
        tokens.push(token);
    }
    tokens
}

/// MEMORY STATS with keys in two databases (one key with a deadline), its errors, MEMORY
/// DOCTOR on an instance too small to judge, and MEMORY HELP.
fn memory_introspection(conn: &mut RawConn) -> Vec<String> {
    for (db, key, ttl) in [("3", "a", None), ("5", "a", None), ("5", "b", Some("100"))] {
        conn.cmd(&["SELECT", db]);
        let mut set = vec!["SET", key, "value"];
        set.extend(ttl.map(|secs| ["EX", secs]).into_iter().flatten());
        conn.cmd(&set);
    }
    let mut seen = shape(&conn.cmd(&["MEMORY", "STATS"]));
    for command in [&["MEMORY", "STATS", "x"][..], &["MEMORY", "DOCTOR", "x"], &["MEMORY", "HELP"]] {
        seen.push(format!("{command:?}: {}", frame_text(&conn.cmd(command))));
    }
    conn.cmd(&["FLUSHALL"]);
    seen.push(format!("doctor: {}", report_text(&conn.cmd(&["MEMORY", "DOCTOR"]))));
    seen
}

#[test]
fn memory_stats_and_doctor_have_redis_fields_and_texts() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    for (protocol, expected, got) in common::on_both_in_resp2_and_resp3(&redis, &staykv, memory_introspection) {
        assert!(expected.contains(&"db.5".to_string()), "{expected:?}");
        assert_eq!(got, expected, "{protocol}");
    }
}

/// MEMORY STATS' figures are StayKV's own: the keys it holds, memory its allocator counts.
#[test]
fn memory_stats_reports_the_servers_own_figures() {
    let server = Server::staykv();
    let mut conn = server.connect();
    for key in ["a", "b", "c"] {
        conn.cmd(&["SET", key, "value"]);
    }
    let value = memory_stats(&mut conn);
    assert_eq!(value("keys.count").int(), 3);
    let (used, peak, startup) =
        (value("total.allocated").int(), value("peak.allocated").int(), value("startup.allocated").int());
    assert!(used > 0 && peak >= used && startup > 0, "used {used}, peak {peak}, startup {startup}");
    assert!(value("overhead.total").int() >= startup);
    assert_eq!(value("replication.backlog").int(), 0);
    assert!(value("clients.normal").int() > 0, "this connection");
    // What the allocator holds resident is within the process's RSS: with 100,000 small keys,
    // mimalloc's committed figure (pages never touched included) was four times the RSS.
    fill(&mut conn, "k", 100, &"v".repeat(100));
    // An idle worker may give free pages back meanwhile: the larger of the RSS before and after.
    let rss_before = server.rss_kib();
    let figure = memory_stats(&mut conn);
    let (resident, rss) = (figure("allocator.resident").int(), server.rss_kib().max(rss_before) as i64 * 1024);
    let allocated = figure("total.allocated").int();
    assert!(resident >= allocated && resident <= rss + (1 << 20), "resident {resident}, rss {rss}");
    assert!(figure("rss-overhead.bytes").int() >= 0);
}

/// `MEMORY STATS` as a lookup by field name.
fn memory_stats(conn: &mut RawConn) -> impl Fn(&str) -> Val {
    let Val::Array(Some(fields)) = call_str(conn, &["MEMORY", "STATS"]) else { panic!("MEMORY STATS") };
    move |name: &str| {
        let at = fields.iter().position(|field| matches!(field, Val::Bulk(Some(b)) if b == name.as_bytes()));
        fields[at.unwrap_or_else(|| panic!("no {name}")) + 1].clone()
    }
}

/// SETs `thousands` thousand keys `{prefix}{batch}:{i}` to `value`, 1,000 to a pipeline.
fn fill(conn: &mut RawConn, prefix: &str, thousands: usize, value: &str) {
    for batch in 0..thousands {
        let mut pipeline = Vec::new();
        for i in 0..1000 {
            pipeline.extend(common::encode_str(&["SET", &format!("{prefix}{batch}:{i}"), value]));
        }
        conn.send(&pipeline);
        for _ in 0..1000 {
            conn.read_frame().unwrap();
        }
    }
}

/// MEMORY PURGE gives the pages FLUSHALL freed back to the system at once (mimalloc keeps
/// them for a while first), as MEMORY DOCTOR's advice after a big peak says it will. A worker
/// that goes idle also returns its free pages by itself, at most once a second
/// (`release_free_pages_when_due`); when that got there before PURGE, the round shows nothing
/// and is run again. PURGE collects the free pages of the worker it runs on: when the
/// connection's task moved to the other worker in between (as it may on a loaded machine),
/// the pages are that worker's, the round shows nothing either, and is run again.
#[test]
fn memory_purge_returns_freed_pages_to_the_system() {
    let server = Server::staykv();
    let mut conn = server.connect();
    let value = "v".repeat(1024);
    for round in 0..5 {
        fill(&mut conn, &format!("k{round}:"), 40, &value);
        let filled = server.rss_kib();
        conn.cmd(&["FLUSHALL"]);
        let before = server.rss_kib();
        assert_eq!(frame_text(&conn.cmd(&["MEMORY", "PURGE"])), "OK");
        let after = server.rss_kib();
        if before + 20 * 1024 < filled {
            eprintln!("round {round}: RSS {filled} KiB filled, {before} KiB already before MEMORY PURGE; again");
            continue;
        }
        // 40 MiB of values were freed: most of it must leave the process.
        if after + 20 * 1024 < before {
            return;
        }
        eprintln!("round {round}: RSS {before} KiB before MEMORY PURGE, {after} KiB after; again");
    }
    panic!("in no round did MEMORY PURGE give the freed pages back");
}

/// LATENCY DOCTOR while the monitor is off and once it is on with no spike; LATENCY GRAPH's
/// errors; then a 20 ms script: the doctor's line for `command` (its figures masked) and the
/// advice it brings, and the graph's header and layout. Other events a loaded machine may
/// add (a fast command taking 1 ms) are left out.
fn latency_report_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    let mut seen = vec![report_text(&conn.cmd(&["LATENCY", "DOCTOR"]))];
    for command in
        [&["LATENCY", "GRAPH", "command"][..], &["LATENCY", "GRAPH"], &["LATENCY", "DOCTOR", "x"], &["LATENCY", "HELP"]]
    {
        seen.push(format!("{command:?}: {}", frame_text(&conn.cmd(command))));
    }
    conn.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "1"]);
    // A trivial command may itself take 1 ms on a loaded machine: retried.
    let mut quiet = (0..3).map(|_| {
        conn.cmd(&["LATENCY", "RESET"]);
        report_text(&conn.cmd(&["LATENCY", "DOCTOR"]))
    });
    seen.extend(quiet.find(|report| report.starts_with("Dave, no latency")));
    conn.cmd(&["EVAL", BUSY_SCRIPT, "0", "20000"]);
    // Every number, whatever its digits, as one `#`.
    let mask = |line: &str| {
        let mut masked = String::new();
        for c in line.chars() {
            match (c.is_ascii_digit(), masked.ends_with('#')) {
                (true, true) => {}
                (true, false) => masked.push('#'),
                (false, _) => masked.push(c),
            }
        }
        masked
    };
    let doctor = report_text(&conn.cmd(&["LATENCY", "DOCTOR"]));
    let lines = doctor.lines().filter(|line| {
        line.starts_with("Dave,")
            || line.contains(". command: ")
            || line.contains("Slow Log")
            || line.contains("large objects")
    });
    seen.extend(lines.map(mask));
    let graph = report_text(&conn.cmd(&["LATENCY", "GRAPH", "command"]));
    let lines: Vec<&str> = graph.lines().collect();
    seen.extend(lines.iter().take(2).map(|line| mask(line)));
    let rows = &lines[2..6];
    seen.push(format!("rows of one width: {}", rows.iter().all(|row| row.len() == rows[0].len())));
    seen.push(format!("bottom row filled: {}", !rows[3].contains(' ')));
    seen.push(format!("blank line, then labels: {:?}", (lines[6].trim(), lines.last().map(|l| l.ends_with('s')))));
    seen
}

#[test]
fn latency_doctor_and_graph_report_like_redis() {
    same_as_redis(latency_report_scenario, &[". command: # latency spikes"]);
}

/// UNLINK frees a large value (a hash table of 1,000 fields, a set of 200 strings, a sorted
/// set of 200 members) in the background and a small one inline, DEL frees inline, and an
/// ASYNC flush frees the emptied databases in the background, one object per key (so do DEL
/// and plain flushes under `lazyfree-lazy-user-del` and `lazyfree-lazy-user-flush`, and a
/// large value a write overwrites under `lazyfree-lazy-server-del`); INFO's
/// memory section counts them as Redis 7.0 does, and CONFIG RESETSTAT zeroes the total.
#[test]
fn background_freeing_is_counted_as_in_redis() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let expected = lazyfree_counts(&redis);
    assert_eq!(lazyfree_counts(&staykv), expected);
    assert_eq!(expected.get(2).map(|(_, n)| n.as_str()), Some("3"), "the comparison must see background frees");
}

/// `lazyfreed_objects` after each step of [`background_freeing_is_counted_as_in_redis`],
/// once nothing is pending.
fn lazyfree_counts(server: &Server) -> Vec<(&'static str, String)> {
    let memory_field = |conn: &mut RawConn, name: &str| -> String {
        let text = call_str(conn, &["INFO", "memory"]).text();
        let found = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::to_string));
        found.unwrap_or_else(|| panic!("no {name} in INFO memory of {:?}:\n{text}", server.kind()))
    };
    let many = |head: &str, members: usize, member: fn(usize) -> String| -> String {
        std::iter::once(head.to_string()).chain((0..members).map(member)).collect::<Vec<_>>().join(" ")
    };
    let steps: [(&str, Vec<String>); 13] = [
        (
            "large values written",
            vec![
                many("HSET hash", 1000, |i| format!("f{i} v")),
                many("SADD set", 200, |i| format!("m{i}")),
                many("ZADD zset", 200, |i| format!("{i} m{i}")),
                many("HSET hash2", 1000, |i| format!("f{i} v")),
            ],
        ),
        ("small values unlinked", vec!["HSET h f v".into(), "SET s v".into(), "UNLINK h s".into()]),
        ("large values unlinked", vec!["UNLINK hash set zset missing".into()]),
        ("large value deleted", vec!["DEL hash2".into()]),
        ("FLUSHDB ASYNC", vec!["MSET a 1 b 2 c 3".into(), "FLUSHDB ASYNC".into()]),
        ("FLUSHALL ASYNC", vec!["MSET a 1 b 2".into(), "SELECT 1".into(), "SET c 3".into(), "FLUSHALL ASYNC".into()]),
        ("sync flushes", vec!["SET a 1".into(), "FLUSHALL".into(), "SET a 1".into(), "FLUSHDB SYNC".into()]),
        (
            "DEL under lazyfree-lazy-user-del",
            vec![
                "CONFIG SET lazyfree-lazy-user-del yes".into(),
                many("SADD set2", 100, |i| format!("m{i}")),
                "DEL set2".into(),
                "CONFIG SET lazyfree-lazy-user-del no".into(),
            ],
        ),
        (
            "FLUSHALL under lazyfree-lazy-user-flush",
            vec![
                "CONFIG SET lazyfree-lazy-user-flush yes".into(),
                "MSET a 1 b 2".into(),
                "FLUSHALL".into(),
                "CONFIG SET lazyfree-lazy-user-flush no".into(),
            ],
        ),
        ("large value overwritten", vec![many("HSET h3", 1000, |i| format!("f{i} v")), "SET h3 v".into()]),
        (
            "overwrites under lazyfree-lazy-server-del",
            vec![
                "CONFIG SET lazyfree-lazy-server-del yes".into(),
                many("HSET h3", 1000, |i| format!("f{i} v")),
                "SET h3 v".into(),
                many("SADD s3", 200, |i| format!("m{i}")),
                many("SADD s4", 100, |i| format!("m{i}")),
                "RENAME s4 s3".into(),
                "CONFIG SET lazyfree-lazy-server-del no".into(),
            ],
        ),
        (
            "expiry under lazyfree-lazy-expire",
            vec![
                "CONFIG SET lazyfree-lazy-expire yes".into(),
                many("HSET h5", 1000, |i| format!("f{i} v")),
                "PEXPIREAT h5 1".into(),
                many("HSET h6", 1000, |i| format!("f{i} v")),
                "PEXPIRE h6 1".into(),
                // Found expired on access, or by active expiry first: either frees it lazily.
                "sleep 20".into(),
                "EXISTS h6".into(),
                "CONFIG SET lazyfree-lazy-expire no".into(),
            ],
        ),
        ("CONFIG RESETSTAT", vec!["CONFIG RESETSTAT".into()]),
    ];
    let mut conn = server.connect();
    let mut counts = Vec::new();
    for (step, commands) in steps {
        for command in &commands {
            if let Some(ms) = command.strip_prefix("sleep ") {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
                continue;
            }
            let args: Vec<&str> = command.split(' ').collect();
            conn.cmd(&args);
        }
        let settled =
            common::wait_until(Duration::from_secs(10), || memory_field(&mut conn, "lazyfree_pending_objects") == "0");
        assert!(settled, "{step}: objects still pending after 10 s on {:?}", server.kind());
        counts.push((step, memory_field(&mut conn, "lazyfreed_objects")));
    }
    counts
}

/// COMMAND INFO of every command StayKV has is Redis 7.0's, byte for byte: arity, flags, the
/// legacy key range, ACL categories, tips and key specs (clients route and cluster libraries
/// find keys by them). StayKV has WAITAOF, CLIENT NO-TOUCH and CLIENT SETINFO (Redis 7.2)
/// beside Redis 7.0's commands; it leaves out only COMMAND DOCS, LOLWUT, PFDEBUG, PFSELFTEST,
/// PSYNC and RESTORE-ASKING.
#[test]
fn command_info_matches_redis() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    let names = |conn: &mut RawConn| -> Vec<String> {
        let Val::Array(Some(names)) = call_str(conn, &["COMMAND", "LIST"]) else { panic!("COMMAND LIST") };
        let mut names: Vec<String> =
            names.iter().map(|name| String::from_utf8_lossy(&name.bytes()).into_owned()).collect();
        names.sort();
        names
    };
    let (theirs, ours) = (names(&mut r), names(&mut s));
    // Subcommands one of the two has (checked below), left out of their containers' entries.
    const UNSHARED: &[&[u8]] = &[b"client|no-touch", b"client|setinfo", b"command|docs"];
    let only_ours: Vec<&String> = ours.iter().filter(|name| !theirs.contains(name)).collect();
    assert_eq!(only_ours, ["client|no-touch", "client|setinfo", "waitaof"]);
    let only_theirs: Vec<&String> = theirs.iter().filter(|name| !ours.contains(name)).collect();
    assert_eq!(only_theirs, ["command|docs", "lolwut", "pfdebug", "pfselftest", "psync", "restore-asking"]);
    // A container lists its subcommands' entries in the order of Redis's hash table: they
    // are compared one by one (each subcommand is listed by its own name), the rest as is.
    let info = |conn: &mut RawConn, name: &str| match call_str(conn, &["COMMAND", "INFO", name]) {
        Val::Array(Some(mut entries)) => {
            match entries.pop() {
                Some(Val::Array(Some(mut entry))) if entry.len() == 10 => {
                    if let Some(Val::Array(Some(subcommands))) = entry.get_mut(9) {
                        subcommands.retain(|sub| !matches!(sub, Val::Array(Some(sub)) if UNSHARED.contains(&sub[0].bytes().as_slice())));
                        subcommands.sort_by_key(|sub| format!("{sub:?}"));
                    }
                    format!("{entry:?}")
                }
                other => format!("{other:?}"),
            }
        }
        other => format!("{other:?}"),
    };
    let mismatches: Vec<String> = ours
        .iter()
        .filter(|name| theirs.contains(name))
        .filter_map(|name| {
            let (expected, got) = (info(&mut r, name), info(&mut s, name));
            (expected != got).then(|| format!("{name}:\n redis  {expected}\n staykv {got}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{} differ: {mismatches:#?}", mismatches.len());
}

/// COMMAND GETKEYS and GETKEYSANDFLAGS as Redis 7.0 answers them: the keys a client library
/// routes by and ACLs check, with what the command does to each. Above all the commands whose
/// keys move (found by walking their arguments) or whose flags depend on them, and the errors.
#[test]
fn command_getkeys_and_flags_match_redis() {
    const CASES: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["SET", "k", "v", "EX", "1", "get"],
        &["BITFIELD", "k", "GET", "u8", "0", "OVERFLOW", "SAT"],
        &["BITFIELD", "k", "GET", "u8", "0", "INCRBY", "u8", "0", "1"],
        &["BITFIELD", "k", "GET", "u8"],
        &["LMOVE", "a", "b", "LEFT", "RIGHT"],
        &["COPY", "a", "b"],
        &["EXISTS", "a", "b"],
        &["SINTERSTORE", "d", "a", "b"],
        &["EVAL", "return 1", "0"],
        &["ZUNIONSTORE", "d", "x", "a"],
        &["ZUNIONSTORE", "d", "3", "a"],
        &["MIGRATE", "h", "1", "k", "0", "5", "KEYS", "a"],
        &["MIGRATE", "h", "1", "", "0", "5", "COPY", "KEYS", "a", "b"],
        &["XINFO", "STREAM", "s"],
        &["XGROUP", "CREATE", "s", "g", "$"],
        &["XGROUP", "DESTROY", "s", "g"],
        &["MEMORY", "USAGE", "k"],
        &["OBJECT", "FREQ", "k"],
        &["OBJECT", "ENCODING"],
        &["OBJECT", "NOSUCH", "k"],
        &["OBJECT"],
        &["SPUBLISH", "ch", "m"],
        &["PING"],
        &["GET"],
        &["NOSUCH", "k"],
        &["SORT", "abc"],
        &["SORT", "abc", "STORE", "def"],
        &["SORT", "abc", "STORE", "invalid", "STORE", "stillbad", "STORE", "def"],
        &["SORT", "abc", "BY", "store", "GET", "store", "LIMIT", "0", "store", "STORE", "d"],
        &["SORT", "abc", "LIMIT", "store", "x", "STORE"],
        &["SORT_RO", "abc", "BY", "w_*"],
        &["EVAL", "return 1", "2", "a", "b", "c"],
        &["EVAL_RO", "return 1", "1", "a"],
        &["FCALL", "f", "2", "a", "b", "c"],
        &["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"],
        &["ZINTER", "2", "a", "b"],
        &["ZDIFF", "1", "a", "WITHSCORES"],
        &["LMPOP", "2", "a", "b", "LEFT"],
        &["BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "2"],
        &["BZMPOP", "0", "1", "a", "MIN"],
        &["SINTERCARD", "2", "a", "b", "LIMIT", "1"],
        &["ZINTERCARD", "2", "a", "b"],
        &["XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", ">"],
        &["GEORADIUS", "k", "0", "0", "1", "km", "STORE", "d1", "STOREDIST", "d2"],
        &["MSET", "a", "1", "b", "2"],
        &["OBJECT", "ENCODING", "k"],
    ];
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    let mismatches: Vec<String> = CASES
        .iter()
        .flat_map(|case| ["GETKEYS", "GETKEYSANDFLAGS"].map(|sub| [&["COMMAND", sub][..], case].concat()))
        .filter_map(|args| {
            let (expected, got) = (frame_text(&r.cmd(&args)), frame_text(&s.cmd(&args)));
            (expected != got).then(|| format!("{args:?}: redis {expected:?}, staykv {got:?}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// Every field StayKV reports in INFO's default sections is one Redis 7.0 reports in the same
/// section (with its AOF on, as StayKV's log always is), or is named `staykv_*`: StayKV leaves
/// out what it has no figure for, such as replication backlogs, and a field of its own under
/// a plain name would read to monitoring tools as a Redis figure.
#[test]
fn info_fields_are_redis_fields() {
    let Some(redis) = Server::redis_with(&["--appendonly", "yes"]) else { return };
    let staykv = Server::staykv();
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    let fields = |lines: Vec<String>| -> Vec<(String, String)> {
        let mut section = String::new();
        let mut out = Vec::new();
        for line in lines {
            if let Some(title) = line.strip_prefix("# ") {
                section = title.to_string();
            } else if let Some((name, _)) = line.split_once(':') {
                // Which error codes have counts depends on each server's history (a StayKV
                // polled while it loads has answered LOADING): the field's form is compared.
                // Named once however many codes there are, so that the order compared below
                // does not depend on how many (it failed when StayKV had counted a LOADING).
                let name = if name.starts_with("errorstat_") { "errorstat_<code>" } else { name };
                out.push((section.clone(), name.to_string()));
            }
        }
        out.dedup();
        out
    };
    // An error on each, so that each reports error counts.
    r.cmd(&["NOSUCHCOMMAND"]);
    s.cmd(&["NOSUCHCOMMAND"]);
    let (theirs, ours) = (fields(info(&mut r, "default")), fields(info(&mut s, "default")));
    let own: Vec<&(String, String)> =
        ours.iter().filter(|field| !theirs.contains(field) && !field.1.starts_with("staykv_")).collect();
    assert!(own.is_empty(), "fields Redis 7.0 does not report: {own:?}");
    assert!(ours.len() > 40, "{ours:?}");
    // In Redis's order: the fields both report come in the same order in each.
    let shared = |of: &[(String, String)], with: &[(String, String)]| -> Vec<(String, String)> {
        of.iter().filter(|field| with.contains(field)).cloned().collect()
    };
    assert_eq!(shared(&ours, &theirs), shared(&theirs, &ours));
}

/// OBJECT REFCOUNT: a string holding an integer from 0 to 9,999, however it was written,
/// reads as Redis's shared object (INT_MAX) while no LRU or LFU policy runs under a
/// `maxmemory`, and 1 once one does; anything else reads 1.
fn refcount_scenario(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    let writes: &[&[&str]] = &[
        &["SET", "zero", "0"],
        &["SET", "small", "9999"],
        &["SET", "large", "10000"],
        &["SET", "negative", "-1"],
        &["SET", "padded", "0123"],
        &["SET", "text", "abc"],
        &["MSET", "m1", "42", "m2", "x"],
        &["SET", "counter", "-1"],
        &["INCR", "counter"],
        &["SET", "appended", "1"],
        &["APPEND", "appended", "2"],
        &["RPUSH", "list", "1"],
        &["HSET", "hash", "f", "1"],
    ];
    let mut seen = Vec::new();
    for args in writes {
        conn.cmd(args);
    }
    let refcounts = |conn: &mut RawConn, keys: &[&str]| -> String {
        keys.iter()
            .map(|k| format!("{k}={}", frame_text(&conn.cmd(&["OBJECT", "REFCOUNT", k]))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let keys =
        ["zero", "small", "large", "negative", "padded", "text", "m1", "m2", "counter", "appended", "list", "hash"];
    seen.push(refcounts(&mut conn, &keys));
    seen.push(format!("missing: {}", frame_text(&conn.cmd(&["OBJECT", "REFCOUNT", "missing"]))));
    for (maxmemory, policy, key) in [
        ("1gb", "allkeys-random", "random"),
        ("1gb", "allkeys-lru", "lru"),
        ("1gb", "volatile-lfu", "lfu"),
        ("0", "allkeys-lru", "unlimited"),
    ] {
        conn.cmd(&["CONFIG", "SET", "maxmemory", maxmemory]);
        conn.cmd(&["CONFIG", "SET", "maxmemory-policy", policy]);
        conn.cmd(&["SET", key, "7"]);
        seen.push(format!("maxmemory {maxmemory}, {policy}: {}", refcounts(&mut conn, &[key])));
    }
    conn.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    seen
}

#[test]
fn object_refcount_reads_as_redis_shared_integers() {
    same_as_redis(
        refcount_scenario,
        &["zero=2147483647", "large=1", "allkeys-lru: lru=1", "allkeys-random: random=2147483647"],
    );
}

/// Small replies compared with Redis: EXPIRETIME rounds to the nearest second (Redis's
/// `(expire+500)/1000`, where StayKV truncated); COMMAND INFO of an unknown name is a null
/// bulk string in RESP2 (StayKV sent a null array); a subscribed RESP2 client's PING with two
/// arguments is refused for its arity (StayKV answered it); APPEND, SETRANGE, SETBIT, GETBIT
/// and BITFIELD keep to `proto-max-bulk-len` as set (StayKV kept to 512 MB whatever it was).
fn small_replies(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    let mut seen = Vec::new();
    for args in [
        &["PEXPIREAT", "k", "4000000000600"][..],
        &["SET", "k", "v", "PXAT", "4000000000600"],
        &["EXPIRETIME", "k"],
        &["SET", "k", "v", "PXAT", "4000000000499"],
        &["EXPIRETIME", "k"],
        &["SET", "k", "v", "PXAT", "9223372036854775806"],
        &["EXPIRETIME", "k"],
        &["COMMAND", "INFO", "nosuch"],
        &["COMMAND", "INFO", "get", "nosuch", "client|nosuch"],
        &["SUBSCRIBE", "ch"],
        &["PING", "a", "b"],
        &["PING", "a"],
        &["PING"],
        &["RESET"],
        &["CONFIG", "SET", "proto-max-bulk-len", "1mb"],
        &["SETRANGE", "pk", "2000000", "x"],
        &["SETRANGE", "ap", "1048570", "x"],
        &["APPEND", "ap", "123456"],
        &["APPEND", "ap", "12345"],
        &["SETBIT", "pk", "16000000", "1"],
        &["GETBIT", "pk", "16000000"],
        &["SETBIT", "pk", "8388607", "1"],
        &["BITFIELD", "pk", "SET", "u8", "16000000", "1"],
        &["BITFIELD", "pk", "SET", "u8", "#2000000", "1"],
        &["BITFIELD", "pk", "SET", "u8", "8388599", "1"],
        &["CONFIG", "SET", "proto-max-bulk-len", "512mb"],
    ] {
        let reply = String::from_utf8_lossy(&conn.cmd(args)).into_owned();
        // A command's whole entry is long: its first and last lines are enough.
        let parts: Vec<&str> = reply.split("\r\n").collect();
        let shown = match parts.len() {
            n if n > 8 => [&parts[..3], &["..."], &parts[n - 5..]].concat(),
            _ => parts,
        };
        seen.push(format!("{args:?} -> {}", shown.join(" ")));
    }
    seen
}

#[test]
fn small_replies_match_redis() {
    same_as_redis(
        small_replies,
        &[
            "[\"EXPIRETIME\", \"k\"] -> :4000000001",
            "[\"COMMAND\", \"INFO\", \"nosuch\"] -> *1 $-1",
            "[\"PING\", \"a\", \"b\"] -> -ERR wrong number",
            "[\"SETRANGE\", \"pk\", \"2000000\", \"x\"] -> -ERR string exceeds maximum allowed size",
            "[\"SETBIT\", \"pk\", \"16000000\", \"1\"] -> -ERR bit offset is not an integer or out of range",
        ],
    );
}

/// RESTORE with a relative TTL past the clock's range: Redis's `ttl + mstime()` wraps
/// negative, so the key counts as already expired and is not created (StayKV created it
/// with a deadline that read back negative).
fn restore_past_the_clock(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    conn.cmd(&["SET", "src", "v"]);
    let dump = conn.cmd(&["DUMP", "src"]);
    let start = dump.iter().position(|&b| b == b'\n').unwrap() + 1;
    let payload = &dump[start..dump.len() - 2];
    let mut seen = Vec::new();
    for ttl in ["9223372036854775807", "9223372036854775000", "1000000"] {
        let reply = conn.cmd_bytes(&[b"RESTORE", b"copy", ttl.as_bytes(), payload, b"REPLACE"]);
        let exists = conn.cmd_text(&["EXISTS", "copy"]);
        seen.push(format!("TTL {ttl}: {} exists {exists}", String::from_utf8_lossy(&reply).trim_end()));
        conn.cmd(&["DEL", "copy"]);
    }
    seen
}

#[test]
fn restore_past_the_clock_creates_nothing_like_redis() {
    same_as_redis(restore_past_the_clock, &["TTL 9223372036854775807: +OK exists 0", "TTL 1000000: +OK exists 1"]);
}

/// SHUTDOWN's options as Redis 7.0 parses them: contradictions are a syntax error, and ABORT
/// with nothing to abort says so; none of these shuts the server down. CONFIG RESETSTAT
/// resets the connection counters too.
#[test]
fn shutdown_options_and_resetstat_like_redis() {
    same_as_redis(
        |server| {
            let mut conn = server.connect();
            let mut lines: Vec<String> = [
                &["SHUTDOWN", "NOSAVE", "SAVE"][..],
                &["SHUTDOWN", "SAVE", "NOSAVE"],
                &["SHUTDOWN", "ABORT"],
                &["SHUTDOWN", "ABORT", "NOW"],
                &["SHUTDOWN", "NOSAVE", "ABORT"],
                &["SHUTDOWN", "LATER"],
            ]
            .iter()
            .map(|args| format!("{args:?}: {}", conn.cmd_text(args)))
            .collect();
            for _ in 0..3 {
                server.connect().cmd(&["PING"]);
            }
            conn.cmd(&["CONFIG", "RESETSTAT"]);
            let stats = conn.cmd_text(&["INFO", "stats"]);
            let field = |name: &str| stats.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string();
            lines.push(field("total_connections_received:"));
            lines.push(field("rejected_connections:"));
            lines.push(conn.cmd_text(&["PING"]));
            lines
        },
        &["No shutdown in progress.", "total_connections_received:0"],
    );
}

/// Writes logged, then a SIGKILL and a start that replays them: what INFO counts after it.
fn counters_after_replay(server: &mut Server) -> Vec<String> {
    let mut conn = server.connect();
    for command in [
        &["SET", "a", "1"][..],
        &["INCR", "a"],
        &["HSET", "h", "f", "v"],
        &["RPUSH", "l", "x", "y"],
        &["LPOP", "l"],
        &["SADD", "s", "m"],
        &["EXPIRE", "a", "1000"],
        &["DEL", "h"],
    ] {
        conn.cmd(command);
    }
    server.kill();
    server.restart();
    let mut conn = server.connect();
    assert_eq!(conn.cmd_text(&["LRANGE", "l", "0", "-1"]), "*1\r\n$1\r\ny\r\n", "the log was replayed");
    let mut lines = stats_lines(&mut conn, &["total_commands_processed", "keyspace_hits", "keyspace_misses"]);
    // The errors counted, but for a -LOADING the harness's first poll may get from StayKV,
    // which listens while it replays (Redis loads before it listens).
    let errors = conn.cmd_text(&["INFO", "errorstats"]);
    let counted = |line: &&str| line.starts_with("errorstat_") && !line.starts_with("errorstat_LOADING:");
    lines.extend(errors.lines().filter(counted).map(str::to_string));
    // Only the commands sent since the start: the harness's PINGs, LRANGE and INFO.
    let commands = conn.cmd_text(&["INFO", "commandstats"]);
    let mut names: Vec<String> =
        commands.lines().filter_map(|line| Some(line.split_once(':')?.0.to_string())).collect();
    // Redis lists them in its command table's hash order, which varies between starts.
    names.sort();
    lines.extend(names);
    lines
}

#[test]
fn a_replayed_log_is_not_counted_as_commands_as_in_redis() {
    let Some(mut redis) = Server::redis_with(&["--appendonly", "yes", "--appendfsync", "always"]) else { return };
    let expected = counters_after_replay(&mut redis);
    assert!(expected.contains(&"cmdstat_lrange".to_string()), "{expected:#?}");
    assert!(!expected.contains(&"cmdstat_rpush".to_string()), "{expected:#?}");
    assert_eq!(counters_after_replay(&mut Server::staykv()), expected);
}

/// A client's commands (those a script and EXEC run included), reads and writes, one request
/// at a time, as INFO stats counts them.
fn socket_counts(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    conn.cmd(&["CONFIG", "RESETSTAT"]);
    for _ in 0..5 {
        conn.cmd(&["PING"]);
    }
    conn.cmd(&["EVAL", "redis.call('set', 'a', 1) redis.call('get', 'a') return redis.call('get', 'a')", "0"]);
    for command in [&["MULTI"][..], &["SET", "b", "1"], &["GET", "b"], &["EXEC"]] {
        conn.cmd(command);
    }
    stats_lines(&mut conn, &["total_reads_processed", "total_writes_processed", "total_commands_processed"])
}

/// The `INFO stats` lines of the fields `names`, in INFO's order.
fn stats_lines(conn: &mut RawConn, names: &[&str]) -> Vec<String> {
    let stats = conn.cmd_text(&["INFO", "stats"]);
    let named = |line: &&str| line.split_once(':').is_some_and(|(name, _)| names.contains(&name));
    stats.lines().filter(named).map(str::to_string).collect()
}

#[test]
fn commands_reads_and_writes_are_counted_as_in_redis() {
    same_as_redis(socket_counts, &["total_commands_processed:14", "total_reads_processed:11"]);
}
