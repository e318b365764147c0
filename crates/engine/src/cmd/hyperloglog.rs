//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE (Redis's `hyperloglog.c`; the format lives
//! in [`crate::hll`]).

use bytes::Bytes;
use staykv_resp::Reply;

use super::arg;
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::hll;
use crate::key_spec::{key::*, KeySpec};
use crate::keyspace::{Entry, NO_EXPIRY};
use crate::small_bytes::SmallBytes;
use crate::value::{Encoding, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("pfadd", -2, WRITE | DENYOOM | FAST, "hyperloglog", pfadd)
        .key_specs(&[KeySpec::index(1, RW | INSERT)]),
    CommandSpec::new("pfcount", -2, READONLY | MAY_REPLICATE, "hyperloglog", pfcount).key_specs(&[KeySpec::index(
        1,
        RW | ACCESS,
    )
    .range(-1, 1, 0)
    .note("RW because it may change the internal representation of the key, and propagate to replicas")]),
    CommandSpec::new("pfmerge", -2, WRITE | DENYOOM, "hyperloglog", pfmerge)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | INSERT), KeySpec::index(2, RO | ACCESS).range(-1, 1, 0)]),
];

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// The HLL bytes at `key` and its deadline, `None` if missing; errors for other values.
fn load(ctx: &mut Ctx, key: &[u8]) -> Result<Option<(Vec<u8>, u64)>, Reply> {
    parse(ctx.lookup(key))
}

/// [`load`] for the keys Redis reads (PFCOUNT, PFMERGE's sources): a miss is counted and
/// announced (`keymiss`).
fn load_read(ctx: &mut Ctx, key: &[u8]) -> Result<Option<(Vec<u8>, u64)>, Reply> {
    parse(ctx.lookup_read(key))
}

fn parse(entry: Option<&mut Entry>) -> Result<Option<(Vec<u8>, u64)>, Reply> {
    let Some(entry) = entry else { return Ok(None) };
    match &entry.value {
        Value::Str(s) if hll::is_valid(s) => Ok(Some((s.to_vec(), entry.expire_at))),
        Value::Str(_) => Err(err(NOT_HLL)),
        _ => Err(errors::wrong_type()),
    }
}

fn pfadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let (mut data, expire_at, created) = match load(ctx, key)? {
        Some((data, at)) => (data, at, false),
        None => (hll::new_hll(), NO_EXPIRY, true),
    };
    let mut changed = created;
    for element in args.iter().skip(2) {
        match hll::add(&mut data, element) {
            Some(c) => changed |= c,
            None => {
                // Redis edits the HLL in place: the elements before the corrupt spot stay
                // added although the reply is an error (the cache invalidated only if a
                // sparse register changed in place).
                if changed {
                    let value = Bytes::from(data);
                    ctx.store(key, Value::Str(SmallBytes::from_owned(value.clone())), expire_at);
                    ctx.set_encoding(key, Encoding::Raw);
                    // Logged as the bytes it leaves: the PFADD replayed would fail again, and
                    // recovery stops at a batch that fails. Announced as nothing, as Redis
                    // counts a PFADD that answers an error as no change.
                    ctx.explicit_events();
                    ctx.propagate_string(key, value);
                }
                return Err(err(CORRUPT));
            }
        }
    }
    if changed {
        // A created key counts as an update even with no element: its cache is invalid.
        hll::invalidate_cache(&mut data);
        ctx.store(key, Value::Str(SmallBytes::from_owned(Bytes::from(data))), expire_at);
        ctx.set_encoding(key, Encoding::Raw);
        ctx.propagate_args(args);
    }
    Ok(Reply::Int(i64::from(changed)))
}

fn pfcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = args.get(1..).unwrap_or_default();
    if let [key] = keys {
        let Some((mut data, expire_at)) = load_read(ctx, key)? else { return Ok(Reply::Int(0)) };
        let (count, refreshed) = hll::count_cached(&mut data).ok_or_else(|| err(CORRUPT))?;
        if refreshed {
            // Redis writes the cached cardinality back into the string; so does StayKV, and
            // logs the PFCOUNT so a replayed HLL holds the same bytes.
            ctx.store(key, Value::Str(SmallBytes::from_owned(Bytes::from(data))), expire_at);
            ctx.set_encoding(key, Encoding::Raw);
            ctx.propagate_args(args);
        }
        return Ok(Reply::Int(count as i64));
    }
    let mut max = vec![0u8; hll::REGISTERS];
    for key in keys {
        if let Some((data, _)) = load_read(ctx, key)? {
            let regs = hll::registers(&data).ok_or_else(|| err(CORRUPT))?;
            max.iter_mut().zip(regs).for_each(|(m, r)| *m = (*m).max(r));
        }
    }
    Ok(Reply::Int(hll::estimate(&max) as i64))
}

fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let dst = arg(args, 1)?;
    let mut max = vec![0u8; hll::REGISTERS];
    let mut any_dense = false;
    for key in args.iter().skip(1) {
        if let Some((data, _)) = load_read(ctx, key)? {
            any_dense |= hll::is_dense(&data);
            let regs = hll::registers(&data).ok_or_else(|| err(CORRUPT))?;
            max.iter_mut().zip(regs).for_each(|(m, r)| *m = (*m).max(r));
        }
    }
    let (mut target, expire_at) = load(ctx, dst)?.unwrap_or_else(|| (hll::new_hll(), NO_EXPIRY));
    hll::merge_into(&mut target, &max, any_dense).ok_or_else(|| err(CORRUPT))?;
    let value = Bytes::from(target);
    ctx.store(dst, Value::Str(SmallBytes::from_owned(value.clone())), expire_at);
    ctx.set_encoding(dst, Encoding::Raw);
    // The merged bytes, not the sources, are logged: the effect names one key. Redis
    // announces the merge as `pfadd`.
    ctx.explicit_events();
    ctx.propagate_string(dst, value);
    ctx.notify(crate::notify::STRING, "pfadd", dst);
    Ok(Reply::Ok)
}
