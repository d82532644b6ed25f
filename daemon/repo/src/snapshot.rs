//! Snapshot objects (`snapshots/<id>`) and the repository config (`config`).
//!
//! A snapshot describes one of three sources: a directory tree, a raw block device image
//! (fixed-size chunks, zero runs sparse, device identity and whole-device BLAKE3 recorded
//! for the image-then-sanitize chain of custody), or a single stream (stdin).

use crate::chunker::ChunkerParams;
use crate::codec;
use crate::crypto::{Opener, Sealer};
use crate::error::{RepoError, Result};
use crate::ids::Id;
use crate::object::{ObjectHeader, ObjectType, FORMAT_V1, FORMAT_V2};
use crate::tree::Timestamp;
use serde::{Deserialize, Serialize};

/// Identity of an imaged block device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceIdentity {
    /// Path the device was read from (e.g. /dev/sdb).
    pub path: String,
    /// Model string reported by the device.
    pub model: String,
    /// Serial number reported by the device.
    pub serial: String,
    /// World-wide name / EUI if known.
    pub wwn: Option<String>,
    /// Capacity in bytes.
    pub size_bytes: u64,
    /// Logical block size in bytes.
    pub logical_block_size: u32,
}

/// What was backed up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// Directory trees; `root` is a tree blob whose entries are the backed-up paths.
    Tree {
        /// Root tree blob.
        root: Id,
        /// Source paths as given (raw bytes).
        paths: Vec<Vec<u8>>,
    },
    /// Raw block device image.
    Device {
        /// Device identity.
        identity: DeviceIdentity,
        /// Fixed chunk size used.
        chunk_size: u32,
        /// Extent-list blobs, in order; together they cover `identity.size_bytes`.
        extent_lists: Vec<Id>,
        /// Unkeyed BLAKE3 of the whole device content.
        blake3: [u8; 32],
        /// Byte ranges (offset, length) that could not be read and were stored as zeros.
        unreadable: Vec<(u64, u64)>,
    },
    /// A single stream (stdin).
    Stream {
        /// Name given to the stream (e.g. "stdin" or "pg_dump.sql").
        name: String,
        /// Length in bytes.
        size: u64,
        /// Extent-list blobs, in order.
        extent_lists: Vec<Id>,
        /// Unkeyed BLAKE3 of the whole stream.
        blake3: [u8; 32],
    },
}

/// Counters recorded at the end of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Summary {
    /// Files seen.
    pub files: u64,
    /// Directories seen.
    pub dirs: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Plaintext bytes of new blobs.
    pub bytes_added: u64,
    /// Stored (compressed, encrypted) bytes added.
    pub bytes_stored: u64,
    /// New blobs written.
    pub blobs_added: u64,
    /// Wall time of the backup in milliseconds.
    pub duration_ms: u64,
}

/// How the root tree of a [`Source::Tree`] snapshot is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TreeLayout {
    /// Format version 1: each source path is one entry of the root tree, named by its
    /// last component (`/srv/records` is `records`).
    Named,
    /// Format version 2: the root tree is the file system root and the source paths
    /// keep their absolute place in it (`/srv/records` is `srv/records`), as in restic.
    #[default]
    Absolute,
}

/// A snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the backup started (passed in; this crate reads no clock).
    pub time: Timestamp,
    /// Host name.
    pub hostname: String,
    /// User name.
    pub username: String,
    /// Tags (used by retention `keep_tags`).
    pub tags: Vec<String>,
    /// Previous snapshot of the same source, if any.
    pub parent: Option<Id>,
    /// The source.
    pub source: Source,
    /// Counters.
    pub summary: Summary,
    /// Records appended after the version-1 fields (see [`SnapshotExtensions`]).
    #[serde(skip)]
    pub ext: SnapshotExtensions,
    /// The manifest generation the backup started from (version 2; 0 in version 1).
    #[serde(skip)]
    pub generation: u64,
    /// Layout of a tree source's root (by format version).
    #[serde(skip)]
    pub layout: TreeLayout,
}

/// Extension record tag: files that changed while they were read.
pub const EXT_CHANGED_DURING_BACKUP: u32 = 1;
/// Extension record tag: this snapshot was rewritten by `repair snapshots`.
pub const EXT_REPAIRED: u32 = 2;

/// What `repair snapshots` did to produce a snapshot (restic's `original` field, plus
/// what was dropped).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairRecord {
    /// The damaged snapshot this one replaces.
    pub original: Id,
    /// When the repair ran (passed in).
    pub time: Timestamp,
    /// What was dropped or replaced, one line each (snapshot path and reason).
    pub dropped: Vec<String>,
}

