//! Stream consumer groups (Redis's `t_stream.c`): XGROUP, XREADGROUP, XACK, XPENDING,
//! XCLAIM, XAUTOCLAIM, and XINFO GROUPS / CONSUMERS.
//!
//! Effects say what was decided, as Redis propagates it, so that replay rebuilds the same
//! groups, pending lists, delivery counts and delivery times:
//! - every entry a read or a claim hands to a consumer is logged as
//!   `XCLAIM key group consumer 0 id TIME <ms> RETRYCOUNT <n> FORCE JUSTID LASTID <group id>`,
//!   which replays whatever the clock says; a pending entry whose stream entry was deleted,
//!   and which a claim therefore drops, is logged the same way (the replayed XCLAIM finds no
//!   entry and drops it too);
//! - XREADGROUP then logs where the group got to, `XGROUP SETID key group id ENTRIESREAD n`
//!   (with NOACK that is all it logs), and a consumer it creates as `XGROUP CREATECONSUMER`;
//!   unlike Redis it also logs the re-deliveries of history reads, so their counts survive;
//! - XGROUP CREATE and SETID are logged with `$` resolved and their `ENTRIESREAD`.
//!
//! Consumer groups have keyspace events of their own (`xgroup-create`...), announced here:
//! the effects' names would say nothing about them. As in Redis 7.0, group changes are not
//! changes WATCH sees (only a stream XGROUP CREATE MKSTREAM makes is), so effects are
//! recorded with `log_only`.

use std::ops::Bound;

use bytes::Bytes;
use staykv_resp::Reply;

use super::streams::{
    entry_reply, id_arg, interval_bound, newest_for, parse_read_args, read, streams_reply, woken_rerun, write,
    xread_keys,
};
use super::{arg, help, int_arg, is, own, read_out, text};
use crate::command::{flags::*, CmdResult, CommandSpec, SubcommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::key_spec::{key::*, KeySpec};
use crate::notify::STREAM;
use crate::num::{i64_bytes, parse_i64};
use crate::stream::{next_delivery_count, Group, Stream, StreamId, INVALID_ENTRIES_READ};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xgroup", -2, WRITE, "stream", xgroup).subcommands(XGROUP_SUBCOMMANDS),
    CommandSpec::new("xreadgroup", -7, WRITE | BLOCKING, "stream", xreadgroup)
        .key_finder(xread_keys)
        .key_specs(&[KeySpec::keyword("STREAMS", 4, RO | ACCESS).range(-1, 1, 2)]),
    CommandSpec::new("xack", -4, WRITE | FAST, "stream", xack).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("xpending", -3, READONLY, "stream", xpending)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("xclaim", -6, WRITE | FAST, "stream", xclaim)
        .key_specs(&[KeySpec::index(1, RW | UPDATE)])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("xautoclaim", -6, WRITE | FAST, "stream", xautoclaim)
        .key_specs(&[KeySpec::index(1, RW | DELETE)])
        .tips(&["nondeterministic_output"]),
];

/// The XGROUP subcommands, with Redis 7's arities (checked before the handler).
const XGROUP_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("create", -5, WRITE | DENYOOM)
        .categories(&["stream"])
        .key_specs(&[KeySpec::index(2, RW | INSERT)]),
    SubcommandSpec::new("setid", -5, WRITE).categories(&["stream"]).key_specs(&[KeySpec::index(2, RW | UPDATE)]),
    SubcommandSpec::new("destroy", 4, WRITE).categories(&["stream"]).key_specs(&[KeySpec::index(2, RW | DELETE)]),
    SubcommandSpec::new("createconsumer", 5, WRITE | DENYOOM)
        .categories(&["stream"])
        .key_specs(&[KeySpec::index(2, RW | INSERT)]),
    SubcommandSpec::new("delconsumer", 5, WRITE).categories(&["stream"]).key_specs(&[KeySpec::index(2, RW | DELETE)]),
    SubcommandSpec::new("help", 2, LOADING | STALE).categories(&["stream"]),
];

const KEY_REQUIRED: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want \
                            to use the MKSTREAM option to create an empty stream automatically.";

/// Redis's error for a group (or its key) that XREADGROUP, XACK... cannot find.
fn no_key_or_group(key: &[u8], group: &[u8], suffix: &str) -> Reply {
    Reply::Error(format!("NOGROUP No such key '{}' or consumer group '{}'{suffix}", c_text(key), c_text(group)))
}

/// Redis's error for a missing group of an existing key (XGROUP, XINFO CONSUMERS).
fn no_group(key: &[u8], group: &[u8]) -> Reply {
    Reply::Error(format!("NOGROUP No such consumer group '{}' for key name '{}'", c_text(group), c_text(key)))
}

/// A name as Redis's `%s` prints it in these errors: a C string, cut at its first NUL.
fn c_text(name: &[u8]) -> String {
    text(super::c_str(name))
}

/// The stream at `key` if it has group `group`, else the NOGROUP error ending with `suffix`.
fn with_group<'c>(ctx: &'c mut Ctx, key: &[u8], group: &[u8], suffix: &str) -> Result<&'c mut Stream, Reply> {
    match read(ctx, key)? {
        Some(stream) if stream.groups.contains_key(group) => Ok(stream),
        _ => Err(no_key_or_group(key, group, suffix)),
    }
}

/// An integer argument, or the command's own error for it.
fn int_or(arg: &[u8], error: &str) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(|| err(error))
}

fn u64_bytes(n: u64) -> Bytes {
    Bytes::from(n.to_string())
}

/// Milliseconds from `since` to `now`, 0 if `since` is later.
fn elapsed(now: u64, since: u64) -> i64 {
    i64::try_from(now.saturating_sub(since)).unwrap_or(i64::MAX)
}

/// Effects and events gathered while a command holds the stream, recorded once it is done.
#[derive(Default)]
struct Log {
    effects: Vec<Vec<Bytes>>,
    consumer_created: bool,
}

