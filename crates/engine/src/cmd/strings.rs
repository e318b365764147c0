//! Strings: GET, SET and friends, counters, ranges, LCS (Redis's `t_string.c`).

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, int_arg, is};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::key_spec::{key::*, FoundKey, KeySpec};
use crate::keyspace::NO_EXPIRY;
use crate::long_double::LongDouble;
use crate::num::{i64_bytes, parse_i64};
use crate::small_bytes::SmallBytes;
use crate::value::{Encoding, Value};

const TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, "string", get).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("set", -3, WRITE | DENYOOM, "string", set).flagged_keys(set_key).key_specs(&[KeySpec::index(
        1,
        RW | ACCESS | UPDATE | VARIABLE_FLAGS,
    )
    .note("RW and ACCESS due to the optional `GET` argument")]),
    CommandSpec::new("setex", 4, WRITE | DENYOOM, "string", setex).key_specs(&[KeySpec::index(1, OW | UPDATE)]),
    CommandSpec::new("psetex", 4, WRITE | DENYOOM, "string", psetex).key_specs(&[KeySpec::index(1, OW | UPDATE)]),
    CommandSpec::new("setnx", 3, WRITE | DENYOOM | FAST, "string", setnx).key_specs(&[KeySpec::index(1, OW | INSERT)]),
    CommandSpec::new("getex", -2, WRITE | FAST, "string", getex)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE).note("RW and UPDATE because it changes the TTL")]),
    CommandSpec::new("getdel", 2, WRITE | FAST, "string", getdel).key_specs(&[KeySpec::index(1, RW | ACCESS | DELETE)]),
    CommandSpec::new("getset", 3, WRITE | DENYOOM | FAST, "string", getset)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("mget", -2, READONLY | FAST, "string", mget)
        .key_specs(&[KeySpec::index(1, RO | ACCESS).range(-1, 1, 0)])
        .tips(&["request_policy:multi_shard"]),
    CommandSpec::new("mset", -3, WRITE | DENYOOM, "string", mset)
        .key_specs(&[KeySpec::index(1, OW | UPDATE).range(-1, 2, 0)])
        .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"]),
    CommandSpec::new("msetnx", -3, WRITE | DENYOOM, "string", msetnx)
        .key_specs(&[KeySpec::index(1, OW | INSERT).range(-1, 2, 0)])
        .tips(&["request_policy:multi_shard", "response_policy:agg_min"]),
    CommandSpec::new("append", 3, WRITE | DENYOOM | FAST, "string", append)
        .key_specs(&[KeySpec::index(1, RW | INSERT)]),
    CommandSpec::new("strlen", 2, READONLY | FAST, "string", strlen).key_specs(&[KeySpec::index(1, RO)]),
    CommandSpec::new("incr", 2, WRITE | DENYOOM | FAST, "string", incr)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("decr", 2, WRITE | DENYOOM | FAST, "string", decr)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("incrby", 3, WRITE | DENYOOM | FAST, "string", incrby)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("decrby", 3, WRITE | DENYOOM | FAST, "string", decrby)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("incrbyfloat", 3, WRITE | DENYOOM | FAST, "string", incrbyfloat)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("getrange", 4, READONLY, "string", getrange).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("substr", 4, READONLY, "string", getrange).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("setrange", 4, WRITE | DENYOOM, "string", setrange).key_specs(&[KeySpec::index(1, RW | UPDATE)]),
    CommandSpec::new("lcs", -3, READONLY, "string", lcs).key_specs(&[KeySpec::index(1, RO | ACCESS).range(1, 1, 0)]),
];

