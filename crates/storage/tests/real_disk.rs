//! The log on the real filesystem (`RealFs`) in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use staykv_storage::{check, fix, snapshot_file_name, Fs, FsyncPolicy, Log, LogOptions, RealFs, StorageError};

fn real_open(dir: &Path, policy: FsyncPolicy) -> Result<(Log, staykv_storage::Recovery, Collect), StorageError> {
    let mut c = Collect::default();
    // Segments that end at their last frame: the test cuts and flips bytes counted from there
    // (zero-filled segments on a real disk: the last test).
    let o = LogOptions { fsync: policy, segment_bytes: 4096, zero_filled_segments: false, ..LogOptions::default() };
    let (log, rec) = Log::open(dir, Arc::new(RealFs) as Arc<dyn Fs>, o, &mut c)?;
    Ok((log, rec, c))
}

fn seg_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("log-") && n.ends_with(".skv"))
        .collect();
    v.sort();
    v
}

#[test]
fn real_disk_roundtrip_rotation_snapshot_torn_tail_and_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");

    // Concurrent appends under `always`, with rotation.
    let (log, rec, _) = real_open(&dir, FsyncPolicy::Always).unwrap();
    assert!(rec.fresh);
    let log = Arc::new(log);
    let handles: Vec<_> = (0..2u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..150 {
                    let p = payload(t, i, 60);
                    let seq = log.append(&p).unwrap();
                    if i % 10 == 0 {
                        assert!(log.wait_durable(seq, Some(Duration::from_secs(30))));
                    }
                    mine.push((seq, p));
                }
                mine
            })
        })
        .collect();
    let mut data: Vec<(u64, Vec<u8>)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    data.sort();
    Arc::try_unwrap(log).unwrap().close().unwrap();
    assert!(seg_files(&dir).len() > 2, "{:?}", seg_files(&dir));
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).unwrap();
    assert!(manifest.starts_with("STAYKV-MANIFEST 1\n"), "{manifest}");

    let (log, _, c) = real_open(&dir, FsyncPolicy::EverySec).unwrap();
    assert_eq!(c.frames, data);

    // Snapshot: rotate, write the file, install; covered segments are deleted.
    let next = log.rotate().unwrap();
    let name = snapshot_file_name(next - 1);
    std::fs::write(dir.join(&name), b"snapshot").unwrap();
    std::fs::File::open(dir.join(&name)).unwrap().sync_all().unwrap();
    let removed = log.install_snapshot(&name, next - 1).unwrap();
    assert!(!removed.is_empty());
    for r in &removed {
        assert!(!dir.join(r).exists());
    }
    let tail = append_n(&log, 9, 3, 20);
    log.close().unwrap();

    // Torn tail: cut the last frame short.
    let last = seg_files(&dir).pop().unwrap();
    let path = dir.join(&last);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 7).unwrap();
    let (log, rec, c) = real_open(&dir, FsyncPolicy::Always).unwrap();
    assert_eq!(c.snapshot.unwrap().seq, next - 1);
    assert_eq!(c.frames, tail[..2].to_vec());
    let t = rec.torn_tail.unwrap();
    assert_eq!(t.bytes, 36 - 7);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), t.offset);
    let more = append_n(&log, 10, 2, 20);
    assert_eq!(more[0].0, tail[1].0 + 1);
    log.close().unwrap();

    // Corruption in the first frame of the last segment (followed by a valid frame).
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let err = real_open(&dir, FsyncPolicy::Always).err().unwrap();
    assert!(matches!(&err, StorageError::Corrupt { file, offset: 32, .. } if file == &path), "{err}");
    let report = check(&dir, &RealFs).unwrap();
    assert!(!report.is_clean());
    fix(&dir, &RealFs, &report).unwrap();
    assert!(check(&dir, &RealFs).unwrap().is_clean());
    let (_log, _, c) = real_open(&dir, FsyncPolicy::Always).unwrap();
    assert!(c.frames.is_empty());
    assert!(dir.join(format!("{last}.cut-32")).exists());
}

/// Positional writes into a zero-filled spare on the real filesystem (a handle opened for
/// appending would put every frame at the end of the file, after the zeros).
#[test]
fn small_fsyncs_move_the_log_into_zero_filled_segments_on_a_real_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let fs: Arc<dyn Fs> = Arc::new(RealFs);
    small_fsyncs_move_the_log_into_zero_filled_segments(&fs, &dir, || {
        let copy = tmp.path().join(format!("crash-{}", seg_files(&dir).len()));
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        (Arc::new(RealFs) as Arc<dyn Fs>, copy)
    });
}
