//! Where Redis would keep each entry of a stream: its radix tree of listpack nodes
//! (`t_stream.c`: `streamAppendItem`, `streamTrim`, `streamIteratorRemoveEntry`).
//!
//! StayKV keeps a stream's entries in one ordered map, but Redis's layout shows in replies:
//! `~` trimming removes whole nodes only, and stops before a node that would take it past
//! its LIMIT; XINFO STREAM counts the nodes (`radix-tree-keys`) and the radix tree's own
//! nodes. So a stream keeps, for each node, what Redis reads off the node's listpack: the
//! entries present and those flagged deleted, the listpack's size, the master entry's
//! fields and the last ID added. Sizes follow listpack's encodings, so a node is closed
//! where Redis closes it (`stream-node-max-bytes`, `stream-node-max-entries`).
//!
//! Deleted entries are not kept, only counted: a snapshot writes each node with the entries
//! present, so after a restart a node has no deleted entries and is that much smaller.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use staykv_rdb::{listpack_elem_len, listpack_int_len, RdbStreamId, RdbStreamNode};

use super::StreamId;

/// A listpack's header (total bytes, element count) and its end marker.
const LISTPACK_OVERHEAD: usize = 7;
/// The most a node may hold (`STREAM_LISTPACK_MAX_SIZE`); `stream-node-max-bytes 0` means it.
const LISTPACK_MAX_SIZE: u64 = 1 << 30;
/// An entry's flag: it has the master entry's fields, and stores its values only.
const FLAG_SAMEFIELDS: i64 = 2;

/// When a node is full: `stream-node-max-bytes` and `stream-node-max-entries` (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

impl Default for NodeLimits {
    fn default() -> NodeLimits {
        NodeLimits { max_bytes: 4096, max_entries: 100 }
    }
}

impl NodeLimits {
    /// The LIMIT of a `~` trim that gives none: 100 nodes' worth, within Redis's bounds
    /// (10,000 when nodes have no entry limit, at most 1,000,000).
    pub fn default_trim_limit(self) -> u64 {
        match self.max_entries.saturating_mul(100) {
            0 => 10_000,
            n => n.min(1_000_000),
        }
    }

    /// Whether `node` takes no entry of `adding` bytes of fields and values more.
    fn is_full(self, node: &Node, adding: usize) -> bool {
        let max_bytes = match self.max_bytes {
            0 => LISTPACK_MAX_SIZE,
            n => n.min(LISTPACK_MAX_SIZE),
        };
        let bytes = (node.bytes() as u64).saturating_add(adding as u64);
        bytes >= max_bytes || (self.max_entries > 0 && node.live + node.deleted >= self.max_entries)
    }
}

/// The two parameters as CONFIG SET leaves them, read by every XADD.
#[derive(Debug)]
pub struct NodeConfig {
    max_bytes: AtomicU64,
    max_entries: AtomicU64,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        let limits = NodeLimits::default();
        NodeConfig { max_bytes: AtomicU64::new(limits.max_bytes), max_entries: AtomicU64::new(limits.max_entries) }
    }
}

impl NodeConfig {
    pub fn limits(&self) -> NodeLimits {
        NodeLimits {
            max_bytes: self.max_bytes.load(Ordering::Relaxed),
            max_entries: self.max_entries.load(Ordering::Relaxed),
        }
    }

    pub fn set_max_bytes(&self, bytes: u64) {
        self.max_bytes.store(bytes, Ordering::Relaxed);
    }

    pub fn set_max_entries(&self, entries: u64) {
        self.max_entries.store(entries, Ordering::Relaxed);
    }
}

/// One node: what its listpack would hold besides the entries' contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Entries present.
    live: u64,
    /// Entries flagged deleted (by XDEL, or an exact trim that stopped inside the node).
    deleted: u64,
    /// The listpack's bytes but for the two counters, whose encodings grow with them.
    body: usize,
    /// The last ID added, present or not.
    last: StreamId,
    /// The master entry's fields: the fields of the entry that opened the node.
    master_fields: Vec<Bytes>,
}

