//! Snapshots: engine values ↔ RDB values, loading an RDB file into an engine, writing an
//! engine as an RDB file, and fork-less compaction.
//!
//! # Compaction
//!
//! A snapshot is an RDB file `snap-<seq>.rdb` that holds the dataset as of log seq `seq`.
//! Building one never touches the live keyspace and never stops the server:
//!
//! 1. the log is rotated (`Log::rotate`), which returns `S`: every batch with seq `< S` is in
//!    sealed segments that are never written again;
//! 2. on a background thread, the previous snapshot plus the sealed batches up to `S - 1` are
//!    replayed into a scratch engine and written out with the RDB writer;
//! 3. the file is fsynced, renamed into place, the directory fsynced, and the log installs it
//!    (`Log::install_snapshot(file, S - 1)`), which drops the segments it covers.
//!
//! Memory: the keyspace is processed in `P` hash partitions. Pass `p` replays everything but
//! keeps only the keys whose hash falls in partition `p` (each logged effect names one key,
//! where the command table says; database-wide effects — FLUSHDB, FLUSHALL, SWAPDB — apply in every pass), then
//! appends that partition's keys to the RDB file and drops the scratch engine. `P` is chosen
//! from the size of the input (snapshot + sealed segments): one pass up to 16 MiB, then at
//! least 4 and one per 256 MiB (at most 64), so one pass holds at most a quarter of the data;
//! the peak is the live dataset plus `1/P` of it. An effect
//! that names keys in several partitions (none does today) makes the build start over with
//! one partition rather than produce a wrong file.

use std::fs::File;
use std::hash::Hasher;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use staykv_engine::keyspace::{Entry, NO_EXPIRY};
use staykv_engine::small_bytes::KeyBytes;
use staykv_engine::value::Value;
use staykv_engine::{decode_batch, decode_batch_view, EffectView, Engine, EngineOptions};
use staykv_rdb::{RdbItem, RdbReader, RdbValue, RdbWriter};
use staykv_resp::Reply;
use staykv_storage::{snapshot_file_name, BoxError, Progress, RealFs, Replay, SnapshotRef, StorageError};

/// Suffix of a snapshot being written (removed at start if left over).
pub const TMP_SUFFIX: &str = ".tmp";

/// Below this much input (snapshot + sealed segments) compaction runs in one pass.
const ONE_PASS_MAX_BYTES: u64 = 16 << 20;
/// Target input bytes per partition above that.
const BYTES_PER_PARTITION: u64 = 256 << 20;
const MAX_PARTITIONS: u64 = 64;

/// An engine value as an RDB value (every engine type has an RDB form).
pub fn value_to_rdb(value: &Value) -> RdbValue {
    staykv_engine::rdbconv::to_rdb(value)
}

/// An RDB value as an engine value; `Err(why)` for what this build cannot hold (an empty
/// collection, which Redis never stores).
pub fn value_from_rdb(value: RdbValue) -> Result<Value, &'static str> {
    staykv_engine::rdbconv::from_rdb(value).ok_or("empty collection")
}

/// Human name of an RDB object type byte, for reports of unsupported keys.
pub fn rdb_type_name(type_id: u8) -> &'static str {
    match type_id {
        15 | 19 | 21 => "stream",
        6 | 7 => "module",
        3 | 5 | 12 | 17 => "zset",
        _ => "unknown",
    }
}

/// Put one key into `engine` (replacing any key of that name), bypassing the command table:
/// used to load snapshots and imports. `expire_at` is Unix ms or [`NO_EXPIRY`].
pub fn load_entry(engine: &Engine, db: usize, key: Vec<u8>, value: Value, expire_at: u64) -> Result<(), String> {
    let keyspace = &engine.keyspace;
    if db >= keyspace.databases() {
        return Err(format!(
            "a key is in database {db} but the server has {} databases (start it with --databases {})",
            keyspace.databases(),
            db + 1
        ));
    }
    let hash = keyspace.hash(&key);
    let mut shard = keyspace.lock(keyspace.shard_of(hash)).ok_or("shard out of range")?;
    let slice = shard.dbs.get_mut(db).ok_or("database out of range")?;
    // Replacing: a key of that name goes first (a no-op lookup when there is none).
    slice.remove(hash, &key);
    // The stamp a key created now gets: seconds under LRU, the LFU pair under LFU policies.
    let accessed = engine.eviction.created(crate::clock::now_ms());
    let encoding = staykv_engine::value::Encoding::Auto;
    let key = KeyBytes::from_vec(key);
    slice.insert_new(hash, Entry { key, value, expire_at, accessed, encoding }, keyspace.hasher());
    Ok(())
}

