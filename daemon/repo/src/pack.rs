//! Pack files: many blobs followed by an encrypted header, so packs are self-describing
//! and the index can be rebuilt from them (as in restic).
//!
//! Version 2 (written):
//! ```text
//! pack    = blob_1 || ... || blob_n || header || trailer
//! blob_i  = AES-256-GCM-SIV ciphertext || tag           (no header: see crypto.rs)
//! header  = AES-256-GCM-SIV(pack key of `epoch`, nonce, aad = "LTHP" 02 epoch,
//!             count u32 || count x entry (46 bytes) || zero padding) || tag
//! entry   = kind u8 || format u8 || epoch u32 || id [32] || length u32 || raw_len u32
//! trailer = nonce [12] || (header_len u32 || epoch u32) XOR mask [8] || "LPK2"
//! mask    = first 8 bytes of BLAKE3-keyed(trailer key, "lethe/v2/pack-trailer-mask" || nonce)
//! ```
//! The padding makes the whole pack a Padmé length. Nothing in a version-2 pack is
//! readable without the key except the final magic: no blob boundary, blob count, blob
//! size or header length, so a storage observer sees only the pack's size class.
//!
//! Version 1 (read only): `blob_i` are sealed objects with their own 36-byte header,
//! then `sealed_header || header_len u32 || "LPK1"` with a postcard header.
//! The pack's file name is the unkeyed BLAKE3 of all its bytes.

use crate::codec;
use crate::crypto::{Opener, RepoKeys, Sealer};
use crate::error::{need, RepoError, Result};
use crate::ids::Id;
use crate::index::{BlobFormat, IndexEntry};
use crate::object::{padme, BlobKind, Compression, ObjectType, OVERHEAD_V1, TAG_LEN};
use serde::{Deserialize, Serialize};

/// Default target pack size (restic's default; packs of ~16 blobs of 1 MiB).
pub const DEFAULT_PACK_TARGET: u32 = 16 << 20;
/// Magic at the very end of every version-2 pack.
pub const PACK_MAGIC: [u8; 4] = *b"LPK2";
/// Magic at the very end of every version-1 pack.
pub const PACK_MAGIC_V1: [u8; 4] = *b"LPK1";
/// Version-2 trailer: nonce (12) + masked lengths (8) + magic (4).
pub const TRAILER_LEN: usize = 24;
/// Version-1 trailer: header_len (4) + magic (4).
pub const TRAILER_LEN_V1: usize = 8;
/// Bytes of one version-2 header entry.
pub const ENTRY_LEN: usize = 46;
/// Most blobs one pack may list (bounds header parsing).
pub const MAX_PACK_ENTRIES: usize = 1 << 20;

/// One blob as listed in a version-1 pack header.
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

/// Plaintext of a version-1 pack header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PackHeader {
    /// Blobs in file order.
    pub entries: Vec<PackHeaderEntry>,
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

#[derive(Clone, Copy, Debug)]
struct Entry {
    kind: BlobKind,
    id: Id,
    length: u32,
    raw_len: u32,
    compression: Compression,
    epoch: u32,
}

/// Accumulates version-2 blobs up to a target size.
pub struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<Entry>,
    target: usize,
}

fn too_large() -> RepoError {
    RepoError::Invalid {
        what: "pack builder",
        detail: "pack too large; finish it first".into(),
    }
}

impl PackBuilder {
    /// New builder aiming at `target` bytes.
    pub fn new(target: u32) -> PackBuilder {
        PackBuilder {
            buf: Vec::new(),
            entries: Vec::new(),
            target: target as usize,
        }
    }

    fn room(&self, more: usize) -> Result<()> {
        if self.buf.len() + more > u32::MAX as usize / 2 || self.entries.len() >= MAX_PACK_ENTRIES {
            return Err(too_large());
        }
        Ok(())
    }

