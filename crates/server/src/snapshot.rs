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
//!
//! Copying: keys of the old snapshot whose names no sealed batch touches are copied into the
//! new file as they lie, in the first pass, without entering the scratch engine; later passes
//! read only the old keys the first one located for them. See [`build_snapshot`].
//!
//! Skipping: the writes of a key before a later write that replaces it whole, and its old
//! value, are never built (see [`supersede`]); and a pass steps over the batches the survey
//! placed in other partitions by their length ([`FramePlaces`]).

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use staykv_engine::command::CommandTable;
use staykv_engine::keyspace::{Entry, NO_EXPIRY};
use staykv_engine::small_bytes::KeyBytes;
use staykv_engine::value::{HashSet, Value};
use staykv_engine::{decode_batch, decode_batch_view, EffectView, Engine, EngineOptions, ReplayFailure, Reply};
use staykv_rdb::{Location, Pick, Picked, RawEntry, RdbEntry, RdbItem, RdbReader, RdbValue, RdbWriter};
use staykv_storage::{snapshot_file_name, BoxError, Progress, RealFs, Replay, SnapshotRef, StorageError};

use crate::config::OnReplayError;
use supersede::{Noted, Position, Supersession};

mod supersede;

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
/// used to load snapshots and imports. `expire_at` is Unix ms or [`NO_EXPIRY`]; `now_ms`
/// stamps the key's creation (callers read the clock once per batch, not once per key).
/// Returns the key of that name it replaced, if any.
pub fn load_entry(
    engine: &Engine,
    db: usize,
    key: Vec<u8>,
    value: Value,
    expire_at: u64,
    now_ms: u64,
) -> Result<Option<Entry>, String> {
    let keyspace = &engine.keyspace;
    if let Some(refusal) = keyspace.missing_database(db) {
        return Err(refusal);
    }
    let hash = keyspace.hash(&key);
    let mut shard = keyspace.lock(keyspace.shard_of(hash)).ok_or("shard out of range")?;
    let slice = shard.dbs.get_mut(db).ok_or("database out of range")?;
    // Replacing: a key of that name goes first (a no-op lookup when there is none).
    let replaced = slice.remove(hash, &key);
    // The stamp a key created now gets: seconds under LRU, the LFU pair under LFU policies.
    let accessed = engine.eviction.created(now_ms);
    let encoding = staykv_engine::value::Encoding::Auto;
    let key = KeyBytes::from_vec(key);
    slice.insert_new(hash, Entry { key, value, expire_at, accessed, encoding }, keyspace.hasher());
    Ok(replaced)
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
    mut keep: impl FnMut(&[u8]) -> bool,
    progress: impl FnMut(u64, u64, u64),
) -> Result<KeyCounts, String> {
    let pick = |_: u32, key: &[u8]| if keep(key) { Pick::Decode } else { Pick::Skip };
    load_rdb_file_picking(engine, path, Picker { pick, copy: |_| Ok(()), locate: |_: Location, _: &[u8]| {} }, progress)
}

/// [`load_rdb_file`] with every choice of [`Pick`]: the keys picked raw go to `copy` as they
/// lie in the file (a compaction copying keys nothing changed), those picked to be located
/// to `locate`, on the parsing thread.
fn load_rdb_file_picking(
    engine: &Engine,
    path: &Path,
    picker: Picker<
        impl FnMut(u32, &[u8]) -> Pick,
        impl FnMut(RawEntry) -> Result<(), String>,
        impl FnMut(Location, &[u8]),
    >,
    progress: impl FnMut(u64, u64, u64),
) -> Result<KeyCounts, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = RdbReader::new(BufReader::with_capacity(256 * 1024, file))
        .map_err(|e| format!("snapshot {}: {e}", path.display()))?;
    std::thread::scope(|scope| {
        let (batches, inbox) = std::sync::mpsc::sync_channel::<Vec<LoadedKey>>(4);
        let inserter = scope.spawn(move || -> Result<(), String> {
            for batch in inbox {
                let now = crate::clock::now_ms();
                for (db, key, value, expire_at) in batch {
                    load_entry(engine, db, key, value, expire_at, now)
                        .map_err(|e| format!("snapshot {}: {e}", path.display()))?;
                }
            }
            Ok(())
        });
        let parsed = parse_rdb_file(engine, reader, (path, total), picker, progress, &batches);
        drop(batches);
        let inserted =
            inserter.join().map_err(|_| format!("snapshot {}: the loading thread failed", path.display()))?;
        // An insertion error stops the parser too (its queue closes): report the cause.
        inserted.and(parsed)
    })
}

/// What loading does with each key: `pick` chooses, `copy` takes the keys picked raw and
/// `locate` where the keys picked to be located lie.
struct Picker<P, C, L> {
    pick: P,
    copy: C,
    locate: L,
}

/// A key read from the snapshot at `path`, as the engine holds it.
fn loaded_key(entry: RdbEntry, path: &Path) -> Result<LoadedKey, String> {
    let value = value_from_rdb(entry.value).map_err(|kind| {
        format!(
            "snapshot {}: key {:?} holds a {kind}, which this build cannot load",
            path.display(),
            String::from_utf8_lossy(&entry.key)
        )
    })?;
    Ok((entry.db as usize, entry.key, value, entry.expire_at_ms.unwrap_or(NO_EXPIRY)))
}