/// Loads a function library read from an RDB file, replacing one of the same name.
pub fn load_function(engine: &Engine, code: &[u8]) -> Result<(), String> {
    match engine.scripting.function_load(&Bytes::copy_from_slice(code), true) {
        Ok(_) => Ok(()),
        Err(Reply::Error(message)) => Err(message),
        Err(other) => Err(format!("{other:?}")),
    }
}

/// Counts of a load or a write.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeyCounts {
    pub keys: u64,
    pub expires: u64,
}

/// Keys handed at a time from the thread that parses a snapshot to the one that inserts.
const LOAD_BATCH: usize = 1024;

/// One parsed key: database, key, value, deadline.
type LoadedKey = (usize, Vec<u8>, Value, u64);

/// Reads every key of an RDB file into `engine`, keeping those for which `keep(key)` is
/// true (the values of the others are stepped over, not decoded). Keys of types this build
/// cannot hold are refused (a StayKV snapshot never holds any). `progress(bytes_read,
/// total_bytes, keys)` is called about every 64 Ki keys.
///
/// Parsing (reading, decompressing, building values) and inserting (hashing, shard locks,
/// the slab) cost about the same, so they run on two threads with batches of keys handed over
/// a short queue: a restart that loaded on one core while the other idled.
pub fn load_rdb_file(
    engine: &Engine,
    path: &Path,
    keep: impl FnMut(&[u8]) -> bool,
    progress: impl FnMut(u64, u64, u64),
) -> Result<KeyCounts, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = RdbReader::new(BufReader::with_capacity(256 * 1024, file))
        .map_err(|e| format!("snapshot {}: {e}", path.display()))?;
    std::thread::scope(|scope| {
        let (batches, inbox) = std::sync::mpsc::sync_channel::<Vec<LoadedKey>>(4);
        let inserter = scope.spawn(move || -> Result<(), String> {
            for (db, key, value, expire_at) in inbox.into_iter().flatten() {
                load_entry(engine, db, key, value, expire_at)
                    .map_err(|e| format!("snapshot {}: {e}", path.display()))?;
            }
            Ok(())
        });
        let parsed = parse_rdb_file(engine, reader, path, total, keep, progress, &batches);
        drop(batches);
        let inserted =
            inserter.join().map_err(|_| format!("snapshot {}: the loading thread failed", path.display()))?;
        // An insertion error stops the parser too (its queue closes): report the cause.
        inserted.and(parsed)
    })
}

