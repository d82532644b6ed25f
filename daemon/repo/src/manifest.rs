//! The sealed manifest (format version 2): which snapshots and index files are live.
//!
//! Every operation that changes the set of snapshots or index files writes a new
//! manifest *last*, at `manifest/<generation as 16 hex digits>`, with a generation one
//! above the one it read. Writes are create-only, so two writers racing for the same
//! generation cannot both win: the loser reads the winner's manifest, merges its own
//! change and tries the next generation. Older manifests are deleted afterwards.
//!
//! A storage provider that deletes or re-uploads files, or puts back an older manifest,
//! is caught by the readers:
//!
//! * a client keeps the highest generation it has seen per repository: a lower one is a
//!   **rollback**;
//! * a listed snapshot or index file that is missing was **deleted**;
//! * a snapshot or index file that is not listed records the generation its writer
//!   started from. Below the manifest's `watermark` it is a **replay** of something
//!   removed (or of a write that never completed and was cleaned up) and is never used;
//!   at or above it, it belongs to a backup still running or interrupted before its
//!   manifest (the next exclusive operation adopts it).
//!
//! `watermark` is raised to the new generation by exclusive operations (forget, prune,
//! repairs), which run when no other writer can be active. Files they remove are listed
//! in `obsolete_*` until a later exclusive operation has deleted them, so a crash
//! between the manifest and the deletions is not mistaken for a replay.

use crate::codec;
use crate::crypto::{Opener, Sealer};
use crate::error::{RepoError, Result};
use crate::ids::Id;
use crate::object::{ObjectHeader, ObjectType};
use crate::tree::Timestamp;
use serde::{Deserialize, Serialize};

/// Directory of manifest files.
pub const MANIFEST_DIR: &str = "manifest";
/// Largest audit-log checkpoint a manifest may carry.
pub const MAX_CHECKPOINT: usize = 64 << 10;

/// Storage path of the manifest of `generation`.
pub fn manifest_path(generation: u64) -> String {
    format!("{MANIFEST_DIR}/{generation:016x}")
}

/// The generation a manifest path names (strict: 16 lower-case hex digits).
pub fn parse_manifest_path(path: &str) -> Option<u64> {
    let name = path.strip_prefix(MANIFEST_DIR)?.strip_prefix('/')?;
    if name.len() != 16
        || !name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(name, 16).ok()
}

/// A manifest binds its generation as associated data, so a manifest moved to another
/// name does not open.
fn binding(generation: u64) -> Id {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&generation.to_le_bytes());
    b[8..16].copy_from_slice(b"manifest");
    Id(b)
}

/// The plaintext of a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// 1 for the first manifest, one more for every change.
    pub generation: u64,
    /// Key epoch of new data (the manifest is sealed under it).
    pub epoch: u32,
    /// Unlisted snapshots and index files with a lower generation are not live.
    pub watermark: u64,
    /// When it was written (passed in).
    pub time: Timestamp,
    /// Live snapshot files, sorted.
    pub snapshots: Vec<Id>,
    /// Live index files, sorted.
    pub index: Vec<Id>,
    /// Snapshot files removed but perhaps not yet deleted, sorted.
    pub obsolete_snapshots: Vec<Id>,
    /// Index files removed but perhaps not yet deleted, sorted.
    pub obsolete_index: Vec<Id>,
    /// The audit log's signed checkpoint at the time, where the service keeps one.
    pub audit_checkpoint: Option<String>,
}

fn sorted_unique(what: &'static str, v: &[Id]) -> Result<()> {
    if v.windows(2).all(|w| w[0] < w[1]) {
        Ok(())
    } else {
        Err(RepoError::Invalid {
            what,
            detail: "not sorted or listed twice".into(),
        })
    }
}

impl Manifest {
    /// An empty first manifest.
    pub fn first(epoch: u32, time: Timestamp) -> Manifest {
        Manifest {
            generation: 1,
            epoch,
            watermark: 1,
            time,
            snapshots: Vec::new(),
            index: Vec::new(),
            obsolete_snapshots: Vec::new(),
            obsolete_index: Vec::new(),
            audit_checkpoint: None,
        }
    }

    /// Sort and deduplicate every list (call before sealing).
    pub fn normalize(&mut self) {
        for v in [
            &mut self.snapshots,
            &mut self.index,
            &mut self.obsolete_snapshots,
            &mut self.obsolete_index,
        ] {
            v.sort_unstable();
            v.dedup();
        }
        self.obsolete_snapshots
            .retain(|id| self.snapshots.binary_search(id).is_err());
        self.obsolete_index
            .retain(|id| self.index.binary_search(id).is_err());
    }

    /// Structural rules.
    pub fn validate(&self) -> Result<()> {
        if self.generation == 0 || self.watermark > self.generation {
            return Err(RepoError::Invalid {
                what: "manifest",
                detail: format!(
                    "generation {} with watermark {}",
                    self.generation, self.watermark
                ),
            });
        }
        sorted_unique("manifest snapshots", &self.snapshots)?;
        sorted_unique("manifest index files", &self.index)?;
        sorted_unique("manifest obsolete snapshots", &self.obsolete_snapshots)?;
        sorted_unique("manifest obsolete index files", &self.obsolete_index)?;
        if self
            .obsolete_snapshots
            .iter()
            .any(|id| self.snapshots.binary_search(id).is_ok())
            || self
                .obsolete_index
                .iter()
                .any(|id| self.index.binary_search(id).is_ok())
        {
            return Err(RepoError::Invalid {
                what: "manifest",
                detail: "a file is both live and obsolete".into(),
            });
        }
        if self
            .audit_checkpoint
            .as_ref()
            .is_some_and(|c| c.len() > MAX_CHECKPOINT)
        {
            return Err(RepoError::OutOfRange {
                what: "manifest audit checkpoint",
                value: self.audit_checkpoint.as_ref().map_or(0, |c| c.len() as u64),
                min: 0,
                max: MAX_CHECKPOINT as u64,
            });
        }
        Ok(())
    }

