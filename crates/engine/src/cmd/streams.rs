//! Streams (Redis's `t_stream.c`).
//!
//! Effects are exact and self-contained, as Redis propagates them: XADD is logged with the ID
//! it generated (never `*`) and without its trimming clause; a trim that removed entries is
//! logged as `XTRIM key MAXLEN = <length left>`, so an approximate (`~`) trim replays to the
//! same entries whatever the node layout.

use bytes::Bytes;
use staykv_resp::{Protocol, Reply};

use super::{arg, int_arg, is, own, read_out};
use crate::command::{flags::*, CmdResult, CommandSpec, SubcommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::key_spec::{key::*, KeySpec};
use crate::num::i64_bytes;
use crate::stream::{parse_id, NodeLimits, ParsedId, Stream, StreamId, Trim};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", -5, WRITE | DENYOOM | FAST, "stream", xadd)
        .key_specs(&[
            KeySpec::index(1, RW | UPDATE).note("UPDATE instead of INSERT because of the optional trimming feature")
        ])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("xlen", 2, READONLY | FAST, "stream", xlen).key_specs(&[KeySpec::index(1, RO)]),
    CommandSpec::new("xrange", -4, READONLY, "stream", xrange).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("xrevrange", -4, READONLY, "stream", xrevrange).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("xdel", -3, WRITE | FAST, "stream", xdel).key_specs(&[KeySpec::index(1, RW | DELETE)]),
    CommandSpec::new("xtrim", -4, WRITE, "stream", xtrim)
        .key_specs(&[KeySpec::index(1, RW | DELETE)])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("xsetid", -3, WRITE | DENYOOM | FAST, "stream", xsetid)
        .key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("xread", -4, READONLY | BLOCKING, "stream", xread)
        .key_finder(xread_keys)
        .key_specs(&[KeySpec::keyword("STREAMS", 1, RO | ACCESS).range(-1, 1, 2)]),
    CommandSpec::new("xinfo", -2, READONLY, "stream", xinfo).subcommands(XINFO_SUBCOMMANDS),
];

/// The XINFO subcommands StayKV has, with Redis 7's arities (checked before the handler).
const XINFO_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("help", 2, LOADING | STALE).categories(&["stream"]),
    SubcommandSpec::new("stream", -3, READONLY).categories(&["stream"]).key_specs(&[KeySpec::index(2, RO | ACCESS)]),
    SubcommandSpec::new("groups", 3, READONLY).categories(&["stream"]).key_specs(&[KeySpec::index(2, RO | ACCESS)]),
    SubcommandSpec::new("consumers", 4, READONLY)
        .categories(&["stream"])
        .key_specs(&[KeySpec::index(2, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
];

pub(crate) const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

pub(crate) fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Stream>, Reply> {
    ctx.read_collection(key)
}

pub(crate) fn write<'c>(ctx: &'c mut Ctx, key: &[u8], create: bool) -> Result<Option<&'c mut Stream>, Reply> {
    ctx.write_collection(key, create)
}

/// An ID argument (`-`/`+` allowed when `special`), a missing sequence read as `missing_seq`.
pub(crate) fn id_arg(arg: &[u8], special: bool, missing_seq: u64) -> Result<StreamId, Reply> {
    parse_id(arg, special, false).map(|id| id.resolve(missing_seq)).ok_or_else(|| err(INVALID_ID))
}

/// `[id, [field, value, ...]]`.
pub(crate) fn entry_reply(id: StreamId, fields: &[Bytes]) -> Reply {
    Reply::Array(vec![Reply::Bulk(id.to_bytes()), Reply::bulks(fields.iter().map(read_out))])
}

/// Entries of `stream` from `start` to `end` (inclusive), newest first when `rev`; at most
/// `count` of them (0 = all).
fn range_reply(stream: &Stream, start: StreamId, end: StreamId, count: usize, rev: bool) -> Reply {
    if start > end {
        return Reply::Array(Vec::new());
    }
    let limit = if count == 0 { usize::MAX } else { count };
    let range = stream.entries.range(start..=end);
    let entries: Vec<Reply> = if rev {
        range.rev().take(limit).map(|(id, f)| entry_reply(*id, f)).collect()
    } else {
        range.take(limit).map(|(id, f)| entry_reply(*id, f)).collect()
    };
    Reply::Array(entries)
}

/// Trimming options shared by XADD and XTRIM.
#[derive(Debug, Default)]
struct TrimArgs {
    how: Option<Trim>,
    approx: bool,
    /// Entries an approximate trim may remove at most (0 = no limit).
    limit: u64,
}

/// What XADD found before its fields.
#[derive(Debug, Default)]
struct AddArgs {
    trim: TrimArgs,
    no_mkstream: bool,
    /// `None` for `*`.
    id: Option<ParsedId>,
    /// Where the field/value pairs start.
    fields_at: usize,
}