/// Additions to a snapshot that version-1 snapshots do not have.
///
/// They are stored after the version-1 fields as a list of tagged records
/// (`Vec<(tag: u32, body: bytes)>`, tags strictly increasing). A snapshot without
/// any record is byte-identical to a version-1 snapshot; a reader keeps records
/// with tags it does not know (in `unknown`) so a rewrite preserves them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SnapshotExtensions {
    /// Snapshot paths (`/`-separated bytes from the root, as in `HardLink`) of files
    /// whose size, mtime or ctime changed while they were read: their content is what
    /// was read, which may mix before and after (tag 1, body `Vec<bytes>`).
    pub changed_during_backup: Vec<Vec<u8>>,
    /// Set when `repair snapshots` wrote this snapshot (tag 2, body [`RepairRecord`]).
    pub repaired: Option<RepairRecord>,
    /// Records with tags this version does not know, kept byte for byte.
    pub unknown: Vec<(u32, Vec<u8>)>,
}

impl SnapshotExtensions {
    /// No record at all (the snapshot is a plain version-1 snapshot).
    pub fn is_empty(&self) -> bool {
        self.changed_during_backup.is_empty() && self.repaired.is_none() && self.unknown.is_empty()
    }

    fn records(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let mut r = Vec::new();
        if !self.changed_during_backup.is_empty() {
            r.push((
                EXT_CHANGED_DURING_BACKUP,
                codec::encode("snapshot extension", &self.changed_during_backup)?,
            ));
        }
        if let Some(rep) = &self.repaired {
            r.push((EXT_REPAIRED, codec::encode("snapshot extension", rep)?));
        }
        r.extend(self.unknown.iter().cloned());
        r.sort_by_key(|(t, _)| *t);
        if r.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(RepoError::Invalid {
                what: "snapshot extensions",
                detail: "a tag appears twice".into(),
            });
        }
        Ok(r)
    }

    fn from_records(records: Vec<(u32, Vec<u8>)>) -> Result<Self> {
        let bad = |detail: &str| RepoError::Invalid {
            what: "snapshot extensions",
            detail: detail.into(),
        };
        if records.is_empty() {
            return Err(bad("empty record list (write none instead)"));
        }
        if records.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(bad("tags not strictly increasing"));
        }
        let mut ext = SnapshotExtensions::default();
        for (tag, body) in records {
            match tag {
                EXT_CHANGED_DURING_BACKUP => {
                    ext.changed_during_backup = codec::decode("snapshot extension", &body)?;
                    if ext.changed_during_backup.is_empty() {
                        return Err(bad("empty changed-during-backup record"));
                    }
                }
                EXT_REPAIRED => ext.repaired = Some(codec::decode("snapshot extension", &body)?),
                _ => ext.unknown.push((tag, body)),
            }
        }
        Ok(ext)
    }
}

impl Snapshot {
    /// The version-2 plaintext: the version-1 fields, the generation, the layout
    /// (0 absolute; 1 named, only in a repaired copy of a version-1 snapshot), then
    /// optional extension records.
    pub fn encode(&self) -> Result<Vec<u8>> {
        if self.time.nanos >= 1_000_000_000 {
            return Err(RepoError::Invalid {
                what: "snapshot",
                detail: "time nanoseconds out of range".into(),
            });
        }
        let mut plain = codec::encode("snapshot", self)?;
        plain.extend(codec::encode("snapshot", &self.generation)?);
        plain.push(match self.layout {
            TreeLayout::Absolute => 0,
            TreeLayout::Named => 1,
        });
        if !self.ext.is_empty() {
            plain.extend(codec::encode("snapshot", &self.ext.records()?)?);
        }
        Ok(plain)
    }

    /// Seal (version 2) into the bytes stored at `snapshots/<Id::of_file(bytes)>`.
    pub fn seal(&self, sealer: &mut Sealer) -> Result<Vec<u8>> {
        sealer.seal(ObjectType::Snapshot, &Id::ZERO, &self.encode()?)
    }

    /// Open and decode a snapshot file of either version.
    pub fn open(opener: &mut Opener, bytes: &[u8]) -> Result<Snapshot> {
        let version = ObjectHeader::parse(bytes)?.version;
        let plain = opener.open(ObjectType::Snapshot, &Id::ZERO, bytes)?;
        match version {
            FORMAT_V1 => Self::decode(&plain),
            FORMAT_V2 => Self::decode_v2(&plain),
            v => Err(RepoError::UnsupportedVersion {
                what: "snapshot",
                version: v,
            }),
        }
    }

