//! The engine's journal: effects go to the write-ahead log, replies wait for durability; and
//! snapshots (SAVE, BGSAVE, BGREWRITEAOF, automatic compaction), the data directory lock and
//! INFO persistence.
//!
//! Each command's effects are encoded as one batch (`staykv_engine::encode_batch`) and
//! appended to the log, which assigns the sequence number. Replies that depend on a batch
//! wait here until the log writer reports it durable — under `always` that means fsynced;
//! under `everysec` and `no` it means written to the OS (no fsync), so a crash of the process
//! loses nothing acknowledged; under `everysec` appends also wait when fsync falls more than
//! 2 s behind.
//!
//! Snapshots are built off the hot path from the log itself (see `snapshot.rs`): one job at a
//! time, on its own thread; SAVE runs the same job on the calling thread and replies once the
//! snapshot is installed.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use staykv_engine::latency::{self, LatencyMonitor};
use staykv_engine::{encode_batch, Effect, Engine, Journal, Reply};
use staykv_storage::{
    parse_segment_file_name, read_manifest, FsyncPolicy as StoragePolicy, Log, LogIo, LogOptions, RealFs, SnapshotRef,
};

use crate::config::{FsyncPolicy, OnReplayError};
use crate::durable_wait::DurableWaiters;
use crate::host::blocking;
use crate::snapshot::{self, EngineReplay, LoadProgress};

pub(crate) const MISCONF: &str = "MISCONF StayKV cannot write its log to disk, so commands that change data are refused until it can. Reads keep working; check the server log for the disk error (disk full?).";

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Redis's `auto-aof-rewrite-min-size` default.
const AUTO_MIN_BYTES: u64 = 64 << 20;
/// Redis's `auto-aof-rewrite-percentage` default.
const AUTO_PERCENT: u64 = 100;
/// How often the automatic trigger looks at the log size: Redis checks in `serverCron`, ten
/// times a second, so a burst of writes gets its rewrite at once rather than up to a second
/// later. A look is a directory listing of a few segments.
const AUTO_CHECK_EVERY: Duration = Duration::from_millis(100);
/// Wait after a failed snapshot before the automatic trigger tries again.
const AUTO_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Which command started a snapshot job (they all do the same thing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Save,
    BgSave,
    Rewrite,
    Auto,
    /// SYNC (`redis-cli --rdb`) brings the snapshot up to date...
    Sync,
    /// ...and then holds the slot while the file is sent: a compaction would cut the file
    /// it replaces down and delete it.
    Transfer,
}

impl Job {
    /// Whether Redis would run this as an RDB save (else as an AOF rewrite).
    fn is_save(self) -> bool {
        matches!(self, Job::Save | Job::BgSave | Job::Sync | Job::Transfer)
    }
}

/// What BGSAVE or BGREWRITEAOF did.
enum Launch {
    Started,
    Scheduled,
    /// Refused: this job runs.
    Busy(Job),
}

/// How long SYNC waits for the job running when it arrives before trying again.
const SYNC_CLAIM_RETRY: Duration = Duration::from_millis(10);

/// How often a message's or report's wait ([`Persistence::wait_settled`]) looks at the log's
/// health: a disk error is noticed this long after it at most.
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// A snapshot being sent to a SYNC client: the open file (or an empty dataset's RDB) and its
/// length. While it lives no compaction starts, so the file stays whole.
pub struct Transfer {
    pub source: TransferSource,
    pub len: u64,
    /// Held while a snapshot file is read, so that no compaction replaces it meanwhile.
    _slot: Option<JobSlot>,
}

impl Transfer {
    /// The transfer of an RDB file in memory: no file to keep, no job slot held.
    pub fn from_memory(rdb: Vec<u8>) -> Transfer {
        let len = rdb.len() as u64;
        Transfer { source: TransferSource::Memory(rdb), len, _slot: None }
    }
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer").field("len", &self.len).finish_non_exhaustive()
    }
}

/// Where a transfer's bytes come from.
pub enum TransferSource {
    File(File),
    /// No snapshot exists (nothing was ever written, or it was all in the log and nothing
    /// since): the RDB of an empty dataset.
    Memory(Vec<u8>),
}

/// The job slot a job claimed ([`Persistence::claim`]), released when dropped: at the end of
/// the job, or of a SYNC transfer, or when its thread could not start.
struct JobSlot {
    persistence: Arc<Persistence>,
    job: Job,
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        let mut state = self.persistence.save.lock();
        state.running = None;
        state.started = None;
    }
}

/// Snapshot bookkeeping.
#[derive(Debug, Clone)]
struct SaveState {
    running: Option<Job>,
    /// BGSAVE SCHEDULE or BGREWRITEAOF that came while another kind of job ran: started
    /// once the slot is free, as Redis starts a scheduled child.
    scheduled: Option<Job>,
    started: Option<Instant>,
    last_ok: bool,
    last_duration_secs: i64,
    last_failure: Option<Instant>,
    /// The live snapshot (from the manifest) and its size.
    snapshot: Option<SnapshotRef>,
    snapshot_bytes: u64,
    /// Redis's `aof_rewrite_base_size`, what the automatic trigger measures growth against:
    /// snapshot plus log right after the last compaction, so that what clients wrote while it
    /// ran counts as part of the base (at start: the snapshot alone, see `open`).
    base_bytes: u64,
    completed: u64,
    /// Failed jobs since the last that succeeded (`aof_rewrites_consecutive_failures`).
    consecutive_failures: u64,
}

