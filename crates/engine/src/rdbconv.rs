//! Values to and from the RDB object model (`staykv_rdb::RdbValue`): DUMP/RESTORE use it,
//! and so do snapshots, import and export.

use std::collections::VecDeque;

use bytes::Bytes;
use staykv_rdb::RdbValue;

use crate::value::{HashMap, HashSet, Value};

/// The RDB form of a value.
pub fn to_rdb(value: &Value) -> RdbValue {
    match value {
        Value::Str(s) => RdbValue::String(s.to_vec()),
        Value::List(l) => RdbValue::List(l.iter().map(|e| e.to_vec()).collect()),
        Value::Hash(h) => RdbValue::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()),
        Value::Set(s) => RdbValue::Set(s.iter().map(|m| m.to_vec()).collect()),
        Value::ZSet(z) => RdbValue::SortedSet(z.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
    }
}

/// A value from its RDB form. `None` for an empty collection (Redis never stores one).
pub fn from_rdb(value: RdbValue) -> Option<Value> {
    let value = match value {
        RdbValue::String(s) => Value::Str(Bytes::from(s)),
        RdbValue::List(l) => Value::List(l.into_iter().map(Bytes::from).collect::<VecDeque<_>>()),
        RdbValue::Hash(pairs) => {
            let mut hash = HashMap::default();
            hash.extend(pairs.into_iter().map(|(f, v)| (Bytes::from(f), Bytes::from(v))));
            Value::Hash(hash)
        }
        RdbValue::Set(members) => {
            let mut set = HashSet::default();
            set.extend(members.into_iter().map(Bytes::from));
            Value::Set(set)
        }
        RdbValue::SortedSet(pairs) => {
            // As Redis loads one: small sets end up in the listpack encoding.
            let mut set = crate::zset::ZSet::with_size_hint(pairs.len());
            for (member, score) in pairs {
                set.insert(Bytes::from(member), score);
            }
            set.convert_to_listpack_if_needed();
            Value::ZSet(set)
        }
    };
    (!value.is_empty_collection()).then_some(value)
}
