//! `staykv import SOURCE [--dir D]`: load Redis data into a new StayKV data directory.
//!
//! SOURCE is one of
//! - a Redis RDB file (`dump.rdb`, any encoding Redis up to 7.0 writes); a single legacy
//!   `appendonly.aof` (RDB preamble followed by commands, or commands only) is read too;
//! - a Redis 7 `appendonlydir`: its manifest (`*.manifest`) names the base file (an RDB
//!   preamble or AOF commands) and the incremental AOF files, replayed in order through the
//!   engine (each file starts in database 0; `SELECT` switches);
//! - `redis://[user:password@]host:port[/db]`: a live server, read with SCAN + PTTL + DUMP
//!   (every database listed by `INFO keyspace`, or only `/db`).
//!
//! Everything is loaded into memory, keys already expired are skipped, and the result is
//! written into the target directory as its snapshot (seq 0) with an empty log. The target
//! must be empty (or a data directory holding no data). A source with anything StayKV cannot
//! take (keys of module types; AOF commands this build lacks or that fail; function libraries
//! that do not load) is refused, as redis-server refuses to load it, with a list of what would
//! be left behind; `--partial` imports the rest and prints the same list.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use staykv_engine::exec::NoJournal;
use staykv_engine::host::NoHost;
use staykv_engine::keyspace::NO_EXPIRY;
use staykv_engine::{Client, Engine, Reply};
use staykv_rdb::{decode_dump_payload, RdbError, RdbItem, RdbReader};
use staykv_resp::Protocol;
use staykv_storage::{snapshot_file_name, Log, LogOptions, NoReplay, RealFs};

use crate::persistence::lock_dir;
use crate::snapshot::{self, load_entry, value_from_rdb};
use crate::tools::{dir_has_files, parent_dir, tool_engine, Meter, BYTES};

/// What an import found.
#[derive(Debug, Default)]
struct Report {
    /// `(db, key, type)` of keys not imported because StayKV cannot hold their type.
    unsupported: Vec<(u32, Vec<u8>, String)>,
    expired: u64,
    /// Why function libraries were not loaded.
    function_errors: Vec<String>,
    /// Commands of AOF files that failed, by error text (first few kept).
    command_errors: BTreeMap<String, u64>,
    commands: u64,
}

impl Report {
    /// Whether anything of the source is not in the engine.
    fn left_something_out(&self) -> bool {
        !self.unsupported.is_empty() || !self.function_errors.is_empty() || !self.command_errors.is_empty()
    }

    fn unsupported_key(&mut self, db: u32, key: Vec<u8>, kind: &str) {
        if !self.unsupported.iter().any(|(d, k, _)| *d == db && *k == key) {
            self.unsupported.push((db, key, kind.to_string()));
        }
    }
}

