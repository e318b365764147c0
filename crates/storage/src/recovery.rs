//! Recovery scanning (`scan`, and the recovery run by `Log::open`), `check` and `fix`.
//!
//! Classification of damage (see `docs/recovery.md`):
//! - A frame that cannot be read (incomplete header, length over the limit or past the end of
//!   the file, checksum mismatch) in the **last** segment, with no valid frame anywhere after
//!   it in that file, is a **torn tail**: recovery truncates the file there (durably) and logs a
//!   warning. Garbage or zeros after it are part of the tear (a power cut can leave a
//!   half-written sector or a zero-filled extension). Zeros right after the last whole frame
//!   of a segment are no tear: the unused end of a zero-filled segment.
//! - Any other damage is **corruption**: a bad frame in an earlier segment, a bad frame
//!   followed by a valid frame (a checksum-valid frame whose sequence number continues the log),
//!   a valid frame with an unexpected sequence number, a bad segment header, a missing
//!   segment, a gap between segments. Recovery refuses with [`StorageError::Corrupt`]
//!   naming the file and offset; `check` describes it and `fix` repairs it.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::error::{BoxError, StorageError};
use crate::format::{
    decode_frame_header, decode_segment_header, encode_segment_header, parse_segment_file_name,
    parse_snapshot_file_name, segment_file_name, HeaderError, FRAME_HEADER_LEN, MAX_PAYLOAD_LEN, SEGMENT_HEADER_LEN,
    SEGMENT_VERSION, SPARE_SEGMENT_FILE,
};
use crate::fs::{Fs, FsFile};
use crate::manifest::{read_manifest, write_manifest, Manifest, SnapshotRef, MANIFEST_FILE, MANIFEST_TMP_FILE};

const CHUNK: usize = 1 << 20;
const PROGRESS_STEP: u64 = 4 << 20;

/// Recovery progress, reported to [`Replay::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of segment files scanned so far.
    pub bytes_done: u64,
    /// Total bytes of the live segment files.
    pub bytes_total: u64,
    /// Frames read so far (replayed or skipped).
    pub frames: u64,
}

impl Progress {
    /// Percentage done (100 when there is nothing to read).
    pub fn percent(&self) -> f64 {
        if self.bytes_total == 0 {
            100.0
        } else {
            self.bytes_done as f64 * 100.0 / self.bytes_total as f64
        }
    }
}

/// Receives the recovered data, in order: the snapshot (if the manifest names one), then every
/// frame after it.
pub trait Replay {
    /// Called once, before any frame, when the manifest names a live snapshot. The server
    /// loads the snapshot file (`dir/snapshot.file`) here.
    fn snapshot(&mut self, snapshot: &SnapshotRef) -> Result<(), BoxError> {
        let _ = snapshot;
        Ok(())
    }
    /// Called for every frame with `seq > snapshot seq`, in increasing seq order.
    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), BoxError>;
    /// Whether the frame `seq` is wanted: one that is not is stepped over by its length,
    /// without checking its checksum or calling [`Replay::frame`] — for a reader that has
    /// read and checked every frame once already and needs only some of them again (the
    /// partition passes of a compaction). The chain of seqs is still checked.
    fn wants(&mut self, seq: u64) -> bool {
        let _ = seq;
        true
    }
    /// Called about every 4 MiB read and at the end of each segment.
    fn progress(&mut self, progress: &Progress) {
        let _ = progress;
    }
}

/// A [`Replay`] that ignores everything (validation only).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReplay;

impl Replay for NoReplay {
    fn frame(&mut self, _seq: u64, _payload: &[u8]) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Adapts a closure `FnMut(seq, payload) -> Result<(), BoxError>` into a [`Replay`].
pub struct FnReplay<F>(pub F);

impl<F> fmt::Debug for FnReplay<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnReplay")
    }
}

impl<F: FnMut(u64, &[u8]) -> Result<(), BoxError>> Replay for FnReplay<F> {
    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), BoxError> {
        (self.0)(seq, payload)
    }
}

/// A torn tail found (and, when opening the log, cut off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Segment file name.
    pub file: String,
    /// Offset of the first byte cut.
    pub offset: u64,
    /// Number of bytes cut (or that would be cut, for the read-only [`scan`]).
    pub bytes: u64,
    /// What was found there.
    pub reason: String,
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// No manifest and no data: a new, empty data directory.
    pub fresh: bool,
    /// The live snapshot named by the manifest.
    pub snapshot: Option<SnapshotRef>,
    /// Live segment file names, oldest first.
    pub segments: Vec<String>,
    /// Frames passed to [`Replay::frame`].
    pub frames_replayed: u64,
    /// Valid frames not replayed because the snapshot covers them.
    pub frames_skipped: u64,
    /// Highest seq recovered (from the log, or the snapshot), 0 if none.
    pub last_seq: u64,
    /// Bytes of segment files read.
    pub bytes_scanned: u64,
    /// Torn tail found at the end of the last segment.
    pub torn_tail: Option<TornTail>,
    /// Leftover files not referenced by the manifest that were removed (by `Log::open`) or
    /// would be removed (by [`scan`]): interrupted rotations, compactions or snapshots.
    pub leftover_files: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Reading

