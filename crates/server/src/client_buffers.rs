//! What a connection holds in its buffers, as CLIENT LIST shows it (`qbuf`, `qbuf-free`,
//! `rbs`, `rbp`, `oll`, `omem`, `tot-mem`, `events`) and INFO sums it up
//! (`mem_clients_normal`, `client_recent_max_input_buffer`, `client_recent_max_output_buffer`).
//!
//! The figures are how an operator finds the client that holds memory: a subscriber that
//! stopped reading (`omem`, `oll`), a client sending a huge request (`qbuf`). The connection
//! writes them where they change (a read, a write to the socket), each a relaxed store;
//! whoever delivers a push counts it, and the connection counts it out when it takes it. A
//! listing reads them without stopping the connection and sees a recent value, as in Redis.
//!
//! Where StayKV differs from Redis in shape, the figures say what StayKV holds:
//! - the arguments of the command running are slices of the input, so they count in `qbuf`
//!   and `argv-mem` is 0;
//! - replies wait in one buffer rather than Redis's fixed 16 KiB one plus a list: of what a
//!   client has not taken yet, the first 16 KiB show as `obl` and the rest as `omem`, as
//!   they would fill Redis's two, and `client-output-buffer-limit` counts the `omem` part, as
//!   Redis counts its list; `oll` counts the pushes queued for it (pub/sub messages,
//!   MONITOR lines, invalidations).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The buffer figures of one connection.
#[derive(Debug, Default)]
pub struct ClientBuffers {
    query: AtomicUsize,
    query_free: AtomicUsize,
    reply_room: AtomicUsize,
    reply_peak: AtomicUsize,
    unwritten: AtomicUsize,
    messages: AtomicUsize,
    message_bytes: AtomicUsize,
    /// Since when the client's output has been over its soft limit, if it is (only the
    /// housekeeping tick, which enforces that limit, reads and writes it).
    pub over_soft_limit_since: parking_lot::Mutex<Option<Instant>>,
}

/// [`ClientBuffers`] as read at one moment, in bytes unless named otherwise.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BufferFigures {
    /// Input read and not yet run, the command running included (`qbuf`).
    pub query: usize,
    /// Room in the input buffer after it (`qbuf-free`).
    pub query_free: usize,
    /// Room of the buffer replies are encoded into (`rbs`).
    pub reply_room: usize,
    /// The most replies one write has carried (`rbp`).
    pub reply_peak: usize,
    /// Replies in a write to the socket not yet finished.
    pub unwritten: usize,
    /// Pushes queued for the connection (`oll`) and their approximate size.
    pub messages: usize,
    pub message_bytes: usize,
}

impl ClientBuffers {
    /// The input buffer after a read or after running what it held.
    pub fn set_query(&self, len: usize, capacity: usize) {
        self.query.store(len, Ordering::Relaxed);
        self.query_free.store(capacity.saturating_sub(len), Ordering::Relaxed);
    }

    /// A write of `bytes` of replies begun (0: finished).
    pub fn set_unwritten(&self, bytes: usize) {
        self.unwritten.store(bytes, Ordering::Relaxed);
        // A load and a store, not a read-modify-write: only the connection writes it.
        if bytes > self.reply_peak.load(Ordering::Relaxed) {
            self.reply_peak.store(bytes, Ordering::Relaxed);
        }
    }

    /// The room of the buffer replies are encoded into.
    pub fn set_reply_room(&self, room: usize) {
        self.reply_room.store(room, Ordering::Relaxed);
    }

    /// A push of about `bytes` queued; returns all the client has not taken now (`omem`):
    /// the queued pushes and the replies of a write not yet finished.
    pub fn queue_message(&self, bytes: usize) -> usize {
        self.messages.fetch_add(1, Ordering::Relaxed);
        let queued = self.message_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        queued + self.unwritten.load(Ordering::Relaxed)
    }

    /// Bytes of the pushes queued.
    pub fn queued_bytes(&self) -> usize {
        self.message_bytes.load(Ordering::Acquire)
    }

    /// `count` queued messages of `bytes` in all taken into the output.
    pub fn take_messages(&self, count: usize, bytes: usize) {
        self.messages.fetch_sub(count, Ordering::Relaxed);
        self.message_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Whether any push waits (one load: the common answer is no).
    pub fn has_messages(&self) -> bool {
        self.queued_bytes() > 0
    }

    pub fn figures(&self) -> BufferFigures {
        BufferFigures {
            query: self.query.load(Ordering::Relaxed),
            query_free: self.query_free.load(Ordering::Relaxed),
            reply_room: self.reply_room.load(Ordering::Relaxed),
            reply_peak: self.reply_peak.load(Ordering::Relaxed),
            unwritten: self.unwritten.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            message_bytes: self.message_bytes.load(Ordering::Relaxed),
        }
    }
}

impl BufferFigures {
    /// What the client has not taken yet (`omem`): replies and queued messages.
    pub fn output(&self) -> usize {
        self.unwritten + self.message_bytes
    }

    /// Memory the buffers hold (`tot-mem` less the client's own state): the input buffer,
    /// the reply buffer, queued messages, and `queued` bytes of a transaction. Large values
    /// in unwritten replies are the stored ones, shared, so only the reply buffer counts.
    pub fn held(&self, queued: usize) -> usize {
        self.query + self.query_free + self.reply_room + self.message_bytes + queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_follow_the_connection() {
        let buffers = ClientBuffers::default();
        buffers.set_query(26, 1024);
        buffers.set_unwritten(5000);
        buffers.set_reply_room(8192);
        assert_eq!(buffers.queue_message(100), 5100);
        assert_eq!(buffers.queue_message(50), 5150);
        let seen = buffers.figures();
        assert_eq!((seen.query, seen.query_free, seen.messages), (26, 998, 2));
        assert_eq!(seen.output(), 5150);
        assert_eq!(seen.held(10), 1024 + 8192 + 150 + 10);
        buffers.set_unwritten(0);
        buffers.take_messages(2, 150);
        let seen = buffers.figures();
        assert_eq!((seen.output(), seen.reply_peak), (0, 5000));
        assert!(!buffers.has_messages());
    }
}
