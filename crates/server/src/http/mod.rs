//! The HTTP API, in the Upstash REST dialect (`docs/http-api.md`), so `@upstash/redis`,
//! `@vercel/kv` and what is built on them work unchanged.
//!
//! | endpoint | methods | body |
//! |---|---|---|
//! | `/` | POST, PUT | one command: `["SET","k","v","EX",60]` |
//! | `/pipeline` | POST, PUT | commands: `[["SET","k","v"],["GET","k"]]` |
//! | `/multi-exec` | POST, PUT | commands, run atomically as MULTI/EXEC |
//! | `/<command>/<arg>/...?<name>=<value>` | GET, HEAD, POST, PUT | optional raw last argument |
//! | `/healthz` | GET, HEAD | — |
//! | `/metrics` | GET, HEAD | — (Prometheus text) |
//!
//! Every command runs through the engine's one execute path, on a fresh engine client per
//! request (so `MULTI`, `SELECT`, `WATCH` last for one request), and no reply is released
//! before the log is durable up to what it depends on — the same contract as RESP.
//! Every non-2xx answer is JSON with an `error` field.

mod auth;
mod cors;
#[cfg(test)]
mod fuzz;
mod json;
mod request;
mod routes;
mod sse;
mod turns;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::Request;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

pub use auth::Tokens;
pub use cors::cors_origins;

use crate::config::Config;
use crate::connection::Shared;

/// What every request handler shares.
#[derive(Debug, Clone)]
pub struct HttpState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    shared: Shared,
    tokens: Tokens,
    max_body: usize,
    /// The highest log position any HTTP reply depended on: the `upstash-sync-token` value.
    sync_seq: AtomicU64,
    in_flight: AtomicUsize,
    /// Largest request head (`--http-max-header`), answered 431 beyond.
    max_header: usize,
    /// Time allowed to send a request head (`--http-header-timeout`): slowloris defence.
    header_timeout: std::time::Duration,
    /// Browser origins allowed (`--http-cors-origin`); `None`: no CORS headers at all.
    cors: Option<tower_http::cors::CorsLayer>,
    large_requests: turns::LargeRequests,
    /// The address the API listens on (`laddr=` of a request in CLIENT LIST).
    local: SocketAddr,
}

impl Inner {
    /// What a request may do ([`auth::authorize`]), given whether the `default` user has a
    /// password now, and whether the user its token runs as is enabled: a token is a
    /// password, and `AUTH` refuses a disabled user's.
    fn authorize(
        &self,
        headers: &axum::http::HeaderMap,
        query: Option<&str>,
        peer: SocketAddr,
    ) -> Result<auth::Access, ApiError> {
        let acl = &self.shared.engine.acl;
        let access = auth::authorize(&self.tokens, headers, query, peer, !acl.auth_required())?;
        match acl.user(access.user()) {
            Some(user) if user.enabled => Ok(access),
            _ => Err(ApiError::unauthorized(format!(
                "WRONGPASS the token's user '{}' is disabled or deleted (ACL SETUSER ... on)",
                access.user()
            ))),
        }
    }
}

impl HttpState {
    pub fn new(shared: Shared, config: &Config, local: SocketAddr) -> HttpState {
        HttpState(Arc::new(Inner {
            shared,
            local,
            tokens: Tokens { full: config.http_token.clone(), readonly: config.http_readonly_token.clone() },
            max_body: config.http_max_body,
            sync_seq: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_header: config.http_max_header,
            header_timeout: std::time::Duration::from_secs(config.http_header_timeout),
            // Checked when the configuration was validated.
            cors: config.http_cors_origin.as_deref().and_then(|o| cors_origins(o).ok()).map(cors::layer),
            large_requests: turns::LargeRequests::new(config.http_max_body),
        }))
    }
}

/// One connection's requests, each routed to its endpoint by a match on the path. (axum's
/// `Router` with a `ConnectInfo` extension cost about 4 µs of server CPU a request, measured
/// on a bare hyper server; routing six fixed paths and two prefixes needs none of it.)
#[derive(Debug, Clone)]
struct Api {
    state: HttpState,
    peer: SocketAddr,
}

impl tower::Service<Request<Incoming>> for Api {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let Api { state, peer } = self.clone();
        Box::pin(async move { Ok(routes::respond(&state.0, peer, request).await) })
    }
}

/// A plain TCP listener that turns Nagle off on every connection (replies are small and
/// latency-bound).
#[derive(Debug)]
pub struct PlainListener(TcpListener);

