//! Sets (Redis's `t_set.c`).
//!
//! Random removals (SPOP) are logged as SREM of the members removed, and STORE forms as the
//! resulting set, so replay never depends on randomness or on other keys.

use bytes::Bytes;
use rand::seq::IteratorRandom;
use rand::Rng;
use staykv_resp::Reply;

use super::lists::{numkeys_at_1, parse_numkeys};
use super::{arg, is, own, scan_members, MAX_RANDOM_REPEATS};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::keyspace::NO_EXPIRY;
use crate::value::{HashSet, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, WRITE | DENYOOM | FAST, "set", sadd).keys(1, 1, 1),
    CommandSpec::new("srem", -3, WRITE | FAST, "set", srem).keys(1, 1, 1),
    CommandSpec::new("smembers", 2, READONLY, "set", smembers).keys(1, 1, 1),
    CommandSpec::new("sismember", 3, READONLY | FAST, "set", sismember).keys(1, 1, 1),
    CommandSpec::new("smismember", -3, READONLY | FAST, "set", smismember).keys(1, 1, 1),
    CommandSpec::new("scard", 2, READONLY | FAST, "set", scard).keys(1, 1, 1),
    CommandSpec::new("spop", -2, WRITE | FAST, "set", spop).keys(1, 1, 1),
    CommandSpec::new("srandmember", -2, READONLY, "set", srandmember).keys(1, 1, 1),
    CommandSpec::new("smove", 4, WRITE | FAST, "set", smove).keys(1, 2, 1),
    CommandSpec::new("sinter", -2, READONLY, "set", sinter).keys(1, -1, 1),
    CommandSpec::new("sunion", -2, READONLY, "set", sunion).keys(1, -1, 1),
    CommandSpec::new("sdiff", -2, READONLY, "set", sdiff).keys(1, -1, 1),
    CommandSpec::new("sinterstore", -3, WRITE | DENYOOM, "set", sinterstore).keys(1, -1, 1),
    CommandSpec::new("sunionstore", -3, WRITE | DENYOOM, "set", sunionstore).keys(1, -1, 1),
    CommandSpec::new("sdiffstore", -3, WRITE | DENYOOM, "set", sdiffstore).keys(1, -1, 1),
    CommandSpec::new("sintercard", -3, READONLY, "set", sintercard).key_finder(numkeys_at_1),
    CommandSpec::new("sscan", -3, READONLY, "set", sscan).keys(1, 1, 1),
];

type Set = HashSet<Bytes>;

fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Set>, Reply> {
    ctx.read_collection(key)
}

fn write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c mut Set, Reply> {
    ctx.write_collection(key, true)?.ok_or_else(errors::wrong_type)
}

fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let set = write(ctx, arg(args, 1)?)?;
    let added = args.iter().skip(2).filter(|m| set.insert(own(m))).count();
    ctx.propagate_args(args);
    Ok(Reply::Int(added as i64))
}

fn srem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let Some(set) = read(ctx, key)? else { return Ok(Reply::Int(0)) };
    let removed = args.iter().skip(2).filter(|m| set.remove(&m[..])).count();
    if removed > 0 {
        ctx.propagate_args(args);
    }
    ctx.drop_if_empty(key);
    Ok(Reply::Int(removed as i64))
}

fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let members = read(ctx, arg(args, 1)?)?.map(|s| s.iter().cloned().map(Reply::Bulk).collect()).unwrap_or_default();
    Ok(Reply::Set(members))
}

fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let member = arg(args, 2)?;
    Ok(Reply::Int(i64::from(read(ctx, arg(args, 1)?)?.is_some_and(|s| s.contains(&member[..])))))
}

fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let set = read(ctx, arg(args, 1)?)?;
    let members = args.get(2..).unwrap_or_default();
    Ok(Reply::Array(
        members.iter().map(|m| Reply::Int(i64::from(set.as_ref().is_some_and(|s| s.contains(&m[..]))))).collect(),
    ))
}

fn scard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(read(ctx, arg(args, 1)?)?.map_or(0, |s| s.len() as i64)))
}

/// SPOP/SRANDMEMBER's count: Redis's range and error text.
fn positive_count(arg: &[u8]) -> Result<usize, Reply> {
    let n = crate::num::parse_i64(arg).filter(|n| *n >= 0);
    let n = n.ok_or_else(|| err("ERR value is out of range, must be positive"))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn spop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let count = match args.get(2..).unwrap_or_default() {
        [] => None,
        [c] => Some(positive_count(c)?),
        _ => return Err(errors::syntax()),
    };
    let Some(set) = read(ctx, key)? else {
        return Ok(if count.is_some() { Reply::Set(Vec::new()) } else { Reply::Nil });
    };
    let size = set.len();
    let mut rng = rand::thread_rng();
    let chosen: Vec<Bytes> = set.iter().cloned().choose_multiple(&mut rng, count.unwrap_or(1));
    // Popping most of a set makes Redis rebuild it from what remains, so its encoding then
    // follows the content again (spopWithCountCommand's third case).
    let rebuilt = count.is_some_and(|n| n < size && n.saturating_mul(5) > size);
    for member in &chosen {
        set.remove(member);
    }
    if !chosen.is_empty() {
        let mut effect = vec![Bytes::from_static(b"SREM"), key.clone()];
        effect.extend(chosen.iter().cloned());
        ctx.propagate(effect);
    }
    ctx.drop_if_empty(key);
    if rebuilt {
        ctx.set_encoding(key, crate::value::Encoding::Auto);
    }
    Ok(match count {
        None => chosen.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
        Some(_) => Reply::Set(chosen.into_iter().map(Reply::Bulk).collect()),
    })
}

fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = match args.get(2..).unwrap_or_default() {
        [] => None,
        [c] => Some(super::random_count(c)?),
        _ => return Err(errors::syntax()),
    };
    let Some(set) = read(ctx, arg(args, 1)?)? else {
        return Ok(if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil });
    };
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        return Ok(set.iter().choose(&mut rng).cloned().map_or(Reply::Nil, Reply::Bulk));
    };
    if count >= 0 {
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        return Ok(Reply::bulks(set.iter().cloned().choose_multiple(&mut rng, n)));
    }
    let n = count.checked_neg().filter(|&n| n <= MAX_RANDOM_REPEATS).ok_or_else(|| err("ERR value is out of range"))?;
    let members: Vec<&Bytes> = set.iter().collect();
    Ok(Reply::bulks((0..n).filter_map(|_| members.get(rng.gen_range(0..members.len())).map(|m| (*m).clone()))))
}

fn smove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (arg(args, 1)?, arg(args, 2)?, arg(args, 3)?);
    let Some(source) = read(ctx, src)? else { return Ok(Reply::Int(0)) };
    let present = source.contains(&member[..]);
    if ctx.peek(dst).is_some_and(|e| !matches!(e.value, Value::Set(_))) {
        return Err(errors::wrong_type());
    }
    if !present {
        return Ok(Reply::Int(0));
    }
    if src == dst {
        return Ok(Reply::Int(1));
    }
    if let Some(source) = read(ctx, src)? {
        source.remove(&member[..]);
    }
    ctx.drop_if_empty(src);
    write(ctx, dst)?.insert(own(member));
    ctx.propagate(vec![Bytes::from_static(b"SREM"), src.clone(), member.clone()]);
    ctx.propagate(vec![Bytes::from_static(b"SADD"), dst.clone(), member.clone()]);
    Ok(Reply::Int(1))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The sets at `keys` (a missing key is an empty set), or WRONGTYPE if any is not a set.
fn load_sets(ctx: &mut Ctx, keys: &[Bytes]) -> Result<Vec<Option<Set>>, Reply> {
    keys.iter().map(|k| Ok(read(ctx, k)?.map(|s| s.clone()))).collect()
}

fn combine(sets: Vec<Option<Set>>, op: Op) -> Set {
    let mut iter = sets.into_iter();
    let first = iter.next().flatten().unwrap_or_default();
    match op {
        Op::Union => iter.flatten().fold(first, |mut acc, s| {
            acc.extend(s);
            acc
        }),
        Op::Diff => iter.flatten().fold(first, |mut acc, s| {
            acc.retain(|m| !s.contains(m));
            acc
        }),
        Op::Inter => {
            let rest: Vec<Option<Set>> = iter.collect();
            if rest.iter().any(Option::is_none) {
                return Set::default();
            }
            let mut acc = first;
            for s in rest.into_iter().flatten() {
                acc.retain(|m| s.contains(m));
            }
            acc
        }
    }
}

fn set_op(ctx: &mut Ctx, args: &[Bytes], op: Op) -> CmdResult {
    let sets = load_sets(ctx, args.get(1..).unwrap_or_default())?;
    Ok(Reply::Set(combine(sets, op).into_iter().map(Reply::Bulk).collect()))
}

fn sinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    set_op(ctx, args, Op::Inter)
}

fn sunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    set_op(ctx, args, Op::Union)
}

fn sdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    set_op(ctx, args, Op::Diff)
}

fn store_op(ctx: &mut Ctx, args: &[Bytes], op: Op) -> CmdResult {
    let dst = arg(args, 1)?;
    let sets = load_sets(ctx, args.get(2..).unwrap_or_default())?;
    let result = combine(sets, op);
    let len = result.len();
    let existed = ctx.lookup(dst).is_some();
    ctx.remove(dst);
    if existed || len > 0 {
        ctx.propagate(vec![Bytes::from_static(b"DEL"), dst.clone()]);
    }
    if len > 0 {
        let mut effect = vec![Bytes::from_static(b"SADD"), dst.clone()];
        effect.extend(result.iter().cloned());
        ctx.propagate(effect);
        ctx.store(dst, Value::Set(result), NO_EXPIRY);
    }
    Ok(Reply::Int(len as i64))
}

fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    store_op(ctx, args, Op::Inter)
}

fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    store_op(ctx, args, Op::Union)
}

fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    store_op(ctx, args, Op::Diff)
}

fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = super::lists::non_negative(arg(args, 1)?, "ERR numkeys should be greater than 0")?;
    if n == 0 {
        return Err(err("ERR numkeys should be greater than 0"));
    }
    if n > args.len() - 2 {
        return Err(err("ERR Number of keys can't be greater than number of args"));
    }
    let keys = parse_numkeys(args, 1)?;
    let mut limit = usize::MAX;
    let tail = args.get(2 + keys.len()..).unwrap_or_default();
    let mut i = 0;
    // LIMIT's value is checked as soon as it is read; anything else is a syntax error.
    while let Some(option) = tail.get(i) {
        match tail.get(i + 1) {
            Some(value) if is(option, "limit") => {
                let v = super::lists::non_negative(value, "ERR LIMIT can't be negative")?;
                limit = if v > 0 { v } else { usize::MAX };
                i += 2;
            }
            _ => return Err(errors::syntax()),
        }
    }
    let sets = load_sets(ctx, keys)?;
    Ok(Reply::Int(combine(sets, Op::Inter).len().min(limit) as i64))
}

fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (cursor, options) = super::keys::parse_scan(args, 2, false)?;
    let Some(set) = read(ctx, arg(args, 1)?)? else {
        return Ok(Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(Vec::new())]));
    };
    Ok(scan_members(set.iter().map(|m| (m, Vec::new())), cursor, &options))
}