impl Node {
    /// A node opened for an entry with `fields` (field/value pairs, flattened).
    fn open(fields: &[Bytes], id: StreamId) -> Node {
        let master_fields: Vec<Bytes> = fields.iter().step_by(2).cloned().collect();
        let body = LISTPACK_OVERHEAD
            + listpack_int_len(master_fields.len() as i64)
            + master_fields.iter().map(|f| listpack_elem_len(f)).sum::<usize>()
            + listpack_int_len(0);
        Node { live: 0, deleted: 0, body, last: id, master_fields }
    }

    /// The listpack's size in bytes (`lpBytes`).
    pub fn bytes(&self) -> usize {
        self.body + counter_len(self.live) + counter_len(self.deleted)
    }

    /// Entries present.
    pub fn live(&self) -> u64 {
        self.live
    }

    /// The last ID added to the node, present or not.
    pub fn last(&self) -> StreamId {
        self.last
    }

    /// Add entry `id` to the node whose key is `master`, as `streamAppendItem` encodes it.
    fn push(&mut self, master: StreamId, id: StreamId, fields: &[Bytes]) {
        let pairs = fields.len() / 2;
        let same = pairs == self.master_fields.len() && fields.iter().step_by(2).eq(&self.master_fields);
        let id_deltas = listpack_int_len(id.ms.wrapping_sub(master.ms) as i64)
            + listpack_int_len(id.seq.wrapping_sub(master.seq) as i64);
        let (flags, items, element_count) = if same {
            let values = fields.iter().skip(1).step_by(2).map(|v| listpack_elem_len(v)).sum::<usize>();
            (FLAG_SAMEFIELDS, values, 3 + pairs)
        } else {
            let all = fields.iter().map(|x| listpack_elem_len(x)).sum::<usize>();
            (0, listpack_int_len(pairs as i64) + all, 4 + 2 * pairs)
        };
        self.body += listpack_int_len(flags) + id_deltas + items + listpack_int_len(element_count as i64);
        self.live += 1;
        self.last = id;
    }

    /// Flag `n` of the node's entries deleted.
    fn flag_deleted(&mut self, n: u64) {
        self.live -= n.min(self.live);
        self.deleted += n;
    }
}

