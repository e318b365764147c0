//! The spare segment: a zero-filled file, made ahead of time on a thread of its own, that
//! becomes the log's next segment.
//!
//! Appending to a file makes every fdatasync commit filesystem metadata with the data: the
//! new size, the blocks just allocated and, on ext4, the conversion of their "unwritten"
//! extents. Overwriting blocks that already hold zeros commits the data alone. On the
//! development machine (ext4 on a virtio disk), a 2 KiB write + fdatasync took 0.15–0.17 ms
//! appending and 0.10–0.11 ms overwriting zeros (median), and in one run a busy segment at
//! exactly four extents (what an ext4 inode holds without a tree block) had each extent
//! conversion allocate and free a tree block, about 280 a second, each sent to the disk as
//! a discard.
//! Numbers: `docs/log-format.md`, "Zero-filled segments".
//!
//! Zero-filling writes every byte twice, so it pays when fsyncs are small and frequent, not
//! when the log streams at the disk's bandwidth: the writer asks for a spare only under
//! `always`, and only while the segment's fsyncs average less than
//! [`SMALL_SYNC_BYTES`] (see `Writer::consider_spare`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::format::SPARE_SEGMENT_FILE;
use crate::fs::Fs;

/// Below this many bytes per fsync on average, a segment's fsyncs are "small": the next
/// segment is worth zero-filling. At 256 KiB, `redis-benchmark -t set -P 16` under `always`
/// (about 140 KiB per fsync) had a third of its log zero-filled first, the zeros 6% of the
/// server's CPU; with 64 KiB it appends: 297k against 270k SET/s mean, 4.05 against 4.29 s
/// of CPU per million SETs (12 fresh-server alternations, 8 of them faster), p99 no higher
/// (median of four 7.5 against 9.4 ms); at `-P 8`, 180k against 174k. Unpipelined SETs and
/// the session workload fsync 5–20 KiB at a time and keep their spares.
pub(crate) const SMALL_SYNC_BYTES: u64 = 64 << 10;

/// The writer judges the average after this many fsyncs of a segment, and again every as many.
pub(crate) const JUDGE_EVERY_SYNCS: u64 = 64;

/// A spare's size (unless `segment_bytes` is smaller): a zero-filled segment is sealed at its
/// file's end. Small, so that one is ready soon after a start or a compaction's rotation
/// (about half a second of paced zeros under load, against 3.5–6 s for 256 MiB): fresh
/// servers, which append until then, ran `redis-benchmark -t set -P 1` under `always` at
/// 23.4k requests/s mean against 20.1k with 256 MiB spares (six alternations, compaction
/// on; p99 11.2 against 9.6 ms, the rotations). Appended segments keep `segment_bytes`:
/// `everysec` and large fsyncs stream, and each rotation holds the writes up for a few
/// fsyncs (with 32 MiB segments for everything, `everysec` SET -P 16 lost 13%).
const SPARE_BYTES: u64 = 32 << 20;

/// The length of the spares made for segments of `segment_bytes`.
pub(crate) fn spare_bytes(segment_bytes: u64) -> u64 {
    segment_bytes.min(SPARE_BYTES)
}

/// Zeros are written and fdatasynced this much at a time, so that no more than this is
/// queued at the disk ahead of an fsync of the log (about 1 ms of writing at 300 MB/s).
const ZERO_CHUNK: usize = 256 << 10;

/// After each chunk the maker rests this many times as long as the chunk took: the zeros
/// take at most a quarter of the disk's time. At full speed, 256 MiB of them held up the
/// log's fsyncs enough to cost `redis-benchmark -t set -P 1` (`always`) 11% of its throughput.
const REST_FACTOR: u32 = 3;

/// After a failure (a full disk, say) the next attempt waits this long: the log goes on
/// with appended segments meanwhile.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// A spare is made only on a disk with this much free besides it. It is an optimisation: the
/// space is the log's, and its compactions', first. Without the margin, a spare on a nearly
/// full disk took the last of it (a partial spare left behind at that), and the log's own
/// writes failed for good: each time the operator freed space, a new spare took it again.
const FREE_BESIDES_SPARE: u64 = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// The writer asked for a spare of this many bytes.
    Wanted(u64),
    Making,
    Ready,
    /// A failure: nothing is made before the retry time.
    Resting,
    Stopped,
}

