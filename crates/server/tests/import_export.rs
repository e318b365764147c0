//! `staykv import` from what redis-server 7.0 writes — a `dump.rdb`, an `appendonlydir` (RDB
//! preamble base + incremental AOF), a live `redis://` server — with every encoding of
//! strings, lists, sets, hashes, sorted sets and streams, and function libraries; the content
//! must match key by key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod persist_common;

use std::path::Path;
use std::time::Duration;

use common::{wait_until, RawConn, Server};
use persist_common::{
    assert_libraries, assert_same, call_str, dump_all, load_library, populate, staykv, staykv_ok, Val,
};

const DBS: usize = 8;

/// Adds a stream with a deleted entry and a consumer group that has read one entry.
fn add_stream(conn: &mut RawConn) {
    for kind in ["login", "view", "logout"] {
        assert!(matches!(call_str(conn, &["XADD", "events", "*", "kind", kind]), Val::Bulk(Some(_))));
    }
    let first = call_str(conn, &["XRANGE", "events", "-", "+", "COUNT", "1"]).items()[0].items()[0].text();
    assert_eq!(call_str(conn, &["XDEL", "events", &first]), Val::Int(1));
    assert_eq!(call_str(conn, &["XGROUP", "CREATE", "events", "g", "0"]), Val::Simple("OK".into()));
    call_str(conn, &["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "events", ">"]);
}

/// A stopped StayKV whose data directory is empty, to import into.
fn empty_staykv() -> Server {
    let mut server = Server::staykv();
    server.kill();
    std::fs::remove_dir_all(server.dir()).unwrap();
    server
}

fn import(source: &str, dir: &Path) -> String {
    staykv_ok(&["import", source, "--dir", &dir.to_string_lossy()])
}

fn redis_info_field(conn: &mut RawConn, section: &str, name: &str) -> String {
    let text = call_str(conn, &["INFO", section]).text();
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_default().trim().to_string()
}

#[test]
fn import_dump_rdb_written_by_redis() {
    let Some(redis) = Server::redis() else { return };
    let mut rc = redis.connect();
    populate(&mut rc, true);
    add_stream(&mut rc);
    load_library(&mut rc, "from_rdb");
    // Encodings as Redis chose them, for the record.
    for key in ["l:small", "l:big", "set:ints", "set:big", "h:small", "h:big", "z:small", "z:big", "s:int", "s:raw"] {
        let enc = call_str(&mut rc, &["OBJECT", "ENCODING", key]).text();
        println!("redis encoding of {key}: {enc}");
    }
    assert_eq!(call_str(&mut rc, &["SAVE"]), Val::Simple("OK".into()));
    let expected = dump_all(&mut rc, DBS);
    let mut server = empty_staykv();
    let report = import(&redis.dir().join("dump.rdb").to_string_lossy(), &server.dir());
    assert!(!report.contains("NOT imported") && report.contains("function libraries imported: 1"), "{report}");
    server.restart();
    let mut conn = server.connect();
    let got = dump_all(&mut conn, DBS);
    assert_same("redis-server", &expected, "staykv after import", &got, 1000);
    assert_libraries(&mut conn, &["from_rdb"], "StayKV after importing dump.rdb");
    println!("imported {} keys from dump.rdb", got.len());
}

#[test]
fn import_appendonlydir_written_by_redis() {
    // With timestamps: `#TS:` annotation lines among the commands, which Redis's loader skips.
    let options = ["--appendonly", "yes", "--aof-use-rdb-preamble", "yes", "--appendfsync", "always"];
    let Some(redis) = Server::redis_with(&[&options[..], &["--aof-timestamp-enabled", "yes"]].concat()) else {
        return;
    };
    let mut rc = redis.connect();
    populate(&mut rc, true);
    add_stream(&mut rc);
    load_library(&mut rc, "in_base");
    assert!(matches!(call_str(&mut rc, &["BGREWRITEAOF"]), Val::Simple(_)));
    assert!(wait_until(Duration::from_secs(30), || {
        redis_info_field(&mut rc, "persistence", "aof_rewrite_in_progress") == "0"
            && redis_info_field(&mut rc, "persistence", "aof_rewrite_scheduled") == "0"
    }));
    // Incremental commands after the rewrite: the incr AOF file.
    for args in [
        &["SET", "incr:str", "after the rewrite", "EX", "5000"][..],
        &["DEL", "s:short"],
        &["EXPIRE", "l:small", "4000"],
        &["HDEL", "h:big", "field-1"],
        &["LPOP", "l:big"],
        &["SREM", "set:big", "member-3"],
        &["ZADD", "z:small", "9", "d"],
        &["ZREM", "z:big", "m2"],
        &["INCRBYFLOAT", "s:int", "0.5"],
        &["RENAME", "s:raw", "s:renamed"],
        &["SELECT", "3"],
        &["SET", "db3:key", "x"],
        &["MULTI"],
        &["INCR", "db3:counter"],
        &["RPUSH", "db3:list", "a", "b"],
        &["EXEC"],
        &["SELECT", "0"],
        &["XADD", "events", "*", "kind", "logout"],
    ] {
        if args[0] == "SELECT" {
            // Into the next second: Redis writes a `#TS:` line before a command whose second
            // is newer than the last one stamped.
            std::thread::sleep(Duration::from_millis(1100));
        }
        let r = call_str(&mut rc, args);
        assert!(!matches!(r, Val::Error(_)), "{args:?}: {r:?}");
    }
    load_library(&mut rc, "in_incr");
    let expected = dump_all(&mut rc, DBS);
    let aof_dir = redis.dir().join("appendonlydir");
    let files: Vec<String> =
        std::fs::read_dir(&aof_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    println!("appendonlydir: {files:?}");
    assert!(files.iter().any(|f| f.ends_with(".base.rdb")), "{files:?}");
    let incr = files.iter().find(|f| f.ends_with(".incr.aof")).unwrap_or_else(|| panic!("no incr file: {files:?}"));
    let incr_text = String::from_utf8_lossy(&std::fs::read(aof_dir.join(incr)).unwrap()).to_string();
    assert!(incr_text.contains("\n#TS:"), "{incr_text:.300}");
    let mut server = empty_staykv();
    let report = import(&aof_dir.to_string_lossy(), &server.dir());
    assert!(!report.contains("NOT imported"), "{report}");
    server.restart();
    let mut conn = server.connect();
    let got = dump_all(&mut conn, DBS);
    assert_same("redis-server", &expected, "staykv after import", &got, 1000);
    assert_libraries(&mut conn, &["in_base", "in_incr"], "StayKV after importing an appendonlydir");
    assert!(report.contains("function libraries imported: 2"), "{report}");
    println!("imported {} keys from appendonlydir; report:\n{report}", got.len());
}

/// `check` or `export` pointed at Redis's own directory says how to bring the data over,
/// and leaves the directory as it was.
#[test]
fn check_or_export_of_a_redis_directory_points_to_import() {
    let Some(redis) = Server::redis() else { return };
    let mut rc = redis.connect();
    call_str(&mut rc, &["SET", "k", "v"]);
    assert_eq!(call_str(&mut rc, &["SAVE"]), Val::Simple("OK".into()));
    let names = || {
        let mut names: Vec<_> = std::fs::read_dir(redis.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    };
    let before = names();
    for args in [&["check"][..], &["export", "--rdb", "-"]] {
        let out = staykv(&[args, &["--dir", &redis.dir().to_string_lossy()]].concat());
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && text.contains("a Redis dump.rdb") && text.contains("staykv import"), "{text}");
        assert_eq!(names(), before);
    }
}

#[test]
fn import_from_a_live_redis() {
    let Some(redis) = Server::redis() else { return };
    let mut rc = redis.connect();
    populate(&mut rc, true);
    add_stream(&mut rc);
    load_library(&mut rc, "live");
    for i in 0..20 {
        call_str(&mut rc, &["SET", &format!("exact:{i}"), "v", "PX", &(3_600_000 + i * 7).to_string()]);
    }
    let expected = dump_all(&mut rc, DBS);
    let mut server = empty_staykv();
    let report = import(&format!("redis://127.0.0.1:{}", redis.port()), &server.dir());
    assert!(!report.contains("NOT imported"), "{report}");
    server.restart();
    let mut conn = server.connect();
    let got = dump_all(&mut conn, DBS);
    assert_same("redis-server", &expected, "staykv after import", &got, 1000);
    assert_libraries(&mut conn, &["live"], "StayKV after importing from a live Redis");
    // Deadlines come over exact (PEXPIRETIME), not shifted by a round trip.
    let deadline = |conn: &mut RawConn, db: &str, key: &str| {
        call_str(conn, &["SELECT", db]);
        call_str(conn, &["PEXPIRETIME", key])
    };
    let exact: Vec<String> = (0..20).map(|i| format!("exact:{i}")).collect();
    let keys = exact.iter().map(|k| ("0", k.as_str())).chain([("0", "s:ttl"), ("5", "db5:ttl")]);
    for (db, key) in keys {
        let theirs = deadline(&mut rc, db, key);
        assert!(matches!(theirs, Val::Int(ms) if ms > 0), "{key}: {theirs:?}");
        assert_eq!(deadline(&mut conn, db, key), theirs, "{key}");
    }
}

#[test]
fn import_refuses_a_directory_with_data() {
    let mut server = Server::staykv();
    call_str(&mut server.connect(), &["SET", "k", "v"]);
    server.kill();
    let rdb = server.scratch().join("x.rdb");
    staykv_ok(&["export", "--rdb", &rdb.to_string_lossy(), "--dir", &server.dir().to_string_lossy()]);
    let out = staykv(&["import", &rdb.to_string_lossy(), "--dir", &server.dir().to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("already holds data"), "{text}");
    server.restart();
    assert_eq!(call_str(&mut server.connect(), &["GET", "k"]), Val::Bulk(Some(b"v".to_vec())));
}

/// An export never writes into the data directory it reads: over one of its snapshots, the
/// log would be replayed a second time on top of the full dataset at the next start.
#[test]
fn export_refuses_to_write_into_the_data_directory() {
    let mut server = Server::staykv();
    call_str(&mut server.connect(), &["RPUSH", "l", "a", "b"]);
    server.kill();
    let dir = server.dir().to_path_buf();
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let snapshot = before.iter().find(|(p, _)| p.extension().is_some_and(|e| e == "rdb")).map(|(p, _)| p.clone());
    let targets = [snapshot.unwrap_or_else(|| dir.join("x.rdb")), dir.join("export.rdb"), dir.join(".").join("y.rdb")];
    for target in targets {
        let out = staykv(&["export", "--rdb", &target.to_string_lossy(), "--dir", &dir.to_string_lossy()]);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && text.contains("is inside the data directory"), "{target:?}: {text}");
    }
    for (path, bytes) in &before {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{path:?} changed");
    }
    assert!(!dir.join("export.rdb").exists());
    server.restart();
    assert_eq!(call_str(&mut server.connect(), &["LLEN", "l"]), Val::Int(2));
}

/// `--rdb -` streams the file to standard output (the summary goes to stderr), a symlink is
/// written through rather than replaced, and a target that is no regular file (a rename
/// would replace a device or a directory), or whose directory is missing, is refused.
#[test]
fn export_streams_to_stdout_writes_through_symlinks_and_refuses_other_targets() {
    let mut server = Server::staykv();
    call_str(&mut server.connect(), &["RPUSH", "l", "a", "b"]);
    server.kill();
    let dir = server.dir().to_string_lossy().to_string();
    let scratch = tempfile::tempdir().unwrap();

    let out = staykv(&["export", "--rdb", "-", "--dir", &dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.stdout.starts_with(b"REDIS0010"),
        "{:?}",
        String::from_utf8_lossy(&out.stdout[..40.min(out.stdout.len())])
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("exported 1 keys") && summary.contains("to standard output"), "{summary}");
    assert!(summary.contains(&format!("({} bytes", out.stdout.len())), "{summary}");
    let piped = scratch.path().join("piped.rdb");
    std::fs::write(&piped, &out.stdout).unwrap();
    let mut again = empty_staykv();
    import(&piped.to_string_lossy(), &again.dir());
    again.restart();
    assert_eq!(call_str(&mut again.connect(), &["LRANGE", "l", "0", "-1"]).items().len(), 2);

    let real = scratch.path().join("backup-1.rdb");
    let link = scratch.path().join("latest.rdb");
    std::fs::write(&real, b"old").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    staykv_ok(&["export", "--rdb", &link.to_string_lossy(), "--dir", &dir]);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::read(&real).unwrap().starts_with(b"REDIS0010"));

    let missing = scratch.path().join("no-such-dir").join("x.rdb");
    for (target, expected) in [(scratch.path().to_path_buf(), "is not a regular file"), (missing, "no directory")] {
        let out = staykv(&["export", "--rdb", &target.to_string_lossy(), "--dir", &dir]);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && text.contains(expected), "{target:?}: {text}");
    }
}

/// Keys past database 15 make a file that redis-server refuses under its default 16
/// databases: the export says which setting it needs.
#[test]
fn export_names_the_databases_redis_needs_past_sixteen() {
    let mut server = Server::staykv_with(&["--databases", "32"]);
    let mut conn = server.connect();
    call_str(&mut conn, &["SELECT", "20"]);
    call_str(&mut conn, &["SET", "k", "v"]);
    drop(conn);
    server.kill();
    let scratch = tempfile::tempdir().unwrap();
    let rdb = scratch.path().join("out.rdb");
    let out = staykv(&["export", "--rdb", &rdb.to_string_lossy(), "--dir", &server.dir().to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("keys are in database 20") && text.contains("`databases 21`"),
        "{text}"
    );
}

/// A file that is no AOF and no RDB (compressed, say) is refused, not imported as an AOF
/// cut off at its first line, with one line on stderr and no data directory left behind; a
/// command line ending in a bare LF reads as Redis reads it.
#[test]
fn import_refuses_what_is_no_aof_and_reads_bare_line_feeds() {
    let scratch = tempfile::tempdir().unwrap();
    let gz = scratch.path().join("dump.rdb.gz");
    std::fs::write(&gz, b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\x56\x4a\xcb\xcf\x57\xb2\x52").unwrap();
    let target = scratch.path().join("d1");
    let out = staykv(&["import", &gz.to_string_lossy(), "--dir", &target.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("is neither an RDB file"), "{text}");
    assert!(text.contains(r#"starts with "\x1f\x8b\x08"#), "{text}");
    assert_eq!(text.matches("neither an RDB file").count(), 1, "{text}");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains("neither an RDB file") && !printed.contains('\x1b'), "{printed}");
    assert!(!target.exists(), "a failed import left {target:?}");

    // A backup cut to nothing is no empty dataset; a line of garbage is shown short.
    let empty = scratch.path().join("empty.rdb");
    std::fs::write(&empty, b"").unwrap();
    let out = staykv(&["import", &empty.to_string_lossy(), "--dir", &target.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("is empty (0 bytes)"), "{text}");
    assert!(!target.exists(), "a failed import left {target:?}");
    let bad_line = scratch.path().join("bad.aof");
    std::fs::write(&bad_line, [b"*1\r\n", &[0xffu8; 3000][..], b"\r\n"].concat()).unwrap();
    let out = staykv(&["import", &bad_line.to_string_lossy(), "--dir", &target.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("expected '$<length>'"), "{text}");
    assert!(text.len() < 400, "{} bytes of error: {text}", text.len());

    // An RDB (no keys, zero checksum: not computed) that goes on with no command after its
    // end marker: the RDB part was misread, which is no AOF's business.
    let rdb_and_more = scratch.path().join("dump.rdb");
    std::fs::write(&rdb_and_more, [&b"REDIS0010\xff"[..], &[0; 8], b"\x00\x05hello"].concat()).unwrap();
    let out = staykv(&["import", &rdb_and_more.to_string_lossy(), "--dir", &target.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && text.contains(r#"RDB data ends at offset 18, but the file goes on with "\x00\x05hello""#),
        "{text}"
    );

    let aof = scratch.path().join("appendonly.aof");
    std::fs::write(&aof, b"*3\n$3\r\nSET\r\n$1\nk\r\n$1\r\nv\r\n*3\r\n$3\r\nSET\r\n$2\r\nk2\r\n$2\r\nv2\r\n").unwrap();
    let target = scratch.path().join("d2");
    let text = staykv_ok(&["import", &aof.to_string_lossy(), "--dir", &target.to_string_lossy()]);
    assert!(text.contains("imported 2 keys"), "{text}");
}

/// `export` and `check` beside a server under write load: the end of the segment its log
/// writer appends to is a write in flight, not damage, however the bytes after it read by
/// then. (They used to report "frame checksum mismatch, followed by a valid frame".)
#[test]
fn export_and_check_beside_a_server_writing_take_its_last_frames_for_a_torn_tail() {
    let server = Server::staykv();
    let mut writer = server.connect();
    // No compaction during the run: one replacing files mid-read is a documented retry.
    call_str(&mut writer, &["CONFIG", "SET", "auto-aof-rewrite-percentage", "0"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let value = "v".repeat(200);
            let mut batches = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let pipeline: Vec<u8> = (0..64)
                    .flat_map(|i| common::encode_str(&["SET", &format!("k{}", i * 997 % 5000), &value]))
                    .collect();
                writer.send(&pipeline);
                for _ in 0..64 {
                    writer.read_frame().unwrap();
                }
                batches += 1;
            }
            batches
        })
    };
    let dir = server.dir().to_string_lossy().into_owned();
    let rdb = server.scratch().join("live.rdb");
    for round in 0..6 {
        let out = staykv(&["export", "--rdb", &rdb.to_string_lossy(), "--dir", &dir]);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "export {round} beside the writer: {text}");
        let out = staykv(&["check", "--dir", &dir]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!text.contains("followed by a valid frame"), "check {round} beside the writer: {text}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writing.join().unwrap() > 0);
}

/// An AOF with a command StayKV lacks (a module's, say) or one that fails is refused, as
/// redis-server refuses to load it: what would be left out is listed and nothing is written.
/// `--partial` imports the rest and lists the same.
#[test]
fn import_refuses_a_source_it_cannot_take_whole_unless_partial() {
    let scratch = tempfile::tempdir().unwrap();
    let aof = scratch.path().join("appendonly.aof");
    let commands: [&[&str]; 4] =
        [&["SET", "k", "v"], &["JSON.SET", "doc", "$", "{}"], &["INCR", "k"], &["SET", "k2", "v2"]];
    let text: String = commands
        .iter()
        .map(|args| {
            let parts: String = args.iter().map(|a| format!("${}\r\n{a}\r\n", a.len())).collect();
            format!("*{}\r\n{parts}", args.len())
        })
        .collect();
    std::fs::write(&aof, text).unwrap();
    let target = scratch.path().join("refused");
    let out = staykv(&["import", &aof.to_string_lossy(), "--dir", &target.to_string_lossy()]);
    let (printed, error) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{printed}{error}");
    assert!(error.contains("nothing was written") && error.contains("--partial"), "{error}");
    assert!(printed.contains(r#"db0 "doc" (written by JSON.SET"#), "{printed}");
    assert!(printed.contains("AOF command failed 1 times: INCR: ERR value is not an integer"), "{printed}");
    assert!(!target.exists(), "a refused import left {target:?}");

    let target = scratch.path().join("partial");
    let printed = staykv_ok(&["import", &aof.to_string_lossy(), "--dir", &target.to_string_lossy(), "--partial"]);
    assert!(printed.contains("imported 2 keys") && printed.contains(r#"db0 "doc""#), "{printed}");
}

/// An RDB file naming a key twice in one database is refused whole, as Redis refuses to
/// start on it: which of the two is the data is not known.
#[test]
fn import_refuses_an_rdb_file_naming_a_key_twice() {
    let scratch = tempfile::tempdir().unwrap();
    let rdb = scratch.path().join("dump.rdb");
    // Version 9, database 0, short strings, then the end and the checksum.
    let write_rdb = |strings: &[(&str, &str)]| {
        let mut file = b"REDIS0009\xFE\x00".to_vec();
        for (key, value) in strings {
            file.extend([0, key.len() as u8]);
            file.extend(key.as_bytes());
            file.push(value.len() as u8);
            file.extend(value.as_bytes());
        }
        file.push(0xFF);
        let checksum = staykv_rdb::crc64(0, &file);
        file.extend(checksum.to_le_bytes());
        std::fs::write(&rdb, file).unwrap();
    };
    write_rdb(&[("dk", "one"), ("other", "x"), ("dk", "two")]);
    let target = scratch.path().join("refused");
    let out = staykv(&["import", &rdb.to_string_lossy(), "--dir", &target.to_string_lossy()]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{error}");
    assert!(error.contains("key 'dk' appears twice in database 0"), "{error}");
    assert!(!target.exists(), "a refused import left {target:?}");
    // Without the second copy, the file imports.
    write_rdb(&[("dk", "one"), ("other", "x")]);
    let printed = import(&rdb.to_string_lossy(), &scratch.path().join("imported"));
    assert!(printed.contains("imported 2 keys"), "{printed}");
}
