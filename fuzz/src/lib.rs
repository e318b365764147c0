//! A small mutation-based fuzzer that runs on stable Rust.
//!
//! cargo-fuzz needs a nightly compiler; this driver needs nothing. Each [`Target`] is a
//! function from bytes to a small *signature* (a hash of what the input made the code do:
//! which error, how many items, which types...). The driver starts from the target's seeds
//! and the corpus files kept in the repository (`fuzz/corpus/<target>/`), mutates inputs
//! (bit flips, interesting bytes and numbers, insertions, deletions, duplications,
//! dictionary tokens, splices), and keeps every input whose signature is new as a parent for
//! further mutation: a coarse stand-in for coverage feedback.
//!
//! A panic in a target is a crash: the input is written to `fuzz/crashes/<target>/` and the
//! run fails. An input that takes longer than [`Options::slow`] is reported the same way
//! (a denial-of-service bug). Runs are seeded and reproducible.
//!
//! * `cargo test -p staykv-fuzz` runs every target for a bounded number of iterations (CI).
//! * `cargo run --release -p staykv-fuzz -- <target|all> <seconds>` runs for longer and prints
//!   the figures the README reports.

// A test harness: panics are how targets report findings, and indices stay within inputs.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod targets;

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// One fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    /// Run one input; panics are crashes. Returns the input's signature.
    pub run: fn(&[u8]) -> u64,
    /// Built-in seed inputs (in addition to `fuzz/corpus/<name>/`).
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Tokens worth inserting (protocol keywords, magic numbers).
    pub dictionary: &'static [&'static [u8]],
    /// Inputs are kept at most this long.
    pub max_len: usize,
}

/// How long to run and where files go.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub max_iterations: u64,
    pub max_time: Duration,
    /// An input slower than this is a failure.
    pub slow: Duration,
    /// Where the repository's corpus lives (`fuzz/corpus`).
    pub corpus_dir: PathBuf,
    /// Where crashing inputs are written (`fuzz/crashes`).
    pub crash_dir: PathBuf,
    /// Add inputs with new signatures to the corpus directory (long local runs).
    pub save_new: bool,
}

impl Options {
    /// Paths relative to this crate; everything else from the arguments.
    pub fn new(seed: u64, max_iterations: u64, max_time: Duration) -> Options {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Options {
            seed,
            max_iterations,
            max_time,
            slow: Duration::from_secs(5),
            corpus_dir: root.join("corpus"),
            crash_dir: root.join("crashes"),
            save_new: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    pub iterations: u64,
    pub elapsed: Duration,
    pub corpus_start: usize,
    pub corpus_end: usize,
    pub signatures: usize,
    pub slowest: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "{}: {} execs in {:.0} s ({:.0}/s), corpus {} -> {}, {} distinct signatures, slowest input {:.1} ms, no crash",
            self.target,
            self.iterations,
            secs,
            self.iterations as f64 / secs,
            self.corpus_start,
            self.corpus_end,
            self.signatures,
            self.slowest.as_secs_f64() * 1000.0
        )
    }
}

/// A failure: the input was saved at `path`.
#[derive(Debug, Clone)]
pub struct Failure {
    pub target: &'static str,
    pub message: String,
    pub path: Option<PathBuf>,
    pub input: Vec<u8>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (input of {} bytes", self.target, self.message, self.input.len())?;
        match &self.path {
            Some(path) => write!(f, " saved to {})", path.display()),
            None => write!(f, ")"),
        }
    }
}

/// Run every file of `dir` through the target (regression inputs); returns how many ran.
pub fn replay_dir(target: &Target, dir: &Path) -> Result<usize, Failure> {
    let mut count = 0;
    for input in read_dir_files(dir) {
        run_one(target, &input).map_err(|message| Failure { target: target.name, message, path: None, input })?;
        count += 1;
    }
    Ok(count)
}

