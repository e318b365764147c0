//! Per-client limits under Redis's names (`timeout`, `client-query-buffer-limit`,
//! `proto-max-bulk-len`, `client-output-buffer-limit`, `maxmemory-clients`), readable by every
//! connection without locking and changeable at run time with `CONFIG SET`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Redis's memory notation: `100`, `1k` (1000), `1kb` (1024), `5mb`, `1gb`..., any case;
/// digits and a unit, nothing else. `None` for anything else or past `u64`.
pub fn parse_memory(text: &str) -> Option<u64> {
    let (digits, unit) = split_memory(text)?;
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// A memory value for CONFIG SET, read as Redis's `memtoull` reads it: no digits is 0,
/// digits past `u64` are its maximum (`strtoull`), and the unit's product wraps, so that
/// such a value fails the parameter's range check as in Redis instead of being refused as
/// no memory value.
pub fn config_memory(text: &str) -> Option<u64> {
    let (digits, unit) = split_memory(text)?;
    let value = match digits {
        "" => 0,
        _ if digits.len() >= 128 => return None,
        _ => digits.parse::<u64>().unwrap_or(u64::MAX),
    };
    Some(value.wrapping_mul(unit))
}

/// A memory value's digits and its unit's multiplier.
fn split_memory(text: &str) -> Option<(&str, u64)> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1024 * 1024,
        "g" => 1_000_000_000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    Some((digits, multiplier))
}

/// `maxmemory-clients` as Redis stores it: bytes (0: no limit), or a percentage of
/// `maxmemory` as a negative number (`10%` is -10), at most 100%.
pub fn parse_client_memory_limit(text: &str) -> Result<i64, &'static str> {
    if let Some(bytes) = parse_memory(text) {
        return i64::try_from(bytes).map_err(|_| "argument must be a memory or percent value");
    }
    let percent = text.strip_suffix('%').and_then(|digits| digits.parse::<i64>().ok()).filter(|p| *p >= 0);
    match percent {
        Some(percent) if percent <= 100 => Ok(-percent),
        Some(_) => Err("percentage argument must be less or equal to 100"),
        None => Err("argument must be a memory or percent value"),
    }
}

/// The least `maxmemory-clients` comes to, as in Redis: a smaller one would close the very
/// connection an operator uses to raise it.
const LEAST_CLIENT_MEMORY_LIMIT: u64 = 128 * 1024;

/// clap's parser for memory-valued flags.
pub fn memory_arg(text: &str) -> Result<u64, String> {
    parse_memory(text).ok_or_else(|| format!("'{text}' is not a memory value (such as 100, 64kb, 512mb, 1gb)"))
}

/// File descriptors kept for what is not a client (listeners, log segments and snapshots,
/// the runtime's own), as Redis keeps 32.
const RESERVED_FDS: u64 = 32;

/// Raises the soft limit on open files towards room for `maxclients` RESP clients and as
/// many HTTP ones (counted apart), as far as the hard limit allows; when it cannot hold even
/// the RESP clients, lowers `maxclients` to what fits and says so, as Redis does. (Left at a
/// distribution's 1,024, or a shell's 64, connections past it were not refused with "max
/// number of clients reached" but left in the listen backlog while `accept` failed with
/// EMFILE.) Returns the `maxclients` to use.
pub fn fit_open_files_limit(maxclients: usize) -> Result<usize, String> {
    let (fits, soft) = raise_open_files_limit(maxclients);
    if fits == 0 {
        return Err(format!("the open files limit ({soft}, `ulimit -n`) leaves no room for a client"));
    }
    if fits < maxclients {
        tracing::warn!("maxclients lowered from {maxclients} to {fits}: the open files limit is {soft} (`ulimit -n`)");
    }
    Ok(fits)
}

