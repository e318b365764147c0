//! Streams in RDB files: types 15 (Redis ≤ 6.2), 19 (Redis 7.0, written here) and 21
//! (Redis 7.2).
//!
//! # Layout
//!
//! A stream is a radix tree of listpack nodes: the node count, then per node a 16-byte key
//! (the node's master ID, milliseconds then sequence, both big-endian) and a listpack. The
//! listpack starts with a master entry — valid count, deleted count, field count, the
//! master fields, a `0` terminator — followed by the entries: flags (1 deleted, 2 same fields
//! as the master), ID deltas from the master ID, then either the values alone (same fields)
//! or the field count and field/value pairs, and last the number of listpack elements the
//! entry used before this one.
//!
//! After the nodes: length, last ID; from type 19 on, first ID, largest deleted ID and
//! entries ever added; then the consumer groups: name, last delivered ID, (type 19+) entries
//! read, the group's pending list (raw 16-byte ID, 8-byte delivery time, delivery count), and
//! the consumers: name, seen time, (type 21) active time, and the IDs of the pending entries
//! each owns.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};

use crate::encodings::{listpack_elems, Elem, ListpackBuilder};
use crate::reader::{blob_err, Src};
use crate::writer::{put_len, put_string};
use crate::{types, RdbError};

/// Initial capacity cap for vectors whose length comes from the file.
const PREALLOC_CAP: u64 = 4096;
/// Entry flag: deleted (skipped when reading).
const FLAG_DELETED: i64 = 1;
/// Entry flag: the entry has the master entry's fields, only its values are stored.
const FLAG_SAMEFIELDS: i64 = 2;
/// Entries a node holds when the writer lays a stream's nodes out itself (Redis's
/// `stream-node-max-entries` default).
const NODE_MAX_ENTRIES: usize = 100;

/// A stream entry ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RdbStreamId {
    pub ms: u64,
    pub seq: u64,
}

impl RdbStreamId {
    fn from_raw(raw: &[u8; 16]) -> RdbStreamId {
        let (ms, seq) = raw.split_at(8);
        let be = |b: &[u8]| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
        RdbStreamId { ms: be(ms), seq: be(seq) }
    }

    fn to_raw(self) -> [u8; 16] {
        let mut raw = [0u8; 16];
        let (ms, seq) = raw.split_at_mut(8);
        ms.copy_from_slice(&self.ms.to_be_bytes());
        seq.copy_from_slice(&self.seq.to_be_bytes());
        raw
    }
}

/// One entry: its ID and its fields and values, flattened (`f1 v1 f2 v2 ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbStreamEntry {
    pub id: RdbStreamId,
    pub fields: Vec<Vec<u8>>,
}

/// A pending entry of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbPending {
    pub id: RdbStreamId,
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    pub delivery_count: u64,
}

/// A consumer: its name, when it was last seen (Unix ms), and the pending IDs it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbConsumer {
    pub name: Vec<u8>,
    pub seen_time: u64,
    pub pending: Vec<RdbStreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbStreamGroup {
    pub name: Vec<u8>,
    pub last_id: RdbStreamId,
    /// Entries the group has read (-1: unknown); `None` when the file predates the field
    /// (type 15) and the loader must estimate it, as Redis does.
    pub entries_read: Option<i64>,
    /// Every pending entry of the group; each is owned by one consumer.
    pub pending: Vec<RdbPending>,
    pub consumers: Vec<RdbConsumer>,
}

/// One node of the stream's radix tree: what its listpack holds besides the entries, which
/// decides when Redis starts the next node and which nodes `~` trimming removes whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbStreamNode {
    /// The node's key, which the entries' IDs are deltas from: the ID of the first entry
    /// ever put in the node (present or not).
    pub master_id: RdbStreamId,
    /// The master entry's fields (an entry with the same fields stores only its values).
    pub master_fields: Vec<Vec<u8>>,
    /// How many of [`RdbStream::entries`], in order, are in this node.
    pub live: usize,
    /// Entries the node holds flagged as deleted (not in [`RdbStream::entries`]).
    pub deleted: u64,
    /// The ID of the node's last entry, deleted or not.
    pub last_id: RdbStreamId,
    /// The listpack's size in bytes.
    pub bytes: usize,
}