impl Log {
    fn consumer_created(&mut self, key: &Bytes, group: &Bytes, consumer: &Bytes) {
        self.consumer_created = true;
        let name = Bytes::from_static(b"CREATECONSUMER");
        self.effects.push(vec![Bytes::from_static(b"XGROUP"), name, key.clone(), group.clone(), consumer.clone()]);
    }

    /// The XCLAIM that replays pending entry `id` of `group` as it is now.
    fn claimed(&mut self, key: &Bytes, group_name: &Bytes, group: &Group, id: StreamId) {
        let Some(pending) = group.pel.get(&id) else { return };
        let argv = [
            &b"XCLAIM"[..],
            key,
            group_name,
            &pending.consumer,
            b"0",
            &id.to_bytes(),
            b"TIME",
            &u64_bytes(pending.delivery_time),
            b"RETRYCOUNT",
            &u64_bytes(pending.delivery_count),
            b"FORCE",
            b"JUSTID",
            b"LASTID",
            &group.last_id.to_bytes(),
        ];
        self.effects.push(argv.into_iter().map(Bytes::copy_from_slice).collect());
    }

    /// The XGROUP SETID that replays the group's position.
    fn position(&mut self, key: &Bytes, group_name: &Bytes, group: &Group) {
        self.effects.push(setid_effect(key, group_name, group.last_id, group.entries_read));
    }

    fn record(self, ctx: &mut Ctx, key: &Bytes) {
        if self.consumer_created {
            ctx.notify(STREAM, "xgroup-createconsumer", key);
        }
        for effect in self.effects {
            ctx.log_only(effect);
        }
    }
}

fn setid_effect(key: &Bytes, group: &Bytes, id: StreamId, entries_read: i64) -> Vec<Bytes> {
    let words = [&b"XGROUP"[..], b"SETID", key, group, &id.to_bytes(), b"ENTRIESREAD", &i64_bytes(entries_read)];
    words.into_iter().map(Bytes::copy_from_slice).collect()
}

// ---- XGROUP ----

/// XGROUP CREATE's and SETID's options.
struct GroupOptions {
    mkstream: bool,
    entries_read: i64,
}

fn entries_read_arg(arg: &[u8]) -> Result<i64, Reply> {
    let n = int_arg(arg)?;
    if n < 0 && n != INVALID_ENTRIES_READ {
        return Err(err("ERR value for ENTRIESREAD must be positive or -1"));
    }
    Ok(n)
}

/// Options are checked before the key, as Redis does.
fn group_options(sub: &[u8], args: &[Bytes]) -> Result<GroupOptions, Reply> {
    let mut out = GroupOptions { mkstream: false, entries_read: INVALID_ENTRIES_READ };
    let syntax = || errors::subcommand_syntax(sub, "xgroup");
    let create = is(sub, "create");
    if !create && !is(sub, "setid") {
        return Ok(out);
    }
    // One loop for both, as Redis parses them: an ENTRIESREAD value is refused before a
    // stray argument after it is.
    let mut i = 5;
    while let Some(option) = args.get(i) {
        if create && is(option, "mkstream") {
            out.mkstream = true;
            i += 1;
        } else if let (true, Some(value)) = (is(option, "entriesread"), args.get(i + 1)) {
            out.entries_read = entries_read_arg(value)?;
            i += 2;
        } else {
            return Err(syntax());
        }
    }
    Ok(out)
}

fn xgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = arg(args, 1)?;
    if is(sub, "help") {
        return Ok(help(&[
            "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
            "HELP",
            "    Prints this help.",
        ]));
    }
    let (key, name) = (arg(args, 2)?, arg(args, 3)?);
    let options = group_options(sub, args)?;
    let has_group = write(ctx, key, false)?.map(|s| s.groups.contains_key(&name[..]));
    match has_group {
        None if !options.mkstream => return Err(err(KEY_REQUIRED)),
        Some(false) if !is(sub, "create") && !is(sub, "destroy") => return Err(no_group(key, name)),
        _ => {}
    }
    // Repeated options parse, but do not fit Redis's windows, checked only now, after the
    // key and the group: CREATE takes MKSTREAM and ENTRIESREAD n at most, SETID ENTRIESREAD n.
    let most = if is(sub, "create") { 8 } else { 7 };
    if (is(sub, "create") || is(sub, "setid")) && args.len() > most {
        return Err(errors::subcommand_syntax(sub, "xgroup"));
    }
    if is(sub, "create") {
        return group_create(ctx, args, &options);
    }
    if is(sub, "setid") {
        return group_setid(ctx, args, options.entries_read);
    }
    let now = ctx.now;
    let Some(stream) = write(ctx, key, false)? else { return Err(err(KEY_REQUIRED)) };
    let (changed, reply, event) = if is(sub, "destroy") {
        let removed = stream.groups.remove(&name[..]).is_some();
        (removed, Reply::Int(i64::from(removed)), "xgroup-destroy")
    } else {
        let consumer = arg(args, 4)?;
        let group = stream.groups.get_mut(&name[..]).ok_or_else(|| no_group(key, name))?;
        if is(sub, "createconsumer") {
            let created = group.create_consumer(&own(consumer), now);
            (created, Reply::Int(i64::from(created)), "xgroup-createconsumer")
        } else {
            let pending = group.delete_consumer(consumer);
            (pending.is_some(), Reply::Int(pending.unwrap_or(0) as i64), "xgroup-delconsumer")
        }
    };
    if changed {
        ctx.notify(STREAM, event, key);
        ctx.log_only(args.to_vec());
    }
    Ok(reply)
}

