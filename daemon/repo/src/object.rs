//! The 36-byte header in front of every encrypted object, and the type/compression codes.
//!
//! ```text
//! off len field
//!   0   4 magic "LTHO"
//!   4   1 format version (1)
//!   5   1 object type (ObjectType)
//!   6   1 compression (0 none, 1 zstd)
//!   7   1 reserved, 0
//!   8  16 session id (selects the per-session AES key, see crypto.rs)
//!  24   8 counter, u64 LE (the GCM nonce is counter LE || 00 00 00 00)
//!  32   4 plaintext length after decompression, u32 LE
//!  36   n ciphertext
//! 36+n 16 GCM tag
//! ```
//! The whole header is bound as associated data, followed by a 32-byte binding id.

use crate::error::{need, RepoError, Result};
use serde::{Deserialize, Serialize};

/// Magic at the start of every sealed object.
pub const OBJECT_MAGIC: [u8; 4] = *b"LTHO";
/// Current format version of sealed objects.
pub const FORMAT_VERSION: u8 = 1;
/// Length of [`ObjectHeader`] on the wire.
pub const HEADER_LEN: usize = 36;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object adds to its (compressed) payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Largest plaintext any object may declare (bounds decompression allocations).
pub const MAX_PLAINTEXT: u32 = 512 << 20;

/// What a sealed object contains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ObjectType {
    /// File or device content chunk (inside packs).
    DataBlob = 1,
    /// Directory listing, [`crate::tree::Tree`] (inside packs).
    TreeBlob = 2,
    /// Ordered extent list of a device image or stream (inside packs).
    ExtentListBlob = 3,
    /// Encrypted header at the end of a pack.
    PackHeader = 16,
    /// `index/<id>` file.
    Index = 17,
    /// `snapshots/<id>` file.
    Snapshot = 18,
    /// `config` file.
    Config = 19,
}

impl ObjectType {
    /// Decode the type byte.
    pub fn from_u8(b: u8) -> Result<Self> {
        Ok(match b {
            1 => ObjectType::DataBlob,
            2 => ObjectType::TreeBlob,
            3 => ObjectType::ExtentListBlob,
            16 => ObjectType::PackHeader,
            17 => ObjectType::Index,
            18 => ObjectType::Snapshot,
            19 => ObjectType::Config,
            _ => return Err(RepoError::UnknownObjectType(b)),
        })
    }

    /// Human name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::DataBlob => "data blob",
            ObjectType::TreeBlob => "tree blob",
            ObjectType::ExtentListBlob => "extent-list blob",
            ObjectType::PackHeader => "pack header",
            ObjectType::Index => "index",
            ObjectType::Snapshot => "snapshot",
            ObjectType::Config => "config",
        }
    }
}

/// Blob kinds stored inside packs. Data and metadata (tree, extent-list) blobs go into
/// separate packs so metadata packs stay small and cacheable (restic v2 rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum BlobKind {
    /// Content chunk.
    Data,
    /// Directory tree.
    Tree,
    /// Extent list.
    ExtentList,
}

impl BlobKind {
    /// The sealed-object type used for this blob kind.
    pub fn object_type(self) -> ObjectType {
        match self {
            BlobKind::Data => ObjectType::DataBlob,
            BlobKind::Tree => ObjectType::TreeBlob,
            BlobKind::ExtentList => ObjectType::ExtentListBlob,
        }
    }

    /// Whether this kind belongs in metadata packs.
    pub fn is_metadata(self) -> bool {
        !matches!(self, BlobKind::Data)
    }
}

/// Payload compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Compression {
    /// Stored as is (incompressible or compression disabled).
    None = 0,
    /// One zstd frame.
    Zstd = 1,
}

/// Parsed object header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectHeader {
    /// Object type.
    pub ty: ObjectType,
    /// Payload compression.
    pub compression: Compression,
    /// Encryption session id.
    pub session: [u8; 16],
    /// Per-session object counter (nonce).
    pub counter: u64,
    /// Plaintext length after decompression.
    pub plain_len: u32,
}

