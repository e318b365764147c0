//! Redis RDB files (format version 10, as written by Redis 7.0): a streaming reader,
//! a streaming writer, and `DUMP`/`RESTORE` payloads.
//!
//! # The format
//!
//! An RDB file is the 9-byte header `REDIS` + four ASCII digits (the version), then a
//! sequence of items, each introduced by one byte:
//!
//! | byte | meaning |
//! |---|---|
//! | 255 `EOF` | end of data; from version 5 on, followed by an 8-byte little-endian CRC-64 (Jones) of every byte before it (0 = not computed) |
//! | 254 `SELECTDB` | length: the database of the keys that follow |
//! | 253 `EXPIRETIME` | 4-byte LE seconds: expiry of the next key (old files) |
//! | 252 `EXPIRETIME_MS` | 8-byte LE milliseconds: expiry of the next key |
//! | 251 `RESIZEDB` | two lengths: key and expire counts of the current db (a hint) |
//! | 250 `AUX` | two strings: a metadata field (`redis-ver`, `ctime`, …) |
//! | 249 `FREQ` | 1 byte: LFU counter of the next key |
//! | 248 `IDLE` | length: LRU idle seconds of the next key |
//! | 247 `MODULE_AUX` | module id, `when`, then module opcodes up to their EOF |
//! | 246 `FUNCTION` | Redis 7.0-rc function library (name, engine, description, code) |
//! | 245 `FUNCTION2` | string: a Redis Function library's source |
//! | 0–21 | object type: a key (string) then the value in that type's encoding |
//!
//! **Lengths** use the top two bits of their first byte: `00` 6-bit, `01` 14-bit
//! (big-endian with the next byte), `10000000` then 32-bit big-endian, `10000001` then
//! 64-bit big-endian. `11` marks a special **string** encoding in the low six bits:
//! 0/1/2 an 8/16/32-bit little-endian integer (the string is its decimal form),
//! 3 an LZF-compressed string (compressed length, uncompressed length, data).
//!
//! **Object types** decoded here: 0 string; 1 list, 2 set, 4 hash (plain sequences
//! of strings); 3 zset with text scores, 5 zset with binary double scores; 9 zipmap
//! hash, 10 ziplist list, 11 intset, 12 ziplist zset, 13 ziplist hash, 14 quicklist of
//! ziplists; 16 listpack hash, 17 listpack zset, 18 quicklist of listpacks (container
//! 2) or plain elements (container 1), 20 listpack set (Redis 7.2); streams 15, 19 and 21
//! (see the `stream` module for their layout). Compact encodings
//! (ziplist, listpack, intset, zipmap) are strings holding a blob; each decoder checks
//! every bound, the header byte counts and element counts.
//!
//! **Skipped**: module values of type 7 are skipped through the module opcode scheme and
//! reported as [`RdbItem::Unsupported`]. Module values of type 6 cannot be skipped
//! without the module and stop reading with [`RdbError::Unsupported`]. Module AUX
//! data (247) is skipped silently. Function libraries (245, and the 7.0-rc format 246)
//! are surfaced as [`RdbItem::Aux`] with key `"function"` and the library source
//! (for 246 rebuilt as `#!<engine> name=<name>\n<code>`, as Redis does).
//!
//! Keys holding an empty collection are skipped by the reader, as Redis does (a stream
//! with no entries is not empty in this sense: Redis keeps it).
//! Duplicate members/fields inside one value are passed through as read.
//!
//! # Robustness
//!
//! Nothing read from a file is trusted: lengths never drive an allocation directly
//! (preallocation is capped and buffers grow with the data actually read), every blob
//! access is bounds-checked, and truncated or corrupt input produces an [`RdbError`]
//! that says what was being read and at which byte offset — never a panic.
//!
//! # Writing
//!
//! [`RdbWriter`] writes version 10 files that `redis-server` 7.0 loads and
//! `redis-check-rdb` accepts; see its docs for the encodings chosen.
//! [`encode_dump_payload`] / [`decode_dump_payload`] handle `DUMP` payloads.

mod crc64;
mod dump;
mod encodings;
mod lzf;
mod reader;
mod stream;
mod writer;

use std::io;

pub use crate::crc64::crc64;
pub use crate::dump::{
    decode_dump_payload, decode_functions_payload, encode_dump_payload, encode_functions_payload, FunctionsPayloadError,
};
pub use crate::encodings::{listpack_elem_len, listpack_int_len};
pub use crate::reader::{all_distinct, Location, Picked, RdbItem, RdbReader};
pub use crate::stream::{
    RdbConsumer, RdbPending, RdbStream, RdbStreamEntry, RdbStreamGroup, RdbStreamId, RdbStreamNode,
};
pub use crate::writer::{keyless_file, Layout, RdbWriter};

/// The RDB version this crate writes (Redis 7.0).
pub const RDB_VERSION: u16 = 10;
/// The newest RDB version the reader accepts.
pub const MAX_SUPPORTED_VERSION: u32 = 10;