fn read_dir_files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    paths.sort();
    paths.into_iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn run_one(target: &Target, input: &[u8]) -> Result<u64, String> {
    catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|payload| {
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        format!("panicked: {text}")
    })
}

fn hash_bytes(data: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// New corpus files one run may add (the repository keeps a sample, not everything).
const MAX_SAVED: usize = 64;

/// Fuzz `target` until the iteration or time budget runs out, or it fails.
pub fn fuzz(target: &Target, options: &Options) -> Result<Report, Failure> {
    let started = Instant::now();
    let corpus_path = options.corpus_dir.join(target.name);
    let mut corpus: Vec<Vec<u8>> = (target.seeds)();
    corpus.extend(read_dir_files(&corpus_path));
    corpus.retain(|c| c.len() <= target.max_len);
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let corpus_start = corpus.len();
    let mut signatures = HashSet::new();
    let mut slowest = Duration::ZERO;
    let fail = |message: String, input: Vec<u8>| {
        let dir = options.crash_dir.join(target.name);
        let path = dir.join(format!("crash-{:016x}", hash_bytes(&input)));
        let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &input)).ok().map(|()| path);
        Failure { target: target.name, message, path: saved, input }
    };
    // The seeds first, as they are.
    for input in corpus.clone() {
        let t = Instant::now();
        let signature = run_one(target, &input).map_err(|m| fail(m, input.clone()))?;
        slowest = slowest.max(t.elapsed());
        signatures.insert(signature);
    }
    let mut rng = SmallRng::seed_from_u64(options.seed ^ hash_bytes(target.name.as_bytes()));
    let mut iterations = 0u64;
    let mut saved = 0;
    let mut input = Vec::new();
    while iterations < options.max_iterations && started.elapsed() < options.max_time {
        iterations += 1;
        let parent = &corpus[rng.gen_range(0..corpus.len())];
        input.clear();
        input.extend_from_slice(parent);
        mutate(&mut rng, &mut input, &corpus, target.dictionary, target.max_len);
        let t = Instant::now();
        let signature = run_one(target, &input).map_err(|m| fail(m, input.clone()))?;
        let took = t.elapsed();
        if took > options.slow {
            return Err(fail(format!("slow input: {} ms", took.as_millis()), input.clone()));
        }
        slowest = slowest.max(took);
        if signatures.insert(signature) && corpus.len() < 50_000 {
            if options.save_new && saved < MAX_SAVED {
                saved += 1;
                let _ = std::fs::create_dir_all(&corpus_path);
                let _ = std::fs::write(corpus_path.join(format!("new-{:016x}", hash_bytes(&input))), &input);
            }
            corpus.push(input.clone());
        }
    }
    Ok(Report {
        target: target.name,
        iterations,
        elapsed: started.elapsed(),
        corpus_start,
        corpus_end: corpus.len(),
        signatures: signatures.len(),
        slowest,
    })
}

const INTERESTING_BYTES: &[u8] = &[
    0, 1, 2, 0x7f, 0x80, 0x81, 0xfe, 0xff, b'\r', b'\n', b' ', b'"', b'\\', b'*', b'$', b'?', b'[', b']', b'-', b'^',
    b'0', b'9',
];
const INTERESTING_NUMBERS: &[&[u8]] = &[
    b"0",
    b"-1",
    b"1",
    b"-0",
    b"255",
    b"256",
    b"1024",
    b"65536",
    b"2147483647",
    b"2147483648",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"18446744073709551615",
    b"99999999999999999999",
    b"536870912",
    b"536870913",
];

