//! Bitmaps over strings (Redis's `bitops.c`): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD and BITFIELD_RO.

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, int_arg, is};
use crate::command::{flags::*, CmdResult, CommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::key_spec::{key::*, FoundKey, KeySpec};
use crate::keyspace::NO_EXPIRY;
use crate::small_bytes::SmallBytes;
use crate::value::{Encoding, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, WRITE | DENYOOM, "bitmap", setbit)
        .key_specs(&[KeySpec::index(1, RW | ACCESS | UPDATE)]),
    CommandSpec::new("getbit", 3, READONLY | FAST, "bitmap", getbit).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("bitcount", -2, READONLY, "bitmap", bitcount).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("bitpos", -3, READONLY, "bitmap", bitpos).key_specs(&[KeySpec::index(1, RO | ACCESS)]),
    CommandSpec::new("bitop", -4, WRITE | DENYOOM, "bitmap", bitop)
        .key_specs(&[KeySpec::index(2, OW | UPDATE), KeySpec::index(3, RO | ACCESS).range(-1, 1, 0)]),
    CommandSpec::new("bitfield", -2, WRITE | DENYOOM, "bitmap", bitfield)
        .flagged_keys(bitfield_key)
        .key_specs(&[KeySpec::index(1, RW | UPDATE | ACCESS | VARIABLE_FLAGS)
            .note("This command allows both access and modification of the key")]),
    CommandSpec::new("bitfield_ro", -2, READONLY | FAST, "bitmap", bitfield_ro)
        .key_specs(&[KeySpec::index(1, RO | ACCESS)]),
];

/// A bit offset: non-negative and inside a string of `proto-max-bulk-len` bytes.
fn bit_offset(ctx: &Ctx, arg: &[u8]) -> Result<usize, Reply> {
    crate::num::parse_i64(arg)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n / 8 < ctx.host.proto_max_bulk_len())
        .ok_or_else(|| err("ERR bit offset is not an integer or out of range"))
}

fn bit_at(data: &[u8], bit: usize) -> u8 {
    data.get(bit / 8).map_or(0, |byte| (byte >> (7 - bit % 8)) & 1)
}

fn setbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = arg(args, 1)?;
    let offset = bit_offset(ctx, arg(args, 2)?)?;
    let on = match &arg(args, 3)?[..] {
        b"1" => true,
        b"0" => false,
        _ => return Err(err("ERR bit is not an integer or out of range")),
    };
    let ((old, len), expire_at) =
        ctx.string_for_update(key, |s| (bit_at(s, offset), s.len()))?.unwrap_or(((0, 0), NO_EXPIRY));
    let grows = len <= offset / 8;
    // Redis 7.0 leaves an existing string untouched when the bit already has the value and
    // the string need not grow: no write, so nothing to log and WATCH is not triggered.
    // (A missing key always grows.) The string is still unshared, so its encoding turns raw;
    // that is not logged, like Redis does not propagate it.
    if !grows && (old == 1) == on {
        ctx.set_encoding(key, Encoding::Raw);
        return Ok(Reply::Int(i64::from(old)));
    }
    ctx.edit_string(key, expire_at, |data| {
        if grows {
            data.resize(offset / 8 + 1, 0);
        }
        if let Some(byte) = data.get_mut(offset / 8) {
            let mask = 1u8 << (7 - offset % 8);
            *byte = if on { *byte | mask } else { *byte & !mask };
        }
    });
    ctx.set_encoding(key, Encoding::Raw);
    ctx.propagate_args(args);
    Ok(Reply::Int(i64::from(old)))
}

fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, arg(args, 2)?)?;
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

/// Redis looks the key up before parsing the range: a missing key counts 0 and a wrong type
/// is WRONGTYPE whatever the other arguments are.
fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(value) = ctx.get_string(arg(args, 1)?)? else { return Ok(Reply::Int(0)) };
    let range = match args.len() {
        2 => None,
        4 | 5 => {
            let (start, end) = (int_arg(arg(args, 2)?)?, int_arg(arg(args, 3)?)?);
            // Both negative and crossed: empty, before the unit is even looked at (a range
            // clamped to the first byte would otherwise count it).
            if start < 0 && end < 0 && start > end {
                return Ok(Reply::Int(0));
            }
            Some((start, end, unit(args.get(4))?))
        }
        _ => return Err(errors::syntax()),
    };
    let count = match range {
        None => value.iter().map(|b| b.count_ones() as usize).sum(),
        Some((start, end, bits)) => match bit_range(start, end, bits, value.len()) {
            Some((from, to)) => (from..=to).filter(|&bit| bit_at(&value, bit) == 1).count(),
            None => 0,
        },
    };
    Ok(Reply::Int(count as i64))
}

