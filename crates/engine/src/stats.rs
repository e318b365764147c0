//! The counters `INFO stats`, `INFO commandstats` and `/metrics` report.
//!
//! Every command bumps several of them (calls, run time, a latency bucket, hits or misses).
//! As single atomics shared by all worker threads they were a hot spot: each increment on
//! one core takes the cache line away from the other, and the two cores serving GETs kept
//! trading it. So each counter set is *striped*: `SLOTS` copies, each on its own cache
//! lines, a thread always adding to the copy of its own slot. Readers (INFO, a scrape) sum the
//! copies; they are rare. A sum may miss an increment in flight on another thread, as the
//! single atomic could; a client always sees its own commands counted, since a thread adds
//! before the reply is sent.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Copies of each counter set: more than the worker threads of a typical machine, so that
/// threads seldom share one (sharing is correct, only slower).
const SLOTS: usize = 8;

/// The command latency histogram's buckets, log-linear as an HDR histogram's: run times under
/// 1,024 ns in bucket 0; then every power of two from 2^10 ns (~1 µs) to 2^36 ns (~69 s)
/// split in `SUB_BUCKETS` equal parts, so a bucket is at most a sixteenth of its lower
/// bound wide; longer runs in the last bucket. INFO latencystats, LATENCY HISTOGRAM and `/metrics`
/// read them. Finding a bucket is a count of leading zeros and a shift.
pub const LATENCY_BUCKETS: usize = 2 + OCTAVES * SUB_BUCKETS;
/// Powers of two the histogram spans, from `2^FIRST_OCTAVE` ns.
const OCTAVES: usize = 26;
const FIRST_OCTAVE: u32 = 10;
/// Bits under the leading one that pick the bucket within a power of two.
const SUB_BITS: u32 = 4;
const SUB_BUCKETS: usize = 1 << SUB_BITS;

/// Redis's `latency-tracking-info-percentiles` default.
const DEFAULT_INFO_PERCENTILES: [f64; 3] = [50.0, 99.0, 99.9];

