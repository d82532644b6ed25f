//! Key files (`keys/<id>`): the master key wrapped under a passphrase (the printable
//! recovery key is in [`crate::recovery`]). Pure operations behind `key add`,
//! `key remove` and `key passwd`.
//!
//! ```text
//! key file = "LTHK" || version (1) || postcard(KeyFileBody { header, wrapped })
//! KEK      = Argon2id(passphrase, salt, m_kib, t, p) -> 32 bytes
//! wrapped  = AES-256-GCM(KEK, nonce = 12 zero bytes,
//!                        aad = "LTHK" || 01 || postcard(header), master key)   (48 bytes)
//! ```
//! A zero nonce is safe because every KEK encrypts exactly one message: the caller supplies
//! a fresh random 32-byte salt for every key file (including `passwd`), so KEKs never repeat.

use crate::codec;
use crate::crypto::MasterKey;
use crate::error::{need, RepoError, Result};
use crate::ids::Id;
use crate::tree::Timestamp;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Magic of key files.
pub const KEYFILE_MAGIC: [u8; 4] = *b"LTHK";
/// Key file format version.
pub const KEYFILE_VERSION: u8 = 1;
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

impl KdfParams {
    /// RFC 9106's second recommended option with one lane (64 MiB, t = 3): ~0.2 s on the
    /// appliance's 2 cores; parameters are stored per key file so they can grow later.
    pub const DEFAULT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// Bounds accepted when parsing (a hostile key file must not make us allocate 100 GiB).
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
        r("argon2 lanes", self.p, 1, 16)?;
        r("argon2 memory KiB", self.m_kib, 8 * self.p, 4 << 20)?;
        r("argon2 iterations", self.t, 1, 64)
    }
}

/// Key derivation function of a key file.
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

/// Authenticated, unencrypted part of a key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHeader {
    /// KDF and its parameters.
    pub kdf: Kdf,
    /// Free-form label ("lead@host", "escrow", ...).
    pub label: String,
    /// Creation time.
    pub created: Timestamp,
}

#[derive(Serialize, Deserialize)]
struct KeyFileBody {
    header: KeyHeader,
    wrapped: Vec<u8>,
}

/// A parsed key file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFile {
    /// Header (authenticated as AAD).
    pub header: KeyHeader,
    wrapped: [u8; WRAPPED_LEN],
}

fn aad(header: &KeyHeader) -> Result<Vec<u8>> {
    let mut a = KEYFILE_MAGIC.to_vec();
    a.push(KEYFILE_VERSION);
    a.extend_from_slice(&codec::encode("key header", header)?);
    Ok(a)
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

impl KeyFile {
    /// Wrap `master` under `passphrase`. `salt` must be fresh random bytes.
    pub fn create(
        master: &MasterKey,
        passphrase: &[u8],
        salt: [u8; 32],
        params: KdfParams,
        label: String,
        created: Timestamp,
    ) -> Result<KeyFile> {
        let header = KeyHeader {
            kdf: Kdf::Argon2id { params, salt },
            label,
            created,
        };
        let key = kek(&header.kdf, passphrase)?;
        let mut buf = Zeroizing::new(master.as_bytes().to_vec());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(aad(&header)?),
                &mut buf[..],
            )
            .map_err(|_| RepoError::Crypto("wrap"))?;
        let mut wrapped = [0u8; WRAPPED_LEN];
        wrapped[..32].copy_from_slice(&buf);
        wrapped[32..].copy_from_slice(tag.as_ref());
        Ok(KeyFile { header, wrapped })
    }

    /// Serialize to the stored bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = KEYFILE_MAGIC.to_vec();
        out.push(KEYFILE_VERSION);
        let body = KeyFileBody {
            header: self.header.clone(),
            wrapped: self.wrapped.to_vec(),
        };
        out.extend_from_slice(&codec::encode("key file", &body)?);
        Ok(out)
    }

    /// Parse stored bytes (no passphrase needed).
    pub fn parse(bytes: &[u8]) -> Result<KeyFile> {
        need("key file", bytes, 5)?;
        if bytes[..4] != KEYFILE_MAGIC {
            return Err(RepoError::BadMagic {
                what: "key file",
                found: bytes[..4].to_vec(),
            });
        }
        if bytes[4] != KEYFILE_VERSION {
            return Err(RepoError::UnsupportedVersion {
                what: "key file",
                version: bytes[4],
            });
        }
        let body: KeyFileBody = codec::decode("key file", &bytes[5..])?;
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
        Ok(KeyFile {
            header: body.header,
            wrapped,
        })
    }

    /// Recover the master key with a passphrase.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<MasterKey> {
        let key = kek(&self.header.kdf, passphrase)?;
        let mut buf = Zeroizing::new(self.wrapped.to_vec());
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(aad(&self.header)?),
                &mut buf[..],
            )
            .map_err(|_| RepoError::WrongPassphrase)?;
        let mut m = [0u8; 32];
        m.copy_from_slice(plain);
        Ok(MasterKey::from_bytes(m))
    }
}

