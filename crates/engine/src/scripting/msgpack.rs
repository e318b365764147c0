//! The `cmsgpack` library (lua-cmsgpack 0.4.0, as Redis bundles it): `pack`, `unpack`,
//! `unpack_one`, `unpack_limit`.
//!
//! Encoding follows the C library: integral numbers use the smallest integer encoding, other
//! numbers a float when exact as one, else a double; strings are always `str` types; a table
//! whose keys are exactly 1..n is an array, any other table a map (in Lua's `next` order);
//! tables nested 16 deep are encoded as nil; functions and userdata are nil. Decoding turns
//! every integer into a Lua number (uint64 through a signed cast, as the C code does), and
//! refuses `bin`/`ext` types and 0xc1 ("Bad data format in input.").

use mlua::{Lua, Table, Value};

use super::libutil::{
    arg_error, c_cast_i32, c_cast_i64, check_bytes, check_integer, lib_table, opt_integer, LibResult,
};

const MAX_NESTING: usize = 16;
/// Decoding recursion limit (the C library is bounded by the Lua stack instead).
const MAX_DECODE_DEPTH: usize = 100_000;

pub(crate) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lib_table(
        lua,
        &[("pack", pack), ("unpack", unpack), ("unpack_one", unpack_one), ("unpack_limit", unpack_limit)],
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

// ----------------------------------------------------------------------------- encoding

fn pack(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    if args.is_empty() {
        return Ok(Err(arg_error(0, "pack", "MessagePack pack needs input.")));
    }
    let mut out = Vec::new();
    for value in args {
        encode(value, 0, &mut out)?;
    }
    Ok(Ok([Value::String(lua.create_string(out)?)].into_iter().collect()))
}

fn encode(value: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match value {
        Value::String(s) => encode_bytes(&s.as_bytes(), out),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_number(*i as f64, out),
        Value::Number(n) => encode_number(*n, out),
        Value::Table(t) if level < MAX_NESTING => {
            if is_array(t)? {
                let len = t.raw_len();
                encode_header(out, len as u64, 0x90, 0xdc, 0xdd);
                for j in 1..=len {
                    let item: Value = t.get(j)?;
                    super::libutil::deep(|| encode(&item, level + 1, out))?;
                }
            } else {
                // Counted, then encoded pair by pair: each key or value held as a `Value` takes
                // a slot of the Lua stack, and 100,000 string keys held at once overflowed it
                // ("C stack overflow").
                let mut len = 0u64;
                for pair in t.pairs::<Value, Value>() {
                    pair?;
                    len += 1;
                }
                encode_header(out, len, 0x80, 0xde, 0xdf);
                for pair in t.pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    super::libutil::deep(|| encode(&k, level + 1, out))?;
                    super::libutil::deep(|| encode(&v, level + 1, out))?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

/// Array or map headers: fix form up to 15, 16-bit up to 65535, else 32-bit.
fn encode_header(out: &mut Vec<u8>, n: u64, fix: u8, b16: u8, b32: u8) {
    if n <= 15 {
        out.push(fix | (n as u8 & 0xf));
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_bytes(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.push(0xd9);
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    let i = c_cast_i64(n);
    if !n.is_infinite() && i as f64 == n {
        encode_int(i, out);
    } else {
        let f = n as f32;
        if f64::from(f) == n {
            out.push(0xca);
            out.extend_from_slice(&f.to_be_bytes());
        } else {
            out.push(0xcb);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// `table_is_an_array`: every key an integer >= 1 and as many keys as the largest one.
fn is_array(t: &Table) -> mlua::Result<bool> {
    let mut count: i64 = 0;
    let mut max: i64 = 0;
    for pair in t.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let n = match key {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(false),
        };
        if n <= 0.0 || f64::from(c_cast_i32(n)) != n {
            return Ok(false);
        }
        max = max.max(n as i64);
        count += 1;
    }
    Ok(max == count)
}

// ----------------------------------------------------------------------------- decoding

#[derive(Debug)]
enum DecodeError {
    Eof,
    BadFormat,
    /// A Lua error raised while building tables ("table index is nil").
    Lua(String),
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let bytes =
            self.data.get(self.pos..self.pos.checked_add(n).ok_or(DecodeError::Eof)?).ok_or(DecodeError::Eof)?;
        self.pos += n;
        Ok(bytes)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
}

fn decode(lua: &Lua, c: &mut Cursor<'_>) -> mlua::Result<Result<Value, DecodeError>> {
    macro_rules! tri {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            }
        };
    }
    let tag = tri!(c.take(1)).first().copied().unwrap_or(0xc1);
    let number = |n: f64| Ok(Ok(Value::Number(n)));
    match tag {
        0xcc => number(tri!(c.be(1)) as f64),
        0xd0 => number(f64::from(tri!(c.be(1)) as u8 as i8)),
        0xcd => number(tri!(c.be(2)) as f64),
        0xd1 => number(f64::from(tri!(c.be(2)) as u16 as i16)),
        0xce => number(tri!(c.be(4)) as f64),
        0xd2 => number(f64::from(tri!(c.be(4)) as u32 as i32)),
        0xcf | 0xd3 => number(tri!(c.be(8)) as i64 as f64),
        0xc0 => Ok(Ok(Value::Nil)),
        0xc3 => Ok(Ok(Value::Boolean(true))),
        0xc2 => Ok(Ok(Value::Boolean(false))),
        0xca => number(f64::from(f32::from_bits(tri!(c.be(4)) as u32))),
        0xcb => number(f64::from_bits(tri!(c.be(8)))),
        0xd9 => {
            let n = tri!(c.be(1)) as usize;
            Ok(Ok(Value::String(lua.create_string(tri!(c.take(n)))?)))
        }
        0xda => {
            let n = tri!(c.be(2)) as usize;
            Ok(Ok(Value::String(lua.create_string(tri!(c.take(n)))?)))
        }
        0xdb => {
            let n = tri!(c.be(4)) as usize;
            Ok(Ok(Value::String(lua.create_string(tri!(c.take(n)))?)))
        }
        0xdc => {
            let n = tri!(c.be(2)) as usize;
            decode_array(lua, c, n)
        }
        0xdd => {
            let n = tri!(c.be(4)) as usize;
            decode_array(lua, c, n)
        }
        0xde => {
            let n = tri!(c.be(2)) as usize;
            decode_map(lua, c, n)
        }
        0xdf => {
            let n = tri!(c.be(4)) as usize;
            decode_map(lua, c, n)
        }
        t if t & 0x80 == 0 => number(f64::from(t)),
        t if t & 0xe0 == 0xe0 => number(f64::from(t as i8)),
        t if t & 0xe0 == 0xa0 => {
            let n = usize::from(t & 0x1f);
            Ok(Ok(Value::String(lua.create_string(tri!(c.take(n)))?)))
        }
        t if t & 0xf0 == 0x90 => decode_array(lua, c, usize::from(t & 0xf)),
        t if t & 0xf0 == 0x80 => decode_map(lua, c, usize::from(t & 0xf)),
        _ => Ok(Err(DecodeError::BadFormat)),
    }
}

fn descend(c: &mut Cursor<'_>) -> Result<(), DecodeError> {
    c.depth += 1;
    if c.depth > MAX_DECODE_DEPTH {
        return Err(DecodeError::Lua("too many nested data structures".into()));
    }
    Ok(())
}

fn decode_array(lua: &Lua, c: &mut Cursor<'_>, len: usize) -> mlua::Result<Result<Value, DecodeError>> {
    if let Err(e) = descend(c) {
        return Ok(Err(e));
    }
    let t = lua.create_table()?;
    for index in 1..=len {
        let value = match super::libutil::deep(|| decode(lua, c))? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        t.raw_set(index as f64, value)?;
    }
    c.depth -= 1;
    Ok(Ok(Value::Table(t)))
}

fn decode_map(lua: &Lua, c: &mut Cursor<'_>, len: usize) -> mlua::Result<Result<Value, DecodeError>> {
    if let Err(e) = descend(c) {
        return Ok(Err(e));
    }
    let t = lua.create_table()?;
    for _ in 0..len {
        let key = match super::libutil::deep(|| decode(lua, c))? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let value = match super::libutil::deep(|| decode(lua, c))? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        match &key {
            Value::Nil => return Ok(Err(DecodeError::Lua("table index is nil".into()))),
            Value::Number(n) if n.is_nan() => return Ok(Err(DecodeError::Lua("table index is NaN".into()))),
            _ => t.raw_set(key, value)?,
        }
    }
    c.depth -= 1;
    Ok(Ok(Value::Table(t)))
}

/// Where a decode error is raised from: `luaL_error` texts get the caller's position in the
/// prelude; "table index is nil" comes from the VM without one (it is marked with a leading
/// NUL byte that the prelude understands).
fn decode_error(e: DecodeError) -> String {
    match e {
        DecodeError::Eof => "Missing bytes in input.".into(),
        DecodeError::BadFormat => "Bad data format in input.".into(),
        DecodeError::Lua(message) => format!("\0{message}"),
    }
}

fn unpack_full(lua: &Lua, data: &[u8], limit: i64, offset: i64) -> mlua::Result<LibResult> {
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Ok(Err(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32,
            data.len() as i32
        )));
    }
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    if offset > data.len() {
        return Ok(Err(format!("Start offset {} greater than input length {}.", offset as i32, data.len() as i32)));
    }
    let limit = if decode_all { i64::MAX } else { limit };
    let mut c = Cursor { data, pos: offset, depth: 0 };
    let mut out = mlua::MultiValue::new();
    let mut count = 0;
    while c.left() > 0 && count < limit {
        match decode(lua, &mut c)? {
            Ok(v) => out.push_back(v),
            Err(e) => return Ok(Err(decode_error(e))),
        }
        count += 1;
    }
    if !decode_all {
        let next = if c.left() == 0 { -1.0 } else { c.pos as f64 };
        out.push_front(Value::Number(next));
    }
    Ok(Ok(out))
}

macro_rules! try_arg {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(message) => return Ok(Err(message)),
        }
    };
}

fn unpack(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    let data = try_arg!(check_bytes(lua, args, 1, "unpack")?);
    unpack_full(lua, &data, 0, 0)
}

fn unpack_one(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    let offset = try_arg!(opt_integer(lua, args, 2, "unpack_one", 0)?);
    let data = try_arg!(check_bytes(lua, args, 1, "unpack_one")?);
    unpack_full(lua, &data, 1, i64::from(offset as i32))
}

fn unpack_limit(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    let limit = try_arg!(check_integer(lua, args, 2, "unpack_limit")?);
    let offset = try_arg!(opt_integer(lua, args, 3, "unpack_limit", 0)?);
    let data = try_arg!(check_bytes(lua, args, 1, "unpack_limit")?);
    unpack_full(lua, &data, i64::from(limit as i32), i64::from(offset as i32))
}