/// The live log plus what clients wait on.
#[derive(Debug)]
pub struct Persistence {
    log: OnceLock<Log>,
    dir: OnceLock<PathBuf>,
    databases: AtomicU64,
    durable: DurableWaiters,
    loading: AtomicBool,
    /// When the start-up load began (Unix seconds: the server's start, which begins with it)
    /// and how far it has come.
    load_started_unix: u64,
    load_progress: LoadProgress,
    /// The server is stopping: no compaction starts ([`Persistence::close`]).
    closing: AtomicBool,
    writes_since_save: AtomicU64,
    last_save_unix: AtomicU64,
    /// Compactions completed when CONFIG RESETSTAT last ran: INFO's `rdb_saves` and
    /// `aof_rewrites` count from there, as Redis's do (/metrics keeps the whole count).
    compactions_at_resetstat: AtomicU64,
    /// Held (locked) for the life of the process.
    lock_file: Mutex<Option<File>>,
    save: Mutex<SaveState>,
    auto_min_bytes: AtomicU64,
    auto_percent: AtomicU64,
    /// Bytes of live log segments, as last measured ([`Persistence::measure_log_bytes`]).
    log_bytes: AtomicU64,
    /// The log's last seq when `log_bytes` was measured.
    measured_at_seq: AtomicU64,
    /// Set at [`Persistence::open`]: what recovery and compactions do with an effect that
    /// fails to replay.
    on_replay_error: OnceLock<OnReplayError>,
}

thread_local! {
    /// Reused encoding buffer: no allocation per write on the hot path.
    static BATCH_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most [`BATCH_BUF`] keeps between writes. One large batch (a RENAME of a hash of a
/// million fields encodes ~20 MB; a 600 KB value, 600 KB) would otherwise stay allocated on
/// every thread that ever logged one, as `used_memory` with no key in the dataset. Redis
/// keeps at most 4 KB of its AOF buffer; 64 KiB holds any batch of a session store's writes.
const BATCH_BUF_KEPT: usize = 64 << 10;

fn storage_policy(policy: FsyncPolicy) -> StoragePolicy {
    match policy {
        FsyncPolicy::Always => StoragePolicy::Always,
        FsyncPolicy::Everysec => StoragePolicy::EverySec,
        FsyncPolicy::No => StoragePolicy::No,
    }
}

/// Redis's latency event for a write or fsync of the log: its `aof-fsync-always` is the fsync
/// replies wait for, so only under `always`; `everysec`'s fsyncs, which no reply waits for,
/// have none.
fn latency_event(io: LogIo, always: bool) -> Option<&'static str> {
    match io {
        LogIo::Write => Some(latency::LOG_WRITE),
        LogIo::Sync if always => Some(latency::LOG_FSYNC_ALWAYS),
        LogIo::Sync | LogIo::BackgroundSync => None,
    }
}

/// Takes the exclusive lock of a data directory (`dir/LOCK`), creating the directory.
/// Fails with a clear message when another process holds it.
pub fn lock_dir(dir: &Path) -> Result<File, String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!("the data directory {} is not a directory", dir.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            let who = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
            return Err(format!(
                "data directory {} is in use by another StayKV process{who}: {} is locked. \
                 Stop that process first, or use another --dir",
                dir.display(),
                path.display()
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(format!("cannot lock {}: {e}", path.display())),
    }
    let _ = file.set_len(0);
    let _ = std::io::Write::write_all(&mut &file, format!("{}\n", std::process::id()).as_bytes());
    Ok(file)
}

/// Live log segment files of `dir` and the bytes of log data in each: the file's size, but
/// for the segment the log writes to, whose file may go on with zeros (a zero-filled
/// segment, `docs/log-format.md`): counted, they would set off compactions of nothing.
fn segment_sizes(dir: &Path, log: Option<&Log>) -> Vec<(u64, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let (live_first, live_end) = log.map_or((0, u64::MAX), Log::live_segment);
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if let Some(first) = parse_segment_file_name(&name.to_string_lossy()) {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((first, if first == live_first { len.min(live_end) } else { len }));
        }
    }
    out.sort_unstable();
    out
}

/// The snapshot the manifest of `dir` names, and its size.
fn live_snapshot(dir: &Path) -> Result<(Option<SnapshotRef>, u64), String> {
    let snapshot = read_manifest(&RealFs::new(), dir).map_err(|e| e.to_string())?.and_then(|m| m.snapshot);
    let bytes = snapshot.as_ref().and_then(|s| std::fs::metadata(dir.join(&s.file)).ok()).map_or(0, |m| m.len());
    Ok((snapshot, bytes))
}

/// What a load of `dir` reads, as [`LoadProgress`] expects it before the read: the snapshot
/// the manifest names and the log segments.
pub fn expect_load(dir: &Path, progress: &LoadProgress) {
    let snapshot_bytes = live_snapshot(dir).map_or(0, |(_, bytes)| bytes);
    let log_bytes = segment_sizes(dir, None).iter().map(|(_, len)| len).sum();
    progress.expect(snapshot_bytes, log_bytes);
}

/// `nice` of a background snapshot thread: under CPU contention the scheduler gives it about a
/// tenth of the share of a client-serving thread (weights 110 vs 1024), so compaction stretches
/// out instead of pushing up command latency, yet still progresses under a saturating load (a
/// starved compaction would let the log grow without bound, which `SCHED_IDLE` could).
const SNAPSHOT_NICE: libc::c_int = 10;

/// Applies [`SNAPSHOT_NICE`] to the calling thread (Linux priorities are per thread).
#[allow(unsafe_code)]
fn lower_thread_priority() {
    // SAFETY: gettid and setpriority take no pointers; they only read their integer arguments.
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, SNAPSHOT_NICE)
    };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "snapshot thread keeps its priority");
    }
}

