//! CLIENT PAUSE (Redis's `pauseClients`): until a deadline, every command (`ALL`) or only
//! those that may write (`WRITE`) wait before they run, and keys do not expire, so that the
//! dataset holds still while an operator copies it or moves clients elsewhere.
//!
//! The engine keeps the state and answers "does this command wait now?"; the server does the
//! waiting, off its async workers, as it does for a running script.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::command::CommandSpec;

/// No pause: its deadline is in the past.
const NONE: u64 = 0;

#[derive(Debug, Default)]
pub struct ClientPause {
    /// Unix ms the pause ends at.
    until_ms: AtomicU64,
    /// Every command waits, not only writes.
    all: AtomicBool,
    /// Serialises pause and unpause, which read-modify-write both fields.
    change: Mutex<()>,
}

impl ClientPause {
    /// Pauses until `until_ms`. A pause still in force is only ever lengthened and widened
    /// (WRITE to ALL), as Redis 7.0 merges them.
    pub fn pause(&self, until_ms: u64, all: bool, now: u64) {
        let _change = self.change.lock();
        let current = self.until_ms.load(Ordering::Acquire);
        let in_force = current > now;
        self.all.store(all || (in_force && self.all.load(Ordering::Acquire)), Ordering::Release);
        self.until_ms.store(if in_force { current.max(until_ms) } else { until_ms }, Ordering::Release);
    }

    pub fn unpause(&self) {
        let _change = self.change.lock();
        self.until_ms.store(NONE, Ordering::Release);
        self.all.store(false, Ordering::Release);
    }

    /// Whether a pause was set and not lifted (it may have ended by its deadline): one atomic
    /// load, no clock needed.
    pub fn is_set(&self) -> bool {
        self.until_ms.load(Ordering::Acquire) != NONE
    }

    /// Whether a pause is in force at `now`.
    pub fn in_force(&self, now: u64) -> bool {
        self.until_ms.load(Ordering::Acquire) > now
    }

    /// Whether `args`, a `spec` command, must wait at `now`.
    pub fn holds(&self, spec: &CommandSpec, args: &[Bytes], now: u64) -> bool {
        self.in_force(now) && (self.all.load(Ordering::Acquire) || may_write(spec, args))
    }
}

/// What `CLIENT PAUSE WRITE` holds back: writes, and the commands Redis documents as held
/// with them (scripts but their read-only forms, PUBLISH, PFCOUNT, which may rewrite its
/// cache, and WAIT). EXEC too, whatever it queued (Redis holds it only if it queued a write).
fn may_write(spec: &CommandSpec, args: &[Bytes]) -> bool {
    spec.writes(args)
        || matches!(spec.name, "eval" | "evalsha" | "fcall" | "publish" | "pfcount" | "wait" | "waitaof" | "exec")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pauses_merge_lengthen_and_end() {
        let table = crate::cmd::table();
        let (get, set) = (table.lookup(b"get").unwrap().1, table.lookup(b"set").unwrap().1);
        let pause = ClientPause::default();
        assert!(!pause.holds(set, &[], 1_000));
        pause.pause(2_000, false, 1_000);
        assert!(pause.holds(set, &[], 1_500) && !pause.holds(get, &[], 1_500));
        pause.pause(1_800, true, 1_500);
        assert!(pause.holds(get, &[], 1_900), "widened to ALL, not shortened");
        assert!(!pause.holds(set, &[], 2_000), "ends at its deadline");
        pause.pause(3_000, false, 2_500);
        assert!(!pause.holds(get, &[], 2_600), "an ended ALL does not carry over");
        pause.pause(3_000, false, 2_500);
        let xgroup = table.lookup(b"xgroup").unwrap().1;
        let xgroup_line = |sub: &'static str| [Bytes::from_static(b"XGROUP"), Bytes::from_static(sub.as_bytes())];
        assert!(pause.holds(xgroup, &xgroup_line("CREATE"), 2_600), "a write container's subcommand");
        assert!(!pause.holds(xgroup, &xgroup_line("help"), 2_600), "its HELP is no write");
        pause.unpause();
        assert!(!pause.in_force(2_600));
    }
}
