//! 32-byte identifiers and the repository's file layout.
//!
//! Two kinds of ids exist:
//! * **file ids** (packs, index files, snapshots, key files) are the *unkeyed* BLAKE3 of the
//!   stored bytes, so anyone (even a storage-side verifier without the key) can detect a
//!   corrupted file by re-hashing it and comparing with its name;
//! * **blob ids** (chunks, trees, extent lists) are *keyed* BLAKE3 of the plaintext (see
//!   [`crate::crypto::RepoKeys`]) and never appear outside encrypted objects.

use crate::error::{RepoError, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A 32-byte identifier (blob id or file id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Id(pub [u8; 32]);

impl Id {
    /// The all-zero id (used as "no binding" in associated data).
    pub const ZERO: Id = Id([0; 32]);

    /// File id of stored bytes: unkeyed BLAKE3.
    pub fn of_file(bytes: &[u8]) -> Id {
        Id(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex (64 characters).
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }

    /// Parse 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<Id> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(RepoError::Text {
                what: "id",
                detail: format!("expected 64 hex characters, got {}", b.len()),
            });
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Id(out))
    }

    /// Check that `bytes` hash to this file id.
    pub fn verify_file(&self, what: &'static str, bytes: &[u8]) -> Result<()> {
        let got = Id::of_file(bytes);
        if got == *self {
            Ok(())
        } else {
            Err(RepoError::IdMismatch {
                what,
                expected: self.to_hex(),
                computed: got.to_hex(),
            })
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Result<u8> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(RepoError::Text {
            what: "id",
            detail: format!("non-hex character {:?}", char::from(c)),
        }),
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", &self.to_hex()[..16])
    }
}

impl FromStr for Id {
    type Err = RepoError;
    fn from_str(s: &str) -> Result<Id> {
        Id::from_hex(s)
    }
}

/// The kinds of stored files and where they live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `data/<first 2 hex>/<id>`: pack files.
    Pack,
    /// `index/<id>`: index files.
    Index,
    /// `snapshots/<id>`: snapshot objects.
    Snapshot,
    /// `keys/<id>`: passphrase-wrapped master key files.
    Key,
}

/// Name of the single repository configuration object.
pub const CONFIG_PATH: &str = "config";

impl FileKind {
    /// Directory prefix (without trailing slash).
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Pack => "data",
            FileKind::Index => "index",
            FileKind::Snapshot => "snapshots",
            FileKind::Key => "keys",
        }
    }

    /// Relative storage path of a file of this kind.
    pub fn path(self, id: &Id) -> String {
        let hex = id.to_hex();
        match self {
            FileKind::Pack => format!("data/{}/{}", &hex[..2], hex),
            _ => format!("{}/{}", self.dir(), hex),
        }
    }

    /// Parse a relative storage path back into kind and id (strict: exact layout only).
    pub fn parse_path(path: &str) -> Result<(FileKind, Id)> {
        let bad = |detail: &str| RepoError::Text {
            what: "storage path",
            detail: format!("{detail}: {path:?}"),
        };
        let mut parts = path.split('/');
        let dir = parts.next().ok_or_else(|| bad("empty"))?;
        let kind = match dir {
            "data" => FileKind::Pack,
            "index" => FileKind::Index,
            "snapshots" => FileKind::Snapshot,
            "keys" => FileKind::Key,
            _ => return Err(bad("unknown directory")),
        };
        let name = if kind == FileKind::Pack {
            let shard = parts.next().ok_or_else(|| bad("missing shard"))?;
            let name = parts.next().ok_or_else(|| bad("missing name"))?;
            if shard.len() != 2 || !name.starts_with(shard) {
                return Err(bad("shard does not match name"));
            }
            name
        } else {
            parts.next().ok_or_else(|| bad("missing name"))?
        };
        if parts.next().is_some() {
            return Err(bad("too many components"));
        }
        Ok((kind, Id::from_hex(name)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_paths() {
        let id = Id([0xab; 32]);
        assert_eq!(
            FileKind::Pack.path(&id),
            format!("data/ab/{}", "ab".repeat(32))
        );
        assert_eq!(FileKind::Key.path(&id), format!("keys/{}", "ab".repeat(32)));
        assert_eq!(
            FileKind::parse_path(&FileKind::Pack.path(&id)).unwrap(),
            (FileKind::Pack, id)
        );
        assert!(FileKind::parse_path("data/cd/abab").is_err());
        assert!(FileKind::parse_path("locks/x").is_err());
    }

    /// safeguard: 164.312(c)(2)
    #[test]
    fn file_id_is_blake3() {
        // BLAKE3("abc") from the official test vectors.
        assert_eq!(
            Id::of_file(b"abc").to_hex(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert!(Id::of_file(b"abc").verify_file("t", b"abd").is_err());
    }

    proptest! {
        #[test]
        fn hex_round_trip(b in any::<[u8; 32]>()) {
            let id = Id(b);
            prop_assert_eq!(Id::from_hex(&id.to_hex()).unwrap(), id);
            prop_assert_eq!(Id::from_hex(&id.to_hex().to_uppercase()).unwrap(), id);
        }

        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = Id::from_hex(&s);
            let _ = FileKind::parse_path(&s);
        }

        #[test]
        fn path_round_trip(b in any::<[u8; 32]>(), k in 0usize..4) {
            let kind = [FileKind::Pack, FileKind::Index, FileKind::Snapshot, FileKind::Key][k];
            let id = Id(b);
            prop_assert_eq!(FileKind::parse_path(&kind.path(&id)).unwrap(), (kind, id));
        }
    }
}
