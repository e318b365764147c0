//! Key specifications: where a command's keys are and how it uses them, as Redis 7.0 declares
//! them in its command table.
//!
//! A command has one spec per kind of key it takes (LMOVE: the source, then the destination).
//! Each says where its search begins (an argument index, or the argument after a keyword) and
//! how its keys follow (a range, or a count read from an argument), with flags for what the
//! command does to them: `RO`/`RW`/`OW`/`RM` (read only, read-write, overwrite, remove) and
//! `access`/`update`/`insert`/`delete` (reads the value; changes, adds to or removes from it).
//!
//! Three things read them, all as Redis does:
//! * `COMMAND INFO` shows them, so clients that route by key specs find keys as with Redis;
//! * `COMMAND GETKEYS` and `GETKEYSANDFLAGS` answer from them;
//! * ACL key patterns check them: `%R~` covers keys a command accesses, `%W~` keys it
//!   inserts into, updates or deletes from.
//!
//! Locking uses the first/last/step they imply ([`LegacyRange`]), and for commands whose keys
//! move, the command's key finder ([`CommandSpec::key_positions`]): locking must find every
//! key up front, where some specs (SORT's STORE, MIGRATE's KEYS) cannot.
//!
//! [`CommandSpec::key_positions`]: crate::command::CommandSpec::key_positions

use bytes::Bytes;
use staykv_resp::Reply;

/// Key flags, named as `COMMAND INFO` shows them.
pub mod key {
    /// Read only: the command reads the key and changes nothing.
    pub const RO: u16 = 1 << 0;
    /// Read-write: reads the key and may change it.
    pub const RW: u16 = 1 << 1;
    /// Overwrite: changes the key without reading it.
    pub const OW: u16 = 1 << 2;
    /// Remove: deletes the key without reading it.
    pub const RM: u16 = 1 << 3;
    /// The value is read (and may be returned).
    pub const ACCESS: u16 = 1 << 4;
    /// The value is changed in place or replaced.
    pub const UPDATE: u16 = 1 << 5;
    /// Data is added to the value.
    pub const INSERT: u16 = 1 << 6;
    /// Data is removed from the value (or the key deleted).
    pub const DELETE: u16 = 1 << 7;
    /// Not a key, but hashed as one for cluster slots (SPUBLISH's channel).
    pub const NOT_KEY: u16 = 1 << 8;
    /// The spec may not find every key: its command has its own way of finding them.
    pub const INCOMPLETE: u16 = 1 << 9;
    /// The flags depend on the arguments (SET with GET reads): the command says per call.
    pub const VARIABLE_FLAGS: u16 = 1 << 10;

    pub(crate) const NAMES: &[(u16, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];

    /// The flag names of `flags`, as a RESP set of status strings.
    pub fn reply(flags: u16) -> staykv_resp::Reply {
        crate::command::flag_set(NAMES, |bit| flags & bit != 0)
    }
}

/// Where a spec's search for keys begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginSearch {
    /// At this argument (the command name is 0).
    Index(i32),
    /// After the first argument equal to `keyword` (any case), searching from `start_from`
    /// (a negative value counts from the end, searching backwards).
    Keyword { keyword: &'static str, start_from: i32 },
    /// Only the command knows.
    Unknown,
}

/// How a spec's keys follow the place its search began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindKeys {
    /// Keys up to `last_key` arguments further on (negative: counted from the end), every
    /// `step`; with a `limit`, only the first 1/limit of what remains.
    Range { last_key: i32, step: i32, limit: i32 },
    /// The argument `key_num_index` further on counts the keys; the first is `first_key` on.
    KeyNum { key_num_index: i32, first_key: i32, step: i32 },
    /// Only the command knows.
    Unknown,
}

/// One key specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub flags: u16,
    pub begin: BeginSearch,
    pub find: FindKeys,
    pub notes: Option<&'static str>,
}

/// A key found in a command's arguments: its position and what the command does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundKey {
    pub position: usize,
    pub flags: u16,
}