fn group_create(ctx: &mut Ctx, args: &[Bytes], options: &GroupOptions) -> CmdResult {
    let (key, name, id_text) = (arg(args, 2)?, arg(args, 3)?, arg(args, 4)?);
    let id = match &id_text[..] {
        b"$" => write(ctx, key, false)?.map_or(StreamId::MIN, |s| s.last_id),
        _ => id_arg(id_text, false, 0)?,
    };
    // Only now, when nothing can fail, does MKSTREAM create the stream.
    let created = options.mkstream && write(ctx, key, false)?.is_none();
    let Some(stream) = write(ctx, key, options.mkstream)? else { return Err(err(KEY_REQUIRED)) };
    if stream.groups.contains_key(&name[..]) {
        return Err(err("BUSYGROUP Consumer Group name already exists"));
    }
    stream.groups.insert(own(name), Group::new(id, options.entries_read));
    ctx.notify(STREAM, "xgroup-create", key);
    let mut effect = vec![Bytes::from_static(b"XGROUP"), Bytes::from_static(b"CREATE"), key.clone(), name.clone()];
    effect.extend([id.to_bytes(), Bytes::from_static(b"ENTRIESREAD"), i64_bytes(options.entries_read)]);
    if options.mkstream {
        effect.push(Bytes::from_static(b"MKSTREAM"));
    }
    // Only a stream it creates is a change WATCH sees, as in Redis.
    if created {
        ctx.propagate(effect);
    } else {
        ctx.log_only(effect);
    }
    Ok(Reply::Ok)
}

fn group_setid(ctx: &mut Ctx, args: &[Bytes], entries_read: i64) -> CmdResult {
    let (key, name, id_text) = (arg(args, 2)?, arg(args, 3)?, arg(args, 4)?);
    let Some(stream) = write(ctx, key, false)? else { return Err(err(KEY_REQUIRED)) };
    let id = match &id_text[..] {
        b"$" => stream.last_id,
        _ => id_arg(id_text, true, 0)?,
    };
    let group = stream.groups.get_mut(&name[..]).ok_or_else(|| no_group(key, name))?;
    group.last_id = id;
    group.entries_read = entries_read;
    ctx.notify(STREAM, "xgroup-setid", key);
    ctx.log_only(setid_effect(key, name, id, entries_read));
    Ok(Reply::Ok)
}

// ---- XREADGROUP ----

/// Who reads, and how, for one XREADGROUP.
struct GroupRead {
    group: Bytes,
    consumer: Bytes,
    /// At most this many entries per stream (0 = all).
    count: usize,
    noack: bool,
}

impl GroupRead {
    fn limit(&self) -> usize {
        if self.count == 0 {
            usize::MAX
        } else {
            self.count
        }
    }
}

fn xreadgroup(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let parsed = parse_read_args(ctx, args, true)?;
    let Some((group, consumer)) = parsed.group else { return Err(errors::syntax()) };
    // Every key, group and ID is checked before anything is delivered. `>` is the maximum
    // ID, as in Redis (so that ID itself also means "new entries").
    let mut after = Vec::with_capacity(parsed.keys.len());
    for (key, id) in parsed.keys.iter().zip(parsed.ids) {
        check_read_group(ctx, key, group)?;
        after.push(match &id[..] {
            b">" => StreamId::MAX,
            b"$" => {
                return Err(err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the \
                                history of this consumer by specifying a proper ID, or use the > ID to get new \
                                messages. The $ ID would just return an empty result set."))
            }
            _ => id_arg(id, false, 0)?,
        });
    }
    let reader = GroupRead { group: own(group), consumer: own(consumer), count: parsed.count, noack: parsed.noack };
    let mut served = Vec::new();
    for (key, gt) in parsed.keys.iter().zip(after) {
        if let Some(entries) = serve(ctx, key, &reader, gt)? {
            served.push((key.clone(), entries));
        }
    }
    if served.is_empty() {
        if let Some(deadline) = parsed.block {
            // Re-run as it is: `>` means "after the group's last ID" whenever it runs.
            let rerun = woken_rerun(args, &parsed, parsed.ids.iter().cloned());
            ctx.block_group_consumer(parsed.keys, deadline, own(group), rerun);
        }
    }
    Ok(streams_reply(ctx.client.protocol, served))
}

/// That `key` holds group `group`. A blocked XREADGROUP woken because they went away (the
/// key deleted, or now of another type) gets the errors Redis 7.0 unblocks it with.
fn check_read_group(ctx: &mut Ctx, key: &[u8], group: &[u8]) -> Result<(), Reply> {
    let stream = ctx.engine.blocked.wrong_type_as_missing(ctx.client.id, read(ctx, key))?;
    let found = stream.map(|s| s.groups.contains_key(group));
    let woken = ctx.engine.blocked.is_waiting(ctx.client.id);
    match found {
        Some(true) => Ok(()),
        None if woken => Err(err("UNBLOCKED the stream key no longer exists")),
        Some(false) if woken => Err(err("NOGROUP the consumer group this client was blocked on no longer exists")),
        _ => Err(no_key_or_group(key, group, " in XREADGROUP with GROUP option")),
    }
}

/// Serve one stream of an XREADGROUP: new entries when `gt` is `>` (`None` if there are
/// none), else the consumer's pending entries after `gt`. The consumer is created (or seen)
/// only when served.
fn serve(ctx: &mut Ctx, key: &Bytes, reader: &GroupRead, gt: StreamId) -> Result<Option<Reply>, Reply> {
    let now = ctx.now;
    let mut log = Log::default();
    let woken = ctx.engine.blocked.is_waiting(ctx.client.id);
    let Some(stream) = read(ctx, key)? else { return Ok(None) };
    let newest = newest_for(stream, woken);
    if gt == StreamId::MAX && stream.groups.get(&reader.group).is_none_or(|g| newest <= g.last_id) {
        // Nothing new: Redis 7.0 neither creates nor refreshes the consumer then.
        return Ok(None);
    }
    if let Some(group) = stream.groups.get_mut(&reader.group) {
        if group.touch_consumer(&reader.consumer, now) {
            log.consumer_created(key, &reader.group, &reader.consumer);
        }
    }
    let reply = match gt {
        StreamId::MAX => deliver_new(stream, key, reader, now, &mut log),
        _ => Some(deliver_history(stream, key, reader, gt, now, &mut log)),
    };
    log.record(ctx, key);
    Ok(reply)
}

/// The entries after the group's last ID, each becoming pending for the consumer (unless
/// NOACK); the group moves past them.
fn deliver_new(stream: &mut Stream, key: &Bytes, reader: &GroupRead, now: u64, log: &mut Log) -> Option<Reply> {
    let last = stream.groups.get(&reader.group)?.last_id;
    let batch: Vec<(StreamId, Vec<Bytes>)> = stream
        .entries
        .range(last.next()?..)
        .take(reader.limit())
        .map(|(id, f)| (*id, f.iter().map(read_out).collect()))
        .collect();
    let mut replies = Vec::with_capacity(batch.len());
    for (id, fields) in batch {
        let entries_read = stream.entries_read_after(stream.groups.get(&reader.group)?, id);
        let group = stream.groups.get_mut(&reader.group)?;
        group.last_id = id;
        group.entries_read = entries_read;
        if !reader.noack {
            group.assign(id, &reader.consumer, now, 1);
            log.claimed(key, &reader.group, group, id);
        }
        replies.push(entry_reply(id, &fields));
    }
    // The XCLAIMs carry the last ID but not the read count, so the position is logged too.
    log.position(key, &reader.group, stream.groups.get(&reader.group)?);
    Some(Reply::Array(replies))
}

/// The consumer's pending entries after `gt`, delivered again; one deleted from the stream
/// meanwhile is reported as its ID with a nil body, and stays pending.
fn deliver_history(
    stream: &mut Stream,
    key: &Bytes,
    reader: &GroupRead,
    gt: StreamId,
    now: u64,
    log: &mut Log,
) -> Reply {
    let Stream { entries, groups, .. } = stream;
    let Some(group) = groups.get_mut(&reader.group) else { return Reply::Array(Vec::new()) };
    let (Some(start), Some(consumer)) = (gt.next(), group.consumers.get(&reader.consumer)) else {
        return Reply::Array(Vec::new());
    };
    let ids: Vec<StreamId> = consumer.pending.range(start..).take(reader.limit()).copied().collect();
    let mut replies = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(fields) = entries.get(&id) else {
            replies.push(Reply::Array(vec![Reply::Bulk(id.to_bytes()), Reply::NilArray]));
            continue;
        };
        if let Some(pending) = group.pel.get_mut(&id) {
            pending.delivery_time = now;
            pending.delivery_count = next_delivery_count(pending.delivery_count);
        }
        log.claimed(key, &reader.group, group, id);
        replies.push(entry_reply(id, fields));
    }
    Reply::Array(replies)
}

