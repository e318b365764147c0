//! Server commands: databases, INFO, CONFIG, COMMAND, TIME, persistence and SHUTDOWN.

use std::fmt::Write as _;

use bytes::Bytes;
use staykv_resp::Reply;

use super::{arg, is, text};
use crate::command::{flags::*, tips, CmdResult, CommandSpec, CommandTable, Subcommand, SubcommandSpec};
use crate::errors::{self, err};
use crate::exec::Ctx;
use crate::glob;
use crate::key_spec::{self, FoundKey};
use crate::keyspace::Db;
use crate::stats::format_percentile;
use crate::watch::Replacement;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("dbsize", 1, READONLY | FAST | ALL_SHARDS, "keyspace", dbsize)
        .tips(&["request_policy:all_shards", "response_policy:agg_sum"]),
    CommandSpec::new("flushdb", -1, WRITE | ALL_SHARDS, "keyspace", flushdb)
        .categories(&["dangerous"])
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    CommandSpec::new("flushall", -1, WRITE | ALL_SHARDS, "keyspace", flushall)
        .categories(&["dangerous"])
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    CommandSpec::new("swapdb", 3, WRITE | FAST | ALL_SHARDS, "keyspace", swapdb).categories(&["dangerous"]),
    CommandSpec::new("time", 1, LOADING | STALE | FAST, "server", time).tips(&["nondeterministic_output"]),
    CommandSpec::new("info", -1, LOADING | STALE, "server", info).categories(&["dangerous"]).tips(tips::SHARD_REPORT),
    CommandSpec::new("config", -2, ADMIN | NOSCRIPT | LOADING | STALE, "server", config)
        .subcommands(CONFIG_SUBCOMMANDS),
    CommandSpec::new("command", -1, LOADING | STALE, "connection", command)
        .subcommands(COMMAND_SUBCOMMANDS)
        .tips(&["nondeterministic_output_order"]),
    CommandSpec::new("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, "server", shutdown),
    CommandSpec::new("save", 1, ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING, "server", persistence),
    CommandSpec::new("bgsave", -1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, "server", persistence),
    CommandSpec::new("bgrewriteaof", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, "server", persistence),
    CommandSpec::new("lastsave", 1, LOADING | STALE | FAST, "server", persistence)
        .categories(&["admin", "dangerous"])
        .tips(&["nondeterministic_output"]),
    CommandSpec::new("slowlog", -2, 0, "server", slowlog).subcommands(SLOWLOG_SUBCOMMANDS),
    CommandSpec::new("latency", -2, ADMIN | NOSCRIPT | LOADING | STALE, "server", latency)
        .subcommands(LATENCY_SUBCOMMANDS),
    CommandSpec::new("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED, "server", debug),
    CommandSpec::new("module", -2, 0, "server", module).subcommands(MODULE_SUBCOMMANDS),
    CommandSpec::new("wait", 3, NOSCRIPT, "connection", wait)
        .tips(&["request_policy:all_shards", "response_policy:agg_min"]),
    CommandSpec::new("waitaof", 4, NOSCRIPT, "connection", waitaof),
];

/// The SLOWLOG subcommands, with Redis 7's arities (checked before the handler).
const SLOWLOG_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("get", -2, ADMIN | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "nondeterministic_output"]),
    SubcommandSpec::new("len", 2, ADMIN | LOADING | STALE).tips(&[
        "request_policy:all_nodes",
        "response_policy:agg_sum",
        "nondeterministic_output",
    ]),
    SubcommandSpec::new("reset", 2, ADMIN | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    SubcommandSpec::new("help", 2, LOADING | STALE),
];

/// The LATENCY subcommands, with Redis 7's arities.
const LATENCY_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("doctor", 2, ADMIN | NOSCRIPT | LOADING | STALE).tips(tips::NODE_REPORT),
    SubcommandSpec::new("graph", 3, ADMIN | NOSCRIPT | LOADING | STALE).tips(tips::NODE_REPORT),
    SubcommandSpec::new("latest", 2, ADMIN | NOSCRIPT | LOADING | STALE).tips(tips::NODE_REPORT),
    SubcommandSpec::new("history", 3, ADMIN | NOSCRIPT | LOADING | STALE).tips(tips::NODE_REPORT),
    SubcommandSpec::new("reset", -2, ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    SubcommandSpec::new("histogram", -2, ADMIN | NOSCRIPT | LOADING | STALE).tips(tips::NODE_REPORT),
    SubcommandSpec::new("help", 2, LOADING | STALE),
];

/// The MODULE subcommands, with Redis 7's arities. StayKV loads no modules.
const MODULE_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("list", 2, ADMIN | NOSCRIPT).tips(&["nondeterministic_output_order"]),
    SubcommandSpec::new("load", -3, NO_ASYNC_LOADING | ADMIN | NOSCRIPT | PROTECTED),
    SubcommandSpec::new("loadex", -3, NO_ASYNC_LOADING | ADMIN | NOSCRIPT | PROTECTED),
    SubcommandSpec::new("unload", 3, NO_ASYNC_LOADING | ADMIN | NOSCRIPT | PROTECTED),
    SubcommandSpec::new("help", 2, LOADING | STALE),
];

const MODULE_HELP: &[&str] = &[
    "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
    "HELP",
    "    Prints this help.",
];

