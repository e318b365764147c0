//! The `cjson` library (lua-cjson 2.1.0, as Redis 7.0 bundles it): `cjson.encode`,
//! `cjson.decode`, `cjson.null` and the configuration functions.
//!
//! Behaviour follows the C library: numbers are printed with `%.14g`; a table is a JSON array
//! when all its keys are positive integers (holes become `null`, excessively sparse arrays are
//! an error), otherwise an object in Lua's `next` order; `/` is escaped; numbers are parsed
//! with C's `strtod`, so hexadecimal, `nan` and `inf` are accepted; nesting is limited to 1000
//! both ways. Error texts are the library's.

use mlua::{Lua, Table, Value};

use super::libutil::{arg_error, lib_table, results, to_bytes, type_error, type_name, LibResult};

/// The configuration a script can change with `cjson.encode_*`/`decode_*` (per Lua state, as
/// in C).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    encode_max_depth: i64,
    decode_max_depth: i64,
    precision: usize,
    encode_invalid_numbers: bool,
    decode_invalid_numbers: bool,
    keep_buffer: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            precision: 14,
            encode_invalid_numbers: false,
            decode_invalid_numbers: true,
            keep_buffer: true,
        }
    }
}

fn config(lua: &Lua) -> Config {
    lua.app_data_ref::<Config>().map(|c| *c).unwrap_or_default()
}

fn set_config(lua: &Lua, f: impl FnOnce(&mut Config)) {
    let mut c = config(lua);
    f(&mut c);
    lua.set_app_data(c);
}

pub(crate) fn table(lua: &Lua) -> mlua::Result<Table> {
    lua.set_app_data(Config::default());
    let t = lib_table(
        lua,
        &[
            ("encode", encode),
            ("decode", decode),
            ("encode_sparse_array", encode_sparse_array),
            ("encode_max_depth", encode_max_depth),
            ("decode_max_depth", decode_max_depth),
            ("encode_number_precision", encode_number_precision),
            ("encode_keep_buffer", encode_keep_buffer),
            ("encode_invalid_numbers", encode_invalid_numbers),
            ("decode_invalid_numbers", decode_invalid_numbers),
        ],
    )?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

// ----------------------------------------------------------------------------- encoding

fn encode(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    if args.len() != 1 {
        return Ok(Err(arg_error(1, "encode", "expected 1 argument")));
    }
    let cfg = config(lua);
    let mut out = Vec::new();
    let value = args.first().cloned().unwrap_or(Value::Nil);
    if let Err(message) = append_value(lua, &cfg, &value, 0, &mut out)? {
        return Ok(Err(message));
    }
    Ok(results([Value::String(lua.create_string(out)?)]))
}

type Step = Result<(), String>;

fn exception(value: &Value, reason: &str) -> String {
    format!("Cannot serialise {}: {reason}", type_name(Some(value)))
}

fn append_value(_lua: &Lua, cfg: &Config, value: &Value, depth: i64, out: &mut Vec<u8>) -> mlua::Result<Step> {
    match value {
        Value::String(s) => append_string(&s.as_bytes(), out),
        Value::Integer(_) | Value::Number(_) => return Ok(append_number(cfg, value, out)),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(ud) if ud.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth {
                return Ok(Err(format!("Cannot serialise, excessive nesting ({depth})")));
            }
            let length = match array_length(cfg, t)? {
                Ok(n) => n,
                Err(message) => return Ok(Err(message)),
            };
            if length > 0 {
                out.push(b'[');
                for i in 1..=length {
                    if i > 1 {
                        out.push(b',');
                    }
                    let item: Value = t.raw_get(i)?;
                    if let Err(message) = super::libutil::deep(|| append_value(_lua, cfg, &item, depth, out))? {
                        return Ok(Err(message));
                    }
                }
                out.push(b']');
            } else {
                out.push(b'{');
                let mut first = true;
                for pair in t.pairs::<Value, Value>() {
                    let (key, item) = pair?;
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match &key {
                        Value::Integer(_) | Value::Number(_) => {
                            out.push(b'"');
                            if let Err(message) = append_number(cfg, &key, out) {
                                return Ok(Err(message));
                            }
                            out.extend_from_slice(b"\":");
                        }
                        Value::String(s) => {
                            append_string(&s.as_bytes(), out);
                            out.push(b':');
                        }
                        other => return Ok(Err(exception(other, "table key must be a number or string"))),
                    }
                    if let Err(message) = super::libutil::deep(|| append_value(_lua, cfg, &item, depth, out))? {
                        return Ok(Err(message));
                    }
                }
                out.push(b'}');
            }
        }
        other => return Ok(Err(exception(other, "type not supported"))),
    }
    Ok(Ok(()))
}

