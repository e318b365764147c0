//! MIGRATE's side of I/O: one connection to the target, the commands the engine built
//! written at once, a line read back per command (AUTH, SELECT and RESTORE answer in one).

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use staykv_engine::host::{MigrateTarget, TargetFailure};

/// Sends `commands` to `target`; returns each reply's first line, as far as they came.
pub fn exchange(target: &MigrateTarget, commands: &[Vec<Bytes>]) -> (Vec<String>, Option<TargetFailure>) {
    let timeout = Duration::from_millis(target.timeout_ms.max(1));
    let stream = match connect(target, timeout) {
        Ok(stream) => stream,
        Err(failure) => return (Vec::new(), Some(failure)),
    };
    let mut request = Vec::new();
    for command in commands {
        encode(command, &mut request);
    }
    if (&stream).write_all(&request).is_err() {
        return (Vec::new(), Some(TargetFailure::Write));
    }
    let mut reader = BufReader::new(stream);
    let mut lines = Vec::with_capacity(commands.len());
    for _ in commands {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 => lines.push(line.trim_end_matches(['\r', '\n']).to_string()),
            _ => return (lines, Some(TargetFailure::Read)),
        }
    }
    (lines, None)
}

/// A connection to the target, or why there is none. A refused connection reads as a failed
/// write, as Redis reports it: its non-blocking connect learns of the refusal only when it
/// writes.
fn connect(target: &MigrateTarget, timeout: Duration) -> Result<TcpStream, TargetFailure> {
    let addrs = (target.host.as_str(), target.port).to_socket_addrs().map_err(|_| TargetFailure::Connect)?;
    let mut failure = TargetFailure::Connect;
    for addr in addrs.filter(|_| target.port != 0) {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                let ready = stream.set_read_timeout(Some(timeout)).and(stream.set_write_timeout(Some(timeout)));
                return ready.and(stream.set_nodelay(true)).map(|()| stream).map_err(|_| TargetFailure::Connect);
            }
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => failure = TargetFailure::Write,
            Err(_) => {}
        }
    }
    Err(failure)
}

/// A command as a RESP array of bulk strings.
fn encode(command: &[Bytes], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", command.len()).as_bytes());
    for arg in command {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}
