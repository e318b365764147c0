//! TLS on both front ends: `redis-cli --tls` and `curl` over HTTPS work with a certificate
//! made by the test; plaintext clients on the TLS ports fail cleanly and the server stays up;
//! with `--tls-ca-cert`, a client without a certificate is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, have_tool};

/// A temporary directory with the CA, server and client certificates, if `openssl` (to make
/// them) and `redis-cli` (the TLS client of every test here) are installed.
fn certificates() -> Option<tempfile::TempDir> {
    if !have_tool("openssl", "TLS certificates") || !have_tool("redis-cli", "TLS client") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    Some(dir)
}

/// A self-signed CA and a server certificate it signed, for 127.0.0.1, plus a client
/// certificate from the same CA.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl").args(args).current_dir(dir).stderr(Stdio::null()).status().unwrap();
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    ]);
    for name in ["server", "client"] {
        let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}")]);
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
    }
}

struct TlsServer {
    child: Child,
    port: u16,
    http_port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, extra: &[&str]) -> TlsServer {
    let (port, http_port) = (free_port(), free_port());
    let data = dir.join(format!("data-{port}"));
    let mut args = vec![
        "--port".to_string(),
        port.to_string(),
        "--http-port".to_string(),
        http_port.to_string(),
        "--dir".to_string(),
        data.display().to_string(),
        "--tls-cert".to_string(),
        dir.join("server.pem").display().to_string(),
        "--tls-key".to_string(),
        dir.join("server.key").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let log = std::fs::File::create(dir.join(format!("server-{port}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_staykv"))
        .args(&args)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let server = TlsServer { child, port, http_port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn redis_cli(dir: &Path, port: u16, tls_args: &[&str], command: &[&str]) -> Output {
    let mut args = vec!["-p".to_string(), port.to_string()];
    args.extend(tls_args.iter().map(|a| a.replace("{dir}", &dir.display().to_string())));
    args.extend(command.iter().map(|s| s.to_string()));
    Command::new("redis-cli").args(&args).output().unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn tls_on_resp_and_http_and_plaintext_refused() {
    if !have_tool("curl", "HTTPS client") {
        return;
    }
    let Some(dir) = certificates() else { return };
    let server = start(dir.path(), &[]);
    let tls = ["--tls", "--cacert", "{dir}/ca.pem"];
    // The port accepts before recovery ends (clients get -LOADING meanwhile).
    let deadline = Instant::now() + Duration::from_secs(20);
    while text(&redis_cli(dir.path(), server.port, &tls, &["PING"])) != "PONG" {
        assert!(Instant::now() < deadline, "server did not finish loading");
        std::thread::sleep(Duration::from_millis(50));
    }

    assert_eq!(text(&redis_cli(dir.path(), server.port, &tls, &["SET", "greeting", "hello"])), "OK");
    assert_eq!(text(&redis_cli(dir.path(), server.port, &tls, &["GET", "greeting"])), "hello");

    // A value large enough to be written by reference (gathered pieces through TLS).
    let big: String = (0..100_000u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let mut set = Command::new("redis-cli")
        .args(["-p", &server.port.to_string(), "--tls", "--cacert"])
        .arg(dir.path().join("ca.pem"))
        .args(["-x", "SET", "big"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin.take().unwrap().write_all(big.as_bytes()).unwrap();
    assert_eq!(text(&set.wait_with_output().unwrap()), "OK");
    assert!(text(&redis_cli(dir.path(), server.port, &tls, &["GET", "big"])) == big, "large value changed over TLS");

    // A plaintext RESP client gets no answer it can use, and is disconnected.
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(!buf.starts_with(b"+PONG"), "plaintext must not be served: {buf:?}");

    let https = Command::new("curl")
        .args(["-s", "--cacert", &dir.path().join("ca.pem").display().to_string()])
        .arg(format!("https://127.0.0.1:{}/get/greeting", server.http_port))
        .output()
        .unwrap();
    assert_eq!(text(&https), r#"{"result":"hello"}"#);
    let plain_http = Command::new("curl")
        .args(["-s", "-m", "5"])
        .arg(format!("http://127.0.0.1:{}/get/greeting", server.http_port))
        .output()
        .unwrap();
    assert!(!plain_http.status.success(), "plaintext HTTP must fail on the TLS port");

    // The server is unaffected by the failed handshakes.
    assert_eq!(text(&redis_cli(dir.path(), server.port, &tls, &["PING"])), "PONG");
}

#[test]
fn client_certificates_are_required_with_a_ca() {
    let Some(dir) = certificates() else { return };
    let ca = dir.path().join("ca.pem").display().to_string();
    let server = start(dir.path(), &["--tls-ca-cert", &ca]);
    let without = redis_cli(dir.path(), server.port, &["--tls", "--cacert", "{dir}/ca.pem"], &["PING"]);
    assert_ne!(text(&without), "PONG");
    let with = redis_cli(
        dir.path(),
        server.port,
        &["--tls", "--cacert", "{dir}/ca.pem", "--cert", "{dir}/client.pem", "--key", "{dir}/client.key"],
        &["PING"],
    );
    assert_eq!(text(&with), "PONG", "{}", String::from_utf8_lossy(&with.stderr));
}

/// `CLIENT INFO` over TLS names the address the client reached, also when the server
/// listens on every address (`laddr=0.0.0.0:...` would tell the client nothing).
#[test]
fn client_info_over_tls_names_the_local_address() {
    let Some(dir) = certificates() else { return };
    // A wildcard address needs a password (and the HTTP API a token).
    let server = start(dir.path(), &["--bind", "0.0.0.0", "--requirepass", "pw", "--http-token", "t"]);
    let tls = ["--tls", "--cacert", "{dir}/ca.pem", "--no-auth-warning", "-a", "pw"];
    let deadline = Instant::now() + Duration::from_secs(20);
    let info = loop {
        let info = text(&redis_cli(dir.path(), server.port, &tls, &["CLIENT", "INFO"]));
        if info.starts_with("id=") {
            break info;
        }
        assert!(Instant::now() < deadline, "no CLIENT INFO answer: {info}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(info.contains(&format!(" laddr=127.0.0.1:{} ", server.port)), "{info}");
}