/// `CONFIG SET maxclients`: the limit on open files raised for `maxclients` clients, or
/// Redis's refusal when it cannot be, naming what would fit.
pub fn refit_open_files_limit(maxclients: usize) -> Result<(), String> {
    match raise_open_files_limit(maxclients) {
        (fits, _) if fits >= maxclients => Ok(()),
        (fits, _) => {
            Err(format!("The operating system is not able to handle the specified number of clients, try with {fits}"))
        }
    }
}

/// Raises the soft limit on open files towards what `maxclients` clients want, as far as the
/// hard limit allows. Returns how many of them it holds (all when it cannot be read), and
/// the soft limit.
fn raise_open_files_limit(maxclients: usize) -> (usize, u64) {
    let wanted = (maxclients as u64).saturating_mul(2).saturating_add(RESERVED_FDS);
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given, which lives on this stack frame.
    #[allow(unsafe_code)]
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !read || limit.rlim_cur >= wanted {
        return (maxclients, limit.rlim_cur);
    }
    let raised = libc::rlimit { rlim_cur: wanted.min(limit.rlim_max), rlim_max: limit.rlim_max };
    // SAFETY: setrlimit only reads the struct it is given.
    #[allow(unsafe_code)]
    let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0;
    let soft = if set { raised.rlim_cur } else { limit.rlim_cur };
    let fits = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    (fits.min(maxclients), soft)
}

/// A size in the config file: a number of bytes, or text with a unit as on the command line
/// (`maxmemory = "1gb"`, as in redis.conf).
pub fn deserialize_memory<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    use serde::Deserialize;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Bytes(bytes) => Ok(bytes),
        Size::Text(text) => memory_arg(&text).map_err(serde::de::Error::custom),
    }
}

/// One class of `client-output-buffer-limit`: close a client whose pending output exceeds
/// `hard` bytes, or stays above `soft` bytes for `soft_seconds`. Zero disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

/// Redis's per-client reply buffer (`PROTO_REPLY_CHUNK_BYTES`): output that fits in it is
/// not counted against `client-output-buffer-limit`, only what overflows it into the reply
/// list. So a tiny limit cuts off clients with much output waiting, not every client at its
/// first reply (the `CONFIG SET` that undoes it included).
pub const UNCOUNTED_OUTPUT: u64 = 16 * 1024;

/// The part of `output` bytes waiting for a client that its limits count (CLIENT LIST's
/// `omem`).
pub fn counted_output(output: u64) -> u64 {
    output.saturating_sub(UNCOUNTED_OUTPUT)
}

impl OutputLimit {
    pub fn soft_duration(self) -> Duration {
        Duration::from_secs(self.soft_seconds)
    }

    /// `output` bytes waiting for a client pass the hard limit (0: none).
    pub fn over_hard(self, output: u64) -> bool {
        self.hard > 0 && counted_output(output) > self.hard
    }

    /// `output` bytes waiting for a client pass the soft limit (0: none).
    pub fn over_soft(self, output: u64) -> bool {
        self.soft > 0 && counted_output(output) > self.soft
    }
}

/// `client-output-buffer-limit` for the classes StayKV has (normal and pubsub).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    pub normal: OutputLimit,
    pub pubsub: OutputLimit,
    /// The replica class as set: StayKV has no replicas, so it limits nothing, but a tool
    /// that sets all three classes reads back what it set, as from Redis.
    replica: OutputLimit,
}

impl Default for OutputLimits {
    /// Redis's defaults: `normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60`.
    fn default() -> Self {
        OutputLimits {
            normal: OutputLimit { hard: 0, soft: 0, soft_seconds: 0 },
            pubsub: OutputLimit { hard: 32 * 1024 * 1024, soft: 8 * 1024 * 1024, soft_seconds: 60 },
            replica: OutputLimit { hard: 256 * 1024 * 1024, soft: 64 * 1024 * 1024, soft_seconds: 60 },
        }
    }
}

