//! Key files (`keys/<id>`, the id being the BLAKE3 of the file): who may open the
//! repository. Pure operations behind `init`, `key add`, `key passwd`, `key rotate`,
//! `key recover` and `key remove` (randomness and time are passed in).
//!
//! Version 2 (written): every key file is a *slot* with its own X25519 key pair. The
//! private key is wrapped under a passphrase (Argon2id) or derived from the recovery key;
//! the public key is in clear (authenticated). The keyring (every epoch's master key) is
//! sealed to the public key with a fresh ephemeral key:
//! ```text
//! key file  = "LTHK" || 02 || postcard(header, private (48 or 0 bytes), ephemeral [32], keyring)
//! header    = { slot: Passphrase { kdf } | Recovery, label, created, public [32] }
//! private   = AES-256-GCM(KEK = Argon2id(passphrase, salt, m, t, p), nonce 0,
//!                         aad = "LTHK" || 02 || postcard(header), X25519 private key)
//! K         = HKDF-SHA256(salt = ephemeral || public, ikm = X25519(ephemeral, public),
//!                         info = "lethe/v2/keyring-wrap")
//! keyring   = AES-256-GCM(K, nonce 0, aad = "LTHK" || 02 || postcard(header) || ephemeral,
//!                         postcard(Vec<[u8; 32]>))
//! ```
//! So `key rotate` can give a new epoch to every *remaining* slot without knowing their
//! passphrases (it seals the new keyring to each public key), while a copy of a removed
//! key file still opens only the epochs it was given. A zero nonce is safe because each
//! key encrypts one message: the KEK one private key (the same bytes whenever the file is
//! rewrapped), K one keyring (a fresh ephemeral key every time).
//!
//! Version 1 (read only): the master key itself wrapped under the passphrase.

use crate::codec;
use crate::crypto::{hkdf32, Keyring, MasterKey};
use crate::error::{need, RepoError, Result};
use crate::ids::Id;
use crate::tree::Timestamp;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Magic of key files.
pub const KEYFILE_MAGIC: [u8; 4] = *b"LTHK";
/// Key file format version 1 (read only).
pub const KEYFILE_V1: u8 = 1;
/// Key file format version 2 (written).
pub const KEYFILE_V2: u8 = 2;
/// Largest key file accepted.
pub const MAX_KEYFILE: usize = 64 << 10;
const WRAPPED_LEN: usize = 48;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

/// Most memory a key file may ask for: 512 MiB (8 x the default), so a key file planted
/// by the storage provider costs at most that much memory and a few seconds.
pub const MAX_KDF_MEMORY_KIB: u32 = 512 << 10;
/// Most iterations a key file may ask for.
pub const MAX_KDF_ITERATIONS: u32 = 16;
/// Most lanes a key file may ask for.
pub const MAX_KDF_LANES: u32 = 8;

impl KdfParams {
    /// RFC 9106's second recommended option with one lane (64 MiB, t = 3): ~0.2 s on the
    /// appliance's 2 cores; parameters are stored per key file so they can grow later.
    pub const DEFAULT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// Bounds accepted when parsing (a hostile key file must not make us allocate
    /// gigabytes).
    pub fn validate(&self) -> Result<()> {
        let r = |what, v: u32, min: u32, max: u32| {
            if (min..=max).contains(&v) {
                Ok(())
            } else {
                Err(RepoError::OutOfRange {
                    what,
                    value: v.into(),
                    min: min.into(),
                    max: max.into(),
                })
            }
        };
        r("argon2 lanes", self.p, 1, MAX_KDF_LANES)?;
        r(
            "argon2 memory KiB",
            self.m_kib,
            8 * self.p,
            MAX_KDF_MEMORY_KIB,
        )?;
        r("argon2 iterations", self.t, 1, MAX_KDF_ITERATIONS)
    }
}

/// Key derivation function of a passphrase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kdf {
    /// Argon2id v1.3.
    Argon2id {
        /// Cost.
        params: KdfParams,
        /// Random salt.
        salt: [u8; 32],
    },
}

