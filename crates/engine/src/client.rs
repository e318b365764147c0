//! Per-connection state the engine reads and changes.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use staykv_resp::Protocol;

/// A client's channels, patterns or shard channels.
pub type Subscriptions = indexmap::IndexSet<Bytes, foldhash::fast::RandomState>;

/// What `CLIENT REPLY` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Just set by CLIENT REPLY SKIP (Redis's `CLIENT_REPLY_SKIP_NEXT`): becomes `Skip` once
    /// this command is done.
    SkipNext,
    /// The reply of the command running now is skipped (`CLIENT_REPLY_SKIP`).
    Skip,
}

/// What of the dataset a SYNC snapshot holds (`REPLCONF rdb-filter-only`, Redis 7.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RdbInclude {
    /// Keys and function libraries: the snapshot as it is.
    #[default]
    Everything,
    /// Function libraries only (`rdb-filter-only functions`: `redis-cli --functions-rdb`).
    Functions,
    /// Neither (`rdb-filter-only ""`): an empty RDB.
    Nothing,
}

/// One client connection's state. Front ends own it; commands change it (SELECT, HELLO...).
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub id: u64,
    pub db: usize,
    pub protocol: Protocol,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub authenticated: bool,
    pub user: String,
    pub reply_mode: ReplyMode,
    pub no_evict: bool,
    pub no_touch: bool,
    /// Set by QUIT: close once this reply is written.
    pub close_after_reply: bool,
    /// `REPLCONF rdb-only 1`: SYNC may send this client a snapshot (`redis-cli --rdb`).
    pub rdb_only: bool,
    /// `REPLCONF rdb-filter-only`: what of the dataset that snapshot holds.
    pub rdb_include: RdbInclude,
    /// Commands queued since MULTI.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    pub multi_failed: bool,
    /// The eviction before this client's command left memory over `maxmemory` with nothing
    /// left to evict (Redis's `pre_command_oom_state`): a script it runs is refused, or its
    /// calls that may add data are, by this and not by a second look at memory, which an
    /// eviction still going on in the background leaves over the limit.
    pub out_of_memory: bool,
    /// While EXEC runs the queue: its command count and [`Client::queued_bytes`], which
    /// CLIENT INFO from inside the transaction shows, as Redis's (`flags=x multi=<n>`).
    pub running_transaction: Option<(usize, usize)>,
    /// Keys under WATCH, and the flag other clients' writes set.
    pub watching: Vec<crate::watch::WatchedKey>,
    pub watch_dirty: Arc<AtomicBool>,
    /// How to wake this client when a key it blocks on changes; `None`: it cannot block.
    pub waker: Option<crate::blocking::ClientWaker>,
    /// How to hand this client pub/sub messages; `None`: it cannot subscribe.
    pub deliver: Option<crate::pubsub::ClientDeliver>,
    /// Subscriptions, in the order made (looked up once per SUBSCRIBE argument: a set, so
    /// that one command naming 50,000 channels is not 50,000 scans of a list).
    pub channels: Subscriptions,
    pub patterns: Subscriptions,
    /// Shard channels (SSUBSCRIBE): a namespace of their own, as in Redis 7.
    pub shard_channels: Subscriptions,
    /// Where the client connects from, as MONITOR shows it (`127.0.0.1:60866`, `lua`).
    pub origin: String,
    /// The ACL user `user` resolved to, and the ACL version it was resolved at.
    pub acl_user: Option<(u64, Arc<crate::acl::User>)>,
    /// The server itself (log replay): no ACL checks.
    pub acl_exempt: bool,
    /// Highest log sequence number a reply to this client depended on (it wrote, or read a
    /// write not yet durable): what WAITAOF waits to see fsynced.
    pub last_seq: u64,
    /// The command running, or last run (`None` after an unknown one): `cmd=` of its own
    /// `CLIENT INFO` line, which names the command asking, as in Redis.
    pub command: Option<crate::command::CommandName>,
    /// CLIENT TRACKING: how this client's reads are remembered (`None`: tracking off). The
    /// rest of its tracking state is in the engine's registry ([`crate::tracking`]).
    pub tracking: Option<crate::tracking::Mode>,
    /// `CLIENT CACHING yes|no` was sent: it applies to the next command (or transaction).
    pub caching_given: bool,
    /// The command table's answer for the last command name this client sent.
    pub last_lookup: crate::command::LastLookup,
}

/// Memory one command queued by MULTI holds (CLIENT LIST's `multi-mem`): its arguments and
/// their handles.
pub fn queued_command_bytes(args: &[Bytes]) -> usize {
    std::mem::size_of::<Vec<Bytes>>() + args.iter().map(|arg| arg.len() + std::mem::size_of::<Bytes>()).sum::<usize>()
}

impl Client {
    /// The memory its transaction's queued commands hold (`multi-mem`).
    pub fn queued_bytes(&self) -> usize {
        self.multi.as_deref().unwrap_or_default().iter().map(|command| queued_command_bytes(command)).sum()
    }

    /// Every subscription (channels, patterns, shard channels): with any, a RESP2 client is in
    /// subscribed mode.
    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    pub fn new(id: u64, authenticated: bool) -> Client {
        Client { id, authenticated, user: "default".into(), ..Client::default() }
    }
}