impl OutputLimits {
    /// Apply `class hard soft seconds` groups over `self`, as `CONFIG SET
    /// client-output-buffer-limit` does.
    pub fn parse_over(self, text: &str) -> Result<OutputLimits, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() || !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        const BAD_VALUE: &str = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let mut limits = self;
        for group in words.chunks_exact(4) {
            let [class, hard, soft, seconds] = group else { continue };
            let hard = parse_memory(hard).ok_or(BAD_VALUE)?;
            let soft = parse_memory(soft).ok_or(BAD_VALUE)?;
            // Redis reads the seconds as a signed 64-bit number (strtoll): past it, refused.
            let soft_seconds = seconds.parse::<i64>().ok().and_then(|s| u64::try_from(s).ok()).ok_or(BAD_VALUE)?;
            let limit = OutputLimit { hard, soft, soft_seconds };
            match class.to_ascii_lowercase().as_str() {
                "normal" => limits.normal = limit,
                "pubsub" => limits.pubsub = limit,
                "replica" | "slave" => limits.replica = limit,
                _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
            }
        }
        Ok(limits)
    }

    /// The limit of a subscribed client's class, or of a normal client's.
    pub fn of(self, subscribed: bool) -> OutputLimit {
        if subscribed {
            self.pubsub
        } else {
            self.normal
        }
    }

    /// `CONFIG GET client-output-buffer-limit`, in Redis's shape (bytes).
    pub fn format(self) -> String {
        let class = |name: &str, l: OutputLimit| format!("{name} {} {} {}", l.hard, l.soft, l.soft_seconds);
        [class("normal", self.normal), class("slave", self.replica), class("pubsub", self.pubsub)].join(" ")
    }
}

/// The limits in force, shared by all connections.
#[derive(Debug)]
pub struct Live {
    /// `timeout`: close RESP clients idle this many seconds (0: never).
    pub timeout_secs: AtomicU64,
    /// `tcp-keepalive`: probe RESP connections idle this many seconds (0: never).
    pub tcp_keepalive_secs: AtomicU64,
    pub query_buffer_limit: AtomicU64,
    pub proto_max_bulk_len: AtomicU64,
    output: parking_lot::RwLock<OutputLimits>,
    /// `maxmemory-clients`, as [`parse_client_memory_limit`] gives it.
    pub maxmemory_clients: AtomicI64,
}

impl Live {
    pub fn new(
        timeout_secs: u64,
        tcp_keepalive_secs: u64,
        query_buffer_limit: u64,
        proto_max_bulk_len: u64,
        output: OutputLimits,
        maxmemory_clients: i64,
    ) -> Live {
        Live {
            timeout_secs: AtomicU64::new(timeout_secs),
            tcp_keepalive_secs: AtomicU64::new(tcp_keepalive_secs),
            query_buffer_limit: AtomicU64::new(query_buffer_limit),
            proto_max_bulk_len: AtomicU64::new(proto_max_bulk_len),
            output: parking_lot::RwLock::new(output),
            maxmemory_clients: AtomicI64::new(maxmemory_clients),
        }
    }

    /// The memory all connections may hold before the largest are closed, given `maxmemory`
    /// (a percentage of none is no limit), as Redis's `getClientEvictionLimit`.
    pub fn client_memory_limit(&self, maxmemory: u64) -> Option<u64> {
        let bytes = match self.maxmemory_clients.load(Ordering::Relaxed) {
            0 => return None,
            percent if percent < 0 => {
                if maxmemory == 0 {
                    return None;
                }
                maxmemory / 100 * percent.unsigned_abs() + maxmemory % 100 * percent.unsigned_abs() / 100
            }
            bytes => bytes.unsigned_abs(),
        };
        Some(bytes.max(LEAST_CLIENT_MEMORY_LIMIT))
    }

    /// `CONFIG GET maxmemory-clients`: bytes, or `10%`.
    pub fn format_client_memory_limit(&self) -> String {
        match self.maxmemory_clients.load(Ordering::Relaxed) {
            percent if percent < 0 => format!("{}%", percent.unsigned_abs()),
            bytes => bytes.to_string(),
        }
    }

