//! Debian's `redis-tools` against StayKV: `redis-cli` typed at a terminal (its help and its
//! argument hints included), fed on stdin and given commands as arguments (RESP2 and RESP3),
//! `redis-cli --pipe` mass insertion of
//! 100,000 commands, `redis-cli --scan`, and `redis-benchmark`. Each scenario runs against
//! redis-server too when it is installed, so the expected output is Redis's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{have_tool, Server};

fn servers() -> Vec<Server> {
    let mut servers = vec![Server::staykv()];
    servers.extend(Server::redis());
    servers
}

fn have_tools() -> bool {
    have_tool("redis-cli", "redis-cli tests") && have_tool("redis-benchmark", "redis-benchmark tests")
}

/// Run `redis-cli -p PORT ARGS...` with `stdin` as its input; it must exit within 60 s.
fn cli(server: &Server, args: &[&str], stdin: &[u8]) -> Output {
    run_with_input(Command::new("redis-cli").arg("-p").arg(server.port().to_string()).args(args), stdin)
}

fn run_with_input(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        // Kill a hung client rather than hang the test run.
        for _ in 0..600 {
            std::thread::sleep(Duration::from_millis(100));
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return false;
            }
        }
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        true
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(!watchdog.join().unwrap(), "{cmd:?} did not finish within 60 s");
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What `help set` shows for SET's arguments.
const SET_HELP: &str = "  SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT \
                        unix-time-milliseconds|KEEPTTL]";

/// `redis-cli` in a real terminal (a pty from `script`), typed at line by line, with its
/// prompt and formatted replies. `TERM=dumb` makes linenoise read plain lines.
#[test]
fn redis_cli_interactive_terminal() {
    if !have_tools() || !have_tool("script", "the pty-driven redis-cli session") {
        return;
    }
    // (typed line, lines the terminal must show after it)
    let session: &[(&str, &[&str])] = &[
        ("PING", &["PONG"]),
        ("SET greeting \"hello world\"", &["OK"]),
        ("GET greeting", &["\"hello world\""]),
        ("SET session:abc alice EX 100", &["OK"]),
        ("EXISTS session:abc nosuch", &["(integer) 1"]),
        ("GET nosuch", &["(nil)"]),
        ("INCR counter", &["(integer) 1"]),
        ("INCRBY counter 41", &["(integer) 42"]),
        ("MSET a 1 b 2", &["OK"]),
        ("MGET a nosuch b", &["1) \"1\"", "2) (nil)", "3) \"2\""]),
        ("TTL greeting", &["(integer) -1"]),
        ("INCR greeting", &["(error) ERR value is not an integer or out of range"]),
        ("bogus arg", &["(error) ERR unknown command 'bogus', with args beginning with: 'arg' "]),
        ("SELECT 3", &["OK"]),
        ("DBSIZE", &["(integer) 0"]),
        ("SELECT 0", &["OK"]),
        ("DBSIZE", &["(integer) 5"]),
        // Help and hints come from COMMAND DOCS, or from redis-cli's own table when the server
        // has none: never a "summary: (null)" without arguments.
        (
            "help set",
            &["", SET_HELP, "  summary: Set the string value of a key", "  since: 1.0.0", "  group: string", ""],
        ),
    ];
    for server in servers() {
        let what = format!("{:?}", server.kind());
        let mut term = Terminal::open(&server);
        for (line, expected) in session {
            let shown = term.type_line(line);
            assert_eq!(shown, *expected, "{what}: after typing {line:?}");
        }
        // The prompt shows the selected database.
        term.type_line("SELECT 2");
        assert!(
            term.last_prompt().ends_with(&format!("127.0.0.1:{}[2]> ", server.port())),
            "{what}: prompt {:?}",
            term.last_prompt()
        );
        let ttl = term.type_line("TTL session:abc");
        assert!(ttl == ["(integer) -2"], "{what}: TTL in db 2 {ttl:?}");
        term.type_line("SELECT 0");
        let ttl = term.type_line("TTL session:abc");
        assert!(ttl == ["(integer) 100"] || ttl == ["(integer) 99"], "{what}: TTL {ttl:?}");
        term.quit();
    }
}

/// `line` without its colour codes (`ESC [ ... m`: redis-cli colours its help).
fn without_colors(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("\x1b[") {
        plain.push_str(&rest[..at]);
        let code = &rest[at + 2..];
        rest = code.find('m').map_or("", |end| &code[end + 1..]);
    }
    plain.push_str(rest);
    plain
}