/// Redis's order: the bit (an integer, then 0 or 1), the key (missing: an endless run of
/// zeros), then start, the BYTE|BIT unit, and only then end.
fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let wanted = match int_arg(arg(args, 2)?)? {
        1 => 1u8,
        0 => 0u8,
        _ => return Err(err("ERR The bit argument must be 1 or 0.")),
    };
    let Some(value) = ctx.get_string(arg(args, 1)?)? else {
        return Ok(Reply::Int(if wanted == 1 { -1 } else { 0 }));
    };
    if args.len() > 6 {
        return Err(errors::syntax());
    }
    let start = args.get(3).map(|a| int_arg(a)).transpose()?;
    let bits = unit(args.get(5))?;
    let end = args.get(4).map(|a| int_arg(a)).transpose()?;
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
    ctx.store(dst, Value::Str(SmallBytes::from_owned(value.clone())), NO_EXPIRY);
    ctx.set_encoding(dst, Encoding::Raw);
    ctx.propagate(vec![Bytes::from_static(b"SET"), dst.clone(), value]);
    Ok(Reply::Int(len as i64))
}

/// One BITFIELD operation.
#[derive(Clone, Copy)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: usize,
    overflow: Overflow,
}

fn field_type(arg: &[u8]) -> Result<(bool, u32), Reply> {
    let invalid =
        || err("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.");
    // Lower case only, as in Redis (`I16` is invalid).
    let (signed, digits) = match arg.split_first() {
        Some((b'i', rest)) => (true, rest),
        Some((b'u', rest)) => (false, rest),
        _ => return Err(invalid()),
    };
    let bits = crate::num::parse_i64(digits).and_then(|b| u32::try_from(b).ok()).ok_or_else(invalid)?;
    let max = if signed { 64 } else { 63 };
    if bits == 0 || bits > max {
        return Err(invalid());
    }
    Ok((signed, bits))
}

/// `123` or `#3` (in units of the field's width).
fn field_offset(arg: &[u8], bits: u32, max_bytes: usize) -> Result<usize, Reply> {
    let invalid = || err("ERR bit offset is not an integer or out of range");
    let (multiply, digits) = match arg.split_first() {
        Some((b'#', rest)) => (true, rest),
        _ => (false, arg),
    };
    let n = crate::num::parse_i64(digits).and_then(|n| usize::try_from(n).ok()).ok_or_else(invalid)?;
    let offset = if multiply { n.checked_mul(bits as usize).ok_or_else(invalid)? } else { n };
    if offset / 8 >= max_bytes {
        return Err(invalid());
    }
    Ok(offset)
}

/// BITFIELD's key: only read when every operation is a GET (as Redis's `bitfieldGetKeys`
/// reads the arguments: a malformed one counts as a write).
fn bitfield_key(args: &[Bytes]) -> Vec<FoundKey> {
    let mut reads_only = true;
    let mut i = 2;
    while let Some(op) = args.get(i) {
        let remaining = args.len() - i - 1;
        match op {
            o if is(o, "get") && remaining >= 2 => i += 3,
            o if is(o, "overflow") && remaining >= 1 => i += 2,
            _ => {
                reads_only = false;
                break;
            }
        }
    }
    let flags = if reads_only { RO | ACCESS } else { RW | ACCESS | UPDATE };
    vec![FoundKey { position: 1, flags }]
}

/// BITFIELD's operations; offsets must fall inside a string of `max_bytes`.
fn parse_fields(args: &[Bytes], read_only: bool, max_bytes: usize) -> Result<Vec<Field>, Reply> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while let Some(sub) = args.get(i) {
        if is(sub, "overflow") {
            overflow = match args.get(i + 1).ok_or_else(errors::syntax)? {
                o if is(o, "wrap") => Overflow::Wrap,
                o if is(o, "sat") => Overflow::Sat,
                o if is(o, "fail") => Overflow::Fail,
                _ => return Err(err("ERR Invalid OVERFLOW type specified")),
            };
            i += 2;
            continue;
        }
        let takes_value = is(sub, "set") || is(sub, "incrby");
        if !takes_value && !is(sub, "get") {
            return Err(errors::syntax());
        }
        let needed = if takes_value { 4 } else { 3 };
        if i + needed > args.len() {
            return Err(errors::syntax());
        }
        let (signed, bits) = field_type(arg(args, i + 1)?)?;
        let offset = field_offset(arg(args, i + 2)?, bits, max_bytes)?;
        let op = match sub {
            s if is(s, "get") => FieldOp::Get,
            s if is(s, "set") => FieldOp::Set(int_arg(arg(args, i + 3)?)?),
            _ => FieldOp::IncrBy(int_arg(arg(args, i + 3)?)?),
        };
        fields.push(Field { op, signed, bits, offset, overflow });
        i += needed;
    }
    // Redis parses every operation before refusing writes in the read-only form.
    if read_only && fields.iter().any(|f| !matches!(f.op, FieldOp::Get)) {
        return Err(err("ERR BITFIELD_RO only supports the GET subcommand"));
    }
    Ok(fields)
}

