//! The server side of the engine's [`Host`] trait: connected clients, runtime config, the
//! INFO sections the server owns, authentication and shutdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use staykv_engine::command::CommandName;
use staykv_engine::evict::Policy;
use staykv_engine::host::{ClientFilter, ClientType, Host, MigrateTarget, TargetFailure};
use staykv_engine::Engine;
use staykv_engine::{Client, Protocol, Reply};
use tokio::sync::{watch, Notify};

use crate::client_buffers::{BufferFigures, ClientBuffers};
use crate::config::{Config, FsyncPolicy};
use crate::persistence::{Persistence, Transfer};

mod parameters;

pub(crate) use parameters::exists as is_config_parameter;
use parameters::Scope;

/// What a connection past `maxclients` is told before it is closed (RESP and HTTP).
pub const MAX_CLIENTS_REACHED: &str = "ERR max number of clients reached";

/// What CLIENT LIST shows of one connection, kept current by the connection.
#[derive(Debug)]
pub struct ClientRecord {
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    /// The socket's file descriptor (`fd=`).
    pub fd: i32,
    pub created: Instant,
    pub state: Mutex<ClientView>,
    /// Set by CLIENT KILL; the connection closes when it sees it.
    pub killed: AtomicBool,
    /// Wakes the connection: to close (CLIENT KILL or a pub/sub output limit, which set
    /// `killed`, or shutdown), or to write the pub/sub messages queued for it. One `Notify`
    /// for both: a wait registers with each one it selects on, under a lock, and a
    /// keep-alive client waits once a request. Two of them, and no write polled first in
    /// `flush`, cost ~700 instructions of ~17,100 a session request (callgrind).
    pub attention: Notify,
    /// The snapshot SYNC prepared, for the connection to send as its reply.
    pub transfer: Mutex<Option<Transfer>>,
    /// What its buffers hold (`qbuf`, `omem`...), and its pub/sub messages' count.
    pub buffers: ClientBuffers,
    /// Set when a key it watches changes, until EXEC, DISCARD or UNWATCH (the client's own
    /// flag, shared): CLIENT LIST's `d`.
    pub watch_dirty: Arc<AtomicBool>,
    /// Whether it has a subscription: its output takes the `pubsub` class's limits, where a
    /// MONITOR's or a tracking client's pushes take the `normal` class's, as in Redis.
    pub subscribed: AtomicBool,
    /// What it held when `maxmemory-clients` closed it (0 if it was not): counted in
    /// `ServerHost::evicted_bytes` until it leaves the client list.
    evicted_holding: AtomicU64,
}

/// The mutable part of a client record.
#[derive(Debug, Default, Clone)]
pub struct ClientView {
    pub name: String,
    pub db: usize,
    pub resp: u8,
    pub user: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub last_command: Option<CommandName>,
    /// Commands queued since MULTI (`multi=`, flag `x`); `None` outside a transaction.
    pub queued: Option<usize>,
    /// The memory those commands hold (`multi-mem`).
    pub queued_bytes: usize,
    /// CLIENT NO-EVICT: `maxmemory-clients` never closes it (flag `e`).
    pub no_evict: bool,
    pub last_interaction: Option<Instant>,
    /// Channels, patterns and shard channels subscribed to (`sub`, `psub`, `ssub`).
    pub subscriptions: [usize; 3],
}

impl ClientRecord {
    fn new(addr: SocketAddr, laddr: SocketAddr, fd: i32, view: ClientView) -> ClientRecord {
        ClientRecord {
            addr,
            laddr,
            fd,
            created: Instant::now(),
            state: Mutex::new(view),
            killed: AtomicBool::new(false),
            attention: Notify::new(),
            transfer: Mutex::new(None),
            buffers: ClientBuffers::default(),
            subscribed: AtomicBool::new(false),
            watch_dirty: Arc::new(AtomicBool::new(false)),
            evicted_holding: AtomicU64::new(0),
        }
    }

    /// Ask the connection to close (CLIENT KILL, a buffer limit, `maxmemory-clients`): it
    /// sees the flag at its next wait, woken here. Returns whether this call closed it
    /// rather than finding it closing already.
    pub fn close(&self) -> bool {
        let first = !self.killed.swap(true, Ordering::AcqRel);
        if first {
            self.attention.notify_one();
        }
        first
    }

    /// What this connection holds (`tot-mem`), its buffers, and whether it is exempt from
    /// `maxmemory-clients`.
    fn memory(&self) -> (usize, BufferFigures, bool) {
        let buffers = self.buffers.figures();
        let (queued, no_evict) = {
            let view = self.state.lock();
            (view.queued_bytes, view.no_evict)
        };
        (total_memory(&buffers, queued), buffers, no_evict)
    }
}

impl ClientView {
    /// Whether it has a subscription: Redis's `pubsub` client type, flag `P`.
    fn subscribed(&self) -> bool {
        self.subscriptions.iter().any(|&n| n > 0)
    }
}

/// An HTTP event stream (`/subscribe`, `/psubscribe`, `/monitor`). CLIENT LIST does not show
/// it, but the kills that reach a user's clients (ACL SETUSER taking a channel away, ACL
/// DELUSER, CLIENT KILL USER) end it too.
#[derive(Debug)]
pub struct EventStream {
    pub user: String,
    pub queue: Arc<EventQueue>,
}

/// The messages delivered to an event stream and not yet sent. Bounded as a RESP subscriber's
/// output is, by the pubsub class's hard limit (`client-output-buffer-limit pubsub`, 32 MB by
/// default), and to a count of messages: past either the stream is cut off. Ending it drops
/// what it queued at once, since a reader that stopped reading never polls the stream, which
/// would otherwise hold every message until its socket closed.
#[derive(Debug, Default)]
pub struct EventQueue {
    state: Mutex<EventQueueState>,
}