    /// Decode a version-2 snapshot plaintext.
    pub fn decode_v2(plain: &[u8]) -> Result<Snapshot> {
        let (mut s, rest) =
            postcard::take_from_bytes::<Snapshot>(plain).map_err(|e| RepoError::Decode {
                what: "snapshot",
                detail: e.to_string(),
            })?;
        let (generation, rest) =
            postcard::take_from_bytes::<u64>(rest).map_err(|e| RepoError::Decode {
                what: "snapshot generation",
                detail: e.to_string(),
            })?;
        s.generation = generation;
        let (layout, rest) = rest.split_first().ok_or(RepoError::Truncated {
            what: "snapshot layout",
            need: 1,
            have: 0,
        })?;
        s.layout = match layout {
            0 => TreeLayout::Absolute,
            1 => TreeLayout::Named,
            v => {
                return Err(RepoError::Invalid {
                    what: "snapshot",
                    detail: format!("unknown tree layout {v}"),
                })
            }
        };
        s.finish_decode(rest)
    }

    /// Decode a version-1 snapshot plaintext: the version-1 fields, then optional
    /// extension records.
    pub fn decode(plain: &[u8]) -> Result<Snapshot> {
        let (mut s, rest) =
            postcard::take_from_bytes::<Snapshot>(plain).map_err(|e| RepoError::Decode {
                what: "snapshot",
                detail: e.to_string(),
            })?;
        s.layout = TreeLayout::Named;
        s.finish_decode(rest)
    }

    fn finish_decode(mut self, rest: &[u8]) -> Result<Snapshot> {
        if !rest.is_empty() {
            let records: Vec<(u32, Vec<u8>)> = codec::decode("snapshot extensions", rest)?;
            self.ext = SnapshotExtensions::from_records(records)?;
        }
        if self.time.nanos >= 1_000_000_000 {
            return Err(RepoError::Invalid {
                what: "snapshot",
                detail: "time nanoseconds out of range".into(),
            });
        }
        Ok(self)
    }
}

/// The repository configuration (`config`, sealed, binding zero). The same fields in
/// both format versions; the object header's version says which format the repository
/// is in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    /// Random repository id (caller-supplied).
    pub repo_id: [u8; 32],
    /// Chunker sizes for files and streams.
    pub chunker: ChunkerParams,
    /// Fixed chunk size for device images.
    pub device_chunk_size: u32,
    /// zstd level (0 = no compression).
    pub zstd_level: i32,
    /// Target pack size in bytes.
    pub pack_target: u32,
    /// Creation time.
    pub created: Timestamp,
    /// Format version the config was read in (2 when created here): a version-2
    /// repository has a sealed manifest.
    #[serde(skip)]
    pub format: u8,
}

impl RepoConfig {
    /// A config with the default parameters.
    pub fn new(repo_id: [u8; 32], created: Timestamp) -> RepoConfig {
        RepoConfig {
            repo_id,
            chunker: ChunkerParams::default(),
            device_chunk_size: crate::chunker::DEVICE_CHUNK_SIZE,
            zstd_level: crate::crypto::DEFAULT_ZSTD_LEVEL,
            pack_target: crate::pack::DEFAULT_PACK_TARGET,
            created,
            format: FORMAT_V2,
        }
    }

    fn validate(&self) -> Result<()> {
        self.chunker.validate()?;
        let range = |what, v: u64, min, max| {
            if (min..=max).contains(&v) {
                Ok(())
            } else {
                Err(RepoError::OutOfRange {
                    what,
                    value: v,
                    min,
                    max,
                })
            }
        };
        range(
            "device chunk size",
            self.device_chunk_size.into(),
            4096,
            64 << 20,
        )?;
        range("zstd level", self.zstd_level.unsigned_abs().into(), 0, 22)?;
        if self.zstd_level < 0 {
            return Err(RepoError::Invalid {
                what: "config",
                detail: "negative zstd level".into(),
            });
        }
        range("pack target", self.pack_target.into(), 1 << 20, 128 << 20)
    }

    /// Seal (version 2) into the bytes stored at `config`.
    pub fn seal(&self, sealer: &mut Sealer) -> Result<Vec<u8>> {
        self.validate()?;
        sealer.seal(
            ObjectType::Config,
            &Id::ZERO,
            &codec::encode("config", self)?,
        )
    }

