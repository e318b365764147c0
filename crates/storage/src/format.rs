//! Byte layouts of segment files: the segment header and the frame header.
//!
//! See the crate documentation (and `docs/log-format.md`) for the full description.

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 10] = *b"STAYKVLOG\0";
/// Segment format version written by this build (and the newest one it reads).
pub const SEGMENT_VERSION: u32 = 1;
/// Size of the segment header in bytes.
pub const SEGMENT_HEADER_LEN: u64 = 32;
/// Size of a frame header in bytes: `u32 length`, `u32 crc32c`, `u64 seq`.
pub const FRAME_HEADER_LEN: u64 = 16;
/// Largest payload a frame may carry: 512 MiB (Redis's bulk string limit) plus 1 MiB of slack
/// for the batch encoding around it. A length field above this is treated as damage, so a
/// corrupted length never causes a large allocation.
pub const MAX_PAYLOAD_LEN: u32 = 512 * 1024 * 1024 + 1024 * 1024;

const HDR_LEN: usize = 32;
const FRAME_HDR: usize = 16;

/// Parsed segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version found in the file.
    pub version: u32,
    /// Sequence number of the first frame stored in the segment.
    pub first_seq: u64,
}

/// Why a segment header was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`SEGMENT_HEADER_LEN`] bytes.
    Short(usize),
    /// Magic bytes do not match.
    BadMagic,
    /// Written by a newer format version.
    NewerVersion(u32),
    /// Version 0 or otherwise unusable.
    BadVersion(u32),
    /// Header checksum mismatch.
    BadChecksum,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Short(n) => write!(f, "segment header incomplete ({n} of {SEGMENT_HEADER_LEN} bytes)"),
            HeaderError::BadMagic => write!(f, "not a StayKV log segment (bad magic bytes)"),
            HeaderError::NewerVersion(v) => {
                write!(f, "segment format version {v} is newer than supported version {SEGMENT_VERSION}")
            }
            HeaderError::BadVersion(v) => write!(f, "invalid segment format version {v}"),
            HeaderError::BadChecksum => write!(f, "segment header checksum mismatch"),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let arr: [u8; 4] = s.try_into().ok()?;
    Some(u32::from_le_bytes(arr))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let arr: [u8; 8] = s.try_into().ok()?;
    Some(u64::from_le_bytes(arr))
}

/// Encodes a segment header.
///
/// Layout (little endian): `[0..10) magic`, `[10..12) reserved 0`, `[12..16) u32 version`,
/// `[16..24) u64 first_seq`, `[24..28) reserved 0`, `[28..32) u32 CRC32C of bytes 0..28`.
pub fn encode_segment_header(first_seq: u64) -> [u8; HDR_LEN] {
    let mut h = [0u8; HDR_LEN];
    let (magic, rest) = h.split_at_mut(10);
    magic.copy_from_slice(&SEGMENT_MAGIC);
    let (_reserved, rest) = rest.split_at_mut(2);
    let (ver, rest) = rest.split_at_mut(4);
    ver.copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    let (seq, _rest) = rest.split_at_mut(8);
    seq.copy_from_slice(&first_seq.to_le_bytes());
    let (body, crc_slot) = h.split_at_mut(28);
    crc_slot.copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    h
}

/// Decodes and validates a segment header from the first bytes of a file.
pub fn decode_segment_header(b: &[u8]) -> Result<SegmentHeader, HeaderError> {
    if b.len() < HDR_LEN {
        // Check the magic on what we have, to give the better message.
        let n = b.len().min(SEGMENT_MAGIC.len());
        if b.get(..n) != SEGMENT_MAGIC.get(..n) {
            return Err(HeaderError::BadMagic);
        }
        return Err(HeaderError::Short(b.len()));
    }
    if b.get(..10) != Some(&SEGMENT_MAGIC[..]) {
        return Err(HeaderError::BadMagic);
    }
    let version = u32_at(b, 12).ok_or(HeaderError::Short(b.len()))?;
    if version > SEGMENT_VERSION {
        return Err(HeaderError::NewerVersion(version));
    }
    if version == 0 {
        return Err(HeaderError::BadVersion(version));
    }
    let stored = u32_at(b, 28).ok_or(HeaderError::Short(b.len()))?;
    let body = b.get(..28).ok_or(HeaderError::Short(b.len()))?;
    if crc32c::crc32c(body) != stored {
        return Err(HeaderError::BadChecksum);
    }
    let first_seq = u64_at(b, 16).ok_or(HeaderError::Short(b.len()))?;
    Ok(SegmentHeader { version, first_seq })
}