/// `key add`: a new key file for an already unlocked master key. Returns (id, bytes).
pub fn key_add(
    master: &MasterKey,
    passphrase: &[u8],
    salt: [u8; 32],
    params: KdfParams,
    label: String,
    created: Timestamp,
) -> Result<(Id, Vec<u8>)> {
    let bytes = KeyFile::create(master, passphrase, salt, params, label, created)?.encode()?;
    Ok((Id::of_file(&bytes), bytes))
}

/// Result of `key passwd`: write the new file first, then delete `remove`.
#[derive(Debug)]
pub struct Passwd {
    /// New key file id.
    pub new_id: Id,
    /// New key file bytes.
    pub new_bytes: Vec<u8>,
    /// Old key file to delete after the new one is stored.
    pub remove: Id,
}

/// `key passwd`: rewrap the master key of `old_bytes` under a new passphrase and salt.
pub fn key_passwd(
    old_bytes: &[u8],
    old_pass: &[u8],
    new_pass: &[u8],
    salt: [u8; 32],
    params: KdfParams,
    created: Timestamp,
) -> Result<Passwd> {
    let old = KeyFile::parse(old_bytes)?;
    let master = old.unlock(old_pass)?;
    let (new_id, new_bytes) = key_add(
        &master,
        new_pass,
        salt,
        params,
        old.header.label.clone(),
        created,
    )?;
    Ok(Passwd {
        new_id,
        new_bytes,
        remove: Id::of_file(old_bytes),
    })
}

/// `key remove`: refuse removing an unknown key, the key in use, or the last key.
pub fn key_remove_check(all: &[Id], target: &Id, in_use: &Id) -> Result<()> {
    if !all.contains(target) {
        return Err(RepoError::KeyPolicy("no such key file"));
    }
    if target == in_use {
        return Err(RepoError::KeyPolicy(
            "refusing to remove the key currently in use",
        ));
    }
    if all.len() < 2 {
        return Err(RepoError::KeyPolicy("refusing to remove the last key"));
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

    /// safeguard: 164.312(a)(2)(iv)
    #[test]
    fn add_unlock_passwd_remove() {
        let m = MasterKey::from_bytes([0x42; 32]);
        let t = Timestamp {
            secs: 1_700_000_000,
            nanos: 0,
        };
        let (id, bytes) = key_add(&m, b"correct horse", [1; 32], FAST, "admin".into(), t).unwrap();
        assert_eq!(id, Id::of_file(&bytes));
        let kf = KeyFile::parse(&bytes).unwrap();
        assert_eq!(
            kf.unlock(b"correct horse").unwrap().as_bytes(),
            m.as_bytes()
        );
        assert_eq!(kf.unlock(b"wrong").unwrap_err(), RepoError::WrongPassphrase);
        let pw = key_passwd(
            &bytes,
            b"correct horse",
            b"battery staple",
            [2; 32],
            FAST,
            t,
        )
        .unwrap();
        assert_eq!(pw.remove, id);
        let nk = KeyFile::parse(&pw.new_bytes).unwrap();
        assert_eq!(
            nk.unlock(b"battery staple").unwrap().as_bytes(),
            m.as_bytes()
        );
        assert!(nk.unlock(b"correct horse").is_err());
        assert!(key_passwd(&bytes, b"nope", b"x", [3; 32], FAST, t).is_err());
        // remove rules
        assert!(key_remove_check(&[id, pw.new_id], &id, &pw.new_id).is_ok());
        assert!(key_remove_check(&[id, pw.new_id], &id, &id).is_err());
        assert!(key_remove_check(&[id], &id, &pw.new_id).is_err());
        assert!(key_remove_check(&[id, pw.new_id], &Id::ZERO, &id).is_err());
    }

    /// safeguard: 164.312(a)(2)(iv)
    #[test]
    fn tampered_header_or_hostile_params_rejected() {
        let m = MasterKey::from_bytes([7; 32]);
        let kf =
            KeyFile::create(&m, b"pw", [1; 32], FAST, "a".into(), Timestamp::default()).unwrap();
        let mut changed = kf.clone();
        changed.header.label = "b".into();
        assert_eq!(
            changed.unlock(b"pw").unwrap_err(),
            RepoError::WrongPassphrase
        );
        let mut hostile = kf.clone();
        hostile.header.kdf = Kdf::Argon2id {
            params: KdfParams {
                m_kib: u32::MAX,
                t: 1,
                p: 1,
            },
            salt: [1; 32],
        };
        let b = hostile.encode().unwrap();
        assert!(matches!(
            KeyFile::parse(&b),
            Err(RepoError::OutOfRange { .. })
        ));
        assert!(matches!(
            KeyFile::parse(b"LTHX\x01"),
            Err(RepoError::BadMagic { .. })
        ));
        assert!(matches!(
            KeyFile::parse(b"LTHK\x02"),
            Err(RepoError::UnsupportedVersion { .. })
        ));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = KeyFile::parse(&b);
            let mut with_magic = b"LTHK\x01".to_vec();
            with_magic.extend_from_slice(&b);
            let _ = KeyFile::parse(&with_magic);
        }
    }
}
