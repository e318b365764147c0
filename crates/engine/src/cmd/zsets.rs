//! Sorted sets (Redis's `t_zset.c`), over [`crate::zset::ZSet`].
//!
//! Effects: ZADD, ZINCRBY, ZREM and the ZREMRANGEBY* commands are deterministic functions of
//! (keyspace, arguments) and log themselves (ZADD ... INCR as the ZINCRBY it amounts to) when
//! they changed something. Pops log the members taken as `ZREM key member...`; the STORE
//! forms log the result as `DEL dst` (when it existed) and `ZADD dst score member...`. A key
//! left empty is deleted and its deletion logged as `DEL key`. Every effect names one key.
//!
//! Replies follow Redis 7.0 in both protocols: scores are doubles (`%.17g` bulk strings in
//! RESP2), and WITHSCORES lists are flat in RESP2 and `[member, score]` pairs in RESP3.

use bytes::Bytes;
use rand::Rng;
use staykv_rdb::Layout;
use staykv_resp::{Protocol, Reply};

use super::{arg, bulk_copy, int_arg, is, MAX_RANDOM_REPEATS};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::key_spec::{key::*, KeySpec};
use crate::keyspace::NO_EXPIRY;
use crate::num::parse_i64;
use crate::value::{HashMap, Value};
use crate::zset::{self, AddFlags, AddOutcome, LexRange, Range, ScoreRange, ZSet};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("zadd", -4, WRITE | DENYOOM | FAST, "sortedset", zadd)
        .key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("zincrby", 4, WRITE | DENYOOM | FAST, "sortedset", zincrby)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("zrem", -3, WRITE | FAST, "sortedset", zrem).key_specs(&[KeySpec::index(1, RW | DELETE)]),
    CommandSpec::new("zscore", 3, READONLY | FAST, "sortedset", zscore).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zmscore", -3, READONLY | FAST, "sortedset", zmscore).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zcard", 2, READONLY | FAST, "sortedset", zcard).key_specs(&[KeySpec::index(1, RO)]),
    CommandSpec::new("zcount", 4, READONLY | FAST, "sortedset", zcount).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zlexcount", 4, READONLY | FAST, "sortedset", zlexcount)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zrange", -4, READONLY, "sortedset", zrange).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zrangestore", -5, WRITE | DENYOOM, "sortedset", zrangestore)
        .key_specs(&[KeySpec::index(1, OW | UPDATE), KeySpec::index(2, RO | ACCESS)]),
    CommandSpec::new("zrangebyscore", -4, READONLY, "sortedset", zrangebyscore)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zrevrangebyscore", -4, READONLY, "sortedset", zrevrangebyscore)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zrangebylex", -4, READONLY, "sortedset", zrangebylex)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zrevrangebylex", -4, READONLY, "sortedset", zrevrangebylex)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zrevrange", -4, READONLY, "sortedset", zrevrange).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zrank", 3, READONLY | FAST, "sortedset", zrank).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zrevrank", 3, READONLY | FAST, "sortedset", zrevrank)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("zremrangebyscore", 4, WRITE, "sortedset", zremrangebyscore)
        .key_specs(&[KeySpec::index(1, RW | DELETE)]),
    CommandSpec::new("zremrangebyrank", 4, WRITE, "sortedset", zremrangebyrank)
        .key_specs(&[KeySpec::index(1, RW | DELETE)]),
    CommandSpec::new("zremrangebylex", 4, WRITE, "sortedset", zremrangebylex)
        .key_specs(&[KeySpec::index(1, RW | DELETE)]),
    CommandSpec::new("zpopmin", -2, WRITE | FAST, "sortedset", zpopmin)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE)]),
    CommandSpec::new("zpopmax", -2, WRITE | FAST, "sortedset", zpopmax)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE)]),
    CommandSpec::new("zmpop", -4, WRITE, "sortedset", zmpop).key_finder(numkeys_at_1).key_specs(&[KeySpec::index(
        1,
        RW | ACCESS | DELETE,
    )
    .keynum(0, 1, 1)]),
    CommandSpec::new("bzpopmin", -3, WRITE | NOSCRIPT | FAST | BLOCKING, "sortedset", bzpopmin)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE).range(-2, 1, 0)]),
    CommandSpec::new("bzpopmax", -3, WRITE | NOSCRIPT | FAST | BLOCKING, "sortedset", bzpopmax)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE).range(-2, 1, 0)]),
    // Allowed in scripts, as in Redis 7.0 (see BLMPOP).
    CommandSpec::new("bzmpop", -5, WRITE | BLOCKING, "sortedset", bzmpop)
        .key_finder(super::lists::numkeys_at_2)
        .key_specs(&[KeySpec::index(2, RW | ACCESS | DELETE).keynum(0, 1, 1)]),
    CommandSpec::new("zrandmember", -2, READONLY, "sortedset", zrandmember)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("zunion", -3, READONLY, "sortedset", zunion)
        .key_finder(numkeys_at_1)
        .key_specs(&[KeySpec::index(1, RO | ACCESS).keynum(0, 1, 1)]),
    CommandSpec::new("zinter", -3, READONLY, "sortedset", zinter)
        .key_finder(numkeys_at_1)
        .key_specs(&[KeySpec::index(1, RO | ACCESS).keynum(0, 1, 1)]),
    CommandSpec::new("zdiff", -3, READONLY, "sortedset", zdiff).key_finder(numkeys_at_1).key_specs(&[KeySpec::index(
        1,
        RO | ACCESS,
    )
    .keynum(0, 1, 1)]),
    CommandSpec::new("zunionstore", -4, WRITE | DENYOOM, "sortedset", zunionstore)
        .key_finder(dst_and_numkeys_at_2)
        .key_specs(&[KeySpec::index(1, OW | UPDATE), KeySpec::index(2, RO | ACCESS).keynum(0, 1, 1)]),
    CommandSpec::new("zinterstore", -4, WRITE | DENYOOM, "sortedset", zinterstore)
        .key_finder(dst_and_numkeys_at_2)
        .key_specs(&[KeySpec::index(1, OW | UPDATE), KeySpec::index(2, RO | ACCESS).keynum(0, 1, 1)]),
    CommandSpec::new("zdiffstore", -4, WRITE | DENYOOM, "sortedset", zdiffstore)
        .key_finder(dst_and_numkeys_at_2)
        .key_specs(&[KeySpec::index(1, OW | UPDATE), KeySpec::index(2, RO | ACCESS).keynum(0, 1, 1)]),
    CommandSpec::new("zintercard", -3, READONLY, "sortedset", zintercard)
        .key_finder(numkeys_at_1)
        .key_specs(&[KeySpec::index(1, RO | ACCESS).keynum(0, 1, 1)]),
    CommandSpec::new("zscan", -3, READONLY, "sortedset", zscan)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
];

