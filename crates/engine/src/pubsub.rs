//! Pub/sub: who listens to which channels and patterns, and delivery to them.
//!
//! Delivery goes through a [`Deliver`] function the front end gives each subscriber (it
//! queues the message for that connection and enforces the output-buffer limit), so
//! publishing never blocks on a slow reader and the engine stays free of I/O.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use staykv_resp::Reply;

use crate::glob;
use crate::value::HashMap;

/// Queues one message for one subscriber.
pub type Deliver = Arc<dyn Fn(Reply) + Send + Sync>;

/// Messages for other connections, each with its delivery: made while a command runs, and
/// delivered once the batch it writes is in the log (a connection writes out what it was
/// handed only once the log's appended batches are durable; see `Ctx::commit`).
#[derive(Default)]
pub struct Deliveries(Vec<(Deliver, Reply)>);

impl Deliveries {
    pub fn new() -> Deliveries {
        Deliveries::default()
    }

    pub fn push(&mut self, deliver: Deliver, message: Reply) {
        self.0.push((deliver, message));
    }

    pub fn append(&mut self, mut other: Deliveries) {
        self.0.append(&mut other.0);
    }

    /// Hands each message to its connection.
    pub fn deliver(self) {
        for (deliver, message) in self.0 {
            deliver(message);
        }
    }
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Deliveries({})", self.0.len())
    }
}

/// A client's delivery function, as stored in [`crate::Client`].
#[derive(Clone)]
pub struct ClientDeliver(pub Deliver);

impl std::fmt::Debug for ClientDeliver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientDeliver")
    }
}

type Subscribers = Vec<(u64, Deliver)>;

/// Every subscription of every client, and the MONITOR clients.
#[derive(Default)]
pub struct PubSub {
    channels: Channels,
    /// SSUBSCRIBE / SPUBLISH: Redis 7's shard channels, apart from the others (a cluster
    /// routes them by slot; a single server keeps them as a second namespace).
    shard_channels: Channels,
    patterns: RwLock<Vec<(Bytes, u64, Deliver)>>,
    monitors: RwLock<Subscribers>,
    /// Whether `monitors` holds anyone (kept beside it, so that commands need not lock it).
    monitoring: AtomicBool,
}

/// Channels and their subscribers.
#[derive(Default)]
struct Channels(RwLock<HashMap<Bytes, Subscribers>>);

impl Channels {
    fn subscribe(&self, client: u64, deliver: &Deliver, channel: &Bytes) {
        let mut channels = self.0.write();
        let list = channels.entry(channel.clone()).or_default();
        if !list.iter().any(|(id, _)| *id == client) {
            list.push((client, deliver.clone()));
        }
    }

    fn unsubscribe(&self, client: u64, channel: &[u8]) {
        let mut channels = self.0.write();
        if let Some(list) = channels.get_mut(channel) {
            list.retain(|(id, _)| *id != client);
            if list.is_empty() {
                channels.remove(channel);
            }
        }
    }

    /// Adds `message` (pushed as `kind`) for `channel`'s subscribers to `out`; returns how
    /// many.
    fn publish(&self, kind: &'static str, channel: &Bytes, message: &Bytes, out: &mut Deliveries) -> usize {
        let channels = self.0.read();
        let Some(list) = channels.get(channel) else { return 0 };
        for (_, deliver) in list {
            let message =
                Reply::Push(vec![Reply::bulk_str(kind), Reply::Bulk(channel.clone()), Reply::Bulk(message.clone())]);
            out.push(deliver.clone(), message);
        }
        list.len()
    }

    fn names(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let channels = self.0.read();
        channels.keys().filter(|c| pattern.is_none_or(|p| glob::matches(p, c, false))).cloned().collect()
    }

    fn subscriber_count(&self, channel: &[u8]) -> usize {
        self.0.read().get(channel).map_or(0, Vec::len)
    }

    /// The subscribers of each channel `refused` says no to.
    fn subscribers_refused(&self, refused: impl Fn(&[u8]) -> bool, out: &mut Vec<u64>) {
        let channels = self.0.read();
        for (_, list) in channels.iter().filter(|(channel, _)| refused(channel)) {
            out.extend(list.iter().map(|(id, _)| *id));
        }
    }

    fn is_empty(&self) -> bool {
        self.0.read().is_empty()
    }
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PubSub({} channels, {} patterns)", self.channels.0.read().len(), self.patterns.read().len())
    }
}

impl PubSub {
    /// The channel namespace: shard channels or the others.
    fn namespace(&self, shard: bool) -> &Channels {
        if shard {
            &self.shard_channels
        } else {
            &self.channels
        }
    }

    pub fn subscribe(&self, client: u64, deliver: &Deliver, channel: &Bytes, shard: bool) {
        self.namespace(shard).subscribe(client, deliver, channel);
    }

    pub fn unsubscribe(&self, client: u64, channel: &[u8], shard: bool) {
        self.namespace(shard).unsubscribe(client, channel);
    }

    /// A pattern the client is not subscribed to yet (its own set of patterns says so): no
    /// search of every client's patterns here.
    pub fn psubscribe(&self, client: u64, deliver: &Deliver, pattern: &Bytes) {
        self.patterns.write().push((pattern.clone(), client, deliver.clone()));
    }

    pub fn punsubscribe(&self, client: u64, pattern: &[u8]) {
        self.patterns.write().retain(|(p, id, _)| !(*id == client && p == pattern));
    }

