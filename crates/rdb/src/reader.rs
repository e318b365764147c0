//! Streaming RDB reader.

use std::io::{self, BufRead, Read};

use crate::crc64::crc64;
use crate::encodings::{intset_values, listpack_elems, parse_score, ziplist_elems, zipmap_pairs, BlobError, Elem};
use crate::{opcode, types, Pick, RawEntry, RdbEntry, RdbError, RdbValue, MAX_SUPPORTED_VERSION};

/// Initial capacity cap for vectors whose length comes from the file.
const PREALLOC_CAP: u64 = 4096;
/// Initial capacity cap for byte buffers whose length comes from the file.
const BYTES_PREALLOC_CAP: u64 = 64 * 1024;

fn cap(len: u64) -> usize {
    usize::try_from(len.min(PREALLOC_CAP)).unwrap_or(0)
}

/// A length field as read: a plain length or a special string encoding (the low six
/// bits of a byte whose two top bits are `11`).
enum Len {
    Plain(u64),
    Encoded(u8),
}

/// Byte source that counts bytes and hashes everything it reads into the CRC-64.
///
/// Reads are served from `inner`'s buffer where they fit in it (almost all of them: opcodes,
/// lengths, keys, values), and the bytes taken are hashed in one call when the buffer is
/// handed back, not field by field: the per-field checksum calls and `Read` round trips were
/// a fifth of the parsing thread's time on a restart with 1,000,000 sessions, and reading
/// that snapshot to the end (`staykv check`) took 0.82 s of CPU with them, 0.60 s without.
#[derive(Debug)]
pub(crate) struct Src<R> {
    inner: R,
    pos: u64,
    /// CRC-64 of the bytes consumed from `inner` (not of those `taken` since).
    crc: u64,
    /// Bytes at the front of `inner`'s buffer already read but not yet hashed nor consumed.
    taken: usize,
    /// The length of `inner`'s buffer when last looked at (0: look again).
    seen: usize,
    /// While set, every byte read is also appended here (a value copied as it lies).
    capture: Option<Vec<u8>>,
}

impl<R: BufRead> Src<R> {
    pub(crate) fn new(inner: R) -> Self {
        Src { inner, pos: 0, crc: 0, taken: 0, seen: 0, capture: None }
    }

    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    fn corrupt(&self, offset: u64, msg: impl Into<String>) -> RdbError {
        RdbError::Corrupt { offset, msg: msg.into() }
    }

    fn io_error(&self, source: io::Error) -> RdbError {
        RdbError::Io { offset: self.pos, source }
    }

    /// Hashes and consumes the bytes taken from `inner`'s buffer, so that `inner` stands
    /// right after the last byte read.
    fn release(&mut self) -> Result<(), RdbError> {
        // Whoever reads `inner` next may change its buffer.
        self.seen = 0;
        if self.taken == 0 {
            return Ok(());
        }
        let taken = self.taken;
        // The buffer still holds what was taken: it is refilled only once consumed.
        let buf = match self.inner.fill_buf() {
            Ok(buf) => buf,
            Err(source) => return Err(self.io_error(source)),
        };
        self.crc = crc64(self.crc, buf.get(..taken).unwrap_or(buf));
        self.inner.consume(taken);
        self.taken = 0;
        Ok(())
    }

    /// The CRC-64 of everything read so far.
    fn crc(&mut self) -> Result<u64, RdbError> {
        self.release()?;
        Ok(self.crc)
    }

    /// `inner`, standing right after the last byte read.
    fn into_inner(mut self) -> Result<R, RdbError> {
        self.release()?;
        Ok(self.inner)
    }

    /// Bytes of `inner`'s buffer not taken yet. The buffer is looked at again only once all
    /// of it is taken (it cannot change before it is consumed), and then handed back and
    /// refilled; 0 at the end of the input.
    #[inline(always)]
    fn buffered(&mut self) -> Result<usize, RdbError> {
        if self.seen == self.taken {
            self.release()?;
            self.seen = match self.inner.fill_buf() {
                Ok(buf) => buf.len(),
                Err(source) => return Err(self.io_error(source)),
            };
        }
        Ok(self.seen - self.taken)
    }

    /// Takes the next `n` bytes from `inner`'s buffer, if it holds them all.
    #[inline(always)]
    fn take_buffered(&mut self, n: usize) -> Result<Option<&[u8]>, RdbError> {
        // Nothing to wait for: an empty string at the end of a buffer must not block on a
        // stream for the next one.
        if n == 0 {
            return Ok(Some(&[]));
        }
        if self.buffered()? < n {
            return Ok(None);
        }
        let (start, offset) = (self.taken, self.pos);
        // Not `self.io_error`: the buffer borrowed here is returned, so `self` stays borrowed.
        let buf = match self.inner.fill_buf() {
            Ok(buf) => buf,
            Err(source) => return Err(RdbError::Io { offset, source }),
        };
        let Some(bytes) = buf.get(start..start + n) else { return Ok(None) };
        self.taken += n;
        self.pos += n as u64;
        if let Some(capture) = &mut self.capture {
            capture.extend_from_slice(bytes);
        }
        Ok(Some(bytes))
    }

