//! MIGRATE's side of I/O: one connection to the target, the commands the engine built
//! written at once, a line read back per command (AUTH, SELECT and RESTORE answer in one).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use staykv_engine::host::{MigrateTarget, TargetFailure};
use staykv_resp::{Protocol, Reply};

/// Sends `commands` to `target`; returns each reply's first line, as far as they came.
pub fn exchange(target: &MigrateTarget, commands: &[Vec<Bytes>]) -> (Vec<String>, Option<TargetFailure>) {
    let timeout = Duration::from_millis(target.timeout_ms.max(1));
    let stream = match connect(target, timeout) {
        Ok(stream) => stream,
        Err(failure) => return (Vec::new(), Some(failure)),
    };
    let mut request = BytesMut::new();
    for command in commands {
        Reply::bulks(command.iter().cloned()).encode(Protocol::Resp2, &mut request);
    }
    if (&stream).write_all(&request).is_err() {
        return (Vec::new(), Some(TargetFailure::Write));
    }
    let mut reader = BufReader::new(stream);
    let mut lines = Vec::with_capacity(commands.len());
    for _ in commands {
        let mut line = String::new();
        // Bounded: a target that never ends a line cannot fill this server's memory.
        match (&mut reader).take(crate::import::MAX_REPLY_LINE as u64).read_line(&mut line) {
            Ok(n) if n > 0 && line.ends_with('\n') => lines.push(line.trim_end_matches(['\r', '\n']).to_string()),
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
