//! The write-ahead log writer: cheap concurrent `append`, a dedicated writer thread doing
//! group commit, rotation, snapshot installation and disk-error handling.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{LogError, StorageError};
use crate::format::{
    encode_segment_header, parse_segment_file_name, push_frame, segment_file_name, MAX_PAYLOAD_LEN, SEGMENT_HEADER_LEN,
};
use crate::fs::{Fs, FsFile};
use crate::manifest::{write_manifest, Manifest, SnapshotRef};
use crate::recovery::{recover, Reading, Recovery, Replay};
use crate::spare::{run_spare_maker, spare_bytes, Spare, JUDGE_EVERY_SYNCS, SMALL_SYNC_BYTES};

/// When appended data is fsynced (`--fsync`, `CONFIG SET appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fdatasync after every write batch; `durable_seq` means fsynced.
    Always,
    /// Write batches at once; fdatasync at most once per `sync_interval` (1 s), outside the
    /// writer's lock (writes go on meanwhile).
    EverySec,
    /// Never fsync, except when a segment is sealed, every `MAX_UNSYNCED_BYTES` written, and
    /// on `flush_and_sync`/close.
    No,
}

impl FsyncPolicy {
    fn to_u8(self) -> u8 {
        match self {
            FsyncPolicy::Always => 0,
            FsyncPolicy::EverySec => 1,
            FsyncPolicy::No => 2,
        }
    }
    fn from_u8(v: u8) -> Self {
        match v {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::EverySec,
            _ => FsyncPolicy::No,
        }
    }
}

/// Callback invoked (on the writer thread) with the new `durable_seq` each time it advances.
pub type DurableCallback = Box<dyn Fn(u64) + Send + Sync>;

/// Callback invoked with how long each write and fsync of the log's frames took, on the
/// thread that made it (the writer thread, or an executor writing through).
pub type IoCallback = Box<dyn Fn(LogIo, Duration) + Send + Sync>;

/// What [`IoCallback`] timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogIo {
    /// A `write(2)` of queued frames.
    Write,
    /// An fsync under the writer's lock: under `always` every reply to a write waits for one.
    Sync,
    /// `everysec`'s timed fsync, outside the writer's lock: no reply waits for it.
    BackgroundSync,
}

/// Options of [`Log::open`].
pub struct LogOptions {
    /// Fsync policy (can be changed later with [`Log::set_fsync_policy`]).
    pub fsync: FsyncPolicy,
    /// A segment is sealed and a new one started once it reaches this size. Default 256 MiB:
    /// sealing stops the writes for a few fsyncs (the segment's last bytes, the new segment,
    /// the manifest: 20–60 ms each under a heavy write load), and with 64 MiB segments that
    /// happened often enough at 270,000 1 KB SETs a second to set the p99 (~50 ms, 20 ms with
    /// 256 MiB). Zero-filled segments are smaller (at most 32 MiB, see `crate::spare`).
    pub segment_bytes: u64,
    /// Called with the new durable seq each time it advances (on the writer thread; keep it
    /// short and never call back into the log's blocking methods from it).
    pub on_durable: DurableCallback,
    /// Called with the time each write and fsync of frames took (keep it short).
    pub on_io: IoCallback,
    /// Fsync interval of [`FsyncPolicy::EverySec`]. Default 1 s.
    pub sync_interval: Duration,
    /// Under `EverySec`, appends should wait ([`Log::wait_writable_blocking`]) when the oldest
    /// unsynced write is older than this. Default 2 s.
    pub max_sync_lag: Duration,
    /// Delay between retries after a failed write or fsync. Default 250 ms.
    pub retry_interval: Duration,
    /// After this long without appends the writer gives back what a burst grew its buffers
    /// to, keeping one spare chunk and 64 KiB of queue. Default 1 s.
    pub idle_release_after: Duration,
    /// Under `always`, write small, frequent fsyncs into segments zero-filled ahead of time
    /// (see `docs/log-format.md`, "Zero-filled segments"). Default true; worthless on
    /// copy-on-write filesystems (btrfs, ZFS), which allocate anew on every overwrite.
    pub zero_filled_segments: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            fsync: FsyncPolicy::Always,
            segment_bytes: 256 * 1024 * 1024,
            on_durable: Box::new(|_| {}),
            on_io: Box::new(|_, _| {}),
            sync_interval: Duration::from_secs(1),
            max_sync_lag: Duration::from_secs(2),
            retry_interval: Duration::from_millis(250),
            idle_release_after: Duration::from_secs(1),
            zero_filled_segments: true,
        }
    }
}

impl fmt::Debug for LogOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogOptions")
            .field("fsync", &self.fsync)
            .field("segment_bytes", &self.segment_bytes)
            .field("sync_interval", &self.sync_interval)
            .field("max_sync_lag", &self.max_sync_lag)
            .field("retry_interval", &self.retry_interval)
            .field("idle_release_after", &self.idle_release_after)
            .field("zero_filled_segments", &self.zero_filled_segments)
            .finish_non_exhaustive()
    }
}

enum Cmd {
    Sync(mpsc::Sender<Result<u64, StorageError>>),
    Rotate(mpsc::Sender<Result<u64, StorageError>>),
    InstallSnapshot(SnapshotRef, mpsc::Sender<Result<Vec<String>, StorageError>>),
}

struct Queue {
    /// Framed bytes not yet taken by the writer.
    buf: Vec<u8>,
    /// Next seq to assign.
    next_seq: u64,
    cmds: Vec<Cmd>,
    shutdown: bool,
    writer_waiting: bool,
}

const NO_TIME: u64 = u64::MAX;

/// Written-but-unsynced bytes are kept in chunks of this size (small batches are copied
/// together), so that a second of writes under `everysec` is never one growing buffer:
/// reallocating it cost copies and page faults (14% of the server's time at 50k SET/s).
const CHUNK_BYTES: usize = 1 << 20;

/// Emptied buffers kept for reuse after an fsync; the rest is given back.
const MAX_SPARES: usize = 8;

/// Room the append queue keeps once the log is idle ([`LogOptions::idle_release_after`]).
/// While busy the buffers keep what they grew to, so that no group reallocates them; idle,
/// a burst's megabytes go back, as Redis frees an AOF buffer past 4 KB after each write
/// (a `redis-cli --pipe` of 100,000 SETs left 5.3 MB held here until the next restart).
const IDLE_QUEUE_BYTES: usize = 64 << 10;

/// The bytes at `[synced_off..)` of the current segment: written and being fsynced outside
/// the writer's lock (`syncing`), written but not yet fsynced (`kept`) — both kept to rewrite
/// them if an fsync fails: the kernel may have dropped the dirty pages — then not yet written
/// (`pending`, whose first `written` bytes are).
#[derive(Default)]
struct Unsynced {
    syncing: Vec<Vec<u8>>,
    syncing_len: usize,
    kept: Vec<Vec<u8>>,
    kept_len: usize,
    pending: Vec<u8>,
    written: usize,
    spares: Vec<Vec<u8>>,
}