/// CRC32C of a frame: over the payload, continued over the 4 length bytes and the 8 seq bytes.
///
/// The payload part is computed first so that appenders can checksum the payload before taking
/// the queue lock (the sequence number is only known under the lock).
pub fn frame_crc(payload_crc: u32, len: u32, seq: u64) -> u32 {
    let mut tail = [0u8; 12];
    let (l, s) = tail.split_at_mut(4);
    l.copy_from_slice(&len.to_le_bytes());
    s.copy_from_slice(&seq.to_le_bytes());
    crc32c::crc32c_append(payload_crc, &tail)
}

/// Appends a complete frame for `payload` with sequence number `seq` to `out`.
/// `payload_crc` must be `crc32c(payload)`; `payload.len()` must be `<= MAX_PAYLOAD_LEN`.
pub fn push_frame(out: &mut Vec<u8>, seq: u64, payload: &[u8], payload_crc: u32) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.reserve(FRAME_HDR + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&frame_crc(payload_crc, len, seq).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length.
    pub len: u32,
    /// Stored checksum.
    pub crc: u32,
    /// Sequence number.
    pub seq: u64,
}

/// Decodes a frame header from exactly-or-more than 16 bytes.
pub fn decode_frame_header(b: &[u8]) -> Option<FrameHeader> {
    Some(FrameHeader { len: u32_at(b, 0)?, crc: u32_at(b, 4)?, seq: u64_at(b, 8)? })
}

impl FrameHeader {
    /// Whether `payload` matches the stored checksum.
    pub fn verify(&self, payload: &[u8]) -> bool {
        frame_crc(crc32c::crc32c(payload), self.len, self.seq) == self.crc
    }
}

/// The zero-filled file made ahead of time to become the next segment (see
/// `docs/log-format.md`, "Zero-filled segments"); a leftover one is removed at start.
pub const SPARE_SEGMENT_FILE: &str = "log-spare.tmp";

/// File name of the segment whose first frame has sequence number `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("log-{first_seq:016x}.skv")
}

/// Parses a segment file name produced by [`segment_file_name`].
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    parse_hex_name(name, "log-", ".skv")
}

/// File name for a snapshot covering every frame with `seq <= covered_seq`.
///
/// Using this name lets recovery remove leftover snapshot files (an interrupted snapshot, or a
/// superseded one whose removal was interrupted) that the manifest does not name.
pub fn snapshot_file_name(covered_seq: u64) -> String {
    format!("snap-{covered_seq:016x}.rdb")
}

/// Parses a snapshot file name produced by [`snapshot_file_name`].
pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    parse_hex_name(name, "snap-", ".rdb")
}

fn parse_hex_name(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let hex = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if hex.len() != 16 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_rejections() {
        let h = encode_segment_header(42);
        assert_eq!(decode_segment_header(&h), Ok(SegmentHeader { version: 1, first_seq: 42 }));
        assert_eq!(decode_segment_header(&h[..5]), Err(HeaderError::Short(5)));
        let mut bad = h;
        bad[0] = b'X';
        assert_eq!(decode_segment_header(&bad), Err(HeaderError::BadMagic));
        let mut bad = h;
        bad[20] ^= 1;
        assert_eq!(decode_segment_header(&bad), Err(HeaderError::BadChecksum));
        let mut newer = h;
        newer[12..16].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(decode_segment_header(&newer), Err(HeaderError::NewerVersion(2)));
    }

    #[test]
    fn frame_roundtrip() {
        let mut out = Vec::new();
        push_frame(&mut out, 7, b"hello", crc32c::crc32c(b"hello"));
        assert_eq!(out.len(), 16 + 5);
        let h = decode_frame_header(&out).unwrap();
        assert_eq!(h.len, 5);
        assert_eq!(h.seq, 7);
        assert!(h.verify(&out[16..]));
        assert!(!h.verify(b"hellp"));
        // A zero-filled header never verifies.
        let z = decode_frame_header(&[0u8; 16]).unwrap();
        assert!(!z.verify(&[]));
    }

    #[test]
    fn names() {
        assert_eq!(segment_file_name(1), "log-0000000000000001.skv");
        assert_eq!(parse_segment_file_name("log-00000000000000ff.skv"), Some(255));
        assert_eq!(parse_segment_file_name("log-ff.skv"), None);
        assert_eq!(parse_segment_file_name("log-00000000000000ff.skv.dropped"), None);
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(9)), Some(9));
    }
}
