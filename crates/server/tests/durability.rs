//! Durability at the binary level: orderly stops lose nothing under every
//! fsync policy, SIGKILL under `everysec` loses nothing written, a power cut under `everysec`
//! loses at most ~2 s (simulated filesystem), damage is refused with file and offset and
//! repaired by `staykv check --fix`, a full disk refuses writes and recovers, and the data
//! directory lock keeps a second server out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod persist_common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{wait_until, RawConn, Server};
use persist_common::{call, call_str, dump_all, info_field, pipeline, staykv, staykv_ok, Val};

fn set_cmd(i: usize) -> Vec<Vec<u8>> {
    let key = format!("key:{i}");
    let value = format!("value-{i}-{}", "p".repeat(i % 50));
    vec![b"SET".to_vec(), key.into_bytes(), value.into_bytes(), b"EX".to_vec(), b"100000".to_vec()]
}

/// Writes `n` keys (pipelined, every reply checked) plus a hash, list and set.
fn write_keys(conn: &mut RawConn, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let cmds: Vec<Vec<Vec<u8>>> = chunk.iter().map(|&i| set_cmd(i)).collect();
        for r in pipeline(conn, &cmds) {
            assert_eq!(r, Val::Simple("OK".into()));
        }
    }
    for (i, args) in [["HSET", "h", "f", "v"], ["RPUSH", "l", "a", "b"], ["SADD", "s", "x", "y"]].iter().enumerate() {
        assert!(matches!(call_str(conn, args), Val::Int(_)), "command {i}");
    }
}

fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill -{name} failed");
}

#[test]
fn sigterm_sigint_and_shutdown_lose_nothing_under_every_policy() {
    for policy in ["always", "everysec", "no"] {
        for stop in ["SIGTERM", "SIGINT", "SHUTDOWN"] {
            let mut server = Server::staykv_with(&["--fsync", policy]);
            let mut conn = server.connect();
            write_keys(&mut conn, 2000);
            let before = dump_all(&mut conn, 1);
            assert_eq!(before.len(), 2003);
            let pid = server.pid().unwrap();
            match stop {
                "SIGTERM" => signal(pid, "TERM"),
                "SIGINT" => signal(pid, "INT"),
                _ => {
                    // SHUTDOWN closes the connection without a reply, as in Redis.
                    conn.send(&common::encode_str(&["SHUTDOWN"]));
                }
            }
            assert!(wait_until(Duration::from_secs(30), || !server.is_running()), "{policy}/{stop}: still running");
            assert!(server.log().contains("bye"), "{policy}/{stop}: no orderly exit:\n{}", server.log());
            server.restart();
            let after = dump_all(&mut server.connect(), 1);
            persist_common::assert_same("before", &before, "after restart", &after, 1000);
            println!("{policy} + {stop}: {} keys, nothing lost", after.len());
        }
    }
}

/// SIGTERM during the load at start stops the server without waiting for the load to end (a
/// service manager's stop timeout would end a long load with SIGKILL): nothing is written
/// then, so nothing is lost, and the next start loads everything.
#[test]
fn sigterm_during_the_load_stops_at_once() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    let value = "s".repeat(1024);
    for batch in 0..60 {
        let pipeline: Vec<u8> =
            (0..1000).flat_map(|i| common::encode_str(&["SET", &format!("k{batch}:{i}"), &value])).collect();
        conn.send(&pipeline);
        for _ in 0..1000 {
            conn.read_frame().unwrap();
        }
    }
    drop(conn);
    assert!(server.terminate().success());
    let port = common::free_port();
    let log_path = server.scratch().join("loading.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_staykv"))
        .args(["--port", &port.to_string(), "--http-port", "0", "--dir"])
        .arg(server.dir())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut info = String::new();
    let loading = wait_until(Duration::from_secs(20), || {
        let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
        let mut conn = RawConn::from_stream(stream);
        if !conn.try_cmd(&["PING"]).is_ok_and(|reply| reply.starts_with(b"-LOADING")) {
            return false;
        }
        info = conn
            .try_cmd(&["INFO", "persistence"])
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .unwrap_or_default();
        true
    });
    assert!(loading, "never saw -LOADING: {}", std::fs::read_to_string(&log_path).unwrap());
    // INFO answers while loading, with Redis's progress fields (the log is 60 MB or more).
    let field = |name: &str| -> f64 {
        let line = info.lines().find_map(|l| l.strip_prefix(&format!("{name}:")));
        line.unwrap_or_else(|| panic!("no {name} in {info}")).trim().parse().unwrap()
    };
    assert_eq!(field("loading"), 1.0, "{info}");
    assert!(field("loading_total_bytes") > 60e6, "{info}");
    assert!(field("loading_loaded_bytes") <= field("loading_total_bytes"), "{info}");
    assert!((0.0..=100.0).contains(&field("loading_loaded_perc")), "{info}");
    assert!(field("loading_start_time") > 1.7e9 && field("loading_eta_seconds") >= 0.0, "{info}");
    signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    let printed = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "{status}: {printed}");
    // The load was not waited for (its thread has the runtime's one-second grace to end, then
    // the process exits without it).
    assert!(printed.contains("shutting down during the load"), "{printed}");
    server.restart();
    assert_eq!(call_str(&mut server.connect(), &["DBSIZE"]), Val::Int(60_000));
}

