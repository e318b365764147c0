//! Lists (Redis's `t_list.c`).
//!
//! Moves between keys (LMOVE, RPOPLPUSH) are logged as a pop from the source and a push to
//! the destination, so every logged effect names a single key.

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, bulk_copy, int_arg, is};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::key_spec::{key::*, KeySpec};
use crate::long_double::LongDouble;
use crate::num::i64_bytes;
use crate::value::Value;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lpush", -3, WRITE | DENYOOM | FAST, "list", lpush).key_specs(&[KeySpec::index(1, RW | INSERT)]),
    CommandSpec::new("rpush", -3, WRITE | DENYOOM | FAST, "list", rpush).key_specs(&[KeySpec::index(1, RW | INSERT)]),
    CommandSpec::new("lpushx", -3, WRITE | DENYOOM | FAST, "list", lpushx).key_specs(&[KeySpec::index(1, RW | INSERT)]),
    CommandSpec::new("rpushx", -3, WRITE | DENYOOM | FAST, "list", rpushx).key_specs(&[KeySpec::index(1, RW | INSERT)]),
    CommandSpec::new("lpop", -2, WRITE | FAST, "list", lpop).key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE)]),
    CommandSpec::new("rpop", -2, WRITE | FAST, "list", rpop).key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE)]),
    CommandSpec::new("llen", 2, READONLY | FAST, "list", llen).key_specs(&[KeySpec::index(1, RO)]),
    CommandSpec::new("lrange", 4, READONLY, "list", lrange).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("lindex", 3, READONLY, "list", lindex).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("lset", 4, WRITE | DENYOOM, "list", lset).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("lrem", 4, WRITE, "list", lrem).key_specs(&[KeySpec::index(1, RW | DELETE)]),
    CommandSpec::new("ltrim", 4, WRITE, "list", ltrim).key_specs(&[KeySpec::index(1, RW | DELETE)]),
    CommandSpec::new("linsert", 5, WRITE | DENYOOM, "list", linsert).key_specs(&[KeySpec::index(1, RW | INSERT)]),
    CommandSpec::new("lpos", -3, READONLY, "list", lpos).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("lmove", 5, WRITE | DENYOOM, "list", lmove)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE), KeySpec::index(2, RW | INSERT)]),
    CommandSpec::new("rpoplpush", 3, WRITE | DENYOOM, "list", rpoplpush)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE), KeySpec::index(2, RW | INSERT)]),
    CommandSpec::new("lmpop", -4, WRITE, "list", lmpop).key_finder(numkeys_at_1).key_specs(&[KeySpec::index(
        1,
        RW | ACCESS | DELETE,
    )
    .keynum(0, 1, 1)]),
    CommandSpec::new("blpop", -3, WRITE | NOSCRIPT | BLOCKING, "list", blpop).key_specs(&[KeySpec::index(
        1,
        RW | ACCESS | DELETE,
    )
    .range(-2, 1, 0)]),
    CommandSpec::new("brpop", -3, WRITE | NOSCRIPT | BLOCKING, "list", brpop).key_specs(&[KeySpec::index(
        1,
        RW | ACCESS | DELETE,
    )
    .range(-2, 1, 0)]),
    CommandSpec::new("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, "list", blmove)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE), KeySpec::index(2, RW | INSERT)]),
    CommandSpec::new("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, "list", brpoplpush)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE), KeySpec::index(2, RW | INSERT)]),
    // Unlike the older blocking pops, Redis 7.0 lets scripts call BLMPOP and BZMPOP (they
    // answer at once there).
    CommandSpec::new("blmpop", -5, WRITE | BLOCKING, "list", blmpop)
        .key_finder(numkeys_at_2)
        .key_specs(&[KeySpec::index(2, RW | ACCESS | DELETE).keynum(0, 1, 1)]),
];

use crate::list::List;

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Left,
    Right,
}