    /// Seal `plaintext` straight into the pack buffer. `id` must be
    /// `keys.blob_id(kind, plaintext)`.
    pub fn seal_and_add(
        &mut self,
        sealer: &mut Sealer,
        kind: BlobKind,
        id: Id,
        plaintext: &[u8],
    ) -> Result<()> {
        self.room(plaintext.len() + TAG_LEN)?;
        if self.buf.capacity() == 0 {
            self.buf
                .reserve(self.target.min(plaintext.len().max(1) * 16));
        }
        let (n, compression) = sealer.seal_blob_into(kind, &id, plaintext, &mut self.buf)?;
        self.entries.push(Entry {
            kind,
            id,
            length: n as u32,
            raw_len: plaintext.len() as u32,
            compression,
            epoch: sealer.epoch(),
        });
        Ok(())
    }

    /// Append a version-2 blob as it is stored elsewhere (repack copies blobs without
    /// decrypting them). `e` describes it; its format must be version 2.
    pub fn add_sealed(&mut self, e: &IndexEntry, sealed: &[u8]) -> Result<()> {
        let BlobFormat::V2 { compression, epoch } = e.format else {
            return Err(RepoError::Invalid {
                what: "pack builder",
                detail: "only version-2 blobs are copied as they are".into(),
            });
        };
        if sealed.len() != e.length as usize || sealed.len() < TAG_LEN {
            return Err(RepoError::LengthMismatch {
                what: "blob copied into a pack",
                declared: u64::from(e.length),
                actual: sealed.len() as u64,
            });
        }
        self.room(sealed.len())?;
        self.buf.extend_from_slice(sealed);
        self.entries.push(Entry {
            kind: e.kind,
            id: e.id,
            length: e.length,
            raw_len: e.raw_len,
            compression,
            epoch,
        });
        Ok(())
    }

    /// Move every blob of `other` into this pack (leftover packs of several workers are
    /// merged at the end of a run, so a small backup does not spread over small packs).
    pub fn absorb(&mut self, other: PackBuilder) -> Result<()> {
        self.room(other.buf.len())?;
        if self.entries.len() + other.entries.len() > MAX_PACK_ENTRIES {
            return Err(too_large());
        }
        self.buf.extend_from_slice(&other.buf);
        self.entries.extend(other.entries);
        Ok(())
    }

    /// Bytes of blobs so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// No blobs yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether it holds metadata (tree, extent-list) blobs rather than data blobs.
    pub fn holds_metadata(&self) -> bool {
        self.entries.first().is_some_and(|e| e.kind.is_metadata())
    }

    /// Number of blobs.
    pub fn blob_count(&self) -> usize {
        self.entries.len()
    }

    /// True once the target size is reached: finish and start a new pack.
    pub fn is_full(&self) -> bool {
        self.buf.len() >= self.target
    }