/// Parse XADD's or XTRIM's options from `args[2..]` in Redis's order of checks
/// (`streamParseAddOrTrimArgsOrReply`).
fn parse_add_or_trim(args: &[Bytes], xadd: bool, limits: NodeLimits) -> Result<AddArgs, Reply> {
    let mut out = AddArgs::default();
    let mut limit_given = false;
    let mut i = 2;
    while let Some(option) = args.get(i) {
        let more = args.len() - 1 - i;
        if xadd && &option[..] == b"*" {
            break;
        } else if (is(option, "maxlen") || is(option, "minid")) && more > 0 {
            if out.trim.how.is_some() {
                return Err(err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible"));
            }
            out.trim.approx = false;
            match args.get(i + 1).map(|b| &b[..]) {
                Some(b"~") if more >= 2 => {
                    out.trim.approx = true;
                    i += 1;
                }
                Some(b"=") if more >= 2 => i += 1,
                _ => {}
            }
            let value = arg(args, i + 1)?;
            out.trim.how = Some(if is(option, "maxlen") {
                let max = int_arg(value)?;
                Trim::MaxLen(u64::try_from(max).map_err(|_| err("ERR The MAXLEN argument must be >= 0."))?)
            } else {
                Trim::MinId(id_arg(value, false, 0)?)
            });
            i += 1;
        } else if is(option, "limit") && more > 0 {
            let limit = int_arg(arg(args, i + 1)?)?;
            out.trim.limit = u64::try_from(limit).map_err(|_| err("ERR The LIMIT argument must be >= 0."))?;
            limit_given = true;
            i += 1;
        } else if xadd && is(option, "nomkstream") {
            out.no_mkstream = true;
        } else if xadd {
            out.id = Some(parse_id(option, false, true).ok_or_else(|| err(INVALID_ID))?);
            break;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    if out.trim.limit > 0 && out.trim.how.is_none() {
        return Err(err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && out.trim.how.is_none() {
        return Err(err("ERR syntax error, XTRIM must be called with a trimming strategy"));
    }
    if limit_given && !out.trim.approx {
        return Err(err("ERR syntax error, LIMIT cannot be used without the special ~ option"));
    }
    if out.trim.approx && !limit_given {
        out.trim.limit = limits.default_trim_limit();
    }
    out.fields_at = i + 1;
    Ok(out)
}

/// Trim `key` as asked; a trim that removed anything is logged as an exact `MAXLEN`.
fn trim_and_log(ctx: &mut Ctx, key: &Bytes, trim: &TrimArgs) -> Result<u64, Reply> {
    let Some(how) = trim.how else { return Ok(0) };
    let Some(stream) = write(ctx, key, false)? else { return Ok(0) };
    let removed = stream.trim(how, trim.approx, trim.limit);
    let left = stream.len();
    if removed > 0 {
        let maxlen = [&b"XTRIM"[..], key, b"MAXLEN", b"="].map(Bytes::copy_from_slice);
        let mut effect = maxlen.to_vec();
        effect.push(i64_bytes(left as i64));
        ctx.propagate(effect);
    }
    Ok(removed)
}

fn xadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let limits = ctx.engine.stream_nodes.limits();
    let parsed = parse_add_or_trim(args, true, limits)?;
    let fields = args.get(parsed.fields_at..).unwrap_or_default();
    if fields.len() < 2 || !fields.len().is_multiple_of(2) {
        return Err(errors::wrong_arity("xadd"));
    }
    // `0` is `0-0` here, refused before the key is looked at (so never created).
    if matches!(parsed.id, Some(ParsedId::Full(StreamId::MIN) | ParsedId::MsOnly(0))) {
        return Err(err("ERR The ID specified in XADD must be greater than 0-0"));
    }
    let now = ctx.now;
    let Some(stream) = write(ctx, key, !parsed.no_mkstream)? else { return Ok(Reply::Nil) };
    if stream.last_id == StreamId::MAX {
        return Err(err("ERR The stream has exhausted the last possible ID, unable to add more items"));
    }
    let id = match parsed.id {
        None => stream.auto_id(now),
        // Redis's own words for a millisecond whose sequence numbers are used up.
        Some(ParsedId::MsAuto(ms)) if ms == stream.last_id.ms && stream.last_id.seq == u64::MAX => {
            return Err(err("ERR Elements are too large to be stored"));
        }
        Some(ParsedId::MsAuto(ms)) => stream.id_for_ms(ms),
        Some(explicit) => Some(explicit.resolve(0)).filter(|id| *id > stream.last_id),
    };
    let id =
        id.ok_or_else(|| err("ERR The ID specified in XADD is equal or smaller than the target stream top item"))?;
    stream.append(id, fields.iter().map(own).collect(), limits);
    let mut effect = vec![Bytes::from_static(b"XADD"), key.clone(), id.to_bytes()];
    effect.extend(fields.iter().cloned());
    ctx.propagate(effect);
    trim_and_log(ctx, key, &parsed.trim)?;
    Ok(Reply::Bulk(id.to_bytes()))
}

fn xtrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let parsed = parse_add_or_trim(args, false, ctx.engine.stream_nodes.limits())?;
    Ok(Reply::Int(trim_and_log(ctx, key, &parsed.trim)? as i64))
}

fn xlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(read(ctx, arg(args, 1)?)?.map_or(0, |s| s.len() as i64)))
}

/// An XRANGE bound: `-`, `+`, an ID, an incomplete ID, or `(` and an exclusive ID.
pub(crate) fn interval_bound(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    match arg.strip_prefix(b"(") {
        Some(rest) if !rest.is_empty() => Ok((id_arg(rest, false, missing_seq)?, true)),
        _ => Ok((id_arg(arg, true, missing_seq)?, false)),
    }
}

fn range_generic(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev { (arg(args, 3)?, arg(args, 2)?) } else { (arg(args, 2)?, arg(args, 3)?) };
    let (mut start, exclusive) = interval_bound(start_arg, 0)?;
    if exclusive {
        start = start.next().ok_or_else(|| err("ERR invalid start ID for the interval"))?;
    }
    let (mut end, exclusive) = interval_bound(end_arg, u64::MAX)?;
    if exclusive {
        end = end.prev().ok_or_else(|| err("ERR invalid end ID for the interval"))?;
    }
    let mut count = None;
    let mut i = 4;
    while let Some(option) = args.get(i) {
        match args.get(i + 1) {
            Some(value) if is(option, "count") => count = Some(int_arg(value)?.max(0)),
            _ => return Err(errors::syntax()),
        }
        i += 2;
    }
    let Some(stream) = read(ctx, arg(args, 1)?)? else { return Ok(Reply::Array(Vec::new())) };
    match count {
        Some(0) => Ok(Reply::NilArray),
        Some(n) => Ok(range_reply(stream, start, end, usize::try_from(n).unwrap_or(usize::MAX), rev)),
        None => Ok(range_reply(stream, start, end, 0, rev)),
    }
}

fn xrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, true)
}

