//! The slow log (Redis's `slowlog.c`): commands that ran for at least
//! `slowlog-log-slower-than` microseconds (10,000 by default; -1 turns it off), newest first, at
//! most `slowlog-max-len` of them (128).
//!
//! The engine never reads a clock, so the server times each command and offers it here;
//! `SLOWLOG GET` reads the entries back. An entry keeps what Redis keeps: at most 32 arguments
//! (the last then says how many more there were), each cut at 128 bytes, and no secrets —
//! passwords given to AUTH, HELLO, ACL SETUSER and CONFIG SET requirepass read `(redacted)`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

/// Redis's `slowlog-log-slower-than` default, in microseconds.
pub const DEFAULT_THRESHOLD_US: i64 = 10_000;
/// Redis's `slowlog-max-len` default.
pub const DEFAULT_MAX_LEN: usize = 128;
/// Arguments kept per entry (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
const MAX_ARGS: usize = 32;
/// Bytes kept per argument (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
const MAX_ARG_BYTES: usize = 128;

/// One slow command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    /// When it ran, in Unix seconds.
    pub unix_secs: u64,
    /// How long it ran, in microseconds.
    pub micros: u64,
    pub args: Vec<Bytes>,
    /// `ip:port` of the client.
    pub peer: String,
    /// The client's name (CLIENT SETNAME), empty if none.
    pub name: Bytes,
}

#[derive(Debug, Default)]
struct Entries {
    next_id: u64,
    /// Newest first.
    newest_first: VecDeque<Entry>,
}

/// The slow log and its two settings.
#[derive(Debug)]
pub struct SlowLog {
    threshold_us: AtomicI64,
    max_len: AtomicUsize,
    entries: Mutex<Entries>,
}

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            threshold_us: AtomicI64::new(DEFAULT_THRESHOLD_US),
            max_len: AtomicUsize::new(DEFAULT_MAX_LEN),
            entries: Mutex::new(Entries::default()),
        }
    }
}

impl SlowLog {
    pub fn threshold_us(&self) -> i64 {
        self.threshold_us.load(Ordering::Relaxed)
    }

    pub fn set_threshold_us(&self, micros: i64) {
        self.threshold_us.store(micros, Ordering::Relaxed);
    }

    pub fn max_len(&self) -> usize {
        self.max_len.load(Ordering::Relaxed)
    }

    /// Lowering the length drops the oldest entries at once, as Redis does.
    pub fn set_max_len(&self, len: usize) {
        self.max_len.store(len, Ordering::Relaxed);
        self.entries.lock().newest_first.truncate(len);
    }

    /// Whether a command that ran `micros` belongs in the log: the one check made for every
    /// command, so it takes no lock.
    pub fn is_slow(&self, micros: u64) -> bool {
        u64::try_from(self.threshold_us()).is_ok_and(|threshold| micros >= threshold)
    }

    /// Records a command the caller found slow ([`SlowLog::is_slow`]).
    pub fn record(&self, unix_secs: u64, micros: u64, args: &[Bytes], peer: &str, name: Option<&Bytes>) {
        let args = kept_args(args);
        let mut entries = self.entries.lock();
        let id = entries.next_id;
        entries.next_id += 1;
        let entry =
            Entry { id, unix_secs, micros, args, peer: peer.to_string(), name: name.cloned().unwrap_or_default() };
        entries.newest_first.push_front(entry);
        entries.newest_first.truncate(self.max_len());
    }