impl Persistence {
    pub fn new(_policy: FsyncPolicy) -> Persistence {
        Persistence {
            log: OnceLock::new(),
            dir: OnceLock::new(),
            databases: AtomicU64::new(16),
            durable: DurableWaiters::default(),
            loading: AtomicBool::new(true),
            load_started_unix: crate::clock::unix_secs(),
            load_progress: LoadProgress::default(),
            closing: AtomicBool::new(false),
            writes_since_save: AtomicU64::new(0),
            compactions_at_resetstat: AtomicU64::new(0),
            last_save_unix: AtomicU64::new(0),
            lock_file: Mutex::new(None),
            save: Mutex::new(SaveState {
                running: None,
                scheduled: None,
                started: None,
                last_ok: true,
                last_duration_secs: -1,
                last_failure: None,
                snapshot: None,
                snapshot_bytes: 0,
                base_bytes: 0,
                completed: 0,
                consecutive_failures: 0,
            }),
            auto_min_bytes: AtomicU64::new(AUTO_MIN_BYTES),
            auto_percent: AtomicU64::new(AUTO_PERCENT),
            log_bytes: AtomicU64::new(0),
            measured_at_seq: AtomicU64::new(u64::MAX),
            on_replay_error: OnceLock::new(),
        }
    }

    /// Sizes up the load ahead (INFO's `loading_total_bytes`): called before the listeners
    /// open, since a client may ask INFO as soon as it gets -LOADING.
    pub fn expect_load(&self, dir: &Path) {
        expect_load(dir, &self.load_progress);
    }

    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    /// Lock the data directory, recover it into `engine`, say what was loaded and start the log
    /// writer and the automatic compaction trigger. Blocking: run it off the async runtime.
    /// Refuses (with the storage error) rather than start empty over data it could not read.
    pub fn open(
        self: &Arc<Self>,
        dir: &Path,
        engine: &Engine,
        policy: FsyncPolicy,
        segment_bytes: u64,
        on_replay_error: OnReplayError,
    ) -> Result<(), String> {
        let lock = lock_dir(dir)?;
        let _ = self.on_replay_error.set(on_replay_error);
        *self.lock_file.lock() = Some(lock);
        snapshot::remove_temp_files(dir);
        self.databases.store(engine.keyspace.databases() as u64, Ordering::Relaxed);
        let notify = Arc::clone(self);
        let timed = Arc::downgrade(self);
        let monitor = Arc::clone(&engine.latency);
        let options = LogOptions {
            fsync: storage_policy(policy),
            segment_bytes,
            on_durable: Box::new(move |seq| {
                notify.durable.publish(seq);
            }),
            on_io: Box::new(move |io, took| {
                if let Some(persistence) = timed.upgrade() {
                    persistence.log_io_timed(&monitor, io, took);
                }
            }),
            ..LogOptions::default()
        };
        let mut replay = EngineReplay::new(dir, engine, on_replay_error);
        replay.load_progress = Some(&self.load_progress);
        let (log, recovery) =
            Log::open(dir, Arc::new(RealFs::new()), options, &mut replay).map_err(|e| e.to_string())?;
        if replay.skipped_effects > 0 {
            tracing::warn!(
                "{} logged writes failed to replay and were skipped (--on-replay-error skip); the next \
                 compaction leaves them out of the data directory",
                replay.skipped_effects
            );
        }
        self.durable.publish(log.durable_seq());
        let _ = self.log.set(log);
        let _ = self.dir.set(dir.to_path_buf());
        self.refresh_snapshot_state();
        self.last_save_unix.store(crate::clock::unix_secs(), Ordering::Relaxed);
        self.measure_log_bytes(dir);
        // Redis starts from the whole AOF's size here; the snapshot alone makes a log that
        // had grown past the trigger before a restart be compacted now rather than after it
        // doubles again, and so keeps the next restart short.
        {
            let mut state = self.save.lock();
            state.base_bytes = state.snapshot_bytes;
        }
        // Counted while loading: once clients are served, a script may hold every shard for
        // as long as it runs (an unkillable one, until SHUTDOWN NOSAVE), and a count taken
        // then would wait for it on the thread that must carry out that shutdown.
        let keys: usize = engine.db_sizes().iter().map(|(keys, _)| keys).sum();
        self.loading.store(false, Ordering::Release);
        tracing::info!(
            "data directory {} ready: {} log batches replayed, {keys} keys",
            dir.display(),
            recovery.frames_replayed
        );
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("staykv-compaction-trigger".into())
            .spawn(move || auto_trigger(weak))
            .map_err(|e| format!("cannot start the compaction trigger thread: {e}"))?;
        Ok(())
    }

    /// A write or fsync of the log took `took`: into `/metrics`, and, if it is a spike, into
    /// the latency monitor under Redis's event names (an fsync only under `always`, where
    /// replies wait for it).
    fn log_io_timed(&self, monitor: &LatencyMonitor, io: LogIo, took: Duration) {
        crate::metrics::record_log_io(io, took);
        let millis = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        if !monitor.is_spike(millis) {
            return;
        }
        let always = self.log.get().is_some_and(|log| log.fsync_policy() == StoragePolicy::Always);
        if let Some(event) = latency_event(io, always) {
            monitor.offer(event, crate::clock::unix_secs(), millis);
        }
    }