    /// The clients subscribed to a channel, shard channel or pattern that `refused` says no
    /// to (given `true` for a pattern, which ACL channel rules match as it is written).
    pub fn subscribers_refused(&self, refused: impl Fn(&[u8], bool) -> bool) -> Vec<u64> {
        let mut clients = Vec::new();
        self.channels.subscribers_refused(|channel| refused(channel, false), &mut clients);
        self.shard_channels.subscribers_refused(|channel| refused(channel, false), &mut clients);
        let patterns = self.patterns.read();
        clients.extend(patterns.iter().filter(|(pattern, _, _)| refused(pattern, true)).map(|(_, id, _)| *id));
        clients.sort_unstable();
        clients.dedup();
        clients
    }

    /// Every pattern of a client going away, in one pass over the list.
    pub fn punsubscribe_all(&self, client: u64) {
        self.patterns.write().retain(|(_, id, _)| *id != client);
    }

    /// Adds `message` for `channel`'s subscribers and matching patterns to `out`; returns how
    /// many will receive it.
    pub fn publish(&self, channel: &Bytes, message: &Bytes, out: &mut Deliveries) -> usize {
        let mut receivers = self.channels.publish("message", channel, message, out);
        for (pattern, _, deliver) in self.patterns.read().iter() {
            if glob::matches(pattern, channel, false) {
                let message = Reply::Push(vec![
                    Reply::bulk_str("pmessage"),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(message.clone()),
                ]);
                out.push(deliver.clone(), message);
                receivers += 1;
            }
        }
        receivers
    }

    /// SPUBLISH: to the shard channel's subscribers only (patterns never match them).
    pub fn spublish(&self, channel: &Bytes, message: &Bytes, out: &mut Deliveries) -> usize {
        self.shard_channels.publish("smessage", channel, message, out)
    }

    pub fn add_monitor(&self, client: u64, deliver: &Deliver) {
        let mut monitors = self.monitors.write();
        if !monitors.iter().any(|(id, _)| *id == client) {
            monitors.push((client, deliver.clone()));
        }
        self.monitoring.store(true, Ordering::Release);
    }

    pub fn remove_monitor(&self, client: u64) {
        let mut monitors = self.monitors.write();
        monitors.retain(|(id, _)| *id != client);
        self.monitoring.store(!monitors.is_empty(), Ordering::Release);
    }

    /// Whether `client` is a MONITOR client.
    pub fn is_monitor(&self, client: u64) -> bool {
        self.has_monitors() && self.monitors.read().iter().any(|(id, _)| *id == client)
    }

    /// Whether a MONITOR client listens: one atomic load, asked before every command.
    pub fn has_monitors(&self) -> bool {
        self.monitoring.load(Ordering::Acquire)
    }

    /// Show a command to every MONITOR client, in Redis's format:
    /// `1339518083.107412 [0 127.0.0.1:60866] "set" "k" "v"`.
    pub fn feed_monitors(&self, now_us: u64, db: usize, origin: &str, args: &[Bytes]) {
        let monitors = self.monitors.read();
        if monitors.is_empty() {
            return;
        }
        let mut line = format!("{}.{:06} [{db} {origin}]", now_us / 1_000_000, now_us % 1_000_000);
        for arg in args {
            line.push_str(" \"");
            for &c in arg.iter() {
                match c {
                    b'\\' => line.push_str("\\\\"),
                    b'"' => line.push_str("\\\""),
                    b'\n' => line.push_str("\\n"),
                    b'\r' => line.push_str("\\r"),
                    b'\t' => line.push_str("\\t"),
                    0x07 => line.push_str("\\a"),
                    0x08 => line.push_str("\\b"),
                    c if c.is_ascii_graphic() || c == b' ' => line.push(c as char),
                    c => line.push_str(&format!("\\x{c:02x}")),
                }
            }
            line.push('"');
        }
        for (_, deliver) in monitors.iter() {
            deliver(Reply::StatusOwned(line.clone()));
        }
    }

    /// Whether anyone listens at all (keyspace notifications skip all work otherwise).
    pub fn has_listeners(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.read().is_empty()
    }

    /// Active channels (or shard channels), optionally matching a pattern (PUBSUB CHANNELS,
    /// SHARDCHANNELS).
    pub fn channels(&self, pattern: Option<&[u8]>, shard: bool) -> Vec<Bytes> {
        self.namespace(shard).names(pattern)
    }

    pub fn subscriber_count(&self, channel: &[u8], shard: bool) -> usize {
        self.namespace(shard).subscriber_count(channel)
    }

    /// Distinct patterns subscribed to (PUBSUB NUMPAT): Redis 7.0 counts the keys of its
    /// pattern dictionary, not the (client, pattern) pairs.
    pub fn pattern_count(&self) -> usize {
        let patterns = self.patterns.read();
        let mut distinct: Vec<&Bytes> = patterns.iter().map(|(p, _, _)| p).collect();
        distinct.sort_unstable();
        distinct.dedup();
        distinct.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpat_counts_distinct_patterns_like_redis_7() {
        let pubsub = PubSub::default();
        let deliver: Deliver = Arc::new(|_| {});
        let a = Bytes::from_static(b"a*");
        let b = Bytes::from_static(b"b*");
        pubsub.psubscribe(1, &deliver, &a);
        pubsub.psubscribe(2, &deliver, &a);
        pubsub.psubscribe(2, &deliver, &b);
        assert_eq!(pubsub.pattern_count(), 2);
        pubsub.punsubscribe(1, b"a*");
        assert_eq!(pubsub.pattern_count(), 2);
        pubsub.punsubscribe(2, b"a*");
        assert_eq!(pubsub.pattern_count(), 1);
    }
}
