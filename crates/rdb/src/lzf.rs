//! LZF, the compression Redis applies to strings in RDB files (`rdbcompression yes`).
//!
//! Format (as produced by liblzf): a sequence of instructions, each starting with a
//! control byte `c`:
//! * `c < 32`: a literal run of `c + 1` bytes follows.
//! * otherwise a back reference: `len = c >> 5` (if 7, one more byte is added to it),
//!   then one byte `lo`; the reference starts `((c & 0x1f) << 8) + lo + 1` bytes
//!   before the current end of output and copies `len + 2` bytes (it may overlap the
//!   bytes it produces).
//!
//! Both directions are written from the format description; the decompressor checks
//! every bound and never writes more than the declared uncompressed length.

/// Decompresses `input`, which must expand to exactly `out_len` bytes.
pub(crate) fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
    // A back reference of 3 input bytes yields at most 264 output bytes, so the output
    // can never exceed ~88x the input: cap the preallocation by that, and by 16 MiB.
    let cap = out_len.min(input.len().saturating_mul(90)).min(16 << 20);
    let mut out: Vec<u8> = Vec::with_capacity(cap);
    let mut i = 0usize;
    while let Some(&ctrl) = input.get(i) {
        i += 1;
        let ctrl = usize::from(ctrl);
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input
                .get(i..i + run)
                .ok_or_else(|| format!("LZF literal run of {run} bytes goes past the end of the compressed data"))?;
            if out.len() + run > out_len {
                return Err(format!("LZF data expands beyond the declared length of {out_len} bytes"));
            }
            out.extend_from_slice(lit);
            i += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                let extra = *input.get(i).ok_or("LZF back reference is cut off (length byte)")?;
                len += usize::from(extra);
                i += 1;
            }
            let lo = *input.get(i).ok_or("LZF back reference is cut off (offset byte)")?;
            i += 1;
            let back = ((ctrl & 0x1f) << 8) + usize::from(lo) + 1;
            len += 2;
            if back > out.len() {
                return Err(format!(
                    "LZF back reference points {back} bytes back with only {} bytes of output",
                    out.len()
                ));
            }
            if out.len() + len > out_len {
                return Err(format!("LZF data expands beyond the declared length of {out_len} bytes"));
            }
            let start = out.len() - back;
            if back >= len {
                out.extend_from_within(start..start + len);
            } else {
                // Overlapping copy: bytes produced by this reference feed it.
                for k in start..start + len {
                    let b = out.get(k).copied().ok_or("LZF internal bound")?;
                    out.push(b);
                }
            }
        }
    }
    if out.len() != out_len {
        return Err(format!("LZF data expands to {} bytes but {out_len} were declared", out.len()));
    }
    Ok(out)
}

const MAX_OFF: usize = 1 << 13; // back references reach at most 8192 bytes back
const MAX_REF: usize = (1 << 8) + (1 << 3); // 264 bytes per back reference
const MAX_LIT: usize = 1 << 5; // 32 bytes per literal run

/// How many bytes (at most `max`) at `ip` repeat those at `r`; compares 8 bytes at a time.
fn match_length(input: &[u8], r: usize, ip: usize, max: usize) -> usize {
    let word = |p: usize| input.get(p..p + 8).and_then(|w| w.try_into().ok()).map(u64::from_le_bytes);
    let mut len = 0;
    while len + 8 <= max {
        match (word(r + len), word(ip + len)) {
            (Some(a), Some(b)) if a == b => len += 8,
            (Some(a), Some(b)) => return len + ((a ^ b).trailing_zeros() / 8) as usize,
            _ => break,
        }
    }
    while len < max && input.get(r + len) == input.get(ip + len) {
        len += 1;
    }
    len
}

/// Compresses `input`. Returns `None` when the result would not be at least 4 bytes
/// smaller than the input (the rule Redis applies before storing a compressed string), and
/// for inputs of 2 GiB or more (stored as they are).
pub(crate) fn compress(input: &[u8]) -> Option<Vec<u8>> {
    let n = input.len();
    if n <= 4 {
        return None;
    }
    TABLE.with(|table| match table.try_borrow_mut() {
        Ok(mut table) => table.compress(input),
        // Not reentered in practice; a fresh table if it ever were.
        Err(_) => HashTable::default().compress(input),
    })
}

