//! Value types stored under a key.

use crate::small_bytes::{KeyBytes, SmallBytes, SHARE_FROM};

pub type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
pub type HashSet<K> = hashbrown::HashSet<K, foldhash::fast::RandomState>;

/// A stored value. Every Redis type StayKV supports is one variant.
#[derive(Debug, Clone, PartialEq)]
///
/// Every variant but `Str` is boxed: the value sits in each key's entry, and a short string
/// (inline in its `SmallBytes`) must not pay for the size of a collection's header.
pub enum Value {
    Str(SmallBytes),
    List(Box<crate::list::List>),
    Hash(Box<crate::hash::Hash>),
    Set(Box<crate::set::Set>),
    ZSet(Box<crate::zset::ZSet>),
    Stream(Box<crate::stream::Stream>),
}

/// What a string too long to inline costs beside its bytes: the box and the `Bytes`.
const BOXED_STRING_OVERHEAD: usize = 40;
/// What a string of `SHARE_FROM` bytes or more adds once it has been read: the shared header
/// of its `Bytes` (`small_bytes::read_out`).
const SHARED_HEADER: usize = 24;

/// Redis 7.0's thresholds for reporting compact encodings of hashes (listpack) and sets
/// (intset): `hash-max-listpack-entries`, `hash-max-listpack-value`, `set-max-intset-entries`.
const HASH_LISTPACK_MAX_ENTRIES: usize = crate::hash::PAIRS_MAX;
pub(crate) const LISTPACK_MAX_VALUE: usize = 64;
const INTSET_MAX_ENTRIES: usize = crate::set::INTS_MAX;

/// The encoding parameters of Redis 7.0's config, at the values StayKV uses: its own layout
/// does not depend on them, only what `OBJECT ENCODING` (and DUMP's choice of RDB type)
/// reports, so they are fixed at Redis's defaults. CONFIG GET shows them; CONFIG SET
/// accepts only these values (a deploy script that states the defaults keeps working).
/// The `ziplist` names are Redis 7.0's aliases of the `listpack` ones.
pub const FIXED_ENCODING_CONFIG: [(&str, i64); 13] = [
    ("hash-max-listpack-entries", HASH_LISTPACK_MAX_ENTRIES as i64),
    ("hash-max-ziplist-entries", HASH_LISTPACK_MAX_ENTRIES as i64),
    ("hash-max-listpack-value", LISTPACK_MAX_VALUE as i64),
    ("hash-max-ziplist-value", LISTPACK_MAX_VALUE as i64),
    ("set-max-intset-entries", INTSET_MAX_ENTRIES as i64),
    ("zset-max-listpack-entries", crate::zset::LISTPACK_MAX_ENTRIES as i64),
    ("zset-max-ziplist-entries", crate::zset::LISTPACK_MAX_ENTRIES as i64),
    ("zset-max-listpack-value", crate::zset::LISTPACK_MAX_VALUE as i64),
    ("zset-max-ziplist-value", crate::zset::LISTPACK_MAX_VALUE as i64),
    // Lists: 7.0 always reports `quicklist`; these size its nodes, which StayKV has not.
    ("list-max-listpack-size", -2),
    ("list-max-ziplist-size", -2),
    ("list-compress-depth", 0),
    ("hll-sparse-max-bytes", crate::hll::SPARSE_MAX_BYTES as i64),
];