/// Key positions of `numkeys key...` starting at `at` (a bad count locks no keys: the command
/// fails before touching any).
fn numkeys_keys(args: &[Bytes], at: usize) -> Vec<usize> {
    let n = args.get(at).and_then(|n| parse_i64(n)).unwrap_or(0);
    let first = at + 1;
    let n = usize::try_from(n).unwrap_or(0).min(args.len().saturating_sub(first));
    (first..first + n).collect()
}

/// `CMD numkeys key...`: ZUNION, ZINTER, ZDIFF, ZINTERCARD, ZMPOP.
fn numkeys_at_1(args: &[Bytes]) -> Vec<usize> {
    numkeys_keys(args, 1)
}

/// `CMD dst numkeys key...`: ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE.
fn dst_and_numkeys_at_2(args: &[Bytes]) -> Vec<usize> {
    let mut keys = vec![1];
    keys.extend(numkeys_keys(args, 2));
    keys
}

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// The sorted set at `key` for a read (a hit or miss is counted), or WRONGTYPE.
fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c ZSet>, Reply> {
    match ctx.lookup_read(key).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(errors::wrong_type()),
    }
}

/// The sorted set at `key` for a change, or WRONGTYPE.
fn write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut ZSet>, Reply> {
    match ctx.lookup(key).map(|e| &mut e.value) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(errors::wrong_type()),
    }
}

/// Delete `key` if its sorted set is now empty, logging the deletion.
fn drop_if_empty(ctx: &mut Ctx, key: &Bytes) {
    if matches!(ctx.peek(key).map(|e| &e.value), Some(Value::ZSet(z)) if z.is_empty()) {
        ctx.remove(key);
        // Announced here (the command's own event came first); the DEL logged is no event.
        ctx.explicit_events();
        ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        ctx.notify(crate::notify::GENERIC, "del", key);
    }
}

fn resp3(ctx: &Ctx) -> bool {
    ctx.client.protocol == Protocol::Resp3
}

/// Members, with their scores if asked: flat in RESP2, `[member, score]` pairs in RESP3.
fn members_reply(resp3: bool, items: Vec<(Bytes, f64)>, withscores: bool) -> Reply {
    if !withscores {
        return Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect());
    }
    if resp3 {
        Reply::Array(items.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)])).collect())
    } else {
        Reply::Array(items.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)]).collect())
    }
}

/// A member and its score copied out of the set, for a reply.
fn owned((member, score): (&[u8], f64)) -> (Bytes, f64) {
    (Bytes::copy_from_slice(member), score)
}