/// A stream value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RdbStream {
    /// Entries in ID order.
    pub entries: Vec<RdbStreamEntry>,
    /// The nodes the entries are in, in order; read from a file, and written as given when
    /// they account for every entry in order (a node is written with its live entries only).
    /// Otherwise the writer puts 100 entries in each node.
    pub nodes: Vec<RdbStreamNode>,
    pub last_id: RdbStreamId,
    /// The first entry's ID as Redis records it (0-0 when empty).
    pub first_id: RdbStreamId,
    pub max_deleted_id: RdbStreamId,
    pub entries_added: u64,
    pub groups: Vec<RdbStreamGroup>,
}

fn corrupt(offset: u64, msg: impl Into<String>) -> RdbError {
    RdbError::Corrupt { offset, msg: msg.into() }
}

fn cap(len: u64) -> usize {
    usize::try_from(len.min(PREALLOC_CAP)).unwrap_or(0)
}

fn read_id<R: BufRead>(src: &mut Src<R>, what: &'static str) -> Result<RdbStreamId, RdbError> {
    Ok(RdbStreamId { ms: src.len(what)?, seq: src.len(what)? })
}

fn read_raw_id<R: BufRead>(src: &mut Src<R>, what: &'static str) -> Result<RdbStreamId, RdbError> {
    Ok(RdbStreamId::from_raw(&src.arr::<16>(what)?))
}

fn read_millis<R: BufRead>(src: &mut Src<R>, what: &'static str) -> Result<u64, RdbError> {
    // Negative times (never written by Redis) read as 0 rather than wrapping.
    Ok(u64::try_from(src.millis(what)?).unwrap_or(0))
}

/// Reads a stream of type 15, 19 or 21 (after its type byte and key).
pub(crate) fn read_stream<R: BufRead>(src: &mut Src<R>, type_id: u8) -> Result<RdbStream, RdbError> {
    let mut stream = RdbStream::default();
    let nodes = src.len("stream listpack count")?;
    for _ in 0..nodes {
        let offset = src.pos();
        let key = src.string("stream node key")?;
        let master: [u8; 16] = key
            .as_slice()
            .try_into()
            .map_err(|_| corrupt(offset, format!("stream node key has {} bytes, expected 16", key.len())))?;
        let at = src.pos();
        let blob = src.string("stream listpack")?;
        let elems = listpack_elems(&blob).map_err(|e| blob_err(at, e))?;
        if elems.is_empty() {
            return Err(corrupt(at, "empty listpack inside a stream"));
        }
        let node = read_node(RdbStreamId::from_raw(&master), elems, &mut stream.entries, blob.len())
            .map_err(|msg| corrupt(at, msg))?;
        stream.nodes.push(node);
    }
    let offset = src.pos();
    let length = src.len("stream length")?;
    if length != stream.entries.len() as u64 {
        return Err(corrupt(
            offset,
            format!("stream length is {length} but it holds {} entries", stream.entries.len()),
        ));
    }
    let offset = src.pos();
    stream.last_id = read_id(src, "stream last id")?;
    if stream.entries.last().is_some_and(|e| e.id > stream.last_id) {
        // New IDs are generated above the last ID: entries past it would be overwritten.
        return Err(corrupt(offset, "stream last id is below its last entry"));
    }
    if type_id >= types::STREAM_LISTPACKS_2 {
        stream.first_id = read_id(src, "stream first id")?;
        stream.max_deleted_id = read_id(src, "stream max deleted id")?;
        stream.entries_added = src.len("stream entries added")?;
    } else {
        stream.first_id = stream.entries.first().map(|e| e.id).unwrap_or_default();
        stream.entries_added = length;
    }
    let groups = src.len("stream consumer group count")?;
    stream.groups = Vec::with_capacity(cap(groups));
    for _ in 0..groups {
        stream.groups.push(read_group(src, type_id)?);
    }
    Ok(stream)
}