/// A percentile as Redis writes it in INFO and CONFIG GET: `%f` without trailing zeros
/// (`50`, `99.9`, `12.345679`).
pub fn format_percentile(p: f64) -> String {
    let text = format!("{p:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The bucket of a run time of `nanos`.
pub fn latency_bucket(nanos: u64) -> usize {
    if nanos < 1 << FIRST_OCTAVE {
        return 0;
    }
    let octave = (63 - nanos.leading_zeros() - FIRST_OCTAVE) as usize;
    if octave >= OCTAVES {
        return LATENCY_BUCKETS - 1;
    }
    let part = ((nanos >> (octave as u32 + FIRST_OCTAVE - SUB_BITS)) as usize) & (SUB_BUCKETS - 1);
    1 + octave * SUB_BUCKETS + part
}

/// The first run time (ns) past bucket `index`: its exclusive upper bound; `None` for the
/// last bucket, which has none.
pub fn latency_bucket_end(index: usize) -> Option<u64> {
    if index == 0 {
        return Some(1 << FIRST_OCTAVE);
    }
    let (octave, part) = ((index - 1) / SUB_BUCKETS, (index - 1) % SUB_BUCKETS);
    if octave >= OCTAVES {
        return None;
    }
    let low = 1u64 << (octave as u32 + FIRST_OCTAVE);
    Some(low + (part as u64 + 1) * (low / SUB_BUCKETS as u64))
}

/// Counters of `INFO stats`.
#[derive(Debug, Default)]
pub struct Stats {
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub expired_keys: AtomicU64,
    pub evicted_keys: AtomicU64,
    pub total_commands: AtomicU64,
    /// Error replies sent, whatever made them (`total_error_replies`).
    pub error_replies: AtomicU64,
    /// Bytes read from and written to RESP clients (`total_net_input_bytes`, `..._output_...`).
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    /// Reads from and writes to RESP clients' sockets (`total_reads_processed`, `..._writes_...`).
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    /// Time spent in active expiry cycles, in microseconds (`expire_cycle_cpu_milliseconds`,
    /// which Redis measures on the clock too).
    pub expire_cycle_micros: AtomicU64,
}

impl Stats {
    fn counters(&self) -> [&AtomicU64; 11] {
        [
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.expired_keys,
            &self.evicted_keys,
            &self.total_commands,
            &self.error_replies,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.reads,
            &self.writes,
            &self.expire_cycle_micros,
        ]
    }
}

/// One command's latency histogram in one slot.
type Buckets = [AtomicU64; LATENCY_BUCKETS];

/// Counters of one command, for `INFO commandstats` and the latency histogram.
#[derive(Debug, Default)]
pub struct CommandStats {
    pub calls: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
    /// Runs per latency bucket ([`latency_bucket`]), made at the first run this slot counts:
    /// most commands never run, and counters for each of them in every slot made the empty
    /// server's `used_memory` 1.8 MB instead of 0.5 when there were 106 per command (418 now).
    latency: std::sync::OnceLock<Box<Buckets>>,
    /// Total run time in nanoseconds: `INFO commandstats`' `usec` and the histogram's sum.
    /// (Whole microseconds a run would count a 0.9 µs GET as 0.)
    pub nanos: AtomicU64,
}

impl CommandStats {
    fn counters(&self) -> impl Iterator<Item = &AtomicU64> {
        let buckets = self.latency.get().into_iter().flat_map(|buckets| buckets.iter());
        [&self.calls, &self.rejected, &self.failed, &self.nanos].into_iter().chain(buckets)
    }
}

/// A command's counters summed over the slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTotals {
    pub calls: u64,
    pub rejected: u64,
    pub failed: u64,
    pub latency: [u64; LATENCY_BUCKETS],
    pub nanos: u64,
}

impl Default for CommandTotals {
    fn default() -> Self {
        CommandTotals { calls: 0, rejected: 0, failed: 0, latency: [0; LATENCY_BUCKETS], nanos: 0 }
    }
}

impl CommandTotals {
    /// The run time (µs) under which `percentile` percent of the runs took, read as the upper
    /// bound of the bucket it falls in (as an HDR histogram answers); 0 with no runs.
    pub fn percentile_micros(&self, percentile: f64) -> f64 {
        let runs: u64 = self.latency.iter().sum();
        if runs == 0 {
            return 0.0;
        }
        // The rank of the run at the percentile, 1-based, at least the first.
        let rank = ((percentile / 100.0 * runs as f64).ceil() as u64).clamp(1, runs);
        let mut seen = 0;
        for (index, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let end = latency_bucket_end(index).unwrap_or(1 << (FIRST_OCTAVE + OCTAVES as u32));
                return (end - 1) as f64 / 1000.0;
            }
        }
        0.0
    }

    /// For each power of two from 2^11 to 2^36 ns: (that bound, the runs shorter than it).
    /// Runs of 2^36 ns or more are in none.
    pub fn cumulative_by_octave(&self) -> Vec<(u64, u64)> {
        let mut seen = self.latency.first().copied().unwrap_or(0);
        let octaves = self.latency.get(1..=OCTAVES * SUB_BUCKETS).unwrap_or_default().chunks(SUB_BUCKETS);
        octaves
            .enumerate()
            .map(|(octave, parts)| {
                seen += parts.iter().sum::<u64>();
                (1u64 << (octave as u32 + FIRST_OCTAVE + 1), seen)
            })
            .collect()
    }
}

/// One slot's copy of every counter.
#[derive(Debug)]
struct Slot {
    stats: Stats,
    commands: Box<[CommandStats]>,
}

/// A slot alone on its cache lines.
#[derive(Debug)]
#[repr(align(128))]
struct Padded(Slot);

/// Error codes counted at most (Redis's `ERROR_STATS_NUMBER`): a client inventing codes
/// (a script's `redis.error_reply`) cannot grow the table without bound. Later new codes
/// still count in `total_error_replies`.
const MAX_ERROR_CODES: usize = 128;

