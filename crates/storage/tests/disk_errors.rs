//! Disk-error injection: failed writes and fsyncs make the log unhealthy, nothing appended is
//! lost or acknowledged early, and the log heals once the disk works again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use staykv_storage::{Fault, Fs, FsyncPolicy, Log, LogOptions, SimFs};

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every image of the final state (all synced) must hold exactly `expect`, with no torn tail:
/// partial writes were truncated before being rewritten.
fn assert_exact(fs: &SimFs, expect: &[(u64, Vec<u8>)]) {
    for seed in 0..5 {
        let img = fs.power_cut(seed);
        let mut c = Collect::default();
        let (_log, rec) =
            Log::open(data_dir(), Arc::new(img) as Arc<dyn Fs>, opts(FsyncPolicy::Always, 1 << 20), &mut c).unwrap();
        assert_eq!(c.frames, expect);
        assert!(rec.torn_tail.is_none(), "{:?}", rec.torn_tail);
    }
}

#[test]
fn failed_writes_make_the_log_unhealthy_then_it_recovers_without_loss() {
    let fs = sim();
    let (log, _, _) = open(&fs, opts(FsyncPolicy::Always, 1 << 20));
    let mut data = append_n(&log, 1, 10, 50);
    fs.fail_writes(u64::MAX, Fault::NoSpace);
    for i in 0..20 {
        let p = payload(2, i, 50);
        let seq = log.append(&p).unwrap(); // append never refuses
        data.push((seq, p));
    }
    wait_for(|| !log.healthy(), "unhealthy");
    let err = log.last_error().unwrap();
    assert!(err.contains("No space left on device"), "{err}");
    assert!(log.flush_and_sync().is_err());
    std::thread::sleep(Duration::from_millis(30));
    assert!(!log.healthy());
    assert_eq!(log.durable_seq(), 10, "nothing is acknowledged while writes fail");
    assert!(!log.wait_durable(11, Some(Duration::from_millis(20))));
    fs.clear_faults();
    assert!(log.wait_durable(30, Some(Duration::from_secs(10))));
    wait_for(|| log.healthy(), "healthy again");
    assert_eq!(log.last_error(), None);
    assert_eq!(log.flush_and_sync().unwrap(), 30);
    log.close().unwrap();
    assert_exact(&fs, &data);
}

#[test]
fn failed_fsyncs_are_rewritten_not_just_retried() {
    // SimFs drops the unsynced pages on a failed fsync, as Linux may: a writer that only
    // retried the fsync would lose the data.
    let fs = sim();
    let (log, _, _) = open(&fs, opts(FsyncPolicy::Always, 1 << 20));
    let mut data = append_n(&log, 1, 5, 30);
    for round in 0..10u64 {
        fs.fail_syncs(1 + round % 3, if round % 2 == 0 { Fault::Io } else { Fault::NoSpace });
        let p = payload(3, round, 30);
        let seq = log.append(&p).unwrap();
        assert!(log.wait_durable(seq, Some(Duration::from_secs(10))));
        data.push((seq, p));
    }
    wait_for(|| log.healthy(), "healthy");
    log.close().unwrap();
    assert_exact(&fs, &data);
}

#[test]
fn errors_during_rotation_heal_and_keep_the_chain_intact() {
    let fs = sim();
    let (log, _, _) = open(&fs, opts(FsyncPolicy::Always, 200));
    let mut data = Vec::new();
    let mut rng = Rng(11);
    for i in 0..60u64 {
        // Fail some write or fsync: frame writes, segment headers, manifest writes, dir syncs.
        match rng.below(4) {
            0 => fs.fail_writes(1 + rng.below(2), Fault::NoSpace),
            1 => fs.fail_syncs(1 + rng.below(2), Fault::Io),
            _ => {}
        }
        let p = payload(4, i, 40);
        let seq = log.append(&p).unwrap();
        assert!(log.wait_durable(seq, Some(Duration::from_secs(10))));
        data.push((seq, p));
    }
    fs.clear_faults();
    wait_for(|| log.healthy(), "healthy");
    log.close().unwrap();
    assert!(segments(&fs).len() > 5);
    assert_exact(&fs, &data);
    let report = staykv_storage::check(&data_dir(), &fs).unwrap();
    assert!(report.is_clean(), "{report}");
}

#[test]
fn rotate_and_flush_report_errors_while_the_disk_fails() {
    let fs = sim();
    let (log, _, _) = open(&fs, opts(FsyncPolicy::Always, 1 << 20));
    append_n(&log, 1, 3, 10);
    fs.fail_syncs(u64::MAX, Fault::Io);
    log.append(b"x").unwrap();
    assert!(log.rotate().is_err());
    assert!(log.flush_and_sync().is_err());
    fs.clear_faults();
    assert!(log.wait_durable(4, Some(Duration::from_secs(10))));
    assert_eq!(log.rotate().unwrap(), 5);
    log.close().unwrap();
}