/// A listpack integer's size for a count.
fn counter_len(n: u64) -> usize {
    listpack_int_len(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A stream's nodes, keyed by master ID (the radix tree's keys).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nodes(BTreeMap<StreamId, Node>);

impl Nodes {
    /// Record entry `id` (above every ID so far) with `fields`: in the last node, or in a new
    /// one when that is full.
    pub fn append(&mut self, id: StreamId, fields: &[Bytes], limits: NodeLimits) {
        let adding = fields.iter().map(Bytes::len).sum::<usize>();
        let tail = self.0.last_entry().filter(|tail| !limits.is_full(tail.get(), adding));
        let (master, node) = match tail {
            Some(tail) => (*tail.key(), tail.into_mut()),
            None => (id, self.0.entry(id).or_insert_with(|| Node::open(fields, id))),
        };
        node.push(master, id, fields);
    }

    /// The nodes Redis would have filled with `entries`, added in order under `limits`.
    pub fn laid_out(entries: &BTreeMap<StreamId, Vec<Bytes>>, limits: NodeLimits) -> Nodes {
        let mut nodes = Nodes::default();
        for (id, fields) in entries {
            nodes.append(*id, fields, limits);
        }
        nodes
    }

    /// Entry `id`, present, was deleted: it is flagged, and its node goes with its last
    /// entry present.
    pub fn delete(&mut self, id: StreamId) {
        let Some((&master, node)) = self.0.range_mut(..=id).next_back() else { return };
        if node.live <= 1 {
            self.0.remove(&master);
        } else {
            node.flag_deleted(1);
        }
    }

    /// The oldest node.
    pub fn first(&self) -> Option<&Node> {
        self.0.first_key_value().map(|(_, node)| node)
    }

    /// Remove the oldest node.
    pub fn remove_first(&mut self) {
        self.0.pop_first();
    }

    /// Flag `n` entries of the oldest node deleted (an exact trim that stops inside it).
    pub fn flag_deleted_in_first(&mut self, n: u64) {
        if let Some(mut first) = self.0.first_entry() {
            first.get_mut().flag_deleted(n);
        }
    }

    /// How many nodes (XINFO's `radix-tree-keys`).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many nodes Redis's radix tree (`rax.c`) needs for these keys (XINFO's
    /// `radix-tree-nodes`). The keys are 16 bytes each, so none is a prefix of another: a
    /// compressed radix tree has its head, a node where keys part and one for each of its
    /// branches, and a node for each key, and every prefix where keys part is the common
    /// prefix of two neighbours in order.
    pub fn radix_tree_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self.0.keys().map(|id| raw_key(*id)).collect();
        let mut nodes: HashSet<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        nodes.insert(&[]);
        for pair in keys.windows(2) {
            let [a, b] = pair else { continue };
            let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            nodes.extend([a.get(..common), a.get(..=common), b.get(..=common)].into_iter().flatten());
        }
        nodes.len()
    }

    /// Heap bytes, for MEMORY USAGE and INFO.
    pub fn heap_size(&self) -> usize {
        let per_node = std::mem::size_of::<(StreamId, Node)>() + 16;
        self.0.values().map(|n| per_node + n.master_fields.iter().map(|f| f.len() + 32).sum::<usize>()).sum()
    }

    /// The nodes as an RDB file holds them.
    pub fn to_rdb(&self) -> Vec<RdbStreamNode> {
        let id = |id: StreamId| RdbStreamId { ms: id.ms, seq: id.seq };
        let nodes = self.0.iter().map(|(master, node)| RdbStreamNode {
            master_id: id(*master),
            master_fields: node.master_fields.iter().map(|f| f.to_vec()).collect(),
            live: usize::try_from(node.live).unwrap_or(usize::MAX),
            deleted: node.deleted,
            last_id: id(node.last),
            bytes: node.bytes(),
        });
        nodes.collect()
    }

    /// The nodes an RDB file gives for `entries`, if they account for them in order; `None`
    /// when they do not (the caller then lays the entries out afresh).
    pub fn from_rdb(nodes: &[RdbStreamNode], entries: &BTreeMap<StreamId, Vec<Bytes>>) -> Option<Nodes> {
        let mut out = BTreeMap::new();
        let mut rest = entries.keys().peekable();
        for node in nodes {
            let master = StreamId::new(node.master_id.ms, node.master_id.seq);
            let last = StreamId::new(node.last_id.ms, node.last_id.seq);
            let mut ids = (0..node.live).map_while(|_| rest.next());
            if out.last_key_value().is_some_and(|(_, prev): (_, &Node)| prev.last >= master)
                || !ids.all(|id| (master..=last).contains(id))
            {
                return None;
            }
            let (live, deleted) = (node.live as u64, node.deleted);
            let body = node.bytes.saturating_sub(counter_len(live) + counter_len(deleted));
            let master_fields = node.master_fields.iter().map(|f| Bytes::copy_from_slice(f)).collect();
            out.insert(master, Node { live, deleted, body, last, master_fields });
        }
        let counted = out.values().map(|n: &Node| n.live).sum::<u64>();
        (rest.next().is_none() && counted == entries.len() as u64).then_some(Nodes(out))
    }
}