struct Reader<'a> {
    f: &'a dyn FsFile,
    path: &'a Path,
    len: u64,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> Reader<'a> {
    fn new(f: &'a dyn FsFile, path: &'a Path, len: u64) -> Self {
        Reader { f, path, len, buf: Vec::new(), start: 0 }
    }

    /// `n` bytes at `off`, or `None` if the file ends before.
    fn get(&mut self, off: u64, n: usize) -> Result<Option<&[u8]>, StorageError> {
        let Some(end) = off.checked_add(n as u64) else {
            return Ok(None);
        };
        if end > self.len {
            return Ok(None);
        }
        let have_end = self.start + self.buf.len() as u64;
        if off < self.start || end > have_end {
            let want = (n.max(CHUNK) as u64).min(self.len - off);
            let want = usize::try_from(want).unwrap_or(n);
            self.buf.resize(want, 0);
            self.f.read_exact_at(off, &mut self.buf).map_err(|e| StorageError::io("read", self.path, e))?;
            self.start = off;
        }
        let s = usize::try_from(off - self.start).unwrap_or(usize::MAX);
        Ok(self.buf.get(s..s.saturating_add(n)))
    }

    fn read_vec(&self, off: u64, n: usize) -> Result<Vec<u8>, StorageError> {
        let mut v = vec![0u8; n];
        self.f.read_exact_at(off, &mut v).map_err(|e| StorageError::io("read", self.path, e))?;
        Ok(v)
    }

    fn all_zero_from(&mut self, mut off: u64) -> Result<bool, StorageError> {
        while off < self.len {
            let n = usize::try_from((self.len - off).min(CHUNK as u64)).unwrap_or(CHUNK);
            match self.get(off, n)? {
                Some(b) if b.iter().all(|&x| x == 0) => off += n as u64,
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// First offset `q >= from` where a checksum-valid frame starts whose seq continues the
    /// log: `after_seq < seq <= after_seq + (q - from) / 16 + 2` (at most one frame per 16
    /// bytes can lie between). The tight window keeps payload bytes that happen to contain an
    /// old frame (a value holding a copy of a log file) from being taken for log data.
    fn find_valid_frame(&mut self, from: u64, after_seq: u64) -> Result<Option<(u64, u64)>, StorageError> {
        let hdr_len = FRAME_HEADER_LEN;
        let mut p = from;
        while p.saturating_add(hdr_len) <= self.len {
            let chunk_end = (p + CHUNK as u64).min(self.len - hdr_len + 1);
            let read_end = (chunk_end + hdr_len - 1).min(self.len);
            let n = usize::try_from(read_end - p).unwrap_or(0);
            let data = match self.get(p, n)? {
                Some(d) => d.to_vec(),
                None => return Ok(None),
            };
            if data.iter().all(|&b| b == 0) {
                // An all-zero header never verifies: the unused part of a zero-filled
                // segment is skipped a chunk at a time, not tried at every byte.
                p = chunk_end;
                continue;
            }
            for (i, win) in data.windows(16).enumerate() {
                let q = p + i as u64;
                if q >= chunk_end {
                    break;
                }
                let Some(h) = decode_frame_header(win) else {
                    continue;
                };
                let plausible = h.seq > after_seq
                    && h.seq - after_seq <= (q - from) / hdr_len + 2
                    && h.len <= MAX_PAYLOAD_LEN
                    && q + hdr_len + u64::from(h.len) <= self.len;
                if !plausible {
                    continue;
                }
                let payload = self.read_vec(q + hdr_len, h.len as usize)?;
                if h.verify(&payload) {
                    return Ok(Some((q, h.seq)));
                }
            }
            p = chunk_end;
        }
        Ok(None)
    }
}

/// Why a frame could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FrameProblem {
    ShortHeader(u64),
    TooLong(u32),
    PastEnd { need: u64, have: u64 },
    BadChecksum,
    SeqMismatch { expected: u64, found: u64 },
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameProblem::ShortHeader(n) => write!(f, "incomplete frame header ({n} of {FRAME_HEADER_LEN} bytes)"),
            FrameProblem::TooLong(l) => write!(f, "frame length {l} exceeds the maximum of {MAX_PAYLOAD_LEN} bytes"),
            FrameProblem::PastEnd { need, have } => {
                write!(f, "incomplete frame (needs {need} bytes, {have} left in the file)")
            }
            FrameProblem::BadChecksum => write!(f, "frame checksum mismatch"),
            FrameProblem::SeqMismatch { expected, found } => {
                write!(f, "frame has sequence number {found}, expected {expected}")
            }
        }
    }
}

struct FrameScan {
    /// Offset after the last good frame (where the problem is, if any).
    end: u64,
    next_seq: u64,
    frames: u64,
    problem: Option<FrameProblem>,
}

/// Visitor of the frames of a walk.
trait Visit {
    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), StorageError>;
    fn progress(&mut self, _p: &Progress) {}
    /// See [`Replay::wants`].
    fn wants(&mut self, _seq: u64) -> bool {
        true
    }
}

struct CountOnly;
impl Visit for CountOnly {
    fn frame(&mut self, _seq: u64, _payload: &[u8]) -> Result<(), StorageError> {
        Ok(())
    }
}

fn scan_frames(
    r: &mut Reader<'_>,
    start: u64,
    first_seq: u64,
    v: &mut dyn Visit,
    prog: &mut dyn FnMut(&mut dyn Visit, u64, u64),
) -> Result<FrameScan, StorageError> {
    let mut off = start;
    let mut seq = first_seq;
    let mut frames = 0u64;
    let mut last_prog = off;
    let problem = loop {
        if off >= r.len {
            break None;
        }
        let len = r.len;
        let h = match r.get(off, FRAME_HEADER_LEN as usize)? {
            None => break Some(FrameProblem::ShortHeader(len - off)),
            Some(b) => match decode_frame_header(b) {
                Some(h) => h,
                None => break Some(FrameProblem::ShortHeader(len - off)),
            },
        };
        if h.len > MAX_PAYLOAD_LEN {
            break Some(FrameProblem::TooLong(h.len));
        }
        let total = FRAME_HEADER_LEN + u64::from(h.len);
        if off + total > len {
            break Some(FrameProblem::PastEnd { need: total, have: len - off });
        }
        if v.wants(seq) {
            let Some(frame) = r.get(off, total as usize)? else {
                break Some(FrameProblem::PastEnd { need: total, have: len - off });
            };
            let payload = frame.get(FRAME_HEADER_LEN as usize..).unwrap_or_default();
            if !h.verify(payload) {
                break Some(FrameProblem::BadChecksum);
            }
            if h.seq != seq {
                break Some(FrameProblem::SeqMismatch { expected: seq, found: h.seq });
            }
            v.frame(seq, payload)?;
        } else if h.seq != seq {
            break Some(FrameProblem::SeqMismatch { expected: seq, found: h.seq });
        }
        frames += 1;
        seq += 1;
        off += total;
        if off - last_prog >= PROGRESS_STEP {
            prog(v, off - last_prog, frames);
            last_prog = off;
        }
    };
    prog(v, off - last_prog, frames);
    Ok(FrameScan { end: off, next_seq: seq, frames, problem })
}