    pub fn len(&self) -> usize {
        self.entries.lock().newest_first.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the log; ids keep counting, as in Redis.
    pub fn reset(&self) {
        self.entries.lock().newest_first.clear();
    }

    /// The `count` newest entries (all of them with `None`).
    pub fn newest(&self, count: Option<usize>) -> Vec<Entry> {
        let entries = self.entries.lock();
        let count = count.unwrap_or(usize::MAX);
        entries.newest_first.iter().take(count).cloned().collect()
    }
}

/// `args` with the secrets Redis 7.0 hides from the slow log and MONITOR read `(redacted)`.
pub(crate) fn redacted(args: &[Bytes]) -> Vec<Bytes> {
    let secret = secret_positions(args);
    args.iter()
        .enumerate()
        .map(|(i, arg)| if secret(i) { Bytes::from_static(b"(redacted)") } else { arg.clone() })
        .collect()
}

/// The arguments an entry keeps: secrets redacted, at most [`MAX_ARGS`], each cut at
/// [`MAX_ARG_BYTES`].
fn kept_args(args: &[Bytes]) -> Vec<Bytes> {
    let kept = if args.len() > MAX_ARGS { MAX_ARGS - 1 } else { args.len() };
    let mut out: Vec<Bytes> = redacted(args.get(..kept).unwrap_or_default()).iter().map(cut).collect();
    if args.len() > MAX_ARGS {
        out.push(Bytes::from(format!("... ({} more arguments)", args.len() - kept)));
    }
    out
}

/// The argument as an entry keeps it: a copy, never a slice of the request (which would keep
/// the whole request's buffer, a large SADD's megabytes, for as long as the entry stays),
/// and cut as Redis cuts it.
fn cut(arg: &Bytes) -> Bytes {
    if arg.len() <= MAX_ARG_BYTES {
        return Bytes::copy_from_slice(arg);
    }
    let mut text = arg.slice(..MAX_ARG_BYTES).to_vec();
    text.extend_from_slice(format!("... ({} more bytes)", arg.len() - MAX_ARG_BYTES).as_bytes());
    Bytes::from(text)
}

/// Which argument positions hold a secret, as Redis 7.0 redacts them.
fn secret_positions(args: &[Bytes]) -> Box<dyn Fn(usize) -> bool> {
    let is = |i: usize, word: &str| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()));
    if is(0, "auth") || (is(0, "acl") && is(1, "setuser")) {
        let first = if is(0, "auth") { 1 } else { 2 };
        return Box::new(move |i| i >= first);
    }
    if is(0, "hello") {
        let auth = (2..args.len()).find(|&i| is(i, "auth"));
        return Box::new(move |i| auth.is_some_and(|at| i == at + 1 || i == at + 2));
    }
    if is(0, "migrate") {
        let options = crate::cmd::migrate::Options::of(args);
        let (user, password) = (options.user_at, options.password_at);
        return Box::new(move |i| user == Some(i) || password == Some(i));
    }
    if is(0, "config") && is(1, "set") {
        // CONFIG SET name value [name value ...]: the values of Redis's SENSITIVE_CONFIG
        // settings, masterauth too: StayKV refuses it, but a refused command is logged.
        let sensitive = |i: usize| is(i, "requirepass") || is(i, "masterauth");
        let secret: Vec<usize> = (2..args.len()).step_by(2).filter(|&i| sensitive(i)).map(|i| i + 1).collect();
        return Box::new(move |i| secret.contains(&i));
    }
    Box::new(|_| false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn entries_are_newest_first_and_bounded() {
        let log = SlowLog::default();
        log.set_max_len(2);
        for i in 0..3u64 {
            log.record(100 + i, 10, &args(&["get", "k"]), "1.2.3.4:5", None);
        }
        let ids: Vec<u64> = log.newest(None).iter().map(|e| e.id).collect();
        assert_eq!(ids, [2, 1]);
        assert_eq!(log.newest(Some(1))[0].unix_secs, 102);
        log.reset();
        assert!(log.is_empty());
        log.record(1, 10, &args(&["get", "k"]), "", None);
        assert_eq!(log.newest(None)[0].id, 3, "ids go on after a reset");
    }

    #[test]
    fn threshold_minus_one_turns_it_off_and_zero_logs_everything() {
        let log = SlowLog::default();
        assert!(!log.is_slow(9_999) && log.is_slow(10_000));
        log.set_threshold_us(0);
        assert!(log.is_slow(0));
        log.set_threshold_us(-1);
        assert!(!log.is_slow(u64::MAX));
    }

    #[test]
    fn arguments_are_cut_as_redis_cuts_them() {
        let many: Vec<String> = std::iter::once("rpush".to_string()).chain((0..40).map(|i| i.to_string())).collect();
        let kept = kept_args(&args(&many.iter().map(String::as_str).collect::<Vec<_>>()));
        assert_eq!(kept.len(), 32);
        assert_eq!(kept[31], "... (10 more arguments)");
        let long = "k".repeat(200);
        let kept = kept_args(&args(&["set", &long, "v"]));
        assert_eq!(kept[1], format!("{}... (72 more bytes)", "k".repeat(128)).as_bytes());
    }

    #[test]
    fn entries_copy_their_arguments_out_of_the_request() {
        let request = Bytes::from(vec![b'x'; 1 << 20]);
        let args = [request.slice(0..4), request.slice(4..8), request.slice(8..400)];
        let within = |arg: &Bytes| request.as_ptr_range().contains(&arg.as_ptr());
        assert!(args.iter().all(within));
        assert!(!kept_args(&args).iter().any(within), "an entry would keep the request's megabyte");
    }

    #[test]
    fn secrets_are_redacted() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["AUTH", "user", "pw"], &["AUTH", "(redacted)", "(redacted)"]),
            (&["hello", "3", "auth", "default", "pw"], &["hello", "3", "auth", "(redacted)", "(redacted)"]),
            (&["acl", "setuser", "u1", ">secret", "on"], &["acl", "setuser", "(redacted)", "(redacted)", "(redacted)"]),
            (
                &["config", "set", "timeout", "5", "requirepass", "pw"],
                &["config", "set", "timeout", "5", "requirepass", "(redacted)"],
            ),
            (&["CONFIG", "SET", "masterauth", "pw"], &["CONFIG", "SET", "masterauth", "(redacted)"]),
            (&["set", "auth", "pw"], &["set", "auth", "pw"]),
            (
                &["migrate", "h", "1", "", "0", "9", "COPY", "AUTH", "pw", "KEYS", "auth", "k"],
                &["migrate", "h", "1", "", "0", "9", "COPY", "AUTH", "(redacted)", "KEYS", "auth", "k"],
            ),
            (
                &["migrate", "h", "1", "k", "0", "9", "auth2", "u", "pw", "REPLACE"],
                &["migrate", "h", "1", "k", "0", "9", "auth2", "(redacted)", "(redacted)", "REPLACE"],
            ),
        ];
        for (given, expected) in cases {
            assert_eq!(kept_args(&args(given)), args(expected), "{given:?}");
        }
    }
}
