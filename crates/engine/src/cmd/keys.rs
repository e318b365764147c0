//! Generic key commands: deletion, expiry, iteration, renaming, introspection (Redis's `db.c`
//! and `expire.c`).

use bytes::Bytes;
use rand::Rng;
use staykv_rdb::Layout;
use staykv_resp::Reply;

use super::{arg, int_arg, is};
use crate::command::{flags::*, tips, CmdResult, CommandSpec, SubcommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::glob;
use crate::key_spec::{key::*, KeySpec};
use crate::keyspace::{Entry, NO_EXPIRY};
use crate::lazyfree::LazyOption;
use crate::notify::{GENERIC, NEW};
use crate::num::i64_bytes;
use crate::value::{Encoding, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, "keyspace", del)
        .key_specs(&[KeySpec::index(1, RM | DELETE).range(-1, 1, 0)])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"]),
    CommandSpec::new("unlink", -2, WRITE | FAST, "keyspace", unlink)
        .key_specs(&[KeySpec::index(1, RM | DELETE).range(-1, 1, 0)])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"]),
    CommandSpec::new("exists", -2, READONLY | FAST, "keyspace", exists)
        .key_specs(&[KeySpec::index(1, RO).range(-1, 1, 0)])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"]),
    CommandSpec::new("touch", -2, READONLY | FAST, "keyspace", touch)
        .key_specs(&[KeySpec::index(1, RO).range(-1, 1, 0)])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"]),
    CommandSpec::new("type", 2, READONLY | FAST, "keyspace", type_).key_specs(&[KeySpec::index(1, RO)]),
    CommandSpec::new("expire", -3, WRITE | FAST, "keyspace", expire).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("pexpire", -3, WRITE | FAST, "keyspace", pexpire).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("expireat", -3, WRITE | FAST, "keyspace", expireat).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("pexpireat", -3, WRITE | FAST, "keyspace", pexpireat).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("ttl", 2, READONLY | FAST, "keyspace", ttl)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("pttl", 2, READONLY | FAST, "keyspace", pttl)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("expiretime", 2, READONLY | FAST, "keyspace", expiretime)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("pexpiretime", 2, READONLY | FAST, "keyspace", pexpiretime)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("persist", 2, WRITE | FAST, "keyspace", persist).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("keys", 2, READONLY | ALL_SHARDS, "keyspace", keys)
        .categories(&["dangerous"])
        .tips(&["request_policy:all_shards", "nondeterministic_output_order"]),
    CommandSpec::new("scan", -2, READONLY | ALL_SHARDS, "keyspace", scan)
        .tips(&["nondeterministic_output", "request_policy:special"]),
    CommandSpec::new("randomkey", 1, READONLY | ALL_SHARDS, "keyspace", randomkey)
        .tips(&["request_policy:all_shards", "nondeterministic_output"]),
    CommandSpec::new("rename", 3, WRITE, "keyspace", rename)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE), KeySpec::index(2, OW | UPDATE)]),
    CommandSpec::new("renamenx", 3, WRITE | FAST, "keyspace", renamenx)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE), KeySpec::index(2, OW | INSERT)]),
    CommandSpec::new("copy", -3, WRITE | DENYOOM, "keyspace", copy)
        .key_specs(&[KeySpec::index(1, RO | ACCESS), KeySpec::index(2, OW | UPDATE)]),
    CommandSpec::new("move", 3, WRITE | FAST, "keyspace", move_).key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("object", -2, READONLY, "keyspace", object).subcommands(OBJECT_SUBCOMMANDS),
    CommandSpec::new("memory", -2, 0, "server", memory).subcommands(MEMORY_SUBCOMMANDS),
    CommandSpec::new("dump", 2, READONLY, "keyspace", dump)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("restore", -4, WRITE | DENYOOM, "keyspace", restore)
        .categories(&["dangerous"])
        .key_specs(&[KeySpec::index(1, OW | UPDATE)]),
];

fn del(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lazily = ctx.engine.lazyfree.is_on(LazyOption::UserDel);
    delete_keys(ctx, args, lazily)
}

/// UNLINK: DEL that leaves freeing a large value to the background (see `lazyfree.rs`).
fn unlink(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    delete_keys(ctx, args, true)
}

pub(super) fn delete_keys(ctx: &mut Ctx, args: &[Bytes], lazily: bool) -> CmdResult {
    let mut deleted = 0;
    for key in args.iter().skip(1) {
        if ctx.lookup(key).is_some() {
            if let Some(entry) = ctx.remove(key) {
                ctx.free_value(entry.value, lazily);
            }
            ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
            deleted += 1;
        }
    }
    Ok(Reply::Int(deleted))
}

/// EXISTS: how many of the keys exist (a key named twice counts twice). As in Redis the
/// keys' access times stay, but misses are counted and announced.
fn exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(args.iter().skip(1).filter(|key| ctx.peek_read(key).is_some()).count() as i64))
}

/// TOUCH: EXISTS that updates the keys' access times.
fn touch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(args.iter().skip(1).filter(|key| ctx.lookup_read(key).is_some()).count() as i64))
}

fn type_(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = ctx.peek_read(arg(args, 1)?).map_or("none", |e| e.value.type_name());
    Ok(Reply::Status(name))
}

