//! RDB writer and object serialization (shared with DUMP payloads).

use std::io::{self, BufWriter, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::crc64::crc64;
use crate::encodings::{canonical_i64, listpack_elem_len, ListpackBuilder};
use crate::{opcode, types, RawEntry, RdbValue, RDB_VERSION};

/// Redis 7.0 default `hash-max-listpack-entries` / `zset-max-listpack-entries`.
const LISTPACK_MAX_ENTRIES: usize = 128;
/// Redis 7.0 default `hash-max-listpack-value` / `zset-max-listpack-value`.
const LISTPACK_MAX_VALUE: usize = 64;
/// Redis 7.0 default `set-max-intset-entries`.
const INTSET_MAX_ENTRIES: usize = 512;
/// Target listpack node size of a quicklist (Redis default `list-max-listpack-size -2`).
const QUICKLIST_NODE_BYTES: usize = 8192;
/// Elements at least this big go into PLAIN quicklist nodes (Redis's packed threshold).
const QUICKLIST_PLAIN_THRESHOLD: usize = 1 << 30;
/// Strings longer than this are tried with LZF (same rule as Redis).
const LZF_MIN_LEN: usize = 20;

/// Writes an RDB length.
pub(crate) fn put_len<W: Write>(w: &mut W, len: u64) -> io::Result<()> {
    if len < (1 << 6) {
        w.write_all(&[len as u8])
    } else if len < (1 << 14) {
        w.write_all(&[0x40 | (len >> 8) as u8, (len & 0xff) as u8])
    } else if let Ok(l32) = u32::try_from(len) {
        w.write_all(&[0x80])?;
        w.write_all(&l32.to_be_bytes())
    } else {
        w.write_all(&[0x81])?;
        w.write_all(&len.to_be_bytes())
    }
}

/// Writes an RDB string: integer-encoded when it is a canonical integer fitting 32
/// bits (as Redis does), LZF-compressed when `compress` and it saves at least 4 bytes,
/// raw otherwise.
pub(crate) fn put_string<W: Write>(w: &mut W, s: &[u8], compress: bool) -> io::Result<()> {
    if s.len() <= 11 {
        if let Some(v) = canonical_i64(s) {
            if let Ok(b) = i8::try_from(v) {
                return w.write_all(&[0xC0, b as u8]);
            }
            if let Ok(h) = i16::try_from(v) {
                let [a, b] = h.to_le_bytes();
                return w.write_all(&[0xC1, a, b]);
            }
            if let Ok(i) = i32::try_from(v) {
                let [a, b, c, d] = i.to_le_bytes();
                return w.write_all(&[0xC2, a, b, c, d]);
            }
        }
    }
    if compress && s.len() > LZF_MIN_LEN {
        if let Some(c) = crate::lzf::compress(s) {
            w.write_all(&[0xC3])?;
            put_len(w, c.len() as u64)?;
            put_len(w, s.len() as u64)?;
            return w.write_all(&c);
        }
    }
    put_len(w, s.len() as u64)?;
    w.write_all(s)
}

/// Which encoding a hash, set or sorted set is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The compact one (listpack, intset) when the collection is small enough for it: what
    /// Redis gives an object it creates or loads.
    BySize,
    /// The big one (types 4, 2 and 5) whatever the size: Redis never turns a collection that
    /// outgrew its compact encoding back into it, and DUMP writes the encoding it holds.
    Big,
}

/// How a value is laid out in the RDB.
enum Plan {
    String,
    /// Quicklist v2: `(start, end, plain)` element ranges, one per node.
    Quicklist(Vec<(usize, usize, bool)>),
    Intset(Vec<i64>),
    Set,
    HashListpack,
    Hash,
    ZsetListpack,
    Zset2,
    Stream,
}

