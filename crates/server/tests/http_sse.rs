//! Server-sent events over the HTTP API: `/subscribe`, `/psubscribe` and `/monitor` stream
//! in the line format `@upstash/redis` reads, and a closed stream leaves no subscription.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{free_port, Server};

/// Open an SSE stream and return the socket once the response headers arrived.
fn open(port: u16, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    stream
}

/// The end of a chunked body: the server ended the stream.
const END_OF_STREAM: &str = "\r\n0\r\n\r\n";

/// Read until `needle` has appeared in the stream (or fail after 30 s). Only what the last
/// read added is searched, so that a stream of megabytes is read in linear time.
fn read_until(stream: &mut TcpStream, seen: &mut String, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = vec![0u8; 1 << 16];
    let mut searched = 0;
    while !seen[searched..].contains(needle) {
        searched = seen.len().saturating_sub(needle.len());
        while !seen.is_char_boundary(searched) {
            searched -= 1;
        }
        let tail = || seen.get(seen.len().saturating_sub(1000)..).unwrap_or(seen.as_str()).to_string();
        assert!(Instant::now() < deadline, "never saw {needle:?}; the stream ends {:?}", tail());
        match stream.read(&mut buf) {
            Ok(0) => panic!("stream closed before {needle:?}; it ends {:?}", tail()),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn subscribe_psubscribe_and_monitor_stream_messages() {
    let http = free_port().to_string();
    let server = Server::staykv_with(&["--http-port", &http]);
    let port: u16 = http.parse().unwrap();

    let mut channel = open(port, "/subscribe/news");
    let mut pattern = open(port, "/psubscribe/n*");
    let mut monitor = open(port, "/monitor");
    let (mut a, mut b, mut m) = (String::new(), String::new(), String::new());
    read_until(&mut channel, &mut a, "data: subscribe,news,1");
    read_until(&mut pattern, &mut b, "data: psubscribe,n*,1");
    read_until(&mut monitor, &mut m, "text/event-stream");

    assert_eq!(server.cmd(&["PUBLISH", "news", "hello world"]), b":2\r\n");
    read_until(&mut channel, &mut a, "data: message,news,hello world");
    read_until(&mut pattern, &mut b, "data: pmessage,n*,news,hello world");
    read_until(&mut monitor, &mut m, "\"PUBLISH\" \"news\" \"hello world\"");

    // Closing the streams drops their subscriptions.
    drop(channel);
    drop(pattern);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let numsub = server.cmd(&["PUBSUB", "NUMSUB", "news"]);
        let numpat = server.cmd(&["PUBSUB", "NUMPAT"]);
        if numsub.ends_with(b":0\r\n") && numpat == b":0\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "subscriptions left behind");
        // Publishing makes the server notice the closed sockets.
        server.cmd(&["PUBLISH", "news", "ping"]);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A stream's SUBSCRIBE runs as any command does: held while CLIENT PAUSE ALL lasts (and
/// while a busy script runs), and counted in INFO commandstats. It had run at once, uncounted.
#[test]
fn a_stream_subscribes_as_any_command_runs() {
    let http = free_port().to_string();
    let server = Server::staykv_with(&["--http-port", &http]);
    assert_eq!(server.cmd(&["CLIENT", "PAUSE", "600", "ALL"]), b"+OK\r\n");
    let started = Instant::now();
    let mut channel = open(http.parse().unwrap(), "/subscribe/news");
    let mut seen = String::new();
    read_until(&mut channel, &mut seen, "data: subscribe,news,1");
    assert!(started.elapsed() >= Duration::from_millis(400), "subscribed during the pause");
    let stats = String::from_utf8_lossy(&server.cmd(&["INFO", "commandstats"])).into_owned();
    assert!(stats.contains("cmdstat_subscribe:calls=1,"), "{stats}");
}

/// Streams open with GET or POST (`@upstash/redis` posts); another method is refused (405)
/// rather than subscribing.
#[test]
fn streams_open_with_get_or_post_only() {
    let http = free_port().to_string();
    let _server = Server::staykv_with(&["--http-port", &http]);
    let port: u16 = http.parse().unwrap();
    for (method, status) in [("POST", "HTTP/1.1 200"), ("DELETE", "HTTP/1.1 405"), ("PUT", "HTTP/1.1 405")] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(stream, "{method} /subscribe/news HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n").unwrap();
        let mut seen = String::new();
        read_until(&mut stream, &mut seen, "\r\n\r\n");
        assert!(seen.starts_with(status), "{method}: {seen}");
        if status.ends_with("405") {
            assert!(seen.to_ascii_lowercase().contains("allow: get, post"), "{seen}");
        }
    }
}

#[test]
fn subscribe_needs_a_channel() {
    let http = free_port().to_string();
    let _server = Server::staykv_with(&["--http-port", &http]);
    let mut stream = open(http.parse().unwrap(), "/subscribe/");
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\r\n\r\n");
    assert!(seen.starts_with("HTTP/1.1 400"), "{seen}");
}

/// A reader that falls more than the backlog behind is cut off: its stream ends after an
/// unbroken run of messages and its subscription goes. (The stream used to go on after a
/// silent gap, the reader never knowing it had missed thousands of messages.)
#[test]
fn a_reader_too_far_behind_is_cut_off_not_skipped() {
    const MESSAGES: usize = 20_000;
    let http = free_port().to_string();
    let server = Server::staykv_with(&["--http-port", &http]);
    let mut stream = open(http.parse().unwrap(), "/subscribe/flood");
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "data: subscribe,flood,1");
    // 40 MB unread: more than the sockets and the 4,096-message backlog hold.
    let mut publisher = server.connect();
    let pad = "p".repeat(2000);
    for batch in (0..MESSAGES).collect::<Vec<_>>().chunks(1000) {
        let pipeline: Vec<u8> =
            batch.iter().flat_map(|n| common::encode_str(&["PUBLISH", "flood", &format!("{n}:{pad}")])).collect();
        publisher.send(&pipeline);
        for _ in batch {
            publisher.read_frame().unwrap();
        }
    }
    // The end of the chunked body: the stream is over.
    let mut text = String::new();
    read_until(&mut stream, &mut text, END_OF_STREAM);
    let received: Vec<usize> =
        text.split("data: message,flood,").skip(1).filter_map(|m| m.split(':').next()?.parse().ok()).collect();
    assert!(!received.is_empty() && received.len() < MESSAGES, "{} messages", received.len());
    assert!(received.iter().enumerate().all(|(i, &n)| i == n), "a gap in what was received");
    let unsubscribed = common::wait_until(Duration::from_secs(10), || {
        server.cmd(&["PUBSUB", "NUMSUB", "flood"]) == b"*2\r\n$5\r\nflood\r\n:0\r\n"
    });
    assert!(unsubscribed, "the cut-off stream's subscription was left behind");
}

/// A reader that stops reading altogether is cut off by bytes too (the pubsub class's
/// `client-output-buffer-limit`), and what was queued for it is let go at once: its stream is
/// never polled again, so a bound checked only when it is would hold every message published
/// until its socket closed (1,500 MB for 1,500 messages of 1 MB, before).
#[test]
fn a_reader_that_never_reads_holds_no_more_than_the_pubsub_limit() {
    let http = free_port().to_string();
    let server = Server::staykv_with(&["--http-port", &http]);
    assert_eq!(server.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 8mb 0 0"]), b"+OK\r\n");
    let mut stream = open(http.parse().unwrap(), "/subscribe/stall");
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "data: subscribe,stall,1");
    let before = server.rss_kib();
    let mut publisher = server.connect();
    let message = "m".repeat(1 << 20);
    for _ in 0..150 {
        publisher.cmd(&["PUBLISH", "stall", &message]);
    }
    let grown_mib = server.rss_kib().saturating_sub(before) / 1024;
    // 150 MiB published; the socket buffers, the 8 MiB limit and the allocator's slack stay
    // well under 64 MiB.
    assert!(grown_mib < 64, "the server grew by {grown_mib} MiB for a reader that never reads");
    drop(stream);
}

/// A read-only token's stream runs as the `http-readonly` ACL user, so an operator who
/// defines that user with fewer channels narrows the streams too (they used to run as
/// `default`); and taking a channel away from it ends its streams on that channel at once,
/// as Redis closes a RESP subscriber. The full token's streams, as `default`, go on.
#[test]
fn a_read_only_stream_runs_as_its_acl_user_and_ends_when_its_channel_is_revoked() {
    let http = free_port().to_string();
    let port = http.parse().unwrap();
    let server = Server::staykv_with(&["--http-port", &http, "--http-token", "full", "--http-readonly-token", "ro"]);
    let mut admin = server.connect();
    let narrowed =
        ["ACL", "SETUSER", "http-readonly", "on", "nopass", "~*", "resetchannels", "&public:*", "+subscribe"];
    assert_eq!(admin.cmd_text(&narrowed), "OK");
    let mut refused = open(port, "/subscribe/secret?_token=ro");
    let mut seen = String::new();
    read_until(&mut refused, &mut seen, "NOPERM");
    assert!(seen.starts_with("HTTP/1.1 400"), "{seen}");

    let (mut read_only, mut full) =
        (open(port, "/subscribe/public:a?_token=ro"), open(port, "/subscribe/public:a?_token=full"));
    let (mut read_only_seen, mut full_seen) = (String::new(), String::new());
    read_until(&mut read_only, &mut read_only_seen, "data: subscribe,public:a,1");
    read_until(&mut full, &mut full_seen, "data: subscribe,public:a,1");
    assert_eq!(admin.cmd_text(&["PUBLISH", "public:a", "before"]), "2");
    read_until(&mut read_only, &mut read_only_seen, "data: message,public:a,before");
    assert_eq!(admin.cmd_text(&["ACL", "SETUSER", "http-readonly", "resetchannels", "&other"]), "OK");
    read_until(&mut read_only, &mut read_only_seen, END_OF_STREAM);
    assert_eq!(admin.cmd_text(&["PUBLISH", "public:a", "after"]), "1");
    read_until(&mut full, &mut full_seen, "data: message,public:a,after");
}
