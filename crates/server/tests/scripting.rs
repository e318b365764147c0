//! Lua scripting against Debian's redis-server 7.0, byte for byte: EVAL and the
//! Lua↔RESP conversions in both protocols, error texts, `pcall`, KEYS/ARGV, the sandbox,
//! `cjson`/`bit`/`struct`/`cmsgpack`, `redis.setresp(3)`, EVALSHA and SCRIPT
//! LOAD/EXISTS/FLUSH, FUNCTION LOAD/FCALL/LIST/DELETE/STATS/DUMP/RESTORE, every bullmq script compiling the
//! same way, and BUSY / SCRIPT KILL on a script running past the 5 s threshold.
//!
//! Both servers are fresh, so `math.random` (Redis's rand48, never reseeded) gives both the
//! same sequence. Known, deliberate differences are left out of the cases: DEBUG (not a
//! StayKV command), and the order of several libraries or functions in FUNCTION LIST (Redis lists them in hash order,
//! which changes from one process to the next; StayKV sorts them by name).
//!
//! Run: cargo test -p staykv --test scripting -- --nocapture
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::{frame_text, RawConn, Server};

/// Send every case on one connection to each server; describe each reply that differs.
fn compare(cases: &[&[&str]], redis: &mut RawConn, staykv: &mut RawConn) -> Vec<String> {
    let mut mismatches = Vec::new();
    for case in cases {
        let args: Vec<&[u8]> = case.iter().map(|a| a.as_bytes()).collect();
        let expected = redis.cmd_bytes(&args);
        let got = staykv.cmd_bytes(&args);
        if expected != got {
            mismatches.push(format!(
                "{case:?}\n    redis:  {:?}\n    staykv: {:?}",
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    mismatches
}

fn report(what: &str, mismatches: &[String]) {
    assert!(
        mismatches.is_empty(),
        "{what}: {} replies differ from redis-server:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

fn servers() -> Option<(Server, Server)> {
    let redis = Server::redis()?;
    Some((redis, Server::staykv_with(&["--fsync", "no"])))
}

#[test]
fn eval_replies_match_redis() {
    let Some((redis, staykv)) = servers() else { return };
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    let mut mismatches = compare(EVAL_CASES, &mut r, &mut s);
    mismatches.extend(compare(CONVERSION_CASES, &mut r, &mut s));
    report("RESP2", &mismatches);
}

#[test]
fn resp3_conversions_match_redis() {
    let Some((redis, staykv)) = servers() else { return };
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    r.cmd(&["HELLO", "3"]);
    s.cmd(&["HELLO", "3"]);
    report("RESP3", &compare(CONVERSION_CASES, &mut r, &mut s));
}

#[test]
fn functions_match_redis() {
    let Some((redis, staykv)) = servers() else { return };
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    let mut mismatches = compare(FUNCTION_CASES, &mut r, &mut s);
    // RESP3 shapes of FUNCTION LIST and STATS.
    r.cmd(&["HELLO", "3"]);
    s.cmd(&["HELLO", "3"]);
    mismatches.extend(compare(
        &[
            &["FUNCTION", "FLUSH"],
            &["FUNCTION", "LOAD", "#!lua name=one\nredis.register_function{function_name='f1', callback=function(k, a) return {map={a=1}} end, flags={'no-writes', 'allow-stale'}, description='d'}"],
            &["FUNCTION", "LIST", "WITHCODE"],
            &["FUNCTION", "STATS"],
            &["FCALL_RO", "f1", "0"],
        ],
        &mut r,
        &mut s,
    ));
    report("FUNCTION", &mismatches);
}

/// `redis.call`, `pcall` and `acl_check_cmd` take as many arguments as Redis (7,999 through
/// `unpack`, strings or numbers), and refuse a `nil` or a table among many with its error.
/// StayKV's calls past about 7,990 string arguments failed with an uncatchable
/// "C stack overflow" (mlua ran out of references) and printed a panic.
#[test]
fn calls_with_thousands_of_arguments_match_redis() {
    let Some((redis, staykv)) = servers() else { return };
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    let unpacked = |count: usize, element: &str, call: &str| {
        format!("local a = {{}} for i = 1, {count} do a[i] = {element} end return {call}")
    };
    let scripts = [
        unpacked(7999, "'x' .. i", "redis.call('rpush', 'strings', unpack(a))"),
        unpacked(7999, "i + 0.5", "redis.call('rpush', 'numbers', unpack(a))"),
        unpacked(7997, "'y'", "{pcall(redis.call, 'rpush', 'strings', unpack(a))}"),
        unpacked(7997, "'y'", "redis.pcall('sadd', 'set', unpack(a))"),
        unpacked(7998, "'k' .. i", "redis.acl_check_cmd('del', unpack(a))"),
        unpacked(64, "'z'", "redis.call('rpush', 'edge', unpack(a))"),
        unpacked(65, "'z'", "redis.call('rpush', 'edge', unpack(a))"),
        unpacked(100, "'z'", "redis.pcall('rpush', 'bad', unpack(a, 1, 50), nil, unpack(a, 51))"),
        unpacked(100, "{}", "redis.pcall('rpush', 'bad', unpack(a))"),
        unpacked(100, "'z'", "redis.call('rpush', 'bad', unpack(a, 1, 50), {}, unpack(a, 51))"),
        "return redis.pcall()".to_string(),
        "return redis.call('lrange', 'strings', 7990, 8010)".to_string(),
        "return redis.call('lrange', 'numbers', -3, -1)".to_string(),
    ];
    let cases: Vec<[&str; 3]> = scripts.iter().map(|script| ["EVAL", script.as_str(), "0"]).collect();
    let cases: Vec<&[&str]> = cases.iter().map(|case| case.as_slice()).collect();
    report("many arguments", &compare(&cases, &mut r, &mut s));
}

/// The payload of a bulk-string reply.
fn bulk_body(reply: &[u8]) -> Vec<u8> {
    let start = reply.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    assert!(reply.starts_with(b"$") && reply.len() >= start + 2, "not a bulk string: {reply:?}");
    reply[start..reply.len() - 2].to_vec()
}

/// A FUNCTION DUMP payload of `body` (opcodes and RDB strings), checksummed as Redis does.
fn checksummed(body: &[u8]) -> Vec<u8> {
    let mut payload = body.to_vec();
    payload.extend_from_slice(&10u16.to_le_bytes());
    let crc = staykv_rdb::crc64(0, &payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

/// A FUNCTION DUMP payload holding `libraries`' sources, uncompressed.
fn functions_payload(libraries: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    for code in libraries {
        let len = code.len();
        assert!(len < 1 << 14, "the 6- and 14-bit length forms only");
        body.push(245); // FUNCTION2
        body.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
        body.extend_from_slice(code.as_bytes());
    }
    checksummed(&body)
}

const LIB_A: &str = "#!lua name=liba\nredis.register_function('fa', function() return 'a' end)";
const LIB_B: &str = "#!lua name=libb\nredis.register_function{function_name='fb', callback=function(k) return k end, flags={'no-writes'}, description='b'}";

/// FUNCTION DUMP and RESTORE: each server's payload restores into the other with the same
/// libraries; the restore policies, name collisions (function names ignore case) and bad
/// payloads answer as Redis's; a restore survives a kill -9.
#[test]
fn function_dump_and_restore_match_redis() {
    let Some((redis, mut staykv)) = servers() else { return };
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    let dump_of = |c: &mut RawConn, libraries: &[&str]| {
        c.cmd(&["FUNCTION", "FLUSH"]);
        libraries.iter().for_each(|code| assert!(c.cmd(&["FUNCTION", "LOAD", code]).starts_with(b"$4")));
        c.cmd(&["FUNCTION", "DUMP"])
    };
    let mut mismatches = Vec::new();
    for libraries in [&[][..], &[LIB_A]] {
        let (expected, got) = (dump_of(&mut r, libraries), dump_of(&mut s, libraries));
        if expected != got {
            mismatches.push(format!("DUMP of {libraries:?}: redis {expected:?} staykv {got:?}"));
        }
    }
    // With two libraries Redis writes them in its hash order: each restores the other's.
    let from_redis = bulk_body(&dump_of(&mut r, &[LIB_A, LIB_B]));
    let from_staykv = bulk_body(&dump_of(&mut s, &[LIB_A, LIB_B]));
    let one = bulk_body(&dump_of(&mut r, &[LIB_A]));
    r.cmd(&["SET", "k", "v"]);
    let key_payload = bulk_body(&r.cmd(&["DUMP", "k"]));
    let twice = functions_payload(&[LIB_A, LIB_A]);
    let clash =
        functions_payload(&[LIB_A, "#!lua name=libc\nredis.register_function('FA', function() return 'c' end)"]);
    let broken = functions_payload(&["#!lua name=libd\nsyntax error"]);
    let cut_short = checksummed(&[245, 50, b'#', b'!']);
    let other = "#!lua name=other\nredis.register_function('FA', function() return 'other' end)";
    let replies = [(&mut r, &from_staykv), (&mut s, &from_redis)].map(|(conn, cross)| {
        conn.cmd(&["FLUSHALL"]);
        let cases: Vec<Vec<&[u8]>> = vec![
            vec![b"FUNCTION", b"FLUSH"],
            vec![b"FUNCTION", b"RESTORE", cross],
            vec![b"FCALL", b"fa", b"0"],
            vec![b"FCALL", b"FB", b"1", b"k"],
            vec![b"FUNCTION", b"LIST", b"WITHCODE", b"LIBRARYNAME", b"liba"],
            vec![b"FUNCTION", b"LIST", b"WITHCODE", b"LIBRARYNAME", b"libb"],
            vec![b"FUNCTION", b"RESTORE", &one],
            vec![b"FUNCTION", b"RESTORE", &one, b"append"],
            vec![b"FUNCTION", b"RESTORE", &one, b"REPLACE"],
            vec![b"FUNCTION", b"FLUSH"],
            vec![b"FUNCTION", b"LOAD", other.as_bytes()],
            vec![b"FUNCTION", b"RESTORE", &one],
            vec![b"FUNCTION", b"RESTORE", &one, b"REPLACE"],
            vec![b"FCALL", b"fa", b"0"],
            vec![b"FUNCTION", b"RESTORE", &one, b"FLUSH"],
            vec![b"FCALL", b"fa", b"0"],
            vec![b"FUNCTION", b"LIST"],
            vec![b"FUNCTION", b"RESTORE", &one, b"bogus"],
            vec![b"FUNCTION", b"RESTORE", &one, b"FLUSH", b"extra"],
            vec![b"FUNCTION", b"RESTORE", b"garbage"],
            vec![b"FUNCTION", b"RESTORE", &key_payload],
            vec![b"FUNCTION", b"RESTORE", &twice],
            vec![b"FUNCTION", b"RESTORE", &clash],
            vec![b"FUNCTION", b"RESTORE", &broken],
            vec![b"FUNCTION", b"RESTORE", &cut_short],
            vec![b"FUNCTION", b"DUMP"],
            vec![b"FCALL", b"fa", b"0"],
        ];
        cases.iter().map(|args| String::from_utf8_lossy(&conn.cmd_bytes(args)).into_owned()).collect::<Vec<_>>()
    });
    let [expected, got] = &replies;
    for (i, (expected, got)) in expected.iter().zip(got).enumerate().filter(|(_, (e, g))| e != g) {
        mismatches.push(format!("RESTORE case {i}: redis {expected:?} staykv {got:?}"));
    }
    report("FUNCTION DUMP/RESTORE", &mismatches);
    let before = s.cmd(&["FUNCTION", "LIST", "WITHCODE"]);
    drop(s);
    staykv.kill();
    staykv.restart();
    let mut s = staykv.connect();
    assert_eq!(s.cmd(&["FUNCTION", "LIST", "WITHCODE"]), before, "the restored library after kill -9");
    assert_eq!(s.cmd(&["FCALL", "fa", "0"]), b"$1\r\na\r\n");
}

/// Every Lua script bullmq ships compiles (or fails to) exactly as in Redis. Skipped when the
/// npm packages of tests/libs are not installed.
#[test]
fn bullmq_scripts_load_as_in_redis() {
    let dir = common::workspace_root().join("tests/libs/node_modules/bullmq/dist/cjs/commands");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED: {} not installed (npm ci in tests/libs)", dir.display());
        return;
    };
    let Some((redis, staykv)) = servers() else { return };
    let (mut r, mut s) = (redis.connect(), staykv.connect());
    let mut scripts: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .collect();
    scripts.sort();
    let mut mismatches = Vec::new();
    for path in &scripts {
        let body = std::fs::read(path).unwrap();
        let args: [&[u8]; 3] = [b"SCRIPT", b"LOAD", &body];
        let (expected, got) = (r.cmd_bytes(&args), s.cmd_bytes(&args));
        if expected != got {
            mismatches.push(format!(
                "{}: redis {:?} staykv {:?}",
                path.display(),
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(!scripts.is_empty());
    report("bullmq scripts", &mismatches);
}

/// The replies a scenario collected, each with what it answers.
type NamedReplies = Vec<(&'static str, Vec<u8>)>;

/// Runs `scenario` against both servers at once (each has a script to wait for) and reports
/// the named replies that differ; the scenario returns `(name, reply)` pairs.
fn compare_scenario(what: &str, redis: &Server, staykv: &Server, scenario: fn(&Server) -> NamedReplies) {
    let [expected, got] = std::thread::scope(|scope| {
        let redis = scope.spawn(|| scenario(redis));
        let staykv = scope.spawn(|| scenario(staykv));
        [redis.join().unwrap(), staykv.join().unwrap()]
    });
    assert_eq!(expected.len(), got.len(), "{what}: the scenario took another path");
    let mismatches: Vec<String> = expected
        .iter()
        .zip(&got)
        .filter(|((_, r), (_, s))| r != s)
        .map(|((name, r), (_, s))| {
            format!("{name}: redis {:?} staykv {:?}", String::from_utf8_lossy(r), String::from_utf8_lossy(s))
        })
        .collect();
    report(what, &mismatches);
}

/// A read-only script looping forever: past 5 s other clients get BUSY, SCRIPT KILL stops it
/// and the script's caller gets Redis's error. The script holds every shard and one async
/// worker all along; the server must keep serving the other connections regardless.
#[test]
fn busy_script_is_killed_like_redis() {
    let Some((redis, staykv)) = servers() else { return };
    compare_scenario("busy script", &redis, &staykv, |server| {
        let mut looping = server.connect();
        looping.stream().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        looping.send(&common::encode_str(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"]));
        std::thread::sleep(Duration::from_millis(5_700));
        let mut other = server.connect();
        let busy = other.cmd(&["GET", "k"]);
        let function_kill = other.cmd(&["FUNCTION", "KILL"]);
        let kill = other.cmd(&["SCRIPT", "KILL"]);
        let killed = looping.read_frame().unwrap();
        let after = other.cmd(&["SCRIPT", "KILL"]);
        vec![
            ("GET while busy", busy),
            ("FUNCTION KILL", function_kill),
            ("SCRIPT KILL", kill),
            ("the script's reply", killed),
            ("SCRIPT KILL after", after),
        ]
    });
}

/// A loop inside a coroutine is killed like any other: the kill hook was set on the main Lua
/// thread only, so such a script ran on forever and no client was answered again (PING,
/// SCRIPT KILL and SHUTDOWN NOSAVE all waited).
#[test]
fn a_script_looping_in_a_coroutine_is_killed_like_redis() {
    let Some((redis, staykv)) = servers() else { return };
    compare_scenario("coroutine loop", &redis, &staykv, |server| {
        let mut looping = server.connect();
        looping.stream().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut other = server.connect();
        let limit = other.cmd(&["CONFIG", "SET", "lua-time-limit", "200"]);
        let script = "local co = coroutine.wrap(function() while true do end end) co()";
        looping.send(&common::encode_str(&["EVAL", script, "0"]));
        std::thread::sleep(Duration::from_millis(700));
        let busy = other.cmd(&["PING"]);
        let kill = other.cmd(&["SCRIPT", "KILL"]);
        let killed = looping.read_frame().unwrap();
        let after = other.cmd(&["PING"]);
        vec![
            ("CONFIG SET lua-time-limit", limit),
            ("PING while busy", busy),
            ("SCRIPT KILL", kill),
            ("the script's reply", killed),
            ("PING after", after),
        ]
    });
}

/// INFO memory's scripting fields, as Redis 7.0 reports them: the counts, and the Lua heaps
/// and caches adding up (their sizes are each allocator's own).
fn scripting_memory_info(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    conn.cmd(&["EVAL", "return 1", "0"]);
    let library = "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)\n\
                   redis.register_function('f2', function() return 2 end)";
    conn.cmd(&["FUNCTION", "LOAD", library]);
    let info = frame_text(&conn.cmd(&["INFO", "memory"]));
    let field = |name: &str| -> i64 {
        let line = info.lines().find_map(|line| line.strip_prefix(&format!("{name}:")));
        line.and_then(|value| value.trim().parse().ok()).unwrap_or(-1)
    };
    let mut seen: Vec<String> = ["number_of_cached_scripts", "number_of_functions", "number_of_libraries"]
        .iter()
        .map(|name| format!("{name}:{}", field(name)))
        .collect();
    seen.push(format!("heaps: {}", field("used_memory_vm_eval") > 0 && field("used_memory_vm_functions") > 0));
    seen.push(format!("lua is vm_eval: {}", field("used_memory_lua") == field("used_memory_vm_eval")));
    let vm_total = field("used_memory_vm_eval") + field("used_memory_vm_functions");
    seen.push(format!("vm total adds up: {}", field("used_memory_vm_total") == vm_total));
    let scripts = field("used_memory_scripts_eval") + field("used_memory_functions");
    seen.push(format!("scripts add up: {}", field("used_memory_scripts") == scripts && scripts > 0));
    seen
}

#[test]
fn scripting_memory_is_reported_as_in_redis() {
    common::same_as_redis(scripting_memory_info, &["number_of_functions:2", "vm total adds up: true"]);
}

/// Calls a script makes that are refused before they run (out of memory, wrong arity, not
/// allowed from scripts, an unknown subcommand) count in the command's `rejected_calls`, as
/// Redis's `scriptCall` counts them, and once in the error stats.
fn refused_script_calls(server: &Server) -> Vec<String> {
    let mut conn = server.connect();
    conn.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    conn.cmd(&["CONFIG", "RESETSTAT"]);
    for script in [
        "return redis.call('set', 'x', 'y')",
        "return redis.pcall('set', 'x', 'y')",
        "return redis.pcall('set', 'x')",
        "return redis.pcall('config', 'get', 'x')",
        "return redis.pcall('object', 'nosuch')",
        "return redis.pcall('nosuch')",
    ] {
        conn.cmd(&["EVAL", script, "1", "x"]);
    }
    let stats = frame_text(&conn.cmd(&["INFO", "commandstats"]));
    let errors = frame_text(&conn.cmd(&["INFO", "errorstats"]));
    conn.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    // Times vary; the order of Redis's lines is its hash table's.
    let mut lines: Vec<String> = stats
        .lines()
        .chain(errors.lines())
        .filter(|line| line.starts_with("cmdstat_") || line.starts_with("errorstat_"))
        .filter(|line| !line.starts_with("cmdstat_config|resetstat") && !line.starts_with("cmdstat_config|set"))
        .map(|line| line.split(',').filter(|field| !field.starts_with("usec")).collect::<Vec<_>>().join(","))
        .collect();
    lines.sort();
    lines
}

#[test]
fn refused_script_calls_count_as_rejected_as_in_redis() {
    common::same_as_redis(
        refused_script_calls,
        &["cmdstat_set:calls=0,rejected_calls=3,failed_calls=0", "cmdstat_config|get:calls=0,rejected_calls=1"],
    );
}

/// A killed script cannot run on by catching the kill: `while 1 do pcall(f) end` (or
/// xpcall) ends at SCRIPT KILL or FUNCTION KILL with Redis's error and location, as Redis
/// raises the kill again on every line. StayKV's hook fired mostly inside `f`, where pcall
/// caught it, and such a script ran on (Redis's scripting.tcl waited for it in vain). Per
/// run: the kill's reply, the script's, a PING after.
#[test]
fn killed_scripts_do_not_outlive_the_kill_inside_pcall() {
    let Some((redis, staykv)) = servers() else { return };
    compare_scenario("kill through pcall", &redis, &staykv, |server| {
        let mut other = server.connect();
        other.cmd(&["CONFIG", "SET", "lua-time-limit", "10"]);
        let library = "#!lua name=loops\nredis.register_function('loop', function() \
                       local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end end)";
        other.cmd(&["FUNCTION", "LOAD", "REPLACE", library]);
        let runs: [(&str, &[&str], &str); 3] = [
            (
                "pcall",
                &["EVAL", "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end", "0"],
                "SCRIPT",
            ),
            (
                "xpcall",
                &[
                    "EVAL",
                    "local f = function() while 1 do end end while 1 do xpcall(f, function(e) return e end) end",
                    "0",
                ],
                "SCRIPT",
            ),
            ("function", &["FCALL", "loop", "0"], "FUNCTION"),
        ];
        let mut replies = Vec::new();
        for (name, run, kill) in runs {
            let mut looping = server.connect();
            looping.stream().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            looping.send(&common::encode_str(run));
            let busy = common::wait_until(Duration::from_secs(10), || other.cmd_text(&["PING"]).starts_with("BUSY"));
            assert!(busy, "{name}: never busy");
            replies.push((name, other.cmd(&[kill, "KILL"])));
            replies.push((name, looping.read_frame().unwrap()));
            replies.push((name, other.cmd(&["PING"])));
        }
        replies
    });
}

/// Over `maxmemory`, commands let through past a script's busy threshold (MULTI, HELLO…)
/// answer, and SCRIPT KILL still reaches the script. Each such command evicted first, waiting
/// for the shards the script holds: two of them stopped both runtime workers, and nothing
/// was answered again, SCRIPT KILL included. Redis does not evict while a script is busy.
#[test]
fn a_busy_script_over_maxmemory_can_be_killed_as_in_redis() {
    let Some((redis, staykv)) = servers() else { return };
    compare_scenario("busy over maxmemory", &redis, &staykv, |server| {
        let mut other = server.connect();
        other.cmd(&["SET", "k", "v"]);
        other.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
        other.cmd(&["CONFIG", "SET", "lua-time-limit", "10"]);
        other.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
        let mut looping = server.connect();
        looping.stream().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        looping.send(&common::encode_str(&["EVAL", "while true do end", "0"]));
        let busy = common::wait_until(Duration::from_secs(10), || other.cmd_text(&["PING"]).starts_with("BUSY"));
        assert!(busy, "never busy");
        let mut replies = Vec::new();
        let mut let_through: Vec<_> = (0..4).map(|_| server.connect()).collect();
        for (i, conn) in let_through.iter_mut().enumerate() {
            conn.stream().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let command: &[&str] = if i % 2 == 0 { &["MULTI"] } else { &["HELLO", "2"] };
            let reply = conn.cmd(command);
            replies.push(("let through", reply.get(..3).unwrap_or_default().to_vec()));
        }
        let mut killer = server.connect();
        killer.stream().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        replies.push(("SCRIPT KILL", killer.cmd(&["SCRIPT", "KILL"])));
        replies.push(("the script", looping.read_frame().unwrap()));
        replies.push(("PING", killer.cmd(&["PING"])));
        killer.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
        replies
    });
}

/// A function looping forever, as Redis serves it past the busy threshold: FUNCTION STATS
/// names it (its `duration_ms` left out of the comparison), other commands but WATCH get
/// BUSY, SCRIPT KILL is the wrong kill, FUNCTION KILL stops it. The function holds every
/// shard and the scripting state all along, which FUNCTION STATS and WATCH must not wait for.
/// A transaction's EXEC refused with BUSY discards the transaction (EXECABORT).
#[test]
fn busy_function_is_reported_and_killed_like_redis() {
    let Some((redis, staykv)) = servers() else { return };
    compare_scenario("busy function", &redis, &staykv, |server| {
        let mut other = server.connect();
        let spin = "#!lua name=spinning\nredis.register_function('spin', function() while true do end end)";
        let mut replies = vec![
            ("CONFIG SET lua-time-limit", other.cmd(&["CONFIG", "SET", "lua-time-limit", "200"])),
            ("FUNCTION LOAD", other.cmd(&["FUNCTION", "LOAD", "REPLACE", spin])),
        ];
        // A transaction begun before: a command queued while busy is refused, and EXEC is
        // refused and discards the transaction.
        let mut transaction = server.connect();
        for args in [&["MULTI"][..], &["INCR", "x"]] {
            replies.push((args[0], transaction.cmd(args)));
        }
        let mut looping = server.connect();
        looping.send(&common::encode_str(&["FCALL", "spin", "0"]));
        // Answered once the function has run past the threshold (Redis reads no client
        // before); until it starts, with no running script.
        let running_by = std::time::Instant::now() + Duration::from_secs(10);
        let stats = loop {
            let stats = other.cmd(&["FUNCTION", "STATS"]);
            if stats.windows(4).any(|w| w == b"spin") || std::time::Instant::now() > running_by {
                break stats;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        replies.push(("FUNCTION STATS while busy", without_duration(stats)));
        for args in [&["INCR", "x"][..], &["EXEC"]] {
            replies.push((args[0], transaction.cmd(args)));
        }
        for args in [&["GET", "k"][..], &["WATCH", "k"], &["SCRIPT", "KILL"], &["FUNCTION", "KILL"]] {
            replies.push((args[0], other.cmd(args)));
        }
        replies.push(("the function's reply", looping.read_frame().unwrap_or_default()));
        replies.push(("FUNCTION STATS after", other.cmd(&["FUNCTION", "STATS"])));
        replies.push(("PING after the refused EXEC", transaction.cmd(&["PING"])));
        // The watch taken during the busy function holds: nothing changed k since.
        for args in [&["MULTI"][..], &["SET", "k", "1"], &["EXEC"]] {
            replies.push((args[0], other.cmd(args)));
        }
        replies.push(("FUNCTION FLUSH", other.cmd(&["FUNCTION", "FLUSH"])));
        replies
    });
}

/// A FUNCTION STATS reply with the running function's `duration_ms` value blanked.
fn without_duration(reply: Vec<u8>) -> Vec<u8> {
    let field = b"duration_ms\r\n:";
    let Some(at) = reply.windows(field.len()).position(|w| w == field) else { return reply };
    let value = at + field.len();
    let end = reply[value..].iter().position(|&b| b == b'\r').map_or(reply.len(), |n| value + n);
    [&reply[..value], b"N", &reply[end..]].concat()
}

/// A script that wrote and then loops cannot be killed: past the busy threshold (lowered
/// with `CONFIG SET lua-time-limit`) other clients get BUSY except for the `allow_busy`
/// commands, `SCRIPT KILL` answers UNKILLABLE, FUNCTION STATS the script's BUSY, plain
/// `SHUTDOWN` is refused once its arguments are checked, and
/// `SHUTDOWN NOSAVE` ends the server (which then exits although the script never ended).
#[test]
fn unkillable_script_ends_only_with_shutdown_nosave() {
    let Some((mut redis, mut staykv)) = servers() else { return };
    compare_scenario("unkillable script", &redis, &staykv, |server| {
        let mut other = server.connect();
        let mut replies = vec![
            ("CONFIG SET lua-time-limit", other.cmd(&["CONFIG", "SET", "lua-time-limit", "200"])),
            ("CONFIG GET busy-reply-threshold", other.cmd(&["CONFIG", "GET", "busy-reply-threshold"])),
        ];
        let mut looping = server.connect();
        looping.send(&common::encode_str(&["EVAL", "redis.call('set', 'w', 1) while true do end", "0"]));
        std::thread::sleep(Duration::from_millis(700));
        for args in [
            &["GET", "w"][..],
            &["SCRIPT", "KILL"],
            &["FUNCTION", "KILL"],
            &["FUNCTION", "STATS"],
            &["SHUTDOWN"],
            &["SHUTDOWN", "SAVE"],
            &["SHUTDOWN", "FOO"],
            &["SHUTDOWN", "ABORT"],
            &["MULTI"],
            &["DISCARD"],
            &["PING"],
        ] {
            replies.push((args[0], other.cmd(args)));
        }
        other.send(&common::encode_str(&["SHUTDOWN", "NOSAVE"]));
        replies.push(("SHUTDOWN NOSAVE", other.read_frame().unwrap_or_default()));
        replies
    });
    for server in [&mut redis, &mut staykv] {
        assert!(
            common::wait_until(Duration::from_secs(10), || !server.is_running()),
            "{:?} still runs 10 s after SHUTDOWN NOSAVE",
            server.kind()
        );
    }
}

const EVAL_CASES: &[&[&str]] = &[
    &["eval", "redis.call('set','x',0.1) return redis.call('get','x')", "0"],
    &["eval", "redis.call('set','x',3) return redis.call('get','x')", "0"],
    &["eval", "redis.call('set','x',1e20) return redis.call('get','x')", "0"],
    &["eval", "return redis.call()", "0"],
    &["eval", "return redis.pcall()", "0"],
    &["eval", "return redis.call('set', {}, 1)", "0"],
    &["eval", "return redis.pcall('set', {}, 1)", "0"],
    &["eval", "return redis.call('eval', 'return 1', 0)", "0"],
    &["eval", "return redis.pcall('eval', 'return 1', 0)", "0"],
    &["eval_ro", "return redis.call('set', 'a', 1)", "0"],
    &["eval_ro", "return redis.pcall('set', 'a', 1)", "0"],
    &["eval", "#!lua flags=no-writes\nreturn redis.call('set', 'a', 1)", "0"],
    &["eval", "return {1,2,3,'ciao',{1,2}}", "0"],
    &["eval", "return KEYS", "2", "a", "b", "c"],
    &["eval", "return ARGV", "2", "a", "b", "c"],
    &["eval", "return 1", "3", "a"],
    &["eval", "return 1", "-1", "a"],
    &["eval", "return 1", "x", "a"],
    &["evalsha", "ffffffffffffffffffffffffffffffffffffffff", "0"],
    &["evalsha", "fff", "0"],
    &["script", "load", "return 1"],
    &["script", "exists", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "ffff"],
    &["script", "kill"],
    &["script", "flush", "async"],
    &["script", "flush", "bad"],
    &["script", "help"],
    &["script", "foo"],
    &["eval", "return redis.sha1hex('')", "0"],
    &["eval", "return redis.sha1hex()", "0"],
    &["eval", "return redis.sha1hex(1)", "0"],
    &["eval", "return redis.error_reply()", "0"],
    &["eval", "return redis.status_reply()", "0"],
    &["eval", "return redis.error_reply(1)", "0"],
    &["eval", "return redis.setresp(4)", "0"],
    &["eval", "return redis.setresp()", "0"],
    &["eval", "return redis.log(redis.LOG_WARNING, 'hi', 'there')", "0"],
    &["eval", "return redis.log(redis.LOG_WARNING)", "0"],
    &["eval", "return redis.log(99, 'x')", "0"],
    &["eval", "return redis.set_repl(redis.REPL_ALL)", "0"],
    &["eval", "return redis.set_repl(99)", "0"],
    &["eval", "return redis.replicate_commands()", "0"],
    &["eval", "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}", "0"],
    &["eval", "return redis.breakpoint()", "0"],
    &["eval", "return redis.debug('x')", "0"],
    &["eval", "return redis.acl_check_cmd('set','a','b')", "0"],
    &["eval", "return redis.acl_check_cmd('nosuch')", "0"],
    &["eval", "return redis.acl_check_cmd('config','nosuch')", "0"],
    &["eval", "return redis.acl_check_cmd('config','get')", "0"],
    &["eval", "return math.random(100)", "0"],
    &["eval", "return {math.random(100), math.random(100), math.random()*1000000}", "0"],
    &["eval", "math.randomseed(7) return {math.random(100), math.random(100), math.random()*1000000}", "0"],
    &["eval", "return tostring(1/3)", "0"],
    &["eval", "return _VERSION", "0"],
    &["eval", "return string.format('%d %s %5.2f', 3, 'x', 1.5)", "0"],
    &["eval", "return loadstring('return 5')()", "0"],
    &["eval", "return load('return 5')()", "0"],
    &["eval", "local co = coroutine.create(function() coroutine.yield(1) end) return {coroutine.resume(co)}", "0"],
    &["eval", "return tostring(collectgarbage('count') > 0)", "0"],
    &["eval", "rawset(_G, 'x', 1) return x", "0"],
    &["eval", "setmetatable(_G, nil) x = 1 return x", "0"],
    &["eval", "local g = getmetatable(_G) g.__index = {}", "0"],
    &["eval", "local g = getmetatable(_G) return {type(g), type(g.__index), tostring(g.__newindex)}", "0"],
    &["eval", "redis.call = nil return 1", "0"],
    &["eval", "cjson.encode = nil return 1", "0"],
    &["eval", "string.foo = 1 return 1", "0"],
    &["eval", "local t = {} t.x = 1 return t.x", "0"],
    &["eval", "KEYS[1] = 'x' return KEYS[1]", "0"],
    &["eval", "return", "0"],
    &["eval", "return nil", "0"],
    &["eval", "return 'a', 'b'", "0"],
    &["eval", "syntax error here", "0"],
    &["eval", "return 1 +", "0"],
    &["eval", "redis.call('select', 1) redis.call('set', 'dbx', '1') return redis.call('get', 'dbx')", "0"],
    &["get", "dbx"],
    &["select", "1"],
    &["get", "dbx"],
    &["select", "0"],
    &["eval", "#!lua\nreturn 1", "0"],
    &["eval", "#!lua flags=no-writes,allow-oom\nreturn 1", "0"],
    &["eval", "#!lua flags=\nreturn 1", "0"],
    &["eval", "#!lua flags=bad\nreturn 1", "0"],
    &["eval", "#!lua foo=bar\nreturn 1", "0"],
    &["eval", "#!js\nreturn 1", "0"],
    &["eval", "#!\nreturn 1", "0"],
    &["eval", "#!lua", "0"],
    &["eval", "#!lua name=x\nreturn 1", "0"],
    &["eval", "#!lua  flags=no-writes\nreturn 1", "0"],
    // A CRLF line end, a tab, quotes: split as Redis's sdssplitargs splits.
    &["eval", "#!lua\r\nreturn 1", "0"],
    &["eval", "#!lua flags=no-writes\r\nreturn redis.call('set', 'a', 1)", "0"],
    &["eval", "#!lua\tflags=no-writes\nreturn 1", "0"],
    &["eval", "#!lua flags=\"no-writes\"\nreturn 1", "0"],
    &["eval", "#!lua \"flags=no-writes,allow-oom\"\nreturn 1", "0"],
    &["eval", "#!lua flags=\"no-writes\nreturn 1", "0"],
    &["eval", "#!lua flags=no-writes,,allow-oom\nreturn 1", "0"],
    &["eval", "#!lua flags=,\nreturn 1", "0"],
    &["script", "load", "#!lua flags=no-writes\r\nreturn 1"],
    &["eval_ro", "#!lua\nreturn 1", "0"],
    &["eval_ro", "#!lua flags=no-writes\nreturn redis.call('get', 'a')", "0"],
    &["eval_ro", "return redis.call('publish', 'ch', 'm')", "0"],
    &["eval", "#!lua flags=no-writes\nreturn redis.call('publish', 'ch', 'm')", "0"],
    &["eval", "return loadstring(string.dump(function() return 1 end))", "0"],
    &["eval", "local f, e = loadstring(string.dump(function() return 1 end)) return {tostring(f), tostring(e)}", "0"],
    &["eval", "local f, e = loadstring('x x') return {tostring(f), tostring(e)}", "0"],
    &["eval", "local f, e = loadstring('return 1', 'chunk') return {f()}", "0"],
    &["eval", "return getmetatable('').__index == string", "0"],
    &["eval", "return redis.call('blpop', 'nolist', 0)", "0"],
    &["eval", "return redis.call('multi')", "0"],
    &["eval", "return redis.call('subscribe', 'x')", "0"],
    &["eval", "return redis.call('script', 'load', 'return 1')", "0"],
    &["eval", "return redis.call('function', 'list')", "0"],
    &["eval", "return redis.call('config', 'get', 'maxmemory')", "0"],
    &["eval", "return redis.call('watch', 'x')", "0"],
    &["eval", "return redis.call('client', 'id') > 0", "0"],
    &["eval", "return redis.call('time')[1] > '0'", "0"],
    &["eval", "return redis.call('shutdown')", "0"],
    &["eval", "return redis.call('save')", "0"],
    &["eval", "return redis.call('info', 'stats') ~= nil", "0"],
    &["eval", "return redis.call('dbsize')", "0"],
    &["eval", "return redis.call('object', 'encoding', 'x')", "0"],
    &["eval", "return redis.call('SET', 'x', 'y')", "0"],
    &["eval", "return redis.call('spop', 'nosuch')", "0"],
    &["eval", "return redis.call('exec')", "0"],
    &["eval", "return redis.call('ping')", "0"],
    &["eval", "return redis.call('hello')", "0"],
    &["eval", "return redis.call('auth', 'x')", "0"],
    &["eval", "return redis.call('select', 'x')", "0"],
    &["eval", "return redis.call('swapdb', 0, 1)", "0"],
    &["eval", "return redis.call('flushall')", "0"],
    &["eval", "return cjson.decode('bad')", "0"],
    &["eval", "return cjson.decode('{')", "0"],
    &["eval", "return cjson.decode('[1,2')", "0"],
    &["eval", "return cjson.decode('{\"a\":}')", "0"],
    &["eval", "return cjson.decode('\"abc')", "0"],
    &["eval", "return cjson.decode('')", "0"],
    &["eval", "return cjson.decode('1 2')", "0"],
    &["eval", "return cjson.decode()", "0"],
    &["eval", "return cjson.decode(1)", "0"],
    &["eval", "return cjson.decode({})", "0"],
    &["eval", "local ok, e = pcall(cjson.decode, 'bad') return {tostring(ok), e}", "0"],
    &["eval", "return cjson.encode(function() end)", "0"],
    &["eval", "return cjson.encode({[true]=1})", "0"],
    &["eval", "return cjson.encode({1,2,nil,4})", "0"],
    &["eval", "return cjson.encode({[1]=1,[2]=2,[4]=4})", "0"],
    &["eval", "return cjson.encode({[1]=1,[20]=2})", "0"],
    &["eval", "return cjson.encode({})", "0"],
    &["eval", "return cjson.encode({a={}, b={1,2,{c='d'}}})", "0"],
    &["eval", "return cjson.encode({1.5, 0.1, 1/3, 1e100, -0, 100000000000000, 1e15, 123456789012})", "0"],
    &["eval", "return cjson.encode(1/0)", "0"],
    &["eval", "return cjson.encode(0/0)", "0"],
    &["eval", "return cjson.encode('a/b\"c\\\\d\\n\\r\\t\\1\\127\\200')", "0"],
    &["eval", "return cjson.encode(cjson.null)", "0"],
    &["eval", "return cjson.encode({cjson.null, true, false})", "0"],
    &["eval", "return cjson.encode({[1]='a', x='b'})", "0"],
    &["eval", "return cjson.encode({[1.5]='a'})", "0"],
    &["eval", "return cjson.encode({[-1]='a'})", "0"],
    &["eval", "return cjson.encode({[0]='a'})", "0"],
    &["eval", "local t = {} t[1] = t return cjson.encode(t)", "0"],
    &["eval", "local v = cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":1.5e3,\"d\":\"\\\\u00e9\\\\n\",\"e\":true}') return {v.a[1], v.a[3].b == cjson.null, v.c, v.d, tostring(v.e)}", "0"],
    &["eval", "return cjson.decode('[1,2,3]')", "0"],
    &["eval", "return cjson.decode('123456789012345678901234567890')", "0"],
    &["eval", "return tostring(cjson.decode('1e400'))", "0"],
    &["eval", "return tostring(cjson.decode('-0'))", "0"],
    &["eval", "return cjson.decode('\"\\\\ud83d\\\\ude00\"')", "0"],
    &["eval", "return cjson.decode('\"\\\\ud83d\"')", "0"],
    &["eval", "return cjson.decode('[1,]')", "0"],
    &["eval", "return cjson.decode('{\"a\":1,}')", "0"],
    &["eval", "return cjson.decode(' [ 1 , 2 ] ')", "0"],
    &["eval", "return cjson.decode('0x10')", "0"],
    &["eval", "return cjson.decode('nan')", "0"],
    &["eval", "return tostring(cjson.decode('Infinity'))", "0"],
    &["eval", "return cjson.decode('01')", "0"],
    &["eval", "return cjson.decode('\"\\x01\"')", "0"],
    &["eval", "return cjson.encode({a=1,b=2,c=3,d=4,e=5})", "0"],
    &["eval", "return cjson.encode(cjson.decode('{\"z\":1,\"y\":2,\"x\":3,\"w\":{\"q\":[1,{\"r\":2}]}}'))", "0"],
    &["eval", "return cjson.encode({['a b']='c', [5]=1})", "0"],
    &["eval", "return cjson.encode(string.rep('x', 3))", "0"],
    &["eval", "return cjson.encode(3)", "0"],
    &["eval", "return cjson.encode(-3.25)", "0"],
    &["eval", "return cjson.encode(true)", "0"],
    &["eval", "return cjson.encode(nil)", "0"],
    &["eval", "return cjson.encode()", "0"],
    &["eval", "return cjson.encode(1, 2)", "0"],
    &["eval", "return cjson.encode({{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}})", "0"],
    &["eval", "return cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))", "0"],
    &["eval", "return #cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000))", "0"],
    &["eval", "return {cjson._VERSION, cjson._NAME, cmsgpack._VERSION}", "0"],
    &["eval", "local s = cmsgpack.pack({1,2,3}, 'a', 1.5, -1, true, nil, {a=1}, 300, 70000, 5000000000, -200, -40000, -3000000000, -6000000000, string.rep('x',40), string.rep('y', 300), {}) local t = {} for i=1,#s do t[i] = string.format('%02x', string.byte(s,i)) end return table.concat(t)", "0"],
    &["eval", "local a = {} for i = 1, 7000 do a[i] = tostring(i) end return redis.call('sadd', 'many', unpack(a))", "0"],
    &["eval", "return cmsgpack.pack()", "0"],
    &["eval", "local t = {} for i = 1, 100000 do t[tostring(i)] = i end local s = cmsgpack.pack(t) return {#s, cmsgpack.unpack(s)['77777']}", "0"],
    &["eval", "return {cmsgpack.unpack(cmsgpack.pack(1,'a',{1,2,{x='y'}}, -5, 1.25, 0.1))}", "0"],
    &["eval", "return cmsgpack.unpack('\\xc1')", "0"],
    &["eval", "return cmsgpack.unpack('\\x92\\x01')", "0"],
    &["eval", "return cmsgpack.unpack('')", "0"],
    &["eval", "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3))}", "0"],
    &["eval", "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 1)}", "0"],
    &["eval", "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 2)}", "0"],
    &["eval", "return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2)}", "0"],
    &["eval", "return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2, 1)}", "0"],
    &["eval", "return cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 9)", "0"],
    &["eval", "return cmsgpack.unpack_one(cmsgpack.pack(1,2,3), -1)", "0"],
    &["eval", "return cmsgpack.unpack(5)", "0"],
    &["eval", "return cmsgpack.unpack({})", "0"],
    &["eval", "local s = cmsgpack.pack(0/0, 1/0, 3.0, 2^53, 2^64, -2^63, 0.5) local t = {} for i=1,#s do t[i] = string.format('%02x', string.byte(s,i)) end return table.concat(t)", "0"],
    &["eval", "local t = {} t[1] = t local s = cmsgpack.pack(t) return #s", "0"],
    &["eval", "local s = cmsgpack.pack({[1]=1, [3]=3}) local t = {} for i=1,#s do t[i] = string.format('%02x', string.byte(s,i)) end return table.concat(t)", "0"],
    &["eval", "local s = cmsgpack.pack({a=1,b=2,c=3}) local t = {} for i=1,#s do t[i] = string.format('%02x', string.byte(s,i)) end return table.concat(t)", "0"],
    &["eval", "return cmsgpack.unpack('\\xc4\\x01a')", "0"],
    &["eval", "return cmsgpack.unpack('\\x81\\xc0\\x01')", "0"],
    &["eval", "local t = cmsgpack.unpack('\\x93\\x01\\xc0\\x03') return {#t, t[3]}", "0"],
    &["eval", "return {struct.pack('>i16', 258):byte(1,-1)}", "0"],
    &["eval", "return {struct.pack('<i16', -1):byte(1,-1)}", "0"],
    &["eval", "return {struct.unpack('>I2 <i3 b B h H l L T', struct.pack('>I2 <i3 b B h H l L T', 258, -5, -1, 255, -300, 60000, -7, 123456789012, 42))}", "0"],
    &["eval", "return {struct.unpack('!4 b i', struct.pack('!4 b i', 1, 2))}", "0"],
    &["eval", "return struct.size('!4 b i d')", "0"],
    &["eval", "return struct.size('s')", "0"],
    &["eval", "return struct.size('c0')", "0"],
    &["eval", "return struct.pack('z')", "0"],
    &["eval", "return struct.pack('i33', 1)", "0"],
    &["eval", "return struct.pack('!3', 1)", "0"],
    &["eval", "return struct.pack('c5', 'ab')", "0"],
    &["eval", "return struct.pack('i', 'x')", "0"],
    &["eval", "return struct.unpack('i', 'ab')", "0"],
    &["eval", "return {struct.unpack('b c0', struct.pack('b c0', 3, 'abc'))}", "0"],
    &["eval", "return struct.unpack('c0', 'abc')", "0"],
    &["eval", "return struct.unpack('s', 'abc')", "0"],
    &["eval", "return {struct.unpack('s s', struct.pack('s s', 'ab', 'cd'))}", "0"],
    &["eval", "return {struct.unpack('i', struct.pack('i', 5), 0)}", "0"],
    &["eval", "return {struct.unpack('i', struct.pack('xi', 5), 2)}", "0"],
    &["eval", "return {struct.unpack('d f', struct.pack('d f', 1.5, 0.25))}", "0"],
    &["eval", "return {struct.pack('>d', 1.5):byte(1, -1)}", "0"],
    &["eval", "return {bit.tobit(0xffffffff), bit.bnot(0), bit.band(0xff, 0x0f, 0x3), bit.bor(1,2,4), bit.bxor(7, 2), bit.lshift(1, 33), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 8), bit.ror(0x12345678, 8), bit.bswap(0x12345678), bit.tohex(255), bit.tohex(-1, -4), bit.tohex(0x1234, 2), bit.tobit(2^40 + 5), bit.tobit(1.5), bit.tobit('12')}", "0"],
    &["eval", "return bit.band(1, 'x')", "0"],
    &["eval", "return bit.tobit()", "0"],
    &["eval", "return {math.random(), math.random(10, 20)}", "0"],
    &["eval", "return math.random(0)", "0"],
    &["eval", "return math.random(5, 1)", "0"],
    &["eval", "return math.random(1, 2, 3)", "0"],
    &["eval", "return math.random('x')", "0"],
    &["eval", "return tostring(cmsgpack.unpack(string.char(0xcf,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff)))", "0"],
    &["eval", "return tostring(cmsgpack.unpack(string.char(0xcf,0x80,0,0,0,0,0,0,1)))", "0"],
    &["eval", "return tostring(cmsgpack.unpack(string.char(0xd3,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xfe)))", "0"],
    &["eval", "return tostring(cmsgpack.unpack(string.char(0xce,0xff,0xff,0xff,0xff)))", "0"],
    &["eval", "return tostring(cmsgpack.unpack(string.char(0xd2,0xff,0xff,0xff,0xfe)))", "0"],
    &["eval", "return cmsgpack.unpack(string.char(0xc1))", "0"],
    &["eval", "return cmsgpack.unpack(string.char(0xc4, 1, 65))", "0"],
    &["eval", "return cmsgpack.unpack(string.char(0xd4, 1, 65))", "0"],
    &["eval", "return cmsgpack.unpack(string.char(0x92, 1))", "0"],
    &["eval", "return cmsgpack.unpack(string.char(0x81, 0xc0, 1))", "0"],
    &["eval", "return cmsgpack.unpack(string.char(0x81, 0xcb, 0x7f,0xf8,0,0,0,0,0,0, 1))", "0"],
    &["eval", "local t = cmsgpack.unpack(string.char(0x93, 1, 0xc0, 3)) return {#t, t[3]}", "0"],
    &["eval", "return {cmsgpack.unpack(string.char(1, 2, 0xc0, 3))}", "0"],
    &["eval", "return select('#', cmsgpack.unpack(string.char(1, 2, 0xc0, 3)))", "0"],
    &["eval", "return tostring(cmsgpack.unpack(string.char(0xca, 0x3f, 0xc0, 0, 0)))", "0"],
    &["eval", "return cmsgpack.unpack(string.char(0xd9, 3, 97, 98, 99))", "0"],
    &["eval", "return cmsgpack.unpack(string.char(0xd9, 5, 97, 98, 99))", "0"],
    &["eval", "return {cmsgpack.unpack_one(string.char(1), 1)}", "0"],
    &["eval", "return {cmsgpack.unpack_limit(string.char(1,2), 0)}", "0"],
    &["eval", "return {cmsgpack.unpack_limit(string.char(1,2), 0, 1)}", "0"],
    &["eval", "return {cmsgpack.unpack_limit(string.char(1,2), -1)}", "0"],
    &["eval", "return {cmsgpack.unpack_one(string.char(1,2), 'x')}", "0"],
    // A container's HELP is no `noscript` subcommand: scripts may call it (StayKV refused
    // every subcommand of CLIENT, CONFIG, FUNCTION, SCRIPT and MODULE by name).
    &["eval", "local r = redis.pcall('client', 'help') return r.err or 'served'", "0"],
    &["eval", "local r = redis.pcall('config', 'help') return r.err or 'served'", "0"],
    &["eval", "local r = redis.pcall('function', 'help') return r.err or 'served'", "0"],
    &["eval", "local r = redis.pcall('script', 'help') return r.err or 'served'", "0"],
    &["eval", "local r = redis.pcall('module', 'help') return r.err or 'served'", "0"],
    &["eval", "local r = redis.pcall('debug', 'help') return r.err or 'served'", "0"],
    // CLUSTER RESET is the one CLUSTER subcommand Redis flags `noscript`.
    &["eval", "return redis.pcall('cluster', 'reset')", "0"],
    &["eval", "return redis.pcall('cluster', 'info')", "0"],
];

const CONVERSION_CASES: &[&[&str]] = &[
    &["eval", "local ok, e = pcall(redis.call, 'nosuch') return {tostring(ok), type(e), type(e)=='table' and e.err or e}", "0"],
    &["eval", "local ok, e = pcall(function() error({err='X y'}) end) return {tostring(ok), type(e), type(e)=='table' and e.err or e}", "0"],
    &["eval", "local ok, e = pcall(function() error({foo='X y'}) end) return {tostring(ok), type(e)}", "0"],
    &["eval", "local ok, e = pcall(function() error('plain') end) return {tostring(ok), type(e), e}", "0"],
    &["eval", "local ok, e = xpcall(function() error({err='X y'}) end, function(e) return e end) return {tostring(ok), type(e)}", "0"],
    &["eval", "return pcall(function() return 1, 2 end)", "0"],
    &["eval", "local ok, e = coroutine.resume(coroutine.create(function() return redis.call('nosuch') end)) return {tostring(ok), type(e), e.err}", "0"],
    &["eval", "local ok, e = coroutine.resume(coroutine.create(function() error('plain') end)) return {tostring(ok), e}", "0"],
    &["eval", "local ok, e = coroutine.resume(coroutine.create(function() return redis.call('set', 'co', 'v') end)) return {tostring(ok), e}", "0"],
    &["eval", "local ok, e = pcall(coroutine.wrap(function() return redis.call('nosuch') end)) return {tostring(ok), e}", "0"],
    &["eval", "return {pcall(function() return 1, 2 end)}", "0"],
    &["eval", "local e = redis.pcall('nosuch') return {type(e), e.err, tostring(e.source), tostring(e.line), tostring(e.ignore_error_stats_update)}", "0"],
    &["eval", "local e = redis.error_reply('FOO bar') return {type(e), e.err}", "0"],
    &["eval", "local e = redis.error_reply('FOO') return {type(e), e.err}", "0"],
    &["eval", "local e = redis.error_reply('-FOO') return {type(e), e.err}", "0"],
    &["eval", "local e = redis.error_reply('') return {type(e), e.err}", "0"],
    &["eval", "return redis.error_reply('FOO bar\\r\\n')", "0"],
    &["eval", "error(redis.error_reply('MY err'))", "0"],
    &["eval", "return redis.call('get', 'nokey')", "0"],
    &["eval", "redis.call('hset', 'h1', 'a', '1') return redis.call('hgetall', 'h1')", "0"],
    &["eval", "redis.setresp(3) return redis.call('hgetall', 'h1')", "0"],
    &["eval", "redis.setresp(3) local t = redis.call('hgetall', 'h1') return {type(t), type(t.map), t.map.a}", "0"],
    &["eval", "redis.setresp(3) return redis.call('get', 'nokey')", "0"],
    &["eval", "redis.setresp(3) return {redis.call('get', 'nokey') == nil}", "0"],
    &["eval", "return {double=3.5}", "0"],
    &["eval", "return {double='3.5'}", "0"],
    &["eval", "return {map={a=1}}", "0"],
    &["eval", "return {set={a=true}}", "0"],
    &["eval", "return {verbatim_string={format='txt', string='hello'}}", "0"],
    &["eval", "return {verbatim_string={format='mkd', string='# hi'}}", "0"],
    &["eval", "return {verbatim_string={format='ab', string='x'}}", "0"],
    &["eval", "return {verbatim_string={format='abcd', string='x'}}", "0"],
    &["eval", "return {verbatim_string={format='', string='x'}}", "0"],
    &["eval", "return {verbatim_string={format='a\\0b', string='x'}}", "0"],
    &["eval", "return {verbatim_string={format=1, string='x'}}", "0"],
    &["eval", "return {big_number='1234567999999999999999999999999999999'}", "0"],
    &["eval", "return {big_number='123\r\n123'}", "0"],
    &["eval", "return {big_number=123}", "0"],
    &["eval", "redis.setresp(3) local t = redis.call('client', 'info') return {type(t), type(t.verbatim_string), t.verbatim_string.format}", "0"],
    &["eval", "return true", "0"],
    &["eval", "return false", "0"],
    &["eval", "redis.setresp(3) return true", "0"],
    &["eval", "redis.setresp(3) return false", "0"],
    &["eval", "redis.setresp(3) return {false, true}", "0"],
    &["eval", "return {false, true}", "0"],
    &["eval", "return {1, false, 3}", "0"],
    &["eval", "redis.setresp(3) return redis.call('sismember', 'nos', 'a')", "0"],
    &["eval", "redis.setresp(3) return {type(redis.call('sismember', 'nos', 'a'))}", "0"],
    &["eval", "return redis.call('incrbyfloat', 'fl', '1.5')", "0"],
    &["eval", "redis.setresp(3) return redis.call('zadd', 'zz', '1.5', 'a')", "0"],
    &["eval", "redis.setresp(3) return redis.call('zscore', 'zz', 'a')", "0"],
    &["eval", "redis.setresp(3) local t = redis.call('zscore', 'zz', 'a') return {type(t), tostring(t.double)}", "0"],
    &["eval", "return redis.call('zscore', 'zz', 'a')", "0"],
    &["eval", "redis.setresp(3) return redis.call('zrange', 'zz', 0, -1, 'withscores')", "0"],
    &["eval", "return redis.call('zrange', 'zz', 0, -1, 'withscores')", "0"],
    &["eval", "redis.setresp(3) return redis.call('smembers', 'nosuchset')", "0"],
    &["eval", "redis.setresp(3) return redis.call('info', 'keyspace')", "0"],
    &["eval", "redis.setresp(3) local t = redis.call('info', 'keyspace') return type(t)", "0"],
];

const FUNCTION_CASES: &[&[&str]] = &[
    &["function", "flush"],
    &["function", "load", "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return {keys, args} end)"],
    &["function", "load", "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return 1 end)"],
    &["function", "load", "replace", "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return {keys, args} end)\nredis.register_function{function_name='ro', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='a ro fn'}"],
    &["fcall", "myfunc", "1", "k", "a", "b"],
    &["fcall", "MyFunc", "1", "k"],
    &["fcall", "ro", "1", "k"],
    &["fcall_ro", "myfunc", "0"],
    &["fcall_ro", "ro", "1", "k"],
    &["fcall", "nosuch", "0"],
    &["fcall", "myfunc", "5"],
    // (FUNCTION LIST of this two-function library is left out: Redis lists a library's
    // functions in hash order, which changes from one process to the next.)
    &["function", "list", "libraryname", "my"],
    &["function", "list", "libraryname", "zz"],
    &["function", "list", "bad"],
    &["function", "stats"],
    &["function", "kill"],
    &["function", "delete", "nosuch"],
    &["function", "load", "redis.register_function('f', function() return 1 end)"],
    &["function", "load", "#!lua\nredis.register_function('f', function() return 1 end)"],
    &["function", "load", "#!lua name=x foo=bar\nredis.register_function('f', function() return 1 end)"],
    &["function", "load", "#!js name=x\nredis.register_function('f', function() return 1 end)"],
    &["function", "load", "#!lua name=x\nreturn 1"],
    &["function", "load", "#!lua name=x\nredis.call('ping')"],
    &["function", "load", "#!lua name=x\nredis.register_function('f', function() return 1 end) redis.register_function('f', function() return 1 end)"],
    &["function", "load", "#!lua name=x\nredis.register_function('myfunc', function() return 1 end)"],
    &["function", "load", "#!lua name=x\nredis.register_function('bad name!', function() return 1 end)"],
    &["function", "load", "#!lua name=bad!name\nredis.register_function('f', function() return 1 end)"],
    &["function", "load", "#!lua name=x\nredis.register_function('f')"],
    &["function", "load", "#!lua name=x\nredis.register_function('f', 1)"],
    &["function", "load", "#!lua name=x\nredis.register_function{function_name='f', callback=function() return 1 end, flags={'bad-flag'}}"],
    &["function", "load", "#!lua name=x\nredis.register_function{function_name='f', callback=function() return 1 end, foo=1}"],
    &["function", "load", "#!lua name=x\nsyntax error"],
    &["function", "load", "#!lua name=x\nlocal a = b"],
    &["function", "load", "#!lua name=x\nx = 1"],
    &["function", "load", "#!lua name=x\nredis.register_function('f', function() return x end)"],
    &["fcall", "f", "0"],
    &["function", "load", "#!lua name=y\nlocal t={} for k,v in pairs(redis) do table.insert(t, k) end table.sort(t) redis.register_function('g', function() return t end)"],
    &["fcall", "g", "0"],
    &["function", "load", "#!lua name=z\nredis.register_function('h', function() local t={} for k,v in pairs(redis) do table.insert(t, k) end table.sort(t) return t end)"],
    &["fcall", "h", "0"],
    &["function", "load", "#!lua name=w\nredis.register_function('e', function() return redis.call('nosuch') end) redis.register_function('e2', function() error('boom') end)"],
    &["fcall", "e", "0"],
    &["fcall", "e2", "0"],
    &["function", "delete", "w"],
    &["function", "help"],
    &["function", "stats"],
    &["function", "flush"],
    &["function", "load", "#!lua name=p1\nlocal t = {}\nfor _, n in ipairs({'pairs','ipairs','string','math','table','cjson','bit','struct','cmsgpack','tostring','type','error','pcall','redis','KEYS','ARGV','_G','next','select','unpack','tonumber','setmetatable','getmetatable','loadstring','coroutine','xpcall','assert','rawget','rawset','rawequal','collectgarbage','gcinfo','getfenv','_VERSION','load'}) do t[#t+1] = n end\nredis.register_function('f', function() return t end)"],
    &["function", "load", "#!lua name=p2\nlocal ok = {}\nredis.register_function('f2', function() return 1 end)\nerror(tostring(ipairs))"],
    &["function", "load", "#!lua name=p3\nerror(type(_G))"],
    &["function", "load", "#!lua name=p3\nerror(type(string))"],
    &["function", "load", "#!lua name=p3\nerror(type(math))"],
    &["function", "load", "#!lua name=p3\nerror(type(cjson))"],
    &["function", "load", "#!lua name=p3\nerror(type(tostring))"],
    &["function", "load", "#!lua name=p3\nerror(type(redis.log))"],
    &["function", "load", "#!lua name=p3\nerror(type(redis.setresp))"],
    &["function", "load", "#!lua name=p3\nerror(type(redis.pcall))"],
    &["function", "load", "#!lua name=p3\nerror(type(redis.sha1hex))"],
    &["function", "load", "#!lua name=p3\nerror(type(redis.error_reply))"],
    &["function", "load", "#!lua name=p3\nerror(type(redis.REDIS_VERSION))"],
    &["function", "load", "#!lua name=p3\nerror(type(redis.register_function))"],
    &["function", "load", "#!lua name=p3\nerror(type(KEYS))"],
    &["function", "load", "#!lua name=p3\nerror(type(pcall))"],
    &["function", "load", "#!lua name=p3\nerror(type(setmetatable))"],
    &["function", "load", "#!lua name=p3\nlocal t = {} for k, v in next, redis do t[#t+1]=k end table.sort(t) error(table.concat(t, ','))"],
    &["function", "load", "#!lua name=p3\nlocal t = {} for k, v in next, _G do t[#t+1]=k end table.sort(t) error(table.concat(t, ','))"],
    &["function", "load", "#!lua name=p4\nredis.register_function('k', function() local t = {} for k, v in next, _G do t[#t+1]=k end table.sort(t) return t end)"],
    &["fcall", "k", "0"],
    &["function", "load", "#!lua name=p5\nredis.register_function('k5', function() return redis.register_function end)"],
    &["fcall", "k5", "0"],
    &["function", "list", "withcode", "libraryname", "p4"],
    &["function", "list", "libraryname"],
    &["function", "list", "withcode", "withcode"],
];