fn kek(kdf: &Kdf, passphrase: &[u8]) -> Result<LessSafeKey> {
    let Kdf::Argon2id { params, salt } = kdf;
    params.validate()?;
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|_| RepoError::Crypto("argon2 params"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p)
        .hash_password_into(passphrase, salt, &mut out[..])
        .map_err(|_| RepoError::Crypto("argon2"))?;
    UnboundKey::new(&AES_256_GCM, &out[..])
        .map(LessSafeKey::new)
        .map_err(|_| RepoError::Crypto("kek"))
}

fn gcm(key: &[u8]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| RepoError::Crypto("aes key"))
}

fn seal_zero_nonce(key: &LessSafeKey, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let mut buf = plain.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| RepoError::Crypto("wrap"))?;
    buf.extend_from_slice(tag.as_ref());
    Ok(buf)
}

fn open_zero_nonce(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(sealed.to_vec());
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(aad),
            &mut buf[..],
        )
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

// ---------------------------------------------------------------- version 1

/// Authenticated, unencrypted part of a version-1 key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHeader {
    /// KDF and its parameters.
    pub kdf: Kdf,
    /// Free-form label.
    pub label: String,
    /// Creation time.
    pub created: Timestamp,
}

#[derive(Serialize, Deserialize)]
struct BodyV1 {
    header: KeyHeader,
    wrapped: Vec<u8>,
}

/// A version-1 key file: the master key wrapped under a passphrase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFileV1 {
    /// Header (authenticated as AAD).
    pub header: KeyHeader,
    wrapped: [u8; WRAPPED_LEN],
}

impl KeyFileV1 {
    fn aad(header: &KeyHeader) -> Result<Vec<u8>> {
        let mut a = KEYFILE_MAGIC.to_vec();
        a.push(KEYFILE_V1);
        a.extend_from_slice(&codec::encode("key header", header)?);
        Ok(a)
    }

    /// Recover the master key with a passphrase.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<MasterKey> {
        let key = kek(&self.header.kdf, passphrase)?;
        let plain = open_zero_nonce(&key, &Self::aad(&self.header)?, &self.wrapped)
            .ok_or(RepoError::WrongPassphrase)?;
        let mut m = [0u8; 32];
        m.copy_from_slice(&plain[..32]);
        Ok(MasterKey::from_bytes(m))
    }
}

// ---------------------------------------------------------------- version 2

/// What opens a version-2 key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    /// A passphrase (Argon2id).
    Passphrase {
        /// KDF parameters and salt.
        kdf: Kdf,
    },
    /// The printed recovery key.
    Recovery,
}

/// Authenticated, unencrypted part of a version-2 key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHeaderV2 {
    /// Passphrase or recovery key.
    pub slot: Slot,
    /// Free-form label ("lead@host", "escrow", ...).
    pub label: String,
    /// Creation time of the slot.
    pub created: Timestamp,
    /// The slot's X25519 public key.
    pub public: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct BodyV2 {
    header: KeyHeaderV2,
    private: Vec<u8>,
    ephemeral: [u8; 32],
    keyring: Vec<u8>,
}

/// A version-2 key file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFileV2 {
    /// Header (authenticated as AAD).
    pub header: KeyHeaderV2,
    private: Option<[u8; WRAPPED_LEN]>,
    ephemeral: [u8; 32],
    keyring: Vec<u8>,
}

fn x25519(seed: &[u8; 32]) -> Result<PrivateKey> {
    PrivateKey::from_private_key(&X25519, seed).map_err(|_| RepoError::Crypto("x25519 key"))
}

fn public_of(private: &PrivateKey) -> Result<[u8; 32]> {
    let p = private
        .compute_public_key()
        .map_err(|_| RepoError::Crypto("x25519 public key"))?;
    p.as_ref()
        .try_into()
        .map_err(|_| RepoError::Crypto("x25519 public key length"))
}