/// The parsing half of [`load_rdb_file`]: sends kept keys in batches to `out`.
fn parse_rdb_file<R: std::io::Read>(
    engine: &Engine,
    mut reader: RdbReader<R>,
    path: &Path,
    total: u64,
    mut keep: impl FnMut(&[u8]) -> bool,
    mut progress: impl FnMut(u64, u64, u64),
    out: &std::sync::mpsc::SyncSender<Vec<LoadedKey>>,
) -> Result<KeyCounts, String> {
    let closed = || format!("snapshot {}: loading stopped", path.display());
    let mut counts = KeyCounts::default();
    let mut seen = 0u64;
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    let read_error = |e| format!("snapshot {}: {e}", path.display());
    while let Some(item) = reader.next_item_where(|_, key| keep(key)).map_err(read_error)? {
        match item {
            RdbItem::Entry(entry) => {
                seen += 1;
                if seen.is_multiple_of(65536) {
                    progress(reader.bytes_read(), total, counts.keys);
                }
                let value = value_from_rdb(entry.value).map_err(|kind| {
                    format!(
                        "snapshot {}: key {:?} holds a {kind}, which this build cannot load",
                        path.display(),
                        String::from_utf8_lossy(&entry.key)
                    )
                })?;
                let expire_at = entry.expire_at_ms.unwrap_or(NO_EXPIRY);
                batch.push((entry.db as usize, entry.key, value, expire_at));
                if batch.len() == LOAD_BATCH {
                    out.send(std::mem::replace(&mut batch, Vec::with_capacity(LOAD_BATCH))).map_err(|_| closed())?;
                }
                counts.keys += 1;
                if expire_at != NO_EXPIRY {
                    counts.expires += 1;
                }
            }
            RdbItem::Unsupported { key, type_id, .. } => {
                return Err(format!(
                    "snapshot {}: key {:?} holds a {} (RDB type {type_id}), which this build cannot load",
                    path.display(),
                    String::from_utf8_lossy(&key),
                    rdb_type_name(type_id)
                ))
            }
            RdbItem::Aux { key, value } if key == b"function" => load_function(engine, &value)
                .map_err(|e| format!("snapshot {}: a function library cannot be loaded: {e}", path.display()))?,
            RdbItem::Aux { .. } => {}
        }
    }
    out.send(batch).map_err(|_| closed())?;
    progress(total, total, counts.keys);
    Ok(counts)
}

/// Writes `engine` to `writer`: its function libraries, then every key, database by
/// database. Meant for engines no client uses (scratch engines of compaction, export, import):
/// each shard is locked while written.
pub fn write_engine<W: Write>(
    engine: &Engine,
    writer: &mut RdbWriter<W>,
    on_key: impl FnMut(u64),
) -> io::Result<KeyCounts> {
    write_functions(engine, writer)?;
    write_keys(engine, writer, on_key)
}

/// Writes the engine's function libraries (`FUNCTION LOAD`ed code): once per file, before
/// the keys, where Redis writes them.
fn write_functions<W: Write>(engine: &Engine, writer: &mut RdbWriter<W>) -> io::Result<()> {
    engine.scripting.library_codes().iter().try_for_each(|code| writer.write_function(code))
}

/// Writes every key of `engine`, database by database, calling `on_key` with the count so far.
fn write_keys<W: Write>(
    engine: &Engine,
    writer: &mut RdbWriter<W>,
    mut on_key: impl FnMut(u64),
) -> io::Result<KeyCounts> {
    let keyspace = &engine.keyspace;
    let mut counts = KeyCounts::default();
    for (db, (keys, expires)) in engine.db_sizes().into_iter().enumerate() {
        if keys == 0 {
            continue;
        }
        writer.select_db(db as u32, keys as u64, expires as u64)?;
        for shard in 0..keyspace.shard_count() {
            let Some(guard) = keyspace.lock(shard) else { continue };
            let Some(slice) = guard.dbs.get(db) else { continue };
            for pos in 0..slice.slot_count() {
                let Some(entry) = slice.slot(pos) else { continue };
                writer.write_entry(&entry.key, &value_to_rdb(&entry.value), entry.ttl())?;
                counts.keys += 1;
                if entry.expire_at != NO_EXPIRY {
                    counts.expires += 1;
                }
                on_key(counts.keys);
            }
        }
    }
    Ok(counts)
}

/// fsync a directory (after a create or rename in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Redis's `REDIS_AUTOSYNC_BYTES`: how much of a snapshot is written before it is pushed to
/// the disk.
const INCREMENTAL_SYNC_BYTES: u64 = 4 << 20;

/// A file being written that is pushed to the disk every [`INCREMENTAL_SYNC_BYTES`], as
/// Redis's `rdb-save-incremental-fsync` does. Left to the final fsync, a 1 GB snapshot sat in
/// the page cache and then went out in one burst, and every log fdatasync under `always`
/// queued behind it: p99 786–969 ms over a 20 s session run at 10,000 req/s across a
/// compaction of 1,000,000 sessions, 193–356 ms with this (docs/snapshots.md, "Latency").
pub struct IncrementalSync {
    file: File,
    written: u64,
    pushed: u64,
    /// False once the filesystem said it cannot (the final fsync then does all the work).
    supported: bool,
}

