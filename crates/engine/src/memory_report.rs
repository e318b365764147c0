//! `MEMORY STATS` and `MEMORY DOCTOR`: where memory goes, in Redis 7.0's fields and order
//! (`getMemoryOverheadData` and `getMemoryDoctorReport` in its `object.c`), from StayKV's
//! own figures. What StayKV has no such thing for (a replication backlog, replicas, cluster
//! links, cluster slot indexes, a second table of deadlines: a key's deadline lives in its
//! entry) is 0, as Redis reports it without one.

use staykv_resp::Reply;

use crate::exec::DbFootprint;

/// Figures only the server knows (its allocator, the process, its connections and log).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Bytes allocated now (`used_memory`).
    pub used: u64,
    /// The most ever allocated (`used_memory_peak`).
    pub peak: u64,
    /// Allocated once the server had started, before any client.
    pub startup: u64,
    /// Resident set size of the process.
    pub rss: u64,
    /// Memory the allocator holds from the system: what it has allocated plus its free
    /// pages not yet given back.
    pub allocator_active: u64,
    /// Of that, what is resident.
    pub allocator_resident: u64,
    /// The log's buffers not yet written (`aof.buffer`).
    pub log_buffers: u64,
    /// Memory of the connected clients' state.
    pub clients_normal: u64,
    /// Connected clients (replicas aside: StayKV has none).
    pub clients: u64,
}

/// What the engine adds: its databases and script caches.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EngineMemory {
    /// Per database, as [`crate::exec::Engine::db_footprints`].
    pub dbs: Vec<DbFootprint>,
    /// Bytes of the EVAL cache's entries.
    pub lua_caches: u64,
    /// Bytes of the function libraries' entries.
    pub functions_caches: u64,
    /// Scripts in the EVAL cache.
    pub cached_scripts: u64,
}

/// A quotient as Redis stores it (a C `float`), 0 when there is nothing to divide by.
fn ratio(numerator: u64, denominator: u64) -> f32 {
    if denominator == 0 {
        0.0
    } else {
        (numerator as f64 / denominator as f64) as f32
    }
}

fn difference(a: u64, b: u64) -> i64 {
    i64::try_from(a).unwrap_or(i64::MAX).saturating_sub(i64::try_from(b).unwrap_or(i64::MAX))
}

/// The derived figures both subcommands use.
#[derive(Debug, Clone, PartialEq)]
struct Overhead {
    total: u64,
    keys: u64,
    /// Used memory above the startup figure (at least 1, as Redis divides by it).
    net: u64,
}

impl Overhead {
    fn of(process: &ProcessMemory, engine: &EngineMemory) -> Overhead {
        let tables: u64 = engine.dbs.iter().map(|db| db.table_bytes as u64).sum();
        let total = process.startup
            + process.clients_normal
            + process.log_buffers
            + engine.lua_caches
            + engine.functions_caches
            + tables;
        let keys = engine.dbs.iter().map(|db| db.keys as u64).sum();
        Overhead { total, keys, net: process.used.saturating_sub(process.startup).max(1) }
    }
}

fn field(name: &str, value: Reply) -> (Reply, Reply) {
    (Reply::bulk_str(name), value)
}

fn count(name: &str, value: u64) -> (Reply, Reply) {
    field(name, Reply::count(value))
}

fn signed(name: &str, value: i64) -> (Reply, Reply) {
    field(name, Reply::Int(value))
}

fn float(name: &str, value: f32) -> (Reply, Reply) {
    field(name, Reply::Double(f64::from(value)))
}

/// `MEMORY STATS`: a map in RESP3, a flat array in RESP2, with Redis 7.0's fields in its
/// order; a `db.N` entry for each database that has keys.
pub fn stats(process: &ProcessMemory, engine: &EngineMemory) -> Reply {
    let overhead = Overhead::of(process, engine);
    let mut fields = vec![
        count("peak.allocated", process.peak),
        count("total.allocated", process.used),
        count("startup.allocated", process.startup),
        count("replication.backlog", 0),
        count("clients.slaves", 0),
        count("clients.normal", process.clients_normal),
        count("cluster.links", 0),
        count("aof.buffer", process.log_buffers),
        count("lua.caches", engine.lua_caches),
        count("functions.caches", engine.functions_caches),
    ];
    for (index, db) in engine.dbs.iter().enumerate().filter(|(_, db)| db.keys > 0) {
        let tables = vec![
            count("overhead.hashtable.main", db.table_bytes as u64),
            count("overhead.hashtable.expires", 0),
            count("overhead.hashtable.slot-to-keys", 0),
        ];
        fields.push(field(&format!("db.{index}"), Reply::Map(tables)));
    }
    let dataset = process.used.saturating_sub(overhead.total);
    fields.extend([
        count("overhead.total", overhead.total),
        count("keys.count", overhead.keys),
        count("keys.bytes-per-key", overhead.net.checked_div(overhead.keys).unwrap_or(0)),
        count("dataset.bytes", dataset),
        float("dataset.percentage", ratio(dataset * 100, overhead.net)),
        float("peak.percentage", ratio(process.used * 100, process.peak)),
    ]);
    fields.extend([
        count("allocator.allocated", process.used),
        count("allocator.active", process.allocator_active),
        count("allocator.resident", process.allocator_resident),
    ]);
    fields.extend(Fragmentation::of(process).fields());
    Reply::Map(fields)
}