impl Ctx<'_> {
    /// The string at `key` (a hit/miss is counted), or WRONGTYPE.
    pub fn get_string(&mut self, key: &[u8]) -> Result<Option<Bytes>, Reply> {
        match self.lookup_read(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.to_bytes())),
            Some(_) => Err(errors::wrong_type()),
        }
    }

    /// What `read` makes of the string at `key`, with its deadline, for a command that
    /// changes it: the string is only borrowed, so that [`Ctx::edit_string`] can then change
    /// it in place.
    pub(crate) fn string_for_update<R>(
        &mut self,
        key: &[u8],
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<(R, u64)>, Reply> {
        match self.lookup(key) {
            None => Ok(None),
            Some(entry) => match &entry.value {
                Value::Str(s) => Ok(Some((read(s.as_slice()), entry.expire_at))),
                _ => Err(errors::wrong_type()),
            },
        }
    }

    /// Replace a string value, keeping the key's deadline.
    fn overwrite_string(&mut self, key: &[u8], value: Bytes, expire_at: u64) {
        self.store(key, Value::Str(SmallBytes::from_owned(value)), expire_at);
    }
}

fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(ctx.get_string(arg(args, 1)?)?.map_or(Reply::Nil, Reply::Bulk))
}

/// The expiry options shared by SET and GETEX.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expiry {
    None,
    KeepTtl,
    Persist,
    /// Absolute deadline in ms.
    At(u64),
}

/// Parse EX/PX/EXAT/PXAT's number into an absolute deadline, as Redis checks it: an integer,
/// positive, and no overflow when scaled and added to now.
fn deadline(ctx: &Ctx, value: &[u8], unit_ms: i64, absolute: bool, command: &str) -> Result<u64, Reply> {
    let n = int_arg(value)?;
    if n <= 0 {
        return Err(errors::invalid_expire(command));
    }
    let ms = n.checked_mul(unit_ms).ok_or_else(|| errors::invalid_expire(command))?;
    let base = if absolute { 0 } else { i64::try_from(ctx.now).unwrap_or(i64::MAX) };
    let at = ms.checked_add(base).ok_or_else(|| errors::invalid_expire(command))?;
    u64::try_from(at).map_err(|_| errors::invalid_expire(command))
}

struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    expiry: Expiry,
}

/// What Redis's `parseExtendedStringArgumentsOrReply` collects for SET (`set == true`) and
/// GETEX: flags, and the expiry argument still unparsed (Redis validates the number later,
/// GETEX only after the key lookup and type check).
#[derive(Default)]
struct ExtendedArgs<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// The last EX/PX/EXAT/PXAT given: its argument, unit in ms, whether absolute. Repeating
    /// the same option is allowed (the last one wins); mixing two of them is a syntax error.
    expire: Option<(&'a Bytes, i64, bool)>,
}

fn parse_extended(args: &[Bytes], start: usize, set: bool) -> Result<ExtendedArgs<'_>, Reply> {
    let mut o = ExtendedArgs::default();
    let mut kind: Option<(i64, bool)> = None;
    let mut j = start;
    while let Some(opt) = args.get(j) {
        let next = args.get(j + 1);
        let unit = match opt {
            o if is(o, "ex") => Some((1000, false)),
            o if is(o, "px") => Some((1, false)),
            o if is(o, "exat") => Some((1000, true)),
            o if is(o, "pxat") => Some((1, true)),
            _ => None,
        };
        if set && is(opt, "nx") && !o.xx {
            o.nx = true;
        } else if set && is(opt, "xx") && !o.nx {
            o.xx = true;
        } else if set && is(opt, "get") {
            o.get = true;
        } else if set && is(opt, "keepttl") && !o.persist && kind.is_none() {
            o.keepttl = true;
        } else if !set && is(opt, "persist") && kind.is_none() && !o.keepttl {
            o.persist = true;
        } else if let (Some(u), Some(value)) = (unit, next) {
            if o.keepttl || o.persist || kind.is_some_and(|k| k != u) {
                return Err(errors::syntax());
            }
            kind = Some(u);
            o.expire = Some((value, u.0, u.1));
            j += 1;
        } else {
            return Err(errors::syntax());
        }
        j += 1;
    }
    Ok(o)
}