impl End {
    pub(crate) fn parse(arg: &[u8]) -> Result<End, Reply> {
        match arg {
            a if is(a, "left") => Ok(End::Left),
            a if is(a, "right") => Ok(End::Right),
            _ => Err(errors::syntax()),
        }
    }

    fn pop_name(self) -> &'static [u8] {
        if self == End::Left {
            b"LPOP"
        } else {
            b"RPOP"
        }
    }

    fn push_name(self) -> &'static [u8] {
        if self == End::Left {
            b"LPUSH"
        } else {
            b"RPUSH"
        }
    }
}

/// Keys of `CMD numkeys key... ` forms: positions 2..2+numkeys.
pub(crate) fn numkeys_at_1(args: &[Bytes]) -> Vec<usize> {
    let n = args.get(1).and_then(|n| crate::num::parse_i64(n)).unwrap_or(0);
    let n = usize::try_from(n).unwrap_or(0).min(args.len().saturating_sub(2));
    (2..2 + n).collect()
}

/// Keys of `CMD timeout numkeys key...` forms (BLMPOP, BZMPOP).
pub(crate) fn numkeys_at_2(args: &[Bytes]) -> Vec<usize> {
    numkeys_at_1(args.get(1..).unwrap_or_default()).into_iter().map(|i| i + 1).collect()
}

/// A blocking command's timeout (seconds, fractions allowed, 0 = forever) as a deadline.
///
/// As Redis's `getTimeoutFromObjectOrReply`: the text is read as a `long double` and the
/// milliseconds rounded up in its precision (so `-0.001` is 0, for ever, and `1e-400` is
/// one); past a C `long long`'s range (`inf`, or a huge number `strtold` accepts) they convert
/// to `LLONG_MIN` on x86-64, so Redis calls it negative. Redis 7.0 has no "out of range"
/// check: a deadline past the clock's range waits for good.
pub(crate) fn parse_timeout(ctx: &Ctx, arg: &[u8]) -> Result<Option<u64>, Reply> {
    let seconds = LongDouble::parse(arg).ok_or_else(|| err("ERR timeout is not a float or out of range"))?;
    let ms = LongDouble::ceil_millis(seconds);
    if ms < 0 {
        return Err(err("ERR timeout is negative"));
    }
    Ok((ms > 0).then(|| ctx.now.saturating_add(ms.unsigned_abs())))
}

/// A non-negative integer argument; Redis gives the same message for junk and for negatives.
pub(crate) fn non_negative(value: &[u8], message: &str) -> Result<usize, Reply> {
    crate::num::parse_i64(value).and_then(|n| usize::try_from(n).ok()).ok_or_else(|| err(message))
}

/// Parse `numkeys key...` starting at `args[at]`; Redis's errors.
pub(crate) fn parse_numkeys(args: &[Bytes], at: usize) -> Result<&[Bytes], Reply> {
    let n = non_negative(arg(args, at)?, "ERR numkeys should be greater than 0")?;
    if n == 0 {
        return Err(err("ERR numkeys should be greater than 0"));
    }
    args.get(at + 1..).and_then(|rest| rest.get(..n)).ok_or_else(errors::syntax)
}

fn read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut List>, Reply> {
    ctx.read_collection(key)
}

fn write<'c>(ctx: &'c mut Ctx, key: &[u8], create: bool) -> Result<Option<&'c mut List>, Reply> {
    ctx.write_collection(key, create)
}

/// The list at `key` for a command that changes it: looked up as Redis's `lookupKeyWrite`
/// does, so a missing key is no counted, announced miss (`read` is for reads).
fn existing<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut List>, Reply> {
    ctx.existing_collection(key)
}

fn push_generic(ctx: &mut Ctx, args: &[Bytes], end: End, only_existing: bool) -> CmdResult {
    let key = arg(args, 1)?;
    let Some(list) = write(ctx, key, !only_existing)? else { return Ok(Reply::Int(0)) };
    list.push_all(args.get(2..).unwrap_or_default(), end == End::Left);
    let len = list.len();
    ctx.propagate_args(args);
    Ok(Reply::Int(len as i64))
}

