//! The manifest text: what the release key signs (pure, no I/O).
//!
//! ```text
//! lethe-auditor-pack/1
//! version 0.1.0
//! commit 9c858f4e0d3c5b1a2f6e7d8c9b0a1f2e3d4c5b6a
//! built 2026-12-04T10:00:00Z
//! key 0123456789abcdef release
//! file <sha256, 64 lowercase hex> <size, decimal> <path>
//! …
//! ```
//!
//! One spelling only: the header lines in this order, then at least one
//! `file` line, sorted by path (bytewise) with no duplicates. A path is
//! relative, `/`-separated, each component `[A-Za-z0-9_][A-Za-z0-9._-]*`
//! (so no `.`, `..`, hidden files or spaces), at most 255 bytes, and never
//! the manifest itself. `commit` is 40 hex digits, with `+dirty` when the
//! work tree had changes. `key` is the release key's id (`lethe-cert`'s
//! key id: 16 hex digits of SHA-256 of the public key) and whether it is the
//! configured `release` key or a `throw-away` key made for one build.
//!
//! The first line differs from a certificate's signing input
//! (`lethe-certificate-v1`) and from an audit checkpoint (whose first line
//! is `lethe/audit/<key id>`), so a signature over one can never stand for
//! another.

use std::fmt::Write as _;

/// The first line of every manifest.
pub const FORMAT_LINE: &str = "lethe-auditor-pack/1";
/// The manifest's file name at the top of the pack.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// The longest path accepted.
pub const MAX_PATH_BYTES: usize = 255;

/// Which kind of key signed the pack (stated in the signed text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The project's configured release key.
    Release,
    /// A key made for this one build (CI without a configured key): the
    /// signature shows the files are unchanged since the build, not who built it.
    ThrowAway,
}

impl KeyKind {
    fn as_str(self) -> &'static str {
        match self {
            KeyKind::Release => "release",
            KeyKind::ThrowAway => "throw-away",
        }
    }
}

/// One file of the pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative path, `/`-separated.
    pub path: String,
    /// Its length in bytes.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
}

/// The manifest of one pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The software version the pack documents.
    pub version: String,
    /// The git commit (40 hex digits), with `+dirty` for a changed work tree.
    pub commit: String,
    /// When the pack was built, `YYYY-MM-DDTHH:MM:SSZ`.
    pub built: String,
    /// The signing key's id (16 hex digits).
    pub key_id: String,
    /// Release or throw-away key.
    pub key_kind: KeyKind,
    /// Every file but the manifest, sorted by path.
    pub files: Vec<FileEntry>,
}

/// Why manifest text was refused (line numbers start at 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The first line is not [`FORMAT_LINE`].
    #[error("not a Lethe auditor pack manifest (first line must be {FORMAT_LINE:?})")]
    Format,
    /// A header line is missing, out of order or malformed.
    #[error("line {line}: expected a valid {field:?} line")]
    Header {
        /// The line number.
        line: usize,
        /// The header expected there.
        field: &'static str,
    },
    /// A `file` line is malformed.
    #[error("line {0}: malformed file line (expected: file SHA256 SIZE PATH)")]
    FileLine(usize),
    /// A path breaks the path rules.
    #[error("line {line}: {path:?} is not an allowed pack path")]
    Path {
        /// The line number.
        line: usize,
        /// The path.
        path: String,
    },
    /// Paths out of order, or listed twice.
    #[error("line {0}: file lines must be sorted by path with no duplicates")]
    Order(usize),
    /// No file listed.
    #[error("the manifest lists no file")]
    Empty,
}