impl Plan {
    fn of(value: &RdbValue, layout: Layout) -> Plan {
        let big = layout == Layout::Big;
        match value {
            RdbValue::String(_) => Plan::String,
            RdbValue::Stream(_) => Plan::Stream,
            RdbValue::List(items) => {
                let mut nodes = Vec::new();
                let mut start = 0usize;
                let mut bytes = 7usize; // listpack header + end byte
                for (i, item) in items.iter().enumerate() {
                    if item.len() >= QUICKLIST_PLAIN_THRESHOLD {
                        if start < i {
                            nodes.push((start, i, false));
                        }
                        nodes.push((i, i + 1, true));
                        start = i + 1;
                        bytes = 7;
                        continue;
                    }
                    let sz = listpack_elem_len(item);
                    if start < i && bytes + sz > QUICKLIST_NODE_BYTES {
                        nodes.push((start, i, false));
                        start = i;
                        bytes = 7;
                    }
                    bytes += sz;
                }
                if start < items.len() {
                    nodes.push((start, items.len(), false));
                }
                Plan::Quicklist(nodes)
            }
            RdbValue::Set(members) => {
                if !big && members.len() <= INTSET_MAX_ENTRIES {
                    let ints: Option<Vec<i64>> = members.iter().map(|m| canonical_i64(m)).collect();
                    if let Some(mut ints) = ints {
                        ints.sort_unstable();
                        ints.dedup();
                        return Plan::Intset(ints);
                    }
                }
                Plan::Set
            }
            RdbValue::Hash(pairs) => {
                if !big
                    && pairs.len() <= LISTPACK_MAX_ENTRIES
                    && pairs.iter().all(|(f, v)| f.len() <= LISTPACK_MAX_VALUE && v.len() <= LISTPACK_MAX_VALUE)
                {
                    Plan::HashListpack
                } else {
                    Plan::Hash
                }
            }
            RdbValue::SortedSet(pairs) => {
                if !big
                    && pairs.len() <= LISTPACK_MAX_ENTRIES
                    && pairs.iter().all(|(m, s)| m.len() <= LISTPACK_MAX_VALUE && !s.is_nan())
                {
                    Plan::ZsetListpack
                } else {
                    Plan::Zset2
                }
            }
        }
    }

    fn type_id(&self) -> u8 {
        match self {
            Plan::String => types::STRING,
            Plan::Quicklist(_) => types::LIST_QUICKLIST_2,
            Plan::Intset(_) => types::SET_INTSET,
            Plan::Set => types::SET,
            Plan::HashListpack => types::HASH_LISTPACK,
            Plan::Hash => types::HASH,
            Plan::ZsetListpack => types::ZSET_LISTPACK,
            Plan::Zset2 => types::ZSET_2,
            Plan::Stream => types::STREAM_LISTPACKS_2,
        }
    }
}

/// A score as text that `strtod` reads back to the same double (integers as integers,
/// like Redis's `d2string`, so listpacks store them in integer encodings).
fn score_text(s: f64) -> Vec<u8> {
    if s == 0.0 {
        return if s.is_sign_negative() { b"-0".to_vec() } else { b"0".to_vec() };
    }
    if s.is_infinite() {
        return if s > 0.0 { b"inf".to_vec() } else { b"-inf".to_vec() };
    }
    if s.fract() == 0.0 && s.abs() < 9_007_199_254_740_992.0 {
        return (s as i64).to_string().into_bytes();
    }
    let plain = s.to_string();
    let exp = format!("{s:e}");
    if exp.len() < plain.len() { exp } else { plain }.into_bytes()
}

