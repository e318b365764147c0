//! What the engine asks of the server it runs in.

use bytes::Bytes;

use crate::client::Client;

/// The reply limit ([`Host::reply_limit`]) while the normal clients' output is unlimited:
/// the largest string Redis takes by default (`proto-max-bulk-len`, 512 MB).
pub const UNLIMITED_REPLY_CAP: usize = 512 << 20;

/// Server-owned state that commands such as CONFIG, CLIENT, INFO, AUTH and SHUTDOWN reach.
/// The engine's own tests use [`NoHost`].
pub trait Host: Sync {
    /// True while the dataset is still being loaded: only LOADING-flagged commands run.
    fn loading(&self) -> bool {
        false
    }
    /// Memory in use is over `maxmemory`: commands that may add data make room by the
    /// eviction policy first, or get OOM.
    fn over_memory_limit(&self) -> bool {
        false
    }
    /// Memory is over `maxmemory`: close the connections over `maxmemory-clients` first, so
    /// that no key is evicted to make room for their buffers (Redis's `processCommand` calls
    /// `evictClients` before `performEvictions`). What they hold no longer counts after.
    fn evict_clients(&self) {}
    /// An eviction pass ran out of time with memory still over `maxmemory`: go on evicting
    /// between commands (`Engine::evict` again) until it is under, as Redis's eviction timer
    /// does, so that a server does not stay over its limit once the commands stop.
    fn evict_in_background(&self) {}
    /// Make what this thread has just freed show in the memory count (the server's count
    /// takes in each thread's frees and allocations only every 64 KiB): called between
    /// evictions, so that one that freed enough ends the loop.
    fn count_freed_memory(&self) {}
    /// Extra `INFO` sections the server owns (`server`, `clients`, `persistence`...), in
    /// Redis's `field:value` lines, or `None` if it has no such section.
    fn info_section(&self, _section: &str) -> Option<String> {
        None
    }
    /// `proto-max-bulk-len`: the largest string a command may build (APPEND, SETRANGE, SETBIT,
    /// BITFIELD). Unbounded here: a log replay or an import keeps what was written, as
    /// Redis's AOF loading is exempt from the limit.
    fn proto_max_bulk_len(&self) -> usize {
        usize::MAX
    }
    /// The most bytes a reply that repeats stored data may hold (a negative-count
    /// SRANDMEMBER, HRANDFIELD or ZRANDMEMBER; SORT's GET patterns without STORE): the normal
    /// clients' output hard limit, or [`UNLIMITED_REPLY_CAP`] while it is 0 (unlimited).
    /// StayKV builds a reply before writing it, so without a bound a request of a few bytes
    /// could copy one large member millions of times before any output limit saw it; Redis
    /// streams such a reply into the output buffer and closes the client at its limit.
    fn reply_limit(&self) -> usize {
        usize::MAX
    }
    /// `CONFIG GET`: every (name, value) whose name matches the glob.
    fn config_get(&self, _pattern: &[u8]) -> Vec<(String, String)> {
        Vec::new()
    }
    /// `CONFIG SET name value`, with Redis's error text on failure. `name` is taken in any
    /// case; a refusal of the name itself (immutable, protected) names it as given.
    fn config_set(&self, name: &str, _value: &[u8]) -> Result<(), String> {
        Err(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"))
    }
    fn config_resetstat(&self) {}
    /// The `--config` file the server started with, if any.
    fn config_file(&self) -> Option<String> {
        None
    }
    /// Runs `wait`, a wait for a shard that has already taken long (a running script holds
    /// every shard). An async server tells its runtime first, so that the waiting worker's
    /// other connections, a `SCRIPT KILL` among them, are served meanwhile.
    fn wait_long(&self, wait: &mut dyn FnMut()) {
        wait();
    }
    /// Frees what was left to be freed lazily (UNLINK, an ASYNC flush, what a
    /// `lazyfree-lazy-*` parameter covers: see `lazyfree.rs`), off the command path: a server
    /// drops it on a thread of its own, after the shard locks are released. Without one it is
    /// dropped here.
    fn free_in_background(&self, garbage: crate::lazyfree::Garbage) {
        drop(garbage);
    }
    /// `ACL LOAD`: the path of the ACL file (`--aclfile`), and its text.
    fn acl_load(&self) -> Result<(String, String), String> {
        Err(NO_ACL_FILE.into())
    }
    /// `ACL SAVE`: replace the ACL file with `text`.
    fn acl_save(&self, _text: &str) -> Result<(), String> {
        Err(NO_ACL_FILE.into())
    }
    /// Check a password for `AUTH`/`HELLO AUTH` (the engine's own ACL answers those; this
    /// is for front ends that authenticate outside a command).
    fn authenticate(&self, _user: &[u8], _password: &[u8]) -> Result<(), String> {
        Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into())
    }
    /// `CLIENT LIST` / `CLIENT INFO` lines of the clients `filter` matches.
    fn client_list(&self, _me: &Client, _filter: &ClientFilter) -> String {
        String::new()
    }
    /// `CLIENT KILL`: close matching clients, return how many.
    fn client_kill(&self, _filter: &ClientFilter) -> usize {
        0
    }
    /// Keep the server's view of this client current (name, db) for CLIENT LIST.
    fn client_updated(&self, _client: &Client) {}
    /// `SHUTDOWN`: persist and stop. Returns an error text if it cannot.
    fn shutdown(&self, _save: Option<bool>) -> Result<(), String> {
        Err("ERR SHUTDOWN is not supported here".into())
    }
    /// `TIME`: the wall clock in microseconds since the Unix epoch, read at each call as
    /// Redis reads it. A command's `now` (by which keys expire) holds still while it runs, so
    /// a script calling TIME twice would otherwise see no time pass, and its microseconds
    /// would be whole milliseconds. `None` (no clock: tests, log replay) answers from `now`.
    fn clock_micros(&self) -> Option<u64> {
        None
    }
    /// Microseconds on a clock that never steps back, from any fixed point: for how long
    /// work took or may take (a command's run time, the expire cycle's, an eviction pass's
    /// bound), which a step of the wall clock must not stretch or cut short. `None` (no
    /// clock: tests, log replay) times nothing and bounds nothing.
    fn elapsed_micros(&self) -> Option<u64> {
        None
    }
    /// `MIGRATE`: sends `commands` to `target` and returns the first line of each reply, in
    /// order, as far as they came, with what stopped the exchange early, if anything.
    fn exchange_with(&self, _target: &MigrateTarget, _commands: &[Vec<Bytes>]) -> (Vec<String>, Option<TargetFailure>) {
        (Vec::new(), Some(TargetFailure::Connect))
    }
    /// `SYNC`: prepare a snapshot of everything acknowledged so far for client `client_id`,
    /// which the front end sends as the command's reply (then it closes the connection).
    fn send_snapshot(&self, _client_id: u64) -> Result<(), String> {
        Err("ERR SYNC is not available".into())
    }
    /// `SYNC` after `REPLCONF rdb-filter-only`: send `rdb`, an RDB file the engine wrote, as
    /// the command's reply, as [`Host::send_snapshot`] sends the snapshot.
    fn send_rdb(&self, _client_id: u64, _rdb: Vec<u8>) -> Result<(), String> {
        Err("ERR SYNC is not available".into())
    }
    /// `MEMORY PURGE`: give the allocator's free pages back to the operating system now.
    fn purge_memory(&self) {}
    /// `MEMORY STATS` and `MEMORY DOCTOR`: the allocator's, the process's, the clients' and
    /// the log's memory. Nothing without a server.
    fn process_memory(&self) -> crate::memory_report::ProcessMemory {
        crate::memory_report::ProcessMemory::default()
    }
    /// `LASTSAVE`, `SAVE`, `BGSAVE`, `BGREWRITEAOF`: asks the persistence layer.
    fn persistence(&self, command: &str) -> Result<staykv_resp::Reply, String> {
        Err(format!("ERR {command} is not available"))
    }
}

