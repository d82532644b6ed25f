//! Key hierarchy, sealing (compress + AES-256-GCM) and opening of objects.
//!
//! * `MasterKey` (32 random bytes) is the only secret stored (wrapped) in key files.
//! * Subkeys: `HKDF-SHA256(salt = "lethe-repo-v1", ikm = master, info = label)`.
//! * Each writer opens a *session* with a 16-byte random session id; its AES key is
//!   `HKDF-SHA256(salt = session id, ikm = enc_root, info = "lethe/v1/session-key")`,
//!   and objects are numbered 0, 1, 2, ...: the counter is the nonce. Unique nonces then
//!   follow from unique session ids (128 random bits) and a monotonically increasing counter,
//!   with no per-object randomness and no 2^32 random-nonce birthday limit per key.
//! * Associated data = the 36-byte object header || a 32-byte binding id (the blob id for
//!   blobs, zero for files), so a blob cannot be swapped for another or retyped.

use crate::error::{RepoError, Result};
use crate::ids::Id;
use crate::object::{
    BlobKind, Compression, ObjectHeader, ObjectType, HEADER_LEN, MAX_PLAINTEXT, OVERHEAD, TAG_LEN,
};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf::{KeyType, Salt, HKDF_SHA256};
use zeroize::Zeroizing;

/// Objects one session may seal before it must be replaced (keeps every GCM key far
/// below the usage bounds of NIST SP 800-38D).
pub const MAX_SESSION_OBJECTS: u64 = 1 << 32;
/// zstd level used unless the config says otherwise.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

const HKDF_SALT: &[u8] = b"lethe-repo-v1";

struct Len32;
impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

pub(crate) fn hkdf32(salt: &[u8], ikm: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    Salt::new(HKDF_SHA256, salt)
        .extract(ikm)
        .expand(&[info], Len32)
        .and_then(|okm| okm.fill(&mut out[..]))
        .map_err(|_| RepoError::Crypto("hkdf"))?;
    Ok(out)
}

fn aes_key(bytes: &[u8; 32]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| RepoError::Crypto("aes key"))
}

