//! Which logged writes a compaction can step over: those a later write of the same key
//! replaces whole.
//!
//! A compaction replays the log into a scratch keyspace, and a session store's log writes the
//! same keys again and again (a SET of a session, its EXPIREs, a SET again): every write of a
//! key but those from its last replacement on is built and thrown away, and so is the key's
//! value in the old snapshot. The survey (the read of the log before the passes) notes for
//! each key the last effect that sets it without reading it — `SET key value [PXAT ms]`,
//! `DEL key`, `UNLINK key` — and the passes skip the key's effects before that one and its
//! old value.
//!
//! That is exact only for a key no other key's effect reads: a key that an effect names with
//! other keys (RENAME, LMOVE, SMOVE, a multi-key DEL…) is *entangled* and always replayed in
//! full. Effects that reach a database other than their own (MOVE, COPY) or keys they do not
//! name (FLUSHDB, FLUSHALL, SWAPDB; the survey turns copying off for those, and this with it)
//! turn skipping off for the whole build.
//!
//! A key is known by a 128-bit SipHash-1-3 of its database and name, keyed at random for each
//! build, so that no one can pick names that collide: two of the 10 million names a build
//! notes at most share one with a chance of about 10^-25, far below that of a disk error the
//! log's CRC-32C misses. Keeping the names themselves cost a pointer chase and a compare per
//! lookup: a fifth of the build's time, where the skipping saved a quarter.

use std::collections::HashMap;
use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

/// Where an effect is in the log: its batch and its place in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Position {
    pub seq: u64,
    pub index: u32,
}

/// What the survey learned about a key the log names.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Its last whole replacement.
    ReplacedAt(Position),
    /// Named by an effect with other keys: replayed in full.
    Entangled,
}

/// The most names the survey notes (32 bytes each in the map, 64 MiB at most with its slack);
/// past it, names not noted yet are replayed in full (the ones noted keep being followed, so
/// that an entry never misses a later entanglement).
const MAX_NAMES: usize = 1 << 21;

/// A key's database and name, hashed.
type Name = u128;

/// The fates of the keys a log names.
#[derive(Debug)]
pub(super) struct Supersession {
    fates: HashMap<Name, Fate, foldhash::fast::RandomState>,
    keys: (u64, u64),
}

/// What the survey makes of one effect.
pub(super) enum Noted {
    Kept,
    /// The effect reaches another database: nothing may be skipped.
    CrossDatabase,
}

impl Supersession {
    pub fn new() -> Self {
        Supersession { fates: HashMap::default(), keys: rand::random() }
    }

    fn name(&self, db: u32, key: &[u8]) -> Name {
        let mut hasher = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        hasher.write_u32(db);
        hasher.write(key);
        hasher.finish128().as_u128()
    }

    /// Notes the effect at `at` (in log order), whose arguments are `argv` and whose named
    /// keys are `keys`, in database `db`.
    pub fn note(&mut self, db: u32, argv: &[&[u8]], keys: &[&[u8]], at: Position) -> Noted {
        let Some(name) = argv.first() else { return Noted::Kept };
        if name.eq_ignore_ascii_case(b"move") || name.eq_ignore_ascii_case(b"copy") {
            return Noted::CrossDatabase;
        }
        match keys {
            [key] if replaces_whole(argv) => self.set(db, key, Fate::ReplacedAt(at)),
            [_] | [] => {}
            several => several.iter().for_each(|key| self.set(db, key, Fate::Entangled)),
        }
        Noted::Kept
    }

    fn set(&mut self, db: u32, key: &[u8], fate: Fate) {
        let name = self.name(db, key);
        let room = self.fates.len() < MAX_NAMES;
        match self.fates.get_mut(&name) {
            Some(Fate::Entangled) => {}
            Some(noted) => *noted = fate,
            None if room => {
                self.fates.insert(name, fate);
            }
            None => {}
        }
    }

    /// Whether an effect at `at` that names `keys` is replaced by a later one.
    pub fn skips(&self, db: u32, keys: &[&[u8]], at: Position) -> bool {
        matches!(keys, [key] if self.replaced_at(db, key).is_some_and(|last| at < last))
    }

    /// Whether the log replaces `key` of database `db` whole, so that its value in the old
    /// snapshot is never needed.
    pub fn replaced(&self, db: u32, key: &[u8]) -> bool {
        self.replaced_at(db, key).is_some()
    }