impl Unsynced {
    fn len(&self) -> usize {
        self.syncing_len + self.kept_len + self.pending.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes on file past `synced_off` that are known good.
    fn written_len(&self) -> usize {
        self.syncing_len + self.kept_len + self.written
    }

    fn unwritten(&self) -> &[u8] {
        self.pending.get(self.written..).unwrap_or_default()
    }

    fn fully_written(&self) -> bool {
        self.written >= self.pending.len()
    }

    /// Move the queued frames in (a swap: no copy in the common case); the queue gets a
    /// spare buffer with room already made.
    fn take_from(&mut self, queue: &mut Vec<u8>) {
        if self.pending.is_empty() {
            std::mem::swap(&mut self.pending, queue);
            self.written = 0;
            if queue.capacity() == 0 {
                *queue = self.spares.pop().unwrap_or_default();
            }
        } else {
            self.pending.extend_from_slice(queue);
            queue.clear();
        }
    }

    /// `pending` is written: keep it until the next fsync.
    fn pending_written(&mut self) {
        let chunk = std::mem::take(&mut self.pending);
        self.written = 0;
        self.kept_len += chunk.len();
        match self.kept.last_mut() {
            Some(last) if last.capacity() - last.len() >= chunk.len() => {
                last.extend_from_slice(&chunk);
                self.recycle(chunk);
            }
            Some(_) if chunk.len() < CHUNK_BYTES / 8 => {
                let mut joined = self.spare_chunk();
                joined.extend_from_slice(&chunk);
                self.kept.push(joined);
                self.recycle(chunk);
            }
            _ => self.kept.push(chunk),
        }
    }

    /// An fsync covered everything written; returns how many bytes that was.
    fn kept_synced(&mut self) -> usize {
        self.begin_sync();
        self.end_sync()
    }

    /// An fsync of everything written so far starts outside the lock: what it covers moves
    /// to `syncing`, and later writes are kept apart from it.
    fn begin_sync(&mut self) {
        self.syncing.append(&mut self.kept);
        self.syncing_len += self.kept_len;
        self.kept_len = 0;
    }

    /// The fsync begun by [`Unsynced::begin_sync`] succeeded; returns how many bytes it covered.
    fn end_sync(&mut self) -> usize {
        let synced = self.syncing_len;
        for chunk in std::mem::take(&mut self.syncing) {
            self.recycle(chunk);
        }
        self.syncing_len = 0;
        synced
    }

    /// An fsync failed: everything since the last good one must be written again.
    fn rewrite_all(&mut self) {
        let mut all = Vec::with_capacity(self.len());
        for chunk in std::mem::take(&mut self.syncing).into_iter().chain(std::mem::take(&mut self.kept)) {
            all.extend_from_slice(&chunk);
        }
        self.syncing_len = 0;
        all.extend_from_slice(&self.pending);
        self.pending = all;
        self.kept_len = 0;
        self.written = 0;
    }

    fn spare_chunk(&mut self) -> Vec<u8> {
        match self.spares.iter().position(|s| s.capacity() >= CHUNK_BYTES) {
            Some(at) => self.spares.swap_remove(at),
            None => Vec::with_capacity(CHUNK_BYTES),
        }
    }

    fn recycle(&mut self, mut chunk: Vec<u8>) {
        if self.spares.len() < MAX_SPARES && chunk.capacity() <= CHUNK_BYTES {
            chunk.clear();
            self.spares.push(chunk);
        }
    }

    /// Whether an idle log would give something back ([`Unsynced::release_excess`]).
    fn holds_excess(&self) -> bool {
        self.spares.len() > 1 || self.pending.capacity() > IDLE_QUEUE_BYTES
    }

    /// Keeps one spare chunk, and no more room in `pending` than an idle queue keeps.
    fn release_excess(&mut self) {
        self.spares.truncate(1);
        if self.pending.is_empty() {
            self.pending.shrink_to(IDLE_QUEUE_BYTES);
        }
    }

    /// Bytes allocated, for `buffered_bytes`.
    fn capacity(&self) -> usize {
        let chunks = self.syncing.iter().chain(&self.kept).chain(&self.spares).map(Vec::capacity).sum::<usize>();
        chunks + self.pending.capacity()
    }
}

struct Shared {
    queue: Mutex<Queue>,
    queue_cv: Condvar,
    /// Seq of the last frame acknowledged-safe under the current policy.
    durable_seq: AtomicU64,
    /// Seq of the last fsynced frame.
    synced_seq: AtomicU64,
    /// Seq of the last frame written to the OS.
    written_seq: AtomicU64,
    healthy: AtomicBool,
    last_error: Mutex<Option<String>>,
    policy: AtomicU8,
    progress: Mutex<()>,
    progress_cv: Condvar,
    epoch: Instant,
    /// ms since `epoch` of the oldest written-but-unsynced data (`NO_TIME` if none).
    unsynced_since_ms: AtomicU64,
    max_sync_lag: Duration,
    /// Bytes the log's buffers hold (allocated capacity): appended-but-unwritten frames and,
    /// until their fsync, written ones (kept to rewrite them if the fsync fails).
    buffered_bytes: AtomicU64,
    /// First seq of the current segment, and the end of the data written to it: its file can
    /// be longer (zero-filled), see [`Log::live_segment`].
    live_first_seq: AtomicU64,
    live_end: AtomicU64,
}

impl Shared {
    fn policy(&self) -> FsyncPolicy {
        FsyncPolicy::from_u8(self.policy.load(Ordering::Acquire))
    }
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }
    fn notify_progress(&self) {
        let _g = self.progress.lock();
        self.progress_cv.notify_all();
    }
    fn sync_lagging(&self) -> bool {
        if self.policy() != FsyncPolicy::EverySec {
            return false;
        }
        let since = self.unsynced_since_ms.load(Ordering::Acquire);
        if since == NO_TIME {
            return false;
        }
        let lag = self.now_ms().saturating_sub(since);
        u128::from(lag) > self.max_sync_lag.as_millis()
    }
}

/// The write-ahead log. `Send + Sync`: share it with `Arc` between executor threads.
///
/// Dropping it flushes and fsyncs what was appended (best effort) and stops the writer
/// thread; prefer [`Log::close`], which reports failures.
pub struct Log {
    shared: Arc<Shared>,
    /// The writer's state: the writer thread and [`Log::write_through`] callers take turns.
    writer: Arc<Mutex<Writer>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    spare: Arc<Spare>,
    spare_thread: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
    fs: Arc<dyn Fs>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("durable_seq", &self.durable_seq())
            .field("synced_seq", &self.synced_seq())
            .field("healthy", &self.healthy())
            .finish_non_exhaustive()
    }
}

/// A file the manifest dropped is cut down this much at a time before it is deleted.
const DELETE_STEP_BYTES: u64 = 32 << 20;

/// Deletes a file by truncating it in steps first. Deleting a 1 GB snapshot at once freed its
/// blocks and cached pages in one go and held up the log's writes and fdatasyncs for up to
/// 160 ms (session p99 26–60 ms at 10,000 req/s across a compaction, 3.6–4.0 ms with nothing
/// deleted); a step at a time, they get in between. Only for files no manifest names: a cut
/// that a crash interrupts leaves a file that recovery removes.
fn delete_gradually(fs: &dyn Fs, path: &Path) -> std::io::Result<()> {
    let mut file = fs.open_append(path)?;
    let mut len = file.len()?;
    while len > DELETE_STEP_BYTES {
        len -= DELETE_STEP_BYTES;
        file.set_len(len)?;
    }
    drop(file);
    fs.remove(path)
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |e| StorageError::io(op, path, e)
}

/// Starts the segment whose first frame is `first_seq`: a new, empty file, or with `spare`
/// that zero-filled file renamed; the header is written at its start (over the zeros), then
/// fdatasynced, and the directory fsynced.
fn start_segment(
    fs: &dyn Fs,
    dir: &Path,
    first_seq: u64,
    spare: Option<&Path>,
) -> Result<(String, Box<dyn FsFile>), StorageError> {
    let name = segment_file_name(first_seq);
    let path = dir.join(&name);
    let mut f = match spare {
        Some(spare) => {
            fs.rename(spare, &path).map_err(io_err("rename", spare))?;
            fs.open_append(&path).map_err(io_err("open", &path))?
        }
        None => fs.create(&path).map_err(io_err("create", &path))?,
    };
    f.write_all_at(0, &encode_segment_header(first_seq)).map_err(io_err("write", &path))?;
    f.sync_data().map_err(io_err("fsync", &path))?;
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    Ok((name, f))
}

