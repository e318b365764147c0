//! What the by-hand benchmark programs share (`bench/*`): a minimal RESP reply reader, the
//! path of the `staykv` binary built beside them, free ports, /proc figures, percentiles.
//! Each program uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, ErrorKind};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn text(&self) -> String {
        match self {
            Reply::Simple(s) | Reply::Error(s) => s.clone(),
            Reply::Int(n) => n.to_string(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Reply::Bulk(None) | Reply::Array(None) => "(nil)".into(),
            Reply::Array(Some(items)) => format!("{items:?}"),
        }
    }
}

pub fn bad_data(what: String) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, what)
}

pub fn read_reply(r: &mut impl BufRead) -> std::io::Result<Reply> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line)? == 0 {
        return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "connection closed by the server"));
    }
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(bad_data(format!("bad reply line {:?}", String::from_utf8_lossy(&line))));
    }
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let number = |body: &str| body.parse::<i64>().map_err(|_| bad_data(format!("bad length/integer {body:?}")));
    Ok(match line[0] {
        b'+' => Reply::Simple(body),
        b'-' => Reply::Error(body),
        b':' => Reply::Int(number(&body)?),
        b'_' => Reply::Bulk(None),
        b'$' => {
            let len = number(&body)?;
            if len < 0 {
                Reply::Bulk(None)
            } else {
                let mut data = vec![0u8; len as usize + 2];
                r.read_exact(&mut data)?;
                data.truncate(len as usize);
                Reply::Bulk(Some(data))
            }
        }
        b'*' => {
            let count = number(&body)?;
            if count < 0 {
                Reply::Array(None)
            } else {
                Reply::Array(Some((0..count).map(|_| read_reply(r)).collect::<Result<_, _>>()?))
            }
        }
        other => return Err(bad_data(format!("unexpected reply type {:?}", other as char))),
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port on 127.0.0.1")
}

/// `target/<profile>/staykv`, beside `target/<profile>/examples/<this program>`.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("path of this program");
    exe.parent().and_then(|p| p.parent()).expect("target/<profile>/examples").join("staykv")
}

/// A `staykv` command with `args`, its output appended to `log`, and no `STAYKV_*` setting
/// inherited from this environment (the command line alone configures it).
pub fn staykv_command(args: &[&str], log: &std::path::Path) -> Command {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("server log file");
    let err = out.try_clone().expect("server log file");
    let mut cmd = Command::new(binary());
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STAYKV_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// A `kB` field of /proc/<pid>/status (`VmRSS:`, `VmHWM:`), 0 if unreadable.
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The `p` quantile (0..=1) of sorted samples, 0 for none.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
