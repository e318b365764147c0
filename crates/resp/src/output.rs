//! Where encoded replies go: any [`ReplySink`], such as a `BytesMut`, or an [`Output`], a
//! connection's pending replies, which keeps large values by reference.
//!
//! Copied into a buffer, a large value would be copied twice on its way out: into the
//! buffer, then by the kernel into the socket. An [`Output`] holds a value of at least
//! [`SHARED_VALUE_MIN`] bytes as the stored `Bytes` itself (a reference count) and the socket
//! write gathers the pieces (`writev`). Smaller values are copied: below about this size the
//! copy costs no more than the reference counting and the extra piece (measured: no
//! difference at 1 KiB).

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bulk values at least this long are kept by reference in an [`Output`] (Redis's reply
/// chunk size, `PROTO_REPLY_CHUNK_BYTES`).
pub const SHARED_VALUE_MIN: usize = 16 * 1024;

/// Something replies are encoded into.
pub trait ReplySink {
    fn put_slice(&mut self, data: &[u8]);

    fn put_u8(&mut self, byte: u8);

    /// Room for at least `additional` more bytes, as a hint.
    fn reserve(&mut self, additional: usize);

    /// A bulk value's bytes: copied, unless the sink can keep them by reference.
    fn put_value(&mut self, value: &Bytes) {
        self.put_slice(value);
    }
}

impl ReplySink for BytesMut {
    fn put_slice(&mut self, data: &[u8]) {
        BufMut::put_slice(self, data);
    }

    fn put_u8(&mut self, byte: u8) {
        BufMut::put_u8(self, byte);
    }

    fn reserve(&mut self, additional: usize) {
        BytesMut::reserve(self, additional);
    }
}

/// Replies waiting to be written, in order: encoded bytes, and large values by reference.
#[derive(Debug, Default)]
pub struct Output {
    /// Finished pieces, written before `tail`.
    pieces: VecDeque<Bytes>,
    /// Bytes in `pieces`.
    pieces_len: usize,
    /// Where the next bytes are encoded.
    tail: BytesMut,
}

impl Output {
    /// Bytes not yet written.
    pub fn len(&self) -> usize {
        self.pieces_len + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room in the buffer replies are encoded into, written or not.
    pub fn room(&self) -> usize {
        self.tail.capacity()
    }

    /// Drop everything pending. The encoding buffer keeps its room if that is at most
    /// `keep_room` (measured with [`Output::room`] before the write, as a write gives room
    /// up), and is let go otherwise: one large reply would else pin its size for as long as
    /// the client stays connected, as many as a pool has connections.
    pub fn clear(&mut self, room_before: usize, keep_room: usize) {
        self.pieces.clear();
        self.pieces_len = 0;
        if room_before > keep_room {
            self.tail = BytesMut::new();
        } else {
            self.tail.clear();
        }
    }

    /// Fill `slices` with what is pending, in order, as far as it goes; returns how many.
    pub fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let tail = Some(&self.tail[..]).filter(|tail| !tail.is_empty());
        let pending = self.pieces.iter().map(|piece| &piece[..]).chain(tail);
        let mut count = 0;
        for (slot, piece) in slices.iter_mut().zip(pending) {
            *slot = IoSlice::new(piece);
            count += 1;
        }
        count
    }

    /// `written` bytes from the front were sent: drop them.
    pub fn advance(&mut self, mut written: usize) {
        while let Some(piece) = self.pieces.front_mut() {
            if written < piece.len() {
                piece.advance(written);
                self.pieces_len -= written;
                return;
            }
            written -= piece.len();
            self.pieces_len -= piece.len();
            self.pieces.pop_front();
        }
        self.tail.advance(written.min(self.tail.len()));
    }
}

impl ReplySink for Output {
    fn put_slice(&mut self, data: &[u8]) {
        BufMut::put_slice(&mut self.tail, data);
    }

    fn put_u8(&mut self, byte: u8) {
        BufMut::put_u8(&mut self.tail, byte);
    }

    fn reserve(&mut self, additional: usize) {
        self.tail.reserve(additional);
    }

    fn put_value(&mut self, value: &Bytes) {
        if value.len() < SHARED_VALUE_MIN {
            self.put_slice(value);
            return;
        }
        if !self.tail.is_empty() {
            let encoded = self.tail.split().freeze();
            self.pieces_len += encoded.len();
            self.pieces.push_back(encoded);
        }
        self.pieces_len += value.len();
        self.pieces.push_back(value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything pending, as the socket would receive it, taking `step` slices at a time.
    fn gathered(output: &Output, step: usize) -> Vec<u8> {
        let mut slices = vec![IoSlice::new(&[]); step];
        let count = output.slices(&mut slices);
        slices.iter().take(count).flat_map(|slice| slice.iter().copied()).collect()
    }

    fn large(fill: u8) -> Bytes {
        Bytes::from(vec![fill; SHARED_VALUE_MIN])
    }

    #[test]
    fn a_large_value_is_kept_by_reference_and_small_ones_copied() {
        let value = large(b'v');
        let mut output = Output::default();
        output.put_slice(b"$16384\r\n");
        output.put_value(&value);
        output.put_slice(b"\r\n");
        output.put_value(&Bytes::from_static(b"small"));
        assert_eq!(output.pieces.len(), 2, "the header, then the value itself");
        assert_eq!(output.pieces.get(1).map(|piece| piece.as_ptr()), Some(value.as_ptr()));

        let mut expected = b"$16384\r\n".to_vec();
        expected.extend_from_slice(&value);
        expected.extend_from_slice(b"\r\nsmall");
        assert_eq!(output.len(), expected.len());
        assert_eq!(gathered(&output, 8), expected);
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut output = Output::default();
        let mut expected = Vec::new();
        for fill in [b'a', b'b', b'c'] {
            output.put_slice(b"+hdr\r\n");
            output.put_value(&large(fill));
            expected.extend_from_slice(b"+hdr\r\n");
            expected.extend_from_slice(&large(fill));
        }
        output.put_slice(b"end");
        expected.extend_from_slice(b"end");

        // A socket that takes 1,000 bytes, from at most 2 slices, per write.
        let mut received = Vec::new();
        while !output.is_empty() {
            let taken: Vec<u8> = gathered(&output, 2).into_iter().take(1000).collect();
            output.advance(taken.len());
            received.extend(taken);
            assert_eq!(output.len(), expected.len() - received.len());
        }
        assert_eq!(received, expected);
    }

    #[test]
    fn cleared_output_is_empty_and_takes_more() {
        let mut output = Output::default();
        output.put_value(&large(b'x'));
        output.put_slice(b"tail");
        output.clear(output.room(), usize::MAX);
        assert!(output.is_empty());
        assert_eq!(output.slices(&mut [IoSlice::new(&[])]), 0);
        output.put_slice(b"+OK\r\n");
        assert_eq!(gathered(&output, 4), b"+OK\r\n");
    }

    #[test]
    fn cleared_output_lets_a_large_buffer_go() {
        let mut output = Output::default();
        output.put_slice(&[b'x'; 100_000]);
        let room = output.room();
        output.advance(100_000);
        output.clear(room, 4096);
        assert_eq!(output.room(), 0);
        output.put_slice(b"small");
        let room = output.room();
        output.clear(room, 4096);
        assert_eq!(output.room(), room, "a small buffer keeps its room");
    }
}