fn read_group<R: BufRead>(src: &mut Src<R>, type_id: u8) -> Result<RdbStreamGroup, RdbError> {
    let name = src.string("stream consumer group name")?;
    let last_id = read_id(src, "stream consumer group id")?;
    let entries_read = if type_id >= types::STREAM_LISTPACKS_2 {
        // Saved from a signed counter: -1 ("unknown") is stored as 2^64-1.
        Some(src.len("stream consumer group entries read")? as i64)
    } else {
        None
    };
    let count = src.len("stream PEL size")?;
    let mut pending = Vec::with_capacity(cap(count));
    let mut known = BTreeSet::new();
    for _ in 0..count {
        let id = read_raw_id(src, "stream PEL id")?;
        let delivery_time = read_millis(src, "stream PEL delivery time")?;
        let delivery_count = src.len("stream PEL delivery count")?;
        known.insert(id);
        pending.push(RdbPending { id, delivery_time, delivery_count });
    }
    let count = src.len("stream consumer count")?;
    let mut consumers = Vec::with_capacity(cap(count));
    for _ in 0..count {
        let name = src.string("stream consumer name")?;
        let seen_time = read_millis(src, "stream consumer seen time")?;
        if type_id >= types::STREAM_LISTPACKS_3 {
            // Redis 7.2's "active time" has no place in the 7.0 model.
            src.millis("stream consumer active time")?;
        }
        let count = src.len("stream consumer PEL size")?;
        let mut owned = Vec::with_capacity(cap(count));
        for _ in 0..count {
            let offset = src.pos();
            let id = read_raw_id(src, "stream consumer PEL id")?;
            if !known.remove(&id) {
                return Err(corrupt(offset, "consumer PEL entry not found in the group PEL (or owned twice)"));
            }
            owned.push(id);
        }
        consumers.push(RdbConsumer { name, seen_time, pending: owned });
    }
    Ok(RdbStreamGroup { name, last_id, entries_read, pending, consumers })
}

/// The elements of a node's listpack, read in order.
struct Elems<'a>(std::iter::Peekable<std::vec::IntoIter<Elem<'a>>>);

impl Elems<'_> {
    fn bytes(&mut self, what: &str) -> Result<Vec<u8>, String> {
        self.0.next().map(Elem::to_bytes).ok_or_else(|| format!("listpack ends in the {what}"))
    }

    /// An integer element (Redis reads a string element holding one too).
    fn int(&mut self, what: &str) -> Result<i64, String> {
        match self.0.next() {
            Some(Elem::Int(i)) => Ok(i),
            Some(Elem::Str(s)) => crate::encodings::canonical_i64(s).ok_or_else(|| format!("{what} is not an integer")),
            None => Err(format!("listpack ends before the {what}")),
        }
    }

    fn count(&mut self, what: &str) -> Result<u64, String> {
        u64::try_from(self.int(what)?).map_err(|_| format!("negative {what}"))
    }
}

