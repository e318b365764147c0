//! The `MANIFEST` file: names the live snapshot and the ordered live segments.
//!
//! Text format (UTF-8, `\n` line ends), version 1:
//!
//! ```text
//! STAYKV-MANIFEST 1
//! snapshot snap-00000000000003e8.rdb 1000
//! segment log-00000000000003e9.skv
//! segment log-0000000000000a21.skv
//! crc32c 1a2b3c4d
//! ```
//!
//! The `snapshot` line is optional (at most one: file name and the last seq it covers).
//! At least one `segment` line, in increasing first-seq order. The last line holds the CRC32C
//! (8 lowercase hex digits) of every byte before it. It is replaced atomically: write
//! `MANIFEST.tmp`, fdatasync it, rename it over `MANIFEST`, fsync the directory.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::error::StorageError;
use crate::format::parse_segment_file_name;
use crate::fs::Fs;

/// Manifest file name.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// Temporary file the manifest is written to before the rename.
pub const MANIFEST_TMP_FILE: &str = "MANIFEST.tmp";
/// Manifest format version written by this build.
pub const MANIFEST_VERSION: u32 = 1;
/// A manifest larger than this is rejected (never allocate blindly).
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;
const MAGIC: &str = "STAYKV-MANIFEST";

/// The live snapshot named by the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    /// File name inside the data directory.
    pub file: String,
    /// Every frame with `seq <= seq` is contained in the snapshot.
    pub seq: u64,
}

/// Parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The live snapshot, if any.
    pub snapshot: Option<SnapshotRef>,
    /// Live segment file names, oldest first. Never empty in a valid manifest.
    pub segments: Vec<String>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
}

impl Manifest {
    /// Serializes to the text format.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = String::new();
        let _ = writeln!(s, "{MAGIC} {MANIFEST_VERSION}");
        if let Some(snap) = &self.snapshot {
            let _ = writeln!(s, "snapshot {} {}", snap.file, snap.seq);
        }
        for seg in &self.segments {
            let _ = writeln!(s, "segment {seg}");
        }
        let crc = crc32c::crc32c(s.as_bytes());
        let _ = writeln!(s, "crc32c {crc:08x}");
        s.into_bytes()
    }

    /// Parses the text format. Errors are `(byte offset, reason)`; a newer version is
    /// reported as `Err(Ok(version))`.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, Result<u32, (u64, String)>> {
        let text = std::str::from_utf8(bytes).map_err(|e| Err((e.valid_up_to() as u64, "not UTF-8".to_string())))?;
        // Version first, so a newer layout is refused with the right message.
        let first = text.lines().next().unwrap_or("");
        let version = first
            .strip_prefix(MAGIC)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| Err((0, "not a StayKV manifest (bad first line)".to_string())))?;
        let version: u32 = version.trim().parse().map_err(|_| Err((0, format!("bad manifest version {version:?}"))))?;
        if version > MANIFEST_VERSION {
            return Err(Ok(version));
        }
        if version == 0 {
            return Err(Err((0, "bad manifest version 0".to_string())));
        }
        if !text.ends_with('\n') {
            return Err(Err((bytes.len() as u64, "incomplete manifest (no final newline)".to_string())));
        }
        let body_end = text
            .get(..text.len() - 1)
            .and_then(|t| t.rfind('\n'))
            .map(|i| i + 1)
            .ok_or_else(|| Err((0, "manifest has no checksum line".to_string())))?;
        let (body, crc_line) = text.split_at(body_end);
        let crc_hex = crc_line
            .trim_end_matches('\n')
            .strip_prefix("crc32c ")
            .ok_or_else(|| Err((body_end as u64, "missing checksum line".to_string())))?;
        let stored =
            u32::from_str_radix(crc_hex, 16).map_err(|_| Err((body_end as u64, "bad checksum line".to_string())))?;
        if crc32c::crc32c(body.as_bytes()) != stored {
            return Err(Err((body_end as u64, "manifest checksum mismatch".to_string())));
        }
        let mut snapshot = None;
        let mut segments: Vec<String> = Vec::new();
        let mut last_seq: Option<u64> = None;
        let mut off = 0u64;
        for (i, line) in body.lines().enumerate() {
            let here = off;
            off += line.len() as u64 + 1;
            if i == 0 {
                continue;
            }
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("snapshot"), Some(file), Some(seq), None) => {
                    if snapshot.is_some() || !segments.is_empty() {
                        return Err(Err((here, "misplaced snapshot line".to_string())));
                    }
                    if !valid_name(file) {
                        return Err(Err((here, format!("bad snapshot file name {file:?}"))));
                    }
                    let seq: u64 = seq.parse().map_err(|_| Err((here, format!("bad snapshot seq {seq:?}"))))?;
                    snapshot = Some(SnapshotRef { file: file.to_string(), seq });
                }
                (Some("segment"), Some(file), None, None) => {
                    let seq = parse_segment_file_name(file)
                        .ok_or_else(|| Err((here, format!("bad segment file name {file:?}"))))?;
                    if last_seq.is_some_and(|l| seq <= l) {
                        return Err(Err((here, format!("segment {file} out of order"))));
                    }
                    last_seq = Some(seq);
                    segments.push(file.to_string());
                }
                _ => return Err(Err((here, format!("unrecognized manifest line {line:?}")))),
            }
        }
        if segments.is_empty() {
            return Err(Err((off, "manifest lists no segment".to_string())));
        }
        Ok(Manifest { snapshot, segments })
    }
}