/// Number of checksum-valid frames found at or after `from` (resynchronising past damage).
fn count_frames_from(r: &mut Reader<'_>, from: u64, after_seq: u64) -> Result<u64, StorageError> {
    let mut total = 0;
    let mut pos = from;
    let mut after = after_seq;
    while let Some((off, seq)) = r.find_valid_frame(pos, after)? {
        let s = scan_frames(r, off, seq, &mut CountOnly, &mut |_, _, _| {})?;
        total += s.frames;
        after = s.next_seq.saturating_sub(1);
        if s.problem.is_none() {
            break;
        }
        pos = s.end + 1;
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// Walking the live segments

/// Per-segment result of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReport {
    /// File name.
    pub file: String,
    /// Bytes of log data: the file's size, less the zeros after the last frame (see
    /// `docs/log-format.md`, "Zero-filled segments").
    pub bytes: u64,
    /// First seq (from the file name).
    pub first_seq: u64,
    /// Valid frames before the damage (or all of them).
    pub frames: u64,
}

impl SegmentReport {
    /// Seq following the last valid frame.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.frames
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct WalkDamage {
    index: usize,
    file: String,
    offset: u64,
    reason: String,
    torn: bool,
    whole_segment: bool,
}

struct Walk {
    segs: Vec<SegmentReport>,
    lens: Vec<Option<u64>>,
    damage: Option<WalkDamage>,
    next_seq: u64,
    bytes_total: u64,
    bytes_done: u64,
}

fn first_seq_of(name: &str) -> u64 {
    parse_segment_file_name(name).unwrap_or(0)
}

/// Reads the manifest's segments in order. `live`: a server's log writer may be appending to
/// the last segment meanwhile, so a bad frame there is its unfinished write (a torn tail),
/// whatever the bytes after it hold by the time they are read.
fn walk(fs: &dyn Fs, dir: &Path, m: &Manifest, v: &mut dyn Visit, live: bool) -> Result<Walk, StorageError> {
    let lens = segment_lengths(fs, dir, m)?;
    let snap_seq = m.snapshot.as_ref().map(|s| s.seq);
    let mut w = Walk {
        segs: Vec::new(),
        lens: lens.clone(),
        damage: None,
        next_seq: snap_seq.map_or(1, |s| s + 1),
        bytes_total: lens.iter().flatten().sum(),
        bytes_done: 0,
    };
    let mut frames_total = 0u64;
    let last = m.segments.len().saturating_sub(1);
    for (i, (name, len)) in m.segments.iter().zip(lens).enumerate() {
        let path = dir.join(name);
        let name_seq = first_seq_of(name);
        let mut seg = SegmentReport { file: name.clone(), bytes: len.unwrap_or(0), first_seq: name_seq, frames: 0 };
        let damage = |offset, reason, torn, whole_segment| {
            Some(WalkDamage { index: i, file: name.clone(), offset, reason, torn, whole_segment })
        };
        let Some(len) = len else {
            w.segs.push(seg);
            w.damage = damage(0, "segment listed in MANIFEST is missing".into(), false, true);
            break;
        };
        let f = fs.open_read(&path).map_err(|e| StorageError::io("open", &path, e))?;
        let mut r = Reader::new(&*f, &path, len);
        // The first segment may start before the snapshot's seq (frames the snapshot holds
        // are skipped); every later one where the one before it ended.
        let expected = match (i, snap_seq) {
            (0, Some(s)) => 1..=s.saturating_add(1),
            (0, None) => 1..=1,
            _ => w.next_seq..=w.next_seq,
        };
        if let Some(reason) = header_problem(&mut r, &path, name_seq, expected, w.next_seq)? {
            w.segs.push(seg);
            w.damage = damage(0, reason, false, true);
            break;
        }
        let total = w.bytes_total;
        let mut done = w.bytes_done + SEGMENT_HEADER_LEN.min(len);
        let base_frames = frames_total;
        let scan = scan_frames(&mut r, SEGMENT_HEADER_LEN, name_seq, v, &mut |v: &mut dyn Visit, delta, frames| {
            done += delta;
            v.progress(&Progress { bytes_done: done, bytes_total: total, frames: base_frames + frames });
        })?;
        frames_total += scan.frames;
        seg.frames = scan.frames;
        w.next_seq = scan.next_seq;
        // Zeros after the last frame are where the next frames go (the log writes into
        // zero-filled segments; a segment sealed early keeps the rest of its zeros), or what
        // a power cut left of a write that extended the file: no frame was lost there, and
        // nothing needs cutting. A frame lost from a sealed segment shows as the next
        // segment's first seq not following on.
        let zero_tail = scan.problem.is_some() && r.all_zero_from(scan.end)?;
        if zero_tail {
            seg.bytes = scan.end;
            done += len - scan.end;
            v.progress(&Progress { bytes_done: done, bytes_total: total, frames: frames_total });
        }
        w.bytes_done = done;
        w.segs.push(seg);
        if let Some(problem) = scan.problem.as_ref().filter(|_| !zero_tail) {
            let (reason, torn) = frame_damage(&mut r, problem, &scan, i == last, live)?;
            w.damage = damage(scan.end, reason, torn, false);
            break;
        }
    }
    Ok(w)
}

/// The length of each segment the manifest lists, `None` for one that is missing.
fn segment_lengths(fs: &dyn Fs, dir: &Path, m: &Manifest) -> Result<Vec<Option<u64>>, StorageError> {
    let mut lens = Vec::with_capacity(m.segments.len());
    for name in &m.segments {
        let path = dir.join(name);
        match fs.open_read(&path) {
            Ok(f) => lens.push(Some(f.len().map_err(|e| StorageError::io("stat", &path, e))?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => lens.push(None),
            Err(e) => return Err(StorageError::io("open", &path, e)),
        }
    }
    Ok(lens)
}

/// What is wrong with a whole segment before its first frame, if anything: a damaged header,
/// a header that disagrees with the file name's seq, or a first seq outside `expected`
/// (frames missing between segments; `next_seq` is the one the segment before left off at).
/// A header from a newer StayKV is an error, not damage.
fn header_problem(
    r: &mut Reader,
    path: &Path,
    name_seq: u64,
    expected: RangeInclusive<u64>,
    next_seq: u64,
) -> Result<Option<String>, StorageError> {
    let hlen = usize::try_from(r.len.min(SEGMENT_HEADER_LEN)).unwrap_or(0);
    let header = match decode_segment_header(r.get(0, hlen)?.unwrap_or_default()) {
        Ok(header) => header,
        Err(HeaderError::NewerVersion(found)) => {
            return Err(StorageError::UnsupportedVersion {
                file: path.to_path_buf(),
                found,
                supported: SEGMENT_VERSION,
            })
        }
        Err(e) => return Ok(Some(e.to_string())),
    };
    if header.first_seq != name_seq {
        let says = header.first_seq;
        return Ok(Some(format!("segment header says first seq {says} but the file name says {name_seq}")));
    }
    if !expected.contains(&name_seq) {
        return Ok(Some(format!(
            "segment starts at seq {name_seq} but seq {next_seq} was expected (frames are missing)"
        )));
    }
    Ok(None)
}

/// Why a segment's frames stop where `scan` stopped, and whether that is a torn tail (an
/// unfinished write, cut at open) rather than damage. Only the last segment can end torn:
/// in a live log always, otherwise when no valid frame follows the bad one (a valid one
/// after it means bytes in the middle were damaged, and cutting would lose it).
fn frame_damage(
    r: &mut Reader,
    problem: &FrameProblem,
    scan: &FrameScan,
    is_last: bool,
    live: bool,
) -> Result<(String, bool), StorageError> {
    let reason = problem.to_string();
    if !is_last || matches!(problem, FrameProblem::SeqMismatch { .. }) && !live {
        return Ok((reason, false));
    }
    if live {
        return Ok((reason, true));
    }
    Ok(match r.find_valid_frame(scan.end + 1, scan.next_seq.saturating_sub(1))? {
        Some((off, seq)) => (format!("{reason}, followed by a valid frame (seq {seq}) at offset {off}"), false),
        None => (reason, true),
    })
}

// ---------------------------------------------------------------------------------------------
// Leftover files

#[derive(Debug, Clone, PartialEq, Eq)]
enum Leftover {
    /// Safe to remove: an interrupted rotation (no frames), a segment dropped by compaction, an
    /// uninstalled or superseded snapshot, a manifest temp file.
    Obsolete(String),
    /// A segment file not in the manifest that holds frames the manifest does not account for.
    Stray(String),
}

fn segment_has_frames(fs: &dyn Fs, path: &Path, first_seq: u64) -> Result<bool, StorageError> {
    let f = fs.open_read(path).map_err(|e| StorageError::io("open", path, e))?;
    let len = f.len().map_err(|e| StorageError::io("stat", path, e))?;
    if len <= SEGMENT_HEADER_LEN {
        return Ok(false);
    }
    let mut r = Reader::new(&*f, path, len);
    Ok(r.find_valid_frame(0, first_seq.saturating_sub(1))?.is_some())
}

fn find_leftovers(fs: &dyn Fs, dir: &Path, m: &Manifest) -> Result<Vec<Leftover>, StorageError> {
    let files = fs.list_dir(dir).map_err(|e| StorageError::io("list", dir, e))?;
    let live: HashSet<&str> =
        m.segments.iter().map(String::as_str).chain(m.snapshot.as_ref().map(|s| s.file.as_str())).collect();
    let first_live = m.segments.first().map_or(0, |s| first_seq_of(s));
    let mut out = Vec::new();
    let mut files = files;
    files.sort();
    for name in files {
        if live.contains(name.as_str()) {
            continue;
        }
        if name == MANIFEST_TMP_FILE {
            out.push(Leftover::Obsolete(name));
        } else if name == SPARE_SEGMENT_FILE {
            // The log's: taken up if whole, else removed, by the thread that makes spares.
        } else if let Some(seq) = parse_segment_file_name(&name) {
            if seq < first_live || !segment_has_frames(fs, &dir.join(&name), seq)? {
                out.push(Leftover::Obsolete(name));
            } else {
                out.push(Leftover::Stray(name));
            }
        } else if parse_snapshot_file_name(&name).is_some() {
            out.push(Leftover::Obsolete(name));
        }
    }
    Ok(out)
}

/// No manifest: fine if there is no data (returns the leftovers to remove), else refuse.
fn no_manifest(fs: &dyn Fs, dir: &Path) -> Result<Vec<String>, StorageError> {
    let mut files = fs.list_dir(dir).map_err(|e| StorageError::io("list", dir, e))?;
    files.sort();
    let mut data = Vec::new();
    let mut leftovers = Vec::new();
    for name in files {
        if let Some(seq) = parse_segment_file_name(&name) {
            if segment_has_frames(fs, &dir.join(&name), seq)? {
                data.push(name);
            } else {
                leftovers.push(name);
            }
        } else if parse_snapshot_file_name(&name).is_some() {
            data.push(name);
        } else if name == MANIFEST_TMP_FILE || name == SPARE_SEGMENT_FILE {
            leftovers.push(name);
        }
    }
    if !data.is_empty() {
        return Err(StorageError::MissingManifest { dir: dir.to_path_buf(), files: data });
    }
    Ok(leftovers)
}

// ---------------------------------------------------------------------------------------------
// Recovery

struct ReplayVisit<'a> {
    replay: &'a mut dyn Replay,
    snap_seq: u64,
    replayed: u64,
    skipped: u64,
}

impl Visit for ReplayVisit<'_> {
    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), StorageError> {
        if seq <= self.snap_seq {
            self.skipped += 1;
            return Ok(());
        }
        self.replayed += 1;
        self.replay.frame(seq, payload).map_err(|source| StorageError::Replay { seq, source })
    }
    fn progress(&mut self, p: &Progress) {
        self.replay.progress(p);
    }
    fn wants(&mut self, seq: u64) -> bool {
        // Frames the snapshot covers are checked as ever (and counted as skipped).
        seq <= self.snap_seq || self.replay.wants(seq)
    }
}

/// Result of recovery used by `Log::open`.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub recovery: Recovery,
    pub manifest: Option<Manifest>,
    /// Valid length of the last segment (after truncating a torn tail).
    pub last_segment_len: u64,
    /// Next seq to assign.
    pub next_seq: u64,
}

