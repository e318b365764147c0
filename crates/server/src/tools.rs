//! The maintenance subcommands: `staykv check`, `staykv import`, `staykv export`.
//!
//! They print their report on stdout and progress on stderr: a progress bar on a terminal,
//! a line every two seconds otherwise.
//!
//! Locking: `import` takes the data directory's lock (it writes); `check --fix` takes it and
//! refuses while a server runs on the directory. `check` without `--fix` and `export` only
//! read, so they also run beside a live server (with a warning: `check` may then report the
//! end of the segment being written as a torn tail, and `export` writes what was on disk when
//! it read it; a compaction finishing during the read makes it fail, and it can be re-run).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, HumanCount, ProgressBar, ProgressState, ProgressStyle};
use staykv_engine::exec::NoJournal;
use staykv_engine::host::NoHost;
use staykv_engine::{decode_batch, Engine, EngineOptions, ReplayFailure};
use staykv_rdb::{RdbItem, RdbReader, RdbWriter};
use staykv_storage::{
    parse_segment_file_name, parse_snapshot_file_name, BoxError, CheckReport, DamageKind, FixOutcome, Progress, RealFs,
    Replay, SnapshotRef, MANIFEST_FILE,
};

use crate::config::OnReplayError;
use crate::persistence::{lock_dir, LOCK_FILE};
use crate::snapshot::{self, EngineReplay, LoadProgress};

/// Databases of the engines the tools build (the most `--databases` allows), so that a data
/// directory written with more than the default 16 still loads.
const TOOL_DATABASES: usize = 1024;

/// The engine `import`, `export` and `check --replay` load a data directory into.
pub fn tool_engine() -> Engine {
    Engine::new(EngineOptions { databases: TOOL_DATABASES, shard_bits: 4 })
}

/// The unit of a meter that counts bytes (shown as KiB, MiB, ...).
pub const BYTES: &str = "bytes";

/// Progress on stderr: a bar on a terminal, a line every two seconds otherwise.
#[derive(Debug)]
pub struct Meter {
    bar: Option<ProgressBar>,
    label: String,
    unit: &'static str,
    total: Option<u64>,
    pos: u64,
    started: Instant,
    last_line: Instant,
}

impl Meter {
    pub fn new(label: &str, total: Option<u64>, unit: &'static str) -> Meter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            let template = match (total, unit) {
                (Some(_), BYTES) => {
                    "{msg} [{bar:40}] {percent:>3}% {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, eta {eta})"
                }
                (Some(_), _) => "{msg} [{bar:40}] {percent:>3}% {human_pos}/{human_len} ({rate}, eta {eta})",
                (None, BYTES) => "{spinner} {msg} {binary_bytes} ({binary_bytes_per_sec})",
                (None, _) => "{spinner} {msg} {human_pos} ({rate})",
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                // A whole number a second: indicatif's own `per_sec` has four decimals.
                let rate = |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let _ = write!(out, "{}/s", HumanCount(state.per_sec() as u64));
                };
                bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
            }
            bar.set_message(format!("{label} ({unit})"));
            bar
        });
        Meter { bar, label: label.to_string(), unit, total, pos: 0, started: Instant::now(), last_line: Instant::now() }
    }

    pub fn set(&mut self, pos: u64) {
        self.pos = pos;
        match &self.bar {
            Some(bar) => bar.set_position(pos),
            None if self.last_line.elapsed() >= Duration::from_secs(2) => {
                self.last_line = Instant::now();
                self.line();
            }
            None => {}
        }
    }

    /// Corrects the total once the work knows it better.
    pub fn set_total(&mut self, total: u64) {
        if self.total != Some(total) {
            self.total = Some(total);
            if let Some(bar) = &self.bar {
                bar.set_length(total);
            }
        }
    }

    pub fn inc(&mut self, n: u64) {
        self.set(self.pos + n);
    }

    fn line(&self) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = (self.pos as f64 / secs) as u64;
        let (pos, rate) = (self.amount(self.pos), self.amount(rate));
        match self.total {
            Some(total) if total > 0 => eprintln!(
                "{}: {pos}/{} ({:.1}%), {rate}/s",
                self.label,
                self.amount(total),
                self.pos as f64 * 100.0 / total as f64,
            ),
            _ => eprintln!("{}: {pos}, {rate}/s", self.label),
        }
    }

    /// `n` of this meter's unit, for a person: `61.27 MiB`, `1,800,000 keys`.
    fn amount(&self, n: u64) -> String {
        match self.unit {
            BYTES => BinaryBytes(n).to_string(),
            unit => format!("{} {unit}", HumanCount(n)),
        }
    }

    pub fn finish(self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => self.line(),
        }
    }
}