// ---- XACK, XPENDING ----

fn xack(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, name) = (arg(args, 1)?, arg(args, 2)?);
    if !read(ctx, key)?.is_some_and(|s| s.groups.contains_key(&name[..])) {
        // No key or no group: nothing to acknowledge (only a wrong type is an error).
        return Ok(Reply::Int(0));
    }
    // All IDs are checked first: the command never half-runs.
    let ids = args.iter().skip(3).map(|a| id_arg(a, false, 0)).collect::<Result<Vec<_>, _>>()?;
    let group = with_group(ctx, key, name, "")?.groups.get_mut(&name[..]).ok_or_else(|| no_group(key, name))?;
    let acked = ids.into_iter().filter(|id| group.ack(*id)).count();
    if acked > 0 {
        ctx.log_only(args.to_vec());
    }
    Ok(Reply::Int(acked as i64))
}

fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, name) = (arg(args, 1)?, arg(args, 2)?);
    let summary = args.len() == 3;
    if !summary && !(6..=9).contains(&args.len()) {
        return Err(errors::syntax());
    }
    let range = if summary { None } else { Some(pending_range(args)?) };
    let now = ctx.now;
    let stream = with_group(ctx, key, name, "")?;
    let group = stream.groups.get(&name[..]).ok_or_else(|| no_key_or_group(key, name, ""))?;
    Ok(match range {
        None => pending_summary(group),
        Some(range) => pending_entries(group, &range, now),
    })
}

/// XPENDING's extended form: `[IDLE ms] start end count [consumer]`.
struct PendingRange {
    min_idle: i64,
    start: StreamId,
    end: StreamId,
    count: usize,
    consumer: Option<Bytes>,
}

fn pending_range(args: &[Bytes]) -> Result<PendingRange, Reply> {
    let mut at = 3;
    let mut min_idle = 0;
    if is(arg(args, 3)?, "idle") {
        min_idle = int_arg(arg(args, 4)?)?;
        if args.len() < 8 {
            return Err(errors::syntax());
        }
        at = 5;
    }
    let count = usize::try_from(int_arg(arg(args, at + 2)?)?.max(0)).unwrap_or(usize::MAX);
    let (mut start, exclusive) = interval_bound(arg(args, at)?, 0)?;
    if exclusive {
        start = start.next().ok_or_else(|| err("ERR invalid start ID for the interval"))?;
    }
    let (mut end, exclusive) = interval_bound(arg(args, at + 1)?, u64::MAX)?;
    if exclusive {
        end = end.prev().ok_or_else(|| err("ERR invalid end ID for the interval"))?;
    }
    Ok(PendingRange { min_idle, start, end, count, consumer: args.get(at + 3).cloned() })
}

/// `[count, first, last, [[consumer, count as a bulk string]...]]`.
fn pending_summary(group: &Group) -> Reply {
    let (Some((first, _)), Some((last, _))) = (group.pel.first_key_value(), group.pel.last_key_value()) else {
        return Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]);
    };
    let consumers = group
        .consumers
        .iter()
        .filter(|(_, c)| !c.pending.is_empty())
        .map(|(name, c)| Reply::Array(vec![Reply::Bulk(name.clone()), Reply::Bulk(u64_bytes(c.pending.len() as u64))]))
        .collect();
    Reply::Array(vec![
        Reply::Int(group.pel.len() as i64),
        Reply::Bulk(first.to_bytes()),
        Reply::Bulk(last.to_bytes()),
        Reply::Array(consumers),
    ])
}