fn remove_files(fs: &dyn Fs, dir: &Path, names: &[String]) -> Result<(), StorageError> {
    if names.is_empty() {
        return Ok(());
    }
    for n in names {
        let p = dir.join(n);
        fs.remove_if_present(&p).map_err(|e| StorageError::io("remove", p, e))?;
    }
    fs.sync_dir(dir).map_err(|e| StorageError::io("fsync directory", dir, e))
}

/// How a directory is read: opened for writing (repairs a torn tail), checked while no server
/// runs, or read beside a live log writer (snapshot jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    Open,
    Stopped,
    /// The writer may have started a segment after the manifest this read saw: a segment
    /// beyond the log's end that the manifest does not list yet is not stray.
    Live,
}

pub(crate) fn recover(
    fs: &dyn Fs,
    dir: &Path,
    replay: &mut dyn Replay,
    reading: Reading,
) -> Result<Recovered, StorageError> {
    let repair = reading == Reading::Open;
    let fresh = Recovered {
        recovery: Recovery { fresh: true, ..Recovery::default() },
        manifest: None,
        last_segment_len: 0,
        next_seq: 1,
    };
    let dir_exists = fs.exists(dir).map_err(|e| StorageError::io("stat", dir, e))?;
    if !dir_exists {
        if repair {
            fs.create_dir_all(dir).map_err(|e| StorageError::io("create directory", dir, e))?;
        }
        return Ok(fresh);
    }
    let Some(m) = read_manifest(fs, dir)? else {
        let leftovers = no_manifest(fs, dir)?;
        if repair {
            remove_files(fs, dir, &leftovers)?;
        }
        let mut fresh = fresh;
        fresh.recovery.leftover_files = leftovers;
        return Ok(fresh);
    };
    if let Some(s) = &m.snapshot {
        replay.snapshot(s).map_err(|source| StorageError::Snapshot { file: s.file.clone(), source })?;
    }
    let snap_seq = m.snapshot.as_ref().map_or(0, |s| s.seq);
    let mut v = ReplayVisit { replay, snap_seq, replayed: 0, skipped: 0 };
    let w = walk(fs, dir, &m, &mut v, reading == Reading::Live)?;
    let mut rec = Recovery {
        fresh: false,
        snapshot: m.snapshot.clone(),
        segments: m.segments.clone(),
        frames_replayed: v.replayed,
        frames_skipped: v.skipped,
        last_seq: 0,
        bytes_scanned: w.bytes_done,
        torn_tail: None,
        leftover_files: Vec::new(),
    };
    let mut last_len = w.segs.last().map_or(0, |s| s.bytes);
    if let Some(d) = w.damage {
        let path = dir.join(&d.file);
        if !d.torn {
            return Err(StorageError::corrupt(path, d.offset, d.reason));
        }
        let file_len = w.lens.get(d.index).copied().flatten().unwrap_or(d.offset);
        let cut = file_len.saturating_sub(d.offset);
        last_len = d.offset;
        rec.torn_tail = Some(TornTail { file: d.file, offset: d.offset, bytes: cut, reason: d.reason });
    }
    if snap_seq >= w.next_seq {
        return Err(StorageError::corrupt(
            dir.join(MANIFEST_FILE),
            0,
            format!(
                "the snapshot covers up to seq {snap_seq} but the log ends at seq {}",
                w.next_seq.saturating_sub(1)
            ),
        ));
    }
    rec.last_seq = w.next_seq.saturating_sub(1);
    let leftovers = find_leftovers(fs, dir, &m)?;
    let mut obsolete = Vec::new();
    for l in leftovers {
        match l {
            Leftover::Obsolete(n) => obsolete.push(n),
            Leftover::Stray(n)
                if reading == Reading::Live && parse_segment_file_name(&n).is_some_and(|seq| seq >= w.next_seq) => {}
            Leftover::Stray(n) => {
                return Err(StorageError::corrupt(
                    dir.join(n),
                    0,
                    "segment file holds log frames but is not listed in MANIFEST",
                ))
            }
        }
    }
    // Only now that nothing refuses the start: a start that refuses changes nothing on disk.
    if repair {
        if let Some(tail) = &rec.torn_tail {
            cut_torn_tail(fs, &dir.join(&tail.file), tail)?;
        }
        remove_files(fs, dir, &obsolete)?;
    }
    rec.leftover_files = obsolete;
    Ok(Recovered { recovery: rec, manifest: Some(m), last_segment_len: last_len, next_seq: w.next_seq })
}

