//! StayKV storage: the write-ahead log, the manifest, recovery, `check`/`fix`, and the
//! filesystem abstraction used to simulate power cuts.
//!
//! Runtime-agnostic: plain threads, `parking_lot` locks and callbacks (no async runtime).
//! Log payloads are opaque bytes (the engine encodes one atomic batch of effects per payload).
//! The full description with numbers is in `docs/log-format.md` and `docs/recovery.md`.
//!
//! # Files in the data directory
//!
//! - `log-<first seq, 16 hex digits>.skv` — log segments. A 32-byte header
//!   (`STAYKVLOG\0` magic, reserved u16, u32 LE format version = 1, u64 LE first seq,
//!   reserved u32, u32 LE CRC32C of the preceding 28 bytes), then frames:
//!
//!   ```text
//!   [u32 LE payload length][u32 LE CRC32C][u64 LE seq][payload]
//!   ```
//!
//!   The CRC32C covers the payload, continued over the length and seq bytes. Seqs start at 1
//!   and are consecutive across segments. The payload limit is [`MAX_PAYLOAD_LEN`]
//!   (512 MiB + 1 MiB); a larger length field is damage, and a length is never allocated
//!   before it is checked against the bytes left in the file. A segment is sealed once it
//!   reaches `segment_bytes` (default 256 MiB) and is never written again. Under `always`,
//!   with small fsyncs, segments are zero-filled ahead of time (32 MiB, `log-spare.tmp`, by
//!   a thread of their own), frames are written over the zeros (an fdatasync then commits no
//!   metadata), and such a segment is sealed at its file's end (module `spare`).
//! - `MANIFEST` — text, versioned and CRC32C-checked (see [`Manifest`]): the live snapshot
//!   (optional, with the seq it covers) and the ordered live segments. Replaced by writing
//!   `MANIFEST.tmp`, fdatasync, rename, fsync of the directory.
//! - `snap-<covered seq, 16 hex digits>.rdb` — snapshots, written by the server
//!   ([`snapshot_file_name`]) and installed with [`Log::install_snapshot`].
//!
//! Every create, rename and remove is followed by an fsync of the directory before anything
//! depends on it. Every file carries a format version; a newer version is refused with
//! [`StorageError::UnsupportedVersion`].
//!
//! # Writing
//!
//! [`Log::append`] copies the framed payload into a shared buffer under a short mutex and
//! assigns the next seq; it never does I/O. A dedicated writer thread takes everything queued,
//! writes it with one `write`, and fdatasyncs per [`FsyncPolicy`] (group commit), then
//! publishes [`Log::durable_seq`] and calls `on_durable`. After a failed write or fsync it keeps
//! the bytes in memory (everything since the last good fsync), marks the log unhealthy
//! ([`Log::healthy`], [`Log::last_error`]), and retries every `retry_interval`: it truncates the
//! file back to the last good fsync offset and rewrites, so nothing appended is lost or torn in
//! the middle of the file.
//!
//! # Recovery
//!
//! [`Log::open`] (and the read-only [`scan`]) read the manifest, hand the snapshot to
//! [`Replay::snapshot`], then every frame with a seq above the snapshot's to
//! [`Replay::frame`], in order. A torn tail of the last segment is cut (durably, with a
//! warning); any other damage refuses with [`StorageError::Corrupt`] naming the file and
//! offset. [`check`] reports damage and what repairing it would drop; [`fix`] repairs it.
//!
//! # Testing with simulated power cuts
//!
//! All file operations go through [`Fs`]. [`RealFs`] is `std::fs`; [`SimFs`] keeps durable
//! and pending state per file and directory and can produce the state a power cut leaves
//! ([`SimFs::power_cut`]) and inject ENOSPC/EIO.

mod error;
mod format;
mod fs;
mod log;
mod manifest;
mod recovery;
mod simfs;
mod spare;

pub use crate::error::{BoxError, LogError, StorageError};
pub use crate::format::{
    parse_segment_file_name, parse_snapshot_file_name, segment_file_name, snapshot_file_name, FRAME_HEADER_LEN,
    MAX_PAYLOAD_LEN, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION,
};
pub use crate::fs::{Fs, FsFile, RealFs};
pub use crate::log::{DurableCallback, FsyncPolicy, IoCallback, Log, LogIo, LogOptions};
pub use crate::manifest::{read_manifest, Manifest, SnapshotRef, MANIFEST_FILE, MANIFEST_TMP_FILE, MANIFEST_VERSION};
pub use crate::recovery::{
    check, check_live, fix, scan, scan_live, CheckReport, Damage, DamageKind, FixOutcome, FnReplay, NoReplay, Progress,
    Recovery, Replay, SegmentReport, TornTail,
};
pub use crate::simfs::{Fault, SimFs};