/// `check` or `export` pointed at Redis's own data directory (a `dump.rdb`, an
/// `appendonlydir` or a pre-7 `appendonly.aof`, and no StayKV file): refused with the way to
/// bring the data over, before anything is written there (the lock file).
fn refuse_redis_dir(dir: &Path) -> Result<(), String> {
    let Some(redis_file) = ["appendonlydir", "dump.rdb", "appendonly.aof"].into_iter().find(|n| dir.join(n).exists())
    else {
        return Ok(());
    };
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let holds_staykv_files = entries.flatten().any(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        name == MANIFEST_FILE || parse_snapshot_file_name(&name).is_some() || parse_segment_file_name(&name).is_some()
    });
    if holds_staykv_files {
        return Ok(());
    }
    Err(format!(
        "{} holds no StayKV data but a Redis {redis_file}: to move it into StayKV, run `staykv import {} --dir NEW_DIR`",
        dir.display(),
        dir.join(redis_file).display()
    ))
}

/// The directory the file `path` names lies in: `.` for a bare file name.
pub fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Whether `dir` holds anything but the lock file.
pub fn dir_has_files(dir: &Path) -> Result<bool, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    Ok(entries.flatten().any(|e| e.file_name() != LOCK_FILE))
}

/// Try the data directory lock: `(true, lock)` if we hold it now, `(false, None)` if a
/// server holds it.
fn try_lock_existing(dir: &Path) -> Result<(bool, Option<std::fs::File>), String> {
    match lock_dir(dir) {
        Ok(file) => Ok((true, Some(file))),
        Err(message) if message.contains("in use by another") => Ok((false, None)),
        Err(message) => Err(message),
    }
}

// ---------------------------------------------------------------------------------------------
// check

/// Failed replays a check lists; it counts them all.
const LISTED_FAILURES: usize = 20;

/// Reads every log batch after the snapshot (part of `check`): each must decode, and with
/// `--replay` each is also replayed over the snapshot in `engine`, as a start does.
struct BatchCheck<'a> {
    dir: &'a Path,
    engine: Option<Engine>,
    batches: u64,
    bad: Vec<(u64, String)>,
    /// The first [`LISTED_FAILURES`] effects that failed to replay, with their batch's seq.
    failed: Vec<(u64, ReplayFailure)>,
    failed_count: u64,
    meter: Meter,
}

impl Replay for BatchCheck<'_> {
    fn snapshot(&mut self, snapshot: &SnapshotRef) -> Result<(), BoxError> {
        let Some(engine) = &self.engine else { return Ok(()) };
        let mut meter = Meter::new("loading the snapshot", None, BYTES);
        let path = self.dir.join(&snapshot.file);
        snapshot::load_rdb_file(
            engine,
            &path,
            |_| true,
            |done, total, _| {
                meter.set_total(total);
                meter.set(done);
            },
        )?;
        meter.finish();
        Ok(())
    }

    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), BoxError> {
        self.batches += 1;
        let (time, effects) = match decode_batch(payload) {
            Ok(batch) => batch,
            Err(e) => {
                self.bad.push((seq, e.to_string()));
                return Ok(());
            }
        };
        if let Some(Err(failures)) = self.engine.as_ref().map(|engine| engine.replay(time, &effects)) {
            self.failed_count += failures.len() as u64;
            let room = LISTED_FAILURES.saturating_sub(self.failed.len());
            self.failed.extend(failures.into_iter().take(room).map(|failure| (seq, failure)));
        }
        Ok(())
    }

    fn progress(&mut self, progress: &Progress) {
        // The scan counts whole files, zeros of a zero-filled segment included.
        self.meter.set_total(progress.bytes_total);
        self.meter.set(progress.bytes_done);
    }
}