    /// Seal into the bytes stored at [`manifest_path`]`(generation)`. The sealer's
    /// epoch must be the manifest's.
    pub fn seal(&self, sealer: &mut Sealer) -> Result<Vec<u8>> {
        self.validate()?;
        if sealer.epoch() != self.epoch {
            return Err(RepoError::Invalid {
                what: "manifest",
                detail: format!("epoch {} sealed under epoch {}", self.epoch, sealer.epoch()),
            });
        }
        sealer.seal(
            ObjectType::Manifest,
            &binding(self.generation),
            &codec::encode("manifest", self)?,
        )
    }

    /// Open the manifest stored under `generation`'s name: it must authenticate, be
    /// sealed under the epoch it names, and carry that generation.
    pub fn open(opener: &mut Opener, generation: u64, bytes: &[u8]) -> Result<Manifest> {
        let h = ObjectHeader::parse(bytes)?;
        let plain = opener.open(ObjectType::Manifest, &binding(generation), bytes)?;
        let m: Manifest = codec::decode("manifest", &plain)?;
        m.validate()?;
        if m.generation != generation || m.epoch != h.epoch {
            return Err(RepoError::Invalid {
                what: "manifest",
                detail: format!(
                    "stored as generation {generation} under epoch {}, says generation {} epoch {}",
                    h.epoch, m.generation, m.epoch
                ),
            });
        }
        Ok(m)
    }

    /// Is `id` a live snapshot?
    pub fn lists_snapshot(&self, id: &Id) -> bool {
        self.snapshots.binary_search(id).is_ok()
    }

    /// Is `id` a live index file?
    pub fn lists_index(&self, id: &Id) -> bool {
        self.index.binary_search(id).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Keyring, MasterKey};
    use proptest::prelude::*;

    fn sample() -> Manifest {
        let mut m = Manifest::first(0, Timestamp { secs: 5, nanos: 0 });
        m.generation = 7;
        m.watermark = 3;
        m.snapshots = vec![Id([3; 32]), Id([1; 32])];
        m.index = vec![Id([2; 32])];
        m.obsolete_snapshots = vec![Id([9; 32]), Id([1; 32])];
        m.audit_checkpoint = Some("lethe.example/audit\n12\nabc=\n".into());
        m.normalize();
        m
    }

    #[test]
    fn round_trip_and_name_binding() {
        let k = MasterKey::from_bytes([1; 32]).derive().unwrap();
        let m = sample();
        assert_eq!(m.snapshots, vec![Id([1; 32]), Id([3; 32])]);
        assert_eq!(
            m.obsolete_snapshots,
            vec![Id([9; 32])],
            "live beats obsolete"
        );
        let b = m.seal(&mut k.sealer([2; 16], 3).unwrap()).unwrap();
        assert_eq!(Manifest::open(&mut k.opener(), 7, &b).unwrap(), m);
        // Stored under another generation's name: it does not open.
        assert!(matches!(
            Manifest::open(&mut k.opener(), 8, &b),
            Err(RepoError::Authentication { .. })
        ));
        assert!(m.lists_snapshot(&Id([3; 32])) && !m.lists_snapshot(&Id([9; 32])));
        assert_eq!(manifest_path(7), "manifest/0000000000000007");
        assert_eq!(parse_manifest_path("manifest/00000000000000ff"), Some(255));
        for bad in [
            "manifest/ff",
            "manifest/00000000000000FF",
            "index/0000000000000001",
            "manifest/000000000000000g",
        ] {
            assert_eq!(parse_manifest_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn rules_are_checked() {
        let k = MasterKey::from_bytes([1; 32]).derive().unwrap();
        let mut s = k.sealer([2; 16], 3).unwrap();
        let mut m = sample();
        m.watermark = 8;
        assert!(m.seal(&mut s).is_err());
        let mut m = sample();
        m.snapshots = vec![Id([3; 32]), Id([1; 32])];
        assert!(m.seal(&mut s).is_err(), "unsorted");
        let mut m = sample();
        m.obsolete_index = m.index.clone();
        assert!(m.seal(&mut s).is_err(), "live and obsolete");
        let mut m = sample();
        m.generation = 0;
        assert!(m.seal(&mut s).is_err());
        // The epoch named must be the epoch sealed under.
        let mut m = sample();
        m.epoch = 1;
        assert!(m.seal(&mut s).is_err());
        let ring = Keyring::new(MasterKey::from_bytes([1; 32]))
            .rotated(MasterKey::from_bytes([2; 32]))
            .unwrap();
        let k2 = ring.derive().unwrap();
        let b = m.seal(&mut k2.sealer([3; 16], 0).unwrap()).unwrap();
        assert_eq!(Manifest::open(&mut k2.opener(), 7, &b).unwrap().epoch, 1);
        assert!(
            Manifest::open(&mut k.opener(), 7, &b).is_err(),
            "older keyring"
        );
    }

    proptest! {
        #[test]
        fn open_never_panics(b in prop::collection::vec(any::<u8>(), 0..300), g in any::<u64>()) {
            let k = MasterKey::from_bytes([1; 32]).derive().unwrap();
            let _ = Manifest::open(&mut k.opener(), g, &b);
            let _ = codec::decode::<Manifest>("m", &b).map(|m| m.validate());
            let _ = parse_manifest_path(&String::from_utf8_lossy(&b));
        }
    }
}