    /// Append the encrypted, padded header and the trailer; compute the pack id and
    /// index entries.
    pub fn finish(mut self, sealer: &mut Sealer) -> Result<FinishedPack> {
        if self.is_empty() {
            return Err(RepoError::Invalid {
                what: "pack builder",
                detail: "empty pack".into(),
            });
        }
        let n = self.entries.len();
        let min_header = 4 + n * ENTRY_LEN;
        let unpadded = (self.buf.len() + min_header + TAG_LEN + TRAILER_LEN) as u64;
        let total = padme(unpadded) as usize;
        let mut plain = Vec::with_capacity(total - self.buf.len() - TAG_LEN - TRAILER_LEN);
        plain.extend_from_slice(&(n as u32).to_le_bytes());
        for e in &self.entries {
            plain.push(e.kind.code());
            plain.push(
                BlobFormat::V2 {
                    compression: e.compression,
                    epoch: e.epoch,
                }
                .code(),
            );
            plain.extend_from_slice(&e.epoch.to_le_bytes());
            plain.extend_from_slice(&e.id.0);
            plain.extend_from_slice(&e.length.to_le_bytes());
            plain.extend_from_slice(&e.raw_len.to_le_bytes());
        }
        plain.resize(total - self.buf.len() - TAG_LEN - TRAILER_LEN, 0);
        let (sealed, nonce) = sealer.seal_pack_header(&plain)?;
        let hl = u32::try_from(sealed.len()).map_err(|_| RepoError::Crypto("pack header size"))?;
        self.buf.extend_from_slice(&sealed);
        let mask = sealer.trailer_mask(&nonce);
        let mut lens = [0u8; 8];
        lens[..4].copy_from_slice(&hl.to_le_bytes());
        lens[4..].copy_from_slice(&sealer.epoch().to_le_bytes());
        self.buf.extend_from_slice(&nonce);
        self.buf
            .extend(lens.iter().zip(mask.iter()).map(|(a, b)| a ^ b));
        self.buf.extend_from_slice(&PACK_MAGIC);
        debug_assert_eq!(self.buf.len(), total);
        let id = Id::of_file(&self.buf);
        let mut off = 0u32;
        let entries = self
            .entries
            .iter()
            .map(|e| {
                let ie = IndexEntry {
                    id: e.id,
                    kind: e.kind,
                    pack: id,
                    offset: off,
                    length: e.length,
                    raw_len: e.raw_len,
                    format: BlobFormat::V2 {
                        compression: e.compression,
                        epoch: e.epoch,
                    },
                };
                off = off.saturating_add(e.length);
                ie
            })
            .collect();
        Ok(FinishedPack {
            id,
            bytes: self.buf,
            entries,
        })
    }
}

/// What the end of a pack says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trailer {
    /// Version 1: the header length in clear.
    V1 {
        /// Sealed header length.
        header_len: u32,
    },
    /// Version 2: header length and epoch, unmasked.
    V2 {
        /// Encrypted header length (ciphertext and tag).
        header_len: u32,
        /// Key epoch of the header.
        epoch: u32,
        /// Header nonce.
        nonce: [u8; 12],
    },
}

impl Trailer {
    /// Bytes of this trailer.
    pub fn len(&self) -> usize {
        match self {
            Trailer::V1 { .. } => TRAILER_LEN_V1,
            Trailer::V2 { .. } => TRAILER_LEN,
        }
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Length of the header before it.
    pub fn header_len(&self) -> u32 {
        match self {
            Trailer::V1 { header_len } | Trailer::V2 { header_len, .. } => *header_len,
        }
    }
}

/// Parse the trailer from the last bytes of a pack (`tail` holds at least the last 8
/// bytes, and the last [`TRAILER_LEN`] for a version-2 pack).
pub fn parse_trailer(keys: &RepoKeys, tail: &[u8]) -> Result<Trailer> {
    need("pack trailer", tail, TRAILER_LEN_V1)?;
    let magic = &tail[tail.len() - 4..];
    if magic == PACK_MAGIC_V1 {
        let l = &tail[tail.len() - 8..tail.len() - 4];
        return Ok(Trailer::V1 {
            header_len: u32::from_le_bytes(l.try_into().unwrap_or_default()),
        });
    }
    if magic != PACK_MAGIC {
        return Err(RepoError::BadMagic {
            what: "pack trailer",
            found: magic.to_vec(),
        });
    }
    need("pack trailer", tail, TRAILER_LEN)?;
    let t = &tail[tail.len() - TRAILER_LEN..];
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&t[..12]);
    let mask = keys.trailer_mask(&nonce);
    let mut lens = [0u8; 8];
    for (i, b) in lens.iter_mut().enumerate() {
        *b = t[12 + i] ^ mask[i];
    }
    Ok(Trailer::V2 {
        header_len: u32::from_le_bytes(lens[..4].try_into().unwrap_or_default()),
        epoch: u32::from_le_bytes(lens[4..].try_into().unwrap_or_default()),
        nonce,
    })
}