fn lpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push_generic(ctx, args, End::Left, false)
}

fn rpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push_generic(ctx, args, End::Right, false)
}

fn lpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push_generic(ctx, args, End::Left, true)
}

fn rpushx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    push_generic(ctx, args, End::Right, true)
}

/// Pop up to `count` elements from one end, logging the pop and deleting an emptied key.
pub(crate) fn pop_elements(ctx: &mut Ctx, key: &Bytes, end: End, count: usize) -> Result<Vec<Bytes>, Reply> {
    let Some(list) = write(ctx, key, false)? else { return Ok(Vec::new()) };
    let popped = list.pop(count, end == End::Left);
    if !popped.is_empty() {
        ctx.propagate(vec![Bytes::from_static(end.pop_name()), key.clone(), i64_bytes(popped.len() as i64)]);
    }
    ctx.drop_if_empty(key);
    Ok(popped)
}

fn pop_generic(ctx: &mut Ctx, args: &[Bytes], end: End) -> CmdResult {
    let key = arg(args, 1)?;
    let count = match args.get(2..).unwrap_or_default() {
        [] => None,
        [c] => {
            let n = crate::num::parse_i64(c).filter(|n| *n >= 0);
            Some(n.ok_or_else(|| err("ERR value is out of range, must be positive"))?)
        }
        _ => return Err(errors::wrong_arity(if end == End::Left { "lpop" } else { "rpop" })),
    };
    if existing(ctx, key)?.is_none() {
        return Ok(if count.is_some() { Reply::NilArray } else { Reply::Nil });
    }
    match count {
        None => Ok(pop_elements(ctx, key, end, 1)?.into_iter().next().map_or(Reply::Nil, Reply::Bulk)),
        Some(n) => Ok(Reply::bulks(pop_elements(ctx, key, end, usize::try_from(n).unwrap_or(usize::MAX))?)),
    }
}

fn lpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop_generic(ctx, args, End::Left)
}

fn rpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    pop_generic(ctx, args, End::Right)
}

fn llen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(read(ctx, arg(args, 1)?)?.map_or(0, |l| l.len() as i64)))
}

fn lrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (start, stop) = (int_arg(arg(args, 2)?)?, int_arg(arg(args, 3)?)?);
    let Some(list) = read(ctx, arg(args, 1)?)? else { return Ok(Reply::Array(Vec::new())) };
    Ok(match list_range(start, stop, list.len()) {
        Some((from, to)) => Reply::Array(list.range(from, to).map(bulk_copy).collect()),
        None => Reply::Array(Vec::new()),
    })
}

/// LRANGE/LTRIM index rules: negative from the end, clamped; `None` when empty.
fn list_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).ok()?;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop }.min(len - 1);
    if start > stop || start >= len {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}

/// A single index, negative from the end; `None` if out of range.
fn list_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if index < 0 { len + index } else { index };
    (0..len).contains(&i).then(|| usize::try_from(i).ok()).flatten()
}

fn lindex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Redis looks the key up (and checks its type) before it parses the index.
    let Some(list) = read(ctx, arg(args, 1)?)? else { return Ok(Reply::Nil) };
    let index = int_arg(arg(args, 2)?)?;
    Ok(list_index(index, list.len()).and_then(|i| list.get(i).map(bulk_copy)).unwrap_or(Reply::Nil))
}

fn lset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(list) = write(ctx, arg(args, 1)?, false)? else { return Err(err(errors::NO_SUCH_KEY)) };
    let index = int_arg(arg(args, 2)?)?;
    let element = arg(args, 3)?;
    if !list_index(index, list.len()).is_some_and(|i| list.set(i, element)) {
        return Err(err("ERR index out of range"));
    }
    ctx.propagate_args(args);
    Ok(Reply::Ok)
}

