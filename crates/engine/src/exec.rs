//! Running a command: lookup, checks, locking, the handler, logging its effects.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use parking_lot::MutexGuard;
use smallvec::SmallVec;
use staykv_resp::{Protocol, Reply};

use crate::blocking::{BlockRegistry, Waiting};
use crate::client::Client;
use crate::command::{flags, CommandSpec, CommandTable};
use crate::effects::Effect;
use crate::errors;
use crate::host::{Host, NoHost};
use crate::keyspace::{unreachable_shard, Db, Entry, Keyspace, Shard, NO_EXPIRY};
use crate::lazyfree::LazyOption;
use crate::scripting::Scripting;
use crate::small_bytes::SmallBytes;
use crate::value::{Collection, Encoding, Value};
use crate::watch::WatchRegistry;

/// Where effects go: the server's write-ahead log, or nowhere in tests and replay.
pub trait Journal: Sync {
    /// `Err(text)` while writes must be refused (the log cannot be written).
    fn check_writable(&self) -> Result<(), String> {
        Ok(())
    }
    /// The largest batch the log takes, encoded: a write whose arguments alone would log more
    /// is refused before it runs (`Engine::over_log_limit`).
    fn max_batch_len(&self) -> usize {
        usize::MAX
    }
    /// Log one atomic batch and return its sequence number, or why the log refused it (only
    /// a batch over [`Journal::max_batch_len`]: its change is made but must not be
    /// acknowledged). Called with the shards it touched still locked, so batches on the same
    /// key are logged in execution order.
    fn append(&self, time_ms: u64, effects: &[Effect]) -> Result<u64, String>;
    /// The log cannot be written now (a disk error): what is appended may not become durable
    /// until it can. A cheap look, unlike [`Journal::check_writable`].
    fn refusing_writes(&self) -> bool {
        false
    }
    /// Make the log fsynced through `seq` (WAITAOF), fsyncing now if the policy has not yet;
    /// whether it is. Blocks the calling thread for the fsync.
    fn fsync_through(&self, _seq: u64) -> bool {
        true
    }
    /// The last batch appended (0 while the log refuses writes): what a reply on the whole
    /// keyspace that holds none of its shards (INFO) waits for.
    fn settled_seq(&self) -> u64 {
        0
    }
}

/// A journal that drops everything (tests, replay).
#[derive(Debug, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn append(&self, _time_ms: u64, _effects: &[Effect]) -> Result<u64, String> {
        Ok(0)
    }
}

/// The result of one command.
#[derive(Debug)]
pub struct Outcome {
    pub reply: Reply,
    /// The reply must not be released before the log is durable up to this sequence number:
    /// it either wrote, or read something a not-yet-durable write produced.
    pub wait_seq: u64,
    /// A report on the whole keyspace (INFO, MEMORY STATS) waits for the log to be durable
    /// up to here too, but only while the log is healthy: a batch stuck on a failing disk may
    /// never become durable, and such reports must go on meanwhile
    /// ([`Journal::settled_seq`]). 0: nothing to wait for.
    pub settle_seq: u64,
    /// Index of the command in the table.
    pub command: Option<usize>,
    /// Where its statistics go ([`crate::command::CommandTable::stat_index`]).
    pub stat: Option<usize>,
    /// The command found nothing and asks to wait: the client is registered on its keys.
    /// Re-run the same command when woken; send `reply` (the timeout answer) at the deadline.
    pub blocked: Option<Blocked>,
    /// The command ran (it was not refused, queued or left waiting): what the slow log and
    /// `commandstats` time.
    pub ran: bool,
    /// The command did not run: a client woken for one of its keys has first claim on it
    /// ([`crate::blocking::CLAIM_MS`]). Send nothing; run it again once
    /// [`Engine::held_by_claim`] no longer holds it.
    pub held_by_claim: bool,
}

impl Outcome {
    /// A command refused, unknown or queued: it did not run.
    fn not_run(reply: Reply, command: Option<(usize, Option<usize>)>) -> Outcome {
        let (command, stat) = (command.map(|(index, _)| index), command.and_then(|(_, stat)| stat));
        Outcome { reply, wait_seq: 0, settle_seq: 0, command, stat, blocked: None, ran: false, held_by_claim: false }
    }
}

/// A blocked command's wait.
#[derive(Debug, Clone)]
pub struct Blocked {
    /// Unix ms, or `None` to wait forever.
    pub deadline: Option<u64>,
    /// The command to re-run when woken, when it differs from the one sent: XREAD's `$`
    /// means "after the last entry when the wait began", so it is re-run with that ID.
    pub rerun: Option<Vec<Bytes>>,
}

/// A logged effect that answered an error when replayed ([`Engine::replay`]). Effects are
/// logged so that they replay without one: a failure means the log and the engine disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayFailure {
    /// The effect's place in its batch.
    pub index: usize,
    pub command: String,
    pub error: String,
    /// The effect writes to a database the server was started without: a start that skips
    /// failing effects must not skip it, or every write to that database would go.
    pub missing_database: bool,
}

impl std::fmt::Display for ReplayFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "replaying {}: {}", self.command, self.error)
    }
}

/// Sizes fixed at start.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    pub databases: usize,
    /// log2 of the number of shards.
    pub shard_bits: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { databases: 16, shard_bits: 6 }
    }
}

/// One database's keys and table, summed over the shards.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DbFootprint {
    pub keys: usize,
    /// Keys with a deadline.
    pub volatile: usize,
    /// [`crate::keyspace::Db::table_bytes`].
    pub table_bytes: usize,
    /// Each shard's estimated mean TTL times its keys with a deadline.
    pub(crate) ttl_weight: u128,
}

impl DbFootprint {
    fn sizes(&self) -> (usize, usize) {
        (self.keys, self.volatile)
    }

    /// INFO keyspace's `avg_ttl`: the shards' estimates, weighed by their keys with a
    /// deadline (0 before the expiry cycle has seen any).
    pub fn avg_ttl_ms(&self) -> u64 {
        let mean = self.ttl_weight.checked_div(self.volatile as u128).unwrap_or(0);
        u64::try_from(mean).unwrap_or(u64::MAX)
    }

    fn add_shard(footprints: &mut [DbFootprint], shard: &Shard) {
        for ((db, cycle), footprint) in shard.dbs.iter().zip(shard.expiry.iter()).zip(footprints.iter_mut()) {
            footprint.keys += db.len();
            footprint.volatile += db.volatile_len();
            footprint.table_bytes += db.table_bytes();
            footprint.ttl_weight += u128::from(cycle.avg_ttl_ms) * db.volatile_len() as u128;
        }
    }
}

/// The keyspace and everything needed to run commands against it.
#[derive(Debug)]
pub struct Engine {
    pub keyspace: Keyspace,
    pub table: CommandTable,
    /// INFO stats and commandstats counters, striped per thread.
    pub counters: crate::stats::Counters,
    /// Next cursor position of the active expiry cycle over shards.
    expire_shard: AtomicU64,
    pub watches: WatchRegistry,
    pub blocked: BlockRegistry,
    pub pubsub: crate::pubsub::PubSub,
    pub notifier: crate::notify::Notifier,
    /// `maxmemory-policy` and `maxmemory-samples`, and the access stamps they need.
    pub eviction: crate::evict::Eviction,
    /// Lua scripting: the Lua states, the script cache and function libraries.
    pub scripting: Scripting,
    /// Commands that ran long (the server times them).
    pub slowlog: crate::slowlog::SlowLog,
    /// Events that took long (LATENCY): commands, timed by the server, and the log's writes
    /// and fsyncs, timed by its writer thread (hence shared).
    pub latency: std::sync::Arc<crate::latency::LatencyMonitor>,
    /// CLIENT PAUSE (the server holds the commands back; expiry stops here).
    pub pause: crate::pause::ClientPause,
    /// Users and their permissions (AUTH, ACL), checked before every command.
    pub acl: crate::acl::Acl,
    /// Client-side caching: who may cache which keys (CLIENT TRACKING).
    pub tracking: crate::tracking::Tracking,
    /// What commands left to the host to free, counted for INFO, and the `lazyfree-lazy-*`
    /// parameters.
    pub lazyfree: std::sync::Arc<crate::lazyfree::LazyFree>,
    /// `stream-node-max-bytes` and `stream-node-max-entries`.
    pub stream_nodes: crate::stream::NodeConfig,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Engine {
        let table = crate::cmd::table();
        let counters = crate::stats::Counters::new(table.stat_names().len());
        let acl = crate::acl::Acl::new(&table);
        Engine {
            keyspace: Keyspace::new(options.databases.max(1), options.shard_bits.min(12)),
            table,
            counters,
            expire_shard: AtomicU64::new(0),
            watches: WatchRegistry::default(),
            blocked: BlockRegistry::default(),
            pubsub: crate::pubsub::PubSub::default(),
            notifier: crate::notify::Notifier::default(),
            eviction: crate::evict::Eviction::default(),
            scripting: Scripting::default(),
            slowlog: crate::slowlog::SlowLog::default(),
            latency: std::sync::Arc::default(),
            pause: crate::pause::ClientPause::default(),
            acl,
            tracking: crate::tracking::Tracking::default(),
            lazyfree: std::sync::Arc::default(),
            stream_nodes: crate::stream::NodeConfig::default(),
        }
    }

    /// Run one command for `client` at time `now` (Unix ms).
    pub fn execute(
        &self,
        client: &mut Client,
        args: &[Bytes],
        now: u64,
        host: &dyn Host,
        journal: &dyn Journal,
    ) -> Outcome {
        if !self.tracking.is_active() {
            return self.execute_command(host, journal, now, client, args);
        }
        self.tracking.enforce_limit();
        let outcome = self.execute_command(host, journal, now, client, args);
        // CLIENT CACHING applies to the next command, or to the whole of a transaction; other
        // CLIENT subcommands in between leave it be, as in Redis.
        let client_command = args.first().is_some_and(|name| name.eq_ignore_ascii_case(b"client"));
        if client.caching_given && client.multi.is_none() && !client_command {
            client.caching_given = false;
        }
        self.tracking.broadcast(Some(client.id));
        outcome
    }