/// Apply 1 to 8 stacked mutations.
pub fn mutate(rng: &mut SmallRng, data: &mut Vec<u8>, corpus: &[Vec<u8>], dictionary: &[&[u8]], max_len: usize) {
    let rounds = 1 << rng.gen_range(0..4);
    for _ in 0..rounds {
        let len = data.len();
        match rng.gen_range(0..13) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] = rng.gen();
            }
            2 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] = INTERESTING_BYTES[rng.gen_range(0..INTERESTING_BYTES.len())];
            }
            3 => {
                let i = rng.gen_range(0..=len);
                let n = rng.gen_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                data.splice(i..i, bytes);
            }
            4 if len > 0 => {
                let start = rng.gen_range(0..len);
                let end = (start + rng.gen_range(1..=16.min(len - start).max(1))).min(len);
                data.drain(start..end);
            }
            5 if len > 0 => {
                let start = rng.gen_range(0..len);
                let end = (start + rng.gen_range(1..=64)).min(len);
                let chunk = data[start..end].to_vec();
                let at = rng.gen_range(0..=len);
                data.splice(at..at, chunk);
            }
            6 | 7 if !dictionary.is_empty() => {
                let token = dictionary[rng.gen_range(0..dictionary.len())];
                let i = rng.gen_range(0..=len);
                if rng.gen_bool(0.5) || i + token.len() > len {
                    data.splice(i..i, token.iter().copied());
                } else {
                    data[i..i + token.len()].copy_from_slice(token);
                }
            }
            8 if !corpus.is_empty() => {
                let other = &corpus[rng.gen_range(0..corpus.len())];
                if !other.is_empty() {
                    let cut = rng.gen_range(0..=len);
                    let from = rng.gen_range(0..other.len());
                    data.truncate(cut);
                    data.extend_from_slice(&other[from..]);
                }
            }
            9 => replace_number(rng, data),
            10 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] = data[i].wrapping_add(rng.gen_range(1..=4)).wrapping_sub(if rng.gen() { 4 } else { 0 });
            }
            11 if len > 1 => data.truncate(rng.gen_range(0..len)),
            12 if len >= 4 => {
                // Overwrite 2, 4 or 8 bytes with an extreme little-endian integer.
                let width = [2usize, 4, 8][rng.gen_range(0..3)].min(len);
                let i = rng.gen_range(0..=len - width);
                let value: u64 = [0, 1, u64::MAX, u64::MAX >> 1, 1 << 31, 1 << 32, 0x80][rng.gen_range(0..7)];
                data[i..i + width].copy_from_slice(&value.to_le_bytes()[..width]);
            }
            _ => {}
        }
    }
    data.truncate(max_len);
}

/// Replace a run of ASCII digits (a length, a count) with an interesting number.
fn replace_number(rng: &mut SmallRng, data: &mut Vec<u8>) {
    let starts: Vec<usize> =
        (0..data.len()).filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit())).collect();
    let number = INTERESTING_NUMBERS[rng.gen_range(0..INTERESTING_NUMBERS.len())];
    match starts.get(rng.gen_range(0..starts.len().max(1))) {
        Some(&start) => {
            let mut end = start;
            while end < data.len() && data[end].is_ascii_digit() {
                end += 1;
            }
            data.splice(start..end, number.iter().copied());
        }
        None => {
            let i = rng.gen_range(0..=data.len());
            data.splice(i..i, number.iter().copied());
        }
    }
}

/// Iterations and time for `cargo test`: `STAYKV_FUZZ_SECS` (default 4 s per target) and
/// `STAYKV_FUZZ_ITERS` (default 200,000), seed `STAYKV_FUZZ_SEED` (default 1).
pub fn test_options() -> Options {
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    Options::new(
        env("STAYKV_FUZZ_SEED", 1),
        env("STAYKV_FUZZ_ITERS", 200_000),
        Duration::from_secs(env("STAYKV_FUZZ_SECS", 4)),
    )
}

/// A stable signature from a few values.
pub fn signature(parts: &[u64]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Hash of a string (signature part).
pub fn hash_str(text: &str) -> u64 {
    hash_bytes(text.as_bytes())
}

/// Hash of a few numbers (signature part).
pub fn hash_u64s(values: &[u64]) -> u64 {
    signature(values)
}
