//! `SimFs`: an in-memory [`Fs`] that models durability, power cuts and disk errors.
//!
//! Model:
//! - Each file (inode) has its *current* content (what reads see) and its *durable* content
//!   (what survives a power cut). `sync_data` makes current content durable.
//! - Each directory has durable entries and an ordered list of pending entry operations
//!   (create, rename, remove). `sync_dir` makes them durable. A power cut keeps a random
//!   *prefix* of the pending operations (metadata journals are ordered), possibly none or all.
//!   Directories themselves are created durably at once.
//! - A power cut on a file with unsynced changes leaves one of: the durable content; a prefix
//!   of the current content that keeps at least the synced part (a torn write), whose last
//!   512-byte sector may be garbage; or such a prefix followed by zeros (size updated, data
//!   not written).
//! - Fault injection: the next N `write_all` calls fail (after appending half of their data,
//!   like a partial write); the next N `sync_data`/`sync_dir` calls fail. A failed
//!   `sync_data` also drops the file's unsynced changes from the page cache (current content
//!   reverts to the durable content), so a writer that simply retries the fsync without
//!   rewriting its data loses it, as on Linux after a writeback error.
//!
//! [`SimFs::power_cut`] returns the disk image as a new, independent `SimFs`; the original
//! keeps running (the "dead" process may go on writing into it, which no longer matters).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::fs::{Fs, FsFile};

/// Sector size used for torn-write garbage.
const SECTOR: usize = 512;

/// Kind of error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// ENOSPC: no space left on device.
    NoSpace,
    /// EIO: input/output error.
    Io,
}

impl Fault {
    fn error(self, op: &str) -> io::Error {
        match self {
            Fault::NoSpace => {
                io::Error::new(io::ErrorKind::StorageFull, format!("No space left on device (injected ENOSPC in {op})"))
            }
            Fault::Io => io::Error::other(format!("Input/output error (injected EIO in {op})")),
        }
    }
}

/// Small deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi` (returns `lo` if `hi < lo`).
    pub(crate) fn range(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as usize
    }
    pub(crate) fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }
}

#[derive(Debug, Clone, Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Lowest offset changed since the last sync (only meaningful if `dirty`).
    dirty_from: usize,
    dirty: bool,
}

impl Inode {
    fn mark_dirty(&mut self, from: usize) {
        if self.dirty {
            self.dirty_from = self.dirty_from.min(from);
        } else {
            self.dirty = true;
            self.dirty_from = from;
        }
    }

    fn sync(&mut self) {
        if !self.dirty {
            return;
        }
        let keep = self.dirty_from.min(self.current.len()).min(self.durable.len());
        self.durable.truncate(keep);
        if let Some(rest) = self.current.get(keep..) {
            self.durable.extend_from_slice(rest);
        }
        self.dirty = false;
    }

    /// Content a power cut leaves for this inode.
    fn after_power_cut(&self, rng: &mut SplitMix) -> Vec<u8> {
        if !self.dirty {
            return self.durable.clone();
        }
        let cur_len = self.current.len();
        let from = self.dirty_from.min(cur_len);
        match rng.next_u64() % 10 {
            0..=3 => self.durable.clone(),
            4..=7 => {
                let k = rng.range(from, cur_len);
                let mut out = self.current.get(..k).unwrap_or_default().to_vec();
                if k > from && rng.chance(3, 10) {
                    let start = from.max((k - 1) / SECTOR * SECTOR);
                    for b in out.get_mut(start..k).unwrap_or_default() {
                        *b = (rng.next_u64() & 0xff) as u8;
                    }
                }
                out
            }
            _ => {
                let k = rng.range(from, cur_len);
                let m = rng.range(k, cur_len);
                let mut out = self.current.get(..k).unwrap_or_default().to_vec();
                out.resize(m, 0);
                out
            }
        }
    }
}

#[derive(Debug, Clone)]
enum DirOp {
    Link(String, u64),
    Unlink(String),
    Rename { from: String, to: String, ino: u64 },
}