/// `[[id, consumer, idle ms, deliveries]...]`, of one consumer if named (none if unknown).
fn pending_entries(group: &Group, range: &PendingRange, now: u64) -> Reply {
    if range.start > range.end {
        return Reply::Array(Vec::new());
    }
    let ids: Box<dyn Iterator<Item = &StreamId>> = match &range.consumer {
        None => Box::new(group.pel.range(range.start..=range.end).map(|(id, _)| id)),
        Some(name) => match group.consumers.get(name) {
            Some(consumer) => Box::new(consumer.pending.range(range.start..=range.end)),
            None => return Reply::Array(Vec::new()),
        },
    };
    let rows = ids
        .filter_map(|id| group.pel.get(id).map(|p| (id, p)))
        .filter(|(_, p)| range.min_idle == 0 || elapsed(now, p.delivery_time) >= range.min_idle)
        .take(range.count)
        .map(|(id, p)| {
            Reply::Array(vec![
                Reply::Bulk(id.to_bytes()),
                Reply::Bulk(p.consumer.clone()),
                Reply::Int(elapsed(now, p.delivery_time)),
                Reply::count(p.delivery_count),
            ])
        })
        .collect();
    Reply::Array(rows)
}

// ---- XCLAIM, XAUTOCLAIM ----

/// One claiming command at work on a group: it hands entries to `consumer`, created (or
/// seen) when it takes the first.
struct Claimer<'a> {
    key: &'a Bytes,
    group: &'a Bytes,
    consumer: Bytes,
    now: u64,
    seen: bool,
    log: Log,
}

impl Claimer<'_> {
    /// Give pending entry `id` to the consumer, delivered at `time`, `count` deliveries.
    fn take(&mut self, group: &mut Group, id: StreamId, time: u64, count: u64) {
        if !self.seen {
            self.seen = true;
            if group.touch_consumer(&self.consumer, self.now) {
                self.log.consumer_created(self.key, self.group, &self.consumer);
            }
        }
        group.assign(id, &self.consumer, time, count);
        self.log.claimed(self.key, self.group, group, id);
    }

    /// A pending entry whose stream entry is gone leaves the group; logged as the claim that
    /// replays as the same removal.
    fn drop_deleted(&mut self, group: &mut Group, id: StreamId) {
        self.log.claimed(self.key, self.group, group, id);
        group.ack(id);
    }
}

/// XCLAIM's options after its IDs.
struct ClaimOptions {
    /// The delivery time IDLE or TIME asked for, not yet checked against the clock.
    delivery_time: Option<i64>,
    retry_count: Option<u64>,
    force: bool,
    justid: bool,
    last_id: StreamId,
}

fn claim_options(options: &[Bytes], now: i64) -> Result<ClaimOptions, Reply> {
    let mut out =
        ClaimOptions { delivery_time: None, retry_count: None, force: false, justid: false, last_id: StreamId::MIN };
    let mut i = 0;
    while let Some(option) = options.get(i) {
        let value = options.get(i + 1);
        match value {
            _ if is(option, "force") => out.force = true,
            _ if is(option, "justid") => out.justid = true,
            Some(v) if is(option, "idle") => {
                let idle = int_or(v, "ERR Invalid IDLE option argument for XCLAIM")?;
                out.delivery_time = Some(now.saturating_sub(idle));
                i += 1;
            }
            Some(v) if is(option, "time") => {
                out.delivery_time = Some(int_or(v, "ERR Invalid TIME option argument for XCLAIM")?);
                i += 1;
            }
            Some(v) if is(option, "retrycount") => {
                // A negative count is as good as none: deliveries are counted up.
                out.retry_count = u64::try_from(int_or(v, "ERR Invalid RETRYCOUNT option argument for XCLAIM")?).ok();
                i += 1;
            }
            Some(v) if is(option, "lastid") => {
                out.last_id = id_arg(v, false, 0)?;
                i += 1;
            }
            _ => return Err(errors::quoting("ERR Unrecognized XCLAIM option '", option, "'")),
        }
        i += 1;
    }
    Ok(out)
}

fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, name) = (arg(args, 1)?, arg(args, 2)?);
    // A missing key or group is reported before any bad argument, as Redis checks.
    with_group(ctx, key, name, "")?;
    let min_idle = int_or(arg(args, 4)?, "ERR Invalid min-idle-time argument for XCLAIM")?.max(0);
    // IDs come first; the first argument that is not one starts the options.
    let ids: Vec<StreamId> = args.iter().skip(5).map_while(|a| id_arg(a, false, 0).ok()).collect();
    let now = ctx.now;
    let now_signed = i64::try_from(now).unwrap_or(i64::MAX);
    let options = claim_options(args.get(5 + ids.len()..).unwrap_or_default(), now_signed)?;
    // A bogus delivery time (in the future, negative) is taken as now rather than refused.
    let time = options.delivery_time.filter(|t| (0..=now_signed).contains(t)).map_or(now, |t| t as u64);
    let mut claimer = Claimer { key, group: name, consumer: own(arg(args, 3)?), now, seen: false, log: Log::default() };
    let Stream { entries, groups, .. } = with_group(ctx, key, name, "")?;
    let group = groups.get_mut(&name[..]).ok_or_else(|| no_key_or_group(key, name, ""))?;
    let moved_on = options.last_id > group.last_id;
    if moved_on {
        group.last_id = options.last_id;
    }
    let mut replies = Vec::new();
    for id in ids {
        let pending = group.pel.get(&id);
        let Some(fields) = entries.get(&id) else {
            if pending.is_some() {
                claimer.drop_deleted(group, id);
            }
            continue;
        };
        let base = match pending {
            Some(p) if min_idle > 0 && elapsed(now, p.delivery_time) < min_idle => continue,
            Some(p) => p.delivery_count,
            // FORCE makes an entry pending that was not, as if delivered once.
            None if options.force => 1,
            None => continue,
        };
        let count = options.retry_count.unwrap_or(if options.justid { base } else { next_delivery_count(base) });
        claimer.take(group, id, time, count);
        replies.push(if options.justid { Reply::Bulk(id.to_bytes()) } else { entry_reply(id, fields) });
    }
    // The XCLAIMs logged carry the new last ID; without any, it is logged by itself.
    if moved_on && claimer.log.effects.is_empty() {
        claimer.log.position(key, name, group);
    }
    claimer.log.record(ctx, key);
    Ok(Reply::Array(replies))
}