/// Opens the segment new frames go to: the last one recovery found (synced, for what the
/// previous process wrote and may not have synced), or, in a new data directory, a first
/// segment and the manifest that lists it.
fn open_live_segment(
    fs: &dyn Fs,
    dir: &Path,
    recovered: Option<Manifest>,
    last_segment_len: u64,
) -> Result<(Manifest, String, Box<dyn FsFile>, u64), StorageError> {
    if let Some(manifest) = recovered {
        let name = manifest
            .segments
            .last()
            .cloned()
            .ok_or_else(|| StorageError::Invalid("manifest lists no segment".into()))?;
        let path = dir.join(&name);
        let mut file = fs.open_append(&path).map_err(io_err("open", &path))?;
        file.sync_data().map_err(io_err("fsync", &path))?;
        return Ok((manifest, name, file, last_segment_len));
    }
    // A new data directory: make its own entry durable too (best effort: the parent may not
    // be ours to open).
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Err(e) = fs.sync_dir(parent) {
            tracing::warn!(dir = %parent.display(), error = %e, "could not fsync the parent of the new data directory");
        }
    }
    let (name, file) = start_segment(fs, dir, 1, None)?;
    let manifest = Manifest { snapshot: None, segments: vec![name.clone()] };
    write_manifest(fs, dir, &manifest).map_err(|e| e.error)?;
    Ok((manifest, name, file, SEGMENT_HEADER_LEN))
}