/// The key specs could not say where the keys are (a spec is unknown or incomplete, or the
/// arguments do not fit it): the command's own key finder decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchFailed;

impl KeySpec {
    /// The single key at `position`.
    pub const fn index(position: i32, flags: u16) -> Self {
        KeySpec {
            flags,
            begin: BeginSearch::Index(position),
            find: FindKeys::Range { last_key: 0, step: 1, limit: 0 },
            notes: None,
        }
    }

    /// The single key after `keyword`.
    pub const fn keyword(keyword: &'static str, start_from: i32, flags: u16) -> Self {
        KeySpec {
            flags,
            begin: BeginSearch::Keyword { keyword, start_from },
            find: FindKeys::Range { last_key: 0, step: 1, limit: 0 },
            notes: None,
        }
    }

    /// Keys only the command can find.
    pub const fn unknown(flags: u16) -> Self {
        KeySpec { flags, begin: BeginSearch::Unknown, find: FindKeys::Unknown, notes: None }
    }

    pub const fn range(mut self, last_key: i32, step: i32, limit: i32) -> Self {
        self.find = FindKeys::Range { last_key, step, limit };
        self
    }

    pub const fn keynum(mut self, key_num_index: i32, first_key: i32, step: i32) -> Self {
        self.find = FindKeys::KeyNum { key_num_index, first_key, step };
        self
    }

    pub const fn note(mut self, notes: &'static str) -> Self {
        self.notes = Some(notes);
        self
    }

    /// The keys this spec finds in `args`, added to `found` (Redis's `getKeysUsingKeySpecs`
    /// for one spec). A keyword that is absent finds nothing; a spec that cannot be followed
    /// fails the whole search.
    fn search(&self, args: &[Bytes], found: &mut Vec<FoundKey>) -> Result<(), SearchFailed> {
        let argc = i64::try_from(args.len()).map_err(|_| SearchFailed)?;
        let first = match self.begin {
            BeginSearch::Index(position) => i64::from(position),
            BeginSearch::Keyword { keyword, start_from } => match keyword_position(args, keyword, start_from) {
                Some(position) => position + 1,
                None => return Ok(()),
            },
            BeginSearch::Unknown => return Err(SearchFailed),
        };
        let (first, last, step) = match self.find {
            FindKeys::Range { last_key, step, limit } => {
                let last = match (last_key, limit) {
                    (0.., _) => first + i64::from(last_key),
                    (_, 0) => argc + i64::from(last_key),
                    _ => first + (argc - first) / i64::from(limit) + i64::from(last_key),
                };
                (first, last, step)
            }
            FindKeys::KeyNum { key_num_index, first_key, step } => {
                let count = argument(args, first + i64::from(key_num_index))
                    .and_then(|count| std::str::from_utf8(count).ok()?.parse::<i64>().ok())
                    .filter(|count| *count >= 0)
                    .ok_or(SearchFailed)?;
                let first = first + i64::from(first_key);
                // A client's count, up to i64::MAX: past the arguments, which fails below.
                (first, first.saturating_add(count) - 1, step)
            }
            FindKeys::Unknown => return Err(SearchFailed),
        };
        if last >= argc || last < first || first >= argc {
            return Err(SearchFailed);
        }
        let step = usize::try_from(step.max(1)).unwrap_or(1);
        let positions = (first..=last).step_by(step).filter_map(|i| usize::try_from(i).ok());
        found.extend(positions.map(|position| FoundKey { position, flags: self.flags }));
        if self.flags & key::INCOMPLETE != 0 {
            return Err(SearchFailed);
        }
        Ok(())
    }

