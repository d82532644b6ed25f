//! Index files (`index/<id>`): blob id -> (pack id, offset, length, uncompressed length).
//!
//! Plaintext (postcard) = [`IndexFile`]; sealed as type Index with binding zero. Entries
//! are grouped per pack. An index can always be rebuilt from the pack headers. Writers
//! should flush an index file every [`INDEX_FLUSH_ENTRIES`] entries (~4 MiB plaintext).

use crate::codec;
use crate::crypto::{Opener, Sealer};
use crate::error::{RepoError, Result};
use crate::ids::Id;
use crate::object::{BlobKind, ObjectType, OVERHEAD};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Suggested number of entries per index file.
pub const INDEX_FLUSH_ENTRIES: usize = 50_000;

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
}

/// One blob inside an [`IndexPack`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// All blobs of one pack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    /// Pack id.
    pub id: Id,
    /// Blobs sorted by offset, non-overlapping.
    pub blobs: Vec<IndexBlob>,
}

/// Plaintext of an index file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IndexFile {
    /// Index files this one replaces (after a repack/rebuild).
    pub supersedes: Vec<Id>,
    /// Packs covered.
    pub packs: Vec<IndexPack>,
}

impl IndexFile {
    /// Group entries by pack (keeping first-seen pack order) and sort blobs by offset.
    pub fn from_entries(entries: &[IndexEntry], supersedes: Vec<Id>) -> IndexFile {
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
        IndexFile { supersedes, packs }
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
            })
        })
    }

    /// Structural checks: each pack once, blobs sorted, non-overlapping, >= overhead.
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
                if (b.length as usize) < OVERHEAD {
                    return Err(bad(format!(
                        "pack {}: blob {} shorter than overhead",
                        p.id, b.id
                    )));
                }
                end = u64::from(b.offset) + u64::from(b.length);
            }
        }
        Ok(())
    }

    /// Seal into the bytes stored at `index/<Id::of_file(bytes)>`.
    pub fn seal(&self, sealer: &mut Sealer) -> Result<Vec<u8>> {
        self.validate()?;
        sealer.seal(ObjectType::Index, &Id::ZERO, &codec::encode("index", self)?)
    }

    /// Open, decode and validate an index file.
    pub fn open(opener: &mut Opener, bytes: &[u8]) -> Result<IndexFile> {
        let plain = opener.open(ObjectType::Index, &Id::ZERO, bytes)?;
        let f: IndexFile = codec::decode("index", &plain)?;
        f.validate()?;
        Ok(f)
    }
}

/// In-memory lookup table built from index files. (A bounded-memory on-disk index is the
/// engine's job; this is the simple reference implementation.)
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
            ),
            0..20,
        )
        .prop_map(|v| {
            let mut offs = [0u32; 3];
            v.into_iter()
                .map(|(id, k, p, length, raw_len)| {
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
                    }
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn index_round_trip(entries in arb_entries(), sup in prop::collection::vec(any::<[u8; 32]>(), 0..3)) {
            let k = MasterKey::from_bytes([6; 32]).derive().unwrap();
            let f = IndexFile::from_entries(&entries, sup.into_iter().map(Id).collect());
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
            if let Ok(f) = codec::decode::<IndexFile>("index", &b) { let _ = f.validate(); }
        }
    }

    #[test]
    fn overlap_and_duplicates_rejected() {
        let e = |off| IndexEntry {
            id: Id::ZERO,
            kind: BlobKind::Data,
            pack: Id([1; 32]),
            offset: off,
            length: 100,
            raw_len: 1,
        };
        assert!(IndexFile::from_entries(&[e(0), e(100)], vec![])
            .validate()
            .is_ok());
        assert!(IndexFile::from_entries(&[e(0), e(99)], vec![])
            .validate()
            .is_err());
        let mut f = IndexFile::from_entries(&[e(0)], vec![]);
        f.packs.push(f.packs[0].clone());
        assert!(f
            .validate()
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
        let mut idx = Index::new();
        idx.extend(IndexFile::from_entries(&[e(0)], vec![]).entries());
        assert!(idx.contains(&Id::ZERO) && idx.len() == 1);
        assert_eq!(idx.get(&Id::ZERO).map(|x| x.offset), Some(0));
    }
}
