//! Decoders (and a listpack encoder) for the compact blobs Redis stores as single RDB
//! strings: listpack, ziplist, intset and zipmap. Every read is bounds-checked; a
//! malformed blob yields a [`BlobError`] naming the position inside the blob.

use std::fmt;

/// An error inside a blob: what was wrong and at which byte of the blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobError {
    pub kind: &'static str,
    pub pos: usize,
    pub msg: String,
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (at byte {} of the blob)", self.kind, self.msg, self.pos)
    }
}

/// One element of a listpack or ziplist: either a byte string or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// The element as Redis would return it to a client (integers in decimal).
    pub(crate) fn to_bytes(self) -> Vec<u8> {
        match self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(i) => i.to_string().into_bytes(),
        }
    }

    /// The element read as a sorted-set score (Redis parses string scores with strtod).
    pub(crate) fn to_f64(self) -> Option<f64> {
        match self {
            Elem::Int(i) => Some(i as f64),
            Elem::Str(s) => parse_score(s),
        }
    }
}

/// Parses a score as written by Redis (`%.17g`, "inf", "-inf", "nan", integers).
pub(crate) fn parse_score(s: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(s).ok()?;
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    t.parse::<f64>().ok()
}

/// Bounds-checked cursor over a blob.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    kind: &'static str,
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8], kind: &'static str) -> Self {
        Cur { b, pos: 0, kind }
    }

    fn err(&self, msg: impl Into<String>) -> BlobError {
        BlobError { kind: self.kind, pos: self.pos, msg: msg.into() }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BlobError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| {
            self.err(format!("needs {n} more bytes but only {} remain", self.b.len().saturating_sub(self.pos)))
        })?;
        let s = self.b.get(self.pos..end).ok_or_else(|| self.err("out of bounds"))?;
        self.pos = end;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], BlobError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, BlobError> {
        let [b] = self.arr::<1>()?;
        Ok(b)
    }

    fn peek(&self) -> Result<u8, BlobError> {
        self.b.get(self.pos).copied().ok_or_else(|| self.err("unexpected end of blob (missing end marker)"))
    }

    fn u16le(&mut self) -> Result<u16, BlobError> {
        Ok(u16::from_le_bytes(self.arr()?))
    }

    fn u32le(&mut self) -> Result<u32, BlobError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    fn at_end(&self) -> bool {
        self.pos == self.b.len()
    }
}

fn to_usize(v: u64, c: &Cur<'_>) -> Result<usize, BlobError> {
    usize::try_from(v).map_err(|_| c.err("length does not fit in memory"))
}

// ---------------------------------------------------------------------------------
// listpack

/// Size of the back-length field that follows a listpack entry of `l` bytes
/// (encoding + data), as listpack.c computes it.
pub(crate) fn lp_backlen_size(l: usize) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2_097_151 {
        3
    } else if l < 268_435_455 {
        4
    } else {
        5
    }
}

/// The smallest listpack encoding of an integer, as Redis's `lpEncodeIntegerGetType` picks
/// it: one place for the ranges, which the encoder and the size estimates share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LpInt {
    /// 7-bit unsigned, in the tag byte.
    U7,
    /// 13-bit signed, in the tag byte and one more.
    I13,
    I16,
    I24,
    I32,
    I64,
}

impl LpInt {
    fn of(v: i64) -> LpInt {
        if (0..=127).contains(&v) {
            LpInt::U7
        } else if (-4096..=4095).contains(&v) {
            LpInt::I13
        } else if i16::try_from(v).is_ok() {
            LpInt::I16
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            LpInt::I24
        } else if i32::try_from(v).is_ok() {
            LpInt::I32
        } else {
            LpInt::I64
        }
    }

    /// Bytes of the encoding, its tag included.
    fn len(self) -> usize {
        match self {
            LpInt::U7 => 1,
            LpInt::I13 => 2,
            LpInt::I16 => 3,
            LpInt::I24 => 4,
            LpInt::I32 => 5,
            LpInt::I64 => 9,
        }
    }
}