/// Reads `dir`'s log over its snapshot; `live`: beside a running server, whose log writer
/// appends to the last segment meanwhile.
fn scan_log(
    dir: &Path,
    fs: &RealFs,
    replay: &mut dyn staykv_storage::Replay,
    live: bool,
) -> Result<staykv_storage::Recovery, String> {
    let scanned = if live { staykv_storage::scan_live(dir, fs, replay) } else { staykv_storage::scan(dir, fs, replay) };
    scanned.map_err(|e| e.to_string())
}

/// Reads the log batches after the snapshot (`live`: see [`scan_log`]): prints what it
/// found, returns the problems.
fn check_batches(dir: &Path, fs: &RealFs, report: &CheckReport, replay: bool, live: bool) -> Vec<String> {
    let total: u64 = report.segments.iter().map(|s| s.bytes).sum();
    let label = if replay { "replaying log batches" } else { "checking log batches" };
    let mut check = BatchCheck {
        dir,
        engine: replay.then(tool_engine),
        batches: 0,
        bad: Vec::new(),
        failed: Vec::new(),
        failed_count: 0,
        meter: Meter::new(label, Some(total), BYTES),
    };
    let scanned = scan_log(dir, fs, &mut check, live);
    check.meter.finish();
    let BatchCheck { batches, bad, failed, failed_count, .. } = check;
    let mut problems = Vec::new();
    if let Err(e) = scanned {
        problems.push(format!("reading the log failed: {e}"));
        return problems;
    }
    for (seq, e) in bad.iter().take(LISTED_FAILURES) {
        println!("log batch seq {seq}: cannot be decoded: {e}");
    }
    for (seq, failure) in &failed {
        println!("log batch seq {seq}, effect {}: fails to replay: {failure}", failure.index);
    }
    if !bad.is_empty() {
        problems.push(format!("{} log batches cannot be decoded", bad.len()));
    }
    if failed_count > 0 {
        problems.push(format!(
            "{failed_count} logged writes fail to replay: a start refuses them unless run with \
             --on-replay-error skip (`--fix` cannot repair them: their frames are intact)"
        ));
    }
    if problems.is_empty() {
        let done = if replay { "decoded and replayed over the snapshot" } else { "decoded" };
        println!("log batches after the snapshot: {batches} {done} OK");
    }
    problems
}

