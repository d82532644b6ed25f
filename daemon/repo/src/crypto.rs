//! Key hierarchy, sealing (compress + AES-256-GCM-SIV) and opening of objects.
//!
//! * A [`Keyring`] holds the repository's master keys, one per *epoch*: epoch 0 is the
//!   master created by `init` (the only one in a version-1 repository); `key rotate`
//!   appends a new one, which encrypts everything written afterwards.
//! * Blob ids, the chunker's gear table, the pack-trailer mask and lock-file names come
//!   from the epoch-0 master, with the version-1 labels where version 1 had them, so
//!   deduplication carries across the format change and across key rotations.
//! * Per epoch: an encryption root (standalone files: `HKDF(session id, root,
//!   "lethe/v2/session-key")` per writer session, counter nonces), a blob key (blobs in
//!   packs, nonce = the first 12 bytes of the blob id) and a pack-header key.
//! * The AEAD is AES-256-GCM-SIV (RFC 8452): nonce-misuse resistant. A VM restored
//!   from a snapshot mid-backup replays its sealer state and seals new plaintexts under
//!   (key, nonce) pairs it already used; with SIV this reveals only whether two such
//!   plaintexts are identical, where GCM would reveal their XOR and the GHASH key.
//!   Version-1 objects (AES-256-GCM) stay readable.
//! * Associated data binds the header (type, compression, epoch, lengths) and the blob
//!   id, so a blob cannot be swapped for another or retyped.

use crate::codec;
use crate::error::{RepoError, Result};
use crate::ids::Id;
use crate::object::{
    padme, BlobKind, Compression, ObjectHeader, ObjectType, FORMAT_V1, FORMAT_V2, HEADER_LEN,
    MAX_PLAINTEXT, TAG_LEN,
};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, AES_256_GCM_SIV};
use aws_lc_rs::hkdf::{KeyType, Salt, HKDF_SHA256};
use zeroize::Zeroizing;

/// Objects one session may seal before it must be replaced.
pub const MAX_SESSION_OBJECTS: u64 = 1 << 32;
/// zstd level used unless the config says otherwise.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// Most epochs a keyring may hold (bounds parsing).
pub const MAX_EPOCHS: usize = 1024;

const SALT_V1: &[u8] = b"lethe-repo-v1";
const SALT_V2: &[u8] = b"lethe-repo-v2";
/// Associated-data prefix of version-2 blobs.
pub const BLOB_AAD_MAGIC: [u8; 4] = *b"LTHB";
/// Associated-data prefix of version-2 pack headers.
pub const PACK_AAD_MAGIC: [u8; 4] = *b"LTHP";

struct Len32;
impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// HKDF-SHA256 with 32 bytes of output.
pub(crate) fn hkdf32(salt: &[u8], ikm: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    Salt::new(HKDF_SHA256, salt)
        .extract(ikm)
        .expand(&[info], Len32)
        .and_then(|okm| okm.fill(&mut out[..]))
        .map_err(|_| RepoError::Crypto("hkdf"))?;
    Ok(out)
}

fn gcm_key(bytes: &[u8; 32]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| RepoError::Crypto("aes key"))
}

fn siv_key(bytes: &[u8; 32]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM_SIV, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| RepoError::Crypto("aes-gcm-siv key"))
}

/// A repository master secret. Zeroized on drop.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Wrap 32 secret bytes (the caller supplies randomness: this crate does no I/O).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(Zeroizing::new(bytes))
    }

    /// The raw secret (for wrapping only).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Derive the working keys of a repository whose only master is this one.
    pub fn derive(&self) -> Result<RepoKeys> {
        Keyring::new(self.clone()).derive()
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// The master keys of a repository, one per epoch (index = epoch).
#[derive(Clone)]
pub struct Keyring {
    masters: Vec<MasterKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} epochs)", self.masters.len())
    }
}

impl Keyring {
    /// A keyring with one epoch.
    pub fn new(first: MasterKey) -> Keyring {
        Keyring {
            masters: vec![first],
        }
    }

    /// Number of epochs.
    pub fn len(&self) -> usize {
        self.masters.len()
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The epoch new data is written under (the newest).
    pub fn current_epoch(&self) -> u32 {
        (self.masters.len() - 1) as u32
    }

    /// The master of `epoch`.
    pub fn master(&self, epoch: u32) -> Option<&MasterKey> {
        self.masters.get(epoch as usize)
    }

    /// The epoch-0 master (blob ids, chunker, recovery of version-1 repositories).
    pub fn first(&self) -> &MasterKey {
        &self.masters[0]
    }

    /// This keyring plus a new epoch (`key rotate`).
    pub fn rotated(&self, new: MasterKey) -> Result<Keyring> {
        if self.masters.len() >= MAX_EPOCHS {
            return Err(RepoError::KeyPolicy("too many key epochs"));
        }
        let mut masters = self.masters.clone();
        masters.push(new);
        Ok(Keyring { masters })
    }

    /// Plaintext wrapped into key files: postcard `Vec<[u8; 32]>`.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        let raw: Zeroizing<Vec<[u8; 32]>> =
            Zeroizing::new(self.masters.iter().map(|m| *m.as_bytes()).collect());
        Ok(Zeroizing::new(codec::encode("keyring", &*raw)?))
    }

