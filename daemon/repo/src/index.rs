//! Index files (`index/<id>`): blob id -> (pack id, offset, length, uncompressed length,
//! how the blob is stored).
//!
//! Version 2 (written): sealed as type Index with binding zero; plaintext (postcard)
//! `IndexV2 { generation, packs }` where `generation` is the manifest generation the
//! writer started from (see `manifest.rs`: an index file that no manifest lists is a
//! leftover if its generation is at least the manifest's watermark, and a replay
//! otherwise). Which index files are current is said by the manifest, not by the files.
//!
//! Version 1 (read only): `IndexV1 { supersedes, packs }`; `supersedes` lists index files
//! this one replaces (after a repack or rebuild).
//!
//! Entries are grouped per pack. An index can always be rebuilt from the pack headers.
//! Writers flush an index file every [`INDEX_FLUSH_ENTRIES`] entries.

use crate::codec;
use crate::crypto::{Opener, Sealer};
use crate::error::{RepoError, Result};
use crate::ids::Id;
use crate::object::{
    BlobKind, Compression, ObjectHeader, ObjectType, FORMAT_V1, OVERHEAD_V1, TAG_LEN,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Suggested number of entries per index file.
pub const INDEX_FLUSH_ENTRIES: usize = 50_000;

/// How a blob is stored in its pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlobFormat {
    /// A version-1 sealed object (its own 36-byte header, AES-256-GCM).
    V1,
    /// A version-2 blob: AES-256-GCM-SIV ciphertext and tag, no header.
    V2 {
        /// Payload compression (bound as associated data).
        compression: Compression,
        /// Key epoch.
        epoch: u32,
    },
}

impl BlobFormat {
    /// Wire code: 1 = version 1, 2 = version 2 stored, 3 = version 2 zstd.
    pub fn code(self) -> u8 {
        match self {
            BlobFormat::V1 => 1,
            BlobFormat::V2 {
                compression: Compression::None,
                ..
            } => 2,
            BlobFormat::V2 {
                compression: Compression::Zstd,
                ..
            } => 3,
        }
    }

    /// From the wire code and epoch.
    pub fn from_code(code: u8, epoch: u32) -> Result<Self> {
        match (code, epoch) {
            (1, 0) => Ok(BlobFormat::V1),
            (2, e) => Ok(BlobFormat::V2 {
                compression: Compression::None,
                epoch: e,
            }),
            (3, e) => Ok(BlobFormat::V2 {
                compression: Compression::Zstd,
                epoch: e,
            }),
            _ => Err(RepoError::Invalid {
                what: "index",
                detail: format!("unknown blob format {code} (epoch {epoch})"),
            }),
        }
    }

    /// The epoch (0 for version 1).
    pub fn epoch(self) -> u32 {
        match self {
            BlobFormat::V1 => 0,
            BlobFormat::V2 { epoch, .. } => epoch,
        }
    }

    /// Smallest stored length of a blob in this format.
    pub fn min_len(self) -> usize {
        match self {
            BlobFormat::V1 => OVERHEAD_V1,
            BlobFormat::V2 { .. } => TAG_LEN,
        }
    }
}

/// Where one blob lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    /// Blob id.
    pub id: Id,
    /// Blob kind.
    pub kind: BlobKind,
    /// Pack file id.
    pub pack: Id,
    /// Offset of the sealed blob in the pack.
    pub offset: u32,
    /// Sealed length.
    pub length: u32,
    /// Plaintext length.
    pub raw_len: u32,
    /// How it is stored.
    pub format: BlobFormat,
}

/// One blob inside an [`IndexPack`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexBlob {
    /// Blob id.
    pub id: Id,
    /// Kind.
    pub kind: BlobKind,
    /// Offset in the pack.
    pub offset: u32,
    /// Sealed length.
    pub length: u32,
    /// Plaintext length.
    pub raw_len: u32,
    /// How it is stored.
    pub format: BlobFormat,
}

/// All blobs of one pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPack {
    /// Pack id.
    pub id: Id,
    /// Blobs sorted by offset, non-overlapping.
    pub blobs: Vec<IndexBlob>,
}

/// An index file of either version.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IndexFile {
    /// Format version it was read in (2 when built here).
    pub version: u8,
    /// Version 2: the manifest generation its writer started from (0 in version 1).
    pub generation: u64,
    /// Version 1: index files this one replaces. Always empty in version 2.
    pub supersedes: Vec<Id>,
    /// Packs covered.
    pub packs: Vec<IndexPack>,
}

#[derive(Serialize, Deserialize)]
struct BlobV1 {
    id: Id,
    kind: BlobKind,
    offset: u32,
    length: u32,
    raw_len: u32,
}

#[derive(Serialize, Deserialize)]
struct PackV1 {
    id: Id,
    blobs: Vec<BlobV1>,
}

#[derive(Serialize, Deserialize)]
struct IndexV1 {
    supersedes: Vec<Id>,
    packs: Vec<PackV1>,
}

#[derive(Serialize, Deserialize)]
struct BlobV2 {
    id: Id,
    kind: BlobKind,
    offset: u32,
    length: u32,
    raw_len: u32,
    format: u8,
    epoch: u32,
}

