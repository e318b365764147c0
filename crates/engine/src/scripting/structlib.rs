//! The `struct` library (Roberto Ierusalimschy's struct.c 1.4 with Redis's fixes): packing
//! numbers and strings into binary strings and back.
//!
//! Format: `>` big endian, `<` little endian, `![n]` alignment, `x` padding byte, `b`/`B`
//! signed/unsigned char, `h`/`H` short, `l`/`L` long, `T` size_t, `i[n]`/`I[n]` integers of
//! `n` bytes (default 4, at most 32), `c[n]` fixed string (`c0`: whole string when packing,
//! previous number as length when unpacking), `s` zero-terminated string, `f` float, `d`
//! double, space ignored. Sizes are those of x86-64 Linux; the native order is little endian.

use mlua::{Lua, Table, Value};

use super::libutil::{arg_error, check_bytes, check_number, lib_table, opt_integer, LibResult};

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;

pub(crate) fn table(lua: &Lua) -> mlua::Result<Table> {
    lib_table(lua, &[("pack", pack), ("unpack", unpack), ("size", size)])
}

macro_rules! try_arg {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(message) => return Ok(Err(message)),
        }
    };
}

#[derive(Clone, Copy)]
struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header { little: true, align: 1 }
    }
}

/// A format string being read.
struct Format<'a> {
    fmt: &'a [u8],
    pos: usize,
}

impl Format<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = self.fmt.get(self.pos).copied();
        self.pos += usize::from(c.is_some());
        c
    }

    /// `getnum`: an optional decimal count.
    fn number(&mut self, default: usize) -> Result<usize, String> {
        if !self.fmt.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: usize = 0;
        while let Some(d) = self.fmt.get(self.pos).filter(|c| c.is_ascii_digit()) {
            let digit = usize::from(d - b'0');
            let max = i32::MAX as usize;
            if a > max / 10 || a * 10 > max - digit {
                return Err("integral size overflow".into());
            }
            a = a * 10 + digit;
            self.pos += 1;
        }
        Ok(a)
    }

    /// `optsize`.
    fn size(&mut self, opt: u8) -> Result<usize, String> {
        Ok(match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let size = self.number(4)?;
                if size > MAXINTSIZE {
                    return Err(format!("integral size {size} is larger than limit of {MAXINTSIZE}"));
                }
                size
            }
            _ => 0,
        })
    }

    /// `controloptions`: endianness, alignment, spaces; anything else is an error.
    fn control(&mut self, opt: u8, h: &mut Header, function: &str) -> Result<(), String> {
        match opt {
            b' ' => Ok(()),
            b'>' => {
                h.little = false;
                Ok(())
            }
            b'<' => {
                h.little = true;
                Ok(())
            }
            b'!' => {
                let a = self.number(MAXALIGN)?;
                if !a.is_power_of_two() {
                    return Err(format!("alignment {a} is not a power of 2"));
                }
                h.align = a;
                Ok(())
            }
            other => Err(arg_error(1, function, &format!("invalid format option '{}'", char::from(other)))),
        }
    }
}

/// `gettoalign`: padding needed before an item of `size` at `len`.
fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size.wrapping_sub(len & size.wrapping_sub(1))) & size.wrapping_sub(1)
}

fn put_integer(out: &mut Vec<u8>, n: f64, little: bool, size: usize) {
    let mut value: u64 = if n < 0.0 { (n as i64) as u64 } else { n as u64 };
    let mut buf = vec![0u8; size];
    if little {
        for b in buf.iter_mut() {
            *b = (value & 0xff) as u8;
            value >>= 8;
        }
    } else {
        for b in buf.iter_mut().rev() {
            *b = (value & 0xff) as u8;
            value >>= 8;
        }
    }
    out.extend_from_slice(&buf);
}

fn get_integer(data: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let size = data.len();
    let bytes: Box<dyn Iterator<Item = &u8>> = if little { Box::new(data.iter().rev()) } else { Box::new(data.iter()) };
    for &b in bytes {
        l = (l << 8) | u64::from(b);
    }
    if !signed {
        return l as f64;
    }
    let shift = u32::try_from((size * 8).wrapping_sub(1) & 63).unwrap_or(63);
    let mask = u64::MAX.wrapping_shl(shift);
    if l & mask != 0 {
        l |= mask;
    }
    (l as i64) as f64
}