/// `staykv import SOURCE [--dir D] [--partial]`.
pub fn import(source: &str, dir: &Path, partial: bool) -> Result<(), String> {
    let created = !dir.exists();
    let result = import_into(source, dir, partial);
    if result.is_err() && created {
        // A failed import leaves no directory behind that it made: a retry or a server
        // start then begins where the user did, not beside an empty data directory.
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn import_into(source: &str, dir: &Path, partial: bool) -> Result<(), String> {
    let started = Instant::now();
    let _lock = lock_dir(dir)?;
    ensure_no_data(dir)?;
    let engine = tool_engine();
    let mut report = Report::default();
    if source.starts_with("redis://") || source.starts_with("rediss://") {
        import_live(source, &engine, &mut report)?;
    } else {
        let path = PathBuf::from(source);
        if path.is_dir() {
            import_aof_dir(&path, &engine, &mut report)?;
        } else if path.extension().is_some_and(|x| x == "manifest") && path.is_file() {
            import_aof_manifest(&path, &engine, &mut report)?;
        } else if path.is_file() {
            refuse_empty(&path)?;
            refuse_part_of_multi_part_aof(&path)?;
            import_file(&path, Tail::MayBeCut, &engine, &mut report)?;
        } else {
            return Err(format!(
                "{source}: no such file or directory (expected a dump.rdb, an appendonlydir or redis://host:port)"
            ));
        }
    }
    let before = key_count(&engine);
    engine.active_expire(crate::clock::now_ms(), usize::MAX, &NoJournal, &NoHost);
    report.expired += before - key_count(&engine);
    if report.left_something_out() && !partial {
        // A migration script that checks the exit status must not start a server on a
        // dataset missing keys, nor one whose later AOF commands ran without an earlier one.
        print_left_out(&report);
        return Err(format!(
            "{source} holds data StayKV cannot import (listed above); nothing was written. \
             Run again with --partial to import the rest without it"
        ));
    }
    let written = write_data_dir(dir, &engine)?;
    print_report(source, dir, &engine, &report, written, started.elapsed());
    print_left_out(&report);
    Ok(())
}

/// A file named alone must hold something: Redis refuses an empty dump.rdb, and a backup
/// cut to nothing (a full disk, a failed copy) must not import as an empty dataset that a
/// script checking the exit status takes for a migration. (An AOF of an appendonlydir may be
/// empty: a fresh incr file is.)
fn refuse_empty(path: &Path) -> Result<(), String> {
    let len = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
    if len == 0 {
        return Err(format!("{} is empty (0 bytes): neither a dump.rdb nor an AOF with commands", path.display()));
    }
    Ok(())
}

/// At most the first 32 bytes of `bytes`, printable (`\x1f`, `\r`): what an error shows of
/// input that is not what was expected, which may be binary and megabytes long.
fn preview(bytes: &[u8]) -> String {
    let shown = bytes.get(..32).unwrap_or(bytes).escape_ascii().to_string();
    if bytes.len() > 32 {
        format!("\"{shown}\"...")
    } else {
        format!("\"{shown}\"")
    }
}

fn key_count(engine: &Engine) -> u64 {
    engine.db_sizes().iter().map(|(keys, _)| *keys as u64).sum()
}

/// Refuse a target that holds data: it must be empty, or a data directory with no snapshot
/// and no log batch (e.g. created by a server that never got a write).
fn ensure_no_data(dir: &Path) -> Result<(), String> {
    if !dir_has_files(dir)? {
        return Ok(());
    }
    let report = staykv_storage::check(dir, &RealFs::new())
        .map_err(|e| format!("{} is not empty and is not a readable StayKV data directory: {e}", dir.display()))?;
    let holds_data = match &report.manifest {
        Some(m) => m.snapshot.is_some() || report.frames_ok > 0 || !report.is_clean(),
        None => false,
    };
    let only_ours = report.manifest.is_some() || {
        // No manifest: only leftovers of an interrupted first start are acceptable.
        std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten().all(|e| {
            e.file_name() == crate::persistence::LOCK_FILE
                || report.leftover_files.iter().any(|l| *l == e.file_name().to_string_lossy())
        })
    };
    if holds_data || !only_ours {
        return Err(format!(
            "the target directory {} already holds data; import into an empty directory (or a new --dir)",
            dir.display()
        ));
    }
    Ok(())
}

/// Creates the data directory's log, writes the engine as its snapshot and installs it.
fn write_data_dir(dir: &Path, engine: &Engine) -> Result<(u64, u64), String> {
    let fs = std::sync::Arc::new(RealFs::new());
    let (log, _) = Log::open(dir, fs, LogOptions::default(), &mut NoReplay).map_err(|e| e.to_string())?;
    let seq = log.last_seq();
    let file = snapshot_file_name(seq);
    let total = key_count(engine);
    let mut meter = Meter::new("writing the snapshot", Some(total), "keys");
    let (bytes, counts) = snapshot::write_rdb_atomically(&dir.join(&file), |writer| {
        snapshot::write_engine(engine, writer, |n| {
            if n.is_multiple_of(1024) {
                meter.set(n);
            }
        })
        .map_err(|e| format!("cannot write the snapshot: {e}"))
    })?;
    meter.set(counts.keys);
    meter.finish();
    log.install_snapshot(&file, seq).map_err(|e| format!("cannot install the snapshot: {e}"))?;
    log.close().map_err(|e| e.to_string())?;
    Ok((counts.keys, bytes))
}

fn print_report(source: &str, dir: &Path, engine: &Engine, report: &Report, written: (u64, u64), took: Duration) {
    println!(
        "imported {} keys from {source} into {} ({} bytes of snapshot) in {:.2} s",
        written.0,
        dir.display(),
        written.1,
        took.as_secs_f64()
    );
    let mut highest_db = 0;
    for (db, (keys, expires)) in engine.db_sizes().iter().enumerate() {
        if *keys > 0 {
            println!("  db{db}: {keys} keys ({expires} with a TTL)");
            highest_db = db;
        }
    }
    if highest_db >= 16 {
        println!("note: keys are in database {highest_db}: start the server with --databases {}", highest_db + 1);
    }
    if report.commands > 0 {
        println!("AOF commands replayed: {}", report.commands);
    }
    if report.expired > 0 {
        println!("skipped {} keys that had already expired", report.expired);
    }
    // Counted in the engine: libraries come from an RDB's aux fields, a live server's list,
    // or an AOF's FUNCTION LOAD commands, and a later FUNCTION DELETE removes one.
    let libraries = engine.scripting.library_codes().len();
    if libraries > 0 {
        println!("function libraries imported: {libraries}");
    }
}

/// What the source held that the engine does not: printed before a refusal, and after a
/// `--partial` import.
fn print_left_out(report: &Report) {
    for error in &report.function_errors {
        println!("NOT imported: a function library: {error}");
    }
    for (error, count) in &report.command_errors {
        println!("AOF command failed {count} times: {error}");
    }
    if !report.unsupported.is_empty() {
        println!("NOT imported: {} keys StayKV cannot hold:", report.unsupported.len());
        for (db, key, kind) in &report.unsupported {
            println!("  db{db} {:?} ({kind})", String::from_utf8_lossy(key));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RDB

/// Whether a file's last command may be cut off. Redis's `aof-load-truncated` forgives that
/// in the last file of an AOF only: in any other, the commands after the cut were lost and
/// the files after it would be replayed without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    MayBeCut,
    Whole,
}

fn import_file(path: &Path, tail: Tail, engine: &Engine, report: &mut Report) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let total = file.metadata().map(|m| m.len()).ok();
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let head = reader.fill_buf().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let starts_with_rdb = head.starts_with(b"REDIS");
    if !starts_with_rdb && !head.is_empty() && !head.starts_with(b"*") && !head.starts_with(b"#") {
        return Err(format!(
            "{} is neither an RDB file (which starts with \"REDIS\") nor an AOF (which starts with a '*' command \
             or a '#' annotation); it starts with {}",
            path.display(),
            preview(head)
        ));
    }
    if starts_with_rdb {
        let (mut rest, rdb_len) = import_rdb(reader, path, total, engine, report)?;
        // A legacy appendonly.aof with an RDB preamble continues with commands; anything
        // else after the end marker means the RDB part was misread (damaged in a way its
        // checksum did not catch, or written by a Redis newer than its version says).
        let after = rest.fill_buf().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if after.is_empty() {
            return Ok(());
        }
        if !after.starts_with(b"*") && !after.starts_with(b"#") {
            return Err(format!(
                "{}: the RDB data ends at offset {rdb_len}, but the file goes on with {}, which is no AOF command: \
                 the RDB part is damaged, or was not written by a Redis up to 7.0",
                path.display(),
                preview(after)
            ));
        }
        replay_aof(rest, path, tail, engine, report)
    } else {
        replay_aof(reader, path, tail, engine, report)
    }
}

/// Loads an RDB stream; returns the reader positioned after the RDB's checksum, and the
/// RDB's length.
fn import_rdb<R: BufRead>(
    input: R,
    path: &Path,
    total: Option<u64>,
    engine: &Engine,
    report: &mut Report,
) -> Result<(R, u64), String> {
    let what = |e: RdbError| format!("{}: {e}", path.display());
    let mut reader = RdbReader::new(input).map_err(what)?;
    let mut meter = Meter::new(&format!("reading {}", path.display()), total, BYTES);
    let now = crate::clock::now_ms();
    let mut n = 0u64;
    while let Some(item) = reader.next_item().map_err(what)? {
        n += 1;
        if n.is_multiple_of(4096) {
            meter.set(reader.bytes_read());
        }
        match item {
            RdbItem::Entry(entry) => {
                let expire_at = entry.expire_at_ms.unwrap_or(NO_EXPIRY);
                if expire_at != NO_EXPIRY && expire_at <= now {
                    report.expired += 1;
                    continue;
                }
                let db = entry.db;
                let value = match value_from_rdb(entry.value) {
                    Ok(value) => value,
                    Err(kind) => {
                        report.unsupported_key(db, entry.key, kind);
                        continue;
                    }
                };
                // As Redis refuses the file ("Duplicated key found in RDB file"): which of the
                // two is the data is not known.
                if let Some(twice) = load_entry(engine, db as usize, entry.key, value, expire_at, now)? {
                    let key = String::from_utf8_lossy(&twice.key);
                    return Err(format!("{}: key '{key}' appears twice in database {db}", path.display()));
                }
            }
            RdbItem::Unsupported { db, key, type_id } => {
                report.unsupported_key(db, key, snapshot::rdb_type_name(type_id))
            }
            RdbItem::Aux { key, value } if key == b"function" => {
                if let Err(error) = snapshot::load_function(engine, &value) {
                    report.function_errors.push(error);
                }
            }
            RdbItem::Aux { .. } => {}
        }
    }
    let rdb_len = reader.bytes_read();
    meter.set(rdb_len);
    meter.finish();
    Ok((reader.into_inner().map_err(what)?, rdb_len))
}

// ---------------------------------------------------------------------------------------------
// AOF

/// One `file` line of a Redis 7 AOF manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AofFile {
    name: String,
    seq: u64,
    kind: char,
}

/// Splits a manifest line into words, honouring Redis's quoting (`"..."` with escapes).
fn manifest_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => word.push('\n'),
                        Some('t') => word.push('\t'),
                        Some(other) => word.push(other),
                        None => break,
                    },
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    words
}