/// Cut the last segment at its torn tail, durably.
fn cut_torn_tail(fs: &dyn Fs, path: &Path, tail: &TornTail) -> Result<(), StorageError> {
    let mut f = fs.open_append(path).map_err(|e| StorageError::io("open", path, e))?;
    f.set_len(tail.offset).map_err(|e| StorageError::io("truncate", path, e))?;
    f.sync_data().map_err(|e| StorageError::io("fsync", path, e))?;
    tracing::warn!(
        file = %path.display(),
        offset = tail.offset,
        bytes_cut = tail.bytes,
        "torn tail in the last log segment ({}): cut {} bytes at offset {}",
        tail.reason,
        tail.bytes,
        tail.offset
    );
    Ok(())
}

/// Reads a data directory without changing anything: calls `replay` with the snapshot and
/// every frame after it, and reports what `Log::open` would do (torn tail to cut, leftover
/// files to remove). Fails like `Log::open` on corruption, a missing manifest with data
/// present, or a newer format version.
pub fn scan(dir: &Path, fs: &dyn Fs, replay: &mut dyn Replay) -> Result<Recovery, StorageError> {
    Ok(recover(fs, dir, replay, Reading::Stopped)?.recovery)
}

/// [`scan`] of the directory of a running server (snapshot jobs): the log writer may start a
/// segment and write frames to it between this read of the manifest and the listing of the
/// directory, so such a newer segment is skipped instead of refused as stray.
pub fn scan_live(dir: &Path, fs: &dyn Fs, replay: &mut dyn Replay) -> Result<Recovery, StorageError> {
    Ok(recover(fs, dir, replay, Reading::Live)?.recovery)
}

