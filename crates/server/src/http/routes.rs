//! The endpoints, and running their commands through the engine.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header::{HeaderValue, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::Incoming;
use staykv_engine::{Client, Journal as _, Outcome, Reply};
use tokio::sync::Notify;

use super::auth::{self, Access};
use super::json::{self, Encoding};
use super::request;
use super::{json_response, sse, ApiError, Inner};
use crate::connection::Shared;

/// The response header carrying the log position a client's later reads should wait for.
/// Header names are `HeaderName`s, not `&str`s: looked up by a string, a name is parsed again
/// at every request.
pub(super) const SYNC_TOKEN: HeaderName = HeaderName::from_static("upstash-sync-token");
/// Asks for base64 replies.
const UPSTASH_ENCODING: HeaderName = HeaderName::from_static("upstash-encoding");

/// What a request's blocked command, and every command after it, answers once CLIENT KILL
/// named the request: a RESP connection would close.
const KILLED: &str = "ERR the request was ended by CLIENT KILL";

/// The longest a request waits for the log to reach the sync token it carries.
const SYNC_WAIT: Duration = Duration::from_secs(2);

/// Commands that need a connection that outlives the request; not offered over HTTP.
const HTTP_DENIED: &[&str] = &[
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "monitor",
    "sync",
    "psync",
];
/// A long pipeline or transaction lets the other tasks of its worker run every this many
/// commands.
const YIELD_EVERY: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Command,
    Pipeline,
    MultiExec,
    Path,
    Healthz,
    Metrics,
}

impl Endpoint {
    /// The `endpoint` label of the HTTP metrics.
    fn name(self) -> &'static str {
        match self {
            Endpoint::Command => "command",
            Endpoint::Pipeline => "pipeline",
            Endpoint::MultiExec => "multi-exec",
            Endpoint::Path => "path",
            Endpoint::Healthz => "healthz",
            Endpoint::Metrics => "metrics",
        }
    }

    /// `Err` with the `Allow` list when `method` is not served here.
    fn check_method(self, method: &Method) -> Result<(), ApiError> {
        let (ok, allow) = match self {
            Endpoint::Command | Endpoint::Pipeline | Endpoint::MultiExec => {
                (*method == Method::POST || *method == Method::PUT, "POST, PUT")
            }
            Endpoint::Path => {
                (matches!(*method, Method::GET | Method::HEAD | Method::POST | Method::PUT), "GET, HEAD, POST, PUT")
            }
            Endpoint::Healthz | Endpoint::Metrics => (*method == Method::GET || *method == Method::HEAD, "GET, HEAD"),
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(allow))
        }
    }
}

/// Route one request: five fixed paths, the three streaming endpoints, and every other path
/// as a command (`/set/k/v`), which is what the Upstash dialect makes of it.
pub(super) async fn respond(inner: &Inner, peer: SocketAddr, request: Request<Incoming>) -> Response {
    let path = request.uri().path();
    let stream = |prefix: &str| path.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty());
    let endpoint = match path {
        "/" => Endpoint::Command,
        "/pipeline" => Endpoint::Pipeline,
        "/multi-exec" => Endpoint::MultiExec,
        "/healthz" => Endpoint::Healthz,
        "/metrics" => Endpoint::Metrics,
        "/monitor" => return sse::stream(inner, peer, request, "monitor").await,
        _ if stream("/subscribe/") => return sse::stream(inner, peer, request, "subscribe").await,
        _ if stream("/psubscribe/") => return sse::stream(inner, peer, request, "psubscribe").await,
        _ => Endpoint::Path,
    };
    dispatch(inner, peer, request, endpoint).await
}

/// Counts a request in flight for as long as it is served (also when the client goes away).
struct InFlight<'a>(&'a Inner);