/// The spare segment shared by the log writer (which asks for it and takes it) and the
/// thread that makes it ([`run_spare_maker`]).
#[derive(Debug)]
pub(crate) struct Spare {
    path: PathBuf,
    state: Mutex<State>,
    cv: Condvar,
    /// `state` is `Ready`: read at every round of the writer, without the lock.
    ready: AtomicBool,
}

impl Spare {
    pub(crate) fn new(dir: &Path) -> Self {
        Spare {
            path: dir.join(SPARE_SEGMENT_FILE),
            state: Mutex::new(State::Idle),
            cv: Condvar::new(),
            ready: AtomicBool::new(false),
        }
    }

    /// Where the spare is made; [`Spare::take`] hands it over to be renamed.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Asks for a spare of `len` bytes, unless one is already asked for, being made or ready.
    pub(crate) fn request(&self, len: u64) {
        let mut s = self.state.lock();
        if *s == State::Idle {
            *s = State::Wanted(len);
            self.cv.notify_all();
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Takes the ready spare, if there is one: the file at [`Spare::path`] is the caller's.
    pub(crate) fn take(&self) -> bool {
        let mut s = self.state.lock();
        if *s != State::Ready {
            return false;
        }
        *s = State::Idle;
        self.ready.store(false, Ordering::Release);
        true
    }

    /// Stops the maker thread (a spare being made is left unfinished).
    pub(crate) fn stop(&self) {
        *self.state.lock() = State::Stopped;
        self.ready.store(false, Ordering::Release);
        self.cv.notify_all();
    }

    fn stopped(&self) -> bool {
        *self.state.lock() == State::Stopped
    }

    /// Sleeps `pause`, unless stopped meanwhile.
    fn rest_for(&self, pause: Duration) {
        let mut s = self.state.lock();
        if *s != State::Stopped {
            let _ = self.cv.wait_for(&mut s, pause);
        }
    }

    /// Waits for a request; `None` once stopped.
    fn next_request(&self) -> Option<u64> {
        let mut s = self.state.lock();
        loop {
            match *s {
                State::Wanted(len) => {
                    *s = State::Making;
                    return Some(len);
                }
                State::Stopped => return None,
                _ => self.cv.wait(&mut s),
            }
        }
    }

    /// Offers a spare of `len` bytes found whole at start, unless stopped meanwhile.
    fn offer(&self, len: u64) {
        let mut s = self.state.lock();
        if *s == State::Idle || *s == State::Wanted(len) {
            *s = State::Ready;
            self.ready.store(true, Ordering::Release);
        }
    }

    /// Publishes the outcome of making a spare.
    fn made(&self, ok: bool) {
        let mut s = self.state.lock();
        if *s == State::Making {
            *s = if ok { State::Ready } else { State::Resting };
            self.ready.store(ok, Ordering::Release);
        }
    }

    /// After a failure: waits [`RETRY_AFTER`] (or until stopped), then takes requests again.
    fn rest(&self) {
        let mut s = self.state.lock();
        if *s == State::Resting {
            let _ = self.cv.wait_for(&mut s, RETRY_AFTER);
        }
        if *s == State::Resting {
            *s = State::Idle;
        }
    }
}

/// The maker thread: first takes up the spare a previous run left, if it is whole
/// ([`adopt_leftover`]), then makes a spare each time the writer asks for one, until stopped.
/// Spares are `len` bytes.
pub(crate) fn run_spare_maker(spare: &Spare, fs: &dyn Fs, len: u64) {
    if adopt_leftover(spare, fs, len) {
        spare.offer(len);
    }
    while let Some(len) = spare.next_request() {
        if let Err(e) = room_for(spare, fs, len) {
            // Routine on a small disk: said at debug level, not every retry as a warning.
            tracing::debug!(error = %e, "no zero-filled log segment: the disk is short of room for one");
            spare.made(false);
            spare.rest();
            continue;
        }
        match make(spare, fs, len) {
            Ok(()) => spare.made(!spare.stopped()),
            Err(e) => {
                tracing::warn!(file = %spare.path.display(), error = %e,
                    "could not make a zero-filled log segment; new segments are appended to meanwhile");
                // What was written of it is the disk space the log may need now.
                if let Err(e) = fs.remove_if_present(&spare.path) {
                    tracing::warn!(file = %spare.path.display(), error = %e, "could not remove an unfinished spare segment");
                }
                spare.made(false);
                spare.rest();
            }
        }
    }
}

/// Whether the disk has room for a spare of `len` bytes and [`FREE_BESIDES_SPARE`] more.
fn room_for(spare: &Spare, fs: &dyn Fs, len: u64) -> std::io::Result<()> {
    let dir = spare.path.parent().unwrap_or(Path::new("."));
    match fs.available_bytes(dir)? {
        Some(free) if free < len.saturating_add(FREE_BESIDES_SPARE) => Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!("{} MiB free, under the spare's size and {} MiB besides", free >> 20, FREE_BESIDES_SPARE >> 20),
        )),
        _ => Ok(()),
    }
}

