//! The stream type (Redis's `t_stream.c`): entries ordered by ID, and consumer groups.
//!
//! Redis keeps entries in a radix tree of listpacks; StayKV keeps them in a `BTreeMap` keyed
//! by ID, which gives the same ordering and range scans, and keeps the shape of Redis's nodes
//! beside it ([`nodes`]), because trimming and XINFO show it. Deleted entries are removed at
//! once (Redis only flags them), so the recorded first ID is always the first key of the map.
//! Everything else Redis records about a stream — the last generated ID, the largest deleted
//! ID, the count of entries ever added, the groups with their pending lists — is kept as is,
//! because replies (XINFO) and the RDB format carry it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;

pub mod nodes;

pub use nodes::{NodeConfig, NodeLimits, Nodes};

/// `entries_read` of a group whose position in the stream cannot be known (Redis's
/// `SCG_INVALID_ENTRIES_READ`).
pub const INVALID_ENTRIES_READ: i64 = -1;

/// An entry ID, `ms-seq`; ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, `None` after [`StreamId::MAX`].
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => Some(StreamId { ms: self.ms.checked_add(1)?, seq: 0 }),
        }
    }

    /// The previous ID, `None` before [`StreamId::MIN`].
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => Some(StreamId { ms: self.ms.checked_sub(1)?, seq: u64::MAX }),
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    pub fn to_bytes(self) -> Bytes {
        Bytes::from(self.to_string())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A pending (delivered, not yet acknowledged) entry of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub consumer: Bytes,
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    /// At most [`MAX_DELIVERY_COUNT`].
    pub delivery_count: u64,
}

/// The highest delivery count a pending entry keeps. Redis keeps a u64 and shows and logs
/// it as a signed number, so past `i64::MAX` it reads negative; StayKV stops there, which
/// the XCLAIM ... RETRYCOUNT that logs a delivery can carry (a count past it, logged, was
/// refused by the replay and so refused the next start).
pub const MAX_DELIVERY_COUNT: u64 = i64::MAX as u64;

/// The delivery count after one more delivery.
pub fn next_delivery_count(count: u64) -> u64 {
    count.saturating_add(1).min(MAX_DELIVERY_COUNT)
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consumer {
    /// Unix ms of the consumer's last read or claim.
    pub seen_time: u64,
    /// IDs of the group's pending entries owned by this consumer.
    pub pending: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// The last ID delivered to the group.
    pub last_id: StreamId,
    /// How many entries the group has read (its logical offset), or [`INVALID_ENTRIES_READ`].
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Pending>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group { last_id, entries_read, ..Group::default() }
    }

    /// Create consumer `name`, seen at `now`, unless it exists; returns whether it was created.
    pub fn create_consumer(&mut self, name: &Bytes, now: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(name.clone(), Consumer { seen_time: now, pending: BTreeSet::new() });
        true
    }

    /// Consumer `name` acts at `now` (reads or claims): created if missing, its seen time
    /// refreshed otherwise, as Redis's `streamLookupConsumer` does. Returns whether it was
    /// created.
    pub fn touch_consumer(&mut self, name: &Bytes, now: u64) -> bool {
        match self.consumers.get_mut(name) {
            Some(consumer) => {
                consumer.seen_time = now;
                false
            }
            None => self.create_consumer(name, now),
        }
    }

    /// Make `consumer` (which the caller created) the owner of pending entry `id`, adding the
    /// entry if it is not pending, and taking it from its previous owner if it is.
    pub fn assign(&mut self, id: StreamId, consumer: &Bytes, delivery_time: u64, delivery_count: u64) {
        let delivery_count = delivery_count.min(MAX_DELIVERY_COUNT);
        let previous = self.pel.insert(id, Pending { consumer: consumer.clone(), delivery_time, delivery_count });
        if let Some(old) = previous.filter(|old| old.consumer != *consumer) {
            if let Some(owner) = self.consumers.get_mut(&old.consumer) {
                owner.pending.remove(&id);
            }
        }
        self.consumers.entry(consumer.clone()).or_default().pending.insert(id);
    }

    /// Acknowledge `id`: it leaves the group's and its owner's pending lists. Returns whether
    /// it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(pending) = self.pel.remove(&id) else { return false };
        if let Some(owner) = self.consumers.get_mut(&pending.consumer) {
            owner.pending.remove(&id);
        }
        true
    }

    /// Delete consumer `name` and its pending entries; returns how many it had, `None` if it
    /// did not exist.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pending {
            self.pel.remove(id);
        }
        Some(consumer.pending.len())
    }
}