    /// Hashes (and captures, when capturing) bytes read from `inner` after a release.
    fn hashed(&mut self, bytes: &[u8]) {
        self.crc = crc64(self.crc, bytes);
        self.pos += bytes.len() as u64;
        if let Some(capture) = &mut self.capture {
            capture.extend_from_slice(bytes);
        }
    }

    // Inlined, with `buffered` and `take_buffered`, into every field read: as calls they
    // cost `staykv check` of 1,000,000 sessions 0.73 s of CPU instead of 0.60.
    #[inline(always)]
    fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), RdbError> {
        if let Some(bytes) = self.take_buffered(buf.len())? {
            buf.copy_from_slice(bytes);
            return Ok(());
        }
        let offset = self.pos;
        self.release()?;
        // read_exact retries on Interrupted by itself.
        match self.inner.read_exact(buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(RdbError::Truncated { offset, what }),
            Err(source) => return Err(RdbError::Io { offset, source }),
        }
        self.hashed(buf);
        Ok(())
    }

    pub(crate) fn arr<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RdbError> {
        let mut a = [0u8; N];
        self.fill(&mut a, what)?;
        Ok(a)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, RdbError> {
        let [b] = self.arr::<1>(what)?;
        Ok(b)
    }

    /// Reads exactly `len` bytes. Past what `inner` has buffered, the result grows with the
    /// data actually read, so a huge declared length on a short input fails with
    /// `Truncated` instead of allocating it.
    fn bytes(&mut self, len: u64, what: &'static str) -> Result<Vec<u8>, RdbError> {
        if let Ok(n) = usize::try_from(len) {
            if let Some(bytes) = self.take_buffered(n)? {
                return Ok(bytes.to_vec());
            }
        }
        let offset = self.pos;
        self.release()?;
        let mut v = Vec::with_capacity(usize::try_from(len.min(BYTES_PREALLOC_CAP)).unwrap_or(0));
        let got = match (&mut self.inner).take(len).read_to_end(&mut v) {
            Ok(n) => n,
            Err(source) => return Err(RdbError::Io { offset, source }),
        };
        self.hashed(&v);
        if (got as u64) < len {
            return Err(RdbError::Truncated { offset, what });
        }
        Ok(v)
    }

    fn len_or_enc(&mut self, what: &'static str) -> Result<Len, RdbError> {
        let offset = self.pos;
        let b = self.u8(what)?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => {
                let lo = self.u8(what)?;
                Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(lo))
            }
            2 => match b {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.arr(what)?))),
                0x81 => Len::Plain(u64::from_be_bytes(self.arr(what)?)),
                other => {
                    return Err(self.corrupt(offset, format!("unknown length encoding byte {other:#04x} ({what})")))
                }
            },
            _ => Len::Encoded(b & 0x3f),
        })
    }

    /// Reads a plain length (a special encoding here is corruption).
    pub(crate) fn len(&mut self, what: &'static str) -> Result<u64, RdbError> {
        let offset = self.pos;
        match self.len_or_enc(what)? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(e) => {
                Err(self.corrupt(offset, format!("expected a length for {what}, found special encoding {e}")))
            }
        }
    }

    /// Reads an RDB string: raw, integer-encoded or LZF-compressed.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<Vec<u8>, RdbError> {
        Ok(self.string_noting_lzf(what)?.0)
    }

    /// [`Src::string`], and whether the file held it LZF-compressed.
    fn string_noting_lzf(&mut self, what: &'static str) -> Result<(Vec<u8>, bool), RdbError> {
        let offset = self.pos;
        let len = self.len_or_enc(what)?;
        let compressed = matches!(len, Len::Encoded(3));
        let string = match len {
            Len::Plain(n) => self.bytes(n, what),
            Len::Encoded(0) => Ok(i64::from(self.u8(what)? as i8).to_string().into_bytes()),
            Len::Encoded(1) => Ok(i16::from_le_bytes(self.arr(what)?).to_string().into_bytes()),
            Len::Encoded(2) => Ok(i32::from_le_bytes(self.arr(what)?).to_string().into_bytes()),
            Len::Encoded(3) => {
                let clen = self.len(what)?;
                let ulen = self.len(what)?;
                let data = self.bytes(clen, what)?;
                let ulen = usize::try_from(ulen)
                    .map_err(|_| self.corrupt(offset, format!("LZF length {ulen} does not fit in memory")))?;
                crate::lzf::decompress(&data, ulen).map_err(|e| self.corrupt(offset, format!("{what}: {e}")))
            }
            Len::Encoded(e) => Err(self.corrupt(offset, format!("unknown string encoding {e} ({what})"))),
        }?;
        Ok((string, compressed))
    }

    /// Reads `len` bytes into the checksum only: nothing is allocated, whatever the
    /// declared length (a short input fails with `Truncated`).
    fn skip(&mut self, len: u64, what: &'static str) -> Result<(), RdbError> {
        let offset = self.pos;
        let mut left = len;
        while left > 0 {
            let available = self.buffered()?;
            if available == 0 {
                return Err(RdbError::Truncated { offset, what });
            }
            let n = usize::try_from(left).map_or(available, |left| left.min(available));
            self.take_buffered(n)?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Skips an RDB string without decoding it: an LZF string is stepped over by its
    /// compressed length, never decompressed.
    fn skip_string(&mut self, what: &'static str) -> Result<(), RdbError> {
        let offset = self.pos;
        match self.len_or_enc(what)? {
            Len::Plain(n) => self.skip(n, what),
            Len::Encoded(0) => self.skip(1, what),
            Len::Encoded(1) => self.skip(2, what),
            Len::Encoded(2) => self.skip(4, what),
            Len::Encoded(3) => {
                let clen = self.len(what)?;
                self.len(what)?;
                self.skip(clen, what)
            }
            Len::Encoded(e) => Err(self.corrupt(offset, format!("unknown string encoding {e} ({what})"))),
        }
    }

    /// A score in the old string format (zset type 3): one length byte, with 253/254/255
    /// meaning NaN/+inf/-inf.
    fn string_double(&mut self) -> Result<f64, RdbError> {
        let offset = self.pos;
        let len = self.u8("zset score length")?;
        match len {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let s = self.bytes(u64::from(n), "zset score")?;
                parse_score(&s).ok_or_else(|| {
                    self.corrupt(offset, format!("invalid zset score {:?}", String::from_utf8_lossy(&s)))
                })
            }
        }
    }

    fn binary_double(&mut self) -> Result<f64, RdbError> {
        Ok(f64::from_le_bytes(self.arr("zset score")?))
    }

    pub(crate) fn millis(&mut self, what: &'static str) -> Result<i64, RdbError> {
        Ok(i64::from_le_bytes(self.arr(what)?))
    }
}