/// The parsing half of [`load_rdb_file`]: sends kept keys in batches to `out`.
fn parse_rdb_file<R: std::io::BufRead>(
    engine: &Engine,
    mut reader: RdbReader<R>,
    (path, total): (&Path, u64),
    mut picker: Picker<
        impl FnMut(u32, &[u8]) -> Pick,
        impl FnMut(RawEntry) -> Result<(), String>,
        impl FnMut(Location, &[u8]),
    >,
    mut progress: impl FnMut(u64, u64, u64),
    out: &std::sync::mpsc::SyncSender<Vec<LoadedKey>>,
) -> Result<KeyCounts, String> {
    let closed = || format!("snapshot {}: loading stopped", path.display());
    let mut counts = KeyCounts::default();
    let mut seen = 0u64;
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    let read_error = |e| format!("snapshot {}: {e}", path.display());
    // A library that does not load is reported once the checksum has been verified: damage
    // inside the library's code must read as the damage it is, not as a Lua error.
    let mut library_error = None;
    while let Some(picked) = reader.next_item_pick(&mut picker.pick).map_err(read_error)? {
        let item = match picked {
            Picked::Item(item) => item,
            Picked::Raw(entry) => {
                (picker.copy)(entry)?;
                continue;
            }
            Picked::Located { location, key } => {
                (picker.locate)(location, &key);
                continue;
            }
        };
        match item {
            RdbItem::Entry(entry) => {
                seen += 1;
                if seen.is_multiple_of(65536) {
                    progress(reader.bytes_read(), total, counts.keys);
                }
                let (db, key, value, expire_at) = loaded_key(entry, path)?;
                batch.push((db, key, value, expire_at));
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
            RdbItem::Aux { key, value } if key == b"function" => {
                if let Err(e) = load_function(engine, &value) {
                    library_error.get_or_insert(e);
                }
            }
            RdbItem::Aux { .. } => {}
        }
    }
    if let Some(e) = library_error {
        return Err(format!("snapshot {}: a function library cannot be loaded: {e}", path.display()));
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
        let dir = crate::tools::parent_dir(path);
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
    /// Of `keys`, those copied as they lay in the old snapshot.
    pub copied: u64,
    /// Logged writes and old values stepped over because a later write replaced their key.
    pub superseded: u64,
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
    partition_of_hash(name_hash(key), partitions)
}

fn partition_of_hash(hash: u64, partitions: usize) -> usize {
    (hash % partitions.max(1) as u64) as usize
}

/// A key name's hash: its partition, and what a build notes of the names the log touches
/// (two names with one hash are both treated as touched, which only costs a decode). Fixed
/// seed, so that every pass agrees; foldhash, as the keyspace's, for it runs on every key of
/// the old snapshot and every name in the log.
fn name_hash(key: &[u8]) -> u64 {
    let mut hasher = foldhash::fast::FixedState::with_seed(0x5eed).build_hasher();
    hasher.write(key);
    hasher.finish()
}

/// Builds the snapshot covering every batch with seq `<= covered` from the data directory's
/// current snapshot and sealed segments (the caller rotated the log past `covered`). Writes
/// `snap-<covered>.rdb` in `dir` (atomically) and returns it; the caller installs it.
///
/// A first read of the batches notes the key names they touch. The first pass then reads the
/// old snapshot once: keys no batch touches are copied into the new file as they lie (never
/// decoded, decompressed or compressed again), its own partition's touched keys are built,
/// and where the other touched keys lie is noted, so that later passes read just those.
/// Most of a session store's keys are untouched between two compactions.
pub fn build_snapshot(
    dir: &Path,
    databases: usize,
    covered: u64,
    partitions: usize,
    on_error: OnReplayError,
) -> Result<Built, String> {
    let started = Instant::now();
    let file = snapshot_file_name(covered);
    let path = dir.join(&file);
    let mut plan = BuildPlan { partitions: partitions.max(1), on_error, copy_untouched: true };
    loop {
        let attempt = write_rdb_atomically(&path, |writer| {
            build_passes(dir, databases, covered, plan, writer)
                .map_err(|e| format!("cannot write the snapshot {}: {e}", path.display()))
        });
        match attempt? {
            (bytes, Ok(counts)) => {
                let (seq, partitions, elapsed) = (covered, plan.partitions, started.elapsed());
                let BuildCounts { keys, copied, superseded } = counts;
                return Ok(Built { file, seq, bytes, keys, copied, superseded, partitions, elapsed });
            }
            (_, Err(retry)) => {
                tracing::warn!("snapshot {file}: {retry}");
                let _ = std::fs::remove_file(&path);
                plan = retry.next(plan);
            }
        }
    }
}

/// How a build goes about it.
#[derive(Debug, Clone, Copy)]
struct BuildPlan {
    partitions: usize,
    on_error: OnReplayError,
    /// Whether keys no batch touches are copied as they lie (else every key is decoded).
    copy_untouched: bool,
}

/// Why a build starts over.
#[derive(Debug)]
enum Retry {
    /// An effect names keys of several partitions.
    MixedKeys,
    /// The batches changed a key that their commands' key positions do not name, so its old
    /// value may have been copied too.
    UnnamedKey(Vec<u8>),
}

impl Retry {
    fn next(&self, plan: BuildPlan) -> BuildPlan {
        match self {
            Retry::MixedKeys => BuildPlan { partitions: 1, ..plan },
            Retry::UnnamedKey(_) => BuildPlan { copy_untouched: false, ..plan },
        }
    }
}

impl std::fmt::Display for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retry::MixedKeys => f.write_str("an effect names keys of several partitions; building in one pass"),
            Retry::UnnamedKey(key) => write!(
                f,
                "the log changed key {:?} where its command's key positions do not name it; building again with every key decoded",
                String::from_utf8_lossy(key)
            ),
        }
    }
}

/// The most touched names a build notes (8 bytes each, plus the set's overhead); a log that
/// names more turns copying off.
const MAX_TOUCHED_NAMES: usize = 8 << 20;

/// What a build wrote.
#[derive(Debug, Default)]
struct BuildCounts {
    keys: u64,
    copied: u64,
    superseded: u64,
}