/// Reads `dir/MANIFEST`; `Ok(None)` if it does not exist.
pub fn read_manifest(fs: &dyn Fs, dir: &Path) -> Result<Option<Manifest>, StorageError> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = match fs.read_all(&path, MAX_MANIFEST_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => return Err(StorageError::corrupt(path, 0, e.to_string())),
        Err(e) => return Err(StorageError::io("read", path, e)),
    };
    match Manifest::decode(&bytes) {
        Ok(m) => Ok(Some(m)),
        Err(Ok(found)) => Err(StorageError::UnsupportedVersion { file: path, found, supported: MANIFEST_VERSION }),
        Err(Err((offset, reason))) => Err(StorageError::corrupt(path, offset, reason)),
    }
}

/// Failure of [`write_manifest`].
#[derive(Debug)]
pub(crate) struct ManifestWriteError {
    /// Whether the rename happened (the new manifest is visible, maybe not yet durable).
    pub renamed: bool,
    pub error: StorageError,
}

/// Atomically replaces `dir/MANIFEST`: write temp, fdatasync, rename, fsync dir.
pub(crate) fn write_manifest(fs: &dyn Fs, dir: &Path, m: &Manifest) -> Result<(), ManifestWriteError> {
    let tmp = dir.join(MANIFEST_TMP_FILE);
    let path = dir.join(MANIFEST_FILE);
    let early = |op, p: &Path, e| ManifestWriteError { renamed: false, error: StorageError::io(op, p, e) };
    let bytes = m.encode();
    let mut f = fs.create(&tmp).map_err(|e| early("create", &tmp, e))?;
    f.write_all(&bytes).map_err(|e| early("write", &tmp, e))?;
    f.sync_data().map_err(|e| early("fsync", &tmp, e))?;
    drop(f);
    fs.rename(&tmp, &path).map_err(|e| early("rename", &tmp, e))?;
    fs.sync_dir(dir)
        .map_err(|e| ManifestWriteError { renamed: true, error: StorageError::io("fsync directory", dir, e) })?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::simfs::SimFs;
    use std::path::PathBuf;

    fn sample() -> Manifest {
        Manifest {
            snapshot: Some(SnapshotRef { file: "snap-00000000000003e8.rdb".into(), seq: 1000 }),
            segments: vec!["log-00000000000003e9.skv".into(), "log-0000000000000a21.skv".into()],
        }
    }

    #[test]
    fn roundtrip() {
        let m = sample();
        let b = m.encode();
        assert_eq!(Manifest::decode(&b).unwrap(), m);
        let m2 = Manifest { snapshot: None, segments: vec!["log-0000000000000001.skv".into()] };
        assert_eq!(Manifest::decode(&m2.encode()).unwrap(), m2);
    }

    #[test]
    fn any_flipped_byte_or_truncation_is_rejected() {
        let b = sample().encode();
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x01;
            assert!(Manifest::decode(&c).is_err(), "flip at {i}");
            assert!(Manifest::decode(&b[..i]).is_err(), "truncated at {i}");
        }
    }

    #[test]
    fn newer_version_refused() {
        let text = "STAYKV-MANIFEST 2\nwhatever\n";
        assert_eq!(Manifest::decode(text.as_bytes()), Err(Ok(2)));
        let fs = SimFs::new();
        let dir = PathBuf::from("/d");
        fs.create_dir_all(&dir).unwrap();
        fs.write_file_durable(&dir.join(MANIFEST_FILE), text.as_bytes()).unwrap();
        let e = read_manifest(&fs, &dir).unwrap_err();
        assert!(matches!(e, StorageError::UnsupportedVersion { found: 2, .. }));
        assert!(e.to_string().contains("upgrade StayKV"));
    }

    /// Power cut at every operation of a manifest replacement: the manifest read back is
    /// always exactly the old or the new one.
    #[test]
    fn replacement_is_atomic_under_power_cut() {
        let dir = PathBuf::from("/d");
        let old = Manifest { snapshot: None, segments: vec!["log-0000000000000001.skv".into()] };
        let new = sample();
        let mut saw_old = false;
        let mut saw_new = false;
        for cut_op in 1..=8u64 {
            for seed in 0..40u64 {
                let fs = SimFs::new();
                fs.create_dir_all(&dir).unwrap();
                write_manifest(&fs, &dir, &old).unwrap();
                let base = fs.op_count();
                fs.schedule_power_cuts([(base + cut_op, seed)]);
                write_manifest(&fs, &dir, &new).unwrap();
                let imgs = fs.take_power_cut_images();
                let img = match imgs.into_iter().next() {
                    Some((_, img)) => img,
                    None => fs.power_cut(seed), // after the last op
                };
                let got = read_manifest(&img, &dir).unwrap().unwrap();
                if got == old {
                    saw_old = true;
                } else {
                    assert_eq!(got, new);
                    saw_new = true;
                }
            }
        }
        assert!(saw_old && saw_new);
    }
}