fn get_bits(data: &[u8], offset: usize, bits: u32) -> u64 {
    (0..bits as usize).fold(0u64, |acc, j| (acc << 1) | u64::from(bit_at(data, offset + j)))
}

fn set_bits(data: &mut [u8], offset: usize, bits: u32, value: u64) {
    for j in 0..bits as usize {
        let on = value & (1u64 << (bits as usize - 1 - j)) != 0;
        let bit = offset + j;
        if let Some(byte) = data.get_mut(bit / 8) {
            let mask = 1u8 << (7 - bit % 8);
            *byte = if on { *byte | mask } else { *byte & !mask };
        }
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr` overflows, and what to
/// store instead under WRAP/SAT.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, mode: Overflow) -> (bool, u64) {
    let max = (1u64 << bits) - 1;
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > max_incr) {
        return (true, if mode == Overflow::Wrap { wrap() } else { max });
    }
    if incr < 0 && incr < min_incr {
        return (true, if mode == Overflow::Wrap { wrap() } else { 0 });
    }
    (false, value.wrapping_add(incr as u64))
}

/// Redis's `checkSignedBitfieldOverflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, mode: Overflow) -> (bool, i64) {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr) {
        return (true, if mode == Overflow::Wrap { wrap() } else { max });
    }
    if value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr) {
        return (true, if mode == Overflow::Wrap { wrap() } else { min });
    }
    (false, value.wrapping_add(incr))
}

fn read_field(data: &[u8], f: &Field) -> i64 {
    let raw = get_bits(data, f.offset, f.bits);
    if f.signed && f.bits < 64 && raw & (1u64 << (f.bits - 1)) != 0 {
        (raw | (u64::MAX << f.bits)) as i64
    } else {
        raw as i64
    }
}

/// Apply one write; returns the reply and the bits to store (`None`: FAIL overflow).
fn write_field(data: &[u8], f: &Field) -> (Reply, Option<u64>) {
    let old = read_field(data, f);
    let (overflowed, new, reply_value) = match (f.op, f.signed) {
        (FieldOp::Set(v), true) => {
            let (o, n) = signed_overflow(v, 0, f.bits, f.overflow);
            (o, n as u64, old)
        }
        (FieldOp::Set(v), false) => {
            let (o, n) = unsigned_overflow(v as u64, 0, f.bits, f.overflow);
            (o, n, old)
        }
        (FieldOp::IncrBy(by), true) => {
            let (o, n) = signed_overflow(old, by, f.bits, f.overflow);
            (o, n as u64, n)
        }
        (FieldOp::IncrBy(by), false) => {
            let (o, n) = unsigned_overflow(old as u64, by, f.bits, f.overflow);
            (o, n, n as i64)
        }
        (FieldOp::Get, _) => return (Reply::Int(old), None),
    };
    if overflowed && f.overflow == Overflow::Fail {
        return (Reply::Nil, None);
    }
    (Reply::Int(reply_value), Some(new))
}

