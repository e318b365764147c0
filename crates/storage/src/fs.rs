//! The filesystem abstraction every file operation of this crate goes through.
//!
//! [`RealFs`] maps it onto `std::fs` (with `File::sync_data` = fdatasync, and `sync_dir` =
//! open the directory and fsync it). [`crate::SimFs`] is an in-memory implementation that
//! models what a power cut can leave behind, used by the tests.
//!
//! Write handles append: every [`FsFile::write_all`] goes to the current end of the file, so
//! after [`FsFile::set_len`] the next write continues at the new end. [`FsFile::write_all_at`]
//! writes at a given offset instead: the log writes into zero-filled segments that way.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// An open file.
pub trait FsFile: Send + fmt::Debug {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Reads up to `buf.len()` bytes at `offset`; returns 0 at end of file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Appends all of `data` at the end of the file (only on handles from `create`/`open_append`).
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`, over the bytes there and past the end of the file as
    /// needed (only on handles from `create`/`open_append`; `offset` at most the length).
    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Makes the file's data (and the size needed to read it) durable: fdatasync. Fails if
    /// the file no longer has a name: what it holds is then gone at the next start whatever
    /// the fsync did (its directory was deleted under the server).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Truncates or extends the file to `len` bytes (not durable until `sync_data`).
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// A second handle on the same open file (`dup`): an fsync through it covers, and reports
    /// the errors of, writes made through either.
    fn try_clone(&self) -> io::Result<Box<dyn FsFile>>;
    /// Starts writing `len` bytes at `offset` to the disk without waiting for them: a hint
    /// that shortens the next `sync_data`, never a durability point (a write error still
    /// comes from `sync_data`). Does nothing by default.
    fn start_writeback(&self, _offset: u64, _len: u64) {}

    /// Reads exactly `buf.len()` bytes at `offset`, failing with `UnexpectedEof` otherwise.
    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(offset, buf)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected end of file"));
            }
            let rest = std::mem::take(&mut buf);
            buf = rest.get_mut(n..).unwrap_or_default();
            offset = offset.saturating_add(n as u64);
        }
        Ok(())
    }
}

/// A filesystem. All operations of the storage crate go through this trait.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Creates `dir` and its parents if missing (made durable by `sync_dir` of the parents).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` (or truncates it to 0 bytes) and opens it for appending.
    /// The new directory entry is durable only after `sync_dir` of the parent.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Opens an existing file for appending (writes go to its end).
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Opens an existing file for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Atomically renames `from` to `to`, replacing `to` (durable after `sync_dir`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file (durable after `sync_dir`).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Names of the regular files in `dir` (not recursive), in no particular order.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes the creates, renames and removes in `dir` durable (fsync of the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Bytes free for this process on the filesystem holding `dir`, if known.
    fn available_bytes(&self, _dir: &Path) -> io::Result<Option<u64>> {
        Ok(None)
    }

    /// Removes a file if it is there: a file already gone is not an error.
    fn remove_if_present(&self, path: &Path) -> io::Result<()> {
        match self.remove(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            result => result,
        }
    }

    /// Reads a whole file, refusing files larger than `max` bytes.
    fn read_all(&self, path: &Path, max: u64) -> io::Result<Vec<u8>> {
        let f = self.open_read(path)?;
        let len = f.len()?;
        if len > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file is {len} bytes, more than the {max} allowed"),
            ));
        }
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        f.read_exact_at(0, &mut buf)?;
        Ok(buf)
    }
}

/// The real filesystem (`std::fs`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl RealFs {
    /// A new handle (stateless).
    pub fn new() -> Self {
        RealFs
    }
}

#[derive(Debug)]
struct RealFile {
    file: File,
    path: PathBuf,
}

impl FsFile for RealFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    #[cfg(unix)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        loop {
            match self.file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    #[cfg(windows)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::windows::fs::FileExt;
        self.file.seek_read(buf, offset)
    }

    #[cfg(not(any(unix, windows)))]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = &self.file;
        f.seek(SeekFrom::Start(offset))?;
        f.read(buf)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let end = self.len()?;
        self.write_all_at(end, data)
    }

    #[cfg(unix)]
    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(data, offset)
    }

    #[cfg(not(unix))]
    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(data)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        self.file.sync_data()?;
        // One fstat, against the fdatasync's tens of microseconds or more.
        if self.file.metadata()?.nlink() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the file was deleted (was the data directory removed?): its data is not durable",
            ));
        }
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn try_clone(&self) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(RealFile { file: self.file.try_clone()?, path: self.path.clone() }))
    }

    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn start_writeback(&self, offset: u64, len: u64) {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) else { return };
        // SAFETY: the descriptor is this open file's; the call takes no pointers. Its result
        // is ignored on purpose: it starts writeback without waiting, and a writeback error
        // stays recorded for the next fdatasync to report.
        let _ = unsafe { libc::sync_file_range(self.file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
    }
}

impl Fs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    // Not `O_APPEND`: Linux would ignore the offset of every `write_all_at` on such a handle.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        Ok(Box::new(RealFile { file, path: path.to_path_buf() }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(RealFile { file, path: path.to_path_buf() }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = File::open(path)?;
        Ok(Box::new(RealFile { file, path: path.to_path_buf() }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            if let Ok(name) = entry.file_name().into_string() {
                out.push(name);
            }
        }
        Ok(out)
    }

    #[cfg(unix)]
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    #[cfg(not(unix))]
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        // Directory handles cannot be fsynced portably; NTFS journals metadata.
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    #[allow(unsafe_code)]
    fn available_bytes(&self, dir: &Path) -> io::Result<Option<u64>> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `path` is NUL-terminated and outlives the call; `stat` is the buffer the
        // call fills, read only after it succeeded.
        if unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: statvfs returned 0, so it filled `stat`.
        let stat = unsafe { stat.assume_init() };
        Ok(Some(stat.f_bavail.saturating_mul(stat.f_frsize)))
    }
}