/// While a command is typed, redis-cli shows its remaining arguments as a hint (on a real
/// terminal type; the dumb one above shows none): from COMMAND DOCS against Redis, from the
/// table built into redis-cli against StayKV, whose partial COMMAND DOCS once left it none.
#[test]
fn redis_cli_hints_a_commands_arguments_while_typing() {
    if !have_tools() || !have_tool("script", "the pty-driven redis-cli session") {
        return;
    }
    for server in servers() {
        let what = format!("{:?}", server.kind());
        let mut term = Terminal::open_as(&server, "xterm");
        term.input.write_all(b"set k ").unwrap();
        term.input.flush().unwrap();
        let hint = "value [NX|XX] [GET] [EX seconds|PX milliseconds";
        let deadline = Instant::now() + Duration::from_secs(20);
        while !without_colors(&term.text()).contains(hint) {
            assert!(Instant::now() < deadline, "{what}: no hint after 'set k '; screen:\n{:?}", term.text());
            std::thread::sleep(Duration::from_millis(10));
        }
        // Ctrl-U clears the line; Enter in a raw terminal is a carriage return.
        term.input.write_all(b"\x15quit\r").unwrap();
        term.wait_for_exit();
    }
}

/// A pty session of `redis-cli` run by `script`.
struct Terminal {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: Arc<Mutex<Vec<u8>>>,
    prompt: String,
    /// Prompts seen so far; each typed line is answered by one more prompt.
    prompts: usize,
}

/// A session a failed assertion left open is ended with its test: `script` is killed, and
/// the redis-cli it ran loses its terminal.
impl Drop for Terminal {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Terminal {
    fn open(server: &Server) -> Terminal {
        Terminal::open_as(server, "dumb")
    }