    /// The spec as `COMMAND INFO` shows it: a map of notes, flags, begin_search, find_keys.
    pub fn reply(&self) -> Reply {
        let mut fields = Vec::with_capacity(4);
        if let Some(notes) = self.notes {
            fields.push((Reply::bulk_str("notes"), Reply::bulk_str(notes)));
        }
        fields.push((Reply::bulk_str("flags"), key::reply(self.flags)));
        let begin = match self.begin {
            BeginSearch::Index(index) => typed("index", vec![int_field("index", index)]),
            BeginSearch::Keyword { keyword, start_from } => typed(
                "keyword",
                vec![(Reply::bulk_str("keyword"), Reply::bulk_str(keyword)), int_field("startfrom", start_from)],
            ),
            BeginSearch::Unknown => typed("unknown", Vec::new()),
        };
        fields.push((Reply::bulk_str("begin_search"), begin));
        let find = match self.find {
            FindKeys::Range { last_key, step, limit } => typed(
                "range",
                vec![int_field("lastkey", last_key), int_field("keystep", step), int_field("limit", limit)],
            ),
            FindKeys::KeyNum { key_num_index, first_key, step } => typed(
                "keynum",
                vec![
                    int_field("keynumidx", key_num_index),
                    int_field("firstkey", first_key),
                    int_field("keystep", step),
                ],
            ),
            FindKeys::Unknown => typed("unknown", Vec::new()),
        };
        fields.push((Reply::bulk_str("find_keys"), find));
        Reply::Map(fields)
    }
}

/// The keys `specs` find in `args`, in spec order (Redis's `getKeysUsingKeySpecs` without
/// partial results): keys flagged `NOT_KEY` are left out.
pub fn search(specs: &[KeySpec], args: &[Bytes]) -> Result<Vec<FoundKey>, SearchFailed> {
    let mut found = Vec::new();
    for spec in specs.iter().filter(|spec| spec.flags & key::NOT_KEY == 0) {
        spec.search(args, &mut found)?;
    }
    Ok(found)
}

/// Where `keyword` is, searching from `start_from` to the end (or, from a negative start,
/// backwards to argument 2).
fn keyword_position(args: &[Bytes], keyword: &str, start_from: i32) -> Option<i64> {
    let argc = i64::try_from(args.len()).ok()?;
    let is_keyword = |i: &i64| argument(args, *i).is_some_and(|arg| arg.eq_ignore_ascii_case(keyword.as_bytes()));
    if start_from > 0 {
        (i64::from(start_from)..argc - 1).find(is_keyword)
    } else {
        (2..=argc + i64::from(start_from)).rev().find(is_keyword)
    }
}

fn argument(args: &[Bytes], index: i64) -> Option<&Bytes> {
    args.get(usize::try_from(index).ok()?)
}

fn int_field(name: &'static str, value: i32) -> (Reply, Reply) {
    (Reply::bulk_str(name), Reply::Int(i64::from(value)))
}

/// `{type: kind, spec: {fields}}`.
fn typed(kind: &'static str, spec: Vec<(Reply, Reply)>) -> Reply {
    Reply::Map(vec![(Reply::bulk_str("type"), Reply::bulk_str(kind)), (Reply::bulk_str("spec"), Reply::Map(spec))])
}

/// The first/last/step triple `COMMAND INFO` shows for clients older than key specs, and
/// whether the command's keys can move (`movablekeys`): Redis's
/// `populateCommandLegacyRangeSpec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LegacyRange {
    pub first: i32,
    pub last: i32,
    pub step: i32,
    pub movable: bool,
}