/// The key sealing a keyring: HKDF over the X25519 shared secret.
fn wrap_key(
    own: &PrivateKey,
    peer: &[u8; 32],
    ephemeral: &[u8; 32],
    public: &[u8; 32],
) -> Result<LessSafeKey> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(public);
    let k = agreement::agree(
        own,
        UnparsedPublicKey::new(&X25519, peer),
        RepoError::Crypto("x25519"),
        |shared| hkdf32(&salt, shared, b"lethe/v2/keyring-wrap"),
    )?;
    gcm(&k[..])
}

/// The recovery slot's private key seed from the recovery secret.
fn recovery_seed(secret: &MasterKey) -> Result<Zeroizing<[u8; 32]>> {
    hkdf32(
        b"lethe-repo-v2",
        secret.as_bytes(),
        b"lethe/v2/recovery-slot",
    )
}

impl KeyFileV2 {
    fn aad(header: &KeyHeaderV2) -> Result<Vec<u8>> {
        let mut a = KEYFILE_MAGIC.to_vec();
        a.push(KEYFILE_V2);
        a.extend_from_slice(&codec::encode("key header", header)?);
        Ok(a)
    }

    fn with_keyring(
        header: KeyHeaderV2,
        private: Option<[u8; WRAPPED_LEN]>,
        keyring: &Keyring,
        ephemeral_seed: &[u8; 32],
    ) -> Result<KeyFileV2> {
        let eph = x25519(ephemeral_seed)?;
        let eph_pub = public_of(&eph)?;
        let key = wrap_key(&eph, &header.public, &eph_pub, &header.public)?;
        let mut aad = Self::aad(&header)?;
        aad.extend_from_slice(&eph_pub);
        let sealed = seal_zero_nonce(&key, &aad, &keyring.encode()?)?;
        Ok(KeyFileV2 {
            header,
            private,
            ephemeral: eph_pub,
            keyring: sealed,
        })
    }

    /// A passphrase slot for `keyring`. `salt`, `private_seed` and `ephemeral_seed`
    /// must be fresh random bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn passphrase(
        keyring: &Keyring,
        passphrase: &[u8],
        salt: [u8; 32],
        params: KdfParams,
        label: String,
        created: Timestamp,
        private_seed: [u8; 32],
        ephemeral_seed: [u8; 32],
    ) -> Result<KeyFileV2> {
        let seed = Zeroizing::new(private_seed);
        let public = public_of(&x25519(&seed)?)?;
        let header = KeyHeaderV2 {
            slot: Slot::Passphrase {
                kdf: Kdf::Argon2id { params, salt },
            },
            label,
            created,
            public,
        };
        let Slot::Passphrase { kdf } = &header.slot else {
            return Err(RepoError::Crypto("slot"));
        };
        let wrapped = seal_zero_nonce(&kek(kdf, passphrase)?, &Self::aad(&header)?, &seed[..])?;
        let private: [u8; WRAPPED_LEN] = wrapped
            .as_slice()
            .try_into()
            .map_err(|_| RepoError::Crypto("wrapped private key"))?;
        Self::with_keyring(header, Some(private), keyring, &ephemeral_seed)
    }

    /// The recovery slot for `keyring`, opened by `secret` (the printed recovery key).
    pub fn recovery(
        keyring: &Keyring,
        secret: &MasterKey,
        label: String,
        created: Timestamp,
        ephemeral_seed: [u8; 32],
    ) -> Result<KeyFileV2> {
        let seed = recovery_seed(secret)?;
        let header = KeyHeaderV2 {
            slot: Slot::Recovery,
            label,
            created,
            public: public_of(&x25519(&seed)?)?,
        };
        Self::with_keyring(header, None, keyring, &ephemeral_seed)
    }

    /// The same slot (header, wrapped private key) with `keyring` sealed to it: what
    /// `key rotate` writes for every remaining slot, without their passphrases.
    pub fn rewrap(&self, keyring: &Keyring, ephemeral_seed: [u8; 32]) -> Result<KeyFileV2> {
        Self::with_keyring(self.header.clone(), self.private, keyring, &ephemeral_seed)
    }

    fn open_keyring(&self, seed: &[u8; 32]) -> Result<Keyring> {
        let own = x25519(seed)?;
        if public_of(&own)? != self.header.public {
            return Err(RepoError::WrongPassphrase);
        }
        let key = wrap_key(&own, &self.ephemeral, &self.ephemeral, &self.header.public)?;
        let mut aad = Self::aad(&self.header)?;
        aad.extend_from_slice(&self.ephemeral);
        let plain =
            open_zero_nonce(&key, &aad, &self.keyring).ok_or(RepoError::Authentication {
                what: "key file keyring",
            })?;
        Keyring::decode(&plain)
    }

    /// Open a passphrase slot.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<Keyring> {
        let (Slot::Passphrase { kdf }, Some(private)) = (&self.header.slot, &self.private) else {
            return Err(RepoError::WrongPassphrase);
        };
        let plain = open_zero_nonce(&kek(kdf, passphrase)?, &Self::aad(&self.header)?, private)
            .ok_or(RepoError::WrongPassphrase)?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            plain[..]
                .try_into()
                .map_err(|_| RepoError::Crypto("private key length"))?,
        );
        self.open_keyring(&seed)
    }

    /// Open the recovery slot with the recovery secret.
    pub fn unlock_recovery(&self, secret: &MasterKey) -> Result<Keyring> {
        if self.header.slot != Slot::Recovery {
            return Err(RepoError::RecoveryChecksum);
        }
        self.open_keyring(&*recovery_seed(secret)?)
            .map_err(|e| match e {
                RepoError::WrongPassphrase => RepoError::RecoveryChecksum,
                e => e,
            })
    }

    /// Serialize to the stored bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = KEYFILE_MAGIC.to_vec();
        out.push(KEYFILE_V2);
        let body = BodyV2 {
            header: self.header.clone(),
            private: self.private.map(|p| p.to_vec()).unwrap_or_default(),
            ephemeral: self.ephemeral,
            keyring: self.keyring.clone(),
        };
        out.extend_from_slice(&codec::encode("key file", &body)?);
        Ok(out)
    }
}