    /// Parse a keyring plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Keyring> {
        let raw: Zeroizing<Vec<[u8; 32]>> = Zeroizing::new(codec::decode("keyring", bytes)?);
        if raw.is_empty() || raw.len() > MAX_EPOCHS {
            return Err(RepoError::OutOfRange {
                what: "keyring epochs",
                value: raw.len() as u64,
                min: 1,
                max: MAX_EPOCHS as u64,
            });
        }
        Ok(Keyring {
            masters: raw.iter().map(|m| MasterKey::from_bytes(*m)).collect(),
        })
    }

    /// Derive all working keys.
    pub fn derive(&self) -> Result<RepoKeys> {
        let m0 = &self.masters[0].0[..];
        let v1 = |label: &[u8]| hkdf32(SALT_V1, m0, label);
        let v2 = |label: &[u8]| hkdf32(SALT_V2, m0, label);
        let mut epochs = Vec::with_capacity(self.masters.len());
        for m in &self.masters {
            let d = |label: &[u8]| hkdf32(SALT_V2, &m.0[..], label);
            epochs.push(EpochKeys {
                enc_root: d(b"lethe/v2/encryption-root")?,
                blob: d(b"lethe/v2/blob-key")?,
                pack: d(b"lethe/v2/pack-header-key")?,
            });
        }
        Ok(RepoKeys {
            v1_enc_root: v1(b"lethe/v1/encryption-root")?,
            id_data: v1(b"lethe/v1/blob-id/data")?,
            id_tree: v1(b"lethe/v1/blob-id/tree")?,
            id_extents: v1(b"lethe/v1/blob-id/extent-list")?,
            gear: v1(b"lethe/v1/chunker-gear")?,
            trailer: v2(b"lethe/v2/pack-trailer")?,
            lock: v2(b"lethe/v2/lock-names")?,
            epochs,
        })
    }
}

struct EpochKeys {
    enc_root: Zeroizing<[u8; 32]>,
    blob: Zeroizing<[u8; 32]>,
    pack: Zeroizing<[u8; 32]>,
}

/// Working keys derived from a keyring.
pub struct RepoKeys {
    v1_enc_root: Zeroizing<[u8; 32]>,
    id_data: Zeroizing<[u8; 32]>,
    id_tree: Zeroizing<[u8; 32]>,
    id_extents: Zeroizing<[u8; 32]>,
    gear: Zeroizing<[u8; 32]>,
    trailer: Zeroizing<[u8; 32]>,
    lock: Zeroizing<[u8; 32]>,
    epochs: Vec<EpochKeys>,
}

/// Associated data of a version-2 blob.
pub fn blob_aad(
    kind: BlobKind,
    compression: Compression,
    epoch: u32,
    raw_len: u32,
    id: &Id,
) -> [u8; 48] {
    let mut a = [0u8; 48];
    a[..4].copy_from_slice(&BLOB_AAD_MAGIC);
    a[4] = FORMAT_V2;
    a[5] = kind.code();
    a[6] = compression as u8;
    a[8..12].copy_from_slice(&epoch.to_le_bytes());
    a[12..16].copy_from_slice(&raw_len.to_le_bytes());
    a[16..48].copy_from_slice(&id.0);
    a
}

/// Nonce of a version-2 blob: the first 12 bytes of its id (unique per content; with
/// SIV a repeat only shows that two stored copies hold the same plaintext).
pub fn blob_nonce(id: &Id) -> [u8; 12] {
    let mut n = [0u8; 12];
    n.copy_from_slice(&id.0[..12]);
    n
}

impl RepoKeys {
    fn id_key(&self, kind: BlobKind) -> &[u8; 32] {
        match kind {
            BlobKind::Data => &self.id_data,
            BlobKind::Tree => &self.id_tree,
            BlobKind::ExtentList => &self.id_extents,
        }
    }