#[derive(Serialize, Deserialize)]
struct PackV2 {
    id: Id,
    blobs: Vec<BlobV2>,
}

#[derive(Serialize, Deserialize)]
struct IndexV2 {
    generation: u64,
    packs: Vec<PackV2>,
}

impl IndexFile {
    /// Group entries by pack (keeping first-seen pack order) and sort blobs by offset.
    pub fn from_entries(entries: &[IndexEntry], generation: u64) -> IndexFile {
        let mut order: Vec<Id> = Vec::new();
        let mut by_pack: HashMap<Id, Vec<IndexBlob>> = HashMap::new();
        for e in entries {
            let v = by_pack.entry(e.pack).or_insert_with(|| {
                order.push(e.pack);
                Vec::new()
            });
            v.push(IndexBlob {
                id: e.id,
                kind: e.kind,
                offset: e.offset,
                length: e.length,
                raw_len: e.raw_len,
                format: e.format,
            });
        }
        let packs = order
            .into_iter()
            .map(|id| {
                let mut blobs = by_pack.remove(&id).unwrap_or_default();
                blobs.sort_by_key(|b| b.offset);
                IndexPack { id, blobs }
            })
            .collect();
        IndexFile {
            version: crate::object::FORMAT_VERSION,
            generation,
            supersedes: Vec::new(),
            packs,
        }
    }

    /// Flattened entries.
    pub fn entries(&self) -> impl Iterator<Item = IndexEntry> + '_ {
        self.packs.iter().flat_map(|p| {
            p.blobs.iter().map(move |b| IndexEntry {
                id: b.id,
                kind: b.kind,
                pack: p.id,
                offset: b.offset,
                length: b.length,
                raw_len: b.raw_len,
                format: b.format,
            })
        })
    }

    /// Structural checks: each pack once, blobs sorted, non-overlapping, long enough.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| RepoError::Invalid {
            what: "index",
            detail,
        };
        let mut seen = std::collections::HashSet::new();
        for p in &self.packs {
            if !seen.insert(p.id) {
                return Err(bad(format!("pack {} listed twice", p.id)));
            }
            let mut end = 0u64;
            for b in &p.blobs {
                if u64::from(b.offset) < end {
                    return Err(bad(format!(
                        "pack {}: blob {} overlaps or is out of order",
                        p.id, b.id
                    )));
                }
                if (b.length as usize) < b.format.min_len() {
                    return Err(bad(format!(
                        "pack {}: blob {} shorter than its overhead",
                        p.id, b.id
                    )));
                }
                end = u64::from(b.offset) + u64::from(b.length);
            }
        }
        Ok(())
    }

    /// Seal (version 2) into the bytes stored at `index/<Id::of_file(bytes)>`.
    pub fn seal(&self, sealer: &mut Sealer) -> Result<Vec<u8>> {
        self.validate()?;
        if !self.supersedes.is_empty() {
            return Err(RepoError::Invalid {
                what: "index",
                detail:
                    "version 2 index files do not supersede (the manifest lists the current ones)"
                        .into(),
            });
        }
        let wire = IndexV2 {
            generation: self.generation,
            packs: self
                .packs
                .iter()
                .map(|p| PackV2 {
                    id: p.id,
                    blobs: p
                        .blobs
                        .iter()
                        .map(|b| BlobV2 {
                            id: b.id,
                            kind: b.kind,
                            offset: b.offset,
                            length: b.length,
                            raw_len: b.raw_len,
                            format: b.format.code(),
                            epoch: b.format.epoch(),
                        })
                        .collect(),
                })
                .collect(),
        };
        sealer.seal(
            ObjectType::Index,
            &Id::ZERO,
            &codec::encode("index", &wire)?,
        )
    }

    /// Open, decode and validate an index file of either version.
    pub fn open(opener: &mut Opener, bytes: &[u8]) -> Result<IndexFile> {
        let version = ObjectHeader::parse(bytes)?.version;
        let plain = opener.open(ObjectType::Index, &Id::ZERO, bytes)?;
        let f = if version == FORMAT_V1 {
            let w: IndexV1 = codec::decode("index", &plain)?;
            IndexFile {
                version,
                generation: 0,
                supersedes: w.supersedes,
                packs: w
                    .packs
                    .into_iter()
                    .map(|p| IndexPack {
                        id: p.id,
                        blobs: p
                            .blobs
                            .into_iter()
                            .map(|b| IndexBlob {
                                id: b.id,
                                kind: b.kind,
                                offset: b.offset,
                                length: b.length,
                                raw_len: b.raw_len,
                                format: BlobFormat::V1,
                            })
                            .collect(),
                    })
                    .collect(),
            }
        } else {
            let w: IndexV2 = codec::decode("index", &plain)?;
            let mut packs = Vec::with_capacity(w.packs.len());
            for p in w.packs {
                let mut blobs = Vec::with_capacity(p.blobs.len());
                for b in p.blobs {
                    blobs.push(IndexBlob {
                        id: b.id,
                        kind: b.kind,
                        offset: b.offset,
                        length: b.length,
                        raw_len: b.raw_len,
                        format: BlobFormat::from_code(b.format, b.epoch)?,
                    });
                }
                packs.push(IndexPack { id: p.id, blobs });
            }
            IndexFile {
                version,
                generation: w.generation,
                supersedes: Vec::new(),
                packs,
            }
        };
        f.validate()?;
        Ok(f)
    }
}