/// Decrypt and check a pack header given the pack's total length and its trailer.
/// Entries must exactly tile the bytes before the header.
pub fn read_header(
    keys: &RepoKeys,
    opener: &mut Opener,
    pack: &Id,
    pack_len: u64,
    trailer: &Trailer,
    sealed_header: &[u8],
) -> Result<Vec<IndexEntry>> {
    let (entries, formats): (Vec<PackHeaderEntry>, Vec<BlobFormat>) = match trailer {
        Trailer::V1 { .. } => {
            let plain = opener.open(ObjectType::PackHeader, &Id::ZERO, sealed_header)?;
            let h: PackHeader = codec::decode("pack header", &plain)?;
            let n = h.entries.len();
            (h.entries, vec![BlobFormat::V1; n])
        }
        Trailer::V2 { epoch, nonce, .. } => {
            let plain = keys.open_pack_header(*epoch, nonce, sealed_header)?;
            parse_v2_header(&plain)?
        }
    };
    if entries.is_empty() || entries.len() > MAX_PACK_ENTRIES {
        return Err(RepoError::OutOfRange {
            what: "pack header entries",
            value: entries.len() as u64,
            min: 1,
            max: MAX_PACK_ENTRIES as u64,
        });
    }
    let blobs_len = pack_len
        .checked_sub(sealed_header.len() as u64 + trailer.len() as u64)
        .ok_or(RepoError::Truncated {
            what: "pack",
            need: sealed_header.len() + trailer.len(),
            have: pack_len as usize,
        })?;
    let sum: u64 = entries.iter().map(|e| u64::from(e.length)).sum();
    if sum != blobs_len {
        return Err(RepoError::LengthMismatch {
            what: "pack blobs",
            declared: sum,
            actual: blobs_len,
        });
    }
    let mut off = 0u32;
    let mut out = Vec::with_capacity(entries.len());
    for (e, f) in entries.iter().zip(formats) {
        if (e.length as usize) < f.min_len() {
            return Err(RepoError::Invalid {
                what: "pack header",
                detail: format!("blob {} shorter than its overhead", e.id),
            });
        }
        out.push(IndexEntry {
            id: e.id,
            kind: e.kind,
            pack: *pack,
            offset: off,
            length: e.length,
            raw_len: e.raw_len,
            format: f,
        });
        off = off.saturating_add(e.length);
    }
    Ok(out)
}

fn parse_v2_header(plain: &[u8]) -> Result<(Vec<PackHeaderEntry>, Vec<BlobFormat>)> {
    need("pack header", plain, 4)?;
    let n = u32::from_le_bytes(plain[..4].try_into().unwrap_or_default()) as usize;
    if n == 0 || n > MAX_PACK_ENTRIES {
        return Err(RepoError::OutOfRange {
            what: "pack header entries",
            value: n as u64,
            min: 1,
            max: MAX_PACK_ENTRIES as u64,
        });
    }
    let end = 4 + n * ENTRY_LEN;
    need("pack header", plain, end)?;
    if plain[end..].iter().any(|b| *b != 0) {
        return Err(RepoError::Invalid {
            what: "pack header",
            detail: "padding is not zero".into(),
        });
    }
    let mut entries = Vec::with_capacity(n);
    let mut formats = Vec::with_capacity(n);
    for c in plain[4..end].chunks_exact(ENTRY_LEN) {
        let kind = BlobKind::from_code(c[0])?;
        let epoch = u32::from_le_bytes(c[2..6].try_into().unwrap_or_default());
        let format = BlobFormat::from_code(c[1], epoch)?;
        if format == BlobFormat::V1 {
            return Err(RepoError::Invalid {
                what: "pack header",
                detail: "a version-2 pack holds only version-2 blobs".into(),
            });
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&c[6..38]);
        entries.push(PackHeaderEntry {
            kind,
            id: Id(id),
            length: u32::from_le_bytes(c[38..42].try_into().unwrap_or_default()),
            raw_len: u32::from_le_bytes(c[42..46].try_into().unwrap_or_default()),
        });
        formats.push(format);
    }
    Ok((entries, formats))
}

/// Reads a whole pack held in memory.
pub struct PackReader<'a> {
    bytes: &'a [u8],
    entries: Vec<IndexEntry>,
}

