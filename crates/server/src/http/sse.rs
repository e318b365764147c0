//! Server-sent events: `/subscribe/<channel>...`, `/psubscribe/<pattern>...` and `/monitor`,
//! in the line format `@upstash/redis` reads: `data: message,<channel>,<message>`,
//! `data: pmessage,<pattern>,<channel>,<message>`, `data: subscribe,<channel>,<count>`, and
//! for MONITOR the monitor line itself.
//!
//! Each stream is an engine client of its own whose subscriptions last as long as the HTTP
//! response: when the client goes away the stream is dropped and so are its subscriptions.
//! A reader that falls more than [`BACKLOG`] messages, or the pubsub class's
//! `client-output-buffer-limit` (32 MB by default), behind is cut off, like a RESP subscriber
//! past its output-buffer limit: the messages queued for it are dropped at once and its
//! stream ends ([`EventQueue`]). It learns that it missed some; a reader given the later
//! messages after a silent gap would not.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{Method, Request};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::Incoming;
use staykv_engine::pubsub::ClientDeliver;
use staykv_engine::{Client, Reply};

use super::auth::Access;
use super::{ApiError, Inner};
use crate::connection::Shared;
use crate::host::{EventQueue, EventStream};

/// Messages queued for one stream before it is dropped as too slow.
const BACKLOG: usize = 4096;

/// `command` (`subscribe`, `psubscribe` or `monitor`) on the names the path gives, answered
/// with an event stream that lasts as long as the subscription.
pub(super) async fn stream(
    inner: &Inner,
    peer: SocketAddr,
    request: Request<Incoming>,
    command: &'static str,
) -> Response {
    let (parts, _) = request.into_parts();
    // Opened with GET (curl, EventSource) or POST (`@upstash/redis`).
    if !matches!(parts.method, Method::GET | Method::POST) {
        return ApiError::method_not_allowed("GET, POST").into_response();
    }
    let access = match inner.authorize(&parts.headers, parts.uri.query(), peer) {
        Ok(access) => access,
        Err(error) => return error.into_response(),
    };
    if command == "monitor" && access == Access::ReadOnly {
        return ApiError::forbidden("NOPERM this token has no permission to run 'monitor'").into_response();
    }
    let mut args = vec![Bytes::from_static(command.as_bytes())];
    let names = parts.uri.path().trim_start_matches('/').split('/').skip(1);
    args.extend(names.filter(|n| !n.is_empty()).map(|n| Bytes::from(super::request::percent_decode(n))));
    if command != "monitor" && args.len() < 2 {
        return ApiError::bad_request(format!("ERR wrong number of arguments for '{command}' command")).into_response();
    }

    let queue = Arc::new(EventQueue::default());
    let shared = inner.shared.clone();
    let id = shared.host.next_client_id.fetch_add(1, Ordering::Relaxed);
    let mut client = Client::new(id, true);
    client.origin = crate::connection::origin_text(peer);
    access.user().clone_into(&mut client.user);
    let stream = EventStream { user: client.user.clone(), queue: queue.clone() };
    let (deliveries, host) = (queue.clone(), shared.host.clone());
    client.deliver = Some(ClientDeliver(Arc::new(move |message| {
        let max_bytes = usize::try_from(host.limits.output().pubsub.hard).unwrap_or(usize::MAX);
        deliveries.push(message, BACKLOG, max_bytes);
    })));
    // As every command runs: held by CLIENT PAUSE or a busy script, and counted in INFO
    // commandstats.
    shared.wait_to_run(&args, None).await;
    let outcome = shared.execute(&mut client, &args, crate::clock::now());
    let confirmations = match outcome.reply {
        Reply::Error(text) => {
            shared.engine.disconnect(&mut client, crate::clock::now_ms());
            return ApiError::bad_request(text).into_response();
        }
        Reply::Many(replies) => replies,
        _ => Vec::new(),
    };
    shared.host.event_streams.lock().insert(id, stream);
    let events = Events { pending: confirmations, queue, guard: Subscription { shared, client }, waiting: None };
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// Unsubscribes the stream's client when the response is dropped.
struct Subscription {
    shared: Shared,
    client: Client,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.host.event_streams.lock().remove(&self.client.id);
        self.shared.engine.disconnect(&mut self.client, crate::clock::now_ms());
    }
}

struct Events {
    /// The subscription confirmations, sent first.
    pending: Vec<Reply>,
    /// Messages as they are delivered; ended when cut off or killed ([`EventStream`]).
    queue: Arc<EventQueue>,
    guard: Subscription,
    /// A message taken from the queue, and the wait for the log to be durable as far as it
    /// was appended when the message was taken: no reader hears of a write a crash could
    /// take back (the write was appended before the message was handed over).
    waiting: Option<(Reply, DurableWait)>,
}

/// A wait for the log to be durable up to a position.
type DurableWait = Pin<Box<dyn Future<Output = ()> + Send>>;

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let event = |reply: &Reply| Some(Ok(Event::default().data(line(reply))));
        if !self.pending.is_empty() {
            let reply = self.pending.remove(0);
            return Poll::Ready(event(&reply));
        }
        if self.waiting.is_none() {
            let Some(reply) = std::task::ready!(self.queue.poll_next(cx)) else { return Poll::Ready(None) };
            let persistence = self.guard.shared.persistence.clone();
            let seq = persistence.settled_seq();
            self.waiting = Some((reply, Box::pin(async move { persistence.wait_settled(seq).await })));
        }
        let Some((_, durable)) = self.waiting.as_mut() else { return Poll::Pending };
        std::task::ready!(durable.as_mut().poll(cx));
        Poll::Ready(self.waiting.take().and_then(|(reply, _)| event(&reply)))
    }
}

/// A pushed reply as one comma-separated SSE line (line breaks inside become spaces: an SSE
/// data line cannot hold one).
fn line(reply: &Reply) -> String {
    let text = |r: &Reply| match r {
        Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::Int(n) => n.to_string(),
        Reply::StatusOwned(s) => s.clone(),
        Reply::Status(s) => (*s).to_string(),
        _ => String::new(),
    };
    let joined = match reply {
        Reply::Push(items) | Reply::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => text(other),
    };
    joined.replace(['\r', '\n'], " ")
}