pub(crate) fn blob_err(offset: u64, e: BlobError) -> RdbError {
    RdbError::Corrupt { offset, msg: e.to_string() }
}

fn pairs<T>(
    offset: u64,
    elems: Vec<Elem<'_>>,
    kind: &str,
    mut second: impl FnMut(Elem<'_>) -> Option<T>,
) -> Result<Vec<(Vec<u8>, T)>, RdbError> {
    if elems.len() % 2 == 1 {
        return Err(RdbError::Corrupt {
            offset,
            msg: format!("{kind} has an odd number of elements ({})", elems.len()),
        });
    }
    let mut out = Vec::with_capacity(elems.len() / 2);
    let mut it = elems.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        let v = second(b).ok_or_else(|| RdbError::Corrupt { offset, msg: format!("{kind} holds an invalid score") })?;
        out.push((a.to_bytes(), v));
    }
    Ok(out)
}

/// `pairs`, refused if a name comes twice: Redis converts the old packed encodings (zipmap,
/// ziplist) as it loads them and refuses those with duplicates. (A listpack with duplicates
/// it loads as is unless asked to sanitize; here the last pair wins.)
fn unique<T>(offset: u64, pairs: Vec<(Vec<u8>, T)>, kind: &str) -> Result<Vec<(Vec<u8>, T)>, RdbError> {
    if all_distinct(pairs.iter().map(|(name, _)| name.as_slice())) {
        return Ok(pairs);
    }
    Err(RdbError::Corrupt { offset, msg: format!("{kind} with duplicate elements") })
}

/// Whether no name comes twice.
pub fn all_distinct<'a>(names: impl ExactSizeIterator<Item = &'a [u8]>) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    names.into_iter().all(|name| seen.insert(name))
}

/// Why a file or payload with a NaN score is refused: a sorted set cannot hold the member,
/// and loading it would drop it without a word.
const NAN_SCORE: &str = "zset score is NaN";

fn bytes_list(elems: Vec<Elem<'_>>) -> Vec<Vec<u8>> {
    elems.into_iter().map(Elem::to_bytes).collect()
}