/// The passes of a build, written to `writer`: what it wrote, or why it starts over.
fn build_passes<W: Write>(
    dir: &Path,
    databases: usize,
    covered: u64,
    plan: BuildPlan,
    writer: &mut RdbWriter<W>,
) -> Result<Result<BuildCounts, Retry>, String> {
    let mut survey = Survey {
        touched: plan.copy_untouched.then(HashSet::default),
        supersession: plan.copy_untouched.then(Supersession::new),
        frames: FramePlaces::new(plan.partitions),
        old_snapshot: false,
    };
    if survey.touched.is_some() {
        let table = staykv_engine::cmd::table();
        let filter = PassFilter { table: &table, partition: 0, partitions: 1 };
        run_pass::<W>(dir, filter, covered, PassWork::Survey(&mut survey))?;
    }
    let Survey { touched, supersession, frames, .. } = survey;
    // Skipping rests on the survey having seen every batch and every name.
    let supersession = supersession.filter(|_| touched.is_some());
    let frames = frames.filter(|_| touched.is_some());
    let mut located = vec![Vec::new(); plan.partitions];
    let mut counts = BuildCounts::default();
    for p in 0..plan.partitions {
        let engine = Engine::new(EngineOptions { databases, shard_bits: 0 });
        let filter = PassFilter { table: &engine.table, partition: p, partitions: plan.partitions };
        let old_keys = if p > 0 && touched.is_some() {
            OldKeys::Located(located.get_mut(p).map(std::mem::take).unwrap_or_default())
        } else {
            OldKeys::Scan { touched: touched.as_ref(), located: &mut located, copied: &mut counts.copied }
        };
        let skip =
            Skip { supersession: supersession.as_ref(), frames: frames.as_ref(), skipped: &mut counts.superseded };
        let work = PassWork::Build { engine: &engine, old_keys, skip, writer: &mut *writer, on_error: plan.on_error };
        if !run_pass(dir, filter, covered, work)? {
            return Ok(Err(Retry::MixedKeys));
        }
        if let Some(key) = touched.as_ref().and_then(|touched| key_not_named(&engine, touched)) {
            return Ok(Err(Retry::UnnamedKey(key)));
        }
        // Every pass replays the libraries (they are no key's); the first writes them.
        let written = if p == 0 { write_engine(&engine, writer, |_| {}) } else { write_keys(&engine, writer, |_| {}) };
        let written = written.map_err(|e| e.to_string())?;
        counts.keys += written.keys;
        tracing::debug!("partition {}/{}: {} keys built", p + 1, plan.partitions, written.keys);
    }
    counts.keys += counts.copied;
    Ok(Ok(counts))
}

/// A key of `engine` whose name is not in `touched`, if any.
fn key_not_named(engine: &Engine, touched: &HashSet<u64>) -> Option<Vec<u8>> {
    let mut unnamed = None;
    engine.for_each_entry(|_, entry| {
        if unnamed.is_none() && !touched.contains(&name_hash(&entry.key)) {
            unnamed = Some(entry.key.to_vec());
        }
    });
    unnamed
}

/// Reads the data directory (read-only) up to `covered` for one pass's `work`. False when an
/// effect names keys of several partitions.
fn run_pass<W: Write>(dir: &Path, filter: PassFilter<'_>, covered: u64, work: PassWork<'_, W>) -> Result<bool, String> {
    let mut replay = PartitionReplay::new(dir, filter, covered, work);
    let result = staykv_storage::scan_live(dir, &RealFs::new(), &mut replay);
    if let Some(error) = replay.error.take() {
        return Err(error);
    }
    match result {
        Ok(_) => {}
        Err(StorageError::Replay { .. }) if replay.stopped => {}
        Err(e) => return Err(format!("cannot read the log to build a snapshot: {e}")),
    }
    if replay.mixed_keys {
        return Ok(false);
    }
    // A survey may stop early; the passes check that the log reaches `covered`.
    if replay.last_seq < covered && matches!(replay.work, PassWork::Build { .. }) {
        return Err(format!("the log ends at seq {} but the snapshot must cover seq {covered}", replay.last_seq));
    }
    Ok(true)
}

/// Which keys and effects belong to one pass.
#[derive(Clone, Copy)]
struct PassFilter<'a> {
    table: &'a CommandTable,
    partition: usize,
    partitions: usize,
}

impl PassFilter<'_> {
    /// Calls `each` with every key `effect` names; false when the table does not know its
    /// command (replaying it fails the same way in every pass).
    fn each_key<'e>(&self, effect: &EffectView<'e>, mut each: impl FnMut(&'e [u8])) -> bool {
        let Some((_, spec)) = effect.argv.first().and_then(|name| self.table.lookup(name)) else { return false };
        let mut at = |pos: usize| effect.argv.get(pos).into_iter().for_each(|key| each(key));
        match spec.fixed_key_positions(effect.argv.len()) {
            Some(positions) => positions.for_each(&mut at),
            None => spec.key_positions(&effect.to_effect().argv).into_iter().for_each(&mut at),
        }
        true
    }

    /// The keys `effect` names.
    fn named<'e>(&self, effect: &EffectView<'e>) -> Named<'e> {
        let mut keys = Vec::new();
        let known = self.each_key(effect, |key| keys.push(key));
        Named { known, keys }
    }

    /// Whether an effect naming `named` belongs in this pass: its keys' partition, or every
    /// pass for database-wide effects. `None` when it names keys of several partitions.
    fn keeps(&self, named: &Named<'_>) -> Option<bool> {
        if self.partitions <= 1 {
            return Some(true);
        }
        let (mut found, mut mixed) = (None, false);
        for key in &named.keys {
            let p = partition_of(key, self.partitions);
            mixed |= found.is_some_and(|q| q != p);
            found = Some(p);
        }
        (!mixed).then_some(found.is_none_or(|p| p == self.partition))
    }
}