/// Whether `path` may be listed: see the module documentation.
pub fn is_pack_path(path: &str) -> bool {
    path.len() <= MAX_PATH_BYTES
        && path != MANIFEST_FILE
        && path.split('/').all(|c| {
            let mut b = c.bytes();
            matches!(b.next(), Some(f) if f.is_ascii_alphanumeric() || f == b'_')
                && b.all(|x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'))
        })
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_version(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
}

fn is_commit(s: &str) -> bool {
    is_hex(s.strip_suffix("+dirty").unwrap_or(s), 40)
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

impl Manifest {
    /// The text the release key signs (ends with a newline).
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "{FORMAT_LINE}");
        let _ = writeln!(t, "version {}", self.version);
        let _ = writeln!(t, "commit {}", self.commit);
        let _ = writeln!(t, "built {}", self.built);
        let _ = writeln!(t, "key {} {}", self.key_id, self.key_kind.as_str());
        for f in &self.files {
            let _ = writeln!(t, "file {} {} {}", hex::encode(f.sha256), f.size, f.path);
        }
        t
    }

    /// Check that the manifest can be written and read back as itself.
    pub fn validate(&self) -> Result<(), ManifestError> {
        Manifest::parse(&self.to_text()).map(|_| ())
    }

    /// Parse manifest text (the signed note's text), strictly.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let body = text.strip_suffix('\n').ok_or(ManifestError::Format)?;
        let mut lines = body.split('\n').enumerate().map(|(i, l)| (i + 1, l));
        if lines.next().map(|(_, l)| l) != Some(FORMAT_LINE) {
            return Err(ManifestError::Format);
        }
        let mut header = |field: &'static str, ok: &dyn Fn(&str) -> bool| {
            let (line, l) = lines
                .next()
                .ok_or(ManifestError::Header { line: 0, field })?;
            l.strip_prefix(field)
                .and_then(|r| r.strip_prefix(' '))
                .filter(|v| ok(v))
                .map(str::to_owned)
                .ok_or(ManifestError::Header { line, field })
        };
        let version = header("version", &is_version)?;
        let commit = header("commit", &is_commit)?;
        let built = header("built", &is_timestamp)?;
        let key = header("key", &|v| {
            v.split_once(' ').is_some_and(|(id, kind)| {
                is_hex(id, 16) && matches!(kind, "release" | "throw-away")
            })
        })?;
        let (key_id, kind) = key.split_once(' ').unwrap_or_default();
        let key_kind = if kind == "release" {
            KeyKind::Release
        } else {
            KeyKind::ThrowAway
        };
        let mut files: Vec<FileEntry> = Vec::new();
        for (line, l) in lines {
            let mut parts = l.splitn(4, ' ');
            let (Some("file"), Some(sha), Some(size), Some(path)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(ManifestError::FileLine(line));
            };
            if !is_hex(sha, 64) || !is_decimal(size) {
                return Err(ManifestError::FileLine(line));
            }
            let size: u64 = size.parse().map_err(|_| ManifestError::FileLine(line))?;
            if !is_pack_path(path) {
                return Err(ManifestError::Path {
                    line,
                    path: path.to_owned(),
                });
            }
            if files
                .last()
                .is_some_and(|prev| prev.path.as_bytes() >= path.as_bytes())
            {
                return Err(ManifestError::Order(line));
            }
            let mut sha256 = [0u8; 32];
            hex::decode_to_slice(sha, &mut sha256).map_err(|_| ManifestError::FileLine(line))?;
            files.push(FileEntry {
                path: path.to_owned(),
                size,
                sha256,
            });
        }
        if files.is_empty() {
            return Err(ManifestError::Empty);
        }
        Ok(Manifest {
            version,
            commit,
            built,
            key_id: key_id.to_owned(),
            key_kind,
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            version: "0.1.0".into(),
            commit: "9c858f4e0d3c5b1a2f6e7d8c9b0a1f2e3d4c5b6a".into(),
            built: "2026-12-04T10:00:00Z".into(),
            key_id: "0123456789abcdef".into(),
            key_kind: KeyKind::Release,
            files: vec![
                FileEntry {
                    path: "data/safeguards.json".into(),
                    size: 12,
                    sha256: [1; 32],
                },
                FileEntry {
                    path: "lethe-auditor-pack.pdf".into(),
                    size: 0,
                    sha256: [0xab; 32],
                },
            ],
        }
    }

    #[test]
    fn the_documented_shape_round_trips() {
        let m = sample();
        let text = m.to_text();
        assert!(text.starts_with("lethe-auditor-pack/1\nversion 0.1.0\ncommit 9c858f4e"));
        assert!(text.contains(&format!(
            "\nfile {} 12 data/safeguards.json\n",
            "01".repeat(32)
        )));
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        let mut dirty = m.clone();
        dirty.commit.push_str("+dirty");
        dirty.key_kind = KeyKind::ThrowAway;
        assert!(dirty
            .to_text()
            .contains("\nkey 0123456789abcdef throw-away\n"));
        assert_eq!(Manifest::parse(&dirty.to_text()).unwrap(), dirty);
    }

    #[test]
    fn paths_that_could_escape_or_hide_are_refused() {
        for ok in ["a", "html/index.html", "data/sbom.cdx.json", "_x/y-z.1"] {
            assert!(is_pack_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            ".hidden",
            "a/.b",
            "a//b",
            "a/",
            "with space",
            "MANIFEST",
            "tab\tx",
            "é",
            "a\\b",
        ] {
            assert!(!is_pack_path(bad), "{bad:?}");
        }
        assert!(!is_pack_path(&"a".repeat(256)));
        assert!(is_pack_path("html/MANIFEST"));
    }

    #[test]
    fn every_other_spelling_is_refused() {
        let good = sample().to_text();
        let cases: Vec<(String, &str)> = vec![
            (good.trim_end().to_owned(), "no final newline"),
            (
                good.replacen("lethe-auditor-pack/1", "lethe-auditor-pack/2", 1),
                "format",
            ),
            (
                good.replacen("version 0.1.0", "version  0.1.0", 1),
                "double space",
            ),
            (
                good.replacen("commit 9c8", "commit 9C8", 1),
                "upper-case hex",
            ),
            (
                good.replacen("built 2026-12-04T10:00:00Z", "built 2026-12-04 10:00:00", 1),
                "time",
            ),
            (good.replacen(" release\n", " trusted\n", 1), "key kind"),
            (
                good.replacen("file 0101", "file 0102", 1)
                    .replacen(" 12 ", " 012 ", 1),
                "size",
            ),
            (
                good.replacen("data/safeguards.json", "../safeguards.json", 1),
                "path",
            ),
            (
                good.replacen("data/safeguards.json", "zz/safeguards.json", 1),
                "order",
            ),
            (good.replacen("version 0.1.0\n", "", 1), "missing header"),
            (
                format!("{good}file {} 1 lethe-auditor-pack.pdf\n", "00".repeat(32)),
                "duplicate",
            ),
            (good.replacen("\nfile", "\n\nfile", 1), "blank line"),
        ];
        for (text, what) in cases {
            assert!(Manifest::parse(&text).is_err(), "{what}: accepted\n{text}");
        }
        let header_only: String = good.lines().take(5).map(|l| format!("{l}\n")).collect();
        assert_eq!(Manifest::parse(&header_only), Err(ManifestError::Empty));
    }

    fn path_strategy() -> impl Strategy<Value = String> {
        proptest::collection::vec("[A-Za-z0-9_][A-Za-z0-9._-]{0,12}", 1..4)
            .prop_map(|c| c.join("/"))
            .prop_filter("the manifest's own name", |p| p != MANIFEST_FILE)
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,400}") {
            let _ = Manifest::parse(&text);
        }

        #[test]
        fn any_valid_manifest_round_trips(
            files in proptest::collection::btree_map(path_strategy(), (any::<u64>(), any::<[u8; 32]>()), 1..20),
            dirty in any::<bool>(),
        ) {
            let mut m = sample();
            if dirty { m.commit.push_str("+dirty"); }
            m.files = files.into_iter().map(|(path, (size, sha256))| FileEntry { path, size, sha256 }).collect();
            let text = m.to_text();
            prop_assert_eq!(Manifest::parse(&text).unwrap(), m);
        }
    }
}