/// XAUTOCLAIM's COUNT may not exceed this (Redis sizes a buffer by it).
const MAX_AUTOCLAIM_COUNT: i64 = i64::MAX / 16;

/// XAUTOCLAIM scans at most this many pending entries per entry it may claim.
const ATTEMPTS_FACTOR: u64 = 10;

fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, name) = (arg(args, 1)?, arg(args, 2)?);
    // Redis looks the key up (a counted, announced hit or miss) before it parses the
    // arguments, and checks its type and looks for the group after them.
    let _ = ctx.lookup_read(key);
    let min_idle = int_or(arg(args, 4)?, "ERR Invalid min-idle-time argument for XAUTOCLAIM")?.max(0);
    let (mut start, exclusive) = interval_bound(arg(args, 5)?, 0)?;
    if exclusive {
        start = start.next().ok_or_else(|| err("ERR invalid start ID for the interval"))?;
    }
    let (mut count, mut justid) = (100, false);
    let mut i = 6;
    while let Some(option) = args.get(i) {
        match args.get(i + 1) {
            Some(value) if is(option, "count") => {
                count = parse_i64(value)
                    .filter(|n| (1..=MAX_AUTOCLAIM_COUNT).contains(n))
                    .ok_or_else(|| err("ERR COUNT must be > 0"))? as u64;
                i += 1;
            }
            _ if is(option, "justid") => justid = true,
            _ => return Err(errors::syntax()),
        }
        i += 1;
    }
    let now = ctx.now;
    let mut claimer = Claimer { key, group: name, consumer: own(arg(args, 3)?), now, seen: false, log: Log::default() };
    let Stream { entries, groups, .. } =
        ctx.existing_collection::<Stream>(key)?.ok_or_else(|| no_key_or_group(key, name, ""))?;
    let group = groups.get_mut(&name[..]).ok_or_else(|| no_key_or_group(key, name, ""))?;
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    let mut attempts = count.saturating_mul(ATTEMPTS_FACTOR);
    let mut from = Bound::Included(start);
    while attempts > 0 && count > 0 {
        attempts -= 1;
        let Some((&id, pending)) = group.pel.range((from, Bound::Unbounded)).next() else { break };
        from = Bound::Excluded(id);
        let Some(fields) = entries.get(&id) else {
            claimer.drop_deleted(group, id);
            deleted.push(Reply::Bulk(id.to_bytes()));
            count -= 1;
            continue;
        };
        if min_idle > 0 && elapsed(now, pending.delivery_time) < min_idle {
            continue;
        }
        let deliveries = if justid { pending.delivery_count } else { next_delivery_count(pending.delivery_count) };
        claimer.take(group, id, now, deliveries);
        claimed.push(if justid { Reply::Bulk(id.to_bytes()) } else { entry_reply(id, fields) });
        count -= 1;
    }
    // The cursor: the first pending entry after the last one looked at, 0-0 at the end.
    let next = group.pel.range((from, Bound::Unbounded)).next().map_or(StreamId::MIN, |(id, _)| *id);
    claimer.log.record(ctx, key);
    Ok(Reply::Array(vec![Reply::Bulk(next.to_bytes()), Reply::Array(claimed), Reply::Array(deleted)]))
}

// ---- XINFO GROUPS, XINFO CONSUMERS (dispatched from `streams::xinfo`) ----

