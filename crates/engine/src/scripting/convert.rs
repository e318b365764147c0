//! Conversions between command replies and Lua values, with Redis 7.0's rules
//! (`redisProtocolToLuaType` and `luaReplyToRedisReply` in script_lua.c).
//!
//! Reply → Lua, for `redis.call`: integers become numbers, bulk strings strings, a missing
//! value `false` (RESP2) or `nil` (RESP3), arrays tables (a `nil` element ends the array when
//! the script reads it with `#`), status replies `{ok=...}`, errors `{err=...}`. Under
//! `redis.setresp(3)` maps become `{map={...}}`, sets `{set={k=true}}`, doubles
//! `{double=n}`, booleans booleans, verbatim strings `{verbatim_string={...}}`; under RESP2
//! those shapes degrade exactly as the wire protocol degrades them.
//!
//! Lua → reply, for a script's result: strings bulk, numbers integers (truncated), `true` 1,
//! `false` null (RESP3 scripts: booleans), tables with a string `err` error replies, with
//! `ok` status replies, with `double`/`map`/`set`/`big_number`/`verbatim_string` the RESP3
//! shapes, any other table an array up to its first nil; everything else null.

use bytes::Bytes;
use mlua::{Lua, Table, Value};
use staykv_resp::Reply;

use super::libutil::c_cast_i64;

/// How deep a script's result may nest before it is cut with an error (the C code is bounded
/// by the Lua stack). A level holds up to four Lua references while it is converted (a
/// `{map=...}` table, its map, a key and a value), and mlua has room for about 8,000: at 2,990
/// levels of maps it ran out (and mlua 0.11 panicked).
const MAX_DEPTH: usize = 1000;

/// `luaPushErrorBuff`'s text: `-CODE msg` keeps its code, anything else gets `ERR`; `\r\n` at
/// either end is trimmed.
pub(crate) fn error_text(raw: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match raw.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&c| c == b' ') {
            Some(space) => (rest.get(..space).unwrap_or_default(), rest.get(space + 1..).unwrap_or_default()),
            None => (b"ERR", rest),
        },
        None => (b"ERR", raw),
    };
    let start = msg.iter().position(|c| !matches!(c, b'\r' | b'\n')).unwrap_or(msg.len());
    let end = msg.iter().rposition(|c| !matches!(c, b'\r' | b'\n')).map_or(start, |e| e + 1);
    let mut out = Vec::with_capacity(code.len() + 1 + end.saturating_sub(start));
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(msg.get(start..end).unwrap_or_default());
    out
}

/// An error table `{err=...}` from an error reply's text (which has no leading `-`).
pub(crate) fn error_table(lua: &Lua, text: &[u8], from_command: bool) -> mlua::Result<Table> {
    let mut raw = Vec::with_capacity(text.len() + 1);
    raw.push(b'-');
    raw.extend_from_slice(text);
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(&raw))?)?;
    if from_command {
        t.raw_set("ignore_error_stats_update", true)?;
    }
    Ok(t)
}

/// An error table for a message written without a code (`luaPushError`): `ERR ` is added.
pub(crate) fn plain_error_table(lua: &Lua, message: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(message.as_bytes()))?)?;
    Ok(t)
}

fn single_field(lua: &Lua, field: &str, value: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, value)?;
    Ok(Value::Table(t))
}