    /// Keyed BLAKE3 blob id of a plaintext.
    pub fn blob_id(&self, kind: BlobKind, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(self.id_key(kind), plaintext).as_bytes())
    }

    /// Incremental hasher producing the same id as [`RepoKeys::blob_id`].
    pub fn blob_hasher(&self, kind: BlobKind) -> blake3::Hasher {
        blake3::Hasher::new_keyed(self.id_key(kind))
    }

    /// Secret from which the chunker's gear table is derived.
    pub fn gear_key(&self) -> &[u8; 32] {
        &self.gear
    }

    /// A keyed hash for names that must not identify this host to the storage
    /// provider (lock files): hex of the first 16 bytes.
    pub fn private_name(&self, what: &str, value: &[u8]) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.lock);
        h.update(what.as_bytes());
        h.update(&[0]);
        h.update(value);
        h.finalize().as_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The epoch new data is written under.
    pub fn current_epoch(&self) -> u32 {
        (self.epochs.len() - 1) as u32
    }

    /// Number of epochs known.
    pub fn epochs(&self) -> usize {
        self.epochs.len()
    }

    fn epoch(&self, e: u32) -> Result<&EpochKeys> {
        self.epochs.get(e as usize).ok_or(RepoError::UnknownEpoch {
            epoch: e,
            known: self.epochs.len() as u32,
        })
    }

    /// Start an encryption session under the current epoch. `session_id` must be fresh
    /// random bytes.
    pub fn sealer(&self, session_id: [u8; 16], zstd_level: i32) -> Result<Sealer> {
        let epoch = self.current_epoch();
        let ek = self.epoch(epoch)?;
        let key = hkdf32(&session_id, &ek.enc_root[..], b"lethe/v2/session-key")?;
        Ok(Sealer {
            session: session_id,
            counter: 0,
            epoch,
            key: siv_key(&key)?,
            blob_key: siv_key(&ek.blob)?,
            pack_key: siv_key(&ek.pack)?,
            trailer: self.trailer.clone(),
            level: zstd_level,
            scratch: Vec::new(),
            compressor: None,
        })
    }

    /// A decryptor for standalone objects of both versions (caches the last session key).
    pub fn opener(&self) -> Opener {
        Opener {
            v1_enc_root: self.v1_enc_root.clone(),
            enc_roots: self.epochs.iter().map(|e| e.enc_root.clone()).collect(),
            cache: None,
        }
    }

    /// Decrypt a version-2 blob and decompress it. The caller checks the id.
    pub fn open_blob_v2(
        &self,
        kind: BlobKind,
        id: &Id,
        compression: Compression,
        epoch: u32,
        raw_len: u32,
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        let what = kind.object_type().name();
        if sealed.len() < TAG_LEN {
            return Err(RepoError::Truncated {
                what,
                need: TAG_LEN,
                have: sealed.len(),
            });
        }
        let key = siv_key(&self.epoch(epoch)?.blob)?;
        let mut body = sealed.to_vec();
        let n = key
            .open_in_place(
                Nonce::assume_unique_for_key(blob_nonce(id)),
                Aad::from(&blob_aad(kind, compression, epoch, raw_len, id)[..]),
                &mut body,
            )
            .map_err(|_| RepoError::Authentication { what })?
            .len();
        body.truncate(n);
        let plain = match compression {
            Compression::None => body,
            Compression::Zstd => zstd::bulk::decompress(&body, raw_len as usize).map_err(|e| {
                RepoError::Decompress {
                    what,
                    detail: e.to_string(),
                }
            })?,
        };
        if plain.len() != raw_len as usize {
            return Err(RepoError::LengthMismatch {
                what,
                declared: u64::from(raw_len),
                actual: plain.len() as u64,
            });
        }
        Ok(plain)
    }

    /// The 8-byte mask hiding a version-2 pack's header length and epoch.
    pub fn trailer_mask(&self, nonce: &[u8; 12]) -> [u8; 8] {
        trailer_mask(&self.trailer, nonce)
    }

    /// Decrypt a version-2 pack header (ciphertext || tag).
    pub fn open_pack_header(&self, epoch: u32, nonce: &[u8; 12], sealed: &[u8]) -> Result<Vec<u8>> {
        let key = siv_key(&self.epoch(epoch)?.pack)?;
        let mut body = sealed.to_vec();
        let n = key
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(&pack_aad(epoch)[..]),
                &mut body,
            )
            .map_err(|_| RepoError::Authentication {
                what: "pack header",
            })?
            .len();
        body.truncate(n);
        Ok(body)
    }
}

fn trailer_mask(key: &[u8; 32], nonce: &[u8; 12]) -> [u8; 8] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(b"lethe/v2/pack-trailer-mask");
    h.update(nonce);
    let mut m = [0u8; 8];
    m.copy_from_slice(&h.finalize().as_bytes()[..8]);
    m
}