fn apply_op(map: &mut BTreeMap<String, u64>, op: &DirOp) {
    match op {
        DirOp::Link(name, ino) => {
            map.insert(name.clone(), *ino);
        }
        DirOp::Unlink(name) => {
            map.remove(name);
        }
        DirOp::Rename { from, to, ino } => {
            map.remove(from);
            map.insert(to.clone(), *ino);
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Dir {
    durable: BTreeMap<String, u64>,
    current: BTreeMap<String, u64>,
    pending: Vec<DirOp>,
}

#[derive(Debug, Default)]
struct State {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    dirs: BTreeMap<PathBuf, Dir>,
    fail_writes: u64,
    write_fault: Option<Fault>,
    fail_syncs: u64,
    sync_fault: Option<Fault>,
    op_count: u64,
    scheduled_cuts: BTreeMap<u64, u64>,
    cut_images: Vec<(u64, SimFs)>,
    /// What [`Fs::available_bytes`] reports (`None`: unknown, as by default).
    available: Option<u64>,
}

impl State {
    /// Counts one mutating operation and takes any power-cut image scheduled for it (the image
    /// is the state before the operation runs).
    fn tick(&mut self) {
        self.op_count += 1;
        if let Some(seed) = self.scheduled_cuts.remove(&self.op_count) {
            let img = self.power_cut_image(seed);
            self.cut_images.push((self.op_count, img));
        }
    }

    fn power_cut_image(&self, seed: u64) -> SimFs {
        let mut rng = SplitMix::new(seed ^ 0x005E_ED0F_C0DE);
        let mut new = State { next_ino: self.next_ino, ..State::default() };
        for (path, dir) in &self.dirs {
            let n = dir.pending.len();
            let keep = match rng.next_u64() % 3 {
                0 => 0,
                1 => n,
                _ => rng.range(0, n),
            };
            let mut map = dir.durable.clone();
            for op in dir.pending.iter().take(keep) {
                apply_op(&mut map, op);
            }
            for ino in map.values() {
                if let std::collections::hash_map::Entry::Vacant(v) = new.inodes.entry(*ino) {
                    let content = self.inodes.get(ino).map(|i| i.after_power_cut(&mut rng)).unwrap_or_default();
                    v.insert(Inode { current: content.clone(), durable: content, dirty_from: 0, dirty: false });
                }
            }
            new.dirs.insert(path.clone(), Dir { durable: map.clone(), current: map, pending: Vec::new() });
        }
        SimFs { state: Arc::new(Mutex::new(new)) }
    }

    fn process_crash_image(&self) -> SimFs {
        let mut new = State { next_ino: self.next_ino, ..State::default() };
        for (path, dir) in &self.dirs {
            for ino in dir.current.values() {
                if let Some(i) = self.inodes.get(ino) {
                    new.inodes.insert(*ino, i.clone());
                }
            }
            new.dirs.insert(path.clone(), dir.clone());
        }
        SimFs { state: Arc::new(Mutex::new(new)) }
    }

    fn inode_mut(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "stale simfs inode"))
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        self.dirs.get(&dir).and_then(|d| d.current.get(&name)).copied().ok_or_else(|| not_found(path))
    }
}

/// One use of an injected fault: `fault` while `left` (counted down) is above zero.
fn take_fault(left: &mut u64, fault: Option<Fault>) -> Option<Fault> {
    if *left == 0 {
        return None;
    }
    *left -= 1;
    fault
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file (simfs)", path.display()))
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file name"))?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    Ok((dir, name.to_string()))
}

/// In-memory simulated filesystem. Clones share the same state.
#[derive(Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("SimFs")
            .field("files", &s.inodes.len())
            .field("dirs", &s.dirs.len())
            .field("op_count", &s.op_count)
            .finish()
    }
}

impl SimFs {
    /// An empty filesystem (no directories).
    pub fn new() -> Self {
        SimFs::default()
    }

    /// The disk image a power cut at this instant leaves, as a new independent filesystem.
    /// The same seed on the same state gives the same image.
    pub fn power_cut(&self, seed: u64) -> SimFs {
        self.state.lock().power_cut_image(seed)
    }

