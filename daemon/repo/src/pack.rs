//! Pack files: many sealed blobs followed by a sealed header, so packs are self-describing
//! and the index can be rebuilt from them (as in restic).
//!
//! ```text
//! pack = blob_1 || ... || blob_n || sealed_header || header_len: u32 LE || "LPK1"
//! ```
//! `sealed_header` is a sealed object (type PackHeader, binding zero) whose plaintext is the
//! postcard encoding of [`PackHeader`]; blob offsets are implied by the order and lengths.
//! The pack's file name is the unkeyed BLAKE3 of all its bytes.

use crate::codec;
use crate::crypto::{Opener, RepoKeys, Sealer};
use crate::error::{need, RepoError, Result};
use crate::ids::Id;
use crate::index::IndexEntry;
use crate::object::{BlobKind, ObjectHeader, ObjectType, OVERHEAD};
use serde::{Deserialize, Serialize};

/// Default target pack size (restic's default; packs of ~16 blobs of 1 MiB).
pub const DEFAULT_PACK_TARGET: u32 = 16 << 20;
/// Magic at the very end of every pack.
pub const PACK_MAGIC: [u8; 4] = *b"LPK1";
/// header_len (4) + magic (4).
pub const TRAILER_LEN: usize = 8;
/// Most blobs one pack may list (bounds header parsing).
pub const MAX_PACK_ENTRIES: usize = 1 << 20;

/// One blob as listed in the pack header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackHeaderEntry {
    /// Blob kind.
    pub kind: BlobKind,
    /// Blob id (keyed BLAKE3 of the plaintext).
    pub id: Id,
    /// Stored (sealed) length.
    pub length: u32,
    /// Plaintext length.
    pub raw_len: u32,
}

/// Plaintext of the sealed pack header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PackHeader {
    /// Blobs in file order.
    pub entries: Vec<PackHeaderEntry>,
}

/// Seal one blob (binding = its id).
pub fn seal_blob(
    sealer: &mut Sealer,
    kind: BlobKind,
    id: &Id,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    sealer.seal(kind.object_type(), id, plaintext)
}

/// A finished pack, ready to upload to `data/<id>`.
#[derive(Clone, Debug)]
pub struct FinishedPack {
    /// File id (BLAKE3 of `bytes`).
    pub id: Id,
    /// The pack file.
    pub bytes: Vec<u8>,
    /// Index entries for its blobs.
    pub entries: Vec<IndexEntry>,
}

/// Accumulates sealed blobs up to a target size.
pub struct PackBuilder {
    buf: Vec<u8>,
    header: PackHeader,
    target: usize,
}

impl PackBuilder {
    /// New builder aiming at `target` bytes.
    pub fn new(target: u32) -> PackBuilder {
        PackBuilder {
            buf: Vec::with_capacity(target as usize + (1 << 20)),
            header: PackHeader::default(),
            target: target as usize,
        }
    }

    /// Append a sealed blob. Checks that the sealed header matches `kind` and records the
    /// plaintext length from it.
    pub fn add(&mut self, kind: BlobKind, id: Id, sealed: &[u8]) -> Result<()> {
        let h = ObjectHeader::parse(sealed)?;
        if h.ty != kind.object_type() {
            return Err(RepoError::WrongObjectType {
                expected: kind.object_type().name(),
                found: h.ty.name(),
            });
        }
        need("sealed blob", sealed, OVERHEAD)?;
        let length = u32::try_from(sealed.len()).map_err(|_| RepoError::OutOfRange {
            what: "blob length",
            value: sealed.len() as u64,
            min: 0,
            max: u64::from(u32::MAX),
        })?;
        if self.buf.len() + sealed.len() > u32::MAX as usize / 2
            || self.header.entries.len() >= MAX_PACK_ENTRIES
        {
            return Err(RepoError::Invalid {
                what: "pack builder",
                detail: "pack too large; finish it first".into(),
            });
        }
        self.buf.extend_from_slice(sealed);
        self.header.entries.push(PackHeaderEntry {
            kind,
            id,
            length,
            raw_len: h.plain_len,
        });
        Ok(())
    }