/// The keys an effect names; `known` is false when the table does not know its command.
struct Named<'e> {
    known: bool,
    keys: Vec<&'e [u8]>,
}

/// What a read of the data directory does in a pass.
enum PassWork<'a, W: Write> {
    /// Before the passes, the batches only.
    Survey(&'a mut Survey),
    /// A pass: the old snapshot's keys it builds into `engine`, then its batches.
    Build {
        engine: &'a Engine,
        old_keys: OldKeys<'a>,
        skip: Skip<'a>,
        writer: &'a mut RdbWriter<W>,
        on_error: OnReplayError,
    },
}

/// What the read of the batches before the passes learns.
struct Survey {
    /// The hashes of the key names they touch, in any database; `None` once one names no key
    /// and is not a FUNCTION (FLUSHDB, FLUSHALL, SWAPDB: no old key is safe to copy), or
    /// past [`MAX_TOUCHED_NAMES`], or when there is neither an old snapshot to copy from nor
    /// more than one pass to place batches for (the survey then stops at once).
    touched: Option<HashSet<u64>>,
    /// The writes a later one replaces; `None` once one reaches another database.
    supersession: Option<Supersession>,
    /// Which passes need each batch; `None` with one pass, or past [`MAX_PLACED_FRAMES`].
    frames: Option<FramePlaces>,
    old_snapshot: bool,
}

/// What a pass steps over, and how many writes it did.
struct Skip<'a> {
    supersession: Option<&'a Supersession>,
    frames: Option<&'a FramePlaces>,
    skipped: &'a mut u64,
}

/// The most batches whose passes a survey notes (a byte each).
const MAX_PLACED_FRAMES: usize = 64 << 20;

/// Which pass needs each batch the survey read, so that the others step over it by its
/// length (no checksum, no decoding, no key hashing): a batch is read in full once by the
/// survey and once by its pass, where every pass read every batch.
#[derive(Debug)]
struct FramePlaces {
    partitions: usize,
    first_seq: u64,
    /// By seq from `first_seq`: a partition, or [`EVERY_PASS`] or [`NO_PASS`].
    places: Vec<u8>,
}

/// A batch every pass replays: database-wide effects, effects of several partitions.
const EVERY_PASS: u8 = u8::MAX;
/// A batch with no effect.
const NO_PASS: u8 = u8::MAX - 1;

/// The place of a batch (or an effect) that already needed `so_far` and also needs `place`.
fn joined(so_far: u8, place: u8) -> u8 {
    if so_far == NO_PASS || so_far == place {
        place
    } else {
        EVERY_PASS
    }
}

impl FramePlaces {
    fn new(partitions: usize) -> Option<Self> {
        // Partitions are numbered below `NO_PASS`; with one, every pass is the pass.
        (partitions > 1 && partitions < usize::from(NO_PASS)).then(|| FramePlaces {
            partitions,
            first_seq: 0,
            places: Vec::new(),
        })
    }

    /// Notes `place` for the next batch, `seq`. False past the limit (the survey then forgets
    /// the places).
    fn push(&mut self, seq: u64, place: u8) -> bool {
        if self.places.is_empty() {
            self.first_seq = seq;
        }
        self.places.push(place);
        self.places.len() <= MAX_PLACED_FRAMES
    }

    /// Whether pass `partition` needs batch `seq` (any batch the survey did not place).
    fn wanted(&self, seq: u64, partition: usize) -> bool {
        let index = seq.checked_sub(self.first_seq).and_then(|i| usize::try_from(i).ok());
        match index.and_then(|i| self.places.get(i)) {
            Some(&place) => place == EVERY_PASS || usize::from(place) == partition,
            None => true,
        }
    }
}

/// How a pass reads the old snapshot's keys.
enum OldKeys<'a> {
    /// Read the whole file: build the pass's keys; with `touched`, copy the untouched keys
    /// of every partition and note where the other partitions' touched keys lie.
    Scan { touched: Option<&'a HashSet<u64>>, located: &'a mut Vec<Vec<Location>>, copied: &'a mut u64 },
    /// Read just these keys, noted by the first pass.
    Located(Vec<Location>),
}

/// Reads the snapshot and the batches below `stop_at` for one pass.
struct PartitionReplay<'a, W: Write> {
    dir: &'a Path,
    filter: PassFilter<'a>,
    work: PassWork<'a, W>,
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