/// Skips a module value serialized with the module opcode scheme (module type 7 values
/// and MODULE_AUX payloads), up to and including its EOF opcode.
fn skip_module_value<R: BufRead>(src: &mut Src<R>) -> Result<(), RdbError> {
    loop {
        let offset = src.pos();
        match src.len("module opcode")? {
            0 => return Ok(()),
            1 | 2 => {
                src.len("module integer")?;
            }
            3 => {
                src.arr::<4>("module float")?;
            }
            4 => {
                src.arr::<8>("module double")?;
            }
            5 => src.skip_string("module string")?,
            other => return Err(RdbError::Corrupt { offset, msg: format!("unknown module opcode {other}") }),
        }
    }
}

/// Reads the value of an object of RDB type `type_id` (the type byte and, in a file,
/// the key have already been read). Returns `Ok(None)` for objects that are skipped
/// (module type 7).
pub(crate) fn read_object<R: BufRead>(
    src: &mut Src<R>,
    type_id: u8,
    type_offset: u64,
) -> Result<Option<RdbValue>, RdbError> {
    let value = match type_id {
        types::STRING => RdbValue::String(src.string("string value")?),
        types::LIST => RdbValue::List(read_strings(src, "list length", "list element")?),
        types::SET => RdbValue::Set(read_strings(src, "set size", "set member")?),
        types::ZSET | types::ZSET_2 => RdbValue::SortedSet(read_scored(src, type_id)?),
        types::HASH => {
            let n = src.len("hash size")?;
            let mut v = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let field = src.string("hash field")?;
                let value = src.string("hash value")?;
                v.push((field, value));
            }
            RdbValue::Hash(v)
        }
        types::MODULE => {
            return Err(RdbError::Unsupported {
                offset: type_offset,
                msg: "module value of the pre-release format (type 6) cannot be skipped \
                      without the module"
                    .into(),
            })
        }
        types::MODULE_2 => {
            src.len("module id")?;
            skip_module_value(src)?;
            return Ok(None);
        }
        types::HASH_ZIPMAP => {
            let (at, blob) = (src.pos(), src.string("zipmap")?);
            RdbValue::Hash(unique(at, zipmap_pairs(&blob).map_err(|e| blob_err(at, e))?, "hash zipmap")?)
        }
        types::LIST_ZIPLIST => {
            let (at, blob) = (src.pos(), src.string("ziplist")?);
            RdbValue::List(bytes_list(ziplist_elems(&blob).map_err(|e| blob_err(at, e))?))
        }
        types::SET_INTSET => {
            let (at, blob) = (src.pos(), src.string("intset")?);
            let ints = intset_values(&blob).map_err(|e| blob_err(at, e))?;
            RdbValue::Set(ints.into_iter().map(|i| i.to_string().into_bytes()).collect())
        }
        types::SET_LISTPACK => {
            let (at, blob) = (src.pos(), src.string("set listpack")?);
            RdbValue::Set(bytes_list(listpack_elems(&blob).map_err(|e| blob_err(at, e))?))
        }
        types::ZSET_ZIPLIST | types::ZSET_LISTPACK => {
            let (at, blob) = (src.pos(), src.string("zset blob")?);
            let ziplist = type_id == types::ZSET_ZIPLIST;
            let elems = packed_elems(&blob, ziplist).map_err(|e| blob_err(at, e))?;
            let members = pairs(at, elems, "zset", |e| e.to_f64())?;
            if members.iter().any(|(_, score)| score.is_nan()) {
                return Err(src.corrupt(at, NAN_SCORE));
            }
            RdbValue::SortedSet(if ziplist { unique(at, members, "zset ziplist")? } else { members })
        }
        types::HASH_ZIPLIST | types::HASH_LISTPACK => {
            let (at, blob) = (src.pos(), src.string("hash blob")?);
            let ziplist = type_id == types::HASH_ZIPLIST;
            let elems = packed_elems(&blob, ziplist).map_err(|e| blob_err(at, e))?;
            let fields = pairs(at, elems, "hash", |e| Some(e.to_bytes()))?;
            RdbValue::Hash(if ziplist { unique(at, fields, "hash ziplist")? } else { fields })
        }
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => RdbValue::List(read_quicklist(src, type_id)?),
        types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 | types::STREAM_LISTPACKS_3 => {
            RdbValue::Stream(Box::new(crate::stream::read_stream(src, type_id)?))
        }
        other => {
            return Err(RdbError::Corrupt {
                offset: type_offset,
                msg: format!("unknown object type or opcode {other}"),
            })
        }
    };
    Ok(Some(value))
}