/// A stream value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stream {
    /// Field/value pairs of each entry, flattened (`f1 v1 f2 v2 ...`).
    pub entries: BTreeMap<StreamId, Vec<Bytes>>,
    /// Where Redis would keep the entries.
    pub nodes: Nodes,
    /// The last ID generated (not necessarily the last entry: it may have been deleted).
    pub last_id: StreamId,
    /// The largest ID removed by XDEL.
    pub max_deleted: StreamId,
    /// Entries ever added, deleted ones included.
    pub entries_added: u64,
    pub groups: BTreeMap<Bytes, Group>,
}

/// How to trim (XADD's and XTRIM's `MAXLEN` / `MINID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ID of the first entry, 0-0 when empty (what Redis records as `first_id`).
    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or(StreamId::MIN)
    }

    /// The ID of the last entry present, 0-0 when empty.
    pub fn last_entry_id(&self) -> StreamId {
        self.entries.keys().next_back().copied().unwrap_or(StreamId::MIN)
    }

    /// The ID `*` generates at `now_ms`, `None` once the last possible ID was used.
    pub fn auto_id(&self, now_ms: u64) -> Option<StreamId> {
        if now_ms > self.last_id.ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.next()
        }
    }

    /// The ID `ms-*` generates: the next sequence in that millisecond, `None` if `ms` is in
    /// the past or its sequence numbers are used up.
    pub fn id_for_ms(&self, ms: u64) -> Option<StreamId> {
        match ms.cmp(&self.last_id.ms) {
            std::cmp::Ordering::Greater => Some(StreamId::new(ms, 0)),
            std::cmp::Ordering::Equal => self.last_id.seq.checked_add(1).map(|seq| StreamId::new(ms, seq)),
            std::cmp::Ordering::Less => None,
        }
    }

    /// Append an entry whose ID the caller checked is above `last_id`, in a node as `limits`
    /// close them.
    pub fn append(&mut self, id: StreamId, fields: Vec<Bytes>, limits: NodeLimits) {
        self.nodes.append(id, &fields, limits);
        self.entries.insert(id, fields);
        self.last_id = id;
        self.entries_added += 1;
    }

    /// Delete one entry (XDEL), recording the largest deleted ID. Returns whether it existed.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if self.entries.remove(&id).is_none() {
            return false;
        }
        self.nodes.delete(id);
        self.max_deleted = self.max_deleted.max(id);
        true
    }

    /// Trim from the oldest end as `streamTrim` does; returns how many entries were removed.
    /// Whole nodes go first, oldest first; then, unless `approx`, the entries still to go
    /// from the next node, which keeps them as deleted. A trim stops before the node that
    /// would take it past `limit` entries (0: no limit).
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0;
        while let Some((live, last)) = self.nodes.first().map(|n| (n.live(), n.last())) {
            let len = self.len() as u64;
            if matches!(how, Trim::MaxLen(max) if len <= max) || (limit > 0 && removed + live > limit) {
                break;
            }
            let whole = match how {
                Trim::MaxLen(max) => len - live >= max,
                Trim::MinId(min) => last < min,
            };
            if whole {
                self.remove_oldest(live);
                self.nodes.remove_first();
                removed += live;
                continue;
            }
            if !approx {
                let inside = match how {
                    Trim::MaxLen(max) => len - max,
                    Trim::MinId(min) => self.entries.range(..min).count() as u64,
                };
                self.remove_oldest(inside);
                self.nodes.flag_deleted_in_first(inside);
                removed += inside;
            }
            break;
        }
        removed
    }

    /// Remove the `n` oldest entries.
    fn remove_oldest(&mut self, n: u64) {
        for _ in 0..n {
            self.entries.pop_first();
        }
    }

    /// Redis's estimate of the logical offset of `id` (how many entries come up to it), for a
    /// group created or moved there; [`INVALID_ENTRIES_READ`] when it cannot be known.
    pub fn estimate_offset(&self, id: StreamId) -> i64 {
        let added = i64::try_from(self.entries_added).unwrap_or(i64::MAX);
        if self.entries_added == 0 {
            return 0;
        }
        if self.is_empty() && id <= self.last_id {
            return added;
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return added,
            std::cmp::Ordering::Greater => return INVALID_ENTRIES_READ,
            std::cmp::Ordering::Less => {}
        }
        let first = self.first_id();
        if self.max_deleted.is_zero() || self.max_deleted < first {
            let before_first = added - self.len() as i64;
            match id.cmp(&first) {
                std::cmp::Ordering::Less => return before_first,
                std::cmp::Ordering::Equal => return before_first + 1,
                std::cmp::Ordering::Greater => {}
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag (entries in the stream it has not read yet), `None` when unknown
    /// (XINFO reports nil then).
    pub fn lag(&self, group: &Group) -> Option<i64> {
        let added = i64::try_from(self.entries_added).unwrap_or(i64::MAX);
        if self.entries_added == 0 {
            return Some(0);
        }
        if group.entries_read != INVALID_ENTRIES_READ && !self.has_tombstone_from(group.last_id) {
            return Some(added - group.entries_read);
        }
        let estimate = self.estimate_offset(group.last_id);
        (estimate != INVALID_ENTRIES_READ).then(|| added - estimate)
    }

    /// The `entries_read` a group reaches when entry `id` past its last ID is delivered to
    /// it: one more than before while the count is reliable, else Redis's estimate.
    pub fn entries_read_after(&self, group: &Group, id: StreamId) -> i64 {
        if group.entries_read != INVALID_ENTRIES_READ && !self.has_tombstone_from(id) {
            // Saturating where Redis wraps to negative: the XGROUP SETID ... ENTRIESREAD that
            // logs it must replay, and its parser takes nothing below -1.
            group.entries_read.saturating_add(1)
        } else if self.entries_added > 0 {
            self.estimate_offset(id)
        } else {
            group.entries_read
        }
    }

    /// Whether an XDEL removed an entry at or after `from` that was inside the current
    /// range (Redis's `streamRangeHasTombstones`): offsets counted past it are unreliable.
    pub fn has_tombstone_from(&self, from: StreamId) -> bool {
        !self.is_empty()
            && !self.max_deleted.is_zero()
            && self.first_id() <= self.max_deleted
            && from <= self.max_deleted
    }

    /// Approximate heap bytes for MEMORY USAGE (and the lazy-free thread's pending count),
    /// the entries estimated from the first `samples` (all with 0), as Redis samples: walking
    /// every field of a 300,000-entry stream took 4–8 ms on the command path.
    pub fn memory_usage(&self, samples: usize) -> usize {
        let entry_bytes = |fields: &Vec<Bytes>| fields.iter().map(|x| x.len() + 32).sum::<usize>() + 48;
        let entries = crate::value::sampled(self.entries.values(), samples, entry_bytes);
        let groups: usize = self.groups.values().map(|g| g.pel.len() * 96 + g.consumers.len() * 64 + 64).sum();
        entries + groups + self.nodes.heap_size()
    }
}

/// Parse an unsigned decimal part of an ID as Redis 7.0's `string2ull` does: a canonical
/// integer (`string2ll`) unless it is negative, else whatever `strtoull` reads whole —
/// leading whitespace, a sign, leading zeros, and a negative magnitude wrapped around, as C
/// negates an unsigned value (`"1- -1"` is `1-18446744073709551615`, `"1--1"` is refused;
/// checked against redis-server 7.0.15). Overflow is refused.
fn parse_u64(text: &[u8]) -> Option<u64> {
    if let Some(canonical) = crate::num::parse_i64(text) {
        return u64::try_from(canonical).ok();
    }
    let start = text.iter().position(|&b| !crate::num::is_c_space(b))?;
    let text = text.get(start..)?;
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative { magnitude.wrapping_neg() } else { magnitude })
}

/// An ID argument as written, before defaults are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedId {
    /// `ms-seq`.
    Full(StreamId),
    /// `ms` alone: the caller picks the missing sequence (0 or the maximum).
    MsOnly(u64),
    /// `ms-*` (XADD only): the next sequence in that millisecond.
    MsAuto(u64),
    /// `-`
    Min,
    /// `+`
    Max,
}