impl IncrementalSync {
    fn new(file: File) -> IncrementalSync {
        IncrementalSync { file, written: 0, pushed: 0, supported: true }
    }

    /// Writes out what was written since the last push and waits for it (`sync_file_range`:
    /// the data only, without the device cache flush of an fsync; the final fsync makes the
    /// file durable).
    #[allow(unsafe_code)]
    fn push(&mut self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) =
            (libc::off64_t::try_from(self.pushed), libc::off64_t::try_from(self.written - self.pushed))
        else {
            return Ok(());
        };
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: the descriptor is this open file's; the call takes no pointers.
        if unsafe { libc::sync_file_range(self.file.as_raw_fd(), offset, len, flags) } != 0 {
            let error = io::Error::last_os_error();
            // A write error must fail the snapshot: reported here, the final fsync may not
            // report it again.
            if !matches!(error.raw_os_error(), Some(libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL)) {
                return Err(error);
            }
            self.supported = false;
        }
        self.pushed = self.written;
        Ok(())
    }

    fn into_file(self) -> File {
        self.file
    }
}

impl Write for IncrementalSync {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.supported && self.written - self.pushed >= INCREMENTAL_SYNC_BYTES {
            self.push()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes an RDB file at `path` atomically: `path.tmp`, fsync, rename, fsync of the directory.
/// `fill` writes the keys. Returns the file size and what `fill` returned.
pub fn write_rdb_atomically<T>(
    path: &Path,
    fill: impl FnOnce(&mut RdbWriter<IncrementalSync>) -> Result<T, String>,
) -> Result<(u64, T), String> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp_name);
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let io_err = |e: io::Error| format!("cannot write {}: {e}", tmp.display());
        let mut writer = RdbWriter::new(IncrementalSync::new(file)).map_err(io_err)?;
        let out = fill(&mut writer)?;
        let file = writer.finish().map_err(io_err)?.into_file();
        file.sync_all().map_err(|e| format!("cannot fsync {}: {e}", tmp.display()))?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        drop(file);
        std::fs::rename(&tmp, path)
            .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_dir(dir).map_err(|e| format!("cannot fsync directory {}: {e}", dir.display()))?;
        Ok((bytes, out))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What a compaction produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// Snapshot file name (in the data directory).
    pub file: String,
    /// Seq it covers.
    pub seq: u64,
    pub bytes: u64,
    pub keys: u64,
    pub partitions: usize,
    pub elapsed: Duration,
}

/// How many partitions for `input_bytes` of snapshot + sealed segments.
pub fn partitions_for(input_bytes: u64) -> usize {
    if input_bytes <= ONE_PASS_MAX_BYTES {
        return 1;
    }
    let n = input_bytes.div_ceil(BYTES_PER_PARTITION).clamp(4, MAX_PARTITIONS);
    n as usize
}

/// Which partition a key belongs to (stable within a process, which is all a build needs).
fn partition_of(key: &[u8], partitions: usize) -> usize {
    if partitions <= 1 {
        return 0;
    }
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(key);
    (hasher.finish() % partitions as u64) as usize
}

