//! Malformed input over raw TCP: every case gets Redis 7.0's exact reply bytes,
//! the connection is closed when Redis closes it, the server does not panic, hang or
//! allocate much, and it answers `PING` on a new connection afterwards.
//!
//! The expected bytes are written out here; when `redis-server` is installed each case is
//! also sent to a real Redis 7.0, which must give the same bytes (so the expectations are
//! Redis's, not ours).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{encode, encode_str, same_as_redis, Drained, RawConn, Server};
use rand::{Rng, SeedableRng};

/// How long a connection expected to stay open must stay quiet after its replies.
const QUIET: Duration = Duration::from_millis(250);

fn invalid_mbulk() -> Vec<u8> {
    b"-ERR Protocol error: invalid multibulk length\r\n".to_vec()
}

fn invalid_bulk() -> Vec<u8> {
    b"-ERR Protocol error: invalid bulk length\r\n".to_vec()
}

fn unbalanced() -> Vec<u8> {
    b"-ERR Protocol error: unbalanced quotes in request\r\n".to_vec()
}

/// One malformed input and what Redis 7.0 answers to it.
struct Case {
    name: &'static str,
    input: Vec<u8>,
    reply: Vec<u8>,
    /// Redis closes the connection after the reply.
    closes: bool,
}

fn case(name: &'static str, input: &[u8], reply: &[u8], closes: bool) -> Case {
    Case { name, input: input.to_vec(), reply: reply.to_vec(), closes }
}

/// Send the input on a fresh connection and collect what comes back.
fn exchange(server: &Server, input: &[u8], expected_len: usize, closes: bool) -> Drained {
    let mut conn = server.connect();
    conn.send_lenient(input);
    // Waiting for a close may take the full I/O timeout only if the server misbehaves.
    let quiet = if closes { common::IO_TIMEOUT } else { QUIET };
    conn.drain(expected_len, quiet)
}

fn assert_alive(server: &mut Server, after: &str) {
    assert!(server.is_running(), "{:?} died after {after}; log:\n{}", server.kind(), server.log());
    let mut conn = server.connect();
    let reply = conn.try_cmd(&["PING"]).unwrap_or_default();
    // With --requirepass, NOAUTH is the answer of a healthy server.
    assert!(
        reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"),
        "{:?}: PING after {after} got {:?}",
        server.kind(),
        String::from_utf8_lossy(&reply)
    );
}

fn check_cases(cases: &[Case], extra_args: &[&str]) {
    let mut staykv = Server::staykv_with(extra_args);
    let mut redis = Server::redis_with(extra_args);
    for c in cases {
        let got = exchange(&staykv, &c.input, c.reply.len(), c.closes);
        assert!(
            got.bytes == c.reply && got.closed == c.closes,
            "staykv, case {:?}: got {} (closed: {}), Redis sends {} (closed: {})",
            c.name,
            show(&got.bytes),
            got.closed,
            show(&c.reply),
            c.closes
        );
        assert_alive(&mut staykv, c.name);
        if let Some(redis) = redis.as_mut() {
            let want = exchange(redis, &c.input, c.reply.len(), c.closes);
            assert!(
                want.bytes == c.reply && want.closed == c.closes,
                "redis-server, case {:?}: the test expects {} (closed: {}) but Redis sends {} (closed: {})",
                c.name,
                show(&c.reply),
                c.closes,
                show(&want.bytes),
                want.closed
            );
            assert_alive(redis, c.name);
        }
    }
    assert!(!staykv.log().contains("panicked"), "panic in the log:\n{}", staykv.log());
}

