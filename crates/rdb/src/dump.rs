//! DUMP / RESTORE payloads.

use crate::crc64::crc64;
use crate::reader::{is_empty_collection, read_object, Src};
use crate::{types, Layout, RdbError, RdbValue, MAX_SUPPORTED_VERSION, RDB_VERSION};

/// Serializes a value the way `DUMP` does: object type byte, object, 2-byte
/// little-endian RDB version (10) and the 8-byte little-endian CRC-64 of everything
/// before it. The result can be given to Redis 7.0's `RESTORE`.
///
/// Encodings are those of [`crate::RdbWriter`], except that [`Layout::Big`] writes a hash,
/// set or sorted set in its big encoding whatever its size. An empty collection produces a
/// payload that Redis rejects (Redis has no empty collections).
pub fn encode_dump_payload(value: &RdbValue, layout: Layout) -> Vec<u8> {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = crate::writer::put_typed_object(&mut buf, value, layout, true);
    buf.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// Decodes a `DUMP` payload (as produced by Redis up to 7.0, or by
/// [`encode_dump_payload`]).
///
/// Returns [`RdbError::BadDumpPayload`] — whose message is Redis's "DUMP payload version
/// or checksum are wrong" — when the payload is too short, its RDB version is above 10,
/// or its CRC-64 does not match. Other errors (offsets relative to the payload start)
/// describe a malformed object: Redis answers those with "Bad data format". Module
/// values are refused with [`RdbError::Unsupported`], empty collections with
/// [`RdbError::Corrupt`].
pub fn decode_dump_payload(payload: &[u8]) -> Result<RdbValue, RdbError> {
    let Some((body_and_ver, crc_bytes)) = payload.split_last_chunk::<8>() else {
        return Err(RdbError::BadDumpPayload);
    };
    let Some((body, ver_bytes)) = body_and_ver.split_last_chunk::<2>() else {
        return Err(RdbError::BadDumpPayload);
    };
    let version = u16::from_le_bytes(*ver_bytes);
    if u32::from(version) > MAX_SUPPORTED_VERSION {
        return Err(RdbError::BadDumpPayload);
    }
    if crc64(0, body_and_ver) != u64::from_le_bytes(*crc_bytes) {
        return Err(RdbError::BadDumpPayload);
    }
    let mut src = Src::new(body);
    let type_id = src.u8("object type")?;
    if !types::is_object_type(type_id) {
        return Err(RdbError::Corrupt { offset: 0, msg: format!("unknown object type {type_id}") });
    }
    let value = read_object(&mut src, type_id, 0)?.ok_or_else(|| RdbError::Unsupported {
        offset: 0,
        msg: format!("values of RDB type {type_id} (module) are not supported"),
    })?;
    if src.pos() != body.len() as u64 {
        return Err(RdbError::Corrupt {
            offset: src.pos(),
            msg: format!("{} bytes of garbage after the object", body.len() as u64 - src.pos()),
        });
    }
    if is_empty_collection(&value) {
        return Err(RdbError::Corrupt { offset: 0, msg: "empty collection".into() });
    }
    Ok(value)
}