/// Builds the snapshot covering every batch with seq `<= covered` from the data directory's
/// current snapshot and sealed segments (the caller rotated the log past `covered`). Writes
/// `snap-<covered>.rdb` in `dir` (atomically) and returns it; the caller installs it.
pub fn build_snapshot(dir: &Path, databases: usize, covered: u64, partitions: usize) -> Result<Built, String> {
    let started = Instant::now();
    let file = snapshot_file_name(covered);
    let path = dir.join(&file);
    let mut parts = partitions.max(1);
    loop {
        let attempt = write_rdb_atomically(&path, |writer| {
            let mut keys = 0u64;
            for p in 0..parts {
                let engine = Engine::new(EngineOptions { databases, shard_bits: 0 });
                let mut replay = PartitionReplay::new(dir, &engine, p, parts, covered);
                replay_log(dir, &mut replay)?;
                if replay.mixed_keys {
                    return Ok(None);
                }
                // Every pass replays the libraries (they are no key's); the first writes them.
                let written =
                    if p == 0 { write_engine(&engine, writer, |_| {}) } else { write_keys(&engine, writer, |_| {}) };
                let counts = written.map_err(|e| format!("cannot write the snapshot {}: {e}", path.display()))?;
                keys += counts.keys;
                if parts > 1 {
                    tracing::debug!("snapshot {file}: partition {}/{parts} done ({} keys)", p + 1, counts.keys);
                }
            }
            Ok(Some(keys))
        });
        match attempt? {
            (bytes, Some(keys)) => {
                return Ok(Built { file, seq: covered, bytes, keys, partitions: parts, elapsed: started.elapsed() })
            }
            (_, None) => {
                tracing::warn!("snapshot {file}: an effect names keys of several partitions; building in one pass");
                let _ = std::fs::remove_file(&path);
                parts = 1;
            }
        }
    }
}

/// Runs `replay` over the data directory read-only, stopping at its stop seq.
fn replay_log(dir: &Path, replay: &mut PartitionReplay<'_>) -> Result<(), String> {
    let result = staykv_storage::scan_live(dir, &RealFs::new(), replay);
    if let Some(error) = replay.error.take() {
        return Err(error);
    }
    match result {
        Ok(_) => {}
        Err(StorageError::Replay { .. }) if replay.stopped => {}
        Err(e) => return Err(format!("cannot read the log to build a snapshot: {e}")),
    }
    if replay.last_seq < replay.stop_at.saturating_sub(1) {
        return Err(format!(
            "the log ends at seq {} but the snapshot must cover seq {}",
            replay.last_seq,
            replay.stop_at.saturating_sub(1)
        ));
    }
    Ok(())
}

/// Replays the snapshot and the batches below `stop_at`, keeping one partition's keys.
struct PartitionReplay<'a> {
    dir: &'a Path,
    engine: &'a Engine,
    partition: usize,
    partitions: usize,
    /// First seq not to replay.
    stop_at: u64,
    /// Highest seq seen (or covered by the old snapshot).
    last_seq: u64,
    stopped: bool,
    mixed_keys: bool,
    error: Option<String>,
}

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reached the end of the sealed segments")
    }
}

impl std::error::Error for Stop {}

impl<'a> PartitionReplay<'a> {
    fn new(dir: &'a Path, engine: &'a Engine, partition: usize, partitions: usize, covered: u64) -> Self {
        PartitionReplay {
            dir,
            engine,
            partition,
            partitions,
            stop_at: covered + 1,
            last_seq: 0,
            stopped: false,
            mixed_keys: false,
            error: None,
        }
    }

    fn fail(&mut self, error: String) -> BoxError {
        self.error = Some(error.clone());
        error.into()
    }

    /// Whether `effect` belongs in this pass: its keys' partition, or every pass for
    /// database-wide effects. `None` when it names keys of several partitions.
    fn keep(&self, effect: &EffectView<'_>) -> Option<bool> {
        if self.partitions <= 1 {
            return Some(true);
        }
        let name = effect.argv.first()?;
        let Some((_, spec)) = self.engine.table.lookup(name) else {
            // Unknown to the table: replaying it fails the same way in every pass.
            return Some(true);
        };
        let found = match spec.fixed_key_positions(effect.argv.len()) {
            Some(positions) => self.partition_of_keys(positions, &effect.argv)?,
            None => self.partition_of_keys(spec.key_positions(&effect.to_effect().argv).into_iter(), &effect.argv)?,
        };
        Some(found.is_none_or(|p| p == self.partition))
    }

    /// The one partition of the keys at `positions` (`Some(None)`: no key); `None` when they
    /// fall in several.
    fn partition_of_keys(&self, positions: impl Iterator<Item = usize>, argv: &[&[u8]]) -> Option<Option<usize>> {
        let mut found = None;
        for key in positions.filter_map(|pos| argv.get(pos)) {
            let p = partition_of(key, self.partitions);
            match found {
                None => found = Some(p),
                Some(q) if q != p => return None,
                Some(_) => {}
            }
        }
        Some(found)
    }
}

