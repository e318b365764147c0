//! One RESP client connection.
//!
//! Read whatever arrived, run every complete request in the buffer, then write all replies
//! in one go (pipelining). Under `--fsync always` the replies of a batch are held until the
//! log is durable up to the newest write they depend on — their own writes, and writes by
//! others that they read — while other connections keep executing (group commit).

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;
use staykv_engine::blocking::{ClientWaker, Unblock};
use staykv_engine::client::{queued_command_bytes, ReplyMode};
use staykv_engine::command::CommandName;
use staykv_engine::pubsub::ClientDeliver;
use staykv_engine::{Client, Engine, Outcome};
use staykv_resp::Reply;
use staykv_resp::{parse, Limits, Output, Partial, ReplySink, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::clock;
use crate::host::{ClientRecord, ServerHost, MAX_CLIENTS_REACHED};
use crate::limits::OutputLimits;
use crate::persistence::{Persistence, Transfer, TransferSource};

/// Replies of a long pipeline are flushed in pieces of about this size.
const FLUSH_AT: usize = 1024 * 1024;

/// Pushes waiting to be written to one client: pub/sub messages, MONITOR lines,
/// invalidations. How many, and their approximate bytes, are in the client's record (`oll`,
/// `omem`).
#[derive(Debug, Default)]
struct Mailbox {
    queue: parking_lot::Mutex<VecDeque<Reply>>,
}

impl Mailbox {
    /// Queue a message; when the client's output (this queue and its replies not yet
    /// written) would pass its class's hard limit (`client-output-buffer-limit`), drop the
    /// client instead: it stopped reading. (The housekeeping tick enforces the soft one.)
    fn deliver(&self, message: Reply, record: &ClientRecord, limits: OutputLimits) {
        let size = approximate_size(&message);
        let pending = record.buffers.queue_message(size) as u64;
        let limit = limits.of(record.subscribed.load(Ordering::Acquire));
        if limit.over_hard(pending) {
            // Not queued after all: counted out again, so the figures stay those of the queue.
            record.buffers.take_messages(1, size);
            if record.close() {
                tracing::warn!(addr = %record.addr, "closing client: queued messages over its output buffer hard limit");
            }
            return;
        }
        self.queue.lock().push_back(message);
        record.attention.notify_one();
    }
}

/// Sleep until `deadline`, or never.
async fn sleep_until_or_forever(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// About what a queued message holds and will take to send: its text, and a little for the
/// framing. MONITOR's lines are status strings: counted as 16 bytes each, a monitor that
/// stopped reading could queue gigabytes and still look under its limit.
pub(crate) fn approximate_size(reply: &Reply) -> usize {
    match reply {
        Reply::Bulk(b) | Reply::Verbatim(_, b) | Reply::BigNumber(b) | Reply::ErrorBytes(b) => b.len() + 16,
        Reply::StatusOwned(text) | Reply::Error(text) => text.len() + 16,
        Reply::Push(items) | Reply::Array(items) | Reply::Set(items) | Reply::Many(items) => {
            items.iter().map(approximate_size).sum::<usize>() + 8
        }
        _ => 16,
    }
}

/// What every connection shares.
#[derive(Debug, Clone)]
pub struct Shared {
    pub engine: Arc<Engine>,
    pub host: Arc<ServerHost>,
    pub persistence: Arc<Persistence>,
}

impl Shared {
    /// Run one command for `client` and count its run time (INFO commandstats, latencystats,
    /// /metrics) if it ran (not refused, queued or left waiting, as Redis times only what its
    /// `call()` runs): how both front ends execute.
    /// `now` is both the engine's time and the start of the run time.
    pub fn execute(&self, client: &mut Client, args: &[Bytes], now: clock::Reading) -> Outcome {
        let outcome = self.engine.execute(client, args, now.unix_ms, &*self.host, &*self.persistence);
        if let (true, Some(index), Some(stat)) = (outcome.ran, outcome.command, outcome.stat) {
            let elapsed = now.at.elapsed();
            self.engine.counters.record_run_time(stat, elapsed);
            let micros = clock::micros(elapsed);
            self.engine.offer_to_monitors(index, args, &client.origin, client.name.as_ref(), now.unix_ms, micros);
        }
        outcome
    }

    /// Whether a command may have to wait at all: a script runs or a pause is set. The common
    /// case, neither, is two atomic loads and no clock read.
    pub fn may_hold(&self) -> bool {
        self.engine.scripting.is_running() || self.engine.pause.is_set()
    }

    /// Waits until the command `args` may run (an empty `args` waits as a write would);
    /// `queued` is the client's transaction, what an EXEC would run. The HTTP front end waits
    /// for each command of a request before running any of them.
    ///
    /// - While a script holds the keyspace, until it ends or passes the busy threshold (then
    ///   commands get `BUSY` and `SCRIPT KILL` runs). Waiting on the shard locks instead would
    ///   hold this async worker for as long as the script runs; with every worker held so, no
    ///   connection is read, `SCRIPT KILL`'s neither. Most scripts take microseconds: the wait
    ///   yields to other tasks at first, then polls every millisecond.
    /// - While `CLIENT PAUSE` holds the command back, polling every few milliseconds.
    pub async fn wait_to_run(&self, args: &[Bytes], queued: Option<&[Vec<Bytes>]>) {
        let engine = &self.engine;
        let mut waits = 0;
        // Counted in INFO's blocked_clients while the pause holds the command, as in Redis.
        let mut held = None;
        loop {
            if !self.may_hold() {
                return;
            }
            let now = clock::now_ms();
            if engine.scripting.holds_keyspace(now) {
                wait_briefly(&mut waits).await;
            } else if engine.held_by_pause(args, queued, now) {
                held.get_or_insert_with(|| engine.pause.hold());
                tokio::time::sleep(PAUSE_POLL).await;
            } else {
                return;
            }
        }
    }

    /// Waits while a client woken for one of the keys of `client`'s command `args` has not
    /// looked again ([`Engine::held_by_claim`](staykv_engine::Engine::held_by_claim): the
    /// engine answered the command `held_by_claim`). The woken client runs on another
    /// connection's task in a moment.
    pub async fn wait_for_claims(&self, args: &[Bytes], client: &Client) {
        let mut waits = 0;
        while self.engine.held_by_claim(client, args, clock::now_ms()) {
            wait_briefly(&mut waits).await;
        }
    }

    /// Whether CLIENT UNBLOCK ended `client`'s wait. The wait then answers `timed_out`: the
    /// command's timeout reply for the TIMEOUT form, made Redis's UNBLOCKED error for ERROR.
    pub fn unblocked(&self, client: u64, timed_out: &mut Outcome) -> bool {
        match self.engine.blocked.take_unblock(client) {
            Some(Unblock::Timeout) => true,
            Some(Unblock::Error) => {
                timed_out.reply = Reply::error(UNBLOCKED);
                true
            }
            None => false,
        }
    }

    /// A blocked command's wait is over with `outcome`: the client leaves the queues, and a
    /// command that did not run again is counted as Redis counts it (CLIENT UNBLOCK's end
    /// as a failure, TIMEOUT's too).
    pub fn end_wait(&self, client: u64, outcome: &Outcome, by_client_unblock: bool) {
        self.engine.blocked.unregister(client, clock::now_ms());
        if !outcome.ran {
            self.engine.count_wait_ended(outcome, by_client_unblock);
        }
    }
}

/// A client's wake-up for the blocked-command queues, and what it rings.
pub fn client_waker() -> (Arc<Notify>, ClientWaker) {
    let wake = Arc::new(Notify::new());
    let ring = wake.clone();
    (wake, ClientWaker(Arc::new(move || ring.notify_one())))
}

/// One step of a wait for another task that should finish within microseconds (a script, a
/// woken client): yield to the other tasks at first, then poll every millisecond.
async fn wait_briefly(waits: &mut u32) {
    if *waits < BRIEF_WAIT_YIELDS {
        *waits += 1;
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What a blocked client answers when CLIENT UNBLOCK ... ERROR ends its wait.
const UNBLOCKED: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// Room a client's reads start with: a request or a few.
const READ_ROOM: usize = 1024;
/// Room for the reads of a client that has filled [`READ_ROOM`] (Redis reads 16 KiB).
const PIPELINED_READ_ROOM: usize = 16 * 1024;
/// The most room an empty input buffer keeps (a pipelining client's reads never need more).
const KEPT_INPUT_ROOM: usize = 4 * PIPELINED_READ_ROOM;
/// A batch reads on ahead of its replies (`Connection::read_ahead`) until it has read this
/// much or run [`READ_AHEAD_COMMANDS`]. Enough for one fsync to be worth it (a 64 KiB write +
/// fdatasync ran at 158 MB/s on the development VM, a 16 KiB one at 96 MB/s; the log
/// writer's groups join several connections' batches), and little enough that others wait
/// little behind it: beside a bulk load (4 connections, pipelines of 64 SETs of 1 KB), a
/// session workload at 5,000 req/s answered within 7.4 ms at the p99 with 256 KiB (median
/// of 16 runs), 4.7 ms with 64 KiB (13 runs) and 4.5 ms reading 16 KiB at a time (11 runs),
/// and the bulk load ran as fast with either bound (BENCHMARKS.md, "What was tried").
const READ_AHEAD_BYTES: usize = 64 * 1024;
/// See [`READ_AHEAD_BYTES`]: about what one 16 KiB read of small commands brings, so that a
/// pipeline of small commands keeps its thread no longer than it did before reading ahead.
const READ_AHEAD_COMMANDS: usize = 512;

/// What a batch has read ahead and run so far (`Connection::read_ahead`).
#[derive(Debug, Default)]
struct ReadAhead {
    bytes: usize,
    commands: usize,
}

impl ReadAhead {
    fn exhausted(&self) -> bool {
        self.bytes >= READ_AHEAD_BYTES || self.commands >= READ_AHEAD_COMMANDS
    }
}
/// The most room the reply buffer keeps once written: more than a pipelined batch of
/// ordinary replies needs, far less than one large reply (an LRANGE of a long list).
const KEPT_OUTPUT_ROOM: usize = 64 * 1024;

/// How many times [`wait_briefly`] yields before it sleeps.
const BRIEF_WAIT_YIELDS: u32 = 64;

/// How often a command held by `CLIENT PAUSE` looks whether the pause ended.
const PAUSE_POLL: Duration = Duration::from_millis(5);

/// Serve one accepted plain-TCP connection from `addr` until it closes; `laddr` is its
/// local address if the listener knows it.
pub async fn serve_tcp(
    stream: TcpStream,
    addr: std::net::SocketAddr,
    laddr: Option<std::net::SocketAddr>,
    shared: Shared,
) {
    let Some(laddr) = laddr.or_else(|| stream.local_addr().ok()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    shared.host.limits.keep_alive(&stream);
    let fd = stream.as_raw_fd();
    serve(stream, Peer { addr, laddr, fd }, shared).await;
}

/// Whether a client connects from this machine (an IPv4-mapped loopback address too).
pub(crate) fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// What a client from beyond loopback is told while the default user needs no password.
const PROTECTED_MODE_DENIED: &str = "-DENIED StayKV is running in protected mode because no password is set for the \
default user: connections are only accepted from the loopback interface. Set one from there (CONFIG SET \
requirepass, or ACL SETUSER default) to accept connections from other hosts.\r\n";

/// Where a connection comes from: the client's address, the local one, the socket.
pub struct Peer {
    pub addr: std::net::SocketAddr,
    pub laddr: std::net::SocketAddr,
    pub fd: i32,
}

/// Serve one connection (plain TCP or TLS) until it closes.
pub async fn serve<S>(stream: S, peer: Peer, shared: Shared)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Peer { addr, laddr, fd } = peer;
    let remote = !is_loopback(addr.ip());
    if protected_mode_refuses(remote, &shared.engine) {
        let mut stream = stream;
        let _ = stream.write_all(PROTECTED_MODE_DENIED.as_bytes()).await;
        return;
    }
    let Some((id, record)) = shared.host.register(addr, laddr, fd) else {
        let mut stream = stream;
        let _ = stream.write_all(format!("-{MAX_CLIENTS_REACHED}\r\n").as_bytes()).await;
        return;
    };
    let (wake, waker) = client_waker();
    let mut client = Client::new(id, !shared.host.auth_required());
    client.origin = origin_text(addr);
    client.waker = Some(waker);
    // CLIENT LIST's `d` reads it: a watched key changed, EXEC will fail.
    client.watch_dirty = record.watch_dirty.clone();
    let mailbox = Arc::new(Mailbox::default());
    let (inbox, subscriber, host) = (mailbox.clone(), record.clone(), shared.host.clone());
    let deliver: staykv_engine::pubsub::Deliver =
        Arc::new(move |message| inbox.deliver(message, &subscriber, host.limits.output()));
    // Any connection may be where another client's invalidations are redirected.
    shared.engine.tracking.add_peer(id, deliver.clone());
    client.deliver = Some(ClientDeliver(deliver));
    let mut conn = Connection {
        stream,
        wake,
        mailbox,
        client,
        record,
        shared: shared.clone(),
        // Small to start: buffers grow with the traffic (and keep their size), so 10,000
        // idle connections hold 1 KiB each instead of 32 KiB.
        input: BytesMut::with_capacity(READ_ROOM),
        input_allocation: READ_ROOM,
        read_room: READ_ROOM,
        read_filled: false,
        output: Output::default(),
        output_wait: 0,
        settle_wait: 0,
        partial: Partial::default(),
        last_command: Instant::now(),
        recorded_command: None,
        recorded_queued: None,
        recorded_no_evict: false,
        remote,
    };
    if let Err(error) = conn.run().await {
        tracing::debug!(client = id, %error, "connection closed");
    }
}

/// Protected mode, as Redis's: while the default user needs no password (a start with one,
/// then CONFIG SET requirepass "" or ACL SETUSER default nopass), a client from beyond
/// loopback is refused. The start refuses a non-loopback bind in that state.
fn protected_mode_refuses(remote: bool, engine: &Engine) -> bool {
    remote && !engine.acl.auth_required()
}

/// `addr` as `CLIENT LIST` and MONITOR show it (`127.0.0.1:52011`). An IPv4 address is
/// written digit by digit: through `Display` it took ~1,900 instructions, 4.5% of what a
/// connection that sends one request costs the server.
pub fn origin_text(addr: std::net::SocketAddr) -> String {
    let std::net::SocketAddr::V4(v4) = addr else { return addr.to_string() };
    let mut digits = itoa::Buffer::new();
    let mut text = String::with_capacity(21);
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(digits.format(octet));
    }
    text.push(':');
    text.push_str(digits.format(v4.port()));
    text
}

struct Connection<S> {
    stream: S,
    /// Woken when a key this client blocks on changes.
    wake: Arc<Notify>,
    mailbox: Arc<Mailbox>,
    client: Client,
    record: Arc<ClientRecord>,
    shared: Shared,
    input: BytesMut,
    /// About the size of the allocation `input` reads into (its largest capacity since it was
    /// last replaced): the commands sliced from a large one take copies of their own.
    input_allocation: usize,
    /// Free space in `input` a read asks for: [`READ_ROOM`], or [`PIPELINED_READ_ROOM`] once
    /// a read has filled it.
    read_room: usize,
    /// The last read filled all the room it had: more of a pipeline may be in the socket.
    read_filled: bool,
    /// Replies not yet written; large values in them are the stored ones, not copies.
    output: Output,
    /// The log position what is in `output` waits for before it leaves: its replies' (the
    /// writes they made or read).
    output_wait: u64,
    /// The position pushed messages and reports on the whole keyspace in `output` wait for
    /// while the log is healthy (`Persistence::wait_settled`): the batches appended when
    /// they were taken or made (a message is handed over only once the write it tells of is
    /// appended).
    settle_wait: u64,
    partial: Partial,
    /// When the last complete command arrived: `timeout` counts from here, so a client
    /// that trickles a request in a byte at a time is as idle as one that sends nothing.
    last_command: Instant,
    /// The command name last put in the client record.
    recorded_command: Option<CommandName>,
    /// What `record` shows of the transaction's queue.
    recorded_queued: Option<usize>,
    /// What `record` shows of CLIENT NO-EVICT.
    recorded_no_evict: bool,
    /// The client connected from beyond loopback (protected mode applies to it).
    remote: bool,
}

/// The engine and the client list forget the client however its task ends: a return, a
/// panic (the runtime drops the task; the client stayed in CLIENT LIST, its blocks and
/// subscriptions held), or the runtime shutting down.
impl<S> Drop for Connection<S> {
    fn drop(&mut self) {
        self.shared.engine.disconnect(&mut self.client, clock::now_ms());
        self.shared.host.unregister(self.client.id);
    }
}

/// Why the connection loop ended.
#[derive(Debug)]
enum Close {
    Io(std::io::Error),
    Protocol,
    Requested,
    /// Idle past `timeout`: no complete command, or no reply taken, for that long.
    Idle,
    /// The client closed the connection while a command of its own still ran.
    Gone,
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::Io(e) => write!(f, "{e}"),
            Close::Protocol => f.write_str("protocol error"),
            Close::Requested => f.write_str("closed on request"),
            Close::Idle => f.write_str("idle past timeout"),
            Close::Gone => f.write_str("closed by the client while blocked"),
        }
    }
}

impl From<std::io::Error> for Close {
    fn from(e: std::io::Error) -> Close {
        Close::Io(e)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Connection<S> {
    async fn run(&mut self) -> Result<(), Close> {
        // Shutdown and CLIENT KILL both come as `attention`, which keeps its permit until
        // a wait takes it (shutdown used to be a wait on a channel shared by every
        // connection: a waiter list under one lock). A shutdown begun before this client was
        // registered is seen here.
        closing(&self.record, &self.shared.host)?;
        loop {
            self.send_messages().await?;
            // `timeout`: an idle client is closed, unless it waits for pub/sub messages.
            let idle_at = self.idle_timeout().map(|idle| self.last_command + idle);
            let room = self.make_read_room();
            let read = tokio::select! {
                read = self.stream.read_buf(&mut self.input) => read?,
                () = self.record.attention.notified() => {
                    closing(&self.record, &self.shared.host)?;
                    continue;
                }
                () = sleep_until_or_forever(idle_at) => {
                    tracing::debug!(client = self.client.id, "closing idle client (timeout)");
                    return Err(Close::Idle);
                }
            };
            if read == 0 {
                return Ok(());
            }
            self.took_input(read, room)?;
            self.record.buffers.set_query(self.input.len(), self.input.capacity());
            let result = self.execute_buffered().await;
            self.record.buffers.set_query(self.input.len(), self.input.capacity());
            let now = Instant::now();
            self.record.state.lock().last_interaction = Some(now);
            if result? {
                self.last_command = now;
            }
        }
    }

    /// Makes room in the input buffer for `read_room` bytes and returns the room there is.
    /// A read that fills it asks for more next time. (A fixed 16 KiB once under 1 KiB was
    /// left gave every client that much as soon as its first request was taken out of the
    /// buffer.)
    fn make_read_room(&mut self) -> usize {
        if self.input.capacity() - self.input.len() < self.read_room {
            self.input.reserve(self.read_room);
            self.input_allocation = self.input_allocation.max(self.input.capacity());
        }
        self.input.capacity() - self.input.len()
    }

    /// Accounts for `read` bytes just read into room for `room`; a killed client, or one
    /// whose unprocessed input passed `client-query-buffer-limit`, is closed.
    fn took_input(&mut self, read: usize, room: usize) -> Result<(), Close> {
        self.read_filled = read == room;
        if self.read_filled {
            self.read_room = PIPELINED_READ_ROOM;
        }
        let stats = self.shared.engine.counters.stats();
        stats.net_input_bytes.fetch_add(read as u64, Ordering::Relaxed);
        stats.reads.fetch_add(1, Ordering::Relaxed);
        if self.record.killed.load(Ordering::Acquire) {
            return Err(Close::Requested);
        }
        let query_limit = self.shared.host.limits.query_buffer_limit();
        if self.input.len() > query_limit {
            tracing::warn!(
                client = self.client.id,
                "closing client: query buffer over client-query-buffer-limit ({query_limit} bytes)"
            );
            return Err(Close::Protocol);
        }
        Ok(())
    }

    /// Run every complete request in the input buffer, then flush the replies. Returns
    /// whether a request was complete.
    async fn execute_buffered(&mut self) -> Result<bool, Close> {
        let mut completed = false;
        let mut read_ahead = ReadAhead::default();
        loop {
            let limits = Limits {
                unauthenticated: self.shared.engine.must_authenticate(&self.client),
                max_bulk_len: self.shared.host.limits.proto_max_bulk_len(),
            };
            let request = match parse(&self.input, &mut self.partial, &limits) {
                Ok(request) => request,
                Err(error) => {
                    // An error reply like any other for INFO errorstats, as in Redis.
                    self.shared.engine.counters.record_error("ERR Protocol error");
                    if !matches!(self.client.reply_mode, ReplyMode::Off | ReplyMode::Skip) {
                        self.output.put_slice(&error.reply_bytes());
                    }
                    self.flush().await?;
                    return Err(Close::Protocol);
                }
            };
            let Some(request) = request else {
                if self.read_ahead(&mut read_ahead)? {
                    continue;
                }
                break;
            };
            let frame = self.input.split_to(request.consumed()).freeze();
            // Arguments are slices of the buffer they came in, and a command may keep some past
            // its run (a client name, a subscription, a queued MULTI, a slow log entry): they
            // keep that whole allocation alive. From a buffer with more than this command in
            // it, a command takes a copy of its own bytes, so that nothing it keeps can hold
            // a large buffer (a 50 MB request and a CLIENT SETNAME sent with it held 50 MB
            // for as long as the client stayed). Buffers up to KEPT_INPUT_ROOM, all a
            // pipelining client's reads use, are never copied from.
            let shares_a_large_buffer =
                self.input_allocation > KEPT_INPUT_ROOM && frame.len() * 2 < self.input_allocation;
            let frame = if shares_a_large_buffer { Bytes::copy_from_slice(&frame) } else { frame };
            // In place up to eight arguments, as the ranges were: no allocation per command.
            let args: SmallVec<[Bytes; 8]> = match request {
                Request::Multibulk { args, .. } => args.iter().map(|r| frame.slice(r.clone())).collect(),
                Request::Inline { args, .. } => args.into_iter().map(Bytes::from).collect(),
            };
            completed = true;
            if args.is_empty() {
                continue;
            }
            read_ahead.commands += 1;
            // A client that connected while a password was needed and never gave it is
            // refused, once none is, as a new one would be. (Redis lets it run every command,
            // checking at accept only.)
            if !self.client.authenticated && protected_mode_refuses(self.remote, &self.shared.engine) {
                self.output.put_slice(PROTECTED_MODE_DENIED.as_bytes());
                self.flush().await?;
                return Err(Close::Requested);
            }
            // Messages delivered before this command go out before its reply, as in Redis.
            self.take_messages();
            self.wait_to_run(&args).await?;
            self.execute(&args, clock::now()).await?;
            if self.shared.host.is_stopping() {
                // A SHUTDOWN that goes ahead closes every connection without a reply, its own
                // included, as in Redis.
                return Err(Close::Requested);
            }
            // Killed while its batch ran (by its own CLIENT KILL, or another's): the replies so
            // far go out and the rest of the batch never runs, as Redis closes a client after
            // the command that killed it.
            if self.client.close_after_reply || self.record.killed.load(Ordering::Acquire) {
                self.flush().await?;
                let transfer = self.record.transfer.lock().take();
                if let Some(transfer) = transfer {
                    self.send_transfer(transfer).await?;
                }
                return Err(Close::Requested);
            }
            if self.output.len() >= FLUSH_AT {
                self.flush().await?;
            }
        }
        self.flush().await?;
        // A large request grew the buffer: once it is all taken, the room goes back, as Redis
        // resizes a client's query buffer, so that a client that once sent a large value does
        // not hold that much for as long as it stays connected.
        if self.input.is_empty() && self.input.capacity() > KEPT_INPUT_ROOM {
            self.input = BytesMut::with_capacity(self.read_room);
            self.input_allocation = self.read_room;
        }
        Ok(completed)
    }

    /// After a read that filled its room, reads what more the socket already holds, without
    /// waiting, so that the batch runs on before its replies wait for the log: one fsync then
    /// covers a whole pipeline instead of one per 16 KiB read. A 64-deep pipeline of 1 KB
    /// SETs waited for four or five in a row, and `redis-benchmark -P 16` with 1 KB values
    /// (17 KB a batch) for two. Returns whether it read anything; `so_far` bounds the batch.
    fn read_ahead(&mut self, so_far: &mut ReadAhead) -> Result<bool, Close> {
        if !self.read_filled || so_far.exhausted() {
            return Ok(false);
        }
        let room = self.make_read_room();
        let read = {
            let read = std::pin::pin!(self.stream.read_buf(&mut self.input));
            read.poll(&mut Context::from_waker(Waker::noop()))
        };
        match read {
            // Nothing there yet, or the end of the stream: the next wait in `run` sees it.
            Poll::Pending | Poll::Ready(Ok(0)) => {
                self.read_filled = false;
                Ok(false)
            }
            Poll::Ready(Ok(read)) => {
                so_far.bytes += read;
                self.took_input(read, room)?;
                Ok(true)
            }
            Poll::Ready(Err(e)) => Err(e.into()),
        }
    }

    /// Waits until `args` may run ([`Shared::wait_to_run`]: a script or CLIENT PAUSE holds
    /// it), reading the socket meanwhile, as Redis reads a client it holds: a client killed
    /// or gone while held is closed at once, and its command never runs. (Left waiting, it
    /// stayed in CLIENT LIST and its write ran when the pause ended.) Pushes go out meanwhile.
    async fn wait_to_run(&mut self, args: &[Bytes]) -> Result<(), Close> {
        while self.shared.may_hold() {
            let room = self.make_read_room();
            let read = {
                let wait = self.shared.wait_to_run(args, self.client.multi.as_deref());
                tokio::select! {
                    biased;
                    () = wait => return Ok(()),
                    () = self.record.attention.notified() => None,
                    read = self.stream.read_buf(&mut self.input) => Some(read),
                }
            };
            match read {
                None => {
                    closing(&self.record, &self.shared.host)?;
                    self.send_messages().await?;
                }
                Some(Ok(0)) => return Err(Close::Gone),
                Some(Ok(read)) => self.took_input(read, room)?,
                Some(Err(error)) => return Err(Close::Io(error)),
            }
        }
        Ok(())
    }

    /// Run one command and encode its reply (its log position joins `output_wait`).
    /// A blocking command that finds nothing waits here (after flushing earlier replies)
    /// until it is served or times out; later pipelined commands wait behind it, as in Redis.
    async fn execute(&mut self, args: &[Bytes], now: clock::Reading) -> Result<(), Close> {
        let mode_before = self.client.reply_mode;
        let mut outcome = self.run_command(args, now);
        while outcome.held_by_claim {
            // A client woken for one of its keys has not run yet: earlier replies go out
            // while this one waits for it.
            self.flush().await?;
            self.shared.wait_for_claims(args, &self.client).await;
            outcome = self.run_command(args, clock::now());
        }
        if let Some(blocked) = outcome.blocked.take() {
            self.flush().await?;
            let rerun = blocked.rerun.as_deref().unwrap_or(args);
            outcome = self.wait_unblocked(rerun, blocked.deadline, outcome).await?;
        }
        // What reached this connection while its command ran precedes the reply, as in
        // Redis; what Redis writes after the reply (its own invalidations) follows it.
        self.take_messages();
        self.emit(&outcome, mode_before);
        self.output_wait = self.output_wait.max(outcome.wait_seq);
        self.settle_wait = self.settle_wait.max(outcome.settle_seq);
        self.shared.engine.tracking.deliver_held(self.client.id);
        Ok(())
    }

    fn run_command(&mut self, args: &[Bytes], now: clock::Reading) -> Outcome {
        let outcome = self.shared.execute(&mut self.client, args, now);
        // `CLIENT LIST` shows it to others; the lock is shared with them, so it is taken only
        // when the name changes, not for every GET of a run of GETs.
        if self.client.command != self.recorded_command {
            self.recorded_command = self.client.command;
            self.record.state.lock().last_command = self.client.command;
        }
        if self.client.no_evict != self.recorded_no_evict {
            self.recorded_no_evict = self.client.no_evict;
            self.record.state.lock().no_evict = self.client.no_evict;
        }
        // Likewise a transaction's queue, which only moves inside MULTI: one command more
        // (its memory added, not the queue's summed again) or a new or ended transaction.
        let queued = self.client.multi.as_ref().map(Vec::len);
        if queued != self.recorded_queued {
            let mut view = self.record.state.lock();
            let last = self.client.multi.as_deref().and_then(<[_]>::last);
            view.queued_bytes = match (queued, last) {
                (Some(n), Some(last)) if self.recorded_queued == Some(n - 1) => {
                    view.queued_bytes + queued_command_bytes(last)
                }
                _ => self.client.queued_bytes(),
            };
            view.queued = queued;
            self.recorded_queued = queued;
        }
        outcome
    }

    /// Sleep until woken by a change to a watched-for key (then re-run the command) or until
    /// the deadline (then answer the timeout reply the command gave).
    ///
    /// The socket is read meanwhile, as Redis reads a blocked client's: what arrives waits in
    /// the buffer behind the blocked command, and a client that goes away leaves the queues
    /// at once. Unread, its closed socket went unnoticed, and the next push to its key was
    /// popped for it and lost.
    async fn wait_unblocked(
        &mut self,
        args: &[Bytes],
        deadline: Option<u64>,
        mut timed_out: Outcome,
    ) -> Result<Outcome, Close> {
        let mut by_client_unblock = false;
        let engine = self.shared.engine.clone();
        let _timed = deadline.map(|_| engine.blocked.timed_wait());
        let result = loop {
            let room = self.make_read_room();
            let sleep = match deadline {
                // The deadline is in whole milliseconds counted from a truncated clock:
                // one more keeps the wait from ending short of the timeout asked for.
                Some(at) => Duration::from_millis(at.saturating_sub(clock::now_ms()) + 1),
                None => Duration::MAX,
            };
            tokio::select! {
                () = self.wake.notified() => {
                    if self.shared.unblocked(self.client.id, &mut timed_out) {
                        by_client_unblock = true;
                        break Ok(timed_out);
                    }
                    if let Err(close) = self.wait_to_run(args).await {
                        break Err(close);
                    }
                    let outcome = self.run_command(args, clock::now());
                    if outcome.blocked.is_none() {
                        break Ok(outcome);
                    }
                }
                () = tokio::time::sleep(sleep) => break Ok(timed_out),
                read = self.stream.read_buf(&mut self.input) => match read {
                    Ok(0) => break Err(Close::Gone),
                    Ok(read) => {
                        if let Err(close) = self.took_input(read, room) {
                            break Err(close);
                        }
                    }
                    Err(error) => break Err(Close::Io(error)),
                },
                () = self.record.attention.notified() => {
                    if let Err(close) = closing(&self.record, &self.shared.host) {
                        break Err(close);
                    }
                    // Pushes go out while the command waits, as Redis writes them: an
                    // invalidation must not wait for the BLPOP to end.
                    if let Err(close) = self.send_messages().await {
                        break Err(close);
                    }
                }
            }
        };
        match &result {
            Ok(outcome) => self.shared.end_wait(self.client.id, outcome, by_client_unblock),
            Err(_) => self.shared.engine.blocked.unregister(self.client.id, clock::now_ms()),
        }
        result
    }

    /// Encode a reply, unless CLIENT REPLY OFF/SKIP silences it, then move a skip on as
    /// Redis does after each command: the skip in force ends, one just asked for takes effect.
    fn emit(&mut self, outcome: &Outcome, mode_before: ReplyMode) {
        let silent = match (mode_before, self.client.reply_mode) {
            (_, ReplyMode::Off | ReplyMode::SkipNext) => true,
            // CLIENT REPLY ON in place of the skipped command: its OK goes out, as Redis
            // clears the skip before that command adds its reply.
            (ReplyMode::Skip, ReplyMode::On) => false,
            (ReplyMode::Skip, _) => true,
            _ => false,
        };
        self.client.reply_mode = match (mode_before, self.client.reply_mode) {
            (_, ReplyMode::SkipNext) => ReplyMode::Skip,
            (ReplyMode::Skip, ReplyMode::Skip) => ReplyMode::On,
            (_, mode) => mode,
        };
        // Pub/sub confirmations go out whatever CLIENT REPLY says, as in Redis 7.0: a client
        // that subscribes with its replies off still learns its subscription count.
        if !silent || outcome.reply.is_push() {
            outcome.reply.encode(self.client.protocol, &mut self.output);
        }
    }

    /// Write pending output once the log covers what it waits for (`output_wait`). A client
    /// that stops reading can still be dropped meanwhile (CLIENT KILL, the output buffer
    /// limits).
    async fn flush(&mut self) -> Result<(), Close> {
        if self.output.is_empty() {
            return Ok(());
        }
        // The requests answered are out of the query buffer before their replies leave, as
        // in Redis: a client that asks CLIENT LIST once answered sees them gone.
        self.record.buffers.set_query(self.input.len(), self.input.capacity());
        self.shared.persistence.wait_durable(self.output_wait).await;
        self.shared.persistence.wait_settled(self.settle_wait).await;
        // `client-output-buffer-limit`: pending output over the hard limit closes the client
        // at once. Over the soft limit for the soft seconds, the housekeeping tick closes it,
        // traffic or not. The whole batch counts until its write finishes: the kernel takes
        // most of a batch into the socket at once, and a client that never reads then holds
        // its remainder, under any limit, for good, since its requests are not read while its
        // replies wait. Pushes queued meanwhile count too: they are output the client has
        // not taken.
        let limits = self.shared.host.limits.output();
        let limit = limits.of(self.client.subscription_count() > 0);
        let pending = self.output.len() as u64;
        if limit.over_hard(pending + self.record.buffers.queued_bytes() as u64) {
            tracing::warn!(client = self.client.id, pending, "closing client: output buffer over its hard limit");
            return Err(Close::Protocol);
        }
        let stall_limit = self.idle_timeout();
        let room = self.output.room();
        // Counted before the write, not after: a client that does not read holds this room
        // all along, and `maxmemory-clients` must see it to evict that client.
        self.record.buffers.set_reply_room(room);
        self.record.buffers.set_unwritten(self.output.len());
        {
            // Pinned here rather than handed to a helper: moved by value, these futures were
            // copied twice a reply (~500 instructions, 3% of a session request).
            let write = write_all_progressing(&mut self.stream, &mut self.output, stall_limit);
            tokio::pin!(write);
            loop {
                // The write first: one the socket takes at once never registers a wait.
                tokio::select! {
                    biased;
                    written = &mut write => break written?,
                    () = self.record.attention.notified() => closing(&self.record, &self.shared.host)?,
                }
            }
        }
        let stats = self.shared.engine.counters.stats();
        stats.net_output_bytes.fetch_add(pending, Ordering::Relaxed);
        stats.writes.fetch_add(1, Ordering::Relaxed);
        self.output.clear(room, KEPT_OUTPUT_ROOM);
        (self.output_wait, self.settle_wait) = (0, 0);
        self.record.buffers.set_unwritten(0);
        self.record.buffers.set_reply_room(self.output.room());
        Ok(())
    }

    /// Send the snapshot SYNC prepared: `$<length>\r\n` and the RDB bytes, without the CRLF
    /// that ends an ordinary bulk string, as a Redis master sends it. A client that takes
    /// nothing for [`TRANSFER_STALL_LIMIT`] is dropped: compaction waits while a transfer runs.
    async fn send_transfer(&mut self, transfer: Transfer) -> Result<(), Close> {
        let header = format!("${}\r\n", transfer.len);
        let send = send_rdb(&mut self.stream, header.as_bytes(), transfer.source, transfer.len);
        tokio::pin!(send);
        let sent = loop {
            tokio::select! {
                sent = &mut send => break sent?,
                () = self.record.attention.notified() => closing(&self.record, &self.shared.host)?,
            }
        };
        self.shared.engine.counters.stats().net_output_bytes.fetch_add(sent, Ordering::Relaxed);
        Ok(())
    }

    /// `timeout`, unless this client waits for pub/sub messages or MONITOR lines (as in Redis).
    fn idle_timeout(&self) -> Option<Duration> {
        let listening = self.client.subscription_count() > 0 || self.shared.engine.pubsub.is_monitor(self.client.id);
        self.shared.host.limits.idle_timeout().filter(|_| !listening)
    }

    /// Write the pub/sub messages queued for this client (and invalidations), until none are
    /// left: messages delivered while a flush waited for the socket woke that wait (their
    /// wake-up is spent), so nothing else would send them.
    async fn send_messages(&mut self) -> Result<(), Close> {
        while self.take_messages() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Move the pub/sub messages queued for this client into its output, after what is
    /// already there and before any reply still to come. Returns whether it took any (the
    /// common case, none, costs one atomic load). Not whether the count said so: a message is
    /// counted before it is queued, and [`Connection::send_messages`] loops on the answer.
    fn take_messages(&mut self) -> bool {
        if !self.record.buffers.has_messages() {
            return false;
        }
        // Taken whole, so that a backlog's queue goes with it rather than keeping its size.
        let messages = std::mem::take(&mut *self.mailbox.queue.lock());
        let bytes: usize = messages.iter().map(approximate_size).sum();
        let resp3 = self.client.protocol == staykv_resp::Protocol::Resp3;
        let subscribed = self.client.subscription_count() > 0;
        let count = messages.len();
        for message in messages {
            // Tracking messages take the frame this connection's protocol calls for.
            if let Some(message) = staykv_engine::tracking::frame_for(message, resp3, subscribed) {
                message.encode(self.client.protocol, &mut self.output);
            }
        }
        self.record.buffers.take_messages(count, bytes);
        if count > 0 {
            self.settle_wait = self.settle_wait.max(self.shared.persistence.settled_seq());
        }
        count > 0
    }
}

/// Whether `record`'s connection is to close ([`ClientRecord::close`]: CLIENT KILL, a buffer
/// limit, `maxmemory-clients`), or the server is shutting down.
fn closing(record: &ClientRecord, host: &ServerHost) -> Result<(), Close> {
    if record.killed.load(Ordering::Acquire) || host.is_stopping() {
        return Err(Close::Requested);
    }
    Ok(())
}

/// A SYNC client that takes none of the snapshot for this long is dropped (Redis's
/// `repl-timeout` default).
const TRANSFER_STALL_LIMIT: Duration = Duration::from_secs(60);

/// Bytes of the snapshot file read per write to a SYNC client.
const TRANSFER_CHUNK: usize = 256 * 1024;

/// Write `header`, then `len` bytes of `source`; returns the bytes written.
async fn send_rdb<S: AsyncWrite + Unpin>(
    stream: &mut S,
    header: &[u8],
    source: TransferSource,
    len: u64,
) -> Result<u64, Close> {
    let stalled = |_| Close::Idle;
    tokio::time::timeout(TRANSFER_STALL_LIMIT, stream.write_all(header)).await.map_err(stalled)??;
    let source: Box<dyn AsyncRead + Send + Unpin> = match source {
        TransferSource::File(file) => Box::new(tokio::fs::File::from_std(file)),
        TransferSource::Memory(bytes) => Box::new(std::io::Cursor::new(bytes)),
    };
    let mut source = source.take(len);
    let mut chunk = vec![0u8; TRANSFER_CHUNK];
    let mut left = len;
    while left > 0 {
        let read = source.read(&mut chunk).await?;
        let piece = chunk.get(..read).unwrap_or_default();
        if piece.is_empty() {
            // The file is shorter than when it was opened: nothing cuts a snapshot while a
            // transfer holds the job slot, so this is damage; the client sees the connection
            // close before the length it was promised.
            return Err(Close::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        tokio::time::timeout(TRANSFER_STALL_LIMIT, stream.write_all(piece)).await.map_err(stalled)??;
        left -= read as u64;
    }
    tokio::time::timeout(TRANSFER_STALL_LIMIT, stream.flush()).await.map_err(stalled)??;
    Ok(header.len() as u64 + len)
}

/// Most pieces gathered into one `writev`.
const MAX_WRITE_SLICES: usize = 64;

/// Write all of `output`, failing with [`Close::Idle`] when the peer takes none of it for
/// `stall_limit`: a client that never reads its replies is idle too, though it may still
/// be sending (the server stops reading it while its replies wait).
async fn write_all_progressing<S: AsyncWrite + Unpin>(
    stream: &mut S,
    output: &mut Output,
    stall_limit: Option<Duration>,
) -> Result<(), Close> {
    while !output.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
        let count = output.slices(&mut slices);
        let slices = slices.get(..count).unwrap_or_default();
        let written = match stall_limit {
            Some(limit) => {
                tokio::time::timeout(limit, stream.write_vectored(slices)).await.map_err(|_| Close::Idle)??
            }
            None => stream.write_vectored(slices).await?,
        };
        if written == 0 {
            return Err(Close::Io(std::io::ErrorKind::WriteZero.into()));
        }
        output.advance(written);
    }
    match stall_limit {
        Some(limit) => tokio::time::timeout(limit, stream.flush()).await.map_err(|_| Close::Idle)??,
        None => stream.flush().await?,
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origin_text_is_what_display_writes() {
        for addr in ["0.0.0.0:0", "127.0.0.1:6379", "10.20.30.40:52011", "255.255.255.255:65535", "[::1]:6379"] {
            let addr: std::net::SocketAddr = addr.parse().unwrap();
            assert_eq!(origin_text(addr), addr.to_string());
        }
    }

    /// An engine and a server host with no data directory: enough for commands that write
    /// nothing (a write would wait for a log that is never opened).
    fn shared_without_log() -> Shared {
        use clap::Parser;
        let options = crate::config::Cli::try_parse_from(["staykv"]).unwrap().server;
        let engine = Arc::new(Engine::new(staykv_engine::EngineOptions::default()));
        let persistence = Arc::new(Persistence::new(options.fsync));
        let host = Arc::new(ServerHost::new(options, persistence.clone()));
        let _ = host.notifier.set(engine.clone());
        Shared { engine, host, persistence }
    }

    /// The end of the stream met while reading ahead comes after the replies to what was
    /// read: the read that filled its room must be answered before the connection closes.
    /// Over TCP a read cannot be made to end exactly at its buffer's end; an in-memory
    /// stream holding exactly the first read's room does it every time.
    #[tokio::test]
    async fn a_read_that_fills_its_room_then_meets_the_end_of_the_stream_is_answered() {
        let payload_len = READ_ROOM - "*2\r\n$4\r\nECHO\r\n$1001\r\n\r\n".len();
        let payload = "p".repeat(payload_len);
        let request = format!("*2\r\n$4\r\nECHO\r\n${payload_len}\r\n{payload}\r\n");
        assert_eq!(request.len(), READ_ROOM);
        let (mut client, server) = tokio::io::duplex(4 * READ_ROOM);
        client.write_all(request.as_bytes()).await.unwrap();
        client.shutdown().await.unwrap();
        let addr: std::net::SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let peer = Peer { addr, laddr: addr, fd: -1 };
        let served = tokio::time::timeout(Duration::from_secs(10), serve(server, peer, shared_without_log()));
        served.await.unwrap();
        let mut replies = String::new();
        client.read_to_string(&mut replies).await.unwrap();
        assert_eq!(replies, format!("${payload_len}\r\n{payload}\r\n"));
    }
}