    /// Seal `plaintext` straight into the pack buffer (one copy less than
    /// [`seal_blob`] + [`PackBuilder::add`]). `id` must be `keys.blob_id(kind, plaintext)`.
    pub fn seal_and_add(
        &mut self,
        sealer: &mut Sealer,
        kind: BlobKind,
        id: Id,
        plaintext: &[u8],
    ) -> Result<()> {
        if self.buf.len() + plaintext.len() + OVERHEAD > u32::MAX as usize / 2
            || self.header.entries.len() >= MAX_PACK_ENTRIES
        {
            return Err(RepoError::Invalid {
                what: "pack builder",
                detail: "pack too large; finish it first".into(),
            });
        }
        let n = sealer.seal_append(kind.object_type(), &id, plaintext, &mut self.buf)?;
        self.header.entries.push(PackHeaderEntry {
            kind,
            id,
            length: n as u32,
            raw_len: plaintext.len() as u32,
        });
        Ok(())
    }

    /// Bytes of blobs so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// No blobs yet.
    pub fn is_empty(&self) -> bool {
        self.header.entries.is_empty()
    }

    /// Number of blobs.
    pub fn blob_count(&self) -> usize {
        self.header.entries.len()
    }

    /// True once the target size is reached: finish and start a new pack.
    pub fn is_full(&self) -> bool {
        self.buf.len() >= self.target
    }

    /// Append the sealed header and trailer, compute the pack id and index entries.
    pub fn finish(mut self, sealer: &mut Sealer) -> Result<FinishedPack> {
        if self.is_empty() {
            return Err(RepoError::Invalid {
                what: "pack builder",
                detail: "empty pack".into(),
            });
        }
        let plain = codec::encode("pack header", &self.header)?;
        let sealed = sealer.seal(ObjectType::PackHeader, &Id::ZERO, &plain)?;
        let hl = u32::try_from(sealed.len()).map_err(|_| RepoError::Crypto("pack header size"))?;
        self.buf.extend_from_slice(&sealed);
        self.buf.extend_from_slice(&hl.to_le_bytes());
        self.buf.extend_from_slice(&PACK_MAGIC);
        let id = Id::of_file(&self.buf);
        let entries = entries_with_offsets(&id, &self.header.entries);
        Ok(FinishedPack {
            id,
            bytes: self.buf,
            entries,
        })
    }
}

fn entries_with_offsets(pack: &Id, h: &[PackHeaderEntry]) -> Vec<IndexEntry> {
    let mut off = 0u32;
    h.iter()
        .map(|e| {
            let ie = IndexEntry {
                id: e.id,
                kind: e.kind,
                pack: *pack,
                offset: off,
                length: e.length,
                raw_len: e.raw_len,
            };
            off = off.saturating_add(e.length);
            ie
        })
        .collect()
}

/// Parse the 8-byte trailer (the last bytes of a pack): returns the sealed header length.
pub fn parse_trailer(tail: &[u8]) -> Result<u32> {
    need("pack trailer", tail, TRAILER_LEN)?;
    let t = &tail[tail.len() - TRAILER_LEN..];
    if t[4..8] != PACK_MAGIC {
        return Err(RepoError::BadMagic {
            what: "pack trailer",
            found: t[4..8].to_vec(),
        });
    }
    let mut l = [0u8; 4];
    l.copy_from_slice(&t[..4]);
    Ok(u32::from_le_bytes(l))
}

/// Decrypt and check a pack header given the pack's total length. Entries must exactly
/// tile the bytes before the header.
pub fn read_header(
    opener: &mut Opener,
    pack: &Id,
    pack_len: u64,
    sealed_header: &[u8],
) -> Result<Vec<IndexEntry>> {
    let plain = opener.open(ObjectType::PackHeader, &Id::ZERO, sealed_header)?;
    let h: PackHeader = codec::decode("pack header", &plain)?;
    if h.entries.is_empty() || h.entries.len() > MAX_PACK_ENTRIES {
        return Err(RepoError::OutOfRange {
            what: "pack header entries",
            value: h.entries.len() as u64,
            min: 1,
            max: MAX_PACK_ENTRIES as u64,
        });
    }
    let blobs_len = pack_len
        .checked_sub(sealed_header.len() as u64 + TRAILER_LEN as u64)
        .ok_or(RepoError::Truncated {
            what: "pack",
            need: sealed_header.len() + TRAILER_LEN,
            have: pack_len as usize,
        })?;
    let sum: u64 = h.entries.iter().map(|e| u64::from(e.length)).sum();
    if sum != blobs_len {
        return Err(RepoError::LengthMismatch {
            what: "pack blobs",
            declared: sum,
            actual: blobs_len,
        });
    }
    if let Some(e) = h.entries.iter().find(|e| (e.length as usize) < OVERHEAD) {
        return Err(RepoError::Invalid {
            what: "pack header",
            detail: format!("blob {} shorter than overhead", e.id),
        });
    }
    Ok(entries_with_offsets(pack, &h.entries))
}