fn fields(pairs: Vec<(&'static str, Reply)>) -> Reply {
    Reply::Map(pairs.into_iter().map(|(k, v)| (Reply::bulk_str(k), v)).collect())
}

/// A group's `entries-read` and `lag`, nil when unknown.
fn progress(stream: &Stream, group: &Group) -> [(&'static str, Reply); 2] {
    let entries_read = (group.entries_read != INVALID_ENTRIES_READ).then_some(group.entries_read);
    [
        ("entries-read", entries_read.map_or(Reply::Nil, Reply::Int)),
        ("lag", stream.lag(group).map_or(Reply::Nil, Reply::Int)),
    ]
}

pub(crate) fn xinfo_groups(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(stream) = read(ctx, arg(args, 2)?)? else { return Err(err(errors::NO_SUCH_KEY)) };
    let groups = stream.groups.iter().map(|(name, group)| {
        let mut pairs = vec![
            ("name", Reply::Bulk(name.clone())),
            ("consumers", Reply::Int(group.consumers.len() as i64)),
            ("pending", Reply::Int(group.pel.len() as i64)),
            ("last-delivered-id", Reply::Bulk(group.last_id.to_bytes())),
        ];
        pairs.extend(progress(stream, group));
        fields(pairs)
    });
    Ok(Reply::Array(groups.collect()))
}

/// XINFO STREAM FULL's `groups`: each group with up to `limit` of its pending entries, and
/// its consumers with up to `limit` of theirs. Times are absolute (Unix ms), not idle times.
pub(crate) fn full_groups(stream: &Stream, limit: usize) -> Reply {
    let groups = stream.groups.iter().map(|(name, group)| {
        let pel = group.pel.iter().take(limit).map(|(id, p)| {
            let times = [Reply::count(p.delivery_time), Reply::count(p.delivery_count)];
            Reply::Array(
                [Reply::Bulk(id.to_bytes()), Reply::Bulk(p.consumer.clone())].into_iter().chain(times).collect(),
            )
        });
        let consumers = group.consumers.iter().map(|(consumer_name, consumer)| {
            let pending = consumer.pending.iter().take(limit).filter_map(|id| {
                let p = group.pel.get(id)?;
                Some(Reply::Array(vec![
                    Reply::Bulk(id.to_bytes()),
                    Reply::count(p.delivery_time),
                    Reply::count(p.delivery_count),
                ]))
            });
            fields(vec![
                ("name", Reply::Bulk(consumer_name.clone())),
                ("seen-time", Reply::count(consumer.seen_time)),
                ("pel-count", Reply::Int(consumer.pending.len() as i64)),
                ("pending", Reply::Array(pending.collect())),
            ])
        });
        let mut pairs =
            vec![("name", Reply::Bulk(name.clone())), ("last-delivered-id", Reply::Bulk(group.last_id.to_bytes()))];
        pairs.extend(progress(stream, group));
        pairs.extend([
            ("pel-count", Reply::Int(group.pel.len() as i64)),
            ("pending", Reply::Array(pel.collect())),
            ("consumers", Reply::Array(consumers.collect())),
        ]);
        fields(pairs)
    });
    Reply::Array(groups.collect())
}

pub(crate) fn xinfo_consumers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, name) = (arg(args, 2)?, arg(args, 3)?);
    let now = ctx.now;
    let Some(stream) = read(ctx, key)? else { return Err(err(errors::NO_SUCH_KEY)) };
    let group = stream.groups.get(&name[..]).ok_or_else(|| no_group(key, name))?;
    let consumers = group.consumers.iter().map(|(name, consumer)| {
        fields(vec![
            ("name", Reply::Bulk(name.clone())),
            ("pending", Reply::Int(consumer.pending.len() as i64)),
            ("idle", Reply::Int(elapsed(now, consumer.seen_time))),
        ])
    });
    Ok(Reply::Array(consumers.collect()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::client::Client;
    use crate::exec::NoJournal;
    use crate::host::NoHost;
    use crate::Engine;

    /// Records each batch of effects with its time, to replay them.
    #[derive(Default)]
    struct Journal(Mutex<Vec<(u64, Vec<Bytes>)>>);

    impl crate::exec::Journal for Journal {
        fn append(&self, time_ms: u64, effects: &[crate::Effect]) -> Result<u64, String> {
            let mut log = self.0.lock().unwrap();
            log.extend(effects.iter().map(|e| (time_ms, e.argv.clone())));
            Ok(1)
        }
    }

    fn run_with(engine: &Engine, journal: &dyn crate::exec::Journal, now: u64, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        engine.execute(&mut Client::new(1, true), &args, now, &NoHost, journal).reply
    }

    fn run(engine: &Engine, now: u64, args: &[&str]) -> Reply {
        run_with(engine, &NoJournal, now, args)
    }

    /// Redis prints the key and group of a NOGROUP error with `%s`: cut at a NUL.
    #[test]
    fn nogroup_errors_print_names_as_c_strings() {
        let engine = Engine::new(crate::EngineOptions::default());
        let reply = run(&engine, 1, &["XREADGROUP", "GROUP", "g\0x", "c", "STREAMS", "k\0z", ">"]);
        assert_eq!(
            reply,
            Reply::Error("NOGROUP No such key 'k' or consumer group 'g' in XREADGROUP with GROUP option".into())
        );
        run(&engine, 1, &["XADD", "k\0z", "1-1", "f", "v"]);
        let reply = run(&engine, 1, &["XGROUP", "SETID", "k\0z", "g\0x", "$"]);
        assert_eq!(reply, Reply::Error("NOGROUP No such consumer group 'g' for key name 'k'".into()));
    }

    fn engine_with(ids: &[&str]) -> Engine {
        let e = Engine::new(crate::EngineOptions::default());
        for id in ids {
            run(&e, 0, &["XADD", "s", id, "f", id]);
        }
        run(&e, 0, &["XGROUP", "CREATE", "s", "g", "0"]);
        e
    }

    fn bulk(s: &str) -> Reply {
        Reply::bulk_str(s)
    }

    fn bulks(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(|s| bulk(s)).collect())
    }

    /// Group `g` of stream `s`, as the engine holds it.
    fn group(e: &Engine) -> Group {
        let mut out = None;
        e.for_each_entry(|_, entry| match &entry.value {
            crate::value::Value::Stream(s) if entry.key.as_slice() == b"s" => out = s.groups.get(&b"g"[..]).cloned(),
            _ => {}
        });
        out.unwrap()
    }

    #[test]
    fn pending_lists_follow_reads_claims_acks_and_deletions() {
        let e = engine_with(&["1-0", "2-0", "3-0"]);
        run(&e, 10, &["XREADGROUP", "GROUP", "g", "a", "COUNT", "2", "STREAMS", "s", ">"]);
        run(&e, 20, &["XREADGROUP", "GROUP", "g", "b", "STREAMS", "s", ">"]);
        let g = group(&e);
        assert_eq!(g.pel.len(), 3);
        assert_eq!(g.consumers[&b"a"[..]].pending.len(), 2);
        assert_eq!(g.pel[&StreamId::new(3, 0)].delivery_time, 20);
        // A history read delivers again: the count goes up, the owner stays.
        run(&e, 30, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", "0"]);
        assert_eq!(group(&e).pel[&StreamId::new(1, 0)].delivery_count, 2);
        // A claim moves the entry from one consumer's list to the other's.
        run(&e, 40, &["XCLAIM", "s", "g", "b", "0", "1-0"]);
        let g = group(&e);
        assert_eq!(g.pel[&StreamId::new(1, 0)].consumer, Bytes::from("b"));
        assert_eq!(g.pel[&StreamId::new(1, 0)].delivery_count, 3);
        assert!(!g.consumers[&b"a"[..]].pending.contains(&StreamId::new(1, 0)));
        assert!(g.consumers[&b"b"[..]].pending.contains(&StreamId::new(1, 0)));
        assert_eq!(g.consumers[&b"b"[..]].seen_time, 40);
        // XACK removes from both lists; deleting a consumer drops its entries.
        assert_eq!(run(&e, 50, &["XACK", "s", "g", "1-0", "1-0", "9-0"]), Reply::Int(1));
        assert!(!group(&e).consumers[&b"b"[..]].pending.contains(&StreamId::new(1, 0)));
        assert_eq!(run(&e, 50, &["XGROUP", "DELCONSUMER", "s", "g", "b"]), Reply::Int(1));
        let g = group(&e);
        assert_eq!(g.pel.keys().copied().collect::<Vec<_>>(), [StreamId::new(2, 0)]);
        assert!(g.consumers.values().flat_map(|c| &c.pending).all(|id| g.pel.contains_key(id)));
        // Idle times are counted from the command's clock.
        let rows = run(&e, 1030, &["XPENDING", "s", "g", "-", "+", "10"]);
        assert_eq!(
            rows,
            Reply::Array(vec![Reply::Array(vec![bulk("2-0"), bulk("a"), Reply::Int(1000), Reply::Int(2)])])
        );
    }

    #[test]
    fn xautoclaim_cursor_and_deleted_ids() {
        let e = engine_with(&["1-0", "2-0", "3-0", "4-0", "5-0"]);
        run(&e, 10, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]);
        run(&e, 10, &["XDEL", "s", "2-0", "3-0"]);
        // COUNT counts deleted entries too; the cursor is the next pending ID.
        let reply = run(&e, 20, &["XAUTOCLAIM", "s", "g", "b", "0", "0", "COUNT", "2", "JUSTID"]);
        assert_eq!(reply, Reply::Array(vec![bulk("3-0"), bulks(&["1-0"]), bulks(&["2-0"])]));
        let reply = run(&e, 20, &["XAUTOCLAIM", "s", "g", "b", "0", "3-0", "COUNT", "2", "JUSTID"]);
        assert_eq!(reply, Reply::Array(vec![bulk("5-0"), bulks(&["4-0"]), bulks(&["3-0"])]));
        let reply = run(&e, 20, &["XAUTOCLAIM", "s", "g", "b", "0", "5-0", "JUSTID"]);
        assert_eq!(reply, Reply::Array(vec![bulk("0-0"), bulks(&["5-0"]), bulks(&[])]));
        let g = group(&e);
        assert_eq!(g.pel.len(), 3);
        // JUSTID does not count a delivery.
        assert!(g.pel.values().all(|p| p.consumer == "b" && p.delivery_count == 1));
        // Entries not idle long enough are skipped, but still scanned (the cursor moves on).
        let reply = run(&e, 25, &["XAUTOCLAIM", "s", "g", "c", "10", "0", "COUNT", "1"]);
        assert_eq!(reply, Reply::Array(vec![bulk("0-0"), bulks(&[]), bulks(&[])]));
        assert!(!group(&e).consumers.contains_key(&b"c"[..]), "a consumer that took nothing is not created");
    }

    #[test]
    fn effects_replay_to_the_same_groups() {
        let e = engine_with(&["1-0", "2-0", "3-0", "4-0"]);
        let journal = Journal::default();
        let script: &[(u64, &[&str])] = &[
            (100, &["XGROUP", "CREATE", "s", "h", "$", "ENTRIESREAD", "4"]),
            (100, &["XGROUP", "CREATE", "t", "g", "$", "MKSTREAM"]),
            (110, &["XREADGROUP", "GROUP", "g", "a", "COUNT", "2", "STREAMS", "s", ">"]),
            (120, &["XREADGROUP", "GROUP", "g", "b", "NOACK", "COUNT", "1", "STREAMS", "s", ">"]),
            (130, &["XREADGROUP", "GROUP", "g", "b", "STREAMS", "s", ">"]),
            (140, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", "0"]),
            (150, &["XCLAIM", "s", "g", "c", "0", "1-0", "IDLE", "30", "RETRYCOUNT", "9"]),
            (160, &["XCLAIM", "s", "g", "c", "0", "3-0", "LASTID", "9-0"]),
            (165, &["XDEL", "s", "4-0"]),
            (170, &["XAUTOCLAIM", "s", "g", "d", "0", "0"]),
            (180, &["XACK", "s", "g", "2-0"]),
            (190, &["XGROUP", "CREATECONSUMER", "s", "g", "e"]),
            (195, &["XGROUP", "DELCONSUMER", "s", "g", "b"]),
            (200, &["XGROUP", "SETID", "s", "h", "1-0"]),
        ];
        for (now, args) in script {
            assert!(!matches!(run_with(&e, &journal, *now, args), Reply::Error(_)), "{args:?}");
        }
        let replayed = Engine::new(crate::EngineOptions::default());
        run(&replayed, 0, &["XADD", "s", "1-0", "f", "1-0"]);
        for id in ["2-0", "3-0", "4-0"] {
            run(&replayed, 0, &["XADD", "s", id, "f", id]);
        }
        run(&replayed, 0, &["XGROUP", "CREATE", "s", "g", "0"]);
        for (time, argv) in journal.0.lock().unwrap().iter() {
            replayed.replay(*time, &[crate::Effect::new(0, argv.clone())]).unwrap();
        }
        assert_eq!(group(&replayed), group(&e));
        for args in [
            &["XINFO", "GROUPS", "s"][..],
            &["XINFO", "CONSUMERS", "s", "g"],
            &["XPENDING", "s", "g", "-", "+", "100"],
            &["XINFO", "GROUPS", "t"],
        ] {
            assert_eq!(run(&replayed, 1000, args), run(&e, 1000, args), "{args:?}");
        }
        let logged: Vec<Vec<Bytes>> = journal.0.lock().unwrap().iter().map(|(_, a)| a.clone()).collect();
        let claim =
            ["XCLAIM", "s", "g", "a", "0", "1-0", "TIME", "110", "RETRYCOUNT", "1", "FORCE", "JUSTID", "LASTID", "1-0"];
        assert!(logged.contains(&claim.map(Bytes::from).to_vec()), "{logged:?}");
        let position = ["XGROUP", "SETID", "s", "g", "2-0", "ENTRIESREAD", "2"];
        assert!(logged.contains(&position.map(Bytes::from).to_vec()), "{logged:?}");
    }
}
