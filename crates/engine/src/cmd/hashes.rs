//! Hashes (Redis's `t_hash.c`).

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, bulk_copy as bulk, int_arg, is, scan_members, scan_page, scan_target, ScanItem, ScanTarget};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::hash::Hash;
use crate::key_spec::{key::*, KeySpec};
use crate::long_double::LongDouble;
use crate::num::{i64_bytes, parse_i64};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, WRITE | DENYOOM | FAST, "hash", hset).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("hmset", -4, WRITE | DENYOOM | FAST, "hash", hmset).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("hsetnx", 4, WRITE | DENYOOM | FAST, "hash", hsetnx).key_specs(&[KeySpec::index(1, RW | INSERT)]),
    CommandSpec::new("hget", 3, READONLY | FAST, "hash", hget).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("hmget", -3, READONLY | FAST, "hash", hmget).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("hgetall", 2, READONLY, "hash", hgetall)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output_order"]),
    CommandSpec::new("hdel", -3, WRITE | FAST, "hash", hdel).key_specs(&[KeySpec::index(1, RW | DELETE)]),
    CommandSpec::new("hexists", 3, READONLY | FAST, "hash", hexists).key_specs(&[KeySpec::index(1, RO)]),
    CommandSpec::new("hlen", 2, READONLY | FAST, "hash", hlen).key_specs(&[KeySpec::index(1, RO)]),
    CommandSpec::new("hstrlen", 3, READONLY | FAST, "hash", hstrlen).key_specs(&[KeySpec::index(1, RO)]),
    CommandSpec::new("hkeys", 2, READONLY, "hash", hkeys)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output_order"]),
    CommandSpec::new("hvals", 2, READONLY, "hash", hvals)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output_order"]),
    CommandSpec::new("hincrby", 4, WRITE | DENYOOM | FAST, "hash", hincrby)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("hincrbyfloat", 4, WRITE | DENYOOM | FAST, "hash", hincrbyfloat)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("hrandfield", -2, READONLY, "hash", hrandfield)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("hscan", -3, READONLY, "hash", hscan)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)])
        .tips(&["nondeterministic_output"]),
];

/// The hash at `key` for reading (counts a hit or miss), or WRONGTYPE.
fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Hash>, Reply> {
    ctx.read_collection(key)
}

/// The hash at `key` for a command that changes it: looked up as Redis's `lookupKeyWrite`
/// does, so a missing key is no counted, announced miss (`read` is for reads).
fn existing<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Hash>, Reply> {
    ctx.existing_collection(key)
}

/// The hash at `key` for writing, created empty if missing, or WRONGTYPE.
fn write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c mut Hash, Reply> {
    ctx.write_collection(key, true)?.ok_or_else(errors::wrong_type)
}

/// HSET's and HMSET's field-value pairs.
fn pairs<'a>(args: &'a [Bytes], name: &str) -> Result<impl Iterator<Item = (&'a Bytes, &'a Bytes)>, Reply> {
    let rest = args.get(2..).unwrap_or_default();
    if rest.len() % 2 != 0 {
        return Err(errors::wrong_arity(name));
    }
    Ok(rest.chunks_exact(2).filter_map(|p| Some((p.first()?, p.get(1)?))))
}

/// Redis converts a compact hash on the sizes of HSET's arguments before it writes, so a long
/// field or value converts it even when a later pair of the same command overwrites it.
fn convert_on_long_arguments(ctx: &mut Ctx, key: &[u8], fields_and_values: &[Bytes]) {
    if fields_and_values.iter().any(|a| a.len() > crate::value::LISTPACK_MAX_VALUE) {
        ctx.set_encoding(key, crate::value::Encoding::Big);
    }
}

fn hset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pairs = pairs(args, "hset")?;
    let key = arg(args, 1)?;
    let hash = write(ctx, key)?;
    let added = pairs.filter(|(f, v)| hash.insert(f, v)).count();
    convert_on_long_arguments(ctx, key, args.get(2..).unwrap_or_default());
    ctx.propagate_args(args);
    Ok(Reply::Int(added as i64))
}

fn hmset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pairs = pairs(args, "hmset")?;
    let key = arg(args, 1)?;
    let hash = write(ctx, key)?;
    for (field, value) in pairs {
        hash.insert(field, value);
    }
    convert_on_long_arguments(ctx, key, args.get(2..).unwrap_or_default());
    ctx.propagate_args(args);
    Ok(Reply::Ok)
}

fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, field) = (arg(args, 1)?, arg(args, 2)?);
    if existing(ctx, key)?.is_some_and(|h| h.contains(field)) {
        // Redis checks for the field before it looks at the arguments' sizes: no conversion.
        return Ok(Reply::Int(0));
    }
    write(ctx, key)?.insert(field, arg(args, 3)?);
    ctx.propagate(vec![Bytes::from_static(b"HSET"), key.clone(), field.clone(), arg(args, 3)?.clone()]);
    Ok(Reply::Int(1))
}

fn hget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let field = arg(args, 2)?;
    Ok(read(ctx, arg(args, 1)?)?.and_then(|h| h.get(field).map(bulk)).unwrap_or(Reply::Nil))
}

fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let hash = read(ctx, arg(args, 1)?)?;
    let fields = args.get(2..).unwrap_or_default();
    Ok(Reply::Array(
        fields.iter().map(|f| hash.as_ref().and_then(|h| h.get(f).map(bulk)).unwrap_or(Reply::Nil)).collect(),
    ))
}

fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let hash = read(ctx, arg(args, 1)?)?;
    let pairs = hash.map(|h| h.iter().map(|(f, v)| (bulk(f), bulk(v))).collect());
    Ok(Reply::Map(pairs.unwrap_or_default()))
}

fn hdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    ctx.keep_outgrown(key);
    let Some(hash) = existing(ctx, key)? else { return Ok(Reply::Int(0)) };
    let removed = args.iter().skip(2).filter(|f| hash.remove(f)).count();
    let now_empty = hash.is_empty();
    if removed > 0 {
        ctx.propagate_args(args);
    }
    if now_empty {
        ctx.remove(key);
        // After `hdel`, as Redis announces an emptied hash's deletion.
        ctx.notify(crate::notify::GENERIC, "del", key);
    }
    Ok(Reply::Int(removed as i64))
}

fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let field = arg(args, 2)?;
    Ok(Reply::Int(i64::from(read(ctx, arg(args, 1)?)?.is_some_and(|h| h.contains(field)))))
}

fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(read(ctx, arg(args, 1)?)?.map_or(0, |h| h.len() as i64)))
}

fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let field = arg(args, 2)?;
    Ok(Reply::Int(read(ctx, arg(args, 1)?)?.and_then(|h| h.get(field)).map_or(0, |v| v.len() as i64)))
}

fn hkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Array(read(ctx, arg(args, 1)?)?.map(|h| h.iter().map(|(f, _)| bulk(f)).collect()).unwrap_or_default()))
}

fn hvals(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Array(read(ctx, arg(args, 1)?)?.map(|h| h.iter().map(|(_, v)| bulk(v)).collect()).unwrap_or_default()))
}

fn hincrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, field) = (arg(args, 1)?, arg(args, 2)?);
    let by = int_arg(arg(args, 3)?)?;
    let hash = write(ctx, key)?;
    let current = match hash.get(field) {
        None => 0,
        Some(v) => parse_i64(v).ok_or_else(|| err("ERR hash value is not an integer"))?,
    };
    let next = current.checked_add(by).ok_or_else(|| err(errors::OVERFLOW))?;
    hash.insert(field, &i64_bytes(next));
    ctx.propagate_args(args);
    Ok(Reply::Int(next))
}

fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, field) = (arg(args, 1)?, arg(args, 2)?);
    let by = LongDouble::parse(arg(args, 3)?).ok_or_else(errors::not_float)?;
    let by = by.map_err(|_| err("ERR value is NaN or Infinity"))?;
    let hash = write(ctx, key)?;
    let current = match hash.get(field) {
        None => Ok(LongDouble::ZERO),
        Some(v) => LongDouble::parse(v).ok_or_else(|| err("ERR hash value is not a float"))?,
    };
    let next = current.and_then(|c| c.checked_add(by)).map_err(|_| err(errors::NAN_OR_INFINITY))?;
    let text = Bytes::from(next.format_human());
    hash.insert(field, &text);
    // The result, not the increment, is logged: replay must not redo float arithmetic.
    // Logged as HSET, announced as `hincrbyfloat` as Redis does.
    ctx.explicit_events();
    ctx.propagate(vec![Bytes::from_static(b"HSET"), key.clone(), field.clone(), text.clone()]);
    ctx.notify(crate::notify::HASH, "hincrbyfloat", key);
    Ok(Reply::Bulk(text))
}

fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = match args.get(2) {
        Some(c) => Some(super::random_count(c)?),
        None => None,
    };
    let with_values = match args.get(3..).unwrap_or_default() {
        [] => false,
        [w] if is(w, "withvalues") && count.is_some() => true,
        _ => return Err(errors::syntax()),
    };
    if let (true, Some(count)) = (with_values, count) {
        super::check_paired_count(count)?;
    }
    let resp3 = ctx.client.protocol == staykv_resp::Protocol::Resp3;
    let limit = ctx.reply_limit();
    let Some(hash) = read(ctx, arg(args, 1)?)? else {
        return Ok(if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil });
    };
    if hash.is_empty() {
        return Ok(Reply::Array(Vec::new()));
    }
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        return Ok(hash.random(&mut rng).map_or(Reply::Nil, |(f, _)| bulk(f)));
    };
    let picked: Vec<(&[u8], &[u8])> = if count >= 0 {
        hash.sample(usize::try_from(count).unwrap_or(usize::MAX), &mut rng)
    } else {
        let n = count
            .checked_neg()
            .filter(|&n| n <= super::MAX_RANDOM_REPEATS)
            .ok_or_else(|| err("ERR value is out of range"))?;
        let bytes = |(field, value): &(&[u8], &[u8])| field.len() + if with_values { value.len() } else { 0 };
        super::repeated_picks(limit, n.unsigned_abs(), || hash.random(&mut rng), bytes)?
    };
    Ok(Reply::Array(
        picked
            .into_iter()
            .flat_map(|(f, v)| match (with_values, resp3) {
                (true, true) => vec![Reply::Array(vec![bulk(f), bulk(v)])],
                (true, false) => vec![bulk(f), bulk(v)],
                (false, _) => vec![bulk(f)],
            })
            .collect(),
    ))
}

fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(ScanTarget { collection: hash, compact, cursor, options }) = scan_target::<Hash>(ctx, args)? else {
        return Ok(scan_page(0, Vec::new()));
    };
    Ok(scan_members(compact, cursor, &options, |cursor, count, visit| hash.scan(cursor, count, visit)))
}

/// A field and its value, as HSCAN returns them.
impl ScanItem for (&[u8], &[u8]) {
    fn name(&self) -> &[u8] {
        self.0
    }

    fn push_reply(self, out: &mut Vec<Reply>) {
        out.extend([bulk(self.0), bulk(self.1)]);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Client, Engine, Reply};

    /// Redis 7.0's `hash-max-listpack-entries` is 512 (checked against redis-server 7.0.15;
    /// sorted sets' own limit is 128): a hash of 512 short fields is still a listpack.
    #[test]
    fn hashes_stay_listpack_up_to_512_fields() {
        let (e, mut c) = (Engine::new(crate::EngineOptions::default()), Client::new(1, true));
        for i in 0..513 {
            let field = format!("f{i}");
            e.run_text(&mut c, &["HSET", "h", &field, "v"]);
            let expected = if i < 512 { "listpack" } else { "hashtable" };
            if matches!(i, 127 | 128 | 511 | 512) {
                let got = e.run_text(&mut c, &["OBJECT", "ENCODING", "h"]);
                assert_eq!(got, Reply::bulk_str(expected), "{} fields", i + 1);
            }
        }
    }

    /// Redis converts a hash when a command is given a string over 64 bytes, even one the
    /// same command then overwrites (checked against redis-server 7.0.15), and never back.
    #[test]
    fn a_long_string_once_set_leaves_the_hash_a_hashtable() {
        let (e, mut c) = (Engine::new(crate::EngineOptions::default()), Client::new(1, true));
        let long = "x".repeat(65);
        e.run_text(&mut c, &["HSET", "h", "f", &long, "f", "short"]);
        assert_eq!(e.run_text(&mut c, &["OBJECT", "ENCODING", "h"]), Reply::bulk_str("hashtable"));
        e.run_text(&mut c, &["HSET", "g", "other", "1", "f", &long[..64]]);
        assert_eq!(e.run_text(&mut c, &["OBJECT", "ENCODING", "g"]), Reply::bulk_str("listpack"));
        e.run_text(&mut c, &["HSET", "g", "f", &long]);
        e.run_text(&mut c, &["HDEL", "g", "f"]);
        e.run_text(&mut c, &["HSET", "g", "f", "short"]);
        assert_eq!(e.run_text(&mut c, &["OBJECT", "ENCODING", "g"]), Reply::bulk_str("hashtable"));
    }
}