fn expire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1000, false, "expire")
}

fn pexpire(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}

fn expireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}

fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(args: &[Bytes]) -> Result<ExpireFlags, Reply> {
    let mut f = ExpireFlags::default();
    for option in args.iter().skip(3) {
        match option {
            o if is(o, "nx") => f.nx = true,
            o if is(o, "xx") => f.xx = true,
            o if is(o, "gt") => f.gt = true,
            o if is(o, "lt") => f.lt = true,
            o => return Err(errors::quoting("ERR Unsupported option ", o, "")),
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(err("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if f.gt && f.lt {
        return Err(err("ERR GT and LT options at the same time are not compatible"));
    }
    Ok(f)
}

/// EXPIRE and friends, with Redis 7.0's checks in Redis's order: options, the number, overflow,
/// the key, the NX/XX/GT/LT conditions. A deadline already past deletes the key.
fn expire_generic(ctx: &mut Ctx, args: &[Bytes], unit_ms: i64, absolute: bool, name: &str) -> CmdResult {
    let flags = parse_expire_flags(args)?;
    let key = arg(args, 1)?;
    let when = int_arg(arg(args, 2)?)?;
    let when = when.checked_mul(unit_ms).ok_or_else(|| errors::invalid_expire(name))?;
    let base = if absolute { 0 } else { i64::try_from(ctx.now).unwrap_or(i64::MAX) };
    let when = when.checked_add(base).ok_or_else(|| errors::invalid_expire(name))?;
    let Some(current) = ctx.lookup(key).map(|e| e.ttl()) else {
        return Ok(Reply::Int(0));
    };
    let current = current.map(|t| t as i64);
    let refused = (flags.nx && current.is_some())
        || (flags.xx && current.is_none())
        || (flags.gt && current.is_none_or(|c| when <= c))
        || (flags.lt && current.is_some_and(|c| when >= c));
    if refused {
        return Ok(Reply::Int(0));
    }
    if when <= i64::try_from(ctx.now).unwrap_or(i64::MAX) {
        ctx.delete_expired(key);
        ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
    } else {
        let at = u64::try_from(when).unwrap_or(u64::MAX);
        ctx.set_expiry(key, at);
        ctx.propagate(vec![Bytes::from_static(b"PEXPIREAT"), key.clone(), i64_bytes(when)]);
    }
    Ok(Reply::Int(1))
}

/// -2 for a missing key, -1 for no deadline, else what `present` makes of the deadline.
fn ttl_generic(ctx: &mut Ctx, args: &[Bytes], present: impl Fn(u64, u64) -> i64) -> CmdResult {
    let now = ctx.now;
    Ok(Reply::Int(match ctx.peek_read(arg(args, 1)?) {
        None => -2,
        Some(e) if e.expire_at == NO_EXPIRY => -1,
        Some(e) => present(e.expire_at, now),
    }))
}

fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, args, |at, now| (at.saturating_sub(now) as i64 + 500) / 1000)
}

fn pttl(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, args, |at, now| at.saturating_sub(now) as i64)
}

fn expiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Rounded, as Redis's `(expire+500)/1000` (TTL rounds the same way).
    ttl_generic(ctx, args, |at, _| (at.saturating_add(500) / 1000) as i64)
}

fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, args, |at, _| at as i64)
}

fn persist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    if ctx.lookup(key).is_none_or(|e| e.expire_at == NO_EXPIRY) {
        return Ok(Reply::Int(0));
    }
    ctx.set_expiry(key, NO_EXPIRY);
    ctx.propagate_args(args);
    Ok(Reply::Int(1))
}

fn keys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pattern = arg(args, 1)?;
    let (db, now) = (ctx.client.db, ctx.now);
    let match_all = &pattern[..] == b"*";
    let mut found = Vec::new();
    for shard in ctx.all_shards() {
        let Some(slice) = shard.dbs.get(db) else {
            continue;
        };
        for pos in 0..slice.slot_count() {
            if let Some(e) = slice.slot(pos) {
                if !e.is_expired(now) && (match_all || glob::matches(pattern, &e.key, false)) {
                    found.push(Reply::Bulk(e.key.to_bytes()));
                }
            }
        }
    }
    Ok(Reply::Array(found))
}