// ---------------------------------------------------------------------------------------------
// check / fix

/// Kind of damage found by [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// A torn tail: the server cuts it off by itself at start.
    TornTail,
    /// Corruption: the server refuses to start until it is fixed.
    Corrupt,
}

/// The first damage found by [`check`] and what [`fix`] would drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Torn tail or corruption.
    pub kind: DamageKind,
    /// Damaged file.
    pub file: String,
    /// Index of that segment in the manifest.
    pub segment_index: usize,
    /// Byte offset of the damage.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
    /// Whether `fix` drops the whole segment (bad header, missing, seq gap) rather than
    /// truncating it at `offset`.
    pub drops_whole_segment: bool,
    /// Checksum-valid frames at or after the damage that `fix` would drop.
    pub frames_dropped: u64,
    /// Bytes that `fix` would cut or drop.
    pub bytes_dropped: u64,
    /// Later segments `fix` removes from the manifest (renamed to `*.dropped`).
    pub segments_dropped: Vec<String>,
}

/// Result of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The data directory.
    pub dir: PathBuf,
    /// The manifest (None: empty or new data directory).
    pub manifest: Option<Manifest>,
    /// Segments examined, in order, up to and including the damaged one.
    pub segments: Vec<SegmentReport>,
    /// Valid frames before the damage (or in total).
    pub frames_ok: u64,
    /// First damage, if any.
    pub damage: Option<Damage>,
    /// Segment files not in the manifest that hold frames (`fix` renames them `*.dropped`).
    pub stray_segments: Vec<String>,
    /// Leftover files the server removes by itself at start.
    pub leftover_files: Vec<String>,
    /// Why the `MANIFEST` cannot be read (damaged, or missing beside data files). `manifest`
    /// is then the one the files imply (the newest snapshot and the segments after it), which
    /// `fix` writes.
    pub manifest_damage: Option<String>,
}

impl CheckReport {
    /// No damage and no stray segments (leftovers are harmless).
    pub fn is_clean(&self) -> bool {
        self.damage.is_none() && self.stray_segments.is_empty() && self.manifest_damage.is_none()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data directory: {}", self.dir.display())?;
        let Some(m) = &self.manifest else {
            return writeln!(f, "no MANIFEST and no data: empty data directory");
        };
        if let Some(why) = &self.manifest_damage {
            writeln!(f, "MANIFEST: DAMAGED ({why})")?;
            writeln!(f, "  fix rewrites it from the files below (a damaged one is kept as MANIFEST.damaged)")?;
        }
        match &m.snapshot {
            Some(s) => writeln!(f, "snapshot: {} (covers seq <= {})", s.file, s.seq)?,
            None => writeln!(f, "snapshot: none")?,
        }
        // Past a damaged or missing MANIFEST, `m` is the one rebuilt from the files.
        let listed = if self.manifest_damage.is_some() { "found in the directory" } else { "listed in MANIFEST" };
        writeln!(f, "segments: {} {listed}", m.segments.len())?;
        for s in &self.segments {
            let seqs = if s.frames == 0 {
                "no frames".to_string()
            } else {
                format!("seq {}..={}", s.first_seq, s.next_seq() - 1)
            };
            writeln!(f, "  {}  {} bytes  {} valid frames ({seqs})", s.file, s.bytes, s.frames)?;
        }
        writeln!(f, "valid frames: {}", self.frames_ok)?;
        for l in &self.leftover_files {
            writeln!(f, "leftover file (removed at next start): {l}")?;
        }
        for s in &self.stray_segments {
            writeln!(f, "STRAY segment not in MANIFEST holding frames: {s} (fix renames it {s}.dropped)")?;
        }
        match &self.damage {
            None if self.manifest_damage.is_some() => writeln!(f, "result: CORRUPT (MANIFEST)"),
            None if self.stray_segments.is_empty() => writeln!(f, "result: OK"),
            None => writeln!(f, "result: CORRUPT (stray segments)"),
            Some(d) => {
                let kind = match d.kind {
                    DamageKind::TornTail => "TORN TAIL (the server cuts it off by itself)",
                    DamageKind::Corrupt => "CORRUPT (the server refuses to start)",
                };
                writeln!(f, "result: {kind}")?;
                writeln!(f, "  at {} offset {}: {}", d.file, d.offset, d.reason)?;
                if d.drops_whole_segment {
                    writeln!(f, "  fix drops segment {} from the MANIFEST", d.file)?;
                } else {
                    writeln!(
                        f,
                        "  fix truncates {} at offset {} (the cut bytes are saved to {}.cut-{})",
                        d.file, d.offset, d.file, d.offset
                    )?;
                }
                if !d.segments_dropped.is_empty() {
                    writeln!(
                        f,
                        "  fix drops later segments from the MANIFEST (renamed *.dropped): {}",
                        d.segments_dropped.join(", ")
                    )?;
                }
                writeln!(f, "  data lost by the fix: {} valid frames, {} bytes", d.frames_dropped, d.bytes_dropped)
            }
        }
    }
}

/// Verifies every live segment of a data directory (read-only).
///
/// Errors: I/O failures, an unreadable or newer-version manifest or segment, a missing
/// manifest with data present.
pub fn check(dir: &Path, fs: &dyn Fs) -> Result<CheckReport, StorageError> {
    check_reading(dir, fs, false)
}