// ---------------------------------------------------------------- both

/// A parsed key file of either version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyFile {
    /// Version 1 (read only).
    V1(KeyFileV1),
    /// Version 2.
    V2(KeyFileV2),
}

impl KeyFile {
    /// Parse stored bytes (no passphrase needed). KDF parameters are bounded here.
    pub fn parse(bytes: &[u8]) -> Result<KeyFile> {
        need("key file", bytes, 5)?;
        if bytes.len() > MAX_KEYFILE {
            return Err(RepoError::OutOfRange {
                what: "key file size",
                value: bytes.len() as u64,
                min: 5,
                max: MAX_KEYFILE as u64,
            });
        }
        if bytes[..4] != KEYFILE_MAGIC {
            return Err(RepoError::BadMagic {
                what: "key file",
                found: bytes[..4].to_vec(),
            });
        }
        match bytes[4] {
            KEYFILE_V1 => {
                let body: BodyV1 = codec::decode("key file", &bytes[5..])?;
                let Kdf::Argon2id { params, .. } = &body.header.kdf;
                params.validate()?;
                let wrapped: [u8; WRAPPED_LEN] =
                    body.wrapped
                        .as_slice()
                        .try_into()
                        .map_err(|_| RepoError::LengthMismatch {
                            what: "wrapped master key",
                            declared: WRAPPED_LEN as u64,
                            actual: body.wrapped.len() as u64,
                        })?;
                Ok(KeyFile::V1(KeyFileV1 {
                    header: body.header,
                    wrapped,
                }))
            }
            KEYFILE_V2 => {
                let body: BodyV2 = codec::decode("key file", &bytes[5..])?;
                let private = match &body.header.slot {
                    Slot::Passphrase {
                        kdf: Kdf::Argon2id { params, .. },
                    } => {
                        params.validate()?;
                        Some(body.private.as_slice().try_into().map_err(|_| {
                            RepoError::LengthMismatch {
                                what: "wrapped private key",
                                declared: WRAPPED_LEN as u64,
                                actual: body.private.len() as u64,
                            }
                        })?)
                    }
                    Slot::Recovery if body.private.is_empty() => None,
                    Slot::Recovery => {
                        return Err(RepoError::Invalid {
                            what: "key file",
                            detail: "a recovery slot carries no private key".into(),
                        })
                    }
                };
                Ok(KeyFile::V2(KeyFileV2 {
                    header: body.header,
                    private,
                    ephemeral: body.ephemeral,
                    keyring: body.keyring,
                }))
            }
            v => Err(RepoError::UnsupportedVersion {
                what: "key file",
                version: v,
            }),
        }
    }