/// Bytes of a listpack string's header: its length in 6, 12 or 32 bits.
fn lp_str_header_len(len: usize) -> usize {
    match len {
        0..64 => 1,
        64..4096 => 2,
        _ => 5,
    }
}

/// Bytes the integer `v` takes in a listpack: its smallest encoding, then a one-byte
/// back-length (every integer encoding is under 128 bytes).
pub fn listpack_int_len(v: i64) -> usize {
    LpInt::of(v).len() + 1
}

/// Bytes the element `s` takes in a listpack, as `lpAppend` encodes it: a string that reads
/// as a canonical integer is stored as that integer.
pub fn listpack_elem_len(s: &[u8]) -> usize {
    if let Some(v) = canonical_i64(s) {
        return listpack_int_len(v);
    }
    let l = lp_str_header_len(s.len()) + s.len();
    l + lp_backlen_size(l)
}

/// Sign-extends the low `bits` bits of `u`.
fn sign_extend(u: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((u << shift) as i64) >> shift
}

/// Decodes every element of a listpack blob.
pub(crate) fn listpack_elems(blob: &[u8]) -> Result<Vec<Elem<'_>>, BlobError> {
    let mut c = Cur::new(blob, "listpack");
    let total = c.u32le()?;
    if usize::try_from(total).ok() != Some(blob.len()) {
        return Err(BlobError {
            kind: "listpack",
            pos: 0,
            msg: format!("header says {total} bytes but the blob has {}", blob.len()),
        });
    }
    let declared = c.u16le()?;
    let mut out = Vec::with_capacity(usize::from(declared).min(4096));
    loop {
        let start = c.pos;
        let b = c.peek()?;
        if b == 0xFF {
            c.pos += 1;
            break;
        }
        c.pos += 1;
        let elem = if b & 0x80 == 0 {
            Elem::Int(i64::from(b & 0x7f))
        } else if b & 0xC0 == 0x80 {
            Elem::Str(c.take(usize::from(b & 0x3f))?)
        } else if b & 0xE0 == 0xC0 {
            let lo = c.u8()?;
            let u = (u64::from(b & 0x1f) << 8) | u64::from(lo);
            Elem::Int(sign_extend(u, 13))
        } else if b & 0xF0 == 0xE0 {
            let lo = c.u8()?;
            let len = (usize::from(b & 0x0f) << 8) | usize::from(lo);
            Elem::Str(c.take(len)?)
        } else {
            match b {
                0xF0 => {
                    let len = c.u32le()?;
                    let len = to_usize(u64::from(len), &c)?;
                    Elem::Str(c.take(len)?)
                }
                0xF1 => Elem::Int(i64::from(i16::from_le_bytes(c.arr()?))),
                0xF2 => {
                    let [x, y, z] = c.arr::<3>()?;
                    let u = u64::from(x) | (u64::from(y) << 8) | (u64::from(z) << 16);
                    Elem::Int(sign_extend(u, 24))
                }
                0xF3 => Elem::Int(i64::from(i32::from_le_bytes(c.arr()?))),
                0xF4 => Elem::Int(i64::from_le_bytes(c.arr()?)),
                other => {
                    c.pos = start;
                    return Err(c.err(format!("invalid entry encoding byte {other:#04x}")));
                }
            }
        };
        let entry_len = c.pos - start;
        let bl_size = lp_backlen_size(entry_len);
        let bl = c.take(bl_size)?;
        // The back-length stores entry_len in 7-bit groups, most significant first;
        // every byte but the first has its high bit set.
        let mut v: u64 = 0;
        for (i, &byte) in bl.iter().enumerate() {
            let flag = byte & 0x80 != 0;
            if flag != (i > 0) {
                return Err(c.err("malformed entry back-length"));
            }
            v = (v << 7) | u64::from(byte & 0x7f);
        }
        if v != entry_len as u64 {
            return Err(c.err(format!("entry back-length says {v} bytes but the entry has {entry_len}")));
        }
        out.push(elem);
    }
    if !c.at_end() {
        return Err(c.err("data after the end marker"));
    }
    if declared != u16::MAX && usize::from(declared) != out.len() {
        return Err(BlobError {
            kind: "listpack",
            pos: 4,
            msg: format!("header says {declared} elements but {} were found", out.len()),
        });
    }
    Ok(out)
}

