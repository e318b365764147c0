//! The log: the server's on stdout, the tools' on stderr (their stdout is their report, or
//! the exported file itself); its level set at start (`--loglevel`) and changed while
//! running (`CONFIG SET loglevel`, with Redis's level names).

use std::io::IsTerminal;
use std::sync::OnceLock;

use parking_lot::Mutex;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::LogLevel;

/// The filter's reload handle and the level's Redis name, as `CONFIG GET loglevel` shows it.
static LEVEL: OnceLock<(reload::Handle<EnvFilter, Registry>, Mutex<&'static str>)> = OnceLock::new();

/// Redis's levels (`loglevel`) and the filter each stands for: Redis's `verbose` and
/// `notice` both come out as StayKV's info lines.
const REDIS_LEVELS: [(&str, &str); 4] =
    [("debug", "debug"), ("verbose", "info"), ("notice", "info"), ("warning", "warn")];

/// Where the log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

pub fn init(level: LogLevel, stream: LogStream) {
    // Redis has no level for errors alone: its nearest is `warning`.
    let redis_name = match level {
        LogLevel::Error | LogLevel::Warn => "warning",
        LogLevel::Info => "notice",
        LogLevel::Debug => "debug",
    };
    let (filter, handle) = reload::Layer::new(EnvFilter::new(level.name()));
    // Colour only for a person: escape codes would litter a log file or a journal.
    let lines = tracing_subscriber::fmt::layer().with_target(false);
    let lines = match stream {
        LogStream::Stdout => lines.with_ansi(std::io::stdout().is_terminal()).boxed(),
        LogStream::Stderr => lines.with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr).boxed(),
    };
    tracing_subscriber::registry().with(filter).with(lines).init();
    let _ = LEVEL.set((handle, Mutex::new(redis_name)));
}

/// `CONFIG GET loglevel`.
pub fn redis_level() -> &'static str {
    LEVEL.get().map_or("notice", |(_, name)| *name.lock())
}

/// `CONFIG SET loglevel`: one of Redis's level names, or the reason it is refused.
pub fn set_redis_level(name: &str) -> Result<(), String> {
    let Some(&(redis_name, directive)) = REDIS_LEVELS.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)) else {
        return Err("argument(s) must be one of the following: debug, verbose, notice, warning".into());
    };
    if let Some((handle, current)) = LEVEL.get() {
        handle.reload(EnvFilter::new(directive)).map_err(|e| e.to_string())?;
        *current.lock() = redis_name;
    }
    Ok(())
}