/// SET's key: read as well as written with GET (found anywhere among the options, as Redis's
/// `setGetKeys` looks), else overwritten.
fn set_key(args: &[Bytes]) -> Vec<FoundKey> {
    let reads = args.iter().skip(3).any(|option| is(option, "get"));
    vec![FoundKey { position: 1, flags: if reads { RW | ACCESS | UPDATE } else { OW | UPDATE } }]
}

fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let ext = parse_extended(args, 3, true)?;
    let expiry = match ext.expire {
        Some((value, unit_ms, absolute)) => Expiry::At(deadline(ctx, value, unit_ms, absolute, "set")?),
        None if ext.keepttl => Expiry::KeepTtl,
        None => Expiry::None,
    };
    let options = SetOptions { nx: ext.nx, xx: ext.xx, get: ext.get, expiry };
    set_generic(ctx, arg(args, 1)?, arg(args, 2)?, options)
}

fn set_generic(ctx: &mut Ctx, key: &Bytes, value: &Bytes, o: SetOptions) -> CmdResult {
    // GET reads the old value as GET does (a miss is counted and announced).
    let old = match o.get {
        true => ctx.get_string(key)?,
        false => None,
    };
    // A plain SET needs nothing from the old entry: skip the lookup (store expires a key
    // past its deadline itself).
    let needs_old = o.nx || o.xx || matches!(o.expiry, Expiry::KeepTtl);
    let existing = if needs_old { ctx.lookup(key).map(|e| e.expire_at) } else { None };
    if (o.nx && existing.is_some()) || (o.xx && existing.is_none()) {
        return Ok(if o.get { old.map_or(Reply::Nil, Reply::Bulk) } else { Reply::Nil });
    }
    let expire_at = match o.expiry {
        Expiry::At(at) => at,
        Expiry::KeepTtl => existing.unwrap_or(NO_EXPIRY),
        Expiry::None | Expiry::Persist => NO_EXPIRY,
    };
    ctx.store_string(key, value, expire_at);
    let mut effect = vec![Bytes::from_static(b"SET"), key.clone(), value.clone()];
    if expire_at != NO_EXPIRY {
        effect.extend([Bytes::from_static(b"PXAT"), i64_bytes(expire_at as i64)]);
    }
    // Redis announces `set`, and `expire` only for an expiry given (KEEPTTL keeps one
    // silently, though it is logged with its deadline).
    ctx.explicit_events();
    ctx.propagate(effect);
    ctx.notify(crate::notify::STRING, "set", key);
    if matches!(o.expiry, Expiry::At(_)) {
        ctx.notify(crate::notify::GENERIC, "expire", key);
    }
    Ok(if o.get { old.map_or(Reply::Nil, Reply::Bulk) } else { Reply::Ok })
}

fn setex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, 1000, "setex")
}

fn psetex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, 1, "psetex")
}

fn setex_generic(ctx: &mut Ctx, args: &[Bytes], unit_ms: i64, command: &str) -> CmdResult {
    let at = deadline(ctx, arg(args, 2)?, unit_ms, false, command)?;
    let options = SetOptions { nx: false, xx: false, get: false, expiry: Expiry::At(at) };
    set_generic(ctx, arg(args, 1)?, arg(args, 3)?, options)
}

fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let options = SetOptions { nx: true, xx: false, get: false, expiry: Expiry::None };
    let reply = set_generic(ctx, arg(args, 1)?, arg(args, 2)?, options)?;
    Ok(Reply::Int(i64::from(reply == Reply::Ok)))
}

fn getex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    // Redis's order: options, then the key (missing: nil) and its type, then the number.
    let ext = parse_extended(args, 2, false)?;
    let Some(value) = ctx.get_string(key)? else {
        return Ok(Reply::Nil);
    };
    let expiry = match ext.expire {
        Some((v, unit_ms, absolute)) => Expiry::At(deadline(ctx, v, unit_ms, absolute, "getex")?),
        None if ext.persist => Expiry::Persist,
        None => Expiry::None,
    };
    match expiry {
        Expiry::At(at) if at <= ctx.now => {
            ctx.delete_expired(key);
            ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        }
        Expiry::At(at) => {
            ctx.set_expiry(key, at);
            ctx.propagate(vec![Bytes::from_static(b"PEXPIREAT"), key.clone(), i64_bytes(at as i64)]);
        }
        Expiry::Persist => {
            if ctx.lookup(key).is_some_and(|e| e.expire_at != NO_EXPIRY) {
                ctx.set_expiry(key, NO_EXPIRY);
                ctx.propagate(vec![Bytes::from_static(b"PERSIST"), key.clone()]);
            }
        }
        Expiry::None | Expiry::KeepTtl => {}
    }
    Ok(Reply::Bulk(value))
}

fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let Some(value) = ctx.get_string(key)? else {
        return Ok(Reply::Nil);
    };
    ctx.remove(key);
    ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
    Ok(Reply::Bulk(value))
}

fn getset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let options = SetOptions { nx: false, xx: false, get: true, expiry: Expiry::None };
    set_generic(ctx, arg(args, 1)?, arg(args, 2)?, options)
}

fn mget(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let values = args
        .iter()
        .skip(1)
        .map(|key| match ctx.lookup_read(key).map(|e| &e.value) {
            Some(Value::Str(s)) => Reply::Bulk(s.to_bytes()),
            _ => Reply::Nil,
        })
        .collect();
    Ok(Reply::Array(values))
}

fn mset_pairs(args: &[Bytes], name: &str) -> Result<Vec<(Bytes, Bytes)>, Reply> {
    let rest = args.get(1..).unwrap_or_default();
    if rest.len() % 2 != 0 {
        return Err(errors::wrong_arity(name));
    }
    Ok(rest.chunks_exact(2).filter_map(|p| Some((p.first()?.clone(), p.get(1)?.clone()))).collect())
}

fn store_pairs(ctx: &mut Ctx, pairs: Vec<(Bytes, Bytes)>) {
    for (key, value) in pairs {
        ctx.store_string(&key, &value, NO_EXPIRY);
        ctx.propagate(vec![Bytes::from_static(b"SET"), key, value]);
    }
}

fn mset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pairs = mset_pairs(args, "mset")?;
    store_pairs(ctx, pairs);
    Ok(Reply::Ok)
}

fn msetnx(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pairs = mset_pairs(args, "msetnx")?;
    if pairs.iter().any(|(key, _)| ctx.lookup(key).is_some()) {
        return Ok(Reply::Int(0));
    }
    store_pairs(ctx, pairs);
    Ok(Reply::Int(1))
}

fn append(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, suffix) = (arg(args, 1)?, arg(args, 2)?);
    let existing = ctx.string_for_update(key, <[u8]>::len)?;
    let existed = existing.is_some();
    let (current_len, expire_at) = existing.unwrap_or((0, NO_EXPIRY));
    let len = current_len + suffix.len();
    if len > ctx.host.proto_max_bulk_len() {
        return Err(err(TOO_BIG));
    }
    ctx.edit_string(key, expire_at, |buf| buf.extend_from_slice(suffix));
    // Appending to an existing string edits it in place (raw); to a missing key, Redis
    // stores the argument as a new object.
    if existed {
        ctx.set_encoding(key, Encoding::Raw);
    }
    ctx.propagate_args(args);
    Ok(Reply::Int(len as i64))
}

fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.get_string(arg(args, 1)?)?.map_or(0, |s| s.len() as i64)))
}

fn incr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_generic(ctx, args, 1)
}

fn decr(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    incr_generic(ctx, args, -1)
}

fn incrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let by = int_arg(arg(args, 2)?)?;
    incr_generic(ctx, args, by)
}

fn decrby(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let by = int_arg(arg(args, 2)?)?;
    let by = by.checked_neg().ok_or_else(|| err("ERR decrement would overflow"))?;
    incr_generic(ctx, args, by)
}