    /// The state a process crash (`kill -9`) leaves: everything written to the "OS" survives,
    /// synced or not.
    pub fn process_crash(&self) -> SimFs {
        self.state.lock().process_crash_image()
    }

    /// Number of mutating operations performed so far (create, write, set_len, sync_data,
    /// rename, remove, sync_dir).
    pub fn op_count(&self) -> u64 {
        self.state.lock().op_count
    }

    /// Schedules power cuts: `(op, seed)` takes an image right before mutating operation
    /// number `op` (1-based, see [`SimFs::op_count`]) runs. Collect them with
    /// [`SimFs::take_power_cut_images`].
    pub fn schedule_power_cuts(&self, cuts: impl IntoIterator<Item = (u64, u64)>) {
        let mut s = self.state.lock();
        for (op, seed) in cuts {
            s.scheduled_cuts.insert(op, seed);
        }
    }

    /// Images taken by scheduled power cuts so far, as `(op, image)`.
    pub fn take_power_cut_images(&self) -> Vec<(u64, SimFs)> {
        std::mem::take(&mut self.state.lock().cut_images)
    }

    /// The next `n` `write_all` calls fail with `fault` (each after appending half its data).
    pub fn fail_writes(&self, n: u64, fault: Fault) {
        let mut s = self.state.lock();
        s.fail_writes = n;
        s.write_fault = Some(fault);
    }

    /// Makes [`Fs::available_bytes`] report `bytes` free (writes are not limited by it).
    pub fn set_available(&self, bytes: Option<u64>) {
        self.state.lock().available = bytes;
    }

    /// The next `n` `sync_data`/`sync_dir` calls fail with `fault`.
    pub fn fail_syncs(&self, n: u64, fault: Fault) {
        let mut s = self.state.lock();
        s.fail_syncs = n;
        s.sync_fault = Some(fault);
    }

    /// Injected faults not yet hit: (failing writes, failing syncs) still to come.
    pub fn faults_pending(&self) -> (u64, u64) {
        let s = self.state.lock();
        (s.fail_writes, s.fail_syncs)
    }

    /// Cancels all pending injected faults.
    pub fn clear_faults(&self) {
        let mut s = self.state.lock();
        s.fail_writes = 0;
        s.fail_syncs = 0;
    }

    /// Current content of a file (test helper).
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.state.lock();
        let ino = s.lookup(path).ok()?;
        s.inodes.get(&ino).map(|i| i.current.clone())
    }

    /// Replaces a file's content durably, creating it if needed (test helper: simulates
    /// external damage such as bit rot).
    pub fn write_file_durable(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        let (dir, name) = split(path)?;
        let ino = match s.lookup(path) {
            Ok(ino) => ino,
            Err(_) => {
                s.next_ino += 1;
                let ino = s.next_ino;
                let d = s.dirs.get_mut(&dir).ok_or_else(|| not_found(&dir))?;
                d.current.insert(name.clone(), ino);
                d.durable.insert(name, ino);
                ino
            }
        };
        s.inodes.insert(ino, Inode { current: data.to_vec(), durable: data.to_vec(), dirty_from: 0, dirty: false });
        Ok(())
    }

    fn with_inode<R>(&self, ino: u64, f: impl FnOnce(&mut Inode) -> R) -> io::Result<R> {
        Ok(f(self.state.lock().inode_mut(ino)?))
    }
}

#[derive(Debug)]
struct SimFile {
    fs: SimFs,
    ino: u64,
    writable: bool,
}

fn read_only() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "file opened read-only")
}

