//! Snapshots at the binary level: SAVE/BGSAVE/BGREWRITEAOF, the snapshot is an RDB file that
//! `redis-check-rdb` accepts and redis-server 7.0 loads with the same content, `redis-cli
//! --rdb` (REPLCONF rdb-only + SYNC) backs up a running server and `--functions-rdb` its
//! function libraries, compaction
//! under a write load keeps the data, a compaction in partitions over an old snapshot keeps
//! every key, function libraries outlive compactions and restarts, automatic compaction by log growth, and the committed
//! format fixture (a data directory written by version 1 of the formats) still loads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod persist_common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{have_tool, wait_until, RawConn, Server};
use persist_common::{
    assert_libraries, assert_same, call_str, copy_dir, dump_all, info_field, load_library, populate, staykv_ok,
    KeyDump, Val,
};

const DBS: usize = 8;

/// `len` pseudo-random letters: a value the snapshot's LZF cannot shrink.
fn incompressible(len: usize) -> String {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b'a' + (seed % 26) as u8)
        })
        .collect()
}

fn snapshot_path(server: &Server, conn: &mut RawConn) -> PathBuf {
    let file = info_field(conn, "staykv_snapshot_file");
    assert!(file.starts_with("snap-"), "no snapshot installed: {file:?}");
    server.dir().join(file)
}

fn redis_check_rdb(path: &Path) {
    let out = Command::new("redis-check-rdb").arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("RDB looks OK"), "redis-check-rdb {}:\n{text}", path.display());
}