    /// What a pushed message (and a report on the whole keyspace) waits for: the last batch
    /// appended, since the write a message tells of was appended before the message was
    /// handed over. 0 before the log opens, and while the disk refuses writes: the batches
    /// then stuck may never become durable, and pub/sub and INFO must go on meanwhile (a
    /// message about such a write may then tell of one a crash takes back).
    pub fn settled_seq(&self) -> u64 {
        self.log.get().filter(|log| log.healthy()).map_or(0, |log| log.last_seq())
    }

    /// What messages and reports on the whole keyspace wait for ([`Persistence::settled_seq`]):
    /// the log durable up to `seq`, or no longer healthy. One taken while the log was healthy
    /// may cover a batch the disk then refused, which may never become durable: the wait ends
    /// when the log turns unhealthy (seen within [`SETTLE_POLL`]), not with the disk's
    /// recovery, or never when it does not recover.
    pub async fn wait_settled(&self, seq: u64) {
        while seq != 0 && self.settled_seq() != 0 {
            if tokio::time::timeout(SETTLE_POLL, self.wait_durable(seq)).await.is_ok() {
                return;
            }
        }
    }

    /// Wait until the batch `seq` is durable under the current policy: fsynced under
    /// `always`; written to the OS under `everysec` and `no` (a `write(2)`, no fsync), so that
    /// a crash of the process never loses an acknowledged write.
    ///
    /// Under `everysec` and `no` the waiting executor does the write itself
    /// ([`Log::write_through`]) unless another thread is writing: no thread hop. That blocks
    /// this runtime thread for a `write(2)`, as Redis's main thread writes its AOF buffer. It
    /// first lets the other connections its thread has ready run, so their frames go out in
    /// the same `write(2)`, as Redis writes once per pass of its event loop. With a write per
    /// reply, `redis-benchmark -c 50 -t set` made 0.88 log writes a request (Redis 0.21);
    /// together, 0.12–0.16.
    pub async fn wait_durable(&self, seq: u64) {
        let Some(log) = self.log.get() else {
            self.durable.until(seq).await;
            return;
        };
        if seq == 0 || log.durable_seq() >= seq {
            return;
        }
        if log.fsync_policy() == StoragePolicy::Always {
            // Only the writer thread writes: wait for the fsync that covers `seq`.
            return self.durable.until(seq).await;
        }
        // Runs the tasks ready on this thread, then this one again after the I/O driver.
        tokio::task::yield_now().await;
        loop {
            // Created before the next try: a publication after a failed try is not missed.
            let published = self.durable.next_publication(seq);
            if log.write_through(seq) {
                return;
            }
            published.await;
        }
    }

    /// Bytes held in the log's buffers (left out of `maxmemory`).
    pub fn log_buffered_bytes(&self) -> u64 {
        self.log.get().map_or(0, Log::buffered_bytes)
    }

    pub fn set_fsync(&self, policy: FsyncPolicy) {
        if let Some(log) = self.log.get() {
            log.set_fsync_policy(storage_policy(policy));
        }
    }

