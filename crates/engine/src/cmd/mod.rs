//! Command families, one module each (as Redis's `t_string.c`, `db.c`, `server.c`...).
//! Each module exposes `COMMANDS`, its slice of the command table.

use bytes::Bytes;
use staykv_resp::Reply;

use crate::command::CommandTable;
use crate::errors;
use crate::num::parse_i64;

pub mod acl;
pub mod bits;
mod client_tracking;
pub mod cluster;
pub mod connection;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod lists;
pub mod migrate;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod stream_groups;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod zsets;

/// The full command table.
pub fn table() -> CommandTable {
    CommandTable::new(&[
        strings::COMMANDS,
        keys::COMMANDS,
        migrate::COMMANDS,
        connection::COMMANDS,
        server::COMMANDS,
        replication::COMMANDS,
        cluster::COMMANDS,
        transactions::COMMANDS,
        hashes::COMMANDS,
        lists::COMMANDS,
        sets::COMMANDS,
        pubsub::COMMANDS,
        bits::COMMANDS,
        sort::COMMANDS,
        hyperloglog::COMMANDS,
        zsets::COMMANDS,
        geo::COMMANDS,
        scripting::COMMANDS,
        acl::COMMANDS,
        streams::COMMANDS,
        stream_groups::COMMANDS,
    ])
}

/// Case-insensitive comparison of an argument with an (upper- or lower-case) keyword.
pub(crate) fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// An integer argument, or Redis's "not an integer" error.
pub(crate) fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(errors::not_integer)
}
/// A `HELP` subcommand's reply: one status line per text line.
pub(crate) fn help(lines: &'static [&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|&line| Reply::Status(line)).collect())
}

/// The argument at `i` (the table's arity check guarantees presence; a miss is a syntax error).
pub(crate) fn arg(args: &[Bytes], i: usize) -> Result<&Bytes, Reply> {
    args.get(i).ok_or_else(errors::syntax)
}

/// A text argument for messages.
pub(crate) fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// `bytes` as C reads them (`%s`, `strcoll`): up to the first NUL.
pub(crate) fn c_str(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}

/// The most elements a negative-count HRANDFIELD/SRANDMEMBER/ZRANDMEMBER may return.
/// Redis streams such replies; StayKV builds them, so an absurd count is refused instead of
/// exhausting memory.
pub(crate) const MAX_RANDOM_REPEATS: i64 = 1 << 24;

/// What a reply that repeats stored data has used of [`crate::host::Host::reply_limit`].
pub(crate) struct ReplyBudget {
    limit: usize,
    used: usize,
}

impl ReplyBudget {
    /// Counted for each element besides its bytes: what a reply element holds and sends.
    const ELEMENT_OVERHEAD: usize = 16;

    pub(crate) fn new(limit: usize) -> ReplyBudget {
        ReplyBudget { limit, used: 0 }
    }

    /// Counts an element of `bytes`, or refuses the reply once the limit is passed.
    pub(crate) fn take(&mut self, bytes: usize) -> Result<(), Reply> {
        self.used = self.used.saturating_add(bytes.saturating_add(Self::ELEMENT_OVERHEAD));
        if self.used > self.limit {
            return Err(errors::reply_too_large(self.limit));
        }
        Ok(())
    }
}

/// `n` elements drawn by `pick`, repeats allowed (a negative-count SRANDMEMBER, HRANDFIELD or
/// ZRANDMEMBER), each of `bytes`, within `limit` ([`ReplyBudget`]).
pub(crate) fn repeated_picks<T>(
    limit: usize,
    n: u64,
    mut pick: impl FnMut() -> Option<T>,
    bytes: impl Fn(&T) -> usize,
) -> Result<Vec<T>, Reply> {
    let mut budget = ReplyBudget::new(limit);
    let mut picked = Vec::new();
    for _ in 0..n {
        let Some(item) = pick() else { break };
        budget.take(bytes(&item))?;
        picked.push(item);
    }
    Ok(picked)
}