    /// [`Engine::execute`] without the tracking bookkeeping around it.
    fn execute_command(
        &self,
        host: &dyn Host,
        journal: &dyn Journal,
        now: u64,
        client: &mut Client,
        args: &[Bytes],
    ) -> Outcome {
        let Some(name) = args.first() else {
            return Outcome::not_run(errors::unknown_command(args), None);
        };
        let found = self.table.lookup_remembered(name, &mut client.last_lookup);
        client.command = found.and_then(|(_, spec)| spec.name_for(args));
        let Some((index, spec)) = found else {
            // An unknown command dooms the transaction it was sent in, like any refusal.
            client.multi_failed |= client.multi.is_some();
            return Outcome::not_run(self.counted(errors::unknown_command(args)), None);
        };
        let stat = self.table.stat_index(index, args);
        // A script running past the busy threshold refuses other clients' commands with BUSY.
        let refused = self.scripting.busy_reply(spec, args, now);
        if let Some(reply) = refused.or_else(|| self.precheck(client, index, spec, args, now, host, journal)) {
            return self.refuse(client, reply, spec, index, stat);
        }
        // A transaction already doomed (a refused command, a watched key changed) queues
        // nothing more but answers QUEUED, as Redis's queueMultiCommand: EXEC will discard
        // it, and so judges it by what came before (not refused for OOM over what would
        // never run).
        if let Some(queue) = client.multi.as_mut().filter(|_| !spec.has(flags::TRANSACTION_CONTROL)) {
            if !client.multi_failed && !client.watch_dirty.load(Ordering::Acquire) {
                queue.push(args.to_vec());
            }
            return Outcome::not_run(Reply::Status("QUEUED"), Some((index, stat)));
        }
        let (locks, now) = match self.locks_to_run(spec, args, now, host) {
            Ok(locked) => locked,
            Err(busy) => return self.refuse(client, busy, spec, index, stat),
        };
        // Looked at under the locks: a write that wakes a client claims its key before it
        // lets go of them.
        if self.held_by_claim_as(client, spec, args, now) {
            drop(locks);
            return Outcome { held_by_claim: true, ..Outcome::not_run(Reply::Nil, Some((index, stat))) };
        }
        // MONITOR shows a command once it ran, in the database it left selected, as Redis's
        // call() does (so EXEC after the commands it ran); a script before it runs, so that
        // its commands come after it (Redis's evalCommand); a blocking command once, when it
        // first blocks, not at each look at its keys after a wake.
        let shown = self.pubsub.has_monitors() && !self.blocked.is_waiting(client.id);
        let script = spec.has(flags::RUNS_SCRIPT);
        if shown && script {
            self.feed_monitors(host, now, client.db, &client.origin, spec, args);
        }
        let (reply, (wait_seq, settle_seq), blocked) = self.run(client, spec, args, locks, now, host, journal);
        if shown && !script {
            self.feed_monitors(host, now, client.db, &client.origin, spec, args);
        }
        client.last_seq = client.last_seq.max(wait_seq);
        let ran = blocked.is_none();
        if ran {
            self.count_call(stat, &reply);
        }
        Outcome { reply, wait_seq, settle_seq, command: Some(index), stat, blocked, ran, held_by_claim: false }
    }

    /// Shows a command to the MONITOR clients, stamped with the wall clock's microseconds,
    /// its secrets redacted (AUTH's, HELLO's) as Redis shows them. Administrative commands
    /// (CONFIG, CLIENT LIST, ACL..., MONITOR itself) are not shown, as Redis's call() leaves
    /// out those it deems too dangerous to show.
    fn feed_monitors(&self, host: &dyn Host, now: u64, db: usize, origin: &str, spec: &CommandSpec, args: &[Bytes]) {
        if self.pubsub.has_monitors() && spec.name != "monitor" && !spec.runs_with(flags::ADMIN, args) {
            let micros = host.clock_micros().unwrap_or(now.saturating_mul(1000));
            self.pubsub.feed_monitors(micros, db, origin, &crate::slowlog::redacted(args));
        }
    }

    /// Counts a command that answered (`total_commands_processed`, its `calls`, and its
    /// `failed_calls` on an error). A command that waits is counted once, when it answers,
    /// as Redis counts it when it unblocks: not each time it looks at its keys.
    fn count_call(&self, stat: Option<usize>, reply: &Reply) {
        self.counters.stats().total_commands.fetch_add(1, Ordering::Relaxed);
        if let Some(stats) = stat.and_then(|stat| self.counters.command(stat)) {
            stats.calls.fetch_add(1, Ordering::Relaxed);
        }
        if reply.is_error() {
            self.counters.record_failed(stat);
        }
    }

    /// Counts a blocked command that answers without running again: at its timeout, or
    /// ended by CLIENT UNBLOCK (`outcome` is what it answers, its error in `errorstats`).
    /// Redis 7.0 counts every command CLIENT UNBLOCK ends as a failed call, even one that
    /// answers as at its timeout (`updateStatsOnUnblock(target, 0, 0, 1)`).
    pub fn count_wait_ended(&self, outcome: &Outcome, by_client_unblock: bool) {
        if let Some(text) = outcome.reply.error_text() {
            self.counters.record_error(&text);
        }
        self.count_call(outcome.stat, &outcome.reply);
        if by_client_unblock && !outcome.reply.is_error() {
            self.counters.record_failed(outcome.stat);
        }
    }

    /// Run a command given as text at time 1, with no host and no journal (unit tests).
    #[cfg(test)]
    pub(crate) fn run_text(&self, client: &mut Client, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        self.execute(client, &args, 1, &crate::host::NoHost, &NoJournal).reply
    }

    /// Run a space-separated command line at `now` against `journal` (unit tests).
    #[cfg(test)]
    pub(crate) fn run_line(&self, client: &mut Client, now: u64, journal: &dyn Journal, line: &str) -> Outcome {
        self.run_line_on(&crate::host::NoHost, client, now, journal, line)
    }

    /// [`Engine::run_line`] with a host of the test's own (unit tests).
    #[cfg(test)]
    pub(crate) fn run_line_on(
        &self,
        host: &dyn Host,
        client: &mut Client,
        now: u64,
        journal: &dyn Journal,
        line: &str,
    ) -> Outcome {
        let args: Vec<Bytes> = line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        self.execute(client, &args, now, host, journal)
    }