/// `staykv check [--dir D] [--fix] [-y] [--replay]`.
pub fn check(dir: &Path, fix: bool, yes: bool, replay: bool) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!("no data directory at {}", dir.display()));
    }
    refuse_redis_dir(dir)?;
    let (locked, _lock) = try_lock_existing(dir)?;
    if !locked {
        if fix {
            return Err(format!(
                "a StayKV server is running on {}: stop it before `staykv check --fix`",
                dir.display()
            ));
        }
        eprintln!(
            "warning: a StayKV server is running on {}; the end of the segment it is writing may show as a torn tail",
            dir.display()
        );
    }
    let fs = RealFs::new();
    let report = if locked { staykv_storage::check(dir, &fs) } else { staykv_storage::check_live(dir, &fs) };
    let report = report.map_err(|e| e.to_string())?;
    println!("{report}");
    let mut problems = Vec::new();

    if let Some(snap) = report.manifest.as_ref().and_then(|m| m.snapshot.as_ref()) {
        problems.extend(check_snapshot(dir, &snap.file));
    }

    // Every log batch decodes, and replays with --replay (only when the log can be read to
    // its end; past a damaged MANIFEST, once `--fix` has rebuilt it).
    let readable = report.damage.as_ref().is_none_or(|d| d.kind == DamageKind::TornTail);
    if report.manifest.is_some() && readable && report.manifest_damage.is_none() {
        problems.extend(check_batches(dir, &fs, &report, replay, !locked));
    }

    if report.is_clean() {
        if problems.is_empty() {
            println!("data directory OK");
            return Ok(());
        }
        return Err(problems.join("; "));
    }
    if !fix {
        problems.insert(
            0,
            "damage found: run `staykv check --fix` to repair it (the report above says what it drops)".into(),
        );
        return Err(problems.join("; "));
    }
    if !yes {
        confirm_fix(dir)?;
    }
    let outcome = staykv_storage::fix(dir, &fs, &report).map_err(|e| format!("fix failed: {e}"))?;
    print_fixed(&outcome, &report);
    let after = staykv_storage::check(dir, &fs).map_err(|e| e.to_string())?;
    if !after.is_clean() {
        return Err(format!("the directory is still damaged after the fix:\n{after}"));
    }
    println!("data directory OK after the fix");
    if report.manifest_damage.is_some() {
        problems.extend(check_batches(dir, &fs, &after, replay, false));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The snapshot: every key readable and loadable, CRC64 trailer verified. Returns the
/// problem found, if any.
fn check_snapshot(dir: &Path, file: &str) -> Option<String> {
    match verify_snapshot(&dir.join(file)) {
        Ok((keys, unsupported)) if unsupported.is_empty() => {
            println!("snapshot {file}: OK ({keys} keys, RDB checksum verified)");
            None
        }
        Ok((keys, unsupported)) => {
            let count = unsupported.len();
            println!(
                "snapshot {file}: {keys} keys; {count} keys of types this build cannot load: {}",
                unsupported.join(", ")
            );
            Some(format!("snapshot {file} holds keys this build cannot load"))
        }
        Err(e) => {
            println!("snapshot {file}: DAMAGED: {e}");
            println!("  `--fix` cannot repair a snapshot (it holds data the log no longer has);");
            println!("  keep a copy of the directory and restore the snapshot from a backup");
            Some(format!("snapshot {file} is damaged: {e}"))
        }
    }
}

/// Asks on the terminal before `--fix` drops anything; without a terminal, refuses (`-y`
/// says yes ahead).
fn confirm_fix(dir: &Path) -> Result<(), String> {
    if !std::io::stdin().is_terminal() {
        return Err("refusing to fix without confirmation: run on a terminal, or pass -y".into());
    }
    eprint!("Repair {} as described above, dropping the data listed? [y/N] ", dir.display());
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| format!("cannot read the answer: {e}"))?;
    match answer.trim() {
        "y" | "Y" | "yes" | "YES" => Ok(()),
        _ => Err("not fixed".into()),
    }
}

/// What `--fix` did, file by file, and the data it dropped.
fn print_fixed(outcome: &FixOutcome, report: &CheckReport) {
    println!("fixed:");
    match &outcome.manifest_rewritten {
        Some(Some(kept)) => println!("  rewrote MANIFEST from the files (the damaged one renamed {kept})"),
        Some(None) => println!("  wrote the missing MANIFEST from the files"),
        None => {}
    }
    if let Some((file, offset, bytes, saved)) = &outcome.truncated {
        println!("  truncated {file} at offset {offset}: dropped {bytes} bytes (saved to {saved})");
    }
    for (from, to) in &outcome.dropped {
        println!("  dropped segment {from} (renamed {to})");
    }
    if let Some(created) = &outcome.created {
        println!("  created empty segment {created}");
    }
    if let Some(d) = &report.damage {
        println!("  data dropped: {} log batches, {} bytes", d.frames_dropped, d.bytes_dropped);
    }
}