/// A radix-tree key: the master ID, milliseconds then sequence, big-endian.
fn raw_key(id: StreamId) -> [u8; 16] {
    let mut key = [0; 16];
    for (byte, value) in key.iter_mut().zip(id.ms.to_be_bytes().into_iter().chain(id.seq.to_be_bytes())) {
        *byte = value;
    }
    key
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::stream::Stream;
    use crate::value::Value;

    /// A stream of `n` entries whose fields vary: the master fields or others, integers
    /// (stored as such), long strings, big ID deltas.
    fn varied_stream(n: u64, limits: NodeLimits) -> Stream {
        let mut s = Stream::default();
        for i in 0..n {
            let id = StreamId::new(1_000 + i * i * 977, i % 7);
            let fields: Vec<Bytes> = match i % 5 {
                0 | 1 => vec!["event".into(), i.to_string().into(), "user".into(), "x".repeat(i as usize % 90).into()],
                2 => vec!["event".into(), "-12345678901".into()],
                3 => vec!["other".into(), "y".repeat(5_000).into(), "7".into(), "".into()],
                _ => vec!["event".into(), "-0".into(), "user".into(), "007".into()],
            };
            s.append(id, fields, limits);
        }
        s
    }

    /// A node's size is the size of the listpack an RDB file holds for it.
    #[test]
    fn sizes_are_those_of_the_listpacks_written() {
        for limits in [NodeLimits::default(), NodeLimits { max_bytes: 0, max_entries: 0 }] {
            let stream = varied_stream(300, limits);
            let ours: Vec<usize> = stream.nodes.0.values().map(Node::bytes).collect();
            let payload = staykv_rdb::encode_dump_payload(
                &crate::rdbconv::to_rdb(&Value::Stream(Box::new(stream.clone()))),
                staykv_rdb::Layout::BySize,
            );
            let Ok(staykv_rdb::RdbValue::Stream(back)) = staykv_rdb::decode_dump_payload(&payload) else {
                panic!("not a stream")
            };
            assert_eq!(back.nodes.iter().map(|n| n.bytes).collect::<Vec<_>>(), ours);
            // Unlimited, one node; else many (every fifth entry has 5,000 bytes).
            assert_eq!(ours.len() == 1, limits.max_entries == 0, "{ours:?}");
        }
    }

    /// A node closes at `stream-node-max-entries` entries, or once its listpack and the new
    /// entry's fields and values reach `stream-node-max-bytes`.
    #[test]
    fn nodes_close_at_either_limit() {
        let limits = NodeLimits { max_bytes: 4096, max_entries: 100 };
        let s = varied_stream(400, limits);
        for node in s.nodes.0.values() {
            assert!(node.live <= 100 && node.bytes() < 4096 + 5_100, "{node:?}");
        }
        let mut s = Stream::default();
        let pair = || vec![Bytes::from("f"), Bytes::from("v".repeat(300))];
        for i in 1..=30 {
            s.append(StreamId::new(i, 0), pair(), limits);
        }
        // 18 bytes of listpack header, end marker and master entry, then 312 an entry (its
        // value with a 2-byte header and a 2-byte back-length, four small integers): with
        // 13 entries, 4,074 bytes and the 14th's 301 would reach 4096.
        let first = s.nodes.first().unwrap();
        assert_eq!((first.live, first.bytes()), (13, 18 + 13 * 312));
        assert_eq!(s.nodes.len(), 3);
    }

    #[test]
    fn radix_tree_node_counts() {
        let mut nodes = Nodes::default();
        assert_eq!(nodes.radix_tree_nodes(), 1);
        let f = [Bytes::from("f"), Bytes::from("v")];
        let one_a_node = NodeLimits { max_bytes: 0, max_entries: 1 };
        nodes.append(StreamId::new(1, 0), &f, one_a_node);
        assert_eq!(nodes.radix_tree_nodes(), 2);
        // Keys that part at their last byte: the head, the parting node, two keys.
        nodes.append(StreamId::new(1, 5), &f, one_a_node);
        assert_eq!(nodes.radix_tree_nodes(), 4);
        // One parting at the first byte: the head parts, two branches, a key each; the
        // earlier parting node and its keys.
        nodes.append(StreamId::new(1 << 60, 0), &f, one_a_node);
        assert_eq!(nodes.radix_tree_nodes(), 7);
    }

    #[test]
    fn default_trim_limit_is_bounded_like_redis() {
        let limit = |max_entries| NodeLimits { max_bytes: 4096, max_entries }.default_trim_limit();
        assert_eq!((limit(100), limit(0), limit(20_000), limit(u64::MAX)), (10_000, 10_000, 1_000_000, 1_000_000));
        assert_eq!(limit(3), 300);
    }
}
