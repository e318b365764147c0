//! Sets (Redis's `t_set.c`).
//!
//! Random removals (SPOP) are logged as SREM of the members removed, and STORE forms as the
//! resulting set, so replay never depends on randomness or on other keys.

use bytes::Bytes;
use staykv_resp::Reply;

use super::lists::{numkeys_at_1, parse_numkeys};
use super::{
    arg, bulk_copy, is, repeated_picks, scan_members, scan_page, scan_target, ScanItem, ScanTarget, MAX_RANDOM_REPEATS,
};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::key_spec::{key::*, KeySpec};
use crate::set::{Member, Set};
use crate::value::{Encoding, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, WRITE | DENYOOM | FAST, "set", sadd).key_specs(&[KeySpec::index(1, RW | INSERT)]),
    CommandSpec::new("srem", -3, WRITE | FAST, "set", srem).key_specs(&[KeySpec::index(1, RW | DELETE)]),
    CommandSpec::new("smembers", 2, READONLY, "set", smembers)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output_order"]),
    CommandSpec::new("sismember", 3, READONLY | FAST, "set", sismember).key_specs(&[KeySpec::index(1, RO)]),
    CommandSpec::new("smismember", -3, READONLY | FAST, "set", smismember).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("scard", 2, READONLY | FAST, "set", scard).key_specs(&[KeySpec::index(1, RO)]),
    CommandSpec::new("spop", -2, WRITE | FAST, "set", spop)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE)])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("srandmember", -2, READONLY, "set", srandmember)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("smove", 4, WRITE | FAST, "set", smove)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE), KeySpec::index(2, RW | INSERT)]),
    CommandSpec::new("sinter", -2, READONLY, "set", sinter)
        .key_specs(&[KeySpec::index(1, RO | ACCESS).range(-1, 1, 0)])
        .tips(&["nondeterministic_output_order"]),
    CommandSpec::new("sunion", -2, READONLY, "set", sunion)
        .key_specs(&[KeySpec::index(1, RO | ACCESS).range(-1, 1, 0)])
        .tips(&["nondeterministic_output_order"]),
    CommandSpec::new("sdiff", -2, READONLY, "set", sdiff)
        .key_specs(&[KeySpec::index(1, RO | ACCESS).range(-1, 1, 0)])
        .tips(&["nondeterministic_output_order"]),
    CommandSpec::new("sinterstore", -3, WRITE | DENYOOM, "set", sinterstore)
        .key_specs(&[KeySpec::index(1, RW | UPDATE), KeySpec::index(2, RO | ACCESS).range(-1, 1, 0)]),
    CommandSpec::new("sunionstore", -3, WRITE | DENYOOM, "set", sunionstore)
        .key_specs(&[KeySpec::index(1, OW | UPDATE), KeySpec::index(2, RO | ACCESS).range(-1, 1, 0)]),
    CommandSpec::new("sdiffstore", -3, WRITE | DENYOOM, "set", sdiffstore)
        .key_specs(&[KeySpec::index(1, OW | UPDATE), KeySpec::index(2, RO | ACCESS).range(-1, 1, 0)]),
    CommandSpec::new("sintercard", -3, READONLY, "set", sintercard)
        .key_finder(numkeys_at_1)
        .key_specs(&[KeySpec::index(1, RO | ACCESS).keynum(0, 1, 1)]),
    CommandSpec::new("sscan", -3, READONLY, "set", sscan)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
];

fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Set>, Reply> {
    ctx.read_collection(key)
}

fn write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c mut Set, Reply> {
    ctx.write_collection(key, true)?.ok_or_else(errors::wrong_type)
}

/// The set at `key` for a command that changes it: looked up as Redis's `lookupKeyWrite`
/// does, so a missing key is no counted, announced miss (`read` is for reads).
fn existing<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Set>, Reply> {
    ctx.existing_collection(key)
}

fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let set = write(ctx, arg(args, 1)?)?;
    let added = args.iter().skip(2).filter(|m| set.insert(m)).count();
    // Adding only members already there changes nothing: no event, no WATCH touch (Redis).
    if added > 0 {
        ctx.propagate_args(args);
    }
    Ok(Reply::Int(added as i64))
}

fn srem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    ctx.keep_outgrown(key);
    let Some(set) = existing(ctx, key)? else { return Ok(Reply::Int(0)) };
    let removed = args.iter().skip(2).filter(|m| set.remove(&m[..])).count();
    if removed > 0 {
        ctx.propagate_args(args);
    }
    ctx.drop_if_empty(key);
    Ok(Reply::Int(removed as i64))
}

fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let members = read(ctx, arg(args, 1)?)?.map(|s| s.iter().map(|m| bulk_copy(&m)).collect()).unwrap_or_default();
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
    ctx.keep_outgrown(key);
    let Some(set) = existing(ctx, key)? else {
        return Ok(if count.is_some() { Reply::Set(Vec::new()) } else { Reply::Nil });
    };
    let size = set.len();
    let mut rng = rand::thread_rng();
    // Chosen by reference, then copied.
    let chosen: Vec<Bytes> = set.sample(count.unwrap_or(1), &mut rng).iter().map(|m| m.to_bytes()).collect();
    // Popping most of a set makes Redis rebuild it from what remains, so its encoding then
    // follows the content again: spopWithCountCommand's third case, taken when fewer than
    // `count` elements remain and `remaining * 5 <= count` (SPOP_MOVE_STRATEGY_MUL).
    let rebuilt = count.is_some_and(|n| n < size && (size - n).saturating_mul(5) <= n);
    for member in &chosen {
        set.remove(&member[..]);
    }
    if rebuilt {
        set.compact();
    }
    if !chosen.is_empty() {
        let mut effect = vec![Bytes::from_static(b"SREM"), key.clone()];
        effect.extend(chosen.iter().cloned());
        // Logged as SREM, announced as `spop` (and `del` if emptied), as Redis does.
        ctx.explicit_events();
        ctx.propagate(effect);
        ctx.notify(crate::notify::SET, "spop", key);
    }
    ctx.drop_if_empty(key);
    if rebuilt {
        ctx.set_encoding(key, Encoding::Auto);
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
    let limit = ctx.reply_limit();
    let Some(set) = read(ctx, arg(args, 1)?)? else {
        return Ok(if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil });
    };
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        return Ok(set.random(&mut rng).map_or(Reply::Nil, |m| bulk_copy(&m)));
    };
    if count >= 0 {
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        return Ok(Reply::Array(set.sample(n, &mut rng).iter().map(|m| bulk_copy(m)).collect()));
    }
    let n = count.checked_neg().filter(|&n| n <= MAX_RANDOM_REPEATS).ok_or_else(|| err("ERR value is out of range"))?;
    let picked = repeated_picks(limit, n.unsigned_abs(), || set.random(&mut rng), |m| m.len())?;
    Ok(Reply::Array(picked.iter().map(|m| bulk_copy(m)).collect()))
}

fn smove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (arg(args, 1)?, arg(args, 2)?, arg(args, 3)?);
    let Some(source) = existing(ctx, src)? else { return Ok(Reply::Int(0)) };
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
    ctx.keep_outgrown(src);
    if let Some(source) = existing(ctx, src)? {
        source.remove(&member[..]);
    }
    // Redis's order of events: `srem`, `del` if the source emptied, `new` if the destination
    // is created, `sadd` only if the member was not in it already.
    ctx.propagate(vec![Bytes::from_static(b"SREM"), src.clone(), member.clone()]);
    ctx.drop_if_empty(src);
    if write(ctx, dst)?.insert(member) {
        ctx.propagate(vec![Bytes::from_static(b"SADD"), dst.clone(), member.clone()]);
    }
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
            acc.absorb(s);
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
    Ok(Reply::Set(combine(sets, op).iter().map(|m| bulk_copy(&m)).collect()))
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

/// Whether Redis 7.0's SDIFFSTORE builds its result as a hashtable whatever it holds: its
/// second algorithm (chosen when the first set is large against the others) adds the whole
/// first set to an intset, which converts if the first set could not be one, and then
/// removes the other sets' members, which never converts back.
fn diff_builds_hashtable(keys: &[Bytes], sets: &[Option<Set>]) -> bool {
    let (Some(first_key), Some(Some(first))) = (keys.first(), sets.first()) else { return false };
    // A repeated first key makes the result empty without either algorithm.
    let same_set = keys.iter().zip(sets).skip(1).any(|(k, s)| s.is_some() && k == first_key);
    let sizes: Vec<usize> = sets.iter().flatten().map(|s| s.len()).collect();
    let algo_one_work = first.len().saturating_mul(sizes.len()) / 2;
    let algo_two_work: usize = sizes.iter().sum();
    !same_set && algo_one_work > algo_two_work && !first.content_fits_ints()
}