fn parse_aof_manifest(text: &str) -> Result<Vec<AofFile>, String> {
    let mut files = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = manifest_words(line);
        let mut name = None;
        let mut seq = None;
        let mut kind = None;
        for pair in words.chunks(2) {
            if let [key, value] = pair {
                match key.as_str() {
                    "file" => name = Some(value.clone()),
                    "seq" => seq = value.parse::<u64>().ok(),
                    "type" => kind = Some(value.clone()),
                    _ => {}
                }
            }
        }
        let kind = match kind.as_deref() {
            Some("b") => 'b',
            Some("h") => 'h',
            Some("i") => 'i',
            Some(other) => return Err(format!("unknown AOF file type {other:?} in manifest line {line:?}")),
            None => return Err(format!("bad AOF manifest line: {line:?}")),
        };
        match (name, seq) {
            (Some(name), Some(seq)) if !name.contains('/') => files.push(AofFile { name, seq, kind }),
            _ => return Err(format!("bad AOF manifest line: {line:?}")),
        }
    }
    // As Redis refuses to load one: an empty manifest is no dataset, not an empty one.
    if files.is_empty() {
        return Err("the AOF manifest lists no file".into());
    }
    Ok(files)
}

/// The AOF manifests (`*.manifest`) in `dir`.
fn manifests_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "manifest"))
        .collect())
}

