//! Effects: what a write changed, as commands that reproduce it.
//!
//! An effect is a command vector for one database, replayed through the same command table
//! with the clock set to the batch's time. Replaying the batches of the log in order, each at
//! its recorded time, rebuilds exactly the keyspace that was acknowledged. Commands whose
//! result depends on anything but (keyspace, arguments, time) — randomness, scripts — record
//! the deterministic commands they amounted to instead of themselves.
//!
//! A batch is encoded as
//! `version u8 = 1 | time_ms u64 LE | count varint | { db varint | argc varint | { len varint | bytes } }`.

use bytes::Bytes;

const BATCH_VERSION: u8 = 1;
/// A bound on what a corrupted count can make the decoder reserve.
const MAX_PREALLOC: usize = 1024;

/// One replayable change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub db: u32,
    pub argv: Vec<Bytes>,
}

impl Effect {
    pub fn new(db: usize, argv: Vec<Bytes>) -> Effect {
        Effect { db: u32::try_from(db).unwrap_or(u32::MAX), argv }
    }
}

/// The length of one effect's encoding in a batch ([`encode_batch`]), without encoding it.
pub fn effect_len(db: u32, argv: &[Bytes]) -> usize {
    let args: usize = argv.iter().map(|a| varint_len(a.len() as u64) + a.len()).sum();
    varint_len(u64::from(db)) + varint_len(argv.len() as u64) + args
}

fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// Append the encoding of one batch to `out`.
pub fn encode_batch(time_ms: u64, effects: &[Effect], out: &mut Vec<u8>) {
    out.push(BATCH_VERSION);
    out.extend_from_slice(&time_ms.to_le_bytes());
    put_varint(out, effects.len() as u64);
    for effect in effects {
        put_varint(out, u64::from(effect.db));
        put_varint(out, effect.argv.len() as u64);
        for arg in &effect.argv {
            put_varint(out, arg.len() as u64);
            out.extend_from_slice(arg);
        }
    }
}

/// Why a batch could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad effect batch: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// One effect as it lies in a batch: the arguments borrow the batch's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectView<'a> {
    pub db: u32,
    pub argv: Vec<&'a [u8]>,
}

impl EffectView<'_> {
    /// The effect with its own copy of the arguments.
    pub fn to_effect(&self) -> Effect {
        Effect { db: self.db, argv: self.argv.iter().map(|arg| Bytes::copy_from_slice(arg)).collect() }
    }
}

/// Decode one batch: its time and effects.
pub fn decode_batch(buf: &[u8]) -> Result<(u64, Vec<Effect>), DecodeError> {
    decode(buf, Bytes::copy_from_slice, |db, argv| Effect { db, argv })
}

/// Decode one batch without copying its arguments: a compaction pass looks at every
/// effect's keys and replays only those of its partition.
pub fn decode_batch_view(buf: &[u8]) -> Result<(u64, Vec<EffectView<'_>>), DecodeError> {
    decode(buf, |arg| arg, |db, argv| EffectView { db, argv })
}

/// The batch format read once, each argument made by `arg` and each effect by `effect`.
fn decode<'a, A, E>(
    buf: &'a [u8],
    arg: impl Fn(&'a [u8]) -> A,
    effect: impl Fn(u32, Vec<A>) -> E,
) -> Result<(u64, Vec<E>), DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    if r.byte()? != BATCH_VERSION {
        return Err(DecodeError("unknown batch version"));
    }
    let time = u64::from_le_bytes(r.take(8)?.try_into().map_err(|_| DecodeError("time"))?);
    let count = r.len()?;
    let mut effects = Vec::with_capacity(count.min(MAX_PREALLOC));
    for _ in 0..count {
        let db = u32::try_from(r.varint()?).map_err(|_| DecodeError("db out of range"))?;
        let argc = r.len()?;
        let mut argv = Vec::with_capacity(argc.min(MAX_PREALLOC));
        for _ in 0..argc {
            let len = r.len()?;
            argv.push(arg(r.take(len)?));
        }
        effects.push(effect(db, argv));
    }
    if r.pos != buf.len() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok((time, effects))
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError("length overflow"))?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError("truncated"))?;
        self.pos = end;
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError("varint too long"))
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.varint()?).map_err(|_| DecodeError("length out of range"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let effects = vec![
            Effect::new(0, vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from(vec![0u8; 300])]),
            Effect::new(15, vec![Bytes::from("FLUSHDB")]),
        ];
        let mut buf = Vec::new();
        encode_batch(1_700_000_000_123, &effects, &mut buf);
        // A batch: version, time, count (one byte here), then each effect.
        let effects_len: usize = effects.iter().map(|e| effect_len(e.db, &e.argv)).sum();
        assert_eq!(1 + 8 + 1 + effects_len, buf.len());
        assert_eq!(decode_batch(&buf).unwrap(), (1_700_000_000_123, effects));
    }

    #[test]
    fn a_view_borrows_the_arguments_from_the_batch() {
        let effects = vec![Effect::new(2, vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from("v")])];
        let mut buf = Vec::new();
        encode_batch(9, &effects, &mut buf);
        let (time, views) = decode_batch_view(&buf).unwrap();
        assert_eq!(time, 9);
        assert_eq!(views[0].db, 2);
        assert_eq!(views[0].argv, [&b"SET"[..], b"k", b"v"]);
        let inside = buf.as_ptr_range();
        assert!(views[0].argv.iter().all(|arg| inside.contains(&arg.as_ptr())));
        assert_eq!(views[0].to_effect(), effects[0]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        encode_batch(7, &[Effect::new(3, vec![Bytes::from("DEL"), Bytes::from("key")])], &mut buf);
        for cut in 0..buf.len() {
            assert!(decode_batch(&buf[..cut]).is_err());
        }
        let huge = [1u8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode_batch(&huge).is_err());
    }
}