/// Whether the spare file a previous run left (the log leaves it at start) is a whole spare:
/// `len` bytes, all zero, read at the pace zeros are written; then it is fdatasynced, as a
/// spare being made would be. Anything else there is removed (unless the log is closing,
/// which removes it itself). Removing a ready 256 MiB spare at start made ext4 (mounted
/// `discard`) discard its blocks in the start's directory fsync: 141–279 ms before the first
/// reply of a restart (six restarts), against under 1 ms without the file.
fn adopt_leftover(spare: &Spare, fs: &dyn Fs, len: u64) -> bool {
    if !fs.exists(&spare.path).unwrap_or(false) {
        return false;
    }
    match whole_spare(spare, fs, len) {
        Ok(true) => return true,
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(file = %spare.path.display(), error = %e, "could not read a spare segment left by the last run")
        }
    }
    if !spare.stopped() {
        if let Err(e) = fs.remove(&spare.path) {
            tracing::warn!(file = %spare.path.display(), error = %e, "could not remove a spare segment left by the last run");
        }
    }
    false
}

fn whole_spare(spare: &Spare, fs: &dyn Fs, len: u64) -> std::io::Result<bool> {
    let mut file = fs.open_append(&spare.path)?;
    if file.len()? != len {
        return Ok(false);
    }
    let mut chunk = vec![0u8; ZERO_CHUNK];
    let zeros = paced(spare, len, |offset, n| {
        let part = chunk.get_mut(..n).unwrap_or_default();
        file.read_exact_at(offset, part)?;
        Ok(part.iter().all(|&b| b == 0))
    })?;
    if zeros {
        file.sync_data()?;
    }
    Ok(zeros)
}

/// Writes `len` zero bytes to the spare file, fdatasynced, at a quarter of the disk's time
/// (stops early if asked to).
fn make(spare: &Spare, fs: &dyn Fs, len: u64) -> std::io::Result<()> {
    let mut file = fs.create(&spare.path)?;
    let zeros = vec![0u8; ZERO_CHUNK];
    paced(spare, len, |offset, n| {
        file.write_all_at(offset, zeros.get(..n).unwrap_or_default())?;
        file.sync_data()?;
        Ok(true)
    })
    .map(drop)
}