/// SIGHUP (a closed terminal, a log rotation) is logged and ignored, as Redis ignores it: the
/// server goes on serving.
#[test]
fn sighup_is_ignored() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    call_str(&mut conn, &["SET", "k", "v"]);
    signal(server.pid().unwrap(), "HUP");
    assert!(wait_until(Duration::from_secs(5), || server.log().contains("SIGHUP received")), "{}", server.log());
    assert!(server.is_running());
    assert_eq!(call_str(&mut conn, &["GET", "k"]), Val::Bulk(Some(b"v".to_vec())));
}

/// Writers on four connections send SETs, `depth` to a write (every reply read), until the
/// server is killed with SIGKILL; after a restart every SET whose reply arrived is there.
/// Returns the writes acknowledged.
fn sigkill_loses_no_acknowledged_write(policy: &str, depth: usize, value: &str) -> u64 {
    let mut server = Server::staykv_with(&["--fsync", policy]);
    let port = server.port();
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..4u64 {
        let (stop, value) = (Arc::clone(&stop), value.to_owned());
        handles.push(std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            let mut conn = std::io::BufReader::new(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
            let mut acked = 0u64;
            'writing: while !stop.load(Ordering::Relaxed) {
                let batch: Vec<u8> = (acked..acked + depth as u64)
                    .flat_map(|i| common::encode_str(&["SET", &format!("w{w}:{i}"), &value]))
                    .collect();
                if conn.get_mut().write_all(&batch).is_err() {
                    break;
                }
                for _ in 0..depth {
                    let mut line = Vec::new();
                    if conn.read_until(b'\n', &mut line).is_err() || line != b"+OK\r\n" {
                        break 'writing;
                    }
                    acked += 1;
                }
            }
            acked
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let per_writer: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    server.restart();
    let mut conn = server.connect();
    let mut lost = 0;
    for (w, n) in per_writer.iter().enumerate() {
        for i in 0..*n {
            if call_str(&mut conn, &["EXISTS", &format!("w{w}:{i}")]) != Val::Int(1) {
                lost += 1;
            }
        }
    }
    let acked = per_writer.iter().sum();
    println!("{policy}, {depth} SETs a write + SIGKILL: {acked} acknowledged writes, {lost} lost");
    assert_eq!(lost, 0);
    assert!(acked > 0, "no write was acknowledged before the kill");
    acked
}

/// Under `everysec` a reply leaves once its write is in the OS, which SIGKILL does not undo.
#[test]
fn everysec_sigkill_loses_no_acknowledged_write() {
    sigkill_loses_no_acknowledged_write("everysec", 1, "v");
}

/// Under `always`, a pipeline of large values is read on past one read before its replies
/// go out (`Connection::read_ahead`): they still wait for the fsync of every write before
/// them.
#[test]
fn always_sigkill_loses_no_acknowledged_write_of_a_pipeline() {
    sigkill_loses_no_acknowledged_write("always", 64, &"v".repeat(1024));
}

/// No client hears of a write a crash could take back: under `always` a keyspace
/// notification leaves only once the write it tells of is fsynced, as Redis writes every
/// client's output only after its AOF fsync. A subscriber's messages used to go out at once,
/// and after a SIGKILL some keys it had been told were set did not exist (15 of 40 rounds).
/// Each round: two pipelining writers, SIGKILL 100-300 ms in, restart, every key announced
/// must exist.
#[test]
fn a_keyspace_notification_never_tells_of_a_write_sigkill_takes_back() {
    use std::io::{BufRead, Write};
    let mut server = Server::staykv();
    let mut announced_total = 0;
    for round in 0..8u64 {
        let port = server.port();
        let mut config = server.connect();
        config.cmd(&["CONFIG", "SET", "notify-keyspace-events", "K$"]);
        let mut subscriber = server.connect();
        subscriber.cmd(&["PSUBSCRIBE", &format!("__keyspace@0__:k:{round}:*")]);
        let listener = std::thread::spawn(move || {
            let mut announced = Vec::new();
            while let Ok(frame) = subscriber.read_frame() {
                let text = String::from_utf8_lossy(&frame).into_owned();
                // pmessage, the pattern, the channel (`__keyspace@0__:<key>`), the event.
                if let Some(key) = text.split("__keyspace@0__:").nth(2).and_then(|rest| rest.split('\r').next()) {
                    announced.push(key.to_string());
                }
            }
            announced
        });
        let writers: Vec<_> = (0..2)
            .map(|w| {
                std::thread::spawn(move || {
                    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return };
                    let mut conn = std::io::BufReader::new(stream);
                    for batch in 0u64.. {
                        let keys = (0..32).map(|i| format!("k:{round}:{w}:{batch}:{i}"));
                        let pipeline: Vec<u8> = keys.flat_map(|k| common::encode_str(&["SET", &k, "v"])).collect();
                        if conn.get_mut().write_all(&pipeline).is_err() {
                            return;
                        }
                        for _ in 0..32 {
                            let mut line = Vec::new();
                            if conn.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + 25 * round));
        server.kill();
        for writer in writers {
            writer.join().unwrap();
        }
        let announced = listener.join().unwrap();
        server.restart();
        let mut conn = server.connect();
        let missing: Vec<&String> =
            announced.iter().filter(|key| call_str(&mut conn, &["EXISTS", key.as_str()]) != Val::Int(1)).collect();
        let first: Vec<&&String> = missing.iter().take(5).collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} keys announced, then gone after SIGKILL: {first:?}...",
            missing.len()
        );
        announced_total += announced.len();
    }
    println!("{announced_total} keys announced over 8 SIGKILLs, all found after the restart");
    assert!(announced_total > 0, "no notification arrived before a kill");
}

/// A write that changes its key and then answers an error is logged as what it changed, so a
/// restart replays it instead of stopping at the same error. PFADD over an HLL whose sparse
/// body a string command cut short adds the elements before the damage, then answers
/// INVALIDOBJ (as Redis does); it was logged as the PFADD, and the restart refused to start.
#[test]
fn a_write_that_answers_an_error_after_changing_its_key_survives_sigkill() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    // A sparse HLL whose one opcode covers 8,000 of the 16,384 registers.
    let damaged: &[u8] = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x5f\x3f";
    assert_eq!(call(&mut conn, &[b"SET", b"h", damaged, b"EX", b"100000"]), Val::Simple("OK".into()));
    let elements: Vec<String> = (0..10).map(|i| format!("x{i}")).collect();
    let mut pfadd: Vec<&[u8]> = vec![b"PFADD", b"h"];
    pfadd.extend(elements.iter().map(|e| e.as_bytes()));
    match call(&mut conn, &pfadd) {
        Val::Error(e) => assert!(e.starts_with("INVALIDOBJ"), "{e}"),
        other => panic!("PFADD over the damaged HLL: {other:?}"),
    }
    let changed = call(&mut conn, &[b"GET", b"h"]);
    assert_ne!(changed, Val::Bulk(Some(damaged.to_vec())), "no element was added before the damage");
    server.kill();
    server.restart();
    let mut conn = server.connect();
    assert_eq!(call(&mut conn, &[b"GET", b"h"]), changed);
    assert!(matches!(call(&mut conn, &[b"PTTL", b"h"]), Val::Int(ms) if ms > 0));
}

/// The segment the manifest of `dir` names last (the one being written) and its file size.
fn live_segment(dir: &std::path::Path) -> (String, u64) {
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).unwrap();
    let name = manifest.lines().rev().find_map(|l| l.strip_prefix("segment ")).unwrap().to_string();
    let len = std::fs::metadata(dir.join(&name)).map_or(0, |m| m.len());
    (name, len)
}

/// Under `always` with one write at a time (small fsyncs), the log moves into segments
/// zero-filled ahead of time. Their zeros are not log: `INFO` counts the data only (counted,
/// they would set off compactions of nothing); and a SIGKILL in one loses nothing and
/// reports no torn tail.
#[test]
fn zero_filled_segments_are_not_counted_as_log_and_survive_sigkill() {
    const SEGMENT: u64 = 1 << 20;
    let mut server = Server::staykv_with(&["--fsync", "always", "--log-segment-size", "1mb"]);
    let dir = server.dir();
    let mut conn = server.connect();
    let value = "v".repeat(1000);
    let mut keys = 0;
    let mut set = |conn: &mut RawConn| {
        assert_eq!(call_str(conn, &["SET", &format!("key:{keys}"), &value]), Val::Simple("OK".into()));
        keys += 1;
    };
    // Until a zero-filled segment has just taken over: its file is whole, its data tiny.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut before = live_segment(&dir).0;
    loop {
        assert!(Instant::now() < deadline, "the log never moved into a zero-filled segment");
        set(&mut conn);
        let (name, len) = live_segment(&dir);
        if name != before && len == SEGMENT {
            break;
        }
        before = name;
    }
    set(&mut conn);
    std::thread::sleep(Duration::from_millis(300));
    let on_disk: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".skv"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let counted: u64 = info_field(&mut conn, "staykv_log_bytes").parse().unwrap();
    assert!(counted + SEGMENT / 2 < on_disk, "INFO counts {counted} bytes of log, files hold {on_disk}");
    server.kill();
    server.restart();
    let mut conn = server.connect();
    assert_eq!(call_str(&mut conn, &["DBSIZE"]), Val::Int(keys as i64));
    assert_eq!(call_str(&mut conn, &["GET", &format!("key:{}", keys - 1)]), Val::Bulk(Some(value.into_bytes())));
    assert!(!server.log().contains("torn tail"), "{}", server.log());
}

#[test]
fn a_log_segment_size_out_of_bounds_is_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    for size in ["512kb", "17gb", "lots"] {
        let out =
            staykv(&["--port", "0", "--http-port", "0", "--dir", &dir.to_string_lossy(), "--log-segment-size", size]);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--log-segment-size {size} accepted");
        assert!(text.contains("log-segment-size"), "--log-segment-size {size}: {text}");
    }
    assert!(!dir.exists(), "a refused start created the data directory");
}