/// Decodes one node's listpack (`bytes` long) into `out`, checking that IDs keep increasing;
/// returns the node's shape.
fn read_node(
    master: RdbStreamId,
    elems: Vec<Elem<'_>>,
    out: &mut Vec<RdbStreamEntry>,
    bytes: usize,
) -> Result<RdbStreamNode, String> {
    let mut it = Elems(elems.into_iter().peekable());
    let valid = it.count("valid entry count")?;
    let deleted = it.count("deleted entry count")?;
    let master_fields = it.count("master field count")?;
    let mut fields = Vec::with_capacity(cap(master_fields));
    for _ in 0..master_fields {
        fields.push(it.bytes("master fields")?);
    }
    if it.int("master terminator")? != 0 {
        return Err("master entry is not terminated by 0".into());
    }
    let mut seen_valid = 0u64;
    let mut last_id = master;
    for _ in 0..valid.saturating_add(deleted) {
        let flags = it.int("entry flags")?;
        // Deltas are stored as signed 64-bit numbers of a wrapping subtraction.
        let ms = master.ms.wrapping_add(it.int("entry ID delta")? as u64);
        let seq = master.seq.wrapping_add(it.int("entry ID delta")? as u64);
        let id = RdbStreamId { ms, seq };
        last_id = id;
        let same_fields = flags & FLAG_SAMEFIELDS != 0;
        let count = if same_fields { master_fields } else { it.count("entry field count")? };
        let mut entry = Vec::with_capacity(cap(count.saturating_mul(2)));
        for field in 0..count {
            match same_fields {
                true => entry.push(fields.get(field as usize).cloned().ok_or("field index out of range")?),
                false => entry.push(it.bytes("entry")?),
            }
            entry.push(it.bytes("entry")?);
        }
        // The element count of the entry, for reading backwards; not needed here.
        it.int("entry element count")?;
        if flags & FLAG_DELETED != 0 {
            continue;
        }
        seen_valid += 1;
        if out.last().is_some_and(|last| last.id >= id) {
            return Err(format!("entry {ms}-{seq} is not after the previous entry"));
        }
        out.push(RdbStreamEntry { id, fields: entry });
    }
    if it.0.peek().is_some() {
        return Err("data after the last entry of a node".into());
    }
    if seen_valid != valid {
        return Err(format!("master entry counts {valid} entries but the node has {seen_valid}"));
    }
    let live = usize::try_from(valid).map_err(|_| "too many entries in a node".to_string())?;
    Ok(RdbStreamNode { master_id: master, master_fields: fields, live, deleted, last_id, bytes })
}

/// Writes the body of a type-19 stream (what Redis 7.0 writes).
pub(crate) fn put_stream<W: Write>(w: &mut W, stream: &RdbStream, compress: bool) -> io::Result<()> {
    let nodes = split_nodes(stream);
    put_len(w, nodes.len() as u64)?;
    for (master_id, master_fields, entries) in nodes {
        put_string(w, &master_id.to_raw(), false)?;
        put_string(w, &node_listpack(master_id, &master_fields, entries), compress)?;
    }
    put_len(w, stream.entries.len() as u64)?;
    for id in [stream.last_id, stream.first_id, stream.max_deleted_id] {
        put_len(w, id.ms)?;
        put_len(w, id.seq)?;
    }
    put_len(w, stream.entries_added)?;
    put_len(w, stream.groups.len() as u64)?;
    for group in &stream.groups {
        put_string(w, &group.name, false)?;
        put_len(w, group.last_id.ms)?;
        put_len(w, group.last_id.seq)?;
        put_len(w, group.entries_read.unwrap_or(-1) as u64)?;
        put_len(w, group.pending.len() as u64)?;
        for p in &group.pending {
            w.write_all(&p.id.to_raw())?;
            w.write_all(&i64::try_from(p.delivery_time).unwrap_or(i64::MAX).to_le_bytes())?;
            put_len(w, p.delivery_count)?;
        }
        put_len(w, group.consumers.len() as u64)?;
        for consumer in &group.consumers {
            put_string(w, &consumer.name, false)?;
            w.write_all(&i64::try_from(consumer.seen_time).unwrap_or(i64::MAX).to_le_bytes())?;
            put_len(w, consumer.pending.len() as u64)?;
            for id in &consumer.pending {
                w.write_all(&id.to_raw())?;
            }
        }
    }
    Ok(())
}

/// A node as written: its master ID and fields, and its entries.
type NodeOut<'a> = (RdbStreamId, Vec<&'a [u8]>, &'a [RdbStreamEntry]);

/// The nodes to write: the stream's own when they account for its entries in order (each
/// node's master ID at or before its first entry and after the previous node's entries),
/// else 100 entries a node, each with its first entry as the master.
fn split_nodes(stream: &RdbStream) -> Vec<NodeOut<'_>> {
    let mut nodes = Vec::with_capacity(stream.nodes.len());
    let mut rest = &stream.entries[..];
    let mut floor = None;
    for node in stream.nodes.iter().filter(|n| n.live > 0) {
        let Some((entries, after)) = rest.split_at_checked(node.live) else { break };
        let in_order = floor.is_none_or(|floor| node.master_id > floor);
        if !in_order || entries.first().is_none_or(|first| first.id < node.master_id) {
            break;
        }
        floor = entries.last().map(|last| last.id);
        nodes.push((node.master_id, node.master_fields.iter().map(Vec::as_slice).collect(), entries));
        rest = after;
    }
    if !rest.is_empty() {
        nodes = stream
            .entries
            .chunks(NODE_MAX_ENTRIES)
            .filter_map(|entries| {
                let first = entries.first()?;
                Some((first.id, first.fields.iter().step_by(2).map(Vec::as_slice).collect(), entries))
            })
            .collect();
    }
    nodes
}