impl<'a, W: Write> PartitionReplay<'a, W> {
    fn new(dir: &'a Path, filter: PassFilter<'a>, covered: u64, work: PassWork<'a, W>) -> Self {
        PartitionReplay {
            dir,
            filter,
            work,
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
}

impl<W: Write> Replay for PartitionReplay<'_, W> {
    fn snapshot(&mut self, snapshot: &SnapshotRef) -> Result<(), BoxError> {
        self.last_seq = snapshot.seq;
        let (engine, old_keys, skip, writer) = match &mut self.work {
            PassWork::Build { engine, old_keys, skip, writer, .. } => (engine, old_keys, skip, writer),
            PassWork::Survey(survey) => {
                survey.old_snapshot = true;
                return Ok(());
            }
        };
        let path = self.dir.join(&snapshot.file);
        let loaded = match old_keys {
            OldKeys::Scan { touched, located, copied } => {
                let filter = self.filter;
                let pick = |db: u32, key: &[u8]| {
                    if skip.supersession.is_some_and(|s| s.replaced(db, key)) {
                        *skip.skipped += 1;
                        return Pick::Skip;
                    }
                    let hash = name_hash(key);
                    match touched.map(|touched| touched.contains(&hash)) {
                        Some(false) => Pick::Raw,
                        _ if partition_of_hash(hash, filter.partitions) == filter.partition => Pick::Decode,
                        Some(true) => Pick::Locate,
                        None => Pick::Skip,
                    }
                };
                let copy = |entry: RawEntry| {
                    **copied += 1;
                    writer.write_raw_entry(&entry).map_err(|e| format!("cannot write the snapshot: {e}"))
                };
                let locate = |location: Location, key: &[u8]| {
                    if let Some(theirs) = located.get_mut(partition_of(key, filter.partitions)) {
                        theirs.push(location);
                    }
                };
                load_rdb_file_picking(engine, &path, Picker { pick, copy, locate }, |_, _, _| {}).map(drop)
            }
            OldKeys::Located(locations) => load_located(engine, &path, locations),
        };
        loaded.map_err(|e| self.fail(e))
    }

    fn wants(&mut self, seq: u64) -> bool {
        let PassWork::Build { skip: Skip { frames: Some(frames), .. }, .. } = &self.work else { return true };
        if seq >= self.stop_at || frames.wanted(seq, self.filter.partition) {
            return true;
        }
        self.last_seq = seq;
        false
    }

    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), BoxError> {
        if seq >= self.stop_at {
            self.stopped = true;
            return Err(Box::new(Stop));
        }
        self.last_seq = seq;
        if let PassWork::Survey(survey) = &mut self.work {
            // Without an old snapshot nothing will be copied, but placing the batches still
            // spares the passes most of their reading when there are several.
            if survey.touched.is_none() || (!survey.old_snapshot && survey.frames.is_none()) {
                survey.touched = None;
                self.stopped = true;
                return Err(Box::new(Stop));
            }
        }
        // Only this pass's effects are looked at (and copied out of the frame to replay).
        let (time, effects) = match decode_batch_view(payload) {
            Ok(batch) => batch,
            Err(e) => return Err(self.fail(format!("log frame {seq}: {e}"))),
        };
        let mut kept = Vec::new();
        for (index, effect) in effects.iter().enumerate() {
            let named = self.filter.named(effect);
            let at = Position { seq, index: u32::try_from(index).unwrap_or(u32::MAX) };
            match self.filter.keeps(&named) {
                Some(true) => kept.push((at, effect, named)),
                Some(false) => {}
                None => {
                    self.mixed_keys = true;
                    self.stopped = true;
                    return Err(Box::new(Stop));
                }
            }
        }
        match &mut self.work {
            PassWork::Survey(survey) => {
                let place = kept
                    .iter()
                    .fold(NO_PASS, |place, (at, effect, named)| joined(place, survey.note(effect, named, *at)));
                if survey.frames.as_mut().is_some_and(|frames| !frames.push(seq, place)) {
                    survey.frames = None;
                }
                Ok(())
            }
            PassWork::Build { engine, skip, on_error, .. } => {
                let mut replayed = Vec::with_capacity(kept.len());
                for (at, effect, named) in kept {
                    if skip.supersession.is_some_and(|s| s.skips(effect.db, &named.keys, at)) {
                        *skip.skipped += 1;
                    } else {
                        replayed.push(effect.to_effect());
                    }
                }
                if replayed.is_empty() {
                    return Ok(());
                }
                let Err(failures) = engine.replay(time, &replayed) else { return Ok(()) };
                let on_error = *on_error;
                settle_failures(on_error, seq, failures)
                    .map(drop)
                    .map_err(|e| self.fail(format!("log frame {seq}: {e}")))
            }
        }
    }
}

impl Survey {
    /// Adds the hashes of the keys `effect` names to `touched` and notes what it replaces,
    /// or turns copying off (`None`) for an effect that names none and may change keys all
    /// the same. Returns the effect's place (which pass needs it).
    fn note(&mut self, effect: &EffectView<'_>, named: &Named<'_>, at: Position) -> u8 {
        let Some(names) = &mut self.touched else { return EVERY_PASS };
        let partitions = self.frames.as_ref().map_or(1, |frames| frames.partitions);
        let mut place = NO_PASS;
        for key in &named.keys {
            let hash = name_hash(key);
            names.insert(hash);
            place = joined(place, partition_of_hash(hash, partitions) as u8);
        }
        let library = effect.argv.first().is_some_and(|name| name.eq_ignore_ascii_case(b"function"));
        if !named.known || (named.keys.is_empty() && !library) || names.len() > MAX_TOUCHED_NAMES {
            self.touched = None;
            self.supersession = None;
        } else if let Some(supersession) = &mut self.supersession {
            if let Noted::CrossDatabase = supersession.note(effect.db, &effect.argv, &named.keys, at) {
                self.supersession = None;
            }
        }
        // An effect that names no key is database-wide: every pass replays it.
        if place == NO_PASS {
            EVERY_PASS
        } else {
            place
        }
    }
}

/// Loads the keys at `locations` of the snapshot at `path` (in file order) into `engine`.
fn load_located(engine: &Engine, path: &Path, locations: &[Location]) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut position = 0u64;
    let now = crate::clock::now_ms();
    // Forward by the gap from the last key read: `seek_relative` keeps what the buffer holds
    // when the next key is close, where a seek from the start would drop it each time.
    for &location in locations {
        let gap = i64::try_from(location.offset).ok().zip(i64::try_from(position).ok()).map(|(to, from)| to - from);
        let moved = gap
            .ok_or_else(|| "offset out of range".to_string())
            .and_then(|gap| reader.seek_relative(gap).map_err(|e| e.to_string()));
        moved.map_err(|e| format!("snapshot {}: cannot go to offset {}: {e}", path.display(), location.offset))?;
        let (item, end) =
            RdbReader::read_located(&mut reader, location).map_err(|e| format!("snapshot {}: {e}", path.display()))?;
        position = end;
        if let Some(RdbItem::Entry(entry)) = item {
            let (db, key, value, expire_at) = loaded_key(entry, path)?;
            load_entry(engine, db, key, value, expire_at, now)?;
        }
    }
    Ok(())
}