#[test]
fn a_data_directory_that_is_a_file_is_refused_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("data");
    std::fs::write(&file, b"not a directory").unwrap();
    let port = common::free_port().to_string();
    let out = staykv(&["--port", &port, "--http-port", "0", "--dir", &file.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("is not a directory"), "{text}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

/// The storage layer on the simulated filesystem with the server's defaults (fsync every
/// second, writers wait beyond 2 s of lag): at random power cuts, how old is the oldest
/// acknowledged append that is lost?
#[test]
fn everysec_power_cut_loses_at_most_two_seconds() {
    use staykv_storage::{Fs, FsyncPolicy, Log, LogOptions, NoReplay, Replay, SimFs};
    let fs = SimFs::new();
    let opts = LogOptions { fsync: FsyncPolicy::EverySec, ..LogOptions::default() };
    let (log, _) = Log::open("/data", Arc::new(fs.clone()) as Arc<dyn Fs>, opts, &mut NoReplay).unwrap();
    let log = Arc::new(log);
    let epoch = Instant::now();
    // seq -> time it was acknowledged (durable_seq reached it), ms since epoch.
    let acked_at: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0]));
    let stop = Arc::new(AtomicBool::new(false));
    let appender = {
        let (log, acked_at, stop) = (Arc::clone(&log), Arc::clone(&acked_at), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if log.sync_lagging() {
                    log.wait_writable_blocking(Duration::from_secs(2));
                }
                let seq = log.append(&[7u8; 100]).unwrap();
                log.wait_durable(seq, None);
                let mut a = acked_at.lock().unwrap();
                a.resize(seq as usize + 1, 0);
                a[seq as usize] = epoch.elapsed().as_millis() as u64;
                drop(a);
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };
    struct Count(u64);
    impl Replay for Count {
        fn frame(&mut self, seq: u64, _payload: &[u8]) -> Result<(), staykv_storage::BoxError> {
            self.0 = seq;
            Ok(())
        }
    }
    let mut worst_ms = 0u64;
    let mut lost_total = 0u64;
    let cuts = 12;
    let mut rng = 0x2545F4914F6CDD1Du64;
    for i in 0..cuts {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(200 + rng % 600));
        let cut_ms = epoch.elapsed().as_millis() as u64;
        let acked = acked_at.lock().unwrap().clone();
        let image = fs.power_cut(i);
        let mut count = Count(0);
        staykv_storage::scan(std::path::Path::new("/data"), &image, &mut count).unwrap();
        let recovered = count.0;
        let last_acked = acked.len() as u64 - 1;
        if recovered < last_acked {
            let first_lost = acked[recovered as usize + 1];
            worst_ms = worst_ms.max(cut_ms.saturating_sub(first_lost));
            lost_total += last_acked - recovered;
        }
    }
    stop.store(true, Ordering::Relaxed);
    appender.join().unwrap();
    println!(
        "everysec + power cut (SimFs, fsync every 1 s): {cuts} cuts, {lost_total} acknowledged appends lost in all; \
         the oldest lost append was acknowledged {worst_ms} ms before its cut"
    );
    assert!(worst_ms <= 2100, "lost {worst_ms} ms of acknowledged writes");
}

