//! Recovery, torn tails, corruption, check/fix, rotation, snapshots, format versions (SimFs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use staykv_storage::{
    check, fix, read_manifest, scan, snapshot_file_name, DamageKind, Fs, FsyncPolicy, Log, LogOptions, NoReplay, SimFs,
    StorageError, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN,
};

const L: usize = 40; // payload length used by most tests
const FRAME: u64 = FRAME_HEADER_LEN + L as u64;

fn frame_start(i: u64) -> u64 {
    SEGMENT_HEADER_LEN + i * FRAME
}

/// `always`, with segments sealed only at their size (never earlier to move into a
/// zero-filled spare), for tests that need to know where segments end.
fn sealed_at_size(segment_bytes: u64) -> LogOptions {
    LogOptions { zero_filled_segments: false, ..opts(FsyncPolicy::Always, segment_bytes) }
}

/// A data dir with one segment of `n` frames (all synced), the log closed.
fn one_segment(n: u64) -> (SimFs, Vec<(u64, Vec<u8>)>, String) {
    let fs = sim();
    let (log, rec, _) = open(&fs, sealed_at_size(1 << 20));
    assert!(rec.fresh);
    let data = append_n(&log, 1, n, L);
    log.close().unwrap();
    let seg = segments(&fs).pop().unwrap();
    (fs, data, seg)
}

fn with_file(fs: &SimFs, name: &str, content: &[u8]) -> SimFs {
    let img = fs.process_crash();
    img.write_file_durable(&data_dir().join(name), content).unwrap();
    img
}

fn try_open(fs: &SimFs) -> Result<(Log, staykv_storage::Recovery, Collect), StorageError> {
    let mut c = Collect::default();
    let (log, rec) = Log::open(data_dir(), Arc::new(fs.clone()) as Arc<dyn Fs>, sealed_at_size(1 << 20), &mut c)?;
    Ok((log, rec, c))
}