/// How far a read of a data directory has come: bytes of the snapshot and of the log read
/// so far, against their sizes. The server's INFO `loading_*` fields and export's meter
/// show it.
#[derive(Debug, Default)]
pub struct LoadProgress {
    snapshot_done: AtomicU64,
    snapshot_total: AtomicU64,
    log_done: AtomicU64,
    log_total: AtomicU64,
}

impl LoadProgress {
    /// The sizes of the snapshot and the log before they are read (the readers then report
    /// their own).
    pub fn expect(&self, snapshot_bytes: u64, log_bytes: u64) {
        self.snapshot_total.store(snapshot_bytes, Ordering::Relaxed);
        self.log_total.store(log_bytes, Ordering::Relaxed);
    }

    fn snapshot_read(&self, done: u64, total: u64) {
        self.snapshot_done.store(done, Ordering::Relaxed);
        self.snapshot_total.store(total, Ordering::Relaxed);
    }

    fn log_read(&self, progress: &Progress) {
        self.log_done.store(progress.bytes_done, Ordering::Relaxed);
        self.log_total.store(progress.bytes_total, Ordering::Relaxed);
    }

    /// Bytes read so far and bytes to read in all.
    pub fn bytes(&self) -> (u64, u64) {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let done = load(&self.snapshot_done) + load(&self.log_done);
        let total = load(&self.snapshot_total) + load(&self.log_total);
        (done, total.max(done))
    }
}

/// Feeds a data directory (snapshot, then log batches) into an engine: server start and
/// `staykv export`. Logs progress lines about every second unless told not to.
#[derive(Debug)]
pub struct EngineReplay<'a> {
    pub dir: &'a Path,
    pub engine: &'a Engine,
    /// The server's start-up load and `staykv export` report here.
    pub load_progress: Option<&'a LoadProgress>,
    /// Progress lines in the log; off where the caller shows progress itself (export's meter).
    pub logs_progress: bool,
    on_error: OnReplayError,
    started: Instant,
    last_report: Instant,
    pub frames: u64,
    pub snapshot_keys: u64,
    /// Effects that failed to replay and were skipped ([`OnReplayError::Skip`]).
    pub skipped_effects: u64,
}

impl<'a> EngineReplay<'a> {
    pub fn new(dir: &'a Path, engine: &'a Engine, on_error: OnReplayError) -> Self {
        let now = Instant::now();
        EngineReplay {
            dir,
            engine,
            load_progress: None,
            logs_progress: true,
            on_error,
            started: now,
            last_report: now,
            frames: 0,
            snapshot_keys: 0,
            skipped_effects: 0,
        }
    }
}

/// What becomes of the effects of batch `seq` that failed to replay: the error that stops
/// the read (naming the first, and the switch past it when there is one), or, when told to
/// skip them, a warning each. Returns how many were skipped. Data in a database the server
/// lacks is never skipped.
fn settle_failures(on_error: OnReplayError, seq: u64, failures: Vec<ReplayFailure>) -> Result<u64, String> {
    let Some(first) = failures.first() else { return Ok(0) };
    if let Some(failure) = failures.iter().find(|failure| failure.missing_database) {
        return Err(format!("effect {}: {failure}", failure.index));
    }
    if on_error == OnReplayError::Refuse {
        return Err(format!(
            "effect {}: {first}. StayKV will not serve data that may differ from what it acknowledged; to go on \
             without the writes that fail to replay (each is logged), use --on-replay-error skip",
            first.index
        ));
    }
    for failure in &failures {
        tracing::warn!("log frame {seq}, effect {}: {failure}; skipped (--on-replay-error skip)", failure.index);
    }
    Ok(failures.len() as u64)
}