/// A cursor as Redis's `parseScanCursorOrReply` reads it with `strtoul`: no leading space,
/// an optional sign (`-1` wraps to the largest cursor), nothing after the digits, no overflow;
/// the empty string is cursor 0.
fn parse_cursor(text: &[u8]) -> Option<u64> {
    if text.first().is_some_and(|&c| crate::num::is_c_space(c)) {
        return None;
    }
    if text.is_empty() {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some(if negative { n.wrapping_neg() } else { n })
}

/// The options SCAN, HSCAN, SSCAN and ZSCAN share.
pub(crate) struct ScanOptions {
    pub pattern: Option<Bytes>,
    pub count: usize,
    pub type_name: Option<Bytes>,
}

/// Parse `cursor [MATCH p] [COUNT n] [TYPE t]` starting at `args[first]` (the cursor).
pub(crate) fn parse_scan(args: &[Bytes], first: usize, allow_type: bool) -> Result<(u64, ScanOptions), Reply> {
    let cursor = parse_cursor(arg(args, first)?).ok_or_else(|| err("ERR invalid cursor"))?;
    let mut o = ScanOptions { pattern: None, count: 10, type_name: None };
    let mut i = first + 1;
    while let Some(option) = args.get(i) {
        let value = args.get(i + 1).ok_or_else(errors::syntax)?;
        if is(option, "count") {
            let n = int_arg(value)?;
            if n < 1 {
                return Err(errors::syntax());
            }
            o.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(option, "match") {
            o.pattern = (&value[..] != b"*").then(|| value.clone());
        } else if is(option, "type") && allow_type {
            o.type_name = Some(value.clone());
        } else {
            return Err(errors::syntax());
        }
        i += 2;
    }
    Ok((cursor, o))
}

/// SCAN: the cursor is `v * shards + shard`, walking shard by shard, each slice from its top
/// slot down: `v` 0 starts the shard at its top, any other `v` means its slots below `v` are
/// still to come. Packing moves keys only down (`keyspace.rs`), so a key present for the
/// whole iteration is always returned.
fn scan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (cursor, o) = parse_scan(args, 1, true)?;
    let (db, now) = (ctx.client.db, ctx.now);
    let shards = ctx.engine.keyspace.shard_count() as u64;
    let (mut shard, mut below) = ((cursor % shards) as usize, usize::try_from(cursor / shards).unwrap_or(usize::MAX));
    let mut at_top = below == 0;
    let mut found = Vec::new();
    let mut visited = 0usize;
    let budget = o.count.saturating_mul(10);
    let guards: Vec<_> = ctx.all_shards().collect();
    let next_cursor = loop {
        let Some(slice) = guards.get(shard).and_then(|s| s.dbs.get(db)) else {
            break 0;
        };
        if at_top {
            below = slice.slot_count();
            at_top = false;
        }
        below = below.min(slice.slot_count());
        if below == 0 {
            shard += 1;
            at_top = true;
            continue;
        }
        if found.len() >= o.count || visited >= budget {
            break below as u64 * shards + shard as u64;
        }
        below -= 1;
        if let Some(e) = slice.slot(below) {
            let type_ok = o.type_name.as_ref().is_none_or(|t| t.eq_ignore_ascii_case(e.value.type_name().as_bytes()));
            let match_ok = o.pattern.as_ref().is_none_or(|p| glob::matches(p, &e.key, false));
            if !e.is_expired(now) && type_ok && match_ok {
                found.push(Reply::Bulk(e.key.to_bytes()));
            }
        }
        visited += 1;
    };
    Ok(super::scan_page(next_cursor, found))
}

fn randomkey(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let _ = args;
    let (db, now) = (ctx.client.db, ctx.now);
    let guards: Vec<_> = ctx.all_shards().collect();
    let slices: Vec<_> = guards.iter().filter_map(|s| s.dbs.get(db)).collect();
    let total: usize = slices.iter().map(|s| s.len()).sum();
    if total == 0 {
        return Ok(Reply::Nil);
    }
    let mut rng = rand::thread_rng();
    // Sample a few random slots, weighted by shard size; fall back to the first live key.
    for _ in 0..100 {
        let mut n = rng.gen_range(0..total);
        let Some(slice) = slices.iter().find(|s| {
            let hit = n < s.len();
            if !hit {
                n -= s.len();
            }
            hit
        }) else {
            break;
        };
        let slot = rng.gen_range(0..slice.slot_count().max(1));
        if let Some(e) = slice.slot(slot).filter(|e| !e.is_expired(now)) {
            return Ok(Reply::Bulk(e.key.to_bytes()));
        }
    }
    let live = slices.iter().flat_map(|s| (0..s.slot_count()).filter_map(|p| s.slot(p))).find(|e| !e.is_expired(now));
    Ok(live.map_or(Reply::Nil, |e| Reply::Bulk(e.key.to_bytes())))
}

/// The effects that recreate `entry` under `key` from nothing (for RENAME, COPY, MOVE): each
/// effect names one key, so the log can be replayed or compacted key range by key range.
pub(crate) fn recreate_effects(key: &Bytes, entry: &Entry) -> Vec<Vec<Bytes>> {
    let mut effects = vec![vec![Bytes::from_static(b"DEL"), key.clone()]];
    let mut create = |name: &'static [u8], items: Vec<Bytes>| {
        let mut argv = vec![Bytes::from_static(name), key.clone()];
        argv.extend(items);
        effects.push(argv);
    };
    match &entry.value {
        Value::Str(s) => create(b"SET", vec![s.to_bytes()]),
        Value::List(l) => create(b"RPUSH", l.iter().map(Bytes::copy_from_slice).collect()),
        Value::Hash(h) => create(b"HSET", h.iter().flat_map(|(f, v)| [f, v].map(Bytes::copy_from_slice)).collect()),
        Value::Set(s) => create(b"SADD", s.iter().map(|m| m.to_bytes()).collect()),
        Value::ZSet(z) => effects.push(super::zsets::recreate_effect(key, z)),
        // A stream's groups and bookkeeping have no command that sets them all: it is
        // recreated from its DUMP form.
        Value::Stream(_) => {
            let payload = staykv_rdb::encode_dump_payload(&crate::rdbconv::to_rdb(&entry.value), Layout::BySize);
            create(b"RESTORE", vec![Bytes::from_static(b"0"), Bytes::from(payload)])
        }
    }
    if entry.expire_at != NO_EXPIRY {
        effects.push(vec![Bytes::from_static(b"PEXPIREAT"), key.clone(), i64_bytes(entry.expire_at as i64)]);
    }
    effects
}