impl<'a> InFlight<'a> {
    fn enter(inner: &'a Inner) -> InFlight<'a> {
        let now = inner.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        crate::metrics::set_http_in_flight(now);
        InFlight(inner)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let now = self.0.in_flight.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        crate::metrics::set_http_in_flight(now);
    }
}

async fn dispatch(inner: &Inner, peer: SocketAddr, request: Request<Incoming>, endpoint: Endpoint) -> Response {
    let started = Instant::now();
    let _in_flight = InFlight::enter(inner);
    let response = match serve(inner, peer, request, endpoint).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    crate::metrics::record_http(endpoint.name(), response.status().as_u16(), started.elapsed());
    response
}

async fn serve(
    inner: &Inner,
    peer: SocketAddr,
    request: Request<Incoming>,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    endpoint.check_method(&parts.method)?;
    let query = parts.uri.query();
    match endpoint {
        Endpoint::Healthz => return Ok(health(&inner.shared)),
        Endpoint::Metrics => {
            auth::may_read_metrics(&inner.tokens, &parts.headers, query, peer)?;
            // Key counts lock every shard (a second at most): other connections move on meanwhile.
            let text = crate::host::blocking(|| crate::metrics::render(&inner.shared));
            let mut response = Response::new(Body::from(text));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            return Ok(response);
        }
        _ => {}
    }
    let access = inner.authorize(&parts.headers, query, peer)?;
    let body = request::read_body(body, &parts.headers, inner.max_body).await?;
    // Held until the reply is built (the module `turns` says why).
    let _turn = inner.large_requests.turn(body.len()).await?;
    let encoding = match parts.headers.get(&UPSTASH_ENCODING) {
        Some(value) if value.as_bytes().eq_ignore_ascii_case(b"base64") => Encoding::Base64,
        _ => Encoding::Text,
    };
    // Parsed before the waits, so that CLIENT PAUSE WRITE holds only requests with a write.
    let commands = match endpoint {
        Endpoint::Command => request::Commands::one(request::json_command(&body)?),
        Endpoint::Path => request::Commands::one(request::path_command(parts.uri.path(), query, body)),
        Endpoint::Pipeline | Endpoint::MultiExec => request::json_pipeline(&body)?,
        Endpoint::Healthz | Endpoint::Metrics => request::Commands::default(),
    };
    wait_for_sync_token(inner, &parts.headers).await;
    for args in commands.iter() {
        inner.shared.wait_to_run(args, None).await;
    }

    let mut batch = Batch::new(&inner.shared, access, (peer, inner.local));
    let mut out = JsonBody::new(&inner.shared);
    let first = commands.iter().next().unwrap_or_default();
    let status = match endpoint {
        Endpoint::Command => single(&mut batch, first, encoding, &mut out).await,
        Endpoint::Path => {
            let known = first.first().is_some_and(|name| inner.shared.engine.table.lookup(name).is_some());
            let status = single(&mut batch, first, encoding, &mut out).await;
            if known {
                status
            } else {
                StatusCode::NOT_FOUND
            }
        }
        Endpoint::Pipeline => {
            // Each reply is encoded as soon as it exists: only the output grows.
            out.bytes.push(b'[');
            for (i, args) in commands.iter().enumerate() {
                if i > 0 {
                    out.bytes.push(b',');
                }
                out.result(args, &batch.run(args).await, encoding);
                yield_now_and_then(i).await;
            }
            out.bytes.push(b']');
            StatusCode::OK
        }
        Endpoint::MultiExec => transaction(&mut batch, &commands, encoding, &mut out).await?,
        Endpoint::Healthz | Endpoint::Metrics => StatusCode::OK,
    };
    let seq = batch.finish().await;
    let seq = inner.sync_seq.fetch_max(seq, Ordering::Relaxed).max(seq);
    let mut response = json_response(status, out.bytes);
    response.headers_mut().insert(SYNC_TOKEN, HeaderValue::from(seq));
    Ok(response)
}

/// Commands run on the async worker that received the request, as RESP does; after every
/// [`YIELD_EVERY`] of a batch (`done` so far), the worker's other tasks get their turn.
async fn yield_now_and_then(done: usize) {
    if (done + 1).is_multiple_of(YIELD_EVERY) {
        tokio::task::yield_now().await;
    }
}

/// A response's JSON body as it is written, its reads within the reply limit
/// ([`staykv_engine::host::Host::reply_limit`]).
struct JsonBody<'a> {
    bytes: Vec<u8>,
    limit: usize,
    table: &'a staykv_engine::command::CommandTable,
}

