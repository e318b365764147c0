//! Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARDCHANNELS/SHARDNUMSUB)
//! beside the classic kind, against Debian's redis-server 7.0: the same exchange on each
//! server must produce the same bytes, subscriber's and publisher's, in RESP2 and RESP3.
//! Confirmations go out with CLIENT REPLY OFF too, as in Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::{encode_str, RawConn, Server};

/// Sends `commands` back to back and returns every byte received until the server goes
/// quiet (the subscriber's confirmations and messages are pushes, not one reply each).
fn exchange(conn: &mut RawConn, commands: &[&[&str]]) -> String {
    for command in commands {
        conn.send(&encode_str(command));
    }
    String::from_utf8_lossy(&conn.drain(1, Duration::from_millis(300)).bytes).into_owned()
}

fn scenario(server: &Server) -> Vec<String> {
    let (mut subscriber, mut publisher) = (server.connect(), server.connect());
    let mut seen =
        vec![exchange(&mut subscriber, &[&["SUBSCRIBE", "a"], &["SSUBSCRIBE", "b", "c"], &["PSUBSCRIBE", "p*"]])];
    seen.push(exchange(
        &mut publisher,
        &[
            &["SPUBLISH", "b", "to-shard-b"],
            &["PUBLISH", "b", "to-classic-b"],
            &["SPUBLISH", "a", "to-shard-a"],
            &["PUBLISH", "a", "to-classic-a"],
            &["SPUBLISH", "p1", "not-to-patterns"],
            &["PUBSUB", "SHARDCHANNELS", "b"],
            &["PUBSUB", "SHARDCHANNELS", "x", "y"],
            &["PUBSUB", "SHARDNUMSUB", "b", "c", "x"],
            &["PUBSUB", "CHANNELS"],
            &["PUBSUB", "NUMSUB", "a", "b"],
            &["SPUBLISH", "b"],
        ],
    ));
    seen.push(exchange(&mut subscriber, &[]));
    seen.push(exchange(
        &mut subscriber,
        &[
            // One left for the bare SUNSUBSCRIBE: Redis walks its channels in hash order.
            &["SUNSUBSCRIBE", "c"],
            &["SUNSUBSCRIBE"],
            &["SSUBSCRIBE", "b"],
            &["GET", "x"],
            &["SUNSUBSCRIBE", "b", "never"],
            &["UNSUBSCRIBE"],
            &["PUNSUBSCRIBE"],
            &["SUNSUBSCRIBE"],
            &["GET", "x"],
        ],
    ));
    let mut resp3 = server.connect();
    exchange(&mut resp3, &[&["HELLO", "3"]]);
    seen.push(exchange(&mut resp3, &[&["SSUBSCRIBE", "z"], &["SUNSUBSCRIBE", "z"], &["SUNSUBSCRIBE"]]));
    seen.push(exchange(&mut publisher, &[&["SPUBLISH", "z", "gone"]]));
    seen
}

#[test]
fn shard_channels_match_redis() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let expected = scenario(&redis);
    assert!(expected[2].contains("smessage"), "redis delivered {:?}", expected[2]);
    let got = scenario(&staykv);
    for (step, (r, s)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(s, r, "step {step}");
    }
}

/// With CLIENT REPLY OFF or SKIP, (un)subscribe confirmations and messages still go out, in
/// RESP2 and RESP3, as Redis 7.0 writes them (`CLIENT_PUSHING`); other replies do not. (A
/// RESP2 subscriber's CLIENT REPLY ON is refused, silently: its replies stay off.)
fn replies_off_scenario(server: &Server) -> Vec<String> {
    let mut publisher = server.connect();
    let mut seen = Vec::new();
    for protocol in ["2", "3"] {
        let mut subscriber = server.connect();
        exchange(&mut subscriber, &[&["HELLO", protocol]]);
        seen.push(exchange(
            &mut subscriber,
            &[&["CLIENT", "REPLY", "OFF"], &["SUBSCRIBE", "ch"], &["PSUBSCRIBE", "c*"], &["PING"]],
        ));
        seen.push(exchange(&mut publisher, &[&["PUBLISH", "ch", "hello"]]));
        seen.push(exchange(&mut subscriber, &[]));
        seen.push(exchange(
            &mut subscriber,
            &[&["UNSUBSCRIBE", "ch"], &["CLIENT", "REPLY", "ON"], &["CLIENT", "REPLY", "SKIP"], &["PUNSUBSCRIBE"]],
        ));
        seen.push(exchange(&mut subscriber, &[&["CLIENT", "REPLY", "ON"], &["ECHO", "after"]]));
    }
    seen
}