    /// Checks that come before running, in Redis's order: arity, auth, writability.
    #[allow(clippy::too_many_arguments)]
    fn precheck(
        &self,
        client: &mut Client,
        index: usize,
        spec: &CommandSpec,
        args: &[Bytes],
        now: u64,
        host: &dyn Host,
        journal: &dyn Journal,
    ) -> Option<Reply> {
        if !spec.arity_ok(args.len()) {
            return Some(errors::wrong_arity(spec.name));
        }
        // Redis 7 looks subcommands up in its table too: an unknown one or a wrong count is
        // refused before running (and so when queued in MULTI, which it dooms).
        if let Some(refused) = spec.subcommand_refusal(args) {
            return Some(refused);
        }
        // Refused before anything else (even inside MULTI, which it dooms), as Redis's
        // protected commands are under its defaults.
        if spec.runs_with(flags::PROTECTED, args) {
            return Some(crate::cmd::server::not_enabled(&spec.name.to_ascii_uppercase()));
        }
        if !spec.has(flags::NO_AUTH) && self.must_authenticate(client) {
            return Some(errors::err(errors::NOAUTH));
        }
        let context = if client.multi.is_some() { "multi" } else { "toplevel" };
        if let Err(denied) = self.acl_check(client, index, spec, args, now, host, context) {
            return Some(Reply::Error(denied.error(spec, args)));
        }
        let subscribed = client.protocol == Protocol::Resp2 && client.subscription_count() > 0;
        if subscribed && !spec.has(flags::SUBSCRIBED_OK) {
            return Some(Reply::Error(format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                crate::acl::full_name(spec, args)
            )));
        }
        if client.multi.is_some() && spec.has(flags::NO_MULTI) {
            return Some(errors::err("ERR Command not allowed inside a transaction"));
        }
        if host.loading() && !spec.has(flags::LOADING) {
            return Some(errors::err("LOADING StayKV is loading the dataset in memory"));
        }
        let (writes, deny_oom) = self.write_flags(client, spec, args);
        if writes {
            if let Err(text) = journal.check_writable() {
                return Some(Reply::Error(text));
            }
            if let Some(too_large) = Self::over_log_limit(client, spec, args, journal) {
                return Some(too_large);
            }
        }
        // Over `maxmemory` every command evicts first, as in Redis's `processCommand` (a read
        // after a write that took memory finds it given back): clients over
        // `maxmemory-clients`, then keys; only a command that may add data is refused, and
        // only when nothing can go. Not while a script runs: it holds every shard (Redis does
        // not evict while a script is busy either; a command that waits for the script evicts
        // at the next command).
        client.out_of_memory = false;
        if host.over_memory_limit() && !self.scripting.is_running() {
            host.evict_clients();
            let evicted = self.evict(now, journal, host, &|| host.over_memory_limit());
            client.out_of_memory = evicted == crate::evict::Evicted::Stuck;
            // A blocked command re-run after its wake-up was admitted when it first ran: Redis
            // serves it then without a second OOM check (BLMOVE took the element it waited
            // for in Redis, and got OOM here).
            if client.out_of_memory && deny_oom && !self.blocked.is_waiting(client.id) {
                return Some(errors::oom());
            }
        }
        None
    }

    /// A write whose arguments alone (EXEC: its queued commands') would log more than the log
    /// takes, refused before it runs: once run it would be acknowledged but never durable.
    fn over_log_limit(client: &Client, spec: &CommandSpec, args: &[Bytes], journal: &dyn Journal) -> Option<Reply> {
        let db = u32::try_from(client.db).unwrap_or(u32::MAX);
        let logged = match client.multi.as_ref().filter(|_| spec.name == "exec") {
            Some(queue) => queue.iter().map(|argv| crate::effects::effect_len(db, argv)).sum(),
            None => crate::effects::effect_len(db, args),
        };
        let max = journal.max_batch_len();
        (logged > max).then(|| Reply::Error(too_large_to_log(logged, max)))
    }

    /// Whether a command writes, and whether it is refused over `maxmemory`, by Redis 7.0's
    /// `processCommand` rules for transactions:
    /// - EXEC takes both from the commands it would run, so a transaction that cannot write
    ///   is refused whole, before any of it runs, instead of answering the error for each of
    ///   its writes;
    /// - over `maxmemory` a transaction queues nothing more (the queue itself takes memory),
    ///   but can still be ended.
    fn write_flags(&self, client: &Client, spec: &CommandSpec, args: &[Bytes]) -> (bool, bool) {
        let Some(queue) = client.multi.as_ref() else {
            return (spec.writes(args), spec.denies_oom(args));
        };
        if spec.name != "exec" {
            return (spec.writes(args), !matches!(spec.name, "discard" | "quit" | "reset"));
        }
        self.table.specs_of(queue).fold((false, false), |(writes, deny_oom), (spec, args)| {
            (writes || spec.writes(args), deny_oom || spec.denies_oom(args))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn run<'a>(
        &'a self,
        client: &'a mut Client,
        spec: &CommandSpec,
        args: &[Bytes],
        locks: Locks<'a>,
        now: u64,
        host: &'a dyn Host,
        journal: &'a dyn Journal,
    ) -> (Reply, (u64, u64), Option<Blocked>) {
        let mut ctx = Ctx {
            engine: self,
            client,
            host,
            journal,
            now,
            locks,
            effects: Vec::new(),
            events: Vec::new(),
            deliveries: crate::pubsub::Deliveries::new(),
            written_collections: Vec::new(),
            nested: false,
            blocked: None,
            top: spec.name,
            explicit_events: false,
            error_counted: false,
            script_args: None,
            running_script: spec.has(flags::RUNS_SCRIPT),
            unlogged: None,
            reports_keyspace: false,
        };
        let tracking = ctx.client.tracking.is_some();
        if tracking && ctx.running_script {
            ctx.script_args = Some(args.to_vec());
        }
        let reply = (spec.handler)(&mut ctx, args).unwrap_or_else(|error| error);
        if tracking {
            // Still holding the command's locks: no write can slip between the read and this.
            ctx.remember_reads(spec, args);
        }
        let reply = if ctx.error_counted { reply } else { self.counted(reply) };
        let waits = ctx.commit();
        let reply = match ctx.unlogged.take() {
            Some(error) => self.counted(Reply::Error(error)),
            None => reply,
        };
        (reply, waits, ctx.blocked)
    }

    /// Offers a command's run time to the slow log and the latency monitor, as Redis's
    /// `call()` does: both leave out the commands flagged `SKIP_SLOWLOG` (EXEC, AUTH...).
    /// The server offers the commands clients send, [`Ctx::call`] those EXEC and scripts run;
    /// `peer` and `name` are the client's as the slow log shows them.
    pub fn offer_to_monitors(
        &self,
        index: usize,
        args: &[Bytes],
        peer: &str,
        name: Option<&Bytes>,
        now: u64,
        micros: u64,
    ) {
        // The common case, fast and monitors at their defaults, is two atomic loads.
        let (spike, slow) = (self.latency.is_spike(micros / 1000), self.slowlog.is_slow(micros));
        if !spike && !slow {
            return;
        }
        let Some(spec) = self.table.all().get(index).filter(|spec| !spec.has(flags::SKIP_SLOWLOG)) else {
            return;
        };
        if spike {
            let event = if spec.has(flags::FAST) { crate::latency::FAST_COMMAND } else { crate::latency::COMMAND };
            self.latency.offer(event, now / 1000, micros / 1000);
        }
        if slow {
            self.slowlog.record(now / 1000, micros, args, peer, name);
        }
    }

    /// `reply`, counted in `INFO errorstats` if it is an error.
    fn counted(&self, reply: Reply) -> Reply {
        if let Some(text) = reply.error_text() {
            self.counters.record_error(&text);
        }
        reply
    }

    /// A refused command's outcome, counted as Redis counts rejections.
    fn refuse(
        &self,
        client: &mut Client,
        reply: Reply,
        spec: &CommandSpec,
        index: usize,
        stat: Option<usize>,
    ) -> Outcome {
        self.counters.record_rejected(stat);
        let reply = if spec.name == "exec" {
            // A refused EXEC (arity, NOPERM, BUSY, OOM...) discards the transaction and the
            // watches, in MULTI or not, as Redis's `execCommandAbort` does. The reason is
            // quoted without an ERR, which Redis's own rejections of it do not carry.
            client.multi = None;
            client.multi_failed = false;
            self.watches.unwatch_all(client);
            let error = reply.error_text().unwrap_or_default();
            let error = error.strip_prefix("ERR ").unwrap_or(&error);
            Reply::Error(format!("EXECABORT Transaction discarded because of: {error}"))
        } else {
            // A command refused while queuing dooms the transaction, as in Redis.
            client.multi_failed |= client.multi.is_some();
            reply
        };
        Outcome::not_run(self.counted(reply), Some((index, stat)))
    }

    /// The shards a command runs under and the time it runs at, or the `BUSY` error it gets
    /// instead.
    ///
    /// What runs while a script is busy is what `busy_reply` let through: it takes no shard,
    /// since the script holds them all until it ends. A command that passed the BUSY check
    /// just as a script started waits for the script's shards; once the script passes the
    /// busy threshold, it gives up and is answered as though it had come then, as Redis
    /// answers the commands queued behind a script once it passes the threshold. (A host
    /// without a clock waits.)
    ///
    /// After a long wait (a script or an EXEC held the shards) the clock is read again, so
    /// that the command's relative TTLs count from when it runs and the keys that expired
    /// meanwhile read as expired, as in Redis, which runs a command once nothing else does.
    fn locks_to_run(
        &self,
        spec: &CommandSpec,
        args: &[Bytes],
        now: u64,
        host: &dyn Host,
    ) -> Result<(Locks<'_>, u64), Reply> {
        let let_through = || Locks::Some { guards: SmallVec::new(), key_hashes: SmallVec::new() };
        if self.scripting.is_busy(now) {
            return Ok((let_through(), now));
        }
        let clock_ms = || host.clock_micros().map(|micros| micros / 1000);
        // Asked only while a wait goes past its first millisecond.
        let waited_long = std::cell::Cell::new(false);
        let script_busy = || {
            waited_long.set(true);
            clock_ms().is_some_and(|now| self.scripting.is_busy(now))
        };
        let now_after_wait = || if waited_long.get() { clock_ms().map_or(now, |fresh| fresh.max(now)) } else { now };
        loop {
            if let Some(locks) = self.lock_for(spec, args, host, &script_busy) {
                return Ok((locks, now_after_wait()));
            }
            if Scripting::lets_through(spec, args) {
                return Ok((let_through(), now_after_wait()));
            }
            if let Some(busy) = clock_ms().and_then(|now| self.scripting.busy_reply(spec, args, now)) {
                return Err(busy);
            }
            // The script ended meanwhile: wait for the shards again.
        }
    }

    /// Lock the shards a command's keys live in, in shard order; `None`, holding none, if a
    /// wait gave up.
    fn lock_for(
        &self,
        spec: &CommandSpec,
        args: &[Bytes],
        host: &dyn Host,
        give_up: &dyn Fn() -> bool,
    ) -> Option<Locks<'_>> {
        if spec.has(flags::ALL_SHARDS) {
            return self.keyspace.lock_all_for_command(host, give_up).map(Locks::All);
        }
        let key_hashes: SmallVec<[u64; 4]> =
            command_keys(spec, args).into_iter().map(|k| self.keyspace.hash(k)).collect();
        let mut shards: SmallVec<[usize; 4]> = key_hashes.iter().map(|&hash| self.keyspace.shard_of(hash)).collect();
        shards.sort_unstable();
        shards.dedup();
        let locked = shards.into_iter().map(|i| Some((i, self.keyspace.lock_for_command(i, host, give_up)?)));
        let guards = locked.collect::<Option<_>>()?;
        Some(Locks::Some { guards, key_hashes })
    }

    /// Check `client`'s ACL user may run this command; refusals go to the ACL LOG.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn acl_check(
        &self,
        client: &mut Client,
        index: usize,
        spec: &CommandSpec,
        args: &[Bytes],
        now: u64,
        host: &dyn Host,
        context: &'static str,
    ) -> Result<(), crate::acl::Denied> {
        if client.acl_exempt {
            return Ok(());
        }
        let version = self.acl.version();
        let fresh = matches!(&client.acl_user, Some((v, user)) if *v == version && user.name == client.user);
        if !fresh {
            client.acl_user = self.acl.user(&client.user).map(|user| (version, user));
        }
        let result = match &client.acl_user {
            Some((_, user)) => user.check(index, spec, args),
            // The user was deleted since this client authenticated.
            None => Err(crate::acl::Denied::Command),
        };
        if let Err(denied) = result {
            self.acl_log(client, host, denied.reason(), context, denied.object(spec, args), client.user.clone(), now);
        }
        result
    }

    /// Add an ACL LOG entry for a refusal by or a failed authentication of `client`.
    #[allow(clippy::too_many_arguments)]
    pub fn acl_log(
        &self,
        client: &Client,
        host: &dyn Host,
        reason: &'static str,
        context: &'static str,
        object: String,
        username: String,
        now: u64,
    ) {
        let client_info = host.client_list(client, &crate::host::ClientFilter::id(client.id)).trim_end().to_string();
        self.acl.log(crate::acl::LogEntry { count: 1, reason, context, object, username, updated: now, client_info });
    }

    /// A client is going away: drop what the engine holds for it. Only a client that can take
    /// messages can be a redirect target or a MONITOR: the others (an HTTP request's, made
    /// and dropped per request) skip those two registries' write locks, which both worker
    /// threads would otherwise take for every request. `now` is the time it goes (Unix ms).
    pub fn disconnect(&self, client: &mut Client, now: u64) {
        self.watches.unwatch_all(client);
        self.tracking.disable(client.id);
        self.blocked.unregister(client.id, now);
        crate::cmd::pubsub::forget(self, client);
        if client.deliver.is_some() {
            self.tracking.forget_peer(client.id);
            self.pubsub.remove_monitor(client.id);
        }
    }

    /// Whether `client` must authenticate before it runs anything: it has not, and the
    /// `default` user needs a password. A client that connected while one was needed runs
    /// once none is (`default` made `nopass`), as Redis's authRequired() asks at each command.
    pub fn must_authenticate(&self, client: &Client) -> bool {
        !client.authenticated && self.acl.auth_required()
    }

    /// Apply one logged batch during recovery: each effect runs at the batch's time. An effect
    /// that answers an error does not stop the rest, so that a start told to go past such
    /// failures keeps every effect that did replay; each failure is returned, in order.
    /// Nothing replayed is counted in INFO ([`crate::stats::Counters::not_counting`]).
    pub fn replay(&self, time_ms: u64, effects: &[Effect]) -> Result<(), Vec<ReplayFailure>> {
        let _not_counted = self.counters.not_counting();
        let mut failures = Vec::new();
        for (index, effect) in effects.iter().enumerate() {
            let command = || effect.argv.first().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
            if let Some(error) = self.missing_database_refusal(effect) {
                failures.push(ReplayFailure { index, command: command(), error, missing_database: true });
                continue;
            }
            let mut client = Client::new(0, true);
            client.acl_exempt = true;
            client.db = effect.db as usize;
            let outcome = self.execute(&mut client, &effect.argv, time_ms, &NoHost, &NoJournal);
            if let Reply::Error(error) = outcome.reply {
                // SWAPDB, MOVE or COPY naming a database the server lacks.
                let missing_database = error == errors::DB_INDEX;
                failures.push(ReplayFailure { index, command: command(), error, missing_database });
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }

    /// Why an effect logged in a database the server was started without (a smaller
    /// `--databases`) cannot replay: one that names keys is data in that database. One that
    /// names none runs as logged (FLUSHALL, FUNCTION LOAD or SWAPDB issued while that
    /// database was selected; FLUSHDB there finds nothing to flush).
    fn missing_database_refusal(&self, effect: &Effect) -> Option<String> {
        let refusal = self.keyspace.missing_database(effect.db as usize)?;
        let spec = effect.argv.first().and_then(|name| self.table.lookup(name)).map(|(_, spec)| spec);
        spec.is_none_or(|spec| !spec.key_positions(&effect.argv).is_empty()).then_some(refusal)
    }

    /// One slice of active expiry: look at up to `budget` slots, starting where the last
    /// slice stopped, and delete what has expired (logged as DEL, like Redis). Returns how
    /// many keys expired. Run it often with a small budget; it never holds a lock for long.
    /// The values are freed once the shard is released, on `host`'s background thread under
    /// `lazyfree-lazy-expire`.
    ///
    /// A slice that takes longer than `latency-monitor-threshold` (freeing a big value, say)
    /// is entered as an `expire-cycle` latency event, as Redis enters its cycle.
    pub fn active_expire(&self, now: u64, budget: usize, journal: &dyn Journal, host: &dyn Host) -> usize {
        if self.pause.in_force(now) {
            // Keys hold still during CLIENT PAUSE, as in Redis.
            return 0;
        }
        let started = host.elapsed_micros();
        let expired = self.expire_slice(now, budget, journal, host);
        if let Some(started) = started {
            let micros = host.elapsed_micros().unwrap_or(started).saturating_sub(started);
            self.counters.stats().expire_cycle_micros.fetch_add(micros, Ordering::Relaxed);
            self.latency.offer(crate::latency::EXPIRE_CYCLE, now / 1000, micros / 1000);
        }
        expired
    }

    /// [`Engine::active_expire`] but its timing.
    fn expire_slice(&self, now: u64, budget: usize, journal: &dyn Journal, host: &dyn Host) -> usize {
        let shards = self.keyspace.shard_count();
        let mut expired = 0;
        let mut remaining = budget;
        for _ in 0..shards {
            if remaining == 0 {
                break;
            }
            let shard = (self.expire_shard.fetch_add(1, Ordering::Relaxed) as usize) % shards;
            // A busy shard waits for the next cycle: a script holds every shard while it runs,
            // and this runs on an async worker that must stay free to read SCRIPT KILL.
            let Some(mut guard) = self.keyspace.try_lock(shard) else {
                continue;
            };
            let per_shard = (budget / shards).max(64);
            let mut effects = Vec::new();
            let mut removed = Vec::new();
            let mut removed_hashes = Vec::new();
            let mut deliveries = crate::pubsub::Deliveries::new();
            for db in 0..guard.dbs.len() {
                let (scanned, expired_keys) = expire_slots(&mut guard, db, now, per_shard, self.keyspace.hasher());
                // No command holds a slot number now: the slab may be packed.
                if let Some(slice) = guard.dbs.get_mut(db) {
                    slice.pack_if_sparse(self.keyspace.hasher());
                }
                remaining = remaining.saturating_sub(scanned);
                for (key, hash, value) in expired_keys {
                    removed_hashes.push(hash);
                    removed.push(value);
                    self.watches.touch(db, &key, || false);
                    deliveries.append(self.tracking.invalidations(&key, crate::tracking::Cause::default()));
                    let event =
                        crate::notify::Event { class: crate::notify::EXPIRED, name: "expired", db, key: key.clone() };
                    self.notifier.publish(&self.pubsub, &event, &mut deliveries);
                    effects.push(Effect::new(db, vec![Bytes::from_static(b"DEL"), key]));
                }
            }
            if !effects.is_empty() {
                expired += effects.len();
                // A batch of DELs is far below the log's limit.
                if let Ok(seq) = journal.append(now, &effects) {
                    for hash in removed_hashes {
                        guard.note_key_write(hash, seq);
                    }
                }
            }
            drop(guard);
            deliveries.deliver();
            let lazily = self.lazyfree.is_on(LazyOption::Expire);
            for value in removed {
                self.lazyfree.release(host, value, lazily);
            }
        }
        self.counters.stats().expired_keys.fetch_add(expired as u64, Ordering::Relaxed);
        self.tracking.broadcast(None);
        expired
    }

    /// Keys per database (all shards summed): (keys, keys with a deadline).
    pub fn db_sizes(&self) -> Vec<(usize, usize)> {
        self.db_footprints().iter().map(DbFootprint::sizes).collect()
    }

    /// [`Engine::db_sizes`], unless a shard is still held at `deadline`: for callers that
    /// must answer regardless (`/metrics`), since a running script holds every shard for as
    /// long as it runs.
    pub fn db_sizes_by(&self, deadline: Instant) -> Option<Vec<(usize, usize)>> {
        let footprints = self.footprints_locked_by(|shard| self.keyspace.lock_until(shard, deadline))?;
        Some(footprints.iter().map(DbFootprint::sizes).collect())
    }

    /// Each database's keys and table, all shards summed.
    pub fn db_footprints(&self) -> Vec<DbFootprint> {
        self.footprints_locked_by(|shard| self.keyspace.lock(shard)).unwrap_or_default()
    }

    /// Sums every shard as `lock` gives it; `None` if it gives up on one.
    fn footprints_locked_by<'a>(
        &'a self,
        mut lock: impl FnMut(usize) -> Option<MutexGuard<'a, Shard>>,
    ) -> Option<Vec<DbFootprint>> {
        let mut footprints = vec![DbFootprint::default(); self.keyspace.databases()];
        for shard in 0..self.keyspace.shard_count() {
            let guard = lock(shard)?;
            DbFootprint::add_shard(&mut footprints, &guard);
        }
        Some(footprints)
    }

    /// Visit every live entry, shard by shard (each shard locked only while visited).
    pub fn for_each_entry(&self, mut visit: impl FnMut(usize, &Entry)) {
        for shard in 0..self.keyspace.shard_count() {
            let Some(guard) = self.keyspace.lock(shard) else {
                continue;
            };
            for (db_index, db) in guard.dbs.iter().enumerate() {
                for pos in 0..db.slot_count() {
                    if let Some(entry) = db.slot(pos) {
                        visit(db_index, entry);
                    }
                }
            }
        }
    }
}

