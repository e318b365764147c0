//! Large replies over raw TCP. Values of 16 KiB and more go out from where they are stored
//! (`writev` of the connection's pending pieces) instead of being copied into its buffer;
//! a pipeline of them, read slowly enough that the server's writes stop part-way, must
//! arrive byte for byte in order, and a value overwritten while its reply waits must still
//! go out as it was when read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::Read;
use std::time::Duration;

use common::{encode, Server};

/// A value of `len` bytes that shows where a piece went missing or moved.
fn patterned(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add((i % 251) as u8)).collect()
}

fn bulk(data: &[u8]) -> Vec<u8> {
    let mut frame = format!("${}\r\n", data.len()).into_bytes();
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\r\n");
    frame
}

#[test]
fn pipelined_large_values_arrive_whole_and_in_order_when_read_slowly() {
    let server = Server::staykv();
    let mut conn = server.connect();
    let big = patterned(1 << 20, 1);
    let medium = patterned(64 * 1024, 2);
    let edge = patterned(16 * 1024, 3);
    let replaced = patterned(1 << 20, 4);
    for (key, value) in [("big", &big), ("medium", &medium), ("edge", &edge)] {
        assert_eq!(conn.cmd_bytes(&[b"SET", key.as_bytes(), value]), b"+OK\r\n");
    }
    assert_eq!(conn.cmd(&["SET", "small", "s"]), b"+OK\r\n");

    // More than loopback's socket buffers hold (several MiB), so the server's writes stop
    // part-way while the client sleeps, and resume.
    let mut pipeline = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..8 {
        pipeline.extend(encode(&[b"GET", b"big"]));
        expected.extend(bulk(&big));
        pipeline.extend(encode(&[b"GET", b"small"]));
        expected.extend(bulk(b"s"));
    }
    pipeline.extend(encode(&[b"MGET", b"medium", b"small", b"edge", b"missing"]));
    expected.extend(b"*4\r\n");
    expected.extend(bulk(&medium));
    expected.extend(bulk(b"s"));
    expected.extend(bulk(&edge));
    expected.extend(b"$-1\r\n");
    // The reply to the first GET holds the value as read, whatever comes after it.
    pipeline.extend(encode(&[b"GET", b"big"]));
    expected.extend(bulk(&big));
    pipeline.extend(encode(&[b"SET", b"big", &replaced]));
    expected.extend(b"+OK\r\n");
    pipeline.extend(encode(&[b"GET", b"big"]));
    expected.extend(bulk(&replaced));
    conn.send(&pipeline);

    std::thread::sleep(Duration::from_millis(300));
    let mut received = Vec::with_capacity(expected.len());
    let mut chunk = vec![0u8; 100_000];
    let mut stream = conn.stream();
    while received.len() < expected.len() {
        let n = stream.read(&mut chunk).expect("read replies");
        assert!(n > 0, "server closed after {} of {} bytes", received.len(), expected.len());
        received.extend_from_slice(&chunk[..n]);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(received.len(), expected.len());
    let first_difference = received.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "replies differ from byte {first_difference:?}");
    assert_eq!(conn.cmd(&["PING"]), b"+PONG\r\n");
}
