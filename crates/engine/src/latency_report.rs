//! `LATENCY DOCTOR` and `LATENCY GRAPH`: the latency monitor's samples ([`crate::latency`])
//! told as Redis 7.0 tells them (`createLatencyReport`, `latencyCommandGenSparkeline` in its
//! `latency.c`), with the same texts.
//!
//! The doctor's advice is Redis's, kept where it is true of StayKV: StayKV never forks, has no
//! eviction cycle events and runs on mimalloc, so the advice about fork rates, transparent
//! huge pages (whose cost Redis sees in fork's copy-on-write) and recompiling without
//! jemalloc is never given.

use std::fmt::Write as _;

use crate::latency::{Series, COMMAND, EXPIRE_CYCLE, FAST_COMMAND, LOG_FSYNC_ALWAYS, LOG_WRITE};
use crate::sparkline::{self, Point};

/// What the doctor needs beside the samples.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub now_secs: u64,
    pub threshold_ms: u64,
    /// `slowlog-log-slower-than`, negative when the slow log is off.
    pub slowlog_threshold_us: i64,
    /// `appendfsync always`: replies wait for the log's fsync.
    pub fsync_always: bool,
    /// `hz`: how often a second the active expiry cycle runs.
    pub hz: u32,
}

const DISABLED: &str = "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n";
const NO_SPIKES: &str = "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n";
const SPIKES: &str =
    "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n";
const NO_ADVICE: &str = "\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n";
const ADVICE_FOLLOWS: &str = "\nI have a few advices for you:\n\n";

/// Redis's advice, in the order it prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Advice {
    EnableSlowlog,
    TuneSlowlog,
    InspectSlowlog,
    Scheduler,
    LocalDisk,
    Ssd,
    RelaxFsync,
    Hz,
    LargeObjects,
}

impl Advice {
    fn text(self, settings: &Settings) -> String {
        let threshold_us = settings.threshold_ms.saturating_mul(1000);
        match self {
            Advice::EnableSlowlog => format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {threshold_us}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n"),
            Advice::TuneSlowlog => format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {threshold_us}'.\n"),
            Advice::InspectSlowlog => "- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n".into(),
            // Redis's fifth point (recompile with MALLOC=libc instead of jemalloc) is left out:
            // StayKV is built with mimalloc.
            Advice::Scheduler => "- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n".into(),
            Advice::LocalDisk => "- It is strongly advised to use local disks for persistence, especially if you are using AOF. Remote disks provided by platform-as-a-service providers are known to be slow.\n".into(),
            Advice::Ssd => "- SSD disks are able to reduce fsync latency, and total time needed for snapshotting and AOF log rewriting (resulting in smaller memory usage). With extremely high write load SSD disks can be a good option. However Redis should perform reasonably with high load using normal disks. Use this advice as a last resort.\n".into(),
            Advice::RelaxFsync => "- Your fsync policy is set to 'always'. It is very hard to get good performances with such a setup, if possible try to relax the fsync policy to 'onesec'.\n".into(),
            Advice::Hz => "- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n".into(),
            Advice::LargeObjects => "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n".into(),
        }
    }
}

/// The advice an event calls for.
fn advice_for(event: &str, settings: &Settings) -> Vec<Advice> {
    match event {
        COMMAND => {
            let slowlog = if settings.slowlog_threshold_us < 0 {
                Some(Advice::EnableSlowlog)
            } else {
                let threshold_ms = i64::try_from(settings.threshold_ms).unwrap_or(i64::MAX);
                (settings.slowlog_threshold_us / 1000 > threshold_ms).then_some(Advice::TuneSlowlog)
            };
            slowlog.into_iter().chain([Advice::InspectSlowlog, Advice::LargeObjects]).collect()
        }
        FAST_COMMAND => vec![Advice::Scheduler],
        // A write of the log with no child process competing: Redis's `aof-write-alone`,
        // without its data=writeback advice (StayKV's recovery drops a torn tail itself).
        LOG_WRITE => vec![Advice::LocalDisk, Advice::Ssd],
        LOG_FSYNC_ALWAYS if settings.fsync_always => vec![Advice::RelaxFsync],
        // Redis gives the `hz` advice only below 100.
        EXPIRE_CYCLE if settings.hz < 100 => vec![Advice::Hz, Advice::LargeObjects],
        EXPIRE_CYCLE => vec![Advice::LargeObjects],
        _ => Vec::new(),
    }
}