/// Scan up to `budget` slots of one database slice for expired keys; remove them and return
/// their names, hashes and values (for the values to be freed once the shard is released).
fn expire_slots(
    shard: &mut Shard,
    db: usize,
    now: u64,
    budget: usize,
    hasher: &impl std::hash::BuildHasher,
) -> (usize, Vec<(Bytes, u64, Value)>) {
    let (Some(cycle), Some(slice)) = (shard.expiry.get_mut(db), shard.dbs.get_mut(db)) else {
        return (0, Vec::new());
    };
    if slice.volatile_len() == 0 {
        cycle.avg_ttl_ms = 0;
        return (0, Vec::new());
    }
    let slots = slice.slot_count();
    let mut pos = if cycle.cursor >= slots { 0 } else { cycle.cursor };
    let mut expired = Vec::new();
    let mut scanned = 0;
    let (mut ttl_sum, mut ttl_samples) = (0u128, 0u64);
    while scanned < budget.min(slots) {
        if let Some(entry) = slice.slot(pos) {
            if entry.is_expired(now) {
                let key = entry.key.to_bytes();
                let hash = hasher.hash_one(&key[..]);
                if let Some(removed) = slice.remove(hash, &key) {
                    expired.push((key, hash, removed.value));
                }
            } else if let Some(deadline) = entry.ttl() {
                ttl_sum += u128::from(deadline.saturating_sub(now));
                ttl_samples += 1;
            }
        }
        scanned += 1;
        pos += 1;
        if pos >= slice.slot_count() {
            pos = 0;
        }
    }
    cycle.cursor = pos;
    if ttl_samples > 0 {
        cycle.observe_ttl(u64::try_from(ttl_sum / u128::from(ttl_samples)).unwrap_or(u64::MAX));
    }
    (scanned, expired)
}

/// The shard guards a command holds.
pub(crate) enum Locks<'a> {
    /// The shards of the keys a command names (`command_keys`), sorted by shard index, and
    /// those keys' hashes: its commit notes or waits for the writes to them.
    Some { guards: SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>, key_hashes: SmallVec<[u64; 4]> },
    /// Every shard, indexed by shard number.
    All(Vec<MutexGuard<'a, Shard>>),
}

impl std::fmt::Debug for Locks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Locks::Some { guards, .. } => write!(f, "Locks::Some({} shards)", guards.len()),
            Locks::All(v) => write!(f, "Locks::All({} shards)", v.len()),
        }
    }
}

/// Everything a command function sees: its client, the time, the locked keyspace, the host.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub engine: &'a Engine,
    pub client: &'a mut Client,
    pub host: &'a dyn Host,
    pub(crate) journal: &'a dyn Journal,
    /// The command's time, Unix ms. Never read the clock inside a command.
    pub now: u64,
    locks: Locks<'a>,
    effects: Vec<Effect>,
    /// Keyspace events to publish once the command's effects are logged.
    events: Vec<crate::notify::Event>,
    /// Messages for other connections made while the command ran (PUBLISH, invalidations),
    /// delivered once its effects are logged: a connection writes out what it was handed
    /// only once the batches appended by then are durable, so no client hears of a write a
    /// crash could take back.
    deliveries: crate::pubsub::Deliveries,
    /// Collections opened for writing, (db, key): checked at commit for outgrowing their
    /// compact encoding.
    written_collections: Vec<(usize, Bytes)>,
    /// Running inside EXEC or a script: blocking commands answer at once.
    nested: bool,
    blocked: Option<Blocked>,
    /// The top-level command (`exec`, `eval`...) commands run through [`Ctx::call`] are in.
    top: &'static str,
    /// The running command names its keyspace events itself ([`Ctx::explicit_events`]).
    explicit_events: bool,
    /// The error this command replies with was counted where it arose (a command a script
    /// called): not counted again.
    pub(crate) error_counted: bool,
    /// The script command running (EVAL...), kept only for a tracking client: Redis 7.0
    /// remembers its keys for the reads the script makes.
    script_args: Option<Vec<Bytes>>,
    /// A script runs (top level or inside EXEC): its writes are its own, not the client's,
    /// for a BCAST NOLOOP client (Redis credits them to the script's fake client).
    running_script: bool,
    /// The error that replaces the reply: the command's effects were too large to log.
    unlogged: Option<String>,
    /// The reply tells of the whole keyspace without holding its shards (INFO's key counts):
    /// it waits for every batch appended ([`Ctx::reports_keyspace`]).
    reports_keyspace: bool,
}

impl std::fmt::Debug for dyn Journal + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

impl std::fmt::Debug for dyn Host + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}

/// The error for a write larger than the log takes in one batch.
fn too_large_to_log(logged: usize, max: usize) -> String {
    format!(
        "ERR this write would log {logged} bytes, more than the log takes in one write ({max} bytes): split it into smaller writes"
    )
}

/// Whether an effect named `name` changes whole databases (SWAPDB, FLUSHDB, FLUSHALL): it
/// names no key, so every blocked client is woken to look again. An XREADGROUP whose stream
/// went with a flush then answers that it no longer exists, as in Redis 7.0.
fn changes_whole_databases(name: &[u8]) -> bool {
    [&b"swapdb"[..], b"flushdb", b"flushall"].iter().any(|whole| name.eq_ignore_ascii_case(whole))
}

/// Whether a logged change can ready a blocked command. A stream group's bookkeeping cannot
/// (XGROUP but DESTROY, XACK, XCLAIM, XAUTOCLAIM, XSETID): Redis signals none of it, and a
/// consumer woken by `XGROUP SETID` moving its group back would read old entries at once,
/// where Redis leaves it waiting for the next XADD.
fn may_ready_waiters(argv: &[Bytes]) -> bool {
    let Some(name) = argv.first() else { return false };
    if name.eq_ignore_ascii_case(b"xgroup") {
        return argv.get(1).is_some_and(|sub| sub.eq_ignore_ascii_case(b"destroy"));
    }
    ![&b"xack"[..], b"xclaim", b"xautoclaim", b"xsetid"].iter().any(|word| name.eq_ignore_ascii_case(word))
}

impl<'a> Ctx<'a> {
    /// Log the effects as one batch, hand over the messages the command made, signal
    /// watched keys, and return the sequence numbers the reply waits for
    /// ([`Outcome::wait_seq`], [`Outcome::settle_seq`]): the last write to the keys the
    /// command named, or to any key of the shards it held whole; and for a report on the
    /// whole keyspace, every batch appended.
    fn commit(&mut self) -> (u64, u64) {
        let wait = self.commit_effects();
        (wait, if self.reports_keyspace { self.journal.settled_seq() } else { 0 })
    }