#[test]
fn close_and_drop_do_not_hang_on_a_dead_disk() {
    let fs = sim();
    let (log, _, _) = open(&fs, opts(FsyncPolicy::Always, 1 << 20));
    fs.fail_writes(u64::MAX, Fault::Io);
    log.append(b"lost").unwrap();
    let t0 = Instant::now();
    assert!(log.close().is_err());
    assert!(t0.elapsed() < Duration::from_secs(5));
    let (log, _, _) = open(&SimFs::new(), opts(FsyncPolicy::Always, 1 << 20));
    drop(log);
}

#[test]
fn everysec_backpressure_when_fsync_falls_behind() {
    let fs = sim();
    let o = LogOptions {
        fsync: FsyncPolicy::EverySec,
        sync_interval: Duration::from_millis(10),
        max_sync_lag: Duration::from_millis(40),
        retry_interval: Duration::from_millis(5),
        ..LogOptions::default()
    };
    let (log, _, _) = open(&fs, o);
    let seq = log.append(b"a").unwrap();
    // Written to the OS promptly: durable under everysec, synced within the interval.
    assert!(log.wait_durable(seq, Some(Duration::from_secs(5))));
    wait_for(|| log.synced_seq() == seq, "synced");
    assert!(log.wait_writable_blocking(Duration::from_millis(1)));
    fs.fail_syncs(u64::MAX, Fault::Io);
    let seq = log.append(b"b").unwrap();
    wait_for(|| log.sync_lagging(), "lagging");
    assert!(!log.wait_writable_blocking(Duration::from_millis(20)));
    assert!(!log.healthy());
    assert!(log.synced_seq() < seq);
    fs.clear_faults();
    assert!(log.wait_writable_blocking(Duration::from_secs(10)));
    wait_for(|| log.synced_seq() == seq, "synced after recovery");
    // Policy can be switched at runtime; `Always` syncs what is pending at once.
    log.set_fsync_policy(FsyncPolicy::No);
    let seq = log.append(b"c").unwrap();
    assert!(log.wait_durable(seq, Some(Duration::from_secs(5))));
    std::thread::sleep(Duration::from_millis(30));
    assert!(log.synced_seq() < seq, "policy no: no fsync");
    assert!(log.wait_writable_blocking(Duration::from_millis(1)), "no backpressure under no");
    log.set_fsync_policy(FsyncPolicy::Always);
    assert_eq!(log.fsync_policy(), FsyncPolicy::Always);
    wait_for(|| log.synced_seq() == seq, "synced after switching to always");
    log.close().unwrap();
}

/// Under `everysec` the timed fsync runs outside the writer's lock while executors write
/// frames through. Fsyncs that fail then (SimFs drops the unsynced pages, the frames written
/// during the fsync included) and failed writes must still end with every appended frame on
/// disk exactly once, in order, across segment rotations.
#[test]
fn everysec_fsync_failures_during_write_through_lose_nothing() {
    const FAULTS: u32 = 30;
    let fs = sim();
    let o = LogOptions {
        fsync: FsyncPolicy::EverySec,
        segment_bytes: 64 << 10,
        sync_interval: Duration::from_millis(1),
        max_sync_lag: Duration::from_secs(60),
        retry_interval: Duration::from_millis(1),
        ..LogOptions::default()
    };
    let (log, _, _) = open(&fs, o);
    let stop = AtomicBool::new(false);
    let written: Vec<(u64, Vec<u8>)> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..3u64)
            .map(|tag| {
                let (log, stop) = (&log, &stop);
                scope.spawn(move || {
                    let mut rng = Rng(tag + 1);
                    let mut mine = Vec::new();
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let p = payload(tag, i, 20 + rng.below(200) as usize);
                        let seq = log.append(&p).unwrap();
                        // As an executor does: write through, else wait for whoever writes.
                        while !log.write_through(seq) {
                            log.wait_durable(seq, Some(Duration::from_millis(5)));
                        }
                        mine.push((seq, p));
                    }
                    mine
                })
            })
            .collect();
        // One fault at a time, the next once it was hit: mostly failing fsyncs, whose pages
        // SimFs drops, some failing writes.
        let mut rng = Rng(99);
        let mut faults_hit = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while faults_hit < FAULTS {
            assert!(Instant::now() < deadline, "only {faults_hit} faults were hit in 60 s");
            if fs.faults_pending() == (0, 0) {
                if rng.below(4) == 0 {
                    fs.fail_writes(1, Fault::NoSpace);
                } else {
                    fs.fail_syncs(1, Fault::Io);
                }
                faults_hit += 1;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        // The faults can all be hit before 256 KiB are written (on a loaded machine): the
        // writers go on until the log has rotated a few times.
        wait_for(|| segments(&fs).len() > 3, "segment rotations");
        stop.store(true, Ordering::Relaxed);
        writers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    fs.clear_faults();
    wait_for(|| log.healthy(), "healthy");
    assert!(log.synced_seq() > 0, "timed fsyncs ran");
    log.close().unwrap();
    let mut expect = written;
    expect.sort();
    assert!(segments(&fs).len() > 3, "rotations happened");
    assert_exact(&fs, &expect);
}
