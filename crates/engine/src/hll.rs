//! HyperLogLog, bit-compatible with Redis's `hyperloglog.c`: the same hash (MurmurHash64A,
//! seed 0xadc83b19), 16384 six-bit registers, the same sparse and dense string encodings and
//! the same estimator (Ertl's improved raw estimate), so PFCOUNT answers and the stored bytes
//! (GET, DUMP, RDB) are identical to Redis's and HLLs move between the two.
//!
//! Layout: `"HYLL"`, encoding byte (0 dense, 1 sparse), 3 unused bytes, 8-byte little-endian
//! cached cardinality whose top bit marks the cache stale, then the registers.

// Register and header offsets are computed within buffers whose length every public entry
// point checks first (`HEADER` bytes at least, `DENSE_SIZE` when dense).
#![allow(clippy::indexing_slicing)]

pub const HEADER: usize = 16;
const P: u32 = 14;
const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
const REGISTER_MAX: u8 = 63;
pub const DENSE_SIZE: usize = HEADER + REGISTERS * 6 / 8;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
/// `hll-sparse-max-bytes`: a sparse HLL that would grow past this becomes dense.
pub(crate) const SPARSE_MAX_BYTES: usize = 3000;
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// A new, empty HLL: sparse, one XZERO run over every register, cache valid at 0.
pub fn new_hll() -> Vec<u8> {
    let mut hll = vec![0u8; HEADER];
    hll[..4].copy_from_slice(b"HYLL");
    hll[4] = SPARSE;
    let run = REGISTERS - 1;
    hll.extend_from_slice(&[0x40 | (run >> 8) as u8, (run & 0xff) as u8]);
    hll
}

/// Whether `data` passes Redis's `isHLLObjectOrReply`: the header, magic, a known encoding
/// and, if dense, the exact size. Sparse registers are not decoded here: Redis finds a
/// corrupt sparse body only when a command walks it (INVALIDOBJ), and a cached count is
/// answered without walking it at all.
pub fn is_valid(data: &[u8]) -> bool {
    is_valid_shape(data) && data.starts_with(b"HYLL") && matches!(data[4], DENSE | SPARSE)
}

/// Header present and, if dense, exactly the dense size (cheap; no sparse decoding).
fn is_valid_shape(hll: &[u8]) -> bool {
    hll.len() >= HEADER && (hll[4] != DENSE || hll.len() == DENSE_SIZE)
}

/// Redis's MurmurHash64A (little-endian reads).
fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the run length of zeros it contributes.
fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], index: usize) -> u8 {
    let byte = index * 6 / 8;
    let fb = (index * 6) & 7;
    let b0 = u16::from(regs.get(byte).copied().unwrap_or(0));
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & u16::from(REGISTER_MAX)) as u8
}

