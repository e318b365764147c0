//! Bitmaps over strings (Redis's `bitops.c`): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP.

use bytes::{Bytes, BytesMut};
use staykv_resp::Reply;

use super::strings::MAX_STRING;
use super::{arg, int_arg, is};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::keyspace::NO_EXPIRY;
use crate::value::Value;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, WRITE | DENYOOM, "bitmap", setbit).keys(1, 1, 1),
    CommandSpec::new("getbit", 3, READONLY | FAST, "bitmap", getbit).keys(1, 1, 1),
    CommandSpec::new("bitcount", -2, READONLY, "bitmap", bitcount).keys(1, 1, 1),
    CommandSpec::new("bitpos", -3, READONLY, "bitmap", bitpos).keys(1, 1, 1),
    CommandSpec::new("bitop", -4, WRITE | DENYOOM, "bitmap", bitop).keys(2, -1, 1),
];

/// A bit offset: non-negative and inside a 512 MB string.
fn bit_offset(arg: &[u8]) -> Result<usize, Reply> {
    crate::num::parse_i64(arg)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n < MAX_STRING * 8)
        .ok_or_else(|| err("ERR bit offset is not an integer or out of range"))
}

fn bit_at(data: &[u8], bit: usize) -> u8 {
    data.get(bit / 8).map_or(0, |byte| (byte >> (7 - bit % 8)) & 1)
}

fn setbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let offset = bit_offset(arg(args, 2)?)?;
    let on = match &arg(args, 3)?[..] {
        b"1" => true,
        b"0" => false,
        _ => return Err(err("ERR bit is not an integer or out of range")),
    };
    let (current, expire_at) = match ctx.lookup(key) {
        None => (Bytes::new(), NO_EXPIRY),
        Some(entry) => match &entry.value {
            Value::Str(s) => (s.clone(), entry.expire_at),
            _ => return Err(errors::wrong_type()),
        },
    };
    let old = bit_at(&current, offset);
    let mut data = BytesMut::from(&current[..]);
    if data.len() <= offset / 8 {
        data.resize(offset / 8 + 1, 0);
    }
    if let Some(byte) = data.get_mut(offset / 8) {
        let mask = 1u8 << (7 - offset % 8);
        *byte = if on { *byte | mask } else { *byte & !mask };
    }
    ctx.store(key, Value::Str(data.freeze()), expire_at);
    ctx.propagate_args(args);
    Ok(Reply::Int(i64::from(old)))
}

fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(arg(args, 2)?)?;
    let value = ctx.get_string(arg(args, 1)?)?.unwrap_or_default();
    Ok(Reply::Int(i64::from(bit_at(&value, offset))))
}

/// `start end [BYTE|BIT]` resolved to an inclusive bit range over `len` bytes.
fn bit_range(start: i64, end: i64, bit_unit: bool, len: usize) -> Option<(usize, usize)> {
    let total = i64::try_from(if bit_unit { len * 8 } else { len }).ok()?;
    let start = if start < 0 { (total + start).max(0) } else { start };
    let end = if end < 0 { (total + end).max(0) } else { end }.min(total - 1);
    if start > end || total == 0 {
        return None;
    }
    let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
    Some(if bit_unit { (start, end) } else { (start * 8, end * 8 + 7) })
}

fn unit(arg: Option<&Bytes>) -> Result<bool, Reply> {
    match arg {
        None => Ok(false),
        Some(u) if is(u, "byte") => Ok(false),
        Some(u) if is(u, "bit") => Ok(true),
        Some(_) => Err(errors::syntax()),
    }
}

fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = match args.len() {
        2 => None,
        4 | 5 => Some((int_arg(arg(args, 2)?)?, int_arg(arg(args, 3)?)?, unit(args.get(4))?)),
        _ => return Err(errors::syntax()),
    };
    let value = ctx.get_string(arg(args, 1)?)?.unwrap_or_default();
    let count = match range {
        None => value.iter().map(|b| b.count_ones() as usize).sum(),
        Some((start, end, bits)) => match bit_range(start, end, bits, value.len()) {
            Some((from, to)) => (from..=to).filter(|&bit| bit_at(&value, bit) == 1).count(),
            None => 0,
        },
    };
    Ok(Reply::Int(count as i64))
}

fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let wanted = match &arg(args, 2)?[..] {
        b"1" => 1u8,
        b"0" => 0u8,
        _ => return Err(err("ERR The bit argument must be 1 or 0.")),
    };
    let start = args.get(3).map(|a| int_arg(a)).transpose()?;
    let end = args.get(4).map(|a| int_arg(a)).transpose()?;
    let bits = unit(args.get(5))?;
    if args.len() > 6 {
        return Err(errors::syntax());
    }
    let Some(value) = ctx.get_string(arg(args, 1)?)? else {
        return Ok(Reply::Int(if wanted == 1 { -1 } else { 0 }));
    };
    let Some((from, to)) = bit_range(start.unwrap_or(0), end.unwrap_or(-1), bits, value.len()) else {
        return Ok(Reply::Int(-1));
    };
    if let Some(pos) = (from..=to).find(|&bit| bit_at(&value, bit) == wanted) {
        return Ok(Reply::Int(pos as i64));
    }
    // Looking for a clear bit with no explicit end: the string is padded with zeros on the
    // right, so the answer is the first bit after it.
    Ok(Reply::Int(if wanted == 0 && end.is_none() { (value.len() * 8) as i64 } else { -1 }))
}

fn bitop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let op = arg(args, 1)?.to_ascii_lowercase();
    let dst = arg(args, 2)?;
    let sources = args.get(3..).unwrap_or_default();
    if !matches!(&op[..], b"and" | b"or" | b"xor" | b"not") {
        return Err(errors::syntax());
    }
    if op == b"not" && sources.len() != 1 {
        return Err(err("ERR BITOP NOT must be called with a single source key."));
    }
    let mut inputs = Vec::with_capacity(sources.len());
    for key in sources {
        inputs.push(ctx.get_string(key)?.unwrap_or_default());
    }
    let len = inputs.iter().map(Bytes::len).max().unwrap_or(0);
    let byte_at = |input: &Bytes, i: usize| input.get(i).copied().unwrap_or(0);
    let result: Vec<u8> = (0..len)
        .map(|i| {
            let mut bytes = inputs.iter().map(|input| byte_at(input, i));
            let first = bytes.next().unwrap_or(0);
            match &op[..] {
                b"and" => bytes.fold(first, |acc, b| acc & b),
                b"or" => bytes.fold(first, |acc, b| acc | b),
                b"xor" => bytes.fold(first, |acc, b| acc ^ b),
                _ => !first,
            }
        })
        .collect();
    let existed = ctx.lookup(dst).is_some();
    if result.is_empty() {
        if existed {
            ctx.remove(dst);
            ctx.propagate(vec![Bytes::from_static(b"DEL"), dst.clone()]);
        }
        return Ok(Reply::Int(0));
    }
    let value = Bytes::from(result);
    ctx.store(dst, Value::Str(value.clone()), NO_EXPIRY);
    ctx.propagate(vec![Bytes::from_static(b"SET"), dst.clone(), value]);
    Ok(Reply::Int(len as i64))
}