fn xdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    if write(ctx, key, false)?.is_none() {
        return Ok(Reply::Int(0));
    }
    // Every ID is checked before any is deleted, so the command never half-runs.
    let ids = args.iter().skip(2).map(|a| id_arg(a, false, 0)).collect::<Result<Vec<_>, _>>()?;
    let Some(stream) = write(ctx, key, false)? else { return Ok(Reply::Int(0)) };
    let deleted = ids.into_iter().filter(|id| stream.delete(*id)).count();
    if deleted > 0 {
        ctx.propagate_args(args);
    }
    Ok(Reply::Int(deleted as i64))
}

fn xsetid(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let id = id_arg(arg(args, 2)?, false, 0)?;
    let (mut entries_added, mut max_deleted) = (None, StreamId::MIN);
    let mut i = 3;
    while let Some(option) = args.get(i) {
        let value = args.get(i + 1).ok_or_else(errors::syntax)?;
        if is(option, "entriesadded") {
            let n = int_arg(value)?;
            entries_added = Some(u64::try_from(n).map_err(|_| err("ERR entries_added must be positive"))?);
        } else if is(option, "maxdeletedid") {
            max_deleted = id_arg(value, false, 0)?;
            if id < max_deleted {
                return Err(err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
            }
        } else {
            return Err(errors::syntax());
        }
        i += 2;
    }
    let Some(stream) = write(ctx, key, false)? else { return Err(err(errors::NO_SUCH_KEY)) };
    if !stream.is_empty() {
        if id < stream.last_entry_id() {
            return Err(err("ERR The ID specified in XSETID is smaller than the target stream top item"));
        }
        if entries_added.is_some_and(|n| n < stream.len() as u64) {
            return Err(err("ERR The entries_added specified in XSETID is smaller than the target stream length"));
        }
    }
    stream.last_id = id;
    if let Some(n) = entries_added {
        stream.entries_added = n;
    }
    if !max_deleted.is_zero() {
        stream.max_deleted = max_deleted;
    }
    // Announced, but no change to watchers or tracking clients: Redis 7.0's XSETID does not
    // signal its key as modified (as its consumer-group commands do not).
    ctx.notify(crate::notify::STREAM, "xsetid", key);
    ctx.log_only(args.to_vec());
    Ok(Reply::Ok)
}

/// Keys of `XREAD|XREADGROUP [options] STREAMS key... id...` (Redis's `xreadGetKeys`).
pub(crate) fn xread_keys(args: &[Bytes]) -> Vec<usize> {
    let mut i = 1;
    while let Some(a) = args.get(i) {
        if is(a, "block") || is(a, "count") {
            i += 2;
        } else if is(a, "group") {
            i += 3;
        } else if is(a, "noack") {
            i += 1;
        } else if is(a, "streams") {
            let n = args.len() - i - 1;
            if n == 0 || !n.is_multiple_of(2) {
                return Vec::new();
            }
            return (i + 1..i + 1 + n / 2).collect();
        } else {
            break;
        }
    }
    Vec::new()
}

/// XREAD's and XREADGROUP's options.
pub(crate) struct ReadArgs<'a> {
    pub(crate) count: usize,
    /// The BLOCK deadline: `None` without BLOCK, `Some(None)` to wait forever.
    pub(crate) block: Option<Option<u64>>,
    /// XREADGROUP's `GROUP <group> <consumer>`.
    pub(crate) group: Option<(&'a Bytes, &'a Bytes)>,
    pub(crate) noack: bool,
    pub(crate) keys: &'a [Bytes],
    pub(crate) ids: &'a [Bytes],
}

