//! Seeded power-cut tests on `SimFs`.
//!
//! Reproduce a failure with the printed seed: `STAYKV_POWERCUT_SEED=<seed> STAYKV_POWERCUT_RUNS=1`.
//! Cut points are chosen by filesystem-operation index (deterministic for a seed); the thread
//! interleaving of concurrent appenders is not, so batch boundaries vary between runs, which
//! only widens what is covered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use staykv_storage::{snapshot_file_name, Fault, Fs, FsyncPolicy, Log, LogOptions, SimFs};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.strip_prefix("0x").map(|h| u64::from_str_radix(h, 16).ok()).unwrap_or_else(|| v.parse().ok()))
        .unwrap_or(default)
}

/// Payload that identifies its writer and counter and can be checked on its own.
fn tagged(thread: u64, counter: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + len);
    v.extend_from_slice(&thread.to_le_bytes());
    v.extend_from_slice(&counter.to_le_bytes());
    let mut r = Rng(thread << 32 ^ counter);
    for _ in 0..len {
        v.push((r.next() & 0xff) as u8);
    }
    v
}

fn untag(p: &[u8]) -> (u64, u64) {
    let t = u64::from_le_bytes(p[0..8].try_into().unwrap());
    let c = u64::from_le_bytes(p[8..16].try_into().unwrap());
    assert_eq!(p, tagged(t, c, p.len() - 16), "payload damaged");
    (t, c)
}

/// Recovers `img` with `Log::open` and checks: no error; frames 1..=L in order; `L >= durable`;
/// every payload intact; each writer's counters form a gap-free prefix. Returns L.
fn verify_image(img: &SimFs, durable: u64, ctx: &str, reopen: bool) -> u64 {
    let mut c = Collect::default();
    let (log, _rec) =
        Log::open(data_dir(), Arc::new(img.clone()) as Arc<dyn Fs>, opts(FsyncPolicy::Always, 1 << 20), &mut c)
            .unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
    let last = c.frames.last().map_or(0, |f| f.0);
    if let Some(first) = c.frames.first() {
        assert_eq!(first.0, 1, "{ctx}");
    }
    assert!(last >= durable, "{ctx}: durable seq {durable} lost (recovered up to {last})");
    let mut next: HashMap<u64, u64> = HashMap::new();
    for (_, p) in &c.frames {
        let (t, k) = untag(p);
        let n = next.entry(t).or_insert(0);
        assert_eq!(k, *n, "{ctx}: writer {t} counter gap");
        *n += 1;
    }
    if reopen {
        // The recovered log keeps working: append, close, recover again.
        let s = log.append(&tagged(99, 0, 3)).unwrap();
        assert_eq!(s, last + 1, "{ctx}");
        log.close().unwrap();
        let mut c2 = Collect::default();
        let (_l, _) =
            Log::open(data_dir(), Arc::new(img.clone()) as Arc<dyn Fs>, opts(FsyncPolicy::Always, 1 << 20), &mut c2)
                .unwrap_or_else(|e| panic!("{ctx}: second recovery failed: {e}"));
        assert_eq!(c2.frames.len() as u64, last + 1, "{ctx}");
    }
    last
}