fn bitfield_generic(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> CmdResult {
    let key = arg(args, 1)?;
    let fields = parse_fields(args, read_only, ctx.host.proto_max_bulk_len())?;
    let highest = fields.iter().filter(|f| !matches!(f.op, FieldOp::Get)).map(|f| f.offset + f.bits as usize - 1).max();
    let Some(highest) = highest else {
        // Only GETs (or nothing): Redis reads the key (a miss is counted and announced).
        let data: &[u8] = match ctx.lookup_read(key).map(|entry| &entry.value) {
            None => &[],
            Some(Value::Str(s)) => s.as_slice(),
            Some(_) => return Err(errors::wrong_type()),
        };
        return Ok(Reply::Array(fields.iter().map(|f| write_field(data, f).0).collect()));
    };
    // Otherwise it looks the key up for writing.
    let (len, expire_at) = match ctx.string_for_update(key, <[u8]>::len)? {
        Some((len, expire_at)) => (Some(len), expire_at),
        None => (None, NO_EXPIRY),
    };
    let needed = highest / 8 + 1;
    // Created or grown: Redis's `dirty` from lookupStringForBitCommand.
    let dirty = len.is_none_or(|len| len < needed);
    let mut replies = Vec::with_capacity(fields.len());
    // Redis counts a write that ran as a change only if the key was created or grown or the
    // bits differ; with no change the key is not signalled (WATCH, keyspace events).
    let mut changes = 0;
    ctx.edit_string(key, expire_at, |data| {
        // Like Redis, the string grows to cover every write before any runs (even a FAIL).
        if data.len() < needed {
            data.resize(needed, 0);
        }
        for f in &fields {
            let (reply, store) = write_field(data, f);
            if let Some(value) = store {
                let before = get_bits(data, f.offset, f.bits);
                set_bits(data, f.offset, f.bits, value);
                if dirty || get_bits(data, f.offset, f.bits) != before {
                    changes += 1;
                }
            }
            replies.push(reply);
        }
    });
    ctx.set_encoding(key, Encoding::Raw);
    if changes > 0 {
        ctx.propagate_args(args);
    } else if dirty {
        // Every write FAILed, yet the key was created or grown: logged so recovery has
        // it, but not a change to Redis.
        ctx.log_only(args.to_vec());
    }
    Ok(Reply::Array(replies))
}

fn bitfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::Engine;

    #[test]
    fn bitcount_and_bitpos_argument_order() {
        let (e, mut c) = (Engine::new(crate::EngineOptions::default()), Client::new(1, true));
        // A missing key answers before its range is parsed.
        assert_eq!(e.run_text(&mut c, &["BITCOUNT", "nokey", "1", "x"]), Reply::Int(0));
        assert_eq!(e.run_text(&mut c, &["BITCOUNT", "nokey", "1", "2", "FOO"]), Reply::Int(0));
        assert_eq!(e.run_text(&mut c, &["BITPOS", "nokey", "0", "x"]), Reply::Int(0));
        e.run_text(&mut c, &["SET", "k", "ab"]);
        // Negative and crossed: 0, not the first byte that clamping would give.
        assert_eq!(e.run_text(&mut c, &["BITCOUNT", "k", "-3", "-19"]), Reply::Int(0));
        assert_eq!(e.run_text(&mut c, &["BITCOUNT", "k", "-3", "-19", "FOO"]), Reply::Int(0));
        // The bit is an integer first; the unit is parsed before end.
        assert_eq!(e.run_text(&mut c, &["BITPOS", "k", "", "1"]), errors::not_integer());
        assert_eq!(e.run_text(&mut c, &["BITPOS", "k", "0", "1", "x", "BITS"]), errors::syntax());
        assert_eq!(
            e.run_text(&mut c, &["BITFIELD", "k", "GET", "I8", "0"]),
            e.run_text(&mut c, &["BITFIELD", "k", "GET", "x8", "0"])
        );
    }

    /// BITFIELD that leaves the string as it was is no change to Redis 7.0: a watching
    /// transaction still runs. Creating or growing the string, or different bits, is one.
    #[test]
    fn bitfield_without_change_does_not_touch_watched_key() {
        let e = Engine::new(crate::EngineOptions::default());
        let (mut a, mut b) = (Client::new(1, true), Client::new(2, true));
        let zeros = "\0\0\0\0\0\0\0";
        let cases: &[(Option<&str>, &[&str], bool)] = &[
            (Some(zeros), &["OVERFLOW", "wrap", "SET", "i4", "52", "16"], false),
            (Some(zeros), &["INCRBY", "i4", "52", "0"], false),
            (Some(zeros), &["SET", "i4", "52", "0", "SET", "i4", "0", "1"], true),
            (Some("abc"), &["SET", "i4", "52", "0"], true),
            (None, &["SET", "i4", "0", "0"], true),
            // All writes FAIL: the key is created or grown, still no change.
            (None, &["OVERFLOW", "FAIL", "SET", "i4", "0", "100"], false),
            (Some("a"), &["OVERFLOW", "FAIL", "SET", "i4", "52", "100"], false),
        ];
        for (initial, ops, changes) in cases {
            e.run_text(&mut b, &["FLUSHALL"]);
            if let Some(initial) = initial {
                e.run_text(&mut b, &["SET", "k", initial]);
            }
            e.run_text(&mut a, &["WATCH", "k"]);
            let mut bitfield = vec!["BITFIELD", "k"];
            bitfield.extend_from_slice(ops);
            assert!(matches!(e.run_text(&mut b, &bitfield), Reply::Array(_)), "{ops:?}");
            e.run_text(&mut a, &["MULTI"]);
            let exec = e.run_text(&mut a, &["EXEC"]);
            assert_eq!(exec == Reply::NilArray, *changes, "{initial:?} {ops:?}");
            assert_eq!(e.run_text(&mut b, &["EXISTS", "k"]), Reply::Int(1));
        }
    }
}