fn rename(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, true)
}

fn rename_generic(ctx: &mut Ctx, args: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (arg(args, 1)?, arg(args, 2)?);
    if ctx.lookup(src).is_none() {
        return Err(err(errors::NO_SUCH_KEY));
    }
    if src == dst {
        return Ok(if nx { Reply::Int(0) } else { Reply::Ok });
    }
    if nx && ctx.lookup(dst).is_some() {
        return Ok(Reply::Int(0));
    }
    // Redis: the destination is (deleted and) added — `new` — then `rename_from` on the
    // source and `rename_to` on the destination; the logged re-creation is no event.
    ctx.explicit_events();
    // The value moves: a copy of a large collection would cost as much as the rename.
    let Some(entry) = ctx.remove(src) else {
        return Err(err(errors::NO_SUCH_KEY));
    };
    ctx.propagate(vec![Bytes::from_static(b"DEL"), src.clone()]);
    let recreate = recreate_effects(dst, &entry);
    ctx.store(dst, entry.value, entry.expire_at);
    ctx.notify(NEW, "new", dst);
    ctx.set_encoding(dst, entry.encoding);
    for effect in recreate {
        ctx.propagate(effect);
    }
    ctx.notify(GENERIC, "rename_from", src);
    ctx.notify(GENERIC, "rename_to", dst);
    Ok(if nx { Reply::Int(1) } else { Reply::Ok })
}

/// Parse a database index argument the way SELECT, MOVE and COPY do.
pub(crate) fn db_index(ctx: &Ctx, value: &[u8]) -> Result<usize, Reply> {
    // Redis reads it with getIntFromObjectOrReply: an integer, then within C int.
    let n = int_arg(value)?;
    let n = i32::try_from(n)
        .map_err(|_| err("ERR value is out of range, value must between -2147483648 and 2147483647"))?;
    usize::try_from(n).ok().filter(|&n| n < ctx.engine.keyspace.databases()).ok_or_else(|| err(errors::DB_INDEX))
}

fn copy(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src, dst) = (arg(args, 1)?, arg(args, 2)?);
    let (mut target_db, mut replace) = (ctx.client.db, false);
    let mut i = 3;
    while let Some(option) = args.get(i) {
        if is(option, "replace") {
            replace = true;
        } else if is(option, "db") && i + 1 < args.len() {
            target_db = db_index(ctx, arg(args, i + 1)?)?;
            i += 1;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    if src == dst && target_db == ctx.client.db {
        return Err(err("ERR source and destination objects are the same"));
    }
    // Read as Redis reads it: a missing source is a counted, announced miss.
    let Some(entry) = ctx.lookup_read(src).map(|e| e.clone()) else {
        return Ok(Reply::Int(0));
    };
    if ctx.lookup_in(target_db, dst).is_some() && !replace {
        return Ok(Reply::Int(0));
    }
    Ok(place(ctx, dst, target_db, entry, Origin::Copy))
}

/// Where an entry [`place`] puts comes from.
enum Origin {
    /// COPY: a copy of the source, which stays.
    Copy,
    /// MOVE: the entry taken out of the client's database, under the same name.
    Moved,
}

/// Puts `entry` under `dst` in database `db`, replacing what is there.
fn place(ctx: &mut Ctx, dst: &Bytes, db: usize, entry: Entry, origin: Origin) -> Reply {
    // Redis: `new` in the target database (after deleting what REPLACE replaces), then
    // `copy_to` there (COPY), or `move_from` in the source database and `move_to` in the
    // target (MOVE).
    ctx.explicit_events();
    let recreate = recreate_effects(dst, &entry);
    ctx.store_in(db, dst, entry.value, entry.expire_at);
    ctx.notify_in(db, NEW, "new", dst);
    if let Some(placed) = ctx.lookup_in(db, dst) {
        placed.encoding = entry.encoding;
    }
    for effect in recreate {
        ctx.propagate_in(db, effect);
    }
    match origin {
        Origin::Copy => ctx.notify_in(db, GENERIC, "copy_to", dst),
        Origin::Moved => {
            ctx.propagate(vec![Bytes::from_static(b"DEL"), dst.clone()]);
            let src_db = ctx.client.db;
            ctx.notify_in(src_db, GENERIC, "move_from", dst);
            ctx.notify_in(db, GENERIC, "move_to", dst);
        }
    }
    Reply::Int(1)
}

fn move_(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let db = db_index(ctx, arg(args, 2)?)?;
    if db == ctx.client.db {
        return Err(err("ERR source and destination objects are the same"));
    }
    if ctx.lookup(key).is_none() || ctx.lookup_in(db, key).is_some() {
        return Ok(Reply::Int(0));
    }
    // Both databases' slices of the key are in the one locked shard; the entry moves.
    let Some(entry) = ctx.remove(key) else {
        return Ok(Reply::Int(0));
    };
    Ok(place(ctx, key, db, entry, Origin::Moved))
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Each subcommand has its own arity, as in Redis 7's command table.
const OBJECT_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("help", 2, LOADING | STALE).categories(&["keyspace"]),
    object_query("encoding"),
    object_query("refcount"),
    object_query("idletime"),
    object_query("freq"),
];

/// An OBJECT subcommand that reports on the key at argument 2; all four are alike.
const fn object_query(name: &'static str) -> SubcommandSpec {
    const KEY: &[KeySpec] = &[KeySpec::index(2, RO)];
    SubcommandSpec::new(name, 3, READONLY).categories(&["keyspace"]).key_specs(KEY).tips(&["nondeterministic_output"])
}

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// The MEMORY subcommands, with Redis 7's arities.
const MEMORY_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("doctor", 2, 0).tips(tips::SHARD_REPORT),
    SubcommandSpec::new("help", 2, LOADING | STALE),
    SubcommandSpec::new("usage", -3, READONLY).key_specs(&[KeySpec::index(2, RO)]),
    SubcommandSpec::new("malloc-stats", 2, 0).tips(tips::SHARD_REPORT),
    SubcommandSpec::new("purge", 2, 0).tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    SubcommandSpec::new("stats", 2, 0).tips(tips::SHARD_REPORT),
];