impl Replay for PartitionReplay<'_> {
    fn snapshot(&mut self, snapshot: &SnapshotRef) -> Result<(), BoxError> {
        let path = self.dir.join(&snapshot.file);
        let (partition, partitions) = (self.partition, self.partitions);
        self.last_seq = snapshot.seq;
        match load_rdb_file(self.engine, &path, |key| partition_of(key, partitions) == partition, |_, _, _| {}) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), BoxError> {
        if seq >= self.stop_at {
            self.stopped = true;
            return Err(Box::new(Stop));
        }
        self.last_seq = seq;
        // Only this partition's effects are copied out of the frame and replayed.
        let (time, effects) = match decode_batch_view(payload) {
            Ok(batch) => batch,
            Err(e) => return Err(self.fail(format!("log frame {seq}: {e}"))),
        };
        let mut kept = Vec::new();
        for effect in &effects {
            match self.keep(effect) {
                Some(true) => kept.push(effect.to_effect()),
                Some(false) => {}
                None => {
                    self.mixed_keys = true;
                    self.stopped = true;
                    return Err(Box::new(Stop));
                }
            }
        }
        if kept.is_empty() {
            return Ok(());
        }
        match self.engine.replay(time, &kept) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(format!("log frame {seq}: {e}"))),
        }
    }
}

/// Feeds a data directory (snapshot, then log batches) into an engine: server start and
/// `staykv export`. Logs progress lines about every second.
#[derive(Debug)]
pub struct EngineReplay<'a> {
    pub dir: &'a Path,
    pub engine: &'a Engine,
    started: Instant,
    last_report: Instant,
    pub frames: u64,
    pub snapshot_keys: u64,
}

impl<'a> EngineReplay<'a> {
    pub fn new(dir: &'a Path, engine: &'a Engine) -> Self {
        EngineReplay { dir, engine, started: Instant::now(), last_report: Instant::now(), frames: 0, snapshot_keys: 0 }
    }
}

impl Replay for EngineReplay<'_> {
    fn snapshot(&mut self, snapshot: &SnapshotRef) -> Result<(), BoxError> {
        let path = self.dir.join(&snapshot.file);
        let started = Instant::now();
        let mut last = Instant::now();
        let counts = load_rdb_file(
            self.engine,
            &path,
            |_| true,
            |done, total, keys| {
                if last.elapsed() >= Duration::from_secs(1) {
                    last = Instant::now();
                    let pct = if total == 0 { 100.0 } else { done as f64 * 100.0 / total as f64 };
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    tracing::info!(
                        "loading snapshot {}: {pct:.1}% ({keys} keys, {:.0} keys/s)",
                        snapshot.file,
                        keys as f64 / secs
                    );
                }
            },
        )?;
        self.snapshot_keys = counts.keys;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            "loaded snapshot {} (covers log seq {}): {} keys in {secs:.2} s ({:.0} keys/s)",
            snapshot.file,
            snapshot.seq,
            counts.keys,
            counts.keys as f64 / secs.max(0.001)
        );
        Ok(())
    }

    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), BoxError> {
        let (time, effects) = decode_batch(payload).map_err(|e| format!("log frame {seq}: {e}"))?;
        self.engine.replay(time, &effects).map_err(|e| format!("log frame {seq}: {e}"))?;
        self.frames += 1;
        Ok(())
    }

    fn progress(&mut self, progress: &Progress) {
        if self.last_report.elapsed() >= Duration::from_secs(1) {
            self.last_report = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            tracing::info!(
                "loading the log: {:.1}% ({} batches, {:.0} batches/s)",
                progress.percent(),
                self.frames,
                self.frames as f64 / secs
            );
        }
    }
}