/// The engine's counters, striped over `SLOTS` copies.
#[derive(Debug)]
pub struct Counters {
    /// Slot 0.
    first: Padded,
    /// Slots 1.. .
    rest: Box<[Padded]>,
    /// Where a thread that is not counting adds: never read.
    discarded: Box<Padded>,
    /// Error replies by code (`INFO errorstats`), in code order as Redis lists them. Errors
    /// are rare next to commands: one lock is enough.
    errors: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
    /// `latency-tracking`: whether run times go into the latency histograms.
    latency_tracking: std::sync::atomic::AtomicBool,
    /// `latency-tracking-info-percentiles`: what INFO latencystats reports.
    info_percentiles: parking_lot::RwLock<Vec<f64>>,
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// The slot of a thread that counts nothing for now ([`Counters::not_counting`]).
const DISCARD: usize = SLOTS;

thread_local! {
    static SLOT: std::cell::Cell<usize> = std::cell::Cell::new(NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS);
}

/// While it lives, what its thread adds goes to a slot no reader sums; see
/// [`Counters::not_counting`].
#[derive(Debug)]
#[must_use = "counting resumes when the guard is dropped"]
pub struct NotCounting {
    previous: usize,
}

impl Drop for NotCounting {
    fn drop(&mut self) {
        let previous = self.previous;
        // The thread is ending if its slot is gone: nothing left to restore.
        let _ = SLOT.try_with(|slot| slot.set(previous));
    }
}

impl Counters {
    pub fn new(commands: usize) -> Counters {
        let slot = || {
            Padded(Slot { stats: Stats::default(), commands: (0..commands).map(|_| CommandStats::default()).collect() })
        };
        Counters {
            first: slot(),
            rest: (1..SLOTS).map(|_| slot()).collect(),
            discarded: Box::new(slot()),
            errors: Default::default(),
            latency_tracking: true.into(),
            info_percentiles: parking_lot::RwLock::new(DEFAULT_INFO_PERCENTILES.to_vec()),
        }
    }

    pub fn latency_tracking(&self) -> bool {
        self.latency_tracking.load(Ordering::Relaxed)
    }

    /// `latency-tracking no` stops adding to the histograms; what they hold stays.
    pub fn set_latency_tracking(&self, on: bool) {
        self.latency_tracking.store(on, Ordering::Relaxed);
    }

    pub fn info_percentiles(&self) -> Vec<f64> {
        self.info_percentiles.read().clone()
    }

