//! Values to and from the RDB object model (`staykv_rdb::RdbValue`): DUMP/RESTORE use it,
//! and so do snapshots, import and export.

use bytes::Bytes;
use staykv_rdb::{Layout, RdbConsumer, RdbPending, RdbStream, RdbStreamEntry, RdbStreamGroup, RdbStreamId, RdbValue};

use crate::list::List;
use crate::small_bytes::SmallBytes;
use crate::stream::{Consumer, Group, NodeLimits, Nodes, Pending, Stream, StreamId, MAX_DELIVERY_COUNT};
use crate::value::{Encoding, Value};

/// The RDB form of a value.
pub fn to_rdb(value: &Value) -> RdbValue {
    match value {
        Value::Str(s) => RdbValue::String(s.to_vec()),
        Value::List(l) => RdbValue::List(l.iter().map(|e| e.to_vec()).collect()),
        Value::Hash(h) => RdbValue::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()),
        Value::Set(s) => RdbValue::Set(s.iter().map(|m| m.to_vec()).collect()),
        Value::ZSet(z) => sorted_set_to_rdb(z),
        Value::Stream(s) => RdbValue::Stream(Box::new(stream_to_rdb(s))),
    }
}

/// The RDB form of a sorted set.
pub fn sorted_set_to_rdb(set: &crate::zset::ZSet) -> RdbValue {
    RdbValue::SortedSet(set.iter().map(|(member, score)| (member.to_vec(), score)).collect())
}

/// The layout DUMP writes `value` in: the big encoding when OBJECT ENCODING reports it (given
/// how the key was built, `hint`), as Redis writes the encoding it holds.
pub fn dump_layout(value: &Value, hint: Encoding) -> Layout {
    match value.encoding_with(hint) {
        "hashtable" | "skiplist" => Layout::Big,
        _ => Layout::BySize,
    }
}

/// A value from its RDB form. `None` for an empty collection (Redis never stores one).
pub fn from_rdb(value: RdbValue) -> Option<Value> {
    let value = match value {
        RdbValue::String(s) => Value::Str(SmallBytes::from_owned(Bytes::from(s))),
        RdbValue::List(l) => Value::List(Box::new(List::from_vecs(l))),
        RdbValue::Hash(pairs) => Value::Hash(Box::new(pairs.into_iter().collect())),
        RdbValue::Set(members) => {
            let mut set = crate::set::Set::default();
            set.extend_owned(members);
            Value::Set(Box::new(set))
        }
        RdbValue::SortedSet(pairs) => {
            // As Redis loads one: small sets end up in the listpack encoding. Redis fills a
            // skip list first: one that stays a skip list (a member over 64 bytes) keeps its
            // -0 scores, which a listpack stores as 0. Without a -0 the order makes no
            // difference, and a small set goes straight into its listpack.
            let negative_zero = pairs.iter().any(|(_, score)| crate::zset::is_negative_zero(*score));
            let mut set = crate::zset::ZSet::with_size_hint(if negative_zero { usize::MAX } else { pairs.len() });
            for (member, score) in pairs {
                set.insert(Bytes::from(member), score);
            }
            set.convert_to_listpack_if_needed();
            Value::ZSet(Box::new(set))
        }
        RdbValue::Stream(stream) => Value::Stream(Box::new(stream_from_rdb(*stream))),
    };
    (!value.is_empty_collection()).then_some(value)
}

/// Whether RESTORE may load `value`: Redis 7.0 refuses a payload whose set or sorted set
/// names a member twice ("Bad data format"). (Snapshots and imports take such values as the
/// reader passes them. Redis 7.0 does load a small hash naming a field twice, keeping both:
/// StayKV keeps one. A NaN score the reader refuses in every encoding; Redis 7.0 loads one
/// in a listpack, where it breaks the set's order.)
pub fn restorable(value: &RdbValue) -> bool {
    match value {
        RdbValue::Set(members) => staykv_rdb::all_distinct(members.iter().map(Vec::as_slice)),
        RdbValue::SortedSet(pairs) => staykv_rdb::all_distinct(pairs.iter().map(|(m, _)| m.as_slice())),
        _ => true,
    }
}

fn id_to_rdb(id: &StreamId) -> RdbStreamId {
    RdbStreamId { ms: id.ms, seq: id.seq }
}

fn id_from_rdb(id: RdbStreamId) -> StreamId {
    StreamId::new(id.ms, id.seq)
}