/// Goes over `len` bytes of the spare file, [`ZERO_CHUNK`] at a time, calling `step(offset,
/// bytes)` for each chunk and resting [`REST_FACTOR`] times as long as it took: at most a
/// quarter of the disk's time. False if `step` said to stop, or the maker was stopped.
fn paced(spare: &Spare, len: u64, mut step: impl FnMut(u64, usize) -> std::io::Result<bool>) -> std::io::Result<bool> {
    let mut done = 0u64;
    while done < len {
        if spare.stopped() {
            return Ok(false);
        }
        let started = Instant::now();
        let n = usize::try_from(len - done).map_or(ZERO_CHUNK, |left| left.min(ZERO_CHUNK));
        if !step(done, n)? {
            return Ok(false);
        }
        done += n as u64;
        spare.rest_for(started.elapsed() * REST_FACTOR);
    }
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::simfs::SimFs;
    use std::sync::Arc;

    /// Waits up to 10 s for `done`, failing with `what` after.
    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn wait_ready(spare: &Spare) {
        wait_for("no spare made", || spare.is_ready());
    }

    /// A spare for the directory `/d` of `fs`, and its maker thread.
    fn start(fs: &SimFs) -> (Arc<Spare>, std::thread::JoinHandle<()>) {
        fs.create_dir_all(Path::new("/d")).unwrap();
        let spare = Arc::new(Spare::new(Path::new("/d")));
        let maker = {
            let (spare, fs) = (Arc::clone(&spare), fs.clone());
            std::thread::spawn(move || run_spare_maker(&spare, &fs, 1 << 20))
        };
        (spare, maker)
    }

    #[test]
    fn a_requested_spare_is_made_zero_filled_durable_and_taken_once() {
        let fs = SimFs::new();
        let (spare, maker) = start(&fs);
        assert!(!spare.is_ready());
        let len = 3 * (1 << 20) + 5;
        spare.request(len as u64);
        wait_ready(&spare);
        // The zeros are durable before the spare is offered (its name becomes durable when
        // the log renames it and fsyncs the directory).
        fs.sync_dir(Path::new("/d")).unwrap();
        let image = fs.power_cut(1);
        let content = image.read_file(spare.path()).unwrap();
        assert_eq!(content.len(), len);
        assert!(content.iter().all(|&b| b == 0));
        assert!(spare.take());
        assert!(!spare.take(), "a spare is handed over once");
        assert!(!spare.is_ready());
        spare.stop();
        maker.join().unwrap();
    }

    #[test]
    fn a_whole_spare_left_by_the_last_run_is_taken_up_and_anything_else_removed() {
        let len = 1 << 20;
        let whole = vec![0u8; len];
        let mut stained = whole.clone();
        stained[len / 2] = 7;
        for (left, taken) in [(whole.clone(), true), (whole[..len - 1].to_vec(), false), (stained, false)] {
            let fs = SimFs::new();
            fs.create_dir_all(Path::new("/d")).unwrap();
            let path = Path::new("/d").join(SPARE_SEGMENT_FILE);
            fs.create(&path).unwrap().write_all(&left).unwrap();
            let (spare, maker) = start(&fs);
            if taken {
                wait_ready(&spare);
                assert_eq!(fs.read_all(&path, u64::MAX).unwrap(), whole, "taken up as it was");
            } else {
                wait_for("a bad spare was kept", || !fs.exists(&path).unwrap());
                assert!(!spare.is_ready());
            }
            spare.stop();
            maker.join().unwrap();
        }
    }

    /// A spare the disk runs out of space for is removed, not left to hold the space the log
    /// needs; and none is made on a disk without room for it and a margin besides.
    #[test]
    fn an_unfinished_spare_is_removed_and_none_is_made_on_a_nearly_full_disk() {
        let fs = SimFs::new();
        let (spare, maker) = start(&fs);
        fs.fail_writes(1, crate::simfs::Fault::NoSpace);
        spare.request(1 << 20);
        wait_for("the unfinished spare was left", || fs.faults_pending().0 == 0 && !fs.exists(spare.path()).unwrap());
        spare.stop();
        maker.join().unwrap();

        let fs = SimFs::new();
        fs.set_available(Some(FREE_BESIDES_SPARE + (1 << 20) - 1));
        let (spare, maker) = start(&fs);
        spare.request(1 << 20);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!spare.is_ready() && !fs.exists(spare.path()).unwrap(), "a spare was made on a nearly full disk");
        spare.stop();
        maker.join().unwrap();

        let fs = SimFs::new();
        fs.set_available(Some(FREE_BESIDES_SPARE + (1 << 20)));
        let (spare, maker) = start(&fs);
        spare.request(1 << 20);
        wait_ready(&spare);
        spare.stop();
        maker.join().unwrap();
    }

    #[test]
    fn a_failed_spare_is_not_offered_and_the_maker_stops_when_told() {
        let fs = SimFs::new();
        let (spare, maker) = start(&fs);
        fs.fail_writes(1, crate::simfs::Fault::NoSpace);
        spare.request(1 << 20);
        wait_for("the maker never tried", || fs.faults_pending().0 == 0);
        std::thread::sleep(Duration::from_millis(20));
        assert!(!spare.is_ready());
        assert!(!spare.take());
        // Resting: a new request is not taken before the retry time.
        spare.request(1 << 20);
        std::thread::sleep(Duration::from_millis(20));
        assert!(!spare.is_ready());
        spare.stop();
        maker.join().unwrap();
    }
}