    /// Shutdown: from now on no compaction starts (the automatic trigger would otherwise
    /// start one after the log's last fsync, to be cut off at the exit), then everything
    /// appended so far is written and fsynced. A compaction already running dies with the
    /// process, as at a crash: its temporary file is removed at the next start.
    pub fn close(&self) -> Result<(), String> {
        self.closing.store(true, Ordering::Relaxed);
        match self.log.get() {
            Some(log) => log.flush_and_sync().map(|_| ()).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    pub fn last_save_unix(&self) -> Option<u64> {
        match self.last_save_unix.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// `auto-aof-rewrite-min-size`: the log must be at least this big for an automatic
    /// compaction.
    pub fn auto_rewrite_min_size(&self) -> u64 {
        self.auto_min_bytes.load(Ordering::Relaxed)
    }

    pub fn set_auto_rewrite_min_size(&self, bytes: u64) {
        self.auto_min_bytes.store(bytes, Ordering::Relaxed);
    }

    /// `auto-aof-rewrite-percentage`: compact once the log exceeds the snapshot by this
    /// much (100: the log is twice the snapshot); 0 turns automatic compaction off.
    pub fn auto_rewrite_percentage(&self) -> u64 {
        self.auto_percent.load(Ordering::Relaxed)
    }

    pub fn set_auto_rewrite_percentage(&self, percent: u64) {
        self.auto_percent.store(percent, Ordering::Relaxed);
    }

    /// SAVE, `BGSAVE [SCHEDULE]`, BGREWRITEAOF. A compaction is both a save and a rewrite;
    /// the replies speak of the one that started it, as Redis's speak of its child: a save
    /// refuses another save, a rewrite another rewrite, and the other kind is scheduled
    /// (BGREWRITEAOF always, BGSAVE when asked with SCHEDULE) or, for SAVE, waited for.
    pub fn command(self: &Arc<Self>, name: &str) -> Result<Reply, String> {
        const SAVING: &str = "ERR Background save already in progress";
        // Inside EXEC a job that starts is reported as scheduled, as Redis, which cannot fork
        // there, reports it.
        let in_exec = name.ends_with(" in exec");
        match name {
            "save" => {
                let slot = match self.running() {
                    Some(job) if job.is_save() => return Err(SAVING.into()),
                    _ => blocking(|| self.claim_waiting(Job::Save))?,
                };
                let result = blocking(|| self.run_job(slot));
                result.map(|()| Reply::Ok).map_err(|e| format!("ERR snapshot failed: {e}"))
            }
            "bgsave" | "bgsave schedule" | "bgsave in exec" => match self.start_or_schedule(Job::BgSave, name != "bgsave") {
                Launch::Started if !in_exec => Ok(Reply::Status("Background saving started")),
                Launch::Started | Launch::Scheduled => Ok(Reply::Status("Background saving scheduled")),
                Launch::Busy(running) if running.is_save() => Err(SAVING.into()),
                Launch::Busy(_) => Err("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.".into()),
            },
            "bgrewriteaof" | "bgrewriteaof in exec" => match self.start_or_schedule(Job::Rewrite, true) {
                Launch::Started if !in_exec => Ok(Reply::Status("Background append only file rewriting started")),
                Launch::Started | Launch::Scheduled => {
                    Ok(Reply::Status("Background append only file rewriting scheduled"))
                }
                Launch::Busy(_) => Err("ERR Background append only file rewriting already in progress".into()),
            },
            other => Err(format!("ERR unknown persistence command '{other}'")),
        }
    }

    fn running(&self) -> Option<Job> {
        self.save.lock().running
    }

    /// Starts `job`, or, while a job of the other kind runs and `may_schedule`, schedules it.
    fn start_or_schedule(self: &Arc<Self>, job: Job, may_schedule: bool) -> Launch {
        {
            let mut state = self.save.lock();
            match state.running {
                None => {}
                Some(running) if running.is_save() == job.is_save() || !may_schedule => return Launch::Busy(running),
                Some(_) => {
                    state.scheduled.get_or_insert(job);
                    return Launch::Scheduled;
                }
            }
        }
        match self.start_background(job) {
            Ok(()) => Launch::Started,
            // Another job took the slot first.
            Err(()) => Launch::Busy(self.running().unwrap_or(job)),
        }
    }

    /// SYNC: a snapshot of everything acknowledged before the call, opened for sending. Waits
    /// for a job already running, then compacts the log into a snapshot if anything was
    /// logged since the last one (as BGSAVE would), then holds the job slot until the
    /// returned [`Transfer`] is dropped. Blocking: call it off the async runtime's core.
    pub fn snapshot_for_transfer(self: &Arc<Self>) -> Result<Transfer, String> {
        let slot = self.claim_waiting(Job::Sync)?;
        self.run_job(slot).map_err(|e| format!("ERR snapshot failed: {e}"))?;
        // A compaction may start between the two claims: the snapshot it installs covers
        // even more, and it is the one sent.
        let slot = self.claim_waiting(Job::Transfer)?;
        self.refresh_snapshot_state();
        let (snapshot, dir) = (self.save.lock().snapshot.clone(), self.dir.get());
        let (Some(snapshot), Some(dir)) = (snapshot, dir) else {
            let empty = staykv_rdb::keyless_file(std::iter::empty())
                .map_err(|e| format!("ERR cannot encode an empty RDB: {e}"))?;
            return Ok(Transfer::from_memory(empty));
        };
        let path = dir.join(&snapshot.file);
        let file = File::open(&path).map_err(|e| format!("ERR cannot open the snapshot {}: {e}", path.display()))?;
        let len = file.metadata().map_err(|e| format!("ERR cannot read the snapshot {}: {e}", path.display()))?.len();
        Ok(Transfer { source: TransferSource::File(file), len, _slot: Some(slot) })
    }

    /// Claims the job slot for `job`, waiting while another job holds it.
    fn claim_waiting(self: &Arc<Self>, job: Job) -> Result<JobSlot, String> {
        loop {
            if let Some(slot) = self.claim(job) {
                return Ok(slot);
            }
            if self.log.get().is_none() {
                return Err("LOADING StayKV is loading the dataset in memory".into());
            }
            if self.closing.load(Ordering::Relaxed) {
                return Err("ERR The server is shutting down".into());
            }
            std::thread::sleep(SYNC_CLAIM_RETRY);
        }
    }

    /// Marks `job` as running until the returned slot is dropped; `None` if a job already
    /// runs (or the log is not open yet, or the server is stopping).
    fn claim(self: &Arc<Self>, job: Job) -> Option<JobSlot> {
        self.log.get()?;
        let mut state = self.save.lock();
        if state.running.is_some() || self.closing.load(Ordering::Relaxed) {
            return None;
        }
        state.running = Some(job);
        state.started = Some(Instant::now());
        Some(JobSlot { persistence: Arc::clone(self), job })
    }

    fn start_background(self: &Arc<Self>, job: Job) -> Result<(), ()> {
        let slot = self.claim(job).ok_or(())?;
        let me = Arc::clone(self);
        // On a failed spawn the closure, and the slot in it, is dropped: the slot is free again.
        let spawned = std::thread::Builder::new().name("staykv-snapshot".into()).spawn(move || {
            lower_thread_priority();
            // Its buffers pass as Redis's rewrite child's do, in memory `maxmemory` leaves out.
            let _not_counted = crate::memory::NotCountedForEviction::enter();
            let _ = me.run_job(slot);
            crate::memory::release_free_pages();
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start the snapshot thread: {e}");
            self.save.lock().last_ok = false;
            return Err(());
        }
        Ok(())
    }

    /// Runs a claimed job to the end, records the outcome, then frees the slot.
    fn run_job(&self, slot: JobSlot) -> Result<(), String> {
        let started = Instant::now();
        let result = self.snapshot_now(slot.job);
        self.refresh_snapshot_state();
        let mut state = self.save.lock();
        state.last_duration_secs = started.elapsed().as_secs() as i64;
        match &result {
            Ok(()) => {
                state.last_ok = true;
                state.consecutive_failures = 0;
                state.last_failure = None;
                state.completed += 1;
                state.base_bytes = state.snapshot_bytes + self.log_bytes.load(Ordering::Relaxed);
            }
            Err(e) => {
                state.last_ok = false;
                state.consecutive_failures += 1;
                state.last_failure = Some(Instant::now());
                tracing::error!("snapshot failed: {e}");
            }
        }
        // Free only once the outcome is recorded: a client that sees no job running reads it.
        drop(state);
        drop(slot);
        result
    }

    /// Rotate the log, build the snapshot of everything before the rotation, install it.
    fn snapshot_now(&self, job: Job) -> Result<(), String> {
        let (Some(log), Some(dir)) = (self.log.get(), self.dir.get()) else {
            return Err("the log is not open".into());
        };
        let dirty = self.writes_since_save.load(Ordering::Relaxed);
        let next = log.rotate().map_err(|e| format!("cannot rotate the log: {e}"))?;
        let covered = next.saturating_sub(1);
        let (previous, previous_bytes) = {
            let state = self.save.lock();
            (state.snapshot.clone(), state.snapshot_bytes)
        };
        let up_to_date = match &previous {
            Some(s) => s.seq >= covered,
            None => covered == 0,
        };
        if !up_to_date {
            let sealed: u64 =
                segment_sizes(dir, Some(log)).iter().filter(|(first, _)| *first < next).map(|(_, len)| len).sum();
            let partitions = snapshot::partitions_for(previous_bytes + sealed);
            tracing::info!(
                "snapshot started ({job:?}): covers log seq {covered}, input {} KiB, {partitions} partition(s)",
                (previous_bytes + sealed) / 1024
            );
            let databases = self.databases.load(Ordering::Relaxed) as usize;
            let on_error = self.on_replay_error.get().copied().unwrap_or(OnReplayError::Refuse);
            let built = snapshot::build_snapshot(dir, databases, covered, partitions, on_error)?;
            let removed = log
                .install_snapshot(&built.file, built.seq)
                .map_err(|e| format!("cannot install snapshot {}: {e}", built.file))?;
            tracing::info!(
                "snapshot {} installed: {} keys ({} copied unchanged; {} writes and old values replaced later stepped over), {} KiB, {:.2} s, {} partition(s); removed {}",
                built.file,
                built.keys,
                built.copied,
                built.superseded,
                built.bytes / 1024,
                built.elapsed.as_secs_f64(),
                built.partitions,
                if removed.is_empty() { "nothing".to_string() } else { removed.join(", ") }
            );
        }
        let _ = self
            .writes_since_save
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(dirty)));
        self.last_save_unix.store(crate::clock::unix_secs(), Ordering::Relaxed);
        self.measure_log_bytes(dir);
        Ok(())
    }

    /// Re-reads the live snapshot from the manifest (the truth, even after a failed install).
    fn refresh_snapshot_state(&self) {
        let Some(dir) = self.dir.get() else { return };
        let (snapshot, bytes) = match live_snapshot(dir) {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!("cannot read the manifest: {e}");
                return;
            }
        };
        let mut state = self.save.lock();
        state.snapshot = snapshot;
        state.snapshot_bytes = bytes;
    }

    /// Lists the live segments and records their total size and the log position it is for
    /// (read first: a write during the listing makes the next look list again).
    fn measure_log_bytes(&self, dir: &Path) -> u64 {
        let log = self.log.get();
        let seq = log.map_or(u64::MAX, Log::written_seq);
        let bytes = segment_sizes(dir, log).iter().map(|(_, len)| len).sum();
        self.log_bytes.store(bytes, Ordering::Relaxed);
        self.measured_at_seq.store(seq, Ordering::Relaxed);
        bytes
    }

    /// One look of the automatic trigger, Redis's rule: start a compaction when snapshot plus
    /// log is over `auto-aof-rewrite-min-size` and has grown by `auto-aof-rewrite-percentage`
    /// over the base size. Counting the writes made during the last compaction in the base
    /// keeps a heavy write load from setting off one compaction right after another.
    fn auto_check(self: &Arc<Self>) {
        let (Some(log), Some(dir)) = (self.log.get(), self.dir.get()) else { return };
        let scheduled = {
            let mut state = self.save.lock();
            if state.running.is_none() {
                state.scheduled.take()
            } else {
                None
            }
        };
        if let Some(job) = scheduled {
            let _ = self.start_background(job);
            return;
        }
        // A log nothing was written to has not grown: an idle server does not list its
        // directory ten times a second.
        let log_bytes = if log.written_seq() == self.measured_at_seq.load(Ordering::Relaxed) {
            self.log_bytes.load(Ordering::Relaxed)
        } else {
            self.measure_log_bytes(dir)
        };
        let percent = self.auto_percent.load(Ordering::Relaxed);
        if percent == 0 || !log.healthy() {
            return;
        }
        let (current, base, backing_off) = {
            let state = self.save.lock();
            if state.running.is_some() {
                return;
            }
            let backing_off = state.last_failure.is_some_and(|t| t.elapsed() < AUTO_RETRY_AFTER);
            (state.snapshot_bytes + log_bytes, state.base_bytes, backing_off)
        };
        if backing_off {
            return;
        }
        let grown = current.saturating_mul(100) >= base.max(1).saturating_mul(100 + percent);
        if current > self.auto_min_bytes.load(Ordering::Relaxed) && grown {
            tracing::info!(
                "starting automatic log compaction: snapshot and log {} KiB, {percent}% over the base of {} KiB",
                current / 1024,
                base / 1024
            );
            let _ = self.start_background(Job::Auto);
        }
    }

    /// The persistence figures of this moment, as INFO and `/metrics` report them.
    pub fn figures(&self) -> PersistenceFigures {
        let log = self.log.get();
        // Copied out, so that the log is read without the save state's lock held.
        let save = self.save.lock().clone();
        PersistenceFigures {
            load: self.is_loading().then(|| {
                let (loaded_bytes, total_bytes) = self.load_progress.bytes();
                LoadFigures { started_unix: self.load_started_unix, loaded_bytes, total_bytes }
            }),
            changes_since_save: self.writes_since_save.load(Ordering::Relaxed),
            last_save_unix: self.last_save_unix.load(Ordering::Relaxed),
            compacting: save.running.is_some(),
            rewrite_scheduled: save.scheduled == Some(Job::Rewrite),
            current_secs: save.started.map_or(-1, |t| t.elapsed().as_secs() as i64),
            last_ok: save.last_ok,
            last_secs: save.last_duration_secs,
            compactions: save.completed,
            consecutive_failures: save.consecutive_failures,
            log_healthy: log.is_none_or(Log::healthy),
            // As the trigger thread last measured it (every 100 ms while the log grows): INFO
            // runs on a thread that serves clients, which lists no directory.
            log_bytes: self.log_bytes.load(Ordering::Relaxed),
            snapshot: save.snapshot,
            snapshot_bytes: save.snapshot_bytes,
            base_bytes: save.base_bytes,
            last_seq: log.map_or(0, Log::last_seq),
            durable_seq: log.map_or(0, Log::durable_seq),
            synced_seq: log.map_or(0, Log::synced_seq),
        }
    }

    /// CONFIG RESETSTAT: the compaction counts of INFO start again from 0.
    pub fn reset_stats(&self) {
        self.compactions_at_resetstat.store(self.figures().compactions, Ordering::Relaxed);
    }

    /// The `# Persistence` section of INFO, with Redis's field names and order.
    pub fn info(&self) -> String {
        let f = self.figures();
        let compactions = f.compactions.saturating_sub(self.compactions_at_resetstat.load(Ordering::Relaxed));
        let status = |ok: bool| if ok { "ok" } else { "err" };
        let (running, last, current) = (u8::from(f.compacting), f.last_secs, f.current_secs);
        let mut out = String::new();
        // Snapshots are written by a thread, never a forked child: no copy-on-write to count.
        let _ = write!(
            out,
            "loading:{}\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\n\
             current_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\n",
            u8::from(f.load.is_some())
        );
        // BGSAVE and BGREWRITEAOF start the same job (a compaction writes a snapshot, then drops
        // the log it covers): Redis's RDB and AOF fields both describe it.
        let _ = write!(
            out,
            "rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{running}\r\nrdb_last_save_time:{}\r\n\
             rdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{last}\r\nrdb_current_bgsave_time_sec:{current}\r\n\
             rdb_saves:{}\r\nrdb_last_cow_size:0\r\n",
            f.changes_since_save,
            f.last_save_unix,
            status(f.last_ok),
            compactions,
        );
        let _ = write!(
            out,
            "aof_enabled:1\r\naof_rewrite_in_progress:{running}\r\naof_rewrite_scheduled:{}\r\n\
             aof_last_rewrite_time_sec:{last}\r\naof_current_rewrite_time_sec:{current}\r\naof_last_bgrewrite_status:{}\r\n\
             aof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\n\
             aof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n\
             aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\n",
            u8::from(f.rewrite_scheduled),
            status(f.last_ok),
            compactions,
            f.consecutive_failures,
            status(f.log_healthy),
            f.disk_bytes(),
            f.base_bytes,
            u8::from(f.rewrite_scheduled),
            self.log_buffered_bytes(),
        );
        let _ = write!(
            out,
            "staykv_log_last_seq:{}\r\nstaykv_log_durable_seq:{}\r\nstaykv_log_fsynced_seq:{}\r\nstaykv_log_bytes:{}\r\n\
             staykv_snapshot_file:{}\r\nstaykv_snapshot_seq:{}\r\nstaykv_snapshot_bytes:{}\r\n",
            f.last_seq,
            f.durable_seq,
            f.synced_seq,
            f.log_bytes,
            f.snapshot.as_ref().map_or("", |s| s.file.as_str()),
            f.snapshot.as_ref().map_or(0, |s| s.seq),
            f.snapshot_bytes,
        );
        // Last, as in Redis, and only while loading.
        if let Some(load) = f.load {
            out.push_str(&load.info(crate::clock::unix_secs()));
        }
        out
    }
}

/// What [`Persistence::figures`] reads: one consistent look at the log and the compactions.
#[derive(Debug, Clone)]
pub struct PersistenceFigures {
    /// How far the start-up load has come, while it runs.
    pub load: Option<LoadFigures>,
    /// Writes since the last snapshot (`rdb_changes_since_last_save`).
    pub changes_since_save: u64,
    /// Unix time of the last successful snapshot, or of the start.
    pub last_save_unix: u64,
    /// A compaction (BGREWRITEAOF, BGSAVE or automatic) is running.
    pub compacting: bool,
    pub rewrite_scheduled: bool,
    /// Seconds the running compaction has taken so far, -1 if none runs.
    pub current_secs: i64,
    /// The last compaction succeeded (or none has run).
    pub last_ok: bool,
    /// Seconds the last compaction took, -1 if none has run.
    pub last_secs: i64,
    /// Compactions completed since the start.
    pub compactions: u64,
    /// Compactions that failed since the last that succeeded.
    pub consecutive_failures: u64,
    /// The log can be written; `false` while writes are refused (MISCONF).
    pub log_healthy: bool,
    pub log_bytes: u64,
    pub snapshot: Option<SnapshotRef>,
    pub snapshot_bytes: u64,
    /// Snapshot plus log right after the last compaction (`aof_base_size`).
    pub base_bytes: u64,
    pub last_seq: u64,
    pub durable_seq: u64,
    pub synced_seq: u64,
}

/// The start-up load's progress, as Redis's `loading_*` fields report it.
#[derive(Debug, Clone, Copy)]
pub struct LoadFigures {
    /// Unix seconds.
    pub started_unix: u64,
    pub loaded_bytes: u64,
    pub total_bytes: u64,
}

impl LoadFigures {
    /// Redis's `loading_*` lines: the percentage read and a time left at the rate so far
    /// (1 s while under a second has passed, as Redis guesses it).
    fn info(&self, now_unix: u64) -> String {
        let percent =
            if self.total_bytes == 0 { 0.0 } else { self.loaded_bytes as f64 * 100.0 / self.total_bytes as f64 };
        let remaining = self.total_bytes.saturating_sub(self.loaded_bytes);
        let eta = match now_unix.saturating_sub(self.started_unix) {
            0 => 1,
            elapsed => u64::try_from(u128::from(elapsed) * u128::from(remaining) / u128::from(self.loaded_bytes + 1))
                .unwrap_or(u64::MAX),
        };
        format!(
            "loading_start_time:{}\r\nloading_total_bytes:{}\r\nloading_rdb_used_mem:0\r\nloading_loaded_bytes:{}\r\n\
             loading_loaded_perc:{percent:.2}\r\nloading_eta_seconds:{eta}\r\n",
            self.started_unix, self.total_bytes, self.loaded_bytes
        )
    }
}

impl PersistenceFigures {
    /// Bytes the data directory's live files hold: the snapshot and the log.
    pub fn disk_bytes(&self) -> u64 {
        self.log_bytes + self.snapshot_bytes
    }
}

/// The automatic compaction trigger's thread: looks at the log size every
/// [`AUTO_CHECK_EVERY`] while the server lives.
fn auto_trigger(persistence: Weak<Persistence>) {
    loop {
        std::thread::sleep(AUTO_CHECK_EVERY);
        let Some(p) = persistence.upgrade() else { return };
        p.auto_check();
    }
}

impl Journal for Persistence {
    fn settled_seq(&self) -> u64 {
        Persistence::settled_seq(self)
    }