/// [`check`] of the directory of a running server: damage at the end of the segment its
/// log writer appends to is that write, unfinished (a torn tail).
pub fn check_live(dir: &Path, fs: &dyn Fs) -> Result<CheckReport, StorageError> {
    check_reading(dir, fs, true)
}

fn check_reading(dir: &Path, fs: &dyn Fs, live: bool) -> Result<CheckReport, StorageError> {
    let mut report = CheckReport {
        dir: dir.to_path_buf(),
        manifest: None,
        segments: Vec::new(),
        frames_ok: 0,
        damage: None,
        stray_segments: Vec::new(),
        leftover_files: Vec::new(),
        manifest_damage: None,
    };
    if !fs.exists(dir).map_err(|e| StorageError::io("stat", dir, e))? {
        return Ok(report);
    }
    let m = match read_manifest(fs, dir) {
        Ok(Some(m)) => m,
        Ok(None) => match no_manifest(fs, dir) {
            Ok(leftovers) => {
                report.leftover_files = leftovers;
                return Ok(report);
            }
            Err(StorageError::MissingManifest { .. }) => {
                report.manifest_damage = Some("missing, beside data files".into());
                infer_manifest(fs, dir)?
            }
            Err(e) => return Err(e),
        },
        Err(StorageError::Corrupt { offset, reason, .. }) => {
            report.manifest_damage = Some(format!("at byte offset {offset}: {reason}"));
            infer_manifest(fs, dir)?
        }
        Err(e) => return Err(e),
    };
    let w = walk(fs, dir, &m, &mut CountOnly, live)?;
    report.frames_ok = w.segs.iter().map(|s| s.frames).sum();
    if let Some(d) = &w.damage {
        let mut frames_dropped = 0;
        let mut bytes_dropped = 0;
        for (i, name) in m.segments.iter().enumerate().skip(d.index) {
            let Some(len) = w.lens.get(i).copied().flatten() else {
                continue;
            };
            let path = dir.join(name);
            let f = fs.open_read(&path).map_err(|e| StorageError::io("open", &path, e))?;
            let mut r = Reader::new(&*f, &path, len);
            if i == d.index && !d.whole_segment {
                bytes_dropped += len.saturating_sub(d.offset);
                let after = w.segs.get(i).map_or(0, |s| s.next_seq().saturating_sub(1));
                frames_dropped += count_frames_from(&mut r, d.offset, after)?;
            } else {
                bytes_dropped += len;
                frames_dropped += count_frames_from(&mut r, 0, first_seq_of(name).saturating_sub(1))?;
            }
        }
        report.damage = Some(Damage {
            kind: if d.torn { DamageKind::TornTail } else { DamageKind::Corrupt },
            file: d.file.clone(),
            segment_index: d.index,
            offset: d.offset,
            reason: d.reason.clone(),
            drops_whole_segment: d.whole_segment,
            frames_dropped,
            bytes_dropped,
            segments_dropped: m.segments.iter().skip(d.index + 1).cloned().collect(),
        });
    }
    for l in find_leftovers(fs, dir, &m)? {
        match l {
            Leftover::Obsolete(n) => report.leftover_files.push(n),
            Leftover::Stray(n) => report.stray_segments.push(n),
        }
    }
    report.segments = w.segs;
    report.manifest = Some(m);
    Ok(report)
}

/// The manifest the files of `dir` imply, for one that is damaged or missing: the newest
/// snapshot (a `snap-*.rdb` name is only given to a whole, fsynced file, and an older
/// snapshot's files are deleted only after a newer one is installed), and the segments from
/// the last one starting at or before the seq after it. Whatever is wrong with those — a
/// gap, a damaged frame — the walk then reports as damage like any other.
fn infer_manifest(fs: &dyn Fs, dir: &Path) -> Result<Manifest, StorageError> {
    let files = fs.list_dir(dir).map_err(|e| StorageError::io("list", dir, e))?;
    let snapshot = files
        .iter()
        .filter_map(|name| parse_snapshot_file_name(name).map(|seq| SnapshotRef { file: name.clone(), seq }))
        .max_by_key(|s| s.seq);
    let mut segments: Vec<(u64, &String)> =
        files.iter().filter_map(|name| parse_segment_file_name(name).map(|seq| (seq, name))).collect();
    segments.sort();
    let after = snapshot.as_ref().map_or(1, |s| s.seq + 1);
    let first = segments.iter().rposition(|(seq, _)| *seq <= after).unwrap_or(0);
    let mut names: Vec<String> = segments.iter().skip(first).map(|(_, name)| (*name).clone()).collect();
    if names.is_empty() {
        // Listed though absent: the walk reports it missing, and `fix` creates it empty.
        names.push(segment_file_name(after));
    }
    Ok(Manifest { snapshot, segments: names })
}

/// Moves a damaged `MANIFEST` aside before it is replaced; returns its new name. A crash
/// before the replacement leaves no manifest beside the data, which `check` reads as a
/// missing one and `fix` rebuilds the same way.
fn keep_damaged_manifest(fs: &dyn Fs, dir: &Path) -> Result<Option<String>, StorageError> {
    let path = dir.join(MANIFEST_FILE);
    if !fs.exists(&path).map_err(|e| StorageError::io("stat", &path, e))? {
        return Ok(None);
    }
    let name = free_name(fs, dir, &format!("{MANIFEST_FILE}.damaged"))?;
    fs.rename(&path, &dir.join(&name)).map_err(|e| StorageError::io("rename", &path, e))?;
    fs.sync_dir(dir).map_err(|e| StorageError::io("fsync directory", dir, e))?;
    Ok(Some(name))
}

/// What [`fix`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixOutcome {
    /// `(file, offset, bytes cut, file the cut bytes were saved to)`.
    pub truncated: Option<(String, u64, u64, String)>,
    /// Segments removed from the manifest: `(old name, new name)`.
    pub dropped: Vec<(String, String)>,
    /// A new empty segment created because no usable segment remained.
    pub created: Option<String>,
    /// The `MANIFEST` was rewritten from the files; `Some(copy)` names where the damaged one
    /// was kept, `None` inside when there was none.
    pub manifest_rewritten: Option<Option<String>>,
}