/// Writes the body of `value` laid out per `plan` (everything after type byte and key).
fn put_body<W: Write>(w: &mut W, value: &RdbValue, plan: &Plan, compress: bool) -> io::Result<()> {
    match (value, plan) {
        (RdbValue::String(s), _) => put_string(w, s, compress),
        (RdbValue::Stream(stream), _) => crate::stream::put_stream(w, stream, compress),
        (RdbValue::List(items), Plan::Quicklist(nodes)) => {
            put_len(w, nodes.len() as u64)?;
            for &(start, end, plain) in nodes {
                let slice = items.get(start..end).unwrap_or_default();
                if plain {
                    put_len(w, 1)?;
                    for item in slice {
                        put_string(w, item, compress)?;
                    }
                } else {
                    put_len(w, 2)?;
                    let mut lp = ListpackBuilder::new();
                    for item in slice {
                        lp.push(item);
                    }
                    put_string(w, &lp.finish(), compress)?;
                }
            }
            Ok(())
        }
        (RdbValue::Set(_), Plan::Intset(ints)) => {
            let (min, max) = (ints.first().copied().unwrap_or(0), ints.last().copied().unwrap_or(0));
            let width: usize = if i16::try_from(min).is_ok() && i16::try_from(max).is_ok() {
                2
            } else if i32::try_from(min).is_ok() && i32::try_from(max).is_ok() {
                4
            } else {
                8
            };
            let mut blob = Vec::with_capacity(8 + ints.len() * width);
            blob.extend_from_slice(&(width as u32).to_le_bytes());
            blob.extend_from_slice(&(ints.len() as u32).to_le_bytes());
            for &i in ints {
                match width {
                    2 => blob.extend_from_slice(&(i as i16).to_le_bytes()),
                    4 => blob.extend_from_slice(&(i as i32).to_le_bytes()),
                    _ => blob.extend_from_slice(&i.to_le_bytes()),
                }
            }
            put_string(w, &blob, compress)
        }
        (RdbValue::Set(members) | RdbValue::List(members), _) => {
            put_len(w, members.len() as u64)?;
            for m in members {
                put_string(w, m, compress)?;
            }
            Ok(())
        }
        (RdbValue::Hash(pairs), Plan::HashListpack) => {
            let mut lp = ListpackBuilder::new();
            for (f, v) in pairs {
                lp.push(f);
                lp.push(v);
            }
            put_string(w, &lp.finish(), compress)
        }
        (RdbValue::Hash(pairs), _) => {
            put_len(w, pairs.len() as u64)?;
            for (f, v) in pairs {
                put_string(w, f, compress)?;
                put_string(w, v, compress)?;
            }
            Ok(())
        }
        (RdbValue::SortedSet(pairs), Plan::ZsetListpack) => {
            // A listpack zset must be ordered by (score, member).
            let mut sorted: Vec<&(Vec<u8>, f64)> = pairs.iter().collect();
            sorted
                .sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0)));
            let mut lp = ListpackBuilder::new();
            for (m, s) in sorted {
                lp.push(m);
                lp.push(&score_text(*s));
            }
            put_string(w, &lp.finish(), compress)
        }
        (RdbValue::SortedSet(pairs), _) => {
            put_len(w, pairs.len() as u64)?;
            for (m, s) in pairs {
                put_string(w, m, compress)?;
                w.write_all(&s.to_le_bytes())?;
            }
            Ok(())
        }
    }
}

/// Writes type byte + body of a value (the DUMP layout, without footer).
pub(crate) fn put_typed_object<W: Write>(
    w: &mut W,
    value: &RdbValue,
    layout: Layout,
    compress: bool,
) -> io::Result<()> {
    let plan = Plan::of(value, layout);
    w.write_all(&[plan.type_id()])?;
    put_body(w, value, &plan, compress)
}

/// A writer that hashes what passes through it.
#[derive(Debug)]
struct CrcWrite<W: Write> {
    inner: BufWriter<W>,
    crc: u64,
}

impl<W: Write> Write for CrcWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc64(self.crc, buf.get(..n).unwrap_or(buf));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streaming writer of an RDB version 10 file that Redis 7.0 loads.
///
/// Output is buffered internally (64 KiB) and hashed into the CRC-64 as it is written;
/// nothing but the current object is held in memory. Call [`RdbWriter::finish`] to
/// write the EOF opcode and checksum; it flushes but does not fsync.
///
/// Encodings written: strings as type 0 (integer-encoded when canonical and within 32
/// bits, LZF-compressed when worthwhile), lists as quicklist v2 (type 18) with
/// listpack nodes of about 8 KiB (PLAIN nodes for elements of 1 GiB or more), sets as
/// intset (type 11) when every member is a canonical integer and there are at most 512
/// of them, else type 2; hashes as listpack (type 16) when small (≤ 128 fields, each
/// field and value ≤ 64 bytes), else type 4; sorted sets as listpack (type 17, sorted)
/// when small, else type 5 (binary scores); streams as type 19 with nodes of up to 100
/// entries. Empty collections are not written (Redis drops empty keys when loading).
#[derive(Debug)]
pub struct RdbWriter<W: Write> {
    out: CrcWrite<W>,
    compress: bool,
    /// The database of the last SELECTDB written.
    db: Option<u32>,
}

impl<W: Write> RdbWriter<W> {
    /// Writes the header `REDIS0010` and the aux fields `redis-ver` ("7.0.0"),
    /// `redis-bits` (64), `ctime` (now), `used-mem` (0) and `aof-base` (0).
    pub fn new(w: W) -> io::Result<Self> {
        let mut wr = RdbWriter {
            out: CrcWrite { inner: BufWriter::with_capacity(64 * 1024, w), crc: 0 },
            compress: true,
            db: None,
        };
        wr.out.write_all(format!("REDIS{RDB_VERSION:04}").as_bytes())?;
        let ctime = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        wr.write_aux(b"redis-ver", b"7.0.0")?;
        wr.write_aux(b"redis-bits", b"64")?;
        wr.write_aux(b"ctime", ctime.to_string().as_bytes())?;
        wr.write_aux(b"used-mem", b"0")?;
        wr.write_aux(b"aof-base", b"0")?;
        Ok(wr)
    }