/// A count (`count_what`) and that many strings (`each`): a list or a set.
fn read_strings<R: BufRead>(
    src: &mut Src<R>,
    count_what: &'static str,
    each: &'static str,
) -> Result<Vec<Vec<u8>>, RdbError> {
    let n = src.len(count_what)?;
    let mut v = Vec::with_capacity(cap(n));
    for _ in 0..n {
        v.push(src.string(each)?);
    }
    Ok(v)
}

/// A sorted set of member and score pairs: scores as strings (`ZSET`) or binary doubles.
fn read_scored<R: BufRead>(src: &mut Src<R>, type_id: u8) -> Result<Vec<(Vec<u8>, f64)>, RdbError> {
    let n = src.len("zset size")?;
    let mut v = Vec::with_capacity(cap(n));
    for _ in 0..n {
        let member = src.string("zset member")?;
        let at = src.pos;
        let score = if type_id == types::ZSET { src.string_double()? } else { src.binary_double()? };
        if score.is_nan() {
            return Err(src.corrupt(at, NAN_SCORE));
        }
        v.push((member, score));
    }
    Ok(v)
}

/// A quicklist: nodes of ziplists (`LIST_QUICKLIST`) or, in version 2, each node a listpack
/// or a PLAIN node holding one large element as it is.
fn read_quicklist<R: BufRead>(src: &mut Src<R>, type_id: u8) -> Result<Vec<Vec<u8>>, RdbError> {
    let nodes = src.len("quicklist node count")?;
    let mut v = Vec::new();
    for _ in 0..nodes {
        let plain = type_id == types::LIST_QUICKLIST_2 && {
            let at = src.pos();
            match src.len("quicklist node container")? {
                1 => true,
                2 => false,
                c => return Err(src.corrupt(at, format!("invalid quicklist node container {c}"))),
            }
        };
        let (at, blob) = (src.pos(), src.string("quicklist node")?);
        if plain {
            v.push(blob);
            continue;
        }
        let elems = packed_elems(&blob, type_id == types::LIST_QUICKLIST).map_err(|e| blob_err(at, e))?;
        v.extend(elems.into_iter().map(Elem::to_bytes));
    }
    Ok(v)
}

/// The elements of a ziplist or a listpack, the two packed encodings.
fn packed_elems(blob: &[u8], ziplist: bool) -> Result<Vec<Elem<'_>>, BlobError> {
    if ziplist {
        ziplist_elems(blob)
    } else {
        listpack_elems(blob)
    }
}

/// Whether a value of type `type_id` can be copied as it lies: all but module values, which
/// are read as [`RdbItem::Unsupported`] (a stream is parsed to find its end, and copied).
fn copies_raw(type_id: u8) -> bool {
    !matches!(type_id, types::MODULE | types::MODULE_2)
}

/// Steps over the value of an object of RDB type `type_id` without building it: the
/// checksum still covers every byte, but nothing is decompressed or allocated. A value
/// whose layout needs parsing to find its end (a stream) is read and dropped.
fn skip_object<R: BufRead>(src: &mut Src<R>, type_id: u8, type_offset: u64) -> Result<(), RdbError> {
    let strings_per_element = match type_id {
        // One string: the value, or a blob holding the whole collection.
        types::STRING
        | types::HASH_ZIPMAP
        | types::LIST_ZIPLIST
        | types::SET_INTSET
        | types::ZSET_ZIPLIST
        | types::ZSET_LISTPACK
        | types::HASH_ZIPLIST
        | types::HASH_LISTPACK
        | types::SET_LISTPACK => return src.skip_string("value"),
        types::LIST | types::SET => 1,
        types::HASH => 2,
        types::ZSET | types::ZSET_2 => {
            for _ in 0..src.len("zset size")? {
                src.skip_string("zset member")?;
                if type_id == types::ZSET {
                    src.string_double()?;
                } else {
                    src.binary_double()?;
                }
            }
            return Ok(());
        }
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => {
            for _ in 0..src.len("quicklist node count")? {
                if type_id == types::LIST_QUICKLIST_2 {
                    src.len("quicklist node container")?;
                }
                src.skip_string("quicklist node")?;
            }
            return Ok(());
        }
        _ => return read_object(src, type_id, type_offset).map(drop),
    };
    for _ in 0..src.len("collection length")? {
        for _ in 0..strings_per_element {
            src.skip_string("collection element")?;
        }
    }
    Ok(())
}