/// Redis's default number of elements MEMORY USAGE looks at in a collection.
const MEMORY_SAMPLES: usize = 5;

/// Per key, beside its value: the entry in its shard's slab and the hash table's slot.
const KEY_OVERHEAD: usize = std::mem::size_of::<crate::keyspace::Entry>() + 8;

fn memory(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match arg(args, 1)? {
        s if is(s, "usage") => {
            let samples = memory_samples(args.get(3..).unwrap_or_default())?;
            let key = arg(args, 2)?;
            let key_heap = if key.len() > crate::small_bytes::KEY_INLINE_CAPACITY { key.len() } else { 0 };
            Ok(match ctx.peek_read(key) {
                Some(entry) => Reply::Int((KEY_OVERHEAD + key_heap + entry.value.memory_usage(samples)) as i64),
                None => Reply::Nil,
            })
        }
        s if is(s, "stats") => {
            ctx.reports_keyspace();
            Ok(crate::memory_report::stats(&ctx.host.process_memory(), &engine_memory(ctx)))
        }
        s if is(s, "doctor") => {
            let report = crate::memory_report::doctor(&ctx.host.process_memory(), &engine_memory(ctx));
            Ok(Reply::verbatim(report))
        }
        s if is(s, "malloc-stats") => Ok(Reply::bulk_str("Stats not supported for the current allocator")),
        s if is(s, "purge") => {
            ctx.host.purge_memory();
            Ok(Reply::Ok)
        }
        _ => Ok(super::help(MEMORY_HELP)),
    }
}

/// The engine's part of MEMORY STATS and DOCTOR: its databases and script caches.
fn engine_memory(ctx: &mut Ctx) -> crate::memory_report::EngineMemory {
    let (lua, functions) = ctx.engine.scripting.cache_bytes();
    crate::memory_report::EngineMemory {
        dbs: ctx.db_footprints(),
        lua_caches: lua as u64,
        functions_caches: functions as u64,
        cached_scripts: ctx.engine.scripting.cached_scripts() as u64,
    }
}

/// `[SAMPLES count]`, given any number of times (the last wins, as in Redis).
fn memory_samples(options: &[Bytes]) -> Result<usize, Reply> {
    let mut samples = MEMORY_SAMPLES;
    let mut rest = options.iter();
    while let Some(option) = rest.next() {
        let count = rest.next().filter(|_| is(option, "samples")).ok_or_else(errors::syntax)?;
        let count = crate::num::parse_i64(count).ok_or_else(|| err(errors::NOT_INTEGER))?;
        samples = usize::try_from(count).map_err(|_| errors::syntax())?;
    }
    Ok(samples)
}