fn store_op(ctx: &mut Ctx, args: &[Bytes], op: Op) -> CmdResult {
    let dst = arg(args, 1)?;
    let keys = args.get(2..).unwrap_or_default();
    let sets = load_sets(ctx, keys)?;
    let hashtable = op == Op::Diff && diff_builds_hashtable(keys, &sets);
    let mut result = combine(sets, op);
    result.compact();
    let len = result.len();
    let event = match op {
        Op::Inter => "sinterstore",
        Op::Union => "sunionstore",
        Op::Diff => "sdiffstore",
    };
    let stored = (len > 0).then(|| {
        let mut sadd = vec![Bytes::from_static(b"SADD"), dst.clone()];
        sadd.extend(result.iter().map(|m| m.to_bytes()));
        (Value::Set(Box::new(result)), sadd)
    });
    ctx.replace_with_result(dst, stored, crate::notify::SET, event);
    if len > 0 && hashtable {
        ctx.set_encoding(dst, Encoding::Big);
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
    let Some(ScanTarget { collection: set, compact, cursor, options }) = scan_target::<Set>(ctx, args)? else {
        return Ok(scan_page(0, Vec::new()));
    };
    Ok(scan_members(compact, cursor, &options, |cursor, count, visit| set.scan(cursor, count, visit)))
}

impl ScanItem for Member<'_> {
    fn name(&self) -> &[u8] {
        self
    }

    fn push_reply(self, out: &mut Vec<Reply>) {
        out.push(Reply::Bulk(self.to_bytes()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::Engine;

    fn encoding(e: &Engine, c: &mut Client, key: &str) -> Reply {
        e.run_text(c, &["OBJECT", "ENCODING", key])
    }

    /// Redis 7.0's set encodings (checked against redis-server 7.0.15): a set is created as an
    /// intset when its content allows, converts to a hashtable when a member or the size
    /// rules it out, and never converts back while the key lives.
    #[test]
    fn set_encodings_follow_redis_conversions() {
        let (e, mut c) = (Engine::new(crate::EngineOptions::default()), Client::new(1, true));
        let intset = Reply::bulk_str("intset");
        let hashtable = Reply::bulk_str("hashtable");
        e.run_text(&mut c, &["SADD", "s", "1", "2", "3"]);
        assert_eq!(encoding(&e, &mut c, "s"), intset);
        // "01" and "+1" are not canonical integers.
        e.run_text(&mut c, &["SADD", "t", "1", "01"]);
        assert_eq!(encoding(&e, &mut c, "t"), hashtable);
        e.run_text(&mut c, &["SADD", "s", "a"]);
        e.run_text(&mut c, &["SREM", "s", "a"]);
        assert_eq!(encoding(&e, &mut c, "s"), hashtable, "no conversion back");
        // Within one transaction the conversion happens at the SADD, not at the end.
        e.run_text(&mut c, &["SADD", "m", "1"]);
        for line in [&["MULTI"][..], &["SADD", "m", "x"], &["SREM", "m", "x"], &["EXEC"]] {
            e.run_text(&mut c, line);
        }
        assert_eq!(encoding(&e, &mut c, "m"), hashtable);
        // COPY and RENAME keep the encoding; a new key starts over.
        e.run_text(&mut c, &["COPY", "s", "s2"]);
        assert_eq!(encoding(&e, &mut c, "s2"), hashtable);
        e.run_text(&mut c, &["DEL", "s"]);
        e.run_text(&mut c, &["SADD", "s", "1"]);
        assert_eq!(encoding(&e, &mut c, "s"), intset);
        // More than 512 integers is a hashtable, and stays one below the limit.
        let many: Vec<String> = (0..513).map(|i| i.to_string()).collect();
        let mut sadd = vec!["SADD", "big"];
        sadd.extend(many.iter().map(String::as_str));
        e.run_text(&mut c, &sadd);
        assert_eq!(encoding(&e, &mut c, "big"), hashtable);
        e.run_text(&mut c, &["SREM", "big", "0"]);
        assert_eq!(encoding(&e, &mut c, "big"), hashtable);
        // STORE forms build a new set from the result: SINTERSTORE of two hashtables with
        // integer members only is an intset.
        e.run_text(&mut c, &["SADD", "h1", "1", "2", "x"]);
        e.run_text(&mut c, &["SADD", "h2", "1", "2", "y"]);
        e.run_text(&mut c, &["SINTERSTORE", "i", "h1", "h2"]);
        assert_eq!(encoding(&e, &mut c, "i"), intset);
        // SMOVE to a missing key creates it from the moved member.
        e.run_text(&mut c, &["SMOVE", "h1", "mv", "1"]);
        assert_eq!(encoding(&e, &mut c, "mv"), intset);
    }

    /// A set stored whole (STORE forms, RESTORE, a SPOP rebuild) is encoded by its content
    /// when built, and a hashtable from then on even once its non-integers are removed.
    #[test]
    fn sets_stored_whole_stay_hashtables() {
        let (e, mut c) = (Engine::new(crate::EngineOptions::default()), Client::new(1, true));
        e.run_text(&mut c, &["SADD", "a", "1", "x"]);
        e.run_text(&mut c, &["SUNIONSTORE", "u", "a"]);
        e.run_text(&mut c, &["SREM", "u", "x"]);
        assert_eq!(encoding(&e, &mut c, "u"), Reply::bulk_str("hashtable"));
        e.run_text(&mut c, &["SUNIONSTORE", "v", "a"]);
        e.run_text(&mut c, &["SMOVE", "v", "w", "x"]);
        assert_eq!(encoding(&e, &mut c, "v"), Reply::bulk_str("hashtable"));
        let dump = e.run_text(&mut c, &["DUMP", "a"]);
        let Reply::Bulk(payload) = &dump else { unreachable!("DUMP answered {dump:?}") };
        let args = [&b"RESTORE"[..], b"r", b"0", &payload[..]].map(Bytes::copy_from_slice);
        e.execute(&mut c, &args, 1, &crate::host::NoHost, &crate::exec::NoJournal);
        e.run_text(&mut c, &["SPOP", "r", "0"]);
        e.run_text(&mut c, &["SREM", "r", "x"]);
        assert_eq!(encoding(&e, &mut c, "r"), Reply::bulk_str("hashtable"));
    }

    #[test]
    fn sdiffstore_second_algorithm_leaves_a_hashtable() {
        let (e, mut c) = (Engine::new(crate::EngineOptions::default()), Client::new(1, true));
        let intset = Reply::bulk_str("intset");
        let hashtable = Reply::bulk_str("hashtable");
        // First set of 6 against one of 1: algorithm one's work 6*2/2 = 6 > 7? No: 6 <= 7,
        // algorithm one, which adds only the surviving members.
        e.run_text(&mut c, &["SADD", "a", "1", "2", "3", "4", "5", "x"]);
        e.run_text(&mut c, &["SADD", "b", "x"]);
        assert_eq!(e.run_text(&mut c, &["SDIFFSTORE", "d", "a", "b"]), Reply::Int(5));
        assert_eq!(encoding(&e, &mut c, "d"), intset);
        // Against a missing set and one of 1: 6*2/2 = 6 > 1 + ... sizes 6 and 1 only (the
        // missing key does not count): still 6 <= 7. With three copies of b: 6*4/2 = 12 > 9,
        // algorithm two: all of a added (converting at "x"), then b's members removed.
        assert_eq!(e.run_text(&mut c, &["SDIFFSTORE", "d", "a", "b", "b", "b"]), Reply::Int(5));
        assert_eq!(encoding(&e, &mut c, "d"), hashtable);
        // The same with an intset first set stays an intset.
        e.run_text(&mut c, &["SADD", "n", "1", "2", "3", "4", "5", "6"]);
        e.run_text(&mut c, &["SADD", "o", "6"]);
        assert_eq!(e.run_text(&mut c, &["SDIFFSTORE", "d", "n", "o", "o", "o"]), Reply::Int(5));
        assert_eq!(encoding(&e, &mut c, "d"), intset);
    }

    #[test]
    fn spop_rebuilds_the_set_only_when_popping_most_of_it() {
        let (e, mut c) = (Engine::new(crate::EngineOptions::default()), Client::new(1, true));
        let intset = Reply::bulk_str("intset");
        let hashtable = Reply::bulk_str("hashtable");
        let fill = |c: &mut Client| {
            e.run_text(c, &["DEL", "s"]);
            e.run_text(c, &["SADD", "s", "x", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
            e.run_text(c, &["SREM", "s", "x"]);
        };
        // 9 members: popping 7 leaves 2, 2*5 = 10 > 7: popped in place, still a hashtable.
        fill(&mut c);
        e.run_text(&mut c, &["SPOP", "s", "7"]);
        assert_eq!(encoding(&e, &mut c, "s"), hashtable);
        // Popping 8 leaves 1, 1*5 <= 8: rebuilt from the remaining integer, an intset.
        fill(&mut c);
        e.run_text(&mut c, &["SPOP", "s", "8"]);
        assert_eq!(encoding(&e, &mut c, "s"), intset);
        // SPOP without a count never rebuilds.
        fill(&mut c);
        e.run_text(&mut c, &["SPOP", "s"]);
        assert_eq!(encoding(&e, &mut c, "s"), hashtable);
    }
}