fn number_of(value: &Value) -> f64 {
    match value {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        _ => 0.0,
    }
}

fn append_number(cfg: &Config, value: &Value, out: &mut Vec<u8>) -> Step {
    let n = number_of(value);
    if !cfg.encode_invalid_numbers && (n.is_nan() || n.is_infinite()) {
        return Err(exception(value, "must not be NaN or Inf"));
    }
    let text = if n.is_nan() {
        if n.is_sign_negative() {
            "-nan".to_string()
        } else {
            "nan".to_string()
        }
    } else if n.is_infinite() {
        if n > 0.0 {
            "inf".to_string()
        } else {
            "-inf".to_string()
        }
    } else {
        super::libutil::format_g(n, cfg.precision)
    };
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn append_string(s: &[u8], out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// `lua_array_length`: the array length when every key is an integer >= 1, `0` for an
/// object (or an empty table), or the sparse-array error.
fn array_length(cfg: &Config, t: &Table) -> mlua::Result<Result<usize, String>> {
    let mut max: f64 = 0.0;
    let mut items: i64 = 0;
    for pair in t.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let k = match key {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(Ok(0)),
        };
        if k.floor() == k && k >= 1.0 {
            if k > max {
                max = k;
            }
            items += 1;
        } else {
            return Ok(Ok(0));
        }
    }
    let max_int = super::libutil::c_cast_i32(max) as i64;
    if cfg.sparse_ratio > 0 && max_int > items * cfg.sparse_ratio && max_int > cfg.sparse_safe {
        if !cfg.sparse_convert {
            return Ok(Err("Cannot serialise table: excessively sparse array".into()));
        }
        return Ok(Ok(0));
    }
    Ok(Ok(usize::try_from(max_int).unwrap_or(0)))
}

// ----------------------------------------------------------------------------- decoding

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    String,
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Token {
    fn name(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::String => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Boolean(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(what) => what,
        }
    }
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    /// The last string token's bytes.
    string: Vec<u8>,
    depth: i64,
    cfg: Config,
}

impl Parser<'_> {
    /// The byte at `i`, with the C string's terminating NUL past the end.
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    /// The next token and the index where it starts.
    fn next(&mut self) -> (Token, usize) {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let start = self.pos;
        let c = self.at(self.pos);
        let single = match c {
            b'{' => Some(Token::ObjBegin),
            b'}' => Some(Token::ObjEnd),
            b'[' => Some(Token::ArrBegin),
            b']' => Some(Token::ArrEnd),
            b',' => Some(Token::Comma),
            b':' => Some(Token::Colon),
            _ => None,
        };
        if let Some(token) = single {
            self.pos += 1;
            return (token, start);
        }
        if c == 0 {
            return (Token::End, start);
        }
        let rest = self.data.get(self.pos..).unwrap_or_default();
        match c {
            b'"' => {
                let token = self.string_token();
                // A string error names the character where it was found.
                let at = if matches!(token, Token::Error(_)) { self.pos } else { start };
                (token, at)
            }
            b'-' | b'0'..=b'9' => {
                if !self.cfg.decode_invalid_numbers && self.invalid_number() {
                    return (Token::Error("invalid number"), start);
                }
                (self.number_token(), start)
            }
            _ if rest.starts_with(b"true") => {
                self.pos += 4;
                (Token::Boolean(true), start)
            }
            _ if rest.starts_with(b"false") => {
                self.pos += 5;
                (Token::Boolean(false), start)
            }
            _ if rest.starts_with(b"null") => {
                self.pos += 4;
                (Token::Null, start)
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+'
                if self.cfg.decode_invalid_numbers && self.invalid_number() =>
            {
                (self.number_token(), start)
            }
            _ => (Token::Error("invalid token"), start),
        }
    }

    /// `json_is_invalid_number`: numbers strtod accepts but JSON does not.
    fn invalid_number(&self) -> bool {
        let mut i = self.pos;
        if self.at(i) == b'+' {
            return true;
        }
        if self.at(i) == b'-' {
            i += 1;
        }
        if self.at(i) == b'0' {
            let c2 = self.at(i + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        } else if self.at(i) <= b'9' {
            return false;
        }
        let word = self.data.get(i..i + 3).unwrap_or_default();
        word.eq_ignore_ascii_case(b"inf") || word.eq_ignore_ascii_case(b"nan")
    }

    fn number_token(&mut self) -> Token {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let rest = rest.split(|&c| c == 0).next().unwrap_or_default();
        match strtod(rest) {
            Some((value, used)) if used > 0 => {
                self.pos += used;
                Token::Number(value)
            }
            _ => Token::Error("invalid number"),
        }
    }

    fn string_token(&mut self) -> Token {
        self.pos += 1;
        self.string.clear();
        loop {
            let c = self.at(self.pos);
            match c {
                b'"' => break,
                0 => return Token::Error("unexpected end of string"),
                b'\\' => {
                    let escaped = match self.at(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => b'\x08',
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => b'\x0c',
                        b'r' => b'\r',
                        b'u' => {
                            if self.unicode_escape() {
                                continue;
                            }
                            return Token::Error("invalid unicode escape code");
                        }
                        _ => return Token::Error("invalid escape code"),
                    };
                    self.string.push(escaped);
                    self.pos += 2;
                }
                c => {
                    self.string.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        Token::String
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0u32;
        for i in 0..4 {
            let d = char::from(self.at(at + i)).to_digit(16)?;
            v = (v << 4) | d;
        }
        Some(v)
    }

    /// `\uXXXX` (and surrogate pairs) to UTF-8; advances past the escape on success.
    fn unicode_escape(&mut self) -> bool {
        let Some(mut code) = self.hex4(self.pos + 2) else { return false };
        let mut len = 6;
        if code & 0xF800 == 0xD800 {
            if code & 0x400 != 0 {
                return false;
            }
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else { return false };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            code = (((code & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let mut buf = [0u8; 4];
        let n = match code {
            0..=0x7F => {
                buf[0] = code as u8;
                1
            }
            0x80..=0x7FF => {
                buf[0] = ((code >> 6) | 0xC0) as u8;
                buf[1] = ((code & 0x3F) | 0x80) as u8;
                2
            }
            0x800..=0xFFFF => {
                buf[0] = ((code >> 12) | 0xE0) as u8;
                buf[1] = (((code >> 6) & 0x3F) | 0x80) as u8;
                buf[2] = ((code & 0x3F) | 0x80) as u8;
                3
            }
            _ => {
                buf[0] = ((code >> 18) | 0xF0) as u8;
                buf[1] = (((code >> 12) & 0x3F) | 0x80) as u8;
                buf[2] = (((code >> 6) & 0x3F) | 0x80) as u8;
                buf[3] = ((code & 0x3F) | 0x80) as u8;
                4
            }
        };
        self.string.extend_from_slice(buf.get(..n).unwrap_or_default());
        self.pos += len;
        true
    }

    fn error(&self, expected: &str, token: Token, index: usize) -> String {
        format!("Expected {expected} but found {} at character {}", token.name(), index + 1)
    }

    fn value(&mut self, lua: &Lua, token: Token, index: usize) -> mlua::Result<Result<Value, String>> {
        Ok(Ok(match token {
            Token::String => Value::String(lua.create_string(&self.string)?),
            Token::Number(n) => Value::Number(n),
            Token::Boolean(b) => Value::Boolean(b),
            Token::Null => Value::NULL,
            Token::ObjBegin | Token::ArrBegin => {
                self.depth += 1;
                if self.depth > self.cfg.decode_max_depth {
                    return Ok(Err(format!(
                        "Found too many nested data structures ({}) at character {}",
                        self.depth,
                        index + 1
                    )));
                }
                let parsed =
                    super::libutil::deep(|| if token == Token::ObjBegin { self.object(lua) } else { self.array(lua) })?;
                self.depth -= 1;
                match parsed {
                    Ok(t) => Value::Table(t),
                    Err(e) => return Ok(Err(e)),
                }
            }
            other => return Ok(Err(self.error("value", other, index))),
        }))
    }

    fn object(&mut self, lua: &Lua) -> mlua::Result<Result<Table, String>> {
        let t = lua.create_table()?;
        let (mut token, mut index) = self.next();
        if token == Token::ObjEnd {
            return Ok(Ok(t));
        }
        loop {
            if token != Token::String {
                return Ok(Err(self.error("object key string", token, index)));
            }
            let key = lua.create_string(&self.string)?;
            let (colon, colon_at) = self.next();
            if colon != Token::Colon {
                return Ok(Err(self.error("colon", colon, colon_at)));
            }
            let (vt, vi) = self.next();
            let value = match self.value(lua, vt, vi)? {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            t.raw_set(key, value)?;
            let (next, next_at) = self.next();
            if next == Token::ObjEnd {
                return Ok(Ok(t));
            }
            if next != Token::Comma {
                return Ok(Err(self.error("comma or object end", next, next_at)));
            }
            (token, index) = self.next();
        }
    }

    fn array(&mut self, lua: &Lua) -> mlua::Result<Result<Table, String>> {
        let t = lua.create_table()?;
        let (mut token, mut index) = self.next();
        if token == Token::ArrEnd {
            return Ok(Ok(t));
        }
        let mut i: i64 = 1;
        loop {
            let value = match self.value(lua, token, index)? {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            t.raw_set(i, value)?;
            i += 1;
            let (next, next_at) = self.next();
            if next == Token::ArrEnd {
                return Ok(Ok(t));
            }
            if next != Token::Comma {
                return Ok(Err(self.error("comma or array end", next, next_at)));
            }
            (token, index) = self.next();
        }
    }
}

fn decode(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    if args.len() != 1 {
        return Ok(Err(arg_error(1, "decode", "expected 1 argument")));
    }
    let Some(data) = to_bytes(lua, args.first())? else {
        return Ok(Err(type_error(args, 1, "decode", "string")));
    };
    if data.len() >= 2 && (data.first() == Some(&0) || data.get(1) == Some(&0)) {
        return Ok(Err("JSON parser does not support UTF-16 or UTF-32".into()));
    }
    let mut parser = Parser { data: &data, pos: 0, string: Vec::new(), depth: 0, cfg: config(lua) };
    let (token, index) = parser.next();
    let value = match parser.value(lua, token, index)? {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let (end, end_at) = parser.next();
    if end != Token::End {
        return Ok(Err(parser.error("the end", end, end_at)));
    }
    Ok(results([value]))
}

/// C's `strtod` on the start of `s`: the value and how many bytes it used (`None`: no number).
fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    Some(crate::zset::strtod(s)).filter(|&(_, used)| used > 0)
}

// ------------------------------------------------------------------------ configuration

fn bool_arg(args: &[Value], i: usize) -> Option<bool> {
    match args.get(i) {
        Some(Value::Boolean(b)) => Some(*b),
        Some(Value::String(s)) => match s.as_bytes().as_ref() {
            b"on" | b"true" => Some(true),
            b"off" | b"false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn int_arg(lua: &Lua, args: &[Value], i: usize) -> mlua::Result<Option<i64>> {
    Ok(super::libutil::to_number(lua, args.get(i))?.map(super::libutil::c_cast_i64))
}

fn encode_sparse_array(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    let convert = bool_arg(args, 0);
    let ratio = int_arg(lua, args, 1)?;
    let safe = int_arg(lua, args, 2)?;
    set_config(lua, |c| {
        if let Some(v) = convert {
            c.sparse_convert = v;
        }
        if let Some(v) = ratio.filter(|v| *v >= 0) {
            c.sparse_ratio = v;
        }
        if let Some(v) = safe.filter(|v| *v >= 0) {
            c.sparse_safe = v;
        }
    });
    let c = config(lua);
    Ok(results([
        Value::Boolean(c.sparse_convert),
        Value::Number(c.sparse_ratio as f64),
        Value::Number(c.sparse_safe as f64),
    ]))
}

fn encode_max_depth(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    if let Some(v) = int_arg(lua, args, 0)?.filter(|v| *v >= 1) {
        set_config(lua, |c| c.encode_max_depth = v);
    }
    Ok(results([Value::Number(config(lua).encode_max_depth as f64)]))
}

fn decode_max_depth(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    if let Some(v) = int_arg(lua, args, 0)?.filter(|v| *v >= 1) {
        set_config(lua, |c| c.decode_max_depth = v);
    }
    Ok(results([Value::Number(config(lua).decode_max_depth as f64)]))
}

fn encode_number_precision(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    if let Some(v) = int_arg(lua, args, 0)? {
        if !(1..=14).contains(&v) {
            return Ok(Err(arg_error(1, "encode_number_precision", "expected integer between 1 and 14")));
        }
        set_config(lua, |c| c.precision = usize::try_from(v).unwrap_or(14));
    }
    Ok(results([Value::Number(config(lua).precision as f64)]))
}

fn encode_keep_buffer(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    if let Some(v) = bool_arg(args, 0) {
        set_config(lua, |c| c.keep_buffer = v);
    }
    Ok(results([Value::Boolean(config(lua).keep_buffer)]))
}

fn encode_invalid_numbers(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    if let Some(v) = bool_arg(args, 0) {
        set_config(lua, |c| c.encode_invalid_numbers = v);
    }
    Ok(results([Value::Boolean(config(lua).encode_invalid_numbers)]))
}

fn decode_invalid_numbers(lua: &Lua, args: &[Value]) -> mlua::Result<LibResult> {
    if let Some(v) = bool_arg(args, 0) {
        set_config(lua, |c| c.decode_invalid_numbers = v);
    }
    Ok(results([Value::Boolean(config(lua).decode_invalid_numbers)]))
}

#[cfg(test)]
mod tests {
    use super::strtod;

    #[test]
    fn strtod_like_c() {
        assert_eq!(strtod(b"12abc"), Some((12.0, 2)));
        assert_eq!(strtod(b"-1.5e3,"), Some((-1500.0, 6)));
        assert_eq!(strtod(b"1e"), Some((1.0, 1)));
        assert_eq!(strtod(b"0x10"), Some((16.0, 4)));
        assert_eq!(strtod(b"0x"), Some((0.0, 1)));
        assert_eq!(strtod(b"Infinity"), Some((f64::INFINITY, 8)));
        assert!(strtod(b"nan").is_some_and(|(v, n)| v.is_nan() && n == 3));
        assert_eq!(strtod(b"-"), None);
        assert_eq!(strtod(b".5"), Some((0.5, 2)));
        assert_eq!(strtod(b"5."), Some((5.0, 2)));
    }
}