fn object(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = arg(args, 1)?;
    if is(sub, "help") && args.len() == 2 {
        return Ok(super::help(OBJECT_HELP));
    }
    // The subcommand and its arity were checked before running (`OBJECT_SUBCOMMANDS`).
    let integers_shared = is(sub, "refcount") && integers_shared(ctx);
    let (eviction, now) = (&ctx.engine.eviction, ctx.now);
    let now_secs = now / 1000;
    let Some(entry) = ctx.peek(arg(args, 2)?) else {
        return Ok(Reply::Nil);
    };
    Ok(match sub {
        s if is(s, "encoding") => Reply::bulk_str(entry.value.encoding_with(entry.encoding)),
        s if is(s, "refcount") => Reply::Int(refcount(&entry.value, entry.encoding, integers_shared)),
        s if is(s, "idletime") => match eviction.frequency(entry.accessed, now) {
            None => Reply::Int(now_secs.saturating_sub(u64::from(entry.accessed)) as i64),
            Some(_) => return Err(err("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")),
        },
        _ => match eviction.frequency(entry.accessed, now) {
            Some(frequency) => Reply::Int(i64::from(frequency)),
            None => return Err(err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")),
        },
    })
}

/// Integers Redis keeps one shared object for (`OBJ_SHARED_INTEGERS`): 0 to 9,999.
const SHARED_INTEGERS: std::ops::Range<i64> = 0..10_000;

/// Whether Redis would share its integer objects now: unless `maxmemory` is set under an LRU
/// or LFU policy, where each value needs an access stamp of its own. (Redis decides when a
/// value is made and keeps it so; this reads the settings in force when OBJECT asks.)
fn integers_shared(ctx: &Ctx) -> bool {
    !ctx.engine.eviction.policy().by_access()
        || ctx.host.config_get(b"maxmemory").first().is_none_or(|(_, limit)| limit == "0")
}

/// OBJECT REFCOUNT as Redis 7.0 answers it. Redis gives every string value that holds an
/// integer from 0 to 9,999 one shared object, whose count reads INT_MAX
/// (`OBJ_SHARED_REFCOUNT`), when `integers_shared`; any other value counts 1, as every StayKV
/// value does. (Tests written for Redis check sharing this way, maxmemory.tcl's among them.)
fn refcount(value: &Value, encoding: Encoding, integers_shared: bool) -> i64 {
    let Value::Str(text) = value else { return 1 };
    let shared = integers_shared
        && value.encoding_with(encoding) == "int"
        && crate::num::parse_i64(text).is_some_and(|n| SHARED_INTEGERS.contains(&n));
    if shared {
        i64::from(i32::MAX)
    } else {
        1
    }
}

fn dump(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(entry) = ctx.lookup_read(arg(args, 1)?) else { return Ok(Reply::Nil) };
    let layout = crate::rdbconv::dump_layout(&entry.value, entry.encoding);
    let payload = staykv_rdb::encode_dump_payload(&crate::rdbconv::to_rdb(&entry.value), layout);
    Ok(Reply::Bulk(Bytes::from(payload)))
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]`. Logged as itself with an
/// absolute deadline, which names one key and replays identically.
fn restore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, payload) = (arg(args, 1)?, arg(args, 3)?);
    let (mut replace, mut absolute, mut idle, mut frequency) = (false, false, None, None);
    // Redis's order of checks: the options, then BUSYKEY, then the TTL, then the payload.
    let mut i = 4;
    while let Some(option) = args.get(i) {
        let has_value = i + 1 < args.len();
        if is(option, "replace") {
            replace = true;
        } else if is(option, "absttl") {
            absolute = true;
        } else if is(option, "idletime") && has_value && frequency.is_none() {
            // IDLETIME after FREQ (and FREQ after IDLETIME) is a syntax error, as in Redis.
            let secs = int_arg(arg(args, i + 1)?)?;
            idle = Some(u64::try_from(secs).map_err(|_| err("ERR Invalid IDLETIME value, must be >= 0"))?);
            i += 1;
        } else if is(option, "freq") && has_value && idle.is_none() {
            let freq = int_arg(arg(args, i + 1)?)?;
            frequency = Some(u8::try_from(freq).map_err(|_| err("ERR Invalid FREQ value, must be >= 0 and <= 255"))?);
            i += 1;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    if !replace && ctx.lookup(key).is_some() {
        return Err(err("BUSYKEY Target key name already exists."));
    }
    let ttl = int_arg(arg(args, 2)?)?;
    if ttl < 0 {
        return Err(err("ERR Invalid TTL value, must be >= 0"));
    }
    let value = match staykv_rdb::decode_dump_payload(payload) {
        Ok(value) if crate::rdbconv::restorable(&value) => {
            crate::rdbconv::from_rdb(value).ok_or_else(|| err("ERR Bad data format"))?
        }
        Ok(_) => return Err(err("ERR Bad data format")),
        Err(staykv_rdb::RdbError::BadDumpPayload) => return Err(err("ERR DUMP payload version or checksum are wrong")),
        Err(_) => return Err(err("ERR Bad data format")),
    };
    let deadline = match (ttl, absolute) {
        (0, _) => NO_EXPIRY,
        (t, true) => t as u64,
        // Past the clock's range Redis's `ttl + mstime()` wraps negative: already expired.
        (t, false) => i64::try_from(ctx.now).ok().and_then(|now| now.checked_add(t)).map_or(1, |at| at as u64),
    };
    let existed = ctx.lookup(key).is_some();
    if deadline != NO_EXPIRY && deadline <= ctx.now {
        // Already expired: Redis deletes the key instead of creating it.
        if existed {
            ctx.remove(key);
            ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        }
        return Ok(Reply::Ok);
    }
    // Redis deletes a replaced key and adds the new one: `new` even over an old key, then
    // `restore`.
    ctx.explicit_events();
    ctx.remove(key);
    ctx.store(key, value, deadline);
    ctx.notify(NEW, "new", key);
    ctx.notify(GENERIC, "restore", key);
    // As Redis: FREQ counts under an LFU policy, IDLETIME under the others.
    let (eviction, now) = (&ctx.engine.eviction, ctx.now);
    let stamp = match (eviction.policy().is_lfu(), frequency, idle) {
        (true, Some(frequency), _) => Some(eviction.with_frequency(frequency, now)),
        (false, _, Some(secs)) => Some((now / 1000).saturating_sub(secs) as u32),
        _ => None,
    };
    if let (Some(stamp), Some(entry)) = (stamp, ctx.peek(key)) {
        entry.accessed = stamp;
    }
    ctx.propagate(vec![
        Bytes::from_static(b"RESTORE"),
        key.clone(),
        i64_bytes(deadline as i64),
        payload.clone(),
        Bytes::from_static(b"ABSTTL"),
        Bytes::from_static(b"REPLACE"),
    ]);
    Ok(Reply::Ok)
}

#[cfg(test)]
mod restore_tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use bytes::Bytes;
    use staykv_resp::Reply;

    use crate::client::Client;
    use crate::exec::{Engine, EngineOptions, NoJournal};

    const NOW: u64 = 1_700_000_000_000;

    fn run(engine: &Engine, client: &mut Client, args: &[&[u8]]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        engine.execute(client, &args, NOW, &crate::host::NoHost, &NoJournal).reply
    }

    fn error(reply: &Reply) -> &str {
        match reply {
            Reply::Error(e) => e,
            _ => "",
        }
    }

    /// Redis checks RESTORE's options, then BUSYKEY, then the TTL; IDLETIME and FREQ exclude
    /// each other.
    #[test]
    fn restore_checks_in_redis_order() {
        let engine = Engine::new(EngineOptions::default());
        let mut c = Client::new(1, true);
        run(&engine, &mut c, &[b"SET", b"k", b"v"]);
        let Reply::Bulk(payload) = run(&engine, &mut c, &[b"DUMP", b"k"]) else { panic!("DUMP") };
        let r = run(&engine, &mut c, &[b"RESTORE", b"k", b"abc", &payload]);
        assert!(error(&r).starts_with("BUSYKEY"), "{r:?}");
        let r = run(&engine, &mut c, &[b"RESTORE", b"k", b"-1", &payload]);
        assert!(error(&r).starts_with("BUSYKEY"), "{r:?}");
        let r = run(&engine, &mut c, &[b"RESTORE", b"k", b"0", &payload, b"FOO"]);
        assert_eq!(error(&r), "ERR syntax error");
        let r = run(&engine, &mut c, &[b"RESTORE", b"k2", b"0", &payload, b"IDLETIME", b"1", b"FREQ", b"1"]);
        assert_eq!(error(&r), "ERR syntax error");
        let r = run(&engine, &mut c, &[b"RESTORE", b"k2", b"0", &payload, b"FREQ", b"1", b"IDLETIME", b"1"]);
        assert_eq!(error(&r), "ERR syntax error");
        let r = run(&engine, &mut c, &[b"RESTORE", b"k2", b"0", &payload, b"IDLETIME", b"5"]);
        assert_eq!(r, Reply::Ok);
    }

    fn payload(body: &[u8]) -> Vec<u8> {
        let mut p = body.to_vec();
        p.extend_from_slice(&10u16.to_le_bytes());
        let crc = staykv_rdb::crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    /// Redis 7.0 refuses payloads naming a set or sorted set member twice, or a NaN score.
    #[test]
    fn restore_refuses_duplicates_and_nan_scores() {
        let engine = Engine::new(EngineOptions::default());
        let mut c = Client::new(1, true);
        let mut nan = vec![5u8, 1, 1, b'm'];
        nan.extend_from_slice(&f64::NAN.to_le_bytes());
        let mut zdup = vec![5u8, 2, 1, b'm'];
        zdup.extend_from_slice(&1f64.to_le_bytes());
        zdup.extend_from_slice(&[1, b'm']);
        zdup.extend_from_slice(&2f64.to_le_bytes());
        for body in [&[2u8, 2, 1, b'a', 1, b'a'][..], &[2, 2, 1, b'1', 1, b'1'], &nan, &zdup] {
            let r = run(&engine, &mut c, &[b"RESTORE", b"k", b"0", &payload(body)]);
            assert_eq!(error(&r), "ERR Bad data format", "{body:?}");
        }
        let r = run(&engine, &mut c, &[b"RESTORE", b"k", b"0", &payload(&[2, 2, 1, b'a', 1, b'b'])]);
        assert_eq!(r, Reply::Ok);
    }
}

#[cfg(test)]
mod scan_tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::collections::HashSet;

    use rand::seq::SliceRandom;
    use rand::Rng;
    use staykv_resp::Reply;

    use crate::client::Client;
    use crate::exec::{Engine, EngineOptions, NoJournal};

    const NOW: u64 = 1_700_000_000_000;

    /// One SCAN page: the next cursor and the keys.
    fn page(engine: &Engine, client: &mut Client, now: u64, cursor: u64) -> (u64, Vec<String>) {
        let reply = engine.run_line(client, now, &NoJournal, &format!("SCAN {cursor} COUNT 10")).reply;
        let Reply::Array(parts) = reply else { panic!("not a scan page: {reply:?}") };
        let text = |r: &Reply| match r {
            Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("not a bulk string: {other:?}"),
        };
        let (Some(next), Some(Reply::Array(keys))) = (parts.first(), parts.get(1)) else { panic!("{parts:?}") };
        (text(next).parse().unwrap(), keys.iter().map(text).collect())
    }

    /// Keys deleted by DEL leave holes as expired ones do: the cycle packs a slab with no
    /// key that can expire, and the keys it moves are found where they went.
    #[test]
    fn the_expiry_cycle_packs_slabs_emptied_by_del() {
        let engine = Engine::new(EngineOptions { shard_bits: 0, ..EngineOptions::default() });
        let mut client = Client::new(1, true);
        for i in 0..1_000 {
            engine.run_line(&mut client, NOW, &NoJournal, &format!("SET k{i} v"));
        }
        for i in 0..900 {
            engine.run_line(&mut client, NOW, &NoJournal, &format!("DEL k{i}"));
        }
        let slots = |engine: &Engine| engine.keyspace.lock(0).unwrap().dbs.first().unwrap().slot_count();
        assert_eq!(slots(&engine), 1_000, "holes stay until the cycle runs");
        engine.active_expire(NOW, 100, &NoJournal, &crate::host::NoHost);
        assert_eq!(slots(&engine), 100);
        let reply = engine.run_line(&mut client, NOW, &NoJournal, "MGET k0 k950 k999").reply;
        let values: Vec<Reply> = [None, Some("v"), Some("v")]
            .into_iter()
            .map(|v| v.map_or(Reply::Nil, |v| Reply::Bulk(bytes::Bytes::from(v))))
            .collect();
        assert_eq!(reply, Reply::Array(values), "moved keys are found where they went");
    }

    /// INFO keyspace's `avg_ttl` estimates the keys' remaining time to live from what the
    /// expiry cycle sees; 0 before it has seen any.
    #[test]
    fn info_keyspace_estimates_the_mean_ttl() {
        let engine = Engine::new(EngineOptions { shard_bits: 0, ..EngineOptions::default() });
        let mut client = Client::new(1, true);
        for i in 0..400 {
            // Half the keys have 1,000 s left, half 3,000 s: a mean of 2,000,000 ms.
            let seconds = if i % 2 == 0 { 1_000 } else { 3_000 };
            engine.run_line(&mut client, NOW, &NoJournal, &format!("SET k{i} v EX {seconds}"));
            engine.run_line(&mut client, NOW, &NoJournal, &format!("SET p{i} v"));
        }
        let avg_ttl = |engine: &Engine, client: &mut Client| {
            let Reply::Verbatim(_, text) = engine.run_line(client, NOW, &NoJournal, "INFO keyspace").reply else {
                panic!("INFO is verbatim text")
            };
            let text = String::from_utf8_lossy(&text).into_owned();
            let field = text.split("avg_ttl=").nth(1).unwrap_or_else(|| panic!("{text}"));
            field.trim_end().parse::<u64>().unwrap_or_else(|_| panic!("{text}"))
        };
        assert_eq!(avg_ttl(&engine, &mut client), 0, "nothing seen yet");
        engine.active_expire(NOW, usize::MAX, &NoJournal, &crate::host::NoHost);
        let estimate = avg_ttl(&engine, &mut client);
        assert!((1_900_000..=2_000_000).contains(&estimate), "{estimate}");
        engine.run_line(&mut client, NOW, &NoJournal, "FLUSHALL");
        engine.run_line(&mut client, NOW, &NoJournal, "SET k v EX 10");
        engine.active_expire(NOW, usize::MAX, &NoJournal, &crate::host::NoHost);
        // One run moves the estimate a fiftieth of the way to what it saw, as Redis's does.
        assert_eq!(avg_ttl(&engine, &mut client), estimate / 50 * 49 + 10_000 / 50, "the old keys' estimate fades");
    }

    /// SCAN returns every key present for the whole iteration while, between two of its
    /// pages, most other keys expire and the active expiry cycle packs the slabs under it:
    /// packing moves keys across the cursor's slot, only ever down.
    #[test]
    fn scan_returns_every_key_that_stays_while_the_slabs_pack() {
        let mut rng = rand::thread_rng();
        for round in 0..30 {
            let engine = Engine::new(EngineOptions { shard_bits: 2, ..EngineOptions::default() });
            let mut client = Client::new(1, true);
            let mut names: Vec<String> = (0..150).map(|i| format!("stay:{i}")).collect();
            names.extend((0..1_850).map(|i| format!("gone:{i}")));
            names.shuffle(&mut rng);
            for name in &names {
                let expiry = if name.starts_with("gone") { " PX 1000" } else { "" };
                engine.run_line(&mut client, NOW, &NoJournal, &format!("SET {name} v{expiry}"));
            }
            let (mut cursor, mut seen, mut pages) = (0, HashSet::new(), 0);
            let expire_after = rng.gen_range(1..150);
            loop {
                let (next, keys) = page(&engine, &mut client, NOW, cursor);
                seen.extend(keys);
                pages += 1;
                if pages == expire_after {
                    engine.active_expire(NOW + 2_000, usize::MAX, &NoJournal, &crate::host::NoHost);
                    for shard in 0..4 {
                        let guard = engine.keyspace.lock(shard).unwrap();
                        let db = guard.dbs.first().unwrap();
                        assert_eq!(db.slot_count(), db.len(), "round {round}: shard {shard} packed");
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            let missed = (0..150).filter(|i| !seen.contains(&format!("stay:{i}"))).count();
            assert_eq!(missed, 0, "round {round}: keys that stayed were missed (expiry after page {expire_after})");
        }
    }
}