#[derive(Debug, Default)]
struct EventQueueState {
    /// Each message with the size it counts for in `bytes`.
    replies: std::collections::VecDeque<(Reply, usize)>,
    bytes: usize,
    ended: bool,
    waker: Option<std::task::Waker>,
}

impl EventQueue {
    /// Queue `reply`, or cut the stream off if it would hold more than `max_replies` messages
    /// or `max_bytes` (0: no byte bound). False once the stream has ended.
    pub fn push(&self, reply: Reply, max_replies: usize, max_bytes: usize) -> bool {
        let mut state = self.state.lock();
        if state.ended {
            return false;
        }
        let size = crate::connection::approximate_size(&reply);
        let over_bytes = max_bytes > 0 && state.bytes + size > max_bytes;
        if over_bytes || state.replies.len() >= max_replies {
            drop(state);
            self.end();
            return false;
        }
        state.bytes += size;
        state.replies.push_back((reply, size));
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        true
    }

    /// End the stream: it sends nothing more, and what it queued is dropped now.
    pub fn end(&self) {
        let mut state = self.state.lock();
        state.ended = true;
        state.replies = Default::default();
        state.bytes = 0;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// The next message; `None` once the stream has ended.
    pub fn poll_next(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Reply>> {
        let mut state = self.state.lock();
        if state.ended {
            return std::task::Poll::Ready(None);
        }
        match state.replies.pop_front() {
            Some((reply, size)) => {
                state.bytes -= size;
                std::task::Poll::Ready(Some(reply))
            }
            None => {
                state.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

impl EventStream {
    fn end(&self) {
        self.queue.end();
    }
}

/// An HTTP request's place in CLIENT LIST while it waits ([`ServerHost::http_wait`]).
#[derive(Debug)]
pub struct HttpWait<'a> {
    host: &'a ServerHost,
    id: u64,
    /// Closed by CLIENT KILL: the request then ends with an error.
    pub record: Arc<ClientRecord>,
}

impl Drop for HttpWait<'_> {
    fn drop(&mut self) {
        self.host.http_waits.lock().remove(&self.id);
    }
}

/// Runtime-tunable settings (CONFIG SET).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub fsync: FsyncPolicy,
    pub requirepass: Option<String>,
    pub maxclients: usize,
}

/// Shared server state.
#[derive(Debug)]
pub struct ServerHost {
    pub config: Config,
    pub runtime: RwLock<Runtime>,
    pub clients: Mutex<BTreeMap<u64, Arc<ClientRecord>>>,
    /// The HTTP event streams, by their engine clients' ids.
    pub event_streams: Mutex<BTreeMap<u64, EventStream>>,
    /// The HTTP requests waiting in a blocking command ([`ServerHost::http_wait`]).
    http_waits: Mutex<BTreeMap<u64, Arc<ClientRecord>>>,
    pub next_client_id: AtomicU64,
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Connections closed for `maxmemory-clients` (INFO's `evicted_clients`).
    pub evicted_clients: AtomicU64,
    /// What the connections closed for `maxmemory-clients` and not yet gone hold: their
    /// buffers are on their way out, and do not count towards `maxmemory` meanwhile (Redis
    /// frees an evicted client's buffers at once).
    evicted_bytes: AtomicU64,
    /// When (microseconds after `started`) a command over `maxmemory` next scans the client
    /// list for `maxmemory-clients` ([`Host::evict_clients`]).
    clients_scan_due_us: AtomicU64,
    /// Set when an eviction pass left memory over `maxmemory` ([`Host::evict_in_background`]);
    /// the background evictor waits on it.
    pub eviction_due: tokio::sync::Notify,
    /// Since when memory has been over `maxmemory` (milliseconds after `started`, plus one:
    /// 0 when it is not), and the milliseconds it was over before (INFO's
    /// `current_eviction_exceeded_time` and `total_eviction_exceeded_time`).
    over_limit_since_ms: AtomicU64,
    over_limit_total_ms: AtomicU64,
    pub started: Instant,
    /// Flips to true once when the server must stop.
    pub shutdown: watch::Sender<bool>,
    /// `shutdown`'s value for the per-command check: an atomic load, where reading the
    /// channel takes its lock.
    stopping: AtomicBool,
    pub persistence: Arc<Persistence>,
    pub tcp_port: AtomicU64,
    /// Keyspace-notification classes, shared with the engine (CONFIG SET notify-keyspace-events).
    pub notifier: std::sync::OnceLock<Arc<staykv_engine::Engine>>,
    /// Per-client limits (`timeout`, buffer limits), read by every connection.
    pub limits: crate::limits::Live,
    /// How often the housekeeping tick runs.
    pub hz: crate::server::Hz,
    /// INFO's `run_id`: random, new at each start (clients tell a restart by it).
    run_id: String,
    /// `instantaneous_*` rates, sampled by the housekeeping tick.
    instantaneous: crate::stats::Instantaneous,
    /// `used_memory_peak`, raised by the housekeeping tick and by INFO.
    peak_memory: AtomicU64,
    /// Memory allocated when the server was set up, before loading data or serving anyone
    /// (MEMORY STATS' `startup.allocated`, measured where Redis measures it).
    startup_memory: u64,
    /// Frees what commands left to be freed lazily.
    lazyfree: crate::memory::LazyFreer,
}

/// The connections' memory, for INFO: in all (`mem_clients_normal`), and the largest input
/// buffer and unsent output of one (`client_recent_max_input_buffer`, `..._output_buffer`:
/// Redis's are the largest of the last few seconds, these of now).
#[derive(Debug, Default)]
struct ClientMemory {
    total: usize,
    largest_input: usize,
    largest_output: usize,
}

/// Bytes of one connection's state that StayKV keeps: the engine's client and its CLIENT LIST
/// record.
const CLIENT_STATE_BYTES: usize =
    std::mem::size_of::<staykv_engine::client::Client>() + std::mem::size_of::<ClientRecord>();

/// What a client holds in all (`tot-mem`): its own state, and its buffers with `queued`
/// bytes of a transaction.
fn total_memory(buffers: &BufferFigures, queued: usize) -> usize {
    CLIENT_STATE_BYTES + buffers.held(queued)
}

impl ServerHost {
    /// The record of client `client_id`, the connection a SYNC reply is sent on.
    fn sync_client(&self, client_id: u64) -> Result<Arc<ClientRecord>, String> {
        self.clients.lock().get(&client_id).cloned().ok_or_else(|| "ERR SYNC needs a connection of its own".into())
    }

    /// The figures the housekeeping tick samples every 100 ms, as Redis's `serverCron` does:
    /// memory peak and the instantaneous rates.
    pub fn sample_metrics(&self, engine: &staykv_engine::Engine) {
        self.memory_peak();
        let stats = &engine.counters;
        self.instantaneous.sample(
            Instant::now(),
            [
                stats.total(|s| &s.total_commands),
                stats.total(|s| &s.net_input_bytes),
                stats.total(|s| &s.net_output_bytes),
            ],
        );
    }

    /// `used_memory_peak`, raised to the current use first.
    fn memory_peak(&self) -> u64 {
        let used = crate::memory::used();
        self.peak_memory.fetch_max(used, Ordering::Relaxed).max(used)
    }

    /// Memory in use that `maxmemory` leaves out (INFO's `mem_not_counted_for_evict`): the
    /// log's buffers, as Redis leaves out its AOF buffer; the snapshot thread's, as Redis's
    /// rewrite child is another process; the entry slots deleted keys left, which new keys
    /// take without allocating; and what is on its way out, the buffers of clients closed for
    /// `maxmemory-clients` and the values the lazy-free thread has yet to free.
    fn not_counted_for_evict(&self) -> u64 {
        let engine = self.notifier.get();
        let free_slots = engine.map_or(0, |e| e.keyspace.free_slot_bytes() as u64);
        let lazily_freed = engine.map_or(0, |e| e.lazyfree.pending_bytes());
        self.persistence.log_buffered_bytes()
            + crate::memory::not_counted()
            + free_slots
            + self.evicted_bytes.load(Ordering::Acquire)
            + lazily_freed
    }

    fn eviction_policy(&self) -> Policy {
        self.notifier.get().map_or(Policy::NoEviction, |e| e.eviction.policy())
    }

    pub fn new(config: Config, persistence: Arc<Persistence>) -> ServerHost {
        let runtime =
            Runtime { fsync: config.fsync, requirepass: config.requirepass.clone(), maxclients: config.maxclients };
        crate::memory::set_limit(config.maxmemory);
        ServerHost {
            runtime: RwLock::new(runtime),
            clients: Mutex::new(BTreeMap::new()),
            event_streams: Mutex::new(BTreeMap::new()),
            http_waits: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            connections_received: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            evicted_clients: AtomicU64::new(0),
            evicted_bytes: AtomicU64::new(0),
            clients_scan_due_us: AtomicU64::new(0),
            eviction_due: tokio::sync::Notify::new(),
            over_limit_since_ms: AtomicU64::new(0),
            over_limit_total_ms: AtomicU64::new(0),
            started: Instant::now(),
            shutdown: watch::Sender::new(false),
            stopping: AtomicBool::new(false),
            persistence,
            tcp_port: AtomicU64::new(0),
            notifier: std::sync::OnceLock::new(),
            limits: crate::limits::Live::new(
                config.timeout,
                config.tcp_keepalive,
                config.client_query_buffer_limit,
                config.proto_max_bulk_len,
                crate::limits::OutputLimits::default()
                    .parse_over(&config.client_output_buffer_limit)
                    .unwrap_or_default(),
                crate::limits::parse_client_memory_limit(&config.maxmemory_clients).unwrap_or_default(),
            ),
            hz: crate::server::Hz::default(),
            run_id: format!("{:032x}{:08x}", rand::random::<u128>(), rand::random::<u32>()),
            instantaneous: crate::stats::Instantaneous::default(),
            peak_memory: AtomicU64::new(0),
            startup_memory: crate::memory::used(),
            lazyfree: crate::memory::LazyFreer::start(),
            config,
        }
    }

    /// Whether new connections must authenticate first: the ACL's default user has a
    /// password (or is off).
    pub fn auth_required(&self) -> bool {
        match self.notifier.get() {
            Some(engine) => engine.acl.auth_required(),
            None => self.runtime.read().requirepass.is_some(),
        }
    }

    /// Register a new connection; `None` past `maxclients`.
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr, fd: i32) -> Option<(u64, Arc<ClientRecord>)> {
        self.connections_received.fetch_add(1, Ordering::Relaxed);
        let mut clients = self.clients.lock();
        if clients.len() >= self.runtime.read().maxclients {
            self.rejected_connections.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let view = ClientView { resp: 2, user: "default".into(), ..ClientView::default() };
        let record = Arc::new(ClientRecord::new(addr, laddr, fd, view));
        clients.insert(id, record.clone());
        Some((id, record))
    }

    /// Lists an HTTP request while it waits in a blocking command, under its engine client's
    /// id, until the returned guard is dropped: CLIENT LIST shows it (`fd=-1`, as Redis shows
    /// a client without a socket), so that CLIENT UNBLOCK and CLIENT KILL can name it. It
    /// does not count as a connection (`maxclients`, `connected_clients`): HTTP connections
    /// are counted apart.
    pub fn http_wait(&self, client: &Client, addr: SocketAddr, laddr: SocketAddr) -> HttpWait<'_> {
        let view = ClientView {
            resp: 2,
            user: client.user.clone(),
            db: client.db,
            last_command: client.command,
            last_interaction: Some(Instant::now()),
            ..ClientView::default()
        };
        let record = Arc::new(ClientRecord::new(addr, laddr, -1, view));
        self.http_waits.lock().insert(client.id, record.clone());
        HttpWait { host: self, id: client.id, record }
    }

    /// The RESP connections and the waiting HTTP requests, by id.
    fn every_client(&self) -> BTreeMap<u64, Arc<ClientRecord>> {
        let mut all = self.clients.lock().clone();
        all.extend(self.http_waits.lock().iter().map(|(id, record)| (*id, record.clone())));
        all
    }

    pub fn unregister(&self, id: u64) {
        let mut clients = self.clients.lock();
        let Some(record) = clients.remove(&id) else { return };
        let evicted = record.evicted_holding.swap(0, Ordering::AcqRel);
        if evicted > 0 {
            self.evicted_bytes.fetch_sub(evicted, Ordering::AcqRel);
        }
    }

    /// INFO server: the version, the process, the clock.
    fn info_server(&self) -> String {
        let uptime = self.started.elapsed().as_secs();
        let hz = self.hz.get();
        format!(
            "redis_version:{}\r\nstaykv_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmultiplexing_api:{}\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:{hz}\r\nconfigured_hz:{hz}\r\nexecutable:staykv\r\nconfig_file:{}\r\n",
            staykv_engine::cmd::connection::REDIS_COMPAT_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            if cfg!(target_os = "linux") { "epoll" } else { "kqueue" },
            std::process::id(),
            self.run_id,
            self.tcp_port.load(Ordering::Relaxed),
            crate::clock::wall_micros().unwrap_or(0),
            uptime / 86400,
            self.config_file().unwrap_or_default(),
        )
    }

    /// INFO clients: connections, their largest buffers, blocked and tracking clients.
    fn info_clients(&self) -> String {
        let (memory, engine) = (self.client_memory(), self.notifier.get());
        // No cluster bus: `cluster_connections` is 0, as on a Redis without cluster mode.
        format!(
            "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{}\r\nclient_recent_max_output_buffer:{}\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:{}\r\n",
            self.clients.lock().len(),
            self.runtime.read().maxclients,
            memory.largest_input,
            memory.largest_output,
            engine.map_or(0, |e| e.blocked.len() + e.pause.held()),
            engine.map_or(0, |e| e.tracking.totals().0),
            engine.map_or(0, |e| e.blocked.timed_waits()),
        )
    }

    /// INFO memory: the allocator's count, the RSS, the limit and what is left out of it.
    fn info_memory(&self) -> String {
        let mut out = String::new();
        use crate::stats::bytes_to_human as human;
        let (used, rss, peak) = (crate::memory::used(), crate::stats::rss_bytes(), self.memory_peak());
        let (system, limit) = (crate::stats::total_system_memory(), crate::memory::limit());
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let _ = write!(
            out,
            "used_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\ntotal_system_memory:{system}\r\ntotal_system_memory_human:{}\r\n",
            human(used),
            human(rss),
            human(peak),
            ratio(used, peak) * 100.0,
            human(system),
        );
        if let Some(engine) = self.notifier.get() {
            script_memory(&mut out, engine.scripting.memory(), engine.scripting.cached_scripts());
        }
        let _ = write!(
            out,
            "maxmemory:{limit}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:{}\r\nmem_clients_slaves:0\r\nmem_clients_normal:{}\r\nmem_allocator:mimalloc\r\nlazyfree_pending_objects:{}\r\nlazyfreed_objects:{}\r\n",
            human(limit),
            self.eviction_policy().name(),
            ratio(rss, used),
            i128::from(rss) - i128::from(used),
            self.not_counted_for_evict(),
            self.client_memory().total,
            self.notifier.get().map_or(0, |e| e.lazyfree.pending()),
            self.notifier.get().map_or(0, |e| e.lazyfree.freed()),
        );
        out
    }

    /// Keeps the time spent over `maxmemory`, from what each command (and the housekeeping
    /// tick, for an idle server) finds: a clock read only when that changes.
    fn note_over_limit(&self, over: bool) {
        let since = &self.over_limit_since_ms;
        if over == (since.load(Ordering::Relaxed) != 0) {
            return;
        }
        let now = self.elapsed_ms() + 1;
        if over {
            let _ = since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        } else if let Ok(start) = since.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| (s != 0).then_some(0)) {
            self.over_limit_total_ms.fetch_add(now.saturating_sub(start), Ordering::Relaxed);
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// INFO's eviction exceeded times: the total and the current spell over `maxmemory`, in
    /// milliseconds.
    fn eviction_exceeded_ms(&self) -> (u64, u64) {
        let since = self.over_limit_since_ms.load(Ordering::Relaxed);
        let current = if since == 0 { 0 } else { (self.elapsed_ms() + 1).saturating_sub(since) };
        (self.over_limit_total_ms.load(Ordering::Relaxed) + current, current)
    }

    /// INFO stats, in Redis 7.0's order: the engine's counters and the server's own. The
    /// fields of what StayKV does not have (forks, replication, active defragmentation, I/O
    /// threads: its snapshots are written by a thread) are at 0, as Redis shows them unused;
    /// those it has no source for (`expired_stale_perc`, `reply_buffer_shrinks`...) are left
    /// out.
    fn info_stats(&self) -> String {
        use crate::stats::{NET_INPUT, NET_OUTPUT, OPS};
        let rates = &self.instantaneous;
        let kbps = |metric| rates.per_second(metric) as f64 / 1024.0;
        let engine = self.notifier.get();
        let pubsub = engine.map(|e| &e.pubsub);
        let channels = |shard| pubsub.map_or(0, |p| p.channels(None, shard).len());
        let total =
            |counter: fn(&staykv_engine::stats::Stats) -> &AtomicU64| engine.map_or(0, |e| e.counters.total(counter));
        let (_, tracked_keys, tracked_items, prefixes) = engine.map_or((0, 0, 0, 0), |e| e.tracking.totals());
        let (exceeded_total, exceeded_now) = self.eviction_exceeded_ms();
        format!(
            "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\n\
             total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n\
             total_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\n\
             instantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\n\
             instantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\n\
             rejected_connections:{}\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\n\
             expired_keys:{}\r\nexpire_cycle_cpu_milliseconds:{}\r\nevicted_keys:{}\r\nevicted_clients:{}\r\n\
             total_eviction_exceeded_time:{exceeded_total}\r\ncurrent_eviction_exceeded_time:{exceeded_now}\r\n\
             keyspace_hits:{}\r\nkeyspace_misses:{}\r\n\
             pubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\n\
             latest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\n\
             active_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\n\
             active_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\n\
             tracking_total_keys:{tracked_keys}\r\ntracking_total_items:{tracked_items}\r\n\
             tracking_total_prefixes:{prefixes}\r\n\
             unexpected_error_replies:0\r\ntotal_error_replies:{}\r\n\
             total_reads_processed:{}\r\ntotal_writes_processed:{}\r\n\
             io_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\n",
            self.connections_received.load(Ordering::Relaxed),
            total(|s| &s.total_commands),
            rates.per_second(OPS),
            total(|s| &s.net_input_bytes),
            total(|s| &s.net_output_bytes),
            kbps(NET_INPUT),
            kbps(NET_OUTPUT),
            self.rejected_connections.load(Ordering::Relaxed),
            total(|s| &s.expired_keys),
            total(|s| &s.expire_cycle_micros) / 1000,
            total(|s| &s.evicted_keys),
            self.evicted_clients.load(Ordering::Relaxed),
            total(|s| &s.keyspace_hits),
            total(|s| &s.keyspace_misses),
            channels(false),
            pubsub.map_or(0, |p| p.pattern_count()),
            channels(true),
            total(|s| &s.error_replies),
            total(|s| &s.reads),
            total(|s| &s.writes),
        )
    }

    /// INFO cpu: the process's CPU seconds. StayKV never forks (its snapshots are written by
    /// a thread): no children.
    fn info_cpu(&self) -> String {
        let (user, sys) = crate::stats::cpu_seconds();
        format!(
            "used_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n"
        )
    }

    /// What the connections hold, as INFO sums it up.
    fn client_memory(&self) -> ClientMemory {
        let mut memory = ClientMemory::default();
        for record in self.clients.lock().values() {
            let (held, buffers, _) = record.memory();
            memory.total += held;
            memory.largest_input = memory.largest_input.max(buffers.query + buffers.query_free);
            memory.largest_output = memory.largest_output.max(buffers.output());
        }
        memory
    }

    /// `client-output-buffer-limit`'s soft limits: a client whose unsent output (replies and
    /// queued messages) has stayed over its class's soft limit for the soft seconds is
    /// closed, as Redis's `clientsCron` does, whether or not more output comes. (The hard
    /// limits are checked where output is added.)
    pub fn enforce_soft_output_limits(&self) {
        let limits = self.limits.output();
        let now = Instant::now();
        for (&id, record) in self.clients.lock().iter() {
            let limit = limits.of(record.subscribed.load(Ordering::Acquire));
            let output = record.buffers.figures().output() as u64;
            let mut since = record.buffers.over_soft_limit_since.lock();
            if !limit.over_soft(output) {
                *since = None;
                continue;
            }
            let started = *since.get_or_insert(now);
            if now.duration_since(started) >= limit.soft_duration() && record.close() {
                tracing::warn!(client = id, output, "closing client: output buffer over its soft limit for too long");
            }
        }
    }

    /// `maxmemory-clients`: while the connections hold the limit or more, close the one
    /// holding the most, CLIENT NO-EVICT ones excepted, as Redis's `evictClients`. Checked by
    /// the housekeeping tick (`hz` times a second) and before any key is evicted, where Redis
    /// checks after each read; the output and query buffer limits bound what one client can
    /// take in between.
    pub fn close_clients_over_limit(&self) {
        let Some(limit) = self.limits.client_memory_limit(crate::memory::limit()) else { return };
        // Under the list's lock throughout, so that no closed client leaves it (`unregister`)
        // between its closing and the count of what it holds.
        let clients = self.clients.lock();
        let mut total = 0;
        let mut evictable = Vec::new();
        for (&id, record) in clients.iter() {
            // One already closed is on its way out, and its buffers with it.
            if record.killed.load(Ordering::Acquire) {
                continue;
            }
            let (held, _, no_evict) = record.memory();
            total += held as u64;
            if !no_evict {
                evictable.push((held as u64, id, record));
            }
        }
        if total < limit {
            return;
        }
        evictable.sort_unstable_by_key(|&(held, ..)| std::cmp::Reverse(held));
        for (held, id, record) in evictable {
            if total < limit {
                return;
            }
            if record.close() {
                tracing::info!(client = id, held, limit, "closing client: connections over maxmemory-clients");
                self.evicted_clients.fetch_add(1, Ordering::Relaxed);
                record.evicted_holding.store(held, Ordering::Release);
                self.evicted_bytes.fetch_add(held, Ordering::AcqRel);
            }
            total -= held;
        }
        tracing::warn!(total, limit, "over maxmemory-clients after closing every client that may be closed");
    }

    /// Ask every part of the server to stop.
    /// Whether the server is stopping (SIGTERM, SIGINT, SHUTDOWN).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub fn request_shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        self.shutdown.send_replace(true);
        // A connection registered after this sees the flag when it starts.
        self.wake_every_connection();
    }

    /// Wakes every connection to look at its state again (shutdown, a new `timeout`).
    fn wake_every_connection(&self) {
        for record in self.clients.lock().values() {
            record.attention.notify_one();
        }
    }

    /// Whether client `id` is one `filter` asks for. A client being closed is not: Redis frees
    /// a killed client at once, so CLIENT LIST no longer shows it and a second CLIENT KILL
    /// does not count it again, where StayKV's connection leaves its list a moment later.
    fn matches(filter: &ClientFilter, id: u64, record: &ClientRecord) -> bool {
        if record.killed.load(Ordering::Acquire) {
            return false;
        }
        let view = record.state.lock();
        filter.ids.as_ref().is_none_or(|ids| ids.contains(&id))
            && filter.addr.as_ref().is_none_or(|a| *a == record.addr.to_string())
            && filter.laddr.as_ref().is_none_or(|a| *a == record.laddr.to_string())
            && filter.user.as_ref().is_none_or(|u| *u == view.user)
            && filter.client_type.is_none_or(|t| match t {
                ClientType::Normal => !view.subscribed(),
                ClientType::PubSub => view.subscribed(),
                ClientType::Replica | ClientType::Master => false,
            })
            && filter.skip_me != Some(id)
    }

    /// One `CLIENT LIST` line; `me`'s own shows the command running (`client|list`), as
    /// in Redis, not the one before it.
    /// Its flags are Redis's, in Redis's order: `O` MONITOR, `P` subscribed, `x` in MULTI,
    /// `b` blocked, then tracking's.
    fn client_line(id: u64, record: &ClientRecord, me: &Client, engine: Option<&Engine>, out: &mut String) {
        let view = record.state.lock().clone();
        let command = if id == me.id { me.command } else { view.last_command };
        let (tracking_flags, redir) = engine.map_or((String::new(), -1), |e| e.tracking.list_fields(id));
        let mut flags = String::new();
        if engine.is_some_and(|e| e.pubsub.is_monitor(id)) {
            flags.push('O');
        }
        if view.subscribed() {
            flags.push('P');
        }
        // A client's own transaction is where it stands now (CLIENT LIST inside EXEC).
        let (queued, queued_bytes) = if id == me.id {
            match (me.multi.as_ref(), me.running_transaction) {
                (None, Some((count, bytes))) => (Some(count), bytes),
                (queue, _) => (queue.map(Vec::len), me.queued_bytes()),
            }
        } else {
            (view.queued, view.queued_bytes)
        };
        if queued.is_some() {
            flags.push('x');
        }
        if engine.is_some_and(|e| e.blocked.is_waiting(id)) {
            flags.push('b');
        }
        flags.push_str(&tracking_flags);
        if record.watch_dirty.load(Ordering::Acquire) {
            flags.push('d');
        }
        if view.no_evict {
            flags.push('e');
        }
        let [sub, psub, ssub] = view.subscriptions;
        let now = Instant::now();
        let idle = view.last_interaction.map_or(0, |t| now.duration_since(t).as_secs());
        let buffers = record.buffers.figures();
        let _ = writeln!(
            out,
            "id={id} addr={} laddr={} fd={} name={} age={} idle={idle} flags={} db={} sub={sub} psub={psub} ssub={ssub} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem={queued_bytes} rbs={} rbp={} obl={} oll={} omem={} tot-mem={} events={} cmd={} user={} redir={redir} resp={} lib-name={} lib-ver={}",
            record.addr,
            record.laddr,
            record.fd,
            view.name,
            now.duration_since(record.created).as_secs(),
            if flags.is_empty() { "N" } else { &flags },
            view.db,
            queued.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            buffers.query,
            buffers.query_free,
            buffers.reply_room,
            buffers.reply_peak,
            (buffers.output() as u64).min(crate::limits::UNCOUNTED_OUTPUT),
            buffers.messages,
            crate::limits::counted_output(buffers.output() as u64),
            total_memory(&buffers, queued_bytes),
            // `w`: replies wait for the socket to take them, as Redis shows a write handler.
            if buffers.unwritten > 0 { "rw" } else { "r" },
            command.map_or_else(|| "NULL".to_string(), |c| c.to_string()),
            view.user,
            view.resp,
            view.lib_name,
            view.lib_ver,
        );
    }
}

/// Runs blocking work from a command handler: when called on an async worker, the runtime
/// moves that worker's other tasks to another thread first.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Called on a script's thread once the script has run for long. A tokio worker busy with one
/// task polls nothing else: while every other worker sleeps, no socket or timer is looked at
/// until the script ends, `SCRIPT KILL` included. `block_in_place` hands this worker's core
/// (its queue and the I/O driver it may take) to a new thread and leaves the script this one;
/// the pause lets that thread pick the core up, which `block_in_place` would otherwise take
/// back as it returns. Once the core is gone, later calls only pause.
pub(crate) fn hand_off_worker() {
    blocking(|| std::thread::sleep(HAND_OFF_PAUSE));
}

/// See [`hand_off_worker`]: a thread starts in tens of microseconds on an idle machine.
const HAND_OFF_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// INFO memory's scripting fields, named and ordered as Redis 7.0 has them.
fn script_memory(out: &mut String, memory: staykv_engine::scripting::ScriptMemory, cached_scripts: usize) {
    use crate::stats::bytes_to_human as human;
    let vm_total = memory.eval_heap + memory.functions_heap;
    let scripts = memory.scripts + memory.functions;
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let _ = write!(
        out,
        "used_memory_lua:{eval}\r\nused_memory_vm_eval:{eval}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{}\r\nnumber_of_cached_scripts:{cached_scripts}\r\nnumber_of_functions:{}\r\nnumber_of_libraries:{}\r\nused_memory_vm_functions:{}\r\nused_memory_vm_total:{vm_total}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:{}\r\nused_memory_scripts:{scripts}\r\nused_memory_scripts_human:{}\r\n",
        human(as_u64(memory.eval_heap)),
        memory.scripts,
        memory.function_count,
        memory.library_count,
        memory.functions_heap,
        human(as_u64(vm_total)),
        memory.functions,
        human(as_u64(scripts)),
        eval = memory.eval_heap,
    );
}

/// The least time between two scans of the client list by commands over `maxmemory`.
const CLIENTS_SCAN_EVERY: std::time::Duration = std::time::Duration::from_millis(1);

impl Host for ServerHost {
    fn config_file(&self) -> Option<String> {
        self.config.config.as_ref().map(|path| path.display().to_string())
    }

    /// The connection counters INFO stats shows and INFO persistence's compaction counts, as
    /// Redis's `resetServerStats` resets them (the engine resets its own).
    fn config_resetstat(&self) {
        for counter in [
            &self.connections_received,
            &self.rejected_connections,
            &self.evicted_clients,
            &self.over_limit_since_ms,
            &self.over_limit_total_ms,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.persistence.reset_stats();
    }

    fn clock_micros(&self) -> Option<u64> {
        crate::clock::wall_micros()
    }

    fn elapsed_micros(&self) -> Option<u64> {
        Some(crate::clock::micros(self.started.elapsed()))
    }

    fn loading(&self) -> bool {
        self.persistence.is_loading()
    }

    fn wait_long(&self, wait: &mut dyn FnMut()) {
        blocking(wait);
    }

    fn free_in_background(&self, garbage: staykv_engine::lazyfree::Garbage) {
        self.lazyfree.free(garbage);
    }

    fn info_section(&self, section: &str) -> Option<String> {
        Some(match section {
            "server" => self.info_server(),
            "clients" => self.info_clients(),
            "memory" => self.info_memory(),
            "persistence" => self.persistence.info(),
            "stats" => self.info_stats(),
            "cpu" => self.info_cpu(),
            _ => return None,
        })
    }

    fn proto_max_bulk_len(&self) -> usize {
        usize::try_from(self.limits.proto_max_bulk_len()).unwrap_or(usize::MAX)
    }

    fn reply_limit(&self) -> usize {
        match usize::try_from(self.limits.output().normal.hard).unwrap_or(usize::MAX) {
            0 => staykv_engine::host::UNLIMITED_REPLY_CAP,
            hard => hard,
        }
    }

    fn config_get(&self, pattern: &[u8]) -> Vec<(String, String)> {
        self.notifier.get().map(|engine| parameters::get(&Scope { host: self, engine }, pattern)).unwrap_or_default()
    }

    fn config_set(&self, name: &str, value: &[u8]) -> Result<(), String> {
        let engine = self.notifier.get().ok_or("ERR the server is starting")?;
        parameters::set(&Scope { host: self, engine }, name, &String::from_utf8_lossy(value))
    }

    fn purge_memory(&self) {
        crate::memory::release_free_pages();
    }

    fn process_memory(&self) -> staykv_engine::memory_report::ProcessMemory {
        let clients = self.clients.lock().len() as u64;
        let rss = crate::stats::rss_bytes();
        // mimalloc commits memory ahead of use, and committed pages never touched take no RAM:
        // its committed figure ran to 157 MB beside an RSS of 40 MB, and MEMORY DOCTOR then
        // reported high fragmentation that was not there. What it holds resident is at most
        // the process's anonymous RSS (the binary's pages are the process's overhead).
        let held = crate::memory::allocator_committed().min(crate::stats::anonymous_rss_bytes());
        staykv_engine::memory_report::ProcessMemory {
            used: crate::memory::used(),
            peak: self.memory_peak(),
            startup: self.startup_memory,
            rss,
            allocator_active: held,
            allocator_resident: held,
            log_buffers: self.persistence.log_buffered_bytes(),
            // Each connection's engine-side state, CLIENT LIST record and buffers (`tot-mem`).
            clients_normal: self.client_memory().total as u64,
            clients,
        }
    }

    fn over_memory_limit(&self) -> bool {
        let over = crate::memory::over_limit(|| self.not_counted_for_evict());
        self.note_over_limit(over);
        over
    }

    /// Scans at most once per [`CLIENTS_SCAN_EVERY`], or per ten times the last scan's cost
    /// if that is longer. The scan reads every client, and a server that stays over
    /// `maxmemory` asks before every command: with 2,000 idle clients, scanning for each
    /// one took GETs from 157k–164k a second to 17.3k–17.4k (by hand, 2026-12-05). The first
    /// command over the limit after a quiet spell always scans.
    fn evict_clients(&self) {
        let now_us = || crate::clock::micros(self.started.elapsed());
        let start = now_us();
        if start < self.clients_scan_due_us.load(Ordering::Relaxed) {
            return;
        }
        self.close_clients_over_limit();
        let end = now_us();
        let interval = crate::clock::micros(CLIENTS_SCAN_EVERY).max(end.saturating_sub(start).saturating_mul(10));
        self.clients_scan_due_us.store(end.saturating_add(interval), Ordering::Relaxed);
    }

    fn evict_in_background(&self) {
        self.eviction_due.notify_one();
    }

    fn count_freed_memory(&self) {
        crate::memory::fold_here();
    }

    fn authenticate(&self, user: &[u8], password: &[u8]) -> Result<(), String> {
        match self.notifier.get() {
            Some(engine) => engine.acl.authenticate(user, password),
            None => Err("WRONGPASS invalid username-password pair or user is disabled.".into()),
        }
    }

    fn acl_load(&self) -> Result<(String, String), String> {
        let path = self.config.aclfile.as_ref().ok_or_else(|| staykv_engine::host::NO_ACL_FILE.to_string())?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("ERR Error loading ACLs, opening file '{}': {e}", path.display()))?;
        Ok((path.display().to_string(), text))
    }

    fn acl_save(&self, text: &str) -> Result<(), String> {
        let path = self.config.aclfile.as_ref().ok_or_else(|| staykv_engine::host::NO_ACL_FILE.to_string())?;
        crate::auth::write_acl_file(path, text).map_err(|e| format!("ERR There was an error trying to save the ACLs. Please check the server logs for more information ({e})"))
    }

    fn client_list(&self, me: &Client, filter: &ClientFilter) -> String {
        let clients = self.every_client();
        let mut out = String::new();
        let engine = self.notifier.get().map(|e| &**e);
        for (id, record) in clients.iter().filter(|(id, record)| Self::matches(filter, **id, record)) {
            Self::client_line(*id, record, me, engine, &mut out);
        }
        out
    }

    fn client_kill(&self, filter: &ClientFilter) -> usize {
        let clients = self.every_client();
        let mut killed = 0;
        for (_, record) in clients.iter().filter(|(id, record)| Self::matches(filter, **id, record)) {
            record.close();
            killed += 1;
        }
        // Event streams have no address and are subscribers: only a filter by user reaches them.
        let reaches_streams = filter.user.is_some()
            && filter.addr.is_none()
            && filter.laddr.is_none()
            && filter.client_type.is_none_or(|t| t == ClientType::PubSub);
        if reaches_streams {
            for (id, stream) in self.event_streams.lock().iter() {
                let chosen = filter.ids.as_ref().is_none_or(|ids| ids.contains(id));
                if chosen && filter.user.as_ref() == Some(&stream.user) && filter.skip_me != Some(*id) {
                    stream.end();
                    killed += 1;
                }
            }
        }
        killed
    }

    fn client_updated(&self, client: &Client) {
        let Some(record) = self.clients.lock().get(&client.id).cloned() else {
            return;
        };
        let mut view = record.state.lock();
        view.name = client.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        view.db = client.db;
        view.resp = if client.protocol == Protocol::Resp3 { 3 } else { 2 };
        view.user.clone_from(&client.user);
        view.lib_name = client.lib_name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        view.lib_ver = client.lib_ver.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        view.subscriptions = [client.channels.len(), client.patterns.len(), client.shard_channels.len()];
        record.subscribed.store(view.subscribed(), Ordering::Release);
    }

    fn shutdown(&self, _save: Option<bool>) -> Result<(), String> {
        self.request_shutdown();
        Ok(())
    }

    fn exchange_with(
        &self,
        target: &MigrateTarget,
        commands: &[Vec<bytes::Bytes>],
    ) -> (Vec<String>, Option<TargetFailure>) {
        blocking(|| crate::migrate::exchange(target, commands))
    }

    fn send_snapshot(&self, client_id: u64) -> Result<(), String> {
        let record = self.sync_client(client_id)?;
        let transfer = blocking(|| self.persistence.snapshot_for_transfer())?;
        *record.transfer.lock() = Some(transfer);
        Ok(())
    }

    fn send_rdb(&self, client_id: u64, rdb: Vec<u8>) -> Result<(), String> {
        *self.sync_client(client_id)?.transfer.lock() = Some(Transfer::from_memory(rdb));
        Ok(())
    }

    fn persistence(&self, command: &str) -> Result<Reply, String> {
        match command {
            "lastsave" => {
                Ok(Reply::Int(self.persistence.last_save_unix().unwrap_or_else(crate::clock::unix_secs) as i64))
            }
            other => self.persistence.command(other),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::task::{Context, Poll, Waker};

    use bytes::Bytes;

    use super::*;

    fn next(queue: &EventQueue) -> Poll<Option<Reply>> {
        queue.poll_next(&mut Context::from_waker(Waker::noop()))
    }

    /// Past its message count or its bytes the stream is cut off, and what it held is dropped
    /// at once: a reader that stopped reading never polls it to end it.
    #[test]
    fn an_event_queue_past_its_bounds_ends_and_lets_go_of_its_messages() {
        let queue = EventQueue::default();
        assert!(queue.push(Reply::Int(1), 2, 0) && queue.push(Reply::Int(2), 2, 0));
        assert!(!queue.push(Reply::Int(3), 2, 0), "a third message is over the count");
        assert_eq!(next(&queue), Poll::Ready(None), "ended, the two queued dropped");
        assert!(queue.state.lock().replies.is_empty());
        assert!(!queue.push(Reply::Int(4), 2, 0), "nothing is queued once ended");

        let big = || Reply::Bulk(Bytes::from(vec![b'x'; 1 << 20]));
        let queue = EventQueue::default();
        assert!(queue.push(big(), 4096, 3 << 20) && queue.push(big(), 4096, 3 << 20));
        assert!(matches!(next(&queue), Poll::Ready(Some(Reply::Bulk(_)))), "sent ones no longer count");
        assert!(queue.push(big(), 4096, 3 << 20));
        assert!(!queue.push(big(), 4096, 3 << 20), "a third MiB held is over 3 MiB with its framing");
        assert_eq!(queue.state.lock().bytes, 0);
        assert_eq!(next(&queue), Poll::Ready(None));

        let queue = EventQueue::default();
        assert!(queue.push(Reply::Int(1), 10, 0));
        assert_eq!(next(&queue), Poll::Ready(Some(Reply::Int(1))));
        assert_eq!(next(&queue), Poll::Pending);
        queue.end();
        assert_eq!(next(&queue), Poll::Ready(None), "a kill ends it");
    }
}