    /// A session in a terminal of type `term`, 200 columns wide (linenoise asks the terminal
    /// for its width when the pty has none, and would wait for the answer).
    fn open_as(server: &Server, term: &str) -> Terminal {
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &format!("stty cols 200 rows 40; redis-cli -p {}", server.port()), "/dev/null"])
            .env("TERM", term)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run script");
        let input = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        let mut term = Terminal { child, input, output, prompt: format!("127.0.0.1:{}", server.port()), prompts: 0 };
        term.wait_for_prompt(1);
        term
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).replace("\r\n", "\n")
    }

    fn wait_for_prompt(&mut self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.text().matches(&self.prompt).count() < count {
            assert!(Instant::now() < deadline, "no prompt #{count} from redis-cli; screen:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(10));
        }
        self.prompts = count;
    }

    /// Type a line and return the lines shown between the echo of the line and the next prompt.
    fn type_line(&mut self, line: &str) -> Vec<String> {
        self.input.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.input.flush().unwrap();
        self.wait_for_prompt(self.prompts + 1);
        let text = self.text();
        let segments: Vec<&str> = text.split(&self.prompt).collect();
        // segments[k] starts with the k-th prompt's tail ("> " or "[n]> ") and the echo.
        let answer = segments[self.prompts - 1];
        let after_echo = answer.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
        after_echo.lines().map(without_colors).collect()
    }

    fn last_prompt(&self) -> String {
        let text = self.text();
        let at = text.rfind(&self.prompt).unwrap();
        text[at..].to_string()
    }

    fn quit(mut self) {
        self.input.write_all(b"quit\n").unwrap();
        self.wait_for_exit();
    }

    fn wait_for_exit(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "redis-cli exited with {status}");
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("redis-cli did not quit; screen:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Commands piped into `redis-cli` (no terminal: raw output), and given as arguments.
#[test]
fn redis_cli_stdin_and_arguments() {
    if !have_tools() {
        return;
    }
    for server in servers() {
        let what = format!("{:?}", server.kind());
        let out = cli(&server, &[], b"SET k 1\nINCR k\nGET k\nGET missing\nSET s v EX 100\nTTL s\nbogus\n");
        assert!(out.status.success(), "{what}: {out:?}");
        // A second may tick between SET and TTL on a loaded machine.
        let text = stdout(&out).replace("\n99\n", "\n100\n");
        assert_eq!(text, "OK\n2\n2\n\nOK\n100\nERR unknown command 'bogus', with args beginning with: \n\n", "{what}");

        let out = cli(&server, &["--no-raw"], b"MSET a 1 b 2\nMGET a b c\nTTL a\n");
        assert_eq!(stdout(&out), "OK\n1) \"1\"\n2) \"2\"\n3) (nil)\n(integer) -1\n", "{what}");

        let out = cli(&server, &["SET", "arg key", "arg value", "EX", "100"], b"");
        assert_eq!((stdout(&out).as_str(), out.status.success()), ("OK\n", true), "{what}");
        let out = cli(&server, &["GET", "arg key"], b"");
        assert_eq!(stdout(&out), "arg value\n", "{what}");
        let out = cli(&server, &["--no-raw", "GET", "arg key"], b"");
        assert_eq!(stdout(&out), "\"arg value\"\n", "{what}");
        let out = cli(&server, &["TTL", "arg key"], b"");
        assert!(["100\n", "99\n"].contains(&stdout(&out).as_str()), "{what}: {out:?}");

        // -x: the last argument from stdin, binary-safe.
        let out = cli(&server, &["-x", "SET", "blob"], b"line 1\nline 2\x00\xff");
        assert_eq!(stdout(&out), "OK\n", "{what}");
        let out = cli(&server, &["STRLEN", "blob"], b"");
        assert_eq!(stdout(&out), "15\n", "{what}");
        // -n: another database; -r: repeat.
        let out = cli(&server, &["-n", "5", "-r", "3", "INCR", "in5"], b"");
        assert_eq!(stdout(&out), "1\n2\n3\n", "{what}");
        let out = cli(&server, &["-n", "5", "DBSIZE"], b"");
        assert_eq!(stdout(&out), "1\n", "{what}");
        // -e: an error reply is a non-zero exit.
        let out = cli(&server, &["-e", "INCR", "blob"], b"");
        assert!(!out.status.success(), "{what}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "ERR value is not an integer or out of range\n", "{what}");
    }
}

/// `redis-cli -3` speaks RESP3 and prints RESP3 types.
#[test]
fn redis_cli_resp3() {
    if !have_tools() {
        return;
    }
    for server in servers() {
        let what = format!("{:?}", server.kind());
        let out =
            cli(&server, &["-3", "--no-raw"], b"SET k v EX 100\nGET k\nGET missing\nCONFIG GET maxmemory\nTTL k\n");
        assert!(out.status.success(), "{what}: {out:?}");
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        // A map (%) reply and a RESP3 null (_) are printed as such only under RESP3.
        assert_eq!(lines[..4], ["OK", "\"v\"", "(nil)", "1# \"maxmemory\" => \"0\""], "{what}: {text}");
        assert!(["(integer) 100", "(integer) 99"].contains(&lines[4]), "{what}: {text}");
        let out = cli(&server, &["-3", "HELLO"], b"");
        assert!(stdout(&out).lines().any(|l| l == "proto 3"), "{what}: HELLO says {}", stdout(&out));
    }
}

/// `redis-cli --pipe` mass insertion of 100,000 SET commands, then DBSIZE = 100,000.
#[test]
fn redis_cli_pipe_mass_insertion() {
    if !have_tools() {
        return;
    }
    const N: usize = 100_000;
    let mut input = Vec::with_capacity(N * 48);
    for i in 0..N {
        let (key, value) = (format!("key:{i}"), format!("value:{i}"));
        input.extend_from_slice(&common::encode_str(&["SET", &key, &value]));
    }
    for server in servers() {
        let what = format!("{:?}", server.kind());
        let started = Instant::now();
        let out = cli(&server, &["--pipe"], &input);
        let text = stdout(&out);
        assert!(out.status.success(), "{what}: {out:?}");
        assert!(text.contains(&format!("errors: 0, replies: {N}")), "{what}: --pipe said {text}");
        eprintln!("{what}: --pipe of {N} SETs took {:?}", started.elapsed());
        let mut conn = server.connect();
        assert_eq!(conn.cmd_text(&["DBSIZE"]), N.to_string(), "{what}");
        assert_eq!(conn.cmd_text(&["GET", "key:0"]), "value:0", "{what}");
        assert_eq!(conn.cmd_text(&["GET", "key:99999"]), "value:99999", "{what}");
    }
}

/// `redis-cli --scan` (a full SCAN driven by redis-cli) lists each key exactly once.
#[test]
fn redis_cli_scan() {
    if !have_tools() {
        return;
    }
    let mut input = Vec::new();
    for i in 0..1000 {
        input.extend_from_slice(&common::encode_str(&["SET", &format!("user:{i}"), "x"]));
    }
    for i in 0..100 {
        input.extend_from_slice(&common::encode_str(&["SET", &format!("other:{i}"), "x"]));
    }
    for server in servers() {
        let what = format!("{:?}", server.kind());
        let out = cli(&server, &["--pipe"], &input);
        assert!(out.status.success(), "{what}: {out:?}");
        let out = cli(&server, &["--scan", "--pattern", "user:*"], b"");
        assert!(out.status.success(), "{what}: {out:?}");
        let text = stdout(&out);
        let keys: Vec<&str> = text.lines().collect();
        let unique: HashSet<&str> = keys.iter().copied().collect();
        let expected: HashSet<String> = (0..1000).map(|i| format!("user:{i}")).collect();
        assert_eq!(keys.len(), unique.len(), "{what}: duplicates in --scan");
        assert_eq!(unique, expected.iter().map(String::as_str).collect(), "{what}");
    }
}

/// `redis-benchmark -t ping,set,get,incr,mset -n 2000 -q` completes with no error (7.0's
/// benchmark exits at the first error reply), over RESP2 and RESP3, and every request
/// reached the server.
/// `redis-cli --memkeys` (SCAN, TYPE, MEMORY USAGE per key) names the biggest key of each type.
#[test]
fn redis_cli_memkeys() {
    if !have_tools() {
        return;
    }
    for server in servers() {
        let what = format!("{:?}", server.kind());
        let input = b"SET small x\nSET big 0123456789012345678901234567890123456789\nRPUSH list a b c\n";
        cli(&server, &[], input);
        let text = stdout(&cli(&server, &["--memkeys"], b""));
        assert!(!text.contains("failed"), "{what}: --memkeys said {text}");
        assert!(text.contains("Biggest string found '\"big\"'"), "{what}: --memkeys said {text}");
        assert!(text.contains("Biggest   list found '\"list\"'"), "{what}: --memkeys said {text}");
    }
}

#[test]
fn redis_benchmark() {
    if !have_tools() {
        return;
    }
    const N: u64 = 2000;
    for server in servers() {
        for resp3 in [false, true] {
            let what = format!("{:?} resp3={resp3}", server.kind());
            let mut conn = server.connect();
            assert_eq!(conn.cmd_text(&["CONFIG", "RESETSTAT"]), "OK", "{what}");
            let mut cmd = Command::new("redis-benchmark");
            cmd.args(["-p", &server.port().to_string(), "-t", "ping,set,get,incr,mset", "-n", &N.to_string(), "-q"]);
            if resp3 {
                cmd.arg("-3");
            }
            let out = run_with_input(&mut cmd, b"");
            let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "{what}: redis-benchmark failed: {text}");
            for bad in ["rror", "ERR", "WARN", "Could not"] {
                assert!(!text.contains(bad), "{what}: redis-benchmark printed {bad:?}: {text}");
            }
            for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"] {
                let done = text
                    .split(['\r', '\n'])
                    .any(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second"));
                assert!(done, "{what}: no result line for {test}: {text}");
            }
            let stats = conn.cmd_text(&["INFO", "commandstats"]);
            for (command, min_calls) in [("ping", 2 * N), ("set", N), ("get", N), ("incr", N), ("mset", N)] {
                let line = stats
                    .lines()
                    .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
                    .unwrap_or_else(|| panic!("{what}: no cmdstat_{command} in {stats}"));
                let field = |name: &str| {
                    line.split([':', ','])
                        .find_map(|f| f.strip_prefix(&format!("{name}=")))
                        .map(|v| v.parse::<u64>().unwrap())
                };
                assert!(field("calls").unwrap() >= min_calls, "{what}: {line}");
                assert_eq!(field("failed_calls"), Some(0), "{what}: {line}");
                assert_eq!(field("rejected_calls"), Some(0), "{what}: {line}");
            }
            // The data really is there: the benchmark's counter and MSET keys.
            assert!(conn.cmd_text(&["GET", "counter:__rand_int__"]).parse::<u64>().unwrap() >= N, "{what}");
            assert_eq!(conn.cmd_text(&["EXISTS", "key:__rand_int__"]), "1", "{what}");
        }
    }
}