impl ObjectHeader {
    /// Serialize to the 36 wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&OBJECT_MAGIC);
        h[4] = FORMAT_VERSION;
        h[5] = self.ty as u8;
        h[6] = self.compression as u8;
        h[7] = 0;
        h[8..24].copy_from_slice(&self.session);
        h[24..32].copy_from_slice(&self.counter.to_le_bytes());
        h[32..36].copy_from_slice(&self.plain_len.to_le_bytes());
        h
    }

    /// Parse and validate the header at the start of `buf` (no crypto yet).
    pub fn parse(buf: &[u8]) -> Result<ObjectHeader> {
        need("object header", buf, HEADER_LEN)?;
        if buf[0..4] != OBJECT_MAGIC {
            return Err(RepoError::BadMagic {
                what: "object header",
                found: buf[0..4].to_vec(),
            });
        }
        if buf[4] != FORMAT_VERSION {
            return Err(RepoError::UnsupportedVersion {
                what: "object header",
                version: buf[4],
            });
        }
        let ty = ObjectType::from_u8(buf[5])?;
        let compression = match buf[6] {
            0 => Compression::None,
            1 => Compression::Zstd,
            c => return Err(RepoError::UnknownCompression(c)),
        };
        if buf[7] != 0 {
            return Err(RepoError::Reserved {
                what: "object header byte 7",
                value: u64::from(buf[7]),
            });
        }
        let mut session = [0u8; 16];
        session.copy_from_slice(&buf[8..24]);
        let mut c = [0u8; 8];
        c.copy_from_slice(&buf[24..32]);
        let mut l = [0u8; 4];
        l.copy_from_slice(&buf[32..36]);
        let plain_len = u32::from_le_bytes(l);
        if plain_len > MAX_PLAINTEXT {
            return Err(RepoError::OutOfRange {
                what: "object plaintext length",
                value: u64::from(plain_len),
                min: 0,
                max: u64::from(MAX_PLAINTEXT),
            });
        }
        Ok(ObjectHeader {
            ty,
            compression,
            session,
            counter: u64::from_le_bytes(c),
            plain_len,
        })
    }

    /// The 96-bit GCM nonce for this object.
    pub fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&self.counter.to_le_bytes());
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_header() -> impl Strategy<Value = ObjectHeader> {
        (
            prop::sample::select(vec![1u8, 2, 3, 16, 17, 18, 19]),
            any::<bool>(),
            any::<[u8; 16]>(),
            any::<u64>(),
            0..=MAX_PLAINTEXT,
        )
            .prop_map(|(t, z, session, counter, plain_len)| ObjectHeader {
                ty: ObjectType::from_u8(t).unwrap(),
                compression: if z {
                    Compression::Zstd
                } else {
                    Compression::None
                },
                session,
                counter,
                plain_len,
            })
    }

    proptest! {
        #[test]
        fn header_round_trip(h in arb_header()) {
            prop_assert_eq!(ObjectHeader::parse(&h.encode()).unwrap(), h);
        }

        #[test]
        fn header_parse_never_panics(b in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = ObjectHeader::parse(&b);
        }
    }

    #[test]
    fn header_rejections_are_typed() {
        let h = ObjectHeader {
            ty: ObjectType::Index,
            compression: Compression::Zstd,
            session: [7; 16],
            counter: 9,
            plain_len: 10,
        }
        .encode();
        assert!(matches!(
            ObjectHeader::parse(&h[..35]),
            Err(RepoError::Truncated {
                need: 36,
                have: 35,
                ..
            })
        ));
        let mut b = h;
        b[0] = b'X';
        assert!(matches!(
            ObjectHeader::parse(&b),
            Err(RepoError::BadMagic { .. })
        ));
        let mut b = h;
        b[4] = 2;
        assert!(matches!(
            ObjectHeader::parse(&b),
            Err(RepoError::UnsupportedVersion { version: 2, .. })
        ));
        let mut b = h;
        b[5] = 99;
        assert_eq!(
            ObjectHeader::parse(&b),
            Err(RepoError::UnknownObjectType(99))
        );
        let mut b = h;
        b[6] = 5;
        assert_eq!(
            ObjectHeader::parse(&b),
            Err(RepoError::UnknownCompression(5))
        );
        let mut b = h;
        b[7] = 1;
        assert!(matches!(
            ObjectHeader::parse(&b),
            Err(RepoError::Reserved { .. })
        ));
        let mut b = h;
        b[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            ObjectHeader::parse(&b),
            Err(RepoError::OutOfRange { .. })
        ));
    }
}