const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// The COMMAND subcommands StayKV has, with Redis 7's arities (checked before the handler).
/// Not DOCS: StayKV has no command documentation to give, and answering it with less than
/// Redis's (names and groups) made `redis-cli` show "summary: (null)" and no argument hints;
/// an unknown subcommand, as Redis 6 answers, has it use the help built into it instead.
const COMMAND_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("getkeys", -4, LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("getkeysandflags", -4, LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("info", -2, LOADING | STALE)
        .categories(&["connection"])
        .tips(&["nondeterministic_output_order"]),
    SubcommandSpec::new("count", 2, LOADING | STALE).categories(&["connection"]),
    SubcommandSpec::new("list", -2, LOADING | STALE)
        .categories(&["connection"])
        .tips(&["nondeterministic_output_order"]),
    SubcommandSpec::new("help", 2, LOADING | STALE).categories(&["connection"]),
];

/// The CONFIG subcommands StayKV has, with Redis 7's arities (checked before the handler).
const CONFIG_SUBCOMMANDS: &[SubcommandSpec] = &[
    SubcommandSpec::new("resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("get", -3, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("rewrite", 2, ADMIN | NOSCRIPT | LOADING | STALE),
    SubcommandSpec::new("set", -4, ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    SubcommandSpec::new("help", 2, LOADING | STALE),
];

const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];

const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all commands.",
    "COUNT",
    "    Return the total number of commands in this server.",
    "LIST",
    "    Return a list of all commands in this server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full command.",
    "HELP",
    "    Prints this help.",
];

fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let db = ctx.client.db;
    let total: usize = ctx.all_shards().filter_map(|s| s.dbs.get(db)).map(Db::len).sum();
    Ok(Reply::Int(total as i64))
}

/// FLUSHDB/FLUSHALL take an optional ASYNC or SYNC: whether the emptied databases are freed
/// in the background. Without either, `lazyfree-lazy-user-flush` decides (`no`: SYNC).
fn flush_is_async(ctx: &Ctx, args: &[Bytes]) -> Result<bool, Reply> {
    match args.get(1..).unwrap_or_default() {
        [] => Ok(ctx.engine.lazyfree.is_on(crate::lazyfree::LazyOption::UserFlush)),
        [mode] if is(mode, "async") => Ok(true),
        [mode] if is(mode, "sync") => Ok(false),
        _ => Err(errors::syntax()),
    }
}

fn flushdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lazily = flush_is_async(ctx, args)?;
    let db = ctx.client.db;
    touch_existing_watched(ctx, db);
    let mut emptied = Vec::new();
    for shard in ctx.all_shards() {
        if let Some(slice) = shard.dbs.get_mut(db) {
            emptied.push(slice.take());
        }
    }
    ctx.free_databases(emptied, lazily);
    let invalidations = ctx.engine.tracking.flush_invalidations(ctx.client.id);
    ctx.deliveries().append(invalidations);
    ctx.propagate(vec![Bytes::from_static(b"FLUSHDB")]);
    Ok(Reply::Ok)
}

fn flushall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lazily = flush_is_async(ctx, args)?;
    for db in 0..ctx.engine.keyspace.databases() {
        touch_existing_watched(ctx, db);
    }
    let mut emptied = Vec::new();
    for shard in ctx.all_shards() {
        emptied.extend(shard.dbs.iter_mut().map(Db::take));
    }
    ctx.free_databases(emptied, lazily);
    let invalidations = ctx.engine.tracking.flush_invalidations(ctx.client.id);
    ctx.deliveries().append(invalidations);
    ctx.propagate(vec![Bytes::from_static(b"FLUSHALL")]);
    Ok(Reply::Ok)
}

/// FLUSHDB/FLUSHALL fail the transactions watching keys that existed in the database (a
/// key that was already expired when watched does not count: see `watch.rs`).
fn touch_existing_watched(ctx: &mut Ctx, db: usize) {
    for key in ctx.engine.watches.watched_in(db) {
        let exists = ctx.peek_raw(db, &key).is_some();
        ctx.engine.watches.touch_emptied(db, &key, exists, Replacement::None);
    }
}

fn swapdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Both indexes must be C ints before either is range-checked, as in Redis.
    let parse = |i: usize, which: &str| -> Result<i64, Reply> {
        crate::num::parse_i64(arg(args, i)?)
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| Reply::Error(format!("ERR invalid {which} DB index")))
    };
    let in_range = |n: i64| usize::try_from(n).ok().filter(|&n| n < ctx.engine.keyspace.databases());
    let (a, b) = (parse(1, "first")?, parse(2, "second")?);
    let (a, b) = (in_range(a).ok_or_else(|| err(errors::DB_INDEX))?, in_range(b).ok_or_else(|| err(errors::DB_INDEX))?);
    if a != b {
        // A watched key is touched if it exists on either side of the swap, as in Redis
        // (`touchAllWatchedKeysInDb`, which also tells expired keys apart).
        let now = ctx.now;
        for (db, other) in [(a, b), (b, a)] {
            for key in ctx.engine.watches.watched_in(db) {
                let exists = ctx.peek_raw(db, &key).is_some();
                let replacement = match ctx.peek_raw(other, &key) {
                    None => Replacement::Absent,
                    Some(e) if e.is_expired(now) => Replacement::Expired,
                    Some(_) => Replacement::Live,
                };
                ctx.engine.watches.touch_emptied(db, &key, exists, replacement);
            }
        }
        for shard in ctx.all_shards() {
            shard.dbs.swap(a, b);
            shard.expiry.swap(a, b);
        }
    }
    ctx.propagate_args(args);
    Ok(Reply::Ok)
}

