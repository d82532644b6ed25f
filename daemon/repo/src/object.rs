//! The header in front of every stored file that is a sealed object (index files,
//! snapshots, the config, the manifest), and the type/compression codes.
//!
//! Format version 2 (written):
//! ```text
//! off len field
//!   0   4 magic "LTHO"
//!   4   1 format version (2)
//!   5   1 object type (ObjectType)
//!   6   1 compression (0 none, 1 zstd)
//!   7   1 reserved, 0
//!   8   4 key epoch, u32 LE (which master key of the keyring)
//!  12  16 session id (selects the per-session key, see crypto.rs)
//!  28   8 counter, u64 LE (the nonce is counter LE || 00 00 00 00)
//!  36   4 plaintext length after decompression, u32 LE
//!  40   n AES-256-GCM-SIV ciphertext of (payload || zero padding)
//! 40+n 16 tag
//! ```
//! Format version 1 (read only) has no epoch field (36-byte header, AES-256-GCM, no
//! padding). Blobs inside version-2 packs have no header at all (see `pack.rs`).
//! The whole header is bound as associated data, followed by a 32-byte binding id.

use crate::error::{need, RepoError, Result};
use serde::{Deserialize, Serialize};

/// Magic at the start of every sealed object.
pub const OBJECT_MAGIC: [u8; 4] = *b"LTHO";
/// Format version 1 (read only).
pub const FORMAT_V1: u8 = 1;
/// Format version 2, written by this code.
pub const FORMAT_V2: u8 = 2;
/// The format version this code writes.
pub const FORMAT_VERSION: u8 = FORMAT_V2;
/// Length of a version-1 header.
pub const HEADER_LEN_V1: usize = 36;
/// Length of a version-2 header.
pub const HEADER_LEN: usize = 40;
/// AEAD tag length (AES-GCM and AES-GCM-SIV alike).
pub const TAG_LEN: usize = 16;
/// Bytes a version-1 sealed object adds to its (compressed) payload.
pub const OVERHEAD_V1: usize = HEADER_LEN_V1 + TAG_LEN;
/// Bytes a version-2 sealed file adds to its (compressed) payload, before padding.
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
    /// `manifest/<generation>` file (version 2).
    Manifest = 20,
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
            20 => ObjectType::Manifest,
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
            ObjectType::Manifest => "manifest",
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

    /// Wire code (version-2 pack headers and index files): the object type byte.
    pub fn code(self) -> u8 {
        self.object_type() as u8
    }

    /// From a wire code.
    pub fn from_code(b: u8) -> Result<Self> {
        match b {
            1 => Ok(BlobKind::Data),
            2 => Ok(BlobKind::Tree),
            3 => Ok(BlobKind::ExtentList),
            _ => Err(RepoError::UnknownObjectType(b)),
        }
    }
}

/// Payload compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Compression {
    /// Stored as is (incompressible or compression disabled).
    None = 0,
    /// One zstd frame.
    Zstd = 1,
}

impl Compression {
    /// From the wire byte.
    pub fn from_u8(b: u8) -> Result<Self> {
        match b {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Zstd),
            c => Err(RepoError::UnknownCompression(c)),
        }
    }
}

/// Parsed object header (either version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectHeader {
    /// Format version (1 or 2).
    pub version: u8,
    /// Object type.
    pub ty: ObjectType,
    /// Payload compression.
    pub compression: Compression,
    /// Key epoch (always 0 in version 1).
    pub epoch: u32,
    /// Encryption session id.
    pub session: [u8; 16],
    /// Per-session object counter (nonce).
    pub counter: u64,
    /// Plaintext length after decompression.
    pub plain_len: u32,
}

impl ObjectHeader {
    /// Length of this header on the wire.
    pub fn len(&self) -> usize {
        if self.version == FORMAT_V1 {
            HEADER_LEN_V1
        } else {
            HEADER_LEN
        }
    }