    /// [`Ctx::commit`]'s logging, hand-over and signals; returns the reply's own wait
    /// ([`Outcome::wait_seq`]).
    fn commit_effects(&mut self) -> u64 {
        self.note_outgrown();
        let seq = match self.effects.is_empty() {
            true => None,
            // Refused, the batch is over the log's limit: only a script (or a command whose
            // effects outgrow its arguments) gets here past `over_log_limit`. Its change is
            // made, but it must not be acknowledged.
            false => match self.journal.append(self.now, &self.effects) {
                Ok(seq) => Some(seq),
                Err(refused) => {
                    self.unlogged = Some(format!(
                        "ERR this write was made but cannot be logged ({refused}): it is not durable, and a restart will undo it"
                    ));
                    None
                }
            },
        };
        let mut deliveries = std::mem::take(&mut self.deliveries);
        for event in std::mem::take(&mut self.events) {
            self.engine.notifier.publish(&self.engine.pubsub, &event, &mut deliveries);
        }
        deliveries.deliver();
        // Watched keys were touched as each effect was recorded (`propagate_in`).
        if !self.engine.blocked.is_empty() {
            for effect in self.effects.iter().filter(|effect| may_ready_waiters(&effect.argv)) {
                let db = effect.db as usize;
                if effect.argv.first().is_some_and(|name| changes_whole_databases(name)) {
                    self.engine.blocked.signal_all(self.now);
                } else if let Some(key) = effect_key(&self.engine.table, &effect.argv) {
                    self.engine.blocked.signal(db, key, self.client.id, self.now);
                }
            }
        }
        match &mut self.locks {
            Locks::Some { guards, key_hashes } => {
                // Every key such a command reads or writes is among its key positions: they
                // are what chose the shards it holds, and their hashes were kept then.
                let shard_of = |guards: &[(usize, MutexGuard<'_, Shard>)], hash| {
                    held_position(guards, self.engine.keyspace.shard_of(hash)).ok()
                };
                match seq {
                    // The latest batch of every shard held: the reply waits for it alone.
                    Some(seq) => {
                        for &hash in key_hashes.iter() {
                            if let Some((_, shard)) = shard_of(guards, hash).and_then(|i| guards.get_mut(i)) {
                                shard.note_key_write(hash, seq);
                            }
                        }
                        seq
                    }
                    // While the disk refuses writes, a read waits only for the writes to its
                    // keys, which may never become durable: other keys' reads are answered
                    // meanwhile.
                    None if self.journal.refusing_writes() => key_hashes
                        .iter()
                        .filter_map(|&hash| {
                            shard_of(guards, hash).and_then(|i| guards.get(i)).map(|(_, s)| s.key_wait(hash))
                        })
                        .max()
                        .unwrap_or(0),
                    // Otherwise for its shards' last writes as a whole: its reply then goes out
                    // with the fsync its neighbours wait for (on the session workload, 6% less
                    // CPU a request than answering each read at once).
                    None => guards.iter().map(|(_, shard)| shard.shard_wait()).max().unwrap_or(0),
                }
            }
            Locks::All(guards) => {
                let mut wait = 0;
                for shard in guards.iter_mut() {
                    if let Some(seq) = seq {
                        shard.note_shard_write(seq);
                    }
                    wait = wait.max(shard.shard_wait());
                }
                wait
            }
        }
    }

    /// A hash or set a command made too big for the compact encoding keeps reporting the big
    /// one from then on, as in Redis; checked for every collection the command opened for
    /// writing (strings never need the check, so GET/SET skip it).
    fn note_outgrown(&mut self) {
        for (db, key) in std::mem::take(&mut self.written_collections) {
            let (hash, slice) = self.db_at(db, &key);
            let Some(pos) = slice.find(hash, &key) else { continue };
            if let Some(entry) = slice.get_mut(pos) {
                if entry.encoding != Encoding::Big && entry.value.outgrew_compact() {
                    entry.encoding = Encoding::Big;
                }
            }
        }
    }

    fn shards_mut(&mut self) -> Box<dyn Iterator<Item = &mut Shard> + '_> {
        match &mut self.locks {
            Locks::Some { guards, .. } => Box::new(guards.iter_mut().map(|(_, g)| &mut **g)),
            Locks::All(v) => Box::new(v.iter_mut().map(|g| &mut **g)),
        }
    }

    /// The locked shard holding `hash`. The table's key positions decide the locks, so a
    /// miss is a bug in a table entry; it is repaired by locking (and flagged in debug builds).
    fn shard(&mut self, hash: u64) -> &mut Shard {
        let index = self.engine.keyspace.shard_of(hash);
        let engine = self.engine;
        match &mut self.locks {
            Locks::All(guards) => {
                let count = guards.len();
                match guards.get_mut(index) {
                    Some(guard) => guard,
                    None => unreachable_shard(count),
                }
            }
            Locks::Some { guards, .. } => {
                let pos = match held_position(guards, index) {
                    Ok(pos) => pos,
                    Err(pos) => {
                        debug_assert!(false, "command touched a key whose shard it did not lock");
                        let guard = engine.keyspace.lock(index).unwrap_or_else(|| unreachable_shard(index));
                        guards.insert(pos, (index, guard));
                        pos
                    }
                };
                match guards.get_mut(pos) {
                    Some((_, guard)) => guard,
                    None => unreachable_shard(pos),
                }
            }
        }
    }

    /// The database slice of the client's current db that holds `key`, and the key's hash.
    fn db_for(&mut self, key: &[u8]) -> (u64, &mut Db) {
        let db = self.client.db;
        self.db_at(db, key)
    }

    fn db_at(&mut self, db: usize, key: &[u8]) -> (u64, &mut Db) {
        let hash = self.engine.keyspace.hash(key);
        (hash, self.db_of_hash(db, hash))
    }

    /// [`Ctx::db_at`] for a key whose hash is known.
    fn db_of_hash(&mut self, db: usize, hash: u64) -> &mut Db {
        let shard = self.shard(hash);
        let count = shard.dbs.len();
        match shard.dbs.get_mut(db) {
            Some(slice) => slice,
            None => unreachable_shard(count),
        }
    }

    /// Look a key up in the current db, expiring it lazily (and logging the deletion).
    pub fn lookup(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let db = self.client.db;
        self.lookup_in(db, key)
    }

    /// [`Ctx::lookup`] in a given database.
    pub fn lookup_in(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        let touch = !self.client.no_touch;
        self.find_live(db, key, touch)
    }

    /// Whether this command holds the shard of `key` (an `allow_busy` command run during a
    /// busy script holds none).
    pub fn holds_shard_of(&self, key: &[u8]) -> bool {
        let index = self.engine.keyspace.shard_of(self.engine.keyspace.hash(key));
        match &self.locks {
            Locks::All(_) => true,
            Locks::Some { guards, .. } => held_position(guards, index).is_ok(),
        }
    }

    /// The entry as stored, expired or not, without side effects (WATCH bookkeeping).
    pub fn peek_raw(&mut self, db: usize, key: &[u8]) -> Option<&Entry> {
        let (hash, slice) = self.db_at(db, key);
        let pos = slice.find(hash, key)?;
        slice.get(pos)
    }

    /// Look a key up without updating its access time (TYPE, TTL, OBJECT).
    pub fn peek(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let db = self.client.db;
        self.find_live(db, key, false)
    }