/// `LATENCY HISTOGRAM [command ...]`: for each command named (every command, without names)
/// that has run, its runs and their cumulative distribution by powers of two of
/// microseconds, as Redis 7.0 answers from its HDR histograms: `{name: {"calls": n,
/// "histogram_usec": {bound: runs at or under it, ...}}}`, a bound listed only where the count
/// grows. A container's subcommands count apart (`config|get`): naming the container lists
/// them all; a command named twice is answered twice, as in Redis.
fn latency_histogram(ctx: &Ctx, names: &[Bytes]) -> Reply {
    let table = &ctx.engine.table;
    let indexes: Vec<usize> = if names.is_empty() {
        (0..table.stat_names().len()).collect()
    } else {
        names.iter().flat_map(|name| table.stats_named(name)).collect()
    };
    let mut out = Vec::new();
    for index in indexes {
        let (Some(name), totals) = (table.stat_names().get(index), ctx.engine.counters.command_totals(index)) else {
            continue;
        };
        let runs: u64 = totals.latency.iter().sum();
        if runs == 0 {
            continue;
        }
        let mut buckets = Vec::new();
        let mut previous = 0;
        let under_a_microsecond = (1024, totals.latency.first().copied().unwrap_or(0));
        for (bound_nanos, cumulative) in std::iter::once(under_a_microsecond).chain(totals.cumulative_by_octave()) {
            if cumulative > previous {
                buckets.push((Reply::count(bound_nanos / 1000), Reply::count(cumulative)));
            }
            previous = cumulative;
        }
        let histogram = vec![
            (Reply::bulk_str("calls"), Reply::count(runs)),
            (Reply::bulk_str("histogram_usec"), Reply::Map(buckets)),
        ];
        out.push((Reply::bulk_str(&name.to_string()), Reply::Map(histogram)));
    }
    Reply::Map(out)
}

fn slowlog(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let log = &ctx.engine.slowlog;
    match arg(args, 1)? {
        // More than a count is Redis's syntax error (below).
        s if is(s, "get") && args.len() <= 3 => {
            let count = match args.get(2) {
                None => Some(10),
                Some(n) => match crate::num::parse_i64(n) {
                    Some(-1) => None,
                    Some(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                    _ => return Err(err("ERR count should be greater than or equal to -1")),
                },
            };
            Ok(Reply::Array(log.newest(count).into_iter().map(slowlog_entry).collect()))
        }
        s if is(s, "get") => Err(errors::subcommand_syntax(s, "slowlog")),
        s if is(s, "len") => Ok(Reply::count(log.len() as u64)),
        s if is(s, "reset") => {
            log.reset();
            Ok(Reply::Ok)
        }
        s if is(s, "help") => Ok(super::help(SLOWLOG_HELP)),
        s => Err(errors::unknown_subcommand(s, "slowlog")),
    }
}

/// LATENCY (Redis's `latency.c`): what the latency monitor recorded, see
/// [`crate::latency`].
fn latency(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let monitor = &ctx.engine.latency;
    match arg(args, 1)? {
        s if is(s, "latest") => Ok(Reply::Array(
            monitor
                .events()
                .into_iter()
                .filter_map(|(name, series)| {
                    let latest = series.latest()?;
                    let fields = vec![
                        Reply::bulk_str(name),
                        Reply::count(latest.unix_secs),
                        Reply::count(latest.millis),
                        Reply::count(series.max_millis),
                    ];
                    Some(Reply::Array(fields))
                })
                .collect(),
        )),
        s if is(s, "history") => {
            let series = monitor.series(arg(args, 2)?).unwrap_or_default();
            let samples =
                series.samples().iter().map(|s| Reply::Array(vec![Reply::count(s.unix_secs), Reply::count(s.millis)]));
            Ok(Reply::Array(samples.collect()))
        }
        s if is(s, "reset") => {
            let names: Vec<&[u8]> = args.iter().skip(2).map(|a| &a[..]).collect();
            let reset = monitor.reset(if names.is_empty() { None } else { Some(&names) });
            Ok(Reply::count(reset as u64))
        }
        s if is(s, "doctor") => Ok(latency_doctor(ctx)),
        s if is(s, "graph") => {
            let name = arg(args, 2)?;
            let series = monitor.series(name).filter(|series| !series.samples().is_empty()).ok_or_else(|| {
                err(&format!("ERR No samples available for event '{}'", String::from_utf8_lossy(name)))
            })?;
            let graph = crate::latency_report::graph(&String::from_utf8_lossy(name), &series, ctx.now / 1000);
            Ok(Reply::verbatim(graph))
        }
        s if is(s, "histogram") => Ok(latency_histogram(ctx, args.get(2..).unwrap_or_default())),
        s if is(s, "help") => Ok(super::help(LATENCY_HELP)),
        s => Err(errors::unknown_subcommand(s, "latency")),
    }
}

/// `LATENCY DOCTOR`, see [`crate::latency_report::doctor`].
fn latency_doctor(ctx: &Ctx) -> Reply {
    let monitor = &ctx.engine.latency;
    let config = |name: &[u8]| ctx.host.config_get(name).into_iter().next().map(|(_, value)| value);
    let settings = crate::latency_report::Settings {
        now_secs: ctx.now / 1000,
        threshold_ms: monitor.threshold_ms(),
        slowlog_threshold_us: ctx.engine.slowlog.threshold_us(),
        fsync_always: config(b"appendfsync").is_some_and(|policy| policy == "always"),
        hz: config(b"hz").and_then(|hz| hz.parse().ok()).unwrap_or(10),
    };
    Reply::verbatim(crate::latency_report::doctor(&monitor.events(), &settings))
}

fn slowlog_entry(entry: crate::slowlog::Entry) -> Reply {
    Reply::Array(vec![
        Reply::count(entry.id),
        Reply::count(entry.unix_secs),
        Reply::count(entry.micros),
        Reply::bulks(entry.args),
        Reply::Bulk(Bytes::from(entry.peer)),
        Reply::Bulk(entry.name),
    ])
}

fn time(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let clock = ctx.host.clock_micros().unwrap_or(ctx.now.saturating_mul(1000));
    let (secs, micros) = (clock / 1_000_000, clock % 1_000_000);
    Ok(Reply::bulks([crate::num::i64_bytes(secs as i64), crate::num::i64_bytes(micros as i64)]))
}

/// Every section, in the order Redis prints them (whatever order they are asked in).
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// The sections `INFO` without arguments leaves out.
const NOT_DEFAULT: &[&str] = &["commandstats", "latencystats"];

fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.reports_keyspace();
    let requested: Vec<String> = args.iter().skip(1).map(|a| text(a).to_ascii_lowercase()).collect();
    let asked = |name: &str| requested.iter().any(|s| s == name);
    let everything = asked("all") || asked("everything");
    let defaults = requested.is_empty() || asked("default");
    let wanted = |section: &str| everything || asked(section) || (defaults && !NOT_DEFAULT.contains(&section));
    let mut out = String::new();
    for &section in SECTIONS.iter().filter(|section| wanted(section)) {
        let body = section_body(ctx, section);
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let title = match section {
            "cpu" => "CPU".to_string(),
            other => other.get(..1).unwrap_or_default().to_ascii_uppercase() + other.get(1..).unwrap_or_default(),
        };
        let _ = write!(out, "# {title}\r\n{body}");
    }
    Ok(Reply::verbatim(out))
}