    /// Turns LZF compression of strings on or off (on by default, like Redis's
    /// `rdbcompression yes`).
    pub fn set_compression(&mut self, on: bool) {
        self.compress = on;
    }

    /// Writes an auxiliary field (opcode 250).
    pub fn write_aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.out.write_all(&[opcode::AUX])?;
        put_string(&mut self.out, key, false)?;
        put_string(&mut self.out, value, false)
    }

    /// Writes a Redis Function library (opcode 245, `FUNCTION2`): its source, `#!lua
    /// name=…` header included. Redis writes libraries after the aux fields, before the
    /// first database, and refuses a file that holds one library twice.
    pub fn write_function(&mut self, code: &[u8]) -> io::Result<()> {
        self.out.write_all(&[opcode::FUNCTION2])?;
        put_string(&mut self.out, code, self.compress)
    }

    /// Starts database `db` (SELECTDB) with a RESIZEDB hint of `keys` keys of which
    /// `expires` have a TTL (the hint need not be exact).
    pub fn select_db(&mut self, db: u32, keys: u64, expires: u64) -> io::Result<()> {
        self.write_select(db)?;
        self.out.write_all(&[opcode::RESIZEDB])?;
        put_len(&mut self.out, keys)?;
        put_len(&mut self.out, expires)
    }

    /// Writes one key with its value and optional absolute expiry (Unix ms).
    /// An empty list/set/hash/sorted set is skipped.
    ///
    /// Sets, hashes and sorted sets must not contain duplicate members/fields, and
    /// scores must not be NaN: Redis refuses to load such files (the writer does not
    /// check, to avoid hashing every member again).
    pub fn write_entry(&mut self, key: &[u8], value: &RdbValue, expire_at_ms: Option<u64>) -> io::Result<()> {
        if crate::reader::is_empty_collection(value) {
            return Ok(());
        }
        let plan = Plan::of(value, Layout::BySize);
        self.write_key(plan.type_id(), key, expire_at_ms, self.compress)?;
        put_body(&mut self.out, value, &plan, self.compress)
    }

    /// Writes a key read with [`crate::Pick::Raw`] as it was read, in its database (a
    /// SELECTDB first if the last one named another).
    pub fn write_raw_entry(&mut self, entry: &RawEntry) -> io::Result<()> {
        if self.db != Some(entry.db) {
            self.write_select(entry.db)?;
        }
        self.write_key(entry.type_id, &entry.key, entry.expire_at_ms, self.compress && entry.key_compressed)?;
        self.out.write_all(&entry.body)
    }

    fn write_select(&mut self, db: u32) -> io::Result<()> {
        self.out.write_all(&[opcode::SELECTDB])?;
        put_len(&mut self.out, u64::from(db))?;
        self.db = Some(db);
        Ok(())
    }

    /// A key's expiry, type byte and name (LZF-compressed if `compress` and it shrinks): what
    /// precedes its value.
    fn write_key(&mut self, type_id: u8, key: &[u8], expire_at_ms: Option<u64>, compress: bool) -> io::Result<()> {
        if let Some(t) = expire_at_ms {
            self.out.write_all(&[opcode::EXPIRETIME_MS])?;
            let t = i64::try_from(t).unwrap_or(i64::MAX);
            self.out.write_all(&t.to_le_bytes())?;
        }
        self.out.write_all(&[type_id])?;
        put_string(&mut self.out, key, compress)
    }

    /// Writes the EOF opcode and the CRC-64 trailer, flushes, and returns the inner
    /// writer (not fsynced).
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[opcode::EOF])?;
        let crc = self.out.crc;
        self.out.inner.write_all(&crc.to_le_bytes())?;
        self.out.inner.flush()?;
        self.out.inner.into_inner().map_err(io::IntoInnerError::into_error)
    }
}