impl LegacyRange {
    /// A lone plain spec is the range; otherwise the range spans the plain specs (an index,
    /// then a range of step 1) that follow one another, and any other spec makes the keys
    /// movable. A `const fn`, so that the command table's key positions are these, worked
    /// out as the table is built.
    pub const fn of(specs: &[KeySpec]) -> LegacyRange {
        if let [spec] = specs {
            if let (BeginSearch::Index(first), FindKeys::Range { last_key, step, .. }) = (spec.begin, spec.find) {
                let last = if last_key >= 0 { first + last_key } else { last_key };
                return LegacyRange { first, last, step, movable: spec.flags & key::INCOMPLETE != 0 };
            }
        }
        let mut movable = false;
        // (first, last) of the plain specs so far.
        let mut span: Option<(i32, i32)> = None;
        let mut rest = specs;
        while let [spec, tail @ ..] = rest {
            rest = tail;
            let (BeginSearch::Index(first), FindKeys::Range { last_key, step: 1, .. }) = (spec.begin, spec.find) else {
                movable = true;
                continue;
            };
            if let Some((_, last)) = span {
                if last != first - 1 {
                    movable = true;
                    continue;
                }
            }
            movable |= spec.flags & key::INCOMPLETE != 0;
            let last = if last_key >= 0 { first + last_key } else { last_key };
            span = Some(match span {
                // Compared unsigned, as Redis does: a last key counted from the end wins.
                Some((lowest, previous)) => (
                    if first < lowest { first } else { lowest },
                    if last as u32 > previous as u32 { last } else { previous },
                ),
                None => (first, last),
            });
        }
        match span {
            Some((first, last)) => LegacyRange { first, last, step: 1, movable },
            None => LegacyRange { first: 0, last: 0, step: 0, movable: !specs.is_empty() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<Bytes> {
        text.split(' ').map(|arg| Bytes::from(arg.to_string())).collect()
    }

    fn positions(specs: &[KeySpec], text: &str) -> Result<Vec<usize>, SearchFailed> {
        search(specs, &args(text)).map(|found| found.iter().map(|key| key.position).collect())
    }

    /// Counts and keywords come from the client: any of them either finds keys inside the
    /// arguments or fails, without overflow or panic.
    #[test]
    fn searches_take_any_count_or_keyword() {
        let numkeys = [KeySpec::index(1, key::RO).keynum(0, 1, 1)];
        assert_eq!(positions(&numkeys, "zunion 2 a b"), Ok(vec![2, 3]));
        for count in ["9223372036854775807", "-1", "x", "3", ""] {
            assert_eq!(positions(&numkeys, &format!("zunion {count} a b")), Err(SearchFailed), "{count}");
        }
        assert_eq!(positions(&numkeys, "zunion 0 a"), Err(SearchFailed));
        let streams = [KeySpec::keyword("STREAMS", 1, key::RO).range(-1, 1, 2)];
        assert_eq!(positions(&streams, "xread COUNT 1 streams a b 0 0"), Ok(vec![4, 5]));
        assert_eq!(positions(&streams, "xread COUNT 1"), Ok(vec![]));
        assert_eq!(positions(&streams, "xread STREAMS"), Ok(vec![]));
        let backwards = [KeySpec::keyword("KEYS", -2, key::RW | key::INCOMPLETE).range(-1, 1, 0)];
        assert_eq!(positions(&backwards, "migrate h p \"\" 0 5 KEYS a b"), Err(SearchFailed));
        assert_eq!(positions(&backwards, "migrate"), Ok(vec![]));
    }

    /// The legacy range Redis derives: one plain spec as it is, consecutive plain specs
    /// joined, anything else making the keys movable.
    #[test]
    fn legacy_ranges_are_derived_as_redis_derives_them() {
        let range = |specs: &[KeySpec]| {
            let r = LegacyRange::of(specs);
            (r.first, r.last, r.step, r.movable)
        };
        assert_eq!(range(&[]), (0, 0, 0, false));
        assert_eq!(range(&[KeySpec::index(1, key::RO)]), (1, 1, 1, false));
        assert_eq!(range(&[KeySpec::index(1, key::RW).range(-1, 2, 0)]), (1, -1, 2, false));
        assert_eq!(range(&[KeySpec::index(1, key::RW), KeySpec::index(2, key::RW)]), (1, 2, 1, false));
        let store = [KeySpec::index(1, key::OW), KeySpec::index(2, key::RO).keynum(0, 1, 1)];
        assert_eq!(range(&store), (1, 1, 1, true));
        assert_eq!(range(&[KeySpec::keyword("STREAMS", 1, key::RO).range(-1, 1, 2)]), (0, 0, 0, true));
        assert_eq!(range(&[KeySpec::index(3, key::RW | key::INCOMPLETE)]), (3, 3, 1, true));
    }
}