/// One file of a Redis 7 appendonlydir is one part of the data (the base, or the writes
/// after it): imported alone, it would give a partial dataset with a success.
fn refuse_part_of_multi_part_aof(path: &Path) -> Result<(), String> {
    let dir = parent_dir(path);
    let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else { return Ok(()) };
    for manifest in manifests_in(dir).unwrap_or_default() {
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        if parse_aof_manifest(&text).is_ok_and(|files| files.iter().any(|f| f.name == name)) {
            return Err(format!(
                "{} is one part of the AOF that {} lists: import the whole directory {} (or the manifest)",
                path.display(),
                manifest.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

fn import_aof_dir(dir: &Path, engine: &Engine, report: &mut Report) -> Result<(), String> {
    let manifests = manifests_in(dir)?;
    let manifest = match &manifests[..] {
        [one] => one,
        [] => return Err(format!("{} has no AOF manifest (*.manifest): not a Redis 7 appendonlydir", dir.display())),
        _ => {
            return Err(format!(
                "{} holds {} AOF manifests: which one Redis loads depends on its appendfilename; name that \
                 manifest instead of the directory",
                dir.display(),
                manifests.len()
            ))
        }
    };
    import_aof_manifest(manifest, engine, report)
}

/// The files a Redis 7 AOF manifest lists, base first, then the incremental ones in order.
fn import_aof_manifest(manifest: &Path, engine: &Engine, report: &mut Report) -> Result<(), String> {
    let dir = parent_dir(manifest);
    let text = std::fs::read_to_string(manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let files = parse_aof_manifest(&text)?;
    let base: Vec<&AofFile> = files.iter().filter(|f| f.kind == 'b').collect();
    if base.len() > 1 {
        return Err(format!("{}: more than one base file", manifest.display()));
    }
    let mut incr: Vec<&AofFile> = files.iter().filter(|f| f.kind == 'i').collect();
    incr.sort_by_key(|f| f.seq);
    let files: Vec<&AofFile> = base.into_iter().chain(incr).collect();
    for (index, file) in files.iter().enumerate() {
        let tail = if index + 1 == files.len() { Tail::MayBeCut } else { Tail::Whole };
        import_file(&dir.join(&file.name), tail, engine, report)?;
    }
    Ok(())
}

/// Reads one RESP command (`*N` then N bulk strings). `Ok(None)` at a clean end;
/// `Err((offset, truncated))` on a bad or incomplete command.
fn read_command(r: &mut impl BufRead, offset: &mut u64) -> Result<Option<Vec<Bytes>>, (u64, bool, String)> {
    let start = *offset;
    let mut line = Vec::new();
    // A line ends at its LF (a CR before it is dropped), as Redis's loader reads it with
    // `fgets`. Only one the file ends inside is incomplete: a cut, if it starts as the line
    // expected there would (`*` or `$`); anything else is not an AOF command.
    let read_line = |r: &mut dyn BufRead, line: &mut Vec<u8>, offset: &mut u64, prefix: u8| -> Result<bool, String> {
        line.clear();
        let n = r.read_until(b'\n', line).map_err(|e| e.to_string())?;
        *offset += n as u64;
        if line.pop() == Some(b'\n') {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(true);
        }
        match line.first() {
            None => Ok(false),
            Some(&first) if first == prefix => Ok(false),
            Some(_) => Err(format!("not an AOF command: {}", preview(line))),
        }
    };
    let mut start = start;
    let mut complete = read_line(r, &mut line, offset, b'*').map_err(|e| (start, false, e))?;
    // Annotations (`#TS:<unix time>` before commands, written under `aof-timestamp-enabled`)
    // are skipped, as Redis's loader skips every line starting with `#`.
    while complete && line.first() == Some(&b'#') {
        start = *offset;
        complete = read_line(r, &mut line, offset, b'*').map_err(|e| (start, false, e))?;
    }
    if line.is_empty() && !complete {
        return Ok(None);
    }
    if !complete {
        return Err((start, true, "incomplete line".into()));
    }
    let count = line
        .strip_prefix(b"*")
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| (start, false, format!("expected '*<count>', found {}", preview(&line))))?;
    let mut args = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let complete = read_line(r, &mut line, offset, b'$').map_err(|e| (start, false, e))?;
        if !complete {
            return Err((start, true, "incomplete command".into()));
        }
        let len = line
            .strip_prefix(b"$")
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| (start, false, format!("expected '$<length>', found {}", preview(&line))))?;
        let mut arg = Vec::new();
        let got = r.take(len as u64 + 2).read_to_end(&mut arg).map_err(|e| (start, false, e.to_string()))?;
        *offset += got as u64;
        if got < len + 2 {
            return Err((start, true, "incomplete argument".into()));
        }
        if !arg.ends_with(b"\r\n") {
            return Err((start, false, "argument not followed by CRLF".into()));
        }
        arg.truncate(len);
        args.push(Bytes::from(arg));
    }
    Ok(Some(args))
}

/// A file that `cut` (ends short): forgiven with a warning saying it was `forgiven` where
/// [`Tail`] allows it, refused anywhere else.
fn ends_short(path: &Path, tail: Tail, cut: &str, forgiven: &str) -> Result<(), String> {
    let path = path.display();
    match tail {
        Tail::MayBeCut => {
            eprintln!("warning: {path} {cut}: {forgiven}");
            Ok(())
        }
        Tail::Whole => Err(format!(
            "{path} {cut}, and it is not the last file of the AOF: the commands after it are lost \
             (Redis refuses to load it too)"
        )),
    }
}

/// Replays an AOF command stream through the engine, in a fresh client (database 0).
fn replay_aof(
    mut r: impl BufRead,
    path: &Path,
    tail: Tail,
    engine: &Engine,
    report: &mut Report,
) -> Result<(), String> {
    let total = std::fs::metadata(path).map(|m| m.len()).ok();
    let mut meter = Meter::new(&format!("replaying {}", path.display()), total, BYTES);
    let mut client = Client::new(0, true);
    let mut offset = 0u64;
    let now = crate::clock::now_ms();
    loop {
        let args = match read_command(&mut r, &mut offset) {
            Ok(Some(args)) => args,
            Ok(None) => break,
            Err((at, true, why)) => {
                let cut = format!("ends with an incomplete command at offset {at} ({why})");
                ends_short(path, tail, &cut, "ignored, as Redis does with aof-load-truncated")?;
                break;
            }
            Err((at, false, why)) => return Err(format!("{}: bad AOF data at offset {at}: {why}", path.display())),
        };
        if args.is_empty() {
            continue;
        }
        report.commands += 1;
        if report.commands.is_multiple_of(4096) {
            meter.set(offset);
        }
        let outcome = engine.execute(&mut client, &args, now, &NoHost, &NoJournal);
        if let Reply::Error(text) = outcome.reply {
            let name = String::from_utf8_lossy(args.first().map_or(&[][..], |a| &a[..])).to_ascii_uppercase();
            let key = args.get(1).filter(|_| text.starts_with("ERR unknown command"));
            if let Some(key) = key {
                // Most likely a module's command: the key it names is what is missing.
                report.unsupported_key(
                    client.db as u32,
                    key.to_vec(),
                    &format!("written by {name}, a command StayKV lacks"),
                );
            } else {
                let entry = report.command_errors.entry(format!("{name}: {text}")).or_default();
                *entry += 1;
            }
        }
    }
    if client.multi.is_some() {
        // Redis reads it as a cut-off file (aof.c, "Revert incomplete MULTI/EXEC").
        ends_short(path, tail, "ends inside MULTI", "the incomplete transaction is dropped, as Redis does")?;
        engine.disconnect(&mut client, now);
    }
    meter.set(offset);
    meter.finish();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Live source: redis://

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

/// A minimal blocking RESP client.
struct RespClient {
    reader: BufReader<TcpStream>,
}

impl RespClient {
    fn connect(addr: &str) -> Result<RespClient, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
        Ok(RespClient { reader: BufReader::with_capacity(256 * 1024, stream) })
    }

    fn send(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let mut out = BytesMut::new();
        Reply::bulks(args.iter().map(|arg| Bytes::copy_from_slice(arg))).encode(Protocol::Resp2, &mut out);
        self.reader.get_mut().write_all(&out).map_err(|e| format!("write to the source: {e}"))
    }

    fn call(&mut self, args: &[&[u8]]) -> Result<Resp, String> {
        self.send(args)?;
        self.read()
    }

    /// One reply line (a type byte and a length or a short text), of at most
    /// [`MAX_REPLY_LINE`] bytes: a source that never ends one cannot fill memory.
    fn line(&mut self) -> Result<Vec<u8>, String> {
        let mut line = Vec::new();
        let mut limited = (&mut self.reader).take(MAX_REPLY_LINE as u64);
        limited.read_until(b'\n', &mut line).map_err(|e| format!("read from the source: {e}"))?;
        if !line.ends_with(b"\r\n") {
            return Err(if line.len() >= MAX_REPLY_LINE {
                format!("a reply line from the source is longer than {MAX_REPLY_LINE} bytes")
            } else {
                "the source closed the connection".into()
            });
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read(&mut self) -> Result<Resp, String> {
        self.read_nested(0)
    }

    /// A reply `depth` arrays deep: past [`MAX_REPLY_DEPTH`] the source is refused rather than
    /// followed down until the stack overflows.
    fn read_nested(&mut self, depth: usize) -> Result<Resp, String> {
        if depth > MAX_REPLY_DEPTH {
            return Err(format!("a reply from the source is nested deeper than {MAX_REPLY_DEPTH} arrays"));
        }
        let line = self.line()?;
        let (&kind, rest) = line.split_first().ok_or("empty reply line")?;
        let text = String::from_utf8_lossy(rest).into_owned();
        let int = || text.parse::<i64>().map_err(|_| format!("bad reply {text:?}"));
        Ok(match kind {
            b'+' => Resp::Simple(text),
            b'-' => Resp::Error(text),
            b':' => Resp::Int(int()?),
            b'$' => {
                let len = int()?;
                if len < 0 {
                    Resp::Bulk(None)
                } else {
                    let mut data = Vec::new();
                    let want = len as u64 + 2;
                    let got = (&mut self.reader).take(want).read_to_end(&mut data).map_err(|e| e.to_string())?;
                    if got as u64 != want {
                        return Err("the source closed the connection".into());
                    }
                    data.truncate(len as usize);
                    Resp::Bulk(Some(data))
                }
            }
            b'*' => {
                let n = int()?;
                if n < 0 {
                    Resp::Array(None)
                } else {
                    let mut items = Vec::with_capacity((n as usize).min(1024));
                    for _ in 0..n {
                        items.push(self.read_nested(depth + 1)?);
                    }
                    Resp::Array(Some(items))
                }
            }
            other => return Err(format!("unexpected reply type {:?}", other as char)),
        })
    }
}

/// The longest reply line another server may send us (a `redis://` source, a MIGRATE
/// target): a type byte and a number, or a status or error text.
pub(crate) const MAX_REPLY_LINE: usize = 64 * 1024;
/// The deepest a source's reply may nest arrays (the replies read here nest two).
const MAX_REPLY_DEPTH: usize = 32;

/// `redis://[user:password@]host[:port][/db]` → (address, user, password, db).
/// Where a `redis://` source is: address, user, password, database.
type RedisUrl = (String, Option<String>, Option<String>, Option<u32>);

fn parse_redis_url(url: &str) -> Result<RedisUrl, String> {
    if url.starts_with("rediss://") {
        return Err("rediss:// (TLS) sources are not supported: import from a redis:// address or a dump.rdb".into());
    }
    let rest = url.strip_prefix("redis://").ok_or("expected redis://host:port")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => ((!user.is_empty()).then(|| user.to_string()), Some(pass.to_string())),
            None => (None, Some(u.to_string())),
        },
        None => (None, None),
    };
    let hostport = if hostport.is_empty() { "127.0.0.1:6379".to_string() } else { hostport.to_string() };
    let addr = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        hostport
    } else {
        format!("{hostport}:6379")
    };
    let db = match path.trim_end_matches('/') {
        "" => None,
        n => Some(n.parse::<u32>().map_err(|_| format!("bad database number {n:?} in {url}"))?),
    };
    Ok((addr, user, password, db))
}

fn import_live(url: &str, engine: &Engine, report: &mut Report) -> Result<(), String> {
    let (addr, user, password, only_db) = parse_redis_url(url)?;
    let mut conn = RespClient::connect(&addr)?;
    if let Some(password) = &password {
        authenticate(&mut conn, user.as_deref(), password)?;
    }
    let dbs: Vec<(u32, u64)> =
        keyspace_dbs(&mut conn)?.into_iter().filter(|(db, _)| only_db.is_none_or(|only| only == *db)).collect();
    let total: u64 = dbs.iter().map(|(_, keys)| keys).sum();
    // Deadlines as the source stores them (PEXPIRETIME, Redis 7.0 and later), not remaining
    // times that would shift by the round trip; from an older Redis, PTTL.
    let deadline_command: &[u8] = match conn.call(&[b"PEXPIRETIME", b"staykv-import-probe"])? {
        Resp::Int(_) => b"PEXPIRETIME",
        _ => b"PTTL",
    };
    let mut meter = Meter::new(&format!("reading {addr}"), Some(total), "keys");
    for (db, _) in dbs {
        let db_text = db.to_string();
        if let Resp::Error(e) = conn.call(&[b"SELECT", db_text.as_bytes()])? {
            return Err(format!("SELECT {db} failed: {e}"));
        }
        let mut cursor = b"0".to_vec();
        loop {
            let (next, keys) = scan_page(&mut conn, &cursor)?;
            for key in &keys {
                conn.send(&[deadline_command, key])?;
                conn.send(&[b"DUMP", key])?;
            }
            let now = crate::clock::now_ms();
            for key in keys {
                let (deadline, dump) = (conn.read()?, conn.read()?);
                meter.inc(1);
                let expire_at = match deadline {
                    Resp::Int(-2) => continue,
                    Resp::Int(ms) if ms >= 0 && deadline_command == b"PTTL" => now + ms as u64,
                    Resp::Int(ms) if ms >= 0 => ms as u64,
                    _ => NO_EXPIRY,
                };
                import_dumped_key(engine, report, db, key, dump, expire_at, now)?;
            }
            cursor = next;
            if cursor == b"0" {
                break;
            }
        }
    }
    meter.finish();
    import_live_functions(&mut conn, engine, report)
}

fn authenticate(conn: &mut RespClient, user: Option<&str>, password: &str) -> Result<(), String> {
    let reply = match user {
        Some(user) => conn.call(&[b"AUTH", user.as_bytes(), password.as_bytes()])?,
        None => conn.call(&[b"AUTH", password.as_bytes()])?,
    };
    match reply {
        Resp::Error(e) => Err(format!("AUTH failed: {e}")),
        _ => Ok(()),
    }
}

/// The source's databases that hold keys, and how many each, from `INFO keyspace`.
fn keyspace_dbs(conn: &mut RespClient) -> Result<Vec<(u32, u64)>, String> {
    let info = match conn.call(&[b"INFO", b"keyspace"])? {
        Resp::Bulk(Some(text)) => String::from_utf8_lossy(&text).into_owned(),
        Resp::Error(e) => return Err(format!("INFO keyspace failed: {e}")),
        other => return Err(format!("unexpected reply to INFO: {other:?}")),
    };
    let mut dbs = Vec::new();
    for line in info.lines() {
        let Some((name, fields)) = line.trim().split_once(':') else { continue };
        let Some(db) = name.strip_prefix("db").and_then(|n| n.parse::<u32>().ok()) else { continue };
        let keys =
            fields.split(',').find_map(|f| f.strip_prefix("keys=")).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        dbs.push((db, keys));
    }
    Ok(dbs)
}

/// One `SCAN cursor COUNT 1000`: the next cursor and the keys.
fn scan_page(conn: &mut RespClient, cursor: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let reply = conn.call(&[b"SCAN", cursor, b"COUNT", b"1000"])?;
    let Resp::Array(Some(parts)) = reply else {
        return Err(format!("unexpected reply to SCAN: {reply:?}"));
    };
    let mut parts = parts.into_iter();
    let (Some(Resp::Bulk(Some(next))), Some(Resp::Array(Some(keys))), None) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err("unexpected reply to SCAN".into());
    };
    let keys = keys
        .into_iter()
        .filter_map(|k| match k {
            Resp::Bulk(Some(k)) => Some(k),
            _ => None,
        })
        .collect();
    Ok((next, keys))
}

/// Loads `key` of database `db` from its DUMP reply; a key gone meanwhile is passed over, a
/// type StayKV does not hold is reported.
fn import_dumped_key(
    engine: &Engine,
    report: &mut Report,
    db: u32,
    key: Vec<u8>,
    dump: Resp,
    expire_at: u64,
    now: u64,
) -> Result<(), String> {
    let payload = match dump {
        Resp::Bulk(Some(p)) => p,
        Resp::Bulk(None) => return Ok(()),
        Resp::Error(e) => return Err(format!("DUMP of key {:?} failed: {e}", String::from_utf8_lossy(&key))),
        other => return Err(format!("unexpected reply to DUMP: {other:?}")),
    };
    match decode_dump_payload(&payload) {
        Ok(value) => match value_from_rdb(value) {
            // A SCAN may name a key twice: the later DUMP replaces the first.
            Ok(value) => drop(load_entry(engine, db as usize, key, value, expire_at, now)?),
            Err(kind) => report.unsupported_key(db, key, kind),
        },
        Err(RdbError::Unsupported { .. }) => {
            let kind = payload.first().map_or("unknown", |t| snapshot::rdb_type_name(*t));
            report.unsupported_key(db, key, kind);
        }
        Err(e) => {
            return Err(format!(
                "DUMP payload of key {:?} cannot be read ({e}); StayKV reads the format of Redis up to 7.0",
                String::from_utf8_lossy(&key)
            ))
        }
    }
    Ok(())
}

fn import_live_functions(conn: &mut RespClient, engine: &Engine, report: &mut Report) -> Result<(), String> {
    let libraries = match conn.call(&[b"FUNCTION", b"LIST", b"WITHCODE"])? {
        Resp::Array(Some(libraries)) => libraries,
        Resp::Error(e) if e.starts_with("ERR unknown command") => return Ok(()),
        Resp::Error(e) => {
            report.function_errors.push(format!("FUNCTION LIST failed: {e}"));
            return Ok(());
        }
        other => return Err(format!("unexpected reply to FUNCTION LIST: {other:?}")),
    };
    for library in libraries {
        // RESP2 flattens each library's map into name, value, name, value, ...
        let Resp::Array(Some(fields)) = library else { continue };
        let code = fields.chunks(2).find_map(|pair| match pair {
            [Resp::Bulk(Some(name)), Resp::Bulk(Some(code))] if name == b"library_code" => Some(code),
            _ => None,
        });
        let Some(code) = code else { continue };
        if let Err(error) = snapshot::load_function(engine, code) {
            report.function_errors.push(error);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parses_manifest() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\nfile \"append only.aof.1.incr.aof\" seq 1 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n";
        let files = parse_aof_manifest(text).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(files[1].name, "append only.aof.1.incr.aof");
        assert_eq!(files[2], AofFile { name: "appendonly.aof.2.incr.aof".into(), seq: 2, kind: 'i' });
        assert!(parse_aof_manifest("file ../x seq 1 type b").is_err());
        // What Redis refuses: an unknown type, an empty manifest.
        assert!(parse_aof_manifest("file a seq 1 type x").unwrap_err().contains("unknown AOF file type"));
        assert!(parse_aof_manifest("file a seq 1 type bb").is_err());
        assert!(parse_aof_manifest("# nothing\n\n").unwrap_err().contains("lists no file"));
    }

    #[test]
    fn parses_urls() {
        assert_eq!(parse_redis_url("redis://127.0.0.1:7000").unwrap(), ("127.0.0.1:7000".into(), None, None, None));
        assert_eq!(
            parse_redis_url("redis://u:p@h:1/3").unwrap(),
            ("h:1".into(), Some("u".into()), Some("p".into()), Some(3))
        );
        assert_eq!(parse_redis_url("redis://:pw@h").unwrap(), ("h:6379".into(), None, Some("pw".into()), None));
        assert!(parse_redis_url("rediss://h:1").is_err());
    }

    /// A client of a source that sends `reply` once.
    fn client_of_a_source_sending(reply: Vec<u8>) -> RespClient {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let _ = socket.write_all(&reply);
        });
        RespClient::connect(&addr).unwrap()
    }

    /// A hostile source cannot crash the import: arrays nested a million deep used to be
    /// followed until the stack overflowed, and a line that never ends to fill memory.
    #[test]
    fn a_hostile_source_is_refused_not_followed() {
        let deep = client_of_a_source_sending(b"*1\r\n".repeat(1_000_000)).read().unwrap_err();
        assert!(deep.contains("nested deeper than 32"), "{deep}");
        let long = client_of_a_source_sending(vec![b'+'; 1 << 20]).read().unwrap_err();
        assert!(long.contains("longer than 65536 bytes"), "{long}");
        let nested = client_of_a_source_sending(b"*2\r\n*1\r\n:1\r\n$1\r\nx\r\n".to_vec()).read().unwrap();
        assert!(matches!(nested, Resp::Array(Some(items)) if items.len() == 2));
    }

    /// Two manifests: which one Redis loads is its configuration's, so neither is guessed.
    #[test]
    fn a_directory_with_two_manifests_is_refused_but_a_named_manifest_imports() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b"] {
            std::fs::write(
                dir.path().join(format!("{name}.aof.manifest")),
                format!("file {name}.incr.aof seq 1 type i\n"),
            )
            .unwrap();
            std::fs::write(dir.path().join(format!("{name}.incr.aof")), "*1\r\n$4\r\nPING\r\n").unwrap();
        }
        let refused = import_aof_dir(dir.path(), &tool_engine(), &mut Report::default()).unwrap_err();
        assert!(refused.contains("holds 2 AOF manifests"), "{refused}");
        // Named, a manifest is imported; one part of an AOF alone is refused.
        let mut report = Report::default();
        import_aof_manifest(&dir.path().join("b.aof.manifest"), &tool_engine(), &mut report).unwrap();
        assert_eq!(report.commands, 1);
        let part = refuse_part_of_multi_part_aof(&dir.path().join("a.incr.aof")).unwrap_err();
        assert!(part.contains("one part of the AOF that") && part.contains("a.aof.manifest"), "{part}");
        assert!(refuse_part_of_multi_part_aof(&dir.path().join("other.aof")).is_ok());
    }

    /// A cut-off command is forgiven at the end of an AOF's last file only, as Redis does.
    #[test]
    fn only_the_last_aof_file_may_end_cut_off() {
        let set = |key: &str| format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n", key.len());
        let cut = "*3\r\n$3\r\nSET\r\n$1\r\nx";
        let import = |base: &str, incr: &str| {
            let dir = tempfile::tempdir().unwrap();
            let manifest = "file a.base.aof seq 1 type b\nfile a.incr.aof seq 2 type i\n";
            std::fs::write(dir.path().join("a.aof.manifest"), manifest).unwrap();
            std::fs::write(dir.path().join("a.base.aof"), base).unwrap();
            std::fs::write(dir.path().join("a.incr.aof"), incr).unwrap();
            let engine = tool_engine();
            import_aof_dir(dir.path(), &engine, &mut Report::default()).map(|()| key_count(&engine))
        };
        assert_eq!(import(&set("a"), &(set("b") + cut)), Ok(2));
        let multi = "*1\r\n$5\r\nMULTI\r\n";
        assert_eq!(import(&set("a"), &(set("b") + multi + &set("c"))), Ok(2));
        let refused = import(&(set("a") + multi + &set("c")), &set("b")).unwrap_err();
        assert!(refused.contains("a.base.aof ends inside MULTI") && refused.contains("not the last"), "{refused}");
        let refused = import(&(set("a") + cut), &set("b")).unwrap_err();
        assert!(
            refused.contains("a.base.aof ends with an incomplete command at offset 27")
                && refused.contains("not the last"),
            "{refused}"
        );
    }

    #[test]
    fn reads_commands_and_truncation() {
        let data =
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*3\r\n$3\r\nSET\r\n$1\r\nk";
        let mut r = &data[..];
        let mut off = 0;
        assert_eq!(read_command(&mut r, &mut off).unwrap().unwrap().len(), 2);
        assert_eq!(read_command(&mut r, &mut off).unwrap().unwrap()[2], Bytes::from("v"));
        assert!(matches!(read_command(&mut r, &mut off), Err((_, true, _))));
        let mut bad = &b"garbage\r\n"[..];
        assert!(matches!(read_command(&mut bad, &mut 0), Err((_, false, _))));
        let mut empty = &b""[..];
        assert!(read_command(&mut empty, &mut 0).unwrap().is_none());
        // `aof-timestamp-enabled` annotations are skipped, at the end too.
        let mut stamped = &b"#TS:1796534667\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n#TS:1796534668\r\n"[..];
        assert_eq!(read_command(&mut stamped, &mut 0).unwrap().unwrap()[0], Bytes::from("GET"));
        assert!(read_command(&mut stamped, &mut 0).unwrap().is_none());
        // A line with a bare LF is read as Redis reads it, not taken for a cut.
        let mut lf = &b"*2\n$3\r\nGET\r\n$1\nk\r\n"[..];
        assert_eq!(read_command(&mut lf, &mut 0).unwrap().unwrap()[1], Bytes::from("k"));
        // Only a line the file ends inside, starting as expected, is a cut; other bytes with
        // no line end (a compressed file, say) are no AOF at all.
        for (tail, cut) in
            [(&b"*3"[..], true), (b"*1\r\n$3", true), (b"\x1f\x8b\x08\x00", false), (b"*1\r\nGET", false)]
        {
            let outcome = read_command(&mut &tail[..], &mut 0);
            assert!(matches!(outcome, Err((_, c, _)) if c == cut), "{tail:?}: {outcome:?}");
        }
    }
}