fn pack_aad(epoch: u32) -> [u8; 9] {
    let mut a = [0u8; 9];
    a[..4].copy_from_slice(&PACK_AAD_MAGIC);
    a[4] = FORMAT_V2;
    a[5..9].copy_from_slice(&epoch.to_le_bytes());
    a
}

fn aad(header: &[u8], binding: &Id) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + 32);
    a.extend_from_slice(header);
    a.extend_from_slice(&binding.0);
    a
}

/// One encryption session: compresses (optionally) and encrypts objects and blobs
/// under the keyring's current epoch.
pub struct Sealer {
    session: [u8; 16],
    counter: u64,
    epoch: u32,
    key: LessSafeKey,
    blob_key: LessSafeKey,
    pack_key: LessSafeKey,
    trailer: Zeroizing<[u8; 32]>,
    level: i32,
    scratch: Vec<u8>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl Sealer {
    /// The session id.
    pub fn session_id(&self) -> [u8; 16] {
        self.session
    }

    /// The key epoch this session seals under.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Objects sealed so far (= next counter).
    pub fn objects_sealed(&self) -> u64 {
        self.counter
    }

    fn next_counter(&mut self) -> Result<u64> {
        if self.counter >= MAX_SESSION_OBJECTS {
            return Err(RepoError::SessionExhausted(self.counter));
        }
        let c = self.counter;
        self.counter += 1;
        Ok(c)
    }

    /// Seal a standalone file (`ty` = index, snapshot, config, manifest) bound to
    /// `binding`. Compressed with zstd when it helps; zero-padded so that the whole file
    /// has a Padmé length.
    pub fn seal(&mut self, ty: ObjectType, binding: &Id, plaintext: &[u8]) -> Result<Vec<u8>> {
        let plain_len = plain_len(plaintext)?;
        let counter = self.next_counter()?;
        let compressed = self.compress(plaintext)?;
        let (compression, payload) = if compressed {
            (Compression::Zstd, &self.scratch[..])
        } else {
            (Compression::None, plaintext)
        };
        let header = ObjectHeader {
            version: FORMAT_V2,
            ty,
            compression,
            epoch: self.epoch,
            session: self.session,
            counter,
            plain_len,
        };
        let h = header.encode();
        let unpadded = (HEADER_LEN + payload.len() + TAG_LEN) as u64;
        let total = padme(unpadded) as usize;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&h);
        out.extend_from_slice(payload);
        out.resize(total - TAG_LEN, 0);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(header.nonce()),
                Aad::from(&aad(&h, binding)[..]),
                &mut out[HEADER_LEN..],
            )
            .map_err(|_| RepoError::Crypto("seal"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Seal a blob (version 2: no header, nonce from the id) and append it to `out`.
    /// `id` must be `keys.blob_id(kind, plaintext)`. Returns the stored length and the
    /// compression used. On error `out` is unchanged.
    pub fn seal_blob_into(
        &mut self,
        kind: BlobKind,
        id: &Id,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, Compression)> {
        let raw_len = plain_len(plaintext)?;
        let compressed = self.compress(plaintext)?;
        let (compression, payload) = if compressed {
            (Compression::Zstd, &self.scratch[..])
        } else {
            (Compression::None, plaintext)
        };
        let start = out.len();
        out.reserve(payload.len() + TAG_LEN);
        out.extend_from_slice(payload);
        let tag = match self.blob_key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(blob_nonce(id)),
            Aad::from(&blob_aad(kind, compression, self.epoch, raw_len, id)[..]),
            &mut out[start..],
        ) {
            Ok(t) => t,
            Err(_) => {
                out.truncate(start);
                return Err(RepoError::Crypto("seal blob"));
            }
        };
        out.extend_from_slice(tag.as_ref());
        Ok((out.len() - start, compression))
    }

    /// Seal a pack header plaintext. Returns (ciphertext || tag, nonce): the nonce is a
    /// keyed hash of this session's id and counter, so it looks random to the storage
    /// provider and never repeats within a session.
    pub fn seal_pack_header(&mut self, plaintext: &[u8]) -> Result<(Vec<u8>, [u8; 12])> {
        let counter = self.next_counter()?;
        let mut h = blake3::Hasher::new_keyed(&self.trailer);
        h.update(b"lethe/v2/pack-header-nonce");
        h.update(&self.session);
        h.update(&counter.to_le_bytes());
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&h.finalize().as_bytes()[..12]);
        let mut out = plaintext.to_vec();
        let tag = self
            .pack_key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&pack_aad(self.epoch)[..]),
                &mut out,
            )
            .map_err(|_| RepoError::Crypto("seal pack header"))?;
        out.extend_from_slice(tag.as_ref());
        Ok((out, nonce))
    }

    /// The mask hiding a pack trailer (see [`RepoKeys::trailer_mask`]).
    pub fn trailer_mask(&self, nonce: &[u8; 12]) -> [u8; 8] {
        trailer_mask(&self.trailer, nonce)
    }

    /// Compress into `scratch` if it helps (level 0 disables compression; inputs under
    /// 64 bytes are never compressed; large incompressible inputs are detected by a
    /// cheap sample first).
    fn compress(&mut self, plaintext: &[u8]) -> Result<bool> {
        Ok(self.level != 0
            && plaintext.len() >= 64
            && self.looks_compressible(plaintext)?
            && self.try_compress(plaintext)?)
    }

    /// Cheap predictor for large payloads: compress four 16 KiB samples (at 0, 1/4, 1/2,
    /// 3/4); if none of them shrinks, skip compressing the whole payload. Saves most of the
    /// zstd cost on media, archives and encrypted files.
    fn looks_compressible(&mut self, plaintext: &[u8]) -> Result<bool> {
        const SAMPLE: usize = 16 << 10;
        if plaintext.len() < 16 * SAMPLE {
            return Ok(true);
        }
        for q in 0..4 {
            let at = plaintext.len() / 4 * q;
            if self.try_compress(&plaintext[at..at + SAMPLE])? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Compress into `scratch`; true if the result saves at least 1/32 of the input.
    fn try_compress(&mut self, plaintext: &[u8]) -> Result<bool> {
        let comp = match &mut self.compressor {
            Some(c) => c,
            None => self
                .compressor
                .insert(zstd::bulk::Compressor::new(self.level).map_err(|_| {
                    RepoError::OutOfRange {
                        what: "zstd level",
                        value: self.level.unsigned_abs().into(),
                        min: 0,
                        max: 22,
                    }
                })?),
        };
        self.scratch.clear();
        self.scratch
            .reserve(zstd::zstd_safe::compress_bound(plaintext.len()));
        match comp.compress_to_buffer(plaintext, &mut self.scratch) {
            Ok(n) => Ok(n < plaintext.len() - plaintext.len() / 32),
            Err(_) => Ok(false),
        }
    }
}

fn plain_len(plaintext: &[u8]) -> Result<u32> {
    u32::try_from(plaintext.len())
        .ok()
        .filter(|l| *l <= MAX_PLAINTEXT)
        .ok_or(RepoError::OutOfRange {
            what: "plaintext length",
            value: plaintext.len() as u64,
            min: 0,
            max: u64::from(MAX_PLAINTEXT),
        })
}

/// Decrypts standalone objects of both format versions; keeps the last session key.
pub struct Opener {
    v1_enc_root: Zeroizing<[u8; 32]>,
    enc_roots: Vec<Zeroizing<[u8; 32]>>,
    cache: Option<(u8, u32, [u8; 16], LessSafeKey)>,
}

impl Opener {
    /// Open an object that must be of type `expected`.
    pub fn open(&mut self, expected: ObjectType, binding: &Id, sealed: &[u8]) -> Result<Vec<u8>> {
        let h = ObjectHeader::parse(sealed)?;
        if h.ty != expected {
            return Err(RepoError::WrongObjectType {
                expected: expected.name(),
                found: h.ty.name(),
            });
        }
        self.open_any(binding, sealed).map(|(_, p)| p)
    }

    fn key(&mut self, h: &ObjectHeader) -> Result<&LessSafeKey> {
        let hit = matches!(&self.cache, Some((v, e, s, _)) if *v == h.version && *e == h.epoch && *s == h.session);
        if !hit {
            let key = if h.version == FORMAT_V1 {
                gcm_key(&*hkdf32(
                    &h.session,
                    &self.v1_enc_root[..],
                    b"lethe/v1/session-key",
                )?)?
            } else {
                let root = self
                    .enc_roots
                    .get(h.epoch as usize)
                    .ok_or(RepoError::UnknownEpoch {
                        epoch: h.epoch,
                        known: self.enc_roots.len() as u32,
                    })?;
                siv_key(&*hkdf32(&h.session, &root[..], b"lethe/v2/session-key")?)?
            };
            self.cache = Some((h.version, h.epoch, h.session, key));
        }
        match &self.cache {
            Some((_, _, _, k)) => Ok(k),
            None => Err(RepoError::Crypto("key cache")),
        }
    }

    /// Open any standalone object; returns its header and plaintext.
    pub fn open_any(&mut self, binding: &Id, sealed: &[u8]) -> Result<(ObjectHeader, Vec<u8>)> {
        let h = ObjectHeader::parse(sealed)?;
        let what = h.ty.name();
        let hl = h.len();
        if sealed.len() < hl + TAG_LEN {
            return Err(RepoError::Truncated {
                what,
                need: hl + TAG_LEN,
                have: sealed.len(),
            });
        }
        let aad = aad(&sealed[..hl], binding);
        let key = self.key(&h)?;
        let mut body = sealed[hl..].to_vec();
        let n = key
            .open_in_place(
                Nonce::assume_unique_for_key(h.nonce()),
                Aad::from(&aad[..]),
                &mut body,
            )
            .map_err(|_| RepoError::Authentication { what })?
            .len();
        body.truncate(n);
        let plain = if h.version == FORMAT_V1 {
            decompress(what, h.compression, &body, h.plain_len)?
        } else {
            unpad(what, h.compression, &body, h.plain_len)?
        };
        if plain.len() != h.plain_len as usize {
            return Err(RepoError::LengthMismatch {
                what,
                declared: u64::from(h.plain_len),
                actual: plain.len() as u64,
            });
        }
        Ok((h, plain))
    }
}

fn decompress(what: &'static str, c: Compression, body: &[u8], plain_len: u32) -> Result<Vec<u8>> {
    match c {
        Compression::None => Ok(body.to_vec()),
        Compression::Zstd => {
            zstd::bulk::decompress(body, plain_len as usize).map_err(|e| RepoError::Decompress {
                what,
                detail: e.to_string(),
            })
        }
    }
}

/// The payload of a version-2 file: the plaintext (or one zstd frame), then zeros.
fn unpad(what: &'static str, c: Compression, body: &[u8], plain_len: u32) -> Result<Vec<u8>> {
    let used = match c {
        Compression::None => plain_len as usize,
        Compression::Zstd => zstd::zstd_safe::find_frame_compressed_size(body).map_err(|code| {
            RepoError::Decompress {
                what,
                detail: zstd::zstd_safe::get_error_name(code).to_string(),
            }
        })?,
    };
    if used > body.len() {
        return Err(RepoError::LengthMismatch {
            what,
            declared: used as u64,
            actual: body.len() as u64,
        });
    }
    if body[used..].iter().any(|b| *b != 0) {
        return Err(RepoError::Invalid {
            what,
            detail: "padding is not zero".into(),
        });
    }
    decompress(what, c, &body[..used], plain_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> RepoKeys {
        MasterKey::from_bytes([1; 32]).derive().unwrap()
    }

    /// safeguard: 164.312(a)(2)(iv)
    #[test]
    fn round_trip_padding_and_compression_choice() {
        let k = keys();
        let mut s = k.sealer([2; 16], 3).unwrap();
        let text =
            b"hello hello hello hello hello hello hello hello hello hello hello!".repeat(100);
        let sealed = s.seal(ObjectType::Snapshot, &Id::ZERO, &text).unwrap();
        assert_eq!(sealed[6], Compression::Zstd as u8);
        assert!(sealed.len() < text.len() / 4);
        assert_eq!(padme(sealed.len() as u64), sealed.len() as u64);
        let mut o = k.opener();
        assert_eq!(
            o.open(ObjectType::Snapshot, &Id::ZERO, &sealed).unwrap(),
            text
        );
        // Incompressible data is stored raw (and padded).
        let mut rnd = vec![0u8; 100_000];
        blake3::Hasher::new().finalize_xof().fill(&mut rnd);
        let sealed = s.seal(ObjectType::Index, &Id::ZERO, &rnd).unwrap();
        assert_eq!(sealed[6], Compression::None as u8);
        assert_eq!(sealed.len() as u64, padme((rnd.len() + 56) as u64));
        assert_eq!(s.objects_sealed(), 2);
        assert_eq!(o.open(ObjectType::Index, &Id::ZERO, &sealed).unwrap(), rnd);
    }

    /// safeguard: 164.312(a)(2)(iv), 164.312(c)(1), 164.312(e)(2)(i)
    #[test]
    fn tamper_binding_type_padding_and_key_are_detected() {
        let k = keys();
        let mut s = k.sealer([3; 16], 3).unwrap();
        let sealed = s
            .seal(ObjectType::Snapshot, &Id::ZERO, b"snapshot body")
            .unwrap();
        let mut o = k.opener();
        assert!(matches!(
            o.open(ObjectType::Snapshot, &Id([1; 32]), &sealed),
            Err(RepoError::Authentication { .. })
        ));
        assert!(matches!(
            o.open(ObjectType::Index, &Id::ZERO, &sealed),
            Err(RepoError::WrongObjectType { .. })
        ));
        for i in 0..sealed.len() {
            let mut b = sealed.clone();
            b[i] ^= 0x01;
            assert!(
                o.open(ObjectType::Snapshot, &Id::ZERO, &b).is_err(),
                "flip at {i}"
            );
        }
        let other = MasterKey::from_bytes([9; 32]).derive().unwrap();
        assert!(matches!(
            other
                .opener()
                .open(ObjectType::Snapshot, &Id::ZERO, &sealed),
            Err(RepoError::Authentication { .. })
        ));
    }

    #[test]
    fn blobs_have_no_header_and_bind_kind_length_and_id() {
        let k = keys();
        let mut s = k.sealer([4; 16], 3).unwrap();
        let p = b"blob blob blob blob blob blob blob blob blob blob blob blob blob".repeat(20);
        let id = k.blob_id(BlobKind::Data, &p);
        let mut out = b"xx".to_vec();
        let (n, c) = s.seal_blob_into(BlobKind::Data, &id, &p, &mut out).unwrap();
        assert_eq!(c, Compression::Zstd);
        assert_eq!(out.len(), 2 + n);
        let sealed = &out[2..];
        assert!(!sealed.starts_with(b"LTHO"));
        let raw = p.len() as u32;
        assert_eq!(
            k.open_blob_v2(BlobKind::Data, &id, c, 0, raw, sealed)
                .unwrap(),
            p
        );
        // Another kind, length, compression flag, epoch or id: authentication fails.
        assert!(k
            .open_blob_v2(BlobKind::Tree, &id, c, 0, raw, sealed)
            .is_err());
        assert!(k
            .open_blob_v2(BlobKind::Data, &id, c, 0, raw + 1, sealed)
            .is_err());
        assert!(k
            .open_blob_v2(BlobKind::Data, &id, Compression::None, 0, raw, sealed)
            .is_err());
        assert!(matches!(
            k.open_blob_v2(BlobKind::Data, &id, c, 1, raw, sealed),
            Err(RepoError::UnknownEpoch { epoch: 1, known: 1 })
        ));
        assert!(k
            .open_blob_v2(BlobKind::Data, &Id([5; 32]), c, 0, raw, sealed)
            .is_err());
        // The same blob sealed again (another session) gives the same bytes: nothing
        // depends on sealer state.
        let mut s2 = k.sealer([9; 16], 3).unwrap();
        let mut again = Vec::new();
        s2.seal_blob_into(BlobKind::Data, &id, &p, &mut again)
            .unwrap();
        assert_eq!(again, sealed);
    }

    /// safeguard: 164.312(a)(2)(iv)
    #[test]
    fn keyring_epochs_seal_new_data_under_the_newest_master() {
        let ring = Keyring::new(MasterKey::from_bytes([1; 32]));
        let old = ring.derive().unwrap();
        let ring2 = ring.rotated(MasterKey::from_bytes([2; 32])).unwrap();
        let new = ring2.derive().unwrap();
        assert_eq!(new.current_epoch(), 1);
        // Blob ids and the gear key do not change with the epoch.
        assert_eq!(
            old.blob_id(BlobKind::Data, b"x"),
            new.blob_id(BlobKind::Data, b"x")
        );
        assert_eq!(old.gear_key(), new.gear_key());
        let mut s = new.sealer([1; 16], 0).unwrap();
        let sealed = s
            .seal(ObjectType::Snapshot, &Id::ZERO, b"after rotation")
            .unwrap();
        assert_eq!(ObjectHeader::parse(&sealed).unwrap().epoch, 1);
        assert!(matches!(
            old.opener().open(ObjectType::Snapshot, &Id::ZERO, &sealed),
            Err(RepoError::UnknownEpoch { .. })
        ));
        // The new keyring still opens what the old one wrote.
        let mut s0 = old.sealer([1; 16], 0).unwrap();
        let before = s0.seal(ObjectType::Snapshot, &Id::ZERO, b"before").unwrap();
        assert_eq!(
            new.opener()
                .open(ObjectType::Snapshot, &Id::ZERO, &before)
                .unwrap(),
            b"before"
        );
        let enc = ring2.encode().unwrap();
        assert_eq!(Keyring::decode(&enc).unwrap().len(), 2);
        assert!(Keyring::decode(&[0]).is_err(), "empty keyring");
    }

    /// A VM restored from a snapshot mid-backup replays the sealer's state: the same
    /// (session key, counter) seals a *different* plaintext. With AES-GCM that pair's
    /// keystream is reused (the XOR of the plaintexts leaks, and the GHASH key with it);
    /// with AES-GCM-SIV the keystream depends on the plaintext, so the only thing an
    /// observer learns is whether the two plaintexts are equal.
    #[test]
    fn a_replayed_sealer_state_reveals_only_equality() {
        let k = keys();
        let a = b"first version of an index file, written before the VM was reset";
        let b = b"other version of an index file, written after the VM was reset!";
        assert_eq!(a.len(), b.len());
        // The sealer state is reset: two sealers with the same session and counter 0.
        let x = k
            .sealer([7; 16], 0)
            .unwrap()
            .seal(ObjectType::Index, &Id::ZERO, a)
            .unwrap();
        let y = k
            .sealer([7; 16], 0)
            .unwrap()
            .seal(ObjectType::Index, &Id::ZERO, b)
            .unwrap();
        assert_eq!(
            x[..HEADER_LEN],
            y[..HEADER_LEN],
            "same session, same counter"
        );
        let xor = |p: &[u8], q: &[u8]| p.iter().zip(q).map(|(m, n)| m ^ n).collect::<Vec<u8>>();
        let ct_xor = xor(
            &x[HEADER_LEN..HEADER_LEN + a.len()],
            &y[HEADER_LEN..HEADER_LEN + b.len()],
        );
        assert_ne!(ct_xor, xor(a, b), "SIV: no keystream reuse");
        // Equal plaintexts under the replayed state give equal files: equality is all
        // that leaks.
        let z = k
            .sealer([7; 16], 0)
            .unwrap()
            .seal(ObjectType::Index, &Id::ZERO, a)
            .unwrap();
        assert_eq!(x, z);
        assert_eq!(
            k.opener().open(ObjectType::Index, &Id::ZERO, &y).unwrap(),
            b
        );
        // The same replay under AES-256-GCM (format version 1) leaks the XOR.
        let key = gcm_key(&[3; 32]).unwrap();
        let seal = |p: &[u8]| {
            let mut v = p.to_vec();
            let _tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([0; 12]),
                    Aad::empty(),
                    &mut v,
                )
                .unwrap();
            v
        };
        assert_eq!(
            xor(&seal(a), &seal(b)),
            xor(a, b),
            "GCM reuses the keystream"
        );
    }

    #[test]
    fn ids_differ_per_kind_and_key() {
        let k = keys();
        let a = k.blob_id(BlobKind::Data, b"x");
        assert_ne!(a, k.blob_id(BlobKind::Tree, b"x"));
        assert_ne!(
            a,
            MasterKey::from_bytes([2; 32])
                .derive()
                .unwrap()
                .blob_id(BlobKind::Data, b"x")
        );
        let mut h = k.blob_hasher(BlobKind::Data);
        h.update(b"x");
        assert_eq!(Id(*h.finalize().as_bytes()), a);
        assert_ne!(k.private_name("host", b"a"), k.private_name("host", b"b"));
        assert_ne!(k.private_name("host", b"a"), k.private_name("boot", b"a"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// safeguard: 164.312(a)(2)(iv)
        #[test]
        fn seal_open_round_trip(data in prop::collection::vec(any::<u8>(), 0..5000), lvl in 0i32..5) {
            let k = keys();
            let mut s = k.sealer([5; 16], lvl).unwrap();
            let sealed = s.seal(ObjectType::Index, &Id([6; 32]), &data).unwrap();
            prop_assert_eq!(padme(sealed.len() as u64), sealed.len() as u64);
            prop_assert_eq!(k.opener().open(ObjectType::Index, &Id([6; 32]), &sealed).unwrap(), data.clone());
            let id = k.blob_id(BlobKind::Tree, &data);
            let mut out = Vec::new();
            let (_, c) = s.seal_blob_into(BlobKind::Tree, &id, &data, &mut out).unwrap();
            prop_assert_eq!(k.open_blob_v2(BlobKind::Tree, &id, c, 0, data.len() as u32, &out).unwrap(), data);
        }

        #[test]
        fn open_never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let k = keys();
            let _ = k.opener().open_any(&Id::ZERO, &data);
            let _ = k.open_blob_v2(BlobKind::Data, &Id::ZERO, Compression::Zstd, 0, 100, &data);
            let _ = k.open_pack_header(0, &[0; 12], &data);
        }

        /// Valid objects with flipped bytes or cut short: always a typed error, never a panic.
        /// safeguard: 164.312(a)(2)(iv), 164.312(e)(2)(i)
        #[test]
        fn mutated_objects_are_rejected(
            data in prop::collection::vec(any::<u8>(), 0..3000),
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let k = keys();
            let mut sealed = k.sealer([8; 16], 3).unwrap().seal(ObjectType::Index, &Id::ZERO, &data).unwrap();
            let short = sealed[..cut.index(sealed.len())].to_vec();
            prop_assert!(k.opener().open_any(&Id::ZERO, &short).is_err());
            for (at, x) in flips {
                let i = at.index(sealed.len());
                sealed[i] ^= x;
            }
            prop_assert!(k.opener().open_any(&Id::ZERO, &sealed).is_err());
        }
    }
}