    /// `latency-tracking-info-percentiles`: numbers from 0 to 100, one space apart (none: an
    /// empty list), with Redis's error texts.
    pub fn set_info_percentiles(&self, text: &str) -> Result<(), &'static str> {
        let mut percentiles = Vec::new();
        for word in text.split(' ').filter(|_| !text.is_empty()) {
            let p: f64 = word.parse().map_err(|_| "Invalid latency-tracking-info-percentiles parameters")?;
            if !(0.0..=100.0).contains(&p) {
                return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]");
            }
            percentiles.push(p);
        }
        *self.info_percentiles.write() = percentiles;
        Ok(())
    }

    /// A command was refused before it ran (its `rejected_calls` in INFO commandstats).
    pub fn record_rejected(&self, index: Option<usize>) {
        if let Some(stats) = index.and_then(|index| self.command(index)) {
            stats.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A command ran and replied with an error (its `failed_calls` in INFO commandstats).
    pub fn record_failed(&self, index: Option<usize>) {
        if let Some(stats) = index.and_then(|index| self.command(index)) {
            stats.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an error reply by its code, the word before the first space within the first
    /// 32 bytes of the reply, its `-` included (`ERR` when there is none), as Redis's
    /// `afterErrorReply` reads the reply: trailing line breaks cut, others sent as spaces.
    pub fn record_error(&self, text: &str) {
        if SLOT.try_with(|slot| slot.get()) == Ok(DISCARD) {
            return;
        }
        self.stats().error_replies.fetch_add(1, Ordering::Relaxed);
        let text = text.trim_end_matches(['\r', '\n']);
        let head = text.as_bytes().get(..text.len().min(31)).unwrap_or_default();
        let code = head.iter().position(|b| b" \r\n".contains(b)).and_then(|end| text.get(..end)).unwrap_or("ERR");
        let mut errors = self.errors.lock();
        if let Some(count) = errors.get_mut(code) {
            *count += 1;
        } else if errors.len() < MAX_ERROR_CODES {
            errors.insert(code.to_string(), 1);
        }
    }

    /// Error replies per code, in code order.
    pub fn error_codes(&self) -> Vec<(String, u64)> {
        self.errors.lock().iter().map(|(code, count)| (code.clone(), *count)).collect()
    }

    fn local(&self) -> &Slot {
        match SLOT.try_with(|slot| slot.get()).unwrap_or(0) {
            DISCARD => &self.discarded.0,
            slot => &slot.checked_sub(1).and_then(|i| self.rest.get(i)).unwrap_or(&self.first).0,
        }
    }

    /// Until the guard is dropped, nothing this thread does is counted: not in INFO stats,
    /// commandstats, errorstats or the latency histograms. Recovery replays the log this
    /// way, as Redis loads its AOF without counting the commands it holds (they were counted
    /// when clients sent them, and a restart would otherwise report them as traffic).
    pub fn not_counting(&self) -> NotCounting {
        let previous = SLOT.try_with(|slot| slot.replace(DISCARD)).unwrap_or(0);
        NotCounting { previous }
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        std::iter::once(&self.first).chain(self.rest.iter()).map(|padded| &padded.0)
    }

    /// This thread's copy of the `INFO stats` counters, to add to.
    pub fn stats(&self) -> &Stats {
        &self.local().stats
    }

    /// This thread's copy of a command's counters, to add to.
    pub fn command(&self, index: usize) -> Option<&CommandStats> {
        self.local().commands.get(index)
    }

    /// Record a command's run time.
    pub fn record_run_time(&self, index: usize, elapsed: Duration) {
        let Some(stats) = self.command(index) else { return };
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        stats.nanos.fetch_add(nanos, Ordering::Relaxed);
        if !self.latency_tracking() {
            return;
        }
        let buckets = stats.latency.get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))));
        if let Some(count) = buckets.get(latency_bucket(nanos)) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An `INFO stats` counter summed over the slots.
    pub fn total(&self, counter: impl Fn(&Stats) -> &AtomicU64) -> u64 {
        self.slots().map(|slot| counter(&slot.stats).load(Ordering::Relaxed)).sum()
    }

    /// A command's counters summed over the slots.
    pub fn command_totals(&self, index: usize) -> CommandTotals {
        let mut totals = CommandTotals::default();
        for stats in self.slots().filter_map(|slot| slot.commands.get(index)) {
            let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
            totals.calls += load(&stats.calls);
            totals.rejected += load(&stats.rejected);
            totals.failed += load(&stats.failed);
            totals.nanos += load(&stats.nanos);
            let buckets = stats.latency.get().into_iter().flat_map(|buckets| buckets.iter());
            for (total, count) in totals.latency.iter_mut().zip(buckets) {
                *total += load(count);
            }
        }
        totals
    }

    /// `CONFIG RESETSTAT`: every counter back to zero.
    pub fn reset(&self) {
        self.errors.lock().clear();
        for slot in self.slots() {
            let all = slot.stats.counters().into_iter().chain(slot.commands.iter().flat_map(CommandStats::counters));
            for counter in all {
                counter.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn nothing_is_counted_while_a_thread_is_not_counting() {
        let counters = Counters::new(1);
        let count = |counters: &Counters| {
            counters.stats().total_commands.fetch_add(1, Ordering::Relaxed);
            counters.record_error("ERR no");
            counters.record_rejected(Some(0));
        };
        {
            let _quiet = counters.not_counting();
            count(&counters);
            let _nested = counters.not_counting();
            count(&counters);
        }
        assert_eq!(counters.total(|s| &s.total_commands), 0);
        assert_eq!(counters.total(|s| &s.error_replies), 0);
        assert_eq!(counters.command_totals(0).rejected, 0);
        assert!(counters.error_codes().is_empty());
        count(&counters);
        assert_eq!(counters.total(|s| &s.total_commands), 1);
        assert_eq!(counters.error_codes(), vec![("ERR".to_string(), 1)]);
    }

    #[test]
    fn totals_sum_every_thread_and_reset_clears_them() {
        let counters = Counters::new(3);
        std::thread::scope(|scope| {
            for _ in 0..SLOTS + 3 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        counters.stats().keyspace_hits.fetch_add(1, Ordering::Relaxed);
                        if let Some(stats) = counters.command(2) {
                            stats.calls.fetch_add(1, Ordering::Relaxed);
                        }
                        counters.record_run_time(2, Duration::from_micros(30));
                    }
                });
            }
        });
        let runs = (SLOTS as u64 + 3) * 100;
        assert_eq!(counters.total(|s| &s.keyspace_hits), runs);
        let totals = counters.command_totals(2);
        assert_eq!((totals.calls, totals.nanos), (runs, runs * 30_000));
        // 30 µs (30,000 ns) is in [2^14, 2^15) ns, its fifteenth sixteenth [29,696, 30,720).
        assert_eq!(totals.latency[latency_bucket(30_000)], runs);
        assert_eq!(latency_bucket(30_000), 1 + 4 * 16 + 13);
        assert_eq!(totals.latency.iter().sum::<u64>(), runs);
        assert_eq!(counters.command_totals(1), CommandTotals::default());
        counters.reset();
        assert_eq!(counters.total(|s| &s.keyspace_hits), 0);
        assert_eq!(counters.command_totals(2), CommandTotals::default());
    }

    #[test]
    fn errors_count_by_code_up_to_the_limit() {
        let counters = Counters::new(1);
        for text in ["WRONGTYPE Operation", "ERR x", "NOSPACEINTHEFIRSTTHIRTYTWOBYTESATALL y", "ERR", "WRONGTYPE y"] {
            counters.record_error(text);
        }
        let codes = counters.error_codes();
        assert_eq!(codes, [("ERR".to_string(), 3), ("WRONGTYPE".to_string(), 2)]);
        for i in 0..200 {
            counters.record_error(&format!("E{i} invented"));
        }
        assert_eq!(counters.error_codes().len(), MAX_ERROR_CODES);
        assert_eq!(counters.total(|s| &s.error_replies), 205);
        counters.reset();
        assert!(counters.error_codes().is_empty());
    }

    #[test]
    fn latency_buckets_are_log_linear_and_each_end_is_the_next_start() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1023), 0);
        assert_eq!(latency_bucket(1024), 1);
        assert_eq!(latency_bucket(1087), 1);
        assert_eq!(latency_bucket(1088), 2);
        assert_eq!(latency_bucket(2047), 16);
        assert_eq!(latency_bucket(2048), 17);
        assert_eq!(latency_bucket(2048 + 127), 17);
        assert_eq!(latency_bucket(2048 + 128), 18);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
        assert_eq!(latency_bucket((1 << 36) - 1), LATENCY_BUCKETS - 2);
        for index in 0..LATENCY_BUCKETS - 1 {
            let end = latency_bucket_end(index).unwrap();
            assert_eq!(latency_bucket(end - 1), index, "last run time of bucket {index}");
            assert_eq!(latency_bucket(end), index + 1, "first run time after bucket {index}");
        }
        assert_eq!(latency_bucket_end(LATENCY_BUCKETS - 1), None);
    }

    #[test]
    fn percentiles_and_octaves_come_from_the_buckets() {
        let counters = Counters::new(1);
        assert_eq!(counters.command_totals(0).percentile_micros(50.0), 0.0);
        // 98 runs of 3 µs, one of 100 µs, one of 5 ms.
        for _ in 0..98 {
            counters.record_run_time(0, Duration::from_micros(3));
        }
        counters.record_run_time(0, Duration::from_micros(100));
        counters.record_run_time(0, Duration::from_millis(5));
        let totals = counters.command_totals(0);
        // 3,000 ns is in [2,944, 3,072): reported as 3.071 µs, as an HDR histogram reports
        // the highest value of the bucket; 100 µs in [98,304, 102,400) ns.
        assert_eq!(totals.percentile_micros(50.0), 3.071);
        assert_eq!(totals.percentile_micros(98.0), 3.071);
        assert_eq!(totals.percentile_micros(99.0), 102.399);
        assert_eq!(totals.percentile_micros(99.9), 5_242.879);
        assert_eq!(totals.percentile_micros(100.0), 5_242.879);
        let octaves = totals.cumulative_by_octave();
        assert_eq!(octaves.len(), 26);
        assert_eq!(octaves.first(), Some(&(2048, 0)));
        assert_eq!(octaves.get(1), Some(&(4096, 98)));
        assert_eq!(octaves.iter().find(|(_, runs)| *runs == 100), Some(&(8_388_608, 100)));
        assert_eq!(octaves.last(), Some(&(1 << 36, 100)));
        assert!(octaves.windows(2).all(|w| w[0].0 * 2 == w[1].0 && w[0].1 <= w[1].1));
    }
}