fn pack(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    let fmt = try_arg!(check_bytes(lua, args, 1, "pack")?);
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut arg = 2;
    let mut out = Vec::new();
    while let Some(opt) = f.next() {
        let mut size = try_arg!(f.size(opt));
        let pad = to_align(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = try_arg!(check_number(lua, args, arg, "pack")?);
                arg += 1;
                put_integer(&mut out, n, h.little, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = try_arg!(check_number(lua, args, arg, "pack")?) as f32;
                arg += 1;
                out.extend_from_slice(&if h.little { n.to_le_bytes() } else { n.to_be_bytes() });
            }
            b'd' => {
                let n = try_arg!(check_number(lua, args, arg, "pack")?);
                arg += 1;
                out.extend_from_slice(&if h.little { n.to_le_bytes() } else { n.to_be_bytes() });
            }
            b'c' | b's' => {
                let s = try_arg!(check_bytes(lua, args, arg, "pack")?);
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // struct.c reports the argument after the string (it already advanced).
                    return Ok(Err(arg_error(arg, "pack", "string too short")));
                }
                out.extend_from_slice(s.get(..size).unwrap_or_default());
                if opt == b's' {
                    out.push(0);
                }
            }
            other => try_arg!(f.control(other, &mut h, "pack")),
        }
    }
    Ok(Ok([Value::String(lua.create_string(out)?)].into_iter().collect()))
}

fn unpack(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    let fmt = try_arg!(check_bytes(lua, args, 1, "unpack")?);
    let data = try_arg!(check_bytes(lua, args, 2, "unpack")?);
    let start = try_arg!(opt_integer(lua, args, 3, "unpack", 1)?);
    if start == 0 {
        return Ok(Err(arg_error(3, "unpack", "offset must be 1 or greater")));
    }
    // size_t arithmetic, as in C: a negative offset becomes huge and fails the length check.
    let mut pos = (start as u64).wrapping_sub(1) as usize;
    let ld = data.len();
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut out: Vec<Value> = Vec::new();
    let too_short = || arg_error(2, "unpack", "data string too short");
    while let Some(opt) = f.next() {
        let mut size = try_arg!(f.size(opt));
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if !(size <= ld && pos <= ld - size) {
            return Ok(Err(too_short()));
        }
        let item = |pos: usize, size: usize| data.get(pos..pos + size).unwrap_or_default();
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                out.push(Value::Number(get_integer(item(pos, size), h.little, signed)));
            }
            b'x' => {}
            b'f' => {
                let bytes: [u8; 4] = item(pos, 4).try_into().unwrap_or_default();
                let v = if h.little { f32::from_le_bytes(bytes) } else { f32::from_be_bytes(bytes) };
                out.push(Value::Number(f64::from(v)));
            }
            b'd' => {
                let bytes: [u8; 8] = item(pos, 8).try_into().unwrap_or_default();
                out.push(Value::Number(if h.little { f64::from_le_bytes(bytes) } else { f64::from_be_bytes(bytes) }));
            }
            b'c' => {
                if size == 0 {
                    let previous = match out.last() {
                        Some(v @ (Value::Number(_) | Value::Integer(_) | Value::String(_))) => {
                            super::libutil::to_number(lua, Some(v))?
                        }
                        _ => None,
                    };
                    let Some(n) = previous else {
                        return Ok(Err("format 'c0' needs a previous size".into()));
                    };
                    out.pop();
                    size = n as usize;
                    if !(size <= ld && pos <= ld - size) {
                        return Ok(Err(too_short()));
                    }
                }
                out.push(Value::String(lua.create_string(item(pos, size))?));
            }
            b's' => {
                let rest = data.get(pos..).unwrap_or_default();
                let Some(end) = rest.iter().position(|&c| c == 0) else {
                    return Ok(Err("unfinished string in data".into()));
                };
                size = end + 1;
                out.push(Value::String(lua.create_string(rest.get(..end).unwrap_or_default())?));
            }
            other => try_arg!(f.control(other, &mut h, "unpack")),
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as f64));
    Ok(Ok(out.into_iter().collect()))
}

fn size(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    let fmt = try_arg!(check_bytes(lua, args, 1, "size")?);
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut pos = 0usize;
    while let Some(opt) = f.next() {
        let size = try_arg!(f.size(opt));
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if opt == b's' {
            return Ok(Err(arg_error(1, "size", "option 's' has no fixed size")));
        } else if opt == b'c' && size == 0 {
            return Ok(Err(arg_error(1, "size", "option 'c0' has no fixed size")));
        }
        if !opt.is_ascii_alphanumeric() {
            try_arg!(f.control(opt, &mut h, "size"));
        }
        pos = pos.wrapping_add(size);
    }
    Ok(Ok([Value::Number(pos as f64)].into_iter().collect()))
}