/// Redis's answer to ACL LOAD/SAVE when no ACL file is configured.
pub const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// Which clients `CLIENT LIST` shows or `CLIENT KILL` closes: those that match every filter
/// given.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    pub ids: Option<Vec<u64>>,
    pub addr: Option<String>,
    pub laddr: Option<String>,
    pub user: Option<String>,
    pub client_type: Option<ClientType>,
    pub skip_me: Option<u64>,
}

impl ClientFilter {
    /// Only client `id`.
    pub fn id(id: u64) -> ClientFilter {
        ClientFilter { ids: Some(vec![id]), ..ClientFilter::default() }
    }
}

/// Redis's client types (`CLIENT LIST TYPE`, `CLIENT KILL TYPE`). StayKV keeps no
/// replication link, so no client is a replica or a master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Normal,
    Replica,
    PubSub,
    Master,
}

impl ClientType {
    /// By Redis's names (`slave` is `replica`); `None` for another.
    pub fn parse(name: &[u8]) -> Option<ClientType> {
        let types = [
            ("normal", ClientType::Normal),
            ("slave", ClientType::Replica),
            ("replica", ClientType::Replica),
            ("pubsub", ClientType::PubSub),
            ("master", ClientType::Master),
        ];
        types.into_iter().find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes())).map(|(_, t)| t)
    }
}

/// A host with nothing: for tests and for log replay.
#[derive(Debug, Default)]
pub struct NoHost;

impl Host for NoHost {}

/// Where MIGRATE sends keys.
#[derive(Debug, Clone)]
pub struct MigrateTarget {
    pub host: String,
    /// 0 when the port given was no port: the connection then fails.
    pub port: u16,
    /// For connecting, and for each write and read.
    pub timeout_ms: u64,
}

/// What ended a MIGRATE exchange early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetFailure {
    Connect,
    Write,
    Read,
}
