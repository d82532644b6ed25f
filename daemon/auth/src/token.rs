//! API tokens for automation (report export, monitoring, scheduled backups).
//!
//! A token belongs to a user and carries a role no higher than the owner's:
//! creation refuses a role whose privileges are not all the owner's, and every
//! use intersects the token's role with the owner's *current* role, so
//! demoting or disabling the owner shrinks or kills their tokens at once
//! (Proxmox's model). Tokens never get privileges that need a fresh
//! re-authentication (a token cannot re-authenticate), never the emergency
//! grant, never break-glass elevation. Each token has an expiry; revocation is
//! immediate. Only SHA-256 of the 256-bit secret is stored.
//!
//! Presented form: `lethe_<token id, 32 hex>_<secret, 43 base64url>`.

use crate::entropy::{self, Entropy};
use crate::ids::{TokenId, UserId};
use crate::privilege::Role;
use crate::secret::SecretString;
use crate::time::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A stored token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub id: TokenId,
    pub owner: UserId,
    /// The owner's label ("nightly export").
    pub label: String,
    pub role: Role,
    pub secret_hash: [u8; 32],
    pub created: Timestamp,
    pub expires: Timestamp,
    pub revoked: Option<Timestamp>,
    pub last_used: Option<Timestamp>,
}

/// The secret, shown once at creation. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiTokenSecret(SecretString);

impl std::fmt::Debug for ApiTokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiTokenSecret(<redacted>)")
    }
}

const PREFIX: &str = "lethe_";

impl ApiTokenSecret {
    /// Makes a secret for `id`; returns it and the hash to store.
    pub(crate) fn generate(
        id: TokenId,
        e: &mut (impl Entropy + ?Sized),
    ) -> (ApiTokenSecret, [u8; 32]) {
        let raw: [u8; 32] = entropy::bytes(e);
        let hash: [u8; 32] = Sha256::digest(raw).into();
        let text = format!(
            "{PREFIX}{}_{}",
            id.simple(),
            data_encoding::BASE64URL_NOPAD.encode(&raw)
        );
        (ApiTokenSecret(SecretString::new(text)), hash)
    }

    /// The text to give to the automation.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// A presented token, parsed: the id (to look up) and the secret's hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedToken {
    pub id: TokenId,
    hash: [u8; 32],
}

impl std::fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedToken({}, <redacted>)", self.id)
    }
}

impl PresentedToken {
    /// Parses `lethe_<32 hex>_<43 base64url>`; anything else is `None`.
    pub fn parse(s: &str) -> Option<PresentedToken> {
        let rest = s.strip_prefix(PREFIX)?;
        let (id_hex, secret) = rest.split_once('_')?;
        if id_hex.len() != 32 || secret.len() != 43 {
            return None;
        }
        let id_bytes = data_encoding::HEXLOWER.decode(id_hex.as_bytes()).ok()?;
        let id = TokenId::from_bytes(id_bytes.try_into().ok()?);
        let raw = data_encoding::BASE64URL_NOPAD
            .decode(secret.as_bytes())
            .ok()?;
        if raw.len() != 32 {
            return None;
        }
        Some(PresentedToken {
            id,
            hash: Sha256::digest(&raw).into(),
        })
    }

    /// Whether the secret matches the stored hash (constant time).
    pub fn matches(&self, rec: &ApiTokenRecord) -> bool {
        rec.id == self.id && bool::from(self.hash.ct_eq(&rec.secret_hash))
    }
}

/// Why a presented token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRejection {
    Malformed,
    Unknown,
    WrongSecret,
    Expired,
    Revoked,
    OwnerDisabled,
}

impl ApiTokenRecord {
    /// Whether the record itself is usable at `now` (owner checks are separate).
    pub fn usable_at(&self, now: Timestamp) -> Result<(), TokenRejection> {
        if self.revoked.is_some() {
            Err(TokenRejection::Revoked)
        } else if now >= self.expires {
            Err(TokenRejection::Expired)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::TestEntropy;
    use proptest::prelude::*;

    #[test]
    fn generate_parse_match() {
        let mut e = TestEntropy(11);
        let id = TokenId::generate(&mut e);
        let (secret, hash) = ApiTokenSecret::generate(id, &mut e);
        assert!(secret.expose().starts_with("lethe_"));
        assert_eq!(secret.expose().len(), 6 + 32 + 1 + 43);
        assert_eq!(format!("{secret:?}"), "ApiTokenSecret(<redacted>)");
        let rec = ApiTokenRecord {
            id,
            owner: UserId::generate(&mut e),
            label: "export".into(),
            role: Role::Auditor,
            secret_hash: hash,
            created: Timestamp::from_unix_secs(1),
            expires: Timestamp::from_unix_secs(100),
            revoked: None,
            last_used: None,
        };
        let p = PresentedToken::parse(secret.expose()).unwrap();
        assert_eq!(p.id, id);
        assert!(p.matches(&rec));
        assert!(!format!("{p:?}").contains(&secret.expose()[39..]));
        // one changed character of the secret
        let mut bad = secret.expose().to_owned();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        if let Some(p) = PresentedToken::parse(&bad) {
            assert!(!p.matches(&rec));
        }
        assert_eq!(rec.usable_at(Timestamp::from_unix_secs(99)), Ok(()));
        assert_eq!(
            rec.usable_at(Timestamp::from_unix_secs(100)),
            Err(TokenRejection::Expired)
        );
        let revoked = ApiTokenRecord {
            revoked: Some(Timestamp::from_unix_secs(5)),
            ..rec
        };
        assert_eq!(
            revoked.usable_at(Timestamp::from_unix_secs(6)),
            Err(TokenRejection::Revoked)
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,100}") {
            let _ = PresentedToken::parse(&s);
        }

        #[test]
        fn parser_accepts_wellformed(id in any::<[u8;16]>(), secret in any::<[u8;32]>()) {
            let text = format!("lethe_{}_{}", data_encoding::HEXLOWER.encode(&id), data_encoding::BASE64URL_NOPAD.encode(&secret));
            let p = PresentedToken::parse(&text);
            prop_assert!(p.is_some());
        }
    }
}