fn section_body(ctx: &mut Ctx, section: &str) -> String {
    let host = ctx.host.info_section(section).unwrap_or_default();
    let engine = ctx.engine;
    let mut out = String::new();
    match section {
        "errorstats" => {
            for (code, count) in engine.counters.error_codes() {
                let _ = write!(out, "errorstat_{code}:count={count}\r\n");
            }
        }
        "replication" => out.push_str("role:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n"),
        "cluster" => out.push_str("cluster_enabled:0\r\n"),
        "keyspace" => {
            for (db, footprint) in ctx.db_footprints().into_iter().enumerate() {
                if footprint.keys > 0 {
                    let (keys, expires, avg_ttl) = (footprint.keys, footprint.volatile, footprint.avg_ttl_ms());
                    let _ = write!(out, "db{db}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n");
                }
            }
        }
        "latencystats" if engine.counters.latency_tracking() => {
            let percentiles = engine.counters.info_percentiles();
            for (index, name) in engine.table.stat_names().iter().enumerate() {
                let totals = engine.counters.command_totals(index);
                if totals.latency.iter().any(|&runs| runs > 0) {
                    let fields: Vec<String> = percentiles
                        .iter()
                        .map(|&p| format!("p{}={:.3}", format_percentile(p), totals.percentile_micros(p)))
                        .collect();
                    let _ = write!(out, "latency_percentiles_usec_{name}:{}\r\n", fields.join(","));
                }
            }
        }
        "commandstats" => {
            for (index, name) in engine.table.stat_names().iter().enumerate() {
                let stats = engine.counters.command_totals(index);
                let (calls, rejected, usec) = (stats.calls, stats.rejected, stats.nanos / 1_000);
                if calls == 0 && rejected == 0 {
                    continue;
                }
                let per_call = if calls > 0 { stats.nanos as f64 / 1_000.0 / calls as f64 } else { 0.0 };
                let _ = write!(
                    out,
                    "cmdstat_{name}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={}\r\n",
                    stats.failed
                );
            }
        }
        _ => {}
    }
    out.push_str(&host);
    out
}

/// CONFIG SET of one or more parameters, together as in Redis 7.0: an unknown parameter or one
/// named twice is refused before anything is set (the first such problem is reported), and
/// when setting one fails every parameter named gets back the value of its CONFIG GET text.
/// (That text of notify-keyspace-events leaves `n` out when `A` is there, see
/// `notify::format_flags`, so a failed CONFIG SET naming it loses the `new` class: Redis's
/// behaviour, kept.)
fn config_set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pairs = args.get(2..).unwrap_or_default();
    // The value each named parameter has now, by its CONFIG GET text; a name CONFIG GET does
    // not know is not a parameter.
    let mut backup: Vec<(String, String)> = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks_exact(2) {
        // Refusals of the name name it as typed, as Redis's do.
        let typed = text(arg(pair, 0)?);
        let name = typed.to_ascii_lowercase();
        let current = ctx.host.config_get(name.as_bytes()).into_iter().find(|(known, _)| *known == name);
        let Some((_, value)) = current else {
            return Err(err(&format!("ERR Unknown option or number of arguments for CONFIG SET - '{typed}'")));
        };
        if backup.iter().any(|(named, _)| *named == name) {
            return Err(err(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{typed}') - duplicate parameter"
            )));
        }
        backup.push((name, value));
    }
    for pair in pairs.chunks_exact(2) {
        if let Err(error) = ctx.host.config_set(&text(arg(pair, 0)?), arg(pair, 1)?) {
            for (name, value) in &backup {
                let _ = ctx.host.config_set(name, value.as_bytes());
            }
            return Err(Reply::Error(error));
        }
    }
    if backup.iter().any(|(name, _)| name == "maxmemory") && ctx.host.over_memory_limit() {
        // A limit lowered under what is used evicts now, as Redis's starts its eviction
        // timer, not at the next write. In the background: inside EXEC this command holds
        // every shard, and an eviction here would wait for them for ever.
        ctx.host.evict_in_background();
    }
    Ok(Reply::Ok)
}