/// Parse an ID argument; `None` is Redis's "Invalid stream ID" error. `special` allows `-`
/// and `+`; `auto_seq` allows `ms-*`.
pub fn parse_id(arg: &[u8], special: bool, auto_seq: bool) -> Option<ParsedId> {
    if arg.len() > 127 {
        return None;
    }
    match arg {
        b"-" => return special.then_some(ParsedId::Min),
        b"+" => return special.then_some(ParsedId::Max),
        _ => {}
    }
    let Some(dash) = arg.iter().position(|&b| b == b'-') else {
        return Some(ParsedId::MsOnly(parse_u64(arg)?));
    };
    let (ms, seq) = (arg.get(..dash)?, arg.get(dash + 1..)?);
    let ms = parse_u64(ms)?;
    if auto_seq && seq == b"*" {
        return Some(ParsedId::MsAuto(ms));
    }
    Some(ParsedId::Full(StreamId::new(ms, parse_u64(seq)?)))
}

impl ParsedId {
    /// The ID with a missing sequence filled in with `missing_seq`. `MsAuto` never reaches
    /// here (only XADD accepts it, and resolves it against the stream).
    pub fn resolve(self, missing_seq: u64) -> StreamId {
        match self {
            ParsedId::Full(id) => id,
            ParsedId::MsOnly(ms) | ParsedId::MsAuto(ms) => StreamId::new(ms, missing_seq),
            ParsedId::Min => StreamId::MIN,
            ParsedId::Max => StreamId::MAX,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stream_of(n: u64) -> Stream {
        let mut s = Stream::default();
        for i in 1..=n {
            s.append(StreamId::new(i, 0), vec![Bytes::from("f"), Bytes::from("v")], NodeLimits::default());
        }
        s
    }

    #[test]
    fn ids_parse_like_redis() {
        assert_eq!(parse_id(b"1-2", false, false), Some(ParsedId::Full(StreamId::new(1, 2))));
        assert_eq!(parse_id(b"007", false, false), Some(ParsedId::MsOnly(7)));
        assert_eq!(parse_id(b"5-*", false, true), Some(ParsedId::MsAuto(5)));
        assert_eq!(parse_id(b"5-*", false, false), None);
        assert_eq!(parse_id(b"-", true, false), Some(ParsedId::Min));
        assert_eq!(parse_id(b"-", false, false), None);
        assert_eq!(
            parse_id(b"18446744073709551615-18446744073709551615", false, false),
            Some(ParsedId::Full(StreamId::MAX))
        );
        assert_eq!(parse_id(b"1- -1", false, false), Some(ParsedId::Full(StreamId::new(1, u64::MAX))));
        assert_eq!(parse_id(b"1--01", false, false), Some(ParsedId::Full(StreamId::new(1, u64::MAX))));
        assert_eq!(parse_id(b"1--0", false, false), Some(ParsedId::Full(StreamId::new(1, 0))));
        for bad in [&b""[..], b"1-", b"-1", b"1--1", b"1-2-3", b"a-1", b"18446744073709551616", b"1 -2", b"*"] {
            assert_eq!(parse_id(bad, true, true), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn memory_usage_estimates_from_a_sample_of_entries() {
        let s = stream_of(1000);
        // Alike entries: five stand for all of them.
        assert_eq!(s.memory_usage(5), s.memory_usage(0));
        assert!(s.memory_usage(0) > stream_of(500).memory_usage(0));
    }

    #[test]
    fn next_and_prev_carry_over() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
    }

    #[test]
    fn auto_ids_never_go_back() {
        let mut s = Stream::default();
        assert_eq!(s.auto_id(5), Some(StreamId::new(5, 0)));
        s.append(StreamId::new(10, 3), Vec::new(), NodeLimits::default());
        assert_eq!(s.auto_id(5), Some(StreamId::new(10, 4)));
        assert_eq!(s.id_for_ms(10), Some(StreamId::new(10, 4)));
        assert_eq!(s.id_for_ms(9), None);
        s.last_id = StreamId::MAX;
        assert_eq!(s.auto_id(5), None);
    }

    #[test]
    fn exact_and_approximate_trimming() {
        let mut s = stream_of(250);
        assert_eq!(s.nodes.len(), 3);
        assert_eq!(s.trim(Trim::MaxLen(60), true, 0), 100);
        assert_eq!(s.len(), 150);
        assert_eq!(s.trim(Trim::MaxLen(60), true, 0), 0);
        // An exact trim inside a node leaves the rest of it as deleted entries: the next
        // `~` trim needs the node's 60 present entries gone, not 100.
        assert_eq!(s.trim(Trim::MaxLen(110), false, 0), 40);
        assert_eq!((s.first_id(), s.nodes.len()), (StreamId::new(141, 0), 2));
        assert_eq!(s.trim(Trim::MaxLen(50), true, 0), 60);
        assert_eq!(s.trim(Trim::MinId(StreamId::new(245, 0)), false, 0), 44);
        // A trim never goes past its limit, and stops before a node that would.
        let mut s = stream_of(1000);
        assert_eq!(s.trim(Trim::MaxLen(0), true, 250), 200);
        assert_eq!(s.trim(Trim::MaxLen(0), true, 99), 0);
        let mut s = stream_of(150);
        assert_eq!(s.trim(Trim::MaxLen(0), true, 0), 150);
        assert!(s.nodes.is_empty());
        // Trimming is not a deletion: max_deleted stays.
        assert!(s.max_deleted.is_zero());
    }

    #[test]
    fn offsets_are_estimated_like_redis() {
        let mut s = stream_of(5);
        assert_eq!(s.estimate_offset(StreamId::new(5, 0)), 5);
        assert_eq!(s.estimate_offset(StreamId::new(1, 0)), 1);
        assert_eq!(s.estimate_offset(StreamId::MIN), 0);
        assert_eq!(s.estimate_offset(StreamId::new(3, 0)), INVALID_ENTRIES_READ);
        assert_eq!(s.estimate_offset(StreamId::new(9, 0)), INVALID_ENTRIES_READ);
        s.delete(StreamId::new(2, 0));
        assert_eq!(s.max_deleted, StreamId::new(2, 0));
        assert_eq!(s.estimate_offset(StreamId::new(1, 0)), INVALID_ENTRIES_READ);
    }
}