/// A Redis Function library after its opcode (`FUNCTION2`, or the 7.0-rc `FUNCTION_PRE_GA`),
/// as the library source Redis itself keeps: `#!<engine> name=<name>` and the code.
pub(crate) fn read_library<R: BufRead>(src: &mut Src<R>, kind: u8) -> Result<Vec<u8>, RdbError> {
    if kind == opcode::FUNCTION2 {
        return src.string("function library");
    }
    // The 7.0-rc format: name, engine, optional description, code.
    let name = src.string("function library name")?;
    let engine = src.string("function engine name")?;
    if src.len("function description flag")? != 0 {
        src.skip_string("function description")?;
    }
    let code = src.string("function library code")?;
    let mut library = Vec::with_capacity(code.len() + name.len() + 16);
    library.extend_from_slice(b"#!");
    library.extend_from_slice(&engine);
    library.extend_from_slice(b" name=");
    library.extend_from_slice(&name);
    library.push(b'\n');
    library.extend_from_slice(&code);
    Ok(library)
}

/// Whether a value is a collection with no elements (Redis discards such keys).
pub(crate) fn is_empty_collection(v: &RdbValue) -> bool {
    match v {
        RdbValue::String(_) | RdbValue::Stream(_) => false,
        RdbValue::List(x) | RdbValue::Set(x) => x.is_empty(),
        RdbValue::Hash(x) => x.is_empty(),
        RdbValue::SortedSet(x) => x.is_empty(),
    }
}

/// One item of an RDB file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbItem {
    /// A key with a value this crate decodes.
    Entry(RdbEntry),
    /// A key whose value type is not decoded (module values: type 7). The value was
    /// consumed and skipped; `type_id` is its RDB type byte.
    Unsupported { db: u32, key: Vec<u8>, type_id: u8 },
    /// An auxiliary field (`redis-ver`, `ctime`, `used-mem`, …) — or a Redis Function
    /// library, surfaced with key `"function"` and the library source as value.
    Aux { key: Vec<u8>, value: Vec<u8> },
}

/// An item of [`RdbReader::next_item_pick`].
#[derive(Debug, Clone, PartialEq)]
pub enum Picked {
    Item(RdbItem),
    /// A key whose value was not decoded ([`Pick::Raw`]).
    Raw(RawEntry),
    /// Where a key starts ([`Pick::Locate`]), for [`RdbReader::read_located`].
    Located {
        location: Location,
        key: Vec<u8>,
    },
}

/// Where a key lies in an RDB file: its database and the offset of its first opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub db: u32,
    pub offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Done,
    Failed,
}

/// Streaming reader of an RDB file over any [`io::BufRead`] (`BufReader<File>`, a slice).
///
/// It reads the file one item at a time and never holds more than the current object in
/// memory; most fields are taken straight from the input's buffer. It never consumes
/// anything past the checksum trailer, so the underlying reader can be recovered with
/// [`RdbReader::into_inner`] to read what follows (as in a replication stream).
#[derive(Debug)]
pub struct RdbReader<R: BufRead> {
    src: Src<R>,
    version: u32,
    db: u32,
    expire_at_ms: Option<u64>,
    lru_idle_secs: Option<u64>,
    lfu_freq: Option<u8>,
    /// Where the next key's first opcode (its expiry, or its type) starts.
    key_offset: Option<u64>,
    state: State,
}

impl<R: BufRead> RdbReader<R> {
    /// Reads and validates the 9-byte header `REDIS00XX`. Versions 1 to 10 are accepted;
    /// newer versions are refused with [`RdbError::UnsupportedVersion`].
    pub fn new(r: R) -> Result<Self, RdbError> {
        let mut src = Src::new(r);
        let header = src.arr::<9>("RDB header")?;
        let (magic, digits) = header.split_at(5);
        let version = if magic == b"REDIS" && digits.iter().all(u8::is_ascii_digit) {
            digits.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
        } else {
            return Err(RdbError::BadHeader { found: String::from_utf8_lossy(&header).into_owned() });
        };
        if version == 0 || version > MAX_SUPPORTED_VERSION {
            return Err(RdbError::UnsupportedVersion { version });
        }
        Ok(RdbReader::reading(src, version, 0))
    }

    /// A reader of `src`, about to read an item of database `db`.
    fn reading(src: Src<R>, version: u32, db: u32) -> Self {
        RdbReader {
            src,
            version,
            db,
            expire_at_ms: None,
            lru_idle_secs: None,
            lfu_freq: None,
            key_offset: None,
            state: State::Reading,
        }
    }

    /// Reads the key at `location` (found by an earlier read of the same file with
    /// [`Pick::Locate`]) from `inner`, which must be positioned at `location.offset`.
    /// Returns the key (`None` for an empty collection) and the offset just past it. The
    /// file's checksum is not verified: the read that located the key did that.
    pub fn read_located(inner: R, location: Location) -> Result<(Option<RdbItem>, u64), RdbError> {
        let mut src = Src::new(inner);
        src.pos = location.offset;
        let mut reader = RdbReader::reading(src, MAX_SUPPORTED_VERSION, location.db);
        loop {
            let op_offset = reader.src.pos();
            let op = reader.src.u8("opcode or object type")?;
            if reader.key_metadata(op, op_offset)? {
                continue;
            }
            if !types::is_object_type(op) {
                return Err(reader.src.corrupt(op_offset, format!("no key at offset {}", location.offset)));
            }
            let key = reader.src.string("key")?;
            let item = reader.decode_value(op, op_offset, key)?;
            // `inner` is left right after the key, where the caller's next seek starts.
            reader.src.release()?;
            return Ok((item, reader.src.pos()));
        }
    }