/// Removes snapshot files left half-written by an interrupted compaction (`*.rdb.tmp`).
pub fn remove_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut removed = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap-") && name.ends_with(&format!(".rdb{TMP_SUFFIX}")) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    removed = true;
                    tracing::info!("removed {name}, left by an interrupted snapshot");
                }
                Err(e) => tracing::warn!("cannot remove {name}: {e}"),
            }
        }
    }
    if removed {
        let _ = sync_dir(dir);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use staykv_engine::small_bytes::SmallBytes;
    use staykv_engine::value::{HashMap, HashSet};
    use std::collections::VecDeque;

    #[test]
    fn a_file_written_through_incremental_sync_is_pushed_as_it_grows_and_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pushed");
        let mut file = IncrementalSync::new(File::create(&path).unwrap());
        let expected: Vec<u8> = (0..10 * 1024 * 1024 + 123).map(|i: u32| (i % 251) as u8).collect();
        for chunk in expected.chunks(65_537) {
            file.write_all(chunk).unwrap();
        }
        assert!(file.supported, "sync_file_range works on the test directory's filesystem");
        // Two pushes so far, each at the write that took the unpushed bytes to 4 MiB or more:
        // after 64 writes of 65,537 bytes.
        assert_eq!(file.pushed, 2 * 64 * 65_537);
        assert!(file.pushed >= 2 * INCREMENTAL_SYNC_BYTES);
        file.into_file().sync_all().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn values_round_trip() {
        let mut hash = HashMap::default();
        hash.insert(Bytes::from("f"), Bytes::from("v"));
        let mut set = HashSet::default();
        set.insert(Bytes::from("m"));
        for value in [
            Value::Str(SmallBytes::from_slice(b"hello")),
            Value::List(Box::new(VecDeque::from(vec![Bytes::from("a"), Bytes::from("b")]))),
            Value::Hash(Box::new(hash)),
            Value::Set(Box::new(set)),
        ] {
            assert_eq!(value_from_rdb(value_to_rdb(&value)).unwrap(), value);
        }
    }

    /// The live engine's content, sorted: (db, key, value, deadline).
    fn contents(engine: &Engine) -> Vec<(usize, Bytes, Value, u64)> {
        let mut out = Vec::new();
        engine.for_each_entry(|db, e| out.push((db, e.key.to_bytes(), e.value.clone(), e.expire_at)));
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        out
    }

    struct LogJournal<'a>(&'a staykv_storage::Log);

    impl staykv_engine::Journal for LogJournal<'_> {
        fn append(&self, time_ms: u64, effects: &[staykv_engine::Effect]) -> u64 {
            let mut buf = Vec::new();
            staykv_engine::encode_batch(time_ms, effects, &mut buf);
            self.0.append(&buf).unwrap()
        }
    }

    fn run(engine: &Engine, log: &staykv_storage::Log, client: &mut staykv_engine::Client, now: u64, args: &[&str]) {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let out = engine.execute(client, &args, now, &staykv_engine::host::NoHost, &LogJournal(log));
        assert!(!out.reply.is_error(), "{args:?}: {:?}", out.reply);
    }

    /// Builds snapshots from the log in several partitions and in one, and checks both give
    /// exactly the live engine's content — with renames, moves, copies, SWAPDB and FLUSHDB
    /// (database-wide effects replayed in every partition) and a multi-key effect (which
    /// makes the build fall back to one pass).
    #[test]
    fn partitioned_compaction_reproduces_the_keyspace() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let fs = std::sync::Arc::new(RealFs::new());
        let (log, _) =
            staykv_storage::Log::open(dir, fs, staykv_storage::LogOptions::default(), &mut staykv_storage::NoReplay)
                .unwrap();
        let engine = Engine::new(EngineOptions { databases: 16, shard_bits: 2 });
        let mut client = staykv_engine::Client::new(1, true);
        let mut now = 1_700_000_000_000u64;
        let script: &[&[&str]] = &[
            &["SET", "a", "1"],
            &["SET", "b", "2", "PX", "100000000"],
            &["RPUSH", "l", "x", "y", "z"],
            &["HSET", "h", "f", "v", "g", "w"],
            &["SADD", "s", "1", "2", "3"],
            &["ZADD", "z", "1", "a", "2", "b"],
            &["INCR", "a"],
            &["RENAME", "b", "b2"],
            &["SELECT", "1"],
            &["SET", "k1", "v"],
            &["SELECT", "0"],
            &["MOVE", "l", "1"],
            &["COPY", "h", "h2"],
            &["SWAPDB", "0", "2"],
            &["SELECT", "1"],
            &["FLUSHDB"],
            &["SET", "k2", "after flush"],
            &["SELECT", "2"],
            &["SET", "short", "gone", "PX", "5"],
        ];
        for args in script {
            now += 1;
            run(&engine, &log, &mut client, now, args);
        }
        for i in 0..400 {
            now += 1;
            run(&engine, &log, &mut client, now, &["SET", &format!("key:{i}"), &i.to_string()]);
            if i % 3 == 0 {
                run(&engine, &log, &mut client, now, &["DEL", &format!("key:{}", i / 2)]);
            }
        }
        engine.active_expire(now + 100, usize::MAX, &LogJournal(&log));
        let expected = contents(&engine);
        let next = log.rotate().unwrap();
        let four = build_snapshot(dir, 16, next - 1, 4).unwrap();
        assert_eq!(four.partitions, 4);
        let loaded = Engine::new(EngineOptions { databases: 16, shard_bits: 2 });
        load_rdb_file(&loaded, &dir.join(&four.file), |_| true, |_, _, _| {}).unwrap();
        assert_eq!(contents(&loaded), expected);
        let one = build_snapshot(dir, 16, next - 1, 1).unwrap();
        assert_eq!(one.keys, four.keys);
        log.install_snapshot(&one.file, next - 1).unwrap();

        // Round two: old snapshot + new segments, and an effect naming two keys.
        for args in
            [&["SELECT", "2"][..], &["ZUNIONSTORE", "zu", "2", "z", "zz"], &["DEL", "a"], &["HSET", "h2", "n", "1"]]
        {
            now += 1;
            run(&engine, &log, &mut client, now, args);
        }
        let expected = contents(&engine);
        let next = log.rotate().unwrap();
        let built = build_snapshot(dir, 16, next - 1, 3).unwrap();
        let loaded = Engine::new(EngineOptions { databases: 16, shard_bits: 2 });
        load_rdb_file(&loaded, &dir.join(&built.file), |_| true, |_, _, _| {}).unwrap();
        assert_eq!(contents(&loaded), expected);
        log.close().unwrap();
    }

    #[test]
    fn partitions_grow_with_input() {
        assert_eq!(partitions_for(0), 1);
        assert_eq!(partitions_for(16 << 20), 1);
        assert_eq!(partitions_for(17 << 20), 4);
        assert_eq!(partitions_for(1 << 30), 4);
        assert_eq!(partitions_for(4 << 30), 16);
        assert_eq!(partitions_for(u64::MAX), 64);
        let counts: Vec<usize> =
            (0..4).map(|p| (0..1000).filter(|i| partition_of(format!("k{i}").as_bytes(), 4) == p).count()).collect();
        assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
    }

    /// A loaded key gets the access stamp of a key created now under the eviction policy in
    /// force: under LFU, Redis's initial counter (OBJECT FREQ 5), not a seconds clock.
    #[test]
    fn loaded_keys_get_the_policys_initial_stamp() {
        let engine = Engine::new(EngineOptions { databases: 16, shard_bits: 2 });
        let lfu = staykv_engine::evict::Policy::parse("allkeys-lfu").unwrap();
        engine.eviction.set_policy(lfu);
        load_entry(&engine, 0, b"k".to_vec(), Value::Str(SmallBytes::from_slice(b"v")), NO_EXPIRY).unwrap();
        let mut client = staykv_engine::Client::new(1, true);
        let args: Vec<Bytes> = ["OBJECT", "FREQ", "k"].iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let out = engine.execute(
            &mut client,
            &args,
            crate::clock::now_ms(),
            &staykv_engine::host::NoHost,
            &staykv_engine::exec::NoJournal,
        );
        assert_eq!(out.reply, staykv_engine::Reply::Int(5));
    }
}