/// Bytes as a readable escaped string.
fn show(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

#[test]
fn wrong_and_negative_lengths() {
    check_cases(
        &[
            case("non-numeric multibulk count", b"*abc\r\n", &invalid_mbulk(), true),
            case("multibulk count with a space", b"* 1\r\n", &invalid_mbulk(), true),
            case("multibulk count over INT_MAX", b"*3000000000\r\n", &invalid_mbulk(), true),
            case("multibulk count overflowing i64", b"*99999999999999999999\r\n", &invalid_mbulk(), true),
            case("negative multibulk count is skipped", b"*-5\r\nPING\r\n", b"+PONG\r\n", false),
            case("zero multibulk count is skipped", b"*0\r\nPING\r\n", b"+PONG\r\n", false),
            case("bulk length -1", b"*1\r\n$-1\r\n", &invalid_bulk(), true),
            case("bulk length -5", b"*1\r\n$-5\r\n", &invalid_bulk(), true),
            case("bulk length with a plus sign", b"*1\r\n$+4\r\nPING\r\n", &invalid_bulk(), true),
            case("bulk length with a leading zero", b"*1\r\n$04\r\nPING\r\n", &invalid_bulk(), true),
            case("non-numeric bulk length", b"*1\r\n$abc\r\n", &invalid_bulk(), true),
            case("$ header without digits", b"*1\r\n$\r\n", &invalid_bulk(), true),
            case("bulk one over 512 MB", b"*1\r\n$536870913\r\n", &invalid_bulk(), true),
            case("declared 2 GB bulk", b"*1\r\n$2147483648\r\n", &invalid_bulk(), true),
            case("bulk length overflowing i64", b"*1\r\n$99999999999999999999\r\n", &invalid_bulk(), true),
            case("element without $", b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n", true),
            case(
                "integer instead of bulk",
                b"*2\r\n$4\r\nECHO\r\n:1\r\n",
                b"-ERR Protocol error: expected '$', got ':'\r\n",
                true,
            ),
            // Redis ends a header line at its first \r and skips the next byte unchecked.
            case("header lines ended by \\r and any byte", b"*1\rX$4\rXPING\r\n", b"+PONG\r\n", false),
            case("CR where $ belongs", b"*1\r\n\r\n", b"-ERR Protocol error: expected '$', got ' '\r\n", true),
            // `$` is checked once the header line is complete: until then, Redis waits.
            case("element header line not yet complete", b"*1\r\nfoo", b"", false),
            // strchr stops at a NUL: the \r after it is not seen, the line never completes.
            case("NUL byte in a bulk length line", b"*1\r\n$3\x00\r\nfoo\r\n", b"", false),
            // Too short a length: Redis takes 3 bytes and skips the next two unchecked.
            case(
                "bulk shorter than its data",
                b"*1\r\n$3\r\nPINGX\r\n",
                b"-ERR unknown command 'PIN', with args beginning with: \r\n",
                false,
            ),
            // Too long a length swallows the CRLF and part of the next request.
            case(
                "bulk longer than its data",
                b"*2\r\n$4\r\nECHO\r\n$5\r\nab\r\n\r\nPING\r\n",
                b"$5\r\nab\r\n\r\r\n-ERR unknown command 'ING', with args beginning with: \r\n",
                false,
            ),
        ],
        &[],
    );
}

/// Redis echoes the offending bytes of an error raw, whatever they are.
#[test]
fn non_ascii_bytes_are_echoed_raw_in_errors() {
    check_cases(
        &[
            case(
                "non-ASCII byte where $ belongs",
                b"*1\r\n\xff\r\n",
                b"-ERR Protocol error: expected '$', got '\xff'\r\n",
                true,
            ),
            case(
                "unknown command with non-UTF-8 bytes",
                b"\xff\xfe \xc3x\r\n",
                b"-ERR unknown command '\xff\xfe', with args beginning with: '\xc3x' \r\n",
                false,
            ),
            // An argument quoted in an error is cut at a NUL (C's `%s`), a subcommand at 128
            // bytes (`%.128s`).
            case(
                "unknown subcommand with non-UTF-8 bytes and a NUL",
                b"*2\r\n$6\r\nOBJECT\r\n$4\r\n\xff\x00ab\r\n",
                b"-ERR unknown subcommand '\xff'. Try OBJECT HELP.\r\n",
                false,
            ),
            case(
                "unknown subcommand of 130 bytes",
                &[b"*2\r\n$6\r\nCONFIG\r\n$130\r\n".as_slice(), &[b'x'; 130], b"\r\n"].concat(),
                &[b"-ERR unknown subcommand '".as_slice(), &[b'x'; 128], b"'. Try CONFIG HELP.\r\n"].concat(),
                false,
            ),
            case(
                "unsupported EXPIRE option with a non-UTF-8 byte",
                b"*4\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n10\r\n$2\r\n\xffQ\r\n",
                b"-ERR Unsupported option \xffQ\r\n",
                false,
            ),
            case(
                "unknown client type with a NUL",
                b"*4\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n$4\r\nTYPE\r\n$3\r\na\x00b\r\n",
                b"-ERR Unknown client type 'a'\r\n",
                false,
            ),
        ],
        &[],
    );
}

#[test]
fn over_long_header_and_inline_lines() {
    let inline = vec![b'a'; 70_000];
    let mut mbulk = b"*".to_vec();
    mbulk.extend(vec![b'1'; 70_000]);
    let mut bulk = b"*1\r\n$".to_vec();
    bulk.extend(vec![b'1'; 70_000]);
    let exactly_64k = vec![b'a'; 64 * 1024];
    let mut nul_line = b"GET a\x00b\r\nPING\r\n".to_vec();
    check_cases(
        &[
            case("inline line over 64 KiB", &inline, b"-ERR Protocol error: too big inline request\r\n", true),
            // Exactly 64 KiB without a newline is still allowed to grow.
            case("inline line of exactly 64 KiB", &exactly_64k, b"", false),
            case(
                "multibulk count line over 64 KiB",
                &mbulk,
                b"-ERR Protocol error: too big mbulk count string\r\n",
                true,
            ),
            case("bulk length line over 64 KiB", &bulk, b"-ERR Protocol error: too big bulk count string\r\n", true),
            // Redis finds the end of an inline line with strchr: a NUL hides the newline.
            case("NUL byte in an inline line", &nul_line, b"", false),
        ],
        &[],
    );
    // ...until the line passes 64 KiB.
    nul_line.resize(70_000, b'x');
    check_cases(
        &[case("NUL byte, then 64 KiB", &nul_line, b"-ERR Protocol error: too big inline request\r\n", true)],
        &[],
    );
}

#[test]
fn inline_quoting() {
    check_cases(
        &[
            case("unbalanced double quote", b"SET \"foo bar\r\n", &unbalanced(), true),
            case("unbalanced single quote", b"SET 'foo bar\r\n", &unbalanced(), true),
            case("closing quote followed by a letter", b"SET \"a\"b c\r\n", &unbalanced(), true),
            case("trailing backslash in quotes", b"ECHO \"a\\\r\n", &unbalanced(), true),
            case("quotes and escapes", b"ECHO \"a\\x41\\n\\q\"\r\n", b"$4\r\naA\nq\r\n", false),
            case("single-quote escape", b"ECHO 'it\\'s'\r\n", b"$4\r\nit's\r\n", false),
            case("vertical tab before a word", b"\x0bPING\r\n", b"+PONG\r\n", false),
            case("LF-only line ends and empty lines", b"\r\n\nPING\nPING\r\n", b"+PONG\r\n+PONG\r\n", false),
            case(
                "unknown inline command",
                b"FOO bar \"b z\"\r\n",
                b"-ERR unknown command 'FOO', with args beginning with: 'bar' 'b z' \r\n",
                false,
            ),
        ],
        &[],
    );
}

#[test]
fn unauthenticated_clients_get_tight_limits() {
    check_cases(
        &[
            case(
                "11 arguments before AUTH",
                b"*11\r\n",
                b"-ERR Protocol error: unauthenticated multibulk length\r\n",
                true,
            ),
            case(
                "16 KiB + 1 bulk before AUTH",
                b"*1\r\n$16385\r\n",
                b"-ERR Protocol error: unauthenticated bulk length\r\n",
                true,
            ),
            case(
                "command before AUTH",
                b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
                b"-NOAUTH Authentication required.\r\n",
                false,
            ),
            // Redis 7.0 checks the arity before authentication.
            case(
                "wrong arity before AUTH",
                b"*1\r\n$3\r\nGET\r\n",
                b"-ERR wrong number of arguments for 'get' command\r\n",
                false,
            ),
        ],
        &["--requirepass", "secret"],
    );
}

/// Frames cut off by the client closing: no reply, nothing executed, no panic.
#[test]
fn unterminated_frames_followed_by_close() {
    let mut server = Server::staykv();
    let inputs: [&[u8]; 6] = [
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n",
        b"*3\r\n$3\r\nSE",
        b"*3\r",
        b"SET k v",
    ];
    for input in inputs {
        let mut conn = server.connect();
        conn.send(input);
        conn.shutdown_write();
        let got = conn.drain(0, common::IO_TIMEOUT);
        assert_eq!((got.bytes.as_slice(), got.closed), (&b""[..], true), "input {:?}", String::from_utf8_lossy(input));
        assert_alive(&mut server, &String::from_utf8_lossy(input));
        assert_eq!(server.cmd(&["EXISTS", "k"]), b":0\r\n", "a cut-off SET was executed");
    }
    // A cut-off frame after complete ones: the complete ones run, their replies arrive.
    let mut conn = server.connect();
    conn.send(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1");
    conn.shutdown_write();
    let got = conn.drain(0, common::IO_TIMEOUT);
    assert_eq!((got.bytes.as_slice(), got.closed), (&b"+OK\r\n+PONG\r\n"[..], true));
    assert_eq!(server.cmd(&["GET", "a"]), b"$1\r\n1\r\n");
}

/// A pipeline of 3 MB, sent in one go by a client that then half-closes: values of every
/// length up to 3,000 bytes put the frames' ends at every offset of the reads (1 KiB, then
/// 16 KiB, read on up to 1 MiB before replies go out), and a cut-off frame ends it.
fn long_pipeline_then_half_close(server: &Server) -> Vec<String> {
    let mut pipeline = Vec::new();
    for i in 0..2_000usize {
        let key = format!("pipelined:{i}");
        let value = vec![b'a' + (i % 26) as u8; i * 37 % 3_000];
        pipeline.extend(encode(&[b"SET", key.as_bytes(), &value]));
        pipeline.extend(encode(&[b"STRLEN", key.as_bytes()]));
        pipeline.extend(encode(&[b"APPEND", key.as_bytes(), b"!"]));
    }
    pipeline.extend(encode_str(&["GET", "pipelined:1999"]));
    pipeline.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$14\r\npipelined:");
    let mut conn = server.connect();
    let mut sender = conn.stream().try_clone().unwrap();
    let send = std::thread::spawn(move || {
        sender.write_all(&pipeline).unwrap();
        sender.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let got = conn.drain(0, common::IO_TIMEOUT);
    send.join().unwrap();
    let text = String::from_utf8_lossy(&got.bytes);
    let lines: Vec<&str> = text.split("\r\n").collect();
    let integers: Vec<u64> = lines.iter().filter_map(|l| l.strip_prefix(':')?.parse().ok()).collect();
    // In order: a digest, so that a failure prints two short lines, not 4,000 numbers.
    let digest = integers.iter().fold(0u64, |h, v| h.wrapping_mul(1_000_003).wrapping_add(*v));
    vec![
        format!("{} reply bytes, closed: {}", got.bytes.len(), got.closed),
        format!("{} replies +OK", lines.iter().filter(|l| **l == "+OK").count()),
        format!("{} integer replies, digest {digest:x}", integers.len()),
        format!("last bulk: {:?}", lines.iter().rev().find(|l| l.starts_with('$'))),
        format!("ends with: {:?}", lines.iter().rev().nth(1).map(|l| &l[l.len().saturating_sub(3)..])),
    ]
}

/// Every request of a long pipeline is answered, in order, whatever the read boundaries;
/// the cut-off frame at its end is dropped and the connection closed, as in Redis.
#[test]
fn a_long_pipeline_then_half_close_is_answered_in_full_like_redis() {
    same_as_redis(long_pipeline_then_half_close, &["2000 replies +OK", "4000 integer replies", "closed: true"]);
}

fn garbage(seed: u64, prefix: &[u8]) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut bytes = prefix.to_vec();
    bytes.extend((0..4096).map(|_| rng.gen::<u8>()));
    bytes
}

/// Random bytes (as inline lines, and after `*` and `*1\r\n$` headers) never crash or hang
/// the server, and it closes a connection exactly when Redis does. The client half-closes
/// after sending, so both servers end the connection once they have answered everything.
fn garbage_outcomes(server: &Server) -> Vec<(String, Drained)> {
    let prefixes: [&[u8]; 3] = [b"", b"*", b"*2\r\n$"];
    let inputs: Vec<(String, Vec<u8>)> = (0..24u64)
        .map(|seed| {
            let prefix = prefixes[seed as usize % prefixes.len()];
            (format!("seed {seed}, prefix {:?}", String::from_utf8_lossy(prefix)), garbage(seed, prefix))
        })
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|(name, input)| {
                scope.spawn(move || {
                    let mut conn = server.connect();
                    conn.send_lenient(input);
                    conn.shutdown_write();
                    (name.clone(), conn.drain(0, common::IO_TIMEOUT))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Whether the reply stream holds only errors, and how many frames: the shape of the outcome
/// without the text of unknown-command errors.
fn error_shape(bytes: &[u8]) -> Vec<u8> {
    bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| l[0]).collect()
}

#[test]
fn binary_garbage_is_survived_like_redis() {
    let mut staykv = Server::staykv();
    let ours = garbage_outcomes(&staykv);
    for (name, got) in &ours {
        assert!(got.closed, "{name}: the server did not close after the client's EOF (hang?)");
    }
    assert_alive(&mut staykv, "binary garbage");
    // Memory must not have run away (an infinite loop once pushed empty words forever).
    assert!(staykv.rss_kib() < 256 * 1024, "RSS {} KiB after garbage", staykv.rss_kib());
    let Some(mut redis) = Server::redis() else { return };
    let theirs = garbage_outcomes(&redis);
    assert_alive(&mut redis, "binary garbage");
    for ((name, got), (_, want)) in ours.iter().zip(&theirs) {
        assert_eq!(error_shape(&got.bytes), error_shape(&want.bytes), "{name}: reply kinds differ from Redis's");
        let protocol_error = |d: &Drained| {
            d.bytes.windows(b"Protocol error".len()).position(|w| w == b"Protocol error").map(|at| {
                let end = d.bytes[at..].iter().position(|&b| b == b'\r').unwrap_or(0);
                String::from_utf8_lossy(&d.bytes[at..at + end]).into_owned()
            })
        };
        assert_eq!(protocol_error(got), protocol_error(want), "{name}: protocol error differs from Redis's");
    }
}

/// The same garbage gets byte-identical replies. Unknown-command errors echo the command
/// and its first arguments as raw bytes in Redis.
#[test]
fn binary_garbage_replies_match_redis_byte_for_byte() {
    let Some(redis) = Server::redis() else { return };
    let staykv = Server::staykv();
    let ours = garbage_outcomes(&staykv);
    let theirs = garbage_outcomes(&redis);
    for ((name, got), (_, want)) in ours.iter().zip(&theirs) {
        assert!(got.bytes == want.bytes, "{name}:\n staykv: {}\n  redis: {}", show(&got.bytes), show(&want.bytes));
    }
}

/// A 1M-element array header, or a 512 MB bulk header, reserves nothing: the server's
/// memory stays small while many such requests wait for data that never comes.
#[test]
fn huge_declared_sizes_allocate_nothing() {
    /// Connections left waiting: one in five declares a 512 MB bulk, the others 1M elements.
    const PENDING: usize = 80;
    let mut server = Server::staykv();
    // Warm up: threads, buffers and allocator arenas exist before the baseline.
    let mut warm: Vec<RawConn> = (0..8).map(|_| server.connect()).collect();
    for conn in &mut warm {
        assert_eq!(conn.cmd(&["SET", "warm", "x"]), b"+OK\r\n");
    }
    let (rss_before, vm_before) = (server.rss_kib(), server.vm_size_kib());

    let mut pending = Vec::new();
    for i in 0..PENDING {
        let mut conn = server.connect();
        if i % 5 == 0 {
            let mut input = b"*2\r\n$3\r\nSET\r\n$536870912\r\n".to_vec();
            input.extend(vec![b'v'; 1000]);
            conn.send(&input);
        } else {
            conn.send(b"*1048576\r\n$3\r\nfoo\r\n$3\r\nbar\r\n$3\r\nbaz\r\n");
        }
        pending.push(conn);
    }
    // The server answers none of them: give it a moment to read everything, then check
    // that it serves other clients meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    assert_alive(&mut server, "huge headers");
    let (rss_after, vm_after) = (server.rss_kib(), server.vm_size_kib());
    let rss_growth = rss_after.saturating_sub(rss_before);
    let vm_growth = vm_after.saturating_sub(vm_before);
    assert!(rss_growth < 64 * 1024, "RSS grew by {rss_growth} KiB with {PENDING} huge headers pending");
    // 16 blind 512 MB reservations would add 8 GiB of address space; 64 blind 1M-slot
    // argument vectors (16 bytes a slot or more) at least 1 GiB.
    assert!(vm_growth < 512 * 1024, "virtual memory grew by {vm_growth} KiB with {PENDING} huge headers pending");

    for conn in &mut pending {
        let got = conn.drain(0, Duration::from_millis(5));
        assert_eq!((got.bytes.as_slice(), got.closed), (&b""[..], false), "server answered an incomplete request");
    }
    drop(pending);
    assert_alive(&mut server, "closing connections with huge pending requests");
    assert_eq!(server.cmd(&["DBSIZE"]), b":1\r\n", "an incomplete request was executed");
}

/// A client that sends one request at a time reads into 1 KiB: its buffer grows only once a
/// read fills it (a pipelining client). Growing to 16 KiB as soon as the first request had
/// been taken out of the buffer cost every client 20 KiB of RSS after its first GET.
#[test]
fn clients_sending_one_request_at_a_time_keep_small_buffers() {
    const CLIENTS: usize = 800;
    let server = Server::staykv();
    assert_eq!(server.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    let get = common::encode_str(&["GET", "k"]);
    let mut warm: Vec<RawConn> = (0..50).map(|_| server.connect()).collect();
    for conn in &mut warm {
        conn.send(&get);
        assert_eq!(conn.read_frame().unwrap(), b"$1\r\nv\r\n");
    }
    let mut clients: Vec<RawConn> = (0..CLIENTS).map(|_| server.connect()).collect();
    // Every client is registered (and idle) before the baseline.
    let connected = || server.cmd(&["CLIENT", "LIST"]).windows(3).filter(|w| w == b"id=").count();
    while connected() < CLIENTS + warm.len() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = server.rss_kib();
    for conn in &mut clients {
        conn.send(&get);
    }
    for conn in &mut clients {
        assert_eq!(conn.read_frame().unwrap(), b"$1\r\nv\r\n");
    }
    let grown = server.rss_kib().saturating_sub(before);
    assert!(grown < (CLIENTS as u64) * 5, "RSS grew by {grown} KiB when {CLIENTS} idle clients sent one GET each");
}

/// The same 1M-element header against Redis: it waits for the elements, as StayKV does.
#[test]
fn million_element_header_waits_like_redis() {
    let input = b"*1048576\r\n$4\r\nPING\r\n$3\r\nfoo\r\n";
    let mut servers = vec![Server::staykv()];
    servers.extend(Server::redis());
    for server in &mut servers {
        let mut conn = server.connect();
        conn.send(input);
        let got = conn.drain(0, QUIET);
        assert_eq!((got.bytes.as_slice(), got.closed), (&b""[..], false), "{:?}", server.kind());
        drop(conn);
        assert_alive(server, "a 1M-element header");
    }
}

/// The frames a connection receives, as text, up to and including `last`.
fn frames_until(conn: &mut RawConn, last: &str) -> Vec<String> {
    let mut frames = Vec::new();
    loop {
        let frame = String::from_utf8_lossy(&conn.read_frame().unwrap()).replace("\r\n", " ");
        let done = frame.contains(last);
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

/// Connection state as Redis 7.0 keeps it: CLIENT REPLY SKIP under OFF changes nothing and two
/// SKIPs in a row skip the next command too; RESET keeps CLIENT NO-EVICT; a MONITOR client
/// shows flag `O` and is not closed by `timeout`; HELLO's NOAUTH text is 7.0's.
fn connection_state(server: &Server) -> Vec<String> {
    let mut seen = Vec::new();
    let send = |conn: &mut RawConn, commands: &[&[&str]]| {
        conn.send(&commands.iter().flat_map(|c| encode_str(c)).collect::<Vec<u8>>());
    };
    let mut off = server.connect();
    let after_off: &[&[&str]] = &[
        &["CLIENT", "REPLY", "OFF"],
        &["CLIENT", "REPLY", "SKIP"],
        &["PING"],
        &["PING", "a"],
        &["CLIENT", "REPLY", "ON"],
        &["PING", "done"],
    ];
    send(&mut off, after_off);
    seen.push(format!("OFF, SKIP: {:?}", frames_until(&mut off, "done")));
    let mut skip = server.connect();
    send(
        &mut skip,
        &[
            &["CLIENT", "REPLY", "SKIP"],
            &["CLIENT", "REPLY", "SKIP"],
            &["PING", "1"],
            &["PING", "2"],
            &["PING", "done"],
        ],
    );
    seen.push(format!("SKIP, SKIP: {:?}", frames_until(&mut skip, "done")));
    let mut reset = server.connect();
    reset.cmd(&["CLIENT", "NO-EVICT", "on"]);
    reset.cmd(&["RESET"]);
    let info = String::from_utf8_lossy(&reset.cmd(&["CLIENT", "INFO"])).into_owned();
    seen.push(format!("after RESET: {:?}", info.split(' ').find(|f| f.starts_with("flags="))));
    let mut admin = server.connect();
    admin.cmd(&["CONFIG", "SET", "timeout", "1"]);
    let mut monitor = server.connect();
    monitor.cmd(&["MONITOR"]);
    let list = String::from_utf8_lossy(&admin.cmd(&["CLIENT", "LIST"])).into_owned();
    let line = list.lines().find(|l| l.contains("cmd=monitor")).unwrap_or_default().to_string();
    seen.push(format!("MONITOR client: {:?}", line.split(' ').find(|f| f.starts_with("flags="))));
    std::thread::sleep(Duration::from_millis(2_500));
    // The idle admin connection has been closed by `timeout`, as in Redis.
    let mut admin = server.connect();
    admin.cmd(&["SET", "after", "idle"]);
    // The first line is the SET's: CLIENT LIST and CONFIG SET, administrative, are not shown.
    let fed = monitor.read_frame().map(|line| String::from_utf8_lossy(&line).to_lowercase());
    seen.push(format!(
        "MONITOR idle past timeout, then fed: {:?}",
        fed.ok().map(|l| l.contains("\"set\" \"after\" \"idle\""))
    ));
    admin.cmd(&["CONFIG", "SET", "timeout", "0"]);
    admin.cmd(&["CONFIG", "SET", "requirepass", "pw"]);
    let mut hello = server.connect();
    seen.push(format!("HELLO 3 unauthenticated: {}", String::from_utf8_lossy(&hello.cmd(&["HELLO", "3"])).trim_end()));
    admin.cmd(&["CONFIG", "SET", "requirepass", ""]);
    seen
}

#[test]
fn connection_state_is_kept_as_in_redis() {
    same_as_redis(
        connection_state,
        &[
            r#"OFF, SKIP: ["+OK ", "$4 done "]"#,
            r#"SKIP, SKIP: ["$1 2 ", "$4 done "]"#,
            r#"after RESET: Some("flags=e")"#,
            r#"MONITOR client: Some("flags=O")"#,
            "MONITOR idle past timeout, then fed: Some(true)",
            "otherwise the HELLO AUTH <user> <pass> option",
        ],
    );
}

/// What a client with its replies off or skipped gets for a protocol error: nothing, as
/// Redis adds no reply for it then either. (Redis then leaves the connection open with its
/// input ignored; StayKV closes it, as after any protocol error, so only bytes are compared.)
fn protocol_errors_under_client_reply(server: &Server) -> Vec<String> {
    let preludes: [&[u8]; 4] =
        [b"CLIENT REPLY OFF\r\n", b"CLIENT REPLY SKIP\r\n", b"CLIENT REPLY SKIP\r\nPING\r\n", b"PING\r\n"];
    preludes
        .iter()
        .map(|prelude| {
            let mut conn = server.connect();
            conn.send_lenient(&[*prelude, b"*1\r\n$x\r\n"].concat());
            let got = conn.drain(0, QUIET);
            format!("{} -> {}", show(prelude), show(&got.bytes))
        })
        .collect()
}

#[test]
fn protocol_errors_are_silent_under_client_reply_off_like_redis() {
    same_as_redis(
        protocol_errors_under_client_reply,
        &[
            r#""CLIENT REPLY OFF\r\n" -> """#,
            r#""CLIENT REPLY SKIP\r\nPING\r\n" -> "-ERR Protocol error: invalid bulk length\r\n""#,
        ],
    );
}