    /// Open and validate the config.
    pub fn open(opener: &mut Opener, bytes: &[u8]) -> Result<RepoConfig> {
        let version = ObjectHeader::parse(bytes)?.version;
        let plain = opener.open(ObjectType::Config, &Id::ZERO, bytes)?;
        let mut c: RepoConfig = codec::decode("config", &plain)?;
        c.validate()?;
        c.format = version;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use proptest::prelude::*;

    fn arb_source() -> impl Strategy<Value = Source> {
        prop_oneof![
            (
                any::<[u8; 32]>(),
                prop::collection::vec(prop::collection::vec(any::<u8>(), 0..10), 0..3)
            )
                .prop_map(|(r, paths)| Source::Tree { root: Id(r), paths }),
            (
                ".{0,10}",
                ".{0,10}",
                any::<u64>(),
                any::<u32>(),
                prop::collection::vec(any::<[u8; 32]>(), 0..3),
                any::<[u8; 32]>(),
                prop::collection::vec(any::<(u64, u64)>(), 0..3)
            )
                .prop_map(|(model, serial, size_bytes, cs, l, blake3, unreadable)| {
                    Source::Device {
                        identity: DeviceIdentity {
                            path: "/dev/disk/by-id/ata-EXAMPLE".into(),
                            model,
                            serial,
                            wwn: None,
                            size_bytes,
                            logical_block_size: 512,
                        },
                        chunk_size: cs,
                        extent_lists: l.into_iter().map(Id).collect(),
                        blake3,
                        unreadable,
                    }
                }),
            (
                ".{0,10}",
                any::<u64>(),
                prop::collection::vec(any::<[u8; 32]>(), 0..3),
                any::<[u8; 32]>()
            )
                .prop_map(|(name, size, l, blake3)| Source::Stream {
                    name,
                    size,
                    extent_lists: l.into_iter().map(Id).collect(),
                    blake3
                }),
        ]
    }

    fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
        (
            any::<i64>(),
            0u32..1_000_000_000,
            ".{0,12}",
            prop::collection::vec("[a-z]{0,6}", 0..3),
            proptest::option::of(any::<[u8; 32]>()),
            arb_source(),
            any::<[u64; 7]>(),
            any::<u64>(),
        )
            .prop_map(|(secs, nanos, host, tags, parent, source, s, generation)| {
                Snapshot {
                    time: Timestamp { secs, nanos },
                    hostname: host,
                    username: "root".into(),
                    tags,
                    parent: parent.map(Id),
                    source,
                    summary: Summary {
                        files: s[0],
                        dirs: s[1],
                        bytes_read: s[2],
                        bytes_added: s[3],
                        bytes_stored: s[4],
                        blobs_added: s[5],
                        duration_ms: s[6],
                    },
                    ext: SnapshotExtensions::default(),
                    generation,
                    layout: TreeLayout::Absolute,
                }
            })
    }