/// In-memory lookup table built from index files. (A bounded-memory on-disk index is a
/// later step; this is the reference implementation.)
#[derive(Default, Debug)]
pub struct Index {
    map: HashMap<Id, IndexEntry>,
}

impl Index {
    /// Empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// Add entries; the first location seen for an id wins (duplicates are harmless copies).
    pub fn extend<I: IntoIterator<Item = IndexEntry>>(&mut self, it: I) {
        for e in it {
            self.map.entry(e.id).or_insert(e);
        }
    }

    /// Location of a blob.
    pub fn get(&self, id: &Id) -> Option<&IndexEntry> {
        self.map.get(id)
    }

    /// Whether a blob is stored (dedup check).
    pub fn contains(&self, id: &Id) -> bool {
        self.map.contains_key(id)
    }

    /// Number of distinct blobs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No blobs.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every entry (one per blob id).
    pub fn iter(&self) -> impl Iterator<Item = &IndexEntry> {
        self.map.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use proptest::prelude::*;

    fn arb_entries() -> impl Strategy<Value = Vec<IndexEntry>> {
        prop::collection::vec(
            (
                any::<[u8; 32]>(),
                0u8..3,
                0u8..3,
                52u32..100_000,
                any::<u32>(),
                1u8..4,
                0u32..5,
            ),
            0..20,
        )
        .prop_map(|v| {
            let mut offs = [0u32; 3];
            v.into_iter()
                .map(|(id, k, p, length, raw_len, f, epoch)| {
                    let off = offs[usize::from(p)];
                    offs[usize::from(p)] += length;
                    IndexEntry {
                        id: Id(id),
                        kind: [BlobKind::Data, BlobKind::Tree, BlobKind::ExtentList]
                            [usize::from(k)],
                        pack: Id([p; 32]),
                        offset: off,
                        length,
                        raw_len,
                        format: BlobFormat::from_code(f, if f == 1 { 0 } else { epoch }).unwrap(),
                    }
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn index_round_trip(entries in arb_entries(), generation in any::<u64>()) {
            let k = MasterKey::from_bytes([6; 32]).derive().unwrap();
            let f = IndexFile::from_entries(&entries, generation);
            let bytes = f.seal(&mut k.sealer([1; 16], 3).unwrap()).unwrap();
            let back = IndexFile::open(&mut k.opener(), &bytes).unwrap();
            prop_assert_eq!(&back, &f);
            let mut got: Vec<IndexEntry> = back.entries().collect();
            let mut want = entries.clone();
            let key = |e: &IndexEntry| (e.pack, e.offset);
            got.sort_by_key(key);
            want.sort_by_key(key);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn index_decode_never_panics(b in prop::collection::vec(any::<u8>(), 0..400)) {
            let k = MasterKey::from_bytes([6; 32]).derive().unwrap();
            let _ = IndexFile::open(&mut k.opener(), &b);
            let _ = codec::decode::<IndexV2>("index", &b);
            let _ = codec::decode::<IndexV1>("index", &b);
        }
    }

    #[test]
    fn overlap_duplicates_and_formats_are_checked() {
        let e = |off, format| IndexEntry {
            id: Id::ZERO,
            kind: BlobKind::Data,
            pack: Id([1; 32]),
            offset: off,
            length: 100,
            raw_len: 1,
            format,
        };
        let v2 = BlobFormat::V2 {
            compression: Compression::None,
            epoch: 0,
        };
        assert!(
            IndexFile::from_entries(&[e(0, v2), e(100, BlobFormat::V1)], 0)
                .validate()
                .is_ok()
        );
        assert!(IndexFile::from_entries(&[e(0, v2), e(99, v2)], 0)
            .validate()
            .is_err());
        let mut f = IndexFile::from_entries(&[e(0, v2)], 0);
        f.packs.push(f.packs[0].clone());
        assert!(f
            .validate()
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
        let mut short = e(0, BlobFormat::V1);
        short.length = 51;
        assert!(IndexFile::from_entries(&[short], 0).validate().is_err());
        let mut idx = Index::new();
        idx.extend(IndexFile::from_entries(&[e(0, v2)], 0).entries());
        assert!(idx.contains(&Id::ZERO) && idx.len() == 1);
        assert_eq!(idx.get(&Id::ZERO).map(|x| x.offset), Some(0));
        assert!(
            BlobFormat::from_code(1, 3).is_err(),
            "version 1 has no epochs"
        );
        assert!(BlobFormat::from_code(9, 0).is_err());
        let mut sup = IndexFile::from_entries(&[], 0);
        sup.supersedes.push(Id::ZERO);
        let k = MasterKey::from_bytes([6; 32]).derive().unwrap();
        assert!(sup.seal(&mut k.sealer([1; 16], 0).unwrap()).is_err());
    }
}