    /// The RDB format version from the header.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes consumed from the underlying reader so far (header included).
    pub fn bytes_read(&self) -> u64 {
        self.src.pos()
    }

    /// Whether the EOF opcode and checksum have been read and verified.
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    /// Gives back the underlying reader, positioned after the last byte consumed.
    pub fn into_inner(self) -> Result<R, RdbError> {
        self.src.into_inner()
    }

    /// Returns the next item, or `None` once the EOF opcode has been read and the
    /// CRC-64 trailer verified (RDB version 5 and later; a zero checksum means "not
    /// computed" and is accepted).
    ///
    /// Keys whose value is an empty collection are skipped, as Redis does when loading.
    /// Module AUX data (opcode 247) and RESIZEDB hints are consumed silently. After an
    /// error the reader is unusable: further calls return an error.
    pub fn next_item(&mut self) -> Result<Option<RdbItem>, RdbError> {
        self.next_item_where(|_, _| true)
    }

    /// Like [`RdbReader::next_item`], but only keys for which `keep(db, key)` is true are
    /// decoded and returned; the values of the others are stepped over (still checksummed,
    /// never decompressed or allocated). A compaction pass over one partition of the keys
    /// reads the whole snapshot and keeps a fraction of it.
    pub fn next_item_where(&mut self, mut keep: impl FnMut(u32, &[u8]) -> bool) -> Result<Option<RdbItem>, RdbError> {
        loop {
            match self.next_item_pick(|db, key| if keep(db, key) { Pick::Decode } else { Pick::Skip })? {
                None => return Ok(None),
                Some(Picked::Item(item)) => return Ok(Some(item)),
                // Never asked for here.
                Some(Picked::Raw(_) | Picked::Located { .. }) => continue,
            }
        }
    }

