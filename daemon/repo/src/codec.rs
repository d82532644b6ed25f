//! Compact, deterministic encoding of metadata plaintexts: postcard 1.x (serde).
//!
//! Why postcard: deterministic (needed for content-addressed tree ids and test vectors),
//! varint-compact (trees of millions of nodes), a small fixed wire spec
//! (<https://postcard.jamesmunns.com/wire-format>), and it never pre-allocates from a
//! declared length (serde caps size hints), so hostile lengths cannot exhaust memory.
//! Human inspection is the job of a `lethe repo cat` command, as all of it is encrypted anyway.
//! Field order in the structs *is* the format: append-only changes need a new format version.

use crate::error::{RepoError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encode a value.
pub fn encode<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|e| RepoError::Decode {
        what,
        detail: format!("encode: {e}"),
    })
}

/// Decode a value; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let (v, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| RepoError::Decode {
        what,
        detail: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(RepoError::Decode {
            what,
            detail: format!("{} trailing bytes", rest.len()),
        });
    }
    Ok(v)
}
