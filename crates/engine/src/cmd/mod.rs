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

/// The most elements a negative-count HRANDFIELD/SRANDMEMBER/ZRANDMEMBER may return.
/// Redis streams such replies; StayKV builds them, so an absurd count is refused instead of
/// exhausting memory.
pub(crate) const MAX_RANDOM_REPEATS: i64 = 1 << 24;

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

/// A page of a collection scan (HSCAN, SSCAN, ZSCAN).
///
/// The cursor is a position in the order of a fixed hash of the members, so an element
/// present for the whole iteration is returned exactly once, whatever else is added or
/// removed. Members sharing a hash are never split across pages. Each call costs O(n) in the
/// collection size — fine for the small collections session data keeps; a full scan of a
/// huge set costs O(n²/COUNT).
pub(crate) fn scan_members<'a, I>(items: I, cursor: u64, options: &keys::ScanOptions) -> Reply
where
    I: Iterator<Item = (&'a [u8], Vec<Reply>)>,
{
    use std::hash::BuildHasher;
    let hasher = foldhash::fast::FixedState::with_seed(0x5ca1ab1e);
    // Cursor 0 starts; stored cursors are hash+1 so that 0 never means "after hash 0".
    let mut page: Vec<(u64, &[u8], Vec<Reply>)> = items
        .map(|(m, extra)| (hasher.hash_one(m).saturating_add(1), m, extra))
        .filter(|(h, _, _)| *h > cursor)
        .collect();
    page.sort_unstable_by_key(|(h, _, _)| *h);
    let mut out = Vec::new();
    let mut next = 0;
    let mut last_hash = None;
    for (taken, (hash, member, extra)) in page.into_iter().enumerate() {
        if taken >= options.count && last_hash != Some(hash) {
            next = last_hash.unwrap_or(0);
            break;
        }
        last_hash = Some(hash);
        if options.pattern.as_ref().is_none_or(|p| crate::glob::matches(p, member, false)) {
            out.push(bulk_copy(member));
            out.extend(extra);
        }
    }
    Reply::Array(vec![Reply::Bulk(Bytes::from(next.to_string())), Reply::Array(out)])
}