/// Starts one of the log's threads; `what` names it in an error.
fn spawn(
    dir: &Path,
    name: &str,
    what: &'static str,
    run: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, StorageError> {
    std::thread::Builder::new().name(name.into()).spawn(run).map_err(|e| StorageError::io(what, dir, e))
}

impl Shared {
    /// The state of a log whose next frame is `next_seq`, all before it durable.
    fn new(next_seq: u64, opts: &LogOptions) -> Shared {
        let last = next_seq.saturating_sub(1);
        Shared {
            queue: Mutex::new(Queue {
                buf: Vec::new(),
                next_seq,
                cmds: Vec::new(),
                shutdown: false,
                writer_waiting: false,
            }),
            queue_cv: Condvar::new(),
            durable_seq: AtomicU64::new(last),
            synced_seq: AtomicU64::new(last),
            written_seq: AtomicU64::new(last),
            healthy: AtomicBool::new(true),
            last_error: Mutex::new(None),
            policy: AtomicU8::new(opts.fsync.to_u8()),
            progress: Mutex::new(()),
            progress_cv: Condvar::new(),
            epoch: Instant::now(),
            unsynced_since_ms: AtomicU64::new(NO_TIME),
            max_sync_lag: opts.max_sync_lag,
            buffered_bytes: AtomicU64::new(0),
            live_first_seq: AtomicU64::new(0),
            live_end: AtomicU64::new(0),
        }
    }
}

impl Log {
    /// Opens (creating if needed) the log in `dir`: runs recovery first, passing the snapshot
    /// and every frame after it to `replay`, cuts a torn tail, removes leftover files, then
    /// starts the writer thread. See the crate docs for the refusal cases.
    pub fn open(
        dir: impl AsRef<Path>,
        fs: Arc<dyn Fs>,
        opts: LogOptions,
        replay: &mut dyn Replay,
    ) -> Result<(Log, Recovery), StorageError> {
        let dir = dir.as_ref().to_path_buf();
        let rec = recover(&*fs, &dir, replay, Reading::Open)?;
        let (manifest, seg_name, file, seg_len) = open_live_segment(&*fs, &dir, rec.manifest, rec.last_segment_len)?;
        let last = rec.next_seq.saturating_sub(1);
        let shared = Arc::new(Shared::new(rec.next_seq, &opts));
        let seg_first_seq = parse_segment_file_name(&seg_name).unwrap_or(rec.next_seq);
        shared.live_first_seq.store(seg_first_seq, Ordering::Release);
        shared.live_end.store(seg_len, Ordering::Release);
        let file_len = file.len().map_err(io_err("stat", &dir.join(&seg_name)))?;
        let seg_zero_filled = file_len > seg_len;
        let spare = Arc::new(Spare::new(&dir));
        if !opts.zero_filled_segments {
            // A spare left by a run that made them: nothing will take it up.
            fs.remove_if_present(spare.path()).map_err(|e| StorageError::io("remove", spare.path(), e))?;
        }
        let segment_bytes = opts.segment_bytes.max(SEGMENT_HEADER_LEN + 1);
        let writer = Writer {
            shared: Arc::clone(&shared),
            fs: Arc::clone(&fs),
            dir: dir.clone(),
            on_durable: opts.on_durable,
            on_io: opts.on_io,
            notified: last,
            segment_bytes,
            sync_interval: opts.sync_interval,
            retry_interval: opts.retry_interval,
            idle_release_after: opts.idle_release_after,
            manifest,
            manifest_dirty: false,
            seg_name,
            seg_first_seq,
            file,
            seg_zero_filled,
            seg_capacity: if seg_zero_filled { file_len } else { segment_bytes },
            seg_syncs: 0,
            spare: Arc::clone(&spare),
            zero_filled_segments: opts.zero_filled_segments,
            synced_off: seg_len,
            writeback_off: seg_len,
            buf: Unsynced::default(),
            queue_capacity: 0,
            buf_last_seq: last,
            needs_truncate: false,
            next_seq: rec.next_seq,
            last_sync: Instant::now(),
            sync_in_flight: false,
            failing: false,
            last_failure_log: None,
            last_frames_at: Instant::now(),
        };
        let writer = Arc::new(Mutex::new(writer));
        let handle = spawn(&dir, "staykv-log-writer", "spawn log writer thread", {
            let (writer, shared) = (Arc::clone(&writer), Arc::clone(&shared));
            move || run_writer(&writer, &shared)
        })?;
        let spare_handle = match opts.zero_filled_segments {
            true => {
                let (spare, fs, len) = (Arc::clone(&spare), Arc::clone(&fs), spare_bytes(segment_bytes));
                Some(spawn(&dir, "staykv-log-spare", "spawn log spare thread", move || {
                    run_spare_maker(&spare, &*fs, len)
                })?)
            }
            false => None,
        };
        let log = Log {
            shared,
            writer,
            thread: Mutex::new(Some(handle)),
            spare,
            spare_thread: Mutex::new(spare_handle),
            dir,
            fs,
        };
        Ok((log, rec.recovery))
    }

    /// Appends one payload (one atomic batch) and returns its seq. Never does I/O: copies the
    /// framed bytes into the shared queue under a short lock; the writer thread writes them.
    /// Does not refuse while the log is unhealthy (nothing appended is dropped); callers check
    /// [`Log::healthy`] before executing writes.
    pub fn append(&self, payload: &[u8]) -> Result<u64, LogError> {
        if payload.len() > MAX_PAYLOAD_LEN as usize {
            return Err(LogError::PayloadTooLarge { len: payload.len(), max: MAX_PAYLOAD_LEN });
        }
        let crc = crc32c::crc32c(payload);
        let mut q = self.shared.queue.lock();
        if q.shutdown {
            return Err(LogError::Closed);
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        push_frame(&mut q.buf, seq, payload, crc);
        let wake = q.writer_waiting;
        q.writer_waiting = false;
        drop(q);
        if wake {
            self.shared.queue_cv.notify_one();
        }
        Ok(seq)
    }

    /// Last seq that is durable under the current policy: fsynced under `Always`, written to
    /// the OS under `EverySec`/`No`. Replies covering seqs up to this may be released.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// Bytes held in the log's buffers (Redis leaves its AOF buffer out of `maxmemory` too).
    pub fn buffered_bytes(&self) -> u64 {
        self.shared.buffered_bytes.load(Ordering::Relaxed)
    }

    /// Last fsynced seq.
    pub fn synced_seq(&self) -> u64 {
        self.shared.synced_seq.load(Ordering::Acquire)
    }

    /// The current segment: the seq in its name, and the bytes of log data written to it (its
    /// header included). Its file may be longer: the zeros of a zero-filled segment.
    pub fn live_segment(&self) -> (u64, u64) {
        (self.shared.live_first_seq.load(Ordering::Acquire), self.shared.live_end.load(Ordering::Acquire))
    }

    /// Last seq written to the OS.
    pub fn written_seq(&self) -> u64 {
        self.shared.written_seq.load(Ordering::Acquire)
    }

    /// Last seq assigned by `append` (0 if none ever).
    pub fn last_seq(&self) -> u64 {
        self.shared.queue.lock().next_seq.saturating_sub(1)
    }

    /// False after a failed write or fsync until a retry succeeds.
    pub fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }

    /// The error that made the log unhealthy (None while healthy).
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().clone()
    }

    /// Current fsync policy.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.shared.policy()
    }

    /// Changes the fsync policy at runtime.
    pub fn set_fsync_policy(&self, p: FsyncPolicy) {
        self.shared.policy.store(p.to_u8(), Ordering::Release);
        let _q = self.shared.queue.lock();
        self.shared.queue_cv.notify_all();
    }

    /// Under `EverySec`: true when the oldest written-but-unsynced data is older than
    /// `max_sync_lag` (2 s), i.e. fsync is falling behind and writers should wait.
    pub fn sync_lagging(&self) -> bool {
        self.shared.sync_lagging()
    }

    /// Blocks while [`Log::sync_lagging`] is true, up to `timeout`. Returns whether the log is
    /// writable (not lagging) on return. Under `Always` and `No` it returns `true` at once.
    pub fn wait_writable_blocking(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.progress.lock();
        loop {
            if !self.shared.sync_lagging() {
                return true;
            }
            // Re-check periodically: lag grows with time, not only on progress.
            let step = Instant::now() + Duration::from_millis(50);
            let until = step.min(deadline);
            if Instant::now() >= deadline {
                return false;
            }
            self.shared.progress_cv.wait_until(&mut g, until);
        }
    }

    /// Under `EverySec` and `No`, makes `seq` durable on the calling thread if no one else
    /// is writing the log: takes the queued frames, writes them to the OS and publishes the
    /// new durable seq. Returns whether `seq` is durable on return. If not (another writer holds
    /// the log, or the disk is failing), wait for the next publication and call again: the
    /// writer that held the log publishes when done, and the writer thread picks up frames
    /// that no caller wrote through within a couple of milliseconds.
    ///
    /// This saves a thread hop per reply: the executor whose reply waits does the `write(2)`
    /// itself, as Redis's main thread does, and takes along every frame queued by then.
    /// Under `Always` the writer thread does every write and fsync: measured on 2 cores, an
    /// executor blocked in fsync holds up the connections scheduled on its thread and makes
    /// the groups smaller (more context switches per write, lower throughput).
    pub fn write_through(&self, seq: u64) -> bool {
        if self.durable_seq() >= seq {
            return true;
        }
        if self.shared.policy() == FsyncPolicy::Always {
            return false;
        }
        let Some(mut writer) = self.writer.try_lock() else {
            return false;
        };
        if writer.failing || self.shared.queue.lock().shutdown {
            return false;
        }
        let _ = writer.take_queued(false);
        writer.cycle(false, false);
        if writer.failing || writer.has_pending_io() {
            // Retrying is the thread's job, and it may be asleep with nothing to time.
            self.shared.queue_cv.notify_all();
        }
        self.durable_seq() >= seq
    }

    /// Blocks until `durable_seq() >= seq` or the timeout passes (None: no timeout).
    /// Returns whether `seq` is durable.
    pub fn wait_durable(&self, seq: u64, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = self.shared.progress.lock();
        loop {
            if self.durable_seq() >= seq {
                return true;
            }
            match deadline {
                Some(d) => {
                    if Instant::now() >= d {
                        return false;
                    }
                    self.shared.progress_cv.wait_until(&mut g, d);
                }
                None => self.shared.progress_cv.wait(&mut g),
            }
        }
    }

    fn request<T>(&self, make: impl FnOnce(mpsc::Sender<Result<T, StorageError>>) -> Cmd) -> Result<T, StorageError> {
        let (tx, rx) = mpsc::channel();
        {
            let mut q = self.shared.queue.lock();
            if q.shutdown {
                return Err(StorageError::Closed);
            }
            q.cmds.push(make(tx));
            q.writer_waiting = false;
        }
        self.shared.queue_cv.notify_all();
        rx.recv().unwrap_or(Err(StorageError::Closed))
    }

    /// Writes and fsyncs everything appended before the call. Returns the synced seq, or the
    /// disk error if the write or fsync fails (the writer keeps retrying in the background).
    pub fn flush_and_sync(&self) -> Result<u64, StorageError> {
        self.request(Cmd::Sync)
    }

    /// Writes and fsyncs everything appended so far, seals the current segment and starts a
    /// new one. Returns the first seq of the new segment: every seq below it is in a sealed
    /// segment. If the current segment holds no frame yet, it is kept and its first seq
    /// returned.
    pub fn rotate(&self) -> Result<u64, StorageError> {
        self.request(Cmd::Rotate)
    }

    /// Installs a snapshot file (already written and fsynced in the data directory by the
    /// caller, preferably named [`crate::snapshot_file_name`]`(seq)`) covering every frame with
    /// seq `<= seq`. Everything appended so far is written and fsynced first, then the
    /// manifest is replaced (naming the snapshot and dropping the segments it covers entirely)
    /// and the previous snapshot and the dropped segments are deleted, on the calling thread.
    /// Returns the deleted file names.
    ///
    /// On error the snapshot may or may not be installed: leave the file in place (recovery
    /// removes snapshot files the manifest does not name).
    pub fn install_snapshot(&self, file: &str, seq: u64) -> Result<Vec<String>, StorageError> {
        if file.is_empty() || file.contains('/') || file.contains('\\') || file.contains(' ') {
            return Err(StorageError::Invalid(format!("bad snapshot file name {file:?}")));
        }
        let snap = SnapshotRef { file: file.to_string(), seq };
        let dropped = self.request(|tx| Cmd::InstallSnapshot(snap, tx))?;
        Ok(self.remove_dropped(dropped))
    }

    /// Deletes the files the manifest no longer names, on the calling thread rather than the
    /// writer's: there every fsync, so every reply under `always`, waited for the deletion
    /// of a large snapshot (see [`delete_gradually`]). A file left behind by a crash or an
    /// error is removed at the next start. Returns the names deleted.
    fn remove_dropped(&self, names: Vec<String>) -> Vec<String> {
        let mut done = Vec::new();
        for name in names {
            let path = self.dir.join(&name);
            match delete_gradually(&*self.fs, &path) {
                Ok(()) => done.push(name),
                Err(e) => tracing::warn!(file = %path.display(), error = %e,
                    "could not remove a file dropped by the snapshot; it is removed at next start"),
            }
        }
        if !done.is_empty() {
            if let Err(e) = self.fs.sync_dir(&self.dir) {
                tracing::warn!(error = %e, "fsync of the data directory failed after removals");
            }
        }
        done
    }

    /// Flushes and fsyncs everything appended, then stops the writer thread. Appends after
    /// this fail with [`LogError::Closed`].
    pub fn close(self) -> Result<(), StorageError> {
        let r = self.flush_and_sync().map(|_| ());
        self.shutdown();
        r
    }

    fn shutdown(&self) {
        {
            let mut q = self.shared.queue.lock();
            q.shutdown = true;
        }
        self.shared.queue_cv.notify_all();
        if let Some(h) = self.thread.lock().take() {
            let _ = h.join();
        }
        self.spare.stop();
        if let Some(h) = self.spare_thread.lock().take() {
            let _ = h.join();
            // An unused spare: removed now rather than at the next start.
            let _ = self.fs.remove(self.spare.path());
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------------------------
// Writer thread

struct Writer {
    shared: Arc<Shared>,
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    on_durable: DurableCallback,
    on_io: IoCallback,
    /// Last value passed to `on_durable`.
    notified: u64,
    segment_bytes: u64,
    sync_interval: Duration,
    retry_interval: Duration,
    idle_release_after: Duration,
    manifest: Manifest,
    /// The in-memory manifest is not known durable: rewrite it before writing frames.
    manifest_dirty: bool,
    seg_name: String,
    seg_first_seq: u64,
    file: Box<dyn FsFile>,
    /// The current segment was a zero-filled spare: the file goes on past the log's data with
    /// zeros. They stay when it is sealed early (the rotation of a compaction): cutting
    /// hundreds of MiB at once held up every fdatasync on the disk for 0.6–0.8 s (with
    /// `discard`, freed blocks are discarded), and the compaction deletes the segment soon
    /// after, a step at a time.
    seg_zero_filled: bool,
    /// Where the current segment is sealed: `segment_bytes`, or a zero-filled one's file end.
    seg_capacity: u64,
    /// Fsyncs of the current segment (by [`Writer::sync`]).
    seg_syncs: u64,
    spare: Arc<Spare>,
    /// [`LogOptions::zero_filled_segments`].
    zero_filled_segments: bool,
    /// File offset up to which the current segment is known durable.
    synced_off: u64,
    /// File offset up to which writeback of the current segment has been started.
    writeback_off: u64,
    /// Bytes belonging at `[synced_off..)`.
    buf: Unsynced,
    /// Seq of the last frame in `buf` (or the last synced seq when `buf` is empty).
    buf_last_seq: u64,
    /// Capacity of the queue's buffer when frames were last taken.
    queue_capacity: usize,
    /// The file may hold garbage after `synced_off + buf.written_len()` (failed write/fsync).
    needs_truncate: bool,
    /// Seq following the last frame in the current segment's data (synced or buffered).
    next_seq: u64,
    last_sync: Instant,
    /// The writer thread is fsyncing outside the lock ([`Writer::begin_sync_outside_lock`]): no
    /// rotation meanwhile, the segment must stay the one being fsynced.
    sync_in_flight: bool,
    failing: bool,
    /// When a failure was last logged, and whether its recovery is still to be logged.
    last_failure_log: Option<(Instant, bool)>,
    /// When a writer last took frames from the queue. While that is recent, more are
    /// likely soon and executors write most of them through (`Log::write_through`): the
    /// thread polls instead of being woken by every append.
    last_frames_at: Instant,
}

/// How long the writer thread may sleep before its next cycle.
enum Wait {
    Not,
    /// Up to this long; `wake_on_append`: a new append cuts the sleep short.
    For(Duration, bool),
    UntilWoken,
}

/// An fsync the writer thread runs outside the writer's lock (`everysec` and `no`).
struct SyncOutsideLock {
    /// A second handle on the segment (`None`: it could not be made; fsync under the lock).
    file: Option<Box<dyn FsFile>>,
    /// The last seq it covers.
    seq: u64,
    started: Instant,
    /// `started` as [`Shared::now_ms`].
    started_ms: u64,
}

/// While the log is busy the thread looks for frames no executor wrote through (writes
/// whose client went away, active expiry) at least this often.
const BUSY_POLL: Duration = Duration::from_millis(2);

/// Written-but-unsynced bytes past which the writer thread fsyncs whatever the policy says: they
/// are kept in memory until then (see [`Unsynced`]).
const MAX_UNSYNCED_BYTES: usize = 64 << 20;

/// How much written log [`Writer::start_writeback`] lets gather before starting its writeback.
const WRITEBACK_STEP: u64 = 2 << 20;

/// The log counts as busy this long after frames were last taken.
const BUSY_WINDOW: Duration = Duration::from_millis(100);

/// The writer thread: timed fsyncs, commands, retries after disk errors, frames no
/// executor wrote through, and the final flush at shutdown.
fn run_writer(writer: &Mutex<Writer>, shared: &Shared) {
    let mut shutdown_attempts = 0u32;
    loop {
        let wait = writer.lock().wait_plan();
        wait_for_work(shared, wait);
        let mut w = writer.lock();
        let (cmds, shutdown) = w.take_queued(true);
        let ok = w.cycle(!cmds.is_empty() || shutdown, true);
        if ok {
            w.start_writeback();
        }
        for cmd in cmds {
            w.answer(cmd, ok);
        }
        w.release_idle_buffers();
        if ok && w.sync_outside_lock_due() {
            let mut sync = w.begin_sync_outside_lock();
            drop(w);
            let started = Instant::now();
            let result = sync.file.as_mut().map_or(Ok(()), |file| file.sync_data());
            let took = started.elapsed();
            w = writer.lock();
            (w.on_io)(LogIo::BackgroundSync, took);
            w.end_sync_outside_lock(sync, result);
            if w.rotation_due() {
                // What was written during the fsync is synced under the lock, then rotation.
                w.cycle(false, true);
            }
        }
        if shutdown {
            if ok && w.buf.is_empty() {
                break;
            }
            shutdown_attempts += 1;
            if shutdown_attempts >= 3 {
                tracing::error!(
                    "log writer stopping with unsynced data after repeated disk errors: \
                     seqs up to {} may be lost",
                    w.buf_last_seq
                );
                break;
            }
            let retry = w.retry_interval;
            drop(w);
            std::thread::sleep(retry);
        }
    }
}

/// Sleeps as `wait` says, unless work is already queued.
fn wait_for_work(shared: &Shared, wait: Wait) {
    let mut q = shared.queue.lock();
    if !q.buf.is_empty() || !q.cmds.is_empty() || q.shutdown {
        return;
    }
    match wait {
        Wait::Not => {}
        Wait::For(t, wake_on_append) => {
            q.writer_waiting = wake_on_append;
            let _ = shared.queue_cv.wait_for(&mut q, t);
        }
        Wait::UntilWoken => {
            q.writer_waiting = true;
            shared.queue_cv.wait(&mut q);
        }
    }
    q.writer_waiting = false;
}

impl Writer {
    /// One attempt at progress and its publication; `want_sync` forces an fsync (commands
    /// and shutdown need one; `everysec`'s timed one is the writer thread's, outside the
    /// lock). Only the writer thread passes `may_rotate`: a rotation fsyncs the segment and
    /// creates the next one (tens of milliseconds under load), which an executor writing
    /// through must not wait for with the connections of its thread. Returns whether the
    /// round succeeded.
    fn cycle(&mut self, want_sync: bool, may_rotate: bool) -> bool {
        let want_sync = want_sync || self.shared.policy() == FsyncPolicy::Always;
        let res = self.round(want_sync, may_rotate);
        // The round may have allocated a chunk or freed some: `maxmemory` leaves out exactly
        // what the log holds, or a write refused with OOM could be followed by one accepted.
        self.publish_buffered_bytes();
        let ok = res.is_ok();
        match res {
            Ok(()) => self.set_healthy(),
            Err(e) => self.set_failing(&e),
        }
        self.publish();
        ok
    }

    fn has_pending_io(&self) -> bool {
        self.manifest_dirty || !self.buf.fully_written() || self.needs_truncate
    }

    /// The log's buffers, for `buffered_bytes` (the queue's as of the last take).
    fn publish_buffered_bytes(&self) {
        let bytes = self.buf.capacity() + self.queue_capacity;
        self.shared.buffered_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    /// What the thread waits for before its next cycle.
    fn wait_plan(&self) -> Wait {
        let policy = self.shared.policy();
        let unsynced = !self.buf.is_empty();
        if self.failing {
            // Retry (or, with nothing left to do, confirm recovery) periodically; in
            // backoff, new appends do not cut the wait short.
            Wait::For(self.retry_interval, false)
        } else if (unsynced && policy == FsyncPolicy::Always) || self.has_pending_io() {
            Wait::Not
        } else if policy != FsyncPolicy::Always && self.last_frames_at.elapsed() < BUSY_WINDOW {
            let poll = match policy {
                FsyncPolicy::EverySec if unsynced => {
                    BUSY_POLL.min(self.sync_interval.saturating_sub(self.last_sync.elapsed()))
                }
                _ => BUSY_POLL,
            };
            Wait::For(poll, false)
        } else if unsynced && policy == FsyncPolicy::EverySec {
            Wait::For(self.sync_interval.saturating_sub(self.last_sync.elapsed()), true)
        } else if self.holds_idle_excess() {
            // Wake once the log has been idle long enough to give the buffers back.
            Wait::For(self.idle_release_after.saturating_sub(self.last_frames_at.elapsed()), true)
        } else {
            Wait::UntilWoken
        }
    }

    /// Everything is synced, and the buffers hold more than an idle log keeps.
    fn holds_idle_excess(&self) -> bool {
        self.buf.is_empty() && (self.buf.holds_excess() || self.queue_capacity > IDLE_QUEUE_BYTES)
    }

    /// Once no frame has come for [`LogOptions::idle_release_after`], gives back what a burst
    /// grew the buffers to.
    fn release_idle_buffers(&mut self) {
        // The flags first: the clock is read only when there is something to give back.
        if !self.holds_idle_excess() || self.last_frames_at.elapsed() < self.idle_release_after {
            return;
        }
        self.buf.release_excess();
        {
            let mut q = self.shared.queue.lock();
            if q.buf.is_empty() {
                q.buf.shrink_to(IDLE_QUEUE_BYTES);
            }
            self.queue_capacity = q.buf.capacity();
        }
        self.publish_buffered_bytes();
    }

    /// Takes the queued frames, and with `commands` the queued commands and the shutdown
    /// flag (those are the thread's alone).
    fn take_queued(&mut self, commands: bool) -> (Vec<Cmd>, bool) {
        let mut q = self.shared.queue.lock();
        if !q.buf.is_empty() {
            self.last_frames_at = Instant::now();
            self.buf.take_from(&mut q.buf);
            self.buf_last_seq = q.next_seq.saturating_sub(1);
        }
        self.queue_capacity = q.buf.capacity();
        self.publish_buffered_bytes();
        if commands {
            (std::mem::take(&mut q.cmds), q.shutdown)
        } else {
            (Vec::new(), false)
        }
    }

    /// The live segment's path, for error reports: built when one happens, not before each
    /// write and fsync (an allocation on every round).
    fn seg_path(&self) -> PathBuf {
        self.dir.join(&self.seg_name)
    }

    /// One attempt at making progress: manifest, truncation, write, fsync, rotation.
    fn round(&mut self, want_sync: bool, may_rotate: bool) -> Result<(), StorageError> {
        if self.manifest_dirty {
            self.write_manifest()?;
        }
        if self.needs_truncate {
            let path = self.seg_path();
            let len = self.synced_off + self.buf.written_len() as u64;
            self.file.set_len(len).map_err(io_err("truncate", &path))?;
            self.writeback_off = self.writeback_off.min(len);
            self.needs_truncate = false;
            // The cut took the zeros with it: what follows is appended.
            self.seg_zero_filled = false;
        }
        if !self.buf.fully_written() {
            let started = Instant::now();
            let at = self.synced_off + self.buf.written_len() as u64;
            if let Err(e) = self.file.write_all_at(at, self.buf.unwritten()) {
                self.needs_truncate = true;
                return Err(StorageError::io("write", self.seg_path(), e));
            }
            (self.on_io)(LogIo::Write, started.elapsed());
            self.buf.pending_written();
            self.shared.live_end.store(self.synced_off + self.buf.written_len() as u64, Ordering::Release);
            self.next_seq = self.buf_last_seq + 1;
            self.shared.written_seq.store(self.buf_last_seq, Ordering::Release);
            if self.shared.policy() != FsyncPolicy::Always {
                self.shared.durable_seq.fetch_max(self.buf_last_seq, Ordering::AcqRel);
            }
            let _ = self.shared.unsynced_since_ms.compare_exchange(
                NO_TIME,
                self.shared.now_ms(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        let need_rotate = may_rotate && self.rotation_due() && !self.sync_in_flight;
        if (want_sync || need_rotate) && !self.buf.is_empty() {
            self.sync()?;
        }
        if need_rotate {
            self.rotate()?;
        }
        Ok(())
    }

    /// Under `everysec` and `no`, starts the disk writing what was written every
    /// [`WRITEBACK_STEP`], so that the timed fsync finds little left to do. It runs on the
    /// writer's lock, which executors writing through wait for: left to the fsync, a second
    /// of writes (180 MB at 165k 1 KB SETs a second) went out in one fdatasync of about half a
    /// second, and every reply waited behind it. Called by the writer thread only (it looks
    /// every 2 ms while the log is busy), so that an executor never waits in the block layer.
    fn start_writeback(&mut self) {
        if self.shared.policy() == FsyncPolicy::Always {
            return;
        }
        let from = self.writeback_off.max(self.synced_off);
        let end = self.synced_off + self.buf.written_len() as u64;
        if end.saturating_sub(from) >= WRITEBACK_STEP {
            self.file.start_writeback(from, end - from);
            self.writeback_off = end;
        }
    }

    /// The current segment has reached its size, or it is appended to and a zero-filled
    /// spare is ready to take over: the next round seals it.
    fn rotation_due(&self) -> bool {
        let size = self.synced_off + self.buf.len() as u64;
        size > SEGMENT_HEADER_LEN && (size >= self.seg_capacity || (!self.seg_zero_filled && self.spare.is_ready()))
    }

    /// Under `always`, every [`JUDGE_EVERY_SYNCS`] fsyncs and at the fsync (of `synced` bytes)
    /// that fills the segment past a quarter: asks for a zero-filled spare if the segment's
    /// fsyncs averaged under [`SMALL_SYNC_BYTES`], where an fsync's fixed cost outweighs
    /// writing the zeros (see [`crate::spare`]). For a zero-filled segment, not before it is
    /// half full: the zeros compete with the log's own writes, so they are written once the
    /// next segment is needed in the foreseeable future, not at once.
    fn consider_spare(&self, synced: u64) {
        let bytes = self.synced_off.saturating_sub(SEGMENT_HEADER_LEN);
        let quarter = self.seg_capacity / 4;
        let crossed_quarter = bytes >= quarter && bytes - synced.min(bytes) < quarter;
        let judge = self.seg_syncs.is_multiple_of(JUDGE_EVERY_SYNCS) || crossed_quarter;
        let wanted = self.zero_filled_segments && self.shared.policy() == FsyncPolicy::Always;
        let soon = !self.seg_zero_filled || bytes >= self.seg_capacity / 2;
        if !judge || !wanted || !soon || self.seg_syncs == 0 {
            return;
        }
        if bytes / self.seg_syncs < SMALL_SYNC_BYTES {
            self.spare.request(spare_bytes(self.segment_bytes));
        }
    }

    /// Under `everysec` and `no`, whether the writer thread should fsync what is written
    /// outside the lock (after a good round): `everysec`'s timed fsync, the bulk of a full
    /// segment's before its rotation, or enough unsynced bytes that keeping them (to rewrite
    /// them should the fsync fail) costs memory.
    fn sync_outside_lock_due(&self) -> bool {
        let policy = self.shared.policy();
        let timed = policy == FsyncPolicy::EverySec && self.last_sync.elapsed() >= self.sync_interval;
        let written = self.buf.written_len();
        policy != FsyncPolicy::Always
            && !self.failing
            && self.buf.fully_written()
            && written > 0
            && (timed || self.rotation_due() || written >= MAX_UNSYNCED_BYTES)
    }

    /// Starts an fsync of everything written so far, to run without the writer's lock:
    /// under it, every executor writing through waited for the fdatasync, which a second of
    /// writes can make last tens of milliseconds (the SET tail under `everysec`).
    fn begin_sync_outside_lock(&mut self) -> SyncOutsideLock {
        let file = match self.file.try_clone() {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::warn!(error = %e, "cannot duplicate the log file handle; fsyncing under the lock");
                None
            }
        };
        let sync =
            SyncOutsideLock { file, seq: self.buf_last_seq, started: Instant::now(), started_ms: self.shared.now_ms() };
        if sync.file.is_some() {
            self.buf.begin_sync();
            self.sync_in_flight = true;
        }
        sync
    }

    /// Accounts for the fsync begun by [`Writer::begin_sync_outside_lock`] (or does it here, under
    /// the lock, when the file handle could not be duplicated).
    fn end_sync_outside_lock(&mut self, sync: SyncOutsideLock, result: std::io::Result<()>) {
        if sync.file.is_none() {
            self.cycle(true, true);
            return;
        }
        self.sync_in_flight = false;
        match result {
            Ok(()) => {
                self.synced_off += self.buf.end_sync() as u64;
                self.last_sync = sync.started;
                self.shared.synced_seq.fetch_max(sync.seq, Ordering::AcqRel);
                self.shared.durable_seq.fetch_max(sync.seq, Ordering::AcqRel);
                // Writes made meanwhile are not covered: count their lag from the fsync's start.
                let since = if self.buf.is_empty() { NO_TIME } else { sync.started_ms };
                self.shared.unsynced_since_ms.store(since, Ordering::Release);
            }
            Err(e) => {
                // As in `sync`: everything since the last good fsync is written again, the
                // frames written meanwhile included.
                self.buf.rewrite_all();
                self.needs_truncate = true;
                self.set_failing(&StorageError::io("fsync", self.seg_path(), e));
            }
        }
        self.publish_buffered_bytes();
        self.publish();
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        let started = Instant::now();
        let result = self.file.sync_data();
        (self.on_io)(LogIo::Sync, started.elapsed());
        if let Err(e) = result {
            // The kernel may have dropped the dirty pages: rewrite everything since the last
            // good fsync.
            self.buf.rewrite_all();
            self.needs_truncate = true;
            return Err(StorageError::io("fsync", self.seg_path(), e));
        }
        debug_assert!(self.buf.fully_written());
        let synced = self.buf.kept_synced() as u64;
        self.synced_off += synced;
        self.seg_syncs += 1;
        self.consider_spare(synced);
        self.last_sync = Instant::now();
        self.shared.synced_seq.store(self.buf_last_seq, Ordering::Release);
        self.shared.durable_seq.fetch_max(self.buf_last_seq, Ordering::AcqRel);
        self.shared.unsynced_since_ms.store(NO_TIME, Ordering::Release);
        Ok(())
    }

    fn write_manifest(&mut self) -> Result<(), StorageError> {
        match write_manifest(&*self.fs, &self.dir, &self.manifest) {
            Ok(()) => {
                self.manifest_dirty = false;
                Ok(())
            }
            Err(e) => {
                self.manifest_dirty = true;
                Err(e.error)
            }
        }
    }

    /// Seals the current segment (which must be fully synced) and starts a new one.
    fn rotate(&mut self) -> Result<u64, StorageError> {
        debug_assert!(self.buf.is_empty());
        if self.synced_off <= SEGMENT_HEADER_LEN {
            return Ok(self.seg_first_seq);
        }
        let first = self.next_seq;
        let (name, file, zero_filled) = self.new_segment(first)?;
        // From here on the new segment is current; no frame is written to it before the
        // manifest naming it is durable (`manifest_dirty`).
        self.seg_capacity = if zero_filled { spare_bytes(self.segment_bytes) } else { self.segment_bytes };
        self.file = file;
        self.seg_zero_filled = zero_filled;
        self.seg_syncs = 0;
        self.shared.live_first_seq.store(first, Ordering::Release);
        self.shared.live_end.store(SEGMENT_HEADER_LEN, Ordering::Release);
        self.seg_name = name.clone();
        self.seg_first_seq = first;
        self.synced_off = SEGMENT_HEADER_LEN;
        self.writeback_off = SEGMENT_HEADER_LEN;
        self.needs_truncate = false;
        self.manifest.segments.push(name);
        self.manifest_dirty = true;
        self.write_manifest()?;
        tracing::debug!(segment = %self.seg_name, "log segment rotated");
        Ok(first)
    }

    /// The segment starting at `first`: the zero-filled spare if one is ready (then `true`),
    /// else a new, empty file.
    fn new_segment(&mut self, first: u64) -> Result<(String, Box<dyn FsFile>, bool), StorageError> {
        if self.spare.take() {
            match start_segment(&*self.fs, &self.dir, first, Some(self.spare.path())) {
                Ok((name, file)) => return Ok((name, file, true)),
                Err(e) => tracing::warn!(error = %e, "could not use the zero-filled spare segment"),
            }
        }
        let (name, file) = start_segment(&*self.fs, &self.dir, first, None)?;
        Ok((name, file, false))
    }

    fn install_snapshot(&mut self, snap: SnapshotRef) -> Result<Vec<String>, StorageError> {
        if snap.seq >= self.next_seq {
            return Err(StorageError::Invalid(format!(
                "snapshot seq {} is beyond the last appended seq {}",
                snap.seq,
                self.next_seq.saturating_sub(1)
            )));
        }
        if let Some(cur) = &self.manifest.snapshot {
            if snap.seq < cur.seq {
                return Err(StorageError::Invalid(format!(
                    "snapshot seq {} is older than the installed snapshot's {}",
                    snap.seq, cur.seq
                )));
            }
        }
        let snap_path = self.dir.join(&snap.file);
        if !self.fs.exists(&snap_path).map_err(io_err("stat", &snap_path))? {
            return Err(StorageError::Invalid(format!("snapshot file {} does not exist", snap_path.display())));
        }
        let old = self.manifest.clone();
        let mut segs = self.manifest.segments.clone();
        while segs.len() > 1
            && segs.get(1).and_then(|s| parse_segment_file_name(s)).is_some_and(|first| first <= snap.seq + 1)
        {
            segs.remove(0);
        }
        let new = Manifest { snapshot: Some(snap.clone()), segments: segs };
        if let Err(e) = write_manifest(&*self.fs, &self.dir, &new) {
            if e.renamed {
                // The new manifest may already be visible: it is the truth from now on and is
                // rewritten (made durable) before any further frame write.
                self.manifest = new;
                self.manifest_dirty = true;
            }
            return Err(e.error);
        }
        self.manifest = new;
        let mut dropped: Vec<String> =
            old.segments.iter().filter(|s| !self.manifest.segments.contains(s)).cloned().collect();
        if let Some(o) = old.snapshot {
            if o.file != snap.file {
                dropped.push(o.file);
            }
        }
        Ok(dropped)
    }

    fn answer(&mut self, cmd: Cmd, round_ok: bool) {
        let fail = |w: &Self| -> StorageError {
            StorageError::Io {
                op: "log write",
                path: w.dir.clone(),
                source: std::io::Error::other(
                    w.shared.last_error.lock().clone().unwrap_or_else(|| "disk error".into()),
                ),
            }
        };
        let synced = round_ok && self.buf.is_empty() && !self.manifest_dirty;
        match cmd {
            Cmd::Sync(tx) => {
                let r = if synced { Ok(self.shared.synced_seq.load(Ordering::Acquire)) } else { Err(fail(self)) };
                let _ = tx.send(r);
            }
            Cmd::Rotate(tx) => {
                let r = if synced { self.rotate() } else { Err(fail(self)) };
                self.after_command(&r);
                let _ = tx.send(r);
            }
            Cmd::InstallSnapshot(snap, tx) => {
                let r = if synced { self.install_snapshot(snap) } else { Err(fail(self)) };
                self.after_command(&r);
                let _ = tx.send(r);
            }
        }
    }

    /// A failed rotation or snapshot installation makes the log unhealthy only if it left
    /// work that must succeed before frames can be written again (a manifest to rewrite).
    fn after_command<T>(&mut self, r: &Result<T, StorageError>) {
        if let Err(e) = r {
            if self.has_pending_io() {
                self.set_failing(e);
            } else {
                tracing::warn!(error = %e, "log rotation or snapshot installation failed");
            }
        }
    }

    /// Says so at most every 10 s, flapping included: under `everysec` on a failing disk the
    /// writes succeed and the fsyncs fail, and the log went from failing to recovered and
    /// back 75 times a second, each time in the log.
    fn set_failing(&mut self, e: &StorageError) {
        let msg = e.to_string();
        self.failing = true;
        self.shared.healthy.store(false, Ordering::Release);
        *self.shared.last_error.lock() = Some(msg.clone());
        if self.last_failure_log.is_none_or(|(at, _)| at.elapsed() >= Duration::from_secs(10)) {
            self.last_failure_log = Some((Instant::now(), true));
            tracing::error!(error = %msg, "log write failed; writes are refused until the disk recovers; retrying");
        }
        self.shared.notify_progress();
    }

    fn set_healthy(&mut self) {
        if self.failing && !self.has_pending_io() {
            self.failing = false;
            *self.shared.last_error.lock() = None;
            self.shared.healthy.store(true, Ordering::Release);
            // Once for each failure that was said.
            if let Some((_, unanswered @ true)) = &mut self.last_failure_log {
                *unanswered = false;
                tracing::info!("log writes recovered");
            }
            self.shared.notify_progress();
        }
    }

    fn publish(&mut self) {
        let d = self.shared.durable_seq.load(Ordering::Acquire);
        if d > self.notified {
            self.notified = d;
            (self.on_durable)(d);
        }
        self.shared.notify_progress();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::recovery::NoReplay;
    use crate::simfs::SimFs;

    #[test]
    fn log_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Log>();
    }

    #[test]
    fn on_durable_is_called_with_increasing_seqs() {
        let fs = SimFs::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let opts = LogOptions { on_durable: Box::new(move |s| seen2.lock().push(s)), ..LogOptions::default() };
        let (log, rec) = Log::open("/d", Arc::new(fs), opts, &mut NoReplay).unwrap();
        assert!(rec.fresh);
        for i in 0..20u64 {
            let seq = log.append(&i.to_le_bytes()).unwrap();
            assert_eq!(seq, i + 1);
            if i % 3 == 0 {
                assert!(log.wait_durable(seq, Some(Duration::from_secs(5))));
            }
        }
        assert_eq!(log.flush_and_sync().unwrap(), 20);
        log.close().unwrap();
        let seen = seen.lock().clone();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(seen.last(), Some(&20));
    }

    /// Under `always` every durable append was written and fsynced under the writer's lock
    /// (the fsync replies wait for); under `everysec` the timed fsync is the background one.
    #[test]
    fn writes_and_fsyncs_are_timed_by_kind() {
        for (policy, expected) in [
            (FsyncPolicy::Always, [LogIo::Write, LogIo::Sync]),
            (FsyncPolicy::EverySec, [LogIo::Write, LogIo::BackgroundSync]),
        ] {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let seen2 = Arc::clone(&seen);
            let opts = LogOptions {
                fsync: policy,
                sync_interval: Duration::from_millis(5),
                on_io: Box::new(move |io, _| seen2.lock().push(io)),
                ..LogOptions::default()
            };
            let (log, _) = Log::open("/d", Arc::new(SimFs::new()), opts, &mut NoReplay).unwrap();
            let seq = log.append(b"frame").unwrap();
            assert!(log.wait_durable(seq, Some(Duration::from_secs(5))));
            let synced = || log.synced_seq() >= seq;
            let deadline = Instant::now() + Duration::from_secs(5);
            while !synced() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(synced(), "{policy:?}: never synced");
            let seen = seen.lock().clone();
            for kind in expected {
                assert!(seen.contains(&kind), "{policy:?}: {kind:?} not in {seen:?}");
            }
            if policy == FsyncPolicy::EverySec {
                assert!(!seen.contains(&LogIo::Sync), "everysec synced under the lock: {seen:?}");
            }
            log.close().unwrap();
        }
    }

    /// Under `everysec` a second of writes is kept in chunks until its fsync, and the chunks
    /// are kept for reuse after it: megabytes after a burst. Once the log has been idle for
    /// `idle_release_after` they shrink to one spare chunk and a small queue, and appends
    /// work as before.
    #[test]
    fn an_idle_log_gives_back_what_a_burst_grew_its_buffers_to() {
        // A burst must fall within one sync interval: spread over several (a loaded
        // machine, the suite running in parallel), each fsync frees the chunks before the
        // next fill up, and the burst never grows the buffers this test is about. So a burst
        // that straddled an fsync is tried again.
        let opts = LogOptions {
            fsync: FsyncPolicy::EverySec,
            sync_interval: Duration::from_millis(400),
            idle_release_after: Duration::from_millis(1500),
            ..LogOptions::default()
        };
        let (log, _) = Log::open("/d", Arc::new(SimFs::new()), opts, &mut NoReplay).unwrap();
        // Written through a frame at a time, as executors do: the writes gather in chunks.
        let payload = vec![7u8; 8 << 10];
        let idle_size = (CHUNK_BYTES + IDLE_QUEUE_BYTES) as u64;
        let burst = || {
            let mut last = 0;
            for _ in 0..768 {
                last = log.append(&payload).unwrap();
                log.write_through(last);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while log.synced_seq() < last && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            log.buffered_bytes()
        };
        let held = (0..5).map(|_| burst()).find(|&held| held > 2 * idle_size);
        assert!(held.is_some(), "no burst of five grew the buffers past {} bytes", 2 * idle_size);
        let deadline = Instant::now() + Duration::from_secs(5);
        while log.buffered_bytes() > idle_size && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(log.buffered_bytes() <= idle_size, "still {} bytes held", log.buffered_bytes());
        let seq = log.append(b"after").unwrap();
        assert!(log.wait_durable(seq, Some(Duration::from_secs(5))));
        assert_eq!(log.flush_and_sync().unwrap(), seq);
        log.close().unwrap();
    }

    #[test]
    fn closed_log_refuses_appends() {
        let fs = SimFs::new();
        let (log, _) = Log::open("/d", Arc::new(fs), LogOptions::default(), &mut NoReplay).unwrap();
        log.shutdown();
        assert_eq!(log.append(b"x"), Err(LogError::Closed));
        assert!(matches!(log.flush_and_sync(), Err(StorageError::Closed)));
    }
}