/// One run under `Always`: concurrent appenders, optional fault injection, a power-cut image
/// at every filesystem operation. Returns the number of images verified.
fn always_run(seed: u64) -> usize {
    let mut rng = Rng(seed);
    let fs = sim();
    let publishes: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let (fs2, pubs2) = (fs.clone(), Arc::clone(&publishes));
    let o = LogOptions {
        fsync: FsyncPolicy::Always,
        segment_bytes: 400 + rng.below(1600),
        on_durable: Box::new(move |seq| pubs2.lock().unwrap().push((fs2.op_count(), seq))),
        retry_interval: Duration::from_millis(1),
        ..LogOptions::default()
    };
    // A cut before every operation, including the initialisation of the directory.
    fs.schedule_power_cuts((1..=3000u64).map(|op| (op, seed ^ op.wrapping_mul(0x2545_F491))));
    let (log, rec) =
        Log::open(data_dir(), Arc::new(fs.clone()) as Arc<dyn Fs>, o, &mut staykv_storage::NoReplay).unwrap();
    assert!(rec.fresh);
    let log = Arc::new(log);
    let done = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..3u64 {
        let log = Arc::clone(&log);
        let mut r = Rng(seed ^ ((t + 1) * 0x9E37));
        handles.push(std::thread::spawn(move || {
            for k in 0..50u64 {
                let p = tagged(t, k, r.below(120) as usize);
                let seq = log.append(&p).unwrap();
                if r.below(3) == 0 {
                    assert!(log.wait_durable(seq, Some(Duration::from_secs(20))));
                }
            }
        }));
    }
    let injector = (seed % 3 == 2).then(|| {
        let fs = fs.clone();
        let done = Arc::clone(&done);
        let mut r = Rng(seed ^ 0xFA17);
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_micros(200 + r.below(2000)));
                let fault = if r.below(2) == 0 { Fault::NoSpace } else { Fault::Io };
                if r.below(2) == 0 {
                    fs.fail_writes(1 + r.below(2), fault);
                } else {
                    fs.fail_syncs(1 + r.below(2), fault);
                }
            }
        })
    });
    for h in handles {
        h.join().unwrap();
    }
    done.store(true, Ordering::Release);
    if let Some(h) = injector {
        h.join().unwrap();
    }
    fs.clear_faults();
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.flush_and_sync().is_err() {
        assert!(Instant::now() < deadline, "seed {seed:#x}: log never recovered");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(log.durable_seq(), 150);
    let images = fs.take_power_cut_images();
    Arc::try_unwrap(log).unwrap().close().unwrap();
    let publishes = publishes.lock().unwrap().clone();
    let n = images.len();
    for (i, (op, img)) in images.into_iter().enumerate() {
        let durable = publishes.iter().filter(|(c, _)| *c < op).map(|(_, s)| *s).max().unwrap_or(0);
        let ctx = format!("seed {seed:#x} cut before op {op}");
        verify_image(&img, durable, &ctx, i % 16 == 0);
    }
    // And the final state, without a cut, has everything.
    assert_eq!(verify_image(&fs.process_crash(), 150, "final", false), 150);
    n
}

