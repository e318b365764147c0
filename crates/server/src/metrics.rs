//! Prometheus metrics, shared by both front ends (`GET /metrics` on the HTTP port).
//!
//! Nothing is recorded here per command: the command latency histogram and the calls,
//! failures and rejections per command are the engine's own striped counters (the ones
//! `INFO commandstats` reports), and they, like clients, keys per database, memory and log
//! positions, are read when `/metrics` is scraped. (The histogram used to be a `metrics`
//! histogram: one shared bucket push per command, ~5% of a GET's CPU time.) The `metrics`
//! recorder keeps the HTTP request figures and renders the gauges.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use parking_lot::Mutex;

use staykv_engine::stats::CommandTotals;
use staykv_storage::LogIo;

use crate::connection::Shared;
use crate::persistence::PersistenceFigures;

/// Latency buckets, in seconds, of HTTP requests (which include waiting for fsync) and of
/// the log's fsyncs.
const HTTP_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];
/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

const COMMAND_LATENCY: &str = "staykv_command_duration_seconds";
const HTTP_LATENCY: &str = "staykv_http_request_duration_seconds";
const LOG_FSYNC: &str = "staykv_log_fsync_duration_seconds";
const LOG_WRITE: &str = "staykv_log_write_duration_seconds";

struct Installed {
    handle: PrometheusHandle,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Install the process-wide recorder and start its upkeep task. Call once, inside the
/// runtime, before any front end starts. A second call (or a failure) leaves metrics off
/// rather than stopping the server.
pub fn install() {
    if INSTALLED.get().is_some() {
        return;
    }
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_LATENCY.into()), HTTP_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(LOG_FSYNC.into()), HTTP_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(LOG_WRITE.into()), HTTP_BUCKETS));
    let handle = match builder.and_then(PrometheusBuilder::install_recorder) {
        Ok(handle) => handle,
        Err(error) => {
            tracing::warn!(%error, "metrics are off: cannot install the Prometheus recorder");
            return;
        }
    };
    describe();
    let upkeep = handle.clone();
    if INSTALLED.set(Installed { handle }).is_ok() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_EVERY);
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(HTTP_LATENCY, Unit::Seconds, "HTTP API request time, fsync wait included.");
    describe_histogram!(LOG_FSYNC, Unit::Seconds, "Time each fsync of the write-ahead log took.");
    describe_histogram!(LOG_WRITE, Unit::Seconds, "Time each write(2) of the write-ahead log took.");
    describe_counter!("staykv_commands_total", "Commands executed, per command (both front ends).");
    describe_counter!("staykv_command_errors_total", "Commands that ran and answered an error, per command.");
    describe_counter!("staykv_commands_rejected_total", "Commands refused before running (arity, auth, ...).");
    describe_counter!("staykv_http_requests_total", "HTTP API requests by endpoint and status code.");
    describe_gauge!("staykv_connected_clients", "Open RESP connections.");
    describe_gauge!("staykv_http_requests_in_flight", "HTTP API requests being served.");
    describe_gauge!("staykv_keys", "Keys per database.");
    describe_gauge!("staykv_expiring_keys", "Keys with a deadline, per database.");
    describe_gauge!("staykv_memory_rss_bytes", Unit::Bytes, "Resident set size of the process.");
    describe_gauge!("staykv_memory_used_bytes", Unit::Bytes, "Memory allocated (what maxmemory is compared with).");
    describe_gauge!("staykv_maxmemory_bytes", Unit::Bytes, "The maxmemory limit, 0 for none.");
    describe_counter!("staykv_keyspace_hits_total", "Key lookups that found the key.");
    describe_counter!("staykv_keyspace_misses_total", "Key lookups that found no key.");
    describe_counter!("staykv_expired_keys_total", "Keys removed because their deadline passed.");
    describe_counter!("staykv_evicted_keys_total", "Keys removed to stay under maxmemory.");
    describe_counter!("staykv_connections_received_total", "RESP connections accepted.");
    describe_counter!("staykv_connections_rejected_total", "RESP connections refused for maxclients.");
    describe_counter!("staykv_clients_evicted_total", "RESP connections closed for maxmemory-clients.");
    describe_gauge!("staykv_log_last_seq", "Sequence number of the last batch appended to the write-ahead log.");
    describe_gauge!("staykv_log_durable_seq", "Sequence number up to which the log is fsynced.");
    describe_gauge!("staykv_log_healthy", "1 while the log can be written, 0 while writes are refused (MISCONF).");
    describe_gauge!("staykv_data_bytes", Unit::Bytes, "Bytes of the live data files, per part (snapshot, log).");
    describe_gauge!("staykv_changes_since_last_snapshot", "Writes since the last snapshot was written.");
    describe_counter!("staykv_compactions_total", "Compactions (snapshot written, older log dropped) completed.");
    describe_gauge!("staykv_compaction_in_progress", "1 while a compaction runs.");
    describe_gauge!(
        "staykv_last_compaction_success",
        "1 if the last compaction succeeded (or none has run), 0 if it failed."
    );
    describe_gauge!(
        "staykv_last_snapshot_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last snapshot written (or of the start)."
    );
    describe_gauge!("staykv_loading", "1 while the data directory is being recovered.");
    describe_gauge!("staykv_uptime_seconds", Unit::Seconds, "Seconds since start.");
}