fn dense_set(regs: &mut [u8], index: usize, value: u8) {
    let byte = index * 6 / 8;
    let fb = (index * 6) & 7;
    let v = u16::from(value);
    if let Some(b) = regs.get_mut(byte) {
        *b &= !((u16::from(REGISTER_MAX) << fb) as u8);
        *b |= (v << fb) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((u16::from(REGISTER_MAX) >> (8 - fb)) as u8);
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// One sparse opcode: (registers covered, value, encoded length).
fn opcode(data: &[u8], at: usize) -> Option<(usize, u8, usize)> {
    let b = *data.get(at)?;
    Some(match b & 0xc0 {
        0x00 => ((b & 0x3f) as usize + 1, 0, 1),
        // An XZERO cut short reads the string's NUL terminator in Redis: a second byte of 0.
        0x40 => (((((b & 0x3f) as usize) << 8) | data.get(at + 1).copied().unwrap_or(0) as usize) + 1, 0, 2),
        _ => ((b & 0x3) as usize + 1, ((b >> 2) & 0x1f) + 1, 1),
    })
}

/// Decode sparse registers to one byte per register; `None` if malformed.
fn sparse_to_registers(sparse: &[u8]) -> Option<Vec<u8>> {
    let mut regs = Vec::with_capacity(REGISTERS);
    let mut at = 0;
    while at < sparse.len() {
        let (span, value, len) = opcode(sparse, at)?;
        if regs.len() + span > REGISTERS {
            return None;
        }
        regs.extend(std::iter::repeat_n(value, span));
        at += len;
    }
    (regs.len() == REGISTERS).then_some(regs)
}

/// Every register as one byte (for counting and merging).
pub fn registers(hll: &[u8]) -> Option<Vec<u8>> {
    let body = hll.get(HEADER..)?;
    match hll.get(4)? {
        &DENSE => Some((0..REGISTERS).map(|i| dense_get(body, i)).collect()),
        _ => sparse_to_registers(body),
    }
}

fn sparse_to_dense(hll: &mut Vec<u8>) -> Option<()> {
    let regs = sparse_to_registers(hll.get(HEADER..)?)?;
    hll.truncate(HEADER);
    hll.resize(DENSE_SIZE, 0);
    hll[4] = DENSE;
    for (i, &v) in regs.iter().enumerate() {
        if v > 0 {
            dense_set(&mut hll[HEADER..], i, v);
        }
    }
    Some(())
}

fn val_op(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

fn push_zero_run(seq: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        let l = len - 1;
        seq.extend_from_slice(&[0x40 | (l >> 8) as u8, (l & 0xff) as u8]);
    } else {
        seq.push((len - 1) as u8);
    }
}

/// Raise register `index` to `count` if higher; returns whether it changed. Follows
/// Redis's `hllSparseSet` step by step so the sparse bytes come out identical: find the
/// opcode covering the register, rewrite or split it (or promote the HLL to dense when the
/// split would pass the sparse size limit), then merge equal neighbours.
fn set_register(hll: &mut Vec<u8>, index: usize, count: u8) -> Option<bool> {
    if !is_valid_shape(hll) {
        return None;
    }
    if hll[4] == DENSE {
        return Some(dense_raise(hll, index, count));
    }
    if count > SPARSE_VAL_MAX_VALUE {
        sparse_to_dense(hll)?;
        return Some(dense_raise(hll, index, count));
    }
    let op = find_opcode(hll, index)?;
    // Cases A and B: a VAL opcode already as high.
    if op.is_val && op.value >= count {
        return Some(false);
    }
    if !rewrite_opcode(hll, &op, index, count) {
        sparse_to_dense(hll)?;
        return Some(dense_raise(hll, index, count));
    }
    merge_equal_vals(hll, op.prev.unwrap_or(HEADER));
    // Redis's `hllSparseSet` invalidates the cached count itself after an in-place change
    // (not after a promotion to dense): a PFADD that fails on a later element keeps it so.
    invalidate_cache(hll);
    Some(true)
}

/// The sparse opcode that covers a register.
struct Opcode {
    /// Where it starts, and where the one before it does (`None` for the first).
    at: usize,
    prev: Option<usize>,
    /// The first register it covers, how many, and their value (0 for ZERO and XZERO).
    first: usize,
    span: usize,
    value: u8,
    /// Its bytes: 1, or 2 for XZERO.
    len: usize,
    is_val: bool,
}

/// The opcode covering register `index`; `None` if the sparse bytes end first (corrupt).
fn find_opcode(hll: &[u8], index: usize) -> Option<Opcode> {
    let (mut at, mut first, mut prev) = (HEADER, 0usize, None);
    loop {
        let (span, value, len) = opcode(hll, at)?;
        if index < first + span {
            return Some(Opcode { at, prev, first, span, value, len, is_val: hll[at] & 0x80 != 0 });
        }
        prev = Some(at);
        at += len;
        first += span;
        if at >= hll.len() {
            return None;
        }
    }
}

/// Sets register `index` to `count` within `op`: in place for a run of one (cases B and C),
/// else split into up to three opcodes (case D). False, changing nothing, when the split
/// would take the HLL past the sparse size limit: it must become dense.
fn rewrite_opcode(hll: &mut Vec<u8>, op: &Opcode, index: usize, count: u8) -> bool {
    if op.span == 1 && op.len == 1 {
        hll[op.at] = val_op(count, 1);
        return true;
    }
    let last = op.first + op.span - 1;
    let mut seq = Vec::with_capacity(5);
    let run = |seq: &mut Vec<u8>, len: usize| {
        if op.is_val {
            seq.push(val_op(op.value, len));
        } else {
            push_zero_run(seq, len);
        }
    };
    if index != op.first {
        run(&mut seq, index - op.first);
    }
    seq.push(val_op(count, 1));
    if index != last {
        run(&mut seq, last - index);
    }
    if seq.len() > op.len && hll.len() + seq.len() - op.len > SPARSE_MAX_BYTES {
        return false;
    }
    // An XZERO cut short by the end of the string (its second byte read as the NUL
    // terminator): Redis has nothing after it to move, grows the string by the new
    // opcodes' length less two and copies them over, so the last byte lands past the end.
    let cut = (op.at + op.len).saturating_sub(hll.len());
    let kept = seq.len().saturating_sub(cut);
    // (The byte Redis copied past the end stays in its memory, and a second edit of the
    // same opcode within the PFADD reads it back where StayKV reads 0: the string's last
    // byte can then differ, an artefact of reading past the string that is not copied.)
    hll.splice(op.at..(op.at + op.len).min(hll.len()), seq.into_iter().take(kept));
    true
}

/// Merges adjacent VAL opcodes of equal value, scanning up to 5 opcodes from `from`, as
/// Redis does after each change.
fn merge_equal_vals(hll: &mut Vec<u8>, from: usize) {
    let mut p = from;
    let mut scan = 5;
    while p < hll.len() && scan > 0 {
        scan -= 1;
        let b = hll[p];
        if b & 0xc0 == 0x40 {
            p += 2;
            continue;
        }
        if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if let Some(&next) = hll.get(p + 1) {
            if next & 0x80 != 0 {
                let (v1, v2) = (((b >> 2) & 0x1f) + 1, ((next >> 2) & 0x1f) + 1);
                let len = (b & 3) as usize + (next & 3) as usize + 2;
                if v1 == v2 && len <= SPARSE_VAL_MAX_LEN {
                    hll[p + 1] = val_op(v1, len);
                    hll.remove(p);
                    continue;
                }
            }
        }
        p += 1;
    }
}

fn dense_raise(hll: &mut [u8], index: usize, count: u8) -> bool {
    let regs = &mut hll[HEADER..];
    if dense_get(regs, index) < count {
        dense_set(regs, index, count);
        true
    } else {
        false
    }
}

pub fn invalidate_cache(hll: &mut [u8]) {
    hll[15] |= 0x80;
}

/// PFADD one element; `None` for a corrupt HLL. A sparse HLL changed in place has its cached
/// count invalidated at once, as in Redis; otherwise PFADD invalidates it after its last
/// element (and not at all when one fails).
pub fn add(hll: &mut Vec<u8>, element: &[u8]) -> Option<bool> {
    let (index, count) = pattern(element);
    set_register(hll, index, count)
}

/// The cardinality estimate from one byte per register.
pub fn estimate(regs: &[u8]) -> u64 {
    let m = REGISTERS as f64;
    let mut histogram = [0u32; 64];
    for &r in regs {
        if let Some(slot) = histogram.get_mut(r as usize) {
            *slot += 1;
        }
    }
    let q = Q as usize;
    let mut z = m * tau((m - f64::from(histogram[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(histogram[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

/// PFCOUNT of one HLL, using and refreshing its cached value. Returns the count and whether
/// the cache was rewritten.
pub fn count_cached(hll: &mut [u8]) -> Option<(u64, bool)> {
    if !is_valid_shape(hll) {
        return None;
    }
    if hll[15] & 0x80 == 0 {
        return Some((u64::from_le_bytes(hll[8..16].try_into().ok()?), false));
    }
    let count = estimate(&registers(hll)?);
    hll[8..16].copy_from_slice(&count.to_le_bytes());
    Some((count, true))
}

/// Raise `target`'s registers to at least `max` (PFMERGE), keeping sparse if it can.
pub fn merge_into(target: &mut Vec<u8>, max: &[u8], force_dense: bool) -> Option<()> {
    if !is_valid_shape(target) {
        return None;
    }
    if force_dense && target[4] == SPARSE {
        sparse_to_dense(target)?;
    }
    for (i, &v) in max.iter().enumerate() {
        if v > 0 {
            set_register(target, i, v)?;
        }
    }
    invalidate_cache(target);
    Some(())
}

pub fn is_dense(hll: &[u8]) -> bool {
    hll.get(4) == Some(&DENSE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn empty_hll_is_redis_bytes() {
        let hll = new_hll();
        assert_eq!(hll.len(), 18);
        assert_eq!(&hll[16..], &[0x7f, 0xff]);
        assert!(is_valid(&hll));
    }

    #[test]
    fn validity_is_the_header_only() {
        let mut hll = new_hll();
        // A ZERO run past the last register: corrupt, but only a walk of the body sees it.
        hll.push(0x00);
        assert!(is_valid(&hll));
        assert_eq!(registers(&hll), None);
        assert_eq!(count_cached(&mut hll), Some((0, false)));
    }

    #[test]
    fn counts_are_close_and_dense_promotion_keeps_registers() {
        let mut hll = new_hll();
        for i in 0..20_000 {
            add(&mut hll, format!("element:{i}").as_bytes()).unwrap();
        }
        invalidate_cache(&mut hll);
        assert!(is_dense(&hll));
        let (count, _) = count_cached(&mut hll).unwrap();
        assert!((19_000..21_000).contains(&count), "{count}");
    }

    /// Redis's `hllSparseSet` invalidates the cached count after an in-place change, so a
    /// PFADD failing on a later element leaves it invalid; a dense register change waits for
    /// the end of PFADD (checked against redis-server 7.0.15: a PFADD that hit a corrupt
    /// sparse body left the cache flag set).
    #[test]
    fn a_sparse_change_in_place_invalidates_the_cached_count_at_once() {
        let first_change =
            |hll: &mut Vec<u8>| (0..1000).find(|i| add(hll, format!("new:{i}").as_bytes()) == Some(true)).unwrap();
        let mut sparse = new_hll();
        for i in 0..10 {
            add(&mut sparse, format!("element:{i}").as_bytes()).unwrap();
        }
        count_cached(&mut sparse).unwrap();
        assert_eq!(sparse[15] & 0x80, 0, "a count leaves the cache valid");
        first_change(&mut sparse);
        assert!(!is_dense(&sparse));
        assert_ne!(sparse[15] & 0x80, 0);
        let mut dense = new_hll();
        for i in 0..20_000 {
            add(&mut dense, format!("element:{i}").as_bytes()).unwrap();
        }
        count_cached(&mut dense).unwrap();
        first_change(&mut dense);
        assert_eq!(dense[15] & 0x80, 0);
    }

    /// A sparse body ending in an XZERO cut short (a SETRANGE over an HLL can leave one):
    /// Redis reads its missing byte as the NUL terminator and edits it like any other, the
    /// new opcodes' last byte falling past the string's end. The bytes are redis-server
    /// 7.0.15's after `PFADD h -2.5 a 3 ""` on the same string.
    #[test]
    fn an_xzero_cut_short_at_the_end_is_edited_as_redis_edits_it() {
        let hex = |text: &str| -> Vec<u8> {
            (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
        };
        let mut hll = hex("48594c4c01000000000000000000008067a7405856");
        for element in ["-2.5", "a", "3", ""] {
            assert!(add(&mut hll, element.as_bytes()).is_some(), "{element:?} refused");
        }
        assert_eq!(hll, hex("48594c4c01000000000000000000008056f98036845074405842db8046c8844c"));
    }
}