/// Opcodes that may appear where an object type byte is expected.
pub mod opcode {
    /// Redis Function library (Redis 7.0 GA and later).
    pub const FUNCTION2: u8 = 245;
    /// Redis Function library in the 7.0-rc1/rc2 format.
    pub const FUNCTION_PRE_GA: u8 = 246;
    /// Module auxiliary data.
    pub const MODULE_AUX: u8 = 247;
    /// LRU idle time (seconds) of the next key.
    pub const IDLE: u8 = 248;
    /// LFU frequency of the next key.
    pub const FREQ: u8 = 249;
    /// Auxiliary field.
    pub const AUX: u8 = 250;
    /// Hash table size hint.
    pub const RESIZEDB: u8 = 251;
    /// Expiry of the next key, milliseconds.
    pub const EXPIRETIME_MS: u8 = 252;
    /// Expiry of the next key, seconds.
    pub const EXPIRETIME: u8 = 253;
    /// Database selector.
    pub const SELECTDB: u8 = 254;
    /// End of the data (then the checksum).
    pub const EOF: u8 = 255;
}

/// RDB object type bytes.
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;

    /// Whether `t` is an object type this crate knows (decodes or skips).
    pub fn is_object_type(t: u8) -> bool {
        matches!(t, 0..=7 | 9..=21)
    }
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbValue {
    String(Vec<u8>),
    /// Elements in list order.
    List(Vec<Vec<u8>>),
    /// Members in file order.
    Set(Vec<Vec<u8>>),
    /// Field/value pairs in file order.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// Member/score pairs in file order (not necessarily sorted).
    SortedSet(Vec<(Vec<u8>, f64)>),
    /// A stream with its consumer groups (types 15, 19, 21; written as 19).
    Stream(Box<RdbStream>),
}

/// A key read from an RDB file.
#[derive(Debug, Clone, PartialEq)]
pub struct RdbEntry {
    /// Database number (from the last SELECTDB; 0 before any).
    pub db: u32,
    pub key: Vec<u8>,
    pub value: RdbValue,
    /// Absolute expiry in Unix milliseconds (negative times in the file read as 0).
    pub expire_at_ms: Option<u64>,
    /// LRU idle time in seconds (files saved under an LRU maxmemory policy).
    pub lru_idle_secs: Option<u64>,
    /// LFU counter (files saved under an LFU maxmemory policy).
    pub lfu_freq: Option<u8>,
}

/// A key whose value was read as it lies in the file, not decoded: a compaction copies the
/// keys nothing changed since the last snapshot this way (see [`Pick::Raw`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub db: u32,
    pub key: Vec<u8>,
    /// Whether the file held the key LZF-compressed. A key it held plain is written back
    /// plain, without trying to compress it again: for a session store's random 48-byte
    /// keys that try always fails, and it was 8% of a compaction's CPU.
    pub key_compressed: bool,
    /// The RDB object type byte.
    pub type_id: u8,
    /// The value's bytes, as [`RdbWriter::write_raw_entry`] writes them back.
    pub body: Vec<u8>,
    /// Absolute expiry in Unix milliseconds.
    pub expire_at_ms: Option<u64>,
}

/// What [`RdbReader::next_item_pick`] does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Decode the value ([`RdbItem::Entry`]).
    Decode,
    /// Step over it: nothing is returned.
    Skip,
    /// Return its bytes as they are ([`Picked::Raw`]); a module value is decoded instead
    /// (and read as [`RdbItem::Unsupported`]).
    Raw,
    /// Step over it and return where it starts ([`Picked::Located`]), to read it later
    /// with [`RdbReader::read_located`].
    Locate,
}

/// Errors of this crate. Offsets are byte offsets from the start of the file (or of
/// the DUMP payload) at which the failing field starts.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    #[error("I/O error at byte offset {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("unexpected end of RDB data at byte offset {offset} while reading {what}")]
    Truncated { offset: u64, what: &'static str },
    #[error("not an RDB file: header is {found:?}, expected \"REDIS\" followed by 4 digits")]
    BadHeader { found: String },
    #[error(
        "unsupported RDB version {version}: this reader handles versions 1 to 10 \
         (Redis 7.0 and older); the file was written by a newer Redis"
    )]
    UnsupportedVersion { version: u32 },
    #[error("corrupt RDB data at byte offset {offset}: {msg}")]
    Corrupt { offset: u64, msg: String },
    #[error(
        "RDB checksum mismatch at byte offset {offset}: the trailer says {stored:#018x} \
         but the data hashes to {computed:#018x}"
    )]
    ChecksumMismatch { offset: u64, stored: u64, computed: u64 },
    #[error("unsupported RDB content at byte offset {offset}: {msg}")]
    Unsupported { offset: u64, msg: String },
    /// A DUMP payload with a bad footer; the message is the one Redis replies with.
    #[error("DUMP payload version or checksum are wrong")]
    BadDumpPayload,
}

impl RdbError {
    /// The byte offset the error refers to, if any.
    pub fn offset(&self) -> Option<u64> {
        match self {
            RdbError::Io { offset, .. }
            | RdbError::Truncated { offset, .. }
            | RdbError::Corrupt { offset, .. }
            | RdbError::ChecksumMismatch { offset, .. }
            | RdbError::Unsupported { offset, .. } => Some(*offset),
            RdbError::BadHeader { .. } => Some(0),
            RdbError::UnsupportedVersion { .. } => Some(5),
            RdbError::BadDumpPayload => None,
        }
    }
}