/// Builds listpacks the way Redis encodes entries (integers in the smallest integer
/// encoding, strings with the smallest length header).
#[derive(Debug, Default)]
pub(crate) struct ListpackBuilder {
    buf: Vec<u8>,
    count: usize,
}

/// Parses `s` as Redis's `string2ll` does: an optional '-', no leading zeros, no '+',
/// no spaces, fitting in an i64.
pub(crate) fn canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let digits = match s.split_first() {
        Some((b'-', rest)) => rest,
        _ => s,
    };
    match digits.first() {
        None => return None,
        Some(b'0') if digits.len() > 1 || s.len() != digits.len() => return None,
        Some(_) => {}
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse::<i64>().ok()
}

impl ListpackBuilder {
    pub(crate) fn new() -> Self {
        ListpackBuilder { buf: vec![0; 6], count: 0 }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Bytes of the listpack if it were finished now.
    #[cfg(test)]
    pub(crate) fn byte_len(&self) -> usize {
        self.buf.len() + 1
    }

    pub(crate) fn push(&mut self, s: &[u8]) {
        let start = self.buf.len();
        if let Some(v) = canonical_i64(s) {
            match LpInt::of(v) {
                LpInt::U7 => self.buf.push(v as u8),
                LpInt::I13 => {
                    let u = (v as u64) & 0x1fff;
                    self.buf.extend_from_slice(&[0xC0 | (u >> 8) as u8, (u & 0xff) as u8]);
                }
                LpInt::I16 => {
                    self.buf.push(0xF1);
                    self.buf.extend_from_slice(&(v as i16).to_le_bytes());
                }
                LpInt::I24 => {
                    self.buf.push(0xF2);
                    let b = (v as i32).to_le_bytes();
                    self.buf.extend_from_slice(b.get(..3).unwrap_or(&b));
                }
                LpInt::I32 => {
                    self.buf.push(0xF3);
                    self.buf.extend_from_slice(&(v as i32).to_le_bytes());
                }
                LpInt::I64 => {
                    self.buf.push(0xF4);
                    self.buf.extend_from_slice(&v.to_le_bytes());
                }
            }
        } else {
            let len = s.len();
            match lp_str_header_len(len) {
                1 => self.buf.push(0x80 | len as u8),
                2 => self.buf.extend_from_slice(&[0xE0 | (len >> 8) as u8, (len & 0xff) as u8]),
                _ => {
                    self.buf.push(0xF0);
                    self.buf.extend_from_slice(&(len as u32).to_le_bytes());
                }
            }
            self.buf.extend_from_slice(s);
        }
        let l = self.buf.len() - start;
        let size = lp_backlen_size(l);
        for i in (0..size).rev() {
            let group = ((l >> (7 * i)) & 0x7f) as u8;
            // First byte (most significant group) has no flag, the others have 0x80.
            if i + 1 == size {
                self.buf.push(group);
            } else {
                self.buf.push(group | 0x80);
            }
        }
        self.count += 1;
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        let n = u16::try_from(self.count).unwrap_or(u16::MAX);
        if let Some(h) = self.buf.get_mut(0..4) {
            h.copy_from_slice(&total.to_le_bytes());
        }
        if let Some(h) = self.buf.get_mut(4..6) {
            h.copy_from_slice(&n.to_le_bytes());
        }
        self.buf
    }
}

// ---------------------------------------------------------------------------------
// ziplist

/// Decodes every element of a ziplist blob (RDB types 10, 12, 13 and quicklist v1 nodes).
pub(crate) fn ziplist_elems(blob: &[u8]) -> Result<Vec<Elem<'_>>, BlobError> {
    let mut c = Cur::new(blob, "ziplist");
    let total = c.u32le()?;
    if usize::try_from(total).ok() != Some(blob.len()) {
        return Err(BlobError {
            kind: "ziplist",
            pos: 0,
            msg: format!("header says {total} bytes but the blob has {}", blob.len()),
        });
    }
    let tail = c.u32le()?;
    let declared = c.u16le()?;
    let mut out = Vec::with_capacity(usize::from(declared).min(4096));
    let mut prev_len = 0usize;
    let mut last_start = None;
    loop {
        let start = c.pos;
        let first = c.peek()?;
        if first == 0xFF {
            c.pos += 1;
            break;
        }
        let prevlen = if first < 254 {
            c.pos += 1;
            usize::from(first)
        } else {
            c.pos += 1;
            to_usize(u64::from(c.u32le()?), &c)?
        };
        if prevlen != prev_len {
            c.pos = start;
            return Err(c.err(format!("entry says the previous entry has {prevlen} bytes, it has {prev_len}")));
        }
        let enc = c.u8()?;
        let elem = match enc >> 6 {
            0 => Elem::Str(c.take(usize::from(enc & 0x3f))?),
            1 => {
                let lo = c.u8()?;
                Elem::Str(c.take((usize::from(enc & 0x3f) << 8) | usize::from(lo))?)
            }
            2 => {
                let len = u32::from_be_bytes(c.arr()?);
                let len = to_usize(u64::from(len), &c)?;
                Elem::Str(c.take(len)?)
            }
            _ => match enc {
                0xC0 => Elem::Int(i64::from(i16::from_le_bytes(c.arr()?))),
                0xD0 => Elem::Int(i64::from(i32::from_le_bytes(c.arr()?))),
                0xE0 => Elem::Int(i64::from_le_bytes(c.arr()?)),
                0xF0 => {
                    let [x, y, z] = c.arr::<3>()?;
                    let u = u64::from(x) | (u64::from(y) << 8) | (u64::from(z) << 16);
                    Elem::Int(sign_extend(u, 24))
                }
                0xFE => Elem::Int(i64::from(c.u8()? as i8)),
                0xF1..=0xFD => Elem::Int(i64::from(enc & 0x0f) - 1),
                other => {
                    return Err(c.err(format!("invalid entry encoding byte {other:#04x}")));
                }
            },
        };
        prev_len = c.pos - start;
        last_start = Some(start);
        out.push(elem);
    }
    if !c.at_end() {
        return Err(c.err("data after the end marker"));
    }
    let expected_tail = last_start.unwrap_or(10);
    if usize::try_from(tail).ok() != Some(expected_tail) {
        return Err(BlobError {
            kind: "ziplist",
            pos: 4,
            msg: format!("tail offset {tail} does not point at the last entry ({expected_tail})"),
        });
    }
    if declared != u16::MAX && usize::from(declared) != out.len() {
        return Err(BlobError {
            kind: "ziplist",
            pos: 8,
            msg: format!("header says {declared} elements but {} were found", out.len()),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// intset

/// Decodes an intset blob (RDB type 11) into its integers.
pub(crate) fn intset_values(blob: &[u8]) -> Result<Vec<i64>, BlobError> {
    let mut c = Cur::new(blob, "intset");
    let enc = c.u32le()?;
    let len = c.u32le()?;
    let width: usize = match enc {
        2 | 4 | 8 => enc as usize,
        other => return Err(BlobError { kind: "intset", pos: 0, msg: format!("invalid integer width {other}") }),
    };
    let len = to_usize(u64::from(len), &c)?;
    let expected = len.checked_mul(width).and_then(|x| x.checked_add(8));
    if expected != Some(blob.len()) {
        return Err(BlobError {
            kind: "intset",
            pos: 4,
            msg: format!("{len} integers of {width} bytes do not match the blob size {}", blob.len()),
        });
    }
    let mut out = Vec::with_capacity(len.min(4096));
    for _ in 0..len {
        let v = match width {
            2 => i64::from(i16::from_le_bytes(c.arr()?)),
            4 => i64::from(i32::from_le_bytes(c.arr()?)),
            _ => i64::from_le_bytes(c.arr()?),
        };
        out.push(v);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// zipmap

/// Field/value pairs.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Decodes a zipmap blob (RDB type 9, Redis < 2.6 small hashes) into field/value pairs.
pub(crate) fn zipmap_pairs(blob: &[u8]) -> Result<Pairs, BlobError> {
    let mut c = Cur::new(blob, "zipmap");
    let _count_hint = c.u8()?;
    let mut out = Vec::new();
    fn read_len(c: &mut Cur<'_>) -> Result<Option<usize>, BlobError> {
        let b = c.u8()?;
        match b {
            0..=253 => Ok(Some(usize::from(b))),
            254 => {
                let v = c.u32le()?;
                Ok(Some(to_usize(u64::from(v), c)?))
            }
            _ => Ok(None),
        }
    }
    while let Some(klen) = read_len(&mut c)? {
        let key = c.take(klen)?;
        let Some(vlen) = read_len(&mut c)? else {
            return Err(c.err("end marker where a value length was expected"));
        };
        let free = c.u8()?;
        let val = c.take(vlen)?;
        c.take(usize::from(free))?;
        out.push((key.to_vec(), val.to_vec()));
    }
    if !c.at_end() {
        return Err(c.err("data after the end marker"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn canonical_ints() {
        assert_eq!(canonical_i64(b"0"), Some(0));
        assert_eq!(canonical_i64(b"-1"), Some(-1));
        assert_eq!(canonical_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(canonical_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"1.0", b"abc"] {
            assert_eq!(canonical_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn listpack_round_trip_all_encodings() {
        let long4k = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let items: Vec<Vec<u8>> = vec![
            b"0".to_vec(),
            b"127".to_vec(),
            b"128".to_vec(),
            b"-1".to_vec(),
            b"-4096".to_vec(),
            b"4095".to_vec(),
            b"4096".to_vec(),
            b"-32768".to_vec(),
            b"32767".to_vec(),
            b"-8388608".to_vec(),
            b"8388607".to_vec(),
            b"8388608".to_vec(),
            b"-2147483648".to_vec(),
            b"2147483648".to_vec(),
            b"-9223372036854775808".to_vec(),
            b"".to_vec(),
            b"hello".to_vec(),
            b"007".to_vec(),
            vec![b'z'; 63],
            vec![b'z'; 64],
            mid,
            long4k,
        ];
        let mut b = ListpackBuilder::new();
        for i in &items {
            let before = b.byte_len();
            b.push(i);
            assert_eq!(b.byte_len() - before, listpack_elem_len(i), "{:?}", String::from_utf8_lossy(i));
        }
        assert_eq!(b.len(), items.len());
        let expected_len = b.byte_len();
        let lp = b.finish();
        assert_eq!(lp.len(), expected_len);
        let got: Vec<Vec<u8>> = listpack_elems(&lp).unwrap().into_iter().map(Elem::to_bytes).collect();
        assert_eq!(got, items);
    }

    #[test]
    fn listpack_rejects_garbage() {
        let mut b = ListpackBuilder::new();
        b.push(b"abc");
        b.push(b"12");
        let lp = b.finish();
        for cut in 0..lp.len() {
            assert!(listpack_elems(&lp[..cut]).is_err());
        }
        for i in 0..lp.len() {
            let mut bad = lp.clone();
            bad[i] ^= 0x55;
            // must not panic; most flips are errors
            let _ = listpack_elems(&bad);
        }
        let mut bad = lp.clone();
        bad[4] = 3; // wrong count
        assert!(listpack_elems(&bad).is_err());
    }

    #[test]
    fn intset_and_zipmap_errors() {
        assert!(intset_values(&[2, 0, 0, 0, 1, 0, 0, 0]).is_err());
        assert!(intset_values(&[3, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert_eq!(intset_values(&[2, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff]).unwrap(), vec![-1]);
        assert!(intset_values(&[8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(zipmap_pairs(&[1, 1, b'a']).is_err());
        assert_eq!(
            zipmap_pairs(&[1, 1, b'a', 2, 1, b'b', b'c', 0, 0xff]).unwrap(),
            vec![(b"a".to_vec(), b"bc".to_vec())]
        );
    }
}
