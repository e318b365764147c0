//! Keyspace notifications (`notify-keyspace-events`), published as Redis does on
//! `__keyspace@<db>__:<key>` (the event as message) and `__keyevent@<db>__:<event>` (the key).
//!
//! Events are derived from the effects a command records — what changed is exactly what
//! gets logged — plus the moments only the engine sees: a key expiring, a key being
//! created, a read missing. Where Redis names an event after the command rather than the
//! change (SPOP is logged as SREM, INCRBYFLOAT as SET), StayKV reports the change.

use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;

use crate::pubsub::{Deliveries, PubSub};

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 12;
pub const NEW: u32 = 1 << 13;
/// `A`: every class except key-miss and new, as in Redis.
const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The class letters in the order Redis 7.0's `keyspaceEventsFlagsToString` writes them,
/// then the type letters K, E and m (written after `A` too).
const CLASS_LETTERS: &[(char, u32)] = &[
    ('g', GENERIC),
    ('$', STRING),
    ('l', LIST),
    ('s', SET),
    ('h', HASH),
    ('z', ZSET),
    ('x', EXPIRED),
    ('e', EVICTED),
    ('t', STREAM),
    ('d', MODULE),
    ('n', NEW),
];
const TYPE_LETTERS: &[(char, u32)] = &[('K', KEYSPACE), ('E', KEYEVENT), ('m', KEY_MISS)];

/// Parse the config string; `None` for an unknown letter (CONFIG SET fails then).
pub fn parse_flags(text: &str) -> Option<u32> {
    text.chars().try_fold(0, |flags, c| match c {
        'A' => Some(flags | ALL),
        c => CLASS_LETTERS.iter().chain(TYPE_LETTERS).find(|(l, _)| *l == c).map(|(_, bit)| flags | bit),
    })
}

/// The config string for the flags, as Redis 7.0's `keyspaceEventsFlagsToString` writes it:
/// `A` or the class letters, then K, E and m. With `A` the letters it stands for are not
/// repeated, and neither is `n` (Redis 7.0 leaves it out then).
pub fn format_flags(flags: u32) -> String {
    let set = |(letter, bit): &(char, u32)| (flags & bit != 0).then_some(*letter);
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        out.extend(CLASS_LETTERS.iter().filter_map(set));
    }
    out.extend(TYPE_LETTERS.iter().filter_map(set));
    out
}

/// One event waiting to be published when its command commits.
#[derive(Debug, Clone)]
pub struct Event {
    pub class: u32,
    pub name: &'static str,
    pub db: usize,
    pub key: Bytes,
}

/// The event a logged effect stands for, by the command name it was logged under.
pub fn event_for_effect(name: &[u8]) -> Option<(u32, &'static str)> {
    let upper = name.to_ascii_uppercase();
    Some(match &upper[..] {
        b"SET" => (STRING, "set"),
        b"SETRANGE" => (STRING, "setrange"),
        b"APPEND" => (STRING, "append"),
        // Redis announces all four as `incrby` (one handler, incrDecrCommand).
        b"INCR" | b"INCRBY" | b"DECR" | b"DECRBY" => (STRING, "incrby"),
        b"SETBIT" | b"BITFIELD" => (STRING, "setbit"),
        b"PFADD" => (STRING, "pfadd"),
        b"DEL" | b"UNLINK" => (GENERIC, "del"),
        b"PEXPIREAT" => (GENERIC, "expire"),
        b"PERSIST" => (GENERIC, "persist"),
        b"LPUSH" | b"LPUSHX" => (LIST, "lpush"),
        b"RPUSH" | b"RPUSHX" => (LIST, "rpush"),
        b"LPOP" => (LIST, "lpop"),
        b"RPOP" => (LIST, "rpop"),
        b"LSET" => (LIST, "lset"),
        b"LREM" => (LIST, "lrem"),
        b"LTRIM" => (LIST, "ltrim"),
        b"LINSERT" => (LIST, "linsert"),
        b"HSET" | b"HMSET" => (HASH, "hset"),
        b"HDEL" => (HASH, "hdel"),
        b"HINCRBY" => (HASH, "hincrby"),
        b"SADD" => (SET, "sadd"),
        b"SREM" => (SET, "srem"),
        b"ZADD" => (ZSET, "zadd"),
        b"ZREM" => (ZSET, "zrem"),
        b"ZINCRBY" => (ZSET, "zincr"),
        b"ZREMRANGEBYSCORE" => (ZSET, "zremrangebyscore"),
        b"ZREMRANGEBYRANK" => (ZSET, "zremrangebyrank"),
        b"ZREMRANGEBYLEX" => (ZSET, "zremrangebylex"),
        b"XADD" => (STREAM, "xadd"),
        b"XTRIM" => (STREAM, "xtrim"),
        b"XDEL" => (STREAM, "xdel"),
        b"XSETID" => (STREAM, "xsetid"),
        _ => return None,
    })
}