/// Redis's statistics of one event's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stats {
    samples: u64,
    average_ms: u64,
    mean_deviation_ms: u64,
    /// Seconds from the oldest sample to now (at least 1).
    period_secs: u64,
}

fn analyze(series: &Series, now_secs: u64) -> Stats {
    let samples = series.samples();
    let count = samples.len() as u64;
    if count == 0 {
        return Stats { samples: 0, average_ms: 0, mean_deviation_ms: 0, period_secs: 0 };
    }
    let average_ms = samples.iter().map(|s| s.millis).sum::<u64>() / count;
    let mean_deviation_ms = samples.iter().map(|s| s.millis.abs_diff(average_ms)).sum::<u64>() / count;
    let oldest = samples.iter().map(|s| s.unix_secs).min().unwrap_or(now_secs);
    Stats { samples: count, average_ms, mean_deviation_ms, period_secs: now_secs.saturating_sub(oldest).max(1) }
}

/// `LATENCY DOCTOR`'s report on `events` (as [`crate::latency::LatencyMonitor::events`]).
pub fn doctor(events: &[(&str, Series)], settings: &Settings) -> String {
    if events.is_empty() && settings.threshold_ms == 0 {
        return DISABLED.into();
    }
    if events.is_empty() {
        return NO_SPIKES.into();
    }
    let mut report = String::from(SPIKES);
    let mut advice = Vec::new();
    for (number, (event, series)) in events.iter().enumerate() {
        let stats = analyze(series, settings.now_secs);
        let period = stats.period_secs as f64 / stats.samples.max(1) as f64;
        let _ = writeln!(
            report,
            "{}. {event}: {} latency spikes (average {}ms, mean deviation {}ms, period {period:.2} sec). Worst all time event {}ms.",
            number + 1,
            stats.samples,
            stats.average_ms,
            stats.mean_deviation_ms,
            series.max_millis,
        );
        advice.extend(advice_for(event, settings));
    }
    advice.sort_unstable();
    advice.dedup();
    if advice.is_empty() {
        report.push_str(NO_ADVICE);
        return report;
    }
    report.push_str(ADVICE_FOLLOWS);
    for item in advice {
        report.push_str(&item.text(settings));
    }
    report
}

/// Columns of `LATENCY GRAPH` (Redis's `LATENCY_GRAPH_COLS`).
const GRAPH_COLUMNS: usize = 80;
/// Rows of its graph.
const GRAPH_ROWS: usize = 4;

/// `LATENCY GRAPH`: a header with the event's highest and lowest sample and its worst ever,
/// a rule, and the samples drawn oldest first, each labelled with how long ago it was.
pub fn graph(event: &str, series: &Series, now_secs: u64) -> String {
    let samples = series.samples();
    let high = samples.iter().map(|s| s.millis).max().unwrap_or(0);
    let low = samples.iter().map(|s| s.millis).min().unwrap_or(0);
    let points: Vec<Point> = samples
        .iter()
        .map(|s| Point { value: s.millis as f64, label: ago(now_secs.saturating_sub(s.unix_secs)) })
        .collect();
    format!(
        "{event} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n{}",
        series.max_millis,
        "-".repeat(GRAPH_COLUMNS),
        sparkline::render(&points, GRAPH_COLUMNS, GRAPH_ROWS)
    )
}