impl SimFile {
    /// Writes `data` at `offset` (`None`: at the end). An injected fault writes half of it.
    fn write(&mut self, offset: Option<u64>, data: &[u8]) -> io::Result<()> {
        if !self.writable {
            return Err(read_only());
        }
        let mut s = self.fs.state.lock();
        s.tick();
        let s = &mut *s;
        let fault = take_fault(&mut s.fail_writes, s.write_fault);
        let i = s.inode_mut(self.ino)?;
        let at = offset.map_or(i.current.len(), |o| usize::try_from(o).unwrap_or(usize::MAX));
        if at > i.current.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "simfs: write past the end of the file"));
        }
        let data = match fault {
            Some(_) => data.get(..data.len() / 2).unwrap_or_default(),
            None => data,
        };
        i.mark_dirty(at);
        let (over, past_end) = data.split_at(data.len().min(i.current.len() - at));
        if let Some(dst) = i.current.get_mut(at..at + over.len()) {
            dst.copy_from_slice(over);
        }
        i.current.extend_from_slice(past_end);
        match fault {
            Some(f) => Err(f.error("write")),
            None => Ok(()),
        }
    }
}

impl FsFile for SimFile {
    fn len(&self) -> io::Result<u64> {
        self.fs.with_inode(self.ino, |i| i.current.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.fs.with_inode(self.ino, |i| {
            let off = usize::try_from(offset).unwrap_or(usize::MAX);
            let src = i.current.get(off..).unwrap_or_default();
            let n = src.len().min(buf.len());
            if let (Some(d), Some(s)) = (buf.get_mut(..n), src.get(..n)) {
                d.copy_from_slice(s);
            }
            n
        })
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(None, data)
    }

    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.write(Some(offset), data)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut s = self.fs.state.lock();
        s.tick();
        let s = &mut *s;
        let fault = take_fault(&mut s.fail_syncs, s.sync_fault);
        let i = s.inode_mut(self.ino)?;
        match fault {
            Some(f) => {
                // Writeback failed: the dirty pages are gone.
                i.current = i.durable.clone();
                i.dirty = false;
                Err(f.error("fsync"))
            }
            None => {
                i.sync();
                Ok(())
            }
        }
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if !self.writable {
            return Err(read_only());
        }
        let mut s = self.fs.state.lock();
        s.tick();
        let i = s.inode_mut(self.ino)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let from = len.min(i.current.len());
        i.mark_dirty(from);
        i.current.resize(len, 0);
        Ok(())
    }