    /// A disk error: writes get MISCONF until the log can be written again.
    fn refusing_writes(&self) -> bool {
        self.log.get().is_some_and(|log| !log.healthy())
    }

    fn check_writable(&self) -> Result<(), String> {
        let Some(log) = self.log.get() else {
            return Ok(());
        };
        if self.refusing_writes() {
            return Err(MISCONF.into());
        }
        if log.sync_lagging() && !log.wait_writable_blocking(Duration::from_secs(2)) {
            return Err(MISCONF.into());
        }
        Ok(())
    }

    fn fsync_through(&self, seq: u64) -> bool {
        let Some(log) = self.log.get() else { return true };
        if log.synced_seq() >= seq {
            return true;
        }
        // `flush_and_sync` covers everything appended before the call, `seq` included.
        match blocking(|| log.flush_and_sync()) {
            Ok(synced) => synced >= seq,
            Err(error) => {
                tracing::warn!(%error, "WAITAOF: the log could not be fsynced");
                false
            }
        }
    }

    fn max_batch_len(&self) -> usize {
        match self.log.get() {
            Some(_) => staykv_storage::MAX_PAYLOAD_LEN as usize,
            None => usize::MAX,
        }
    }

    fn append(&self, time_ms: u64, effects: &[Effect]) -> Result<u64, String> {
        let Some(log) = self.log.get() else { return Ok(0) };
        self.writes_since_save.fetch_add(effects.len() as u64, Ordering::Relaxed);
        BATCH_BUF.with_borrow_mut(|buf| {
            buf.clear();
            encode_batch(time_ms, effects, buf);
            let appended = log.append(buf);
            if buf.capacity() > BATCH_BUF_KEPT {
                *buf = Vec::new();
            }
            // The engine turns a refusal (a batch over the frame limit) into an error reply.
            appended.map_err(|error| {
                tracing::error!(%error, "a write could not be logged");
                error.to_string()
            })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use staykv_engine::EngineOptions;

    /// Once shutdown has flushed the log, nothing may start a compaction that the exit would
    /// cut off: not the automatic trigger, not a command in flight.
    #[test]
    fn no_compaction_starts_once_closed() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::new(EngineOptions::default());
        let persistence = Arc::new(Persistence::new(FsyncPolicy::Always));
        persistence.open(dir.path(), &engine, FsyncPolicy::Always, 1 << 20, OnReplayError::Refuse).unwrap();
        let slot = persistence.claim(Job::Rewrite).expect("an open log takes a job");
        drop(slot);
        persistence.close().unwrap();
        assert!(persistence.start_background(Job::Rewrite).is_err());
        assert!(!persistence.figures().compacting);
        assert_eq!(persistence.claim_waiting(Job::Save).err().as_deref(), Some("ERR The server is shutting down"));
    }
}