/// `12s`, `5m`, `3h`, `2d`: in the largest unit that fits, rounded down.
fn ago(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::latency::LatencyMonitor;

    fn settings() -> Settings {
        Settings { now_secs: 1_000, threshold_ms: 1, slowlog_threshold_us: 10_000, fsync_always: false, hz: 10 }
    }

    fn monitor_with(samples: &[(&'static str, u64, u64)]) -> LatencyMonitor {
        let monitor = LatencyMonitor::default();
        monitor.set_threshold_ms(1);
        for &(event, secs, millis) in samples {
            monitor.offer(event, secs, millis);
        }
        monitor
    }

    #[test]
    fn the_disabled_and_quiet_texts() {
        let off = Settings { threshold_ms: 0, ..settings() };
        assert_eq!(doctor(&[], &off), DISABLED);
        assert_eq!(doctor(&[], &settings()), NO_SPIKES);
    }

    #[test]
    fn statistics_and_advice_for_slow_commands() {
        let monitor = monitor_with(&[(COMMAND, 990, 10), (COMMAND, 995, 20), (COMMAND, 996, 30)]);
        let report = doctor(&monitor.events(), &settings());
        let expected = format!(
            "{SPIKES}1. command: 3 latency spikes (average 20ms, mean deviation 6ms, period 3.33 sec). Worst all time event 30ms.\n{ADVICE_FOLLOWS}{}{}{}",
            Advice::TuneSlowlog.text(&settings()),
            Advice::InspectSlowlog.text(&settings()),
            Advice::LargeObjects.text(&settings()),
        );
        assert_eq!(report, expected);
        assert!(report.contains("'CONFIG SET slowlog-log-slower-than 1000'"));
    }

    #[test]
    fn advice_is_given_once_in_redis_order() {
        let monitor = monitor_with(&[(LOG_WRITE, 999, 5), (COMMAND, 999, 5), (FAST_COMMAND, 1_000, 2)]);
        let report = doctor(&monitor.events(), &Settings { slowlog_threshold_us: -1, ..settings() });
        let advice: Vec<&str> = report.lines().filter(|line| line.starts_with("- ")).collect();
        let expected = [
            Advice::EnableSlowlog,
            Advice::InspectSlowlog,
            Advice::Scheduler,
            Advice::LocalDisk,
            Advice::Ssd,
            Advice::LargeObjects,
        ];
        assert_eq!(advice.len(), expected.len());
        for (line, item) in advice.iter().zip(expected) {
            assert!(item.text(&settings()).starts_with(line), "{line}");
        }
        assert!(report.contains("3. fast-command: 1 latency spikes (average 2ms, mean deviation 0ms, period 1.00 sec)"));
    }

    #[test]
    fn fsync_spikes_get_advice_only_under_fsync_always() {
        let monitor = monitor_with(&[(LOG_FSYNC_ALWAYS, 900, 40)]);
        assert!(doctor(&monitor.events(), &settings()).ends_with(NO_ADVICE));
        let always = doctor(&monitor.events(), &Settings { fsync_always: true, ..settings() });
        assert!(always.ends_with(&format!("{ADVICE_FOLLOWS}{}", Advice::RelaxFsync.text(&settings()))));
        assert!(always.contains("period 100.00 sec"));
    }

    #[test]
    fn expire_cycle_spikes_advise_hz_100_below_it() {
        let monitor = monitor_with(&[(EXPIRE_CYCLE, 900, 30)]);
        let advice = |hz| {
            let report = doctor(&monitor.events(), &Settings { hz, ..settings() });
            report.lines().filter(|line| line.starts_with("- ")).map(str::to_string).collect::<Vec<_>>()
        };
        let (at_10, at_100) = (advice(10), advice(100));
        assert!(
            matches!(&at_10[..], [hz, large] if hz.contains("'CONFIG SET hz 100'") && large.contains("large objects"))
        );
        assert!(matches!(&at_100[..], [large] if large.starts_with("- Deleting, expiring or evicting")));
    }

    #[test]
    fn the_graph_has_its_header_rule_and_labels() {
        let monitor = monitor_with(&[(COMMAND, 940, 10), (COMMAND, 999, 30), (COMMAND, 1_000, 20)]);
        let series = monitor.series(b"command").unwrap();
        let graph = graph(COMMAND, &series, 1_000);
        let rule = "-".repeat(80);
        let expected = format!(
            "command - high 30 ms, low 10 ms (all time high 30 ms)\n{rule}\n # \n |_\n ||\n_||\n   \n110\nmss\n"
        );
        assert_eq!(graph, expected);
    }

    #[test]
    fn labels_use_the_largest_unit_that_fits() {
        assert_eq!([0, 59, 60, 3_599, 3_600, 86_399, 86_400].map(ago), ["0s", "59s", "1m", "59m", "1h", "23h", "1d"]);
    }
}