fn free_name(fs: &dyn Fs, dir: &Path, base: &str) -> Result<String, StorageError> {
    for i in 0u32..10_000 {
        let name = if i == 0 { base.to_string() } else { format!("{base}.{i}") };
        let p = dir.join(&name);
        if !fs.exists(&p).map_err(|e| StorageError::io("stat", &p, e))? {
            return Ok(name);
        }
    }
    Err(StorageError::Invalid(format!("no free file name for {base} in {}", dir.display())))
}

/// Repairs the damage described by `report` (from [`check`] on the same directory):
/// truncates the damaged segment at the damage (the cut bytes are saved to
/// `<segment>.cut-<offset>`), renames later segments, stray segments and a wholly damaged
/// segment to `*.dropped`, and writes a manifest without them. If no usable segment remains,
/// an empty one is created. The directory is checked again first; if the damage differs from
/// `report`, nothing is changed and an error is returned.
pub fn fix(dir: &Path, fs: &dyn Fs, report: &CheckReport) -> Result<FixOutcome, StorageError> {
    let now = check(dir, fs)?;
    if now.damage != report.damage || now.stray_segments != report.stray_segments || now.manifest != report.manifest {
        return Err(StorageError::Invalid(
            "the data directory changed since it was checked; run the check again".into(),
        ));
    }
    let mut out = FixOutcome::default();
    let Some(m) = now.manifest.clone() else {
        return Ok(out);
    };
    if now.manifest_damage.is_some() {
        // First, so that every later step reads the directory as the report described it.
        let kept = keep_damaged_manifest(fs, dir)?;
        write_manifest(fs, dir, &m).map_err(|e| e.error)?;
        out.manifest_rewritten = Some(kept);
    }
    let dir_err = |e| StorageError::io("fsync directory", dir, e);
    let rename_dropped = |name: &str, out: &mut FixOutcome| -> Result<(), StorageError> {
        let from = dir.join(name);
        if !fs.exists(&from).map_err(|e| StorageError::io("stat", &from, e))? {
            return Ok(());
        }
        let to_name = free_name(fs, dir, &format!("{name}.dropped"))?;
        fs.rename(&from, &dir.join(&to_name)).map_err(|e| StorageError::io("rename", &from, e))?;
        out.dropped.push((name.to_string(), to_name));
        Ok(())
    };
    for s in &now.stray_segments {
        rename_dropped(s, &mut out)?;
    }
    if !now.stray_segments.is_empty() {
        fs.sync_dir(dir).map_err(dir_err)?;
    }
    let Some(d) = &now.damage else {
        return Ok(out);
    };
    let snap_seq = m.snapshot.as_ref().map(|s| s.seq);
    let mut kept: Vec<String> = m.segments.iter().take(d.segment_index).cloned().collect();
    let mut next = if d.segment_index == 0 {
        snap_seq.map_or(1, |s| s + 1)
    } else {
        now.segments.get(d.segment_index - 1).map_or(1, SegmentReport::next_seq)
    };
    let mut dropped: Vec<String> = Vec::new();
    if d.drops_whole_segment {
        dropped.extend(m.segments.iter().skip(d.segment_index).cloned());
    } else {
        let path = dir.join(&d.file);
        let mut f = fs.open_append(&path).map_err(|e| StorageError::io("open", &path, e))?;
        let len = f.len().map_err(|e| StorageError::io("stat", &path, e))?;
        let save_name = free_name(fs, dir, &format!("{}.cut-{}", d.file, d.offset))?;
        let save_path = dir.join(&save_name);
        let mut save = fs.create(&save_path).map_err(|e| StorageError::io("create", &save_path, e))?;
        let mut off = d.offset;
        let mut buf = vec![0u8; CHUNK];
        while off < len {
            let n = usize::try_from((len - off).min(CHUNK as u64)).unwrap_or(CHUNK);
            let chunk = buf.get_mut(..n).unwrap_or_default();
            f.read_exact_at(off, chunk).map_err(|e| StorageError::io("read", &path, e))?;
            save.write_all(chunk).map_err(|e| StorageError::io("write", &save_path, e))?;
            off += n as u64;
        }
        save.sync_data().map_err(|e| StorageError::io("fsync", &save_path, e))?;
        fs.sync_dir(dir).map_err(dir_err)?;
        f.set_len(d.offset).map_err(|e| StorageError::io("truncate", &path, e))?;
        f.sync_data().map_err(|e| StorageError::io("fsync", &path, e))?;
        out.truncated = Some((d.file.clone(), d.offset, len.saturating_sub(d.offset), save_name));
        kept.push(d.file.clone());
        next = now.segments.get(d.segment_index).map_or(next, SegmentReport::next_seq);
        dropped.extend(m.segments.iter().skip(d.segment_index + 1).cloned());
    }
    if let Some(s) = snap_seq {
        if next <= s {
            // Everything left is covered by the snapshot: continue the log after it.
            dropped.splice(0..0, kept.drain(..));
            next = s + 1;
        }
    }
    for name in &dropped {
        rename_dropped(name, &mut out)?;
    }
    fs.sync_dir(dir).map_err(dir_err)?;
    if kept.is_empty() {
        let name = segment_file_name(next);
        let path = dir.join(&name);
        let mut f = fs.create(&path).map_err(|e| StorageError::io("create", &path, e))?;
        f.write_all(&encode_segment_header(next)).map_err(|e| StorageError::io("write", &path, e))?;
        f.sync_data().map_err(|e| StorageError::io("fsync", &path, e))?;
        fs.sync_dir(dir).map_err(dir_err)?;
        kept.push(name.clone());
        out.created = Some(name);
    }
    write_manifest(fs, dir, &Manifest { snapshot: m.snapshot.clone(), segments: kept }).map_err(|e| e.error)?;
    Ok(out)
}