/// Bits of the hash table: 16 K slots.
const TABLE_BITS: u32 = 14;

thread_local! {
    static TABLE: std::cell::RefCell<HashTable> = std::cell::RefCell::new(HashTable::default());
}

/// The compressor's hash table, kept between calls: allocating and clearing one for every
/// value was a fifth of the time (per ~900-byte JSON value 1,272 → 1,067 ns, per
/// incompressible 1 KB 955 → 761 ns). A slot holds `base + position + 1`; slots at or below
/// `base` were written by earlier inputs and read as empty. `base` moves past each input.
#[derive(Default)]
struct HashTable {
    slots: Vec<u32>,
    base: u32,
}

impl HashTable {
    fn compress(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        let n = input.len();
        let span = u32::try_from(n).ok().filter(|&n| n < u32::MAX / 2)?;
        if self.slots.is_empty() || self.base > u32::MAX - span - 1 {
            self.slots.clear();
            self.slots.resize(1 << TABLE_BITS, 0);
            self.base = 0;
        }
        let out = compress_with(input, &mut self.slots, self.base);
        self.base += span + 1;
        out
    }
}

/// LZF of `input` (longer than 4 bytes) with a hash table whose slots above `base` are this
/// input's.
fn compress_with(input: &[u8], table: &mut [u32], base: u32) -> Option<Vec<u8>> {
    let n = input.len();
    let limit = n - 4;
    let bits = TABLE_BITS;
    let shift = 24 - bits;
    let mut out: Vec<u8> = Vec::with_capacity(limit);
    let mut lit_start = 0usize;
    let mut ip = 0usize;

    let hash_at = |p: usize| -> Option<usize> {
        let w = input.get(p..p + 3)?;
        let (a, b, c) = (w.first()?, w.get(1)?, w.get(2)?);
        let v = (u32::from(*a) << 16) | (u32::from(*b) << 8) | u32::from(*c);
        Some((v.wrapping_mul(0x9E37_79B1) >> 8 >> shift) as usize & ((1 << bits) - 1))
    };

    fn flush_literals(out: &mut Vec<u8>, lits: &[u8]) {
        for chunk in lits.chunks(MAX_LIT) {
            out.push((chunk.len() - 1) as u8);
            out.extend_from_slice(chunk);
        }
    }

    // Positions probed since the last match: past 32 misses in a row the scan steps over
    // 2 bytes, past 64 over 3, and so on (Snappy's heuristic). An incompressible 1 KB value
    // (a random token, most session data) is then given up after about a quarter of the
    // lookups, while text with repeats keeps stepping by one; the output is plain LZF.
    let mut misses = 0usize;
    while ip + 2 < n {
        let Some(h) = hash_at(ip) else { break };
        let slot = table.get_mut(h)?;
        let candidate = slot.saturating_sub(base) as usize; // position + 1, 0 = empty
        *slot = base + (ip + 1) as u32;
        let mut matched = 0usize;
        if candidate > 0 {
            let r = candidate - 1;
            if r < ip && ip - r <= MAX_OFF {
                matched = match_length(input, r, ip, MAX_REF.min(n - ip));
            }
            if matched >= 3 {
                flush_literals(&mut out, input.get(lit_start..ip)?);
                let off = ip - (candidate - 1) - 1;
                let l = matched - 2;
                if l < 7 {
                    out.push(((l << 5) | (off >> 8)) as u8);
                } else {
                    out.push(((7 << 5) | (off >> 8)) as u8);
                    out.push((l - 7) as u8);
                }
                out.push((off & 0xff) as u8);
                // Remember a couple of positions inside the match to find later repeats.
                for p in [ip + matched - 2, ip + matched - 1] {
                    if let Some(h2) = hash_at(p) {
                        if let Some(s) = table.get_mut(h2) {
                            *s = base + (p + 1) as u32;
                        }
                    }
                }
                ip += matched;
                lit_start = ip;
                misses = 0;
                if out.len() >= limit {
                    return None;
                }
                continue;
            }
        }
        misses += 1;
        ip = (ip + 1 + (misses >> 5)).min(n);
        if out.len() + (ip - lit_start) >= limit + MAX_LIT {
            return None;
        }
    }
    flush_literals(&mut out, input.get(lit_start..)?);
    if out.len() >= limit {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn round_trips() {
        let mut samples: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            b"hello hello hello hello hello hello world".to_vec(),
            (0..100_000u32).map(|i| (i % 251) as u8).collect(),
            (0..5000u32).map(|i| b"abcdefgh"[(i * i % 8) as usize]).collect(),
            vec![0u8; 70_000],
        ];
        samples.push(samples[1].repeat(300));
        for s in samples {
            let c = compress(&s).unwrap();
            assert!(c.len() + 4 <= s.len());
            assert_eq!(decompress(&c, s.len()).unwrap(), s);
        }
    }

    /// Pseudo-random bytes (xorshift), drawn from `alphabet`.
    fn noise(seed: u32, len: usize, alphabet: &[u8]) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                alphabet[x as usize % alphabet.len()]
            })
            .collect()
    }

    #[test]
    fn match_length_agrees_with_a_byte_by_byte_comparison() {
        let input = noise(7, 4000, b"ab");
        for r in (0..input.len()).step_by(37) {
            for ip in (r + 1..input.len()).step_by(53) {
                let max = MAX_REF.min(input.len() - ip);
                let naive = (0..max).take_while(|&k| input[r + k] == input[ip + k]).count();
                assert_eq!(match_length(&input, r, ip, max), naive, "r={r} ip={ip}");
            }
        }
    }

    #[test]
    fn round_trips_across_incompressible_stretches() {
        // Runs of noise (where the scan starts skipping) between repeats it must still find.
        let mut s = Vec::new();
        for k in 0..40u32 {
            let stretch = noise(k + 1, 300 + (k as usize * 97) % 900, b"0123456789abcdefghijklmnopqrstuvwxyz");
            s.extend(&stretch);
            s.extend(&stretch[..300]);
        }
        let c = compress(&s).unwrap();
        assert!(c.len() < s.len() * 9 / 10, "{} of {}", c.len(), s.len());
        assert_eq!(decompress(&c, s.len()).unwrap(), s);
    }

    #[test]
    fn a_reused_table_never_refers_to_an_earlier_input() {
        let earlier = b"hello hello hello hello hello hello world".repeat(40);
        let later = b"world hello world hello world hello!!".repeat(3);
        let mut table = HashTable::default();
        for input in [&earlier, &later, &earlier] {
            let c = table.compress(input).unwrap();
            assert_eq!(decompress(&c, input.len()).unwrap(), *input);
        }
        // Near the end of the position space the table starts over.
        let mut table = HashTable { slots: vec![u32::MAX; 1 << TABLE_BITS], base: u32::MAX - 100 };
        let c = table.compress(&later).unwrap();
        assert_eq!(decompress(&c, later.len()).unwrap(), later);
        assert_eq!(table.base, later.len() as u32 + 1);
    }

    #[test]
    fn incompressible_is_none() {
        assert!(compress(b"abcd").is_none());
        assert!(compress(b"abcdefghijklmnopqrstuvwxyz0123456789").is_none());
        let every_byte: Vec<u8> = (0..=255).collect();
        assert!(compress(&noise(12345, 4000, &every_byte)).is_none());
    }

    #[test]
    fn bad_input_is_rejected() {
        // back reference with empty output
        assert!(decompress(&[0x20, 0x00], 3).is_err());
        // literal run past end
        assert!(decompress(&[0x05, b'a'], 6).is_err());
        // expands beyond declared length
        assert!(decompress(&[0x02, b'a', b'b', b'c'], 2).is_err());
        // shorter than declared
        assert!(decompress(&[0x00, b'a'], 2).is_err());
        // cut-off back reference
        assert!(decompress(&[0x00, b'a', 0xe0], 20).is_err());
        // huge declared length does not allocate it
        assert!(decompress(&[0x00, b'a'], usize::MAX).is_err());
        // overlapping reference works: "a" then copy 9 from 1 back
        let d = decompress(&[0x00, b'a', (7 << 5), 0, 0], 10).unwrap();
        assert_eq!(d, b"aaaaaaaaaa");
    }
}