    /// Like [`RdbReader::next_item_where`], with a third choice: [`Pick::Raw`] returns a
    /// key's value as the bytes that encode it ([`Picked::Raw`]), for a writer to copy
    /// into another file without decoding and encoding it again.
    pub fn next_item_pick(&mut self, pick: impl FnMut(u32, &[u8]) -> Pick) -> Result<Option<Picked>, RdbError> {
        match self.state {
            State::Done => return Ok(None),
            State::Failed => {
                return Err(RdbError::Corrupt {
                    offset: self.src.pos(),
                    msg: "reading cannot continue after an earlier error".into(),
                })
            }
            State::Reading => {}
        }
        let r = self.next_inner(pick);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn next_inner(&mut self, mut pick: impl FnMut(u32, &[u8]) -> Pick) -> Result<Option<Picked>, RdbError> {
        loop {
            let op_offset = self.src.pos();
            let op = self.src.u8("opcode or object type")?;
            if self.key_metadata(op, op_offset)? {
                continue;
            }
            match op {
                opcode::EOF => {
                    let computed = self.src.crc()?;
                    if self.version >= 5 {
                        let at = self.src.pos();
                        let stored = u64::from_le_bytes(self.src.arr("checksum")?);
                        if stored != 0 && stored != computed {
                            return Err(RdbError::ChecksumMismatch { offset: at, stored, computed });
                        }
                    }
                    self.state = State::Done;
                    return Ok(None);
                }
                opcode::SELECTDB => {
                    let db = self.src.len("database number")?;
                    self.db = u32::try_from(db).map_err(|_| RdbError::Corrupt {
                        offset: op_offset,
                        msg: format!("database number {db} is out of range"),
                    })?;
                }
                opcode::RESIZEDB => {
                    self.src.len("RESIZEDB key count")?;
                    self.src.len("RESIZEDB expires count")?;
                }
                opcode::AUX => {
                    let key = self.src.string("aux field name")?;
                    let value = self.src.string("aux field value")?;
                    return Ok(Some(Picked::Item(RdbItem::Aux { key, value })));
                }
                opcode::MODULE_AUX => {
                    self.src.len("module id")?;
                    let at = self.src.pos();
                    let when_opcode = self.src.len("module aux when opcode")?;
                    if when_opcode != 2 {
                        return Err(RdbError::Corrupt {
                            offset: at,
                            msg: format!("module aux 'when' opcode is {when_opcode}, expected 2"),
                        });
                    }
                    self.src.len("module aux when")?;
                    skip_module_value(&mut self.src)?;
                }
                opcode::FUNCTION2 | opcode::FUNCTION_PRE_GA => {
                    let value = read_library(&mut self.src, op)?;
                    return Ok(Some(Picked::Item(RdbItem::Aux { key: b"function".to_vec(), value })));
                }
                type_id => {
                    if let Some(picked) = self.key_and_value(type_id, op_offset, &mut pick)? {
                        return Ok(Some(picked));
                    }
                }
            }
        }
    }

    /// Reads the expiry or LRU/LFU opcode `op` of the next key; false when `op` is none.
    fn key_metadata(&mut self, op: u8, op_offset: u64) -> Result<bool, RdbError> {
        match op {
            // A time at or before the epoch has passed: it reads as 1 ms after it, as 0 is the
            // "no expiry" that callers store (Redis drops such a key when it loads the file).
            opcode::EXPIRETIME_MS => {
                let t = self.src.millis("expire time")?;
                self.expire_at_ms = Some(u64::try_from(t).unwrap_or(0).max(1));
            }
            opcode::EXPIRETIME => {
                let t = i32::from_le_bytes(self.src.arr("expire time")?);
                self.expire_at_ms = Some((u64::try_from(t).unwrap_or(0) * 1000).max(1));
            }
            opcode::FREQ => self.lfu_freq = Some(self.src.u8("LFU frequency")?),
            opcode::IDLE => self.lru_idle_secs = Some(self.src.len("LRU idle time")?),
            _ => return Ok(false),
        }
        self.key_offset.get_or_insert(op_offset);
        Ok(true)
    }

    /// Reads a key of type `type_id` and does with its value what `pick` says; `None` when
    /// nothing is returned for it (skipped, or an empty collection).
    fn key_and_value(
        &mut self,
        type_id: u8,
        op_offset: u64,
        pick: &mut impl FnMut(u32, &[u8]) -> Pick,
    ) -> Result<Option<Picked>, RdbError> {
        if !types::is_object_type(type_id) {
            return Err(RdbError::Corrupt {
                offset: op_offset,
                msg: format!("unknown object type or opcode {type_id}"),
            });
        }
        let offset = *self.key_offset.get_or_insert(op_offset);
        let (key, key_compressed) = self.src.string_noting_lzf("key")?;
        let picked = match pick(self.db, &key) {
            Pick::Skip => {
                skip_object(&mut self.src, type_id, op_offset)?;
                None
            }
            Pick::Locate => {
                skip_object(&mut self.src, type_id, op_offset)?;
                Some(Picked::Located { location: Location { db: self.db, offset }, key })
            }
            Pick::Raw if copies_raw(type_id) => {
                self.src.capture = Some(Vec::new());
                let skipped = skip_object(&mut self.src, type_id, op_offset);
                let body = self.src.capture.take().unwrap_or_default();
                skipped?;
                Some(Picked::Raw(RawEntry {
                    db: self.db,
                    key,
                    key_compressed,
                    type_id,
                    body,
                    expire_at_ms: self.expire_at_ms,
                }))
            }
            Pick::Raw | Pick::Decode => self.decode_value(type_id, op_offset, key)?.map(Picked::Item),
        };
        self.forget_key_metadata();
        Ok(picked)
    }

    /// Decodes the value of `key`, of type `type_id`: `None` for an empty collection.
    fn decode_value(&mut self, type_id: u8, op_offset: u64, key: Vec<u8>) -> Result<Option<RdbItem>, RdbError> {
        let db = self.db;
        let Some(value) = read_object(&mut self.src, type_id, op_offset)? else {
            return Ok(Some(RdbItem::Unsupported { db, key, type_id }));
        };
        if is_empty_collection(&value) {
            return Ok(None);
        }
        let (expire_at_ms, lru_idle_secs, lfu_freq) = (self.expire_at_ms, self.lru_idle_secs, self.lfu_freq);
        Ok(Some(RdbItem::Entry(RdbEntry { db, key, value, expire_at_ms, lru_idle_secs, lfu_freq })))
    }

    /// Drops the expiry and LRU/LFU opcodes read for the key just stepped over or returned.
    fn forget_key_metadata(&mut self) {
        self.expire_at_ms = None;
        self.lru_idle_secs = None;
        self.lfu_freq = None;
        self.key_offset = None;
    }
}

impl<R: BufRead> Iterator for RdbReader<R> {
    type Item = Result<RdbItem, RdbError>;

    /// Same as [`RdbReader::next_item`]; stops after the first error.
    fn next(&mut self) -> Option<Self::Item> {
        if self.state == State::Failed {
            return None;
        }
        self.next_item().transpose()
    }
}