/// The allocator's and the process's overheads over what is allocated, each as a ratio and
/// in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fragmentation {
    allocator: (f32, i64),
    allocator_rss: (f32, i64),
    rss_overhead: (f32, i64),
    total: (f32, i64),
}

impl Fragmentation {
    fn of(process: &ProcessMemory) -> Fragmentation {
        let over = |a: u64, b: u64| (ratio(a, b), difference(a, b));
        Fragmentation {
            allocator: over(process.allocator_active, process.used),
            allocator_rss: over(process.allocator_resident, process.allocator_active),
            rss_overhead: over(process.rss, process.allocator_resident),
            total: over(process.rss, process.used),
        }
    }

    fn fields(&self) -> Vec<(Reply, Reply)> {
        vec![
            float("allocator-fragmentation.ratio", self.allocator.0),
            signed("allocator-fragmentation.bytes", self.allocator.1),
            float("allocator-rss.ratio", self.allocator_rss.0),
            signed("allocator-rss.bytes", self.allocator_rss.1),
            float("rss-overhead.ratio", self.rss_overhead.0),
            signed("rss-overhead.bytes", self.rss_overhead.1),
            float("fragmentation", self.total.0),
            signed("fragmentation.bytes", self.total.1),
        ]
    }
}

/// Below this much allocated, the doctor declines to judge.
const EMPTY_BELOW: u64 = 5 << 20;
/// Overheads under this many bytes are never worth a report, whatever their ratio.
const SMALL_OVERHEAD: i64 = 10 << 20;
/// Average memory per client above which client buffers are reported.
const BIG_CLIENT: u64 = 200 << 10;
/// Cached scripts above which the script cache is reported.
const MANY_SCRIPTS: u64 = 1000;

const EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n";
const HEALTHY: &str =
    "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n";
const ISSUES: &str = "Sam, I detected a few issues in this Redis instance memory implants:\n\n";
const SIGN_OFF: &str = "I'm here to keep you safe, Sam. I want to help you.\n";
const BIG_PEAK: &str = " * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n";
/// Redis names its allocator here (`ZMALLOC_LIB`); StayKV's is mimalloc, as INFO's
/// `mem_allocator` says.
const HIGH_TOTAL_RSS: &str = " * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"mimalloc\".\n\n";
/// Redis ends this one suggesting its `activedefrag` option, which StayKV does not have.
const HIGH_ALLOCATOR_FRAGMENTATION: &str = " * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot.\n\n";
const HIGH_ALLOCATOR_RSS: &str = " * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n";
const HIGH_PROCESS_RSS: &str = " * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n";
const BIG_CLIENT_BUFFERS: &str = " * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n";
const MANY_CACHED_SCRIPTS: &str = " * Many scripts: There seem to be many cached scripts in this instance (more than 1000). This may be because scripts are generated and `EVAL`ed, instead of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. Unless `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming most of your memory.\n\n";

/// An overhead worth reporting: above `limit` times and by more than [`SMALL_OVERHEAD`].
fn excessive((ratio, bytes): (f32, i64), limit: f32) -> bool {
    ratio > limit && bytes > SMALL_OVERHEAD
}