fn incr_generic(ctx: &mut Ctx, args: &[Bytes], by: i64) -> CmdResult {
    let key = arg(args, 1)?;
    let (current, expire_at) = ctx.string_for_update(key, parse_i64)?.unwrap_or((Some(0), NO_EXPIRY));
    let current = current.ok_or_else(errors::not_integer)?;
    let next = current.checked_add(by).ok_or_else(|| err(errors::OVERFLOW))?;
    ctx.overwrite_string(key, i64_bytes(next), expire_at);
    ctx.propagate_args(args);
    Ok(Reply::Int(next))
}

fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let (current, expire_at) =
        ctx.string_for_update(key, LongDouble::parse)?.unwrap_or_else(|| (LongDouble::parse(b"0"), NO_EXPIRY));
    let current = current.ok_or_else(errors::not_float)?;
    let by = LongDouble::parse(arg(args, 2)?).ok_or_else(errors::not_float)?;
    let next = current.and_then(|c| c.checked_add(by?)).map_err(|_| err(errors::NAN_OR_INFINITY))?;
    let text = Bytes::from(next.format_human());
    ctx.overwrite_string(key, text.clone(), expire_at);
    ctx.set_encoding(key, Encoding::Embstr);
    // The float result, not the increment, is logged: replay must not redo the arithmetic.
    // Logged as SET, announced as `incrbyfloat` as Redis does.
    ctx.explicit_events();
    ctx.propagate_string(key, text.clone());
    ctx.notify(crate::notify::STRING, "incrbyfloat", key);
    Ok(Reply::Bulk(text))
}

/// Clamp Redis-style (negative = from the end) inclusive indexes to `0..len`; `None` if empty.
pub(crate) fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).ok()?;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end }.min(len - 1);
    if start > end || len == 0 {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(end).ok()?))
}

fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = int_arg(arg(args, 2)?)?;
    let end = int_arg(arg(args, 3)?)?;
    let value = ctx.get_string(arg(args, 1)?)?.unwrap_or_default();
    Ok(Reply::Bulk(match clamp_range(start, end, value.len()) {
        Some((from, to)) => value.slice(from..=to),
        None => Bytes::new(),
    }))
}

fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (key, patch) = (arg(args, 1)?, arg(args, 3)?);
    let offset = int_arg(arg(args, 2)?)?;
    let offset = usize::try_from(offset).map_err(|_| err("ERR offset is out of range"))?;
    let existing = ctx.string_for_update(key, <[u8]>::len)?;
    if patch.is_empty() {
        return Ok(Reply::Int(existing.map_or(0, |(len, _)| len as i64)));
    }
    let end = offset.saturating_add(patch.len());
    if end > ctx.host.proto_max_bulk_len() {
        return Err(err(TOO_BIG));
    }
    let (current_len, expire_at) = existing.unwrap_or((0, NO_EXPIRY));
    ctx.edit_string(key, expire_at, |buf| {
        if buf.len() < end {
            buf.resize(end, 0);
        }
        if let Some(target) = buf.get_mut(offset..end) {
            target.copy_from_slice(patch);
        }
    });
    let len = current_len.max(end);
    ctx.set_encoding(key, Encoding::Raw);
    ctx.propagate_args(args);
    Ok(Reply::Int(len as i64))
}

fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Redis reads both keys (each a counted, announced hit or miss) before it checks their
    // types, and both before it looks at the options, so its errors come in this order.
    let mut strings = [Some(Bytes::new()), Some(Bytes::new())];
    for (slot, key) in strings.iter_mut().zip(args.iter().skip(1)) {
        *slot = match ctx.lookup_read(key).map(|e| &e.value) {
            None => Some(Bytes::new()),
            Some(Value::Str(s)) => Some(s.to_bytes()),
            Some(_) => None,
        };
    }
    let [Some(a), Some(b)] = strings else {
        return Err(err("ERR The specified keys must contain string values"));
    };
    let strings = [a, b];
    let (mut want_len, mut want_idx, mut with_match_len, mut min_len) = (false, false, false, 0usize);
    let mut i = 3;
    while let Some(option) = args.get(i) {
        if is(option, "len") {
            want_len = true;
        } else if is(option, "idx") {
            want_idx = true;
        } else if is(option, "withmatchlen") {
            with_match_len = true;
        } else if is(option, "minmatchlen") && i + 1 < args.len() {
            let n = int_arg(arg(args, i + 1)?)?;
            min_len = usize::try_from(n).unwrap_or(0);
            i += 1;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    if want_len && want_idx {
        return Err(err("ERR If you want both the length and indexes, please just use IDX."));
    }
    let [a, b] = strings;
    let limit = u64::try_from(ctx.host.proto_max_bulk_len()).unwrap_or(u64::MAX);
    if (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1) > limit / 4 {
        return Err(err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    let table = LcsTable::new(&a, &b);
    if want_len {
        return Ok(Reply::Int(table.len() as i64));
    }
    if !want_idx {
        return Ok(Reply::Bulk(Bytes::from(table.sequence(&a, &b))));
    }
    let matches = table
        .matches(&a, &b)
        .into_iter()
        .filter(|m| m.len >= min_len)
        .map(|m| {
            let range = |s: usize| Reply::Array(vec![Reply::Int(s as i64), Reply::Int((s + m.len - 1) as i64)]);
            let mut item = vec![range(m.a_start), range(m.b_start)];
            if with_match_len {
                item.push(Reply::Int(m.len as i64));
            }
            Reply::Array(item)
        })
        .collect();
    Ok(Reply::Map(vec![
        (Reply::bulk_str("matches"), Reply::Array(matches)),
        (Reply::bulk_str("len"), Reply::Int(table.len() as i64)),
    ]))
}

/// The dynamic-programming table of the longest common subsequence.
struct LcsTable {
    cols: usize,
    cells: Vec<u32>,
}

struct LcsMatch {
    a_start: usize,
    b_start: usize,
    len: usize,
}

impl LcsTable {
    fn new(a: &[u8], b: &[u8]) -> LcsTable {
        let cols = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * cols];
        for (i, ca) in a.iter().enumerate() {
            for (j, cb) in b.iter().enumerate() {
                let value = if ca == cb {
                    cells.get(i * cols + j).map_or(0, |v| v + 1)
                } else {
                    let up = cells.get(i * cols + j + 1).copied().unwrap_or(0);
                    let left = cells.get((i + 1) * cols + j).copied().unwrap_or(0);
                    up.max(left)
                };
                if let Some(cell) = cells.get_mut((i + 1) * cols + j + 1) {
                    *cell = value;
                }
            }
        }
        LcsTable { cols, cells }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells.get(i * self.cols + j).copied().unwrap_or(0)
    }

    fn len(&self) -> usize {
        self.cells.last().copied().unwrap_or(0) as usize
    }

    /// Walk back from the end as Redis does, yielding the common bytes (reversed order fixed
    /// up at the end) and the matching ranges, last match first.
    fn walk(&self, a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<LcsMatch>) {
        let (mut i, mut j) = (a.len(), b.len());
        let mut seq = Vec::with_capacity(self.len());
        let mut matches = Vec::new();
        let mut current: Option<LcsMatch> = None;
        while i > 0 && j > 0 {
            if a.get(i - 1) == b.get(j - 1) {
                seq.push(a.get(i - 1).copied().unwrap_or(0));
                match current.as_mut() {
                    Some(m) if m.a_start == i && m.b_start == j => {
                        m.a_start -= 1;
                        m.b_start -= 1;
                        m.len += 1;
                    }
                    _ => {
                        matches.extend(current.take());
                        current = Some(LcsMatch { a_start: i - 1, b_start: j - 1, len: 1 });
                    }
                }
                i -= 1;
                j -= 1;
            } else if self.at(i - 1, j) > self.at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
        }
        matches.extend(current);
        seq.reverse();
        (seq, matches)
    }

    fn sequence(&self, a: &[u8], b: &[u8]) -> Vec<u8> {
        self.walk(a, b).0
    }

    fn matches(&self, a: &[u8], b: &[u8]) -> Vec<LcsMatch> {
        self.walk(a, b).1
    }
}