/// A command's reply as `redis.call` returns it, for a script in RESP2 or RESP3 mode.
pub(crate) fn reply_to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value> {
    let string = |b: &[u8]| -> mlua::Result<Value> { Ok(Value::String(lua.create_string(b)?)) };
    Ok(match reply {
        Reply::Ok => single_field(lua, "ok", string(b"OK")?)?,
        Reply::Status(s) => single_field(lua, "ok", string(s.as_bytes())?)?,
        Reply::StatusOwned(s) => single_field(lua, "ok", string(s.as_bytes())?)?,
        Reply::Error(e) => Value::Table(error_table(lua, e.as_bytes(), true)?),
        Reply::ErrorBytes(e) => Value::Table(error_table(lua, e, true)?),
        Reply::Int(n) => Value::Number(*n as f64),
        Reply::Bulk(b) => string(b)?,
        Reply::Nil | Reply::NilArray => {
            if resp3 {
                Value::Nil
            } else {
                Value::Boolean(false)
            }
        }
        Reply::Array(items) | Reply::Push(items) | Reply::Many(items) => array(lua, items, resp3)?,
        Reply::Set(items) if !resp3 => array(lua, items, resp3)?,
        Reply::Set(items) => {
            let set = lua.create_table()?;
            for item in items {
                let key = reply_to_lua(lua, item, resp3)?;
                set_field(&set, key, Value::Boolean(true))?;
            }
            single_field(lua, "set", Value::Table(set))?
        }
        Reply::Map(pairs) if !resp3 => {
            let t = lua.create_table()?;
            let mut index = 1.0;
            for (k, v) in pairs {
                for item in [k, v] {
                    let value = reply_to_lua(lua, item, resp3)?;
                    t.raw_set(index, value)?;
                    index += 1.0;
                }
            }
            Value::Table(t)
        }
        Reply::Map(pairs) => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                let key = reply_to_lua(lua, k, resp3)?;
                let value = reply_to_lua(lua, v, resp3)?;
                set_field(&map, key, value)?;
            }
            single_field(lua, "map", Value::Table(map))?
        }
        Reply::Double(d) if !resp3 => string(super::libutil::format_double(*d).as_bytes())?,
        Reply::Double(d) => single_field(lua, "double", Value::Number(*d))?,
        // Redis's Lua reads the RESP2 bulk text as a string, the RESP3 double as a number
        // (parsed back from the printed text, as Redis parses it).
        Reply::HumanDouble(d) if !resp3 => string(staykv_resp::format_human_double(*d).as_bytes())?,
        Reply::HumanDouble(d) => {
            let printed = staykv_resp::format_human_double(*d).parse().unwrap_or(*d);
            single_field(lua, "double", Value::Number(printed))?
        }
        Reply::Bool(b) if !resp3 => Value::Number(if *b { 1.0 } else { 0.0 }),
        Reply::Bool(b) => Value::Boolean(*b),
        Reply::Verbatim(_, text) | Reply::BigNumber(text) if !resp3 => string(text)?,
        Reply::Verbatim(format, text) => {
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(text)?)?;
            inner.raw_set("format", lua.create_string(format)?)?;
            single_field(lua, "verbatim_string", Value::Table(inner))?
        }
        Reply::BigNumber(digits) => single_field(lua, "big_number", string(digits)?)?,
    })
}

/// `lua_settable` with the keys a reply can produce (nil and NaN keys are skipped: Lua
/// would raise, and replies never contain them).
fn set_field(t: &Table, key: Value, value: Value) -> mlua::Result<()> {
    match &key {
        Value::Nil => Ok(()),
        Value::Number(n) if n.is_nan() => Ok(()),
        _ => t.raw_set(key, value),
    }
}

fn array(lua: &Lua, items: &[Reply], resp3: bool) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    for (i, item) in items.iter().enumerate() {
        let value = reply_to_lua(lua, item, resp3)?;
        t.raw_set((i + 1) as f64, value)?;
    }
    Ok(Value::Table(t))
}

/// What the error field of an error table says (`lua_isstring`: strings and numbers).
pub(crate) fn field_text(lua: &Lua, value: &Value) -> mlua::Result<Option<Vec<u8>>> {
    super::libutil::to_bytes(lua, Some(value))
}

/// A script's result as the reply to EVAL/FCALL. `resp3` is the script's `redis.setresp`.
pub(crate) fn lua_to_reply(lua: &Lua, value: &Value, resp3: bool) -> mlua::Result<Reply> {
    to_reply(lua, value, resp3, 0)
}