/// An RDB file in memory holding `libraries` (Redis Function library sources) and no key:
/// with none, the file of an empty dataset.
pub fn keyless_file<'a>(libraries: impl IntoIterator<Item = &'a [u8]>) -> io::Result<Vec<u8>> {
    let mut writer = RdbWriter::new(Vec::new())?;
    libraries.into_iter().try_for_each(|code| writer.write_function(code))?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use crate::encodings::ListpackBuilder;

    #[test]
    fn entry_size_matches_builder() {
        let samples: Vec<Vec<u8>> = vec![
            b"0".to_vec(),
            b"-1".to_vec(),
            b"127".to_vec(),
            b"5000".to_vec(),
            b"-40000".to_vec(),
            b"8000000".to_vec(),
            b"2000000000".to_vec(),
            b"20000000000".to_vec(),
            vec![b'a'; 63],
            vec![b'a'; 64],
            vec![b'a'; 125],
            vec![b'a'; 126],
            vec![b'a'; 4095],
            vec![b'a'; 4096],
            vec![b'a'; 16380],
            vec![b'a'; 20000],
        ];
        for s in samples {
            let mut b = ListpackBuilder::new();
            let before = b.byte_len();
            b.push(&s);
            assert_eq!(b.byte_len() - before, crate::encodings::listpack_elem_len(&s), "len {}", s.len());
        }
    }

    /// A keyless file reads back as its aux fields and libraries, in order, and nothing else.
    #[test]
    fn a_keyless_file_holds_the_libraries_and_no_key() {
        let libraries: [&[u8]; 2] = [b"#!lua name=a\nreturn 1", b"#!lua name=b\nreturn 2"];
        for wanted in [&libraries[..], &[]] {
            let file = keyless_file(wanted.iter().copied()).unwrap();
            let mut reader = crate::RdbReader::new(&file[..]).unwrap();
            let mut found = Vec::new();
            while let Some(item) = reader.next_item().unwrap() {
                match item {
                    crate::RdbItem::Aux { key, value } if key == b"function" => found.push(value),
                    crate::RdbItem::Aux { .. } => {}
                    other => panic!("a keyless file holds {other:?}"),
                }
            }
            assert_eq!(found, wanted);
        }
    }

    #[test]
    fn the_big_layout_writes_small_collections_in_their_big_encoding() {
        let hash = RdbValue::Hash(vec![(b"f".to_vec(), b"v".to_vec())]);
        let set = RdbValue::Set(vec![b"1".to_vec(), b"2".to_vec()]);
        let zset = RdbValue::SortedSet(vec![(b"m".to_vec(), -0.0)]);
        let list = RdbValue::List(vec![b"a".to_vec()]);
        let type_of = |value: &RdbValue, layout| Plan::of(value, layout).type_id();
        assert_eq!(type_of(&hash, Layout::BySize), types::HASH_LISTPACK);
        assert_eq!(type_of(&hash, Layout::Big), types::HASH);
        assert_eq!(type_of(&set, Layout::BySize), types::SET_INTSET);
        assert_eq!(type_of(&set, Layout::Big), types::SET);
        assert_eq!(type_of(&zset, Layout::BySize), types::ZSET_LISTPACK);
        assert_eq!(type_of(&zset, Layout::Big), types::ZSET_2);
        // Lists have one encoding in Redis 7.0.
        assert_eq!(type_of(&list, Layout::Big), types::LIST_QUICKLIST_2);
    }

    #[test]
    fn score_texts_round_trip() {
        for s in [
            0.0,
            -0.0,
            1.0,
            -3.0,
            0.1,
            1.5,
            1e-7,
            1e300,
            -2.5e-300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            9.007199254740993e15,
        ] {
            let t = score_text(s);
            let back = crate::encodings::parse_score(&t).unwrap();
            assert_eq!(back.to_bits(), s.to_bits(), "{s} -> {}", String::from_utf8_lossy(&t));
        }
    }

    #[test]
    fn lengths() {
        let mut v = Vec::new();
        put_len(&mut v, 63).unwrap();
        put_len(&mut v, 64).unwrap();
        put_len(&mut v, 16383).unwrap();
        put_len(&mut v, 16384).unwrap();
        put_len(&mut v, 1 << 40).unwrap();
        assert_eq!(v, vec![63, 0x40, 64, 0x7f, 0xff, 0x80, 0, 0, 0x40, 0, 0x81, 0, 0, 1, 0, 0, 0, 0, 0]);
    }
}