    fn replaced_at(&self, db: u32, key: &[u8]) -> Option<Position> {
        match self.fates.get(&self.name(db, key))? {
            Fate::ReplacedAt(at) => Some(*at),
            Fate::Entangled => None,
        }
    }
}

/// Whether an effect sets its one key without reading it: the forms the engine logs a SET
/// in (any SET, with NX, XX, GET, KEEPTTL or a relative expiry, is logged as one of them),
/// and a DEL or UNLINK of one key.
fn replaces_whole(argv: &[&[u8]]) -> bool {
    match argv {
        [name, _, _] => name.eq_ignore_ascii_case(b"set"),
        [name, _, _, option, _] => name.eq_ignore_ascii_case(b"set") && option.eq_ignore_ascii_case(b"pxat"),
        [name, _] => name.eq_ignore_ascii_case(b"del") || name.eq_ignore_ascii_case(b"unlink"),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(seq: u64) -> Position {
        Position { seq, index: 0 }
    }

    #[test]
    fn writes_before_the_last_whole_replacement_are_skipped() {
        let mut s = Supersession::new();
        s.note(0, &[b"SET", b"k", b"1"], &[b"k"], at(1));
        s.note(0, &[b"PEXPIREAT", b"k", b"9"], &[b"k"], at(2));
        s.note(0, &[b"SET", b"k", b"2", b"PXAT", b"9"], &[b"k"], at(3));
        s.note(0, &[b"APPEND", b"k", b"x"], &[b"k"], at(4));
        assert!(s.skips(0, &[b"k"], at(1)) && s.skips(0, &[b"k"], at(2)));
        assert!(!s.skips(0, &[b"k"], at(3)) && !s.skips(0, &[b"k"], at(4)));
        assert!(s.replaced(0, b"k"));
        // The same name in another database is another key.
        assert!(!s.replaced(1, b"k") && !s.skips(1, &[b"k"], at(1)));
    }

    #[test]
    fn only_plain_sets_and_single_deletes_replace() {
        for argv in [&[&b"SET"[..], b"k", b"v", b"KEEPTTL"][..], &[b"DEL", b"k", b"j"], &[b"INCR", b"k"]] {
            assert!(!replaces_whole(argv), "{argv:?}");
        }
        for argv in [&[&b"set"[..], b"k", b"v"][..], &[b"SET", b"k", b"v", b"pxat", b"1"], &[b"UNLINK", b"k"]] {
            assert!(replaces_whole(argv), "{argv:?}");
        }
    }

    #[test]
    fn a_key_named_with_others_is_replayed_in_full() {
        let mut s = Supersession::new();
        s.note(0, &[b"SET", b"a", b"1"], &[b"a"], at(1));
        s.note(0, &[b"RENAME", b"a", b"b"], &[b"a", b"b"], at(2));
        s.note(0, &[b"SET", b"a", b"2"], &[b"a"], at(3));
        s.note(0, &[b"SET", b"b", b"2"], &[b"b"], at(4));
        assert!(!s.skips(0, &[b"a"], at(1)) && !s.replaced(0, b"a") && !s.replaced(0, b"b"));
    }

    #[test]
    fn moves_between_databases_turn_skipping_off() {
        let mut s = Supersession::new();
        assert!(matches!(s.note(0, &[b"MOVE", b"k", b"1"], &[b"k"], at(1)), Noted::CrossDatabase));
        assert!(matches!(s.note(0, &[b"copy", b"k", b"j"], &[b"k", b"j"], at(2)), Noted::CrossDatabase));
    }

    #[test]
    fn past_its_memory_only_noted_names_change() {
        let mut s = Supersession::new();
        s.fates.extend((0..MAX_NAMES as u128 - 1).map(|n| (n << 64, Fate::Entangled)));
        s.note(0, &[b"SET", b"a", b"1"], &[b"a"], at(1));
        s.note(0, &[b"SET", b"b", b"1"], &[b"b"], at(2));
        assert!(s.replaced(0, b"a") && !s.replaced(0, b"b"));
        s.note(0, &[b"RENAME", b"a", b"b"], &[b"a", b"b"], at(3));
        assert!(!s.replaced(0, b"a"), "an entanglement of a noted name is noted past the limit");
    }
}