#[test]
fn confirmations_go_out_with_replies_off_as_in_redis() {
    let Some(redis) = Server::redis() else { return };
    let expected = replies_off_scenario(&redis);
    assert!(expected[0].contains("psubscribe"), "redis sent {:?}", expected[0]);
    let got = replies_off_scenario(&Server::staykv());
    for (step, (r, s)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(s, r, "step {step}");
    }
}

/// A subscriber that stops reading while messages pile up past what the sockets hold gets
/// every one of them, in order, once it reads again, with nothing more published. (StayKV
/// left those published while it waited for the socket queued until the next PUBLISH.)
fn backlog_scenario(server: &Server) -> Vec<String> {
    const MESSAGES: usize = 40;
    let (mut subscriber, mut publisher) = (server.connect(), server.connect());
    publisher.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0"]);
    subscriber.cmd(&["SUBSCRIBE", "ch"]);
    let payload = "m".repeat(1 << 20);
    for n in 0..MESSAGES {
        publisher.cmd(&["PUBLISH", "ch", &format!("{n}:{payload}")]);
    }
    let mut received = Vec::new();
    while let Ok(frame) = subscriber.read_frame() {
        let text = String::from_utf8_lossy(&frame).into_owned();
        received.push(text.split("\r\n").nth(6).and_then(|m| m.split(':').next()).unwrap_or("?").to_string());
        if received.len() == MESSAGES {
            break;
        }
    }
    vec![format!("received in order: {}", received.join(","))]
}

#[test]
fn a_lagging_subscriber_gets_its_whole_backlog_as_in_redis() {
    let all: Vec<String> = (0..40).map(|n| n.to_string()).collect();
    common::same_as_redis(backlog_scenario, &[&format!("received in order: {}", all.join(","))]);
}