impl axum::serve::Listener for PlainListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = stream.set_nodelay(true);
        (stream, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Serve the HTTP API on a plain TCP listener until the server shuts down.
pub async fn serve(listener: TcpListener, state: HttpState) {
    serve_on(PlainListener(listener), state).await;
}

/// Serve the HTTP API over TLS until the server shuts down.
pub async fn serve_tls(listener: crate::tls::TlsListener, state: HttpState) {
    serve_on(listener, state).await;
}

/// Accept connections and serve HTTP/1.1 on each with the request-head limits: a head
/// larger than `--http-max-header` gets 431, and a client that has not sent a whole head
/// within `--http-header-timeout` (a slowloris, or an idle keep-alive connection) is
/// disconnected. On shutdown, accepting stops and open connections finish their request.
async fn serve_on<L>(mut listener: L, state: HttpState)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let (max_header, header_timeout) = (state.0.max_header, state.0.header_timeout);
    let host = state.0.shared.host.clone();
    let mut stop = host.shutdown.subscribe();
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (mut io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopping| *stopping) => break,
        };
        // `maxclients` bounds HTTP connections too, counted apart from RESP's: a flood of
        // them would otherwise take every file descriptor, the RESP port's included.
        let Some(slot) = ConnectionSlot::take(&open, host.runtime.read().maxclients) else {
            tokio::spawn(async move {
                let _ = io.write_all(max_clients_response().as_bytes()).await;
                let _ = io.shutdown().await;
            });
            continue;
        };
        // CORS, when asked for, is outermost: a preflight is answered before any route or
        // token check.
        let api = Api { state: state.clone(), peer: addr };
        let service = hyper_util::service::TowerToHyperService::new(
            tower::ServiceBuilder::new().option_layer(state.0.cors.clone()).service(api),
        );
        let mut shutdown = host.shutdown.subscribe();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_header_size(max_header)
                .max_buf_size(max_header.max(8192) + 64 * 1024);
            let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
            tokio::pin!(connection);
            let stopping = async move {
                let _ = shutdown.wait_for(|stopping| *stopping).await;
            };
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopping => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%addr, %error, "HTTP connection closed");
            }
            drop(slot);
        });
    }
}

/// What a connection past `maxclients` gets before it is closed: a 503 with the JSON error
/// body every refusal has.
fn max_clients_response() -> String {
    let body = format!("{{\"error\":\"{}\"}}", crate::host::MAX_CLIENTS_REACHED);
    let head = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close";
    format!("{head}\r\ncontent-length: {}\r\n\r\n{body}", body.len())
}

/// One open HTTP connection, counted while it lives.
struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionSlot {
    /// Counts one more connection, unless `limit` are open.
    fn take(open: &Arc<AtomicUsize>, limit: usize) -> Option<ConnectionSlot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).ok()?;
        Some(ConnectionSlot(Arc::clone(open)))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Bind the HTTP port and start serving it; logs who is served (protected mode).
pub async fn start(config: &Config, shared: Shared, tls: Option<tokio_rustls::TlsAcceptor>) -> Result<(), String> {
    let addr = SocketAddr::new(config.bind, config.http_port);
    let listener = crate::server::listen(addr).map_err(|e| format!("cannot listen on {addr} (HTTP): {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let state = HttpState::new(shared, config, local);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let default_open = !state.0.shared.engine.acl.auth_required();
    tracing::info!("HTTP API listening on {scheme}://{local} ({})", state.0.tokens.describe(default_open));
    if config.http_token.is_none() && !config.bind.is_loopback() {
        tracing::warn!(
            "the HTTP API has no --http-token: it answers only clients on this machine (loopback), \
             other clients get 401; set --http-token to serve them"
        );
    }
    match tls {
        Some(acceptor) => {
            let listener = crate::tls::TlsListener::new(listener, acceptor).map_err(|e| e.to_string())?;
            tokio::spawn(serve_tls(listener, state));
        }
        None => {
            tokio::spawn(serve(listener, state));
        }
    }
    Ok(())
}

/// A refused request: its status and the text of its `{"error": ...}` body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), allow: None }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("ERR request body too large: the limit is {limit} bytes (--http-max-body)"),
        )
    }

    pub fn timeout() -> ApiError {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "ERR timed out reading the request body")
    }

    pub fn method_not_allowed(allow: &'static str) -> ApiError {
        let mut error =
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("ERR method not allowed here; use {allow}"));
        error.allow = Some(allow);
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status, json::error_body(&self.message));
        let headers = response.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // The rest of the body is not read: the connection cannot be reused.
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT => {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        if let Some(allow) = self.allow {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// A JSON response.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