fn config(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = arg(args, 1)?;
    // The subcommand and its arity were checked before running (`CONFIG_SUBCOMMANDS`).
    match sub {
        s if is(s, "get") => {
            let mut pairs: Vec<(String, String)> = Vec::new();
            for pattern in args.iter().skip(2) {
                // A plain name is answered as it was typed (`MAXMEMORY`), as Redis 7.0 does.
                let typed = (!pattern.iter().any(|c| b"[*?".contains(c))).then(|| text(pattern));
                for (name, value) in ctx.host.config_get(pattern) {
                    let name = typed.clone().unwrap_or(name);
                    if !pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                        pairs.push((name, value));
                    }
                }
            }
            Ok(Reply::Map(pairs.into_iter().map(|(n, v)| (Reply::bulk_str(&n), Reply::bulk_str(&v))).collect()))
        }
        s if is(s, "set") && args.len().is_multiple_of(2) => config_set(ctx, args),
        // Past the subcommand's arity (at least a name and a value), pairs that do not pair up
        // are Redis's syntax error.
        s if is(s, "set") => Err(errors::syntax()),
        s if is(s, "resetstat") => {
            ctx.engine.counters.reset();
            ctx.engine.lazyfree.reset_stats();
            ctx.host.config_resetstat();
            Ok(Reply::Ok)
        }
        s if is(s, "rewrite") && ctx.host.config_file().is_none() => {
            Err(err("ERR The server is running without a config file"))
        }
        // The --config TOML file is the operator's: StayKV does not rewrite it.
        s if is(s, "rewrite") => Err(err(
            "ERR CONFIG REWRITE is not supported: settings made with CONFIG SET last until a restart; put lasting ones in the --config file",
        )),
        s if is(s, "help") => Ok(super::help(CONFIG_HELP)),
        s => Err(errors::unknown_subcommand(s, "config")),
    }
}

fn command(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let table = &ctx.engine.table;
    let Some(sub) = args.get(1) else {
        return Ok(Reply::Array(table.all().iter().map(|s| s.info()).collect()));
    };
    match sub {
        s if is(s, "count") => Ok(Reply::Int(table.len() as i64)),
        s if is(s, "info") => {
            if args.len() == 2 {
                return Ok(Reply::Array(table.all().iter().map(|s| s.info()).collect()));
            }
            Ok(Reply::Array(args.iter().skip(2).map(|name| command_info(table, name)).collect()))
        }
        s if is(s, "list") => {
            let filter = match args.get(2..).unwrap_or_default() {
                [] => ListFilter::All,
                [by, kind, value] if is(by, "filterby") => ListFilter::parse(kind, value)?,
                _ => return Err(errors::syntax()),
            };
            let listed = table.all().iter().flat_map(|spec| spec.listed());
            let names = listed.filter(|(name, categories)| filter.lists(name, categories));
            Ok(Reply::Array(names.map(|(name, _)| Reply::Bulk(Bytes::from(name))).collect()))
        }
        s if is(s, "getkeys") => command_keys(table, args.get(2..).unwrap_or_default(), false),
        s if is(s, "getkeysandflags") => command_keys(table, args.get(2..).unwrap_or_default(), true),
        s if is(s, "help") => Ok(super::help(COMMAND_HELP)),
        s => Err(errors::unknown_subcommand(s, "command")),
    }
}

/// COMMAND GETKEYS and GETKEYSANDFLAGS: the keys of the command `target`, found as when it
/// runs under ACL rules, with what it does to each (Redis's `getKeysSubcommandImpl`).
fn command_keys(table: &CommandTable, target: &[Bytes], with_flags: bool) -> CmdResult {
    let invalid = || err("ERR Invalid command specified");
    let (_, spec) = target.first().and_then(|name| table.lookup(name)).ok_or_else(invalid)?;
    let subcommand = spec.subcommand(target);
    if subcommand == Subcommand::Unknown {
        return Err(invalid());
    }
    if !spec.takes_keys(target) {
        return Err(err("ERR The command has no key arguments"));
    }
    if !spec.arity_ok(target.len()) || matches!(subcommand, Subcommand::WrongArity(_)) {
        return Err(err("ERR Invalid number of arguments specified for command"));
    }
    let keys = spec.keys_with_flags(target);
    if keys.is_empty() && !spec.has(NO_MANDATORY_KEYS) {
        return Err(err("ERR Invalid arguments specified for command"));
    }
    let key_at = |found: &FoundKey| Reply::Bulk(target.get(found.position).cloned().unwrap_or_default());
    let reply = |found: &FoundKey| match with_flags {
        true => Reply::Array(vec![key_at(found), key_spec::key::reply(found.flags)]),
        false => key_at(found),
    };
    Ok(Reply::Array(keys.iter().map(reply).collect()))
}

/// `COMMAND INFO` of one name: a command's entry, a subcommand's (`client|kill`), or a null
/// (`$-1` in RESP2, as Redis's `addReplyNull`).
fn command_info(table: &CommandTable, name: &[u8]) -> Reply {
    if let Some((_, spec)) = table.lookup(name) {
        return spec.info();
    }
    let mut parts = name.splitn(2, |&b| b == b'|');
    let (Some(container), Some(sub)) = (parts.next(), parts.next()) else { return Reply::Nil };
    let Some((_, spec)) = table.lookup(container) else { return Reply::Nil };
    spec.subcommand_named(sub).map_or(Reply::Nil, |own| own.info(spec.name))
}