    fn arb_ext() -> impl Strategy<Value = SnapshotExtensions> {
        (
            prop::collection::vec(prop::collection::vec(any::<u8>(), 1..8), 0..3),
            proptest::option::of((
                any::<[u8; 32]>(),
                any::<i64>(),
                prop::collection::vec(".{0,8}", 0..3),
            )),
            prop::collection::btree_map(3u32..100, prop::collection::vec(any::<u8>(), 0..5), 0..2),
        )
            .prop_map(|(changed, rep, unknown)| SnapshotExtensions {
                changed_during_backup: changed,
                repaired: rep.map(|(o, secs, dropped)| RepairRecord {
                    original: Id(o),
                    time: Timestamp { secs, nanos: 0 },
                    dropped,
                }),
                unknown: unknown.into_iter().collect(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn snapshot_with_extensions_round_trip(mut s in arb_snapshot(), ext in arb_ext()) {
            let k = MasterKey::from_bytes([3; 32]).derive().unwrap();
            let mut plain_head = codec::encode("snapshot", &s).unwrap();
            plain_head.extend(codec::encode("g", &s.generation).unwrap());
            plain_head.push(0);
            s.ext = ext;
            let bytes = s.seal(&mut k.sealer([1; 16], 3).unwrap()).unwrap();
            let back = Snapshot::open(&mut k.opener(), &bytes).unwrap();
            prop_assert_eq!(&back, &s);
            // The version-1 fields and the generation come first; records after them.
            let plain = k.opener().open(ObjectType::Snapshot, &Id::ZERO, &bytes).unwrap();
            prop_assert!(plain.starts_with(&plain_head));
            prop_assert_eq!(plain.len() == plain_head.len(), s.ext.is_empty());
        }

        #[test]
        fn snapshot_extension_decode_never_panics(b in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = Snapshot::decode(&b);
            let _ = Snapshot::decode_v2(&b);
        }

        #[test]
        fn snapshot_round_trip(s in arb_snapshot()) {
            let k = MasterKey::from_bytes([3; 32]).derive().unwrap();
            let bytes = s.seal(&mut k.sealer([1; 16], 3).unwrap()).unwrap();
            prop_assert_eq!(Snapshot::open(&mut k.opener(), &bytes).unwrap(), s);
        }

        #[test]
        fn snapshot_decode_never_panics(b in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = codec::decode::<Snapshot>("snapshot", &b);
            let _ = codec::decode::<RepoConfig>("config", &b);
        }
    }

    #[test]
    fn extension_records_are_checked() {
        let base = codec::encode(
            "snapshot",
            &Snapshot {
                time: Timestamp::default(),
                hostname: String::new(),
                username: String::new(),
                tags: vec![],
                parent: None,
                source: Source::Stream {
                    name: "s".into(),
                    size: 0,
                    extent_lists: vec![],
                    blake3: [0; 32],
                },
                summary: Summary::default(),
                ext: SnapshotExtensions::default(),
                generation: 7,
                layout: TreeLayout::Absolute,
            },
        )
        .unwrap();
        let with = |records: Vec<(u32, Vec<u8>)>| {
            let mut p = base.clone();
            p.extend(codec::encode("x", &7u64).unwrap());
            p.push(0);
            p.extend(codec::encode("x", &records).unwrap());
            Snapshot::decode_v2(&p)
        };
        let changed = codec::encode("x", &vec![b"a".to_vec()]).unwrap();
        assert!(with(vec![(1, changed.clone())]).is_ok());
        assert!(with(vec![]).is_err(), "an empty list is not written");
        assert!(with(vec![(1, changed.clone()), (1, changed.clone())]).is_err());
        assert!(with(vec![(7, vec![1]), (1, changed.clone())]).is_err());
        assert!(with(vec![(1, vec![0xff])]).is_err(), "bad body");
        // Unknown tags are kept, and written back in order.
        let s = with(vec![(1, changed), (9, vec![1, 2])]).unwrap();
        assert_eq!(s.ext.unknown, vec![(9, vec![1, 2])]);
        assert_eq!(s.generation, 7);
        let k = MasterKey::from_bytes([3; 32]).derive().unwrap();
        let b = s.seal(&mut k.sealer([1; 16], 0).unwrap()).unwrap();
        assert_eq!(Snapshot::open(&mut k.opener(), &b).unwrap(), s);
    }

    #[test]
    fn config_round_trip_and_validation() {
        let k = MasterKey::from_bytes([3; 32]).derive().unwrap();
        let mut s = k.sealer([1; 16], 3).unwrap();
        let c = RepoConfig::new([8; 32], Timestamp { secs: 1, nanos: 0 });
        let b = c.seal(&mut s).unwrap();
        assert_eq!(RepoConfig::open(&mut k.opener(), &b).unwrap(), c);
        let mut bad = c.clone();
        bad.pack_target = 1;
        assert!(matches!(
            bad.seal(&mut s),
            Err(RepoError::OutOfRange { .. })
        ));
        // A named layout (a repaired version-1 snapshot) round-trips.
        let named = Snapshot {
            time: Timestamp::default(),
            hostname: String::new(),
            username: String::new(),
            tags: vec![],
            parent: None,
            source: Source::Tree {
                root: Id::ZERO,
                paths: vec![b"/x".to_vec()],
            },
            summary: Summary::default(),
            ext: SnapshotExtensions::default(),
            generation: 0,
            layout: TreeLayout::Named,
        };
        let b = named.seal(&mut s).unwrap();
        assert_eq!(Snapshot::open(&mut k.opener(), &b).unwrap(), named);
        // A snapshot is not a config.
        let snap_bytes = s.seal(ObjectType::Snapshot, &Id::ZERO, b"x").unwrap();
        assert!(matches!(
            RepoConfig::open(&mut k.opener(), &snap_bytes),
            Err(RepoError::WrongObjectType { .. })
        ));
    }
}