fn stream_to_rdb(stream: &Stream) -> RdbStream {
    let entries = stream
        .entries
        .iter()
        .map(|(id, fields)| RdbStreamEntry { id: id_to_rdb(id), fields: fields.iter().map(|f| f.to_vec()).collect() })
        .collect();
    let groups = stream
        .groups
        .iter()
        .map(|(name, group)| RdbStreamGroup {
            name: name.to_vec(),
            last_id: id_to_rdb(&group.last_id),
            entries_read: Some(group.entries_read),
            pending: group
                .pel
                .iter()
                .map(|(id, p)| RdbPending {
                    id: id_to_rdb(id),
                    delivery_time: p.delivery_time,
                    delivery_count: p.delivery_count,
                })
                .collect(),
            consumers: group
                .consumers
                .iter()
                .map(|(name, c)| RdbConsumer {
                    name: name.to_vec(),
                    seen_time: c.seen_time,
                    pending: c.pending.iter().map(id_to_rdb).collect(),
                })
                .collect(),
        })
        .collect();
    RdbStream {
        entries,
        nodes: stream.nodes.to_rdb(),
        last_id: id_to_rdb(&stream.last_id),
        first_id: id_to_rdb(&stream.first_id()),
        max_deleted_id: id_to_rdb(&stream.max_deleted),
        entries_added: stream.entries_added,
        groups,
    }
}

fn stream_from_rdb(rdb: RdbStream) -> Stream {
    let mut stream = Stream {
        entries: rdb
            .entries
            .into_iter()
            .map(|e| (id_from_rdb(e.id), e.fields.into_iter().map(Bytes::from).collect()))
            .collect(),
        nodes: Nodes::default(),
        last_id: id_from_rdb(rdb.last_id),
        max_deleted: id_from_rdb(rdb.max_deleted_id),
        entries_added: rdb.entries_added,
        groups: Default::default(),
    };
    // A file's nodes are kept; nodes that do not fit the entries (not from Redis or StayKV)
    // are laid out afresh.
    stream.nodes = Nodes::from_rdb(&rdb.nodes, &stream.entries)
        .unwrap_or_else(|| Nodes::laid_out(&stream.entries, NodeLimits::default()));
    for group in rdb.groups {
        let last_id = id_from_rdb(group.last_id);
        // Files from Redis 6.2 and older have no read counter: Redis estimates it on load.
        let entries_read = group.entries_read.unwrap_or_else(|| stream.estimate_offset(last_id));
        let mut owners = std::collections::HashMap::new();
        let mut consumers = std::collections::BTreeMap::new();
        for consumer in group.consumers {
            let name = Bytes::from(consumer.name);
            let pending = consumer.pending.into_iter().map(id_from_rdb).collect::<std::collections::BTreeSet<_>>();
            owners.extend(pending.iter().map(|id| (*id, name.clone())));
            consumers.insert(name, Consumer { seen_time: consumer.seen_time, pending });
        }
        // A pending entry no consumer owns (only in a damaged file) has nobody to claim it
        // back from, so it is dropped.
        let pel = group
            .pending
            .into_iter()
            .filter_map(|p| {
                let id = id_from_rdb(p.id);
                let consumer = owners.get(&id)?.clone();
                let delivery_count = p.delivery_count.min(MAX_DELIVERY_COUNT);
                Some((id, Pending { consumer, delivery_time: p.delivery_time, delivery_count }))
            })
            .collect();
        stream.groups.insert(Bytes::from(group.name), Group { last_id, entries_read, pel, consumers });
    }
    stream
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    fn scores(value: &Value) -> Vec<(Vec<u8>, u64)> {
        let Value::ZSet(z) = value else { panic!("not a sorted set") };
        z.iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect()
    }

    /// Redis loads a sorted set into a skip list, then a listpack if it is small: one that
    /// stays a skip list keeps its -0 scores (RESTORE of Redis's own DUMP answers `-0`).
    #[test]
    fn a_loaded_skip_list_keeps_its_negative_zeros() {
        let long = vec![b'L'; 70];
        let loaded = from_rdb(RdbValue::SortedSet(vec![(b"a".to_vec(), -0.0), (long.clone(), 1.0)])).unwrap();
        assert_eq!(loaded.encoding(), "skiplist");
        assert_eq!(scores(&loaded), [(b"a".to_vec(), (-0.0f64).to_bits()), (long, 1.0f64.to_bits())]);
        // Small enough for a listpack, which stores 0.
        let small = from_rdb(RdbValue::SortedSet(vec![(b"a".to_vec(), -0.0), (b"b".to_vec(), 1.0)])).unwrap();
        assert_eq!(small.encoding(), "listpack");
        assert_eq!(scores(&small)[0], (b"a".to_vec(), 0.0f64.to_bits()));
    }
}
