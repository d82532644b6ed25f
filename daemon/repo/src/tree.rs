//! Directory trees, file nodes and extent lists.
//!
//! A [`Tree`] blob lists one directory's entries sorted by name bytes; subdirectories point
//! to their own tree blob, so unchanged subtrees dedup to the same id. Names, symlink
//! targets and xattr names are raw bytes (Linux paths need not be UTF-8).
//!
//! File content is an ordered list of [`Extent`]s: data blobs or runs of zeros (sparse
//! holes). Every regular file also records the BLAKE3 (unkeyed) of its full content at
//! backup time, which restore drills compare against `b3sum` of the restored file.

use crate::codec;
use crate::error::{RepoError, Result};
use crate::ids::Id;
use serde::{Deserialize, Serialize};

/// Seconds + nanoseconds since the Unix epoch (UTC).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z (may be negative).
    pub secs: i64,
    /// Nanoseconds, 0..1e9.
    pub nanos: u32,
}

/// One piece of content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Extent {
    /// `len` bytes stored in data blob `id`.
    Data {
        /// Data blob id.
        id: Id,
        /// Plaintext length of the blob.
        len: u32,
    },
    /// `len` zero bytes not stored (sparse).
    Zero {
        /// Run length.
        len: u64,
    },
}

impl Extent {
    /// Bytes this extent covers.
    pub fn len(&self) -> u64 {
        match self {
            Extent::Data { len, .. } => u64::from(*len),
            Extent::Zero { len } => *len,
        }
    }

    /// True for zero-length extents (never produced by a writer).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Total length of an extent list, rejecting overflow.
pub fn extents_len(ext: &[Extent]) -> Result<u64> {
    ext.iter().try_fold(0u64, |a, e| {
        a.checked_add(e.len()).ok_or(RepoError::Invalid {
            what: "extent list",
            detail: "total length overflows u64".into(),
        })
    })
}

/// What a node is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// Regular file.
    File {
        /// Content extents in order.
        content: Vec<Extent>,
        /// Unkeyed BLAKE3 of the whole content, computed while reading it.
        blake3: [u8; 32],
    },
    /// Directory; `subtree` is the id of its [`Tree`] blob.
    Dir {
        /// Tree blob id.
        subtree: Id,
    },
    /// Symbolic link.
    Symlink {
        /// Link target bytes.
        target: Vec<u8>,
    },
    /// Further name of an inode already stored in this snapshot.
    HardLink {
        /// Path (from the snapshot root, '/'-separated bytes) of the first occurrence.
        target: Vec<u8>,
    },
    /// Block device node.
    BlockDev {
        /// Device number.
        rdev: u64,
    },
    /// Character device node.
    CharDev {
        /// Device number.
        rdev: u64,
    },
    /// Named pipe.
    Fifo,
    /// Unix socket (recorded, not restored).
    Socket,
}