/// The effect recreating `set` under `key` (a STORE result; RENAME, COPY and MOVE through
/// `keys::recreate_effects`): `ZADD key score member...`, or, for a skip list
/// holding a -0 score, `RESTORE key 0 payload`. Replayed, a ZADD of a new key starts a
/// listpack and converts it at its 129th member, and a listpack stores -0 as 0: the first
/// 128 members in score order would lose the sign. RESTORE loads a payload holding a -0 into a
/// skip list first, as Redis loads one (`rdbconv::from_rdb`).
pub(crate) fn recreate_effect(key: &Bytes, set: &ZSet) -> Vec<Bytes> {
    let negative_zero = !set.is_listpack() && set.iter().any(|(_, score)| zset::is_negative_zero(score));
    if negative_zero {
        let payload = staykv_rdb::encode_dump_payload(&crate::rdbconv::sorted_set_to_rdb(set), Layout::Big);
        return vec![Bytes::from_static(b"RESTORE"), key.clone(), Bytes::from_static(b"0"), Bytes::from(payload)];
    }
    let mut argv = Vec::with_capacity(2 + set.len() * 2);
    argv.extend([Bytes::from_static(b"ZADD"), key.clone()]);
    for (member, score) in set.iter() {
        argv.push(Bytes::from(staykv_resp::format_double(score)));
        argv.push(Bytes::copy_from_slice(member));
    }
    argv
}

/// Replace `dst` with `set` ([`Ctx::replace_with_result`]: an empty one deletes it), logged
/// as [`recreate_effect`] says; replies with the new size.
pub(crate) fn store_result(ctx: &mut Ctx, dst: &Bytes, set: ZSet, event: &'static str) -> Reply {
    let len = set.len();
    let stored = (len > 0).then(|| {
        let recreate = recreate_effect(dst, &set);
        (Value::ZSet(Box::new(set)), recreate)
    });
    ctx.replace_with_result(dst, stored, crate::notify::ZSET, event);
    Reply::Int(len as i64)
}

// ---- ZADD, ZINCRBY, ZREM ----

pub(crate) fn zadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zadd_generic(ctx, args, false)
}

fn zincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zadd_generic(ctx, args, true)
}

/// ZADD and ZINCRBY (Redis's `zaddGenericCommand`: ZINCRBY parses options the same way).
fn zadd_generic(ctx: &mut Ctx, args: &[Bytes], incr_command: bool) -> CmdResult {
    let key = arg(args, 1)?;
    let mut flags = AddFlags { incr: incr_command, ..AddFlags::default() };
    let mut ch = false;
    let mut first = 2;
    while let Some(option) = args.get(first) {
        match option {
            o if is(o, "nx") => flags.nx = true,
            o if is(o, "xx") => flags.xx = true,
            o if is(o, "ch") => ch = true,
            o if is(o, "incr") => flags.incr = true,
            o if is(o, "gt") => flags.gt = true,
            o if is(o, "lt") => flags.lt = true,
            _ => break,
        }
        first += 1;
    }
    let rest = args.get(first..).unwrap_or_default();
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(errors::syntax());
    }
    if flags.nx && flags.xx {
        return Err(err("ERR XX and NX options at the same time are not compatible"));
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(err("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if flags.incr && rest.len() > 2 {
        return Err(err("ERR INCR option supports a single increment-element pair"));
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks_exact(2) {
        if let [score, member] = pair {
            pairs.push((zset::parse_score(score).ok_or_else(errors::not_float)?, score, member));
        }
    }
    let created = match ctx.lookup(key).map(|e| &e.value) {
        Some(Value::ZSet(_)) => false,
        Some(_) => return Err(errors::wrong_type()),
        None if flags.xx => return Ok(if flags.incr { Reply::Nil } else { Reply::Int(0) }),
        None => {
            // Redis picks the encoding from the first member alone.
            let long = pairs.first().is_some_and(|(_, _, m)| m.len() > zset::LISTPACK_MAX_VALUE);
            let set = if long { ZSet::with_size_hint(usize::MAX) } else { ZSet::new() };
            ctx.store(key, Value::ZSet(Box::new(set)), NO_EXPIRY);
            true
        }
    };
    let set = write(ctx, key)?.ok_or_else(errors::wrong_type)?;
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0);
    let mut last = 0.0;
    let mut failed = None;
    for (score, _, member) in &pairs {
        match set.add(member, *score, flags) {
            AddOutcome::Added(s) => (added, processed, last) = (added + 1, processed + 1, s),
            AddOutcome::Updated(s) => (updated, processed, last) = (updated + 1, processed + 1, s),
            AddOutcome::Unchanged(s) => (processed, last) = (processed + 1, s),
            AddOutcome::Skipped => {}
            AddOutcome::Nan => {
                failed = Some(err("ERR resulting score is not a number (NaN)"));
                break;
            }
        }
    }
    let empty = set.is_empty();
    if added + updated > 0 {
        match (flags.incr, pairs.first()) {
            (true, Some((_, increment, member))) => ctx.propagate(vec![
                Bytes::from_static(b"ZINCRBY"),
                key.clone(),
                (*increment).clone(),
                (*member).clone(),
            ]),
            _ => ctx.propagate_args(args),
        }
    }
    if created && empty {
        ctx.remove(key);
    }
    if let Some(error) = failed {
        return Err(error);
    }
    Ok(match flags.incr {
        true if processed > 0 => Reply::Double(last),
        true => Reply::Nil,
        false => Reply::Int(if ch { added + updated } else { added }),
    })
}

fn zrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let Some(set) = write(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let mut removed = 0;
    for member in args.iter().skip(2) {
        if set.remove(member).is_some() {
            removed += 1;
        }
        if set.is_empty() {
            break;
        }
    }
    if removed > 0 {
        ctx.propagate_args(args);
        drop_if_empty(ctx, key);
    }
    Ok(Reply::Int(removed))
}

// ---- point reads ----

fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let member = arg(args, 2)?;
    Ok(read(ctx, arg(args, 1)?)?.and_then(|z| z.score(member)).map_or(Reply::Nil, Reply::Double))
}

fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let set = read(ctx, arg(args, 1)?)?;
    let scores = args.iter().skip(2).map(|m| set.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double));
    Ok(Reply::Array(scores.collect()))
}

fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(read(ctx, arg(args, 1)?)?.map_or(0, |z| z.len() as i64)))
}

fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = ScoreRange::parse(arg(args, 2)?, arg(args, 3)?).ok_or_else(|| err(NOT_FLOAT_RANGE))?;
    Ok(Reply::Int(read(ctx, arg(args, 1)?)?.map_or(0, |z| z.count_in(&range) as i64)))
}

fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = LexRange::parse(arg(args, 2)?, arg(args, 3)?).ok_or_else(|| err(NOT_LEX_RANGE))?;
    Ok(Reply::Int(read(ctx, arg(args, 1)?)?.map_or(0, |z| z.count_in(&range) as i64)))
}

fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rank_generic(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    rank_generic(ctx, args, true)
}

fn rank_generic(ctx: &mut Ctx, args: &[Bytes], reverse: bool) -> CmdResult {
    let member = arg(args, 2)?;
    let rank = read(ctx, arg(args, 1)?)?.and_then(|z| z.rank(member, reverse));
    Ok(rank.map_or(Reply::Nil, |r| Reply::Int(r as i64)))
}

// ---- ZRANGE and its older forms ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

/// A parsed range request.
enum Bounds {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, By::Auto, Direction::Auto)
}

fn zrangestore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 2, Some(arg(args, 1)?), By::Auto, Direction::Auto)
}

fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, By::Score, Direction::Forward)
}

fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, By::Score, Direction::Reverse)
}

fn zrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, By::Lex, Direction::Forward)
}

fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, By::Lex, Direction::Reverse)
}

fn zrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, By::Rank, Direction::Reverse)
}

/// Redis's `zrangeGenericCommand`: options, conflicts, the range, then the key.
fn zrange_generic(
    ctx: &mut Ctx,
    args: &[Bytes],
    src_at: usize,
    store: Option<&Bytes>,
    mut by: By,
    mut direction: Direction,
) -> CmdResult {
    let src = arg(args, src_at)?;
    let (mut min_at, mut max_at) = (src_at + 1, src_at + 2);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = src_at + 3;
    while let Some(option) = args.get(j) {
        let left = args.len() - j - 1;
        if store.is_none() && is(option, "withscores") {
            withscores = true;
        } else if is(option, "limit") && left >= 2 {
            offset = int_arg(arg(args, j + 1)?)?;
            limit = int_arg(arg(args, j + 2)?)?;
            j += 2;
        } else if direction == Direction::Auto && is(option, "rev") {
            direction = Direction::Reverse;
        } else if by == By::Auto && is(option, "bylex") {
            by = By::Lex;
        } else if by == By::Auto && is(option, "byscore") {
            by = By::Score;
        } else {
            return Err(errors::syntax());
        }
        j += 1;
    }
    let reverse = direction == Direction::Reverse;
    let by = if by == By::Auto { By::Rank } else { by };
    if limit != -1 && by == By::Rank {
        return Err(err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && by == By::Lex {
        return Err(err("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    if reverse && by != By::Rank {
        std::mem::swap(&mut min_at, &mut max_at);
    }
    let (min, max) = (arg(args, min_at)?, arg(args, max_at)?);
    let bounds = match by {
        By::Score => Bounds::Score(ScoreRange::parse(min, max).ok_or_else(|| err(NOT_FLOAT_RANGE))?),
        By::Lex => Bounds::Lex(LexRange::parse(min, max).ok_or_else(|| err(NOT_LEX_RANGE))?),
        By::Auto | By::Rank => Bounds::Rank(int_arg(min)?, int_arg(max)?),
    };
    let (items, size_hint) = match read(ctx, src)? {
        None => (Vec::new(), 0),
        Some(set) => select(set, &bounds, reverse, offset, limit),
    };
    match store {
        Some(dst) => {
            let mut result = ZSet::with_size_hint(size_hint);
            let nx = AddFlags { nx: true, ..AddFlags::default() };
            for (member, score) in &items {
                result.add(member, *score, nx);
            }
            Ok(store_result(ctx, dst, result, "zrangestore"))
        }
        None => Ok(members_reply(resp3(ctx), items, withscores)),
    }
}

/// The members a range request selects, in reply order, and the size Redis announces for a
/// stored result (the rank range's length; 0 when unknown).
fn select(set: &ZSet, bounds: &Bounds, reverse: bool, offset: i64, limit: i64) -> (Vec<(Bytes, f64)>, usize) {
    match bounds {
        Bounds::Rank(start, end) => match rank_span(*start, *end, set.len()) {
            Some((start, end)) => {
                let len = end - start + 1;
                (set.iter_from_rank(start, reverse).take(len).map(owned).collect(), len)
            }
            None => (Vec::new(), 0),
        },
        Bounds::Score(range) => (limited(set, range, reverse, offset, limit).map(owned).collect(), 0),
        Bounds::Lex(range) => (limited(set, range, reverse, offset, limit).map(owned).collect(), 0),
    }
}

/// A score or lex range walk with LIMIT: Redis skips `offset` members from the first in
/// range without checking the far end, then takes members while they stay in range. A
/// negative offset skips everything; a negative limit means no limit.
fn limited<'a, R: Range>(
    set: &'a ZSet,
    range: &'a R,
    reverse: bool,
    offset: i64,
    limit: i64,
) -> impl Iterator<Item = (&'a [u8], f64)> + 'a {
    let skip = usize::try_from(offset).unwrap_or(usize::MAX);
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    set.walk_from(range, reverse).skip(skip).take_while(move |(m, s)| range.contains_far_end(*s, m, reverse)).take(take)
}

/// Redis's index sanitizing for rank ranges: negative counts from the end; `None` if empty.
fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).ok()?;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    let end = end.min(len - 1);
    Some((usize::try_from(start).ok()?, usize::try_from(end).ok()?))
}

// ---- ZREMRANGEBY* ----

fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = ScoreRange::parse(arg(args, 2)?, arg(args, 3)?).ok_or_else(|| err(NOT_FLOAT_RANGE))?;
    zremrange_generic(ctx, args, Bounds::Score(range))
}

fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = LexRange::parse(arg(args, 2)?, arg(args, 3)?).ok_or_else(|| err(NOT_LEX_RANGE))?;
    zremrange_generic(ctx, args, Bounds::Lex(range))
}

fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (start, end) = (int_arg(arg(args, 2)?)?, int_arg(arg(args, 3)?)?);
    zremrange_generic(ctx, args, Bounds::Rank(start, end))
}

fn zremrange_generic(ctx: &mut Ctx, args: &[Bytes], bounds: Bounds) -> CmdResult {
    let key = arg(args, 1)?;
    let Some(set) = write(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let removed = match &bounds {
        Bounds::Rank(start, end) => rank_span(*start, *end, set.len()).map_or(0, |(s, e)| set.remove_rank_range(s, e)),
        Bounds::Score(range) => set.remove_in(range),
        Bounds::Lex(range) => set.remove_in(range),
    };
    if removed > 0 {
        ctx.propagate_args(args);
        drop_if_empty(ctx, key);
    }
    Ok(Reply::Int(removed as i64))
}

// ---- pops ----

/// What a pop took: the key, and its members with their scores in pop order.
pub(crate) type Popped = (Bytes, Vec<(Bytes, f64)>);

/// Pop up to `count` members from the lowest (or with `max`, the highest) end of the first
/// of `keys` holding a sorted set — Redis's `genericZpopCommand`, shared with the blocking
/// forms (BZPOPMIN, BZPOPMAX, BZMPOP). WRONGTYPE stops at the first key of another type met
/// before a sorted set. `Ok(None)` when no key holds one (a blocking form then waits);
/// `count == 0` checks the keys but pops nothing. The members popped are logged as `ZREM`,
/// and an emptied key as `DEL`.
pub(crate) fn pop_first_nonempty(
    ctx: &mut Ctx,
    keys: &[Bytes],
    max: bool,
    count: usize,
) -> Result<Option<Popped>, Reply> {
    // A woken blocking form looks first at the keys it was woken for.
    for key in ctx.engine.blocked.serve_order(ctx.client.id, ctx.client.db, keys) {
        // A key of another type is passed over once a change woke the command.
        let Some(set) = ctx.engine.blocked.wrong_type_as_missing(ctx.client.id, write(ctx, key))? else {
            continue;
        };
        let popped = set.pop(count, max);
        if !popped.is_empty() {
            let mut effect = vec![Bytes::from_static(b"ZREM"), key.clone()];
            effect.extend(popped.iter().map(|(m, _)| m.clone()));
            // Logged as ZREM, announced as Redis does: `zpopmin` or `zpopmax`.
            ctx.explicit_events();
            ctx.propagate(effect);
            ctx.notify(crate::notify::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
            drop_if_empty(ctx, key);
        }
        return Ok(Some((key.clone(), popped)));
    }
    Ok(None)
}

/// ZMPOP/BZMPOP's reply: `[key, [[member, score]...]]` in both protocols.
pub(crate) fn zmpop_reply(key: Bytes, popped: Vec<(Bytes, f64)>) -> Reply {
    let pairs = popped.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)])).collect();
    Reply::Array(vec![Reply::Bulk(key), Reply::Array(pairs)])
}