fn lrem(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, element) = (arg(args, 1)?, arg(args, 3)?);
    let count = int_arg(arg(args, 2)?)?;
    let Some(list) = write(ctx, key, false)? else { return Ok(Reply::Int(0)) };
    let limit = if count == 0 { usize::MAX } else { usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX) };
    let removed = list.remove_matching(element, limit, count < 0);
    if removed > 0 {
        ctx.propagate_args(args);
    }
    ctx.drop_if_empty(key);
    Ok(Reply::Int(removed as i64))
}

fn ltrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let (start, stop) = (int_arg(arg(args, 2)?)?, int_arg(arg(args, 3)?)?);
    let Some(list) = write(ctx, key, false)? else { return Ok(Reply::Ok) };
    match list_range(start, stop, list.len()) {
        Some((from, to)) => list.trim(from, to),
        None => list.clear(),
    }
    ctx.propagate_args(args);
    ctx.drop_if_empty(key);
    Ok(Reply::Ok)
}

fn linsert(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let after = match arg(args, 2)? {
        w if is(w, "after") => true,
        w if is(w, "before") => false,
        _ => return Err(errors::syntax()),
    };
    let (pivot, element) = (arg(args, 3)?, arg(args, 4)?);
    let Some(list) = write(ctx, arg(args, 1)?, false)? else { return Ok(Reply::Int(0)) };
    let Some(pos) = list.iter().position(|e| e == &pivot[..]) else { return Ok(Reply::Int(-1)) };
    list.insert(if after { pos + 1 } else { pos }, element);
    let len = list.len();
    ctx.propagate_args(args);
    Ok(Reply::Int(len as i64))
}

fn lpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let element = arg(args, 2)?;
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut i = 3;
    while let Some(option) = args.get(i) {
        let value = args.get(i + 1).ok_or_else(errors::syntax)?;
        if is(option, "rank") {
            rank = int_arg(value)?;
            if rank == 0 {
                return Err(err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
            }
            if rank == i64::MIN {
                return Err(err("ERR value is out of range"));
            }
        } else if is(option, "count") {
            count = Some(non_negative(value, "ERR COUNT can't be negative")?);
        } else if is(option, "maxlen") {
            maxlen = non_negative(value, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(errors::syntax());
        }
        i += 2;
    }
    let Some(list) = read(ctx, arg(args, 1)?)? else {
        return Ok(if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil });
    };
    let scan_limit = if maxlen == 0 { list.len() } else { maxlen };
    let hit = |(i, e): (usize, &[u8])| (e == &element[..]).then_some(i);
    let hits: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(list.iter().enumerate().take(scan_limit).filter_map(hit))
    } else {
        Box::new(list.iter().enumerate().rev().take(scan_limit).filter_map(hit))
    };
    let skip = usize::try_from(rank.unsigned_abs() - 1).unwrap_or(usize::MAX);
    let wanted = match count {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => 1,
    };
    let found: Vec<Reply> = hits.skip(skip).take(wanted).map(|i| Reply::Int(i as i64)).collect();
    Ok(match count {
        Some(_) => Reply::Array(found),
        None => found.into_iter().next().unwrap_or(Reply::Nil),
    })
}