/// One node's listpack: the master entry, then each entry as a delta from `master`, its
/// values alone when its fields are the master fields.
fn node_listpack(master: RdbStreamId, master_fields: &[&[u8]], node: &[RdbStreamEntry]) -> Vec<u8> {
    let mut lp = ListpackBuilder::new();
    let push_int = |lp: &mut ListpackBuilder, n: i64| lp.push(n.to_string().as_bytes());
    push_int(&mut lp, node.len() as i64);
    push_int(&mut lp, 0);
    push_int(&mut lp, master_fields.len() as i64);
    for field in master_fields {
        lp.push(field);
    }
    push_int(&mut lp, 0);
    for entry in node {
        let same = entry.fields.len() == master_fields.len() * 2
            && entry.fields.iter().step_by(2).zip(master_fields).all(|(a, b)| a == b);
        push_int(&mut lp, if same { FLAG_SAMEFIELDS } else { 0 });
        push_int(&mut lp, entry.id.ms.wrapping_sub(master.ms) as i64);
        push_int(&mut lp, entry.id.seq.wrapping_sub(master.seq) as i64);
        let pairs = entry.fields.len() / 2;
        if same {
            for value in entry.fields.iter().skip(1).step_by(2) {
                lp.push(value);
            }
            push_int(&mut lp, 3 + pairs as i64);
        } else {
            push_int(&mut lp, pairs as i64);
            for item in &entry.fields {
                lp.push(item);
            }
            push_int(&mut lp, 4 + 2 * pairs as i64);
        }
    }
    lp.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn sample() -> RdbStream {
        let entries = (0..250u64)
            .map(|i| RdbStreamEntry {
                id: RdbStreamId { ms: 1_700_000_000_000 + i / 3, seq: i % 3 },
                fields: if i.is_multiple_of(7) {
                    vec![b"other".to_vec(), i.to_string().into_bytes(), b"x".to_vec(), vec![b'y'; 100]]
                } else {
                    vec![b"event".to_vec(), b"added".to_vec(), b"jobId".to_vec(), i.to_string().into_bytes()]
                },
            })
            .collect::<Vec<_>>();
        let last = entries.last().unwrap().id;
        RdbStream {
            first_id: entries[0].id,
            entries,
            nodes: Vec::new(),
            last_id: RdbStreamId { ms: last.ms + 5, seq: 0 },
            max_deleted_id: RdbStreamId { ms: 3, seq: 1 },
            entries_added: 300,
            groups: vec![RdbStreamGroup {
                name: b"g".to_vec(),
                last_id: last,
                entries_read: Some(-1),
                pending: vec![RdbPending { id: last, delivery_time: 1_700_000_000_123, delivery_count: 2 }],
                consumers: vec![
                    RdbConsumer { name: b"alice".to_vec(), seen_time: 5, pending: vec![last] },
                    RdbConsumer { name: b"bob".to_vec(), seen_time: 6, pending: Vec::new() },
                ],
            }],
        }
    }

    #[test]
    fn round_trip_and_truncation() {
        let stream = sample();
        let mut buf = Vec::new();
        put_stream(&mut buf, &stream, true).unwrap();
        let mut back = read_stream(&mut Src::new(&buf[..]), types::STREAM_LISTPACKS_2).unwrap();
        assert_eq!(back.nodes.iter().map(|n| n.live).collect::<Vec<_>>(), [100, 100, 50]);
        back.nodes.clear();
        assert_eq!(back, stream);
        for cut in (0..buf.len()).step_by(7) {
            assert!(read_stream(&mut Src::new(&buf[..cut]), types::STREAM_LISTPACKS_2).is_err());
        }
        for i in (0..buf.len()).step_by(3) {
            let mut bad = buf.clone();
            bad[i] ^= 0x5a;
            let _ = read_stream(&mut Src::new(&bad[..]), types::STREAM_LISTPACKS_2);
        }
    }

    /// A node's master ID and fields, as given, and where each node ends are written as
    /// they are; a node is read back with its live entries only.
    #[test]
    fn nodes_are_written_as_given() {
        let mut stream = sample();
        let id = |i: usize| stream.entries[i].id;
        let node = |master_id, master_fields: &[&[u8]], live, last_id| RdbStreamNode {
            master_id,
            master_fields: master_fields.iter().map(|f| f.to_vec()).collect(),
            live,
            deleted: 3,
            last_id,
            bytes: 0,
        };
        let before_first = RdbStreamId { ms: id(0).ms - 1, seq: 7 };
        stream.nodes = vec![
            node(before_first, &[b"other", b"x"], 10, id(9)),
            node(id(10), &[b"event", b"jobId"], 0, id(10)),
            node(id(10), &[b"event", b"jobId"], 200, id(209)),
            node(id(210), &[b"a"], 40, RdbStreamId { ms: id(249).ms + 1, seq: 0 }),
        ];
        let mut buf = Vec::new();
        put_stream(&mut buf, &stream, false).unwrap();
        let back = read_stream(&mut Src::new(&buf[..]), types::STREAM_LISTPACKS_2).unwrap();
        assert_eq!(back.entries, stream.entries);
        // Written with their live entries only: nothing deleted, the empty node left out.
        let shape = |n: &RdbStreamNode, deleted| (n.master_id, n.master_fields.clone(), n.live, deleted);
        let written: Vec<_> = back.nodes.iter().map(|n| shape(n, n.deleted)).collect();
        let given: Vec<_> = stream.nodes.iter().filter(|n| n.live > 0).map(|n| shape(n, 0)).collect();
        assert_eq!(written, given);
        assert_eq!(back.nodes[2].last_id, id(249));
        for node in &back.nodes {
            let entries = node_listpack_len(&back, node);
            assert_eq!(node.bytes, entries);
        }

        // Nodes that do not account for the entries are not used.
        for bad in [
            vec![node(id(0), &[b"x"], 300, id(249))],
            vec![node(id(1), &[b"x"], 250, id(249))],
            vec![node(id(0), &[b"x"], 10, id(9)), node(id(5), &[b"x"], 240, id(249))],
        ] {
            stream.nodes = bad;
            let mut buf = Vec::new();
            put_stream(&mut buf, &stream, false).unwrap();
            let back = read_stream(&mut Src::new(&buf[..]), types::STREAM_LISTPACKS_2).unwrap();
            assert_eq!(back.entries, stream.entries);
            assert_eq!(back.nodes.iter().map(|n| n.live).collect::<Vec<_>>(), [100, 100, 50]);
            assert!(back.nodes.iter().all(|n| stream.entries.iter().any(|e| e.id == n.master_id)));
        }
    }

    /// The size of the listpack `put_stream` writes for `node` of `stream`.
    fn node_listpack_len(stream: &RdbStream, node: &RdbStreamNode) -> usize {
        let start = stream.entries.iter().position(|e| e.id >= node.master_id).unwrap();
        let fields: Vec<&[u8]> = node.master_fields.iter().map(Vec::as_slice).collect();
        node_listpack(node.master_id, &fields, &stream.entries[start..start + node.live]).len()
    }

    #[test]
    fn nodes_hold_at_most_100_entries() {
        let stream = sample();
        let nodes = split_nodes(&stream);
        assert!(nodes.iter().all(|(_, _, n)| !n.is_empty() && n.len() <= NODE_MAX_ENTRIES));
        assert_eq!(nodes.iter().map(|(_, _, n)| n.len()).sum::<usize>(), stream.entries.len());
    }
}