    /// Turns TCP keepalive probes on for a new RESP connection as Redis's `anetKeepAlive`
    /// does: the first after `tcp-keepalive` seconds idle, then every third of that, and
    /// the connection is reset after three unanswered. (Set per connection: a CONFIG SET
    /// applies to connections accepted after it, as in Redis.)
    pub fn keep_alive(&self, stream: &tokio::net::TcpStream) {
        let secs = self.tcp_keepalive_secs.load(Ordering::Relaxed);
        if secs == 0 {
            return;
        }
        let probes = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(secs))
            .with_interval(Duration::from_secs((secs / 3).max(1)))
            .with_retries(3);
        if let Err(error) = socket2::SockRef::from(stream).set_tcp_keepalive(&probes) {
            tracing::debug!(%error, "cannot turn TCP keepalive on");
        }
    }

    /// The idle timeout, if one is set.
    pub fn idle_timeout(&self) -> Option<Duration> {
        match self.timeout_secs.load(Ordering::Relaxed) {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        }
    }

    pub fn query_buffer_limit(&self) -> usize {
        usize::try_from(self.query_buffer_limit.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    pub fn proto_max_bulk_len(&self) -> i64 {
        i64::try_from(self.proto_max_bulk_len.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
    }

    pub fn output(&self) -> OutputLimits {
        *self.output.read()
    }

    pub fn set_output(&self, limits: OutputLimits) {
        *self.output.write() = limits;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn memory_values() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("32MB"), Some(32 << 20));
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(parse_memory("99999999999999999999gb"), None);
        for bad in ["", "kb", " 100", "+100", "-1", "1.5gb", "0x10", "100 mb"] {
            assert_eq!(parse_memory(bad), None, "{bad:?}");
        }
        // CONFIG SET reads as Redis's memtoull: no digits is 0, too many digits saturate.
        assert_eq!(config_memory("1kb"), Some(1024));
        assert_eq!((config_memory(""), config_memory("mb")), (Some(0), Some(0)));
        assert_eq!(config_memory("99999999999999999999"), Some(u64::MAX));
        for bad in [" 100", "+100", "-1", "1.5gb", "0x10"] {
            assert_eq!(config_memory(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn client_memory_limits() {
        assert_eq!(parse_client_memory_limit("64mb"), Ok(64 << 20));
        assert_eq!(parse_client_memory_limit("10%"), Ok(-10));
        assert_eq!(parse_client_memory_limit("101%"), Err("percentage argument must be less or equal to 100"));
        assert_eq!(parse_client_memory_limit("-1%"), Err("argument must be a memory or percent value"));
        let live = Live::new(0, 0, 0, 0, OutputLimits::default(), -10);
        assert_eq!(live.client_memory_limit(0), None, "a percentage of no maxmemory");
        assert_eq!(live.client_memory_limit(1 << 30), Some((1 << 30) / 10));
        assert_eq!(live.client_memory_limit(1 << 20), Some(128 * 1024), "never under 128 KiB");
        assert_eq!(live.format_client_memory_limit(), "10%");
        live.maxmemory_clients.store(0, Ordering::Relaxed);
        assert_eq!(live.client_memory_limit(1 << 30), None);
    }

    #[test]
    fn output_limits() {
        let limits = OutputLimits::default();
        assert_eq!(limits.format(), "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
        let changed = limits.parse_over("normal 4mb 1mb 2").unwrap();
        assert_eq!(changed.normal, OutputLimit { hard: 4 << 20, soft: 1 << 20, soft_seconds: 2 });
        assert_eq!(changed.pubsub, limits.pubsub);
        let replica = limits.parse_over("replica 3mb 4mb 70").unwrap();
        assert_eq!(replica.format(), "normal 0 0 0 slave 3145728 4194304 70 pubsub 33554432 8388608 60");
        assert!(limits.parse_over("normal 1 2").is_err());
        assert!(limits.parse_over("bogus 1 2 3").is_err());
        assert_eq!(OutputLimits::default().parse_over("normal 0 0 0 pubsub 32mb 8mb 60").unwrap(), limits);
    }
}