impl Value {
    /// The name `TYPE` answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The encoding `OBJECT ENCODING` answers, by Redis 7.0's rules for when it would use
    /// each representation (StayKV's own layout differs; clients only see the name).
    pub fn encoding(&self) -> &'static str {
        self.encoding_with(Encoding::Auto)
    }

    /// The encoding Redis 7.0 would report, given how the value was built (`hint`): Redis
    /// keeps a string made by APPEND or SETRANGE `raw`, and never turns a hash or set that
    /// outgrew its compact form back into it.
    pub fn encoding_with(&self, hint: Encoding) -> &'static str {
        match (self, hint) {
            (Value::Str(_), Encoding::Raw) => "raw",
            (Value::Str(s), Encoding::Embstr) if s.len() <= 44 => "embstr",
            (Value::Str(s), Encoding::Auto) if s.len() <= 20 && crate::num::parse_i64(s).is_some() => "int",
            (Value::Str(s), Encoding::Auto) if s.len() <= 44 => "embstr",
            (Value::Str(_), _) => "raw",
            // Redis 7.0 keeps every list as a quicklist (listpack lists came in 7.2).
            (Value::List(_), _) => "quicklist",
            (Value::Hash(_), Encoding::Big) => "hashtable",
            (Value::Hash(h), _) if h.len() > HASH_LISTPACK_MAX_ENTRIES || h.longest_set() > LISTPACK_MAX_VALUE => {
                "hashtable"
            }
            (Value::Hash(_), _) => "listpack",
            (Value::Set(_), Encoding::Big) => "hashtable",
            (Value::Set(s), _) if s.content_fits_ints() => "intset",
            (Value::Set(_), _) => "hashtable",
            (Value::ZSet(z), _) if z.is_listpack() => "listpack",
            (Value::ZSet(_), _) => "skiplist",
            (Value::Stream(_), _) => "stream",
        }
    }

    /// Whether a hash or set has outgrown the compact encoding (it then stays out of it).
    pub fn outgrew_compact(&self) -> bool {
        match self {
            Value::Hash(h) => h.len() > HASH_LISTPACK_MAX_ENTRIES || h.longest_set() > LISTPACK_MAX_VALUE,
            Value::Set(s) => !s.content_fits_ints(),
            _ => false,
        }
    }

    /// Approximate heap bytes for `MEMORY USAGE`: lists, hashes, sets and streams are
    /// estimated from their first `samples` elements (all of them with 0), as Redis samples; a short string
    /// stored inline costs nothing beyond its entry.
    pub fn memory_usage(&self, samples: usize) -> usize {
        match self {
            Value::Str(s) if s.is_inline() => 0,
            Value::Str(s) if s.len() < SHARE_FROM => s.len() + BOXED_STRING_OVERHEAD,
            Value::Str(s) => s.len() + BOXED_STRING_OVERHEAD + SHARED_HEADER,
            Value::List(l) => l.packed_bytes().unwrap_or_else(|| {
                sampled(l.iter(), samples, |e| std::mem::size_of::<KeyBytes>() + KeyBytes::heap_bytes(e.len()))
            }),
            Value::Hash(h) => sampled(h.iter(), samples, |(f, v)| h.pair_bytes(f, v)),
            Value::Set(s) => s.memory_usage(samples),
            Value::ZSet(z) => z.heap_size(),
            Value::Stream(s) => s.memory_usage(samples),
        }
    }

    /// Whether a collection became empty (Redis deletes empty collections; a stream stays,
    /// empty or not, as in Redis).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) | Value::Stream(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }
}

/// How a value was built, as far as `OBJECT ENCODING` can tell (kept beside the entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Decided by the content, as when Redis first creates the object.
    #[default]
    Auto,
    /// A string edited in place (APPEND, SETRANGE, SETBIT...): Redis keeps it `raw`.
    Raw,
    /// A string Redis builds as a fresh short string (INCRBYFLOAT): `embstr`, never `int`.
    Embstr,
    /// A hash or set that outgrew its compact encoding.
    Big,
}

/// The heap bytes of a collection estimated from its first `samples` items (all of them
/// with 0), as Redis's `MEMORY USAGE` samples.
pub(crate) fn sampled<T>(items: impl ExactSizeIterator<Item = T>, samples: usize, size: impl Fn(T) -> usize) -> usize {
    let len = items.len();
    let take = if samples == 0 { len } else { samples.min(len) };
    let seen: usize = items.take(take).map(size).sum();
    seen.checked_div(take).map_or(0, |average| average * len)
}

/// A collection type, for the typed access helpers of [`crate::Ctx`]: how to see it inside a
/// [`Value`] and how to make an empty one.
pub trait Collection: Sized {
    /// Hashes and sets: Redis reports a compact encoding until they outgrow it, so a write
    /// to one is checked at commit ([`Value::outgrew_compact`]).
    const HAS_COMPACT_ENCODING: bool = false;
    fn view(value: &mut Value) -> Option<&mut Self>;
    fn empty() -> Value;
}

/// [`Collection`] for the type that the `Value` variant `$variant` boxes.
macro_rules! collection {
    ($type:ty, $variant:ident $(, compact: $compact:literal)?) => {
        impl Collection for $type {
            $(const HAS_COMPACT_ENCODING: bool = $compact;)?
            fn view(value: &mut Value) -> Option<&mut Self> {
                match value {
                    Value::$variant(collection) => Some(collection),
                    _ => None,
                }
            }
            fn empty() -> Value {
                Value::$variant(Box::default())
            }
        }
    };
}

collection!(crate::list::List, List);
collection!(crate::hash::Hash, Hash, compact: true);
collection!(crate::set::Set, Set, compact: true);
collection!(crate::zset::ZSet, ZSet);
collection!(crate::stream::Stream, Stream);

const _: () = assert!(std::mem::size_of::<Value>() == 16);
