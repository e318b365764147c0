//! Redis 7.0's error texts, in one place because clients and tests match on them.

use staykv_resp::Reply;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
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

pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> Reply {
    Reply::Error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        cmd.to_ascii_uppercase()
    ))
}

/// `ERR unknown command 'x', with args beginning with: 'a' 'b' `, as Redis prints it.
pub fn unknown_command(args: &[bytes::Bytes]) -> Reply {
    let mut text = String::from("ERR unknown command '");
    if let Some((name, rest)) = args.split_first() {
        text.push_str(&truncated(name, 128));
        text.push_str("', with args beginning with: ");
        for arg in rest {
            text.push('\'');
            text.push_str(&truncated(arg, 128));
            text.push_str("' ");
        }
    }
    Reply::Error(text)
}

fn truncated(data: &[u8], max: usize) -> String {
    String::from_utf8_lossy(data.get(..max.min(data.len())).unwrap_or_default()).into_owned()
}