/// One directory entry with its metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// File name (no '/').
    pub name: Vec<u8>,
    /// Type and type-specific payload.
    pub kind: NodeKind,
    /// st_mode permission and special bits (type bits excluded).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Owner name at backup time, if resolvable.
    pub user: Option<String>,
    /// Group name at backup time, if resolvable.
    pub group: Option<String>,
    /// Size in bytes (files: content length).
    pub size: u64,
    /// Modification time.
    pub mtime: Timestamp,
    /// Access time.
    pub atime: Timestamp,
    /// Status change time.
    pub ctime: Timestamp,
    /// st_dev of the source (for hard-link detection).
    pub dev: u64,
    /// st_ino of the source.
    pub inode: u64,
    /// st_nlink of the source.
    pub nlink: u64,
    /// Extended attributes (name, value), sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One directory listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tree {
    /// Entries sorted strictly by `name` bytes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Encode after checking the invariants.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        codec::encode("tree", self)
    }

    /// Decode and validate a tree blob plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Tree> {
        let t: Tree = codec::decode("tree", bytes)?;
        t.validate()?;
        Ok(t)
    }

    /// Names are non-empty, not "." or "..", contain no '/' or NUL, and are strictly sorted;
    /// file sizes match their extents; timestamps are normalized.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| RepoError::Invalid {
            what: "tree",
            detail,
        };
        let mut prev: Option<&[u8]> = None;
        for n in &self.nodes {
            let name = n.name.as_slice();
            if name.is_empty()
                || name == b"."
                || name == b".."
                || name.contains(&b'/')
                || name.contains(&0)
            {
                return Err(bad(format!(
                    "invalid name {:?}",
                    String::from_utf8_lossy(name)
                )));
            }
            if let Some(p) = prev {
                if p >= name {
                    return Err(bad(format!(
                        "names not strictly sorted at {:?}",
                        String::from_utf8_lossy(name)
                    )));
                }
            }
            prev = Some(name);
            for t in [n.mtime, n.atime, n.ctime] {
                if t.nanos >= 1_000_000_000 {
                    return Err(bad(format!("nanoseconds {} out of range", t.nanos)));
                }
            }
            if let NodeKind::File { content, .. } = &n.kind {
                let total = extents_len(content)?;
                if total != n.size {
                    return Err(bad(format!(
                        "file {:?}: size {} but extents cover {}",
                        String::from_utf8_lossy(name),
                        n.size,
                        total
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A chunk of a device image's or stream's extent list (one blob). Long images are split
/// over several blobs of at most [`MAX_EXTENTS_PER_LIST`] entries, listed in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExtentList {
    /// Extents in order.
    pub extents: Vec<Extent>,
}

/// Maximum extents per [`ExtentList`] blob (about 2.3 MB encoded).
pub const MAX_EXTENTS_PER_LIST: usize = 65_536;

impl ExtentList {
    /// Encode after checking limits.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        codec::encode("extent list", self)
    }

    /// Decode and validate.
    pub fn decode(bytes: &[u8]) -> Result<ExtentList> {
        let l: ExtentList = codec::decode("extent list", bytes)?;
        l.validate()?;
        Ok(l)
    }

    fn validate(&self) -> Result<()> {
        if self.extents.len() > MAX_EXTENTS_PER_LIST {
            return Err(RepoError::OutOfRange {
                what: "extent list entries",
                value: self.extents.len() as u64,
                min: 0,
                max: MAX_EXTENTS_PER_LIST as u64,
            });
        }
        extents_len(&self.extents).map(|_| ())
    }

    /// Split a long extent sequence into list blobs, merging adjacent zero runs.
    pub fn split(extents: &[Extent]) -> Vec<ExtentList> {
        let mut merged: Vec<Extent> = Vec::with_capacity(extents.len());
        for e in extents {
            match (merged.last_mut(), e) {
                (Some(Extent::Zero { len: a }), Extent::Zero { len: b })
                    if a.checked_add(*b).is_some() =>
                {
                    *a += b
                }
                _ if e.is_empty() => {}
                _ => merged.push(*e),
            }
        }
        merged
            .chunks(MAX_EXTENTS_PER_LIST)
            .map(|c| ExtentList {
                extents: c.to_vec(),
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn arb_extent() -> impl Strategy<Value = Extent> {
        prop_oneof![
            (any::<[u8; 32]>(), any::<u32>()).prop_map(|(b, len)| Extent::Data { id: Id(b), len }),
            (0u64..1 << 40).prop_map(|len| Extent::Zero { len }),
        ]
    }

    fn ts() -> impl Strategy<Value = Timestamp> {
        (any::<i64>(), 0u32..1_000_000_000).prop_map(|(secs, nanos)| Timestamp { secs, nanos })
    }

    fn arb_kind() -> impl Strategy<Value = NodeKind> {
        prop_oneof![
            (prop::collection::vec(arb_extent(), 0..4), any::<[u8; 32]>())
                .prop_map(|(content, blake3)| NodeKind::File { content, blake3 }),
            any::<[u8; 32]>().prop_map(|b| NodeKind::Dir { subtree: Id(b) }),
            prop::collection::vec(any::<u8>(), 0..20)
                .prop_map(|target| NodeKind::Symlink { target }),
            prop::collection::vec(any::<u8>(), 0..20)
                .prop_map(|target| NodeKind::HardLink { target }),
            any::<u64>().prop_map(|rdev| NodeKind::BlockDev { rdev }),
            any::<u64>().prop_map(|rdev| NodeKind::CharDev { rdev }),
            Just(NodeKind::Fifo),
            Just(NodeKind::Socket),
        ]
    }

    pub fn arb_tree() -> impl Strategy<Value = Tree> {
        let node = (
            "[a-zA-Z0-9._-]{1,12}",
            arb_kind(),
            any::<(u32, u32, u32)>(),
            proptest::option::of("[a-z]{1,8}"),
            (ts(), ts(), ts()),
            any::<(u64, u64, u64)>(),
            prop::collection::vec(
                (
                    prop::collection::vec(any::<u8>(), 1..8),
                    prop::collection::vec(any::<u8>(), 0..8),
                ),
                0..2,
            ),
        )
            .prop_filter("dot names", |n| n.0 != "." && n.0 != "..")
            .prop_map(
                |(
                    name,
                    kind,
                    (mode, uid, gid),
                    user,
                    (mtime, atime, ctime),
                    (dev, inode, nlink),
                    xattrs,
                )| {
                    let size = match &kind {
                        NodeKind::File { content, .. } => extents_len(content).unwrap_or(0),
                        _ => 0,
                    };
                    Node {
                        name: name.into_bytes(),
                        kind,
                        mode,
                        uid,
                        gid,
                        user: user.clone(),
                        group: user,
                        size,
                        mtime,
                        atime,
                        ctime,
                        dev,
                        inode,
                        nlink,
                        xattrs,
                    }
                },
            );
        prop::collection::vec(node, 0..6)
            .prop_map(|mut nodes| {
                nodes.sort_by(|a, b| a.name.cmp(&b.name));
                nodes.dedup_by(|a, b| a.name == b.name);
                Tree { nodes }
            })
            .prop_filter("overflowing sizes", |t| t.validate().is_ok())
    }

    proptest! {
        #[test]
        fn tree_round_trip(t in arb_tree()) {
            prop_assert_eq!(Tree::decode(&t.encode().unwrap()).unwrap(), t);
        }

        #[test]
        fn tree_decode_never_panics(b in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = Tree::decode(&b);
            let _ = ExtentList::decode(&b);
        }

        #[test]
        fn extent_list_round_trip(e in prop::collection::vec(arb_extent(), 0..50)) {
            for l in ExtentList::split(&e) {
                prop_assert_eq!(ExtentList::decode(&l.encode().unwrap()).unwrap(), l);
            }
        }
    }

    #[test]
    fn tree_rejects_unsorted_and_bad_names_and_sizes() {
        let n = |name: &str| Node {
            name: name.as_bytes().to_vec(),
            kind: NodeKind::Fifo,
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            size: 0,
            mtime: Timestamp::default(),
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            dev: 0,
            inode: 0,
            nlink: 1,
            xattrs: vec![],
        };
        assert!(Tree {
            nodes: vec![n("b"), n("a")]
        }
        .encode()
        .is_err());
        assert!(Tree {
            nodes: vec![n("a"), n("a")]
        }
        .encode()
        .is_err());
        assert!(Tree {
            nodes: vec![n("a/b")]
        }
        .encode()
        .is_err());
        assert!(Tree {
            nodes: vec![n("..")]
        }
        .encode()
        .is_err());
        let mut f = n("f");
        f.kind = NodeKind::File {
            content: vec![Extent::Zero { len: 5 }],
            blake3: [0; 32],
        };
        f.size = 4;
        let err = Tree { nodes: vec![f] }.encode().unwrap_err();
        assert!(
            err.to_string().contains("size 4 but extents cover 5"),
            "{err}"
        );
    }

    #[test]
    fn split_merges_zero_runs_and_limits_size() {
        let mut e = vec![Extent::Zero { len: 1 }, Extent::Zero { len: 2 }];
        e.extend((0..MAX_EXTENTS_PER_LIST + 1).map(|i| Extent::Data {
            id: Id([(i % 251) as u8; 32]),
            len: 1,
        }));
        let lists = ExtentList::split(&e);
        assert_eq!(lists.len(), 2);
        assert_eq!(lists[0].extents[0], Extent::Zero { len: 3 });
        assert_eq!(lists[0].extents.len(), MAX_EXTENTS_PER_LIST);
        assert_eq!(lists[1].extents.len(), 2);
    }
}