fn to_reply(lua: &Lua, value: &Value, resp3: bool, depth: usize) -> mlua::Result<Reply> {
    if depth > MAX_DEPTH {
        return Ok(Reply::Error("ERR reached lua stack limit".into()));
    }
    Ok(match value {
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Nil,
        Value::Integer(i) => Reply::Int(*i),
        Value::Number(n) => Reply::Int(c_cast_i64(*n)),
        Value::Table(t) => table_to_reply(lua, t, resp3, depth)?,
        _ => Reply::Nil,
    })
}

fn table_to_reply(lua: &Lua, t: &Table, resp3: bool, depth: usize) -> mlua::Result<Reply> {
    let err: Value = t.raw_get("err")?;
    if let Value::String(_) = err {
        let text = error_message(lua, t)?;
        return Ok(Reply::Error(String::from_utf8_lossy(&text).into_owned()));
    }
    if let Value::String(ok) = t.raw_get::<Value>("ok")? {
        return Ok(Reply::StatusOwned(String::from_utf8_lossy(&ok.as_bytes()).into_owned()));
    }
    match t.raw_get::<Value>("double")? {
        Value::Number(n) => return Ok(Reply::Double(n)),
        Value::Integer(i) => return Ok(Reply::Double(i as f64)),
        _ => {}
    }
    if let Value::String(big) = t.raw_get::<Value>("big_number")? {
        // Line breaks would end the RESP3 line early: Redis maps them to spaces.
        let digits =
            big.as_bytes().iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect::<Vec<u8>>();
        return Ok(Reply::BigNumber(Bytes::from(digits)));
    }
    if let Value::Table(v) = t.raw_get::<Value>("verbatim_string")? {
        if let (Value::String(format), Value::String(text)) =
            (v.raw_get::<Value>("format")?, v.raw_get::<Value>("string")?)
        {
            // Its first three bytes before any NUL (Redis reads a C string), padded with
            // spaces (`addReplyVerbatim`).
            let mut code = *b"   ";
            let format = format.as_bytes();
            let named = format.iter().take_while(|&&b| b != 0);
            code.iter_mut().zip(named).for_each(|(to, &from)| *to = from);
            return Ok(Reply::Verbatim(code, Bytes::copy_from_slice(&text.as_bytes())));
        }
    }
    if let Value::Table(map) = t.raw_get::<Value>("map")? {
        let mut pairs = Vec::new();
        for pair in map.pairs::<Value, Value>() {
            let (k, v) = pair?;
            pairs.push((
                super::libutil::deep(|| to_reply(lua, &k, resp3, depth + 1))?,
                super::libutil::deep(|| to_reply(lua, &v, resp3, depth + 1))?,
            ));
        }
        return Ok(Reply::Map(pairs));
    }
    if let Value::Table(set) = t.raw_get::<Value>("set")? {
        let mut items = Vec::new();
        for pair in set.pairs::<Value, Value>() {
            let (k, _) = pair?;
            items.push(super::libutil::deep(|| to_reply(lua, &k, resp3, depth + 1))?);
        }
        return Ok(Reply::Set(items));
    }
    let mut items = Vec::new();
    let mut j = 1.0;
    loop {
        let item: Value = t.raw_get(j)?;
        if item.is_nil() {
            break;
        }
        items.push(super::libutil::deep(|| to_reply(lua, &item, resp3, depth + 1))?);
        j += 1.0;
    }
    Ok(Reply::Array(items))
}

/// `luaExtractErrorInformation`'s message of an error table: its `err` field as text.
pub(crate) fn error_message(lua: &Lua, t: &Table) -> mlua::Result<Vec<u8>> {
    let err: Value = t.get("err")?;
    Ok(field_text(lua, &err)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn error_codes() {
        assert_eq!(error_text(b"-ERR wrong"), b"ERR wrong");
        assert_eq!(error_text(b"-WRONGTYPE Operation"), b"WRONGTYPE Operation");
        assert_eq!(error_text(b"-FOO"), b"ERR FOO");
        assert_eq!(error_text(b"plain"), b"ERR plain");
        assert_eq!(error_text(b"-ERR x\r\n"), b"ERR x");
        assert_eq!(error_text(b"-"), b"ERR ");
    }
}
