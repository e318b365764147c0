//! The engine's journal: effects go to the write-ahead log, replies wait for durability.
//!
//! Each command's effects are encoded as one batch (`staykv_engine::encode_batch`) and
//! appended to the log, which assigns the sequence number. Replies that depend on a batch
//! wait here until the log writer reports it durable — under `always` that means fsynced;
//! under `everysec` and `no` replies do not wait (the log writer only makes appends wait when
//! fsync falls more than 2 s behind).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use staykv_engine::{decode_batch, encode_batch, Effect, Engine, Journal};
use staykv_storage::{BoxError, Log, LogOptions, Progress, RealFs, Recovery, Replay, SnapshotRef};
use tokio::sync::watch;

use crate::config::FsyncPolicy;

const MISCONF: &str = "MISCONF StayKV cannot write its log to disk, so commands that change data are refused until it can. Reads keep working; check the server log for the disk error (disk full?).";

/// The live log plus what clients wait on.
#[derive(Debug)]
pub struct Persistence {
    log: OnceLock<Log>,
    policy: AtomicU8,
    durable: watch::Sender<u64>,
    loading: AtomicBool,
    writes_since_save: AtomicU64,
    last_save_unix: AtomicU64,
}

thread_local! {
    /// Reused encoding buffer: no allocation per write on the hot path.
    static BATCH_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn storage_policy(policy: FsyncPolicy) -> staykv_storage::FsyncPolicy {
    match policy {
        FsyncPolicy::Always => staykv_storage::FsyncPolicy::Always,
        FsyncPolicy::Everysec => staykv_storage::FsyncPolicy::EverySec,
        FsyncPolicy::No => staykv_storage::FsyncPolicy::No,
    }
}

fn policy_code(policy: FsyncPolicy) -> u8 {
    match policy {
        FsyncPolicy::Always => 0,
        FsyncPolicy::Everysec => 1,
        FsyncPolicy::No => 2,
    }
}

impl Persistence {
    pub fn new(policy: FsyncPolicy) -> Persistence {
        Persistence {
            log: OnceLock::new(),
            policy: AtomicU8::new(policy_code(policy)),
            durable: watch::Sender::new(0),
            loading: AtomicBool::new(true),
            writes_since_save: AtomicU64::new(0),
            last_save_unix: AtomicU64::new(0),
        }
    }

    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    /// Recover the data directory into `engine` and start the log writer. Blocking: run it off
    /// the async runtime. Refuses (with the storage error) rather than start empty over data
    /// it could not read.
    pub fn open(self: &Arc<Self>, dir: &Path, engine: &Engine, policy: FsyncPolicy) -> Result<Recovery, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
        let notify = Arc::clone(self);
        let options = LogOptions {
            fsync: storage_policy(policy),
            on_durable: Box::new(move |seq| {
                notify.durable.send_replace(seq);
            }),
            ..LogOptions::default()
        };
        let mut replay = EngineReplay { engine, started: Instant::now(), last_report: Instant::now(), frames: 0 };
        let (log, recovery) =
            Log::open(dir, Arc::new(RealFs::new()), options, &mut replay).map_err(|e| e.to_string())?;
        self.durable.send_replace(log.durable_seq());
        let _ = self.log.set(log);
        self.loading.store(false, Ordering::Release);
        Ok(recovery)
    }

    /// Wait until the batch `seq` is durable, if the policy makes replies wait.
    pub async fn wait_durable(&self, seq: u64) {
        if seq == 0 || self.policy.load(Ordering::Relaxed) != 0 {
            return;
        }
        let mut durable = self.durable.subscribe();
        let _ = durable.wait_for(|&d| d >= seq).await;
    }

    pub fn set_fsync(&self, policy: FsyncPolicy) {
        self.policy.store(policy_code(policy), Ordering::Relaxed);
        if let Some(log) = self.log.get() {
            log.set_fsync_policy(storage_policy(policy));
        }
    }

    /// Write and fsync everything appended so far (shutdown).
    pub fn flush(&self) -> Result<(), String> {
        match self.log.get() {
            Some(log) => log.flush_and_sync().map(|_| ()).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    pub fn last_save_unix(&self) -> Option<u64> {
        match self.last_save_unix.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// SAVE, BGSAVE, BGREWRITEAOF.
    pub fn command(&self, name: &str) -> Result<staykv_engine::Reply, String> {
        Err(format!("ERR {} is not available yet: StayKV compacts its log automatically", name.to_ascii_uppercase()))
    }

    /// The `# Persistence` section of INFO, with Redis's field names.
    pub fn info(&self) -> String {
        let log = self.log.get();
        let healthy = log.is_none_or(Log::healthy);
        let status = if healthy { "ok" } else { "err" };
        let mut out = String::new();
        let _ = write!(
            out,
            "loading:{}\r\nasync_loading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_bgrewrite_status:ok\r\naof_last_write_status:{status}\r\naof_last_cow_size:0\r\nstaykv_log_last_seq:{}\r\nstaykv_log_durable_seq:{}\r\n",
            u8::from(self.is_loading()),
            self.writes_since_save.load(Ordering::Relaxed),
            self.last_save_unix.load(Ordering::Relaxed),
            log.map_or(0, Log::last_seq),
            log.map_or(0, Log::durable_seq),
        );
        out
    }
}

impl Journal for Persistence {
    fn check_writable(&self) -> Result<(), String> {
        let Some(log) = self.log.get() else {
            return Ok(());
        };
        if !log.healthy() {
            return Err(MISCONF.into());
        }
        if log.sync_lagging() && !log.wait_writable_blocking(Duration::from_secs(2)) {
            return Err(MISCONF.into());
        }
        Ok(())
    }

    fn append(&self, time_ms: u64, effects: &[Effect]) -> u64 {
        let Some(log) = self.log.get() else { return 0 };
        self.writes_since_save.fetch_add(effects.len() as u64, Ordering::Relaxed);
        BATCH_BUF.with_borrow_mut(|buf| {
            buf.clear();
            encode_batch(time_ms, effects, buf);
            match log.append(buf) {
                Ok(seq) => seq,
                Err(error) => {
                    // Only an over-large batch (> 512 MiB) can fail here; the change is in
                    // memory but cannot be logged. Say so loudly.
                    tracing::error!(%error, "a write could not be logged");
                    log.last_seq()
                }
            }
        })
    }
}

/// Feeds recovered batches into the engine, logging progress on long loads.
struct EngineReplay<'a> {
    engine: &'a Engine,
    started: Instant,
    last_report: Instant,
    frames: u64,
}

impl Replay for EngineReplay<'_> {
    fn snapshot(&mut self, snapshot: &SnapshotRef) -> Result<(), BoxError> {
        Err(format!("snapshot {} cannot be loaded by this build", snapshot.file).into())
    }

    fn frame(&mut self, seq: u64, payload: &[u8]) -> Result<(), BoxError> {
        let (time, effects) = decode_batch(payload).map_err(|e| format!("log frame {seq}: {e}"))?;
        self.engine.replay(time, &effects).map_err(|e| format!("log frame {seq}: {e}"))?;
        self.frames += 1;
        Ok(())
    }

    fn progress(&mut self, progress: &Progress) {
        if self.last_report.elapsed() >= Duration::from_secs(1) {
            self.last_report = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            tracing::info!(
                "loading: {:.1}% ({} batches, {:.0} batches/s)",
                progress.percent(),
                self.frames,
                self.frames as f64 / secs
            );
        }
    }
}