    /// Never empty (present for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Serialize a version-2 header to its 40 wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&OBJECT_MAGIC);
        h[4] = FORMAT_V2;
        h[5] = self.ty as u8;
        h[6] = self.compression as u8;
        h[7] = 0;
        h[8..12].copy_from_slice(&self.epoch.to_le_bytes());
        h[12..28].copy_from_slice(&self.session);
        h[28..36].copy_from_slice(&self.counter.to_le_bytes());
        h[36..40].copy_from_slice(&self.plain_len.to_le_bytes());
        h
    }

    /// Parse and validate the header at the start of `buf` (no crypto yet).
    pub fn parse(buf: &[u8]) -> Result<ObjectHeader> {
        need("object header", buf, 5)?;
        if buf[0..4] != OBJECT_MAGIC {
            return Err(RepoError::BadMagic {
                what: "object header",
                found: buf[0..4].to_vec(),
            });
        }
        let version = buf[4];
        let (len, epoch, rest) = match version {
            FORMAT_V1 => {
                need("object header", buf, HEADER_LEN_V1)?;
                (HEADER_LEN_V1, 0, &buf[8..HEADER_LEN_V1])
            }
            FORMAT_V2 => {
                need("object header", buf, HEADER_LEN)?;
                (
                    HEADER_LEN,
                    u32::from_le_bytes(buf[8..12].try_into().unwrap_or_default()),
                    &buf[12..HEADER_LEN],
                )
            }
            v => {
                return Err(RepoError::UnsupportedVersion {
                    what: "object header",
                    version: v,
                })
            }
        };
        let ty = ObjectType::from_u8(buf[5])?;
        let compression = Compression::from_u8(buf[6])?;
        if buf[7] != 0 {
            return Err(RepoError::Reserved {
                what: "object header byte 7",
                value: u64::from(buf[7]),
            });
        }
        debug_assert_eq!(rest.len(), 28);
        let mut session = [0u8; 16];
        session.copy_from_slice(&rest[..16]);
        let counter = u64::from_le_bytes(rest[16..24].try_into().unwrap_or_default());
        let plain_len = u32::from_le_bytes(rest[24..28].try_into().unwrap_or_default());
        if plain_len > MAX_PLAINTEXT {
            return Err(RepoError::OutOfRange {
                what: "object plaintext length",
                value: u64::from(plain_len),
                min: 0,
                max: u64::from(MAX_PLAINTEXT),
            });
        }
        let _ = len;
        Ok(ObjectHeader {
            version,
            ty,
            compression,
            epoch,
            session,
            counter,
            plain_len,
        })
    }

    /// The 96-bit nonce for this object.
    pub fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&self.counter.to_le_bytes());
        n
    }
}

/// Padmé (Nikitin et al., PETS 2019): the length `len` rounded up so that only its
/// O(log log len) high bits are free; at most ~12 % larger, usually a few percent.
/// Every version-2 file (sealed objects and packs) is padded to such a length, so a
/// storage observer learns a file's size class, not its size.
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - u64::from(len.leading_zeros()); // floor(log2 len)
    let s = 64 - u64::from(e.leading_zeros()); // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1u64 << last_bits) - 1;
    len.checked_add(mask).map_or(len, |l| l & !mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_header() -> impl Strategy<Value = ObjectHeader> {
        (
            prop::sample::select(vec![1u8, 2, 3, 16, 17, 18, 19, 20]),
            any::<bool>(),
            any::<u32>(),
            any::<[u8; 16]>(),
            any::<u64>(),
            0..=MAX_PLAINTEXT,
        )
            .prop_map(|(t, z, epoch, session, counter, plain_len)| ObjectHeader {
                version: FORMAT_V2,
                ty: ObjectType::from_u8(t).unwrap(),
                compression: if z {
                    Compression::Zstd
                } else {
                    Compression::None
                },
                epoch,
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

        #[test]
        fn padme_bounds(len in 1u64..(1 << 40)) {
            let p = padme(len);
            prop_assert!(p >= len);
            // Overhead at most 1/8 of the length beyond the smallest sizes (Padmé's bound).
            prop_assert!(len < 256 || p - len <= len / 8, "{} -> {}", len, p);
            prop_assert_eq!(padme(p), p, "idempotent");
        }
    }

    #[test]
    fn padme_values() {
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(9), 10);
        assert_eq!(padme(100), 104);
        // A pack just over 16 MiB is rounded to a multiple of 512 KiB.
        assert_eq!(padme((16 << 20) + 1), (16 << 20) + (512 << 10));
        assert_eq!(padme(17_000_000) % (512 << 10), 0);
    }

    #[test]
    fn header_rejections_are_typed() {
        let h = ObjectHeader {
            version: FORMAT_V2,
            ty: ObjectType::Index,
            compression: Compression::Zstd,
            epoch: 3,
            session: [7; 16],
            counter: 9,
            plain_len: 10,
        }
        .encode();
        assert!(matches!(
            ObjectHeader::parse(&h[..39]),
            Err(RepoError::Truncated {
                need: 40,
                have: 39,
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
        b[4] = 3;
        assert!(matches!(
            ObjectHeader::parse(&b),
            Err(RepoError::UnsupportedVersion { version: 3, .. })
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
        b[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            ObjectHeader::parse(&b),
            Err(RepoError::OutOfRange { .. })
        ));
        // A version-1 header: 36 bytes, epoch 0.
        let mut v1 = [0u8; 36];
        v1[..4].copy_from_slice(b"LTHO");
        v1[4] = 1;
        v1[5] = 18;
        v1[24] = 5;
        let p = ObjectHeader::parse(&v1).unwrap();
        assert_eq!((p.version, p.epoch, p.counter, p.len()), (1, 0, 5, 36));
    }
}
