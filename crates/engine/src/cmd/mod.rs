//! Command families, one module each (as Redis's `t_string.c`, `db.c`, `server.c`...).
//! Each module exposes `COMMANDS`, its slice of the command table.

use bytes::Bytes;
use staykv_resp::Reply;

use crate::command::CommandTable;
use crate::errors;
use crate::num::parse_i64;

pub mod connection;
pub mod keys;
pub mod server;
pub mod strings;
pub mod transactions;

/// The full command table.
pub fn table() -> CommandTable {
    CommandTable::new(&[
        strings::COMMANDS,
        keys::COMMANDS,
        connection::COMMANDS,
        server::COMMANDS,
        transactions::COMMANDS,
    ])
}

/// Case-insensitive comparison of an argument with an (upper- or lower-case) keyword.
pub(crate) fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// An integer argument, or Redis's "not an integer" error.
pub(crate) fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(errors::not_integer)
}

/// The argument at `i` (the table's arity check guarantees presence; a miss is a syntax error).
pub(crate) fn arg(args: &[Bytes], i: usize) -> Result<&Bytes, Reply> {
    args.get(i).ok_or_else(errors::syntax)
}

/// A text argument for messages.
pub(crate) fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}
