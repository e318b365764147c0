//! Number parsing and printing with Redis's exact rules.

pub use staykv_resp::{is_c_space, parse_i64};

/// Integer-valued text for replies.
pub fn i64_bytes(n: i64) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes())
}