/// Pop from `src` at `from`, push to `dst` at `to`, logged as two single-key effects.
pub(crate) fn move_element(ctx: &mut Ctx, src: &Bytes, dst: &Bytes, from: End, to: End) -> CmdResult {
    if existing(ctx, src)?.is_none() {
        return Ok(Reply::Nil);
    }
    // Redis checks the destination's type before touching the source.
    if ctx.peek(dst).is_some_and(|e| !matches!(e.value, Value::List(_))) {
        return Err(errors::wrong_type());
    }
    let Some(list) = write(ctx, src, false)? else { return Ok(Reply::Nil) };
    let Some(element) = list.pop(1, from == End::Left).pop() else { return Ok(Reply::Nil) };
    // Redis's order: the push (creating the destination: `new`, then `lpush`/`rpush`), then
    // the pop's event, then the source's deletion if it emptied. The source is not deleted
    // before the push, so moving the last element of a list onto itself keeps the key. The
    // effects replay in that order too (push, then pop one).
    if let Some(list) = write(ctx, dst, true)? {
        list.push(&element, to == End::Left);
    }
    ctx.propagate(vec![Bytes::from_static(to.push_name()), dst.clone(), element.clone()]);
    ctx.propagate(vec![Bytes::from_static(from.pop_name()), src.clone(), i64_bytes(1)]);
    ctx.drop_if_empty(src);
    Ok(Reply::Bulk(element))
}

fn lmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (from, to) = (End::parse(arg(args, 3)?)?, End::parse(arg(args, 4)?)?);
    move_element(ctx, arg(args, 1)?, arg(args, 2)?, from, to)
}

fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    move_element(ctx, arg(args, 1)?, arg(args, 2)?, End::Right, End::Left)
}

/// LMPOP's `LEFT|RIGHT [COUNT n]` after the keys.
pub(crate) fn parse_mpop_tail(tail: &[Bytes]) -> Result<(End, usize), Reply> {
    let end = End::parse(tail.first().ok_or_else(errors::syntax)?)?;
    let mut count = None;
    let mut i = 1;
    // Like Redis: COUNT's value is checked as soon as it is read, then anything else is a
    // syntax error.
    while let Some(option) = tail.get(i) {
        match tail.get(i + 1) {
            Some(value) if count.is_none() && is(option, "count") => {
                let n = non_negative(value, "ERR count should be greater than 0")?;
                if n == 0 {
                    return Err(err("ERR count should be greater than 0"));
                }
                count = Some(n);
                i += 2;
            }
            _ => return Err(errors::syntax()),
        }
    }
    Ok((end, count.unwrap_or(1)))
}

/// Whether the list at `key`, one a blocking command may wait on, has elements: a key of
/// another type is WRONGTYPE, or passed over once a change woke the command
/// ([`BlockRegistry::wrong_type_as_missing`](crate::blocking::BlockRegistry::wrong_type_as_missing)).
fn waited_has_elements(ctx: &mut Ctx, key: &[u8]) -> Result<bool, Reply> {
    Ok(ctx.engine.blocked.wrong_type_as_missing(ctx.client.id, existing(ctx, key))?.is_some())
}

/// The first non-empty list among `keys` (a woken blocking command's own order, see
/// [`BlockRegistry::serve_order`](crate::blocking::BlockRegistry::serve_order)): popped, as
/// `[key, [elements]]`.
pub(crate) fn mpop(ctx: &mut Ctx, keys: &[Bytes], end: End, count: usize) -> CmdResult {
    for key in ctx.engine.blocked.serve_order(ctx.client.id, ctx.client.db, keys) {
        if waited_has_elements(ctx, key)? {
            let popped = pop_elements(ctx, key, end, count)?;
            return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::bulks(popped)]));
        }
    }
    Ok(Reply::NilArray)
}

fn lmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = parse_numkeys(args, 1)?;
    let (end, count) = parse_mpop_tail(args.get(2 + keys.len()..).unwrap_or_default())?;
    mpop(ctx, keys, end, count)
}

fn bpop_generic(ctx: &mut Ctx, args: &[Bytes], end: End) -> CmdResult {
    let (timeout, keys) = args.get(1..).and_then(<[Bytes]>::split_last).ok_or_else(errors::syntax)?;
    let deadline = parse_timeout(ctx, timeout)?;
    for key in ctx.engine.blocked.serve_order(ctx.client.id, ctx.client.db, keys) {
        if waited_has_elements(ctx, key)? {
            let popped = pop_elements(ctx, key, end, 1)?;
            let element = popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk);
            return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), element]));
        }
    }
    ctx.block(keys, deadline);
    Ok(Reply::NilArray)
}

