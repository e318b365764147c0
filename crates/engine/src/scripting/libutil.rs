//! Helpers shared by the libraries implemented in Rust (`cjson`, `bit`, `struct`, `cmsgpack`,
//! `math.random`): argument checks with the Lua auxiliary library's error texts, and the calling
//! convention the prelude's `checked` wrapper expects.
//!
//! A library function returns `Ok(values)` or `Err(message)`. The raw function handed to Lua
//! returns `true, values...` or `false, message`; the prelude wraps it so that the message is
//! raised as a string error at the caller's line, as `luaL_error` does in C.

use mlua::{Function, Lua, MultiValue, Value};

/// Redis's `%.17g`-style number formatting, shared with the reply encoder.
pub(crate) use staykv_resp::{format_double, format_g};

/// A library function's outcome: its results, or the text of the error to raise.
pub(crate) type LibResult = Result<MultiValue, String>;

/// A library function written in Rust.
pub(crate) type LibFn = fn(&Lua, &[Value]) -> mlua::Result<LibResult>;

/// Wrap `f` as a Lua function that raises its error message like `luaL_error`: prefixed with
/// the caller's position (none when the caller is a C function such as `pcall`), or as is
/// when the message starts with a NUL byte (errors the Lua VM itself raises in C code).
pub(crate) fn lib_function(lua: &Lua, f: LibFn) -> mlua::Result<Function> {
    lib_function_closure(lua, f)
}

/// [`lib_function`] for closures.
pub(crate) fn lib_function_closure<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, &[Value]) -> mlua::Result<LibResult> + Send + 'static,
{
    lua.create_function(move |lua, args: MultiValue| {
        let args: Vec<Value> = args.into_vec();
        match f(lua, &args)? {
            Ok(values) => Ok(values),
            Err(message) => Err(raise_message(lua, message)),
        }
    })
}

/// Wrap `f` as a Lua function that raises its error as a Redis error table
/// `{err="ERR <message>"}` (`luaPushError` + `luaError`).
pub(crate) fn table_error_function(lua: &Lua, f: LibFn) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let args: Vec<Value> = args.into_vec();
        match f(lua, &args)? {
            Ok(values) => Ok(values),
            Err(message) => Err(ScriptError::table(super::convert::error_text(message.as_bytes()), false)),
        }
    })
}

/// An error raised by a Rust function inside a script, as the script must see it.
#[derive(Debug, Clone)]
pub(crate) enum ScriptError {
    /// A string error (`luaL_error`), position included.
    Message(String),
    /// A Redis error table (`{err=...}`), as `redis.call` raises.
    Table { err: Vec<u8>, ignore_stats: bool },
}

impl ScriptError {
    pub(crate) fn table(err: Vec<u8>, ignore_stats: bool) -> mlua::Error {
        mlua::Error::external(ScriptError::Table { err, ignore_stats })
    }

    /// The script error inside an mlua error, if it is one of ours.
    pub(crate) fn find(e: &mlua::Error) -> Option<&ScriptError> {
        match e {
            mlua::Error::ExternalError(inner) => inner.downcast_ref::<ScriptError>(),
            mlua::Error::CallbackError { cause, .. } => ScriptError::find(cause),
            mlua::Error::WithContext { cause, .. } => ScriptError::find(cause),
            _ => None,
        }
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptError::Message(m) => f.write_str(m),
            ScriptError::Table { err, .. } => f.write_str(&String::from_utf8_lossy(err)),
        }
    }
}

impl std::error::Error for ScriptError {}

/// `luaL_error`: the message with the position of the calling Lua code.
pub(crate) fn raise_message(lua: &Lua, message: String) -> mlua::Error {
    if let Some(rest) = message.strip_prefix('\0') {
        return mlua::Error::external(ScriptError::Message(rest.to_string()));
    }
    let position = lua
        .inspect_stack(1, |d| {
            let line = d.current_line();
            let src = d.source().short_src.map(|s| s.into_owned());
            (src, line)
        })
        .and_then(|(src, line)| Some(format!("{}:{}: ", src?, line?)));
    mlua::Error::external(ScriptError::Message(format!("{}{message}", position.unwrap_or_default())))
}

/// `lua_typename` of a value, `no value` for a missing argument (as `luaL_typename`).
pub(crate) fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// `luaL_argerror`'s text.
pub(crate) fn arg_error(arg: usize, function: &str, extra: &str) -> String {
    format!("bad argument #{arg} to '{function}' ({extra})")
}