impl<'a> PackReader<'a> {
    /// Verify the file id (if `verify_id`), then parse trailer and header.
    pub fn open(
        keys: &RepoKeys,
        opener: &mut Opener,
        id: &Id,
        bytes: &'a [u8],
        verify_id: bool,
    ) -> Result<PackReader<'a>> {
        if verify_id {
            id.verify_file("pack", bytes)?;
        }
        let trailer = parse_trailer(keys, bytes)?;
        let hl = trailer.header_len() as usize;
        let start = bytes
            .len()
            .checked_sub(trailer.len() + hl)
            .ok_or(RepoError::Truncated {
                what: "pack header",
                need: hl + trailer.len(),
                have: bytes.len(),
            })?;
        let entries = read_header(
            keys,
            opener,
            id,
            bytes.len() as u64,
            &trailer,
            &bytes[start..bytes.len() - trailer.len()],
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
    let plain = match e.format {
        BlobFormat::V1 => {
            if sealed.len() < OVERHEAD_V1 {
                return Err(RepoError::Truncated {
                    what: "blob",
                    need: OVERHEAD_V1,
                    have: sealed.len(),
                });
            }
            opener.open(e.kind.object_type(), &e.id, sealed)?
        }
        BlobFormat::V2 { compression, epoch } => {
            keys.open_blob_v2(e.kind, &e.id, compression, epoch, e.raw_len, sealed)?
        }
    };
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
            b.seal_and_add(&mut s, BlobKind::Data, id, p).unwrap();
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
        assert_eq!(padme(f.bytes.len() as u64), f.bytes.len() as u64);
        let mut o = k.opener();
        let r = PackReader::open(&k, &mut o, &f.id, &f.bytes, true).unwrap();
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
        // Without the key the trailer says nothing about the header length.
        let other = MasterKey::from_bytes([5; 32]).derive().unwrap();
        let t = parse_trailer(&other, &f.bytes).unwrap();
        assert_ne!(t, parse_trailer(&k, &f.bytes).unwrap());
    }

    #[test]
    fn nothing_in_a_pack_shows_blob_boundaries() {
        let blobs: Vec<Vec<u8>> = (0..8u8)
            .map(|i| {
                let mut v = vec![0u8; 3000 + 700 * usize::from(i)];
                blake3::Hasher::new()
                    .update(&[i])
                    .finalize_xof()
                    .fill(&mut v);
                v
            })
            .collect();
        let (_, f) = build(&blobs);
        // No object magic, no header length, no blob count in clear.
        assert!(!f.bytes.windows(4).any(|w| w == b"LTHO"));
        let n = f.bytes.len();
        assert_eq!(&f.bytes[n - 4..], b"LPK2");
        // Two packs of the same blob count and nearly the same size are the same size.
        let (_, g) = build(
            &blobs
                .iter()
                .map(|b| [b.as_slice(), b"x"].concat())
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            f.bytes.len(),
            g.bytes.len(),
            "Padmé hides small differences"
        );
    }

    /// safeguard: 164.312(c)(1), 164.312(c)(2), 164.312(e)(2)(i)
    #[test]
    fn corruption_is_detected() {
        let (k, f) = build(&[b"abc".repeat(100)]);
        let mut o = k.opener();
        let mut bad = f.bytes.clone();
        bad[10] ^= 1;
        assert!(matches!(
            PackReader::open(&k, &mut o, &f.id, &bad, true),
            Err(RepoError::IdMismatch { .. })
        ));
        let r = PackReader::open(&k, &mut o, &f.id, &bad, false).unwrap();
        let e = r.entries()[0];
        assert!(matches!(
            open_blob(&mut o, &k, &e, r.sealed(&e).unwrap()),
            Err(RepoError::Authentication { .. })
        ));
        let n = f.bytes.len();
        assert!(matches!(
            PackReader::open(&k, &mut o, &f.id, &f.bytes[..n - 1], false),
            Err(RepoError::BadMagic { .. })
        ));
        assert!(PackReader::open(&k, &mut o, &f.id, &f.bytes[1..], false).is_err());
        assert!(matches!(
            PackBuilder::new(10).finish(&mut k.sealer([0; 16], 0).unwrap()),
            Err(RepoError::Invalid { .. })
        ));
    }