    fn find_live(&mut self, db: usize, key: &[u8], touch: bool) -> Option<&mut Entry> {
        let (now, engine, client) = (self.now, self.engine, self.client.id);
        let (hash, slice) = self.db_at(db, key);
        let pos = slice.find(hash, key)?;
        if slice.get(pos).is_some_and(|e| e.is_expired(now)) {
            if engine.pause.in_force(now) {
                // Expired, but deleted only once CLIENT PAUSE ends: the dataset holds still.
                return None;
            }
            let expired = slice.remove(hash, key);
            engine.watches.touch(db, key, || false);
            let invalidations = engine.tracking.invalidations(key, crate::tracking::Cause::expiry_during(client));
            self.deliveries.append(invalidations);
            if let Some(entry) = expired {
                self.free_value(entry.value, engine.lazyfree.is_on(LazyOption::Expire));
            }
            self.engine.counters.stats().expired_keys.fetch_add(1, Ordering::Relaxed);
            self.notify_in(db, crate::notify::EXPIRED, "expired", key);
            self.effects.push(Effect::new(db, vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)]));
            return None;
        }
        let entry = self.db_of_hash(db, hash).get_mut(pos)?;
        if touch {
            // Stored only when it changes (once a second under LRU): a store of the same value
            // still dirties the entry's cache line, which the other worker threads reading the
            // key must then fetch from this core's cache.
            let stamp = engine.eviction.touched(entry.accessed, now);
            if stamp != entry.accessed {
                entry.accessed = stamp;
            }
        }
        Some(entry)
    }

    /// A read lookup that counts a keyspace hit or miss.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let touch = !self.client.no_touch;
        self.read_lookup(key, touch)
    }

    /// [`Ctx::peek`] for the reads Redis makes with `LOOKUP_NOTOUCH` (EXISTS, TYPE, TTL...):
    /// the access time is left alone, but a hit or miss is counted and a miss announced
    /// (`keymiss`) as for any read.
    pub fn peek_read(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.read_lookup(key, false)
    }

    /// A lookup in the current database that counts a hit or miss and announces a miss.
    fn read_lookup(&mut self, key: &[u8], touch: bool) -> Option<&mut Entry> {
        let (db, engine) = (self.client.db, self.engine);
        let count = |hit: bool| {
            let stats = engine.counters.stats();
            let counter = if hit { &stats.keyspace_hits } else { &stats.keyspace_misses };
            counter.fetch_add(1, Ordering::Relaxed);
        };
        if !engine.notifier.wants(crate::notify::KEY_MISS) {
            // The common case: one lookup, whatever it finds.
            let found = self.find_live(db, key, touch);
            count(found.is_some());
            return found;
        }
        // A miss is announced before an entry is handed out (the entry's borrow would outlive
        // the announcement), so a hit is looked up twice while `keymiss` is wanted.
        let hit = self.find_live(db, key, touch).is_some();
        count(hit);
        if !hit {
            self.notify_in(db, crate::notify::KEY_MISS, "keymiss", key);
            return None;
        }
        self.find_live(db, key, touch)
    }

    /// The collection of type `C` at `key` for reading (a hit or miss is counted): `None` if
    /// missing, WRONGTYPE if the key holds another type.
    pub fn read_collection<C: Collection>(&mut self, key: &[u8]) -> Result<Option<&mut C>, Reply> {
        match self.lookup_read(key) {
            None => Ok(None),
            Some(entry) => C::view(&mut entry.value).map(Some).ok_or_else(errors::wrong_type),
        }
    }

    /// The collection of type `C` at `key` for a command that changes it but never creates
    /// it (pops, removals): looked up as Redis's `lookupKeyWrite` does, so a missing key is no
    /// counted, announced miss. `None` if missing, WRONGTYPE if the key holds another type.
    pub fn existing_collection<C: Collection>(&mut self, key: &[u8]) -> Result<Option<&mut C>, Reply> {
        match self.lookup(key) {
            None => Ok(None),
            Some(entry) => C::view(&mut entry.value).map(Some).ok_or_else(errors::wrong_type),
        }
    }

    /// The collection of type `C` at `key` for writing, created empty when missing if
    /// `create`; WRONGTYPE if the key holds another type.
    pub fn write_collection<C: Collection>(&mut self, key: &[u8], create: bool) -> Result<Option<&mut C>, Reply> {
        // Only hashes and sets need the commit-time check: lists, sorted sets and streams
        // pay no copy of the key here.
        let db = self.client.db;
        if C::HAS_COMPACT_ENCODING && !self.written_collections.iter().any(|(d, k)| *d == db && k[..] == *key) {
            self.written_collections.push((db, Bytes::copy_from_slice(key)));
        }
        if C::HAS_COMPACT_ENCODING {
            self.keep_outgrown(key);
        }
        if self.lookup(key).is_none() {
            if !create {
                return Ok(None);
            }
            self.store(key, C::empty(), NO_EXPIRY);
        }
        match self.lookup(key) {
            None => Ok(None),
            Some(entry) => C::view(&mut entry.value).map(Some).ok_or_else(errors::wrong_type),
        }
    }

    /// Before a command changes a hash or set in place (and may shrink it): if it has
    /// outgrown the compact encoding, it keeps the big one from then on, as in Redis, where
    /// it converted when it grew. Values stored whole (STORE forms, RESTORE, snapshot
    /// loads) report by content until this first change, as Redis picks their encoding when
    /// it builds them. Bounded cost: the check stops at the entry limits (128, 512).
    pub fn keep_outgrown(&mut self, key: &[u8]) {
        if let Some(entry) = self.peek(key) {
            if entry.encoding == Encoding::Auto && entry.value.outgrew_compact() {
                entry.encoding = Encoding::Big;
            }
        }
    }

    /// Record how the value at `key` was built (see [`Encoding`]).
    pub fn set_encoding(&mut self, key: &[u8], encoding: Encoding) {
        if let Some(entry) = self.peek(key) {
            entry.encoding = encoding;
        }
    }

    /// Delete `key` if it holds an empty collection (Redis never keeps one), announcing the
    /// `del` Redis announces after the command's own event.
    pub fn drop_if_empty(&mut self, key: &[u8]) {
        if self.peek(key).is_some_and(|e| e.value.is_empty_collection()) {
            self.remove(key);
            self.notify(crate::notify::GENERIC, "del", key);
        }
    }

    /// Store `value` under `key` in the current db with the given deadline, replacing any
    /// entry.
    pub fn store(&mut self, key: &[u8], value: Value, expire_at: u64) {
        let db = self.client.db;
        self.store_in(db, key, value, expire_at)
    }

    pub fn store_in(&mut self, db: usize, key: &[u8], value: Value, expire_at: u64) {
        self.store_with(db, key, expire_at, |_| false, || value);
    }

    /// [`Ctx::store`] of a string: a live string key whose buffer can take `data` in place
    /// ([`SmallBytes::overwrite`]) keeps it. With 1 KB values, allocating the new value and
    /// freeing the old one (often on the other worker thread, and cold) were a sixth of a
    /// pipelined SET's server CPU; in place, `redis-benchmark -P 16 -t set` under `always`
    /// went from 332–384k to 426–454k SETs a second (three alternations).
    pub fn store_string(&mut self, key: &[u8], data: &[u8], expire_at: u64) {
        let db = self.client.db;
        let in_place = |stored: &mut Value| match stored {
            Value::Str(stored) => stored.overwrite(data),
            _ => false,
        };
        self.store_with(db, key, expire_at, in_place, || Value::Str(SmallBytes::from_slice(data)));
    }

    /// [`Ctx::store`] of a string that `edit` changes: a live string key's buffer is edited
    /// where it is when no reply holds it ([`SmallBytes::edit`]), a missing key starts from
    /// an empty string. Callers have checked the key holds a string (or nothing).
    pub fn edit_string(&mut self, key: &[u8], expire_at: u64, edit: impl FnOnce(&mut BytesMut)) {
        let db = self.client.db;
        // One of the two paths runs it; a `Cell` lets both closures hold it.
        let edit = Cell::new(Some(edit));
        let run = |buf: &mut BytesMut| {
            if let Some(edit) = edit.take() {
                edit(buf);
            }
        };
        let in_place = |stored: &mut Value| match stored {
            Value::Str(stored) => {
                stored.edit(run);
                true
            }
            _ => false,
        };
        let fresh = || {
            let mut buf = BytesMut::new();
            run(&mut buf);
            Value::Str(SmallBytes::from_owned(buf.freeze()))
        };
        self.store_with(db, key, expire_at, in_place, fresh);
    }

    /// Stores under `key`: a live entry keeps its place and gets the new deadline, and its
    /// value is changed by `in_place` if that says it could, else replaced by `value()`; a
    /// missing (or expired) key gets a new entry holding `value()`.
    fn store_with(
        &mut self,
        db: usize,
        key: &[u8],
        expire_at: u64,
        in_place: impl FnOnce(&mut Value) -> bool,
        value: impl FnOnce() -> Value,
    ) {
        let (now, engine, client) = (self.now, self.engine, self.client.id);
        let (hash, slice) = self.db_at(db, key);
        let found = slice.find(hash, key);
        if let Some(entry) = found.filter(|&pos| slice.get(pos).is_some_and(|e| !e.is_expired(now))) {
            slice.set_expiry(entry, expire_at);
            let replaced = slice.get_mut(entry).and_then(|entry| {
                entry.accessed = engine.eviction.touched(entry.accessed, now);
                entry.encoding = Encoding::Auto;
                (!in_place(&mut entry.value)).then(|| std::mem::replace(&mut entry.value, value()))
            });
            if let Some(old) = replaced {
                self.free_value(old, engine.lazyfree.is_on(LazyOption::ServerDel));
            }
            return;
        }
        // Writers that do not look the key up first (SET) may meet a key past its deadline:
        // it expires first, as Redis's lookup would have made it, and the key is new.
        let expired_entry = found.and_then(|_| slice.remove(hash, key));
        let expired = expired_entry.is_some();
        if expired {
            // Deleted before the write, as Redis's lookup would: watchers that saw it expired
            // see no change in the deletion itself (the write's own effect touches them).
            engine.watches.touch(db, key, || false);
        }
        let mut entry = Entry::new(key, value());
        entry.expire_at = expire_at;
        entry.accessed = engine.eviction.created(now);
        slice.insert_new(hash, entry, engine.keyspace.hasher());
        if let Some(old) = expired_entry {
            let invalidations = engine.tracking.invalidations(key, crate::tracking::Cause::expiry_during(client));
            self.deliveries.append(invalidations);
            self.free_value(old.value, engine.lazyfree.is_on(LazyOption::Expire));
            engine.counters.stats().expired_keys.fetch_add(1, Ordering::Relaxed);
            self.notify_in(db, crate::notify::EXPIRED, "expired", key);
        }
        if !self.explicit_events {
            self.notify_in(db, crate::notify::NEW, "new", key);
        }
    }

    /// Remove a key from the current db (no expiry check: callers looked it up first or
    /// do not care). Returns the removed entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let db = self.client.db;
        self.remove_in(db, key)
    }

    pub fn remove_in(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        let (hash, slice) = self.db_at(db, key);
        slice.remove(hash, key)
    }

    /// Set or clear (with [`NO_EXPIRY`]) the deadline of an existing key.
    pub fn set_expiry(&mut self, key: &[u8], expire_at: u64) -> bool {
        let (hash, slice) = self.db_for(key);
        match slice.find(hash, key) {
            Some(pos) => {
                slice.set_expiry(pos, expire_at);
                true
            }
            None => false,
        }
    }

    /// Record an effect on the current database.
    pub fn propagate(&mut self, argv: Vec<Bytes>) {
        let db = self.client.db;
        self.propagate_in(db, argv);
    }

    /// Record `key` set to `value` with its deadline kept (`SET key value KEEPTTL`): how a
    /// string whose bytes were computed (a float, an HLL) is logged, so that a replay copies
    /// them instead of computing them again.
    pub fn propagate_string(&mut self, key: &Bytes, value: Bytes) {
        self.propagate(vec![Bytes::from_static(b"SET"), key.clone(), value, Bytes::from_static(b"KEEPTTL")]);
    }

    pub fn propagate_in(&mut self, db: usize, argv: Vec<Bytes>) {
        let notifying = self.engine.notifier.enabled() && !self.explicit_events;
        if let (true, Some(name), Some(key)) = (notifying, argv.first(), argv.get(1)) {
            if let Some((class, event)) = crate::notify::event_for_effect(name) {
                self.notify_in(db, class, event, key);
                let with_deadline = argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"pxat"));
                if class == crate::notify::STRING && with_deadline {
                    self.notify_in(db, crate::notify::GENERIC, "expire", key);
                }
            }
        }
        // With no key watched and no client tracking the write path pays two atomic loads.
        let (watching, tracking) = (!self.engine.watches.is_empty(), self.engine.tracking.is_active());
        if watching || tracking {
            if let Some(key) = watched_key_of(&self.engine.table, &argv) {
                if watching {
                    self.touch_watched(db, key);
                }
                if tracking {
                    let cause = crate::tracking::Cause::write_by(self.client.id, self.running_script);
                    let invalidations = self.engine.tracking.invalidations(key, cause);
                    self.deliveries.append(invalidations);
                }
            }
        }
        self.effects.push(Effect::new(db, argv));
    }

    /// Record an effect for durability only, for a write Redis does not count as a change
    /// (BITFIELD growing a string while all its writes FAIL): no WATCH touch, no event.
    pub fn log_only(&mut self, argv: Vec<Bytes>) {
        let db = self.client.db;
        self.effects.push(Effect::new(db, argv));
    }

    /// Tell the watchers of `key` it changed, at the moment it did (Redis's
    /// `signalModifiedKey`): whether it still exists matters to those that saw it expired.
    fn touch_watched(&mut self, db: usize, key: &[u8]) {
        let engine = self.engine;
        engine.watches.touch(db, key, || self.present_if_locked(db, key));
    }

    /// Whether `key` physically exists, if its shard is one this command holds (an effect
    /// names keys of its own command, but this never locks a shard to find out).
    fn present_if_locked(&mut self, db: usize, key: &[u8]) -> bool {
        !self.holds_shard_of(key) || self.peek_raw(db, key).is_some()
    }

    /// From here on the running command names its keyspace events itself ([`Ctx::notify`]):
    /// neither the events its effects stand for nor the `new` of the keys it stores are
    /// derived. For commands whose effects differ from what Redis announces (RENAME is
    /// logged as DEL and a re-creation; Redis says `rename_from`, `rename_to`).
    pub fn explicit_events(&mut self) {
        self.explicit_events = true;
    }

    /// Replace `dst` with a command's result, as the STORE forms do (SINTERSTORE, ZUNIONSTORE,
    /// SORT ... STORE): the old value and its deadline go; an empty result (`None`) deletes
    /// it. Logged as DEL (if it existed) and `recreate` (the command that rebuilds the value,
    /// say SADD dst members...), not as the command. Announced as Redis does: `new` if created
    /// and then `event` of `class`, or `del` when an empty result deletes it.
    pub fn replace_with_result(
        &mut self,
        dst: &Bytes,
        result: Option<(Value, Vec<Bytes>)>,
        class: u32,
        event: &'static str,
    ) {
        let existed = self.lookup(dst).is_some();
        self.explicit_events();
        self.remove(dst);
        if existed {
            // (A key found expired was deleted by the lookup, with its own DEL effect.)
            self.propagate(vec![Bytes::from_static(b"DEL"), dst.clone()]);
        }
        match result {
            Some((value, recreate)) => {
                self.store(dst, value, NO_EXPIRY);
                self.propagate(recreate);
                if !existed {
                    self.notify(crate::notify::NEW, "new", dst);
                }
                self.notify(class, event, dst);
            }
            None if existed => self.notify(crate::notify::GENERIC, "del", dst),
            None => {}
        }
    }

    /// Queue a keyspace event on the current database.
    pub fn notify(&mut self, class: u32, name: &'static str, key: &[u8]) {
        let db = self.client.db;
        self.notify_in(db, class, name, key);
    }

    /// Queue a keyspace event (published when the command commits).
    pub fn notify_in(&mut self, db: usize, class: u32, name: &'static str, key: &[u8]) {
        if self.engine.notifier.wants(class) {
            self.events.push(crate::notify::Event { class, name, db, key: Bytes::copy_from_slice(key) });
        }
    }

    /// Record the command itself as its effect: right for commands that are a deterministic
    /// function of (keyspace, arguments, time).
    pub fn propagate_args(&mut self, args: &[Bytes]) {
        self.propagate(args.to_vec());
    }

    /// Ask to block on `keys` until `deadline` (None: forever). Returns false where blocking
    /// is impossible — inside MULTI/EXEC or a script, or for a client that cannot wait — and
    /// the command must then answer its timeout reply at once, as Redis does.
    pub fn block(&mut self, keys: &[Bytes], deadline: Option<u64>) -> bool {
        self.wait_on(keys, deadline, Waiting::Taker, None)
    }

    /// [`Ctx::block`] on `source` for a command that moves what it takes to `destination`
    /// (BLMOVE), which a wake-up claims along with the source.
    pub fn block_mover(&mut self, source: &Bytes, destination: &Bytes, deadline: Option<u64>) -> bool {
        self.wait_on(std::slice::from_ref(source), deadline, Waiting::Mover(destination.clone()), None)
    }

    /// [`Ctx::block`] for a command that only reads (XREAD): it takes nothing from the keys,
    /// so every change wakes it along with the first waiter, and it is re-run as `rerun`.
    pub fn block_reader(&mut self, keys: &[Bytes], deadline: Option<u64>, rerun: Vec<Bytes>) -> bool {
        self.wait_on(keys, deadline, Waiting::Reader, Some(rerun))
    }

    /// [`Ctx::block`] for a consumer of `group` (XREADGROUP `>`): it takes only that group's
    /// new entries, so a change wakes the longest-waiting consumer of each group.
    pub fn block_group_consumer(
        &mut self,
        keys: &[Bytes],
        deadline: Option<u64>,
        group: Bytes,
        rerun: Vec<Bytes>,
    ) -> bool {
        self.wait_on(keys, deadline, Waiting::Group(group), Some(rerun))
    }

    /// Registers the client on `keys` as `waiting` says; false where it cannot wait.
    fn wait_on(&mut self, keys: &[Bytes], deadline: Option<u64>, waiting: Waiting, rerun: Option<Vec<Bytes>>) -> bool {
        let Some(waker) = self.client.waker.clone().filter(|_| !self.nested) else { return false };
        self.engine.blocked.register(self.client.id, waker.0, self.client.db, keys, waiting);
        self.blocked = Some(Blocked { deadline, rerun });
        true
    }

    /// Whether the command runs inside a script (where XREAD BLOCK is an error, not a wait).
    pub fn in_script(&self) -> bool {
        self.nested && self.top != "exec"
    }

    /// The most a reply that repeats stored data may take ([`Host::reply_limit`]). A
    /// script's `redis.call` (inside EXEC too) gets its reply whatever the client's output
    /// limit, as in Redis: the client is sent only what the script returns. It is still
    /// bounded, by [`crate::host::UNLIMITED_REPLY_CAP`], as a client without a limit is.
    pub fn reply_limit(&self) -> usize {
        if self.running_script {
            crate::host::UNLIMITED_REPLY_CAP
        } else {
            self.host.reply_limit()
        }
    }

    /// The reply reports on the whole keyspace (key counts) without holding its shards: it
    /// waits for every write appended so far, so that no count includes a write a crash
    /// could take back.
    pub fn reports_keyspace(&mut self) {
        self.reports_keyspace = true;
    }

    /// Where a command puts the messages it sends other connections (see `deliveries`).
    pub fn deliveries(&mut self) -> &mut crate::pubsub::Deliveries {
        &mut self.deliveries
    }

    /// Whether the command runs inside EXEC.
    pub fn in_exec(&self) -> bool {
        self.nested && self.top == "exec"
    }

    /// Run another command inside this one (EXEC, scripts): same locks, same batch of
    /// effects. Refusals are checked here as at the top level. An error reply is counted in
    /// `INFO errorstats` (and in the command's `failed_calls` if it ran), as Redis counts the
    /// commands EXEC and scripts run.
    pub fn call(&mut self, args: &[Bytes]) -> Reply {
        let reply = self.call_uncounted(args);
        self.engine.counted(reply)
    }

    /// [`Ctx::call`] before its error, if any, is counted.
    fn call_uncounted(&mut self, args: &[Bytes]) -> Reply {
        let Some((index, spec)) = args.first().and_then(|name| self.engine.table.lookup(name)) else {
            return errors::unknown_command(args);
        };
        if !spec.arity_ok(args.len()) {
            return errors::wrong_arity(spec.name);
        }
        if let Some(refused) = spec.subcommand_refusal(args) {
            return refused;
        }
        // Permissions may have changed since EXEC's commands were queued; scripts' calls
        // are checked here for the first time.
        let in_exec = self.top == "exec";
        let context = if in_exec { "multi" } else { "lua" };
        if let Err(denied) = self.engine.acl_check(self.client, index, spec, args, self.now, self.host, context) {
            return Reply::Error(if in_exec { denied.exec_error() } else { denied.script_error() });
        }
        if spec.writes(args) {
            if let Err(text) = self.journal.check_writable() {
                return Reply::Error(text);
            }
        }
        // No maxmemory check here: as in Redis, EXEC was refused whole before it started if
        // any of its commands could be, and a script's calls are checked by its own rules
        // (`scripting::CallRules`).
        let stat = self.engine.table.stat_index(index, args);
        let outer = std::mem::replace(&mut self.nested, true);
        let outer_events = std::mem::replace(&mut self.explicit_events, false);
        let tracking = self.client.tracking.is_some();
        let script = spec.has(flags::RUNS_SCRIPT);
        let outer_running_script = self.running_script;
        self.running_script |= script;
        let entering_script = tracking && script;
        let outer_script = if entering_script { self.script_args.replace(args.to_vec()) } else { None };
        let started = self.host.elapsed_micros();
        let reply = (spec.handler)(self, args).unwrap_or_else(|error| error);
        if tracking {
            self.remember_reads(spec, args);
        }
        if entering_script {
            self.script_args = outer_script;
        }
        self.running_script = outer_running_script;
        if let Some(started) = started {
            let micros = self.host.elapsed_micros().unwrap_or(started).saturating_sub(started);
            if let Some(stat) = stat {
                self.engine.counters.record_run_time(stat, std::time::Duration::from_micros(micros));
            }
            // Redis enters a script's commands as its fake client's, with no address or name.
            let (peer, name) =
                if self.in_script() { ("?:0", None) } else { (self.client.origin.as_str(), self.client.name.as_ref()) };
            self.engine.offer_to_monitors(index, args, peer, name, self.now, micros);
        }
        // MONITOR shows a script's commands as its fake client's (`lua`), EXEC's as the
        // client's, each once it ran, as Redis's call() does.
        let origin = if self.in_script() { "lua" } else { self.client.origin.as_str() };
        self.engine.feed_monitors(self.host, self.now, self.client.db, origin, spec, args);
        // Counted once it ran, as Redis's call() counts it, beside the EXEC or script that
        // ran it.
        self.engine.count_call(stat, &reply);
        self.nested = outer;
        self.explicit_events = outer_events;
        // Redis converts a hash or set the moment a command outgrows the compact encoding,
        // so a later command of the same transaction or script that shrinks it back does
        // not undo that: checked after each command, not only when the batch commits.
        self.note_outgrown();
        reply
    }

    /// A tracking client read with `spec`: remember the keys it may now cache (Redis's
    /// `trackingRememberKeys`), as its mode and `CLIENT CACHING` say. Inside a script Redis
    /// 7.0 remembers the keys the script was called with (those of EVAL, not of the command
    /// the script runs), and EVAL_RO's own keys only through the reads it makes; reproduced.
    fn remember_reads(&mut self, spec: &CommandSpec, args: &[Bytes]) {
        let Some(mode) = self.client.tracking else { return };
        // A container's read-only subcommand (MEMORY USAGE) reads too.
        let reads = spec.runs_with(flags::READONLY, args);
        if !reads || spec.has(flags::RUNS_SCRIPT) || !mode.remembers(self.client.caching_given) {
            return;
        }
        let engine = self.engine;
        let (spec, args) = match &self.script_args {
            None => (spec, args),
            Some(script) => match script.first().and_then(|name| engine.table.lookup(name)) {
                Some((_, script_spec)) => (script_spec, &script[..]),
                None => return,
            },
        };
        let keys = spec.key_positions(args);
        engine.tracking.remember(self.client.id, keys.iter().filter_map(|&i| args.get(i)));
    }

    /// Every locked shard, for keyspace-wide commands (they lock all).
    pub fn all_shards(&mut self) -> impl Iterator<Item = &mut Shard> + '_ {
        self.shards_mut()
    }

    /// [`Engine::db_sizes`] from the shards this command holds when it holds them all
    /// (inside EXEC or a script, where locking them again would deadlock).
    pub fn db_sizes(&mut self) -> Vec<(usize, usize)> {
        self.db_footprints().iter().map(DbFootprint::sizes).collect()
    }

    /// [`Engine::db_footprints`], from the shards this command holds when it holds them all.
    pub fn db_footprints(&mut self) -> Vec<DbFootprint> {
        let Locks::All(guards) = &self.locks else { return self.engine.db_footprints() };
        let mut footprints = vec![DbFootprint::default(); self.engine.keyspace.databases()];
        for guard in guards {
            DbFootprint::add_shard(&mut footprints, guard);
        }
        footprints
    }
}