/// Per (endpoint, status code): the latency histogram and the request counter.
type HttpHandles = HashMap<(&'static str, u16), (Histogram, Counter)>;

/// Record one finished HTTP API request.
pub fn record_http(endpoint: &'static str, status: u16, elapsed: Duration) {
    if INSTALLED.get().is_none() {
        return;
    }
    // The handles are kept: `histogram!`/`counter!` with labels build the key (and a String
    // for the status) and look it up in the registry on every call; keeping them took the
    // HTTP session flow from 58.7k to 62.4k req/s.
    static HANDLES: OnceLock<Mutex<HttpHandles>> = OnceLock::new();
    let mut handles = HANDLES.get_or_init(Mutex::default).lock();
    let (latency, requests) = handles.entry((endpoint, status)).or_insert_with(|| {
        (
            histogram!(HTTP_LATENCY, "endpoint" => endpoint),
            counter!("staykv_http_requests_total", "endpoint" => endpoint, "status" => status.to_string()),
        )
    });
    latency.record(elapsed.as_secs_f64());
    requests.increment(1);
}

/// Record one `write(2)` or fsync of the log (on the thread that made it). The writes'
/// count against the writes acknowledged shows how many frames each carries.
pub fn record_log_io(io: LogIo, took: Duration) {
    if INSTALLED.get().is_some() {
        static FSYNC: OnceLock<Histogram> = OnceLock::new();
        static WRITE: OnceLock<Histogram> = OnceLock::new();
        let (histogram, name) = match io {
            LogIo::Write => (&WRITE, LOG_WRITE),
            LogIo::Sync | LogIo::BackgroundSync => (&FSYNC, LOG_FSYNC),
        };
        histogram.get_or_init(|| histogram!(name)).record(took.as_secs_f64());
    }
}

/// Set the gauge of HTTP requests in flight.
pub fn set_http_in_flight(value: usize) {
    if INSTALLED.get().is_some() {
        static IN_FLIGHT: OnceLock<Gauge> = OnceLock::new();
        IN_FLIGHT.get_or_init(|| gauge!("staykv_http_requests_in_flight")).set(value as f64);
    }
}

/// How long a scrape waits for the shards' locks before it leaves the key counts as they were.
const KEY_COUNT_WAIT: Duration = Duration::from_secs(1);

/// The Prometheus text exposition, with the scrape-time figures refreshed first.
pub fn render(shared: &Shared) -> String {
    let Some(installed) = INSTALLED.get() else {
        return "# metrics are not available: the recorder could not be installed\n".into();
    };
    let engine = &shared.engine;
    let commands: Vec<_> = (engine.table.stat_names().iter().enumerate())
        .map(|(index, name)| (name.to_string(), engine.counters.command_totals(index)))
        .filter(|(_, totals)| totals.calls + totals.failed + totals.rejected > 0)
        .collect();
    for (name, totals) in &commands {
        counter!("staykv_commands_total", "command" => name.clone()).absolute(totals.calls);
        counter!("staykv_command_errors_total", "command" => name.clone()).absolute(totals.failed);
        counter!("staykv_commands_rejected_total", "command" => name.clone()).absolute(totals.rejected);
    }
    // A scrape answers even while a script holds every shard (Redis answers INFO with BUSY
    // then): the key counts stay those of the last scrape that could take them.
    let key_counts = engine.db_sizes_by(Instant::now() + KEY_COUNT_WAIT);
    for (db, (keys, expiring)) in key_counts.into_iter().flatten().enumerate() {
        gauge!("staykv_keys", "db" => db.to_string()).set(keys as f64);
        gauge!("staykv_expiring_keys", "db" => db.to_string()).set(expiring as f64);
    }
    gauge!("staykv_connected_clients").set(shared.host.clients.lock().len() as f64);
    gauge!("staykv_memory_rss_bytes").set(crate::stats::rss_bytes() as f64);
    gauge!("staykv_memory_used_bytes").set(crate::memory::used() as f64);
    gauge!("staykv_maxmemory_bytes").set(crate::memory::limit() as f64);
    gauge!("staykv_uptime_seconds").set(shared.host.started.elapsed().as_secs_f64());
    record_counters(shared);
    record_persistence(&shared.persistence.figures());
    let mut text = installed.handle.render();
    write_command_latency(&mut text, &commands);
    let _ = writeln!(
        text,
        "# HELP staykv_info The running version.\n# TYPE staykv_info gauge\nstaykv_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    text
}

/// The keyspace's and the connections' counters (`INFO stats`), as they stand.
fn record_counters(shared: &Shared) {
    let total = |stat: fn(&staykv_engine::stats::Stats) -> &AtomicU64| shared.engine.counters.total(stat);
    let load = |count: &AtomicU64| count.load(Ordering::Relaxed);
    let host = &shared.host;
    for (name, count) in [
        ("staykv_keyspace_hits_total", total(|s| &s.keyspace_hits)),
        ("staykv_keyspace_misses_total", total(|s| &s.keyspace_misses)),
        ("staykv_expired_keys_total", total(|s| &s.expired_keys)),
        ("staykv_evicted_keys_total", total(|s| &s.evicted_keys)),
        ("staykv_connections_received_total", load(&host.connections_received)),
        ("staykv_connections_rejected_total", load(&host.rejected_connections)),
        ("staykv_clients_evicted_total", load(&host.evicted_clients)),
    ] {
        counter!(name).absolute(count);
    }
}

/// The log's positions and health, the data files' sizes and the compactions.
fn record_persistence(figures: &PersistenceFigures) {
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    gauge!("staykv_log_last_seq").set(figures.last_seq as f64);
    gauge!("staykv_log_durable_seq").set(figures.durable_seq as f64);
    gauge!("staykv_log_healthy").set(flag(figures.log_healthy));
    gauge!("staykv_loading").set(flag(figures.load.is_some()));
    gauge!("staykv_data_bytes", "part" => "snapshot").set(figures.snapshot_bytes as f64);
    gauge!("staykv_data_bytes", "part" => "log").set(figures.log_bytes as f64);
    gauge!("staykv_changes_since_last_snapshot").set(figures.changes_since_save as f64);
    counter!("staykv_compactions_total").absolute(figures.compactions);
    gauge!("staykv_compaction_in_progress").set(flag(figures.compacting));
    gauge!("staykv_last_compaction_success").set(flag(figures.last_ok));
    gauge!("staykv_last_snapshot_timestamp_seconds").set(figures.last_save_unix as f64);
}

/// The command latency histogram in the Prometheus text format, from the engine's buckets.
fn write_command_latency(text: &mut String, commands: &[(String, CommandTotals)]) {
    let _ = writeln!(text, "# HELP {COMMAND_LATENCY} Time to execute a command (without waiting for fsync).");
    let _ = writeln!(text, "# TYPE {COMMAND_LATENCY} histogram");
    for (name, totals) in commands.iter().filter(|(_, totals)| totals.calls > 0) {
        // Powers of two of nanoseconds, 2.048 µs to 68.7 s: the engine's histogram by octave.
        for (bound, cumulative) in totals.cumulative_by_octave() {
            let le = bound as f64 / 1e9;
            let _ = writeln!(text, "{COMMAND_LATENCY}_bucket{{command=\"{name}\",le=\"{le}\"}} {cumulative}");
        }
        let count: u64 = totals.latency.iter().sum();
        let sum = totals.nanos as f64 / 1e9;
        let _ = writeln!(text, "{COMMAND_LATENCY}_bucket{{command=\"{name}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(text, "{COMMAND_LATENCY}_sum{{command=\"{name}\"}} {sum}");
        let _ = writeln!(text, "{COMMAND_LATENCY}_count{{command=\"{name}\"}} {count}");
    }
}