/// A subscriber whose unsent messages stay over the pub/sub soft limit for its seconds is
/// closed, as Redis closes it, even when nothing more is published. (StayKV checked the
/// soft limit only when a message arrived, so a subscriber left over it after a burst stayed.)
fn soft_limit_scenario(server: &Server) -> Vec<String> {
    let (mut subscriber, mut publisher) = (server.connect(), server.connect());
    publisher.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 100000 1"]);
    let id = subscriber.cmd_text(&["CLIENT", "ID"]);
    subscriber.cmd(&["SUBSCRIBE", "ch"]);
    let message = "x".repeat(1000);
    let listed = |publisher: &mut RawConn| publisher.cmd_text(&["CLIENT", "LIST", "ID", &id]);
    let omem = |line: &str| -> u64 {
        line.split_whitespace().find_map(|f| f.strip_prefix("omem=")).and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    // The socket buffers take a few MB first: publish until the server holds some.
    let mut over = false;
    for _ in 0..20_000 {
        publisher.cmd(&["PUBLISH", "ch", &message]);
        if omem(&listed(&mut publisher)) > 100_000 {
            over = true;
            break;
        }
    }
    let started = std::time::Instant::now();
    let closed = common::wait_until(Duration::from_secs(10), || listed(&mut publisher).is_empty());
    let waited = started.elapsed();
    vec![format!(
        "over the soft limit {over}, then closed with nothing published: {closed}, not before its second: {}",
        waited >= Duration::from_millis(500)
    )]
}

#[test]
fn a_subscriber_over_the_soft_limit_is_closed_without_more_traffic_as_in_redis() {
    common::same_as_redis(soft_limit_scenario, &["closed with nothing published: true, not before its second: true"]);
}

/// A subscriber that stops reading is closed once all it has not taken passes the hard
/// limit: the messages queued for it and the replies of its unfinished write together, as
/// Redis counts one output buffer. StayKV held each of the two to the limit apart: a
/// subscriber that read a little once its queue was nearly full took the queue into a write
/// it never finished, and could then queue as much again. Here: 256 KiB messages until 6 MB
/// wait, the subscriber reads 1 MB, then messages until it is closed; `omem` is read after
/// each message.
fn hard_limit_scenario(server: &Server) -> Vec<String> {
    let (mut admin, mut subscriber) = (server.connect(), server.connect());
    admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 8mb 0 0"]);
    let id = subscriber.cmd_text(&["CLIENT", "ID"]);
    subscriber.cmd(&["SUBSCRIBE", "ch"]);
    let message = "m".repeat(256 << 10);
    let (mut most, mut published, mut has_read) = (0u64, 0, false);
    let closed = loop {
        let line = admin.cmd_text(&["CLIENT", "LIST", "ID", &id]);
        if line.is_empty() || published == 400 {
            break line.is_empty();
        }
        let omem = line.split_whitespace().find_map(|f| f.strip_prefix("omem=")?.parse().ok()).unwrap_or(0);
        most = most.max(omem);
        if omem > 6 << 20 && !has_read {
            let mut taken = vec![0u8; 1 << 20];
            std::io::Read::read_exact(&mut subscriber.stream(), &mut taken).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            has_read = true;
        }
        admin.cmd(&["PUBLISH", "ch", &message]);
        published += 1;
    };
    vec![format!(
        "read once: {has_read}, closed: {closed}, most held within the limit and a message: {}",
        most <= (8 << 20) + (300 << 10)
    )]
}

#[test]
fn a_subscriber_is_closed_when_all_it_holds_passes_the_hard_limit_as_in_redis() {
    common::same_as_redis(
        hard_limit_scenario,
        &["read once: true, closed: true, most held within the limit and a message: true"],
    );
}

/// A MONITOR client's lines count against the `normal` class's output limits, as in Redis,
/// not the `pubsub` class's: one that reads slowly under the default `normal 0 0 0` is kept,
/// while a subscriber is closed past its pub/sub limit; its `omem` shows what waits, and
/// MEMORY DOCTOR finds the big client buffers. (StayKV held the monitor to the pub/sub limits,
/// counted each line as 16 bytes, and counted no buffers in its clients' memory.)
fn monitor_class_scenario(server: &Server) -> Vec<String> {
    let (mut admin, mut monitor, mut subscriber) = (server.connect(), server.connect(), server.connect());
    admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0"]);
    let ids = [monitor.cmd_text(&["CLIENT", "ID"]), subscriber.cmd_text(&["CLIENT", "ID"])];
    monitor.cmd(&["MONITOR"]);
    subscriber.cmd(&["SUBSCRIBE", "ch"]);
    // 40 MB of commands, each echoed to the monitor and published to the subscriber.
    let value = "v".repeat(4000);
    for batch in 0..10 {
        let pipeline: Vec<u8> =
            (0..1000).flat_map(|n| encode_str(&["PUBLISH", "ch", &format!("{batch}-{n}{value}")])).collect();
        admin.send(&pipeline);
        for _ in 0..1000 {
            admin.read_frame().unwrap();
        }
    }
    let listed = |admin: &mut RawConn, id: &str| !admin.cmd_text(&["CLIENT", "LIST", "ID", id]).is_empty();
    let subscriber_closed = common::wait_until(Duration::from_secs(10), || !listed(&mut admin, &ids[1]));
    let line = admin.cmd_text(&["CLIENT", "LIST", "ID", &ids[0]]);
    let omem: u64 = line.split_whitespace().find_map(|f| f.strip_prefix("omem=")?.parse().ok()).unwrap_or(0);
    let doctor = admin.cmd_text(&["MEMORY", "DOCTOR"]);
    vec![
        format!("monitor kept: {}, subscriber closed: {subscriber_closed}", !line.is_empty()),
        // What the socket buffers do not hold waits in the server, and shows.
        format!("monitor's unsent lines over 20 MB: {}", omem > 20 << 20),
        format!("MEMORY DOCTOR sees big client buffers: {}", doctor.contains("Big client buffers")),
    ]
}

#[test]
fn a_monitor_takes_the_normal_output_limits_as_in_redis() {
    common::same_as_redis(
        monitor_class_scenario,
        &[
            "monitor kept: true, subscriber closed: true",
            "monitor's unsent lines over 20 MB: true",
            "MEMORY DOCTOR sees big client buffers: true",
        ],
    );
}
