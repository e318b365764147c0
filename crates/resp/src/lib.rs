//! RESP, the Redis serialization protocol, without I/O.
//!
//! * [`parse()`] finds the next complete request in a read buffer — a RESP array of bulk
//!   strings, or an inline command — and reports how many bytes it used. It never
//!   allocates from a declared length (arrays preallocate at most 1024 slots, like Redis) and
//!   never waits forever on a line that cannot end: the limits below produce the same
//!   `Protocol error` texts Redis 7.0 sends before it closes the connection.
//! * [`Reply`] is a reply value and [`Reply::encode`] writes it in RESP2 or RESP3, into any
//!   [`ReplySink`]: a `BytesMut`, or a connection's [`Output`], which sends large values
//!   from where they are stored instead of copying them.
//!
//! The parser returns argument *ranges* into the buffer rather than copies, so the caller
//! can freeze the buffer once and hand out zero-copy [`bytes::Bytes`] slices.

mod output;
mod parse;
mod reply;

pub use output::{Output, ReplySink, SHARED_VALUE_MIN};
pub use parse::{is_c_space, parse, parse_i64, split_args, Limits, ParseError, Partial, Request};
pub use reply::{format_double, format_g, format_human_double, Protocol, Reply};