    /// Open with a passphrase: the keyring (a version-1 file gives its one master).
    pub fn unlock(&self, passphrase: &[u8]) -> Result<Keyring> {
        match self {
            KeyFile::V1(k) => Ok(Keyring::new(k.unlock(passphrase)?)),
            KeyFile::V2(k) => k.unlock(passphrase),
        }
    }

    /// Format version (1 or 2).
    pub fn version(&self) -> u8 {
        match self {
            KeyFile::V1(_) => KEYFILE_V1,
            KeyFile::V2(_) => KEYFILE_V2,
        }
    }

    /// The label.
    pub fn label(&self) -> &str {
        match self {
            KeyFile::V1(k) => &k.header.label,
            KeyFile::V2(k) => &k.header.label,
        }
    }

    /// Creation time.
    pub fn created(&self) -> Timestamp {
        match self {
            KeyFile::V1(k) => k.header.created,
            KeyFile::V2(k) => k.header.created,
        }
    }

    /// Is this the recovery slot?
    pub fn is_recovery(&self) -> bool {
        matches!(self, KeyFile::V2(k) if k.header.slot == Slot::Recovery)
    }
}

/// `key remove`: refuse removing an unknown key, the key in use, or the last
/// passphrase slot.
pub fn key_remove_check(all: &[(Id, bool)], target: &Id, in_use: &Id) -> Result<()> {
    let Some((_, recovery)) = all.iter().find(|(id, _)| id == target) else {
        return Err(RepoError::KeyPolicy("no such key file"));
    };
    if target == in_use {
        return Err(RepoError::KeyPolicy(
            "refusing to remove the key currently in use",
        ));
    }
    if !recovery && all.iter().filter(|(_, r)| !r).count() < 2 {
        return Err(RepoError::KeyPolicy(
            "refusing to remove the last passphrase",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FAST: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    fn ring() -> Keyring {
        Keyring::new(MasterKey::from_bytes([0x42; 32]))
    }

    fn slot(ring: &Keyring, pw: &[u8], n: u8) -> KeyFileV2 {
        KeyFileV2::passphrase(
            ring,
            pw,
            [n; 32],
            FAST,
            format!("k{n}"),
            Timestamp::default(),
            [n + 1; 32],
            [n + 2; 32],
        )
        .unwrap()
    }

    /// safeguard: 164.312(a)(2)(iv)
    #[test]
    fn passphrase_slots_open_the_keyring() {
        let r = ring();
        let k = slot(&r, b"correct horse", 1);
        let bytes = k.encode().unwrap();
        let kf = KeyFile::parse(&bytes).unwrap();
        assert_eq!(kf.version(), 2);
        assert_eq!(kf.label(), "k1");
        let got = kf.unlock(b"correct horse").unwrap();
        assert_eq!(got.first().as_bytes(), r.first().as_bytes());
        assert_eq!(kf.unlock(b"wrong").unwrap_err(), RepoError::WrongPassphrase);
    }

    #[test]
    fn rotation_rewraps_remaining_slots_and_leaves_removed_ones_behind() {
        let r = ring();
        let keep = slot(&r, b"keep", 1);
        let removed = slot(&r, b"gone", 4);
        let secret = MasterKey::from_bytes([0x77; 32]);
        let rec = KeyFileV2::recovery(
            &r,
            &secret,
            "recovery".into(),
            Timestamp::default(),
            [9; 32],
        )
        .unwrap();
        let r2 = r.rotated(MasterKey::from_bytes([0x43; 32])).unwrap();
        let keep2 = keep.rewrap(&r2, [5; 32]).unwrap();
        let rec2 = rec.rewrap(&r2, [6; 32]).unwrap();
        assert_eq!(keep2.header, keep.header, "same slot");
        assert_ne!(keep2.encode().unwrap(), keep.encode().unwrap(), "new file");
        // The remaining passphrase and the recovery key open both epochs ...
        assert_eq!(keep2.unlock(b"keep").unwrap().len(), 2);
        assert_eq!(rec2.unlock_recovery(&secret).unwrap().len(), 2);
        // ... the removed slot's copy only the first.
        let old = removed.unlock(b"gone").unwrap();
        assert_eq!(old.len(), 1);
        assert!(old.master(1).is_none());
        // A wrong recovery key, or a passphrase on the recovery slot, opens nothing.
        assert_eq!(
            rec2.unlock_recovery(&MasterKey::from_bytes([0x78; 32]))
                .unwrap_err(),
            RepoError::RecoveryChecksum
        );
        assert!(rec2.unlock(b"keep").is_err());
        assert!(keep2.unlock_recovery(&secret).is_err());
        // A keyring part swapped in from another slot does not open.
        let mut franken = keep2.clone();
        franken.keyring = rec2.keyring.clone();
        franken.ephemeral = rec2.ephemeral;
        assert!(franken.unlock(b"keep").is_err());
    }

    /// safeguard: 164.312(a)(2)(iv)
    #[test]
    fn tampered_headers_and_hostile_params_are_rejected() {
        let r = ring();
        let k = slot(&r, b"pw", 1);
        let mut changed = k.clone();
        changed.header.label = "b".into();
        assert!(changed.unlock(b"pw").is_err());
        let mut hostile = k.clone();
        hostile.header.slot = Slot::Passphrase {
            kdf: Kdf::Argon2id {
                params: KdfParams {
                    m_kib: MAX_KDF_MEMORY_KIB + 1,
                    t: 1,
                    p: 1,
                },
                salt: [1; 32],
            },
        };
        let b = hostile.encode().unwrap();
        assert!(matches!(
            KeyFile::parse(&b),
            Err(RepoError::OutOfRange { .. })
        ));
        for (m_kib, t, p) in [
            (u32::MAX, 1, 1),
            (1024, 17, 1),
            (1024, 1, 9),
            (4 << 20, 3, 1),
        ] {
            assert!(
                KdfParams { m_kib, t, p }.validate().is_err(),
                "{m_kib} {t} {p}"
            );
        }
        assert!(KdfParams::DEFAULT.validate().is_ok());
        assert!(matches!(
            KeyFile::parse(b"LTHX\x01"),
            Err(RepoError::BadMagic { .. })
        ));
        assert!(matches!(
            KeyFile::parse(b"LTHK\x03"),
            Err(RepoError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            KeyFile::parse(&[b"LTHK\x02".as_slice(), &vec![0; MAX_KEYFILE]].concat()),
            Err(RepoError::OutOfRange { .. })
        ));
    }

    #[test]
    fn remove_rules() {
        let (a, b, rec) = (Id([1; 32]), Id([2; 32]), Id([3; 32]));
        let all = [(a, false), (b, false), (rec, true)];
        assert!(key_remove_check(&all, &a, &b).is_ok());
        assert!(key_remove_check(&all, &a, &a).is_err(), "in use");
        assert!(
            key_remove_check(&all, &rec, &a).is_ok(),
            "the recovery slot may go"
        );
        assert!(
            key_remove_check(&[(a, false), (rec, true)], &a, &rec).is_err(),
            "last passphrase"
        );
        assert!(key_remove_check(&all, &Id::ZERO, &a).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = KeyFile::parse(&b);
            for v in [1u8, 2] {
                let mut with_magic = b"LTHK".to_vec();
                with_magic.push(v);
                with_magic.extend_from_slice(&b);
                let _ = KeyFile::parse(&with_magic);
            }
        }
    }
}