impl<'a> JsonBody<'a> {
    fn new(shared: &'a Shared) -> JsonBody<'a> {
        let limit = staykv_engine::host::Host::reply_limit(&*shared.host);
        JsonBody { bytes: Vec::with_capacity(64), limit, table: &shared.engine.table }
    }

    /// Appends `{"result":...}` or `{"error":"..."}` for the reply to `args`. JSON copies
    /// every value, so a pipeline of a thousand GETs of one 1 MB value built a gigabyte from
    /// a 16 KB request, where over RESP the replies share the value: the reply of a command
    /// that only reads is answered with an error instead if it would take the body past the
    /// limit. A write's reply always goes out, however large: it ran, and a client told it
    /// failed would run it again. Returns whether an error went out.
    fn result(&mut self, args: &[Bytes], reply: &Reply, encoding: Encoding) -> bool {
        let size = crate::connection::approximate_size(reply);
        if self.bytes.len().saturating_add(size) > self.limit && self.reads_only(args) {
            json::result_object(&staykv_engine::errors::reply_too_large(self.limit), encoding, &mut self.bytes);
            return true;
        }
        json::result_object(reply, encoding, &mut self.bytes);
        reply.is_error()
    }

    /// `[{"result":...},{"error":"..."},...]`: the replies to `commands`, in order.
    fn results<'c>(&mut self, commands: impl Iterator<Item = &'c [Bytes]>, replies: &[Reply], encoding: Encoding) {
        self.bytes.push(b'[');
        for (i, (args, reply)) in commands.zip(replies).enumerate() {
            if i > 0 {
                self.bytes.push(b',');
            }
            self.result(args, reply, encoding);
        }
        self.bytes.push(b']');
    }

    fn reads_only(&self, args: &[Bytes]) -> bool {
        let spec = args.first().and_then(|name| self.table.lookup(name));
        spec.is_some_and(|(_, spec)| !spec.writes(args))
    }
}

/// One command: `{"result":...}` (200) or `{"error":"..."}` (400).
async fn single(batch: &mut Batch<'_>, args: &[Bytes], encoding: Encoding, out: &mut JsonBody<'_>) -> StatusCode {
    if out.result(args, &batch.run(args).await, encoding) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// `/multi-exec`: MULTI, the commands, EXEC on one client. A command refused while queuing
/// discards the whole transaction, answered as one error naming the culprit (400).
async fn transaction(
    batch: &mut Batch<'_>,
    commands: &request::Commands,
    encoding: Encoding,
    out: &mut JsonBody<'_>,
) -> Result<StatusCode, ApiError> {
    if let Reply::Error(text) = batch.run(&[Bytes::from_static(b"MULTI")]).await {
        return Err(ApiError::bad_request(text));
    }
    for (i, args) in commands.iter().enumerate() {
        let name = args.first().map(|n| String::from_utf8_lossy(n).to_ascii_lowercase()).unwrap_or_default();
        // Transaction control (Redis's `transaction` group), which `/multi-exec` does itself.
        let spec = args.first().and_then(|name| batch.shared.engine.table.lookup(name));
        let reply = if spec.is_some_and(|(_, spec)| spec.group == "transaction") {
            Reply::error("ERR MULTI, EXEC, DISCARD, WATCH and UNWATCH cannot be used inside /multi-exec")
        } else {
            batch.run(args).await
        };
        yield_now_and_then(i).await;
        if let Reply::Error(text) = reply {
            batch.run(&[Bytes::from_static(b"DISCARD")]).await;
            return Err(ApiError::bad_request(format!(
                "EXECABORT Transaction discarded because of previous errors: command {} ({name}): {text}",
                i + 1
            )));
        }
    }
    match batch.run(&[Bytes::from_static(b"EXEC")]).await {
        Reply::Array(replies) => {
            out.results(commands.iter(), &replies, encoding);
            Ok(StatusCode::OK)
        }
        Reply::Error(text) => Err(ApiError::bad_request(text)),
        _ => Err(ApiError::bad_request("EXECABORT Transaction discarded")),
    }
}

/// A request carrying `upstash-sync-token` (a log position from an earlier answer) waits,
/// briefly, until the log is durable up to it: read-your-writes across clients.
async fn wait_for_sync_token(inner: &Inner, headers: &HeaderMap) {
    let Some(token) = headers.get(&SYNC_TOKEN).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return;
    };
    // Positions this server never handed out (another server's, a stale one) wait for nothing.
    let target = token.min(inner.sync_seq.load(Ordering::Relaxed));
    if target > 0 {
        let _ = tokio::time::timeout(SYNC_WAIT, inner.shared.persistence.wait_durable(target)).await;
    }
}

