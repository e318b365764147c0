//! Pub/sub: who listens to which channels and patterns, and delivery to them.
//!
//! Delivery goes through a [`Deliver`] function the front end gives each subscriber (it
//! queues the message for that connection and enforces the output-buffer limit), so
//! publishing never blocks on a slow reader and the engine stays free of I/O.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use staykv_resp::Reply;

use crate::glob;
use crate::value::HashMap;

/// Queues one message for one subscriber.
pub type Deliver = Arc<dyn Fn(Reply) + Send + Sync>;

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
    channels: RwLock<HashMap<Bytes, Subscribers>>,
    patterns: RwLock<Vec<(Bytes, u64, Deliver)>>,
    monitors: RwLock<Subscribers>,
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PubSub({} channels, {} patterns)", self.channels.read().len(), self.patterns.read().len())
    }
}

impl PubSub {
    pub fn subscribe(&self, client: u64, deliver: &Deliver, channel: &Bytes) {
        let mut channels = self.channels.write();
        let list = channels.entry(channel.clone()).or_default();
        if !list.iter().any(|(id, _)| *id == client) {
            list.push((client, deliver.clone()));
        }
    }

    pub fn unsubscribe(&self, client: u64, channel: &[u8]) {
        let mut channels = self.channels.write();
        if let Some(list) = channels.get_mut(channel) {
            list.retain(|(id, _)| *id != client);
            if list.is_empty() {
                channels.remove(channel);
            }
        }
    }

    pub fn psubscribe(&self, client: u64, deliver: &Deliver, pattern: &Bytes) {
        let mut patterns = self.patterns.write();
        if !patterns.iter().any(|(p, id, _)| *id == client && p == pattern) {
            patterns.push((pattern.clone(), client, deliver.clone()));
        }
    }

    pub fn punsubscribe(&self, client: u64, pattern: &[u8]) {
        self.patterns.write().retain(|(p, id, _)| !(*id == client && p == pattern));
    }

    /// Send `message` to `channel`'s subscribers and matching patterns; returns how many
    /// received it.
    pub fn publish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let mut receivers = 0;
        if let Some(list) = self.channels.read().get(channel) {
            for (_, deliver) in list {
                deliver(Reply::Push(vec![
                    Reply::bulk_str("message"),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(message.clone()),
                ]));
                receivers += 1;
            }
        }
        for (pattern, _, deliver) in self.patterns.read().iter() {
            if glob::matches(pattern, channel, false) {
                deliver(Reply::Push(vec![
                    Reply::bulk_str("pmessage"),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(message.clone()),
                ]));
                receivers += 1;
            }
        }
        receivers
    }

    pub fn add_monitor(&self, client: u64, deliver: &Deliver) {
        let mut monitors = self.monitors.write();
        if !monitors.iter().any(|(id, _)| *id == client) {
            monitors.push((client, deliver.clone()));
        }
    }

    pub fn remove_monitor(&self, client: u64) {
        self.monitors.write().retain(|(id, _)| *id != client);
    }

    pub fn has_monitors(&self) -> bool {
        !self.monitors.read().is_empty()
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
        !self.channels.read().is_empty() || !self.patterns.read().is_empty()
    }

    /// Active channels, optionally matching a pattern (PUBSUB CHANNELS).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let channels = self.channels.read();
        channels.keys().filter(|c| pattern.is_none_or(|p| glob::matches(p, c, false))).cloned().collect()
    }

    pub fn subscriber_count(&self, channel: &[u8]) -> usize {
        self.channels.read().get(channel).map_or(0, Vec::len)
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