#[test]
fn append_close_reopen_replays_everything_in_order() {
    let fs = sim();
    let (log, _, _) = open(&fs, sealed_at_size(1 << 20));
    let mut data = append_n(&log, 1, 50, 10);
    assert_eq!(log.durable_seq(), 50);
    assert_eq!(log.synced_seq(), 50);
    assert_eq!(log.last_seq(), 50);
    drop(log);
    let (log, rec, c) = open(&fs, sealed_at_size(1 << 20));
    assert!(!rec.fresh);
    assert_eq!(rec.frames_replayed, 50);
    assert_eq!(rec.last_seq, 50);
    assert_eq!(c.frames, data);
    // Seqs continue after recovery.
    data.extend(append_n(&log, 2, 5, 0));
    assert_eq!(data.last().unwrap().0, 55);
    log.close().unwrap();
    let (_log, _, c) = open(&fs, sealed_at_size(1 << 20));
    assert_eq!(c.frames, data);
    // Progress reached 100%.
    let p = c.progress.last().unwrap();
    assert_eq!(p.bytes_done, p.bytes_total);
    assert!(c.progress.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
}

#[test]
fn torn_tail_at_every_byte_of_the_last_frame_recovers_the_prefix() {
    let (fs, data, seg) = one_segment(5);
    let full = fs.read_file(&data_dir().join(&seg)).unwrap();
    assert_eq!(full.len() as u64, frame_start(5));
    let mut rng = Rng(7);
    for k in frame_start(4)..=frame_start(5) {
        let prefix = &full[..k as usize];
        // Three shapes of tear: cut; cut then garbage to the frame end; cut then zeros.
        let mut garbage = prefix.to_vec();
        while (garbage.len() as u64) < frame_start(5) {
            garbage.push((rng.next() & 0xff) as u8);
        }
        let mut zeros = prefix.to_vec();
        zeros.resize(frame_start(5) as usize + 100, 0);
        for (shape, content) in [("cut", prefix.to_vec()), ("garbage", garbage), ("zeros", zeros)] {
            if k == frame_start(5) && shape != "zeros" {
                continue; // intact file
            }
            let img = with_file(&fs, &seg, &content);
            let (log, rec, c) = try_open(&img).unwrap_or_else(|e| panic!("shape {shape} cut at {k}: {e}"));
            let expect = if k == frame_start(5) { 5 } else { 4 };
            assert_eq!(c.frames, data[..expect].to_vec(), "shape {shape} cut at {k}");
            let end = frame_start(expect as u64);
            // Zeros right after the last whole frame are no tear: the room a zero-filled
            // segment keeps for the next frames, kept as it is.
            let zeros_after = content[end as usize..].iter().all(|&b| b == 0);
            if zeros_after {
                assert!(rec.torn_tail.is_none(), "shape {shape} cut at {k}");
            } else {
                let t = rec.torn_tail.clone().expect("torn tail reported");
                assert_eq!(t.offset, end);
                assert_eq!(t.bytes, content.len() as u64 - t.offset);
            }
            // The next frame goes right after the last whole one.
            let seq = log.append(b"next").unwrap();
            assert!(log.wait_durable(seq, Some(Duration::from_secs(5))));
            drop(log);
            let (_log, _, reopened) = try_open(&img).unwrap();
            assert_eq!(reopened.frames.len(), expect + 1, "shape {shape} cut at {k}");
            assert_eq!(reopened.frames.last().unwrap().1, b"next".to_vec());
            // The cut and the new frame are durable (zeros after it stay).
            let after = img.power_cut(k);
            let f = after.read_file(&data_dir().join(&seg)).unwrap();
            let next_end = (end + FRAME_HEADER_LEN + 4) as usize;
            assert!(f.len() >= next_end && f[next_end..].iter().all(|&b| b == 0), "shape {shape} cut at {k}");
            assert!(f.len() as u64 <= frame_start(5) + 100, "shape {shape} cut at {k}");
        }
    }
}

#[test]
fn flipped_byte_in_an_earlier_frame_is_corruption_with_file_and_offset() {
    let (fs, _data, seg) = one_segment(5);
    let path = data_dir().join(&seg);
    let full = fs.read_file(&path).unwrap();
    for at in frame_start(1)..frame_start(2) {
        let mut bad = full.clone();
        bad[at as usize] ^= 0x10;
        let img = with_file(&fs, &seg, &bad);
        let err = try_open(&img).err().unwrap_or_else(|| panic!("flip at {at} accepted"));
        match &err {
            StorageError::Corrupt { file, offset, .. } => {
                assert_eq!(file, &path);
                assert_eq!(*offset, frame_start(1), "flip at {at}");
            }
            other => panic!("flip at {at}: unexpected {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&seg), "{msg}");
        assert!(msg.contains(&format!("offset {}", frame_start(1))), "{msg}");
        assert!(msg.contains("staykv check --fix"), "{msg}");
        // Nothing was changed on disk.
        assert_eq!(img.read_file(&path).unwrap(), bad);
    }
    // The same flip in the LAST frame is a torn tail (nothing valid after it).
    let mut bad = full.clone();
    bad[frame_start(4) as usize + 20] ^= 0x10;
    let img = with_file(&fs, &seg, &bad);
    let (_log, rec, c) = try_open(&img).unwrap();
    assert_eq!(c.frames.len(), 4);
    assert_eq!(rec.torn_tail.unwrap().reason, "frame checksum mismatch");
}

#[test]
fn check_and_fix_repair_corruption_in_a_middle_segment() {
    let fs = sim();
    let (log, _, _) = open(&fs, sealed_at_size(300));
    let data = append_n(&log, 3, 40, L);
    log.close().unwrap();
    let segs = segments(&fs);
    assert!(segs.len() >= 4, "{segs:?}");
    let per_seg = {
        let f = fs.read_file(&data_dir().join(&segs[0])).unwrap();
        (f.len() as u64 - SEGMENT_HEADER_LEN) / FRAME
    };
    let path1 = data_dir().join(&segs[1]);
    let mut bad = fs.read_file(&path1).unwrap();
    let off = frame_start(1);
    bad[off as usize + 17] ^= 0xff;
    fs.write_file_durable(&path1, &bad).unwrap();

    let err = try_open(&fs).err().unwrap();
    assert!(matches!(err, StorageError::Corrupt { offset, .. } if offset == off));

    let report = check(&data_dir(), &fs).unwrap();
    assert!(!report.is_clean());
    let d = report.damage.clone().unwrap();
    assert_eq!(d.kind, DamageKind::Corrupt);
    assert_eq!(d.file, segs[1]);
    assert_eq!(d.offset, off);
    assert!(!d.drops_whole_segment);
    assert_eq!(d.segments_dropped, segs[2..].to_vec());
    let kept_frames = per_seg + 1;
    assert_eq!(report.frames_ok, kept_frames);
    assert_eq!(d.frames_dropped, 40 - kept_frames - 1, "all valid frames after the damage");
    let later: u64 = segs[2..].iter().map(|s| fs.read_file(&data_dir().join(s)).unwrap().len() as u64).sum();
    assert_eq!(d.bytes_dropped, bad.len() as u64 - off + later);
    let text = report.to_string();
    assert!(text.contains("CORRUPT"), "{text}");
    assert!(text.contains(&segs[1]), "{text}");

    let out = fix(&data_dir(), &fs, &report).unwrap();
    let (file, at, cut, saved) = out.truncated.clone().unwrap();
    assert_eq!((file.as_str(), at, cut), (segs[1].as_str(), off, bad.len() as u64 - off));
    assert_eq!(fs.read_file(&data_dir().join(&saved)).unwrap(), bad[off as usize..].to_vec());
    assert_eq!(out.dropped.len(), segs.len() - 2);
    assert!(check(&data_dir(), &fs).unwrap().is_clean());
    // A stale report is refused.
    assert!(fix(&data_dir(), &fs, &report).is_err());

    let (log, _, c) = try_open(&fs).unwrap();
    assert_eq!(c.frames, data[..kept_frames as usize].to_vec());
    let more = append_n(&log, 4, 3, L);
    assert_eq!(more[0].0, kept_frames + 1);
    log.close().unwrap();
    let (_log, _, c) = try_open(&fs).unwrap();
    assert_eq!(c.frames.len() as u64, kept_frames + 3);
}

#[test]
fn fix_also_cuts_a_torn_tail_and_is_a_no_op_when_clean() {
    let (fs, _data, seg) = one_segment(3);
    let report = check(&data_dir(), &fs).unwrap();
    assert!(report.is_clean());
    assert!(report.to_string().contains("result: OK"));
    assert_eq!(fix(&data_dir(), &fs, &report).unwrap(), Default::default());
    let full = fs.read_file(&data_dir().join(&seg)).unwrap();
    let img = with_file(&fs, &seg, &full[..full.len() - 3]);
    let report = check(&data_dir(), &img).unwrap();
    let d = report.damage.clone().unwrap();
    assert_eq!(d.kind, DamageKind::TornTail);
    assert_eq!(d.offset, frame_start(2));
    fix(&data_dir(), &img, &report).unwrap();
    assert!(check(&data_dir(), &img).unwrap().is_clean());
}

#[test]
fn rotation_seals_segments_and_explicit_rotate_returns_the_next_seq() {
    let fs = sim();
    let (log, _, _) = open(&fs, opts(FsyncPolicy::Always, 300));
    let mut data = append_n(&log, 5, 30, L);
    let segs = segments(&fs);
    assert!(segs.len() >= 5, "{segs:?}");
    let mut expect_first = 1;
    for s in &segs[..segs.len() - 1] {
        assert_eq!(staykv_storage::parse_segment_file_name(s), Some(expect_first));
        // Sealed at its size, or earlier to move into a zero-filled spare; either way it
        // ends at its last frame, without the zeros it may have had.
        let len = fs.read_file(&data_dir().join(s)).unwrap().len() as u64;
        assert!(
            len > SEGMENT_HEADER_LEN && (len - SEGMENT_HEADER_LEN).is_multiple_of(FRAME),
            "sealed segment {s}: {len} bytes"
        );
        expect_first += (len - SEGMENT_HEADER_LEN) / FRAME;
    }
    assert_eq!(staykv_storage::parse_segment_file_name(segs.last().unwrap()), Some(expect_first));
    let sealed: Vec<Vec<u8>> =
        segs[..segs.len() - 1].iter().map(|s| fs.read_file(&data_dir().join(s)).unwrap()).collect();
    let next = log.rotate().unwrap();
    assert_eq!(next, 31);
    assert_eq!(log.rotate().unwrap(), 31, "rotating an empty segment is a no-op");
    assert_eq!(segments(&fs).last().unwrap(), "log-000000000000001f.skv");
    data.extend(append_n(&log, 6, 10, L));
    // Sealed segments were never written again.
    for (s, before) in segs.iter().zip(&sealed) {
        assert_eq!(&fs.read_file(&data_dir().join(s)).unwrap(), before);
    }
    log.close().unwrap();
    let (_log, rec, c) = open(&fs, sealed_at_size(300));
    assert_eq!(c.frames, data);
    assert_eq!(rec.segments, segments(&fs));
}

#[test]
fn snapshot_install_drops_covered_segments_and_recovery_skips_covered_frames() {
    let fs = sim();
    // The second snapshot must fall inside a segment.
    let (log, _, _) = open(&fs, sealed_at_size(300));
    let data = append_n(&log, 7, 25, L);
    let next = log.rotate().unwrap();
    let s = next - 1;
    assert!(log.install_snapshot("snap-x.rdb", s).is_err(), "file must exist");
    let name = snapshot_file_name(s);
    fs.write_file_durable(&data_dir().join(&name), b"RDB...").unwrap();
    assert!(log.install_snapshot(&name, log.last_seq() + 1).is_err());
    let before = segments(&fs);
    let removed = log.install_snapshot(&name, s).unwrap();
    assert_eq!(removed, before[..before.len() - 1].to_vec());
    for r in &removed {
        assert!(!fs.exists(&data_dir().join(r)).unwrap());
    }
    let after = append_n(&log, 8, 5, L);
    log.close().unwrap();
    let (log, rec, c) = open(&fs, sealed_at_size(300));
    assert_eq!(c.snapshot.as_ref().unwrap().seq, s);
    assert_eq!(c.snapshot.as_ref().unwrap().file, name);
    assert_eq!(c.frames, after);
    assert_eq!(rec.last_seq, 30);
    // A second snapshot in the middle of a segment: frames <= seq are skipped at replay.
    let more = append_n(&log, 9, 5, L);
    let s2 = more[1].0;
    let name2 = snapshot_file_name(s2);
    fs.write_file_durable(&data_dir().join(&name2), b"RDB2").unwrap();
    let removed = log.install_snapshot(&name2, s2).unwrap();
    assert!(removed.contains(&name), "old snapshot removed: {removed:?}");
    log.close().unwrap();
    let (_log, rec, c) = open(&fs, sealed_at_size(300));
    assert_eq!(c.frames, more[2..].to_vec());
    assert!(rec.frames_skipped >= 2);
    let _ = data;
}

#[test]
fn a_dropped_snapshot_larger_than_a_deletion_step_is_deleted() {
    // Files a new manifest drops are cut down 32 MiB at a time before they are unlinked.
    let fs = sim();
    let (log, _, _) = open(&fs, sealed_at_size(300));
    let install = |fill: u8, size: usize| {
        append_n(&log, u64::from(fill), 3, L);
        let seq = log.rotate().unwrap() - 1;
        let name = snapshot_file_name(seq);
        fs.write_file_durable(&data_dir().join(&name), &vec![fill; size]).unwrap();
        (name.clone(), log.install_snapshot(&name, seq).unwrap())
    };
    let (big, _) = install(1, 70 << 20);
    let (small, removed) = install(2, 10);
    assert!(removed.contains(&big), "{removed:?}");
    assert!(!fs.exists(&data_dir().join(&big)).unwrap());
    assert!(fs.exists(&data_dir().join(&small)).unwrap());
    log.close().unwrap();
    let (_log, _, c) = open(&fs, sealed_at_size(300));
    assert_eq!(c.snapshot.unwrap().file, small);
}

#[test]
fn missing_manifest_with_data_refuses_and_without_data_starts_fresh() {
    let (fs, _data, seg) = one_segment(3);
    let img = fs.process_crash();
    img.remove(&data_dir().join("MANIFEST")).unwrap();
    let err = try_open(&img).err().unwrap();
    match &err {
        StorageError::MissingManifest { files, .. } => assert_eq!(files, &vec![seg.clone()]),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("refusing to start empty"));
    assert!(err.to_string().contains("check --fix"), "{err}");
    // A header-only segment (interrupted initialisation) is not data.
    let img2 = fs.process_crash();
    img2.remove(&data_dir().join("MANIFEST")).unwrap();
    img2.write_file_durable(
        &data_dir().join(&seg),
        &fs.read_file(&data_dir().join(&seg)).unwrap()[..SEGMENT_HEADER_LEN as usize],
    )
    .unwrap();
    let (_log, rec, _) = try_open(&img2).unwrap();
    assert!(rec.fresh);
}

/// A MANIFEST that is damaged, or missing beside data, is rebuilt by `fix` from the files:
/// the newest snapshot and the segments after it, so the next start has every frame.
#[test]
fn fix_rebuilds_a_damaged_or_missing_manifest_from_the_files() {
    let fs = sim();
    let (log, _, _) = open(&fs, sealed_at_size(300));
    append_n(&log, 1, 25, L);
    let covered = log.rotate().unwrap() - 1;
    let snapshot = snapshot_file_name(covered);
    fs.write_file_durable(&data_dir().join(&snapshot), b"RDB").unwrap();
    log.install_snapshot(&snapshot, covered).unwrap();
    let after = append_n(&log, 2, 12, L);
    log.close().unwrap();
    // An older snapshot whose deletion a crash interrupted.
    fs.write_file_durable(&data_dir().join(snapshot_file_name(3)), b"OLD").unwrap();
    let listed = read_manifest(&fs, &data_dir()).unwrap().unwrap();
    assert!(listed.segments.len() > 1, "{listed:?}");

    let mut damaged = fs.read_file(&data_dir().join("MANIFEST")).unwrap();
    damaged[20] ^= 0x01;
    let missing = fs.process_crash();
    missing.remove(&data_dir().join("MANIFEST")).unwrap();
    for (img, kept) in [(with_file(&fs, "MANIFEST", &damaged), Some("MANIFEST.damaged")), (missing, None)] {
        let refused = try_open(&img).err().unwrap().to_string();
        assert!(refused.contains("check --fix"), "{refused}");
        let report = check(&data_dir(), &img).unwrap();
        assert!(!report.is_clean() && report.damage.is_none(), "{report}");
        assert_eq!(report.manifest.as_ref(), Some(&listed), "{report}");
        assert!(report.to_string().contains("MANIFEST: DAMAGED"), "{report}");
        let outcome = fix(&data_dir(), &img, &report).unwrap();
        assert_eq!(outcome.manifest_rewritten, Some(kept.map(String::from)));
        if let Some(kept) = kept {
            assert_eq!(img.read_file(&data_dir().join(kept)).unwrap(), damaged);
        }
        assert!(check(&data_dir(), &img).unwrap().is_clean());
        let (_log, rec, c) = try_open(&img).unwrap();
        assert_eq!(c.snapshot.unwrap().file, snapshot);
        assert_eq!(c.frames, after);
        assert_eq!(rec.leftover_files, vec![snapshot_file_name(3)]);
    }
}

#[test]
fn newer_format_versions_are_refused() {
    let (fs, _data, seg) = one_segment(2);
    let mut f = fs.read_file(&data_dir().join(&seg)).unwrap();
    f[12..16].copy_from_slice(&2u32.to_le_bytes());
    let img = with_file(&fs, &seg, &f);
    let err = try_open(&img).err().unwrap();
    assert!(matches!(err, StorageError::UnsupportedVersion { found: 2, supported: 1, .. }), "{err}");
    assert!(err.to_string().contains("upgrade StayKV"));
    assert!(check(&data_dir(), &img).is_err());
    let img = with_file(&fs, "MANIFEST", b"STAYKV-MANIFEST 7\nfuture\n");
    assert!(matches!(try_open(&img).err().unwrap(), StorageError::UnsupportedVersion { found: 7, .. }));
}

#[test]
fn leftovers_are_removed_and_stray_or_missing_segments_refused_then_fixed() {
    let fs = sim();
    let (log, _, _) = open(&fs, sealed_at_size(300));
    append_n(&log, 1, 20, L);
    log.close().unwrap();
    let segs = segments(&fs);
    // Leftovers: manifest temp file, an uninstalled snapshot, a header-only newer segment.
    let img = fs.process_crash();
    img.write_file_durable(&data_dir().join("MANIFEST.tmp"), b"x").unwrap();
    img.write_file_durable(&data_dir().join(snapshot_file_name(5)), b"x").unwrap();
    let newer = staykv_storage::segment_file_name(1000);
    let mut hdr = img.read_file(&data_dir().join(&segs[0])).unwrap();
    hdr.truncate(SEGMENT_HEADER_LEN as usize);
    img.write_file_durable(&data_dir().join(&newer), &hdr).unwrap();
    let report = check(&data_dir(), &img).unwrap();
    assert!(report.is_clean());
    assert_eq!(report.leftover_files.len(), 3);
    let (_log, rec, c) = try_open(&img).unwrap();
    assert_eq!(c.frames.len(), 20);
    assert_eq!(rec.leftover_files.len(), 3);
    for f in &rec.leftover_files {
        assert!(!img.exists(&data_dir().join(f)).unwrap());
    }

    // Missing middle segment.
    let img = fs.process_crash();
    img.remove(&data_dir().join(&segs[1])).unwrap();
    let err = try_open(&img).err().unwrap();
    assert!(err.to_string().contains("missing"), "{err}");
    let report = check(&data_dir(), &img).unwrap();
    let d = report.damage.clone().unwrap();
    assert!(d.drops_whole_segment);
    assert_eq!(d.file, segs[1]);
    fix(&data_dir(), &img, &report).unwrap();
    let (_log, _, c) = try_open(&img).unwrap();
    let first_seg_frames =
        (fs.read_file(&data_dir().join(&segs[0])).unwrap().len() as u64 - SEGMENT_HEADER_LEN) / FRAME;
    assert_eq!(c.frames.len() as u64, first_seg_frames);
    for s in &segs[2..] {
        assert!(img.exists(&data_dir().join(format!("{s}.dropped"))).unwrap());
    }
}

#[test]
fn unlisted_segment_with_frames_is_stray() {
    let fs = sim();
    let (log, _, _) = open(&fs, sealed_at_size(300));
    append_n(&log, 1, 20, L);
    log.close().unwrap();
    let segs = segments(&fs);
    let img = fs.process_crash();
    // Remove the last two segments from the manifest (the very last one is empty: the log
    // rotated after its last write), keep the files: they are now unlisted.
    let mut m = staykv_storage::read_manifest(&img, &data_dir()).unwrap().unwrap();
    let empty = m.segments.pop().unwrap();
    let last = m.segments.pop().unwrap();
    img.write_file_durable(&data_dir().join("MANIFEST"), &m.encode()).unwrap();
    let err = try_open(&img).err().unwrap();
    assert!(matches!(&err, StorageError::Corrupt { file, .. } if file.ends_with(&last)), "{err}");
    let report = check(&data_dir(), &img).unwrap();
    assert_eq!(report.stray_segments, vec![last.clone()]);
    assert!(!report.is_clean());
    let out = fix(&data_dir(), &img, &report).unwrap();
    assert_eq!(out.dropped, vec![(last.clone(), format!("{last}.dropped"))]);
    let (_log, rec, c) = try_open(&img).unwrap();
    assert_eq!(rec.leftover_files, vec![empty]);
    let expect: u64 = segs[..segs.len() - 2]
        .iter()
        .map(|s| (fs.read_file(&data_dir().join(s)).unwrap().len() as u64 - SEGMENT_HEADER_LEN) / FRAME)
        .sum();
    assert_eq!(c.frames.len() as u64, expect);
}

#[test]
fn scan_is_read_only() {
    let (fs, data, seg) = one_segment(4);
    let full = fs.read_file(&data_dir().join(&seg)).unwrap();
    let torn = &full[..full.len() - 5];
    let img = with_file(&fs, &seg, torn);
    let mut c = Collect::default();
    let rec = scan(&data_dir(), &img, &mut c).unwrap();
    assert_eq!(c.frames, data[..3].to_vec());
    assert_eq!(rec.torn_tail.unwrap().offset, frame_start(3));
    assert_eq!(img.read_file(&data_dir().join(&seg)).unwrap(), torn.to_vec());
    // An absent directory scans as fresh.
    assert!(scan(Path::new("/nope"), &img, &mut NoReplay).unwrap().fresh);
}

/// Keeps the even seqs only, through `Replay::wants`.
#[derive(Default)]
struct EvenOnly(Vec<(u64, Vec<u8>)>);

impl staykv_storage::Replay for EvenOnly {
    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), staykv_storage::BoxError> {
        self.0.push((seq, payload.to_vec()));
        Ok(())
    }
    fn wants(&mut self, seq: u64) -> bool {
        seq.is_multiple_of(2)
    }
}

#[test]
fn frames_a_replay_does_not_want_are_stepped_over_unchecked_but_the_seq_chain_is_checked() {
    let (fs, data, seg) = one_segment(6);
    let mut even = EvenOnly::default();
    scan(&data_dir(), &fs, &mut even).unwrap();
    let expected: Vec<_> = data.iter().filter(|(seq, _)| seq.is_multiple_of(2)).cloned().collect();
    assert_eq!(even.0, expected);
    // A flipped payload byte in an unwanted frame goes unseen (it was checked before, by
    // whoever decided it is not wanted); in a wanted one it is damage.
    let full = fs.read_file(&data_dir().join(&seg)).unwrap();
    let flipped = |frame: u64| {
        let mut bad = full.clone();
        bad[(frame_start(frame) + FRAME_HEADER_LEN + 3) as usize] ^= 0x10;
        with_file(&fs, &seg, &bad)
    };
    let mut even = EvenOnly::default();
    let rec = scan(&data_dir(), &flipped(2), &mut even).unwrap();
    assert!(rec.torn_tail.is_none() && even.0.len() == 3, "frame 3 (seq 3) is not wanted");
    assert!(scan(&data_dir(), &flipped(1), &mut EvenOnly::default()).is_err(), "frame 1 (seq 2) is wanted");
    // A header whose seq breaks the chain is damage, wanted or not.
    let mut bad = full.clone();
    let seq_at = (frame_start(2) + 8) as usize;
    bad[seq_at] ^= 0x01;
    assert!(scan(&data_dir(), &with_file(&fs, &seg, &bad), &mut EvenOnly::default()).is_err());
}

#[test]
fn a_replay_error_stops_recovery() {
    let (fs, _data, _seg) = one_segment(4);
    let mut r =
        staykv_storage::FnReplay(|seq: u64, _p: &[u8]| if seq == 3 { Err("bad effect".into()) } else { Ok(()) });
    let err =
        Log::open(data_dir(), Arc::new(fs.clone()) as Arc<dyn Fs>, sealed_at_size(1 << 20), &mut r).err().unwrap();
    assert!(matches!(err, StorageError::Replay { seq: 3, .. }), "{err}");
}

#[test]
fn oversized_payload_is_rejected_without_allocation() {
    let fs = sim();
    let (log, _, _) = open(&fs, sealed_at_size(1 << 20));
    append_n(&log, 1, 1, 8);
    log.close().unwrap();
    let seg = segments(&fs).pop().unwrap();
    let mut f = fs.read_file(&data_dir().join(&seg)).unwrap();
    // Length field of the only frame claims 4 GiB - 1.
    f[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    let img = with_file(&fs, &seg, &f);
    let (_log, rec, c) = try_open(&img).unwrap();
    assert!(c.frames.is_empty());
    assert!(rec.torn_tail.unwrap().reason.contains("exceeds the maximum"));
}

#[test]
fn a_torn_payload_holding_an_old_log_copy_is_still_a_torn_tail() {
    // A value that contains log frames (say, a backup of a segment stored as a key) must not be
    // taken for "valid data after the damage" when its frame is torn.
    let (fs, data, seg) = one_segment(10);
    let copy = fs.read_file(&data_dir().join(&seg)).unwrap();
    let fs2 = sim();
    let (log, _, _) = open(&fs2, sealed_at_size(1 << 20));
    let mut mine = append_n(&log, 1, 10, L);
    assert_eq!(mine, data);
    let seq = log.append(&copy).unwrap();
    assert!(log.wait_durable(seq, Some(std::time::Duration::from_secs(5))));
    mine.push((seq, copy.clone()));
    log.close().unwrap();
    let seg2 = segments(&fs2).pop().unwrap();
    let full = fs2.read_file(&data_dir().join(&seg2)).unwrap();
    // Tear the big frame at several places inside the embedded copy.
    for cut in [frame_start(10) + 16 + 40, full.len() as u64 - 60, full.len() as u64 - 1] {
        let img = with_file(&fs2, &seg2, &full[..cut as usize]);
        let (_log, rec, c) = try_open(&img).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_eq!(c.frames, mine[..10].to_vec());
        assert_eq!(rec.torn_tail.unwrap().offset, frame_start(10));
    }
}

/// A start that refuses changes nothing on disk, a torn tail included: it used to be cut
/// before a later check (here a stray segment) refused, so `check --fix` then saw another
/// directory than the one that was refused.
#[test]
fn a_refused_start_leaves_a_torn_tail_uncut() {
    let (fs, _, seg) = one_segment(5);
    let full = fs.read_file(&data_dir().join(&seg)).unwrap();
    let mut torn = full.clone();
    torn.extend_from_slice(&[0xAB; 11]);
    let img = with_file(&fs, &seg, &torn);
    let img = with_file(&img, &staykv_storage::segment_file_name(2), &full);
    let Err(refused) = try_open(&img) else { panic!("a stray segment must refuse the start") };
    assert!(refused.to_string().contains("not listed in MANIFEST"), "{refused}");
    assert_eq!(file_len(&img, &data_dir(), &seg), torn.len() as u64, "the torn tail was cut by a refused start");
}

/// A snapshot job reads the directory while the log writer runs: after a rotation the writer
/// creates the next segment, rewrites the manifest and writes frames, possibly between the
/// job's read of the old manifest and its listing of the directory. That segment is the live
/// log's, not stray data: `scan_live` skips it, while `scan` (a stopped server) still refuses.
#[test]
fn a_segment_newer_than_the_manifest_read_is_skipped_by_scan_live_only() {
    let fs = sim();
    let (log, _, _) = open(&fs, sealed_at_size(1 << 20));
    let data = append_n(&log, 1, 5, L);
    let manifest_path = data_dir().join(staykv_storage::MANIFEST_FILE);
    let manifest_before = fs.read_file(&manifest_path).unwrap();
    assert_eq!(log.rotate().unwrap(), 6);
    append_n(&log, 2, 3, L);
    log.close().unwrap();
    // The directory as the job can see it: the old manifest, the new segment with frames.
    let seen = with_file(&fs, staykv_storage::MANIFEST_FILE, &manifest_before);
    let mut replayed = Collect::default();
    let live = staykv_storage::scan_live(&data_dir(), &seen, &mut replayed).unwrap();
    assert_eq!(live.last_seq, 5);
    assert_eq!(replayed.frames, data);
    let stopped = scan(&data_dir(), &seen, &mut NoReplay).unwrap_err();
    assert!(stopped.to_string().contains("not listed in MANIFEST"), "{stopped}");
}

#[test]
fn small_fsyncs_move_the_log_into_zero_filled_segments_on_simfs() {
    let fs = sim();
    let shared: Arc<dyn Fs> = Arc::new(fs.clone());
    small_fsyncs_move_the_log_into_zero_filled_segments(&shared, &data_dir(), || {
        (Arc::new(fs.process_crash()) as Arc<dyn Fs>, data_dir())
    });
}

/// With segments larger than a spare (the server's default 256 MiB), spares are 32 MiB,
/// ready soon after a start; a zero-filled segment is sealed at its file's end, not at
/// `segment_bytes`, and every frame comes back.
#[test]
fn zero_filled_segments_are_spare_sized_and_sealed_at_their_end() {
    const SPARE: u64 = 32 << 20;
    // Fsyncs of 16 KiB: small enough for the log to want spares.
    const PAYLOAD: usize = 16 << 10;
    let fs = sim();
    let shared: Arc<dyn Fs> = Arc::new(fs.clone());
    let dir = data_dir();
    let o = || opts(FsyncPolicy::Always, 256 << 20);
    let (log, _) = Log::open(&dir, Arc::clone(&shared), o(), &mut Collect::default()).unwrap();
    let live = || staykv_storage::read_manifest(&fs, &dir).unwrap().unwrap().segments.pop().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut data = Vec::new();
    let mut append = || {
        assert!(std::time::Instant::now() < deadline, "segments: {:?}", staykv_storage::read_manifest(&fs, &dir));
        data.extend(append_n(&log, data.len() as u64, 1, PAYLOAD));
    };
    // The first segment is appended to, and 2,046 frames of 16 KiB make it exactly 32 MiB
    // too; on a loaded machine the spare can come later than that, so only a later one counts.
    let first = live();
    let zero_filled = loop {
        append();
        let name = live();
        if name != first && file_len(&fs, &dir, &name) == SPARE {
            break name;
        }
    };
    while live() == zero_filled {
        append();
    }
    let sealed = file_len(&fs, &dir, &zero_filled);
    assert!((SPARE..SPARE + 4 * PAYLOAD as u64).contains(&sealed), "{zero_filled} sealed at {sealed} bytes");
    drop(log);
    let mut c = Collect::default();
    let (_log, _) = Log::open(&dir, shared, o(), &mut c).unwrap();
    assert_eq!(c.frames, data);
}

/// Fsyncs of 128 KiB are not small: the log appends to its segment to the end and never has
/// a spare made, which would write every byte twice.
#[test]
fn large_fsyncs_get_no_spare() {
    const PAYLOAD: usize = 128 << 10;
    const SEGMENT: u64 = 256 << 20;
    let fs = sim();
    let dir = data_dir();
    let (log, _) =
        Log::open(&dir, Arc::new(fs.clone()), opts(FsyncPolicy::Always, SEGMENT), &mut Collect::default()).unwrap();
    let first = segments(&fs);
    // Past a quarter of the segment and several judgements (every 64 fsyncs), then time
    // enough for a spare asked for at any of them to be made and moved into.
    let appends = (SEGMENT / 4) as usize / PAYLOAD + 64;
    for i in 0..appends as u64 {
        append_n(&log, i, 1, PAYLOAD);
    }
    std::thread::sleep(Duration::from_secs(2));
    append_n(&log, 0, 1, PAYLOAD);
    assert!(!fs.exists(&dir.join("log-spare.tmp")).unwrap(), "a spare was made");
    assert_eq!(segments(&fs), first, "the log moved out of its appended segment");
}

#[test]
fn a_whole_spare_left_by_the_last_run_is_taken_up_at_start_not_removed() {
    const SEGMENT: u64 = 64 << 10;
    let fs = sim();
    let shared: Arc<dyn Fs> = Arc::new(fs.clone());
    let dir = data_dir();
    let spare = dir.join("log-spare.tmp");
    let leave_spare = || {
        let mut f = fs.create(&spare).unwrap();
        f.write_all(&vec![0; SEGMENT as usize]).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(&dir).unwrap();
    };
    let o = |zero_filled_segments| LogOptions { zero_filled_segments, ..opts(FsyncPolicy::Always, SEGMENT) };
    let (log, _) = Log::open(&dir, Arc::clone(&shared), o(true), &mut Collect::default()).unwrap();
    let mut data = append_n(&log, 0, 3, L);
    drop(log);
    let appended = staykv_storage::read_manifest(&fs, &dir).unwrap().unwrap().segments.pop().unwrap();
    leave_spare();

    // The server stopped with a spare ready: the next start keeps it, and the log moves into
    // it at its next write.
    let mut c = Collect::default();
    let (log, rec) = Log::open(&dir, Arc::clone(&shared), o(true), &mut c).unwrap();
    assert_eq!(c.frames, data);
    assert!(rec.leftover_files.is_empty(), "{:?}", rec.leftover_files);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        data.extend(append_n(&log, data.len() as u64, 1, L));
        let live = staykv_storage::read_manifest(&fs, &dir).unwrap().unwrap().segments.pop().unwrap();
        if live != appended {
            assert_eq!(file_len(&fs, &dir, &live), SEGMENT, "{live} is the spare");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the spare left at start was not taken up");
    }
    assert!(!fs.exists(&spare).unwrap());
    drop(log);
    let mut c = Collect::default();
    let (log, _) = Log::open(&dir, Arc::clone(&shared), o(true), &mut c).unwrap();
    assert_eq!(c.frames, data);
    drop(log);

    // Without zero-filled segments nothing would take it up: it is removed.
    leave_spare();
    let (_log, _) = Log::open(&dir, shared, o(false), &mut Collect::default()).unwrap();
    assert!(!fs.exists(&spare).unwrap());
}