/// The count of SRANDMEMBER/HRANDFIELD/ZRANDMEMBER, range-checked before the key is looked
/// at, as Redis does.
pub(crate) fn random_count(arg: &[u8]) -> Result<i64, Reply> {
    let n = int_arg(arg)?;
    if n == i64::MIN {
        return Err(errors::err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    Ok(n)
}

/// HRANDFIELD WITHVALUES and ZRANDMEMBER WITHSCORES answer two entries a pick: Redis refuses
/// a count whose double would overflow.
pub(crate) fn check_paired_count(count: i64) -> Result<(), Reply> {
    if (-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        Ok(())
    } else {
        Err(errors::err("ERR value is out of range"))
    }
}

pub(crate) use crate::small_bytes::read_out;

/// A reply of a stored hash, set, list or sorted-set element, copied out (they are held as
/// `KeyBytes`, or packed: nothing to share).
pub(crate) fn bulk_copy(stored: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(stored))
}

/// A stored copy of an argument. Arguments are slices of the connection's read buffer;
/// storing them as they are would pin that whole buffer in memory for the key's lifetime.
pub(crate) fn own(arg: &Bytes) -> Bytes {
    Bytes::copy_from_slice(arg)
}

/// An element HSCAN, SSCAN or ZSCAN returns: a set member, a hash field with its value, a
/// sorted-set member with its score.
pub(crate) trait ScanItem {
    /// What MATCH tests (a member, a field).
    fn name(&self) -> &[u8];
    /// Append the element to a reply.
    fn push_reply(self, out: &mut Vec<Reply>);
}

/// A page of HSCAN, SSCAN or ZSCAN: `scan` visits one page of elements from a cursor, given
/// COUNT, and returns the next cursor ([`crate::set::Set::scan`], [`crate::hash::Hash::scan`],
/// [`crate::zset::ZSet::scan`]: a page costs what it holds, and an element present for the
/// whole iteration is returned).
///
/// A collection Redis 7.0 would hold compact (`compact`: a listpack hash, an intset) is
/// returned whole with cursor 0, whatever the cursor and COUNT, as Redis returns it.
pub(crate) fn scan_members<I: ScanItem>(
    compact: bool,
    cursor: u64,
    options: &keys::ScanOptions,
    scan: impl FnOnce(u64, usize, &mut dyn FnMut(I)) -> u64,
) -> Reply {
    let (cursor, count) = if compact { (0, usize::MAX) } else { (cursor, options.count) };
    let mut out = Vec::new();
    let next = scan(cursor, count, &mut |item: I| {
        if options.pattern.as_ref().is_none_or(|p| crate::glob::matches(p, item.name(), false)) {
            item.push_reply(&mut out);
        }
    });
    scan_page(next, out)
}

/// What HSCAN, SSCAN or ZSCAN scans, and how.
pub(crate) struct ScanTarget<'c, C> {
    pub collection: &'c C,
    /// Whether Redis 7.0 would hold it compact (`OBJECT ENCODING` listpack or intset), and
    /// so return it whole.
    pub compact: bool,
    pub cursor: u64,
    pub options: keys::ScanOptions,
}

/// HSCAN, SSCAN and ZSCAN's arguments and collection, checked in Redis's order: the cursor,
/// then the key (a missing one is `None`, the empty page, whatever the options; another type
/// is WRONGTYPE), then the options.
pub(crate) fn scan_target<'c, C: crate::value::Collection>(
    ctx: &'c mut crate::exec::Ctx,
    args: &[Bytes],
) -> Result<Option<ScanTarget<'c, C>>, Reply> {
    let (cursor, _) = keys::parse_scan(args.get(..3).unwrap_or_default(), 2, false)?;
    let Some(entry) = ctx.lookup_read(arg(args, 1)?) else {
        return Ok(None);
    };
    let compact = matches!(entry.value.encoding_with(entry.encoding), "listpack" | "intset");
    let collection = C::view(&mut entry.value).ok_or_else(errors::wrong_type)?;
    let (_, options) = keys::parse_scan(args, 2, false)?;
    Ok(Some(ScanTarget { collection, compact, cursor, options }))
}