/// Starts redis-server 7.0 on a copy of `rdb` named dump.rdb; None when not installed.
fn redis_loading(rdb: &Path, scratch: &Path) -> Option<Server> {
    let dir = scratch.join(format!("redis-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(rdb, dir.join("dump.rdb")).unwrap();
    let dir = dir.to_string_lossy().to_string();
    Server::redis_with(&["--dir", &dir, "--dbfilename", "dump.rdb"])
}

/// redis-server 7.0 (when installed) loads `rdb` with exactly the keys of `ours` and the
/// function libraries `libraries` (loaded by [`load_library`]).
fn assert_redis_loads_the_same(
    rdb: &Path,
    scratch: &Path,
    ours: &BTreeMap<(usize, Vec<u8>), KeyDump>,
    libraries: &[&str],
    what: &str,
) {
    let Some(redis) = redis_loading(rdb, scratch) else { return };
    let mut conn = redis.connect();
    let theirs = dump_all(&mut conn, DBS);
    assert_same("staykv", ours, &format!("redis-server loading {what}"), &theirs, 1000);
    assert_libraries(&mut conn, libraries, &format!("redis-server loading {what}"));
}

/// Populates every type and a function library, snapshots it, then changes some of it so
/// that the rest is only in the log (a key added, one deleted, one added in another database,
/// a second library: [`SNAPSHOT_AND_LOG_LIBRARIES`]).
fn populate_snapshot_and_log(conn: &mut RawConn) {
    populate(conn, true);
    load_library(conn, "snapped");
    assert_eq!(call_str(conn, &["BGSAVE"]), Val::Simple("Background saving started".into()));
    assert!(wait_until(Duration::from_secs(30), || info_field(conn, "rdb_bgsave_in_progress") == "0"));
    call_str(conn, &["SET", "after-snapshot", "in the log"]);
    call_str(conn, &["DEL", "s:short"]);
    call_str(conn, &["SELECT", "3"]);
    call_str(conn, &["ZADD", "z:db3", "1", "one"]);
    call_str(conn, &["SELECT", "0"]);
    load_library(conn, "logged");
}

const SNAPSHOT_AND_LOG_LIBRARIES: &[&str] = &["snapped", "logged"];

#[test]
fn save_writes_an_rdb_that_redis_loads_with_the_same_content() {
    if !have_tool("redis-check-rdb", "checking StayKV's snapshot with redis-check-rdb") {
        return;
    }
    let server = Server::staykv();
    let mut conn = server.connect();
    assert!(matches!(call_str(&mut conn, &["LASTSAVE"]), Val::Int(_)));
    populate(&mut conn, true);
    load_library(&mut conn, "saved");
    assert_eq!(call_str(&mut conn, &["SAVE"]), Val::Simple("OK".into()));
    let snap = snapshot_path(&server, &mut conn);
    redis_check_rdb(&snap);
    assert_eq!(info_field(&mut conn, "rdb_last_bgsave_status"), "ok");
    assert_eq!(info_field(&mut conn, "rdb_changes_since_last_save"), "0");
    let ours = dump_all(&mut conn, DBS);
    assert_redis_loads_the_same(&snap, server.scratch(), &ours, &["saved"], "the snapshot");
    println!("SAVE: {} keys, same in redis-server 7.0 loading {}", ours.len(), snap.display());
}

#[test]
fn export_writes_an_rdb_that_redis_loads_with_the_same_content() {
    if !have_tool("redis-check-rdb", "checking the export with redis-check-rdb") {
        return;
    }
    let mut server = Server::staykv();
    let mut conn = server.connect();
    populate_snapshot_and_log(&mut conn);
    let ours = dump_all(&mut conn, DBS);
    drop(conn);
    assert!(server.terminate().success());
    let out = server.scratch().join("export.rdb");
    let text = staykv_ok(&["export", "--rdb", &out.to_string_lossy(), "--dir", &server.dir().to_string_lossy()]);
    assert!(text.contains(&format!("exported {} keys", ours.len())), "{text}");
    redis_check_rdb(&out);
    assert_redis_loads_the_same(&out, server.scratch(), &ours, SNAPSHOT_AND_LOG_LIBRARIES, "the export");
}

/// `redis-cli -p PORT --rdb PATH`: asserts it reports success and returns PATH.
fn redis_cli_rdb(server: &Server, name: &str) -> PathBuf {
    redis_cli_backup(server, "--rdb", name)
}

/// `redis-cli -p PORT <option> PATH` (`--rdb`, `--functions-rdb`): asserts it reports success
/// and returns PATH.
fn redis_cli_backup(server: &Server, option: &str, name: &str) -> PathBuf {
    let path = server.scratch().join(name);
    let out = Command::new("timeout")
        .args(["60", "redis-cli", "-p", &server.port().to_string(), option])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("Transfer finished with success"), "redis-cli {option}:\n{text}");
    path
}

/// The RDB file a SYNC sent on `conn`: the `$<length>` header, then that many bytes.
fn sync_payload(conn: &mut RawConn) -> Vec<u8> {
    let mut header = Vec::new();
    let mut byte = [0u8; 1];
    while !header.ends_with(b"\r\n") {
        conn.stream().read_exact(&mut byte).unwrap();
        header.push(byte[0]);
    }
    let len: u64 = String::from_utf8_lossy(&header[1..header.len() - 2]).parse().unwrap();
    let mut rdb = Vec::new();
    conn.stream().take(len).read_to_end(&mut rdb).unwrap();
    assert!(rdb.starts_with(b"REDIS0010"), "not an RDB file: {:?}", &rdb[..rdb.len().min(16)]);
    rdb
}

/// `redis-cli --functions-rdb` (REPLCONF rdb-filter-only functions, then SYNC) gets an RDB
/// of the function libraries without a key, which redis-check-rdb accepts and redis-server
/// 7.0 loads.
#[test]
fn redis_cli_functions_rdb_backs_up_the_libraries_only() {
    if !have_tool("redis-cli", "redis-cli --functions-rdb") || !have_tool("redis-check-rdb", "checking the backup") {
        return;
    }
    let server = Server::staykv();
    let mut conn = server.connect();
    populate(&mut conn, false);
    load_library(&mut conn, "backed");
    load_library(&mut conn, "up");
    let backup = redis_cli_backup(&server, "--functions-rdb", "functions.rdb");
    redis_check_rdb(&backup);
    assert_redis_loads_the_same(&backup, server.scratch(), &BTreeMap::new(), &["backed", "up"], "the functions backup");
    assert!(call_str(&mut conn, &["DBSIZE"]).int() > 0, "the keys stay");
    // An empty filter list: neither keys nor libraries.
    let mut reader = server.connect();
    assert_eq!(reader.cmd_text(&["REPLCONF", "rdb-only", "1", "rdb-filter-only", ""]), "OK");
    reader.send(b"SYNC\r\n");
    let nothing = server.scratch().join("nothing.rdb");
    std::fs::write(&nothing, sync_payload(&mut reader)).unwrap();
    redis_check_rdb(&nothing);
    assert_redis_loads_the_same(&nothing, server.scratch(), &BTreeMap::new(), &[], "an empty filter's RDB");
}

#[test]
fn redis_cli_rdb_backs_up_a_running_server_that_redis_loads() {
    if !have_tool("redis-cli", "redis-cli --rdb") || !have_tool("redis-check-rdb", "checking the backup") {
        return;
    }
    let server = Server::staykv();
    let mut conn = server.connect();
    // Nothing ever written: no snapshot exists, the backup is an empty dataset.
    let empty = redis_cli_rdb(&server, "empty.rdb");
    redis_check_rdb(&empty);
    assert_redis_loads_the_same(&empty, server.scratch(), &BTreeMap::new(), &[], "the backup of nothing");
    // Some of the data in the last snapshot, some only in the log: SYNC compacts first.
    populate_snapshot_and_log(&mut conn);
    let saved = info_field(&mut conn, "staykv_snapshot_file");
    let backup = redis_cli_rdb(&server, "backup.rdb");
    assert_ne!(info_field(&mut conn, "staykv_snapshot_file"), saved, "SYNC did not bring the snapshot up to date");
    redis_check_rdb(&backup);
    let ours = dump_all(&mut conn, DBS);
    assert!(ours.contains_key(&(0, b"after-snapshot".to_vec())));
    // The server goes on serving, and the job slot SYNC held is free again.
    assert_eq!(call_str(&mut conn, &["BGSAVE"]), Val::Simple("Background saving started".into()));
    assert!(wait_until(Duration::from_secs(30), || info_field(&mut conn, "rdb_bgsave_in_progress") == "0"));
    assert_redis_loads_the_same(
        &backup,
        server.scratch(),
        &ours,
        SNAPSHOT_AND_LOG_LIBRARIES,
        "the redis-cli --rdb backup",
    );
    println!("redis-cli --rdb: {} keys, same in redis-server 7.0 loading {}", ours.len(), backup.display());
}

/// While a SYNC client has not taken the whole snapshot, no compaction starts (one would cut
/// the file it replaces down under the reader; a BGREWRITEAOF is scheduled); once it has,
/// they run again.
#[test]
fn no_compaction_starts_while_a_sync_client_reads_the_snapshot() {
    let server = Server::staykv();
    let mut conn = server.connect();
    // 16 MiB of values that do not compress: more than the sockets' buffers hold.
    let value = incompressible(65_536);
    for i in 0..256 {
        conn.cmd(&["SET", &format!("big:{i}"), &format!("{i}{value}")]);
    }
    let mut reader = server.connect();
    assert_eq!(reader.cmd_text(&["REPLCONF", "rdb-only", "1"]), "OK");
    reader.send(b"SYNC\r\n");
    // The snapshot is built, then sent; the reader takes nothing yet.
    assert!(wait_until(Duration::from_secs(30), || info_field(&mut conn, "staykv_snapshot_file").starts_with("snap-")));
    std::thread::sleep(Duration::from_millis(300));
    // As Redis while its replication child runs: the rewrite waits for the slot.
    let sent = info_field(&mut conn, "staykv_snapshot_file");
    let scheduled = call_str(&mut conn, &["BGREWRITEAOF"]);
    assert_eq!(scheduled, Val::Simple("Background append only file rewriting scheduled".into()));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(info_field(&mut conn, "aof_rewrite_scheduled"), "1");
    assert_eq!(info_field(&mut conn, "staykv_snapshot_file"), sent);
    let rdb = sync_payload(&mut reader);
    assert!(rdb.len() > 8 << 20, "a snapshot of {} bytes", rdb.len());
    call_str(&mut conn, &["SET", "after", "the transfer"]);
    assert!(wait_until(Duration::from_secs(10), || {
        call_str(&mut conn, &["BGREWRITEAOF"]) == Val::Simple("Background append only file rewriting started".into())
    }));
}

/// REPLCONF's replies are Redis 7.0's; SYNC sends a snapshot only to a client that asked for
/// nothing else (`rdb-only`), since StayKV has no stream of writes for a replica.
#[test]
fn replconf_answers_like_redis_and_sync_needs_rdb_only() {
    let cases: &[&[&str]] = &[
        &["REPLCONF"],
        &["REPLCONF", "capa"],
        &["REPLCONF", "capa", "eof", "capa", "psync2"],
        &["REPLCONF", "rdb-only", "1"],
        &["REPLCONF", "rdb-only", "0"],
        &["REPLCONF", "rdb-only", "2"],
        &["REPLCONF", "rdb-only", "yes"],
        &["REPLCONF", "listening-port", "6380"],
        &["REPLCONF", "listening-port", "x"],
        &["REPLCONF", "ip-address", "10.0.0.1"],
        &["REPLCONF", "nonsense", "1"],
        &["REPLCONF", "capa", "eof", "nonsense", "1"],
        &["REPLCONF", "rdb-filter-only", "functions"],
        &["REPLCONF", "rdb-filter-only", ""],
        &["REPLCONF", "rdb-filter-only", "functions keys"],
        &["REPLCONF", "rdb-filter-only", "\"functions"],
    ];
    let server = Server::staykv();
    let mut conn = server.connect();
    let ours: Vec<String> = cases.iter().map(|args| conn.cmd_text(args)).collect();
    assert!(conn.cmd_text(&["SYNC"]).starts_with("ERR StayKV has no replication"));
    assert_eq!(conn.cmd_text(&["MULTI"]), "OK");
    assert_eq!(conn.cmd_text(&["SYNC"]), "ERR Command not allowed inside a transaction");
    let Some(redis) = Server::redis() else { return };
    let mut theirs = redis.connect();
    for (args, ours) in cases.iter().zip(&ours) {
        assert_eq!(ours, &theirs.cmd_text(args), "{args:?}");
    }
}

#[test]
fn snapshot_commands_and_info_fields() {
    let server = Server::staykv();
    let mut conn = server.connect();
    for field in [
        "loading",
        "rdb_bgsave_in_progress",
        "aof_rewrite_in_progress",
        "rdb_last_save_time",
        "rdb_changes_since_last_save",
        "rdb_last_bgsave_status",
        "aof_last_write_status",
        "aof_enabled",
    ] {
        info_field(&mut conn, field);
    }
    load_keys(&mut conn, 40);
    assert_eq!(info_field(&mut conn, "rdb_changes_since_last_save"), "100000");
    let first = call_str(&mut conn, &["BGSAVE"]);
    assert_eq!(first, Val::Simple("Background saving started".into()));
    wait_for_no_job(&mut conn);
    assert_eq!(info_field(&mut conn, "rdb_last_bgsave_status"), "ok");
    assert_eq!(info_field(&mut conn, "aof_last_bgrewrite_status"), "ok");
    let lastsave = call_str(&mut conn, &["LASTSAVE"]).int();
    assert_eq!(info_field(&mut conn, "rdb_last_save_time"), lastsave.to_string());
    // CONFIG RESETSTAT starts the counts again, as Redis's resetServerStats does.
    assert_ne!(info_field(&mut conn, "rdb_saves"), "0");
    call_str(&mut conn, &["CONFIG", "RESETSTAT"]);
    assert_eq!((info_field(&mut conn, "rdb_saves"), info_field(&mut conn, "aof_rewrites")), ("0".into(), "0".into()));
    assert!(matches!(call_str(&mut conn, &["MULTI"]), Val::Simple(_)));
    assert_eq!(call_str(&mut conn, &["SAVE"]), Val::Error("ERR Command not allowed inside a transaction".into()));
    drop(conn);

    // Every field of Redis's section (with its AOF on) but those StayKV has no figure for.
    const ABSENT: [&str; 6] = [
        // A compaction's keys are counted per pass, not against a total known at its start.
        "current_save_keys_processed",
        "current_save_keys_total",
        // A start loads every key of the snapshot, expired ones too, and expires them after.
        "rdb_last_load_keys_expired",
        "rdb_last_load_keys_loaded",
        // The log writer's fsyncs are not counted apart.
        "aof_pending_bio_fsync",
        "aof_delayed_fsync",
    ];
    let Some(redis) = Server::redis_with(&["--appendonly", "yes"]) else { return };
    let names = |conn: &mut RawConn| -> Vec<String> {
        let text = call_str(conn, &["INFO", "persistence"]).text();
        text.lines().filter_map(|l| l.split_once(':')).map(|(name, _)| name.to_string()).collect()
    };
    let ours = names(&mut server.connect());
    let missing: Vec<String> = names(&mut redis.connect())
        .into_iter()
        .filter(|n| !ours.contains(n) && !ABSENT.contains(&n.as_str()))
        .collect();
    assert!(missing.is_empty(), "INFO persistence lacks {missing:?}");
}

/// `chunks` × 2,500 keys: at 40, enough for a compaction to take a moment.
fn load_keys(conn: &mut RawConn, chunks: usize) {
    let value = "v".repeat(100);
    for chunk in 0..chunks {
        let cmds: Vec<Vec<Vec<u8>>> = (0..2500)
            .map(|i| vec![b"SET".to_vec(), format!("k{chunk}:{i}").into_bytes(), value.clone().into_bytes()])
            .collect();
        persist_common::pipeline(conn, &cmds);
    }
}

/// Waits until no save or rewrite runs or is scheduled (a scheduled BGSAVE shows in no INFO
/// field: Redis starts it within 100 ms, so the wait is repeated after that).
fn wait_for_no_job(conn: &mut RawConn) {
    for _ in 0..2 {
        assert!(wait_until(Duration::from_secs(60), || {
            ["rdb_bgsave_in_progress", "aof_rewrite_in_progress", "aof_rewrite_scheduled"]
                .iter()
                .all(|field| info_field(conn, field) == "0")
        }));
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// BGSAVE [SCHEDULE], BGREWRITEAOF and SAVE while a save runs, then while a rewrite runs,
/// with `chunks` × 2,500 keys written before each.
fn replies_while_jobs_run(conn: &mut RawConn, chunks: usize) -> Vec<String> {
    let mut replies = Vec::new();
    let say = |conn: &mut RawConn, args: &[&str]| format!("{args:?} -> {:?}", call_str(conn, args));
    load_keys(conn, chunks);
    for args in [&["BGSAVE"][..], &["BGSAVE"], &["BGSAVE", "SCHEDULE"], &["SAVE"], &["BGREWRITEAOF"]] {
        replies.push(say(conn, args));
    }
    let scheduled = info_field(conn, "aof_rewrite_scheduled");
    replies.push(format!("aof_rewrite_scheduled:{scheduled}"));
    wait_for_no_job(conn);
    load_keys(conn, chunks);
    for args in [&["BGREWRITEAOF"][..], &["BGREWRITEAOF"], &["BGSAVE"], &["BGSAVE", "SCHEDULE"]] {
        replies.push(say(conn, args));
    }
    wait_for_no_job(conn);
    replies.push(say(conn, &["SAVE"]));
    replies
}

/// A compaction is both a save and a rewrite; the replies speak of the command that started
/// it, as Redis's speak of its running child: another of the same kind is refused, the other
/// kind scheduled (BGREWRITEAOF always, BGSAVE with SCHEDULE) and run afterwards.
#[test]
fn bgsave_and_bgrewriteaof_while_the_other_runs_answer_as_redis_does() {
    let server = Server::staykv();
    let ours = replies_while_jobs_run(&mut server.connect(), 40);
    assert!(ours[4].contains("rewriting scheduled") && ours[5] == "aof_rewrite_scheduled:1", "{ours:#?}");
    assert!(ours[9].contains("saving scheduled") && ours[10].contains("OK"), "{ours:#?}");
    // Each child of Redis sleeps ~100 µs per key: about 1 s for 10,000 keys.
    let Some(redis) = Server::redis_with(&["--appendonly", "yes", "--rdb-key-save-delay", "100"]) else { return };
    let theirs = replies_while_jobs_run(&mut redis.connect(), 4);
    assert_eq!(ours, theirs);
}

#[test]
fn compaction_during_a_write_load_completes_and_keeps_every_write() {
    let mut server = Server::staykv_with(&["--fsync", "everysec"]);
    let port = server.port();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..2 {
        let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
        writers.push(std::thread::spawn(move || {
            let mut conn = RawConn::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{w}:{}", i % 3000);
                let cmds = vec![
                    vec![b"SET".to_vec(), key.clone().into_bytes(), format!("{i}").into_bytes()],
                    vec![
                        b"HINCRBY".to_vec(),
                        format!("h{w}").into_bytes(),
                        format!("f{}", i % 50).into_bytes(),
                        b"1".to_vec(),
                    ],
                    vec![b"RPUSH".to_vec(), format!("l{w}:{}", i % 20).into_bytes(), format!("{i}").into_bytes()],
                    vec![
                        b"ZINCRBY".to_vec(),
                        format!("z{w}").into_bytes(),
                        b"1".to_vec(),
                        format!("m{}", i % 30).into_bytes(),
                    ],
                ];
                for r in persist_common::pipeline(&mut conn, &cmds) {
                    assert!(!matches!(r, Val::Error(_)), "{r:?}");
                }
                if i.is_multiple_of(97) {
                    persist_common::pipeline(
                        &mut conn,
                        &[vec![b"DEL".to_vec(), format!("l{w}:{}", i % 20).into_bytes()]],
                    );
                }
                i += 1;
                written.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut conn = server.connect();
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            call_str(&mut conn, &["BGREWRITEAOF"]),
            Val::Simple("Background append only file rewriting started".into()),
            "round {round}"
        );
        assert!(wait_until(Duration::from_secs(60), || info_field(&mut conn, "aof_rewrite_in_progress") == "0"));
        assert_eq!(info_field(&mut conn, "aof_last_bgrewrite_status"), "ok");
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let before = dump_all(&mut conn, 1);
    drop(conn);
    server.restart();
    let after = dump_all(&mut server.connect(), 1);
    assert_same("before restart", &before, "after restart", &after, 50);
    println!(
        "{} write batches during 3 compactions; {} keys identical after restart",
        written.load(Ordering::Relaxed),
        after.len()
    );
    // The log was actually compacted: the snapshot covers most of it.
    let log = server.log();
    assert!(log.contains("installed"), "{log}");
}

/// Writes `count` session-like values of about 1.5 KB under `prefix:<i>`, pipelined: a JSON
/// cart that LZF compresses and a token of hex noise that it cannot.
fn write_sessions(conn: &mut RawConn, prefix: &str, count: usize, salt: usize) {
    let mut noise = 0x9E37_79B9_7F4A_7C15u64 ^ salt as u64;
    let commands: Vec<Vec<Vec<u8>>> = (0..count)
        .map(|i| {
            let items: Vec<String> =
                (0..30).map(|k| format!("{{\"sku\":\"SKU-{:05}\",\"qty\":{salt}}}", i * 31 + k)).collect();
            let token: String = (0..50)
                .map(|_| {
                    noise ^= noise << 13;
                    noise ^= noise >> 7;
                    noise ^= noise << 17;
                    format!("{noise:016x}")
                })
                .collect();
            let value = format!("{{\"user\":\"u{i}\",\"token\":\"{token}\",\"cart\":[{}]}}", items.join(","));
            vec![b"SET".to_vec(), format!("{prefix}:{i}").into_bytes(), value.into_bytes()]
        })
        .collect();
    for chunk in commands.chunks(500) {
        for reply in persist_common::pipeline(conn, chunk) {
            assert_eq!(reply, Val::Simple("OK".into()));
        }
    }
}

fn compact(conn: &mut RawConn) {
    assert_eq!(call_str(conn, &["BGREWRITEAOF"]), Val::Simple("Background append only file rewriting started".into()));
    assert!(wait_until(Duration::from_secs(120), || info_field(conn, "aof_rewrite_in_progress") == "0"));
    assert_eq!(info_field(conn, "aof_last_bgrewrite_status"), "ok");
}

/// Past 16 MiB of input a compaction runs in partitions, each pass reading the whole old
/// snapshot and log and keeping its share of the keys (the others' values stepped over, not
/// decoded): every key of every type comes back after a restart.
#[test]
fn a_compaction_in_partitions_over_an_old_snapshot_keeps_every_key() {
    let mut server = Server::staykv_with(&["--fsync", "no"]);
    let mut conn = server.connect();
    populate(&mut conn, true);
    load_library(&mut conn, "early");
    load_library(&mut conn, "gone");
    write_sessions(&mut conn, "sess", 12_000, 1);
    compact(&mut conn);
    call_str(&mut conn, &["FUNCTION", "DELETE", "gone"]);
    load_library(&mut conn, "late");
    // The old snapshot now holds every type; half the sessions change, the rest are only in it.
    write_sessions(&mut conn, "sess", 6_000, 2);
    call_str(&mut conn, &["SELECT", "5"]);
    write_sessions(&mut conn, "other", 2_000, 3);
    call_str(&mut conn, &["DEL", "other:7"]);
    call_str(&mut conn, &["SELECT", "0"]);
    call_str(&mut conn, &["DEL", "s:short", "sess:11999"]);
    compact(&mut conn);
    let log = server.log();
    let passes = log.lines().rfind(|line| line.contains("installed")).unwrap_or_default().to_string();
    assert!(passes.contains(" 4 partition(s)"), "expected a partitioned build: {passes}");
    let before = dump_all(&mut conn, DBS);
    let count = |prefix: &[u8]| before.keys().filter(|(_, key)| key.starts_with(prefix)).count();
    assert_eq!((count(b"sess:"), count(b"other:")), (11_999, 1_999));
    // Every pass replays the libraries; the file holds each once, or Redis would refuse it.
    let snapshot = snapshot_path(&server, &mut conn);
    assert_redis_loads_the_same(&snapshot, server.scratch(), &before, &["early", "late"], "a partitioned snapshot");
    drop(conn);
    server.restart();
    let mut conn = server.connect();
    let after = dump_all(&mut conn, DBS);
    assert_same("before restart", &before, "after restart", &after, 50);
    assert_libraries(&mut conn, &["early", "late"], "StayKV after a partitioned compaction and a restart");
}

/// FUNCTION LOAD is a write like any other: the libraries outlive a compaction (the snapshot
/// carries them) and a restart, and one deleted after the snapshot stays deleted.
#[test]
fn function_libraries_survive_compaction_and_restart() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    load_library(&mut conn, "kept");
    load_library(&mut conn, "deleted");
    compact(&mut conn);
    call_str(&mut conn, &["FUNCTION", "DELETE", "deleted"]);
    load_library(&mut conn, "after");
    drop(conn);
    server.restart();
    let mut conn = server.connect();
    assert_libraries(&mut conn, &["kept", "after"], "a restart from a snapshot and the log");
    compact(&mut conn);
    drop(conn);
    server.restart();
    assert_libraries(&mut server.connect(), &["kept", "after"], "a restart from a snapshot alone");
}

/// A flipped byte inside a library's code in the snapshot refuses the start as the damage
/// it is (the file's checksum), not as the Lua error the damaged code would give.
#[test]
fn a_damaged_library_in_the_snapshot_is_reported_as_damage() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    // A comment LZF cannot shorten keeps the code as it is in the file.
    let noise: String = (0..400u64).map(|i| char::from(b'!' + (i.wrapping_mul(2654435761) >> 7) as u8 % 90)).collect();
    let code =
        format!("#!lua name=damaged\n-- {noise}\nredis.register_function('damaged_who', function() return 1 end)");
    assert_eq!(call_str(&mut conn, &["FUNCTION", "LOAD", &code]), Val::Bulk(Some(b"damaged".to_vec())));
    compact(&mut conn);
    let path = snapshot_path(&server, &mut conn);
    drop(conn);
    server.terminate();
    let mut bytes = std::fs::read(&path).unwrap();
    let code = b"register_function";
    let at = bytes.windows(code.len()).position(|w| w == code).expect("the library's code in the snapshot");
    bytes[at] = b'(';
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_staykv"))
        .args(["--port", &common::free_port().to_string(), "--http-port", "0", "--dir"])
        .arg(server.dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("RDB checksum mismatch"), "{text}");
}

#[test]
fn log_growth_triggers_compaction() {
    let server = Server::staykv_with(&["--fsync", "no"]);
    let mut conn = server.connect();
    assert_eq!(
        call_str(&mut conn, &["CONFIG", "SET", "auto-aof-rewrite-min-size", "300000"]),
        Val::Simple("OK".into())
    );
    assert_eq!(
        call_str(&mut conn, &["CONFIG", "GET", "auto-aof-rewrite-*"]).items().len(),
        4,
        "auto-aof-rewrite-percentage and -min-size"
    );
    let value = "x".repeat(1000);
    for i in 0..400 {
        call_str(&mut conn, &["SET", &format!("k{}", i % 50), &value]);
    }
    assert!(
        wait_until(Duration::from_secs(30), || info_field(&mut conn, "staykv_snapshot_seq") != "0"),
        "no automatic compaction"
    );
    assert!(wait_until(Duration::from_secs(30), || info_field(&mut conn, "aof_rewrite_in_progress") == "0"));
    let log_bytes: u64 = info_field(&mut conn, "staykv_log_bytes").parse().unwrap();
    assert!(log_bytes < 300_000, "log still {log_bytes} bytes after compaction");
    assert!(server.log().contains("starting automatic log compaction"));
}

/// Redis's rule for automatic rewrites, on both servers: the base is the size right after the
/// last rewrite (`aof_base_size`, equal to `aof_current_size` then), and a rewrite starts once
/// `aof_current_size` has grown by `auto-aof-rewrite-percentage` over it — not at half of that.
/// Under `always` StayKV moves into zero-filled segments: their zeros are not log.
#[test]
fn automatic_compaction_measures_growth_over_the_size_after_the_last() {
    for policy in ["everysec", "always"] {
        let staykv = Server::staykv_with(&["--fsync", policy]);
        grows_past_its_base_before_an_automatic_rewrite(&mut staykv.connect(), &format!("staykv {policy}"));
    }
    if let Some(redis) = Server::redis_with(&["--appendonly", "yes"]) {
        grows_past_its_base_before_an_automatic_rewrite(&mut redis.connect(), "redis-server");
    }
}

fn grows_past_its_base_before_an_automatic_rewrite(conn: &mut RawConn, who: &str) {
    let size = |conn: &mut RawConn, field: &str| -> u64 { info_field(conn, field).parse().unwrap() };
    call_str(conn, &["CONFIG", "SET", "auto-aof-rewrite-percentage", "0"]);
    // Without repeats, so that the snapshot's LZF leaves it at its size.
    let value = incompressible(1000);
    let mut next_key = 0;
    // StayKV's aof_current_size is the log as its trigger thread last listed it, every 100 ms
    // while the log grows: each step waits until the size counts it, so that no step overshoots
    // by more than 25 KB however late that thread runs on a loaded machine.
    let mut write_until = |conn: &mut RawConn, bytes: u64| {
        let mut current = size(conn, "aof_current_size");
        while current < bytes {
            for _ in 0..25 {
                call_str(conn, &["SET", &format!("key:{next_key}"), &value]);
                next_key += 1;
            }
            let before = current;
            let counted = wait_until(Duration::from_secs(30), || {
                current = size(conn, "aof_current_size");
                current > before
            });
            assert!(counted, "{who}: aof_current_size stayed at {before} after 25 more SETs");
        }
    };
    write_until(conn, 300_000);
    compact(conn);
    let base = size(conn, "aof_base_size");
    assert!(base > 250_000, "{who}: aof_base_size {base} after a rewrite of ~300 KB");
    assert_eq!(size(conn, "aof_current_size"), base, "{who}: nothing written since the rewrite");
    let rewrites = size(conn, "aof_rewrites");
    call_str(conn, &["CONFIG", "SET", "auto-aof-rewrite-min-size", "0"]);
    call_str(conn, &["CONFIG", "SET", "auto-aof-rewrite-percentage", "100"]);

    write_until(conn, base * 3 / 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(size(conn, "aof_rewrites"), rewrites, "{who}: a rewrite at 1.5x the base size");

    write_until(conn, base * 2 + 20_000);
    assert!(
        wait_until(Duration::from_secs(10), || size(conn, "aof_rewrites") > rewrites),
        "{who}: no rewrite at twice the base size"
    );
}

/// The committed data directory written by the first version of the formats.
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1")
}

/// What the fixture holds (see `tests/fixtures/datadir-v1/README.md`).
fn check_fixture_content(conn: &mut RawConn) {
    let get = |conn: &mut RawConn, args: &[&str]| call_str(conn, args);
    assert_eq!(get(conn, &["GET", "snap:str"]), Val::Bulk(Some(b"in the snapshot".to_vec())));
    assert_eq!(get(conn, &["GET", "log:str"]), Val::Bulk(Some(b"in the log".to_vec())));
    assert_eq!(get(conn, &["GET", "deleted"]), Val::Bulk(None));
    assert_eq!(get(conn, &["GET", "counter"]), Val::Bulk(Some(b"3".to_vec())));
    assert_eq!(get(conn, &["LRANGE", "list", "0", "-1"]).items().len(), 4);
    assert_eq!(get(conn, &["HGET", "hash", "f2"]), Val::Bulk(Some(b"v2".to_vec())));
    assert_eq!(get(conn, &["SCARD", "set"]), Val::Int(3));
    assert_eq!(get(conn, &["ZSCORE", "zset", "b"]), Val::Bulk(Some(b"2.5".to_vec())));
    assert_eq!(get(conn, &["EXPIRETIME", "session"]), Val::Int(4_102_444_800));
    assert_eq!(get(conn, &["SELECT", "2"]), Val::Simple("OK".into()));
    assert_eq!(get(conn, &["GET", "db2"]), Val::Bulk(Some(b"two".to_vec())));
    assert_eq!(get(conn, &["SELECT", "0"]), Val::Simple("OK".into()));
}

#[test]
fn format_fixture_datadir_v1_still_loads() {
    let fixture = fixture_dir();
    if std::env::var("STAYKV_WRITE_FIXTURES").is_ok_and(|v| v == "1") {
        write_fixture(&fixture);
    }
    assert!(fixture.join("MANIFEST").exists(), "missing fixture {}", fixture.display());
    let mut server = Server::staykv();
    server.kill();
    std::fs::remove_dir_all(server.dir()).unwrap();
    copy_dir(&fixture, &server.dir());
    let _ = std::fs::remove_file(server.dir().join("README.md"));
    let report = staykv_ok(&["check", "--dir", &server.dir().to_string_lossy()]);
    assert!(report.contains("data directory OK"), "{report}");
    server.restart();
    let mut conn = server.connect();
    check_fixture_content(&mut conn);
}

/// Regenerates the fixture (`STAYKV_WRITE_FIXTURES=1`): only when the formats change, as a
/// new `datadir-vN`; never rewrite an existing one.
fn write_fixture(target: &Path) {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    for args in [
        &["SET", "snap:str", "in the snapshot"][..],
        &["SET", "deleted", "soon gone"],
        &["INCR", "counter"],
        &["RPUSH", "list", "a", "b"],
        &["HSET", "hash", "f1", "v1"],
        &["SADD", "set", "x", "y"],
        &["ZADD", "zset", "1", "a"],
        &["SET", "session", "user=42", "EXAT", "4102444800"],
        &["SELECT", "2"],
        &["SET", "db2", "two"],
        &["SELECT", "0"],
        &["SAVE"],
        &["SET", "log:str", "in the log"],
        &["DEL", "deleted"],
        &["INCR", "counter"],
        &["INCR", "counter"],
        &["RPUSH", "list", "c", "d"],
        &["HSET", "hash", "f2", "v2"],
        &["SADD", "set", "z"],
        &["ZADD", "zset", "2.5", "b"],
    ] {
        assert!(!matches!(call_str(&mut conn, args), Val::Error(_)), "{args:?}");
    }
    check_fixture_content(&mut conn);
    drop(conn);
    assert!(server.terminate().success());
    std::fs::create_dir_all(target).unwrap();
    for entry in std::fs::read_dir(server.dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
    }
    std::fs::write(
        target.join("README.md"),
        "# datadir-v1\n\nA data directory written by StayKV with log segment format 1, manifest format 1 and\n\
         RDB version 10 snapshots. `tests/snapshot.rs` (`format_fixture_datadir_v1_still_loads`) checks that\n\
         it still loads with the same content. Never rewrite it: a format change adds `datadir-v2`.\n",
    )
    .unwrap();
}

/// BGSAVE (with and without SCHEDULE) and BGREWRITEAOF inside MULTI: Redis cannot fork
/// inside EXEC, so it schedules the job for after it and answers "scheduled"; StayKV starts
/// it at once and answers the same.
fn jobs_inside_transactions(conn: &mut RawConn) -> Vec<String> {
    let mut replies = Vec::new();
    load_keys(conn, 1);
    for job in [&["BGSAVE"][..], &["BGSAVE", "SCHEDULE"], &["BGREWRITEAOF"]] {
        call_str(conn, &["MULTI"]);
        call_str(conn, job);
        call_str(conn, &["INCR", "n"]);
        replies.push(format!("{job:?} in EXEC -> {:?}", call_str(conn, &["EXEC"])));
        wait_for_no_job(conn);
    }
    replies
}

#[test]
fn bgsave_and_bgrewriteaof_inside_exec_answer_as_redis_does() {
    let server = Server::staykv();
    let ours = jobs_inside_transactions(&mut server.connect());
    assert!(ours.iter().all(|line| line.contains("scheduled")), "{ours:#?}");
    let Some(redis) = Server::redis_with(&["--appendonly", "yes"]) else { return };
    assert_eq!(ours, jobs_inside_transactions(&mut redis.connect()));
}