/// The key an effect changes, for WATCH (an effect names it first); `None` for effects
/// whose command takes no key by the table (FLUSHDB and SWAPDB touch watched keys
/// themselves, FUNCTION has none).
fn watched_key_of<'a>(table: &CommandTable, argv: &'a [Bytes]) -> Option<&'a Bytes> {
    let (_, spec) = table.lookup(argv.first()?)?;
    (spec.first_key > 0).then(|| key_at(spec.first_key, argv)).flatten()
}

/// The key an effect changes: its first argument, except for the commands whose key the
/// table places later (`XGROUP <subcommand> <key>`).
fn effect_key<'a>(table: &CommandTable, argv: &'a [Bytes]) -> Option<&'a Bytes> {
    let first_key = table.lookup(argv.first()?).map_or(1, |(_, spec)| spec.first_key);
    key_at(first_key, argv)
}

/// The keys a command names, by its table entry: what chooses the shards it holds. The common
/// case, one key at a fixed position, allocates nothing.
fn command_keys<'b>(spec: &CommandSpec, args: &'b [Bytes]) -> SmallVec<[&'b Bytes; 4]> {
    if spec.key_finder.is_none() && spec.first_key > 0 && spec.first_key == spec.last_key {
        return usize::try_from(spec.first_key).ok().and_then(|i| args.get(i)).into_iter().collect();
    }
    spec.key_positions(args).into_iter().filter_map(|i| args.get(i)).collect()
}

/// `argv`'s key at the table's `first_key` when that is past the first argument, else the
/// first argument.
fn key_at(first_key: i32, argv: &[Bytes]) -> Option<&Bytes> {
    argv.get(usize::try_from(first_key).ok().filter(|&k| k > 1).unwrap_or(1))
}