/// `MEMORY DOCTOR`: Redis's checks, in its order and words. (Redis also checks replica
/// buffers; StayKV has no replicas.)
pub fn doctor(process: &ProcessMemory, engine: &EngineMemory) -> String {
    if process.used < EMPTY_BELOW {
        return EMPTY.into();
    }
    let fragmentation = Fragmentation::of(process);
    let per_client = process.clients_normal / process.clients.max(1);
    let issues: Vec<&str> = [
        (ratio(process.peak, process.used) > 1.5, BIG_PEAK),
        (excessive(fragmentation.total, 1.4), HIGH_TOTAL_RSS),
        (excessive(fragmentation.allocator, 1.1), HIGH_ALLOCATOR_FRAGMENTATION),
        (excessive(fragmentation.allocator_rss, 1.1), HIGH_ALLOCATOR_RSS),
        (excessive(fragmentation.rss_overhead, 1.1), HIGH_PROCESS_RSS),
        (per_client > BIG_CLIENT, BIG_CLIENT_BUFFERS),
        (engine.cached_scripts > MANY_SCRIPTS, MANY_CACHED_SCRIPTS),
    ]
    .into_iter()
    .filter_map(|(found, text)| found.then_some(text))
    .collect();
    if issues.is_empty() {
        return HEALTHY.into();
    }
    format!("{ISSUES}{}{SIGN_OFF}", issues.concat())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// 100 MiB in use and no overhead to speak of.
    fn healthy() -> ProcessMemory {
        ProcessMemory {
            used: 100 * MIB,
            peak: 120 * MIB,
            startup: MIB,
            rss: 104 * MIB,
            allocator_active: 101 * MIB,
            allocator_resident: 101 * MIB,
            log_buffers: 0,
            clients_normal: 3000,
            clients: 3,
        }
    }

    fn engine() -> EngineMemory {
        let db = |keys, table_bytes| DbFootprint { keys, table_bytes, ..DbFootprint::default() };
        EngineMemory {
            dbs: vec![db(3, 300), db(0, 0), db(1, 64)],
            lua_caches: 100,
            functions_caches: 50,
            cached_scripts: 1,
        }
    }

    fn names_and_values(reply: &Reply) -> Vec<(String, Reply)> {
        let Reply::Map(fields) = reply else { panic!("{reply:?}") };
        fields
            .iter()
            .map(|(name, value)| {
                let Reply::Bulk(name) = name else { panic!("{name:?}") };
                (String::from_utf8_lossy(name).into_owned(), value.clone())
            })
            .collect()
    }

    #[test]
    fn stats_lists_redis_fields_in_order_with_databases_that_have_keys() {
        let fields = names_and_values(&stats(&healthy(), &engine()));
        let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "peak.allocated",
                "total.allocated",
                "startup.allocated",
                "replication.backlog",
                "clients.slaves",
                "clients.normal",
                "cluster.links",
                "aof.buffer",
                "lua.caches",
                "functions.caches",
                "db.0",
                "db.2",
                "overhead.total",
                "keys.count",
                "keys.bytes-per-key",
                "dataset.bytes",
                "dataset.percentage",
                "peak.percentage",
                "allocator.allocated",
                "allocator.active",
                "allocator.resident",
                "allocator-fragmentation.ratio",
                "allocator-fragmentation.bytes",
                "allocator-rss.ratio",
                "allocator-rss.bytes",
                "rss-overhead.ratio",
                "rss-overhead.bytes",
                "fragmentation",
                "fragmentation.bytes",
            ]
        );
        let value = |name: &str| fields.iter().find(|(n, _)| n == name).unwrap().1.clone();
        let overhead = MIB + 3000 + 100 + 50 + 364;
        assert_eq!(value("overhead.total"), Reply::count(overhead));
        assert_eq!(value("keys.count"), Reply::count(4));
        assert_eq!(value("keys.bytes-per-key"), Reply::count(99 * MIB / 4));
        assert_eq!(value("dataset.bytes"), Reply::count(100 * MIB - overhead));
        assert_eq!(value("fragmentation"), Reply::Double(f64::from(1.04_f32)));
        assert_eq!(value("fragmentation.bytes"), Reply::Int(4 * MIB as i64));
        let db2 = names_and_values(&value("db.2"));
        assert_eq!(db2[0], ("overhead.hashtable.main".to_string(), Reply::count(64)));
    }

    #[test]
    fn the_doctor_declines_small_instances_and_clears_healthy_ones() {
        assert_eq!(doctor(&ProcessMemory { used: 5 * MIB - 1, ..healthy() }, &engine()), EMPTY);
        assert_eq!(doctor(&healthy(), &engine()), HEALTHY);
    }

    #[test]
    fn the_doctor_reports_each_issue_in_redis_order() {
        let troubled = ProcessMemory {
            peak: 151 * MIB,
            allocator_active: 120 * MIB,
            allocator_resident: 140 * MIB,
            rss: 170 * MIB,
            clients_normal: 3 * 201 * 1024,
            ..healthy()
        };
        let scripts = EngineMemory { cached_scripts: 1001, ..engine() };
        let expected = [
            BIG_PEAK,
            HIGH_TOTAL_RSS,
            HIGH_ALLOCATOR_FRAGMENTATION,
            HIGH_ALLOCATOR_RSS,
            HIGH_PROCESS_RSS,
            BIG_CLIENT_BUFFERS,
            MANY_CACHED_SCRIPTS,
        ];
        assert_eq!(doctor(&troubled, &scripts), format!("{ISSUES}{}{SIGN_OFF}", expected.concat()));
        let small_overheads = ProcessMemory { rss: 109 * MIB, allocator_active: 109 * MIB, ..healthy() };
        assert_eq!(doctor(&small_overheads, &engine()), HEALTHY, "ratios over the limits by under 10 MiB");
    }
}
