//! Server options that shape the process and its sockets: `--threads`, from the command line and
//! from the `--config` file, the refusal of values out of bounds before anything starts, and
//! transparent huge pages turned off as Redis turns them off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod persist_common;

use std::io::{Read, Write};

use common::Server;
use persist_common::staykv;

/// The start-up log's count of the runtime's worker threads, as the runtime reports it.
fn command_threads(server: &Server) -> usize {
    let log = server.log();
    let line = log.lines().find(|l| l.contains("command threads: ")).unwrap_or_else(|| panic!("no count in:\n{log}"));
    line.rsplit(": ").next().and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("bad count: {line}"))
}

#[test]
fn threads_sets_how_many_threads_run_commands() {
    let one = Server::staykv_with(&["--threads", "1"]);
    assert_eq!(command_threads(&one), 1);
    assert_eq!(one.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(one.cmd(&["GET", "k"]), b"$1\r\nv\r\n");

    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("staykv.toml");
    std::fs::write(&file, "threads = 3\n").unwrap();
    let from_file = Server::staykv_with(&["--config", &file.to_string_lossy()]);
    assert_eq!(command_threads(&from_file), 3);
    assert_eq!(from_file.cmd(&["PING"]), b"+PONG\r\n");
    // The command line wins over the file, as for every option.
    let overridden = Server::staykv_with(&["--config", &file.to_string_lossy(), "--threads", "2"]);
    assert_eq!(command_threads(&overridden), 2);
}

#[test]
fn threads_out_of_bounds_are_refused_before_anything_starts() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("data");
    for threads in ["0", "1025", "many"] {
        // The flag wins over a `STAYKV_THREADS` the environment may hold.
        let out = staykv(&["--port", "0", "--http-port", "0", "--threads", threads, "--dir", &dir.to_string_lossy()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--threads {threads} accepted");
        assert!(stderr.contains("--threads"), "--threads {threads}: {stderr}");
        assert!(!stderr.contains("panicked"), "--threads {threads}: {stderr}");
    }
    assert!(!dir.exists(), "a refused start created the data directory");
}

/// Durations and limits out of the range CONFIG SET takes are refused at start: a timeout
/// past `i32::MAX` seconds overflowed each connection's deadline (every connection, or every
/// HTTP request, panicked), and a query-buffer limit under 1mb closed every client at once.
/// The largest durations accepted serve.
#[test]
fn durations_and_limits_out_of_range_are_refused_at_start() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("data");
    for (flag, value, refusal) in [
        ("--timeout", "2147483648", "--timeout must be between 0 and 2147483647"),
        ("--http-header-timeout", "0", "--http-header-timeout must be between 1 and 2147483647 seconds"),
        ("--http-header-timeout", "18446744073709551615", "--http-header-timeout must be between 1 and"),
        ("--client-query-buffer-limit", "1000", "--client-query-buffer-limit must be at least 1mb"),
    ] {
        let out = staykv(&[flag, value, "--port", "0", "--http-port", "0", "--dir", &dir.to_string_lossy()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(refusal), "{flag} {value}: {stderr}");
    }
    assert!(!dir.exists(), "a refused start created the data directory");

    let http_port = common::free_port().to_string();
    let longest = ["--timeout", "2147483647", "--http-header-timeout", "2147483647", "--http-port", &http_port];
    let server = Server::staykv_with(&longest);
    assert_eq!(server.cmd(&["PING"]), b"+PONG\r\n");
    let mut http = std::net::TcpStream::connect(("127.0.0.1", http_port.parse::<u16>().unwrap())).unwrap();
    http.write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// Sizes take Redis's units on the command line and in the config file alike (`1gb`, as in
/// redis.conf), or plain bytes; `maxclients` must allow one client.
#[test]
fn sizes_take_units_everywhere_and_maxclients_must_allow_one() {
    let maxmemory = |server: &Server| common::frame_text(&server.cmd(&["CONFIG", "GET", "maxmemory"]));
    let flag = Server::staykv_with(&["--maxmemory", "1gb"]);
    assert_eq!(maxmemory(&flag), "*2\r\n$9\r\nmaxmemory\r\n$10\r\n1073741824\r\n");
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("staykv.toml");
    std::fs::write(&file, "maxmemory = \"64mb\"\nlog-segment-size = \"8mb\"\nproto-max-bulk-len = 2097152\n").unwrap();
    let from_file = Server::staykv_with(&["--config", &file.to_string_lossy()]);
    assert_eq!(maxmemory(&from_file), "*2\r\n$9\r\nmaxmemory\r\n$8\r\n67108864\r\n");
    assert!(from_file.log().contains("log-segment-size=8388608"), "{}", from_file.log());
    assert!(from_file.log().contains("proto-max-bulk-len=2097152"), "{}", from_file.log());
    // The file is the operator's: CONFIG REWRITE says it is not rewritten, and why.
    let rewrite = common::frame_text(&from_file.cmd(&["CONFIG", "REWRITE"]));
    assert!(rewrite.starts_with("ERR CONFIG REWRITE is not supported") && rewrite.contains("--config"), "{rewrite}");
    let without_file = common::frame_text(&flag.cmd(&["CONFIG", "REWRITE"]));
    assert_eq!(without_file, "ERR The server is running without a config file");

    let dir = scratch.path().join("data");
    std::fs::write(&file, "maxmemory = \"lots\"\n").unwrap();
    let bad_size = staykv(&["--config", &file.to_string_lossy(), "--port", "0", "--dir", &dir.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&bad_size.stderr);
    assert!(!bad_size.status.success() && stderr.contains("'lots' is not a memory value"), "{stderr}");
    let no_clients = staykv(&["--maxclients", "0", "--port", "0", "--http-port", "0", "--dir", &dir.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&no_clients.stderr);
    assert!(!no_clients.status.success() && stderr.contains("--maxclients must be at least 1"), "{stderr}");
    let keepalive =
        staykv(&["--tcp-keepalive", "2147483648", "--port", "0", "--http-port", "0", "--dir", &dir.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&keepalive.stderr);
    assert!(!keepalive.status.success() && stderr.contains("--tcp-keepalive must be between 0 and"), "{stderr}");
    let nowhere = staykv(&["--port", "0", "--http-port", "0", "--dir", &dir.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&nowhere.stderr);
    assert!(!nowhere.status.success() && stderr.contains("would listen nowhere"), "{stderr}");
    // Usage errors all exit as clap's do.
    for refused in [&bad_size, &no_clients, &keepalive, &nowhere] {
        assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
    }
    assert!(!dir.exists(), "a refused start created the data directory");
}

/// Transparent huge pages are off for the server process (Redis's `disable-thp yes`): with
/// them on, RSS counts 2 MiB pages in full (BENCHMARKS.md, "Transparent huge pages off").
#[test]
fn transparent_huge_pages_are_off_for_the_server() {
    let server = Server::staykv();
    let pid = server.pid().expect("the server's pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) else {
        eprintln!("skipped: this kernel's /proc/PID/status has no THP_enabled line");
        return;
    };
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
}

/// The server's end of a loopback connection in `/proc/net/tcp`: its timer (`tr`: 0 none,
/// 1 retransmission, 2 keepalive) and the clock ticks (1/100 s) until the timer fires.
fn server_socket_timer(server_port: u16, client_port: u16) -> Option<(u8, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap() + &std::fs::read_to_string("/proc/net/tcp6").unwrap();
    let port_of = |address: &str| address.rsplit(':').next().and_then(|hex| u16::from_str_radix(hex, 16).ok());
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if port_of(fields[1])? != server_port || port_of(fields[2])? != client_port {
            return None;
        }
        let (timer, ticks) = fields[5].split_once(':')?;
        Some((timer.parse().ok()?, u64::from_str_radix(ticks, 16).ok()?))
    })
}

/// A new connection's keepalive, as its server's socket shows it once the client has
/// acknowledged the reply (until then a retransmission timer stands in its place). The
/// seconds are rounded to tens: the time the test takes must not show.
fn keepalive_of_a_new_connection(server: &Server) -> (String, common::RawConn) {
    let mut conn = server.connect();
    conn.cmd(&["PING"]);
    let client_port = conn.stream().local_addr().unwrap().port();
    let mut timer = None;
    common::wait_until(std::time::Duration::from_secs(2), || {
        timer = server_socket_timer(server.port(), client_port);
        timer.is_some_and(|(kind, _)| kind != 1)
    });
    let (kind, ticks) = timer.unwrap_or_else(|| panic!("no socket of port {client_port} in /proc/net/tcp"));
    (format!("timer {kind}, {} s", (ticks / 100 + 5) / 10 * 10), conn)
}

/// Redis's `tcp-keepalive`: a RESP connection gets keepalive probes once it has been idle
/// that many seconds (300 by default), CONFIG SET changes it for the connections accepted
/// after it, and 0 turns the probes off; each server's sockets read from `/proc/net/tcp`.
#[test]
fn tcp_keepalive_probes_idle_connections_as_redis_does() {
    common::same_as_redis(
        |server| {
            let mut admin = server.connect();
            let (default, _first) = keepalive_of_a_new_connection(server);
            let mut lines = vec![default, admin.cmd_text(&["CONFIG", "GET", "tcp-keepalive"])];
            lines.push(admin.cmd_text(&["CONFIG", "SET", "tcp-keepalive", "60"]));
            lines.push(keepalive_of_a_new_connection(server).0);
            lines.push(admin.cmd_text(&["CONFIG", "SET", "tcp-keepalive", "0"]));
            lines.push(keepalive_of_a_new_connection(server).0);
            for bad in ["-1", "2147483648", "ten"] {
                lines.push(admin.cmd_text(&["CONFIG", "SET", "tcp-keepalive", bad]));
            }
            lines.push(admin.cmd_text(&["CONFIG", "GET", "tcp-keepalive"]));
            lines
        },
        &["timer 2, 300 s", "timer 2, 60 s", "timer 0, 0 s"],
    );
}

/// The soft and hard open-files limits of process `pid`, from `/proc/<pid>/limits`.
fn open_files_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1])
}

/// A shell's low open-files limit is raised as far as the hard limit allows, towards
/// maxclients RESP and as many HTTP clients; where even the RESP clients do not fit,
/// maxclients is lowered to what does and the log says so, as Redis does.
#[test]
fn a_low_open_files_limit_is_raised_or_maxclients_lowered() {
    let hard = open_files_limits(std::process::id()).1;
    let scratch = tempfile::tempdir().unwrap();
    for (shell, soft_after, maxclients) in [
        ("ulimit -Sn 64", hard.min(2 * 10_000 + 32), (hard.min(20_032) - 32).min(10_000)),
        ("ulimit -Sn 64 && ulimit -Hn 264", 264, 232),
    ] {
        let port = common::free_port();
        let log_path = scratch.path().join(format!("{port}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{shell} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_staykv"))
            .args(["--port", &port.to_string(), "--http-port", "0", "--dir"])
            .arg(scratch.path().join(format!("data-{port}")))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let ready = common::wait_until(std::time::Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok_and(|s| common::RawConn::from_stream(s).try_cmd(&["PING"]).is_ok_and(|r| r == b"+PONG\r\n"))
        });
        let printed = std::fs::read_to_string(&log_path).unwrap();
        assert!(ready, "{shell}: {printed}");
        assert_eq!(open_files_limits(child.id()).0, soft_after, "{shell}");
        let mut conn = common::RawConn::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        let reply = common::frame_text(&conn.cmd(&["CONFIG", "GET", "maxclients"]));
        assert!(reply.ends_with(&format!("\r\n{maxclients}\r\n")), "{shell}: {reply}");
        assert_eq!(printed.contains("maxclients lowered from 10000"), maxclients < 10_000, "{shell}: {printed}");
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `loglevel` in CONFIG GET/SET with Redis's level names and error text; on StayKV the
/// change takes effect at once: at `warning` the info lines stop, at `notice` they are back.
#[test]
fn loglevel_changes_at_run_time_as_in_redis() {
    common::same_as_redis(
        |server| {
            let mut conn = server.connect();
            let mut lines = vec![conn.cmd_text(&["CONFIG", "GET", "loglevel"])];
            for level in ["warning", "loud", "DEBUG", "verbose", "notice"] {
                lines.push(conn.cmd_text(&["CONFIG", "SET", "loglevel", level]));
                lines.push(conn.cmd_text(&["CONFIG", "GET", "loglevel"]));
            }
            lines
        },
        &["argument(s) must be one of the following: debug, verbose, notice, warning"],
    );
    let server = Server::staykv();
    let mut conn = server.connect();
    // SIGHUP is logged at info, and otherwise ignored.
    let hup = |server: &Server| {
        let pid = server.pid().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        conn_ping(server);
    };
    let logged = |server: &Server| server.log().matches("SIGHUP received").count();
    conn.cmd(&["CONFIG", "SET", "loglevel", "warning"]);
    hup(&server);
    std::thread::sleep(std::time::Duration::from_millis(300));
    conn.cmd(&["CONFIG", "SET", "loglevel", "notice"]);
    hup(&server);
    assert!(common::wait_until(std::time::Duration::from_secs(10), || logged(&server) > 0), "{}", server.log());
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The signals are taken in order: the first, at warning, left no line.
    assert_eq!(logged(&server), 1, "{}", server.log());
}

/// A round trip on a new connection: what the server did before it is done.
fn conn_ping(server: &Server) {
    assert_eq!(server.connect().cmd(&["PING"]), b"+PONG\r\n");
}

/// CONFIG parameters without a flag can be made lasting in the config file: they apply at
/// start as CONFIG SET applies them. A value CONFIG SET would refuse, a key that is neither a
/// flag nor a parameter, and `appendfsync` (its flag is `fsync`) refuse the start as usage
/// errors, before the data directory is made.
#[test]
fn config_parameters_in_the_file_apply_at_start() {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("staykv.toml");
    let settings = "notify-keyspace-events = \"Ex\"\nmaxmemory-samples = 10\nlazyfree-lazy-eviction = true\n";
    std::fs::write(&file, settings).unwrap();
    let server = Server::staykv_with(&["--config", &file.to_string_lossy()]);
    for (name, value) in
        [("notify-keyspace-events", "xE"), ("maxmemory-samples", "10"), ("lazyfree-lazy-eviction", "yes")]
    {
        let reply = common::frame_text(&server.cmd(&["CONFIG", "GET", name]));
        assert!(reply.ends_with(&format!("${}\r\n{value}\r\n", value.len())), "{name}: {reply:?}");
    }
    // In the file's order, whatever the case: of two names for one parameter the later wins.
    for (text, threshold) in [
        ("busy-reply-threshold = 100\nlua-time-limit = 200\n", "200"),
        ("lua-time-limit = 200\nBUSY-REPLY-THRESHOLD = 100\n", "100"),
    ] {
        std::fs::write(&file, text).unwrap();
        let server = Server::staykv_with(&["--config", &file.to_string_lossy()]);
        let reply = common::frame_text(&server.cmd(&["CONFIG", "GET", "busy-reply-threshold"]));
        assert!(reply.ends_with(&format!("${}\r\n{threshold}\r\n", threshold.len())), "{text}: {reply:?}");
    }
    let dir = scratch.path().join("data");
    for (text, error) in [
        ("maxmemory-samples = \"abc\"\n", "'maxmemory-samples') - argument couldn't be parsed into an integer"),
        ("nosuch = 1\n", "unknown option 'nosuch'"),
        ("appendfsync = \"no\"\n", "'appendfsync' is set with 'fsync'"),
        ("hz = [1]\n", "'hz' takes a string, a number or a boolean"),
    ] {
        std::fs::write(&file, text).unwrap();
        let refused = staykv(&["--config", &file.to_string_lossy(), "--port", "0", "--dir", &dir.to_string_lossy()]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(error), "{text}: {stderr}");
        assert_eq!(refused.status.code(), Some(2), "{text}: {stderr}");
    }
    assert!(!dir.exists(), "a refused start created the data directory");
}
