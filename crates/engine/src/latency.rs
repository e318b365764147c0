//! The latency monitor (Redis's `latency.c`): for each kind of event — a command, a write or
//! an fsync of the log — the times it took at least `latency-monitor-threshold` milliseconds
//! (0, the default, turns the monitor off), one sample per second, the last 160 of them, and
//! the worst ever. `LATENCY LATEST`, `HISTORY` and `RESET` read and clear them.
//!
//! The engine never reads a clock: the server times commands and the log writer times its
//! `write(2)`s and fsyncs, and offers the durations here with the current Unix time. Under
//! `--fsync always` the `aof-fsync-always` event is the one to watch: every write's reply
//! waits for that fsync, so its spikes are the spikes clients see.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const HISTORY_LEN: usize = 160;

/// A command without the `fast` flag, timed by the server.
pub const COMMAND: &str = "command";
/// A command with the `fast` flag (O(1) or O(log N)).
pub const FAST_COMMAND: &str = "fast-command";
/// A `write(2)` of the log.
pub const LOG_WRITE: &str = "aof-write";
/// An fsync of the log that replies wait for (`--fsync always`).
pub const LOG_FSYNC_ALWAYS: &str = "aof-fsync-always";
/// A slice of active expiry (Redis's `expire-cycle`).
pub const EXPIRE_CYCLE: &str = "expire-cycle";

/// One second's worst latency of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub unix_secs: u64,
    pub millis: u64,
}

/// The samples of one event, oldest first, and its worst latency since the last reset.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Series {
    samples: Vec<Sample>,
    pub max_millis: u64,
}

impl Series {
    /// Oldest first.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    pub fn latest(&self) -> Option<Sample> {
        self.samples.last().copied()
    }

    /// A second keeps its worst sample only, as Redis keeps it.
    fn add(&mut self, sample: Sample) {
        self.max_millis = self.max_millis.max(sample.millis);
        if let Some(last) = self.samples.last_mut().filter(|last| last.unix_secs == sample.unix_secs) {
            last.millis = last.millis.max(sample.millis);
            return;
        }
        if self.samples.len() == HISTORY_LEN {
            self.samples.remove(0);
        }
        self.samples.push(sample);
    }
}

/// The monitor and its setting.
#[derive(Debug, Default)]
pub struct LatencyMonitor {
    threshold_ms: AtomicU64,
    events: Mutex<HashMap<&'static str, Series>>,
}

impl LatencyMonitor {
    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    pub fn set_threshold_ms(&self, millis: u64) {
        self.threshold_ms.store(millis, Ordering::Relaxed);
    }

    /// Whether an event that took `millis` is recorded: for callers that would read a
    /// clock only to offer it.
    pub fn is_spike(&self, millis: u64) -> bool {
        let threshold = self.threshold_ms();
        threshold != 0 && millis >= threshold
    }

    /// Records that `event` took `millis` at `unix_secs`, if the monitor is on and that is
    /// at least its threshold: the one check made for every command, so it takes no lock
    /// below the threshold.
    pub fn offer(&self, event: &'static str, unix_secs: u64, millis: u64) {
        if !self.is_spike(millis) {
            return;
        }
        self.events.lock().entry(event).or_default().add(Sample { unix_secs, millis });
    }

    /// Every event with samples, by name.
    pub fn events(&self) -> Vec<(&'static str, Series)> {
        let mut events: Vec<_> = self.events.lock().iter().map(|(name, series)| (*name, series.clone())).collect();
        events.sort_unstable_by_key(|(name, _)| *name);
        events
    }

    /// The samples of the event named `name`, if it has any.
    pub fn series(&self, name: &[u8]) -> Option<Series> {
        self.events.lock().iter().find(|(event, _)| event.as_bytes() == name).map(|(_, series)| series.clone())
    }

    /// Forgets the named events (all of them with `None`); returns how many had samples.
    pub fn reset(&self, names: Option<&[&[u8]]>) -> usize {
        let mut events = self.events.lock();
        let before = events.len();
        match names {
            None => events.clear(),
            Some(names) => events.retain(|event, _| !names.contains(&event.as_bytes())),
        }
        before - events.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn millis(series: &Series) -> Vec<(u64, u64)> {
        series.samples().iter().map(|s| (s.unix_secs, s.millis)).collect()
    }

    #[test]
    fn nothing_is_recorded_while_the_threshold_is_zero_or_not_reached() {
        let monitor = LatencyMonitor::default();
        monitor.offer(COMMAND, 100, 1_000);
        assert!(monitor.events().is_empty(), "off by default");
        monitor.set_threshold_ms(10);
        monitor.offer(COMMAND, 100, 9);
        assert!(monitor.events().is_empty());
        monitor.offer(COMMAND, 100, 10);
        assert_eq!(millis(&monitor.series(b"command").unwrap()), [(100, 10)]);
    }

    #[test]
    fn one_sample_per_second_keeps_the_worst_and_the_max_is_all_time() {
        let monitor = LatencyMonitor::default();
        monitor.set_threshold_ms(1);
        monitor.offer(LOG_FSYNC_ALWAYS, 100, 20);
        monitor.offer(LOG_FSYNC_ALWAYS, 101, 30);
        monitor.offer(LOG_FSYNC_ALWAYS, 101, 10);
        monitor.offer(LOG_FSYNC_ALWAYS, 102, 5);
        let series = monitor.series(b"aof-fsync-always").unwrap();
        assert_eq!(millis(&series), [(100, 20), (101, 30), (102, 5)]);
        assert_eq!(series.latest(), Some(Sample { unix_secs: 102, millis: 5 }));
        assert_eq!(series.max_millis, 30);
    }

    #[test]
    fn the_history_keeps_the_last_160_seconds() {
        let monitor = LatencyMonitor::default();
        monitor.set_threshold_ms(1);
        for second in 0..200 {
            monitor.offer(COMMAND, 1_000 + second, 1 + second);
        }
        let series = monitor.series(b"command").unwrap();
        assert_eq!(series.samples().len(), HISTORY_LEN);
        assert_eq!(series.samples()[0], Sample { unix_secs: 1_040, millis: 41 });
        assert_eq!(series.max_millis, 200);
    }

    #[test]
    fn reset_forgets_the_named_events_and_counts_them() {
        let monitor = LatencyMonitor::default();
        monitor.set_threshold_ms(1);
        for event in [COMMAND, FAST_COMMAND, LOG_WRITE] {
            monitor.offer(event, 1, 5);
        }
        assert_eq!(monitor.reset(Some(&[b"command", b"nope", b"command"])), 1);
        assert_eq!(monitor.events().iter().map(|(name, _)| *name).collect::<Vec<_>>(), [LOG_WRITE, FAST_COMMAND]);
        assert_eq!(monitor.reset(None), 2);
        assert!(monitor.events().is_empty());
    }
}