/// Where shard `index` sits among a command's guards (sorted by shard), or would go.
fn held_position(guards: &[(usize, MutexGuard<'_, Shard>)], index: usize) -> Result<usize, usize> {
    guards.binary_search_by_key(&index, |(i, _)| *i)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::keyspace::KeyWrites;

    /// The bounded count gives up at its deadline while another thread holds a shard, where
    /// the plain one would wait (a script holds every shard for as long as it runs).
    #[test]
    fn key_counts_by_a_deadline_give_up_on_a_held_shard() {
        let engine = Engine::new(EngineOptions::default());
        let mut client = Client::new(1, true);
        engine.run_text(&mut client, &["SET", "k", "v"]);
        engine.run_text(&mut client, &["SET", "t", "v", "EX", "100"]);
        assert_eq!(engine.db_sizes_by(Instant::now()).and_then(|sizes| sizes.first().copied()), Some((2, 1)));
        let shard = engine.keyspace.shard_of(engine.keyspace.hash(b"k"));
        let held = engine.keyspace.lock(shard);
        std::thread::scope(|scope| {
            let (sender, counted) = std::sync::mpsc::channel();
            let deadline = Instant::now() + Duration::from_millis(50);
            let engine = &engine;
            scope.spawn(move || sender.send(engine.db_sizes_by(deadline)));
            // Seconds, not forever: a count that ignored the deadline fails here.
            let counted = counted.recv_timeout(Duration::from_secs(5));
            drop(held);
            assert_eq!(counted.ok(), Some(None));
        });
        assert_eq!(engine.db_sizes_by(Instant::now()).and_then(|sizes| sizes.first().copied()), Some((2, 1)));
    }

    /// A host whose clock reads its value, in Unix ms.
    struct FixedClock(u64);

    impl Host for FixedClock {
        fn clock_micros(&self) -> Option<u64> {
            Some(self.0 * 1000)
        }
    }

    /// A command that waited long for its shard (held by a script or an EXEC) runs at the
    /// time it got it: its relative TTL counts from then, and it is not born expired.
    #[test]
    fn a_command_that_waited_for_its_shard_runs_at_the_time_it_got_it() {
        const THEN: u64 = 1_700_000_000_000;
        let engine = Engine::new(EngineOptions::default());
        let shard = engine.keyspace.shard_of(engine.keyspace.hash(b"k"));
        let held = engine.keyspace.lock(shard);
        let later = FixedClock(THEN + 1000);
        std::thread::scope(|scope| {
            let (engine, later) = (&engine, &later);
            let set = scope.spawn(move || {
                engine.run_line_on(later, &mut Client::new(1, true), THEN, &NoJournal, "SET k v PX 30").reply
            });
            std::thread::sleep(Duration::from_millis(50));
            drop(held);
            assert_eq!(set.join().ok(), Some(Reply::Ok));
        });
        let pttl = engine.run_line(&mut Client::new(2, true), THEN + 1010, &NoJournal, "PTTL k").reply;
        assert_eq!(pttl, Reply::Int(20));
    }

    /// A journal that notes each append in a shared record, and whose appended position is 42.
    struct RecordingJournal(std::sync::Arc<parking_lot::Mutex<Vec<String>>>);

    impl Journal for RecordingJournal {
        fn append(&self, _time_ms: u64, effects: &[Effect]) -> Result<u64, String> {
            self.0.lock().push(format!("append {}", effects.len()));
            Ok(42)
        }

        fn settled_seq(&self) -> u64 {
            42
        }
    }

    /// Keyspace events, PUBLISH from a script and tracking invalidations reach other
    /// connections only once the write they tell of is appended (a connection writes out
    /// what it was handed once the log is durable as far as it was appended): no client
    /// hears of a write a crash could take back. INFO's reply waits for the whole log.
    #[test]
    fn messages_about_a_write_are_handed_over_after_it_is_logged() {
        let engine = Engine::new(EngineOptions::default());
        let record = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let journal = RecordingJournal(record.clone());
        let inbox = |name: &'static str| {
            let record = record.clone();
            let deliver: crate::pubsub::Deliver =
                std::sync::Arc::new(move |_| record.lock().push(format!("to {name}")));
            deliver
        };
        let mut subscriber = Client::new(1, true);
        subscriber.deliver = Some(crate::pubsub::ClientDeliver(inbox("subscriber")));
        let mut tracker = Client::new(2, true);
        tracker.protocol = staykv_resp::Protocol::Resp3;
        tracker.deliver = Some(crate::pubsub::ClientDeliver(inbox("tracker")));
        engine.tracking.add_peer(2, inbox("tracker"));
        engine.notifier.set_flags(crate::notify::parse_flags("KA").unwrap_or_default());
        engine.run_line(&mut subscriber, 1, &journal, "PSUBSCRIBE *");
        engine.run_line(&mut tracker, 1, &journal, "CLIENT TRACKING on");
        engine.run_line(&mut tracker, 1, &journal, "GET k");
        record.lock().clear();
        let mut writer = Client::new(3, true);
        let script = "EVAL redis.call('SET','k','v');redis.call('PUBLISH','ch','m') 0";
        engine.run_line(&mut writer, 1, &journal, script);
        let order = record.lock().clone();
        assert_eq!(order.first().map(String::as_str), Some("append 1"), "{order:?}");
        assert!(order.iter().filter(|e| *e == "to subscriber").count() >= 2, "{order:?}");
        assert!(order.contains(&"to tracker".to_string()), "{order:?}");
        // A flush's invalidations too.
        engine.run_line(&mut tracker, 1, &journal, "GET k");
        record.lock().clear();
        engine.run_line(&mut writer, 1, &journal, "FLUSHALL");
        let order = record.lock().clone();
        assert_eq!(order.iter().map(String::as_str).collect::<Vec<_>>(), ["append 1", "to tracker"], "{order:?}");
        assert_eq!(engine.run_line(&mut writer, 1, &journal, "INFO keyspace").settle_seq, 42);
    }

    /// A failing effect is reported with its place and does not stop the rest of its batch
    /// (a start told to skip failures keeps them); a batch that replays reports nothing.
    #[test]
    fn replay_reports_each_failing_effect_and_applies_the_others() {
        let engine = Engine::new(EngineOptions::default());
        let effect = |db: usize, args: &[&str]| {
            Effect::new(db, args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect())
        };
        let batch = [
            effect(0, &["SET", "k", "text"]),
            effect(0, &["INCR", "k"]),
            effect(1, &["SET", "other", "1"]),
            effect(1, &["LPUSH", "other", "x"]),
            effect(0, &["SET", "last", "v"]),
        ];
        let failures = engine.replay(1_000, &batch).err().unwrap_or_default();
        let places: Vec<(usize, &str)> = failures.iter().map(|f| (f.index, f.command.as_str())).collect();
        assert_eq!(places, [(1, "INCR"), (3, "LPUSH")]);
        let first = failures.first().map(ToString::to_string);
        assert_eq!(first.as_deref(), Some("replaying INCR: ERR value is not an integer or out of range"));
        let mut client = Client::new(1, true);
        let bulk = |text: &'static str| Reply::Bulk(Bytes::from_static(text.as_bytes()));
        assert_eq!(engine.run_text(&mut client, &["MGET", "k", "last"]), Reply::Array(vec![bulk("text"), bulk("v")]));
        client.db = 1;
        assert_eq!(engine.run_text(&mut client, &["GET", "other"]), bulk("1"));
        assert_eq!(engine.replay(1_000, &[effect(0, &["SET", "k", "1"]), effect(0, &["INCR", "k"])]), Ok(()));
    }

    /// A journal that takes batches of at most 1,000 bytes, encoded, and counts those it took;
    /// `refusing` plays a disk that refuses writes.
    #[derive(Default)]
    struct SmallLog {
        appended: std::sync::atomic::AtomicU64,
        refusing: std::sync::atomic::AtomicBool,
    }

    impl Journal for SmallLog {
        fn max_batch_len(&self) -> usize {
            1_000
        }
        fn refusing_writes(&self) -> bool {
            self.refusing.load(Ordering::Relaxed)
        }
        fn append(&self, time_ms: u64, effects: &[Effect]) -> Result<u64, String> {
            let mut batch = Vec::new();
            crate::effects::encode_batch(time_ms, effects, &mut batch);
            if batch.len() > self.max_batch_len() {
                return Err(format!("{} bytes", batch.len()));
            }
            Ok(self.appended.fetch_add(1, Ordering::Relaxed) + 1)
        }
    }

    /// A reply waits for the last logged write of the shards it read; while the disk refuses
    /// writes, only for the last write to the keys it read (and to keys a transaction or a
    /// script wrote without naming them), so reads of other keys are answered meanwhile. A
    /// command that held whole shards waits for every write to them.
    #[test]
    fn a_read_waits_for_its_shards_or_while_the_disk_refuses_writes_its_keys() {
        // One shard: every key shares it.
        let engine = Engine::new(EngineOptions { shard_bits: 0, ..EngineOptions::default() });
        let log = SmallLog::default();
        let mut client = Client::new(1, true);
        let mut wait = |line: &str| engine.run_line(&mut client, 1_000, &log, line).wait_seq;
        // Keys whose hashes fall in other buckets of the shard than "a"'s, and than each
        // other's (the hasher's seed is drawn per engine: one in a hundred runs, a fixed
        // name shared a bucket).
        let bucket = |key: &str| KeyWrites::bucket(engine.keyspace.hash(key.as_bytes()));
        let apart = |prefix: &str, taken: &[&str]| {
            let free = |k: &String| taken.iter().all(|other| bucket(k) != bucket(other));
            (0..).map(|i| format!("{prefix}{i}")).find(free).unwrap_or_default()
        };
        let b = apart("b", &["a"]);
        let unwritten = apart("never-written", &["a", &b]);
        assert_eq!(wait("SET a 1"), 1);
        assert_eq!(wait(&format!("SET {b} 2")), 2);
        assert_eq!(wait("GET a"), 2, "the shard's last write");
        log.refusing.store(true, Ordering::Relaxed);
        assert_eq!(wait("GET a"), 1, "not the later write to another key");
        assert_eq!(wait(&format!("GET {b}")), 2);
        assert_eq!(wait(&format!("MGET a {b}")), 2);
        assert_eq!(wait(&format!("GET {unwritten}")), 0, "no write to wait for");
        assert_eq!(wait("DBSIZE"), 2, "the whole shard's last write");
        assert_eq!(wait("DEL a"), 3);
        assert_eq!(wait("EXISTS a"), 3, "a deletion is a write");
        wait("MULTI");
        wait(&format!("INCR {b}x"));
        assert_eq!(wait("EXEC"), 4);
        assert_eq!(wait(&format!("GET {unwritten}")), 4, "after a transaction's write, every read of its shards");
    }

    /// A write the log cannot take in one batch is never acknowledged: refused before it runs
    /// when its arguments say so (EXEC: its queued commands'), else — a script — answered with
    /// an error saying it is not durable.
    #[test]
    fn a_write_too_large_for_the_log_is_never_acknowledged() {
        let engine = Engine::new(EngineOptions::default());
        let log = SmallLog::default();
        let mut client = Client::new(1, true);
        let run = |client: &mut Client, words: &[&str]| {
            let argv: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
            engine.execute(client, &argv, 1_000, &crate::host::NoHost, &log).reply
        };
        let big = "x".repeat(600);
        let error = |reply: Reply| match reply {
            Reply::Error(text) => text,
            other => format!("not an error: {other:?}"),
        };
        assert!(error(run(&mut client, &["MSET", "a", &big, "b", &big])).contains("more than the log takes"));
        assert_eq!(run(&mut client, &["EXISTS", "a", "b"]), Reply::Int(0), "refused before it ran");
        assert_eq!(run(&mut client, &["SET", "a", &big]), Reply::Ok);
        run(&mut client, &["MULTI"]);
        run(&mut client, &["SET", "b", &big]);
        run(&mut client, &["SET", "c", &big]);
        assert!(error(run(&mut client, &["EXEC"])).contains("more than the log takes"));
        assert_eq!(run(&mut client, &["EXISTS", "b", "c"]), Reply::Int(0));
        assert!(client.multi.is_none(), "the refused transaction is discarded");
        let appended = log.appended.load(Ordering::Relaxed);
        let script = "redis.call('SET', KEYS[1], string.rep('y', 2000)) return 1";
        let reply = error(run(&mut client, &["EVAL", script, "1", "d"]));
        assert!(reply.contains("not durable"), "{reply}");
        assert_eq!(log.appended.load(Ordering::Relaxed), appended, "nothing over the limit was appended");
    }
}