/// Parse XREAD's (or, when `xreadgroup`, XREADGROUP's) options in Redis's order of checks.
pub(crate) fn parse_read_args<'a>(ctx: &Ctx, args: &'a [Bytes], xreadgroup: bool) -> Result<ReadArgs<'a>, Reply> {
    let mut out = ReadArgs { count: 0, block: None, group: None, noack: false, keys: &[], ids: &[] };
    let mut streams_given = false;
    let mut i = 1;
    while let Some(option) = args.get(i) {
        let more = args.len() - 1 - i;
        if is(option, "block") && more > 0 {
            if ctx.in_script() {
                return Err(Reply::Error(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(arg(args, 0)?)
                )));
            }
            let ms = crate::num::parse_i64(arg(args, i + 1)?)
                .ok_or_else(|| err("ERR timeout is not an integer or out of range"))?;
            let ms = u64::try_from(ms).map_err(|_| err("ERR timeout is negative"))?;
            // Redis 7.0 checks no range here: a timeout past the clock's waits for ever.
            out.block = Some((ms > 0).then(|| ctx.now.saturating_add(ms)));
            i += 2;
        } else if is(option, "count") && more > 0 {
            out.count = usize::try_from(int_arg(arg(args, i + 1)?)?.max(0)).unwrap_or(usize::MAX);
            i += 2;
        } else if is(option, "streams") && more > 0 {
            let rest = args.get(i + 1..).unwrap_or_default();
            if !rest.len().is_multiple_of(2) {
                // XREADGROUP's words too, in Redis 7.0.
                return Err(err(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            (out.keys, out.ids) = rest.split_at(rest.len() / 2);
            streams_given = true;
            break;
        } else if is(option, "group") && more >= 2 {
            if !xreadgroup {
                return Err(err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."));
            }
            out.group = Some((arg(args, i + 1)?, arg(args, i + 2)?));
            i += 3;
        } else if is(option, "noack") {
            if !xreadgroup {
                return Err(err("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."));
            }
            out.noack = true;
            i += 1;
        } else {
            return Err(errors::syntax());
        }
    }
    if !streams_given {
        return Err(errors::syntax());
    }
    if xreadgroup && out.group.is_none() {
        return Err(err("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(out)
}

/// A multi-stream read reply: a map in RESP3, an array of `[key, entries]` pairs in RESP2.
pub(crate) fn streams_reply(protocol: Protocol, served: Vec<(Bytes, Reply)>) -> Reply {
    if served.is_empty() {
        return Reply::NilArray;
    }
    match protocol {
        Protocol::Resp3 => Reply::Map(served.into_iter().map(|(k, v)| (Reply::Bulk(k), v)).collect()),
        _ => Reply::Array(served.into_iter().map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), v])).collect()),
    }
}

fn xread(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let parsed = parse_read_args(ctx, args, false)?;
    // IDs are resolved first (`$` = the stream's last ID now), checking every key's type.
    let mut after = Vec::with_capacity(parsed.keys.len());
    for (key, id) in parsed.keys.iter().zip(parsed.ids) {
        // A key of another type is passed over once a change woke the command.
        let stream = ctx.engine.blocked.wrong_type_as_missing(ctx.client.id, read(ctx, key))?;
        if &id[..] == b"$" {
            after.push(stream.map_or(StreamId::MIN, |s| s.last_id));
        } else if &id[..] == b">" {
            return Err(err(
                "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            ));
        } else {
            after.push(id_arg(id, false, 0)?);
        }
    }
    let mut served = Vec::new();
    let woken = ctx.engine.blocked.is_waiting(ctx.client.id);
    for (key, gt) in parsed.keys.iter().zip(&after) {
        let Some(stream) = ctx.engine.blocked.wrong_type_as_missing(ctx.client.id, read(ctx, key))? else {
            continue;
        };
        if newest_for(stream, woken) <= *gt || (stream.is_empty() && !woken) {
            continue;
        }
        let Some(start) = gt.next() else { continue };
        served.push((key.clone(), range_reply(stream, start, StreamId::MAX, parsed.count, false)));
    }
    if served.is_empty() {
        if let Some(deadline) = parsed.block {
            // Re-run with `$` resolved, so that what arrives meanwhile is what it reads.
            let rerun = woken_rerun(args, &parsed, after.iter().map(|id| id.to_bytes()));
            ctx.block_reader(parsed.keys, deadline, rerun);
        }
    }
    Ok(streams_reply(ctx.client.protocol, served))
}

/// The ID past which a read finds something new. A woken reader goes by the last ID the
/// stream gave out, as Redis serves blocked readers (`blocked.c`), so an entry added and
/// deleted in one transaction still answers it, with no entries; a first run goes by the
/// last entry present (`streamLastValidID`).
pub(crate) fn newest_for(stream: &Stream, woken: bool) -> StreamId {
    if woken {
        stream.last_id
    } else {
        stream.last_entry_id()
    }
}

/// What a blocked XREAD or XREADGROUP runs when woken: `ids` in place of the IDs given, and
/// `COUNT 1000` if it gave no count, as Redis caps a woken reader
/// (`XREAD_BLOCKED_DEFAULT_COUNT`) so that a low ID does not have it read a whole stream.
pub(crate) fn woken_rerun(args: &[Bytes], parsed: &ReadArgs, ids: impl Iterator<Item = Bytes>) -> Vec<Bytes> {
    let streams_at = args.len().saturating_sub(parsed.keys.len() + parsed.ids.len() + 1);
    let mut rerun = args.get(..streams_at).unwrap_or_default().to_vec();
    if parsed.count == 0 {
        rerun.extend([Bytes::from_static(b"COUNT"), Bytes::from_static(b"1000")]);
    }
    rerun.extend(args.get(streams_at..=streams_at + parsed.keys.len()).unwrap_or_default().iter().cloned());
    rerun.extend(ids);
    rerun
}

fn xinfo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = arg(args, 1)?;
    if is(sub, "help") {
        return Ok(super::help(&[
            "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
            "HELP",
            "    Prints this help.",
        ]));
    }
    if is(sub, "groups") {
        return super::stream_groups::xinfo_groups(ctx, args);
    }
    if is(sub, "consumers") {
        return super::stream_groups::xinfo_consumers(ctx, args);
    }
    let Some(stream) = read(ctx, arg(args, 2)?)? else { return Err(err(errors::NO_SUCH_KEY)) };
    // `FULL [COUNT n]` lists up to n entries and pending entries (10 by default, or for a
    // negative n; 0 for all).
    let full = match args.get(3..).unwrap_or_default() {
        [] => None,
        [full] if is(full, "full") => Some(10),
        [full, count, n] if is(full, "full") && is(count, "count") => Some(match int_arg(n)? {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(10),
        }),
        _ => return Err(errors::subcommand_syntax(sub, "xinfo")),
    };
    let mut fields = vec![
        ("length", Reply::Int(stream.len() as i64)),
        ("radix-tree-keys", Reply::Int(stream.nodes.len() as i64)),
        ("radix-tree-nodes", Reply::Int(stream.nodes.radix_tree_nodes() as i64)),
        ("last-generated-id", Reply::Bulk(stream.last_id.to_bytes())),
        ("max-deleted-entry-id", Reply::Bulk(stream.max_deleted.to_bytes())),
        ("entries-added", Reply::count(stream.entries_added)),
        ("recorded-first-entry-id", Reply::Bulk(stream.first_id().to_bytes())),
    ];
    match full {
        Some(limit) => {
            let entries = stream.entries.iter().take(limit).map(|(id, f)| entry_reply(*id, f));
            fields.push(("entries", Reply::Array(entries.collect())));
            fields.push(("groups", super::stream_groups::full_groups(stream, limit)));
        }
        None => {
            let edge =
                |entry: Option<(&StreamId, &Vec<Bytes>)>| entry.map_or(Reply::Nil, |(id, f)| entry_reply(*id, f));
            fields.push(("groups", Reply::Int(stream.groups.len() as i64)));
            fields.push(("first-entry", edge(stream.entries.iter().next())));
            fields.push(("last-entry", edge(stream.entries.iter().next_back())));
        }
    }
    Ok(Reply::Map(fields.into_iter().map(|(k, v)| (Reply::bulk_str(k), v)).collect()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::exec::NoJournal;
    use crate::host::NoHost;
    use crate::Engine;

    fn run(engine: &Engine, client: &mut Client, now: u64, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        engine.execute(client, &args, now, &NoHost, &NoJournal).reply
    }

    fn setup() -> (Engine, Client) {
        (Engine::new(crate::EngineOptions::default()), Client::new(1, true))
    }

    fn bulk(s: &str) -> Reply {
        Reply::bulk_str(s)
    }

    fn error(reply: Reply) -> String {
        match reply {
            Reply::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn xadd_ids() {
        let (e, mut c) = setup();
        assert_eq!(run(&e, &mut c, 1000, &["XADD", "s", "*", "a", "1"]), bulk("1000-0"));
        assert_eq!(run(&e, &mut c, 1000, &["XADD", "s", "*", "a", "2"]), bulk("1000-1"));
        // The clock going back does not make IDs go back.
        assert_eq!(run(&e, &mut c, 900, &["XADD", "s", "*", "a", "3"]), bulk("1000-2"));
        assert_eq!(run(&e, &mut c, 900, &["XADD", "s", "2000-*", "a", "4"]), bulk("2000-0"));
        assert_eq!(run(&e, &mut c, 900, &["XADD", "s", "2000-*", "a", "4"]), bulk("2000-1"));
        assert_eq!(run(&e, &mut c, 900, &["XADD", "s", "3000", "a", "5"]), bulk("3000-0"));
        assert_eq!(
            error(run(&e, &mut c, 900, &["XADD", "s", "3000-0", "a", "5"])),
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
        );
        assert_eq!(
            error(run(&e, &mut c, 900, &["XADD", "t", "0-0", "a", "5"])),
            "ERR The ID specified in XADD must be greater than 0-0"
        );
        assert_eq!(
            error(run(&e, &mut c, 900, &["XADD", "t", "0", "a", "5"])),
            "ERR The ID specified in XADD must be greater than 0-0"
        );
        assert_eq!(run(&e, &mut c, 900, &["EXISTS", "t"]), Reply::Int(0));
        // Leading blanks are skipped, as strtoull skips them; a sign after them is refused.
        assert_eq!(run(&e, &mut c, 900, &["XADD", "t", " \t4000", "a", "5"]), bulk("4000-0"));
        assert_eq!(error(run(&e, &mut c, 900, &["XADD", "t", " -5000", "a", "5"])), INVALID_ID);
        assert_eq!(
            error(run(&e, &mut c, 900, &["XADD", "s", "*", "a"])),
            "ERR wrong number of arguments for 'xadd' command"
        );
        assert_eq!(error(run(&e, &mut c, 900, &["XADD", "s", "x-1", "a", "b"])), INVALID_ID);
        assert_eq!(run(&e, &mut c, 900, &["XADD", "n", "NOMKSTREAM", "*", "a", "b"]), Reply::Nil);
        assert_eq!(run(&e, &mut c, 900, &["EXISTS", "n"]), Reply::Int(0));
        assert_eq!(run(&e, &mut c, 900, &["XLEN", "s"]), Reply::Int(6));
        assert_eq!(run(&e, &mut c, 900, &["TYPE", "s"]), Reply::Status("stream"));
        run(&e, &mut c, 900, &["SET", "str", "x"]);
        assert_eq!(error(run(&e, &mut c, 900, &["XADD", "str", "*", "a", "b"])), errors::WRONGTYPE);
        run(&e, &mut c, 0, &["XSETID", "s", "18446744073709551615-18446744073709551615"]);
        assert_eq!(
            error(run(&e, &mut c, 900, &["XADD", "s", "*", "a", "b"])),
            "ERR The stream has exhausted the last possible ID, unable to add more items"
        );
    }

    #[test]
    fn xadd_trims_and_options_are_checked() {
        let (e, mut c) = setup();
        for i in 1..=10 {
            run(&e, &mut c, 0, &["XADD", "s", &format!("{i}-0"), "f", "v"]);
        }
        assert_eq!(run(&e, &mut c, 0, &["XADD", "s", "MAXLEN", "5", "11-0", "f", "v"]), bulk("11-0"));
        assert_eq!(run(&e, &mut c, 0, &["XLEN", "s"]), Reply::Int(5));
        // `~` trims whole nodes only: nothing here.
        assert_eq!(run(&e, &mut c, 0, &["XADD", "s", "MAXLEN", "~", "2", "12-0", "f", "v"]), bulk("12-0"));
        assert_eq!(run(&e, &mut c, 0, &["XLEN", "s"]), Reply::Int(6));
        assert_eq!(run(&e, &mut c, 0, &["XTRIM", "s", "MINID", "10"]), Reply::Int(3));
        assert_eq!(run(&e, &mut c, 0, &["XTRIM", "s", "MAXLEN", "=", "1"]), Reply::Int(2));
        assert_eq!(run(&e, &mut c, 0, &["XTRIM", "missing", "MAXLEN", "0"]), Reply::Int(0));
        assert_eq!(error(run(&e, &mut c, 0, &["XTRIM", "s", "MAXLEN", "-1"])), "ERR The MAXLEN argument must be >= 0.");
        assert_eq!(
            error(run(&e, &mut c, 0, &["XTRIM", "s", "MAXLEN", "1", "LIMIT", "10"])),
            "ERR syntax error, LIMIT cannot be used without the special ~ option"
        );
        assert_eq!(
            error(run(&e, &mut c, 0, &["XTRIM", "s", "LIMIT", "10"])),
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        );
        assert_eq!(error(run(&e, &mut c, 0, &["XTRIM", "s", "FOO", "10"])), errors::SYNTAX);
        assert_eq!(error(run(&e, &mut c, 0, &["XADD", "s", "MAXLEN", "x", "*", "f", "v"])), errors::NOT_INTEGER);
    }

    #[test]
    fn ranges() {
        let (e, mut c) = setup();
        for id in ["1-1", "1-2", "2-0", "3-5"] {
            run(&e, &mut c, 0, &["XADD", "s", id, "f", id]);
        }
        let ids = |r: Reply| -> Vec<String> {
            let Reply::Array(items) = r else { panic!("{r:?}") };
            items
                .into_iter()
                .map(|i| match i {
                    Reply::Array(mut p) => match p.remove(0) {
                        Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
                        o => panic!("{o:?}"),
                    },
                    o => panic!("{o:?}"),
                })
                .collect()
        };
        assert_eq!(ids(run(&e, &mut c, 0, &["XRANGE", "s", "-", "+"])), ["1-1", "1-2", "2-0", "3-5"]);
        assert_eq!(ids(run(&e, &mut c, 0, &["XRANGE", "s", "1", "2"])), ["1-1", "1-2", "2-0"]);
        assert_eq!(ids(run(&e, &mut c, 0, &["XRANGE", "s", "(1-1", "(3-5"])), ["1-2", "2-0"]);
        assert_eq!(ids(run(&e, &mut c, 0, &["XREVRANGE", "s", "+", "-", "COUNT", "2"])), ["3-5", "2-0"]);
        assert_eq!(run(&e, &mut c, 0, &["XRANGE", "s", "-", "+", "COUNT", "0"]), Reply::NilArray);
        assert_eq!(run(&e, &mut c, 0, &["XRANGE", "nope", "-", "+"]), Reply::Array(Vec::new()));
        assert_eq!(error(run(&e, &mut c, 0, &["XRANGE", "s", "(-", "+"])), INVALID_ID);
        assert_eq!(
            error(run(&e, &mut c, 0, &["XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"])),
            "ERR invalid start ID for the interval"
        );
        assert_eq!(error(run(&e, &mut c, 0, &["XRANGE", "s", "-", "(0-0"])), "ERR invalid end ID for the interval");
        assert_eq!(error(run(&e, &mut c, 0, &["XRANGE", "s", "-", "+", "COUNT"])), errors::SYNTAX);
    }

    #[test]
    fn xdel_and_xsetid_keep_the_bookkeeping() {
        let (e, mut c) = setup();
        for id in ["1-0", "2-0", "3-0"] {
            run(&e, &mut c, 0, &["XADD", "s", id, "f", "v"]);
        }
        assert_eq!(error(run(&e, &mut c, 0, &["XDEL", "s", "1-0", "bad"])), INVALID_ID);
        assert_eq!(run(&e, &mut c, 0, &["XDEL", "s", "2-0", "9-0"]), Reply::Int(1));
        assert_eq!(run(&e, &mut c, 0, &["XDEL", "missing", "1-0"]), Reply::Int(0));
        assert_eq!(
            error(run(&e, &mut c, 0, &["XSETID", "s", "1-0"])),
            "ERR The ID specified in XSETID is smaller than the target stream top item"
        );
        assert_eq!(
            error(run(&e, &mut c, 0, &["XSETID", "s", "2-5"])),
            "ERR The ID specified in XSETID is smaller than the target stream top item"
        );
        assert_eq!(run(&e, &mut c, 0, &["XSETID", "s", "5-0", "ENTRIESADDED", "10", "MAXDELETEDID", "4-0"]), Reply::Ok);
        assert_eq!(error(run(&e, &mut c, 0, &["XSETID", "nokey", "5-0"])), errors::NO_SUCH_KEY);
        let Reply::Map(info) = run(&e, &mut c, 0, &["XINFO", "STREAM", "s"]) else { panic!() };
        let field = |name: &str| info.iter().find(|(k, _)| *k == bulk(name)).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(field("length"), Reply::Int(2));
        assert_eq!(field("last-generated-id"), bulk("5-0"));
        assert_eq!(field("max-deleted-entry-id"), bulk("4-0"));
        assert_eq!(field("entries-added"), Reply::Int(10));
        assert_eq!(field("recorded-first-entry-id"), bulk("1-0"));
        assert_eq!(error(run(&e, &mut c, 0, &["XINFO", "STREAM", "nokey"])), errors::NO_SUCH_KEY);
    }

    #[test]
    fn xread_serves_what_is_newer() {
        let (e, mut c) = setup();
        run(&e, &mut c, 0, &["XADD", "a", "1-0", "f", "1"]);
        run(&e, &mut c, 0, &["XADD", "a", "2-0", "f", "2"]);
        run(&e, &mut c, 0, &["XADD", "b", "5-0", "g", "5"]);
        let reply = run(&e, &mut c, 0, &["XREAD", "COUNT", "1", "STREAMS", "a", "b", "1-0", "0"]);
        let expected = Reply::Array(vec![
            Reply::Array(vec![
                bulk("a"),
                Reply::Array(vec![entry_reply(StreamId::new(2, 0), &[Bytes::from("f"), Bytes::from("2")])]),
            ]),
            Reply::Array(vec![
                bulk("b"),
                Reply::Array(vec![entry_reply(StreamId::new(5, 0), &[Bytes::from("g"), Bytes::from("5")])]),
            ]),
        ]);
        assert_eq!(reply, expected);
        assert_eq!(run(&e, &mut c, 0, &["XREAD", "STREAMS", "a", "$"]), Reply::NilArray);
        // No waker (not a connection): BLOCK answers the timeout reply at once.
        assert_eq!(run(&e, &mut c, 0, &["XREAD", "BLOCK", "10", "STREAMS", "a", "$"]), Reply::NilArray);
        assert_eq!(
            error(run(&e, &mut c, 0, &["XREAD", "STREAMS", "a", "b", "0"])),
            "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
        );
        assert_eq!(
            error(run(&e, &mut c, 0, &["XREAD", "BLOCK", "-1", "STREAMS", "a", "$"])),
            "ERR timeout is negative"
        );
        assert!(error(run(&e, &mut c, 0, &["XREAD", "STREAMS", "a", ">"])).contains("XREADGROUP"));
        assert_eq!(xread_keys(&["XREAD", "BLOCK", "0", "STREAMS", "a", "b", "1", "2"].map(Bytes::from)), vec![4, 5]);
        c.protocol = Protocol::Resp3;
        let reply = run(&e, &mut c, 0, &["XREAD", "STREAMS", "b", "0"]);
        assert!(matches!(reply, Reply::Map(ref m) if m.len() == 1), "{reply:?}");
    }

    #[test]
    fn effects_are_explicit() {
        use std::sync::Mutex;
        #[derive(Default)]
        struct Log(Mutex<Vec<Vec<String>>>);
        impl crate::exec::Journal for Log {
            fn append(&self, _time_ms: u64, effects: &[crate::Effect]) -> Result<u64, String> {
                let mut log = self.0.lock().unwrap();
                for effect in effects {
                    log.push(effect.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect());
                }
                Ok(1)
            }
        }
        let (e, mut c) = setup();
        let log = Log::default();
        let mut exec = |now: u64, args: &[&str]| {
            let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
            e.execute(&mut c, &args, now, &NoHost, &log).reply
        };
        for _ in 0..3 {
            exec(7, &["XADD", "s", "MAXLEN", "2", "*", "f", "v"]);
        }
        let logged = log.0.lock().unwrap().clone();
        assert_eq!(logged[0], ["XADD", "s", "7-0", "f", "v"]);
        assert_eq!(logged[2], ["XADD", "s", "7-2", "f", "v"]);
        assert_eq!(logged[3], ["XTRIM", "s", "MAXLEN", "=", "2"]);
        // Replaying the log rebuilds the same stream.
        let replayed = Engine::new(crate::EngineOptions::default());
        for effect in &logged {
            let argv = effect.iter().map(|a| Bytes::from(a.clone())).collect();
            replayed.replay(7, &[crate::Effect::new(0, argv)]).unwrap();
        }
        let mut c2 = Client::new(2, true);
        assert_eq!(
            run(&replayed, &mut c2, 0, &["XRANGE", "s", "-", "+"]),
            run(&e, &mut c, 0, &["XRANGE", "s", "-", "+"])
        );
    }
}