/// The configured classes, shared with CONFIG SET.
#[derive(Debug, Default)]
pub struct Notifier {
    flags: AtomicU32,
}

impl Notifier {
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn set_flags(&self, flags: u32) {
        self.flags.store(flags, Ordering::Relaxed);
    }

    /// Whether any event is wanted (writes skip deriving events otherwise).
    pub fn enabled(&self) -> bool {
        self.flags() & (KEYSPACE | KEYEVENT) != 0
    }

    /// Whether events of `class` are wanted at all (cheap check before building one).
    pub fn wants(&self, class: u32) -> bool {
        let flags = self.flags();
        flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
    }

    /// Adds `event`'s messages, as the flags ask for them, to `out`.
    pub fn publish(&self, pubsub: &PubSub, event: &Event, out: &mut Deliveries) {
        let flags = self.flags();
        if flags & event.class == 0 || !pubsub.has_listeners() {
            return;
        }
        if flags & KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{}__:", event.db).into_bytes();
            channel.extend_from_slice(&event.key);
            pubsub.publish(&Bytes::from(channel), &Bytes::from_static(event.name.as_bytes()), out);
        }
        if flags & KEYEVENT != 0 {
            let channel = Bytes::from(format!("__keyevent@{}__:{}", event.db, event.name));
            pubsub.publish(&channel, &event.key, out);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn flags_round_trip_like_redis() {
        assert_eq!(parse_flags("KEA").map(format_flags).as_deref(), Some("AKE"));
        assert_eq!(parse_flags("Ex").map(format_flags).as_deref(), Some("xE"));
        // As Redis 7.0: m after K and E; with A, n is not written.
        assert_eq!(parse_flags("mKE").map(format_flags).as_deref(), Some("KEm"));
        assert_eq!(parse_flags("AnmKE").map(format_flags).as_deref(), Some("AKEm"));
        assert_eq!(parse_flags("tmgn").map(format_flags).as_deref(), Some("gtnm"));
        assert_eq!(parse_flags("").map(format_flags).as_deref(), Some(""));
        assert_eq!(parse_flags("Q"), None);
    }

    /// SET does not look the key up first; a key past its deadline must still expire (event,
    /// counter) before the SET makes it new again, as Redis's lookup makes it.
    #[test]
    fn set_over_an_expired_key_announces_the_expiry_then_the_new_key() {
        use std::sync::{Arc, Mutex};

        use crate::client::Client;
        use crate::exec::{Engine, EngineOptions, NoJournal};

        const NOW: u64 = 1_700_000_000_000;
        let engine = Engine::new(EngineOptions::default());
        engine.notifier.set_flags(parse_flags("Exn").unwrap_or_default());
        let run = |client: &mut Client, now: u64, line: &str| engine.run_line(client, now, &NoJournal, line).reply;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut subscriber = Client::new(1, true);
        let sink = Arc::clone(&seen);
        subscriber.deliver = Some(crate::pubsub::ClientDeliver(Arc::new(move |reply| {
            if let Ok(mut seen) = sink.lock() {
                seen.push(format!("{reply:?}"));
            }
        })));
        run(&mut subscriber, NOW, "PSUBSCRIBE __keyevent@0__:*");
        let mut writer = Client::new(2, true);
        run(&mut writer, NOW, "SET k old PX 100");
        run(&mut writer, NOW + 200, "SET k new");
        let events: Vec<String> = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let named = |event: &str| events.iter().position(|e| e.contains(&format!("__keyevent@0__:{event}")));
        assert!(named("expired").is_some(), "{events:?}");
        assert!(named("expired") < events.iter().rposition(|e| e.contains("__keyevent@0__:new")), "{events:?}");
        assert_eq!(engine.counters.total(|s| &s.expired_keys), 1);
        assert_eq!(run(&mut writer, NOW + 200, "PTTL k"), staykv_resp::Reply::Int(-1));
    }

    /// The events (`__keyevent@<db>__:<name> key`) a sequence of commands announces.
    fn events_of(lines: &[&str]) -> Vec<String> {
        events_with("EA", lines)
    }

    /// [`events_of`] with the given classes.
    fn events_with(classes: &str, lines: &[&str]) -> Vec<String> {
        use std::sync::{Arc, Mutex};

        use crate::client::Client;
        use crate::exec::{Engine, EngineOptions, NoJournal};

        const NOW: u64 = 1_700_000_000_000;
        let engine = Engine::new(EngineOptions::default());
        engine.notifier.set_flags(parse_flags(classes).unwrap_or_default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut subscriber = Client::new(1, true);
        let sink = Arc::clone(&seen);
        subscriber.deliver = Some(crate::pubsub::ClientDeliver(Arc::new(move |reply| {
            if let staykv_resp::Reply::Push(items) = reply {
                let text: Vec<String> = items
                    .iter()
                    .skip(2)
                    .filter_map(|i| match i {
                        staykv_resp::Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
                        _ => None,
                    })
                    .collect();
                if let Ok(mut seen) = sink.lock() {
                    seen.push(text.join(" "));
                }
            }
        })));
        engine.run_line(&mut subscriber, NOW, &NoJournal, "PSUBSCRIBE __keyevent@*");
        let mut writer = Client::new(2, true);
        for line in lines {
            engine.run_line(&mut writer, NOW, &NoJournal, line);
        }
        let events = seen.lock().map(|s| s.clone()).unwrap_or_default();
        events
    }

    /// Where StayKV logs a change differently from what Redis announces, the event is still
    /// Redis's (found by the differential test's notify family).
    #[test]
    fn events_are_named_as_redis_names_them() {
        let ev = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            events_of(&["SET a 1", "RENAME a b"]),
            ev(&["__keyevent@0__:set a", "__keyevent@0__:rename_from a", "__keyevent@0__:rename_to b"])
        );
        assert_eq!(events_of(&["SET a 1", "COPY a b"])[1..], ev(&["__keyevent@0__:copy_to b"]));
        assert_eq!(
            events_of(&["SET a 1", "MOVE a 1"])[1..],
            ev(&["__keyevent@0__:move_from a", "__keyevent@1__:move_to a"])
        );
        assert_eq!(events_of(&["SADD s x", "SPOP s"])[1..], ev(&["__keyevent@0__:spop s", "__keyevent@0__:del s"]));
        assert_eq!(events_of(&["INCRBYFLOAT f 1.5"]), ev(&["__keyevent@0__:incrbyfloat f"]));
        assert_eq!(events_of(&["HINCRBYFLOAT h f 1.5"]), ev(&["__keyevent@0__:hincrbyfloat h"]));
        assert_eq!(
            events_of(&["SADD s x", "SADD d x", "SMOVE s d x"])[2..],
            ev(&["__keyevent@0__:srem s", "__keyevent@0__:del s"])
        );
        assert_eq!(events_of(&["RPUSH l x", "LPOP l"])[1..], ev(&["__keyevent@0__:lpop l", "__keyevent@0__:del l"]));
        assert_eq!(events_of(&["SADD s x", "SADD s x"]), ev(&["__keyevent@0__:sadd s"]));
        assert_eq!(events_of(&["SET a 1", "DECR a", "DECRBY a 2"])[1..], ev(&["__keyevent@0__:incrby a"; 2]));
        // Misses: reads announce them (both LCS keys, BITFIELD with only GETs, EXISTS, TYPE);
        // writes that look a key up for writing (pops, SREM, HDEL, SMOVE) do not.
        assert_eq!(
            events_with("Em", &["LCS a b", "BITFIELD c GET u8 0", "EXISTS d", "TYPE e"]),
            ev(&[
                "__keyevent@0__:keymiss a",
                "__keyevent@0__:keymiss b",
                "__keyevent@0__:keymiss c",
                "__keyevent@0__:keymiss d",
                "__keyevent@0__:keymiss e"
            ])
        );
        assert!(events_with("Em", &["LPOP a", "SREM b x", "HDEL c f", "SMOVE d e x", "HSETNX f g v", "BLPOP g 0.01"])
            .is_empty());
        assert_eq!(
            events_of(&["RPUSH l x", "LMOVE l l LEFT RIGHT"])[1..],
            ev(&["__keyevent@0__:rpush l", "__keyevent@0__:lpop l"])
        );
        assert_eq!(events_of(&["SET a 1 EX 100", "SET a 2 KEEPTTL"])[2..], ev(&["__keyevent@0__:set a"]));
        assert_eq!(
            events_of(&["ZADD z 1 a", "ZPOPMIN z"])[1..],
            ev(&["__keyevent@0__:zpopmin z", "__keyevent@0__:del z"])
        );
        assert_eq!(events_of(&["RPUSH l 2 1", "SORT l STORE d"])[1..], ev(&["__keyevent@0__:sortstore d"]));
    }
}