/// `200 {"status":"ok"}`; `503` while loading; `200 {"status":"read-only",...}` while the disk
/// refuses the log's writes: reads are still served then, and a health check that took the
/// server out of service would cut them off too, so the status says it for monitors to see.
fn health(shared: &Shared) -> Response {
    if shared.persistence.is_loading() {
        let body = br#"{"status":"loading","error":"LOADING StayKV is loading the dataset in memory"}"#;
        return json_response(StatusCode::SERVICE_UNAVAILABLE, body.to_vec());
    }
    if shared.persistence.refusing_writes() {
        let body =
            format!(r#"{{"status":"read-only","error":{}}}"#, serde_json::Value::from(crate::persistence::MISCONF));
        return json_response(StatusCode::OK, body.into_bytes());
    }
    json_response(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

/// The commands of one request, run on one engine client of their own.
struct Batch<'a> {
    shared: &'a Shared,
    client: Client,
    /// Rung when a blocked command of the request may be served.
    wake: Arc<Notify>,
    access: Access,
    /// The log position the answer must wait for.
    wait_seq: u64,
    /// The position its reports on the whole keyspace wait for while the log is healthy
    /// ([`Outcome::settle_seq`]).
    settle_seq: u64,
    /// The client's address and the API's, for CLIENT LIST while a command waits.
    addrs: (SocketAddr, SocketAddr),
    /// CLIENT KILL ended a wait: the request's later commands do not run.
    killed: bool,
}

impl<'a> Batch<'a> {
    fn new(shared: &'a Shared, access: Access, addrs: (SocketAddr, SocketAddr)) -> Batch<'a> {
        let id = shared.host.next_client_id.fetch_add(1, Ordering::Relaxed);
        let mut client = Client::new(id, true);
        client.origin = "http".into();
        access.user().clone_into(&mut client.user);
        let (wake, waker) = crate::connection::client_waker();
        client.waker = Some(waker);
        Batch { shared, client, wake, access, wait_seq: 0, settle_seq: 0, addrs, killed: false }
    }

    /// Run one command, as `Connection::execute` does for RESP (statistics included). A
    /// blocking command that finds nothing holds the request until it is served, its
    /// timeout passes or CLIENT UNBLOCK ends its wait, as Upstash's blocking commands do. A
    /// client that goes away meanwhile drops the request, and its wait with it (`Drop`).
    async fn run(&mut self, args: &[Bytes]) -> Reply {
        if self.killed {
            return Reply::error(KILLED);
        }
        if let Some(text) = self.refusal(args) {
            // A refused command dooms an open transaction, as in Redis.
            self.client.multi_failed |= self.client.multi.is_some();
            return Reply::Error(text);
        }
        let mut outcome = self.execute(args).await;
        if let Some(blocked) = outcome.blocked.take() {
            let rerun = blocked.rerun.unwrap_or_else(|| args.to_vec());
            outcome = self.wait_unblocked(&rerun, blocked.deadline, outcome).await;
        }
        self.wait_seq = self.wait_seq.max(outcome.wait_seq);
        self.settle_seq = self.settle_seq.max(outcome.settle_seq);
        outcome.reply
    }

    /// Run `args` once it may: a client woken by an earlier command of this request may have
    /// first claim on one of its keys.
    async fn execute(&mut self, args: &[Bytes]) -> Outcome {
        let mut outcome = self.shared.execute(&mut self.client, args, crate::clock::now());
        while outcome.held_by_claim {
            self.shared.wait_for_claims(args, &self.client).await;
            outcome = self.shared.execute(&mut self.client, args, crate::clock::now());
        }
        outcome
    }

    /// Sleep until woken by a change to a key the command waits for (then run it again)
    /// or until its deadline (then answer `timed_out`, its timeout reply).
    async fn wait_unblocked(&mut self, args: &[Bytes], deadline: Option<u64>, mut timed_out: Outcome) -> Outcome {
        let mut by_client_unblock = false;
        let shared = self.shared;
        let listed = shared.host.http_wait(&self.client, self.addrs.0, self.addrs.1);
        let outcome = loop {
            // One millisecond more: the deadline is counted from a truncated clock.
            let sleep = deadline
                .map_or(Duration::MAX, |at| Duration::from_millis(at.saturating_sub(crate::clock::now_ms()) + 1));
            tokio::select! {
                () = listed.record.attention.notified() => {
                    if listed.record.killed.load(Ordering::Acquire) {
                        self.killed = true;
                        timed_out.reply = Reply::error(KILLED);
                        break timed_out;
                    }
                }
                () = self.wake.notified() => {
                    if self.shared.unblocked(self.client.id, &mut timed_out) {
                        by_client_unblock = true;
                        break timed_out;
                    }
                    self.shared.wait_to_run(args, None).await;
                    let outcome = self.execute(args).await;
                    if outcome.blocked.is_none() {
                        break outcome;
                    }
                }
                () = tokio::time::sleep(sleep) => break timed_out,
            }
        };
        drop(listed);
        self.shared.end_wait(self.client.id, &outcome, by_client_unblock);
        outcome
    }

    /// Why this front end refuses a command the engine would run, if it does.
    fn refusal(&self, args: &[Bytes]) -> Option<String> {
        let name = args.first()?;
        if let Some(denied) = HTTP_DENIED.iter().find(|d| name.eq_ignore_ascii_case(d.as_bytes())) {
            return Some(format!(
                "ERR '{denied}' is not available over the HTTP API: it needs a lasting connection (use the RESP port)"
            ));
        }
        // JSON replies have RESP2's shapes (docs/http-api.md); RESP3 would nest the pairs of
        // every later reply in the request (ZRANGE ... WITHSCORES, HRANDFIELD ...).
        if name.eq_ignore_ascii_case(b"hello") && args.get(1).is_some_and(|protocol| protocol.as_ref() == b"3") {
            return Some("NOPROTO the HTTP API replies in RESP2 shapes: HELLO 3 needs the RESP port".into());
        }
        if self.access == Access::ReadOnly {
            let engine = &self.shared.engine;
            let (index, spec) = engine.table.lookup(name)?;
            let text = auth::readonly_refusal(spec)?;
            if let Some(stats) = engine.table.stat_index(index, args).and_then(|stat| engine.counters.command(stat)) {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
            }
            return Some(text);
        }
        None
    }

    /// Wait until everything the replies depend on is durable; returns that log position.
    async fn finish(&mut self) -> u64 {
        self.shared.persistence.wait_durable(self.wait_seq).await;
        self.shared.persistence.wait_settled(self.settle_seq).await;
        self.wait_seq
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.shared.engine.disconnect(&mut self.client, crate::clock::now_ms());
    }
}
