//! The `bit` library (LuaBitOp 1.0.2, as Redis bundles it): 32-bit operations on Lua numbers.
//!
//! Arguments are normalized the way LuaBitOp does on Lua 5.1 with doubles: add 2^52+2^51 and
//! keep the low 32 bits of the representation, which rounds to nearest and wraps modulo 2^32.
//! Results are signed 32-bit numbers.

use mlua::{Lua, Table, Value};

use super::libutil::{lib_table, results, type_error, LibResult};

pub(crate) fn table(lua: &Lua) -> mlua::Result<Table> {
    lib_table(
        lua,
        &[
            ("tobit", tobit),
            ("bnot", bnot),
            ("band", band),
            ("bor", bor),
            ("bxor", bxor),
            ("lshift", lshift),
            ("rshift", rshift),
            ("arshift", arshift),
            ("rol", rol),
            ("ror", ror),
            ("bswap", bswap),
            ("tohex", tohex),
        ],
    )
}

/// LuaBitOp's `barg`: the argument as 32 bits.
fn barg(lua: &Lua, args: &[Value], arg: usize, name: &str) -> mlua::Result<Result<u32, String>> {
    let value = args.get(arg - 1);
    let number = super::libutil::to_number(lua, value)?;
    Ok(match number {
        Some(n) => Ok(normalize(n)),
        None => Err(type_error(args, arg, name, "number")),
    })
}

/// The 2^52+2^51 trick: the low word of the sum's representation.
pub(crate) fn normalize(n: f64) -> u32 {
    let biased = n + 6_755_399_441_055_744.0;
    biased.to_bits() as u32
}

fn ret(b: u32) -> LibResult {
    results([Value::Number(f64::from(b as i32))])
}

macro_rules! try_arg {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(message) => return Ok(Err(message)),
        }
    };
}

fn tobit(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    Ok(ret(try_arg!(barg(lua, args, 1, "tobit"))))
}

fn bnot(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    Ok(ret(!try_arg!(barg(lua, args, 1, "bnot"))))
}

fn fold(lua: &Lua, args: &[Value], name: &str, op: fn(u32, u32) -> u32) -> mlua::Result<LibResult> {
    let mut b = try_arg!(barg(lua, args, 1, name));
    // LuaBitOp folds from the last argument down to the second.
    for i in (2..=args.len()).rev() {
        b = op(b, try_arg!(barg(lua, args, i, name)));
    }
    Ok(ret(b))
}

fn band(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    fold(lua, args, "band", |a, b| a & b)
}

fn bor(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    fold(lua, args, "bor", |a, b| a | b)
}

fn bxor(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    fold(lua, args, "bxor", |a, b| a ^ b)
}

fn shift(lua: &Lua, args: &[Value], name: &str, op: fn(u32, u32) -> u32) -> mlua::Result<LibResult> {
    let b = try_arg!(barg(lua, args, 1, name));
    let n = try_arg!(barg(lua, args, 2, name)) & 31;
    Ok(ret(op(b, n)))
}

fn lshift(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    shift(lua, args, "lshift", |b, n| b << n)
}

fn rshift(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    shift(lua, args, "rshift", |b, n| b >> n)
}

fn arshift(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    shift(lua, args, "arshift", |b, n| ((b as i32) >> n) as u32)
}

fn rol(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    shift(lua, args, "rol", |b, n| b.rotate_left(n))
}

fn ror(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    shift(lua, args, "ror", |b, n| b.rotate_right(n))
}

fn bswap(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    Ok(ret(try_arg!(barg(lua, args, 1, "bswap")).swap_bytes()))
}

fn tohex(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    let mut b = try_arg!(barg(lua, args, 1, "tohex"));
    let mut n: i64 = if args.len() < 2 { 8 } else { i64::from(try_arg!(barg(lua, args, 2, "tohex")) as i32) };
    let digits: &[u8; 16] = if n < 0 {
        n = -n;
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let n = usize::try_from(n.min(8)).unwrap_or(8);
    let mut buf = vec![b'0'; n];
    for slot in buf.iter_mut().rev() {
        *slot = digits.get((b & 15) as usize).copied().unwrap_or(b'0');
        b >>= 4;
    }
    Ok(results([Value::String(lua.create_string(buf)?)]))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_like_luabitop() {
        assert_eq!(normalize(1.0), 1);
        assert_eq!(normalize(-1.0) as i32, -1);
        assert_eq!(normalize(4294967296.0), 0);
        assert_eq!(normalize(2147483648.0) as i32, i32::MIN);
        assert_eq!(normalize(1.5), 2); // round half to even
        assert_eq!(normalize(2.5), 2);
    }
}