/// `luaL_typerror`'s text.
pub(crate) fn type_error(args: &[Value], arg: usize, function: &str, expected: &str) -> String {
    let got = type_name(args.get(arg.wrapping_sub(1)));
    arg_error(arg, function, &format!("{expected} expected, got {got}"))
}

/// A number as Lua sees one (`lua_tonumber`): numbers, and strings that convert.
pub(crate) fn to_number(lua: &Lua, value: Option<&Value>) -> mlua::Result<Option<f64>> {
    Ok(match value {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(v @ Value::String(_)) => lua.coerce_number(v.clone())?,
        _ => None,
    })
}

/// `luaL_checknumber`.
pub(crate) fn check_number(lua: &Lua, args: &[Value], arg: usize, function: &str) -> mlua::Result<Result<f64, String>> {
    Ok(to_number(lua, args.get(arg.wrapping_sub(1)))?.ok_or_else(|| type_error(args, arg, function, "number")))
}

/// `luaL_checkinteger`: a number truncated toward zero (as the C cast does).
pub(crate) fn check_integer(
    lua: &Lua,
    args: &[Value],
    arg: usize,
    function: &str,
) -> mlua::Result<Result<i64, String>> {
    Ok(check_number(lua, args, arg, function)?.map(c_cast_i64))
}

/// `luaL_optinteger`: absent or nil gives the default.
pub(crate) fn opt_integer(
    lua: &Lua,
    args: &[Value],
    arg: usize,
    function: &str,
    default: i64,
) -> mlua::Result<Result<i64, String>> {
    match args.get(arg.wrapping_sub(1)) {
        None | Some(Value::Nil) => Ok(Ok(default)),
        Some(_) => check_integer(lua, args, arg, function),
    }
}

/// `luaL_checklstring`: strings, and numbers converted with Lua's `%.14g`.
pub(crate) fn check_bytes(
    lua: &Lua,
    args: &[Value],
    arg: usize,
    function: &str,
) -> mlua::Result<Result<Vec<u8>, String>> {
    Ok(to_bytes(lua, args.get(arg.wrapping_sub(1)))?.ok_or_else(|| type_error(args, arg, function, "string")))
}

/// `lua_tolstring`: strings and numbers, `None` for anything else.
pub(crate) fn to_bytes(lua: &Lua, value: Option<&Value>) -> mlua::Result<Option<Vec<u8>>> {
    Ok(match value {
        Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => {
            lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec())
        }
        _ => None,
    })
}

/// C's `(long long)d` on x86-64: truncation toward zero, and the "integer indefinite" value
/// (`i64::MIN`) for NaN and out-of-range values, which Redis replies with.
pub(crate) fn c_cast_i64(d: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if d.is_nan() || !(-LIMIT..LIMIT).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// C's `(int)d` on x86-64 (`luaL_checkint`).
pub(crate) fn c_cast_i32(d: f64) -> i32 {
    const LIMIT: f64 = 2_147_483_648.0;
    if d.is_nan() || !(-LIMIT..LIMIT).contains(&d) {
        i32::MIN
    } else {
        d as i32
    }
}

/// Results from values.
pub(crate) fn results<I: IntoIterator<Item = Value>>(values: I) -> LibResult {
    Ok(values.into_iter().collect())
}

/// Build a library table from `(name, function)` pairs.
pub(crate) fn lib_table(lua: &Lua, functions: &[(&str, LibFn)]) -> mlua::Result<mlua::Table> {
    let table = lua.create_table()?;
    for (name, f) in functions {
        table.raw_set(*name, lib_function(lua, *f)?)?;
    }
    Ok(table)
}

/// Run a step of a recursive conversion with enough stack: nested tables may be 1000 deep
/// and the server's worker threads have small stacks, so the stack grows on demand.
pub(crate) fn deep<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_follow_x86() {
        assert_eq!(c_cast_i64(3.99), 3);
        assert_eq!(c_cast_i64(-3.99), -3);
        assert_eq!(c_cast_i64(f64::NAN), i64::MIN);
        assert_eq!(c_cast_i64(f64::INFINITY), i64::MIN);
        assert_eq!(c_cast_i64(1e30), i64::MIN);
        assert_eq!(c_cast_i32(1e10), i32::MIN);
        assert_eq!(c_cast_i32(-7.5), -7);
    }
}