/// The repository master secret. Zeroized on drop.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Wrap 32 secret bytes (the caller supplies randomness: this crate does no I/O).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(Zeroizing::new(bytes))
    }

    /// The raw secret (for wrapping into key files / recovery keys only).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Derive all working keys.
    pub fn derive(&self) -> Result<RepoKeys> {
        let d = |label: &[u8]| hkdf32(HKDF_SALT, &self.0[..], label);
        Ok(RepoKeys {
            enc_root: d(b"lethe/v1/encryption-root")?,
            id_data: d(b"lethe/v1/blob-id/data")?,
            id_tree: d(b"lethe/v1/blob-id/tree")?,
            id_extents: d(b"lethe/v1/blob-id/extent-list")?,
            gear: d(b"lethe/v1/chunker-gear")?,
        })
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Working keys derived from the master key.
pub struct RepoKeys {
    enc_root: Zeroizing<[u8; 32]>,
    id_data: Zeroizing<[u8; 32]>,
    id_tree: Zeroizing<[u8; 32]>,
    id_extents: Zeroizing<[u8; 32]>,
    gear: Zeroizing<[u8; 32]>,
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

    /// Start an encryption session. `session_id` must be fresh random bytes.
    pub fn sealer(&self, session_id: [u8; 16], zstd_level: i32) -> Result<Sealer> {
        let key = hkdf32(&session_id, &self.enc_root[..], b"lethe/v1/session-key")?;
        Ok(Sealer {
            session: session_id,
            counter: 0,
            key: aes_key(&key)?,
            level: zstd_level,
            scratch: Vec::new(),
            compressor: None,
        })
    }

    /// A decryptor (caches the most recent session key).
    pub fn opener(&self) -> Opener {
        Opener {
            enc_root: self.enc_root.clone(),
            cache: None,
        }
    }
}

fn aad(header: &[u8; HEADER_LEN], binding: &Id) -> [u8; HEADER_LEN + 32] {
    let mut a = [0u8; HEADER_LEN + 32];
    a[..HEADER_LEN].copy_from_slice(header);
    a[HEADER_LEN..].copy_from_slice(&binding.0);
    a
}

/// One encryption session: compresses (optionally) and encrypts objects.
pub struct Sealer {
    session: [u8; 16],
    counter: u64,
    key: LessSafeKey,
    level: i32,
    scratch: Vec<u8>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl Sealer {
    /// The session id.
    pub fn session_id(&self) -> [u8; 16] {
        self.session
    }

    /// Objects sealed so far (= next counter).
    pub fn objects_sealed(&self) -> u64 {
        self.counter
    }

    /// Seal `plaintext` as `ty`, bound to `binding`. Compresses with zstd when it helps
    /// (level 0 disables compression); incompressible payloads are stored raw.
    pub fn seal(&mut self, ty: ObjectType, binding: &Id, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.seal_append(ty, binding, plaintext, &mut out)?;
        Ok(out)
    }

    /// Like [`Sealer::seal`] but appends the sealed object to `out` (e.g. straight into a
    /// pack buffer, saving a copy). Returns the sealed length. On error `out` is unchanged.
    pub fn seal_append(
        &mut self,
        ty: ObjectType,
        binding: &Id,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let plain_len = u32::try_from(plaintext.len())
            .ok()
            .filter(|l| *l <= MAX_PLAINTEXT)
            .ok_or(RepoError::OutOfRange {
                what: "plaintext length",
                value: plaintext.len() as u64,
                min: 0,
                max: u64::from(MAX_PLAINTEXT),
            })?;
        if self.counter >= MAX_SESSION_OBJECTS {
            return Err(RepoError::SessionExhausted(self.counter));
        }
        let compressed = self.level != 0
            && plaintext.len() >= 64
            && self.looks_compressible(plaintext)?
            && self.try_compress(plaintext)?;
        let (compression, payload) = if compressed {
            (Compression::Zstd, &self.scratch[..])
        } else {
            (Compression::None, plaintext)
        };
        let header = ObjectHeader {
            ty,
            compression,
            session: self.session,
            counter: self.counter,
            plain_len,
        };
        let h = header.encode();
        let start = out.len();
        out.reserve(payload.len() + OVERHEAD);
        out.extend_from_slice(&h);
        out.extend_from_slice(payload);
        let tag = match self.key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(header.nonce()),
            Aad::from(&aad(&h, binding)[..]),
            &mut out[start + HEADER_LEN..],
        ) {
            Ok(t) => t,
            Err(_) => {
                out.truncate(start);
                return Err(RepoError::Crypto("seal"));
            }
        };
        out.extend_from_slice(tag.as_ref());
        self.counter += 1;
        Ok(out.len() - start)
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

/// Decrypts objects; keeps the last session key so a pack's blobs open cheaply.
pub struct Opener {
    enc_root: Zeroizing<[u8; 32]>,
    cache: Option<([u8; 16], LessSafeKey)>,
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

    /// Open any object type; returns its header and plaintext.
    pub fn open_any(&mut self, binding: &Id, sealed: &[u8]) -> Result<(ObjectHeader, Vec<u8>)> {
        let h = ObjectHeader::parse(sealed)?;
        let what = h.ty.name();
        if sealed.len() < OVERHEAD {
            return Err(RepoError::Truncated {
                what,
                need: OVERHEAD,
                have: sealed.len(),
            });
        }
        let key = match &self.cache {
            Some((s, k)) if *s == h.session => k,
            _ => {
                let raw = hkdf32(&h.session, &self.enc_root[..], b"lethe/v1/session-key")?;
                &self.cache.insert((h.session, aes_key(&raw)?)).1
            }
        };
        let mut hb = [0u8; HEADER_LEN];
        hb.copy_from_slice(&sealed[..HEADER_LEN]);
        let mut body = sealed[HEADER_LEN..].to_vec();
        let n = key
            .open_in_place(
                Nonce::assume_unique_for_key(h.nonce()),
                Aad::from(&aad(&hb, binding)[..]),
                &mut body,
            )
            .map_err(|_| RepoError::Authentication { what })?
            .len();
        body.truncate(n);
        let plain = match h.compression {
            Compression::None => body,
            Compression::Zstd => {
                zstd::bulk::decompress(&body, h.plain_len as usize).map_err(|e| {
                    RepoError::Decompress {
                        what,
                        detail: e.to_string(),
                    }
                })?
            }
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

/// Stored size of a sealed object given its stored payload size.
pub const fn sealed_len(payload: usize) -> usize {
    payload + HEADER_LEN + TAG_LEN
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
    fn round_trip_and_compression_choice() {
        let k = keys();
        let mut s = k.sealer([2; 16], 3).unwrap();
        let text =
            b"hello hello hello hello hello hello hello hello hello hello hello!".repeat(100);
        let id = k.blob_id(BlobKind::Data, &text);
        let sealed = s.seal(ObjectType::DataBlob, &id, &text).unwrap();
        assert_eq!(sealed[6], Compression::Zstd as u8);
        assert!(sealed.len() < text.len() / 4);
        let mut o = k.opener();
        assert_eq!(o.open(ObjectType::DataBlob, &id, &sealed).unwrap(), text);
        // Incompressible data is stored raw: pseudo-random bytes from BLAKE3 XOF.
        let mut rnd = vec![0u8; 100_000];
        blake3::Hasher::new().finalize_xof().fill(&mut rnd);
        let sealed = s.seal(ObjectType::DataBlob, &Id::ZERO, &rnd).unwrap();
        assert_eq!(sealed[6], Compression::None as u8);
        assert_eq!(sealed.len(), sealed_len(rnd.len()));
        assert_eq!(s.objects_sealed(), 2);
        assert_eq!(
            o.open(ObjectType::DataBlob, &Id::ZERO, &sealed).unwrap(),
            rnd
        );
    }

    /// safeguard: 164.312(a)(2)(iv), 164.312(c)(1), 164.312(e)(2)(i)
    #[test]
    fn tamper_binding_type_and_key_are_detected() {
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
    fn predictor_skips_incompressible_but_not_mixed_payloads() {
        let k = keys();
        let mut s = k.sealer([6; 16], 3).unwrap();
        let mut rnd = vec![0u8; 1 << 20];
        blake3::Hasher::new().finalize_xof().fill(&mut rnd);
        assert!(!s.looks_compressible(&rnd).unwrap());
        // Random except one compressible quarter: still compressed.
        rnd[(1 << 20) / 2..(1 << 20) / 2 + (256 << 10)].fill(b'x');
        let mut out = b"prefix".to_vec();
        let n = s
            .seal_append(ObjectType::DataBlob, &Id::ZERO, &rnd, &mut out)
            .unwrap();
        assert_eq!(out.len(), 6 + n);
        assert_eq!(out[6 + 6], Compression::Zstd as u8);
        assert_eq!(
            k.opener()
                .open(ObjectType::DataBlob, &Id::ZERO, &out[6..])
                .unwrap(),
            rnd
        );
    }

    /// safeguard: 164.312(a)(2)(iv)
    #[test]
    fn nonces_never_repeat_within_a_session() {
        let k = keys();
        let mut s = k.sealer([4; 16], 0).unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let o = s.seal(ObjectType::DataBlob, &Id::ZERO, b"same").unwrap();
            let h = ObjectHeader::parse(&o).unwrap();
            assert!(seen.insert(h.nonce()));
        }
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
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// safeguard: 164.312(a)(2)(iv)
        #[test]
        fn seal_open_round_trip(data in prop::collection::vec(any::<u8>(), 0..5000), lvl in 0i32..5) {
            let k = keys();
            let mut s = k.sealer([5; 16], lvl).unwrap();
            let sealed = s.seal(ObjectType::TreeBlob, &Id([6; 32]), &data).unwrap();
            prop_assert_eq!(k.opener().open(ObjectType::TreeBlob, &Id([6; 32]), &sealed).unwrap(), data);
        }

        #[test]
        fn open_never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = keys().opener().open_any(&Id::ZERO, &data);
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