/// Which names `COMMAND LIST` lists.
enum ListFilter<'a> {
    All,
    /// FILTERBY PATTERN: full names matching a glob, ignoring case.
    Pattern(&'a [u8]),
    /// FILTERBY ACLCAT: the command and subcommands in a category.
    Category(&'a [u8]),
    /// FILTERBY MODULE: commands a module added (StayKV loads none).
    Module,
}

impl<'a> ListFilter<'a> {
    fn parse(kind: &[u8], value: &'a [u8]) -> Result<Self, Reply> {
        match kind {
            k if is(k, "pattern") => Ok(ListFilter::Pattern(value)),
            k if is(k, "aclcat") => Ok(ListFilter::Category(value)),
            k if is(k, "module") => Ok(ListFilter::Module),
            _ => Err(errors::syntax()),
        }
    }

    fn lists(&self, name: &str, categories: &[&str]) -> bool {
        match self {
            ListFilter::All => true,
            ListFilter::Pattern(pattern) => glob::matches(pattern, name.as_bytes(), true),
            ListFilter::Category(category) => categories.iter().any(|c| c.as_bytes().eq_ignore_ascii_case(category)),
            ListFilter::Module => false,
        }
    }
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`, parsed as Redis 7.0 parses it. The log is
/// flushed whatever is asked (SAVE and NOSAVE name what Redis's RDB would do), and a shutdown
/// here happens at once, so there is never one in progress for ABORT to stop.
fn shutdown(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut save, mut flags, mut abort) = (None, false, false);
    for option in args.iter().skip(1) {
        match option {
            o if is(o, "nosave") || is(o, "save") => {
                let wanted = is(o, "save");
                if save.is_some_and(|other| other != wanted) {
                    return Err(errors::syntax());
                }
                save = Some(wanted);
            }
            o if is(o, "now") || is(o, "force") => flags = true,
            o if is(o, "abort") => abort = true,
            _ => return Err(errors::syntax()),
        }
    }
    if abort {
        return Err(if flags || save.is_some() { errors::syntax() } else { err("ERR No shutdown in progress.") });
    }
    // Past a busy script only SHUTDOWN NOSAVE goes on; the arguments are checked first.
    if let Some(busy) = ctx.engine.scripting.busy_refusal(ctx.now).filter(|_| save != Some(false)) {
        return Err(busy);
    }
    ctx.host.shutdown(save).map_err(Reply::Error)?;
    Ok(Reply::Ok)
}

/// DEBUG: refused before it would run, as a protected command (flags::PROTECTED).
fn debug(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(not_enabled("DEBUG"))
}

/// MODULE: no module is loaded (loading one is refused as a protected command).
fn module(_ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match arg(args, 1)? {
        s if is(s, "list") => Ok(Reply::Array(Vec::new())),
        s if is(s, "help") => Ok(super::help(MODULE_HELP)),
        s => Err(errors::unknown_subcommand(s, "module")),
    }
}

/// Redis's refusal of a command its `enable-<command>-command` option (off by default) guards:
/// a protected one (DEBUG, MODULE LOAD...). Clients and tools that probe them get it, not an
/// unknown command.
pub(crate) fn not_enabled(command: &str) -> Reply {
    let option = command.to_ascii_lowercase();
    Reply::Error(format!(
        "ERR {command} command not allowed. If the enable-{option}-command option is set to \"local\", you can run \
         it from a local connection, otherwise you need to set this option in the configuration file, and then \
         restart the server."
    ))
}

fn persistence(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = text(arg(args, 0)?).to_ascii_lowercase();
    if name == "bgsave" && args.len() > 2 || (args.len() == 2 && !is(arg(args, 1)?, "schedule")) {
        return Err(errors::syntax());
    }
    // Inside EXEC Redis cannot fork: it schedules the job for after the transaction and
    // answers so, SCHEDULE or not. StayKV's starts at once; the reply is Redis's.
    let request = match (ctx.in_exec(), args.len()) {
        (true, _) => format!("{name} in exec"),
        (false, 2) => format!("{name} schedule"),
        (false, _) => name,
    };
    ctx.host.persistence(&request).map_err(Reply::Error)
}

/// A WAIT/WAITAOF timeout in milliseconds (0: forever) as a deadline.
fn wait_deadline(ctx: &Ctx, arg: &[u8]) -> Result<Option<u64>, Reply> {
    let ms = crate::num::parse_i64(arg).ok_or_else(|| err("ERR timeout is not an integer or out of range"))?;
    match u64::try_from(ms) {
        Err(_) => Err(err("ERR timeout is negative")),
        Ok(0) => Ok(None),
        Ok(ms) => ctx
            .now
            .checked_add(ms)
            .filter(|&at| at <= i64::MAX as u64)
            .map(Some)
            .ok_or_else(|| err("ERR timeout is out of range")),
    }
}

/// Asked for more replica acknowledgements than exist (StayKV has no replicas): block until
/// the deadline and answer `reply` then, as Redis does; at once inside MULTI or a script.
fn wait_for_replicas(ctx: &mut Ctx, wanted: i64, deadline: Option<u64>, reply: Reply) -> CmdResult {
    if wanted > 0 {
        ctx.block(&[], deadline);
    }
    Ok(reply)
}

/// WAIT numreplicas timeout: the number of replicas that acknowledged, always 0.
fn wait(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let replicas = super::int_arg(arg(args, 1)?)?;
    let deadline = wait_deadline(ctx, arg(args, 2)?)?;
    wait_for_replicas(ctx, replicas, deadline, Reply::Int(0))
}

/// WAITAOF numlocal numreplicas timeout: whether everything this client wrote (or read
/// before it was durable) is fsynced — forcing the fsync now if the policy has not yet done
/// it — and how many replicas have it (0).
fn waitaof(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let local = super::int_arg(arg(args, 1)?)?;
    if !(0..=1).contains(&local) {
        return Err(err("ERR value is out of range, value must between 0 and 1"));
    }
    let replicas = super::int_arg(arg(args, 2)?)?;
    if replicas < 0 {
        return Err(err("ERR value is out of range, must be positive"));
    }
    let deadline = wait_deadline(ctx, arg(args, 3)?)?;
    let synced = ctx.journal.fsync_through(ctx.client.last_seq);
    let reply = Reply::Array(vec![Reply::Int(i64::from(synced)), Reply::Int(0)]);
    wait_for_replicas(ctx, replicas, deadline, reply)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicU64, Ordering};

    use parking_lot::Mutex;
    use staykv_resp::Reply;

    use crate::client::Client;
    use crate::effects::Effect;
    use crate::exec::{Engine, EngineOptions, Journal, Outcome};

    const NOW: u64 = 1_700_000_000_000;

    /// A log that numbers batches and records what WAITAOF asked to have fsynced.
    #[derive(Default)]
    struct Log {
        last: AtomicU64,
        fsync_requests: Mutex<Vec<u64>>,
    }

    impl Journal for Log {
        fn append(&self, _time_ms: u64, _effects: &[Effect]) -> Result<u64, String> {
            Ok(self.last.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn fsync_through(&self, seq: u64) -> bool {
            self.fsync_requests.lock().push(seq);
            true
        }
    }

    fn run(engine: &Engine, client: &mut Client, log: &Log, line: &str) -> Outcome {
        engine.run_line(client, NOW, log, line)
    }

    fn pair(local: i64) -> Reply {
        Reply::Array(vec![Reply::Int(local), Reply::Int(0)])
    }

    /// CONFIG SET with a name and value left unpaired is Redis's syntax error; with fewer
    /// than a name and a value, the subcommand's arity error.
    #[test]
    fn config_set_with_unpaired_arguments_is_a_syntax_error() {
        let (engine, log) = (Engine::new(EngineOptions::default()), Log::default());
        let mut c = Client::new(1, true);
        let reply = run(&engine, &mut c, &log, "CONFIG SET notify-keyspace-events KEA XX").reply;
        assert_eq!(reply, Reply::Error("ERR syntax error".into()));
        let reply = run(&engine, &mut c, &log, "CONFIG SET notify-keyspace-events").reply;
        assert_eq!(reply, Reply::Error("ERR wrong number of arguments for 'config|set' command".into()));
    }

    /// `usec` sums the runs' nanoseconds: runs under a microsecond each (a GET takes about
    /// one) still add up, as the difference of Redis's microsecond clock readings does.
    #[test]
    fn commandstats_counts_runs_under_a_microsecond() {
        let (engine, log) = (Engine::new(EngineOptions::default()), Log::default());
        let mut c = Client::new(1, true);
        let get = *engine.table.stats_named(b"get").first().unwrap();
        for _ in 0..10 {
            engine.counters.command(get).unwrap().calls.fetch_add(1, Ordering::Relaxed);
            engine.counters.record_run_time(get, std::time::Duration::from_nanos(900));
        }
        let reply = run(&engine, &mut c, &log, "INFO commandstats").reply;
        let info = match reply {
            Reply::Verbatim(_, text) => String::from_utf8(text.to_vec()).unwrap(),
            other => format!("{other:?}"),
        };
        assert!(info.contains("cmdstat_get:calls=10,usec=9,usec_per_call=0.90,"), "{info}");
    }

    /// A host whose parameters are strings in a map; it refuses the value `bad`.
    #[derive(Default)]
    struct MapHost(parking_lot::Mutex<std::collections::BTreeMap<String, String>>);

    impl crate::host::Host for MapHost {
        fn config_get(&self, pattern: &[u8]) -> Vec<(String, String)> {
            let params = self.0.lock();
            params.iter().filter(|(n, _)| n.as_bytes() == pattern).map(|(n, v)| (n.clone(), v.clone())).collect()
        }
        fn config_set(&self, name: &str, value: &[u8]) -> Result<(), String> {
            if value == b"bad" {
                return Err(format!("ERR CONFIG SET failed (possibly related to argument '{name}')"));
            }
            self.0.lock().insert(name.to_string(), String::from_utf8_lossy(value).into_owned());
            Ok(())
        }
    }

    /// Redis 7.0 sets the parameters of one CONFIG SET together: when one fails, every one
    /// named gets back the value of its CONFIG GET text; one named twice is refused.
    #[test]
    fn a_failed_config_set_sets_back_every_parameter_it_named() {
        let (engine, log) = (Engine::new(EngineOptions::default()), Log::default());
        let mut c = Client::new(1, true);
        let host = MapHost::default();
        host.0.lock().extend([("a".to_string(), "0".to_string()), ("b".to_string(), "0".to_string())]);
        let mut config_set =
            |pairs: &str| engine.run_line_on(&host, &mut c, NOW, &log, &format!("CONFIG SET {pairs}")).reply;
        assert!(matches!(config_set("a 1 b bad"), Reply::Error(_)));
        assert_eq!(host.0.lock().get("a").map(String::as_str), Some("0"));
        // Named as typed, as Redis names it.
        let duplicate = config_set("a 1 A 2");
        let expected = "ERR CONFIG SET failed (possibly related to argument 'A') - duplicate parameter";
        assert_eq!(duplicate, Reply::Error(expected.into()));
        assert_eq!(config_set("a 1 b 2"), Reply::Ok);
        assert_eq!(host.0.lock().values().map(String::as_str).collect::<Vec<_>>(), ["1", "2"]);
    }

    /// A host whose notify-keyspace-events are the engine's (its CONFIG GET text by
    /// `notify::format_flags`, as the server's host) and whose `timeout` refuses any value.
    struct NotifyHost<'a>(&'a Engine);

    impl crate::host::Host for NotifyHost<'_> {
        fn config_get(&self, pattern: &[u8]) -> Vec<(String, String)> {
            let flags = crate::notify::format_flags(self.0.notifier.flags());
            [("notify-keyspace-events", flags), ("timeout", "0".to_string())]
                .into_iter()
                .filter(|(name, _)| name.as_bytes() == pattern)
                .map(|(name, value)| (name.to_string(), value))
                .collect()
        }
        fn config_set(&self, name: &str, value: &[u8]) -> Result<(), String> {
            let flags = crate::notify::parse_flags(std::str::from_utf8(value).unwrap_or_default());
            match (name, flags) {
                ("notify-keyspace-events", Some(flags)) => {
                    self.0.notifier.set_flags(flags);
                    Ok(())
                }
                _ => Err("ERR CONFIG SET failed".to_string()),
            }
        }
    }

    /// Redis 7.0 restores the parameters of a failed CONFIG SET from their CONFIG GET text,
    /// which drops `n` next to `A`: the `new` class is lost.
    #[test]
    fn failed_config_set_of_notify_events_drops_new_next_to_all() {
        let (engine, log) = (Engine::new(EngineOptions::default()), Log::default());
        let mut c = Client::new(1, true);
        engine.notifier.set_flags(crate::notify::parse_flags("AKEn").unwrap_or_default());
        let line = "CONFIG SET notify-keyspace-events AKEn timeout 5";
        let reply = engine.run_line_on(&NotifyHost(&engine), &mut c, NOW, &log, line).reply;
        assert_eq!(reply, Reply::Error("ERR CONFIG SET failed".into()));
        assert_eq!(crate::notify::format_flags(engine.notifier.flags()), "AKE");
        assert_eq!(engine.notifier.flags() & crate::notify::NEW, 0);
    }

    #[test]
    fn waitaof_fsyncs_through_the_clients_last_write() {
        let (engine, log) = (Engine::new(EngineOptions::default()), Log::default());
        let (mut writer, mut other) = (Client::new(1, true), Client::new(2, true));
        // A read waits for its shard's last write, and the shards' hasher is seeded per
        // process: the other client writes a key of another shard than "a", or the writer's
        // GET would rightly wait for that write too.
        let shard = |key: &str| engine.keyspace.shard_of(engine.keyspace.hash(key.as_bytes()));
        let apart = (0..1000).map(|i| format!("b{i}")).find(|key| shard(key) != shard("a")).unwrap();
        assert_eq!(run(&engine, &mut writer, &log, "WAITAOF 1 0 0").reply, pair(1));
        run(&engine, &mut writer, &log, "SET a 1");
        run(&engine, &mut other, &log, &format!("SET {apart} 2"));
        run(&engine, &mut writer, &log, "GET a");
        assert_eq!(run(&engine, &mut writer, &log, "WAITAOF 1 0 0").reply, pair(1));
        assert_eq!(run(&engine, &mut other, &log, "WAITAOF 0 0 0").reply, pair(1));
        // Nothing written yet: seq 0; then the writer's SET (1) and the other client's (2).
        assert_eq!(*log.fsync_requests.lock(), vec![0, 1, 2]);
    }

    #[test]
    fn waiting_for_replicas_blocks_until_the_timeout_except_in_multi() {
        let (engine, log) = (Engine::new(EngineOptions::default()), Log::default());
        let mut client = Client::new(1, true);
        client.waker = Some(crate::blocking::ClientWaker(std::sync::Arc::new(|| {})));
        let waited = run(&engine, &mut client, &log, "WAITAOF 1 1 250");
        assert_eq!((waited.reply, waited.blocked.and_then(|b| b.deadline)), (pair(1), Some(NOW + 250)));
        let waited = run(&engine, &mut client, &log, "WAIT 2 0");
        assert_eq!((waited.reply, waited.blocked.map(|b| b.deadline)), (Reply::Int(0), Some(None)));
        let at_once = run(&engine, &mut client, &log, "WAIT 0 100");
        assert!(at_once.blocked.is_none());
        run(&engine, &mut client, &log, "MULTI");
        run(&engine, &mut client, &log, "WAITAOF 0 3 0");
        let exec = run(&engine, &mut client, &log, "EXEC");
        assert_eq!((exec.reply, exec.blocked.is_none()), (Reply::Array(vec![pair(1)]), true));
    }

    #[test]
    fn wait_arguments_are_checked_as_redis_does() {
        let (engine, log) = (Engine::new(EngineOptions::default()), Log::default());
        let mut client = Client::new(1, true);
        for (line, error) in [
            ("WAITAOF 2 0 0", "ERR value is out of range, value must between 0 and 1"),
            ("WAITAOF 1 -1 0", "ERR value is out of range, must be positive"),
            ("WAITAOF 1 0 -5", "ERR timeout is negative"),
            ("WAITAOF 1 0 1.5", "ERR timeout is not an integer or out of range"),
            ("WAIT x 0", "ERR value is not an integer or out of range"),
        ] {
            assert_eq!(run(&engine, &mut client, &log, line).reply, Reply::Error(error.into()), "{line}");
        }
    }
}