/// ZMPOP/BZMPOP's arguments from `numkeys` at `at`: the keys, MAX (else MIN), the count.
pub(crate) fn parse_zmpop(args: &[Bytes], at: usize) -> Result<(&[Bytes], bool, usize), Reply> {
    let numkeys =
        parse_i64(arg(args, at)?).filter(|&n| n > 0).ok_or_else(|| err("ERR numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    let where_at = (at + 1).checked_add(numkeys).filter(|&w| w < args.len()).ok_or_else(errors::syntax)?;
    let keys = args.get(at + 1..where_at).ok_or_else(errors::syntax)?;
    let max = match arg(args, where_at)? {
        w if is(w, "min") => false,
        w if is(w, "max") => true,
        _ => return Err(errors::syntax()),
    };
    let mut count = None;
    let mut j = where_at + 1;
    while let Some(option) = args.get(j) {
        if count.is_none() && is(option, "count") && j + 1 < args.len() {
            let n = parse_i64(arg(args, j + 1)?).filter(|&n| n > 0);
            count = Some(n.ok_or_else(|| err("ERR count should be greater than 0"))?);
            j += 2;
        } else {
            return Err(errors::syntax());
        }
    }
    Ok((keys, max, usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX)))
}

fn zpopmin(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zpop_generic(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    zpop_generic(ctx, args, true)
}

fn zpop_generic(ctx: &mut Ctx, args: &[Bytes], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::syntax());
    }
    let count = match args.get(2) {
        None => None,
        Some(c) => {
            let n = parse_i64(c).filter(|&n| n >= 0);
            Some(n.ok_or_else(|| err("ERR value is out of range, must be positive"))?)
        }
    };
    let key = arg(args, 1)?;
    let n = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let popped = pop_first_nonempty(ctx, std::slice::from_ref(key), max, n)?.map(|(_, p)| p).unwrap_or_default();
    // A plain pop answers a flat pair; with COUNT, RESP3 nests the pairs.
    Ok(members_reply(resp3(ctx) && count.is_some(), popped, true))
}

fn zmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (keys, max, count) = parse_zmpop(args, 1)?;
    Ok(match pop_first_nonempty(ctx, keys, max, count)? {
        Some((key, popped)) => zmpop_reply(key, popped),
        None => Reply::NilArray,
    })
}

// ---- ZRANDMEMBER ----

fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let Some(count) = args.get(2) else {
        let Some(set) = read(ctx, key)? else {
            return Ok(Reply::Nil);
        };
        let pick = rand::thread_rng().gen_range(0..set.len().max(1));
        return Ok(set.get_by_rank(pick).map_or(Reply::Nil, |(m, _)| bulk_copy(m)));
    };
    let count = super::random_count(count)?;
    let withscores = match args.get(3..).unwrap_or_default() {
        [] => false,
        [w] if is(w, "withscores") => true,
        _ => return Err(errors::syntax()),
    };
    if withscores {
        super::check_paired_count(count)?;
    }
    let resp3 = resp3(ctx);
    let limit = ctx.reply_limit();
    let Some(set) = read(ctx, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    // A packed set is found by rank with a walk: pick from its (at most 128) entries instead.
    let packed: Option<Vec<(&[u8], f64)>> = set.is_listpack().then(|| set.iter().collect());
    let at_rank = |rank: usize| packed.as_ref().map_or_else(|| set.get_by_rank(rank), |all| all.get(rank).copied());
    let mut rng = rand::thread_rng();
    let size = set.len();
    let picked: Vec<(Bytes, f64)> = if count == 0 || size == 0 {
        Vec::new()
    } else if count < 0 || count == 1 {
        // Repeats allowed, in random order.
        let n = count.unsigned_abs();
        if n > MAX_RANDOM_REPEATS.unsigned_abs() {
            return Err(err("ERR value is out of range"));
        }
        let pick = || at_rank(rng.gen_range(0..size)).map(owned);
        super::repeated_picks(limit, n, pick, |(member, _): &(Bytes, f64)| member.len() + 8)?
    } else if count.unsigned_abs() >= size as u64 {
        // The whole set, highest first (Redis's set-operation iterator walks from the tail).
        set.iter_rev().map(owned).collect()
    } else {
        let n = usize::try_from(count).unwrap_or(size);
        rand::seq::index::sample(&mut rng, size, n).into_iter().filter_map(|r| at_rank(r).map(owned)).collect()
    };
    Ok(members_reply(resp3, picked, withscores))
}

// ---- ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`: a NaN sum (inf + -inf) counts as 0.
fn aggregate(target: &mut f64, value: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += value;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if value < *target {
                *target = value;
            }
        }
        Aggregate::Max => {
            if value > *target {
                *target = value;
            }
        }
    }
}

/// One input of a set operation.
struct Input {
    key: Bytes,
    weight: f64,
    len: usize,
}

