//! Redis 7.0's error texts, in one place because clients and tests match on them.

use staykv_resp::Reply;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const DB_INDEX: &str = "ERR DB index is out of range";
pub const INVALID_EXPIRE: &str = "ERR invalid expire time in '{}' command";
pub const NOAUTH: &str = "NOAUTH Authentication required.";

pub fn err(text: &str) -> Reply {
    Reply::Error(text.to_string())
}

pub fn wrong_type() -> Reply {
    err(WRONGTYPE)
}

/// A command that may add data, with memory over `maxmemory` and nothing evictable.
pub fn oom() -> Reply {
    err("OOM command not allowed when used memory > 'maxmemory'.")
}

/// A reply that repeats stored data would pass `limit` bytes ([`crate::host::Host::reply_limit`]).
pub fn reply_too_large(limit: usize) -> Reply {
    Reply::Error(format!(
        "ERR the reply would pass {limit} bytes (the normal client-output-buffer-limit hard limit, \
         or 512mb while it is 0)"
    ))
}

pub fn syntax() -> Reply {
    err(SYNTAX)
}

pub fn not_integer() -> Reply {
    err(NOT_INTEGER)
}

pub fn not_float() -> Reply {
    err(NOT_FLOAT)
}

pub fn wrong_arity(name: &str) -> Reply {
    Reply::Error(format!("ERR wrong number of arguments for '{name}' command"))
}

pub fn invalid_expire(name: &str) -> Reply {
    Reply::Error(INVALID_EXPIRE.replace("{}", name))
}

/// Redis's `addReplySubcommandSyntaxError`: a known subcommand given the wrong arguments
/// past its table arity.
pub fn subcommand_syntax(sub: &[u8], cmd: &str) -> Reply {
    let help = format!("'. Try {} HELP.", cmd.to_ascii_uppercase());
    quoting_at_most(128, "ERR unknown subcommand or wrong number of arguments for '", sub, &help)
}

pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> Reply {
    quoting_at_most(128, "ERR unknown subcommand '", sub, &format!("'. Try {} HELP.", cmd.to_ascii_uppercase()))
}

/// An error that quotes a client's argument as Redis's `%s` does: its bytes as sent (not
/// made UTF-8), up to the first NUL.
pub fn quoting(before: &str, arg: &[u8], after: &str) -> Reply {
    quoting_at_most(usize::MAX, before, arg, after)
}

/// [`quoting`] at most `max` bytes of `arg` (`%.128s`).
pub fn quoting_at_most(max: usize, before: &str, arg: &[u8], after: &str) -> Reply {
    let mut text = before.as_bytes().to_vec();
    text.extend_from_slice(c_string(arg, max));
    text.extend_from_slice(after.as_bytes());
    error_bytes(text)
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' `, as Redis prints it: C's
/// `%.*s` stops at a NUL byte, and all the arguments share a 128-byte budget.
pub fn unknown_command(args: &[bytes::Bytes]) -> Reply {
    let Some((name, rest)) = args.split_first() else {
        return Reply::Error("ERR unknown command ''".into());
    };
    let mut listed = Vec::new();
    for arg in rest {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(c_string(arg, room));
        listed.extend_from_slice(b"' ");
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(c_string(name, 128));
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&listed);
    error_bytes(text)
}

/// An error reply of `text`, which need not be UTF-8.
fn error_bytes(text: Vec<u8>) -> Reply {
    match String::from_utf8(text) {
        Ok(text) => Reply::Error(text),
        Err(raw) => Reply::ErrorBytes(bytes::Bytes::from(raw.into_bytes())),
    }
}

/// At most `max` bytes of `data`, up to its first NUL.
fn c_string(data: &[u8], max: usize) -> &[u8] {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len()).min(max);
    data.get(..end).unwrap_or_default()
}