/// A SCAN-family reply: the next cursor and the elements.
pub(crate) fn scan_page(next: u64, elements: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::Bulk(Bytes::from(next.to_string())), Reply::Array(elements)])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::client::Client;
    use crate::Engine;

    /// One HSCAN/SSCAN page: the next cursor and the elements.
    fn page(reply: Reply) -> (String, Vec<String>) {
        let Reply::Array(parts) = reply else { panic!("not a scan page: {reply:?}") };
        let text = |r: &Reply| match r {
            Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("not a bulk string: {other:?}"),
        };
        let Reply::Array(elements) = &parts[1] else { panic!("no elements: {parts:?}") };
        (text(&parts[0]), elements.iter().map(text).collect())
    }

    /// Scans `key` to the end with `command` (HSCAN, SSCAN) and `options`, running `between`
    /// before each call after the first; the elements seen and the size of each page.
    fn scan_all(
        e: &Engine,
        c: &mut Client,
        [command, key]: [&str; 2],
        options: &[&str],
        mut between: impl FnMut(&Engine, &mut Client),
    ) -> (Vec<String>, Vec<usize>) {
        let (mut cursor, mut seen, mut pages) = ("0".to_string(), Vec::new(), Vec::new());
        loop {
            let mut line = vec![command, key, &cursor];
            line.extend(options);
            let (next, elements) = page(e.run_text(c, &line));
            pages.push(elements.len() / if command == "HSCAN" { 2 } else { 1 });
            seen.extend(elements);
            if next == "0" {
                return (seen, pages);
            }
            assert!(pages.len() < 100_000, "{command} did not come back to cursor 0");
            cursor = next;
            between(e, c);
        }
    }

    /// Redis returns a listpack hash or an intset whole, cursor 0 next, whatever the cursor
    /// and COUNT (checked against redis-server 7.0.15), in the order it holds them: a hash's
    /// fields as inserted, an intset ascending.
    #[test]
    fn a_compact_collection_is_one_page() {
        let (e, mut c) = (Engine::new(crate::EngineOptions::default()), Client::new(1, true));
        e.run_text(&mut c, &["HSET", "h", "b", "1", "a", "2", "c", "3"]);
        e.run_text(&mut c, &["SADD", "s", "30", "-4", "10", "7"]);
        for cursor in ["0", "12345"] {
            let hash = page(e.run_text(&mut c, &["HSCAN", "h", cursor, "COUNT", "1"]));
            assert_eq!(hash, ("0".into(), ["b", "1", "a", "2", "c", "3"].map(String::from).to_vec()));
            let set = page(e.run_text(&mut c, &["SSCAN", "s", cursor, "COUNT", "1"]));
            assert_eq!(set, ("0".into(), ["-4", "7", "10", "30"].map(String::from).to_vec()));
        }
        let matched = page(e.run_text(&mut c, &["HSCAN", "h", "0", "MATCH", "[ab]"]));
        assert_eq!(matched.1, ["b", "1", "a", "2"].map(String::from).to_vec());
        // Strings make a set a hashtable in Redis 7.0: paged by COUNT.
        let letters: Vec<String> = ('a'..='z').map(String::from).collect();
        let mut sadd = vec!["SADD", "t"];
        sadd.extend(letters.iter().map(String::as_str));
        e.run_text(&mut c, &sadd);
        let (next, first) = page(e.run_text(&mut c, &["SSCAN", "t", "0", "COUNT", "5"]));
        assert_ne!(next, "0");
        assert_eq!(first.len(), 5);
    }

    /// A full scan of a large set or hash pages by COUNT (no page holds more, so a call costs
    /// what it returns) and returns every element present for the whole iteration while
    /// others come and go between the calls.
    #[test]
    fn a_large_collection_is_scanned_by_count_missing_nothing_that_stays() {
        let (e, mut c) = (Engine::new(crate::EngineOptions::default()), Client::new(1, true));
        let members = 20_000;
        for chunk in (0..members).collect::<Vec<_>>().chunks(1_000) {
            let names: Vec<String> = chunk.iter().map(|i| format!("m{i}")).collect();
            let mut sadd = vec!["SADD", "big"];
            sadd.extend(names.iter().map(String::as_str));
            e.run_text(&mut c, &sadd);
            let mut hset = vec!["HSET", "hash"];
            for name in &names {
                hset.extend([name.as_str(), name.as_str()]);
            }
            e.run_text(&mut c, &hset);
        }
        let mut churn = 0;
        let (seen, pages) = scan_all(&e, &mut c, ["SSCAN", "big"], &["COUNT", "100"], |e, c| {
            // One member added and one of those removed again between every two calls.
            churn += 1;
            e.run_text(c, &["SADD", "big", &format!("new{churn}")]);
            e.run_text(c, &["SREM", "big", &format!("new{}", churn - 1)]);
        });
        assert!(pages.iter().all(|&page| page <= 100), "a page over COUNT: {:?}", pages.iter().max());
        let seen: HashSet<String> = seen.into_iter().collect();
        assert!((0..members).all(|i| seen.contains(&format!("m{i}"))), "a member that stayed was missed");

        let (pairs, pages) = scan_all(&e, &mut c, ["HSCAN", "hash"], &["COUNT", "100"], |_, _| {});
        assert_eq!(pages.len(), members / 100, "pages of 100 fields");
        assert_eq!(pairs.len(), 2 * members);
        assert!(pairs.chunks(2).all(|pair| pair[0] == pair[1]), "each field with its own value");
        let fields: HashSet<&String> = pairs.iter().step_by(2).collect();
        assert_eq!(fields.len(), members, "every field once");

        let (matched, _) = scan_all(&e, &mut c, ["SSCAN", "big"], &["MATCH", "m19*"], |_, _| {});
        let expected = (0..members).filter(|i| i.to_string().starts_with("19")).count();
        assert_eq!(matched.len(), expected);
        assert!(matched.iter().all(|m| m.starts_with("m19")));
    }
}