/// Reads a snapshot to the end: key count and the keys this build cannot load.
fn verify_snapshot(path: &Path) -> Result<(u64, Vec<String>), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let total = file.metadata().map(|m| m.len()).ok();
    let mut reader = RdbReader::new(std::io::BufReader::with_capacity(256 * 1024, file)).map_err(|e| e.to_string())?;
    let mut meter = Meter::new("checking the snapshot", total, BYTES);
    let mut keys = 0u64;
    let mut unsupported = Vec::new();
    while let Some(item) = reader.next_item().map_err(|e| e.to_string())? {
        match item {
            RdbItem::Entry(entry) => {
                keys += 1;
                if let Err(kind) = snapshot::value_from_rdb(entry.value) {
                    unsupported.push(format!("{:?} ({kind})", String::from_utf8_lossy(&entry.key)));
                }
            }
            RdbItem::Unsupported { key, type_id, .. } => {
                unsupported.push(format!("{:?} ({})", String::from_utf8_lossy(&key), snapshot::rdb_type_name(type_id)))
            }
            RdbItem::Aux { .. } => {}
        }
        if keys.is_multiple_of(4096) {
            meter.set(reader.bytes_read());
        }
    }
    meter.set(reader.bytes_read());
    meter.finish();
    Ok((keys, unsupported))
}

// ---------------------------------------------------------------------------------------------
// export

/// Whether `file` would be written in `dir` or below it (its directory, resolved, is there).
fn lands_inside(file: &Path, dir: &Path) -> bool {
    let parent = parent_dir(file);
    match (parent.canonicalize(), dir.canonicalize()) {
        (Ok(parent), Ok(dir)) => parent.starts_with(dir),
        // A directory that does not exist holds nothing to overwrite; the write reports it.
        _ => false,
    }
}

/// Where `staykv export` writes.
#[derive(Debug, PartialEq, Eq)]
enum ExportTarget {
    /// `--rdb -`: streamed to standard output (a pipe to `gzip` or `ssh`).
    Stdout,
    /// A regular file, written beside itself and renamed over: a reader never sees half a file.
    File(PathBuf),
}