#[test]
fn power_cuts_under_always_never_lose_an_acknowledged_append() {
    let base = env_u64("STAYKV_POWERCUT_SEED", 0x5EED_2024);
    let runs = env_u64("STAYKV_POWERCUT_RUNS", 24);
    let t0 = Instant::now();
    let mut cuts = 0;
    for run in 0..runs {
        let seed = base.wrapping_add(run.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        cuts += always_run(seed);
    }
    eprintln!("always: {runs} runs, {cuts} power-cut images verified in {:?}", t0.elapsed());
    if runs >= 10 {
        assert!(cuts >= 2000, "only {cuts} cut points");
    }
}

#[test]
fn power_cuts_under_everysec_lose_only_unsynced_appends() {
    let seed = env_u64("STAYKV_POWERCUT_SEED", 0xE5EC);
    let cuts = env_u64("STAYKV_EVERYSEC_CUTS", 150);
    let fs = sim();
    let o = LogOptions {
        sync_interval: Duration::from_millis(25),
        retry_interval: Duration::from_millis(1),
        ..opts(FsyncPolicy::EverySec, 8192)
    };
    let (log, _, _) = open(&fs, o);
    let log = Arc::new(log);
    let stop = Arc::new(AtomicBool::new(false));
    // Appenders may append up to `budget` payloads each; the budget grows between cuts so the
    // volume (and the cost of verifying each image) stays bounded.
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut handles = Vec::new();
    for t in 0..2u64 {
        let (log, stop, budget) = (Arc::clone(&log), Arc::clone(&stop), Arc::clone(&budget));
        let mut r = Rng(seed ^ (t + 7));
        handles.push(std::thread::spawn(move || {
            let mut k = 0;
            while !stop.load(Ordering::Acquire) {
                if k >= budget.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_micros(100));
                    continue;
                }
                log.append(&tagged(t, k, r.below(64) as usize)).unwrap();
                k += 1;
                if k % 4 == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }));
    }
    let mut rng = Rng(seed);
    let (mut lost_total, mut lost_max, mut with_loss) = (0u64, 0u64, 0u64);
    for i in 0..cuts {
        budget.fetch_add(60, Ordering::AcqRel);
        std::thread::sleep(Duration::from_micros(rng.below(6000)));
        let synced = log.synced_seq();
        let appended = log.last_seq();
        let img = fs.power_cut(seed ^ i);
        let ctx = format!("everysec seed {seed:#x} cut {i}");
        let recovered = verify_image(&img, synced, &ctx, false);
        let lost = appended.saturating_sub(recovered);
        lost_total += lost;
        lost_max = lost_max.max(lost);
        with_loss += u64::from(lost > 0);
    }
    stop.store(true, Ordering::Release);
    for h in handles {
        h.join().unwrap();
    }
    let total = log.last_seq();
    log.flush_and_sync().unwrap();
    assert_eq!(log.synced_seq(), total);
    eprintln!(
        "everysec: {cuts} cuts, {total} appends; appends lost per cut (all unsynced): \
         mean {:.1}, max {lost_max}; cuts with loss {with_loss}",
        lost_total as f64 / cuts as f64
    );
    let final_img = fs.power_cut(1);
    assert_eq!(verify_image(&final_img, total, "everysec final", false), total);
}

/// Deterministic single-writer workload with rotations and snapshot installations; a power
/// cut before every filesystem operation, with several seeds.
#[test]
fn power_cuts_during_rotation_and_snapshot_installation() {
    let mut images = 0;
    for seed in 0..6u64 {
        let fs = sim();
        let publishes: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
        let (fs2, pubs2) = (fs.clone(), Arc::clone(&publishes));
        fs.schedule_power_cuts((1..=5000u64).map(|op| (op, seed * 7919 + op)));
        let o = LogOptions {
            fsync: FsyncPolicy::Always,
            segment_bytes: 300,
            on_durable: Box::new(move |seq| pubs2.lock().unwrap().push((fs2.op_count(), seq))),
            ..LogOptions::default()
        };
        let (log, _) =
            Log::open(data_dir(), Arc::new(fs.clone()) as Arc<dyn Fs>, o, &mut staykv_storage::NoReplay).unwrap();
        let mut k = 0;
        for round in 0..4 {
            for _ in 0..12 {
                let seq = log.append(&tagged(0, k, 30)).unwrap();
                k += 1;
                assert!(log.wait_durable(seq, Some(Duration::from_secs(10))));
            }
            let next = log.rotate().unwrap();
            let s = next - 1;
            let name = snapshot_file_name(s);
            let path = data_dir().join(&name);
            let mut f = fs.create(&path).unwrap();
            f.write_all(format!("SNAP:{s}").as_bytes()).unwrap();
            f.sync_data().unwrap();
            fs.sync_dir(&data_dir()).unwrap();
            if round % 2 == 0 {
                log.install_snapshot(&name, s).unwrap();
            }
        }
        log.close().unwrap();
        let publishes = publishes.lock().unwrap().clone();
        for (op, img) in fs.take_power_cut_images() {
            images += 1;
            let durable = publishes.iter().filter(|(c, _)| *c < op).map(|(_, s)| *s).max().unwrap_or(0);
            let ctx = format!("snapshot seed {seed} cut before op {op}");
            let mut c = Collect::default();
            let (_log, rec) =
                Log::open(data_dir(), Arc::new(img.clone()) as Arc<dyn Fs>, opts(FsyncPolicy::Always, 300), &mut c)
                    .unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
            let snap_seq = match &c.snapshot {
                Some(s) => {
                    let content = img.read_file(&data_dir().join(&s.file)).unwrap();
                    assert_eq!(content, format!("SNAP:{}", s.seq).into_bytes(), "{ctx}");
                    s.seq
                }
                None => 0,
            };
            for (expect, (seq, p)) in (snap_seq + 1..).zip(&c.frames) {
                assert_eq!(*seq, expect, "{ctx}");
                assert_eq!(untag(p), (0, seq - 1), "{ctx}");
            }
            assert!(rec.last_seq >= durable, "{ctx}: durable {durable} lost");
            // Only the live snapshot file remains.
            let snaps = img.list_dir(&data_dir()).unwrap().into_iter().filter(|n| n.starts_with("snap-")).count();
            assert!(snaps <= 1, "{ctx}: {snaps} snapshot files left");
        }
    }
    assert!(images > 500, "{images}");
}

