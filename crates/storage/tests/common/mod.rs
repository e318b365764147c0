//! Shared helpers for the storage integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use staykv_storage::{BoxError, Fs, FsyncPolicy, Log, LogOptions, Progress, Recovery, Replay, SimFs, SnapshotRef};

/// Deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// A recognisable payload of `len` bytes for (`tag`, `i`).
pub fn payload(tag: u64, i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("p{tag}:{i}:").into_bytes();
    let mut r = Rng(tag.wrapping_mul(1_000_003) ^ i);
    while v.len() < len {
        v.push((r.next() & 0xff) as u8);
    }
    v
}

/// Replay that collects everything.
#[derive(Debug, Default)]
pub struct Collect {
    pub snapshot: Option<SnapshotRef>,
    pub frames: Vec<(u64, Vec<u8>)>,
    pub progress: Vec<Progress>,
}

impl Replay for Collect {
    fn snapshot(&mut self, s: &SnapshotRef) -> Result<(), BoxError> {
        assert!(self.frames.is_empty(), "snapshot must come before frames");
        self.snapshot = Some(s.clone());
        Ok(())
    }
    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), BoxError> {
        if let Some((last, _)) = self.frames.last() {
            assert_eq!(seq, last + 1, "frames must be replayed in order without gaps");
        }
        self.frames.push((seq, payload.to_vec()));
        Ok(())
    }
    fn progress(&mut self, p: &Progress) {
        self.progress.push(*p);
    }
}

pub fn data_dir() -> PathBuf {
    PathBuf::from("/data")
}

pub fn sim() -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/")).unwrap();
    fs
}

pub fn opts(policy: FsyncPolicy, segment_bytes: u64) -> LogOptions {
    LogOptions {
        fsync: policy,
        segment_bytes,
        retry_interval: Duration::from_millis(2),
        sync_interval: Duration::from_millis(20),
        ..LogOptions::default()
    }
}

pub fn open(fs: &SimFs, o: LogOptions) -> (Log, Recovery, Collect) {
    let mut c = Collect::default();
    let (log, rec) = Log::open(data_dir(), Arc::new(fs.clone()) as Arc<dyn Fs>, o, &mut c).unwrap();
    (log, rec, c)
}

/// Appends `n` payloads tagged `tag`, one at a time, each waited for (like a client waiting
/// for its reply), so each one is its own write batch.
pub fn append_n(log: &Log, tag: u64, n: u64, len: usize) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..n {
        let p = payload(tag, i, len);
        let seq = log.append(&p).unwrap();
        assert!(log.wait_durable(seq, Some(Duration::from_secs(10))));
        out.push((seq, p));
    }
    log.flush_and_sync().unwrap();
    out
}

/// Segment file names listed by the manifest in the sim dir.
pub fn segments(fs: &SimFs) -> Vec<String> {
    staykv_storage::read_manifest(fs, &data_dir()).unwrap().unwrap().segments
}

/// Length of the file `name` in `dir`.
pub fn file_len(fs: &dyn Fs, dir: &Path, name: &str) -> u64 {
    fs.open_read(&dir.join(name)).unwrap().len().unwrap()
}

/// Under `always`, small fsyncs move the log into segments zero-filled ahead of time: the live
/// segment's file is then the segment size long whatever its data. Sealed segments, and the
/// sealed full end at their last frame, one sealed early keeps its zeros; a crash image and
/// the closed and reopened log give back every frame. `crash` gives the directory as a process
/// crash would leave it now, as a filesystem and a path.
pub fn small_fsyncs_move_the_log_into_zero_filled_segments(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    crash: impl Fn() -> (Arc<dyn Fs>, PathBuf),
) {
    const SEGMENT: u64 = 64 << 10;
    let o = || LogOptions { fsync: FsyncPolicy::Always, segment_bytes: SEGMENT, ..LogOptions::default() };
    let (log, rec) = Log::open(dir, Arc::clone(fs), o(), &mut Collect::default()).unwrap();
    assert!(rec.fresh);
    let mut data = Vec::new();
    let live = |fs: &dyn Fs| staykv_storage::read_manifest(fs, dir).unwrap().unwrap().segments.pop().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut zero_filled = std::collections::HashSet::new();
    while zero_filled.len() < 3 {
        assert!(std::time::Instant::now() < deadline, "zero-filled segments seen: {zero_filled:?}");
        data.extend(append_n(&log, data.len() as u64, 1, 100));
        let name = live(&**fs);
        if file_len(&**fs, dir, &name) == SEGMENT {
            zero_filled.insert(name);
        }
    }
    // Sealed full (or appended to, then sealed for a spare), segments end at their last frame.
    let segs = staykv_storage::read_manifest(&**fs, dir).unwrap().unwrap().segments;
    let frame = staykv_storage::FRAME_HEADER_LEN + 100;
    for s in &segs[..segs.len() - 1] {
        let len = file_len(&**fs, dir, s);
        assert_eq!((len - staykv_storage::SEGMENT_HEADER_LEN) % frame, 0, "sealed {s}: {len} bytes");
    }
    // Sealed early (as a compaction does), a zero-filled segment keeps its zeros: recovery
    // reads past them into the next segment.
    data.extend(append_n(&log, data.len() as u64, 1, 100));
    let early = live(&**fs);
    log.rotate().unwrap();
    assert_eq!(file_len(&**fs, dir, &early), SEGMENT, "{early}");
    assert_ne!(live(&**fs), early);
    for _ in 0..10 {
        data.extend(append_n(&log, data.len() as u64, 1, 100));
    }
    // A crash leaves the zeros: recovery reads every frame and reports no tear.
    let (crashed, crashed_dir) = crash();
    let mut c = Collect::default();
    let (relog, rec) = Log::open(&crashed_dir, crashed, o(), &mut c).unwrap();
    assert!(rec.torn_tail.is_none(), "{:?}", rec.torn_tail);
    assert_eq!(c.frames, data);
    drop(relog);
    // Closed and reopened, the log goes on in the same segment, over its zeros if it has some.
    let last = live(&**fs);
    let len = file_len(&**fs, dir, &last);
    log.close().unwrap();
    assert_eq!(file_len(&**fs, dir, &last), len, "{last}");
    let mut c = Collect::default();
    let (log, rec) = Log::open(dir, Arc::clone(fs), o(), &mut c).unwrap();
    assert!(rec.torn_tail.is_none());
    assert_eq!(c.frames, data);
    data.extend(append_n(&log, data.len() as u64, 1, 100));
    log.close().unwrap();
    let mut c = Collect::default();
    let (_log, _) = Log::open(dir, Arc::clone(fs), o(), &mut c).unwrap();
    assert_eq!(c.frames, data);
}
