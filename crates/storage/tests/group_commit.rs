//! Group commit under `always` with executors: a write that wakes the idle writer is synced
//! once every executor thread has parked, or after `group_wait_max`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use staykv_storage::{Executors, FsyncPolicy, Log, LogIo, LogOptions};

/// A log under `always` whose group commits wait for `executors` up to `wait_max`, and the
/// count of its fsyncs under the writer's lock.
fn log_with(executors: &Arc<Executors>, wait_max: Duration) -> (Log, Arc<AtomicUsize>) {
    let syncs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&syncs);
    let options = LogOptions {
        executors: Some(Arc::clone(executors)),
        group_wait_max: wait_max,
        on_io: Box::new(move |io, _| {
            if io == LogIo::Sync {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }),
        ..opts(FsyncPolicy::Always, 64 << 20)
    };
    let (log, _, _) = open(&sim(), options);
    // Let the writer finish starting up and go idle.
    std::thread::sleep(Duration::from_millis(100));
    (log, syncs)
}

/// Waits (up to 10 s) for `seq` to be durable; returns how long that took.
fn until_durable(log: &Log, seq: u64) -> Duration {
    let started = Instant::now();
    while log.durable_seq() < seq {
        assert!(started.elapsed() < Duration::from_secs(10), "seq {seq} never became durable");
        std::thread::sleep(Duration::from_millis(1));
    }
    started.elapsed()
}

#[test]
fn a_write_that_wakes_the_writer_waits_for_busy_executors_and_shares_their_fsync() {
    let executors = Arc::new(Executors::new(1));
    let (log, syncs) = log_with(&executors, Duration::from_secs(60));
    let before = syncs.load(Ordering::SeqCst);
    let first = log.append(b"first").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(log.durable_seq() < first, "synced while the executor was still busy");
    let second = log.append(b"second").unwrap();
    executors.parking();
    until_durable(&log, second);
    assert_eq!(syncs.load(Ordering::SeqCst) - before, 1, "both writes in one fsync");
}

#[test]
fn with_every_executor_parked_a_write_is_synced_at_once() {
    let executors = Arc::new(Executors::new(2));
    executors.parking();
    executors.parking();
    let (log, _) = log_with(&executors, Duration::from_secs(60));
    let seq = log.append(b"alone").unwrap();
    let took = until_durable(&log, seq);
    assert!(took < Duration::from_secs(5), "waited {took:?} with no executor busy");
}

#[test]
fn busy_executors_hold_a_write_for_at_most_group_wait_max() {
    let executors = Arc::new(Executors::new(1));
    let (log, _) = log_with(&executors, Duration::from_millis(200));
    let seq = log.append(b"held").unwrap();
    let took = until_durable(&log, seq);
    assert!(took >= Duration::from_millis(150), "not held: {took:?}");
}
