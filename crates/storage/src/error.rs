//! Error types.

use std::io;
use std::path::PathBuf;

/// Boxed error returned by replay callbacks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the storage layer (opening, recovery, check/fix, rotation, snapshots).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A filesystem operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("write", "fsync", "open", ...).
        op: &'static str,
        /// File or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Damaged data that is not a torn tail. Nothing is changed on disk.
    #[error(
        "corrupt data in {} at byte offset {offset}: {reason}. StayKV refuses to start on \
         damaged data; run `staykv check --fix` to see what is damaged and repair it",
        file.display()
    )]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage in that file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file was written by a newer format version than this build understands.
    #[error(
        "{} uses format version {found}, newer than version {supported} supported by this \
         StayKV build; upgrade StayKV to open this data directory",
        file.display()
    )]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Version found.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// Data files exist but the manifest does not.
    #[error(
        "data directory {} has no MANIFEST but contains data files ({}); refusing to start \
         empty over existing data. Run `staykv check --fix` to rebuild the MANIFEST from \
         these files, or move them away to start with an empty dataset",
        dir.display(), files.join(", ")
    )]
    MissingManifest {
        /// The data directory.
        dir: PathBuf,
        /// Data files found.
        files: Vec<String>,
    },
    /// The replay callback failed on a frame.
    #[error("replaying log frame seq {seq} failed: {source}")]
    Replay {
        /// Sequence number of the frame.
        seq: u64,
        /// The callback's error.
        #[source]
        source: BoxError,
    },
    /// The snapshot callback failed.
    #[error("loading snapshot {file} failed: {source}")]
    Snapshot {
        /// Snapshot file name.
        file: String,
        /// The callback's error.
        #[source]
        source: BoxError,
    },
    /// The log has been closed.
    #[error("the log is closed")]
    Closed,
    /// A caller error (bad argument or state).
    #[error("{0}")]
    Invalid(String),
}

impl StorageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io { op, path: path.into(), source }
    }

    pub(crate) fn corrupt(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        StorageError::Corrupt { file: file.into(), offset, reason: reason.into() }
    }
}

/// Errors of [`crate::Log::append`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The payload exceeds [`crate::MAX_PAYLOAD_LEN`].
    #[error("log payload of {len} bytes exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// Payload size.
        len: usize,
        /// Maximum allowed.
        max: u32,
    },
    /// The log has been closed.
    #[error("the log is closed")]
    Closed,
}