/// The members (score 1 for a plain set) of an input, visited one by one.
fn for_each_member(value: Option<&Value>, mut visit: impl FnMut(&[u8], f64)) {
    match value {
        Some(Value::ZSet(z)) => z.iter().for_each(|(m, s)| visit(m, s)),
        Some(Value::Set(s)) => s.iter().for_each(|m| visit(&m, 1.0)),
        _ => {}
    }
}

fn score_in(value: Option<&Value>, member: &[u8]) -> Option<f64> {
    match value {
        Some(Value::ZSet(z)) => z.score(member),
        Some(Value::Set(s)) => s.contains(member).then_some(1.0),
        _ => None,
    }
}

fn zunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setop_generic(ctx, args, None, 1, SetOp::Union, false)
}

fn zinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setop_generic(ctx, args, None, 1, SetOp::Inter, false)
}

fn zdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setop_generic(ctx, args, None, 1, SetOp::Diff, false)
}

fn zunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setop_generic(ctx, args, Some(arg(args, 1)?), 2, SetOp::Union, false)
}

fn zinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setop_generic(ctx, args, Some(arg(args, 1)?), 2, SetOp::Inter, false)
}

fn zdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setop_generic(ctx, args, Some(arg(args, 1)?), 2, SetOp::Diff, false)
}

fn zintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setop_generic(ctx, args, None, 1, SetOp::Inter, true)
}

