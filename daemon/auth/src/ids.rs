//! Identifiers. Users have a stable random id (UUID v4, never reused, what the
//! audit log records) and a unique, human-chosen name. Sessions, tokens, re-auth
//! records and break-glass requests have public ids that are safe to log; the
//! secrets that prove possession of a session or token are separate values
//! ([`crate::session::SessionToken`], [`crate::token::ApiTokenSecret`]).

use crate::entropy::{self, Entropy};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random id.
            pub fn generate(e: &mut (impl Entropy + ?Sized)) -> Self {
                $name(uuid::Builder::from_random_bytes(entropy::bytes(e)).into_uuid())
            }

            /// The 32-hex-digit form without hyphens.
            pub fn simple(&self) -> String {
                self.0.simple().to_string()
            }

            /// From the 16 raw bytes.
            pub fn from_bytes(b: [u8; 16]) -> Self {
                $name(Uuid::from_bytes(b))
            }

            /// Parses the hyphenated text form.
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::try_parse(s).ok().map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A user's stable id.
    UserId
);
uuid_id!(
    /// A session's public id (what the audit log records; not the cookie value).
    SessionId
);
uuid_id!(
    /// An API token's public id (the secret part is separate).
    TokenId
);
uuid_id!(
    /// One re-authentication: the "signature" an audit entry carries.
    ReauthId
);
uuid_id!(
    /// One break-glass (emergency access) request.
    BreakGlassId
);

/// A user name: 1 to 64 characters of `a-z 0-9 . _ -`, starting with a letter.
/// Names are case-insensitive: [`UserName::parse`] lowercases.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

/// Why a user name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a user name cannot be empty")]
    Empty,
    #[error("a user name has at most 64 characters")]
    TooLong,
    #[error("a user name starts with a letter (a-z)")]
    BadStart,
    #[error("a user name may only contain a-z, 0-9, '.', '_' and '-'")]
    BadCharacter,
}

impl UserName {
    /// Maximum length in characters.
    pub const MAX_LEN: usize = 64;

    /// Validates and lowercases `s`.
    pub fn parse(s: &str) -> Result<UserName, NameError> {
        let s = s.to_ascii_lowercase();
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(NameError::TooLong);
        }
        if !s.as_bytes()[0].is_ascii_lowercase() {
            return Err(NameError::BadStart);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(NameError::BadCharacter);
        }
        Ok(UserName(s))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UserName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        UserName::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for UserName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::TestEntropy;
    use proptest::prelude::*;

    /// safeguard: 164.312(a)(2)(i)
    #[test]
    fn names() {
        assert_eq!(UserName::parse("Alice.M").unwrap().as_str(), "alice.m");
        assert_eq!(UserName::parse(""), Err(NameError::Empty));
        assert_eq!(UserName::parse("1abc"), Err(NameError::BadStart));
        assert_eq!(UserName::parse("al ice"), Err(NameError::BadCharacter));
        assert_eq!(UserName::parse("élodie"), Err(NameError::BadStart));
        assert_eq!(UserName::parse("eloïse"), Err(NameError::BadCharacter));
        assert_eq!(UserName::parse(&"a".repeat(65)), Err(NameError::TooLong));
        assert!(UserName::parse(&"a".repeat(64)).is_ok());
        let n: UserName = serde_json::from_str("\"Bob\"").unwrap();
        assert_eq!(n.as_str(), "bob");
        assert!(serde_json::from_str::<UserName>("\"b o b\"").is_err());
    }

    /// safeguard: 164.312(a)(2)(i)
    #[test]
    fn ids_are_v4_and_round_trip() {
        let mut e = TestEntropy(1);
        let a = UserId::generate(&mut e);
        let b = UserId::generate(&mut e);
        assert_ne!(a, b);
        assert_eq!(UserId::parse(&a.to_string()), Some(a));
        assert_eq!(a.to_string().as_bytes()[14], b'4', "version nibble");
        assert_eq!(UserId::parse("not-a-uuid"), None);
    }

    proptest! {
        /// safeguard: 164.312(a)(2)(i)
        #[test]
        fn name_parser_accepts_only_its_alphabet(s in "\\PC{0,80}") {
            if let Ok(n) = UserName::parse(&s) {
                prop_assert!(n.as_str().len() <= 64);
                prop_assert!(n.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
                prop_assert_eq!(UserName::parse(n.as_str()), Ok(n.clone()));
            }
        }
    }
}