impl Replay for EngineReplay<'_> {
    fn snapshot(&mut self, snapshot: &SnapshotRef) -> Result<(), BoxError> {
        let path = self.dir.join(&snapshot.file);
        let started = Instant::now();
        let mut last = Instant::now();
        let (load_progress, logs_progress) = (self.load_progress, self.logs_progress);
        let counts = load_rdb_file(
            self.engine,
            &path,
            |_| true,
            |done, total, keys| {
                if let Some(load) = load_progress {
                    load.snapshot_read(done, total);
                }
                if logs_progress && last.elapsed() >= Duration::from_secs(1) {
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
        if !self.logs_progress {
            return Ok(());
        }
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
        if let Err(failures) = self.engine.replay(time, &effects) {
            self.skipped_effects += settle_failures(self.on_error, seq, failures)?;
        }
        self.frames += 1;
        Ok(())
    }

    fn progress(&mut self, progress: &Progress) {
        if let Some(load) = self.load_progress {
            load.log_read(progress);
        }
        if self.logs_progress && self.last_report.elapsed() >= Duration::from_secs(1) {
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
    use staykv_engine::list::List;
    use staykv_engine::set::Set;
    use staykv_engine::small_bytes::SmallBytes;

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
        let hash: staykv_engine::hash::Hash =
            [("f", "v")].into_iter().map(|(f, v)| (f.as_bytes(), v.as_bytes())).collect();
        let (mut set, mut ints) = (Set::default(), Set::default());
        set.insert(b"m");
        ints.extend_owned(["7", "-70000"].map(|n| n.as_bytes().to_vec()));
        for value in [
            Value::Str(SmallBytes::from_slice(b"hello")),
            Value::List(Box::new(List::from_elements([b"a", b"b"]))),
            Value::Hash(Box::new(hash)),
            Value::Set(Box::new(set)),
            Value::Set(Box::new(ints)),
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

    /// A log in `dir`, an engine, and a client whose writes [`run`] logs.
    fn logged_engine(dir: &Path) -> (staykv_storage::Log, Engine, staykv_engine::Client) {
        let fs = std::sync::Arc::new(RealFs::new());
        let options = staykv_storage::LogOptions::default();
        let (log, _) = staykv_storage::Log::open(dir, fs, options, &mut staykv_storage::NoReplay).unwrap();
        (log, Engine::new(EngineOptions { databases: 16, shard_bits: 2 }), staykv_engine::Client::new(1, true))
    }

    struct LogJournal<'a>(&'a staykv_storage::Log);

    impl staykv_engine::Journal for LogJournal<'_> {
        fn append(&self, time_ms: u64, effects: &[staykv_engine::Effect]) -> Result<u64, String> {
            let mut buf = Vec::new();
            staykv_engine::encode_batch(time_ms, effects, &mut buf);
            self.0.append(&buf).map_err(|e| e.to_string())
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
        let (log, engine, mut client) = logged_engine(dir);
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
        engine.active_expire(now + 100, usize::MAX, &LogJournal(&log), &staykv_engine::host::NoHost);
        let expected = contents(&engine);
        let next = log.rotate().unwrap();
        let four = build_snapshot(dir, 16, next - 1, 4, OnReplayError::Refuse).unwrap();
        assert_eq!(four.partitions, 4);
        let loaded = Engine::new(EngineOptions { databases: 16, shard_bits: 2 });
        load_rdb_file(&loaded, &dir.join(&four.file), |_| true, |_, _, _| {}).unwrap();
        assert_eq!(contents(&loaded), expected);
        let one = build_snapshot(dir, 16, next - 1, 1, OnReplayError::Refuse).unwrap();
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
        let built = build_snapshot(dir, 16, next - 1, 3, OnReplayError::Refuse).unwrap();
        let loaded = Engine::new(EngineOptions { databases: 16, shard_bits: 2 });
        load_rdb_file(&loaded, &dir.join(&built.file), |_| true, |_, _, _| {}).unwrap();
        assert_eq!(contents(&loaded), expected);
        log.close().unwrap();
    }

    /// Random writes over a few names in two databases — whole replacements (SET, DEL,
    /// UNLINK), writes that read their key (APPEND, PEXPIRE, PERSIST, RPUSH, SET KEEPTTL),
    /// and commands logged as several effects (RENAME, LMOVE, MOVE, a two-key DEL) — built
    /// over an old snapshot round after round, in one pass and in three: the content is the
    /// live engine's every time, and writes a later one replaced were stepped over.
    #[test]
    fn writes_a_later_one_replaces_are_stepped_over_and_the_content_is_unchanged() {
        use rand::{Rng, SeedableRng};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (log, engine, mut client) = logged_engine(dir);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut now = 1_700_000_000_000u64;
        for round in 0..5 {
            for i in 0..1500 {
                let (a, b) = (rng.gen_range(0..12), rng.gen_range(0..12));
                let value = format!("v{round}.{i}");
                let args: Vec<String> = match rng.gen_range(0..17) {
                    0..=3 => vec!["SET".into(), format!("s:{a}"), value],
                    4 => vec!["SET".into(), format!("s:{a}"), value, "PX".into(), "100000000".into()],
                    5 => vec!["SET".into(), format!("s:{a}"), value, "KEEPTTL".into()],
                    6 => vec!["APPEND".into(), format!("s:{a}"), value],
                    7 => vec!["PEXPIRE".into(), format!("s:{a}"), "200000000".into()],
                    8 => vec!["PERSIST".into(), format!("s:{a}")],
                    9 => vec!["DEL".into(), format!("s:{a}")],
                    10 => vec!["UNLINK".into(), format!("l:{a}")],
                    11 => vec!["RENAME".into(), format!("s:{a}"), format!("s:{b}")],
                    12 => vec!["RPUSH".into(), format!("l:{a}"), value],
                    13 => vec!["LMOVE".into(), format!("l:{a}"), format!("l:{b}"), "LEFT".into(), "RIGHT".into()],
                    14 => vec!["DEL".into(), format!("s:{a}"), format!("l:{b}")],
                    15 => vec!["MOVE".into(), format!("s:{a}"), (b % 2).to_string()],
                    _ => vec!["SELECT".into(), (b % 2).to_string()],
                };
                now += 1;
                let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
                // Writes that fail (RENAME of a missing key, APPEND to a list) log nothing.
                engine.execute(&mut client, &args, now, &staykv_engine::host::NoHost, &LogJournal(&log));
            }
            let expected = contents(&engine);
            let next = log.rotate().unwrap();
            for partitions in [3, 1] {
                let built = build_snapshot(dir, 16, next - 1, partitions, OnReplayError::Refuse).unwrap();
                let loaded = Engine::new(EngineOptions { databases: 16, shard_bits: 2 });
                load_rdb_file(&loaded, &dir.join(&built.file), |_| true, |_, _, _| {}).unwrap();
                assert_eq!(contents(&loaded), expected, "round {round}, {partitions} partition(s)");
                if round == 0 && partitions == 1 {
                    assert_eq!(built.superseded, 0, "one pass and no old snapshot: no survey");
                } else {
                    assert!(built.superseded > 500, "round {round}: {} stepped over", built.superseded);
                }
                if partitions == 1 {
                    log.install_snapshot(&built.file, next - 1).unwrap();
                }
            }
        }
        log.close().unwrap();
    }

    /// Effects as older logs may hold them — one naming two keys (a RENAME whose source is
    /// then set again: the rename needs the value the source had), one reaching another
    /// database (a MOVE whose key is then set again) — are replayed in full, as is every
    /// write of the keys they touch.
    #[test]
    fn effects_naming_several_keys_or_another_database_are_replayed_in_full() {
        let raw_cases: [(&[&str], &[&str], &[&str]); 2] = [
            (&["SET", "a", "first"], &["RENAME", "a", "b"], &["SET", "a", "second"]),
            (&["SET", "m", "first"], &["MOVE", "m", "1"], &["SET", "m", "second"]),
        ];
        for (before, raw, after) in raw_cases {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            let (log, engine, mut client) = logged_engine(dir);
            run(&engine, &log, &mut client, 1, &["SET", "old", "kept"]);
            let next = log.rotate().unwrap();
            let first = build_snapshot(dir, 16, next - 1, 1, OnReplayError::Refuse).unwrap();
            log.install_snapshot(&first.file, next - 1).unwrap();
            run(&engine, &log, &mut client, 2, before);
            run(&engine, &log, &mut client, 2, &["APPEND", before[1], "+"]);
            // The raw command goes to the log as it is; the live engine runs it unlogged.
            let raw: Vec<Bytes> = raw.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
            let ran =
                engine.execute(&mut client, &raw, 2, &staykv_engine::host::NoHost, &staykv_engine::exec::NoJournal);
            assert!(!ran.reply.is_error(), "{:?}", ran.reply);
            staykv_engine::Journal::append(&LogJournal(&log), 2, &[staykv_engine::Effect::new(0, raw.clone())])
                .unwrap();
            run(&engine, &log, &mut client, 3, after);
            let next = log.rotate().unwrap();
            let built = build_snapshot(dir, 16, next - 1, 1, OnReplayError::Refuse).unwrap();
            assert_eq!(built.superseded, 0, "{raw:?}");
            let loaded = Engine::new(EngineOptions { databases: 16, shard_bits: 2 });
            load_rdb_file(&loaded, &dir.join(&built.file), |_| true, |_, _, _| {}).unwrap();
            assert_eq!(contents(&loaded), contents(&engine), "{raw:?}");
            log.close().unwrap();
        }
    }

    /// Keys no batch names are copied from the old snapshot as they lie, the others built
    /// again, in one pass or several (later passes read just the keys the first one located):
    /// the content is the live engine's either way. A batch that changes keys without naming
    /// them (SWAPDB) turns copying off; a FUNCTION LOAD does not.
    #[test]
    fn untouched_keys_are_copied_and_touched_ones_built_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (log, engine, mut client) = logged_engine(dir);
        let mut now = 1_700_000_000_000u64;
        let mut run_all = |client: &mut staykv_engine::Client, commands: &[Vec<String>]| {
            for args in commands {
                now += 1;
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run(&engine, &log, client, now, &args);
            }
        };
        let c = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<String>>();
        let mut setup = Vec::new();
        for i in 0..600 {
            let far = (2_000_000_000_000u64 + i).to_string();
            setup.push(c(&["SET", &format!("s:{i}"), &"v".repeat(40 + i as usize % 50)]));
            setup.push(c(&["RPUSH", &format!("l:{i}"), "a", "b", &i.to_string()]));
            setup.push(c(&["HSET", &format!("h:{i}"), "f", "v", "n", &i.to_string()]));
            setup.push(c(&["PEXPIREAT", &format!("h:{i}"), &far]));
        }
        // A stream, whose end in the file only parsing finds: copied all the same.
        setup.push(c(&["XADD", "events", "1-1", "kind", "login"]));
        setup.push(c(&["XGROUP", "CREATE", "events", "readers", "0"]));
        setup.push(c(&["SELECT", "3"]));
        setup.extend((0..300).map(|i| c(&["SET", &format!("d3:{i}"), "in db 3"])));
        setup.push(c(&["SELECT", "0"]));
        run_all(&mut client, &setup);
        let next = log.rotate().unwrap();
        let first = build_snapshot(dir, 16, next - 1, 1, OnReplayError::Refuse).unwrap();
        assert_eq!(first.copied, 0, "no old snapshot to copy from");
        log.install_snapshot(&first.file, next - 1).unwrap();

        let library = "#!lua name=lib\nredis.register_function('f', function() return 1 end)";
        run_all(
            &mut client,
            &[
                c(&["HSET", "h:1", "g", "w"]),
                c(&["EXPIRE", "s:2", "1000000"]),
                c(&["DEL", "l:3"]),
                c(&["APPEND", "s:4", "more"]),
                c(&["MOVE", "s:5", "3"]),
                c(&["FUNCTION", "LOAD", library]),
                c(&["SELECT", "3"]),
                c(&["COPY", "d3:6", "new:6", "DB", "0"]),
                c(&["RENAME", "d3:7", "d3:seven"]),
                c(&["SELECT", "0"]),
                c(&["SET", "new:1", "v"]),
            ],
        );
        let expected = contents(&engine);
        let next = log.rotate().unwrap();
        let total = expected.len() as u64;
        for partitions in [1, 3] {
            let built = build_snapshot(dir, 16, next - 1, partitions, OnReplayError::Refuse).unwrap();
            assert_eq!(built.keys, total);
            assert!(built.copied > total - 20 && built.copied < total, "{} of {total} copied", built.copied);
            let loaded = Engine::new(EngineOptions { databases: 16, shard_bits: 2 });
            load_rdb_file(&loaded, &dir.join(&built.file), |_| true, |_, _, _| {}).unwrap();
            assert_eq!(contents(&loaded), expected, "{partitions} partition(s)");
            assert_eq!(loaded.scripting.library_codes().len(), 1);
        }

        run_all(&mut client, &[c(&["SWAPDB", "0", "3"]), c(&["SET", "after-swap", "1"])]);
        let expected = contents(&engine);
        let next = log.rotate().unwrap();
        let built = build_snapshot(dir, 16, next - 1, 3, OnReplayError::Refuse).unwrap();
        assert_eq!(built.copied, 0, "SWAPDB moves keys it does not name");
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
        let now = crate::clock::now_ms();
        load_entry(&engine, 0, b"k".to_vec(), Value::Str(SmallBytes::from_slice(b"v")), NO_EXPIRY, now).unwrap();
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