/// Redis's `zunionInterDiffGenericCommand`: numkeys, the keys (WRONGTYPE before options),
/// WEIGHTS / AGGREGATE / WITHSCORES / LIMIT, then the operation. Union and intersection take
/// the inputs smallest first (a stable sort, as glibc's qsort is), which fixes the order
/// scores are summed in.
fn setop_generic(
    ctx: &mut Ctx,
    args: &[Bytes],
    dst: Option<&Bytes>,
    numkeys_at: usize,
    op: SetOp,
    card_only: bool,
) -> CmdResult {
    let numkeys = int_arg(arg(args, numkeys_at)?)?;
    if numkeys < 1 {
        let name = args.first().map(|n| String::from_utf8_lossy(n).to_ascii_lowercase()).unwrap_or_default();
        return Err(Reply::Error(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    let first_key = numkeys_at + 1;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len().saturating_sub(first_key) {
        return Err(errors::syntax());
    }
    let mut inputs = Vec::with_capacity(numkeys);
    for key in args.get(first_key..first_key + numkeys).unwrap_or_default() {
        // Read lookups, STORE forms included (a missing input is an announced `keymiss`).
        let entry = ctx.lookup_read(key);
        let len = match entry.map(|e| &e.value) {
            None => 0,
            Some(Value::ZSet(z)) => z.len(),
            Some(Value::Set(s)) => s.len(),
            Some(_) => return Err(errors::wrong_type()),
        };
        inputs.push(Input { key: key.clone(), weight: 1.0, len });
    }
    let (mut how, mut withscores, mut limit) = (Aggregate::Sum, false, 0usize);
    let mut j = first_key + numkeys;
    while let Some(option) = args.get(j) {
        let remaining = args.len() - j;
        let scored = op != SetOp::Diff && !card_only;
        if scored && remaining > numkeys && is(option, "weights") {
            for (input, weight) in inputs.iter_mut().zip(args.iter().skip(j + 1)) {
                input.weight = zset::parse_score(weight).ok_or_else(|| err("ERR weight value is not a float"))?;
            }
            j += 1 + numkeys;
        } else if scored && remaining >= 2 && is(option, "aggregate") {
            how = match arg(args, j + 1)? {
                a if is(a, "sum") => Aggregate::Sum,
                a if is(a, "min") => Aggregate::Min,
                a if is(a, "max") => Aggregate::Max,
                _ => return Err(errors::syntax()),
            };
            j += 2;
        } else if dst.is_none() && !card_only && is(option, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(option, "limit") {
            let n = parse_i64(arg(args, j + 1)?).filter(|&n| n >= 0);
            limit = usize::try_from(n.ok_or_else(|| err("ERR LIMIT can't be negative"))?).unwrap_or(usize::MAX);
            j += 2;
        } else {
            return Err(errors::syntax());
        }
    }
    if op != SetOp::Diff {
        inputs.sort_by_key(|input| input.len);
    }
    let result = match op {
        SetOp::Union => union(ctx, &inputs, how),
        SetOp::Inter => intersection(ctx, &inputs, how),
        SetOp::Diff => difference(ctx, &inputs),
    };
    if card_only {
        let n = if limit > 0 { result.len().min(limit) } else { result.len() };
        return Ok(Reply::Int(n as i64));
    }
    let mut set = ZSet::with_size_hint(usize::MAX);
    for (member, score) in result {
        set.insert(member, score);
    }
    match dst {
        Some(dst) => {
            set.convert_to_listpack_if_needed();
            let event = match op {
                SetOp::Union => "zunionstore",
                SetOp::Inter => "zinterstore",
                SetOp::Diff => "zdiffstore",
            };
            Ok(store_result(ctx, dst, set, event))
        }
        None => {
            let items = set.iter().map(owned).collect();
            Ok(members_reply(resp3(ctx), items, withscores))
        }
    }
}

fn union(ctx: &mut Ctx, inputs: &[Input], how: Aggregate) -> Vec<(Bytes, f64)> {
    let largest = inputs.last().map_or(0, |i| i.len);
    let mut acc: HashMap<Bytes, f64> = HashMap::with_capacity_and_hasher(largest, Default::default());
    for input in inputs.iter().filter(|i| i.len > 0) {
        for_each_member(ctx.peek(&input.key).map(|e| &e.value), |member, score| {
            let mut score = input.weight * score;
            if score.is_nan() {
                score = 0.0;
            }
            match acc.get_mut(member) {
                Some(existing) => aggregate(existing, score, how),
                None => {
                    acc.insert(Bytes::copy_from_slice(member), score);
                }
            }
        });
    }
    acc.into_iter().collect()
}

fn intersection(ctx: &mut Ctx, inputs: &[Input], how: Aggregate) -> Vec<(Bytes, f64)> {
    let Some((smallest, others)) = inputs.split_first().filter(|(first, _)| first.len > 0) else {
        return Vec::new();
    };
    let mut candidates = Vec::with_capacity(smallest.len);
    for_each_member(ctx.peek(&smallest.key).map(|e| &e.value), |member, score| {
        let score = smallest.weight * score;
        candidates.push((Bytes::copy_from_slice(member), if score.is_nan() { 0.0 } else { score }));
    });
    for input in others {
        let value = ctx.peek(&input.key).map(|e| &e.value);
        candidates.retain_mut(|(member, score)| match score_in(value, member) {
            Some(found) => {
                aggregate(score, found * input.weight, how);
                true
            }
            None => false,
        });
    }
    candidates
}

fn difference(ctx: &mut Ctx, inputs: &[Input]) -> Vec<(Bytes, f64)> {
    let Some((first, others)) = inputs.split_first().filter(|(first, _)| first.len > 0) else {
        return Vec::new();
    };
    let mut candidates = Vec::with_capacity(first.len);
    for_each_member(ctx.peek(&first.key).map(|e| &e.value), |member, score| {
        candidates.push((Bytes::copy_from_slice(member), score))
    });
    for input in others.iter().filter(|i| i.len > 0) {
        let value = ctx.peek(&input.key).map(|e| &e.value);
        candidates.retain(|(member, _)| score_in(value, member).is_none());
    }
    candidates
}

// ---- ZSCAN ----

fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(super::ScanTarget { collection: set, compact, cursor, options }) = super::scan_target::<ZSet>(ctx, args)?
    else {
        return Ok(super::scan_page(0, Vec::new()));
    };
    Ok(super::scan_members(compact, cursor, &options, |cursor, count, visit| {
        set.scan(cursor, count, |member, score| visit(Scored { member, score, listpack: compact }))
    }))
}

/// A member and its score as ZSCAN returns them: a listpack set (returned whole) gives each
/// score as the listpack stores it, a skip list as a double.
struct Scored<'a> {
    member: &'a [u8],
    score: f64,
    listpack: bool,
}

impl super::ScanItem for Scored<'_> {
    fn name(&self) -> &[u8] {
        self.member
    }

    fn push_reply(self, out: &mut Vec<Reply>) {
        let score = if self.listpack {
            zset::format_listpack_score(self.score)
        } else {
            staykv_resp::format_double(self.score)
        };
        out.extend([bulk_copy(self.member), Reply::Bulk(Bytes::from(score))]);
    }
}

#[cfg(test)]
mod recorded;
#[cfg(test)]
mod tests;

// ---- blocking pops ----

fn bzpop_generic(ctx: &mut Ctx, args: &[Bytes], max: bool) -> CmdResult {
    let (timeout, keys) = args.get(1..).and_then(<[Bytes]>::split_last).ok_or_else(errors::syntax)?;
    let deadline = super::lists::parse_timeout(ctx, timeout)?;
    if let Some((key, popped)) = pop_first_nonempty(ctx, keys, max, 1)? {
        if let Some((member, score)) = popped.into_iter().next() {
            return Ok(Reply::Array(vec![Reply::Bulk(key), Reply::Bulk(member), Reply::Double(score)]));
        }
    }
    ctx.block(keys, deadline);
    Ok(Reply::NilArray)
}

fn bzpopmin(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bzpop_generic(ctx, args, false)
}

fn bzpopmax(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bzpop_generic(ctx, args, true)
}

fn bzmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Redis reads the timeout after numkeys, the keys, MIN|MAX and COUNT.
    let (keys, max, count) = parse_zmpop(args, 2)?;
    let deadline = super::lists::parse_timeout(ctx, arg(args, 1)?)?;
    match pop_first_nonempty(ctx, keys, max, count)? {
        Some((key, popped)) => Ok(zmpop_reply(key, popped)),
        None => {
            ctx.block(keys, deadline);
            Ok(Reply::NilArray)
        }
    }
}