/// Reads a whole pack held in memory.
pub struct PackReader<'a> {
    bytes: &'a [u8],
    entries: Vec<IndexEntry>,
}

impl<'a> PackReader<'a> {
    /// Verify the file id (if `id` is given), then parse trailer and header.
    pub fn open(
        opener: &mut Opener,
        id: &Id,
        bytes: &'a [u8],
        verify_id: bool,
    ) -> Result<PackReader<'a>> {
        if verify_id {
            id.verify_file("pack", bytes)?;
        }
        let hl = parse_trailer(bytes)? as usize;
        let start = bytes
            .len()
            .checked_sub(TRAILER_LEN + hl)
            .ok_or(RepoError::Truncated {
                what: "pack header",
                need: hl + TRAILER_LEN,
                have: bytes.len(),
            })?;
        let entries = read_header(
            opener,
            id,
            bytes.len() as u64,
            &bytes[start..bytes.len() - TRAILER_LEN],
        )?;
        Ok(PackReader { bytes, entries })
    }

    /// Blobs listed in the header.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The sealed bytes of one entry.
    pub fn sealed(&self, e: &IndexEntry) -> Result<&'a [u8]> {
        sealed_slice(self.bytes, e)
    }
}

/// Slice out a blob's sealed bytes (from a pack or a ranged read starting at offset 0 of the pack).
pub fn sealed_slice<'b>(pack: &'b [u8], e: &IndexEntry) -> Result<&'b [u8]> {
    let start = e.offset as usize;
    let end = start + e.length as usize;
    pack.get(start..end).ok_or(RepoError::Truncated {
        what: "pack blob",
        need: end,
        have: pack.len(),
    })
}