    fn try_clone(&self) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(SimFile { fs: self.fs.clone(), ino: self.ino, writable: self.writable }))
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let mut p = Some(dir);
        while let Some(d) = p {
            if d.as_os_str().is_empty() {
                break;
            }
            s.dirs.entry(d.to_path_buf()).or_default();
            p = d.parent();
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.state.lock();
        s.tick();
        let (dir, name) = split(path)?;
        if !s.dirs.contains_key(&dir) {
            return Err(not_found(&dir));
        }
        let ino = match s.lookup(path) {
            Ok(ino) => {
                if let Some(i) = s.inodes.get_mut(&ino) {
                    i.mark_dirty(0);
                    i.current.clear();
                }
                ino
            }
            Err(_) => {
                s.next_ino += 1;
                let ino = s.next_ino;
                s.inodes.insert(ino, Inode::default());
                let d = s.dirs.get_mut(&dir).ok_or_else(|| not_found(&dir))?;
                d.current.insert(name.clone(), ino);
                d.pending.push(DirOp::Link(name, ino));
                ino
            }
        };
        Ok(Box::new(SimFile { fs: self.clone(), ino, writable: true }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let ino = self.state.lock().lookup(path)?;
        Ok(Box::new(SimFile { fs: self.clone(), ino, writable: true }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let ino = self.state.lock().lookup(path)?;
        Ok(Box::new(SimFile { fs: self.clone(), ino, writable: false }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.tick();
        let (dir_a, name_a) = split(from)?;
        let (dir_b, name_b) = split(to)?;
        if dir_a != dir_b {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "simfs: rename across directories"));
        }
        let ino = s.lookup(from)?;
        let d = s.dirs.get_mut(&dir_a).ok_or_else(|| not_found(&dir_a))?;
        d.current.remove(&name_a);
        d.current.insert(name_b.clone(), ino);
        d.pending.push(DirOp::Rename { from: name_a, to: name_b, ino });
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.tick();
        let (dir, name) = split(path)?;
        s.lookup(path)?;
        let d = s.dirs.get_mut(&dir).ok_or_else(|| not_found(&dir))?;
        d.current.remove(&name);
        d.pending.push(DirOp::Unlink(name));
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state.lock();
        let d = s.dirs.get(dir).ok_or_else(|| not_found(dir))?;
        Ok(d.current.keys().cloned().collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.tick();
        if s.fail_syncs > 0 {
            s.fail_syncs -= 1;
            if let Some(f) = s.sync_fault {
                return Err(f.error("fsync(dir)"));
            }
        }
        let d = s.dirs.get_mut(dir).ok_or_else(|| not_found(dir))?;
        let ops = std::mem::take(&mut d.pending);
        for op in &ops {
            apply_op(&mut d.durable, op);
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let s = self.state.lock();
        Ok(s.dirs.contains_key(path) || s.lookup(path).is_ok())
    }

    fn available_bytes(&self, _dir: &Path) -> io::Result<Option<u64>> {
        Ok(self.state.lock().available)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from("/d")
    }

    #[test]
    fn unsynced_create_can_vanish_synced_survives() {
        let fs = SimFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let p = dir().join("a");
        let mut f = fs.create(&p).unwrap();
        f.write_all(b"hello").unwrap();
        f.sync_data().unwrap();
        // Entry not durable yet: some seeds lose the file.
        let lost = (0..50).any(|seed| !fs.power_cut(seed).exists(&p).unwrap());
        assert!(lost);
        fs.sync_dir(&dir()).unwrap();
        for seed in 0..50 {
            let img = fs.power_cut(seed);
            assert_eq!(img.read_file(&p).unwrap(), b"hello");
        }
    }

    #[test]
    fn torn_tail_keeps_synced_prefix() {
        let fs = SimFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let p = dir().join("a");
        let mut f = fs.create(&p).unwrap();
        f.write_all(&[1u8; 1000]).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(&dir()).unwrap();
        f.write_all(&[2u8; 3000]).unwrap();
        let mut lens = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let c = fs.power_cut(seed).read_file(&p).unwrap();
            assert!(c.len() >= 1000 && c.len() <= 4000);
            assert_eq!(&c[..1000], &[1u8; 1000][..]);
            lens.insert(c.len());
        }
        assert!(lens.len() > 10);
    }

    #[test]
    fn rename_is_atomic_and_prefix_ordered() {
        let fs = SimFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let a = dir().join("M");
        let t = dir().join("M.tmp");
        fs.write_file_durable(&a, b"old").unwrap();
        let mut f = fs.create(&t).unwrap();
        f.write_all(b"new").unwrap();
        f.sync_data().unwrap();
        fs.rename(&t, &a).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..100 {
            let img = fs.power_cut(seed);
            let c = img.read_file(&a).unwrap();
            assert!(c == b"old" || c == b"new");
            seen.insert(c);
        }
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn faults() {
        let fs = SimFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let p = dir().join("a");
        let mut f = fs.create(&p).unwrap();
        fs.fail_writes(1, Fault::NoSpace);
        let e = f.write_all(b"abcd").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(fs.read_file(&p).unwrap(), b"ab");
        f.write_all(b"xy").unwrap();
        fs.fail_syncs(1, Fault::Io);
        assert!(f.sync_data().is_err());
        // The unsynced data was dropped.
        assert_eq!(fs.read_file(&p).unwrap(), b"");
    }

    #[test]
    fn scheduled_cut_images() {
        let fs = SimFs::new();
        fs.create_dir_all(&dir()).unwrap();
        fs.schedule_power_cuts([(2, 1), (4, 2)]);
        let p = dir().join("a");
        let mut f = fs.create(&p).unwrap(); // op 1
        f.write_all(b"x").unwrap(); // op 2
        f.sync_data().unwrap(); // op 3
        fs.sync_dir(&dir()).unwrap(); // op 4
        let imgs = fs.take_power_cut_images();
        assert_eq!(imgs.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![2, 4]);
    }
}