/// Offset of the `n`-th frame (0-based) of a segment file.
fn frame_offset(bytes: &[u8], n: usize) -> usize {
    let mut off = 32;
    for _ in 0..n {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        off += 16 + len;
    }
    off
}

/// A server that ran `SET k<i> v<i>` for i < n and was stopped, and its one log segment.
fn stopped_after_sets(n: usize) -> (Server, std::path::PathBuf) {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    for i in 0..n {
        call_str(&mut conn, &["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    drop(conn);
    assert!(server.terminate().success());
    let segment = std::fs::read_dir(server.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("log-"))
        .unwrap();
    (server, segment)
}

/// Starts the server on `dir`, which must refuse; returns what it printed.
fn start_refused(dir: &std::path::Path) -> String {
    start_refused_with(dir, &[])
}

/// Starts the server on `dir` and returns what it printed, which must be a refusal: a server
/// still running after 30 s started, and is killed (the test fails rather than hangs).
fn start_refused_with(dir: &std::path::Path, args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_staykv"))
        .args(["--port", &common::free_port().to_string(), "--http-port", "0", "--dir"])
        .arg(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let refused = wait_until(Duration::from_secs(30), || child.try_wait().unwrap().is_some());
    if !refused {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(refused && !out.status.success(), "started on this data:\n{text}");
    text
}

#[test]
fn flipped_byte_refuses_start_and_check_fix_repairs() {
    let (mut server, segment) = stopped_after_sets(20);
    let dir = server.dir();
    let mut bytes = std::fs::read(&segment).unwrap();
    let offset = frame_offset(&bytes, 10);
    bytes[offset + 20] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();

    // Start refuses, naming the file and the offset.
    let text = start_refused(&dir);
    let name = segment.file_name().unwrap().to_string_lossy().to_string();
    assert!(text.contains(&name) && text.contains(&format!("offset {offset}")), "{text}");
    assert!(text.contains("staykv check --fix"), "{text}");

    // check reports it, without -y and without a terminal --fix refuses, -y repairs.
    let dir_s = dir.to_string_lossy().to_string();
    let out = staykv(&["check", "--dir", &dir_s]);
    assert!(!out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("CORRUPT") && report.contains(&format!("offset {offset}")), "{report}");
    let out = staykv(&["check", "--dir", &dir_s, "--fix"]);
    assert!(!out.status.success(), "fixed without confirmation");
    let fixed = staykv_ok(&["check", "--dir", &dir_s, "--fix", "-y"]);
    assert!(fixed.contains(&format!("truncated {name} at offset {offset}")), "{fixed}");
    assert!(fixed.contains("data dropped: 9 log batches"), "{fixed}"); // the damaged frame and 9 valid ones
    println!("check --fix output:\n{fixed}");

    server.restart();
    let mut conn = server.connect();
    for i in 0..20 {
        let expected = if i < 10 { Val::Bulk(Some(format!("v{i}").into_bytes())) } else { Val::Bulk(None) };
        assert_eq!(call_str(&mut conn, &["GET", &format!("k{i}")]), expected, "k{i}");
    }
}

/// A damaged MANIFEST refuses the start like any damage, and `check --fix` writes it anew
/// from the snapshot and segments beside it: nothing acknowledged is lost.
#[test]
fn a_damaged_manifest_refuses_start_and_check_fix_rebuilds_it() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    for i in 0..20 {
        if i == 10 {
            call_str(&mut conn, &["SAVE"]);
        }
        call_str(&mut conn, &["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    drop(conn);
    assert!(server.terminate().success());
    let dir = server.dir();
    let manifest = dir.join("MANIFEST");
    let mut bytes = std::fs::read(&manifest).unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("snapshot snap-"), "no snapshot listed");
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01; // in the checksum line
    std::fs::write(&manifest, &bytes).unwrap();

    let text = start_refused(&dir);
    assert!(text.contains("MANIFEST") && text.contains("staykv check --fix"), "{text}");
    let dir_s = dir.to_string_lossy().to_string();
    let out = staykv(&["check", "--dir", &dir_s]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && report.contains("MANIFEST: DAMAGED"), "{report}");
    assert!(report.contains("found in the directory") && !report.contains("listed in MANIFEST"), "{report}");
    let fixed = staykv_ok(&["check", "--dir", &dir_s, "--fix", "-y"]);
    assert!(fixed.contains("rewrote MANIFEST from the files (the damaged one renamed MANIFEST.damaged)"), "{fixed}");
    assert!(fixed.contains("data directory OK after the fix"), "{fixed}");
    assert_eq!(std::fs::read(dir.join("MANIFEST.damaged")).unwrap(), bytes);

    server.restart();
    let mut conn = server.connect();
    for i in 0..20 {
        assert_eq!(
            call_str(&mut conn, &["GET", &format!("k{i}")]),
            Val::Bulk(Some(format!("v{i}").into_bytes())),
            "k{i}"
        );
    }
}

/// Appends one batch of `effects` (database 0) to the log of the stopped server's `dir`, as
/// a bug that logs a write its replay rejects would.
fn append_batch(dir: &std::path::Path, effects: &[&[&str]]) {
    use staykv_storage::{Log, LogOptions, NoReplay, RealFs};
    let effects: Vec<staykv_engine::Effect> = effects
        .iter()
        .map(|args| staykv_engine::Effect::new(0, args.iter().map(|a| bytes::Bytes::from(a.to_string())).collect()))
        .collect();
    let mut batch = Vec::new();
    staykv_engine::encode_batch(persist_common::now_ms(), &effects, &mut batch);
    let (log, _) = Log::open(dir, Arc::new(RealFs::new()), LogOptions::default(), &mut NoReplay).unwrap();
    log.append(&batch).unwrap();
    log.close().unwrap();
}

/// A logged write whose replay answers an error stops the start, naming the batch and the
/// way past it; `--on-replay-error skip` starts without just that effect (the rest of its
/// batch and the later batches replay), and the next compaction leaves it out, after which
/// the directory reads without the switch. `staykv export` takes the same switch, and
/// `staykv check --replay` finds such a write.
#[test]
fn a_write_that_fails_to_replay_refuses_the_start_unless_told_to_skip_it() {
    let mut server = Server::staykv_with(&["--on-replay-error", "skip"]);
    let mut conn = server.connect();
    call_str(&mut conn, &["SET", "k", "text"]);
    drop(conn);
    assert!(server.terminate().success());
    let dir = server.dir();
    append_batch(&dir, &[&["INCR", "k"], &["SET", "same-batch", "v"]]);
    append_batch(&dir, &[&["SET", "later", "v"]]);

    let text = start_refused(&dir);
    assert!(text.contains("effect 0: replaying INCR: ERR value is not an integer or out of range"), "{text}");
    assert!(text.contains("--on-replay-error skip"), "{text}");
    println!("start refused:\n{text}");
    let (dir_s, rdb) = (dir.to_string_lossy().to_string(), server.scratch().join("export.rdb"));
    let rdb_s = rdb.to_string_lossy().to_string();
    // check reads the frames as intact; with --replay it finds the write and says what to do.
    staykv_ok(&["check", "--dir", &dir_s]);
    let checked = staykv(&["check", "--dir", &dir_s, "--replay"]);
    let report = String::from_utf8_lossy(&checked.stdout).to_string() + &String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success(), "{report}");
    assert!(report.contains("log batch seq 2, effect 0: fails to replay: replaying INCR"), "{report}");
    assert!(report.contains("1 logged writes fail to replay") && report.contains("--on-replay-error skip"), "{report}");
    println!("check --replay:\n{report}");
    assert!(!staykv(&["export", "--dir", &dir_s, "--rdb", &rdb_s]).status.success());
    let exported = staykv_ok(&["export", "--dir", &dir_s, "--rdb", &rdb_s, "--on-replay-error", "skip"]);
    assert!(exported.contains("effect 0: replaying INCR") && exported.contains("skipped"), "{exported}");

    server.restart();
    assert!(server.log().contains("1 logged writes failed to replay and were skipped"), "{}", server.log());
    let mut conn = server.connect();
    for (key, value) in [("k", "text"), ("same-batch", "v"), ("later", "v")] {
        assert_eq!(call_str(&mut conn, &["GET", key]), Val::Bulk(Some(value.into())), "{key}");
    }
    call_str(&mut conn, &["BGREWRITEAOF"]);
    assert!(wait_until(Duration::from_secs(30), || info_field(&mut conn, "aof_rewrite_in_progress") == "0"));
    assert_eq!(info_field(&mut conn, "aof_last_bgrewrite_status"), "ok", "{}", server.log());
    drop(conn);
    assert!(server.terminate().success());
    staykv_ok(&["export", "--dir", &dir_s, "--rdb", &rdb_s]);
    let replayed = staykv_ok(&["check", "--dir", &dir_s, "--replay"]);
    assert!(replayed.contains("decoded and replayed over the snapshot OK"), "{replayed}");
}

#[test]
fn torn_tail_at_every_offset_of_the_last_frame_starts_with_the_prefix() {
    let (mut server, segment) = stopped_after_sets(5);
    let full = std::fs::read(&segment).unwrap();
    let last = frame_offset(&full, 4);
    // Every cut inside the last frame (a few in a debug build, each start costs ~0.1 s).
    let cuts: Vec<usize> = (last..full.len()).step_by(if cfg!(debug_assertions) { 7 } else { 1 }).collect();
    for &cut in &cuts {
        std::fs::write(&segment, &full[..cut]).unwrap();
        server.restart();
        let mut conn = server.connect();
        assert_eq!(call_str(&mut conn, &["GET", "k3"]), Val::Bulk(Some(b"v3".to_vec())), "cut at {cut}");
        assert_eq!(call_str(&mut conn, &["GET", "k4"]), Val::Bulk(None), "cut at {cut}");
        drop(conn);
        server.kill();
    }
    assert!(server.log().contains("torn tail"));
}

/// Data in a database the next start lacks (a smaller `--databases`) refuses the start,
/// naming the flag that loads it, whether the write is in the log or in a snapshot; even
/// under `--on-replay-error skip`, which must not drop every write to a database.
#[test]
fn a_start_with_fewer_databases_than_the_data_is_refused() {
    let mut server = Server::staykv();
    let mut conn = server.connect();
    for command in [&["SELECT", "5"][..], &["SET", "k", "v"]] {
        assert_eq!(call_str(&mut conn, command), Val::Simple("OK".into()));
    }
    drop(conn);
    let dir = server.dir();
    let refusal = "data is in database 5 but the server has 4 databases (start it with --databases 6)";
    for compacted in [false, true] {
        if compacted {
            server.restart();
            let mut conn = server.connect();
            call_str(&mut conn, &["BGREWRITEAOF"]);
            assert!(wait_until(Duration::from_secs(30), || info_field(&mut conn, "aof_rewrite_in_progress") == "0"));
        }
        assert!(server.terminate().success());
        for skip in [&[][..], &["--on-replay-error", "skip"]] {
            let text = start_refused_with(&dir, &[&["--databases", "4"][..], skip].concat());
            assert!(text.contains(refusal) && !text.contains("panicked"), "compacted {compacted}, {skip:?}:\n{text}");
            assert!(!text.contains("use --on-replay-error skip"), "advice that cannot help:\n{text}");
        }
    }
    server.restart();
    let mut conn = server.connect();
    call_str(&mut conn, &["SELECT", "5"]);
    assert_eq!(call_str(&mut conn, &["GET", "k"]), Val::Bulk(Some(b"v".to_vec())));
}

/// What a smaller `--databases` does with logged commands that are not data in a database:
/// a SWAPDB naming a database it lacks refuses the start (skipping it would serve that
/// database's data from the other), while FLUSHALL, FUNCTION LOAD and FLUSHDB issued with a
/// higher database selected replay (FLUSHDB there has nothing to flush).
#[test]
fn commands_of_no_database_replay_under_fewer_databases() {
    let library = "#!lua name=lib\nredis.register_function('f', function() return 1 end)";
    let mut swapped = Server::staykv();
    let mut conn = swapped.connect();
    for command in [&["SET", "k", "v"][..], &["SWAPDB", "0", "5"]] {
        assert_eq!(call_str(&mut conn, command), Val::Simple("OK".into()));
    }
    drop(conn);
    assert!(swapped.terminate().success());
    for skip in [&[][..], &["--on-replay-error", "skip"]] {
        let text = start_refused_with(&swapped.dir(), &[&["--databases", "4"][..], skip].concat());
        assert!(text.contains("DB index is out of range"), "{skip:?}:\n{text}");
    }

    let mut server = Server::staykv();
    let mut conn = server.connect();
    call_str(&mut conn, &["SET", "kept", "1"]);
    call_str(&mut conn, &["SELECT", "9"]);
    call_str(&mut conn, &["FUNCTION", "LOAD", library]);
    call_str(&mut conn, &["FLUSHDB"]);
    call_str(&mut conn, &["SELECT", "0"]);
    call_str(&mut conn, &["SET", "after", "2"]);
    drop(conn);
    assert!(server.terminate().success());
    server.restart_with(&["--databases", "4"]);
    let mut conn = server.connect();
    assert_eq!(call_str(&mut conn, &["MGET", "kept", "after"]).items().len(), 2);
    assert_eq!(call_str(&mut conn, &["GET", "after"]), Val::Bulk(Some(b"2".to_vec())));
    assert_eq!(call_str(&mut conn, &["FCALL", "f", "0"]), Val::Int(1));
}

#[test]
fn second_server_on_the_same_dir_is_refused() {
    let server = Server::staykv();
    let out = Command::new(env!("CARGO_BIN_EXE_staykv"))
        .args(["--port", &common::free_port().to_string(), "--http-port", "0", "--dir"])
        .arg(server.dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(text.contains("in use by another StayKV process") && text.contains("LOCK"), "{text}");
    // The first one is unharmed.
    assert_eq!(server.cmd(&["PING"]), b"+PONG\r\n");
}

/// A data directory deleted under a running server: an fsync of a file with no name left
/// makes nothing durable (the next start finds nothing), so the log fails as on a failing
/// disk, instead of acknowledging writes into deleted files. The write whose fsync found it
/// out waits, as a write caught by a disk error does (docs/recovery.md); later ones are
/// refused. Under `everysec`, within the second its promise allows.
#[test]
fn writes_are_refused_once_the_data_directory_is_deleted() {
    for policy in ["always", "everysec"] {
        let server = Server::staykv_with(&["--fsync", policy]);
        assert_eq!(server.cmd(&["SET", "before", "1"]), b"+OK\r\n");
        std::fs::remove_dir_all(server.dir()).unwrap();
        let mut writer = server.connect();
        writer.send(&common::encode_str(&["SET", "after", "1"]));
        let mut conn = server.connect();
        // Sent while that SET's fsync is under way: INFO waits for the batches appended, but
        // not past the log's failure (the SET's batch will never be durable).
        assert!(info_text(&mut conn).contains("aof_last_write_status:"), "{policy}: INFO answered");
        let failed = wait_until(Duration::from_secs(5), || info_text(&mut conn).contains("aof_last_write_status:err"));
        assert!(failed, "{policy}: the log still reports good writes after the data directory was deleted");
        assert!(conn.cmd_text(&["SET", "later", "1"]).starts_with("MISCONF"), "{policy}");
        assert_eq!(conn.cmd_text(&["GET", "before"]), "1", "{policy}: reads go on");
    }
}

/// Mounts a 2 MiB tmpfs on `dir`; false (after saying why) where mounting is impossible.
fn mount_tmpfs(dir: &std::path::Path) -> bool {
    let out = Command::new("mount").args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"]).arg(dir).output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            println!("SKIPPED disk-full test: cannot mount a tmpfs: {}", String::from_utf8_lossy(&o.stderr).trim());
            false
        }
        Err(e) => {
            println!("SKIPPED disk-full test: cannot run mount: {e}");
            false
        }
    }
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A plain HTTP/1.1 GET on loopback: the whole response, head and body.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Writers at once in the disk-full test: as many writes stuck when the disk fills up, in
/// most of the 64 shards.
const WRITERS: usize = 32;

#[test]
fn disk_full_refuses_writes_keeps_reads_and_recovers() {
    let http_port = common::free_port();
    let mut server = Server::staykv_with(&["--fsync", "always", "--http-port", &http_port.to_string()]);
    server.kill();
    let dir = server.dir();
    // Start again on an empty tmpfs mounted over the data directory.
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    if !mount_tmpfs(&dir) {
        return;
    }
    let _unmount = Unmount(dir.clone());
    // A filler file that can be deleted later to free space.
    std::fs::write(dir.join("filler"), vec![0u8; 600 * 1024]).unwrap();
    server.restart();
    let port = server.port();
    let mut conn = server.connect();
    for i in 0..40 {
        call_str(&mut conn, &["SET", &format!("r{i}"), "rv"]);
    }
    let value = "d".repeat(4000);
    // The writers: the write each meets ENOSPC with is not acknowledged until the disk
    // recovers (its reply waits for the fsync); later writes are refused with MISCONF.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (stop, value) = (Arc::clone(&stop), value.clone());
            std::thread::spawn(move || {
                let mut conn = RawConn::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
                conn.stream().set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let (mut acked, mut refused) = (Vec::new(), Vec::new());
                for i in 0..5000 {
                    let key = format!("k{w}:{i}");
                    match call_str(&mut conn, &["SET", &key, &value]) {
                        Val::Simple(ok) if ok == "OK" => acked.push(key),
                        Val::Error(e) => refused.push(e),
                        other => panic!("unexpected {other:?}"),
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                (acked, refused)
            })
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(60), || call_str(&mut conn, &["INFO", "persistence"])
            .text()
            .contains("aof_last_write_status:err")),
        "the disk never filled up"
    );
    // Writes are refused at once; reads keep working; the process stays up.
    let refused = call_str(&mut conn, &["SET", "more", "x"]);
    assert!(matches!(&refused, Val::Error(e) if e.starts_with("MISCONF")), "{refused:?}");
    println!("disk full: {refused:?}");
    // A read waits only for the writes to its own keys that are not yet durable (here, the
    // writers' last ones, stuck), not for every write to its shard: with a write stuck in
    // most shards, reads of other keys answer. (One may share a stuck key's bucket.)
    let mut answered = 0;
    for i in 0..40 {
        let mut c = server.connect();
        c.stream().set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        if let Ok(reply) = c.try_cmd(&["STRLEN", &format!("r{i}")]) {
            assert_eq!(reply, b":2\r\n", "r{i}");
            answered += 1;
        }
    }
    assert!(answered >= 39, "only {answered} of 40 reads answered while the disk was full");
    // The health check says so, and still answers 200: reads are served.
    let health = http_get(http_port, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200") && health.contains(r#""status":"read-only""#), "{health}");
    assert!(health.contains("MISCONF"), "{health}");
    // A compaction fails too, and INFO and /metrics say so until one succeeds.
    let failed_by = std::time::Instant::now() + Duration::from_secs(30);
    while !info_text(&mut conn).contains("aof_rewrites_consecutive_failures:1") {
        assert!(std::time::Instant::now() < failed_by, "no failed compaction: {}", info_text(&mut conn));
        call_str(&mut conn, &["BGREWRITEAOF"]);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(info_text(&mut conn).contains("aof_last_bgrewrite_status:err"));
    assert!(http_get(http_port, "/metrics").contains("staykv_last_compaction_success 0"));
    assert!(server.is_running());
    // Free space: writes come back.
    stop.store(true, Ordering::Relaxed);
    std::fs::remove_file(dir.join("filler")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || matches!(call_str(&mut conn, &["SET", "after", "ok"]), Val::Simple(_))),
        "writes did not resume after space was freed"
    );
    assert!(call_str(&mut conn, &["INFO", "persistence"]).text().contains("aof_last_write_status:ok"));
    assert!(http_get(http_port, "/healthz").ends_with(r#"{"status":"ok"}"#));
    call_str(&mut conn, &["BGREWRITEAOF"]);
    assert!(
        wait_until(Duration::from_secs(30), || info_text(&mut conn).contains("aof_rewrites_consecutive_failures:0")),
        "the compaction after the disk came back failed: {}",
        info_text(&mut conn)
    );
    assert!(http_get(http_port, "/metrics").contains("staykv_last_compaction_success 1"));
    let (mut acked, mut refused_by_writer) = (Vec::new(), Vec::new());
    for writer in writers {
        let (a, r) = writer.join().unwrap();
        acked.extend(a);
        refused_by_writer.extend(r);
    }
    println!(
        "disk full: {} writes acknowledged, {} refused with MISCONF, writes resumed after freeing space",
        acked.len(),
        refused_by_writer.len()
    );
    assert!(refused_by_writer.iter().all(|e| e.starts_with("MISCONF")), "{refused_by_writer:?}");
    drop(conn);
    server.kill();
    server.restart();
    let mut conn = server.connect();
    for key in &acked {
        assert_eq!(call_str(&mut conn, &["STRLEN", key]), Val::Int(4000), "{key} lost");
    }
    assert_eq!(call_str(&mut conn, &["GET", "after"]), Val::Bulk(Some(b"ok".to_vec())));
    drop(conn);
    server.kill();
}

fn info_text(conn: &mut RawConn) -> String {
    call_str(conn, &["INFO", "persistence"]).text()
}

/// `staykv_log_fsynced_seq` and `staykv_log_last_seq` from INFO persistence.
fn fsynced_and_last(conn: &mut RawConn) -> (u64, u64) {
    let info = String::from_utf8(conn.cmd(&["INFO", "persistence"])).unwrap();
    let field = |name: &str| -> u64 {
        info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok()).unwrap()
    };
    (field("staykv_log_fsynced_seq"), field("staykv_log_last_seq"))
}

#[test]
fn waitaof_fsyncs_the_clients_writes_under_every_policy() {
    for policy in ["no", "everysec", "always"] {
        let server = Server::staykv_with(&["--fsync", policy]);
        let mut conn = server.connect();
        // Pipelined: WAITAOF runs right after the writes, before any fsync the policy makes.
        let mut cmds: Vec<Vec<Vec<u8>>> = (0..50).map(set_cmd).collect();
        cmds.push(vec![b"WAITAOF".to_vec(), b"1".to_vec(), b"0".to_vec(), b"0".to_vec()]);
        let replies = pipeline(&mut conn, &cmds);
        assert_eq!(replies.last(), Some(&Val::Array(Some(vec![Val::Int(1), Val::Int(0)]))), "{policy}");
        let (fsynced, last) = fsynced_and_last(&mut conn);
        assert!(fsynced >= last, "{policy}: WAITAOF answered 1 but the log is fsynced to {fsynced} of {last}");

        // No replicas: asking for one waits out the timeout, then answers 0 replicas.
        let started = Instant::now();
        assert_eq!(
            call_str(&mut conn, &["WAITAOF", "1", "1", "150"]),
            Val::Array(Some(vec![Val::Int(1), Val::Int(0)]))
        );
        assert!(started.elapsed() >= Duration::from_millis(150), "{policy}: returned before the timeout");
        assert_eq!(call_str(&mut conn, &["WAIT", "0", "0"]), Val::Int(0));
        println!("{policy}: WAITAOF 1 0 0 -> [1, 0], log fsynced to {fsynced} of {last}");
    }
}
