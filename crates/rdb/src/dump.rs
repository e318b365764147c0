//! DUMP / RESTORE payloads, and FUNCTION DUMP / RESTORE's.
//!
//! Both end the same way: the 2-byte little-endian RDB version, then the 8-byte
//! little-endian CRC-64 of everything before it.

use crate::crc64::crc64;
use crate::reader::{is_empty_collection, read_library, read_object, Src};
use crate::{opcode, types, Layout, RdbError, RdbValue, MAX_SUPPORTED_VERSION, RDB_VERSION};

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
    seal(buf)
}

/// Appends the RDB version and the checksum to a payload's body.
fn seal(mut body: Vec<u8>) -> Vec<u8> {
    body.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// A payload's body, once its RDB version (at most 10) and checksum are found right.
fn open(payload: &[u8]) -> Result<&[u8], RdbError> {
    let Some((body_and_ver, crc_bytes)) = payload.split_last_chunk::<8>() else {
        return Err(RdbError::BadDumpPayload);
    };
    let Some((body, ver_bytes)) = body_and_ver.split_last_chunk::<2>() else {
        return Err(RdbError::BadDumpPayload);
    };
    let version = u16::from_le_bytes(*ver_bytes);
    if u32::from(version) > MAX_SUPPORTED_VERSION || crc64(0, body_and_ver) != u64::from_le_bytes(*crc_bytes) {
        return Err(RdbError::BadDumpPayload);
    }
    Ok(body)
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
    let body = open(payload)?;
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

/// Serializes function libraries (their sources, `#!lua name=…` line included) the way
/// `FUNCTION DUMP` does: a `FUNCTION2` opcode and the source of each, then the version and
/// checksum. The result can be given to Redis 7.0's `FUNCTION RESTORE`.
pub fn encode_functions_payload<'a>(libraries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut buf = Vec::new();
    for code in libraries {
        buf.push(opcode::FUNCTION2);
        // Writing into a Vec cannot fail.
        let _ = crate::writer::put_string(&mut buf, code, true);
    }
    seal(buf)
}

/// Why a `FUNCTION RESTORE` payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionsPayloadError {
    /// Too short, from a later RDB version, or its checksum does not match.
    BadDumpPayload,
    /// Something other than a library where one was expected (a key's DUMP payload).
    NotAFunction,
    /// A library cut short or malformed.
    BadLibrary,
}

impl FunctionsPayloadError {
    /// Redis 7.0's reply text, without the `ERR ` prefix.
    pub fn message(self) -> &'static str {
        match self {
            FunctionsPayloadError::BadDumpPayload => "DUMP payload version or checksum are wrong",
            FunctionsPayloadError::NotAFunction => "given type is not a function",
            FunctionsPayloadError::BadLibrary => "Failed loading library payload",
        }
    }
}

/// Decodes a `FUNCTION DUMP` payload (Redis 7.0's, or [`encode_functions_payload`]'s) into
/// library sources, in their order.
pub fn decode_functions_payload(payload: &[u8]) -> Result<Vec<Vec<u8>>, FunctionsPayloadError> {
    let body = open(payload).map_err(|_| FunctionsPayloadError::BadDumpPayload)?;
    let mut src = Src::new(body);
    let mut libraries = Vec::new();
    while src.pos() < body.len() as u64 {
        let kind = src.u8("function opcode").map_err(|_| FunctionsPayloadError::BadLibrary)?;
        if kind != opcode::FUNCTION2 && kind != opcode::FUNCTION_PRE_GA {
            return Err(FunctionsPayloadError::NotAFunction);
        }
        libraries.push(read_library(&mut src, kind).map_err(|_| FunctionsPayloadError::BadLibrary)?);
    }
    Ok(libraries)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn functions_payload_round_trips() {
        let libraries: [&[u8]; 2] =
            [b"#!lua name=a\nredis.register_function('f', function() return 1 end)", &[b'x'; 300]];
        let payload = encode_functions_payload(libraries);
        assert_eq!(decode_functions_payload(&payload).unwrap(), libraries.map(<[u8]>::to_vec));
        assert_eq!(decode_functions_payload(&encode_functions_payload([])).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn functions_payload_of_a_release_candidate_reads_as_a_source() {
        // FUNCTION_PRE_GA: name, engine, a description (flag 1, then the text), code.
        let mut body = vec![opcode::FUNCTION_PRE_GA];
        for part in [&b"lib"[..], b"LUA", b"\x01", b"about", b"return 1"] {
            if part != b"\x01" {
                body.push(part.len() as u8);
            }
            body.extend_from_slice(part);
        }
        assert_eq!(decode_functions_payload(&seal(body)).unwrap(), [b"#!LUA name=lib\nreturn 1".to_vec()]);
    }

    #[test]
    fn bad_functions_payloads_are_named() {
        let good = encode_functions_payload([&b"#!lua name=a\nreturn 1"[..]]);
        let mut flipped = good.clone();
        flipped[3] ^= 1;
        assert_eq!(decode_functions_payload(&flipped), Err(FunctionsPayloadError::BadDumpPayload));
        assert_eq!(decode_functions_payload(&good[..9]), Err(FunctionsPayloadError::BadDumpPayload));
        let key = encode_dump_payload(&RdbValue::String(b"v".to_vec()), Layout::BySize);
        assert_eq!(decode_functions_payload(&key), Err(FunctionsPayloadError::NotAFunction));
        assert_eq!(
            decode_functions_payload(&seal(vec![opcode::FUNCTION2, 9, b'#'])),
            Err(FunctionsPayloadError::BadLibrary)
        );
    }
}