    #[test]
    fn copied_and_merged_blobs_read_back() {
        let k = MasterKey::from_bytes([4; 32]).derive().unwrap();
        let mut s = k.sealer([1; 16], 3).unwrap();
        let p = b"some blob content".repeat(50);
        let q = b"another one".repeat(30);
        let (ip, iq) = (k.blob_id(BlobKind::Data, &p), k.blob_id(BlobKind::Tree, &q));
        let mut a = PackBuilder::new(1 << 20);
        a.seal_and_add(&mut s, BlobKind::Data, ip, &p).unwrap();
        let fa = a.finish(&mut s).unwrap();
        // Repack: copy a blob as stored; merge a second builder in.
        let mut b = PackBuilder::new(1 << 20);
        b.add_sealed(
            &fa.entries[0],
            sealed_slice(&fa.bytes, &fa.entries[0]).unwrap(),
        )
        .unwrap();
        let mut c = PackBuilder::new(1 << 20);
        c.seal_and_add(&mut s, BlobKind::Tree, iq, &q).unwrap();
        b.absorb(c).unwrap();
        let fb = b.finish(&mut s).unwrap();
        let mut o = k.opener();
        let r = PackReader::open(&k, &mut o, &fb.id, &fb.bytes, true).unwrap();
        assert_eq!(r.entries().len(), 2);
        assert_eq!(
            open_blob(
                &mut o,
                &k,
                &r.entries()[0],
                r.sealed(&r.entries()[0]).unwrap()
            )
            .unwrap(),
            p
        );
        assert_eq!(
            open_blob(
                &mut o,
                &k,
                &r.entries()[1],
                r.sealed(&r.entries()[1]).unwrap()
            )
            .unwrap(),
            q
        );
        let mut v1 = fa.entries[0];
        v1.format = BlobFormat::V1;
        assert!(PackBuilder::new(1 << 20).add_sealed(&v1, &[0; 60]).is_err());
    }

    #[test]
    fn builder_reports_full() {
        let k = MasterKey::from_bytes([4; 32]).derive().unwrap();
        let mut s = k.sealer([9; 16], 0).unwrap();
        let mut b = PackBuilder::new(1000);
        b.seal_and_add(&mut s, BlobKind::Tree, Id::ZERO, &[1; 600])
            .unwrap();
        assert!(!b.is_full());
        b.seal_and_add(&mut s, BlobKind::Tree, Id([1; 32]), &[1; 600])
            .unwrap();
        assert!(b.is_full());
        assert_eq!(b.blob_count(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn pack_round_trip(blobs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2000), 1..6)) {
            let (k, f) = build(&blobs);
            let mut o = k.opener();
            let r = PackReader::open(&k, &mut o, &f.id, &f.bytes, true).unwrap();
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
            prop_assert!(PackReader::open(&k, &mut o, &f.id, &bad, true).is_err());
            // Without the id check the damage is still found: header or blob fails to open.
            let ok = PackReader::open(&k, &mut o, &f.id, &bad, false)
                .map(|r| r.entries().iter().all(|e| r.sealed(e).and_then(|s| open_blob(&mut o, &k, e, s)).is_ok()));
            prop_assert!(!matches!(ok, Ok(true)));
        }

        #[test]
        fn pack_open_never_panics(b in prop::collection::vec(any::<u8>(), 0..400)) {
            let k = MasterKey::from_bytes([4; 32]).derive().unwrap();
            let _ = PackReader::open(&k, &mut k.opener(), &Id::ZERO, &b, false);
            let _ = parse_trailer(&k, &b);
            let _ = parse_v2_header(&b);
            let _ = codec::decode::<PackHeader>("pack header", &b);
        }
    }
}
