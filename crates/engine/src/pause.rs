//! CLIENT PAUSE (Redis's `pauseClients`): until a deadline, every command (`ALL`) or only
//! those that may write (`WRITE`) wait before they run, and keys do not expire, so that the
//! dataset holds still while an operator copies it or moves clients elsewhere.
//!
//! The engine keeps the state and answers "does this command wait now?"; the server does the
//! waiting, off its async workers, as it does for a running script.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::command::{flags, CommandSpec};
use crate::scripting::ScriptFlags;
use crate::Engine;

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
    /// Clients whose command waits for the pause to end.
    held: AtomicUsize,
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

    /// Whether a command waits at `now`; `may_write` says whether it may write (see
    /// [`Engine::held_by_pause`]).
    pub fn holds(&self, may_write: bool, now: u64) -> bool {
        self.in_force(now) && (may_write || self.all.load(Ordering::Acquire))
    }

    /// Counts a client as held by the pause until the guard is dropped: INFO's
    /// `blocked_clients` counts them, as Redis counts its postponed clients.
    pub fn hold(&self) -> Held<'_> {
        self.held.fetch_add(1, Ordering::Relaxed);
        Held(self)
    }

    /// Clients held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// A client held by CLIENT PAUSE ([`ClientPause::hold`]).
#[derive(Debug)]
pub struct Held<'a>(&'a ClientPause);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Engine {
    /// Whether CLIENT PAUSE holds `args` back at `now`; `queued` is the client's
    /// transaction, what an EXEC would run. An unknown command, or one with the wrong number
    /// of arguments, is not held (it is refused at once, as Redis checks those first); an
    /// empty `args` is as a write would be.
    pub fn held_by_pause(&self, args: &[Bytes], queued: Option<&[Vec<Bytes>]>, now: u64) -> bool {
        let Some(name) = args.first() else { return self.pause.holds(true, now) };
        let Some((_, spec)) = self.table.lookup(name) else { return false };
        if !spec.arity_ok(args.len()) || spec.subcommand_refusal(args).is_some() {
            return false;
        }
        self.pause.holds(self.may_replicate(spec, args, queued), now)
    }

    /// What CLIENT PAUSE WRITE holds back (Redis's `is_may_replicate_command`, with the
    /// flags `getCommandFlags` gives): writes and `may-replicate` commands; a script by the
    /// flags it declared, if it did (`no-writes` runs); EXEC if it would run one of those.
    fn may_replicate(&self, spec: &CommandSpec, args: &[Bytes], queued: Option<&[Vec<Bytes>]>) -> bool {
        if spec.name == "exec" {
            let mut queued = self.table.specs_of(queued.unwrap_or_default());
            return queued.any(|(spec, args)| spec.name != "exec" && self.may_replicate(spec, args, None));
        }
        if spec.has(flags::RUNS_SCRIPT) {
            if let Some(declared) = args.get(1).and_then(|target| self.scripting.declared_flags(spec.name, target)) {
                return !declared.has(ScriptFlags::NO_WRITES);
            }
        }
        spec.writes(args) || spec.has(flags::MAY_REPLICATE)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line(words: &[&'static str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from_static(w.as_bytes())).collect()
    }

    #[test]
    fn pauses_merge_lengthen_and_end() {
        let pause = ClientPause::default();
        assert!(!pause.holds(true, 1_000));
        pause.pause(2_000, false, 1_000);
        assert!(pause.holds(true, 1_500) && !pause.holds(false, 1_500));
        pause.pause(1_800, true, 1_500);
        assert!(pause.holds(false, 1_900), "widened to ALL, not shortened");
        assert!(!pause.holds(true, 2_000), "ends at its deadline");
        pause.pause(3_000, false, 2_500);
        assert!(!pause.holds(false, 2_600), "an ended ALL does not carry over");
        pause.unpause();
        assert!(!pause.in_force(2_600));
        let held = pause.hold();
        assert_eq!(pause.held(), 1);
        drop(held);
        assert_eq!(pause.held(), 0);
    }

    #[test]
    fn pause_write_holds_what_may_replicate() {
        let engine = Engine::new(crate::EngineOptions::default());
        engine.pause.pause(10_000, false, 1_000);
        let held =
            |words: &[&'static str], queued: Option<&[Vec<Bytes>]>| engine.held_by_pause(&line(words), queued, 2_000);
        assert!(held(&["SET", "k", "v"], None) && !held(&["GET", "k"], None));
        assert!(held(&["XGROUP", "CREATE", "s", "g", "$"], None), "a write container's subcommand");
        assert!(!held(&["XGROUP", "help"], None), "its HELP is no write");
        assert!(held(&["PUBLISH", "c", "m"], None) && held(&["PFCOUNT", "h"], None), "may-replicate");
        assert!(held(&["EVAL", "return 1", "0"], None) && !held(&["EVAL_RO", "return 1", "0"], None));
        assert!(!held(&["EVAL", "#!lua flags=no-writes\nreturn 1", "0"], None), "declared no-writes");
        assert!(held(&["EVAL", "#!lua\nreturn 1", "0"], None), "declared nothing: may write");
        let (reads, writes) = ([line(&["GET", "k"])], [line(&["GET", "k"]), line(&["DEL", "k"])]);
        assert!(!held(&["EXEC"], Some(&reads)) && held(&["EXEC"], Some(&writes)), "EXEC by what it runs");
        assert!(!held(&["NOSUCH"], None) && !held(&["SET", "k"], None), "refused at once instead");
    }
}