/// Under `EverySec` executors write their own frames through (`Log::write_through`) beside
/// the writer thread, with write failures injected, then fsync failures too: at any moment a
/// power cut keeps every frame up to the synced seq, and, until an fsync fails, a process
/// crash every frame up to the durable seq. (SimFs drops the unsynced pages on a failed
/// fsync, as Linux may: frames acknowledged as written to the OS are gone from it until the
/// writer has rewritten them, so a process crash in that window can lose them.)
#[test]
fn write_through_under_everysec_keeps_every_acknowledged_frame() {
    let seed = env_u64("STAYKV_POWERCUT_SEED", 0x3A11);
    let fs = sim();
    let (log, _, _) =
        open(&fs, LogOptions { retry_interval: Duration::from_millis(1), ..opts(FsyncPolicy::EverySec, 4096) });
    let log = Arc::new(log);
    const WRITERS: u64 = 3;
    const PER_WRITER: u64 = 400;
    const FRAMES: u64 = WRITERS * PER_WRITER;
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let log = Arc::clone(&log);
            let mut r = Rng(seed ^ (t + 11));
            std::thread::spawn(move || {
                for k in 0..PER_WRITER {
                    let seq = log.append(&tagged(t, k, r.below(48) as usize)).unwrap();
                    // As the server does: lead if no one else writes, else wait for progress.
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while !log.write_through(seq) {
                        assert!(Instant::now() < deadline, "seq {seq} never became durable");
                        std::thread::sleep(Duration::from_micros(50));
                    }
                    assert!(log.durable_seq() >= seq);
                    if k % 3 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    let mut rng = Rng(seed);
    let mut crashes = 0;
    let mut fsyncs_failed = false;
    while !writers.iter().all(std::thread::JoinHandle::is_finished) {
        match rng.below(4) {
            0 => fs.fail_writes(1, Fault::Io),
            // Fsync failures start halfway, after a stretch with write failures only.
            1 if log.durable_seq() > FRAMES / 2 => {
                fs.fail_syncs(1, Fault::NoSpace);
                fsyncs_failed = true;
            }
            _ => {}
        }
        let (durable, synced) = (log.durable_seq(), log.synced_seq());
        if !fsyncs_failed {
            verify_image(&fs.process_crash(), durable, &format!("process crash {crashes}"), false);
        }
        verify_image(&fs.power_cut(seed ^ crashes), synced, &format!("power cut {crashes}"), false);
        crashes += 1;
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
    }
    for w in writers {
        w.join().unwrap();
    }
    fs.clear_faults();
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.flush_and_sync().is_err() {
        assert!(Instant::now() < deadline, "the log never recovered");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(verify_image(&fs.power_cut(7), FRAMES, "final", false), FRAMES);
    eprintln!("write-through under everysec: {FRAMES} frames, {crashes} crash and power-cut images verified");
}