fn blpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bpop_generic(ctx, args, End::Left)
}

fn brpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bpop_generic(ctx, args, End::Right)
}

fn bmove_generic(ctx: &mut Ctx, src: &Bytes, dst: &Bytes, from: End, to: End, timeout: &[u8]) -> CmdResult {
    let deadline = parse_timeout(ctx, timeout)?;
    if waited_has_elements(ctx, src)? {
        return move_element(ctx, src, dst, from, to);
    }
    // Redis answers a null bulk at once inside MULTI, but a null array when a wait times
    // out (its timeout reply is the same for every blocked list command).
    Ok(if ctx.block_mover(src, dst, deadline) { Reply::NilArray } else { Reply::Nil })
}

fn blmove(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (from, to) = (End::parse(arg(args, 3)?)?, End::parse(arg(args, 4)?)?);
    bmove_generic(ctx, arg(args, 1)?, arg(args, 2)?, from, to, arg(args, 5)?)
}

fn brpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bmove_generic(ctx, arg(args, 1)?, arg(args, 2)?, End::Right, End::Left, arg(args, 3)?)
}

fn blmpop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Redis reads the timeout after numkeys, the keys, LEFT|RIGHT and COUNT.
    let keys = parse_numkeys(args, 2)?;
    let (end, count) = parse_mpop_tail(args.get(3 + keys.len()..).unwrap_or_default())?;
    let deadline = parse_timeout(ctx, arg(args, 1)?)?;
    let reply = mpop(ctx, keys, end, count)?;
    if reply == Reply::NilArray {
        ctx.block(keys, deadline);
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use bytes::Bytes;
    use staykv_resp::Reply;

    use crate::blocking::ClientWaker;
    use crate::client::Client;
    use crate::exec::{Engine, EngineOptions, NoJournal};

    const NOW: u64 = 1_700_000_000_000;

    fn run(engine: &Engine, client: &mut Client, line: &str) -> Reply {
        let args: Vec<Bytes> = line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        engine.execute(client, &args, NOW, &crate::host::NoHost, &NoJournal).reply
    }

    /// Timeouts as Redis 7.0 reads them: past the range of a C long long the conversion
    /// makes them negative.
    #[test]
    fn timeouts_are_refused_with_redis_messages() {
        let engine = Engine::new(EngineOptions::default());
        let mut c = Client::new(1, true);
        let error = |r: Reply| match r {
            Reply::Error(e) => e,
            other => format!("{other:?}"),
        };
        for (timeout, message) in [
            ("-1", "ERR timeout is negative"),
            ("1e400", "ERR timeout is negative"),
            ("inf", "ERR timeout is negative"),
            ("9223372036854775807", "ERR timeout is negative"),
            ("-0.0011", "ERR timeout is negative"),
            ("1e5000", "ERR timeout is not a float or out of range"),
            ("abc", "ERR timeout is not a float or out of range"),
        ] {
            assert_eq!(error(run(&engine, &mut c, &format!("BLPOP k {timeout}"))), message, "{timeout}");
        }
        // BLMPOP and BZMPOP read their timeout last.
        assert_eq!(error(run(&engine, &mut c, "BLMPOP abc 0 k LEFT")), "ERR numkeys should be greater than 0");
        assert_eq!(error(run(&engine, &mut c, "BLMPOP abc 1 k LEFT COUNT 0")), "ERR count should be greater than 0");
        assert_eq!(error(run(&engine, &mut c, "BZMPOP -1 1 k FOO")), "ERR syntax error");
    }

    /// A BLMOVE that waits answers a null array when it times out, as Redis does; inside
    /// MULTI it answers a null bulk at once.
    #[test]
    fn blmove_times_out_with_a_null_array() {
        let engine = Engine::new(EngineOptions::default());
        let mut c = Client::new(1, true);
        c.waker = Some(ClientWaker(Arc::new(|| {})));
        assert_eq!(run(&engine, &mut c, "BLMOVE a b LEFT LEFT 0.01"), Reply::NilArray);
        assert_eq!(run(&engine, &mut c, "BRPOPLPUSH a b 0.01"), Reply::NilArray);
        // BLMPOP (unlike BLPOP) runs in a script, answering at once.
        let script = ["EVAL", "return redis.pcall('BLMPOP', '0.01', '1', 'a', 'LEFT')", "0"];
        let args: Vec<Bytes> = script.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let reply = engine.execute(&mut c, &args, NOW, &crate::host::NoHost, &NoJournal).reply;
        assert_eq!(reply, Reply::Nil);
        let mut m = Client::new(2, true);
        run(&engine, &mut m, "MULTI");
        run(&engine, &mut m, "BLMOVE a b LEFT LEFT 0.01");
        assert_eq!(run(&engine, &mut m, "EXEC"), Reply::Array(vec![Reply::Nil]));
    }

    /// A push that wakes a BLPOP leaves the key to it: the pusher's pop is held, whatever its
    /// time, until the woken client has run, then finds the list empty; after
    /// [`crate::blocking::CLAIM_MS`] it is held no longer.
    #[test]
    fn a_woken_client_holds_its_key_until_it_has_run() {
        let engine = Engine::new(EngineOptions::default());
        let mut waiter = Client::new(1, true);
        waiter.waker = Some(ClientWaker(Arc::new(|| {})));
        let mut pusher = Client::new(2, true);
        let at = |line: &str, client: &mut Client, now: u64| {
            let args: Vec<Bytes> = line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
            engine.execute(client, &args, now, &crate::host::NoHost, &NoJournal)
        };
        assert!(at("BLPOP q 0", &mut waiter, NOW).blocked.is_some());
        assert_eq!(at("RPUSH q x y", &mut pusher, NOW).reply, Reply::Int(2));
        let held = at("RPOP q", &mut pusher, NOW);
        assert!(held.held_by_claim && !held.ran);
        assert!(at("LLEN q", &mut pusher, NOW + crate::blocking::CLAIM_MS - 1).held_by_claim);
        assert!(!at("GET other", &mut pusher, NOW).held_by_claim);
        // Inside MULTI the pop is only queued, so nothing holds it: EXEC is what waits.
        let mut queuing = Client::new(3, true);
        at("MULTI", &mut queuing, NOW);
        let rpop = [Bytes::from_static(b"RPOP"), Bytes::from_static(b"q")];
        assert!(!engine.held_by_claim(&queuing, &rpop, NOW));
        assert_eq!(at("RPOP q", &mut queuing, NOW).reply, Reply::Status("QUEUED"));
        assert!(engine.held_by_claim(&queuing, &[Bytes::from_static(b"EXEC")], NOW));
        assert!(at("EXEC", &mut queuing, NOW).held_by_claim);
        assert_eq!(at("DISCARD", &mut queuing, NOW).reply, Reply::Ok);
        let served = at("BLPOP q 0", &mut waiter, NOW);
        assert_eq!(served.reply, Reply::Array(vec![Reply::bulk(b"q"), Reply::bulk(b"x")]));
        engine.blocked.unregister(waiter.id, NOW);
        assert_eq!(at("RPOP q", &mut pusher, NOW).reply, Reply::bulk(b"y"));
        // A woken client that never runs holds the key for CLAIM_MS at most.
        assert!(at("BLPOP q 0", &mut waiter, NOW).blocked.is_some());
        at("RPUSH q z", &mut pusher, NOW);
        assert!(at("RPOP q", &mut pusher, NOW + crate::blocking::CLAIM_MS - 1).held_by_claim);
        assert_eq!(at("RPOP q", &mut pusher, NOW + crate::blocking::CLAIM_MS).reply, Reply::bulk(b"z"));
    }
}