/// Checks `--rdb` before the data directory is read, which can take a while: a symlink is
/// written through (the file it names is replaced, not the link), and a directory, a device
/// or a pipe is refused, since a rename over it would replace it rather than write into it.
fn export_target(rdb: &Path) -> Result<ExportTarget, String> {
    if rdb == Path::new("-") {
        return Ok(ExportTarget::Stdout);
    }
    let path = match std::fs::symlink_metadata(rdb) {
        Ok(meta) if meta.file_type().is_symlink() => {
            rdb.canonicalize().map_err(|e| format!("{} is a symlink to nothing usable: {e}", rdb.display()))?
        }
        _ => rdb.to_path_buf(),
    };
    match std::fs::metadata(&path) {
        Ok(meta) if !meta.is_file() => Err(format!(
            "{} is not a regular file: the export writes a new file and renames it over the old one; to write to a \
             pipe or a device, use --rdb - and redirect standard output",
            path.display()
        )),
        Ok(_) => Ok(ExportTarget::File(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = parent_dir(&path);
            if parent.is_dir() {
                Ok(ExportTarget::File(path))
            } else {
                Err(format!("cannot write {}: no directory {}", path.display(), parent.display()))
            }
        }
        Err(e) => Err(format!("cannot write {}: {e}", path.display())),
    }
}

/// `staykv export --rdb FILE [--dir D]`: recover the directory read-only into memory and
/// write it as one RDB file (atomically: `FILE.tmp`, fsync, rename), or to standard output.
pub fn export(dir: &Path, rdb: &Path, on_replay_error: OnReplayError) -> Result<(), String> {
    if !dir.is_dir() || !dir_has_files(dir)? {
        return Err(format!("no data directory at {}", dir.display()));
    }
    refuse_redis_dir(dir)?;
    let target = export_target(rdb)?;
    if let ExportTarget::File(file) = &target {
        if lands_inside(file, dir) {
            return Err(format!(
                "{} is inside the data directory {}: the export would write among the files it reads (a snapshot \
                 or log segment of that name would be replaced); write it elsewhere",
                file.display(),
                dir.display()
            ));
        }
    }
    let (locked, lock) = try_lock_existing(dir)?;
    if !locked {
        eprintln!(
            "warning: a StayKV server is running on {}; exporting what is on disk now (later writes are not included)",
            dir.display()
        );
    }
    let started = Instant::now();
    let engine = tool_engine();
    let load = LoadProgress::default();
    let mut replay = EngineReplay::new(dir, &engine, on_replay_error);
    replay.load_progress = Some(&load);
    replay.logs_progress = false;
    crate::persistence::expect_load(dir, &load);
    let recovery = metered("reading", &load, || scan_log(dir, &RealFs::new(), &mut replay, !locked))?;
    drop(lock);
    if let Some(torn) = &recovery.torn_tail {
        eprintln!(
            "note: torn tail in {} at offset {} ({}): the last incomplete write is not exported",
            torn.file, torn.offset, torn.reason
        );
    }
    engine.active_expire(crate::clock::now_ms(), usize::MAX, &NoJournal, &NoHost);
    let total: u64 = engine.db_sizes().iter().map(|(keys, _)| *keys as u64).sum();
    let mut meter = Meter::new("exporting", Some(total), "keys");
    let (bytes, counts, shown) = match &target {
        ExportTarget::File(file) => {
            let written = snapshot::write_rdb_atomically(file, |writer| {
                write_metered(&engine, writer, &mut meter).map_err(|e| format!("cannot write {}: {e}", file.display()))
            })?;
            (written.0, written.1, file.display().to_string())
        }
        ExportTarget::Stdout => {
            let io_err = |e: std::io::Error| format!("cannot write to standard output: {e}");
            let mut writer = RdbWriter::new(Counted::new(std::io::stdout().lock())).map_err(io_err)?;
            let counts = write_metered(&engine, &mut writer, &mut meter).map_err(io_err)?;
            let mut out = writer.finish().map_err(io_err)?;
            out.flush().map_err(io_err)?;
            (out.bytes, counts, "standard output".to_string())
        }
    };
    meter.set(counts.keys);
    meter.finish();
    // On standard error when standard output carries the file.
    let summary = format!(
        "exported {} keys ({} with a TTL) from {} to {shown} ({bytes} bytes, RDB version 10) in {:.2} s",
        counts.keys,
        counts.expires,
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    match target {
        ExportTarget::Stdout => eprintln!("{summary}"),
        ExportTarget::File(_) => println!("{summary}"),
    }
    let highest_db = engine.db_sizes().iter().rposition(|(keys, _)| *keys > 0);
    if let Some(db) = highest_db.filter(|db| *db >= 16) {
        // redis-server refuses such a file at start ("FATAL: Data file was created with a
        // Redis server configured to handle more than 16 databases").
        eprintln!("note: keys are in database {db}: redis-server loads this file only with `databases {}`", db + 1);
    }
    Ok(())
}

/// Runs `work` while a meter shows the bytes of snapshot and log it has read, as `load`
/// counts them (the read reports there, from the thread that runs it).
fn metered<T>(label: &str, load: &LoadProgress, work: impl FnOnce() -> T) -> T {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut meter = Meter::new(label, Some(load.bytes().1), BYTES);
            loop {
                // Read before the figures: the last look shows the read's end.
                let finished = done.load(std::sync::atomic::Ordering::Relaxed);
                let (read, total) = load.bytes();
                meter.set_total(total);
                meter.set(read);
                if finished {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            meter.finish();
        });
        let out = work();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    })
}

/// The engine's functions and keys, the meter moved every 1,024 keys.
fn write_metered<W: Write>(
    engine: &Engine,
    writer: &mut RdbWriter<W>,
    meter: &mut Meter,
) -> std::io::Result<snapshot::KeyCounts> {
    snapshot::write_engine(engine, writer, |n| {
        if n.is_multiple_of(1024) {
            meter.set(n);
        }
    })
}

/// A writer that counts the bytes it passes on: the export's byte count when it streams to
/// standard output, which has no file to measure. (The RDB writer buffers in front of it.)
struct Counted<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Counted<W> {
    fn new(inner: W) -> Counted<W> {
        Counted { inner, bytes: 0 }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn meter_without_terminal_counts() {
        let mut meter = Meter::new("test", Some(10), "keys");
        meter.inc(3);
        meter.set(10);
        assert_eq!(meter.pos, 10);
        assert_eq!(meter.amount(1_800_000), "1,800,000 keys");
        meter.finish();
        assert_eq!(Meter::new("test", None, BYTES).amount(1536), "1.50 KiB");
    }
}