/// Decrypt one blob and check that its plaintext hashes to its id (what `check --read-data`
/// does for every blob).
pub fn open_blob(
    opener: &mut Opener,
    keys: &RepoKeys,
    e: &IndexEntry,
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let plain = opener.open(e.kind.object_type(), &e.id, sealed)?;
    let got = keys.blob_id(e.kind, &plain);
    if got != e.id {
        return Err(RepoError::IdMismatch {
            what: "blob",
            expected: e.id.to_hex(),
            computed: got.to_hex(),
        });
    }
    if plain.len() as u64 != u64::from(e.raw_len) {
        return Err(RepoError::LengthMismatch {
            what: "blob",
            declared: e.raw_len.into(),
            actual: plain.len() as u64,
        });
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use proptest::prelude::*;

    fn build(blobs: &[Vec<u8>]) -> (RepoKeys, FinishedPack) {
        let k = MasterKey::from_bytes([4; 32]).derive().unwrap();
        let mut s = k.sealer([9; 16], 3).unwrap();
        let mut b = PackBuilder::new(1 << 20);
        for p in blobs {
            let id = k.blob_id(BlobKind::Data, p);
            b.add(
                BlobKind::Data,
                id,
                &seal_blob(&mut s, BlobKind::Data, &id, p).unwrap(),
            )
            .unwrap();
        }
        let f = b.finish(&mut s).unwrap();
        (k, f)
    }

    #[test]
    fn build_and_read_back() {
        let blobs: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; 1000 * usize::from(i + 1)])
            .collect();
        let (k, f) = build(&blobs);
        let mut o = k.opener();
        let r = PackReader::open(&mut o, &f.id, &f.bytes, true).unwrap();
        assert_eq!(r.entries(), &f.entries[..]);
        for (e, p) in r.entries().iter().zip(&blobs) {
            assert_eq!(e.raw_len as usize, p.len());
            assert_eq!(&open_blob(&mut o, &k, e, r.sealed(e).unwrap()).unwrap(), p);
        }
        // Moving a blob to another entry's id fails authentication (id is bound as AAD).
        let mut e = f.entries[0];
        e.id = f.entries[1].id;
        assert!(matches!(
            open_blob(
                &mut o,
                &k,
                &e,
                sealed_slice(&f.bytes, &f.entries[0]).unwrap()
            ),
            Err(RepoError::Authentication { .. })
        ));
    }

    /// safeguard: 164.312(c)(1), 164.312(c)(2), 164.312(e)(2)(i)
    #[test]
    fn corruption_is_detected() {
        let (k, f) = build(&[b"abc".repeat(100)]);
        let mut o = k.opener();
        let mut bad = f.bytes.clone();
        bad[10] ^= 1;
        assert!(matches!(
            PackReader::open(&mut o, &f.id, &bad, true),
            Err(RepoError::IdMismatch { .. })
        ));
        let r = PackReader::open(&mut o, &f.id, &bad, false).unwrap();
        let e = r.entries()[0];
        assert!(matches!(
            open_blob(&mut o, &k, &e, r.sealed(&e).unwrap()),
            Err(RepoError::Authentication { .. })
        ));
        let n = f.bytes.len();
        assert!(matches!(
            PackReader::open(&mut o, &f.id, &f.bytes[..n - 1], false),
            Err(RepoError::BadMagic { .. })
        ));
        assert!(PackReader::open(&mut o, &f.id, &f.bytes[1..], false).is_err());
        assert!(matches!(
            PackBuilder::new(10).finish(&mut k.sealer([0; 16], 0).unwrap()),
            Err(RepoError::Invalid { .. })
        ));
    }

    #[test]
    fn seal_and_add_matches_add() {
        let k = MasterKey::from_bytes([4; 32]).derive().unwrap();
        let p = b"some blob content".repeat(50);
        let id = k.blob_id(BlobKind::Data, &p);
        let (mut s1, mut s2) = (k.sealer([1; 16], 3).unwrap(), k.sealer([1; 16], 3).unwrap());
        let mut a = PackBuilder::new(1 << 20);
        a.add(
            BlobKind::Data,
            id,
            &seal_blob(&mut s1, BlobKind::Data, &id, &p).unwrap(),
        )
        .unwrap();
        let mut b = PackBuilder::new(1 << 20);
        b.seal_and_add(&mut s2, BlobKind::Data, id, &p).unwrap();
        let (fa, fb) = (a.finish(&mut s1).unwrap(), b.finish(&mut s2).unwrap());
        assert_eq!(fa.bytes, fb.bytes);
        assert_eq!(fa.entries, fb.entries);
    }

    #[test]
    fn builder_reports_full() {
        let k = MasterKey::from_bytes([4; 32]).derive().unwrap();
        let mut s = k.sealer([9; 16], 0).unwrap();
        let mut b = PackBuilder::new(1000);
        let sealed = seal_blob(&mut s, BlobKind::Tree, &Id::ZERO, &[1; 600]).unwrap();
        b.add(BlobKind::Tree, Id::ZERO, &sealed).unwrap();
        assert!(!b.is_full());
        assert!(b.add(BlobKind::Data, Id::ZERO, &sealed).is_err());
        b.add(BlobKind::Tree, Id::ZERO, &sealed).unwrap();
        assert!(b.is_full());
        assert_eq!(b.blob_count(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn pack_round_trip(blobs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2000), 1..6)) {
            let (k, f) = build(&blobs);
            let mut o = k.opener();
            let r = PackReader::open(&mut o, &f.id, &f.bytes, true).unwrap();
            for (e, p) in r.entries().iter().zip(&blobs) {
                prop_assert_eq!(&open_blob(&mut o, &k, e, r.sealed(e).unwrap()).unwrap(), p);
            }
        }

        #[test]
        fn mutated_pack_never_panics(
            blobs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..500), 1..4),
            at in any::<prop::sample::Index>(),
            x in 1u8..=255,
        ) {
            let (k, f) = build(&blobs);
            let mut bad = f.bytes.clone();
            let i = at.index(bad.len());
            bad[i] ^= x;
            let mut o = k.opener();
            prop_assert!(PackReader::open(&mut o, &f.id, &bad, true).is_err());
            // Without the id check the damage is still found: header or blob fails to open.
            let ok = PackReader::open(&mut o, &f.id, &bad, false)
                .map(|r| r.entries().iter().all(|e| r.sealed(e).and_then(|s| open_blob(&mut o, &k, e, s)).is_ok()));
            prop_assert!(!matches!(ok, Ok(true)));
        }

        #[test]
        fn pack_open_never_panics(b in prop::collection::vec(any::<u8>(), 0..400)) {
            let k = MasterKey::from_bytes([4; 32]).derive().unwrap();
            let _ = PackReader::open(&mut k.opener(), &Id::ZERO, &b, false);
            let _ = parse_trailer(&b);
            let _ = codec::decode::<PackHeader>("pack header", &b);
        }
    }
}
